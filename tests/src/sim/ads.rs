//! Amazon Ads: profiles and reporting v3.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::{AdsReport, FileBody, Sim, State};
use crate::fixtures::{gzip, gzip_blank_json_array};

use super::common::*;

/// The first id of the generated advertiser profiles ([`super::SimConfig::ads_extra_profiles`]).
pub const EXTRA_PROFILES_FROM: i64 = 5_000_000_000;

/// The profiles of the configured region: the demo brands, then the generated agency clients.
pub(super) fn profiles(config: &super::SimConfig) -> Value {
    let mut all = region_profiles(&config.region);
    if let Some(list) = all.as_array_mut() {
        for i in 0..i64::from(config.ads_extra_profiles) {
            let id = EXTRA_PROFILES_FROM + i;
            list.push(
                json!({"profileId": id, "countryCode": "US", "currencyCode": "USD", "dailyBudget": 1000.0,
                "timezone": "America/Los_Angeles",
                "accountInfo": {"marketplaceStringId": "ATVPDKIKX0DER", "id": format!("A{id}"), "type": "vendor",
                                "name": format!("Agency client {i}"), "validPaymentMethod": true}}),
            );
        }
    }
    all
}

fn region_profiles(region: &str) -> Value {
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

pub(super) fn ads_guard(state: &mut State, call: &Call, scoped: bool) -> Result<(), Response> {
    bearer_auth(state, call, "detail")?;
    ads_throttle(state, call)?;
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
        let id: Option<i64> = scope.parse().ok();
        let generated = EXTRA_PROFILES_FROM..EXTRA_PROFILES_FROM + i64::from(state.config.ads_extra_profiles);
        let known = id.is_some_and(|id| generated.contains(&id))
            || region_profiles(&state.config.region).as_array().is_some_and(|a| {
                a.iter()
                    .any(|p| p["profileId"].as_i64().is_some() && p["profileId"].as_i64() == id)
            });
        if !known {
            return Err(ads_error(StatusCode::UNAUTHORIZED, "Not authorized to access scope"));
        }
    }
    Ok(())
}

/// The Ads API's throttling ([`super::SimConfig::ads_rate_limit`]), per credential set: a 429 with
/// `Retry-After`, except on `POST /reporting/reports`, whose 429 carries none (reference §3.4, §13).
fn ads_throttle(state: &mut State, call: &Call) -> Result<(), Response> {
    let Some((rate, burst)) = state.config.ads_rate_limit else {
        return Ok(());
    };
    let seller = call
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|token| state.token_sellers.get(token))
        .cloned()
        .unwrap_or_default();
    let now = state.now();
    if !take_token(&mut state.ads_buckets, seller, rate, burst, now) {
        let mut response = ads_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        if !(call.method == axum::http::Method::POST && call.path.starts_with("/reporting/reports")) {
            response
                .headers_mut()
                .insert("Retry-After", axum::http::HeaderValue::from_static("1"));
        }
        return Err(response);
    }
    Ok(())
}

pub async fn ads_profiles(AxState(sim): AxState<Sim>, call: Call) -> Response {
    run(&sim, "ads.profiles", &call, |state, _| {
        match ads_guard(state, &call, false) {
            Ok(()) => Json(profiles(&state.config)).into_response(),
            Err(r) => r,
        }
    })
}

/// Whether `r` is held `PENDING` ([`super::Simulator::hold_ads_reports_from`]).
fn held(state: &State, r: &AdsReport) -> bool {
    r.body["startDate"]
        .as_str()
        .is_some_and(|start| state.held_ads_starts.contains(start))
}

pub(super) fn ads_stage(state: &State, r: &AdsReport) -> &'static str {
    if held(state, r) {
        return "PENDING";
    }
    let pps = state.config.polls_per_stage.max(1);
    match r.polls / pps {
        0 => "PENDING",
        1 => "PROCESSING",
        _ if r.outcome == "FAILED" => "FAILED",
        _ => "COMPLETED",
    }
}

pub(super) fn ads_report_json(
    id: &str,
    r: &AdsReport,
    status: &str,
    url: Option<(String, DateTime<Utc>, u64)>,
) -> Value {
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
pub(super) fn ads_identity(profile: &str, body: &Value) -> Value {
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
        let c = &body["configuration"];
        // Data retention by ad product (reference §3.2, the report-type pages): Sponsored Products 95
        // days (its search term report 65), Sponsored Brands 60, Sponsored Display 65, the others 95.
        let retention = match (c["adProduct"].as_str(), c["reportTypeId"].as_str()) {
            (_, Some("spSearchTerm")) | (Some("SPONSORED_DISPLAY"), _) => 65,
            (Some("SPONSORED_BRANDS"), _) => 60,
            _ => 95,
        };
        if (state.now().date_naive() - start).num_days() > retention {
            return ads_error(StatusCode::BAD_REQUEST, "Report date is too far in the past");
        }
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
            restatement: u32::try_from(state.ads_reports.len()).unwrap_or(u32::MAX),
            as_of: state.config.ads_restating_as_of,
        };
        let v = ads_report_json(&id, &report, "PENDING", None);
        state.ads_reports.insert(id, report);
        Json(v).into_response()
    })
}

/// How a report's figures differ from another's for the same day.
#[derive(Debug, Clone, Copy)]
enum RestatedBy {
    /// By how many reports were created before it (each answer restates every figure).
    Report(u32),
    /// By the age of the row's day when the report was created, as the FAQ describes
    /// ([`super::SimConfig::ads_restating_as_of`]).
    Age(i64),
}

/// Conversion events of a day fall within this many days after the ad interaction (the attribution
/// window of a `…14d` metric).
const ATTRIBUTION_DAYS: i64 = 14;

/// The days after a conversion event on which Amazon restates it (the FAQ).
const RESTATED_AFTER: [i64; 3] = [1, 7, 28];

impl RestatedBy {
    /// The value of `metric` in row `i`.
    fn value(self, metric: &str, i: u32) -> serde_json::Value {
        let conversion = ["sales", "purchases", "unitsSold"]
            .iter()
            .any(|p| metric.starts_with(p));
        let money = metric == "cost" || metric.starts_with("sales");
        let base = if money {
            f64::from(i % 997) / 10.0
        } else {
            f64::from(i * 7 % 1000)
        };
        let step = match self {
            Self::Report(_) if money => return json!(base),
            Self::Report(n) => f64::from(n),
            // Traffic validation: impressions and clicks change for 3 days.
            Self::Age(age) if !conversion => age.clamp(0, 3) as f64,
            // Each conversion event (on the interaction day or up to 14 days after it) is restated
            // 1, 7 and 28 days after it happened: the figure grows until age 14 + 28.
            Self::Age(age) => (0..=ATTRIBUTION_DAYS)
                .flat_map(|event| RESTATED_AFTER.iter().map(move |after| event + after))
                .filter(|at| age >= *at)
                .count() as f64,
        };
        if money {
            json!(base + step)
        } else {
            json!(base as u64 + step as u64)
        }
    }
}

/// A report's rows: `rows_per_day` for each day of its range.
pub(super) fn ads_document(r: &AdsReport, rows_per_day: u32) -> Bytes {
    let columns: Vec<String> = r.body["configuration"]["columns"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let start = r.body["startDate"].as_str().unwrap_or("2026-01-01").to_owned();
    let end = r.body["endDate"].as_str().unwrap_or(&start).to_owned();
    // A DAILY report has a row per entity and day of its range, `date` the row's day (the reference,
    // §3.2); a SUMMARY report's rows carry the range.
    let first = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap_or_default();
    let days = chrono::NaiveDate::parse_from_str(&end, "%Y-%m-%d")
        .map_or(1, |last| (last - first).num_days() + 1)
        .max(1);
    let rows = rows_per_day.saturating_mul(u32::try_from(days).unwrap_or(u32::MAX));
    let mut out = String::from("[");
    for i in 0..rows {
        if i > 0 {
            out.push(',');
        }
        let day = first + chrono::Days::new(u64::from(i) % days.unsigned_abs());
        // Restated by age, a row's base figures are its entity's on its day, whatever range the
        // report spans (the entity: its place among the day's rows).
        let (restated, row) = match r.as_of {
            Some(as_of) => (
                RestatedBy::Age((as_of - day).num_days()),
                i / u32::try_from(days).unwrap_or(1).max(1),
            ),
            None => (RestatedBy::Report(r.restatement), i),
        };
        let fields: Vec<String> = columns
            .iter()
            .map(|c| {
                let v = match c.as_str() {
                    "date" => json!(day.to_string()),
                    "startDate" => json!(start),
                    "endDate" => json!(end),
                    "campaignId" | "adGroupId" => json!(100_000 + i % 37),
                    "campaignName" => json!(format!("Campaign {}", i % 37)),
                    metric => restated.value(metric, row),
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
            let doc = match report.outcome.as_str() {
                // A gzip bomb: 72 MiB of zeros in about 70 KB.
                "BOMB" => gzip_blank_json_array(72 << 20).into(),
                // A report with no rows: an empty JSON array.
                "EMPTY" => gzip(b"[]").into(),
                _ => ads_document(&report, state.config.ads_rows_per_day),
            };
            let size = doc.len() as u64;
            let ttl = state.config.ads_url_ttl_secs;
            let expires = state.now() + chrono::Duration::seconds(ttl);
            Some((presign(state, sim, FileBody::Bytes(doc), ttl, None), expires, size))
        } else {
            None
        };
        if !held(state, &report)
            && let Some(r) = state.ads_reports.get_mut(&id)
        {
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
        // OfflineReport_prod_3p.json: deleteAsyncReport "cancel[s] a report in a PENDING status" and
        // answers DeleteAsyncReportResponse {code, detail, reportId}. The report is gone afterwards: the
        // published statuses have no CANCELLED.
        match state.ads_reports.remove(&id) {
            Some(_) => Json(json!({"code": "200", "detail": "Report deleted", "reportId": id})).into_response(),
            None => ads_error(StatusCode::NOT_FOUND, "Report not found"),
        }
    })
}
