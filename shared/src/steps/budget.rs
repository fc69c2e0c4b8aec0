//! How long each step may take at worst, from the HTTP policy: what each function's Lambda timeout in
//! `infra/template.yaml` must exceed (a test holds the template to it), so that a slow Amazon answer
//! ends as a typed error the state machine retries, never as a Lambda killed mid-step.
//!
//! A step's worst case is a token refresh plus its Amazon calls on its longest path, each at
//! [`Policy::worst_case_call`], plus an allowance for its AWS calls (Secrets Manager, DynamoDB).
//! download-decrypt is bounded by its own deadline instead (it stops before the Lambda's and resumes).

use std::time::Duration;

use crate::adapters::api::Policy;

/// Time an execution keeps back, after its last status check of a run, to download the run and record
/// how it ended: the download task's timeout (960 s in the state machine) and poll-status's (720 s,
/// the failure record). A run still in progress when less than this is left of its execution fails
/// with a reason instead of being cut off by the execution's timeout.
pub const FINISH_RESERVE: Duration = Duration::from_secs(960 + 720);

pub use crate::domain::run::{EVENTS_PER_STEP_CALL, FIXED_EVENTS, HISTORY_EVENTS_LIMIT, MAX_STEP_CALLS};

/// Time allowed for a step's AWS calls (secret, job table, quotas).
pub const AWS_ALLOWANCE: Duration = Duration::from_secs(30);

/// Amazon calls on the longest path of each step that runs under the HTTP policy, by the logical id
/// of its function in the template:
/// - refresh-token: none besides the token refresh;
/// - create-request: the search for an earlier attempt's request (SP-API getReports, AMC's list of
///   executions) and the create, which Ads sends up to three times (each answer may be a 425 whose
///   report is fetched); counted as four;
/// - poll-status: the status and, for a failed SP-API report, its error document: a Restricted Data
///   Token when the report type is restricted, getReportDocument, and the document itself.
pub const STEP_CALLS: [(&str, u32); 3] = [
    ("RefreshTokenFunction", 0),
    ("CreateRequestFunction", 4),
    ("PollStatusFunction", 4),
];

/// The worst case of a step making `calls` Amazon calls under `policy` (the token refresh included).
pub fn worst_case(policy: &Policy, calls: u32) -> Duration {
    policy.worst_case_call().saturating_mul(calls + 1) + AWS_ALLOWANCE
}
