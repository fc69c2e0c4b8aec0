//! Credential sessions: a secret's credential set and its Login with Amazon session, kept warm, shared
//! by the functions and the operator's command line alike.
//!
//! [`Sessions`] owns the three things a session involves:
//!
//! 1. reading the credential set from the secret store (once per secret and process);
//! 2. the shared token cache: a new session starts from the token another function cached, and a
//!    fresher token is shared back (the command line uses [`NoSharedCache`]: it does not read or write
//!    the functions' cache);
//! 3. the rotation write: a refresh token LWA rotated is stored as a new secret version, retried,
//!    because the old one may stop working and losing the new one would lose access.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::adapters::lwa::{LwaClient, LwaSession, token_endpoint};
use crate::domain::Region;
use crate::domain::credentials::{AccessToken, TokenHost};
use crate::ports::{SecretError, SecretStore, StoreError, StoredCredentials, TokenCache};

/// Attempts at storing a rotated refresh token before giving up.
const ROTATION_WRITE_ATTEMPTS: u64 = 3;

/// The credentials of one secret, with their LWA session (access token cached in memory).
pub struct Session {
    /// The secret id.
    pub secret_id: String,
    /// The credential set as read.
    pub stored: StoredCredentials,
    /// The LWA session over it.
    pub lwa: Arc<LwaSession>,
    /// Expiry of the token last written to (or read from) the shared cache.
    shared_until: Mutex<Option<DateTime<Utc>>>,
}

impl Session {
    /// The Amazon region the credentials are for.
    pub fn region(&self) -> Region {
        self.stored.region
    }
}

/// A token cache that caches nothing: for callers that must not share tokens through the job table
/// (the operator's command line).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSharedCache;

impl TokenCache for NoSharedCache {
    async fn cached_token(&self, _credentials: &str) -> Result<Option<AccessToken>, StoreError> {
        Ok(None)
    }

    async fn store_token(&self, _credentials: &str, _token: &AccessToken) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The open sessions of one process (a Lambda container, a command), by secret id.
///
/// Contract: [`Sessions::session`] reads a secret once and then reuses its session until
/// [`Sessions::forget_refused`]; every caller that used a session calls [`Sessions::persist`] (or
/// [`Sessions::persist_all`]) before it returns, so that a rotated refresh token is never lost.
pub struct Sessions<Se, C> {
    secrets: Se,
    cache: C,
    http: reqwest::Client,
    lwa_url: Option<String>,
    open: Mutex<HashMap<(String, TokenHost), Arc<Session>>>,
}

impl<Se: SecretStore, C: TokenCache> Sessions<Se, C> {
    /// Sessions over `secrets` and `cache`; LWA is called with `http` (an API client) at `lwa_url` (a
    /// simulator, for every credential set), or else at the endpoint the credential set names, or else at
    /// Amazon's documented one for its region and the source's [`TokenHost`].
    pub fn new(secrets: Se, cache: C, http: reqwest::Client, lwa_url: Option<String>) -> Self {
        Self {
            secrets,
            cache,
            http,
            lwa_url,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The secret store.
    pub fn secrets(&self) -> &Se {
        &self.secrets
    }

    /// The session of `secret_id` for a source refreshed at `host`: kept from an earlier call in this
    /// process, or read from the secret and seeded with the token other functions cached. The secret is
    /// read without holding the lock, so sessions of other secrets are not held up by it.
    pub async fn session(&self, secret_id: &str, host: TokenHost) -> Result<Arc<Session>, SecretError> {
        let key = (secret_id.to_owned(), host);
        if let Some(session) = self.open.lock().await.get(&key) {
            return Ok(Arc::clone(session));
        }
        let stored = self.secrets.credentials(secret_id).await?;
        let endpoint = self
            .lwa_url
            .clone()
            .or_else(|| stored.token_url.clone())
            .unwrap_or_else(|| token_endpoint(stored.region, host).to_owned());
        let lwa = Arc::new(LwaSession::new(
            LwaClient::new(self.http.clone(), endpoint),
            stored.credentials.clone(),
        ));
        let mut shared_until = None;
        match self.cache.cached_token(secret_id).await {
            Ok(Some(token)) => {
                shared_until = Some(token.expires_at);
                lwa.seed(token).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the shared token cache could not be read; refreshing instead"),
        }
        let session = Arc::new(Session {
            secret_id: secret_id.to_owned(),
            stored,
            lwa,
            shared_until: Mutex::new(shared_until),
        });
        let mut open = self.open.lock().await;
        // Another task may have opened the same secret meanwhile: keep the first, so that one session
        // (one token, one rotation) serves the secret.
        Ok(Arc::clone(open.entry(key).or_insert(session)))
    }

    /// Forgets the sessions of a secret whose credentials were refused, so that the next call reads the
    /// secret again (an operator may have stored new credentials), and tells whether the secret holds a newer version than the one they were read from — a client
    /// secret rotated while this process kept the old one — so that the caller may try once more with
    /// it. Once more only: the next session is read from the current version, so its refusal is final.
    /// A secret that cannot be read now, or that no open session had read, counts as unchanged.
    pub async fn forget_refused(&self, secret_id: &str) -> bool {
        let mut used = Vec::new();
        self.open.lock().await.retain(|(secret, _), session| {
            let keep = secret != secret_id;
            if !keep {
                used.push(session.stored.version_id.clone());
            }
            keep
        });
        if used.is_empty() {
            return false;
        }
        match self.secrets.credentials(secret_id).await {
            Ok(current) => current.version_id.is_some() && used.iter().any(|v| *v != current.version_id),
            Err(e) => {
                tracing::warn!(error = %e, "the refused credentials' secret could not be read again");
                false
            }
        }
    }

    /// Persists what a session learned: a rotated refresh token (as a new secret version; retried,
    /// because losing it would lose access) and a newer access token (into the shared cache; a failure
    /// there is only logged).
    pub async fn persist(&self, session: &Session) -> Result<(), SecretError> {
        if let Some(rotated) = session.lwa.rotated_refresh_token().await {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self
                    .secrets
                    .store_refresh_token(&session.secret_id, &session.stored, &rotated)
                    .await
                {
                    Ok(()) => break,
                    Err(e) if attempt < ROTATION_WRITE_ATTEMPTS => {
                        tracing::warn!(attempt, error = %e, "storing the rotated refresh token failed; trying again");
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, secret = %session.secret_id, "the rotated refresh token could not be stored");
                        return Err(e);
                    }
                }
            }
            session.lwa.rotation_persisted(&rotated).await;
        }
        if let Some(token) = session.lwa.current_token().await {
            let mut shared_until = session.shared_until.lock().await;
            if shared_until.is_none_or(|until| token.expires_at > until) {
                match self.cache.store_token(&session.secret_id, &token).await {
                    Ok(()) => *shared_until = Some(token.expires_at),
                    Err(e) => {
                        tracing::warn!(error = %e, "the access token could not be shared; other functions will refresh")
                    }
                }
            }
        }
        Ok(())
    }

    /// Persists every open session (a command's exit); stops at the first rotation that cannot be stored.
    pub async fn persist_all(&self) -> Result<(), SecretError> {
        let open: Vec<Arc<Session>> = self.open.lock().await.values().cloned().collect();
        for session in open {
            self.persist(&session).await?;
        }
        Ok(())
    }
}
