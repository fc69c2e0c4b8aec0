//! SP-API Reports 2021-06-30: what a job asks for, and the source's rules.
//!
//! - A report covers at most [`MAX_WINDOW_DAYS`] days per request (most report types accept 30 days
//!   or more); longer windows are sliced.
//! - `createReport` is limited per seller to [`CREATE_REPORT_RATE`] requests per second with a burst
//!   of [`CREATE_REPORT_BURST`] (the official model's usage plan), shared by every Lambda: a token
//!   bucket per credential set in the job table.
//! - Reports take seconds to minutes: status checks back off from 15 s to 5 minutes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PollBackoff, Quota, SourceRules};
use crate::domain::document::ContentFormat;

/// The longest window one report is asked for by default.
pub const MAX_WINDOW_DAYS: u32 = 30;
/// `createReport`: requests per second per seller (the model's usage plan).
pub const CREATE_REPORT_RATE: f64 = 0.0167;
/// `createReport`: burst per seller.
pub const CREATE_REPORT_BURST: u32 = 15;

/// What a job asks SP-API for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpReportRequest {
    /// The report type, e.g. `GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL`.
    pub report_type: String,
    /// 1–25 marketplace ids.
    pub marketplace_ids: Vec<String>,
    /// Report-type-specific options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub report_options: BTreeMap<String, String>,
    /// The document's format; by default JSON for the analytics report families, TSV otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ContentFormat>,
}

impl SpReportRequest {
    /// Checks what the API would refuse, before calling it.
    pub fn validate(&self) -> Result<(), String> {
        if self.report_type.is_empty()
            || !self
                .report_type
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "reportType {:?} is not an SP-API report type (upper-case letters, digits and underscores)",
                self.report_type
            ));
        }
        if self.marketplace_ids.is_empty() || self.marketplace_ids.len() > 25 {
            return Err(format!(
                "marketplaceIds must hold 1 to 25 ids, not {}",
                self.marketplace_ids.len()
            ));
        }
        Ok(())
    }

    /// The document's content format.
    pub fn content_format(&self) -> ContentFormat {
        self.format.unwrap_or_else(|| default_format(&self.report_type))
    }
}

/// JSON for the report families documented as JSON (Sales and Traffic, Brand Analytics, Vendor
/// analytics, …), TSV for the flat files.
pub fn default_format(report_type: &str) -> ContentFormat {
    const JSON_PREFIXES: [&str; 6] = [
        "GET_SALES_AND_TRAFFIC_REPORT",
        "GET_BRAND_ANALYTICS_",
        "GET_VENDOR_",
        "GET_SELLER_FEEDBACK_DATA",
        "GET_B2B_PRODUCT_OPPORTUNITIES",
        "GET_PROMOTION_PERFORMANCE_REPORT",
    ];
    if JSON_PREFIXES.iter().any(|p| report_type.starts_with(p)) || report_type.contains("_JSON") {
        ContentFormat::Json
    } else {
        ContentFormat::Tsv
    }
}

impl SourceRules for SpReportRequest {
    fn kind(&self) -> &'static str {
        "sp-reports"
    }

    fn account(&self) -> String {
        self.marketplace_ids.join("+")
    }

    fn report(&self) -> String {
        self.report_type.clone()
    }

    fn max_window_days(&self) -> Option<u32> {
        Some(MAX_WINDOW_DAYS)
    }

    fn validate(&self) -> Result<(), super::InvalidSource> {
        SpReportRequest::validate(self).map_err(super::InvalidSource::whole)
    }

    fn poll_backoff(&self) -> PollBackoff {
        PollBackoff {
            base: Duration::from_secs(15),
            cap: Duration::from_secs(300),
        }
    }

    fn create_quota(&self, credentials: &str) -> Option<Quota> {
        Some(Quota::Bucket {
            name: format!("sp.createReport#{credentials}"),
            rate: CREATE_REPORT_RATE,
            burst: CREATE_REPORT_BURST,
        })
    }
}
