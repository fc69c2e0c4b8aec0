//! The `download-decrypt` Lambda function. Streams the run's documents into S3 (decrypting and decompressing on the way), writes the
//! manifest and ends the run, within the Lambda deadline.
//!
//! Wiring only: the logic is [`amzpipe::steps::download_decrypt`]; configuration is read once per container
//! (see [`amzpipe::steps::Settings`]), and errors reach Step Functions as their stable `errorType`.

use amzpipe::steps::{AwsServices, Deadline, download_decrypt};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    amzpipe::lambda::init_tracing();
    let services = AwsServices::from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        download_decrypt(
            services,
            event.payload,
            Deadline::from_epoch_millis(event.context.deadline),
        )
        .await
    }))
    .await
}
