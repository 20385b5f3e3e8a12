//! The two handshake messages read in the clear: ClientHello and ServerHello (RFC 8446 §4.1.2,
//! §4.1.3; RFC 5246 §7.4.1). Only what decryption and reporting need: randoms, session id, the
//! chosen version and suite, ALPN (RFC 7301) and the server name (RFC 6066).
use serde::{Deserialize, Serialize};

/// `ServerHello.random` of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    pub alpn: Vec<String>,
    pub server_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    /// 0x0303 for TLS 1.2, 0x0304 for TLS 1.3 (from supported_versions).
    pub version: u16,
    pub suite: u16,
    pub alpn: Option<String>,
    pub retry_request: bool,
}

/// A cursor over a handshake message body; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn random(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }
}

/// Extensions as (type, data) pairs; a malformed list ends early.
fn extensions(r: &mut Reader<'_>) -> Vec<(u16, Vec<u8>)> {
    let Some(list) = r.vec16() else {
        return Vec::new();
    };
    let mut r = Reader(list);
    let mut out = Vec::new();
    while let (Some(t), Some(d)) = (r.u16(), r.vec16()) {
        out.push((t, d.to_vec()));
    }
    out
}

fn alpn_list(data: &[u8]) -> Vec<String> {
    let mut r = Reader(data);
    let Some(list) = r.vec16() else {
        return Vec::new();
    };
    let mut r = Reader(list);
    let mut out = Vec::new();
    while let Some(p) = r.vec8() {
        out.push(String::from_utf8_lossy(p).into_owned());
    }
    out
}

/// The body of a ClientHello (after the 4-byte handshake header).
pub fn client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut r = Reader(body);
    r.u16()?;
    let random = r.random()?;
    let session_id = r.vec8()?.to_vec();
    r.vec16()?;
    r.vec8()?;
    let mut hello = ClientHello {
        random,
        session_id,
        ..Default::default()
    };
    for (t, d) in extensions(&mut r) {
        match t {
            EXT_ALPN => hello.alpn = alpn_list(&d),
            EXT_SERVER_NAME => {
                // server_name_list: name_type(1) = host_name(0), then the name.
                let mut r = Reader(&d);
                if let Some(list) = r.vec16() {
                    let mut r = Reader(list);
                    if r.u8() == Some(0) {
                        if let Some(name) = r.vec16() {
                            hello.server_name = Some(String::from_utf8_lossy(name).into_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

/// The body of a ServerHello (after the 4-byte handshake header).
pub fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader(body);
    let version = r.u16()?;
    let random = r.random()?;
    let session_id = r.vec8()?.to_vec();
    let suite = r.u16()?;
    r.u8()?;
    let mut hello = ServerHello {
        random,
        session_id,
        version,
        suite,
        alpn: None,
        retry_request: random == HRR_RANDOM,
    };
    for (t, d) in extensions(&mut r) {
        match t {
            EXT_SUPPORTED_VERSIONS if d.len() == 2 => {
                hello.version = u16::from_be_bytes([d[0], d[1]]);
            }
            EXT_ALPN => hello.alpn = alpn_list(&d).into_iter().next(),
            _ => {}
        }
    }
    Some(hello)
}

/// The ALPN choice in a TLS 1.3 EncryptedExtensions body.
pub fn encrypted_extensions_alpn(body: &[u8]) -> Option<String> {
    let mut r = Reader(body);
    extensions(&mut r)
        .into_iter()
        .find(|(t, _)| *t == EXT_ALPN)
        .and_then(|(_, d)| alpn_list(&d).into_iter().next())
}

/// Whether an ALPN protocol id means HTTP/2: `h2`, or a draft's `h2-NN`.
pub fn is_h2(alpn: &str) -> bool {
    alpn == "h2"
        || alpn
            .strip_prefix("h2-")
            .is_some_and(|d| d.parse::<u8>().is_ok())
}

pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0304 => "1.3",
        0x0303 => "1.2",
        0x0302 => "1.1",
        0x0301 => "1.0",
        0x0300 => "SSL 3.0",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::crypto::tests::hex;

    /// RFC 8448 §3's ClientHello and ServerHello.
    #[test]
    fn rfc8448_hellos() {
        let ch = hex("010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001");
        let c = client_hello(&ch[4..]).unwrap();
        assert_eq!(
            c.random.to_vec(),
            hex("cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7")
        );
        assert_eq!(c.server_name.as_deref(), Some("server"));
        assert!(c.alpn.is_empty());
        let sh = hex("020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304");
        let s = server_hello(&sh[4..]).unwrap();
        assert_eq!(
            (s.version, s.suite, s.retry_request),
            (0x0304, 0x1301, false)
        );
    }

    #[test]
    fn truncated_hellos_are_none() {
        let sh = hex("020000560303a6af06a4121860dc5e6e60249cd3");
        assert_eq!(server_hello(&sh[4..]), None);
        assert_eq!(client_hello(&[]), None);
    }

    #[test]
    fn h2_alpn_ids() {
        assert!(is_h2("h2") && is_h2("h2-16") && is_h2("h2-14"));
        assert!(!is_h2("http/1.1") && !is_h2("h2c") && !is_h2("h3"));
    }
}
