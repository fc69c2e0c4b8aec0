//! SP-API Reports 2021-06-30: what a job asks for, and the source's rules.
//!
//! - A report covers at most [`MAX_WINDOW_DAYS`] days per request (most report types accept 30 days
//!   or more); longer windows are sliced.
//! - `createReport` is limited per seller to [`CREATE_REPORT_RATE`] requests per second with a burst
//!   of [`CREATE_REPORT_BURST`] (the official model's usage plan), shared by every Lambda: a token
//!   bucket per credential set in the job table, charged for every HTTP attempt (as are the other
//!   operations with plans under one request per second), not per step.
//! - Reports take seconds to minutes: status checks back off from 15 s to 5 minutes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PollBackoff, SourceRules};
use crate::domain::credentials::TokenHost;
use crate::domain::document::{ColumnKind, ContentFormat};
use crate::domain::finality::FinalityPolicy;

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
    /// Whether the report type is restricted (its document needs a Restricted Data Token); by default,
    /// whether [`restricted_role`] lists it. Set it for a restricted type the table does not know yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted: Option<bool>,
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
        if self.format.is_none() && default_format(&self.report_type).is_none() {
            return Err(format!(
                "the output format of reportType {} is not in the documented table: say it with source.format \
                 (tsv, csv, json, xml or binary)",
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
        self.format
            .or_else(|| default_format(&self.report_type))
            .unwrap_or(ContentFormat::Binary)
    }

    /// The restricted role getReportDocument needs for this report, when it needs a Restricted Data
    /// Token: the documented role, or a generic name when the job marks an unlisted type restricted.
    /// `None` when the document is fetched with the ordinary access token.
    pub fn restricted_role(&self) -> Option<&'static str> {
        match (self.restricted, restricted_role(&self.report_type)) {
            (Some(false), _) => None,
            (_, Some(role)) => Some(role),
            (Some(true), None) => Some("restricted"),
            (None, None) => None,
        }
    }
}

/// The Direct-to-Consumer Shipping (Restricted) role: shipping addresses.
pub const ROLE_SHIPPING: &str = "Direct-to-Consumer Shipping (Restricted)";
/// The Tax Invoicing (Restricted) role: buyer information for tax invoices.
pub const ROLE_TAX_INVOICING: &str = "Tax Invoicing (Restricted)";
/// The Tax Remittance (Restricted) role: buyer information for tax remittance.
pub const ROLE_TAX_REMITTANCE: &str = "Tax Remittance (Restricted)";

/// Report types whose documents carry buyer PII, and the restricted role each needs: the 16 the Tokens
/// API use case guide lists (developer-docs.amazon.com/sp-api/docs/tokens-api-use-case-guide), each with
/// the role its report type values page names (report-type-values-order: "This is a restricted report
/// type. When you specify a restricted report type in a call to the getReportDocument operation, you
/// must pass in an Restricted Data Token (RDT)", with its "Role: … (Restricted)"; the FBA and tax pages
/// mark theirs the same way). **The one list of restricted report types**, tested against the corpus's
/// copy of the guide's list (`tests/contract/restricted_report_types.json`), which the simulator serves.
const RESTRICTED_REPORT_TYPES: [(&str, &str); 16] = [
    ("GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING", ROLE_SHIPPING),
    ("GET_ORDER_REPORT_DATA_SHIPPING", ROLE_SHIPPING),
    ("GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING", ROLE_SHIPPING),
    ("GET_FLAT_FILE_ORDERS_RECONCILIATION_DATA_SHIPPING", ROLE_SHIPPING),
    ("GET_EASYSHIP_DOCUMENTS", ROLE_SHIPPING),
    ("GET_ORDER_REPORT_DATA_INVOICING", ROLE_TAX_INVOICING),
    ("GET_FLAT_FILE_ORDER_REPORT_DATA_INVOICING", ROLE_TAX_INVOICING),
    ("GET_FLAT_FILE_ORDERS_RECONCILIATION_DATA_INVOICING", ROLE_TAX_INVOICING),
    ("GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING", ROLE_TAX_INVOICING),
    ("GET_ORDER_REPORT_DATA_TAX", ROLE_TAX_REMITTANCE),
    ("GET_FLAT_FILE_ORDER_REPORT_DATA_TAX", ROLE_TAX_REMITTANCE),
    ("GET_FLAT_FILE_ORDERS_RECONCILIATION_DATA_TAX", ROLE_TAX_REMITTANCE),
    ("GET_AMAZON_FULFILLED_SHIPMENTS_DATA_TAX", ROLE_TAX_REMITTANCE),
    ("GET_VAT_TRANSACTION_DATA", ROLE_TAX_REMITTANCE),
    // report-type-values-tax: the GST reports of amazon.in are Tax Remittance (Restricted).
    ("GET_GST_MTR_B2B_CUSTOM", ROLE_TAX_REMITTANCE),
    // report-type-values-tax: the VAT calculation report; its name has no GET_ prefix.
    ("SC_VAT_TAX_REPORT", ROLE_TAX_REMITTANCE),
];

/// Every report type [`restricted_role`] knows, in the table's order.
pub fn restricted_report_types() -> impl Iterator<Item = &'static str> {
    RESTRICTED_REPORT_TYPES.iter().map(|(name, _)| *name)
}

/// The restricted role a report type's document needs, if the documentation marks it restricted.
pub fn restricted_role(report_type: &str) -> Option<&'static str> {
    RESTRICTED_REPORT_TYPES
        .iter()
        .find(|(name, _)| *name == report_type)
        .map(|(_, role)| *role)
}

/// The output type of report types as the SP-API report type values pages document it
/// (developer-docs.amazon.com/sp-api/docs/report-type-values-*: "Report output type"), where the name
/// alone does not say it. **The one table of report formats**; [`default_format`] reads it first.
const DOCUMENTED_FORMATS: [(&str, ContentFormat); 9] = [
    // report-type-values-order: "Easy Ship documents … PDF" (stored as it comes, no rows).
    ("GET_EASYSHIP_DOCUMENTS", ContentFormat::Binary),
    // report-type-values-inventory: the listings reports, "Tab-delimited flat file".
    ("GET_MERCHANT_LISTINGS_ALL_DATA", ContentFormat::Tsv),
    ("GET_MERCHANT_LISTINGS_DATA", ContentFormat::Tsv),
    // report-type-values-performance: "Flat File Feedback Report … Tab-delimited flat file".
    ("GET_SELLER_FEEDBACK_DATA", ContentFormat::Tsv),
    // report-type-values-performance: "XML Customer Metrics Report … XML".
    ("GET_V1_SELLER_PERFORMANCE_REPORT", ContentFormat::Xml),
    // report-type-values-performance: the Account Health report, JSON.
    ("GET_V2_SELLER_PERFORMANCE_REPORT", ContentFormat::Json),
    // report-type-values-performance: "JSON report containing data from promotion campaigns".
    ("GET_PROMOTION_PERFORMANCE_REPORT", ContentFormat::Json),
    ("GET_COUPON_PERFORMANCE_REPORT", ContentFormat::Json),
    // report-type-values-order: "Unshipped Orders Report … Tab-delimited flat file".
    ("GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING", ContentFormat::Tsv),
];

/// Families whose documented output type their names carry: the XML reports (`GET_XML_…`, the
/// scheduled XML order reports `GET_ORDER_REPORT_DATA_…`), the flat files (`GET_FLAT_FILE_…`: tab-delimited;
/// the FBA reports, `GET_FBA_…` and `GET_AMAZON_FULFILLED_SHIPMENTS_…`, are tab-delimited flat files too),
/// the GST reports of amazon.in (report-type-values-tax: "Comma-separated flat file"), and the analytics
/// families documented as JSON (Sales and Traffic, Brand Analytics, Vendor analytics).
const FAMILY_FORMATS: [(&str, ContentFormat); 11] = [
    ("GET_XML_", ContentFormat::Xml),
    ("GET_ORDER_REPORT_DATA_", ContentFormat::Xml),
    ("GET_FLAT_FILE_", ContentFormat::Tsv),
    ("GET_FBA_", ContentFormat::Tsv),
    ("GET_AMAZON_FULFILLED_SHIPMENTS_", ContentFormat::Tsv),
    ("GST_MTR_", ContentFormat::Csv),
    ("GET_GST_MTR_", ContentFormat::Csv),
    ("GET_SALES_AND_TRAFFIC_REPORT", ContentFormat::Json),
    ("GET_BRAND_ANALYTICS_", ContentFormat::Json),
    ("GET_VENDOR_", ContentFormat::Json),
    ("GET_EPR_", ContentFormat::Json),
];

/// A report type's documented format: the table, then the family its name names, then what its name
/// says (`_JSON`, `_XML`, `_FLAT_FILE`). `None` for any other type: a job of it must say its `format`,
/// rather than have its document read as a format it may not be.
pub fn default_format(report_type: &str) -> Option<ContentFormat> {
    if let Some((_, format)) = DOCUMENTED_FORMATS.iter().find(|(name, _)| *name == report_type) {
        return Some(*format);
    }
    if let Some((_, format)) = FAMILY_FORMATS
        .iter()
        .find(|(prefix, _)| report_type.starts_with(prefix))
    {
        return Some(*format);
    }
    [
        ("_JSON", ContentFormat::Json),
        ("_XML", ContentFormat::Xml),
        ("_FLAT_FILE", ContentFormat::Tsv),
    ]
    .into_iter()
    .find(|(word, _)| report_type.contains(word))
    .map(|(_, format)| format)
}

/// The typed columns of the SP-API flat files whose layout the report type values page documents, by
/// report-type prefix: the orders reports' dates as timestamps, quantities as `bigint`, amounts as
/// `double`. Every other column, and every other report type, is a string.
pub const TYPED_COLUMNS: [(&str, &[(&str, ColumnKind)]); 1] = [(
    "GET_FLAT_FILE_ALL_ORDERS_DATA_",
    &[
        ("purchase-date", ColumnKind::Timestamp),
        ("last-updated-date", ColumnKind::Timestamp),
        ("quantity", ColumnKind::BigInt),
        ("item-price", ColumnKind::Double),
        ("item-tax", ColumnKind::Double),
        ("shipping-price", ColumnKind::Double),
        ("shipping-tax", ColumnKind::Double),
        ("gift-wrap-price", ColumnKind::Double),
        ("gift-wrap-tax", ColumnKind::Double),
        ("item-promotion-discount", ColumnKind::Double),
        ("ship-promotion-discount", ColumnKind::Double),
    ],
)];

/// The report types whose rows are split by data day, and the column that dates a row: the day the
/// report's window selects rows by (the orders flat files' header, as Amazon's sample files have it).
/// Any other report type is current per window.
pub const DATED_REPORT_TYPES: [(&str, &str); 2] = [
    ("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "purchase-date"),
    (
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
        "last-updated-date",
    ),
];

/// Report types whose days settle over weeks (FBA returns and reimbursements; reference §11).
const SETTLING_OVER_WEEKS: [&str; 4] = [
    "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA",
    "GET_FBA_REIMBURSEMENTS_DATA",
    "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE",
    "GET_XML_RETURNS_DATA_BY_RETURN_DATE",
];

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

    fn column_kinds(&self) -> BTreeMap<String, ColumnKind> {
        TYPED_COLUMNS
            .iter()
            .filter(|(prefix, _)| self.report_type.starts_with(prefix))
            .flat_map(|(_, columns)| columns.iter())
            .map(|(name, kind)| ((*name).to_owned(), *kind))
            .collect()
    }

    fn max_window_days(&self) -> Option<u32> {
        Some(MAX_WINDOW_DAYS)
    }

    /// Per report family (reference §11): Sales and Traffic changes for about 72 hours (final at age
    /// 4); FBA returns and reimbursements settle over weeks (re-pulled at 7 and 35, as peers do);
    /// orders by last update and settlement reports are changelogs, final when stored. Other types
    /// have no published figure and are treated like Sales and Traffic; a job may say otherwise.
    fn finality(&self, _attribution_days: Option<u32>) -> FinalityPolicy {
        let t = self.report_type.as_str();
        if t.contains("_BY_LAST_UPDATE_") || t.contains("SETTLEMENT") {
            FinalityPolicy::final_on_arrival("a changelog (orders by last update, settlements): final when stored")
        } else if SETTLING_OVER_WEEKS.contains(&t) {
            FinalityPolicy::repulling(
                &[7, 35],
                35,
                "FBA returns and reimbursements settle over weeks; peers re-pull at D+7 and D+35",
            )
        } else {
            FinalityPolicy::repulling(
                &[4],
                4,
                "Sales and Traffic changes for about 72 hours (selling-partner-api-models issue 2439)",
            )
        }
    }

    fn day_column(&self) -> Option<super::DayColumn> {
        DATED_REPORT_TYPES
            .iter()
            .find(|(report_type, _)| *report_type == self.report_type)
            .map(|(_, column)| super::DayColumn {
                name: (*column).to_owned(),
                kind: ColumnKind::Timestamp,
            })
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

    fn token_host(&self) -> TokenHost {
        TokenHost::Global
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_formats_follow_the_documented_output_types() {
        for (report_type, format) in [
            ("GET_SELLER_FEEDBACK_DATA", ContentFormat::Tsv),
            ("GET_V1_SELLER_PERFORMANCE_REPORT", ContentFormat::Xml),
            ("GET_V2_SELLER_PERFORMANCE_REPORT", ContentFormat::Json),
            ("GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", ContentFormat::Xml),
            (
                "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                ContentFormat::Tsv,
            ),
            ("GET_SALES_AND_TRAFFIC_REPORT", ContentFormat::Json),
            ("GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT", ContentFormat::Json),
            ("GET_MERCHANT_LISTINGS_ALL_DATA", ContentFormat::Tsv),
        ] {
            assert_eq!(default_format(report_type), Some(format), "{report_type}");
        }
    }

    #[test]
    fn easy_ship_documents_are_pdf_gst_reports_comma_separated_and_an_undocumented_type_needs_its_format() {
        assert_eq!(default_format("GET_EASYSHIP_DOCUMENTS"), Some(ContentFormat::Binary));
        assert_eq!(default_format("GST_MTR_B2B"), Some(ContentFormat::Csv));
        assert_eq!(default_format("GET_GST_MTR_B2B_CUSTOM"), Some(ContentFormat::Csv));
        assert_eq!(
            default_format("GET_V2_SETTLEMENT_REPORT_DATA_XML"),
            Some(ContentFormat::Xml)
        );
        let mut request = SpReportRequest {
            report_type: "GET_SOMETHING_NEW".into(),
            marketplace_ids: vec!["ATVPDKIKX0DER".into()],
            report_options: BTreeMap::new(),
            format: None,
            restricted: None,
        };
        assert!(request.validate().is_err_and(|e| e.contains("source.format")));
        request.format = Some(ContentFormat::Tsv);
        assert!(request.validate().is_ok());
    }

    #[test]
    fn restricted_report_types_name_their_role_and_a_job_can_say_otherwise() {
        let mut request = SpReportRequest {
            report_type: "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING".into(),
            marketplace_ids: vec!["ATVPDKIKX0DER".into()],
            report_options: BTreeMap::new(),
            format: None,
            restricted: None,
        };
        assert_eq!(request.restricted_role(), Some(ROLE_SHIPPING));
        request.restricted = Some(false);
        assert_eq!(request.restricted_role(), None);
        request.report_type = "GET_MERCHANT_LISTINGS_ALL_DATA".into();
        request.restricted = None;
        assert_eq!(request.restricted_role(), None);
        request.restricted = Some(true);
        assert_eq!(request.restricted_role(), Some("restricted"));
        assert_eq!(restricted_role("GET_ORDER_REPORT_DATA_TAX"), Some(ROLE_TAX_REMITTANCE));
    }
}
