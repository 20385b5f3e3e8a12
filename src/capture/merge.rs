//! Several captures at once, merged by time (as `mergecap` would), so that a capture taken on each
//! side of a proxy, or a rotated series of files, reads as one. No packet is copied: each reader
//! holds its next packet in its own buffer while the timestamps are compared.

use super::{CaptureReader, InputWarning, Packet, Ts};

pub struct Merged {
    readers: Vec<CaptureReader>,
    /// The timestamp of each reader's next packet (its current one), `None` once it has ended.
    heads: Vec<Option<Ts>>,
    primed: bool,
    /// The reader whose packet was handed out last: it moves on at the next call.
    given: Option<usize>,
}

impl Merged {
    pub fn new(readers: Vec<CaptureReader>) -> Merged {
        let heads = readers.iter().map(|_| None).collect();
        Merged {
            readers,
            heads,
            primed: false,
            given: None,
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
    /// One input, the common case, is read straight through, inlined where packets are read: the
    /// call was ~20 instructions a packet (callgrind).
    #[inline]
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.readers.len() == 1 {
            return self.readers.first_mut()?.next_packet();
        }
        self.next_merged()
    }

    /// [`next_packet`](Self::next_packet) over several inputs.
    #[inline(never)]
    fn next_merged(&mut self) -> Option<Packet<'_>> {
        if !self.primed {
            for i in 0..self.readers.len() {
                self.advance(i);
            }
            self.primed = true;
        }
        if let Some(i) = self.given.take() {
            self.advance(i);
        }
        let best = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|ts| (ts, i)))
            .min()?
            .1;
        self.given = Some(best);
        self.readers.get(best)?.current()
    }

    fn advance(&mut self, i: usize) {
        if let (Some(r), Some(head)) = (self.readers.get_mut(i), self.heads.get_mut(i)) {
            *head = if r.advance() {
                r.current().map(|p| p.ts)
            } else {
                None
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(packets: &[(u32, &[u8])]) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&101u32.to_le_bytes());
        for (sec, data) in packets {
            for x in [*sec, 0, data.len() as u32, data.len() as u32] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(data);
        }
        v
    }

    #[test]
    fn inputs_merge_by_time_and_ties_keep_the_order_of_the_inputs() {
        let a = pcap(&[(1, b"a1"), (3, b"a3"), (3, b"a3'"), (7, b"a7")]);
        let b = pcap(&[(2, b"b2"), (3, b"b3"), (9, b"b9")]);
        let readers = [a, b]
            .into_iter()
            .map(|v| CaptureReader::from_bytes("x", v).unwrap())
            .collect();
        let mut m = Merged::new(readers);
        let mut got = Vec::new();
        while let Some(p) = m.next_packet() {
            got.push(String::from_utf8(p.data.to_vec()).unwrap());
        }
        assert_eq!(got, ["a1", "b2", "a3", "a3'", "b3", "a7", "b9"]);
    }
}
