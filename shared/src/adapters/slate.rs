//! Prime Video Slate datasets: accounts → groups → businesses → datasets → files, each a paginated
//! list (`limit`/`offset`, `{total, next, data}`), files delivered as ZIP archives of CSV changelogs.
//!
//! Paths, paging and parameters are those of the Datasets API's official page (the user's seed
//! `002_8fd61206bc5c2333.txt`, reference §4), on the base `https://videocentral.amazon.com/apis`:
//!
//! | list | path |
//! |---|---|
//! | accounts | `/v2/accounts` |
//! | an account's groups | `/v2/accounts/{account_id}` |
//! | a group's businesses | `/v2/accounts/{account_id}/{group_id}` |
//! | a business's datasets | `/v2/accounts/{account_id}/{group_id}/{business_id}/datasets` |
//! | a dataset's files | `/v2/accounts/{account_id}/{group_id}/{business_id}/datasets/{dataset_id}` with `startDateTime`, `endDateTime` (`YYYY-MM-DDTHH:MM:SSZ`, UTC) and `limit` ≤ 1,000 |
//!
//! An export larger than 300 MB comes as several files; each pre-signed URL lives 60 minutes. The file
//! entries' field names are not in the stored page: they are read tolerantly ([`SlateFile`]).
//!
//! There is no Amazon-side request to create: a "request" is the window of files to fetch, its id
//! encodes the window, and it is ready at once (no data when no file falls in it). Incremental runs
//! pass the previous run's watermark ([`SlateRequest::after`]): as the page's incremental example does,
//! the next `startDateTime` is the last timestamp retrieved plus one second, and [`watermark`] of the
//! documents is the next run's starting point — no gap, no overlap.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::adapters::api::{ApiClient, Idempotency, Operation, path_segment};
use crate::domain::document::{Compression, ContentFormat, Document, Encryption};
use crate::domain::source::slate::SlateRequest;
use crate::domain::{TimeWindow, iso};
use crate::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};

/// The documented production base URL.
pub const DEFAULT_BASE_URL: &str = "https://videocentral.amazon.com/apis";
/// Page size asked for the lists of accounts, groups, businesses and datasets.
pub const PAGE_SIZE: u32 = 100;
/// Page size asked for a dataset's files (the documented maximum).
pub const FILES_PAGE_SIZE: u32 = 1000;
/// Slate publishes no rates; a polite default.
pub const SLATE: Operation = Operation {
    name: "slate",
    rate: 2.0,
    burst: 10,
};

/// One entry of a list (account, group, business, dataset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A dataset file. The official page publishes no example entry (seed 002), so each field is read
/// under the names Slate's APIs and peers use, and only the URL is required: a file without an id is
/// named by its URL's path, and one without a timestamp is still stored (the API selected it for the
/// window; storing by id keeps it once).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawFile")]
pub struct SlateFile {
    /// Its id (the URL's path when the entry names none).
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// When it was published (the watermark), when the entry says.
    pub published_at: Option<DateTime<Utc>>,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// The pre-signed download URL.
    pub url: String,
    /// When the URL expires.
    pub url_expires_at: Option<DateTime<Utc>>,
}

/// A file entry as the API sends it, under any of the names its fields go by.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    #[serde(default, alias = "fileId", alias = "file_id")]
    id: Option<String>,
    #[serde(default, alias = "fileName", alias = "file_name")]
    name: Option<String>,
    #[serde(
        default,
        alias = "timestamp",
        alias = "createdAt",
        alias = "created_at",
        alias = "lastModified",
        alias = "last_modified",
        alias = "published_at"
    )]
    published_at: Option<DateTime<Utc>>,
    #[serde(default, alias = "fileSize", alias = "file_size", alias = "sizeInBytes")]
    size: Option<u64>,
    #[serde(
        default,
        alias = "downloadUrl",
        alias = "download_url",
        alias = "presignedUrl",
        alias = "presigned_url",
        alias = "fileUrl",
        alias = "link"
    )]
    url: Option<String>,
    #[serde(default, alias = "expiresAt", alias = "url_expires_at", alias = "expiration")]
    url_expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<RawFile> for SlateFile {
    type Error = String;

    fn try_from(raw: RawFile) -> Result<Self, String> {
        let url = raw
            .url
            .filter(|u| !u.is_empty())
            .ok_or("a file entry has no download URL (url, downloadUrl, presignedUrl, fileUrl or link)")?;
        let id = match raw.id.filter(|i| !i.is_empty()) {
            Some(id) => id,
            None => id_of_url(&url).ok_or("a file entry has neither an id nor a URL with a path")?,
        };
        Ok(Self {
            id,
            name: raw.name,
            published_at: raw.published_at,
            size: raw.size,
            url,
            url_expires_at: raw.url_expires_at,
        })
    }
}

/// A file's id taken from its URL: the path without the query (a pre-signed URL's signature changes
/// with every listing; its path names the object).
fn id_of_url(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let path = parsed.path().trim_matches('/');
    (!path.is_empty()).then(|| path.to_owned())
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    next: Option<String>,
}

/// The latest publication time among `documents`: the next run's watermark.
pub fn watermark(documents: &[SourceDocument]) -> Option<DateTime<Utc>> {
    documents.iter().filter_map(|d| d.produced_at).max()
}

/// The Slate client of one credential set.
#[derive(Debug, Clone)]
pub struct SlateClient {
    api: ApiClient,
    base_url: String,
}

impl SlateClient {
    /// A client of `base_url` (see [`DEFAULT_BASE_URL`]). `api` must send bearer tokens.
    pub fn new(api: ApiClient, base_url: impl Into<String>) -> Self {
        Self {
            api,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// Every item of a paginated list, following `next` links to exhaustion. A `next` link that
    /// leaves the configured base URL is refused.
    async fn all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        page_size: u32,
    ) -> Result<Vec<T>, SourceError> {
        let mut out = Vec::new();
        let mut url = format!("{}/{path}", self.base_url);
        let mut query: Vec<(&str, String)> = query.to_vec();
        query.push(("limit", page_size.to_string()));
        query.push(("offset", "0".to_owned()));
        let mut first = true;
        for _ in 0..10_000 {
            let q = if first { query.clone() } else { Vec::new() };
            let response = self
                .api
                .send(&SLATE, Method::GET, Idempotency::Idempotent, |r| r.query(&q), &url)
                .await?;
            let page: Page<T> = response.json()?;
            let empty = page.data.is_empty();
            out.extend(page.data);
            match page.next.filter(|n| !n.is_empty()) {
                Some(next) if !empty => {
                    if !next.starts_with(&format!("{}/", self.base_url)) {
                        return Err(SourceError::Unusable(
                            "a pagination link points outside the Slate API".into(),
                        ));
                    }
                    url = next;
                    first = false;
                }
                _ => return Ok(out),
            }
        }
        Err(SourceError::Transient(
            "pagination did not end after 10,000 pages".into(),
        ))
    }

    /// The accounts the credentials can see.
    pub async fn accounts(&self) -> Result<Vec<Entry>, SourceError> {
        self.all("v2/accounts", &[], PAGE_SIZE).await
    }

    /// An account's groups.
    pub async fn groups(&self, account: &str) -> Result<Vec<Entry>, SourceError> {
        let a = path_segment(account)?;
        self.all(&format!("v2/accounts/{a}"), &[], PAGE_SIZE).await
    }

    /// A group's businesses.
    pub async fn businesses(&self, account: &str, group: &str) -> Result<Vec<Entry>, SourceError> {
        let (a, g) = (path_segment(account)?, path_segment(group)?);
        self.all(&format!("v2/accounts/{a}/{g}"), &[], PAGE_SIZE).await
    }

    /// A business's datasets.
    pub async fn datasets(&self, account: &str, group: &str, business: &str) -> Result<Vec<Entry>, SourceError> {
        let (a, g, b) = (path_segment(account)?, path_segment(group)?, path_segment(business)?);
        self.all(&format!("v2/accounts/{a}/{g}/{b}/datasets"), &[], PAGE_SIZE)
            .await
    }

    /// The files of `request`'s dataset published in `window` and after the watermark, oldest first.
    pub async fn files(&self, request: &SlateRequest, window: &TimeWindow) -> Result<Vec<SlateFile>, SourceError> {
        let (a, g, b, d) = (
            path_segment(&request.account_id)?,
            path_segment(&request.group_id)?,
            path_segment(&request.business_id)?,
            path_segment(&request.dataset_id)?,
        );
        // The incremental rule of the official page: the next start is the last timestamp retrieved plus
        // one second (timestamps are to the second).
        let start = request
            .after
            .map_or(window.start, |w| (w + chrono::Duration::seconds(1)).max(window.start));
        if start >= window.end {
            return Ok(Vec::new());
        }
        let mut files: Vec<SlateFile> = self
            .all(
                &format!("v2/accounts/{a}/{g}/{b}/datasets/{d}"),
                &[("startDateTime", iso(start)), ("endDateTime", iso(window.end))],
                FILES_PAGE_SIZE,
            )
            .await?;
        // The API selected the files by the window; a timestamp, where an entry has one, only keeps
        // out what an earlier run stored (at or before the watermark) or what lies outside the window.
        // An entry without one is kept: storing by id stores it once.
        files.retain(|f| {
            f.published_at
                .is_none_or(|t| t >= start && t < window.end && request.after.is_none_or(|w| t > w))
        });
        files.sort_by(|x, y| {
            x.published_at
                .is_none()
                .cmp(&y.published_at.is_none())
                .then_with(|| x.published_at.cmp(&y.published_at))
                .then_with(|| x.id.cmp(&y.id))
        });
        let mut seen = std::collections::HashSet::new();
        files.retain(|f| seen.insert(f.id.clone()));
        Ok(files)
    }
}

/// The id of a Slate "request": its window.
fn window_id(window: &TimeWindow) -> String {
    format!("{}_{}", window.start.timestamp(), window.end.timestamp())
}

fn parse_window_id(id: &str) -> Result<TimeWindow, SourceError> {
    let bad = || SourceError::Unusable(format!("{id:?} is not a Slate window id"));
    let (s, e) = id.split_once('_').ok_or_else(bad)?;
    let parse = |x: &str| {
        x.parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or_else(bad)
    };
    TimeWindow::new(parse(s)?, parse(e)?).map_err(|_| bad())
}

impl ReportSource for SlateClient {
    type Request = SlateRequest;

    async fn create(&self, request: &SlateRequest, window: &TimeWindow) -> Result<String, SourceError> {
        path_segment(&request.dataset_id)
            .map_err(|_| SourceError::Invalid("datasetId is not a valid identifier".into()))?;
        Ok(window_id(window))
    }

    async fn status(&self, request: &SlateRequest, id: &str) -> Result<RequestStatus, SourceError> {
        let window = parse_window_id(id)?;
        Ok(if self.files(request, &window).await?.is_empty() {
            RequestStatus::NoData {
                reason: "no file was published in the window".into(),
            }
        } else {
            RequestStatus::Ready
        })
    }

    async fn documents(&self, request: &SlateRequest, id: &str) -> Result<Vec<SourceDocument>, SourceError> {
        let window = parse_window_id(id)?;
        self.files(request, &window)
            .await?
            .into_iter()
            .map(|f| {
                Ok(SourceDocument {
                    document: Document {
                        source_id: f.id,
                        url: self
                            .api
                            .download_url(f.url)
                            .map_err(|e| SourceError::Unusable(e.to_string()))?,
                        encryption: Encryption::None,
                        compression: Compression::Zip,
                        format: ContentFormat::Csv,
                    },
                    expires_at: f.url_expires_at,
                    produced_at: f.published_at,
                    size: f.size,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entries_are_read_under_any_of_their_names_and_need_only_a_url() {
        let full: SlateFile = serde_json::from_value(serde_json::json!({
            "fileId": "f-1", "timestamp": "2026-11-20T06:00:00Z", "downloadUrl": "https://s3.example/a/b.zip?X-Amz-Signature=s",
            "fileSize": 12
        }))
        .expect("an entry");
        assert_eq!((full.id.as_str(), full.size), ("f-1", Some(12)));
        assert!(full.published_at.is_some());
        let bare: SlateFile = serde_json::from_value(serde_json::json!({
            "presignedUrl": "https://s3.example/exports/2026/part-0001.zip?X-Amz-Signature=one"
        }))
        .expect("an entry with a URL only");
        assert_eq!(
            bare.id, "exports/2026/part-0001.zip",
            "the id is the URL's path, not its signature"
        );
        assert_eq!(bare.published_at, None);
        assert!(serde_json::from_value::<SlateFile>(serde_json::json!({"id": "x"})).is_err());
    }

    #[test]
    fn a_window_id_round_trips() {
        let w = TimeWindow::new(
            DateTime::from_timestamp(1_700_000_000, 0).expect("t"),
            DateTime::from_timestamp(1_700_086_400, 0).expect("t"),
        )
        .expect("window");
        assert_eq!(parse_window_id(&window_id(&w)), Ok(w));
        assert!(parse_window_id("../etc").is_err());
    }
}
