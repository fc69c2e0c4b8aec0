//! Deterministic documents shaped like Amazon's, produced as streams.

use std::io::{self, Read, Write};

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncryptMut, KeyIvInit};

/// The header of the generated SP-API flat-file report (GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL).
pub const SP_API_ORDERS_HEADER: &str = "amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\tfulfillment-channel\tsales-channel\tsku\tasin\titem-status\tquantity\tcurrency\titem-price\titem-tax\tshipping-price\tship-city\tship-state\tship-postal-code\tship-country\n";

const CITIES: [(&str, &str, &str); 8] = [
    ("SEATTLE", "WA", "98109"),
    ("AUSTIN", "TX", "78701"),
    ("BROOKLYN", "NY", "11201"),
    ("DENVER", "CO", "80202"),
    ("MIAMI", "FL", "33101"),
    ("CHICAGO", "IL", "60601"),
    ("PORTLAND", "OR", "97201"),
    ("BOSTON", "MA", "02108"),
];
const STATUSES: [&str; 4] = ["Shipped", "Pending", "Shipped", "Cancelled"];

/// A deterministic SP-API-style orders report of exactly `size` bytes, generated as it is read, of
/// whole rows (the last padded to fit). The same seed and size always give the same bytes.
pub struct SpApiOrdersReport {
    /// The days the orders' purchase dates fall on: the first, and how many.
    first_day: chrono::NaiveDate,
    days: u64,
    rng: fastrand::Rng,
    remaining: u64,
    row: u64,
    line: Vec<u8>,
    pos: usize,
}

impl SpApiOrdersReport {
    /// A report of `size` bytes (the last row is cut to fit).
    pub fn new(size: u64, seed: u64) -> Self {
        Self {
            first_day: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
            days: 28,
            rng: fastrand::Rng::with_seed(seed),
            remaining: size,
            row: 0,
            line: SP_API_ORDERS_HEADER.as_bytes().to_vec(),
            pos: 0,
        }
    }

    /// The same report with its orders' purchase dates on `days` days from `first_day` (at least
    /// one), as Amazon's report by order date holds the orders of its window only; by default the
    /// first 28 days of November 2026.
    #[must_use]
    pub fn on_days(mut self, first_day: chrono::NaiveDate, days: u32) -> Self {
        self.first_day = first_day;
        self.days = u64::from(days.max(1));
        self
    }

    fn next_line(&mut self) {
        let r = &mut self.rng;
        let n = self.row;
        let (city, state, zip) = CITIES[r.usize(..CITIES.len())];
        let day = self.first_day + chrono::Days::new(n % self.days);
        let price = r.u32(500..50_000);
        self.line.clear();
        let _ = writeln!(
            self.line,
            "{:03}-{:07}-{:07}\t{}\t{day}T{:02}:{:02}:{:02}+00:00\t{day}T23:59:59+00:00\t{}\t{}\tAmazon.com\tSKU-{:05}\tB0{:08X}\tUnshipped\t{}\tUSD\t{}.{:02}\t{}.{:02}\t{}.99\t{city}\t{state}\t{zip}\tUS",
            r.u32(100..999),
            r.u32(0..9_999_999),
            n % 9_999_999,
            if r.bool() { format!("MO-{n}") } else { String::new() },
            r.u32(0..24),
            r.u32(0..60),
            r.u32(0..60),
            STATUSES[r.usize(..STATUSES.len())],
            if r.u8(..) < 200 { "Amazon" } else { "Merchant" },
            r.u32(0..20_000),
            r.u32(0..0x00FF_FFFF),
            r.u32(1..4),
            price / 100,
            price % 100,
            price / 1000,
            price % 100,
            r.u32(0..15),
        );
        self.row += 1;
        self.pos = 0;
    }
}

impl Read for SpApiOrdersReport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < buf.len() && self.remaining > 0 {
            if self.pos == self.line.len() {
                self.next_line();
                // Whole rows only, as a report from Amazon ends: when too little would be left for
                // another row, this one takes the rest, its last field padded with blanks, so that
                // the report still has exactly its size (a size below one row cuts it).
                let line = self.line.len() as u64;
                if line <= self.remaining && self.remaining - line < 2 * line {
                    let pad = usize::try_from(self.remaining - line).unwrap_or(0);
                    let end = self.line.len() - 1;
                    self.line.splice(end..end, std::iter::repeat_n(b' ', pad));
                }
            }
            let n = (self.line.len() - self.pos)
                .min(buf.len() - written)
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            buf[written..written + n].copy_from_slice(&self.line[self.pos..self.pos + n]);
            self.pos += n;
            written += n;
            self.remaining -= n as u64;
        }
        Ok(written)
    }
}

/// Encrypts what is written to it with AES-256-CBC and PKCS#7 padding, like Amazon's retired
/// 2020-09-04 report documents. Call [`CbcEncryptWriter::finish`] to write the final padded block.
pub struct CbcEncryptWriter<W: Write> {
    inner: W,
    cipher: cbc::Encryptor<Aes256>,
    pending: Vec<u8>,
}

impl<W: Write> CbcEncryptWriter<W> {
    /// Encrypts into `inner` with a 32-byte key and 16-byte IV.
    pub fn new(inner: W, key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            inner,
            cipher: cbc::Encryptor::new(key.into(), iv.into()),
            pending: Vec::with_capacity(64 * 1024),
        }
    }

    fn flush_blocks(&mut self, all: bool) -> io::Result<()> {
        let whole = self.pending.len() / 16 * 16;
        let take = if all { self.pending.len() } else { whole };
        for block in self.pending[..take].chunks_exact_mut(16) {
            self.cipher.encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        self.inner.write_all(&self.pending[..take])?;
        self.pending.drain(..take);
        Ok(())
    }

    /// Pads, encrypts the last block and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let pad = 16 - self.pending.len() % 16;
        self.pending.extend(std::iter::repeat_n(pad as u8, pad));
        self.flush_blocks(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for CbcEncryptWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= 64 * 1024 {
            self.flush_blocks(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// gzip (level 6) of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Gzip of `size` bytes of a TSV header followed by blank lines: a document that inflates ~1,000:1
/// and whose rows, none, a line-by-line reader would never show.
pub fn gzip_blank_lines(header: &[u8], size: u64) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = enc.write_all(header);
    let chunk = vec![b'\n'; 1 << 20];
    let mut left = size.saturating_sub(header.len() as u64);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let _ = enc.write_all(&chunk[..n]);
        left -= n as u64;
    }
    enc.finish().unwrap_or_default()
}

/// Gzip of a JSON array of `size` bytes that is all whitespace but its brackets: a valid document that
/// inflates ~1,000:1 and that a JSON-to-lines conversion turns into nothing (a bomb its output alone
/// would never show).
pub fn gzip_blank_json_array(size: u64) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = enc.write_all(b"[");
    let chunk = vec![b' '; 1 << 20];
    let mut left = size.saturating_sub(2);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let _ = enc.write_all(&chunk[..n]);
        left -= n as u64;
    }
    let _ = enc.write_all(b"]");
    enc.finish().unwrap_or_default()
}

/// AES-256-CBC/PKCS#7 of `data`.
pub fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut w = CbcEncryptWriter::new(Vec::new(), key, iv);
    let _ = w.write_all(data);
    w.finish().unwrap_or_default()
}

/// AES-256-GCM of `data` with the 16-byte tag appended.
pub fn gcm_encrypt(key: &[u8; 32], nonce: &[u8; 12], data: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit};
    aes_gcm::Aes256Gcm::new(key.into())
        .encrypt(aes_gcm::Nonce::from_slice(nonce), data)
        .unwrap_or_default()
}
