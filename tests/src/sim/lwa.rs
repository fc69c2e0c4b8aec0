//! Login with Amazon: the consent page and the token endpoint (refresh-token and authorization-code grants).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AuthCode, Sim, State};

use super::common::*;

/// How long an authorization code can be exchanged (LWA: 5 minutes).
pub(super) const AUTH_CODE_TTL_SECS: i64 = 300;

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
pub(super) fn lwa_code_grant(state: &mut State, form: &HashMap<String, String>) -> Result<Value, &'static str> {
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
        if form.get("client_id").is_none_or(String::is_empty)
            || form
                .get("client_secret")
                .is_none_or(|secret| secret.is_empty() || state.retired_client_secrets.contains(secret))
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
                let seller = state
                    .token_sellers
                    .get(refresh)
                    .cloned()
                    .unwrap_or_else(|| refresh.clone());
                state.token_sellers.insert(access.clone(), seller.clone());
                let refresh_out = if state.config.rotate_refresh_tokens {
                    state.retired_refresh_tokens.insert(refresh.clone());
                    format!("Atzr|rotated{}-{:x}", state.next_id(), fastrand::u64(..))
                } else {
                    refresh.clone()
                };
                state.token_sellers.insert(refresh_out.clone(), seller);
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
