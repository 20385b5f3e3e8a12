//! The pipeline for one run: packets in (from files or, later, an interface), connection timelines
//! out. It owns the flow table and moves each packet through wire → tcp → http2 → timeline.

pub mod shards;

use crate::capture::{Packet, Ts};
use crate::http2::{Proto, Session};
use crate::tcp::{Chunk, Dir, FlowKey, FlowTable, Reassembler, MAX_FLOWS};
use crate::timeline::{EventKind, Timeline};
use crate::tls::{SharedKeys, TlsConn};
use crate::wire::{self, Segment, Skip};

#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `--decode-as`: ports on which HTTP/2 is assumed.
    pub decode_as: Vec<u16>,
    /// TLS secrets: `--keylog` and the capture's Decryption Secrets Blocks, shared by all threads.
    pub keys: SharedKeys,
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
}

/// The state a connection needs only while bytes may still arrive: reassembly and HTTP/2 parsing.
/// Dropped when the connection ends, so that a long capture keeps only timelines.
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

struct Conn {
    tl: Timeline,
    live: Option<Box<Live>>,
    /// What the connection carried, fixed when `live` is dropped.
    proto: Proto,
    isn: [Option<u32>; 2],
    rst_seen: bool,
    /// Number of the packet that opened it, for stable connection ids.
    order: u64,
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
            let fins = self.tl.sides.iter().all(|s| s.fin.is_some());
            let drained = !live.tcp.iter().any(|t| t.has_pending());
            if self.rst_seen || (fins && drained) || !live.wants_bytes() {
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
                            name,
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

    /// The connection is over (or the capture is): decide roles, and hand back its timeline when it
    /// carried HTTP/2.
    fn finish(mut self: Box<Self>, cfg: &Config, stats: &mut Stats) -> Option<(u64, Timeline)> {
        self.end(&cfg.keys);
        self.tl.finish();
        stats.tcp_connections += 1;
        match self.proto {
            Proto::Http2(d) => {
                if self.tl.tls {
                    stats.tls_connections += 1;
                    if d == crate::timeline::Detection::TlsAlpn {
                        stats.tls_without_keys += 1;
                    } else {
                        stats.tls_decrypted += 1;
                    }
                }
                resolve_roles(&mut self.tl, cfg);
                let Conn { order, tl, .. } = *self;
                Some((order, tl))
            }
            Proto::Tls => {
                stats.tls_connections += 1;
                None
            }
            _ => {
                stats.other_connections += 1;
                None
            }
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

pub struct Analyzer {
    cfg: Config,
    /// Boxed: the table rehashes as it grows, and should move pointers, not timelines.
    flows: FlowTable<Box<Conn>>,
    /// HTTP/2 timelines of connections whose 4-tuple was reused (boxed: few, and moved twice).
    done: Vec<(u64, Box<Timeline>)>,
    pub stats: Stats,
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

    /// Adds the counts of another part of the same input (see [`Analyzer::finish_shards`]).
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
    }
}

impl Analyzer {
    pub fn new(cfg: Config) -> Analyzer {
        Analyzer::with_max_flows(cfg, MAX_FLOWS)
    }

    /// An analyzer that follows at most `max_flows` connections at once (one of several shards).
    pub fn with_max_flows(cfg: Config, max_flows: usize) -> Analyzer {
        Analyzer {
            cfg,
            flows: FlowTable::new(max_flows),
            done: Vec::new(),
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
        // The common case, a packet of a known connection, costs one lookup.
        if let Some(conn) = self.flows.get_mut(&key) {
            if !conn.reused_by(seg) {
                conn.packet(ts, seg, &self.cfg.keys);
                return;
            }
            if let Some(old) = self.flows.remove(&key) {
                if let Some((order, tl)) = old.finish(&self.cfg, &mut self.stats) {
                    self.done.push((order, Box::new(tl)));
                }
            }
        }
        let conn = Box::new(Conn::new(seg, ts, &self.cfg, n));
        match self.flows.insert(key, conn) {
            Some(conn) => conn.packet(ts, seg, &self.cfg.keys),
            None => self.stats.flows_refused = self.flows.refused,
        }
    }

    /// Connections followed right now.
    pub fn live_connections(&self) -> usize {
        self.flows.len()
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
        for (_, tl) in &mut self.done {
            visit(tl);
        }
    }

    /// Ends the run: every connection still open is finished; HTTP/2 timelines in order of their
    /// first packet.
    pub fn finish(self) -> (Vec<Timeline>, Stats) {
        Analyzer::finish_shards(vec![self], Stats::default())
    }

    /// Ends a run whose connections were split over several analyzers by 4-tuple, each fed its
    /// connections' segments in input order, numbered across the whole input. `stats` holds what
    /// was counted outside them (packets that were no segment of theirs).
    pub fn finish_shards(shards: Vec<Analyzer>, mut stats: Stats) -> (Vec<Timeline>, Stats) {
        // Pointers are sorted, then each connection is finished straight into the result and
        // freed: tens of thousands of timelines are never held twice.
        enum Ended {
            Open(Box<Conn>),
            Done(Box<Timeline>),
        }
        let Some(cfg) = shards.first().map(|a| a.cfg.clone()) else {
            return (Vec::new(), stats);
        };
        let n: usize = shards.iter().map(|a| a.flows.len() + a.done.len()).sum();
        let mut all: Vec<(u64, Ended)> = Vec::with_capacity(n);
        for mut a in shards {
            stats.merge(&a.stats);
            all.extend(a.flows.drain().map(|(_, c)| (c.order, Ended::Open(c))));
            all.extend(a.done.drain(..).map(|(o, tl)| (o, Ended::Done(tl))));
        }
        // Orders are unique: numbers of the packets that opened the connections.
        all.sort_unstable_by_key(|(order, _)| *order);
        // Parsing state goes first, before the result is allocated, and what each connection
        // carried is settled: the result is reserved for the HTTP/2 ones only (13% fewer
        // timelines of 680 bytes on the bench capture).
        let mut http2 = 0;
        for (_, ended) in &mut all {
            match ended {
                Ended::Open(conn) => {
                    conn.end(&cfg.keys);
                    http2 += matches!(conn.proto, Proto::Http2(_)) as usize;
                }
                Ended::Done(_) => http2 += 1,
            }
        }
        let mut timelines = Vec::with_capacity(http2);
        for (_, ended) in all {
            match ended {
                Ended::Open(conn) => {
                    if let Some((_, tl)) = conn.finish(&cfg, &mut stats) {
                        timelines.push(tl);
                    }
                }
                Ended::Done(tl) => timelines.push(*tl),
            }
        }
        (timelines, stats)
    }
}
