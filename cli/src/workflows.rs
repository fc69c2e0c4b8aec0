//! `amc workflows`: AMC SQL as code. Each `.sql` file of a directory is a saved workflow of an
//! instance; `sync` creates the new ones, updates the changed ones after showing the diff, and
//! deletes the ones without a file only when asked.
//!
//! A file may start with a header — a block comment opened by `/* amzpipe` holding a JSON object —
//! for the workflow's other fields:
//!
//! ```sql
//! /* amzpipe
//! { "workflowId": "weekly_reach",
//!   "inputParameters": [{"name": "campaign_ids", "dataType": "STRING", "defaultValue": "all"}],
//!   "outputFormat": {"separatorCharacter": ","} }
//! */
//! SELECT campaign, COUNT(DISTINCT user_id) AS reach FROM dsp_impressions GROUP BY 1
//! ```
//!
//! Without `workflowId`, the file's name (without `.sql`) is the id.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use amzpipe::adapters::amc::{AmcScope, Workflow};
use amzpipe::domain::check_id;
use amzpipe::domain::credentials::TokenHost;
use amzpipe::domain::source::amc::single_line_sql;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print_json, table};

/// The header fields a file may set (besides the SQL).
pub const HEADER_FIELDS: [&str; 7] = [
    "workflowId",
    "inputParameters",
    "outputFormat",
    "outputColumns",
    "filteredMetricsDiscriminatorColumn",
    "privacyFilteringBehavior",
    "distinctUserCountColumn",
];

/// AMC commands.
#[derive(Debug, Subcommand)]
pub enum AmcCommand {
    /// Saved AMC workflows (SQL as code).
    Workflows {
        /// What to do.
        #[command(subcommand)]
        command: WorkflowsCommand,
    },
}

/// Workflow commands.
#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// Make the instance's saved workflows match the .sql files of a directory: create the new,
    /// update the changed (the diff is shown first), delete the unlisted only with --delete.
    Sync(SyncArgs),
    /// List the instance's saved workflows.
    List(InstanceArgs),
}

/// Which instance, reached with which credentials.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// The Secrets Manager secret holding the credential set.
    #[arg(long, value_name = "SECRET")]
    pub credentials: String,
    /// The AMC instance (`amzpipectl discover amc` lists them).
    #[arg(long)]
    pub instance: String,
    /// The AMC account id (`Amazon-Advertising-API-AdvertiserId`).
    #[arg(long)]
    pub advertiser: String,
    /// The marketplace id.
    #[arg(long, default_value = "ATVPDKIKX0DER")]
    pub marketplace: String,
}

impl InstanceArgs {
    fn scope(&self) -> AmcScope {
        AmcScope {
            instance_id: self.instance.clone(),
            advertiser_id: self.advertiser.clone(),
            marketplace_id: self.marketplace.clone(),
        }
    }
}

/// `sync`'s arguments.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The directory of .sql files.
    pub dir: PathBuf,
    /// The instance.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Show the plan and the diffs; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking (needed when not at a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Also delete the instance's saved workflows that have no file.
    #[arg(long)]
    pub delete: bool,
}

/// Reads one workflow file.
pub fn parse_file(path: &Path) -> CliResult<Workflow> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let at = |message: String| CliError::usage(format!("{}: {message}", path.display()));
    let trimmed = text.trim_start();
    let (mut fields, sql) = match trimmed.strip_prefix("/*") {
        Some(rest) if rest.trim_start().starts_with("amzpipe") => {
            let rest = rest.trim_start().trim_start_matches("amzpipe");
            let end = rest
                .find("*/")
                .ok_or_else(|| at("the header opened by /* amzpipe is never closed by */".into()))?;
            let header: Value =
                serde_json::from_str(&rest[..end]).map_err(|e| at(format!("the header is not a JSON object: {e}")))?;
            let Value::Object(fields) = header else {
                return Err(at("the header must be a JSON object".into()));
            };
            (fields, rest[end + 2..].to_owned())
        }
        _ => (Map::new(), text.clone()),
    };
    if let Some(unknown) = fields.keys().find(|k| !HEADER_FIELDS.contains(&k.as_str())) {
        return Err(at(format!(
            "unknown header field {unknown:?} (known: {})",
            HEADER_FIELDS.join(", ")
        )));
    }
    let workflow_id = match fields.remove("workflowId") {
        Some(Value::String(id)) => id,
        Some(_) => return Err(at("workflowId must be a string".into())),
        None => path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned(),
    };
    if check_id(&workflow_id).is_err()
        || !workflow_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(at(format!(
            "{workflow_id:?} is not a workflow id: use letters, digits, _ and -"
        )));
    }
    if single_line_sql(&sql).trim().is_empty() {
        return Err(at("no SQL after the header".into()));
    }
    Ok(Workflow {
        workflow_id,
        sql: sql.trim().to_owned(),
        fields,
    })
}

/// The workflows of a directory, by id; two files with one id are refused.
pub fn read_dir(dir: &Path) -> CliResult<BTreeMap<String, (PathBuf, Workflow)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("cannot read the directory {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    let mut out: BTreeMap<String, (PathBuf, Workflow)> = BTreeMap::new();
    for path in paths {
        let workflow = parse_file(&path)?;
        if let Some((other, _)) = out.get(&workflow.workflow_id) {
            return Err(CliError::usage(format!(
                "{} and {} both define workflow {}",
                other.display(),
                path.display(),
                workflow.workflow_id
            )));
        }
        out.insert(workflow.workflow_id.clone(), (path, workflow));
    }
    if out.is_empty() {
        return Err(CliError::usage(format!("{} has no .sql files", dir.display())));
    }
    Ok(out)
}

/// What sync does with one workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// No such workflow yet.
    Create,
    /// It differs.
    Update,
    /// Same as the file.
    Unchanged,
    /// No file; deleted with --delete.
    Delete,
    /// No file; kept (no --delete).
    Keep,
}

/// One line of the plan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The workflow.
    pub workflow_id: String,
    /// What happens.
    pub action: Action,
    /// Its file.
    pub file: Option<PathBuf>,
    /// The unified diff (AMC's copy → the file's).
    pub diff: String,
}

/// The fields sync manages, as AMC holds them.
fn managed(body: &Value) -> Value {
    let mut out = Map::new();
    for key in HEADER_FIELDS.iter().chain(["sqlQuery"].iter()) {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

fn diff(old: &str, new: &str, id: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("amc:{id}"), &format!("file:{id}"))
        .to_string()
}

/// Compares the files with what the instance holds.
pub fn plan(files: &BTreeMap<String, (PathBuf, Workflow)>, remote: &[Value], delete: bool) -> Vec<Step> {
    let remote: BTreeMap<String, &Value> = remote
        .iter()
        .filter_map(|w| Some((w.get("workflowId")?.as_str()?.to_owned(), w)))
        .collect();
    let mut steps = Vec::new();
    for (id, (path, workflow)) in files {
        let wanted = managed(&workflow.body());
        let (action, old) = match remote.get(id) {
            None => (Action::Create, String::new()),
            Some(existing) => {
                let held = managed(existing);
                (
                    if held == wanted {
                        Action::Unchanged
                    } else {
                        Action::Update
                    },
                    pretty(&held),
                )
            }
        };
        let text = if action == Action::Unchanged {
            String::new()
        } else {
            diff(&old, &pretty(&wanted), id)
        };
        steps.push(Step {
            workflow_id: id.clone(),
            action,
            file: Some(path.clone()),
            diff: text,
        });
    }
    for (id, existing) in &remote {
        if !files.contains_key(id) {
            let action = if delete { Action::Delete } else { Action::Keep };
            let text = if delete {
                diff(&pretty(&managed(existing)), "", id)
            } else {
                String::new()
            };
            steps.push(Step {
                workflow_id: id.clone(),
                action,
                file: None,
                diff: text,
            });
        }
    }
    steps
}

fn confirm() -> CliResult<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage("not applying without confirmation")
            .hint("pass --yes to apply, or --dry-run to only show the plan"));
    }
    eprint!("Apply these changes? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::failed(e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Runs `amc …`.
pub async fn run(ctx: &Context, command: &AmcCommand) -> CliResult<()> {
    let AmcCommand::Workflows { command } = command;
    match command {
        WorkflowsCommand::List(args) => list(ctx, args).await,
        WorkflowsCommand::Sync(args) => sync(ctx, args).await,
    }
}

async fn list(ctx: &Context, args: &InstanceArgs) -> CliResult<()> {
    let amc = ctx.clients(&args.credentials, TokenHost::Regional).await?.amc();
    let workflows = amc
        .workflows(&args.scope())
        .await
        .map_err(|e| CliError::from(e).context("listing workflows"))?;
    if ctx.json {
        return print_json(&workflows);
    }
    let mut t = table(&["WORKFLOW ID", "SQL"]);
    for w in &workflows {
        let sql = w.get("sqlQuery").and_then(Value::as_str).unwrap_or_default();
        let short: String = sql.chars().take(80).collect();
        t.add_row(vec![
            w.get("workflowId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            short,
        ]);
    }
    println!("{t}");
    Ok(())
}

async fn sync(ctx: &Context, args: &SyncArgs) -> CliResult<()> {
    let files = read_dir(&args.dir)?;
    let scope = args.instance.scope();
    let amc = ctx
        .clients(&args.instance.credentials, TokenHost::Regional)
        .await?
        .amc();
    let remote = amc
        .workflows(&scope)
        .await
        .map_err(|e| CliError::from(e).context("listing workflows"))?;
    let steps = plan(&files, &remote, args.delete);
    let changes = steps
        .iter()
        .filter(|s| matches!(s.action, Action::Create | Action::Update | Action::Delete))
        .count();
    if !ctx.json {
        for s in &steps {
            let what = match s.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Unchanged => "unchanged",
                Action::Delete => "delete",
                Action::Keep => "keep (no file; --delete removes it)",
            };
            println!("{:<10} {}", what, s.workflow_id);
            if !s.diff.is_empty() {
                println!("{}", s.diff);
            }
        }
        println!("{changes} change(s) on instance {}", scope.instance_id);
    }
    let apply = changes > 0 && !args.dry_run && (args.yes || confirm()?);
    if apply {
        for s in &steps {
            let failed = |e| {
                CliError::from(e).context(format!(
                    "{} {}",
                    format!("{:?}", s.action).to_lowercase(),
                    s.workflow_id
                ))
            };
            match s.action {
                Action::Create => amc
                    .create_workflow(&scope, &files[&s.workflow_id].1)
                    .await
                    .map_err(failed)?,
                Action::Update => amc
                    .update_workflow(&scope, &files[&s.workflow_id].1)
                    .await
                    .map_err(failed)?,
                Action::Delete => amc.delete_workflow(&scope, &s.workflow_id).await.map_err(failed)?,
                Action::Unchanged | Action::Keep => {}
            }
        }
    }
    if ctx.json {
        return print_json(&json!({ "instance": scope.instance_id, "plan": steps, "applied": apply }));
    }
    if apply {
        println!("applied");
    } else if changes > 0 {
        println!("nothing changed{}", if args.dry_run { " (--dry-run)" } else { "" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_header_sets_the_workflow_fields_and_the_file_name_is_the_default_id() {
        let dir = tempfile::tempdir().expect("dir");
        let with = file(
            dir.path(),
            "reach.sql",
            "/* amzpipe\n{\"workflowId\": \"weekly_reach\", \"outputFormat\": {\"separatorCharacter\": \",\"}}\n*/\nSELECT 1\nFROM x\n",
        );
        let w = parse_file(&with).expect("parsed");
        assert_eq!(w.workflow_id, "weekly_reach");
        assert_eq!(w.fields["outputFormat"]["separatorCharacter"], ",");
        assert_eq!(w.body()["sqlQuery"], "SELECT 1 FROM x");
        let without = file(dir.path(), "daily_sales.sql", "-- plain\nSELECT 2");
        assert_eq!(parse_file(&without).expect("parsed").workflow_id, "daily_sales");
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_the_problem() {
        let dir = tempfile::tempdir().expect("dir");
        let unknown = file(dir.path(), "a.sql", "/* amzpipe {\"sqlQuery\": \"x\"} */ SELECT 1");
        let err = parse_file(&unknown).expect_err("refused").to_string();
        assert!(err.contains("a.sql") && err.contains("sqlQuery"), "{err}");
        let open = file(dir.path(), "b.sql", "/* amzpipe {\"workflowId\": \"b\"} SELECT 1");
        assert!(
            parse_file(&open)
                .expect_err("refused")
                .to_string()
                .contains("never closed")
        );
        let empty = file(dir.path(), "c.sql", "-- nothing\n");
        assert!(parse_file(&empty).expect_err("refused").to_string().contains("no SQL"));
        let bad_id = file(dir.path(), "d e.sql", "SELECT 1");
        assert!(
            parse_file(&bad_id)
                .expect_err("refused")
                .to_string()
                .contains("not a workflow id")
        );
    }

    #[test]
    fn the_plan_creates_updates_and_deletes_only_when_asked() {
        let dir = tempfile::tempdir().expect("dir");
        file(dir.path(), "new_one.sql", "SELECT 1");
        file(dir.path(), "changed.sql", "SELECT 2");
        file(dir.path(), "same.sql", "SELECT 3");
        let files = read_dir(dir.path()).expect("files");
        let remote = vec![
            json!({"workflowId": "changed", "sqlQuery": "SELECT 20", "createdTime": "x"}),
            json!({"workflowId": "same", "sqlQuery": "SELECT 3"}),
            json!({"workflowId": "orphan", "sqlQuery": "SELECT 4"}),
        ];
        let actions = |delete| -> Vec<(String, Action)> {
            plan(&files, &remote, delete)
                .into_iter()
                .map(|s| (s.workflow_id, s.action))
                .collect()
        };
        let kept = actions(false);
        assert!(kept.contains(&("new_one".into(), Action::Create)));
        assert!(kept.contains(&("changed".into(), Action::Update)));
        assert!(kept.contains(&("same".into(), Action::Unchanged)));
        assert!(kept.contains(&("orphan".into(), Action::Keep)));
        assert!(actions(true).contains(&("orphan".into(), Action::Delete)));
        let steps = plan(&files, &remote, false);
        let changed = steps.iter().find(|s| s.workflow_id == "changed").expect("step");
        assert!(
            changed.diff.contains("-  \"sqlQuery\": \"SELECT 20\"")
                && changed.diff.contains("+  \"sqlQuery\": \"SELECT 2\""),
            "{}",
            changed.diff
        );
    }
}
