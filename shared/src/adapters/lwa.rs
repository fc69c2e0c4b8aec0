//! Login with Amazon (LWA): the refresh-token grant every source authenticates with.
//!
//! [`LwaClient`] exchanges a refresh token for an access token at the regional token host (form-encoded,
//! `POST /auth/o2/token`). [`LwaSession`] caches the access token for one credential set and renews it
//! [`REFRESH_MARGIN`] before it expires, so a token never runs out between two calls of one step. When
//! LWA rotates the refresh token, the session keeps the new one and reports it through
//! [`LwaSession::rotated_refresh_token`] so that the caller can persist it.
//!
//! Secrets are [`SecretString`]s: client secrets, refresh and access tokens are never logged, never in
//! an error and never in `Debug` output.

use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::domain::Region;
pub use crate::domain::credentials::{AccessToken, Credentials, REFRESH_MARGIN, TokenHost};

/// The production token endpoint for credentials of `region` refreshed at `host` (see [`TokenHost`]).
pub fn token_endpoint(region: Region, host: TokenHost) -> &'static str {
    match (host, region) {
        (TokenHost::Global, _) | (TokenHost::Regional, Region::Na) => "https://api.amazon.com/auth/o2/token",
        (TokenHost::Regional, Region::Eu) => "https://api.amazon.co.uk/auth/o2/token",
        (TokenHost::Regional, Region::Fe) => "https://api.amazon.co.jp/auth/o2/token",
    }
}

/// The Login with Amazon consent page of a region, where a seller or advertiser authorises an
/// application (the authorization-code grant's first step).
pub fn consent_endpoint(region: Region) -> &'static str {
    match region {
        Region::Na => "https://www.amazon.com/ap/oa",
        Region::Eu => "https://eu.account.amazon.com/ap/oa",
        Region::Fe => "https://apac.account.amazon.com/ap/oa",
    }
}

/// The consent URL for `client_id` asking for `scope`, sending the browser back to `redirect_uri`
/// with `code` and the anti-forgery `state`.
pub fn consent_url(consent_endpoint: &str, client_id: &str, scope: &str, redirect_uri: &str, state: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("client_id", client_id),
        ("scope", scope),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ])
    .unwrap_or_default();
    format!("{consent_endpoint}?{query}")
}

/// How long LWA accepts an authorization code after consent.
pub const AUTHORIZATION_CODE_LIFETIME: Duration = Duration::from_secs(300);

/// What a successful refresh returned.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The new access token.
    pub access: AccessToken,
    /// A new refresh token when LWA rotated it: persist it, the old one may stop working.
    pub rotated_refresh_token: Option<SecretString>,
}

/// What an authorization code was exchanged for.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// An access token, usable at once.
    pub access: AccessToken,
    /// The refresh token to store: it does not expire.
    pub refresh_token: SecretString,
}

/// Why LWA refused or could not answer. Messages are LWA's error code and description, which never
/// contain the tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LwaError {
    /// `invalid_grant`: the refresh token was revoked, expired or belongs to another application. Fatal
    /// until a person renews the authorisation.
    #[error(
        "Login with Amazon refused the refresh token ({description}); the seller or advertiser must authorise the application again and the new refresh token must be stored"
    )]
    InvalidGrant {
        /// LWA's `error_description`.
        description: String,
    },
    /// `invalid_client`, `unauthorized_client`, `invalid_scope`, `access_denied`, `invalid_request`: the
    /// application's configuration is wrong. Fatal.
    #[error("Login with Amazon rejected the request: {code} ({description})")]
    Rejected {
        /// LWA's error code.
        code: String,
        /// LWA's `error_description`.
        description: String,
    },
    /// `server_error`, `temporarily_unavailable`, 5xx, 429 or a network failure: try again later.
    #[error("Login with Amazon is unavailable: {0}")]
    Unavailable(String),
}

impl LwaError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_in: i64,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// A client of one LWA token endpoint.
#[derive(Debug, Clone)]
pub struct LwaClient {
    http: reqwest::Client,
    endpoint: String,
}

impl LwaClient {
    /// A client of `endpoint` (see [`token_endpoint`]; tests pass the simulator's).
    pub fn new(http: reqwest::Client, endpoint: impl Into<String>) -> Self {
        Self {
            http,
            endpoint: endpoint.into(),
        }
    }

    /// Exchanges the refresh token for an access token (`grant_type=refresh_token`, form-encoded).
    pub async fn refresh(&self, credentials: &Credentials) -> Result<TokenGrant, LwaError> {
        let parsed = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", credentials.refresh_token.expose_secret()),
                ("client_id", credentials.client_id.as_str()),
                ("client_secret", credentials.client_secret.expose_secret()),
            ])
            .await?;
        tracing::debug!(
            expires_in = parsed.expires_in,
            rotated = parsed.refresh_token.is_some(),
            "LWA token refreshed"
        );
        let rotated = parsed
            .refresh_token
            .filter(|t| t.as_str() != credentials.refresh_token.expose_secret())
            .map(SecretString::from);
        Ok(TokenGrant {
            access: parsed.access,
            rotated_refresh_token: rotated,
        })
    }

    /// Exchanges an authorization code from the consent page for tokens
    /// (`grant_type=authorization_code`). `redirect_uri` must be the one the consent URL named. A code
    /// works once and for [`AUTHORIZATION_CODE_LIFETIME`]; LWA answers a used or late one with
    /// [`LwaError::InvalidGrant`].
    pub async fn exchange_code(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        code: &SecretString,
        redirect_uri: &str,
    ) -> Result<CodeGrant, LwaError> {
        let parsed = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code.expose_secret()),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("client_secret", client_secret.expose_secret()),
            ])
            .await?;
        let refresh_token = parsed
            .refresh_token
            .map(SecretString::from)
            .ok_or_else(|| LwaError::Unavailable("the token response carried no refresh token".into()))?;
        Ok(CodeGrant {
            access: parsed.access,
            refresh_token,
        })
    }

    /// One token request: the form posted, the answer parsed or classified.
    async fn token(&self, form: &[(&str, &str)]) -> Result<ParsedToken, LwaError> {
        let started = Utc::now();
        let response = self
            .http
            .post(&self.endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(
                serde_urlencoded::to_string(form)
                    .map_err(|e| LwaError::Unavailable(format!("encoding the token request: {e}")))?,
            )
            .send()
            .await
            .map_err(|e| LwaError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| LwaError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| LwaError::Unavailable(format!("unreadable token response: {e}")))?;
            return Ok(ParsedToken {
                access: AccessToken {
                    token: SecretString::from(parsed.access_token),
                    expires_at: started + chrono::Duration::seconds(parsed.expires_in),
                },
                expires_in: parsed.expires_in,
                refresh_token: parsed.refresh_token,
            });
        }
        let error: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
        Err(match error {
            Some(e) => classify(status.as_u16(), e.error, e.error_description),
            None => LwaError::Unavailable(format!("HTTP {status}")),
        })
    }
}

/// A successful token answer.
struct ParsedToken {
    access: AccessToken,
    expires_in: i64,
    refresh_token: Option<String>,
}

fn classify(status: u16, code: String, description: String) -> LwaError {
    match code.as_str() {
        "invalid_grant" => LwaError::InvalidGrant { description },
        "server_error" | "temporarily_unavailable" => LwaError::Unavailable(format!("{code}: {description}")),
        _ if status >= 500 || status == 429 => LwaError::Unavailable(format!("{code}: {description}")),
        _ => LwaError::Rejected { code, description },
    }
}

/// The access token of one credential set, cached and renewed before it expires.
///
/// Concurrent callers share one refresh (the cache is behind an async mutex).
pub struct LwaSession {
    client: LwaClient,
    credentials: Mutex<Credentials>,
    client_id: String,
    cached: Mutex<Option<AccessToken>>,
    rotated: Mutex<Option<SecretString>>,
}

impl std::fmt::Debug for LwaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LwaSession")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl LwaSession {
    /// A session for `credentials`, with no token yet.
    pub fn new(client: LwaClient, credentials: Credentials) -> Self {
        Self {
            client,
            client_id: credentials.client_id.clone(),
            credentials: Mutex::new(credentials),
            cached: Mutex::new(None),
            rotated: Mutex::new(None),
        }
    }

    /// The LWA client id (the Ads and AMC APIs send it as a header).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Seeds the cache with a token obtained elsewhere (a shared cache); ignored if it is not fresh.
    pub async fn seed(&self, token: AccessToken) {
        if token.is_fresh_at(Utc::now()) {
            *self.cached.lock().await = Some(token);
        }
    }

    /// A token good for at least [`REFRESH_MARGIN`]: the cached one, or a new one.
    pub async fn access_token(&self) -> Result<AccessToken, LwaError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh_at(Utc::now())) {
            return Ok(token.clone());
        }
        let token = self.refresh_locked().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token and gets a new one: for an API that answered "token expired" although the
    /// cache thought it fresh (clock skew, revocation).
    pub async fn force_refresh(&self) -> Result<AccessToken, LwaError> {
        let mut cached = self.cached.lock().await;
        let token = self.refresh_locked().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn refresh_locked(&self) -> Result<AccessToken, LwaError> {
        let mut credentials = self.credentials.lock().await;
        let grant = self.client.refresh(&credentials).await?;
        if let Some(rotated) = grant.rotated_refresh_token {
            tracing::info!(client_id = %self.client_id, "LWA rotated the refresh token; it must be persisted");
            credentials.refresh_token = rotated.clone();
            *self.rotated.lock().await = Some(rotated);
        }
        Ok(grant.access)
    }

    /// The refresh token LWA rotated to during this session, if it did and it is not yet persisted: the
    /// caller persists it (a new secret version), then calls [`LwaSession::rotation_persisted`].
    pub async fn rotated_refresh_token(&self) -> Option<SecretString> {
        self.rotated.lock().await.clone()
    }

    /// Notes that `token` (from [`LwaSession::rotated_refresh_token`]) is persisted; a later rotation
    /// is reported again.
    pub async fn rotation_persisted(&self, token: &SecretString) {
        let mut rotated = self.rotated.lock().await;
        if rotated
            .as_ref()
            .is_some_and(|r| r.expose_secret() == token.expose_secret())
        {
            *rotated = None;
        }
    }

    /// The cached access token, fresh or not, without refreshing (to share it with other functions).
    pub async fn current_token(&self) -> Option<AccessToken> {
        self.cached.lock().await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sp_api_credentials_refresh_at_api_amazon_com_in_every_region_and_ads_ones_at_the_regional_host() {
        // Reference amazon-apis.md §10: every documented SP-API example authorises through api.amazon.com;
        // the regional hosts are documented for the Ads API.
        for region in [Region::Na, Region::Eu, Region::Fe] {
            assert_eq!(
                token_endpoint(region, TokenHost::Global),
                "https://api.amazon.com/auth/o2/token"
            );
        }
        assert_eq!(
            token_endpoint(Region::Eu, TokenHost::Regional),
            "https://api.amazon.co.uk/auth/o2/token"
        );
        assert_eq!(
            token_endpoint(Region::Fe, TokenHost::Regional),
            "https://api.amazon.co.jp/auth/o2/token"
        );
    }

    #[test]
    fn lwa_error_codes_map_to_fatal_or_transient() {
        assert!(matches!(
            classify(400, "invalid_grant".into(), String::new()),
            LwaError::InvalidGrant { .. }
        ));
        assert!(classify(500, "server_error".into(), String::new()).is_transient());
        assert!(classify(503, "temporarily_unavailable".into(), String::new()).is_transient());
        assert!(!classify(401, "invalid_client".into(), String::new()).is_transient());
    }

    #[test]
    fn tokens_are_renewed_a_minute_before_they_expire() {
        let now = Utc::now();
        let token = |secs| AccessToken {
            token: SecretString::from("Atza|x"),
            expires_at: now + chrono::Duration::seconds(secs),
        };
        assert!(token(61).is_fresh_at(now));
        assert!(!token(60).is_fresh_at(now));
        assert!(!format!("{:?}", token(10)).contains("Atza"));
    }
}
