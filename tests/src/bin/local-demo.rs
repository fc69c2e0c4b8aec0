//! `make demo`: the transfer core on this machine, with no AWS account and no Amazon credentials.
//!
//! Starts a local S3 (s3s-fs, objects kept under `target/demo/s3/` for inspection) and a loopback
//! document server, then moves one document per source, each in the shape that source delivers,
//! through the real streaming transfer, writes each run's manifest last, and prints what landed.
//!
//! The scheduled state machine (refresh-token → create-request → poll → download) joins this demo
//! when the Lambda functions and the Amazon API simulator land; until then the documents are served
//! directly instead of being requested from a simulated Amazon API.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use amzpipe::adapters::http::download_client;
use amzpipe::adapters::s3::{Encryption as Sse, S3Sink};
use amzpipe::transfer::{
    AesKey, Compression, ContentFormat, Destination, Document, DownloadUrl, Encryption, MANIFEST_FILE_NAME, Manifest,
    TransferOptions, transfer_document,
};
use amzpipe_testkit::docserver::{DocServer, Served};
use amzpipe_testkit::fixtures::{SpApiOrdersReport, cbc_encrypt, gzip};
use amzpipe_testkit::local_s3::LocalS3;
use clap::Parser;

const BUCKET: &str = "amzpipe-demo";

#[derive(Parser)]
#[command(about = "Run the streaming transfer locally on simulated documents of all four sources")]
struct Cli {
    /// Size of the simulated SP-API report in MiB.
    #[arg(long, default_value_t = 64)]
    sp_api_mib: u64,
    /// Where the local S3 keeps its objects.
    #[arg(long, default_value = "target/demo/s3")]
    s3_dir: PathBuf,
}

struct Run {
    source: &'static str,
    prefix: String,
    documents: Vec<(Document, String)>,
}

fn document(
    source_id: &str,
    url: String,
    encryption: Encryption,
    compression: Compression,
    format: ContentFormat,
) -> Result<Document, Box<dyn std::error::Error>> {
    Ok(Document {
        source_id: source_id.into(),
        url: DownloadUrl::parse(url)?,
        encryption,
        compression,
        format,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    let _ = std::fs::remove_dir_all(&cli.s3_dir);
    std::fs::create_dir_all(&cli.s3_dir)?;
    // s3s-fs resolves its files against an absolute root.
    let s3_dir = std::fs::canonicalize(&cli.s3_dir)?;
    let cli = Cli { s3_dir, ..cli };
    let s3 = LocalS3::start_in(&cli.s3_dir).await?;
    let client = s3.client().await;
    client.create_bucket().bucket(BUCKET).send().await?;
    let sink = S3Sink::new(client, BUCKET, Sse::BucketDefault);
    let docs = DocServer::start().await?;
    let http = download_client()?;
    println!(
        "local S3 at {} (objects under {}), document server on loopback",
        s3.endpoint(),
        cli.s3_dir.display()
    );

    let day = "dt=2026-11-22";
    let mut runs = Vec::new();

    // SP-API Reports: a legacy 2020-09-04 document (AES-256-CBC over gzip TSV).
    let mut report = Vec::new();
    SpApiOrdersReport::new(cli.sp_api_mib << 20, 1).read_to_end(&mut report)?;
    let (key, iv) = ([0x42u8; 32], [0x24u8; 16]);
    let url = docs.add("sp-api", Served::Bytes(cbc_encrypt(&key, &iv, &gzip(&report)).into()));
    drop(report);
    // s3s-fs names its metadata files after the base64 of the key, so keys over ~130 bytes exceed
    // the file-name limit of the local file system; real S3 takes keys up to 1,024 bytes.
    let prefix = format!(
        "source=sp-api/seller=A1DEMO/report=GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL/{day}/run=demo"
    );
    runs.push(Run {
        source: "SP-API Reports",
        documents: vec![(
            document(
                "amzn1.spdoc.1.4.na.demo",
                url,
                Encryption::AesCbc {
                    key: AesKey::from_bytes(&key)?,
                    iv: iv.to_vec(),
                },
                Compression::Gzip,
                ContentFormat::Tsv,
            )?,
            format!("{prefix}/report"),
        )],
        prefix,
    });

    // Amazon Ads reporting v3: a gzip JSON array.
    let rows: Vec<String> = (0..20_000)
        .map(|i| {
            format!(
                "{{\"date\":\"2026-11-22\",\"campaignId\":{},\"impressions\":{},\"clicks\":{},\"cost\":{:.2}}}",
                1000 + i % 40,
                i * 7 % 1000,
                i % 13,
                f64::from(i % 500) / 10.0
            )
        })
        .collect();
    let url = docs.add(
        "ads",
        Served::Bytes(gzip(format!("[{}]", rows.join(",")).as_bytes()).into()),
    );
    let prefix = format!("source=ads/profile=1234567890/report_type=spCampaigns/{day}/run=demo");
    runs.push(Run {
        source: "Ads reporting v3",
        documents: vec![(
            document(
                "a1b2c3d4-report",
                url,
                Encryption::None,
                Compression::Gzip,
                ContentFormat::Json,
            )?,
            format!("{prefix}/report"),
        )],
        prefix,
    });

    // AMC: an execution with two CSV result files.
    let prefix = format!("source=amc/instance=amcdemo01/workflow=weekly_reach/{day}/run=demo");
    let mut amc_docs = Vec::new();
    for part in 0..2 {
        let mut csv = String::from("campaign,reach,\"notes\"\n");
        for i in 0..5_000 {
            csv.push_str(&format!("c{part}{i},{},\"multi\nline\"\n", i * 3));
        }
        let url = docs.add(&format!("amc-{part}"), Served::Bytes(csv.into_bytes().into()));
        amc_docs.push((
            document(
                &format!("exec-demo/file-{part}"),
                url,
                Encryption::None,
                Compression::None,
                ContentFormat::Csv,
            )?,
            format!("{prefix}/part-{part:05}"),
        ));
    }
    runs.push(Run {
        source: "AMC",
        documents: amc_docs,
        prefix,
    });

    // Prime Video Slate: a ZIP of CSV changelogs.
    let mut w = zip::ZipWriter::new_stream(Vec::new());
    for name in ["playback.csv", "subscriptions.csv"] {
        w.start_file(name, zip::write::SimpleFileOptions::default())?;
        w.write_all(b"event_id,last_update_time_utc,is_deleted\n")?;
        for i in 0..3_000 {
            writeln!(w, "{name}-{i},2026-11-22T0{}:00:00Z,{}", i % 10, u8::from(i % 50 == 0))?;
        }
    }
    let url = docs.add("slate", Served::Bytes(w.finish()?.into_inner().into()));
    let prefix = format!("source=slate/account=demo-account/dataset=playback/{day}/run=demo");
    runs.push(Run {
        source: "Prime Video Slate",
        documents: vec![(
            document(
                "slate-file-0001",
                url,
                Encryption::None,
                Compression::Zip,
                ContentFormat::Csv,
            )?,
            format!("{prefix}/file-0001"),
        )],
        prefix,
    });

    println!();
    println!(
        "{:<18} {:<74} {:>10} {:>8}  sha256",
        "source", "object", "bytes", "rows"
    );
    let mut manifests = Vec::new();
    for run in runs {
        let mut records = Vec::new();
        for (doc, stem) in run.documents {
            let record = transfer_document(
                &http,
                &sink,
                doc,
                &Destination { key_stem: stem },
                &TransferOptions::default(),
            )
            .await?;
            for o in &record.objects {
                let short = o.key.strip_prefix(&format!("{}/", run.prefix)).unwrap_or(&o.key);
                println!(
                    "{:<18} …/{:<72} {:>10} {:>8}  {}…",
                    run.source,
                    short,
                    o.bytes,
                    o.rows.map_or("-".into(), |r| r.to_string()),
                    &o.sha256[..12]
                );
            }
            records.push(record);
        }
        let context = BTreeMap::from([
            ("source".to_owned(), run.source.to_owned()),
            ("run".to_owned(), "demo".to_owned()),
        ]);
        let key = format!("{}/{MANIFEST_FILE_NAME}", run.prefix);
        let manifest = Manifest::new(context, records);
        manifest.write(&sink, &key).await?;
        manifests.push((key, manifest.totals));
    }
    println!();
    println!("manifests (written last; a run counts as complete once its manifest exists):");
    for (key, totals) in manifests {
        println!(
            "  s3://{BUCKET}/{key}  ({} objects, {} bytes in, {} bytes out, {} rows)",
            totals.objects, totals.bytes_in, totals.bytes_out, totals.rows
        );
    }
    println!();
    println!("open multipart uploads left behind: {}", s3.open_uploads());
    println!("Look at the files under {}/{BUCKET}/.", cli.s3_dir.display());
    println!("Next: `make test` runs the test suite; `make bench` measures throughput and memory.");
    Ok(())
}
