//! Amazon Ads reporting v3: what a job asks for, and the source's rules.
//!
//! - A report covers at most [`MAX_WINDOW_DAYS`] days; longer windows are sliced.
//! - Amazon publishes no create quota and answers a repeated create with 425, so no shared quota is
//!   held here (the client paces itself).
//! - Reports take minutes: status checks back off from 30 s to 5 minutes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{InvalidSource, PollBackoff, SourceRules};
use crate::domain::TimeWindow;
use crate::domain::document::ColumnKind;

/// The longest window one report may cover, in days.
pub const MAX_WINDOW_DAYS: u32 = 31;

/// A report filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The field.
    pub field: String,
    /// The values kept.
    pub values: Vec<String>,
}

/// What a job asks the Ads API for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdsReportRequest {
    /// The advertising profile (the Scope header).
    pub profile_id: String,
    /// `SPONSORED_PRODUCTS`, `SPONSORED_BRANDS`, `SPONSORED_DISPLAY`, …
    pub ad_product: String,
    /// e.g. `spCampaigns`.
    pub report_type_id: String,
    /// The columns.
    pub columns: Vec<String>,
    /// The group-by dimensions.
    pub group_by: Vec<String>,
    /// `DAILY` or `SUMMARY`.
    #[serde(default = "daily")]
    pub time_unit: String,
    /// Filters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

fn daily() -> String {
    "DAILY".into()
}

const AD_PRODUCTS: [&str; 6] = [
    "SPONSORED_PRODUCTS",
    "SPONSORED_BRANDS",
    "SPONSORED_DISPLAY",
    "SPONSORED_TELEVISION",
    "DEMAND_SIDE_PLATFORM",
    "ALL",
];

impl AdsReportRequest {
    /// Checks what the API would refuse, before calling it.
    pub fn validate(&self) -> Result<(), String> {
        if self.profile_id.is_empty() || !self.profile_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("profileId {:?} must be a number", self.profile_id));
        }
        if !AD_PRODUCTS.contains(&self.ad_product.as_str()) {
            return Err(format!(
                "adProduct {:?} is not one of {}",
                self.ad_product,
                AD_PRODUCTS.join(", ")
            ));
        }
        if !matches!(self.time_unit.as_str(), "DAILY" | "SUMMARY") {
            return Err(format!("timeUnit {:?} must be DAILY or SUMMARY", self.time_unit));
        }
        if self.columns.is_empty() || self.group_by.is_empty() || self.report_type_id.is_empty() {
            return Err("reportTypeId, columns and groupBy must not be empty".into());
        }
        Ok(())
    }
}

/// Checks that `window` fits one report.
pub fn check_window(window: &TimeWindow) -> Result<(), String> {
    if window.days() > i64::from(MAX_WINDOW_DAYS) {
        return Err(format!(
            "the window covers {} days; Ads reports cover at most {MAX_WINDOW_DAYS} (slice the window)",
            window.days()
        ));
    }
    Ok(())
}

/// The type of an Ads v3 report column, by the metric families of the reporting guide: the dates,
/// counts (impressions, clicks, purchases, units, views) as `bigint`, money and rates (cost, sales,
/// budgets, ACOS/ROAS, click-through and cost per click) as `double`; ids, names and the rest strings.
pub fn column_kind(column: &str) -> ColumnKind {
    const COUNTS: [&str; 10] = [
        "impressions",
        "clicks",
        "purchases",
        "unitsSold",
        "attributedConversions",
        "attributedUnitsOrdered",
        "newToBrandPurchases",
        "newToBrandUnitsSold",
        "detailPageViews",
        "viewableImpressions",
    ];
    const AMOUNTS: [&str; 9] = [
        "cost",
        "spend",
        "sales",
        "attributedSales",
        "newToBrandSales",
        "campaignBudgetAmount",
        "acos",
        "roas",
        "salesOtherSku",
    ];
    match column {
        "date" | "startDate" | "endDate" => ColumnKind::Date,
        "costPerClick" | "clickThroughRate" => ColumnKind::Double,
        c if AMOUNTS.iter().any(|a| c.starts_with(a)) => ColumnKind::Double,
        c if COUNTS.iter().any(|a| c.starts_with(a)) => ColumnKind::BigInt,
        _ => ColumnKind::String,
    }
}

impl SourceRules for AdsReportRequest {
    fn kind(&self) -> &'static str {
        "ads-reports"
    }

    fn account(&self) -> String {
        self.profile_id.clone()
    }

    fn column_kinds(&self) -> std::collections::BTreeMap<String, ColumnKind> {
        self.columns.iter().map(|c| (c.clone(), column_kind(c))).collect()
    }

    /// A `DAILY` report's rows carry their day in `date` (the reference, §3.2: "DAILY (use column
    /// `date`)"); a `SUMMARY` report covers its window as one.
    fn day_column(&self) -> Option<super::DayColumn> {
        (self.time_unit == "DAILY" && self.columns.iter().any(|c| c == "date")).then(|| super::DayColumn {
            name: "date".into(),
            kind: ColumnKind::Date,
        })
    }

    fn report(&self) -> String {
        self.report_type_id.clone()
    }

    fn max_window_days(&self) -> Option<u32> {
        Some(MAX_WINDOW_DAYS)
    }

    fn validate(&self) -> Result<(), InvalidSource> {
        InvalidSource::check_id("profileId", &self.profile_id)?;
        AdsReportRequest::validate(self).map_err(InvalidSource::whole)
    }

    fn poll_backoff(&self) -> PollBackoff {
        PollBackoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(300),
        }
    }
}
