//! The Amazon API simulator: LWA, SP-API Reports 2021-06-30 (and the legacy 2020-09-04 document
//! shape), Amazon Ads reporting v3 with profiles, AMC workflow executions, and Prime Video Slate
//! datasets, with the shapes of `../shared/reference/amazon-apis.md` §7, plus the pre-signed download
//! URLs they hand out.
//!
//! One simulator plays one region (its profiles are that region's). Paths are the real ones, so a
//! client only needs its base URL pointed here (Slate lives under `/apis`).
//!
//! Progress is driven by polls, not wall time: each status read moves a request one stage on
//! ([`SimConfig::polls_per_stage`]), so tests are deterministic and the demo is fast. Token and URL
//! expiry use the simulator's clock, which `POST /_sim/advance` moves forward.
//!
//! Control endpoints (under `/_sim/`):
//! - `POST /_sim/scenario`: faults (`[{"op":"sp.createReport","status":429,"times":3}]`, with optional
//!   `retryAfter`, `body`, and `afterEffect` — the fault replaces the answer *after* the operation
//!   took effect, to test ambiguous creates) and outcomes per report type / workflow
//!   (`{"GET_X":"FATAL"}`; values `success`, `FATAL`, `CANCELLED`, `FAILED`, `LATIN1`, `BOMB`: a gzip
//!   bomb for an SP-API or Ads document, `EMPTY`: an SP-API or Ads report with no rows).
//! - `POST /_sim/advance` `{"seconds": 400}`: moves the clock on.
//! - `GET /_sim/requests`: every request received (operation, method, path, selected headers, body).
//! - `POST /_sim/revoke`: revokes every refresh token (LWA answers `invalid_grant`).
//!
//! Documents are generated while they are sent (a large SP-API report is never held in memory).

mod ads;
pub use ads::EXTRA_PROFILES_FROM;
mod amc;
mod common;
mod control;
mod download;
mod lwa;
mod slate;
mod sp_api;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Simulator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    /// Status reads per lifecycle stage (queued → running → done).
    pub polls_per_stage: u32,
    /// Access token lifetime.
    pub token_ttl_secs: i64,
    /// Whether LWA rotates the refresh token on every refresh.
    pub rotate_refresh_tokens: bool,
    /// SP-API document URL lifetime (the model says 5 minutes).
    pub sp_url_ttl_secs: i64,
    /// Ads report URL lifetime (3600 s).
    pub ads_url_ttl_secs: i64,
    /// AMC download URL lifetime (undocumented).
    pub amc_url_ttl_secs: i64,
    /// Slate file URL lifetime (unverified claim: 60 min).
    pub slate_url_ttl_secs: i64,
    /// Uncompressed size of each SP-API report document.
    pub sp_report_bytes: u64,
    /// Answer getReportDocument in the retired 2020-09-04 shape, AES-256-CBC encrypted.
    pub sp_legacy_documents: bool,
    /// Enforce the SP-API usage plans (token buckets) with 429 `QuotaExceeded`.
    pub sp_rate_limits: bool,
    /// Rows of each day of an Ads report's range (a report over three days has three times as many),
    /// so that a day reads the same count whichever run covered it.
    pub ads_rows_per_day: u32,
    /// The region this simulator plays (`na`, `eu`, `fe`); profiles are filtered by it.
    pub region: String,
    /// Result files per AMC execution.
    pub amc_files: u32,
    /// Rows per AMC file.
    pub amc_rows: u32,
    /// Answer AMC executions wrapped in `{"workflowExecution": …}` (the spec) instead of unwrapped (the docs).
    pub amc_wrapped: bool,
    /// Slate files published per day, per dataset.
    pub slate_files_per_day: u32,
    /// Rows per Slate file (per entry of its ZIP).
    pub slate_rows: u32,
    /// CSV entries in each Slate ZIP (1: one entry named after the file).
    pub slate_zip_entries: u32,
    /// Advertiser profiles the Ads API lists besides the demo brands (an agency's clients), with ids
    /// from `ads::EXTRA_PROFILES_FROM`.
    pub ads_extra_profiles: u32,
    /// Throttle the Ads API per credential set at (requests per second, burst), answering 429 beyond
    /// it; Amazon publishes no figures, so off unless asked for.
    pub ads_rate_limit: Option<(f64, f64)>,
    /// Spurious 401s answered on Ads status reads (every Nth read; 0 = never).
    pub ads_spurious_401_every: u32,
    /// The most reports one getReports page holds whatever `pageSize` asks (100, the model's maximum;
    /// lower to make a few reports span pages).
    pub sp_reports_page_max: usize,
    /// The most entries one Slate page holds whatever `limit` asks (the API may answer fewer; lower to
    /// make a few files span pages).
    pub slate_page_max: usize,
    /// Whether the app holds the SP-API restricted roles, so createRestrictedDataToken issues tokens
    /// for restricted report documents (off: it refuses them, as for an app without the role).
    pub sp_restricted_roles: bool,
    /// Appended to every SP-API report and document id (hostile ids: `/../x?y`, control characters…).
    pub sp_id_suffix: String,
    /// Restate Ads figures by the age of their day, as the reporting v3 FAQ describes
    /// (`../shared/reference/amazon-apis.md` §11), for reports created while this is the simulated
    /// day (a test sets it to each firing's day): impressions and clicks grow for 3 days; conversion
    /// figures (`sales*`, `purchases*`, `unitsSold*`) grow at 1, 7 and 28 days after each conversion
    /// event, the events falling within a 14-day attribution window of the ad interaction, so a day's
    /// conversions last change at age 42. `None`: each report's values differ by its `restatement`.
    pub ads_restating_as_of: Option<chrono::NaiveDate>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            polls_per_stage: 1,
            token_ttl_secs: 3600,
            rotate_refresh_tokens: false,
            sp_url_ttl_secs: 300,
            ads_url_ttl_secs: 3600,
            amc_url_ttl_secs: 3600,
            slate_url_ttl_secs: 3600,
            sp_report_bytes: 256 << 10,
            sp_legacy_documents: false,
            sp_rate_limits: true,
            ads_rows_per_day: 100,
            ads_restating_as_of: None,
            region: "na".into(),
            amc_files: 2,
            amc_rows: 1000,
            amc_wrapped: false,
            slate_files_per_day: 2,
            slate_rows: 200,
            slate_zip_entries: 1,
            ads_extra_profiles: 0,
            ads_rate_limit: None,
            ads_spurious_401_every: 0,
            sp_reports_page_max: 100,
            slate_page_max: 1000,
            sp_restricted_roles: true,
            sp_id_suffix: String::new(),
        }
    }
}

/// A scripted fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// The operation (`sp.createReport`, `ads.createReport`, `amc.createExecution`, `lwa.token`,
    /// `file.download`, …; see `GET /_sim/requests` for the names).
    pub op: String,
    /// The status answered.
    pub status: u16,
    /// How many times.
    #[serde(default = "one")]
    pub times: u32,
    /// `Retry-After` seconds, when the fault should carry one.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The body; a realistic one for the API and status when absent.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Let the operation take effect, then answer the fault (an ambiguous create).
    #[serde(default)]
    pub after_effect: bool,
    /// For `file.download`: answer 200, send this many bytes of the body, then reset the connection
    /// (`status` is ignored).
    #[serde(default)]
    pub cut_after: Option<u64>,
    /// For `file.download`: answer 200 with one byte of the body flipped (the last one of a document
    /// held whole, the 100th of a generated one), as a tampered or corrupted download (`status` is
    /// ignored).
    #[serde(default)]
    pub tamper: bool,
}

fn one() -> u32 {
    1
}

/// What tests script: faults and outcomes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Scenario {
    /// Faults, consumed in order per operation.
    pub faults: Vec<Fault>,
    /// Outcome per SP-API report type, Ads reportTypeId, AMC workflow id (`adhoc` for SQL).
    pub outcomes: BTreeMap<String, String>,
    /// Replaces the configuration when present.
    pub config: Option<SimConfig>,
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logged {
    /// The operation name.
    pub op: String,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Selected headers (`content-type`, `amazon-advertising-api-*`, whether a token was sent).
    pub headers: BTreeMap<String, String>,
    /// The body (form bodies with secrets are redacted).
    pub body: String,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
pub(crate) enum FileBody {
    Bytes(Bytes),
    SpReport {
        bytes: u64,
        seed: u64,
        key: Option<([u8; 32], [u8; 16])>,
        /// The report's window, as days: the first and how many (its orders' purchase dates).
        days: Option<(chrono::NaiveDate, u32)>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct SimFile {
    pub body: FileBody,
    pub expires_at: DateTime<Utc>,
    pub content_encoding: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) struct SpReport {
    pub report_type: String,
    pub marketplace_ids: Vec<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub polls: u32,
    pub outcome: String,
    pub cancelled: bool,
    pub document_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AdsReport {
    pub profile_id: String,
    pub body: serde_json::Value,
    pub created: DateTime<Utc>,
    pub polls: u32,
    pub outcome: String,
    /// How many reports were created before this one: Amazon restates metrics for days (the
    /// reference, §3.2 notes: revised up to 3 days, conversions at 1/7/28), so each report's values
    /// differ from an earlier one's for the same day by this much.
    pub restatement: u32,
    /// The simulated day the report was created on, when Ads figures are restated by age
    /// ([`SimConfig::ads_restating_as_of`]).
    pub as_of: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone)]
pub(crate) struct AmcExecution {
    pub instance_id: String,
    pub workflow_id: String,
    pub sql: Option<String>,
    pub body: serde_json::Value,
    pub created: DateTime<Utc>,
    pub polls: u32,
    pub outcome: String,
    pub cancelled: bool,
    /// The poll at which it left PENDING (the 10-running limit can hold it there).
    pub started_at_poll: Option<u32>,
}

#[derive(Default)]
pub(crate) struct State {
    pub config: SimConfig,
    pub clock_offset_secs: i64,
    pub faults: Vec<Fault>,
    pub outcomes: BTreeMap<String, String>,
    pub log: Vec<Logged>,
    pub counter: u64,
    pub access_tokens: HashMap<String, DateTime<Utc>>,
    /// Restricted Data Tokens by token.
    pub restricted_tokens: HashMap<String, RestrictedToken>,
    pub revoked: bool,
    pub retired_refresh_tokens: HashSet<String>,
    /// Client secrets the app no longer has (the developer rotated them in the developer console).
    pub retired_client_secrets: HashSet<String>,
    pub files: HashMap<String, SimFile>,
    /// Files served whole (a 200 not cut off nor tampered), by id.
    pub downloaded: HashSet<String>,
    /// 429s the simulator's own SP-API usage plans answered (scripted faults not counted).
    pub quota_refusals: u32,
    /// AMC creates accepted while ten executions of their instance were already active (pending or
    /// running): AMC queues them (reference §1.6), so no 429 shows a client creating past its slots.
    pub amc_creates_over_limit: u32,
    /// Ads reports over a range starting on one of these days stay `PENDING` until released (a slow
    /// report, so that a run requested earlier can finish after one requested later).
    pub held_ads_starts: HashSet<String>,
    pub sp_reports: BTreeMap<String, SpReport>,
    pub sp_schedules: BTreeMap<String, serde_json::Value>,
    /// getReports pages handed out: token → (the first call's query, the offset of the page it asks for).
    pub sp_report_pages: HashMap<String, (HashMap<String, String>, usize)>,
    /// SP-API usage plans, per selling partner (the refresh token that authorised the app) and
    /// operation, as Amazon keeps them.
    pub sp_buckets: HashMap<(String, &'static str), (f64, DateTime<Utc>)>,
    /// The selling partner each access token and refresh token speaks for (the first refresh token of
    /// a rotating chain).
    pub token_sellers: HashMap<String, String>,
    /// The Ads API's token buckets, per credential set.
    pub ads_buckets: HashMap<String, (f64, DateTime<Utc>)>,
    pub ads_reports: BTreeMap<String, AdsReport>,
    pub ads_reads: u32,
    pub amc_executions: BTreeMap<String, AmcExecution>,
    pub amc_workflows: BTreeMap<String, serde_json::Value>,
    pub amc_schedules: BTreeMap<String, serde_json::Value>,
    pub auth_codes: HashMap<String, AuthCode>,
}

/// A Restricted Data Token: when it expires, and the `(method, path)` resources it was issued for.
#[derive(Debug, Clone)]
pub(crate) struct RestrictedToken {
    pub expires_at: DateTime<Utc>,
    pub resources: Vec<(String, String)>,
}

/// An authorization code LWA handed out on consent.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub issued: DateTime<Utc>,
    pub used: bool,
}

impl State {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.clock_offset_secs)
    }

    pub fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn uuid(&mut self) -> String {
        let n = self.next_id();
        let r = fastrand::u64(..);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            n & 0xfff,
            (r >> 4) & 0xfff,
            n
        )
    }

    /// Takes the next scripted status fault for `op` (body faults of downloads are taken by the download).
    pub fn take_fault(&mut self, op: &str) -> Option<Fault> {
        self.take_matching(op, |f| !f.is_body_fault())
    }

    /// Takes the next scripted body fault (cut off, tampered) for `op`.
    pub fn take_body_fault(&mut self, op: &str) -> Option<Fault> {
        self.take_matching(op, Fault::is_body_fault)
    }

    fn take_matching(&mut self, op: &str, kind: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let fault = self.faults.iter_mut().find(|f| f.op == op && f.times > 0 && kind(f))?;
        fault.times -= 1;
        Some(fault.clone())
    }

    pub fn outcome(&self, key: &str) -> String {
        self.outcomes.get(key).cloned().unwrap_or_else(|| "success".into())
    }
}

impl Fault {
    /// `op` taking effect once, then answering `status` instead of its answer: a create whose outcome
    /// the client cannot know.
    pub fn lost_answer(op: &str, status: u16) -> Self {
        Self {
            after_effect: true,
            ..Self::answer(op, status, 1)
        }
    }

    /// `op` answering `status` `times` times, before doing anything, with the API's realistic body.
    pub fn answer(op: &str, status: u16, times: u32) -> Self {
        Self {
            op: op.to_owned(),
            status,
            times,
            retry_after: None,
            body: None,
            after_effect: false,
            cut_after: None,
            tamper: false,
        }
    }

    /// Whether the fault acts on a download's body rather than answering a status.
    pub fn is_body_fault(&self) -> bool {
        self.cut_after.is_some() || self.tamper
    }

    /// A download cut off after `bytes`, `times` times.
    pub fn cut_download(bytes: u64, times: u32) -> Self {
        Self {
            cut_after: Some(bytes),
            ..Self::answer("file.download", 200, times)
        }
    }

    /// A download with one byte flipped, `times` times.
    pub fn tampered_download(times: u32) -> Self {
        Self {
            tamper: true,
            ..Self::answer("file.download", 200, times)
        }
    }
}

impl Scenario {
    /// A scenario of one fault.
    pub fn with_fault(fault: Fault) -> Self {
        Self {
            faults: vec![fault],
            ..Self::default()
        }
    }

    /// A scenario where the report type, Ads `reportTypeId` or AMC workflow `key` ends with `outcome`
    /// (`FATAL`, `CANCELLED`, `FAILED`, `LATIN1`, …).
    pub fn with_outcome(key: &str, outcome: &str) -> Self {
        Self {
            outcomes: [(key.to_owned(), outcome.to_owned())].into(),
            ..Self::default()
        }
    }
}

/// Shared simulator state.
#[derive(Clone)]
pub struct Sim {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) base: String,
}

impl Sim {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator on a loopback port. Stops when dropped.
pub struct Simulator {
    sim: Sim,
    _stop: oneshot::Sender<()>,
}

impl Simulator {
    /// Starts on a free loopback port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", config).await
    }

    /// Starts on `addr` (e.g. `127.0.0.1:9400`).
    pub async fn start_on(addr: &str, config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let sim = Sim {
            state: Arc::new(Mutex::new(State {
                config,
                ..State::default()
            })),
            base,
        };
        let app = router(sim.clone());
        Ok(Self {
            sim,
            _stop: crate::serve_until_dropped(listener, app),
        })
    }

    /// The base URL (`http://127.0.0.1:port`): SP-API, Ads, AMC and LWA (`/auth/o2/token`) live here.
    pub fn base_url(&self) -> &str {
        &self.sim.base
    }

    /// The LWA token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/auth/o2/token", self.sim.base)
    }

    /// The LWA consent page (`…/ap/oa`): it consents at once and redirects with a code, as a user
    /// clicking "Allow" would.
    pub fn consent_url(&self) -> String {
        format!("{}/ap/oa", self.sim.base)
    }

    /// The Slate base URL (`…/apis`).
    pub fn slate_url(&self) -> String {
        format!("{}/apis", self.sim.base)
    }

    /// Replaces the faults and outcomes (and the configuration when given).
    pub fn set_scenario(&self, scenario: Scenario) {
        let mut state = self.sim.lock();
        state.faults = scenario.faults;
        state.outcomes = scenario.outcomes;
        if let Some(config) = scenario.config {
            state.config = config;
        }
    }

    /// Changes the configuration.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.sim.lock().config);
    }

    /// Moves the clock forward.
    pub fn advance(&self, seconds: i64) {
        self.sim.lock().clock_offset_secs += seconds;
    }

    /// Keeps every Ads report whose range starts on `start_date` (`yyyy-mm-dd`) `PENDING` until
    /// [`Simulator::release_ads_reports`]: Amazon makes no promise of order, and a slow report lets a
    /// run requested after it finish first.
    pub fn hold_ads_reports_from(&self, start_date: &str) {
        self.sim.lock().held_ads_starts.insert(start_date.to_owned());
    }

    /// Lets every held Ads report go on (the reads while held do not count: it goes on from where it stood).
    pub fn release_ads_reports(&self) {
        self.sim.lock().held_ads_starts.clear();
    }

    /// Revokes every refresh token.
    pub fn revoke_refresh_tokens(&self) {
        self.sim.lock().revoked = true;
    }

    /// Retires a client secret, as rotating it in the developer console does: LWA refuses it from now on
    /// (`401 invalid_client`).
    pub fn retire_client_secret(&self, secret: &str) {
        self.sim.lock().retired_client_secrets.insert(secret.to_owned());
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.sim.lock().log.clone()
    }

    /// The requests of one operation.
    pub fn requests_of(&self, op: &str) -> Vec<Logged> {
        self.sim.lock().log.iter().filter(|l| l.op == op).cloned().collect()
    }

    /// The rows of every JSON-array document downloaded so far (an Ads report), parsed: what a run
    /// stores as JSON Lines, a row per line.
    pub fn served_json_rows(&self) -> Vec<Vec<serde_json::Value>> {
        self.downloaded_bodies().iter().filter_map(common::json_rows).collect()
    }

    /// The bodies of the documents downloaded so far, copied out of the lock.
    fn downloaded_bodies(&self) -> Vec<FileBody> {
        let s = self.sim.lock();
        s.downloaded
            .iter()
            .filter_map(|id| s.files.get(id).map(|f| f.body.clone()))
            .collect()
    }

    /// SHA-256 of the decompressed content of every document downloaded so far (what a run stores when
    /// it keeps the content as served).
    pub fn served_content_sha256s(&self) -> Vec<String> {
        // Computed here, for the tests that ask, not while serving.
        self.downloaded_bodies()
            .iter()
            .filter_map(common::content_sha256)
            .collect()
    }

    /// How many times the simulator's own SP-API usage plans answered 429: each is a request the
    /// pipeline sent beyond Amazon's published quota.
    pub fn quota_refusals(&self) -> u32 {
        self.sim.lock().quota_refusals
    }

    /// AMC creates made while ten executions of their instance were active (see
    /// `State::amc_creates_over_limit`): a client's breach of AMC's running limit, which AMC itself
    /// answers by queueing, not refusing.
    pub fn amc_creates_over_limit(&self) -> u32 {
        self.sim.lock().amc_creates_over_limit
    }

    /// Makes every access token handed out so far invalid (a token that dies before its
    /// `expires_in`): the next call with one is refused as expired.
    pub fn expire_access_tokens(&self) {
        self.sim.lock().access_tokens.clear();
    }

    /// How many SP-API reports, Ads reports and AMC executions exist.
    pub fn created_counts(&self) -> (usize, usize, usize) {
        let s = self.sim.lock();
        (s.sp_reports.len(), s.ads_reports.len(), s.amc_executions.len())
    }
}

fn router(sim: Sim) -> Router {
    use self::{ads::*, amc::*, control::*, download::*, lwa::*, slate::*, sp_api::*};
    Router::new()
        .route("/auth/o2/token", post(lwa_token))
        .route("/ap/oa", get(lwa_consent))
        .route(
            "/sellers/v1/marketplaceParticipations",
            get(sp_marketplace_participations),
        )
        .route("/amc/accounts", get(amc_accounts))
        .route("/amc/instances", get(amc_instances))
        .route(
            "/reports/2021-06-30/reports",
            post(sp_create_report).get(sp_get_reports),
        )
        .route(
            "/reports/2021-06-30/reports/{id}",
            get(sp_get_report).delete(sp_cancel_report),
        )
        .route("/reports/2021-06-30/documents/{id}", get(sp_get_document))
        .route(
            "/tokens/2021-03-01/restrictedDataToken",
            post(sp_create_restricted_data_token),
        )
        .route(
            "/reports/2021-06-30/schedules",
            post(sp_create_schedule).get(sp_get_schedules),
        )
        .route(
            "/reports/2021-06-30/schedules/{id}",
            get(sp_get_schedule).delete(sp_cancel_schedule),
        )
        .route("/v2/profiles", get(ads_profiles))
        .route("/reporting/reports", post(ads_create_report))
        .route("/reporting/reports/{id}", get(ads_get_report).delete(ads_delete_report))
        .route(
            "/amc/reporting/{instance}/workflowExecutions",
            post(amc_create_execution).get(amc_list_executions),
        )
        .route(
            "/amc/reporting/{instance}/workflowExecutions/{id}",
            get(amc_get_execution)
                .put(amc_update_execution)
                .delete(amc_delete_execution),
        )
        .route(
            "/amc/reporting/{instance}/workflowExecutions/{id}/downloadUrls",
            get(amc_download_urls),
        )
        .route(
            "/amc/reporting/{instance}/workflows",
            post(amc_create_workflow).get(amc_list_workflows),
        )
        .route(
            "/amc/reporting/{instance}/workflows/{id}",
            get(amc_get_workflow)
                .put(amc_update_workflow)
                .delete(amc_delete_workflow),
        )
        .route(
            "/amc/reporting/{instance}/schedules",
            post(amc_create_schedule).get(amc_list_schedules),
        )
        .route(
            "/amc/reporting/{instance}/schedules/{id}",
            axum::routing::delete(amc_delete_schedule),
        )
        .route("/apis/v2/accounts", get(slate_accounts))
        // The Datasets API's paths as its official page gives them (seed 002_8fd61206bc5c2333.txt): no
        // `groups`, `businesses` or `files` segments.
        .route("/apis/v2/accounts/{account}", get(slate_groups))
        .route("/apis/v2/accounts/{account}/{group}", get(slate_businesses))
        .route(
            "/apis/v2/accounts/{account}/{group}/{business}/datasets",
            get(slate_datasets),
        )
        .route(
            "/apis/v2/accounts/{account}/{group}/{business}/datasets/{dataset}",
            get(slate_files),
        )
        .route("/files/{id}", get(download))
        .route("/_sim/scenario", post(control_scenario))
        .route("/_sim/advance", post(control_advance))
        .route("/_sim/requests", get(control_requests))
        .route("/_sim/revoke", post(control_revoke))
        .with_state(sim)
}
