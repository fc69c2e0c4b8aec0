//! `amzpipe`: the library behind the serverless Amazon data pipeline.
//!
//! The Lambda functions under `functions/` are wiring only; everything they do lives here:
//!
//! - [`transfer`]: the streaming transfer that moves one Amazon document from a pre-signed HTTPS URL
//!   into S3 with bounded memory: HTTP body → AES-256-CBC / AES-256-GCM → gzip / zip → S3 multipart,
//!   plus the manifest that commits a run.
//! - [`domain`]: regions and time windows.
//! - [`ports`]: the narrow traits the use cases depend on: [`ports::ObjectSink`] (where documents go) and
//!   [`ports::ReportSource`] (create → status → documents, one adapter per Amazon API).
//! - [`adapters`]: the implementations of those ports over real services: S3, Login with Amazon, and the
//!   SP-API Reports, Ads reporting v3, AMC and Slate clients, all behind one HTTP policy ([`adapters::api`]).

pub mod adapters;
pub mod domain;
pub mod ports;
pub mod transfer;
