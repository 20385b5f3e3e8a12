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

pub struct Spill {
    file: File,
    /// Bytes written.
    len: u64,
    /// A write failed: its bytes may be partly there, so the file takes nothing more.
    failed: bool,
    /// Tests: writes past this many bytes fail.
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
        #[cfg(test)]
        let full = self.len + bytes.len() as u64 > self.capacity;
        #[cfg(not(test))]
        let full = false;
        if full || self.file.write_all(bytes).is_err() {
            self.failed = true;
            return None;
        }
        let at = self.len;
        self.len += bytes.len() as u64;
        Some(Spilled { at, len })
    }

    pub fn get(&self, s: Spilled) -> Option<Vec<u8>> {
        let mut bytes = vec![0; s.len as usize];
        self.read(s.at, &mut bytes).then_some(bytes)
    }

    /// Whether [`Spill::put`] may still succeed: no write failed yet.
    pub fn takes_more(&self) -> bool {
        !self.failed
    }

    /// Makes the file full (for tests): the next write fails as on a full disk.
    #[cfg(test)]
    pub fn fill(&mut self) {
        self.capacity = self.len;
    }

    /// Fills `into` with the bytes at offset `at`.
    pub fn read(&self, at: u64, into: &mut [u8]) -> bool {
        self.file.read_exact_at(into, at).is_ok()
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
