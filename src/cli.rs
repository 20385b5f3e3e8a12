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
    /// Capture on a live interface, print findings as they happen, and a summary at the end.
    Live(LiveArgs),
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

/// Options both subcommands take.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat TCP traffic on this port as HTTP/2 (as Wireshark's "Decode As"); repeatable.
    #[arg(short = 'd', long = "decode-as", value_name = "PORT", value_parser = parse_port)]
    pub decode_as: Vec<u16>,
    /// TLS key log (NSS format, as written by SSLKEYLOGFILE) to decrypt HTTP/2 over TLS. Secrets
    /// embedded in a pcapng (Decryption Secrets Blocks) are used without it.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<String>,
    /// Extra or overriding entries for the catalogue of known intermediary timeouts (JSON, the
    /// shape of the built-in catalogue; an entry with a known name replaces it).
    #[arg(long, value_name = "FILE")]
    pub timeouts: Option<String>,
    /// Write a self-contained HTML timeline report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,
    /// Write a PNG timeline to FILE (SVG when FILE ends in .svg).
    #[arg(long, value_name = "FILE")]
    pub png: Option<String>,
    /// Write the connections, events and pings tables into DIR.
    #[arg(long, value_name = "DIR")]
    pub tables: Option<String>,
    /// Format of --tables.
    #[arg(long, value_enum, default_value_t = TablesFormat::Parquet)]
    pub tables_format: TablesFormat,
    /// No progress bar or status line.
    #[arg(short, long)]
    pub quiet: bool,
    /// More detail: every event of every connection.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files; several are merged by time.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Interface to capture on (any, eth0, lo, ...).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub iface: String,
    /// BPF capture filter, as tcpdump takes it (e.g. 'tcp port 50051').
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,
    /// Also save what was captured to FILE (pcap), to analyse again later.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Bytes captured per packet.
    #[arg(long, default_value_t = 262_144)]
    pub snaplen: i32,
    /// Put the interface in promiscuous mode.
    #[arg(long)]
    pub promisc: bool,
    #[command(flatten)]
    pub common: CommonArgs,
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
