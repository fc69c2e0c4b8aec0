//! Prime Video Slate: accounts, groups, businesses, datasets and their files.
#![allow(clippy::result_large_err)]

use std::io::Write;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{FileBody, Sim};

use super::common::*;

/// A page as the official page describes it: `limit` (default 10) and `offset`, answered with `total`,
/// `next` (null on the last page) and the page's `data`; file lists take up to 1,000 per page.
pub(super) fn slate_page(sim: &Sim, call: &Call, path: &str, items: Vec<Value>, page_max: usize) -> Response {
    let max = if path.contains("/datasets/") { 1000 } else { 500 };
    let limit: usize = call
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, max)
        .min(page_max.max(1));
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

pub(super) fn slate_list(sim: &Sim, call: &Call, op: &str, items: Vec<Value>) -> Response {
    let path = call.path.split('?').next().unwrap_or_default().to_owned();
    run(sim, op, call, |state, sim| match bearer_auth(state, call, "message") {
        Ok(()) => slate_page(sim, call, &path, items, state.config.slate_page_max),
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

/// The playback dataset's columns, in the order of the official Datasets page (seed
/// `002_8fd61206bc5c2333.txt`, "Ensemble de données de lecture"): `session_id` is its key, and the
/// file is a changelog — the same session again with a later `last_update_time_utc`, or `is_deleted`.
pub const PLAYBACK_COLUMNS: &str = "session_id,marketplace_id,marketplace_desc,cid,benefit_id,catalog_id,\
subscription_offer_id,subscription_event_id,start_segment_utc,end_segment_utc,seconds_viewed,position_start,\
position_end,connection_type,stream_type,device_class,device_sub_class,geo_dma,playback_method,quality,event_type,\
create_time_utc,last_update_time_utc,is_deleted";

/// A file of the dataset: a ZIP of `entries` CSV changelogs of `rows` rows each. Every file of a
/// window carries the same sessions (row `i` of entry `e` is session `S{e}-{i}`), updated at the file's
/// publication time, so that a later file restates an earlier one; every 50th session is deleted in
/// files published at an odd hour, and its seconds viewed grow with the hour.
pub(super) fn slate_zip(dataset: &str, file_id: &str, published: DateTime<Utc>, rows: u32, entries: u32) -> Bytes {
    use chrono::Timelike;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let odd_hour = published.hour() % 2 == 1;
    for entry in 0..entries.max(1) {
        let name = match entries {
            0 | 1 => format!("{dataset}/{file_id}.csv"),
            _ => format!("{dataset}/{file_id}-part{entry:05}.csv"),
        };
        let _ = w.start_file(name, zip::write::SimpleFileOptions::default());
        let _ = writeln!(w, "{PLAYBACK_COLUMNS}");
        let at = iso(published);
        for i in 0..rows {
            let deleted = u8::from(odd_hour && i % 50 == 0);
            let _ = writeln!(
                w,
                "S{entry:03}-{i:05},1,\"Amazon.com, US\",c{:04},B1,T{:04},O1,E{:05},{at},{at},{},0.0,1.0,wifi,VOD,Living Room,TV,501,online,1080p,playback_segments,{at},{at},{deleted}",
                i % 89,
                i % 97,
                i % 31,
                (i % 120) * 60 + published.hour() * 10,
            );
        }
    }
    w.finish().map(|c| Bytes::from(c.into_inner())).unwrap_or_default()
}

/// A time in the one format the official page gives for startDateTime/endDateTime: YYYY-MM-DDTHH:MM:SSZ.
fn utc_second(s: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|t| t.and_utc())
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
        // "La limite maximale est de 1 000 liens par page" (the official page): more is refused.
        if call
            .query
            .get("limit")
            .is_some_and(|l| l.parse::<u32>().map_or(true, |l| l == 0 || l > 1000))
        {
            return amc_error(StatusCode::BAD_REQUEST, "limit must be between 1 and 1000");
        }
        let (Some(start), Some(end)) = (
            call.query.get("startDateTime").and_then(|s| utc_second(s)),
            call.query.get("endDateTime").and_then(|s| utc_second(s)),
        ) else {
            return amc_error(
                StatusCode::BAD_REQUEST,
                "startDateTime and endDateTime are required, as YYYY-MM-DDTHH:MM:SSZ (UTC)",
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
                let body = slate_zip(
                    &dataset,
                    &id,
                    t,
                    state.config.slate_rows,
                    state.config.slate_zip_entries,
                );
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
        slate_page(sim, &call, &path, items, state.config.slate_page_max)
    })
}
