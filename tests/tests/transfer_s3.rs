//! The streaming transfer end to end: a document server on loopback → the real pipeline → the real
//! AWS SDK → a real S3 wire implementation (s3s-fs). Checks content, multipart, abort on every
//! failure path, retries, and the manifest.

use std::collections::BTreeMap;

use amzpipe::adapters::s3::{Encryption as Sse, S3Sink};
use amzpipe::transfer::http::download_client;
use amzpipe::transfer::{
    AesKey, Compression, ContentFormat, DecodeError, Destination, Document, DownloadUrl, Encryption, ErrorClass,
    GcmTag, Manifest, OutputMode, TransferError, TransferOptions, transfer_document,
};
use amzpipe_testkit::docserver::{DocServer, Served};
use amzpipe_testkit::fixtures::{SpApiOrdersReport, cbc_encrypt, gcm_encrypt, gzip};
use amzpipe_testkit::local_s3::{LocalS3, get_object, list_keys};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::Read;

const BUCKET: &str = "reports";
const MIB: usize = 1024 * 1024;
const KEY: [u8; 32] = [0x5a; 32];
const IV: [u8; 16] = [0x11; 16];

struct Env {
    s3: LocalS3,
    client: aws_sdk_s3::Client,
    sink: S3Sink,
    docs: DocServer,
    http: reqwest::Client,
}

async fn env() -> Env {
    let s3 = LocalS3::start().await.expect("local s3");
    let client = s3.client().await;
    client.create_bucket().bucket(BUCKET).send().await.expect("bucket");
    let sink = S3Sink::new(client.clone(), BUCKET, Sse::BucketDefault);
    Env {
        s3,
        client,
        sink,
        docs: DocServer::start().await.expect("doc server"),
        http: download_client().expect("http client"),
    }
}

fn report(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    SpApiOrdersReport::new(size as u64, 7)
        .read_to_end(&mut out)
        .expect("generate");
    out
}

/// The tests' transfer options: 5 MiB parts, and two quick resumes of a failed download.
fn options() -> TransferOptions {
    TransferOptions {
        part_size: 5 * MIB,
        resume_backoffs: vec![std::time::Duration::from_millis(10); 2],
        ..TransferOptions::default()
    }
}

fn cbc_document(url: String) -> Document {
    Document {
        source_id: "amzn1.spdoc.1.4.na.test".into(),
        url: DownloadUrl::parse(url, true).expect("url"),
        encryption: Encryption::AesCbc {
            key: AesKey::from_bytes(&KEY).expect("key"),
            iv: IV.to_vec(),
        },
        compression: Compression::Gzip,
        format: ContentFormat::Tsv,
    }
}

fn dest(stem: &str) -> Destination {
    Destination {
        key_stem: stem.to_owned(),
    }
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_encrypted_gzip_report_is_stored_decompressed_in_many_parts() {
    let e = env().await;
    let plain = report(23 * MIB);
    let url = e
        .docs
        .add("r1", Served::Bytes(cbc_encrypt(&KEY, &IV, &gzip(&plain)).into()));

    let record = transfer_document(
        &e.http,
        &e.sink,
        cbc_document(url),
        &dest("sp/run=1/orders"),
        &options(),
    )
    .await
    .expect("transfer");

    assert_eq!(list_keys(&e.client, BUCKET).await, ["sp/run=1/orders.tsv"]);
    let (stored, content_type) = get_object(&e.client, BUCKET, "sp/run=1/orders.tsv")
        .await
        .expect("object");
    assert!(stored == plain, "stored bytes equal the plaintext");
    assert_eq!(content_type.as_deref(), Some("text/tab-separated-values"));
    let object = &record.objects[0];
    assert_eq!(object.parts, 5);
    assert_eq!(object.bytes, plain.len() as u64);
    assert_eq!(object.sha256, sha_hex(&plain));
    let newlines = plain.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(
        object.rows,
        Some(newlines - 1),
        "the header excluded, the last row whole"
    );
    assert_eq!(record.encryption, "AES-256-CBC");
    assert_eq!(e.s3.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_compressed_mode_stores_the_decrypted_gzip_exactly_as_delivered() {
    let e = env().await;
    let compressed = gzip(&report(3 * MIB));
    let url = e
        .docs
        .add("r2", Served::Bytes(cbc_encrypt(&KEY, &IV, &compressed).into()));
    let opts = TransferOptions {
        output: OutputMode::KeepCompressed,
        ..options()
    };

    let record = transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/orders"), &opts)
        .await
        .expect("transfer");

    let (stored, content_type) = get_object(&e.client, BUCKET, "sp/orders.tsv.gz").await.expect("object");
    assert!(stored == compressed);
    assert_eq!(content_type.as_deref(), Some("application/gzip"));
    assert_eq!(record.objects[0].rows, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_entries_land_as_separate_objects_with_hostile_names_made_safe() {
    use std::io::Write;
    let e = env().await;
    let mut w = zip::ZipWriter::new_stream(Vec::new());
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in [
        ("playback.csv", &b"event_id,title\n1,\"A, B\"\n"[..]),
        ("../../etc/passwd.csv", &b"x\n1\n"[..]),
        ("empty.csv", &b""[..]),
    ] {
        w.start_file(name, opts).expect("entry");
        w.write_all(body).expect("write");
    }
    let archive = w.finish().expect("zip").into_inner();
    let url = e.docs.add("z", Served::Bytes(archive.into()));
    let document = Document {
        source_id: "slate-file-1".into(),
        url: DownloadUrl::parse(url, true).expect("url"),
        encryption: Encryption::None,
        compression: Compression::Zip,
        format: ContentFormat::Csv,
    };

    let record = transfer_document(&e.http, &e.sink, document, &dest("slate/f1"), &options())
        .await
        .expect("transfer");

    assert_eq!(
        list_keys(&e.client, BUCKET).await,
        ["slate/f1/empty.csv", "slate/f1/etc/passwd.csv", "slate/f1/playback.csv"]
    );
    let rows: Vec<_> = record.objects.iter().map(|o| o.rows).collect();
    assert_eq!(rows, [Some(1), Some(1), Some(0)]);
    assert_eq!(
        get_object(&e.client, BUCKET, "slate/f1/empty.csv")
            .await
            .expect("empty")
            .0,
        b""
    );
    assert_eq!(e.s3.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gcm_tag_mismatch_aborts_every_upload_and_leaves_no_object() {
    let e = env().await;
    let mut sealed = gcm_encrypt(&KEY, &[7; 12], &gzip(&report(16 * MIB)));
    let last = sealed.len() - 1;
    sealed[last] ^= 0x01;
    let url = e.docs.add("g", Served::Bytes(sealed.into()));
    let document = Document {
        source_id: "gcm-doc".into(),
        url: DownloadUrl::parse(url, true).expect("url"),
        encryption: Encryption::AesGcm {
            key: AesKey::from_bytes(&KEY).expect("key"),
            nonce: vec![7; 12],
            aad: Vec::new(),
            tag: GcmTag::Appended,
        },
        compression: Compression::Gzip,
        format: ContentFormat::Tsv,
    };

    let err = transfer_document(&e.http, &e.sink, document, &dest("gcm/doc"), &options())
        .await
        .expect_err("must fail");

    assert!(matches!(err, TransferError::Decode(DecodeError::TagMismatch)), "{err}");
    assert_eq!(err.class(), ErrorClass::Integrity);
    assert!(
        list_keys(&e.client, BUCKET).await.is_empty(),
        "no unauthenticated plaintext is visible"
    );
    assert_eq!(e.s3.open_uploads(), 0, "every multipart upload was aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_download_leaves_nothing_and_the_retry_stores_exactly_one_object() {
    let e = env().await;
    let plain = report(12 * MIB);
    let full = Bytes::from(cbc_encrypt(&KEY, &IV, &gzip(&plain)));
    let sent = full.len() * 3 / 4;
    let url = e.docs.add(
        "t",
        Served::Truncated {
            full: full.clone(),
            sent,
        },
    );

    let err = transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/t"), &options())
        .await
        .expect_err("truncated");
    assert!(matches!(err, TransferError::Decode(DecodeError::Truncated(_))), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(list_keys(&e.client, BUCKET).await.is_empty());
    assert_eq!(e.s3.open_uploads(), 0);

    let url = e.docs.add("t", Served::Bytes(full));
    transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/t"), &options())
        .await
        .expect("retry");
    assert_eq!(list_keys(&e.client, BUCKET).await, ["sp/t.tsv"]);
    assert!(get_object(&e.client, BUCKET, "sp/t.tsv").await.expect("object").0 == plain);
    assert_eq!(e.s3.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_url_fails_as_url_expired_and_a_server_error_as_transient() {
    let e = env().await;
    let url = e.docs.add("x", Served::Expired);
    let err = transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/x"), &options())
        .await
        .expect_err("expired");
    assert!(matches!(err, TransferError::UrlExpired));
    assert_eq!(err.class(), ErrorClass::UrlExpired);

    // (a 503 past the document's own retries: the first answer and both resumes)
    let url = e.docs.add(
        "y",
        Served::FailThen {
            failures: 3,
            status: 503,
            body: Bytes::new(),
        },
    );
    let err = transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/y"), &options())
        .await
        .expect_err("503");
    assert!(matches!(err, TransferError::Http { status: 503 }));
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(list_keys(&e.client, BUCKET).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_with_the_wrong_key_is_an_integrity_error_and_leaves_nothing() {
    let e = env().await;
    let url = e.docs.add(
        "w",
        Served::Bytes(cbc_encrypt(&[1; 32], &IV, &gzip(&report(6 * MIB))).into()),
    );
    let err = transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/w"), &options())
        .await
        .expect_err("wrong key");
    // Decryption with the wrong key yields garbage that fails the gzip header check first, or the
    // padding at the end: both are integrity failures.
    assert_eq!(err.class(), ErrorClass::Integrity, "{err}");
    assert!(list_keys(&e.client, BUCKET).await.is_empty());
    assert_eq!(e.s3.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_lists_every_object_with_the_hash_of_what_s3_holds() {
    let e = env().await;
    let plain = report(MIB);
    let url = e
        .docs
        .add("m", Served::Bytes(cbc_encrypt(&KEY, &IV, &gzip(&plain)).into()));
    let record = transfer_document(
        &e.http,
        &e.sink,
        cbc_document(url),
        &dest("sp/run=9/orders"),
        &options(),
    )
    .await
    .expect("transfer");
    let context = BTreeMap::from([("job".to_owned(), "orders-daily".to_owned())]);
    let manifest = Manifest::new(context, vec![record]);
    manifest
        .write(&e.sink, "sp/run=9/_manifest.json")
        .await
        .expect("manifest");

    let (json, content_type) = get_object(&e.client, BUCKET, "sp/run=9/_manifest.json")
        .await
        .expect("manifest");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let read: Manifest = serde_json::from_slice(&json).expect("parses");
    assert_eq!(read.totals.objects, 1);
    assert_eq!(read.totals.bytes_out, plain.len() as u64);
    for object in read.documents.iter().flat_map(|d| &d.objects) {
        let (bytes, _) = get_object(&e.client, BUCKET, &object.key)
            .await
            .expect("listed object exists");
        assert_eq!(sha_hex(&bytes), object.sha256);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_and_keys_never_appear_in_errors_or_debug_output() {
    let e = env().await;
    let url = e.docs.add("s", Served::Expired);
    let document = cbc_document(url);
    let debug = format!("{document:?}");
    assert!(
        !debug.contains("X-Amz-Signature") && !debug.contains("/docs/"),
        "{debug}"
    );
    assert!(
        debug.contains("AES-256-CBC") && !debug.contains("90, 90"),
        "the key bytes stay hidden: {debug}"
    );

    // A refused connection: reqwest would put the URL in its message; ours must not.
    let dead = Document {
        url: DownloadUrl::parse("http://127.0.0.1:9/docs/secret?X-Amz-Signature=abc", true).expect("url"),
        ..cbc_document(e.docs.add("s2", Served::Expired))
    };
    let err = transfer_document(&e.http, &e.sink, dead, &dest("sp/s"), &options())
        .await
        .expect_err("refused");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("X-Amz-Signature") && !text.contains("secret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_s3_refuses_past_the_sdks_retries_is_sent_again_without_downloading_the_document_again() {
    // GIVEN an S3 that answers SlowDown to the second part five times in a row (the SDK's standard
    // retry makes three attempts), through a proxy in front of the local S3
    let e = env().await;
    let proxy = amzpipe_testkit::aws_faults::FaultProxy::start(e.s3.endpoint())
        .await
        .expect("proxy");
    proxy.add(amzpipe_testkit::aws_faults::Rule {
        target: None,
        path_contains: Some("partNumber=2&".into()),
        body_contains: None,
        times: 5,
        fault: amzpipe_testkit::aws_faults::Fault::s3_slow_down(),
    });
    let through_proxy = S3Sink::new(
        amzpipe_testkit::local_s3::client_for(proxy.url()).await,
        BUCKET,
        Sse::BucketDefault,
    );
    let plain = report(12 * MIB);
    let url = e
        .docs
        .add("slow", Served::Bytes(cbc_encrypt(&KEY, &IV, &gzip(&plain)).into()));
    // WHEN the document is transferred
    let record = transfer_document(
        &e.http,
        &through_proxy,
        cbc_document(url),
        &dest("sp/run=1/slow"),
        &options(),
    )
    .await
    .expect("the transfer goes through the refusals");
    // THEN the part was sent again until S3 took it, and the document stored whole, once
    assert_eq!(proxy.faulted(), 5);
    let (stored, _) = get_object(&e.client, BUCKET, "sp/run=1/slow.tsv")
        .await
        .expect("object");
    assert!(stored == plain);
    assert_eq!(record.objects[0].parts, 3);
    assert_eq!(e.s3.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_off_twice_resumes_from_where_it_stopped_and_stores_the_document_once() {
    // GIVEN a document server that drops the connection after a quarter of the document twice, then
    // serves, honouring Range as S3 does
    let e = env().await;
    let plain = report(6 * MIB);
    let full = Bytes::from(cbc_encrypt(&KEY, &IV, &gzip(&plain)));
    let quarter = full.len() / 4;
    let url = e.docs.add(
        "cut",
        Served::CutThen {
            cuts: 2,
            sent: quarter,
            body: full.clone(),
        },
    );
    // WHEN it is transferred
    transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/cut"), &options())
        .await
        .expect("resumed");
    // THEN each open asked for the bytes after those received, and the document is stored whole
    assert_eq!(
        e.docs.ranges("cut"),
        [
            None,
            Some(format!("bytes={quarter}-")),
            Some(format!("bytes={}-", 2 * quarter))
        ]
    );
    assert!(get_object(&e.client, BUCKET, "sp/cut.tsv").await.expect("object").0 == plain);
    assert_eq!(e.s3.open_uploads(), 0);
    // AND a server error that clears within the document's budget costs no failure either
    let url = e.docs.add(
        "flaky",
        Served::FailThen {
            failures: 2,
            status: 503,
            body: full,
        },
    );
    transfer_document(&e.http, &e.sink, cbc_document(url), &dest("sp/flaky"), &options())
        .await
        .expect("after two 503s");
    assert!(get_object(&e.client, BUCKET, "sp/flaky.tsv").await.expect("object").0 == plain);
}
