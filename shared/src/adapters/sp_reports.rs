//! SP-API Reports 2021-06-30: createReport → getReport → getReportDocument, plus cancel, schedules,
//! and the retired 2020-09-04 encrypted document shape.
//!
//! Paths, status codes and usage plans are those of the official model (`reports_2021-06-30.json`).
//! Restricted report types (buyer PII) fetch their document with a Restricted Data Token from the
//! Tokens API, issued for exactly that document's path.
//!
//! Status mapping: `IN_QUEUE`/`IN_PROGRESS` → in progress; `DONE` → ready; `FATAL` → failed, with the
//! reason read from the error document the report points at; `CANCELLED` → no data (Amazon cancels a
//! report automatically when there is no data).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::adapters::api::{ApiClient, ApiError, Idempotency, Operation, path_segment};
use crate::adapters::small_document;
use crate::domain::document::{AesKey, Compression, Document, Encryption, iv_from_base64};
use crate::domain::source::sp_reports::{self as sp, SpReportRequest};
use crate::domain::{Region, TimeWindow, iso};
use crate::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};

/// createReport: 0.0167 rps, burst 15.
pub const CREATE_REPORT: Operation = Operation {
    name: "createReport",
    rate: sp::CREATE_REPORT_RATE,
    burst: sp::CREATE_REPORT_BURST,
};
/// getReport: 2 rps, burst 15.
pub const GET_REPORT: Operation = Operation {
    name: "getReport",
    rate: 2.0,
    burst: 15,
};
/// getReports: 0.0222 rps, burst 10.
pub const GET_REPORTS: Operation = Operation {
    name: "getReports",
    rate: 0.0222,
    burst: 10,
};
/// getReportDocument: 0.0167 rps, burst 15.
pub const GET_REPORT_DOCUMENT: Operation = Operation {
    name: "getReportDocument",
    rate: 0.0167,
    burst: 15,
};
/// cancelReport: 0.0222 rps, burst 10.
pub const CANCEL_REPORT: Operation = Operation {
    name: "cancelReport",
    rate: 0.0222,
    burst: 10,
};
/// The Tokens API's createRestrictedDataToken: 1 rps, burst 10 (tokens_2021-03-01.json).
pub const CREATE_RESTRICTED_DATA_TOKEN: Operation = Operation {
    name: "createRestrictedDataToken",
    rate: 1.0,
    burst: 10,
};
/// The schedule operations: 0.0222 rps, burst 10.
pub const SCHEDULES: Operation = Operation {
    name: "reportSchedules",
    rate: 0.0222,
    burst: 10,
};

/// The production (or sandbox) endpoint of a region.
pub fn endpoint(region: Region, sandbox: bool) -> String {
    let host = match region {
        Region::Na => "sellingpartnerapi-na.amazon.com",
        Region::Eu => "sellingpartnerapi-eu.amazon.com",
        Region::Fe => "sellingpartnerapi-fe.amazon.com",
    };
    if sandbox {
        format!("https://sandbox.{host}")
    } else {
        format!("https://{host}")
    }
}

/// A report as getReport returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The report id.
    pub report_id: String,
    /// The report type.
    pub report_type: String,
    /// `IN_QUEUE`, `IN_PROGRESS`, `DONE`, `FATAL` or `CANCELLED`.
    pub processing_status: String,
    /// The marketplaces.
    #[serde(default)]
    pub marketplace_ids: Vec<String>,
    /// Start of the data.
    #[serde(default)]
    pub data_start_time: Option<DateTime<Utc>>,
    /// End of the data.
    #[serde(default)]
    pub data_end_time: Option<DateTime<Utc>>,
    /// The document (DONE, and FATAL with an error document).
    #[serde(default)]
    pub report_document_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reports {
    #[serde(default)]
    reports: Vec<Report>,
    #[serde(default)]
    next_token: Option<String>,
}

/// The most getReports pages one search reads (100 reports each, since the attempt started; the
/// operation allows a burst of 10).
const MAX_REPORT_PAGES: usize = 5;
/// The most marketplaces getReports filters by (reports_2021-06-30.json: `getReports.marketplaceIds`
/// `maxItems: 10`).
pub const MAX_SEARCH_MARKETPLACES: usize = 10;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptionDetails {
    standard: String,
    initialization_vector: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportDocument {
    report_document_id: String,
    url: String,
    #[serde(default)]
    compression_algorithm: Option<String>,
    #[serde(default)]
    encryption_details: Option<EncryptionDetails>,
}

/// A report schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSchedule {
    /// Its id (absent when creating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_schedule_id: Option<String>,
    /// The report type.
    pub report_type: String,
    /// The marketplaces.
    #[serde(default)]
    pub marketplace_ids: Vec<String>,
    /// Report options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub report_options: BTreeMap<String, String>,
    /// An ISO-8601 period from the model's enum (`PT1H`, `P1D`, …).
    pub period: String,
    /// When the next report is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_report_creation_time: Option<DateTime<Utc>>,
}

/// The periods the model allows for schedules.
pub const SCHEDULE_PERIODS: [&str; 18] = [
    "PT5M", "PT15M", "PT30M", "PT1H", "PT2H", "PT4H", "PT8H", "PT12H", "P1D", "P2D", "P3D", "PT84H", "P7D", "P14D",
    "P15D", "P18D", "P30D", "P1M",
];

/// The SP-API Reports client of one seller in one region.
#[derive(Debug, Clone)]
pub struct SpReportsClient {
    api: ApiClient,
    base_url: String,
    content_encoding_header: bool,
}

impl SpReportsClient {
    /// A client of `base_url` (see [`endpoint`]). `api` must send tokens as `x-amz-access-token`.
    pub fn new(api: ApiClient, base_url: impl Into<String>) -> Self {
        Self {
            api,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            content_encoding_header: false,
        }
    }

    /// Asks getReportDocument for URLs that label GZIP documents `Content-Encoding: gzip`
    /// (`enableContentEncodingUrlHeader=true`). The transfer never relies on the label, so the
    /// default (off) is fine; this exists for parity with other tools reading the same URL.
    pub fn with_content_encoding_header(mut self, enabled: bool) -> Self {
        self.content_encoding_header = enabled;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}/reports/2021-06-30/{path}", self.base_url)
    }

    async fn create_report(&self, body: &serde_json::Value) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            report_id: String,
        }
        let response = self
            .api
            .send(
                &CREATE_REPORT,
                Method::POST,
                Idempotency::Create,
                |r| r.json(body),
                &self.url("reports"),
            )
            .await?;
        Ok(response.json::<Created>()?.report_id)
    }

    /// The reports of `request`'s type created since `since` (newest first) in at least one of its
    /// first [`MAX_SEARCH_MARKETPLACES`] marketplaces: getReports takes no more (createReport takes 25),
    /// and a report of exactly the request's marketplaces is among them; callers match the exact set.
    pub async fn find_reports(&self, request: &SpReportRequest, since: DateTime<Utc>) -> Result<Vec<Report>, ApiError> {
        let searched = &request.marketplace_ids[..request.marketplace_ids.len().min(MAX_SEARCH_MARKETPLACES)];
        let first = [
            ("reportTypes", request.report_type.clone()),
            ("marketplaceIds", searched.join(",")),
            ("createdSince", iso(since)),
            ("pageSize", "100".to_owned()),
        ];
        let mut reports = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_REPORT_PAGES {
            // A page after the first is asked for with its nextToken as the only parameter (the model).
            let query: Vec<(&str, String)> = match &next {
                None => first.to_vec(),
                Some(token) => vec![("nextToken", token.clone())],
            };
            let page: Reports = self
                .api
                .send(
                    &GET_REPORTS,
                    Method::GET,
                    Idempotency::Idempotent,
                    |r| r.query(&query),
                    &self.url("reports"),
                )
                .await?
                .json()?;
            reports.extend(page.reports);
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(reports),
            }
        }
        tracing::warn!(pages = MAX_REPORT_PAGES, "getReports had more pages than are read");
        Ok(reports)
    }

    /// getReport.
    pub async fn get_report(&self, id: &str) -> Result<Report, ApiError> {
        let id = path_segment(id)?;
        self.api
            .send(
                &GET_REPORT,
                Method::GET,
                Idempotency::Idempotent,
                |r| r,
                &self.url(&format!("reports/{id}")),
            )
            .await?
            .json()
    }

    /// cancelReport (only `IN_QUEUE` reports can be cancelled).
    pub async fn cancel_report(&self, id: &str) -> Result<(), ApiError> {
        let id = path_segment(id)?;
        self.api
            .send(
                &CANCEL_REPORT,
                Method::DELETE,
                Idempotency::Idempotent,
                |r| r,
                &self.url(&format!("reports/{id}")),
            )
            .await?;
        Ok(())
    }

    /// A Restricted Data Token for exactly `GET path` (the Tokens API takes only a specific path for
    /// getReportDocument, never the generic `{reportDocumentId}`). The token lives in memory for this
    /// one call and is never logged or stored.
    async fn restricted_data_token(&self, path: &str, role: &str) -> Result<SecretString, SourceError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Rdt {
            restricted_data_token: String,
        }
        let body = serde_json::json!({
            "restrictedResources": [{"method": "GET", "path": path}],
        });
        let refused = |e: ApiError| {
            with_refusal_reason(e, |reason| {
                format!(
                    "the app was refused a Restricted Data Token for this report's document; a restricted \
                     report type needs the {role} role on the app and the seller's authorisation of it: {reason}"
                )
            })
        };
        let response = self
            .api
            .send(
                &CREATE_RESTRICTED_DATA_TOKEN,
                Method::POST,
                Idempotency::Idempotent,
                |r| r.json(&body),
                &format!("{}/tokens/2021-03-01/restrictedDataToken", self.base_url),
            )
            .await
            .map_err(refused)?;
        Ok(SecretString::from(response.json::<Rdt>()?.restricted_data_token))
    }

    /// getReportDocument; with a Restricted Data Token for that very path when `restricted_role` says
    /// the report type is restricted.
    async fn get_document(
        &self,
        document_id: &str,
        restricted_role: Option<&str>,
    ) -> Result<ReportDocument, SourceError> {
        let id = path_segment(document_id)?;
        let flag = self.content_encoding_header;
        let build = |r: reqwest::RequestBuilder| {
            if flag {
                r.query(&[("enableContentEncodingUrlHeader", "true")])
            } else {
                r
            }
        };
        let url = self.url(&format!("documents/{id}"));
        let response = match restricted_role {
            None => {
                self.api
                    .send(&GET_REPORT_DOCUMENT, Method::GET, Idempotency::Idempotent, build, &url)
                    .await?
            }
            Some(role) => {
                let token = self
                    .restricted_data_token(&format!("/reports/2021-06-30/documents/{id}"), role)
                    .await?;
                self.api
                    .send_with_token(&GET_REPORT_DOCUMENT, Method::GET, build, &url, &token)
                    .await
                    .map_err(|e| {
                        with_refusal_reason(e, |reason| {
                            format!(
                                "getReportDocument refused the Restricted Data Token issued for it (the {role} role): {reason}"
                            )
                        })
                    })?
            }
        };
        // 2021-06-30 answers unwrapped; the retired 2020-09-04 shape wraps it in `payload`.
        let value: serde_json::Value = response.json()?;
        let value = value.get("payload").cloned().unwrap_or(value);
        serde_json::from_value(value).map_err(|e| {
            ApiError::Decode {
                operation: GET_REPORT_DOCUMENT.name,
                message: e.to_string(),
            }
            .into()
        })
    }

    /// createReportSchedule → the schedule id.
    pub async fn create_schedule(&self, schedule: &ReportSchedule) -> Result<String, SourceError> {
        if !SCHEDULE_PERIODS.contains(&schedule.period.as_str()) {
            return Err(SourceError::Invalid(format!(
                "period {:?} is not one of {}",
                schedule.period,
                SCHEDULE_PERIODS.join(", ")
            )));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            report_schedule_id: String,
        }
        let response = self
            .api
            .send(
                &SCHEDULES,
                Method::POST,
                Idempotency::Create,
                |r| r.json(schedule),
                &self.url("schedules"),
            )
            .await?;
        Ok(response.json::<Created>()?.report_schedule_id)
    }

    /// getReportSchedules for 1–10 report types.
    pub async fn list_schedules(&self, report_types: &[&str]) -> Result<Vec<ReportSchedule>, SourceError> {
        if report_types.is_empty() || report_types.len() > 10 {
            return Err(SourceError::Invalid(
                "getReportSchedules takes 1 to 10 report types".into(),
            ));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Schedules {
            #[serde(default)]
            report_schedules: Vec<ReportSchedule>,
        }
        let types = report_types.join(",");
        let response = self
            .api
            .send(
                &SCHEDULES,
                Method::GET,
                Idempotency::Idempotent,
                |r| r.query(&[("reportTypes", types.as_str())]),
                &self.url("schedules"),
            )
            .await?;
        Ok(response.json::<Schedules>()?.report_schedules)
    }

    /// cancelReportSchedule.
    pub async fn cancel_schedule(&self, id: &str) -> Result<(), SourceError> {
        let id = path_segment(id)?;
        self.api
            .send(
                &SCHEDULES,
                Method::DELETE,
                Idempotency::Idempotent,
                |r| r,
                &self.url(&format!("schedules/{id}")),
            )
            .await?;
        Ok(())
    }

    /// The reason of a FATAL report: the text of its error document, or a note that it has none.
    async fn fatal_reason(&self, request: &SpReportRequest, report: &Report) -> String {
        let Some(document_id) = &report.report_document_id else {
            return "FATAL without an error document".into();
        };
        let reason = async {
            let document = self
                .get_document(document_id, request.restricted_role())
                .await
                .map_err(|e| e.to_string())?;
            let url = self.api.download_url(document.url).map_err(|e| e.to_string())?;
            small_document(
                self.api.http(),
                &url,
                document.compression_algorithm.as_deref() == Some("GZIP"),
            )
            .await
        }
        .await;
        match reason {
            Ok(text) => text,
            Err(e) => format!("FATAL; the error document could not be read: {e}"),
        }
    }
}

impl SpReportsClient {
    /// The report of `request`'s type for exactly `window` created since `since`, if any, whatever its
    /// status (a cancelled or fatal report is still the answer to that request).
    async fn find_report(
        &self,
        request: &SpReportRequest,
        window: &TimeWindow,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, ApiError> {
        // getReports does not return a report's reportOptions (the Report model has none), so a report
        // asked for with options cannot be told apart from another job's with other options: it is never
        // adopted (a second create is the lesser harm than another job's data under this one's run).
        if !request.report_options.is_empty() {
            tracing::info!("the job's reportOptions cannot be matched in getReports; creating instead of adopting");
            return Ok(None);
        }
        let mut wanted = request.marketplace_ids.clone();
        wanted.sort();
        let found = self.find_reports(request, since).await?;
        Ok(found
            .into_iter()
            .find(|r| {
                let mut marketplaces = r.marketplace_ids.clone();
                marketplaces.sort();
                r.report_type == request.report_type
                    && marketplaces == wanted
                    && same_time(r.data_start_time, window.start)
                    && same_time(r.data_end_time, window.end)
            })
            .map(|r| r.report_id))
    }
}

/// `e` as a [`SourceError`], a refusal ([`SourceError::NotAuthorized`]) explained by `explain`.
fn with_refusal_reason(e: ApiError, explain: impl FnOnce(String) -> String) -> SourceError {
    match SourceError::from(e) {
        SourceError::NotAuthorized(reason) => SourceError::NotAuthorized(explain(reason)),
        other => other,
    }
}

fn same_time(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> bool {
    a.is_some_and(|a| a == b)
}

impl ReportSource for SpReportsClient {
    type Request = SpReportRequest;

    async fn create(&self, request: &SpReportRequest, window: &TimeWindow) -> Result<String, SourceError> {
        request.validate().map_err(SourceError::Invalid)?;
        let mut body = serde_json::json!({
            "reportType": request.report_type,
            "marketplaceIds": request.marketplace_ids,
            "dataStartTime": iso(window.start),
            "dataEndTime": iso(window.end),
        });
        if !request.report_options.is_empty() {
            body["reportOptions"] = serde_json::json!(request.report_options);
        }
        let since = Utc::now() - chrono::Duration::seconds(30);
        let body = &body;
        let id = self
            .api
            .create_once(
                move || async move { self.create_report(body).await },
                move || async move { self.find_report(request, window, since).await },
            )
            .await?;
        tracing::info!(report_id = %id, report_type = %request.report_type, "SP-API report created");
        Ok(id)
    }

    async fn find_existing(
        &self,
        request: &SpReportRequest,
        window: &TimeWindow,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, SourceError> {
        Ok(self.find_report(request, window, since).await?)
    }

    async fn status(&self, request: &SpReportRequest, id: &str) -> Result<RequestStatus, SourceError> {
        let report = self.get_report(id).await?;
        Ok(match report.processing_status.as_str() {
            "DONE" => RequestStatus::Ready,
            "CANCELLED" => RequestStatus::NoData {
                reason: "the report was cancelled (Amazon cancels reports that have no data)".into(),
            },
            "FATAL" => RequestStatus::Failed {
                state: "FATAL".into(),
                reason: self.fatal_reason(request, &report).await,
            },
            other => RequestStatus::InProgress {
                state: other.to_owned(),
            },
        })
    }

    async fn documents(&self, request: &SpReportRequest, id: &str) -> Result<Vec<SourceDocument>, SourceError> {
        let report = self.get_report(id).await?;
        let document_id = match (report.processing_status.as_str(), &report.report_document_id) {
            ("DONE", Some(doc)) => doc.clone(),
            (status, _) => {
                return Err(SourceError::Unusable(format!(
                    "report {id} is {status}, not DONE with a document"
                )));
            }
        };
        Ok(vec![self.document(request, &document_id).await?])
    }
}

impl SpReportsClient {
    /// The report document `document_id` of a report asked for by `request` (getReportDocument, with a
    /// Restricted Data Token when the report type is restricted): where to download it and how to decode it.
    pub async fn document(&self, request: &SpReportRequest, document_id: &str) -> Result<SourceDocument, SourceError> {
        let document = self.get_document(document_id, request.restricted_role()).await?;
        let encryption = match document.encryption_details {
            None => Encryption::None,
            Some(details) if details.standard == "AES" => Encryption::AesCbc {
                key: AesKey::from_base64(&details.key).map_err(|e| SourceError::Unusable(e.to_string()))?,
                iv: iv_from_base64(&details.initialization_vector, Some(16))
                    .map_err(|e| SourceError::Unusable(e.to_string()))?,
            },
            Some(details) => {
                return Err(SourceError::Unusable(format!(
                    "unsupported encryption standard {:?}",
                    details.standard
                )));
            }
        };
        let compression = match document.compression_algorithm.as_deref() {
            None => Compression::None,
            Some("GZIP") => Compression::Gzip,
            Some(other) => {
                return Err(SourceError::Unusable(format!(
                    "unsupported compressionAlgorithm {other:?}"
                )));
            }
        };
        Ok(SourceDocument {
            document: Document {
                source_id: document.report_document_id,
                url: self
                    .api
                    .download_url(document.url)
                    .map_err(|e| SourceError::Unusable(e.to_string()))?,
                encryption,
                compression,
                format: request.content_format(),
            },
            // The model documents a five-minute URL.
            expires_at: Some(Utc::now() + chrono::Duration::minutes(5)),
            produced_at: None,
            size: None,
        })
    }
}
