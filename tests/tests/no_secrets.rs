//! Secrets stay secret: with logging at its most verbose (`TRACE`, as `AWS_LAMBDA_LOG_LEVEL` can ask), no step output and no log line carries an access token,
//! a refresh token, the client secret or a pre-signed URL, for any source.
//!
//! A test binary of its own: the log subscriber is installed globally, so that no other test's thread
//! can leave tracing's per-callsite cache saying "nobody listens" before this one runs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use amzpipe::steps::{Deadline, PollState, create_request, download_decrypt, poll_status, refresh_token};
use amzpipe_testkit::sim::SimConfig;
use amzpipe_testkit::stack::{CLIENT_SECRET, Stack};
use serde_json::Value;

/// A `Write` that keeps what the log subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_output_and_no_log_line_contains_a_token_a_secret_or_a_presigned_url() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_env_filter(amzpipe::lambda::log_filter(Some("TRACE")))
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let stack = Stack::start(SimConfig {
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut outputs = Vec::new();
    let mut events: Vec<Value> = ["sp-reports", "ads-reports", "amc", "slate"]
        .iter()
        .map(|name| {
            let path = dir.join(format!("{name}.json"));
            serde_json::from_slice(&std::fs::read(path).expect("event")).expect("JSON")
        })
        .collect();
    // A restricted report type: its document is fetched with a Restricted Data Token.
    let mut restricted = events[0].clone();
    restricted["job"]["name"] = "sp-unshipped-orders".into();
    restricted["job"]["source"]["reportType"] = "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING".into();
    events.push(restricted);
    for ev in events {
        let s = &stack.services;
        outputs.push(serde_json::to_string(&refresh_token(s, ev.clone()).await.expect("refresh")).expect("json"));
        outputs.push(serde_json::to_string(&create_request(s, ev.clone()).await.expect("create")).expect("json"));
        loop {
            let polled = poll_status(s, ev.clone()).await.expect("poll");
            outputs.push(serde_json::to_string(&polled).expect("json"));
            if polled.state != PollState::InProgress {
                break;
            }
        }
        let done = download_decrypt(s, ev, Deadline::none()).await.expect("download");
        outputs.push(serde_json::to_string(&done).expect("json"));
    }
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert_eq!(logs.matches("run succeeded").count(), 5, "the logs were captured");
    assert!(!stack.sim.requests_of("lwa.token").is_empty());
    assert_eq!(stack.sim.requests_of("sp.createRestrictedDataToken").len(), 1);
    for text in outputs.iter().chain(std::iter::once(&logs)) {
        for secret in [
            "Atza|",
            "Atzr|",
            "Atz.sprdt|",
            CLIENT_SECRET,
            "X-Amz-Signature",
            "/files/",
        ] {
            assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
        }
    }
}
