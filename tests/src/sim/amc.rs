//! Amazon Marketing Cloud: accounts, instances, workflow executions, workflows and schedules.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{AmcExecution, FileBody, Sim, State};

use super::common::*;

pub(super) const MAX_RUNNING: usize = 10;

/// [`run`] for an AMC operation: the AMC headers, token and instance are checked first.
pub(super) fn amc_run(
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

pub(super) fn amc_guard(state: &State, call: &Call, instance: &str) -> Result<(), Response> {
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
    // Instance ids are `amc` and letters, digits or `-` (reference §10: ids may contain `-`).
    if !instance.starts_with("amc") || !instance.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(amc_error(
            StatusCode::NOT_FOUND,
            &format!("Instance {instance} was not found"),
        ));
    }
    Ok(())
}

/// An execution's status, advancing it one poll when `poll` (the 10-running limit keeps extra
/// executions PENDING).
pub(super) fn amc_status(state: &mut State, id: &str, poll: bool) -> Option<&'static str> {
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

/// An explicit window bound as AMC takes it: `yyyy-MM-ddTHH:mm:ss`, local to `timeWindowTimeZone`.
/// A trailing `Z` is taken too: Amazon's own AMC notebook (the user's seed 001) sends
/// `"2024-02-01T00:00:00Z"`-style bounds, and the execute-workflow guide's sample sends none.
fn window_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.strip_suffix('Z').unwrap_or(text), "%Y-%m-%dT%H:%M:%S").ok()
}

/// An execution's window bound `field` (local time in the execution's `timeWindowTimeZone`, UTC when
/// absent) as the UTC instant AMC echoes.
fn echo_in_utc(e: &AmcExecution, field: &str) -> Option<String> {
    let local = window_time(e.body.get(field)?.as_str()?)?;
    let zone: chrono_tz::Tz = e
        .body
        .get("timeWindowTimeZone")
        .and_then(Value::as_str)
        .unwrap_or("UTC")
        .parse()
        .ok()?;
    let utc = chrono::TimeZone::from_local_datetime(&zone, &local)
        .earliest()?
        .with_timezone(&Utc);
    Some(utc.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

pub(super) fn amc_json(id: &str, e: &AmcExecution, status: &str, include_workflow: bool) -> Value {
    let mut v = json!({
        "workflowExecutionId": id,
        "workflowId": e.workflow_id,
        "status": status,
        "createTime": e.created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "lastUpdatedTime": e.created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        // As AMC echoes an explicit window: converted to UTC, and as sent in `…Original` (ADOC
        // guides/amazon-marketing-cloud/reporting/execute-workflow.md sample response: 2022-09-20T00:00:00
        // America/New_York is echoed as 2022-09-20T04:00:00Z with timeWindowStartOriginal 2022-09-20T00:00:00).
        "timeWindowStart": echo_in_utc(e, "timeWindowStart"),
        "timeWindowEnd": echo_in_utc(e, "timeWindowEnd"),
        "timeWindowStartOriginal": e.body.get("timeWindowStart"),
        "timeWindowEndOriginal": e.body.get("timeWindowEnd"),
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

pub(super) fn amc_wrap(state: &State, v: Value) -> Value {
    if state.config.amc_wrapped {
        json!({"workflowExecution": v})
    } else {
        v
    }
}

pub async fn amc_create_execution(AxState(sim): AxState<Sim>, Path(instance): Path<String>, call: Call) -> Response {
    amc_run(&sim, "amc.createExecution", &call, &instance, |state, _| {
        // AMC takes its vendor type, plain JSON (AMCI sends application/json), or none at all (Amazon's
        // own notebook sends no Content-Type): reference amazon-apis.md §10.
        let media = call
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim());
        if !matches!(
            media,
            None | Some("application/vnd.amcworkflowexecutions.v1+json" | "application/json")
        ) {
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
        if let Some(zone) = body.get("timeWindowTimeZone").and_then(Value::as_str)
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            return amc_error(
                StatusCode::BAD_REQUEST,
                &format!("timeWindowTimeZone {zone} is not a valid IANA time zone"),
            );
        }
        if body.get("timeWindowType").and_then(Value::as_str) == Some("EXPLICIT") {
            for k in ["timeWindowStart", "timeWindowEnd"] {
                if body.get(k).and_then(Value::as_str).and_then(window_time).is_none() {
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
        // AMC runs ten executions per instance and queues the rest as PENDING (reference §1.6): a
        // create while ten are active is accepted, and counted here as the client's breach.
        let pps = state.config.polls_per_stage.max(1);
        let active = state
            .amc_executions
            .values()
            .filter(|e| {
                e.instance_id == instance && !e.cancelled && e.started_at_poll.is_none_or(|s| e.polls < s + pps)
            })
            .count();
        if active >= MAX_RUNNING {
            state.amc_creates_over_limit += 1;
        }
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

pub(super) fn amc_cancel(state: &mut State, id: &str) -> Response {
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
        // Each execution's figures differ a little, as a later run of the same window restates them.
        let restated = u32::try_from(seed_of(&id) % 97).unwrap_or(0);
        let mut urls = Vec::new();
        for f in 0..files {
            let mut csv = String::from("campaign,impressions,reach,\"notes\"\n");
            for i in 0..rows {
                csv.push_str(&format!(
                    "Campaign {},{},{},\"part {f}, row {i}\"\n",
                    i % 23,
                    i * 13 % 5000 + restated,
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
        // The spec's GetWorkflowResponse wraps the workflow: {"workflow": {…}}.
        match state.amc_workflows.get(&id) {
            Some(w) => Json(json!({"workflow": w})).into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_window_bounds_are_taken_with_or_without_a_trailing_z_as_amazons_notebook_and_guide_send_them() {
        let plain = window_time("2022-09-20T00:00:00").expect("the guide's form");
        assert_eq!(window_time("2022-09-20T00:00:00Z"), Some(plain), "the notebook's form");
        assert_eq!(window_time("2022-09-20"), None);
        assert_eq!(window_time("2022-09-20T00:00:00+02:00"), None);
    }
}
