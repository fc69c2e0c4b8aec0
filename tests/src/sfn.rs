//! The real state machine on this machine: `infra/statemachine/pipeline.asl.json`, with the
//! substitutions the SAM template makes, executed by moto's Step Functions interpreter, whose Lambda
//! tasks reach the real step handlers over the Lambda Invoke API.
//!
//! moto's interpreter makes its AWS calls to `localhost:$MOTO_PORT`. [`LambdaRouter`] listens there:
//! `POST /2015-03-31/functions/{name}/invocations` runs the step named by the function (answering as
//! Lambda does: `200`, and for a handler error `X-Amz-Function-Error: Unhandled` with
//! `{"errorType", "errorMessage"}`, so `Retry`/`Catch` by error name behave as in AWS); every other
//! request goes on to the moto server.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amzpipe::steps::{
    AwsServices, Deadline, StepError, create_request, download_decrypt, poll_status_or_record_failure,
    refresh_token_or_start_execution,
};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The account id in the ARNs the definition is filled with.
pub const ACCOUNT: &str = "123456789012";
/// The path of the state-machine definition, from the workspace root.
pub const DEFINITION: &str = "infra/statemachine/pipeline.asl.json";

/// Where the Distributed Map states write their child executions' results (`${ResultsPrefix}`).
pub const MAP_RUN_RESULTS: &str = "_amzpipe/map-runs";

/// Where the state machine writes the jobs of an input that carries them inline (`${StagedJobsPrefix}`).
pub const STAGED_JOBS: &str = "_amzpipe/staged-jobs";

/// The function names, as the template's binaries are named.
pub const FUNCTIONS: [&str; 4] = ["refresh-token", "create-request", "poll-status", "download-decrypt"];

/// One invocation seen by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The function.
    pub function: String,
    /// The error type it returned, if it failed.
    pub error: Option<String>,
    /// The payload it was given.
    pub input: Value,
    /// What it returned when it succeeded (`null` when it failed).
    pub output: Value,
    /// The sizes, in bytes, of the payload it was given and of its answer (the state machine's
    /// payloads, which Step Functions caps at 256 KB).
    pub payload_bytes: (usize, usize),
}

/// Who answers the Lambda invokes.
pub enum Functions {
    /// The steps, called in this process over these services (tests).
    InProcess(Arc<AwsServices>),
    /// The steps, called in this process, each function over services of its own (signing its AWS
    /// calls as itself), by function name.
    PerFunction(std::collections::HashMap<String, Arc<AwsServices>>),
    /// The real function binaries, each polling a Lambda Runtime API served by the test kit (what
    /// `make demo` runs).
    Hosted(Arc<crate::lambda_host::FunctionHost>),
    /// The real function binaries behind a local Lambda emulator (`cargo lambda watch`) at this base
    /// URL; its handler-error answer (HTTP 500 with `{"errorType", "errorMessage"}`) is turned into real
    /// Lambda's (200 + `X-Amz-Function-Error: Unhandled`).
    Remote(String),
}

struct Shared {
    functions: Functions,
    moto: String,
    http: reqwest::Client,
    invocations: Mutex<Vec<Invocation>>,
    download_deadlines: Mutex<VecDeque<Duration>>,
}

impl Shared {
    fn record(&self, function: &str, input: &[u8], error: Option<String>, answer: &[u8]) {
        let output = match error {
            None => serde_json::from_slice(answer).unwrap_or(Value::Null),
            Some(_) => Value::Null,
        };
        self.invocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Invocation {
                function: function.to_owned(),
                error,
                input: serde_json::from_slice(input).unwrap_or(Value::Null),
                output,
                payload_bytes: (input.len(), answer.len()),
            });
    }
}

/// The Invoke-API router in front of moto. Stops when dropped.
pub struct LambdaRouter {
    shared: Arc<Shared>,
    port: u16,
    _stop: oneshot::Sender<()>,
}

impl LambdaRouter {
    /// Listens on `127.0.0.1:port`, sending invokes to `functions` and the rest to `moto`.
    pub async fn start(port: u16, moto: &str, functions: Functions) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            functions,
            moto: moto.to_owned(),
            http: reqwest::Client::new(),
            invocations: Mutex::new(Vec::new()),
            download_deadlines: Mutex::new(VecDeque::new()),
        });
        let app = axum::Router::new().fallback(route).with_state(Arc::clone(&shared));
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Ok(Self {
            shared,
            port,
            _stop: crate::serve_until_dropped(listener, app),
        })
    }

    /// Invokes `function` with `event` through the Lambda Invoke API this router serves (as
    /// EventBridge Scheduler or a person would); the invocation is recorded like the state machine's.
    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Value, String> {
        let answer = self
            .shared
            .http
            .post(format!(
                "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
                self.port
            ))
            .body(event.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let failed = answer.headers().contains_key("X-Amz-Function-Error");
        let body: Value = answer.json().await.map_err(|e| e.to_string())?;
        if failed {
            return Err(format!("{}: {}", body["errorType"], body["errorMessage"]));
        }
        Ok(body)
    }

    /// Every invocation so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.shared
            .invocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Gives the next download-decrypt invocations these Lambda deadlines (then none): a way to cut a
    /// transfer off as a Lambda timeout would.
    pub fn cut_downloads_after(&self, deadlines: impl IntoIterator<Item = Duration>) {
        self.shared
            .download_deadlines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(deadlines);
    }
}

/// `arn:aws:lambda:us-east-1:123456789012:function:create-request[:qualifier]` → `create-request`.
fn function_name(path: &str) -> Option<String> {
    let encoded = path
        .strip_prefix("/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    let decoded = encoded.replace("%3A", ":").replace("%3a", ":");
    let name = decoded.rsplit_once("function:").map_or(decoded.as_str(), |(_, n)| n);
    Some(name.split(':').next().unwrap_or(name).to_owned())
}

async fn route(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if request.method() == axum::http::Method::POST
        && let Some(function) = function_name(&path)
    {
        let body = axum::body::to_bytes(request.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        return invoke(&shared, &function, &body).await;
    }
    forward(&shared, request).await
}

async fn invoke(shared: &Shared, function: &str, body: &Bytes) -> Response {
    let services = match &shared.functions {
        Functions::InProcess(services) => Some(services.as_ref()),
        Functions::PerFunction(by_name) => by_name.get(function).map(AsRef::as_ref),
        Functions::Remote(base) => return invoke_remote(shared, base, function, body).await,
        Functions::Hosted(host) => {
            let outcome = host.invoke(function, body.clone()).await;
            return lambda_answer(shared, function, body, outcome);
        }
    };
    let Some(services) = services else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"Type": "User", "message": format!("Function not found: {function}")})),
        )
            .into_response();
    };
    let event: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let result: Result<Value, StepError> = match function {
        "refresh-token" => refresh_token_or_start_execution(services, event).await,
        "create-request" => create_request(services, event).await.map(|o| json!(o)),
        "poll-status" => poll_status_or_record_failure(services, event).await,
        "download-decrypt" => {
            let deadline = shared
                .download_deadlines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front()
                .map_or_else(Deadline::none, Deadline::after);
            download_decrypt(services, event, deadline).await.map(|o| json!(o))
        }
        other => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"Type": "User", "message": format!("Function not found: {other}")})),
            )
                .into_response();
        }
    };
    lambda_answer(
        shared,
        function,
        body,
        result.map_err(|e| (e.error_type().to_owned(), e.to_string())),
    )
}

/// Lambda's answer to an invoke: the output, or `X-Amz-Function-Error: Unhandled` with
/// `{"errorType", "errorMessage"}` (which Step Functions matches `Retry`/`Catch` on).
fn lambda_answer(shared: &Shared, function: &str, input: &[u8], outcome: crate::lambda_host::Outcome) -> Response {
    let (error, answer) = match outcome {
        Ok(output) => (None, output),
        Err((error_type, message)) => (
            Some(error_type.clone()),
            json!({"errorType": error_type, "errorMessage": message}),
        ),
    };
    let answer = answer.to_string().into_bytes();
    shared.record(function, input, error.clone(), &answer);
    lambda_response(answer, error.is_some())
}

/// An Invoke answer as Lambda sends it: JSON, and `X-Amz-Function-Error: Unhandled` for a handler error.
fn lambda_response(body: impl Into<Body>, failed: bool) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if failed {
        response
            .headers_mut()
            .insert("X-Amz-Function-Error", HeaderValue::from_static("Unhandled"));
    }
    response
}

async fn invoke_remote(shared: &Shared, base: &str, function: &str, body: &Bytes) -> Response {
    let url = format!("{base}/2015-03-31/functions/{function}/invocations");
    let answer = match shared.http.post(url).body(body.clone()).send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let bytes = answer.bytes().await.unwrap_or_default();
    let error = if status.is_success() {
        None
    } else {
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Some(parsed["errorType"].as_str().unwrap_or("Unknown").to_owned())
    };
    shared.record(function, body, error.clone(), &bytes);
    lambda_response(bytes, error.is_some())
}

async fn forward(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let url = format!(
        "{}{}",
        shared.moto,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let mut outgoing = shared.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::TRANSFER_ENCODING {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The definition file with the template's substitutions filled for the local account; with
/// `quick_retries`, every `Retry` interval is cut to one second so retries by error name take seconds.
pub fn local_definition(table: &str, max_concurrency: u32, quick_retries: bool) -> std::io::Result<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DEFINITION);
    let mut text = std::fs::read_to_string(path)?;
    for (placeholder, function) in [
        ("RefreshTokenArn", "refresh-token"),
        ("CreateRequestArn", "create-request"),
        ("PollStatusArn", "poll-status"),
        ("DownloadDecryptArn", "download-decrypt"),
    ] {
        text = text.replace(
            &format!("${{{placeholder}}}"),
            &format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"),
        );
    }
    text = text
        .replace("${JobTable}", table)
        .replace("${MaxConcurrency}", &max_concurrency.to_string())
        .replace("${ExecutionTimeoutSeconds}", "900")
        .replace("${ResultsBucket}", crate::stack::BUCKET)
        .replace("${ResultsPrefix}", MAP_RUN_RESULTS)
        .replace("${StagedJobsPrefix}", STAGED_JOBS);
    let mut definition: Value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    if quick_retries {
        shorten_retries(&mut definition);
    }
    serde_json::to_string_pretty(&definition).map_err(std::io::Error::other)
}

fn shorten_retries(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(retries)) = map.get_mut("Retry") {
                for retry in retries {
                    retry["IntervalSeconds"] = json!(1);
                    retry["BackoffRate"] = json!(1);
                }
            }
            map.values_mut().for_each(shorten_retries);
        }
        Value::Array(items) => items.iter_mut().for_each(shorten_retries),
        _ => {}
    }
}

/// A Step Functions client over moto's JSON protocol (moto does not check signatures).
pub struct StepFunctions {
    endpoint: String,
    http: reqwest::Client,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Execution {
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
    /// The output (succeeded) or `{"error", "cause"}` (failed).
    pub output: Value,
    /// The event history, oldest first.
    pub history: Vec<Value>,
}

impl StepFunctions {
    /// A client for the Step Functions API at `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Calls one operation.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value, String> {
        let answer = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("X-Amz-Target", format!("AWSStepFunctions.{operation}"))
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20261123/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{operation}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{operation}: {e}: {text}"))
    }

    /// Creates the state machine; returns its ARN.
    pub async fn create(&self, name: &str, definition: &str) -> Result<String, String> {
        let out = self
            .call(
                "CreateStateMachine",
                json!({"name": name, "definition": definition, "type": "STANDARD",
                       "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/amzpipe-pipeline")}),
            )
            .await?;
        out["stateMachineArn"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no ARN in {out}"))
    }

    /// Starts an execution and waits (polling) until it ends or `limit` passes.
    pub async fn run(&self, machine: &str, name: &str, input: &Value, limit: Duration) -> Result<Execution, String> {
        let arn = self.start(machine, name, input).await?;
        self.wait(&arn, limit).await
    }

    /// Starts an execution and returns its ARN without waiting for it.
    pub async fn start(&self, machine: &str, name: &str, input: &Value) -> Result<String, String> {
        let started = self
            .call(
                "StartExecution",
                json!({"stateMachineArn": machine, "name": name, "input": input.to_string()}),
            )
            .await?;
        Ok(started["executionArn"].as_str().ok_or("no execution ARN")?.to_owned())
    }

    /// The names of the state machine's executions (moto lists them all; at most 1,000 here).
    pub async fn execution_names(&self, machine: &str) -> Result<Vec<String>, String> {
        let listed = self
            .call(
                "ListExecutions",
                json!({"stateMachineArn": machine, "maxResults": 1000}),
            )
            .await?;
        Ok(listed["executions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Waits (polling) until the execution `arn` ends or `limit` passes.
    pub async fn wait(&self, arn: &str, limit: Duration) -> Result<Execution, String> {
        let name = arn.rsplit(':').next().unwrap_or(arn);
        let begun = Instant::now();
        loop {
            let described = self.call("DescribeExecution", json!({"executionArn": arn})).await?;
            let status = described["status"].as_str().unwrap_or_default().to_owned();
            if status != "RUNNING" {
                let output = match described.get("output").and_then(Value::as_str) {
                    Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                    None => json!({"error": described.get("error"), "cause": described.get("cause")}),
                };
                let history = self
                    .call("GetExecutionHistory", json!({"executionArn": arn, "maxResults": 1000}))
                    .await?;
                let history = history["events"].as_array().cloned().unwrap_or_default();
                return Ok(Execution {
                    status,
                    output,
                    history,
                });
            }
            if begun.elapsed() > limit {
                return Err(format!("execution {name} still RUNNING after {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
