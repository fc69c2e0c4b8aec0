//! The command line's one error type: what went wrong and what to do about it, and an exit code.

use amzpipe::adapters::lwa::LwaError;
use amzpipe::domain::job::InvalidJob;
use amzpipe::ports::{SecretError, SourceError, StoreError};

/// Exit code of bad input (a flag, a file, a definition): fix the command.
pub const EXIT_USAGE: i32 = 2;
/// Exit code of everything else that failed.
pub const EXIT_FAILED: i32 = 1;

/// A failure, said for the person at the terminal: the message, then what to fix.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The process exit code.
    pub code: i32,
}

/// Results of the command line.
pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// A failure (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: EXIT_FAILED,
        }
    }

    /// Bad input (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: EXIT_USAGE,
        }
    }

    /// The same error with what to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, doing: impl std::fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl From<InvalidJob> for CliError {
    fn from(e: InvalidJob) -> Self {
        Self::usage(e.to_string())
    }
}

impl From<SecretError> for CliError {
    fn from(e: SecretError) -> Self {
        let hint = match &e {
            SecretError::NotFound(id) => Some(format!(
                "store credentials first: `amzpipectl onboard <source> --secret {id} …`"
            )),
            SecretError::Malformed { .. } => {
                Some("store the credential set again with `amzpipectl onboard`".to_owned())
            }
            SecretError::Misconfigured(m) if m.contains("AccessDenied") => Some(
                "your AWS identity lacks a Secrets Manager permission (GetSecretValue, PutSecretValue, CreateSecret) on this secret".to_owned(),
            ),
            _ => None,
        };
        let error = Self::failed(e.to_string());
        match hint {
            Some(h) => error.hint(h),
            None => error,
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let text = e.to_string();
        let error = Self::failed(text.clone());
        if text.contains("ResourceNotFound") {
            error.hint("the job table does not exist: check --stack, --table or AMZPIPE_TABLE")
        } else if text.contains("AccessDenied") {
            error.hint("your AWS identity lacks a DynamoDB permission (Query, Scan, GetItem) on the job table")
        } else {
            error
        }
    }
}

impl From<LwaError> for CliError {
    fn from(e: LwaError) -> Self {
        let error = Self::failed(e.to_string());
        match &e {
            LwaError::InvalidGrant { .. } => error.hint(
                "an authorization code works once and expires 5 minutes after consent; a refresh token stops working when the authorisation is revoked — run `amzpipectl onboard` again",
            ),
            LwaError::Rejected { code, .. } if code == "invalid_client" => {
                error.hint("check the client id and client secret of the LWA security profile")
            }
            LwaError::Rejected { code, .. } if code == "invalid_request" || code == "redirect_uri_mismatch" => error
                .hint("the redirect URI must be listed under \"Allowed Return URLs\" of the security profile"),
            _ => error,
        }
    }
}

impl From<SourceError> for CliError {
    fn from(e: SourceError) -> Self {
        let error = Self::failed(e.to_string());
        match &e {
            SourceError::CredentialsRefused(_) => {
                error.hint("the stored credentials were refused: run `amzpipectl onboard` again")
            }
            SourceError::NotAuthorized(_) => {
                error.hint("missing permission: the user who authorised the application must have access to this account (onboard again as one who has)")
            }
            SourceError::AuthExpired(m) if m.contains("403") || m.to_lowercase().contains("not authorized") => {
                error.hint("missing permission: the user who authorised the application must have access to this account (onboard again as one who has)")
            }
            SourceError::Invalid(m) if m.contains("403") || m.to_lowercase().contains("not authorized") => {
                error.hint("missing permission: the authorising user must have access to this account")
            }
            SourceError::Throttled { .. } | SourceError::Transient(_) => error.hint("try again in a minute"),
            _ => error,
        }
    }
}

/// An AWS SDK failure (any client: they share the error types), said with its code and a hint for
/// the common ones.
pub fn aws_error<E>(
    doing: &str,
    err: &aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>,
) -> CliError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = amzpipe::adapters::sdk_failure(err);
    if failure.service.is_none() && failure.summary.contains("loading credentials") {
        return CliError::failed(format!("{doing}: no usable AWS credentials were found")).hint(
            "configure AWS credentials (AWS_PROFILE, SSO, environment variables) and AWS_REGION; for the local stack pass --env-file target/local/stack.env",
        );
    }
    if failure.service.is_none() && failure.summary.to_lowercase().contains("region") {
        return CliError::failed(format!("{doing}: no AWS region is set"))
            .hint("set AWS_REGION (or a region in your AWS profile)");
    }
    let error = CliError::failed(format!("{doing}: {}", failure.summary));
    match failure.service.as_ref().map(|(_, code)| code.as_str()) {
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
            error.hint("your AWS identity lacks the permission named above")
        }
        Some("ValidationError") if failure.summary.contains("does not exist") => {
            error.hint("no such stack in this account and region: check --stack and AWS_REGION")
        }
        Some("StateMachineDoesNotExist") => error.hint("check --stack or --state-machine"),
        None => error.hint("is AWS reachable? check AWS_REGION, credentials, and AWS_ENDPOINT_URL for a local stack"),
        _ => error,
    }
}
