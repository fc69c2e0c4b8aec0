//! Where the command line finds the deployment and the Amazon APIs: flags, the environment, an env
//! file (the local stack writes one), and the CloudFormation stack's outputs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use amzpipe::adapters::api::{Policy, api_http_client};
use amzpipe::adapters::dynamo::{DEFAULT_RUN_TTL_DAYS, DynamoJobStore};
use amzpipe::adapters::secrets::SecretsManagerStore;
use amzpipe::domain::credentials::TokenHost;
use amzpipe::steps::{Clients, Endpoints, NoSharedCache, Sessions};
use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

use crate::error::{CliError, CliResult, aws_error};

/// Settings by name: an env file's values first (it was asked for explicitly), then the process
/// environment. Empty values count as unset.
#[derive(Debug, Default, Clone)]
pub struct Env {
    file: HashMap<String, String>,
}

impl Env {
    /// The process environment, overlaid with `file` (`KEY=VALUE` lines, `#` comments) when given.
    pub fn load(file: Option<&Path>) -> CliResult<Self> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::usage(format!("cannot read the env file {}: {e}", path.display())).hint(
                "the local stack writes target/local/stack.env (`cargo run -p amzpipe-testkit --bin local-stack`)",
            )
        })?;
        let mut values = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                return Err(CliError::usage(format!(
                    "{}:{}: expected KEY=VALUE",
                    path.display(),
                    n + 1
                )));
            };
            values.insert(key.trim().to_owned(), value.trim().trim_matches('"').to_owned());
        }
        Ok(Self { file: values })
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        self.file
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
    }

    /// The Amazon endpoints: Amazon's own unless overridden (`AMZPIPE_LWA_URL`, `AMZPIPE_SP_API_URL`,
    /// `AMZPIPE_ADS_API_URL`, `AMZPIPE_SLATE_URL`: a sandbox or the simulator).
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            lwa: self.get("AMZPIPE_LWA_URL"),
            sp_api: self.get("AMZPIPE_SP_API_URL"),
            ads_api: self.get("AMZPIPE_ADS_API_URL"),
            slate: self.get("AMZPIPE_SLATE_URL"),
        }
    }
}

/// Names given on the command line; each falls back to the environment, then to the stack.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// `--stack`.
    pub stack: Option<String>,
    /// `--table`.
    pub table: Option<String>,
    /// `--state-machine`.
    pub state_machine: Option<String>,
}

/// The deployment and the clients of one command.
pub struct Context {
    /// Settings by name.
    pub env: Env,
    /// Print JSON instead of tables.
    pub json: bool,
    names: Names,
    sdk: OnceCell<SdkConfig>,
    outputs: OnceCell<HashMap<String, String>>,
    /// The credential sets in use, kept so that a refresh token LWA rotates is stored before exiting.
    /// The command line does not share access tokens through the job table.
    sessions: OnceCell<Sessions<SecretsManagerStore, NoSharedCache>>,
}

impl Context {
    /// A context over `env` and the names given.
    pub fn new(env: Env, names: Names, json: bool) -> Self {
        Self {
            env,
            json,
            names,
            sdk: OnceCell::new(),
            outputs: OnceCell::new(),
            sessions: OnceCell::new(),
        }
    }

    /// The AWS SDK configuration: the usual chain (profile, SSO, instance role…), with `AWS_REGION`,
    /// `AWS_ENDPOINT_URL` and static keys taken from the env file when it sets them.
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(url) = self.env.get("AWS_ENDPOINT_URL") {
                    loader = loader.endpoint_url(url);
                }
                if let Some(region) = self
                    .env
                    .get("AWS_REGION")
                    .or_else(|| self.env.get("AWS_DEFAULT_REGION"))
                {
                    loader = loader.region(aws_config::Region::new(region));
                }
                if let (Some(key), Some(secret)) =
                    (self.env.get("AWS_ACCESS_KEY_ID"), self.env.get("AWS_SECRET_ACCESS_KEY"))
                {
                    loader = loader.credentials_provider(aws_sdk_sfn::config::Credentials::new(
                        key,
                        secret,
                        self.env.get("AWS_SESSION_TOKEN"),
                        None,
                        "amzpipectl",
                    ));
                }
                loader.load().await
            })
            .await
    }

    fn stack_name(&self) -> Option<String> {
        self.names.stack.clone().or_else(|| self.env.get("AMZPIPE_STACK"))
    }

    /// The stack's outputs (empty without a stack).
    async fn outputs(&self) -> CliResult<&HashMap<String, String>> {
        self.outputs
            .get_or_try_init(|| async {
                let Some(stack) = self.stack_name() else {
                    return Ok(HashMap::new());
                };
                let client = aws_sdk_cloudformation::Client::new(self.sdk().await);
                let described = client
                    .describe_stacks()
                    .stack_name(&stack)
                    .send()
                    .await
                    .map_err(|e| aws_error(&format!("reading the outputs of stack {stack}"), &e))?;
                let outputs = described
                    .stacks()
                    .first()
                    .map(|s| {
                        s.outputs()
                            .iter()
                            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(outputs)
            })
            .await
    }

    /// A deployment name: the flag, else the variable, else the stack output; an error saying all
    /// three when none is set.
    async fn name(
        &self,
        flag: Option<&String>,
        variable: &str,
        output: &str,
        what: &str,
        option: &str,
    ) -> CliResult<String> {
        if let Some(v) = flag.cloned().or_else(|| self.env.get(variable)) {
            return Ok(v);
        }
        if let Some(v) = self.outputs().await?.get(output) {
            return Ok(v.clone());
        }
        let mut error = CliError::usage(format!("which {what}? none was given")).hint(format!(
            "pass --stack <stack name> (its {output} output), {option}, or set {variable}"
        ));
        if let Some(stack) = self.stack_name() {
            error = CliError::usage(format!("stack {stack} has no {output} output"))
                .hint(format!("pass {option} or set {variable}"));
        }
        Err(error)
    }

    /// The job table.
    pub async fn table(&self) -> CliResult<String> {
        self.name(
            self.names.table.as_ref(),
            "AMZPIPE_TABLE",
            "JobTableName",
            "job table",
            "--table <name>",
        )
        .await
    }

    /// The state machine's ARN.
    pub async fn state_machine(&self) -> CliResult<String> {
        self.name(
            self.names.state_machine.as_ref(),
            "AMZPIPE_STATE_MACHINE_ARN",
            "StateMachineArn",
            "state machine",
            "--state-machine <arn>",
        )
        .await
    }

    /// The prefix the functions may read secrets under (`amzpipe/<stack>/`), when known.
    pub async fn secret_prefix(&self) -> Option<String> {
        if let Some(prefix) = self.env.get("AMZPIPE_CREDENTIALS_PREFIX") {
            return Some(prefix);
        }
        self.outputs().await.ok()?.get("CredentialsSecretPrefix").cloned()
    }

    /// The job table's adapter.
    pub async fn store(&self) -> CliResult<DynamoJobStore> {
        let table = self.table().await?;
        Ok(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(self.sdk().await),
            table,
            DEFAULT_RUN_TTL_DAYS,
        ))
    }

    /// Secrets Manager.
    pub async fn secrets(&self) -> SecretsManagerStore {
        SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(self.sdk().await))
    }

    /// Step Functions.
    pub async fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(self.sdk().await)
    }

    /// An HTTP client for the Amazon APIs.
    pub fn http(&self) -> CliResult<reqwest::Client> {
        api_http_client(&Policy::default()).map_err(|e| CliError::failed(e.to_string()))
    }

    /// The credential sessions of this command.
    async fn sessions(&self) -> CliResult<&Sessions<SecretsManagerStore, NoSharedCache>> {
        self.sessions
            .get_or_try_init(|| async {
                Ok(Sessions::new(
                    self.secrets().await,
                    NoSharedCache,
                    self.http()?,
                    self.env.endpoints().lwa,
                ))
            })
            .await
    }

    /// The Amazon API clients of the credential set stored in `secret_id`, its tokens refreshed at `host`
    /// unless the credential set names its endpoint. Call [`Context::store_rotations`] before exiting.
    pub async fn clients(&self, secret_id: &str, host: TokenHost) -> CliResult<Clients> {
        let session = self.sessions().await?.session(secret_id, host).await?;
        Ok(Clients::new(
            self.http()?,
            Arc::clone(&session.lwa),
            session.region(),
            self.env.endpoints(),
            Policy::default(),
        ))
    }

    /// Stores the refresh tokens LWA rotated while this command ran, as new secret versions, as the
    /// functions do: the old token may stop working, and losing the new one would lose access.
    pub async fn store_rotations(&self) -> CliResult<()> {
        let Some(sessions) = self.sessions.get() else {
            return Ok(());
        };
        sessions
            .persist_all()
            .await
            .map_err(|e| CliError::from(e).context("storing the refresh token Login with Amazon rotated"))
    }
}
