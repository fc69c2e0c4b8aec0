//! The four steps of the state machine, as plain async functions over [`Services`]; the Lambda
//! binaries under `functions/` only wire them to the runtime.
//!
//! ```text
//! refresh-token → create-request → (Wait → poll-status)* → download-decrypt
//! ```
//!
//! Every step takes the same event, the state machine's input (the job and the scheduled time), and
//! reads everything else from the job table, so no token, secret or URL ever travels through the
//! state machine:
//!
//! ```json
//! { "job": { "name": "sp-orders-daily", … }, "scheduledTime": "2026-11-23T06:00:00Z", "slice": 0 }
//! ```
//!
//! `slice` picks one slice of a window longer than the source accepts (see
//! [`crate::domain::job::Job::windows`]); refresh-token lists them.
//!
//! S3 layout of a run (Hive-style partitions; the manifest is written last and marks the run complete):
//!
//! ```text
//! {prefix}/source={kind}/account={account}/report={report}/dt={window start date}/run={run id}/00000.csv
//!                                                                                         …/_manifest.json
//! ```
//!
//! The module is split by concern: [`RunContext`] and the S3 layout (`context`), the Lambda
//! [`Deadline`], the shared quotas (`quota`), how a failed run is recorded (`failure`), the credential
//! [`Sessions`], the [`Services`] every step uses (over one bound, [`Ports`]), the source a job is
//! bound to ([`BoundSource`]), and one file per step.

pub mod budget;
pub mod catalog;
mod context;
mod create;
pub mod current;
pub mod days;
mod deadline;
mod download;
mod error;
mod failure;
pub mod metrics;
mod poll;
mod quota;
mod refresh;
mod services;
mod sessions;
mod source;
mod start;

pub use context::{RunContext, RunRef, UNOWNED};
pub use create::{CreateOutcome, CreateOutput, create_request};
pub use deadline::Deadline;
pub use download::{DownloadOutcome, DownloadOutput, download_decrypt};
pub use error::StepError;
pub use failure::{
    AbandonedOutput, CaughtError, EXECUTION_STATUS_CHANGE, FailureOutput, record_abandoned, record_failure,
};
pub use poll::{PollOutput, PollState, poll_status, poll_status_or_record_failure};
pub use refresh::{TokenOutput, refresh_token};
pub use services::{Aws, AwsServices, Clients, Endpoints, Ports, Services, Settings};
pub use sessions::{NoSharedCache, Session, Sessions};
pub use source::BoundSource;
pub use start::{SCHEDULE_FIELD, StartOutput, refresh_token_or_start_execution, start_scheduled_execution};
