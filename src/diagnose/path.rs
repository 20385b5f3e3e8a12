//! Rules over all connections to one server endpoint (a path): settling FINs that one connection
//! alone cannot explain, bracketing the unknown idle timeout between the longest silence survived
//! and the shortest that killed, matching it against the catalogue, and the findings.

use super::catalogue::{Catalogue, Measure, OnExpiry};
use super::connection::Pending;
use super::facts::PathFacts;
use super::keepalive::Keepalive;
use super::recommend;
use super::{Actor, Cause, Finding, Match, Severity, Verdict};
use crate::timeline::Idle;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::{Index, IndexMut};

/// The capture sees an intermediary's timer from a distance: a kill at expiry can look this much
/// shorter than the timer (one-way delay, timer granularity).
const SLACK_FRACTION: f64 = 0.02;
const SLACK_S: f64 = 0.05;
/// Deaths closer than this in time with scattered silences share a cause (a crash), not a timer.
const SAME_MOMENT_NS: i64 = 500_000_000;

pub fn settle(
    facts: &[PathFacts],
    verdicts: &mut [Verdict],
    pending: &[Pending],
    keepalive: &[Keepalive],
    implementations: &[[Option<String>; 2]],
    cat: &Catalogue,
) -> Vec<Finding> {
    let cols = Columns {
        facts,
        pending,
        keepalive,
        implementations,
        cat,
    };
    settle_from(verdicts, &cols, PARALLEL_FROM)
}

/// [`settle`], on two threads from `parallel_from` connections on.
fn settle_from(verdicts: &mut [Verdict], cols: &Columns<'_>, parallel_from: usize) -> Vec<Finding> {
    let facts = cols.facts;
    // Grouped by hashing, then the paths put in the order of their servers.
    let mut paths: HashMap<SocketAddr, Vec<usize>, foldhash::fast::RandomState> =
        HashMap::default();
    for (i, f) in facts.iter().enumerate() {
        paths.entry(f.server).or_default().push(i);
    }
    let mut paths: Vec<(SocketAddr, Vec<usize>)> = paths.into_iter().collect();
    paths.sort_unstable_by_key(|(server, _)| *server);
    // Paths share nothing: with many connections, the later paths (about half the connections)
    // are settled on a second thread, on their verdicts moved out.
    let half = facts.len() / 2;
    let mut counted = 0;
    let split = paths
        .iter()
        .position(|(_, conns)| {
            counted += conns.len();
            counted >= half
        })
        .map_or(paths.len(), |p| p + 1);
    let (first, second) = paths.split_at(split);
    let mut findings = if facts.len() < parallel_from || second.is_empty() {
        settle_paths(&paths, verdicts, cols)
    } else {
        let mut part = Part::take(second, verdicts);
        let (mut findings, later) = std::thread::scope(|s| {
            let later = s.spawn(|| settle_paths(second, &mut part, cols));
            (settle_paths(first, verdicts, cols), later.join())
        });
        match later {
            Ok(later) => findings.extend(later),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        part.give_back(verdicts);
        findings
    };
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

/// Causes whose verdict evidence findings quote (`other_findings`); the rules read no other
/// connection's evidence, except that of server FINs they settle ([`Pending::ServerFin`]).
pub(super) const QUOTED: [Cause; 4] = [
    Cause::TooManyPings,
    Cause::MaxAgeGoaway,
    Cause::PeerAbort,
    Cause::IdleClose,
];

/// Settling on a second thread pays from this many connections on.
const PARALLEL_FROM: usize = 4096;

/// What the rules read of every connection.
struct Columns<'a> {
    facts: &'a [PathFacts],
    pending: &'a [Pending],
    keepalive: &'a [Keepalive],
    implementations: &'a [[Option<String>; 2]],
    cat: &'a Catalogue,
}

/// The verdicts of some paths' connections, moved out of the run's verdicts and indexed as there
/// (by connection).
struct Part {
    /// By connection: where its verdict is in `verdicts`, or `u32::MAX`.
    slot: Vec<u32>,
    /// The connections, in the order of `verdicts`.
    ids: Vec<usize>,
    verdicts: Vec<Verdict>,
}

impl Part {
    fn take(paths: &[(SocketAddr, Vec<usize>)], all: &mut [Verdict]) -> Part {
        let mut part = Part {
            slot: vec![u32::MAX; all.len()],
            ids: Vec::new(),
            verdicts: Vec::new(),
        };
        for &i in paths.iter().flat_map(|(_, conns)| conns) {
            if let (Some(slot), Some(v)) = (part.slot.get_mut(i), all.get_mut(i)) {
                *slot = part.verdicts.len() as u32;
                part.ids.push(i);
                part.verdicts
                    .push(std::mem::replace(v, Verdict::new(Cause::Alive)));
            }
        }
        part
    }

    fn give_back(self, all: &mut [Verdict]) {
        for (i, v) in self.ids.into_iter().zip(self.verdicts) {
            if let Some(slot) = all.get_mut(i) {
                *slot = v;
            }
        }
    }
}

impl Index<usize> for Part {
    type Output = Verdict;
    fn index(&self, i: usize) -> &Verdict {
        &self.verdicts[self.slot[i] as usize]
    }
}

impl IndexMut<usize> for Part {
    fn index_mut(&mut self, i: usize) -> &mut Verdict {
        &mut self.verdicts[self.slot[i] as usize]
    }
}

/// The rules over `paths`, which hold connections whose verdicts `verdicts` has.
fn settle_paths<V: IndexMut<usize, Output = Verdict> + ?Sized>(
    paths: &[(SocketAddr, Vec<usize>)],
    verdicts: &mut V,
    cols: &Columns<'_>,
) -> Vec<Finding> {
    let Columns {
        facts,
        pending,
        keepalive,
        implementations,
        cat,
    } = *cols;
    let mut findings = Vec::new();
    for (server, conns) in paths {
        settle_fins(facts, verdicts, pending, conns);
        for (cause, measure) in [
            (Cause::IdleReset, Measure::Transport),
            (Cause::IdleBlackhole, Measure::Transport),
            (Cause::IdleClose, Measure::Transport),
            (Cause::IdleGoaway, Measure::Stream),
        ] {
            let killed: Vec<usize> = conns
                .iter()
                .copied()
                .filter(|&i| {
                    verdicts[i].cause == cause
                        && verdicts[i].killed_by != Some(Actor::Client)
                        && verdicts[i].idle_before_s.is_some()
                })
                .collect();
            if killed.is_empty() {
                continue;
            }
            findings.push(idle_finding(
                *server,
                cause,
                measure,
                &killed,
                conns,
                facts,
                verdicts,
                implementations,
                cat,
            ));
        }
        findings.extend(other_findings(
            *server,
            conns,
            facts,
            verdicts,
            keepalive,
            implementations,
            cat,
        ));
    }
    findings
}

/// A server-side FIN without GOAWAY after a silence is an L4 idle timer only if the path's deaths
/// look like one: similar silences, and no connection on the path survived a longer one. Deaths at
/// one moment after scattered silences, or after silences others survived, are the peer going away.
fn settle_fins<V: IndexMut<usize, Output = Verdict> + ?Sized>(
    facts: &[PathFacts],
    verdicts: &mut V,
    pending: &[Pending],
    conns: &[usize],
) {
    let fin_deaths: Vec<usize> = conns
        .iter()
        .copied()
        .filter(|&i| pending[i] == Pending::ServerFin)
        .collect();
    if fin_deaths.is_empty() {
        return;
    }
    let idles: Vec<f64> = fin_deaths
        .iter()
        .map(|&i| verdicts[i].idle_before_s.unwrap_or(0.0))
        .collect();
    let (lo, hi) = idles
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let survived = longest_survived(facts, verdicts, conns, Measure::Transport, &fin_deaths);
    let consistent = hi - lo <= (0.1 * lo).max(0.25);
    let long_enough = lo >= 1.0;
    let outlived = survived.is_some_and(|(s, _)| s >= lo);
    let same_moment = fin_deaths.len() >= 2 && {
        let times: Vec<i64> = fin_deaths
            .iter()
            .filter_map(|&i| verdicts[i].at.map(|t| t.0))
            .collect();
        times
            .iter()
            .max()
            .zip(times.iter().min())
            .is_some_and(|(a, b)| a - b <= SAME_MOMENT_NS)
    };
    // Deaths at one moment after scattered silences are already inconsistent: a crash, not a timer.
    let timer = consistent && long_enough && !outlived;
    for &i in &fin_deaths {
        let v = &mut verdicts[i];
        if timer {
            v.confidence = if fin_deaths.len() >= 2 { 0.85 } else { 0.65 };
            if fin_deaths.len() >= 2 {
                v.evidence.push(format!(
                    "{} connections to this server were closed this way, each after {:.1}-{:.1} s of silence: one idle timer",
                    fin_deaths.len(),
                    lo,
                    hi
                ));
            }
            if let Some((s, j)) = survived {
                v.evidence.push(format!(
                    "longest silence survived on this path: {s:.3} s (connection #{j})"
                ));
            }
            continue;
        }
        v.cause = Cause::PeerAbort;
        v.killed_by = Some(Actor::Server);
        v.confidence = 0.7;
        if let Some((s, j)) = survived.filter(|(s, _)| *s >= lo) {
            v.evidence.push(format!("not an idle timeout: connection #{j} to the same server survived a longer silence ({s:.3} s)"));
        }
        if !consistent {
            v.evidence.push(format!(
                "not an idle timeout: {} connections closed this way after silences of {}",
                fin_deaths.len(),
                idles
                    .iter()
                    .map(|x| format!("{x:.2} s"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if same_moment {
            v.evidence.push(
                "they closed at the same moment: a common cause, such as the server process ending"
                    .to_string(),
            );
        }
        if !long_enough {
            v.evidence
                .push("too short a silence before it for an idle timer".to_string());
        }
    }
}

/// The longest idle period of `measure` on the path that did not end a connection, and its
/// connection. The fatal silences of `excluded` (and of every connection that died of an idle
/// cause) do not count.
fn longest_survived<V: Index<usize, Output = Verdict> + ?Sized>(
    facts: &[PathFacts],
    verdicts: &V,
    conns: &[usize],
    measure: Measure,
    excluded: &[usize],
) -> Option<(f64, usize)> {
    let mut best: Option<(f64, usize)> = None;
    for &i in conns {
        let f = &facts[i];
        let v = &verdicts[i];
        let fatal_from = match (
            excluded.contains(&i) || is_idle_death(v.cause),
            v.fatal_silence_end.or(v.at),
        ) {
            (true, Some(t)) => Some(t.add_ns(-1_000_000).0),
            _ => None,
        };
        let periods: &[Idle] = match measure {
            Measure::Transport => &f.transport_idle,
            Measure::Stream => &f.stream_idle,
        };
        for p in periods {
            if fatal_from.is_some_and(|t| p.end.0 >= t) {
                continue;
            }
            // A transport silence proves survival only if a packet came after it; a stream silence
            // ending the connection proves no L7 timer fired meanwhile (its GOAWAY would show).
            if measure == Measure::Transport && p.end >= f.last {
                continue;
            }
            let s = p.secs();
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, i));
            }
        }
    }
    best
}

fn is_idle_death(c: Cause) -> bool {
    matches!(
        c,
        Cause::IdleReset | Cause::IdleBlackhole | Cause::IdleClose | Cause::IdleGoaway
    )
}

fn expiry_for(cause: Cause) -> &'static [OnExpiry] {
    match cause {
        Cause::IdleReset => &[OnExpiry::Reset, OnExpiry::ResetBoth],
        Cause::IdleBlackhole => &[OnExpiry::Drop],
        Cause::IdleClose => &[OnExpiry::Fin],
        Cause::IdleGoaway => &[OnExpiry::Goaway],
        _ => &[],
    }
}

#[allow(clippy::too_many_arguments)]
fn idle_finding<V: Index<usize, Output = Verdict> + ?Sized>(
    server: SocketAddr,
    cause: Cause,
    measure: Measure,
    killed: &[usize],
    conns: &[usize],
    facts: &[PathFacts],
    verdicts: &V,
    implementations: &[[Option<String>; 2]],
    cat: &Catalogue,
) -> Finding {
    let fatal = killed
        .iter()
        .filter_map(|&i| verdicts[i].idle_before_s)
        .fold(f64::MAX, f64::min);
    let survived = longest_survived(facts, verdicts, conns, measure, killed);
    let low = survived.map_or(0.0, |(s, _)| s);
    let high = fatal + (fatal * SLACK_FRACTION).max(SLACK_S);
    let consistent = low < high;
    // Did PINGs flow through the fatal silences? Then the timer ignores them.
    let pings_flowed = killed.iter().any(|&i| {
        let f = &facts[i];
        let (Some(t), Some(idle)) = (verdicts[i].at, verdicts[i].idle_before_s) else {
            return false;
        };
        let start = t.add_ns(-((idle * 1e9) as i64)).0;
        f.answered_pings.iter().any(|&p| p.0 > start && p <= t)
    });
    let server_impl = killed.iter().find_map(|&i| implementations[i][1].clone());
    let by_server = killed
        .iter()
        .all(|&i| verdicts[i].killed_by == Some(Actor::Server));
    let mut matches: Vec<Match> = Vec::new();
    for e in &cat.intermediaries {
        if !expiry_for(cause).contains(&e.on_expiry)
            || e.measure != measure
            || (pings_flowed && e.counts_pings)
        {
            continue;
        }
        let tol = |t: f64| t * SLACK_FRACTION + SLACK_S;
        match e.timeout_s {
            Some(t) if t >= low - tol(t) && t <= high + tol(t) => matches.push(Match {
                name: e.name.clone(),
                timeout_s: t,
                on_expiry: e.on_expiry.name(),
                configured: false,
            }),
            _ => {
                // Configured away from its default: only when the server side is recognised as it.
                let same_product = server_impl.as_deref().is_some_and(|s| {
                    let s = s.to_lowercase();
                    let n = e.name.to_lowercase();
                    n.split_whitespace().next().is_some_and(|w| s.contains(w))
                });
                if let (Some((lo, hi)), true) = (e.configurable, same_product) {
                    if lo <= high && hi >= low {
                        matches.push(Match {
                            name: e.name.clone(),
                            timeout_s: fatal,
                            on_expiry: e.on_expiry.name(),
                            configured: true,
                        });
                    }
                }
            }
        }
    }
    let (severity, what) = match cause {
        Cause::IdleReset => (
            Severity::Error,
            "an intermediary forgets idle flows and resets the next packet",
        ),
        Cause::IdleBlackhole => (
            Severity::Error,
            "an intermediary forgets idle flows and silently drops what follows",
        ),
        Cause::IdleClose => (
            Severity::Error,
            "an intermediary closes idle TCP connections (FIN, no GOAWAY)",
        ),
        _ if by_server => (
            Severity::Info,
            "the server closes connections that carry no RPCs (MaxConnectionIdle)",
        ),
        _ => (
            Severity::Warning,
            "an HTTP/2 proxy closes connections that carry no RPCs, whatever PINGs flow",
        ),
    };
    let kind = match measure {
        Measure::Transport => "without any packet",
        Measure::Stream => "without an open stream",
    };
    let timeout_text = match (consistent, high < 100.0) {
        (true, true) => format!("{low:.1}-{high:.1} s"),
        (true, false) => format!("{:.0}-{:.0} s", low.floor(), high.ceil()),
        (false, _) => format!("~{fatal:.1} s"),
    };
    let summary = format!(
        "Connections to {server} die after {} {kind}: {what}",
        timeout_text
    );
    let mut evidence = vec![format!(
        "{} connection(s) killed after {:.3}-{:.3} s {kind}: {}",
        killed.len(),
        fatal,
        killed
            .iter()
            .filter_map(|&i| verdicts[i].idle_before_s)
            .fold(0.0, f64::max),
        killed
            .iter()
            .map(|i| format!("#{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    match survived {
        Some((s, j)) => evidence.push(format!(
            "longest survived: {s:.3} s {kind} (connection #{j})"
        )),
        None => evidence.push(
            "no connection on this path survived a silence: the lower bound is 0".to_string(),
        ),
    }
    if !consistent {
        evidence.push(format!("a connection survived {low:.3} s, longer than a fatal {fatal:.3} s: more than one timer may be at work"));
    }
    if pings_flowed {
        evidence.push("PINGs were answered during the fatal silences: the timer does not count PINGs as activity".to_string());
    }
    if matches.is_empty() {
        evidence.push(
            "no known default matches this timeout: a configured value (add it with --timeouts)"
                .to_string(),
        );
    }
    let recommendation = recommend::idle(
        cause,
        measure,
        (low, high),
        pings_flowed,
        by_server,
        &client_impl(killed, implementations),
        &server_impl,
    );
    Finding {
        id: match cause {
            Cause::IdleGoaway if by_server => "max-connection-idle",
            _ => "idle-timeout",
        },
        severity,
        summary,
        connections: killed.to_vec(),
        estimate: Some((round3(low), round3(high))),
        matches,
        evidence,
        recommendation,
    }
}

fn client_impl(conns: &[usize], implementations: &[[Option<String>; 2]]) -> Option<String> {
    conns.iter().find_map(|&i| implementations[i][0].clone())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Findings about too many pings, max-age rotation, abrupt ends, read timeouts and keepalive
/// settings that invite trouble.
fn other_findings<V: Index<usize, Output = Verdict> + ?Sized>(
    server: SocketAddr,
    conns: &[usize],
    facts: &[PathFacts],
    verdicts: &V,
    keepalive: &[Keepalive],
    implementations: &[[Option<String>; 2]],
    cat: &Catalogue,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let with = |c: Cause| -> Vec<usize> {
        conns
            .iter()
            .copied()
            .filter(|&i| verdicts[i].cause == c)
            .collect()
    };
    let server_impl = conns.iter().find_map(|&i| implementations[i][1].clone());
    let client = client_impl(conns, implementations);

    let tmp = with(Cause::TooManyPings);
    if !tmp.is_empty() {
        let intervals: Vec<f64> = tmp
            .iter()
            .filter_map(|&i| keepalive[i].client.interval_median_s)
            .collect();
        let interval = intervals.iter().cloned().fold(f64::MAX, f64::min);
        let mut evidence: Vec<String> = tmp
            .iter()
            .filter_map(|&i| verdicts[i].evidence.first().map(|e| format!("#{i}: {e}")))
            .take(3)
            .collect();
        if interval < f64::MAX {
            evidence.push(format!("client PING interval: {interval:.1} s"));
        }
        out.push(Finding {
            id: "too-many-pings",
            severity: Severity::Error,
            summary: format!("{server} rejects the client's keepalive PINGs as too frequent (GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\")"),
            connections: tmp,
            estimate: None,
            matches: Vec::new(),
            evidence,
            recommendation: recommend::too_many_pings((interval < f64::MAX).then_some(interval), &client, &server_impl, cat),
        });
    }

    let aged = with(Cause::MaxAgeGoaway);
    if !aged.is_empty() {
        let ages: Vec<f64> = aged
            .iter()
            .filter_map(|&i| verdicts[i].at.map(|t| t.secs_since(facts[i].first)))
            .collect();
        let failed: Vec<usize> = aged
            .iter()
            .copied()
            .filter(|&i| {
                verdicts[i]
                    .evidence
                    .iter()
                    .any(|e| e.starts_with("RPCs affected"))
            })
            .collect();
        let mut evidence = vec![format!(
            "{} connection(s) ended by GOAWAY at ages {}",
            aged.len(),
            ages.iter()
                .map(|a| format!("{a:.1} s"))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        for &i in &failed {
            if let Some(e) = verdicts[i]
                .evidence
                .iter()
                .find(|e| e.starts_with("RPCs affected"))
            {
                evidence.push(format!("#{i}: {e}"));
            }
        }
        out.push(Finding {
            id: "max-connection-age",
            severity: if failed.is_empty() {
                Severity::Info
            } else {
                Severity::Warning
            },
            summary: format!(
                "{server} closes connections at a fixed age (MaxConnectionAge){}",
                if failed.is_empty() {
                    ""
                } else {
                    " and RPCs failed around it"
                }
            ),
            connections: aged,
            estimate: None,
            matches: Vec::new(),
            evidence,
            recommendation: recommend::max_age(!failed.is_empty()),
        });
    }

    let aborted: Vec<usize> = with(Cause::PeerAbort)
        .into_iter()
        .filter(|&i| verdicts[i].killed_by == Some(Actor::Server))
        .collect();
    if !aborted.is_empty() {
        let evidence = aborted
            .iter()
            .filter_map(|&i| verdicts[i].evidence.first().map(|e| format!("#{i}: {e}")))
            .take(4)
            .collect();
        out.push(Finding {
            id: "peer-abort",
            severity: Severity::Error,
            summary: format!("{server} went away abruptly on {} connection(s) (crash, kill or restart), not an idle timeout", aborted.len()),
            connections: aborted,
            estimate: None,
            matches: Vec::new(),
            evidence,
            recommendation: "Look at the server side at those times (process restarts, OOM kills, pod evictions, node reboots); clients should retry UNAVAILABLE with backoff.".to_string(),
        });
    }

    let read_timeouts: Vec<usize> = with(Cause::IdleClose)
        .into_iter()
        .filter(|&i| verdicts[i].killed_by == Some(Actor::Client))
        .collect();
    if !read_timeouts.is_empty() {
        let waits: Vec<f64> = read_timeouts
            .iter()
            .filter_map(|&i| verdicts[i].idle_before_s)
            .collect();
        let wait = waits.iter().cloned().fold(f64::MAX, f64::min);
        out.push(Finding {
            id: "read-timeout",
            severity: Severity::Warning,
            summary: format!("Clients of {server} give up on RPCs that made no progress for {wait:.1} s (a read timeout, e.g. a proxy's grpc_read_timeout)"),
            connections: read_timeouts.clone(),
            estimate: None,
            matches: Vec::new(),
            evidence: read_timeouts.iter().filter_map(|&i| verdicts[i].evidence.first().map(|e| format!("#{i}: {e}"))).take(3).collect(),
            recommendation: "If these are long-lived streams (server streaming, watch), raise the proxy's read timeout above the longest gap between messages (nginx: grpc_read_timeout / grpc_send_timeout; Envoy: stream_idle_timeout and the route timeout), or have the server send messages or PINGs more often than the timeout.".to_string(),
        });
    }

    // Keepalive settings that will meet default ping enforcement: predicted, not yet seen.
    if with(Cause::TooManyPings).is_empty() {
        let risky: Vec<usize> = conns
            .iter()
            .copied()
            .filter(|&i| {
                let k = &keepalive[i].client;
                k.pings - k.not_keepalive >= 3
                    && k.without_calls > 0
                    && k.interval_median_s.is_some_and(|m| m < 300.0)
            })
            .collect();
        if !risky.is_empty() {
            let interval = risky
                .iter()
                .filter_map(|&i| keepalive[i].client.interval_median_s)
                .fold(f64::MAX, f64::min);
            out.push(Finding {
                id: "keepalive-policy",
                severity: Severity::Info,
                summary: format!(
                    "Clients of {server} ping every {interval:.1} s even without calls: default gRPC servers allow one PING per 5 min (2 h without calls) and answer the 3rd early one with GOAWAY ENHANCE_YOUR_CALM"
                ),
                connections: risky,
                estimate: None,
                matches: Vec::new(),
                evidence: vec!["this server accepted them: it must permit PINGs without calls at this rate; a server with default settings would not".to_string()],
                recommendation: recommend::too_many_pings(Some(interval), &client, &server_impl, cat),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::{Analyzer, Config};
    use crate::capture::CaptureReader;
    use crate::diagnose::Judged;

    /// Every lab capture's connections judged, as one run.
    fn judged(cat: &Catalogue) -> Vec<Judged> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path().join("capture.pcap"))
            .filter(|p| p.exists())
            .collect();
        files.sort();
        let mut judged = Vec::new();
        for f in files {
            let mut reader = CaptureReader::open(f.to_str().unwrap()).unwrap();
            let mut analyzer = Analyzer::new(Config::default());
            while let Some(p) = reader.next_packet() {
                analyzer.packet(&p);
            }
            let (timelines, _) = analyzer.finish();
            judged.extend(timelines.iter().map(|tl| crate::diagnose::judge(tl, cat)));
        }
        judged
    }

    /// The path rules over `judged`, on two threads from `parallel_from` connections on.
    fn settle_judged(
        judged: &[Judged],
        cat: &Catalogue,
        parallel_from: usize,
    ) -> (Vec<Verdict>, Vec<Finding>) {
        let mut verdicts: Vec<Verdict> = judged.iter().map(|j| j.verdict.clone()).collect();
        let facts: Vec<PathFacts> = judged.iter().map(|j| j.path.clone()).collect();
        let pending: Vec<Pending> = judged.iter().map(|j| j.pending).collect();
        let keepalive: Vec<Keepalive> = judged.iter().map(|j| j.keepalive.clone()).collect();
        let implementations: Vec<[Option<String>; 2]> =
            judged.iter().map(|j| j.implementations.clone()).collect();
        let cols = Columns {
            facts: &facts,
            pending: &pending,
            keepalive: &keepalive,
            implementations: &implementations,
            cat,
        };
        let findings = settle_from(&mut verdicts, &cols, parallel_from);
        (verdicts, findings)
    }

    /// Paths settled on two threads give the verdicts and findings of one thread.
    #[test]
    fn two_threads_settle_as_one() {
        let cat = Catalogue::builtin();
        let judged = judged(&cat);
        let servers: std::collections::BTreeSet<_> = judged.iter().map(|j| j.path.server).collect();
        assert!(
            servers.len() > 10,
            "too few paths to split: {}",
            servers.len()
        );
        let (one_v, one_f) = settle_judged(&judged, &cat, usize::MAX);
        let (two_v, two_f) = settle_judged(&judged, &cat, 0);
        assert!(!one_f.is_empty());
        let unsettled: Vec<Verdict> = judged.into_iter().map(|j| j.verdict).collect();
        assert!(one_v != unsettled, "the path rules changed no verdict");
        assert_eq!(one_v, two_v);
        assert_eq!(one_f, two_f);
    }

    /// The evidence let go once a final verdict is written out is never what the rules quote or
    /// change: the same findings and verdicts, but for that evidence.
    #[test]
    fn forgotten_evidence_is_never_read() {
        let cat = Catalogue::builtin();
        let judged = judged(&cat);
        let (full_v, full_f) = settle_judged(&judged, &cat, usize::MAX);
        let mut forgetful = judged;
        for j in &mut forgetful {
            if !j.evidence_read_later() {
                j.verdict.evidence = Vec::new();
            }
        }
        let (kept_v, kept_f) = settle_judged(&forgetful, &cat, usize::MAX);
        assert_eq!(full_f, kept_f);
        let mut forgotten = 0;
        for (full, kept) in full_v.iter().zip(&kept_v) {
            if kept.evidence.is_empty() && !full.evidence.is_empty() {
                forgotten += 1;
                assert_eq!(
                    Verdict {
                        evidence: Vec::new(),
                        ..full.clone()
                    },
                    *kept
                );
            } else {
                assert_eq!(full, kept);
            }
        }
        assert!(forgotten > 0, "no evidence let go");
        // Every quoted cause is in the captures, so that a rule quoting it is tested here.
        for cause in QUOTED {
            assert!(
                full_v.iter().any(|v| v.cause == cause),
                "no {cause:?} in the captures"
            );
        }
    }
}
