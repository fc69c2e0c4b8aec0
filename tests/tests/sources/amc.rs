//! Amazon Marketing Cloud: executions, the running limit, lost creates, workflows, accounts and instances.

use super::*;

#[tokio::test]
async fn amc_ad_hoc_sql_is_sent_single_line_and_every_result_file_lands_in_s3() {
    for wrapped in [false, true] {
        let sim = Simulator::start(SimConfig {
            amc_wrapped: wrapped,
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let client = amc(&sim);
        let w = window(-9, -2);
        let id = client.create(&reach_query(), &w).await.expect("create");
        let (states, done) = poll_until_done(&client, &reach_query(), &id).await;
        assert_eq!(states, vec!["PENDING", "RUNNING"]);
        assert_eq!(done, RequestStatus::Ready);
        let docs = client.documents(&reach_query(), &id).await.expect("documents");
        assert_eq!(docs.len(), 2);
        let stored = store(docs).await;
        assert!(
            stored
                .iter()
                .all(|(k, _, rows)| k.ends_with(".csv") && *rows == Some(1000)),
            "{stored:?}"
        );

        let create = &sim.requests_of("amc.createExecution")[0];
        assert_eq!(create.path, "/amc/reporting/amcdemo01/workflowExecutions");
        assert_eq!(
            create.headers["content-type"],
            "application/vnd.amcworkflowexecutions.v1+json"
        );
        assert_eq!(
            create.headers["amazon-advertising-api-advertiserid"],
            "ENTITY1AA1AA11AAA1"
        );
        assert_eq!(create.headers["amazon-advertising-api-marketplaceid"], "ATVPDKIKX0DER");
        let body: serde_json::Value = serde_json::from_str(&create.body).expect("json");
        assert_eq!(
            body["workflow"]["sqlQuery"],
            "SELECT campaign, COUNT(DISTINCT user_id) AS reach FROM dsp_impressions GROUP BY 1"
        );
        assert_eq!(body["timeWindowType"], "EXPLICIT");
        assert_eq!(body["timeWindowStart"], w.start.format("%Y-%m-%dT%H:%M:%S").to_string());
        assert_eq!(body["timeWindowTimeZone"], "America/New_York");
    }
}

#[tokio::test]
async fn amc_refuses_to_start_an_eleventh_execution_on_a_busy_instance() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    for i in 0..10 {
        let id = client
            .create(&reach_query(), &window(-30 + i, -29 + i))
            .await
            .expect("create");
        client.status(&reach_query(), &id).await.expect("status");
    }
    let err = client.create(&reach_query(), &window(-2, -1)).await.expect_err("busy");
    assert!(matches!(err, SourceError::Throttled { .. }), "{err:?}");
    assert_eq!(sim.created_counts().2, 10);
}

#[tokio::test]
async fn amc_failures_carry_the_status_reason_and_a_lost_create_answer_finds_the_execution() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "amc.createExecution".into(),
            status: 503,
            times: 1,
            retry_after: None,
            body: None,
            after_effect: true,
            cut_after: None,
            tamper: false,
        }],
        outcomes: [("adhoc".to_owned(), "FAILED".to_owned())].into(),
        ..Scenario::default()
    });
    let client = amc(&sim);
    let id = client.create(&reach_query(), &window(-5, -4)).await.expect("create");
    assert_eq!(
        sim.created_counts().2,
        1,
        "the execution the lost answer created is reused"
    );
    let (_, done) = poll_until_done(&client, &reach_query(), &id).await;
    let RequestStatus::Failed { reason, .. } = done else {
        panic!("expected FAILED, got {done:?}");
    };
    assert!(reason.contains("column reach does not exist"), "{reason}");
}

#[tokio::test]
async fn amc_echoes_an_explicit_window_in_utc_and_as_sent_as_its_documentation_shows() {
    // Source: ADOC guides/amazon-marketing-cloud/reporting/execute-workflow.md, sample response: an
    // execution created with timeWindowStart 2022-09-20T00:00:00 and timeWindowTimeZone America/New_York
    // is echoed with timeWindowStart 2022-09-20T04:00:00Z and timeWindowStartOriginal 2022-09-20T00:00:00
    // (reference amazon-apis.md §10). The simulator is held to it, and the client matches like with like.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let start = DateTime::parse_from_rfc3339("2022-09-20T00:00:00Z")
        .expect("time")
        .to_utc();
    let window = TimeWindow::new(start, start + Days::days(1)).expect("window");
    let id = client.create(&reach_query(), &window).await.expect("create");
    let echoed = client.execution(&reach_query(), &id).await.expect("execution");
    assert_eq!(echoed.time_window_start.as_deref(), Some("2022-09-20T04:00:00Z"));
    assert_eq!(
        echoed.time_window_start_original.as_deref(),
        Some("2022-09-20T00:00:00")
    );
    assert_eq!(echoed.time_window_end.as_deref(), Some("2022-09-21T04:00:00Z"));
    // A search for the same window finds it; for the window a day later, it does not.
    let since = Utc::now() - Days::hours(1);
    let found = client
        .find_existing(&reach_query(), &window, since)
        .await
        .expect("search");
    assert_eq!(found.as_deref(), Some(id.as_str()));
    let later = TimeWindow::new(window.end, window.end + Days::days(1)).expect("window");
    assert_eq!(
        client
            .find_existing(&reach_query(), &later, since)
            .await
            .expect("search"),
        None
    );
}

#[tokio::test]
async fn an_amc_lost_create_never_adopts_an_execution_of_other_parameters_or_another_time_zone() {
    // Source: execute-workflow.md's sample response echoes `parameterValues` and
    // `timeWindowTimeZoneOriginal` (reference §10): two jobs with one workflow and one window but other
    // parameters, or the same local times in another zone, are other requests.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let since = Utc::now() - Days::hours(1);
    let w = window(-9, -2);
    // GIVEN another job's execution: the same SQL and window, with a parameter
    let mut other = reach_query();
    other.parameter_values.insert("campaign".into(), "summer".into());
    client.create(&other, &w).await.expect("create");
    // THEN this job, without it, does not take it for its own, and that job does
    assert_eq!(
        client.find_existing(&reach_query(), &w, since).await.expect("search"),
        None
    );
    assert!(client.find_existing(&other, &w, since).await.expect("search").is_some());
    let mut changed = other.clone();
    changed.parameter_values.insert("campaign".into(), "winter".into());
    assert_eq!(client.find_existing(&changed, &w, since).await.expect("search"), None);
    // AND an execution of the same local window in another zone is not this job's either
    let mut in_london = reach_query();
    in_london.time_zone = Some("Europe/London".into());
    let london = client.create(&in_london, &w).await.expect("create");
    assert_eq!(
        client.find_existing(&reach_query(), &w, since).await.expect("search"),
        None
    );
    assert_eq!(
        client.find_existing(&in_london, &w, since).await.expect("search"),
        Some(london)
    );
}

#[tokio::test]
async fn amc_saved_workflows_are_created_updated_listed_run_and_deleted() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let request = reach_query();
    let scope = AmcScope {
        instance_id: request.instance_id.clone(),
        advertiser_id: request.advertiser_id.clone(),
        marketplace_id: request.marketplace_id.clone(),
    };
    let mut workflow = Workflow {
        workflow_id: "weekly_reach".into(),
        sql: "SELECT 1\nFROM x -- first".into(),
        fields: serde_json::Map::new(),
    };
    client.create_workflow(&scope, &workflow).await.expect("create");
    workflow.sql = "SELECT 2 FROM x".into();
    client.update_workflow(&scope, &workflow).await.expect("update");
    let stored = client.workflow(&scope, "weekly_reach").await.expect("get");
    assert_eq!(stored["sqlQuery"], "SELECT 2 FROM x");
    let listed = client.workflows(&scope).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["workflowId"], "weekly_reach");
    let saved = AmcRequest {
        query: AmcQuery::WorkflowId("weekly_reach".into()),
        ..request.clone()
    };
    let id = client.create(&saved, &window(-3, -2)).await.expect("run saved");
    assert_eq!(poll_until_done(&client, &saved, &id).await.1, RequestStatus::Ready);
    client.delete_workflow(&scope, "weekly_reach").await.expect("delete");
    assert!(matches!(
        client.workflow(&scope, "weekly_reach").await,
        Err(SourceError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_cancelled_amc_execution_ends_as_a_failure_that_says_so() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let id = client.create(&reach_query(), &window(-4, -3)).await.expect("create");
    client.cancel(&reach_query(), &id).await.expect("cancel");
    let status = client.status(&reach_query(), &id).await.expect("status");
    assert!(
        matches!(&status, RequestStatus::Failed { reason, .. } if reason.starts_with("CANCELLED")),
        "{status:?}"
    );
    let cancel = &sim.requests_of("amc.cancelExecution")[0];
    assert_eq!(
        (cancel.method.as_str(), cancel.body.as_str()),
        ("PUT", r#"{"status":"CANCELLED"}"#)
    );
}

#[tokio::test]
async fn amc_accounts_list_their_instances_and_a_foreign_account_is_refused() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let accounts = client.accounts().await.expect("accounts");
    assert_eq!(accounts.len(), 1);
    let instances = client
        .instances(&accounts[0].account_id, &accounts[0].marketplace_id)
        .await
        .expect("instances");
    assert!(instances.iter().any(|i| i.instance_id == "amcdemo01"));
    let foreign = client.instances("ENTITYSOMEONEELSE", "ATVPDKIKX0DER").await;
    assert!(foreign.is_err(), "{foreign:?}");
    let requests = sim.requests_of("amc.instances");
    assert_eq!(
        requests[0]
            .headers
            .get("amazon-advertising-api-advertiserid")
            .map(String::as_str),
        Some(accounts[0].account_id.as_str())
    );
}

#[tokio::test]
async fn amc_create_takes_plain_json_or_no_content_type_and_instance_ids_with_dashes() {
    // Reference amazon-apis.md §10: AMC create accepts application/json (AMCI sends it; Amazon's own
    // notebook sends no Content-Type), and instance ids may contain `-`. The simulator is as lenient.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let http = api_http_client(&policy()).expect("client");
    let session = LwaSession::new(LwaClient::new(http.clone(), sim.token_url()), credentials());
    let token = session.access_token().await.expect("token");
    let body = serde_json::json!({
        "timeWindowType": "EXPLICIT", "timeWindowStart": "2026-11-01T00:00:00",
        "timeWindowEnd": "2026-11-02T00:00:00", "workflow": {"sqlQuery": "SELECT 1"}
    });
    for (instance, content_type) in [
        ("amcdemo01", Some("application/json")),
        ("amcdemo01", None),
        ("amc-demo-02", Some("application/vnd.amcworkflowexecutions.v1+json")),
    ] {
        let mut request = http
            .post(format!(
                "{}/amc/reporting/{instance}/workflowExecutions",
                sim.base_url()
            ))
            .bearer_auth(token.token.expose_secret())
            .header("Amazon-Advertising-API-ClientId", "amzn1.application-oa2-client.sim")
            .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1AA1AA11AAA1")
            .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER")
            .body(body.to_string());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let answer = request.send().await.expect("answer");
        assert!(
            answer.status().is_success(),
            "{instance} {content_type:?}: {}",
            answer.status()
        );
    }
}

#[tokio::test]
async fn amc_results_unavailable_for_download_right_after_success_are_not_ready_yet_whatever_the_status() {
    // Reference §1 (the AMC execute-workflow guide): downloadUrls before the results are ready answers
    // "Execution with ID <id> is unavailable for download"; the guide gives no HTTP status, so any
    // status carrying that message means "not yet", seen here right after SUCCEEDED.
    for status in [400, 404, 409] {
        let sim = Simulator::start(SimConfig::default()).await.expect("sim");
        let client = amc(&sim);
        let id = client.create(&reach_query(), &window(-9, -2)).await.expect("create");
        let (_, done) = poll_until_done(&client, &reach_query(), &id).await;
        assert_eq!(done, RequestStatus::Ready);
        sim.set_scenario(Scenario::with_fault(Fault {
            body: Some(serde_json::json!({
                "code": status, "details": format!("Execution with ID {id} is unavailable for download")
            })),
            ..Fault::answer("amc.downloadUrls", status, 1)
        }));
        let early = client.documents(&reach_query(), &id).await.expect_err("not yet");
        assert!(matches!(early, SourceError::Transient(_)), "{status}: {early:?}");
        let docs = client.documents(&reach_query(), &id).await.expect("then the documents");
        assert_eq!(docs.len(), 2);
    }
}

#[tokio::test]
async fn a_create_made_while_ten_executions_of_the_instance_are_active_is_queued_and_counted_as_a_breach() {
    // Reference §1.6 (execute-workflow.md): ten running executions per instance, the rest queued. AMC
    // does not refuse an eleventh, so the simulator counts it (the load benchmark's AMC violations).
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    for i in 0..10 {
        client
            .create(&reach_query(), &window(-30 + i, -29 + i))
            .await
            .expect("create");
    }
    assert_eq!(sim.amc_creates_over_limit(), 0, "ten fit");
    // (an eleventh sent past the client's own check, which refuses it)
    assert!(client.create(&reach_query(), &window(-2, -1)).await.is_err());
    let http = api_http_client(&policy()).expect("http client");
    let session = LwaSession::new(LwaClient::new(http.clone(), sim.token_url()), credentials());
    let token = session.access_token().await.expect("token");
    let answer = http
        .post(format!("{}/amc/reporting/amcdemo01/workflowExecutions", sim.base_url()))
        .bearer_auth(token.token.expose_secret())
        .header("Amazon-Advertising-API-ClientId", "amzn1.application-oa2-client.sim")
        .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1AA1AA11AAA1")
        .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER")
        .body(
            serde_json::json!({
                "timeWindowType": "EXPLICIT", "timeWindowStart": "2026-11-01T00:00:00",
                "timeWindowEnd": "2026-11-02T00:00:00", "workflow": {"sqlQuery": "SELECT 1"}
            })
            .to_string(),
        )
        .send()
        .await
        .expect("answer");
    assert!(answer.status().is_success(), "queued, not refused: {}", answer.status());
    assert_eq!(sim.amc_creates_over_limit(), 1);
}
