//! The HTML report (`--html`) as a reader gets it: one self-contained file whose findings match the
//! JSON document, whose timeline Chromium draws with one lane per connection and one marker per
//! PING, ACK, GOAWAY, FIN, RST and retransmission, without a console message, and in which strings
//! from a hostile capture stay text. Ten thousand connections are paged and stay a few MB.
//!
//! The browser checks need Debian's `chromium` (`apt-get install chromium`). Without it they print a
//! notice and pass, unless `CI` is set, where a missing browser fails them.

mod util;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOSTILE: &str = "tests/fixtures/hostile/hostile.pcap";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("h2keepalive-html-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `analyze --format json --html FILE`: the JSON document and the HTML.
fn report(captures: &[&str], html: &Path) -> (Value, String) {
    let mut args = vec![
        "analyze",
        "-q",
        "--format",
        "json",
        "--html",
        html.to_str().unwrap(),
    ];
    args.extend_from_slice(captures);
    let out = util::run(&args);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{captures:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = serde_json::from_slice(&out.stdout).expect("JSON document");
    (
        doc,
        std::fs::read_to_string(html).expect("HTML report written"),
    )
}

/// The data block: it must be JSON that ends where its element ends.
fn blob(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = html.find(open).expect("data block") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    let text = &html[start..end];
    for c in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
        assert!(!text.contains(c), "raw {c:?} in the data block");
    }
    serde_json::from_str(text).expect("the data block is JSON up to its </script>")
}

/// Nothing in the page can make a request: no URL, no external resource, and a CSP that forbids
/// them anyway.
fn assert_self_contained(html: &str) {
    let lower = html.to_lowercase();
    for bad in [
        "http://",
        "https://",
        "ftp://",
        "src=",
        "srcset",
        "<link",
        "@import",
        "<iframe",
        "<object",
        "<embed",
        "<img",
        "<base",
        "<meta http-equiv=\"refresh",
    ] {
        assert!(!lower.contains(bad), "the report contains {bad:?}");
    }
    for (i, _) in lower.match_indices("url(") {
        assert!(
            lower[i..].starts_with("url(#"),
            "url() that is not a fragment: {}",
            &html[i..(i + 40).min(html.len())]
        );
    }
    for (i, _) in lower.match_indices("href=\"") {
        assert!(
            lower[i + 6..].starts_with('#'),
            "link out of the page: {}",
            &html[i..(i + 60).min(html.len())]
        );
    }
    assert!(
        lower.contains("content=\"default-src 'none';"),
        "Content-Security-Policy missing"
    );
    assert_eq!(
        lower.matches("<script").count(),
        2,
        "the data and the code only"
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().expect("array")
}

#[test]
fn lab_reports_are_self_contained_and_show_the_findings() {
    let dir = temp_dir("lab");
    for capture in [
        "captures/nat-reset/capture.pcap",
        "captures/nginx-pings-not-counted/capture.pcap",
        "captures/too-many-pings-python/capture.pcap",
        "captures/nat-drop/capture.pcap",
    ] {
        let path = dir.join("report.html");
        let (doc, html) = report(&[capture], &path);
        assert_self_contained(&html);
        assert!(
            html.contains(&format!("<code>{}</code>", esc(capture))),
            "{capture}: file name"
        );
        let findings = arr(&doc["findings"]);
        assert!(
            !findings.is_empty(),
            "{capture}: the lab capture has findings"
        );
        for f in findings {
            let summary = esc(f["summary"].as_str().unwrap());
            assert!(html.contains(&summary), "{capture}: finding {summary}");
            for e in arr(&f["evidence"]) {
                assert!(
                    html.contains(&esc(e.as_str().unwrap())),
                    "{capture}: evidence {e}"
                );
            }
            assert!(html.contains(&esc(f["recommendation"].as_str().unwrap())));
            assert!(html.contains(&format!(
                "<span class=\"sev\">{}</span>",
                f["severity"].as_str().unwrap().to_uppercase()
            )));
            if let Some(lo) = f["estimate"]["timeout_low_s"].as_f64() {
                let hi = f["estimate"]["timeout_high_s"].as_f64().unwrap();
                let secs = |x: f64| {
                    if x >= 100.0 {
                        format!("{x:.0} s")
                    } else {
                        format!("{x:.1} s")
                    }
                };
                assert!(
                    html.contains(&format!(
                        "Estimated timeout: between <b>{}</b> and <b>{}</b>",
                        secs(lo),
                        secs(hi)
                    )),
                    "{capture}: estimate {lo}..{hi}"
                );
            }
        }
        // The data block holds every connection once, with the document's verdicts.
        let data = blob(&html);
        let conns = arr(&doc["connections"]);
        assert_eq!(data["n"].as_u64(), Some(conns.len() as u64), "{capture}");
        let strings = arr(&data["S"]);
        let causes = arr(&data["cols"]["v"]);
        for (i, c) in conns.iter().enumerate() {
            let cause = &strings[causes[i].as_u64().unwrap() as usize];
            assert_eq!(cause, &c["verdict"]["cause"], "{capture}: #{i}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_strings_are_escaped_in_the_file() {
    let dir = temp_dir("hostile-file");
    // The file name is from the user, but a ticket's attachment name can be anything too.
    let name = dir.join("\"><img src=x onerror=alert(8)>.pcap");
    std::fs::copy(util::root().join(HOSTILE), &name).unwrap();
    let (doc, html) = report(&[name.to_str().unwrap()], &dir.join("report.html"));

    // The capture's strings are decoded (so they do reach the report) ...
    let c = &doc["connections"][0];
    let path = c["streams"][0]["method"].as_str().unwrap();
    assert!(
        path.contains("</script><script>alert(\"path\")</script>"),
        "{path}"
    );
    assert!(path.contains("\u{2028}\u{2029}"));
    let message = c["streams"][0]["grpc_message"].as_str().unwrap();
    assert!(
        message.contains("<img src=x onerror=alert(5)>"),
        "{message}"
    );
    let debug = c["goaways"][0]["debug_data"].as_str().unwrap();
    assert!(
        debug.starts_with("too_many_pings</script><script>"),
        "{debug}"
    );
    assert_eq!(c["verdict"]["cause"], "too_many_pings");

    // ... and never as markup: no raw hostile fragment anywhere in the file.
    for raw in [
        "</script><script>alert",
        "<img src=x",
        "<svg onload",
        "\"><img",
        "<!--",
    ] {
        assert!(!html.contains(raw), "raw {raw:?} in the HTML");
    }
    assert_eq!(html.to_lowercase().matches("<script").count(), 2);
    // Escaped in the static part: file name, finding evidence quoting the GOAWAY debug data.
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(8)&gt;.pcap"));
    assert!(html.contains("too_many_pings&lt;/script&gt;&lt;script&gt;alert(&quot;goaway&quot;)"));
    // The data block decodes back to the very strings of the document.
    let data = blob(&html);
    let strings: Vec<&str> = arr(&data["S"]).iter().filter_map(|s| s.as_str()).collect();
    assert!(strings.contains(&path), "path in the string table");
    let goaways = &data["cols"]["g"];
    let g = if goaways.is_array() {
        &goaways[0]
    } else {
        &goaways["0"]
    };
    assert_eq!(g[0][4].as_str(), Some(debug));
    assert!(data.to_string().contains("onerror=alert(5)"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------- Chromium

/// Debian's chromium, or None (with a notice) where it is missing outside CI.
fn chromium() -> Option<PathBuf> {
    let found = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "CI is set but chromium is missing: apt-get install chromium"
        );
        eprintln!("notice: chromium not found; the browser checks of the HTML report are skipped");
    }
    found
}

struct Page {
    dom: String,
    /// Chromium's log: console messages (errors, CSP violations) appear as `:CONSOLE` lines.
    log: String,
}

impl Page {
    fn console(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .collect()
    }

    /// The drawn timeline: the lanes' SVG element (the legend's swatches use the same classes).
    fn lanes(&self) -> &str {
        let start = self.dom.find("<svg id=\"lanes\"").expect("lanes drawn");
        let end = start + self.dom[start..].find("</svg>").unwrap();
        &self.dom[start..end]
    }

    fn table(&self) -> &str {
        let start = self.dom.find("<tbody>").expect("table");
        let end = start + self.dom[start..].find("</tbody>").unwrap();
        &self.dom[start..end]
    }

    fn assert_ran_cleanly(&self, what: &str) {
        assert!(
            self.dom.contains("data-ready=\"1\""),
            "{what}: the script did not finish"
        );
        assert!(
            !self.dom.contains("class=\"error\""),
            "{what}: the page reported an error"
        );
        assert!(
            self.console().is_empty(),
            "{what}: console: {:#?}",
            self.console()
        );
    }
}

/// Opens `file` (with `#fragment`) in headless Chromium and returns the DOM after the script ran.
fn open(browser: &Path, file: &Path, fragment: &str) -> Page {
    let profile = temp_dir(&format!(
        "profile-{}",
        file.file_stem()
            .unwrap()
            .to_string_lossy()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    ));
    let url = format!(
        "file://{}{fragment}",
        file.canonicalize().unwrap().display()
    );
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1600,1000",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish with {url} within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = Page {
        dom: out.join().unwrap().expect("chromium's DOM"),
        log: err.join().unwrap().unwrap_or_default(),
    };
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        page.dom.contains("</html>"),
        "no DOM from chromium for {url}:\n{}",
        page.log
    );
    page
}

/// What the timeline must show for a document, counted as the page draws it.
fn expected_marks(doc: &Value) -> Vec<(&'static str, usize)> {
    let conns = arr(&doc["connections"]);
    let sum = |f: &dyn Fn(&Value) -> usize| conns.iter().map(f).sum::<usize>();
    let pings = |c: &Value, pred: &dyn Fn(&Value) -> bool| {
        arr(&c["pings"]).iter().filter(|p| pred(p)).count()
    };
    let mut timeouts = 0;
    for f in arr(&doc["findings"]) {
        if f["estimate"].is_object() {
            for id in arr(&f["connections"]) {
                let v = &conns[id.as_u64().unwrap() as usize]["verdict"];
                if v["idle_before_s"].is_number() && v["at"].is_number() {
                    timeouts += 1;
                }
            }
        }
    }
    let idle = |kind: &'static str| {
        move |c: &Value| {
            arr(&c["idle_periods"])
                .iter()
                .filter(|i| i["kind"] == kind)
                .count()
        }
    };
    vec![
        ("class=\"lane\"", conns.len()),
        ("class=\"m-verdict\"", conns.len()),
        (
            "class=\"m-ping\"",
            sum(&|c| pings(c, &|p| p["ack"] == false && p["acked_at"].is_number())),
        ),
        (
            "class=\"m-ping lost\"",
            sum(&|c| pings(c, &|p| p["ack"] == false && p["acked_at"].is_null())),
        ),
        (
            "class=\"m-ack\"",
            sum(&|c| pings(c, &|p| p["ack"] == true || p["acked_at"].is_number())),
        ),
        ("class=\"m-goaway\"", sum(&|c| arr(&c["goaways"]).len())),
        (
            "class=\"m-rststream\"",
            sum(&|c| arr(&c["rst_streams"]).len()),
        ),
        (
            "class=\"m-fin\"",
            sum(&|c| {
                usize::from(c["tcp"]["fin"]["client"].is_number())
                    + usize::from(c["tcp"]["fin"]["server"].is_number())
            }),
        ),
        (
            "class=\"m-rst\"",
            sum(&|c| {
                arr(&c["tcp"]["rst"])
                    .iter()
                    .filter(|r| r["suspect_forged"] == false)
                    .count()
            }),
        ),
        (
            "class=\"m-rst forged\"",
            sum(&|c| {
                arr(&c["tcp"]["rst"])
                    .iter()
                    .filter(|r| r["suspect_forged"] == true)
                    .count()
            }),
        ),
        (
            "class=\"m-retx\"",
            sum(&|c| arr(&c["tcp"]["retransmission_times"]).len()),
        ),
        ("class=\"m-idle transport\"", sum(&idle("transport"))),
        ("class=\"m-idle stream\"", sum(&idle("stream"))),
        ("class=\"m-timeout\"", timeouts),
    ]
}

#[test]
fn chromium_draws_a_lane_per_connection_and_a_marker_per_event() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("chromium-lab");
    let mut seen = std::collections::BTreeMap::new();
    for (n, capture) in [
        "captures/nat-reset/capture.pcap",
        "captures/nginx-pings-not-counted/capture.pcap",
        "captures/too-many-pings-python/capture.pcap",
        "captures/nat-drop/capture.pcap",
        "captures/server-crash/capture.pcap",
    ]
    .iter()
    .enumerate()
    {
        let file = dir.join(format!("lab{n}.html"));
        let (doc, _) = report(&[capture], &file);
        let page = open(&browser, &file, "");
        page.assert_ran_cleanly(capture);
        let lanes = page.lanes();
        for (mark, want) in expected_marks(&doc) {
            assert_eq!(lanes.matches(mark).count(), want, "{capture}: {mark}");
            *seen.entry(mark).or_insert(0) += want;
        }
        let conns = arr(&doc["connections"]).len();
        assert_eq!(
            page.table().matches(" data-conn=\"").count(),
            conns,
            "{capture}: table rows"
        );
        // Every verdict is written at the end of its lane.
        for c in arr(&doc["connections"]) {
            let cause = c["verdict"]["cause"].as_str().unwrap();
            assert!(lanes.contains(&format!(">{cause}<")), "{capture}: {cause}");
        }
        // The details panel opens on the first connection of the most severe finding.
        let findings = arr(&doc["findings"]);
        let first = ["error", "warning"]
            .iter()
            .find_map(|sev| findings.iter().find(|f| f["severity"] == *sev))
            .and_then(|f| f["connections"][0].as_u64());
        if let Some(id) = first {
            let c = &doc["connections"][id as usize];
            let title = format!(
                "#{id} {} → {}",
                c["client"].as_str().unwrap(),
                c["server"].as_str().unwrap()
            );
            assert!(page.dom.contains(&title), "{capture}: details of {title}");
        }
    }
    // The captures together exercise every kind of marker.
    for (mark, n) in seen {
        assert!(
            n > 0,
            "no {mark} in any lab capture: the test lost its reach"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chromium_shows_hostile_strings_as_text() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("chromium-hostile");
    let name = dir.join("\"><img src=x onerror=alert(8)>.pcap");
    std::fs::copy(util::root().join(HOSTILE), &name).unwrap();
    let file = dir.join("hostile.html");
    let (doc, _) = report(&[name.to_str().unwrap()], &file);
    for fragment in ["", "#conn=0"] {
        let page = open(&browser, &file, fragment);
        page.assert_ran_cleanly("hostile capture");
        let dom = &page.dom;
        // Nothing injected: our two scripts, no image, no handler attribute, no javascript: link.
        assert_eq!(dom.matches("<script").count(), 2, "scripts in the DOM");
        for bad in [
            "<img",
            "<iframe",
            "onerror=\"",
            "onload=\"",
            "href=\"javascript",
            "<svg onload",
        ] {
            assert!(!dom.contains(bad), "{bad:?} in the DOM");
        }
        // The strings are there, as text (the serialiser escapes <, > and & of text nodes).
        let text = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let c = &doc["connections"][0];
        for s in [
            c["streams"][0]["method"].as_str().unwrap(),
            c["streams"][0]["grpc_message"].as_str().unwrap(),
            c["goaways"][0]["debug_data"].as_str().unwrap(),
            name.to_str().unwrap(),
        ] {
            assert!(dom.contains(&text(s)), "not shown as text: {s:?}");
        }
        assert!(dom.contains("javascript:alert(3)&amp;amp;\u{2028}\u{2029}&lt;!--"));
        assert_eq!(page.lanes().matches("class=\"lane\"").count(), 1);
        assert_eq!(page.lanes().matches("class=\"m-goaway\"").count(), 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// nat-reset's nine connections copied with a new client address per copy, each copy 3 ms after
/// the one before: 10 008 connections to one server, as from a fleet of clients behind the same
/// NAT (every timestamp, hence every evidence string, differs as it would in a real capture).
fn fleet_capture(path: &Path, copies: u32) {
    let pcap = std::fs::read(util::root().join("captures/nat-reset/capture.pcap")).unwrap();
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    assert_eq!(
        u32::from_le_bytes(pcap[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let client = [198, 18, 0, 2];
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut records = Vec::new();
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let caplen = word(&pcap, pos + 8) as usize;
        let micros = u64::from(word(&pcap, pos)) * 1_000_000 + u64::from(word(&pcap, pos + 4));
        let (len, data) = (word(&pcap, pos + 12), &pcap[pos + 16..pos + 16 + caplen]);
        pos += 16 + caplen;
        for k in 0..copies {
            let mut d = data.to_vec();
            if d.len() >= 34 && d[12..14] == [0x08, 0x00] {
                let addr = [10, (k >> 16) as u8, (k >> 8) as u8, k as u8];
                for at in [26, 30] {
                    if d[at..at + 4] == client {
                        d[at..at + 4].copy_from_slice(&addr);
                    }
                }
                // IPv4 header checksum; TCP checksums are not checked by h2keepalive.
                d[24..26].copy_from_slice(&[0, 0]);
                let sum = d[14..34]
                    .chunks(2)
                    .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                    .sum::<u32>();
                let sum = (sum & 0xffff) + (sum >> 16);
                let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
                d[24..26].copy_from_slice(&sum.to_be_bytes());
            }
            records.push((micros + u64::from(k) * 3_000, len, d));
        }
    }
    records.sort_by_key(|r| r.0);
    let mut out = pcap[..24].to_vec();
    for (micros, len, d) in records {
        for x in [
            (micros / 1_000_000) as u32,
            (micros % 1_000_000) as u32,
            d.len() as u32,
            len,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&d);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn ten_thousand_connections_are_paged_and_stay_small() {
    let dir = temp_dir("fleet");
    let capture = dir.join("fleet.pcap");
    fleet_capture(&capture, 1112);
    let file = dir.join("fleet.html");
    let out = util::run(&[
        "analyze",
        "-q",
        "--html",
        file.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert_self_contained(&html);
    let data = blob(&html);
    assert_eq!(data["n"].as_u64(), Some(10_008));
    eprintln!("HTML report of 10 008 connections: {} bytes", html.len());
    assert!(
        html.len() < 4_500_000,
        "{} bytes for 10 008 connections",
        html.len()
    );
    let _ = std::fs::remove_file(&capture);

    let Some(browser) = chromium() else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    let page = open(&browser, &file, "");
    page.assert_ran_cleanly("10 008 connections");
    assert_eq!(
        page.lanes().matches("class=\"lane\"").count(),
        100,
        "one page of lanes"
    );
    assert_eq!(
        page.table().matches(" data-conn=\"").count(),
        100,
        "one page of rows"
    );
    assert!(page.dom.contains("page 1 of 101"), "pager");
    // A connection far down the list opens on its own page, zoomed onto it.
    let page = open(&browser, &file, "#conn=9000");
    page.assert_ran_cleanly("#conn=9000");
    assert!(page.lanes().contains("data-conn=\"9000\""));
    assert!(page.dom.contains("page 91 of 101"), "pager at #9000");
    let _ = std::fs::remove_dir_all(&dir);
}
