//! What every step needs, built once per Lambda container: configuration, the AWS adapters, HTTP
//! clients, the credential sessions kept warm between invocations, and the binding of a job to the
//! API client that serves its source.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::ads_reports::{self, AdsReportsClient};
use crate::adapters::amc::AmcClient;
use crate::adapters::api::{ApiClient, AuthStyle, Policy, SharedQuota, api_http_client};
use crate::adapters::dynamo::{DEFAULT_RUN_TTL_DAYS, DynamoJobStore};
use crate::adapters::glue::GlueCatalog;
use crate::adapters::kms::TokenSealer;
use crate::adapters::lwa::{LwaSession, token_endpoint};
use crate::adapters::s3::{Encryption, S3Sink};
use crate::adapters::secrets::SecretsManagerStore;
use crate::adapters::sellers::SellersClient;
use crate::adapters::sfn::StepFunctionsExecutions;
use crate::adapters::slate::{self, SlateClient};
use crate::adapters::sp_reports::{self, SpReportsClient};
use crate::domain::Region;
use crate::domain::credentials::TokenHost;
use crate::domain::job::{Job, SourceSpec};
use crate::ports::{Catalog, Executions, JobStore, ObjectSink, Quotas, SecretStore, TokenCache};
use crate::steps::StepError;
use crate::steps::quota::TableQuota;
use crate::steps::sessions::{Session, Sessions};
use crate::steps::source::BoundSource;

/// Endpoint overrides (the simulator, a sandbox); `None` means Amazon's endpoint for the region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Login with Amazon token endpoint (`AMZPIPE_LWA_URL`).
    pub lwa: Option<String>,
    /// SP-API base URL (`AMZPIPE_SP_API_URL`).
    pub sp_api: Option<String>,
    /// Ads API base URL, also AMC's (`AMZPIPE_ADS_API_URL`).
    pub ads_api: Option<String>,
    /// Slate base URL (`AMZPIPE_SLATE_URL`).
    pub slate: Option<String>,
}

impl Endpoints {
    /// The LWA token endpoint for credentials of `region` refreshed at `host`: the override, or Amazon's.
    pub fn lwa_for(&self, region: Region, host: TokenHost) -> String {
        self.lwa
            .clone()
            .unwrap_or_else(|| token_endpoint(region, host).to_owned())
    }
}

/// The Amazon API clients of one credential set in its region, over one LWA session: what a job is
/// bound to, and what the operator's tool lists accounts with.
#[derive(Clone)]
pub struct Clients {
    http: reqwest::Client,
    lwa: Arc<LwaSession>,
    region: Region,
    endpoints: Endpoints,
    policy: Policy,
    sp_quota: Option<Arc<dyn SharedQuota>>,
}

impl Clients {
    /// The clients of `lwa`'s credential set in `region`, at `endpoints` (Amazon's where `None`).
    /// `http` is an API client from [`api_http_client`].
    pub fn new(
        http: reqwest::Client,
        lwa: Arc<LwaSession>,
        region: Region,
        endpoints: Endpoints,
        policy: Policy,
    ) -> Self {
        Self {
            http,
            lwa,
            region,
            endpoints,
            policy,
            sp_quota: None,
        }
    }

    /// Charges the SP-API clients' attempts to `quota`, shared with every other process of the
    /// credential set (see [`SharedQuota`]).
    pub fn with_sp_quota(mut self, quota: Arc<dyn SharedQuota>) -> Self {
        self.sp_quota = Some(quota);
        self
    }

    fn api(&self, auth: AuthStyle) -> ApiClient {
        ApiClient::new(self.http.clone(), Arc::clone(&self.lwa), auth, self.policy.clone())
    }

    fn sp_api(&self) -> ApiClient {
        let api = self.api(AuthStyle::AmzAccessToken);
        match &self.sp_quota {
            Some(quota) => api.with_shared_quota(Arc::clone(quota)),
            None => api,
        }
    }

    fn sp_base(&self) -> String {
        self.endpoints
            .sp_api
            .clone()
            .unwrap_or_else(|| sp_reports::endpoint(self.region, false))
    }

    fn ads_base(&self) -> String {
        self.endpoints
            .ads_api
            .clone()
            .unwrap_or_else(|| ads_reports::endpoint(self.region).to_owned())
    }

    /// SP-API Reports.
    pub fn sp_reports(&self) -> SpReportsClient {
        SpReportsClient::new(self.sp_api(), self.sp_base())
    }

    /// SP-API Sellers (marketplace participations).
    pub fn sellers(&self) -> SellersClient {
        SellersClient::new(self.sp_api(), self.sp_base())
    }

    /// Ads reporting v3 and profiles.
    pub fn ads(&self) -> AdsReportsClient {
        AdsReportsClient::new(self.api(AuthStyle::Bearer), self.ads_base())
    }

    /// Amazon Marketing Cloud (on the Ads host).
    pub fn amc(&self) -> AmcClient {
        AmcClient::new(self.api(AuthStyle::Bearer), self.ads_base())
    }

    /// Prime Video Slate.
    pub fn slate(&self) -> SlateClient {
        let base = self
            .endpoints
            .slate
            .clone()
            .unwrap_or_else(|| slate::DEFAULT_BASE_URL.to_owned());
        SlateClient::new(self.api(AuthStyle::Bearer), base)
    }
}

/// Configuration of the functions, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The job table (`AMZPIPE_TABLE`, required).
    pub table: String,
    /// The output bucket (`AMZPIPE_BUCKET`, required).
    pub bucket: String,
    /// SSE-KMS key for the objects written (`AMZPIPE_KMS_KEY_ID`); the bucket default otherwise.
    pub kms_key_id: Option<String>,
    /// The KMS key access tokens are sealed under when the functions share them through the job table
    /// (`AMZPIPE_TOKEN_KEY_ID`); without it no token is shared (each container refreshes its own).
    pub token_key_id: Option<String>,
    /// Endpoint overrides.
    pub endpoints: Endpoints,
    /// Longest wait any step asks the state machine for (`AMZPIPE_MAX_WAIT_SECONDS`, default 900;
    /// local runs set 1).
    pub max_wait: Duration,
    /// Days finished runs are kept (`AMZPIPE_RUN_TTL_DAYS`, default 90).
    pub run_ttl_days: u32,
    /// Time kept back from the Lambda deadline to record progress and return
    /// (`AMZPIPE_DEADLINE_MARGIN_SECONDS`, default 30; at most a quarter of the invocation's time).
    pub deadline_margin: Duration,
    /// The state machine's execution timeout (`AMZPIPE_EXECUTION_TIMEOUT_SECONDS`, the template's
    /// `ExecutionTimeoutSeconds`): no run keeps polling past it ([`RunContext::execution_deadline`]).
    /// Unset, only the job's `limits.maxPolls` bounds the polling.
    pub execution_timeout: Option<Duration>,
    /// The state machine the schedules' firings start executions of (`AMZPIPE_STATE_MACHINE_ARN`; set
    /// on refresh-token only, see [`crate::steps::start_scheduled_execution`]).
    pub state_machine_arn: Option<String>,
    /// The Glue database each run's table is registered in (`AMZPIPE_GLUE_DATABASE`; set on
    /// download-decrypt). Unset, no table is registered.
    pub glue_database: Option<String>,
    /// Whether document URLs may be plain `http` to a loopback host (`AMZPIPE_ALLOW_LOOPBACK_HTTP=true`;
    /// the local stack and the demo set it, the template never does).
    pub allow_loopback_http: bool,
}

impl Settings {
    /// Reads the settings from environment variables; one error names every missing or bad variable.
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let mut problems = Vec::new();
        let mut required = |name: &str| match lookup(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => v,
            None => {
                problems.push(format!("{name} is not set"));
                String::new()
            }
        };
        let table = required("AMZPIPE_TABLE");
        let bucket = required("AMZPIPE_BUCKET");
        let optional = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut number = |name: &str, default: u64| match optional(name).map(|v| v.parse::<u64>()) {
            None => default,
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                problems.push(format!("{name} is not a whole number"));
                default
            }
        };
        let max_wait = Duration::from_secs(number("AMZPIPE_MAX_WAIT_SECONDS", 900).max(1));
        let run_ttl_days = number("AMZPIPE_RUN_TTL_DAYS", u64::from(DEFAULT_RUN_TTL_DAYS)) as u32;
        let deadline_margin = Duration::from_secs(number("AMZPIPE_DEADLINE_MARGIN_SECONDS", 30));
        let execution_timeout = match number("AMZPIPE_EXECUTION_TIMEOUT_SECONDS", 0) {
            0 => None,
            seconds => Some(Duration::from_secs(seconds)),
        };
        if !problems.is_empty() {
            return Err(StepError::Misconfigured(format!(
                "the function's configuration is incomplete: {}",
                problems.join("; ")
            )));
        }
        Ok(Self {
            table,
            bucket,
            kms_key_id: optional("AMZPIPE_KMS_KEY_ID"),
            token_key_id: optional("AMZPIPE_TOKEN_KEY_ID"),
            endpoints: Endpoints {
                lwa: optional("AMZPIPE_LWA_URL"),
                sp_api: optional("AMZPIPE_SP_API_URL"),
                ads_api: optional("AMZPIPE_ADS_API_URL"),
                slate: optional("AMZPIPE_SLATE_URL"),
            },
            max_wait,
            run_ttl_days,
            deadline_margin,
            execution_timeout,
            state_machine_arn: optional("AMZPIPE_STATE_MACHINE_ARN"),
            allow_loopback_http: optional("AMZPIPE_ALLOW_LOOPBACK_HTTP").is_some_and(|v| v.trim() == "true"),
            glue_database: optional("AMZPIPE_GLUE_DATABASE"),
        })
    }
}

/// The ports the steps use, as one bound: the job table (runs, quotas, the shared token cache), the
/// secret store, the object sink and the state machine's executions. [`Aws`] is the production set.
pub trait Ports: Send + Sync + 'static {
    /// Runs, watermarks, quotas and the shared token cache (cloned into the sessions' cache).
    type Store: JobStore + Quotas + TokenCache + Clone;
    /// Credential sets.
    type Secrets: SecretStore;
    /// The output bucket.
    type Sink: ObjectSink;
    /// The state machine, for the starts of scheduled executions.
    type Executions: Executions;
    /// The data catalog the runs' tables are registered in.
    type Catalog: Catalog;
}

/// The production ports: DynamoDB, Secrets Manager, S3, Step Functions.
pub struct Aws;

impl Ports for Aws {
    type Store = DynamoJobStore;
    type Secrets = SecretsManagerStore;
    type Sink = S3Sink;
    type Executions = StepFunctionsExecutions;
    type Catalog = GlueCatalog;
}

/// Everything the steps use, over the ports `P`.
pub struct Services<P: Ports> {
    /// Runs, watermarks, quotas, and the shared token cache.
    pub store: P::Store,
    /// The credential sessions (over the secret store and the shared token cache).
    pub sessions: Sessions<P::Secrets, P::Store>,
    /// The output bucket.
    pub sink: P::Sink,
    /// The state machine, when this function starts scheduled executions
    /// ([`Settings::state_machine_arn`]).
    pub executions: Option<P::Executions>,
    /// The data catalog, when this function registers tables ([`Settings::glue_database`]).
    pub catalog: Option<P::Catalog>,
    /// Configuration.
    pub settings: Settings,
    /// The HTTP policy of Amazon API calls.
    pub policy: Policy,
    api_http: reqwest::Client,
    downloads: reqwest::Client,
}

/// The adapters only some functions have: the state machine (refresh-token) and the catalog
/// (download-decrypt).
pub struct Optional<P: Ports> {
    /// The state machine.
    pub executions: Option<P::Executions>,
    /// The data catalog.
    pub catalog: Option<P::Catalog>,
}

/// The production services: DynamoDB, Secrets Manager, S3.
pub type AwsServices = Services<Aws>;

impl AwsServices {
    /// Builds the services from the environment: [`Settings::from_env`] and the AWS SDK's own
    /// configuration (`AWS_REGION`, credentials, and `AWS_ENDPOINT_URL` for a local emulator, in which
    /// case S3 is addressed path-style).
    pub async fn from_env() -> Result<Self, StepError> {
        let settings = Settings::from_env()?;
        let config = aws_config::load_from_env().await;
        Self::from_sdk_config(&config, settings)
    }

    /// Builds the services over an SDK configuration (tests point it at an emulator).
    pub fn from_sdk_config(config: &aws_config::SdkConfig, settings: Settings) -> Result<Self, StepError> {
        let path_style = config.endpoint_url().is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(path_style)
                .build(),
        );
        let encryption = settings
            .kms_key_id
            .clone()
            .map_or(Encryption::BucketDefault, Encryption::Kms);
        let mut store = DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(config),
            settings.table.clone(),
            settings.run_ttl_days,
        );
        if let Some(key) = &settings.token_key_id {
            store = store.with_token_sealer(TokenSealer::new(aws_sdk_kms::Client::new(config), key.clone()));
        }
        let secrets = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(config));
        let sink = S3Sink::new(s3, settings.bucket.clone(), encryption);
        let executions = settings
            .state_machine_arn
            .clone()
            .map(|arn| StepFunctionsExecutions::new(aws_sdk_sfn::Client::new(config), arn));
        let catalog = settings
            .glue_database
            .clone()
            .map(|database| GlueCatalog::new(aws_sdk_glue::Client::new(config), database));
        let policy = Policy {
            allow_loopback_http: settings.allow_loopback_http,
            ..Policy::default()
        };
        Self::new(store, secrets, sink, Optional { executions, catalog }, settings, policy)
    }
}

impl<P: Ports> Services<P> {
    /// Services over the given adapters.
    pub fn new(
        store: P::Store,
        secrets: P::Secrets,
        sink: P::Sink,
        optional: Optional<P>,
        settings: Settings,
        policy: Policy,
    ) -> Result<Self, StepError> {
        let api_http = api_http_client(&policy).map_err(|e| StepError::Misconfigured(e.to_string()))?;
        let downloads =
            crate::transfer::http::download_client().map_err(|e| StepError::Misconfigured(e.to_string()))?;
        let sessions = Sessions::new(secrets, store.clone(), api_http.clone(), settings.endpoints.lwa.clone());
        Ok(Self {
            store,
            sessions,
            sink,
            executions: optional.executions,
            catalog: optional.catalog,
            settings,
            policy,
            api_http,
            downloads,
        })
    }

    /// The HTTP client for document downloads.
    pub fn downloads(&self) -> &reqwest::Client {
        &self.downloads
    }

    /// The session of `job`'s credentials, refreshed where its source's are (see [`Sessions::session`]).
    pub async fn session(&self, job: &Job) -> Result<Arc<Session>, StepError> {
        Ok(self
            .sessions
            .session(&job.credentials, job.source.rules().token_host())
            .await?)
    }

    /// Persists what a session learned (see [`Sessions::persist`]).
    pub async fn persist_session(&self, session: &Session) -> Result<(), StepError> {
        Ok(self.sessions.persist(session).await?)
    }

    /// The source client for `job` over `session`, with the request it makes. **The one place that
    /// picks the API client of each source.**
    pub async fn bind(&self, job: &Job, session: &Session) -> Result<BoundSource, StepError> {
        let clients = self.clients(session);
        Ok(match &job.source {
            SourceSpec::SpReports(request) => BoundSource::new(clients.sp_reports(), request.clone()),
            SourceSpec::AdsReports(request) => BoundSource::new(clients.ads(), request.clone()),
            SourceSpec::Amc(request) => BoundSource::new(clients.amc(), request.clone()),
            // Every window lists all its files; the ones a run of the job already stored are left out
            // by id when the documents are listed (download-decrypt), never by the watermark, which
            // would hide an earlier window's files once a later window succeeded.
            SourceSpec::Slate(request) => BoundSource::new(clients.slate(), request.clone()),
        })
    }

    /// The Amazon API clients over `session`, the SP-API ones charging the job table's shared usage
    /// plans for every attempt.
    pub fn clients(&self, session: &Session) -> Clients {
        Clients::new(
            self.api_http.clone(),
            Arc::clone(&session.lwa),
            session.region(),
            self.settings.endpoints.clone(),
            self.policy.clone(),
        )
        .with_sp_quota(Arc::new(TableQuota::new(self.store.clone(), &session.secret_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_http_document_urls_are_off_unless_the_environment_turns_them_on() {
        let lookup = |allow: Option<&'static str>| {
            move |name: &str| match name {
                "AMZPIPE_TABLE" => Some("t".to_owned()),
                "AMZPIPE_BUCKET" => Some("b".to_owned()),
                "AMZPIPE_ALLOW_LOOPBACK_HTTP" => allow.map(str::to_owned),
                _ => None,
            }
        };
        assert!(
            !Settings::from_lookup(lookup(None))
                .expect("settings")
                .allow_loopback_http
        );
        assert!(
            !Settings::from_lookup(lookup(Some("1")))
                .expect("settings")
                .allow_loopback_http
        );
        assert!(
            Settings::from_lookup(lookup(Some("true")))
                .expect("settings")
                .allow_loopback_http
        );
    }
}
