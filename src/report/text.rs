//! Text for people: a header line, one compact block per HTTP/2 connection with its notable events
//! at times relative to the capture's start, then totals. Built from the report model only.

use super::model::{Connection, Document};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Events listed per connection unless `-v`.
const EVENTS_SHOWN: usize = 8;

pub fn render(doc: &Document, verbose: bool) -> String {
    let mut out = String::new();
    let t0 = doc.input.first_ts.unwrap_or(0.0);
    let span = doc.input.last_ts.map_or(0.0, |l| l - t0);
    let files = doc.input.files.join(", ");
    let _ = writeln!(
        out,
        "h2keepalive: {files}: {} packets over {}, {} HTTP/2 connection{} of {} TCP",
        doc.input.packets,
        duration(span),
        doc.connections.len(),
        if doc.connections.len() == 1 { "" } else { "s" },
        doc.input.tcp_connections,
    );
    let i = &doc.input;
    if i.tls_connections > 0 {
        let other = i.tls_connections - i.tls_decrypted - i.tls_without_keys;
        let parts: Vec<String> = [
            (i.tls_decrypted, "HTTP/2 decrypted"),
            (
                i.tls_without_keys,
                "HTTP/2 without keys (PINGs inferred from record sizes)",
            ),
            (other, "not HTTP/2"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let _ = writeln!(out, "  TLS: {}", parts.join(", "));
    }
    for w in &doc.input.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    findings(&mut out, doc);
    for c in &doc.connections {
        out.push('\n');
        connection(&mut out, c, t0, verbose);
    }
    out.push('\n');
    totals(&mut out, doc);
    out
}

fn rel(t: f64, t0: f64) -> String {
    format!("+{:.3}", t - t0)
}

fn duration(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{s:.1} s")
    }
}

/// Text from a capture shown on a terminal: control characters are escaped.
fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// At most `n` characters, with an ellipsis where cut.
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n - 3).collect();
    t.push_str("...");
    t
}

fn connection(out: &mut String, c: &Connection, t0: f64, verbose: bool) {
    let end = match (&c.tcp.rst.first(), c.tcp.fin.client, c.tcp.fin.server) {
        (Some(r), _, _) => format!("RST from {}", r.from),
        (None, Some(_), Some(_)) => "FIN both ways".to_string(),
        (None, Some(_), None) => "FIN from client".to_string(),
        (None, None, Some(_)) => "FIN from server".to_string(),
        _ => "open at capture end".to_string(),
    };
    let _ = writeln!(
        out,
        "#{:<3} {} -> {}  {}  {} .. {} ({})  {}",
        c.id,
        c.client,
        c.server,
        c.detection,
        rel(c.start, t0),
        rel(c.end, t0),
        duration(c.end - c.start),
        end
    );

    if let Some(t) = &c.tls_session {
        let keys = match t.keys {
            "decrypted" => format!(
                "decrypted ({} + {} records)",
                t.decrypted.client, t.decrypted.server
            ),
            "missing" => "not decrypted (no key): PINGs inferred from record sizes".to_string(),
            other => format!("keys {other}: PINGs inferred from record sizes"),
        };
        let _ = writeln!(
            out,
            "     tls      {} {} alpn {}{}, {}",
            t.version.map_or("?".to_string(), |v| format!("TLS {v}")),
            t.cipher.as_deref().unwrap_or("?"),
            t.alpn.as_deref().unwrap_or("-"),
            t.server_name
                .as_deref()
                .map_or(String::new(), |n| format!(" sni {}", clean(n))),
            keys
        );
    }

    // Streams: count, the most common methods, gRPC statuses.
    let mut methods: BTreeMap<String, usize> = BTreeMap::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for s in &c.streams {
        let m = match (&s.http_method, &s.method) {
            (Some(h), Some(p)) => format!("{h} {}", shorten(&clean(p), 60)),
            (None, Some(p)) => shorten(&clean(p), 60),
            _ => "(headers not seen)".to_string(),
        };
        *methods.entry(m).or_default() += 1;
        let st = match (s.grpc_status, &s.status, &s.reset_code) {
            (Some(g), _, _) => format!("grpc-status {g}"),
            (None, _, Some(code)) => format!("reset {code}"),
            (None, Some(h), None) => format!(":status {}", clean(h)),
            _ => "unfinished".to_string(),
        };
        *statuses.entry(st).or_default() += 1;
    }
    if !c.streams.is_empty() {
        let mut ms: Vec<_> = methods.into_iter().collect();
        ms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = ms
            .iter()
            .take(3)
            .map(|(m, n)| format!("{m} x{n}"))
            .collect();
        let more = if ms.len() > 3 {
            format!(", {} more", ms.len() - 3)
        } else {
            String::new()
        };
        let sts: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} x{n}")).collect();
        let _ = writeln!(
            out,
            "     streams  {}: {}{}; {}",
            c.streams.len(),
            shown.join(", "),
            more,
            sts.join(", ")
        );
    }

    let side = |client: bool| -> String {
        let parts: Vec<String> = c
            .frames
            .iter()
            .filter_map(|(name, n)| {
                let v = if client { n.client } else { n.server };
                (v > 0).then(|| format!("{name} {v}"))
            })
            .collect();
        if c.detection == "tls-alpn" {
            "not visible (TLS without keys)".to_string()
        } else if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    };
    let _ = writeln!(out, "     frames   client: {}", side(true));
    let _ = writeln!(out, "              server: {}", side(false));

    for from in ["client", "server"] {
        let sent: Vec<_> = c
            .pings
            .iter()
            .filter(|p| p.from == from && !p.ack)
            .collect();
        if sent.is_empty() {
            continue;
        }
        let answered: Vec<f64> = sent.iter().filter_map(|p| p.rtt_ms).collect();
        let mut rtts = answered.clone();
        rtts.sort_by(|a, b| a.total_cmp(b));
        let median = rtts
            .get(rtts.len() / 2)
            .map_or(String::new(), |m| format!(", RTT median {m:.2} ms"));
        let interval = if sent.len() >= 2 {
            let mut gaps: Vec<f64> = sent.windows(2).map(|w| w[1].ts - w[0].ts).collect();
            gaps.sort_by(|a, b| a.total_cmp(b));
            format!(", every ~{:.1} s", gaps[gaps.len() / 2])
        } else {
            String::new()
        };
        let unanswered = sent.len() - answered.len();
        let ans = if unanswered == 0 {
            "all answered".to_string()
        } else {
            format!("{unanswered} unanswered")
        };
        let _ = writeln!(
            out,
            "     pings    {from} sent {}{interval}, {ans}{median}",
            sent.len()
        );
    }
    let lone_acks = c.pings.iter().filter(|p| p.ack).count();
    if lone_acks > 0 {
        let _ = writeln!(
            out,
            "     pings    {lone_acks} ACK(s) answering PINGs from before the capture"
        );
    }
    let streams = if c.detection == "tls-alpn" {
        "streams not visible".to_string()
    } else {
        format!("without open streams {:.1} s", c.idle.max_stream_idle_s)
    };
    let _ = writeln!(
        out,
        "     idle     longest without packets {:.1} s; {streams}",
        c.idle.max_transport_idle_s
    );
    if c.tcp.retransmissions > 0 || c.tcp.gaps > 0 {
        let _ = writeln!(
            out,
            "     tcp      {} retransmissions, {} gaps",
            c.tcp.retransmissions, c.tcp.gaps
        );
    }

    // Notable events, in time order.
    let mut events: Vec<(f64, String)> = Vec::new();
    for p in &c.pings {
        if !p.ack && p.acked_at.is_none() {
            events.push((
                p.ts,
                match &p.opaque {
                    Some(o) => format!("{:<6}  PING {o} never answered", p.from),
                    None => format!(
                        "{:<6}  PING (inferred from a TLS record, confidence {:.1}) never answered",
                        p.from,
                        p.confidence.unwrap_or(0.0)
                    ),
                },
            ));
        }
    }
    for g in &c.goaways {
        let dbg = if g.debug_data.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", clean(&g.debug_data))
        };
        events.push((
            g.ts,
            format!(
                "{:<6}  GOAWAY {} last-stream {}{dbg}",
                g.from, g.error_code, g.last_stream_id
            ),
        ));
    }
    for r in &c.rst_streams {
        events.push((
            r.ts,
            format!(
                "{:<6}  RST_STREAM {} on stream {}",
                r.from, r.error_code, r.stream_id
            ),
        ));
    }
    if let Some(t) = c.tcp.fin.client {
        events.push((t, "client  FIN".to_string()));
    }
    if let Some(t) = c.tcp.fin.server {
        events.push((t, "server  FIN".to_string()));
    }
    for r in &c.tcp.rst {
        events.push((r.ts, format!("{:<6}  TCP RST (TTL {})", r.from, r.ttl)));
    }
    for a in c.anomalies.iter().chain(&c.limits) {
        events.push((a.ts, format!("{:<6}  {}", a.from, clean(&a.what))));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let shown = if verbose {
        events.len()
    } else {
        events.len().min(EVENTS_SHOWN)
    };
    for (i, (t, what)) in events.iter().take(shown).enumerate() {
        let label = if i == 0 { "events" } else { "" };
        let _ = writeln!(out, "     {label:<8} {:<12} {what}", rel(*t, t0));
    }
    if events.len() > shown {
        let _ = writeln!(
            out,
            "              ... {} more (-v shows all)",
            events.len() - shown
        );
    }
    let v = &c.verdict;
    let mut head = v.cause.to_string();
    if let Some(k) = v.killed_by {
        head.push_str(&format!(" by {k}"));
    }
    if let Some(i) = v.idle_before_s {
        head.push_str(&format!(" after {i:.3} s idle"));
    }
    head.push_str(&format!(" (confidence {:.2})", v.confidence));
    let _ = writeln!(out, "     verdict  {head}");
    let shown = if verbose {
        v.evidence.len()
    } else {
        v.evidence.len().min(3)
    };
    for e in v.evidence.iter().take(shown) {
        wrap(out, &clean(e), 14, "- ");
    }
}

/// The findings, most severe first: what is wrong, the estimate and matches, the evidence, the fix.
fn findings(out: &mut String, doc: &Document) {
    if doc.findings.is_empty() {
        let _ = writeln!(out, "\nNo findings: no connection died of a problem.");
        return;
    }
    for f in &doc.findings {
        out.push('\n');
        let label = f.severity.to_uppercase();
        wrap(out, &format!("{label:<7} {}", clean(&f.summary)), 0, "");
        let ids: Vec<String> = f.connections.iter().map(|i| format!("#{i}")).collect();
        let mut facts = format!("connections {}", shorten(&ids.join(" "), 60));
        if let Some(e) = &f.estimate {
            facts.push_str(&format!(
                "; timeout between {:.3} and {:.3} s",
                e.timeout_low_s, e.timeout_high_s
            ));
        }
        if !f.matches.is_empty() {
            let m: Vec<String> = f
                .matches
                .iter()
                .map(|m| {
                    if m.configured {
                        format!("{} (as configured here)", m.name)
                    } else {
                        format!("{} ({} s, {})", m.name, m.timeout_s, m.on_expiry)
                    }
                })
                .collect();
            facts.push_str(&format!("; matches {}", m.join(", ")));
        }
        wrap(out, &facts, 8, "");
        for e in &f.evidence {
            wrap(out, &clean(e), 8, "- ");
        }
        wrap(out, &format!("fix: {}", clean(&f.recommendation)), 8, "");
    }
}

/// Writes `text` word-wrapped to 100 columns, indented by `indent`, the first line after `bullet`.
fn wrap(out: &mut String, text: &str, indent: usize, bullet: &str) {
    const WIDTH: usize = 100;
    let pad = " ".repeat(indent);
    let cont = " ".repeat(indent + bullet.chars().count());
    let mut line = format!("{pad}{bullet}");
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(out, "{line}");
            line = cont.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    let _ = writeln!(out, "{line}");
}

fn totals(out: &mut String, doc: &Document) {
    let mut frames: BTreeMap<&str, u64> = BTreeMap::new();
    let mut goaway_codes: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut streams, mut pings, mut answered, mut rsts) = (0, 0, 0, 0);
    for c in &doc.connections {
        for (name, n) in &c.frames {
            *frames.entry(name).or_default() += n.client + n.server;
        }
        for g in &c.goaways {
            *goaway_codes.entry(&g.error_code).or_default() += 1;
        }
        streams += c.streams.len();
        pings += c.pings.iter().filter(|p| !p.ack).count();
        answered += c.pings.iter().filter(|p| p.acked_at.is_some()).count();
        rsts += c.tcp.rst.len();
    }
    let fr: Vec<String> = frames
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(out, "totals: {} HTTP/2 connections, {streams} streams, {pings} PINGs ({answered} answered), {rsts} TCP RSTs", doc.connections.len());
    if !fr.is_empty() {
        let _ = writeln!(out, "frames: {}", fr.join(", "));
    }
    if !goaway_codes.is_empty() {
        let g: Vec<String> = goaway_codes
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(out, "GOAWAY: {}", g.join(", "));
    }
    let findings = if doc.findings.is_empty() {
        "none".to_string()
    } else {
        doc.findings.len().to_string()
    };
    let _ = writeln!(out, "findings: {findings}");
}
