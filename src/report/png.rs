//! PNG timeline for tickets and chat, drawn with plotters: one lane per connection on a shared axis
//! in seconds, silences shaded, PINGs, GOAWAYs, RST_STREAMs, FINs, RSTs (forged ones apart) and
//! retransmissions marked, each lane's verdict at its end, the estimated timeout window on the
//! lanes it killed, a legend, and the findings as caption. The font is embedded (DejaVu Sans, see
//! assets/fonts): plotters' default text needs fontconfig and system fonts, which pods lack.

use super::model::{Connection, Document};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const WIDTH: u32 = 1600;
/// Lanes drawn at most; connections that died come first.
const MAX_LANES: usize = 40;
const LANE_PX: u32 = 26;
const LEFT_PX: u32 = 330;
const RIGHT_PX: u32 = 250;

static FONT_ONCE: Once = Once::new();

fn register_font() -> Result<(), String> {
    let mut result = Ok(());
    FONT_ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "the embedded font is not a valid font".to_string());
    });
    result
}

fn cause_colour(cause: &str) -> RGBColor {
    match cause {
        "alive" => RGBColor(46, 139, 87),
        "graceful_close" => RGBColor(120, 120, 120),
        "idle_reset" | "idle_blackhole" | "idle_close" => RGBColor(214, 39, 40),
        "idle_goaway" => RGBColor(255, 127, 14),
        "max_age_goaway" => RGBColor(31, 119, 180),
        "too_many_pings" => RGBColor(148, 103, 189),
        "peer_abort" => RGBColor(140, 20, 20),
        _ => RGBColor(0, 0, 0),
    }
}

const PING: RGBColor = RGBColor(31, 119, 180);
const UNANSWERED: RGBColor = RGBColor(214, 39, 40);
const GOAWAY: RGBColor = RGBColor(214, 39, 40);
const RST_STREAM: RGBColor = RGBColor(255, 127, 14);
const FIN: RGBColor = RGBColor(0, 0, 0);
const FORGED: RGBColor = RGBColor(227, 0, 200);
const RETRANS: RGBColor = RGBColor(140, 86, 75);
const TRANSPORT_IDLE: RGBColor = RGBColor(215, 215, 215);
const STREAM_IDLE: RGBColor = RGBColor(198, 219, 239);

/// Which connections get a lane: those in findings first, then the rest, in id order.
fn lanes(doc: &Document) -> Vec<&Connection> {
    let mut in_findings: Vec<usize> = doc
        .findings
        .iter()
        .flat_map(|f| f.connections.iter().copied())
        .collect();
    in_findings.sort_unstable();
    in_findings.dedup();
    let mut out: Vec<&Connection> = in_findings
        .iter()
        .filter_map(|&i| doc.connections.get(i))
        .collect();
    out.extend(
        doc.connections
            .iter()
            .filter(|c| in_findings.binary_search(&c.id).is_err()),
    );
    out.truncate(MAX_LANES);
    out.sort_by_key(|c| c.id);
    out
}

/// Text of a capture, safe to draw: control characters dropped, length bounded.
fn label(s: &str, max: usize) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.chars().count() <= max {
        s
    } else {
        s.chars()
            .take(max.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().map_or(0, |l| l.chars().count());
        if last > 0 && last + 1 + word.chars().count() > width {
            lines.push(String::new());
        }
        if let Some(l) = lines.last_mut() {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(word);
        }
    }
    lines
}

/// Writes the timeline as PNG, or as SVG when `path` ends in `.svg`.
pub fn write(doc: &Document, path: &Path) -> Result<(), String> {
    register_font()?;
    let layout = Layout::new(doc);
    let size = (WIDTH, layout.height);
    if path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("svg"))
    {
        draw(
            SVGBackend::new(path, size).into_drawing_area(),
            doc,
            &layout,
        )
    } else {
        draw(
            BitMapBackend::new(path, size).into_drawing_area(),
            doc,
            &layout,
        )
    }
}

/// What goes where: the lanes drawn, the caption lines, and the heights that follow from them.
struct Layout<'a> {
    lanes: Vec<&'a Connection>,
    caption: Vec<(RGBColor, String)>,
    chart_px: u32,
    legend_px: u32,
    height: u32,
}

impl<'a> Layout<'a> {
    fn new(doc: &'a Document) -> Layout<'a> {
        let lanes = lanes(doc);
        let mut caption: Vec<(RGBColor, String)> = Vec::new();
        for f in doc.findings.iter().take(6) {
            let colour = match f.severity {
                "error" => RGBColor(214, 39, 40),
                "warning" => RGBColor(255, 127, 14),
                _ => RGBColor(90, 90, 90),
            };
            let mut text = format!("{}: {}", f.severity.to_uppercase(), label(&f.summary, 400));
            if let Some(est) = &f.estimate {
                text.push_str(&format!(
                    " (timeout {:.1}-{:.1} s)",
                    est.timeout_low_s, est.timeout_high_s
                ));
            }
            for (i, line) in wrap(&text, 170).into_iter().enumerate() {
                caption.push((colour, if i == 0 { line } else { format!("    {line}") }));
            }
        }
        if doc.findings.is_empty() {
            caption.push((
                RGBColor(46, 139, 87),
                "No findings: no connection died of a problem.".to_string(),
            ));
        }
        let hidden = doc.connections.len().saturating_sub(lanes.len());
        if hidden > 0 {
            caption.push((
                RGBColor(90, 90, 90),
                format!(
                    "{hidden} more connection(s) not drawn; see the HTML report or the tables."
                ),
            ));
        }
        let chart_px = 70 + lanes.len().max(1) as u32 * LANE_PX + 40;
        let legend_px = 40;
        let caption_px = 16 + caption.len() as u32 * 20;
        let height = 50 + chart_px + legend_px + caption_px;
        Layout {
            lanes,
            caption,
            chart_px,
            legend_px,
            height,
        }
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    doc: &Document,
    layout: &Layout<'_>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: &dyn std::fmt::Display| err.to_string();
    let (lanes, caption, chart_px, legend_px) = (
        &layout.lanes,
        &layout.caption,
        layout.chart_px,
        layout.legend_px,
    );
    let t0 = doc.input.first_ts.unwrap_or(0.0);
    let span = (doc.input.last_ts.unwrap_or(t0) - t0).max(1e-3);
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, rest) = root.split_vertically(50);
    let (chart_area, bottom) = rest.split_vertically(chart_px);
    let files = label(&doc.input.files.join(", "), 90);
    top.draw(&Text::new(
        format!(
            "h2keepalive — {files}: {} packets over {:.1} s, {} HTTP/2 connection(s)",
            doc.input.packets,
            span,
            doc.connections.len()
        ),
        (16, 16),
        ("sans-serif", 20).into_font().color(&BLACK),
    ))
    .map_err(|x| e(&x))?;

    let n = lanes.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&chart_area)
        .margin_left(10)
        .margin_right(RIGHT_PX)
        .margin_top(10)
        .x_label_area_size(40)
        .y_label_area_size(LEFT_PX)
        .build_cartesian_2d(0f64..span * 1.02, 0f64..n)
        .map_err(|x| e(&x))?;
    let lane_of = |i: usize| n - i as f64 - 0.5;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("seconds since the capture's first packet")
        .x_label_style(("sans-serif", 14))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(|x| e(&x))?;

    let x = |ts: f64| (ts - t0).clamp(0.0, span);
    for (i, c) in lanes.iter().enumerate() {
        let y = lane_of(i);
        // Silences: transport (no packets) full height, stream (no open stream) lower half.
        for p in &c.idle_periods {
            let (y0, y1, colour) = if p.kind == "transport" {
                (y - 0.4, y + 0.4, TRANSPORT_IDLE)
            } else {
                (y - 0.4, y - 0.05, STREAM_IDLE)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x(p.start), y0), (x(p.end), y1)],
                    colour.filled(),
                )))
                .map_err(|x| e(&x))?;
        }
        // The window in which the estimated timeout fired, on lanes it killed.
        if let (Some(at), Some(idle)) = (c.verdict.at, c.verdict.idle_before_s) {
            if let Some(est) = doc
                .findings
                .iter()
                .filter(|f| f.connections.contains(&c.id))
                .find_map(|f| f.estimate.as_ref())
            {
                let silence_start = at - idle;
                let (a, b) = (
                    x(silence_start + est.timeout_low_s),
                    x(silence_start + est.timeout_high_s),
                );
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, y - 0.45), (b.max(a + span / 2000.0), y + 0.45)],
                        RGBColor(214, 39, 40).mix(0.25).filled(),
                    )))
                    .map_err(|x| e(&x))?;
            }
        }
        chart
            .draw_series(LineSeries::new(
                vec![(x(c.start), y), (x(c.end), y)],
                RGBColor(60, 60, 60).stroke_width(1),
            ))
            .map_err(|x| e(&x))?;
        for p in &c.pings {
            let colour = if !p.ack && p.acked_at.is_none() {
                UNANSWERED
            } else {
                PING
            };
            let dy = if p.from == "client" { 0.18 } else { -0.18 };
            let style = if p.ack {
                colour.stroke_width(1)
            } else {
                colour.filled()
            };
            chart
                .draw_series(std::iter::once(Circle::new((x(p.ts), y + dy), 3, style)))
                .map_err(|x| e(&x))?;
        }
        for &(ts, _) in &c.tcp.retransmission_times {
            chart
                .draw_series(std::iter::once(Cross::new(
                    (x(ts), y + 0.3),
                    3,
                    RETRANS.stroke_width(1),
                )))
                .map_err(|x| e(&x))?;
        }
        for r in &c.rst_streams {
            chart
                .draw_series(std::iter::once(Cross::new(
                    (x(r.ts), y),
                    4,
                    RST_STREAM.stroke_width(2),
                )))
                .map_err(|x| e(&x))?;
        }
        for g in &c.goaways {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (x(g.ts), y),
                    7,
                    GOAWAY.filled(),
                )))
                .map_err(|x| e(&x))?;
        }
        for ts in [c.tcp.fin.client, c.tcp.fin.server].into_iter().flatten() {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x(ts), y - 0.38), (x(ts) + span / 500.0, y + 0.38)],
                    FIN.filled(),
                )))
                .map_err(|x| e(&x))?;
        }
        for r in &c.tcp.rst {
            let colour = if r.suspect_forged {
                FORGED
            } else {
                RGBColor(214, 39, 40)
            };
            chart
                .draw_series(std::iter::once(Cross::new(
                    (x(r.ts), y),
                    7,
                    colour.stroke_width(3),
                )))
                .map_err(|x| e(&x))?;
        }
        // The connection on the left, the verdict on the right, level with the lane (backend
        // coordinates are the root's).
        let (lx, ly) = chart.backend_coord(&(0.0, y));
        let name = label(&format!("#{} {} → {}", c.id, c.client, c.server), 46);
        let style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(name, (lx - 8, ly), style))
            .map_err(|x| e(&x))?;
        let (px, py) = chart.backend_coord(&(span * 1.02, y));
        let mut verdict = c.verdict.cause.to_string();
        if let Some(k) = c.verdict.killed_by {
            verdict.push_str(&format!(" ({k})"));
        }
        if let Some(i) = c.verdict.idle_before_s {
            verdict.push_str(&format!(" {i:.1} s"));
        }
        let style = ("sans-serif", 13)
            .into_font()
            .color(&cause_colour(c.verdict.cause))
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(verdict, (px + 10, py), style))
            .map_err(|x| e(&x))?;
    }

    // Legend.
    let (legend, caption_area) = bottom.split_vertically(legend_px);
    let items: [(&str, RGBColor, u8); 9] = [
        ("PING", PING, 0),
        ("unanswered PING", UNANSWERED, 0),
        ("GOAWAY", GOAWAY, 1),
        ("RST_STREAM", RST_STREAM, 2),
        ("FIN", FIN, 3),
        ("RST", RGBColor(214, 39, 40), 2),
        ("forged RST", FORGED, 2),
        ("retransmission", RETRANS, 2),
        ("estimated timeout", RGBColor(214, 39, 40), 4),
    ];
    let mut lx = 20;
    for (name, colour, shape) in items {
        let p = (lx, 18);
        match shape {
            0 => legend.draw(&Circle::new(p, 4, colour.filled())),
            1 => legend.draw(&TriangleMarker::new(p, 7, colour.filled())),
            2 => legend.draw(&Cross::new(p, 5, colour.stroke_width(2))),
            3 => legend.draw(&Rectangle::new(
                [(p.0 - 1, p.1 - 8), (p.0 + 1, p.1 + 8)],
                colour.filled(),
            )),
            _ => legend.draw(&Rectangle::new(
                [(p.0 - 8, p.1 - 8), (p.0 + 8, p.1 + 8)],
                colour.mix(0.25).filled(),
            )),
        }
        .map_err(|x| e(&x))?;
        legend
            .draw(&Text::new(
                name,
                (lx + 12, 11),
                ("sans-serif", 14).into_font().color(&BLACK),
            ))
            .map_err(|x| e(&x))?;
        lx += 34 + name.len() as i32 * 8;
    }
    for (name, colour) in [
        ("silence (no packets)", TRANSPORT_IDLE),
        ("no open stream", STREAM_IDLE),
    ] {
        legend
            .draw(&Rectangle::new(
                [(lx - 8, 10), (lx + 8, 26)],
                colour.filled(),
            ))
            .map_err(|x| e(&x))?;
        legend
            .draw(&Text::new(
                name,
                (lx + 12, 11),
                ("sans-serif", 14).into_font().color(&BLACK),
            ))
            .map_err(|x| e(&x))?;
        lx += 34 + name.len() as i32 * 8;
    }
    for (i, (colour, line)) in caption.iter().enumerate() {
        caption_area
            .draw(&Text::new(
                line.clone(),
                (16, 8 + i as i32 * 20),
                ("sans-serif", 15).into_font().color(colour),
            ))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
