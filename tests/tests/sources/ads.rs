//! Amazon Ads reporting v3: creates with the Scope header, 425 duplicates, window limits, failures.

use super::*;

#[tokio::test]
async fn ads_report_is_created_with_the_scope_header_and_vendor_type_and_its_rows_land_in_s3_as_json_lines() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = ads(&sim);
    let profiles = client.profiles().await.expect("profiles");
    assert_eq!(profiles.len(), 3);
    assert!(
        profiles
            .iter()
            .all(|p| p.country_code == "US" || p.country_code == "CA")
    );

    let w = window(-7, 0);
    let id = client.create(&campaigns(), &w).await.expect("create");
    let (states, done) = poll_until_done(&client, &campaigns(), &id).await;
    assert_eq!(states, vec!["PENDING", "PROCESSING"]);
    assert_eq!(done, RequestStatus::Ready);
    let docs = client.documents(&campaigns(), &id).await.expect("documents");
    assert!(docs[0].expires_at.is_some());
    let stored = store(docs).await;
    // The report is one JSON array (GZIP_JSON); it is stored a row per line, which Athena's JSON
    // SerDe reads (it reads no arrays), and counted by its rows.
    assert!(stored[0].0.ends_with(".jsonl"), "{:?}", stored[0]);
    assert!(stored[0].2.is_some_and(|rows| rows > 0), "{:?}", stored[0]);

    let create = &sim.requests_of("ads.createReport")[0];
    assert_eq!(
        create.headers["content-type"],
        "application/vnd.createasyncreportrequest.v3+json"
    );
    assert_eq!(create.headers["amazon-advertising-api-scope"], "1234567890");
    assert_eq!(
        create.headers["amazon-advertising-api-clientid"],
        "amzn1.application-oa2-client.sim"
    );
    assert_eq!(create.headers["authorization"], "[sent]");
    let body: serde_json::Value = serde_json::from_str(&create.body).expect("json");
    let (first, last) = w.inclusive_dates();
    assert_eq!(body["startDate"], first.to_string());
    assert_eq!(body["endDate"], last.to_string());
    assert_eq!(
        body["configuration"],
        serde_json::json!({"adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"],
            "columns": ["date", "campaignId", "impressions", "clicks", "cost"], "reportTypeId": "spCampaigns",
            "timeUnit": "DAILY", "format": "GZIP_JSON"})
    );
}

#[tokio::test]
async fn ads_duplicate_425_reuses_the_report_only_when_it_matches() {
    // Slow progress keeps the first report in flight, which is when Amazon answers 425.
    let sim = Simulator::start(SimConfig {
        polls_per_stage: 5,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = ads(&sim);
    // The first create is made but its answer lost: sending it again answers 425, and the client
    // reuses the report after checking it asks for the same thing.
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "ads.createReport".into(),
            status: 502,
            times: 1,
            retry_after: None,
            body: None,
            after_effect: true,
            cut_after: None,
            tamper: false,
        }],
        ..Scenario::default()
    });
    // (without the `date` column, which a SUMMARY report of the same columns could not ask for)
    let daily = AdsReportRequest {
        columns: campaigns().columns.into_iter().filter(|c| c != "date").collect(),
        ..campaigns()
    };
    let id = client.create(&daily, &window(-3, 0)).await.expect("create");
    assert_eq!(sim.created_counts().1, 1, "one report at Amazon");
    let statuses: Vec<u16> = sim.requests_of("ads.createReport").iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![502, 425]);
    assert!(client.get_report("1234567890", &id).await.is_ok());

    // A SUMMARY request Amazon calls a duplicate of the DAILY one is not reused: wait instead.
    let summary = AdsReportRequest {
        time_unit: "SUMMARY".into(),
        ..daily.clone()
    };
    let err = client
        .create(&summary, &window(-3, 0))
        .await
        .expect_err("not the same report");
    assert!(matches!(err, SourceError::Throttled { .. }), "{err:?}");
    assert_eq!(sim.created_counts().1, 1);
}

#[tokio::test]
async fn ads_windows_over_31_days_are_refused_before_calling_amazon() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let err = ads(&sim)
        .create(&campaigns(), &window(-40, 0))
        .await
        .expect_err("too long");
    assert!(err.to_string().contains("at most 31"), "{err}");
    assert!(sim.requests_of("ads.createReport").is_empty());
}

#[tokio::test]
async fn ads_failed_reports_carry_amazons_reason_and_a_spurious_401_while_polling_is_retried() {
    let sim = Simulator::start(SimConfig {
        ads_spurious_401_every: 2,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    sim.set_scenario(Scenario {
        outcomes: [("spCampaigns".to_owned(), "FAILED".to_owned())].into(),
        ..Scenario::default()
    });
    let client = ads(&sim);
    let id = client.create(&campaigns(), &window(-2, 0)).await.expect("create");
    let (_, done) = poll_until_done(&client, &campaigns(), &id).await;
    let RequestStatus::Failed { reason, .. } = done else {
        panic!("expected FAILED, got {done:?}");
    };
    assert!(reason.contains("internal error"), "{reason}");
    assert!(
        sim.requests_of("ads.getReport").iter().any(|r| r.status == 401),
        "a 401 was answered and absorbed"
    );
}

#[tokio::test]
async fn an_ads_401_that_survives_a_fresh_token_is_a_configuration_error_not_an_expired_token() {
    // ADOC guides/account-management/authorization/profiles.md: a missing or wrong Scope answers 401, a
    // profile of another region a 4XX "Unauthorized" (reference amazon-apis.md §10). One refresh and
    // retry is right; a 401 on the fresh token means the profile or region is wrong.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = ads(&sim);
    let id = client.create(&campaigns(), &window(-2, 0)).await.expect("create");
    sim.set_scenario(Scenario::with_fault(Fault::answer("ads.getReport", 401, 2)));
    let err = client.status(&campaigns(), &id).await.expect_err("refused");
    assert!(matches!(err, SourceError::NotAuthorized(_)), "{err:?}");
    assert_eq!(
        amzpipe::steps::StepError::from(err).error_type(),
        "CredentialsRefused",
        "the state machine fails the run instead of retrying it as AuthExpired"
    );
    assert_eq!(
        sim.requests_of("lwa.token").len(),
        2,
        "the token was refreshed once, and only once"
    );
}

#[tokio::test]
async fn ads_429_without_retry_after_on_create_becomes_a_throttled_wait() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "ads.createReport".into(),
            status: 429,
            times: 1,
            retry_after: None,
            body: None,
            after_effect: false,
            cut_after: None,
            tamper: false,
        }],
        ..Scenario::default()
    });
    let err = ads(&sim)
        .create(&campaigns(), &window(-2, 0))
        .await
        .expect_err("throttled");
    assert!(
        matches!(err, SourceError::Throttled { retry_after } if retry_after >= Duration::from_secs(30)),
        "{err:?}"
    );
    assert_eq!(sim.created_counts().1, 0);
}
