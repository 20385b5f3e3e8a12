//! Wire stage: link, IP and TCP views over a packet's borrowed bytes. Link headers that etherparse
//! does not know (BSD loopback, Linux SLL2) are stripped here; IP with its extension headers and
//! TCP are sliced by etherparse's lax parser, so that a packet cut by the snapshot length still
//! yields its TCP header and the bytes that were captured, with the length the IP header declared.
//! The common case, TCP in IPv4 or in IPv6 without extension headers, captured whole, is read
//! directly, and must read as etherparse reads it (`fast_path_agrees_with_etherparse`).

use crate::capture::{LinkType, Packet};
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP flags we act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A TCP segment as seen on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    pub window: u16,
    /// IPv4 TTL or IPv6 hop limit: who really sent a RST shows here.
    pub ttl: u8,
    /// IPv4 identification (None for IPv6).
    pub ip_id: Option<u16>,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// The payload length the IP header declares; more than `payload.len()` when the snapshot
    /// length cut the packet.
    pub payload_len: u32,
}

/// Why a packet yielded no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not TCP over IP (ARP, UDP, ICMP, ...): counted, not an error.
    NotTcp,
    /// A link type we do not decode.
    UnsupportedLink,
    /// Headers cut short or impossible.
    Malformed,
    /// A TCP segment inside an IP fragment (reassembly of IP fragments is not done).
    Fragment,
}

pub fn decode<'a>(packet: &Packet<'a>) -> Result<Segment<'a>, Skip> {
    let fast = match packet.link {
        LinkType::Ethernet => match packet.data.get(12..14) {
            Some([0x08, 0x00]) => packet.data.get(14..).and_then(plain_ipv4_tcp),
            Some([0x86, 0xdd]) => packet.data.get(14..).and_then(plain_ipv6_tcp),
            _ => None,
        },
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => plain_ip_tcp(packet.data),
        _ => None,
    };
    match fast {
        Some(seg) => Ok(seg),
        None => decode_sliced(packet),
    }
}

/// Raw IP: the version is the first nibble, whatever the link type says (as etherparse reads it).
fn plain_ip_tcp(ip: &[u8]) -> Option<Segment<'_>> {
    match ip.first()? >> 4 {
        4 => plain_ipv4_tcp(ip),
        6 => plain_ipv6_tcp(ip),
        _ => None,
    }
}

/// The common case read directly: IPv4 that is no fragment and whose total length fits in the
/// bytes captured, carrying TCP with a whole header. `None` for anything else, which etherparse
/// then slices (and `fast_path_agrees_with_etherparse` checks that both read the same). Slicing
/// with etherparse was ~700 instructions a packet, 7% of `analyze` (callgrind).
fn plain_ipv4_tcp(ip: &[u8]) -> Option<Segment<'_>> {
    let h: &[u8; 20] = ip.get(..20)?.try_into().ok()?;
    let header_len = (h[0] & 0x0f) as usize * 4;
    let total_len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff;
    if h[0] >> 4 != 4 || header_len < 20 || fragment != 0 || h[9] != 6 || total_len > ip.len() {
        return None;
    }
    let addr = |i: usize| IpAddr::V4(Ipv4Addr::new(h[i], h[i + 1], h[i + 2], h[i + 3]));
    let ip_id = Some(u16::from_be_bytes([h[4], h[5]]));
    plain_tcp(
        ip.get(header_len..total_len)?,
        addr(12),
        addr(16),
        h[8],
        ip_id,
    )
}

/// The same for IPv6 without extension headers (next header TCP), whose payload length fits in
/// the bytes captured: a few percent of the bench capture's packets, which etherparse sliced
/// at ~650 instructions each, copies of its views included (callgrind).
fn plain_ipv6_tcp(ip: &[u8]) -> Option<Segment<'_>> {
    let h: &[u8; 40] = ip.get(..40)?.try_into().ok()?;
    let payload_len = u16::from_be_bytes([h[4], h[5]]) as usize;
    // A payload length of 0 is a jumbogram's (or a segmentation offload's): etherparse decides.
    if h[0] >> 4 != 6 || h[6] != 6 || payload_len == 0 {
        return None;
    }
    let addr = |i: usize| {
        let b: [u8; 16] = h[i..i + 16].try_into().unwrap_or_default();
        IpAddr::V6(Ipv6Addr::from(b))
    };
    plain_tcp(ip.get(40..40 + payload_len)?, addr(8), addr(24), h[7], None)
}

/// A TCP segment with a whole header in `tcp`, the IP datagram's payload (all of it captured).
#[inline]
fn plain_tcp(
    tcp: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ip_id: Option<u16>,
) -> Option<Segment<'_>> {
    let t: &[u8; 20] = tcp.get(..20)?.try_into().ok()?;
    if t[12] >> 4 < 5 {
        return None;
    }
    let payload = tcp.get((t[12] >> 4) as usize * 4..)?;
    let word = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    let port = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
    Some(Segment {
        src: SocketAddr::new(src, port(0)),
        dst: SocketAddr::new(dst, port(2)),
        seq: word(4),
        ack: word(8),
        flags: Flags {
            syn: t[13] & 0x02 != 0,
            ack: t[13] & 0x10 != 0,
            fin: t[13] & 0x01 != 0,
            rst: t[13] & 0x04 != 0,
        },
        window: port(14),
        ttl,
        ip_id,
        payload,
        payload_len: payload.len() as u32,
    })
}

/// Everything but the common case, out of line: inlined, its frame was set up for every packet.
#[inline(never)]
fn decode_sliced<'a>(packet: &Packet<'a>) -> Result<Segment<'a>, Skip> {
    let data = packet.data;
    let sliced = match packet.link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {
            LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?
        }
        LinkType::Null => {
            let family = data.get(..4).ok_or(Skip::Malformed)?;
            // The family is in the capturing host's byte order: accept either.
            let le = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
            let be = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
            let ip = |f: u32| f == 2 || f == 24 || f == 28 || f == 30;
            if !ip(le) && !ip(be) {
                return Err(Skip::NotTcp);
            }
            LaxSlicedPacket::from_ip(&data[4..]).map_err(|_| Skip::Malformed)?
        }
        LinkType::LinuxSll => {
            // 16 bytes: packet type, ARPHRD, address length, 8 address bytes, protocol.
            let proto = data.get(14..16).ok_or(Skip::Malformed)?;
            let rest = data.get(16..).ok_or(Skip::Malformed)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                rest,
            )
        }
        LinkType::LinuxSll2 => {
            // 20 bytes: protocol first, then reserved, interface index, ARPHRD, packet type,
            // address length and 8 address bytes.
            let proto = data.get(..2).ok_or(Skip::Malformed)?;
            let rest = data.get(20..).ok_or(Skip::Malformed)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                rest,
            )
        }
        LinkType::Other(_) => return Err(Skip::UnsupportedLink),
    };
    segment(&sliced)
}

fn segment<'a>(sliced: &LaxSlicedPacket<'a>) -> Result<Segment<'a>, Skip> {
    let (src_ip, dst_ip, ttl, ip_id, ip_payload, declared_end) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let start = h.slice().as_ptr() as usize;
            let end = start + h.total_len() as usize;
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
                Some(h.identification()),
                v4.payload(),
                end,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let start = h.slice().as_ptr() as usize;
            let end = start + 40 + h.payload_length() as usize;
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
                None,
                v6.payload(),
                end,
            )
        }
        Some(LaxNetSlice::Arp(_)) | None => {
            return Err(if sliced.stop_err.is_some() {
                Skip::Malformed
            } else {
                Skip::NotTcp
            })
        }
    };
    if ip_payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    let tcp = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        _ => return Err(Skip::Malformed),
    };
    let payload = tcp.payload();
    let present = payload.len() as u32;
    // A payload cut by the snapshot length is `incomplete`: the IP header's length then says how
    // many bytes the segment carried. Otherwise what is there is all of it (this also covers TSO
    // captures whose IPv4 total length is 0).
    let payload_len = if ip_payload.incomplete {
        let payload_start = payload.as_ptr() as usize;
        (declared_end.saturating_sub(payload_start) as u32).max(present)
    } else {
        present
    };
    Ok(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        window: tcp.window_size(),
        ttl,
        ip_id,
        payload,
        payload_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Ts;

    /// IPv4 + TCP, 20-byte headers each, payload `p`, ports 40000 → 50051.
    fn ipv4_tcp(p: &[u8], declared_payload: usize) -> Vec<u8> {
        let total = (40 + declared_payload) as u16;
        let mut v = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 61, 6, 0, 0, 198, 18, 0, 2, 198, 18, 1, 2,
        ];
        v[2..4].copy_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&40000u16.to_be_bytes());
        v.extend_from_slice(&50051u16.to_be_bytes());
        v.extend_from_slice(&1000u32.to_be_bytes());
        v.extend_from_slice(&2000u32.to_be_bytes());
        v.extend_from_slice(&[0x50, 0x18, 0x01, 0x00, 0, 0, 0, 0]);
        v.extend_from_slice(p);
        v
    }

    fn pkt(link: LinkType, data: &[u8]) -> Packet<'_> {
        Packet {
            ts: Ts(0),
            link,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn raw_ipv4_tcp() {
        let bytes = ipv4_tcp(b"hello", 5);
        let s = decode(&pkt(LinkType::Raw, &bytes)).unwrap();
        assert_eq!(s.src.to_string(), "198.18.0.2:40000");
        assert_eq!(s.dst.to_string(), "198.18.1.2:50051");
        assert_eq!(
            (s.seq, s.ack, s.ttl, s.ip_id),
            (1000, 2000, 61, Some(0x1234))
        );
        assert_eq!((s.payload, s.payload_len), (&b"hello"[..], 5));
        assert!(s.flags.ack && !s.flags.syn);
    }

    #[test]
    fn snaplen_cut_keeps_declared_length() {
        let mut bytes = ipv4_tcp(b"hello world", 11);
        bytes.truncate(40 + 3);
        let s = decode(&pkt(LinkType::Raw, &bytes)).unwrap();
        assert_eq!((s.payload, s.payload_len), (&b"hel"[..], 11));
    }

    #[test]
    fn cooked_and_loopback_links() {
        let ip = ipv4_tcp(b"x", 1);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&ip);
        assert_eq!(
            decode(&pkt(LinkType::LinuxSll2, &sll2)).unwrap().payload,
            b"x"
        );
        let mut sll = vec![0; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert_eq!(
            decode(&pkt(LinkType::LinuxSll, &sll)).unwrap().payload,
            b"x"
        );
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(decode(&pkt(LinkType::Null, &null)).unwrap().payload, b"x");
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        assert_eq!(
            decode(&pkt(LinkType::Ethernet, &eth)).unwrap().payload,
            b"x"
        );
    }

    #[test]
    fn ipv6_with_extension_header_and_qinq() {
        let tcp = &ipv4_tcp(b"v6", 2)[20..];
        // IPv6, next header 0 (hop-by-hop, 8 bytes) then TCP.
        let mut v6 = vec![0x60, 0, 0, 0];
        v6.extend_from_slice(&((8 + tcp.len()) as u16).to_be_bytes());
        v6.extend_from_slice(&[0, 64]);
        v6.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v6.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        v6.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        v6.extend_from_slice(tcp);
        let s = decode(&pkt(LinkType::Raw, &v6)).unwrap();
        assert_eq!(s.src.to_string(), "[2001:2::2]:40000");
        assert_eq!((s.payload, s.ttl, s.ip_id), (&b"v6"[..], 64, None));
        // Ethernet with two VLAN tags (802.1ad outer, 802.1Q inner).
        let ip = ipv4_tcp(b"q", 1);
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        assert_eq!(
            decode(&pkt(LinkType::Ethernet, &eth)).unwrap().payload,
            b"q"
        );
    }

    /// Every packet the direct IPv4/TCP reading accepts reads the same through etherparse: the
    /// fixtures' headers with bytes changed at random and cut at random lengths.
    #[test]
    fn fast_path_agrees_with_etherparse() {
        let mut eth = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        eth.extend(ipv4_tcp(b"hello world", 11));
        let mut with_options = eth.clone();
        with_options[14] = 0x46; // IHL 6: four bytes of IPv4 options
        with_options.splice(34..34, [1, 1, 1, 0]);
        with_options[17] += 4;
        with_options[46] = 0x60; // TCP data offset 6: four bytes of TCP options
        with_options.splice(58..58, [1, 1, 1, 1]);
        with_options[17] += 4;
        // IPv6, next header TCP, then the same TCP segment.
        let tcp = &ipv4_tcp(b"hello world", 11)[20..];
        let mut v6 = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd];
        v6.extend_from_slice(&[0x60, 0, 0, 0]);
        v6.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        v6.extend_from_slice(&[6, 64]);
        v6.extend_from_slice(&[0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v6.extend_from_slice(&[0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        v6.extend_from_slice(tcp);
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        for base in [&eth, &with_options, &v6] {
            let (mut accepted, mut checked) = (0, 0);
            for _ in 0..20_000 {
                let mut p = base.to_vec();
                for _ in 0..next() % 4 {
                    // Header bytes mostly: offsets 0..80.
                    let i = (next() % 80) as usize % p.len();
                    p[i] = next() as u8;
                }
                if next() % 4 == 0 {
                    p.truncate((next() as usize) % (p.len() + 1));
                }
                let ip = p.get(14..).unwrap_or(&[]);
                for (link, bytes) in [
                    (LinkType::Ethernet, &p[..]),
                    (LinkType::Raw, ip),
                    (LinkType::Ipv4, ip),
                    (LinkType::Ipv6, ip),
                ] {
                    let packet = pkt(link, bytes);
                    let slow = format!("{:?}", decode_sliced(&packet));
                    let fast = format!("{:?}", decode(&packet));
                    assert_eq!(fast, slow, "{link:?} {bytes:02x?}");
                    checked += 1;
                    let direct = match link {
                        LinkType::Ethernet => match bytes.get(12..14) {
                            Some([8, 0]) => bytes.get(14..).and_then(plain_ipv4_tcp),
                            Some([0x86, 0xdd]) => bytes.get(14..).and_then(plain_ipv6_tcp),
                            _ => None,
                        },
                        _ => plain_ip_tcp(bytes),
                    };
                    accepted += direct.is_some() as usize;
                }
            }
            // The comparison means something only if both paths were taken often.
            assert!(
                accepted > checked / 10 && accepted < checked * 9 / 10,
                "{accepted} of {checked}"
            );
        }
    }

    #[test]
    fn truncated_and_foreign_packets_are_skipped() {
        let ip = ipv4_tcp(b"x", 1);
        assert_eq!(
            decode(&pkt(LinkType::Raw, &ip[..30])).unwrap_err(),
            Skip::Malformed
        );
        assert_eq!(
            decode(&pkt(LinkType::Null, &[2, 0])).unwrap_err(),
            Skip::Malformed
        );
        assert_eq!(
            decode(&pkt(LinkType::LinuxSll2, &[8, 0, 1])).unwrap_err(),
            Skip::Malformed
        );
        assert_eq!(
            decode(&pkt(LinkType::Other(147), &ip)).unwrap_err(),
            Skip::UnsupportedLink
        );
        let mut udp = ip.clone();
        udp[9] = 17;
        assert!(decode(&pkt(LinkType::Raw, &udp)).is_err());
        assert!(decode(&pkt(LinkType::Raw, &[])).is_err());
    }
}
