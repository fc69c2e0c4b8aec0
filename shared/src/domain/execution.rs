//! Step Functions execution names: 1 to 80 characters of ASCII letters, digits, `-` and `_`, unique
//! per state machine for 90 days. A name made from what an execution is for (a schedule and its
//! firing time) makes a second start of the same thing refused (`ExecutionAlreadyExists`) instead of a
//! second execution.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The longest execution name Step Functions takes.
pub const MAX_EXECUTION_NAME: usize = 80;

/// Hex digits of the stem's hash that replace what a long stem loses.
const HASH_DIGITS: usize = 8;

/// An execution name of `stem` and `suffix` joined by `-`, with `suffix` kept whole and distinct stems
/// kept distinct: every character a name may not hold becomes `-`, and a stem too long for the name is
/// cut and followed by the first eight hex digits of its SHA-256.
///
/// `suffix` must leave room for a cut stem: at most 80 − 10 characters (longer, it is cut too).
pub fn execution_name(stem: &str, suffix: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let (stem, mut suffix) = (clean(stem), clean(suffix));
    suffix.truncate(MAX_EXECUTION_NAME - HASH_DIGITS - 2);
    let room = MAX_EXECUTION_NAME - suffix.len() - 1;
    let stem = if stem.len() <= room {
        stem
    } else {
        let hash = hex::encode(Sha256::digest(stem.as_bytes()));
        format!("{}{}", &stem[..room - HASH_DIGITS], &hash[..HASH_DIGITS])
    };
    match (stem.is_empty(), suffix.is_empty()) {
        (true, _) => suffix,
        (false, true) => stem,
        (false, false) => format!("{stem}-{suffix}"),
    }
}

/// The execution name of a schedule's firing: the schedule's name (with its group, unless that is
/// `default`) and the scheduled time to the second, e.g. `ads-daily-20261123T060000Z`.
///
/// `schedule` is the schedule's ARN (`arn:aws:scheduler:…:schedule/{group}/{name}`, EventBridge
/// Scheduler's `<aws.scheduler.schedule-arn>`) or a plain name.
pub fn scheduled_execution_name(schedule: &str, scheduled: DateTime<Utc>) -> String {
    let stem = match schedule.split_once(":schedule/") {
        Some((_, path)) => match path.split_once('/') {
            Some(("default", name)) => name.to_owned(),
            Some((group, name)) => format!("{group}-{name}"),
            None => path.to_owned(),
        },
        None => schedule.to_owned(),
    };
    execution_name(&stem, &scheduled.format("%Y%m%dT%H%M%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_EXECUTION_NAME
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn a_schedule_in_the_default_group_is_named_by_its_name_and_firing_time() {
        let name = scheduled_execution_name(
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/ads-daily",
            at("2026-11-23T06:00:00Z"),
        );
        assert_eq!(name, "ads-daily-20261123T060000Z");
    }

    #[test]
    fn a_schedule_of_another_group_keeps_its_group_in_the_name() {
        let name = scheduled_execution_name(
            "arn:aws:scheduler:us-east-1:123456789012:schedule/agency.eu/ads.daily",
            at("2026-11-23T06:00:00Z"),
        );
        assert_eq!(name, "agency-eu-ads-daily-20261123T060000Z");
    }

    #[test]
    fn the_same_firing_always_gets_the_same_name_and_the_next_firing_another() {
        let arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/sp";
        let first = scheduled_execution_name(arn, at("2026-11-23T06:00:00Z"));
        assert_eq!(first, scheduled_execution_name(arn, at("2026-11-23T06:00:00+00:00")));
        assert_ne!(first, scheduled_execution_name(arn, at("2026-11-24T06:00:00Z")));
    }

    #[test]
    fn long_stems_are_cut_to_eighty_characters_keeping_the_time_and_staying_distinct() {
        let long_a = format!("{}a", "x".repeat(100));
        let long_b = format!("{}b", "x".repeat(100));
        let a = execution_name(&long_a, "20261123T060000Z");
        let b = execution_name(&long_b, "20261123T060000Z");
        assert_eq!(a.len(), MAX_EXECUTION_NAME);
        assert!(a.ends_with("-20261123T060000Z"), "{a}");
        assert_ne!(a, b, "two stems that differ only past the cut differ in their hash");
        assert!(allowed(&a) && allowed(&b));
    }

    #[test]
    fn characters_a_name_may_not_hold_become_dashes() {
        let name = execution_name("ads sp/campaigns:1234", "x.y");
        assert_eq!(name, "ads-sp-campaigns-1234-x-y");
        assert!(allowed(&name));
    }
}
