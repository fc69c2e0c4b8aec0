//! `amzpipectl`, the real binary, against the Amazon API simulator and a local AWS (moto): every
//! command, with the local stack's environment file as an operator would use it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use amzpipe::adapters::secrets::parse_secret;
use amzpipe_testkit::moto::LocalAws;
use amzpipe_testkit::sim::{SimConfig, Simulator};
use amzpipe_testkit::stack::{self, CLIENT_SECRET, Pipeline, SECRET, Stack, event_job};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const SCHEDULED: &str = "2026-11-23T06:00:00Z";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The local stack's environment file, as `local-stack` writes it.
struct EnvFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn env_file(sim: &Simulator, aws: &LocalAws, machine: Option<&str>) -> EnvFile {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("stack.env");
    stack::write_stack_env(&path, sim, aws, machine).expect("env file");
    EnvFile { _dir: dir, path }
}

/// The binary with `--env-file`, and nothing inherited that could point it elsewhere.
fn amzpipectl(env: &EnvFile) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amzpipectl"));
    for name in [
        "AMZPIPE_STACK",
        "AMZPIPE_TABLE",
        "AMZPIPE_STATE_MACHINE_ARN",
        "AMZPIPE_ENV_FILE",
        "AMZPIPE_CLIENT_SECRET",
        "AMZPIPE_REFRESH_TOKEN",
        "AWS_PROFILE",
    ] {
        command.env_remove(name);
    }
    command
        .arg("--env-file")
        .arg(&env.path)
        .current_dir(root())
        .kill_on_drop(true);
    command
}

async fn output(mut command: Command, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(120), command.args(args).output())
        .await
        .expect("finished in time")
        .expect("ran")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Asserts that the command was refused with `code` and that its error says `says`.
fn assert_refused(o: &Output, code: i32, says: &str) {
    let (_, stderr) = text(o);
    assert_eq!(o.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

fn json_of(o: &Output) -> Value {
    let (stdout, stderr) = text(o);
    assert!(o.status.success(), "failed: {stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"))
}

fn ads_event() -> Value {
    json!({ "job": event_job("ads-reports"), "scheduledTime": SCHEDULED })
}

fn write_job(dir: &Path, job: &Value) -> PathBuf {
    let path = dir.join(format!("{}.json", job["name"].as_str().expect("name")));
    std::fs::write(&path, job.to_string()).expect("job file");
    path
}

async fn secret_of(aws: &LocalAws, id: &str) -> amzpipe::adapters::secrets::SecretValue {
    let client = aws_sdk_secretsmanager::Client::new(&aws.sdk_config().await);
    let value = client.get_secret_value().secret_id(id).send().await.expect("secret");
    parse_secret(id, value.secret_string().expect("string")).expect("credential set")
}

#[tokio::test]
async fn every_command_explains_itself_with_help() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    for args in [
        vec!["--help"],
        vec!["onboard", "--help"],
        vec!["discover", "--help"],
        vec!["run", "--help"],
        vec!["backfill", "--help"],
        vec!["status", "--help"],
        vec!["amc", "workflows", "sync", "--help"],
        vec!["amc", "workflows", "list", "--help"],
    ] {
        let o = output(amzpipectl(&env), &args).await;
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{args:?}: {stderr}");
        assert!(stdout.contains("Usage: amzpipectl"), "{args:?}: {stdout}");
    }
}

#[tokio::test]
async fn without_a_table_name_the_error_says_how_to_give_one() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    // The local stack's env file names the table; a file without it is a fresh operator's machine.
    let bare = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        bare.path(),
        format!("AWS_ENDPOINT_URL={}\nAWS_REGION=us-east-1\n", stack.aws.endpoint()),
    )
    .expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_amzpipectl"));
    command
        .env_remove("AMZPIPE_TABLE")
        .env_remove("AMZPIPE_STACK")
        .arg("--env-file")
        .arg(bare.path());
    let o = output(command, &["status"]).await;
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--stack") && stderr.contains("AMZPIPE_TABLE"),
        "{stderr}"
    );
}

#[tokio::test]
async fn onboarding_catches_the_redirect_stores_the_secret_and_lists_the_profiles() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let port = amzpipe_testkit::moto::free_port().expect("port");
    let mut command = amzpipectl(&env);
    command
        .args([
            "onboard",
            "ads",
            "--secret",
            "amzpipe/agency-a",
            "--client-id",
            "amzn1.application-oa2-client.agency",
        ])
        .args(["--port", &port.to_string()])
        .env("AMZPIPE_CLIENT_SECRET", "agency-client-secret-9d1e")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawned");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let consent = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the consent URL in time")
            .expect("read")
            .expect("a line");
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.trim().strip_prefix(stack.sim.consent_url().as_str()) {
            break format!("{}{url}", stack.sim.consent_url());
        }
    };
    assert!(
        consent.contains("scope=advertising%3A%3Acampaign_management"),
        "{consent}"
    );
    assert!(seen.contains("expire 5 minutes"), "{seen}");
    // The browser: consent, then the redirect to the loopback listener.
    let page = reqwest::get(&consent)
        .await
        .expect("consent")
        .text()
        .await
        .expect("page");
    assert!(page.contains("authorised"), "{page}");
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let o = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("done")
        .expect("ran");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = rest.await.expect("stderr");
    assert!(o.status.success(), "{stdout}\n{seen}{stderr}");
    assert!(stdout.contains("created secret amzpipe/agency-a"), "{stdout}");
    assert!(
        stdout.contains("1234567890") && stdout.contains("America/Los_Angeles"),
        "{stdout}"
    );
    let stored = secret_of(&stack.aws, "amzpipe/agency-a").await;
    assert_eq!(stored.client_secret, "agency-client-secret-9d1e");
    assert!(stored.refresh_token.starts_with("Atzr|onboarded"));
    for secret in ["agency-client-secret-9d1e", &stored.refresh_token] {
        assert!(!stdout.contains(secret) && !seen.contains(secret) && !stderr.contains(secret));
    }
}

async fn code_for(sim: &Simulator, client_id: &str, redirect: &str) -> String {
    let url = amzpipe::adapters::lwa::consent_url(
        &sim.consent_url(),
        client_id,
        "advertising::campaign_management",
        redirect,
        "st",
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client.get(url).send().await.expect("consent");
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    let query = location.split_once('?').expect("query").1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("pairs");
    pairs.into_iter().find(|(k, _)| k == "code").expect("code").1
}

#[tokio::test]
async fn a_used_or_expired_authorization_code_is_refused_saying_codes_expire() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let client_id = "amzn1.application-oa2-client.agency";
    let redirect = "https://example.com/amazon/callback";
    let onboard = |code: &str| {
        let mut c = amzpipectl(&env);
        c.env("AMZPIPE_CLIENT_SECRET", "s3cret-value")
            .args([
                "--json",
                "onboard",
                "amc",
                "--secret",
                "amzpipe/amc-a",
                "--client-id",
                client_id,
            ])
            .args(["--redirect-uri", redirect, "--code", code]);
        c
    };
    let code = code_for(&stack.sim, client_id, redirect).await;
    let first = json_of(&output(onboard(&code), &[]).await);
    assert_eq!(first["created"], json!(true));
    let instances = &first["reaches"]["items"][0]["instances"];
    assert_eq!(instances[0]["instanceId"], "amcdemo01", "{first}");
    let again = output(onboard(&code), &[]).await;
    let (_, stderr) = text(&again);
    assert_refused(&again, 1, "refused the authorization code");
    assert!(stderr.contains("expire 5 minutes after consent"), "{stderr}");
    let late = code_for(&stack.sim, client_id, redirect).await;
    stack.sim.advance(301);
    let expired = output(onboard(&late), &[]).await;
    assert_refused(&expired, 1, "refused the authorization code");
    // The secret kept the first version's token: nothing was written by the refused attempts.
    assert!(
        secret_of(&stack.aws, "amzpipe/amc-a")
            .await
            .refresh_token
            .starts_with("Atzr|onboarded")
    );
}

#[tokio::test]
async fn sp_api_onboarding_takes_a_seller_central_refresh_token_and_lists_marketplaces() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let mut command = amzpipectl(&env);
    command
        .env("AMZPIPE_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMZPIPE_REFRESH_TOKEN", "Atzr|from-seller-central")
        .args([
            "onboard",
            "sp",
            "--secret",
            SECRET,
            "--client-id",
            "amzn1.application-oa2-client.local",
        ]);
    let o = output(command, &[]).await;
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("stored a new version of secret amzpipe/local"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ATVPDKIKX0DER") && stdout.contains("Amazon.com"),
        "{stdout}"
    );
    assert_eq!(
        secret_of(&stack.aws, SECRET).await.refresh_token,
        "Atzr|from-seller-central"
    );
    let mut bad = amzpipectl(&env);
    bad.env("AMZPIPE_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMZPIPE_REFRESH_TOKEN", "not-a-token")
        .args(["onboard", "sp", "--secret", SECRET, "--client-id", "x"]);
    let o = output(bad, &[]).await;
    assert_refused(&o, 2, "Atzr|");
}

#[tokio::test]
async fn discovery_lists_every_source_and_writes_jobs_that_are_valid_definitions() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let discover = |source: &str| {
        let mut c = amzpipectl(&env);
        c.args(["discover", source, "--credentials", SECRET]);
        c
    };
    let ads = text(&output(discover("ads"), &[]).await).0;
    assert!(
        ads.contains("PROFILE ID") && ads.contains("1234567891") && ads.contains("USD"),
        "{ads}"
    );
    let amc = text(&output(discover("amc"), &[]).await).0;
    assert!(amc.contains("ENTITY1AA1AA11AAA1") && amc.contains("amcdemo01"), "{amc}");
    let sp = text(&output(discover("sp"), &[]).await).0;
    assert!(sp.contains("A2EUQ1WTGCTBG2") && sp.contains("CAD"), "{sp}");
    let slate = json_of(&output(discover("slate"), &["--json"]).await);
    let datasets: Vec<&str> = slate["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["datasetId"].as_str())
        .collect();
    assert!(datasets.contains(&"playback"), "{slate}");

    let dir = tempfile::tempdir().expect("dir");
    let jobs = dir.path().join("jobs");
    let jobs_arg = jobs.to_str().expect("path");
    let written = json_of(
        &output(
            discover("ads"),
            &["--json", "--write-jobs", jobs_arg, "--select", "1234567890"],
        )
        .await,
    );
    let files = written["jobsWritten"].as_array().expect("written");
    assert_eq!(files.len(), 1, "{written}");
    let job: Value =
        serde_json::from_slice(&std::fs::read(files[0].as_str().expect("path")).expect("file")).expect("JSON");
    amzpipe::domain::job::Job::from_value(job.clone()).expect("a valid job");
    assert_eq!(job["source"]["profileId"], "1234567890");
    for (source, extra) in [
        ("sp", vec![]),
        ("slate", vec![]),
        ("amc", vec!["--workflow", "weekly_reach"]),
    ] {
        let mut args = vec!["--write-jobs", jobs_arg];
        args.extend(extra);
        let o = output(discover(source), &args).await;
        assert!(o.status.success(), "{source}: {}", text(&o).1);
    }
    for entry in std::fs::read_dir(&jobs).expect("dir") {
        let path = entry.expect("entry").path();
        amzpipe::domain::job::Job::parse(&std::fs::read_to_string(&path).expect("file"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let unknown = output(discover("ads"), &["--write-jobs", jobs_arg, "--select", "999"]).await;
    assert_refused(&unknown, 2, "unknown id \"999\"");
    let no_workflow = output(discover("amc"), &["--write-jobs", jobs_arg]).await;
    assert!(text(&no_workflow).1.contains("--workflow"), "{}", text(&no_workflow).1);
    let missing = output(
        {
            let mut c = amzpipectl(&env);
            c.args(["discover", "ads", "--credentials", "amzpipe/nobody"]);
            c
        },
        &[],
    )
    .await;
    assert!(text(&missing).1.contains("onboard"), "{}", text(&missing).1);
}

#[tokio::test]
async fn amc_workflow_sync_creates_updates_shows_diffs_and_deletes_only_with_the_flag() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("reach.sql"),
        "/* amzpipe\n{\"workflowId\": \"weekly_reach\", \"outputFormat\": {\"separatorCharacter\": \",\"}}\n*/\nSELECT campaign,\n  COUNT(DISTINCT user_id) AS reach\nFROM dsp_impressions GROUP BY 1\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("daily_sales.sql"),
        "-- sales\nSELECT 1 FROM amazon_attributed_events_by_conversion_time",
    )
    .expect("write");
    let dir_arg = dir.path().to_str().expect("dir").to_owned();
    let sync = |extra: &[&str]| {
        let mut c = amzpipectl(&env);
        c.args([
            "amc",
            "workflows",
            "sync",
            &dir_arg,
            "--credentials",
            SECRET,
            "--instance",
            "amcdemo01",
        ])
        .args(["--advertiser", "ENTITY1AA1AA11AAA1"])
        .args(extra);
        c
    };
    let unconfirmed = output(sync(&[]), &[]).await;
    assert_refused(&unconfirmed, 2, "--yes");
    let created = output(sync(&["--yes"]), &[]).await;
    let (stdout, stderr) = text(&created);
    assert!(created.status.success(), "{stderr}");
    assert!(
        stdout.contains("create     weekly_reach") && stdout.contains("create     daily_sales"),
        "{stdout}"
    );
    let listed = json_of(
        &output(
            amzpipectl(&env),
            &[
                "--json",
                "amc",
                "workflows",
                "list",
                "--credentials",
                SECRET,
                "--instance",
                "amcdemo01",
                "--advertiser",
                "ENTITY1AA1AA11AAA1",
            ],
        )
        .await,
    );
    assert_eq!(listed.as_array().expect("list").len(), 2, "{listed}");
    assert!(text(&output(sync(&["--yes"]), &[]).await).0.contains("0 change(s)"));

    std::fs::write(
        dir.path().join("daily_sales.sql"),
        "SELECT 2 FROM amazon_attributed_events_by_conversion_time",
    )
    .expect("write");
    let planned = output(sync(&["--dry-run"]), &[]).await;
    let stdout = text(&planned).0;
    assert!(stdout.contains("update     daily_sales"), "{stdout}");
    assert!(
        stdout.contains("-  \"sqlQuery\": \"SELECT 1 FROM") && stdout.contains("+  \"sqlQuery\": \"SELECT 2 FROM"),
        "{stdout}"
    );
    let amc = stack
        .services
        .clients(
            &stack
                .services
                .sessions
                .session(SECRET, amzpipe::domain::credentials::TokenHost::Regional)
                .await
                .expect("session"),
        )
        .amc();
    let scope = amzpipe::adapters::amc::AmcScope {
        instance_id: "amcdemo01".into(),
        advertiser_id: "ENTITY1AA1AA11AAA1".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
    };
    assert!(
        amc.workflow(&scope, "daily_sales").await.expect("held")["sqlQuery"]
            .as_str()
            .expect("sql")
            .starts_with("SELECT 1")
    );
    let applied = json_of(&output(sync(&["--yes", "--json"]), &[]).await);
    assert_eq!(applied["applied"], json!(true));
    assert!(
        amc.workflow(&scope, "daily_sales").await.expect("held")["sqlQuery"]
            .as_str()
            .expect("sql")
            .starts_with("SELECT 2")
    );

    std::fs::remove_file(dir.path().join("reach.sql")).expect("remove");
    let kept = text(&output(sync(&["--yes"]), &[]).await).0;
    assert!(
        kept.contains("keep (no file; --delete removes it) weekly_reach"),
        "{kept}"
    );
    amc.workflow(&scope, "weekly_reach").await.expect("still there");
    let deleted = text(&output(sync(&["--yes", "--delete"]), &[]).await).0;
    assert!(deleted.contains("delete     weekly_reach"), "{deleted}");
    assert!(amc.workflow(&scope, "weekly_reach").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_the_runs_as_a_table_and_json_filtered_by_job_and_state_and_watches() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let ads = ads_event();
    stack.run(&ads).await.expect("ads run");
    let failing = event_job("sp-reports");
    stack.sim.set_scenario(amzpipe_testkit::sim::Scenario::with_outcome(
        failing["source"]["reportType"].as_str().expect("type"),
        "FATAL",
    ));
    let _ = stack.run(&json!({ "job": failing, "scheduledTime": SCHEDULED })).await;

    let o = output(amzpipectl(&env), &["status"]).await;
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for expected in [
        "JOB",
        "ads-sp-campaigns-daily",
        "2026-11-22",
        "SUCCEEDED",
        "FAILED",
        "ROWS",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let rows = json_of(&output(amzpipectl(&env), &["--json", "status", "--state", "failed"]).await);
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["job"], "sp-orders-daily");
    assert!(
        rows[0]["failureReason"].as_str().is_some_and(|r| !r.is_empty()),
        "{rows:?}"
    );
    let ads_rows = json_of(
        &output(
            amzpipectl(&env),
            &["--json", "status", "--job", "ads-sp-campaigns-daily"],
        )
        .await,
    );
    let ads_row = &ads_rows[0];
    assert_eq!(ads_row["state"], "SUCCEEDED");
    assert!(ads_row["bytes"].as_u64().is_some_and(|b| b > 0), "{ads_row}");
    assert!(ads_row["amazonId"].as_str().is_some_and(|id| !id.is_empty()));
    let watched = output(
        amzpipectl(&env),
        &["--json", "status", "--watch", "--interval", "1", "--count", "2"],
    )
    .await;
    let frames: Vec<Value> = text(&watched)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["runs"].as_array().map(Vec::len), Some(2));

    // A job refused at validation (a Slate accountId with `/`) has no run, and is shown all the same,
    // saying why: before, only its child execution failed, and status showed nothing.
    let mut refused = event_job("slate");
    refused["name"] = json!("slate-hostile");
    refused["source"]["accountId"] = json!("acct/../../x");
    let refusal = amzpipe::steps::refresh_token(
        &stack.services,
        json!({ "job": refused, "scheduledTime": SCHEDULED, "owner": "exec-1" }),
    )
    .await
    .expect_err("refused");
    assert_eq!(refusal.error_type(), "InvalidJob");
    let rows = json_of(&output(amzpipectl(&env), &["--json", "status", "--state", "refused"]).await);
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["job"], "slate-hostile");
    assert_eq!(rows[0]["state"], "REFUSED");
    assert!(
        rows[0]["failureReason"]
            .as_str()
            .is_some_and(|r| r.contains("accountId")),
        "{rows:?}"
    );
    let (table, _) = text(&output(amzpipectl(&env), &["status"]).await);
    assert!(table.contains("REFUSED") && table.contains("slate-hostile"), "{table}");

    // So is a job whose window is refused only at its scheduled time: an AMC window that ends within
    // the 48 hours AMC's data takes to be complete.
    let mut recent = event_job("amc");
    recent["name"] = json!("amc-too-recent");
    recent["window"] = json!({"rule": "explicit", "start": "2026-11-20T00:00:00Z", "end": "2026-11-22T00:00:00Z"});
    let refusal = amzpipe::steps::refresh_token(
        &stack.services,
        json!({ "job": recent, "scheduledTime": "2026-11-23T06:00:00Z", "owner": "exec-2" }),
    )
    .await
    .expect_err("refused");
    assert_eq!(refusal.error_type(), "InvalidJob");
    let rows = json_of(&output(amzpipectl(&env), &["--json", "status", "--state", "refused"]).await);
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .any(|r| r["job"] == "amc-too-recent"
                && r["failureReason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains("48 hours"))),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_starts_one_execution_and_follows_it_to_the_stored_report() {
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let env = env_file(&p.sim, &p.aws, Some(&p.machine));
    let dir = tempfile::tempdir().expect("dir");
    let job = event_job("ads-reports");
    let file = write_job(dir.path(), &job);
    let o = output(
        amzpipectl(&env),
        &[
            "--json",
            "run",
            "--job",
            file.to_str().expect("path"),
            "--at",
            SCHEDULED,
            "--interval",
            "1",
        ],
    )
    .await;
    let result = json_of(&o);
    assert_eq!(result["failed"], json!(0), "{result}");
    let window = &result["windows"][0];
    assert_eq!(window["state"], "SUCCEEDED", "{result}");
    assert_eq!(window["windowStart"], "2026-11-22T00:00:00+00:00");
    assert!(window["run"]["bytes"].as_u64().is_some_and(|b| b > 0), "{result}");
    assert!(
        p.aws
            .objects(stack::BUCKET)
            .await
            .expect("objects")
            .iter()
            .any(|(k, _)| k.ends_with("_manifest.json"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_runs_each_window_once_and_running_it_again_skips_them() {
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let env = env_file(&p.sim, &p.aws, Some(&p.machine));
    let dir = tempfile::tempdir().expect("dir");
    let job = event_job("ads-reports");
    let file = write_job(dir.path(), &job);
    let file = file.to_str().expect("path");
    let backfill = |extra: &[&str]| {
        let mut c = amzpipectl(&env);
        c.args([
            "backfill",
            "--job",
            file,
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-03",
            "--interval",
            "1",
        ])
        .args(extra);
        c
    };
    let planned = json_of(&output(backfill(&["--json", "--dry-run"]), &[]).await);
    assert_eq!(planned.as_array().map(Vec::len), Some(3), "{planned}");
    let first = json_of(&output(backfill(&["--json", "--parallel", "2"]), &[]).await);
    let states: Vec<&str> = first["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .filter_map(|w| w["state"].as_str())
        .collect();
    assert_eq!(states, ["SUCCEEDED"; 3], "{first}");
    let ads_reports = p.sim.created_counts().1;
    assert_eq!(ads_reports, 3);
    let again = json_of(&output(backfill(&["--json"]), &[]).await);
    let states: Vec<&str> = again["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .filter_map(|w| w["state"].as_str())
        .collect();
    assert_eq!(states, ["SKIPPED"; 3], "{again}");
    assert_eq!(
        p.sim.created_counts().1,
        ads_reports,
        "no Amazon report was asked for twice"
    );
    let too_long = output(backfill(&["--window-days", "40"]), &[]).await;
    assert_refused(&too_long, 2, "at most 31 days");
    // Slate is backfilled by window too: each window stores the files published in it.
    let slate = write_job(dir.path(), &event_job("slate"));
    let mut slate_backfill = amzpipectl(&env);
    slate_backfill.args([
        "backfill",
        "--job",
        slate.to_str().expect("path"),
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-03",
        "--interval",
        "1",
        "--json",
    ]);
    let slate_runs = json_of(&output(slate_backfill, &[]).await);
    let states: Vec<&str> = slate_runs["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .filter_map(|w| w["state"].as_str())
        .collect();
    assert_eq!(states, ["SUCCEEDED"; 3], "{slate_runs}");
}

#[tokio::test]
async fn a_deployed_stack_is_found_by_its_name_through_its_outputs() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let cfn = aws_sdk_cloudformation::Client::new(&stack.aws.sdk_config().await);
    let template = json!({
        "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "JobTableName": {"Value": stack::TABLE},
            "StateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:amzpipe"},
            "CredentialsSecretPrefix": {"Value": "amzpipe/prod/"},
        }
    });
    cfn.create_stack()
        .stack_name("amzpipe-prod")
        .template_body(template.to_string())
        .send()
        .await
        .expect("stack created");
    let ads = ads_event();
    stack.run(&ads).await.expect("ads run");
    // No table in the environment: only the stack names it.
    let bare = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        bare.path(),
        format!(
            "AWS_ENDPOINT_URL={}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\n",
            stack.aws.endpoint()
        ),
    )
    .expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_amzpipectl"));
    command.env_remove("AMZPIPE_TABLE").arg("--env-file").arg(bare.path());
    let o = output(command, &["--stack", "amzpipe-prod", "--json", "status"]).await;
    let rows = json_of(&o);
    assert_eq!(rows[0]["job"], "ads-sp-campaigns-daily", "{rows}");
    let mut unknown = Command::new(env!("CARGO_BIN_EXE_amzpipectl"));
    unknown.env_remove("AMZPIPE_TABLE").arg("--env-file").arg(bare.path());
    let o = output(unknown, &["--stack", "no-such-stack", "status"]).await;
    assert_refused(&o, 1, "no-such-stack");
    drop(env);
}

#[tokio::test]
async fn a_refresh_token_rotated_while_discovering_is_stored_as_a_new_secret_version() {
    let stack = Stack::start(SimConfig {
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await
    .expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    let discover = || {
        let mut c = amzpipectl(&env);
        c.args(["discover", "slate", "--credentials", SECRET]);
        c
    };
    let first = output(discover(), &[]).await;
    assert!(first.status.success(), "{}", text(&first).1);
    let rotated = secret_of(&stack.aws, SECRET).await.refresh_token;
    assert!(rotated.starts_with("Atzr|rotated"), "{rotated}");
    // The old token is retired by the rotation; the next command works with the stored one.
    let second = output(discover(), &[]).await;
    assert!(second.status.success(), "{}", text(&second).1);
    assert_ne!(secret_of(&stack.aws, SECRET).await.refresh_token, rotated);
}

#[tokio::test]
async fn a_refused_permission_at_amazon_says_what_is_missing() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    stack.sim.set_scenario(amzpipe_testkit::sim::Scenario {
        faults: vec![amzpipe_testkit::sim::Fault {
            op: "amc.accounts".into(),
            status: 403,
            times: 1,
            retry_after: None,
            body: Some(json!({"code": "403", "details": "Not authorized to access AMC"})),
            after_effect: false,
            cut_after: None,
            tamper: false,
        }],
        ..amzpipe_testkit::sim::Scenario::default()
    });
    let mut command = amzpipectl(&env);
    command.args(["discover", "amc", "--credentials", SECRET]);
    let o = output(command, &[]).await;
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("listing AMC accounts") && stderr.contains("Not authorized to access AMC"),
        "{stderr}"
    );
    assert!(stderr.contains("missing permission"), "{stderr}");
}

#[tokio::test]
async fn status_days_shows_each_days_state_as_a_grid_and_json_with_the_cause_of_a_failed_day() {
    let stack = Stack::start(SimConfig::default()).await.expect("stack");
    let env = env_file(&stack.sim, &stack.aws, None);
    // GIVEN the Ads job's run of the day before yesterday, and its run of yesterday failed by Amazon
    let today = chrono::Utc::now().date_naive();
    let at = |days_ago: i64| format!("{}T06:00:00Z", today - chrono::Duration::days(days_ago));
    let job = event_job("ads-reports");
    stack
        .run(&json!({ "job": job, "scheduledTime": at(1) }))
        .await
        .expect("ads run");
    stack
        .sim
        .set_scenario(amzpipe_testkit::sim::Scenario::with_outcome("spCampaigns", "FAILED"));
    let _ = stack.run(&json!({ "job": job, "scheduledTime": at(0) })).await;
    // WHEN the operator asks for the last four days
    let grids = json_of(&output(amzpipectl(&env), &["--json", "status", "--days", "4"]).await);
    // THEN the table and account have a day each, the pulled one provisional, the failed one failed
    // with Amazon's failure as its cause, the others missing
    let grid = &grids[0];
    assert_eq!(grid["table"], "ads_reports_spcampaigns", "{grids:#}");
    assert_eq!(grid["account"], "1234567890");
    let states: Vec<(&str, &str)> = grid["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| (d["status"].as_str().unwrap_or(""), d["cause"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        states,
        [
            ("missing", "never_pulled"),
            ("missing", "never_pulled"),
            ("provisional", ""),
            ("failed", "amazon_fatal")
        ],
        "{grids:#}"
    );
    let o = output(
        amzpipectl(&env),
        &["status", "--days", "4", "--job", "ads-sp-campaigns-daily"],
    )
    .await;
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("ads-sp-campaigns-daily ads_reports_spcampaigns 1234567890  ..pX"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed  amazon_fatal: Amazon failed the report"),
        "{stdout}"
    );
    assert!(!stdout.contains("\x1b["), "no colours when not on a terminal: {stdout}");
}
