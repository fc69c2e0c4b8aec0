//! Credential sets and access tokens: what Login with Amazon grants and every source presents.
//! Secrets are [`SecretString`]s: never logged, never in an error, never in `Debug` output.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// How long before its expiry an access token is renewed (the SP-API client libraries use 60 s).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// One credential set: an LWA application (client id and secret) and a seller's or advertiser's
/// refresh token.
#[derive(Clone)]
pub struct Credentials {
    /// The LWA client id (`amzn1.application-oa2-client.…`); not a secret, sent as a header by the Ads API.
    pub client_id: String,
    /// The LWA client secret.
    pub client_secret: SecretString,
    /// The refresh token (`Atzr|…`).
    pub refresh_token: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

/// An access token and when it stops working.
#[derive(Clone)]
pub struct AccessToken {
    /// The bearer token (`Atza|…`).
    pub token: SecretString,
    /// When LWA said it expires.
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// Whether the token is still good for at least [`REFRESH_MARGIN`] at `now`.
    pub fn is_fresh_at(&self, now: DateTime<Utc>) -> bool {
        let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_else(|_| chrono::Duration::seconds(60));
        now + margin < self.expires_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Which Login with Amazon token host a source's credentials are refreshed at, when the credential set
/// does not name one (`tokenUrl` in the secret).
///
/// SP-API sellers authorise through `api.amazon.com` in every documented example, whatever the region;
/// the regional hosts (`api.amazon.com`, `api.amazon.co.uk`, `api.amazon.co.jp`) are documented for the
/// Ads API (reference amazon-apis.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenHost {
    /// `api.amazon.com`, whatever the region (SP-API; Slate, whose Datasets API page names only it).
    Global,
    /// The region's host (Ads API, AMC).
    Regional,
}
