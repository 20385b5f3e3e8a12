//! Several captures at once, merged by time (as `mergecap` would), so that a capture taken on each
//! side of a proxy, or a rotated series of files, reads as one. With one input the packets are
//! passed through without a copy.

use super::{CaptureReader, InputWarning, OwnedPacket, Packet};

pub struct Merged {
    readers: Vec<CaptureReader>,
    /// The next packet of each reader, copied out so that all heads can be compared.
    heads: Vec<Option<OwnedPacket>>,
    primed: bool,
    current: Option<OwnedPacket>,
    /// The buffer of the packet handed out last time, reused for the next copy.
    spare: Vec<u8>,
}

impl Merged {
    pub fn new(readers: Vec<CaptureReader>) -> Merged {
        let heads = readers.iter().map(|_| None).collect();
        Merged {
            readers,
            heads,
            primed: false,
            current: None,
            spare: Vec::new(),
        }
    }

    pub fn readers(&self) -> &[CaptureReader] {
        &self.readers
    }

    /// Key log lines from Decryption Secrets Blocks read since the last call, from every input.
    pub fn take_secrets(&mut self) -> Option<Vec<u8>> {
        if !self.readers.iter().any(|r| r.has_secrets()) {
            return None;
        }
        Some(
            self.readers
                .iter_mut()
                .flat_map(|r| r.take_secrets())
                .collect(),
        )
    }

    pub fn take_warnings(&mut self) -> Vec<InputWarning> {
        self.readers
            .iter_mut()
            .flat_map(|r| r.take_warnings())
            .collect()
    }

    /// Raw bytes read so far over all inputs, and their total size when every size is known.
    pub fn progress(&self) -> (u64, Option<u64>) {
        let mut done = 0;
        let mut total = Some(0u64);
        for r in &self.readers {
            let (d, t) = r.progress();
            done += d;
            total = total.zip(t).map(|(a, b)| a + b);
        }
        (done, total)
    }

    /// The packet with the earliest timestamp among all inputs; ties keep the order of the inputs.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.readers.len() == 1 {
            return self.readers[0].next_packet();
        }
        if !self.primed {
            for i in 0..self.readers.len() {
                self.refill(i);
            }
            self.primed = true;
        }
        if let Some(old) = self.current.take() {
            self.spare = old.data;
        }
        let best = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|p| (p.ts, i)))
            .min()?
            .1;
        self.current = self.heads[best].take();
        self.refill(best);
        self.current.as_ref().map(|p| p.as_packet())
    }

    fn refill(&mut self, i: usize) {
        let mut data = std::mem::take(&mut self.spare);
        self.heads[i] = self.readers[i].next_packet().map(|p| {
            data.clear();
            data.extend_from_slice(p.data);
            OwnedPacket {
                ts: p.ts,
                link: p.link,
                data,
                orig_len: p.orig_len,
            }
        });
    }
}
