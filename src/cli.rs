//! Command line: raw flags (clap derive) turned into a validated run configuration.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "h2keepalive",
    version,
    about = "Follows every HTTP/2 (gRPC) connection in a capture and tells why long-lived connections die"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse capture files (pcap, pcapng, gzip of either, or - for standard input).
    Analyze(AnalyzeArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TablesFormat {
    Parquet,
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files; several are merged by time.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat TCP traffic on this port as HTTP/2 (as Wireshark's "Decode As"); repeatable.
    #[arg(short = 'd', long = "decode-as", value_name = "PORT", value_parser = parse_port)]
    pub decode_as: Vec<u16>,
    /// Extra or overriding entries for the catalogue of known intermediary timeouts (JSON, the
    /// shape of the built-in catalogue; an entry with a known name replaces it).
    #[arg(long, value_name = "FILE")]
    pub timeouts: Option<String>,
    /// Write a self-contained HTML timeline report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,
    /// Write a PNG timeline to FILE.
    #[arg(long, value_name = "FILE")]
    pub png: Option<String>,
    /// Write the connections, events and pings tables into DIR.
    #[arg(long, value_name = "DIR")]
    pub tables: Option<String>,
    /// Format of --tables.
    #[arg(long, value_enum, default_value_t = TablesFormat::Parquet)]
    pub tables_format: TablesFormat,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// More detail: every event of every connection.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Accepts `50051` and Wireshark's `tcp.port==50051,http2` spelling.
fn parse_port(s: &str) -> Result<u16, String> {
    let s = s.trim();
    let s = s.strip_prefix("tcp.port==").unwrap_or(s);
    let s = s.strip_suffix(",http2").unwrap_or(s);
    s.parse::<u16>().map_err(|_| format!("not a TCP port: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("50051"), Ok(50051));
        assert_eq!(parse_port("tcp.port==8080,http2"), Ok(8080));
        assert!(parse_port("70000").is_err());
    }
}
