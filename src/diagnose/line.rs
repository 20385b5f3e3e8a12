//! Evidence lines put together piece by piece with [`evidence!`]: the text `format!` writes with
//! `{}` for every piece (and `{:.n}` for a [`Fixed`]), without the formatting machinery. Every
//! connection judged has a line or more, each quoting a time or two, and `format!` with its nested
//! `Display` calls was most of what writing them cost (1,800 instructions a line).

use super::connection::At;
use super::decimal::Fixed;
use std::fmt::Write;

/// A piece of an evidence line.
pub trait Piece {
    /// Appends what `format!("{}")` writes of it.
    fn put(&self, to: &mut String);
}

/// Room made at once for a line: most are shorter; a longer one grows once or twice.
pub const ROOM: usize = 128;

/// The concatenation of its pieces (each a [`Piece`]), in a new string.
macro_rules! evidence {
    ($($piece:expr),+ $(,)?) => {{
        let mut line = String::with_capacity($crate::diagnose::line::ROOM);
        $($crate::diagnose::line::Piece::put(&$piece, &mut line);)+
        line
    }};
}
pub(crate) use evidence;

impl Piece for &str {
    fn put(&self, to: &mut String) {
        to.push_str(self);
    }
}

impl Piece for String {
    fn put(&self, to: &mut String) {
        to.push_str(self);
    }
}

/// Unsigned integers in decimal.
macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Piece for $t {
            fn put(&self, to: &mut String) {
                put_decimal(to, u64::from(*self));
            }
        }
    )*};
}

unsigned!(u8, u16, u32, u64);

impl Piece for usize {
    fn put(&self, to: &mut String) {
        put_decimal(to, *self as u64);
    }
}

fn put_decimal(to: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    to.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

impl Piece for Fixed {
    fn put(&self, to: &mut String) {
        match self.text(&mut [0; 32]) {
            Some(text) => to.push_str(text),
            // Writing to a string does not fail.
            None => {
                let _ = write!(to, "{self}");
            }
        }
    }
}

impl Piece for At {
    fn put(&self, to: &mut String) {
        self.absolute().put(to);
        to.push_str(" (+");
        self.since_first().put(to);
        to.push_str(" s)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Ts;

    #[test]
    fn pieces_are_written_as_format_writes_them() {
        let mut next = crate::testing::xorshift(0x6c69_6e65_0000_0001);
        for _ in 0..10_000 {
            let n = next() >> (next() % 64);
            let x = f64::from_bits(next() >> 2) * if n % 7 == 0 { -1.0 } else { 1.0 };
            let places = (n % 11) as usize;
            let byte = n as u8;
            let ts = Ts(n as i64 >> 1);
            let first = Ts((n as i64 >> 1) - (next() % 10_000_000_000_000) as i64);
            let at = At::new(ts, first);
            let text = "some \"text\" é";
            let owned = String::from("owned");
            assert_eq!(
                evidence![
                    text,
                    n,
                    " ",
                    byte,
                    (n as usize),
                    owned,
                    Fixed(x, places),
                    at
                ],
                format!(
                    "{text}{n} {byte}{}{owned}{x:.places$}{} (+{:.3} s)",
                    n as usize,
                    ts,
                    ts.secs_since(first)
                )
            );
        }
        assert_eq!(evidence!["", 0u32, u64::MAX], format!("0{}", u64::MAX));
    }
}
