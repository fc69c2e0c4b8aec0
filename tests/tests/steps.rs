//! The four steps end to end: the Amazon API simulator over real HTTP, and a local AWS (moto server)
//! over the real S3, DynamoDB and Secrets Manager wire protocols.

use std::time::Duration;

use amzpipe::adapters::dynamo::DynamoJobStore;
use amzpipe::domain::run::{RunKey, RunStatus};
use amzpipe::domain::source::amc::SLOT_LEASE as AMC_SLOT_LEASE;
use amzpipe::domain::source::sp_reports::{
    CREATE_REPORT_BURST as SP_CREATE_BURST, CREATE_REPORT_RATE as SP_CREATE_RATE,
};
use amzpipe::ports::{JobStore, Quotas};
use amzpipe::steps::{
    AwsServices, CreateOutcome, Deadline, DownloadOutcome, PollState, RunContext, UNOWNED, create_request,
    download_decrypt, poll_status, record_failure, refresh_token,
};
use amzpipe_testkit::sfn::local_definition;
use amzpipe_testkit::sim::{Fault, Scenario, SimConfig};
use amzpipe_testkit::stack::{
    BUCKET, CLIENT_SECRET, REFRESH_TOKEN, SECRET, Stack, TABLE, is_day_record, put_jobs_file, secret_value,
};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde_json::{Value, json};

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn event(job: Value) -> Value {
    json!({ "job": job, "scheduledTime": now_iso() })
}

fn sp_job() -> Value {
    json!({
        "name": "sp-orders",
        "credentials": SECRET,
        "source": { "type": "spReports", "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                    "marketplaceIds": ["ATVPDKIKX0DER"] },
        "window": { "rule": "yesterday" },
        "output": { "prefix": "raw" }
    })
}

fn ads_job() -> Value {
    json!({
        "name": "ads-campaigns",
        "credentials": SECRET,
        "source": { "type": "adsReports", "profileId": "1234567890", "adProduct": "SPONSORED_PRODUCTS",
                    "reportTypeId": "spCampaigns", "columns": ["date", "campaignId", "impressions", "clicks", "cost"],
                    "groupBy": ["campaign"] },
        "window": { "rule": "yesterday" }
    })
}

fn amc_job() -> Value {
    json!({
        "name": "amc-reach",
        "credentials": SECRET,
        "source": { "type": "amc", "instanceId": "amcdemo01", "advertiserId": "ENTITY1AA1AA11AAA1",
                    "marketplaceId": "ATVPDKIKX0DER",
                    "query": { "sql": "SELECT campaign, COUNT(DISTINCT user_id) AS reach FROM dsp_impressions GROUP BY 1" } },
        "window": { "rule": "lastDays", "days": 7 }
    })
}

fn slate_job() -> Value {
    json!({
        "name": "slate-playback",
        "credentials": SECRET,
        "source": { "type": "slate", "accountId": "acct-1", "groupId": "grp-1", "businessId": "biz-1",
                    "datasetId": "playback" },
        "window": { "rule": "yesterday" }
    })
}

async fn stack() -> Stack {
    Stack::start(SimConfig::default()).await.expect("stack")
}

fn store(stack: &Stack) -> &DynamoJobStore {
    &stack.services.store
}

fn key_of(event: &Value) -> RunKey {
    RunContext::from_event(event.clone()).expect("context").key
}

async fn object_keys(stack: &Stack) -> Vec<(String, i64)> {
    stack.aws.objects(BUCKET).await.expect("list")
}

async fn open_uploads(stack: &Stack) -> usize {
    stack.aws.open_uploads(BUCKET).await.expect("list uploads")
}

/// Takes the run of `ev` to `READY` as the state machine would: refresh, create, status checks.
async fn until_ready(s: &AwsServices, ev: &Value) {
    refresh_token(s, ev.clone()).await.expect("token");
    create_request(s, ev.clone()).await.expect("create");
    while poll_status(s, ev.clone()).await.expect("poll").state != PollState::Ready {}
}

/// A stack whose Amazon requests take a while: five status checks a stage.
async fn slow_report_stack() -> Stack {
    Stack::start(SimConfig {
        polls_per_stage: 5,
        ..SimConfig::default()
    })
    .await
    .expect("stack")
}

/// A stack whose SP-API report is 96 MiB: long enough to move that a short deadline cuts it off.
async fn big_report_stack() -> Stack {
    Stack::start(SimConfig {
        sp_report_bytes: 96 << 20,
        ..SimConfig::default()
    })
    .await
    .expect("stack")
}

/// The keys and sizes of the objects the manifest at `uri` records; checks that they, the manifest and
/// (with a catalog) the days' pointers are everything in the bucket.
async fn recorded_objects(stack: &Stack, uri: &str) -> Vec<(String, i64)> {
    let m = manifest(stack, uri).await;
    let mut recorded: Vec<String> = m["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .flat_map(|d| d["objects"].as_array().expect("objects"))
        .map(|o| o["key"].as_str().expect("a key").to_owned())
        .collect();
    recorded.sort();
    let mut stored: Vec<(String, i64)> = object_keys(stack)
        .await
        .into_iter()
        .filter(|(k, _)| !k.ends_with("/_manifest.json") && !is_day_record(k))
        .collect();
    stored.sort();
    let keys: Vec<&String> = stored.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        recorded.iter().collect::<Vec<_>>(),
        "the bucket holds what the manifest records"
    );
    stored
}

async fn manifest(stack: &Stack, uri: &str) -> Value {
    let key = uri
        .strip_prefix(&format!("s3://{BUCKET}/"))
        .expect("manifest in the bucket");
    let body = stack.aws.object_bytes(BUCKET, key).await.expect("manifest");
    serde_json::from_slice(&body).expect("manifest JSON")
}

// ------------------------------------------------------------------------------------------------
// Happy paths

#[tokio::test]
async fn an_sp_api_report_lands_in_s3_under_the_hive_layout_with_its_manifest() {
    let stack = stack().await;
    let ev = event(sp_job());
    let out = stack.run(&ev).await.expect("run").expect("data");
    assert_eq!(out.run.status, RunStatus::Succeeded);
    assert_eq!(out.totals.documents, 1);
    assert!(out.totals.rows > 0);
    let uri = out.manifest.expect("manifest");
    let day = key_of(&ev).window.start.date_naive();
    let prefix = format!(
        "raw/source=sp-reports/account=ATVPDKIKX0DER/report=GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL/dt={day}/run=sp-orders_"
    );
    assert!(uri.starts_with(&format!("s3://{BUCKET}/{prefix}")), "{uri}");
    // The orders report is split by order date: its day's rows, in objects named after the day.
    let stored = recorded_objects(&stack, &uri).await;
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|(k, _)| k.starts_with(&prefix) && k.contains(&format!("/00000-{day}-")) && k.ends_with(".tsv")),
        "{stored:?}"
    );
    let m = manifest(&stack, &uri).await;
    assert_eq!(m["context"]["job"], "sp-orders");
    assert_eq!(m["totals"]["rows"], json!(out.totals.rows));
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(run.manifest_key.is_some() && run.request_id.is_some());
    assert_eq!(stack.sim.created_counts().0, 1);
}

#[tokio::test]
async fn an_ads_report_lands_in_s3() {
    let stack = stack().await;
    let out = stack.run(&event(ads_job())).await.expect("run").expect("data");
    assert_eq!(out.run.status, RunStatus::Succeeded);
    assert_eq!(out.totals.documents, 1);
    assert!(out.totals.bytes_out > out.totals.bytes_in, "stored decompressed");
    assert_eq!(stack.sim.created_counts().1, 1);
}

#[tokio::test]
async fn an_amc_execution_lands_in_s3_and_gives_back_its_running_slot() {
    let stack = stack().await;
    let out = stack.run(&event(amc_job())).await.expect("run").expect("data");
    assert_eq!(out.totals.documents, 2, "the simulator's AMC result has two files");
    assert_eq!(out.totals.rows, 2000);
    // All ten slots are free again: ten other runs can take one each.
    for i in 0..10 {
        assert!(
            store(&stack)
                .acquire_slot(
                    "amc.running#amcdemo01",
                    &format!("other-{i}"),
                    10,
                    Utc::now(),
                    AMC_SLOT_LEASE
                )
                .await
                .expect("slot")
        );
    }
}

#[tokio::test]
async fn a_slate_run_stores_the_new_files_and_moves_the_watermark() {
    let stack = stack().await;
    let ev = event(slate_job());
    let out = stack.run(&ev).await.expect("run").expect("data");
    assert_eq!(out.totals.documents, 2, "two files a day");
    let watermark = store(&stack).watermark("slate-playback").await.expect("read");
    assert!(watermark.is_some_and(|w| w > key_of(&ev).window.start));
}

#[tokio::test]
async fn a_slate_window_that_failed_keeps_its_files_after_a_later_one_succeeds_and_no_file_is_stored_twice() {
    let stack = stack().await;
    let at = |job: Value, days_ago: i64| json!({ "job": job, "scheduledTime": (Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339() });
    let earlier = at(slate_job(), 2);
    let later = at(slate_job(), 1);
    // GIVEN the earlier window's downloads failing
    stack
        .sim
        .set_scenario(Scenario::with_fault(Fault::answer("file.download", 500, 10_000)));
    assert!(stack.run(&earlier).await.is_err());
    // AND the later window succeeding, its files newer than the earlier window's
    stack.sim.set_scenario(Scenario::default());
    let done = stack.run(&later).await.expect("run").expect("data");
    assert_eq!(done.totals.documents, 2);
    // WHEN the earlier window runs again
    let again = stack.run(&earlier).await.expect("run").expect("data");
    // THEN its files are stored (the job's watermark used to hide them: nothing stored, SUCCEEDED)
    assert_eq!(again.run.status, RunStatus::Succeeded);
    assert_eq!(again.totals.documents, 2, "the earlier window's two files");
    // AND a backfill over both windows stores none of them twice
    let mut both = slate_job();
    both["window"] = json!({ "rule": "lastDays", "days": 3 });
    let backfill = stack.run(&at(both, 0)).await.expect("run").expect("ran");
    let stored: Vec<String> = object_keys(&stack).await.into_iter().map(|(k, _)| k).collect();
    let files = stored.iter().filter(|k| !k.ends_with("_manifest.json")).count();
    assert_eq!(
        u64::try_from(files).expect("count"),
        4 + backfill.totals.objects,
        "only files no run stored before: {stored:#?}"
    );
    assert!(
        backfill.totals.documents <= 2,
        "at most the newest day's files: {backfill:?}"
    );
}

#[tokio::test]
async fn a_cancelled_sp_report_ends_the_run_as_no_data() {
    let stack = stack().await;
    stack.sim.set_scenario(Scenario::with_outcome(
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "CANCELLED",
    ));
    let ev = event(sp_job());
    assert!(stack.run(&ev).await.expect("run").is_none());
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::NoData);
    assert!(object_keys(&stack).await.is_empty());
    // download-decrypt on a NO_DATA run is a clean no-op.
    let out = download_decrypt(&stack.services, ev, Deadline::none())
        .await
        .expect("download");
    assert_eq!(out.manifest, None);
}

#[tokio::test]
async fn a_fatal_report_fails_the_run_with_amazons_reason_stored() {
    let stack = stack().await;
    stack.sim.set_scenario(Scenario::with_outcome(
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "FATAL",
    ));
    let ev = event(sp_job());
    let err = stack.run(&ev).await.expect_err("failed");
    assert_eq!(err.error_type(), "SourceFailed");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.expect("reason");
    assert!(reason.contains("SourceFailed"), "{reason}");
    assert!(err.to_string().len() > 20, "Amazon's reason is carried: {err}");
}

#[tokio::test]
async fn a_gzip_bomb_fails_the_run_as_integrity_failed_with_its_figures_and_stores_nothing() {
    // GIVEN an SP-API report and an Ads report whose documents inflate 1,000:1 (72 MiB of zeros)
    for (job, key) in [
        (sp_job(), "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"),
        (ads_job(), "spCampaigns"),
    ] {
        let stack = stack().await;
        stack.sim.set_scenario(Scenario::with_outcome(key, "BOMB"));
        let ev = event(job);
        // WHEN the run downloads it
        let err = stack.run(&ev).await.expect_err("a bomb");
        // THEN it fails as IntegrityFailed with the figures, and nothing is stored
        assert_eq!(err.error_type(), "IntegrityFailed", "{key}: {err}");
        assert!(err.to_string().contains("100:1"), "{key}: {err}");
        let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
        assert_eq!(run.status, RunStatus::Failed, "{key}");
        assert!(
            run.failure_reason.is_some_and(|r| r.contains("decompression bomb")),
            "{key}"
        );
        assert!(object_keys(&stack).await.is_empty(), "{key}: nothing stored");
        assert_eq!(open_uploads(&stack).await, 0, "{key}: no upload left open");
    }
}

#[tokio::test]
async fn an_ads_report_counts_its_json_rows_and_an_empty_report_of_any_source_is_no_data_storing_nothing() {
    // An Ads report is one JSON array: its rows are counted (the manifest said 0 before).
    let first = stack().await;
    let done = first.run(&event(ads_job())).await.expect("run").expect("data");
    // (its window is one day: the simulator's rows of one day)
    assert_eq!(done.totals.rows, u64::from(SimConfig::default().ads_rows_per_day));
    // An Ads report of `[]` and an SP-API report of its header only hold no data: NO_DATA, as a
    // cancelled SP-API report is, and nothing stored.
    for (job, key) in [
        (ads_job(), "spCampaigns"),
        (sp_job(), "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"),
    ] {
        let stack = stack().await;
        stack.sim.set_scenario(Scenario::with_outcome(key, "EMPTY"));
        let ev = event(job);
        let out = stack.run(&ev).await.expect("run").expect("the download step ran");
        assert_eq!(out.manifest, None, "{key}");
        let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
        assert_eq!(run.status, RunStatus::NoData, "{key}");
        assert!(run.failure_reason.is_some_and(|r| r.contains("no data rows")), "{key}");
        assert!(object_keys(&stack).await.is_empty(), "{key}: nothing stored");
        assert_eq!(open_uploads(&stack).await, 0, "{key}");
    }
}

#[tokio::test]
async fn a_run_amazon_failed_shows_amazons_final_status_not_the_last_in_progress_one() {
    // GIVEN a report that Amazon ends FATAL after being IN_PROGRESS
    let stack = stack().await;
    stack.sim.set_scenario(Scenario::with_outcome(
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "FATAL",
    ));
    let ev = event(sp_job());
    // WHEN the run is polled to its end
    stack.run(&ev).await.expect_err("failed");
    // THEN the run records FATAL as Amazon's status
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.amazon_status.as_deref(), Some("FATAL"));
}

#[tokio::test]
async fn the_sample_events_of_the_readme_run_end_to_end() {
    let stack = stack().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("events/") {
        let path = entry.expect("entry").path();
        let ev: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        let out = stack.run(&ev).await.expect("run").expect("data");
        assert_eq!(out.run.status, RunStatus::Succeeded, "{}", path.display());
        names.push(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    names.sort();
    assert_eq!(names, ["ads-reports.json", "amc.json", "slate.json", "sp-reports.json"]);
}

// ------------------------------------------------------------------------------------------------
// Idempotency

#[tokio::test]
async fn a_duplicate_schedule_fire_continues_the_same_run_and_creates_nothing_twice() {
    let stack = stack().await;
    let ev = event(sp_job());
    let first = create_request(&stack.services, ev.clone()).await.expect("create");
    assert_eq!(first.outcome, CreateOutcome::Created);
    // The same schedule fires again (EventBridge delivers at least once), in another container.
    let other = stack.cold_services().await.expect("services");
    let second = create_request(&other, ev.clone()).await.expect("create again");
    assert_eq!(second.outcome, CreateOutcome::Existing);
    assert_eq!(second.request_id, first.request_id);
    let out = stack.run(&ev).await.expect("run").expect("data");
    let objects = object_keys(&stack).await;
    // After the run ended, a third fire finds it done, and download-decrypt returns the same manifest.
    let third = create_request(&other, ev.clone()).await.expect("create after the end");
    assert_eq!(third.outcome, CreateOutcome::Done);
    let again = download_decrypt(&other, ev, Deadline::none())
        .await
        .expect("download again");
    assert_eq!(again.manifest, out.manifest);
    assert_eq!(object_keys(&stack).await, objects, "no second object");
    assert_eq!(stack.sim.created_counts().0, 1, "one Amazon report");
}

/// A create-request that claimed the run and started its create, then died: its outcome is unknown.
async fn create_started(s: &AwsServices, ctx: &RunContext) {
    s.store
        .claim_run(&ctx.key, ctx.job.source.kind(), Utc::now())
        .await
        .expect("claim");
    let now = Utc::now();
    s.store
        .begin_create(&ctx.key, UNOWNED, now, now + chrono::Duration::minutes(15))
        .await
        .expect("begin");
}

#[tokio::test]
async fn a_retry_after_a_crash_between_create_and_record_finds_the_request_instead_of_creating_another() {
    for job in [sp_job(), amc_job(), ads_job()] {
        let stack = stack().await;
        let ev = event(job);
        let ctx = RunContext::from_event(ev.clone()).expect("context");
        // GIVEN a create-request that claimed the run, started the create, and died right after
        // Amazon accepted it (before recording the id).
        let s = &stack.services;
        create_started(s, &ctx).await;
        let session = s.session(&ctx.job).await.expect("session");
        let lost_id = s
            .bind(&ctx.job, &session)
            .await
            .expect("bind")
            .create(&ctx.window)
            .await
            .expect("create");
        // WHEN Step Functions retries the step
        let out = create_request(s, ev.clone()).await.expect("retried create");
        // THEN the request is found and recorded, and Amazon has one request
        assert_eq!(out.request_id.as_deref(), Some(lost_id.as_str()), "{}", ctx.job.name);
        let (sp, ads, amc) = stack.sim.created_counts();
        assert_eq!(sp + ads + amc, 1, "{}: one Amazon request", ctx.job.name);
        let done = stack.run(&ev).await.expect("run").expect("data");
        assert_eq!(done.run.status, RunStatus::Succeeded);
    }
}

#[tokio::test]
async fn a_create_amazon_refused_with_429_is_retried_as_a_create_without_searching_first() {
    // GIVEN an SP-API createReport that Amazon throttles for a minute (it created nothing)
    let stack = stack().await;
    stack.sim.set_scenario(Scenario::with_fault(Fault {
        retry_after: Some(60),
        ..Fault::answer("sp.createReport", 429, 1)
    }));
    let ev = event(sp_job());
    let first = create_request(&stack.services, ev.clone()).await.expect("throttled");
    assert_eq!(first.outcome, CreateOutcome::Throttled);
    // WHEN the state machine calls again after the wait
    let second = create_request(&stack.services, ev.clone()).await.expect("created");
    // THEN it creates at once, without searching for a report the refusal never made
    assert_eq!(second.outcome, CreateOutcome::Created);
    assert!(
        stack.sim.requests_of("sp.getReports").is_empty(),
        "no search after a definite refusal"
    );
    assert_eq!(stack.sim.created_counts().0, 1);
}

#[tokio::test]
async fn a_failed_search_for_an_earlier_attempts_request_is_transient_and_never_fails_the_run() {
    for (job, search) in [(sp_job(), "sp.getReports"), (amc_job(), "amc.listExecutions")] {
        // GIVEN a create attempt whose outcome is unknown (it died after calling Amazon)
        let stack = stack().await;
        let ev = event(job);
        let ctx = RunContext::from_event(ev.clone()).expect("context");
        let s = &stack.services;
        create_started(s, &ctx).await;
        // WHEN the retry's search for that request meets a 404
        stack
            .sim
            .set_scenario(Scenario::with_fault(Fault::answer(search, 404, 1)));
        let err = create_request(s, ev.clone()).await.expect_err("search failed");
        // THEN the step is retried, the run is not failed
        assert_eq!(err.error_type(), "Transient", "{search}: {err}");
        let run = store(&stack).run(&ctx.key).await.expect("read").expect("run");
        assert_eq!(run.status, RunStatus::Claimed, "{search}");
        // AND the next retry searches again and goes on
        let out = create_request(s, ev.clone()).await.expect("retried");
        assert_eq!(out.outcome, CreateOutcome::Created, "{search}");
    }
}

#[tokio::test]
async fn ids_amazon_returns_are_percent_encoded_as_one_path_segment_and_the_run_succeeds() {
    // GIVEN Amazon returning report and document ids that would change a URL if pasted into it
    let stack = Stack::start(SimConfig {
        sp_id_suffix: "/../../v2/profiles?x=1 #|é".into(),
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    let ev = event(sp_job());
    // WHEN the run polls and downloads with them
    let done = stack.run(&ev).await.expect("run").expect("data");
    // THEN it succeeds, every id sent as one encoded segment
    assert_eq!(done.run.status, RunStatus::Succeeded);
    let polled = stack.sim.requests_of("sp.getReport");
    assert!(!polled.is_empty());
    assert!(
        polled
            .iter()
            .all(|r| r.path.contains("%2F..%2F..%2Fv2%2Fprofiles%3Fx%3D1%20%23%7C%C3%A9")),
        "{:?}",
        polled.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        stack.sim.requests_of("ads.profiles").is_empty(),
        "no request went elsewhere"
    );
}

#[tokio::test]
async fn an_id_that_cannot_be_used_fails_the_run_as_source_failed_before_any_call_uses_it() {
    // GIVEN Amazon returning a report id holding a control character
    let stack = Stack::start(SimConfig {
        sp_id_suffix: "\u{7}".into(),
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    let ev = event(sp_job());
    // WHEN create-request receives it
    let err = stack.run(&ev).await.expect_err("unusable id");
    // THEN the run fails as SourceFailed naming the problem (the job is fine), and nothing polls it
    assert_eq!(err.error_type(), "SourceFailed", "{err}");
    assert!(err.to_string().contains("control character"), "{err}");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(stack.sim.requests_of("sp.getReport").is_empty());
}

#[tokio::test]
async fn two_executions_on_one_run_make_one_amazon_request_and_never_abort_each_others_uploads() {
    let stack = stack().await;
    let s = &stack.services;
    let as_execution = |name: &str| {
        let mut ev = event(sp_job());
        ev["owner"] = json!(name);
        ev
    };
    let (a, b) = (as_execution("scheduled-2026-11-26"), as_execution("manual-run"));
    let ctx = RunContext::from_event(a.clone()).expect("context");
    // GIVEN execution A in the middle of creating the run's request
    s.store
        .claim_run(&ctx.key, ctx.job.source.kind(), Utc::now())
        .await
        .expect("claim");
    let now = Utc::now();
    s.store
        .begin_create(
            &ctx.key,
            "scheduled-2026-11-26",
            now,
            now + chrono::Duration::minutes(15),
        )
        .await
        .expect("A's lease");
    // WHEN execution B (a manual run beside the schedule) reaches create-request
    let waiting = create_request(s, b.clone()).await.expect("B waits");
    // THEN B waits and creates nothing
    assert_eq!(waiting.outcome, CreateOutcome::Throttled);
    assert_eq!(stack.sim.created_counts().0, 0);
    // AND once A has made the request, B continues the same run
    assert_eq!(
        create_request(s, a.clone()).await.expect("A").outcome,
        CreateOutcome::Created
    );
    assert_eq!(
        create_request(s, b.clone()).await.expect("B").outcome,
        CreateOutcome::Existing
    );
    assert_eq!(stack.sim.created_counts().0, 1, "one request at Amazon");
    while poll_status(s, a.clone()).await.expect("poll").state == PollState::InProgress {}
    // GIVEN A storing the documents, one upload open under the run
    let now = Utc::now();
    s.store
        .begin_download(
            &ctx.key,
            "scheduled-2026-11-26",
            now,
            now + chrono::Duration::minutes(20),
        )
        .await
        .expect("A's download lease");
    let in_flight = format!("{}/00000.tsv", ctx.run_prefix());
    stack
        .aws
        .s3()
        .await
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&in_flight)
        .send()
        .await
        .expect("A's upload");
    // WHEN B's download starts
    let err = download_decrypt(s, b.clone(), Deadline::none())
        .await
        .expect_err("B waits");
    // THEN B waits (NotReady, retried) and A's upload is untouched
    assert_eq!(err.error_type(), "NotReady", "{err}");
    assert_eq!(open_uploads(&stack).await, 1, "A's upload is not aborted by B");
    // AND A stores exactly one copy
    let done = download_decrypt(s, a, Deadline::none()).await.expect("A");
    assert_eq!(done.totals.documents, 1);
    assert_eq!(open_uploads(&stack).await, 0);
}

#[tokio::test]
async fn a_download_cut_off_by_the_deadline_continues_without_a_retry_and_stores_exactly_one_copy() {
    let stack = big_report_stack().await;
    let ev = event(sp_job());
    let s = &stack.services;
    until_ready(s, &ev).await;
    // The Lambda deadline comes while the 96 MiB document is moving: the step answers CONTINUE (the
    // state machine calls it again, spending no retry), not an error.
    let cut = download_decrypt(s, ev.clone(), Deadline::after(Duration::from_millis(150)))
        .await
        .expect("cut off");
    assert_eq!(cut.outcome, DownloadOutcome::Continue);
    assert_eq!(cut.run.status, RunStatus::Ready);
    assert!(object_keys(&stack).await.is_empty(), "nothing at a final key");
    assert_eq!(open_uploads(&stack).await, 0, "the cut-off upload is aborted");
    // The next call has time enough.
    let out = download_decrypt(s, ev, Deadline::none())
        .await
        .expect("continued download");
    assert_eq!(out.outcome, DownloadOutcome::Done);
    assert_eq!(out.run.status, RunStatus::Succeeded);
    // One copy: the manifest's objects and nothing else, the whole 96 MiB (each day object repeats
    // the header line).
    let stored = recorded_objects(&stack, &out.manifest.expect("manifest")).await;
    let bytes: i64 = stored.iter().map(|(_, size)| size).sum();
    let header = amzpipe_testkit::fixtures::SP_API_ORDERS_HEADER.len() as i64;
    assert_eq!(bytes, (96 << 20) + header * (stored.len() as i64 - 1), "{stored:?}");
    assert_eq!(open_uploads(&stack).await, 0);
}

#[tokio::test]
async fn an_expired_download_url_is_replaced_by_a_fresh_one_from_the_source() {
    let stack = stack().await;
    // The first download of the second AMC file answers S3's 403 for an expired pre-signed URL.
    stack.sim.set_scenario(Scenario {
        faults: vec![amzpipe_testkit::sim::Fault {
            op: "file.download".into(),
            status: 403,
            times: 1,
            retry_after: None,
            body: None,
            after_effect: false,
            cut_after: None,
            tamper: false,
        }],
        ..Scenario::default()
    });
    let out = stack.run(&event(amc_job())).await.expect("run").expect("data");
    assert_eq!(out.totals.documents, 2);
    assert!(
        stack.sim.requests_of("amc.downloadUrls").len() >= 2,
        "fresh URLs were asked for"
    );
    assert_eq!(open_uploads(&stack).await, 0);
}

#[tokio::test]
async fn a_request_still_running_after_max_polls_fails_the_run() {
    let stack = slow_report_stack().await;
    let mut job = sp_job();
    job["limits"] = json!({ "maxPolls": 2 });
    let ev = event(job);
    let err = stack.run(&ev).await.expect_err("gave up");
    assert_eq!(err.error_type(), "SourceFailed");
    assert!(err.to_string().contains("maxPolls"), "{err}");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.polls, 2);
}

#[tokio::test]
async fn a_status_check_whose_answer_dynamodb_lost_is_counted_once_when_the_sdk_sends_it_again() {
    // GIVEN a run in progress at Amazon, and a DynamoDB whose answer to the next write of a count is
    // lost after the write landed (the SDK then sends the same write again)
    let stack = slow_report_stack().await;
    let s = &stack.services;
    let ev = event(sp_job());
    refresh_token(s, ev.clone()).await.expect("token");
    create_request(s, ev.clone()).await.expect("create");
    let proxy = amzpipe_testkit::aws_faults::FaultProxy::start(stack.aws.endpoint())
        .await
        .expect("proxy");
    proxy.add(amzpipe_testkit::aws_faults::Rule {
        target: Some("UpdateItem".into()),
        path_contains: None,
        body_contains: Some("polls".into()),
        times: 1,
        fault: amzpipe_testkit::aws_faults::Fault::LoseAnswer,
    });
    let config = stack.aws.sdk_config_via(proxy.url()).await;
    let through_proxy = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE, 30);
    // WHEN one status check is counted through it
    let polls = through_proxy
        .record_poll(&key_of(&ev), 0, "IN_QUEUE", Utc::now())
        .await
        .expect("counted");
    // THEN the answer was lost once, and the check counts once
    assert_eq!(proxy.faulted(), 1, "the fault was met");
    assert_eq!(polls, 1);
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(
        run.polls, 1,
        "the SDK's second send of a write that landed adds nothing"
    );
}

#[tokio::test]
async fn a_view_another_writer_changed_meanwhile_is_written_again_not_failed() {
    // GIVEN Glue answering the first write of a view with ConcurrentModificationException (another
    // run wrote it at the same moment)
    let stack = stack().await;
    let proxy = amzpipe_testkit::aws_faults::FaultProxy::start(stack.aws.endpoint())
        .await
        .expect("proxy");
    proxy.add(amzpipe_testkit::aws_faults::Rule {
        target: Some("CreateTable".into()),
        path_contains: None,
        body_contains: Some("VIRTUAL_VIEW".into()),
        times: 1,
        fault: amzpipe_testkit::aws_faults::Fault::Refuse {
            status: 400,
            body: r#"{"__type":"ConcurrentModificationException","Message":"Update table failed due to concurrent modifications."}"#
                .into(),
        },
    });
    let glue = aws_sdk_glue::Client::new(&stack.aws.sdk_config_via(proxy.url()).await);
    let catalog = amzpipe::adapters::glue::GlueCatalog::new(glue, amzpipe_testkit::stack::GLUE_DATABASE.into());
    let view = amzpipe::ports::ViewDefinition {
        name: "slate_playback_current".into(),
        description: "a view".into(),
        sql: "SELECT 1 AS \"one\"".into(),
        columns: vec![("one".into(), amzpipe::domain::document::ColumnKind::BigInt)],
    };
    // WHEN the run writes it
    amzpipe::steps::catalog::put_view(&catalog, &view)
        .await
        .expect("written after the conflict");
    // THEN the conflict cost one attempt, and the view is there
    assert_eq!(proxy.faulted(), 1);
    let written = aws_sdk_glue::Client::new(&stack.aws.sdk_config().await)
        .get_table()
        .database_name(amzpipe_testkit::stack::GLUE_DATABASE)
        .name("slate_playback_current")
        .send()
        .await
        .expect("the view");
    assert_eq!(written.table().and_then(|t| t.table_type()), Some("VIRTUAL_VIEW"));
}

#[tokio::test]
async fn a_sealed_token_opens_through_a_kms_throttling_burst_longer_than_the_sdks_retries() {
    // GIVEN a token sealed under the stack's token key, and KMS throttling the next five Decrypts (the
    // SDK's standard retry makes three attempts)
    let stack = stack().await;
    let sealer = amzpipe::adapters::kms::TokenSealer::new(
        aws_sdk_kms::Client::new(&stack.aws.sdk_config().await),
        amzpipe_testkit::stack::TOKEN_KEY,
    );
    let sealed = sealer.seal("Atza|token", SECRET).await.expect("sealed");
    let proxy = amzpipe_testkit::aws_faults::FaultProxy::start(stack.aws.endpoint())
        .await
        .expect("proxy");
    proxy.add(amzpipe_testkit::aws_faults::Rule {
        target: Some("Decrypt".into()),
        path_contains: None,
        body_contains: None,
        times: 5,
        fault: amzpipe_testkit::aws_faults::Fault::Refuse {
            status: 400,
            body: r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
        },
    });
    let throttled = amzpipe::adapters::kms::TokenSealer::new(
        aws_sdk_kms::Client::new(&stack.aws.sdk_config_via(proxy.url()).await),
        amzpipe_testkit::stack::TOKEN_KEY,
    );
    // WHEN a function opens it
    let token = throttled.open(&sealed, SECRET).await.expect("opened after the burst");
    // THEN it waited the throttling out instead of falling back to a Login with Amazon refresh
    assert_eq!(secrecy::ExposeSecret::expose_secret(&token), "Atza|token");
    assert_eq!(proxy.faulted(), 5);
}

// ------------------------------------------------------------------------------------------------
// Quotas shared across Lambdas

#[tokio::test]
async fn an_empty_sp_api_create_bucket_answers_throttled_without_calling_amazon() {
    let stack = stack().await;
    // Other runs of the same seller used the whole burst.
    for _ in 0..SP_CREATE_BURST {
        let taken = store(&stack)
            .take_token(
                &format!("sp.createReport#{SECRET}"),
                SP_CREATE_RATE,
                SP_CREATE_BURST,
                Utc::now(),
            )
            .await
            .expect("token");
        assert_eq!(taken, None);
    }
    let out = create_request(&stack.services, event(sp_job())).await.expect("create");
    assert_eq!(out.outcome, CreateOutcome::Throttled);
    assert!(out.wait_seconds >= 1);
    assert!(
        stack.sim.requests_of("sp.createReport").is_empty(),
        "Amazon was not called"
    );
}

/// A stack whose SP-API createReport answers 503 to everything, Amazon's own usage plans out of the
/// way (so that only the pipeline's are measured).
async fn storm_stack() -> Stack {
    let stack = Stack::start(SimConfig {
        sp_rate_limits: false,
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    stack
        .sim
        .set_scenario(Scenario::with_fault(Fault::answer("sp.createReport", 503, 10_000)));
    stack
}

#[tokio::test]
async fn a_storm_of_5xx_never_sends_more_creates_than_the_sellers_usage_plan_allows() {
    // GIVEN an SP-API createReport answering 503 to everything (Amazon's own limit out of the way,
    // so that only ours is measured)
    let stack = storm_stack().await;
    // WHEN the state machine keeps retrying create-request, as its Retry does
    let ev = event(sp_job());
    let mut throttled = false;
    for _ in 0..40 {
        match create_request(&stack.services, ev.clone()).await {
            Ok(out) if out.outcome == CreateOutcome::Throttled => {
                throttled = true;
                break;
            }
            Ok(out) => panic!("unexpected {out:?}"),
            Err(e) => assert_eq!(e.error_type(), "Transient", "{e}"),
        }
    }
    // THEN every HTTP attempt was charged to the seller's shared bucket: no more creates reached
    // Amazon than the part of the plan's burst the table allows (12 of 15), and the step ends
    // throttled instead of sending more
    assert!(throttled, "the shared bucket ran out");
    let creates = stack.sim.requests_of("sp.createReport").len();
    assert!(creates > 0 && creates <= 12, "{creates} creates reached Amazon");
    let searches = stack.sim.requests_of("sp.getReports").len();
    assert!(searches <= 10, "{searches} getReports (burst 10)");
}

#[tokio::test]
async fn a_create_that_meets_only_5xx_and_an_empty_bucket_ends_failed_with_its_last_answer_after_the_runs_step_bound() {
    // GIVEN an SP-API createReport answering 503 to everything, and a job bounding its run's step calls
    // at 6 (the default keeps a slice's execution within Step Functions' 25,000 history events)
    let stack = storm_stack().await;
    let mut job = sp_job();
    job["limits"] = json!({ "maxStepCalls": 6 });
    let ev = event(job);
    // WHEN the state machine keeps calling create-request: its retries, and WaitForCapacity's loop
    // (which spends no retry)
    let mut calls = 0;
    let ended = loop {
        calls += 1;
        assert!(calls <= 40, "the create loop did not end");
        match create_request(&stack.services, ev.clone()).await {
            Ok(out) if out.outcome == CreateOutcome::Throttled => {}
            Ok(out) => panic!("unexpected {out:?}"),
            Err(e) if e.is_retryable() => {}
            Err(e) => break e,
        }
    };
    // THEN it ended at the bound kept on the run, FAILED, saying why and what Amazon last answered
    assert_eq!(ended.error_type(), "SourceFailed", "{ended}");
    assert!(calls <= 6, "{calls} calls");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.unwrap_or_default();
    assert!(
        reason.contains("maxStepCalls") && reason.contains("the last answer"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_full_amc_instance_answers_throttled_until_a_slot_frees() {
    let stack = stack().await;
    for i in 0..10 {
        assert!(
            store(&stack)
                .acquire_slot(
                    "amc.running#amcdemo01",
                    &format!("other-{i}"),
                    10,
                    Utc::now(),
                    AMC_SLOT_LEASE
                )
                .await
                .expect("slot")
        );
    }
    let ev = event(amc_job());
    let out = create_request(&stack.services, ev.clone()).await.expect("create");
    assert_eq!(out.outcome, CreateOutcome::Throttled);
    assert!(stack.sim.requests_of("amc.createExecution").is_empty());
    store(&stack)
        .release_slot("amc.running#amcdemo01", "other-3")
        .await
        .expect("release");
    let out = create_request(&stack.services, ev).await.expect("create");
    assert_eq!(out.outcome, CreateOutcome::Created);
}

#[tokio::test]
async fn a_slot_whose_holder_died_without_giving_it_back_frees_itself_when_its_lease_ends() {
    let stack = stack().await;
    let store = store(&stack);
    let name = "amc.running#amcdemo01";
    let taken = Utc::now() - chrono::Duration::hours(3);
    for i in 0..10 {
        assert!(
            store
                .acquire_slot(name, &format!("dead-{i}"), 10, taken, AMC_SLOT_LEASE)
                .await
                .expect("slot")
        );
    }
    // Renewing keeps a holder's slot: dead-0 is alive after all.
    assert!(
        store
            .acquire_slot(name, "dead-0", 10, Utc::now(), AMC_SLOT_LEASE)
            .await
            .expect("renewed")
    );
    // The other nine leases ended an hour ago; a new run gets a slot, and eight more after it.
    for i in 0..9 {
        assert!(
            store
                .acquire_slot(name, &format!("new-{i}"), 10, Utc::now(), AMC_SLOT_LEASE)
                .await
                .expect("slot"),
            "slot {i}"
        );
    }
    assert!(
        !store
            .acquire_slot(name, "one-too-many", 10, Utc::now(), AMC_SLOT_LEASE)
            .await
            .expect("full"),
        "ten live holders: full"
    );
    store.release_slot(name, "dead-0").await.expect("released");
    assert!(
        store
            .acquire_slot(name, "one-too-many", 10, Utc::now(), AMC_SLOT_LEASE)
            .await
            .expect("slot")
    );
}

// ------------------------------------------------------------------------------------------------
// Credentials

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_as_a_new_secret_version_keeping_the_previous_one() {
    let stack = Stack::start(SimConfig {
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    refresh_token(&stack.services, event(sp_job())).await.expect("refresh");
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws.sdk_config().await);
    let current: Value = serde_json::from_str(
        sm.get_secret_value()
            .secret_id(SECRET)
            .send()
            .await
            .expect("current")
            .secret_string()
            .expect("string"),
    )
    .expect("json");
    let rotated = current["refreshToken"].as_str().expect("token");
    assert!(rotated.starts_with("Atzr|rotated"), "{rotated}");
    assert_eq!(current["clientSecret"], CLIENT_SECRET);
    let previous = sm
        .get_secret_value()
        .secret_id(SECRET)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .expect("previous");
    assert!(previous.secret_string().expect("string").contains(REFRESH_TOKEN));
    // A cold container reads the rotated token and works with it (the old one is retired at LWA).
    let cold = stack.cold_services().await.expect("services");
    let out = stack.run(&event(ads_job())).await.expect("run with the warm container");
    assert!(out.is_some());
    refresh_token(&cold, event(ads_job())).await.expect("cold refresh");
}

#[tokio::test]
async fn a_credential_set_that_names_its_token_endpoint_is_refreshed_there() {
    // GIVEN functions without an endpoint override, and a secret whose tokenUrl is the simulator's
    let stack = stack().await;
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws.sdk_config().await);
    let mut value: Value = serde_json::from_str(&amzpipe_testkit::stack::secret_value("eu")).expect("JSON");
    value["tokenUrl"] = json!(stack.sim.token_url());
    sm.create_secret()
        .name("amzpipe/eu-seller")
        .secret_string(value.to_string())
        .send()
        .await
        .expect("secret");
    let mut settings = amzpipe_testkit::stack::settings(&stack.sim);
    settings.endpoints.lwa = None;
    let services =
        amzpipe::steps::AwsServices::from_sdk_config(&stack.aws.sdk_config().await, settings).expect("services");
    let mut job = sp_job();
    job["credentials"] = json!("amzpipe/eu-seller");
    // WHEN its token is refreshed
    refresh_token(&services, event(job.clone())).await.expect("refresh");
    // THEN LWA was asked at the secret's endpoint, and a rotated token keeps it
    assert_eq!(stack.sim.requests_of("lwa.token").len(), 1);
    let ctx = RunContext::from_event(event(job)).expect("context");
    let session = services.session(&ctx.job).await.expect("session");
    assert_eq!(
        session.stored.token_url.as_deref(),
        Some(stack.sim.token_url().as_str())
    );
    assert_eq!(
        ctx.job.source.rules().token_host(),
        amzpipe::domain::credentials::TokenHost::Global,
        "an SP-API job refreshes at api.amazon.com unless its credential set says otherwise"
    );
}

#[tokio::test]
async fn the_access_token_is_shared_between_functions_through_the_table() {
    let stack = stack().await;
    refresh_token(&stack.services, event(sp_job())).await.expect("refresh");
    assert_eq!(stack.sim.requests_of("lwa.token").len(), 1);
    // Another function, in another container, finds the token instead of refreshing.
    let cold = stack.cold_services().await.expect("services");
    create_request(&cold, event(sp_job())).await.expect("create");
    assert_eq!(stack.sim.requests_of("lwa.token").len(), 1, "no second refresh");
}

#[tokio::test]
async fn the_shared_access_token_is_sealed_in_the_table_and_opens_only_under_its_key() {
    let stack = stack().await;
    refresh_token(&stack.services, event(sp_job())).await.expect("refresh");
    // THEN the token item holds no token, only what opening it with the key needs
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.aws.sdk_config().await);
    let item = dynamo
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(format!("TOKEN#{SECRET}")))
        .key("sk", AttributeValue::S("ACCESS_TOKEN".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the token item");
    let shown = format!("{item:?}");
    assert!(!shown.contains("Atza|") && !item.contains_key("token"), "{shown}");
    for attribute in ["sealedToken", "dataKey", "nonce"] {
        assert!(
            matches!(item.get(attribute), Some(AttributeValue::B(_))),
            "{attribute}: {shown}"
        );
    }
    assert!(
        matches!(item.get("keyId"), Some(AttributeValue::S(k)) if k.starts_with("arn:aws:kms:")),
        "{shown}"
    );
    // AND another container with the key opens it instead of refreshing
    let cold = stack.cold_services().await.expect("services");
    refresh_token(&cold, event(sp_job())).await.expect("cold refresh");
    assert_eq!(
        stack.sim.requests_of("lwa.token").len(),
        1,
        "the sealed token was read back"
    );
    // AND one without the key neither reads nor writes a token: it refreshes its own
    let mut settings = amzpipe_testkit::stack::settings(&stack.sim);
    settings.token_key_id = None;
    let keyless =
        amzpipe::steps::AwsServices::from_sdk_config(&stack.aws.sdk_config().await, settings).expect("services");
    refresh_token(&keyless, event(sp_job())).await.expect("keyless refresh");
    assert_eq!(stack.sim.requests_of("lwa.token").len(), 2);
    // AND a sealed token copied to another credential set's item does not open there
    let mut copied = item.clone();
    copied.insert("pk".into(), AttributeValue::S("TOKEN#amzpipe/other".into()));
    dynamo
        .put_item()
        .table_name(TABLE)
        .set_item(Some(copied))
        .send()
        .await
        .expect("copy");
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws.sdk_config().await);
    sm.create_secret()
        .name("amzpipe/other")
        .secret_string(amzpipe_testkit::stack::secret_value("na"))
        .send()
        .await
        .expect("secret");
    let mut other = sp_job();
    other["credentials"] = json!("amzpipe/other");
    refresh_token(&stack.cold_services().await.expect("services"), event(other))
        .await
        .expect("refresh of the other set");
    assert_eq!(
        stack.sim.requests_of("lwa.token").len(),
        3,
        "the copied token did not open"
    );
}

#[tokio::test]
async fn a_secret_stored_as_a_bare_string_is_refused_without_echoing_it() {
    let stack = stack().await;
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws.sdk_config().await);
    sm.create_secret()
        .name("amzpipe/bare")
        .secret_string(json!("Atzr|fake-token-pasted-as-the-whole-secret").to_string())
        .send()
        .await
        .expect("secret");
    let mut job = sp_job();
    job["credentials"] = json!("amzpipe/bare");
    let err = refresh_token(&stack.services, event(job)).await.expect_err("refused");
    assert_eq!(err.error_type(), "InvalidJob");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("fake-token-pasted") && !text.contains("Atzr|"), "{text}");
    assert!(
        text.contains("amzpipe/bare") && text.contains("a JSON string"),
        "{text}"
    );
}

#[tokio::test]
async fn revoked_credentials_fail_with_credentials_refused() {
    let stack = stack().await;
    stack.sim.revoke_refresh_tokens();
    let err = refresh_token(&stack.services, event(sp_job()))
        .await
        .expect_err("refused");
    assert_eq!(err.error_type(), "CredentialsRefused");
    assert!(err.to_string().contains("authorise"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Bad input

#[tokio::test]
async fn invalid_job_definitions_are_rejected_naming_the_field() {
    let stack = stack().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "scheduledTime": now_iso() }), "job: is missing"),
        (json!({ "job": sp_job() }), "scheduledTime"),
        (json!({ "job": sp_job(), "scheduledTime": "yesterday" }), "RFC 3339"),
        (
            {
                let mut j = sp_job();
                j["source"]["type"] = json!("vendorReports");
                event(j)
            },
            "job.source",
        ),
        (
            {
                let mut j = sp_job();
                j["source"]["reportType"] = json!("get orders; drop table");
                event(j)
            },
            "reportType",
        ),
        (
            {
                let mut j = ads_job();
                j["source"]["profileId"] = json!("../../1");
                event(j)
            },
            "job.source.profileId",
        ),
        (
            {
                let mut j = sp_job();
                j["window"] = json!({ "rule": "lastDays" });
                event(j)
            },
            "needs `days`",
        ),
        (
            {
                let mut j = sp_job();
                j["colour"] = json!("blue");
                event(j)
            },
            "colour",
        ),
        (
            {
                let mut j = sp_job();
                j["credentials"] = json!("amzpipe/nobody");
                event(j)
            },
            "does not exist",
        ),
        (
            json!({ "job": sp_job(), "scheduledTime": now_iso(), "slice": 3 }),
            "slice",
        ),
    ];
    for (ev, expected) in cases {
        let err = create_request(&stack.services, ev.clone()).await.expect_err("refused");
        assert_eq!(err.error_type(), "InvalidJob", "{ev}: {err}");
        assert!(
            err.to_string().contains(expected),
            "{ev}: {err} should mention {expected:?}"
        );
    }
    assert!(stack.sim.requests_of("sp.createReport").is_empty());
}

#[tokio::test]
async fn a_malformed_secret_is_reported_without_its_value() {
    let stack = stack().await;
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws.sdk_config().await);
    sm.create_secret()
        .name("amzpipe/broken")
        .secret_string(json!({ "clientId": "x", "clientSecret": "hush-9876", "refresh": "Atzr|x" }).to_string())
        .send()
        .await
        .expect("secret");
    let mut job = sp_job();
    job["credentials"] = json!("amzpipe/broken");
    let err = refresh_token(&stack.services, event(job)).await.expect_err("refused");
    assert_eq!(err.error_type(), "InvalidJob");
    let text = err.to_string();
    assert!(text.contains("amzpipe/broken") && !text.contains("hush-9876"), "{text}");
}

#[tokio::test]
async fn missing_configuration_names_every_variable() {
    let err =
        amzpipe::steps::Settings::from_lookup(|name| (name == "AMZPIPE_MAX_WAIT_SECONDS").then(|| "soon".to_owned()))
            .expect_err("incomplete");
    let text = err.to_string();
    assert_eq!(err.error_type(), "Misconfigured");
    for name in ["AMZPIPE_TABLE", "AMZPIPE_BUCKET", "AMZPIPE_MAX_WAIT_SECONDS"] {
        assert!(text.contains(name), "{text}");
    }
}

// ------------------------------------------------------------------------------------------------
// The state machine's contract with the functions

/// Every `(function name, field)` the state machine reads from a function's `Payload`.
fn fields_read_by_the_state_machine() -> Vec<(String, String)> {
    fn walk(value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                if let (Some(Value::String(function)), Some(Value::Object(selector))) = (
                    map.get("Parameters").and_then(|p| p.get("FunctionName")),
                    map.get("ResultSelector"),
                ) {
                    let function = function.rsplit(':').next().unwrap_or_default();
                    for path in selector.values().filter_map(Value::as_str) {
                        let field = path
                            .trim_start_matches("$.Payload.")
                            .split('.')
                            .next()
                            .unwrap_or_default();
                        out.push((function.to_owned(), field.to_owned()));
                    }
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    // The definition as the template fills it in (function ARNs end in the function's name).
    let text = local_definition(TABLE, 1, false).expect("ASL file");
    let asl: Value = serde_json::from_str(&text).expect("ASL JSON");
    let mut out = Vec::new();
    walk(&asl, &mut out);
    out
}

#[tokio::test]
async fn every_field_the_state_machine_reads_is_in_the_functions_outputs() {
    let stack = stack().await;
    let ev = event(sp_job());
    let s = &stack.services;
    let mut outputs: Vec<(&str, Value)> = vec![
        (
            "refresh-token",
            serde_json::to_value(refresh_token(s, ev.clone()).await.expect("refresh")).expect("json"),
        ),
        (
            "create-request",
            serde_json::to_value(create_request(s, ev.clone()).await.expect("create")).expect("json"),
        ),
    ];
    loop {
        let polled = poll_status(s, ev.clone()).await.expect("poll");
        let done = polled.state != PollState::InProgress;
        outputs.push(("poll-status", serde_json::to_value(polled).expect("json")));
        if done {
            break;
        }
    }
    let downloaded = download_decrypt(s, ev, Deadline::none()).await.expect("download");
    outputs.push(("download-decrypt", serde_json::to_value(downloaded).expect("json")));
    let read = fields_read_by_the_state_machine();
    assert!(read.len() >= 15, "the ASL reads the functions' outputs: {read:?}");
    for (function, field) in read {
        assert!(
            outputs
                .iter()
                .any(|(f, out)| *f == function && out.get(&field).is_some()),
            "the state machine reads {field} from {function}, which does not return it"
        );
    }
}

#[tokio::test]
async fn a_run_its_execution_cannot_finish_in_time_fails_with_a_reason_instead_of_being_cut_off() {
    // GIVEN executions with a one-hour timeout, of which the last 28 minutes are kept for the
    // download and the failure record, and Amazon reports that take a while
    let stack = slow_report_stack().await;
    let mut s = stack.cold_services().await.expect("services");
    s.settings.execution_timeout = Some(Duration::from_secs(3600));
    s.settings.max_wait = Duration::from_secs(900);
    let started = |ago: chrono::Duration, name: &str| {
        let mut job = sp_job();
        job["name"] = json!(name);
        let mut ev = event(job);
        ev["startedAt"] = json!((Utc::now() - ago).to_rfc3339());
        ev
    };
    // WHEN one execution is already past that point when its run is to be created
    let late = started(chrono::Duration::minutes(40), "sp-late");
    let err = create_request(&s, late.clone()).await.expect_err("no time left");
    // THEN no Amazon request is made and the run fails, saying why
    assert_eq!(err.error_type(), "SourceFailed");
    assert!(err.to_string().contains("ExecutionTimeoutSeconds"), "{err}");
    assert_eq!(stack.sim.created_counts().0, 0);
    let run = store(&stack).run(&key_of(&late)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    // WHEN another reaches that point between two status checks of its report
    let tight = started(
        chrono::Duration::minutes(32) - chrono::Duration::seconds(10),
        "sp-tight",
    );
    create_request(&s, tight.clone()).await.expect("created in time");
    let err = poll_status(&s, tight.clone())
        .await
        .expect_err("no time for another check");
    // THEN the run fails then, with the reason, rather than the execution timing out around it
    assert_eq!(err.error_type(), "SourceFailed");
    assert!(err.to_string().contains("no time left"), "{err}");
    let run = store(&stack).run(&key_of(&tight)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.failure_reason
            .is_some_and(|r| r.contains("ExecutionTimeoutSeconds"))
    );
}

#[tokio::test]
async fn a_client_secret_rotated_while_a_container_is_warm_is_read_again_and_the_run_goes_on() {
    // GIVEN a warm container that has read the credential set
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let ev = event(sp_job());
    refresh_token(&stack.services, ev.clone()).await.expect("refresh");
    // WHEN the developer rotates the app's client secret (LWA refuses the old one from now on), stores
    // the new one in the secret, and the access tokens run out
    let sm = aws_sdk_secretsmanager::Client::new(&stack.aws.sdk_config().await);
    let mut value: Value = serde_json::from_str(&secret_value("na")).expect("json");
    value["clientSecret"] = json!("sim-client-secret-rotated-91c2");
    sm.put_secret_value()
        .secret_id(SECRET)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("rotated");
    stack.sim.retire_client_secret(CLIENT_SECRET);
    stack.sim.expire_access_tokens();
    // THEN the warm container's refusal is retried (not a failed run), and the retry reads the new
    // secret and creates the request
    let err = create_request(&stack.services, ev.clone())
        .await
        .expect_err("the old secret is refused");
    assert_eq!(err.error_type(), "AuthExpired", "{err}");
    assert!(err.to_string().contains("newer version"), "{err}");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_ne!(run.status, RunStatus::Failed);
    let created = create_request(&stack.services, ev.clone()).await.expect("retried");
    assert_eq!(created.outcome, CreateOutcome::Created);
    // AND credentials refused again with the current secret are final
    stack.sim.retire_client_secret("sim-client-secret-rotated-91c2");
    stack.sim.expire_access_tokens();
    let mut other = sp_job();
    other["name"] = json!("sp-orders-other");
    let err = create_request(&stack.services, event(other))
        .await
        .expect_err("refused");
    assert_eq!(err.error_type(), "CredentialsRefused", "{err}");
}

#[tokio::test]
async fn a_file_of_two_thousand_zip_entries_is_recorded_without_outgrowing_the_run_item() {
    // GIVEN a Slate file whose ZIP holds 2,000 CSV entries (each stored as an object of its own: a
    // list of them on the run item would pass DynamoDB's 400 KB item limit)
    let stack = Stack::start(SimConfig {
        slate_files_per_day: 1,
        slate_rows: 1,
        slate_zip_entries: 2_000,
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    let ev = event(slate_job());
    // WHEN it is downloaded
    let out = stack.run(&ev).await.expect("run").expect("a download");
    // THEN the run succeeds with every entry recorded, and its manifest lists them all
    assert_eq!(out.run.status, RunStatus::Succeeded);
    assert_eq!(out.totals.objects, 2_000);
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.document_count, 1);
    assert_eq!(run.rows, Some(2_000));
    let documents = store(&stack)
        .documents(&run.key, run.document_count)
        .await
        .expect("documents");
    assert_eq!(documents[0].objects.len(), 2_000);
    let manifest_key = run.manifest_key.expect("manifest");
    let manifest: Value =
        serde_json::from_slice(&stack.aws.object_bytes(BUCKET, &manifest_key).await.expect("manifest")).expect("JSON");
    let listed = manifest["documents"][0]["objects"].as_array().map_or(0, Vec::len);
    assert_eq!(listed, 2_000);
    // AND a retried download returns the recorded result without storing anything again
    let again = download_decrypt(&stack.services, ev.clone(), Deadline::none())
        .await
        .expect("again");
    assert_eq!(again.totals.objects, 2_000);
}

#[tokio::test]
async fn a_backfill_over_days_the_schedule_ran_finds_the_same_runs_and_asks_amazon_for_nothing_again() {
    // GIVEN a daily job with a day of lookback, which its schedule ran on two mornings
    let stack = stack().await;
    let mut job = sp_job();
    job["window"] = json!({ "rule": "yesterday", "lookbackDays": 1 });
    for fire in ["2026-11-20T06:00:00Z", "2026-11-21T06:00:00Z"] {
        let ran = stack
            .run(&json!({ "job": job, "scheduledTime": fire }))
            .await
            .expect("scheduled run");
        assert!(ran.is_some());
    }
    let requests = stack.sim.created_counts().0;
    assert_eq!(requests, 2);
    // WHEN the operator backfills the same days (as `amzpipectl backfill` does, started now)
    let parsed = amzpipe::domain::job::Job::from_value(job.clone()).expect("job");
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date");
    let windows = parsed
        .backfill(day("2026-11-19"), day("2026-11-20"), None)
        .expect("windows");
    assert_eq!(windows.len(), 2);
    for w in windows {
        let ev = json!({ "job": serde_json::to_value(&w.job).expect("job"), "scheduledTime": now_iso() });
        // THEN each window is a run the schedule made, already done
        let out = create_request(&stack.services, ev).await.expect("create");
        assert_eq!(out.outcome, CreateOutcome::Done, "{:?}", w.window);
    }
    assert_eq!(stack.sim.created_counts().0, requests, "no second Amazon request");
}

#[tokio::test]
async fn the_failure_path_of_an_execution_waiting_on_another_ones_download_neither_fails_nor_clears_the_run() {
    // GIVEN a run whose download execution "holder" leases, with a document it stored
    let stack = stack().await;
    let s = &stack.services;
    let ev = event(sp_job());
    until_ready(s, &ev).await;
    let now = Utc::now();
    store(&stack)
        .begin_download(&key_of(&ev), "holder", now, now + chrono::Duration::minutes(20))
        .await
        .expect("the lease");
    let prefix = RunContext::from_event(ev.clone()).expect("context").run_prefix();
    let stored = format!("{prefix}/00000.tsv");
    stack
        .aws
        .put_object(BUCKET, &stored, b"a\tb\n1\t2\n".to_vec())
        .await
        .expect("put");
    // WHEN the failure path of another execution, whose download retries ran out on NotReady, runs
    let mut waiting = ev.clone();
    waiting["owner"] = json!("waiting");
    waiting["failure"] =
        json!({ "Error": "NotReady", "Cause": "another execution (holder) is on this step of the run" });
    let out = record_failure(s, waiting).await.expect("the failure path");
    // THEN the run is still the holder's, READY, with its document; the waiting one says who has it
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Ready);
    assert!(object_keys(&stack).await.iter().any(|(key, _)| *key == stored));
    assert!(
        out.failure_reason.as_deref().is_some_and(|r| r.contains("holder")),
        "{out:?}"
    );
    // AND the holder's own failure path does end it
    let mut holder = ev.clone();
    holder["owner"] = json!("holder");
    holder["failure"] = json!({ "Error": "Transient", "Cause": "the retries ran out" });
    record_failure(s, holder).await.expect("the failure path");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
}

/// The keys under the run folder `prefix`, sorted.
async fn keys_under(stack: &Stack, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = object_keys(stack)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with(&format!("{prefix}/")))
        .collect();
    keys.sort();
    keys
}

/// The current pointers (`symlink.txt`) in the bucket.
async fn pointers(stack: &Stack) -> Vec<String> {
    object_keys(stack)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.ends_with("/symlink.txt"))
        .collect()
}

/// Checks that every object a current pointer names exists; returns the keys named.
async fn named_by_pointers(stack: &Stack) -> Vec<String> {
    let keys: Vec<String> = object_keys(stack).await.into_iter().map(|(key, _)| key).collect();
    let mut named = Vec::new();
    for pointer in pointers(stack).await {
        let body = stack.aws.object_bytes(BUCKET, &pointer).await.expect("the pointer");
        for path in String::from_utf8_lossy(&body).lines() {
            let object = path.trim_start_matches(&format!("s3://{BUCKET}/"));
            assert!(
                keys.iter().any(|k| k == object),
                "{pointer} names {object}, which is gone"
            );
            named.push(object.to_owned());
        }
    }
    named
}

/// Runs `ev` to success and makes it current, then loses its last transition (the table has it
/// `READY` again) and lets the state machine give it up: a failed run whose days' pointers name it.
async fn current_but_given_up(stack: &Stack, ev: &Value) {
    stack.run(ev).await.expect("run").expect("downloaded");
    assert!(!pointers(stack).await.is_empty(), "the run is current for its days");
    let item = aws_sdk_dynamodb::Client::new(&stack.aws.sdk_config().await);
    let amzpipe::ports::TableKey { pk, sk } = amzpipe::ports::TableKey::of_run(&key_of(ev));
    item.update_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk))
        .update_expression("SET #s = :ready")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":ready", AttributeValue::S("READY".into()))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .expect("the run set back to READY");
    let mut failed = ev.clone();
    failed["failure"] = json!({ "Error": "Transient", "Cause": "the retries ran out" });
    record_failure(&stack.services, failed).await.expect("the failure path");
}

#[tokio::test]
async fn a_run_that_made_itself_current_and_then_lost_its_last_transition_keeps_the_objects_its_pointers_name() {
    // GIVEN an SP-API orders run (split by day) that stored its days and made them current
    let stack = stack().await;
    let ev = event(sp_job());
    // WHEN its last transition is lost and the failure path ends it
    current_but_given_up(&stack, &ev).await;
    // THEN the run is FAILED, and every object its days' pointers name is still there
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(!named_by_pointers(&stack).await.is_empty());
}

#[tokio::test]
async fn a_re_run_of_a_failed_run_that_is_current_keeps_its_days_readable_until_it_has_re_pointed_them() {
    // GIVEN an SP-API orders run, current for its days, then given up after its last transition was lost
    let stack = stack().await;
    let s = &stack.services;
    let ev = event(sp_job());
    current_but_given_up(&stack, &ev).await;
    let before = named_by_pointers(&stack).await;
    // WHEN a later fire runs the window again, and its download is cut off for good
    until_ready(s, &ev).await;
    stack
        .sim
        .set_scenario(Scenario::with_fault(Fault::cut_download(1_000, 1_000)));
    download_decrypt(s, ev.clone(), Deadline::none())
        .await
        .expect_err("the download is cut off every time");
    // THEN the days still read the first claim's objects: every one the pointers name is there
    assert_eq!(named_by_pointers(&stack).await, before);
    // WHEN the download then goes through
    stack.sim.set_scenario(Scenario::default());
    let done = download_decrypt(s, ev.clone(), Deadline::none())
        .await
        .expect("downloaded");
    assert_eq!(done.outcome, DownloadOutcome::Done);
    // THEN the pointers name the re-run's objects, and the run's folder holds those and its manifest only
    let after = named_by_pointers(&stack).await;
    assert!(
        !after.is_empty() && after.iter().all(|key| !before.contains(key)),
        "{after:?}"
    );
    let prefix = RunContext::from_event(ev.clone()).expect("context").run_prefix();
    let under_run = keys_under(&stack, &prefix).await;
    let mut expected = after.clone();
    expected.push(format!("{prefix}/_manifest.json"));
    expected.sort();
    assert_eq!(under_run, expected);
}

#[tokio::test]
async fn a_failed_run_leaves_nothing_visible_and_its_rerun_holds_only_its_own_documents() {
    // GIVEN an AMC run (two result files) that Amazon finished
    let stack = stack().await;
    let s = &stack.services;
    let ev = event(amc_job());
    until_ready(s, &ev).await;
    // AND one document stored under the run before the state machine gave the run up
    let prefix = RunContext::from_event(ev.clone()).expect("context").run_prefix();
    let put = |key: String| {
        let aws = &stack.aws;
        async move { aws.put_object(BUCKET, &key, b"a,b\n1,2\n".to_vec()).await.expect("put") }
    };
    put(format!("{prefix}/00000.csv")).await;
    let under_run = || keys_under(&stack, &prefix);
    // WHEN the failure is recorded
    let mut failed = ev.clone();
    failed["failure"] = json!({ "Error": "Transient", "Cause": "the retries ran out" });
    record_failure(s, failed).await.expect("the failure path");
    // THEN nothing of the run stays visible without its manifest
    assert_eq!(under_run().await, Vec::<String>::new());
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    // WHEN a later fire runs the window again, with something of the earlier claim left under it
    put(format!("{prefix}/00007.csv")).await;
    let out = stack.run(&ev).await.expect("re-run").expect("downloaded");
    // THEN the run holds exactly its own documents and its manifest
    assert_eq!(out.run.status, RunStatus::Succeeded);
    assert_eq!(
        under_run().await,
        [
            format!("{prefix}/_manifest.json"),
            format!("{prefix}/c2-00000.csv"),
            format!("{prefix}/c2-00001.csv")
        ]
    );
}

#[tokio::test]
async fn a_document_the_deadline_cuts_off_twice_in_a_row_fails_the_run_naming_what_to_raise() {
    // GIVEN a 96 MiB report, and invocations too short to move it
    let stack = big_report_stack().await;
    let ev = event(sp_job());
    let s = &stack.services;
    until_ready(s, &ev).await;
    let short = || Deadline::after(Duration::from_millis(150));
    let first = download_decrypt(s, ev.clone(), short()).await.expect("cut off");
    assert_eq!(first.outcome, DownloadOutcome::Continue);
    // WHEN the next call is cut off at the same document
    let err = download_decrypt(s, ev.clone(), short()).await.expect_err("gave up");
    // THEN the run fails with a reason that says what to change, instead of looping for ever
    assert_eq!(err.error_type(), "SourceFailed");
    assert!(err.to_string().contains("DownloadMemoryMB"), "{err}");
    let run = store(&stack).run(&key_of(&ev)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(open_uploads(&stack).await, 0);
}

#[tokio::test]
async fn the_runs_an_execution_left_when_it_timed_out_are_failed_and_their_amc_slot_given_back() {
    // GIVEN an execution that created an AMC run (holding one of the instance's ten running slots),
    // and another execution's SP-API run of the same schedule
    let stack = stack().await;
    let s = &stack.services;
    let scheduled = now_iso();
    let amc = json!({ "job": amc_job(), "scheduledTime": scheduled, "owner": "scheduled-0600" });
    let sp = json!({ "job": sp_job(), "scheduledTime": scheduled, "owner": "manual-run" });
    for ev in [&amc, &sp] {
        refresh_token(s, ev.clone()).await.expect("token");
        let created = create_request(s, ev.clone()).await.expect("create");
        assert_eq!(created.outcome, CreateOutcome::Created);
    }
    // WHEN Step Functions reports that the first execution timed out: the event as AWS documents it
    // (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html, "Execution Timed Out"),
    // with this execution's input
    let input = json!({ "scheduledTime": scheduled, "jobs": [amc_job(), sp_job()] });
    let event = json!({
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-26T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:states:us-east-1:123456789012:execution:amzpipe-pipeline:scheduled-0600"],
        "detail": {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:amzpipe-pipeline:scheduled-0600",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:amzpipe-pipeline",
            "name": "scheduled-0600",
            "status": "TIMED_OUT",
            "startDate": 1_795_500_000_000_u64,
            "stopDate": 1_795_586_400_000_u64,
            "input": input.to_string(),
            "inputDetails": { "included": true },
            "output": null,
            "outputDetails": null
        }
    });
    let out = amzpipe::steps::poll_status_or_record_failure(s, event.clone())
        .await
        .expect("recorded");
    // THEN its run is FAILED, saying why, and its slot is free again (ten others fit)
    assert_eq!(out["failedRuns"].as_array().map_or(0, Vec::len), 1, "{out:#}");
    let run = store(&stack).run(&key_of(&amc)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.failure_reason.is_some_and(|r| r.contains("timed out")));
    for i in 0..10 {
        let free = store(&stack)
            .acquire_slot(
                "amc.running#amcdemo01",
                &format!("other-{i}"),
                10,
                Utc::now(),
                AMC_SLOT_LEASE,
            )
            .await
            .expect("slot");
        assert!(free, "slot {i}");
    }
    // AND the other execution's run goes on
    let other = store(&stack).run(&key_of(&sp)).await.expect("read").expect("run");
    assert_eq!(other.status, RunStatus::Requested);
    // AND an execution started from a jobs file has its jobs read back from it: the other one, stopped
    let jobs = input["jobs"].as_array().expect("jobs");
    let file = put_jobs_file(&stack.aws, "abandoned", jobs)
        .await
        .expect("the jobs file");
    let mut stopped = event;
    stopped["detail"]["name"] = json!("manual-run");
    stopped["detail"]["status"] = json!("ABORTED");
    stopped["detail"]["input"] = json!(json!({ "scheduledTime": scheduled, "jobsFile": file }).to_string());
    let out = amzpipe::steps::poll_status_or_record_failure(s, stopped)
        .await
        .expect("recorded");
    assert_eq!(out["failedRuns"].as_array().map_or(0, Vec::len), 1, "{out:#}");
    let other = store(&stack).run(&key_of(&sp)).await.expect("read").expect("run");
    assert_eq!(other.status, RunStatus::Failed);
    assert!(other.failure_reason.is_some_and(|r| r.contains("was stopped")));
}

#[tokio::test]
async fn many_runs_of_one_seller_polling_at_once_stay_within_get_reports_usage_plan() {
    // GIVEN twelve reports of one seller (the part of createReport's burst the table allows), all in
    // progress
    let stack = slow_report_stack().await;
    let s = &stack.services;
    let events: Vec<Value> = (0..12)
        .map(|i| {
            let mut job = sp_job();
            job["name"] = json!(format!("sp-orders-{i:02}"));
            event(job)
        })
        .collect();
    for ev in &events {
        refresh_token(s, ev.clone()).await.expect("token");
        assert_eq!(
            create_request(s, ev.clone()).await.expect("create").outcome,
            CreateOutcome::Created
        );
    }
    // WHEN every run is checked three times as fast as the functions can (getReport: 2 rps, burst 15,
    // per seller; a check that would exceed it waits or answers Throttled instead of being sent)
    let mut throttled = 0;
    for _ in 0..3 {
        for ev in &events {
            match poll_status(s, ev.clone()).await {
                Ok(_) => {}
                Err(e) if e.error_type() == "Throttled" => throttled += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    // THEN Amazon refused none of them
    assert_eq!(stack.sim.quota_refusals(), 0, "{throttled} checks were held back");
}
