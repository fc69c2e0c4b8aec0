//! What every Lambda binary shares: JSON logs.

use tracing_subscriber::EnvFilter;

/// The crates whose debug and trace logs carry request details (headers, canonical requests, signed
/// URLs, bodies), and the runtime's internals: they stay at `warn` whatever level is asked for. A
/// directive's target matches every target it begins, so `aws` covers the SDK, Smithy and SigV4 crates
/// and `hyper` covers `hyper_util`. Appended after the asked-for directives, so that they win over a
/// bare level and over any directive for the same target.
pub const CAPPED_CRATES: &str = "aws=warn,hyper=warn,h2=warn,reqwest=warn,rustls=warn,tower=warn,tokio=warn,mio=warn";

/// The log filter when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` says otherwise: the pipeline at
/// `info`, the AWS SDK and HTTP stacks at `warn`.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// The filter for `asked` (`RUST_LOG`'s directives, or Lambda's `AWS_LAMBDA_LOG_LEVEL` such as `TRACE`),
/// or [`DEFAULT_LOG_FILTER`]: whatever is asked, the [`CAPPED_CRATES`] stay at `warn`, so raising the
/// level to troubleshoot the pipeline never turns on the SDK's or HTTP stack's wire logs. Directives that
/// do not parse fall back to the default.
pub fn log_filter(asked: Option<&str>) -> EnvFilter {
    let capped: Vec<&str> = CAPPED_CRATES.split(',').filter_map(|d| d.split('=').next()).collect();
    // A directive naming a capped crate (or a module of one) would be more specific than the cap and
    // win over it: such directives are dropped.
    let kept: Vec<String> = asked
        .unwrap_or_default()
        .split(',')
        .map(|d| d.trim().to_lowercase())
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let target = d.split(['=', '[']).next().unwrap_or_default();
            !capped.iter().any(|c| target.starts_with(c))
        })
        .collect();
    let base = if kept.is_empty() || EnvFilter::try_new(kept.join(",")).is_err() {
        DEFAULT_LOG_FILTER.to_owned()
    } else {
        kept.join(",")
    };
    EnvFilter::try_new(format!("{base},{CAPPED_CRATES}")).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER))
}

/// Installs a JSON log subscriber: one object per line with the level, the message, its fields and the
/// current step's span (job, run id), as CloudWatch Logs Insights reads them. Logs never carry tokens,
/// secrets or pre-signed URLs: nothing in the pipeline formats them into a field, and the crates that
/// would are capped (see [`log_filter`]).
pub fn init_tracing() {
    let asked = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok());
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(log_filter(asked.as_deref()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

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

    /// The lines logged under `filter` by the pipeline and by the SDK's and HTTP stack's targets.
    fn logged_under(filter: EnvFilter) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "amzpipe::steps", "pipeline trace");
            tracing::debug!(target: "aws_smithy_runtime::client", "sdk wire debug");
            tracing::trace!(target: "hyper::proto", "hyper wire trace");
            tracing::debug!(target: "reqwest::connect", "reqwest debug");
            tracing::warn!(target: "aws_smithy_runtime::client", "sdk warning");
        });
        String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8")
    }

    #[test]
    fn the_sdk_and_http_crates_stay_at_warn_whatever_level_lambda_asks_for() {
        for asked in [
            Some("TRACE"),
            Some("trace"),
            Some("debug,aws_smithy_runtime=trace"),
            None,
        ] {
            let logs = logged_under(log_filter(asked));
            assert!(!logs.contains("sdk wire debug"), "{asked:?}: {logs}");
            assert!(!logs.contains("hyper wire trace"), "{asked:?}: {logs}");
            assert!(!logs.contains("reqwest debug"), "{asked:?}: {logs}");
            assert!(logs.contains("sdk warning"), "{asked:?}: {logs}");
        }
        assert!(logged_under(log_filter(Some("TRACE"))).contains("pipeline trace"));
        assert!(!logged_under(log_filter(None)).contains("pipeline trace"));
    }

    #[test]
    fn an_unreadable_level_falls_back_to_the_default() {
        let logs = logged_under(log_filter(Some("[[nonsense")));
        assert!(
            logs.contains("sdk warning") && !logs.contains("pipeline trace"),
            "{logs}"
        );
    }
}
