//! Fixed-point decimals for evidence text: `Fixed(x, n)` writes what `format!("{x:.n$}")` writes,
//! from the exact binary value of `x`, rounding half to even as `core::fmt` does. Every verdict
//! quotes times this way, and the general float formatter (Grisu, then Dragon when Grisu cannot
//! decide) was a visible share of judging a connection. Values it does not cover (negative, NaN,
//! infinite, 2^53 and above, more than 9 places) go to `core::fmt` unchanged.

use std::fmt;

/// `x` with `places` digits after the point.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub f64, pub usize);

impl Fixed {
    /// Its text, written at the end of `text`; `None` when `x` is not covered.
    pub fn text(self, text: &mut [u8; 32]) -> Option<&str> {
        let Fixed(x, places) = self;
        let (mut whole, mut fraction) = split(x, places)?;
        // 2^53 has 16 digits, then a point and at most 9 places: written from the end, two
        // digits at a time.
        let mut at = text.len();
        if places > 0 {
            let mut left = places;
            while left >= 2 {
                at -= 2;
                text[at..at + 2].copy_from_slice(&DIGITS2[(fraction % 100) as usize]);
                fraction /= 100;
                left -= 2;
            }
            if left == 1 {
                at -= 1;
                text[at] = b'0' + (fraction % 10) as u8;
            }
            at -= 1;
            text[at] = b'.';
        }
        loop {
            if whole < 10 {
                at -= 1;
                text[at] = b'0' + whole as u8;
                break;
            }
            at -= 2;
            text[at..at + 2].copy_from_slice(&DIGITS2[(whole % 100) as usize]);
            if whole < 100 {
                break;
            }
            whole /= 100;
        }
        // Only ASCII digits and a point were written.
        std::str::from_utf8(&text[at..]).ok()
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text(&mut [0; 32]) {
            Some(text) => f.write_str(text),
            None => {
                let Fixed(x, places) = *self;
                write!(f, "{x:.places$}")
            }
        }
    }
}

/// The two digits of every number below 100 (also for the JSON writer, report/json.rs).
pub(crate) const DIGITS2: [[u8; 2]; 100] = {
    let mut table = [[0; 2]; 100];
    let mut n = 0;
    while n < 100 {
        table[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    table
};

/// `x` rounded half to even to `places` digits: its whole part, and the digits after the point as
/// a number. None when `x` is not covered.
fn split(x: f64, places: usize) -> Option<(u64, u64)> {
    const TWO_53: f64 = 9_007_199_254_740_992.0;
    if !(0.0..TWO_53).contains(&x) || x.is_sign_negative() || places > 9 {
        return None;
    }
    // x = mantissa * 2^-shift exactly (x < 2^53, so the exponent is not positive).
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64;
    let fraction_bits = bits & ((1 << 52) - 1);
    let (mantissa, shift) = if exponent == 0 {
        (fraction_bits, 1074)
    } else {
        (fraction_bits | 1 << 52, 1075 - exponent)
    };
    if shift == 0 {
        return Some((mantissa, 0));
    }
    // The mantissa has 53 bits: beyond that shift the whole part is 0. Past 2^-84 (10^9 < 2^30
    // places) less than half of the last place is left.
    if shift >= 84 {
        return Some((0, 0));
    }
    let whole = if shift < 53 { mantissa >> shift } else { 0 };
    let rest = u128::from(mantissa - (whole << shift.min(52)));
    let unit = 10u64.pow(places as u32);
    let n = rest * u128::from(unit);
    let q = (n >> shift) as u64;
    let r = n - (u128::from(q) << shift);
    let half = 1u128 << (shift - 1);
    // The last digit written is the fraction's, or the whole part's when there are no places.
    let last_odd = if places == 0 {
        whole % 2 == 1
    } else {
        q % 2 == 1
    };
    if r > half || (r == half && last_odd) {
        return Some(if q + 1 == unit {
            (whole + 1, 0)
        } else {
            (whole, q + 1)
        });
    }
    Some((whole, q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Ts;

    fn same(x: f64, places: usize) {
        assert_eq!(
            Fixed(x, places).to_string(),
            format!("{x:.places$}"),
            "{x:e} to {places} places"
        );
    }

    #[test]
    fn writes_what_core_fmt_writes() {
        let edges = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.25,
            0.125,
            0.375,
            0.0625,
            0.0005,
            0.0015,
            0.9995,
            0.0078125,
            1704067200.0078125,
            1704067200.001557,
            999.9995,
            9.999_999_5,
            f64::MIN_POSITIVE,
            5e-324,
            1e-7,
            4_503_599_627_370_495.5,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e300,
            -1.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for x in edges {
            for places in [0, 1, 2, 3, 6, 9, 12] {
                same(x, places);
            }
        }
    }

    #[test]
    fn capture_times_and_durations_match_core_fmt() {
        // A deterministic walk over epoch timestamps in nanoseconds and durations in seconds.
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let ts = Ts(1_000_000_000_000_000_000 + (next() % 2_000_000_000_000_000_000) as i64);
            // Evidence writes times as Ts displays them.
            assert_eq!(Fixed(ts.as_secs_f64(), 6).to_string(), ts.to_string());
            let span = (next() % 100_000_000_000_000) as f64 / 1e9;
            same(span, 3);
            same(f64::from_bits(next() >> 2), 3);
        }
    }
}
