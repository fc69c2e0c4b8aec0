//! Replays published responses over HTTP: each route answers a fixed status and JSON body, so a client
//! can be run against Amazon's own examples (the contract tests) instead of the simulator's answers.
//!
//! Routes are matched in the order they were added, on method, path (without the query) and, when
//! given, a query parameter that must be present. An unmatched request answers 404 with a body saying
//! so, which fails the client call and names the request in the test's message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One canned answer.
#[derive(Debug, Clone)]
pub struct Route {
    method: Method,
    path: String,
    query_has: Option<String>,
    status: u16,
    body: serde_json::Value,
}

impl Route {
    /// `method path` answers `status` with `body` (JSON; `null` sends an empty body).
    pub fn new(method: Method, path: &str, status: u16, body: serde_json::Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            query_has: None,
            status,
            body,
        }
    }

    /// Matches only requests whose query carries `parameter`.
    pub fn when_query_has(mut self, parameter: &str) -> Self {
        self.query_has = Some(parameter.to_owned());
        self
    }
}

/// A request the replay server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query parameters.
    pub query: HashMap<String, String>,
    /// The headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Bytes,
}

#[derive(Default)]
struct Shared {
    routes: Vec<Route>,
    received: Vec<Received>,
}

/// A running replay server. Stops when dropped.
pub struct Replay {
    base: String,
    shared: Arc<Mutex<Shared>>,
    _stop: oneshot::Sender<()>,
}

impl Replay {
    /// Starts on a free loopback port with `routes`.
    pub async fn start(routes: Vec<Route>) -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared {
            routes,
            received: Vec::new(),
        }));
        let app = Router::new().fallback(answer).with_state(Arc::clone(&shared));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        Ok(Self {
            base,
            shared,
            _stop: crate::serve_until_dropped(listener, app),
        })
    }

    /// The base URL (`http://127.0.0.1:port`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .received
            .clone()
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    shared.received.push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
        body,
    });
    let route = shared.routes.iter().find(|r| {
        r.method == method && r.path == uri.path() && r.query_has.as_ref().is_none_or(|p| query.contains_key(p))
    });
    match route {
        Some(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if r.body.is_null() {
                status.into_response()
            } else {
                (
                    status,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    r.body.to_string(),
                )
                    .into_response()
            }
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("the replay has no answer for {method} {}", uri.path()),
        )
            .into_response(),
    }
}
