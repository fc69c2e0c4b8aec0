//! Adapters: implementations of the ports over real services.

pub mod ads_reports;
pub mod amc;
pub mod api;
pub mod dynamo;
pub mod glue;
pub mod kms;
pub mod lwa;
pub mod s3;
pub mod secrets;
pub mod sellers;
pub mod sfn;
pub mod slate;
pub mod sp_reports;

use std::io::Read;

use crate::domain::document::DownloadUrl;

/// The largest small document read whole (an SP-API FATAL error document): 1 MiB compressed, 64 KiB
/// of text kept.
const SMALL_DOCUMENT_LIMIT: u64 = 1 << 20;
const SMALL_TEXT_LIMIT: u64 = 64 << 10;

/// Downloads a small document (an error report) and returns its text, gunzipped when `gzip`, cut at
/// 64 KiB. Errors never contain the URL.
pub(crate) async fn small_document(http: &reqwest::Client, url: &DownloadUrl, gzip: bool) -> Result<String, String> {
    use futures_util::StreamExt;
    let response = http
        .get(url.expose())
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.without_url().to_string())?;
        body.extend_from_slice(&chunk);
        if body.len() as u64 > SMALL_DOCUMENT_LIMIT {
            return Err("the document is larger than an error document can be".into());
        }
    }
    let mut text = Vec::new();
    let read = if gzip {
        flate2::read::MultiGzDecoder::new(body.as_slice())
            .take(SMALL_TEXT_LIMIT)
            .read_to_end(&mut text)
    } else {
        body.as_slice().take(SMALL_TEXT_LIMIT).read_to_end(&mut text)
    };
    read.map_err(|e| format!("unreadable error document: {e}"))?;
    Ok(String::from_utf8_lossy(&text).trim().to_owned())
}

/// An AWS SDK error, summed up without the raw response (which the SDK's own rendering of a service
/// error includes).
pub struct SdkFailure {
    /// The HTTP status and error code, for an error the service answered.
    pub service: Option<(u16, String)>,
    /// `HTTP 400 ValidationException: message` for a service error, the SDK's rendering otherwise.
    pub summary: String,
    /// A timeout, a dispatch failure or an unreadable response: the request may not have been served.
    pub transport: bool,
}

impl SdkFailure {
    /// Whether the service refused the request for good: an HTTP 4xx but 429 whose code is none of
    /// `retryable` (the service's throttling and not-ready codes, which clear with time). Anything
    /// else (5xx, throttling, no answer) may succeed when tried again.
    pub fn refused(&self, retryable: &[&str]) -> bool {
        matches!(&self.service, Some((status, code))
            if *status < 500 && *status != 429 && !retryable.contains(&code.as_str()))
    }
}

/// Sums up an error of any AWS SDK client (S3, DynamoDB, Secrets Manager share the error types).
pub fn sdk_failure<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> SdkFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("unknown error").to_owned();
            let summary = format!(
                "HTTP {status} {code}: {}",
                service.err().message().unwrap_or("no message")
            );
            SdkFailure {
                service: Some((status, code)),
                summary,
                transport: false,
            }
        }
        other => SdkFailure {
            service: None,
            summary: aws_sdk_s3::error::DisplayErrorContext(other).to_string(),
            transport: matches!(
                other,
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
            ),
        },
    }
}
