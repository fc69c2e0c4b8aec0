//! Adapters: implementations of the ports over real services.

pub mod ads_reports;
pub mod amc;
pub mod api;
pub mod dynamo;
pub mod http;
pub mod lwa;
pub mod s3;
pub mod secrets;
pub mod slate;
pub mod sp_reports;

use std::io::Read;

use crate::transfer::DownloadUrl;

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
