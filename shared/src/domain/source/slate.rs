//! Prime Video Slate datasets: what a job asks for, and the source's rules.
//!
//! - Incremental: a run lists every file published in its window and stores those no run of the job
//!   has stored yet (the job's ingested file ids, in the job table), so lookbacks, backfills and
//!   re-runs of a window store each file once, and a window that failed keeps its files until it
//!   succeeds. The watermark (the newest file stored) is kept for the operator's overview only.
//! - Nothing is created at Amazon and no quota is shared; a "request" is ready at once, so status
//!   checks are quick (5 s to 1 minute).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Changelog, InvalidSource, PollBackoff, SourceRules};
use crate::domain::credentials::TokenHost;
use crate::domain::document::ColumnKind;

/// What a job asks Slate for: one dataset of one business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlateRequest {
    /// Account id.
    pub account_id: String,
    /// Group id.
    pub group_id: String,
    /// Business id.
    pub business_id: String,
    /// Dataset id (e.g. `playback`, `subscription`).
    pub dataset_id: String,
    /// Optional lower bound set by the job: only files strictly newer are fetched (a way to skip history
    /// on a first run). Files already stored are skipped by id whatever it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DateTime<Utc>>,
    /// The dataset's key column, for its current-state view; the official page's for the datasets
    /// it documents (`playback`: `session_id`, `subscription`: `subscription_event_id`, `catalog`:
    /// `id`), required for any other dataset to have a view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog_key: Option<String>,
}

/// The typed columns of the datasets, as the official Datasets page types them: `int` as `bigint`,
/// `double`, `horodatage` (timestamp) as `timestamp`; every other column a string (`is_deleted` too,
/// which the current-state view compares with `'1'`).
pub const TYPED_COLUMNS: [(&str, ColumnKind); 9] = [
    ("marketplace_id", ColumnKind::BigInt),
    ("seconds_viewed", ColumnKind::BigInt),
    ("position_start", ColumnKind::Double),
    ("position_end", ColumnKind::Double),
    ("start_segment_utc", ColumnKind::Timestamp),
    ("end_segment_utc", ColumnKind::Timestamp),
    ("create_time_utc", ColumnKind::Timestamp),
    ("last_update_time_utc", ColumnKind::Timestamp),
    ("subscription_event_time_utc", ColumnKind::Timestamp),
];

/// The key column of each dataset the official Datasets page documents (seed
/// `002_8fd61206bc5c2333.txt`: the columns marked `(pk)`).
pub const DATASET_KEYS: [(&str, &str); 3] = [
    ("playback", "session_id"),
    ("subscription", "subscription_event_id"),
    ("catalog", "id"),
];

impl SourceRules for SlateRequest {
    fn kind(&self) -> &'static str {
        "slate"
    }

    fn account(&self) -> String {
        self.account_id.clone()
    }

    fn report(&self) -> String {
        self.dataset_id.clone()
    }

    fn validate(&self) -> Result<(), InvalidSource> {
        InvalidSource::check_id("accountId", &self.account_id)?;
        InvalidSource::check_id("groupId", &self.group_id)?;
        InvalidSource::check_id("businessId", &self.business_id)?;
        InvalidSource::check_id("datasetId", &self.dataset_id)
    }

    fn poll_backoff(&self) -> PollBackoff {
        PollBackoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
        }
    }

    /// The Datasets API page (seed 002) documents one token endpoint, `https://api.amazon.com/auth/o2/token`,
    /// for every region; a credential set's `tokenUrl` still says otherwise.
    fn token_host(&self) -> TokenHost {
        TokenHost::Global
    }

    fn column_kinds(&self) -> std::collections::BTreeMap<String, ColumnKind> {
        TYPED_COLUMNS
            .iter()
            .map(|(name, kind)| ((*name).to_owned(), *kind))
            .collect()
    }

    fn changelog(&self) -> Option<Changelog> {
        let key = self.changelog_key.clone().or_else(|| {
            DATASET_KEYS
                .iter()
                .find(|(dataset, _)| *dataset == self.dataset_id)
                .map(|(_, key)| (*key).to_owned())
        })?;
        Some(Changelog {
            key,
            updated: "last_update_time_utc".into(),
            deleted: "is_deleted".into(),
        })
    }

    fn incremental(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slate_credentials_are_refreshed_at_the_global_token_host_its_page_documents_for_every_region() {
        let request = SlateRequest {
            account_id: "a".into(),
            group_id: "g".into(),
            business_id: "b".into(),
            dataset_id: "d".into(),
            after: None,
            changelog_key: None,
        };
        // (adapters/lwa.rs: the global host is https://api.amazon.com/auth/o2/token in every region)
        assert_eq!(request.token_host(), TokenHost::Global);
    }
}
