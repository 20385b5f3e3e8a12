//! h2keepalive: reads packet captures, follows every HTTP/2 (gRPC) connection in them, and reports
//! each connection's timeline — and, in later stages, why it died.
//!
//! Packets flow one way: `capture` → `wire` → `tcp` → `http2` → `timeline` → `report`, glued by
//! `analyzer`. Each stage hands the next a plain value.

#![deny(unsafe_code)]

pub mod analyzer;
pub mod capture;
pub mod cli;
pub mod diagnose;
pub mod http2;
pub mod report;
pub mod tcp;
pub mod timeline;
pub mod wire;

use analyzer::{Analyzer, Config};
use capture::{CaptureReader, Merged};
use clap::Parser;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
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
    }
}

fn analyze(args: &cli::AnalyzeArgs) -> ExitCode {
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
    let catalogue = match &args.timeouts {
        Some(path) => match diagnose::Catalogue::with_user_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("h2keepalive: {e}");
                return ExitCode::from(exit::FATAL);
            }
        },
        None => diagnose::Catalogue::builtin(),
    };
    let mut input = Merged::new(readers);
    let mut analyzer = Analyzer::new(Config {
        decode_as: args.decode_as.clone(),
    });
    let mut progress = Progress::new(!args.quiet && io::stderr().is_terminal());
    let mut n: u64 = 0;
    while let Some(p) = input.next_packet() {
        analyzer.packet(&p);
        n += 1;
        if n % 4096 == 0 {
            progress.update(input.progress(), n);
        }
    }
    progress.clear();
    let warnings: Vec<String> = input
        .take_warnings()
        .iter()
        .map(|w| w.to_string())
        .collect();
    let (timelines, stats) = analyzer.finish();
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
    for w in &warnings {
        eprintln!("h2keepalive: warning: {w}");
    }
    let diagnosis = diagnose::diagnose(&timelines, &catalogue);
    let doc = report::build(
        args.captures.clone(),
        warnings,
        &stats,
        &timelines,
        &diagnosis,
    );
    if let Err(e) = write_reports(args, &doc) {
        eprintln!("h2keepalive: {e}");
        return ExitCode::from(exit::FATAL);
    }
    let stdout = io::stdout().lock();
    let mut stdout = io::BufWriter::with_capacity(1 << 16, stdout);
    let written = match args.format {
        cli::Format::Json => report::write_json(&doc, &mut stdout),
        cli::Format::Text => stdout.write_all(report::text::render(&doc, args.verbose).as_bytes()),
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
    let problems = doc
        .findings
        .iter()
        .any(|f| f.severity == "warning" || f.severity == "error");
    ExitCode::from(if problems { exit::FINDINGS } else { exit::OK })
}

/// The report files asked for with --html, --png and --tables.
fn write_reports(args: &cli::AnalyzeArgs, doc: &report::Document) -> Result<(), String> {
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
