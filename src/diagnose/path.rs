//! Rules over all connections to one server endpoint (a path): settling FINs that one connection
//! alone cannot explain, bracketing the unknown idle timeout between the longest silence survived
//! and the shortest that killed, matching it against the catalogue, and the findings.

use super::catalogue::{Catalogue, Measure, OnExpiry};
use super::connection::Pending;
use super::recommend;
use super::{Actor, Cause, Finding, Findings, Match, Severity, Summary, Verdict};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Index;

/// The capture sees an intermediary's timer from a distance: a kill at expiry can look this much
/// shorter than the timer (one-way delay, timer granularity).
const SLACK_FRACTION: f64 = 0.02;
const SLACK_S: f64 = 0.05;
/// Deaths closer than this in time with scattered silences share a cause (a crash), not a timer.
const SAME_MOMENT_NS: i64 = 500_000_000;

/// A server and its connections, in connection order.
type Path = (SocketAddr, Vec<usize>);

pub fn settle<T: AsRef<Summary> + AsMut<Summary> + Sync, F: Findings>(
    conns: &mut [T],
    cat: &Catalogue,
    sink: impl Fn() -> F + Sync,
) -> [F; 2] {
    settle_from(conns, cat, sink, PARALLEL_FROM)
}

/// [`settle`], on two threads from `parallel_from` connections on.
fn settle_from<T: AsRef<Summary> + AsMut<Summary> + Sync, F: Findings>(
    conns: &mut [T],
    cat: &Catalogue,
    sink: impl Fn() -> F + Sync,
    parallel_from: usize,
) -> [F; 2] {
    // Grouped by hashing, then the paths put in the order of their servers.
    let mut paths: HashMap<SocketAddr, Vec<usize>, foldhash::fast::RandomState> =
        HashMap::default();
    for (i, c) in conns.iter().enumerate() {
        paths.entry(c.as_ref().path.server()).or_default().push(i);
    }
    let mut paths: Vec<Path> = paths.into_iter().collect();
    paths.sort_unstable_by_key(|(server, _)| *server);
    // Paths share nothing: with many connections, the later paths (about half the connections)
    // are settled on a second thread.
    let half = conns.len() / 2;
    let mut counted = 0;
    let split = paths
        .iter()
        .position(|(_, path)| {
            counted += path.len();
            counted >= half
        })
        .map_or(paths.len(), |p| p + 1);
    let (first, second) = paths.split_at(split);
    let two = conns.len() >= parallel_from && !second.is_empty();
    // Server FINs first. Each path's are settled from its own connections, and only its own
    // findings read them: the verdicts are worked out from the summaries as they are, then put
    // in their place.
    let settled = {
        let all = Conns(&*conns);
        on_paths(two, first, second, |paths| {
            paths
                .iter()
                .flat_map(|(_, path)| settle_fins(&all, path))
                .collect::<Vec<_>>()
        })
    };
    for (i, v) in settled.into_iter().flatten() {
        if let Some(c) = conns.get_mut(i) {
            c.as_mut().verdict = super::Kept::Whole(Box::new(v));
        }
    }
    // Findings go to their part's sink as they are found.
    let all = Conns(&*conns);
    on_paths(two, first, second, |paths| {
        let mut found = sink();
        for (server, path) in paths {
            for f in path_findings(*server, path, &all, cat) {
                found.found(f);
            }
        }
        found
    })
}

/// `f` over the paths `first` and over `second`: on a second thread for `second` when `two`.
fn on_paths<R: Send>(
    two: bool,
    first: &[Path],
    second: &[Path],
    f: impl Fn(&[Path]) -> R + Sync,
) -> [R; 2] {
    if !two {
        return [f(first), f(second)];
    }
    let (out, later) = std::thread::scope(|s| {
        let later = s.spawn(|| f(second));
        (f(first), later.join())
    });
    match later {
        Ok(later) => [out, later],
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The run's connections as the rules read them: by connection, its summary.
struct Conns<'a, T>(&'a [T]);

impl<T: AsRef<Summary>> Index<usize> for Conns<'_, T> {
    type Output = Summary;
    fn index(&self, i: usize) -> &Summary {
        self.0[i].as_ref()
    }
}

/// Causes whose verdict evidence findings quote (`other_findings`); the rules read no other
/// connection's evidence, except that of server FINs they settle ([`Pending::ServerFin`]).
pub(super) const QUOTED: [Cause; 4] = [
    Cause::TooManyPings,
    Cause::MaxAgeGoaway,
    Cause::PeerAbort,
    Cause::IdleClose,
];

/// Which line of a final verdict's evidence findings may quote: of a max-age GOAWAY, the RPCs
/// affected around it; of other causes, the first.
pub(super) fn quoted(v: &Verdict) -> Option<usize> {
    match v.cause {
        Cause::MaxAgeGoaway => v.evidence.iter().position(|e| e.starts_with(RPCS_AFFECTED)),
        _ => (!v.evidence.is_empty()).then_some(0),
    }
}

/// How the evidence of a max-age GOAWAY opens the line on the RPCs it affected.
const RPCS_AFFECTED: &str = "RPCs affected";

/// Settling on a second thread pays from this many connections on.
const PARALLEL_FROM: usize = 4096;

/// The findings of the path of `server`, whose connections are `path`.
fn path_findings<V: Index<usize, Output = Summary> + ?Sized>(
    server: SocketAddr,
    path: &[usize],
    conns: &V,
    cat: &Catalogue,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (cause, measure) in [
        (Cause::IdleReset, Measure::Transport),
        (Cause::IdleBlackhole, Measure::Transport),
        (Cause::IdleClose, Measure::Transport),
        (Cause::IdleGoaway, Measure::Stream),
    ] {
        let killed: Vec<usize> = path
            .iter()
            .copied()
            .filter(|&i| {
                conns[i].cause() == cause
                    && conns[i].killed_by() != Some(Actor::Client)
                    && conns[i].idle_before_s().is_some()
            })
            .collect();
        if killed.is_empty() {
            continue;
        }
        findings.push(idle_finding(
            server, cause, measure, &killed, path, conns, cat,
        ));
    }
    findings.extend(other_findings(server, path, conns, cat));
    findings
}

/// A server-side FIN without GOAWAY after a silence is an L4 idle timer only if the path's deaths
/// look like one: similar silences, and no connection on the path survived a longer one. Deaths at
/// one moment after scattered silences, or after silences others survived, are the peer going away.
fn settle_fins<V: Index<usize, Output = Summary> + ?Sized>(
    conns: &V,
    path: &[usize],
) -> Vec<(usize, Verdict)> {
    let fin_deaths: Vec<usize> = path
        .iter()
        .copied()
        .filter(|&i| conns[i].path.pending == Pending::ServerFin)
        .collect();
    if fin_deaths.is_empty() {
        return Vec::new();
    }
    let idles: Vec<f64> = fin_deaths
        .iter()
        .map(|&i| conns[i].idle_before_s().unwrap_or(0.0))
        .collect();
    let (lo, hi) = idles
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let survived = longest_survived(conns, path, Measure::Transport, &fin_deaths);
    let consistent = hi - lo <= (0.1 * lo).max(0.25);
    let long_enough = lo >= 1.0;
    let outlived = survived.is_some_and(|(s, _)| s >= lo);
    let same_moment = fin_deaths.len() >= 2 && {
        let times: Vec<i64> = fin_deaths
            .iter()
            .filter_map(|&i| conns[i].at().map(|t| t.0))
            .collect();
        times
            .iter()
            .max()
            .zip(times.iter().min())
            .is_some_and(|(a, b)| a - b <= SAME_MOMENT_NS)
    };
    // Deaths at one moment after scattered silences are already inconsistent: a crash, not a timer.
    let timer = consistent && long_enough && !outlived;
    let mut settled = Vec::with_capacity(fin_deaths.len());
    for &i in &fin_deaths {
        // A verdict the rules change is kept whole (`Judged::summary`).
        let Some(v) = conns[i].verdict() else {
            continue;
        };
        let mut v = v.clone();
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
            settled.push((i, v));
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
        settled.push((i, v));
    }
    settled
}

/// The longest idle period of `measure` on the path that did not end a connection, and its
/// connection. The fatal silences of `excluded` (and of every connection that died of an idle
/// cause) do not count.
fn longest_survived<V: Index<usize, Output = Summary> + ?Sized>(
    conns: &V,
    path: &[usize],
    measure: Measure,
    excluded: &[usize],
) -> Option<(f64, usize)> {
    let mut best: Option<(f64, usize)> = None;
    for &i in path {
        let c = &conns[i];
        let died_of_silence = excluded.contains(&i) || is_idle_death(c.cause());
        if let Some(s) = c.path.survived(measure, died_of_silence) {
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

fn idle_finding<V: Index<usize, Output = Summary> + ?Sized>(
    server: SocketAddr,
    cause: Cause,
    measure: Measure,
    killed: &[usize],
    path: &[usize],
    conns: &V,
    cat: &Catalogue,
) -> Finding {
    let fatal = killed
        .iter()
        .filter_map(|&i| conns[i].idle_before_s())
        .fold(f64::MAX, f64::min);
    let survived = longest_survived(conns, path, measure, killed);
    let low = survived.map_or(0.0, |(s, _)| s);
    let high = fatal + (fatal * SLACK_FRACTION).max(SLACK_S);
    let consistent = low < high;
    // Did PINGs flow through the fatal silences? Then the timer ignores them.
    let pings_flowed = killed.iter().any(|&i| conns[i].path.pings_in_fatal_silence);
    let server_impl = implementation(killed, conns, Side::Server, cat);
    let by_server = killed
        .iter()
        .all(|&i| conns[i].killed_by() == Some(Actor::Server));
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
            .filter_map(|&i| conns[i].idle_before_s())
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
        &implementation(killed, conns, Side::Client, cat),
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

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// The implementation recognised for `side` on the first of `path` where one was.
fn implementation<V: Index<usize, Output = Summary> + ?Sized>(
    path: &[usize],
    conns: &V,
    side: Side,
    cat: &Catalogue,
) -> Option<String> {
    path.iter().find_map(|&i| {
        let found = conns[i].path.fingerprints[side as usize]?;
        Some(
            cat.fingerprints
                .get(usize::from(found))?
                .implementation
                .clone(),
        )
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Findings about too many pings, max-age rotation, abrupt ends, read timeouts and keepalive
/// settings that invite trouble.
fn other_findings<V: Index<usize, Output = Summary> + ?Sized>(
    server: SocketAddr,
    path: &[usize],
    conns: &V,
    cat: &Catalogue,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let with = |c: Cause| -> Vec<usize> {
        path.iter()
            .copied()
            .filter(|&i| conns[i].cause() == c)
            .collect()
    };
    let server_impl = implementation(path, conns, Side::Server, cat);
    let client = implementation(path, conns, Side::Client, cat);

    let tmp = with(Cause::TooManyPings);
    if !tmp.is_empty() {
        let intervals: Vec<f64> = tmp
            .iter()
            .filter_map(|&i| conns[i].path.client_ping_interval_s.get())
            .collect();
        let interval = intervals.iter().cloned().fold(f64::MAX, f64::min);
        let mut evidence: Vec<String> = tmp
            .iter()
            .filter_map(|&i| conns[i].evidence().first().map(|e| format!("#{i}: {e}")))
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
            .filter_map(|&i| conns[i].at().map(|t| t.secs_since(conns[i].path.first)))
            .collect();
        let failed: Vec<usize> = aged
            .iter()
            .copied()
            .filter(|&i| {
                conns[i]
                    .evidence()
                    .iter()
                    .any(|e| e.starts_with(RPCS_AFFECTED))
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
            if let Some(e) = conns[i]
                .evidence()
                .iter()
                .find(|e| e.starts_with(RPCS_AFFECTED))
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
        .filter(|&i| conns[i].killed_by() == Some(Actor::Server))
        .collect();
    if !aborted.is_empty() {
        let evidence = aborted
            .iter()
            .filter_map(|&i| conns[i].evidence().first().map(|e| format!("#{i}: {e}")))
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
        .filter(|&i| conns[i].killed_by() == Some(Actor::Client))
        .collect();
    if !read_timeouts.is_empty() {
        let waits: Vec<f64> = read_timeouts
            .iter()
            .filter_map(|&i| conns[i].idle_before_s())
            .collect();
        let wait = waits.iter().cloned().fold(f64::MAX, f64::min);
        out.push(Finding {
            id: "read-timeout",
            severity: Severity::Warning,
            summary: format!("Clients of {server} give up on RPCs that made no progress for {wait:.1} s (a read timeout, e.g. a proxy's grpc_read_timeout)"),
            connections: read_timeouts.clone(),
            estimate: None,
            matches: Vec::new(),
            evidence: read_timeouts.iter().filter_map(|&i| conns[i].evidence().first().map(|e| format!("#{i}: {e}"))).take(3).collect(),
            recommendation: "If these are long-lived streams (server streaming, watch), raise the proxy's read timeout above the longest gap between messages (nginx: grpc_read_timeout / grpc_send_timeout; Envoy: stream_idle_timeout and the route timeout), or have the server send messages or PINGs more often than the timeout.".to_string(),
        });
    }

    // Keepalive settings that will meet default ping enforcement: predicted, not yet seen.
    if with(Cause::TooManyPings).is_empty() {
        let risky: Vec<usize> = path
            .iter()
            .copied()
            .filter(|&i| conns[i].path.client_pings_risky)
            .collect();
        if !risky.is_empty() {
            let interval = risky
                .iter()
                .filter_map(|&i| conns[i].path.client_ping_interval_s.get())
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
    use crate::diagnose::facts::Facts;
    use crate::diagnose::{judge, reported, Judged};
    use crate::testing::lab_timelines;
    use crate::timeline::Idle;

    fn judged(cat: &Catalogue) -> Vec<Judged> {
        lab_timelines().iter().map(|tl| judge(tl, cat)).collect()
    }

    /// The path rules over `judged`, kept as summaries with their verdicts whole if `whole`, on
    /// two threads from `parallel_from` connections on: the verdicts kept and the findings.
    fn settle_judged(
        judged: &[Judged],
        whole: bool,
        cat: &Catalogue,
        parallel_from: usize,
    ) -> (Vec<Option<Verdict>>, Vec<Finding>) {
        let mut conns: Vec<Summary> = judged.iter().map(|j| j.clone().summary(whole)).collect();
        let findings = reported(settle_from(&mut conns, cat, Vec::new, parallel_from));
        let verdicts = conns.iter().map(|c| c.verdict().cloned()).collect();
        (verdicts, findings)
    }

    /// Paths settled on two threads give the verdicts and findings of one thread.
    #[test]
    fn two_threads_settle_as_one() {
        let cat = Catalogue::builtin();
        let judged = judged(&cat);
        let servers: std::collections::BTreeSet<_> =
            judged.iter().map(|j| j.path.server()).collect();
        assert!(
            servers.len() > 10,
            "too few paths to split: {}",
            servers.len()
        );
        let (one_v, one_f) = settle_judged(&judged, true, &cat, usize::MAX);
        let (two_v, two_f) = settle_judged(&judged, true, &cat, 0);
        assert!(!one_f.is_empty());
        let unsettled: Vec<Option<Verdict>> = judged.into_iter().map(|j| Some(j.verdict)).collect();
        assert!(one_v != unsettled, "the path rules changed no verdict");
        assert_eq!(one_v, two_v);
        assert_eq!(one_f, two_f);
    }

    /// What is let go of a verdict the rules neither change nor quote is never what they read:
    /// the same findings, and the same verdicts where kept.
    #[test]
    fn brief_verdicts_settle_as_whole_ones() {
        let cat = Catalogue::builtin();
        let judged = judged(&cat);
        let (whole_v, whole_f) = settle_judged(&judged, true, &cat, usize::MAX);
        let (brief_v, brief_f) = settle_judged(&judged, false, &cat, usize::MAX);
        assert_eq!(whole_f, brief_f);
        let mut brief = 0;
        for (whole, kept) in whole_v.iter().zip(&brief_v) {
            match kept {
                Some(kept) => assert_eq!(whole.as_ref(), Some(kept)),
                None => brief += 1,
            }
        }
        assert!(brief > 0, "no verdict kept brief");
        // Every quoted cause is in the captures, so that a rule quoting it is tested here.
        for cause in QUOTED {
            assert!(
                whole_v.iter().flatten().any(|v| v.cause == cause),
                "no {cause:?} in the captures"
            );
        }
    }

    /// The silences survived and the PINGs answered in the fatal one, worked out when a
    /// connection is judged, are those its timeline shows.
    #[test]
    fn path_facts_are_the_timelines() {
        let cat = Catalogue::builtin();
        let (mut shorter, mut pinged) = (0, 0);
        for tl in lab_timelines() {
            let j = judge(&tl, &cat);
            let v = &j.verdict;
            for (measure, periods) in [
                (Measure::Transport, &tl.transport_idle),
                (Measure::Stream, &tl.stream_idle),
            ] {
                for died_of_silence in [false, true] {
                    // Periods that end from 1 ms before the end of the fatal silence on are
                    // that silence; a transport silence with no packet after it is no survival.
                    let fatal = v.fatal_silence_end.or(v.at).filter(|_| died_of_silence);
                    let survived: Option<f64> = periods
                        .iter()
                        .filter(|p: &&Idle| fatal.is_none_or(|t| p.end.0 < t.0 - 1_000_000))
                        .filter(|p| measure == Measure::Stream || p.end < tl.last)
                        .map(|p| p.secs())
                        .reduce(f64::max);
                    assert_eq!(j.path.survived(measure, died_of_silence), survived);
                }
                if j.path.survived(measure, true) != j.path.survived(measure, false) {
                    shorter += 1;
                }
            }
            let f = Facts::new(&tl);
            let answered_in_silence = match (v.at, v.idle_before_s) {
                (Some(at), Some(idle)) => f.pings.iter().any(|p| {
                    let silence_ns = (idle * 1e9) as i64;
                    p.acked_at.is_some() && p.ts <= at && at.ns_since(p.ts) < silence_ns
                }),
                _ => false,
            };
            assert_eq!(j.path.pings_in_fatal_silence, answered_in_silence);
            pinged += usize::from(answered_in_silence);
        }
        assert!(shorter > 0, "no fatal silence left out");
        assert!(pinged > 0, "no PING answered in a fatal silence");
    }
}
