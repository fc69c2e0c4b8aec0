//! A real SQL engine over the catalog: `tests/sql/athena_local.py` builds each table of a Glue
//! database from the catalog alone (columns, SerDe, header skipping, partition projection), as Athena
//! does, and queries it with DuckDB (the pinned wheel `make tools` installs into `.venv/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One statement's answer: its column names and rows (every value a string, or null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The statement.
    pub sql: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<String>>>,
}

/// Runs `sql` over the tables of `database` in the local AWS at `endpoint`; one answer per statement.
pub fn query(endpoint: &str, database: &str, sql: &[&str]) -> Result<Vec<Answer>, String> {
    let mut command = Command::new(repo().join(".venv/bin/python"));
    command
        .arg(repo().join("tests/sql/athena_local.py"))
        .args(["--endpoint", endpoint, "--database", database]);
    for statement in sql {
        command.args(["--sql", statement]);
    }
    let out = command
        .output()
        .map_err(|e| format!("running .venv/bin/python (make tools installs it with duckdb): {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("the engine's report: {e}"))?;
    let strings = |v: &Value| -> Vec<Option<String>> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    Ok(report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Answer {
            sql: r["sql"].as_str().unwrap_or_default().to_owned(),
            columns: strings(&r["columns"]).into_iter().flatten().collect(),
            rows: r["rows"].as_array().into_iter().flatten().map(strings).collect(),
        })
        .collect())
}

impl Answer {
    /// The first value of the first row as a number (a `count(*)`).
    pub fn count(&self) -> Option<u64> {
        self.rows.first()?.first()?.as_deref()?.parse().ok()
    }
}
