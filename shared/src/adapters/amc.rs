//! Amazon Marketing Cloud: workflow executions under `/amc/reporting/{instanceId}` on the Ads hosts.
//!
//! - Ad-hoc SQL (`workflow.sqlQuery`, made single-line here: comments dropped, whitespace collapsed
//!   outside string literals) or a saved workflow (`workflowId`), an explicit time window, parameter
//!   values, a time zone.
//! - Status `PENDING`/`RUNNING` (and legacy `PUBLISHING`) → in progress; `SUCCEEDED` → ready;
//!   `FAILED`/`REJECTED`/`CANCELLED` → failed with the status reason.
//! - Execution bodies are read wrapped (`{"workflowExecution": …}`, as the spec says) or unwrapped (as
//!   the documentation samples and real answers show).
//! - At most [`amc::MAX_RUNNING`] executions run per instance: a create that finds them all
//!   busy is throttled instead of queueing more.
//! - An ambiguous create is resolved by listing the instance's executions created since the attempt.

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::adapters::api::{ApiClient, ApiError, Idempotency, Operation, path_segment};
use crate::domain::TimeWindow;
use crate::domain::document::{Compression, ContentFormat, Document, Encryption};
use crate::domain::source::amc::{self, AmcQuery, AmcRequest, single_line_sql};
use crate::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};

/// Content type of execution creation.
pub const EXECUTION_CONTENT_TYPE: &str = "application/vnd.amcworkflowexecutions.v1+json";
/// Content type of workflow creation and update.
pub const WORKFLOW_CONTENT_TYPE: &str = "application/vnd.amcworkflows.v1+json";
/// Content type of schedules.
pub const SCHEDULE_CONTENT_TYPE: &str = "application/vnd.amcschedules.v1+json";

/// AMC publishes no rates; a polite default.
pub const AMC: Operation = Operation {
    name: "amc",
    rate: 1.0,
    burst: 5,
};
/// Creating executions.
pub const CREATE_EXECUTION: Operation = Operation {
    name: "amc.createWorkflowExecution",
    rate: 0.5,
    burst: 10,
};

/// An AMC instance as one advertiser reaches it: what every call under `/amc/reporting/{instanceId}`
/// needs besides the token (the workflows of an instance are managed through it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcScope {
    /// The AMC instance.
    pub instance_id: String,
    /// The AMC account (`Amazon-Advertising-API-AdvertiserId`).
    pub advertiser_id: String,
    /// The marketplace (`Amazon-Advertising-API-MarketplaceId`).
    pub marketplace_id: String,
}

/// The instance and headers of one call, borrowed from a request or a scope.
#[derive(Clone, Copy)]
struct Target<'a> {
    instance_id: &'a str,
    advertiser_id: &'a str,
    marketplace_id: &'a str,
}

impl<'a> From<&'a AmcRequest> for Target<'a> {
    fn from(r: &'a AmcRequest) -> Self {
        Self {
            instance_id: &r.instance_id,
            advertiser_id: &r.advertiser_id,
            marketplace_id: &r.marketplace_id,
        }
    }
}

impl<'a> From<&'a AmcScope> for Target<'a> {
    fn from(r: &'a AmcScope) -> Self {
        Self {
            instance_id: &r.instance_id,
            advertiser_id: &r.advertiser_id,
            marketplace_id: &r.marketplace_id,
        }
    }
}

/// A saved workflow: SQL as code (`amc workflows sync`). Fields other than the id and the SQL are
/// passed to AMC as written (`inputParameters`, `outputFormat`, `filteredMetricsDiscriminatorColumn`,
/// `privacyFilteringBehavior`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// The workflow id (letters, digits, `_`, `-`).
    pub workflow_id: String,
    /// The SQL as written; sent single-line.
    pub sql: String,
    /// Further workflow fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Workflow {
    /// The body AMC is sent (and the fields compared with what AMC holds).
    pub fn body(&self) -> serde_json::Value {
        let mut body = self.fields.clone();
        body.insert("workflowId".into(), self.workflow_id.clone().into());
        body.insert("sqlQuery".into(), single_line_sql(&self.sql).into());
        serde_json::Value::Object(body)
    }
}

/// An AMC account (`GET /amc/accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcAccount {
    /// The account id, sent as `Amazon-Advertising-API-AdvertiserId`.
    pub account_id: String,
    /// Its name.
    #[serde(default)]
    pub account_name: String,
    /// Its marketplace.
    #[serde(default)]
    pub marketplace_id: String,
}

/// An AMC instance of an account (`GET /amc/instances`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcInstance {
    /// The instance id (`amc…`).
    pub instance_id: String,
    /// Its name.
    #[serde(default)]
    pub instance_name: String,
    /// `STANDARD` or `SANDBOX`.
    #[serde(default)]
    pub instance_type: String,
    /// Provisioning state (`COMPLETED` when usable).
    #[serde(default)]
    pub creation_status: String,
}

fn amc_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl AmcRequest {
    fn body(&self, window: &TimeWindow) -> serde_json::Value {
        let mut body = serde_json::json!({
            "timeWindowType": "EXPLICIT",
            "timeWindowStart": amc_time(window.start),
            "timeWindowEnd": amc_time(window.end),
            "timeWindowTimeZone": self.time_zone.as_deref().unwrap_or("UTC"),
        });
        match &self.query {
            AmcQuery::Sql(sql) => body["workflow"] = serde_json::json!({ "sqlQuery": single_line_sql(sql) }),
            AmcQuery::WorkflowId(id) => body["workflowId"] = serde_json::json!(id),
        }
        if !self.parameter_values.is_empty() {
            body["parameterValues"] = serde_json::json!(self.parameter_values);
        }
        if let Some(t) = self.timeout_seconds {
            body["workflowExecutionTimeoutSeconds"] = serde_json::json!(t);
        }
        if self.require_synthetic_data {
            body["requireSyntheticData"] = serde_json::json!(true);
        }
        body
    }
}

/// A workflow execution.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Its id.
    pub workflow_execution_id: String,
    /// The workflow (`transient_<uuid>` for ad-hoc SQL).
    #[serde(default)]
    pub workflow_id: Option<String>,
    /// The status.
    pub status: String,
    /// Why it failed.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Window start as AMC echoes it: converted to UTC.
    #[serde(default)]
    pub time_window_start: Option<String>,
    /// Window end as AMC echoes it: converted to UTC.
    #[serde(default)]
    pub time_window_end: Option<String>,
    /// Window start as it was sent (local time in the execution's time zone).
    #[serde(default)]
    pub time_window_start_original: Option<String>,
    /// Window end as it was sent.
    #[serde(default)]
    pub time_window_end_original: Option<String>,
    /// The SQL (only with `includeWorkflow=true`).
    #[serde(default)]
    pub sql_query: Option<String>,
    /// The time zone the window was sent in (absent: UTC).
    #[serde(default)]
    pub time_window_time_zone_original: Option<String>,
    /// The parameters the execution was started with, as AMC echoes them.
    #[serde(default)]
    pub parameter_values: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Execution {
    fn from_value(value: serde_json::Value, operation: &'static str) -> Result<Self, ApiError> {
        let value = value.get("workflowExecution").cloned().unwrap_or(value);
        serde_json::from_value(value).map_err(|e| ApiError::Decode {
            operation,
            message: e.to_string(),
        })
    }

    fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "RUNNING" | "PUBLISHING")
    }

    /// Whether the execution asked for `window` as a create sends it (the window's UTC
    /// digits, read as local time in `time_zone`). AMC echoes the window converted to UTC and the value
    /// as sent in `…Original`: like is compared with like. Without the originals, the UTC echo can be
    /// compared only for a UTC window; otherwise the execution is not taken for ours.
    fn window_is(&self, window: &TimeWindow, time_zone: Option<&str>) -> bool {
        let same = |echo: &Option<String>, t: DateTime<Utc>| {
            echo.as_deref().is_some_and(|s| {
                let s = s.trim_end_matches('Z');
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok_and(|d| d == t.naive_utc())
            })
        };
        if self.time_window_start_original.is_some() || self.time_window_end_original.is_some() {
            return same(&self.time_window_start_original, window.start)
                && same(&self.time_window_end_original, window.end);
        }
        time_zone.is_none_or(|z| z.eq_ignore_ascii_case("UTC"))
            && same(&self.time_window_start, window.start)
            && same(&self.time_window_end, window.end)
    }

    /// Whether the execution's window was sent in `time_zone` (none, and an execution that echoes
    /// none, mean UTC): the same local times in another zone are another window.
    fn zone_is(&self, time_zone: Option<&str>) -> bool {
        let echoed = self.time_window_time_zone_original.as_deref().unwrap_or("UTC");
        echoed.eq_ignore_ascii_case(time_zone.unwrap_or("UTC"))
    }

    /// Whether the execution was started with exactly `wanted` as its parameters (an execution that
    /// echoes none had none). Values are compared as strings, as AMC takes them.
    fn parameters_are(&self, wanted: &std::collections::BTreeMap<String, String>) -> bool {
        let as_text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let echoed: std::collections::BTreeMap<&str, String> = self
            .parameter_values
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), as_text(v)))
            .collect();
        let wanted: std::collections::BTreeMap<&str, String> =
            wanted.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        echoed == wanted
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionList {
    #[serde(default)]
    executions: Vec<serde_json::Value>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DownloadUrls {
    #[serde(default)]
    download_urls: Vec<String>,
    #[serde(default)]
    next_token: Option<String>,
}

/// The AMC client of one credential set in one region.
#[derive(Debug, Clone)]
pub struct AmcClient {
    api: ApiClient,
    base_url: String,
}

impl AmcClient {
    /// A client of `base_url` (the Ads host of the region). `api` must send bearer tokens.
    pub fn new(api: ApiClient, base_url: impl Into<String>) -> Self {
        Self {
            api,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    fn url(&self, target: Target<'_>, path: &str) -> String {
        format!("{}/amc/reporting/{}/{path}", self.base_url, target.instance_id)
    }

    fn headers(&self, r: reqwest::RequestBuilder, target: Target<'_>) -> reqwest::RequestBuilder {
        r.header("Amazon-Advertising-API-ClientId", self.api.session().client_id())
            .header("Amazon-Advertising-API-AdvertiserId", target.advertiser_id)
            .header("Amazon-Advertising-API-MarketplaceId", target.marketplace_id)
    }

    async fn call(
        &self,
        op: &Operation,
        method: Method,
        target: impl Into<Target<'_>>,
        path: &str,
        body: Option<(&str, &serde_json::Value)>,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, ApiError> {
        let target = target.into();
        // Every AMC POST creates something; PUT, GET and DELETE can be repeated.
        let idempotency = if method == Method::POST {
            Idempotency::Create
        } else {
            Idempotency::Idempotent
        };
        let response = self
            .api
            .send(
                op,
                method,
                idempotency,
                |r| {
                    let r = self.headers(r, target).query(query);
                    match body {
                        Some((content_type, body)) => r
                            .header(reqwest::header::CONTENT_TYPE, content_type)
                            .body(body.to_string()),
                        None => r,
                    }
                },
                &self.url(target, path),
            )
            .await?;
        if response.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        response.json()
    }

    /// The instance's executions created since `since`, following `nextToken`.
    pub async fn executions_since(
        &self,
        request: &AmcRequest,
        since: DateTime<Utc>,
    ) -> Result<Vec<Execution>, ApiError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![
                ("minCreationTime", amc_time(since)),
                ("includeWorkflow", "true".to_owned()),
                ("limit", "100".to_owned()),
            ];
            if let Some(token) = &next {
                query.push(("nextToken", token.clone()));
            }
            let value = self
                .call(&AMC, Method::GET, request, "workflowExecutions", None, &query)
                .await?;
            let list: ExecutionList = serde_json::from_value(value).map_err(|e| ApiError::Decode {
                operation: "amc.listWorkflowExecutions",
                message: e.to_string(),
            })?;
            for e in list.executions {
                out.push(Execution::from_value(e, "amc.listWorkflowExecutions")?);
            }
            match list.next_token.filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// getWorkflowExecution.
    pub async fn execution(&self, request: &AmcRequest, id: &str) -> Result<Execution, ApiError> {
        let id = path_segment(id)?;
        let value = self
            .call(
                &AMC,
                Method::GET,
                request,
                &format!("workflowExecutions/{id}"),
                None,
                &[],
            )
            .await?;
        Execution::from_value(value, "amc.getWorkflowExecution")
    }

    /// Cancels an execution (`PUT {"status":"CANCELLED"}`, as AMCI does).
    pub async fn cancel(&self, request: &AmcRequest, id: &str) -> Result<(), SourceError> {
        let id = path_segment(id)?;
        let body = serde_json::json!({ "status": "CANCELLED" });
        self.call(
            &AMC,
            Method::PUT,
            request,
            &format!("workflowExecutions/{id}"),
            Some((EXECUTION_CONTENT_TYPE, &body)),
            &[],
        )
        .await?;
        Ok(())
    }

    /// The AMC accounts the credentials reach (`GET /amc/accounts`, every page).
    pub async fn accounts(&self) -> Result<Vec<AmcAccount>, SourceError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            amc_accounts: Vec<AmcAccount>,
            #[serde(default)]
            next_token: Option<String>,
        }
        let url = format!("{}/amc/accounts", self.base_url);
        self.pages(&url, None, |p: Page| (p.amc_accounts, p.next_token)).await
    }

    /// The instances of `account` in `marketplace_id` (`GET /amc/instances`, every page).
    pub async fn instances(&self, account_id: &str, marketplace_id: &str) -> Result<Vec<AmcInstance>, SourceError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            instances: Vec<AmcInstance>,
            #[serde(default)]
            next_token: Option<String>,
        }
        let url = format!("{}/amc/instances", self.base_url);
        self.pages(&url, Some((account_id, marketplace_id)), |p: Page| {
            (p.instances, p.next_token)
        })
        .await
    }

    /// A listing outside any instance, following `nextToken`.
    async fn pages<P: serde::de::DeserializeOwned, T>(
        &self,
        url: &str,
        account: Option<(&str, &str)>,
        split: impl Fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, SourceError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let response = self
                .api
                .send(
                    &AMC,
                    Method::GET,
                    Idempotency::Idempotent,
                    |r| {
                        let mut r = r.header("Amazon-Advertising-API-ClientId", self.api.session().client_id());
                        if let Some((advertiser, marketplace)) = account {
                            r = r
                                .header("Amazon-Advertising-API-AdvertiserId", advertiser)
                                .header("Amazon-Advertising-API-MarketplaceId", marketplace);
                        }
                        match &next {
                            Some(token) => r.query(&[("nextToken", token)]),
                            None => r,
                        }
                    },
                    url,
                )
                .await?;
            let (items, token) = split(response.json()?);
            out.extend(items);
            match token.filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// The saved workflows of an instance (`GET /workflows`, every page), as AMC returns them.
    pub async fn workflows(&self, scope: &AmcScope) -> Result<Vec<serde_json::Value>, SourceError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![("limit", "100".to_owned())];
            if let Some(token) = &next {
                query.push(("nextToken", token.clone()));
            }
            let value = self.call(&AMC, Method::GET, scope, "workflows", None, &query).await?;
            if let Some(items) = value.get("workflows").and_then(serde_json::Value::as_array) {
                out.extend(items.iter().cloned());
            }
            match value
                .get("nextToken")
                .and_then(serde_json::Value::as_str)
                .filter(|t| !t.is_empty())
            {
                Some(t) => next = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }

    /// Creates a saved workflow (`POST /workflows`).
    pub async fn create_workflow(&self, scope: &AmcScope, workflow: &Workflow) -> Result<(), SourceError> {
        path_segment(&workflow.workflow_id)?;
        self.call(
            &AMC,
            Method::POST,
            scope,
            "workflows",
            Some((WORKFLOW_CONTENT_TYPE, &workflow.body())),
            &[],
        )
        .await?;
        Ok(())
    }

    /// Replaces a saved workflow (`PUT /workflows/{id}`).
    pub async fn update_workflow(&self, scope: &AmcScope, workflow: &Workflow) -> Result<(), SourceError> {
        let id = path_segment(&workflow.workflow_id)?;
        self.call(
            &AMC,
            Method::PUT,
            scope,
            &format!("workflows/{id}"),
            Some((WORKFLOW_CONTENT_TYPE, &workflow.body())),
            &[],
        )
        .await?;
        Ok(())
    }

    /// A saved workflow as AMC holds it (`workflowId`, `sqlQuery`, …): the spec's GetWorkflowResponse
    /// wraps it in `{"workflow": …}`; an unwrapped answer is taken as it is.
    pub async fn workflow(&self, scope: &AmcScope, workflow_id: &str) -> Result<serde_json::Value, SourceError> {
        let id = path_segment(workflow_id)?;
        let mut value = self
            .call(&AMC, Method::GET, scope, &format!("workflows/{id}"), None, &[])
            .await?;
        Ok(match value.get_mut("workflow") {
            Some(workflow) if workflow.is_object() => workflow.take(),
            _ => value,
        })
    }

    /// Deletes a saved workflow.
    pub async fn delete_workflow(&self, scope: &AmcScope, workflow_id: &str) -> Result<(), SourceError> {
        let id = path_segment(workflow_id)?;
        self.call(&AMC, Method::DELETE, scope, &format!("workflows/{id}"), None, &[])
            .await?;
        Ok(())
    }

    /// Creates an AMC-side schedule (`aggregationPeriod` Daily|Weekly); returns AMC's answer.
    pub async fn create_schedule(
        &self,
        request: &AmcRequest,
        schedule: &serde_json::Value,
    ) -> Result<serde_json::Value, SourceError> {
        Ok(self
            .call(
                &AMC,
                Method::POST,
                request,
                "schedules",
                Some((SCHEDULE_CONTENT_TYPE, schedule)),
                &[],
            )
            .await?)
    }

    /// Deletes an AMC-side schedule.
    pub async fn delete_schedule(&self, request: &AmcRequest, schedule_id: &str) -> Result<(), SourceError> {
        let id = path_segment(schedule_id)?;
        self.call(&AMC, Method::DELETE, request, &format!("schedules/{id}"), None, &[])
            .await?;
        Ok(())
    }

    /// The execution of `request` for `window` started since `since` and not cancelled, if any.
    async fn find_execution(
        &self,
        request: &AmcRequest,
        window: &TimeWindow,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, ApiError> {
        let found = self.executions_since(request, since).await?;
        Ok(found
            .into_iter()
            .find(|e| self.is_same_request(e, request, window) && e.status != "CANCELLED")
            .map(|e| e.workflow_execution_id))
    }

    fn is_same_request(&self, e: &Execution, request: &AmcRequest, window: &TimeWindow) -> bool {
        let query_matches = match &request.query {
            AmcQuery::WorkflowId(id) => e.workflow_id.as_deref() == Some(id.as_str()),
            AmcQuery::Sql(sql) => e.sql_query.as_deref().map(single_line_sql) == Some(single_line_sql(sql)),
        };
        query_matches
            && e.window_is(window, request.time_zone.as_deref())
            && e.zone_is(request.time_zone.as_deref())
            && e.parameters_are(&request.parameter_values)
    }
}

/// AMC's answer to downloadUrls before its results are ready is the message "Execution with ID <id>
/// is unavailable for download"; its HTTP status is not documented (reference §1: the page gives the
/// message, not the status), and it is seen right after an execution reports `SUCCEEDED`. Whatever its
/// status, it means "not yet": a `Transient` failure, which the state machine retries with backoff,
/// never a fault of the job.
fn not_yet_downloadable(e: ApiError, id: &str) -> SourceError {
    match &e {
        ApiError::Status { message, .. } if message.contains("unavailable for download") => SourceError::Transient(
            format!("AMC execution {id} is not yet available for download: {message}"),
        ),
        _ => e.into(),
    }
}

impl ReportSource for AmcClient {
    type Request = AmcRequest;

    async fn create(&self, request: &AmcRequest, window: &TimeWindow) -> Result<String, SourceError> {
        request.validate().map_err(SourceError::Invalid)?;
        let started = Utc::now() - chrono::Duration::seconds(30);
        let recent = self
            .executions_since(request, Utc::now() - chrono::Duration::days(1))
            .await?;
        let running = recent.iter().filter(|e| e.is_running()).count();
        if running >= amc::MAX_RUNNING as usize {
            tracing::info!(running, instance = %request.instance_id, "AMC instance at its running-execution limit");
            return Err(SourceError::Throttled {
                retry_after: amc::SLOT_WAIT,
            });
        }
        let body = &request.body(window);
        let id = self
            .api
            .create_once(
                move || async move {
                    let value = self
                        .call(
                            &CREATE_EXECUTION,
                            Method::POST,
                            request,
                            "workflowExecutions",
                            Some((EXECUTION_CONTENT_TYPE, body)),
                            &[],
                        )
                        .await?;
                    Ok(Execution::from_value(value, "amc.createWorkflowExecution")?.workflow_execution_id)
                },
                move || async move { self.find_execution(request, window, started).await },
            )
            .await?;
        tracing::info!(execution_id = %id, instance = %request.instance_id, "AMC execution created");
        Ok(id)
    }

    async fn find_existing(
        &self,
        request: &AmcRequest,
        window: &TimeWindow,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, SourceError> {
        Ok(self.find_execution(request, window, since).await?)
    }

    async fn status(&self, request: &AmcRequest, id: &str) -> Result<RequestStatus, SourceError> {
        let e = self.execution(request, id).await?;
        Ok(match e.status.as_str() {
            "SUCCEEDED" => RequestStatus::Ready,
            "FAILED" | "REJECTED" | "CANCELLED" => RequestStatus::Failed {
                state: e.status.clone(),
                reason: format!(
                    "{}: {}",
                    e.status,
                    e.status_reason.unwrap_or_else(|| "no reason given".into())
                ),
            },
            other => RequestStatus::InProgress {
                state: other.to_owned(),
            },
        })
    }

    async fn documents(&self, request: &AmcRequest, id: &str) -> Result<Vec<SourceDocument>, SourceError> {
        let id = path_segment(id)?;
        let mut urls = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let query: Vec<(&str, String)> = next.iter().map(|t| ("nextToken", t.clone())).collect();
            let value = self
                .call(
                    &AMC,
                    Method::GET,
                    request,
                    &format!("workflowExecutions/{id}/downloadUrls"),
                    None,
                    &query,
                )
                .await
                .map_err(|e| not_yet_downloadable(e, &id))?;
            let page: DownloadUrls =
                serde_json::from_value(value).map_err(|e| SourceError::Transient(e.to_string()))?;
            urls.extend(page.download_urls);
            match page.next_token.filter(|t| !t.is_empty() && t != "[Placeholder]") {
                Some(t) => next = Some(t),
                None => break,
            }
        }
        urls.into_iter()
            .enumerate()
            .map(|(i, url)| {
                Ok(SourceDocument {
                    document: Document {
                        source_id: format!("{id}/{i}"),
                        url: self
                            .api
                            .download_url(url)
                            .map_err(|e| SourceError::Unusable(e.to_string()))?,
                        encryption: Encryption::None,
                        compression: Compression::None,
                        format: ContentFormat::Csv,
                    },
                    expires_at: None,
                    produced_at: None,
                    size: None,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_is_made_single_line_without_touching_literals() {
        let sql = "-- reach by campaign\nSELECT campaign,\n\tCOUNT(DISTINCT user_id) AS reach /* users */\nFROM dsp_impressions\nWHERE note = 'a  b -- c'\nGROUP BY 1";
        assert_eq!(
            single_line_sql(sql),
            "SELECT campaign, COUNT(DISTINCT user_id) AS reach FROM dsp_impressions WHERE note = 'a  b -- c' GROUP BY 1"
        );
        assert_eq!(single_line_sql("SELECT 'it''s'\n"), "SELECT 'it''s'");
    }
}
