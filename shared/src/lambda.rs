//! What every Lambda binary shares: JSON logs.

use tracing_subscriber::EnvFilter;

/// The log filter when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` says otherwise: the pipeline at
/// `info`, the AWS SDK and HTTP stacks at `warn` (they would log request details at lower levels).
pub const DEFAULT_LOG_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn,hyper=warn";

/// Installs a JSON log subscriber: one object per line with the level, the message, its fields and the
/// current step's span (job, run id), as CloudWatch Logs Insights reads them. Logs never carry tokens,
/// secrets or pre-signed URLs: nothing in the pipeline formats them into a field.
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().map(|l| l.to_lowercase()))
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
