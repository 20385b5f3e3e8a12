//! TCP stage: the flow table keyed by the 4-tuple, and per-direction reassembly. It knows nothing
//! of what the bytes mean; it hands in-order bytes and gaps to the next stage with the time each
//! became available, and reports SYN, FIN, RST and retransmissions as they are seen.
use serde::{Deserialize, Serialize};

pub mod flow;
pub mod reassembly;

pub use flow::{FlowKey, FlowTable, MAX_FLOWS};

/// `#[serde(with = "crate::tcp::as_bytes")]` for the byte buffers a parked connection carries
/// (reassembly, framing, HPACK tables): written as one run of bytes rather than as serde's usual
/// sequence of `u8`s, which costs a call per byte each way.
pub mod as_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        /// Formats without bytes of their own write them as a sequence.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element()? {
                v.push(b);
            }
            Ok(v)
        }
    }
}
pub use reassembly::{Chunk, Reassembler};

/// Direction within a flow: A is the source of the first packet seen, B the other end. Which of
/// them is the client is decided later, from the SYN, the HTTP/2 preface or the ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dir {
    AtoB,
    BtoA,
}

impl Dir {
    pub fn reverse(self) -> Dir {
        match self {
            Dir::AtoB => Dir::BtoA,
            Dir::BtoA => Dir::AtoB,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Dir::AtoB => 0,
            Dir::BtoA => 1,
        }
    }
}
