//! The `refresh-token` Lambda function. Makes sure the job's credentials give a valid access token and shares it with the other
//! functions; returns a reference to the credentials, never the token. It also receives the schedules'
//! firings, and starts each one's execution under a name of the schedule and its time, once.
//!
//! Wiring only: the logic is [`amzpipe::steps::refresh_token_or_start_execution`]; configuration is read once per container
//! (see [`amzpipe::steps::Settings`]), and errors reach Step Functions as their stable `errorType`.

use amzpipe::steps::{AwsServices, refresh_token_or_start_execution};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    amzpipe::lambda::init_tracing();
    let services = AwsServices::from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        refresh_token_or_start_execution(services, event.payload).await
    }))
    .await
}
