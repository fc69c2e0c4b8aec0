//! The fault suite: each fault a hostile or unlucky Amazon can play, per source, run through the four
//! steps retried as the state machine retries them (its failure path included), then held to the
//! same invariants:
//!
//! - the run ends as expected (`SUCCEEDED`, `NO_DATA`, or `FAILED` with the error named);
//! - Amazon accepted exactly one request for the window (Slate creates none);
//! - what was stored is what was served: every stored object read back hashes as the run recorded it,
//!   and as the content of a document the simulator served whole;
//! - a run that did not succeed left nothing at a final key, and no multipart upload is left open;
//! - no request went beyond Amazon's published SP-API usage plans (the simulator enforces them);
//! - no token, secret or pre-signed URL reached the logs or the job table.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use amzpipe::domain::run::RunStatus;
use amzpipe::ports::JobStore;
use amzpipe::steps::{
    CreateOutcome, Deadline, PollState, RunContext, StepError, create_request, download_decrypt, poll_status,
    record_failure, refresh_token,
};
use amzpipe_testkit::sim::{Fault, Scenario, SimConfig};
use amzpipe_testkit::stack::{BUCKET, CLIENT_SECRET, SECRET, Stack, TABLE};
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// Logs, captured once for the whole binary (one global subscriber per process).

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(amzpipe::lambda::log_filter(Some("DEBUG")))
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

const SECRETS: [&str; 5] = ["Atza|", "Atzr|", "Atz.sprdt|", CLIENT_SECRET, "X-Amz-Signature"];

// The jobs.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Sp,
    Ads,
    Amc,
    Slate,
}

fn job(source: Source) -> Value {
    match source {
        Source::Sp => json!({
            "name": "sp-orders", "credentials": SECRET,
            "source": { "type": "spReports", "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                        "marketplaceIds": ["ATVPDKIKX0DER"] },
            "window": { "rule": "yesterday" }
        }),
        Source::Ads => json!({
            "name": "ads-campaigns", "credentials": SECRET,
            "source": { "type": "adsReports", "profileId": "1234567890", "adProduct": "SPONSORED_PRODUCTS",
                        "reportTypeId": "spCampaigns", "columns": ["date", "campaignId", "impressions", "clicks", "cost"],
                        "groupBy": ["campaign"] },
            "window": { "rule": "yesterday" }
        }),
        Source::Amc => json!({
            "name": "amc-reach", "credentials": SECRET,
            "source": { "type": "amc", "instanceId": "amcdemo01", "advertiserId": "ENTITY1AA1AA11AAA1",
                        "marketplaceId": "ATVPDKIKX0DER",
                        "query": { "sql": "SELECT campaign, COUNT(DISTINCT user_id) AS reach FROM dsp_impressions GROUP BY 1" } },
            "window": { "rule": "lastDays", "days": 7 }
        }),
        Source::Slate => json!({
            "name": "slate-playback", "credentials": SECRET,
            "source": { "type": "slate", "accountId": "acct-1", "groupId": "grp-1", "businessId": "biz-1",
                        "datasetId": "playback" },
            "window": { "rule": "yesterday" }
        }),
    }
}

/// The operation names of a source's create and status read in the simulator.
fn ops(source: Source) -> (&'static str, &'static str) {
    match source {
        Source::Sp => ("sp.createReport", "sp.getReport"),
        Source::Ads => ("ads.createReport", "ads.getReport"),
        Source::Amc => ("amc.createExecution", "amc.getExecution"),
        Source::Slate => ("slate.files", "slate.files"),
    }
}

/// The outcome key of a source's job in a scenario.
fn outcome_key(source: Source) -> &'static str {
    match source {
        Source::Sp => "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        Source::Ads => "spCampaigns",
        Source::Amc => "adhoc",
        Source::Slate => "playback",
    }
}

// Driving the steps as the state machine does.

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Succeeded,
    /// Succeeded, with exactly this many objects stored.
    SucceededStoring(usize),
    /// Succeeded, the expired access token refreshed exactly once (two grants in all).
    SucceededRefreshingOnce,
    /// Succeeded, the expired download URL replaced by a fresh one from the source.
    SucceededWithFreshUrl,
    NoData,
    Failed(&'static str),
    /// Failed with this error type, the run's reason saying each of these (the figures).
    FailedSaying(&'static str, &'static [&'static str]),
}

/// Runs one step as a state-machine task: retryable errors retried (the ASL's budget), and a
/// failure that is not, or whose retries run out, handed to the failure path as the state machine
/// hands it.
async fn task<T, F, Fut>(stack: &Stack, ev: &Value, step: F) -> Result<T, StepError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    let mut last = None;
    for _ in 0..8 {
        match step().await {
            Ok(out) => return Ok(out),
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => return Err(fail(stack, ev, e).await),
        }
    }
    Err(fail(stack, ev, last.expect("at least one attempt")).await)
}

async fn fail(stack: &Stack, ev: &Value, error: StepError) -> StepError {
    let mut failed = ev.clone();
    failed["failure"] = json!({
        "Error": error.error_type(),
        "Cause": json!({"errorType": error.error_type(), "errorMessage": error.to_string()}).to_string(),
    });
    record_failure(&stack.services, failed).await.expect("the failure path");
    error
}

async fn drive(stack: &Stack, ev: &Value, expire_tokens_after_create: bool) -> Result<(), StepError> {
    let s = &stack.services;
    task(stack, ev, || refresh_token(s, ev.clone())).await?;
    let mut created = task(stack, ev, || create_request(s, ev.clone())).await?;
    for _ in 0..10 {
        if created.outcome != CreateOutcome::Throttled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        created = task(stack, ev, || create_request(s, ev.clone())).await?;
    }
    if expire_tokens_after_create {
        stack.sim.expire_access_tokens();
    }
    if created.outcome != CreateOutcome::Done {
        for _ in 0..60 {
            match task(stack, ev, || poll_status(s, ev.clone())).await?.state {
                PollState::InProgress => continue,
                PollState::NoData => return Ok(()),
                PollState::Ready => break,
            }
        }
    }
    task(stack, ev, || download_decrypt(s, ev.clone(), Deadline::none())).await?;
    Ok(())
}

// The invariants.

async fn table_text(stack: &Stack) -> String {
    let client = aws_sdk_dynamodb::Client::new(&stack.aws.sdk_config().await);
    let items = client.scan().table_name(TABLE).send().await.expect("scan");
    format!("{:?}", items.items())
}

async fn check(name: &str, stack: &Stack, source: Source, ev: &Value, result: Result<(), StepError>, expect: &Expect) {
    let key = RunContext::from_event(ev.clone()).expect("context").key;
    let run = stack.services.store.run(&key).await.expect("read").expect("a run");
    let keys: Vec<String> = stack
        .aws
        .objects(BUCKET)
        .await
        .expect("list")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    match expect {
        Expect::Succeeded
        | Expect::SucceededStoring(_)
        | Expect::SucceededRefreshingOnce
        | Expect::SucceededWithFreshUrl => {
            assert!(result.is_ok(), "{name}: {result:?}");
            assert_eq!(run.status, RunStatus::Succeeded, "{name}");
            // What was stored is what the run recorded, and what the simulator served.
            let served = stack.sim.served_content_sha256s();
            let served_rows = stack.sim.served_json_rows();
            let documents = stack
                .services
                .store
                .documents(&run.key, run.document_count)
                .await
                .expect("the run's documents");
            let objects: Vec<_> = documents.iter().flat_map(|d| &d.objects).collect();
            assert!(!objects.is_empty(), "{name}: objects stored");
            if let Expect::SucceededStoring(count) = expect {
                assert_eq!(objects.len(), *count, "{name}: objects stored");
            }
            if let Expect::SucceededRefreshingOnce = expect {
                let grants = stack.sim.requests_of("lwa.token").len();
                assert_eq!(grants, 2, "{name}: the first token, and one refresh after it died");
            }
            if let Expect::SucceededWithFreshUrl = expect {
                // The URL answered 403 is not asked again: the next download is of another URL.
                let downloads: Vec<String> = stack
                    .sim
                    .requests_of("file.download")
                    .iter()
                    .map(|r| r.path.split('?').next().unwrap_or_default().to_owned())
                    .collect();
                let expired = downloads.first().expect("a download");
                assert_eq!(
                    downloads.iter().filter(|d| *d == expired).count(),
                    1,
                    "{name}: the expired URL was asked once: {downloads:?}"
                );
                assert!(downloads.len() >= 2, "{name}: a fresh URL was fetched: {downloads:?}");
            }
            for object in objects {
                let bytes = stack
                    .aws
                    .object_bytes(BUCKET, &object.key)
                    .await
                    .expect("stored object");
                let sha = hex::encode(Sha256::digest(&bytes));
                assert_eq!(sha, object.sha256, "{name}: {} as recorded", object.key);
                if object.content_type == "application/x-ndjson" {
                    // A JSON array served (an Ads report) is stored a row per line: the same rows.
                    let rows: Vec<serde_json::Value> = bytes
                        .split(|b| *b == b'\n')
                        .filter(|line| !line.is_empty())
                        .map(|line| serde_json::from_slice(line).expect("a JSON row per line"))
                        .collect();
                    assert!(
                        served_rows.contains(&rows),
                        "{name}: {} holds the rows of a document served",
                        object.key
                    );
                } else if object.entry_name.is_none() {
                    // (legacy encrypted documents included: the simulator knows their plaintext)
                    assert!(
                        served.contains(&sha),
                        "{name}: {} is a document served whole",
                        object.key
                    );
                }
            }
        }
        Expect::NoData => {
            assert!(result.is_ok(), "{name}: {result:?}");
            assert_eq!(run.status, RunStatus::NoData, "{name}");
            assert!(keys.is_empty(), "{name}: nothing stored: {keys:?}");
        }
        Expect::Failed(error_type) | Expect::FailedSaying(error_type, _) => {
            let err = result.expect_err(name);
            assert_eq!(err.error_type(), *error_type, "{name}: {err}");
            assert_eq!(run.status, RunStatus::Failed, "{name}");
            let reason = run.failure_reason.clone().unwrap_or_default();
            assert!(reason.starts_with(error_type), "{name}: {reason}");
            if let Expect::FailedSaying(_, fragments) = expect {
                for fragment in *fragments {
                    assert!(reason.contains(fragment), "{name}: {fragment:?} in {reason}");
                }
            }
            assert!(keys.is_empty(), "{name}: nothing at a final key: {keys:?}");
        }
    }
    // Exactly one request at Amazon for the window.
    let (sp, ads, amc) = stack.sim.created_counts();
    let expected = usize::from(source != Source::Slate);
    assert_eq!(sp + ads + amc, expected, "{name}: requests Amazon accepted");
    // No upload left open, no usage plan exceeded.
    let uploads = stack.aws.open_uploads(BUCKET).await.expect("uploads");
    assert_eq!(uploads, 0, "{name}: open uploads");
    assert_eq!(stack.sim.quota_refusals(), 0, "{name}: requests beyond a usage plan");
    // No secret in the table or the logs.
    let table = table_text(stack).await;
    let captured = String::from_utf8_lossy(&logs().0.lock().expect("logs")).into_owned();
    for secret in SECRETS {
        assert!(!table.contains(secret), "{name}: {secret:?} in the job table");
        assert!(!captured.contains(secret), "{name}: {secret:?} in the logs");
    }
}

async fn case(name: &str, source: Source, config: SimConfig, scenario: Scenario, expire_tokens: bool, expect: Expect) {
    logs();
    let stack = Stack::start(config).await.expect("stack");
    stack.sim.set_scenario(scenario);
    let ev = json!({ "job": job(source), "scheduledTime": Utc::now().to_rfc3339() });
    let result = drive(&stack, &ev, expire_tokens).await;
    check(name, &stack, source, &ev, result, &expect).await;
}

fn faults(faults: Vec<Fault>) -> Scenario {
    Scenario {
        faults,
        ..Scenario::default()
    }
}

// The cases, fault × source.

/// What a bomb's failure says: the figures, and the ceiling it passed (the default 100:1).
const BOMB_FIGURES: &[&str] = &[
    "decompression expanded",
    "bytes into more than",
    "over the ceiling of 100:1",
];

macro_rules! fault_case {
    ($name:ident, $source:expr, $config:expr, $scenario:expr, $expire:expr, $expect:expr) => {
        #[tokio::test]
        async fn $name() {
            case(stringify!($name), $source, $config, $scenario, $expire, $expect).await;
        }
    };
}

fn storm_with_retry_after(source: Source) -> Scenario {
    faults(vec![Fault {
        retry_after: Some(1),
        ..Fault::answer(ops(source).0, 429, 3)
    }])
}

fn storm_on_status_reads(source: Source) -> Scenario {
    faults(vec![Fault::answer(ops(source).1, 429, 3)])
}

fn alternating_5xx(source: Source) -> Scenario {
    // 5xx on status reads, and a create that took effect but answered 500 (its outcome unknown).
    faults(vec![
        Fault::answer(ops(source).1, 503, 1),
        Fault::answer(ops(source).1, 500, 1),
        Fault::answer(ops(source).1, 502, 1),
        Fault {
            after_effect: true,
            ..Fault::answer(ops(source).0, 500, 1)
        },
    ])
}

fn outcome(source: Source, outcome: &str) -> Scenario {
    Scenario::with_outcome(outcome_key(source), outcome)
}

fn default() -> SimConfig {
    SimConfig::default()
}

use Expect::*;
use Source::*;

fault_case!(
    sp_429_storm_on_create_with_retry_after,
    Sp,
    default(),
    storm_with_retry_after(Sp),
    false,
    Succeeded
);
fault_case!(
    ads_429_storm_on_create_with_retry_after,
    Ads,
    default(),
    storm_with_retry_after(Ads),
    false,
    Succeeded
);
fault_case!(
    amc_429_storm_on_create_with_retry_after,
    Amc,
    default(),
    storm_with_retry_after(Amc),
    false,
    Succeeded
);
fault_case!(
    sp_429_storm_on_status_reads_without_retry_after,
    Sp,
    default(),
    storm_on_status_reads(Sp),
    false,
    Succeeded
);
fault_case!(
    ads_429_storm_on_status_reads_without_retry_after,
    Ads,
    default(),
    storm_on_status_reads(Ads),
    false,
    Succeeded
);
fault_case!(
    amc_429_storm_on_status_reads_without_retry_after,
    Amc,
    default(),
    storm_on_status_reads(Amc),
    false,
    Succeeded
);
fault_case!(
    sp_alternating_5xx_and_an_ambiguous_create,
    Sp,
    default(),
    alternating_5xx(Sp),
    false,
    Succeeded
);
fault_case!(
    ads_alternating_5xx_and_an_ambiguous_create,
    Ads,
    default(),
    alternating_5xx(Ads),
    false,
    Succeeded
);
fault_case!(
    amc_alternating_5xx_and_an_ambiguous_create,
    Amc,
    default(),
    alternating_5xx(Amc),
    false,
    Succeeded
);
fault_case!(
    sp_connection_reset_mid_body,
    Sp,
    default(),
    faults(vec![Fault::cut_download(1_000, 1)]),
    false,
    Succeeded
);
fault_case!(
    ads_connection_reset_mid_body,
    Ads,
    default(),
    faults(vec![Fault::cut_download(500, 1)]),
    false,
    Succeeded
);
fault_case!(
    amc_connection_reset_mid_body,
    Amc,
    default(),
    faults(vec![Fault::cut_download(500, 1)]),
    false,
    Succeeded
);
fault_case!(
    slate_connection_reset_mid_body,
    Slate,
    default(),
    faults(vec![Fault::cut_download(500, 1)]),
    false,
    Succeeded
);
fault_case!(
    sp_body_truncated_twice,
    Sp,
    default(),
    faults(vec![Fault::cut_download(10, 2)]),
    false,
    Succeeded
);
fault_case!(
    sp_token_dying_before_its_expiry,
    Sp,
    default(),
    Scenario::default(),
    true,
    SucceededRefreshingOnce
);
fault_case!(
    ads_token_dying_before_its_expiry,
    Ads,
    default(),
    Scenario::default(),
    true,
    SucceededRefreshingOnce
);
fault_case!(
    amc_token_dying_before_its_expiry,
    Amc,
    default(),
    Scenario::default(),
    true,
    SucceededRefreshingOnce
);
fault_case!(
    sp_url_expired_mid_download,
    Sp,
    default(),
    faults(vec![Fault::answer("file.download", 403, 1)]),
    false,
    SucceededWithFreshUrl
);
fault_case!(
    ads_url_expired_mid_download,
    Ads,
    default(),
    faults(vec![Fault::answer("file.download", 403, 1)]),
    false,
    SucceededWithFreshUrl
);
fault_case!(
    amc_url_expired_mid_download,
    Amc,
    default(),
    faults(vec![Fault::answer("file.download", 403, 1)]),
    false,
    SucceededWithFreshUrl
);
fault_case!(
    slate_url_expired_mid_download,
    Slate,
    default(),
    faults(vec![Fault::answer("file.download", 403, 1)]),
    false,
    SucceededWithFreshUrl
);
fault_case!(
    sp_legacy_encrypted_document_is_stored_as_its_plaintext,
    Sp,
    SimConfig {
        sp_legacy_documents: true,
        ..default()
    },
    Scenario::default(),
    false,
    Succeeded
);
fault_case!(
    sp_tampered_encrypted_document,
    Sp,
    SimConfig {
        sp_legacy_documents: true,
        ..default()
    },
    faults(vec![Fault::tampered_download(20)]),
    false,
    Failed("IntegrityFailed")
);
fault_case!(
    ads_tampered_gzip_document,
    Ads,
    default(),
    faults(vec![Fault::tampered_download(20)]),
    false,
    Failed("IntegrityFailed")
);
fault_case!(
    sp_gzip_bomb,
    Sp,
    default(),
    outcome(Sp, "BOMB"),
    false,
    FailedSaying("IntegrityFailed", BOMB_FIGURES)
);
fault_case!(
    ads_gzip_bomb,
    Ads,
    default(),
    outcome(Ads, "BOMB"),
    false,
    FailedSaying("IntegrityFailed", BOMB_FIGURES)
);
fault_case!(
    sp_multi_member_gzip,
    Sp,
    default(),
    outcome(Sp, "MULTIGZ"),
    false,
    Succeeded
);
fault_case!(
    sp_hostile_ids,
    Sp,
    SimConfig {
        sp_id_suffix: "/../../v2/profiles?x=1 #".into(),
        ..default()
    },
    Scenario::default(),
    false,
    Succeeded
);
fault_case!(
    sp_fatal_report,
    Sp,
    default(),
    outcome(Sp, "FATAL"),
    false,
    Failed("SourceFailed")
);
fault_case!(
    ads_failed_report,
    Ads,
    default(),
    outcome(Ads, "FAILED"),
    false,
    Failed("SourceFailed")
);
fault_case!(
    amc_failed_execution,
    Amc,
    default(),
    outcome(Amc, "FAILED"),
    false,
    Failed("SourceFailed")
);
fault_case!(sp_empty_report, Sp, default(), outcome(Sp, "EMPTY"), false, NoData);
fault_case!(ads_empty_report, Ads, default(), outcome(Ads, "EMPTY"), false, NoData);
fault_case!(
    amc_multi_file_results,
    Amc,
    SimConfig {
        amc_files: 3,
        ..default()
    },
    Scenario::default(),
    false,
    SucceededStoring(3)
);
