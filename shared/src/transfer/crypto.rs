//! Streaming decryption as [`std::io::Read`] adapters.
//!
//! - [`CbcDecryptReader`]: AES-256-CBC with PKCS#7 padding, as used by the retired SP-API Reports
//!   2020-09-04 documents (`encryptionDetails.standard = "AES"`, base64 key and IV). The last
//!   ciphertext block is always held back until end of input, because only then can it be known to
//!   be the padding block.
//! - [`GcmDecryptReader`]: AES-256-GCM composed from the AES block cipher, CTR mode and GHASH. The
//!   one-shot `aes-gcm` AEAD API needs the whole message in memory, which a multi-GB report cannot
//!   afford, so the reader decrypts as it goes and verifies the tag at end of input. **Plaintext it
//!   releases is unauthenticated until the reader has returned `Ok(0)`**: callers must not make any of
//!   it visible before then (the transfer completes its S3 uploads only after that point).
//!
//! Both readers fail with a typed [`DecodeError`] wrapped in `io::Error`, which the transfer maps to
//! its own error type.

use std::io::{self, Read};

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockDecryptMut, BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;

use super::error::DecodeError;
pub use crate::domain::document::{AES256_KEY_LEN, AesKey, GCM_TAG_LEN, GcmTag, iv_from_base64};

const BLOCK: usize = 16;
/// How much ciphertext a reader pulls from its source at a time.
const CHUNK: usize = 64 * 1024;

fn io_err(e: DecodeError) -> io::Error {
    io::Error::other(e)
}

/// Reads from `inner` until `buf` holds at least `want` bytes or the source is exhausted.
/// Returns `true` once the source reported end of input.
fn fill_from<R: Read>(inner: &mut R, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    while buf.len() < want {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let n = loop {
            match inner.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.truncate(start);
                    return Err(e);
                }
            }
        };
        buf.truncate(start + n);
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Plaintext ready to be handed out, with a read position.
#[derive(Default)]
struct Ready {
    buf: Vec<u8>,
    pos: usize,
}

impl Ready {
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn copy_to(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

/// AES-256-CBC / PKCS#7 decryption of a ciphertext stream.
///
/// Errors: [`DecodeError::Truncated`] when the ciphertext is empty or not a whole number of blocks,
/// [`DecodeError::BadPadding`] when the final block's padding is not valid PKCS#7.
pub struct CbcDecryptReader<R> {
    inner: R,
    cipher: cbc::Decryptor<Aes256>,
    /// Ciphertext read but not yet decrypted; always fewer than two blocks between calls.
    pending: Vec<u8>,
    ready: Ready,
    finished: bool,
}

impl<R: Read> CbcDecryptReader<R> {
    /// Wraps `inner`; `iv` must be 16 bytes.
    pub fn new(inner: R, key: &AesKey, iv: &[u8]) -> Result<Self, DecodeError> {
        if iv.len() != BLOCK {
            return Err(DecodeError::IvLength {
                expected: BLOCK,
                actual: iv.len(),
            });
        }
        let cipher = cbc::Decryptor::<Aes256>::new(
            GenericArray::from_slice(key.expose_bytes()),
            GenericArray::from_slice(iv),
        );
        Ok(Self {
            inner,
            cipher,
            pending: Vec::with_capacity(CHUNK + 2 * BLOCK),
            ready: Ready::default(),
            finished: false,
        })
    }

    fn refill(&mut self) -> io::Result<()> {
        let eof = fill_from(&mut self.inner, &mut self.pending, 2 * BLOCK)?;
        let whole = self.pending.len() / BLOCK * BLOCK;
        // Keep the last whole block back unless the input has ended: it may be the padding block.
        let take = if eof { whole } else { whole.saturating_sub(BLOCK) };
        if eof && self.pending.len() != whole {
            return Err(io_err(DecodeError::Truncated(
                "the ciphertext is not a whole number of AES blocks",
            )));
        }
        if eof && whole == 0 {
            return Err(io_err(DecodeError::Truncated("the ciphertext is empty")));
        }
        let mut out = std::mem::take(&mut self.ready.buf);
        out.clear();
        out.extend_from_slice(&self.pending[..take]);
        self.pending.drain(..take);
        let (blocks, _) = InOutBuf::from(&mut out[..]).into_chunks();
        self.cipher.decrypt_blocks_inout_mut(blocks);
        if eof {
            let unpadded = pkcs7_unpadded_len(&out).map_err(io_err)?;
            out.truncate(unpadded);
            self.finished = true;
        }
        self.ready = Ready { buf: out, pos: 0 };
        Ok(())
    }
}

/// Length of `plain` once its PKCS#7 padding is removed.
fn pkcs7_unpadded_len(plain: &[u8]) -> Result<usize, DecodeError> {
    let pad = usize::from(*plain.last().ok_or(DecodeError::BadPadding)?);
    if pad == 0 || pad > BLOCK || pad > plain.len() {
        return Err(DecodeError::BadPadding);
    }
    let tail = &plain[plain.len() - pad..];
    if tail.iter().any(|&b| usize::from(b) != pad) {
        return Err(DecodeError::BadPadding);
    }
    Ok(plain.len() - pad)
}

impl<R: Read> Read for CbcDecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.ready.is_empty() {
            if self.finished || out.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
        Ok(self.ready.copy_to(out))
    }
}

/// AES-256-GCM decryption of a ciphertext stream, verifying the tag at end of input.
///
/// Nonces of any non-zero length are accepted (96 bits is the normal case; other lengths are
/// derived through GHASH as in NIST SP 800-38D). Errors: [`DecodeError::TagMismatch`] when
/// authentication fails, [`DecodeError::Truncated`] when an appended tag is missing.
pub struct GcmDecryptReader<R> {
    inner: R,
    ctr: ctr::Ctr32BE<Aes256>,
    ghash: GHash,
    /// `E_K(J0)`, XORed into the GHASH result to form the tag.
    tag_mask: [u8; BLOCK],
    expected: Option<[u8; GCM_TAG_LEN]>,
    aad_len: u64,
    ct_len: u64,
    /// Ciphertext read but not yet processed (at least the tag-sized tail when the tag is appended).
    pending: Vec<u8>,
    ready: Ready,
    finished: bool,
}

impl<R: Read> GcmDecryptReader<R> {
    /// Wraps `inner`. `aad` is the additional authenticated data (usually empty).
    pub fn new(inner: R, key: &AesKey, nonce: &[u8], aad: &[u8], tag: GcmTag) -> Result<Self, DecodeError> {
        if nonce.is_empty() {
            return Err(DecodeError::IvLength {
                expected: 12,
                actual: 0,
            });
        }
        let aes = Aes256::new(GenericArray::from_slice(key.expose_bytes()));
        let mut h = GenericArray::default();
        aes.encrypt_block(&mut h);

        let j0: [u8; BLOCK] = if nonce.len() == 12 {
            let mut j0 = [0u8; BLOCK];
            j0[..12].copy_from_slice(nonce);
            j0[15] = 1;
            j0
        } else {
            let mut g = GHash::new(&h);
            g.update_padded(nonce);
            let mut lens = [0u8; BLOCK];
            lens[8..].copy_from_slice(&bit_len_u64(nonce.len() as u64).to_be_bytes());
            g.update(&[lens.into()]);
            g.finalize().into()
        };

        let mut tag_mask = GenericArray::from(j0);
        aes.encrypt_block(&mut tag_mask);

        let mut counter = j0;
        let c = u32::from_be_bytes([counter[12], counter[13], counter[14], counter[15]]).wrapping_add(1);
        counter[12..].copy_from_slice(&c.to_be_bytes());
        let ctr = ctr::Ctr32BE::<Aes256>::new(
            GenericArray::from_slice(key.expose_bytes()),
            GenericArray::from_slice(&counter),
        );

        let mut ghash = GHash::new(&h);
        ghash.update_padded(aad);

        let expected = match tag {
            GcmTag::Appended => None,
            GcmTag::Detached(t) => Some(t),
        };
        Ok(Self {
            inner,
            ctr,
            ghash,
            tag_mask: tag_mask.into(),
            expected,
            aad_len: aad.len() as u64,
            ct_len: 0,
            pending: Vec::with_capacity(CHUNK + 2 * BLOCK + GCM_TAG_LEN),
            ready: Ready::default(),
            finished: false,
        })
    }

    fn tail_reserve(&self) -> usize {
        if self.expected.is_some() { 0 } else { GCM_TAG_LEN }
    }

    fn refill(&mut self) -> io::Result<()> {
        let reserve = self.tail_reserve();
        let eof = fill_from(&mut self.inner, &mut self.pending, reserve + BLOCK)?;
        let available = self.pending.len().saturating_sub(reserve);
        if eof && self.pending.len() < reserve {
            return Err(io_err(DecodeError::Truncated(
                "the stream ended before the GCM authentication tag",
            )));
        }
        // Before end of input only whole blocks are processed, so GHASH sees aligned data.
        let take = if eof { available } else { available / BLOCK * BLOCK };
        let mut out = std::mem::take(&mut self.ready.buf);
        out.clear();
        out.extend_from_slice(&self.pending[..take]);
        self.pending.drain(..take);
        self.ghash.update_padded(&out);
        self.ct_len += take as u64;
        self.ctr.apply_keystream(&mut out);
        if eof {
            self.verify()?;
            self.finished = true;
        }
        self.ready = Ready { buf: out, pos: 0 };
        Ok(())
    }

    fn verify(&mut self) -> io::Result<()> {
        let expected: [u8; GCM_TAG_LEN] = match self.expected {
            Some(t) => t,
            None => self.pending[..GCM_TAG_LEN]
                .try_into()
                .map_err(|_| io_err(DecodeError::Truncated("the GCM tag is incomplete")))?,
        };
        let mut lens = [0u8; BLOCK];
        lens[..8].copy_from_slice(&bit_len_u64(self.aad_len).to_be_bytes());
        lens[8..].copy_from_slice(&bit_len_u64(self.ct_len).to_be_bytes());
        let mut ghash = self.ghash.clone();
        ghash.update(&[lens.into()]);
        let mut computed: [u8; BLOCK] = ghash.finalize().into();
        for (c, m) in computed.iter_mut().zip(self.tag_mask) {
            *c ^= m;
        }
        if bool::from(computed.ct_eq(&expected)) {
            Ok(())
        } else {
            Err(io_err(DecodeError::TagMismatch))
        }
    }
}

fn bit_len_u64(bytes: u64) -> u64 {
    bytes.wrapping_mul(8)
}

impl<R: Read> Read for GcmDecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.ready.is_empty() {
            if self.finished || out.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
        Ok(self.ready.copy_to(out))
    }
}
