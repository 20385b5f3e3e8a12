//! Tables report: the report model flattened for notebooks and SQL. Three tables, written into one
//! directory as Parquet (arrow-rs, Snappy) or CSV: `connections` (one row per HTTP/2 connection),
//! `events` (one row per notable event, in time order within each connection) and `pings` (one row
//! per entry of the model's `pings`), for polars, DuckDB and pandas as they are.
//!
//! Every column is declared once below, with its type, whether it can be null and how it is read
//! from the model; both formats are written from those declarations, and `docs/tables.md` documents
//! them (a unit test checks that it lists every column, in order, with its type). Timestamps are
//! Arrow `Timestamp(Microsecond, "UTC")` in Parquet and ISO 8601 UTC with microseconds in CSV.
//! Renderers never diagnose: every value is one the model holds, counted, joined or converted.

use super::model::{Connection, Document, Ping};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::borrow::{Borrow, Cow};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file format of all three tables (`--tables-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// Writes `connections`, `events` and `pings` into `dir` (created if missing) and returns the
/// paths written, in that order. An existing file of the same name is replaced.
pub fn write(doc: &Document, dir: &Path, format: Format) -> io::Result<Vec<PathBuf>> {
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "exists and is not a directory",
        ));
    }
    fs::create_dir_all(dir)?;
    let path = |name: &str| dir.join(format!("{name}.{}", format.extension()));
    let written = vec![path("connections"), path("events"), path("pings")];
    write_table(
        &written[0],
        format,
        &connection_columns(),
        doc.connections.iter(),
    )?;
    write_table(
        &written[1],
        format,
        &event_columns(),
        doc.connections.iter().flat_map(events),
    )?;
    write_table(
        &written[2],
        format,
        &ping_columns(),
        doc.connections.iter().flat_map(|c| {
            c.pings.iter().map(move |ping| PingRow {
                connection_id: c.id,
                ping,
            })
        }),
    )?;
    Ok(written)
}

/// The frame types of RFC 9113 §6, each a pair of `<type>_client` / `<type>_server` columns in
/// `connections`; frames of other types are summed in `unknown_client` / `unknown_server`.
const FRAME_TYPES: [&str; 10] = crate::timeline::FRAME_NAMES;

/// Rows gathered before they become one Arrow record batch: bounds memory on huge captures.
const BATCH_ROWS: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Int,
    Float,
    Bool,
    Text,
    Time,
}

impl Type {
    fn arrow(self) -> DataType {
        match self {
            Type::Int => DataType::Int64,
            Type::Float => DataType::Float64,
            Type::Bool => DataType::Boolean,
            Type::Text => DataType::Utf8,
            Type::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// One value of a row. `Time` holds seconds since the epoch, as the model does.
#[derive(Clone, Debug, PartialEq)]
enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    Time(f64),
}

type Getter<R> = Box<dyn for<'r> Fn(&'r R) -> Cell<'r>>;

struct Column<R> {
    name: Cow<'static, str>,
    ty: Type,
    nullable: bool,
    get: Getter<R>,
}

fn column<R>(
    name: impl Into<Cow<'static, str>>,
    ty: Type,
    nullable: bool,
    get: impl for<'r> Fn(&'r R) -> Cell<'r> + 'static,
) -> Column<R> {
    Column {
        name: name.into(),
        ty,
        nullable,
        get: Box::new(get),
    }
}

fn int(x: impl TryInto<i64>) -> Cell<'static> {
    // Counts and ids are far below 2^63; saturate rather than wrap if one ever is not.
    Cell::Int(x.try_into().unwrap_or(i64::MAX))
}

fn text(s: &str) -> Cell<'_> {
    Cell::Text(Cow::Borrowed(s))
}

fn opt<T>(x: Option<T>, f: impl FnOnce(T) -> Cell<'static>) -> Cell<'static> {
    x.map_or(Cell::Null, f)
}

fn opt_text<'a>(x: Option<&'a str>) -> Cell<'a> {
    x.map_or(Cell::Null, text)
}

/// Seconds since the epoch to whole microseconds (f64 keeps sub-microsecond precision for
/// current epochs, so rounding recovers the capture's microsecond exactly).
fn micros(ts: f64) -> i64 {
    // `as` saturates at the ends of i64 and maps NaN to 0: hostile timestamps cannot overflow.
    (ts * 1e6).round() as i64
}

// ---------------------------------------------------------------------------------------------
// connections

fn connection_columns() -> Vec<Column<Connection>> {
    use Type::*;
    let mut cols: Vec<Column<Connection>> = vec![
        column("id", Int, false, |c: &Connection| int(c.id)),
        column("client", Text, false, |c: &Connection| text(&c.client)),
        column("server", Text, false, |c: &Connection| text(&c.server)),
        column("start", Time, false, |c: &Connection| Cell::Time(c.start)),
        column("end", Time, false, |c: &Connection| Cell::Time(c.end)),
        column("duration_s", Float, false, |c: &Connection| {
            // From the microseconds both timestamps are shown with, so that end - start agrees.
            Cell::Float(micros(c.end).saturating_sub(micros(c.start)) as f64 / 1e6)
        }),
        column("detection", Text, false, |c: &Connection| text(c.detection)),
        column("http2", Bool, false, |c: &Connection| Cell::Bool(c.http2)),
        column("tls", Bool, false, |c: &Connection| Cell::Bool(c.tls)),
        column("syn_seen", Bool, false, |c: &Connection| {
            Cell::Bool(c.syn_seen)
        }),
        column("preface_seen", Bool, false, |c: &Connection| {
            Cell::Bool(c.preface_seen)
        }),
    ];
    for name in FRAME_TYPES {
        let lower = name.to_ascii_lowercase();
        cols.push(column(
            format!("{lower}_client"),
            Int,
            false,
            move |c: &Connection| int(c.frames.get(name).map_or(0, |n| n.client)),
        ));
        cols.push(column(
            format!("{lower}_server"),
            Int,
            false,
            move |c: &Connection| int(c.frames.get(name).map_or(0, |n| n.server)),
        ));
    }
    let unknown = |c: &Connection, server: bool| {
        let n: u64 = c
            .frames
            .iter()
            .filter(|(k, _)| !FRAME_TYPES.contains(&k.as_ref()))
            .map(|(_, n)| if server { n.server } else { n.client })
            .fold(0, u64::saturating_add);
        int(n)
    };
    let sent = |c: &Connection, side: &str| {
        int(c.pings.iter().filter(|p| !p.ack && p.from == side).count())
    };
    cols.extend([
        column("unknown_client", Int, false, move |c: &Connection| {
            unknown(c, false)
        }),
        column("unknown_server", Int, false, move |c: &Connection| {
            unknown(c, true)
        }),
        column("pings_sent_client", Int, false, move |c: &Connection| {
            sent(c, "client")
        }),
        column("pings_sent_server", Int, false, move |c: &Connection| {
            sent(c, "server")
        }),
        column("pings_unanswered", Int, false, |c: &Connection| {
            int(c
                .pings
                .iter()
                .filter(|p| !p.ack && p.acked_at.is_none())
                .count())
        }),
        column("ping_acks_unmatched", Int, false, |c: &Connection| {
            int(c.pings.iter().filter(|p| p.ack).count())
        }),
        column(
            "keepalive_interval_s_client",
            Float,
            true,
            |c: &Connection| opt(c.keepalive.client.interval_median_s, Cell::Float),
        ),
        column(
            "keepalive_interval_s_server",
            Float,
            true,
            |c: &Connection| opt(c.keepalive.server.interval_median_s, Cell::Float),
        ),
        column("goaways", Int, false, |c: &Connection| int(c.goaways.len())),
        column("rst_streams", Int, false, |c: &Connection| {
            int(c.rst_streams.len())
        }),
        column("streams", Int, false, |c: &Connection| int(c.streams.len())),
        column("streams_not_kept", Int, false, |c: &Connection| {
            int(c.streams_not_kept)
        }),
        column("packets_client", Int, false, |c: &Connection| {
            int(c.tcp.packets.client)
        }),
        column("packets_server", Int, false, |c: &Connection| {
            int(c.tcp.packets.server)
        }),
        column("payload_bytes_client", Int, false, |c: &Connection| {
            int(c.tcp.payload_bytes.client)
        }),
        column("payload_bytes_server", Int, false, |c: &Connection| {
            int(c.tcp.payload_bytes.server)
        }),
        column("fin_client", Time, true, |c: &Connection| {
            opt(c.tcp.fin.client, Cell::Time)
        }),
        column("fin_server", Time, true, |c: &Connection| {
            opt(c.tcp.fin.server, Cell::Time)
        }),
        column("tcp_rsts", Int, false, |c: &Connection| {
            int(c.tcp.rst.len())
        }),
        column("tcp_rsts_suspect_forged", Int, false, |c: &Connection| {
            int(c.tcp.rst.iter().filter(|r| r.suspect_forged).count())
        }),
        column("usual_ttl_client", Int, true, |c: &Connection| {
            opt(c.tcp.usual_ttl.client, int)
        }),
        column("usual_ttl_server", Int, true, |c: &Connection| {
            opt(c.tcp.usual_ttl.server, int)
        }),
        column("retransmissions", Int, false, |c: &Connection| {
            int(c.tcp.retransmissions)
        }),
        column("gaps", Int, false, |c: &Connection| int(c.tcp.gaps)),
        column("max_transport_idle_s", Float, false, |c: &Connection| {
            Cell::Float(c.idle.max_transport_idle_s)
        }),
        column("max_stream_idle_s", Float, false, |c: &Connection| {
            Cell::Float(c.idle.max_stream_idle_s)
        }),
        column("anomalies", Int, false, |c: &Connection| {
            int(c.anomalies.len())
        }),
        column("limits", Int, false, |c: &Connection| int(c.limits.len())),
        column("implementation_client", Text, true, |c: &Connection| {
            opt_text(c.implementation.client.as_deref())
        }),
        column("implementation_server", Text, true, |c: &Connection| {
            opt_text(c.implementation.server.as_deref())
        }),
        column("verdict_cause", Text, false, |c: &Connection| {
            text(c.verdict.cause)
        }),
        column("verdict_killed_by", Text, true, |c: &Connection| {
            opt_text(c.verdict.killed_by)
        }),
        column("verdict_confidence", Float, false, |c: &Connection| {
            Cell::Float(c.verdict.confidence)
        }),
        column("verdict_idle_before_s", Float, true, |c: &Connection| {
            opt(c.verdict.idle_before_s, Cell::Float)
        }),
        column("verdict_at", Time, true, |c: &Connection| {
            opt(c.verdict.at, Cell::Time)
        }),
        column("verdict_evidence", Text, false, |c: &Connection| {
            Cell::Text(Cow::Owned(c.verdict.evidence.join("\n")))
        }),
    ]);
    cols
}

// ---------------------------------------------------------------------------------------------
// events

/// One notable event of a connection; fields that do not apply to its kind are null.
#[derive(Debug, Default)]
struct Event<'a> {
    connection_id: usize,
    ts: f64,
    from: Option<&'a str>,
    kind: &'static str,
    stream_id: Option<u32>,
    error_code: Option<&'a str>,
    last_stream_id: Option<u32>,
    debug_data: Option<&'a str>,
    opaque: Option<&'a str>,
    ttl: Option<u8>,
    suspect_forged: Option<bool>,
    rtt_ms: Option<f64>,
    grpc_status: Option<i64>,
    idle_s: Option<f64>,
    detail: Option<Cow<'a, str>>,
}

fn other_side(side: &str) -> &'static str {
    if side == "client" {
        "server"
    } else {
        "client"
    }
}

/// RFC 9113 §6.5.2, RFC 8441 §3 and RFC 9218 §2.1 names of SETTINGS parameters.
fn setting_name(id: u16) -> Cow<'static, str> {
    Cow::Borrowed(match id {
        0x1 => "HEADER_TABLE_SIZE",
        0x2 => "ENABLE_PUSH",
        0x3 => "MAX_CONCURRENT_STREAMS",
        0x4 => "INITIAL_WINDOW_SIZE",
        0x5 => "MAX_FRAME_SIZE",
        0x6 => "MAX_HEADER_LIST_SIZE",
        0x8 => "ENABLE_CONNECT_PROTOCOL",
        0x9 => "NO_RFC7540_PRIORITIES",
        _ => return Cow::Owned(format!("0x{id:x}")),
    })
}

/// The events of one connection in time order; events at the same instant keep the order in
/// which they are gathered here (roughly the order of a connection's life).
fn events(c: &Connection) -> Vec<Event<'_>> {
    let id = c.id;
    let mut out: Vec<Event> = Vec::new();
    // Every event below is built from this base: it belongs to this connection.
    let base = || Event {
        connection_id: id,
        ..Event::default()
    };
    for s in c.settings.iter().filter(|s| !s.ack) {
        let params: Vec<String> = s
            .params
            .iter()
            .map(|(k, v)| format!("{}={v}", setting_name(*k)))
            .collect();
        out.push(Event {
            ts: s.ts,
            from: Some(s.from),
            kind: "SETTINGS",
            detail: (!params.is_empty()).then(|| Cow::Owned(params.join(" "))),
            ..base()
        });
    }
    for st in &c.streams {
        if let Some(ts) = st.opened {
            let request = match (&st.http_method, &st.method) {
                (Some(m), Some(p)) => Some(Cow::Owned(format!("{m} {p}"))),
                (None, Some(p)) => Some(Cow::Borrowed(&**p)),
                (Some(m), None) => Some(Cow::Borrowed(&**m)),
                (None, None) => None,
            };
            out.push(Event {
                ts,
                from: st.opened_by,
                kind: "STREAM_OPEN",
                stream_id: Some(st.id),
                detail: request,
                ..base()
            });
        }
    }
    for p in &c.pings {
        if p.ack {
            out.push(Event {
                ts: p.ts,
                from: Some(p.from),
                kind: "PING_ACK",
                opaque: p.opaque.as_deref(),
                detail: Some(Cow::Borrowed("answers no PING in the capture")),
                ..base()
            });
            continue;
        }
        out.push(Event {
            ts: p.ts,
            from: Some(p.from),
            kind: "PING",
            opaque: p.opaque.as_deref(),
            rtt_ms: p.rtt_ms,
            detail: p
                .acked_at
                .is_none()
                .then_some(Cow::Borrowed("no ACK in the capture")),
            ..base()
        });
        if let Some(at) = p.acked_at {
            out.push(Event {
                ts: at,
                // The contract: an ACK answers a PING from the other side.
                from: Some(other_side(p.from)),
                kind: "PING_ACK",
                opaque: p.opaque.as_deref(),
                rtt_ms: p.rtt_ms,
                ..base()
            });
        }
    }
    for r in &c.rst_streams {
        out.push(Event {
            ts: r.ts,
            from: Some(r.from),
            kind: "RST_STREAM",
            stream_id: Some(r.stream_id),
            error_code: Some(&r.error_code),
            ..base()
        });
    }
    for st in &c.streams {
        if let Some(ts) = st.closed {
            let mut parts: Vec<String> = Vec::new();
            if let Some(s) = &st.status {
                parts.push(format!(":status {s}"));
            }
            if let Some(m) = st.grpc_message.as_deref().filter(|m| !m.is_empty()) {
                parts.push(format!("grpc-message {m}"));
            }
            if let Some(code) = &st.reset_code {
                parts.push(format!("reset {code}"));
            }
            if st.headers_incomplete {
                parts.push("headers incomplete".to_string());
            }
            out.push(Event {
                ts,
                from: st.reset_by,
                kind: "STREAM_CLOSE",
                stream_id: Some(st.id),
                error_code: st.reset_code.as_deref(),
                grpc_status: st.grpc_status,
                detail: (!parts.is_empty()).then(|| Cow::Owned(parts.join(", "))),
                ..base()
            });
        }
    }
    for g in &c.goaways {
        out.push(Event {
            ts: g.ts,
            from: Some(g.from),
            kind: "GOAWAY",
            last_stream_id: Some(g.last_stream_id),
            error_code: Some(&g.error_code),
            debug_data: Some(&g.debug_data),
            ..base()
        });
    }
    for (ts, from) in &c.tcp.retransmission_times {
        out.push(Event {
            ts: *ts,
            from: Some(from),
            kind: "RETRANSMISSION",
            ..base()
        });
    }
    for (ts, from) in [(c.tcp.fin.client, "client"), (c.tcp.fin.server, "server")] {
        if let Some(ts) = ts {
            out.push(Event {
                ts,
                from: Some(from),
                kind: "FIN",
                ..base()
            });
        }
    }
    for r in &c.tcp.rst {
        out.push(Event {
            ts: r.ts,
            from: Some(r.from),
            kind: "RST",
            ttl: Some(r.ttl),
            suspect_forged: Some(r.suspect_forged),
            detail: r.ip_id.map(|id| Cow::Owned(format!("IP ID {id}"))),
            ..base()
        });
    }
    for (notes, kind) in [(&c.anomalies, "ANOMALY"), (&c.limits, "LIMIT")] {
        for n in notes {
            out.push(Event {
                ts: n.ts,
                from: Some(n.from),
                kind,
                detail: Some(Cow::Borrowed(&n.what)),
                ..base()
            });
        }
    }
    for i in &c.idle_periods {
        out.push(Event {
            ts: i.start,
            kind: match i.kind {
                "transport" => "IDLE_TRANSPORT",
                "stream" => "IDLE_STREAM",
                _ => "IDLE",
            },
            idle_s: Some(i.seconds),
            ..base()
        });
    }
    out.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    out
}

fn event_columns<'a>() -> Vec<Column<Event<'a>>> {
    use Type::*;
    vec![
        column(
            "connection_id",
            Int,
            false,
            |e: &Event| int(e.connection_id),
        ),
        column("ts", Time, false, |e: &Event| Cell::Time(e.ts)),
        column("from", Text, true, |e: &Event| opt_text(e.from)),
        column("kind", Text, false, |e: &Event| text(e.kind)),
        column("stream_id", Int, true, |e: &Event| opt(e.stream_id, int)),
        column("error_code", Text, true, |e: &Event| opt_text(e.error_code)),
        column("last_stream_id", Int, true, |e: &Event| {
            opt(e.last_stream_id, int)
        }),
        column("debug_data", Text, true, |e: &Event| opt_text(e.debug_data)),
        column("opaque", Text, true, |e: &Event| opt_text(e.opaque)),
        column("ttl", Int, true, |e: &Event| opt(e.ttl, int)),
        column("suspect_forged", Bool, true, |e: &Event| {
            opt(e.suspect_forged, Cell::Bool)
        }),
        column("rtt_ms", Float, true, |e: &Event| {
            opt(e.rtt_ms, Cell::Float)
        }),
        column("grpc_status", Int, true, |e: &Event| {
            opt(e.grpc_status, int)
        }),
        column("idle_s", Float, true, |e: &Event| {
            opt(e.idle_s, Cell::Float)
        }),
        column("detail", Text, true, |e: &Event| {
            opt_text(e.detail.as_deref())
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// pings

struct PingRow<'a> {
    connection_id: usize,
    ping: &'a Ping,
}

fn ping_columns<'a>() -> Vec<Column<PingRow<'a>>> {
    use Type::*;
    vec![
        column("connection_id", Int, false, |r: &PingRow| {
            int(r.connection_id)
        }),
        column("ts", Time, false, |r: &PingRow| Cell::Time(r.ping.ts)),
        column("from", Text, false, |r: &PingRow| text(r.ping.from)),
        column("ack", Bool, false, |r: &PingRow| Cell::Bool(r.ping.ack)),
        column("opaque", Text, true, |r: &PingRow| {
            opt_text(r.ping.opaque.as_deref())
        }),
        column("acked_at", Time, true, |r: &PingRow| {
            opt(r.ping.acked_at, Cell::Time)
        }),
        column("rtt_ms", Float, true, |r: &PingRow| {
            opt(r.ping.rtt_ms, Cell::Float)
        }),
        column("inferred", Bool, false, |r: &PingRow| {
            Cell::Bool(r.ping.inferred)
        }),
        column("confidence", Float, true, |r: &PingRow| {
            opt(r.ping.confidence, Cell::Float)
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// writers

fn write_table<R, Q: Borrow<R>>(
    path: &Path,
    format: Format,
    columns: &[Column<R>],
    rows: impl Iterator<Item = Q>,
) -> io::Result<()> {
    let name = path
        .file_name()
        .map_or(Cow::Borrowed(""), |n| n.to_string_lossy());
    let result = File::create(path).and_then(|file| {
        let out = BufWriter::new(file);
        match format {
            Format::Parquet => write_parquet(out, columns, rows),
            Format::Csv => write_csv(out, columns, rows),
        }
    });
    result.map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))
}

/// A bug in the column declarations (a getter that returns another type than its column's, or
/// null in a column declared not null), reported rather than panicking.
fn mismatch(column: &str, cell: &Cell) -> io::Error {
    io::Error::other(format!(
        "internal error: column {column} cannot hold {cell:?}"
    ))
}

enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Time(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(ty: Type) -> Builder {
        match ty {
            Type::Int => Builder::Int(Int64Builder::new()),
            Type::Float => Builder::Float(Float64Builder::new()),
            Type::Bool => Builder::Bool(BooleanBuilder::new()),
            Type::Text => Builder::Text(StringBuilder::new()),
            Type::Time => Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
        }
    }

    fn push(&mut self, column: &str, nullable: bool, cell: Cell) -> io::Result<()> {
        match (self, cell) {
            (_, Cell::Null) if !nullable => return Err(mismatch(column, &Cell::Null)),
            (Builder::Int(b), Cell::Null) => b.append_null(),
            (Builder::Float(b), Cell::Null) => b.append_null(),
            (Builder::Bool(b), Cell::Null) => b.append_null(),
            (Builder::Text(b), Cell::Null) => b.append_null(),
            (Builder::Time(b), Cell::Null) => b.append_null(),
            (Builder::Int(b), Cell::Int(v)) => b.append_value(v),
            (Builder::Float(b), Cell::Float(v)) => b.append_value(v),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Builder::Text(b), Cell::Text(v)) => b.append_value(v),
            (Builder::Time(b), Cell::Time(v)) => b.append_value(micros(v)),
            (_, cell) => return Err(mismatch(column, &cell)),
        }
        Ok(())
    }

    /// The values pushed since the last call, as an array; the builder starts empty again.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        }
    }
}

fn schema<R>(columns: &[Column<R>]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name.as_ref(), c.ty.arrow(), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

fn write_parquet<R, Q: Borrow<R>, W: Write + Send>(
    out: W,
    columns: &[Column<R>],
    rows: impl Iterator<Item = Q>,
) -> io::Result<()> {
    let schema = schema(columns);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
    let mut builders: Vec<Builder> = columns.iter().map(|c| Builder::new(c.ty)).collect();
    let flush = |builders: &mut [Builder], writer: &mut ArrowWriter<W>| -> io::Result<()> {
        let arrays = builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(io::Error::other)?;
        writer.write(&batch)?;
        Ok(())
    };
    let mut pending = 0;
    for row in rows {
        for (c, b) in columns.iter().zip(builders.iter_mut()) {
            b.push(&c.name, c.nullable, (c.get)(row.borrow()))?;
        }
        pending += 1;
        if pending == BATCH_ROWS {
            flush(&mut builders, &mut writer)?;
            pending = 0;
        }
    }
    if pending > 0 {
        flush(&mut builders, &mut writer)?;
    }
    writer.into_inner()?.flush()
}

fn write_csv<R, Q: Borrow<R>, W: Write>(
    mut out: W,
    columns: &[Column<R>],
    rows: impl Iterator<Item = Q>,
) -> io::Result<()> {
    let header: Vec<Cow<str>> = columns.iter().map(|c| csv_field(&c.name)).collect();
    writeln!(out, "{}", header.join(","))?;
    let mut line = String::new();
    for row in rows {
        line.clear();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let cell = (c.get)(row.borrow());
            let fits = matches!(
                (c.ty, &cell),
                (Type::Int, Cell::Int(_))
                    | (Type::Float, Cell::Float(_))
                    | (Type::Bool, Cell::Bool(_))
                    | (Type::Text, Cell::Text(_))
                    | (Type::Time, Cell::Time(_))
            ) || (c.nullable && cell == Cell::Null);
            if !fits {
                return Err(mismatch(&c.name, &cell));
            }
            match cell {
                Cell::Null => {}
                Cell::Int(v) => line.push_str(&v.to_string()),
                Cell::Float(v) => line.push_str(&csv_float(v)),
                Cell::Bool(v) => line.push_str(if v { "true" } else { "false" }),
                Cell::Text(s) => line.push_str(&csv_field(&s)),
                Cell::Time(t) => line.push_str(&iso8601(micros(t))),
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. An empty
/// string is quoted too, so that it stays distinct from null (an empty field) for readers that
/// tell them apart.
fn csv_field(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        Cow::Borrowed("\"\"")
    } else if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// Shortest text that reads back as the same f64, always with a decimal point or exponent so
/// that CSV readers infer a float column even when every value is whole.
fn csv_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let s = v.to_string();
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        s + ".0"
    }
}

/// Microseconds since the epoch as ISO 8601 UTC, e.g. `2026-11-21T02:18:45.123456Z`.
fn iso8601(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to the proleptic Gregorian (year, month, day): Howard Hinnant's
/// `civil_from_days` (http://howardhinnant.github.io/date_algorithms.html).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_examples() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000Z");
        // python3: datetime(2026,11,21,2,18,45,123456,tzinfo=timezone.utc).timestamp()
        assert_eq!(
            iso8601(1_795_227_525_123_456),
            "2026-11-21T02:18:45.123456Z"
        );
        assert_eq!(
            iso8601(1_709_164_800_000_001),
            "2024-02-29T00:00:00.000001Z"
        );
        assert_eq!(iso8601(951_868_799_999_999), "2000-02-29T23:59:59.999999Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999999Z");
        // Hostile timestamps at the ends of i64 format without overflow.
        assert!(iso8601(i64::MAX).ends_with('Z'));
        assert!(iso8601(i64::MIN).ends_with('Z'));
    }

    #[test]
    fn micros_round_to_the_capture_microsecond() {
        assert_eq!(micros(1718694054.005069), 1_718_694_054_005_069);
        assert_eq!(micros(1795228526.767002), 1_795_228_526_767_002);
        assert_eq!(micros(f64::NAN), 0);
        assert_eq!(micros(f64::INFINITY), i64::MAX);
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "\"\"");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
        assert_eq!(csv_float(9.0), "9.0");
        assert_eq!(csv_float(0.049), "0.049");
        assert_eq!(csv_float(1e-7), "0.0000001");
    }

    /// docs/tables.md lists every column of every table, in order, with its type.
    #[test]
    fn docs_list_every_column_with_its_type() {
        let doc = include_str!("../../docs/tables.md");
        let documented = |table: &str| -> Vec<(String, String)> {
            let heading = format!("## {table}");
            let Some(start) = doc.lines().position(|l| l.trim() == heading) else {
                panic!("docs/tables.md has no section {heading}");
            };
            doc.lines()
                .skip(start + 1)
                .take_while(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                    let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                    Some((name.to_string(), cells.get(2)?.to_string()))
                })
                .collect()
        };
        fn declared<R>(cols: &[Column<R>]) -> Vec<(String, String)> {
            cols.iter()
                .map(|c| {
                    let ty = match c.ty {
                        Type::Int => "int64",
                        Type::Float => "float64",
                        Type::Bool => "bool",
                        Type::Text => "string",
                        Type::Time => "timestamp[us, UTC]",
                    };
                    let null = if c.nullable { ", null" } else { "" };
                    (c.name.to_string(), format!("{ty}{null}"))
                })
                .collect()
        }
        assert_eq!(documented("connections"), declared(&connection_columns()));
        assert_eq!(documented("events"), declared(&event_columns()));
        assert_eq!(documented("pings"), declared(&ping_columns()));
    }
}
