//! Keepalive behaviour read from record sizes when the plaintext is out of reach. An HTTP/2 PING is a
//! 17-byte frame (9-byte header, 8 bytes of opaque data) and usually travels alone in its record,
//! so its record's plaintext is 17 bytes; its ACK, also 17 bytes, comes back the other way about an
//! RTT later. Other 17-byte frames exist (a GOAWAY without debug data, a DATA frame of 8 bytes), so
//! each inferred PING carries a confidence: higher when the answer is the other side's next record.

use crate::capture::Ts;
use crate::tcp::Dir;
use crate::timeline::{EventKind, Timeline};
use serde::{Deserialize, Serialize};

/// Plaintext length of a record holding one PING frame and nothing else.
pub const PING_RECORD_PLAINTEXT: usize = 17;
/// An answer later than this is not taken as the ACK.
const MAX_ACK_DELAY_NS: i64 = 2_000_000_000;

/// Confidence (percent) of a PING answered by the other side's next record.
const ANSWERED_NEXT: u8 = 90;
/// Answered, but with other records of the answering side in between.
const ANSWERED_LATER: u8 = 70;
/// Never answered: a PING to a dead peer, or another 17-byte frame.
const UNANSWERED: u8 = 40;
/// A lone 17-byte record sent right after a bigger record from the other side, and not answered:
/// the ACK of a PING that travelled with other frames (SETTINGS, WINDOW_UPDATE) in that record.
const BUNDLED: u8 = 60;
/// How soon after the other side's record such an ACK goes out.
const BUNDLE_WINDOW_NS: i64 = 50_000_000;

#[derive(Clone, Copy, Serialize, Deserialize)]
struct Candidate {
    ts: Ts,
    /// Index of its event in the timeline.
    event: Option<usize>,
    /// Records the other side sent since.
    answers_between: u32,
    /// It went out right after a bigger record of the other side, sent at this time.
    bundled: Option<Ts>,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Inference {
    /// The last unanswered 17-byte record of each direction.
    pending: [Option<Candidate>; 2],
    /// The last record of each direction: time and plaintext length.
    last: [Option<(Ts, usize)>; 2],
    pub pings: u64,
}

impl Inference {
    /// A protected record of `dir` whose plaintext is `plain` bytes long.
    pub fn record(&mut self, dir: Dir, ts: Ts, plain: usize, tl: &mut Timeline) {
        let (i, o) = (dir.index(), dir.reverse().index());
        self.expire(ts, tl);
        let previous = self.last[i];
        self.last[i] = Some((ts, plain));
        if plain == PING_RECORD_PLAINTEXT {
            // The other side's candidate, if it went out right after a bigger record of this side
            // and other records came between, was an ACK of a PING bundled in that record.
            if self.pending[o].is_some_and(|c| c.bundled.is_some() && c.answers_between > 0) {
                self.settle(o, tl);
            }
            if let Some(c) = self.pending[o].take() {
                if ts.ns_since(c.ts) <= MAX_ACK_DELAY_NS {
                    let confidence = if c.answers_between == 0 {
                        ANSWERED_NEXT
                    } else {
                        ANSWERED_LATER
                    };
                    set_confidence(tl, c.event, confidence);
                    tl.push(
                        ts,
                        dir,
                        EventKind::InferredPing {
                            ack: true,
                            confidence,
                        },
                    );
                    return;
                }
            }
            // A new candidate from this side: the previous one went unanswered.
            self.settle(i, tl);
            let before = tl.events.len();
            tl.push(
                ts,
                dir,
                EventKind::InferredPing {
                    ack: false,
                    confidence: UNANSWERED,
                },
            );
            self.pings += 1;
            // This side's first record after a bigger one of the other side, and soon after it.
            let bundled = self.last[o].and_then(|(t, p)| {
                let first = previous.is_none_or(|(own, _)| own <= t);
                (p > PING_RECORD_PLAINTEXT && first && ts.ns_since(t) <= BUNDLE_WINDOW_NS)
                    .then_some(t)
            });
            self.pending[i] = Some(Candidate {
                ts,
                event: (tl.events.len() > before).then_some(before),
                answers_between: 0,
                bundled,
            });
            return;
        }
        if let Some(c) = &mut self.pending[o] {
            c.answers_between += 1;
        }
    }

    /// Candidates left unanswered for too long are settled: a lone record that followed a bigger
    /// one of the other side was the ACK of a PING inside it; others stay unanswered PINGs.
    fn expire(&mut self, now: Ts, tl: &mut Timeline) {
        for i in 0..2 {
            if self.pending[i].is_some_and(|c| now.ns_since(c.ts) > MAX_ACK_DELAY_NS) {
                self.settle(i, tl);
            }
        }
    }

    /// Ends the candidate of direction `i` without an answer.
    fn settle(&mut self, i: usize, tl: &mut Timeline) {
        {
            let Some(c) = self.pending[i].take() else {
                return;
            };
            let (Some(at), Some(e)) = (c.bundled, c.event.and_then(|n| tl.events.get_mut(n)))
            else {
                return;
            };
            let dir = e.dir;
            let quiet = e.quiet_ns;
            // The PING took the other side's record; this record is its ACK.
            e.ts = at;
            e.dir = dir.reverse();
            e.quiet_ns = 0;
            e.kind = EventKind::InferredPing {
                ack: false,
                confidence: BUNDLED,
            };
            tl.push_late(
                c.ts,
                dir,
                EventKind::InferredPing {
                    ack: true,
                    confidence: BUNDLED,
                },
                quiet,
            );
        }
    }

    /// `dir` ends the TLS session: an unanswered 17-byte record just before was its GOAWAY.
    pub fn closing(&mut self, dir: Dir, tl: &mut Timeline) {
        let Some(c) = self.pending[dir.index()] else {
            return;
        };
        if self.last[dir.index()].is_some_and(|(t, _)| t == c.ts) {
            self.reinterpret(
                dir,
                c.ts,
                EventKind::InferredGoaway {
                    plaintext: PING_RECORD_PLAINTEXT as u32,
                },
                tl,
            );
        }
    }

    /// The unanswered candidate of `dir` at `ts`, if any, becomes `kind` (a GOAWAY after all).
    pub fn reinterpret(&mut self, dir: Dir, ts: Ts, kind: EventKind, tl: &mut Timeline) -> bool {
        let Some(c) = self.pending[dir.index()] else {
            return false;
        };
        let Some(e) = c.event.and_then(|i| tl.events.get_mut(i)) else {
            return false;
        };
        if c.ts != ts || !matches!(e.kind, EventKind::InferredPing { ack: false, .. }) {
            return false;
        }
        e.kind = kind;
        self.pings = self.pings.saturating_sub(1);
        self.pending[dir.index()] = None;
        true
    }

    pub fn finish(&mut self, tl: &mut Timeline) {
        self.expire(Ts(i64::MAX), tl);
        self.pending = [None, None];
    }
}

fn set_confidence(tl: &mut Timeline, event: Option<usize>, value: u8) {
    if let Some(EventKind::InferredPing { confidence, .. }) = event
        .and_then(|i| tl.events.get_mut(i))
        .map(|e| &mut e.kind)
    {
        *confidence = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn tl() -> Timeline {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:443".parse().unwrap();
        Timeline::new(a, b, Ts(0))
    }

    fn inferred(tl: &Timeline) -> Vec<(Dir, bool, u8)> {
        tl.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::InferredPing { ack, confidence } => Some((e.dir, ack, confidence)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ping_answered_by_next_record() {
        let (mut inf, mut tl) = (Inference::default(), tl());
        inf.record(Dir::AtoB, Ts(1_000_000_000), 17, &mut tl);
        inf.record(Dir::BtoA, Ts(1_000_300_000), 17, &mut tl);
        assert_eq!(
            inferred(&tl),
            vec![
                (Dir::AtoB, false, ANSWERED_NEXT),
                (Dir::BtoA, true, ANSWERED_NEXT)
            ]
        );
        assert_eq!(inf.pings, 1);
    }

    #[test]
    fn other_records_between_lower_confidence_and_late_answers_do_not_count() {
        let (mut inf, mut tl) = (Inference::default(), tl());
        inf.record(Dir::AtoB, Ts(0), 17, &mut tl);
        inf.record(Dir::BtoA, Ts(1_000), 300, &mut tl);
        inf.record(Dir::BtoA, Ts(2_000), 17, &mut tl);
        // A 17-byte record 3 s after another is a new PING, not an ACK.
        inf.record(Dir::AtoB, Ts(5_000_000_000), 17, &mut tl);
        assert_eq!(
            inferred(&tl),
            vec![
                (Dir::AtoB, false, ANSWERED_LATER),
                (Dir::BtoA, true, ANSWERED_LATER),
                (Dir::AtoB, false, UNANSWERED)
            ]
        );
    }
}
