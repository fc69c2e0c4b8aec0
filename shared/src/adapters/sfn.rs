//! [`Executions`] over Step Functions: `StartExecution` on the pipeline's state machine, by name.

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;

use crate::adapters::sdk_failure;
use crate::ports::{Executions, StartOutcome, WorkflowError};

/// The pipeline's state machine, reached through Step Functions.
#[derive(Debug, Clone)]
pub struct StepFunctionsExecutions {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctionsExecutions {
    /// Starts executions of the state machine `state_machine_arn` through `client`.
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: String) -> Self {
        Self {
            client,
            state_machine_arn,
        }
    }
}

impl Executions for StepFunctionsExecutions {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, WorkflowError> {
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
        {
            Ok(started) => Ok(StartOutcome::Started {
                execution_arn: started.execution_arn().to_owned(),
            }),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("ExecutionAlreadyExists") => {
                Ok(StartOutcome::AlreadyExists)
            }
            Err(err) => Err(workflow_error(&err)),
        }
    }
}

fn workflow_error(err: &SdkError<StartExecutionError, aws_sdk_sfn::config::http::HttpResponse>) -> WorkflowError {
    let failure = sdk_failure(err);
    let message = format!("StartExecution: {}", failure.summary);
    // Step Functions' throttling is a 400 `ThrottlingException`; `ExecutionLimitExceeded` (a million
    // open executions) clears as executions end.
    if failure.refused(&["ThrottlingException", "ExecutionLimitExceeded", "ServiceUnavailable"]) {
        WorkflowError::Misconfigured(message)
    } else {
        WorkflowError::Unavailable(message)
    }
}
