//! Login with Amazon: refresh-token and authorization-code grants, caching, rotation, refusals.

use super::*;

#[tokio::test]
async fn lwa_caches_the_token_and_surfaces_a_rotated_refresh_token() {
    let sim = Simulator::start(SimConfig {
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let http = api_http_client(&policy()).expect("http");
    let session = LwaSession::new(LwaClient::new(http, sim.token_url()), credentials());
    let first = session.access_token().await.expect("token");
    let second = session.access_token().await.expect("token");
    assert_eq!(first.token.expose_secret(), second.token.expose_secret());
    assert_eq!(
        sim.requests_of("lwa.token").len(),
        1,
        "the second call is served from the cache"
    );
    let rotated = session.rotated_refresh_token().await.expect("rotated");
    assert!(rotated.expose_secret().starts_with("Atzr|rotated"));
    // The rotated token is the one used from now on (the old one is retired by the simulator).
    session.force_refresh().await.expect("refresh with the rotated token");
    let body = &sim.requests_of("lwa.token")[0];
    assert_eq!(
        body.headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded;charset=UTF-8")
    );
    assert_eq!(body.body, "[form with secrets]");
}

#[tokio::test]
async fn a_revoked_refresh_token_is_a_fatal_invalid_grant_and_server_errors_are_transient() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let http = api_http_client(&policy()).expect("http");
    let lwa = LwaClient::new(http, sim.token_url());
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "lwa.token".into(),
            status: 500,
            times: 1,
            retry_after: None,
            body: None,
            after_effect: false,
            cut_after: None,
            tamper: false,
        }],
        ..Scenario::default()
    });
    let err = lwa.refresh(&credentials()).await.expect_err("server error");
    assert!(err.is_transient(), "{err}");
    sim.revoke_refresh_tokens();
    let err = lwa.refresh(&credentials()).await.expect_err("revoked");
    assert!(matches!(err, LwaError::InvalidGrant { .. }), "{err}");
    assert!(err.to_string().contains("authorise the application again"));
    assert!(!format!("{err:?}").contains("sim-refresh-token"));
}

#[tokio::test]
async fn a_token_that_expires_soon_is_renewed_before_the_call_and_an_expired_one_is_refreshed_once() {
    let sim = Simulator::start(SimConfig {
        token_ttl_secs: 70,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = sp(&sim);
    client.get_report("0").await.expect_err("no such report");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // 70 s lifetime − 60 s margin: after ten seconds the token is renewed before use, so the API
    // never sees an expired token.
    assert_eq!(sim.requests_of("lwa.token").len(), 1);
    // Now the server's clock jumps: the cached token looks fresh to the client but has expired.
    let sim2 = Simulator::start(SimConfig::default()).await.expect("sim");
    let client2 = sp(&sim2);
    let id = client2.create(&orders(), &window(-2, -1)).await.expect("create");
    sim2.advance(4000);
    client2.status(&orders(), &id).await.expect("status after a refresh");
    let statuses: Vec<u16> = sim2.requests_of("sp.getReport").iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![403, 200], "refused once, refreshed, then answered");
    assert_eq!(sim2.requests_of("lwa.token").len(), 2);
}

#[tokio::test]
async fn an_authorization_code_is_exchanged_once_for_a_refresh_token_and_never_after_five_minutes() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let redirect = "http://localhost:8765/callback";
    let client_id = "amzn1.application-oa2-client.test";
    let code_of = || async {
        let url = amzpipe::adapters::lwa::consent_url(
            &sim.consent_url(),
            client_id,
            "advertising::campaign_management",
            redirect,
            "state-1",
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let answer = http.get(url).send().await.expect("consent");
        assert_eq!(answer.status(), 302);
        let location = answer.headers()["location"].to_str().expect("location").to_owned();
        assert!(
            location.starts_with(redirect) && location.contains("state=state-1"),
            "{location}"
        );
        let code = location
            .split("code=")
            .nth(1)
            .expect("code")
            .split('&')
            .next()
            .expect("code");
        SecretString::from(code.to_owned())
    };
    let lwa = LwaClient::new(reqwest::Client::new(), sim.token_url());
    let secret = SecretString::from("s".to_owned());
    let code = code_of().await;
    let grant = lwa
        .exchange_code(client_id, &secret, &code, redirect)
        .await
        .expect("exchanged");
    assert!(grant.refresh_token.expose_secret().starts_with("Atzr|"));
    let reused = lwa.exchange_code(client_id, &secret, &code, redirect).await;
    assert!(matches!(reused, Err(LwaError::InvalidGrant { .. })), "{reused:?}");
    let other_redirect = lwa
        .exchange_code(client_id, &secret, &code_of().await, "http://localhost:1/x")
        .await;
    assert!(matches!(other_redirect, Err(LwaError::InvalidGrant { .. })));
    let late = code_of().await;
    sim.advance(301);
    let expired = lwa.exchange_code(client_id, &secret, &late, redirect).await;
    assert!(matches!(expired, Err(LwaError::InvalidGrant { .. })), "{expired:?}");
}
