//! Amazon Marketing Cloud workflow executions: what a job asks for, and the source's rules.
//!
//! - A window has no length limit (the query decides what it reads).
//! - AMC runs at most [`MAX_RUNNING`] executions per instance: a run holds one of the instance's
//!   slots (in the job table) from its create until its execution ends. A slot is a lease of
//!   [`SLOT_LEASE`], renewed by every status check, so that a slot whose run died frees itself; a run
//!   that finds no free slot waits [`SLOT_WAIT`] and asks again.
//! - Executions take minutes to hours: status checks back off from 1 to 15 minutes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{InvalidSource, PollBackoff, Quota, SourceRules};
use crate::domain::check_id;
use crate::domain::finality::FinalityPolicy;

/// The executions AMC runs at once per instance.
pub const MAX_RUNNING: u32 = 10;
/// How long a run waits for a free slot before trying again.
pub const SLOT_WAIT: Duration = Duration::from_secs(300);
/// How long a running slot is held without renewal. Each status check renews it (checks are at most
/// `AMZPIPE_MAX_WAIT_SECONDS` apart); a slot whose run died without giving it back frees itself after
/// this long.
pub const SLOT_LEASE: Duration = Duration::from_secs(2 * 3600);

/// The query an execution runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum AmcQuery {
    /// Ad-hoc SQL.
    Sql(String),
    /// A saved workflow's id.
    WorkflowId(String),
}

/// What a job asks AMC for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmcRequest {
    /// The AMC instance.
    pub instance_id: String,
    /// The AMC account (`Amazon-Advertising-API-AdvertiserId`).
    pub advertiser_id: String,
    /// The marketplace (`Amazon-Advertising-API-MarketplaceId`).
    pub marketplace_id: String,
    /// The query.
    pub query: AmcQuery,
    /// Parameter values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameter_values: BTreeMap<String, String>,
    /// The time zone of the window (`America/New_York`); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// `workflowExecutionTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Sandbox instances need synthetic data.
    #[serde(default)]
    pub require_synthetic_data: bool,
}

/// Makes SQL single-line as AMC requires: `--` and `/* */` comments dropped and whitespace runs
/// collapsed to one space, outside string literals and quoted identifiers.
pub fn single_line_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
                while let Some(d) = chars.next() {
                    // Newlines inside literals are not allowed either; keep them as spaces.
                    out.push(if d == '\n' || d == '\r' || d == '\t' { ' ' } else { d });
                    if d == c {
                        if chars.peek() == Some(&c) {
                            out.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                pending_space = true;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                pending_space = true;
            }
            c if c.is_whitespace() => pending_space = true,
            c => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
            }
        }
    }
    out
}

impl AmcRequest {
    /// Checks what the API would refuse, before calling it.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("instanceId", &self.instance_id),
            ("advertiserId", &self.advertiser_id),
            ("marketplaceId", &self.marketplace_id),
        ] {
            if check_id(value).is_err() {
                return Err(format!("{name} {value:?} is not a valid AMC identifier"));
            }
        }
        match &self.query {
            AmcQuery::Sql(sql) if single_line_sql(sql).is_empty() => Err("the SQL is empty".into()),
            AmcQuery::WorkflowId(id) if check_id(id).is_err() => {
                Err(format!("workflowId {id:?} is not a valid identifier"))
            }
            _ => Ok(()),
        }
    }
}

impl SourceRules for AmcRequest {
    fn kind(&self) -> &'static str {
        "amc"
    }

    fn account(&self) -> String {
        self.instance_id.clone()
    }

    fn report(&self) -> String {
        match &self.query {
            AmcQuery::WorkflowId(id) => id.clone(),
            AmcQuery::Sql(_) => "adhoc".into(),
        }
    }

    fn validate(&self) -> Result<(), InvalidSource> {
        InvalidSource::check_id("instanceId", &self.instance_id)?;
        AmcRequest::validate(self).map_err(InvalidSource::whole)
    }

    fn poll_backoff(&self) -> PollBackoff {
        PollBackoff {
            base: Duration::from_secs(60),
            cap: Duration::from_secs(900),
        }
    }

    fn create_quota(&self, _credentials: &str) -> Option<Quota> {
        Some(Quota::Slot {
            name: format!("amc.running#{}", self.instance_id),
            max: MAX_RUNNING,
            lease: SLOT_LEASE,
            wait: SLOT_WAIT,
        })
    }

    fn max_parallel_runs(&self) -> Option<u32> {
        Some(MAX_RUNNING)
    }

    fn finality(&self, _attribution_days: Option<u32>) -> FinalityPolicy {
        FinalityPolicy::final_on_arrival(
            "AMC data availability: a day is complete about 48 hours after the fact; windows end that long \
             before the scheduled time, so what is stored is final",
        )
    }

    /// AMC's data availability note (reference §11): a day is complete about 48 hours after it.
    fn settle_hours(&self) -> u32 {
        SETTLE_HOURS
    }
}

/// Hours after which a day's AMC data is complete (reference §11).
pub const SETTLE_HOURS: u32 = 48;
