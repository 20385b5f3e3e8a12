//! Each rule on small hand-built timelines, ambiguous cases included. Times are seconds from 0;
//! the client is 198.18.0.2:40000 (TTL 64 as seen), the server 198.18.1.2:50051 (TTL 63).

use super::*;
use crate::capture::Ts;
use crate::tcp::Dir;
use crate::timeline::EventKind;

const C: Dir = Dir::AtoB;
const S: Dir = Dir::BtoA;

fn t(s: f64) -> Ts {
    Ts((s * 1e9).round() as i64)
}

struct Tl {
    tl: Timeline,
}

impl Tl {
    fn new(client_port: u16) -> Tl {
        let a = format!("198.18.0.2:{client_port}").parse().unwrap();
        let b = "198.18.1.2:50051".parse().unwrap();
        let mut tl = Timeline::new(a, b, t(0.0));
        tl.client_dir = Some(C);
        tl.http2 = Some(crate::timeline::Detection::Preface);
        let mut me = Tl { tl };
        me = me.pkt(0.0, C).pkt(0.001, S);
        me
    }

    /// A packet with no notable content.
    fn pkt(mut self, at: f64, dir: Dir) -> Tl {
        self.tl.packet(t(at), dir, 10);
        self.tl.sides[dir.index()].note_ttl(if dir == C { 64 } else { 63 });
        self
    }

    /// A packet carrying an event.
    fn ev(mut self, at: f64, dir: Dir, kind: EventKind) -> Tl {
        let rst = matches!(kind, EventKind::Rst { .. });
        self.tl.packet(t(at), dir, 0);
        if !rst {
            self.tl.sides[dir.index()].note_ttl(if dir == C { 64 } else { 63 });
        }
        if matches!(kind, EventKind::Fin) {
            self.tl.sides[dir.index()].fin.get_or_insert(t(at));
        }
        self.tl.push(t(at), dir, kind);
        self
    }

    fn rpc(mut self, open: f64, close: f64) -> Tl {
        let id = self.tl.streams.len() as u32 * 2 + 1;
        self = self.pkt(open, C);
        if let Some(s) = self.tl.stream(id) {
            s.opened = Some(t(open));
            s.opened_by = Some(C);
            s.path = Some("/pkg.Svc/Call".into());
        }
        self.tl.stream_opened(t(open));
        self = self.pkt(close, S);
        if let Some(s) = self.tl.stream(id) {
            s.closed = Some(t(close));
            s.ended = [true, true];
        }
        self.tl.stream_closed(t(close));
        self
    }

    /// A request whose response never comes: the stream stays open.
    fn hanging_rpc(mut self, open: f64) -> Tl {
        let id = self.tl.streams.len() as u32 * 2 + 1;
        self = self.pkt(open, C);
        if let Some(s) = self.tl.stream(id) {
            s.opened = Some(t(open));
            s.opened_by = Some(C);
        }
        self.tl.stream_opened(t(open));
        self
    }

    fn ping(self, at: f64, from: Dir, rtt: f64) -> Tl {
        let opaque = [(at * 10.0) as u8, 1, 2, 3, 4, 5, 6, 7];
        self.ev(at, from, EventKind::Ping { ack: false, opaque })
            .ev(
                at + rtt,
                from.reverse(),
                EventKind::Ping { ack: true, opaque },
            )
    }

    fn done(mut self) -> Timeline {
        self.tl.finish();
        self.tl
    }
}

fn rst(ttl: u8) -> EventKind {
    EventKind::Rst {
        ttl,
        ip_id: Some(0),
        window: 0,
    }
}

fn goaway(last: u32, code: u32, debug: &str) -> EventKind {
    EventKind::Goaway {
        last_stream_id: last,
        error_code: code,
        debug_data: debug.as_bytes().to_vec(),
    }
}

fn one(tl: Timeline) -> (Verdict, Diagnosis) {
    let d = diagnose(&[tl], &Catalogue::builtin());
    (d.verdicts[0].clone(), d)
}

fn cause(v: &Verdict) -> (&'static str, Option<&'static str>) {
    (v.cause.name(), v.killed_by.map(|k| k.name()))
}

#[test]
fn forged_rst_after_idle_is_an_idle_reset() {
    let tl = Tl::new(40000)
        .rpc(0.01, 0.02)
        .pkt(9.0, C)
        .ev(9.0005, S, rst(64))
        .done();
    let (v, d) = one(tl);
    assert_eq!(cause(&v), ("idle_reset", Some("intermediary")));
    assert!((v.idle_before_s.unwrap() - 8.98).abs() < 0.01, "{v:?}");
    assert_eq!(d.forged_rsts[0], vec![(t(9.0005), true)]);
}

#[test]
fn genuine_rst_is_the_peer_going_away() {
    let tl = Tl::new(40000)
        .rpc(0.01, 0.02)
        .pkt(9.0, C)
        .ev(9.0005, S, rst(63))
        .done();
    let (v, d) = one(tl);
    assert_eq!(cause(&v), ("peer_abort", Some("server")));
    assert_eq!(d.forged_rsts[0], vec![(t(9.0005), false)]);
}

#[test]
fn a_rst_with_nothing_to_compare_its_ttl_with_is_taken_as_genuine() {
    // Ambiguous: the capture has no earlier packet from the server, so no TTL to compare.
    let mut tl = Tl::new(40000).done();
    tl.sides[S.index()].ttls.clear();
    tl.push(t(5.0), S, rst(64));
    let (v, _) = one(tl);
    assert_eq!(cause(&v), ("peer_abort", Some("server")));
}

#[test]
fn enhance_your_calm() {
    let tl = Tl::new(40000)
        .ping(1.0, C, 0.001)
        .ping(2.0, C, 0.001)
        .ping(3.0, C, 0.001)
        .ev(3.0, S, goaway(0, 11, "too_many_pings"))
        .done();
    let (v, _) = one(tl);
    assert_eq!(cause(&v), ("too_many_pings", Some("server")));
    assert!(v.confidence > 0.9);
    // h2 also answers floods of resets with ENHANCE_YOUR_CALM: that is not about pings.
    let tl = Tl::new(40000)
        .ev(1.0, S, goaway(0, 11, "too_many_resets"))
        .done();
    assert_eq!(one(tl).0.cause, Cause::Unknown);
}

#[test]
fn max_age_by_debug_data_or_by_the_drain() {
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(5.0, S, goaway(1, 0, "max_age"))
        .done();
    assert_eq!(cause(&one(tl).0), ("max_age_goaway", Some("server")));
    // grpc-go's drain without debug data: GOAWAY 2^31-1, a PING, then the real last stream id.
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(5.0, S, goaway(0x7fff_ffff, 0, ""))
        .ping(5.0001, S, 0.0002)
        .ev(5.001, S, goaway(1, 0, ""))
        .done();
    let v = one(tl).0;
    assert_eq!(cause(&v), ("max_age_goaway", Some("server")));
    assert!(
        v.evidence.iter().any(|e| e.contains("drain")),
        "{:?}",
        v.evidence
    );
}

#[test]
fn goaway_after_stream_idle_with_pings_flowing() {
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ping(1.2, C, 0.001)
        .ping(2.2, C, 0.001)
        .ping(3.2, C, 0.001)
        .ping(4.2, C, 0.001)
        .ev(5.2, S, goaway(1, 0, ""))
        .ev(5.2, S, EventKind::Fin)
        .done();
    let (v, d) = one(tl);
    assert_eq!(cause(&v), ("idle_goaway", Some("server")));
    assert!((v.idle_before_s.unwrap() - 5.0).abs() < 0.01);
    assert!(
        v.evidence.iter().any(|e| e.contains("PINGs flowed")),
        "{:?}",
        v.evidence
    );
    // The same from a server side recognised as nginx: an intermediary did it.
    let mut tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(5.2, S, goaway(1, 0, ""))
        .done();
    tl.events.insert(
        0,
        crate::timeline::Event {
            ts: t(0.001),
            dir: S,
            kind: EventKind::Settings {
                ack: false,
                params: vec![(3, 128), (4, 65536), (5, 16777215)],
            },
            quiet_ns: 0,
        },
    );
    assert_eq!(cause(&one(tl).0), ("idle_goaway", Some("intermediary")));
    let _ = d;
}

#[test]
fn server_max_connection_idle_by_its_debug_data() {
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(6.2, S, goaway(1, 2, "connection idle"))
        .done();
    let (v, d) = one(tl);
    assert_eq!(cause(&v), ("idle_goaway", Some("server")));
    assert_eq!(d.findings[0].id, "max-connection-idle");
    assert_eq!(d.findings[0].severity, Severity::Info);
}

#[test]
fn client_closing() {
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(3.0, C, EventKind::Fin)
        .ev(3.0001, S, EventKind::Fin)
        .done();
    assert_eq!(cause(&one(tl).0), ("graceful_close", Some("client")));
    // With a request still waiting after 3 s of silence: a read timeout.
    let tl = Tl::new(40000)
        .hanging_rpc(0.1)
        .ev(3.1, C, EventKind::Fin)
        .done();
    let v = one(tl).0;
    assert_eq!(cause(&v), ("idle_close", Some("client")));
    assert!((v.idle_before_s.unwrap() - 3.0).abs() < 0.01);
    // A client RST without FIN: it went away abruptly.
    let tl = Tl::new(40000).rpc(0.1, 0.2).ev(0.3, C, rst(64)).done();
    assert_eq!(cause(&one(tl).0), ("peer_abort", Some("client")));
}

#[test]
fn server_fin_without_goaway_alone_is_an_idle_timer() {
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(5.2, S, EventKind::Fin)
        .ev(5.2001, C, EventKind::Fin)
        .done();
    let (v, d) = one(tl);
    assert_eq!(cause(&v), ("idle_close", Some("intermediary")));
    assert_eq!(d.findings[0].id, "idle-timeout");
}

#[test]
fn server_fins_settled_by_the_path() {
    // Two FINs after the same silence: one timer.
    let a = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(5.2, S, EventKind::Fin)
        .done();
    let b = Tl::new(40001)
        .rpc(1.1, 1.2)
        .ev(6.21, S, EventKind::Fin)
        .done();
    let d = diagnose(&[a, b], &Catalogue::builtin());
    assert!(
        d.verdicts.iter().all(|v| v.cause == Cause::IdleClose),
        "{:?}",
        d.verdicts
    );
    // Closed at one moment after scattered silences: the server went away.
    let a = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(3.0, S, EventKind::Fin)
        .done();
    let b = Tl::new(40001)
        .rpc(1.1, 2.5)
        .ev(3.0, S, EventKind::Fin)
        .done();
    let d = diagnose(&[a, b], &Catalogue::builtin());
    assert!(
        d.verdicts
            .iter()
            .all(|v| cause(v) == ("peer_abort", Some("server"))),
        "{:?}",
        d.verdicts
    );
    // A FIN after 3 s while another connection on the path survived 4 s: not an idle timer.
    let a = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(3.2, S, EventKind::Fin)
        .done();
    let b = Tl::new(40001).rpc(0.1, 0.2).rpc(4.2, 4.3).done();
    let d = diagnose(&[a, b], &Catalogue::builtin());
    assert_eq!(cause(&d.verdicts[0]), ("peer_abort", Some("server")));
    assert!(
        d.verdicts[0]
            .evidence
            .iter()
            .any(|e| e.contains("survived a longer silence")),
        "{:?}",
        d.verdicts[0].evidence
    );
}

#[test]
fn blackhole_or_alive() {
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .pkt(9.2, C)
        .ev(9.4, C, EventKind::Retransmission)
        .ev(9.8, C, EventKind::Retransmission)
        .done();
    let v = one(tl).0;
    assert_eq!(cause(&v), ("idle_blackhole", Some("intermediary")));
    assert!((v.idle_before_s.unwrap() - 9.0).abs() < 0.01, "{v:?}");
    // The same silence, but the server answered: alive.
    let tl = Tl::new(40000).rpc(0.1, 0.2).rpc(9.2, 9.3).done();
    let v = one(tl).0;
    assert_eq!(cause(&v), ("alive", None));
    // An unanswered PING after a silence, and nothing else: a black hole too.
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(
            9.2,
            C,
            EventKind::Ping {
                ack: false,
                opaque: [9; 8],
            },
        )
        .pkt(9.4, C)
        .done();
    assert_eq!(cause(&one(tl).0), ("idle_blackhole", Some("intermediary")));
}

#[test]
fn bracket_between_longest_survived_and_shortest_fatal() {
    let dead = |port, gap: f64| {
        Tl::new(port)
            .rpc(0.1, 0.2)
            .pkt(0.2 + gap, C)
            .ev(0.2 + gap + 0.0005, S, rst(64))
            .done()
    };
    let survivor = Tl::new(40009).rpc(0.1, 0.2).rpc(4.2, 4.3).done();
    let d = diagnose(
        &[dead(40000, 6.0), dead(40001, 9.0), survivor],
        &Catalogue::builtin(),
    );
    let f = d
        .findings
        .iter()
        .find(|f| f.id == "idle-timeout")
        .expect("finding");
    let (lo, hi) = f.estimate.unwrap();
    assert!((lo - 4.0).abs() < 0.01, "{lo}");
    assert!((6.0..6.2).contains(&hi), "{hi}");
    assert_eq!(f.connections, vec![0, 1]);
    assert_eq!(f.severity, Severity::Error);
}

#[test]
fn keepalive_reconstruction_skips_bdp_pings() {
    // grpc-go's BDP payload, then three keepalives 10 s apart while no call is open.
    let bdp = [0x02, 0x04, 0x10, 0x10, 0x09, 0x0e, 0x07, 0x07];
    let tl = Tl::new(40000)
        .rpc(0.1, 0.2)
        .ev(
            0.15,
            S,
            EventKind::Ping {
                ack: false,
                opaque: bdp,
            },
        )
        .ping(10.2, C, 0.002)
        .ping(20.2, C, 0.002)
        .ping(30.2, C, 0.004)
        .done();
    let (_, d) = one(tl);
    let k = &d.keepalive[0];
    assert_eq!((k.server.pings, k.server.not_keepalive), (1, 1));
    assert_eq!((k.client.pings, k.client.without_calls), (3, 3));
    assert!((k.client.interval_median_s.unwrap() - 10.0).abs() < 0.01);
    assert_eq!(k.client.rtt_median_ms, Some(2.0));
    assert!(
        d.findings
            .iter()
            .any(|f| f.id == "keepalive-policy" && f.severity == Severity::Info),
        "{:?}",
        d.findings
    );
}
