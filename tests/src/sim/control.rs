//! The control API tests use: scenarios, time, the request log, revoking tokens.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Scenario, Sim};

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
