//! Keepalive reconstruction: per connection and side, how often PINGs were sent, whether without
//! active calls, how fast they were answered, and which were not keepalives at all (BDP probes and
//! drain pings recognised by their payloads).

use super::catalogue::Catalogue;
use super::facts::{secs, Facts, Role};

/// A PING sent less than this after the previous packet rides on other traffic: not a keepalive.
const KEEPALIVE_QUIET_NS: i64 = 100_000_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SideKeepalive {
    /// PINGs sent (ACKs excluded).
    pub pings: usize,
    /// Of those, recognised as bandwidth-delay probes or drain/shutdown pings by their payload.
    pub not_keepalive: usize,
    /// Median interval between keepalive PINGs and the spread (interquartile range), seconds.
    pub interval_median_s: Option<f64>,
    pub interval_spread_s: Option<f64>,
    /// Keepalive PINGs sent while no stream was open.
    pub without_calls: usize,
    pub unanswered: usize,
    pub rtt_median_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keepalive {
    pub client: SideKeepalive,
    pub server: SideKeepalive,
}

pub fn reconstruct(f: &Facts<'_>, cat: &Catalogue) -> Keepalive {
    let side = |r: Role| {
        let mine: Vec<_> = f.pings.iter().filter(|p| p.from == r).collect();
        let is_probe = |o: &[u8; 8]| {
            cat.ping_purpose(o)
                .is_some_and(|(_, purpose)| purpose != "keepalive")
        };
        let keep: Vec<_> = mine
            .iter()
            .filter(|p| !is_probe(&p.opaque) && p.quiet_ns >= KEEPALIVE_QUIET_NS)
            .collect();
        let mut gaps: Vec<f64> = keep
            .windows(2)
            .map(|w| secs(w[1].ts.ns_since(w[0].ts)))
            .collect();
        gaps.sort_by(|a, b| a.total_cmp(b));
        let mut rtts: Vec<f64> = mine
            .iter()
            .filter_map(|p| p.acked_at.map(|a| secs(a.ns_since(p.ts)) * 1e3))
            .collect();
        rtts.sort_by(|a, b| a.total_cmp(b));
        SideKeepalive {
            pings: mine.len(),
            not_keepalive: mine.len() - keep.len(),
            interval_median_s: gaps.get(gaps.len() / 2).copied(),
            interval_spread_s: (gaps.len() >= 2)
                .then(|| gaps[gaps.len() * 3 / 4] - gaps[gaps.len() / 4]),
            without_calls: keep.iter().filter(|p| f.open_streams_at(p.ts) == 0).count(),
            unanswered: mine.iter().filter(|p| p.acked_at.is_none()).count(),
            rtt_median_ms: rtts
                .get(rtts.len() / 2)
                .map(|m| (m * 1000.0).round() / 1000.0),
        }
    };
    Keepalive {
        client: side(Role::Client),
        server: side(Role::Server),
    }
}
