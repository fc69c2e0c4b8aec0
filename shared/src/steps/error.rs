//! The errors a step returns to Step Functions, named so the state machine can `Retry`/`Catch` them.
//!
//! | `errorType` | meaning | the state machine |
//! |---|---|---|
//! | `Throttled` | Amazon (or a shared quota) said to wait | retries with backoff |
//! | `AuthExpired` | an access token was refused as expired | retries |
//! | `Transient` | network trouble, 5xx, a cut-off download, the Lambda deadline | retries with backoff |
//! | `NotReady` | a step ran before the step it depends on finished | retries |
//! | `CredentialsRefused` | Login with Amazon refused the refresh token or the application, or Amazon refused what was asked even with a fresh token (wrong profile or region, a missing role) | fails: a person must re-authorise or fix the job's account |
//! | `IntegrityFailed` | a document failed decryption, a checksum or a size ceiling | fails |
//! | `InvalidJob` | the job definition, or the request it makes, is wrong | fails |
//! | `SourceFailed` | Amazon failed the request (`FATAL`, `FAILED`), or it never finished | fails, reason recorded on the run |
//! | `Misconfigured` | the deployment is wrong: a missing variable, table, secret permission | fails |
//!
//! Messages never contain tokens, secrets or pre-signed URLs: every error below is built from errors
//! that already guarantee it.

use crate::domain::job::InvalidJob;
use crate::ports::{SecretError, SinkError, SourceError, StoreError};
use crate::transfer::{ErrorClass, TransferError};

/// A step's failure, with a stable [`StepError::error_type`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Amazon or a shared quota said to wait.
    #[error("throttled; retry after {retry_after_secs} s: {message}")]
    Throttled {
        /// How long the source asked to wait.
        retry_after_secs: u64,
        /// What was throttled.
        message: String,
    },
    /// An access token was refused as expired.
    #[error("{0}")]
    AuthExpired(String),
    /// Login with Amazon refused the credentials, or Amazon refused what was asked even with a fresh
    /// token: a person must re-authorise or fix the job's account.
    #[error("{0}")]
    CredentialsRefused(String),
    /// Worth retrying as is.
    #[error("{0}")]
    Transient(String),
    /// The run is not far enough along for this step yet.
    #[error("{0}")]
    NotReady(String),
    /// A document failed an integrity check.
    #[error("{0}")]
    IntegrityFailed(String),
    /// The job definition or its request is wrong.
    #[error("{0}")]
    InvalidJob(String),
    /// Amazon failed the request, or it never finished.
    #[error("{0}")]
    SourceFailed(String),
    /// The deployment is wrong.
    #[error("{0}")]
    Misconfigured(String),
}

impl StepError {
    /// The name the state machine matches in `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "Throttled",
            Self::AuthExpired(_) => "AuthExpired",
            Self::CredentialsRefused(_) => "CredentialsRefused",
            Self::Transient(_) => "Transient",
            Self::NotReady(_) => "NotReady",
            Self::IntegrityFailed(_) => "IntegrityFailed",
            Self::InvalidJob(_) => "InvalidJob",
            Self::SourceFailed(_) => "SourceFailed",
            Self::Misconfigured(_) => "Misconfigured",
        }
    }

    /// Whether the state machine retries it.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::AuthExpired(_) | Self::Transient(_) | Self::NotReady(_)
        )
    }
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(e: StepError) -> Self {
        Self {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

impl From<InvalidJob> for StepError {
    fn from(e: InvalidJob) -> Self {
        Self::InvalidJob(e.to_string())
    }
}

impl From<SourceError> for StepError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Throttled { retry_after } => Self::Throttled {
                retry_after_secs: retry_after.as_secs(),
                message: "Amazon throttled the request".into(),
            },
            SourceError::AuthExpired(_) => Self::AuthExpired(e.to_string()),
            SourceError::CredentialsRefused(_) | SourceError::NotAuthorized(_) => {
                Self::CredentialsRefused(e.to_string())
            }
            SourceError::Transient(_) => Self::Transient(e.to_string()),
            SourceError::Invalid(_) => Self::InvalidJob(e.to_string()),
            SourceError::NotFound(_) | SourceError::Unusable(_) => Self::SourceFailed(e.to_string()),
        }
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            // A guarded transition lost to another step: the state machine's retry re-reads the run.
            StoreError::StaleState { .. } | StoreError::Held(_) => Self::NotReady(e.to_string()),
            StoreError::Unavailable(_) => Self::Transient(e.to_string()),
            StoreError::Misconfigured(_) => Self::Misconfigured(e.to_string()),
        }
    }
}

impl From<SecretError> for StepError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::NotFound(_) | SecretError::Malformed { .. } => Self::InvalidJob(e.to_string()),
            SecretError::Unavailable(_) => Self::Transient(e.to_string()),
            SecretError::Misconfigured(_) => Self::Misconfigured(e.to_string()),
        }
    }
}

impl From<SinkError> for StepError {
    fn from(e: SinkError) -> Self {
        if e.retryable {
            Self::Transient(e.to_string())
        } else {
            Self::Misconfigured(e.to_string())
        }
    }
}

impl From<TransferError> for StepError {
    fn from(e: TransferError) -> Self {
        match e.class() {
            // An expired URL is retried with fresh URLs from the source.
            ErrorClass::Transient | ErrorClass::UrlExpired => Self::Transient(e.to_string()),
            ErrorClass::Integrity => Self::IntegrityFailed(e.to_string()),
            ErrorClass::Invalid => match e {
                TransferError::Sink(sink) => Self::from(sink),
                other => Self::InvalidJob(other.to_string()),
            },
        }
    }
}

impl From<crate::adapters::lwa::LwaError> for StepError {
    fn from(e: crate::adapters::lwa::LwaError) -> Self {
        if e.is_transient() {
            Self::Transient(e.to_string())
        } else {
            Self::CredentialsRefused(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_becomes_a_diagnostic_with_its_stable_name() {
        let d: lambda_runtime::Diagnostic = StepError::SourceFailed("FATAL: no access".into()).into();
        assert_eq!(d.error_type, "SourceFailed");
        assert_eq!(d.error_message, "FATAL: no access");
        let throttled = StepError::from(SourceError::Throttled {
            retry_after: std::time::Duration::from_secs(60),
        });
        assert_eq!(throttled.error_type(), "Throttled");
        assert!(throttled.is_retryable());
    }

    #[test]
    fn a_lost_race_on_the_run_is_retried_and_a_missing_table_is_not() {
        let stale = StepError::from(StoreError::StaleState {
            expected: "CLAIMED".into(),
            found: "REQUESTED".into(),
        });
        assert_eq!(stale.error_type(), "NotReady");
        let missing = StepError::from(StoreError::Misconfigured("ResourceNotFoundException".into()));
        assert!(!missing.is_retryable());
    }
}
