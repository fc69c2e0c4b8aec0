//! SP-API Reports 2021-06-30 (reports, documents, schedules) and Sellers' marketplace participations.
#![allow(clippy::result_large_err)]

use std::io::Write;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{FileBody, RestrictedToken, Sim, SpReport, State};
use crate::fixtures::{CbcEncryptWriter, SP_API_ORDERS_HEADER, gzip, gzip_blank_lines};

use super::common::*;

pub(super) fn sp_plan(op: &str) -> (f64, f64) {
    match op {
        "sp.getReport" => (2.0, 15.0),
        "sp.createReport" | "sp.getReportDocument" => (0.0167, 15.0),
        // tokens_2021-03-01.json: createRestrictedDataToken, 1 rps, burst 10.
        "sp.createRestrictedDataToken" => (1.0, 10.0),
        _ => (0.0222, 10.0),
    }
}

/// The SP-API token bucket of `op` for the selling partner `call`'s token speaks for (Amazon keeps a
/// usage plan per selling partner and application); `Err` is the 429.
pub(super) fn sp_throttle(state: &mut State, call: &Call, op: &'static str) -> Result<f64, Response> {
    let (rate, burst) = sp_plan(op);
    if !state.config.sp_rate_limits {
        return Ok(rate);
    }
    let seller = call
        .header("x-amz-access-token")
        .and_then(|token| state.token_sellers.get(token))
        .cloned()
        .unwrap_or_default();
    let now = state.now();
    if !take_token(&mut state.sp_buckets, (seller, op), rate, burst, now) {
        state.quota_refusals += 1;
        return Err(sp_error(
            StatusCode::TOO_MANY_REQUESTS,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
            "",
        ));
    }
    Ok(rate)
}

pub(super) fn with_rate(mut response: Response, rate: f64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&rate.to_string()) {
        response.headers_mut().insert("x-amzn-RateLimit-Limit", v);
    }
    response
}

/// [`run`] for an SP-API operation: the token and the operation's usage plan are checked first; the
/// handler gets the plan's rate for `x-amzn-RateLimit-Limit`.
pub(super) fn sp_run(
    sim: &Sim,
    op: &'static str,
    call: &Call,
    handle: impl FnOnce(&mut State, &Sim, f64) -> Response,
) -> Response {
    run(sim, op, call, |state, sim| {
        match sp_auth(state, call).and_then(|()| sp_throttle(state, call, op)) {
            Ok(rate) => handle(state, sim, rate),
            Err(r) => r,
        }
    })
}

/// Report type values that do not begin with `GET_`, as their report type values pages name them
/// (report-type-values-tax: the GST and VAT reports; FEE_DISCOUNTS_REPORT, the reports model's sandbox
/// example).
const REPORT_TYPES_WITHOUT_GET: [&str; 5] = [
    "SC_VAT_TAX_REPORT",
    "GST_MTR_B2B",
    "GST_MTR_B2C",
    "GST_MTR_STOCK_TRANSFER_REPORT",
    "FEE_DISCOUNTS_REPORT",
];

/// Whether Amazon would take `name` as a report type: `GET_` and upper case words joined by `_`, or
/// one of the documented types without the prefix.
fn is_report_type(name: &str) -> bool {
    let words = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    words && (name.starts_with("GET_") || REPORT_TYPES_WITHOUT_GET.contains(&name))
}

pub(super) fn sp_invalid(details: &str) -> Response {
    sp_error(StatusCode::BAD_REQUEST, "InvalidInput", "Invalid input", details)
}

pub async fn sp_create_report(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.createReport", &call, |state, _, rate| {
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        let report_type = body["reportType"].as_str().unwrap_or_default().to_owned();
        if !is_report_type(&report_type) {
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
        let id = format!("{}{}", 383_187_020_000 + state.next_id(), state.config.sp_id_suffix);
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

pub(super) fn sp_status(state: &mut State, id: &str) -> Option<Value> {
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
        report.document_id = Some(format!(
            "amzn1.spdoc.1.4.na.{uuid}.T3AV6LRMKCN2H8.2501{}",
            state.config.sp_id_suffix
        ));
    }
    Some(sp_report_json(id, report, status))
}

pub(super) fn sp_report_json(id: &str, report: &SpReport, status: &str) -> Value {
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
        // sellers.json: MarketplaceParticipation requires marketplace, participation and storeName.
        let m = |id: &str, name: &str, cc: &str, currency: &str, language: &str, domain: &str| {
            json!({
                "marketplace": {"id": id, "name": name, "countryCode": cc, "defaultCurrencyCode": currency,
                                "defaultLanguageCode": language, "domainName": domain},
                "storeName": "Demo Store",
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

/// A report's status as getReports lists it: what its last status check saw, without moving it on.
fn listed_status(report: &SpReport, polls_per_stage: u32) -> &'static str {
    if report.cancelled {
        return "CANCELLED";
    }
    match report.polls.checked_sub(1).map(|p| p / polls_per_stage.max(1)) {
        None | Some(0) => "IN_QUEUE",
        Some(1) => "IN_PROGRESS",
        Some(_) => match report.outcome.as_str() {
            "FATAL" => "FATAL",
            "CANCELLED" => "CANCELLED",
            _ => "DONE",
        },
    }
}

/// getReports as the model (reports_2021-06-30.json) defines it: `reportTypes` (or `nextToken`) required,
/// `marketplaceIds` matching at least one, `createdSince`, `processingStatuses`, `pageSize` 1–100 (default
/// 10); a page longer than `pageSize` answers `nextToken`, which must then be the only parameter.
pub async fn sp_get_reports(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.getReports", &call, |state, _, rate| {
        let mut query = call.query.clone();
        let mut offset = 0usize;
        if let Some(token) = call.query.get("nextToken") {
            if call.query.len() > 1 {
                return sp_invalid("nextToken must be the only parameter when it is given.");
            }
            let Some((saved, at)) = state.sp_report_pages.get(token).cloned() else {
                return sp_invalid("Invalid nextToken.");
            };
            query = saved;
            offset = at;
        }
        let list = |name: &str| -> Vec<String> {
            query
                .get(name)
                .map(|t| t.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let (types, marketplaces, statuses) = (list("reportTypes"), list("marketplaceIds"), list("processingStatuses"));
        if types.is_empty() {
            return sp_invalid("reportTypes or nextToken is required.");
        }
        // reports_2021-06-30.json, getReports: reportTypes and marketplaceIds hold 1 to 10 items each
        // (createReport's marketplaceIds hold up to 25).
        if types.len() > 10 || marketplaces.len() > 10 {
            return sp_invalid("reportTypes and marketplaceIds hold at most 10 items.");
        }
        let page_size = match query.get("pageSize").map(|p| p.parse::<usize>()) {
            None => 10,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => return sp_invalid("pageSize must be between 1 and 100."),
        }
        .min(state.config.sp_reports_page_max.max(1));
        let since = query.get("createdSince").and_then(|s| parse_time(s));
        let pps = state.config.polls_per_stage;
        let matching: Vec<Value> = state
            .sp_reports
            .iter()
            .rev()
            .filter(|(_, r)| types.contains(&r.report_type))
            .filter(|(_, r)| marketplaces.is_empty() || r.marketplace_ids.iter().any(|m| marketplaces.contains(m)))
            .filter(|(_, r)| since.is_none_or(|s| r.created >= s))
            .map(|(id, r)| (id, r, listed_status(r, pps)))
            .filter(|(_, _, status)| statuses.is_empty() || statuses.iter().any(|s| s == status))
            .map(|(id, r, status)| sp_report_json(id, r, status))
            .collect();
        let page: Vec<Value> = matching.iter().skip(offset).take(page_size).cloned().collect();
        let mut body = json!({ "reports": page });
        if offset + page_size < matching.len() {
            let token = format!("page{}", state.sp_report_pages.len() + 1);
            state
                .sp_report_pages
                .insert(token.clone(), (query.clone(), offset + page_size));
            body["nextToken"] = json!(token);
        }
        with_rate(Json(body).into_response(), rate)
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

/// Report types the SP-API documentation marks restricted (their documents carry buyer PII):
/// getReportDocument of one needs a Restricted Data Token. The Tokens API use case guide's list, as the
/// contract corpus holds it with its source (`tests/contract/restricted_report_types.json`), not the
/// client's table (which a contract test holds to the same file).
fn is_restricted(report_type: &str) -> bool {
    static TYPES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let corpus: Value = serde_json::from_str(include_str!("../../contract/restricted_report_types.json"))
            .expect("the corpus's restricted report types are JSON");
        corpus["restrictedReportTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    });
    TYPES.iter().any(|t| t == report_type)
}

fn sp_denied(details: &str) -> Response {
    sp_error(
        StatusCode::FORBIDDEN,
        "Unauthorized",
        "Access to requested resource is denied.",
        details,
    )
}

/// createRestrictedDataToken (tokens_2021-03-01.json): `restrictedResources` of 1–50
/// `{method, path[, dataElements]}`; answers `{restrictedDataToken, expiresIn}`. A getReportDocument
/// resource must name a specific document, not the generic `{reportDocumentId}` path (the restricted
/// report types guide).
pub async fn sp_create_restricted_data_token(AxState(sim): AxState<Sim>, call: Call) -> Response {
    sp_run(&sim, "sp.createRestrictedDataToken", &call, |state, _, rate| {
        let body = match call.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        // The model's sandbox 400 example: InvalidRequest, "Request is missing or has invalid parameters".
        let invalid = |details: &str| {
            sp_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "Request is missing or has invalid parameters",
                details,
            )
        };
        let Some(resources) = body.get("restrictedResources").and_then(Value::as_array) else {
            return invalid("Resource not provided.");
        };
        if resources.is_empty() || resources.len() > 50 {
            return invalid("restrictedResources must hold 1 to 50 resources.");
        }
        let mut granted = Vec::new();
        for resource in resources {
            let method = resource.get("method").and_then(Value::as_str).unwrap_or_default();
            let path = resource.get("path").and_then(Value::as_str).unwrap_or_default();
            if !["GET", "PUT", "POST", "DELETE"].contains(&method) || !path.starts_with('/') {
                return invalid("Resource not provided.");
            }
            if path.starts_with("/reports/2021-06-30/documents/") {
                if path.contains('{') {
                    return invalid("A restricted report document must be named by its id, not a generic path.");
                }
                if !state.config.sp_restricted_roles {
                    return sp_denied("The application is not authorized for the restricted role this resource needs.");
                }
            }
            granted.push((method.to_owned(), path.to_owned()));
        }
        let token = format!("Atz.sprdt|{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let expires = state.now() + chrono::Duration::seconds(3600);
        // A Restricted Data Token speaks for the selling partner of the token that asked for it.
        if let Some(seller) = call
            .header("x-amz-access-token")
            .and_then(|t| state.token_sellers.get(t))
            .cloned()
        {
            state.token_sellers.insert(token.clone(), seller);
        }
        state.restricted_tokens.insert(
            token.clone(),
            RestrictedToken {
                expires_at: expires,
                resources: granted,
            },
        );
        with_rate(
            Json(json!({"restrictedDataToken": token, "expiresIn": 3600})).into_response(),
            rate,
        )
    })
}

/// getReportDocument's authorisation: the access token, or for a restricted report type a Restricted
/// Data Token issued for exactly this document's path.
fn document_auth(state: &State, call: &Call, report_type: &str, id: &str) -> Result<(), Response> {
    if !is_restricted(report_type) {
        return sp_auth(state, call);
    }
    let path = format!("/reports/2021-06-30/documents/{id}");
    let token = call.header("x-amz-access-token").unwrap_or_default();
    match state.restricted_tokens.get(token) {
        Some(t) if t.expires_at > state.now() && t.resources.iter().any(|(m, p)| m == "GET" && *p == path) => Ok(()),
        _ => Err(sp_denied(
            "A Restricted Data Token for this report document is required: the report type is restricted.",
        )),
    }
}

/// The days a report's window covers (UTC): the first and how many; `None` without a window.
fn window_days(report: &super::SpReport) -> Option<(chrono::NaiveDate, u32)> {
    let (start, end) = (report.start?, report.end?);
    let days = ((end - start).num_seconds() + 86_399).div_euclid(86_400).max(1);
    Some((start.date_naive(), u32::try_from(days).unwrap_or(1)))
}

pub async fn sp_get_document(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    run(&sim, "sp.getReportDocument", &call, |state, sim| {
        let Some((report_type, outcome, days)) = state
            .sp_reports
            .values()
            .find(|r| r.document_id.as_deref() == Some(id.as_str()))
            .map(|r| (r.report_type.clone(), r.outcome.clone(), window_days(r)))
        else {
            return match sp_auth(state, &call) {
                Ok(()) => sp_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "The requested report document was not found.",
                    "",
                ),
                Err(r) => r,
            };
        };
        let rate = match document_auth(state, &call, &report_type, &id)
            .and_then(|()| sp_throttle(state, &call, "sp.getReportDocument"))
        {
            Ok(rate) => rate,
            Err(r) => return r,
        };
        let seed = seed_of(&id);
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
            // A gzip bomb: a header and 72 MiB of blank lines in about 70 KB.
            "BOMB" => FileBody::Bytes(gzip_blank_lines(SP_API_ORDERS_HEADER.as_bytes(), 72 << 20).into()),
            // Two gzip members, as some writers produce: both must be read.
            "MULTIGZ" => FileBody::Bytes(
                [
                    gzip(b"amazon-order-id\tpurchase-date\tsku\tquantity\n1-1\t2026-11-22T01:00:00+00:00\tA\t1\n"),
                    gzip(b"1-2\t2026-11-22T02:00:00+00:00\tB\t2\n1-3\t2026-11-22T03:00:00+00:00\tC\t3\n"),
                ]
                .concat()
                .into(),
            ),
            // The orders report as Amazon changes flat files without notice: its first two columns
            // swapped, `ship-country` gone, and a new column, `is-business-order`, inserted mid-row.
            // Read by the table's positions as they stand, every column but the dates would be
            // misread.
            "DRIFTED" => FileBody::Bytes(gzip(
                b"merchant-order-id\tamazon-order-id\tpurchase-date\tlast-updated-date\torder-status\tfulfillment-channel\tsales-channel\tis-business-order\tsku\tasin\titem-status\tquantity\tcurrency\titem-price\titem-tax\tshipping-price\tship-city\tship-state\tship-postal-code\n\
                  MO-1\t111-0000001-0000001\t2026-11-23T01:00:00+00:00\t2026-11-23T23:59:59+00:00\tShipped\tAmazon\tAmazon.com\tfalse\tSKU-00001\tB000000001\tUnshipped\t1\tUSD\t10.00\t1.00\t2.99\tSeattle\tWA\t98101\n\
                  MO-2\t111-0000002-0000002\t2026-11-23T02:00:00+00:00\t2026-11-23T23:59:59+00:00\tShipped\tAmazon\tAmazon.com\ttrue\tSKU-00002\tB000000002\tUnshipped\t2\tUSD\t20.00\t2.00\t0.00\tPortland\tOR\t97201\n",
            ).into()),
            // A report with no rows: its header line only.
            "EMPTY" => FileBody::Bytes(gzip(b"amazon-order-id\tpurchase-date\tsku\tquantity\n").into()),
            _ => FileBody::SpReport {
                bytes: state.config.sp_report_bytes,
                seed,
                key,
                days,
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

pub(super) const SCHEDULE_PERIODS: [&str; 18] = [
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
