//! Test kit for the pipeline: real local services for tests, the benchmark and the local demo.
//!
//! - [`local_s3`]: an S3 server (s3s-fs) on a loopback port, in-process or as a child process.
//! - [`moto`]: a local AWS (moto server) for S3, DynamoDB, Secrets Manager and Step Functions.
//! - [`docserver`]: an HTTP server that serves documents like pre-signed S3 URLs do, with faults
//!   (expired URL, truncated body, failures before success).
//! - [`aws_faults`]: a proxy between an SDK client and the local AWS that loses answers or refuses
//!   requests, for the faults AWS has and moto does not.
//! - [`fixtures`]: deterministic report generators and the encryption Amazon used for legacy
//!   documents, streaming so that large fixtures never sit in memory.
//! - [`lambda_host`]: the real function binaries behind a Lambda Runtime API served here (the demo).
//! - [`sfn`]: the real state-machine definition on moto's Step Functions, its Lambda tasks routed to the steps.
//! - [`stack`]: the simulator and a local AWS provisioned as the template does, with the steps' services.
//! - [`sim`]: the Amazon API simulator (LWA, SP-API Reports, Ads reporting v3, AMC, Slate).
//! - [`sql`]: a real SQL engine (DuckDB) over the Glue catalog's tables, read as Athena reads them.
//! - [`replay`]: canned published responses over HTTP, for running the clients against Amazon's examples.

pub mod aws_faults;
pub mod docserver;
pub mod fixtures;
pub mod lambda_host;
pub mod local_s3;
pub mod moto;
pub mod replay;
pub mod sfn;
pub mod sim;
pub mod sql;
pub mod stack;

/// Serves `app` on `listener` until the returned sender is dropped: the test kit's servers stop with
/// whatever owns them.
pub fn serve_until_dropped(listener: tokio::net::TcpListener, app: axum::Router) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "a test server stopped");
        }
    });
    stop
}

/// Peak resident set size of this process in bytes (`VmHWM` from `/proc/self/status`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
