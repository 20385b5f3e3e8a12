//! Report stage, JSON text: a `serde` serialiser that writes the compact JSON `serde_json` writes,
//! byte for byte, into a `Vec<u8>`, for a fraction of the work.
//!
//! Every ended connection is serialised once (report/store.rs), and with `serde_json` that was a
//! quarter of the instructions of an `analyze --format json` run: each of a connection's hundred
//! or so member names went through its escape loop a byte at a time and through several writes.
//! Here a string that needs no escaping (nearly every value) is checked eight bytes at a time and
//! copied whole, into room made beforehand and kept by the thread ([`Out`]); the writing of a
//! member is inlined into the `Serialize` implementations, where its name is a constant that is
//! checked when compiled; small integers come from a table, and floats from exact integer
//! arithmetic where it provably gives zmij's digits ([`Decimal`]).
//!
//! The contract is `serde_json::to_writer`'s compact output (serde_json 1.0): the same shapes for
//! every part of serde's data model, the same escapes, and the same numbers: those not written
//! here are written by serde_json's own [`CompactFormatter`]. The tests here, in
//! tests/properties.rs and in tests/json_writer.rs hold it to that, with serde_json as the oracle.

use crate::diagnose::decimal::DIGITS2;
use serde::ser::{self, Impossible, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};
use std::cell::RefCell;
use std::fmt::{self, Display};
use std::io;

/// Appends the JSON text of `value` to `out`. On error, the text written up to it stays.
pub fn to_vec_into<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    ROOM_KEPT.with(|kept| match kept.try_borrow_mut() {
        Ok(mut room) => {
            let written = write(out, value, &mut room);
            if room.len() > KEPT_ROOM {
                *room = Vec::new();
            }
            written
        }
        // Called from a `Serialize` implementation while it is in use: new room for this value.
        Err(_) => write(out, value, &mut Vec::new()),
    })
}

/// `value` written into `room`, then appended to `out`.
fn write<T: ?Sized + Serialize>(
    out: &mut Vec<u8>,
    value: &T,
    room: &mut Vec<u8>,
) -> Result<(), Error> {
    let (end, written) = write_at(room, 0, value);
    out.extend_from_slice(&room[..end]);
    written
}

/// Writes the JSON text of `value` into `room` from `at` on, and returns where the text ends
/// (on error, where the text written up to it ends). `room` is made longer (zeroed) where the
/// text needs it, and is left as it was past the text: for a caller that keeps its text in
/// room of its own, made once, rather than in a vector of the text's length
/// ([`to_vec_into`] writes into room the thread keeps, then copies the text out).
pub fn write_at<T: ?Sized + Serialize>(
    room: &mut Vec<u8>,
    at: usize,
    value: &T,
) -> (usize, Result<(), Error>) {
    let mut text = Out {
        buf: room,
        len: at,
        seconds: Seconds {
            whole: u64::MAX,
            text: [0; 16],
            len: 0,
        },
    };
    let written = value.serialize(Serializer { out: &mut text });
    (text.len, written)
}

/// The JSON text of `value`.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    to_vec_into(&mut out, value)?;
    Ok(out)
}

/// Writes the JSON text of `value` to `out` in one write (nothing when it cannot be serialised).
pub fn to_writer<W: ?Sized + io::Write, T: ?Sized + Serialize>(
    out: &mut W,
    value: &T,
) -> io::Result<()> {
    out.write_all(&to_vec(value)?)
}

/// Why a value could not be serialised: a map key that JSON cannot have, or a `Serialize`
/// implementation that failed.
#[derive(Debug)]
pub struct Error(Box<str>);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string().into())
    }
}

/// serde_json's formatter writes to any `io::Write`; into [`Out`] it never fails.
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error(e.to_string().into())
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

fn float_key_must_be_finite() -> Error {
    Error("float key must be finite".into())
}

/// The text being written: `buf[..len]`. Beyond `len`, `buf` holds room to write into, made as
/// needed (twice as much each time) and kept from value to value ([`ROOM_KEPT`]), and the text is
/// copied out whole when written. Writing into room already there is a bounds check and a store;
/// `Vec::push` and `extend_from_slice` check the capacity and update the length at each write,
/// and call `memcpy` for every string, which cost more than the bytes copied for the short
/// strings JSON members are made of.
struct Out<'v> {
    buf: &'v mut Vec<u8>,
    len: usize,
    seconds: Seconds,
}

/// The whole part of the last float written from 10^8 up, and its text: the timestamps of a
/// connection mostly share their seconds.
struct Seconds {
    whole: u64,
    text: [u8; 16],
    len: usize,
}

/// The least room made at once.
const ROOM: usize = 256;

/// Room kept between values up to this size; a larger one (a connection of many thousand
/// events) is given back.
const KEPT_ROOM: usize = 1 << 20;

thread_local! {
    /// The room a thread writes its values in, made (and zeroed) once rather than for every
    /// connection in the caller's buffer.
    static ROOM_KEPT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Out<'_> {
    /// The next `n` bytes, to write into; [`Out::len`] is moved past what is kept of them.
    #[inline(always)]
    fn room(&mut self, n: usize) -> &mut [u8] {
        // The very checks of the slicing, made first: on the common path the compiler then
        // knows the slicing passes, and on both the bytes are `n`, so writes into them need no
        // checks. Written as "grow if there is no room for n, then slice", the slicing checked
        // again that `len + n` neither wrapped nor went past the end (a few hundred writes a
        // connection), and LLVM did not see that the checks were the same.
        let (start, end) = (self.len, self.len.wrapping_add(n));
        if start <= end && end <= self.buf.len() {
            return &mut self.buf[start..end];
        }
        self.grow(n);
        &mut self.buf[start..end]
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) {
        let made = self.buf.len();
        self.buf.resize(self.len + n.max(made).max(ROOM), 0);
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        copy(self.room(n), bytes);
        self.len += n;
    }

    /// `s` escaped, without the quotes.
    #[inline]
    fn put_contents(&mut self, s: &str) {
        if plain(s.as_bytes()) {
            self.put(s.as_bytes());
        } else {
            self.put_escaped(s);
        }
    }

    /// `s` as a JSON string. Inlined for the short strings most values are (a side, an address,
    /// an error name): checked and copied with the same few loads.
    #[inline(always)]
    fn put_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let n = bytes.len();
        if n > 16 || !plain_short(bytes) {
            self.put_long_str(s);
            return;
        }
        let room = self.room(n + 2);
        room[0] = b'"';
        copy(&mut room[1..], bytes);
        room[n + 1] = b'"';
        self.len += n + 2;
    }

    /// [`Out::put_str`] for a string longer than 16 bytes or with a byte to escape.
    #[inline(never)]
    fn put_long_str(&mut self, s: &str) {
        self.put(b"\"");
        self.put_contents(s);
        self.put(b"\"");
    }

    /// `"name":` with the comma before it unless it is the first member: what every member of
    /// every connection starts with. A member name is a literal of a `Serialize` implementation,
    /// and this is inlined where it is written: the check that it needs no escaping is made on
    /// constant bytes, and done when compiled.
    #[inline(always)]
    fn put_member(&mut self, first: bool, name: &'static str) {
        if !plain(name.as_bytes()) {
            self.put_escaped_member(first, name);
            return;
        }
        let n = name.len();
        let comma = usize::from(!first);
        let room = self.room(n + 4);
        // Overwritten by the quote when there is no comma.
        room[0] = b',';
        room[comma] = b'"';
        let (text, end) = room[comma + 1..].split_at_mut(n);
        copy(text, name.as_bytes());
        end[..2].copy_from_slice(b"\":");
        self.len += comma + n + 3;
    }

    /// [`Out::put_member`] for a name with a byte to escape.
    #[cold]
    #[inline(never)]
    fn put_escaped_member(&mut self, first: bool, name: &'static str) {
        if !first {
            self.put(b",");
        }
        self.put_str(name);
        self.put(b":");
    }

    /// [`Out::put_contents`] for a string with a byte to escape: kept apart, so that the common
    /// case does not pay for its registers.
    #[cold]
    #[inline(never)]
    fn put_escaped(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = s.as_bytes();
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = ESCAPE[b as usize];
            if escape == 0 {
                continue;
            }
            self.put(&bytes[run..i]);
            if escape == b'u' {
                let hex = [HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]];
                self.put(&[b'\\', b'u', b'0', b'0', hex[0], hex[1]]);
            } else {
                self.put(&[b'\\', escape]);
            }
            run = i + 1;
        }
        self.put(&bytes[run..]);
    }

    /// `true` or `false`, in one store.
    #[inline(always)]
    fn put_bool(&mut self, v: bool) {
        let (text, len) = if v {
            (*b"true    ", 4)
        } else {
            (*b"false   ", 5)
        };
        self.room(8).copy_from_slice(&text);
        self.len += len;
    }

    #[inline(always)]
    fn put_null(&mut self) {
        self.room(4).copy_from_slice(b"null");
        self.len += 4;
    }

    /// `n` in decimal: below 100, as nearly every count in a report is, from a table.
    #[inline(always)]
    fn put_u64(&mut self, n: u64) {
        if n >= 100 {
            self.put_u64_long(n);
            return;
        }
        let digits = DIGITS2[n as usize];
        let one = usize::from(n < 10);
        let room = self.room(2);
        // A single digit is written twice, the second time past the end.
        room[0] = digits[one];
        room[1] = digits[1];
        self.len += 2 - one;
    }

    /// [`Out::put_u64`] from 100 up.
    #[inline(never)]
    fn put_u64_long(&mut self, n: u64) {
        if n < POW10[16] {
            let len = put_whole(self.room(16), n);
            self.len += len;
        } else {
            // Writing to `Out` does not fail.
            let _ = CompactFormatter.write_u64(self, n);
        }
    }

    /// `v` (finite) as serde_json writes it: from exact arithmetic where [`Decimal::of`] can
    /// tell, else by zmij through serde_json.
    #[inline]
    fn put_f64(&mut self, v: f64) {
        if let Some((whole, micros)) = Decimal::timestamp(v) {
            self.put_timestamp(whole, micros);
            return;
        }
        match Decimal::of(v) {
            Some(d) => self.put_decimal(d),
            None => self.put_f64_zmij(v),
        }
    }

    /// [`Out::put_decimal`] of a [`Decimal::timestamp`]: ten digits of seconds (from
    /// [`Out::seconds`]), a point, and six places without their trailing zeros, all at places
    /// known when compiled.
    #[inline(always)]
    fn put_timestamp(&mut self, whole: u64, micros: u64) {
        if whole != self.seconds.whole {
            self.seconds.len = put_whole(&mut self.seconds.text, whole);
            self.seconds.whole = whole;
        }
        let seconds = self.seconds.text;
        let digits = digits8(micros * 100);
        let room = self.room(24);
        room[..16].copy_from_slice(&seconds);
        room[10] = b'.';
        room[11..19].copy_from_slice(&(digits + ZEROS).to_be_bytes());
        self.len += 19 - trailing_zero_digits(digits);
    }

    /// [`Out::put_f64`] for the floats [`Decimal::of`] leaves: kept apart, so that the common
    /// case does not save the registers of a call.
    #[cold]
    #[inline(never)]
    fn put_f64_zmij(&mut self, v: f64) {
        // Writing to `Out` does not fail.
        let _ = CompactFormatter.write_f64(self, v);
    }

    /// `d` written eight digits at a time into room for the longest, its fraction's trailing
    /// zeros cut off by the length kept.
    #[inline]
    fn put_decimal(&mut self, d: Decimal) {
        let seconds = if d.whole >= POW10[8] {
            if d.whole != self.seconds.whole {
                self.seconds.len = put_whole(&mut self.seconds.text, d.whole);
                self.seconds.whole = d.whole;
            }
            Some((self.seconds.text, self.seconds.len))
        } else {
            None
        };
        let room = self.room(40);
        room[0] = b'-';
        let mut at = usize::from(d.negative);
        at += match seconds {
            Some((text, len)) => {
                room[at..at + 16].copy_from_slice(&text);
                len
            }
            None => put_whole(&mut room[at..], d.whole),
        };
        room[at] = b'.';
        at += 1;
        at += if d.places == 0 {
            room[at] = b'0';
            1
        } else if d.places == 3 {
            // Milliseconds (durations, round-trip times): from a table.
            let [digits @ .., len] = MILLIS[d.frac as usize % 1000];
            room[at..at + 3].copy_from_slice(&digits);
            usize::from(len)
        } else if d.places <= 8 {
            let digits = digits8(d.frac * POW10[8 - d.places]);
            room[at..at + 8].copy_from_slice(&(digits + ZEROS).to_be_bytes());
            8 - trailing_zero_digits(digits)
        } else {
            let all = d.frac * POW10[16 - d.places];
            let (high, low) = (digits8(all / POW10[8]), digits8(all % POW10[8]));
            room[at..at + 8].copy_from_slice(&(high + ZEROS).to_be_bytes());
            room[at + 8..at + 16].copy_from_slice(&(low + ZEROS).to_be_bytes());
            if low == 0 {
                8 - trailing_zero_digits(high)
            } else {
                16 - trailing_zero_digits(low)
            }
        };
        self.len += at;
    }

    /// What `value` displays, as a JSON string escaped piece by piece as it is written.
    fn put_display<T: ?Sized + Display>(&mut self, value: &T) -> Result<(), Error> {
        struct Escaping<'a, 'v>(&'a mut Out<'v>);
        impl fmt::Write for Escaping<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0.put_contents(s);
                Ok(())
            }
        }
        self.put(b"\"");
        fmt::write(&mut Escaping(self), format_args!("{value}"))
            .map_err(|_| <Error as ser::Error>::custom("a Display implementation failed"))?;
        self.put(b"\"");
        Ok(())
    }
}

/// For serde_json's [`Formatter`], which writes numbers.
impl io::Write for Out<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.put(bytes);
        Ok(bytes.len())
    }

    #[inline(always)]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copies `from` to the start of `to`, a string of up to 16 bytes with two stores that may
/// overlap rather than a call to `memcpy`.
#[inline(always)]
fn copy(to: &mut [u8], from: &[u8]) {
    let n = from.len();
    match n {
        0 => {}
        1..=3 => {
            to[0] = from[0];
            to[n / 2] = from[n / 2];
            to[n - 1] = from[n - 1];
        }
        4..=7 => {
            to[..4].copy_from_slice(&from[..4]);
            to[n - 4..n].copy_from_slice(&from[n - 4..]);
        }
        8..=16 => {
            to[..8].copy_from_slice(&from[..8]);
            to[n - 8..n].copy_from_slice(&from[n - 8..]);
        }
        _ => to[..n].copy_from_slice(from),
    }
}

/// How a character is escaped in a JSON string, by byte: 0 for none, `u` for `\u00XX`, another
/// letter (or `"`, `\`) for the two-character escape. serde_json's choice: the controls below
/// 0x20, `"` and `\`; not `/`, DEL (0x7f) or anything beyond ASCII.
const ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Non-zero when a byte of `x` is below `n` (`n` at most 0x80): the lowest such byte borrows
/// in the subtraction and keeps its top bit; a byte from 0x80 up has it cleared by `!x`; no byte
/// borrows unless one below it is below `n`.
const fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGH
}

/// Non-zero when one of the eight bytes of `x` needs escaping.
const fn special(x: u64) -> u64 {
    below(x, 0x20) | below(x ^ (ONES * b'"' as u64), 1) | below(x ^ (ONES * b'\\' as u64), 1)
}

/// True when no byte of `s` needs escaping, checked eight bytes at a time; the tail is checked
/// again with the bytes before it (a test, so overlap is harmless).
#[inline(always)]
fn plain(s: &[u8]) -> bool {
    if s.len() <= 16 {
        return plain_short(s);
    }
    let mut hit = s
        .last_chunk::<8>()
        .map_or(0, |last| special(u64::from_le_bytes(*last)));
    let mut rest = s;
    while let Some((word, after)) = rest.split_first_chunk::<8>() {
        hit |= special(u64::from_le_bytes(*word));
        rest = after;
    }
    hit == 0
}

/// [`plain`] for a string of at most 16 bytes (false for a longer one): its first and last
/// bytes, words or halves, which cover it.
#[inline(always)]
fn plain_short(s: &[u8]) -> bool {
    let n = s.len();
    match n {
        0 => true,
        1..=3 => ESCAPE[s[0] as usize] | ESCAPE[s[n / 2] as usize] | ESCAPE[s[n - 1] as usize] == 0,
        4..=7 => {
            let half = |at: usize| {
                let mut h = [0; 4];
                h.copy_from_slice(&s[at..at + 4]);
                u32::from_le_bytes(h) as u64
            };
            special(half(0) | half(n - 4) << 32) == 0
        }
        8..=16 => {
            let word = |at: usize| {
                let mut w = [0; 8];
                w.copy_from_slice(&s[at..at + 8]);
                u64::from_le_bytes(w)
            };
            special(word(0)) | special(word(n - 8)) == 0
        }
        _ => false,
    }
}

/// A finite `f64` as serde_json writes it, found with exact integer arithmetic: `-` if
/// `negative`, `whole`, a point, then the `places` digits of `frac` without their trailing
/// zeros (a `0` when `places` is 0).
///
/// serde_json writes a float with zmij: the shortest decimal that reads back as the float, the
/// one nearest to it among those as short, with a point from 1e-5 up to 1e16 and an exponent
/// beyond. The report's floats are timestamps with microseconds and durations rounded to
/// milliseconds, and for them that decimal is had from the float's bits with a multiplication
/// or two: [`Decimal::of`] finds it where that can be proven, and says `None` where it cannot
/// (the float is then written by zmij through serde_json, as before).
///
/// A float v = m·2^-s (m of 53 bits) stands for every real nearer to it than to its neighbours:
/// the interval of half a unit (2^-s) on either side. The finest decimal grid coarser than that
/// unit, 10^-k with 10^k < 2^s ≤ 10^(k+1), has at most one point in it, and a decimal with
/// fewer digits lies on a coarser grid, so on this one (zmij's own argument, from Schubfach):
/// - a point of the 10^-k grid, or of any coarser one, inside the interval is the only one of
///   the 10^-k grid, and without its trailing zeros it is the shortest decimal;
/// - failing that, the shortest decimals have k+1 places (that grid is finer than the unit, so
///   it has points inside), and the one nearest to v is written.
///
/// No decimal of at most s places is on an end of the interval, (2m ± 1)·2^-(s+1): n·10^-j
/// with j ≤ s equal to it would make n·2^(s+1-j), an even number, equal to (2m ± 1)·5^j, an
/// odd one. So how a reader rounds ties never matters here, and the grids above (k + 1 ≤ s)
/// need no check at the ends.
///
/// Left to zmij: a tie between the two nearest points of the finer grid, a power of two (its
/// interval is narrower below), floats from 2^53 up (shorter decimals end in zeros before the
/// point, and from 1e16 have an exponent) or below 2^-10 (so that products fit a `u128`; and
/// nothing here is below 1e-5, where exponents start), subnormals, and more than 16 places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    whole: u64,
    frac: u64,
    places: usize,
}

/// 10^k for every k a `u64` holds.
const POW10: [u64; 20] = {
    let mut table = [1; 20];
    let mut k = 1;
    while k < 20 {
        table[k] = table[k - 1] * 10;
        k += 1;
    }
    table
};

/// The most fractional bits handled: a fraction (below 2^62) times 10^19 fits a `u128`.
const MAX_FRACTION_BITS: u32 = 62;

/// By number of fractional bits s: the largest k with 10^k < 2^s.
const COARSE_PLACES: [u8; MAX_FRACTION_BITS as usize + 1] = {
    let mut table = [0; MAX_FRACTION_BITS as usize + 1];
    let mut s = 1;
    while s <= MAX_FRACTION_BITS as usize {
        let mut k = 0;
        while POW10[k + 1] < 1 << s {
            k += 1;
        }
        table[s] = k as u8;
        s += 1;
    }
    table
};

/// Fractional bits from which a float is first tried with three places: below 2^13 are the
/// durations, rates and round-trip times, milliseconds or coarser, whose 10^-k grid is much
/// finer (12 places and more) and would leave many zeros to cut.
const THREE_PLACES_FROM: u32 = 40;

/// Fractional bits of a float from 2^30 to 2^31, the seconds since 1970 of 2004 to 2038.
const TIMESTAMP_BITS: u32 = 22;

impl Decimal {
    /// [`Decimal::of`] for a float from 2^30 to 2^31 (the report's timestamps, most of its floats)
    /// that it writes with six places, the first grid it tries for them (10^6 < 2^22 ≤ 10^7):
    /// its whole part (ten digits) and its places. The same steps, for one exponent, in `u64`
    /// arithmetic; `None` where [`Decimal::of`] goes on (a whole number, a seventh place).
    #[inline(always)]
    fn timestamp(v: f64) -> Option<(u64, u64)> {
        // Sign 0 and the exponent of 2^30.
        const HIGH_BITS: u64 = 1023 + 30;
        const MASK: u64 = (1 << TIMESTAMP_BITS) - 1;
        const UNIT: u64 = POW10[6];
        let bits = v.to_bits();
        if bits >> 52 != HIGH_BITS {
            return None;
        }
        let m = bits & ((1 << 52) - 1) | 1 << 52;
        let (whole, rest) = (m >> TIMESTAMP_BITS, m & MASK);
        // Below 2^22 · 10^6 < 2^42.
        let scaled = rest * UNIT;
        let (q, r) = (scaled >> TIMESTAMP_BITS, scaled & MASK);
        if rest == 0 {
            None
        } else if 2 * r < UNIT {
            Some((whole, q))
        } else if (2 << TIMESTAMP_BITS) - 2 * r < UNIT && q + 1 < UNIT {
            Some((whole, q + 1))
        } else {
            None
        }
    }

    /// The decimal serde_json writes for `v`, when exact arithmetic can tell (see [`Decimal`]).
    #[inline]
    fn of(v: f64) -> Option<Decimal> {
        let bits = v.to_bits();
        let negative = bits >> 63 == 1;
        let biased = (bits >> 52) as i32 & 0x7ff;
        let stored = bits & ((1 << 52) - 1);
        let decimal = |whole, frac, places| {
            Some(Decimal {
                negative,
                whole,
                frac,
                places,
            })
        };
        if biased == 0 {
            // ±0.0; subnormals are left to zmij.
            return if stored == 0 { decimal(0, 0, 0) } else { None };
        }
        // |v| = m·2^-s exactly.
        let m = stored | 1 << 52;
        let s = 1075 - biased;
        if s <= 0 {
            return if s == 0 { decimal(m, 0, 0) } else { None };
        }
        if s > MAX_FRACTION_BITS as i32 {
            return None;
        }
        let s = s as u32;
        let mask = (1 << s) - 1;
        let whole = m >> s;
        let rest = m & mask;
        if rest == 0 {
            return decimal(whole, 0, 0);
        }
        if stored == 0 {
            return None;
        }
        // The point of the 10^-places grid just below v·10^places, q, and the distance r from it,
        // in units of 2^-s/10^places: twice the distance from v to q/10^places is 2r, to
        // (q+1)/10^places it is 2(2^s - r), and the interval is 10^places wide.
        let split = |places: usize| {
            let scaled = u128::from(rest) * u128::from(POW10[places]);
            ((scaled >> s) as u64, scaled as u64 & mask)
        };
        if s >= THREE_PLACES_FROM {
            let (q, r) = split(3);
            if 2 * r < 1000 {
                return decimal(whole, q, 3);
            }
            if (2 << s) - 2 * r < 1000 && q + 1 < 1000 {
                return decimal(whole, q + 1, 3);
            }
        }
        let places = usize::from(COARSE_PLACES[s as usize]);
        let unit = POW10[places];
        let (q, r) = split(places);
        let (frac, places) = if 2 * r < unit {
            (q, places)
        } else if (2 << s) - 2 * r < unit {
            (q + 1, places)
        } else {
            // The next grid: the point nearest to v.
            let places = places + 1;
            let (q, r) = split(places);
            let frac = match r.cmp(&(1 << (s - 1))) {
                std::cmp::Ordering::Less => q,
                std::cmp::Ordering::Greater => q + 1,
                std::cmp::Ordering::Equal => return None,
            };
            (frac, places)
        };
        // A fraction of 10^places would make v a whole number, which it is not: kept as a guard.
        if places > 16 || frac >= POW10[places] {
            return None;
        }
        decimal(whole, frac, places)
    }
}

/// Eight `'0'`s.
const ZEROS: u64 = ONES * b'0' as u64;

/// The eight decimal digits of `n` (below 10^8) as bytes 0 to 9, the first digit in the top
/// byte: the quotient and remainder by 10^4 into the two halves, then by 100 and by 10 in
/// every half at once, each a multiplication by a reciprocal (Xiang JunBo's, as zmij does).
#[inline(always)]
fn digits8(n: u64) -> u64 {
    const DIV10K_SIG: u64 = (1 << 40) / 10_000 + 1;
    const DIV100_SIG: u64 = (1 << 19) / 100 + 1;
    const DIV10_SIG: u64 = (1 << 10) / 10 + 1;
    let abcd_efgh = n + ((1 << 32) - 10_000) * ((n * DIV10K_SIG) >> 40);
    let ab_cd_ef_gh =
        abcd_efgh + ((1 << 16) - 100) * (((abcd_efgh * DIV100_SIG) >> 19) & 0x7f_0000_007f);
    ab_cd_ef_gh + ((1 << 8) - 10) * (((ab_cd_ef_gh * DIV10_SIG) >> 10) & 0x000f_000f_000f_000f)
}

/// How many of the last digits of [`digits8`]'s result are zeros (8 for 0).
#[inline(always)]
fn trailing_zero_digits(digits: u64) -> usize {
    (digits.trailing_zeros() / 8) as usize
}

/// Every fraction of three places: its digits, and how many are kept without trailing zeros.
const MILLIS: [[u8; 4]; 1000] = {
    let mut table = [[0; 4]; 1000];
    let mut n = 0;
    while n < 1000 {
        let digits = [(n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8];
        let mut len = 3;
        while len > 1 && digits[len - 1] == 0 {
            len -= 1;
        }
        table[n] = [
            b'0' + digits[0],
            b'0' + digits[1],
            b'0' + digits[2],
            len as u8,
        ];
        n += 1;
    }
    table
};

/// Writes `n` (below 10^16) in decimal at the start of `to` (at least 16 bytes, of which the
/// bytes past the number may be overwritten); returns the length of the number.
#[inline(always)]
fn put_whole(to: &mut [u8], n: u64) -> usize {
    if n < 10 {
        to[0] = b'0' + n as u8;
        return 1;
    }
    if n < POW10[8] {
        return put_leading(to, n);
    }
    let high = n / POW10[8];
    let len = if high < 10 {
        to[0] = b'0' + high as u8;
        1
    } else if high < 100 {
        // Timestamps: ten digits.
        to[..2].copy_from_slice(&DIGITS2[high as usize]);
        2
    } else {
        put_leading(to, high)
    };
    to[len..len + 8].copy_from_slice(&(digits8(n % POW10[8]) + ZEROS).to_be_bytes());
    len + 8
}

/// Writes `n` (from 1 to 10^8 - 1) without leading zeros at the start of `to`, eight bytes
/// in all; returns the length of the number.
#[inline(always)]
fn put_leading(to: &mut [u8], n: u64) -> usize {
    let digits = digits8(n);
    let zeros = (digits.leading_zeros() / 8) as usize;
    to[..8].copy_from_slice(&((digits + ZEROS) << (8 * zeros)).to_be_bytes());
    8 - zeros
}

/// The serialiser: values written to an [`Out`].
struct Serializer<'a, 'v> {
    out: &'a mut Out<'v>,
}

/// Whether a sequence or map has had a member yet; `Empty` when it was closed at once because
/// its length was given as 0 (as serde_json does).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    First,
    Rest,
}

/// An array or object being written.
struct Compound<'a, 'v> {
    out: &'a mut Out<'v>,
    state: State,
}

impl<'a, 'v> Compound<'a, 'v> {
    /// `[` or `{`, closed at once by `close` when there will be no member.
    #[inline]
    fn open(out: &'a mut Out<'v>, open: u8, close: u8, len: Option<usize>) -> Compound<'a, 'v> {
        let state = if len == Some(0) {
            out.put(&[open, close]);
            State::Empty
        } else {
            out.put(&[open]);
            State::First
        };
        Compound { out, state }
    }

    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        if self.state != State::First {
            self.out.put(b",");
        }
        self.state = State::Rest;
        value.serialize(Serializer { out: self.out })
    }

    #[inline(always)]
    fn field<T: ?Sized + Serialize>(&mut self, name: &'static str, value: &T) -> Result<(), Error> {
        self.out.put_member(self.state == State::First, name);
        self.state = State::Rest;
        value.serialize(Serializer { out: self.out })
    }

    #[inline]
    fn close(&mut self, close: u8) {
        if self.state != State::Empty {
            self.out.put(&[close]);
        }
    }
}

impl<'a, 'v> Serializer<'a, 'v> {
    /// `{"variant":`, the opening of an enum variant that carries data.
    fn variant(self, variant: &'static str) -> Serializer<'a, 'v> {
        self.out.put(b"{");
        self.out.put_member(true, variant);
        self
    }
}

impl<'a, 'v> ser::Serializer for Serializer<'a, 'v> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'v>;
    type SerializeTuple = Compound<'a, 'v>;
    type SerializeTupleStruct = Compound<'a, 'v>;
    type SerializeTupleVariant = Compound<'a, 'v>;
    type SerializeMap = Compound<'a, 'v>;
    type SerializeStruct = Compound<'a, 'v>;
    type SerializeStructVariant = Compound<'a, 'v>;

    #[inline(always)]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.put_bool(v);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        Ok(CompactFormatter.write_i8(self.out, v)?)
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        Ok(CompactFormatter.write_i16(self.out, v)?)
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        Ok(CompactFormatter.write_i32(self.out, v)?)
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        Ok(CompactFormatter.write_i64(self.out, v)?)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        Ok(CompactFormatter.write_i128(self.out, v)?)
    }

    #[inline(always)]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.out.put_u64(v.into());
        Ok(())
    }

    #[inline(always)]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.out.put_u64(v.into());
        Ok(())
    }

    #[inline(always)]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.out.put_u64(v.into());
        Ok(())
    }

    #[inline(always)]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.out.put_u64(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        Ok(CompactFormatter.write_u128(self.out, v)?)
    }

    /// NaN and the infinities are `null`, as serde_json writes them.
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return self.serialize_unit();
        }
        Ok(CompactFormatter.write_f32(self.out, v)?)
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return self.serialize_unit();
        }
        self.out.put_f64(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    #[inline(always)]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.out.put_str(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        Ok(CompactFormatter.write_byte_array(self.out, v)?)
    }

    #[inline(always)]
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    #[inline(always)]
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.put_null();
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let ser = self.variant(variant);
        value.serialize(Serializer { out: &mut *ser.out })?;
        ser.out.put(b"}");
        Ok(())
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, 'v>, Error> {
        Ok(Compound::open(self.out, b'[', b']', len))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'v>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'v>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'v>, Error> {
        self.variant(variant).serialize_seq(Some(len))
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, 'v>, Error> {
        Ok(Compound::open(self.out, b'{', b'}', len))
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, 'v>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'v>, Error> {
        self.variant(variant).serialize_map(Some(len))
    }

    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result<(), Error> {
        self.out.put_display(value)
    }
}

/// Sequences, tuples and tuple structs are all JSON arrays.
macro_rules! array_like {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            #[inline]
            fn end(mut self) -> Result<(), Error> {
                self.close(b']');
                Ok(())
            }
        }
    )*};
}

array_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    #[inline]
    fn end(mut self) -> Result<(), Error> {
        self.close(b']');
        self.out.put(b"}");
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        if self.state != State::First {
            self.out.put(b",");
        }
        self.state = State::Rest;
        key.serialize(MapKey { out: self.out })
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.out.put(b":");
        value.serialize(Serializer { out: self.out })
    }

    #[inline]
    fn end(mut self) -> Result<(), Error> {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    /// Inlined into the `Serialize` implementations: there is one call for each member of each
    /// connection, and the call cost more than writing the name.
    #[inline(always)]
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(name, value)
    }

    #[inline]
    fn end(mut self) -> Result<(), Error> {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(name, value)
    }

    #[inline]
    fn end(mut self) -> Result<(), Error> {
        self.close(b'}');
        self.out.put(b"}");
        Ok(())
    }
}

/// A map key: JSON keys are strings, so numbers and booleans are written between quotes, and
/// anything else is an error (serde_json's rules).
struct MapKey<'a, 'v> {
    out: &'a mut Out<'v>,
}

impl MapKey<'_, '_> {
    /// `"`, what `write` writes, `"`.
    fn quoted(self, write: impl FnOnce(&mut Out<'_>) -> io::Result<()>) -> Result<(), Error> {
        self.out.put(b"\"");
        write(self.out)?;
        self.out.put(b"\"");
        Ok(())
    }
}

impl ser::Serializer for MapKey<'_, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_bool(out, v))
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i8(out, v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i16(out, v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i32(out, v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i64(out, v))
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i128(out, v))
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u8(out, v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u16(out, v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u32(out, v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u64(out, v))
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u128(out, v))
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.quoted(|out| CompactFormatter.write_f32(out, v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.quoted(|out| CompactFormatter.write_f64(out, v))
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.out.put_str(v);
        Ok(())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result<(), Error> {
        self.out.put_display(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    /// `value` as serde_json writes it (the oracle) and as this writer does.
    fn same<T: ?Sized + Serialize + Debug>(value: &T) {
        let want = serde_json::to_vec(value).expect("serde_json serialises it");
        let got = to_vec(value).expect("serialises");
        assert!(
            got == want,
            "{value:?}:\n  got  {}\n  want {}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    /// Both refuse `value`.
    fn both_refuse<T: ?Sized + Serialize + Debug>(value: &T) {
        assert!(serde_json::to_vec(value).is_err(), "{value:?}: serde_json");
        assert!(to_vec(value).is_err(), "{value:?}");
    }

    #[test]
    fn every_ascii_byte_alone_and_at_every_place_of_short_and_long_strings() {
        let all: String = (0u8..0x80).map(char::from).collect();
        same(&all);
        for b in 0u8..0x80 {
            same(&char::from(b));
            same(&char::from(b).to_string());
            // Every length around the eight-byte words and the four-byte halves, and every place.
            for len in 1..=26 {
                for at in 0..len {
                    let mut s: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    s[at] = b;
                    same(&String::from_utf8(s).expect("ASCII"));
                }
            }
        }
    }

    #[test]
    fn quotes_backslashes_controls_and_multibyte_text() {
        for s in [
            "",
            "\"",
            "\\",
            "\"\"\\\\",
            "a\"b\\c",
            "\\u0041",
            "/slashes/are/not/escaped",
            "\u{7f}",
            "\u{7f}\u{80}\u{9f}",
            "line\nfeed\r\n\ttab\u{8}\u{c}\0",
            "é",
            "日本語のテキスト",
            "🦀 crab \"quoted\" 🦀",
            "\u{2028}\u{2029}",
            "\u{feff}\u{fffd}\u{10ffff}",
            "mixed \u{1} é \u{1f} 日 \\ \" \u{7f} end",
            "192.168.30.140:50078",
            "/grpc.health.v1.Health/Check",
        ] {
            same(s);
            same(&s.repeat(9));
        }
        for c in ['"', '\\', '\n', '\u{1}', '\u{7f}', 'é', '日', '🦀'] {
            same(&c);
        }
    }

    #[test]
    fn the_word_check_agrees_with_the_table_on_every_byte_at_every_place() {
        for len in 0..=20 {
            for at in 0..len.max(1) {
                for b in 0..=255u8 {
                    let mut s = vec![b'x'; len];
                    if len > 0 {
                        s[at] = b;
                    }
                    let want = s.iter().all(|&b| ESCAPE[b as usize] == 0);
                    assert_eq!(plain(&s), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn floats() {
        for x in [
            0.0,
            -0.0,
            0.1,
            0.2 + 0.1,
            1.0,
            -3.0,
            42.0,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e300,
            -1e300,
            5e-324,
            1e-7,
            0.001,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9007199254740993.0,
            1672178578.196826,
            1672178578.0,
            1672178578.000001,
            123.456,
            (0.5f64 * 1000.0).round() / 1000.0,
        ] {
            same(&x);
            same(&Some(x));
            same(&[x, x]);
        }
        for x in [
            0.0f32,
            -0.0,
            0.1,
            1.0,
            16777217.0,
            1e38,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            same(&x);
        }
    }

    #[test]
    fn eight_digits_at_a_time_are_the_decimal_digits() {
        let check = |n: u64| {
            let text = format!("{n:08}");
            let digits = digits8(n);
            assert_eq!((digits + ZEROS).to_be_bytes(), text.as_bytes(), "{n}");
            let zeros = text.bytes().rev().take_while(|&b| b == b'0').count();
            assert_eq!(trailing_zero_digits(digits), zeros, "{n}");
            if n > 0 {
                let mut to = [0; 8];
                let len = put_leading(&mut to, n);
                assert_eq!(&to[..len], n.to_string().as_bytes(), "{n}");
            }
        };
        for n in (0..200_000).chain((0..100_000_000).step_by(9973)) {
            check(n);
        }
        let mut next = crate::testing::xorshift(0xd161_7500_0000_0008);
        for _ in 0..200_000 {
            check(next() % 100_000_000);
        }
        for place in POW10.iter().take(9) {
            for n in [place - 1, *place, place + 1, place * 5, place * 9 + 1] {
                check(n % 100_000_000);
            }
        }
    }

    #[test]
    fn whole_parts_are_written_as_display_writes_them() {
        let mut next = crate::testing::xorshift(0x0077_6801_e000_0016);
        let edges = POW10[..16]
            .iter()
            .flat_map(|&p| [p - 1, p, p + 1, p * 2 - 1])
            .chain([0, 1 << 52, (1 << 53) - 1, 1_704_067_200, 99_999_999_999_999]);
        let random = (0..100_000).map(|_| next() % POW10[16 - (next() % 16) as usize]);
        for n in edges.chain(random).filter(|&n| n < POW10[16]) {
            let mut to = [0; 24];
            let len = put_whole(&mut to, n);
            assert_eq!(&to[..len], n.to_string().as_bytes(), "{n}");
        }
    }

    /// The floats a report has: for them [`Decimal::of`] answers, and what is written is what
    /// serde_json writes (were it to leave them to zmij, the comparisons with serde_json would
    /// only try zmij against itself).
    #[test]
    fn report_floats_are_written_from_exact_arithmetic() {
        use crate::capture::Ts;
        let mut next = crate::testing::xorshift(0x7265_706f_7274_0001);
        let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
        let (mut exact, mut all) = (0, 0);
        for _ in 0..100_000 {
            // Microsecond and millisecond captures, 2001 to 2033.
            let us = 1_000_000_000_000_000 + (next() % 1_000_000_000_000_000) as i64;
            let ts = Ts(us / 1000 * 1000);
            let ms = Ts(us / 1_000_000 * 1_000_000);
            let later = Ts(ts.0 + (next() % 400_000_000_000) as i64 / 1000 * 1000);
            for v in [
                ts.as_secs_f64(),
                ms.as_secs_f64(),
                round3(later.secs_since(ts)),
                ((later.as_secs_f64() - ts.as_secs_f64()) * 1e6).round() / 1e3,
                (next() % 100) as f64 / 100.0,
            ] {
                all += 1;
                if Decimal::of(v).is_some() {
                    exact += 1;
                }
                same(&v);
            }
        }
        // What is left: powers of two (0.5, 0.25, ...), and durations under a millisecond.
        assert!(exact * 100 >= all * 99, "{exact} of {all}");
    }

    #[test]
    fn timestamps_are_the_decimals_exact_arithmetic_finds() {
        use crate::capture::Ts;
        let mut next = crate::testing::xorshift(0x7469_6d65_0000_0030);
        let mut pick = crate::testing::xorshift(0x7469_6d65_0000_0031);
        // Of the timestamps of microsecond captures, how many are written by the fast path.
        let (mut fast, mut all) = (0, 0);
        let low = 2f64.powi(30);
        let high = 2f64.powi(31);
        let edges = [
            low,
            high,
            low.next_up(),
            high.next_down(),
            low + 0.5,
            1_704_067_200.0,
            1_704_067_200.000_001,
            1_704_067_200.999_999,
            -1_704_067_200.5,
        ];
        let random = (0..200_000).flat_map(|_| {
            // 2004 to 2038.
            let ns = 1_073_741_824_000_000_000 + (next() % 1_073_741_823_000_000_000) as i64;
            [
                (Ts(ns / 1000 * 1000).as_secs_f64(), true),
                (Ts(ns).as_secs_f64(), false),
                (
                    f64::from_bits((0x41d0_0000_0000_0000 | next() >> 12) ^ (next() & 1) << 63),
                    false,
                ),
            ]
        });
        for (v, micros) in edges.map(|v| (v, false)).into_iter().chain(random) {
            all += usize::from(micros);
            match Decimal::timestamp(v) {
                Some((whole, frac)) => {
                    fast += usize::from(micros);
                    let want = Decimal {
                        negative: false,
                        whole,
                        frac,
                        places: 6,
                    };
                    assert_eq!(Decimal::of(v), Some(want), "{v}");
                }
                None => assert!(
                    !(low..high).contains(&v)
                        || v.fract() == 0.0
                        || Decimal::of(v).is_none_or(|d| d.places != 6),
                    "{v}"
                ),
            }
            if pick() % 7 == 0 {
                same(&v);
            }
        }
        assert!(fast * 100 >= all * 99, "{fast} of {all}");
    }

    #[test]
    fn what_exact_arithmetic_cannot_decide_is_left_to_zmij() {
        for v in [
            0.5,
            0.25,
            2f64.powi(-9),
            1e-5,
            3e-4,
            5e-324,
            1e16,
            2f64.powi(53),
            1e300,
        ] {
            assert_eq!(Decimal::of(v), None, "{v:e}");
            same(&v);
        }
        // 0.30000000000000004: 17 places.
        assert_eq!(Decimal::of(0.1 + 0.2), None);
    }

    #[test]
    fn integers_at_their_extremes() {
        same(&[i8::MIN, i8::MAX, 0, -1]);
        same(&[i16::MIN, i16::MAX]);
        same(&[i32::MIN, i32::MAX]);
        same(&[i64::MIN, i64::MAX, 0, -1, 10, -10]);
        same(&[i128::MIN, i128::MAX, 0]);
        same(&[u8::MAX, 0]);
        same(&[u16::MAX]);
        same(&[u32::MAX]);
        same(&[u64::MAX, 0, 9, 10, 99, 100]);
        same(&[u128::MAX, 0]);
        same(&[usize::MAX]);
        same(&true);
        same(&false);
    }

    #[derive(Debug, Serialize)]
    struct Unit;

    #[derive(Debug, Serialize)]
    struct Newtype(u32);

    #[derive(Debug, Serialize)]
    struct Pair(i8, &'static str);

    #[derive(Debug, Serialize)]
    struct NoFields {}

    #[derive(Debug, Serialize)]
    enum Shapes {
        Unit,
        Newtype(f64),
        NewtypeOfStruct(Pair),
        Tuple(u8, Option<bool>),
        EmptyTuple(),
        Struct {
            a: u32,
            #[serde(rename = "quote\"d")]
            b: Vec<u8>,
        },
        EmptyStruct {},
        #[serde(rename = "ren\\amed\n")]
        Renamed,
    }

    #[derive(Debug, Serialize)]
    struct Members {
        id: usize,
        name: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<f64>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        flag: bool,
        #[serde(rename = "odd \"member\"\t")]
        odd: (),
        params: Vec<(u16, u32)>,
        nested: Option<Box<Members>>,
        shape: Shapes,
    }

    #[derive(Debug, Serialize)]
    struct OnlySkipped {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
    }

    #[test]
    fn options_units_structs_and_enums_of_every_shape() {
        same(&());
        same(&Unit);
        same(&Newtype(7));
        same(&Pair(-1, "x"));
        same(&NoFields {});
        same(&OnlySkipped { a: None });
        same(&OnlySkipped { a: Some(1) });
        same(&None::<u8>);
        same(&Some(Some(3)));
        same(&Some(None::<u8>));
        let shapes = [
            Shapes::Unit,
            Shapes::Newtype(0.5),
            Shapes::NewtypeOfStruct(Pair(2, "two")),
            Shapes::Tuple(1, None),
            Shapes::Tuple(1, Some(true)),
            Shapes::EmptyTuple(),
            Shapes::Struct {
                a: 1,
                b: vec![1, 2],
            },
            Shapes::EmptyStruct {},
            Shapes::Renamed,
        ];
        for s in &shapes {
            same(s);
        }
        same(&shapes);
        for (i, shape) in shapes.into_iter().enumerate() {
            let inner = Members {
                id: i,
                name: "inner",
                maybe: None,
                flag: false,
                odd: (),
                params: vec![],
                nested: None,
                shape: Shapes::Unit,
            };
            same(&Members {
                id: usize::MAX - i,
                name: "a \"name\"",
                maybe: Some(i as f64 / 3.0),
                flag: i % 2 == 0,
                odd: (),
                params: vec![(3, 256), (4, 65536), (u16::MAX, u32::MAX)],
                nested: Some(Box::new(inner)),
                shape,
            });
        }
    }

    #[test]
    fn empty_and_nested_sequences_and_maps() {
        same(&Vec::<u8>::new());
        same(&Vec::<Vec<u8>>::from([vec![], vec![1], vec![]]));
        same(&BTreeMap::<String, u8>::new());
        same(&(1, "two", 3.0, [4u8; 0], ((),)));
        let mut inner = BTreeMap::new();
        inner.insert("client".to_string(), 1u64);
        inner.insert("ser\"ver".to_string(), 2);
        let mut outer = BTreeMap::new();
        outer.insert("CONTINUATION", inner.clone());
        outer.insert("DATA", BTreeMap::new());
        outer.insert("", inner);
        same(&outer);
        // Lengths unknown in advance: an iterator whose size is not exact.
        same(&Iter((0..5).filter(|n| n % 2 == 0)));
        same(&Iter((0..5).filter(|_| false)));
    }

    /// Serialises an iterator of unknown length (`serialize_seq(None)`).
    #[derive(Debug)]
    struct Iter<I>(I);

    impl<I: Iterator<Item = u8> + Clone> Serialize for Iter<I> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.clone())
        }
    }

    #[test]
    fn map_keys_of_every_kind_serde_json_takes() {
        same(&BTreeMap::from([(-1i8, 'a'), (i8::MAX, 'b')]));
        same(&BTreeMap::from([(i64::MIN, 1), (0, 2)]));
        same(&BTreeMap::from([(u64::MAX, 1), (0, 2)]));
        same(&BTreeMap::from([(i128::MIN, 1)]));
        same(&BTreeMap::from([(u128::MAX, 1)]));
        same(&BTreeMap::from([(false, 1), (true, 2)]));
        same(&BTreeMap::from([('"', 1), ('\n', 2), ('日', 3)]));
        same(&BTreeMap::from([(Newtype(5), 1)]));
        same(&BTreeMap::from([(Some("k"), 1)]));
        same(&BTreeMap::from([(Key::A, 1), (Key::B, 2)]));
        same(&Entries(vec![(0.5, 1), (-0.0, 2), (1e300, 3)]));
        same(&Entries(vec![(0.5f32, 1)]));
    }

    #[test]
    fn map_keys_json_cannot_have_are_errors_in_both() {
        both_refuse(&BTreeMap::from([(vec![1u8], 1)]));
        both_refuse(&BTreeMap::from([(None::<&str>, 1)]));
        both_refuse(&BTreeMap::from([((), 1)]));
        both_refuse(&BTreeMap::from([(Unit, 1)]));
        both_refuse(&BTreeMap::from([((1, 2), 1)]));
        both_refuse(&Entries(vec![(f64::NAN, 1)]));
        both_refuse(&Entries(vec![(f32::INFINITY, 1)]));
        both_refuse(&Entries(vec![(Shapes::Newtype(1.0), 1)]));
        both_refuse(&Entries(vec![(BTreeMap::from([("a", 1)]), 1)]));
    }

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    enum Key {
        A,
        #[serde(rename = "b\"")]
        B,
    }

    impl PartialEq for Unit {
        fn eq(&self, _: &Unit) -> bool {
            true
        }
    }
    impl Eq for Unit {}
    impl PartialOrd for Unit {
        fn partial_cmp(&self, other: &Unit) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Unit {
        fn cmp(&self, _: &Unit) -> std::cmp::Ordering {
            std::cmp::Ordering::Equal
        }
    }
    impl PartialEq for Newtype {
        fn eq(&self, other: &Newtype) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Newtype {}
    impl PartialOrd for Newtype {
        fn partial_cmp(&self, other: &Newtype) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Newtype {
        fn cmp(&self, other: &Newtype) -> std::cmp::Ordering {
            self.0.cmp(&other.0)
        }
    }

    /// A map from keys that are not `Ord` (floats, enums with data).
    #[derive(Debug)]
    struct Entries<K>(Vec<(K, u8)>);

    impl<K: Serialize> Serialize for Entries<K> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    /// Bytes and displayed text: shapes the report model does not use, but serde's data model has.
    #[derive(Debug)]
    struct Special;

    struct Pieces;

    impl Display for Pieces {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a\"b")?;
            writeln!(f, "\\{}", 7)?;
            write!(f, "日\u{1}")
        }
    }

    impl Serialize for Special {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut map = s.serialize_map(Some(3))?;
            map.serialize_entry("bytes", &Bytes(&[0, 1, 255]))?;
            map.serialize_entry("none", &Bytes(&[]))?;
            map.serialize_entry(&Shown, &Shown)?;
            map.end()
        }
    }

    struct Bytes(&'static [u8]);

    impl Serialize for Bytes {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    struct Shown;

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&Pieces)
        }
    }

    #[test]
    fn bytes_and_displayed_text() {
        same(&Special);
        assert_eq!(
            to_vec(&Shown).unwrap(),
            serde_json::to_vec(&Pieces.to_string()).unwrap()
        );
    }

    /// Serialises, as its text, what this writer writes for its inner value: a call made while
    /// the room kept for the thread is in use.
    #[derive(Debug)]
    struct Nested(Vec<u32>);

    impl Serialize for Nested {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let inner = to_vec(&self.0).map_err(ser::Error::custom)?;
            s.serialize_str(&String::from_utf8_lossy(&inner))
        }
    }

    #[test]
    fn values_written_while_another_is_and_after_a_large_one() {
        let nested = [Nested(vec![1, 22, 333]), Nested(vec![])];
        assert_eq!(to_vec(&nested).unwrap(), br#"["[1,22,333]","[]"]"#);
        // Larger than the room kept between values, then small again.
        let large = vec!["x".repeat(1000); 2000];
        same(&large);
        same(&[1u8, 2]);
        same(&large[..3]);
    }

    #[test]
    fn appends_and_writes() {
        let mut out = b"{\"id\":0,".to_vec();
        to_vec_into(&mut out, &"x").unwrap();
        assert_eq!(out, b"{\"id\":0,\"x\"");
        let mut w = Vec::new();
        to_writer(&mut w, &Shapes::Tuple(1, None)).unwrap();
        assert_eq!(w, br#"{"Tuple":[1,null]}"#);
    }

    #[test]
    fn writes_at_a_place_in_room_kept_and_leaves_the_rest() {
        let values: Vec<Vec<String>> = (0..300)
            .map(|i| (0..i % 40).map(|j| format!("{i}/{j}\t")).collect())
            .collect();
        // Room with other bytes in it, as a block of texts reused holds.
        let mut room = vec![b'#'; 100];
        let mut at = 7;
        for v in &values {
            let before = room[..at].to_vec();
            let (end, written) = write_at(&mut room, at, v);
            written.unwrap();
            assert_eq!(&room[at..end], serde_json::to_vec(v).unwrap().as_slice());
            assert_eq!(room[..at], before);
            at = if end > 4000 { 3 } else { end };
        }
    }
}
