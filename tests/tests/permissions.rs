//! The permission contract: every AWS call the functions and the state machine make is allowed by the
//! IAM policies the SAM template gives their roles — as AWS would evaluate it, which moto does not.
//!
//! The real state machine, started as a schedule's firing by refresh-token (which may start it by
//! name), runs a job of every source and a failing one on moto, each function signing
//! its calls as itself and moto recording every request. Then `infra/policies.py render` gives each
//! role's policies as the stack would hold them (intrinsics resolved, for the names this run's
//! resources have), and `tests/iam/evaluate.cjs` reads each recorded request as AWS would (action,
//! resource ARN, condition context, and the KMS calls S3 and Secrets Manager make on the caller's
//! behalf) and evaluates it with an offline IAM evaluator (`@cloud-copilot/iam-simulate`, pinned,
//! installed by `make tools`). Any call not allowed fails the test naming the role, the action, the
//! resource and the statements that did not match; grants never exercised are printed (least
//! privilege). Both with and without a customer KMS key (`KmsKeyArn`). The state machine itself makes
//! no AWS call but invoking the functions (failures are recorded through poll-status): its role is
//! checked to grant nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use amzpipe_testkit::moto::LocalAws;
use amzpipe_testkit::sfn::FUNCTIONS;
use amzpipe_testkit::sim::{Scenario, SimConfig};
use amzpipe_testkit::stack::{
    BUCKET, GLUE_DATABASE, Pipeline, STACK, TABLE, TOKEN_KEY, event_job, function_access_key, put_jobs_file,
    secret_value,
};
use serde_json::{Value, json};

/// The credentials secret, named as the template names `DefaultCredentials`.
const SECRET: &str = "amzpipe/local/default";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The stack's logical id of each function's role.
fn role_of(function: &str) -> &'static str {
    match function {
        "refresh-token" => "RefreshTokenFunction",
        "create-request" => "CreateRequestFunction",
        "poll-status" => "PollStatusFunction",
        _ => "DownloadDecryptFunction",
    }
}

async fn key_arn(aws: &LocalAws, key: &str) -> String {
    let kms = aws_sdk_kms::Client::new(&aws.sdk_config().await);
    let described = kms.describe_key().key_id(key).send().await.expect("the key");
    described
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("an ARN")
        .to_owned()
}

/// The stack's policies as `infra/policies.py render` gives them, for resources named by `names`
/// (`Logical=physical`), with `kms_key` as `KmsKeyArn` when there is one.
fn render(names: &[String], kms_key: Option<&str>) -> Value {
    let mut render = Command::new(repo().join(".venv/bin/python"));
    render
        .current_dir(repo())
        .args(["infra/policies.py", "render", "--stack", STACK]);
    for name in names {
        render.args(["--name", name]);
    }
    if let Some(key) = kms_key {
        render.args(["--kms", "--kms-key-arn", key]);
    }
    let rendered = render
        .output()
        .expect("python3 infra/policies.py (make tools installs PyYAML)");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    serde_json::from_slice(&rendered.stdout).expect("rendered policies")
}

/// What the evaluator says of one recorded run of the pipeline, with a customer key when `kms`.
async fn evaluate(kms: bool) -> Value {
    // GIVEN the pipeline as deployed, with (or without) a customer key for the bucket and the secret
    let data_key = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let chosen = std::sync::Arc::clone(&data_key);
    let p = Pipeline::as_deployed(
        SimConfig::default(),
        async move |aws: &LocalAws, settings: &mut amzpipe::steps::Settings| {
            if kms {
                let kms_client = aws_sdk_kms::Client::new(&aws.sdk_config().await);
                let key = kms_client.create_key().description("KmsKeyArn").send().await?;
                let arn = key.key_metadata().and_then(|m| m.arn()).unwrap_or_default().to_owned();
                settings.kms_key_id = Some(arn.clone());
                *chosen.lock().expect("lock") = Some(arn);
            }
            Ok(())
        },
    )
    .await
    .expect("pipeline");
    let data_key = data_key.lock().expect("lock").clone();
    let sm = aws_sdk_secretsmanager::Client::new(&p.aws.sdk_config().await);
    let mut create = sm.create_secret().name(SECRET).secret_string(secret_value("na"));
    if let Some(key) = &data_key {
        create = create.kms_key_id(key);
    }
    let secret_arn = create.send().await.expect("secret").arn().expect("an ARN").to_owned();
    p.sim
        .set_scenario(Scenario::with_outcome("GET_MERCHANT_LISTINGS_ALL_DATA", "FATAL"));

    // WHEN it runs a job of every source, and one that fails, with every request recorded
    let mut jobs: Vec<Value> = ["sp-reports", "ads-reports", "amc", "slate"].map(event_job).to_vec();
    let mut failing = event_job("sp-reports");
    failing["name"] = json!("sp-listings");
    failing["source"]["reportType"] = json!("GET_MERCHANT_LISTINGS_ALL_DATA");
    jobs.push(failing);
    // (and one refused at validation, which refresh-token records for `amzpipectl status`)
    let mut refused = event_job("slate");
    refused["name"] = json!("slate-refused");
    refused["source"]["accountId"] = json!("acct/../x");
    jobs.push(refused);
    for job in &mut jobs {
        job["credentials"] = json!(SECRET);
    }
    // (and the same jobs as the jobs file of another execution, stored as a user stores it: under the
    // bucket's default encryption, the customer key when there is one)
    let jobs_file = put_jobs_file(&p.aws, "permissions", &jobs)
        .await
        .expect("the jobs file");
    p.aws.start_recording().await.expect("recording");
    // (started as a schedule's firing: refresh-token starts the execution by name)
    let firing = json!({
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/permissions",
        "scheduledTime": "2026-11-23T06:00:00Z",
        "jobs": jobs,
    });
    let started = p.router.invoke("refresh-token", &firing).await.expect("the firing");
    let arn = started["executionArn"].as_str().expect("an execution started");
    let execution = p
        .sfn
        .wait(arn, std::time::Duration::from_secs(300))
        .await
        .expect("execution");
    // (AND that other execution, stopped: poll-status reads its jobs file back to end its runs, as the
    // EventBridge rule hands it the status change; it held none of them, so it ends none)
    let stopped = json!({
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "name": "stopped-by-hand",
            "status": "ABORTED",
            "input": json!({ "scheduledTime": "2026-11-23T06:00:00Z", "jobsFile": jobs_file }).to_string(),
        },
    });
    let abandoned = p
        .router
        .invoke("poll-status", &stopped)
        .await
        .expect("the status change");
    assert_eq!(abandoned["failedRuns"], json!([]), "{abandoned:#}");
    let recording = p.aws.stop_recording().await.expect("the recording");
    assert_eq!(
        execution.status, "SUCCEEDED",
        "the failing job fails only its own child execution: {:#}",
        execution.output
    );
    let manifests = p
        .aws
        .objects(BUCKET)
        .await
        .expect("objects")
        .into_iter()
        .filter(|(key, _)| key.ends_with("/_manifest.json"))
        .count();
    assert_eq!(manifests, 4, "every other job ran to its manifest");

    // THEN every recorded call is evaluated against the roles the template gives
    let token_key = key_arn(&p.aws, TOKEN_KEY).await;
    let token_key_id = token_key.rsplit('/').next().expect("a key id").to_owned();
    let names = [
        format!("JobTable={TABLE}"),
        format!("OutputBucket={BUCKET}"),
        format!("TokenKey={token_key_id}"),
        format!("GlueDatabase={GLUE_DATABASE}"),
    ];
    let policies = render(&names, data_key.as_deref());
    let principals: serde_json::Map<String, Value> = FUNCTIONS
        .iter()
        .map(|f| (function_access_key(f), json!(role_of(f))))
        .collect();
    let mut kms_keys = json!({ TOKEN_KEY: token_key });
    let mut secret_keys = json!({});
    let mut bucket_keys = json!({});
    if let Some(key) = &data_key {
        kms_keys[key] = json!(key);
        secret_keys[SECRET] = json!(key);
        bucket_keys[BUCKET] = json!(key);
    }
    let input = json!({
        "recording": recording,
        "principals": principals,
        "defaultRole": "Pipeline",
        "roles": policies["roles"],
        "resourcePolicies": policies["resourcePolicies"],
        "keyPolicies": { token_key_id: "TokenKey" },
        "kmsKeys": kms_keys,
        "secretArns": { SECRET: secret_arn },
        "secretKeys": secret_keys,
        "bucketKeys": bucket_keys,
        "bucketPolicy": "OutputBucketPolicy",
        "region": "us-east-1",
        "account": "123456789012",
    });
    let file = std::env::temp_dir().join(format!("amzpipe-permissions-{}-{kms}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&input).expect("JSON")).expect("input file");
    let evaluated = Command::new("node")
        .arg(repo().join("tests/iam/evaluate.cjs"))
        .arg(&file)
        .output()
        .expect("node");
    let _ = std::fs::remove_file(&file);
    assert!(
        evaluated.status.success(),
        "the evaluator failed (run `make tools`, which installs @cloud-copilot/iam-simulate): {}",
        String::from_utf8_lossy(&evaluated.stderr)
    );
    let mut report: Value = serde_json::from_slice(&evaluated.stdout).expect("the report");
    // What the state machine's own role grants (its Lambda invokes are answered by the router, so
    // the recording holds none of its calls).
    report["pipelineGrants"] = json!(
        policies["roles"]["Pipeline"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|doc| doc["Statement"].as_array().into_iter().flatten())
            .flat_map(|st| match &st["Action"] {
                Value::Array(actions) => actions.clone(),
                action => vec![action.clone()],
            })
            .collect::<Vec<_>>()
    );
    report
}

/// What a Distributed Map needs of the state machine's role: to start, read and stop its child
/// executions, and to write their results (ResultWriter) to S3, under the bucket's key when it has one.
const DISTRIBUTED_MAP_GRANTS: [&str; 9] = [
    "states:StartExecution",
    "states:DescribeExecution",
    "states:StopExecution",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
    "kms:GenerateDataKey",
    "kms:Decrypt",
];

fn check(report: &Value, label: &str) {
    println!("{label}: {} distinct calls evaluated", report["evaluated"]);
    println!("{label}: exercised {:#}", report["exercised"]);
    println!(
        "{label}: granted but never exercised (least privilege) {:#}",
        report["unused"]
    );
    assert_eq!(
        report["errors"],
        json!([]),
        "{label}: requests the evaluator could not read"
    );
    assert_eq!(
        report["denied"],
        json!([]),
        "{label}: calls the stack's policies do not allow (role, action, resource, unmatched statements)"
    );
    // The state machine reaches the table only through the functions (failures are recorded by
    // poll-status): its role invokes the functions, runs its own Distributed Map children, writes
    // their results to S3, logs and traces, and nothing else.
    let grants: Vec<&str> = report["pipelineGrants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(grants.contains(&"lambda:InvokeFunction"), "{label}: {grants:?}");
    assert!(
        grants.iter().all(|a| a.starts_with("lambda:InvokeFunction")
            || a.starts_with("logs:")
            || a.starts_with("xray:")
            || DISTRIBUTED_MAP_GRANTS.contains(a)),
        "{label}: the state machine's role grants more than it uses: {grants:?}"
    );
    // Every function was seen making calls: the check is not vacuous.
    for role in [
        "RefreshTokenFunction",
        "CreateRequestFunction",
        "PollStatusFunction",
        "DownloadDecryptFunction",
    ] {
        assert!(
            report["exercised"][role].as_array().is_some_and(|a| !a.is_empty()),
            "{label}: no call of {role} was recorded: {:#}",
            report["exercised"]
        );
    }
}

#[tokio::test]
async fn every_call_of_every_function_and_of_the_state_machine_is_allowed_by_its_role() {
    let report = evaluate(false).await;
    check(&report, "without KmsKeyArn");
    let exercised = &report["exercised"];
    assert!(
        exercised["DownloadDecryptFunction"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("s3:ListBucketMultipartUploads")))
    );
    assert!(
        exercised["RefreshTokenFunction"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("kms:GenerateDataKey")))
    );
    assert!(
        exercised["DownloadDecryptFunction"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("glue:CreateTable"))),
        "registering the runs' tables was evaluated: {exercised:#}"
    );
    assert!(
        exercised["RefreshTokenFunction"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("states:StartExecution"))),
        "the schedule's firing started the execution as refresh-token: {exercised:#}"
    );
}

#[tokio::test]
async fn with_a_customer_kms_key_every_call_including_the_ones_made_through_s3_and_secrets_manager_is_allowed() {
    let report = evaluate(true).await;
    check(&report, "with KmsKeyArn");
    let decrypts = report["exercised"]["RefreshTokenFunction"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("kms:Decrypt")));
    assert!(
        decrypts,
        "reading the secret under the customer key was evaluated: {:#}",
        report["exercised"]
    );
    let reads_jobs_file = report["exercised"]["PollStatusFunction"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("s3:GetObject")) && a.contains(&json!("kms:Decrypt")));
    assert!(
        reads_jobs_file,
        "poll-status reading an execution's jobs file under the customer key was evaluated: {:#}",
        report["exercised"]
    );
}

#[test]
fn every_grant_on_the_token_key_is_limited_to_the_purpose_the_sealed_tokens_name() {
    // adapters/kms.rs seals every cached token with the encryption context purpose=TOKEN_CONTEXT_PURPOSE;
    // a grant without that condition would let a role decrypt anything else sealed under the key.
    let policies = render(&["TokenKey=token-key-id".to_owned()], None);
    let token_key = "arn:aws:kms:us-east-1:123456789012:key/token-key-id";
    let mut grants = 0;
    for (role, documents) in policies["roles"].as_object().expect("roles") {
        for statement in documents
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|d| d["Statement"].as_array().into_iter().flatten())
        {
            let resources = match &statement["Resource"] {
                Value::Array(r) => r.clone(),
                r => vec![r.clone()],
            };
            if !resources.contains(&json!(token_key)) {
                continue;
            }
            grants += 1;
            assert_eq!(
                statement["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"],
                json!(amzpipe::adapters::kms::TOKEN_CONTEXT_PURPOSE),
                "{role}: {statement:#}"
            );
        }
    }
    assert_eq!(grants, 4, "each function seals or opens tokens: {policies:#}");
}
