//! `amzpipe`: the library behind the serverless Amazon data pipeline.
//!
//! The Lambda functions under `functions/` are wiring only; everything they do lives here:
//!
//! - [`transfer`]: the streaming transfer that moves one Amazon document from a pre-signed HTTPS URL
//!   into S3 with bounded memory: HTTP body → AES-256-CBC / AES-256-GCM → gzip / zip → S3 multipart,
//!   plus the manifest that commits a run.
//! - [`domain`]: regions, time windows, job definitions and runs.
//! - [`ports`]: the narrow traits the use cases depend on: [`ports::ObjectSink`] (where documents go) and
//!   [`ports::ReportSource`] (create → status → documents, one adapter per Amazon API).
//! - [`adapters`]: the implementations of those ports over real services: S3, DynamoDB (the job table),
//!   Secrets Manager, Login with Amazon, and the SP-API Reports, Ads reporting v3, AMC and Slate clients,
//!   all behind one HTTP policy ([`adapters::api`]).
//! - [`steps`]: the four steps of the state machine (refresh-token, create-request, poll-status,
//!   download-decrypt) and the errors they return to it; [`lambda`]: what the binaries share.

pub mod adapters;
pub mod domain;
pub mod lambda;
pub mod ports;
pub mod steps;
pub mod transfer;
