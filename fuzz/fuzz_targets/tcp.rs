//! Property: no stream of packets panics link/IP/TCP decoding, the flow table or TCP reassembly (nor
//! the HTTP/2 stages they feed). The input is a list of records, each either
//! - a raw packet (`0x80 | link`, time step, u16 length, bytes) handed to `wire::decode` through the
//!   analyzer as captured, or
//! - a compact TCP segment (`conn | dir << 3 | flags-present << 4`, time step, TCP flags, u32
//!   sequence offset, u32 ack offset, u8 payload length, payload) built into IPv4/TCP bytes here,
//!   so that the fuzzer reaches reassembly's overlap, wrap-around, out-of-order and limit paths
//!   without having to invent valid headers first.
//! Sequence numbers are offsets from a fixed initial number per connection and direction, near the
//! wrap of the sequence space. Time steps may go backwards.
#![no_main]

use h2keepalive::analyzer::{Analyzer, Config};
use h2keepalive::capture::{LinkType, Packet, Ts};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Null,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Other(147),
];

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
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
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// IPv4 + TCP (20-byte headers, no options) from `198.18.0.<conn>:40000+conn` to `198.18.1.1:50051`.
fn segment(conn: u8, dir: u8, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let client = ([198, 18, 0, 2 + conn], 40000 + conn as u16);
    let server = ([198, 18, 1, 1], 50051u16);
    let (src, dst) = if dir == 0 {
        (client, server)
    } else {
        (server, client)
    };
    let total = (40 + payload.len()) as u16;
    let mut v = vec![
        0x45,
        0,
        0,
        0,
        0,
        1,
        0x40,
        0,
        if dir == 0 { 64 } else { 61 },
        6,
        0,
        0,
    ];
    v[2..4].copy_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&src.0);
    v.extend_from_slice(&dst.0);
    v.extend_from_slice(&src.1.to_be_bytes());
    v.extend_from_slice(&dst.1.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(cfg) = input.u8() else { return };
    let decode_as = if cfg & 1 == 1 { vec![50051] } else { vec![] };
    let mut analyzer = Analyzer::new(Config { decode_as, ..Default::default() });
    let mut ts = Ts(1_700_000_000_000_000_000);
    while let Some(op) = input.u8() {
        let Some(step) = input.u8() else { break };
        // Mostly forward in time; a step of 0xff goes back a second.
        ts = if step == 0xff {
            ts.add_ns(-1_000_000_000)
        } else {
            ts.add_ns(step as i64 * 10_000_000)
        };
        if op & 0x80 != 0 {
            let link = LINKS[(op & 7) as usize];
            let Some(len) = input.u16() else { break };
            let Some(bytes) = input.take(len as usize) else {
                break;
            };
            analyzer.packet(&Packet {
                ts,
                link,
                data: bytes,
                orig_len: bytes.len() as u32,
            });
        } else {
            let (conn, dir) = (op & 7, (op >> 3) & 1);
            let Some(flags) = input.u8() else { break };
            let (Some(seq), Some(ack)) = (input.u32(), input.u32()) else {
                break;
            };
            let Some(len) = input.u8() else { break };
            let Some(payload) = input.take(len as usize) else {
                break;
            };
            let isn = |d: u8| {
                0xffff_f000u32
                    .wrapping_add((conn as u32) << 8)
                    .wrapping_add(d as u32 * 0x1000_0000)
            };
            let bytes = segment(
                conn,
                dir,
                flags,
                isn(dir).wrapping_add(seq),
                isn(1 - dir).wrapping_add(ack),
                payload,
            );
            // Bit 4: the snapshot length cut this packet's payload in half.
            let keep = if op & 0x10 != 0 {
                40 + payload.len() / 2
            } else {
                bytes.len()
            };
            let cut = &bytes[..keep];
            analyzer.packet(&Packet {
                ts,
                link: LinkType::Raw,
                data: cut,
                orig_len: bytes.len() as u32,
            });
        }
    }
    let (timelines, _stats) = analyzer.finish();
    let _ =
        h2keepalive::diagnose::diagnose(&timelines, &h2keepalive::diagnose::Catalogue::builtin());
});
