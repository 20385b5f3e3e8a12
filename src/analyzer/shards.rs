//! The pipeline on several threads, for capture files: connections are split by 4-tuple over
//! `n` analyzers, one per thread, and this thread reads the input, counts its packets, decodes
//! their headers and hands every TCP segment, with a copy of its payload, to the thread that
//! follows its connection, in batches.
//!
//! The result is the one a single [`Analyzer`] gives: a connection's packets all reach one
//! analyzer, in input order; nothing in an analyzer depends on other connections; and
//! connections are numbered by the packet that opened them, counted here over the whole input,
//! so that the sinks' connections can be put in one order. Each thread finishes its own
//! connections at the end, and its sink does its part of the work on them there. One difference, at a limit: `max_flows` applies per thread
//! ([`MAX_FLOWS`] / `n` each), so with hundreds of thousands of connections open at once a few
//! may be refused earlier than by one analyzer.
//!
//! Not for input read as it arrives (findings printed early need every connection in one place)
//! nor for live capture: those run one [`Analyzer`].

use super::{Analyzer, Config, Sink, Stats};
use crate::capture::{Merged, Ts};
use crate::tcp::{FlowKey, MAX_FLOWS};
use crate::wire::Segment;
use std::ops::Range;
use std::sync::mpsc;
use std::thread;

/// Segments handed over at once: large enough that the hand-over costs little per packet.
const BATCH: usize = 2048;
/// Batches waiting per thread: bounds the memory in flight (a few MB) when a thread lags.
const QUEUE: usize = 4;
/// More threads than this gain nothing: reading and decoding on this thread is the limit.
pub const MAX_THREADS: usize = 4;

/// Segments for one analyzer, their payloads copied into one buffer.
struct Batch {
    bytes: Vec<u8>,
    items: Vec<(u64, Ts, Segment<'static>, Range<usize>)>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bytes: Vec::with_capacity(BATCH * 256),
            items: Vec::with_capacity(BATCH),
        }
    }

    fn push(&mut self, n: u64, ts: Ts, seg: &Segment<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(seg.payload);
        let seg = Segment {
            payload: &[],
            ..*seg
        };
        self.items.push((n, ts, seg, start..self.bytes.len()));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    fn run<S: Sink>(&self, analyzer: &mut Analyzer<S>) {
        for (n, ts, seg, payload) in &self.items {
            let seg = Segment {
                payload: self.bytes.get(payload.clone()).unwrap_or(&[]),
                ..*seg
            };
            analyzer.segment(*n, *ts, &seg);
        }
    }
}

/// Threads worth using on this machine: 1 means "run one analyzer on this thread". The
/// environment variable `H2KEEPALIVE_THREADS` overrides the count (1 for one thread).
pub fn threads() -> usize {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = std::env::var("H2KEEPALIVE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(cpus);
    wanted.clamp(1, MAX_THREADS)
}

/// Reads `input` to its end through `n` analyzers on their own threads, each with a sink from
/// `sink`, and ends the run, as [`Analyzer::finish_into`] does: the sinks, and the counts over the
/// whole input. `tick` is called every 4096 packets with the input and the number of packets read
/// (progress). `None` when the threads cannot be started; nothing has been read then.
pub fn run<S: Sink + Send>(
    input: &mut Merged,
    cfg: &Config,
    n: usize,
    sink: impl Fn() -> S + Sync,
    mut tick: impl FnMut(&Merged, u64),
) -> Option<(Vec<S>, Stats)> {
    let n = n.clamp(1, MAX_THREADS);
    thread::scope(|s| {
        let mut senders = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        // Batches come back empty to be filled again: no allocation per batch, and no memory
        // allocated by one thread and freed by another.
        let (recycle, recycled) = mpsc::channel::<Batch>();
        for i in 0..n {
            let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
            let cfg = cfg.clone();
            let recycle = recycle.clone();
            let sink = &sink;
            let worker = thread::Builder::new()
                .name(format!("analyzer-{i}"))
                .spawn_scoped(s, move || {
                    let mut analyzer = Analyzer::with_sink(cfg, MAX_FLOWS / n, sink());
                    for mut batch in rx {
                        batch.run(&mut analyzer);
                        batch.clear();
                        let _ = recycle.send(batch);
                    }
                    analyzer.finish_into()
                });
            match worker {
                Ok(w) => {
                    workers.push(w);
                    senders.push(tx);
                }
                // The threads started so far end when `senders` is dropped.
                Err(_) => return None,
            }
        }
        let mut stats = Stats::default();
        let mut batches: Vec<Batch> = (0..n).map(|_| Batch::new()).collect();
        while let Some(p) = input.next_packet() {
            let ts = p.ts;
            if let Some(seg) = stats.packet(&p) {
                let shard = FlowKey::new(seg.src, seg.dst).shard(n);
                if let (Some(batch), Some(tx)) = (batches.get_mut(shard), senders.get(shard)) {
                    batch.push(stats.packets, ts, &seg);
                    if batch.items.len() >= BATCH {
                        // A thread that is gone (it panicked) shows when it is joined.
                        let empty = recycled.try_recv().unwrap_or_else(|_| Batch::new());
                        let _ = tx.send(std::mem::replace(batch, empty));
                    }
                }
            }
            // Secrets in the capture (Decryption Secrets Blocks) reach every thread's connections.
            if let Some(secrets) = input.take_secrets() {
                crate::tls::keylog::add_shared(&cfg.keys, &secrets);
            }
            if stats.packets % 4096 == 0 {
                tick(input, stats.packets);
            }
        }
        for (batch, tx) in batches.into_iter().zip(&senders) {
            if !batch.items.is_empty() {
                let _ = tx.send(batch);
            }
        }
        drop(senders);
        let mut sinks = Vec::with_capacity(n);
        for w in workers {
            match w.join() {
                Ok((sink, counts)) => {
                    stats.merge(&counts);
                    sinks.push(sink);
                }
                // Whatever went wrong in the thread goes on here, as it would have on one thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Some((sinks, stats))
    })
}
