//! The `poll-status` Lambda function. One status check of the run's Amazon request; the state machine does the waiting.
//!
//! Wiring only: the logic is [`amzpipe::steps::poll_status`]; configuration is read once per container
//! (see [`amzpipe::steps::Settings`]), and errors reach Step Functions as their stable `errorType`.

use amzpipe::steps::{AwsServices, poll_status};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    amzpipe::lambda::init_tracing();
    let services = AwsServices::from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        poll_status(services, event.payload).await
    }))
    .await
}
