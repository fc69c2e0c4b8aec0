//! The current run of each data day and the day's record (see [`crate::domain::day_state`]), on one
//! item per table × account × day:
//!
//! | `pk` | `sk` | attributes |
//! |---|---|---|
//! | `CURRENT#{table}#{account}` | `DAY#{yyyy-mm-dd}` | the current run: `runId`, `requestedAt` (epoch ms), `paths` (JSON list of the objects holding the day's rows); its pull: `pullAge`, `isFinal`, `rowCount`; `pulls`, `previousRows`; `job`, `finalDue`; the last attempt that failed or found no data: `attemptRun`, `attemptRequestedAt` (epoch ms), `attemptAt`, `attemptCause`, `attemptReason` |
//!
//! A claim reads the item, decides by the rule of [`crate::steps::current`] and writes on the
//! condition that the current run is still the one it read (compare and swap), so that the pull count
//! and the previous rows are those of the pull it replaced, whatever runs claim the day at once.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, Utc};

use super::{DynamoJobStore, Item, applied, collect_items, get_n, get_s, n, rfc3339, s, store_error};
use crate::domain::day_state::{Cause, DayAttempt, DayPull, DayRecord};
use crate::ports::{CurrentClaim, CurrentUnit, PullFacts, StoreError};

/// Claims of one day before giving up to a retry, should its current run keep changing.
const CLAIM_ATTEMPTS: usize = 8;

/// The most bytes of object paths one current-run item lists (DynamoDB items hold 400 KB).
const MAX_CURRENT_PATHS_BYTES: usize = 350_000;

impl DynamoJobStore {
    /// Every day record from `first` to `last` (both included), of `job` only when given, as
    /// `(table, account, record)` sorted by table, account and day (a paginated `Scan` filtered to day
    /// records): the operator's overview of what is final.
    pub async fn all_day_records(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        job: Option<&str>,
    ) -> Result<Vec<(String, String, DayRecord)>, StoreError> {
        let mut out = collect_items(
            async |start| {
                let mut filter = "begins_with(pk, :current) AND sk BETWEEN :first AND :last".to_owned();
                let mut scan = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .expression_attribute_values(":current", s("CURRENT#"))
                    .expression_attribute_values(":first", s(day_sk(first)))
                    .expression_attribute_values(":last", s(day_sk(last)))
                    .set_exclusive_start_key(start);
                if let Some(job) = job {
                    filter.push_str(" AND job = :job");
                    scan = scan.expression_attribute_values(":job", s(job));
                }
                let page = scan
                    .filter_expression(filter)
                    .send()
                    .await
                    .map_err(|e| store_error("Scan", e))?;
                Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
            },
            |item| {
                let Some((table, account)) = get_s(item, "pk")
                    .and_then(|pk| pk.strip_prefix("CURRENT#"))
                    .and_then(|rest| rest.split_once('#'))
                else {
                    return Ok(None);
                };
                Ok(Some((table.to_owned(), account.to_owned(), parse_record(table, item)?)))
            },
        )
        .await?;
        out.sort_by(|a, b| (&a.0, &a.1, a.2.day).cmp(&(&b.0, &b.1, b.2.day)));
        Ok(out)
    }

    pub(super) fn current_key(unit: &CurrentUnit) -> Item {
        Self::key(current_pk(&unit.table, &unit.account), &day_sk(unit.day))
    }

    pub(super) async fn claim_current_day(&self, unit: &CurrentUnit, claim: &CurrentClaim) -> Result<bool, StoreError> {
        let paths = serde_json::to_string(&claim.paths)
            .map_err(|e| StoreError::Unavailable(format!("the current paths could not be written: {e}")))?;
        if paths.len() > MAX_CURRENT_PATHS_BYTES {
            return Err(StoreError::Misconfigured(format!(
                "{} objects hold the rows of {} on {}: more than one item lists (split the job's window)",
                claim.paths.len(),
                unit.table,
                unit.day
            )));
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let item = self.read_item(Self::current_key(unit)).await?.item;
            let read = item.as_ref().map(|i| parse_current(unit, i)).transpose()?.flatten();
            if let Some(current) = &read {
                if current.run_id == claim.run_id && current.requested_at == claim.requested_at {
                    return Ok(true);
                }
                let later =
                    (current.requested_at, current.run_id.as_str()) > (claim.requested_at, claim.run_id.as_str());
                if later {
                    return Ok(false);
                }
            }
            let pulls = item.as_ref().and_then(|i| get_n::<u32>(i, "pulls")).unwrap_or(0) + 1;
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::current_key(unit)))
                .expression_attribute_values(":run", s(&claim.run_id))
                .expression_attribute_values(":at", n(claim.requested_at.timestamp_millis()))
                .expression_attribute_values(":paths", s(&paths))
                .expression_attribute_values(":now", s(rfc3339(Utc::now())))
                .expression_attribute_values(":age", n(claim.pull.age))
                .expression_attribute_values(":final", AttributeValue::Bool(claim.pull.is_final))
                .expression_attribute_values(":pulls", n(pulls))
                .expression_attribute_values(":job", s(&claim.pull.job))
                .expression_attribute_values(":due", s(claim.pull.final_due.to_string()));
            let mut set = vec![
                "runId = :run",
                "requestedAt = :at",
                "paths = :paths",
                "updatedAt = :now",
                "pullAge = :age",
                "isFinal = :final",
                "pulls = :pulls",
                "job = :job",
                "finalDue = :due",
            ];
            let mut remove = Vec::new();
            match claim.pull.rows {
                Some(rows) => {
                    set.push("rowCount = :rows");
                    update = update.expression_attribute_values(":rows", n(rows));
                }
                None => remove.push("rowCount"),
            }
            match read
                .as_ref()
                .and(item.as_ref())
                .and_then(|i| get_n::<u64>(i, "rowCount"))
            {
                Some(previous) => {
                    set.push("previousRows = :previous");
                    update = update.expression_attribute_values(":previous", n(previous));
                }
                None => remove.push("previousRows"),
            }
            let mut expression = format!("SET {}", set.join(", "));
            if !remove.is_empty() {
                expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
            }
            update = update.update_expression(expression);
            update = match &read {
                None => update.condition_expression("attribute_not_exists(runId)"),
                Some(current) => update
                    .condition_expression("runId = :readRun AND requestedAt = :readAt")
                    .expression_attribute_values(":readRun", s(&current.run_id))
                    .expression_attribute_values(":readAt", n(current.requested_at.timestamp_millis())),
            };
            if applied(update.send().await)? {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(format!(
            "the current run of {} on {} changed on each of {CLAIM_ATTEMPTS} claims",
            unit.table, unit.day
        )))
    }

    pub(super) async fn current_of_day(&self, unit: &CurrentUnit) -> Result<Option<CurrentClaim>, StoreError> {
        let out = self.read_item(Self::current_key(unit)).await?;
        match out.item() {
            Some(item) => parse_current(unit, item),
            None => Ok(None),
        }
    }

    pub(super) async fn record_attempt(
        &self,
        unit: &CurrentUnit,
        job: &str,
        final_due: NaiveDate,
        attempt: &DayAttempt,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::current_key(unit)))
            .update_expression(
                "SET attemptRun = :run, attemptRequestedAt = :at, attemptAt = :ended, attemptCause = :cause, \
                 attemptReason = :reason, job = if_not_exists(job, :job), finalDue = if_not_exists(finalDue, :due), \
                 updatedAt = :now",
            )
            .condition_expression("attribute_not_exists(attemptRequestedAt) OR attemptRequestedAt <= :at")
            .expression_attribute_values(":run", s(&attempt.run_id))
            .expression_attribute_values(":at", n(attempt.requested_at.timestamp_millis()))
            .expression_attribute_values(":ended", s(rfc3339(attempt.at)))
            .expression_attribute_values(":cause", s(attempt.cause.as_str()))
            .expression_attribute_values(":reason", s(&attempt.reason))
            .expression_attribute_values(":job", s(job))
            .expression_attribute_values(":due", s(final_due.to_string()))
            .expression_attribute_values(":now", s(rfc3339(Utc::now())))
            .send()
            .await;
        if !applied(result)? {
            tracing::info!(day = %unit.day, "a later attempt at the day is recorded already");
        }
        Ok(())
    }

    pub(super) async fn records_of_days(
        &self,
        table: &str,
        account: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<DayRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
            .expression_attribute_values(":pk", s(current_pk(table, account)))
            .expression_attribute_values(":first", s(day_sk(first)))
            .expression_attribute_values(":last", s(day_sk(last)));
        collect_items(
            async move |start| {
                let page = query
                    .clone()
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| store_error("Query", e))?;
                Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
            },
            |item| parse_record(table, item).map(Some),
        )
        .await
    }
}

fn current_pk(table: &str, account: &str) -> String {
    format!("CURRENT#{table}#{account}")
}

fn day_sk(day: NaiveDate) -> String {
    format!("DAY#{day}")
}

fn millis(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    get_n::<i64>(item, name).and_then(DateTime::from_timestamp_millis)
}

fn get_date(item: &Item, name: &str) -> Option<NaiveDate> {
    get_s(item, name).and_then(|v| v.parse().ok())
}

/// The current run an item names; `None` for an item of a day that only has attempts.
fn parse_current(unit: &CurrentUnit, item: &Item) -> Result<Option<CurrentClaim>, StoreError> {
    let Some(run_id) = get_s(item, "runId") else {
        return Ok(None);
    };
    let broken = || {
        StoreError::Misconfigured(format!(
            "the current run of {} on {} is unreadable",
            unit.table, unit.day
        ))
    };
    Ok(Some(CurrentClaim {
        run_id: run_id.to_owned(),
        requested_at: millis(item, "requestedAt").ok_or_else(broken)?,
        paths: get_s(item, "paths")
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(broken)?,
        pull: PullFacts {
            job: get_s(item, "job").unwrap_or_default().to_owned(),
            age: get_n(item, "pullAge").unwrap_or(0),
            is_final: matches!(item.get("isFinal"), Some(AttributeValue::Bool(true))),
            rows: get_n(item, "rowCount"),
            final_due: get_date(item, "finalDue").unwrap_or(unit.day),
        },
    }))
}

fn parse_record(table: &str, item: &Item) -> Result<DayRecord, StoreError> {
    let broken = |what: &str| StoreError::Misconfigured(format!("a day record of {table} is unreadable: {what}"));
    let day = get_s(item, "sk")
        .and_then(|sk| sk.strip_prefix("DAY#"))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| broken("sk"))?;
    let unit = CurrentUnit {
        table: table.to_owned(),
        account: String::new(),
        day,
    };
    let current = parse_current(&unit, item)?;
    let attempt = match get_s(item, "attemptRun") {
        None => None,
        Some(run_id) => Some(DayAttempt {
            run_id: run_id.to_owned(),
            requested_at: millis(item, "attemptRequestedAt").ok_or_else(|| broken("attemptRequestedAt"))?,
            at: get_s(item, "attemptAt")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| broken("attemptAt"))?,
            cause: get_s(item, "attemptCause")
                .and_then(|c| c.parse::<Cause>().ok())
                .ok_or_else(|| broken("attemptCause"))?,
            reason: get_s(item, "attemptReason").unwrap_or_default().to_owned(),
        }),
    };
    Ok(DayRecord {
        day,
        job: get_s(item, "job").unwrap_or_default().to_owned(),
        final_due: get_date(item, "finalDue").unwrap_or(day),
        pulls: get_n(item, "pulls").unwrap_or(u32::from(current.is_some())),
        previous_rows: get_n(item, "previousRows"),
        current: current.map(|c| DayPull {
            run_id: c.run_id,
            requested_at: c.requested_at,
            age: c.pull.age,
            is_final: c.pull.is_final,
            rows: c.pull.rows,
        }),
        attempt,
    })
}
