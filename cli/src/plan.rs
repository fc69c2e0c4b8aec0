//! `plan`: the Amazon requests a job's schedule makes over the next days, and why, without calling
//! Amazon or AWS.
//!
//! For a job with the `repull` window rule, each firing asks for yesterday and for every day that has
//! reached one of its finality policy's pull ages, merged into as few requests as the source allows
//! (see `amzpipe::domain::finality`); for the other rules, the windows the firing asks for.

use std::path::PathBuf;

use amzpipe::domain::job::{Job, WindowRule};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use clap::Args;
use serde::Serialize;

use crate::context::Context;
use crate::error::CliResult;
use crate::output::{print_json, table};
use crate::runs::load_job;

/// Show the requests a job's schedule makes.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The job definition: a JSON file with the job, or an event with a `job` field.
    #[arg(long, value_name = "FILE")]
    pub job: PathBuf,
    /// How many daily firings to show.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=400))]
    pub days: u32,
    /// The first firing's day (UTC, YYYY-MM-DD); default today.
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// The firing's time of day (UTC, HH:MM), as its schedule fires.
    #[arg(long, value_name = "HH:MM", default_value = "06:00")]
    pub at: NaiveTime,
}

/// One request of one firing.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRequest {
    /// The firing's scheduled time.
    pub firing: DateTime<Utc>,
    /// The first day asked for.
    pub first_day: NaiveDate,
    /// The last day asked for (included).
    pub last_day: NaiveDate,
    /// Why: each day due, with its age and what the pull is (`first pull`, `re-pull`, `final`).
    pub due: Vec<DueDay>,
}

/// A day a request is made for, and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DueDay {
    /// The day.
    pub day: NaiveDate,
    /// Its age at the firing (1: yesterday).
    pub age: u32,
    /// `first pull`, `re-pull`, or `final` (a pull at or past the final age).
    pub reason: &'static str,
}

/// The requests `job`'s firings on `days` days from `from` at `at` make.
pub fn plan(job: &Job, from: NaiveDate, at: NaiveTime, days: u32) -> CliResult<Vec<PlannedRequest>> {
    let policy = job.finality()?;
    let mut requests = Vec::new();
    for offset in 0..days {
        let firing = (from + Duration::days(i64::from(offset))).and_time(at).and_utc();
        if job.window.rule == WindowRule::Repull {
            for window in job.repull_plan(firing)? {
                let due = window
                    .due
                    .iter()
                    .map(|&(day, age)| DueDay {
                        day,
                        age,
                        reason: match age {
                            _ if policy.is_final_at(i64::from(age)) => "final",
                            1 => "first pull",
                            _ => "re-pull",
                        },
                    })
                    .collect();
                requests.push(PlannedRequest {
                    firing,
                    first_day: window.first,
                    last_day: window.last,
                    due,
                });
            }
        } else {
            for window in job.windows(firing)? {
                let first_day = window.start.date_naive();
                let last_day = (window.end - Duration::nanoseconds(1)).date_naive();
                requests.push(PlannedRequest {
                    firing,
                    first_day,
                    last_day,
                    due: Vec::new(),
                });
            }
        }
    }
    Ok(requests)
}

/// Runs `plan`.
pub fn run(ctx: &Context, args: &PlanArgs) -> CliResult<()> {
    let (job, _) = load_job(&args.job)?;
    let from = args.from.unwrap_or_else(|| Utc::now().date_naive());
    let requests = plan(&job, from, args.at, args.days)?;
    if ctx.json {
        return print_json(&requests);
    }
    let policy = job.finality()?;
    println!(
        "{}: pulls at ages {:?}, final from age {} ({})",
        job.name, policy.pull_ages, policy.final_after_days, policy.basis
    );
    let mut out = table(&["FIRING", "REQUEST", "DAYS", "WHY"]);
    for r in &requests {
        let why: Vec<String> = r
            .due
            .iter()
            .map(|d| format!("{} age {} ({})", d.day, d.age, d.reason))
            .collect();
        out.add_row(vec![
            r.firing.format("%Y-%m-%d %H:%M").to_string(),
            format!("{} … {}", r.first_day, r.last_day),
            ((r.last_day - r.first_day).num_days() + 1).to_string(),
            if why.is_empty() {
                "the job's window".into()
            } else {
                why.join(", ")
            },
        ]);
    }
    println!("{out}");
    let most = (0..args.days)
        .map(|offset| {
            let firing = (from + Duration::days(i64::from(offset))).and_time(args.at).and_utc();
            requests.iter().filter(|r| r.firing == firing).count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "{} requests over {} firings; at most {most} a day",
        requests.len(),
        args.days
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ads_repull() -> Job {
        Job::parse(
            r#"{"name": "ads", "credentials": "c", "window": {"rule": "repull"},
                "source": {"type": "adsReports", "profileId": "123", "adProduct": "SPONSORED_PRODUCTS",
                           "reportTypeId": "spCampaigns", "columns": ["date", "clicks"], "groupBy": ["campaign"]}}"#,
        )
        .expect("job")
    }

    #[test]
    fn each_day_is_planned_at_every_pull_age_and_the_last_is_the_final_one() {
        let job = ads_repull();
        let from: NaiveDate = "2026-10-01".parse().expect("date");
        let requests = plan(&job, from, NaiveTime::MIN, 60).expect("plan");
        // Every firing makes at most two requests (the FAQ's 1–2 per report type per day).
        for offset in 0..60 {
            let firing = (from + Duration::days(offset)).and_time(NaiveTime::MIN).and_utc();
            assert!(requests.iter().filter(|r| r.firing == firing).count() <= 2);
        }
        // A day well inside the calendar is due at ages 1, 4, 8, 29 and 43, final at 43 only.
        let day: NaiveDate = "2026-10-05".parse().expect("date");
        let pulls: Vec<(u32, &str)> = requests
            .iter()
            .flat_map(|r| r.due.iter())
            .filter(|d| d.day == day)
            .map(|d| (d.age, d.reason))
            .collect();
        assert_eq!(
            pulls,
            [
                (1, "first pull"),
                (4, "re-pull"),
                (8, "re-pull"),
                (29, "re-pull"),
                (43, "final")
            ]
        );
    }
}
