//! Property: no pair of byte streams panics the TLS stage (record layer, hellos, key schedule,
//! decryption, resync after gaps, inference without keys) or the HTTP/2 session it feeds. The key
//! log holds RFC 8448 §3's secrets and the lab's tls13-keyupdate secrets, so seeds built from those
//! traces reach decryption. Input: as the `http2` target (`streams.rs`); bit 0 of the first byte
//! says whether the connection's start is in the capture.
#![no_main]

use h2keepalive::capture::Ts;
use h2keepalive::timeline::Timeline;
use h2keepalive::tls::keylog::{add_shared, SharedKeys};
use h2keepalive::tls::TlsConn;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "streams.rs"]
mod streams;

const KEYLOG: &str = include_str!("../../captures/tls13-keyupdate/keylog.txt");
const RFC8448: &str = "CLIENT_HANDSHAKE_TRAFFIC_SECRET cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21
SERVER_HANDSHAKE_TRAFFIC_SECRET cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38
CLIENT_TRAFFIC_SECRET_0 cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5
SERVER_TRAFFIC_SECRET_0 cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643
";

fn keys() -> &'static SharedKeys {
    static KEYS: OnceLock<SharedKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = SharedKeys::default();
        add_shared(&keys, KEYLOG.as_bytes());
        add_shared(&keys, RFC8448.as_bytes());
        keys
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    let mut tls = TlsConn::new(cfg & 1 == 1);
    let a = "198.18.0.2:40000".parse().unwrap();
    let b = "198.18.1.2:443".parse().unwrap();
    let start = Ts(1_700_000_000_000_000_000);
    let mut tl = Timeline::new(a, b, start);
    let ts = streams::each_chunk(rest, &mut tl, start, |dir, chunk, tl| {
        tls.chunk(dir, chunk, tl, keys);
        true
    });
    tls.finish(ts, &mut tl);
    let _ = tls.proto();
    tl.finish();
});
