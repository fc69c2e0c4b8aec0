//! Pre-signed URLs are credentials: anyone holding one can read the document until it expires.

use secrecy::{ExposeSecret, SecretString};

/// A pre-signed download URL. `Debug` shows only the scheme and host; the full URL is exposed only
/// to the HTTP call that needs it.
#[derive(Clone)]
pub struct DownloadUrl(SecretString);

impl DownloadUrl {
    /// Wraps a URL. Only `https` URLs are accepted, except `http` to loopback hosts (tests and the
    /// local demo).
    pub fn parse(url: impl Into<String>) -> Result<Self, InvalidUrl> {
        let url: String = url.into();
        let parsed = reqwest::Url::parse(&url).map_err(|_| InvalidUrl("not a valid URL"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(InvalidUrl("download URLs must use https")),
        }
        Ok(Self(SecretString::from(url)))
    }

    /// The full URL, for the request itself only.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// `scheme://host` — safe to log.
    pub fn redacted(&self) -> String {
        reqwest::Url::parse(self.expose())
            .ok()
            .and_then(|u| u.host_str().map(|h| format!("{}://{h}/…", u.scheme())))
            .unwrap_or_else(|| "<url>".into())
    }
}

impl std::fmt::Debug for DownloadUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DownloadUrl({})", self.redacted())
    }
}

/// A URL that cannot be used for a download.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid download URL: {0}")]
pub struct InvalidUrl(&'static str);
