//! The container `torch.save` writes: a zip of STORED (uncompressed) entries under one top folder
//! named after the file (`mesorch-98/data.pkl`, `mesorch-98/data/0`, ...; `archive/` only when the
//! file was saved under that name). ZIP64 records are read for files over 4 GiB.
//!
//! Our own reader (central directory, ZIP64 extra fields, stored entries only) is about a hundred
//! lines, reads entries on demand from any `Read + Seek` (so a 1 GB checkpoint is never held in
//! memory, and the optimizer's storages are never read), checks every offset and size against
//! the file length, and checks the CRC-32 of every entry it reads against the central directory
//! (a flipped byte in a weight is an error, as in Python's zipfile).

use std::io::{Read, Seek, SeekFrom};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ZipEntry {
    pub name: String,
    /// Offset of the local file header.
    pub header_offset: u64,
    pub size: u64,
    pub method: u16,
    pub flags: u16,
    /// CRC-32 of the entry's data, from the central directory.
    pub crc32: u32,
}

pub struct ZipReader<R: Read + Seek> {
    inner: R,
    len: u64,
    pub entries: Vec<ZipEntry>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("zip: {msg}"))
}

/// Most entries a checkpoint may list (each costs a few dozen bytes of directory).
const MAX_ENTRIES: u64 = 1 << 22;

impl<R: Read + Seek> ZipReader<R> {
    pub fn new(mut inner: R) -> Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        // End of central directory: 22 bytes plus a comment of up to 65535 bytes.
        let tail_len = len.min(22 + 65535);
        let tail = read_at(&mut inner, len - tail_len, tail_len as usize)?;
        let Some(eocd) = (0..tail.len().saturating_sub(21)).rev().find(|&i| le32(&tail, i) == 0x0605_4b50) else {
            return Err(bad("no end-of-central-directory record (not a zip file, or truncated)"));
        };
        let eocd_pos = len - tail_len + eocd as u64;
        let e = &tail[eocd..];
        let mut count = le16(e, 10) as u64;
        let mut cd_size = le32(e, 12) as u64;
        let mut cd_off = le32(e, 16) as u64;
        if count == 0xffff || cd_size == 0xffff_ffff || cd_off == 0xffff_ffff {
            // ZIP64: locator right before the EOCD points at the ZIP64 EOCD record.
            if eocd_pos < 20 {
                return Err(bad("ZIP64 locator missing"));
            }
            let loc = read_at(&mut inner, eocd_pos - 20, 20)?;
            if le32(&loc, 0) != 0x0706_4b50 {
                return Err(bad("ZIP64 locator missing"));
            }
            let rec_off = le64(&loc, 8);
            if rec_off.checked_add(56).is_none_or(|end| end > eocd_pos) {
                return Err(bad(format!("ZIP64 end record offset {rec_off} out of range")));
            }
            let rec = read_at(&mut inner, rec_off, 56)?;
            if le32(&rec, 0) != 0x0606_4b50 {
                return Err(bad("bad ZIP64 end record signature"));
            }
            count = le64(&rec, 32);
            cd_size = le64(&rec, 40);
            cd_off = le64(&rec, 48);
        }
        if cd_off.checked_add(cd_size).is_none_or(|end| end > len) {
            return Err(bad(format!(
                "central directory ({cd_size} bytes at {cd_off}) lies outside the {len}-byte file"
            )));
        }
        if count > MAX_ENTRIES || count.saturating_mul(46) > cd_size {
            return Err(bad(format!("{count} entries do not fit a {cd_size}-byte central directory")));
        }
        let cd = read_at(&mut inner, cd_off, cd_size as usize)?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut p = 0usize;
        for i in 0..count {
            if p + 46 > cd.len() || le32(&cd, p) != 0x0201_4b50 {
                return Err(bad(format!("central directory entry {i} is malformed")));
            }
            let flags = le16(&cd, p + 8);
            let method = le16(&cd, p + 10);
            let crc32 = le32(&cd, p + 16);
            let mut csize = le32(&cd, p + 20) as u64;
            let mut size = le32(&cd, p + 24) as u64;
            let nlen = le16(&cd, p + 28) as usize;
            let xlen = le16(&cd, p + 30) as usize;
            let clen = le16(&cd, p + 32) as usize;
            let mut header_offset = le32(&cd, p + 42) as u64;
            let end = p + 46 + nlen + xlen + clen;
            if end > cd.len() {
                return Err(bad(format!("central directory entry {i} runs past the directory")));
            }
            let name = String::from_utf8_lossy(&cd[p + 46..p + 46 + nlen]).into_owned();
            // ZIP64 extra field: present values replace the 0xffffffff placeholders, in order.
            let mut x = &cd[p + 46 + nlen..p + 46 + nlen + xlen];
            while x.len() >= 4 {
                let id = le16(x, 0);
                let n = (le16(x, 2) as usize).min(x.len() - 4);
                let body = &x[4..4 + n];
                if id == 0x0001 {
                    let mut q = 0;
                    for field in [&mut size, &mut csize, &mut header_offset] {
                        if *field == 0xffff_ffff && q + 8 <= body.len() {
                            *field = le64(body, q);
                            q += 8;
                        }
                    }
                }
                x = &x[4 + n..];
            }
            if method == 0 && csize != size {
                return Err(bad(format!("entry '{name}': stored sizes differ ({csize} vs {size})")));
            }
            entries.push(ZipEntry { name, header_offset, size: csize, method, flags, crc32 });
            p = end;
        }
        Ok(ZipReader { inner, len, entries })
    }

    pub fn find(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Offset of an entry's data and its size, checked against the file.
    fn data_range(&mut self, e: &ZipEntry) -> Result<(u64, u64)> {
        if e.method != 0 {
            return Err(bad(format!(
                "entry '{}' is compressed (method {}); torch.save writes stored entries only",
                e.name, e.method
            )));
        }
        if e.flags & 1 != 0 {
            return Err(bad(format!("entry '{}' is encrypted", e.name)));
        }
        if e.header_offset.checked_add(30).is_none_or(|end| end > self.len) {
            return Err(bad(format!("entry '{}' header offset {} out of range", e.name, e.header_offset)));
        }
        let h = read_at(&mut self.inner, e.header_offset, 30)?;
        if le32(&h, 0) != 0x0403_4b50 {
            return Err(bad(format!("entry '{}' has no local header at {}", e.name, e.header_offset)));
        }
        let start = e.header_offset + 30 + le16(&h, 26) as u64 + le16(&h, 28) as u64;
        if start.checked_add(e.size).is_none_or(|end| end > self.len) {
            return Err(bad(format!(
                "entry '{}' ({} bytes at {start}) runs past the end of the {}-byte file",
                e.name, e.size, self.len
            )));
        }
        Ok((start, e.size))
    }

    /// Read a whole entry, refusing entries larger than `max` bytes and entries whose CRC-32
    /// differs from the directory's.
    pub fn read(&mut self, name: &str, max: u64) -> Result<Vec<u8>> {
        let e = self.find(name).cloned().ok_or_else(|| bad(format!("no entry '{name}'")))?;
        let (start, size) = self.data_range(&e)?;
        if size > max {
            return Err(bad(format!("entry '{name}' is {size} bytes, more than the {max} allowed")));
        }
        let data = read_at(&mut self.inner, start, size as usize)?;
        let crc = crc32fast::hash(&data);
        if crc != e.crc32 {
            return Err(bad(format!(
                "entry '{name}' is corrupt: its CRC-32 is {crc:08x}, the directory says {:08x}",
                e.crc32
            )));
        }
        Ok(data)
    }

    /// Length of the whole file.
    pub fn file_len(&self) -> u64 {
        self.len
    }
}

fn read_at<R: Read + Seek>(r: &mut R, off: u64, n: usize) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(off))?;
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// A `torch.save` archive: the zip plus the folder its entries live under.
pub struct TorchArchive<R: Read + Seek> {
    pub zip: ZipReader<R>,
    /// E.g. `mesorch-98/`.
    pub prefix: String,
}

/// Largest `data.pkl` we accept (real checkpoints with optimizer state: a few MB).
pub const MAX_PICKLE_BYTES: u64 = 1 << 30;

impl<R: Read + Seek> TorchArchive<R> {
    pub fn new(inner: R) -> Result<Self> {
        let zip = ZipReader::new(inner)?;
        let pkl: Vec<&ZipEntry> =
            zip.entries.iter().filter(|e| e.name.ends_with("/data.pkl") && e.name.matches('/').count() == 1).collect();
        let prefix = match pkl.as_slice() {
            [one] => one.name[..one.name.len() - "data.pkl".len()].to_string(),
            [] if zip.find("data.pkl").is_some() => String::new(),
            [] => return Err(bad("no '<folder>/data.pkl' entry: not a torch.save archive")),
            many => {
                return Err(bad(format!(
                    "several data.pkl entries: {}",
                    many.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let mut a = TorchArchive { zip, prefix };
        let bo = format!("{}byteorder", a.prefix);
        if a.zip.find(&bo).is_some() {
            let b = a.zip.read(&bo, 16)?;
            if b != b"little" {
                return Err(bad(format!("byteorder '{}' is not supported", String::from_utf8_lossy(&b))));
            }
        }
        Ok(a)
    }
    pub fn pickle(&mut self) -> Result<Vec<u8>> {
        let name = format!("{}data.pkl", self.prefix);
        self.zip.read(&name, MAX_PICKLE_BYTES)
    }
    /// Raw bytes of storage `key` (`<prefix>data/<key>`), at most `max` bytes.
    pub fn storage(&mut self, key: &str, max: u64) -> Result<Vec<u8>> {
        let name = format!("{}data/{key}", self.prefix);
        self.zip.read(&name, max)
    }
    pub fn storage_len(&self, key: &str) -> Option<u64> {
        self.zip.find(&format!("{}data/{key}", self.prefix)).map(|e| e.size)
    }
}
