//! Findings while a capture is still running (`live`, or `analyze -` on a pipe): each new timeline
//! event is judged the moment it arrives — ENHANCE_YOUR_CALM, a forged or genuine RST, a FIN after a
//! silence with no GOAWAY, a GOAWAY that names its reason, a PING left unanswered past the usual
//! keepalive timeout. The full diagnosis still runs at the end.

use crate::capture::Ts;
use crate::http2::frame::error_name;
use crate::tcp::Dir;
use crate::timeline::{Event, EventKind, Timeline};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

/// gRPC stacks' default keepalive timeout: a PING unanswered this long means a dead path.
const PING_TIMEOUT_NS: i64 = 20_000_000_000;
/// Silences at least this long before a FIN or RST are worth naming.
const SILENCE_NS: i64 = 1_000_000_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub ts: Ts,
    pub severity: &'static str,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub text: String,
}

type Key = (SocketAddr, SocketAddr);

#[derive(Default)]
pub struct Watcher {
    /// Unanswered PINGs: (connection, sender, opaque) → when sent.
    pings: HashMap<(Key, Dir, [u8; 8]), Ts>,
    goaway_seen: HashSet<Key>,
}

impl Watcher {
    pub fn new() -> Watcher {
        Watcher::default()
    }

    /// Judges one new event of `tl`.
    pub fn event(&mut self, tl: &Timeline, e: &Event) -> Option<Alert> {
        let key = (tl.client(), tl.server());
        let side = |d: Dir| if tl.is_client(d) { "client" } else { "server" };
        let alert = |severity: &'static str, text: String| {
            Some(Alert {
                ts: e.ts,
                severity,
                client: key.0,
                server: key.1,
                text,
            })
        };
        let silence = e.quiet_ns as f64 / 1e9;
        match &e.kind {
            EventKind::Ping { ack: false, opaque } => {
                self.pings.insert((key, e.dir, *opaque), e.ts);
                None
            }
            EventKind::Ping { ack: true, opaque } => {
                self.pings.remove(&(key, e.dir.reverse(), *opaque));
                None
            }
            // Inferred from TLS record sizes: the opaque data is unknown, so all look alike.
            EventKind::InferredPing { ack: false, .. } => {
                self.pings.insert((key, e.dir, [0; 8]), e.ts);
                None
            }
            EventKind::InferredPing { ack: true, .. } => {
                self.pings.remove(&(key, e.dir.reverse(), [0; 8]));
                None
            }
            EventKind::Goaway { last_stream_id, error_code, debug_data } => {
                self.goaway_seen.insert(key);
                let debug = String::from_utf8_lossy(debug_data).trim_end_matches('\0').chars().filter(|c| !c.is_control()).take(120).collect::<String>();
                let text = format!("GOAWAY {} from the {} (last stream {last_stream_id}{})", error_name(*error_code), side(e.dir), if debug.is_empty() { String::new() } else { format!(", \"{debug}\"") });
                match (*error_code, debug.as_str()) {
                    (11, _) => alert("error", format!("{text}: the peer rejects the PING rate")),
                    (_, "max_age") => alert("info", format!("{text}: MaxConnectionAge")),
                    (_, "max_idle") | (_, "connection idle") => alert("info", format!("{text}: MaxConnectionIdle")),
                    (0, _) => None,
                    _ => alert("warning", text),
                }
            }
            EventKind::Rst { ttl, .. } => {
                let usual = tl.sides[e.dir.index()].usual_ttl();
                let after = if e.quiet_ns >= SILENCE_NS { format!(" after {silence:.1} s without packets") } else { String::new() };
                match usual {
                    Some(u) if u != *ttl => alert(
                        "error",
                        format!("TCP RST in the {}'s name with TTL {ttl}, but its packets have TTL {u}: forged by a middlebox{after}", side(e.dir)),
                    ),
                    _ => alert("warning", format!("TCP RST from the {} (TTL {ttl}){after}", side(e.dir))),
                }
            }
            EventKind::Fin if e.quiet_ns >= SILENCE_NS && !tl.is_client(e.dir) && !self.goaway_seen.contains(&key) => {
                alert("warning", format!("the server side closed (FIN, no GOAWAY) after {silence:.1} s without packets"))
            }
            _ => None,
        }
    }

    /// PINGs unanswered for longer than the usual keepalive timeout, as of `now`; each alerted once.
    pub fn overdue(&mut self, now: Ts) -> Vec<Alert> {
        let mut out = Vec::new();
        self.pings.retain(|((client, server), dir, opaque), sent| {
            if now.ns_since(*sent) < PING_TIMEOUT_NS {
                return true;
            }
            let _ = dir;
            out.push(Alert {
                ts: now,
                severity: "error",
                client: *client,
                server: *server,
                text: format!(
                    "PING {} sent at {} unanswered for {:.0} s: the path is dead",
                    opaque
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                    sent,
                    now.secs_since(*sent)
                ),
            });
            false
        });
        out
    }
}

impl Alert {
    /// One line for a terminal or a log.
    pub fn line(&self, t0: Ts) -> String {
        format!(
            "[{:+.3} s] {:<7} {} -> {}: {}",
            self.ts.secs_since(t0),
            self.severity.to_uppercase(),
            self.client,
            self.server,
            self.text
        )
    }
}
