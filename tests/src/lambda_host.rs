//! The real function binaries, run as Lambda runs them: each one a process of its own that polls a
//! Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) served here, one invocation at a time.
//!
//! This is what `make demo` and `make local-stack` use instead of `cargo lambda watch`: the
//! binaries are the ones `cargo build` built in the workspace's target
//! directory, so nothing is compiled a second time under another environment.
//!
//! The Runtime API served per function: `GET /2018-06-01/runtime/invocation/next` (answers the next
//! queued event with `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` and
//! `Lambda-Runtime-Invoked-Function-Arn`), `POST …/invocation/{id}/response`, `POST
//! …/invocation/{id}/error` (`{"errorType", "errorMessage"}`), and `POST …/init/error`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

use crate::moto::free_port;
use crate::sfn::ACCOUNT;

/// How an invocation ended: the function's output, or its error type and message.
pub type Outcome = Result<Value, (String, String)>;

struct Pending {
    id: String,
    event: Bytes,
    timeout: Duration,
    answer: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<Pending>>,
    running: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    arrived: Notify,
    init_error: Mutex<Option<(String, String)>>,
}

struct Function {
    queue: Arc<Queue>,
    timeout: Duration,
    _process: Child,
    _stop: oneshot::Sender<()>,
}

/// The four function binaries, each behind a Runtime API of its own. Stops them when dropped.
pub struct FunctionHost {
    functions: HashMap<String, Function>,
    next_id: Mutex<u64>,
}

/// Where `cargo build` put the function binaries: next to the running executable (both in
/// `target/<profile>/`), or `AMZPIPE_FUNCTIONS_DIR`.
pub fn binaries_dir() -> std::io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("AMZPIPE_FUNCTIONS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| std::io::Error::other("no directory"))?;
    // A test binary lives in target/<profile>/deps/.
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

impl FunctionHost {
    /// Starts `functions` (binary names) from `dir`, each with the environment `env` (the functions'
    /// settings and the SDK's) plus what Lambda sets, its JSON logs appended to `log`. An invocation
    /// that takes longer than `timeout` fails as Lambda's does (`Sandbox.Timedout`).
    pub async fn start(
        dir: &Path,
        functions: &[&str],
        env: &[(String, String)],
        log: &Path,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut started = HashMap::new();
        for name in functions {
            let binary = dir.join(name);
            if !binary.exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} is missing: build it first (cargo build -p {name})",
                        binary.display()
                    ),
                ));
            }
            let queue = Arc::new(Queue::default());
            let port = free_port()?;
            let listener = TcpListener::bind(("127.0.0.1", port)).await?;
            let app = axum::Router::new()
                .route("/2018-06-01/runtime/invocation/next", axum::routing::get(next))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    axum::routing::post(respond),
                )
                .route("/2018-06-01/runtime/invocation/{id}/error", axum::routing::post(fail))
                .route("/2018-06-01/runtime/init/error", axum::routing::post(init_error))
                .with_state(Arc::clone(&queue));
            let stop = crate::serve_until_dropped(listener, app);
            let process = Command::new(&binary)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?)
                .kill_on_drop(true)
                .spawn()?;
            started.insert(
                (*name).to_owned(),
                Function {
                    queue,
                    timeout,
                    _process: process,
                    _stop: stop,
                },
            );
        }
        Ok(Self {
            functions: started,
            next_id: Mutex::new(0),
        })
    }

    /// Invokes `function` with `event` and waits for its answer, as the Lambda Invoke API does.
    pub async fn invoke(&self, function: &str, event: Bytes) -> Outcome {
        let Some(f) = self.functions.get(function) else {
            return Err((
                "ResourceNotFoundException".into(),
                format!("Function not found: {function}"),
            ));
        };
        if let Some(error) = lock(&f.queue.init_error).clone() {
            return Err(error);
        }
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            format!("{function}-{:08}", *next)
        };
        let (answer, answered) = oneshot::channel();
        lock(&f.queue.waiting).push_back(Pending {
            id,
            event,
            timeout: f.timeout,
            answer,
        });
        f.queue.arrived.notify_one();
        match tokio::time::timeout(f.timeout + Duration::from_secs(5), answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(("Lambda.Unknown".into(), "the function process stopped".into())),
            Err(_) => Err((
                "Sandbox.Timedout".into(),
                format!("Task timed out after {} seconds", f.timeout.as_secs()),
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn next(State(queue): State<Arc<Queue>>) -> Response {
    loop {
        let pending = lock(&queue.waiting).pop_front();
        if let Some(p) = pending {
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + p.timeout;
            let mut headers = HeaderMap::new();
            let header = |v: String| HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("-"));
            headers.insert("lambda-runtime-aws-request-id", header(p.id.clone()));
            headers.insert("lambda-runtime-deadline-ms", header(deadline.as_millis().to_string()));
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                header(format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:local")),
            );
            headers.insert("lambda-runtime-trace-id", header(format!("Root=1-local-{}", p.id)));
            lock(&queue.running).insert(p.id, p.answer);
            return (StatusCode::OK, headers, p.event).into_response();
        }
        queue.arrived.notified().await;
    }
}

async fn respond(State(queue): State<Arc<Queue>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    if let Some(answer) = lock(&queue.running).remove(&id) {
        let output = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let _ = answer.send(Ok(output));
    }
    StatusCode::ACCEPTED
}

fn error_of(body: &Bytes) -> (String, String) {
    let error: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    (
        error["errorType"].as_str().unwrap_or("Unhandled").to_owned(),
        error["errorMessage"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn fail(State(queue): State<Arc<Queue>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    if let Some(answer) = lock(&queue.running).remove(&id) {
        let _ = answer.send(Err(error_of(&body)));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(queue): State<Arc<Queue>>, body: Bytes) -> StatusCode {
    *lock(&queue.init_error) = Some(error_of(&body));
    StatusCode::ACCEPTED
}
