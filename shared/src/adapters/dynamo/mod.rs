//! The job table in DynamoDB: runs, watermarks, shared quotas and the shared access-token cache.
//!
//! One table, string keys `pk` (partition) and `sk` (sort), TTL attribute `expiresAt` (epoch seconds):
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | run | `JOB#{job}` | `RUN#{start}#{end}` (RFC 3339) | `runId`, `status`, `requestId`, `claims`, `polls`, `stepCalls` (the bound of its wait loops), `createStartedAt`, `createOwner`/`createLeaseUntil` and `downloadOwner`/`downloadLeaseUntil` (the execution on that step, epoch ms), `failureReason`, `manifestKey`, `schemaNote`, `documentCount`, `bytesOut`, `rowsOut`, `cutDocument` (the document the Lambda deadline last cut off), timestamps; `expiresAt` once finished |
//! | document | `JOB#{job}` | `DOC#{start}#{end}#{index:06}` | `record`: the document's record (JSON) without its objects; `objectCount`; `expiresAt` |
//! | document's objects | `JOB#{job}` | `DOC#{start}#{end}#{index:06}#{piece:04}` | `objects`: up to 200 stored objects (JSON each); `expiresAt` |
//! | watermark | `JOB#{job}` | `WATERMARK` | `watermark` (epoch ms of the newest file stored) |
//! | token bucket | `QUOTA#{name}` | `BUCKET` | `tokens`, `refilledAt` (epoch ms), `version` (each write increments it; the next is conditional on it) |
//! | slot counter | `QUOTA#{name}` | `SLOTS` | `holders` (map of run id → lease end, epoch ms) |
//! | ingested file | `JOB#{job}` | `FILE#{file id}` | `ingestedAt`: an incremental job (Slate) stored this file; no window lists it again |
//! | current run and day record | `CURRENT#{table}#{account}` | `DAY#{yyyy-mm-dd}` | the run whose rows are current for that day (see [`crate::steps::current`]) and what is known of the day ([`crate::domain::day_state`]); see [`days`] |
//! | access token | `TOKEN#{secret id}` | `ACCESS_TOKEN` | `sealedToken`, `dataKey`, `nonce` (binary), `keyId`, `validUntil`; `expiresAt` = token expiry |
//!
//! Access tokens are stored sealed (KMS envelope encryption, see [`crate::adapters::kms`]), never in
//! plain text: without a token key ([`DynamoJobStore::with_token_sealer`]) the store caches no token.
//!
//! A job's runs share a partition, so "the runs of job X, newest window last" is one `Query`.
//! Every write is conditional on the state it expects (see [`crate::ports::JobStore`]); a refused
//! condition is re-read and reported as [`StoreError::StaleState`] unless the write had in fact
//! already happened (a retried step), in which case the caller gets the stored result.
//!
//! Concurrency: the token bucket is read, refilled in memory, and written back with a condition on
//! the `version` it read (optimistic locking; a lost race re-reads). Slots are a map of holders to
//! the end of their lease: setting a holder's lease is idempotent, and the condition
//! `size(holders) < max OR attribute_exists(holders.#holder)` keeps the count at most `max` across every
//! concurrent Lambda. When the slots are full, holders whose lease ran out are removed (each on the
//! condition that its lease is still the one read) and the slot is asked for again.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::adapters::kms::{NONCE_LEN, Sealed, TokenSealer};
use crate::adapters::sdk_failure;
use crate::domain::TimeWindow;
use crate::domain::credentials::AccessToken;
use crate::domain::day_state::{DayAttempt, DayRecord};
use crate::domain::document::{DocumentRecord, StoredObject};
use crate::domain::run::{RefusedJob, RunKey, RunLease, RunRecord, RunStatus, RunUpdate};

/// The partition of the jobs refused before they could have a run (sort key `{at}#{job}`).
const REFUSED_PK: &str = "REFUSED";
use crate::ports::{CurrentClaim, CurrentUnit, JobStore, Quotas, StoreError, TableKey, TokenCache};

type Item = HashMap<String, AttributeValue>;

mod days;

/// How long finished runs are kept before DynamoDB's TTL deletes them, by default.
pub const DEFAULT_RUN_TTL_DAYS: u32 = 90;
/// Optimistic-locking attempts on a contended token bucket before reporting it unavailable.
const BUCKET_ATTEMPTS: usize = 8;

/// The job table.
#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    run_ttl: chrono::Duration,
    sealer: Option<TokenSealer>,
}

impl DynamoJobStore {
    /// A store over `table`; finished runs expire after `run_ttl_days`.
    pub fn new(client: Client, table: impl Into<String>, run_ttl_days: u32) -> Self {
        Self {
            client,
            table: table.into(),
            run_ttl: chrono::Duration::days(i64::from(run_ttl_days)),
            sealer: None,
        }
    }

    /// The same store, sharing access tokens sealed under `sealer`'s key. Without one, tokens are not
    /// shared at all ([`TokenCache`] reads nothing and writes nothing): plain-text tokens are never stored.
    pub fn with_token_sealer(mut self, sealer: TokenSealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The runs of `job`, oldest window first (one `Query` over the job's partition).
    pub async fn runs_of(&self, job: &str) -> Result<Vec<RunRecord>, StoreError> {
        collect_runs(async |start| {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
                .expression_attribute_values(":pk", s(format!("JOB#{job}")))
                .expression_attribute_values(":run", s("RUN#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
        })
        .await
    }

    /// The jobs refused before they could have a run, newest first, at most `limit`
    /// ([`JobStore::record_refused_job`]).
    pub async fn refused_jobs(&self, limit: usize) -> Result<Vec<RefusedJob>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(REFUSED_PK))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        out.items()
            .iter()
            .map(|item| {
                Ok(RefusedJob {
                    job: get_s(item, "job").unwrap_or_default().to_owned(),
                    reason: get_s(item, "reason").unwrap_or_default().to_owned(),
                    scheduled_time: get_s(item, "scheduledTime").map(str::to_owned),
                    execution: get_s(item, "execution").map(str::to_owned),
                    at: get_time(item, "at")?.ok_or_else(|| unreadable("at"))?,
                })
            })
            .collect()
    }

    /// Every run in the table, most recently changed first (a paginated `Scan` filtered to runs):
    /// the operator's overview. The table keeps finished runs for the TTL only, so it stays small.
    pub async fn all_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = collect_runs(async |start| {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :job) AND begins_with(sk, :run)")
                .expression_attribute_values(":job", s("JOB#"))
                .expression_attribute_values(":run", s("RUN#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Scan", e))?;
            Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
        })
        .await?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
        Ok(runs)
    }

    fn run_key(key: &RunKey) -> Item {
        let TableKey { pk, sk } = TableKey::of_run(key);
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    /// The item at `key`, read consistently.
    async fn read_item(&self, key: Item) -> Result<GetItemOutput, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    /// Reads a run; `StaleState` naming what was found, for a refused condition.
    async fn stale(&self, key: &RunKey, expected: &[RunStatus]) -> StoreError {
        let found = match self.run(key).await {
            Ok(Some(run)) => run.status.to_string(),
            Ok(None) => "MISSING".into(),
            Err(e) => return e,
        };
        StoreError::StaleState {
            expected: expected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            found,
        }
    }

    /// Takes `lease` on the run for `owner` until `lease_until` (and sets `lease.also_set`), in one
    /// conditional write: the run must be in `lease.status`, and the lease free, expired, or the
    /// owner's own. Returns the run's attributes as updated.
    async fn take_lease(
        &self,
        key: &RunKey,
        lease: &Lease,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Item>, StoreError> {
        let (owner_attribute, until_attribute) = (format!("{}Owner", lease.step), format!("{}LeaseUntil", lease.step));
        let also_set = if lease.also_set.is_empty() {
            String::new()
        } else {
            format!("{}, ", lease.also_set)
        };
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression(format!(
                "SET {also_set}{owner_attribute} = :owner, {until_attribute} = :until, updatedAt = :now"
            ))
            .condition_expression(format!(
                "#s = :status AND (attribute_not_exists({owner_attribute}) OR {owner_attribute} = :owner \
                 OR {until_attribute} < :nowms)"
            ))
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":status", s(lease.status.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(lease_until.timestamp_millis()))
            .expression_attribute_values(":nowms", n(now.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => Ok(out.attributes().cloned()),
            Err(e) if is_condition_failed(&e) => Err(self.held_or_stale(key, &owner_attribute, &[lease.status]).await),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Why a lease was refused: the run is in the expected status, so another owner holds it
    /// ([`StoreError::Held`]); or it is not ([`StoreError::StaleState`]).
    async fn held_or_stale(&self, key: &RunKey, owner_attribute: &str, expected: &[RunStatus]) -> StoreError {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .consistent_read(true)
            .send()
            .await;
        match item {
            Ok(out) => {
                let status = out.item().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok());
                let owner = out
                    .item()
                    .and_then(|i| i.get(owner_attribute))
                    .and_then(|v| v.as_s().ok());
                match (status, owner) {
                    (Some(status), Some(owner)) if expected.iter().any(|e| e.as_str() == status) => {
                        StoreError::Held(owner.chars().take(80).collect())
                    }
                    _ => self.stale(key, expected).await,
                }
            }
            Err(e) => store_error("GetItem", e),
        }
    }
}

/// One step's lease on a run: attributes `{step}Owner` and `{step}LeaseUntil` (epoch ms), taken in
/// `status`, together with `also_set` (an update clause, or empty).
struct Lease {
    step: &'static str,
    status: RunStatus,
    also_set: &'static str,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Maps an SDK error to the store's error; `ConditionalCheckFailedException` must be handled by the
/// caller before this (it is an outcome, not a failure).
fn store_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = sdk_failure(&err);
    let message = format!("{operation}: {}", failure.summary);
    if failure.refused(&[
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflictException",
    ]) {
        StoreError::Misconfigured(message)
    } else {
        StoreError::Unavailable(message)
    }
}

/// The runs of every page `page` returns, given the key to start after (none for the first page)
/// and answering the page's items and the key to continue from (none or empty after the last).
async fn collect_runs(
    page: impl AsyncFnMut(Option<Item>) -> Result<(Vec<Item>, Option<Item>), StoreError>,
) -> Result<Vec<RunRecord>, StoreError> {
    collect_items(page, |item| parse_run(item).map(Some)).await
}

/// What `parse` makes of the items of every page `page` returns (as [`collect_runs`]), leaving out
/// the items it answers `None` for.
async fn collect_items<T>(
    mut page: impl AsyncFnMut(Option<Item>) -> Result<(Vec<Item>, Option<Item>), StoreError>,
    mut parse: impl FnMut(&Item) -> Result<Option<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let (items, next) = page(start.take()).await?;
        for item in &items {
            out.extend(parse(item)?);
        }
        match next {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(out),
        }
    }
}

/// Whether a conditional write was made: `false` when its condition refused it.
fn applied<T, E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(store_error("UpdateItem", e)),
    }
}

fn is_condition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(service) if service.err().code() == Some("ConditionalCheckFailedException"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn unreadable(what: &str) -> StoreError {
    StoreError::Misconfigured(format!("a stored run is unreadable: {what}"))
}

fn get_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get_s(item, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| unreadable(name))
        })
        .transpose()
}

fn parse_run(item: &Item) -> Result<RunRecord, StoreError> {
    let required_time = |name: &str| get_time(item, name)?.ok_or_else(|| unreadable(name));
    let window = TimeWindow::new(required_time("windowStart")?, required_time("windowEnd")?)
        .map_err(|_| unreadable("window"))?;
    Ok(RunRecord {
        key: RunKey {
            job: get_s(item, "job").ok_or_else(|| unreadable("job"))?.to_owned(),
            window,
        },
        run_id: get_s(item, "runId").ok_or_else(|| unreadable("runId"))?.to_owned(),
        source: get_s(item, "source").unwrap_or_default().to_owned(),
        status: get_s(item, "status")
            .ok_or_else(|| unreadable("status"))?
            .parse()
            .map_err(|_| unreadable("status"))?,
        request_id: get_s(item, "requestId").map(str::to_owned),
        amazon_status: get_s(item, "amazonStatus").map(str::to_owned),
        claims: get_n(item, "claims").unwrap_or(1),
        polls: get_n(item, "polls").unwrap_or(0),
        create_started_at: get_time(item, "createStartedAt")?,
        created_at: required_time("createdAt")?,
        updated_at: required_time("updatedAt")?,
        failure_reason: get_s(item, "failureReason").map(str::to_owned),
        manifest_key: get_s(item, "manifestKey").map(str::to_owned),
        schema_note: get_s(item, "schemaNote").map(str::to_owned),
        document_count: get_n(item, "documentCount").unwrap_or(0),
        bytes_out: get_n(item, "bytesOut").unwrap_or(0),
        rows: get_n(item, "rowsOut"),
        owners: ["createOwner", "downloadOwner"]
            .into_iter()
            .filter_map(|attribute| get_s(item, attribute).map(str::to_owned))
            .collect(),
        lease: ["download", "create"].into_iter().find_map(|step| {
            let owner = get_s(item, &format!("{step}Owner"))?;
            let until = get_n::<i64>(item, &format!("{step}LeaseUntil"))?;
            Some(RunLease {
                owner: owner.to_owned(),
                until: DateTime::from_timestamp_millis(until)?,
            })
        }),
    })
}

/// Stored objects per item of a document's record: 200 keys of at most 1 KiB each stay well inside
/// DynamoDB's 400 KB item.
const OBJECTS_PER_ITEM: usize = 200;

/// What the sort keys of the run's documents begin with: `DOC#{start}#{end}#`.
fn documents_prefix(key: &RunKey) -> String {
    let TableKey { sk, .. } = TableKey::of_run(key);
    format!("DOC#{}#", sk.trim_start_matches("RUN#"))
}

/// The sort key of document `index` of the run: `DOC#{start}#{end}#{index:06}`.
fn document_sort_key(key: &RunKey, index: usize) -> String {
    format!("{}{index:06}", documents_prefix(key))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Misconfigured(e.to_string()))
}

fn run_item(run: &RunRecord) -> Item {
    let mut item = DynamoJobStore::run_key(&run.key);
    item.insert("job".into(), s(&run.key.job));
    item.insert("runId".into(), s(&run.run_id));
    item.insert("windowStart".into(), s(rfc3339(run.key.window.start)));
    item.insert("windowEnd".into(), s(rfc3339(run.key.window.end)));
    item.insert("source".into(), s(&run.source));
    item.insert("status".into(), s(run.status.as_str()));
    item.insert("claims".into(), n(run.claims));
    item.insert("polls".into(), n(run.polls));
    item.insert("createdAt".into(), s(rfc3339(run.created_at)));
    item.insert("updatedAt".into(), s(rfc3339(run.updated_at)));
    item.insert("documentCount".into(), n(0));
    item.insert("bytesOut".into(), n(0));
    item
}

fn returned_run(attributes: Option<&Item>) -> Result<RunRecord, StoreError> {
    parse_run(attributes.ok_or_else(|| unreadable("no attributes returned"))?)
}

impl JobStore for DynamoJobStore {
    async fn claim_run(&self, key: &RunKey, source: &str, now: DateTime<Utc>) -> Result<RunRecord, StoreError> {
        let fresh = RunRecord::claimed(key.clone(), source, now);
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(run_item(&fresh)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => return Ok(fresh),
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(store_error("PutItem", e)),
        }
        let existing = self.run(key).await?.ok_or_else(|| unreadable("claimed run vanished"))?;
        if existing.status != RunStatus::Failed {
            return Ok(existing);
        }
        // A failed run is claimed again by a later fire of its schedule (or a manual re-run).
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression(
                "SET #s = :claimed, claims = claims + :one, polls = :zero, stepCalls = :zero, documentCount = :zero, \
                 bytesOut = :zero, updatedAt = :now \
                 REMOVE requestId, createStartedAt, failureReason, manifestKey, schemaNote, amazonStatus, expiresAt, rowsOut, \
                 cutDocument, createOwner, createLeaseUntil, downloadOwner, downloadLeaseUntil",
            )
            .condition_expression("#s = :failed")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":claimed", s(RunStatus::Claimed.as_str()))
            .expression_attribute_values(":failed", s(RunStatus::Failed.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => returned_run(out.attributes()),
            Err(e) if is_condition_failed(&e) => self.run(key).await?.ok_or_else(|| unreadable("run vanished")),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn run(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        let out = self.read_item(Self::run_key(key)).await?;
        out.item().map(parse_run).transpose()
    }

    async fn begin_create(
        &self,
        key: &RunKey,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<RunRecord, StoreError> {
        let lease = Lease {
            step: "create",
            status: RunStatus::Claimed,
            also_set: "createStartedAt = if_not_exists(createStartedAt, :now)",
        };
        let attributes = self.take_lease(key, &lease, owner, now, lease_until).await?;
        returned_run(attributes.as_ref())
    }

    async fn begin_download(
        &self,
        key: &RunKey,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let lease = Lease {
            step: "download",
            status: RunStatus::Ready,
            also_set: "",
        };
        self.take_lease(key, &lease, owner, now, lease_until).await?;
        Ok(())
    }

    async fn abandon_create(&self, key: &RunKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression("REMOVE createStartedAt SET updatedAt = :now")
            .condition_expression("#s = :claimed")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":claimed", s(RunStatus::Claimed.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The run moved on (another attempt recorded its request): nothing to forget.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn record_request(
        &self,
        key: &RunKey,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<RunRecord, StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression("SET #s = :requested, requestId = :id, updatedAt = :now")
            .condition_expression("#s = :claimed")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":claimed", s(RunStatus::Claimed.as_str()))
            .expression_attribute_values(":requested", s(RunStatus::Requested.as_str()))
            .expression_attribute_values(":id", s(request_id))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => returned_run(out.attributes()),
            Err(e) if is_condition_failed(&e) => match self.run(key).await? {
                Some(run) if run.request_id.as_deref() == Some(request_id) => Ok(run),
                _ => Err(self.stale(key, &[RunStatus::Claimed]).await),
            },
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn record_poll(
        &self,
        key: &RunKey,
        seen: u32,
        amazon_status: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        // Conditional on the count read, so that the SDK's retry of a write that did land (its answer
        // lost) counts nothing twice: the retry is refused, and the count read back is the answer.
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression("SET polls = :next, amazonStatus = :state, updatedAt = :now")
            .condition_expression("#s = :requested AND polls = :seen")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":requested", s(RunStatus::Requested.as_str()))
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":next", n(seen.saturating_add(1)))
            .expression_attribute_values(":state", s(amazon_status))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await
        {
            Ok(_) => Ok(seen.saturating_add(1)),
            Err(e) if is_condition_failed(&e) => match self.run(key).await? {
                Some(run) if run.status == RunStatus::Requested && run.polls > seen => Ok(run.polls),
                _ => Err(self.stale(key, &[RunStatus::Requested]).await),
            },
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn record_refused_job(&self, refused: &RefusedJob) -> Result<(), StoreError> {
        let mut item = Self::key(
            REFUSED_PK.to_owned(),
            &format!("{}#{}", rfc3339(refused.at), refused.job),
        );
        item.insert("job".into(), s(&refused.job));
        item.insert(
            "reason".into(),
            s(refused.reason.chars().take(2_000).collect::<String>()),
        );
        item.insert("at".into(), s(rfc3339(refused.at)));
        item.insert("expiresAt".into(), n((refused.at + self.run_ttl).timestamp()));
        if let Some(t) = &refused.scheduled_time {
            item.insert("scheduledTime".into(), s(t));
        }
        if let Some(e) = &refused.execution {
            item.insert("execution".into(), s(e));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("PutItem", e))
    }

    async fn count_step_call(&self, key: &RunKey, now: DateTime<Utc>) -> Result<u32, StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression("SET updatedAt = :now ADD stepCalls :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
        {
            Ok(out) => Ok(out.attributes().and_then(|a| get_n(a, "stepCalls")).unwrap_or(0)),
            Err(e) if is_condition_failed(&e) => Err(StoreError::StaleState {
                expected: "a run".into(),
                found: "MISSING".into(),
            }),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn transition(
        &self,
        key: &RunKey,
        from: &[RunStatus],
        to: RunStatus,
        update: RunUpdate,
        now: DateTime<Utc>,
    ) -> Result<RunRecord, StoreError> {
        let mut sets = vec!["#s = :to", "updatedAt = :now"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .return_values(ReturnValue::AllNew);
        if let Some(reason) = update.failure_reason {
            sets.push("failureReason = :reason");
            request = request.expression_attribute_values(":reason", s(reason));
        }
        if let Some(manifest) = update.manifest_key {
            sets.push("manifestKey = :manifest");
            request = request.expression_attribute_values(":manifest", s(manifest));
        }
        if let Some(note) = update.schema_note {
            sets.push("schemaNote = :schema");
            request = request.expression_attribute_values(":schema", s(note));
        }
        if let Some(state) = update.amazon_status {
            sets.push("amazonStatus = :state");
            request = request.expression_attribute_values(":state", s(state));
        }
        if to.is_finished() {
            sets.push("expiresAt = :ttl");
            request = request.expression_attribute_values(":ttl", n((now + self.run_ttl).timestamp()));
        }
        let mut allowed = Vec::new();
        for (i, status) in from.iter().enumerate() {
            let name = format!(":from{i}");
            request = request.expression_attribute_values(&name, s(status.as_str()));
            allowed.push(name);
        }
        let request = request
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(format!("#s IN ({})", allowed.join(", ")));
        match request.send().await {
            Ok(out) => returned_run(out.attributes()),
            Err(e) if is_condition_failed(&e) => match self.run(key).await? {
                Some(run) if run.status == to => Ok(run),
                _ => Err(self.stale(key, from).await),
            },
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn record_document(&self, key: &RunKey, index: usize, record: &DocumentRecord) -> Result<(), StoreError> {
        // The record first, in items of its own (a retry overwrites them), then the count on the run:
        // a run is never counted with a document whose record is missing.
        let expires = n((Utc::now() + self.run_ttl + chrono::Duration::days(1)).timestamp());
        let doc_sk = document_sort_key(key, index);
        let head = DocumentRecord {
            objects: Vec::new(),
            ..record.clone()
        };
        let pieces: Vec<&[StoredObject]> = record.objects.chunks(OBJECTS_PER_ITEM).collect();
        let mut items = vec![HashMap::from([
            ("record".to_owned(), s(to_json(&head)?)),
            ("objectCount".to_owned(), n(record.objects.len())),
        ])];
        for piece in &pieces {
            let objects = piece.iter().map(|o| to_json(o).map(s)).collect::<Result<Vec<_>, _>>()?;
            items.push(HashMap::from([("objects".to_owned(), AttributeValue::L(objects))]));
        }
        for (n_item, mut item) in items.into_iter().enumerate() {
            let sk = match n_item {
                0 => doc_sk.clone(),
                piece => format!("{doc_sk}#{:04}", piece - 1),
            };
            item.extend(Self::key(format!("JOB#{}", key.job), &sk));
            item.insert("expiresAt".to_owned(), expires.clone());
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| store_error("PutItem", e))?;
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .condition_expression("#s = :ready AND documentCount = :index")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":ready", s(RunStatus::Ready.as_str()))
            .expression_attribute_values(":index", n(index))
            .expression_attribute_values(":next", n(index + 1))
            .expression_attribute_values(":bytes", n(record.bytes_out));
        let rows: Option<u64> = record.objects.iter().filter_map(|o| o.rows).reduce(|a, b| a + b);
        update = match rows {
            Some(rows) => update
                .update_expression("SET documentCount = :next ADD bytesOut :bytes, rowsOut :rows")
                .expression_attribute_values(":rows", n(rows)),
            None => update.update_expression("SET documentCount = :next ADD bytesOut :bytes"),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => match self.run(key).await? {
                Some(run) if run.status == RunStatus::Ready && run.document_count > index => Ok(()),
                _ => Err(self.stale(key, &[RunStatus::Ready]).await),
            },
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn note_cut(&self, key: &RunKey, index: usize) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(key)))
            .update_expression("SET cutDocument = :index")
            .condition_expression("#s = :ready")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":ready", s(RunStatus::Ready.as_str()))
            .expression_attribute_values(":index", n(index))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|old| get_n::<usize>(old, "cutDocument"))
                .is_some_and(|previous| previous == index)),
            Err(e) if is_condition_failed(&e) => Err(self.stale(key, &[RunStatus::Ready]).await),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn documents(&self, key: &RunKey, count: usize) -> Result<Vec<DocumentRecord>, StoreError> {
        let prefix = documents_prefix(key);
        let mut records: Vec<DocumentRecord> = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :doc)")
                .expression_attribute_values(":pk", s(format!("JOB#{}", key.job)))
                .expression_attribute_values(":doc", s(&prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            // Sorted: each document's item, then its pieces of objects. Items past `count` (a retry
            // that stored a document without counting it yet) are read and dropped.
            for item in page.items() {
                if let Some(json) = get_s(item, "record") {
                    records.push(serde_json::from_str(json).map_err(|_| unreadable("document record"))?);
                } else if let (Some(AttributeValue::L(objects)), Some(last)) = (item.get("objects"), records.last_mut())
                {
                    for object in objects {
                        let AttributeValue::S(json) = object else {
                            return Err(unreadable("document objects"));
                        };
                        last.objects
                            .push(serde_json::from_str(json).map_err(|_| unreadable("document objects"))?);
                    }
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        if records.len() < count {
            return Err(unreadable("documents missing"));
        }
        records.truncate(count);
        Ok(records)
    }

    async fn watermark(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self.read_item(Self::key(format!("JOB#{job}"), "WATERMARK")).await?;
        Ok(out
            .item()
            .and_then(|item| get_n::<i64>(item, "watermark"))
            .and_then(DateTime::from_timestamp_millis))
    }

    async fn is_ingested(&self, job: &str, file_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("JOB#{job}"), &format!("FILE#{file_id}"))))
            .consistent_read(true)
            .projection_expression("sk")
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item().is_some())
    }

    async fn mark_ingested(&self, job: &str, file_ids: &[String], now: DateTime<Utc>) -> Result<(), StoreError> {
        for id in file_ids {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::key(format!("JOB#{job}"), &format!("FILE#{id}"))))
                .item("ingestedAt", s(rfc3339(now)))
                .send()
                .await
                .map_err(|e| store_error("PutItem", e))?;
        }
        Ok(())
    }

    async fn advance_watermark(&self, job: &str, to: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("JOB#{job}"), "WATERMARK")))
            .update_expression("SET watermark = :to, updatedAt = :now")
            .condition_expression("attribute_not_exists(watermark) OR watermark < :to")
            .expression_attribute_values(":to", n(to.timestamp_millis()))
            .expression_attribute_values(":now", s(rfc3339(Utc::now())))
            .send()
            .await;
        applied(result)
    }

    async fn claim_current(&self, unit: &CurrentUnit, claim: &CurrentClaim) -> Result<bool, StoreError> {
        self.claim_current_day(unit, claim).await
    }

    async fn current(&self, unit: &CurrentUnit) -> Result<Option<CurrentClaim>, StoreError> {
        self.current_of_day(unit).await
    }

    async fn record_day_attempt(
        &self,
        unit: &CurrentUnit,
        job: &str,
        final_due: chrono::NaiveDate,
        attempt: &DayAttempt,
    ) -> Result<(), StoreError> {
        self.record_attempt(unit, job, final_due, attempt).await
    }

    async fn day_records(
        &self,
        table: &str,
        account: &str,
        first: chrono::NaiveDate,
        last: chrono::NaiveDate,
    ) -> Result<Vec<DayRecord>, StoreError> {
        self.records_of_days(table, account, first, last).await
    }
}

impl Quotas for DynamoJobStore {
    async fn take_token(
        &self,
        name: &str,
        rate: f64,
        burst: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let key = Self::key(format!("QUOTA#{name}"), "BUCKET");
        let now_ms = now.timestamp_millis();
        for _ in 0..BUCKET_ATTEMPTS {
            let out = self.read_item(key.clone()).await?;
            let stored = out.item().and_then(|item| {
                Some((
                    get_n::<f64>(item, "tokens")?,
                    get_n::<i64>(item, "refilledAt")?,
                    get_n::<u64>(item, "version").unwrap_or(0),
                ))
            });
            let tokens = match stored {
                None => f64::from(burst),
                Some((tokens, at, _)) => {
                    let elapsed = (now_ms - at).max(0) as f64 / 1000.0;
                    (tokens + elapsed * rate).min(f64::from(burst))
                }
            };
            if tokens < 1.0 {
                let wait = ((1.0 - tokens) / rate).ceil().max(1.0);
                return Ok(Some(Duration::from_secs(wait as u64)));
            }
            // Never move the refill time back (a caller whose clock read came before another's write):
            // the same interval would be refilled twice.
            // A write that read the same state as another must fail: the condition is on a version
            // every write increments (the refill time alone may stay the same).
            let refilled = stored.map_or(now_ms, |(_, at, _)| at.max(now_ms));
            let version = stored.map_or(0, |(_, _, v)| v);
            let mut request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key.clone()))
                .item("tokens", n(tokens - 1.0))
                .item("refilledAt", n(refilled))
                .item("version", n(version + 1));
            request = match stored {
                None => request.condition_expression("attribute_not_exists(pk)"),
                Some((_, at, 0)) => request
                    .condition_expression("refilledAt = :at AND attribute_not_exists(version)")
                    .expression_attribute_values(":at", n(at)),
                Some(_) => request
                    .condition_expression("version = :version")
                    .expression_attribute_values(":version", n(version)),
            };
            match request.send().await {
                Ok(_) => return Ok(None),
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(store_error("PutItem", e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the quota bucket {name} stayed contended"
        )))
    }

    async fn acquire_slot(
        &self,
        name: &str,
        holder: &str,
        max: u32,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(2));
        if self.set_lease(name, holder, max, until).await? {
            return Ok(true);
        }
        if self.sweep_expired(name, now).await? {
            return self.set_lease(name, holder, max, until).await;
        }
        Ok(false)
    }

    async fn release_slot(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::slots_key(name)))
            .update_expression("REMOVE holders.#holder")
            .condition_expression("attribute_type(holders, :map)")
            .expression_attribute_names("#holder", holder)
            .expression_attribute_values(":map", s("M"))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // No counter yet: nothing to give back.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}

impl DynamoJobStore {
    fn slots_key(name: &str) -> Item {
        Self::key(format!("QUOTA#{name}"), "SLOTS")
    }

    /// Sets `holder`'s lease if it holds a slot or one is free; creates the counter on first use.
    async fn set_lease(&self, name: &str, holder: &str, max: u32, until: DateTime<Utc>) -> Result<bool, StoreError> {
        for _ in 0..2 {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::slots_key(name)))
                .update_expression("SET holders.#holder = :until")
                // Without a counter (or with one of the earlier shape) the condition holds and the
                // SET is refused as a ValidationException, answered below.
                .condition_expression(
                    "attribute_not_exists(holders) OR NOT attribute_type(holders, :map) \
                     OR attribute_exists(holders.#holder) OR size(holders) < :max",
                )
                .expression_attribute_names("#holder", holder)
                .expression_attribute_values(":until", n(until.timestamp_millis()))
                .expression_attribute_values(":max", n(max))
                .expression_attribute_values(":map", s("M"))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) if is_condition_failed(&e) => return Ok(false),
                // The counter does not exist yet (or is of the earlier string-set shape): make it an
                // empty map, then try again.
                Err(e) if e.code() == Some("ValidationException") => self.create_counter(name).await?,
                Err(e) => return Err(store_error("UpdateItem", e)),
            }
        }
        Err(StoreError::Misconfigured(format!(
            "the slot counter {name} cannot be written"
        )))
    }

    async fn create_counter(&self, name: &str) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::slots_key(name)))
            .update_expression("SET holders = :empty")
            .condition_expression("attribute_not_exists(holders) OR NOT attribute_type(holders, :map)")
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":map", s("M"))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Removes the holders whose lease ended before `now`; whether any was removed.
    async fn sweep_expired(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::slots_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let Some(AttributeValue::M(holders)) = item.item().and_then(|i| i.get("holders")) else {
            return Ok(false);
        };
        let expired: Vec<(&String, &String)> = holders
            .iter()
            .filter_map(|(holder, until)| match until {
                AttributeValue::N(ms) if ms.parse::<i64>().is_ok_and(|ms| ms < now.timestamp_millis()) => {
                    Some((holder, ms))
                }
                _ => None,
            })
            .collect();
        let mut removed = false;
        for (holder, until) in expired {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::slots_key(name)))
                .update_expression("REMOVE holders.#holder")
                .condition_expression("holders.#holder = :until")
                .expression_attribute_names("#holder", holder)
                .expression_attribute_values(":until", n(until))
                .send()
                .await;
            match result {
                Ok(_) => {
                    tracing::warn!(quota = name, holder = %holder, "removed a slot whose lease ran out");
                    removed = true;
                }
                // Renewed or removed meanwhile.
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(store_error("UpdateItem", e)),
            }
        }
        Ok(removed)
    }
}

impl TokenCache for DynamoJobStore {
    async fn cached_token(&self, credentials: &str) -> Result<Option<AccessToken>, StoreError> {
        let Some(sealer) = &self.sealer else { return Ok(None) };
        let out = self
            .read_item(Self::key(format!("TOKEN#{credentials}"), "ACCESS_TOKEN"))
            .await?;
        let Some(item) = out.item() else { return Ok(None) };
        let bytes = |name: &str| match item.get(name) {
            Some(AttributeValue::B(b)) => Some(b.as_ref().to_vec()),
            _ => None,
        };
        let (Some(ciphertext), Some(encrypted_key), Some(nonce), Some(key_id), Some(valid_until)) = (
            bytes("sealedToken"),
            bytes("dataKey"),
            bytes("nonce").and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok()),
            get_s(item, "keyId"),
            get_time(item, "validUntil")?,
        ) else {
            // An item of another shape (a plain-text token of an older version): not read, replaced on the
            // next refresh.
            return Ok(None);
        };
        let sealed = Sealed {
            key_id: key_id.to_owned(),
            encrypted_key,
            nonce,
            ciphertext,
        };
        Ok(Some(AccessToken {
            token: sealer.open(&sealed, credentials).await?,
            expires_at: valid_until,
        }))
    }

    async fn store_token(&self, credentials: &str, token: &AccessToken) -> Result<(), StoreError> {
        let Some(sealer) = &self.sealer else { return Ok(()) };
        let sealed = sealer.seal(token.token.expose_secret(), credentials).await?;
        let blob = |b: Vec<u8>| AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(format!("TOKEN#{credentials}"), "ACCESS_TOKEN")))
            .item("sealedToken", blob(sealed.ciphertext))
            .item("dataKey", blob(sealed.encrypted_key))
            .item("nonce", blob(sealed.nonce.to_vec()))
            .item("keyId", s(sealed.key_id))
            .item("validUntil", s(rfc3339(token.expires_at)))
            .item("expiresAt", n(token.expires_at.timestamp()))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }
}

/// Creates the job table as the SAM template declares it (for local runs and tests): on-demand, string
/// keys `pk`/`sk`, TTL on `expiresAt`. An existing table is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| StoreError::Misconfigured(e.to_string()))
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::Misconfigured(e.to_string()))
    };
    match client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await
    {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => return Ok(()),
        Err(e) => return Err(store_error("CreateTable", e)),
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expiresAt")
        .enabled(true)
        .build()
        .map_err(|e| StoreError::Misconfigured(e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| store_error("UpdateTimeToLive", e))?;
    Ok(())
}
