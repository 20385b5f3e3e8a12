//! A thread that reads one input ahead of the record parser: gzip is decompressed there, on one
//! core, while records are parsed on another. It fills large buffers and hands them over through a
//! bounded queue; the parser gives each buffer back when it has moved on to the next, so buffers
//! are allocated only until the queue is full, and the memory in flight is fixed
//! (about `queue + 3` buffers).
//!
//! Every buffer starts with `headroom` free bytes, where the parser puts the start of a record that
//! the end of the previous buffer cut in two ([`super::window`]): records are parsed where they
//! lie, and only those starts are ever copied.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{self, JoinHandle};

/// What the thread reads from.
pub(super) trait Fill: Read + Send + 'static {
    /// The last read of the underlying input came back short: more may take a while (a pipe fed
    /// by a live capture), so what has been read is handed over now, not when the buffer is full.
    fn waiting(&self) -> bool;
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    /// Free bytes at the start of each buffer; see the module comment.
    pub headroom: usize,
    /// Bytes read into each buffer, after its headroom.
    pub chunk: usize,
    /// Full buffers waiting for the parser, at most.
    pub queue: usize,
}

/// What the thread hands over: a buffer with its bytes at `[headroom..end]`, the end of the
/// input, or the error that ended it.
pub(super) enum Next {
    Data(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

pub(super) struct Ahead {
    full: Receiver<Next>,
    empty: Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
    sizes: Sizes,
    /// Wait for the thread when dropped: its input never blocks for long (a file, not a pipe).
    join_on_drop: bool,
}

impl Ahead {
    /// Starts the thread. It stops at the end of the input, at an error, or when this is dropped
    /// (at its next hand-over: a read that blocks, on a pipe, is waited for first). With
    /// `join_on_drop` (an input that cannot block: a file) dropping this waits for it to stop, so
    /// that no thread outlives its reader.
    pub(super) fn spawn<R: Fill>(input: R, sizes: Sizes, join_on_drop: bool) -> io::Result<Ahead> {
        let sizes = Sizes {
            headroom: sizes.headroom,
            chunk: sizes.chunk.max(1),
            queue: sizes.queue.max(1),
        };
        let (to_parser, full) = mpsc::sync_channel(sizes.queue);
        let (empty, recycled) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("capture-read-ahead".into())
            .spawn(move || fill(input, sizes, to_parser, recycled))?;
        Ok(Ahead {
            full,
            empty,
            thread: Some(thread),
            sizes,
            join_on_drop,
        })
    }

    pub(super) fn headroom(&self) -> usize {
        self.sizes.headroom
    }

    /// The next buffer, waiting for it if need be.
    pub(super) fn next(&mut self) -> Next {
        match self.full.recv() {
            Ok(next) => next,
            Err(_) => {
                // The thread is gone without a last word: it panicked (a bug in the decoder).
                // The panic goes on here, as if the decoding had run on this thread.
                if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join) {
                    std::panic::resume_unwind(panic);
                }
                Next::End
            }
        }
    }

    /// Gives a buffer back to be filled again; one of another size is dropped.
    pub(super) fn recycle(&self, buf: Vec<u8>) {
        if buf.len() == self.sizes.headroom + self.sizes.chunk {
            let _ = self.empty.send(buf);
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take().filter(|_| self.join_on_drop) else {
            return;
        };
        // Closing the queue ends the thread at its next hand-over.
        let (_, closed) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.full, closed));
        // A panic in it was not asked for: only its end is.
        let _ = thread.join();
    }
}

fn fill<R: Fill>(mut input: R, sizes: Sizes, full: SyncSender<Next>, recycled: Receiver<Vec<u8>>) {
    let fresh = || {
        recycled
            .try_recv()
            .unwrap_or_else(|_| vec![0; sizes.headroom + sizes.chunk])
    };
    let mut buf = fresh();
    let mut end = sizes.headroom;
    loop {
        let last = match input.read(&mut buf[end..]) {
            Ok(0) => Some(Next::End),
            Ok(n) => {
                end += n;
                None
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Some(Next::Failed(e)),
        };
        let full_now = end == buf.len() || last.is_some() || input.waiting();
        if full_now && end > sizes.headroom {
            let next = std::mem::replace(&mut buf, fresh());
            // The parser is gone (its input ended early, at damage): nothing more to do.
            if full.send(Next::Data(next, end)).is_err() {
                return;
            }
            end = sizes.headroom;
        }
        if let Some(last) = last {
            let _ = full.send(last);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    struct Trickle(Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    impl Fill for Trickle {
        fn waiting(&self) -> bool {
            true
        }
    }

    #[test]
    fn buffers_arrive_in_order_with_their_headroom_and_are_recycled() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let sizes = Sizes {
            headroom: 16,
            chunk: 1000,
            queue: 2,
        };
        let mut ahead =
            Ahead::spawn(Trickle(Cursor::new(bytes.clone()), 700), sizes, true).unwrap();
        let mut got = Vec::new();
        loop {
            match ahead.next() {
                Next::Data(buf, end) => {
                    assert_eq!(buf.len(), 1016);
                    // A trickling input is handed over at each read, not when the buffer is full.
                    assert!(end - 16 <= 700, "{end}");
                    got.extend_from_slice(&buf[16..end]);
                    ahead.recycle(buf);
                }
                Next::End => break,
                Next::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, bytes);
    }

    /// An input that lives as long as the thread reading it, and is slow after its first read.
    struct Held(Trickle, std::sync::Arc<()>, bool);

    impl Read for Held {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if std::mem::replace(&mut self.2, true) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            self.0.read(buf)
        }
    }

    impl Fill for Held {
        fn waiting(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_reader_dropped_early_leaves_no_thread_behind() {
        let alive = std::sync::Arc::new(());
        let input = Held(
            Trickle(Cursor::new(vec![7; 1 << 20]), 4096),
            alive.clone(),
            false,
        );
        let sizes = Sizes {
            headroom: 0,
            chunk: 8192,
            queue: 1,
        };
        let mut ahead = Ahead::spawn(input, sizes, true).unwrap();
        assert!(matches!(ahead.next(), Next::Data(..)));
        // The thread is in its slow second read; dropping waits for it to end, and with it goes
        // its input.
        drop(ahead);
        assert_eq!(std::sync::Arc::strong_count(&alive), 1);
    }
}
