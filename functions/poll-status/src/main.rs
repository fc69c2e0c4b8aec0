//! The `poll-status` Lambda function. One status check of the run's Amazon request (the state machine
//! does the waiting), the failure the state machine caught recorded on the run, or the runs of an
//! execution that timed out or was aborted ended (an EventBridge rule's events).
//!
//! Wiring only: the logic is [`amzpipe::steps::poll_status_or_record_failure`]; configuration is read once per container
//! (see [`amzpipe::steps::Settings`]), and errors reach Step Functions as their stable `errorType`.

use amzpipe::steps::{AwsServices, poll_status_or_record_failure};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    amzpipe::lambda::init_tracing();
    let services = AwsServices::from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        poll_status_or_record_failure(services, event.payload).await
    }))
    .await
}
