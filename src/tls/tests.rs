//! The TLS stage end to end on RFC 8448 §3's simple 1-RTT handshake: its records, cut at every
//! byte, and its key log lines, give back its application data.

use super::*;
use crate::http2::Proto;
use crate::tls::crypto::tests::hex;
use std::net::SocketAddr;

const CLIENT_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";

fn client_records() -> Vec<u8> {
    [
        // ClientHello
        "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001",
        // Finished
        "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546",
        // application data 00..31
        "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4",
        // close_notify
        "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3",
    ]
    .iter()
    .flat_map(|h| hex(h))
    .collect()
}

fn server_records() -> Vec<u8> {
    [
        // ServerHello
        "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304",
        // EncryptedExtensions, Certificate, CertificateVerify, Finished
        "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b",
        // NewSessionTicket
        "17030300de3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63c758db289a015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b9fa1b6c0d4a3d03f75e09c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f16e3fc181a77ca475840025db2f0a77f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9605d64f650db4d023e70e952ca49fe5137121c74bc2697687e248746d6df353005f3bce18696129c8153556b3b6c6779b37bf15985684f",
        // application data 00..31
        "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d",
        // close_notify
        "1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9",
    ]
    .iter()
    .flat_map(|h| hex(h))
    .collect()
}

fn keylog(labels: &[&str]) -> SharedKeys {
    let secrets = [
        (
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
        ),
        (
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
        ),
        (
            "CLIENT_TRAFFIC_SECRET_0",
            "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
        ),
        (
            "SERVER_TRAFFIC_SECRET_0",
            "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
        ),
    ];
    let mut k = KeyLog::default();
    for (label, secret) in secrets {
        if labels.contains(&label) {
            k.add(format!("{label} {CLIENT_RANDOM} {secret}\n").as_bytes());
        }
    }
    SharedKeys::new(k.into())
}

fn timeline() -> Timeline {
    let a: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    let b: SocketAddr = "192.0.2.2:443".parse().unwrap();
    Timeline::new(a, b, Ts(0))
}

/// Feeds both directions in pieces of `cut` bytes, in the order of the handshake.
fn run(keys: &SharedKeys, cut: usize) -> (TlsConn, Timeline) {
    let mut tls = TlsConn::new(true);
    let mut tl = timeline();
    let (c, s) = (client_records(), server_records());
    // ClientHello, ServerHello + server flight, client Finished + data, server data, alerts.
    let c_hello = 5 + 0xc4;
    let c_fin = c_hello + 5 + 0x35;
    let s_flight = 5 + 0x5a + 5 + 0x2a2;
    let s_data = s_flight + 5 + 0xde + 5 + 0x43;
    let steps: [(Dir, &[u8]); 6] = [
        (Dir::AtoB, &c[..c_hello]),
        (Dir::BtoA, &s[..s_flight]),
        (Dir::AtoB, &c[c_hello..c.len() - 24]),
        (Dir::BtoA, &s[s_flight..s_data]),
        (Dir::AtoB, &c[c.len() - 24..]),
        (Dir::BtoA, &s[s_data..]),
    ];
    let _ = c_fin;
    let mut t = 0;
    for (dir, bytes) in steps {
        for piece in bytes.chunks(cut) {
            t += 1;
            tls.chunk(
                dir,
                Chunk::Data {
                    ts: Ts(t),
                    bytes: piece,
                },
                &mut tl,
                keys,
            );
        }
    }
    tls.finish(Ts(t), &mut tl);
    (tls, tl)
}

#[test]
fn rfc8448_decrypts_every_record_whatever_the_segmentation() {
    let keys = keylog(&[
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ]);
    for cut in [1, 2, 5, 7, 100, 10_000] {
        let (tls, tl) = run(&keys, cut);
        let info = tl.tls_info.as_ref().unwrap();
        assert_eq!(info.version, Some(0x0304));
        assert_eq!(info.suite, Some(0x1301));
        assert_eq!(info.server_name.as_deref(), Some("server"));
        assert_eq!(info.keys, TlsKeys::Found, "cut {cut}");
        // Client: Finished, data, alert; server: flight, ticket, data, alert.
        assert_eq!(info.decrypted, [3, 4], "cut {cut}");
        assert_eq!(info.failed, [0, 0], "cut {cut}");
        assert_eq!(info.records, [4, 5], "cut {cut}");
        assert_eq!(tl.client_dir, Some(Dir::AtoB));
        // 00..31 is not HTTP/2: the plaintext reached the HTTP/2 stage, which judged it.
        assert_eq!(tls.proto(), Proto::Tls);
        assert!(tls.decrypting.iter().all(|&d| d));
    }
}

#[test]
fn rfc8448_with_only_the_application_secrets() {
    let keys = keylog(&["CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"]);
    let (_, tl) = run(&keys, 50);
    let info = tl.tls_info.as_ref().unwrap();
    assert_eq!(info.keys, TlsKeys::Found);
    // The handshake records cannot be opened; the ticket, data and alerts can.
    assert_eq!(info.decrypted, [2, 3]);
}

#[test]
fn rfc8448_without_keys_is_missing_and_not_http2() {
    let (tls, tl) = run(&SharedKeys::default(), 50);
    let info = tl.tls_info.as_ref().unwrap();
    assert_eq!(info.keys, TlsKeys::Missing);
    assert_eq!(info.decrypted, [0, 0]);
    // No ALPN offered: nothing says HTTP/2.
    assert_eq!(tls.proto(), Proto::Tls);
}

#[test]
fn wrong_keys_fail_and_are_reported() {
    let mut keys = KeyLog::default();
    for label in ["CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"] {
        keys.add(format!("{label} {CLIENT_RANDOM} {}\n", "11".repeat(32)).as_bytes());
    }
    let (_, tl) = run(&SharedKeys::new(keys.into()), 50);
    let info = tl.tls_info.as_ref().unwrap();
    assert_eq!(info.keys, TlsKeys::Failed);
    assert_eq!(info.decrypted, [0, 0]);
    assert!(info.failed[0] > 0 && info.failed[1] > 0);
}

#[test]
fn a_gap_inside_a_record_resyncs_on_the_next() {
    let keys = keylog(&[
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ]);
    let mut tls = TlsConn::new(true);
    let mut tl = timeline();
    let (c, s) = (client_records(), server_records());
    let c_hello = 5 + 0xc4;
    let s_flight = 5 + 0x5a + 5 + 0x2a2;
    let k = &keys;
    tls.chunk(
        Dir::AtoB,
        Chunk::Data {
            ts: Ts(1),
            bytes: &c[..c_hello],
        },
        &mut tl,
        k,
    );
    tls.chunk(
        Dir::BtoA,
        Chunk::Data {
            ts: Ts(2),
            bytes: &s[..s_flight],
        },
        &mut tl,
        k,
    );
    // The client's Finished and half of its data record are lost.
    let lost_to = c_hello + 5 + 0x35 + 30;
    tls.chunk(
        Dir::AtoB,
        Chunk::Gap {
            ts: Ts(3),
            len: (lost_to - c_hello) as u64,
        },
        &mut tl,
        k,
    );
    tls.chunk(
        Dir::AtoB,
        Chunk::Data {
            ts: Ts(3),
            bytes: &c[lost_to..],
        },
        &mut tl,
        k,
    );
    tls.finish(Ts(4), &mut tl);
    let info = tl.tls_info.as_ref().unwrap();
    // The alert after the damaged record is found and opened (sequence number found by trial,
    // under the application keys reached through the missed Finished).
    assert_eq!(info.decrypted[0], 1, "{info:?}");
}

/// Replays input in the layout of the `tls` fuzz target (fuzz/fuzz_targets/streams.rs).
fn replay(data: &[u8], keys: &SharedKeys) -> (TlsConn, Timeline) {
    let (&cfg, mut rest) = data.split_first().unwrap();
    let mut tls = TlsConn::new(cfg & 1 == 1);
    let mut tl = timeline();
    let mut ts = Ts(0);
    while rest.len() >= 3 {
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        let (head, more) = (rest[0], &rest[3..]);
        let dir = if head & 1 == 0 { Dir::AtoB } else { Dir::BtoA };
        ts = ts.add_ns(1_000_000);
        if head & 2 != 0 {
            tls.chunk(
                dir,
                Chunk::Gap {
                    ts,
                    len: len as u64,
                },
                &mut tl,
                keys,
            );
            rest = more;
        } else {
            let (bytes, after) = more.split_at(len.min(more.len()));
            tls.chunk(dir, Chunk::Data { ts, bytes }, &mut tl, keys);
            rest = after;
        }
    }
    tls.finish(ts, &mut tl);
    (tls, tl)
}

/// Found by `cargo fuzz run tls`: after a gap, without keys, the boundary search kept every byte
/// after the record it found in the record buffer, and the next read computed a negative length
/// (a panic in debug builds, an ever-growing buffer in release).
#[test]
fn resync_without_keys_keeps_only_the_record_found() {
    let data = include_bytes!("testdata/fuzz-resync-without-keys.bin");
    let (_, tl) = replay(data, &SharedKeys::default());
    assert!(tl.tls_info.is_some());
}

#[test]
fn a_gap_without_keys_resyncs_on_the_next_records() {
    let (c, s) = (client_records(), server_records());
    let keys = SharedKeys::default();
    let mut tls = TlsConn::new(true);
    let mut tl = timeline();
    let c_hello = 5 + 0xc4;
    let s_flight = 5 + 0x5a + 5 + 0x2a2;
    tls.chunk(
        Dir::AtoB,
        Chunk::Data {
            ts: Ts(1),
            bytes: &c[..c_hello],
        },
        &mut tl,
        &keys,
    );
    tls.chunk(
        Dir::BtoA,
        Chunk::Data {
            ts: Ts(2),
            bytes: &s[..s_flight],
        },
        &mut tl,
        &keys,
    );
    // 30 bytes into the client's Finished are lost; the rest (its tail, the data record and the
    // alert) arrives in one piece.
    let lost_to = c_hello + 30;
    tls.chunk(Dir::AtoB, Chunk::Gap { ts: Ts(3), len: 30 }, &mut tl, &keys);
    tls.chunk(
        Dir::AtoB,
        Chunk::Data {
            ts: Ts(3),
            bytes: &c[lost_to..],
        },
        &mut tl,
        &keys,
    );
    tls.finish(Ts(4), &mut tl);
    let info = tl.tls_info.as_ref().unwrap();
    // ClientHello, then the data record and the alert found after the gap.
    assert_eq!(info.records[0], 3, "{info:?}");
}
