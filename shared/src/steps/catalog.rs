//! A run's table in the data catalog: made or brought up to date before the run's manifest is
//! written, so that Athena can query the run as soon as it is complete, with no crawler and no
//! partition to register.
//!
//! One table per source and report (`ads_reports_spcampaigns`, `sp_reports_get_flat_file_…`), because
//! the layout keeps one folder per source and report: every account's runs of that report are rows
//! of one table, `account` and `dt` its projected partitions. Every column is a string, named after
//! the data's header (lower case; anything but letters, digits and `_` becomes `_`).
//!
//! **Current rows and history.** The table shows each data day's current rows only: it is a symlink
//! table over the pointers [`crate::steps::current`] writes (`dt` the data day). `{table}_history`
//! reads every run's objects (`dt` the run's window's first day), lookbacks and re-runs included. An
//! incremental source (Slate) stores each file once, so its table reads its objects directly and has
//! no history table. Both tables are registered, and drift is handled in both alike.
//!
//! **Schema drift.** A run's columns are compared with the table's:
//! - the same: nothing changes;
//! - new columns after the table's (any new key, for JSON Lines and Parquet, which are read by
//!   name): the table gets them, as a new version; earlier rows read them as null;
//! - a TSV or CSV document (read by position) whose columns moved, went missing or were inserted
//!   before the last: it is stored in the table's column order ([`column_order`], applied in the
//!   stream by [`crate::transfer::conform`]): the table's columns in its order, one it lacks empty,
//!   its new ones after them, added to the table. Every version of the table reads every run
//!   correctly, since a table only ever gains columns at its end;
//! - another format: the table is left as it was.
//!
//! Drift is recorded in the manifest and on the run (`schemaNote`) and logged as a warning. Should
//! another run add other columns to the table while this one stores its files in an order of its
//! own (two new versions of a report at once), this run's files would be read misaligned: it fails
//! as `IntegrityFailed` instead, its files deleted, for a re-run to store again.
//!
//! **Changelogs.** A report that is an append-only changelog (Slate's datasets) also gets a view,
//! `{table}_current`, of its current state: per account and key, the row with the greatest update
//! time (the later partition on a tie), unless it is deleted.

use std::collections::BTreeSet;

use crate::domain::document::{ColumnKind, ContentFormat, DocumentRecord};
use crate::domain::job::OutputFormat;
use crate::domain::source::Changelog;
use crate::ports::{
    Catalog, CatalogError, SchemaChange, TableColumn, TableDefinition, TableFormat, TableRecord, ViewDefinition,
};
use crate::steps::{Ports, RunContext, Services, StepError};
use crate::transfer::columnar::PARQUET_CONTENT_TYPE;
use crate::transfer::conform::ColumnOrder;
use crate::transfer::header::column_names;

/// Attempts at a table another writer keeps changing (each one re-reads it).
const ATTEMPTS: usize = 6;

/// Registers the run's table in the catalog, if this function has one and the run stored columns
/// (a TSV, CSV or JSON Lines object whose first line gave them); returns what it changed.
/// Errors: `Transient` (the catalog was unavailable, or kept changing), `Misconfigured` (the catalog
/// refused, or a table of that name is not the pipeline's), `IntegrityFailed` (another run changed
/// the table so that it would read this run's TSV or CSV files misaligned; see the module docs).
pub async fn register_table<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    records: &[DocumentRecord],
) -> Result<Option<TableRecord>, StepError> {
    let (Some(catalog), Some(database)) = (&services.catalog, &services.settings.glue_database) else {
        return Ok(None);
    };
    let Some(wanted) = table_of(ctx, &services.settings.bucket, records) else {
        tracing::info!("the run stored no columns (no TSV, CSV or JSON Lines header): no table registered");
        return Ok(None);
    };
    // Every run's rows (see the module docs); the table itself then shows the current ones.
    let wanted = match history_of(ctx, &wanted) {
        Some(history) => {
            let (table, _) = register(catalog, history.clone()).await.map_err(step_error)?;
            if reads_misaligned(&table, &history) {
                return Err(misaligned(&table, &history));
            }
            current_of(ctx, &services.settings.bucket, wanted, records)
        }
        None => wanted,
    };
    let (table, mut schema) = register(catalog, wanted.clone()).await.map_err(step_error)?;
    if reads_misaligned(&table, &wanted) {
        return Err(misaligned(&table, &wanted));
    }
    if let Some(document) = records.iter().find_map(|r| r.document_columns.as_ref()) {
        schema = conformed(&wanted, document, schema);
    }
    if let Some(view) = ctx
        .job
        .source
        .rules()
        .changelog()
        .and_then(|c| current_view(&table, &c))
    {
        put_view(catalog, &view).await.map_err(step_error)?;
    }
    match &schema {
        SchemaChange::Drifted { .. } => {
            tracing::warn!(table = %wanted.name, ?schema, "the run's columns drifted from its table's")
        }
        _ => tracing::info!(table = %wanted.name, ?schema, "table registered"),
    }
    Ok(Some(TableRecord {
        database: database.clone(),
        table: wanted.name,
        schema,
    }))
}

/// The column order the run's TSV or CSV documents are stored in: its table's columns, widened
/// by what the run already stored (whose columns it adds to the table at its end); `None` without a
/// catalog, for output that is not text, or before the table and the run have columns.
/// Errors: `Transient` (the catalog was unavailable), `Misconfigured` (it refused).
pub async fn column_order<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    records: &[DocumentRecord],
) -> Result<Option<ColumnOrder>, StepError> {
    let (Some(catalog), Some(_)) = (&services.catalog, &services.settings.glue_database) else {
        return Ok(None);
    };
    if ctx.job.output.keep_compressed || ctx.job.output.format != OutputFormat::Text {
        return Ok(None);
    }
    let name = ctx.table();
    let table = catalog.table(&name).await.map_err(step_error)?;
    let order = table.and_then(|t| {
        Some(ColumnOrder {
            format: positional_format(t.definition.format)?,
            columns: sources(&t.definition.columns).into_iter().map(str::to_owned).collect(),
        })
    });
    Ok(records.iter().fold(order, widened))
}

/// `order`, or the columns `record` stored when they extend it (a run's later documents follow its
/// earlier ones).
pub fn widened(order: Option<ColumnOrder>, record: &DocumentRecord) -> Option<ColumnOrder> {
    let Some(format) = stored_format(std::slice::from_ref(record)).and_then(positional_format) else {
        return order;
    };
    match (order, &record.columns) {
        (Some(order), Some(columns))
            if order.format == format && columns.len() > order.columns.len() && columns.starts_with(&order.columns) =>
        {
            Some(ColumnOrder {
                format,
                columns: columns.clone(),
            })
        }
        (None, Some(columns)) => Some(ColumnOrder {
            format,
            columns: columns.clone(),
        }),
        (order, _) => order,
    }
}

/// Whether `table` would read the run's TSV or CSV files (whose columns `stored` has) by positions
/// that are not theirs: another run added other columns in the places this run's new ones take.
fn reads_misaligned(table: &TableDefinition, stored: &TableDefinition) -> bool {
    let positional = matches!(stored.format, TableFormat::Tsv | TableFormat::Csv);
    positional && table.format == stored.format && !sources(&table.columns).starts_with(&sources(&stored.columns))
}

fn misaligned(table: &TableDefinition, stored: &TableDefinition) -> StepError {
    StepError::IntegrityFailed(format!(
        "table {} has columns ({}) in the places this run stored others ({}): another run changed it \
         meanwhile; the run's files are deleted, re-run it to store them in the table's order",
        table.name,
        sources(&table.columns).join(", "),
        sources(&stored.columns).join(", ")
    ))
}

/// The table of every run's rows, `{table}_history` (partitioned by the runs' window's first day),
/// for a report whose table shows the current rows; `None` for another
/// ([`RunContext::shows_current_rows`]).
fn history_of(ctx: &RunContext, table: &TableDefinition) -> Option<TableDefinition> {
    if !ctx.shows_current_rows() {
        return None;
    }
    let mut name = format!("{}_history", table.name);
    name.truncate(255);
    Some(TableDefinition {
        name,
        description: format!(
            "amzpipe: {} report {}, every run's rows, lookbacks, backfills and re-runs included (dt: the \
             run's window's first day); table {} holds the current ones",
            ctx.job.source.kind(),
            ctx.job.source.report(),
            table.name
        ),
        ..table.clone()
    })
}

/// The table of the current rows (see [`crate::steps::current`]): the run's table read through the
/// symlinks under `_current/`, its days those the run's rows have.
fn current_of(ctx: &RunContext, bucket: &str, table: TableDefinition, records: &[DocumentRecord]) -> TableDefinition {
    let (location, location_template) = ctx.current_location(bucket);
    let first_object_day = records.iter().flat_map(|r| &r.objects).filter_map(|o| o.day).min();
    TableDefinition {
        description: format!(
            "amzpipe: {} report {}, the current rows: per account and data day, the run requested last \
             (partitions account and dt, projected; every run's rows are in {}_history)",
            ctx.job.source.kind(),
            ctx.job.source.report(),
            table.name
        ),
        location,
        location_template,
        first_day: first_object_day.map_or(table.first_day, |day| day.min(table.first_day)),
        current: true,
        ..table
    }
}

/// The step error of a catalog failure: `Transient` for a conflict or an unavailable catalog,
/// `Misconfigured` for a refusal.
pub(crate) fn step_error(e: CatalogError) -> StepError {
    match e {
        CatalogError::Conflict(_) | CatalogError::Unavailable(_) => StepError::Transient(e.to_string()),
        CatalogError::Foreign(_) | CatalogError::Misconfigured(_) => StepError::Misconfigured(e.to_string()),
    }
}

fn positional_format(format: TableFormat) -> Option<ContentFormat> {
    match format {
        TableFormat::Tsv => Some(ContentFormat::Tsv),
        TableFormat::Csv => Some(ContentFormat::Csv),
        TableFormat::JsonLines | TableFormat::Parquet => None,
    }
}

fn sources(columns: &[TableColumn]) -> Vec<&str> {
    columns.iter().map(|c| c.source.as_str()).collect()
}

/// What a run stored in the table's order changed: the drift between its documents' columns and the
/// order it stored them in, with the columns it added.
fn conformed(stored: &TableDefinition, document: &[String], change: SchemaChange) -> SchemaChange {
    let stored: Vec<&str> = sources(&stored.columns);
    let extra = match change {
        SchemaChange::Added { columns } => columns,
        SchemaChange::Drifted { extra, .. } => extra,
        SchemaChange::Created | SchemaChange::Unchanged => Vec::new(),
    };
    let data: Vec<&str> = document.iter().map(String::as_str).collect();
    SchemaChange::Drifted {
        missing: stored
            .iter()
            .filter(|c| !data.contains(c))
            .map(|c| (*c).to_owned())
            .collect(),
        extra,
        reordered: moved(&stored, &data),
        format_changed: false,
        conformed: true,
    }
}

/// Whether the columns `a` and `b` both have stand in another order in each.
fn moved(a: &[&str], b: &[&str]) -> bool {
    let in_a: Vec<&&str> = a.iter().filter(|c| b.contains(c)).collect();
    let in_b: Vec<&&str> = b.iter().filter(|c| a.contains(c)).collect();
    in_a != in_b
}

/// Writes the view, retrying when another writer changed it meanwhile (Glue's
/// `ConcurrentModificationException`, `AlreadyExistsException` when two runs create it at once), as
/// [`register`] does for tables: a conflict costs an attempt here, not a retry of the whole step.
pub async fn put_view<C: Catalog>(catalog: &C, view: &ViewDefinition) -> Result<(), CatalogError> {
    retrying_conflicts(&format!("the view {}", view.name), || catalog.put_view(view)).await
}

/// `attempt`, made again while it meets another writer's change (`Conflict`), [`ATTEMPTS`] times at
/// most; the last conflict, naming `what`, when every attempt met one.
async fn retrying_conflicts<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, CatalogError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CatalogError>>,
{
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match attempt().await {
            Err(CatalogError::Conflict(message)) => last = Some(message),
            other => return other,
        }
    }
    Err(CatalogError::Conflict(format!(
        "{what} changed on each of {ATTEMPTS} attempts: {}",
        last.unwrap_or_default()
    )))
}

/// Creates the table, or merges the run's definition into it, retrying when another writer changed
/// it meanwhile; returns the table as it now is and what the run changed.
pub async fn register<C: Catalog>(
    catalog: &C,
    wanted: TableDefinition,
) -> Result<(TableDefinition, SchemaChange), CatalogError> {
    let wanted = &wanted;
    retrying_conflicts(&format!("the table {}", wanted.name), || async move {
        match catalog.table(&wanted.name).await? {
            None => catalog
                .create_table(wanted)
                .await
                .map(|()| (wanted.clone(), SchemaChange::Created)),
            Some(existing) => {
                let (merged, change) = merge(&existing.definition, wanted);
                if merged == existing.definition {
                    return Ok((merged, change));
                }
                catalog
                    .update_table(&merged, existing.version.as_deref())
                    .await
                    .map(|()| (merged, change))
            }
        }
    })
    .await
}

/// The table `wanted` (one run's) makes of `existing`: its accounts and days added, and its columns
/// where the rules of the module docs allow; with what that changes.
pub fn merge(existing: &TableDefinition, wanted: &TableDefinition) -> (TableDefinition, SchemaChange) {
    let mut merged = existing.clone();
    // Where and how the table is read are the pipeline's, as it now lays runs out.
    merged.description.clone_from(&wanted.description);
    merged.location.clone_from(&wanted.location);
    merged.location_template.clone_from(&wanted.location_template);
    merged.current = wanted.current;
    merged.accounts.extend(wanted.accounts.iter().cloned());
    merged.first_day = merged.first_day.min(wanted.first_day);
    let have = sources(&existing.columns);
    let data = sources(&wanted.columns);
    let extra: Vec<String> = data
        .iter()
        .filter(|c| !have.contains(c))
        .map(|c| (*c).to_owned())
        .collect();
    let missing: Vec<String> = have
        .iter()
        .filter(|c| !data.contains(c))
        .map(|c| (*c).to_owned())
        .collect();
    let by_name =
        existing.format == wanted.format && matches!(existing.format, TableFormat::JsonLines | TableFormat::Parquet);
    let appended = data.len() > have.len() && data[..have.len()] == have[..];
    let change = if existing.format != wanted.format {
        drifted(&have, &data, missing, extra, true)
    } else if extra.is_empty() && (by_name || data == have) && missing.is_empty() {
        SchemaChange::Unchanged
    } else if by_name || appended {
        // Names of a prefix of the sources do not depend on what follows: the table's keep theirs.
        let sources: Vec<String> = have
            .iter()
            .map(|c| (*c).to_owned())
            .chain(extra.iter().cloned())
            .collect();
        let names = column_names(&sources);
        for (name, source) in names.into_iter().zip(&sources).skip(have.len()) {
            let kind = wanted
                .columns
                .iter()
                .find(|c| &c.source == source)
                .map_or(ColumnKind::String, |c| c.kind);
            merged.columns.push(TableColumn {
                name,
                source: source.clone(),
                kind,
            });
        }
        if extra.is_empty() {
            // Read by name, a column the run lacks reads as null: nothing to change in the table.
            drifted(&have, &data, missing, extra, false)
        } else if missing.is_empty() {
            SchemaChange::Added { columns: extra }
        } else {
            drifted(&have, &data, missing, extra, false)
        }
    } else {
        drifted(&have, &data, missing, extra, false)
    };
    (merged, change)
}

fn drifted(
    have: &[&str],
    data: &[&str],
    missing: Vec<String>,
    extra: Vec<String>,
    format_changed: bool,
) -> SchemaChange {
    SchemaChange::Drifted {
        missing,
        extra,
        reordered: moved(have, data),
        format_changed,
        conformed: false,
    }
}

/// The current-state view of a changelog table (see the module docs), if the table has the
/// changelog's key, update time and deletion flag.
pub fn current_view(table: &TableDefinition, changelog: &Changelog) -> Option<ViewDefinition> {
    let name_of = |source: &str| {
        table
            .columns
            .iter()
            .find(|c| c.source == source)
            .map(|c| quoted(&c.name))
    };
    let (key, updated, deleted) = (
        name_of(&changelog.key)?,
        name_of(&changelog.updated)?,
        name_of(&changelog.deleted)?,
    );
    let mut columns: Vec<(String, ColumnKind)> = table.columns.iter().map(|c| (c.name.clone(), c.kind)).collect();
    columns.extend([
        ("account".to_owned(), ColumnKind::String),
        ("dt".to_owned(), ColumnKind::String),
    ]);
    let list = columns.iter().map(|(c, _)| quoted(c)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {list} FROM (SELECT *, row_number() OVER (PARTITION BY \"account\", {key} \
         ORDER BY {updated} DESC, \"dt\" DESC) AS amzpipe_rank FROM {table}) \
         WHERE amzpipe_rank = 1 AND coalesce(CAST({deleted} AS varchar), '0') <> '1'",
        table = quoted(&table.name)
    );
    Some(ViewDefinition {
        name: format!("{}_current", table.name),
        description: format!(
            "amzpipe: the current state of the changelog {}: per account and {}, the latest row by {}, deleted rows left out",
            table.name, changelog.key, changelog.updated
        ),
        sql,
        columns,
    })
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The table the run's records make: named after the source and report, its columns from the first
/// document that has them.
pub fn table_of(ctx: &RunContext, bucket: &str, records: &[DocumentRecord]) -> Option<TableDefinition> {
    // The widest: a run's documents are stored in one order, each extending the one before.
    let sources = records.iter().filter_map(|r| r.columns.clone()).max_by_key(Vec::len)?;
    let format = stored_format(records)?;
    let source = &ctx.job.source;
    // Text is read as strings; Parquet holds the types the source publishes.
    let kinds = match format {
        TableFormat::Parquet => ctx.job.column_kinds(),
        _ => std::collections::BTreeMap::new(),
    };
    let columns = column_names(&sources)
        .into_iter()
        .zip(sources)
        .map(|(name, source)| TableColumn {
            name,
            kind: kinds.get(&source).copied().unwrap_or(ColumnKind::String),
            source,
        })
        .collect();
    let (location, location_template) = ctx.table_location(bucket);
    Some(TableDefinition {
        name: ctx.table(),
        description: format!(
            "amzpipe: {} report {} (every account's runs; partitions account and dt, projected)",
            source.kind(),
            source.report()
        ),
        columns,
        format,
        location,
        location_template,
        accounts: BTreeSet::from([ctx.account_segment()]),
        first_day: ctx.window.start.date_naive(),
        current: false,
    })
}

/// The table format of the first object of `records` that has one.
fn stored_format(records: &[DocumentRecord]) -> Option<TableFormat> {
    records
        .iter()
        .flat_map(|r| &r.objects)
        .find_map(|o| match o.content_type.as_str() {
            // A gzip stream kept as delivered (`{name}.{format}.gz`): Athena inflates `.gz` files.
            "application/gzip" => match o.key.strip_suffix(".gz")?.rsplit_once('.')?.1 {
                "tsv" => Some(TableFormat::Tsv),
                "csv" => Some(TableFormat::Csv),
                "jsonl" => Some(TableFormat::JsonLines),
                _ => None,
            },
            t if t == ContentFormat::Tsv.content_type() => Some(TableFormat::Tsv),
            t if t == ContentFormat::Csv.content_type() => Some(TableFormat::Csv),
            t if t == ContentFormat::JsonLines.content_type() => Some(TableFormat::JsonLines),
            t if t == PARQUET_CONTENT_TYPE => Some(TableFormat::Parquet),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::context::table_name;

    fn table(format: TableFormat, columns: &[&str]) -> TableDefinition {
        let sources: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        TableDefinition {
            name: "t".into(),
            description: String::new(),
            columns: column_names(&sources)
                .into_iter()
                .zip(sources)
                .map(|(name, source)| TableColumn {
                    name,
                    source,
                    kind: ColumnKind::String,
                })
                .collect(),
            format,
            location: String::new(),
            location_template: String::new(),
            accounts: BTreeSet::from(["a".to_owned()]),
            first_day: "2026-11-20".parse().expect("a day"),
            current: false,
        }
    }

    #[test]
    fn the_same_columns_change_nothing_but_another_account_and_an_earlier_day_are_added() {
        let existing = table(TableFormat::Tsv, &["order-id", "price"]);
        let mut run = table(TableFormat::Tsv, &["order-id", "price"]);
        run.accounts = BTreeSet::from(["b".to_owned()]);
        run.first_day = "2026-11-01".parse().expect("a day");
        let (merged, change) = merge(&existing, &run);
        assert_eq!(change, SchemaChange::Unchanged);
        assert_eq!(merged.accounts, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(merged.first_day.to_string(), "2026-11-01");
    }

    #[test]
    fn a_column_added_at_the_end_of_a_positional_file_is_added_to_the_table() {
        let existing = table(TableFormat::Csv, &["a", "b"]);
        let (merged, change) = merge(&existing, &table(TableFormat::Csv, &["a", "b", "c"]));
        assert_eq!(
            change,
            SchemaChange::Added {
                columns: vec!["c".into()]
            }
        );
        assert_eq!(sources(&merged.columns), ["a", "b", "c"]);
    }

    #[test]
    fn a_removed_or_reordered_column_of_a_positional_file_is_recorded_and_the_table_kept() {
        let existing = table(TableFormat::Tsv, &["a", "b", "c"]);
        let (merged, change) = merge(&existing, &table(TableFormat::Tsv, &["a", "c"]));
        assert_eq!(merged, existing);
        assert_eq!(
            change,
            SchemaChange::Drifted {
                missing: vec!["b".into()],
                extra: vec![],
                reordered: false,
                format_changed: false,
                conformed: false
            }
        );
        let (merged, change) = merge(&existing, &table(TableFormat::Tsv, &["b", "a", "c"]));
        assert_eq!(merged, existing);
        assert!(
            matches!(change, SchemaChange::Drifted { reordered: true, .. }),
            "{change:?}"
        );
        let (merged, change) = merge(&existing, &table(TableFormat::Tsv, &["a", "x", "b", "c"]));
        assert_eq!(
            merged, existing,
            "a column inserted before the last would misalign the others"
        );
        assert!(matches!(change, SchemaChange::Drifted { .. }), "{change:?}");
    }

    #[test]
    fn json_lines_read_by_name_take_new_keys_anywhere_and_a_missing_key_reads_as_null() {
        let existing = table(TableFormat::JsonLines, &["date", "clicks"]);
        let (merged, change) = merge(&existing, &table(TableFormat::JsonLines, &["cost", "clicks", "date"]));
        assert_eq!(
            change,
            SchemaChange::Added {
                columns: vec!["cost".into()]
            }
        );
        assert_eq!(sources(&merged.columns), ["date", "clicks", "cost"]);
        let (merged, change) = merge(&existing, &table(TableFormat::JsonLines, &["date"]));
        assert_eq!(merged, existing);
        assert!(matches!(change, SchemaChange::Drifted { ref missing, .. } if missing == &["clicks"]));
    }

    #[test]
    fn another_format_is_drift_and_leaves_the_table() {
        let existing = table(TableFormat::Tsv, &["a"]);
        let (merged, change) = merge(&existing, &table(TableFormat::Csv, &["a"]));
        assert_eq!(merged, existing);
        assert!(matches!(
            change,
            SchemaChange::Drifted {
                format_changed: true,
                ..
            }
        ));
    }

    fn record(content_type: &str, columns: &[&str], document: Option<&[&str]>) -> DocumentRecord {
        let json = serde_json::json!({
            "source_id": "d", "encryption": "none", "compression": "gzip", "output": "decompress",
            "bytes_in": 1, "bytes_out": 1, "started_at": "2026-11-23T00:00:00Z",
            "finished_at": "2026-11-23T00:00:01Z", "duration_ms": 1,
            "objects": [{"key": "k", "bytes": 1, "sha256": "", "content_type": content_type, "parts": 1}],
            "columns": columns,
            "document_columns": document,
        });
        serde_json::from_value(json).expect("a record")
    }

    #[test]
    fn a_runs_later_documents_follow_the_widest_order_its_earlier_ones_stored() {
        let tsv = ContentFormat::Tsv.content_type();
        let first = widened(None, &record(tsv, &["a", "b"], None)).expect("an order");
        assert_eq!(first.columns, ["a", "b"]);
        let wider = widened(Some(first.clone()), &record(tsv, &["a", "b", "c"], None)).expect("an order");
        assert_eq!(wider.columns, ["a", "b", "c"]);
        assert_eq!(
            widened(Some(wider.clone()), &record(tsv, &["a", "b"], None)),
            Some(wider.clone()),
            "a narrower document keeps the order"
        );
        let json = ContentFormat::JsonLines.content_type();
        assert_eq!(
            widened(None, &record(json, &["a"], None)),
            None,
            "JSON Lines are read by name"
        );
    }

    #[test]
    fn a_conformed_run_is_drift_naming_what_its_document_lacked_moved_and_added() {
        let stored = table(TableFormat::Tsv, &["a", "b", "c", "new"]);
        let document = ["new".to_owned(), "c".to_owned(), "a".to_owned()];
        let change = conformed(
            &stored,
            &document,
            SchemaChange::Added {
                columns: vec!["new".into()],
            },
        );
        assert_eq!(
            change,
            SchemaChange::Drifted {
                missing: vec!["b".into()],
                extra: vec!["new".into()],
                reordered: true,
                format_changed: false,
                conformed: true
            }
        );
    }

    #[test]
    fn a_table_another_run_widened_differently_would_misread_a_positional_run() {
        let stored = table(TableFormat::Tsv, &["a", "b", "mine"]);
        assert!(reads_misaligned(
            &table(TableFormat::Tsv, &["a", "b", "theirs", "mine"]),
            &stored
        ));
        assert!(!reads_misaligned(
            &table(TableFormat::Tsv, &["a", "b", "mine", "theirs"]),
            &stored
        ));
        let by_name = table(TableFormat::JsonLines, &["a", "b", "mine"]);
        assert!(!reads_misaligned(
            &table(TableFormat::JsonLines, &["theirs", "a", "b", "mine"]),
            &by_name
        ));
    }

    #[test]
    fn names_are_lower_case_identifiers_and_never_collide() {
        let t = table(TableFormat::Tsv, &["Order-ID", "order_id", "", "sku"]);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["order_id", "order_id_2", "col", "sku"]);
        assert_eq!(
            table_name("sp-reports", "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"),
            "sp_reports_get_flat_file_all_orders_data_by_order_date_general"
        );
    }
}
