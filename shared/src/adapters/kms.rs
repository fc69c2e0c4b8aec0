//! Envelope encryption with KMS for the access tokens the functions share through the job table.
//!
//! A live access token is a bearer credential for a seller's or advertiser's data for up to an hour:
//! anyone who may read the job table (an operator running `amzpipectl status`, a point-in-time backup)
//! must not read it. [`TokenSealer::seal`] asks KMS for a fresh 256-bit data key (`GenerateDataKey`,
//! under the stack's token key, with an encryption context naming the purpose and the credential set),
//! encrypts the token with AES-256-GCM under it, and keeps only the KMS-encrypted copy of the key, the
//! nonce and the ciphertext; [`TokenSealer::open`] asks KMS to decrypt the key (`Decrypt`, same
//! context) and opens the ciphertext. Only roles that KMS lets decrypt under that context — the
//! functions' — can read a token.
//!
//! Every seal uses a key of its own, so a nonce is never used twice under one key. The GCM associated
//! data is the item's key (`TOKEN#{secret id}`), so a sealed token moved to another credential set's
//! item does not open.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use aws_sdk_kms::Client;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use secrecy::SecretString;

use crate::adapters::sdk_failure;
use crate::ports::StoreError;

/// The `purpose` of the encryption context of every sealed token (the key policy and the functions'
/// IAM grants name it).
pub const TOKEN_CONTEXT_PURPOSE: &str = "amzpipe-token-cache";
/// Length of a GCM nonce in bytes.
pub const NONCE_LEN: usize = 12;

/// A token as stored: what opening it needs, none of it secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The KMS key that encrypted the data key (its ARN, as KMS answered).
    pub key_id: String,
    /// The data key, encrypted by KMS.
    pub encrypted_key: Vec<u8>,
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The token, encrypted with the data key (tag appended).
    pub ciphertext: Vec<u8>,
}

/// Seals and opens tokens under one KMS key.
#[derive(Debug, Clone)]
pub struct TokenSealer {
    client: Client,
    key_id: String,
}

impl TokenSealer {
    /// A sealer over `key_id` (key id, key ARN, alias name or alias ARN).
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    /// Encrypts `token` of the credential set `credentials` (see the module docs).
    pub async fn seal(&self, token: &str, credentials: &str) -> Result<Sealed, StoreError> {
        let out = with_throttle_retries("GenerateDataKey", || {
            self.client
                .generate_data_key()
                .key_id(&self.key_id)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context("purpose", TOKEN_CONTEXT_PURPOSE)
                .encryption_context("credentials", credentials)
                .send()
        })
        .await?;
        let (Some(key), Some(encrypted_key)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(StoreError::Misconfigured(
                "KMS GenerateDataKey answered without a data key".into(),
            ));
        };
        let cipher = Aes256Gcm::new_from_slice(key.as_ref())
            .map_err(|_| StoreError::Misconfigured("KMS answered a data key that is not 256 bits".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        fastrand::fill(&mut nonce);
        let aad = item_key(credentials);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Misconfigured("sealing the token failed".into()))?;
        Ok(Sealed {
            key_id: out.key_id().unwrap_or(&self.key_id).to_owned(),
            encrypted_key: encrypted_key.as_ref().to_vec(),
            nonce,
            ciphertext,
        })
    }

    /// Decrypts a token sealed for the credential set `credentials`. A token that does not open (another
    /// key, another credential set, altered bytes) is [`StoreError::Misconfigured`]; callers treat it as
    /// no token.
    pub async fn open(&self, sealed: &Sealed, credentials: &str) -> Result<SecretString, StoreError> {
        let out = with_throttle_retries("Decrypt", || {
            self.client
                .decrypt()
                .key_id(&sealed.key_id)
                .ciphertext_blob(Blob::new(sealed.encrypted_key.clone()))
                .encryption_context("purpose", TOKEN_CONTEXT_PURPOSE)
                .encryption_context("credentials", credentials)
                .send()
        })
        .await?;
        let key = out
            .plaintext()
            .ok_or_else(|| StoreError::Misconfigured("KMS Decrypt answered without the data key".into()))?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref())
            .map_err(|_| StoreError::Misconfigured("the data key is not 256 bits".into()))?;
        let aad = item_key(credentials);
        let token = cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Misconfigured(
                    "the cached token does not open (altered, or sealed for another credential set)".into(),
                )
            })?;
        String::from_utf8(token)
            .map(SecretString::from)
            .map_err(|_| StoreError::Misconfigured("the cached token is not text".into()))
    }
}

/// The job table key of a credential set's token item, bound into the ciphertext.
fn item_key(credentials: &str) -> String {
    format!("TOKEN#{credentials}")
}

/// Backoffs before the attempts after the SDK's own retries met KMS throttling: a throttled KMS is
/// waited for (about 3 s in all) rather than answered with a Login with Amazon refresh by every
/// function at once, which would turn a KMS throttling storm into an LWA one.
const THROTTLE_BACKOFFS: [std::time::Duration; 4] = [
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(400),
    std::time::Duration::from_millis(800),
    std::time::Duration::from_millis(1_600),
];

/// `call`, sent again after each of [`THROTTLE_BACKOFFS`] while KMS answers it with throttling (or
/// its internal error); any other answer is returned at once.
async fn with_throttle_retries<T, E, F, Fut>(operation: &str, call: F) -> Result<T, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut backoffs = THROTTLE_BACKOFFS.iter();
    loop {
        match call().await {
            Ok(out) => return Ok(out),
            Err(e) => {
                let throttled = matches!(e.code(), Some("ThrottlingException" | "KMSInternalException"));
                match backoffs.next() {
                    Some(wait) if throttled => {
                        tracing::warn!(
                            operation,
                            wait_ms = wait.as_millis() as u64,
                            "KMS is throttling; trying again"
                        );
                        tokio::time::sleep(*wait).await;
                    }
                    _ => return Err(kms_error(operation, e)),
                }
            }
        }
    }
}

fn kms_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = sdk_failure(&err);
    let message = format!("KMS {operation}: {}", failure.summary);
    if failure.refused(&["ThrottlingException", "KMSInternalException"]) {
        StoreError::Misconfigured(message)
    } else {
        StoreError::Unavailable(message)
    }
}
