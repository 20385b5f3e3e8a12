//! Rules that judge one connection from its own timeline. Each returns a verdict with evidence
//! that quotes times a reader can find in Wireshark. What a single connection cannot decide (was a
//! FIN after a silence an idle timer or a crash?) is marked for the path rules to settle.

use super::decimal::Fixed;
use super::facts::{secs, EndKind, Facts, Role, DRAIN_STREAM_ID};
use super::line::evidence;
use super::{Actor, Cause, Verdict};
use crate::capture::Ts;
use crate::http2::frame::error_name;
use serde::{Deserialize, Serialize};

/// Silences shorter than this are not "idle" for the purpose of blaming an idle timer.
const MIN_IDLE_NS: i64 = 1_000_000_000;
/// A RST that answers the first packet after a silence comes within this time of it.
const ANSWER_WITHIN_NS: i64 = 1_000_000_000;

/// A time for evidence: absolute, and seconds since the connection's first packet. Written
/// straight into the sentence that quotes it, as `format!("{} (+{:.3} s)", ts, since)` writes it.
pub struct At {
    ts: Ts,
    since_first_s: f64,
}

impl At {
    pub fn new(ts: Ts, first: Ts) -> At {
        At {
            ts,
            since_first_s: ts.secs_since(first),
        }
    }

    /// The time as a Ts displays it: its seconds to six places (a test in `decimal` holds them
    /// to it).
    pub fn absolute(&self) -> Fixed {
        Fixed(self.ts.as_secs_f64(), 6)
    }

    pub fn since_first(&self) -> Fixed {
        Fixed(self.since_first_s, 3)
    }
}

pub fn at(f: &Facts<'_>, ts: Ts) -> At {
    At::new(ts, f.tl.first)
}

/// Whether a server-side FIN without GOAWAY still has to be judged against the rest of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pending {
    None,
    /// FIN from the server side after `idle` without a GOAWAY: an L4 idle timer, or a crash.
    ServerFin,
}

pub fn judge(f: &Facts<'_>, proxy_server: Option<&str>) -> (Verdict, Pending) {
    let mut v = Verdict::new(Cause::Unknown);
    // 1. GOAWAYs that name their reason.
    if let Some(g) = f.goaways.iter().find(|g| g.code == 11) {
        let about_pings = g.debug.contains("ping") || g.debug.is_empty();
        v.cause = if about_pings {
            Cause::TooManyPings
        } else {
            Cause::Unknown
        };
        v.killed_by = Some(actor(g.from, proxy_server));
        v.confidence = if g.debug == "too_many_pings" {
            0.95
        } else {
            0.6
        };
        v.at = Some(g.ts);
        let sent: Vec<_> = f
            .pings
            .iter()
            .filter(|p| p.from != g.from && p.ts <= g.ts)
            .collect();
        v.evidence.push(evidence![
            "GOAWAY ENHANCE_YOUR_CALM from the ",
            g.from.name(),
            " at ",
            at(f, g.ts),
            " with debug data \"",
            g.debug,
            "\""
        ]);
        if sent.len() >= 2 {
            let span = secs(sent[sent.len() - 1].ts.ns_since(sent[0].ts)) / (sent.len() - 1) as f64;
            v.evidence.push(evidence![
                "the ",
                g.from.other().name(),
                " had sent ",
                sent.len(),
                " PINGs before it, one every ",
                Fixed(span, 1),
                " s on average"
            ]);
        }
        if !about_pings {
            v.evidence.push("ENHANCE_YOUR_CALM for another reason than pings (h2 uses it for too many resets or CONTINUATIONs)".into());
        }
        return (v, Pending::None);
    }
    let drain = f
        .goaways
        .iter()
        .find(|g| g.last_stream_id == DRAIN_STREAM_ID && g.code == 0);
    if let Some(g) = f
        .goaways
        .iter()
        .find(|g| g.debug == "max_age")
        .or(drain.filter(|d| {
            f.goaways
                .iter()
                .any(|x| x.from == d.from && x.ts >= d.ts && x.last_stream_id != DRAIN_STREAM_ID)
        }))
    {
        v.cause = Cause::MaxAgeGoaway;
        v.killed_by = Some(actor(g.from, proxy_server));
        v.confidence = if g.debug == "max_age" { 0.95 } else { 0.75 };
        v.at = Some(g.ts);
        v.evidence.push(evidence![
            "GOAWAY ",
            error_name(g.code),
            " from the ",
            g.from.name(),
            " at ",
            at(f, g.ts),
            ", ",
            Fixed(g.ts.secs_since(f.tl.first), 1),
            " s after the connection opened, debug data \"",
            g.debug,
            "\""
        ]);
        let goaways: Vec<_> = f.goaways.iter().filter(|x| x.from == g.from).collect();
        if goaways.len() >= 2 && goaways[0].last_stream_id == DRAIN_STREAM_ID {
            let pinged = f
                .pings
                .iter()
                .any(|p| p.from == g.from && p.ts >= goaways[0].ts && p.ts <= goaways[1].ts);
            v.evidence.push(evidence![
                "drain: first GOAWAY with last-stream-id 2^31-1, then",
                if pinged { " a PING, then" } else { "" },
                " GOAWAY with last-stream-id ",
                goaways[1].last_stream_id
            ]);
        }
        let last_id = goaways
            .iter()
            .map(|x| x.last_stream_id)
            .filter(|&id| id != DRAIN_STREAM_ID)
            .min();
        if let Some(last_id) = last_id {
            let refused: Vec<u32> =
                f.tl.streams
                    .keys()
                    .copied()
                    .filter(|&id| id > last_id && id % 2 == 1)
                    .collect();
            let failed = f.failed_streams();
            if !refused.is_empty() || !failed.is_empty() {
                v.evidence.push(format!(
                    "RPCs affected around the GOAWAY: streams above last-stream-id {last_id}: {refused:?}; failed streams: {failed:?}"
                ));
            }
        }
        return (v, Pending::None);
    }
    if let Some(g) = f
        .goaways
        .iter()
        .find(|g| g.from == Role::Server && (g.debug == "max_idle" || g.debug == "connection idle"))
    {
        v.cause = Cause::IdleGoaway;
        v.killed_by = Some(actor(g.from, proxy_server));
        v.confidence = 0.95;
        v.at = Some(g.ts);
        let idle = f.stream_idle_before(g.ts);
        v.idle_before_s = idle.map(|i| i.secs());
        v.fatal_silence_end = Some(g.ts);
        v.evidence.push(evidence![
            "GOAWAY ",
            error_name(g.code),
            " \"",
            g.debug,
            "\" from the server at ",
            at(f, g.ts),
            " (the gRPC server's MaxConnectionIdle)"
        ]);
        if let Some(i) = idle {
            v.evidence.push(evidence![
                "no stream was open for ",
                Fixed(i.secs(), 3),
                " s before it, since ",
                at(f, i.start)
            ]);
        }
        return (v, Pending::None);
    }

    let Some(end) = f.end else {
        return (blackhole_or_alive(f), Pending::None);
    };

    // 2. A RST its claimed sender did not send.
    if let Some(r) = f.rsts.iter().find(|r| r.forged) {
        v.cause = Cause::IdleReset;
        v.killed_by = Some(Actor::Intermediary);
        v.at = Some(r.ts);
        v.evidence.push(evidence![
            "TCP RST claiming to be from the ",
            r.from.name(),
            " at ",
            at(f, r.ts),
            " has TTL ",
            r.ttl,
            ", but the ",
            r.from.name(),
            "'s own packets have TTL ",
            r.sender_ttl.map_or("?".into(), |t| t.to_string())
        ]);
        match f.transport_idle_before(r.ts, ANSWER_WITHIN_NS) {
            Some(i) if i.end.ns_since(i.start) >= MIN_IDLE_NS => {
                v.idle_before_s = Some(i.secs());
                v.fatal_silence_end = Some(i.end);
                v.confidence = 0.9;
                let answered = if i.end == r.ts {
                    "arrived itself at the end of".to_string()
                } else {
                    evidence!["answered the first packet (", at(f, i.end), ") after"]
                };
                v.evidence.push(evidence![
                    "the RST ",
                    answered,
                    " ",
                    Fixed(i.secs(), 3),
                    " s without any packet"
                ]);
            }
            _ => {
                v.confidence = 0.6;
                v.evidence
                    .push("no silence before it: a middlebox reset a flow it did not know".into());
            }
        }
        return (v, Pending::None);
    }

    // 3. The server side closes after the connection carried no streams: an L7 idle timeout.
    if end.kind == EndKind::Goaway && end.from == Role::Server {
        let g = f
            .goaways
            .iter()
            .find(|g| g.ts == end.ts && g.from == Role::Server)
            .cloned();
        if let Some(g) = g {
            let idle = f
                .stream_idle_before(g.ts)
                .filter(|i| i.end.ns_since(i.start) >= MIN_IDLE_NS);
            if let (Some(i), 0) = (idle, g.code) {
                v.cause = Cause::IdleGoaway;
                v.killed_by = Some(actor(Role::Server, proxy_server));
                v.confidence = 0.85;
                v.at = Some(g.ts);
                v.idle_before_s = Some(i.secs());
                v.fatal_silence_end = Some(g.ts);
                let who = proxy_server.map_or("the server".to_string(), |p| {
                    evidence!["the server side (", p, ", a proxy)"]
                });
                v.evidence.push(evidence![
                    "GOAWAY NO_ERROR last-stream-id ",
                    g.last_stream_id,
                    " from ",
                    who,
                    " at ",
                    at(f, g.ts),
                    if g.debug.is_empty() {
                        String::new()
                    } else {
                        evidence![" debug \"", g.debug, "\""]
                    }
                ]);
                let pings = f
                    .pings
                    .iter()
                    .filter(|p| p.ts >= i.start && p.ts <= i.end)
                    .count();
                v.evidence.push(evidence![
                    "no stream was open for ",
                    Fixed(i.secs(), 3),
                    " s before it, since ",
                    at(f, i.start),
                    if pings > 0 {
                        evidence![
                            "; ",
                            pings,
                            " PINGs flowed meanwhile, so the timer ignores PINGs"
                        ]
                    } else {
                        String::new()
                    }
                ]);
                return (v, Pending::None);
            }
            v.cause = Cause::GracefulClose;
            v.killed_by = Some(actor(Role::Server, proxy_server));
            v.confidence = if g.code == 0 { 0.7 } else { 0.5 };
            v.at = Some(g.ts);
            v.evidence.push(evidence![
                "GOAWAY ",
                error_name(g.code),
                " from the server at ",
                at(f, g.ts),
                " while streams were in use",
                if g.debug.is_empty() {
                    String::new()
                } else {
                    evidence![", debug \"", g.debug, "\""]
                }
            ]);
            return (v, Pending::None);
        }
    }

    // 4. The client ends it.
    if end.from == Role::Client {
        v.at = Some(end.ts);
        v.killed_by = Some(Actor::Client);
        let open = f.open_streams_at(end.ts);
        let silence = (end.quiet_ns >= MIN_IDLE_NS).then_some(end.quiet_ns);
        let client_fin = f.fins[Role::Client.index()].map(|(t, _)| t);
        let rst_first = end.kind == EndKind::Rst && client_fin.is_none_or(|fin| fin > end.ts);
        if let (true, false, Some(quiet)) = (open > 0, end.kind == EndKind::Goaway, silence) {
            v.cause = Cause::IdleClose;
            v.idle_before_s = Some(secs(quiet));
            v.confidence = 0.8;
            v.evidence.push(evidence![
                "the client closed (",
                if end.kind == EndKind::Fin {
                    "FIN"
                } else {
                    "RST"
                },
                ") at ",
                at(f, end.ts),
                " while ",
                open,
                " stream(s) were open and nothing had arrived for ",
                Fixed(secs(quiet), 3),
                " s: a read timeout"
            ]);
        } else if rst_first {
            v.cause = Cause::PeerAbort;
            v.confidence = 0.7;
            v.evidence.push(evidence![
                "the client reset the connection (TCP RST with its own TTL) at ",
                at(f, end.ts),
                " without closing it first"
            ]);
        } else {
            v.cause = Cause::GracefulClose;
            v.confidence = 0.9;
            let how = match end.kind {
                EndKind::Goaway => "GOAWAY",
                EndKind::TlsClose => "TLS close_notify",
                EndKind::InferredGoaway => "a last TLS record, likely a GOAWAY",
                EndKind::Fin => "FIN",
                EndKind::Rst => "RST",
            };
            v.evidence.push(evidence![
                "the client closed first (",
                how,
                " at ",
                at(f, end.ts),
                ") with ",
                open,
                " stream(s) open"
            ]);
        }
        return (v, Pending::None);
    }

    // 5. The server side ends it without GOAWAY.
    v.at = Some(end.ts);
    if end.kind == EndKind::InferredGoaway {
        // Frames are not visible (no keys): one last record, then FIN, is how an HTTP/2 server
        // closes with GOAWAY; after a silence, that is an idle timer.
        let size = f.inferred_goaways[Role::Server.index()].map_or(0, |g| g.2);
        let idle = end.quiet_ns >= MIN_IDLE_NS;
        v.cause = if idle {
            Cause::IdleGoaway
        } else {
            Cause::GracefulClose
        };
        v.killed_by = Some(actor(Role::Server, proxy_server));
        v.confidence = 0.5;
        v.idle_before_s = idle.then_some(secs(end.quiet_ns));
        v.evidence.push(evidence![
            "the server's last TLS record (",
            size,
            " bytes of plaintext: a GOAWAY with ",
            size.saturating_sub(17),
            " bytes of debug data, if it is one) at ",
            at(f, end.ts),
            " after ",
            Fixed(secs(end.quiet_ns), 3),
            " s without packets, then its FIN; frames are not visible without keys"
        ]);
        return (v, Pending::None);
    }
    if end.kind == EndKind::TlsClose {
        // Frames are not visible (no keys): a GOAWAY may have preceded it, unseen.
        v.cause = Cause::GracefulClose;
        v.killed_by = Some(actor(Role::Server, proxy_server));
        v.confidence = 0.6;
        v.idle_before_s = (end.quiet_ns >= MIN_IDLE_NS).then_some(secs(end.quiet_ns));
        v.evidence.push(evidence![
            "the server ended the TLS session (close_notify) at ",
            at(f, end.ts),
            " after ",
            Fixed(secs(end.quiet_ns), 3),
            " s of silence; its HTTP/2 frames are not visible without keys"
        ]);
        return (v, Pending::None);
    }
    if end.kind == EndKind::Rst {
        v.cause = Cause::PeerAbort;
        v.killed_by = Some(Actor::Server);
        v.confidence = 0.8;
        v.idle_before_s = Some(secs(end.quiet_ns));
        let r = f.rsts.iter().find(|r| r.ts == end.ts);
        v.evidence.push(evidence![
            "TCP RST from the server at ",
            at(f, end.ts),
            " with the server's own TTL ",
            r.map_or("?".into(), |r| r.ttl.to_string()),
            ": its socket is gone (crash, restart)"
        ]);
        let retrans = f
            .retransmissions
            .iter()
            .filter(|(t, who)| *who == Role::Client && *t < end.ts)
            .count();
        if retrans > 0 {
            v.evidence.push(evidence![
                "the client had retransmitted ",
                retrans,
                " time(s) before it: the server was unreachable first"
            ]);
        }
        return (v, Pending::None);
    }
    // A FIN from the server side with no GOAWAY: an HTTP/2 server says GOAWAY before closing, so
    // this is an L4 device's timer or a process that died; the path decides.
    v.cause = Cause::IdleClose;
    v.killed_by = Some(Actor::Intermediary);
    v.confidence = 0.7;
    v.idle_before_s = Some(secs(end.quiet_ns));
    v.fatal_silence_end = Some(end.ts);
    v.evidence.push(evidence![
        "FIN from the server side at ",
        at(f, end.ts),
        " with no GOAWAY, after ",
        Fixed(secs(end.quiet_ns), 3),
        " s without any packet"
    ]);
    (v, Pending::ServerFin)
}

/// No FIN, RST or GOAWAY: still open, or silently dead.
fn blackhole_or_alive(f: &Facts<'_>) -> Verdict {
    for talker in [Role::Client, Role::Server] {
        // The peer's last word, the talker's first attempt that went unanswered after it, and the
        // silence that attempt broke.
        let peer_last = f.last_packet(talker.other());
        let after_peer = |t: Ts| peer_last.is_none_or(|p| t > p);
        let first_retrans = f
            .retransmissions
            .iter()
            .filter(|(t, who)| *who == talker && after_peer(*t))
            .map(|(t, _)| *t)
            .min();
        let first_unanswered = f
            .pings
            .iter()
            .filter(|p| p.from == talker && p.acked_at.is_none() && after_peer(p.ts))
            .map(|p| p.ts)
            .min();
        // The silence ends at the first unanswered PING itself, or strictly before the first
        // retransmission (at the original send).
        let Some(limit) = first_retrans
            .map(|t| t.add_ns(-1))
            .into_iter()
            .chain(first_unanswered)
            .min()
        else {
            continue;
        };
        let gap = f
            .tl
            .transport_idle
            .iter()
            .rev()
            .find(|i| i.end.ns_since(i.start) >= MIN_IDLE_NS && i.end <= limit && after_peer(i.end))
            .copied();
        if let Some(gap) = gap {
            let peer_silent = true;
            let retrans = f
                .retransmissions
                .iter()
                .filter(|(t, who)| *who == talker && *t >= gap.end)
                .count();
            let unanswered = f
                .pings
                .iter()
                .filter(|p| p.from == talker && p.ts >= gap.end && p.acked_at.is_none())
                .count();
            if peer_silent && (retrans > 0 || unanswered > 0) {
                let mut v = Verdict::new(Cause::IdleBlackhole);
                v.killed_by = Some(Actor::Intermediary);
                v.confidence = if retrans > 0 { 0.85 } else { 0.6 };
                v.idle_before_s = Some(gap.secs());
                v.fatal_silence_end = Some(gap.end);
                v.at = f.last_packet(talker);
                v.evidence.push(evidence![
                    "after ",
                    Fixed(gap.secs(), 3),
                    " s without any packet, the ",
                    talker.name(),
                    " sent again at ",
                    at(f, gap.end),
                    " and got no answer: ",
                    retrans,
                    " retransmission(s), ",
                    unanswered,
                    " unanswered PING(s)"
                ]);
                v.evidence.push(evidence![
                    "the ",
                    talker.other().name(),
                    "'s last packet was at ",
                    f.last_packet(talker.other())
                        .map_or("never".into(), |t| evidence![at(f, t)]),
                    "; no FIN or RST followed (the endpoint gave up silently)"
                ]);
                return v;
            }
        }
    }
    let mut v = Verdict::new(Cause::Alive);
    v.killed_by = None;
    v.confidence = 0.9;
    v.evidence.push(evidence![
        "open when the capture ends: last packet at ",
        at(f, f.tl.last)
    ]);
    v
}

fn actor(from: Role, proxy_server: Option<&str>) -> Actor {
    match (from, proxy_server) {
        (Role::Server, Some(_)) => Actor::Intermediary,
        (Role::Server, None) => Actor::Server,
        (Role::Client, _) => Actor::Client,
    }
}
