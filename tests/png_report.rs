//! The PNG timeline as a user gets it: a real PNG (signature, IHDR, IDAT that inflates to the
//! declared size), 1600 px wide, with drawn content, from lab captures.

mod util;

use std::io::Read;

struct Png {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// Decodes enough of a PNG to check it: the chunks, IHDR, and the inflated image data.
fn decode(bytes: &[u8]) -> Png {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let mut pos = 8;
    let (mut width, mut height, mut idat) = (0, 0, Vec::new());
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!((data[8], data[9]), (8, 2), "8-bit RGB");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("IDAT inflates");
    let stride = width as usize * 3;
    assert_eq!(
        raw.len(),
        height as usize * (1 + stride),
        "inflated size matches IHDR"
    );
    Png {
        width,
        height,
        pixels: unfilter(&raw, stride),
    }
}

/// PNG filter reversal (PNG spec §9.2) for 3 bytes per pixel: the RGB pixels, row after row.
fn unfilter(raw: &[u8], stride: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for (r, row) in raw.chunks(1 + stride).enumerate() {
        let (filter, data) = (row[0], &row[1..]);
        let base = out.len();
        for (i, &x) in data.iter().enumerate() {
            let a = if i >= 3 { out[base + i - 3] as i16 } else { 0 };
            let b = if r > 0 {
                out[base + i - stride] as i16
            } else {
                0
            };
            let c = if r > 0 && i >= 3 {
                out[base + i - stride - 3] as i16
            } else {
                0
            };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("bad filter {f}"),
            };
            out.push(x.wrapping_add(pred as u8));
        }
    }
    out
}

#[test]
fn png_timelines_of_lab_captures() {
    let dir = std::env::temp_dir().join(format!("h2keepalive-png-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for scenario in ["nat-reset", "nginx-pings-not-counted", "server-max-age"] {
        let out = dir.join(format!("{scenario}.png"));
        let run = util::run(&[
            "analyze",
            "-q",
            "--png",
            out.to_str().unwrap(),
            &format!("captures/{scenario}/capture.pcap"),
        ]);
        assert!(
            matches!(run.status.code(), Some(0) | Some(1)),
            "{scenario}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let png = decode(&std::fs::read(&out).unwrap());
        assert_eq!(png.width, 1600);
        let doc = util::analyze_json(&[&format!("captures/{scenario}/capture.pcap")]);
        let lanes = doc["connections"].as_array().unwrap().len() as u32;
        assert!(
            png.height >= 200 + lanes * 20,
            "{scenario}: {} px high for {lanes} lanes",
            png.height
        );
        assert_eq!(png.pixels.len(), (png.height * png.width * 3) as usize);
        // Drawn, not blank: the marker colours are there and a good share of pixels is not white.
        let pixels: Vec<&[u8]> = png.pixels.chunks(3).collect();
        let non_white = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
        assert!(
            non_white > pixels.len() / 20,
            "{scenario}: only {non_white} non-white pixels"
        );
        let has = |rgb: [u8; 3]| pixels.iter().any(|p| **p == rgb);
        assert!(has([31, 119, 180]), "{scenario}: no PING marker colour");
        assert!(
            has([215, 215, 215]) || has([198, 219, 239]),
            "{scenario}: no idle shading"
        );
    }
}

#[test]
fn png_to_an_unwritable_path_is_a_clear_error() {
    let run = util::run(&[
        "analyze",
        "-q",
        "--png",
        "/nonexistent/dir/x.png",
        "captures/nat-reset/capture.pcap",
    ]);
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("/nonexistent/dir/x.png") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn svg_when_the_file_name_says_so() {
    let dir = std::env::temp_dir().join(format!("h2keepalive-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("timeline.svg");
    let run = util::run(&[
        "analyze",
        "-q",
        "--png",
        out.to_str().unwrap(),
        "captures/nat-reset/capture.pcap",
    ]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("width=\"1600\""));
    // The verdicts of the lanes (truth: three idle_reset connections) are drawn as text.
    assert_eq!(svg.matches("idle_reset").count(), 3, "{}", svg.len());
}
