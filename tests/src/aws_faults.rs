//! Faults between an AWS SDK client and the local AWS: a proxy on a loopback port that forwards every
//! request to moto (or any AWS endpoint) and, for the requests a [`Rule`] names, answers otherwise —
//! a write that landed whose answer is lost, or a refusal the service never saw. Point an SDK client's
//! `endpoint_url` at [`FaultProxy::url`]: requests are forwarded with the headers they were signed
//! with, so a server that checks signatures takes them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What a matched request gets instead of the service's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The request reaches the service (the write lands), and the client gets a 500 instead of the
    /// answer, so that its SDK retries a request that already took effect.
    LoseAnswer,
    /// The request never reaches the service; the client gets `status` with `body`.
    Refuse {
        /// The HTTP status.
        status: u16,
        /// The body (an AWS error document).
        body: String,
    },
}

impl Fault {
    /// S3's `503 SlowDown`, never forwarded.
    pub fn s3_slow_down() -> Self {
        Self::Refuse {
            status: 503,
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                   <Message>Please reduce your request rate.</Message></Error>"
                .into(),
        }
    }
}

/// Which requests a fault applies to, and how many more times.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The JSON protocol's operation (`X-Amz-Target` ends with it: `UpdateItem`), if the rule names one.
    pub target: Option<String>,
    /// A string the path and query hold (`partNumber=`), if the rule names one.
    pub path_contains: Option<String>,
    /// A string the body holds (`polls`), if the rule names one.
    pub body_contains: Option<String>,
    /// How many more matching requests get the fault.
    pub times: u32,
    /// The fault.
    pub fault: Fault,
}

#[derive(Default)]
struct Shared {
    rules: Vec<Rule>,
    faulted: u32,
}

/// A running fault proxy. Stops when dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Mutex<Shared>>,
    _stop: oneshot::Sender<()>,
}

impl FaultProxy {
    /// Starts on a free loopback port, forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let state = (
            Arc::clone(&shared),
            upstream.trim_end_matches('/').to_owned(),
            reqwest::Client::new(),
        );
        let app = Router::new().fallback(forward).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok(Self {
            url,
            shared,
            _stop: crate::serve_until_dropped(listener, app),
        })
    }

    /// The endpoint URL to give the SDK client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a rule; rules are tried in the order added.
    pub fn add(&self, rule: Rule) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.rules.push(rule);
        }
    }

    /// How many requests got a fault so far.
    pub fn faulted(&self) -> u32 {
        self.shared.lock().map_or(0, |s| s.faulted)
    }
}

type ProxyState = (Arc<Mutex<Shared>>, String, reqwest::Client);

fn matches(rule: &Rule, headers: &HeaderMap, path: &str, body: &[u8]) -> bool {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    rule.times > 0
        && rule
            .target
            .as_deref()
            .is_none_or(|t| target.ends_with(&format!(".{t}")))
        && rule.path_contains.as_deref().is_none_or(|p| path.contains(p))
        && rule
            .body_contains
            .as_deref()
            .is_none_or(|b| String::from_utf8_lossy(body).contains(b))
}

async fn forward(State((shared, upstream, http)): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let fault = {
        let Ok(mut shared) = shared.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let found = shared
            .rules
            .iter_mut()
            .find(|r| matches(r, &parts.headers, &path, &body))
            .map(|rule| {
                rule.times -= 1;
                rule.fault.clone()
            });
        if found.is_some() {
            shared.faulted += 1;
        }
        found
    };
    if let Some(Fault::Refuse { status, body }) = fault {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            body,
        )
            .into_response();
    }
    let mut outgoing = http.request(parts.method, format!("{upstream}{path}")).body(body);
    // Every header as signed, `Host` included: a server that checks SigV4 (s3s) sees the request the
    // client signed.
    for (name, value) in &parts.headers {
        if name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    if fault == Some(Fault::LoseAnswer) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost"}"#,
        )
            .into_response();
    }
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "transfer-encoding" && name != "content-length" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
