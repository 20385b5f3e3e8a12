//! A temporary file for what a long run must keep but seldom reads again: the JSON text of
//! connections that ended (report/store.rs) and the state of connections parked while quiet
//! (analyzer.rs). Memory then holds where each piece is, not the piece, so that it does not grow
//! with the length of the capture.
//!
//! The file is made in `$TMPDIR` (else /tmp) and deleted at once: no other process sees it, and
//! the system frees it when the run ends, however it ends. Where none can be made, or a write
//! fails (the disk is full), callers keep what they have in memory instead.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Small pieces are gathered up to this many bytes and written at once: a parked connection is a
/// kilobyte or so, and a write call for each cost more than copying it.
const GATHER: usize = 64 * 1024;

pub struct Spill {
    file: File,
    /// Bytes put: written, then gathered.
    len: u64,
    /// Bytes in the file.
    written: u64,
    /// The last pieces put, not written yet (they lie at `len - gathered.len()`). When a write
    /// fails they stay here, readable.
    gathered: Vec<u8>,
    /// A write failed: its bytes may be partly there, so the file takes nothing more.
    failed: bool,
    /// Tests: writes past this many bytes of the file fail.
    #[cfg(test)]
    capacity: u64,
}

/// Where a piece lies in its [`Spill`].
#[derive(Clone, Copy, Debug)]
pub struct Spilled {
    at: u64,
    len: u32,
}

impl Spill {
    pub fn new() -> Option<Spill> {
        static MADE: AtomicU64 = AtomicU64::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("h2keepalive-{}-{n}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .ok()?;
        std::fs::remove_file(&path).ok()?;
        Some(Spill {
            file,
            len: 0,
            written: 0,
            gathered: Vec::new(),
            failed: false,
            #[cfg(test)]
            capacity: u64::MAX,
        })
    }

    /// Appends `bytes`; `None` when the file takes no more (the caller keeps them).
    pub fn put(&mut self, bytes: &[u8]) -> Option<Spilled> {
        let len = u32::try_from(bytes.len()).ok()?;
        if self.failed {
            return None;
        }
        if self.gathered.len() + bytes.len() > GATHER {
            let gathered = std::mem::take(&mut self.gathered);
            let written = self.write(&gathered);
            self.gathered = gathered;
            if !written {
                return None;
            }
            self.gathered.clear();
        }
        if bytes.len() >= GATHER {
            if !self.write(bytes) {
                return None;
            }
        } else {
            if self.gathered.capacity() == 0 {
                self.gathered.reserve_exact(GATHER);
            }
            self.gathered.extend_from_slice(bytes);
        }
        let at = self.len;
        self.len += bytes.len() as u64;
        Some(Spilled { at, len })
    }

    /// Writes `bytes` at the end of the file; false, and no more writes, if that fails.
    fn write(&mut self, bytes: &[u8]) -> bool {
        #[cfg(test)]
        let full = self.written + bytes.len() as u64 > self.capacity;
        #[cfg(not(test))]
        let full = false;
        if full || self.file.write_all(bytes).is_err() {
            self.failed = true;
            return false;
        }
        self.written += bytes.len() as u64;
        true
    }

    pub fn get(&self, s: Spilled) -> Option<Vec<u8>> {
        let mut bytes = vec![0; s.len as usize];
        self.read(s.at, &mut bytes).then_some(bytes)
    }

    /// Whether [`Spill::put`] may still succeed: no write failed yet.
    pub fn takes_more(&self) -> bool {
        !self.failed
    }

    /// Makes the file full (for tests): the next write fails as on a full disk (what is
    /// gathered so far still fits).
    #[cfg(test)]
    pub fn fill(&mut self) {
        self.capacity = self.len;
    }

    /// Fills `into` with the bytes at offset `at`: from the file, then from those gathered.
    pub fn read(&self, at: u64, into: &mut [u8]) -> bool {
        let written = self.written;
        let in_file = written.saturating_sub(at).min(into.len() as u64) as usize;
        let (from_file, gathered) = into.split_at_mut(in_file);
        if !from_file.is_empty() && self.file.read_exact_at(from_file, at).is_err() {
            return false;
        }
        if gathered.is_empty() {
            return true;
        }
        let start = (at + in_file as u64).saturating_sub(written) as usize;
        match self.gathered.get(start..start + gathered.len()) {
            Some(bytes) => {
                gathered.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

impl Spilled {
    /// Offset of the piece in its file.
    pub fn at(self) -> u64 {
        self.at
    }
}

/// `#[serde(with = "crate::spill::as_bytes")]` for the byte buffers a parked connection carries
/// (HPACK tables): written as one run of bytes rather than as serde's usual
/// sequence of `u8`s, which costs a call per byte each way.
pub mod as_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        /// Formats without bytes of their own write them as a sequence.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element()? {
                v.push(b);
            }
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::xorshift;

    /// Pieces of every size around the gathering size, read back whole and in parts (across the
    /// line between file and memory), against a copy kept in memory.
    #[test]
    fn reads_give_what_was_put_wherever_it_is() {
        let mut next = xorshift(7);
        let mut below = |n: usize| (next() % n.max(1) as u64) as usize;
        let mut spill = Spill::new().unwrap();
        let mut all = Vec::new();
        let mut pieces = Vec::new();
        for i in 0..400 {
            let len = match i % 4 {
                0 => below(64),
                1 => below(4096),
                2 => GATHER - 8 + below(16),
                _ => below(3 * GATHER),
            };
            let bytes: Vec<u8> = (0..len).map(|_| below(256) as u8).collect();
            let at = spill.put(&bytes).unwrap();
            assert_eq!(at.at(), all.len() as u64);
            all.extend_from_slice(&bytes);
            pieces.push((at, bytes));
            let (at, bytes) = &pieces[below(pieces.len())];
            assert_eq!(spill.get(*at).as_ref(), Some(bytes));
            let start = below(all.len() + 1);
            let end = start + below(all.len() - start + 1);
            let mut part = vec![0; end - start];
            assert!(spill.read(start as u64, &mut part));
            assert!(
                part == all[start..end],
                "bytes {start}..{end} of {}",
                all.len()
            );
        }
        let mut past = [0; 2];
        assert!(!spill.read(all.len() as u64 - 1, &mut past));
    }

    /// What was put before a write failed stays readable, in the file or gathered.
    #[test]
    fn a_failed_write_keeps_what_was_put() {
        let mut spill = Spill::new().unwrap();
        let first = spill.put(&[1; 1000]).unwrap();
        spill.fill();
        let mut gathered = Vec::new();
        let mut n = 0u8;
        while let Some(at) = spill.put(&[n; 1000]) {
            gathered.push((at, n));
            n = n.wrapping_add(1);
        }
        assert!(!gathered.is_empty() && !spill.takes_more());
        assert_eq!(spill.get(first), Some(vec![1; 1000]));
        for (at, n) in gathered {
            assert_eq!(spill.get(at), Some(vec![n; 1000]));
        }
    }
}
