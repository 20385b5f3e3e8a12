//! TLS stage, between tcp and http2: follows the record layer of both directions, reads the
//! ClientHello and ServerHello, and with the connection's secrets from a key log (`--keylog`, or
//! pcapng Decryption Secrets Blocks) decrypts application data and hands the plaintext to the
//! HTTP/2 stage exactly as cleartext bytes would be. Without keys it infers PINGs from record sizes
//! and timing ([`infer`]); the transport-level analysis needs nothing from here.
//!
//! Supported: TLS 1.3 (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, KeyUpdate) and TLS 1.2 AEAD
//! suites (ECDHE/DHE/RSA with AES-GCM or ChaCha20-Poly1305). Records may be split across segments or
//! share one; after a gap the record boundary is hunted for again.

pub mod crypto;
pub mod hello;
pub mod infer;
pub mod keylog;

use crate::capture::Ts;
use crate::http2::{Proto, Session};
use crate::tcp::{Chunk, Dir};
use crate::timeline::{Detection, Timeline, TlsInfo, TlsKeys};
use crypto::{next_secret, OpenError, RecordKeys, Suite};
use hello::{ClientHello, ServerHello};
pub use keylog::{KeyLog, SharedKeys};
use serde::{Deserialize, Serialize};

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// Largest record body allowed (RFC 8446 §5.2: 2^14 + 256 for ciphertext; TLS 1.2 allows + 2048).
const MAX_RECORD: usize = (1 << 14) + 2048;
/// Limit `max_tls_handshake_bytes`: cleartext handshake bytes kept per direction to find the hellos.
const MAX_HANDSHAKE: usize = 64 * 1024;
/// Limit `max_tls_resync_bytes`: bytes searched for a record boundary after a gap.
const MAX_RESYNC: usize = 64 * 1024;
/// Sequence numbers tried after a gap, when an unknown number of records was lost.
const RESYNC_SEQ_WINDOW: u64 = 256;
/// Consecutive records that fail to open before a direction is given up as undecryptable.
const MAX_FAILURES: u32 = 8;

/// Whether bytes at the start of a stream look like a TLS handshake record.
pub fn starts_tls(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == HANDSHAKE && bytes[1] == 0x03
}

fn plausible_header(h: &[u8]) -> bool {
    h.len() >= 5
        && (CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&h[0])
        && h[1] == 3
        && h[2] <= 4
        && (u16::from_be_bytes([h[3], h[4]]) as usize) <= MAX_RECORD
}

/// The keys of one direction.
#[derive(Default)]
struct Keys {
    current: Option<RecordKeys>,
    /// TLS 1.3: the traffic secret of `current`, for KeyUpdate.
    secret: Option<Vec<u8>>,
    /// TLS 1.3: the application keys while the handshake keys are current.
    next: Option<(RecordKeys, Vec<u8>)>,
}

#[derive(Default, Serialize, Deserialize)]
struct Side {
    /// Bytes of the record being assembled (header included), or searched for a boundary.
    buf: Vec<u8>,
    /// Bytes of the current record's body still to pass over without keeping them.
    skip: usize,
    skip_len: usize,
    skip_kind: u8,
    /// Cleartext handshake bytes, until the hello is read.
    hs: Vec<u8>,
    hello_done: bool,
    /// Records from this side are protected.
    encrypted: bool,
    #[serde(skip)]
    keys: Keys,
    /// After a gap: the record boundary and the sequence number are unknown.
    lost: bool,
    failures: u32,
    /// Protected records seen while keys were looked for (for the sequence number of late keys).
    protected_records: u64,
    records: u64,
    decrypted: u64,
    failed: u64,
    key_updates: u64,
}

#[derive(Serialize, Deserialize)]
pub struct TlsConn {
    sides: [Side; 2],
    client: Option<Dir>,
    client_hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    suite: Option<Suite>,
    keys: TlsKeys,
    /// The key log's generation when keys were last looked for.
    looked_up: Option<u64>,
    /// ALPN from a decrypted EncryptedExtensions (TLS 1.3).
    alpn_decrypted: Option<String>,
    inner: Session,
    infer: infer::Inference,
    /// The last application-data records of each side read without keys (a few): time,
    /// plaintext length, silence before it.
    last_opaque: [std::collections::VecDeque<(Ts, usize, i64)>; 2],
    /// When each side sent its close_notify, as far as visible.
    close_notify: [Option<Ts>; 2],
    decrypting: [bool; 2],
}

impl TlsConn {
    /// `from_start`: the connection's first bytes are in the capture.
    pub fn new(from_start: bool) -> TlsConn {
        TlsConn {
            sides: Default::default(),
            client: None,
            client_hello: None,
            server_hello: None,
            suite: None,
            keys: TlsKeys::NoHandshake,
            looked_up: None,
            alpn_decrypted: None,
            inner: Session::new(from_start, false),
            infer: infer::Inference::default(),
            last_opaque: Default::default(),
            close_notify: [None, None],
            decrypting: [false; 2],
        }
    }

    /// Whether its state can be written down and read back (see analyzer.rs, parking): not
    /// once it holds keys, whose cipher state is not written.
    pub fn parkable(&self) -> bool {
        self.sides
            .iter()
            .all(|s| s.keys.current.is_none() && s.keys.next.is_none() && s.keys.secret.is_none())
    }

    pub fn wants_bytes(&self) -> bool {
        true
    }

    pub fn chunk(&mut self, dir: Dir, chunk: Chunk<'_>, tl: &mut Timeline, keylog: &SharedKeys) {
        match chunk {
            Chunk::Data { ts, bytes } => self.data(dir, ts, bytes, tl, keylog),
            Chunk::Gap { ts, len } => {
                let s = &mut self.sides[dir.index()];
                s.buf.clear();
                s.skip = 0;
                s.lost = true;
                if self.decrypting[dir.index()] {
                    self.inner.chunk(dir, Chunk::Gap { ts, len }, tl);
                }
            }
        }
    }

    fn data(&mut self, dir: Dir, ts: Ts, mut bytes: &[u8], tl: &mut Timeline, keylog: &SharedKeys) {
        let i = dir.index();
        while !bytes.is_empty() {
            let s = &mut self.sides[i];
            if s.skip > 0 {
                let n = s.skip.min(bytes.len());
                s.skip -= n;
                bytes = &bytes[n..];
                if s.skip == 0 {
                    let (len, kind) = (s.skip_len, s.skip_kind);
                    self.opaque_record(dir, ts, kind, len, tl);
                }
                continue;
            }
            if s.lost {
                let room = MAX_RESYNC.saturating_sub(s.buf.len());
                let n = room.min(bytes.len());
                s.buf.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                self.resync(dir, ts, tl, keylog);
                let s = &mut self.sides[i];
                if s.lost && s.buf.len() >= MAX_RESYNC {
                    // Nothing like a record in this much: keep only a possible header's start.
                    let keep = s.buf.split_off(s.buf.len() - 4);
                    s.buf = keep;
                }
                continue;
            }
            // Complete the header, then decide whether the body is needed.
            if s.buf.len() < 5 {
                let n = (5 - s.buf.len()).min(bytes.len());
                s.buf.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if s.buf.len() < 5 {
                    break;
                }
                if !plausible_header(&s.buf) {
                    tl.anomaly(
                        ts,
                        dir,
                        "TLS record header not valid: record boundary lost".into(),
                    );
                    s.lost = true;
                    continue;
                }
                let body = u16::from_be_bytes([s.buf[3], s.buf[4]]) as usize;
                let kind = s.buf[0];
                if s.encrypted {
                    self.find_keys(keylog);
                }
                if !self.needs_body(dir, kind) {
                    let s = &mut self.sides[i];
                    s.buf.clear();
                    s.skip = body;
                    s.skip_len = body;
                    s.skip_kind = kind;
                    if body == 0 {
                        self.opaque_record(dir, ts, kind, 0, tl);
                    }
                    continue;
                }
            }
            let s = &mut self.sides[i];
            let body = u16::from_be_bytes([s.buf[3], s.buf[4]]) as usize;
            let need = 5 + body - s.buf.len();
            let n = need.min(bytes.len());
            s.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if s.buf.len() == 5 + body {
                let mut record = std::mem::take(&mut s.buf);
                self.record(dir, ts, &mut record, tl);
                record.clear();
                let s = &mut self.sides[i];
                if s.buf.is_empty() && !s.lost {
                    // Reuse the allocation for the next record.
                    s.buf = record;
                }
            }
        }
    }

    /// Whether a record's body must be read: cleartext hellos, and protected records that can be
    /// decrypted.
    fn needs_body(&self, dir: Dir, kind: u8) -> bool {
        let s = &self.sides[dir.index()];
        if kind == CHANGE_CIPHER_SPEC {
            return false;
        }
        if !s.encrypted {
            return kind == HANDSHAKE && !s.hello_done || kind == ALERT;
        }
        s.keys.current.is_some() || s.keys.next.is_some()
    }

    /// A record whose body was passed over: only its length counts.
    fn opaque_record(&mut self, dir: Dir, ts: Ts, kind: u8, len: usize, tl: &mut Timeline) {
        let tls13 = self
            .server_hello
            .as_ref()
            .is_some_and(|s| s.version == 0x0304);
        let s = &mut self.sides[dir.index()];
        s.records += 1;
        if kind == CHANGE_CIPHER_SPEC {
            // TLS 1.2: this side's next record is protected (in TLS 1.3 a CCS is only for
            // middleboxes).
            if !tls13 && !s.encrypted {
                s.encrypted = true;
                s.protected_records = 0;
            }
            return;
        }
        if s.encrypted {
            s.protected_records += 1;
            if let Some(suite) = self.suite {
                self.protected_without_keys(
                    dir,
                    ts,
                    kind,
                    len.saturating_sub(suite.overhead()),
                    tl,
                );
            }
        }
    }

    fn record(&mut self, dir: Dir, ts: Ts, record: &mut [u8], tl: &mut Timeline) {
        let i = dir.index();
        let (header, body) = record.split_at_mut(5);
        let header: [u8; 5] = [header[0], header[1], header[2], header[3], header[4]];
        self.sides[i].records += 1;
        let kind = header[0];
        if !self.sides[i].encrypted {
            match kind {
                HANDSHAKE => self.cleartext_handshake(dir, ts, body, tl),
                ALERT => self.alert(dir, ts, body, tl),
                _ => {}
            }
            return;
        }
        self.sides[i].protected_records += 1;
        if self.sides[i].keys.current.is_none() && self.sides[i].keys.next.is_none() {
            if let Some(suite) = self.suite {
                let plain = body.len().saturating_sub(suite.overhead());
                self.protected_without_keys(dir, ts, kind, plain, tl);
            }
            return;
        }
        match self.open(dir, header, body) {
            Some(range) => {
                let s = &mut self.sides[i];
                s.decrypted += 1;
                s.failures = 0;
                self.plaintext(dir, ts, kind, range, body, tl);
            }
            None => {
                let s = &mut self.sides[i];
                s.failed += 1;
                s.failures += 1;
                if s.failures == MAX_FAILURES {
                    tl.anomaly(
                        ts,
                        dir,
                        format!("{MAX_FAILURES} TLS records in a row failed to decrypt: wrong keys or damaged capture; the rest of this direction is read from record sizes"),
                    );
                    s.keys = Keys::default();
                }
                if let Some(suite) = self.suite {
                    let plain = body.len().saturating_sub(suite.overhead());
                    self.protected_without_keys(dir, ts, kind, plain, tl);
                }
            }
        }
    }

    /// A protected record that could not be read: what its type and size tell.
    fn protected_without_keys(
        &mut self,
        dir: Dir,
        ts: Ts,
        kind: u8,
        plain: usize,
        tl: &mut Timeline,
    ) {
        let tls13 = self.suite.is_some_and(|s| s.tls13);
        // TLS 1.2 shows an alert's type; TLS 1.3 hides it, but a 2-byte plaintext can only be an
        // alert (HTTP/2 frames have at least 9 bytes, handshake messages 4).
        if kind == ALERT || (tls13 && kind == APPLICATION_DATA && plain == 2) {
            self.infer.closing(dir, tl);
            self.close_notify[dir.index()].get_or_insert(ts);
            tl.push(ts, dir, crate::timeline::EventKind::TlsClose);
            return;
        }
        if kind == APPLICATION_DATA {
            let recent = &mut self.last_opaque[dir.index()];
            if recent.len() == 8 {
                recent.pop_front();
            }
            recent.push_back((ts, plain, tl.quiet_ns()));
            self.infer.record(dir, ts, plain, tl);
        }
    }

    /// Opens a protected record with the direction's keys, trying what may have changed: the
    /// application keys after the handshake's, a KeyUpdate whose record was lost.
    fn open(
        &mut self,
        dir: Dir,
        header: [u8; 5],
        body: &mut [u8],
    ) -> Option<std::ops::Range<usize>> {
        let suite = self.suite?;
        let failing = self.sides[dir.index()].failures > 0;
        let k = &mut self.sides[dir.index()].keys;
        if let Some(cur) = &mut k.current {
            match cur.open_at(cur.seq, header, body) {
                Ok(r) => {
                    cur.seq += 1;
                    return Some(r);
                }
                Err(OpenError::TooShort) => return None,
                Err(OpenError::Auth) => {}
            }
        }
        if let Some((next, _)) = &k.next {
            if let Ok(r) = next.open_at(0, header, body) {
                if let Some((mut next, secret)) = k.next.take() {
                    next.seq = 1;
                    k.current = Some(next);
                    k.secret = Some(secret);
                }
                return Some(r);
            }
        }
        // A KeyUpdate that was not seen (lost, or in a record that failed).
        if suite.tls13 {
            if let Some(secret) = &k.secret {
                if let Some(newer) = next_secret(suite.hash, secret) {
                    if let Some(mut keys) = RecordKeys::tls13(suite, &newer) {
                        if let Ok(r) = keys.open_at(0, header, body) {
                            keys.seq = 1;
                            k.current = Some(keys);
                            k.secret = Some(newer);
                            return Some(r);
                        }
                    }
                }
            }
        }
        // Records lost in a gap: the sequence number moved on by an unknown amount, perhaps past
        // the end of the handshake keys.
        if failing {
            if let Some((next, _)) = &k.next {
                // A successful open decrypts in place: it is done once.
                let found = (1..RESYNC_SEQ_WINDOW)
                    .find_map(|q| next.open_at(q, header, body).ok().map(|r| (q, r)));
                if let (Some((seq, r)), Some((mut next, secret))) = (found, k.next.take()) {
                    next.seq = seq + 1;
                    k.current = Some(next);
                    k.secret = Some(secret);
                    return Some(r);
                }
            }
        }
        // The sequence number stays: a record of another epoch (handshake records when only the
        // application secrets are known) does not move it, and a damaged one is caught up with by
        // the window above at the next record.
        if let Some(cur) = &mut k.current {
            if failing {
                for seq in cur.seq + 1..cur.seq + RESYNC_SEQ_WINDOW {
                    if let Ok(r) = cur.open_at(seq, header, body) {
                        cur.seq = seq + 1;
                        return Some(r);
                    }
                }
            }
        }
        None
    }

    fn plaintext(
        &mut self,
        dir: Dir,
        ts: Ts,
        outer: u8,
        range: std::ops::Range<usize>,
        body: &[u8],
        tl: &mut Timeline,
    ) {
        let mut plain = &body[range];
        let mut kind = outer;
        if self.suite.is_some_and(|s| s.tls13) {
            // TLSInnerPlaintext: content, content type, zero padding (RFC 8446 §5.2).
            let Some(end) = plain.iter().rposition(|&b| b != 0) else {
                tl.anomaly(ts, dir, "TLS 1.3 record without a content type".into());
                return;
            };
            kind = plain[end];
            plain = &plain[..end];
        }
        match kind {
            APPLICATION_DATA => {
                self.decrypting[dir.index()] = true;
                if !plain.is_empty() {
                    self.inner.chunk(dir, Chunk::Data { ts, bytes: plain }, tl);
                }
            }
            HANDSHAKE => self.protected_handshake(dir, ts, plain, tl),
            ALERT => self.alert(dir, ts, plain, tl),
            _ => {}
        }
    }

    fn cleartext_handshake(&mut self, dir: Dir, ts: Ts, body: &[u8], tl: &mut Timeline) {
        let i = dir.index();
        let s = &mut self.sides[i];
        if s.hello_done {
            return;
        }
        if s.hs.len() + body.len() > MAX_HANDSHAKE {
            s.hello_done = true;
            s.hs = Vec::new();
            tl.push(
                ts,
                dir,
                crate::timeline::EventKind::Limit {
                    name: "max_tls_handshake_bytes".into(),
                    detail: format!("no hello in the first {MAX_HANDSHAKE} handshake bytes"),
                },
            );
            return;
        }
        s.hs.extend_from_slice(body);
        loop {
            let s = &mut self.sides[i];
            if s.hs.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes([0, s.hs[1], s.hs[2], s.hs[3]]) as usize;
            if s.hs.len() < 4 + len {
                break;
            }
            let msg: Vec<u8> = s.hs.drain(..4 + len).collect();
            match msg[0] {
                1 => {
                    if let Some(ch) = hello::client_hello(&msg[4..]) {
                        self.client.get_or_insert(dir);
                        tl.client_dir.get_or_insert(dir);
                        // After a HelloRetryRequest the second ClientHello keeps the first random.
                        if self.client_hello.is_none() {
                            self.client_hello = Some(ch);
                            self.keys = TlsKeys::Missing;
                        }
                    }
                }
                2 => {
                    if let Some(sh) = hello::server_hello(&msg[4..]) {
                        if !sh.retry_request {
                            self.server_hello(dir, sh);
                        }
                    }
                }
                _ => {}
            }
            if self.server_hello.is_some() && self.client == Some(dir.reverse()) {
                // The server's later handshake messages are not needed.
                let s = &mut self.sides[i];
                s.hello_done = true;
                s.hs = Vec::new();
                break;
            }
        }
    }

    fn server_hello(&mut self, dir: Dir, sh: ServerHello) {
        self.client.get_or_insert(dir.reverse());
        self.suite = Suite::by_id(sh.suite);
        let tls13 = sh.version == 0x0304;
        if self.suite.is_none_or(|s| s.tls13 != tls13) {
            self.suite = None;
            self.keys = TlsKeys::Unsupported;
        }
        if tls13 {
            // Everything after the ServerHello is protected, both ways (CCS aside).
            for s in &mut self.sides {
                s.encrypted = true;
                s.protected_records = 0;
            }
        }
        self.server_hello = Some(sh);
    }

    /// Looks for the connection's secrets when the hellos are known and the key log has changed.
    /// Called when a protected record's header is read, before the record is counted.
    fn find_keys(&mut self, keylog: &SharedKeys) {
        if matches!(self.keys, TlsKeys::Found | TlsKeys::Unsupported) {
            return;
        }
        let keylog = &*keylog.read().unwrap_or_else(|e| e.into_inner());
        let (Some(ch), Some(sh), Some(suite), Some(client)) = (
            &self.client_hello,
            &self.server_hello,
            self.suite,
            self.client,
        ) else {
            return;
        };
        if self.looked_up == Some(keylog.generation()) {
            return;
        }
        self.looked_up = Some(keylog.generation());
        let (c, s) = (client.index(), client.reverse().index());
        if suite.tls13 {
            let Some(secrets) = keylog.by_random(&ch.random) else {
                return;
            };
            let mut found = false;
            for (side, hs, app) in [
                (c, &secrets.client_handshake, &secrets.client_traffic0),
                (s, &secrets.server_handshake, &secrets.server_traffic0),
            ] {
                // Keys that arrive after the handshake records went by start at the application
                // secret, at a sequence number found by trial.
                let late = self.sides[side].protected_records > 0;
                let keys = &mut self.sides[side].keys;
                if let (Some(hs), false) = (hs, late) {
                    keys.current = RecordKeys::tls13(suite, hs);
                    keys.secret = Some(hs.clone());
                    found |= keys.current.is_some();
                }
                if let Some(app) = app {
                    if let Some(k) = RecordKeys::tls13(suite, app) {
                        found = true;
                        if keys.current.is_none() {
                            keys.current = Some(k);
                            keys.secret = Some(app.clone());
                        } else {
                            keys.next = Some((k, app.clone()));
                        }
                    }
                }
            }
            if found {
                self.keys = TlsKeys::Found;
            }
        } else {
            let master = keylog
                .by_random(&ch.random)
                .and_then(|s| s.master.as_deref())
                .or_else(|| keylog.by_session(&sh.session_id))
                .or_else(|| keylog.by_session(&ch.session_id));
            let Some(master) = master else {
                return;
            };
            if let Some((ck, sk)) = RecordKeys::tls12(suite, master, &ch.random, &sh.random) {
                for (side, mut k) in [(c, ck), (s, sk)] {
                    // Records already passed while keys were missing still count.
                    k.seq = self.sides[side].protected_records;
                    self.sides[side].keys.current = Some(k);
                }
                self.keys = TlsKeys::Found;
            }
        }
    }

    fn protected_handshake(&mut self, dir: Dir, ts: Ts, mut plain: &[u8], tl: &mut Timeline) {
        let tls13 = self.suite.is_some_and(|s| s.tls13);
        while plain.len() >= 4 {
            let len = u32::from_be_bytes([0, plain[1], plain[2], plain[3]]) as usize;
            let Some(msg) = plain.get(4..4 + len) else {
                break;
            };
            match plain[0] {
                // EncryptedExtensions: the server's ALPN choice in TLS 1.3.
                8 if tls13 => {
                    if let Some(alpn) = hello::encrypted_extensions_alpn(msg) {
                        self.alpn_decrypted = Some(alpn);
                    }
                }
                // Finished: this side's next record is under the application keys.
                20 if tls13 => {
                    let k = &mut self.sides[dir.index()].keys;
                    if let Some((next, secret)) = k.next.take() {
                        k.current = Some(next);
                        k.secret = Some(secret);
                    }
                }
                // KeyUpdate (RFC 8446 §4.6.3): this side's next record is under the next secret.
                24 if tls13 => self.key_update(dir, ts, tl),
                _ => {}
            }
            plain = &plain[4 + len..];
        }
    }

    fn key_update(&mut self, dir: Dir, ts: Ts, tl: &mut Timeline) {
        let Some(suite) = self.suite else { return };
        let s = &mut self.sides[dir.index()];
        let Some(secret) = &s.keys.secret else { return };
        match next_secret(suite.hash, secret).and_then(|n| Some((RecordKeys::tls13(suite, &n)?, n)))
        {
            Some((keys, newer)) => {
                s.keys.current = Some(keys);
                s.keys.secret = Some(newer);
                s.key_updates += 1;
            }
            None => tl.anomaly(
                ts,
                dir,
                "TLS KeyUpdate: next keys could not be derived".into(),
            ),
        }
    }

    fn alert(&mut self, dir: Dir, ts: Ts, body: &[u8], tl: &mut Timeline) {
        let (Some(&level), Some(&desc)) = (body.first(), body.get(1)) else {
            return;
        };
        if desc == 0 && !self.decrypting[dir.index()] {
            self.close_notify[dir.index()].get_or_insert(ts);
            tl.push(ts, dir, crate::timeline::EventKind::TlsClose);
        }
        // close_notify (0) is the normal end; user_canceled (90) is routine too.
        if desc != 0 && desc != 90 {
            let what = if level == 2 { "fatal" } else { "warning" };
            tl.anomaly(
                ts,
                dir,
                format!("TLS {what} alert {} ({desc})", alert_name(desc)),
            );
        }
    }

    /// After a gap: finds the next record boundary in the bytes kept, and with keys, checks it by
    /// opening the record.
    fn resync(&mut self, dir: Dir, ts: Ts, tl: &mut Timeline, keylog: &SharedKeys) {
        let i = dir.index();
        loop {
            let s = &mut self.sides[i];
            let Some(at) = (0..s.buf.len().saturating_sub(4)).find(|&p| {
                let h = &s.buf[p..];
                h[0] == APPLICATION_DATA && h[1] == 3 && h[2] == 3 && plausible_header(h)
            }) else {
                return;
            };
            s.buf.drain(..at);
            let body = u16::from_be_bytes([s.buf[3], s.buf[4]]) as usize;
            if s.buf.len() < 5 + body {
                return;
            }
            if s.keys.current.is_none() {
                // Without keys a plausible header is taken as the boundary: the bytes from it on
                // go through the normal path.
                s.lost = false;
                let rest = std::mem::take(&mut s.buf);
                self.data(dir, ts, &rest, tl, keylog);
                return;
            }
            let mut record: Vec<u8> = s.buf.drain(..5 + body).collect();
            let before = s.failures;
            s.failures = 1;
            let (header, b) = record.split_at_mut(5);
            let header = [header[0], header[1], header[2], header[3], header[4]];
            let opened = self.open(dir, header, b);
            let s = &mut self.sides[i];
            match opened {
                Some(range) => {
                    s.lost = false;
                    s.failures = 0;
                    s.records += 1;
                    s.decrypted += 1;
                    let rest = std::mem::take(&mut s.buf);
                    self.plaintext(dir, ts, header[0], range, b, tl);
                    // What followed the record goes through the normal path.
                    self.data(dir, ts, &rest, tl, keylog);
                    return;
                }
                None => {
                    s.failures = before;
                    // Not a boundary after all: search again from the next byte.
                    let mut rest = record.split_off(1);
                    rest.extend_from_slice(&s.buf);
                    s.buf = rest;
                }
            }
        }
    }

    /// End of the connection: what was learnt goes into the timeline.
    pub fn finish(&mut self, ts: Ts, tl: &mut Timeline) {
        self.inner.finish(ts, tl);
        // The side that closed first most likely said GOAWAY in the first record of its closing
        // exchange: its first record in the last second before its FIN.
        for dir in [Dir::AtoB, Dir::BtoA] {
            let (i, o) = (dir.index(), dir.reverse().index());
            let Some(fin) = tl.sides[i].fin else { continue };
            // The peer closed first (FIN, or close_notify): this side only answered.
            if self.decrypting[i]
                || tl.sides[o].fin.is_some_and(|g| g < fin)
                || self.close_notify[o].is_some_and(|c| c < fin)
            {
                continue;
            }
            let Some(&(at, plain, quiet)) = self.last_opaque[i]
                .iter()
                .find(|(t, p, _)| *p >= 17 && (0..=1_000_000_000).contains(&fin.ns_since(*t)))
            else {
                continue;
            };
            let kind = crate::timeline::EventKind::InferredGoaway {
                plaintext: plain as u32,
            };
            // The same record may have been taken for an unanswered PING: it was this instead.
            if !self.infer.reinterpret(dir, at, kind.clone(), tl) {
                tl.push_late(at, dir, kind, quiet);
            }
        }
        if let Proto::Http2(Detection::TlsAlpn) = self.proto() {
            tl.http2 = Some(Detection::TlsAlpn);
        }
        self.infer.finish(tl);
        let records = |f: fn(&Side) -> u64| [f(&self.sides[0]), f(&self.sides[1])];
        let sh = self.server_hello.as_ref();
        tl.tls = true;
        tl.tls_info = Some(Box::new(TlsInfo {
            version: sh.map(|s| s.version),
            suite: sh.map(|s| s.suite),
            alpn_offered: self
                .client_hello
                .as_ref()
                .map(|c| c.alpn.clone())
                .unwrap_or_default(),
            alpn: sh
                .and_then(|s| s.alpn.clone())
                .or_else(|| self.alpn_decrypted.clone()),
            server_name: self
                .client_hello
                .as_ref()
                .and_then(|c| c.server_name.clone()),
            keys: if self.decrypting.iter().any(|&d| d) {
                TlsKeys::Found
            } else if self.keys == TlsKeys::Found {
                TlsKeys::Failed
            } else {
                self.keys
            },
            records: records(|s| s.records),
            decrypted: records(|s| s.decrypted),
            failed: records(|s| s.failed),
            key_updates: records(|s| s.key_updates),
            inferred_pings: self.infer.pings,
        }));
    }

    /// What the connection carried: HTTP/2 seen in the plaintext, or announced by ALPN when the
    /// plaintext could not be read.
    pub fn proto(&self) -> Proto {
        if let Proto::Http2(d) = self.inner.proto {
            return Proto::Http2(d);
        }
        let negotiated = self
            .server_hello
            .as_ref()
            .and_then(|s| s.alpn.clone())
            .or_else(|| self.alpn_decrypted.clone());
        let h2 = match negotiated {
            Some(p) => hello::is_h2(&p),
            // TLS 1.3 hides the server's choice: the client's offer is what is known.
            None => self
                .client_hello
                .as_ref()
                .is_some_and(|c| c.alpn.iter().any(|p| hello::is_h2(p))),
        };
        if h2 && !self.decrypting.iter().any(|&d| d) {
            Proto::Http2(Detection::TlsAlpn)
        } else {
            Proto::Tls
        }
    }
}

fn alert_name(desc: u8) -> &'static str {
    match desc {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        80 => "internal_error",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests;
