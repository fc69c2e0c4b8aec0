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
use amzpipe_testkit::sfn::{Execution, MAP_RUN_RESULTS, STAGED_JOBS, local_definition};
use amzpipe_testkit::sim::{Fault, Scenario, SimConfig};
use amzpipe_testkit::stack::{BUCKET, Pipeline, event_job, is_day_record, put_jobs_file};
use serde_json::{Value, json};

const SCHEDULED: &str = "2026-11-23T06:00:00Z";

async fn pipeline() -> Pipeline {
    Pipeline::start(SimConfig::default(), 4).await.expect("pipeline")
}

/// The data objects: the state machine's own files (its Distributed Maps' results under
/// `MAP_RUN_RESULTS`, the jobs it staged under `STAGED_JOBS`) left out.
async fn object_keys(p: &Pipeline) -> Vec<String> {
    let objects = p.aws.objects(BUCKET).await.expect("list");
    objects
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !key.starts_with(MAP_RUN_RESULTS) && !key.starts_with(STAGED_JOBS))
        .collect()
}

/// How many runs are complete: the manifests among the data objects.
async fn manifests(p: &Pipeline) -> usize {
    object_keys(p)
        .await
        .iter()
        .filter(|k| k.ends_with("/_manifest.json"))
        .count()
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
fn every_lambda_task_retries_the_errors_aws_recommends_and_no_retrier_is_shadowed_by_an_earlier_one() {
    // AWS's Step Functions guide ("Handle transient Lambda service exceptions") recommends retrying
    // these four on every Lambda task. Step Functions applies the first retrier whose ErrorEquals
    // names the error, so an error listed in two retriers of one task only ever uses the first.
    for (name, task) in lambda_tasks() {
        let retriers: Vec<Vec<&str>> = task["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect()
            })
            .collect();
        let retried: Vec<&str> = retriers.iter().flatten().copied().collect();
        for error in [
            "Lambda.ClientExecutionTimeoutException",
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
        ] {
            assert!(retried.contains(&error), "{name} does not retry {error}: {retriers:?}");
        }
        for (i, error) in retried.iter().enumerate() {
            assert!(
                !retried[..i].contains(error),
                "{name}: {error} is in two retriers, and the later one never applies: {retriers:?}"
            );
        }
    }
}

#[test]
fn no_slice_execution_can_reach_step_functions_history_quota_whatever_its_steps_answer() {
    use amzpipe::steps::budget::{EVENTS_PER_STEP_CALL, FIXED_EVENTS, HISTORY_EVENTS_LIMIT, MAX_STEP_CALLS};
    // Events of one entry of a task (Step Functions' Standard history): TaskStateEntered,
    // TaskScheduled, TaskStarted, TaskSucceeded or TaskFailed, TaskStateExited; three more for each
    // retry (TaskScheduled, TaskStarted, TaskFailed), counted whether or not the step saw the call.
    let entry = |task: &Value| {
        let retries: u64 = task["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["MaxAttempts"].as_u64())
            .sum();
        5 + 3 * retries
    };
    let tasks: std::collections::BTreeMap<String, Value> = lambda_tasks().into_iter().collect();
    for looping in ["CreateRequest", "PollStatus", "DownloadDecrypt"] {
        // (and the Wait and the Choice that lead back to it: two events each)
        let worst = entry(&tasks[looping]) + 4;
        assert!(
            worst <= u64::from(EVENTS_PER_STEP_CALL),
            "{looping}: {worst} events per call, above EVENTS_PER_STEP_CALL"
        );
    }
    // The failure path, and every other state passed once (two events each), fit FIXED_EVENTS.
    let text = local_definition("table", 1, false).expect("ASL file");
    let states = text.matches("\"Type\":").count() as u64;
    let once = entry(&tasks["RecordFailure"]) + 2 * states + 10;
    assert!(once <= u64::from(FIXED_EVENTS), "{once} events outside the loops");
    // Every call of a looping step is counted on the run, and a run ends at MAX_STEP_CALLS.
    const { assert!(MAX_STEP_CALLS * EVENTS_PER_STEP_CALL + FIXED_EVENTS <= HISTORY_EVENTS_LIMIT) };
    // (and the default maxPolls fits under it)
    const { assert!(MAX_STEP_CALLS >= 240) };
}

#[test]
fn the_failed_runs_alarm_watches_the_metric_the_functions_publish_under_the_name_they_give_it() {
    use amzpipe::steps::metrics::{DIMENSION, NAMESPACE, RUNS_FAILED};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let template = std::fs::read_to_string(path).expect("template");
    let alarm: String = template
        .lines()
        .skip_while(|l| *l != "  RunsFailedAlarm:")
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(alarm.contains(&format!("Namespace: {NAMESPACE}")), "{alarm}");
    assert!(alarm.contains(&format!("MetricName: {RUNS_FAILED}")), "{alarm}");
    assert!(
        alarm.contains(&format!("Name: {DIMENSION}, Value: !Ref AWS::StackName")),
        "{alarm}"
    );
    assert!(template.contains("AMZPIPE_STACK_NAME: !Ref AWS::StackName"));
}

#[test]
fn every_alarm_on_the_functions_metrics_names_a_metric_they_emit_and_the_policy_check_knows_them_all() {
    use amzpipe::steps::metrics::{ALL, NAMESPACE};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra");
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("template");
    let emitted: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
    // Each alarm resource's lines: from `  Name:` to the blank line after it.
    let lines: Vec<&str> = template.lines().collect();
    let mut alarms = 0;
    for (at, line) in lines.iter().enumerate() {
        if line.trim() != "Type: AWS::CloudWatch::Alarm" {
            continue;
        }
        let body: Vec<&str> = lines[at..].iter().take_while(|l| !l.is_empty()).copied().collect();
        if !body.iter().any(|l| l.trim() == format!("Namespace: {NAMESPACE}")) {
            continue;
        }
        alarms += 1;
        let metric = body
            .iter()
            .find_map(|l| l.trim().strip_prefix("MetricName: "))
            .expect("a metric name");
        assert!(emitted.contains(&metric), "{metric} is not a metric the functions emit");
    }
    assert!(
        alarms >= 4,
        "the failed-run, overdue, rows-dropped and no-success alarms: {alarms}"
    );
    // The dashboard's every metric is one the functions emit, in the per-source series, for every
    // source the sample events name (a source kind is `events/{kind}.json`).
    let body: String = lines
        .iter()
        .skip_while(|l| l.trim() != "DashboardBody: !Sub |")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(&body).expect("the dashboard's JSON");
    let mut sources = std::collections::BTreeSet::new();
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        for metric in widget["properties"]["metrics"].as_array().expect("metrics") {
            assert_eq!(metric[0], NAMESPACE, "{metric}");
            let name = metric[1].as_str().expect("a name");
            assert!(
                emitted.contains(&name),
                "the dashboard shows {name}, which the functions do not emit"
            );
            assert_eq!(
                (&metric[2], &metric[4]),
                (&json!("Stack"), &json!("Source")),
                "{metric}"
            );
            sources.insert(metric[5].as_str().expect("a source").to_owned());
        }
    }
    let kinds: std::collections::BTreeSet<String> = ["sp-reports", "ads-reports", "amc", "slate"]
        .iter()
        .map(|name| {
            let job = event_job(name);
            amzpipe::domain::job::Job::from_value(job)
                .expect("a sample job")
                .source
                .kind()
                .to_owned()
        })
        .collect();
    assert_eq!(sources, kinds, "a row per source");
    // infra/policies.py lints the same names (ALARM_METRICS["amzpipe"]).
    let policies = std::fs::read_to_string(root.join("policies.py")).expect("policies.py");
    for name in emitted {
        assert!(
            policies.contains(&format!("\"{name}\"")),
            "{name} missing from infra/policies.py"
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
    assert_eq!(manifests(&p).await, 4);
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
    // The failed slice fails its own child execution (<machine>/Slices, which the FailedRunsAlarm
    // watches); the execution itself ends cleanly after every job had its turn.
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
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

/// A schedule's firing as EventBridge Scheduler delivers it to refresh-token: the `Input` of the
/// template's schedules, with Scheduler's context attributes filled in.
fn firing(schedule: &str, jobs: &[Value]) -> Value {
    json!({
        "schedule": format!("arn:aws:scheduler:us-east-1:123456789012:schedule/default/{schedule}"),
        "scheduledTime": SCHEDULED,
        "jobs": jobs,
    })
}

#[tokio::test]
async fn a_schedules_firing_delivered_again_and_again_starts_one_execution_and_makes_one_amazon_request() {
    // GIVEN the daily SP-API schedule's firing
    let p = pipeline().await;
    let firing = firing("sp-daily", &[event_job("sp-reports")]);

    // WHEN it is delivered three times at once (Scheduler's retries, Lambda's retries of an
    // asynchronous invocation) and the execution runs to its end
    let (a, b, c) = tokio::join!(
        p.router.invoke("refresh-token", &firing),
        p.router.invoke("refresh-token", &firing),
        p.router.invoke("refresh-token", &firing),
    );
    let outputs = [a, b, c].map(|o| o.expect("a firing is started, or found started"));
    let arn = outputs
        .iter()
        .find_map(|o| o["executionArn"].as_str())
        .expect("one delivery started it")
        .to_owned();
    let execution = p.sfn.wait(&arn, Duration::from_secs(300)).await.expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // AND once more after it ended
    let late = p
        .router
        .invoke("refresh-token", &firing)
        .await
        .expect("a late delivery");

    // THEN there is one execution, named after the schedule and the scheduled time, and every delivery
    // named it
    let names = p.sfn.execution_names(&p.machine).await.expect("executions");
    assert_eq!(names, ["sp-daily-20261123T060000Z"]);
    for output in outputs.iter().chain([&late]) {
        assert_eq!(output["executionName"], "sp-daily-20261123T060000Z", "{output}");
        assert!(
            output["executionArn"].is_null() || output["executionArn"] == arn.as_str(),
            "no delivery started another execution: {output}"
        );
    }
    assert_eq!(
        late["started"], false,
        "the ended execution is not started again: {late}"
    );

    // AND Amazon was asked once, and the run stored once
    assert_eq!(p.sim.created_counts(), (1, 0, 0), "one SP-API report");
    assert_eq!(manifests(&p).await, 1);
}

#[tokio::test]
async fn the_next_firing_of_the_same_schedule_and_another_schedule_at_the_same_time_each_start_their_own() {
    let p = pipeline().await;
    let sp = firing("sp-daily", &[event_job("sp-reports")]);
    let mut next = sp.clone();
    next["scheduledTime"] = json!("2026-11-24T06:00:00Z");
    let ads = firing("ads-daily", &[event_job("ads-reports")]);
    for event in [&sp, &next, &ads] {
        let output = p.router.invoke("refresh-token", event).await.expect("started");
        assert_eq!(output["started"], true, "{output}");
        let arn = output["executionArn"].as_str().expect("an ARN");
        let execution = p.sfn.wait(arn, Duration::from_secs(300)).await.expect("execution");
        assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    }
    let mut names = p.sfn.execution_names(&p.machine).await.expect("executions");
    names.sort();
    assert_eq!(
        names,
        [
            "ads-daily-20261123T060000Z",
            "sp-daily-20261123T060000Z",
            "sp-daily-20261124T060000Z"
        ]
    );
}

#[tokio::test]
async fn a_firing_without_jobs_is_refused_as_an_invalid_job_and_starts_nothing() {
    let p = pipeline().await;
    let mut broken = firing("sp-daily", &[]);
    broken.as_object_mut().expect("an object").remove("jobs");
    let err = p.router.invoke("refresh-token", &broken).await.expect_err("refused");
    assert!(err.contains("InvalidJob"), "{err}");
    assert_eq!(
        p.sfn.execution_names(&p.machine).await.expect("executions"),
        Vec::<String>::new()
    );
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
async fn a_download_cut_off_by_the_lambda_deadline_continues_into_exactly_one_complete_copy_of_the_document() {
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
    // The cut-off call answered CONTINUE (no error, so no retry spent) and the next one finished.
    let downloads: Vec<(Option<String>, Value)> = p
        .router
        .invocations()
        .into_iter()
        .filter(|i| i.function == "download-decrypt")
        .map(|i| (i.error, i.output["outcome"].clone()))
        .collect();
    assert_eq!(downloads, [(None, json!("CONTINUE")), (None, json!("DONE"))]);
    // The document's objects (its day's rows, 8 MiB an object) are each stored once, all of them the
    // manifest's, besides the manifest, the day's pointer and status, and the run's pulls.
    let keys = object_keys(&p).await;
    let manifests = p.manifests().await;
    assert_eq!(manifests.len(), 1);
    let mut recorded: Vec<&str> = manifests[0]["documents"][0]["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["key"].as_str())
        .collect();
    recorded.sort_unstable();
    let mut stored: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| !k.ends_with("/_manifest.json") && !is_day_record(k))
        .collect();
    stored.sort_unstable();
    assert!(!stored.is_empty());
    assert_eq!(
        stored, recorded,
        "the document once, as its manifest records it: {keys:?}"
    );
    assert_eq!(
        keys.len(),
        stored.len() + 4,
        "besides, the manifest, one pointer, one day status and one record of the pulls: {keys:?}"
    );
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
    assert_eq!(execution.status, "SUCCEEDED", "only the slice's child execution fails");
    let run = p.services.store.run(&key_of(&sp)).await.expect("read").expect("run");
    assert_eq!(run.status, RunStatus::Failed, "recorded through poll-status");
    let reason = run.failure_reason.expect("reason");
    assert!(reason.starts_with("Transient: "), "{reason}");
    assert!(
        !reason.contains("errorType"),
        "a readable reason, not the cause JSON: {reason}"
    );
    // The jobs ran as a Map Run (one child execution per job), whose results went to S3.
    assert!(
        execution.history.iter().any(|e| e["type"] == json!("MapRunSucceeded")),
        "{:#?}",
        execution.history
    );
    let written = execution.output["results"]["ResultWriterDetails"]["Key"]
        .as_str()
        .expect("the results' key");
    assert!(written.starts_with(MAP_RUN_RESULTS), "{written}");
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
    assert_eq!(execution.status, "SUCCEEDED", "only the slice's child execution fails");
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
    assert_eq!(execution.status, "SUCCEEDED", "only the slice's child execution fails");
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

#[test]
fn every_map_runs_its_items_as_child_executions_whose_results_go_to_s3() {
    // An inline Map keeps every iteration's events and results in the one execution: with hundreds of
    // jobs or slices it reaches Step Functions' 25,000-event history and 256 KB payload limits (which
    // moto does not enforce). Distributed, each job and each slice is a child execution of its own.
    let text = local_definition("table", 1, false).expect("ASL file");
    let asl: Value = serde_json::from_str(&text).expect("ASL JSON");
    fn maps(value: &Value, out: &mut Vec<Value>) {
        match value {
            Value::Object(map) => {
                if map.get("Type") == Some(&json!("Map")) {
                    out.push(value.clone());
                }
                map.values().for_each(|v| maps(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| maps(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    maps(&asl, &mut found);
    let labels: Vec<&str> = found.iter().filter_map(|m| m["Label"].as_str()).collect();
    assert_eq!(
        labels,
        ["Jobs", "Slices"],
        "the alarms watch these labels' child executions"
    );
    for map in &found {
        let label = &map["Label"];
        assert_eq!(
            map["ItemProcessor"]["ProcessorConfig"]["Mode"],
            json!("DISTRIBUTED"),
            "{label}"
        );
        assert_eq!(
            map["ItemProcessor"]["ProcessorConfig"]["ExecutionType"],
            json!("STANDARD"),
            "{label}"
        );
        assert_eq!(
            map["ResultWriter"]["Resource"],
            json!("arn:aws:states:::s3:putObject"),
            "{label}"
        );
        assert_eq!(
            map["ToleratedFailurePercentage"],
            json!(100.0),
            "{label}: one failure stops no other"
        );
    }
    assert_eq!(
        found[1]["MaxConcurrency"],
        json!(1),
        "a job's slices run one after the other"
    );
    assert_eq!(
        found[1]["ResultPath"],
        Value::Null,
        "a job keeps nothing of its slices' results"
    );
}

#[tokio::test]
async fn the_execution_history_does_not_grow_with_the_number_of_jobs() {
    let p = pipeline().await;
    let ads = |profile: &str| {
        let mut job = event_job("ads-reports");
        job["name"] = json!(format!("ads-campaigns-{profile}"));
        job["source"]["profileId"] = json!(profile);
        job
    };
    let one = p
        .execute("one-job", SCHEDULED, &[ads("1234567890")])
        .await
        .expect("execution");
    let five = [
        ads("1234567890"),
        ads("1234567891"),
        event_job("sp-reports"),
        event_job("amc"),
        event_job("slate"),
    ];
    let many = p.execute("five-jobs", SCHEDULED, &five).await.expect("execution");
    assert_eq!(many.status, "SUCCEEDED", "{:#}", many.output);
    assert_eq!(manifests(&p).await, 5, "every job ran");
    assert_eq!(one.history.len(), many.history.len(), "{:#?}", many.history);
    let output = |e: &Execution| e.output.to_string().len();
    assert_eq!(output(&one), output(&many), "the output is a pointer to the results");
}

#[tokio::test]
async fn a_failed_slice_does_not_stop_the_later_slices_of_its_job() {
    // GIVEN a job of two daily slices whose first createReport Amazon refuses outright
    let p = pipeline().await;
    p.sim
        .set_scenario(Scenario::with_fault(Fault::answer("sp.createReport", 400, 1)));
    let mut sp = event_job("sp-reports");
    sp["window"] = json!({ "rule": "lastDays", "days": 2, "sliceDays": 1 });
    // WHEN the state machine runs it
    let execution = p
        .execute("two-slices", SCHEDULED, std::slice::from_ref(&sp))
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    // THEN the first slice's run failed and the second still ran to its manifest
    let run = |slice: usize| {
        let key = RunContext::from_event(json!({ "job": sp, "scheduledTime": SCHEDULED, "slice": slice }))
            .expect("context")
            .key;
        let store = &p.services.store;
        async move { store.run(&key).await.expect("read").expect("run") }
    };
    assert_eq!(run(0).await.status, RunStatus::Failed);
    assert_eq!(run(1).await.status, RunStatus::Succeeded);
    assert_eq!(manifests(&p).await, 1);
}

#[tokio::test]
async fn an_execution_reads_its_jobs_from_a_jobs_file_when_they_are_more_than_an_input_holds() {
    // GIVEN jobs in a file under the bucket's `_amzpipe/jobs/` (an execution's input holds 256 KB)
    let p = pipeline().await;
    let jobs = [event_job("ads-reports"), event_job("slate")];
    let file = put_jobs_file(&p.aws, "agency", &jobs).await.expect("the jobs file");
    // WHEN an execution names the file instead of carrying the jobs
    let input = json!({ "scheduledTime": SCHEDULED, "jobsFile": file });
    let execution = p
        .execute_input("from-a-file", &input, Duration::from_secs(300))
        .await
        .expect("execution");
    // THEN every job in the file runs to its manifest
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    assert_eq!(manifests(&p).await, 2);
    // AND inline jobs are staged into a file of the execution, so that one Map reads both
    let inline = p
        .execute("inline", SCHEDULED, &[event_job("sp-reports")])
        .await
        .expect("execution");
    assert_eq!(inline.status, "SUCCEEDED", "{:#}", inline.output);
    let staged = p
        .aws
        .object_bytes(BUCKET, &format!("{STAGED_JOBS}/inline.json"))
        .await
        .expect("staged");
    let staged: Value = serde_json::from_slice(&staged).expect("JSON");
    assert_eq!(staged[0]["name"], json!("sp-orders-daily"));
}
