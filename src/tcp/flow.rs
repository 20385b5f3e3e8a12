//! The flow table: one entry per TCP connection, keyed by its 4-tuple in a canonical order so that
//! both directions find the same entry. Its size is bounded by a named limit.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, SocketAddrV4};

/// Limit `max_flows`: TCP connections tracked at once. New connections beyond it are counted and
/// not followed.
pub const MAX_FLOWS: usize = 500_000;

/// Both ends of a connection, the lower one (by [`SocketAddr`]'s order) first, packed into words:
/// every packet looks its connection up by this key, and comparing and hashing a few words is
/// cheaper than doing so field by field on two `SocketAddr`s (flow info and scope id, always 0
/// from the wire, are left out).
///
/// IPv4: words 0 and 1 are each end's address and port (`ip << 16 | port`), the rest 0. IPv6:
/// words 0-3 the two addresses, word 4 both ports with bit 32 set, so that no IPv6 key equals an
/// IPv4 one.
#[derive(Clone, Copy, Debug, Eq)]
pub struct FlowKey {
    words: [u64; 5],
}

/// Word by word, without branches: the derived comparison of the array called `memcmp` for each
/// probe of the flow table.
impl PartialEq for FlowKey {
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        let (a, b) = (&self.words, &other.words);
        (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) == 0
    }
}

/// Marks an IPv6 key in word 4.
const V6: u64 = 1 << 32;

/// An end as (IPv6, address, port): ordered as `SocketAddr`s are (IPv4 first).
fn rank(addr: &SocketAddr) -> (bool, u128, u16) {
    match addr {
        SocketAddr::V4(a) => (false, u32::from(*a.ip()) as u128, a.port()),
        SocketAddr::V6(a) => (true, u128::from(*a.ip()), a.port()),
    }
}

impl FlowKey {
    #[inline]
    pub fn new(x: SocketAddr, y: SocketAddr) -> FlowKey {
        if let (SocketAddr::V4(x), SocketAddr::V4(y)) = (x, y) {
            // The common case, without 128-bit numbers: (address, port) orders as this word.
            let end = |a: SocketAddrV4| (u32::from(*a.ip()) as u64) << 16 | a.port() as u64;
            let (x, y) = (end(x), end(y));
            return FlowKey {
                words: [x.min(y), x.max(y), 0, 0, 0],
            };
        }
        let (x, y) = (rank(&x), rank(&y));
        let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
        let end = |(_, ip, port): (bool, u128, u16)| (ip as u64) << 16 | port as u64;
        let words = if !hi.0 {
            [end(lo), end(hi), 0, 0, 0]
        } else {
            // A packet never mixes IPv4 and IPv6; were it to, the IPv4 end is widened.
            [
                (lo.1 >> 64) as u64,
                lo.1 as u64,
                (hi.1 >> 64) as u64,
                hi.1 as u64,
                V6 | (lo.2 as u64) << 16 | hi.2 as u64,
            ]
        };
        FlowKey { words }
    }

    /// Addresses and ports packed: the first `len` bytes of the array (lower end first; each end
    /// its address octets, then its port, big-endian).
    #[cfg(test)]
    fn packed(&self) -> ([u8; 2 * (16 + 2)], usize) {
        let mut buf = [0u8; 2 * (16 + 2)];
        let w = self.words;
        if w[4] & V6 == 0 {
            for (i, end) in [w[0], w[1]].into_iter().enumerate() {
                buf[6 * i..6 * i + 6].copy_from_slice(&end.to_be_bytes()[2..]);
            }
            (buf, 12)
        } else {
            let ports = [(w[4] >> 16) as u16, w[4] as u16];
            for i in 0..2 {
                buf[18 * i..18 * i + 8].copy_from_slice(&w[2 * i].to_be_bytes());
                buf[18 * i + 8..18 * i + 16].copy_from_slice(&w[2 * i + 1].to_be_bytes());
                buf[18 * i + 16..18 * i + 18].copy_from_slice(&ports[i].to_be_bytes());
            }
            (buf, 36)
        }
    }

    /// Which of `n` shards follows this connection: the same for both directions and every run
    /// (not seeded: a capture crafted to put every flow in one shard only makes the run slower).
    ///
    /// The words an address family uses are folded with a multiply each, then mixed (the
    /// SplitMix64 finaliser): the low bits of an unmixed hash depend on few input bits, and split
    /// the bench capture's work 39/61 over two analyzers; mixed, within a few percent of half
    /// each. The shard is taken from the high bits by a multiply, not a division. FNV-1a over the
    /// key's bytes did as well, at ~130 instructions a packet on the reading thread (callgrind),
    /// a fifth of its work per packet.
    #[inline]
    pub fn shard(&self, n: usize) -> usize {
        let fold = |h: u64, w: u64| (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
        let w = &self.words;
        let mut h = fold(fold(0, w[0]), w[1]);
        if w[4] != 0 {
            h = fold(fold(fold(h, w[2]), w[3]), w[4]);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        ((h as u128 * n.max(1) as u128) >> 64) as usize
    }
}

/// The words an address family uses, one write each: the derived hash of two `SocketAddr`s made
/// about ten small writes per packet, a few percent of `analyze` in perf.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let w = &self.words;
        state.write_u64(w[0]);
        state.write_u64(w[1]);
        if w[4] != 0 {
            state.write_u64(w[2]);
            state.write_u64(w[3]);
            state.write_u64(w[4]);
        }
    }
}

/// Seeded at random per run, so that a capture cannot be made to collide its flows (SipHash, the
/// standard one, was ~4% of `analyze` in perf; foldhash is several times cheaper).
pub type FlowMap<T> = HashMap<FlowKey, T, foldhash::fast::RandomState>;

pub struct FlowTable<T> {
    map: FlowMap<T>,
    max_flows: usize,
    /// Connections not followed because the table was full.
    pub refused: u64,
}

impl<T> FlowTable<T> {
    pub fn new(max_flows: usize) -> FlowTable<T> {
        FlowTable {
            map: FlowMap::default(),
            max_flows,
            refused: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut T> {
        self.map.get_mut(key)
    }

    /// Inserts a new flow, or refuses it (and counts the refusal) when the table is full.
    /// `elsewhere`: flows followed outside the table (parked), which count toward its limit.
    pub fn insert(&mut self, key: FlowKey, value: T, elsewhere: usize) -> Option<&mut T> {
        let full = self.map.len() + elsewhere >= self.max_flows;
        match self.map.entry(key) {
            Entry::Occupied(mut e) => {
                e.insert(value);
                Some(e.into_mut())
            }
            Entry::Vacant(_) if full => {
                self.refused += 1;
                None
            }
            Entry::Vacant(e) => Some(e.insert(value)),
        }
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        self.map.remove(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &T)> + '_ {
        self.map.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.map.values_mut()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (FlowKey, T)> + '_ {
        self.map.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends as two sorted `SocketAddr`s, packed: what the key's words must hold.
    fn packed_from_addrs(x: SocketAddr, y: SocketAddr) -> Vec<u8> {
        let mut out = Vec::new();
        for addr in [x.min(y), x.max(y)] {
            match addr.ip() {
                std::net::IpAddr::V4(ip) => out.extend(ip.octets()),
                std::net::IpAddr::V6(ip) => out.extend(ip.octets()),
            }
            out.extend(addr.port().to_be_bytes());
        }
        out
    }

    #[test]
    fn keys_pack_and_compare_as_sorted_socket_addresses() {
        let mut next = crate::testing::xorshift(0x464c_4f57);
        // Few distinct values per field, so that equal addresses and ports are common.
        let mut addr = |v6: bool| -> SocketAddr {
            let port = [80, 443, 50051, 40000][(next() % 4) as usize];
            if v6 {
                let ip = [0u128, 1, 1 << 64, u128::MAX][(next() % 4) as usize];
                SocketAddr::new(std::net::Ipv6Addr::from(ip).into(), port)
            } else {
                let ip = [0u32, 1, 1 << 31, u32::MAX][(next() % 4) as usize];
                SocketAddr::new(std::net::Ipv4Addr::from(ip).into(), port)
            }
        };
        let pairs: Vec<(SocketAddr, SocketAddr)> = (0..400)
            .map(|i| (addr(i % 2 == 1), addr(i % 2 == 1)))
            .collect();
        for &(a, b) in &pairs {
            let key = FlowKey::new(a, b);
            assert_eq!(key, FlowKey::new(b, a));
            let (buf, len) = key.packed();
            assert_eq!(buf[..len], packed_from_addrs(a, b)[..], "{a} {b}");
            for &(c, d) in &pairs {
                let same = (a.min(b), a.max(b)) == (c.min(d), c.max(d));
                assert_eq!(key == FlowKey::new(c, d), same, "{a} {b} / {c} {d}");
            }
        }
    }

    /// Flows spread evenly over shards, whatever varies between them (client port, client
    /// address, server address), and both directions go to the same shard.
    #[test]
    fn shards_are_even_and_the_same_both_ways() {
        let v4 = |a: u32, port: u16| SocketAddr::new(std::net::Ipv4Addr::from(a).into(), port);
        let v6 = |a: u128, port: u16| SocketAddr::new(std::net::Ipv6Addr::from(a).into(), port);
        let server = v4(0xc612_0102, 50051);
        let families: [Vec<(SocketAddr, SocketAddr)>; 4] = [
            (0..4000)
                .map(|i| (v4(0x0a00_0001, 20000 + i), server))
                .collect(),
            (0..4000u32)
                .map(|i| (v4(0x0a00_0000 + i, 40000), server))
                .collect(),
            (0..4000u32)
                .map(|i| (v4(0x0a00_0001, 40000), v4(0xc612_0000 + 2 * i, 443)))
                .collect(),
            (0..4000u16)
                .map(|i| (v6(0xfd00 << 112 | 1, 20000 + i), v6(0xfd00 << 112 | 2, 443)))
                .collect(),
        ];
        for flows in &families {
            for n in 2..=4 {
                let mut count = vec![0usize; n];
                for &(a, b) in flows {
                    let shard = FlowKey::new(a, b).shard(n);
                    assert_eq!(shard, FlowKey::new(b, a).shard(n));
                    count[shard] += 1;
                }
                let fair = flows.len() / n;
                assert!(
                    count.iter().all(|&c| c.abs_diff(fair) < fair / 10),
                    "{n} shards: {count:?}"
                );
            }
        }
    }

    #[test]
    fn both_directions_share_a_key_and_the_limit_holds() {
        let a: SocketAddr = "198.18.0.2:40000".parse().unwrap();
        let b: SocketAddr = "198.18.1.2:50051".parse().unwrap();
        assert_eq!(FlowKey::new(a, b), FlowKey::new(b, a));
        let mut t = FlowTable::new(1);
        assert!(t.insert(FlowKey::new(a, b), 1, 0).is_some());
        let c: SocketAddr = "198.18.0.3:40000".parse().unwrap();
        assert!(t.insert(FlowKey::new(c, b), 2, 0).is_none());
        assert_eq!((t.len(), t.refused), (1, 1));
        // Flows kept elsewhere (parked) count too.
        let mut t = FlowTable::new(2);
        assert!(t.insert(FlowKey::new(a, b), 1, 1).is_some());
        assert!(t.insert(FlowKey::new(c, b), 2, 1).is_none());
    }
}
