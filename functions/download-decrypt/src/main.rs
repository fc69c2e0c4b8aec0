//! The `download-decrypt` Lambda function (placeholder: its handler arrives with the Lambda functions issue).

fn main() {}
