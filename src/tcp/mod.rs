//! TCP stage: the flow table keyed by the 4-tuple, and per-direction reassembly. It knows nothing
//! of what the bytes mean; it hands in-order bytes and gaps to the next stage with the time each
//! became available, and reports SYN, FIN, RST and retransmissions as they are seen.

use serde::{Deserialize, Serialize};

pub mod flow;
pub mod reassembly;

pub use flow::{FlowKey, FlowTable, MAX_FLOWS};
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
