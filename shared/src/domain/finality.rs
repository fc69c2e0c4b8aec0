//! When a day's figures are final, and when to pull the day again until they are.
//!
//! Amazon restates its figures (`../shared/reference/amazon-apis.md` §11): a day's Ads clicks change
//! for 3 days and its conversions for the attribution window plus 28 days; SP-API Sales and Traffic
//! for about 72 hours; FBA returns and reimbursements for weeks. Each source states its
//! [`FinalityPolicy`] ([`crate::domain::source::SourceRules::finality`]), and a job may override it
//! (`"finality": {"repullDays": [4, 8], "finalAfterDays": 10}`).
//!
//! **Ages.** A day's age at a firing is the number of days from the day to the firing's UTC day:
//! yesterday has age 1. A day is pulled at each of the policy's [`FinalityPolicy::pull_ages`] (its
//! first pull at age 1, then each re-pull), and the figures of a pull made at age
//! [`FinalityPolicy::final_after_days`] or more are final.
//!
//! **The plan.** A firing of a job with the window rule `repull` asks for every day whose age is
//! one of the pull ages, merged into as few Amazon requests as the source's longest window allows
//! ([`FinalityPolicy::plan`]); the days between two due days of one request are pulled again too,
//! which costs bytes, never requests.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::domain::TimeWindow;

/// The oldest age a policy may name: no source keeps data longer than this for a re-pull.
pub const MAX_AGE_DAYS: u32 = 400;

/// When a source's days are final and when they are pulled again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalityPolicy {
    /// The ages at which a day is pulled, ascending and distinct, the first 1 (yesterday); empty for
    /// a source that is not pulled by day (an incremental changelog).
    pub pull_ages: Vec<u32>,
    /// The age from which a pull's figures are final; 0 or 1: final when stored.
    pub final_after_days: u32,
    /// Where the figures come from: the published fact the defaults rest on.
    pub basis: &'static str,
}

/// A job's override of its source's policy: `"finality": {"repullDays": [...], "finalAfterDays": N}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalityOverride {
    /// The ages of the re-pulls after the first pull (each at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repull_days: Option<Vec<u32>>,
    /// The age from which a pull's figures are final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_after_days: Option<u32>,
    /// Ads only: the attribution window of the conversions reported, in days (default 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution_days: Option<u32>,
}

/// One Amazon request a firing makes: the days it covers, and which of them are due and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWindow {
    /// The first day covered.
    pub first: NaiveDate,
    /// The last day covered (included).
    pub last: NaiveDate,
    /// The days due for a pull, each with its age at the firing.
    pub due: Vec<(NaiveDate, u32)>,
}

impl PlannedWindow {
    /// How many days the request covers.
    pub fn days(&self) -> u32 {
        u32::try_from((self.last - self.first).num_days() + 1).unwrap_or(u32::MAX)
    }

    /// The request's window: from the first day's midnight (UTC) to the midnight after the last.
    pub fn window(&self) -> TimeWindow {
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        TimeWindow {
            start: midnight(self.first),
            end: midnight(self.last) + Duration::days(1),
        }
    }
}

impl FinalityPolicy {
    /// A policy of one pull, final when stored (AMC results, settlement reports, changelogs).
    pub fn final_on_arrival(basis: &'static str) -> Self {
        Self {
            pull_ages: vec![1],
            final_after_days: 1,
            basis,
        }
    }

    /// A policy pulling at age 1 and at each of `repulls`, final from `final_after_days`.
    pub fn repulling(repulls: &[u32], final_after_days: u32, basis: &'static str) -> Self {
        let ages: BTreeSet<u32> = std::iter::once(1).chain(repulls.iter().copied()).collect();
        Self {
            pull_ages: ages.into_iter().collect(),
            final_after_days,
            basis,
        }
    }

    /// The policy with a job's override applied; errors name the field (relative to `finality`).
    pub fn with_override(self, over: &FinalityOverride) -> Result<Self, (&'static str, String)> {
        let final_after_days = over.final_after_days.unwrap_or(self.final_after_days);
        let policy = match &over.repull_days {
            Some(repulls) => {
                if let Some(bad) = repulls.iter().find(|&&age| !(2..=MAX_AGE_DAYS).contains(&age)) {
                    return Err((
                        "repullDays",
                        format!("{bad} is not between 2 and {MAX_AGE_DAYS} (age 1 is the first pull)"),
                    ));
                }
                Self::repulling(repulls, final_after_days, "the job's finality")
            }
            None => Self {
                final_after_days,
                ..self
            },
        };
        if final_after_days > MAX_AGE_DAYS {
            return Err((
                "finalAfterDays",
                format!("{final_after_days} is more than {MAX_AGE_DAYS}"),
            ));
        }
        policy.check_reaches_final()?;
        Ok(policy)
    }

    /// Refuses a policy whose last pull comes before its days are final: they would never be.
    fn check_reaches_final(&self) -> Result<(), (&'static str, String)> {
        match self.pull_ages.last() {
            Some(&last) if last < self.final_after_days => Err((
                "repullDays",
                format!(
                    "the last pull is at age {last}, before the days are final at age {}: add a re-pull at {} or more",
                    self.final_after_days, self.final_after_days
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Whether a pull made at `age` gives final figures.
    pub fn is_final_at(&self, age: i64) -> bool {
        age >= i64::from(self.final_after_days)
    }

    /// The day on which `day`'s final pull is due: the firing at its first pull age at or after the
    /// final age (the final age itself for a policy with no such pull).
    pub fn final_due(&self, day: NaiveDate) -> NaiveDate {
        let age = self
            .pull_ages
            .iter()
            .copied()
            .find(|&age| age >= self.final_after_days)
            .unwrap_or(self.final_after_days)
            .max(1);
        day + Duration::days(i64::from(age))
    }

    /// The requests a firing on `firing_day` makes: every day whose age is a pull age, oldest first,
    /// merged greedily into windows of at most `max_days` days (`None`: one window). Greedy from the
    /// oldest day is the fewest windows that cover the due days.
    pub fn plan(&self, firing_day: NaiveDate, max_days: Option<u32>) -> Vec<PlannedWindow> {
        let mut due: Vec<(NaiveDate, u32)> = self
            .pull_ages
            .iter()
            .map(|&age| (firing_day - Duration::days(i64::from(age)), age))
            .collect();
        due.sort();
        let mut windows: Vec<PlannedWindow> = Vec::new();
        for (day, age) in due {
            match windows.last_mut() {
                Some(w) if max_days.is_none_or(|max| (day - w.first).num_days() < i64::from(max)) => {
                    w.last = day;
                    w.due.push((day, age));
                }
                _ => windows.push(PlannedWindow {
                    first: day,
                    last: day,
                    due: vec![(day, age)],
                }),
            }
        }
        windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn the_ads_default_pulls_five_ages_in_two_requests_of_at_most_31_days() {
        let policy = FinalityPolicy::repulling(&[4, 8, 29, 43], 43, "test");
        let plan = policy.plan(day("2026-12-04"), Some(31));
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert_eq!((plan[0].first, plan[0].last), (day("2026-10-22"), day("2026-11-05")));
        assert_eq!((plan[1].first, plan[1].last), (day("2026-11-26"), day("2026-12-03")));
        assert!(plan.iter().all(|w| w.days() <= 31));
        let ages: Vec<u32> = plan.iter().flat_map(|w| w.due.iter().map(|(_, a)| *a)).collect();
        assert_eq!(ages, [43, 29, 8, 4, 1]);
    }

    #[test]
    fn without_a_window_limit_every_due_day_is_one_request() {
        let policy = FinalityPolicy::repulling(&[7, 35], 35, "test");
        assert_eq!(policy.plan(day("2026-12-04"), None).len(), 1);
        assert_eq!(policy.plan(day("2026-12-04"), Some(30)).len(), 2);
    }

    #[test]
    fn an_override_whose_last_pull_comes_before_finality_is_refused_naming_the_field() {
        let base = FinalityPolicy::repulling(&[4], 4, "test");
        let over = FinalityOverride {
            repull_days: Some(vec![3]),
            final_after_days: Some(10),
            attribution_days: None,
        };
        let (field, message) = base.clone().with_override(&over).expect_err("refused");
        assert_eq!(field, "repullDays");
        assert!(message.contains("age 3"), "{message}");
        let over = FinalityOverride {
            repull_days: Some(vec![1]),
            ..FinalityOverride::default()
        };
        assert_eq!(base.with_override(&over).expect_err("refused").0, "repullDays");
    }

    #[test]
    fn a_pull_at_the_final_age_or_later_is_final_and_one_before_is_not() {
        let policy = FinalityPolicy::repulling(&[4], 4, "test");
        assert!(!policy.is_final_at(3));
        assert!(policy.is_final_at(4));
        assert!(FinalityPolicy::final_on_arrival("test").is_final_at(1));
    }

    #[test]
    fn a_days_final_pull_is_due_at_the_first_pull_age_from_the_final_age() {
        let policy = FinalityPolicy::repulling(&[7, 35], 30, "test");
        assert_eq!(policy.final_due(day("2026-11-01")), day("2026-12-06"));
        let on_arrival = FinalityPolicy::final_on_arrival("test");
        assert_eq!(on_arrival.final_due(day("2026-11-01")), day("2026-11-02"));
    }
}
