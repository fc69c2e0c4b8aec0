//! Known-answer tests of the streaming decryptors: NIST vectors (CAVP and SP 800-38A), the GCM
//! specification's AES-256 cases, and the SP-API documents helper's fixed inputs (§5.7 of the
//! Amazon API reference) — each fed whole and one byte at a time.

use std::io::{self, Read};

use amzpipe::transfer::crypto::{CbcDecryptReader, GcmDecryptReader};
use amzpipe::transfer::{AesKey, DecodeError, GcmTag, iv_from_base64};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A CAVP-style record: `Name = value` lines after a `Count = n` line.
#[derive(Debug, Default)]
struct Vector {
    count: String,
    fields: std::collections::HashMap<String, String>,
    fail: bool,
}

impl Vector {
    fn hex(&self, name: &str) -> Vec<u8> {
        hex::decode(self.fields.get(name).map(String::as_str).unwrap_or("")).expect("hex field")
    }
}

fn parse_rsp(name: &str) -> Vec<Vector> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut out: Vec<Vector> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line == "FAIL" {
            out.last_mut().expect("a vector").fail = true;
        } else if let Some((k, v)) = line.split_once('=') {
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            if k == "Count" {
                out.push(Vector {
                    count: v,
                    ..Vector::default()
                });
            } else {
                out.last_mut().expect("a vector").fields.insert(k, v);
            }
        }
    }
    assert!(!out.is_empty(), "{name} holds no vectors");
    out
}

/// Hands out its data one byte per read call.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

fn decode_error(err: io::Error) -> DecodeError {
    *err.into_inner()
        .expect("a typed error")
        .downcast::<DecodeError>()
        .expect("a DecodeError")
}

#[test]
fn cbc_decrypts_every_nist_vector_whole_and_byte_by_byte() {
    for v in parse_rsp("nist-aes256-cbc.rsp") {
        let key = AesKey::from_bytes(&v.hex("Key")).expect("key");
        // The vectors are unpadded whole blocks; the reader needs PKCS#7. Encrypting the vector's
        // plaintext with padding must reproduce the NIST ciphertext as its prefix (CBC chains
        // forward), and the reader must decrypt the padded form back to the plaintext.
        let (pt, ct) = (v.hex("PT"), v.hex("CT"));
        let padded_ct = encrypt_cbc_padded(&v.hex("Key"), &v.hex("IV"), &pt);
        assert_eq!(
            &padded_ct[..ct.len()],
            &ct[..],
            "count {}: reference encryption",
            v.count
        );
        for trickle in [false, true] {
            let mut out = Vec::new();
            let result = if trickle {
                CbcDecryptReader::new(Trickle(&padded_ct), &key, &v.hex("IV"))
                    .expect("reader")
                    .read_to_end(&mut out)
            } else {
                CbcDecryptReader::new(&padded_ct[..], &key, &v.hex("IV"))
                    .expect("reader")
                    .read_to_end(&mut out)
            };
            result.expect("decrypts");
            assert_eq!(out, pt, "count {} (trickle: {trickle})", v.count);
        }
    }
}

/// CBC-encrypts with PKCS#7 using the `cbc` crate's encryptor, as a reference independent of the
/// reader under test. The vectors' own ciphertext must be a prefix of the result.
fn encrypt_cbc_padded(key: &[u8], iv: &[u8], plain: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let enc = cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv).expect("key and iv");
    enc.encrypt_padded_vec_mut::<Pkcs7>(plain)
}

#[test]
fn cbc_decrypts_the_sp_api_documents_helper_vectors() {
    let key = AesKey::from_base64("sxx/wImF6BFndqSAz56O6vfiAh8iD9P297DHfFgujec=").expect("key");
    let iv = iv_from_base64("7S2tn363v0wfCfo1IX2Q1A==", Some(16)).expect("iv");
    for (ciphertext, plain) in [
        ("PhYAp4h3yuTMPsMgWpaTzQ==", "Hello World!"),
        ("HOBP+M8MuMv0bWfy+ZXv6w==", "Hello World"),
    ] {
        let ct = BASE64.decode(ciphertext).expect("base64");
        let mut out = String::new();
        CbcDecryptReader::new(&ct[..], &key, &iv)
            .expect("reader")
            .read_to_string(&mut out)
            .expect("decrypts");
        assert_eq!(out, plain);
    }
}

#[test]
fn cbc_rejects_a_truncated_key_like_the_sp_api_helper_suite() {
    let full = BASE64
        .decode("sxx/wImF6BFndqSAz56O6vfiAh8iD9P297DHfFgujec=")
        .expect("base64");
    let err = AesKey::from_bytes(&full[2..full.len() - 1]).expect_err("short key");
    assert_eq!(
        err,
        DecodeError::KeyLength {
            expected: 32,
            actual: 29
        }
    );
}

#[test]
fn cbc_rejects_a_wrong_iv_length_and_non_base64_key_material() {
    let key = AesKey::from_bytes(&[7; 32]).expect("key");
    assert!(matches!(
        CbcDecryptReader::new(&b""[..], &key, &[0; 12]).err(),
        Some(DecodeError::IvLength {
            expected: 16,
            actual: 12
        })
    ));
    assert!(matches!(
        AesKey::from_base64("not base64!").err(),
        Some(DecodeError::KeyMaterial(_))
    ));
}

#[test]
fn cbc_with_the_wrong_key_fails_with_bad_padding() {
    let ct = BASE64.decode("PhYAp4h3yuTMPsMgWpaTzQ==").expect("base64");
    let wrong = AesKey::from_bytes(&[1; 32]).expect("key");
    let iv = iv_from_base64("7S2tn363v0wfCfo1IX2Q1A==", Some(16)).expect("iv");
    let err = CbcDecryptReader::new(&ct[..], &wrong, &iv)
        .expect("reader")
        .read_to_end(&mut Vec::new())
        .expect_err("must fail");
    assert_eq!(decode_error(err), DecodeError::BadPadding);
}

#[test]
fn cbc_reports_truncation_when_the_ciphertext_is_not_whole_blocks_or_empty() {
    let key = AesKey::from_bytes(&[7; 32]).expect("key");
    let ct = encrypt_cbc_padded(&[7; 32], &[9; 16], b"some text, longer than a block");
    for input in [&ct[..ct.len() - 5], &[][..]] {
        let err = CbcDecryptReader::new(input, &key, &[9; 16])
            .expect("reader")
            .read_to_end(&mut Vec::new())
            .expect_err("must fail");
        assert!(matches!(decode_error(err), DecodeError::Truncated(_)));
    }
}

#[test]
fn gcm_decrypts_every_vector_and_rejects_every_fail_case() {
    for v in parse_rsp("nist-aes256-gcm-decrypt.rsp") {
        let key = AesKey::from_bytes(&v.hex("Key")).expect("key");
        let (iv, aad, tag) = (v.hex("IV"), v.hex("AAD"), v.hex("Tag"));
        let mut appended = v.hex("CT");
        appended.extend_from_slice(&tag);
        let detached: [u8; 16] = tag.as_slice().try_into().expect("16-byte tag");
        let cases: [(&[u8], GcmTag, bool); 4] = [
            (&appended, GcmTag::Appended, false),
            (&appended, GcmTag::Appended, true),
            (&appended[..appended.len() - 16], GcmTag::Detached(detached), false),
            (&appended[..appended.len() - 16], GcmTag::Detached(detached), true),
        ];
        for (input, tag_mode, trickle) in cases {
            let mut out = Vec::new();
            let result = if trickle {
                GcmDecryptReader::new(Trickle(input), &key, &iv, &aad, tag_mode.clone())
                    .expect("reader")
                    .read_to_end(&mut out)
            } else {
                GcmDecryptReader::new(input, &key, &iv, &aad, tag_mode.clone())
                    .expect("reader")
                    .read_to_end(&mut out)
            };
            let label = format!("count {} ({tag_mode:?}, trickle: {trickle})", v.count);
            if v.fail {
                let err = result.expect_err(&label);
                assert_eq!(decode_error(err), DecodeError::TagMismatch, "{label}");
            } else {
                result.expect(&label);
                assert_eq!(out, v.hex("PT"), "{label}");
            }
        }
    }
}

#[test]
fn gcm_matches_the_aes_gcm_crate_on_large_random_messages() {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let key_bytes = [42u8; 32];
    let nonce = [3u8; 12];
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key_bytes).expect("key");
    let mut rng = fastrand::Rng::with_seed(7);
    for len in [0usize, 1, 15, 16, 17, 65_535, 65_536, 65_537, 1_000_003] {
        let plain: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let sealed = cipher
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: b"report-123",
                },
            )
            .expect("encrypt");
        let key = AesKey::from_bytes(&key_bytes).expect("key");
        let mut out = Vec::new();
        GcmDecryptReader::new(&sealed[..], &key, &nonce, b"report-123", GcmTag::Appended)
            .expect("reader")
            .read_to_end(&mut out)
            .expect("verifies");
        assert_eq!(out.len(), plain.len());
        assert!(out == plain, "length {len}");

        let mut tampered = sealed.clone();
        if let Some(b) = tampered.first_mut() {
            *b ^= 0x80;
        }
        let err = GcmDecryptReader::new(&tampered[..], &key, &nonce, b"report-123", GcmTag::Appended)
            .expect("reader")
            .read_to_end(&mut Vec::new())
            .expect_err("tampered");
        assert_eq!(decode_error(err), DecodeError::TagMismatch, "length {len}");
    }
}

#[test]
fn gcm_reports_truncation_when_the_appended_tag_is_incomplete() {
    let key = AesKey::from_bytes(&[1; 32]).expect("key");
    let err = GcmDecryptReader::new(&[0u8; 10][..], &key, &[0; 12], b"", GcmTag::Appended)
        .expect("reader")
        .read_to_end(&mut Vec::new())
        .expect_err("too short");
    assert!(matches!(decode_error(err), DecodeError::Truncated(_)));
}
