//! The connection timeline: everything later stages know about one TCP connection, as plain values.
//! TCP and HTTP/2 write it; diagnosis and the renderers only read it. Directions are the flow's
//! raw A→B / B→A; `roles` says which side is the client once that is known.

use crate::capture::Ts;
use crate::tcp::Dir;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Idle periods shorter than this are not listed one by one (the longest is always kept).
pub const MIN_LISTED_IDLE_NS: i64 = 1_000_000_000;
/// Limit `max_events_per_connection`: notable events kept per connection; the rest are counted.
pub const MAX_EVENTS: usize = 100_000;
/// A connection's first room for events (Vec's own first size for them), and its room once
/// that is full.
const FEW_EVENTS: usize = 4;
const MORE_EVENTS: usize = 16;
/// Limit `max_streams_per_connection`: streams remembered per connection; the rest are counted.
pub const MAX_STREAMS: usize = 50_000;
/// Limit `max_idle_periods_per_connection`.
pub const MAX_IDLE_PERIODS: usize = 10_000;

/// HTTP/2 frame types by RFC 9113 number.
pub const FRAME_NAMES: [&str; 10] = [
    "DATA",
    "HEADERS",
    "PRIORITY",
    "RST_STREAM",
    "SETTINGS",
    "PUSH_PROMISE",
    "PING",
    "GOAWAY",
    "WINDOW_UPDATE",
    "CONTINUATION",
];

/// How HTTP/2 was recognised on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detection {
    /// The client connection preface, on any port.
    Preface,
    /// HTTP/1.1 `Upgrade: h2c` answered by `101 Switching Protocols`.
    Upgrade,
    /// Inside an HTTP/1.1 `CONNECT` tunnel (with the inner preface).
    ConnectTunnel,
    /// A run of plausible frame headers in a capture that started mid-connection.
    MidStream,
    /// `--decode-as PORT`.
    DecodeAs,
    /// TLS whose ALPN said `h2`, not decrypted: frames are not visible, only records.
    TlsAlpn,
}

impl Detection {
    pub fn name(self) -> &'static str {
        match self {
            Detection::Preface => "prior-knowledge",
            Detection::Upgrade => "h2c-upgrade",
            Detection::ConnectTunnel => "connect-tunnel",
            Detection::MidStream => "mid-stream",
            Detection::DecodeAs => "decode-as",
            Detection::TlsAlpn => "tls-alpn",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    Syn {
        ack: bool,
    },
    Fin,
    Rst {
        ttl: u8,
        ip_id: Option<u16>,
        window: u16,
    },
    /// Bytes of the stream missing from the capture.
    Gap {
        bytes: u64,
    },
    /// A segment carrying bytes already seen (in whole or in part).
    Retransmission,
    Preface,
    Settings {
        ack: bool,
        params: Vec<(u16, u32)>,
    },
    Ping {
        ack: bool,
        opaque: [u8; 8],
    },
    /// A PING (or its ACK) inferred from the size of a TLS record that could not be decrypted,
    /// with a confidence in percent.
    InferredPing {
        ack: bool,
        confidence: u8,
    },
    Goaway {
        last_stream_id: u32,
        error_code: u32,
        debug_data: Vec<u8>,
    },
    RstStream {
        stream_id: u32,
        error_code: u32,
    },
    /// A TLS close_notify (decrypted, or an alert record seen without keys): the sender ends the
    /// session in order. Only recorded for connections whose frames are not visible.
    TlsClose,
    /// The last TLS record a side sent just before its FIN, on a connection read without keys:
    /// most likely a GOAWAY (`plaintext` bytes: 17 plus its debug data).
    InferredGoaway {
        plaintext: u32,
    },
    /// Something the peer should not have sent, or that we could not parse; parsing went on.
    Anomaly {
        what: String,
    },
    /// A named resource limit was reached.
    Limit {
        /// One of a fixed set of names (`Cow` so that a parked connection can be read back).
        name: Cow<'static, str>,
        detail: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: Ts,
    pub dir: Dir,
    pub kind: EventKind,
    /// How long the connection had been silent (no packet either way) when the packet carrying
    /// this event arrived.
    pub quiet_ns: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub id: u32,
    /// The side that opened it (sent the request HEADERS, or the PUSH_PROMISE).
    pub opened_by: Option<Dir>,
    pub opened: Option<Ts>,
    pub closed: Option<Ts>,
    // Header values are shared with the report model (`Arc`): a connection's report does not copy
    // them when it is built from the timeline.
    pub http_method: Option<Arc<str>>,
    pub path: Option<Arc<str>>,
    pub authority: Option<Arc<str>>,
    pub status: Option<Arc<str>>,
    pub content_type: Option<Arc<str>>,
    pub grpc_status: Option<Arc<str>>,
    pub grpc_message: Option<Arc<str>>,
    /// END_STREAM seen from A→B and B→A.
    pub ended: [bool; 2],
    pub reset: Option<(Dir, u32)>,
    /// Some header block of this stream could not be fully decoded (HPACK state unknown).
    pub headers_incomplete: bool,
}

/// A period without packets (transport idle) or without open streams (stream idle).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Idle {
    pub start: Ts,
    pub end: Ts,
}

impl Idle {
    pub fn secs(&self) -> f64 {
        self.end.secs_since(self.start)
    }
}

/// Whether the keys of a TLS connection were found and worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsKeys {
    /// The handshake is not in the capture.
    NoHandshake,
    Missing,
    Found,
    /// Keys found, but records did not decrypt with them.
    Failed,
    /// A cipher suite or version this tool does not decrypt.
    Unsupported,
}

impl TlsKeys {
    pub fn name(self) -> &'static str {
        match self {
            TlsKeys::NoHandshake => "no-handshake",
            TlsKeys::Missing => "missing",
            TlsKeys::Found => "decrypted",
            TlsKeys::Failed => "failed",
            TlsKeys::Unsupported => "unsupported",
        }
    }
}

/// What the TLS stage learnt of a connection; per-direction counts are A→B, B→A.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub version: Option<u16>,
    pub suite: Option<u16>,
    pub alpn_offered: Vec<String>,
    pub alpn: Option<String>,
    pub server_name: Option<String>,
    pub keys: TlsKeys,
    pub records: [u64; 2],
    pub decrypted: [u64; 2],
    pub failed: [u64; 2],
    pub key_updates: [u64; 2],
    pub inferred_pings: u64,
}

/// Per-direction TCP facts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub packets: u64,
    /// This side's last packet.
    pub last: Option<Ts>,
    pub payload_bytes: u64,
    /// IP TTLs seen on this side's packets other than RSTs, with counts (a few distinct values).
    pub ttls: Vec<(u8, u64)>,
    pub fin: Option<Ts>,
    pub syn: Option<Ts>,
    pub retransmissions: u64,
    pub gaps: u64,
}

impl Side {
    pub fn note_ttl(&mut self, ttl: u8) {
        if let Some(e) = self.ttls.iter_mut().find(|e| e.0 == ttl) {
            e.1 += 1;
        } else if self.ttls.len() < 8 {
            self.ttls.push((ttl, 1));
        }
    }

    /// The TTL this side's packets usually carry.
    pub fn usual_ttl(&self) -> Option<u8> {
        self.ttls.iter().max_by_key(|e| e.1).map(|e| e.0)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timeline {
    /// Source and destination of the first packet seen (A and B).
    pub a: SocketAddr,
    pub b: SocketAddr,
    /// The client, once known: `Some(Dir::AtoB)` means A is the client.
    pub client_dir: Option<Dir>,
    pub first: Ts,
    pub last: Ts,
    pub sides: [Side; 2],
    pub http2: Option<Detection>,
    pub tls: bool,
    pub tls_info: Option<Box<TlsInfo>>,
    pub preface_seen: bool,
    /// Frame counts by type (index = RFC 9113 number) and direction (A→B, B→A).
    pub frames: [[u64; 2]; 10],
    pub unknown_frames: BTreeMap<u8, [u64; 2]>,
    pub events: Vec<Event>,
    pub events_dropped: u64,
    /// Boxed: a map node holds 11 values, and most connections have one or two streams; a node of
    /// 11 inline `Stream`s cost 2.4 kB per connection (heaptrack on the bench capture).
    pub streams: BTreeMap<u32, Box<Stream>>,
    pub streams_dropped: u64,
    pub open_streams: usize,
    /// Transport idle periods of at least [`MIN_LISTED_IDLE_NS`], plus the longest one.
    pub transport_idle: Vec<Idle>,
    pub max_transport_idle: Option<Idle>,
    pub stream_idle: Vec<Idle>,
    pub max_stream_idle: Option<Idle>,
    /// Start of the current period with no open stream.
    stream_idle_since: Option<Ts>,
    /// Silence before the packet being processed.
    quiet_ns: i64,
    /// Events already handed to a live watcher.
    pub watched: usize,
}

impl Timeline {
    pub fn new(a: SocketAddr, b: SocketAddr, ts: Ts) -> Timeline {
        Timeline {
            a,
            b,
            client_dir: None,
            first: ts,
            last: ts,
            sides: Default::default(),
            http2: None,
            tls: false,
            tls_info: None,
            preface_seen: false,
            frames: [[0; 2]; 10],
            unknown_frames: BTreeMap::new(),
            events: Vec::new(),
            events_dropped: 0,
            streams: BTreeMap::new(),
            streams_dropped: 0,
            open_streams: 0,
            transport_idle: Vec::new(),
            max_transport_idle: None,
            stream_idle: Vec::new(),
            max_stream_idle: None,
            stream_idle_since: Some(ts),
            quiet_ns: 0,
            watched: 0,
        }
    }

    /// Every packet of the connection passes here, in capture order, before its contents.
    pub fn packet(&mut self, ts: Ts, dir: Dir, payload_len: u32) {
        self.quiet_ns = ts.ns_since(self.last).max(0);
        if ts > self.last {
            let gap = Idle {
                start: self.last,
                end: ts,
            };
            record_idle(&mut self.transport_idle, &mut self.max_transport_idle, gap);
            self.last = ts;
        }
        let side = &mut self.sides[dir.index()];
        side.packets += 1;
        side.last = Some(side.last.map_or(ts, |l| l.max(ts)));
        side.payload_bytes += payload_len as u64;
    }

    pub fn push(&mut self, ts: Ts, dir: Dir, kind: EventKind) {
        self.push_late(ts, dir, kind, self.quiet_ns);
    }

    /// Silence before the packet being processed.
    pub fn quiet_ns(&self) -> i64 {
        self.quiet_ns
    }

    /// An event learnt after its packet went by, with the silence that packet had.
    pub fn push_late(&mut self, ts: Ts, dir: Dir, kind: EventKind, quiet_ns: i64) {
        if self.events.len() >= MAX_EVENTS {
            self.events_dropped += 1;
            return;
        }
        if self.events.len() == FEW_EVENTS && self.events.capacity() == FEW_EVENTS {
            // A connection with more than a few events (SYNs, SETTINGS, PINGs, FINs) mostly has
            // up to 16: room for them at once, rather than by doubling. `Conn::end` gives back
            // what is unused; connections with a few (a SYN flood's) keep the small list.
            self.events.reserve_exact(MORE_EVENTS - FEW_EVENTS);
        }
        self.events.push(Event {
            ts,
            dir,
            kind,
            quiet_ns,
        });
    }

    pub fn anomaly(&mut self, ts: Ts, dir: Dir, what: String) {
        self.push(ts, dir, EventKind::Anomaly { what });
    }

    pub fn count_frame(&mut self, ty: u8, dir: Dir) {
        match self.frames.get_mut(ty as usize) {
            Some(c) => c[dir.index()] += 1,
            None => self.unknown_frames.entry(ty).or_default()[dir.index()] += 1,
        }
    }

    /// The stream with this id, created when new. `None` once the limit on
    /// remembered streams is reached.
    pub fn stream(&mut self, id: u32) -> Option<&mut Stream> {
        // One search of the map, whether the stream is new or not.
        let full = self.streams.len() >= MAX_STREAMS;
        match self.streams.entry(id) {
            Entry::Occupied(e) => Some(&mut **e.into_mut()),
            Entry::Vacant(_) if full => {
                self.streams_dropped += 1;
                None
            }
            Entry::Vacant(e) => Some(&mut **e.insert(Box::new(Stream {
                id,
                ..Stream::default()
            }))),
        }
    }

    /// A stream became active: ends a stream-idle period.
    pub fn stream_opened(&mut self, ts: Ts) {
        if self.open_streams == 0 {
            if let Some(since) = self.stream_idle_since.take() {
                record_idle(
                    &mut self.stream_idle,
                    &mut self.max_stream_idle,
                    Idle {
                        start: since,
                        end: ts,
                    },
                );
            }
        }
        self.open_streams += 1;
    }

    /// A stream ended: may start a stream-idle period.
    pub fn stream_closed(&mut self, ts: Ts) {
        self.open_streams = self.open_streams.saturating_sub(1);
        if self.open_streams == 0 {
            self.stream_idle_since = Some(ts);
        }
    }

    /// Closes the running stream-idle period at the connection's last packet.
    pub fn finish(&mut self) {
        if let Some(since) = self.stream_idle_since.take() {
            if self.last > since {
                record_idle(
                    &mut self.stream_idle,
                    &mut self.max_stream_idle,
                    Idle {
                        start: since,
                        end: self.last,
                    },
                );
            }
        }
        if self.http2 == Some(Detection::TlsAlpn) {
            // Streams are not visible in records that were not decrypted: no stream was seen
            // open, which does not make the connection stream-idle.
            self.stream_idle.clear();
            self.max_stream_idle = None;
        }
        self.events.sort_by_key(|e| e.ts);
    }

    pub fn client(&self) -> SocketAddr {
        match self.client_dir {
            Some(Dir::BtoA) => self.b,
            _ => self.a,
        }
    }

    pub fn server(&self) -> SocketAddr {
        match self.client_dir {
            Some(Dir::BtoA) => self.a,
            _ => self.b,
        }
    }

    /// Whether `dir` is the client's direction (client → server).
    pub fn is_client(&self, dir: Dir) -> bool {
        self.client_dir.unwrap_or(Dir::AtoB) == dir
    }
}

fn record_idle(list: &mut Vec<Idle>, max: &mut Option<Idle>, idle: Idle) {
    let ns = idle.end.ns_since(idle.start);
    // Longer in seconds, as the report compares them; a period no longer in nanoseconds is not
    // longer in seconds (the conversion keeps order), so the seconds are only worked out for the
    // few periods that may be the new longest. This runs for nearly every packet.
    if max.is_none_or(|m| ns > m.end.ns_since(m.start) && idle.secs() > m.secs()) {
        *max = Some(idle);
    }
    if ns >= MIN_LISTED_IDLE_NS && list.len() < MAX_IDLE_PERIODS {
        list.push(idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> Ts {
        Ts((s * 1e9) as i64)
    }

    #[test]
    fn transport_and_stream_idle() {
        let a = "198.18.0.2:1".parse().unwrap();
        let b = "198.18.1.2:2".parse().unwrap();
        let mut tl = Timeline::new(a, b, t(0.0));
        tl.packet(t(0.0), Dir::AtoB, 0);
        tl.packet(t(0.5), Dir::BtoA, 0);
        tl.stream_opened(t(0.5));
        tl.packet(t(3.5), Dir::AtoB, 10);
        tl.stream_closed(t(3.5));
        tl.packet(t(4.0), Dir::AtoB, 10);
        // Time going backwards is not idle.
        tl.packet(t(2.0), Dir::AtoB, 10);
        tl.finish();
        assert_eq!(tl.max_transport_idle.unwrap().secs(), 3.0);
        assert_eq!(tl.transport_idle.len(), 1);
        assert_eq!(tl.max_stream_idle.unwrap().secs(), 0.5);
        assert_eq!(tl.stream_idle.len(), 0);
    }
}
