//! A forward-only ZIP reader for archives that arrive as a stream.
//!
//! Slate delivers ZIP files of CSV through pre-signed URLs. Reading the central directory would need
//! the whole archive first (on disk or in memory), which the transfer never allows, so this reader
//! walks the local file headers instead and streams each entry's data as it arrives.
//!
//! Why not a crate: `zip` (9.x) refuses entries that use a data descriptor when reading a stream, and
//! `async_zip` reads them but discards the descriptor, so it cannot verify their CRC. This reader
//! supports both layouts, zip64 sizes, and verifies every entry's CRC-32 and sizes.
//!
//! Supported: methods 0 (stored, sizes in the local header) and 8 (deflate, sizes in the local header
//! or in a data descriptor, with or without the descriptor signature). Refused with
//! [`DecodeError::CorruptZip`]: encrypted entries, other methods, and stored entries with a data
//! descriptor (their end cannot be found without the central directory).

use std::io::{self, BufRead, Read};

use flate2::{Decompress, FlushDecompress, Status};

use super::error::DecodeError;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIR_SIG: u32 = 0x0605_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
const ZIP64_EXTRA_ID: u16 = 0x0001;

/// What the local header says about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The entry name exactly as stored (decoded as UTF-8, lossily if the archive is not UTF-8).
    pub name: String,
    /// True for directory entries (names ending in `/`), which carry no data.
    pub is_dir: bool,
}

enum Method {
    Stored { remaining: u64 },
    Deflate(Box<Decompress>),
}

struct Current {
    method: Method,
    descriptor: bool,
    zip64: bool,
    crc: u32,
    compressed_size: u64,
    uncompressed_size: u64,
    hasher: crc32fast::Hasher,
    consumed: u64,
    produced: u64,
}

/// Reads the entries of a ZIP archive from a forward-only byte stream.
pub struct ZipStream<R> {
    inner: R,
    current: Option<Current>,
    done: bool,
}

fn corrupt(msg: impl Into<String>) -> DecodeError {
    DecodeError::CorruptZip(msg.into())
}

fn io_corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::other(corrupt(msg))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_exact_or_truncated<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> io::Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::other(DecodeError::Truncated(what))
        } else {
            e
        }
    })
}

impl<R: BufRead> ZipStream<R> {
    /// Wraps a buffered reader positioned at the start of the archive.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            current: None,
            done: false,
        }
    }

    /// Gives back the underlying reader, e.g. to drain the central directory.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Moves to the next entry, skipping whatever is left of the current one. Returns `None` once
    /// the central directory is reached.
    pub fn next_entry(&mut self) -> io::Result<Option<EntryInfo>> {
        if self.current.is_some() {
            io::copy(&mut EntryReader(self), &mut io::sink())?;
        }
        if self.done {
            return Ok(None);
        }
        let mut sig = [0u8; 4];
        read_exact_or_truncated(
            &mut self.inner,
            &mut sig,
            "the archive ended before its central directory",
        )?;
        match u32::from_le_bytes(sig) {
            LOCAL_HEADER_SIG => {}
            CENTRAL_HEADER_SIG | END_OF_CENTRAL_DIR_SIG | ZIP64_END_SIG => {
                self.done = true;
                return Ok(None);
            }
            _ => return Err(io_corrupt("expected a local file header")),
        }
        let mut h = [0u8; 26];
        read_exact_or_truncated(&mut self.inner, &mut h, "the archive ended inside a local header")?;
        let flags = u16_at(&h, 2);
        let method = u16_at(&h, 4);
        let crc = u32_at(&h, 10);
        let mut compressed_size = u64::from(u32_at(&h, 14));
        let mut uncompressed_size = u64::from(u32_at(&h, 18));
        let name_len = usize::from(u16_at(&h, 22));
        let extra_len = usize::from(u16_at(&h, 24));
        let mut name = vec![0u8; name_len];
        read_exact_or_truncated(&mut self.inner, &mut name, "the archive ended inside an entry name")?;
        let mut extra = vec![0u8; extra_len];
        read_exact_or_truncated(&mut self.inner, &mut extra, "the archive ended inside an extra field")?;

        let zip64 = parse_zip64(&extra, &mut uncompressed_size, &mut compressed_size)?;
        if flags & FLAG_ENCRYPTED != 0 {
            return Err(io_corrupt("encrypted zip entries are not supported"));
        }
        let descriptor = flags & FLAG_DATA_DESCRIPTOR != 0;
        let method = match method {
            0 if descriptor => {
                return Err(io_corrupt(
                    "a stored entry with a data descriptor cannot be read from a stream",
                ));
            }
            0 => Method::Stored {
                remaining: compressed_size,
            },
            8 => Method::Deflate(Box::new(Decompress::new(false))),
            other => return Err(io_corrupt(format!("compression method {other} is not supported"))),
        };
        let name = if flags & FLAG_UTF8 != 0 {
            String::from_utf8(name).map_err(|_| io_corrupt("an entry name is not valid UTF-8"))?
        } else {
            String::from_utf8_lossy(&name).into_owned()
        };
        self.current = Some(Current {
            method,
            descriptor,
            zip64,
            crc,
            compressed_size,
            uncompressed_size,
            hasher: crc32fast::Hasher::new(),
            consumed: 0,
            produced: 0,
        });
        Ok(Some(EntryInfo {
            is_dir: name.ends_with('/'),
            name,
        }))
    }

    /// Reads data of the current entry; `Ok(0)` at its end, after its CRC and sizes have been
    /// verified. Reading with no current entry returns `Ok(0)`.
    pub fn read_entry(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(0);
        };
        if out.is_empty() {
            return Ok(0);
        }
        let (n, ended) = match &mut cur.method {
            Method::Stored { remaining } => {
                if *remaining == 0 {
                    (0, true)
                } else {
                    let want = out.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut out[..want])?;
                    if n == 0 {
                        return Err(io::Error::other(DecodeError::Truncated(
                            "the archive ended inside an entry",
                        )));
                    }
                    *remaining -= n as u64;
                    cur.consumed += n as u64;
                    (n, false)
                }
            }
            Method::Deflate(d) => loop {
                let input = self.inner.fill_buf()?;
                let input_len = input.len();
                let (in_before, out_before) = (d.total_in(), d.total_out());
                let status = d
                    .decompress(input, out, FlushDecompress::None)
                    .map_err(|e| io_corrupt(format!("entry data: {e}")))?;
                let used = usize::try_from(d.total_in() - in_before).unwrap_or(input_len);
                let made = usize::try_from(d.total_out() - out_before).unwrap_or(0);
                self.inner.consume(used);
                cur.consumed += used as u64;
                let ended = status == Status::StreamEnd;
                if made > 0 || ended {
                    break (made, ended);
                }
                if input_len == 0 {
                    return Err(io::Error::other(DecodeError::Truncated(
                        "the archive ended inside an entry",
                    )));
                }
            },
        };
        cur.hasher.update(&out[..n]);
        cur.produced += n as u64;
        if ended {
            self.finish_entry()?;
        }
        Ok(n)
    }

    fn finish_entry(&mut self) -> io::Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let actual_crc = cur.hasher.finalize();
        let (crc, csize, usize_) = if cur.descriptor {
            self.read_descriptor(cur.zip64, actual_crc)?
        } else {
            (cur.crc, cur.compressed_size, cur.uncompressed_size)
        };
        let size_mask = if cur.descriptor && !cur.zip64 {
            u64::from(u32::MAX)
        } else {
            u64::MAX
        };
        if crc != actual_crc {
            return Err(io_corrupt("an entry fails its CRC-32 check"));
        }
        if csize != cur.consumed & size_mask || usize_ != cur.produced & size_mask {
            return Err(io_corrupt("an entry's sizes do not match its data"));
        }
        Ok(())
    }

    /// Reads a data descriptor: optional signature, CRC-32, then compressed and uncompressed sizes
    /// (8 bytes each for zip64 entries, else 4).
    fn read_descriptor(&mut self, zip64: bool, actual_crc: u32) -> io::Result<(u32, u64, u64)> {
        let mut first = [0u8; 4];
        read_exact_or_truncated(
            &mut self.inner,
            &mut first,
            "the archive ended inside a data descriptor",
        )?;
        let mut crc = u32::from_le_bytes(first);
        // The signature is optional; a CRC equal to the signature value is told apart by the data.
        if crc == DATA_DESCRIPTOR_SIG && actual_crc != DATA_DESCRIPTOR_SIG {
            read_exact_or_truncated(
                &mut self.inner,
                &mut first,
                "the archive ended inside a data descriptor",
            )?;
            crc = u32::from_le_bytes(first);
        }
        let width = if zip64 { 8 } else { 4 };
        let mut sizes = [0u8; 16];
        read_exact_or_truncated(
            &mut self.inner,
            &mut sizes[..2 * width],
            "the archive ended inside a data descriptor",
        )?;
        let (c, u) = if zip64 {
            (u64_at(&sizes, 0), u64_at(&sizes, 8))
        } else {
            (u64::from(u32_at(&sizes, 0)), u64::from(u32_at(&sizes, 4)))
        };
        Ok((crc, c, u))
    }
}

/// Applies a zip64 extended-information extra field to the local header's sizes. Returns whether
/// the entry is zip64 (which widens its data-descriptor sizes to 8 bytes).
fn parse_zip64(extra: &[u8], uncompressed: &mut u64, compressed: &mut u64) -> io::Result<bool> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at);
        let len = usize::from(u16_at(extra, at + 2));
        let body = extra
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| io_corrupt("an extra field runs past its header"))?;
        if id == ZIP64_EXTRA_ID {
            // In a local header the field holds the original then the compressed size.
            if body.len() >= 16 {
                *uncompressed = u64_at(body, 0);
                *compressed = u64_at(body, 8);
            } else if body.len() >= 8 && *uncompressed == u64::from(u32::MAX) {
                *uncompressed = u64_at(body, 0);
            }
            return Ok(true);
        }
        at += 4 + len;
    }
    Ok(false)
}

/// Adapts the current entry of a [`ZipStream`] to [`Read`].
pub struct EntryReader<'a, R>(pub &'a mut ZipStream<R>);

impl<R: BufRead> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_entry(buf)
    }
}
