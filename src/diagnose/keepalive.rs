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
        let is_probe = |o: &[u8; 8]| {
            cat.ping_purpose(o)
                .is_some_and(|(_, purpose)| purpose != "keepalive")
        };
        // One pass over the side's PINGs, keeping only the numbers the summary needs.
        let (mut pings, mut keepalives, mut without_calls, mut unanswered) = (0, 0, 0, 0);
        let mut last_keepalive = None;
        let mut gaps: Vec<f64> = Vec::new();
        let mut rtts: Vec<f64> = Vec::new();
        for p in f.pings.iter().filter(|p| p.from == r) {
            pings += 1;
            match p.acked_at {
                Some(a) => rtts.push(secs(a.ns_since(p.ts)) * 1e3),
                None => unanswered += 1,
            }
            if is_probe(&p.opaque) || p.quiet_ns < KEEPALIVE_QUIET_NS {
                continue;
            }
            keepalives += 1;
            if let Some(prev) = last_keepalive.replace(p.ts) {
                gaps.push(secs(p.ts.ns_since(prev)));
            }
            if f.open_streams_at(p.ts) == 0 {
                without_calls += 1;
            }
        }
        gaps.sort_by(|a, b| a.total_cmp(b));
        rtts.sort_by(|a, b| a.total_cmp(b));
        SideKeepalive {
            pings,
            not_keepalive: pings - keepalives,
            interval_median_s: gaps.get(gaps.len() / 2).copied(),
            interval_spread_s: (gaps.len() >= 2)
                .then(|| gaps[gaps.len() * 3 / 4] - gaps[gaps.len() / 4]),
            without_calls,
            unanswered,
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
