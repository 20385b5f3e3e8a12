//! The report model: what every renderer shows, built once from the timelines. Its serialised form
//! is the JSON document of CONTRACT.md (`h2keepalive/v1`); field names there are a stable surface.

use crate::analyzer::Stats;
use crate::capture::Ts;
use crate::diagnose::{self, hex, Diagnosis};
use crate::http2::frame::error_name;
use crate::tcp::Dir;
use crate::timeline::{EventKind, Timeline, FRAME_NAMES};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

pub const SCHEMA: &str = "h2keepalive/v1";

#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub schema: &'static str,
    pub input: Input,
    pub connections: Vec<Connection>,
    pub findings: Vec<Finding>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub files: Vec<String>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub warnings: Vec<String>,
    pub tcp_connections: u64,
    pub http2_connections: u64,
    pub tls_connections: u64,
    /// TLS connections carrying HTTP/2: decrypted, and read without keys (ALPN h2).
    pub tls_decrypted: u64,
    pub tls_without_keys: u64,
    pub other_tcp_connections: u64,
    pub skipped_packets: Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub not_tcp: u64,
    pub malformed: u64,
    pub ip_fragments: u64,
    pub unsupported_link_type: u64,
}

/// A count per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerSide {
    pub client: u64,
    pub server: u64,
}

/// What `#[derive(Serialize)]` writes, inlined where it is called: a connection has some
/// fourteen of them (ten in its frame counts), and the call cost about as much as the writing.
impl Serialize for PerSide {
    #[inline(always)]
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut object = serializer.serialize_struct("PerSide", 2)?;
        object.serialize_field("client", &self.client)?;
        object.serialize_field("server", &self.server)?;
        object.end()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Connection {
    pub id: usize,
    pub client: String,
    pub server: String,
    pub start: f64,
    pub end: f64,
    pub syn_seen: bool,
    pub preface_seen: bool,
    pub http2: bool,
    pub tls: bool,
    /// How HTTP/2 was recognised: prior-knowledge, h2c-upgrade, connect-tunnel, mid-stream, decode-as,
    /// tls-alpn (TLS not decrypted: HTTP/2 known from ALPN, PINGs inferred from record sizes).
    pub detection: &'static str,
    /// The TLS session, for connections over TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_session: Option<TlsSession>,
    /// By frame type name (the ten of RFC 9113 without allocating, UNKNOWN_0x.. as found).
    pub frames: Frames,
    pub pings: Vec<Ping>,
    pub goaways: Vec<Goaway>,
    pub rst_streams: Vec<RstStream>,
    pub streams: Vec<Stream>,
    pub streams_not_kept: u64,
    pub settings: Vec<Settings>,
    pub tcp: Tcp,
    pub idle: IdleSummary,
    /// Silences of at least a second: without packets (`transport`) or without open streams (`stream`).
    pub idle_periods: Vec<IdlePeriod>,
    pub anomalies: Vec<Note>,
    pub limits: Vec<Note>,
    /// Implementations recognised from SETTINGS and PING payloads.
    pub implementation: Sides<Option<String>>,
    pub keepalive: Sides<KeepaliveSide>,
    pub verdict: Verdict,
}

/// Frame counts by type name, in name order: a JSON object whose members are sorted. A short
/// vector, as every connection has ten or so, built already in order.
#[derive(Clone, Debug, Default)]
pub struct Frames {
    counts: Vec<(Cow<'static, str>, PerSide)>,
    /// `counts` is the ten types of RFC 9113 in [`SORTED_FRAME_NAMES`] order, and nothing else.
    just_the_ten: bool,
}

/// Indices into [`FRAME_NAMES`] in the order of the names.
const FRAME_NAMES_SORTED: [usize; 10] = [9, 0, 7, 1, 6, 2, 5, 3, 4, 8];

/// [`FRAME_NAMES`] in name order.
const SORTED_FRAME_NAMES: [&str; 10] = {
    let mut names = [""; 10];
    let mut i = 0;
    while i < 10 {
        names[i] = FRAME_NAMES[FRAME_NAMES_SORTED[i]];
        i += 1;
    }
    names
};

impl Frames {
    pub fn get(&self, name: &str) -> Option<&PerSide> {
        self.counts.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Cow<'static, str>, &PerSide)> {
        self.counts.iter().map(|(n, c)| (n, c))
    }
}

impl<'a> IntoIterator for &'a Frames {
    type Item = (&'a Cow<'static, str>, &'a PerSide);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Cow<'static, str>, PerSide)>,
        fn(&'a (Cow<'static, str>, PerSide)) -> Self::Item,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.counts.iter().map(|(n, c)| (n, c))
    }
}

impl Serialize for Frames {
    /// A map; with just the ten types (nearly always), written as a struct of ten members, which
    /// is the same JSON object: its member names are then constants, which report/json.rs
    /// writes without looking at them when the program runs.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let ten = match self.counts.as_slice() {
            [a, b, c, d, e, f, g, h, i, j] if self.just_the_ten => [a, b, c, d, e, f, g, h, i, j],
            _ => return serializer.collect_map(self),
        };
        let mut object = serializer.serialize_struct("Frames", 10)?;
        object.serialize_field(SORTED_FRAME_NAMES[0], &ten[0].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[1], &ten[1].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[2], &ten[2].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[3], &ten[3].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[4], &ten[4].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[5], &ten[5].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[6], &ten[6].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[7], &ten[7].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[8], &ten[8].1)?;
        object.serialize_field(SORTED_FRAME_NAMES[9], &ten[9].1)?;
        object.end()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TlsSession {
    /// "1.2", "1.3"; null when the handshake is not in the capture.
    pub version: Option<&'static str>,
    /// IANA cipher suite name.
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    pub alpn_offered: Vec<String>,
    pub server_name: Option<String>,
    /// decrypted, missing (no key for this handshake), failed (keys did not open the records),
    /// unsupported (cipher suite or version), no-handshake.
    pub keys: &'static str,
    pub records: PerSide,
    pub decrypted: PerSide,
    pub failed: PerSide,
    pub key_updates: PerSide,
    pub inferred_pings: u64,
    /// When each side ended the TLS session (close_notify), for connections read without keys.
    pub close_notify: Sides<Option<f64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeepaliveSide {
    pub pings: usize,
    /// PINGs that are not keepalives (BDP probes, drain pings), recognised by their payload.
    pub not_keepalive: usize,
    pub interval_median_s: Option<f64>,
    pub interval_spread_s: Option<f64>,
    pub without_calls: usize,
    pub unanswered: usize,
    pub rtt_median_ms: Option<f64>,
}

impl From<&diagnose::SideKeepalive> for KeepaliveSide {
    fn from(k: &diagnose::SideKeepalive) -> Self {
        let r = |x: Option<f64>| x.map(|v| (v * 1000.0).round() / 1000.0);
        KeepaliveSide {
            pings: k.pings,
            not_keepalive: k.not_keepalive,
            interval_median_s: r(k.interval_median_s),
            interval_spread_s: r(k.interval_spread_s),
            without_calls: k.without_calls,
            unanswered: k.unanswered,
            rtt_median_ms: k.rtt_median_ms,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Ping {
    pub ts: f64,
    pub from: &'static str,
    pub ack: bool,
    /// Null when inferred.
    pub opaque: Option<String>,
    pub acked_at: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// Inferred from TLS record sizes and timing, not decrypted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
    /// For an inferred PING: how likely it is one (0..1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Goaway {
    pub ts: f64,
    pub from: &'static str,
    pub last_stream_id: u32,
    pub error_code: String,
    pub error_code_value: u32,
    /// The debug data as text (lossy UTF-8, trailing NULs removed).
    pub debug_data: String,
    pub debug_data_hex: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RstStream {
    pub ts: f64,
    pub from: &'static str,
    pub stream_id: u32,
    pub error_code: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stream {
    pub id: u32,
    // Header values are the timeline's own strings, shared rather than copied.
    /// The request's `:path` (for gRPC, `/package.Service/Method`).
    #[serde(serialize_with = "shared_text")]
    pub method: Option<Arc<str>>,
    #[serde(serialize_with = "shared_text")]
    pub http_method: Option<Arc<str>>,
    #[serde(serialize_with = "shared_text")]
    pub authority: Option<Arc<str>>,
    #[serde(serialize_with = "shared_text")]
    pub status: Option<Arc<str>>,
    #[serde(serialize_with = "shared_text")]
    pub content_type: Option<Arc<str>>,
    pub grpc_status: Option<i64>,
    #[serde(serialize_with = "shared_text")]
    pub grpc_message: Option<Arc<str>>,
    pub opened: Option<f64>,
    pub closed: Option<f64>,
    pub opened_by: Option<&'static str>,
    pub reset_by: Option<&'static str>,
    pub reset_code: Option<String>,
    pub headers_incomplete: bool,
}

/// An optional shared string, serialised as `Option<String>` is (serde's `rc` feature not needed).
fn shared_text<S: serde::Serializer>(text: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    text.as_deref().serialize(s)
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub ts: f64,
    pub from: &'static str,
    pub ack: bool,
    pub params: Vec<(u16, u32)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tcp {
    pub fin: Sides<Option<f64>>,
    pub rst: Vec<Rst>,
    pub retransmissions: u64,
    pub gaps: u64,
    /// `retransmissions` by sender.
    pub retransmissions_by_side: PerSide,
    /// When segments were retransmitted, and by whom.
    pub retransmission_times: Vec<(f64, &'static str)>,
    pub packets: PerSide,
    pub payload_bytes: PerSide,
    /// The IP TTL each side's packets usually carry (RSTs excluded).
    pub usual_ttl: Sides<Option<u8>>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sides<T> {
    pub client: T,
    pub server: T,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rst {
    pub ts: f64,
    pub from: &'static str,
    pub ttl: u8,
    pub ip_id: Option<u16>,
    pub suspect_forged: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct IdleSummary {
    pub max_transport_idle_s: f64,
    pub max_transport_idle_start: Option<f64>,
    pub max_stream_idle_s: f64,
    pub max_stream_idle_start: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IdlePeriod {
    pub kind: &'static str,
    pub start: f64,
    pub end: f64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Note {
    pub ts: f64,
    pub from: &'static str,
    pub what: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub cause: &'static str,
    /// `null` for a connection nobody ended (alive).
    pub killed_by: Option<&'static str>,
    pub confidence: f64,
    pub idle_before_s: Option<f64>,
    pub at: Option<f64>,
    pub evidence: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: &'static str,
    pub summary: String,
    pub connections: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    pub matches: Vec<Match>,
    pub evidence: Vec<String>,
    pub recommendation: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    /// Longest idle survived on the path.
    pub timeout_low_s: f64,
    /// Shortest idle that killed (plus a little for the capture's distance from the timer).
    pub timeout_high_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Match {
    pub name: String,
    pub timeout_s: f64,
    pub on_expiry: &'static str,
    /// True when it matches as configured away from its default (the server side is that product).
    pub configured: bool,
}

fn secs(ts: Ts) -> f64 {
    // Round to the nanosecond the capture can express; f64 keeps microseconds for current epochs.
    ts.as_secs_f64()
}

/// The whole document from timelines held whole and their diagnosis (tests, fuzzing).
pub fn build(
    files: Vec<String>,
    warnings: Vec<String>,
    stats: &Stats,
    timelines: &[Timeline],
    diagnosis: &Diagnosis,
) -> Document {
    let connections: Vec<Connection> = timelines
        .iter()
        .enumerate()
        .map(|(id, tl)| {
            let mut c = connection(
                tl,
                diagnosis.keepalive.get(id).cloned().unwrap_or_default(),
                diagnosis
                    .implementations
                    .get(id)
                    .cloned()
                    .unwrap_or_default(),
                diagnosis.forged_rsts.get(id).map_or(&[], |f| f.as_slice()),
            );
            c.id = id;
            if let Some(v) = diagnosis.verdicts.get(id) {
                c.verdict = verdict(v);
            }
            c
        })
        .collect();
    Document {
        schema: SCHEMA,
        input: input(files, warnings, stats, connections.len()),
        connections,
        findings: findings(&diagnosis.findings),
    }
}

pub fn findings(found: &[diagnose::Finding]) -> Vec<Finding> {
    found
        .iter()
        .map(|f| Finding {
            id: f.id,
            severity: f.severity.name(),
            summary: f.summary.clone(),
            connections: f.connections.clone(),
            estimate: f.estimate.map(|(lo, hi)| Estimate {
                timeout_low_s: lo,
                timeout_high_s: hi,
            }),
            matches: f
                .matches
                .iter()
                .map(|m| Match {
                    name: m.name.clone(),
                    timeout_s: m.timeout_s,
                    on_expiry: m.on_expiry,
                    configured: m.configured,
                })
                .collect(),
            evidence: f.evidence.clone(),
            recommendation: f.recommendation.clone(),
        })
        .collect()
}

pub fn input(files: Vec<String>, warnings: Vec<String>, stats: &Stats, http2: usize) -> Input {
    Input {
        files,
        packets: stats.packets,
        bytes: stats.bytes,
        first_ts: stats.first_ts.map(secs),
        last_ts: stats.last_ts.map(secs),
        warnings,
        tcp_connections: stats.tcp_connections,
        http2_connections: http2 as u64,
        tls_connections: stats.tls_connections,
        tls_decrypted: stats.tls_decrypted,
        tls_without_keys: stats.tls_without_keys,
        other_tcp_connections: stats.other_connections,
        skipped_packets: Skipped {
            not_tcp: stats.not_tcp,
            malformed: stats.malformed,
            ip_fragments: stats.fragments,
            unsupported_link_type: stats.unsupported_link,
        },
    }
}

pub fn verdict(v: &diagnose::Verdict) -> Verdict {
    Verdict {
        cause: v.cause.name(),
        killed_by: v.killed_by.map(|a| a.name()),
        confidence: v.confidence,
        idle_before_s: v.idle_before_s.map(round3),
        at: v.at.map(secs),
        evidence: v.evidence.clone(),
    }
}

/// One connection's report form from its timeline and what diagnosis found of it alone. Its `id`
/// is 0 and its verdict `unknown` until the run is over and the path rules had their say.
pub fn connection(
    tl: &Timeline,
    keepalive: diagnose::Keepalive,
    implementation: [Option<String>; 2],
    forged_rsts: &[(Ts, bool)],
) -> Connection {
    let role = |dir: Dir| {
        if tl.is_client(dir) {
            "client"
        } else {
            "server"
        }
    };
    let per_side = |counts: [u64; 2]| {
        let (a, b) = (counts[0], counts[1]);
        if tl.is_client(Dir::AtoB) {
            PerSide {
                client: a,
                server: b,
            }
        } else {
            PerSide {
                client: b,
                server: a,
            }
        }
    };
    let client_dir = if tl.is_client(Dir::AtoB) {
        Dir::AtoB
    } else {
        Dir::BtoA
    };
    let (c, s) = (client_dir.index(), client_dir.reverse().index());

    let ten: [_; 10] = std::array::from_fn(|i| {
        let counts = tl.frames[FRAME_NAMES_SORTED[i]];
        let counts = PerSide {
            client: counts[c],
            server: counts[s],
        };
        (Cow::Borrowed(SORTED_FRAME_NAMES[i]), counts)
    });
    let mut frames = Vec::with_capacity(ten.len() + tl.unknown_frames.len());
    frames.extend(ten);
    let just_the_ten = tl.unknown_frames.is_empty();
    if !just_the_ten {
        for (kind, counts) in &tl.unknown_frames {
            frames.push((
                Cow::Owned(format!("UNKNOWN_0x{kind:02x}")),
                per_side(*counts),
            ));
        }
        frames.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }

    // The lists made of the events, each allocated once at its length (a first push makes room
    // for four, and a fifth moves them).
    let mut lengths = [0usize; 8];
    for e in &tl.events {
        let list = match e.kind {
            EventKind::Ping { .. } | EventKind::InferredPing { .. } => 0,
            EventKind::Goaway { .. } => 1,
            EventKind::RstStream { .. } => 2,
            EventKind::Settings { .. } => 3,
            EventKind::Rst { .. } => 4,
            EventKind::Anomaly { .. } | EventKind::Gap { .. } => 5,
            EventKind::Limit { .. } => 6,
            EventKind::Retransmission => 7,
            _ => continue,
        };
        lengths[list] += 1;
    }
    let mut pings: Vec<Ping> = Vec::with_capacity(lengths[0]);
    let mut waiting = Unanswered::default();
    let mut inferred_waiting: [std::collections::VecDeque<usize>; 2] = Default::default();
    let mut goaways = Vec::with_capacity(lengths[1]);
    let mut rst_streams = Vec::with_capacity(lengths[2]);
    let mut settings = Vec::with_capacity(lengths[3]);
    let mut rsts = Vec::with_capacity(lengths[4]);
    let mut anomalies = Vec::with_capacity(lengths[5]);
    // One more for a note of events not kept.
    let mut limits = Vec::with_capacity(lengths[6] + usize::from(tl.events_dropped > 0));
    let mut retransmission_times = Vec::with_capacity(lengths[7]);
    let mut tls_close = Sides {
        client: None,
        server: None,
    };
    for e in &tl.events {
        let ts = secs(e.ts);
        match &e.kind {
            EventKind::Ping { ack: false, opaque } => {
                waiting.push((e.dir, *opaque), pings.len());
                pings.push(Ping {
                    ts,
                    from: role(e.dir),
                    ack: false,
                    opaque: Some(hex8(opaque)),
                    acked_at: None,
                    rtt_ms: None,
                    inferred: false,
                    confidence: None,
                });
            }
            EventKind::InferredPing { ack, confidence } => {
                let answered = if *ack {
                    inferred_waiting[e.dir.reverse().index()].pop_front()
                } else {
                    None
                };
                match answered {
                    Some(i) => {
                        let p = &mut pings[i];
                        p.acked_at = Some(ts);
                        p.rtt_ms = Some(((ts - p.ts) * 1e6).round() / 1e3);
                    }
                    None => {
                        if !*ack {
                            inferred_waiting[e.dir.index()].push_back(pings.len());
                        }
                        pings.push(Ping {
                            ts,
                            from: role(e.dir),
                            ack: *ack,
                            opaque: None,
                            acked_at: None,
                            rtt_ms: None,
                            inferred: true,
                            confidence: Some(*confidence as f64 / 100.0),
                        });
                    }
                }
            }
            EventKind::Ping { ack: true, opaque } => {
                let answered = waiting.answer((e.dir.reverse(), *opaque));
                match answered {
                    Some(i) => {
                        let p = &mut pings[i];
                        p.acked_at = Some(ts);
                        p.rtt_ms = Some(((ts - p.ts) * 1e6).round() / 1e3);
                    }
                    None => pings.push(Ping {
                        ts,
                        from: role(e.dir),
                        ack: true,
                        opaque: Some(hex8(opaque)),
                        acked_at: None,
                        rtt_ms: None,
                        inferred: false,
                        confidence: None,
                    }),
                }
            }
            EventKind::Goaway {
                last_stream_id,
                error_code,
                debug_data,
            } => {
                let text = String::from_utf8_lossy(debug_data)
                    .trim_end_matches('\0')
                    .to_string();
                goaways.push(Goaway {
                    ts,
                    from: role(e.dir),
                    last_stream_id: *last_stream_id,
                    error_code: error_name(*error_code),
                    error_code_value: *error_code,
                    debug_data: text,
                    debug_data_hex: hex(debug_data),
                });
            }
            EventKind::RstStream {
                stream_id,
                error_code,
            } => {
                rst_streams.push(RstStream {
                    ts,
                    from: role(e.dir),
                    stream_id: *stream_id,
                    error_code: error_name(*error_code),
                });
            }
            EventKind::Settings { ack, params } => {
                settings.push(Settings {
                    ts,
                    from: role(e.dir),
                    ack: *ack,
                    params: params.clone(),
                });
            }
            EventKind::Rst { ttl, ip_id, .. } => {
                // Whether a RST was forged is diagnosis's call, made on the same events.
                let forged = forged_rsts
                    .iter()
                    .find(|(t, _)| *t == e.ts)
                    .is_some_and(|(_, f)| *f);
                rsts.push(Rst {
                    ts,
                    from: role(e.dir),
                    ttl: *ttl,
                    ip_id: *ip_id,
                    suspect_forged: forged,
                });
            }
            EventKind::Anomaly { what } => anomalies.push(Note {
                ts,
                from: role(e.dir),
                what: what.clone(),
            }),
            EventKind::Limit { name, detail } => limits.push(Note {
                ts,
                from: role(e.dir),
                what: format!("{name}: {detail}"),
            }),
            EventKind::Gap { bytes } => anomalies.push(Note {
                ts,
                from: role(e.dir),
                what: format!("{bytes} bytes missing from the capture"),
            }),
            EventKind::Retransmission => retransmission_times.push((ts, role(e.dir))),
            EventKind::TlsClose => {
                let slot = if tl.is_client(e.dir) {
                    &mut tls_close.client
                } else {
                    &mut tls_close.server
                };
                slot.get_or_insert(ts);
            }
            // Reported through the verdict's evidence.
            EventKind::InferredGoaway { .. } => {}
            EventKind::Syn { .. } | EventKind::Fin | EventKind::Preface => {}
        }
    }
    if tl.events_dropped > 0 {
        limits.push(Note {
            ts: secs(tl.last),
            from: "client",
            what: format!(
                "max_events_per_connection: {} events not kept",
                tl.events_dropped
            ),
        });
    }

    let streams = tl
        .streams
        .values()
        .map(|st| Stream {
            id: st.id,
            method: st.path.clone(),
            http_method: st.http_method.clone(),
            authority: st.authority.clone(),
            status: st.status.clone(),
            content_type: st.content_type.clone(),
            grpc_status: st
                .grpc_status
                .as_deref()
                .and_then(|s| s.trim().parse().ok()),
            grpc_message: st.grpc_message.clone(),
            opened: st.opened.map(secs),
            closed: st.closed.map(secs),
            opened_by: st.opened_by.map(role),
            reset_by: st.reset.map(|(d, _)| role(d)),
            reset_code: st.reset.map(|(_, code)| error_name(code)),
            headers_incomplete: st.headers_incomplete,
        })
        .collect();

    let sides = &tl.sides;
    let [client_impl, server_impl] = implementation;
    Connection {
        id: 0,
        client: address(tl.client()),
        server: address(tl.server()),
        start: secs(tl.first),
        end: secs(tl.last),
        syn_seen: sides.iter().any(|s| s.syn.is_some()),
        preface_seen: tl.preface_seen,
        http2: tl.http2.is_some(),
        tls: tl.tls,
        detection: tl.http2.map_or("none", |d| d.name()),
        tls_session: tl.tls_info.as_ref().map(|t| TlsSession {
            version: t.version.map(crate::tls::hello::version_name),
            cipher: t.suite.map(crate::tls::crypto::suite_name),
            alpn: t.alpn.clone(),
            alpn_offered: t.alpn_offered.clone(),
            server_name: t.server_name.clone(),
            keys: t.keys.name(),
            records: per_side(t.records),
            decrypted: per_side(t.decrypted),
            failed: per_side(t.failed),
            key_updates: per_side(t.key_updates),
            inferred_pings: t.inferred_pings,
            close_notify: tls_close,
        }),
        frames: Frames {
            counts: frames,
            just_the_ten,
        },
        pings,
        goaways,
        rst_streams,
        streams,
        streams_not_kept: tl.streams_dropped,
        settings,
        tcp: Tcp {
            fin: Sides {
                client: sides[c].fin.map(secs),
                server: sides[s].fin.map(secs),
            },
            rst: rsts,
            retransmissions: sides[0].retransmissions + sides[1].retransmissions,
            gaps: sides[0].gaps + sides[1].gaps,
            retransmissions_by_side: PerSide {
                client: sides[c].retransmissions,
                server: sides[s].retransmissions,
            },
            retransmission_times,
            packets: PerSide {
                client: sides[c].packets,
                server: sides[s].packets,
            },
            payload_bytes: PerSide {
                client: sides[c].payload_bytes,
                server: sides[s].payload_bytes,
            },
            usual_ttl: Sides {
                client: sides[c].usual_ttl(),
                server: sides[s].usual_ttl(),
            },
        },
        idle: IdleSummary {
            max_transport_idle_s: round3(tl.max_transport_idle.map_or(0.0, |i| i.secs())),
            max_transport_idle_start: tl.max_transport_idle.map(|i| secs(i.start)),
            max_stream_idle_s: round3(tl.max_stream_idle.map_or(0.0, |i| i.secs())),
            max_stream_idle_start: tl.max_stream_idle.map(|i| secs(i.start)),
        },
        idle_periods: tl
            .transport_idle
            .iter()
            .map(|i| ("transport", i))
            .chain(
                tl.stream_idle
                    .iter()
                    .filter(|i| i.secs() >= 1.0)
                    .map(|i| ("stream", i)),
            )
            .map(|(kind, i)| IdlePeriod {
                kind,
                start: secs(i.start),
                end: secs(i.end),
                seconds: round3(i.secs()),
            })
            .collect(),
        anomalies,
        limits,
        implementation: Sides {
            client: client_impl,
            server: server_impl,
        },
        keepalive: Sides {
            client: (&keepalive.client).into(),
            server: (&keepalive.server).into(),
        },
        verdict: Verdict {
            cause: "unknown",
            killed_by: Some("unknown"),
            confidence: 0.0,
            idle_before_s: None,
            at: None,
            evidence: vec![],
        },
    }
}

/// Unanswered PINGs by sender and opaque data, oldest first: an ACK answers the oldest. Mostly none
/// or one is waiting, and a short list is scanned; a peer that never answers fills an index.
#[derive(Default)]
struct Unanswered {
    few: Vec<((Dir, [u8; 8]), usize)>,
    many: HashMap<(Dir, [u8; 8]), VecDeque<usize>>,
}

impl Unanswered {
    /// Longest list scanned.
    const FEW: usize = 16;

    fn push(&mut self, key: (Dir, [u8; 8]), ping: usize) {
        if self.many.is_empty() && self.few.len() < Self::FEW {
            self.few.push((key, ping));
            return;
        }
        for (k, p) in self.few.drain(..) {
            self.many.entry(k).or_default().push_back(p);
        }
        self.many.entry(key).or_default().push_back(ping);
    }

    fn answer(&mut self, key: (Dir, [u8; 8])) -> Option<usize> {
        match self.few.iter().position(|(k, _)| *k == key) {
            Some(at) => Some(self.few.remove(at).1),
            None => self.many.get_mut(&key).and_then(|q| q.pop_front()),
        }
    }
}

/// `addr.to_string()`, without the formatting machinery for the common IPv4 case: the text is
/// put together in an array and copied into a string of its length.
fn address(addr: SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    // As long as "255.255.255.255:65535", and room for the three bytes written for any octet.
    let mut text = [0u8; 22];
    let mut len = 0;
    for octet in v4.ip().octets() {
        let [digits @ .., n] = OCTETS[usize::from(octet)];
        text[len..len + 3].copy_from_slice(&digits);
        len += usize::from(n);
        text[len] = b'.';
        len += 1;
    }
    text[len - 1] = b':';
    len += put_decimal(&mut text[len..], v4.port());
    // Only ASCII digits, dots and a colon were written.
    String::from_utf8(text[..len].to_vec()).unwrap_or_default()
}

/// The decimal text of every octet: three bytes, of which the first are its digits, and the
/// number of digits.
const OCTETS: [[u8; 4]; 256] = {
    let mut table = [[0; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let digits = [(n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8];
        let len = if n >= 100 {
            3
        } else if n >= 10 {
            2
        } else {
            1
        };
        let mut i = 0;
        while i < len {
            table[n][i] = b'0' + digits[3 - len + i];
            i += 1;
        }
        table[n][3] = len as u8;
        n += 1;
    }
    table
};

/// Writes `n` in decimal at the start of `to`, and returns its length.
fn put_decimal(to: &mut [u8], n: u16) -> usize {
    let len = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    let mut rest = n;
    for at in (0..len).rev() {
        to[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    len
}

/// [`hex`] of a PING's eight bytes, every nibble spread to a byte of its own and turned into its
/// digit at once.
fn hex8(bytes: &[u8; 8]) -> String {
    let word = u64::from_be_bytes(*bytes);
    // The high nibble of each byte into the high half, then each nibble into a byte.
    let mut halves = [word >> 32, word & 0xffff_ffff];
    for half in &mut halves {
        let mut x = *half;
        x = (x | x << 16) & 0x0000_ffff_0000_ffff;
        x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
        x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
        // 0-9 to '0'-'9', 10-15 to 'a'-'f': add '0', and 'a' - '0' - 10 more past 9.
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        *half = x + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64;
    }
    let mut text = [0u8; 16];
    text[..8].copy_from_slice(&halves[0].to_be_bytes());
    text[8..].copy_from_slice(&halves[1].to_be_bytes());
    // Only hex digits were written.
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_names_sorted_is_the_name_order() {
        let mut want: Vec<usize> = (0..FRAME_NAMES.len()).collect();
        want.sort_by_key(|&i| FRAME_NAMES[i]);
        assert_eq!(FRAME_NAMES_SORTED.to_vec(), want);
        let mut names = FRAME_NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(SORTED_FRAME_NAMES.to_vec(), names);
    }

    #[test]
    fn the_ten_frame_types_are_the_same_object_written_as_a_struct_or_as_a_map() {
        let counts: Vec<_> = SORTED_FRAME_NAMES
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let n = i as u64;
                let side = PerSide {
                    client: n * n * 1000,
                    server: n,
                };
                (Cow::Borrowed(name), side)
            })
            .collect();
        let as_struct = Frames {
            counts: counts.clone(),
            just_the_ten: true,
        };
        let as_map = Frames {
            counts,
            just_the_ten: false,
        };
        let want = serde_json::to_string(&as_map).unwrap();
        assert!(want.starts_with(r#"{"CONTINUATION":{"client":0,"server":0},"DATA":"#));
        assert_eq!(serde_json::to_string(&as_struct).unwrap(), want);
        assert_eq!(
            crate::report::json::to_vec(&as_struct).unwrap(),
            want.as_bytes()
        );
        assert_eq!(
            crate::report::json::to_vec(&as_map).unwrap(),
            want.as_bytes()
        );
    }

    #[test]
    fn ping_payloads_are_written_as_hex_writes_them() {
        let mut next = crate::testing::xorshift(0x0068_6578_0000_0008);
        let edges = [
            [0; 8],
            [0xff; 8],
            *b"\x09\x0a\x0f\x10\x99\x9a\xa0\xaf",
            1u64.to_be_bytes(),
        ];
        for bytes in edges
            .into_iter()
            .chain((0..10_000).map(|_| next().to_le_bytes()))
        {
            assert_eq!(hex8(&bytes), hex(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn address_is_written_as_display_writes_it() {
        for a in [
            "0.0.0.0:0",
            "10.0.0.8:56238",
            "255.255.255.255:65535",
            "192.168.1.100:443",
            "[::1]:8080",
            "[fe80::1%3]:50051",
            "[::ffff:10.0.0.1]:80",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(address(addr), addr.to_string());
        }
    }

    #[test]
    fn unanswered_pings_are_answered_oldest_first_past_the_short_list() {
        let mut w = Unanswered::default();
        let key = |n: u8| (Dir::AtoB, [n; 8]);
        for i in 0..40 {
            w.push(key((i % 3) as u8), i);
        }
        assert_eq!(w.answer(key(1)), Some(1));
        assert_eq!(w.answer(key(1)), Some(4));
        assert_eq!(w.answer((Dir::BtoA, [1; 8])), None);
        let mut small = Unanswered::default();
        small.push(key(7), 0);
        small.push(key(7), 1);
        assert_eq!(small.answer(key(7)), Some(0));
        assert_eq!(small.answer(key(7)), Some(1));
        assert_eq!(small.answer(key(7)), None);
    }
}
