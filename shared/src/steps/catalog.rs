//! A run's table in the data catalog: made or brought up to date before the run's manifest is
//! written, so that Athena can query the run as soon as it is complete, with no crawler and no
//! partition to register.
//!
//! One table per source and report (`ads_reports_spcampaigns`, `sp_reports_get_flat_file_…`), because
//! the layout keeps one folder per source and report: every account's runs of that report are rows
//! of one table, `account` and `dt` its projected partitions. Every column is a string, named after
//! the data's header (lower case; anything but letters, digits and `_` becomes `_`).
//!
//! **Schema drift.** A run's columns are compared with the table's:
//! - the same: nothing changes;
//! - new columns after the table's (any new key, for JSON Lines, which is read by name): the table
//!   gets them, as a new version; earlier rows read them as null;
//! - anything else for a file read by position (a column missing, moved, or inserted before the
//!   last), or another format: the table is left as it was, the run's files are stored, and the
//!   drift is recorded in the manifest and on the run (`schemaNote`) and logged as a warning — never
//!   a silent misalignment.
//!
//! **Changelogs.** A report that is an append-only changelog (Slate's datasets) also gets a view,
//! `{table}_current`, of its current state: per account and key, the row with the greatest update
//! time (the later partition on a tie), unless it is deleted.

use std::collections::BTreeSet;

use crate::domain::document::{ColumnKind, ContentFormat, DocumentRecord};
use crate::domain::source::Changelog;
use crate::ports::{
    Catalog, CatalogError, SchemaChange, TableColumn, TableDefinition, TableFormat, TableRecord, ViewDefinition,
};
use crate::steps::{Ports, RunContext, Services, StepError};
use crate::transfer::columnar::PARQUET_CONTENT_TYPE;
use crate::transfer::header::{column_names, identifier};

/// Attempts at a table another writer keeps changing (each one re-reads it).
const ATTEMPTS: usize = 6;

/// Registers the run's table in the catalog, if this function has one and the run stored columns
/// (a TSV, CSV or JSON Lines object whose first line gave them); returns what it changed.
/// Errors: `Transient` (the catalog was unavailable, or kept changing), `Misconfigured` (the catalog
/// refused, or a table of that name is not the pipeline's).
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
    let step_error = |e: CatalogError| match e {
        CatalogError::Conflict(_) | CatalogError::Unavailable(_) => StepError::Transient(e.to_string()),
        CatalogError::Foreign(_) | CatalogError::Misconfigured(_) => StepError::Misconfigured(e.to_string()),
    };
    let (table, schema) = register(catalog, wanted.clone()).await.map_err(step_error)?;
    if let Some(view) = ctx
        .job
        .source
        .rules()
        .changelog()
        .and_then(|c| current_view(&table, &c))
    {
        catalog.put_view(&view).await.map_err(step_error)?;
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

/// Creates the table, or merges the run's definition into it, retrying when another writer changed
/// it meanwhile; returns the table as it now is and what the run changed.
pub async fn register<C: Catalog>(
    catalog: &C,
    wanted: TableDefinition,
) -> Result<(TableDefinition, SchemaChange), CatalogError> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let attempt = match catalog.table(&wanted.name).await? {
            None => catalog
                .create_table(&wanted)
                .await
                .map(|()| (wanted.clone(), SchemaChange::Created)),
            Some(existing) => {
                let (merged, change) = merge(&existing.definition, &wanted);
                if merged == existing.definition {
                    return Ok((merged, change));
                }
                catalog
                    .update_table(&merged, existing.version.as_deref())
                    .await
                    .map(|()| (merged, change))
            }
        };
        match attempt {
            Err(CatalogError::Conflict(message)) => last = Some(message),
            other => return other,
        }
    }
    Err(CatalogError::Conflict(format!(
        "the table {} changed on each of {ATTEMPTS} attempts: {}",
        wanted.name,
        last.unwrap_or_default()
    )))
}

/// The table `wanted` (one run's) makes of `existing`: its accounts and days added, and its columns
/// where the rules of the module docs allow; with what that changes.
pub fn merge(existing: &TableDefinition, wanted: &TableDefinition) -> (TableDefinition, SchemaChange) {
    let mut merged = existing.clone();
    merged.accounts.extend(wanted.accounts.iter().cloned());
    merged.first_day = merged.first_day.min(wanted.first_day);
    let have: Vec<&str> = existing.columns.iter().map(|c| c.source.as_str()).collect();
    let data: Vec<&str> = wanted.columns.iter().map(|c| c.source.as_str()).collect();
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
    let common_have: Vec<&&str> = have.iter().filter(|c| data.contains(c)).collect();
    let common_data: Vec<&&str> = data.iter().filter(|c| have.contains(c)).collect();
    SchemaChange::Drifted {
        missing,
        extra,
        reordered: common_have != common_data,
        format_changed,
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
    let mut columns: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    columns.extend(["account".to_owned(), "dt".to_owned()]);
    let list = columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {list} FROM (SELECT *, row_number() OVER (PARTITION BY \"account\", {key} \
         ORDER BY {updated} DESC, \"dt\" DESC) AS amzpipe_rank FROM {table}) \
         WHERE amzpipe_rank = 1 AND coalesce({deleted}, '0') <> '1'",
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
    let sources = records.iter().find_map(|r| r.columns.clone())?;
    let format = records
        .iter()
        .flat_map(|r| &r.objects)
        .find_map(|o| match o.content_type.as_str() {
            t if t == ContentFormat::Tsv.content_type() => Some(TableFormat::Tsv),
            t if t == ContentFormat::Csv.content_type() => Some(TableFormat::Csv),
            t if t == ContentFormat::JsonLines.content_type() => Some(TableFormat::JsonLines),
            t if t == PARQUET_CONTENT_TYPE => Some(TableFormat::Parquet),
            _ => None,
        })?;
    let source = &ctx.job.source;
    // Text is read as strings; Parquet holds the types the source publishes.
    let kinds = match format {
        TableFormat::Parquet => source.rules().column_kinds(),
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
        name: table_name(source.kind(), &source.report()),
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
    })
}

/// A table name: `{source}_{report}`, lower case, anything but letters and digits `_`.
pub fn table_name(kind: &str, report: &str) -> String {
    let mut name = identifier(&format!("{kind}_{report}"));
    name.truncate(255);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    fn sources(t: &TableDefinition) -> Vec<&str> {
        t.columns.iter().map(|c| c.source.as_str()).collect()
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
        assert_eq!(sources(&merged), ["a", "b", "c"]);
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
                format_changed: false
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
        assert_eq!(sources(&merged), ["date", "clicks", "cost"]);
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
