//! Diagnosis: why each connection died, who did it, and what to change. Rules read timeline events
//! only — never bytes. One file per rule family: `connection` judges a connection alone, `path`
//! settles what needs the other connections to the same server (was a FIN a timer or a crash? what
//! is the timeout?), `keepalive` reconstructs who pinged how often, `recommend` words the fix.
//! Facts about products live in `catalogue.json`.

pub mod catalogue;
mod connection;
pub(crate) mod decimal;
mod facts;
mod keepalive;
mod line;
mod path;
mod recommend;
#[cfg(test)]
mod tests;
pub mod watch;

pub use catalogue::Catalogue;
pub use keepalive::{Keepalive, SideKeepalive};

use crate::capture::Ts;
use crate::timeline::Timeline;
use facts::{Facts, MaybeSecs, PathFacts, Role};
use serde::{Deserialize, Serialize};

/// CONTRACT.md's cause vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cause {
    Alive,
    GracefulClose,
    IdleGoaway,
    MaxAgeGoaway,
    TooManyPings,
    IdleClose,
    IdleReset,
    IdleBlackhole,
    PeerAbort,
    Unknown,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Alive => "alive",
            Cause::GracefulClose => "graceful_close",
            Cause::IdleGoaway => "idle_goaway",
            Cause::MaxAgeGoaway => "max_age_goaway",
            Cause::TooManyPings => "too_many_pings",
            Cause::IdleClose => "idle_close",
            Cause::IdleReset => "idle_reset",
            Cause::IdleBlackhole => "idle_blackhole",
            Cause::PeerAbort => "peer_abort",
            Cause::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Actor {
    Client,
    Server,
    Intermediary,
    Unknown,
}

impl Actor {
    pub fn name(self) -> &'static str {
        match self {
            Actor::Client => "client",
            Actor::Server => "server",
            Actor::Intermediary => "intermediary",
            Actor::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub cause: Cause,
    /// `None` for a connection nobody ended (alive).
    pub killed_by: Option<Actor>,
    pub confidence: f64,
    pub idle_before_s: Option<f64>,
    pub at: Option<Ts>,
    pub evidence: Vec<String>,
    /// When the fatal silence ended (the packet that met the dead flow, or the close itself): the
    /// path rules leave that silence out of what was survived.
    pub fatal_silence_end: Option<Ts>,
}

impl Verdict {
    fn new(cause: Cause) -> Verdict {
        Verdict {
            cause,
            killed_by: Some(Actor::Unknown),
            confidence: 0.0,
            idle_before_s: None,
            at: None,
            evidence: Vec::new(),
            fatal_silence_end: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub name: String,
    pub timeout_s: f64,
    pub on_expiry: &'static str,
    /// Matched through its configurable range (with the server side recognised as this product),
    /// not its default.
    pub configured: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: String,
    /// Indices into the timelines.
    pub connections: Vec<usize>,
    pub estimate: Option<(f64, f64)>,
    pub matches: Vec<Match>,
    pub evidence: Vec<String>,
    pub recommendation: String,
}

/// Everything diagnosis concluded, in the order of the timelines.
#[derive(Clone, Debug)]
pub struct Diagnosis {
    pub verdicts: Vec<Verdict>,
    /// Per connection: which RSTs (by time) are suspected forged.
    pub forged_rsts: Vec<Vec<(Ts, bool)>>,
    pub keepalive: Vec<Keepalive>,
    /// Per connection: implementations recognised for the client and the server side.
    pub implementations: Vec<[Option<String>; 2]>,
    pub findings: Vec<Finding>,
}

/// What diagnosis concludes of one connection on its own: a connection is judged when it ends, and
/// its timeline can go.
#[derive(Clone, Debug)]
pub struct Judged {
    /// Before the path rules ([`settle`]) had their say.
    pub verdict: Verdict,
    pub keepalive: Keepalive,
    /// Implementations recognised for the client and the server side.
    pub implementations: [Option<String>; 2],
    /// Which RSTs (by time) are suspected forged.
    pub forged_rsts: Vec<(Ts, bool)>,
    path: PathFacts,
}

impl Judged {
    /// Whether the path rules leave its verdict as it is: all but server FINs, which are judged
    /// against the rest of their path.
    pub fn verdict_final(&self) -> bool {
        self.path.pending == connection::Pending::None
    }

    /// Whether the path rules read its verdict's evidence: they change verdicts that are not
    /// final and quote that of a few causes in findings ([`path::QUOTED`]). Once a final verdict
    /// is written out, other evidence need not be kept.
    pub fn evidence_read_later(&self) -> bool {
        !self.verdict_final() || path::QUOTED.contains(&self.verdict.cause)
    }

    /// What is kept of the connection until the end of the run. Its verdict is kept whole where
    /// the path rules may change it, or where `whole` asks it (the verdict is still to be
    /// written); otherwise only what the rules read of it.
    pub fn summary(self, whole: bool) -> Summary {
        let v = self.verdict;
        let verdict = if whole || self.path.pending != connection::Pending::None {
            Kept::Whole(Box::new(v))
        } else if path::QUOTED.contains(&v.cause) {
            let line = path::quoted(&v).and_then(|i| v.evidence.into_iter().nth(i));
            Kept::Quoted(Box::new(Quoted {
                cause: v.cause,
                killed_by: v.killed_by,
                idle_before_s: MaybeSecs::new(v.idle_before_s),
                at: v.at,
                line,
            }))
        } else {
            Kept::Brief {
                cause: v.cause,
                killed_by: v.killed_by,
                idle_before_s: MaybeSecs::new(v.idle_before_s),
            }
        };
        Summary {
            verdict,
            path: self.path,
        }
    }
}

/// What is kept of a connection from its judgement to the end of the run, for the path rules and
/// its final verdict: about a hundred bytes, where its timeline took thousands. It is written
/// to a temporary file while the run goes on (report/store.rs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    verdict: Kept,
    path: PathFacts,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Kept {
    Whole(Box<Verdict>),
    /// What the path rules read of a verdict that they do not change, but quote.
    Quoted(Box<Quoted>),
    /// What the path rules read of a verdict that they neither change nor quote.
    Brief {
        cause: Cause,
        killed_by: Option<Actor>,
        idle_before_s: MaybeSecs,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Quoted {
    cause: Cause,
    killed_by: Option<Actor>,
    idle_before_s: MaybeSecs,
    at: Option<Ts>,
    /// The line of its evidence that findings quote ([`path::quoted`]), if it has one.
    line: Option<String>,
}

impl Summary {
    /// The verdict, when it was kept whole ([`Judged::summary`]); final once [`settle`]d.
    pub fn verdict(&self) -> Option<&Verdict> {
        match &self.verdict {
            Kept::Whole(v) => Some(v),
            Kept::Quoted(_) | Kept::Brief { .. } => None,
        }
    }

    fn cause(&self) -> Cause {
        match &self.verdict {
            Kept::Whole(v) => v.cause,
            Kept::Quoted(q) => q.cause,
            Kept::Brief { cause, .. } => *cause,
        }
    }

    fn killed_by(&self) -> Option<Actor> {
        match &self.verdict {
            Kept::Whole(v) => v.killed_by,
            Kept::Quoted(q) => q.killed_by,
            Kept::Brief { killed_by, .. } => *killed_by,
        }
    }

    fn idle_before_s(&self) -> Option<f64> {
        match &self.verdict {
            Kept::Whole(v) => v.idle_before_s,
            Kept::Quoted(q) => q.idle_before_s.get(),
            Kept::Brief { idle_before_s, .. } => idle_before_s.get(),
        }
    }

    /// When it died, of a verdict kept whole or quoted.
    fn at(&self) -> Option<Ts> {
        match &self.verdict {
            Kept::Whole(v) => v.at,
            Kept::Quoted(q) => q.at,
            Kept::Brief { .. } => None,
        }
    }

    /// The evidence of a verdict kept whole; of one quoted, the line quoted.
    fn evidence(&self) -> &[String] {
        match &self.verdict {
            Kept::Whole(v) => &v.evidence,
            Kept::Quoted(q) => q.line.as_slice(),
            Kept::Brief { .. } => &[],
        }
    }
}

impl AsRef<Summary> for Summary {
    fn as_ref(&self) -> &Summary {
        self
    }
}

impl AsMut<Summary> for Summary {
    fn as_mut(&mut self) -> &mut Summary {
        self
    }
}

/// Judges one connection alone (everything but the path rules).
pub fn judge(tl: &Timeline, cat: &Catalogue) -> Judged {
    let f = Facts::new(tl);
    let sent = |r: Role| {
        let pings = &f.pings;
        move |o: &[u8; 8]| {
            pings
                .iter()
                .any(|p| p.from == r && p.inferred.is_none() && p.opaque == *o)
        }
    };
    let client = cat.recognise(true, f.settings[0], sent(Role::Client));
    let server = cat.recognise(false, f.settings[1], sent(Role::Server));
    // A proxy product (nginx, HAProxy, Envoy) answering requests that are not gRPC is the
    // origin server itself; in front of gRPC it relays someone else's service.
    let streams = &tl.streams;
    let not_grpc = !streams.is_empty()
        && streams.values().all(|s| {
            s.content_type.is_some()
                && !s
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("application/grpc"))
        });
    let proxy = server
        .filter(|s| s.is_proxy && !not_grpc)
        .map(|s| s.implementation.as_str());
    let (verdict, pending) = connection::judge(&f, proxy);
    let keepalive = keepalive::reconstruct(&f, cat);
    // Where in the catalogue, for the path rules: an index is smaller than the name.
    let index = |found: Option<&catalogue::Fingerprint>| {
        let found = found?;
        let i = cat
            .fingerprints
            .iter()
            .position(|f| std::ptr::eq(f, found))?;
        u16::try_from(i).ok()
    };
    let path = PathFacts::new(
        &f,
        &verdict,
        pending,
        &keepalive.client,
        [index(client), index(server)],
    );
    Judged {
        verdict,
        keepalive,
        implementations: [
            client.map(|c| c.implementation.clone()),
            server.map(|s| s.implementation.clone()),
        ],
        forged_rsts: f.rsts.iter().map(|r| (r.ts, r.forged)).collect(),
        path,
    }
}

/// The path rules over every connection of the run, in connection order (`conns`, as kept since
/// each was judged, with the catalogue they were judged with): the verdicts they change are made
/// final in place, and the findings go to sinks from `sink` as they are found.
///
/// The paths are settled in two parts (on two threads for a long run), each with its own sink,
/// returned in the order of the paths. The findings are reported most severe first; within a
/// severity, those of the first part, then those of the second, each in the order its sink was
/// given them ([`reported`]).
pub fn settle<T: AsRef<Summary> + AsMut<Summary> + Sync, F: Findings>(
    conns: &mut [T],
    cat: &Catalogue,
    sink: impl Fn() -> F + Sync,
) -> [F; 2] {
    path::settle(conns, cat, sink)
}

/// What takes the findings of the path rules as they are found ([`settle`]): a long run's need
/// not all be in memory at once, in the rules' form.
pub trait Findings: Send {
    fn found(&mut self, f: Finding);
}

impl Findings for Vec<Finding> {
    fn found(&mut self, f: Finding) {
        self.push(f);
    }
}

/// Findings kept whole ([`settle`]), in the order they are reported.
pub fn reported(parts: [Vec<Finding>; 2]) -> Vec<Finding> {
    let [mut all, second] = parts;
    all.extend(second);
    all.sort_by_key(|f| std::cmp::Reverse(f.severity));
    all
}

/// Judges and settles timelines held whole (tests, fuzzing).
pub fn diagnose(timelines: &[Timeline], cat: &Catalogue) -> Diagnosis {
    let judged: Vec<Judged> = timelines.iter().map(|tl| judge(tl, cat)).collect();
    let keepalive = judged.iter().map(|j| j.keepalive.clone()).collect();
    let implementations = judged.iter().map(|j| j.implementations.clone()).collect();
    let forged_rsts = judged.iter().map(|j| j.forged_rsts.clone()).collect();
    let mut conns: Vec<Summary> = judged.into_iter().map(|j| j.summary(true)).collect();
    let findings = reported(settle(&mut conns, cat, Vec::new));
    let verdicts = conns
        .into_iter()
        .filter_map(|c| match c.verdict {
            Kept::Whole(v) => Some(*v),
            Kept::Quoted(_) | Kept::Brief { .. } => None,
        })
        .collect();
    Diagnosis {
        verdicts,
        forged_rsts,
        keepalive,
        implementations,
        findings,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Bytes as lowercase hex, two digits each (how PING payloads are shown and catalogued).
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        text.push(HEX_DIGITS[usize::from(b >> 4)] as char);
        text.push(HEX_DIGITS[usize::from(b & 0xf)] as char);
    }
    text
}
