//! The pipeline for one run: packets in (from files or, later, an interface), connection timelines
//! out. It owns the flow table and moves each packet through wire → tcp → http2 → timeline.

use crate::capture::{Packet, Ts};
use crate::http2::{Proto, Session};
use crate::tcp::{Chunk, Dir, FlowKey, FlowTable, Reassembler, MAX_FLOWS};
use crate::timeline::{EventKind, Timeline};
use crate::wire::{self, Segment, Skip};

#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `--decode-as`: ports on which HTTP/2 is assumed.
    pub decode_as: Vec<u16>,
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
    /// Connections not followed because the flow table was full (limit `max_flows`).
    pub flows_refused: u64,
}

/// The state a connection needs only while bytes may still arrive: reassembly and HTTP/2 parsing.
/// Dropped when the connection ends, so that a long capture keeps only timelines.
struct Live {
    tcp: [Reassembler; 2],
    session: Session,
}

struct Conn {
    tl: Timeline,
    live: Option<Box<Live>>,
    /// What the connection carried, fixed when `live` is dropped.
    proto: Proto,
    isn: [Option<u32>; 2],
    rst_seen: bool,
    /// Creation order, for stable connection ids.
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

    fn packet(&mut self, ts: Ts, seg: &Segment<'_>) {
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
            let Live { tcp, session } = &mut **live;
            let tl = &mut self.tl;
            if seg.flags.syn {
                tcp[i].syn(seg.seq);
            }
            if seg.flags.ack && session.wants_bytes() {
                let other = dir.reverse();
                tcp[o].peer_ack(ts, seg.ack, &mut |c: Chunk<'_>| session.chunk(other, c, tl));
            }
            if seg.payload_len > 0 && session.wants_bytes() {
                let before = tcp[i].stats.retransmissions;
                tcp[i].segment(
                    ts,
                    seq,
                    seg.payload,
                    seg.payload_len,
                    &mut |c: Chunk<'_>| session.chunk(dir, c, tl),
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
            if self.rst_seen || (fins && drained) || !live.session.wants_bytes() {
                self.end();
            }
        }
    }

    /// Flushes and drops the parsing state, keeping what it learnt in the timeline.
    fn end(&mut self) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        let Live { tcp, session } = &mut *live;
        let tl = &mut self.tl;
        let end = tl.last;
        for dir in [Dir::AtoB, Dir::BtoA] {
            tcp[dir.index()].flush(end, &mut |c: Chunk<'_>| session.chunk(dir, c, tl));
        }
        session.finish(end, tl);
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
        self.proto = session.proto;
    }

    /// The connection is over (or the capture is): decide roles, and hand back its timeline when it
    /// carried HTTP/2.
    fn finish(mut self: Box<Self>, cfg: &Config, stats: &mut Stats) -> Option<(u64, Timeline)> {
        self.end();
        self.tl.finish();
        stats.tcp_connections += 1;
        match self.proto {
            Proto::Http2(_) => {
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
    done: Vec<(u64, Timeline)>,
    created: u64,
    pub stats: Stats,
}

impl Analyzer {
    pub fn new(cfg: Config) -> Analyzer {
        Analyzer {
            cfg,
            flows: FlowTable::new(MAX_FLOWS),
            done: Vec::new(),
            created: 0,
            stats: Stats::default(),
        }
    }

    pub fn packet(&mut self, p: &Packet<'_>) {
        let st = &mut self.stats;
        st.packets += 1;
        st.bytes += p.data.len() as u64;
        st.first_ts.get_or_insert(p.ts);
        match st.last_ts {
            Some(last) if p.ts < last => st.time_went_backwards += 1,
            _ => st.last_ts = Some(p.ts),
        }
        let seg = match wire::decode(p) {
            Ok(seg) => seg,
            Err(skip) => {
                match skip {
                    Skip::NotTcp => st.not_tcp += 1,
                    Skip::Malformed => st.malformed += 1,
                    Skip::Fragment => st.fragments += 1,
                    Skip::UnsupportedLink => st.unsupported_link += 1,
                }
                return;
            }
        };
        st.tcp_packets += 1;
        let key = FlowKey::new(seg.src, seg.dst);
        if let Some(conn) = self.flows.get_mut(&key) {
            if conn.reused_by(&seg) {
                if let Some(old) = self.flows.remove(&key) {
                    if let Some(done) = old.finish(&self.cfg, &mut self.stats) {
                        self.done.push(done);
                    }
                }
            }
        }
        let conn = match self.flows.get_mut(&key) {
            Some(c) => c,
            None => {
                let conn = Box::new(Conn::new(&seg, p.ts, &self.cfg, self.created));
                self.created += 1;
                match self.flows.insert(key, conn) {
                    Some(c) => c,
                    None => {
                        self.stats.flows_refused = self.flows.refused;
                        return;
                    }
                }
            }
        };
        conn.packet(p.ts, &seg);
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
    pub fn finish(mut self) -> (Vec<Timeline>, Stats) {
        let open: Vec<Box<Conn>> = self.flows.drain().map(|(_, c)| c).collect();
        for conn in open {
            if let Some(done) = conn.finish(&self.cfg, &mut self.stats) {
                self.done.push(done);
            }
        }
        self.done.sort_by_key(|(order, _)| *order);
        (
            self.done.into_iter().map(|(_, tl)| tl).collect(),
            self.stats,
        )
    }
}
