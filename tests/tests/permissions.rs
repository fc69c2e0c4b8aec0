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
    BUCKET, GLUE_DATABASE, Pipeline, STACK, TABLE, TOKEN_KEY, event_job, function_access_key, secret_value,
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
    p.aws.start_recording().await.expect("recording");
    let mut jobs: Vec<Value> = ["sp-reports", "ads-reports", "amc", "slate"].map(event_job).to_vec();
    let mut failing = event_job("sp-reports");
    failing["name"] = json!("sp-listings");
    failing["source"]["reportType"] = json!("GET_MERCHANT_LISTINGS_ALL_DATA");
    jobs.push(failing);
    for job in &mut jobs {
        job["credentials"] = json!(SECRET);
    }
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
    let mut render = Command::new(repo().join(".venv/bin/python"));
    render.current_dir(repo()).args([
        "infra/policies.py",
        "render",
        "--stack",
        STACK,
        "--name",
        &format!("JobTable={TABLE}"),
        "--name",
        &format!("OutputBucket={BUCKET}"),
        "--name",
        &format!("TokenKey={token_key_id}"),
        "--name",
        &format!("GlueDatabase={GLUE_DATABASE}"),
    ]);
    if let Some(key) = &data_key {
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
    let policies: Value = serde_json::from_slice(&rendered.stdout).expect("rendered policies");
    let principals: serde_json::Map<String, Value> = FUNCTIONS
        .iter()
        .map(|f| (function_access_key(f), json!(role_of(f))))
        .collect();
    let mut kms_keys = json!({ TOKEN_KEY: token_key });
    let mut secret_keys = json!({});
    if let Some(key) = &data_key {
        kms_keys[key] = json!(key);
        secret_keys[SECRET] = json!(key);
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
}
