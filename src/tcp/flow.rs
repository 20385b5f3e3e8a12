//! The flow table: one entry per TCP connection, keyed by its 4-tuple in a canonical order so that
//! both directions find the same entry. Its size is bounded by a named limit.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// Limit `max_flows`: TCP connections tracked at once. New connections beyond it are counted and
/// not followed.
pub const MAX_FLOWS: usize = 500_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    lo: SocketAddr,
    hi: SocketAddr,
}

impl FlowKey {
    pub fn new(x: SocketAddr, y: SocketAddr) -> FlowKey {
        if x <= y {
            FlowKey { lo: x, hi: y }
        } else {
            FlowKey { lo: y, hi: x }
        }
    }

    /// Addresses and ports packed: the first `len` bytes of the array. Keys that are equal pack
    /// the same bytes (flow info and scope id, always 0 from the wire, are left out).
    fn packed(&self) -> ([u8; 2 * (16 + 2)], usize) {
        let mut buf = [0u8; 2 * (16 + 2)];
        let mut len = 0;
        for addr in [self.lo, self.hi] {
            let mut put = |bytes: &[u8]| {
                if let Some(slot) = buf.get_mut(len..len + bytes.len()) {
                    slot.copy_from_slice(bytes);
                    len += bytes.len();
                }
            };
            match addr.ip() {
                IpAddr::V4(ip) => put(&ip.octets()),
                IpAddr::V6(ip) => put(&ip.octets()),
            }
            put(&addr.port().to_be_bytes());
        }
        (buf, len)
    }

    /// Which of `n` shards follows this connection: the same for both directions and every run
    /// (FNV-1a; a capture crafted to put every flow in one shard only makes the run slower).
    pub fn shard(&self, n: usize) -> usize {
        let (buf, len) = self.packed();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in buf.get(..len).unwrap_or(&[]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        // FNV's low bits depend on few input bits (the lowest only on the bytes' parity): mixed
        // first (the SplitMix64 finaliser), the two shards of the bench capture carried 39% and
        // 61% of the work; mixed, within a few percent of half each.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (h % n.max(1) as u64) as usize
    }
}

/// The addresses and ports in one write: the derived hash made about ten small writes into
/// SipHash per packet, a few percent of `analyze` in perf.
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (buf, len) = self.packed();
        state.write(buf.get(..len).unwrap_or(&[]));
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
        if self.map.len() + elsewhere >= self.max_flows && !self.map.contains_key(&key) {
            self.refused += 1;
            return None;
        }
        self.map.insert(key, value);
        self.map.get_mut(&key)
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
