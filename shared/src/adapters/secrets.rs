//! Credential sets in AWS Secrets Manager.
//!
//! One secret per credential set, its value a JSON object:
//!
//! ```json
//! { "clientId": "amzn1.application-oa2-client.…", "clientSecret": "…", "refreshToken": "Atzr|…", "region": "eu" }
//! ```
//!
//! A refresh token that Login with Amazon rotated is written with `PutSecretValue` as a new version:
//! Secrets Manager moves `AWSCURRENT` to it and keeps the previous one as `AWSPREVIOUS`, so the last
//! good token is never overwritten in place. The client request token is derived from the new token,
//! so a retried write creates no second version.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::adapters::sdk_failure;
use crate::domain::Region;
use crate::domain::credentials::Credentials;
use crate::ports::{SecretError, SecretStore, StoredCredentials};

/// Secrets Manager as the [`SecretStore`].
#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
}

impl SecretsManagerStore {
    /// A store over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Stores a whole credential set (onboarding): creates the secret, or adds a new version to an
    /// existing one (the previous stays readable as `AWSPREVIOUS`). Returns whether it was created.
    pub async fn put_credentials(&self, secret_id: &str, value: &SecretValue) -> Result<bool, SecretError> {
        let json = serde_json::to_string(value).map_err(|e| SecretError::Misconfigured(e.to_string()))?;
        match self
            .client
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(json.clone())
            .send()
            .await
        {
            Ok(_) => Ok(false),
            Err(e) => match secret_error(secret_id, "PutSecretValue", e) {
                SecretError::NotFound(_) => {
                    self.client
                        .create_secret()
                        .name(secret_id)
                        .description("amzpipe credential set: LWA client id and secret, refresh token, region")
                        .secret_string(json)
                        .send()
                        .await
                        .map_err(|e| secret_error(secret_id, "CreateSecret", e))?;
                    Ok(true)
                }
                other => Err(other),
            },
        }
    }
}

/// The JSON shape of a credential-set secret.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretValue {
    /// LWA client id.
    pub client_id: String,
    /// LWA client secret.
    pub client_secret: String,
    /// The refresh token.
    pub refresh_token: String,
    /// `na`, `eu` or `fe`.
    pub region: Region,
    /// The Login with Amazon token endpoint, when not the source's documented one
    /// (`https://api.amazon.co.uk/auth/o2/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("client_id", &self.client_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn secret_error<E>(secret: &str, operation: &str, err: SdkError<E, HttpResponse>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = sdk_failure(&err);
    // Secrets Manager's messages name the secret, never its value.
    let message = format!("{operation}: {}", failure.summary);
    match &failure.service {
        Some((_, code)) if code == "ResourceNotFoundException" => SecretError::NotFound(secret.to_owned()),
        _ if failure.refused(&["ThrottlingException", "InternalServiceError"]) => SecretError::Misconfigured(message),
        _ => SecretError::Unavailable(message),
    }
}

/// Parses a secret's value; the error names the field at fault and never echoes the value.
pub fn parse_secret(secret_id: &str, value: &str) -> Result<SecretValue, SecretError> {
    let mut de = serde_json::Deserializer::from_str(value);
    serde_path_to_error::deserialize::<_, SecretValue>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json's messages quote unexpected values; only say what kind of problem it is.
        // The value itself may be a bare token (a secret stored as a JSON string): say what kind of
        // value it is, never quote it.
        let message = if inner.is_syntax() || inner.is_eof() {
            "the value is not JSON".to_owned()
        } else if path == "." {
            let kind = match serde_json::from_str::<serde_json::Value>(value) {
                Ok(serde_json::Value::Object(_)) => "an object with other fields",
                Ok(serde_json::Value::String(_)) => "a JSON string",
                Ok(serde_json::Value::Array(_)) => "a JSON array",
                Ok(serde_json::Value::Number(_)) => "a number",
                Ok(serde_json::Value::Bool(_)) => "a boolean",
                Ok(serde_json::Value::Null) | Err(_) => "null",
            };
            format!("expected an object with clientId, clientSecret, refreshToken, region, not {kind}")
        } else {
            format!("field {path} is missing or invalid")
        };
        SecretError::Malformed {
            secret: secret_id.to_owned(),
            message,
        }
    })
}

impl SecretStore for SecretsManagerStore {
    async fn credentials(&self, secret_id: &str) -> Result<StoredCredentials, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| secret_error(secret_id, "GetSecretValue", e))?;
        let value = out
            .secret_string()
            .ok_or_else(|| SecretError::NotFound(secret_id.to_owned()))?;
        let parsed = parse_secret(secret_id, value)?;
        Ok(StoredCredentials {
            credentials: Credentials {
                client_id: parsed.client_id,
                client_secret: SecretString::from(parsed.client_secret),
                refresh_token: SecretString::from(parsed.refresh_token),
            },
            region: parsed.region,
            token_url: parsed.token_url,
            version_id: out.version_id().map(str::to_owned),
        })
    }

    async fn store_refresh_token(
        &self,
        secret_id: &str,
        stored: &StoredCredentials,
        refresh_token: &SecretString,
    ) -> Result<(), SecretError> {
        let value = SecretValue {
            client_id: stored.credentials.client_id.clone(),
            client_secret: stored.credentials.client_secret.expose_secret().to_owned(),
            refresh_token: refresh_token.expose_secret().to_owned(),
            region: stored.region,
            token_url: stored.token_url.clone(),
        };
        let json = serde_json::to_string(&value).map_err(|e| SecretError::Misconfigured(e.to_string()))?;
        // The version id is derived from the token, so writing the same token twice is one version.
        let digest = Sha256::digest(refresh_token.expose_secret().as_bytes());
        let token = hex::encode(&digest[..16]);
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(json)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| secret_error(secret_id, "PutSecretValue", e))?;
        tracing::info!(
            secret = secret_id,
            "rotated refresh token stored as a new secret version"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_secret_names_the_field_and_never_echoes_the_value() {
        let err = parse_secret(
            "s",
            r#"{"clientId": "id", "clientSecret": "hush-123", "refreshToken": "Atzr|x", "region": "mars"}"#,
        )
        .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("region"), "{text}");
        assert!(
            !text.contains("hush-123") && !text.contains("mars") && !text.contains("Atzr"),
            "{text}"
        );
        let err = parse_secret("s", "Atzr|not-json").expect_err("refused");
        assert!(!err.to_string().contains("Atzr"), "{err}");
    }

    #[test]
    fn a_secret_that_is_a_bare_json_string_is_refused_without_quoting_it() {
        for value in [r#""Atzr|fake-bare-token""#, r#"["Atzr|fake-bare-token"]"#, "42"] {
            let err = parse_secret("amzpipe/prod/seller", value).expect_err("refused");
            let text = err.to_string();
            assert!(!text.contains("Atzr") && !text.contains("fake-bare-token"), "{text}");
            assert!(text.contains("expected an object with clientId"), "{text}");
        }
        let err = parse_secret("s", r#""Atzr|fake-bare-token""#).expect_err("refused");
        assert!(err.to_string().contains("not a JSON string"), "{err}");
    }

    #[test]
    fn the_debug_form_of_a_secret_hides_the_secrets() {
        let value = parse_secret(
            "s",
            r#"{"clientId": "id", "clientSecret": "hush-123", "refreshToken": "Atzr|x", "region": "na"}"#,
        )
        .expect("parsed");
        let shown = format!("{value:?}");
        assert!(!shown.contains("hush") && !shown.contains("Atzr"), "{shown}");
    }
}
