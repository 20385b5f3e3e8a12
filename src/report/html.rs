//! HTML report: one self-contained file to attach to a ticket and open on an offline laptop.
//!
//! What was analysed and the findings (severity, estimate, evidence, fix) are written here as
//! escaped HTML, so they read even with scripts off. The timeline (one lane per connection on a
//! shared axis), the connection table and the detail panel are drawn in the browser by a small
//! inline script from the model's data, emitted once as compact JSON in a
//! `<script type="application/json">` block: a page of lanes is drawn at a time, so ten thousand
//! connections cost a few MB of data, not ten thousand pre-rendered SVG lanes.
//!
//! Everything a capture can put in the report (paths, header values, GOAWAY debug data, evidence,
//! file names) is hostile text: HTML-escaped where written here, and in the JSON block `<`, `>`,
//! `&`, U+2028 and U+2029 are `\u` escapes so no string can close the block. The script puts data
//! on the page with `textContent` and `setAttribute` on attributes that are not URLs or handlers,
//! never as markup. A Content-Security-Policy allows no request at all and only this script (by
//! its SHA-256), so even a mistake in escaping could neither fetch anything nor run anything.
//!
//! Renderers never diagnose: the page shows the model's verdicts and findings. It only counts,
//! groups and sorts them for display.

use super::model::{Connection, Document, Finding, Stream};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Streams listed individually per connection (the last ones: the RPCs around its end).
const LAST_STREAMS: usize = 3;
/// Distinct `:path`s listed per connection, most frequent first.
const METHODS_SHOWN: usize = 8;
/// Anomalies and limit notes listed per connection.
const NOTES_SHOWN: usize = 5;
/// Findings written out in full; the rest are listed compactly (a capture of many paths can
/// have one finding per server).
const FINDINGS_FULL: usize = 8;
/// Evidence longer than this many characters is folded, showing its start.
const EVIDENCE_FOLD: usize = 400;
const EVIDENCE_SHOWN: usize = 240;
/// Estimates repeated in the header.
const ESTIMATES_LISTED: usize = 4;
/// Connections linked by number in a finding; the button beside them shows all of them.
const FINDING_LINKS: usize = 40;

pub fn render(doc: &Document) -> String {
    let t0 = origin(doc);
    let data = script_json(&data(doc, t0).to_string());
    let mut out = String::with_capacity(data.len() + CSS.len() + JS.len() + 32 * 1024);
    let files = doc.input.files.join(", ");
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"h2keepalive {version}\">\n\
         <title>h2keepalive report: {title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        hash = base64(&sha256(JS.as_bytes())),
        version = env!("CARGO_PKG_VERSION"),
        title = esc(&shorten(&files, 120)),
    );
    header(&mut out, doc);
    out.push_str(
        "<div id=\"errors\" class=\"errors\" hidden><strong>The page's script failed; the \
         findings above are complete, the timeline may not be.</strong></div>\n",
    );
    findings(&mut out, doc);
    out.push_str(BODY);
    let _ = writeln!(
        out,
        "<footer>Made by h2keepalive {} from the {} document. Everything is in this file: \
         opening it makes no network request.</footer>",
        env!("CARGO_PKG_VERSION"),
        doc.schema
    );
    out.push_str("<script type=\"application/json\" id=\"data\">");
    out.push_str(&data);
    out.push_str("</script>\n<script>");
    out.push_str(JS);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// Time zero of the page: the capture's first packet.
fn origin(doc: &Document) -> f64 {
    doc.input
        .first_ts
        .or_else(|| doc.connections.iter().map(|c| c.start).reduce(f64::min))
        .filter(|t| t.is_finite())
        .unwrap_or(0.0)
}

fn span(doc: &Document, t0: f64) -> f64 {
    let last = doc
        .input
        .last_ts
        .into_iter()
        .chain(doc.connections.iter().map(|c| c.end))
        .filter(|t| t.is_finite())
        .reduce(f64::max)
        .unwrap_or(t0);
    (last - t0).max(0.0)
}

// ------------------------------------------------------------------ static parts written here

fn header(out: &mut String, doc: &Document) {
    let i = &doc.input;
    out.push_str(
        "<header>\n<nav><a href=\"#findings\">Findings</a> <a href=\"#timeline\">Timeline</a> \
         <a href=\"#table\">Connections</a></nav>\n<h1>h2keepalive report</h1>\n<dl class=\"input\">\n",
    );
    let _ = write!(out, "<dt>Analysed</dt><dd>");
    for (n, f) in i.files.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "<code>{}</code>", esc(f));
    }
    out.push_str("</dd>\n");
    let _ = writeln!(
        out,
        "<dt>Packets</dt><dd>{} packets, {} bytes</dd>",
        thousands(i.packets),
        thousands(i.bytes)
    );
    let _ = write!(out, "<dt>Time span</dt><dd>");
    match (i.first_ts, i.last_ts) {
        (Some(a), Some(b)) => {
            let _ = write!(
                out,
                "{} ({} to {} UTC); times below are seconds from the first packet (+0)",
                duration(b - a),
                esc(&utc(a)),
                esc(&utc(b))
            );
        }
        _ => out.push_str("no packets"),
    }
    out.push_str("</dd>\n");
    let _ = write!(
        out,
        "<dt>Connections</dt><dd>{} HTTP/2 of {} TCP",
        thousands(doc.connections.len() as u64),
        thousands(i.tcp_connections)
    );
    if i.tls_connections > 0 {
        let _ = write!(out, "; {} TLS not decrypted", thousands(i.tls_connections));
    }
    out.push_str("</dd>\n");
    let s = &i.skipped_packets;
    let skipped = s.not_tcp + s.malformed + s.ip_fragments + s.unsupported_link_type;
    if skipped > 0 {
        let _ = writeln!(
            out,
            "<dt>Skipped</dt><dd>{} not TCP, {} malformed, {} IP fragments, {} of an unsupported link type</dd>",
            s.not_tcp, s.malformed, s.ip_fragments, s.unsupported_link_type
        );
    }
    // Verdicts counted by cause: the page's one-line answer before the detail.
    let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &doc.connections {
        *causes.entry(c.verdict.cause).or_default() += 1;
    }
    if !causes.is_empty() {
        let mut causes: Vec<_> = causes.into_iter().collect();
        causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        out.push_str("<dt>Verdicts</dt><dd class=\"verdicts\">");
        for (cause, n) in causes {
            let _ = write!(
                out,
                "<span class=\"cause c-{0}\"><i></i>{0}</span> {1} ",
                esc(cause),
                thousands(n as u64)
            );
        }
        out.push_str("</dd>\n");
    }
    let estimates: Vec<(usize, &Finding)> = doc
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.estimate.is_some())
        .collect();
    if !estimates.is_empty() {
        out.push_str("<dt>Estimated timeouts</dt><dd>");
        for (k, (n, f)) in estimates.iter().take(ESTIMATES_LISTED).enumerate() {
            if let Some(e) = &f.estimate {
                let _ = write!(
                    out,
                    "{}<b>{} .. {}</b> (<a href=\"#finding-{n}\">finding {}</a>, {})",
                    if k > 0 { "; " } else { "" },
                    secs(e.timeout_low_s),
                    secs(e.timeout_high_s),
                    n + 1,
                    esc(f.id)
                );
            }
        }
        if estimates.len() > ESTIMATES_LISTED {
            let _ = write!(
                out,
                "; and {} more",
                thousands((estimates.len() - ESTIMATES_LISTED) as u64)
            );
        }
        out.push_str("</dd>\n");
    }
    out.push_str("</dl>\n");
    if !i.warnings.is_empty() {
        out.push_str("<ul class=\"warnings\">\n");
        for w in &i.warnings {
            let _ = writeln!(out, "<li>warning: {}</li>", esc(w));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</header>\n");
}

fn findings(out: &mut String, doc: &Document) {
    out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if doc.findings.is_empty() {
        out.push_str(
            "<p class=\"none\">No findings: no connection in this capture died of a problem \
             h2keepalive knows.</p>\n",
        );
    }
    // A recommendation is written out once; findings that repeat it point to the first.
    let mut fixes: HashMap<&str, usize> = HashMap::new();
    for (n, f) in doc.findings.iter().take(FINDINGS_FULL).enumerate() {
        let same_fix = fixes.get(f.recommendation.as_str()).copied();
        fixes.entry(&f.recommendation).or_insert(n);
        finding(out, n, f, same_fix);
    }
    if doc.findings.len() > FINDINGS_FULL {
        let _ = write!(
            out,
            "<details class=\"more-findings\"><summary>{} more findings</summary>\n<ul class=\"compact\">\n",
            thousands((doc.findings.len() - FINDINGS_FULL) as u64)
        );
        for (n, f) in doc.findings.iter().enumerate().skip(FINDINGS_FULL) {
            compact_finding(out, n, f, &mut fixes);
        }
        out.push_str("</ul>\n</details>\n");
    }
    out.push_str("</section>\n");
}

fn severity(f: &Finding) -> &'static str {
    match f.severity {
        "error" => "error",
        "warning" => "warning",
        _ => "info",
    }
}

/// One line of evidence; a very long one (thousands of connection numbers) folded after its start.
fn evidence(out: &mut String, e: &str) {
    if e.chars().count() <= EVIDENCE_FOLD {
        let _ = writeln!(out, "<li>{}</li>", esc(e));
        return;
    }
    let start: String = e.chars().take(EVIDENCE_SHOWN).collect();
    let _ = writeln!(
        out,
        "<li><details class=\"long\"><summary>{}\u{2026} <span class=\"more\">show all</span></summary>{}</details></li>",
        esc(&start),
        esc(e)
    );
}

/// A finding beyond the first ones, on one line.
fn compact_finding<'a>(
    out: &mut String,
    n: usize,
    f: &'a Finding,
    fixes: &mut HashMap<&'a str, usize>,
) {
    let _ = write!(
        out,
        "<li class=\"sev-{}\" id=\"finding-{n}\"><span class=\"sev\">{}</span> {} <span class=\"fid\">{}</span>",
        severity(f),
        esc(&f.severity.to_uppercase()),
        esc(&f.summary),
        esc(f.id)
    );
    if let Some(e) = &f.estimate {
        let _ = write!(
            out,
            " <span class=\"muted\">timeout {} .. {}</span>",
            secs(e.timeout_low_s),
            secs(e.timeout_high_s)
        );
    }
    if !f.connections.is_empty() {
        let _ = write!(
            out,
            " <button type=\"button\" class=\"show-finding\" data-finding=\"{n}\">show {} connection{}</button>",
            thousands(f.connections.len() as u64),
            if f.connections.len() == 1 { "" } else { "s" }
        );
    }
    // Evidence is left to the full findings and to each connection's verdict (click "show").
    if !f.recommendation.is_empty() {
        match fixes.get(f.recommendation.as_str()) {
            Some(first) => {
                let _ = write!(
                    out,
                    "<div class=\"muted\">fix: as for <a href=\"#finding-{first}\">finding {}</a></div>",
                    first + 1
                );
            }
            None => {
                fixes.insert(&f.recommendation, n);
                let _ = write!(
                    out,
                    "<div class=\"fix-text\">fix: {}</div>",
                    esc(&f.recommendation)
                );
            }
        }
    }
    out.push_str("</li>\n");
}

fn finding(out: &mut String, n: usize, f: &Finding, same_fix: Option<usize>) {
    let sev = severity(f);
    let _ = write!(
        out,
        "<article class=\"finding sev-{sev}\" id=\"finding-{n}\">\n\
         <h3><span class=\"sev\">{}</span> {}</h3>\n<p class=\"fid\">finding {} \u{b7} {}</p>\n",
        esc(&f.severity.to_uppercase()),
        esc(&f.summary),
        n + 1,
        esc(f.id)
    );
    if let Some(e) = &f.estimate {
        let _ = writeln!(
            out,
            "<p class=\"estimate\">Estimated timeout: between <b>{}</b> and <b>{}</b> \
             <span class=\"muted\">(longest silence survived .. shortest that killed)</span></p>",
            secs(e.timeout_low_s),
            secs(e.timeout_high_s)
        );
    }
    if !f.matches.is_empty() {
        out.push_str("<p class=\"matches\">Matches: ");
        for (i, m) in f.matches.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            let _ = write!(
                out,
                "<b>{}</b> ({}, {}{})",
                esc(&m.name),
                secs(m.timeout_s),
                esc(m.on_expiry),
                if m.configured { ", as configured" } else { "" }
            );
        }
        out.push_str("</p>\n");
    }
    if !f.connections.is_empty() {
        out.push_str("<p class=\"conns\">Connections ");
        for id in f.connections.iter().take(FINDING_LINKS) {
            let _ = write!(
                out,
                "<button type=\"button\" class=\"conn-link\" data-conn=\"{id}\">#{id}</button> "
            );
        }
        if f.connections.len() > FINDING_LINKS {
            let _ = write!(
                out,
                "and {} more ",
                thousands((f.connections.len() - FINDING_LINKS) as u64)
            );
        }
        let _ = writeln!(
            out,
            "<button type=\"button\" class=\"show-finding\" data-finding=\"{n}\">show {} in the timeline</button></p>",
            if f.connections.len() == 1 {
                "it".to_string()
            } else {
                format!("these {}", thousands(f.connections.len() as u64))
            }
        );
    }
    if !f.evidence.is_empty() {
        out.push_str("<ul class=\"evidence\">\n");
        for e in &f.evidence {
            evidence(out, e);
        }
        out.push_str("</ul>\n");
    }
    match (f.recommendation.is_empty(), same_fix) {
        (true, _) => {}
        (false, Some(first)) => {
            let _ = writeln!(
                out,
                "<div class=\"fix\"><span class=\"fix-label\">Fix</span><div>as for \
                 <a href=\"#finding-{first}\">finding {}</a> above</div></div>",
                first + 1
            );
        }
        (false, None) => {
            let _ = writeln!(
                out,
                "<div class=\"fix\"><span class=\"fix-label\">Fix</span><div class=\"fix-text\">{}</div></div>",
                esc(&f.recommendation)
            );
        }
    }
    out.push_str("</article>\n");
}

// ------------------------------------------------------------------ the data the script draws

/// Strings that repeat across connections (addresses of servers, causes, paths, outcomes, error
/// codes, implementations) are written once in `S` and referred to by index.
#[derive(Default)]
struct Strings {
    index: HashMap<String, usize>,
    list: Vec<String>,
}

impl Strings {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }

    fn opt(&mut self, s: Option<&str>) -> Value {
        s.map_or(Value::Null, |s| json!(self.id(s)))
    }
}

/// The compact data block. `t0` is the capture's first packet (seconds since the epoch), `span`
/// its length, `S` the string table; `findings` `{id, sev, sum, lo, hi, conns}`. A connection's
/// `a` is its first packet in seconds from `t0`; every other time in it counts from `a`; all are
/// rounded to the millisecond. Sides are 0 (client) and 1 (server); `*` marks an index into `S`;
/// empty lists and nulls are left out. Keys:
/// `i` id (when not the position), `c` client, `s`* server, `b` last packet, `det`* detection, `v`* cause, `k`* killed
/// by, `cf` confidence, `ib` idle before, `at` verdict time, `ev` evidence, `p` PINGs
/// `[t, side, rtt_ms]` (answered at t + rtt), `pa` ACKs answering no PING seen `[t, side]`, `g` GOAWAYs
/// `[t, side, last_stream_id, code*, debug]`, `rs` RST_STREAMs `[t, side, stream, code*]`,
/// `fc`/`fs` FIN of the client/server, `r` TCP RSTs `[t, side, ttl, forged]`, `x`
/// retransmissions `[t, side]`, `it`/`is` transport/stream idle periods `[start, end, seconds]`,
/// `n` streams, `nk` streams not kept, `sm` paths `[path*, count]`, `smx` paths not listed, `ss`
/// outcomes `[label*, count]` (these three only when `sl` does not list every stream), `sl` last streams `[id, path*, opened, closed, outcome*,
/// grpc-message]`, `im` implementations `[client*, server*]`, `ka` keepalive per side `[pings,
/// interval, without calls, unanswered, rtt ms]` or 0 without PINGs, `pk` packets per side, `an` notes `[t, side,
/// text]`, `anx` notes not listed.
fn data(doc: &Document, t0: f64) -> Value {
    let findings: Vec<Value> = doc
        .findings
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "sev": f.severity,
                "lo": f.estimate.as_ref().map(|e| r3(e.timeout_low_s)),
                "hi": f.estimate.as_ref().map(|e| r3(e.timeout_high_s)),
                "conns": f.connections,
            })
        })
        .collect();
    let mut strings = Strings::default();
    let conns: Vec<Map<String, Value>> = doc
        .connections
        .iter()
        .enumerate()
        .map(|(pos, c)| {
            let mut m = connection(c, t0, &mut strings);
            // Ids are usually positions; only one that is not is written.
            if c.id == pos {
                m.remove("i");
            }
            m
        })
        .collect();
    json!({
        "v": 1,
        "t0": t0,
        "span": r3(span(doc, t0)),
        "S": strings.list,
        "findings": findings,
        "n": conns.len(),
        "cols": columns(conns),
    })
}

/// Shorter JSON for the same values: whole numbers without `.0`, and arrays without trailing
/// nulls (the script reads a missing element as null).
fn compact(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|x| x.fract() == 0.0 && x.abs() < 1e15) {
                if n.is_f64() {
                    *v = json!(x as i64);
                }
            }
        }
        Value::Array(a) => {
            a.iter_mut().for_each(compact);
            while a.last().is_some_and(Value::is_null) {
                a.pop();
            }
        }
        Value::Object(m) => m.values_mut().for_each(compact),
        _ => {}
    }
}

/// Connections as columns, so that each key is written once: a field most connections have is
/// an array with `null` where one lacks it; a rarer one is a map from position to value.
fn columns(conns: Vec<Map<String, Value>>) -> Map<String, Value> {
    let n = conns.len();
    let mut present: BTreeMap<String, usize> = BTreeMap::new();
    for c in &conns {
        for k in c.keys() {
            *present.entry(k.clone()).or_default() += 1;
        }
    }
    let mut dense: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut sparse: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (k, count) in &present {
        if count * 3 >= n {
            dense.insert(k.clone(), vec![Value::Null; n]);
        } else {
            sparse.insert(k.clone(), Map::new());
        }
    }
    for (pos, c) in conns.into_iter().enumerate() {
        for (k, mut v) in c {
            compact(&mut v);
            if let Some(col) = dense.get_mut(&k) {
                col[pos] = v;
            } else if let Some(col) = sparse.get_mut(&k) {
                col.insert(pos.to_string(), v);
            }
        }
    }
    let mut cols = Map::new();
    for (k, v) in dense {
        cols.insert(k, Value::Array(v));
    }
    for (k, v) in sparse {
        cols.insert(k, Value::Object(v));
    }
    cols
}

fn connection(c: &Connection, t0: f64, strings: &mut Strings) -> Map<String, Value> {
    let a = r3(c.start - t0);
    let t = |x: f64| r3(x - t0 - a);
    let ot = |x: Option<f64>| x.map(t);
    let side = |s: &str| u8::from(s != "client");
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        let empty = v.is_null() || v.as_array().is_some_and(|a| a.is_empty());
        if !empty {
            m.insert(k.to_string(), v);
        }
    };
    put("i", json!(c.id));
    put("c", json!(c.client));
    put("s", json!(strings.id(&c.server)));
    put("a", json!(a));
    put("b", json!(t(c.end)));
    put("det", json!(strings.id(c.detection)));
    let v = &c.verdict;
    put("v", json!(strings.id(v.cause)));
    put("k", strings.opt(v.killed_by));
    put("cf", json!(v.confidence));
    put("ib", json!(v.idle_before_s));
    put("at", json!(ot(v.at)));
    put("ev", json!(v.evidence));

    let mut pings = Vec::new();
    let mut orphan_acks = Vec::new();
    for p in &c.pings {
        if p.ack {
            orphan_acks.push(json!([t(p.ts), side(p.from)]));
        } else {
            // The ACK's time is the PING's plus its RTT (CONTRACT: rtt_ms = acked_at - ts).
            pings.push(json!([t(p.ts), side(p.from), p.rtt_ms]));
        }
    }
    put("p", Value::Array(pings));
    put("pa", Value::Array(orphan_acks));
    let goaways = c
        .goaways
        .iter()
        .map(|g| {
            json!([
                t(g.ts),
                side(g.from),
                g.last_stream_id,
                strings.id(&g.error_code),
                g.debug_data
            ])
        })
        .collect();
    put("g", goaways);
    let resets = c
        .rst_streams
        .iter()
        .map(|r| {
            json!([
                t(r.ts),
                side(r.from),
                r.stream_id,
                strings.id(&r.error_code)
            ])
        })
        .collect();
    put("rs", resets);
    put("fc", json!(ot(c.tcp.fin.client)));
    put("fs", json!(ot(c.tcp.fin.server)));
    put(
        "r",
        c.tcp
            .rst
            .iter()
            .map(|r| json!([t(r.ts), side(r.from), r.ttl, u8::from(r.suspect_forged)]))
            .collect(),
    );
    put(
        "x",
        c.tcp
            .retransmission_times
            .iter()
            .map(|(ts, from)| json!([t(*ts), side(from)]))
            .collect(),
    );
    let idle = |kind: &str| -> Value {
        c.idle_periods
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| json!([t(i.start), t(i.end), i.seconds]))
            .collect()
    };
    put("it", idle("transport"));
    put("is", idle("stream"));

    put("n", json!(c.streams.len()));
    if c.streams_not_kept > 0 {
        put("nk", json!(c.streams_not_kept));
    }
    let mut paths: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for s in &c.streams {
        *paths.entry(s.method.as_deref().unwrap_or("")).or_default() += 1;
        *outcomes.entry(outcome(s)).or_default() += 1;
    }
    // When every stream is listed below, the script counts them itself.
    if c.streams.len() > LAST_STREAMS {
        let mut paths: Vec<_> = paths.into_iter().collect();
        paths.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if paths.len() > METHODS_SHOWN {
            put("smx", json!(paths.len() - METHODS_SHOWN));
        }
        let listed = paths
            .iter()
            .take(METHODS_SHOWN)
            .map(|(p, n)| json!([strings.id(p), n]))
            .collect();
        put("sm", listed);
        let listed = outcomes
            .iter()
            .map(|(o, n)| json!([strings.id(o), n]))
            .collect();
        put("ss", listed);
    }
    let last = c.streams[c.streams.len().saturating_sub(LAST_STREAMS)..]
        .iter()
        .map(|s| {
            json!([
                s.id,
                strings.opt(s.method.as_deref()),
                ot(s.opened),
                ot(s.closed),
                strings.id(&outcome(s)),
                s.grpc_message.as_deref().filter(|m| !m.is_empty())
            ])
        })
        .collect();
    put("sl", last);
    if c.implementation.client.is_some() || c.implementation.server.is_some() {
        let im = json!([
            strings.opt(c.implementation.client.as_deref()),
            strings.opt(c.implementation.server.as_deref())
        ]);
        put("im", im);
    }
    let k = &c.keepalive;
    if k.client.pings + k.server.pings > 0 {
        let ka = |s: &super::model::KeepaliveSide| {
            if s.pings == 0 {
                return json!(0);
            }
            json!([
                s.pings,
                s.interval_median_s,
                s.without_calls,
                s.unanswered,
                s.rtt_median_ms
            ])
        };
        put("ka", json!([ka(&k.client), ka(&k.server)]));
    }
    put("pk", json!([c.tcp.packets.client, c.tcp.packets.server]));
    let notes: Vec<_> = c.anomalies.iter().chain(&c.limits).collect();
    if notes.len() > NOTES_SHOWN {
        put("anx", json!(notes.len() - NOTES_SHOWN));
    }
    put(
        "an",
        notes
            .iter()
            .take(NOTES_SHOWN)
            .map(|n| json!([t(n.ts), side(n.from), n.what]))
            .collect(),
    );
    m
}

/// How a stream ended, as the text report says it.
fn outcome(s: &Stream) -> String {
    match (s.grpc_status, &s.status, &s.reset_code) {
        (Some(g), _, _) => format!("grpc-status {g}"),
        (None, _, Some(code)) => format!("reset {code}"),
        (None, Some(h), None) => format!(":status {h}"),
        _ => "unfinished".to_string(),
    }
}

// ------------------------------------------------------------------ escaping and formatting

/// Text for HTML content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// JSON made safe inside `<script type="application/json">`: these characters only occur inside
/// JSON strings, where `\uXXXX` means the same, so no string can end the element (`</script>`),
/// open a comment (`<!--`) or confuse a reader that treats U+2028/U+2029 as line ends.
fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 50);
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(ch),
        }
    }
    out
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn secs(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn duration(s: f64) -> String {
    if s >= 3600.0 {
        format!(
            "{:.0} h {:02.0} min",
            (s / 3600.0).floor(),
            ((s % 3600.0) / 60.0).floor()
        )
    } else if s >= 120.0 {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), (s % 60.0).floor())
    } else {
        format!("{s:.3} s")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(ch);
    }
    out
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n - 3).collect();
    t.push_str("...");
    t
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
fn utc(ts: f64) -> String {
    if !ts.is_finite() || !(-1e12..1e12).contains(&ts) {
        return format!("{ts}");
    }
    let ms = (ts * 1000.0).round() as i64;
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms_of_day % 1000
    )
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// SHA-256 (FIPS 180-4), for the Content-Security-Policy hash of the page's script.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

// ------------------------------------------------------------------ page, style and script

/// The page between the findings and the data: the timeline, table and details the script fills,
/// and the legend (its swatches are drawn by the script with the lanes' own code).
const BODY: &str = r##"<noscript><p class="noscript">The timeline, the connection table and the details need JavaScript. The findings above are complete; the data of every connection is in this file as JSON (the element with id "data").</p></noscript>
<div class="layout">
<main>
<section id="timeline">
<div class="section-head"><h2>Timeline</h2><span id="showing" class="muted"></span></div>
<div class="toolbar">
<label>Find <input id="q" type="search" placeholder="#id, address or port" autocomplete="off"></label>
<label>Group by <select id="group"><option value="none">nothing</option><option value="server">server</option><option value="cause">cause</option></select></label>
<label>Lanes per page <select id="size"><option>50</option><option selected>100</option><option>200</option><option>500</option></select></label>
<span class="pager"><button type="button" id="prev" title="Previous page">&#8249;</button><span id="page"></span><button type="button" id="next" title="Next page">&#8250;</button></span>
<span class="zoom"><button type="button" id="zoom-in" title="Zoom in around the middle">+</button><button type="button" id="zoom-out" title="Zoom out">&#8722;</button><button type="button" id="pan-left" title="Move left">&#8592;</button><button type="button" id="pan-right" title="Move right">&#8594;</button><button type="button" id="fit" title="Zoom onto the connections of this page">Fit page</button><button type="button" id="reset" title="Show the whole capture">Reset zoom</button></span>
</div>
<div id="causes" class="chips" title="Click a cause to hide or show its connections"></div>
<div id="only" class="only" hidden><span id="only-text"></span> <button type="button" id="only-clear">show all connections</button></div>
<div class="plot">
<svg id="axis" class="axis" height="28"></svg>
<div id="lanes-box" class="lanes-box"><svg id="lanes" class="lanes"></svg></div>
<p class="hint">Drag across the lanes to zoom into a time range. Click a lane to see its details; click its label, its verdict or its row in the table to zoom onto it. Hover a marker for its values.</p>
</div>
<details class="legend" open>
<summary>Legend</summary>
<div class="legend-grid">
<div><svg class="sw" data-sw="ping"></svg> PING, answered (hover: RTT)</div>
<div><svg class="sw" data-sw="ping-lost"></svg> PING never answered</div>
<div><svg class="sw" data-sw="ack"></svg> PING ACK</div>
<div><svg class="sw" data-sw="goaway"></svg> GOAWAY (hover: code, last stream, debug data)</div>
<div><svg class="sw" data-sw="rststream"></svg> RST_STREAM</div>
<div><svg class="sw" data-sw="fin"></svg> TCP FIN</div>
<div><svg class="sw" data-sw="rst"></svg> TCP RST sent by the peer</div>
<div><svg class="sw" data-sw="rst-forged"></svg> TCP RST forged by a middlebox</div>
<div><svg class="sw" data-sw="retx"></svg> TCP retransmission</div>
<div><svg class="sw" data-sw="idle-t"></svg> no packets at all (transport idle), with its length</div>
<div><svg class="sw" data-sw="idle-s"></svg> no open stream (stream idle)</div>
<div><svg class="sw" data-sw="timeout"></svg> estimated timeout of a finding</div>
<div><svg class="sw" data-sw="verdict"></svg> verdict: where the connection died, coloured by cause</div>
</div>
<p>Markers in the upper half of a lane were sent by the client, in the lower half by the server. The shaded bar is the connection's life from its first to its last packet. <b>Estimated timeout:</b> for a connection a finding says was killed after a silence, the dashed line starts at its last activity and the hatched band shows where the finding's estimated timer (its low..high timeout) expires; a death inside or just after the band fits the estimate.</p>
</details>
</section>
<section id="table">
<h2>Connections</h2>
<div class="table-box">
<table id="conns">
<thead><tr>
<th data-key="i" class="num">#</th><th data-key="client">client</th><th data-key="server">server</th><th data-key="start" class="num">start</th><th data-key="dur" class="num">duration</th><th data-key="cause">cause</th><th data-key="killed">killed by</th><th data-key="idle" class="num">idle before</th><th data-key="pings" class="num">PINGs</th><th data-key="goaways" class="num">GOAWAYs</th><th data-key="streams" class="num">streams</th>
</tr></thead>
<tbody></tbody>
</table>
</div>
<p class="hint">Click a column to sort (again to reverse). The table shows the same page of connections as the timeline, in the same order.</p>
</section>
</main>
<aside id="details" class="details"><p class="muted">Click a lane or a table row to see that connection here.</p></aside>
</div>
"##;

const CSS: &str = r##"
:root{--bg:#f5f6f8;--card:#fff;--line:#dfe3e8;--text:#1f2328;--muted:#667085;--accent:#2457c5;
--c-alive:#3a9a4a;--c-graceful_close:#8a98a8;--c-idle_goaway:#7c4dbd;--c-max_age_goaway:#4b5fc4;
--c-too_many_pings:#e0730b;--c-idle_close:#c99a06;--c-idle_reset:#d0312d;--c-idle_blackhole:#3b3b45;
--c-peer_abort:#b5177a;--c-unknown:#a3a3a3}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,.mono,td.addr{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:16px;margin:0 0 10px}
h3{font-size:14.5px;margin:0 0 4px}
header,#findings,main>section,.details{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px}
header{margin:16px 16px 12px}
#findings{margin:0 16px 12px}
.layout{display:flex;gap:12px;margin:0 16px;align-items:flex-start}
main{flex:1 1 auto;min-width:0;display:flex;flex-direction:column;gap:12px}
.details{flex:0 0 380px;position:sticky;top:12px;max-height:calc(100vh - 24px);overflow:auto;font-size:13px}
footer{margin:14px 16px 24px;color:var(--muted);font-size:12px}
.muted{color:var(--muted)}
dl.input{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0}
dl.input dt{color:var(--muted)}
dl.input dd{margin:0;overflow-wrap:anywhere}
.warnings{margin:8px 0 0;padding-left:18px;color:#8a5a00}
.cause{white-space:nowrap;font-weight:600}
.cause i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px;background:var(--cc,#999)}
.c-alive{--cc:var(--c-alive)}.c-graceful_close{--cc:var(--c-graceful_close)}.c-idle_goaway{--cc:var(--c-idle_goaway)}
.c-max_age_goaway{--cc:var(--c-max_age_goaway)}.c-too_many_pings{--cc:var(--c-too_many_pings)}.c-idle_close{--cc:var(--c-idle_close)}
.c-idle_reset{--cc:var(--c-idle_reset)}.c-idle_blackhole{--cc:var(--c-idle_blackhole)}.c-peer_abort{--cc:var(--c-peer_abort)}.c-unknown{--cc:var(--c-unknown)}
.verdicts .cause{margin-right:2px}
.finding{border:1px solid var(--line);border-left:5px solid #8a98a8;border-radius:6px;padding:10px 14px;margin:0 0 10px}
.finding:last-child{margin-bottom:0}
.finding.sev-error{border-left-color:#d0312d}.finding.sev-warning{border-left-color:#e0a00b}.finding.sev-info{border-left-color:#4b8ac4}
.sev{display:inline-block;font-size:11px;font-weight:700;letter-spacing:.04em;padding:1px 7px;border-radius:10px;color:#fff;background:#4b8ac4;vertical-align:1px;margin-right:4px}
.sev-error .sev{background:#d0312d}.sev-warning .sev{background:#d08d00}
.fid{margin:0 0 6px;color:var(--muted);font-size:12px;font-family:ui-monospace,Menlo,Consolas,monospace}
.finding p{margin:4px 0}
.estimate b{font-size:15px}
.evidence{margin:6px 0;padding-left:20px}
.evidence li{overflow-wrap:anywhere}
.fix{display:flex;gap:10px;background:#f0f6ee;border:1px solid #cfe3c9;border-radius:6px;padding:8px 10px;margin-top:8px}
.fix-label{font-weight:700;color:#2f6b2a}
.fix-text{white-space:pre-wrap;overflow-wrap:anywhere}
button{font:inherit;font-size:12.5px;border:1px solid #c9cfd6;background:#fff;border-radius:5px;padding:2px 8px;cursor:pointer;color:var(--text)}
button:hover{background:#eef2f7}
button:disabled{opacity:.45;cursor:default}
.conn-link{font-family:ui-monospace,Menlo,Consolas,monospace;padding:0 5px;color:var(--accent)}
.show-finding{color:var(--accent)}
.section-head{display:flex;align-items:baseline;gap:12px}
.toolbar{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin:0 0 8px;font-size:13px}
.toolbar input,.toolbar select{font:inherit;font-size:13px;padding:2px 6px;border:1px solid #c9cfd6;border-radius:5px;background:#fff}
.toolbar input{width:190px}
.pager span{display:inline-block;min-width:140px;text-align:center;font-size:12.5px}
.zoom button{margin-right:3px}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.chip{border-radius:12px;padding:1px 10px 1px 8px}
.chip.off{opacity:.4;text-decoration:line-through}
.only{background:#fff7e0;border:1px solid #f0d890;border-radius:6px;padding:4px 10px;margin:0 0 8px;font-size:13px}
.plot{border:1px solid var(--line);border-radius:6px;overflow:hidden}
.axis{display:block;width:100%;background:#fafbfc;border-bottom:1px solid var(--line)}
.lanes-box{max-height:68vh;overflow-y:auto;overflow-x:hidden}
.lanes{display:block;width:100%;cursor:crosshair;user-select:none}
.plot .hint{margin:0;padding:5px 10px;border-top:1px solid var(--line);background:#fafbfc}
.hint{color:var(--muted);font-size:12px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
.lane-bg{fill:#fff}.lane-bg.odd{fill:#f8f9fb}.lane-bg.sel{fill:#fff3c4}
.lane-label{font:11.5px ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;fill:#344054;cursor:pointer}
.lane-label:hover,.lane-verdict:hover{text-decoration:underline}
.lane-verdict{font-size:11.5px;font-weight:600;cursor:pointer}
.lane-killer{font-weight:400;fill:#667085}
.group-bg{fill:#eef1f5}
.group-label{font-size:12px;font-weight:600;fill:#344054}
.grid{stroke:#e9ecf0;stroke-width:1}
.tick text{font-size:11px;fill:#667085}
.tick line{stroke:#98a2b3}
.idle-label{font-size:10px;font-weight:600;fill:#6b4700;pointer-events:none;paint-order:stroke;stroke:#fff;stroke-width:2.5px;stroke-opacity:.8}
.idle-label.s{fill:#3b5b8a}
.brush{fill:rgba(36,87,197,.12);stroke:#2457c5;stroke-width:1}
.legend{border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin-top:10px;font-size:12.5px}
.legend summary{cursor:pointer;font-weight:600}
.legend-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:3px 16px;margin:6px 0}
.legend-grid div{display:flex;align-items:center;gap:6px}
.legend p{margin:4px 0 2px;color:#475467}
.sw{width:30px;height:22px;flex:0 0 30px}
.table-box{max-height:60vh;overflow:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th{position:sticky;top:0;background:#f2f4f7;text-align:left;font-weight:600;padding:5px 8px;border-bottom:1px solid var(--line);cursor:pointer;white-space:nowrap}
th:hover{background:#e6eaf0}
th.sorted::after{content:" \25B2";font-size:9px}
th.sorted.desc::after{content:" \25BC"}
td{padding:3px 8px;border-bottom:1px solid #eef0f3;white-space:nowrap}
tbody tr{cursor:pointer}
tbody tr:hover{background:#f3f6fb}
tbody tr.sel{background:#fff3c4}
tr.group td{background:#eef1f5;font-weight:600;cursor:default}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.addr{font-size:12px}
.details h2{font-size:15px;margin:0 0 6px;overflow-wrap:anywhere}
.details h4{margin:12px 0 4px;font-size:12.5px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.details ul{margin:0;padding-left:18px}
.details li{overflow-wrap:anywhere;margin:1px 0}
.details dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
.details dt{color:var(--muted)}
.details dd{margin:0;overflow-wrap:anywhere}
.details .verdict{font-size:14px;margin:4px 0 2px}
.details .focus{margin:2px 0 4px}
.errors{margin:0 16px 12px;background:#fdecea;border:1px solid #f5b5ae;color:#8a1f17;border-radius:8px;padding:10px 14px}
.noscript{margin:0 16px 12px;background:#fff7e0;border:1px solid #f0d890;border-radius:8px;padding:10px 14px}
.none{margin:0;color:#2f6b2a}
@media (max-width:1100px){.layout{flex-direction:column}.details{position:static;max-height:none;width:100%;flex-basis:auto}}
@media print{.details{position:static;max-height:none}.lanes-box,.table-box{max-height:none}}
.more-findings{margin-top:8px}
.more-findings summary{cursor:pointer;font-weight:600;margin-bottom:6px}
.compact{list-style:none;margin:0;padding:0}
.compact>li{border-left:4px solid #4b8ac4;padding:4px 10px;margin:0 0 6px;background:#fafbfc}
.compact>li.sev-error{border-left-color:#d0312d}.compact>li.sev-warning{border-left-color:#e0a00b}
.compact .fid{display:inline;margin-left:4px}
.compact .evidence{margin:2px 0 0;font-size:12.5px}
a{color:var(--accent)}
header{position:relative}
nav{position:absolute;right:18px;top:14px;display:flex;gap:14px;font-size:13px}
nav a{text-decoration:none}
nav a:hover{text-decoration:underline}
details.long summary{cursor:pointer;list-style:none}
details.long summary::-webkit-details-marker{display:none}
details.long .more{color:var(--accent);font-size:12px;white-space:nowrap}
details.long[open] summary{display:none}
.details ul.streams{list-style:none;padding:0}
.details ul.streams li{margin:0 0 5px}
"##;

/// The page's script. Its SHA-256 is the only script the Content-Security-Policy allows.
const JS: &str = r##"
"use strict";
(function () {
  // Every string below comes from a capture or is shown with one: it goes on the page only via
  // textContent or setAttribute on plain attributes (class, coordinates, colours), never as markup.
  var errors = document.getElementById("errors");
  function fail(msg) {
    errors.hidden = false;
    var d = document.createElement("div");
    d.className = "error";
    d.textContent = msg;
    errors.appendChild(d);
  }
  window.addEventListener("error", function (e) {
    fail("Script error: " + e.message + (e.lineno ? " (line " + e.lineno + ")" : ""));
  });

  var D = JSON.parse(document.getElementById("data").textContent);
  var NS = document.getElementById("axis").namespaceURI;
  var CONNS = [];
  (function () {
    for (var j = 0; j < D.n; j++) CONNS.push({});
    Object.keys(D.cols).forEach(function (k) {
      var col = D.cols[k];
      if (Array.isArray(col)) col.forEach(function (v, j) { if (v !== null) CONNS[j][k] = v; });
      else Object.keys(col).forEach(function (j) { CONNS[Number(j)][k] = col[j]; });
    });
    CONNS.forEach(function (c, j) { if (c.i == null) c.i = j; });
  })();
  var FINDINGS = D.findings;
  var CAUSES = ["idle_reset", "idle_blackhole", "idle_close", "idle_goaway", "too_many_pings",
    "max_age_goaway", "peer_abort", "unknown", "graceful_close", "alive"];
  var COLOR = {
    alive: "#3a9a4a", graceful_close: "#8a98a8", idle_goaway: "#7c4dbd", max_age_goaway: "#4b5fc4",
    too_many_pings: "#e0730b", idle_close: "#c99a06", idle_reset: "#d0312d",
    idle_blackhole: "#3b3b45", peer_abort: "#b5177a", unknown: "#a3a3a3"
  };
  var MARK = {
    ping: "#138496", lost: "#d0312d", goaway: "#6f42c1", rststream: "#e8590c", fin: "#1d3557",
    rst: "#c1121f", forged: "#d6008f", retx: "#8d6e63", timeout: "#d0312d"
  };
  var SIDE = ["client", "server"];
  var LANE_H = 28, GROUP_H = 24, LABEL_W = 262, VERDICT_W = 180, CHAR_W = 6.9;

  // Undo the block's compaction: strings from the table, times from the connection's start.
  var S = D.S || [];
  function str(i) { return i == null ? null : S[i]; }
  CONNS.forEach(function (c) {
    var a = c.a;
    function t(x) { return x == null ? null : Math.round((a + x) * 1000) / 1000; }
    c.s = str(c.s); c.det = str(c.det); c.v = str(c.v) || "unknown"; c.k = str(c.k);
    c.b = t(c.b); c.at = t(c.at); c.fc = t(c.fc); c.fs = t(c.fs);
    // PINGs arrive as [t, side, rtt ms]; drawn as [t, side, acked at, rtt ms].
    (c.p || []).forEach(function (e) {
      var rtt = e[2];
      e[0] = t(e[0]);
      e[2] = rtt == null ? null : Math.round((e[0] + rtt / 1000) * 1e6) / 1e6;
      e[3] = rtt;
    });
    [c.pa, c.r, c.x, c.an].forEach(function (l) { (l || []).forEach(function (e) { e[0] = t(e[0]); }); });
    [c.g, c.rs].forEach(function (l) { (l || []).forEach(function (e) { e[0] = t(e[0]); e[3] = str(e[3]); }); });
    [c.it, c.is].forEach(function (l) { (l || []).forEach(function (e) { e[0] = t(e[0]); e[1] = t(e[1]); }); });
    [c.sm, c.ss].forEach(function (l) { (l || []).forEach(function (e) { e[0] = str(e[0]); }); });
    (c.sl || []).forEach(function (e) { e[1] = str(e[1]); e[2] = t(e[2]); e[3] = t(e[3]); e[4] = str(e[4]); });
    if (c.im) c.im = [str(c.im[0]), str(c.im[1])];
    if (c.sl && !c.sm) {
      // Every stream is in c.sl: count paths and outcomes here.
      var paths = new Map(), outs = new Map();
      c.sl.forEach(function (e) {
        paths.set(e[1] || "", (paths.get(e[1] || "") || 0) + 1);
        outs.set(e[4], (outs.get(e[4]) || 0) + 1);
      });
      c.sm = Array.from(paths.entries()).sort(function (x, y) { return y[1] - x[1]; });
      c.ss = Array.from(outs.entries());
    }
  });

  var byId = new Map();
  CONNS.forEach(function (c) { byId.set(c.i, c); });
  // Per connection, the estimate of each finding that names it.
  var bands = new Map();
  FINDINGS.forEach(function (f) {
    if (f.lo == null || f.hi == null) return;
    f.conns.forEach(function (id) {
      if (!bands.has(id)) bands.set(id, []);
      bands.get(id).push(f);
    });
  });

  var full = { x0: 0, x1: Math.max(D.span, 0.001) };
  var padFull = (full.x1 - full.x0) * 0.01;
  var st = {
    sort: "i", dir: 1, group: "none", page: 0, size: 100, hidden: new Set(), q: "",
    only: null, onlyText: "", x0: full.x0 - padFull, x1: full.x1 + padFull, sel: null
  };
  var list = [], rows = [], laneRows = [];

  // ---------------------------------------------------------------- helpers
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function tip(node, text) {
    var t = document.createElementNS(NS, "title");
    t.textContent = text;
    node.appendChild(t);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function n(x) { return x == null ? "" : x; }
  function plus(t) { return t == null ? "–" : "+" + t.toFixed(3) + " s"; }
  function sec(s) {
    if (s == null) return "–";
    if (s >= 100) return s.toFixed(0) + " s";
    if (s >= 10) return s.toFixed(1) + " s";
    return s.toFixed(s >= 1 ? 2 : 3) + " s";
  }
  function dur(s) {
    if (s == null) return "–";
    if (s >= 3600) return Math.floor(s / 3600) + " h " + pad2(Math.floor(s % 3600 / 60)) + " min";
    if (s >= 120) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    return sec(s);
  }
  function num(x) { return x.toLocaleString("en-US").replace(/,/g, "\u202f"); }
  function iso(t) {
    var d = new Date(t * 1000);
    return isNaN(d.getTime()) ? "" : " (" + d.toISOString().replace("T", " ").replace("Z", " UTC") + ")";
  }
  function side(i) { return SIDE[i] || "?"; }
  function rtt(ms) { return ms == null ? "no ACK seen" : "RTT " + (ms < 10 ? ms.toFixed(3) : ms.toFixed(1)) + " ms"; }
  function cut(s, max) { return s.length > max ? s.slice(0, max - 1) + "…" : s; }
  function q(s) { return "\u201c" + s + "\u201d"; }

  // ---------------------------------------------------------------- marks (lanes and legend)
  // y: the lane's middle; s: 0 client (above), 1 server (below).
  function sy(y, s) { return s ? y + 7 : y - 7; }
  var draw = {
    ping: function (g, x, y, s, answered) {
      return sv("circle", { cx: x, cy: sy(y, s), r: 3.6, fill: answered ? MARK.ping : "#fff",
        stroke: answered ? MARK.ping : MARK.lost, "stroke-width": answered ? 1 : 1.8,
        "class": answered ? "m-ping" : "m-ping lost" }, g);
    },
    ack: function (g, x, y, s) {
      var yy = sy(y, s);
      return sv("path", { d: "M" + x + " " + (yy - 3.4) + "l3 3.4l-3 3.4l-3-3.4z", fill: "#fff",
        stroke: MARK.ping, "stroke-width": 1.4, "class": "m-ack" }, g);
    },
    goaway: function (g, x, y, s) {
      var grp = sv("g", { "class": "m-goaway" }, g);
      sv("line", { x1: x, x2: x, y1: y - 12, y2: y + 12, stroke: MARK.goaway, "stroke-width": 2 }, grp);
      var fy = s ? y + 2 : y - 12;
      sv("path", { d: "M" + x + " " + fy + "l9 5l-9 5z", fill: MARK.goaway }, grp);
      return grp;
    },
    rststream: function (g, x, y, s) {
      var yy = sy(y, s);
      return sv("path", { d: "M" + (x - 3) + " " + (yy - 3) + "l6 6m0-6l-6 6", stroke: MARK.rststream,
        "stroke-width": 2, "class": "m-rststream" }, g);
    },
    fin: function (g, x, y, s) {
      var y1 = s ? y : y - 12, y2 = s ? y + 12 : y;
      var grp = sv("g", { "class": "m-fin" }, g);
      sv("line", { x1: x, x2: x, y1: y1, y2: y2, stroke: MARK.fin, "stroke-width": 2.4 }, grp);
      sv("line", { x1: x - 4, x2: x + 4, y1: s ? y2 : y1, y2: s ? y2 : y1, stroke: MARK.fin, "stroke-width": 2.4 }, grp);
      return grp;
    },
    rst: function (g, x, y, s, forged) {
      var grp = sv("g", { "class": forged ? "m-rst forged" : "m-rst" }, g);
      var c = forged ? MARK.forged : MARK.rst;
      sv("line", { x1: x, x2: x, y1: y - 13, y2: y + 13, stroke: c, "stroke-width": 3,
        "stroke-dasharray": forged ? "3 2" : "none" }, grp);
      if (forged) {
        sv("path", { d: "M" + x + " " + (sy(y, s) - 5) + "l5 5l-5 5l-5-5z", fill: "#fff", stroke: c, "stroke-width": 2 }, grp);
      } else {
        sv("rect", { x: x - 4, y: sy(y, s) - 4, width: 8, height: 8, fill: c }, grp);
      }
      return grp;
    },
    retx: function (g, x, y, s) {
      var yy = sy(y, s);
      return sv("path", { d: s ? "M" + (x - 3) + " " + (yy + 4) + "h6l-3-6z" : "M" + (x - 3) + " " + (yy - 4) + "h6l-3 6z",
        fill: MARK.retx, "class": "m-retx" }, g);
    },
    verdict: function (g, x, y, cause) {
      return sv("rect", { x: x - 1, y: y - 10, width: 8, height: 20, rx: 2, fill: COLOR[cause] || "#999",
        "fill-opacity": 0.9, "class": "m-verdict" }, g);
    }
  };
  function defs(svg) {
    var d = sv("defs", {}, svg);
    var p = sv("pattern", { id: svg.id + "-hatch-t", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" }, d);
    sv("rect", { width: 6, height: 6, fill: "#f6c453", "fill-opacity": 0.55 }, p);
    sv("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#c98a00", "stroke-width": 1.4, "stroke-opacity": 0.55 }, p);
    var q2 = sv("pattern", { id: svg.id + "-hatch-x", width: 5, height: 5, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(-45)" }, d);
    sv("rect", { width: 5, height: 5, fill: MARK.timeout, "fill-opacity": 0.08 }, q2);
    sv("line", { x1: 0, y1: 0, x2: 0, y2: 5, stroke: MARK.timeout, "stroke-width": 1.3, "stroke-opacity": 0.6 }, q2);
    return d;
  }
  function idleT(g, svgId, x0, x1, y) {
    return sv("rect", { x: x0, y: y - 7, width: Math.max(x1 - x0, 1), height: 14, fill: "url(#" + svgId + "-hatch-t)",
      "class": "m-idle transport" }, g);
  }
  function idleS(g, x0, x1, y) {
    return sv("rect", { x: x0, y: y - 12, width: Math.max(x1 - x0, 1), height: 24, fill: "#c9dbf3",
      "class": "m-idle stream" }, g);
  }
  function timeoutBand(g, svgId, xl, xa, xb, y) {
    var grp = sv("g", { "class": "m-timeout" }, g);
    if (xl != null) sv("line", { x1: xl, x2: xa, y1: y, y2: y, stroke: MARK.timeout, "stroke-width": 1.2,
      "stroke-dasharray": "4 3" }, grp);
    sv("rect", { x: xa, y: y - 13, width: Math.max(xb - xa, 2), height: 26, fill: "url(#" + svgId + "-hatch-x)",
      stroke: MARK.timeout, "stroke-width": 1, "stroke-opacity": 0.7 }, grp);
    return grp;
  }

  function legend() {
    document.querySelectorAll("svg.sw").forEach(function (s) {
      s.id = "sw-" + s.getAttribute("data-sw");
      s.setAttribute("viewBox", "0 0 30 22");
      defs(s);
      var y = 11, k = s.getAttribute("data-sw");
      if (k === "ping") draw.ping(s, 15, y + 7, 0, true);
      else if (k === "ping-lost") draw.ping(s, 15, y + 7, 0, false);
      else if (k === "ack") draw.ack(s, 15, y + 7, 0);
      else if (k === "goaway") draw.goaway(s, 12, y, 0);
      else if (k === "rststream") draw.rststream(s, 15, y + 7, 0);
      else if (k === "fin") draw.fin(s, 15, y + 12, 0);
      else if (k === "rst") draw.rst(s, 15, y - 1, 1, false);
      else if (k === "rst-forged") draw.rst(s, 15, y - 1, 1, true);
      else if (k === "retx") draw.retx(s, 15, y + 7, 0);
      else if (k === "idle-t") idleT(s, s.id, 2, 28, y);
      else if (k === "idle-s") idleS(s, 2, 28, y + 2);
      else if (k === "timeout") timeoutBand(s, s.id, 1, 12, 28, y);
      else if (k === "verdict") draw.verdict(s, 15, y, "idle_reset");
    });
  }

  // ---------------------------------------------------------------- the list shown
  var KEYS = {
    i: function (c) { return c.i; },
    client: function (c) { return c.c; },
    server: function (c) { return c.s; },
    start: function (c) { return c.a; },
    dur: function (c) { return c.b - c.a; },
    cause: function (c) { return c.v; },
    killed: function (c) { return c.k || ""; },
    idle: function (c) { return c.ib == null ? -1 : c.ib; },
    pings: function (c) { return c.p ? c.p.length : 0; },
    goaways: function (c) { return c.g ? c.g.length : 0; },
    streams: function (c) { return c.n || 0; }
  };
  function groupOf(c) {
    if (st.group === "server") return c.s;
    if (st.group === "cause") return String(100 + CAUSES.indexOf(c.v)) + c.v;
    return "";
  }
  function groupLabel(c) {
    return st.group === "server" ? "server " + c.s : st.group === "cause" ? c.v : "";
  }
  function compute() {
    var needle = st.q.trim().toLowerCase();
    list = CONNS.filter(function (c) {
      if (st.hidden.has(c.v)) return false;
      if (st.only && !st.only.has(c.i)) return false;
      if (needle && ("#" + c.i + " " + c.c + " " + c.s).toLowerCase().indexOf(needle) < 0) return false;
      return true;
    });
    var key = KEYS[st.sort], dir = st.dir;
    list.sort(function (a, b) {
      if (st.group !== "none") {
        var ga = groupOf(a), gb = groupOf(b);
        if (ga !== gb) return ga < gb ? -1 : 1;
      }
      var ka = key(a), kb = key(b);
      if (ka < kb) return -dir;
      if (ka > kb) return dir;
      return a.i - b.i;
    });
    var pages = Math.max(1, Math.ceil(list.length / st.size));
    st.page = Math.min(Math.max(st.page, 0), pages - 1);
    var counts = new Map();
    if (st.group !== "none") list.forEach(function (c) {
      var k = groupOf(c);
      counts.set(k, (counts.get(k) || 0) + 1);
    });
    rows = [];
    var from = st.page * st.size, to = Math.min(list.length, from + st.size), last = null;
    for (var i = from; i < to; i++) {
      var c = list[i];
      if (st.group !== "none") {
        var k = groupOf(c);
        if (k !== last) {
          rows.push({ group: groupLabel(c), count: counts.get(k), cont: i === from && i > 0 && groupOf(list[i - 1]) === k });
          last = k;
        }
      }
      rows.push({ c: c });
    }
  }

  // ---------------------------------------------------------------- axis
  var STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300,
    600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function ticks(plotW) {
    var want = (st.x1 - st.x0) / Math.max(plotW / 95, 1), step = 0;
    for (var i = 0; i < STEPS.length; i++) if (STEPS[i] >= want) { step = STEPS[i]; break; }
    // Beyond a day: 1, 2, 5 x 10^k days.
    for (var d = 1; !step; d *= 10) [1, 2, 5].forEach(function (m) { if (!step && 86400 * d * m >= want) step = 86400 * d * m; });
    var out = [], first = Math.ceil(st.x0 / step);
    for (var j = 0; j < 400; j++) {
      var t = (first + j) * step;
      if (t > st.x1) break;
      out.push(t);
    }
    return { step: step, ts: out };
  }
  function pad2(x) { return String(x).padStart(2, "0"); }
  function tickLabel(t, step) {
    var sign = t < 0 ? "\u2212" : "+";
    t = Math.abs(t);
    if (step >= 86400) return sign + Math.round(t / 86400) + " d";
    if (step >= 60) {
      var s = Math.round(t), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), ss = s % 60;
      if (d) return sign + d + " d " + h + ":" + pad2(m);
      return sign + (h ? h + ":" + pad2(m) : m) + ":" + pad2(ss);
    }
    var dec = step >= 1 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3;
    return sign + t.toFixed(dec) + " s";
  }
  function geometry() {
    var box = document.getElementById("lanes-box");
    var W = Math.max(box.clientWidth, 760);
    // The label column fits the page's longest label, within limits.
    var longest = rows.reduce(function (m, r) { return r.c ? Math.max(m, laneText(r.c).length) : m; }, 12);
    LABEL_W = Math.round(Math.min(Math.max(longest * CHAR_W + 18, 150), Math.min(340, W * 0.3)));
    var plotW = W - LABEL_W - VERDICT_W;
    return { W: W, plotW: plotW, x: function (t) { return LABEL_W + (t - st.x0) / (st.x1 - st.x0) * plotW; } };
  }
  function drawAxis(G, T) {
    var axis = document.getElementById("axis");
    clear(axis);
    axis.setAttribute("width", G.W);
    var label = sv("text", { x: 8, y: 18, "class": "tick" }, axis);
    label.setAttribute("font-size", "11");
    label.setAttribute("fill", "#667085");
    label.textContent = st.x0 <= full.x0 && st.x1 >= full.x1 ? "whole capture" : "zoomed: " + plus(Math.max(st.x0, 0)) + " .. " + plus(st.x1);
    T.ts.forEach(function (t) {
      var x = G.x(t);
      if (x < LABEL_W - 1 || x > LABEL_W + G.plotW - 22) return;
      var g = sv("g", { "class": "tick" }, axis);
      sv("line", { x1: x, x2: x, y1: 22, y2: 28 }, g);
      var tx = sv("text", { x: x, y: 16, "text-anchor": "middle" }, g);
      tx.textContent = tickLabel(t, T.step);
    });
    var v = sv("text", { x: G.W - VERDICT_W + 8, y: 18, "font-size": 11, fill: "#667085" }, axis);
    v.textContent = "verdict";
  }

  // ---------------------------------------------------------------- lanes
  function visible(t) { return t != null && t >= st.x0 && t <= st.x1; }
  function overlaps(a, b) { return a != null && b != null && b >= st.x0 && a <= st.x1; }
  function clampX(G, x) { return Math.min(Math.max(x, LABEL_W - 20), LABEL_W + G.plotW + 20); }

  function drawLanes() {
    var G = geometry(), T = ticks(G.plotW);
    drawAxis(G, T);
    var svg = document.getElementById("lanes");
    clear(svg);
    var H = 0;
    rows.forEach(function (r) { H += r.c ? LANE_H : GROUP_H; });
    H = Math.max(H, 40);
    svg.setAttribute("width", G.W);
    svg.setAttribute("height", H);
    var cp = sv("clipPath", { id: "plot-clip" }, defs(svg));
    sv("rect", { x: LABEL_W, y: 0, width: G.plotW, height: H }, cp);
    var grid = sv("g", {}, svg);
    var body = sv("g", {}, svg);
    var y = 0, odd = false;
    laneRows = [];
    rows.forEach(function (r) {
      if (!r.c) {
        var gg = sv("g", { "class": "group", transform: "translate(0," + y + ")" }, body);
        sv("rect", { "class": "group-bg", x: 0, y: 0, width: G.W, height: GROUP_H }, gg);
        var t = sv("text", { "class": "group-label", x: 8, y: 16 }, gg);
        t.textContent = r.group + " \u2014 " + num(r.count) + " connection" + (r.count === 1 ? "" : "s") + (r.cont ? " (continued)" : "");
        y += GROUP_H;
        return;
      }
      laneRows.push({ y0: y, y1: y + LANE_H, c: r.c });
      lane(body, G, r.c, y, odd);
      odd = !odd;
      y += LANE_H;
    });
    if (!rows.length) {
      var e = sv("text", { x: 12, y: 24, "class": "group-label" }, body);
      e.textContent = "No connection to show" + (CONNS.length ? " with these filters." : ": the capture has no HTTP/2 connection.");
    }
    T.ts.forEach(function (t) {
      var x = G.x(t);
      sv("line", { "class": "grid", x1: x, x2: x, y1: 0, y2: H }, grid);
    });
    sv("line", { x1: LABEL_W, x2: LABEL_W, y1: 0, y2: H, stroke: "#d0d5dd" }, grid);
    sv("line", { x1: LABEL_W + G.plotW, x2: LABEL_W + G.plotW, y1: 0, y2: H, stroke: "#d0d5dd" }, grid);
  }

  function laneText(c) { return "#" + c.i + " " + c.c + " \u2192 " + c.s; }

  function lane(parent, G, c, y, odd) {
    var g = sv("g", { "class": "lane", "data-conn": c.i, transform: "translate(0," + y + ")" }, parent);
    var mid = LANE_H / 2, X = function (t) { return clampX(G, G.x(t)); };
    var color = COLOR[c.v] || "#999";
    tip(sv("rect", { "class": "lane-bg" + (odd ? " odd" : "") + (st.sel === c.i ? " sel" : ""), x: 0, y: 0,
      width: G.W, height: LANE_H }, g),
      "#" + c.i + " " + c.c + " \u2192 " + c.s + "\n" + c.v + (c.k ? " by " + c.k : "") + ", " + plus(c.a) + " .. " + plus(c.b));
    var label = sv("text", { "class": "lane-label", x: 8, y: mid + 4 }, g);
    label.textContent = cut(laneText(c), Math.floor((LABEL_W - 14) / CHAR_W));
    tip(label, "#" + c.i + " " + c.c + " \u2192 " + c.s + " (" + n(c.det) + "): click to zoom onto it");

    var p = sv("g", { "clip-path": "url(#plot-clip)" }, g);
    var labels = [];
    if (overlaps(c.a, c.b)) {
      sv("rect", { x: X(c.a), y: mid - 5, width: Math.max(X(c.b) - X(c.a), 1.5), height: 10, rx: 2,
        fill: color, "fill-opacity": 0.16, stroke: color, "stroke-opacity": 0.45, "class": "life" }, p);
    }
    (c.is || []).forEach(function (i) {
      if (!overlaps(i[0], i[1])) return;
      var a = X(i[0]), b = X(i[1]);
      tip(idleS(p, a, b, mid), "no open stream for " + sec(i[2]) + ": " + plus(i[0]) + " .. " + plus(i[1]));
      labels.push({ cls: "idle-label s", a: a, b: b, text: sec(i[2]) + " no stream", rank: 1 });
    });
    (c.it || []).forEach(function (i) {
      if (!overlaps(i[0], i[1])) return;
      var a = X(i[0]), b = X(i[1]);
      tip(idleT(p, "lanes", a, b, mid), "no packets for " + sec(i[2]) + ": " + plus(i[0]) + " .. " + plus(i[1]));
      labels.push({ cls: "idle-label", a: a, b: b, text: sec(i[2]), rank: 0 });
    });
    (bands.get(c.i) || []).forEach(function (f) {
      if (c.ib == null || c.at == null) return;
      var last = c.at - c.ib, lo = last + f.lo, hi = last + f.hi;
      if (!overlaps(last, hi)) return;
      tip(timeoutBand(p, "lanes", X(last), X(lo), X(hi), mid),
        "finding " + f.id + ": timeout estimated between " + sec(f.lo) + " and " + sec(f.hi) +
        ".\nLast activity " + plus(last) + ", so the timer expires between " + plus(lo) + " and " + plus(hi) +
        ";\nthe connection died at " + plus(c.at) + " after " + sec(c.ib) + " idle.");
    });
    // The verdict's cap sits under the markers: the GOAWAY or RST that ended the lane stays visible.
    var at = c.at != null ? c.at : c.b;
    if (visible(at)) tip(draw.verdict(p, X(at), mid, c.v), c.v + (c.k ? " by " + c.k : "") + " at " + plus(at) + (c.ib != null ? " after " + sec(c.ib) + " idle" : ""));
    (c.x || []).forEach(function (r) {
      if (visible(r[0])) tip(draw.retx(p, X(r[0]), mid, r[1]), "retransmission by the " + side(r[1]) + " at " + plus(r[0]));
    });
    (c.p || []).forEach(function (q) {
      var answered = q[2] != null;
      var text = "PING from the " + side(q[1]) + " at " + plus(q[0]) + (answered ? ", ACK at " + plus(q[2]) + ", " + rtt(q[3]) : ", never answered in the capture");
      if (visible(q[0])) tip(draw.ping(p, X(q[0]), mid, q[1], answered), text);
      if (answered && visible(q[2])) tip(draw.ack(p, X(q[2]), mid, 1 - q[1]), "PING ACK from the " + side(1 - q[1]) + " at " + plus(q[2]) + ", " + rtt(q[3]));
    });
    (c.pa || []).forEach(function (q) {
      if (visible(q[0])) tip(draw.ack(p, X(q[0]), mid, q[1]), "PING ACK from the " + side(q[1]) + " at " + plus(q[0]) + " answering no PING seen in the capture");
    });
    (c.rs || []).forEach(function (r) {
      if (visible(r[0])) tip(draw.rststream(p, X(r[0]), mid, r[1]), "RST_STREAM " + r[3] + " on stream " + r[2] + " from the " + side(r[1]) + " at " + plus(r[0]));
    });
    (c.g || []).forEach(function (r) {
      if (visible(r[0])) tip(draw.goaway(p, X(r[0]), mid, r[1]), "GOAWAY " + r[3] + " from the " + side(r[1]) + " at " + plus(r[0]) +
        "\nlast stream id " + r[2] + (r[4] ? "\ndebug data: " + q(r[4]) : ""));
    });
    [[c.fc, 0], [c.fs, 1]].forEach(function (f) {
      if (visible(f[0])) tip(draw.fin(p, X(f[0]), mid, f[1]), "FIN from the " + side(f[1]) + " at " + plus(f[0]));
    });
    (c.r || []).forEach(function (r) {
      if (visible(r[0])) tip(draw.rst(p, X(r[0]), mid, r[1], !!r[3]), (r[3] ? "TCP RST claiming to be from the " + side(r[1]) + ", forged by a middlebox (TTL " + r[2] + ")" : "TCP RST from the " + side(r[1]) + " (TTL " + r[2] + ")") + " at " + plus(r[0]));
    });
    // Idle lengths in the middle of their band where they fit, longest first, never overlapping.
    var placed = [];
    labels.sort(function (x, y) { return (y.b - y.a) - (x.b - x.a) || x.rank - y.rank; }).forEach(function (l) {
      var w = l.text.length * 5.6 + 6, cx = (Math.max(l.a, LABEL_W) + Math.min(l.b, LABEL_W + G.plotW)) / 2;
      if (Math.min(l.b, LABEL_W + G.plotW) - Math.max(l.a, LABEL_W) < w) return;
      if (placed.some(function (q) { return cx - w / 2 < q[1] && cx + w / 2 > q[0]; })) return;
      placed.push([cx - w / 2, cx + w / 2]);
      var tx = sv("text", { "class": l.cls, x: cx, y: mid + 3.5, "text-anchor": "middle" }, p);
      tx.textContent = l.text;
    });
    var vt = sv("text", { "class": "lane-verdict", x: LABEL_W + G.plotW + 10, y: mid + 4, fill: color }, g);
    vt.textContent = c.v;
    if (c.k && c.v !== "alive") {
      var kt = sv("tspan", { "class": "lane-killer", dx: 5 }, vt);
      kt.textContent = c.k;
    }
    tip(vt, (c.ev || []).join("\n") || c.v);
  }

  // ---------------------------------------------------------------- table
  function drawTable() {
    var tb = document.querySelector("#conns tbody");
    clear(tb);
    document.querySelectorAll("#conns th").forEach(function (th) {
      th.classList.toggle("sorted", th.getAttribute("data-key") === st.sort);
      th.classList.toggle("desc", th.getAttribute("data-key") === st.sort && st.dir < 0);
    });
    rows.forEach(function (r) {
      var tr;
      if (!r.c) {
        tr = el("tr", "group");
        var td = el("td", null, r.group + " \u2014 " + num(r.count) + (r.cont ? " (continued)" : ""));
        td.colSpan = 11;
        tr.appendChild(td);
        tb.appendChild(tr);
        return;
      }
      var c = r.c;
      tr = el("tr", st.sel === c.i ? "sel" : null);
      tr.setAttribute("data-conn", c.i);
      tr.tabIndex = 0;
      var cause = el("td");
      var chip = el("span", "cause c-" + (COLOR[c.v] ? c.v : "unknown"));
      chip.appendChild(el("i"));
      chip.appendChild(document.createTextNode(c.v));
      cause.appendChild(chip);
      [el("td", "num", c.i), el("td", "addr", c.c), el("td", "addr", c.s), el("td", "num", plus(c.a)),
        el("td", "num", dur(c.b - c.a)), cause, el("td", null, c.k || ""), el("td", "num", c.ib == null ? "" : sec(c.ib)),
        el("td", "num", c.p ? c.p.length : 0), el("td", "num", c.g ? c.g.length : 0), el("td", "num", c.n || 0)
      ].forEach(function (td) { tr.appendChild(td); });
      tb.appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- details
  function details(c) {
    var box = document.getElementById("details");
    clear(box);
    if (!c) {
      box.appendChild(el("p", "muted", "Click a lane or a table row to see that connection here."));
      return;
    }
    box.appendChild(el("h2", "mono", "#" + c.i + " " + c.c + " \u2192 " + c.s));
    var v = el("div", "verdict");
    var chip = el("span", "cause c-" + (COLOR[c.v] ? c.v : "unknown"));
    chip.appendChild(el("i"));
    chip.appendChild(document.createTextNode(c.v));
    v.appendChild(chip);
    v.appendChild(document.createTextNode((c.k ? " by " + c.k : "") + (c.cf != null ? ", confidence " + c.cf.toFixed(2) : "")));
    box.appendChild(v);
    var zb = el("button", "focus", "Zoom the timeline onto it");
    zb.type = "button";
    zb.addEventListener("click", function () { focus(c.i); });
    box.appendChild(zb);
    if (c.ev && c.ev.length) {
      var ul = el("ul");
      c.ev.forEach(function (e) { ul.appendChild(el("li", null, e)); });
      box.appendChild(ul);
    }
    function dl(pairs) {
      var d = el("dl");
      pairs.forEach(function (p) {
        if (p[1] == null || p[1] === "") return;
        d.appendChild(el("dt", null, p[0]));
        d.appendChild(el("dd", null, p[1]));
      });
      return d;
    }
    box.appendChild(el("h4", null, "Connection"));
    box.appendChild(dl([
      ["first packet", plus(c.a) + iso(D.t0 + c.a)],
      ["last packet", plus(c.b) + " (lasted " + dur(c.b - c.a) + ")"],
      ["verdict at", c.at != null ? plus(c.at) + (c.ib != null ? " after " + sec(c.ib) + " idle" : "") : null],
      ["HTTP/2", c.det],
      ["packets", c.pk ? "client " + num(c.pk[0]) + ", server " + num(c.pk[1]) : null],
      ["client stack", c.im && c.im[0]],
      ["server stack", c.im && c.im[1]],
      ["FIN", [c.fc != null ? "client " + plus(c.fc) : "", c.fs != null ? "server " + plus(c.fs) : ""].filter(Boolean).join(", ") || "none"],
      ["TCP RST", (c.r || []).map(function (r) { return side(r[1]) + " " + plus(r[0]) + " TTL " + r[2] + (r[3] ? " (forged)" : ""); }).join("; ") || "none"],
      ["retransmissions", c.x ? num(c.x.length) : "0"]
    ]));
    if (c.ka) {
      box.appendChild(el("h4", null, "Keepalive"));
      box.appendChild(dl(c.ka.map(function (k, i) {
        if (!k || !k[0]) return [side(i), "no PINGs"];
        return [side(i), k[0] + " PING" + (k[0] === 1 ? "" : "s") + (k[1] != null ? ", every ~" + sec(k[1]) : "") +
          (k[2] ? ", " + k[2] + " without calls" : "") + (k[3] ? ", " + k[3] + " unanswered" : ", all answered") +
          (k[4] != null ? ", " + rtt(k[4]) + " median" : "")];
      })));
    }
    var longest = function (l) { return (l || []).reduce(function (m, i) { return Math.max(m, i[2]); }, 0); };
    box.appendChild(el("h4", null, "Idle"));
    box.appendChild(dl([
      ["no packets", c.it ? "longest " + sec(longest(c.it)) + " (" + c.it.length + " period" + (c.it.length === 1 ? "" : "s") + " of 1 s or more)" : "never 1 s or more"],
      ["no open stream", c.is ? "longest " + sec(longest(c.is)) + " (" + c.is.length + " period" + (c.is.length === 1 ? "" : "s") + ")" : "never 1 s or more"]
    ]));
    if (c.g) {
      box.appendChild(el("h4", null, "GOAWAY"));
      var gl = el("ul");
      c.g.forEach(function (g) {
        gl.appendChild(el("li", null, plus(g[0]) + " from the " + side(g[1]) + ": " + g[3] + ", last stream " + g[2] + (g[4] ? ", debug data " + q(g[4]) : "")));
      });
      box.appendChild(gl);
    }
    if (c.rs) {
      box.appendChild(el("h4", null, "RST_STREAM"));
      var rl = el("ul");
      c.rs.slice(0, 10).forEach(function (r) {
        rl.appendChild(el("li", null, plus(r[0]) + " " + side(r[1]) + ": " + r[3] + " on stream " + r[2]));
      });
      if (c.rs.length > 10) rl.appendChild(el("li", "muted", "and " + num(c.rs.length - 10) + " more"));
      box.appendChild(rl);
    }
    box.appendChild(el("h4", null, "Streams: " + num((c.n || 0) + (c.nk || 0))));
    if (c.sm) {
      var ml = el("ul");
      c.sm.forEach(function (m) { ml.appendChild(el("li", "mono", m[1] + " \u00d7 " + (m[0] || "(no :path seen)"))); });
      if (c.smx) ml.appendChild(el("li", "muted", "and " + num(c.smx) + " other paths"));
      box.appendChild(ml);
    }
    if (c.ss) box.appendChild(el("p", null, c.ss.map(function (s) { return s[0] + " \u00d7 " + s[1]; }).join(", ")));
    if (c.sl) {
      box.appendChild(el("p", "muted", c.sl.length < (c.n || 0) ? "The last " + c.sl.length + ":" : "Each:"));
      var sl = el("ul", "streams");
      c.sl.forEach(function (s) {
        var li = el("li");
        li.appendChild(el("span", "mono", "stream " + s[0] + " " + (s[1] == null ? "(no :path seen)" : s[1])));
        li.appendChild(el("div", "muted", plus(s[2]) + " .. " + (s[3] == null ? "still open" : plus(s[3])) + ": " + s[4] +
          (s[5] != null ? ", grpc-message " + q(s[5]) : "")));
        sl.appendChild(li);
      });
      box.appendChild(sl);
    }
    if (c.an) {
      box.appendChild(el("h4", null, "Anomalies and limits"));
      var al = el("ul");
      c.an.forEach(function (a) { al.appendChild(el("li", null, plus(a[0]) + " " + side(a[1]) + ": " + a[2])); });
      if (c.anx) al.appendChild(el("li", "muted", "and " + num(c.anx) + " more"));
      box.appendChild(al);
    }
  }

  // ---------------------------------------------------------------- controls
  function chips() {
    var box = document.getElementById("causes");
    clear(box);
    var counts = new Map();
    CONNS.forEach(function (c) { counts.set(c.v, (counts.get(c.v) || 0) + 1); });
    var causes = CAUSES.filter(function (k) { return counts.has(k); });
    counts.forEach(function (_, k) { if (causes.indexOf(k) < 0) causes.push(k); });
    causes.forEach(function (k) {
      var b = el("button", "chip cause c-" + (COLOR[k] ? k : "unknown") + (st.hidden.has(k) ? " off" : ""));
      b.type = "button";
      b.appendChild(el("i"));
      b.appendChild(document.createTextNode(k + " " + num(counts.get(k))));
      b.addEventListener("click", function () {
        if (st.hidden.has(k)) st.hidden.delete(k); else st.hidden.add(k);
        st.page = 0;
        chips();
        render();
      });
      box.appendChild(b);
    });
  }
  function render() {
    compute();
    var pages = Math.max(1, Math.ceil(list.length / st.size));
    var from = list.length ? st.page * st.size + 1 : 0, to = Math.min(list.length, (st.page + 1) * st.size);
    document.getElementById("page").textContent = "page " + (st.page + 1) + " of " + pages;
    document.getElementById("prev").disabled = st.page === 0;
    document.getElementById("next").disabled = st.page >= pages - 1;
    document.getElementById("showing").textContent = "connections " + num(from) + "\u2013" + num(to) + " of " + num(list.length) +
      (list.length < CONNS.length ? " shown (" + num(CONNS.length) + " in the capture)" : "");
    var only = document.getElementById("only");
    only.hidden = !st.only;
    document.getElementById("only-text").textContent = st.onlyText;
    drawLanes();
    drawTable();
  }
  function zoomTo(a, b) {
    if (!(b > a)) return;
    var w = Math.max(b - a, 0.002);
    var fullW = full.x1 - full.x0 + 2 * padFull;
    if (w >= fullW) { st.x0 = full.x0 - padFull; st.x1 = full.x1 + padFull; }
    else { st.x0 = (a + b) / 2 - w / 2; st.x1 = st.x0 + w; }
    drawLanes();
  }
  function scaleBy(f) {
    var m = (st.x0 + st.x1) / 2, w = (st.x1 - st.x0) * f;
    zoomTo(m - w / 2, m + w / 2);
  }
  function pan(f) {
    var w = st.x1 - st.x0, d = w * f;
    st.x0 += d; st.x1 += d;
    drawLanes();
  }
  function select(id) {
    st.sel = id;
    details(byId.get(id));
    document.querySelectorAll("#lanes .lane-bg.sel, #conns tr.sel").forEach(function (e) { e.classList.remove("sel"); });
    var lg = document.querySelector('#lanes .lane[data-conn="' + id + '"] .lane-bg');
    if (lg) lg.classList.add("sel");
    var tr = document.querySelector('#conns tr[data-conn="' + id + '"]');
    if (tr) tr.classList.add("sel");
  }
  function focus(id) {
    var c = byId.get(id);
    if (!c) return;
    compute();
    var idx = list.indexOf(c);
    if (idx < 0) {
      st.only = null; st.hidden.clear(); st.q = "";
      document.getElementById("q").value = "";
      chips();
      compute();
      idx = list.indexOf(c);
    }
    st.page = Math.floor(idx / st.size);
    var a = c.a, b = c.b;
    (bands.get(c.i) || []).forEach(function (f) {
      if (c.ib != null && c.at != null) b = Math.max(b, c.at - c.ib + f.hi);
    });
    var m = Math.max((b - a) * 0.06, 0.005);
    st.x0 = a - m; st.x1 = b + m;
    st.sel = id;
    render();
    details(c);
    var lr = laneRows.filter(function (r) { return r.c === c; })[0];
    var box = document.getElementById("lanes-box");
    if (lr && (lr.y0 < box.scrollTop || lr.y1 > box.scrollTop + box.clientHeight)) box.scrollTop = Math.max(0, lr.y0 - box.clientHeight / 3);
    try { history.replaceState(null, "", "#conn=" + id); } catch (e) { /* file: URLs in some browsers */ }
  }
  function showFinding(i) {
    var f = FINDINGS[i];
    if (!f) return;
    st.only = new Set(f.conns);
    st.onlyText = "Showing the " + num(f.conns.length) + " connection" + (f.conns.length === 1 ? "" : "s") + " of finding " + f.id + " (" + f.sev + ").";
    st.hidden.clear();
    st.page = 0;
    chips();
    render();
    document.getElementById("timeline").scrollIntoView();
  }

  function wire() {
    document.getElementById("group").value = st.group;
    document.getElementById("size").value = String(st.size);
    var qi = document.getElementById("q"), timer = null;
    qi.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { st.q = qi.value; st.page = 0; render(); }, 150);
    });
    document.getElementById("group").addEventListener("change", function (e) { st.group = e.target.value; st.page = 0; render(); });
    document.getElementById("size").addEventListener("change", function (e) { st.size = parseInt(e.target.value, 10) || 100; st.page = 0; render(); });
    document.getElementById("prev").addEventListener("click", function () { st.page--; render(); });
    document.getElementById("next").addEventListener("click", function () { st.page++; render(); });
    document.getElementById("zoom-in").addEventListener("click", function () { scaleBy(0.5); });
    document.getElementById("zoom-out").addEventListener("click", function () { scaleBy(2); });
    document.getElementById("pan-left").addEventListener("click", function () { pan(-0.4); });
    document.getElementById("pan-right").addEventListener("click", function () { pan(0.4); });
    document.getElementById("reset").addEventListener("click", function () { zoomTo(full.x0 - padFull, full.x1 + padFull); });
    document.getElementById("fit").addEventListener("click", function () {
      var a = Infinity, b = -Infinity;
      rows.forEach(function (r) { if (r.c) { a = Math.min(a, r.c.a); b = Math.max(b, r.c.b); } });
      if (b >= a) { var m = Math.max((b - a) * 0.02, 0.005); zoomTo(a - m, b + m); }
    });
    document.getElementById("only-clear").addEventListener("click", function () { st.only = null; st.page = 0; render(); });
    document.querySelectorAll("#conns th").forEach(function (th) {
      th.addEventListener("click", function () {
        var k = th.getAttribute("data-key");
        if (st.sort === k) st.dir = -st.dir; else { st.sort = k; st.dir = 1; }
        render();
      });
    });
    document.querySelector("#conns tbody").addEventListener("click", function (e) {
      var tr = e.target.closest("tr[data-conn]");
      if (tr) focus(Number(tr.getAttribute("data-conn")));
    });
    document.querySelector("#conns tbody").addEventListener("keydown", function (e) {
      var tr = e.target.closest("tr[data-conn]");
      if (tr && e.key === "Enter") focus(Number(tr.getAttribute("data-conn")));
    });
    document.querySelectorAll(".conn-link").forEach(function (b) {
      b.addEventListener("click", function () { focus(Number(b.getAttribute("data-conn"))); document.getElementById("timeline").scrollIntoView(); });
    });
    document.querySelectorAll(".show-finding").forEach(function (b) {
      b.addEventListener("click", function () { showFinding(Number(b.getAttribute("data-finding"))); });
    });

    // Drag to zoom, click to select (in the plot) or focus (on the label or the verdict).
    var svg = document.getElementById("lanes"), brush = null;
    function local(e) { var r = svg.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; }
    svg.addEventListener("mousedown", function (e) {
      if (e.button !== 0) return;
      var pt = local(e);
      brush = { x: pt.x, y: pt.y, rect: null };
      e.preventDefault();
    });
    window.addEventListener("mousemove", function (e) {
      if (!brush) return;
      var G = geometry(), pt = local(e);
      if (Math.abs(pt.x - brush.x) < 4 || brush.x < LABEL_W || brush.x > LABEL_W + G.plotW) return;
      if (!brush.rect) brush.rect = sv("rect", { "class": "brush", y: 0, height: svg.getAttribute("height") }, svg);
      var x = Math.min(Math.max(pt.x, LABEL_W), LABEL_W + G.plotW);
      brush.rect.setAttribute("x", Math.min(x, brush.x));
      brush.rect.setAttribute("width", Math.abs(x - brush.x));
    });
    window.addEventListener("mouseup", function (e) {
      if (!brush) return;
      var b = brush, G = geometry(), pt = local(e);
      brush = null;
      if (b.rect) {
        b.rect.remove();
        var x = Math.min(Math.max(pt.x, LABEL_W), LABEL_W + G.plotW);
        var t = function (px) { return st.x0 + (px - LABEL_W) / G.plotW * (st.x1 - st.x0); };
        zoomTo(t(Math.min(x, b.x)), t(Math.max(x, b.x)));
        return;
      }
      var hit = laneRows.filter(function (r) { return b.y >= r.y0 && b.y < r.y1; })[0];
      if (!hit) return;
      if (b.x < LABEL_W || b.x > LABEL_W + G.plotW) focus(hit.c.i); else select(hit.c.i);
    });
    var resize = null;
    window.addEventListener("resize", function () { clearTimeout(resize); resize = setTimeout(drawLanes, 120); });
  }

  legend();
  chips();
  wire();
  var m = /^#conn=(\d+)$/.exec(location.hash);
  if (m && byId.has(Number(m[1]))) {
    focus(Number(m[1]));
  } else {
    render();
    // Open on the first connection of the most severe finding: what the reader came for.
    var first = FINDINGS.filter(function (f) { return f.sev === "error"; }).concat(FINDINGS.filter(function (f) { return f.sev === "warning"; }))[0];
    if (first && first.conns.length && byId.has(first.conns[0])) select(first.conns[0]);
  }
  document.body.setAttribute("data-ready", "1");
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_matches_fips_180_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Two blocks of padding.
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn base64_pads_like_rfc_4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn html_text_and_attributes_are_escaped() {
        assert_eq!(
            esc(r#"</script><img src=x onerror='a'>&amp;"#),
            "&lt;/script&gt;&lt;img src=x onerror=&#39;a&#39;&gt;&amp;amp;"
        );
        assert_eq!(esc("\"><b>"), "&quot;&gt;&lt;b&gt;");
    }

    #[test]
    fn json_in_a_script_element_cannot_end_it() {
        let s = "</script><!--&\u{2028}\u{2029}é";
        let json = script_json(&serde_json::to_string(s).unwrap());
        assert_eq!(json, r#""\u003c/script\u003e\u003c!--\u0026\u2028\u2029é""#);
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s);
    }

    #[test]
    fn compact_json_keeps_values() {
        let mut v = json!([1.0, 0.5, [2.0, null, 3, null, null], {"a": [null, 4.0]}, -0.0]);
        compact(&mut v);
        assert_eq!(v.to_string(), r#"[1,0.5,[2,null,3],{"a":[null,4]},0]"#);
    }

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_704_067_200.25), "2024-01-01 00:00:00.250");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00.000");
        assert_eq!(utc(f64::NAN), "NaN");
    }

    #[test]
    fn page_script_and_style_cannot_close_their_elements() {
        assert!(!JS.to_lowercase().contains("</script"));
        assert!(!CSS.to_lowercase().contains("</style"));
    }
}
