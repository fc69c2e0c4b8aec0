//! Common to every API: the request as read, faults, logging, authorisation, error bodies, pre-signed URLs.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{Fault, FileBody, Logged, Sim, SimFile, State};

/// A request, read whole (API requests are small).
pub struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) headers: HeaderMap,
    pub(super) query: HashMap<String, String>,
    pub(super) body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(String::new, |p| p.as_str().to_owned());
        let query = req
            .uri()
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            method,
            path,
            headers,
            query,
            body,
        })
    }
}

impl Call {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(super) fn json(&self) -> Result<Value, Response> {
        serde_json::from_slice(&self.body)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")).into_response())
    }
}

// Faults, logging, authorisation.

pub(super) fn api_family(op: &str) -> &str {
    op.split('.').next().unwrap_or(op)
}

pub(super) fn fault_response(op: &str, fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = fault.body.clone().unwrap_or_else(|| match (api_family(op), fault.status) {
        ("sp", 429) => json!({"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource.","details":""}]}),
        ("sp", s) if s >= 500 => json!({"errors":[{"code":"InternalFailure","message":"We encountered an internal error. Please try again.","details":""}]}),
        ("sp", 403) => json!({"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":"The access token you provided has expired."}]}),
        ("lwa", s) if s >= 500 => json!({"error":"server_error","error_description":"Internal server error"}),
        ("lwa", _) => json!({"error":"invalid_grant","error_description":"The request has an invalid grant parameter : refresh_token"}),
        ("ads", 429) | ("amc", 429) | ("slate", 429) => json!({"code":"429","details":"Too Many Requests"}),
        ("ads", _) => json!({"code": fault.status.to_string(), "detail": "Simulated failure"}),
        (_, _) => json!({"code": fault.status.to_string(), "details": "Simulated failure"}),
    });
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = fault.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

pub(super) const LOGGED_HEADERS: [&str; 6] = [
    "content-type",
    "amazon-advertising-api-clientid",
    "amazon-advertising-api-scope",
    "amazon-advertising-api-advertiserid",
    "amazon-advertising-api-marketplaceid",
    "user-agent",
];

/// Runs `handle` for `op` under the state lock, applying scripted faults and logging the exchange.
pub(super) fn run(sim: &Sim, op: &str, call: &Call, handle: impl FnOnce(&mut State, &Sim) -> Response) -> Response {
    let mut state = sim.lock();
    let fault = state.take_fault(op);
    let mut response = match &fault {
        Some(f) if !f.after_effect => fault_response(op, f),
        _ => handle(&mut state, sim),
    };
    if let Some(f) = fault.filter(|f| f.after_effect) {
        response = fault_response(op, &f);
    }
    let mut headers: BTreeMap<String, String> = LOGGED_HEADERS
        .iter()
        .filter_map(|h| call.header(h).map(|v| ((*h).to_owned(), v.to_owned())))
        .collect();
    for h in ["authorization", "x-amz-access-token"] {
        if call.headers.contains_key(h) {
            headers.insert(h.to_owned(), "[sent]".into());
        }
    }
    let body = if op == "lwa.token" {
        "[form with secrets]".to_owned()
    } else {
        String::from_utf8_lossy(&call.body).into_owned()
    };
    let request_id = state.uuid();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    state.log.push(Logged {
        op: op.to_owned(),
        method: call.method.to_string(),
        path: call.path.clone(),
        headers,
        body,
        status: response.status().as_u16(),
    });
    response
}

pub(super) fn valid_token(state: &State, token: &str) -> bool {
    state.access_tokens.get(token).is_some_and(|exp| *exp > state.now())
}

pub(super) fn sp_auth(state: &State, call: &Call) -> Result<(), Response> {
    let Some(token) = call.header("x-amz-access-token") else {
        return Err(sp_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
            "Access to requested resource is denied.",
            "",
        ));
    };
    if valid_token(state, token) {
        Ok(())
    } else {
        Err(sp_error(
            StatusCode::FORBIDDEN,
            "Unauthorized",
            "Access to requested resource is denied.",
            "The access token you provided has expired.",
        ))
    }
}

pub(super) fn bearer_auth(state: &State, call: &Call, detail_key: &str) -> Result<(), Response> {
    let token = call.header("authorization").and_then(|h| h.strip_prefix("Bearer "));
    match token {
        Some(t) if valid_token(state, t) => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, Json(json!({"code": "UNAUTHORIZED", detail_key: "Not authorized to access this resource. The access token is missing, invalid or expired."})))
            .into_response()),
    }
}

pub(super) fn sp_error(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    (
        status,
        Json(json!({"errors":[{"code": code, "message": message, "details": details}]})),
    )
        .into_response()
}

pub(super) fn ads_error(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16().to_string(), "detail": detail})),
    )
        .into_response()
}

pub(super) fn amc_error(status: StatusCode, details: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16().to_string(), "details": details})),
    )
        .into_response()
}

/// Registers a file and returns its S3-style pre-signed URL.
pub(super) fn presign(
    state: &mut State,
    sim: &Sim,
    body: FileBody,
    ttl_secs: i64,
    content_encoding: Option<&'static str>,
) -> String {
    let id = format!("f{}", state.next_id());
    let now = state.now();
    state.files.insert(
        id.clone(),
        SimFile {
            body,
            expires_at: now + chrono::Duration::seconds(ttl_secs),
            content_encoding,
        },
    );
    format!(
        "{}/files/{id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={}&X-Amz-Expires={ttl_secs}&X-Amz-SignedHeaders=host&X-Amz-Signature={:016x}{:016x}",
        sim.base,
        now.format("%Y%m%dT%H%M%SZ"),
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|d| d.and_utc())
        })
}

/// SHA-256 of a document's content as a correct pipeline stores it: a generated report as generated,
/// a gzip document decompressed (every member), a plain one as it is. `None` for what the simulator
/// cannot read back (an encrypted document, a ZIP).
/// The elements of a gzip (or plain) JSON-array document; `None` for anything else.
pub(super) fn json_rows(body: &FileBody) -> Option<Vec<serde_json::Value>> {
    use std::io::Read as _;
    let FileBody::Bytes(b) = body else { return None };
    let mut plain = Vec::new();
    if b.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&b[..]).read_to_end(&mut plain).ok()?;
    } else {
        plain.extend_from_slice(b);
    }
    match serde_json::from_slice(&plain).ok()? {
        serde_json::Value::Array(rows) => Some(rows),
        _ => None,
    }
}

pub(super) fn content_sha256(body: &FileBody) -> Option<String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut sha = sha2::Sha256::new();
    match body {
        // Encrypted or not (the retired 2020-09-04 shape), the content is the same report.
        FileBody::SpReport { bytes, seed, days, .. } => {
            let mut report = super::download::orders_report(*bytes, *seed, *days);
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = report.read(&mut buf).ok()?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
            }
        }
        FileBody::Bytes(b) if b.starts_with(&[0x1f, 0x8b]) => {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&b[..]).read_to_end(&mut plain).ok()?;
            sha.update(&plain);
        }
        FileBody::Bytes(b) if b.starts_with(b"PK") => return None,
        FileBody::Bytes(b) => sha.update(b),
    }
    Some(hex::encode(sha.finalize()))
}

/// Takes a token from the bucket `key` of `buckets` (refilled at `rate` per second up to `burst`,
/// full when first used), as Amazon's throttling does when a request arrives; `false` when there is
/// none (the request is refused, and the refill so far is kept).
pub(super) fn take_token<K: std::hash::Hash + Eq>(
    buckets: &mut HashMap<K, (f64, DateTime<Utc>)>,
    key: K,
    rate: f64,
    burst: f64,
    now: DateTime<Utc>,
) -> bool {
    let (tokens, last) = buckets.get(&key).copied().unwrap_or((burst, now));
    let elapsed = (now - last).num_milliseconds().max(0) as f64 / 1000.0;
    let tokens = (tokens + elapsed * rate).min(burst);
    let taken = tokens >= 1.0;
    buckets.insert(key, (if taken { tokens - 1.0 } else { tokens }, now));
    taken
}

/// A deterministic number from an id: what the simulator generates for a document or an execution
/// depends on it, so the same id always gives the same content.
pub(super) fn seed_of(id: &str) -> u64 {
    id.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}
