//! The transfer benchmark: prints throughput and peak memory of the streaming transfer.
//!
//! `transfer-bench` (no subcommand) generates a deterministic SP-API-style orders report (default
//! 1 GiB of TSV), gzips it (level 6) and encrypts it with AES-256-CBC like the 2020-09-04 documents,
//! caching it under `target/bench/`. It then measures, each in a child process of its own so that
//! peak RSS belongs to one measurement:
//!
//! 1. transform only: decrypt + gunzip (+ hash and row count) to a null sink;
//! 2. end to end: the real pipeline from a loopback HTTP server into a local S3 (s3s-fs, in a third
//!    process), decompressing;
//! 3. the same, keeping the gzip stream as delivered.
//!
//! `transfer-bench transform --input FILE --key B64 --iv B64 [--output PATH]` runs the transform alone
//! on any AES-256-CBC document, optionally writing the plaintext to PATH for comparison with other tools.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use amzpipe::adapters::s3::{Encryption as Sse, S3Sink};
use amzpipe::domain::source::DayColumn;
use amzpipe::transfer::conform::ColumnOrder;
use amzpipe::transfer::http::download_client;
use amzpipe::transfer::transform::{ObjectStart, ObjectStats};
use amzpipe::transfer::{
    AesKey, Compression, ContentFormat, Destination, Document, DownloadUrl, Encryption, OutputMode, PartOutput,
    TransferError, TransferOptions, TransformLimits, TransformSpec, iv_from_base64, run_transform, transfer_document,
};
use amzpipe_testkit::docserver::{DocServer, Served};
use amzpipe_testkit::fixtures::{CbcEncryptWriter, SP_API_ORDERS_HEADER, SpApiOrdersReport};
use amzpipe_testkit::local_s3::{LocalS3, client_for};
use amzpipe_testkit::peak_rss_bytes;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

/// The key and IV of Amazon's SP-API documents helper tests, reused for the fixture.
const KEY_B64: &str = "sxx/wImF6BFndqSAz56O6vfiAh8iD9P297DHfFgujec=";
const IV_B64: &str = "7S2tn363v0wfCfo1IX2Q1A==";
const BUCKET: &str = "bench";
const MB: f64 = 1_000_000.0;
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Parser)]
#[command(about = "Benchmark of the streaming transfer (decrypt → gunzip → S3 multipart)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    all: AllArgs,
}

#[derive(clap::Args, Clone)]
struct AllArgs {
    /// Uncompressed report size, e.g. 1GiB, 256MiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    /// Part size, e.g. 8MiB.
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    part_size: u64,
    /// Parts uploading at once.
    #[arg(long, default_value_t = 2)]
    in_flight: usize,
    /// Where the generated fixture is cached.
    #[arg(long, default_value = "target/bench")]
    fixture_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Decrypt (AES-256-CBC) and gunzip a document alone, optionally writing the output.
    Transform {
        /// The encrypted, gzipped document.
        #[arg(long)]
        input: PathBuf,
        /// Base64 AES-256 key.
        #[arg(long, default_value = KEY_B64)]
        key: String,
        /// Base64 IV.
        #[arg(long, default_value = IV_B64)]
        iv: String,
        /// Write the decrypted, decompressed output here.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// (internal) Serve a local S3 and the document until killed.
    Serve {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        file: PathBuf,
    },
    /// (internal) One end-to-end transfer into the served S3.
    EndToEnd {
        #[arg(long)]
        s3: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        keep_compressed: bool,
        /// Store the rows as Parquet (typed as the orders report's columns are).
        #[arg(long)]
        parquet: bool,
        /// Give the transfer a table's column order, as download-decrypt does for a text job with a
        /// catalog: `in-order` (the report's own: passed through) or `moved` (its first two columns
        /// swapped: every record rewritten).
        #[arg(long)]
        column_order: Option<String>,
        /// Split the rows by their purchase date's day, as download-decrypt does for the orders
        /// report (the fixture's rows go round 28 days: the most interleaved case).
        #[arg(long)]
        split_by_day: bool,
        #[arg(long, value_parser = parse_size)]
        part_size: u64,
        #[arg(long)]
        in_flight: usize,
    },
}

/// One measurement, as a child prints it.
#[derive(Debug, Serialize, Deserialize)]
struct Figures {
    bytes_in: u64,
    bytes_out: u64,
    seconds: f64,
    peak_rss: u64,
}

#[derive(Serialize, Deserialize)]
struct Served2 {
    s3: String,
    url: String,
}

/// This process's peak RSS; an error where it cannot be read, so that a bound is never "met" by a
/// figure of zero that measured nothing.
fn measured_peak() -> Result<u64, Box<dyn std::error::Error>> {
    peak_rss_bytes()
        .ok_or_else(|| "the peak RSS cannot be read here (/proc/self/status VmHWM): no memory figure".into())
}

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {text}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit in {text} (use KiB, MiB or GiB)")),
    };
    Ok(n * mult)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        None => run_all(&cli.all),
        Some(Cmd::Transform {
            input,
            key,
            iv,
            output,
            json,
        }) => {
            let f = transform(&input, &key, &iv, output.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&f)?);
            } else {
                println!(
                    "transform: {:.1} MiB in → {:.1} MiB out in {:.2} s = {:.1} MB/s of output; peak RSS {:.1} MiB",
                    f.bytes_in as f64 / MIB,
                    f.bytes_out as f64 / MIB,
                    f.seconds,
                    f.bytes_out as f64 / MB / f.seconds,
                    f.peak_rss as f64 / MIB
                );
            }
            Ok(())
        }
        Some(Cmd::Serve { root, file }) => serve(&root, &file),
        Some(Cmd::EndToEnd {
            s3,
            url,
            keep_compressed,
            parquet,
            column_order,
            split_by_day,
            part_size,
            in_flight,
        }) => {
            let mode = match (keep_compressed, parquet) {
                (true, _) => OutputMode::KeepCompressed,
                (false, true) => OutputMode::Parquet,
                (false, false) => OutputMode::Decompress,
            };
            let mut order: Vec<String> = SP_API_ORDERS_HEADER.trim_end().split('\t').map(str::to_owned).collect();
            let column_order = match column_order.as_deref() {
                None => None,
                Some("in-order") => Some(order),
                Some("moved") => {
                    order.swap(0, 1);
                    Some(order)
                }
                Some(other) => return Err(format!("--column-order {other}: in-order or moved").into()),
            }
            .map(|columns| ColumnOrder {
                format: ContentFormat::Tsv,
                columns,
            });
            let split = split_by_day.then(|| DayColumn {
                name: "purchase-date".into(),
                kind: amzpipe::domain::document::ColumnKind::Timestamp,
            });
            let f = end_to_end(&s3, &url, mode, (column_order, split), part_size, in_flight)?;
            println!("{}", serde_json::to_string(&f)?);
            Ok(())
        }
    }
}

/// Writes every part to a file, in order.
struct FileOutput(BufWriter<std::fs::File>);

impl PartOutput for FileOutput {
    fn begin(&mut self, _: ObjectStart) -> Result<(), TransferError> {
        Ok(())
    }
    fn part(&mut self, data: bytes::Bytes) -> Result<(), TransferError> {
        self.0
            .write_all(&data)
            .map_err(|e| TransferError::Internal(format!("writing the output: {e}")))
    }
    fn end(&mut self, _: ObjectStats) -> Result<(), TransferError> {
        Ok(())
    }
}

fn transform(input: &Path, key: &str, iv: &str, output: Option<&Path>) -> Result<Figures, Box<dyn std::error::Error>> {
    let spec = TransformSpec {
        encryption: Encryption::AesCbc {
            key: AesKey::from_base64(key)?,
            iv: iv_from_base64(iv, Some(16))?,
        },
        compression: Compression::Gzip,
        format: ContentFormat::Tsv,
        output: OutputMode::Decompress,
        column_kinds: Default::default(),
        column_order: None,
        split_by_day: None,
    };
    let limits = TransformLimits {
        part_size: 8 << 20,
        max_output_bytes: u64::MAX,
        max_expansion_ratio: amzpipe::domain::document::DEFAULT_MAX_EXPANSION_RATIO,
    };
    let file = std::fs::File::open(input)?;
    let start = Instant::now();
    let summary = match output {
        Some(path) => {
            let mut out = FileOutput(BufWriter::new(std::fs::File::create(path)?));
            let s = run_transform(file, spec, &limits, &mut out)?;
            out.0.flush()?;
            s
        }
        None => run_transform(file, spec, &limits, &mut amzpipe::transfer::NullOutput::default())?,
    };
    Ok(Figures {
        bytes_in: summary.bytes_in,
        bytes_out: summary.bytes_out,
        seconds: start.elapsed().as_secs_f64(),
        peak_rss: measured_peak()?,
    })
}

#[tokio::main]
async fn serve(root: &Path, file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(root)?;
    let s3 = LocalS3::start_in(root).await?;
    let _ = client_for(s3.endpoint())
        .await
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await;
    let docs = DocServer::start().await?;
    let url = docs.add("report", Served::File(file.to_path_buf()));
    println!(
        "{}",
        serde_json::to_string(&Served2 {
            s3: s3.endpoint().to_owned(),
            url
        })?
    );
    std::io::stdout().flush()?;
    // Serve until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1])).await;
    Ok(())
}

#[tokio::main]
async fn end_to_end(
    s3: &str,
    url: &str,
    mode: OutputMode,
    (column_order, split_by_day): (Option<ColumnOrder>, Option<DayColumn>),
    part_size: u64,
    in_flight: usize,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let sink = S3Sink::new(client_for(s3).await, BUCKET, Sse::BucketDefault);
    let http = download_client()?;
    let document = Document {
        source_id: "bench".into(),
        url: DownloadUrl::parse(url, true)?,
        encryption: Encryption::AesCbc {
            key: AesKey::from_base64(KEY_B64)?,
            iv: iv_from_base64(IV_B64, Some(16))?,
        },
        compression: Compression::Gzip,
        format: ContentFormat::Tsv,
    };
    let options = TransferOptions {
        part_size: usize::try_from(part_size)?,
        max_parts_in_flight: in_flight,
        max_output_bytes: u64::MAX,
        max_expansion_ratio: amzpipe::domain::document::DEFAULT_MAX_EXPANSION_RATIO,
        output: mode,
        column_kinds: std::sync::Arc::new(orders_report_kinds()),
        column_order,
        split_by_day,
        ..TransferOptions::default()
    };
    let stem = match mode {
        OutputMode::KeepCompressed => "keep/report",
        OutputMode::Parquet => "parquet/report",
        OutputMode::Decompress => "decompress/report",
    };
    let start = Instant::now();
    let record = transfer_document(&http, &sink, document, &Destination { key_stem: stem.into() }, &options).await?;
    Ok(Figures {
        bytes_in: record.bytes_in,
        bytes_out: record.bytes_out,
        seconds: start.elapsed().as_secs_f64(),
        peak_rss: measured_peak()?,
    })
}

/// The column types the SP-API orders report's Parquet output has (the library's own table).
fn orders_report_kinds() -> std::collections::BTreeMap<String, amzpipe::domain::document::ColumnKind> {
    amzpipe::domain::source::sp_reports::TYPED_COLUMNS
        .iter()
        .flat_map(|(_, columns)| columns.iter())
        .map(|(name, kind)| ((*name).to_owned(), *kind))
        .collect()
}

/// Generates the encrypted fixture once per size; later runs reuse it.
fn fixture(dir: &Path, size: u64) -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    // `whole`: generated of whole rows (earlier fixtures ended with a row cut to fit).
    let path = dir.join(format!("sp-api-orders-whole-{size}.tsv.gz.aes"));
    if path.exists() {
        return Ok(path);
    }
    eprintln!(
        "generating a {:.0} MiB report (gzip -6, AES-256-CBC) into {} …",
        size as f64 / MIB,
        path.display()
    );
    let key: [u8; 32] = BASE64.decode(KEY_B64)?.as_slice().try_into()?;
    let iv: [u8; 16] = BASE64.decode(IV_B64)?.as_slice().try_into()?;
    let tmp = path.with_extension("partial");
    let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut gz = flate2::write::GzEncoder::new(CbcEncryptWriter::new(file, &key, &iv), flate2::Compression::new(6));
    std::io::copy(&mut SpApiOrdersReport::new(size, 2021), &mut gz)?;
    gz.finish()?.finish()?.flush()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn child(args: &[&str]) -> Result<Figures, Box<dyn std::error::Error>> {
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("child {args:?} failed").into());
    }
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().last().ok_or("child printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

fn run_all(a: &AllArgs) -> Result<(), Box<dyn std::error::Error>> {
    let fixture = fixture(&a.fixture_dir, a.size)?;
    let fixture_str = fixture.to_str().ok_or("fixture path is not UTF-8")?;
    let encrypted = std::fs::metadata(&fixture)?.len();

    let transform = child(&["transform", "--input", fixture_str, "--json"])?;

    let root = a.fixture_dir.join("s3");
    let _ = std::fs::remove_dir_all(&root);
    let root_str = root.to_str().ok_or("path is not UTF-8")?;
    let mut server = Command::new(std::env::current_exe()?)
        .args(["serve", "--root", root_str, "--file", fixture_str])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().ok_or("no stdout")?),
        &mut line,
    )?;
    let served: Served2 = serde_json::from_str(&line)?;
    let part = a.part_size.to_string();
    let flight = a.in_flight.to_string();
    let common = [
        "--s3",
        &served.s3,
        "--url",
        &served.url,
        "--part-size",
        &part,
        "--in-flight",
        &flight,
    ];
    let e2e = child(&[&["end-to-end"], &common[..]].concat());
    let keep = child(&[&["end-to-end", "--keep-compressed"], &common[..]].concat());
    let parquet = child(&[&["end-to-end", "--parquet"], &common[..]].concat());
    let in_order = child(&[&["end-to-end", "--column-order", "in-order"], &common[..]].concat());
    let moved = child(&[&["end-to-end", "--column-order", "moved"], &common[..]].concat());
    let split = child(&[&["end-to-end", "--split-by-day"], &common[..]].concat());
    drop(server.stdin.take());
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&root);
    let (e2e, keep, parquet, in_order, moved, split) = (e2e?, keep?, parquet?, in_order?, moved?, split?);

    println!();
    println!(
        "transfer benchmark: {:.0} MiB SP-API orders TSV, gzip -6 + AES-256-CBC = {:.1} MiB; part {} MiB, {} in flight; {} cores",
        a.size as f64 / MIB,
        encrypted as f64 / MIB,
        a.part_size >> 20,
        a.in_flight,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "{:<34} {:>10} {:>9} {:>14} {:>11}",
        "", "stored", "time", "MB/s stored", "peak RSS"
    );
    for (name, f) in [
        ("transform only (null sink)", &transform),
        ("end to end → S3, decompressed", &e2e),
        ("end to end → S3, gzip kept", &keep),
        ("… in its table's order (as is)", &in_order),
        ("… its columns moved (rewritten)", &moved),
        ("… split by day (28 days, mixed)", &split),
    ] {
        println!(
            "{:<34} {:>6.0} MiB {:>7.2} s {:>14.1} {:>7.1} MiB",
            name,
            f.bytes_out as f64 / MIB,
            f.seconds,
            f.bytes_out as f64 / MB / f.seconds,
            f.peak_rss as f64 / MIB
        );
    }
    let ratio = transform.seconds / e2e.seconds;
    let speedup = e2e.seconds / keep.seconds;
    println!();
    println!(
        "transform throughput       {:>7.1} MB/s of decompressed output   (target ≥ 300)",
        transform.bytes_out as f64 / MB / transform.seconds
    );
    println!(
        "end to end / transform     {:>7.2}                               (target ≥ 0.80)",
        ratio
    );
    println!(
        "gzip kept vs decompressed  {:>7.2}× faster for the same report   (target ≥ 3×)",
        speedup
    );
    println!(
        "as Parquet (typed)         {:>7.1} MB/s of text in, {:.0} MiB stored ({:.0}% of the text), peak RSS {:.1} MiB (bound 64)",
        a.size as f64 / MB / parquet.seconds,
        parquet.bytes_out as f64 / MIB,
        parquet.bytes_out as f64 * 100.0 / a.size as f64,
        parquet.peak_rss as f64 / MIB
    );
    println!(
        "peak RSS end to end        {:>7.1} MiB                           (target ≤ 64)",
        [&e2e, &keep, &in_order, &moved, &split]
            .iter()
            .map(|f| f.peak_rss)
            .max()
            .unwrap_or(0) as f64
            / MIB
    );
    Ok(())
}
