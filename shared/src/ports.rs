//! Ports: the narrow traits the use cases depend on. Adapters in [`crate::adapters`] implement them;
//! this module imports nothing but the domain.

use std::future::Future;

use bytes::Bytes;

/// A failed call to an object store, safe to log (no credentials, no URLs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct SinkError {
    /// The operation that failed, e.g. `UploadPart`.
    pub operation: &'static str,
    /// What the store said.
    pub message: String,
    /// Whether repeating the whole transfer may succeed (network trouble, throttling, 5xx).
    pub retryable: bool,
}

/// One uploaded part, as needed to complete a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// The part's ETag as returned by the store.
    pub etag: String,
    /// The part's CRC-32 checksum (base64) when the store computed one.
    pub checksum_crc32: Option<String>,
}

/// An object store that takes large objects as multipart uploads: S3 in production, a local S3
/// implementation in tests.
///
/// Contract:
/// - An object becomes visible at its key only when [`ObjectSink::complete_upload`] or
///   [`ObjectSink::put_object`] succeeds; both replace any object already at that key, so repeating a
///   transfer overwrites rather than duplicates.
/// - [`ObjectSink::abort_upload`] discards every part of an upload; it is safe to call for an upload
///   that has already been aborted.
/// - Parts of one upload may be uploaded concurrently and in any order; part numbers start at 1.
pub trait ObjectSink: Send + Sync {
    /// Starts a multipart upload for `key`; returns the upload id.
    fn begin_upload(&self, key: &str, content_type: &str) -> impl Future<Output = Result<String, SinkError>> + Send;

    /// Uploads one part (at least 5 MiB unless it is the last part).
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        data: Bytes,
    ) -> impl Future<Output = Result<UploadedPart, SinkError>> + Send;

    /// Completes an upload from its parts in part-number order, making the object visible.
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Aborts an upload, discarding its parts.
    fn abort_upload(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Aborts every unfinished multipart upload whose key starts with `prefix` (what a transfer that
    /// was cut off, e.g. by the Lambda deadline, left behind); returns how many it aborted.
    fn abort_uploads_under(&self, prefix: &str) -> impl Future<Output = Result<usize, SinkError>> + Send;

    /// Deletes every object whose key starts with `prefix` (what a run that failed, or an earlier
    /// claim of it, stored) except those whose key is in `keep`; returns how many it deleted.
    fn delete_under(
        &self,
        prefix: &str,
        keep: &std::collections::BTreeSet<String>,
    ) -> impl Future<Output = Result<usize, SinkError>> + Send;

    /// Reads a small object whole (a jobs file); larger than `max_bytes` is an error.
    fn read_small(&self, key: &str, max_bytes: usize) -> impl Future<Output = Result<Bytes, SinkError>> + Send;

    /// Stores a small object in one request.
    fn put_object(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// An Amazon request's progress as one status check sees it. "Not ready yet" is a status, not an error:
/// the state machine waits and asks again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Queued or running; `state` is Amazon's own status word (`IN_QUEUE`, `PROCESSING`, …).
    InProgress {
        /// Amazon's status.
        state: String,
    },
    /// Done: the documents can be listed and downloaded.
    Ready,
    /// Finished without data (SP-API `CANCELLED`, a Slate window without files). Not a failure.
    NoData {
        /// Why, as far as Amazon said.
        reason: String,
    },
    /// Amazon gave up on the request (SP-API `FATAL`, Ads/AMC `FAILED`): `reason` is Amazon's own.
    Failed {
        /// Amazon's final status word (`FATAL`, `FAILED`, `REJECTED`, `CANCELLED`).
        state: String,
        /// Amazon's reason (the FATAL error document, `failureReason`, `statusReason`).
        reason: String,
    },
}

/// One document a ready request produced.
#[derive(Debug)]
pub struct SourceDocument {
    /// What the transfer needs: URL, encryption, compression, format, source id.
    pub document: crate::domain::document::Document,
    /// When the pre-signed URL stops working, when the source says.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the source produced it (Slate: the file timestamp that becomes the watermark).
    pub produced_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its size in bytes, when the source says.
    pub size: Option<u64>,
}

/// Why a call to a source failed, classified for the state machine's Retry/Catch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// Amazon or a shared quota says to wait: retry after `retry_after` (the state machine waits).
    #[error("throttled; retry after {} s", retry_after.as_secs())]
    Throttled {
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// The access token was refused as expired: retry with a fresh token.
    #[error("authorisation failed: {0}")]
    AuthExpired(String),
    /// The credentials were accepted, but what was asked is refused to them even with a freshly
    /// refreshed token (an Ads 401 that survives a refresh, an SP-API 403): the wrong profile or
    /// region, or an application without the role. A person must fix the configuration; retrying
    /// does not help.
    #[error("not authorised: {0} (check the profile or account, its region, and the application's roles)")]
    NotAuthorized(String),
    /// The refresh token or the application was refused by Login with Amazon: a person must
    /// re-authorise; retrying does not help.
    #[error("credentials refused: {0}")]
    CredentialsRefused(String),
    /// Network trouble, 5xx, an unreadable answer: retry.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Amazon (or our client-side validation) refused the request as asked: fix the job.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request or document does not exist (any more).
    #[error("not found: {0}")]
    NotFound(String),
    /// Amazon's answer cannot be used although the job is fine: an id that cannot go in a URL, an
    /// answer that contradicts an earlier one (polled `DONE`, then no document), an encoding this
    /// pipeline does not read. Retrying does not help; a person must look.
    #[error("Amazon's answer cannot be used: {0}")]
    Unusable(String),
}

/// A source of Amazon reports: create a request for a window, check its status, list its documents.
///
/// Contract:
/// - [`ReportSource::create`] never makes a second Amazon request for one call, even when it retries
///   internally: an ambiguous failure is resolved by looking for the request it may have made (or by
///   the API's own duplicate detection). The caller persists the returned id before anything else.
/// - [`ReportSource::status`] is one check; it never waits.
/// - [`ReportSource::documents`] may be called again (e.g. after a URL expired) and returns fresh URLs.
pub trait ReportSource: Send + Sync {
    /// What the job asks this source for (report type and marketplaces, SQL, ad product and columns…).
    type Request: Send + Sync;

    /// Creates (or finds) the Amazon request for `window`; returns its id.
    fn create(
        &self,
        request: &Self::Request,
        window: &crate::domain::TimeWindow,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Looks for a request for `window` that an earlier, interrupted attempt made since `since` (a
    /// Lambda that created the request and died before recording its id). `Ok(None)` when there is
    /// none, or when the source's own duplicate detection makes the search unnecessary (Ads v3 answers a
    /// repeated create with 425 and the existing id; Slate requests are not created at all).
    fn find_existing(
        &self,
        request: &Self::Request,
        window: &crate::domain::TimeWindow,
        since: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Option<String>, SourceError>> + Send {
        let _ = (request, window, since);
        async { Ok(None) }
    }

    /// Checks the request's status once.
    fn status(
        &self,
        request: &Self::Request,
        id: &str,
    ) -> impl Future<Output = Result<RequestStatus, SourceError>> + Send;

    /// Lists the documents of a ready request, with fresh download URLs.
    fn documents(
        &self,
        request: &Self::Request,
        id: &str,
    ) -> impl Future<Output = Result<Vec<SourceDocument>, SourceError>> + Send;
}

/// Why the job store refused or failed an operation. A refused conditional write is an outcome the
/// caller handles ([`StoreError::StaleState`]), not a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The run is not in a status the operation may leave (another step got there first).
    #[error("the run is {found}, not one of {expected}")]
    StaleState {
        /// The statuses the operation accepts, comma-separated.
        expected: String,
        /// The run's status, or `MISSING`.
        found: String,
    },
    /// Throttling, 5xx, network trouble: retry.
    #[error("job store unavailable: {0}")]
    Unavailable(String),
    /// Missing table, access denied, an unreadable item: a deployment problem.
    #[error("job store misconfigured: {0}")]
    Misconfigured(String),
    /// Another execution holds the run's lease for this step (a schedule retry, a manual run beside
    /// the schedule, a backfill over a running window): wait until it ends or its lease runs out.
    #[error("another execution ({0}) is on this step of the run")]
    Held(String),
}

/// Runs and watermarks: the durable state of the pipeline.
///
/// Contract: every write is conditional on the state it expects, so concurrent or repeated callers
/// cannot lose each other's updates; a refused condition is [`StoreError::StaleState`].
pub trait JobStore: Send + Sync {
    /// Creates the run for `key` in status `CLAIMED`, or returns the run that already exists (a
    /// duplicate schedule fire, a retried step). A `FAILED` run is re-claimed: back to `CLAIMED`,
    /// `claims` + 1, request id and documents cleared.
    fn claim_run(
        &self,
        key: &crate::domain::run::RunKey,
        source: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<crate::domain::run::RunRecord, StoreError>> + Send;

    /// The run for `key`, if any (strongly consistent).
    fn run(
        &self,
        key: &crate::domain::run::RunKey,
    ) -> impl Future<Output = Result<Option<crate::domain::run::RunRecord>, StoreError>> + Send;

    /// Notes, in a `CLAIMED` run, that `owner` (an execution) is about to make the create call, and
    /// keeps the first such time. `owner` takes the run's create lease until `lease_until`; a run whose
    /// lease another owner holds, unexpired, is [`StoreError::Held`] (two executions never create twice).
    /// Returns the run as updated.
    fn begin_create(
        &self,
        key: &crate::domain::run::RunKey,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease_until: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<crate::domain::run::RunRecord, StoreError>> + Send;

    /// Notes that the Lambda deadline cut document `index` of a `READY` run off mid-transfer; returns
    /// whether the run's previous cut was at the same document (it does not fit in one invocation).
    fn note_cut(
        &self,
        key: &crate::domain::run::RunKey,
        index: usize,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes, in a `READY` run, the download lease for `owner` until `lease_until`: only its holder
    /// stores documents and aborts unfinished uploads under the run. Held by another owner,
    /// unexpired: [`StoreError::Held`].
    fn begin_download(
        &self,
        key: &crate::domain::run::RunKey,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease_until: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets, in a `CLAIMED` run, the create call noted by `begin_create`: Amazon answered it with a
    /// refusal (a 429, a 4xx), so it created nothing, and the next attempt creates without searching.
    fn abandon_create(
        &self,
        key: &crate::domain::run::RunKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the Amazon request id: `CLAIMED` → `REQUESTED`. Recording the same id again succeeds.
    fn record_request(
        &self,
        key: &crate::domain::run::RunKey,
        request_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<crate::domain::run::RunRecord, StoreError>> + Send;

    /// Counts one status check of a `REQUESTED` run whose count was `seen` when read, and stores
    /// Amazon's status word; returns the count. Counts once however often the write is sent: when the
    /// count is no longer `seen` (this write landed and was retried, or another check counted), nothing
    /// is added and the count stored is returned. `StaleState` when the run is no longer `REQUESTED`.
    fn record_poll(
        &self,
        key: &crate::domain::run::RunKey,
        seen: u32,
        amazon_status: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Records a job refused before it could have a run, where the operator's status shows runs. A
    /// refusal recorded twice (a retried step) is kept twice at most; it expires with the runs' TTL.
    fn record_refused_job(
        &self,
        refused: &crate::domain::run::RefusedJob,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one call of a looping step (create, status check, download) on the run's current claim,
    /// and returns the count: the bound of the run's wait loops (see
    /// [`crate::steps::budget::MAX_STEP_CALLS`]). A new claim starts again from zero. `StaleState` when
    /// the run does not exist.
    fn count_step_call(
        &self,
        key: &crate::domain::run::RunKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Moves the run from one of `from` to `to`, setting `update`'s fields; a finished status also sets
    /// the item's TTL. Returns the run as updated.
    fn transition(
        &self,
        key: &crate::domain::run::RunKey,
        from: &[crate::domain::run::RunStatus],
        to: crate::domain::run::RunStatus,
        update: crate::domain::run::RunUpdate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<crate::domain::run::RunRecord, StoreError>> + Send;

    /// Records document `index` (0-based) of a `READY` run: its record is stored apart from the run
    /// (in as many pieces as its objects need), then the run counts it and adds its bytes and rows.
    /// Recording an index that is already counted is a no-op, so a retried download may record again.
    fn record_document(
        &self,
        key: &crate::domain::run::RunKey,
        index: usize,
        record: &crate::domain::document::DocumentRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The records of the first `count` documents of the run (its `document_count`), in order.
    fn documents(
        &self,
        key: &crate::domain::run::RunKey,
        count: usize,
    ) -> impl Future<Output = Result<Vec<crate::domain::document::DocumentRecord>, StoreError>> + Send;

    /// Whether the incremental job `job` has already stored the file `file_id` (in any run, any window).
    fn is_ingested(&self, job: &str, file_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that the incremental job `job` has stored the files `file_ids` (a run that ended).
    fn mark_ingested(
        &self,
        job: &str,
        file_ids: &[String],
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The job's watermark for incremental sources (the newest file already stored).
    fn watermark(
        &self,
        job: &str,
    ) -> impl Future<Output = Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>> + Send;

    /// Moves the watermark forward to `to`; never backwards. Returns whether it moved.
    fn advance_watermark(
        &self,
        job: &str,
        to: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Makes `claim` the current run of `unit`, unless the current one's request is later (or as
    /// late, with a greater run id), and records the pull in the day's record
    /// ([`crate::domain::day_state::DayRecord`]): one more pull, the rows of the pull it replaces kept
    /// as the previous rows. The write is conditional on the current run it read, so concurrent
    /// claims cannot lose each other's pulls; the same claim made again (a retried step) changes
    /// nothing and answers `true`. Returns whether `claim` is now current.
    fn claim_current(
        &self,
        unit: &CurrentUnit,
        claim: &CurrentClaim,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The current run of `unit`, read consistently; `None` before any run succeeded for it.
    fn current(&self, unit: &CurrentUnit) -> impl Future<Output = Result<Option<CurrentClaim>, StoreError>> + Send;

    /// Records, in the day's record, an attempt at `unit` that ended without making it current (it
    /// failed, or Amazon had no data), unless a later-requested attempt is recorded already: the record
    /// keeps the latest. `job` and `final_due` are the attempt's job's, kept where the record has
    /// none yet. Recording the same attempt again changes nothing.
    fn record_day_attempt(
        &self,
        unit: &CurrentUnit,
        job: &str,
        final_due: chrono::NaiveDate,
        attempt: &crate::domain::day_state::DayAttempt,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The day records of `table` and `account` from `first` to `last` (both included), oldest
    /// first; a day without a record is absent. Read consistently.
    fn day_records(
        &self,
        table: &str,
        account: &str,
        first: chrono::NaiveDate,
        last: chrono::NaiveDate,
    ) -> impl Future<Output = Result<Vec<crate::domain::day_state::DayRecord>, StoreError>> + Send;
}

/// What one run can be current for: a table's data day of one account (see [`crate::steps::current`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUnit {
    /// The table (`ads_reports_spcampaigns`).
    pub table: String,
    /// The `account` partition's value.
    pub account: String,
    /// The data day: a row's day for a report split by day, else its window's first day.
    pub day: chrono::NaiveDate,
}

/// The run whose rows are current for a [`CurrentUnit`], and where they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentClaim {
    /// The run.
    pub run_id: String,
    /// When the run's Amazon request was made: the later request has the fresher data.
    pub requested_at: chrono::DateTime<chrono::Utc>,
    /// `s3://bucket/key` of every object holding the unit's rows (none: the run had no rows that day).
    pub paths: Vec<String>,
    /// What the pull was: the day's age, whether final, its rows, its job and the day its final
    /// pull is due.
    pub pull: PullFacts,
}

/// What a pull of a day was, as its day record keeps it (see [`crate::domain::day_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFacts {
    /// The job.
    pub job: String,
    /// The day's age at the run's firing ([`crate::domain::job::Job::pull_age`]).
    pub age: i64,
    /// Whether the pull's figures are final by the job's finality policy.
    pub is_final: bool,
    /// The day's rows in the run, where counted.
    pub rows: Option<u64>,
    /// The day on which the day's final pull is due, by the job's policy.
    pub final_due: chrono::NaiveDate,
}

/// The primary key of a run's item in the job table (`pk`/`sk`). Part of the [`JobStore`] contract
/// beyond its methods: the state machine's failure handler writes a failed run's reason to this item
/// itself (a DynamoDB `UpdateItem` task), so the key travels in every step's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableKey {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
}

impl TableKey {
    /// The key of a run: `JOB#{job}` / `RUN#{start}#{end}` (RFC 3339, milliseconds, UTC).
    pub fn of_run(key: &crate::domain::run::RunKey) -> Self {
        let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Self {
            pk: format!("JOB#{}", key.job),
            sk: format!("RUN#{}#{}", at(key.window.start), at(key.window.end)),
        }
    }
}

/// Quotas shared by every concurrent Lambda (Amazon's limits are per seller or per instance, not per
/// process).
pub trait Quotas: Send + Sync {
    /// Takes one token from the bucket `name` (refilled at `rate` per second up to `burst`). `Ok(None)`
    /// when a token was taken; `Ok(Some(wait))` when the bucket is empty and a token will be there
    /// after `wait`.
    fn take_token(
        &self,
        name: &str,
        rate: f64,
        burst: u32,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Option<std::time::Duration>, StoreError>> + Send;

    /// Takes one of `max` slots of the counter `name` for `holder` until `now + lease`, or renews the
    /// lease `holder` has; idempotent per holder. A slot whose lease ran out counts as free: its holder
    /// died without giving it back (a run failed by the state machine itself), and a counter must not
    /// stay full for ever. `Ok(false)` when every slot is held by others with time left.
    fn acquire_slot(
        &self,
        name: &str,
        holder: &str,
        max: u32,
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives `holder`'s slot back; a no-op if it holds none.
    fn release_slot(&self, name: &str, holder: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One place, shared by every function, where access tokens are cached until they expire.
///
/// Contract: a token is never stored in plain text (whoever may read the store must not read a bearer
/// token); a cache that cannot seal tokens caches none. A token that cannot be read back is `Ok(None)` or
/// an error, and callers then refresh instead.
pub trait TokenCache: Send + Sync {
    /// The cached token of a credential set, if any (it may be stale: check it).
    fn cached_token(
        &self,
        credentials: &str,
    ) -> impl Future<Output = Result<Option<crate::domain::credentials::AccessToken>, StoreError>> + Send;

    /// Caches a token of a credential set until it expires.
    fn store_token(
        &self,
        credentials: &str,
        token: &crate::domain::credentials::AccessToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A credential set as stored: the LWA application, the refresh token, the Amazon region.
#[derive(Debug, Clone)]
pub struct StoredCredentials {
    /// Client id, client secret, refresh token.
    pub credentials: crate::domain::credentials::Credentials,
    /// The region whose endpoints the credentials are for.
    pub region: crate::domain::Region,
    /// The Login with Amazon token endpoint the credential set names (`tokenUrl`), when it names one;
    /// otherwise the source's documented host ([`crate::domain::credentials::TokenHost`]).
    pub token_url: Option<String>,
    /// The secret version they were read from.
    pub version_id: Option<String>,
}

/// Why credentials could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No such secret (or no value in it yet).
    #[error("secret {0:?} does not exist or has no value yet")]
    NotFound(String),
    /// The secret's value is not a credential set; the message names the missing or bad field.
    #[error("secret {secret:?} is not a credential set: {message}")]
    Malformed {
        /// The secret id.
        secret: String,
        /// What is wrong (never the value).
        message: String,
    },
    /// Throttling, 5xx, network trouble: retry.
    #[error("secrets store unavailable: {0}")]
    Unavailable(String),
    /// Access denied, a KMS key that cannot be used: a deployment problem.
    #[error("secrets store misconfigured: {0}")]
    Misconfigured(String),
}

/// Where credential sets live (Secrets Manager).
///
/// Contract: a rotated refresh token is written as a new version of the same secret; the previous
/// version stays readable (never lose the last good token).
pub trait SecretStore: Send + Sync {
    /// Reads the current credential set of `secret_id`.
    fn credentials(&self, secret_id: &str) -> impl Future<Output = Result<StoredCredentials, SecretError>> + Send;

    /// Writes `stored` with `refresh_token` replacing its refresh token, as a new current version.
    /// Idempotent: writing the same token again creates no further version.
    fn store_refresh_token(
        &self,
        secret_id: &str,
        stored: &StoredCredentials,
        refresh_token: &secrecy::SecretString,
    ) -> impl Future<Output = Result<(), SecretError>> + Send;
}

/// How a start of a named execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// An execution runs under the name: started now, or (same name and input, still running) the one
    /// an earlier call started; the service answers both alike.
    Started {
        /// The execution's ARN.
        execution_arn: String,
    },
    /// An execution of that name exists already, ended or with another input: nothing was started.
    AlreadyExists,
}

/// Why an execution could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// Throttling, 5xx, network trouble: retry.
    #[error("the workflow service is unavailable: {0}")]
    Unavailable(String),
    /// Access denied, no such state machine, an input it refuses: a deployment problem.
    #[error("the workflow service refused the start: {0}")]
    Misconfigured(String),
}

/// The pipeline's state machine, whose executions are started by name (Step Functions).
///
/// Contract: names are unique per state machine (for 90 days in Step Functions); starting under a name
/// already used starts nothing and says so ([`StartOutcome::AlreadyExists`]), so a start that is
/// repeated — a retried invocation, a schedule delivered twice — makes one execution.
pub trait Executions: Send + Sync {
    /// Starts an execution named `name` on `input` (a JSON document).
    fn start(&self, name: &str, input: &str) -> impl Future<Output = Result<StartOutcome, WorkflowError>> + Send;
}

/// How a table's objects are stored, which decides its SerDe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableFormat {
    /// Tab-separated, a header line first (read by position).
    Tsv,
    /// RFC 4180 comma-separated, a header line first (read by position).
    Csv,
    /// One JSON object per line (read by name).
    JsonLines,
    /// Parquet, typed (read by name).
    Parquet,
}

/// A table of the data catalog as the pipeline keeps it: every column a string, partitioned by
/// `account` and `dt` with partition projection, so that no partition is ever registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// The table's name (lower case, letters, digits and `_`).
    pub name: String,
    /// What it holds, for people.
    pub description: String,
    /// The columns: the name in the catalog (lower case, letters, digits and `_`) and the name in the
    /// data (the header, or the JSON key), in the order of the data.
    pub columns: Vec<TableColumn>,
    /// How its objects are stored.
    pub format: TableFormat,
    /// `s3://bucket/prefix/` under which every partition lies.
    pub location: String,
    /// Where one partition lies, with `${account}` and `${dt}` in it (Athena's
    /// `storage.location.template`).
    pub location_template: String,
    /// The values of `account` (the projection's enum), sorted.
    pub accounts: std::collections::BTreeSet<String>,
    /// The first day of `dt` (the projection's range runs from it to now).
    pub first_day: chrono::NaiveDate,
    /// A table of the current rows: each partition holds a `symlink.txt` listing the objects to read
    /// (`SymlinkTextInputFormat`, see [`crate::steps::current`]), rather than the objects themselves.
    pub current: bool,
}

/// One column of a [`TableDefinition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    /// The column's name in the catalog.
    pub name: String,
    /// Its name in the data.
    pub source: String,
    /// Its type (`string` for a text format).
    pub kind: crate::domain::document::ColumnKind,
}

/// A table as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTable {
    /// Its definition.
    pub definition: TableDefinition,
    /// The catalog's version of it, for an update that must not overwrite another.
    pub version: Option<String>,
}

/// Why the catalog could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Another writer changed the table first (it exists already, or its version moved): read it
    /// again and retry.
    #[error("the table changed meanwhile: {0}")]
    Conflict(String),
    /// A table of that name exists that the pipeline does not keep (made by hand or a crawler).
    #[error("{0}")]
    Foreign(String),
    /// Throttling, 5xx, network trouble: retry.
    #[error("the data catalog is unavailable: {0}")]
    Unavailable(String),
    /// Access denied, no such database: a deployment problem.
    #[error("the data catalog refused the call: {0}")]
    Misconfigured(String),
}

/// A view of the catalog: a query over the database's tables (an Athena view), every column a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDefinition {
    /// The view's name.
    pub name: String,
    /// What it shows, for people.
    pub description: String,
    /// Its query (Trino SQL; tables named without their database).
    pub sql: String,
    /// The columns the query returns, in order, with their types: a view must declare what its query
    /// returns, or Athena refuses it as stale.
    pub columns: Vec<(String, crate::domain::document::ColumnKind)>,
}

/// The data catalog the tables are registered in (the Glue Data Catalog).
///
/// Contract: [`Catalog::create_table`] fails with [`CatalogError::Conflict`] when the table exists;
/// [`Catalog::update_table`] fails so when the table's version is no longer `version`.
pub trait Catalog: Send + Sync {
    /// The table `name`, if it exists.
    fn table(&self, name: &str) -> impl Future<Output = Result<Option<CatalogTable>, CatalogError>> + Send;

    /// Creates a table.
    fn create_table(&self, table: &TableDefinition) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Replaces a table's definition, if its version is still `version` (a new version of the table).
    fn update_table(
        &self,
        table: &TableDefinition,
        version: Option<&str>,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;

    /// Creates a view, or replaces the pipeline's view of that name.
    fn put_view(&self, view: &ViewDefinition) -> impl Future<Output = Result<(), CatalogError>> + Send;
}

/// What registering a run's table changed, as its manifest and run record say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    /// The run's columns made a new table.
    Created,
    /// The run's columns are the table's.
    Unchanged,
    /// The run brought new columns (after the table's, or, read by name, anywhere): a new version of
    /// the table has them; earlier rows read them as null.
    Added {
        /// The new columns, as the data names them.
        columns: Vec<String>,
    },
    /// The run's columns differ from the table's: columns missing, moved, or inserted before the
    /// table's last, or another format. Its columns the table lacks are added to it where the
    /// format allows (see `steps::catalog`).
    Drifted {
        /// The table's columns the run lacks.
        missing: Vec<String>,
        /// The run's columns the table lacks.
        extra: Vec<String>,
        /// Whether columns both have stand in another order.
        reordered: bool,
        /// Whether the run's files are of another format than the table's (the table is left as it
        /// was).
        format_changed: bool,
        /// Whether the run's TSV or CSV files were stored in the table's column order rather than
        /// the documents' (see `transfer::conform`), so that the table reads them correctly.
        #[serde(default)]
        conformed: bool,
    },
}

/// The table a run's data was registered in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableRecord {
    /// The catalog's database.
    pub database: String,
    /// The table.
    pub table: String,
    /// What the run changed.
    pub schema: SchemaChange,
}
