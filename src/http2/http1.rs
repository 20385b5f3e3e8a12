//! Just enough HTTP/1.1 to follow the two ways HTTP/2 starts from it: `Upgrade: h2c` answered by
//! `101 Switching Protocols` (RFC 7540 §3.2), and a `CONNECT` tunnel answered by 2xx (how gRPC
//! crosses forward proxies). Only message heads are read.

/// Limit `max_http1_head`: bytes of an HTTP/1.1 request or response head.
pub const MAX_HEAD: usize = 64 * 1024;

/// The client preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub upgrade_h2c: bool,
    pub content_length: u64,
    /// Length of the head, blank line included.
    pub head_len: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub head_len: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    Complete(T),
    /// More bytes needed.
    Partial,
    /// Not an HTTP/1.1 message head.
    Invalid,
}

/// Request-line starts of the known methods, each with its space. Not `PRI`: `PRI * HTTP/2.0` is
/// the HTTP/2 preface, not an HTTP/1.x request.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Whether `bytes` could be the start of an HTTP/1.x request (a known method and a space). Called
/// on every undecided segment: compares in place, allocating nothing.
pub fn looks_like_request(bytes: &[u8]) -> bool {
    METHODS.iter().any(|want| {
        let n = bytes.len().min(want.len());
        bytes.get(..n) == want.get(..n)
    })
}

pub fn looks_like_response(bytes: &[u8]) -> bool {
    let n = bytes.len().min(7);
    bytes[..n] == b"HTTP/1."[..n]
}

fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

fn lines(head: &[u8]) -> impl Iterator<Item = &str> {
    head.split(|&b| b == b'\n')
        .map(|l| std::str::from_utf8(l).unwrap_or("").trim_end_matches('\r'))
}

pub fn parse_request(bytes: &[u8]) -> Parsed<Request> {
    let head_len = match head_end(bytes) {
        Some(n) => n,
        None if bytes.len() > MAX_HEAD => return Parsed::Invalid,
        None => return Parsed::Partial,
    };
    let mut it = lines(&bytes[..head_len]);
    let first = it.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (method, target) = match (method, target, version) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m, t),
        _ => return Parsed::Invalid,
    };
    let mut upgrade_h2c = false;
    let mut content_length = 0;
    for line in it {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade_h2c |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("h2c"));
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        }
    }
    Parsed::Complete(Request {
        method: method.to_string(),
        target: target.to_string(),
        upgrade_h2c,
        content_length,
        head_len,
    })
}

pub fn parse_response(bytes: &[u8]) -> Parsed<Response> {
    let head_len = match head_end(bytes) {
        Some(n) => n,
        None if bytes.len() > MAX_HEAD => return Parsed::Invalid,
        None => return Parsed::Partial,
    };
    let first = lines(&bytes[..head_len]).next().unwrap_or("");
    let mut parts = first.split(' ');
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse::<u16>().ok()),
    ) {
        (Some(v), Some(status)) if v.starts_with("HTTP/1.") => {
            Parsed::Complete(Response { status, head_len })
        }
        _ => Parsed::Invalid,
    }
}

/// How much of `bytes` matches the start of the preface: `Some(true)` whole, `Some(false)` a
/// prefix so far, `None` no.
pub fn preface_match(bytes: &[u8]) -> Option<bool> {
    let n = bytes.len().min(PREFACE.len());
    if bytes[..n] != PREFACE[..n] {
        return None;
    }
    Some(n == PREFACE.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_request() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nPRI";
        match parse_request(req) {
            Parsed::Complete(r) => {
                assert!(r.upgrade_h2c);
                assert_eq!(
                    (r.method.as_str(), r.target.as_str(), r.head_len),
                    ("GET", "/", req.len() - 3)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost"), Parsed::Partial);
        assert_eq!(parse_request(b"\x16\x03\x01\r\n\r\n"), Parsed::Invalid);
    }

    #[test]
    fn responses_and_sniffing() {
        assert_eq!(
            parse_response(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"),
            Parsed::Complete(Response {
                status: 101,
                head_len: 50
            })
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 Connection established\r\n\r\n").clone(),
            Parsed::Complete(Response {
                status: 200,
                head_len: 39
            })
        );
        assert!(looks_like_request(b"CONNECT proxy:443 HTTP/1.1"));
        assert!(looks_like_request(b"GE"));
        assert!(!looks_like_request(b"PRI * HTTP/2.0"));
        assert!(!looks_like_request(b"\x00\x00\x12\x04"));
        assert!(looks_like_response(b"HTTP/1.1 101"));
        assert_eq!(preface_match(b"PRI * HTTP/2.0\r\n"), Some(false));
        assert_eq!(preface_match(PREFACE), Some(true));
        assert_eq!(preface_match(b"PRI * HTTP/1.1"), None);
    }
}
