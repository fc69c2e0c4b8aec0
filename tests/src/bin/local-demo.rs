//! `make demo`: the pipeline on this machine, with no AWS account and no Amazon credentials.
//!
//! Starts the Amazon API simulator (all four sources and Login with Amazon; progress is driven by
//! polls, so hour-long Amazon waits take milliseconds) and a local S3 (s3s-fs, objects kept under
//! `target/demo/s3/` for inspection). For each source it runs the real client — create the request
//! for yesterday, check its status until it is done, list its documents — and moves every document
//! through the real streaming transfer into S3, then writes the run's manifest last and prints what
//! landed. The SP-API report comes in the retired AES-256-CBC encrypted shape, to show decryption.
//!
//! The status loop here stands in for the state machine (refresh-token → create-request →
//! Wait/poll-status → download-decrypt), which replaces it when the Lambda functions and the
//! infrastructure land.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use amzpipe::adapters::ads_reports::{AdsReportRequest, AdsReportsClient};
use amzpipe::adapters::amc::{AmcClient, AmcQuery, AmcRequest};
use amzpipe::adapters::api::{ApiClient, AuthStyle, Policy, api_http_client};
use amzpipe::adapters::http::download_client;
use amzpipe::adapters::lwa::{Credentials, LwaClient, LwaSession};
use amzpipe::adapters::s3::{Encryption as Sse, S3Sink};
use amzpipe::adapters::slate::{SlateClient, SlateRequest};
use amzpipe::adapters::sp_reports::{SpReportRequest, SpReportsClient};
use amzpipe::domain::TimeWindow;
use amzpipe::ports::{ReportSource, RequestStatus};
use amzpipe::transfer::{Destination, MANIFEST_FILE_NAME, Manifest, Totals, TransferOptions, transfer_document};
use amzpipe_testkit::local_s3::LocalS3;
use amzpipe_testkit::sim::{SimConfig, Simulator};
use clap::Parser;
use secrecy::SecretString;

const BUCKET: &str = "amzpipe-demo";

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(about = "Run every source locally against the Amazon API simulator into a local S3")]
struct Cli {
    /// Size of the simulated SP-API report in MiB.
    #[arg(long, default_value_t = 64)]
    sp_api_mib: u64,
    /// Where the local S3 keeps its objects.
    #[arg(long, default_value = "target/demo/s3")]
    s3_dir: PathBuf,
}

/// What one source run needs: where objects go and how to print them.
struct Target<'a> {
    label: &'static str,
    prefix: String,
    sink: &'a S3Sink,
    http: &'a reqwest::Client,
}

/// create → status until done → documents → transfer each → manifest; returns the manifest key.
async fn run_source<S: ReportSource>(
    source: &S,
    request: &S::Request,
    window: &TimeWindow,
    target: &Target<'_>,
) -> DemoResult<Option<(String, Totals)>> {
    let id = source.create(request, window).await?;
    println!("{:<18} request {id} created", target.label);
    let mut states = Vec::new();
    let status = loop {
        match source.status(request, &id).await? {
            RequestStatus::InProgress { state } => states.push(state),
            done => break done,
        }
    };
    match status {
        RequestStatus::Ready => {}
        other => {
            println!("{:<18} ended without data to move: {other:?}", target.label);
            return Ok(None);
        }
    }
    states.push("READY".into());
    println!("{:<18} status {}", target.label, states.join(" → "));
    let mut records = Vec::new();
    for (i, doc) in source.documents(request, &id).await?.into_iter().enumerate() {
        let destination = Destination {
            key_stem: format!("{}/{i:05}", target.prefix),
        };
        let record = transfer_document(
            target.http,
            target.sink,
            doc.document,
            &destination,
            &TransferOptions::default(),
        )
        .await?;
        for o in &record.objects {
            let short = o.key.strip_prefix(&format!("{}/", target.prefix)).unwrap_or(&o.key);
            let rows = o.rows.map_or_else(|| "-".to_owned(), |r| r.to_string());
            println!(
                "{:<18}   …/{short:<40} {:>10} bytes {rows:>8} rows  sha256 {}…",
                target.label,
                o.bytes,
                &o.sha256[..12]
            );
        }
        records.push(record);
    }
    let context = BTreeMap::from([
        ("source".to_owned(), target.label.to_owned()),
        ("request_id".to_owned(), id),
        ("window".to_owned(), format!("{}/{}", window.start, window.end)),
    ]);
    let key = format!("{}/{MANIFEST_FILE_NAME}", target.prefix);
    let manifest = Manifest::new(context, records);
    manifest.write(target.sink, &key).await?;
    Ok(Some((key, manifest.totals)))
}

#[tokio::main]
async fn main() -> DemoResult<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    let _ = std::fs::remove_dir_all(&cli.s3_dir);
    std::fs::create_dir_all(&cli.s3_dir)?;
    // s3s-fs resolves its files against an absolute root.
    let s3_dir = std::fs::canonicalize(&cli.s3_dir)?;
    let s3 = LocalS3::start_in(&s3_dir).await?;
    let client = s3.client().await;
    client.create_bucket().bucket(BUCKET).send().await?;
    let sink = S3Sink::new(client, BUCKET, Sse::BucketDefault);
    let sim = Simulator::start(SimConfig {
        sp_report_bytes: cli.sp_api_mib << 20,
        sp_legacy_documents: true,
        ..SimConfig::default()
    })
    .await?;
    println!(
        "Amazon API simulator at {}; local S3 at {} (objects under {})",
        sim.base_url(),
        s3.endpoint(),
        s3_dir.display()
    );
    println!();

    let policy = Policy::default();
    let http = api_http_client(&policy)?;
    let credentials = Credentials {
        client_id: "amzn1.application-oa2-client.demo".into(),
        client_secret: SecretString::from("demo-client-secret"),
        refresh_token: SecretString::from("Atzr|demo-refresh-token"),
    };
    let session = Arc::new(LwaSession::new(
        LwaClient::new(http.clone(), sim.token_url()),
        credentials,
    ));
    let api = |auth| ApiClient::new(http.clone(), Arc::clone(&session), auth, policy.clone());
    let downloads = download_client()?;
    let today = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .ok_or("midnight")?
        .and_utc();
    let yesterday = TimeWindow::new(today - chrono::Duration::days(1), today)?;
    let dt = format!("dt={}", yesterday.start.date_naive());
    let target = |label, prefix: String| Target {
        label,
        prefix: format!("{prefix}/{dt}/run=demo"),
        sink: &sink,
        http: &downloads,
    };
    let mut manifests = Vec::new();

    // SP-API Reports (a legacy 2020-09-04 document: AES-256-CBC over gzip TSV).
    // s3s-fs names its metadata files after the base64 of the key, so keys over ~130 bytes exceed the
    // local file-name limit; real S3 takes keys up to 1,024 bytes.
    let sp = SpReportsClient::new(api(AuthStyle::AmzAccessToken), sim.base_url());
    let orders = SpReportRequest {
        report_type: "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        report_options: BTreeMap::new(),
        format: None,
    };
    let t = target(
        "SP-API Reports",
        format!("source=sp-api/seller=A1DEMO/type={}", orders.report_type),
    );
    manifests.extend(run_source(&sp, &orders, &yesterday, &t).await?);

    // Amazon Ads reporting v3 (gzip JSON), for the first profile the credentials can see.
    let ads = AdsReportsClient::new(api(AuthStyle::Bearer), sim.base_url());
    let profile = ads.profiles().await?.into_iter().next().ok_or("no Ads profile")?;
    let campaigns = AdsReportRequest {
        profile_id: profile.profile_id.to_string(),
        ad_product: "SPONSORED_PRODUCTS".into(),
        report_type_id: "spCampaigns".into(),
        columns: ["date", "campaignId", "campaignName", "impressions", "clicks", "cost"]
            .map(String::from)
            .to_vec(),
        group_by: vec!["campaign".into()],
        time_unit: "DAILY".into(),
        filters: vec![],
    };
    let t = target(
        "Ads reporting v3",
        format!("source=ads/profile={}/type=spCampaigns", profile.profile_id),
    );
    manifests.extend(run_source(&ads, &campaigns, &yesterday, &t).await?);

    // AMC: an ad-hoc query whose result comes as two CSV files.
    let amc = AmcClient::new(api(AuthStyle::Bearer), sim.base_url());
    let reach = AmcRequest {
        instance_id: "amcdemo01".into(),
        advertiser_id: "ENTITY1AA1AA11AAA1".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
        query: AmcQuery::Sql(
            "SELECT campaign,\n  COUNT(DISTINCT user_id) AS reach\nFROM dsp_impressions\nGROUP BY 1".into(),
        ),
        parameter_values: BTreeMap::new(),
        time_zone: None,
        timeout_seconds: None,
        require_synthetic_data: false,
    };
    let t = target("AMC", "source=amc/instance=amcdemo01/query=weekly_reach".into());
    manifests.extend(run_source(&amc, &reach, &yesterday, &t).await?);

    // Prime Video Slate: yesterday's playback files, ZIP archives of CSV changelogs.
    let slate = SlateClient::new(api(AuthStyle::Bearer), sim.slate_url());
    let playback = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "playback".into(),
        after: None,
    };
    let t = target(
        "Prime Video Slate",
        "source=slate/account=acct-1/dataset=playback".into(),
    );
    manifests.extend(run_source(&slate, &playback, &yesterday, &t).await?);

    println!();
    println!("manifests (written last; a run counts as complete once its manifest exists):");
    for (key, totals) in manifests {
        println!(
            "  s3://{BUCKET}/{key}\n      {} objects, {} bytes in, {} bytes out, {} rows",
            totals.objects, totals.bytes_in, totals.bytes_out, totals.rows
        );
    }
    println!();
    println!("open multipart uploads left behind: {}", s3.open_uploads());
    println!("Look at the files under {}/{BUCKET}/.", s3_dir.display());
    println!("Next: `make test` runs the test suite; `make bench` measures throughput and memory.");
    Ok(())
}
