//! The synchronous transform: decryption + decompression + unzip cut into parts, with stats.

use std::io::{Cursor, Write};

use amzpipe::domain::document::ColumnKind;
use amzpipe::domain::document::{DEFAULT_MAX_EXPANSION_RATIO, EXPANSION_CHECK_FLOOR, MAX_ZIP_ENTRIES};
use amzpipe::domain::source::DayColumn;
use amzpipe::transfer::transform::{ObjectStart, ObjectStats, StoredAs, part_size_for};
use amzpipe::transfer::{
    AesKey, Compression, ContentFormat, DecodeError, Encryption, GcmTag, NullOutput, OutputMode, PartOutput,
    TransferError, TransformLimits, TransformSpec, run_transform,
};
use bytes::Bytes;
use flate2::Compression as Level;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

const MIB: usize = 1024 * 1024;

/// Collects everything the transform emits.
#[derive(Default)]
struct Collect {
    objects: Vec<(ObjectStart, Vec<Bytes>, Option<ObjectStats>)>,
}

impl Collect {
    fn content(&self, i: usize) -> Vec<u8> {
        self.objects[i].1.concat()
    }
    fn stats(&self, i: usize) -> &ObjectStats {
        self.objects[i].2.as_ref().expect("ended")
    }
}

impl PartOutput for Collect {
    fn begin(&mut self, start: ObjectStart) -> Result<(), TransferError> {
        self.objects.push((start, Vec::new(), None));
        Ok(())
    }
    fn part(&mut self, data: Bytes) -> Result<(), TransferError> {
        assert!(!data.is_empty(), "parts are never empty");
        self.objects.last_mut().expect("begun").1.push(data);
        Ok(())
    }
    fn end(&mut self, stats: ObjectStats) -> Result<(), TransferError> {
        self.objects.last_mut().expect("begun").2 = Some(stats);
        Ok(())
    }
}

fn limits() -> TransformLimits {
    TransformLimits {
        part_size: 5 * MIB,
        max_output_bytes: 1 << 40,
        max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
    }
}

fn spec(compression: Compression, format: ContentFormat) -> TransformSpec {
    TransformSpec {
        encryption: Encryption::None,
        compression,
        format,
        output: OutputMode::Decompress,
        column_kinds: Default::default(),
        column_order: None,
        split_by_day: None,
    }
}

fn split(format: ContentFormat, column: &str, kind: ColumnKind) -> TransformSpec {
    TransformSpec {
        split_by_day: Some(DayColumn {
            name: column.into(),
            kind,
        }),
        ..spec(Compression::Gzip, format)
    }
}

/// The day of each object and its lines, in the order emitted.
fn days_of(out: &Collect) -> Vec<(String, Vec<String>)> {
    (0..out.objects.len())
        .map(|i| {
            let day = out.objects[i].0.day.map(|d| d.to_string()).unwrap_or_default();
            let text = String::from_utf8(out.content(i)).expect("text");
            (day, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

#[test]
fn a_tsv_split_by_day_is_an_object_per_day_each_with_the_header_and_only_that_days_rows() {
    let text = "id\tpurchase-date\tqty\n1\t2026-11-21T10:00:00+00:00\t1\n2\t2026-11-22T10:00:00+00:00\t2\n3\t2026-11-21T23:00:00-02:00\t3\n";
    let spec = split(ContentFormat::Tsv, "purchase-date", ColumnKind::Timestamp);
    let out = run(&gzip(text.as_bytes()), spec, &limits()).expect("split");
    assert_eq!(
        days_of(&out),
        [
            (
                "2026-11-21".to_owned(),
                vec![
                    "id\tpurchase-date\tqty".to_owned(),
                    "1\t2026-11-21T10:00:00+00:00\t1".to_owned()
                ]
            ),
            (
                "2026-11-22".to_owned(),
                vec![
                    "id\tpurchase-date\tqty".to_owned(),
                    "2\t2026-11-22T10:00:00+00:00\t2".to_owned(),
                    "3\t2026-11-21T23:00:00-02:00\t3".to_owned(),
                ]
            ),
        ],
        "23:00 at -02:00 is 01:00 UTC the next day"
    );
    assert_eq!(out.stats(0).rows, Some(1));
    assert_eq!(out.stats(1).rows, Some(2));
    assert_eq!(
        out.stats(1).columns.as_deref(),
        Some(&["id".to_owned(), "purchase-date".to_owned(), "qty".to_owned()][..])
    );
}

#[test]
fn an_ads_json_array_split_by_day_becomes_json_lines_per_day() {
    let text =
        r#"[{"date":"2026-11-20","clicks":1},{"date":"2026-11-21","clicks":2},{"date":"2026-11-20","clicks":3}]"#;
    let spec = split(ContentFormat::JsonArray, "date", ColumnKind::Date);
    let out = run(&gzip(text.as_bytes()), spec, &limits()).expect("split");
    let days = days_of(&out);
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].0, "2026-11-20");
    assert_eq!(days[0].1.len(), 2, "{days:?}");
    assert_eq!(days[1].1, [r#"{"date":"2026-11-21","clicks":2}"#]);
    assert_eq!(out.objects[0].0.stored_as, StoredAs::Content(ContentFormat::JsonLines));
    assert_eq!((out.stats(0).rows, out.stats(1).rows), (Some(2), Some(1)));
}

#[test]
fn days_interleaved_beyond_the_split_budget_are_written_in_several_objects_each_of_one_day_and_no_row_lost() {
    // Two days alternating, 12 MiB of rows: more than the split budget holds.
    let mut text = b"id\tdate\tpad\n".to_vec();
    let pad = "x".repeat(200);
    let rows = 12 * MIB / 220;
    for i in 0..rows {
        let day = if i % 2 == 0 { "2026-11-20" } else { "2026-11-21" };
        text.extend_from_slice(format!("{i:08}\t{day}\t{pad}\n").as_bytes());
    }
    let spec = split(ContentFormat::Tsv, "date", ColumnKind::Date);
    let out = run(&gzip(&text), spec, &limits()).expect("split");
    assert!(
        out.objects.len() > 2,
        "the budget wrote days out early: {} objects",
        out.objects.len()
    );
    let mut ids = Vec::new();
    for (day, lines) in days_of(&out) {
        assert_eq!(lines[0], "id\tdate\tpad", "every object starts with the header");
        for line in &lines[1..] {
            assert_eq!(
                line.split('\t').nth(1),
                Some(day.as_str()),
                "an object holds its day's rows only"
            );
            ids.push(line[..8].to_owned());
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rows, "every row stored once");
    let files: Vec<u32> = out.objects.iter().map(|(start, _, _)| start.file).collect();
    assert_eq!(
        files,
        (0..files.len() as u32).collect::<Vec<_>>(),
        "objects are numbered in turn"
    );
}

#[test]
fn a_row_that_holds_no_day_fails_the_document_as_an_integrity_failure() {
    let text = "id\tdate\n1\t2026-11-20\n2\tN/A\n";
    let spec = split(ContentFormat::Tsv, "date", ColumnKind::Date);
    let error = run(&gzip(text.as_bytes()), spec, &limits()).err().expect("refused");
    assert!(error.to_string().contains("row 2"), "{error}");
    assert_eq!(error.class(), amzpipe::transfer::ErrorClass::Integrity, "{error}");
}

#[test]
fn a_report_split_by_day_without_its_day_column_fails_rather_than_landing_whole_among_day_objects() {
    let text = "id\tsku\n1\tA\n";
    let spec = split(ContentFormat::Tsv, "purchase-date", ColumnKind::Timestamp);
    let error = run(&gzip(text.as_bytes()), spec, &limits()).err().expect("refused");
    assert!(error.to_string().contains("no `purchase-date` column"), "{error}");
    assert_eq!(error.class(), amzpipe::transfer::ErrorClass::Integrity);
}

#[test]
fn blank_lines_held_back_by_the_split_are_still_bounded_by_the_expansion_ratio() {
    // A header and 72 MiB of blank lines: no row is ever held or emitted.
    let mut text = b"id\tdate\n".to_vec();
    text.resize(72 << 20, b'\n');
    let spec = split(ContentFormat::Tsv, "date", ColumnKind::Date);
    let error = run(&gzip(&text), spec, &limits()).err().expect("a bomb");
    assert!(error.to_string().contains(":1"), "the ratio is named: {error}");
    assert_eq!(error.class(), amzpipe::transfer::ErrorClass::Integrity);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Level::new(6));
    enc.write_all(data).expect("write");
    enc.finish().expect("finish")
}

fn tsv(rows: usize) -> Vec<u8> {
    let mut out = b"order-id\tsku\tquantity\n".to_vec();
    for i in 0..rows {
        out.extend_from_slice(format!("111-{i:07}\tSKU-{}\t{}\n", i % 97, i % 5).as_bytes());
    }
    out
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn run(input: &[u8], spec: TransformSpec, limits: &TransformLimits) -> Result<Collect, TransferError> {
    let mut out = Collect::default();
    run_transform(input, spec, limits, &mut out).map(|_| out)
}

#[test]
fn gzip_document_is_decompressed_into_parts_with_hash_and_row_count() {
    let plain = tsv(600_000); // ~18 MiB: four parts of 5 MiB
    let out = run(&gzip(&plain), spec(Compression::Gzip, ContentFormat::Tsv), &limits()).expect("ok");
    assert_eq!(out.objects.len(), 1);
    assert_eq!(out.content(0), plain);
    let parts = &out.objects[0].1;
    assert_eq!(parts.len(), plain.len().div_ceil(5 * MIB));
    assert!(parts[..parts.len() - 1].iter().all(|p| p.len() == 5 * MIB));
    let stats = out.stats(0);
    assert_eq!(stats.rows, Some(600_000));
    assert_eq!(stats.bytes, plain.len() as u64);
    assert_eq!(stats.sha256, sha_hex(&plain));
    assert_eq!(out.objects[0].0.stored_as, StoredAs::Content(ContentFormat::Tsv));
}

#[test]
fn concatenated_gzip_members_are_all_decompressed() {
    let (a, b) = (tsv(10), b"111-9999999\tSKU-X\t1\n".to_vec());
    let mut doc = gzip(&a);
    doc.extend(gzip(&b));
    let out = run(&doc, spec(Compression::Gzip, ContentFormat::Tsv), &limits()).expect("ok");
    assert_eq!(out.content(0), [a, b].concat());
    assert_eq!(out.stats(0).rows, Some(11));
}

#[test]
fn csv_rows_ignore_newlines_inside_quotes_and_count_a_last_line_without_newline() {
    let csv = b"id,comment\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,last";
    let out = run(csv, spec(Compression::None, ContentFormat::Csv), &limits()).expect("ok");
    assert_eq!(out.stats(0).rows, Some(3));
}

#[test]
fn json_arrays_count_their_elements_json_lines_every_line_and_other_json_has_no_count() {
    // An Ads report: one array of row objects; brackets and commas inside strings are not rows.
    let rows = |doc: &[u8]| {
        run(doc, spec(Compression::None, ContentFormat::Json), &limits())
            .expect("ok")
            .stats(0)
            .rows
    };
    assert_eq!(rows(b"[{\"a\":1},\n{\"a\":2}]"), Some(2));
    assert_eq!(
        rows(br#"[{"name":"a, [b]","n":{"x":[1,2]}},{"name":"\"]"}, {"v":3}]"#),
        Some(3)
    );
    assert_eq!(rows(b" [ ] "), Some(0));
    assert_eq!(rows(b"[]"), Some(0));
    assert_eq!(rows(br#"{"reportSpecification":{},"salesAndTrafficByDate":[]}"#), None);
    let out = run(
        b"{\"a\":1}\n{\"a\":2}\n",
        spec(Compression::None, ContentFormat::JsonLines),
        &limits(),
    )
    .expect("ok");
    assert_eq!(out.stats(0).rows, Some(2));
}

#[test]
fn empty_document_yields_one_empty_object_with_no_parts() {
    let out = run(&gzip(b""), spec(Compression::Gzip, ContentFormat::Tsv), &limits()).expect("ok");
    assert_eq!(out.objects.len(), 1);
    assert!(out.objects[0].1.is_empty());
    assert_eq!(out.stats(0).rows, Some(0));
    assert_eq!(out.stats(0).sha256, sha_hex(b""));
}

#[test]
fn keep_compressed_stores_the_decrypted_gzip_stream_byte_for_byte() {
    let doc = gzip(&tsv(1000));
    let mut s = spec(Compression::Gzip, ContentFormat::Tsv);
    s.output = OutputMode::KeepCompressed;
    let out = run(&doc, s, &limits()).expect("ok");
    assert_eq!(out.content(0), doc);
    assert_eq!(out.objects[0].0.stored_as, StoredAs::Gzip(ContentFormat::Tsv));
    assert_eq!(out.stats(0).rows, None);
    let header = String::from_utf8(tsv(1000)).expect("text");
    let first: Vec<String> = header
        .lines()
        .next()
        .expect("a header")
        .split('\t')
        .map(str::to_owned)
        .collect();
    assert_eq!(
        out.stats(0).columns,
        Some(first),
        "its columns, read on the inflated side"
    );
}

#[test]
fn output_above_the_ceiling_is_refused_as_too_large() {
    let bomb = gzip(&vec![b'a'; 20 * MIB]);
    let small = TransformLimits {
        part_size: 5 * MIB,
        max_output_bytes: 8 * MIB as u64,
        max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
    };
    let err = run(&bomb, spec(Compression::Gzip, ContentFormat::Tsv), &small).err();
    assert!(matches!(
        err,
        Some(TransferError::Decode(DecodeError::TooLarge { limit })) if limit == 8 * MIB as u64
    ));
}

#[test]
fn corrupt_and_truncated_gzip_are_told_apart() {
    let doc = gzip(&tsv(50_000));
    let truncated = &doc[..doc.len() / 2];
    let err = run(truncated, spec(Compression::Gzip, ContentFormat::Tsv), &limits()).err();
    assert!(
        matches!(err, Some(TransferError::Decode(DecodeError::Truncated(_)))),
        "{err:?}"
    );

    let mut corrupt = doc.clone();
    let at = corrupt.len() - 6; // inside the CRC-32 trailer
    corrupt[at] ^= 0xff;
    let err = run(&corrupt, spec(Compression::Gzip, ContentFormat::Tsv), &limits()).err();
    assert!(
        matches!(err, Some(TransferError::Decode(DecodeError::CorruptGzip(_)))),
        "{err:?}"
    );
}

#[test]
fn part_size_doubles_every_thousand_parts_and_stays_within_s3_limits() {
    let base = 8 * MIB;
    assert_eq!(part_size_for(base, 1), base);
    assert_eq!(part_size_for(base, 1000), base);
    assert_eq!(part_size_for(base, 1001), 2 * base);
    assert_eq!(part_size_for(base, 10_000), 512 * base);
    let capacity: u128 = (1..=10_000u32).map(|n| part_size_for(base, n) as u128).sum();
    assert!(
        capacity >= 5u128 << 40,
        "10,000 parts must reach S3's 5 TiB object limit"
    );
    assert_eq!(part_size_for(5 << 30, 5000), 5 << 30);
}

#[test]
fn a_part_size_below_the_s3_minimum_is_refused() {
    let bad = TransformLimits {
        part_size: MIB,
        max_output_bytes: 1 << 30,
        max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
    };
    let err = run(b"x", spec(Compression::None, ContentFormat::Tsv), &bad).err();
    assert!(matches!(err, Some(TransferError::Invalid(_))));
}

// ---- ZIP ----

fn zip_archive(entries: &[(&str, &[u8])], streamed: bool, zip64: bool) -> Vec<u8> {
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(zip64);
    if streamed {
        // A non-seekable writer: sizes and CRC go into data descriptors after each entry.
        let mut w = zip::ZipWriter::new_stream(Vec::new());
        for (name, data) in entries {
            w.start_file(*name, options).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    } else {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, options).expect("dir");
            } else {
                w.start_file(*name, options).expect("start");
                w.write_all(data).expect("write");
            }
        }
        w.finish().expect("finish").into_inner()
    }
}

#[test]
fn zip_entries_become_one_object_each_in_every_layout() {
    let big = tsv(300_000);
    let entries: [(&str, &[u8]); 3] = [
        ("playback/2026-11-22.csv", b"a,b\n1,2\n"),
        ("dir/", b""),
        ("subscriptions.csv", &big),
    ];
    for (streamed, zip64) in [(false, false), (true, false), (false, true), (true, true)] {
        let archive = zip_archive(&entries, streamed, zip64);
        let out = run(&archive, spec(Compression::Zip, ContentFormat::Csv), &limits())
            .unwrap_or_else(|e| panic!("streamed {streamed}, zip64 {zip64}: {e}"));
        let names: Vec<_> = out.objects.iter().map(|o| o.0.entry_name.clone()).collect();
        assert_eq!(
            names,
            [
                Some("playback/2026-11-22.csv".to_owned()),
                Some("subscriptions.csv".to_owned())
            ],
            "directories are skipped"
        );
        assert_eq!(out.content(0), b"a,b\n1,2\n");
        assert_eq!(out.content(1), big);
        assert_eq!(out.stats(1).rows, Some(300_000));
    }
}

#[test]
fn stored_zip_entries_are_read_too() {
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("plain.csv", options).expect("start");
    w.write_all(b"x\n1\n").expect("write");
    let archive = w.finish().expect("finish").into_inner();
    let out = run(&archive, spec(Compression::Zip, ContentFormat::Csv), &limits()).expect("ok");
    assert_eq!(out.content(0), b"x\n1\n");
}

#[test]
fn a_tampered_zip_entry_fails_its_crc_check() {
    for streamed in [false, true] {
        let data = vec![b'z'; 4096];
        let mut archive = zip_archive(&[("a.csv", &data)], streamed, false);
        // Flip the stored CRC (local header offset 14 when not streamed; descriptor otherwise).
        let at = if streamed {
            find(&archive, &0x0807_4b50u32.to_le_bytes()).expect("descriptor") + 4
        } else {
            14
        };
        archive[at] ^= 0x55;
        let err = run(&archive, spec(Compression::Zip, ContentFormat::Csv), &limits()).err();
        assert!(
            matches!(err, Some(TransferError::Decode(DecodeError::CorruptZip(_)))),
            "streamed {streamed}: {err:?}"
        );
    }
}

#[test]
fn a_truncated_zip_is_reported_as_truncated() {
    let archive = zip_archive(&[("a.csv", &tsv(20_000))], true, false);
    let err = run(
        &archive[..archive.len() / 2],
        spec(Compression::Zip, ContentFormat::Csv),
        &limits(),
    )
    .err();
    assert!(
        matches!(err, Some(TransferError::Decode(DecodeError::Truncated(_)))),
        "{err:?}"
    );
}

#[test]
fn a_zip_bomb_is_refused_as_too_large() {
    let archive = zip_archive(&[("bomb.csv", &vec![0u8; 30 * MIB])], false, false);
    let small = TransformLimits {
        part_size: 5 * MIB,
        max_output_bytes: 10 * MIB as u64,
        max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
    };
    let err = run(&archive, spec(Compression::Zip, ContentFormat::Csv), &small).err();
    assert!(matches!(err, Some(TransferError::Decode(DecodeError::TooLarge { .. }))));
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---- encryption in the chain ----

fn gcm_seal(key: &[u8; 32], nonce: &[u8; 12], plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit};
    aes_gcm::Aes256Gcm::new_from_slice(key)
        .expect("key")
        .encrypt(aes_gcm::Nonce::from_slice(nonce), plain)
        .expect("seal")
}

fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
}

#[test]
fn cbc_encrypted_gzip_document_decrypts_then_decompresses() {
    let plain = tsv(100_000);
    let doc = cbc_encrypt(&[5; 32], &[6; 16], &gzip(&plain));
    let s = TransformSpec {
        encryption: Encryption::AesCbc {
            key: AesKey::from_bytes(&[5; 32]).expect("key"),
            iv: vec![6; 16],
        },
        ..spec(Compression::Gzip, ContentFormat::Tsv)
    };
    let mut out = Collect::default();
    let summary = run_transform(&doc[..], s, &limits(), &mut out).expect("ok");
    assert_eq!(out.content(0), plain);
    assert_eq!(summary.bytes_in, doc.len() as u64);
    assert_eq!(summary.bytes_out, plain.len() as u64);
}

#[test]
fn gcm_tag_mismatch_fails_the_transform_after_parts_were_emitted() {
    let plain = tsv(400_000);
    let mut doc = gcm_seal(&[9; 32], &[1; 12], &gzip(&plain));
    let last = doc.len() - 1;
    doc[last] ^= 1; // the tag
    let s = TransformSpec {
        encryption: Encryption::AesGcm {
            key: AesKey::from_bytes(&[9; 32]).expect("key"),
            nonce: vec![1; 12],
            aad: Vec::new(),
            tag: GcmTag::Appended,
        },
        ..spec(Compression::Gzip, ContentFormat::Tsv)
    };
    let mut out = Collect::default();
    let err = run_transform(&doc[..], s, &limits(), &mut out).err();
    assert!(
        matches!(err, Some(TransferError::Decode(DecodeError::TagMismatch))),
        "{err:?}"
    );
    assert!(
        !out.objects[0].1.is_empty(),
        "plaintext flowed before the tag was checked: callers must not publish before Ok"
    );
}

// ---- decompression bombs ----

/// `size` zeros, gzipped while generated (about 1,000:1, like a real gzip bomb).
fn zeros_gzipped(size: usize) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Level::fast());
    let chunk = vec![0u8; MIB];
    for _ in 0..size / MIB {
        encoder.write_all(&chunk).expect("write");
    }
    encoder.finish().expect("gzip")
}

/// 72 MiB of zeros in about 70 KB: made once for the tests that need it.
fn bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| zeros_gzipped(72 * MIB))
}

#[test]
fn a_gzip_bomb_is_refused_by_its_expansion_ratio_long_before_the_size_ceiling() {
    // The 64 GiB ceiling would let it through.
    let err = run(bomb(), spec(Compression::Gzip, ContentFormat::Tsv), &limits()).err();
    let Some(TransferError::Decode(DecodeError::Expansion {
        bytes_in,
        bytes_out,
        ratio,
    })) = err
    else {
        panic!("expected the expansion bound, got {err:?}");
    };
    assert_eq!(ratio, DEFAULT_MAX_EXPANSION_RATIO);
    assert!(
        bytes_out > EXPANSION_CHECK_FLOOR && bytes_out / bytes_in >= 100,
        "{bytes_in} → {bytes_out}"
    );
    let message = TransferError::Decode(DecodeError::Expansion {
        bytes_in,
        bytes_out,
        ratio,
    })
    .to_string();
    assert!(
        message.contains("100:1") && message.contains(&bytes_in.to_string()),
        "{message}"
    );
}

#[test]
fn a_gzip_bomb_kept_compressed_is_refused_too_because_it_is_inflated_on_the_side() {
    let mut keep = spec(Compression::Gzip, ContentFormat::Tsv);
    keep.output = OutputMode::KeepCompressed;
    let err = run(bomb(), keep, &limits()).err();
    assert!(
        matches!(err, Some(TransferError::Decode(DecodeError::Expansion { .. }))),
        "{err:?}"
    );
    // A kept stream is verified as well: a flipped byte fails its CRC.
    let mut tampered = gzip(&tsv(2_000));
    let at = tampered.len() - 12;
    tampered[at] ^= 0x55;
    let mut keep = spec(Compression::Gzip, ContentFormat::Tsv);
    keep.output = OutputMode::KeepCompressed;
    let err = run(&tampered, keep, &limits()).err();
    assert!(
        matches!(
            err,
            Some(TransferError::Decode(
                DecodeError::CorruptGzip(_) | DecodeError::Truncated(_)
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn a_large_ratio_is_allowed_below_the_floor_and_a_job_can_raise_the_ratio() {
    let bytes_out = |input: &[u8], limits: &TransformLimits| {
        let mut out = NullOutput::default();
        run_transform(input, spec(Compression::Gzip, ContentFormat::Tsv), limits, &mut out).map(|s| s.bytes_out)
    };
    // 32 MiB of zeros: far above 100:1, but under the floor, so a small repetitive document passes.
    let small = zeros_gzipped(32 * MIB);
    assert_eq!(bytes_out(&small, &limits()).expect("under the floor"), 32 * MIB as u64);
    // A job that knows its documents compress extremely well raises the ratio.
    let generous = TransformLimits {
        max_expansion_ratio: 100_000,
        ..limits()
    };
    assert_eq!(bytes_out(bomb(), &generous).expect("allowed"), 72 * MIB as u64);
}

#[test]
fn a_zip_with_more_entries_than_allowed_is_refused() {
    let names: Vec<String> = (0..=MAX_ZIP_ENTRIES).map(|i| format!("e{i}.csv")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"a\n"[..])).collect();
    let archive = zip_archive(&entries, true, false);
    let err = run(&archive, spec(Compression::Zip, ContentFormat::Csv), &limits()).err();
    assert!(
        matches!(err, Some(TransferError::Decode(DecodeError::TooManyEntries { limit })) if limit == MAX_ZIP_ENTRIES),
        "{err:?}"
    );
}
