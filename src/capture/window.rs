//! The bytes of one input that the record parser has not consumed yet, in one buffer, so that
//! records are parsed where they lie and packets borrow them there. More bytes come either straight
//! from the input by `read` into the buffer (files, standard input) or as whole buffers filled
//! ahead by another thread ([`super::ahead`]: gzip, decompressed on another core). Either way the
//! only bytes ever moved are those of a record cut in two by the end of a buffer.

use super::ahead::{Ahead, Next};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(super) type Source = Box<dyn Read + Send>;

/// The input as stored (a file, standard input, bytes in memory). It counts the bytes read, for
/// progress; its first bytes can be looked at before anything else reads them; and it remembers
/// whether its last read came back short, which on a pipe means that more may take a while.
pub(super) struct RawInput {
    inner: Source,
    peeked: Vec<u8>,
    /// How much of `peeked` has been read again.
    replayed: usize,
    count: Arc<AtomicU64>,
    short: bool,
}

impl RawInput {
    pub(super) fn new(inner: Source, count: Arc<AtomicU64>) -> RawInput {
        RawInput {
            inner,
            peeked: Vec::new(),
            replayed: 0,
            count,
            short: false,
        }
    }

    /// The first `n` bytes of the input, fewer if it is shorter; reads still start at byte 0.
    pub(super) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.peeked.len() < n {
            let have = self.peeked.len();
            self.peeked.resize(n, 0);
            match self.inner.read(&mut self.peeked[have..]) {
                Ok(got) => {
                    self.peeked.truncate(have + got);
                    self.count.fetch_add(got as u64, Ordering::Relaxed);
                    if got == 0 {
                        break;
                    }
                }
                Err(e) => {
                    self.peeked.truncate(have);
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(&self.peeked[..n.min(self.peeked.len())])
    }

    /// The last read of the input returned less than asked for.
    pub(super) fn short(&self) -> bool {
        self.short
    }
}

impl Read for RawInput {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.peeked.get(self.replayed..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.replayed += n;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        self.short = n < buf.len();
        Ok(n)
    }
}

enum Feed {
    /// `read` into the window: each read asks for all the room left in the buffer.
    Read { input: RawInput, read_size: usize },
    /// Whole buffers from the thread that reads ahead.
    Ahead(Ahead),
}

pub(super) struct Window {
    buf: Vec<u8>,
    /// `buf[start..end]`: read, not consumed.
    start: usize,
    end: usize,
    /// Bytes consumed since the beginning of the input (decompressed bytes for gzip).
    consumed: u64,
    exhausted: bool,
    feed: Feed,
}

impl Window {
    /// A window that reads `input` itself, `read_size` bytes at a time at most (more when a record
    /// is larger).
    pub(super) fn reading(input: RawInput, read_size: usize) -> Window {
        Window::new(Feed::Read {
            input,
            read_size: read_size.max(1),
        })
    }

    /// A window over the buffers that `ahead` fills.
    pub(super) fn ahead(ahead: Ahead) -> Window {
        Window::new(Feed::Ahead(ahead))
    }

    fn new(feed: Feed) -> Window {
        Window {
            buf: Vec::new(),
            start: 0,
            end: 0,
            consumed: 0,
            exhausted: false,
            feed,
        }
    }

    /// The bytes read and not consumed yet.
    pub(super) fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.consumed += n as u64;
    }

    /// Bytes consumed since the beginning of the input.
    pub(super) fn position(&self) -> u64 {
        self.consumed
    }

    /// The input has ended (or failed): what `data` holds is all there will be.
    pub(super) fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Reads on, without keeping anything, to see whether the input fails within `limit` more
    /// bytes; gives the failure. Only an input read ahead is looked at (a gzip stream, where a
    /// damaged deflate stream gives garbage before its decoder notices).
    pub(super) fn failure_ahead(&mut self, limit: usize) -> Option<io::Error> {
        let Feed::Ahead(ahead) = &mut self.feed else {
            return None;
        };
        if self.exhausted {
            return None;
        }
        self.exhausted = true;
        let mut seen = 0usize;
        while seen <= limit {
            match ahead.next() {
                Next::Data(chunk, end) => {
                    seen = seen.saturating_add(end.saturating_sub(ahead.headroom()));
                    ahead.recycle(chunk);
                }
                Next::End => return None,
                Next::Failed(e) => return Some(e),
            }
        }
        None
    }

    /// Adds bytes after `data`, `need` more at least if the input has them (one record's worth:
    /// the caller bounds it). `Ok(false)` at the end of the input. Blocks only while the input has
    /// nothing at all to give, so a pipe that delivers slowly is parsed as it comes.
    pub(super) fn refill(&mut self, need: usize) -> io::Result<bool> {
        if self.exhausted {
            return Ok(false);
        }
        let result = match &mut self.feed {
            Feed::Read { input, read_size } => {
                let want = (self.end - self.start).saturating_add(need).max(*read_size);
                make_room(&mut self.buf, &mut self.start, &mut self.end, want);
                loop {
                    match input.read(&mut self.buf[self.end..]) {
                        Ok(n) => {
                            self.end += n;
                            break Ok(n > 0);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => break Err(e),
                    }
                }
            }
            Feed::Ahead(ahead) => match ahead.next() {
                Next::Data(chunk, end) => {
                    let old = take_chunk(
                        &mut self.buf,
                        &mut self.start,
                        &mut self.end,
                        chunk,
                        end,
                        ahead.headroom(),
                    );
                    ahead.recycle(old);
                    Ok(true)
                }
                Next::End => Ok(false),
                Next::Failed(e) => Err(e),
            },
        };
        if !matches!(result, Ok(true)) {
            self.exhausted = true;
        }
        result
    }
}

/// Moves the unconsumed bytes to the front of `buf` and makes it `want` bytes long at least.
/// Called only when the parser needs more than `buf[start..end]`, which is then less than one
/// record: that is all that is ever moved.
fn make_room(buf: &mut Vec<u8>, start: &mut usize, end: &mut usize, want: usize) {
    if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
    if buf.len() < want {
        buf.resize(want, 0);
    }
}

/// Puts a buffer filled ahead (its bytes at `chunk[headroom..end]`) in the window and gives back
/// the buffer to recycle. The unconsumed end of the current buffer (the start of a record cut in
/// two) is copied into the new one's headroom, just before its bytes, so the record is whole
/// there. A record longer than the headroom goes the other way: the new bytes are appended to
/// the current buffer, and the new one is given back at once.
fn take_chunk(
    buf: &mut Vec<u8>,
    start: &mut usize,
    end: &mut usize,
    mut chunk: Vec<u8>,
    chunk_end: usize,
    headroom: usize,
) -> Vec<u8> {
    let tail = *end - *start;
    let bytes = chunk.get(headroom..chunk_end).map_or(0, |b| b.len());
    if tail <= headroom && chunk_end <= chunk.len() {
        chunk[headroom - tail..headroom].copy_from_slice(&buf[*start..*end]);
        *start = headroom - tail;
        *end = chunk_end;
        std::mem::replace(buf, chunk)
    } else {
        make_room(buf, start, end, tail + bytes);
        buf[*end..*end + bytes].copy_from_slice(&chunk[headroom..headroom + bytes]);
        *end += bytes;
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn raw(bytes: &[u8]) -> RawInput {
        RawInput::new(
            Box::new(Cursor::new(bytes.to_vec())),
            Arc::new(AtomicU64::new(0)),
        )
    }

    #[test]
    fn peeked_bytes_are_read_again() {
        let mut r = raw(b"abcdef");
        assert_eq!(r.peek(2).unwrap(), b"ab");
        assert_eq!(r.peek(4).unwrap(), b"abcd");
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"abcdef");
        assert_eq!(r.count.load(Ordering::Relaxed), 6);
        let mut short = raw(b"ab");
        assert_eq!(short.peek(12).unwrap(), b"ab");
    }

    #[test]
    fn reading_window_moves_only_the_unconsumed_tail() {
        let mut w = Window::reading(raw(b"0123456789"), 4);
        assert!(w.refill(1).unwrap());
        assert_eq!(w.data(), b"0123");
        w.consume(3);
        // A "record" of 5 bytes starting at byte 3: the buffer grows to hold it.
        assert!(w.refill(4).unwrap());
        assert_eq!(w.data(), b"34567");
        w.consume(5);
        assert_eq!(w.position(), 8);
        assert!(w.refill(1).unwrap());
        assert_eq!(w.data(), b"89");
        w.consume(2);
        assert!(!w.refill(1).unwrap());
        assert!(w.exhausted());
        assert_eq!((w.data(), w.position()), (&b""[..], 10));
    }

    #[test]
    fn chunk_takes_the_tail_into_its_headroom_or_joins_a_long_record() {
        let (mut buf, mut start, mut end) = (b"xxxxABC".to_vec(), 4, 7);
        let chunk = b"....DEFG".to_vec();
        let old = take_chunk(&mut buf, &mut start, &mut end, chunk, 8, 4);
        assert_eq!(&buf[start..end], b"ABCDEFG");
        assert_eq!(old, b"xxxxABC");
        // The tail is longer than the headroom: the chunk's bytes are appended.
        let (mut buf, mut start, mut end) = (b"xABCDEF".to_vec(), 1, 7);
        let chunk = b"..GH".to_vec();
        let old = take_chunk(&mut buf, &mut start, &mut end, chunk, 4, 2);
        assert_eq!(&buf[start..end], b"ABCDEFGH");
        assert_eq!(old, b"..GH");
    }
}
