//! The `create-request` Lambda function. Claims the run for the job's window and creates its Amazon request exactly once.
//!
//! Wiring only: the logic is [`amzpipe::steps::create_request`]; configuration is read once per container
//! (see [`amzpipe::steps::Settings`]), and errors reach Step Functions as their stable `errorType`.

use amzpipe::steps::{AwsServices, create_request};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    amzpipe::lambda::init_tracing();
    let services = AwsServices::from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        create_request(services, event.payload).await
    }))
    .await
}
