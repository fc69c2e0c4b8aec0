//! The simulator's request handlers, one section per API.
//!
//! Guards return the ready error `Response` as `Err` so that handlers can answer early with `?`-like
//! matches; boxing it would only add noise to test code.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Path, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{AdsReport, AmcExecution, AuthCode, Fault, FileBody, Logged, Scenario, Sim, SimFile, SpReport, State};
use crate::fixtures::{CbcEncryptWriter, SpApiOrdersReport, gzip};

/// A request, read whole (API requests are small).
pub struct Call {
    method: Method,
    path: String,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Bytes,
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
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Result<Value, Response> {
        serde_json::from_slice(&self.body)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")).into_response())
    }
}

// ---------------------------------------------------------------------------------------------
// Common: logging, faults, auth, URLs.

fn api_family(op: &str) -> &str {
    op.split('.').next().unwrap_or(op)
}

fn fault_response(op: &str, fault: &Fault) -> Response {
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

const LOGGED_HEADERS: [&str; 6] = [
    "content-type",
    "amazon-advertising-api-clientid",
    "amazon-advertising-api-scope",
    "amazon-advertising-api-advertiserid",
    "amazon-advertising-api-marketplaceid",
    "user-agent",
];

/// Runs `handle` for `op` under the state lock, applying scripted faults and logging the exchange.
fn run(sim: &Sim, op: &str, call: &Call, handle: impl FnOnce(&mut State, &Sim) -> Response) -> Response {
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

fn valid_token(state: &State, token: &str) -> bool {
    state.access_tokens.get(token).is_some_and(|exp| *exp > state.now())
}

fn sp_auth(state: &State, call: &Call) -> Result<(), Response> {
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

fn bearer_auth(state: &State, call: &Call, detail_key: &str) -> Result<(), Response> {
    let token = call.header("authorization").and_then(|h| h.strip_prefix("Bearer "));
    match token {
        Some(t) if valid_token(state, t) => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, Json(json!({"code": "UNAUTHORIZED", detail_key: "Not authorized to access this resource. The access token is missing, invalid or expired."})))
            .into_response()),
    }
}

fn sp_error(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    (
        status,
        Json(json!({"errors":[{"code": code, "message": message, "details": details}]})),
    )
        .into_response()
}

fn ads_error(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16().to_string(), "detail": detail})),
    )
        .into_response()
}

fn amc_error(status: StatusCode, details: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16().to_string(), "details": details})),
    )
        .into_response()
}

/// Registers a file and returns its S3-style pre-signed URL.
fn presign(
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

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|d| d.and_utc())
        })
}

// ---------------------------------------------------------------------------------------------
// LWA

/// How long an authorization code can be exchanged (LWA: 5 minutes).
const AUTH_CODE_TTL_SECS: i64 = 300;

/// `GET /ap/oa`: the consent page, answered as if the user had clicked "Allow" at once: a redirect to
/// `redirect_uri` with a one-time `code` (and `scope`, `state`). A request LWA would refuse is
/// answered 400 with the reason, as LWA's error page does.
pub async fn lwa_consent(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "lwa.consent", &call, |state, _| {
        let q = &call.query;
        let missing: Vec<&str> = ["client_id", "scope", "response_type", "redirect_uri"]
            .into_iter()
            .filter(|k| q.get(*k).is_none_or(String::is_empty))
            .collect();
        if !missing.is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                format!("invalid_request: missing {}", missing.join(", ")),
            )
                .into_response();
        }
        if q.get("response_type").map(String::as_str) != Some("code") {
            return (StatusCode::BAD_REQUEST, "unsupported_response_type").into_response();
        }
        let code = format!("ANsim{}{:x}", state.next_id(), fastrand::u64(..));
        let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
        state.auth_codes.insert(
            code.clone(),
            AuthCode {
                client_id: q.get("client_id").cloned().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                issued: state.now(),
                used: false,
            },
        );
        let mut params = vec![("code", code.as_str())];
        params.push(("scope", q.get("scope").map_or("", String::as_str)));
        if let Some(s) = q.get("state") {
            params.push(("state", s.as_str()));
        }
        let query = serde_urlencoded::to_string(&params).unwrap_or_default();
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = format!("{redirect_uri}{separator}{query}");
        match HeaderValue::from_str(&location) {
            Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
            Err(_) => (StatusCode::BAD_REQUEST, "invalid_request: redirect_uri").into_response(),
        }
    })
}

/// The authorization-code grant: a code from [`lwa_consent`], once, within five minutes, with the
/// same client and redirect URI.
fn lwa_code_grant(state: &mut State, form: &HashMap<String, String>) -> Result<Value, &'static str> {
    let code = form.get("code").ok_or("code")?;
    let now = state.now();
    let issued = state.auth_codes.get_mut(code).ok_or("code")?;
    let fresh = now - issued.issued <= chrono::Duration::seconds(AUTH_CODE_TTL_SECS);
    if issued.used || !fresh || form.get("client_id") != Some(&issued.client_id) {
        return Err("code");
    }
    if form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return Err("redirect_uri");
    }
    issued.used = true;
    let access = format!("Atza|sim{}-{:x}", state.next_id(), fastrand::u64(..));
    let refresh = format!("Atzr|onboarded{}-{:x}", state.next_id(), fastrand::u64(..));
    let ttl = state.config.token_ttl_secs;
    state
        .access_tokens
        .insert(access.clone(), now + chrono::Duration::seconds(ttl));
    Ok(json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": ttl}))
}

pub async fn lwa_token(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "lwa.token", &call, |state, _| {
        let form: HashMap<String, String> = if call
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            serde_json::from_slice(&call.body).unwrap_or_default()
        } else {
            serde_urlencoded::from_bytes(&call.body).unwrap_or_default()
        };
        let error = |status: StatusCode, code: &str, description: &str| {
            (status, Json(json!({"error": code, "error_description": description}))).into_response()
        };
        if form.get("client_id").is_none_or(String::is_empty) || form.get("client_secret").is_none_or(String::is_empty)
        {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            );
        }
        match form.get("grant_type").map(String::as_str) {
            Some("refresh_token") => {
                let Some(refresh) = form.get("refresh_token").filter(|t| t.starts_with("Atzr|")) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The request has an invalid grant parameter : refresh_token",
                    );
                };
                if state.revoked || state.retired_refresh_tokens.contains(refresh) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The request has an invalid grant parameter : refresh_token",
                    );
                }
                let access = format!("Atza|sim{}-{:x}", state.next_id(), fastrand::u64(..));
                let ttl = state.config.token_ttl_secs;
                let expires = state.now() + chrono::Duration::seconds(ttl);
                state.access_tokens.insert(access.clone(), expires);
                let refresh_out = if state.config.rotate_refresh_tokens {
                    state.retired_refresh_tokens.insert(refresh.clone());
                    format!("Atzr|rotated{}-{:x}", state.next_id(), fastrand::u64(..))
                } else {
                    refresh.clone()
                };
                Json(json!({"access_token": access, "refresh_token": refresh_out, "token_type": "bearer", "expires_in": ttl}))
                    .into_response()
            }
            Some("authorization_code") => match lwa_code_grant(state, &form) {
                Ok(grant) => Json(grant).into_response(),
                Err(parameter) => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    &format!("The request has an invalid grant parameter : {parameter}"),
                ),
            },
            Some("client_credentials") => {
                let access = format!("Atza|grantless{}", state.next_id());
                let ttl = state.config.token_ttl_secs;
                let expires = state.now() + chrono::Duration::seconds(ttl);
                state.access_tokens.insert(access.clone(), expires);
                Json(json!({"access_token": access, "token_type": "bearer", "expires_in": ttl})).into_response()
            }
            _ => error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The grant type is not supported",
            ),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// SP-API Reports 2021-06-30

fn sp_plan(op: &str) -> (f64, f64) {
    match op {
        "sp.getReport" => (2.0, 15.0),
        "sp.createReport" | "sp.getReportDocument" => (0.0167, 15.0),
        _ => (0.0222, 10.0),
    }
}

/// The SP-API token bucket of `op`; `Err` is the 429.
fn sp_throttle(state: &mut State, op: &'static str) -> Result<f64, Response> {
    let (rate, burst) = sp_plan(op);
    if !state.config.sp_rate_limits {
        return Ok(rate);
    }
    let now = state.now();
    let (tokens, last) = state.sp_buckets.get(op).copied().unwrap_or((burst, now));
    let elapsed = (now - last).num_milliseconds().max(0) as f64 / 1000.0;
    let tokens = (tokens + elapsed * rate).min(burst);
    if tokens < 1.0 {
        state.sp_buckets.insert(op, (tokens, now));
        return Err(sp_error(
            StatusCode::TOO_MANY_REQUESTS,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
            "",
        ));
    }
    state.sp_buckets.insert(op, (tokens - 1.0, now));
    Ok(rate)
}

fn with_rate(mut response: Response, rate: f64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&rate.to_string()) {
        response.headers_mut().insert("x-amzn-RateLimit-Limit", v);
    }
    response
}

/// [`run`] for an SP-API operation: the token and the operation's usage plan are checked first; the
/// handler gets the plan's rate for `x-amzn-RateLimit-Limit`.
fn sp_run(
    sim: &Sim,
    op: &'static str,
    call: &Call,
    handle: impl FnOnce(&mut State, &Sim, f64) -> Response,
) -> Response {
    run(sim, op, call, |state, sim| {
        match sp_auth(state, call).and_then(|()| sp_throttle(state, op)) {
            Ok(rate) => handle(state, sim, rate),
            Err(r) => r,
        }
    })
}

fn sp_invalid(details: &str) -> Response {
    sp_error(StatusCode::BAD_REQUEST, "InvalidInput", "Invalid input", details)
}

pub async fn sp_create_report(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.createReport", &call, |state, _, rate| {
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        let report_type = body["reportType"].as_str().unwrap_or_default().to_owned();
        if !report_type.starts_with("GET_")
            || !report_type
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return sp_invalid(&format!("Invalid reportType {report_type}."));
        }
        let marketplace_ids: Vec<String> = body["marketplaceIds"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if marketplace_ids.is_empty() || marketplace_ids.len() > 25 {
            return sp_invalid("marketplaceIds must contain between 1 and 25 marketplace ids.");
        }
        let time = |k: &str| -> Result<Option<DateTime<Utc>>, Response> {
            match body.get(k).and_then(Value::as_str) {
                None => Ok(None),
                Some(s) => match DateTime::parse_from_rfc3339(s) {
                    Ok(t) if t.with_timezone(&Utc) <= state.now() => Ok(Some(t.with_timezone(&Utc))),
                    Ok(_) => Err(sp_invalid(&format!("{k} cannot be in the future."))),
                    Err(_) => Err(sp_invalid(&format!("{k} is not a valid ISO 8601 date time."))),
                },
            }
        };
        let (start, end) = match (time("dataStartTime"), time("dataEndTime")) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let id = format!("{}", 383_187_020_000 + state.next_id());
        let outcome = state.outcome(&report_type);
        let created = state.now();
        state.sp_reports.insert(
            id.clone(),
            SpReport {
                report_type,
                marketplace_ids,
                start,
                end,
                created,
                polls: 0,
                outcome,
                cancelled: false,
                document_id: None,
            },
        );
        with_rate(
            (StatusCode::ACCEPTED, Json(json!({"reportId": id}))).into_response(),
            rate,
        )
    })
}

fn sp_status(state: &mut State, id: &str) -> Option<Value> {
    let pps = state.config.polls_per_stage.max(1);
    let uuid = state.uuid();
    let report = state.sp_reports.get_mut(id)?;
    let stage = report.polls / pps;
    report.polls += 1;
    let status = if report.cancelled {
        "CANCELLED"
    } else {
        match stage {
            0 => "IN_QUEUE",
            1 => "IN_PROGRESS",
            _ => match report.outcome.as_str() {
                "FATAL" => "FATAL",
                "CANCELLED" => "CANCELLED",
                _ => "DONE",
            },
        }
    };
    if matches!(status, "DONE" | "FATAL") && report.document_id.is_none() {
        report.document_id = Some(format!("amzn1.spdoc.1.4.na.{uuid}.T3AV6LRMKCN2H8.2501"));
    }
    Some(sp_report_json(id, report, status))
}

fn sp_report_json(id: &str, report: &SpReport, status: &str) -> Value {
    let mut v = json!({
        "reportId": id,
        "reportType": report.report_type,
        "marketplaceIds": report.marketplace_ids,
        "createdTime": iso(report.created),
        "processingStatus": status,
    });
    if let Some(s) = report.start {
        v["dataStartTime"] = json!(iso(s));
    }
    if let Some(e) = report.end {
        v["dataEndTime"] = json!(iso(e));
    }
    if status != "IN_QUEUE" {
        v["processingStartTime"] = json!(iso(report.created));
    }
    if matches!(status, "DONE" | "FATAL" | "CANCELLED") {
        v["processingEndTime"] = json!(iso(report.created));
    }
    if matches!(status, "DONE" | "FATAL")
        && let Some(doc) = &report.document_id
    {
        v["reportDocumentId"] = json!(doc);
    }
    v
}

pub async fn sp_get_report(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    sp_run(&sim, "sp.getReport", &call, |state, _, rate| {
        match sp_status(state, &id) {
            Some(v) => with_rate(Json(v).into_response(), rate),
            None => sp_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested report was not found.",
                "",
            ),
        }
    })
}

/// `GET /sellers/v1/marketplaceParticipations` (Sellers API v1): the marketplaces of the region the
/// simulator plays.
pub async fn sp_marketplace_participations(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "sp.marketplaceParticipations", &call, |state, _| {
        if let Err(r) = sp_auth(state, &call) {
            return r;
        }
        let m = |id: &str, name: &str, cc: &str, currency: &str, language: &str, domain: &str| {
            json!({
                "marketplace": {"id": id, "name": name, "countryCode": cc, "defaultCurrencyCode": currency,
                                "defaultLanguageCode": language, "domainName": domain},
                "participation": {"isParticipating": true, "hasSuspendedListings": false},
            })
        };
        let payload = match state.config.region.as_str() {
            "eu" => vec![
                m(
                    "A1F83G8C2ARO7P",
                    "Amazon.co.uk",
                    "GB",
                    "GBP",
                    "en_GB",
                    "www.amazon.co.uk",
                ),
                m("A1PA6795UKMFR9", "Amazon.de", "DE", "EUR", "de_DE", "www.amazon.de"),
            ],
            "fe" => vec![m(
                "A1VC38T7YXB528",
                "Amazon.co.jp",
                "JP",
                "JPY",
                "ja_JP",
                "www.amazon.co.jp",
            )],
            _ => vec![
                m("ATVPDKIKX0DER", "Amazon.com", "US", "USD", "en_US", "www.amazon.com"),
                m("A2EUQ1WTGCTBG2", "Amazon.ca", "CA", "CAD", "en_CA", "www.amazon.ca"),
            ],
        };
        Json(json!({ "payload": payload })).into_response()
    })
}

pub async fn sp_get_reports(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.getReports", &call, |state, _, rate| {
        let types: Vec<&str> = call
            .query
            .get("reportTypes")
            .map(|t| t.split(',').collect())
            .unwrap_or_default();
        if types.is_empty() && !call.query.contains_key("nextToken") {
            return sp_invalid("reportTypes or nextToken is required.");
        }
        let since = call.query.get("createdSince").and_then(|s| parse_time(s));
        let reports: Vec<Value> = state
            .sp_reports
            .iter()
            .rev()
            .filter(|(_, r)| types.contains(&r.report_type.as_str()) && since.is_none_or(|s| r.created >= s))
            .map(|(id, r)| {
                let status = if r.polls == 0 { "IN_QUEUE" } else { "IN_PROGRESS" };
                sp_report_json(id, r, status)
            })
            .collect();
        with_rate(Json(json!({"reports": reports})).into_response(), rate)
    })
}

pub async fn sp_cancel_report(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    sp_run(&sim, "sp.cancelReport", &call, |state, _, rate| {
        let pps = state.config.polls_per_stage.max(1);
        match state.sp_reports.get_mut(&id) {
            Some(r) if r.polls / pps == 0 && !r.cancelled => {
                r.cancelled = true;
                with_rate(StatusCode::OK.into_response(), rate)
            }
            Some(_) => sp_invalid("Only reports in the IN_QUEUE state can be cancelled."),
            None => sp_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested report was not found.",
                "",
            ),
        }
    })
}

pub async fn sp_get_document(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    sp_run(&sim, "sp.getReportDocument", &call, |state, sim, rate| {
        let Some((report_type, outcome)) = state
            .sp_reports
            .values()
            .find(|r| r.document_id.as_deref() == Some(id.as_str()))
            .map(|r| (r.report_type.clone(), r.outcome.clone()))
        else {
            return sp_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested report document was not found.",
                "",
            );
        };
        let seed = id
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let legacy = state.config.sp_legacy_documents;
        let key = legacy.then(|| {
            let mut k = [0u8; 32];
            let mut iv = [0u8; 16];
            k.iter_mut().chain(iv.iter_mut()).for_each(|b| *b = fastrand::u8(..));
            (k, iv)
        });
        let body = match outcome.as_str() {
            "FATAL" => FileBody::Bytes(gzip(
                json!({"errorDetails": format!("Report {report_type} could not be generated: the requested date range is not supported for this report type.")})
                    .to_string()
                    .as_bytes(),
            ).into()),
            "LATIN1" => FileBody::Bytes(gzip(b"sku\titem-name\tprice\nA-1\tCaf\xe9 cr\xe8me br\xfbl\xe9e\t4.50\nA-2\tM\xfcsli\t3.20\n").into()),
            _ => FileBody::SpReport {
                bytes: state.config.sp_report_bytes,
                seed,
                key,
            },
        };
        let body = match (body, key) {
            (FileBody::Bytes(b), Some((k, iv))) => {
                let mut w = CbcEncryptWriter::new(Vec::new(), &k, &iv);
                let _ = w.write_all(&b);
                FileBody::Bytes(w.finish().unwrap_or_default().into())
            }
            (b, _) => b,
        };
        let encoding = if call
            .query
            .get("enableContentEncodingUrlHeader")
            .is_some_and(|v| v == "true")
        {
            Some("gzip")
        } else {
            Some("identity")
        };
        let ttl = state.config.sp_url_ttl_secs;
        let url = presign(state, sim, body, ttl, encoding);
        let response = match key {
            Some((k, iv)) => json!({"payload": {
                "reportDocumentId": id, "url": url, "compressionAlgorithm": "GZIP",
                "encryptionDetails": {"standard": "AES", "initializationVector": BASE64.encode(iv), "key": BASE64.encode(k)}
            }}),
            None => json!({"reportDocumentId": id, "url": url, "compressionAlgorithm": "GZIP"}),
        };
        with_rate(Json(response).into_response(), rate)
    })
}

const SCHEDULE_PERIODS: [&str; 18] = [
    "PT5M", "PT15M", "PT30M", "PT1H", "PT2H", "PT4H", "PT8H", "PT12H", "P1D", "P2D", "P3D", "PT84H", "P7D", "P14D",
    "P15D", "P18D", "P30D", "P1M",
];

pub async fn sp_create_schedule(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.createReportSchedule", &call, |state, _, _| {
        let mut body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        if !body["period"].as_str().is_some_and(|p| SCHEDULE_PERIODS.contains(&p)) {
            return sp_invalid("period is not valid.");
        }
        if body["reportType"].as_str().is_none() || body["marketplaceIds"].as_array().is_none_or(Vec::is_empty) {
            return sp_invalid("reportType and marketplaceIds are required.");
        }
        let id = format!("{}", 50_000_000 + state.next_id());
        body["reportScheduleId"] = json!(id);
        state.sp_schedules.insert(id.clone(), body);
        (StatusCode::CREATED, Json(json!({"reportScheduleId": id}))).into_response()
    })
}

pub async fn sp_get_schedules(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.getReportSchedules", &call, |state, _, _| {
        let Some(types) = call.query.get("reportTypes") else {
            return sp_invalid("reportTypes is required.");
        };
        let types: Vec<&str> = types.split(',').collect();
        let list: Vec<&Value> = state
            .sp_schedules
            .values()
            .filter(|s| s["reportType"].as_str().is_some_and(|t| types.contains(&t)))
            .collect();
        Json(json!({"reportSchedules": list})).into_response()
    })
}

pub async fn sp_get_schedule(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    sp_run(&sim, "sp.getReportSchedule", &call, |state, _, _| {
        match state.sp_schedules.get(&id) {
            Some(s) => Json(s.clone()).into_response(),
            None => sp_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested schedule was not found.",
                "",
            ),
        }
    })
}

pub async fn sp_cancel_schedule(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    sp_run(&sim, "sp.cancelReportSchedule", &call, |state, _, _| {
        match state.sp_schedules.remove(&id) {
            Some(_) => StatusCode::OK.into_response(),
            None => sp_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested schedule was not found.",
                "",
            ),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Amazon Ads: profiles and reporting v3

fn profiles(region: &str) -> Value {
    let p = |id: i64, cc: &str, cur: &str, tz: &str, mkt: &str, kind: &str, name: &str| {
        json!({"profileId": id, "countryCode": cc, "currencyCode": cur, "dailyBudget": 999_999_999.0, "timezone": tz,
               "accountInfo": {"marketplaceStringId": mkt, "id": format!("A{id}"), "type": kind, "name": name, "validPaymentMethod": true}})
    };
    match region {
        "eu" => json!([
            p(
                3_234_567_890,
                "UK",
                "GBP",
                "Europe/London",
                "A1F83G8C2ARO7P",
                "seller",
                "Demo Brand UK"
            ),
            p(
                3_234_567_891,
                "DE",
                "EUR",
                "Europe/Berlin",
                "A1PA6795UKMFR9",
                "seller",
                "Demo Brand DE"
            ),
        ]),
        "fe" => json!([p(
            4_234_567_890,
            "JP",
            "JPY",
            "Asia/Tokyo",
            "A1VC38T7YXB528",
            "seller",
            "Demo Brand JP"
        )]),
        _ => json!([
            p(
                1_234_567_890,
                "US",
                "USD",
                "America/Los_Angeles",
                "ATVPDKIKX0DER",
                "seller",
                "Demo Brand US"
            ),
            p(
                1_234_567_891,
                "CA",
                "CAD",
                "America/Toronto",
                "A2EUQ1WTGCTBG2",
                "seller",
                "Demo Brand CA"
            ),
            p(
                2_234_567_890,
                "US",
                "USD",
                "America/New_York",
                "ATVPDKIKX0DER",
                "vendor",
                "Demo Vendor US"
            ),
        ]),
    }
}

fn ads_guard(state: &State, call: &Call, scoped: bool) -> Result<(), Response> {
    bearer_auth(state, call, "detail")?;
    if call.header("amazon-advertising-api-clientid").is_none_or(str::is_empty) {
        return Err(ads_error(
            StatusCode::BAD_REQUEST,
            "Amazon-Advertising-API-ClientId header is missing",
        ));
    }
    if scoped {
        let Some(scope) = call.header("amazon-advertising-api-scope") else {
            return Err(ads_error(StatusCode::UNAUTHORIZED, "Scope header is missing"));
        };
        let known = profiles(&state.config.region).as_array().is_some_and(|a| {
            a.iter()
                .any(|p| p["profileId"].as_i64().is_some() && p["profileId"].as_i64() == scope.parse().ok())
        });
        if !known {
            return Err(ads_error(StatusCode::UNAUTHORIZED, "Not authorized to access scope"));
        }
    }
    Ok(())
}

pub async fn ads_profiles(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "ads.profiles", &call, |state, _| {
        match ads_guard(state, &call, false) {
            Ok(()) => Json(profiles(&state.config.region)).into_response(),
            Err(r) => r,
        }
    })
}

fn ads_stage(state: &State, r: &AdsReport) -> &'static str {
    let pps = state.config.polls_per_stage.max(1);
    if r.deleted {
        return "CANCELLED";
    }
    match r.polls / pps {
        0 => "PENDING",
        1 => "PROCESSING",
        _ if r.outcome == "FAILED" => "FAILED",
        _ => "COMPLETED",
    }
}

fn ads_report_json(id: &str, r: &AdsReport, status: &str, url: Option<(String, DateTime<Utc>, u64)>) -> Value {
    let mut v = json!({
        "reportId": id,
        "name": r.body.get("name").cloned().unwrap_or(Value::Null),
        "status": status,
        "configuration": r.body["configuration"],
        "startDate": r.body["startDate"],
        "endDate": r.body["endDate"],
        "createdAt": iso(r.created),
        "updatedAt": iso(r.created),
        "generatedAt": Value::Null,
        "fileSize": Value::Null,
        "url": Value::Null,
        "urlExpiresAt": Value::Null,
        "failureReason": Value::Null,
    });
    if let Some((url, expires, size)) = url {
        v["url"] = json!(url);
        v["urlExpiresAt"] = json!(iso(expires));
        v["fileSize"] = json!(size);
        v["generatedAt"] = json!(iso(r.created));
    }
    if status == "FAILED" {
        v["failureReason"] = json!("Report generation failed due to an internal error. Please retry.");
    }
    v
}

/// The part of a create that makes two requests duplicates (the time unit is ignored, as Amazon does).
fn ads_identity(profile: &str, body: &Value) -> Value {
    let c = &body["configuration"];
    let sorted = |v: &Value| {
        let mut a: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        a.sort();
        a
    };
    json!([
        profile,
        body["startDate"],
        body["endDate"],
        c["adProduct"],
        c["reportTypeId"],
        sorted(&c["columns"]),
        sorted(&c["groupBy"]),
        c["filters"]
    ])
}

pub async fn ads_create_report(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "ads.createReport", &call, |state, _| {
        if let Err(r) = ads_guard(state, &call, true) {
            return r;
        }
        if call.header("content-type") != Some("application/vnd.createasyncreportrequest.v3+json") {
            return ads_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type");
        }
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        let date = |k: &str| {
            body[k]
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        };
        let (Some(start), Some(end)) = (date("startDate"), date("endDate")) else {
            return ads_error(
                StatusCode::BAD_REQUEST,
                "startDate and endDate must be dates (YYYY-MM-DD)",
            );
        };
        if end < start || (end - start).num_days() + 1 > 31 {
            return ads_error(
                StatusCode::BAD_REQUEST,
                "The report date range must be between 1 and 31 days",
            );
        }
        if (state.now().date_naive() - start).num_days() > 95 {
            return ads_error(StatusCode::BAD_REQUEST, "Report date is too far in the past");
        }
        let c = &body["configuration"];
        for k in ["adProduct", "reportTypeId", "timeUnit", "format"] {
            if c[k].as_str().is_none() {
                return ads_error(StatusCode::BAD_REQUEST, &format!("configuration.{k} is required"));
            }
        }
        if c["columns"].as_array().is_none_or(Vec::is_empty) || c["groupBy"].as_array().is_none_or(Vec::is_empty) {
            return ads_error(
                StatusCode::BAD_REQUEST,
                "configuration.columns and configuration.groupBy are required",
            );
        }
        let profile = call
            .header("amazon-advertising-api-scope")
            .unwrap_or_default()
            .to_owned();
        let identity = ads_identity(&profile, &body);
        let duplicate = state
            .ads_reports
            .iter()
            .find(|(_, r)| {
                ads_identity(&r.profile_id, &r.body) == identity
                    && matches!(ads_stage(state, r), "PENDING" | "PROCESSING")
            })
            .map(|(id, _)| id.clone());
        if let Some(existing) = duplicate {
            return ads_error(
                StatusCode::from_u16(425).unwrap_or(StatusCode::CONFLICT),
                &format!("The Request is a duplicate of : {existing}"),
            );
        }
        let id = state.uuid();
        let outcome = state.outcome(c["reportTypeId"].as_str().unwrap_or_default());
        let report = AdsReport {
            profile_id: profile,
            body,
            created: state.now(),
            polls: 0,
            outcome,
            deleted: false,
        };
        let v = ads_report_json(&id, &report, "PENDING", None);
        state.ads_reports.insert(id, report);
        Json(v).into_response()
    })
}

fn ads_document(r: &AdsReport, rows: u32) -> Bytes {
    let columns: Vec<String> = r.body["configuration"]["columns"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let start = r.body["startDate"].as_str().unwrap_or("2026-01-01").to_owned();
    let mut out = String::from("[");
    for i in 0..rows {
        if i > 0 {
            out.push(',');
        }
        let fields: Vec<String> = columns
            .iter()
            .map(|c| {
                let v = match c.as_str() {
                    "date" | "startDate" | "endDate" => json!(start),
                    "campaignId" | "adGroupId" => json!(100_000 + i % 37),
                    "campaignName" => json!(format!("Campaign {}", i % 37)),
                    "cost" | "sales1d" | "sales7d" | "sales14d" | "sales30d" => json!(f64::from(i % 997) / 10.0),
                    _ => json!(i * 7 % 1000),
                };
                format!("{}:{}", json!(c), v)
            })
            .collect();
        out.push('{');
        out.push_str(&fields.join(","));
        out.push('}');
    }
    out.push(']');
    gzip(out.as_bytes()).into()
}

pub async fn ads_get_report(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    run(&sim, "ads.getReport", &call, |state, sim| {
        if let Err(r) = ads_guard(state, &call, true) {
            return r;
        }
        state.ads_reads += 1;
        let every = state.config.ads_spurious_401_every;
        if every > 0 && state.ads_reads % every == 0 {
            return ads_error(StatusCode::UNAUTHORIZED, "Not authorized to access this resource");
        }
        let Some(report) = state.ads_reports.get(&id).cloned() else {
            return ads_error(StatusCode::NOT_FOUND, "Report not found");
        };
        let status = ads_stage(state, &report);
        let url = if status == "COMPLETED" {
            let doc = ads_document(&report, state.config.ads_rows);
            let size = doc.len() as u64;
            let ttl = state.config.ads_url_ttl_secs;
            let expires = state.now() + chrono::Duration::seconds(ttl);
            Some((presign(state, sim, FileBody::Bytes(doc), ttl, None), expires, size))
        } else {
            None
        };
        if let Some(r) = state.ads_reports.get_mut(&id) {
            r.polls += 1;
        }
        Json(ads_report_json(&id, &report, status, url)).into_response()
    })
}

pub async fn ads_delete_report(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    run(&sim, "ads.deleteReport", &call, |state, _| {
        if let Err(r) = ads_guard(state, &call, true) {
            return r;
        }
        match state.ads_reports.get_mut(&id) {
            Some(r) => {
                r.deleted = true;
                Json(json!({"reportId": id, "status": "CANCELLED"})).into_response()
            }
            None => ads_error(StatusCode::NOT_FOUND, "Report not found"),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// AMC

const MAX_RUNNING: usize = 10;

/// [`run`] for an AMC operation: the AMC headers, token and instance are checked first.
fn amc_run(
    sim: &Sim,
    op: &str,
    call: &Call,
    instance: &str,
    handle: impl FnOnce(&mut State, &Sim) -> Response,
) -> Response {
    run(sim, op, call, |state, sim| match amc_guard(state, call, instance) {
        Ok(()) => handle(state, sim),
        Err(r) => r,
    })
}

fn amc_guard(state: &State, call: &Call, instance: &str) -> Result<(), Response> {
    bearer_auth(state, call, "details")?;
    for h in [
        "amazon-advertising-api-clientid",
        "amazon-advertising-api-advertiserid",
        "amazon-advertising-api-marketplaceid",
    ] {
        if call.header(h).is_none_or(str::is_empty) {
            return Err(amc_error(
                StatusCode::BAD_REQUEST,
                &format!("Missing required header {h}"),
            ));
        }
    }
    if !instance.starts_with("amc") || !instance.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(amc_error(
            StatusCode::NOT_FOUND,
            &format!("Instance {instance} was not found"),
        ));
    }
    Ok(())
}

/// An execution's status, advancing it one poll when `poll` (the 10-running limit keeps extra
/// executions PENDING).
fn amc_status(state: &mut State, id: &str, poll: bool) -> Option<&'static str> {
    let pps = state.config.polls_per_stage.max(1);
    let running = |state: &State, instance: &str| {
        state
            .amc_executions
            .values()
            .filter(|e| {
                e.instance_id == instance
                    && !e.cancelled
                    && e.started_at_poll.is_some_and(|started| e.polls < started + pps)
            })
            .count()
    };
    let e = state.amc_executions.get(id)?.clone();
    if e.cancelled {
        return Some("CANCELLED");
    }
    let status = match e.started_at_poll {
        None if e.polls < pps => "PENDING",
        None => {
            if running(state, &e.instance_id) < MAX_RUNNING {
                if let Some(x) = state.amc_executions.get_mut(id) {
                    x.started_at_poll = Some(x.polls);
                }
                "RUNNING"
            } else {
                "PENDING"
            }
        }
        Some(s) if e.polls < s + pps => "RUNNING",
        Some(_) => match e.outcome.as_str() {
            "FAILED" => "FAILED",
            "REJECTED" => "REJECTED",
            _ => "SUCCEEDED",
        },
    };
    if poll && let Some(x) = state.amc_executions.get_mut(id) {
        x.polls += 1;
    }
    Some(status)
}

fn amc_json(id: &str, e: &AmcExecution, status: &str, include_workflow: bool) -> Value {
    let mut v = json!({
        "workflowExecutionId": id,
        "workflowId": e.workflow_id,
        "status": status,
        "createTime": e.created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "lastUpdatedTime": e.created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "timeWindowStart": e.body.get("timeWindowStart").and_then(Value::as_str).map(|s| format!("{s}Z")),
        "timeWindowEnd": e.body.get("timeWindowEnd").and_then(Value::as_str).map(|s| format!("{s}Z")),
        "timeWindowTimeZoneOriginal": e.body.get("timeWindowTimeZone"),
        "workflowExecutionTimeoutSeconds": e.body.get("workflowExecutionTimeoutSeconds").cloned().unwrap_or(json!(21600)),
        "parameterValues": e.body.get("parameterValues").cloned().unwrap_or(json!({})),
        "outputS3URI": format!("s3://amc-{}-sim/workflow={}/schedule=adhoc/", e.instance_id, e.workflow_id),
    });
    if matches!(status, "FAILED" | "REJECTED") {
        v["statusReason"] = json!("Query failed: column reach does not exist in table dsp_impressions");
    }
    if include_workflow && let Some(sql) = &e.sql {
        v["sqlQuery"] = json!(sql);
    }
    v
}

fn amc_wrap(state: &State, v: Value) -> Value {
    if state.config.amc_wrapped {
        json!({"workflowExecution": v})
    } else {
        v
    }
}

pub async fn amc_create_execution(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.createExecution", &call, &instance, |state, _| {
        if call.header("content-type") != Some("application/vnd.amcworkflowexecutions.v1+json") {
            return amc_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported content type");
        }
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        let sql = body
            .get("workflow")
            .and_then(|w| w.get("sqlQuery"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let workflow_id = match (&sql, body.get("workflowId").and_then(Value::as_str)) {
            (Some(sql), _) if sql.contains(['\n', '\r', '\t']) => {
                return amc_error(
                    StatusCode::BAD_REQUEST,
                    "sqlQuery must be a single line (no newlines or tabs)",
                );
            }
            (Some(_), _) => format!("transient_{}", state.uuid()),
            (None, Some(id)) if state.amc_workflows.contains_key(id) => id.to_owned(),
            (None, Some(id)) => {
                return amc_error(StatusCode::NOT_FOUND, &format!("Workflow with ID {id} does not exist."));
            }
            (None, None) => {
                return amc_error(
                    StatusCode::BAD_REQUEST,
                    "workflowId is required if a sqlQuery is not provided",
                );
            }
        };
        if body.get("timeWindowType").and_then(Value::as_str) == Some("EXPLICIT") {
            for k in ["timeWindowStart", "timeWindowEnd"] {
                if body
                    .get(k)
                    .and_then(Value::as_str)
                    .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
                    .is_none()
                {
                    return amc_error(
                        StatusCode::BAD_REQUEST,
                        &format!("{k} must be yyyy-MM-ddTHH:mm:ss with EXPLICIT windows"),
                    );
                }
            }
        }
        let key = if sql.is_some() {
            "adhoc".to_owned()
        } else {
            workflow_id.clone()
        };
        let outcome = state.outcome(&key);
        let sql = sql.or_else(|| {
            state
                .amc_workflows
                .get(&workflow_id)
                .and_then(|w| w["sqlQuery"].as_str().map(str::to_owned))
        });
        let id = state.uuid();
        let e = AmcExecution {
            instance_id: instance.clone(),
            workflow_id,
            sql,
            body,
            created: state.now(),
            polls: 0,
            outcome,
            cancelled: false,
            started_at_poll: None,
        };
        let v = amc_json(&id, &e, "PENDING", false);
        state.amc_executions.insert(id, e);
        Json(amc_wrap(state, v)).into_response()
    })
}

pub async fn amc_list_executions(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.listExecutions", &call, &instance, |state, _| {
        let since = call
            .query
            .get("minCreationTime")
            .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok());
        let include = call.query.get("includeWorkflow").is_some_and(|v| v == "true");
        let limit: usize = call
            .query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(25)
            .clamp(1, 100);
        let offset: usize = call.query.get("nextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        let ids: Vec<String> = state
            .amc_executions
            .iter()
            .filter(|(_, e)| e.instance_id == instance && since.is_none_or(|s| e.created.naive_utc() >= s))
            .map(|(id, _)| id.clone())
            .collect();
        let page: Vec<Value> = ids
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|id| {
                let status = amc_status(state, id, false)?;
                let e = state.amc_executions.get(id)?;
                Some(amc_json(id, e, status, include))
            })
            .collect();
        let next = (offset + limit < ids.len()).then(|| (offset + limit).to_string());
        Json(json!({"executions": page, "nextToken": next})).into_response()
    })
}

pub async fn amc_get_execution(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.getExecution", &call, &instance, |state, _| {
        let include = call.query.get("includeWorkflow").is_some_and(|v| v == "true");
        match amc_status(state, &id, true) {
            Some(status) => {
                let Some(e) = state.amc_executions.get(&id) else {
                    return amc_error(StatusCode::NOT_FOUND, "Execution not found");
                };
                let v = amc_json(&id, e, status, include);
                Json(amc_wrap(state, v)).into_response()
            }
            None => amc_error(StatusCode::NOT_FOUND, &format!("Execution with ID {id} was not found")),
        }
    })
}

fn amc_cancel(state: &mut State, id: &str) -> Response {
    match state.amc_executions.get_mut(id) {
        Some(e) => {
            e.cancelled = true;
            Json(json!({"workflowExecutionId": id, "status": "CANCELLED"})).into_response()
        }
        None => amc_error(StatusCode::NOT_FOUND, &format!("Execution with ID {id} was not found")),
    }
}

pub async fn amc_update_execution(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.cancelExecution", &call, &instance, |state, _| {
        match call.json() {
            Ok(b) if b["status"] == "CANCELLED" => amc_cancel(state, &id),
            Ok(_) => amc_error(StatusCode::BAD_REQUEST, "Only status CANCELLED can be set"),
            Err(r) => r,
        }
    })
}

pub async fn amc_delete_execution(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.cancelExecution", &call, &instance, |state, _| {
        amc_cancel(state, &id)
    })
}

pub async fn amc_download_urls(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.downloadUrls", &call, &instance, |state, sim| {
        if amc_status(state, &id, false) != Some("SUCCEEDED") {
            return amc_error(
                StatusCode::BAD_REQUEST,
                &format!("Execution with ID {id} is unavailable for download"),
            );
        }
        let (files, rows, ttl) = (
            state.config.amc_files.max(1),
            state.config.amc_rows,
            state.config.amc_url_ttl_secs,
        );
        let mut urls = Vec::new();
        for f in 0..files {
            let mut csv = String::from("campaign,impressions,reach,\"notes\"\n");
            for i in 0..rows {
                csv.push_str(&format!(
                    "Campaign {},{},{},\"part {f}, row {i}\"\n",
                    i % 23,
                    i * 13 % 5000,
                    i * 7 % 3000
                ));
            }
            urls.push(presign(state, sim, FileBody::Bytes(csv.into_bytes().into()), ttl, None));
        }
        let meta = presign(
            state,
            sim,
            FileBody::Bytes(Bytes::from_static(b"{\"sqlQuery\":\"\"}")),
            ttl,
            None,
        );
        Json(json!({"downloadUrls": urls, "metadataDownloadUrls": [meta], "nextToken": Value::Null})).into_response()
    })
}

/// The AMC account of the simulated advertiser.
pub const AMC_ACCOUNT: &str = "ENTITY1AA1AA11AAA1";

/// `GET /amc/accounts`: the AMC accounts the token can reach.
pub async fn amc_accounts(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "amc.accounts", &call, |state, _| {
        if let Err(r) = bearer_auth(state, &call, "details") {
            return r;
        }
        Json(json!({
            "amcAccounts": [{"accountId": AMC_ACCOUNT, "accountName": "Demo Brand AMC", "marketplaceId": "ATVPDKIKX0DER"}],
            "nextToken": Value::Null,
        }))
        .into_response()
    })
}

/// `GET /amc/instances`: the instances of the account named by the AdvertiserId header.
pub async fn amc_instances(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "amc.instances", &call, |state, _| {
        if let Err(r) = bearer_auth(state, &call, "details") {
            return r;
        }
        for h in [
            "amazon-advertising-api-advertiserid",
            "amazon-advertising-api-marketplaceid",
        ] {
            if call.header(h).is_none_or(str::is_empty) {
                return amc_error(StatusCode::BAD_REQUEST, &format!("Missing required header {h}"));
            }
        }
        if call.header("amazon-advertising-api-advertiserid") != Some(AMC_ACCOUNT) {
            return amc_error(StatusCode::FORBIDDEN, "Not authorized to access this AMC account");
        }
        Json(json!({
            "instances": [
                {"instanceId": "amcdemo01", "instanceName": "Demo brand", "instanceType": "STANDARD", "creationStatus": "COMPLETED"},
                {"instanceId": "amcsandbox01", "instanceName": "Sandbox", "instanceType": "SANDBOX", "creationStatus": "COMPLETED"},
            ],
            "nextToken": Value::Null,
        }))
        .into_response()
    })
}

pub async fn amc_create_workflow(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.workflows", &call, &instance, |state, _| {
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(id) = body["workflowId"].as_str().map(str::to_owned) else {
            return amc_error(StatusCode::BAD_REQUEST, "workflowId is required");
        };
        if body["sqlQuery"].as_str().is_none_or(|s| s.contains('\n')) {
            return amc_error(
                StatusCode::BAD_REQUEST,
                "sqlQuery is required and must be a single line",
            );
        }
        if state.amc_workflows.contains_key(&id) {
            return amc_error(
                StatusCode::BAD_REQUEST,
                &format!("Workflow with ID {id} already exists."),
            );
        }
        state.amc_workflows.insert(id.clone(), body);
        Json(json!({"workflowId": id})).into_response()
    })
}

pub async fn amc_list_workflows(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.workflows", &call, &instance, |state, _| {
        Json(json!({"workflows": state.amc_workflows.values().collect::<Vec<_>>(), "nextToken": Value::Null}))
            .into_response()
    })
}

pub async fn amc_get_workflow(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.workflows", &call, &instance, |state, _| {
        match state.amc_workflows.get(&id) {
            Some(w) => Json(w.clone()).into_response(),
            None => amc_error(StatusCode::NOT_FOUND, &format!("Workflow with ID {id} does not exist.")),
        }
    })
}

pub async fn amc_update_workflow(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.workflows", &call, &instance, |state, _| {
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        if !state.amc_workflows.contains_key(&id) {
            return amc_error(StatusCode::NOT_FOUND, &format!("Workflow with ID {id} does not exist."));
        }
        state.amc_workflows.insert(id.clone(), body);
        Json(json!({"workflowId": id})).into_response()
    })
}

pub async fn amc_delete_workflow(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.workflows", &call, &instance, |state, _| {
        match state.amc_workflows.remove(&id) {
            Some(_) => Json(json!({"workflowId": id})).into_response(),
            None => amc_error(StatusCode::NOT_FOUND, &format!("Workflow with ID {id} does not exist.")),
        }
    })
}

pub async fn amc_create_schedule(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.schedules", &call, &instance, |state, _| {
        let mut body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        if !matches!(body["aggregationPeriod"].as_str(), Some("Daily" | "Weekly"))
            || body["workflowId"].as_str().is_none()
        {
            return amc_error(
                StatusCode::BAD_REQUEST,
                "workflowId and aggregationPeriod (Daily|Weekly) are required",
            );
        }
        let id = format!("schedule-{}", state.next_id());
        body["scheduleId"] = json!(id);
        state.amc_schedules.insert(id, body.clone());
        Json(body).into_response()
    })
}

pub async fn amc_list_schedules(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.schedules", &call, &instance, |state, _| {
        Json(json!({"schedules": state.amc_schedules.values().collect::<Vec<_>>()})).into_response()
    })
}

pub async fn amc_delete_schedule(
    AxState(sim): AxState<Sim>,
    Path((instance, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    amc_run(&sim, "amc.schedules", &call, &instance, |state, _| {
        match state.amc_schedules.remove(&id) {
            Some(_) => StatusCode::OK.into_response(),
            None => amc_error(StatusCode::NOT_FOUND, "Schedule not found"),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Prime Video Slate

fn slate_page(sim: &Sim, call: &Call, path: &str, items: Vec<Value>) -> Response {
    let limit: usize = call
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 500);
    let offset: usize = call.query.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let mut rest: Vec<(String, String)> = call
        .query
        .iter()
        .filter(|(k, _)| k.as_str() != "limit" && k.as_str() != "offset")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    rest.sort();
    rest.push(("offset".into(), (offset + limit).to_string()));
    rest.push(("limit".into(), limit.to_string()));
    let next = (offset + limit < total).then(|| {
        format!(
            "{}{path}?{}",
            sim.base,
            serde_urlencoded::to_string(&rest).unwrap_or_default()
        )
    });
    Json(json!({"total": total, "next": next, "data": data})).into_response()
}

fn slate_list(sim: &Sim, call: &Call, op: &str, items: Vec<Value>) -> Response {
    let path = call.path.split('?').next().unwrap_or_default().to_owned();
    run(sim, op, call, |state, sim| match bearer_auth(state, call, "message") {
        Ok(()) => slate_page(sim, call, &path, items),
        Err(r) => r,
    })
}

pub async fn slate_accounts(AxState(sim): AxState<Sim>, call: Call) -> Response {
    let items = vec![
        json!({"id": "acct-1", "name": "Demo Studio"}),
        json!({"id": "acct-2", "name": "Demo Channel"}),
    ];
    slate_list(&sim, &call, "slate.accounts", items)
}

pub async fn slate_groups(AxState(sim): AxState<Sim>, Path(_account): Path<String>, call: Call) -> Response {
    slate_list(
        &sim,
        &call,
        "slate.groups",
        vec![json!({"id": "grp-1", "name": "Channels"})],
    )
}

pub async fn slate_businesses(AxState(sim): AxState<Sim>, Path(_p): Path<(String, String)>, call: Call) -> Response {
    slate_list(
        &sim,
        &call,
        "slate.businesses",
        vec![json!({"id": "biz-1", "name": "Demo Channel US"})],
    )
}

pub async fn slate_datasets(
    AxState(sim): AxState<Sim>,
    Path(_p): Path<(String, String, String)>,
    call: Call,
) -> Response {
    let items = vec![
        json!({"id": "playback", "name": "Playback events"}),
        json!({"id": "subscription", "name": "Subscription events"}),
    ];
    slate_list(&sim, &call, "slate.datasets", items)
}

fn slate_zip(dataset: &str, file_id: &str, published: DateTime<Utc>, rows: u32) -> Bytes {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let _ = w.start_file(
        format!("{dataset}/{file_id}.csv"),
        zip::write::SimpleFileOptions::default(),
    );
    let _ = writeln!(w, "event_id,title_id,minutes_viewed,last_update_time_utc,is_deleted");
    for i in 0..rows {
        let _ = writeln!(
            w,
            "{file_id}-{i},T{:04},{},{},{}",
            i % 97,
            i % 120,
            iso(published),
            u8::from(i % 50 == 0)
        );
    }
    w.finish().map(|c| Bytes::from(c.into_inner())).unwrap_or_default()
}

pub async fn slate_files(
    AxState(sim): AxState<Sim>,
    Path((_a, _g, _b, dataset)): Path<(String, String, String, String)>,
    call: Call,
) -> Response {
    let path = call.path.split('?').next().unwrap_or_default().to_owned();
    run(&sim, "slate.files", &call, |state, sim| {
        if let Err(r) = bearer_auth(state, &call, "message") {
            return r;
        }
        let (Some(start), Some(end)) = (
            call.query.get("startDateTime").and_then(|s| parse_time(s)),
            call.query.get("endDateTime").and_then(|s| parse_time(s)),
        ) else {
            return amc_error(
                StatusCode::BAD_REQUEST,
                "startDateTime and endDateTime are required (ISO 8601)",
            );
        };
        let now = state.now();
        let per_day = i64::from(state.config.slate_files_per_day.max(1));
        let step = 86_400 / per_day;
        let mut items = Vec::new();
        let mut t = start.date_naive().and_hms_opt(0, 0, 0).map_or(start, |d| d.and_utc())
            + chrono::Duration::seconds(step / 2);
        while t < end && t <= now && items.len() < 10_000 {
            if t >= start {
                let id = format!("{dataset}-{}", t.format("%Y%m%dT%H%M%S"));
                let body = slate_zip(&dataset, &id, t, state.config.slate_rows);
                let size = body.len();
                let ttl = state.config.slate_url_ttl_secs;
                let url = presign(state, sim, FileBody::Bytes(body), ttl, None);
                items.push(
                    json!({"id": id, "name": format!("{id}.zip"), "timestamp": iso(t), "size": size, "url": url,
                                  "urlExpiresAt": iso(now + chrono::Duration::seconds(ttl))}),
                );
            }
            t += chrono::Duration::seconds(step);
        }
        slate_page(sim, &call, &path, items)
    })
}

// ---------------------------------------------------------------------------------------------
// Pre-signed downloads

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

/// Writes into a channel as a download body, in chunks of 64 KiB.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 << 10 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

fn generated_report(bytes: u64, seed: u64, key: Option<([u8; 32], [u8; 16])>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter { tx, buf: Vec::new() };
        let result = (|| -> std::io::Result<()> {
            let mut report = SpApiOrdersReport::new(bytes, seed);
            match key {
                Some((k, iv)) => {
                    let mut gz =
                        flate2::write::GzEncoder::new(CbcEncryptWriter::new(out, &k, &iv), flate2::Compression::new(6));
                    std::io::copy(&mut report, &mut gz)?;
                    gz.finish()?.finish()?.flush()
                }
                None => {
                    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
                    std::io::copy(&mut report, &mut gz)?;
                    gz.finish()?.flush()
                }
            }
        })();
        if let Err(e) = result {
            tracing::debug!(error = %e, "generated download ended early");
        }
    });
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub async fn download(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    let mut found: Option<SimFile> = None;
    let response = run(&sim, "file.download", &call, |state, _| match state.files.get(&id) {
        None => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."),
        Some(f) if f.expires_at < state.now() => s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"),
        Some(f) => {
            found = Some(f.clone());
            StatusCode::OK.into_response()
        }
    });
    let Some(file) = found.filter(|_| response.status() == StatusCode::OK) else {
        return response;
    };
    let mut response = match file.body {
        FileBody::Bytes(b) => (StatusCode::OK, b).into_response(),
        FileBody::SpReport { bytes, seed, key } => (StatusCode::OK, generated_report(bytes, seed, key)).into_response(),
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(enc) = file.content_encoding {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Control

pub async fn control_scenario(AxState(sim): AxState<Sim>, Json(scenario): Json<Scenario>) -> Response {
    let mut state = sim.lock();
    state.faults = scenario.faults;
    state.outcomes = scenario.outcomes;
    if let Some(config) = scenario.config {
        state.config = config;
    }
    StatusCode::NO_CONTENT.into_response()
}

pub async fn control_advance(AxState(sim): AxState<Sim>, Json(body): Json<Value>) -> Response {
    let seconds = body["seconds"].as_i64().unwrap_or(0);
    sim.lock().clock_offset_secs += seconds;
    StatusCode::NO_CONTENT.into_response()
}

pub async fn control_requests(AxState(sim): AxState<Sim>) -> Response {
    Json(sim.lock().log.clone()).into_response()
}

pub async fn control_revoke(AxState(sim): AxState<Sim>) -> Response {
    sim.lock().revoked = true;
    StatusCode::NO_CONTENT.into_response()
}
