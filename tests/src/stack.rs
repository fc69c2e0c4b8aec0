//! The pipeline's whole backing on this machine: the Amazon API simulator, a local AWS (moto) with the
//! job table, the output bucket and a credentials secret created as the SAM template creates them, and
//! the steps' [`AwsServices`] wired to both — what the Lambda functions get in AWS.

use std::time::Duration;

use amzpipe::adapters::api::Policy;
use amzpipe::adapters::dynamo::create_table;
use amzpipe::steps::{
    AwsServices, CreateOutcome, Deadline, DownloadOutput, Endpoints, PollState, Settings, StepError, create_request,
    download_decrypt, poll_status, refresh_token,
};

use crate::lambda_host::FunctionHost;
use crate::moto::{LocalAws, free_port};
use crate::sfn::{Functions, LambdaRouter, StepFunctions, local_definition};
use crate::sim::{SimConfig, Simulator};

/// The job table's name locally.
pub const TABLE: &str = "amzpipe-jobs";
/// The output bucket's name locally.
pub const BUCKET: &str = "amzpipe-data";
/// The credentials secret's name locally.
pub const SECRET: &str = "amzpipe/local";
/// The alias of the KMS key access tokens are sealed under locally.
pub const TOKEN_KEY: &str = "alias/amzpipe-tokens";
/// The client secret stored in it (tests look for it in outputs and logs).
pub const CLIENT_SECRET: &str = "sim-client-secret-7f3a";
/// The refresh token stored in it.
pub const REFRESH_TOKEN: &str = "Atzr|sim-refresh-token-stack";
/// The stack name the local state machine is named after.
pub const STACK: &str = "local";
/// The state machine's name locally, as the template names it (`${AWS::StackName}-pipeline`).
pub const STATE_MACHINE: &str = "local-pipeline";
/// The Glue database the runs' tables are registered in locally.
pub const GLUE_DATABASE: &str = "amzpipe_local";

/// The local state machine's ARN (known before it is created, as the template's `!Sub` knows it).
pub fn state_machine_arn() -> String {
    format!(
        "arn:aws:states:{}:{}:stateMachine:{STATE_MACHINE}",
        crate::moto::REGION,
        crate::sfn::ACCOUNT
    )
}

/// The services the tests' functions get over `config` and `settings`: Amazon's retries, with quick
/// backoff.
fn test_services(config: &aws_config::SdkConfig, settings: Settings) -> Result<AwsServices, StepError> {
    let mut services = AwsServices::from_sdk_config(config, settings)?;
    services.policy = Policy {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_inline_wait: Duration::from_secs(2),
        allow_loopback_http: true,
        ..Policy::default()
    };
    Ok(services)
}

/// The access key a function's AWS calls are signed with in [`Pipeline::as_deployed`]
/// (`AKIDREFRESHTOKEN` for `refresh-token`).
pub fn function_access_key(function: &str) -> String {
    format!("AKID{}", function.replace('-', "").to_uppercase())
}

/// Simulator + local AWS + services.
pub struct Stack {
    /// The Amazon API simulator.
    pub sim: Simulator,
    /// The local AWS.
    pub aws: LocalAws,
    /// What the functions use.
    pub services: AwsServices,
}

/// Writes `jobs` as the jobs file `_amzpipe/jobs/{name}.json` in the bucket; returns the `jobsFile`
/// an execution's input names it by.
pub async fn put_jobs_file(
    aws: &LocalAws,
    name: &str,
    jobs: &[serde_json::Value],
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let key = format!("_amzpipe/jobs/{name}.json");
    aws.put_object(BUCKET, &key, serde_json::to_vec(jobs)?).await?;
    Ok(serde_json::json!({ "bucket": BUCKET, "key": key }))
}

/// The settings the functions get, pointed at the simulator.
pub fn settings(sim: &Simulator) -> Settings {
    Settings {
        table: TABLE.into(),
        bucket: BUCKET.into(),
        kms_key_id: None,
        token_key_id: Some(TOKEN_KEY.into()),
        endpoints: Endpoints {
            lwa: Some(sim.token_url()),
            sp_api: Some(sim.base_url().to_owned()),
            ads_api: Some(sim.base_url().to_owned()),
            slate: Some(sim.slate_url()),
        },
        max_wait: Duration::from_secs(1),
        run_ttl_days: 90,
        deadline_margin: Duration::ZERO,
        // The local definition's 900 s timeout is shorter than the finish reserve: only maxPolls bounds.
        execution_timeout: None,
        // refresh-token starts the schedules' firings on the local state machine.
        state_machine_arn: Some(state_machine_arn()),
        glue_database: Some(GLUE_DATABASE.into()),
        // The simulator serves its documents over plain http on loopback.
        allow_loopback_http: true,
    }
}

/// The local stack's environment, as the functions read it: the settings of [`settings`] as the
/// variables the functions read, the SDK pointed at `aws`, the consent page of the simulator and, when
/// there is one, the state machine.
pub fn stack_env(sim: &Simulator, aws: &LocalAws, state_machine: Option<&str>) -> Vec<(String, String)> {
    let settings = settings(sim);
    let endpoint = |value: Option<String>| value.unwrap_or_default();
    let mut env = vec![
        ("AMZPIPE_TABLE", settings.table),
        ("AMZPIPE_BUCKET", settings.bucket),
        ("AMZPIPE_LWA_URL", endpoint(settings.endpoints.lwa)),
        ("AMZPIPE_LWA_CONSENT_URL", sim.consent_url()),
        ("AMZPIPE_SP_API_URL", endpoint(settings.endpoints.sp_api)),
        ("AMZPIPE_ADS_API_URL", endpoint(settings.endpoints.ads_api)),
        ("AMZPIPE_SLATE_URL", endpoint(settings.endpoints.slate)),
        ("AMZPIPE_MAX_WAIT_SECONDS", settings.max_wait.as_secs().to_string()),
        ("AMZPIPE_ALLOW_LOOPBACK_HTTP", settings.allow_loopback_http.to_string()),
        ("AMZPIPE_TOKEN_KEY_ID", settings.token_key_id.unwrap_or_default()),
        ("AMZPIPE_GLUE_DATABASE", settings.glue_database.unwrap_or_default()),
        ("AWS_ENDPOINT_URL", aws.endpoint().to_owned()),
        ("AWS_REGION", crate::moto::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ];
    if let Some(arn) = state_machine {
        env.push(("AMZPIPE_STATE_MACHINE_ARN", arn.to_owned()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Writes [`stack_env`] to `path` (as `cargo lambda watch --env-file` and `amzpipectl --env-file` read
/// it).
pub fn write_stack_env(
    path: &std::path::Path,
    sim: &Simulator,
    aws: &LocalAws,
    state_machine: Option<&str>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let env = stack_env(sim, aws, state_machine);
    std::fs::write(path, env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())
}

/// The job of the sample event `events/{name}.json`, its credentials the local secret [`SECRET`].
///
/// # Panics
/// When the sample is missing or not JSON (a broken checkout).
pub fn event_job(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{name}.json"));
    let event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("a sample event")).expect("a JSON event");
    let mut job = event["job"].clone();
    job["credentials"] = serde_json::json!(SECRET);
    job
}

/// Whether `key` is one of the records the pipeline keeps beside a run's data, under the output
/// prefix: a day's current pointer (`_current/`, see `amzpipe::steps::current`), a day's status
/// (`_day_status/`) or a run's pulls (`_pulls/`, see `amzpipe::steps::days`). Manifests are not.
pub fn is_day_record(key: &str) -> bool {
    ["/_current/", "/_day_status/", "/_pulls/"]
        .iter()
        .any(|folder| key.contains(folder))
}

/// The secret's JSON value.
pub fn secret_value(region: &str) -> String {
    serde_json::json!({
        "clientId": "amzn1.application-oa2-client.local",
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
        "region": region,
    })
    .to_string()
}

/// Creates the table, the bucket, the credentials secret, the token key (with its alias
/// [`TOKEN_KEY`]) and the Glue database [`GLUE_DATABASE`] in a local AWS.
pub async fn provision(aws: &LocalAws) -> Result<(), Box<dyn std::error::Error>> {
    let config = aws.sdk_config().await;
    aws_sdk_glue::Client::new(&config)
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(GLUE_DATABASE)
                .description("amzpipe: a table per source and report")
                .build()?,
        )
        .send()
        .await?;
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms
        .create_key()
        .description("amzpipe: seals the access tokens shared through the job table")
        .send()
        .await?;
    let key_id = key.key_metadata().map(|m| m.key_id().to_owned()).unwrap_or_default();
    kms.create_alias()
        .alias_name(TOKEN_KEY)
        .target_key_id(key_id)
        .send()
        .await?;
    create_table(&aws_sdk_dynamodb::Client::new(&config), TABLE).await?;
    aws.s3().await.create_bucket().bucket(BUCKET).send().await?;
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(SECRET)
        .secret_string(secret_value("na"))
        .send()
        .await?;
    Ok(())
}

impl Stack {
    /// Starts everything with the simulator configured by `config`.
    pub async fn start(config: SimConfig) -> Result<Self, Box<dyn std::error::Error>> {
        let sim = Simulator::start(config).await?;
        let aws = LocalAws::start().await?;
        provision(&aws).await?;
        let services = Self::services_for(&sim, &aws).await?;
        Ok(Self { sim, aws, services })
    }

    /// Fresh services over the same simulator and AWS: a new Lambda container (cold start).
    pub async fn cold_services(&self) -> Result<AwsServices, StepError> {
        Self::services_for(&self.sim, &self.aws).await
    }

    /// The services the functions get over `sim` and `aws`, with quick client retries.
    pub async fn services_for(sim: &Simulator, aws: &LocalAws) -> Result<AwsServices, StepError> {
        test_services(&aws.sdk_config().await, settings(sim))
    }

    /// Runs an event through every step as the state machine would (waits skipped): refresh-token,
    /// create-request (again while throttled), poll-status until done, download-decrypt.
    pub async fn run(&self, event: &serde_json::Value) -> Result<Option<DownloadOutput>, StepError> {
        let s = &self.services;
        refresh_token(s, event.clone()).await?;
        let mut created = create_request(s, event.clone()).await?;
        for _ in 0..20 {
            if created.outcome != CreateOutcome::Throttled {
                break;
            }
            created = create_request(s, event.clone()).await?;
        }
        if created.outcome == CreateOutcome::Done {
            return download_decrypt(s, event.clone(), Deadline::none()).await.map(Some);
        }
        for _ in 0..50 {
            let polled = poll_status(s, event.clone()).await?;
            match polled.state {
                PollState::InProgress => continue,
                PollState::NoData => return Ok(None),
                PollState::Ready => return download_decrypt(s, event.clone(), Deadline::none()).await.map(Some),
            }
        }
        Err(StepError::SourceFailed("the request never finished".into()))
    }
}

/// Who answers the state machine's Lambda tasks in a [`Pipeline`].
pub enum Answer {
    /// The steps, in this process (tests).
    InProcess,
    /// A local Lambda emulator at this base URL (`cargo lambda watch`).
    Remote(String),
    /// The real function binaries in `dir` (as `cargo build` left them), each behind a Lambda Runtime
    /// API served here ([`FunctionHost`]), their logs appended to `log`.
    Binaries {
        /// Where the binaries are.
        dir: std::path::PathBuf,
        /// Their JSON logs.
        log: std::path::PathBuf,
    },
}

/// The simulator, a local AWS whose Step Functions interpreter runs the real definition file, and the
/// Invoke-API router that gives its Lambda tasks the real steps.
pub struct Pipeline {
    /// The Amazon API simulator.
    pub sim: Simulator,
    /// The local AWS.
    pub aws: LocalAws,
    /// The functions' services (shared with the router).
    pub services: std::sync::Arc<AwsServices>,
    /// The router in front of moto.
    pub router: LambdaRouter,
    /// Step Functions.
    pub sfn: StepFunctions,
    /// The state machine's ARN.
    pub machine: String,
    /// The function binaries, when they answer the Lambda tasks.
    pub host: Option<std::sync::Arc<FunctionHost>>,
}

impl Pipeline {
    /// Starts everything and creates the state machine from `infra/statemachine/pipeline.asl.json`,
    /// its Lambda tasks answered by the steps in this process, retry intervals cut to 1 s.
    pub async fn start(config: SimConfig, max_concurrency: u32) -> Result<Self, Box<dyn std::error::Error>> {
        Self::around(Simulator::start(config).await?, max_concurrency, Answer::InProcess).await
    }

    /// Everything around a running simulator, the Lambda tasks answered as `answer` says.
    pub async fn around(
        sim: Simulator,
        max_concurrency: u32,
        answer: Answer,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let (router_port, aws) = Self::provisioned_aws().await?;
        let services = std::sync::Arc::new(Stack::services_for(&sim, &aws).await?);
        let functions = match answer {
            Answer::InProcess => Functions::InProcess(std::sync::Arc::clone(&services)),
            Answer::Remote(url) => Functions::Remote(url),
            Answer::Binaries { dir, log } => {
                let env = stack_env(&sim, &aws, Some(&state_machine_arn()));
                let timeout = Duration::from_secs(900);
                let host = FunctionHost::start(&dir, &crate::sfn::FUNCTIONS, &env, &log, timeout).await?;
                Functions::Hosted(std::sync::Arc::new(host))
            }
        };
        Self::assemble(sim, aws, router_port, services, functions, max_concurrency).await
    }

    /// The pipeline as deployed, for checking who may do what: each function has services of its own
    /// whose AWS calls are signed with [`function_access_key`] (so a recording tells them apart, as
    /// each function's role would), with the settings `customize` gives them (a customer KMS key…)
    /// once the local AWS is up.
    pub async fn as_deployed(
        config: SimConfig,
        customize: impl AsyncFnOnce(&LocalAws, &mut Settings) -> Result<(), Box<dyn std::error::Error>>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let sim = Simulator::start(config).await?;
        let (router_port, aws) = Self::provisioned_aws().await?;
        let mut settings = settings(&sim);
        customize(&aws, &mut settings).await?;
        let mut by_function = std::collections::HashMap::new();
        for function in crate::sfn::FUNCTIONS {
            let config = aws.sdk_config_as(&function_access_key(function)).await;
            let services = test_services(&config, settings.clone())?;
            by_function.insert(function.to_owned(), std::sync::Arc::new(services));
        }
        let services = std::sync::Arc::clone(&by_function["refresh-token"]);
        Self::assemble(sim, aws, router_port, services, Functions::PerFunction(by_function), 4).await
    }

    /// A local AWS whose Step Functions interpreter runs executions and calls back to the returned port
    /// (where the router will listen), provisioned as the template provisions the stack.
    async fn provisioned_aws() -> Result<(u16, LocalAws), Box<dyn std::error::Error>> {
        let router_port = free_port()?;
        let aws = LocalAws::start_with_callback_port(Some(router_port)).await?;
        aws.enable_state_machines().await?;
        provision(&aws).await?;
        Ok((router_port, aws))
    }

    async fn assemble(
        sim: Simulator,
        aws: LocalAws,
        router_port: u16,
        services: std::sync::Arc<AwsServices>,
        functions: Functions,
        max_concurrency: u32,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let host = match &functions {
            Functions::Hosted(host) => Some(std::sync::Arc::clone(host)),
            _ => None,
        };
        let router = LambdaRouter::start(router_port, aws.endpoint(), functions).await?;
        let sfn = StepFunctions::new(aws.endpoint());
        let machine = sfn
            .create(STATE_MACHINE, &local_definition(TABLE, max_concurrency, true)?)
            .await?;
        Ok(Self {
            sim,
            aws,
            services,
            router,
            sfn,
            machine,
            host,
        })
    }

    /// Replaces the state machine with the definition's own `Retry` intervals (the tests cut them to a
    /// second) and the template's default execution timeout (a day): for runs that must wait as
    /// deployed, such as the load benchmark's.
    pub async fn with_deployed_retries(mut self, max_concurrency: u32) -> Result<Self, Box<dyn std::error::Error>> {
        let mut definition: serde_json::Value =
            serde_json::from_str(&local_definition(TABLE, max_concurrency, false)?)?;
        definition["TimeoutSeconds"] = serde_json::json!(86_400);
        self.machine = self
            .sfn
            .create("amzpipe-pipeline-deployed-retries", &definition.to_string())
            .await?;
        Ok(self)
    }

    /// Runs `sql` with the local SQL engine over the Glue database's tables, read from the catalog
    /// alone as Athena reads them (`tests/sql/athena_local.py`).
    pub fn query(&self, sql: &[&str]) -> Vec<crate::sql::Answer> {
        crate::sql::query(self.aws.endpoint(), GLUE_DATABASE, sql).expect("the SQL engine")
    }

    /// Every run's manifest in the bucket (the state machine's own objects left out).
    pub async fn manifests(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for (key, _) in self.aws.objects(BUCKET).await.expect("objects") {
            if key.ends_with("/_manifest.json")
                && !key.starts_with(crate::sfn::MAP_RUN_RESULTS)
                && !key.starts_with(crate::sfn::STAGED_JOBS)
            {
                let bytes = self.aws.object_bytes(BUCKET, &key).await.expect("manifest");
                out.push(serde_json::from_slice(&bytes).expect("a manifest"));
            }
        }
        out
    }

    /// Runs one execution of `jobs` for `scheduled_time` to its end (at most five minutes).
    pub async fn execute(
        &self,
        name: &str,
        scheduled_time: &str,
        jobs: &[serde_json::Value],
    ) -> Result<crate::sfn::Execution, String> {
        let input = serde_json::json!({ "scheduledTime": scheduled_time, "jobs": jobs });
        self.execute_input(name, &input, Duration::from_secs(300)).await
    }

    /// Runs one execution of the state machine on `input` (jobs inline or a `jobsFile`), waiting at
    /// most `limit`.
    pub async fn execute_input(
        &self,
        name: &str,
        input: &serde_json::Value,
        limit: Duration,
    ) -> Result<crate::sfn::Execution, String> {
        self.sfn.run(&self.machine, name, input, limit).await
    }
}
