//! One HTTP policy for every Amazon API client: timeouts, retries, throttling, token refresh.
//!
//! - Timeouts on connect and on the whole request ([`Policy`]).
//! - Idempotent calls (GET, DELETE, PUT) are retried on 5xx and network errors with jittered
//!   exponential backoff. A create (POST) is **never** retried blindly: when its outcome is unknown
//!   (network error after sending, 5xx) the call fails with [`ApiError::is_ambiguous`] set and the
//!   adapter looks for the request it may have created ([`ApiClient::create_once`]).
//! - 429 honours `Retry-After` when present; otherwise the per-operation token bucket (the published
//!   usage-plan rate) says how long to wait. A wait up to [`Policy::max_inline_wait`] is slept here;
//!   anything longer is returned as [`ApiError::Throttled`] so the state machine waits instead of a
//!   Lambda.
//! - `x-amzn-RateLimit-Limit`, when Amazon sends it, replaces the operation's rate.
//! - A [`SharedQuota`] (the job table's buckets, shared by every Lambda) is charged before every
//!   attempt of the operations it covers, so retries can never exceed a published usage plan.
//! - An authentication failure (401, or SP-API's 403 `Unauthorized`) refreshes the token once and tries
//!   again; one that survives the fresh token is a configuration error ([`SourceError::NotAuthorized`]),
//!   not an expired token: a missing or wrong Scope, a profile of another region, a missing role.
//!
//! Nothing here logs a token, a body or a URL with a query string.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::adapters::lwa::{LwaError, LwaSession};
use crate::domain::document::{DownloadUrl, InvalidUrl};
use crate::ports::SourceError;

/// A rate-limited API operation: its name (for logs and errors) and its usage plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operation {
    /// The API's operation id, e.g. `createReport`.
    pub name: &'static str,
    /// Sustained requests per second.
    pub rate: f64,
    /// Bucket size: requests allowed at once after a quiet period.
    pub burst: u32,
}

/// Whether repeating a call can have an effect twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, deletes, updates: safe to repeat.
    Idempotent,
    /// Creates: repeating may create a second report or execution.
    Create,
}

/// How the access token travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// SP-API: `x-amz-access-token: Atza|…`.
    AmzAccessToken,
    /// Ads, AMC, Slate: `Authorization: Bearer Atza|…`.
    Bearer,
}

/// Timeouts, retries and waits.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request and its response.
    pub request_timeout: Duration,
    /// Attempts for an idempotent call failing with 5xx or a network error (including the first).
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, with full jitter.
    pub base_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
    /// Longest wait slept inside a call (throttling, backoff); longer waits become [`ApiError::Throttled`].
    pub max_inline_wait: Duration,
    /// Whether document URLs may be plain `http` to a loopback host (the local stack's simulator);
    /// off by default, and in every deployed function.
    pub allow_loopback_http: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_inline_wait: Duration::from_secs(5),
            allow_loopback_http: false,
        }
    }
}

impl Policy {
    /// The longest one call can take under this policy: every attempt running to the request timeout,
    /// plus the most it sleeps between attempts and for throttling (the inline waiting is bounded as a
    /// whole by `max_inline_wait`; longer waits end the call as throttled).
    pub fn worst_case_call(&self) -> Duration {
        self.request_timeout.saturating_mul(self.max_attempts) + self.max_inline_wait
    }
}

/// A failed API call, safe to log: operation names, statuses and Amazon's error text only.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Amazon (or our own bucket) says to wait; the caller should retry after `retry_after`.
    #[error("{operation} is throttled; retry after {} s", retry_after.as_secs())]
    Throttled {
        /// The operation.
        operation: &'static str,
        /// How long to wait.
        retry_after: Duration,
    },
    /// Getting an access token failed.
    #[error(transparent)]
    Lwa(#[from] LwaError),
    /// The API refused the token even after a refresh.
    #[error("{operation} was refused: {message}")]
    Unauthorized {
        /// The operation.
        operation: &'static str,
        /// Amazon's message.
        message: String,
    },
    /// Network trouble or a 5xx after all attempts. For a create, the request may have been created
    /// (`ambiguous`).
    #[error("{operation} failed transiently: {message}")]
    Transient {
        /// The operation.
        operation: &'static str,
        /// What happened.
        message: String,
        /// Whether a create may have taken effect.
        ambiguous: bool,
    },
    /// Any other non-success answer.
    #[error("{operation} answered HTTP {status} {code}: {message}")]
    Status {
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// Amazon's error code, when it sent one.
        code: String,
        /// Amazon's error message.
        message: String,
    },
    /// An id (one Amazon returned, or one of the job's) that cannot be placed in a URL.
    #[error("{message}")]
    UnusableId {
        /// Why, quoting the id's start.
        message: String,
    },
    /// A success answer whose body could not be read.
    #[error("{operation} answered with an unexpected body: {message}")]
    Decode {
        /// The operation.
        operation: &'static str,
        /// The parse error.
        message: String,
    },
}

impl ApiError {
    /// Whether a create may have taken effect although it failed.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Transient { ambiguous: true, .. })
    }

    /// The HTTP status of a [`ApiError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The operation that answered.
    pub operation: &'static str,
    /// Its status (2xx, or a non-2xx the caller asked to see with [`ApiClient::send_accepting`]).
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl ApiResponse {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Decode {
            operation: self.operation,
            message: e.to_string(),
        })
    }
}

/// Amazon's error code and message from any of its error body shapes: SP-API
/// `{"errors":[{code,message,details}]}`, Ads `{code, detail|details}`, AMC `{code, details|message}`,
/// LWA-style `{error, error_description}`.
pub fn describe_error(body: &[u8]) -> (String, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return (String::new(), text.chars().take(300).collect());
    };
    let v = v.get("errors").and_then(|e| e.get(0)).unwrap_or(&v);
    let text = |k: &str| {
        v.get(k).and_then(|x| {
            x.as_str()
                .map(str::to_owned)
                .or_else(|| x.as_i64().map(|n| n.to_string()))
        })
    };
    let code = text("code").or_else(|| text("error")).unwrap_or_default();
    let mut message = [
        "message",
        "detail",
        "details",
        "statusReason",
        "error_description",
        "messageSubject",
    ]
    .iter()
    .filter_map(|k| text(k))
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(": ");
    message.truncate(message.char_indices().nth(500).map_or(message.len(), |(i, _)| i));
    (code, message)
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.001)))
        }
    }
}

/// Per-operation token buckets of one client (one credential set, one process). Limits shared by
/// several Lambdas are enforced in the job table; this one keeps one process polite.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: std::sync::Mutex<HashMap<&'static str, Bucket>>,
}

impl RateLimiter {
    fn with_bucket<T>(&self, op: &Operation, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(op.name).or_insert_with(|| Bucket {
            rate: op.rate,
            burst: f64::from(op.burst.max(1)),
            tokens: f64::from(op.burst.max(1)),
            last: Instant::now(),
        });
        f(bucket)
    }

    /// Takes a token for `op`, or returns how long until one is available.
    pub fn try_acquire(&self, op: &Operation) -> Result<(), Duration> {
        self.with_bucket(op, |b| b.take(Instant::now()))
    }

    /// Empties `op`'s bucket (Amazon said 429) and returns the time until the next token.
    fn drain(&self, op: &Operation) -> Duration {
        self.with_bucket(op, |b| {
            b.refill(Instant::now());
            b.tokens = 0.0;
            Duration::from_secs_f64(1.0 / b.rate)
        })
    }

    /// Applies the rate Amazon announced in `x-amzn-RateLimit-Limit`.
    fn set_rate(&self, op: &Operation, rate: f64) {
        if rate.is_finite() && rate > 0.0 {
            self.with_bucket(op, |b| b.rate = rate);
        }
    }
}

/// What a [`SharedQuota`] answers for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// A token was taken: the request may be sent.
    Granted,
    /// The bucket is empty: the next token comes after this long.
    Wait(Duration),
}

/// A usage plan shared by every process of one credential set (every Lambda, every run), charged
/// before **every HTTP attempt** of every operation — retries after a 5xx, a 429 or a refreshed
/// token included — so that no failure can make the processes together exceed it.
pub trait SharedQuota: Send + Sync {
    /// Takes one token of `op`'s bucket; an error means the quota could not be read (nothing is sent).
    fn charge<'a>(
        &'a self,
        op: &'a Operation,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Charge, String>> + Send + 'a>>;
}

/// An HTTP client of one Amazon API for one credential set, applying the [`Policy`].
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    session: Arc<LwaSession>,
    auth: AuthStyle,
    policy: Policy,
    limiter: Arc<RateLimiter>,
    shared: Option<Arc<dyn SharedQuota>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("auth", &self.auth)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// An HTTP client with the policy's timeouts.
pub fn api_http_client(policy: &Policy) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .connect_timeout(policy.connect_timeout)
        .timeout(policy.request_timeout)
        .user_agent(concat!("amzpipe/", env!("CARGO_PKG_VERSION"), " (Language=Rust)"))
        .build()
        .map_err(|e| ApiError::Transient {
            operation: "client",
            message: e.without_url().to_string(),
            ambiguous: false,
        })
}

impl ApiClient {
    /// A client sending `session`'s tokens in `auth` style.
    pub fn new(http: reqwest::Client, session: Arc<LwaSession>, auth: AuthStyle, policy: Policy) -> Self {
        Self {
            http,
            session,
            auth,
            policy,
            limiter: Arc::new(RateLimiter::default()),
            shared: None,
        }
    }

    /// Charges `quota` before every attempt of the operations it covers (see [`SharedQuota`]).
    pub fn with_shared_quota(mut self, quota: Arc<dyn SharedQuota>) -> Self {
        self.shared = Some(quota);
        self
    }

    /// The LWA session (for the client id header and rotated refresh tokens).
    pub fn session(&self) -> &Arc<LwaSession> {
        &self.session
    }

    /// The underlying HTTP client (for pre-signed URLs, which carry no token).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A document URL this client's answers named, held to the policy: `https`, or plain `http` to a
    /// loopback host where [`Policy::allow_loopback_http`] says so.
    pub fn download_url(&self, url: impl Into<String>) -> Result<DownloadUrl, InvalidUrl> {
        DownloadUrl::parse(url, self.policy.allow_loopback_http)
    }

    /// Sends a request built by `build` (called again for each attempt) and returns a 2xx answer.
    pub async fn send(
        &self,
        op: &Operation,
        method: Method,
        idempotency: Idempotency,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        url: &str,
    ) -> Result<ApiResponse, ApiError> {
        self.send_accepting(op, method, idempotency, build, url, &[]).await
    }

    /// Like [`ApiClient::send`], but also returns answers with a status in `accept` (e.g. Ads' 425)
    /// instead of turning them into errors.
    pub async fn send_accepting(
        &self,
        op: &Operation,
        method: Method,
        idempotency: Idempotency,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        url: &str,
        accept: &[u16],
    ) -> Result<ApiResponse, ApiError> {
        self.exchange(op, method, idempotency, build, url, accept, None).await
    }

    /// Like [`ApiClient::send`], authorised by `token` (a Restricted Data Token) instead of the
    /// session's access token, in the client's [`AuthStyle`]. A refusal is final
    /// ([`ApiError::Unauthorized`] at once): refreshing the session cannot renew a token it did not issue.
    pub async fn send_with_token(
        &self,
        op: &Operation,
        method: Method,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        url: &str,
        token: &SecretString,
    ) -> Result<ApiResponse, ApiError> {
        self.exchange(op, method, Idempotency::Idempotent, build, url, &[], Some(token))
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        op: &Operation,
        method: Method,
        idempotency: Idempotency,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        url: &str,
        accept: &[u16],
        given_token: Option<&SecretString>,
    ) -> Result<ApiResponse, ApiError> {
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            if let Err(wait) = self.limiter.try_acquire(op) {
                self.wait_or_throttle(op, wait, &mut waited).await?;
                continue;
            }
            if let Some(shared) = self.shared.as_ref() {
                match shared.charge(op).await {
                    Ok(Charge::Granted) => {}
                    Ok(Charge::Wait(wait)) => {
                        self.wait_or_throttle(op, wait, &mut waited).await?;
                        continue;
                    }
                    Err(message) => {
                        return Err(ApiError::Transient {
                            operation: op.name,
                            message: format!("the shared usage plan could not be read: {message}"),
                            ambiguous: false,
                        });
                    }
                }
            }
            let token = match given_token {
                Some(token) => token.clone(),
                None => self.session.access_token().await?.token,
            };
            let request = build(self.http.request(method.clone(), url));
            let request = match self.auth {
                AuthStyle::AmzAccessToken => request.header("x-amz-access-token", token.expose_secret()),
                AuthStyle::Bearer => request.bearer_auth(token.expose_secret()),
            };
            let started = Instant::now();
            let result = request.send().await;
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    let connect_failed = e.is_connect();
                    let message = e.without_url().to_string();
                    tracing::warn!(operation = op.name, attempt, error = %message, "request failed");
                    if idempotency == Idempotency::Create || attempt >= self.policy.max_attempts {
                        return Err(ApiError::Transient {
                            operation: op.name,
                            message,
                            ambiguous: idempotency == Idempotency::Create && !connect_failed,
                        });
                    }
                    self.backoff(op, attempt, &mut waited).await?;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| ApiError::Transient {
                operation: op.name,
                message: e.without_url().to_string(),
                ambiguous: idempotency == Idempotency::Create,
            })?;
            tracing::debug!(
                operation = op.name,
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "API call"
            );
            if let Some(rate) = header_f64(&headers, "x-amzn-RateLimit-Limit") {
                self.limiter.set_rate(op, rate);
            }
            if status.is_success() || accept.contains(&status.as_u16()) {
                return Ok(ApiResponse {
                    operation: op.name,
                    status,
                    headers,
                    body,
                });
            }
            let (code, message) = describe_error(&body);
            if status == StatusCode::TOO_MANY_REQUESTS {
                let bucket_wait = self.limiter.drain(op);
                let wait = retry_after(&headers).unwrap_or(bucket_wait);
                tracing::warn!(
                    operation = op.name,
                    retry_after_s = wait.as_secs_f64(),
                    "throttled by Amazon"
                );
                self.wait_or_throttle(op, wait, &mut waited).await?;
                continue;
            }
            if is_auth_failure(self.auth, status, &code) {
                if refreshed || given_token.is_some() {
                    return Err(ApiError::Unauthorized {
                        operation: op.name,
                        message: if message.is_empty() { code } else { message },
                    });
                }
                tracing::info!(
                    operation = op.name,
                    status = status.as_u16(),
                    "token refused; refreshing once"
                );
                self.session.force_refresh().await?;
                refreshed = true;
                continue;
            }
            if status.is_server_error() {
                if idempotency == Idempotency::Create || attempt >= self.policy.max_attempts {
                    return Err(ApiError::Transient {
                        operation: op.name,
                        message: format!("HTTP {status}: {message}"),
                        ambiguous: idempotency == Idempotency::Create,
                    });
                }
                tracing::warn!(
                    operation = op.name,
                    status = status.as_u16(),
                    attempt,
                    "server error; retrying"
                );
                self.backoff(op, attempt, &mut waited).await?;
                continue;
            }
            return Err(ApiError::Status {
                operation: op.name,
                status: status.as_u16(),
                code,
                message,
            });
        }
    }

    /// Runs a create without ever making a second one: when `create` fails ambiguously (the request
    /// may have been created), `find_existing` looks for it first; the create is repeated only when
    /// nothing is found, up to the policy's attempts. A search that fails leaves the outcome unknown:
    /// the create's ambiguous error is returned, never the search's.
    pub async fn create_once<T, C, CF, F, FF>(&self, create: C, find_existing: F) -> Result<T, ApiError>
    where
        C: Fn() -> CF,
        CF: Future<Output = Result<T, ApiError>>,
        F: Fn() -> FF,
        FF: Future<Output = Result<Option<T>, ApiError>>,
    {
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            match create().await {
                Err(e) if e.is_ambiguous() => {
                    tracing::warn!(error = %e, attempt, "create outcome unknown; looking for the request it may have made");
                    match find_existing().await {
                        Ok(Some(found)) => {
                            tracing::info!("found the request created by the earlier attempt; reusing it");
                            return Ok(found);
                        }
                        Ok(None) => {}
                        // The outcome is still unknown: say so, not what the search ran into.
                        Err(search) => {
                            tracing::warn!(error = %search, "the search for the request failed; its outcome stays unknown");
                            return Err(e);
                        }
                    }
                    if attempt >= self.policy.max_attempts {
                        return Err(e);
                    }
                    let op = Operation {
                        name: "create",
                        rate: 1.0,
                        burst: 1,
                    };
                    self.backoff(&op, attempt, &mut waited).await?;
                }
                other => return other,
            }
        }
    }

    async fn backoff(&self, op: &Operation, attempt: u32, waited: &mut Duration) -> Result<(), ApiError> {
        let cap = self
            .policy
            .base_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.policy.max_backoff);
        let wait = cap.mul_f64(fastrand::f64());
        self.wait_or_throttle(op, wait, waited).await
    }

    /// Sleeps `wait` if the call's total inline waiting stays within the policy; otherwise gives up
    /// with [`ApiError::Throttled`].
    async fn wait_or_throttle(&self, op: &Operation, wait: Duration, waited: &mut Duration) -> Result<(), ApiError> {
        if *waited + wait > self.policy.max_inline_wait {
            return Err(ApiError::Throttled {
                operation: op.name,
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
        *waited += wait;
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// An id placed in a URL path as one segment, percent-encoded ([`crate::domain::encode_returned_id`]);
/// an id that cannot be used is [`ApiError::UnusableId`], before any call is made with it.
pub fn path_segment(id: &str) -> Result<String, ApiError> {
    crate::domain::encode_returned_id(id).map_err(|message| ApiError::UnusableId { message })
}

impl From<ApiError> for SourceError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Throttled { retry_after, .. } => SourceError::Throttled { retry_after },
            ApiError::Lwa(e) if e.is_transient() => SourceError::Transient(e.to_string()),
            ApiError::Lwa(e) => SourceError::CredentialsRefused(e.to_string()),
            // Refused with a token refreshed for this very call: not expiry, configuration.
            ApiError::Unauthorized { .. } => SourceError::NotAuthorized(e.to_string()),
            ApiError::Transient { .. } | ApiError::Decode { .. } => SourceError::Transient(e.to_string()),
            ApiError::UnusableId { message } => SourceError::Unusable(message),
            ApiError::Status { status: 404, .. } => SourceError::NotFound(e.to_string()),
            ApiError::Status {
                status: 408 | 409 | 425,
                ..
            } => SourceError::Transient(e.to_string()),
            ApiError::Status { status, .. } if status >= 500 => SourceError::Transient(e.to_string()),
            ApiError::Status { status: 401 | 403, .. } => SourceError::NotAuthorized(e.to_string()),
            ApiError::Status { .. } => SourceError::Invalid(e.to_string()),
        }
    }
}

fn is_auth_failure(style: AuthStyle, status: StatusCode, code: &str) -> bool {
    match style {
        // SP-API answers an expired token with 403 Unauthorized (not 401).
        AuthStyle::AmzAccessToken => {
            status == StatusCode::UNAUTHORIZED
                || (status == StatusCode::FORBIDDEN && matches!(code, "Unauthorized" | "MissingAuthenticationToken"))
        }
        AuthStyle::Bearer => status == StatusCode::UNAUTHORIZED,
    }
}

fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Amazon).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_f64(headers, "retry-after")
        .filter(|s| *s >= 0.0 && s.is_finite())
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_amazon_shape_are_described() {
        let sp = br#"{"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource.","details":""}]}"#;
        assert_eq!(describe_error(sp).0, "QuotaExceeded");
        let ads = br#"{"code":"425","detail":"The Request is a duplicate of : 0b1c"}"#;
        assert_eq!(
            describe_error(ads),
            ("425".into(), "The Request is a duplicate of : 0b1c".into())
        );
        let amc = br#"{"code":400,"details":"Execution with ID x is unavailable for download"}"#;
        assert_eq!(describe_error(amc).0, "400");
        assert_eq!(describe_error(b"<html>oops</html>").1, "<html>oops</html>");
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let now = Instant::now();
        let mut b = Bucket {
            rate: 0.0167,
            burst: 2.0,
            tokens: 2.0,
            last: now,
        };
        assert!(b.take(now).is_ok());
        assert!(b.take(now).is_ok());
        let wait = b.take(now).expect_err("bucket is empty");
        assert!(
            wait > Duration::from_secs(59) && wait < Duration::from_secs(61),
            "{wait:?}"
        );
    }

    #[test]
    fn sp_api_expired_tokens_are_403_unauthorized_and_ads_ones_401() {
        assert!(is_auth_failure(
            AuthStyle::AmzAccessToken,
            StatusCode::FORBIDDEN,
            "Unauthorized"
        ));
        assert!(!is_auth_failure(
            AuthStyle::AmzAccessToken,
            StatusCode::FORBIDDEN,
            "AccessDenied"
        ));
        assert!(is_auth_failure(AuthStyle::Bearer, StatusCode::UNAUTHORIZED, ""));
        assert!(!is_auth_failure(
            AuthStyle::Bearer,
            StatusCode::FORBIDDEN,
            "Unauthorized"
        ));
    }
}
