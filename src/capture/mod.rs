//! Capture stage: capture files (pcap, pcapng, gzip of either, standard input) become a stream of
//! [`Packet`]s in time order. Nothing here looks inside a packet beyond its link type; damage to a
//! file ends that file's stream with a warning, never the program.

mod ahead;
mod gunzip;
pub mod live;
mod merge;
mod reader;
mod window;

pub use merge::Merged;
pub use reader::{CaptureReader, OpenError};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A capture timestamp: nanoseconds since the Unix epoch. Signed so that a hostile or broken capture
/// with timestamps before 1970 (or going backwards) is representable and comparisons stay total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

/// Serialised as its eight bytes (little-endian), for the state of parked connections and the
/// summaries of ended ones (postcard): as an integer, postcard writes nine 7-bit groups for any
/// time since 1971, one at a time, and that loop was a quarter of what parking cost.
impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.to_le_bytes())
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Ts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the eight bytes of a timestamp")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Ts, E> {
                let bytes =
                    <[u8; 8]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Ts(i64::from_le_bytes(bytes)))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

impl Ts {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    pub fn from_parts(secs: i64, nanos: i64) -> Ts {
        Ts(secs
            .saturating_mul(Self::NANOS_PER_SEC)
            .saturating_add(nanos))
    }

    /// Seconds since the epoch as a float, as the JSON document carries them.
    pub fn as_secs_f64(self) -> f64 {
        // The same parts, by unsigned division (cheaper) for every time since 1970.
        let (secs, nanos) = match u64::try_from(self.0) {
            Ok(ns) => {
                let per_sec = Self::NANOS_PER_SEC as u64;
                ((ns / per_sec) as i64, (ns % per_sec) as i64)
            }
            Err(_) => (
                self.0.div_euclid(Self::NANOS_PER_SEC),
                self.0.rem_euclid(Self::NANOS_PER_SEC),
            ),
        };
        secs as f64 + nanos as f64 / 1e9
    }

    /// `self - earlier` in nanoseconds, saturating (hostile timestamps sit at the ends of i64).
    pub fn ns_since(self, earlier: Ts) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This time moved by `ns` nanoseconds, saturating.
    pub fn add_ns(self, ns: i64) -> Ts {
        Ts(self.0.saturating_add(ns))
    }

    /// `self - earlier` in seconds; negative when time went backwards.
    pub fn secs_since(self, earlier: Ts) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e9
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}", self.as_secs_f64())
    }
}

/// The link layers we decode (tcpdump's `DLT_*` / pcapng `LINKTYPE_*` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// BSD loopback (`DLT_NULL`, 4-byte address family in host byte order) and OpenBSD `DLT_LOOP`
    /// (network byte order): both carry the family in 4 bytes.
    Null,
    /// Raw IP, version taken from the first nibble (`DLT_RAW` in its several numberings).
    Raw,
    Ipv4,
    Ipv6,
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    LinuxSll,
    /// Linux cooked capture v2 (`tcpdump -i any -y LINUX_SLL2`).
    LinuxSll2,
    Other(i32),
}

impl LinkType {
    /// Maps a LINKTYPE_/DLT_ number as found in pcap and pcapng headers.
    pub fn from_number(n: i32) -> LinkType {
        match n {
            1 => LinkType::Ethernet,
            0 | 108 => LinkType::Null,
            12 | 14 | 101 => LinkType::Raw,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}

/// One captured packet. `data` may be shorter than `orig_len` when the snapshot length cut it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: Ts,
    pub link: LinkType,
    pub data: &'a [u8],
    pub orig_len: u32,
}

/// Something wrong with an input that did not stop us from using what came before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputWarning {
    pub file: String,
    pub message: String,
}

impl fmt::Display for InputWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::Ts;

    #[test]
    fn seconds_are_the_euclidean_parts_for_times_before_and_after_1970() {
        let euclid = |ns: i64| {
            let secs = ns.div_euclid(Ts::NANOS_PER_SEC);
            let nanos = ns.rem_euclid(Ts::NANOS_PER_SEC);
            secs as f64 + nanos as f64 / 1e9
        };
        let mut next = crate::testing::xorshift(0x7473_0000_0000_0001);
        let edges = [
            0,
            1,
            -1,
            999_999_999,
            1_000_000_000,
            -1_000_000_000,
            i64::MIN,
            i64::MAX,
        ];
        let random = (0..100_000).map(|_| (next() as i64) >> (next() % 64));
        for ns in edges.into_iter().chain(random) {
            assert_eq!(Ts(ns).as_secs_f64().to_bits(), euclid(ns).to_bits(), "{ns}");
        }
    }

    #[test]
    fn timestamps_read_back_as_written_and_short_ones_are_refused() {
        for ns in [0, 1, -1, 1_700_000_000_123_456_789, i64::MIN, i64::MAX] {
            let bytes = postcard::to_allocvec(&Ts(ns)).unwrap();
            // A length, then the eight bytes, little-endian.
            assert_eq!(bytes[0], 8);
            assert_eq!(bytes[1..], ns.to_le_bytes());
            assert_eq!(postcard::from_bytes::<Ts>(&bytes).unwrap(), Ts(ns));
        }
        assert!(postcard::from_bytes::<Ts>(&[7, 1, 2, 3, 4, 5, 6, 7]).is_err());
        assert!(postcard::from_bytes::<Ts>(&[8, 1, 2, 3]).is_err());
    }
}
