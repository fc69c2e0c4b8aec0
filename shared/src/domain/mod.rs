//! Domain types shared by every source: regions, time windows, job definitions and runs.

pub mod credentials;
pub mod day_grid;
pub mod day_state;
pub mod document;
pub mod execution;
pub mod finality;
pub mod job;
pub mod run;
pub mod source;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// An Amazon API region. Every source has a host (and an LWA token host) per region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// North America.
    Na,
    /// Europe (and India, the Middle East, Africa).
    Eu,
    /// Far East (Japan, Australia, Singapore).
    Fe,
}

impl Region {
    /// The lower-case name used in configuration (`na`, `eu`, `fe`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Na => "na",
            Self::Eu => "eu",
            Self::Fe => "fe",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "na" => Ok(Self::Na),
            "eu" => Ok(Self::Eu),
            "fe" => Ok(Self::Fe),
            other => Err(format!("unknown region {other:?}: expected na, eu or fe")),
        }
    }
}

/// A half-open time window `[start, end)` in UTC: the data a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First instant included.
    pub start: DateTime<Utc>,
    /// First instant excluded.
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    /// A window, or an error when `end` is not after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if end <= start {
            return Err(format!("the window ends ({end}) before it starts ({start})"));
        }
        Ok(Self { start, end })
    }

    /// The calendar days the window covers, first and last inclusive (for APIs that take dates).
    pub fn inclusive_dates(&self) -> (NaiveDate, NaiveDate) {
        let last = self.end - chrono::Duration::nanoseconds(1);
        (self.start.date_naive(), last.date_naive())
    }

    /// The number of calendar days covered, counting partial days.
    pub fn days(&self) -> i64 {
        let (first, last) = self.inclusive_dates();
        (last - first).num_days() + 1
    }
}

/// The longest id Amazon may return that is still used (see [`encode_returned_id`]).
pub const MAX_RETURNED_ID_BYTES: usize = 1024;

/// An id Amazon returned, made one URL path segment: every byte but the unreserved ones
/// (`A–Z a–z 0–9 - . _ ~`) percent-encoded, so that nothing in it can change the path or the query.
/// Refused — the only ids that cannot be used — are the empty id, one longer than
/// [`MAX_RETURNED_ID_BYTES`], one holding a control character, and `.` or `..` (which URL handling
/// would resolve as a path step however encoded). The error says why, quoting at most 80 characters.
pub fn encode_returned_id(id: &str) -> Result<String, String> {
    let quoted = || format!("{:?}", id.chars().take(80).collect::<String>());
    if id.is_empty() {
        return Err("Amazon returned an empty id".into());
    }
    if id.len() > MAX_RETURNED_ID_BYTES {
        return Err(format!(
            "Amazon returned an id of {} bytes (at most {MAX_RETURNED_ID_BYTES} are used): {}…",
            id.len(),
            quoted()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(format!(
            "Amazon returned an id holding a control character: {}",
            quoted()
        ));
    }
    if id == "." || id == ".." {
        return Err(format!(
            "Amazon returned the id {id:?}, which a URL cannot hold as a path segment"
        ));
    }
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// Checks that an identifier of a job's source can be sent as one URL path segment as it is: 1–256
/// ASCII letters, digits, `-`, `_`, `.`, `|` or `:`, and not `.` or `..`. The error says why, quoting
/// at most 80 characters of the id.
pub fn check_id(id: &str) -> Result<&str, String> {
    if !id.is_empty()
        && id.len() <= 256
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.|:".contains(&b))
        && id != "."
        && id != ".."
    {
        Ok(id)
    } else {
        Err(format!(
            "{:?} is not a valid identifier",
            id.chars().take(80).collect::<String>()
        ))
    }
}

/// An instant as ISO 8601 in UTC to the second (`2026-11-22T00:00:00Z`), the form Amazon's APIs take.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_amazon_returns_are_percent_encoded_into_one_segment_and_only_unusable_ones_refused() {
        assert_eq!(
            encode_returned_id("amzn1.spdoc.1.4.na.0b1c-22").as_deref(),
            Ok("amzn1.spdoc.1.4.na.0b1c-22")
        );
        assert_eq!(
            encode_returned_id("../../v2/profiles?x=1 #").as_deref(),
            Ok("..%2F..%2Fv2%2Fprofiles%3Fx%3D1%20%23")
        );
        assert_eq!(encode_returned_id("r|é").as_deref(), Ok("r%7C%C3%A9"));
        for bad in ["", ".", "..", "a\u{7}b", "line\nbreak"] {
            assert!(encode_returned_id(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(MAX_RETURNED_ID_BYTES + 1);
        assert!(encode_returned_id(&long).is_err_and(|e| e.contains("1025 bytes")));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .expect("valid time")
    }

    #[test]
    fn a_window_of_whole_days_ends_on_the_day_before_its_end() {
        let w = TimeWindow::new(at("2026-11-01T00:00:00Z"), at("2026-11-08T00:00:00Z")).expect("window");
        assert_eq!(w.inclusive_dates().1.to_string(), "2026-11-07");
        assert_eq!(w.days(), 7);
    }

    #[test]
    fn an_empty_window_is_refused() {
        assert!(TimeWindow::new(at("2026-11-01T00:00:00Z"), at("2026-11-01T00:00:00Z")).is_err());
    }

    #[test]
    fn regions_parse_case_insensitively() {
        assert_eq!("EU".parse::<Region>(), Ok(Region::Eu));
        assert!("us".parse::<Region>().is_err());
    }
}
