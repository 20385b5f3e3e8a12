//! What the rules need to know about one connection, read off its timeline once: events by role
//! (client/server rather than A/B), whether each RST was forged, the connection's first terminal
//! event, and the idle periods that preceded a moment.

use super::catalogue::Measure;
use super::connection::Pending;
use super::keepalive::SideKeepalive;
use super::Verdict;
use crate::capture::Ts;
use crate::tcp::Dir;
use crate::timeline::{EventKind, Idle, Timeline};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// A side of the connection by its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }

    pub fn other(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Role::Client => 0,
            Role::Server => 1,
        }
    }
}

/// The last stream id of a GOAWAY that only announces a drain (RFC 9113 §6.8: "an endpoint that is
/// attempting to gracefully shut down a connection can send a GOAWAY frame with the last stream
/// identifier set to 2^31-1").
pub const DRAIN_STREAM_ID: u32 = 0x7fff_ffff;

#[derive(Clone, Debug)]
pub struct Goaway {
    pub ts: Ts,
    pub quiet_ns: i64,
    pub from: Role,
    pub last_stream_id: u32,
    pub code: u32,
    pub debug: String,
}

#[derive(Clone, Debug)]
pub struct Rst {
    pub ts: Ts,
    pub quiet_ns: i64,
    pub from: Role,
    pub ttl: u8,
    /// The usual TTL of the claimed sender's other packets, when any were seen.
    pub sender_ttl: Option<u8>,
    pub forged: bool,
}

#[derive(Clone, Debug)]
pub struct Ping {
    pub ts: Ts,
    /// Silence on the connection before it.
    pub quiet_ns: i64,
    pub from: Role,
    pub opaque: [u8; 8],
    pub acked_at: Option<Ts>,
    /// Inferred from TLS record sizes, with this confidence in percent (the opaque data is unknown).
    pub inferred: Option<u8>,
}

/// The first event that ends a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    Goaway,
    /// A TLS close_notify on a connection whose frames are not visible (no keys).
    TlsClose,
    /// The last TLS record before a FIN, likely a GOAWAY (no keys).
    InferredGoaway,
    Fin,
    Rst,
}

#[derive(Clone, Copy, Debug)]
pub struct End {
    pub ts: Ts,
    pub from: Role,
    pub kind: EndKind,
    /// Silence before the packet that carried it.
    pub quiet_ns: i64,
}

pub struct Facts<'a> {
    pub tl: &'a Timeline,
    client_dir: Dir,
    pub goaways: Vec<Goaway>,
    pub rsts: Vec<Rst>,
    pub pings: Vec<Ping>,
    /// First TLS close_notify of each role (connections read without keys).
    pub tls_closes: [Option<(Ts, i64)>; 2],
    /// The last record before each role's FIN, likely a GOAWAY (no keys): time, silence, size.
    pub inferred_goaways: [Option<(Ts, i64, u32)>; 2],
    /// First FIN of each role.
    pub fins: [Option<(Ts, i64)>; 2],
    pub retransmissions: Vec<(Ts, Role)>,
    /// First non-ACK SETTINGS of each role.
    pub settings: [Option<&'a [(u16, u32)]>; 2],
    pub end: Option<End>,
}

/// What the path rules read of a connection besides its verdict, worked out when it is judged:
/// a few numbers, kept after its timeline is gone, rather than its idle periods and PINGs (the
/// verdict's time and silence, which the rules read with them, are not changed by the rules).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PathFacts {
    /// The server's address and port: a [`SocketAddr`] without its IPv6 flow info and scope id
    /// (always 0 here, see tcp/flow.rs), in 20 bytes instead of 32.
    server: (IpAddr, u16),
    pub first: Ts,
    /// Whether its verdict waits for the path rules.
    pub pending: Pending,
    /// The longest silences survived, by measure ([`PathFacts::survived`]).
    survived: [Survived; 2],
    /// A PING was answered during the silence before the verdict's moment.
    pub pings_in_fatal_silence: bool,
    /// The client's median interval between keepalive PINGs.
    pub client_ping_interval_s: MaybeSecs,
    /// The client pings often enough without calls to meet a default gRPC server's enforcement.
    pub client_pings_risky: bool,
    /// Implementations recognised for the client and the server side: their index in the
    /// catalogue's fingerprints.
    pub fingerprints: [Option<u16>; 2],
}

/// The longest idle period of one measure that a connection survived, in seconds: of all its
/// periods, and of those that ended before its fatal silence.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Survived {
    any: MaybeSecs,
    before_death: MaybeSecs,
}

/// Seconds, or none: an `Option<f64>` in half the room. NaN stands for none; the durations kept
/// here are nanoseconds divided, never NaN.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct MaybeSecs(f64);

impl MaybeSecs {
    pub fn new(secs: Option<f64>) -> MaybeSecs {
        MaybeSecs(secs.unwrap_or(f64::NAN))
    }

    pub fn get(self) -> Option<f64> {
        (!self.0.is_nan()).then_some(self.0)
    }
}

impl PathFacts {
    /// `verdict`: the connection's, judged alone. The rules change neither its moment nor the
    /// silence before it, which these facts are worked out with.
    pub fn new(
        f: &Facts<'_>,
        verdict: &Verdict,
        pending: Pending,
        client_keepalive: &SideKeepalive,
        fingerprints: [Option<u16>; 2],
    ) -> PathFacts {
        let tl = f.tl;
        // The rules leave out of what was survived the silence that killed (from 1 ms before
        // its end on).
        let fatal_from = verdict
            .fatal_silence_end
            .or(verdict.at)
            .map(|t| t.add_ns(-1_000_000).0);
        let survived = |periods: &[Idle], measure: Measure| {
            let mut s = Survived {
                any: MaybeSecs::new(None),
                before_death: MaybeSecs::new(None),
            };
            for p in periods {
                // A transport silence proves survival only if a packet came after it; a stream
                // silence ending the connection proves no L7 timer fired meanwhile (its GOAWAY
                // would show).
                if measure == Measure::Transport && p.end >= tl.last {
                    continue;
                }
                let secs = p.secs();
                if s.any.get().is_none_or(|b| secs > b) {
                    s.any = MaybeSecs::new(Some(secs));
                }
                let before = fatal_from.is_none_or(|t| p.end.0 < t);
                if before && s.before_death.get().is_none_or(|b| secs > b) {
                    s.before_death = MaybeSecs::new(Some(secs));
                }
            }
            s
        };
        let pings_in_fatal_silence = match (verdict.at, verdict.idle_before_s) {
            (Some(t), Some(idle)) => {
                let start = t.add_ns(-((idle * 1e9) as i64)).0;
                f.pings
                    .iter()
                    .any(|p| p.acked_at.is_some() && p.ts.0 > start && p.ts <= t)
            }
            _ => false,
        };
        let k = client_keepalive;
        let server = tl.server();
        PathFacts {
            server: (server.ip(), server.port()),
            first: tl.first,
            pending,
            survived: [
                survived(&tl.transport_idle, Measure::Transport),
                survived(&tl.stream_idle, Measure::Stream),
            ],
            pings_in_fatal_silence,
            client_ping_interval_s: MaybeSecs::new(k.interval_median_s),
            client_pings_risky: k.pings - k.not_keepalive >= 3
                && k.without_calls > 0
                && k.interval_median_s.is_some_and(|m| m < 300.0),
            fingerprints,
        }
    }

    pub fn server(&self) -> SocketAddr {
        SocketAddr::new(self.server.0, self.server.1)
    }

    /// The longest idle period of `measure` the connection survived, in seconds: of all, or
    /// (`died_of_silence`: its death was a silence's) of those before its fatal silence.
    pub fn survived(&self, measure: Measure, died_of_silence: bool) -> Option<f64> {
        let s = match measure {
            Measure::Transport => self.survived[0],
            Measure::Stream => self.survived[1],
        };
        if died_of_silence {
            s.before_death.get()
        } else {
            s.any.get()
        }
    }
}

/// One end candidate per role from a (time, silence before it) slot per role.
fn per_role(slots: [Option<(Ts, i64)>; 2], kind: EndKind) -> impl Iterator<Item = End> {
    [Role::Client, Role::Server]
        .into_iter()
        .filter_map(move |r| {
            slots[r.index()].map(|(ts, quiet_ns)| End {
                ts,
                from: r,
                kind,
                quiet_ns,
            })
        })
}

impl<'a> Facts<'a> {
    pub fn new(tl: &'a Timeline) -> Facts<'a> {
        let client_dir = tl.client_dir.unwrap_or(Dir::AtoB);
        let role = |d: Dir| {
            if d == client_dir {
                Role::Client
            } else {
                Role::Server
            }
        };
        let mut f = Facts {
            tl,
            client_dir,
            goaways: Vec::new(),
            rsts: Vec::new(),
            pings: Vec::new(),
            fins: [None, None],
            tls_closes: [None, None],
            inferred_goaways: [None, None],
            retransmissions: Vec::new(),
            settings: [None, None],
            end: None,
        };
        let usual_ttl = |r: Role| {
            let d = if r == Role::Client {
                client_dir
            } else {
                client_dir.reverse()
            };
            tl.sides[d.index()].usual_ttl()
        };
        for e in &tl.events {
            let from = role(e.dir);
            match &e.kind {
                EventKind::Goaway {
                    last_stream_id,
                    error_code,
                    debug_data,
                } => f.goaways.push(Goaway {
                    ts: e.ts,
                    quiet_ns: e.quiet_ns,
                    from,
                    last_stream_id: *last_stream_id,
                    code: *error_code,
                    debug: String::from_utf8_lossy(debug_data)
                        .trim_end_matches('\0')
                        .to_string(),
                }),
                EventKind::Rst { ttl, .. } => {
                    let sender_ttl = usual_ttl(from);
                    // A RST the claimed sender did not send arrives with another hop count than its
                    // own packets. Only a difference counts: with no other packet to compare, or the
                    // same TTL, the RST is taken as genuine.
                    let forged = sender_ttl.is_some_and(|t| t != *ttl);
                    f.rsts.push(Rst {
                        ts: e.ts,
                        quiet_ns: e.quiet_ns,
                        from,
                        ttl: *ttl,
                        sender_ttl,
                        forged,
                    });
                }
                EventKind::Ping { ack: false, opaque } => f.pings.push(Ping {
                    ts: e.ts,
                    quiet_ns: e.quiet_ns,
                    from,
                    opaque: *opaque,
                    acked_at: None,
                    inferred: None,
                }),
                EventKind::InferredPing {
                    ack: false,
                    confidence,
                } => f.pings.push(Ping {
                    ts: e.ts,
                    quiet_ns: e.quiet_ns,
                    from,
                    opaque: [0; 8],
                    acked_at: None,
                    inferred: Some(*confidence),
                }),
                EventKind::InferredPing { ack: true, .. } => {
                    if let Some(p) = f
                        .pings
                        .iter_mut()
                        .find(|p| p.from != from && p.inferred.is_some() && p.acked_at.is_none())
                    {
                        p.acked_at = Some(e.ts);
                    }
                }
                EventKind::Ping { ack: true, opaque } => {
                    if let Some(p) = f.pings.iter_mut().find(|p| {
                        p.from != from
                            && p.inferred.is_none()
                            && p.opaque == *opaque
                            && p.acked_at.is_none()
                    }) {
                        p.acked_at = Some(e.ts);
                    }
                }
                EventKind::Fin => {
                    f.fins[from.index()].get_or_insert((e.ts, e.quiet_ns));
                }
                EventKind::InferredGoaway { plaintext } => {
                    f.inferred_goaways[from.index()].get_or_insert((e.ts, e.quiet_ns, *plaintext));
                }
                EventKind::TlsClose => {
                    f.tls_closes[from.index()].get_or_insert((e.ts, e.quiet_ns));
                }
                EventKind::Retransmission => f.retransmissions.push((e.ts, from)),
                EventKind::Settings { ack: false, params } => {
                    f.settings[from.index()].get_or_insert(params);
                }
                _ => {}
            }
        }
        let candidates = f
            .goaways
            .iter()
            .map(|g| End {
                ts: g.ts,
                from: g.from,
                kind: EndKind::Goaway,
                quiet_ns: g.quiet_ns,
            })
            .chain(f.rsts.iter().map(|r| End {
                ts: r.ts,
                from: r.from,
                kind: EndKind::Rst,
                quiet_ns: r.quiet_ns,
            }))
            .chain(per_role(f.fins, EndKind::Fin))
            .chain(per_role(
                f.inferred_goaways
                    .map(|g| g.map(|(ts, quiet, _)| (ts, quiet))),
                EndKind::InferredGoaway,
            ))
            .chain(per_role(f.tls_closes, EndKind::TlsClose));
        // Earliest first; at the same instant a GOAWAY precedes the FIN or RST it announces.
        f.end = candidates.min_by_key(|e| (e.ts, e.kind as u8));
        f
    }

    pub fn dir(&self, r: Role) -> Dir {
        match r {
            Role::Client => self.client_dir,
            Role::Server => self.client_dir.reverse(),
        }
    }

    pub fn last_packet(&self, r: Role) -> Option<Ts> {
        self.tl.sides[self.dir(r).index()].last
    }

    /// The transport idle period (no packet at all) that ended at or shortly before `at`: the
    /// silence that the packet at its end broke. `within` bounds how long before `at` it may end.
    pub fn transport_idle_before(&self, at: Ts, within_ns: i64) -> Option<Idle> {
        self.tl
            .transport_idle
            .iter()
            .rev()
            .find(|i| i.end <= at && at.ns_since(i.end) <= within_ns)
            .copied()
    }

    /// The stream-idle period (no open stream) that was running or had just ended at `at`.
    pub fn stream_idle_before(&self, at: Ts) -> Option<Idle> {
        self.tl
            .stream_idle
            .iter()
            .rev()
            .find(|i| i.start <= at && i.end.add_ns(1_000_000) >= at)
            .copied()
    }

    /// Streams open at `at` (opened before, not closed before).
    pub fn open_streams_at(&self, at: Ts) -> usize {
        self.tl
            .streams
            .values()
            .filter(|s| s.opened.is_some_and(|o| o <= at) && s.closed.is_none_or(|c| c > at))
            .count()
    }

    /// Streams that failed: reset, or ended with a gRPC status other than OK.
    pub fn failed_streams(&self) -> Vec<u32> {
        self.tl
            .streams
            .values()
            .filter(|s| {
                s.reset.is_some_and(|(_, code)| code != 0)
                    || s.grpc_status.as_deref().is_some_and(|g| g.trim() != "0")
            })
            .map(|s| s.id)
            .collect()
    }
}

pub fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}
