//! Amazon Ads reporting v3: what a job asks for, and the source's rules.
//!
//! - A report covers at most [`MAX_WINDOW_DAYS`] days; longer windows are sliced.
//! - Amazon publishes no create quota and answers a repeated create with 425, so no shared quota is
//!   held here (the client paces itself).
//! - Reports take minutes: status checks back off from 30 s to 5 minutes.

use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{InvalidSource, PollBackoff, SourceRules};
use crate::domain::TimeWindow;
use crate::domain::document::ColumnKind;
use crate::domain::finality::FinalityPolicy;

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

/// The attribution window assumed for conversions when the job names none (Sponsored Products'
/// default 14 days; reference §11).
pub const DEFAULT_ATTRIBUTION_DAYS: u32 = 14;

/// The most report requests per profile, report type and day Amazon recommends (reference §11).
pub const MAX_REQUESTS_PER_DAY: u32 = 2;

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
        if let Some(product) = ad_product_of(&self.report_type_id)
            && product != self.ad_product
        {
            return Err(format!(
                "reportTypeId {:?} is a {product} report; adProduct is {:?}",
                self.report_type_id, self.ad_product
            ));
        }
        // Reference §3.2 (the reporting v3 guide): DAILY rows are dated by the `date` column, a SUMMARY
        // report by `startDate` and `endDate`; the other time unit's columns are refused.
        let refused: &[&str] = if self.time_unit == "DAILY" {
            &["startDate", "endDate"]
        } else {
            &["date"]
        };
        if let Some(column) = self.columns.iter().find(|c| refused.contains(&c.as_str())) {
            return Err(format!(
                "column {column:?} does not go with timeUnit {}: DAILY reports take `date`, SUMMARY reports \
                 `startDate` and `endDate`",
                self.time_unit
            ));
        }
        Ok(())
    }

    /// Checks that `window` fits one report and is within the report type's retention on `today`.
    pub fn check_window(&self, window: &TimeWindow, today: NaiveDate) -> Result<(), String> {
        check_window(window)?;
        let retention = retention_days(&self.report_type_id);
        let age = (today - window.start.date_naive()).num_days();
        if age > i64::from(retention) {
            return Err(format!(
                "the window starts {age} days ago; {} data is kept for {retention} days (Report date is too far \
                 in the past)",
                self.report_type_id
            ));
        }
        Ok(())
    }
}

/// The ad product a report type belongs to, by its family prefix (the reporting v3 report-type pages:
/// `sp…` Sponsored Products, `sb…` Sponsored Brands, `sd…` Sponsored Display, `st…` Sponsored
/// Television, `dsp…` DSP); `None` for a type outside those families.
pub fn ad_product_of(report_type_id: &str) -> Option<&'static str> {
    const FAMILIES: [(&str, &str); 5] = [
        ("dsp", "DEMAND_SIDE_PLATFORM"),
        ("sp", "SPONSORED_PRODUCTS"),
        ("sb", "SPONSORED_BRANDS"),
        ("sd", "SPONSORED_DISPLAY"),
        ("st", "SPONSORED_TELEVISION"),
    ];
    FAMILIES
        .iter()
        .find(|(prefix, _)| {
            report_type_id
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
        .map(|(_, product)| *product)
}

/// How many days back a report type's data can be asked for (reference §3.2, from the report-type
/// pages: Sponsored Products 95 days, its search term report 65; Sponsored Brands 60; Sponsored
/// Display 65; Sponsored Television and DSP 95).
pub fn retention_days(report_type_id: &str) -> u32 {
    match (report_type_id, ad_product_of(report_type_id)) {
        ("spSearchTerm", _) => 65,
        (_, Some("SPONSORED_BRANDS")) => 60,
        (_, Some("SPONSORED_DISPLAY")) => 65,
        _ => 95,
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
        // How a campaign is charged (`CPC`, `VCPM`…): a word, although it starts like `cost`.
        "costType" => ColumnKind::String,
        "costPerClick" | "clickThroughRate" => ColumnKind::Double,
        c if c.ends_with("Rate") || c.ends_with("Percentage") || c.ends_with("Average") => ColumnKind::Double,
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

    /// The reporting v3 FAQ (reference §11): clicks change for 3 days, so a re-pull at age 4;
    /// conversions are restated 1, 7 and 28 days after the conversion event, so re-pulls at 2 (folded
    /// into the request of age 4), 8 and 29 for the day's own conversions; and, reported on the day of
    /// the ad interaction, a day's last restatement lands attribution window + 28 days after it, seen
    /// by the pull of the next day: final at age `attribution + 29` (43 for the default 14-day window).
    fn finality(&self, attribution_days: Option<u32>) -> FinalityPolicy {
        let last = attribution_days.unwrap_or(DEFAULT_ATTRIBUTION_DAYS) + 29;
        FinalityPolicy::repulling(
            &[4, 8, 29, last],
            last,
            "Ads reporting v3 FAQ: clicks 3 days; conversions restated 1, 7, 28 days after the event, \
             attribution window + 28 days in all",
        )
    }

    /// "1–2 report requests per advertiser, per day, for each report type" (reference §11).
    fn max_requests_per_firing(&self) -> Option<u32> {
        Some(MAX_REQUESTS_PER_DAY)
    }

    fn max_pull_age(&self) -> Option<u32> {
        Some(retention_days(&self.report_type_id))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(report_type_id: &str, ad_product: &str, time_unit: &str, columns: &[&str]) -> AdsReportRequest {
        AdsReportRequest {
            profile_id: "1".into(),
            ad_product: ad_product.into(),
            report_type_id: report_type_id.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            group_by: vec!["campaign".into()],
            time_unit: time_unit.into(),
            filters: Vec::new(),
        }
    }

    #[test]
    fn a_report_type_of_another_ad_product_is_refused_before_any_call() {
        assert!(
            request("spCampaigns", "SPONSORED_PRODUCTS", "DAILY", &["date"])
                .validate()
                .is_ok()
        );
        let wrong = request("sbCampaigns", "SPONSORED_PRODUCTS", "DAILY", &["date"]).validate();
        assert!(wrong.is_err_and(|e| e.contains("SPONSORED_BRANDS")));
        assert_eq!(ad_product_of("dspCampaign"), Some("DEMAND_SIDE_PLATFORM"));
        assert_eq!(
            ad_product_of("spaghetti"),
            None,
            "a family prefix is followed by a capital"
        );
    }

    #[test]
    fn daily_reports_take_the_date_column_and_summary_reports_their_start_and_end_dates() {
        assert!(
            request(
                "spCampaigns",
                "SPONSORED_PRODUCTS",
                "SUMMARY",
                &["startDate", "endDate"]
            )
            .validate()
            .is_ok()
        );
        assert!(
            request("spCampaigns", "SPONSORED_PRODUCTS", "SUMMARY", &["date"])
                .validate()
                .is_err()
        );
        assert!(
            request("spCampaigns", "SPONSORED_PRODUCTS", "DAILY", &["startDate"])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn a_window_older_than_its_ad_products_retention_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).expect("a day");
        let window_from = |days_ago: i64| {
            let start = (today - chrono::Duration::days(days_ago))
                .and_time(chrono::NaiveTime::MIN)
                .and_utc();
            TimeWindow::new(start, start + chrono::Duration::days(1)).expect("a window")
        };
        for (report_type, product, kept) in [
            ("spCampaigns", "SPONSORED_PRODUCTS", 95),
            ("spSearchTerm", "SPONSORED_PRODUCTS", 65),
            ("sbCampaigns", "SPONSORED_BRANDS", 60),
            ("sdCampaigns", "SPONSORED_DISPLAY", 65),
        ] {
            let r = request(report_type, product, "DAILY", &["date"]);
            assert!(r.check_window(&window_from(kept), today).is_ok(), "{report_type}");
            assert!(r.check_window(&window_from(kept + 1), today).is_err(), "{report_type}");
        }
    }

    #[test]
    fn ads_columns_are_typed_by_their_exact_names() {
        assert_eq!(column_kind("costType"), ColumnKind::String);
        assert_eq!(column_kind("cost"), ColumnKind::Double);
        assert_eq!(column_kind("purchasesSameSkuRate"), ColumnKind::Double);
        assert_eq!(column_kind("newToBrandPurchasesPercentage"), ColumnKind::Double);
        assert_eq!(column_kind("videoCompleteViewsAverage"), ColumnKind::Double);
        assert_eq!(column_kind("impressions"), ColumnKind::BigInt);
    }
}
