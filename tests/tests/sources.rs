//! The Amazon API clients against the simulator, over real HTTP: happy paths, documented failure
//! modes, the exact request bodies and headers, and no duplicate creates under retries.

use std::sync::Arc;
use std::time::Duration;

use amzpipe::adapters::ads_reports::AdsReportsClient;
use amzpipe::adapters::amc::{AmcClient, AmcScope, Workflow};
use amzpipe::adapters::api::{ApiClient, AuthStyle, Policy, api_http_client};
use amzpipe::adapters::lwa::{Credentials, LwaClient, LwaError, LwaSession};
use amzpipe::adapters::s3::{Encryption as Sse, S3Sink};
use amzpipe::adapters::slate::{SlateClient, watermark};
use amzpipe::adapters::sp_reports::{ReportSchedule, SpReportsClient};
use amzpipe::domain::TimeWindow;
use amzpipe::domain::source::amc::{AmcQuery, AmcRequest};
use amzpipe::domain::source::{AdsReportRequest, SlateRequest, SpReportRequest};
use amzpipe::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};
use amzpipe::transfer::{Destination, Encryption, TransferOptions, transfer_document};
use amzpipe_testkit::local_s3::LocalS3;
use amzpipe_testkit::sim::{Fault, Scenario, SimConfig, Simulator};
use chrono::{DateTime, Duration as Days, Utc};
use secrecy::{ExposeSecret, SecretString};

fn credentials() -> Credentials {
    Credentials {
        client_id: "amzn1.application-oa2-client.sim".into(),
        client_secret: SecretString::from("sim-client-secret"),
        refresh_token: SecretString::from("Atzr|sim-refresh-token"),
    }
}

fn policy() -> Policy {
    Policy {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_inline_wait: Duration::from_secs(2),
        ..Policy::default()
    }
}

fn api(sim: &Simulator, auth: AuthStyle) -> ApiClient {
    let http = api_http_client(&policy()).expect("http client");
    let session = Arc::new(LwaSession::new(
        LwaClient::new(http.clone(), sim.token_url()),
        credentials(),
    ));
    ApiClient::new(http, session, auth, policy())
}

fn sp(sim: &Simulator) -> SpReportsClient {
    SpReportsClient::new(api(sim, AuthStyle::AmzAccessToken), sim.base_url())
}

fn ads(sim: &Simulator) -> AdsReportsClient {
    AdsReportsClient::new(api(sim, AuthStyle::Bearer), sim.base_url())
}

fn amc(sim: &Simulator) -> AmcClient {
    AmcClient::new(api(sim, AuthStyle::Bearer), sim.base_url())
}

fn day(offset: i64) -> DateTime<Utc> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    today + Days::days(offset)
}

fn window(from: i64, to: i64) -> TimeWindow {
    TimeWindow::new(day(from), day(to)).expect("window")
}

fn orders() -> SpReportRequest {
    SpReportRequest {
        report_type: "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        report_options: Default::default(),
        format: None,
    }
}

fn campaigns() -> AdsReportRequest {
    AdsReportRequest {
        profile_id: "1234567890".into(),
        ad_product: "SPONSORED_PRODUCTS".into(),
        report_type_id: "spCampaigns".into(),
        columns: vec![
            "date".into(),
            "campaignId".into(),
            "impressions".into(),
            "clicks".into(),
            "cost".into(),
        ],
        group_by: vec!["campaign".into()],
        time_unit: "DAILY".into(),
        filters: vec![],
    }
}

fn reach_query() -> AmcRequest {
    AmcRequest {
        instance_id: "amcdemo01".into(),
        advertiser_id: "ENTITY1AA1AA11AAA1".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
        query: AmcQuery::Sql(
            "-- weekly reach\nSELECT campaign,\n  COUNT(DISTINCT user_id) AS reach\nFROM dsp_impressions\nGROUP BY 1"
                .into(),
        ),
        parameter_values: Default::default(),
        time_zone: Some("America/New_York".into()),
        timeout_seconds: None,
        require_synthetic_data: false,
    }
}

async fn poll_until_done<S: ReportSource>(source: &S, request: &S::Request, id: &str) -> (Vec<String>, RequestStatus) {
    let mut seen = Vec::new();
    for _ in 0..20 {
        match source.status(request, id).await.expect("status") {
            RequestStatus::InProgress { state } => seen.push(state),
            done => return (seen, done),
        }
    }
    panic!("never finished: {seen:?}");
}

async fn store(documents: Vec<SourceDocument>) -> Vec<(String, u64, Option<u64>)> {
    let s3 = LocalS3::start().await.expect("local s3");
    let client = s3.client().await;
    client.create_bucket().bucket("out").send().await.expect("bucket");
    let sink = S3Sink::new(client, "out", Sse::BucketDefault);
    let http = amzpipe::transfer::http::download_client().expect("client");
    let mut out = Vec::new();
    for (i, d) in documents.into_iter().enumerate() {
        let record = transfer_document(
            &http,
            &sink,
            d.document,
            &Destination {
                key_stem: format!("run/doc-{i}"),
            },
            &TransferOptions::default(),
        )
        .await
        .expect("transfer");
        out.extend(record.objects.into_iter().map(|o| (o.key, o.bytes, o.rows)));
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Login with Amazon

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

// ------------------------------------------------------------------------------------------------
// SP-API Reports

#[tokio::test]
async fn sp_api_report_goes_from_queue_to_done_and_its_document_lands_in_s3() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let w = window(-2, -1);
    let id = client.create(&orders(), &w).await.expect("create");
    let (states, done) = poll_until_done(&client, &orders(), &id).await;
    assert_eq!(states, vec!["IN_QUEUE", "IN_PROGRESS"]);
    assert_eq!(done, RequestStatus::Ready);
    let docs = client.documents(&orders(), &id).await.expect("documents");
    assert_eq!(docs.len(), 1);
    assert!(docs[0].document.source_id.starts_with("amzn1.spdoc.1.4.na."));
    let stored = store(docs).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].0.ends_with(".tsv"));
    assert_eq!(stored[0].1, 256 << 10);

    // The request is exactly what the model specifies.
    let create = &sim.requests_of("sp.createReport")[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/reports/2021-06-30/reports");
    assert_eq!(create.status, 202);
    assert_eq!(
        create.headers.get("x-amz-access-token").map(String::as_str),
        Some("[sent]")
    );
    let body: serde_json::Value = serde_json::from_str(&create.body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({
            "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
            "marketplaceIds": ["ATVPDKIKX0DER"],
            "dataStartTime": w.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "dataEndTime": w.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    );
}

#[tokio::test]
async fn sp_api_fatal_reports_fail_with_the_error_document_and_cancelled_ones_mean_no_data() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    sim.set_scenario(Scenario {
        outcomes: [
            (
                "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL".to_owned(),
                "FATAL".to_owned(),
            ),
            ("GET_MERCHANT_LISTINGS_ALL_DATA".to_owned(), "CANCELLED".to_owned()),
        ]
        .into(),
        ..Scenario::default()
    });
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    let (_, done) = poll_until_done(&client, &orders(), &id).await;
    let RequestStatus::Failed { reason } = done else {
        panic!("expected FATAL, got {done:?}");
    };
    assert!(reason.contains("date range is not supported"), "{reason}");

    let listings = SpReportRequest {
        report_type: "GET_MERCHANT_LISTINGS_ALL_DATA".into(),
        ..orders()
    };
    let id = client.create(&listings, &window(-2, -1)).await.expect("create");
    let (_, done) = poll_until_done(&client, &listings, &id).await;
    assert!(matches!(done, RequestStatus::NoData { .. }), "{done:?}");
}

#[tokio::test]
async fn sp_api_create_is_not_repeated_when_its_answer_is_lost() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    // The report is created, but the answer is a 500: the client must find it, not create another.
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "sp.createReport".into(),
            status: 500,
            times: 1,
            retry_after: None,
            body: None,
            after_effect: true,
        }],
        ..Scenario::default()
    });
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-3, -2)).await.expect("create");
    assert_eq!(sim.created_counts().0, 1, "exactly one report at Amazon");
    assert_eq!(sim.requests_of("sp.createReport").len(), 1);
    assert_eq!(sim.requests_of("sp.getReports").len(), 1);
    assert!(client.get_report(&id).await.is_ok());
}

#[tokio::test]
async fn sp_api_throttling_without_retry_after_is_returned_as_a_wait_and_short_waits_are_absorbed() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    sim.set_scenario(Scenario {
        faults: vec![
            Fault {
                op: "sp.createReport".into(),
                status: 429,
                times: 1,
                retry_after: None,
                body: None,
                after_effect: false,
            },
            Fault {
                op: "sp.getReport".into(),
                status: 429,
                times: 2,
                retry_after: Some(0),
                body: None,
                after_effect: false,
            },
        ],
        ..Scenario::default()
    });
    let err = client.create(&orders(), &window(-2, -1)).await.expect_err("throttled");
    let SourceError::Throttled { retry_after } = err else {
        panic!("expected Throttled, got {err:?}");
    };
    assert!(
        retry_after >= Duration::from_secs(59),
        "createReport refills one token a minute: {retry_after:?}"
    );
    assert_eq!(sim.created_counts().0, 0);
    // A later create (the state machine waited) succeeds; getReport's short 429s are retried inline.
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    client.status(&orders(), &id).await.expect("status after two 429s");
    assert_eq!(sim.requests_of("sp.getReport").len(), 3);
}

#[tokio::test]
async fn sp_api_legacy_encrypted_documents_are_decrypted_on_the_way_to_s3() {
    let sim = Simulator::start(SimConfig {
        sp_legacy_documents: true,
        sp_report_bytes: 3 << 20,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    poll_until_done(&client, &orders(), &id).await;
    let docs = client.documents(&orders(), &id).await.expect("documents");
    assert!(matches!(docs[0].document.encryption, Encryption::AesCbc { .. }));
    let stored = store(docs).await;
    assert_eq!(stored[0].1, 3 << 20);
    assert!(stored[0].2.is_some_and(|rows| rows > 1000));
}

#[tokio::test]
async fn sp_api_schedules_are_created_listed_and_cancelled_and_bad_periods_are_refused() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let schedule = ReportSchedule {
        report_schedule_id: None,
        report_type: "GET_MERCHANT_LISTINGS_ALL_DATA".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        report_options: Default::default(),
        period: "P1D".into(),
        next_report_creation_time: None,
    };
    let id = client.create_schedule(&schedule).await.expect("schedule");
    let listed = client
        .list_schedules(&["GET_MERCHANT_LISTINGS_ALL_DATA"])
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].report_schedule_id.as_deref(), Some(id.as_str()));
    client.cancel_schedule(&id).await.expect("cancel");
    let bad = ReportSchedule {
        period: "P2W".into(),
        ..schedule
    };
    assert!(matches!(
        client.create_schedule(&bad).await,
        Err(SourceError::Invalid(_))
    ));
}

#[tokio::test]
async fn hostile_ids_and_unknown_report_types_are_refused_with_a_clear_error() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let err = client
        .status(&orders(), "../../v2/profiles")
        .await
        .expect_err("hostile id");
    assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
    let bad = SpReportRequest {
        report_type: "get orders; DROP".into(),
        ..orders()
    };
    let err = client.create(&bad, &window(-2, -1)).await.expect_err("bad type");
    assert!(err.to_string().contains("reportType"), "{err}");
    let unknown = SpReportRequest {
        report_type: "NOT_A_REPORT".into(),
        ..orders()
    };
    let err = client
        .create(&unknown, &window(-2, -1))
        .await
        .expect_err("unknown type");
    assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("Invalid reportType"), "{err}");
    assert_eq!(sim.created_counts().0, 0);
}

// ------------------------------------------------------------------------------------------------
// Amazon Ads reporting v3

#[tokio::test]
async fn ads_report_is_created_with_the_scope_header_and_vendor_type_and_its_json_lands_in_s3() {
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
    assert!(stored[0].0.ends_with(".json"));

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
        }],
        ..Scenario::default()
    });
    let id = client.create(&campaigns(), &window(-3, 0)).await.expect("create");
    assert_eq!(sim.created_counts().1, 1, "one report at Amazon");
    let statuses: Vec<u16> = sim.requests_of("ads.createReport").iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![502, 425]);
    assert!(client.get_report("1234567890", &id).await.is_ok());

    // A SUMMARY request Amazon calls a duplicate of the DAILY one is not reused: wait instead.
    let summary = AdsReportRequest {
        time_unit: "SUMMARY".into(),
        ..campaigns()
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
    let RequestStatus::Failed { reason } = done else {
        panic!("expected FAILED, got {done:?}");
    };
    assert!(reason.contains("internal error"), "{reason}");
    assert!(
        sim.requests_of("ads.getReport").iter().any(|r| r.status == 401),
        "a 401 was answered and absorbed"
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

// ------------------------------------------------------------------------------------------------
// AMC

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
    let RequestStatus::Failed { reason } = done else {
        panic!("expected FAILED, got {done:?}");
    };
    assert!(reason.contains("column reach does not exist"), "{reason}");
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

// ------------------------------------------------------------------------------------------------
// Prime Video Slate

#[tokio::test]
async fn slate_lists_every_page_and_the_watermark_continues_without_gap_or_overlap() {
    let sim = Simulator::start(SimConfig {
        slate_files_per_day: 24,
        slate_rows: 10,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = SlateClient::new(api(&sim, AuthStyle::Bearer), sim.slate_url());
    assert_eq!(client.accounts().await.expect("accounts").len(), 2);
    assert_eq!(
        client
            .datasets("acct-1", "grp-1", "biz-1")
            .await
            .expect("datasets")
            .len(),
        2
    );
    let request = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "playback".into(),
        after: None,
    };
    let first_window = window(-7, -2);
    let id = client.create(&request, &first_window).await.expect("create");
    assert_eq!(
        client.status(&request, &id).await.expect("status"),
        RequestStatus::Ready
    );
    let first = client.documents(&request, &id).await.expect("documents");
    assert_eq!(first.len(), 5 * 24, "every page followed");
    assert!(sim.requests_of("slate.files").len() >= 2, "more than one page");

    // The next run starts from the watermark and fetches only newer files.
    let mark = watermark(&first).expect("watermark");
    let next = SlateRequest {
        after: Some(mark),
        ..request.clone()
    };
    let second_window = window(-3, -1);
    let id = client.create(&next, &second_window).await.expect("create");
    let second = client.documents(&next, &id).await.expect("documents");
    assert_eq!(second.len(), 24, "the day after the first window, no file twice");
    assert!(second.iter().all(|d| d.produced_at.is_some_and(|t| t > mark)));

    let stored = store(second.into_iter().take(2).collect()).await;
    assert_eq!(stored.len(), 2, "one object per ZIP entry");
    assert!(
        stored
            .iter()
            .all(|(k, _, rows)| k.ends_with(".csv") && *rows == Some(10)),
        "{stored:?}"
    );
}

#[tokio::test]
async fn slate_windows_without_files_have_no_data() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = SlateClient::new(api(&sim, AuthStyle::Bearer), sim.slate_url());
    let request = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "subscription".into(),
        after: None,
    };
    let future = window(2, 3);
    let id = client.create(&request, &future).await.expect("create");
    assert!(matches!(
        client.status(&request, &id).await.expect("status"),
        RequestStatus::NoData { .. }
    ));
}

// ------------------------------------------------------------------------------------------------
// More documented behaviours

#[tokio::test]
async fn a_queued_sp_api_report_can_be_cancelled_and_then_has_no_data() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    client.cancel_report(&id).await.expect("cancel while IN_QUEUE");
    let status = client.status(&orders(), &id).await.expect("status");
    assert!(matches!(status, RequestStatus::NoData { .. }), "{status:?}");
    assert_eq!(sim.requests_of("sp.cancelReport")[0].method, "DELETE");
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_with_backoff_and_the_announced_rate_is_applied() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "sp.getReport".into(),
            status: 503,
            times: 2,
            retry_after: None,
            body: None,
            after_effect: false,
        }],
        ..Scenario::default()
    });
    client.status(&orders(), &id).await.expect("status after two 503s");
    let statuses: Vec<u16> = sim.requests_of("sp.getReport").iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    // A fourth failure in a row is given up on as transient (4 attempts per call).
    sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "sp.getReport".into(),
            status: 500,
            times: 4,
            retry_after: None,
            body: None,
            after_effect: false,
        }],
        ..Scenario::default()
    });
    let err = client.status(&orders(), &id).await.expect_err("gives up");
    assert!(matches!(err, SourceError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn a_non_utf8_sp_api_document_is_stored_byte_for_byte() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    sim.set_scenario(Scenario {
        outcomes: [("GET_MERCHANT_LISTINGS_ALL_DATA".to_owned(), "LATIN1".to_owned())].into(),
        ..Scenario::default()
    });
    let client = sp(&sim);
    let listings = SpReportRequest {
        report_type: "GET_MERCHANT_LISTINGS_ALL_DATA".into(),
        ..orders()
    };
    let id = client.create(&listings, &window(-2, -1)).await.expect("create");
    poll_until_done(&client, &listings, &id).await;
    let docs = client.documents(&listings, &id).await.expect("documents");
    let stored = store(docs).await;
    // "sku\titem-name\tprice\n" + two ISO-8859-1 rows: 2 rows, the exact byte count.
    assert_eq!(stored[0].2, Some(2));
    assert_eq!(stored[0].1, 62);
}

#[tokio::test]
async fn a_cancelled_amc_execution_ends_as_a_failure_that_says_so() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let id = client.create(&reach_query(), &window(-4, -3)).await.expect("create");
    client.cancel(&reach_query(), &id).await.expect("cancel");
    let status = client.status(&reach_query(), &id).await.expect("status");
    assert!(
        matches!(&status, RequestStatus::Failed { reason } if reason.starts_with("CANCELLED")),
        "{status:?}"
    );
    let cancel = &sim.requests_of("amc.cancelExecution")[0];
    assert_eq!(
        (cancel.method.as_str(), cancel.body.as_str()),
        ("PUT", r#"{"status":"CANCELLED"}"#)
    );
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
async fn the_sellers_api_lists_the_marketplaces_of_the_region() {
    let sim = Simulator::start(SimConfig {
        region: "eu".into(),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let sellers = amzpipe::adapters::sellers::SellersClient::new(api(&sim, AuthStyle::AmzAccessToken), sim.base_url());
    let marketplaces = sellers.marketplace_participations().await.expect("marketplaces");
    let ids: Vec<&str> = marketplaces.iter().map(|m| m.marketplace.id.as_str()).collect();
    assert_eq!(ids, ["A1F83G8C2ARO7P", "A1PA6795UKMFR9"]);
    assert!(marketplaces.iter().all(|m| m.participation.is_participating));
}
