//! h2keepalive: reads packet captures, follows every HTTP/2 (gRPC) connection in them, and reports
//! each connection's timeline — and, in later stages, why it died.
//!
//! Packets flow one way: `capture` → `wire` → `tcp` → `http2` → `timeline` → `report`, glued by
//! `analyzer`. Each stage hands the next a plain value.

#![deny(unsafe_code)]
// What a capture holds must never panic: the shipped code has no unwrap, expect or panic; tests
// may (`cargo clippy --lib --bins`, run by .ci/run, refuses them elsewhere). main.rs only sets an
// allocator option and calls `main_with_args`.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod analyzer;
pub mod capture;
pub mod cli;
pub mod diagnose;
pub mod http2;
pub mod report;
pub mod spill;
pub mod tcp;
pub mod timeline;
pub mod tls;
pub mod wire;

#[cfg(test)]
mod testing;

use analyzer::{Analyzer, Config, Sink};
use capture::{CaptureReader, Merged};
use clap::Parser;
use report::store::{Keep, Store, Stored};
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit codes of CONTRACT.md.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const FATAL: u8 = 2;
}

pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors are fatal (exit 2).
            let code = if e.use_stderr() {
                exit::FATAL
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        cli::Command::Analyze(args) => analyze(&args),
        cli::Command::Live(args) => live(&args),
    }
}

fn catalogue(common: &cli::CommonArgs) -> Result<diagnose::Catalogue, String> {
    match &common.timeouts {
        Some(path) => diagnose::Catalogue::with_user_file(path),
        None => Ok(diagnose::Catalogue::builtin()),
    }
}

/// Prints findings that became true while input is still arriving: on standard output for text,
/// on standard error when standard output carries the JSON document.
struct Alerts {
    watcher: diagnose::watch::Watcher,
    json: bool,
    t0: Option<capture::Ts>,
}

impl Alerts {
    fn new(common: &cli::CommonArgs) -> Alerts {
        Alerts {
            watcher: diagnose::watch::Watcher::new(),
            json: common.format == cli::Format::Json,
            t0: None,
        }
    }

    fn check(&mut self, analyzer: &mut Analyzer, now: capture::Ts) {
        let mut alerts = Vec::new();
        let watcher = &mut self.watcher;
        analyzer.watch(|tl, e| alerts.extend(watcher.event(tl, e)));
        alerts.extend(self.watcher.overdue(now));
        let t0 = *self
            .t0
            .get_or_insert(analyzer.stats.first_ts.unwrap_or(now));
        for a in alerts {
            let line = a.line(t0);
            if self.json {
                eprintln!("h2keepalive: {line}");
            } else {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{line}").and_then(|_| out.flush());
            }
        }
    }
}

fn analyze(args: &cli::AnalyzeArgs) -> ExitCode {
    let catalogue = match catalogue(&args.common) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h2keepalive: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let mut readers = Vec::new();
    for name in &args.captures {
        match CaptureReader::open(name) {
            Ok(r) => readers.push(r),
            Err(e) => {
                eprintln!("h2keepalive: {e}");
                return ExitCode::from(exit::FATAL);
            }
        }
    }
    let mut input = Merged::new(readers);
    let cfg = Config {
        decode_as: args.common.decode_as.clone(),
        keys: Default::default(),
        park_after_ns: park_after(),
    };
    let mut warnings = Vec::new();
    if let Err(e) = load_keylog(&args.common, &cfg.keys, &mut warnings) {
        eprintln!("h2keepalive: {e}");
        return ExitCode::from(exit::FATAL);
    }
    let mut progress = Progress::new(!args.common.quiet && io::stderr().is_terminal());
    // A pipe (`tcpdump -w - | h2keepalive analyze -`) may stay open for hours: say what is found
    // as it is found.
    let from_pipe = args.captures.iter().any(|c| c == "-");
    // Files: connections split over threads, same result (analyzer::shards).
    let threads = analyzer::shards::threads();
    let keep = keep(&args.common);
    if !from_pipe {
        let store = || Store::new(&catalogue, keep);
        let tick = |input: &Merged, n| progress.update(input.progress(), n);
        let result = if threads > 1 {
            analyzer::shards::run(&mut input, &cfg, threads, store, tick)
        } else {
            Some(one_thread(&mut input, &cfg, store(), tick))
        };
        if let Some((stores, stats)) = result {
            progress.clear();
            warnings.extend(input.take_warnings().iter().map(|w| w.to_string()));
            return finish(
                &args.common,
                Stored::new(stores),
                stats,
                args.captures.clone(),
                warnings,
                &catalogue,
            );
        }
    }
    let mut analyzer = Analyzer::new(cfg);
    let mut alerts = from_pipe.then(|| Alerts::new(&args.common));
    // Ctrl-C on `tcpdump ... | h2keepalive analyze -` reaches both: tcpdump ends and closes the pipe,
    // and this run must live to read the end of it and write the summary, not die with it.
    let stop = Arc::new(AtomicBool::new(false));
    if from_pipe {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
        }
    }
    let mut last_check = Instant::now();
    let mut last_check_ts = None;
    let mut n: u64 = 0;
    while let Some(p) = input.next_packet() {
        let ts = p.ts;
        analyzer.packet(&p);
        if let Some(secrets) = input.take_secrets() {
            analyzer.add_keylog(&secrets);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        n += 1;
        if n % 4096 == 0 {
            progress.update(input.progress(), n);
        }
        // Checked as the capture's clock moves (a burst already in the pipe is read in an instant,
        // and the next read may block for long) and as the wall clock does.
        if let Some(a) = &mut alerts {
            let due = last_check_ts.is_none_or(|t: capture::Ts| ts.ns_since(t) >= 200_000_000);
            if due || last_check.elapsed() >= Duration::from_millis(200) {
                a.check(&mut analyzer, ts);
                last_check = Instant::now();
                last_check_ts = Some(ts);
            }
        }
    }
    progress.clear();
    warnings.extend(input.take_warnings().iter().map(|w| w.to_string()));
    if let (Some(a), Some(last)) = (&mut alerts, analyzer.stats.last_ts) {
        a.check(&mut analyzer, last);
    }
    let (timelines, stats) = analyzer.finish();
    finish(
        &args.common,
        stored(timelines, &catalogue, keep),
        stats,
        args.captures.clone(),
        warnings,
        &catalogue,
    )
}

/// `H2KEEPALIVE_PARK_AFTER_S`: seconds of capture time a connection stays quiet before it is
/// parked (analyzer::PARK_AFTER_NS when unset; tests set 0 to park every connection after each of
/// its packets).
fn park_after() -> Option<i64> {
    let secs: f64 = std::env::var("H2KEEPALIVE_PARK_AFTER_S")
        .ok()?
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0).then_some((secs * 1e9) as i64)
}

/// What is kept of each connection: its JSON text when the document is the only output.
fn keep(common: &cli::CommonArgs) -> Keep {
    let reports = common.html.is_some() || common.png.is_some() || common.tables.is_some();
    match common.format {
        cli::Format::Json if !reports => Keep::Json,
        _ => Keep::Model,
    }
}

/// Reads `input` to its end through one analyzer on this thread.
fn one_thread<'a>(
    input: &mut Merged,
    cfg: &Config,
    store: Store<'a>,
    mut tick: impl FnMut(&Merged, u64),
) -> (Vec<Store<'a>>, analyzer::Stats) {
    let mut analyzer = Analyzer::with_sink(cfg.clone(), tcp::MAX_FLOWS, store);
    let mut n: u64 = 0;
    while let Some(p) = input.next_packet() {
        analyzer.packet(&p);
        if let Some(secrets) = input.take_secrets() {
            analyzer.add_keylog(&secrets);
        }
        n += 1;
        if n % 4096 == 0 {
            tick(input, n);
        }
    }
    let (store, stats) = analyzer.finish_into();
    (vec![store], stats)
}

/// Timelines held whole (input read as it arrives, live capture), stored as the analyzers' sinks
/// would have.
fn stored(timelines: Vec<timeline::Timeline>, cat: &diagnose::Catalogue, keep: Keep) -> Stored {
    let mut store = Store::new(cat, keep);
    for (order, tl) in timelines.into_iter().enumerate() {
        store.ended(order as u64, tl);
    }
    Stored::new(vec![store])
}

fn live(args: &cli::LiveArgs) -> ExitCode {
    let catalogue = match catalogue(&args.common) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h2keepalive: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let opts = capture::live::Options {
        iface: args.iface.clone(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: args.promisc,
        save: args.write.clone(),
    };
    let mut source = match capture::live::Live::open(&opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("h2keepalive: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    // Ctrl-C and SIGTERM end the capture like --duration does: the summary is still written.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("h2keepalive: cannot handle signal {sig}: {e}");
            return ExitCode::from(exit::FATAL);
        }
    }
    let status = !args.common.quiet && io::stderr().is_terminal();
    let cfg = Config {
        decode_as: args.common.decode_as.clone(),
        keys: Default::default(),
        park_after_ns: park_after(),
    };
    let mut alerts = Alerts::new(&args.common);
    let mut warnings = Vec::new();
    // A client writing SSLKEYLOGFILE adds lines as it connects: the file is read again as it grows.
    let mut keylog = match load_keylog(&args.common, &cfg.keys, &mut warnings) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("h2keepalive: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let mut analyzer = Analyzer::new(cfg);
    let started = Instant::now();
    let mut last_check = Instant::now();
    let mut last_packet: Option<(capture::Ts, Instant)> = None;
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut shown = false;
    loop {
        if stop.load(Ordering::Relaxed)
            || args
                .duration
                .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
            || args.count.is_some_and(|c| packets >= c)
        {
            break;
        }
        match source.next_packet() {
            Ok(Some(p)) => {
                analyzer.packet(&p);
                packets += 1;
                bytes += p.data.len() as u64;
                last_packet = Some((p.ts, Instant::now()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                warnings.push(e);
                break;
            }
        }
        if last_check.elapsed() >= Duration::from_millis(250) {
            if let Some(k) = &mut keylog {
                if let Ok(new) = k.read_new() {
                    if !new.is_empty() {
                        analyzer.add_keylog(&new);
                    }
                }
            }
            // The capture's clock moves on while nothing arrives.
            if let Some((ts, at)) = last_packet {
                alerts.check(
                    &mut analyzer,
                    ts.add_ns(at.elapsed().as_nanos().min(i64::MAX as u128) as i64),
                );
            }
            if status {
                let st = source.stats();
                eprint!(
                    "\r{}: {} connections, {packets} packets, {:.1} MB, {} dropped by the kernel, {:.0} s\x1b[K",
                    source.iface(),
                    analyzer.live_connections(),
                    bytes as f64 / 1e6,
                    st.kernel_dropped,
                    started.elapsed().as_secs_f64()
                );
                shown = true;
            }
            last_check = Instant::now();
        }
    }
    if shown {
        eprint!("\r\x1b[K");
    }
    if let Some((ts, _)) = last_packet {
        alerts.check(&mut analyzer, ts);
    }
    let st = source.stats();
    if st.kernel_dropped > 0 || st.interface_dropped > 0 {
        warnings.push(format!(
            "{}: the kernel dropped {} and the interface {} packets: the capture is incomplete",
            source.iface(),
            st.kernel_dropped,
            st.interface_dropped
        ));
    }
    if let Err(e) = source.finish() {
        warnings.push(e);
    }
    let name = match &args.write {
        Some(w) => format!("{} (live, saved to {w})", args.iface),
        None => format!("{} (live)", args.iface),
    };
    let (timelines, stats) = analyzer.finish();
    finish(
        &args.common,
        stored(timelines, &catalogue, keep(&args.common)),
        stats,
        vec![name],
        warnings,
        &catalogue,
    )
}

/// Reads `--keylog` into the analyzer; an unreadable file is an error, a file with nothing usable
/// a warning.
fn load_keylog(
    common: &cli::CommonArgs,
    keys: &tls::SharedKeys,
    warnings: &mut Vec<String>,
) -> Result<Option<tls::keylog::KeylogFile>, String> {
    let Some(path) = &common.keylog else {
        return Ok(None);
    };
    let mut file = tls::keylog::KeylogFile::new(path);
    let text = file
        .read_new()
        .map_err(|e| format!("cannot read key log {path}: {e}"))?;
    tls::keylog::add_shared(keys, &text);
    let (lines, unusable) = {
        let k = keys.read().unwrap_or_else(|e| e.into_inner());
        (k.lines, k.unusable)
    };
    if lines == 0 {
        warnings.push(format!(
            "key log {path}: no usable line (expected NSS key log lines such as CLIENT_RANDOM or CLIENT_TRAFFIC_SECRET_0)"
        ));
    } else if unusable > 0 {
        warnings.push(format!(
            "key log {path}: {unusable} of {} lines not usable",
            unusable + lines
        ));
    }
    Ok(Some(file))
}

/// The end of a run, from files or an interface: diagnosis, the summary, the reports, the exit code.
fn finish(
    common: &cli::CommonArgs,
    stored: Stored,
    stats: analyzer::Stats,
    files: Vec<String>,
    warnings: Vec<String>,
    catalogue: &diagnose::Catalogue,
) -> ExitCode {
    let mut warnings = warnings;
    if stats.time_went_backwards > 0 {
        warnings.push(format!(
            "{} packets have a timestamp earlier than the packet before them",
            stats.time_went_backwards
        ));
    }
    if stats.flows_refused > 0 {
        warnings.push(format!(
            "limit max_flows ({}) reached: {} TCP connections were not followed",
            tcp::MAX_FLOWS,
            stats.flows_refused
        ));
    }
    if stats.parked_lost > 0 {
        warnings.push(format!(
            "{} quiet connection(s) written to a temporary file could not be read back: their later packets were followed as new connections",
            stats.parked_lost
        ));
    }
    if stored.lost() > 0 {
        warnings.push(format!(
            "{} ended connection(s) written to a temporary file could not be read back: they are left out",
            stored.lost()
        ));
    }
    if stats.tls_without_keys > 0 && common.keylog.is_some() {
        warnings.push(format!(
            "{} HTTP/2-over-TLS connection(s) not decrypted: no working key in the key log; their PINGs are inferred from record sizes",
            stats.tls_without_keys
        ));
    }
    for w in &warnings {
        eprintln!("h2keepalive: warning: {w}");
    }
    let mut settled = stored.settle(catalogue);
    let problems = settled.problems();
    let input = report::model::input(files, warnings, &stats, settled.len());
    let stdout = io::stdout().lock();
    let mut stdout = io::BufWriter::with_capacity(1 << 16, stdout);
    let written = if keep(common) == Keep::Json {
        let written = settled.write_json(&input, &mut stdout);
        std::mem::forget(settled);
        written
    } else {
        let doc = settled.document(input);
        if let Err(e) = write_reports(common, &doc) {
            eprintln!("h2keepalive: {e}");
            return ExitCode::from(exit::FATAL);
        }
        let written = match common.format {
            cli::Format::Json => report::write_json(&doc, &mut stdout),
            cli::Format::Text => {
                stdout.write_all(report::text::render(&doc, common.verbose).as_bytes())
            }
        };
        // The process ends now (main_with_args is all main does) and its memory goes back to
        // the OS at once: freeing the report piece by piece only costs time.
        std::mem::forget(doc);
        written
    };
    match written.and_then(|_| stdout.flush()) {
        Ok(()) => {}
        // A reader that went away (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("h2keepalive: cannot write output: {e}");
            return ExitCode::from(exit::FATAL);
        }
    }
    ExitCode::from(if problems { exit::FINDINGS } else { exit::OK })
}

/// The report files asked for with --html, --png and --tables.
fn write_reports(args: &cli::CommonArgs, doc: &report::Document) -> Result<(), String> {
    if let Some(path) = &args.html {
        std::fs::write(path, report::html::render(doc))
            .map_err(|e| format!("{path}: cannot write the HTML report: {e}"))?;
    }
    if let Some(path) = &args.png {
        report::png::write(doc, std::path::Path::new(path))
            .map_err(|e| format!("{path}: cannot write the PNG report: {e}"))?;
    }
    if let Some(dir) = &args.tables {
        let format = match args.tables_format {
            cli::TablesFormat::Parquet => report::tables::Format::Parquet,
            cli::TablesFormat::Csv => report::tables::Format::Csv,
        };
        report::tables::write(doc, std::path::Path::new(dir), format)
            .map_err(|e| format!("{dir}: cannot write the tables: {e}"))?;
    }
    Ok(())
}

/// A one-line progress display on standard error, for a terminal only.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last: now,
            shown: false,
        }
    }

    fn update(&mut self, (done, total): (u64, Option<u64>), packets: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let mb = done as f64 / 1e6;
        let rate = mb / self.started.elapsed().as_secs_f64().max(1e-3);
        let line = match total {
            Some(t) if t > 0 => {
                let pct = (done as f64 / t as f64 * 100.0).min(100.0);
                let width = 30;
                let filled = (pct / 100.0 * width as f64) as usize;
                format!(
                    "[{}{}] {pct:5.1}%  {mb:.0} MB  {packets} packets  {rate:.0} MB/s",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                )
            }
            _ => format!("{mb:.0} MB  {packets} packets  {rate:.0} MB/s"),
        };
        eprint!("\r{line}\x1b[K");
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}
