//! The pipeline for one run: packets in (from files or, later, an interface), connection timelines
//! out. It owns the flow table and moves each packet through wire → tcp → http2 → timeline.

pub mod shards;

use crate::capture::{Packet, Ts};
use crate::http2::{Proto, Session};
use crate::spill::{Spill, Spilled};
use crate::tcp::flow::FlowMap;
use crate::tcp::{Chunk, Dir, FlowKey, FlowTable, Reassembler, MAX_FLOWS};
use crate::timeline::{EventKind, Timeline};
use crate::tls::{SharedKeys, TlsConn};
use crate::wire::{self, Segment, Skip};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How long a closed connection stays in the flow table after its last packet, for late packets
/// (the last ACK, a retransmitted FIN, a RST answering either) to join it rather than start a new
/// one: Linux's TIME_WAIT. Then it is handed to the [`Sink`] and forgotten.
pub const LINGER_NS: i64 = 60_000_000_000;

/// A connection without packets for this long of capture time is parked: its state goes to a
/// [`Spill`] file until its next packet, if any, brings it back. Captures of busy nodes hold many
/// connections that open, do little and outlive the capture; parked, each costs a table entry.
/// Two minutes: longer than gRPC's usual keepalive intervals (a pinged connection stays here),
/// and short beside the idle timeouts it is about (which are minutes to days).
pub const PARK_AFTER_NS: i64 = 120_000_000_000;

/// How often (capture time) the table is searched for connections to park.
const SWEEP_NS: i64 = 10_000_000_000;

/// Where the analyzer hands the HTTP/2 connections it is done with, one at a time, as they end:
/// what is kept of them is the sink's choice.
pub trait Sink {
    /// `order` is the number of the packet that opened the connection: connections are reported
    /// in that order.
    fn ended(&mut self, order: u64, tl: Timeline);

    /// Whether connections may be handed over ([`Sink::ended`]) as they are parked, before
    /// they are known to be over: a later packet may revive them ([`Sink::revived`]). Most parked
    /// connections never see another packet: ended then, they need not be read back at the end
    /// of the run. Not for a sink whose timelines are read while the run goes on
    /// ([`Analyzer::watch`]).
    fn ends_parked(&self) -> bool {
        false
    }

    /// The connection handed over as it was parked had another packet: what was kept of it is
    /// forgotten, and it will be handed over again.
    fn revived(&mut self, _order: u64) {}
}

/// Keeps every timeline whole (tests, fuzzing, findings printed while a capture runs).
impl Sink for Vec<(u64, Timeline)> {
    fn ended(&mut self, order: u64, tl: Timeline) {
        self.push((order, tl));
    }
}

#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `--decode-as`: ports on which HTTP/2 is assumed.
    pub decode_as: Vec<u16>,
    /// TLS secrets: `--keylog` and the capture's Decryption Secrets Blocks, shared by all threads.
    pub keys: SharedKeys,
    /// Quiet time after which a connection is parked ([`PARK_AFTER_NS`] when `None`; tests park
    /// every connection after each of its packets with `Some(0)`).
    pub park_after_ns: Option<i64>,
}

/// Counts over the whole input.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    /// Packets whose timestamp is earlier than the one before.
    pub time_went_backwards: u64,
    pub tcp_packets: u64,
    pub not_tcp: u64,
    pub malformed: u64,
    pub fragments: u64,
    pub unsupported_link: u64,
    pub tcp_connections: u64,
    pub other_connections: u64,
    pub tls_connections: u64,
    /// TLS connections carrying HTTP/2 whose records were decrypted, and those read without keys.
    pub tls_decrypted: u64,
    pub tls_without_keys: u64,
    /// Connections not followed because the flow table was full (limit `max_flows`).
    pub flows_refused: u64,
    /// Parked connections that could not be read back (the temporary file failed): their
    /// packets after it start new connections.
    pub parked_lost: u64,
}

/// The state a connection needs only while bytes may still arrive: reassembly and HTTP/2 parsing.
/// Dropped when the connection ends, so that a long capture keeps only timelines.
#[derive(Serialize, Deserialize)]
struct Live {
    tcp: [Reassembler; 2],
    session: Session,
    /// Once the connection is known to be TLS: the TLS stage, which feeds its own HTTP/2 session.
    tls: Option<Box<TlsConn>>,
}

/// Hands reassembled bytes to the next stage: HTTP/2 detection, or TLS once it was recognised.
fn route(
    session: &mut Session,
    tls: &mut Option<Box<TlsConn>>,
    dir: Dir,
    c: Chunk<'_>,
    tl: &mut Timeline,
    keys: &SharedKeys,
) {
    if let Some(t) = tls {
        return t.chunk(dir, c, tl, keys);
    }
    session.chunk(dir, c, tl);
    if session.proto == Proto::Tls {
        let mut t = Box::new(TlsConn::new(session.from_start()));
        for (i, segments) in session.take_undecided().into_iter().enumerate() {
            let d = if i == 0 { Dir::AtoB } else { Dir::BtoA };
            for (ts, bytes) in segments {
                t.chunk(d, Chunk::Data { ts, bytes: &bytes }, tl, keys);
            }
        }
        *tls = Some(t);
    }
}

impl Live {
    fn wants_bytes(&self) -> bool {
        match &self.tls {
            Some(t) => t.wants_bytes(),
            None => self.session.wants_bytes(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Conn {
    tl: Timeline,
    live: Option<Box<Live>>,
    /// What the connection carried, fixed when `live` is dropped.
    proto: Proto,
    isn: [Option<u32>; 2],
    rst_seen: bool,
    /// Number of the packet that opened it, for stable connection ids.
    order: u64,
    /// Waiting in [`Analyzer::closed`] to leave the flow table.
    queued: bool,
}

impl Conn {
    fn new(seg: &Segment<'_>, ts: Ts, cfg: &Config, order: u64) -> Conn {
        let decode_as = cfg
            .decode_as
            .iter()
            .any(|&p| p == seg.src.port() || p == seg.dst.port());
        Conn {
            tl: Timeline::new(seg.src, seg.dst, ts),
            live: Some(Box::new(Live {
                tcp: Default::default(),
                session: Session::new(seg.flags.syn, decode_as),
                tls: None,
            })),
            proto: Proto::Undecided,
            isn: [None, None],
            rst_seen: false,
            order,
            queued: false,
        }
    }

    fn dir(&self, seg: &Segment<'_>) -> Dir {
        if seg.src == self.tl.a {
            Dir::AtoB
        } else {
            Dir::BtoA
        }
    }

    /// A SYN that starts a new connection on this 4-tuple rather than repeating the old one's.
    fn reused_by(&self, seg: &Segment<'_>) -> bool {
        if !seg.flags.syn || seg.flags.ack {
            return false;
        }
        let dir = self.dir(seg);
        let closed = self.rst_seen || self.tl.sides.iter().all(|s| s.fin.is_some());
        closed || self.isn[dir.index()].is_some_and(|isn| isn != seg.seq)
    }

    fn packet(&mut self, ts: Ts, seg: &Segment<'_>, keys: &SharedKeys) {
        let dir = self.dir(seg);
        let (i, o) = (dir.index(), dir.reverse().index());
        self.tl.packet(ts, dir, seg.payload_len);
        if !seg.flags.rst {
            self.tl.sides[i].note_ttl(seg.ttl);
        }
        let mut seq = seg.seq;
        if seg.flags.syn {
            self.isn[i].get_or_insert(seg.seq);
            if self.tl.sides[i].syn.is_none() {
                self.tl.sides[i].syn = Some(ts);
                self.tl.push(ts, dir, EventKind::Syn { ack: seg.flags.ack });
            }
            let client = if seg.flags.ack { dir.reverse() } else { dir };
            self.tl.client_dir.get_or_insert(client);
            // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
            seq = seq.wrapping_add(1);
        }
        if let Some(live) = &mut self.live {
            let wants = live.wants_bytes();
            let Live { tcp, session, tls } = &mut **live;
            let tl = &mut self.tl;
            if seg.flags.syn {
                tcp[i].syn(seg.seq);
            }
            if seg.flags.ack && wants {
                let other = dir.reverse();
                tcp[o].peer_ack(ts, seg.ack, &mut |c: Chunk<'_>| {
                    route(session, tls, other, c, tl, keys)
                });
            }
            if seg.payload_len > 0 && wants {
                let before = tcp[i].stats.retransmissions;
                tcp[i].segment(
                    ts,
                    seq,
                    seg.payload,
                    seg.payload_len,
                    &mut |c: Chunk<'_>| route(session, tls, dir, c, tl, keys),
                );
                if tcp[i].stats.retransmissions > before {
                    tl.push(ts, dir, EventKind::Retransmission);
                }
            }
        }
        if seg.flags.fin && self.tl.sides[i].fin.is_none() {
            self.tl.sides[i].fin = Some(ts);
            self.tl.push(ts, dir, EventKind::Fin);
        }
        if seg.flags.rst {
            self.rst_seen = true;
            self.tl.push(
                ts,
                dir,
                EventKind::Rst {
                    ttl: seg.ttl,
                    ip_id: seg.ip_id,
                    window: seg.window,
                },
            );
        }
        // Over: reset, or closed both ways with nothing left to reassemble; or carrying something
        // that is not parsed. Its parsing state is no longer needed.
        if let Some(live) = &self.live {
            let fins = || self.tl.sides.iter().all(|s| s.fin.is_some());
            let drained = || !live.tcp.iter().any(|t| t.has_pending());
            if self.rst_seen || !live.wants_bytes() || (fins() && drained()) {
                self.end(keys);
            }
        }
    }

    /// Flushes and drops the parsing state, keeping what it learnt in the timeline.
    fn end(&mut self, keys: &SharedKeys) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        let Live { tcp, session, tls } = &mut *live;
        let tl = &mut self.tl;
        let end = tl.last;
        for dir in [Dir::AtoB, Dir::BtoA] {
            tcp[dir.index()].flush(end, &mut |c: Chunk<'_>| {
                route(session, tls, dir, c, tl, keys)
            });
        }
        session.finish(end, tl);
        if let Some(t) = tls {
            t.finish(end, tl);
        }
        for dir in [Dir::AtoB, Dir::BtoA] {
            let st = tcp[dir.index()].stats;
            tl.sides[dir.index()].retransmissions = st.retransmissions;
            tl.sides[dir.index()].gaps = st.gaps;
            for (name, hits) in [
                ("max_out_of_order_bytes", st.limit_hits),
                ("max_out_of_order_segments", st.segment_limit_hits),
            ] {
                if hits > 0 {
                    tl.push(
                        end,
                        dir,
                        EventKind::Limit {
                            name: name.into(),
                            detail: format!(
                                "{hits} holes declared lost to bound buffered out-of-order data"
                            ),
                        },
                    );
                }
            }
        }
        self.proto = match tls {
            Some(t) => t.proto(),
            None => session.proto,
        };
        // Kept until the end of the run: give back what doubling growth left unused.
        tl.events.shrink_to_fit();
        tl.transport_idle.shrink_to_fit();
        tl.stream_idle.shrink_to_fit();
    }

    /// Whether its state can be parked: written down and read back whole.
    fn parkable(&self) -> bool {
        let tls = |l: &Live| l.tls.as_ref().is_none_or(|t| t.parkable());
        !self.queued && self.live.as_deref().is_none_or(tls)
    }

    /// Nothing more is expected of it: reset or closed both ways, with nothing left to parse; or
    /// not HTTP/2 and no longer parsed (what it carried is settled).
    fn closed(&self) -> bool {
        let over = self.rst_seen || self.tl.sides.iter().all(|s| s.fin.is_some());
        self.live.is_none() && (over || !matches!(self.proto, Proto::Http2(_)))
    }

    /// The connection is over (or the capture is): decide roles, and hand back its timeline when it
    /// carried HTTP/2; and what it adds to the counts.
    fn finish(mut self: Box<Self>, cfg: &Config) -> (Tally, Option<(u64, Timeline)>) {
        self.end(&cfg.keys);
        self.tl.finish();
        match self.proto {
            Proto::Http2(d) => {
                let tally = Tally::Http2 {
                    tls: self
                        .tl
                        .tls
                        .then_some(d != crate::timeline::Detection::TlsAlpn),
                };
                resolve_roles(&mut self.tl, cfg);
                let Conn { order, tl, .. } = *self;
                (tally, Some((order, tl)))
            }
            Proto::Tls => (Tally::Tls, None),
            _ => (Tally::Other, None),
        }
    }

    /// Whether finishing it now gives what finishing it at the end of the run would, when no
    /// packet comes in between: nothing waits in reassembly, where keys read later in the run
    /// could decrypt it.
    fn ends_alike_later(&self) -> bool {
        self.live
            .as_deref()
            .is_none_or(|l| !l.tcp.iter().any(|t| t.has_pending()))
    }
}

/// What a finished connection adds to the counts ([`Stats`]).
#[derive(Clone, Copy, Debug)]
enum Tally {
    /// HTTP/2; over TLS: whether its records were decrypted.
    Http2 {
        tls: Option<bool>,
    },
    Tls,
    Other,
}

impl Tally {
    fn count(self, stats: &mut Stats) {
        stats.tcp_connections += 1;
        match self {
            Tally::Http2 { tls: None } => {}
            Tally::Http2 {
                tls: Some(decrypted),
            } => {
                stats.tls_connections += 1;
                if decrypted {
                    stats.tls_decrypted += 1;
                } else {
                    stats.tls_without_keys += 1;
                }
            }
            Tally::Tls => stats.tls_connections += 1,
            Tally::Other => stats.other_connections += 1,
        }
    }
}

/// When neither a SYN nor a preface said who the client is: the side that sent requests, else the
/// side not on a `--decode-as` port, else the side with the higher (ephemeral) port.
fn resolve_roles(tl: &mut Timeline, cfg: &Config) {
    if tl.client_dir.is_some() {
        return;
    }
    let requester = tl
        .streams
        .values()
        .find(|s| s.http_method.is_some() || s.path.is_some())
        .and_then(|s| s.opened_by)
        .or_else(|| {
            tl.streams
                .values()
                .find(|s| s.id % 2 == 1)
                .and_then(|s| s.opened_by)
        });
    let by_port = if cfg.decode_as.contains(&tl.b.port()) && !cfg.decode_as.contains(&tl.a.port()) {
        Some(Dir::AtoB)
    } else if cfg.decode_as.contains(&tl.a.port()) && !cfg.decode_as.contains(&tl.b.port()) {
        Some(Dir::BtoA)
    } else {
        None
    };
    let ephemeral = if tl.a.port() >= tl.b.port() {
        Dir::AtoB
    } else {
        Dir::BtoA
    };
    tl.client_dir = Some(requester.or(by_port).unwrap_or(ephemeral));
}

pub struct Analyzer<S: Sink = Vec<(u64, Timeline)>> {
    cfg: Config,
    /// Boxed: the table rehashes as it grows, and should move pointers, not timelines.
    flows: FlowTable<Box<Conn>>,
    /// Closed connections by the time of their last packet (when queued), oldest first: they
    /// leave the table [`LINGER_NS`] after it.
    closed: VecDeque<(Ts, FlowKey)>,
    /// Quiet connections written to `spill` (not in `flows`, but counted in its limit), with
    /// their order; and, for those handed over to the sink as they were parked
    /// ([`Sink::ends_parked`]), what they add to the counts if no packet revives them.
    parked: FlowMap<Parked>,
    /// Where connections are parked; none when no temporary file could be made.
    spill: Option<Spill>,
    /// Capture time of the next search for connections to park, and packets until it may run.
    next_sweep: Option<Ts>,
    sweep_wait: usize,
    /// A connection is serialised here before it goes to `spill`.
    scratch: Vec<u8>,
    sink: S,
    pub stats: Stats,
}

/// A parked connection: see [`Analyzer::park`].
struct Parked {
    order: u64,
    at: Spilled,
    ended: Option<Tally>,
}

impl Stats {
    /// Counts a packet and decodes its TCP segment, when it carries one.
    pub fn packet<'a>(&mut self, p: &Packet<'a>) -> Option<Segment<'a>> {
        self.packets += 1;
        self.bytes += p.data.len() as u64;
        self.first_ts.get_or_insert(p.ts);
        match self.last_ts {
            Some(last) if p.ts < last => self.time_went_backwards += 1,
            _ => self.last_ts = Some(p.ts),
        }
        match wire::decode(p) {
            Ok(seg) => Some(seg),
            Err(skip) => {
                match skip {
                    Skip::NotTcp => self.not_tcp += 1,
                    Skip::Malformed => self.malformed += 1,
                    Skip::Fragment => self.fragments += 1,
                    Skip::UnsupportedLink => self.unsupported_link += 1,
                }
                None
            }
        }
    }

    /// Adds the counts of another part of the same input (see [`shards`]).
    fn merge(&mut self, o: &Stats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.first_ts = self.first_ts.into_iter().chain(o.first_ts).min();
        self.last_ts = self.last_ts.into_iter().chain(o.last_ts).max();
        self.time_went_backwards += o.time_went_backwards;
        self.tcp_packets += o.tcp_packets;
        self.not_tcp += o.not_tcp;
        self.malformed += o.malformed;
        self.fragments += o.fragments;
        self.unsupported_link += o.unsupported_link;
        self.tcp_connections += o.tcp_connections;
        self.other_connections += o.other_connections;
        self.tls_connections += o.tls_connections;
        self.tls_decrypted += o.tls_decrypted;
        self.tls_without_keys += o.tls_without_keys;
        self.flows_refused += o.flows_refused;
        self.parked_lost += o.parked_lost;
    }
}

impl Analyzer {
    /// An analyzer that keeps every HTTP/2 timeline whole, for [`Analyzer::finish`].
    pub fn new(cfg: Config) -> Analyzer {
        Analyzer::with_sink(cfg, MAX_FLOWS, Vec::new())
    }

    /// Ends the run: every connection still open is finished; HTTP/2 timelines in order of their
    /// first packet.
    pub fn finish(self) -> (Vec<Timeline>, Stats) {
        let (mut done, stats) = self.finish_into();
        done.sort_unstable_by_key(|(order, _)| *order);
        (done.into_iter().map(|(_, tl)| tl).collect(), stats)
    }

    /// Hands every event recorded since the last call, with its connection's timeline, to `f`
    /// (for findings printed while a capture is still running).
    pub fn watch(&mut self, mut f: impl FnMut(&Timeline, &crate::timeline::Event)) {
        let mut visit = |tl: &mut Timeline| {
            let from = tl.watched.min(tl.events.len());
            for e in &tl.events[from..] {
                f(tl, e);
            }
            tl.watched = tl.events.len();
        };
        for conn in self.flows.values_mut() {
            visit(&mut conn.tl);
        }
        for (_, tl) in &mut self.sink {
            visit(tl);
        }
    }
}

impl<S: Sink> Analyzer<S> {
    /// An analyzer that follows at most `max_flows` connections at once and hands each HTTP/2
    /// connection to `sink` once it is over.
    pub fn with_sink(cfg: Config, max_flows: usize, sink: S) -> Analyzer<S> {
        Analyzer {
            cfg,
            flows: FlowTable::new(max_flows),
            closed: VecDeque::new(),
            parked: FlowMap::default(),
            spill: Spill::new(),
            next_sweep: None,
            sweep_wait: 0,
            scratch: Vec::new(),
            sink,
            stats: Stats::default(),
        }
    }

    /// Adds key log lines (NSS format), from a file or a Decryption Secrets Block.
    pub fn add_keylog(&mut self, text: &[u8]) {
        crate::tls::keylog::add_shared(&self.cfg.keys, text);
    }

    pub fn packet(&mut self, p: &Packet<'_>) {
        if let Some(seg) = self.stats.packet(p) {
            self.segment(self.stats.packets, p.ts, &seg);
        }
    }

    /// A TCP segment from packet number `n` of the input (1-based; numbers only need to grow):
    /// connections are reported in the order of the packets that opened them.
    pub fn segment(&mut self, n: u64, ts: Ts, seg: &Segment<'_>) {
        self.stats.tcp_packets += 1;
        let key = FlowKey::new(seg.src, seg.dst);
        self.expire(ts);
        self.sweep(ts);
        // The common case, a packet of a known connection, costs one lookup.
        let mut known = self.known(key, ts, seg);
        if known.is_none() && self.unpark(key) {
            known = self.known(key, ts, seg);
        }
        match known {
            Some(true) => return,
            Some(false) => return self.queue(key),
            None => {}
        }
        if let Some(old) = self.flows.remove(&key) {
            self.hand_over(old);
        }
        let conn = Box::new(Conn::new(seg, ts, &self.cfg, n));
        match self.flows.insert(key, conn, self.parked.len()) {
            Some(conn) => {
                conn.packet(ts, seg, &self.cfg.keys);
                if !conn.closed() {
                    return;
                }
            }
            None => {
                self.stats.flows_refused = self.flows.refused;
                return;
            }
        }
        self.queue(key);
    }

    /// Gives the segment to the connection on `key` when it is in the table and the segment does
    /// not open a new one; then whether the connection is to stay (not newly closed).
    fn known(&mut self, key: FlowKey, ts: Ts, seg: &Segment<'_>) -> Option<bool> {
        match self.flows.get_mut(&key) {
            Some(conn) if conn.reused_by(seg) => None,
            Some(conn) => {
                conn.packet(ts, seg, &self.cfg.keys);
                Some(conn.queued || !conn.closed())
            }
            None => None,
        }
    }

    /// Parks the connections quiet for the park time, every [`SWEEP_NS`] of capture time and no
    /// more often than one packet in eight per connection followed (a sweep reads them all).
    fn sweep(&mut self, now: Ts) {
        if !self.spill.as_ref().is_some_and(Spill::takes_more) {
            return;
        }
        self.sweep_wait = self.sweep_wait.saturating_sub(1);
        let park_after = self.cfg.park_after_ns.unwrap_or(PARK_AFTER_NS);
        match self.next_sweep {
            Some(next) if now < next || self.sweep_wait > 0 => return,
            _ => {}
        }
        self.next_sweep = Some(Ts(now.0.saturating_add(SWEEP_NS.min(park_after))));
        self.sweep_wait = self.flows.len() / 8;
        let quiet: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, c)| c.parkable() && now.ns_since(c.tl.last) >= park_after)
            .map(|(k, _)| *k)
            .collect();
        for key in quiet {
            if let Some(conn) = self.flows.remove(&key) {
                self.park(key, conn);
            }
        }
    }

    /// Writes `conn` to the spill file, and hands it over to the sink at once when the sink
    /// takes parked connections ([`Sink::ends_parked`]) and ending it now is ending it for good
    /// unless a packet comes: what is written is then only read back if one does.
    fn park(&mut self, key: FlowKey, conn: Box<Conn>) {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let at = match postcard::to_extend(&*conn, bytes) {
            Ok(bytes) => {
                let at = self.spill.as_mut().and_then(|s| s.put(&bytes));
                self.scratch = bytes;
                at
            }
            Err(_) => None,
        };
        let Some(at) = at else {
            // The file takes no more (it keeps what it holds, for those parked already): this
            // connection, and the quiet ones after it, stay in memory.
            self.flows.insert(key, conn, self.parked.len());
            return;
        };
        let order = conn.order;
        let ended = (self.sink.ends_parked() && conn.ends_alike_later()).then(|| {
            let (tally, ended) = conn.finish(&self.cfg);
            if let Some((order, tl)) = ended {
                self.sink.ended(order, tl);
            }
            tally
        });
        self.parked.insert(key, Parked { order, at, ended });
    }

    /// Brings the connection parked on `key` back into the table, if there is one. If it was
    /// handed over as it was parked, the sink forgets it; unless it cannot be read back: then
    /// what the sink has is all there is of it.
    fn unpark(&mut self, key: FlowKey) -> bool {
        let Some(parked) = self.parked.remove(&key) else {
            return false;
        };
        let conn = self
            .spill
            .as_ref()
            .and_then(|s| s.get(parked.at))
            .and_then(|bytes| postcard::from_bytes::<Conn>(&bytes).ok());
        match conn {
            Some(conn) => {
                // Only HTTP/2 connections reach the sink.
                if let Some(Tally::Http2 { .. }) = parked.ended {
                    self.sink.revived(parked.order);
                }
                self.flows.insert(key, Box::new(conn), self.parked.len());
                true
            }
            None => {
                if let Some(tally) = parked.ended {
                    tally.count(&mut self.stats);
                }
                self.stats.parked_lost += 1;
                false
            }
        }
    }

    /// The connection on `key` just closed: it leaves the table once it stayed quiet a while.
    fn queue(&mut self, key: FlowKey) {
        if let Some(conn) = self.flows.get_mut(&key) {
            conn.queued = true;
            self.closed.push_back((conn.tl.last, key));
        }
    }

    /// Connections closed for [`LINGER_NS`] of capture time leave the flow table for the sink.
    fn expire(&mut self, now: Ts) {
        while let Some(&(last, key)) = self.closed.front() {
            if now.ns_since(last) < LINGER_NS {
                return;
            }
            self.closed.pop_front();
            let Some(conn) = self.flows.get_mut(&key) else {
                continue;
            };
            // A new connection on the same 4-tuple is queued when it closes.
            if !conn.queued || !conn.closed() {
                continue;
            }
            // A packet since it was queued: wait from that one.
            if now.ns_since(conn.tl.last) < LINGER_NS {
                self.closed.push_back((conn.tl.last, key));
                continue;
            }
            if let Some(conn) = self.flows.remove(&key) {
                self.hand_over(conn);
            }
        }
    }

    fn hand_over(&mut self, conn: Box<Conn>) {
        let (tally, ended) = conn.finish(&self.cfg);
        tally.count(&mut self.stats);
        if let Some((order, tl)) = ended {
            self.sink.ended(order, tl);
        }
    }

    /// Connections followed right now.
    pub fn live_connections(&self) -> usize {
        self.flows.len() + self.parked.len()
    }

    /// Ends the run: every connection still open is finished and handed to the sink, those in the
    /// table then those parked, each in the order of their first packet.
    pub fn finish_into(mut self) -> (S, Stats) {
        let mut open: Vec<Box<Conn>> = self.flows.drain().map(|(_, c)| c).collect();
        open.sort_unstable_by_key(|c| c.order);
        for conn in open {
            self.hand_over(conn);
        }
        // Those handed over as they were parked are over now.
        let mut parked: Vec<(u64, FlowKey)> = Vec::new();
        for (key, p) in &self.parked {
            match p.ended {
                Some(tally) => tally.count(&mut self.stats),
                None => parked.push((p.order, *key)),
            }
        }
        // The others one at a time, so that they are never all in memory again; in order, so
        // that their report forms are too (see report/store.rs).
        parked.sort_unstable_by_key(|p| p.0);
        for (_, key) in parked {
            if self.unpark(key) {
                if let Some(conn) = self.flows.remove(&key) {
                    self.hand_over(conn);
                }
            }
        }
        (self.sink, self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;

    /// A sink that takes connections as they are parked, and counts how many it took (as they
    /// were parked or when they ended) and how many it was told to forget.
    #[derive(Default)]
    struct Early {
        ended: Vec<(u64, Timeline)>,
        taken: usize,
        revived: usize,
    }

    impl Sink for Early {
        fn ended(&mut self, order: u64, tl: Timeline) {
            self.taken += 1;
            self.ended.push((order, tl));
        }

        fn ends_parked(&self) -> bool {
            true
        }

        fn revived(&mut self, order: u64) {
            self.revived += 1;
            let before = self.ended.len();
            self.ended.retain(|(o, _)| *o != order);
            assert_eq!(
                self.ended.len() + 1,
                before,
                "revived {order} was not ended once"
            );
        }
    }

    const CAPTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures/server-max-idle/capture.pcap"
    );

    /// The timelines of a capture, parking every connection after each of its packets when
    /// `park` is set; the spill file is full (a write fails) from packet 100 on when `fail`.
    fn timelines(park: bool, fail: bool) -> (String, usize) {
        let mut reader = CaptureReader::open(CAPTURE).unwrap();
        let cfg = Config {
            park_after_ns: park.then_some(0),
            ..Config::default()
        };
        let mut analyzer = Analyzer::new(cfg);
        let (mut n, mut parked_at_failure) = (0, 0);
        while let Some(p) = reader.next_packet() {
            analyzer.packet(&p);
            n += 1;
            if fail && n == 100 {
                parked_at_failure = analyzer.parked.len();
                analyzer.spill.as_mut().unwrap().fill();
            }
        }
        let (tls, stats) = analyzer.finish();
        assert_eq!(stats.parked_lost, 0);
        (format!("{tls:?}"), parked_at_failure)
    }

    #[test]
    fn connections_ended_as_they_are_parked_end_as_they_would_have() {
        let mut reader = CaptureReader::open(CAPTURE).unwrap();
        let cfg = Config {
            park_after_ns: Some(0),
            ..Config::default()
        };
        let mut analyzer = Analyzer::with_sink(cfg, MAX_FLOWS, Early::default());
        while let Some(p) = reader.next_packet() {
            analyzer.packet(&p);
        }
        let (mut sink, stats) = analyzer.finish_into();
        // Parked after every packet: taken and revived many times (each revival of one entry,
        // checked in `revived`), and what stands is one entry per connection.
        assert!(sink.revived > 0 && sink.taken > sink.revived);
        sink.ended.sort_unstable_by_key(|(order, _)| *order);
        let tls: Vec<_> = sink.ended.into_iter().map(|(_, tl)| tl).collect();
        let (kept, _) = timelines(false, false);
        assert!(
            format!("{tls:?}") == kept,
            "ending parked connections early changed the timelines"
        );
        let mut reader = CaptureReader::open(CAPTURE).unwrap();
        let mut analyzer = Analyzer::new(Config::default());
        while let Some(p) = reader.next_packet() {
            analyzer.packet(&p);
        }
        let (_, plain) = analyzer.finish();
        assert_eq!(format!("{stats:?}"), format!("{plain:?}"), "counts");
    }

    #[test]
    fn a_full_spill_file_keeps_what_it_holds_and_parks_no_more() {
        let (kept, _) = timelines(false, false);
        let (parked, _) = timelines(true, false);
        assert!(kept == parked, "parking changed the timelines");
        let (failed, parked_at_failure) = timelines(true, true);
        assert!(
            parked_at_failure > 0,
            "nothing was parked when the file failed"
        );
        assert!(kept == failed, "a failed spill file changed the timelines");
    }
}
