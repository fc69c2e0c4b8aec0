//! End to end on the real state machine: `infra/statemachine/pipeline.asl.json` executed by moto's
//! Step Functions interpreter, its Lambda tasks answered by the real steps over the Invoke API, against
//! the Amazon API simulator and moto's S3, DynamoDB and Secrets Manager.

use std::time::Duration;

use amzpipe::adapters::api::Policy;
use amzpipe::domain::run::RunStatus;
use amzpipe::domain::source::Quota;
use amzpipe::ports::{JobStore, Quotas};
use amzpipe::steps::RunContext;
use amzpipe::steps::budget::{STEP_CALLS, worst_case};
use amzpipe_testkit::sfn::local_definition;
use amzpipe_testkit::sim::{Fault, Scenario, SimConfig};
use amzpipe_testkit::stack::{BUCKET, Pipeline, event_job};
use serde_json::{Value, json};

const SCHEDULED: &str = "2026-11-23T06:00:00Z";

async fn pipeline() -> Pipeline {
    Pipeline::start(SimConfig::default(), 4).await.expect("pipeline")
}

async fn object_keys(p: &Pipeline) -> Vec<String> {
    let objects = p.aws.objects(BUCKET).await.expect("list");
    objects.into_iter().map(|(key, _)| key).collect()
}

fn failed_jobs(output: &Value) -> Vec<String> {
    output["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter(|r| r["failed"] == json!(true))
                .filter_map(|r| r["job"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every Lambda task of the definition, by state name.
fn lambda_tasks() -> Vec<(String, Value)> {
    fn walk(value: &Value, out: &mut Vec<(String, Value)>) {
        if let Some(states) = value.get("States").and_then(Value::as_object) {
            for (name, state) in states {
                if state["Resource"] == json!("arn:aws:states:::lambda:invoke") {
                    out.push((name.clone(), state.clone()));
                }
                walk(state, out);
            }
        }
        for nested in ["Iterator", "ItemProcessor"] {
            if let Some(inner) = value.get(nested) {
                walk(inner, out);
            }
        }
        if let Some(branches) = value.get("Branches").and_then(Value::as_array) {
            branches.iter().for_each(|b| walk(b, out));
        }
    }
    let text = local_definition("table", 1, false).expect("ASL file");
    let asl: Value = serde_json::from_str(&text).expect("ASL JSON");
    let mut out = Vec::new();
    walk(&asl, &mut out);
    out
}

#[test]
fn every_lambda_task_retries_a_function_timeout_or_crash() {
    // A Lambda timeout or an out-of-memory kill reaches Step Functions as Sandbox.Timedout or
    // Lambda.Unknown (moto never produces either): without a retrier one slow answer fails the run.
    let tasks = lambda_tasks();
    assert_eq!(tasks.len(), 5, "the four steps and RecordFailure: {tasks:?}");
    for (name, task) in tasks {
        let retried: Vec<&str> = task["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["ErrorEquals"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        for error in ["Sandbox.Timedout", "Lambda.Unknown", "States.Timeout"] {
            assert!(retried.contains(&error), "{name} does not retry {error}: {retried:?}");
        }
        assert!(
            !retried.contains(&"States.ALL") && !retried.contains(&"States.TaskFailed"),
            "{name}"
        );
    }
}

#[test]
fn every_function_times_out_after_its_worst_case_under_the_http_policy() {
    // The template's Timeout of each function (moto enforces none) against the step's worst case.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let template = std::fs::read_to_string(path).expect("template");
    let policy = Policy::default();
    for (function, calls) in STEP_CALLS {
        // The resource's lines: from `  Name:` to the next line indented by exactly two spaces.
        let timeout: u64 = template
            .lines()
            .skip_while(|l| *l != format!("  {function}:"))
            .skip(1)
            .take_while(|l| !l.starts_with("  ") || l.starts_with("   "))
            .find_map(|l| l.trim().strip_prefix("Timeout:"))
            .and_then(|v| v.split('#').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{function} sets its Timeout"));
        let needed = worst_case(&policy, calls);
        assert!(
            std::time::Duration::from_secs(timeout) > needed,
            "{function}: Timeout {timeout} s is not above its worst case of {} s",
            needed.as_secs()
        );
    }
}

#[tokio::test]
async fn one_execution_runs_a_job_of_every_source_to_its_manifest() {
    let p = pipeline().await;
    let jobs = ["sp-reports", "ads-reports", "amc", "slate"].map(event_job);
    let execution = p.execute("every-source", SCHEDULED, &jobs).await.expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    assert!(failed_jobs(&execution.output).is_empty());
    let manifests = object_keys(&p)
        .await
        .into_iter()
        .filter(|k| k.ends_with("/_manifest.json"))
        .count();
    assert_eq!(manifests, 4);
}

fn sp_outcome(outcome: &str) -> Scenario {
    Scenario::with_outcome("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", outcome)
}

fn key_of(job: &Value) -> amzpipe::domain::run::RunKey {
    RunContext::from_event(json!({ "job": job, "scheduledTime": SCHEDULED }))
        .expect("context")
        .key
}

#[tokio::test]
async fn a_fan_out_over_several_profiles_runs_each_through_the_map() {
    let p = pipeline().await;
    let jobs: Vec<Value> = ["1234567890", "1234567891"]
        .iter()
        .map(|profile| {
            let mut job = event_job("ads-reports");
            job["name"] = json!(format!("ads-campaigns-{profile}"));
            job["source"]["profileId"] = json!(profile);
            job
        })
        .collect();
    let execution = p.execute("fan-out", SCHEDULED, &jobs).await.expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    let keys = object_keys(&p).await;
    for profile in ["1234567890", "1234567891"] {
        assert!(
            keys.iter()
                .any(|k| k.contains(&format!("account={profile}/")) && k.ends_with("_manifest.json")),
            "{keys:?}"
        );
    }
    assert_eq!(p.sim.created_counts().1, 2);
}

#[tokio::test]
async fn a_fatal_report_takes_the_failure_path_with_the_reason_on_the_run_and_spares_the_other_jobs() {
    let p = pipeline().await;
    p.sim.set_scenario(sp_outcome("FATAL"));
    let sp = event_job("sp-reports");
    let jobs = [sp.clone(), event_job("ads-reports")];
    let execution = p.execute("fatal", SCHEDULED, &jobs).await.expect("execution");
    assert_eq!(execution.status, "FAILED");
    assert_eq!(execution.output["error"], json!("JobsFailed"), "{:#}", execution.output);
    let run = p.services.store.run(&key_of(&sp)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.expect("reason");
    assert!(reason.contains("SourceFailed"), "{reason}");
    let keys = object_keys(&p).await;
    assert!(
        keys.iter()
            .any(|k| k.contains("source=ads-reports/") && k.ends_with("_manifest.json"))
    );
    assert!(!keys.iter().any(|k| k.contains("source=sp-reports/")));
}

#[tokio::test]
async fn no_data_ends_the_execution_cleanly() {
    let p = pipeline().await;
    p.sim.set_scenario(sp_outcome("CANCELLED"));
    let sp = event_job("sp-reports");
    let execution = p
        .execute("no-data", SCHEDULED, std::slice::from_ref(&sp))
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    let run = p.services.store.run(&key_of(&sp)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::NoData);
    assert!(object_keys(&p).await.is_empty());
}

#[tokio::test]
async fn a_duplicate_execution_for_the_same_schedule_time_makes_no_second_request_and_no_second_object() {
    let p = pipeline().await;
    let jobs = [event_job("sp-reports"), event_job("amc")];
    let first = p.execute("first", SCHEDULED, &jobs).await.expect("execution");
    assert_eq!(first.status, "SUCCEEDED", "{:#}", first.output);
    let objects = object_keys(&p).await;
    let created = p.sim.created_counts();
    let second = p.execute("second", SCHEDULED, &jobs).await.expect("execution");
    assert_eq!(second.status, "SUCCEEDED", "{:#}", second.output);
    assert_eq!(p.sim.created_counts(), created, "no second Amazon request");
    assert_eq!(object_keys(&p).await, objects, "no second object");
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_by_name_without_a_duplicate_request() {
    let p = pipeline().await;
    let fault = |status, times, retry_after| Fault {
        op: "sp.getReport".into(),
        status,
        times,
        retry_after,
        body: None,
        after_effect: false,
        cut_after: None,
        tamper: false,
    };
    // A 429 asking for longer than a Lambda may sleep, then more 5xx than the client retries inline.
    p.sim.set_scenario(Scenario {
        faults: vec![fault(429, 1, Some(30)), fault(500, 5, None)],
        ..Scenario::default()
    });
    let execution = p
        .execute("retries", SCHEDULED, &[event_job("sp-reports")])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    let errors: Vec<String> = p
        .router
        .invocations()
        .into_iter()
        .filter(|i| i.function == "poll-status")
        .filter_map(|i| i.error)
        .collect();
    assert!(errors.contains(&"Throttled".to_owned()), "{errors:?}");
    assert!(errors.contains(&"Transient".to_owned()), "{errors:?}");
    assert_eq!(p.sim.created_counts().0, 1, "one Amazon report");
}

#[tokio::test]
async fn a_download_failing_mid_transfer_is_retried_into_exactly_one_complete_object() {
    let p = Pipeline::start(
        SimConfig {
            sp_report_bytes: 96 << 20,
            ..SimConfig::default()
        },
        4,
    )
    .await
    .expect("pipeline");
    p.router.cut_downloads_after([Duration::from_millis(150)]);
    let execution = p
        .execute("cut-off", SCHEDULED, &[event_job("sp-reports")])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    let downloads: Vec<Option<String>> = p
        .router
        .invocations()
        .into_iter()
        .filter(|i| i.function == "download-decrypt")
        .map(|i| i.error)
        .collect();
    assert_eq!(downloads, [Some("Transient".to_owned()), None]);
    let keys = object_keys(&p).await;
    assert_eq!(keys.len(), 2, "one document and its manifest: {keys:?}");
    assert_eq!(p.aws.open_uploads(BUCKET).await.expect("uploads"), 0);
}

#[tokio::test]
async fn when_retries_run_out_the_state_machine_writes_the_failure_on_the_run() {
    let p = pipeline().await;
    p.sim.set_scenario(Scenario {
        faults: vec![Fault {
            op: "sp.getReport".into(),
            status: 503,
            times: 1000,
            retry_after: None,
            body: None,
            after_effect: false,
            cut_after: None,
            tamper: false,
        }],
        ..Scenario::default()
    });
    let sp = event_job("sp-reports");
    let execution = p
        .execute("exhausted", SCHEDULED, std::slice::from_ref(&sp))
        .await
        .expect("execution");
    assert_eq!(execution.status, "FAILED");
    let run = p.services.store.run(&key_of(&sp)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed, "recorded through poll-status");
    let reason = run.failure_reason.expect("reason");
    assert!(reason.starts_with("Transient: "), "{reason}");
    assert!(
        !reason.contains("errorType"),
        "a readable reason, not the cause JSON: {reason}"
    );
    let results = &execution.history;
    assert!(
        results
            .iter()
            .any(|e| e["type"] == json!("TaskSucceeded") || e["type"] == json!("TaskStateExited")),
        "the history is read"
    );
}

#[tokio::test]
async fn a_run_whose_create_runs_out_of_retries_ends_failed_with_a_readable_reason() {
    // GIVEN an AMC create whose every call (the running-executions check first) answers 503 — AMC
    // publishes no HTTP usage plan, so nothing throttles the retries before they run out
    let p = pipeline().await;
    p.sim
        .set_scenario(Scenario::with_fault(Fault::answer("amc.listExecutions", 503, 10_000)));
    let amc = event_job("amc");
    // WHEN the state machine's retries of create-request run out
    let execution = p
        .execute("create-exhausted", SCHEDULED, std::slice::from_ref(&amc))
        .await
        .expect("execution");
    assert_eq!(execution.status, "FAILED");
    // THEN the run ends FAILED (it stayed CLAIMED before) with the reason a person reads
    let run = p.services.store.run(&key_of(&amc)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.expect("reason");
    assert!(reason.starts_with("Transient: ") && reason.contains("503"), "{reason}");
    assert!(!reason.contains("errorType"), "{reason}");
}

#[tokio::test]
async fn an_amc_run_the_state_machine_gives_up_gives_back_its_running_slot() {
    // GIVEN an AMC execution whose status reads fail until the state machine gives up
    let p = pipeline().await;
    p.sim
        .set_scenario(Scenario::with_fault(Fault::answer("amc.getExecution", 503, 10_000)));
    let amc = event_job("amc");
    let execution = p
        .execute("amc-exhausted", SCHEDULED, std::slice::from_ref(&amc))
        .await
        .expect("execution");
    assert_eq!(execution.status, "FAILED");
    let ctx = RunContext::from_event(json!({ "job": amc, "scheduledTime": SCHEDULED })).expect("context");
    let run = p.services.store.run(&ctx.key).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    // THEN its slot is free: with room for one holder only, another run gets it at once
    let Some(Quota::Slot { name, lease, .. }) = ctx.job.source.rules().create_quota(&ctx.job.credentials) else {
        panic!("AMC runs hold a slot");
    };
    let free = p
        .services
        .store
        .acquire_slot(&name, "another-run", 1, chrono::Utc::now(), lease)
        .await
        .expect("slot");
    assert!(free, "the failed run's slot was given back");
}
