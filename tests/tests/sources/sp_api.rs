//! SP-API Reports 2021-06-30 and Sellers: reports from queue to S3, errors, throttling, schedules, cancels.

use super::*;

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
    let RequestStatus::Failed { reason, .. } = done else {
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
            cut_after: None,
            tamper: false,
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
async fn a_lost_create_of_a_report_over_more_than_ten_marketplaces_is_found_with_at_most_ten_in_the_search() {
    // reports_2021-06-30.json: createReport's marketplaceIds hold up to 25, getReports' at most 10
    // (`maxItems: 10`; the simulator refuses more, as Amazon's model says).
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let mut many = orders();
    many.marketplace_ids = (0..12).map(|i| format!("A{i:02}MARKETPLACE")).collect();
    // GIVEN a create that lands at Amazon but whose answer is lost
    sim.set_scenario(Scenario::with_fault(Fault::lost_answer("sp.createReport", 500)));
    // WHEN the client creates it
    let client = sp(&sim);
    let id = client.create(&many, &window(-3, -2)).await.expect("create");
    // THEN the search found the one report, asking with ten marketplaces
    assert_eq!(sim.created_counts().0, 1, "exactly one report at Amazon");
    let searches = sim.requests_of("sp.getReports");
    assert_eq!(searches.len(), 1);
    let asked = searches[0]
        .path
        .split("marketplaceIds=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("marketplaceIds in the search");
    assert_eq!(asked.split("%2C").count(), 10, "{}", searches[0].path);
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
                cut_after: None,
                tamper: false,
            },
            Fault {
                op: "sp.getReport".into(),
                status: 429,
                times: 2,
                retry_after: Some(0),
                body: None,
                after_effect: false,
                cut_after: None,
                tamper: false,
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
async fn hostile_ids_stay_one_path_segment_and_unknown_report_types_are_refused_with_a_clear_error() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    // A path-changing id is sent encoded, as one segment: it names no report, and nothing else is reached.
    let err = client
        .status(&orders(), "../../v2/profiles")
        .await
        .expect_err("no such report");
    assert!(matches!(err, SourceError::NotFound(_)), "{err:?}");
    assert_eq!(
        sim.requests_of("sp.getReport")[0].path,
        "/reports/2021-06-30/reports/..%2F..%2Fv2%2Fprofiles"
    );
    // One that cannot be used at all is refused before any call, as Amazon's problem, not the job's.
    let err = client.status(&orders(), "bell\u{7}").await.expect_err("unusable");
    assert!(matches!(err, SourceError::Unusable(_)), "{err:?}");
    assert_eq!(StepError::from(err).error_type(), "SourceFailed");
    assert_eq!(sim.requests_of("sp.getReport").len(), 1);
    let bad = SpReportRequest {
        report_type: "get orders; DROP".into(),
        ..orders()
    };
    let err = client.create(&bad, &window(-2, -1)).await.expect_err("bad type");
    assert!(err.to_string().contains("reportType"), "{err}");
    let unknown = SpReportRequest {
        report_type: "NOT_A_REPORT".into(),
        // (a format said, or the client refuses an undocumented type before Amazon sees it)
        format: Some(amzpipe::domain::document::ContentFormat::Tsv),
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
            cut_after: None,
            tamper: false,
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
            cut_after: None,
            tamper: false,
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

#[tokio::test]
async fn sp_api_search_for_an_earlier_report_follows_every_page_of_get_reports() {
    // Model (reports_2021-06-30.json, GetReportsResponse): `nextToken` is returned when the results exceed
    // `pageSize`; the next page is asked for with it as the only parameter.
    let sim = Simulator::start(SimConfig {
        sp_reports_page_max: 2,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = sp(&sim);
    let since = Utc::now() - Days::minutes(5);
    // GIVEN the report of window W, then three newer ones: W's is on the second page (newest first)
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    for day in [-5, -4, -3] {
        client.create(&orders(), &window(day, day + 1)).await.expect("create");
    }
    // WHEN an interrupted attempt's report is looked for
    let found = client
        .find_existing(&orders(), &window(-2, -1), since)
        .await
        .expect("search");
    // THEN it is found, and every page after the first was asked for with nextToken alone
    assert_eq!(found.as_deref(), Some(id.as_str()));
    let searches = sim.requests_of("sp.getReports");
    assert!(searches.len() >= 2, "{searches:?}");
    for later in &searches[1..] {
        assert!(
            later.path.contains("nextToken=") && !later.path.contains("reportTypes"),
            "{}",
            later.path
        );
    }
}

#[tokio::test]
async fn sp_api_search_never_adopts_a_report_whose_options_or_marketplaces_may_differ() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let since = Utc::now() - Days::minutes(5);
    let w = window(-2, -1);
    // A report of another job: the same type and window, but two marketplaces.
    let mut two_markets = orders();
    two_markets.marketplace_ids.push("A2EUQ1WTGCTBG2".into());
    client.create(&two_markets, &w).await.expect("create");
    assert_eq!(client.find_existing(&orders(), &w, since).await.expect("search"), None);
    // A report asked for with reportOptions: getReports does not say its options (the Report model has
    // none), so a job with options never adopts one, whatever it was asked with.
    let mut with_options = orders();
    with_options.report_options.insert("reportPeriod".into(), "DAY".into());
    client.create(&with_options, &window(-4, -3)).await.expect("create");
    assert_eq!(
        client
            .find_existing(&with_options, &window(-4, -3), since)
            .await
            .expect("search"),
        None
    );
    // The job without options still finds its own report.
    let own = client.create(&orders(), &w).await.expect("create");
    assert_eq!(
        client.find_existing(&orders(), &w, since).await.expect("search"),
        Some(own)
    );
}

#[tokio::test]
async fn get_reports_takes_next_token_as_its_only_parameter_like_amazon() {
    // Model: "call getReports with this token as the only parameter".
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let http = api_http_client(&policy()).expect("client");
    let session = LwaSession::new(LwaClient::new(http.clone(), sim.token_url()), credentials());
    let token = session.access_token().await.expect("token");
    let answer = http
        .get(format!("{}/reports/2021-06-30/reports", sim.base_url()))
        .query(&[("nextToken", "page1"), ("reportTypes", "GET_X")])
        .header("x-amz-access-token", token.token.expose_secret())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 400);
}

#[tokio::test]
async fn an_sp_api_403_with_a_valid_token_is_a_missing_role_not_an_expired_token() {
    // Model (reports_2021-06-30.json): 403 "Indicates that access to the resource is forbidden. Possible
    // reasons include Access Denied, Unauthorized, Expired Token, or Invalid Signature." Expiry is
    // ruled out by the refresh; what stays is a missing role or the wrong seller.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let id = client.create(&orders(), &window(-2, -1)).await.expect("create");
    sim.set_scenario(Scenario::with_fault(Fault {
        body: Some(serde_json::json!({"errors": [{"code": "Unauthorized",
            "message": "Access to requested resource is denied.", "details": ""}]})),
        ..Fault::answer("sp.getReport", 403, 2)
    }));
    let err = client.status(&orders(), &id).await.expect_err("refused");
    assert!(matches!(err, SourceError::NotAuthorized(_)), "{err:?}");
    assert!(
        err.to_string().contains("Access to requested resource is denied"),
        "{err}"
    );
}

fn unshipped_orders() -> SpReportRequest {
    // developer-docs.amazon.com/sp-api/docs/report-type-values-order: "Unshipped Orders Report …
    // This is a restricted report type … reportType value: GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING,
    // Role: Direct to Consumer Shipping (Restricted)".
    SpReportRequest {
        report_type: "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING".into(),
        ..orders()
    }
}

#[tokio::test]
async fn a_restricted_report_document_is_fetched_with_a_restricted_data_token_for_exactly_its_path() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = sp(&sim);
    let request = unshipped_orders();
    let id = client.create(&request, &window(-2, -1)).await.expect("create");
    poll_until_done(&client, &request, &id).await;
    let docs = client.documents(&request, &id).await.expect("documents");
    let document_id = docs[0].document.source_id.clone();
    let stored = store(docs).await;
    assert_eq!(stored[0].1, 256 << 10);

    // One RDT, asked for exactly `GET /reports/2021-06-30/documents/{that id}` (the restricted report
    // types guide: "the specified restricted resource can contain only a specific path, not a generic
    // path"), and getReportDocument accepted it.
    let rdt = sim.requests_of("sp.createRestrictedDataToken");
    assert_eq!(rdt.len(), 1);
    assert_eq!(rdt[0].method, "POST");
    assert_eq!(rdt[0].path, "/tokens/2021-03-01/restrictedDataToken");
    let body: serde_json::Value = serde_json::from_str(&rdt[0].body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"restrictedResources": [
            {"method": "GET", "path": format!("/reports/2021-06-30/documents/{document_id}")}
        ]})
    );
    let fetched = sim.requests_of("sp.getReportDocument");
    assert_eq!(fetched.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200]);

    // An ordinary report type needs no RDT.
    let id = client.create(&orders(), &window(-3, -2)).await.expect("create");
    poll_until_done(&client, &orders(), &id).await;
    client.documents(&orders(), &id).await.expect("documents");
    assert_eq!(sim.requests_of("sp.createRestrictedDataToken").len(), 1);
}

#[tokio::test]
async fn an_app_without_the_restricted_role_is_refused_as_credentials_naming_the_role() {
    let sim = Simulator::start(SimConfig {
        sp_restricted_roles: false,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = sp(&sim);
    let request = unshipped_orders();
    let id = client.create(&request, &window(-2, -1)).await.expect("create");
    poll_until_done(&client, &request, &id).await;
    let err = client.documents(&request, &id).await.expect_err("no role");
    let SourceError::NotAuthorized(reason) = &err else {
        panic!("expected NotAuthorized, got {err:?}");
    };
    assert!(reason.contains("Direct-to-Consumer Shipping (Restricted)"), "{reason}");
    assert!(!reason.contains("Atz"), "no token in the reason: {reason}");
    assert!(
        sim.requests_of("sp.getReportDocument").is_empty(),
        "nothing is fetched without the token"
    );
    // The step maps it to the error the state machine fails on at once.
    assert_eq!(StepError::from(err).error_type(), "CredentialsRefused");
}

#[tokio::test]
async fn a_report_polled_done_whose_next_answer_contradicts_it_is_a_source_failure_not_a_job_error() {
    // GIVEN getReport answering FATAL where the run had seen DONE (the model's Report shape)
    let replay = Replay::start(vec![Route::new(
        reqwest::Method::GET,
        "/reports/2021-06-30/reports/ID323",
        200,
        serde_json::json!({"reportId": "ID323", "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA",
            "createdTime": "2024-03-10T13:47:20.677Z", "processingStatus": "FATAL"}),
    )])
    .await
    .expect("replay");
    let client = SpReportsClient::new(
        seeded_api(AuthStyle::AmzAccessToken, "Atza|fake").await,
        replay.base_url(),
    );
    // WHEN the download step asks for its documents
    let err = client.documents(&orders(), "ID323").await.expect_err("contradiction");
    // THEN it is Amazon's contradiction (SourceFailed), never InvalidJob
    assert!(matches!(err, SourceError::Unusable(_)), "{err:?}");
    assert_eq!(StepError::from(err).error_type(), "SourceFailed");
}
