//! NSS key log files (what `SSLKEYLOGFILE` writes; also the content of pcapng Decryption Secrets
//! Blocks): one secret per line, `LABEL <client random hex> <secret hex>`, plus the older
//! `RSA Session-ID:<hex> Master-Key:<hex>` form keyed by TLS 1.2 session id.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The key log of a run, shared by the analyzer threads; lines from a Decryption Secrets Block are
/// added while the capture is read.
pub type SharedKeys = Arc<RwLock<KeyLog>>;

/// Adds lines to a shared key log (a poisoned lock, after a panic elsewhere, is used as it is).
pub fn add_shared(keys: &SharedKeys, text: &[u8]) {
    let mut k = keys.write().unwrap_or_else(|e| e.into_inner());
    k.add(text);
    k.flush();
}

/// The secrets logged for one handshake (one client random).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// TLS 1.2 master secret.
    pub master: Option<Vec<u8>>,
    pub client_handshake: Option<Vec<u8>>,
    pub server_handshake: Option<Vec<u8>>,
    pub client_traffic0: Option<Vec<u8>>,
    pub server_traffic0: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
pub struct KeyLog {
    by_random: HashMap<[u8; 32], Secrets>,
    /// TLS 1.2 master secrets by session id.
    by_session: HashMap<Vec<u8>, Vec<u8>>,
    /// Lines understood and lines that were not (malformed, or a label this tool cannot use).
    pub lines: u64,
    pub unusable: u64,
    /// Grows with every line added, so that a connection still without keys knows to look again.
    generation: u64,
    /// A line not ended yet (a file being appended to, a DSB split mid-line).
    partial: Vec<u8>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.is_empty() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

impl KeyLog {
    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty() && self.by_session.is_empty()
    }

    /// Adds the lines of `text`; a last line without its newline waits for the rest.
    pub fn add(&mut self, text: &[u8]) {
        self.partial.extend_from_slice(text);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        for line in done.split(|&b| b == b'\n') {
            self.line(line);
        }
    }

    /// Takes a last line that had no newline.
    pub fn flush(&mut self) {
        let line = std::mem::take(&mut self.partial);
        self.line(&line);
    }

    fn line(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            self.unusable += 1;
            return;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        if self.parse(line).is_some() {
            self.lines += 1;
            self.generation += 1;
        } else {
            self.unusable += 1;
        }
    }

    fn parse(&mut self, line: &str) -> Option<()> {
        if let Some(rest) = line.strip_prefix("RSA Session-ID:") {
            let (id, master) = rest.split_once(" Master-Key:")?;
            self.by_session
                .insert(unhex(id.trim())?, unhex(master.trim())?);
            return Some(());
        }
        let mut it = line.split_ascii_whitespace();
        let (label, random, secret) = (it.next()?, it.next()?, it.next()?);
        let random: [u8; 32] = unhex(random)?.try_into().ok()?;
        let secret = unhex(secret)?;
        let s = self.by_random.entry(random).or_default();
        let slot = match label {
            "CLIENT_RANDOM" => &mut s.master,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut s.client_handshake,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut s.server_handshake,
            "CLIENT_TRAFFIC_SECRET_0" => &mut s.client_traffic0,
            "SERVER_TRAFFIC_SECRET_0" => &mut s.server_traffic0,
            // Exporter and early (0-RTT) secrets are valid lines with nothing to decrypt here.
            "EXPORTER_SECRET" | "EARLY_EXPORTER_SECRET" | "CLIENT_EARLY_TRAFFIC_SECRET" => {
                return Some(())
            }
            // Later generations (OpenSSL writes `_N` after each KeyUpdate): derived here instead.
            l if (l.starts_with("CLIENT_TRAFFIC_SECRET_")
                || l.starts_with("SERVER_TRAFFIC_SECRET_")) =>
            {
                return Some(())
            }
            _ => return None,
        };
        *slot = Some(secret);
        Some(())
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn by_random(&self, random: &[u8; 32]) -> Option<&Secrets> {
        self.by_random.get(random)
    }

    pub fn by_session(&self, id: &[u8]) -> Option<&[u8]> {
        if id.is_empty() {
            return None;
        }
        self.by_session.get(id).map(|v| v.as_slice())
    }
}

/// A key log file that may still be growing (`SSLKEYLOGFILE` of a running client): each read
/// returns what was appended since the last.
pub struct KeylogFile {
    pub path: String,
    offset: u64,
}

impl KeylogFile {
    pub fn new(path: &str) -> KeylogFile {
        KeylogFile {
            path: path.to_string(),
            offset: 0,
        }
    }

    pub fn read_new(&mut self) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        if len < self.offset {
            // Truncated and rewritten: read it again from the start.
            self.offset = 0;
        }
        if len == self.offset {
            return Ok(Vec::new());
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut out = Vec::new();
        f.take(len - self.offset).read_to_end(&mut out)?;
        self.offset += out.len() as u64;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_session_ids() {
        let mut k = KeyLog::default();
        let r = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
        k.add(format!("# comment\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {r} b3ed\nSERVER_TRAFFIC_SECRET_0 {r} a11a\r\n").as_bytes());
        k.add(b"RSA Session-ID:0a0b Master-Key:0102\nnonsense line\nCLIENT_RANDOM ab");
        assert_eq!((k.lines, k.unusable), (3, 1));
        k.add(format!("cd {r} 99\n").as_bytes());
        assert_eq!(
            k.unusable, 2,
            "the line completed by the second write is judged whole"
        );
        let mut random = [0u8; 32];
        random.copy_from_slice(&unhex(r).unwrap());
        let s = k.by_random(&random).unwrap();
        assert_eq!(s.client_handshake.as_deref(), Some(&[0xb3, 0xed][..]));
        assert_eq!(s.server_traffic0.as_deref(), Some(&[0xa1, 0x1a][..]));
        assert!(s.master.is_none());
        assert_eq!(k.by_session(&[0x0a, 0x0b]), Some(&[1u8, 2][..]));
    }
}
