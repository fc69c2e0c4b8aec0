//! Amazon Ads reporting v3 (`/reporting/reports`) and profile discovery (`/v2/profiles`).
//!
//! - Every report call carries `Amazon-Advertising-API-ClientId`, the bearer token and
//!   `Amazon-Advertising-API-Scope: <profileId>`; creates use the vendor content type.
//! - The 31-day limit is enforced before calling Amazon.
//! - A **425** ("The Request is a duplicate of : <id>") is answered by fetching that report and reusing
//!   it only when it asks for the same thing (dates, ad product, report type, time unit, group-by,
//!   columns, filters) and has not failed — Airbyte's rule. Otherwise the create is throttled until
//!   the other report is done.
//! - A spurious 401 while polling is retried once after a token refresh (by the shared policy).

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::adapters::api::{ApiClient, ApiError, Idempotency, Operation, path_segment};
use crate::domain::document::{Compression, ContentFormat, Document, Encryption};
use crate::domain::source::ads_reports::{AdsReportRequest, Filter};
use crate::domain::{Region, TimeWindow};
use crate::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};

/// The vendor content type of report creation.
pub const CREATE_CONTENT_TYPE: &str = "application/vnd.createasyncreportrequest.v3+json";

/// createReport: Amazon publishes no number and answers 429 without `Retry-After`; one a minute,
/// ten at once.
pub const CREATE_REPORT: Operation = Operation {
    name: "ads.createReport",
    rate: 1.0 / 60.0,
    burst: 10,
};
/// getReport.
pub const GET_REPORT: Operation = Operation {
    name: "ads.getReport",
    rate: 1.0,
    burst: 10,
};
/// listProfiles.
pub const LIST_PROFILES: Operation = Operation {
    name: "ads.listProfiles",
    rate: 1.0,
    burst: 5,
};

/// The production endpoint of a region (the AMC API lives on the same hosts).
pub fn endpoint(region: Region) -> &'static str {
    match region {
        Region::Na => "https://advertising-api.amazon.com",
        Region::Eu => "https://advertising-api-eu.amazon.com",
        Region::Fe => "https://advertising-api-fe.amazon.com",
    }
}

impl AdsReportRequest {
    fn body(&self, window: &TimeWindow) -> serde_json::Value {
        let (start, end) = window.inclusive_dates();
        let mut configuration = serde_json::json!({
            "adProduct": self.ad_product,
            "groupBy": self.group_by,
            "columns": self.columns,
            "reportTypeId": self.report_type_id,
            "timeUnit": self.time_unit,
            "format": "GZIP_JSON",
        });
        if !self.filters.is_empty() {
            configuration["filters"] = serde_json::json!(self.filters);
        }
        serde_json::json!({
            "name": format!("amzpipe {} {start}..{end}", self.report_type_id),
            "startDate": start.to_string(),
            "endDate": end.to_string(),
            "configuration": configuration,
        })
    }
}

/// The configuration echoed in an AsyncReport.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    /// Ad product.
    pub ad_product: String,
    /// Report type.
    pub report_type_id: String,
    /// Time unit.
    pub time_unit: String,
    /// Group-by.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Columns.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Filters.
    #[serde(default)]
    pub filters: Option<Vec<Filter>>,
}

/// An AsyncReport.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncReport {
    /// The report id (a UUID).
    pub report_id: String,
    /// `PENDING`, `PROCESSING`, `COMPLETED`, `FAILED` (some pages say `FAILURE`).
    pub status: String,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
    /// The configuration.
    pub configuration: Configuration,
    /// The download URL once completed.
    #[serde(default)]
    pub url: Option<String>,
    /// When the URL expires.
    #[serde(default)]
    pub url_expires_at: Option<DateTime<Utc>>,
    /// The document size.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Why it failed.
    #[serde(default)]
    pub failure_reason: Option<String>,
}

impl AsyncReport {
    /// Whether this report answers `request` for `window` (the 425 reuse rule).
    pub fn matches(&self, request: &AdsReportRequest, window: &TimeWindow) -> bool {
        let (start, end) = window.inclusive_dates();
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let filters = |v: &[Filter]| {
            let mut v: Vec<(String, Vec<String>)> = v.iter().map(|f| (f.field.clone(), sorted(&f.values))).collect();
            v.sort();
            v
        };
        let c = &self.configuration;
        self.start_date == start
            && self.end_date == end
            && c.ad_product == request.ad_product
            && c.report_type_id == request.report_type_id
            && c.time_unit == request.time_unit
            && sorted(&c.group_by) == sorted(&request.group_by)
            && sorted(&c.columns) == sorted(&request.columns)
            && filters(c.filters.as_deref().unwrap_or_default()) == filters(&request.filters)
            && matches!(self.status.as_str(), "PENDING" | "PROCESSING" | "COMPLETED")
    }
}

/// An advertising profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The profile id (the Scope header).
    pub profile_id: i64,
    /// Country code.
    pub country_code: String,
    /// Currency code.
    pub currency_code: String,
    /// Time zone (reports' dates are in it).
    pub timezone: String,
    /// The account.
    pub account_info: AccountInfo,
}

/// The account behind a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    /// Marketplace id.
    pub marketplace_string_id: String,
    /// Account id.
    pub id: String,
    /// `seller`, `vendor` or `agency`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Account name.
    #[serde(default)]
    pub name: String,
}

/// The Ads reporting client of one advertiser credential set in one region.
#[derive(Debug, Clone)]
pub struct AdsReportsClient {
    api: ApiClient,
    base_url: String,
}

/// The id in a 425 answer: `"The Request is a duplicate of : <uuid>"`.
pub fn duplicate_of(detail: &str) -> Option<&str> {
    let id = detail.rsplit(':').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(id)
}

impl AdsReportsClient {
    /// A client of `base_url` (see [`endpoint`]). `api` must send bearer tokens.
    pub fn new(api: ApiClient, base_url: impl Into<String>) -> Self {
        Self {
            api,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    fn headers(&self, r: reqwest::RequestBuilder, profile_id: &str) -> reqwest::RequestBuilder {
        r.header("Amazon-Advertising-API-ClientId", self.api.session().client_id())
            .header("Amazon-Advertising-API-Scope", profile_id)
    }

    /// The profiles this credential set can see in this region.
    pub async fn profiles(&self) -> Result<Vec<Profile>, SourceError> {
        let client_id = self.api.session().client_id().to_owned();
        let response = self
            .api
            .send(
                &LIST_PROFILES,
                Method::GET,
                Idempotency::Idempotent,
                |r| r.header("Amazon-Advertising-API-ClientId", &client_id),
                &format!("{}/v2/profiles", self.base_url),
            )
            .await?;
        Ok(response.json()?)
    }

    /// getReport.
    pub async fn get_report(&self, profile_id: &str, id: &str) -> Result<AsyncReport, ApiError> {
        let id = path_segment(id)?;
        self.api
            .send(
                &GET_REPORT,
                Method::GET,
                Idempotency::Idempotent,
                |r| self.headers(r, profile_id),
                &format!("{}/reporting/reports/{id}", self.base_url),
            )
            .await?
            .json()
    }

    /// deleteReport (cancels a pending one).
    pub async fn delete_report(&self, profile_id: &str, id: &str) -> Result<(), SourceError> {
        let id = path_segment(id)?;
        self.api
            .send(
                &GET_REPORT,
                Method::DELETE,
                Idempotency::Idempotent,
                |r| self.headers(r, profile_id),
                &format!("{}/reporting/reports/{id}", self.base_url),
            )
            .await?;
        Ok(())
    }

    async fn create_report(&self, request: &AdsReportRequest, window: &TimeWindow) -> Result<String, SourceError> {
        let body = request.body(window);
        let response = self
            .api
            .send_accepting(
                &CREATE_REPORT,
                Method::POST,
                Idempotency::Create,
                |r| {
                    self.headers(r, &request.profile_id)
                        .header(reqwest::header::CONTENT_TYPE, CREATE_CONTENT_TYPE)
                        .body(body.to_string())
                },
                &format!("{}/reporting/reports", self.base_url),
                &[425],
            )
            .await?;
        if response.status.as_u16() != 425 {
            return Ok(response.json::<AsyncReport>()?.report_id);
        }
        let (_, detail) = crate::adapters::api::describe_error(&response.body);
        let Some(existing) = duplicate_of(&detail) else {
            return Err(SourceError::Transient(format!("425 without a report id: {detail}")));
        };
        let report = self.get_report(&request.profile_id, existing).await?;
        if report.matches(request, window) {
            tracing::info!(report_id = %report.report_id, "Amazon reported a duplicate; reusing the matching report");
            Ok(report.report_id)
        } else {
            tracing::warn!(report_id = %report.report_id, status = %report.status, "Amazon reported a duplicate that asks for something else; waiting for it");
            Err(SourceError::Throttled {
                retry_after: std::time::Duration::from_secs(60),
            })
        }
    }
}

impl ReportSource for AdsReportsClient {
    type Request = AdsReportRequest;

    async fn create(&self, request: &AdsReportRequest, window: &TimeWindow) -> Result<String, SourceError> {
        request.validate().map_err(SourceError::Invalid)?;
        request
            .check_window(window, chrono::Utc::now().date_naive())
            .map_err(SourceError::Invalid)?;
        // An ambiguous failure is resolved by sending the same create again: Amazon answers 425 with the
        // report the first attempt made, which is reused after verification.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.create_report(request, window).await {
                Err(SourceError::Transient(message)) if attempt < 3 => {
                    tracing::warn!(attempt, error = %message, "report create failed; sending it again (a duplicate answers 425)");
                }
                other => return other,
            }
        }
    }

    async fn status(&self, request: &AdsReportRequest, id: &str) -> Result<RequestStatus, SourceError> {
        let report = self.get_report(&request.profile_id, id).await?;
        Ok(match report.status.as_str() {
            "COMPLETED" => RequestStatus::Ready,
            "FAILED" | "FAILURE" => RequestStatus::Failed {
                state: report.status.clone(),
                reason: report
                    .failure_reason
                    .unwrap_or_else(|| "FAILED without a reason".into()),
            },
            "PENDING" | "PROCESSING" => RequestStatus::InProgress {
                state: report.status.clone(),
            },
            // Not a status the API documents: polling it for hours would hide the problem.
            other => RequestStatus::Failed {
                state: other.to_owned(),
                reason: format!(
                    "the report is {other}, not one of the documented statuses (PENDING, PROCESSING, COMPLETED, FAILED)"
                ),
            },
        })
    }

    async fn documents(&self, request: &AdsReportRequest, id: &str) -> Result<Vec<SourceDocument>, SourceError> {
        let report = self.get_report(&request.profile_id, id).await?;
        let Some(url) = report.url.filter(|_| report.status == "COMPLETED") else {
            return Err(SourceError::Unusable(format!(
                "report {id} is {}, not COMPLETED",
                report.status
            )));
        };
        Ok(vec![SourceDocument {
            document: Document {
                source_id: report.report_id,
                url: self
                    .api
                    .download_url(url)
                    .map_err(|e| SourceError::Unusable(e.to_string()))?,
                encryption: Encryption::None,
                compression: Compression::Gzip,
                format: ContentFormat::JsonArray,
            },
            expires_at: report.url_expires_at,
            produced_at: None,
            size: report.file_size,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duplicate_id_is_read_from_the_425_detail() {
        assert_eq!(
            duplicate_of("The Request is a duplicate of : 0b1c6f2e-1111-4c3b-9f54-5d8a8f0c2a11"),
            Some("0b1c6f2e-1111-4c3b-9f54-5d8a8f0c2a11")
        );
        assert_eq!(duplicate_of("Too Early"), None);
    }
}
