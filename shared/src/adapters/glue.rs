//! [`Catalog`] over the AWS Glue Data Catalog: one database of the stack, a table per source and
//! report, every column a string, `account` and `dt` projected (Athena's partition projection), so
//! that Athena reads a new day without a crawler or a registered partition.
//!
//! What the pipeline needs to read a table back (each column's name in the data, the format) is kept
//! in the table's parameters (`amzpipe.columns`, `amzpipe.format`); a table without
//! `amzpipe.managed = true` is someone else's and is never changed.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{Column, SerDeInfo, StorageDescriptor, Table, TableInput};

use crate::adapters::sdk_failure;
use crate::domain::document::ColumnKind;
use crate::ports::{Catalog, CatalogError, CatalogTable, TableColumn, TableDefinition, TableFormat, ViewDefinition};

const MANAGED: &str = "amzpipe.managed";
const COLUMNS: &str = "amzpipe.columns";
const FORMAT: &str = "amzpipe.format";
const ACCOUNTS: &str = "projection.account.values";
const DAYS: &str = "projection.dt.range";
const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
/// Each partition holds a `symlink.txt` naming the objects to read with the table's SerDe.
const SYMLINK_INPUT: &str = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat";
const CURRENT: &str = "amzpipe.current";

/// The tables of one Glue database.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
    database: String,
}

impl GlueCatalog {
    /// The tables of `database`, through `client`.
    pub fn new(client: aws_sdk_glue::Client, database: String) -> Self {
        Self { client, database }
    }

    /// The table or view `name` as Glue holds it, if it exists.
    async fn get(&self, name: &str) -> Result<Option<Table>, CatalogError> {
        match self
            .client
            .get_table()
            .database_name(&self.database)
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table().cloned()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("EntityNotFoundException") => Ok(None),
            Err(e) => Err(catalog_error("GetTable", &e)),
        }
    }
}

impl Catalog for GlueCatalog {
    async fn table(&self, name: &str) -> Result<Option<CatalogTable>, CatalogError> {
        self.get(name).await?.as_ref().map(read_table).transpose()
    }

    async fn create_table(&self, table: &TableDefinition) -> Result<(), CatalogError> {
        self.client
            .create_table()
            .database_name(&self.database)
            .table_input(table_input(table)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| catalog_error("CreateTable", &e))
    }

    async fn put_view(&self, view: &ViewDefinition) -> Result<(), CatalogError> {
        let input = view_input(&self.database, view)?;
        match self.get(&view.name).await? {
            None => self
                .client
                .create_table()
                .database_name(&self.database)
                .table_input(input)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| catalog_error("CreateTable", &e)),
            Some(table) if table.parameters().and_then(|p| p.get(MANAGED)).map(String::as_str) != Some("true") => {
                Err(CatalogError::Foreign(format!(
                    "the catalog's {} was not made by the pipeline ({MANAGED} is not true): rename or drop it",
                    view.name
                )))
            }
            // The same view (its text holds its SQL and columns): no new table version per run.
            Some(table) if table.view_original_text() == input.view_original_text() => Ok(()),
            Some(table) => self
                .client
                .update_table()
                .database_name(&self.database)
                .table_input(input)
                .set_version_id(table.version_id().map(str::to_owned))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| catalog_error("UpdateTable", &e)),
        }
    }

    async fn update_table(&self, table: &TableDefinition, version: Option<&str>) -> Result<(), CatalogError> {
        self.client
            .update_table()
            .database_name(&self.database)
            .table_input(table_input(table)?)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| catalog_error("UpdateTable", &e))
    }
}

fn catalog_error<E>(operation: &str, err: &SdkError<E, aws_sdk_glue::config::http::HttpResponse>) -> CatalogError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = sdk_failure(err);
    let message = format!("{operation}: {}", failure.summary);
    match &failure.service {
        Some((_, code))
            if matches!(
                code.as_str(),
                "AlreadyExistsException" | "ConcurrentModificationException" | "VersionMismatchException"
            ) =>
        {
            CatalogError::Conflict(message)
        }
        _ if failure.refused(&[
            "ThrottlingException",
            "OperationTimeoutException",
            "ResourceNotReadyException",
        ]) =>
        {
            CatalogError::Misconfigured(message)
        }
        _ => CatalogError::Unavailable(message),
    }
}

fn column(name: &str, kind: ColumnKind, comment: Option<&str>) -> Result<Column, CatalogError> {
    Column::builder()
        .name(name)
        .r#type(kind.catalog_type())
        .set_comment(comment.map(str::to_owned))
        .build()
        .map_err(|e| CatalogError::Misconfigured(e.to_string()))
}

fn serde_info(table: &TableDefinition) -> SerDeInfo {
    let builder = SerDeInfo::builder();
    match table.format {
        TableFormat::Tsv => builder
            .serialization_library("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe")
            .parameters("field.delim", "\t")
            .parameters("serialization.format", "\t"),
        TableFormat::Csv => builder
            .serialization_library("org.apache.hadoop.hive.serde2.OpenCSVSerde")
            .parameters("separatorChar", ",")
            .parameters("quoteChar", "\"")
            .parameters("escapeChar", "\\"),
        TableFormat::JsonLines => table.columns.iter().filter(|c| c.name != c.source.to_lowercase()).fold(
            builder.serialization_library("org.openx.data.jsonserde.JsonSerDe"),
            |b, c| b.parameters(format!("mapping.{}", c.name), &c.source),
        ),
        TableFormat::Parquet => builder
            .serialization_library("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
            .parameters("serialization.format", "1"),
    }
    .build()
}

/// The Glue table of a definition.
fn table_input(table: &TableDefinition) -> Result<TableInput, CatalogError> {
    let columns = table
        .columns
        .iter()
        .map(|c| column(&c.name, c.kind, (c.name != c.source).then_some(c.source.as_str())))
        .collect::<Result<Vec<_>, _>>()?;
    let sources: Vec<[&str; 2]> = table
        .columns
        .iter()
        .map(|c| [c.name.as_str(), c.source.as_str()])
        .collect();
    let sources = serde_json::to_string(&sources).map_err(|e| CatalogError::Misconfigured(e.to_string()))?;
    let (format, classification) = match table.format {
        TableFormat::Tsv => ("tsv", "csv"),
        TableFormat::Csv => ("csv", "csv"),
        TableFormat::JsonLines => ("json_lines", "json"),
        TableFormat::Parquet => ("parquet", "parquet"),
    };
    let accounts = table.accounts.iter().cloned().collect::<Vec<_>>().join(",");
    let mut parameters = HashMap::from([
        (MANAGED.to_owned(), "true".to_owned()),
        (COLUMNS.to_owned(), sources),
        (FORMAT.to_owned(), format.to_owned()),
        ("classification".to_owned(), classification.to_owned()),
        ("projection.enabled".to_owned(), "true".to_owned()),
        ("projection.account.type".to_owned(), "enum".to_owned()),
        (ACCOUNTS.to_owned(), accounts),
        ("projection.dt.type".to_owned(), "date".to_owned()),
        ("projection.dt.format".to_owned(), "yyyy-MM-dd".to_owned()),
        (DAYS.to_owned(), format!("{},NOW", table.first_day)),
        ("projection.dt.interval".to_owned(), "1".to_owned()),
        ("projection.dt.interval.unit".to_owned(), "DAYS".to_owned()),
        ("storage.location.template".to_owned(), table.location_template.clone()),
    ]);
    if matches!(table.format, TableFormat::Tsv | TableFormat::Csv) {
        parameters.insert("skip.header.line.count".to_owned(), "1".to_owned());
    }
    let (input_format, output_format) = match table.format {
        _ if table.current => (SYMLINK_INPUT, TEXT_OUTPUT),
        TableFormat::Parquet => (PARQUET_INPUT, PARQUET_OUTPUT),
        _ => (TEXT_INPUT, TEXT_OUTPUT),
    };
    if table.current {
        parameters.insert(CURRENT.to_owned(), "true".to_owned());
    }
    let dt = if table.current {
        "the data day (yyyy-MM-dd): a row's day, or the first day of a window not split by day"
    } else {
        "the first day of the run's window (yyyy-MM-dd)"
    };
    TableInput::builder()
        .name(&table.name)
        .description(&table.description)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(parameters))
        .partition_keys(column(
            "account",
            ColumnKind::String,
            Some("the seller, profile, instance or account"),
        )?)
        .partition_keys(column("dt", ColumnKind::String, Some(dt))?)
        .storage_descriptor(
            StorageDescriptor::builder()
                .set_columns(Some(columns))
                .location(&table.location)
                .input_format(input_format)
                .output_format(output_format)
                .serde_info(serde_info(table))
                .build(),
        )
        .build()
        .map_err(|e| CatalogError::Misconfigured(e.to_string()))
}

/// The Glue table of an Athena view: Trino's view format (`/* Presto View: <base64 JSON> */`), which
/// Athena reads and shows as a view.
fn view_input(database: &str, view: &ViewDefinition) -> Result<TableInput, CatalogError> {
    use base64::Engine;
    let presto = serde_json::json!({
        "originalSql": view.sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": view
            .columns
            .iter()
            .map(|(name, kind)| serde_json::json!({"name": name, "type": kind.view_type()}))
            .collect::<Vec<_>>(),
        "owner": "amzpipe",
        "runAsInvoker": false,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(presto.to_string());
    let columns = view
        .columns
        .iter()
        .map(|(name, kind)| column(name, *kind, None))
        .collect::<Result<Vec<_>, _>>()?;
    TableInput::builder()
        .name(&view.name)
        .description(&view.description)
        .table_type("VIRTUAL_VIEW")
        .view_original_text(format!("/* Presto View: {encoded} */"))
        .view_expanded_text("/* Presto View */")
        .parameters("presto_view", "true")
        .parameters("comment", "Presto View")
        .parameters(MANAGED, "true")
        .storage_descriptor(
            StorageDescriptor::builder()
                .set_columns(Some(columns))
                .serde_info(SerDeInfo::builder().build())
                .build(),
        )
        .build()
        .map_err(|e| CatalogError::Misconfigured(e.to_string()))
}

/// A Glue table read back as the pipeline's definition.
fn read_table(table: &Table) -> Result<CatalogTable, CatalogError> {
    let name = table.name().to_owned();
    let parameters = table.parameters().cloned().unwrap_or_default();
    if parameters.get(MANAGED).map(String::as_str) != Some("true") {
        return Err(CatalogError::Foreign(format!(
            "the catalog's table {name} was not made by the pipeline ({MANAGED} is not true): rename or drop it"
        )));
    }
    let broken = |what: &str| CatalogError::Misconfigured(format!("the catalog's table {name} has a bad {what}"));
    let columns: Vec<[String; 2]> = parameters
        .get(COLUMNS)
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| broken(COLUMNS))?;
    let format = match parameters.get(FORMAT).map(String::as_str) {
        Some("tsv") => TableFormat::Tsv,
        Some("csv") => TableFormat::Csv,
        Some("json_lines") => TableFormat::JsonLines,
        Some("parquet") => TableFormat::Parquet,
        _ => return Err(broken(FORMAT)),
    };
    let first_day = parameters
        .get(DAYS)
        .and_then(|range| range.split(',').next())
        .and_then(|day| day.parse().ok())
        .ok_or_else(|| broken(DAYS))?;
    let accounts: BTreeSet<String> = parameters
        .get(ACCOUNTS)
        .map(|values| values.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let storage = table.storage_descriptor();
    let kind_of = |name: &str| {
        storage
            .and_then(|s| s.columns().iter().find(|c| c.name() == name))
            .and_then(Column::r#type)
            .map_or(ColumnKind::String, ColumnKind::from_catalog_type)
    };
    Ok(CatalogTable {
        definition: TableDefinition {
            name,
            description: table.description().unwrap_or_default().to_owned(),
            columns: columns
                .into_iter()
                .map(|[name, source]| TableColumn {
                    kind: kind_of(&name),
                    name,
                    source,
                })
                .collect(),
            format,
            location: storage
                .and_then(StorageDescriptor::location)
                .unwrap_or_default()
                .to_owned(),
            location_template: parameters.get("storage.location.template").cloned().unwrap_or_default(),
            accounts,
            first_day,
            current: parameters.get(CURRENT).map(String::as_str) == Some("true"),
        },
        version: table.version_id().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(format: TableFormat) -> TableDefinition {
        TableDefinition {
            name: "ads_reports_spcampaigns".into(),
            description: "Ads reports spCampaigns".into(),
            columns: vec![
                TableColumn {
                    name: "campaignid".into(),
                    source: "campaignId".into(),
                    kind: ColumnKind::String,
                },
                TableColumn {
                    name: "cost_usd".into(),
                    source: "cost-usd".into(),
                    kind: if format == TableFormat::Parquet {
                        ColumnKind::Double
                    } else {
                        ColumnKind::String
                    },
                },
            ],
            format,
            location: "s3://bucket/amazon/source=ads-reports/".into(),
            location_template: "s3://bucket/amazon/source=ads-reports/account=${account}/report=spCampaigns/dt=${dt}/"
                .into(),
            accounts: BTreeSet::from(["1".to_owned(), "2".to_owned()]),
            first_day: "2026-11-19".parse().expect("a day"),
            current: false,
        }
    }

    fn as_table(input: &TableInput) -> Table {
        Table::builder()
            .name(input.name())
            .description(input.description().unwrap_or_default())
            .set_parameters(input.parameters().cloned())
            .set_storage_descriptor(input.storage_descriptor().cloned())
            .version_id("3")
            .build()
            .expect("a table")
    }

    #[test]
    fn a_definition_written_and_read_back_is_the_same_definition() {
        for format in [
            TableFormat::Tsv,
            TableFormat::Csv,
            TableFormat::JsonLines,
            TableFormat::Parquet,
        ] {
            for current in [false, true] {
                let wanted = TableDefinition {
                    current,
                    ..definition(format)
                };
                let input = table_input(&wanted).expect("input");
                let read = read_table(&as_table(&input)).expect("read back");
                assert_eq!(read.definition, wanted);
                assert_eq!(read.version.as_deref(), Some("3"));
            }
        }
    }

    #[test]
    fn a_current_table_reads_its_partitions_symlinks_with_its_formats_serde() {
        let current = TableDefinition {
            current: true,
            ..definition(TableFormat::Parquet)
        };
        let input = table_input(&current).expect("input");
        let storage = input.storage_descriptor().expect("storage");
        assert_eq!(storage.input_format(), Some(SYMLINK_INPUT));
        assert_eq!(
            storage.serde_info().and_then(|s| s.serialization_library()),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
    }

    #[test]
    fn a_json_table_maps_a_renamed_column_to_its_key_and_a_text_table_skips_its_header() {
        let json = table_input(&definition(TableFormat::JsonLines)).expect("input");
        let serde = json.storage_descriptor().and_then(|s| s.serde_info()).expect("serde");
        let mappings = serde.parameters().cloned().unwrap_or_default();
        assert_eq!(mappings.get("mapping.cost_usd").map(String::as_str), Some("cost-usd"));
        assert!(
            !mappings.contains_key("mapping.campaignid"),
            "case alone needs no mapping"
        );
        let tsv = table_input(&definition(TableFormat::Tsv)).expect("input");
        let parameters = tsv.parameters().cloned().unwrap_or_default();
        assert_eq!(parameters.get("skip.header.line.count").map(String::as_str), Some("1"));
        assert_eq!(parameters.get(ACCOUNTS).map(String::as_str), Some("1,2"));
        assert_eq!(parameters.get(DAYS).map(String::as_str), Some("2026-11-19,NOW"));
    }

    #[test]
    fn a_table_the_pipeline_did_not_make_is_foreign() {
        let table = Table::builder().name("orders").build().expect("a table");
        assert!(matches!(read_table(&table), Err(CatalogError::Foreign(_))));
    }
}
