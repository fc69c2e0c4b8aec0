//! download-decrypt: streams the run's documents into S3, writes the manifest, ends the run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::domain::day_state::Cause;
use crate::domain::document::DocumentRecord;
use crate::domain::iso;
use crate::domain::job::OutputFormat;
use crate::domain::run::{RunRecord, RunStatus, RunUpdate};
use crate::ports::{JobStore, ObjectSink, SchemaChange, SourceDocument};
use crate::steps::catalog::{column_order, register_table, widened};
use crate::steps::current::make_current;
use crate::steps::days::{publish, record_attempt};
use crate::steps::failure::{clear_run_objects, fail_run, note_refusal, within_step_bound};
use crate::steps::quota::release_quota;
use crate::steps::{BoundSource, Deadline, Ports, RunContext, RunRef, Services, StepError};
use crate::transfer::{
    Destination, ErrorClass, MANIFEST_FILE_NAME, Manifest, OutputMode, Totals, TransferOptions, transfer_document,
};

/// What download-decrypt returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOutput {
    /// `DONE`, or `CONTINUE`: the Lambda deadline came first; call again (no retry is spent).
    pub outcome: DownloadOutcome,
    /// The run (`SUCCEEDED`, or `NO_DATA`; `READY` to continue).
    #[serde(flatten)]
    pub run: RunRef,
    /// `s3://bucket/key` of the manifest; `None` for a run without data.
    pub manifest: Option<String>,
    /// Sums over the documents stored.
    pub totals: Totals,
}

/// Whether download-decrypt finished the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DownloadOutcome {
    /// The run ended (`SUCCEEDED` or `NO_DATA`).
    Done,
    /// The Lambda deadline came before every document was stored: the documents stored are kept,
    /// and the next call goes on from the first one not stored.
    Continue,
}

/// How long an execution holds a run's download lease: above download-decrypt's Lambda timeout.
const DOWNLOAD_LEASE: chrono::Duration = chrono::Duration::minutes(20);

/// Moves every document of a `READY` run into S3, then writes the manifest and marks the run
/// `SUCCEEDED` (and, for Slate, moves the job's watermark forward).
///
/// Idempotent and resumable: a document already recorded on the run is not transferred again, keys are
/// deterministic, and a run that already succeeded returns its manifest. When the Lambda deadline
/// comes first, the step answers `CONTINUE` (the state machine calls it again without spending a
/// retry): the documents stored are kept, a document cut off mid-transfer has its unfinished uploads
/// aborted and starts again, and nothing partial is ever visible. A document cut off twice in a row
/// does not fit in one invocation and fails the run (`SourceFailed`, naming `DownloadMemoryMB`).
/// Errors: `NotReady` (request not done), `IntegrityFailed` (recorded on the run), `Transient`,
/// `InvalidJob`.
pub async fn download_decrypt<P: Ports>(
    services: &Services<P>,
    event: serde_json::Value,
    deadline: Deadline,
) -> Result<DownloadOutput, StepError> {
    let ctx = RunContext::from_event(event)?;
    let span = tracing::info_span!("download-decrypt", job = %ctx.job.name, run_id = %ctx.key.run_id());
    async {
        // Boxed: the download's future is deep enough that the wrapper overflows rustc's query depth
        // when the function's future is laid out.
        let result = Box::pin(download(services, &ctx, deadline)).await;
        within_step_bound(&services.store, &ctx, "download-decrypt", result, |out| {
            (out.outcome == DownloadOutcome::Continue)
                .then(|| "the Lambda deadline came before every document was stored".to_owned())
        })
        .await
    }
    .instrument(span)
    .await
}

async fn download<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    deadline: Deadline,
) -> Result<DownloadOutput, StepError> {
    let store = &services.store;
    let bucket = &services.settings.bucket;
    let run = store
        .run(&ctx.key)
        .await?
        .ok_or_else(|| StepError::NotReady("the run has not been created yet".into()))?;
    let finished = |run: &RunRecord, totals: Totals| DownloadOutput {
        outcome: DownloadOutcome::Done,
        run: RunRef::from(run),
        manifest: run.manifest_key.as_ref().map(|key| format!("s3://{bucket}/{key}")),
        totals,
    };
    match run.status {
        RunStatus::Ready => {}
        RunStatus::Succeeded | RunStatus::NoData => {
            tracing::info!(status = %run.status, "the run has already ended; returning its result");
            let records = store.documents(&ctx.key, run.document_count).await?;
            return Ok(finished(&run, Totals::of(&records)));
        }
        RunStatus::Failed => {
            return Err(StepError::SourceFailed(
                run.failure_reason.unwrap_or_else(|| "the run failed".into()),
            ));
        }
        status => return Err(StepError::NotReady(format!("the run is {status}, not READY"))),
    }
    let request_id = run
        .request_id
        .clone()
        .ok_or_else(|| StepError::NotReady("the run has no request id".into()))?;
    // One execution at a time stores the run's documents; only the lease holder aborts what an
    // earlier attempt left unfinished under the run.
    let now = Utc::now();
    store
        .begin_download(&ctx.key, &ctx.owner, now, now + DOWNLOAD_LEASE)
        .await?;
    let prefix = ctx.run_prefix();
    let leftovers = services.sink.abort_uploads_under(&format!("{prefix}/")).await?;
    if leftovers > 0 {
        tracing::info!(
            uploads = leftovers,
            "aborted the unfinished uploads of an earlier attempt"
        );
    }
    // Nothing recorded yet in this claim: whatever is under the run (an earlier claim that failed, an
    // attempt cut off before its first record) goes, so that the run's objects are its own only.
    // Objects a current pointer names stay (see `clear_run_objects`); this claim's own objects are
    // then named apart from them, and replace them once it has re-pointed those days.
    if run.document_count == 0 {
        clear_run_objects(services, ctx, &BTreeSet::new()).await?;
    }
    let claim = claim_stem(run.claims);
    let session = services.session(&ctx.job).await?;
    let source = services.bind(&ctx.job, &session).await?;
    let mut records = store.documents(&ctx.key, run.document_count).await?;
    let mut documents = list_documents(services, ctx, &source, &request_id, &records).await?;
    let newest = documents.iter().filter_map(|d| d.produced_at).max();
    for (i, record) in records.iter().enumerate() {
        if documents.get(i).map(|d| d.source_id.as_str()) != Some(record.source_id.as_str()) {
            let error = StepError::SourceFailed(format!(
                "the documents of request {request_id} changed since an earlier attempt stored {} of them",
                records.len()
            ));
            return Err(fail_run(store, ctx, error).await);
        }
    }
    let mut options = TransferOptions {
        output: match (ctx.job.output.keep_compressed, ctx.job.output.format) {
            (true, _) => OutputMode::KeepCompressed,
            (false, OutputFormat::Parquet) => OutputMode::Parquet,
            (false, OutputFormat::Text) => OutputMode::Decompress,
        },
        column_kinds: std::sync::Arc::new(ctx.job.column_kinds()),
        max_output_bytes: ctx.job.limits.max_document_bytes,
        max_expansion_ratio: ctx.job.limits.max_expansion_ratio,
        column_order: column_order(services, ctx, &records).await?,
        // A kept stream is stored as delivered: its window is its unit.
        split_by_day: (!ctx.job.output.keep_compressed)
            .then(|| ctx.job.source.rules().day_column())
            .flatten(),
        ..TransferOptions::default()
    };
    let total = documents.len();
    let time_left = deadline.remaining(std::time::Duration::ZERO);
    tracing::info!(
        documents = total,
        already_stored = records.len(),
        time_left_ms = time_left.map(|d| d.as_millis() as u64),
        "downloading"
    );
    // The margin keeps time to record progress and return; a short invocation keeps a quarter back.
    let margin = match time_left {
        Some(left) => services.settings.deadline_margin.min(left / 4),
        None => services.settings.deadline_margin,
    };
    // A call cut short without storing a document, twice in a row at the same one, is not going to
    // store it: the run fails then, instead of continuing for ever.
    let first = records.len();
    let cut_short = async |index: usize, records: &[DocumentRecord]| {
        if index == first && store.note_cut(&ctx.key, index).await? {
            let error = StepError::SourceFailed(format!(
                "document {} of {total} was cut off by the Lambda deadline twice in a row: it does not fit in \
                 one invocation (raise DownloadMemoryMB, which buys CPU)",
                index + 1
            ));
            return Err(fail_run(store, ctx, error).await);
        }
        Ok(to_continue(&run, records))
    };
    for index in first..total {
        let destination = Destination {
            key_stem: format!("{prefix}/{claim}{index:05}"),
        };
        let mut refreshed = false;
        let record = loop {
            let remaining = deadline.remaining(margin);
            if remaining.is_some_and(|r| r.is_zero()) {
                tracing::info!(
                    stored = index,
                    total,
                    "the Lambda deadline is near; continuing in the next call"
                );
                return cut_short(index, &records).await;
            }
            let document = documents
                .get_mut(index)
                .and_then(|d| d.document.take())
                .ok_or_else(|| StepError::Transient("the document list shrank between calls".into()))?;
            let transfer = transfer_document(services.downloads(), &services.sink, document, &destination, &options);
            let result = match remaining {
                None => transfer.await,
                Some(limit) => match tokio::time::timeout(limit, transfer).await {
                    Ok(result) => result,
                    Err(_) => {
                        let aborted = services
                            .sink
                            .abort_uploads_under(&destination.key_stem)
                            .await
                            .unwrap_or_default();
                        tracing::warn!(
                            index,
                            total,
                            aborted,
                            "the Lambda deadline came mid-transfer; uploads aborted"
                        );
                        return cut_short(index, &records).await;
                    }
                },
            };
            match result {
                Ok(record) => break record,
                Err(e) if e.class() == ErrorClass::UrlExpired && !refreshed => {
                    tracing::info!(index, "the download URL expired; asking the source for fresh ones");
                    documents = list_documents(services, ctx, &source, &request_id, &records).await?;
                    refreshed = true;
                }
                Err(e) => {
                    let error = StepError::from(e);
                    return Err(if error.is_retryable() {
                        error
                    } else {
                        fail_run(store, ctx, error).await
                    });
                }
            }
        };
        tracing::info!(
            index,
            total,
            bytes_in = record.bytes_in,
            bytes_out = record.bytes_out,
            objects = record.objects.len(),
            "document stored"
        );
        store.record_document(&ctx.key, index, &record).await?;
        options.column_order = widened(options.column_order.take(), &record);
        records.push(record);
    }

    mark_ingested(services, ctx, &records).await?;
    // One rule for "no data" across sources: Amazon says so (a cancelled report, no file in the
    // window), or every document it delivered holds no data rows. Nothing is stored then, and no
    // manifest is written.
    let (status, update, stored) = if records.iter().all(|r| r.objects.is_empty()) {
        let update = RunUpdate {
            failure_reason: Some(format!(
                "no data: the {} document(s) Amazon delivered hold no data rows",
                records.len()
            )),
            ..RunUpdate::default()
        };
        // Recorded in the job table only: a run without data stores nothing in the bucket (its days'
        // status objects are written by the job's next success).
        if let Some(reason) = &update.failure_reason {
            record_attempt(store, ctx, &run, Cause::NoData, reason).await;
        }
        (RunStatus::NoData, update, Totals::of(&records))
    } else {
        let manifest_key = format!("{prefix}/{MANIFEST_FILE_NAME}");
        // The table first, so that the run is queryable once its manifest exists; a retry after a
        // failed registration finds the documents stored and registers again (it is idempotent).
        let table = match Box::pin(register_table(services, ctx, &records)).await {
            Err(error @ StepError::IntegrityFailed(_)) => {
                // Files the table would read misaligned are not left for it to read.
                clear_run_objects(services, ctx, &BTreeSet::new()).await?;
                return Err(fail_run(store, ctx, error).await);
            }
            other => other?,
        };
        let schema_note = table.as_ref().and_then(|t| match &t.schema {
            drift @ SchemaChange::Drifted { .. } => Some(format!(
                "the columns drifted from table {}.{}: {drift:?}",
                t.database, t.table
            )),
            _ => None,
        });
        let catalogued = table.is_some();
        let mut manifest = Manifest::new(manifest_context(ctx, &request_id), records);
        manifest.table = table;
        manifest.write(&services.sink, &manifest_key).await?;
        // Last, once the run is complete: its rows become the current ones of the days it covers.
        if catalogued {
            let days = make_current(services, ctx, &run, &manifest.documents).await?;
            tracing::info!(days = days.len(), "the run's rows are current");
            publish_days(services, ctx).await;
        }
        if run.claims > 1 {
            // What an earlier claim left because pointers named it is named by them no more.
            let own = manifest
                .documents
                .iter()
                .flat_map(|d| &d.objects)
                .map(|o| o.key.clone())
                .collect();
            clear_run_objects(services, ctx, &own).await?;
        }
        let update = RunUpdate {
            manifest_key: Some(manifest_key),
            schema_note,
            ..RunUpdate::default()
        };
        (RunStatus::Succeeded, update, manifest.totals)
    };
    let run = store
        .transition(&ctx.key, &[RunStatus::Ready], status, update, Utc::now())
        .await?;
    release_quota(store, ctx).await;
    if let Some(newest) = newest.filter(|_| ctx.job.source.rules().incremental()) {
        let moved = store.advance_watermark(&ctx.job.name, newest).await?;
        tracing::info!(watermark = %newest, moved, "watermark");
    }
    services.persist_session(&session).await?;
    match status {
        RunStatus::Succeeded => {
            crate::steps::metrics::run_succeeded(ctx.job.source.kind(), &ctx.job.name, stored.rows, stored.bytes_out);
            tracing::info!(
                documents = stored.documents,
                objects = stored.objects,
                bytes_in = stored.bytes_in,
                bytes_out = stored.bytes_out,
                rows = stored.rows,
                "run succeeded"
            );
        }
        _ => tracing::info!("run ended with no data"),
    }
    Ok(finished(&run, stored))
}

/// Brings the days' status objects up to date ([`crate::steps::days::publish`]); a failure is logged,
/// not raised: the records in the job table are the truth, and the job's next success writes them.
async fn publish_days<P: Ports>(services: &Services<P>, ctx: &RunContext) {
    if let Err(e) = publish(services, ctx).await {
        tracing::warn!(error = %e, "the day status objects could not be written; the next run writes them");
    }
}

/// What starts the names of a claim's objects: nothing for the run's first claim, `c{n}-` for a
/// later one, so that its objects never overwrite those an earlier claim left for current pointers.
fn claim_stem(claims: u32) -> String {
    if claims > 1 {
        format!("c{claims}-")
    } else {
        String::new()
    }
}

/// What a call cut short by the Lambda deadline answers: the run, still `READY`, and what is stored.
fn to_continue(run: &RunRecord, records: &[DocumentRecord]) -> DownloadOutput {
    DownloadOutput {
        outcome: DownloadOutcome::Continue,
        run: RunRef::from(run),
        manifest: None,
        totals: Totals::of(records),
    }
}

/// The request's documents, less (for an incremental source) the files another run of the job
/// already stored; `own` are the files this run has recorded, which always stay listed.
async fn list_documents<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    source: &BoundSource,
    request_id: &str,
    own: &[crate::domain::document::DocumentRecord],
) -> Result<Vec<Pending>, StepError> {
    let documents = match source.documents(request_id).await {
        Ok(documents) => documents,
        Err(e) => return Err(note_refusal(services, &ctx.job.credentials, e.into()).await),
    };
    let mut pending = Vec::with_capacity(documents.len());
    for document in documents {
        // An incremental source's window may list files another window of the job already stored
        // (lookback, backfill, a re-run): each file is stored once per job.
        if ctx.job.source.rules().incremental()
            && !own.iter().any(|r| r.source_id == document.document.source_id)
            && services
                .store
                .is_ingested(&ctx.job.name, &document.document.source_id)
                .await?
        {
            tracing::info!(file = %document.document.source_id, "already stored by another run of the job; skipped");
            continue;
        }
        pending.push(Pending::from(document));
    }
    Ok(pending)
}

/// Records, for an incremental source, that the run's documents are stored: no other window of the
/// job lists them again.
async fn mark_ingested<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    records: &[crate::domain::document::DocumentRecord],
) -> Result<(), StepError> {
    if ctx.job.source.rules().incremental() {
        let ids: Vec<String> = records.iter().map(|r| r.source_id.clone()).collect();
        services.store.mark_ingested(&ctx.job.name, &ids, Utc::now()).await?;
    }
    Ok(())
}

/// A listed document whose transfer has not started.
struct Pending {
    document: Option<crate::domain::document::Document>,
    produced_at: Option<chrono::DateTime<Utc>>,
    source_id: String,
}

impl From<SourceDocument> for Pending {
    fn from(d: SourceDocument) -> Self {
        Self {
            source_id: d.document.source_id.clone(),
            produced_at: d.produced_at,
            document: Some(d.document),
        }
    }
}

fn manifest_context(ctx: &RunContext, request_id: &str) -> BTreeMap<String, String> {
    let source = &ctx.job.source;
    BTreeMap::from([
        ("job".to_owned(), ctx.job.name.clone()),
        ("run_id".to_owned(), ctx.key.run_id()),
        ("source".to_owned(), source.kind().to_owned()),
        ("account".to_owned(), source.account()),
        ("report".to_owned(), source.report()),
        ("request_id".to_owned(), request_id.to_owned()),
        ("window_start".to_owned(), iso(ctx.window.start)),
        ("window_end".to_owned(), iso(ctx.window.end)),
        ("scheduled_time".to_owned(), iso(ctx.scheduled)),
        ("slice".to_owned(), ctx.slice.to_string()),
    ])
}
