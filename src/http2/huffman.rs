//! HPACK's Huffman code (RFC 7541 §5.2 and Appendix B), decoding side: header names and values
//! arrive Huffman-coded, and decoding them was the largest single cost of HPACK in the packet loop.
//!
//! The decoder reads symbols from a word of buffered bits: one lookup of the next 12 bits gives
//! the one or two symbols whose codes they hold whole (header values are mostly letters, digits and
//! common punctuation, of 5 to 7 bits, so mostly two), and a code longer than 12 bits is found by
//! comparing the next bits with the last code of each length, the code being canonical. On the
//! bench capture, reading two symbols a lookup (into a buffer not zeroed for each string) took 30%
//! fewer instructions than reading one from an 8-bit table, which had taken half those of a 4-bit
//! state machine (nghttp2's and h2's technique, used first); the two-symbol table is the "X2"
//! table of zstd's huff0 decoder, 16 kB.
//! The tables are generated at compile time from [`CODES`], typed in from Appendix B; building
//! them checks that the codes are canonical and form a complete code, so that most typing mistakes
//! stop the build.
//!
//! §5.2: "A padding strictly longer than 7 bits MUST be treated as a decoding error", "A padding
//! not corresponding to the most significant bits of the code for the EOS symbol MUST be treated as
//! a decoding error", and "A Huffman-encoded string literal containing the EOS symbol MUST be
//! treated as a decoding error". All three are errors here.

use std::fmt;

/// RFC 7541 Appendix B: the code of each symbol (right-aligned) and its length in bits, indexed by
/// symbol; 256 is EOS.
#[rustfmt::skip]
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), // 0-3
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), // 4-7
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28), // 8-11
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), // 12-15
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), // 16-19
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), // 20-23
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), // 24-27
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28), // 28-31
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12), // ' ' ! " #
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), // $ % & '
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), // ( ) * +
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), // , - . /
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), // 0 1 2 3
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), // 4 5 6 7
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), // 8 9 : ;
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), // < = > ?
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7), // @ A B C
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), // D E F G
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), // H I J K
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), // L M N O
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), // P Q R S
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), // T U V W
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13), // X Y Z [
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), // \ ] ^ _
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), // ` a b c
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), // d e f g
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7), // h i j k
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), // l m n o
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5), // p q r s
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), // t u v w
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), // x y z {
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), // | } ~ 127
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), // 128-131
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), // 132-135
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), // 136-139
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), // 140-143
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), // 144-147
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), // 148-151
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), // 152-155
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), // 156-159
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), // 160-163
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), // 164-167
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), // 168-171
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23), // 172-175
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), // 176-179
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), // 180-183
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), // 184-187
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), // 188-191
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), // 192-195
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), // 196-199
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), // 200-203
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), // 204-207
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27), // 208-211
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), // 212-215
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), // 216-219
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), // 220-223
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), // 224-227
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), // 228-231
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), // 232-235
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), // 236-239
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), // 240-243
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), // 244-247
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27), // 248-251
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), // 252-255
    (0x3fffffff, 30), // EOS
];

const EOS: u16 = 256;

/// Why a Huffman-coded string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The string contains the EOS symbol.
    Eos,
    /// The bits after the last symbol are more than 7, or not all ones (not a prefix of EOS).
    Padding,
}

impl fmt::Display for HuffmanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HuffmanError::Eos => "Huffman string contains EOS",
            HuffmanError::Padding => "Huffman padding longer than 7 bits or not all ones",
        })
    }
}

/// Codes are at most this long (EOS).
const MAX_LEN: usize = 30;
/// Codes at most this long are decoded by one lookup of the next [`FAST_BITS`] bits.
const FAST_BITS: u32 = 8;

/// The decoding tables, built at compile time from [`CODES`] by [`build`].
struct Tables {
    /// By the next 8 bits: the symbol whose code they start with and its length, when the code is
    /// at most 8 bits long (the letters, digits and common punctuation of header values); length
    /// 0 otherwise.
    fast: [(u8, u8); 1 << FAST_BITS],
    /// By code length: one past the last code of that length, as a number of that many bits
    /// (canonical codes of one length are consecutive), and the first code's position in `sorted`
    /// less its value.
    limit: [u32; MAX_LEN + 1],
    base: [i32; MAX_LEN + 1],
    /// The symbols in code order (by length, then symbol).
    sorted: [u16; 257],
}

/// Builds [`Tables`] from [`CODES`], checking that the codes are canonical (codes of one length
/// are consecutive in symbol order, and each length's first code follows from the previous
/// length's last: RFC 7541 Appendix B is such a code) and complete (every bit string starts with a
/// code), so that most typing mistakes stop the build. Canonical and complete, the code is a prefix
/// code, and every 30-bit string starts with exactly one code.
const fn build() -> Tables {
    let mut t = Tables {
        fast: [(0, 0); 1 << FAST_BITS],
        limit: [0; MAX_LEN + 1],
        base: [0; MAX_LEN + 1],
        sorted: [0; 257],
    };
    let mut placed = 0;
    let mut next_code: u32 = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        t.base[len] = placed as i32 - next_code as i32;
        let mut sym = 0;
        while sym < 257 {
            let (code, l) = CODES[sym];
            assert!(
                l >= 5 && l as usize <= MAX_LEN,
                "Huffman table: code length"
            );
            if l as usize == len {
                assert!(code == next_code, "Huffman table: code not canonical");
                t.sorted[placed] = sym as u16;
                placed += 1;
                next_code += 1;
                if len <= FAST_BITS as usize {
                    // Every 8-bit string that starts with this code.
                    let spare = FAST_BITS as usize - len;
                    let mut j = 0;
                    while j < 1 << spare {
                        t.fast[(code as usize) << spare | j] = (sym as u8, len as u8);
                        j += 1;
                    }
                }
            }
            sym += 1;
        }
        t.limit[len] = next_code;
        if len < MAX_LEN {
            next_code <<= 1;
        }
        len += 1;
    }
    // Complete: the last code of the longest length is all ones.
    assert!(
        placed == 257 && next_code == 1 << MAX_LEN,
        "Huffman table: not a complete code"
    );
    t
}

/// Generated at compile time by [`build`] from [`CODES`].
static TABLES: Tables = build();

/// The symbol a window of the next 32 bits (left-aligned) starts with, and its code's length: one
/// lookup for codes of up to 8 bits, else a search of the longer lengths. Bits past the end of the
/// string are zeros; a code longer than the bits left says that they do not complete a symbol.
#[inline]
const fn symbol(window: u32) -> (u16, u32) {
    let t = &TABLES;
    let (sym, len) = t.fast[(window >> (32 - FAST_BITS)) as usize];
    if len != 0 {
        return (sym as u16, len as u32);
    }
    let mut len = FAST_BITS as usize + 1;
    while len < MAX_LEN {
        let code = window >> (32 - len);
        if code < t.limit[len] {
            break;
        }
        len += 1;
    }
    // Canonical and complete: the first length whose limit the window's prefix is under holds
    // its code, and 30 bits always hold one; the bound only guards a table that is not.
    let at = (t.base[len] + (window >> (32 - len)) as i32) as usize;
    let sym = if at < t.sorted.len() {
        t.sorted[at]
    } else {
        EOS
    };
    (sym, len as u32)
}

/// Codes are decoded two at a time from a lookup of the next [`PAIR_BITS`] bits.
const PAIR_BITS: u32 = 12;

/// What the next [`PAIR_BITS`] bits hold whole: `n` symbols (0 when the first code is longer), in
/// `syms` (the second meaningless when `n` is 1), whose codes are `len` bits long together.
#[derive(Clone, Copy)]
struct Pair {
    syms: [u8; 2],
    n: u8,
    len: u8,
}

/// Builds the [`PAIRS`] table with [`symbol`]: for each window, its first code, then the code after
/// it if it ends inside the window too.
const fn build_pairs() -> [Pair; 1 << PAIR_BITS] {
    let mut pairs = [Pair {
        syms: [0, 0],
        n: 0,
        len: 0,
    }; 1 << PAIR_BITS];
    let mut w = 0;
    while w < 1 << PAIR_BITS {
        let window = (w as u32) << (32 - PAIR_BITS);
        let (first, first_len) = symbol(window);
        if first_len <= PAIR_BITS {
            let (second, second_len) = symbol(window << first_len);
            let both = first_len + second_len <= PAIR_BITS;
            pairs[w] = Pair {
                syms: [first as u8, if both { second as u8 } else { 0 }],
                n: if both { 2 } else { 1 },
                len: (if both {
                    first_len + second_len
                } else {
                    first_len
                }) as u8,
            };
        }
        w += 1;
    }
    pairs
}

/// Generated at compile time by [`build_pairs`] from [`TABLES`].
static PAIRS: [Pair; 1 << PAIR_BITS] = build_pairs();

/// The most octets a Huffman-coded string of `len` octets decodes to (codes are at least 5 bits
/// long), and one more: the decoder writes symbols two at a time.
fn room(len: usize) -> usize {
    len.saturating_mul(8) / 5 + 1
}

/// Decodes a Huffman-coded string, appending its octets to `dst`. On error, `dst` holds what was
/// decoded before it.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let start = dst.len();
    // Room for as many symbols as there can be, written in place (pushing each one cost more than
    // decoding it).
    dst.resize(start + room(src.len()), 0);
    let (n, result) = decode_into(src, dst.get_mut(start..).unwrap_or_default());
    dst.truncate(start + n);
    result
}

/// Decodes a Huffman-coded string into `scratch`, which is only grown, never cleared (zeroing room
/// for every string cost a fifth of decoding it): the decoded octets, borrowed from it.
pub fn decode_reusing<'a>(src: &[u8], scratch: &'a mut Vec<u8>) -> Result<&'a [u8], HuffmanError> {
    let need = room(src.len());
    if scratch.len() < need {
        scratch.resize(need, 0);
    }
    let (n, result) = decode_into(src, scratch);
    result.map(|()| scratch.get(..n).unwrap_or_default())
}

/// Decodes `src` into `out`, which has room for every symbol it can hold and one more ([`room`]):
/// how many there were, and whether the string was well formed.
///
/// The bits not yet decoded sit left-aligned in a 64-bit word, topped up eight bytes at a time
/// where the string has them; while it holds 30 bits or more, the longest code, the symbols at its
/// front are complete ([`PAIRS`], else [`symbol`]). The last few bits are decoded only as far as
/// they complete symbols, and the rest is padding.
fn decode_into(src: &[u8], out: &mut [u8]) -> (usize, Result<(), HuffmanError>) {
    let mut n = 0;
    // Both of a pair's octets are written, and the count moves on by the symbols it holds: a
    // second octet that is not a symbol is overwritten by the next (`room` has space for it).
    let put_pair = |n: &mut usize, out: &mut [u8], pair: Pair| {
        if let Some(slot) = out.get_mut(*n..).and_then(|s| s.first_chunk_mut::<2>()) {
            *slot = pair.syms;
        }
        *n += pair.n as usize;
    };
    let put = |n: &mut usize, out: &mut [u8], sym: u16| {
        if let Some(slot) = out.get_mut(*n) {
            *slot = sym as u8;
        }
        *n += 1;
    };
    // Bits beyond `count` are zeros or the first bits of the next byte of `rest` (topping up ORs
    // them in again, in place): a code is judged only by its own bits, and one that needs bits
    // beyond `count` is not complete.
    let mut bits: u64 = 0;
    let mut count: u32 = 0;
    let mut rest = src;
    let result = 'words: loop {
        if let Some(word) = rest.first_chunk::<8>() {
            bits |= u64::from_be_bytes(*word) >> count;
            let whole = (63 - count) / 8;
            rest = rest.get(whole as usize..).unwrap_or_default();
            count += whole * 8;
        } else {
            while count <= 56 {
                let Some((&byte, tail)) = rest.split_first() else {
                    break;
                };
                bits |= (byte as u64) << (56 - count);
                count += 8;
                rest = tail;
            }
        }
        while count >= MAX_LEN as u32 {
            let pair = PAIRS[(bits >> (64 - PAIR_BITS)) as usize];
            if pair.n != 0 {
                put_pair(&mut n, out, pair);
                bits <<= pair.len;
                count -= pair.len as u32;
                continue;
            }
            let (sym, len) = symbol((bits >> 32) as u32);
            if sym == EOS {
                break 'words Err(HuffmanError::Eos);
            }
            put(&mut n, out, sym);
            bits <<= len;
            count -= len;
        }
        if rest.is_empty() {
            break Ok(());
        }
    };
    if result.is_err() {
        return (n, result);
    }
    // Fewer than 30 bits left, so no EOS among them; the bits past them are zeros.
    while count > 0 {
        let pair = PAIRS[(bits >> (64 - PAIR_BITS)) as usize];
        if pair.n != 0 && pair.len as u32 <= count {
            put_pair(&mut n, out, pair);
            bits <<= pair.len;
            count -= pair.len as u32;
            continue;
        }
        let (sym, len) = symbol((bits >> 32) as u32);
        if len > count {
            // The bits left start a code they do not complete.
            break;
        }
        put(&mut n, out, sym);
        bits <<= len;
        count -= len;
    }
    // §5.2: at most 7 bits of padding, the most significant bits of EOS (all ones).
    if count > 7 || (count > 0 && bits >> (64 - count) != (1 << count) - 1) {
        return (n, Err(HuffmanError::Padding));
    }
    (n, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with [`CODES`], padding with ones (§5.2).
    fn encode(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for &b in src {
            let (code, len) = CODES[b as usize];
            acc = (acc << len) | code as u64;
            bits += len as u32;
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) | (0xff >> bits)) as u8);
        }
        out
    }

    fn decoded(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut v = Vec::new();
        decode(src, &mut v).map(|_| v)
    }

    /// RFC 7541 C.4.1 and C.6.1: Huffman-coded strings of the examples.
    #[test]
    fn rfc7541_examples() {
        let cases: [(&[u8], &[u8]); 5] = [
            (
                &[
                    0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
                ],
                b"www.example.com",
            ),
            (&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], b"no-cache"),
            (&[0x64, 0x02], b"302"),
            (&[0xae, 0xc3, 0x77, 0x1a, 0x4b], b"private"),
            (
                &[
                    0x9d, 0x29, 0xad, 0x17, 0x18, 0x63, 0xc7, 0x8f, 0x0b, 0x97, 0xc8, 0xe9, 0xae,
                    0x82, 0xae, 0x43, 0xd3,
                ],
                b"https://www.example.com",
            ),
        ];
        for (coded, plain) in cases {
            assert_eq!(decoded(coded).as_deref(), Ok(plain));
            assert_eq!(encode(plain), coded);
        }
    }

    #[test]
    fn every_symbol_round_trips_alone_and_in_company() {
        for b in 0..=255u8 {
            assert_eq!(decoded(&encode(&[b])), Ok(vec![b]), "symbol {b}");
            let s = [b'a', b, b'/', b, b];
            assert_eq!(decoded(&encode(&s)), Ok(s.to_vec()), "symbol {b}");
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decoded(&encode(&all)), Ok(all));
        assert_eq!(decoded(&[]), Ok(vec![]));
    }

    #[test]
    fn padding_rules_of_5_2() {
        // 'a' is 00011: three bits of padding, all ones, accepted; any zero among them is not.
        assert_eq!(decoded(&[0b0001_1111]), Ok(b"a".to_vec()));
        for bad in [0b0001_1000, 0b0001_1110, 0b0001_1011] {
            assert_eq!(decoded(&[bad]), Err(HuffmanError::Padding), "{bad:08b}");
        }
        // A whole octet of ones after a complete symbol is 8 bits of padding.
        assert_eq!(decoded(&[0xff]), Err(HuffmanError::Padding));
        assert_eq!(
            decoded(&[0b0001_1111, 0xff]),
            Err(HuffmanError::Padding),
            "'a' then 11 bits of ones"
        );
        // '0' (00000) and 'a' (00011), then six bits of ones.
        assert_eq!(decoded(&[0b0000_0000, 0b1111_1111]), Ok(b"0a".to_vec()));
        // Seven bits of ones, the most allowed: five times 'a' is 25 bits.
        let aaaaa = [0b0001_1000, 0b1100_0110, 0b0011_0001, 0b1111_1111];
        assert_eq!(encode(b"aaaaa"), aaaaa);
        assert_eq!(decoded(&aaaaa), Ok(b"aaaaa".to_vec()));
        // Symbol 0 (11111111 11000), then three bits of padding: ones, or zeros.
        assert_eq!(decoded(&[0xff, 0b1100_0111]), Ok(vec![0]));
        assert_eq!(decoded(&[0xff, 0b1100_0000]), Err(HuffmanError::Padding));
        // Sixteen ones: a symbol cut short, or padding far too long.
        assert_eq!(decoded(&[0xff, 0xff]), Err(HuffmanError::Padding));
    }

    /// Decodes bit by bit, looking each prefix up in [`CODES`]: slow, and plainly §5.2.
    fn reference(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        let (mut code, mut len) = (0u32, 0u8);
        for i in 0..src.len() * 8 {
            let bit = (src[i / 8] >> (7 - i % 8)) & 1;
            code = code << 1 | bit as u32;
            len += 1;
            if let Some(sym) = CODES.iter().position(|&c| c == (code, len)) {
                if sym == EOS as usize {
                    return Err(HuffmanError::Eos);
                }
                out.push(sym as u8);
                (code, len) = (0, 0);
            }
        }
        if len > 7 || code != (1 << len) - 1 {
            return Err(HuffmanError::Padding);
        }
        Ok(out)
    }

    /// Random strings, mostly ones (long codes, EOS, padding) or valid codes with a random tail:
    /// the same symbols and the same error as the bit-by-bit reference.
    #[test]
    fn decoding_matches_a_bit_by_bit_reference() {
        let mut next = crate::testing::xorshift(0x4855_4646);
        let mut outcomes = [0; 3];
        for case in 0..30_000 {
            let len = (next() % 12) as usize;
            let mut src: Vec<u8> = match case % 3 {
                0 if case % 2 == 0 => (0..len).map(|_| next() as u8 | next() as u8).collect(),
                0 => {
                    // EOS after a few symbols, most of the time.
                    let plain: Vec<u8> = (0..len % 4).map(|_| next() as u8).collect();
                    let mut src = encode(&plain);
                    src.extend([0xff; 4]);
                    src
                }
                1 => (0..len).map(|_| next() as u8).collect(),
                _ => {
                    let plain: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    encode(&plain)
                }
            };
            if case % 5 == 0 {
                src.extend((0..next() % 5).map(|_| !(next() as u8 & next() as u8)));
            }
            let got = decoded(&src);
            assert_eq!(got, reference(&src), "{src:02x?}");
            outcomes[match got {
                Ok(_) => 0,
                Err(HuffmanError::Eos) => 1,
                Err(HuffmanError::Padding) => 2,
            }] += 1;
        }
        assert!(outcomes.iter().all(|&n| n > 1000), "{outcomes:?}");
    }

    /// Every 12-bit window against Appendix B read bit by bit: the one or two codes it holds whole,
    /// or none when its first code is longer.
    #[test]
    fn pairs_hold_the_codes_the_window_starts_with() {
        let code_at = |window: u32, from: u32| {
            (1..=PAIR_BITS - from).find_map(|len| {
                let code = (window >> (PAIR_BITS - from - len)) & ((1 << len) - 1);
                let sym = CODES.iter().position(|&c| c == (code, len as u8))?;
                Some((sym as u8, len))
            })
        };
        for w in 0..1u32 << PAIR_BITS {
            let pair = PAIRS[w as usize];
            let Some((first, first_len)) = code_at(w, 0) else {
                assert_eq!(pair.n, 0, "{w:012b}");
                continue;
            };
            assert_eq!(pair.syms[0], first, "{w:012b}");
            match code_at(w, first_len) {
                Some((second, second_len)) => {
                    assert_eq!(pair.n, 2, "{w:012b}");
                    assert_eq!(pair.syms[1], second, "{w:012b}");
                    assert_eq!(pair.len as u32, first_len + second_len, "{w:012b}");
                }
                None => {
                    assert_eq!(pair.n, 1, "{w:012b}");
                    assert_eq!(pair.len as u32, first_len, "{w:012b}");
                }
            }
        }
    }

    /// Longer strings than the reference test's (the word-at-a-time path), of short and long codes,
    /// some with a damaged tail, decoded into one scratch buffer that is never cleared: the same
    /// octets and the same error as the bit-by-bit reference, and as `decode`.
    #[test]
    fn decoding_into_a_reused_scratch_matches_the_reference() {
        let mut next = crate::testing::xorshift(0x0053_4352_4154_4348);
        let mut scratch = Vec::new();
        let mut errors = 0;
        for case in 0..5_000 {
            let len = (next() % 200) as usize;
            let plain: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => next() as u8,
                    _ => b"abcdefghijklmnopqrstuvwxyz0123456789/-._ABCXYZ"[(next() % 46) as usize],
                })
                .collect();
            let mut src = encode(&plain);
            if case % 4 == 0 {
                src.extend((0..next() % 6).map(|_| next() as u8 | next() as u8));
            }
            let expected = reference(&src);
            let got = decode_reusing(&src, &mut scratch).map(<[u8]>::to_vec);
            assert_eq!(got, expected, "case {case}: {src:02x?}");
            assert_eq!(decoded(&src), expected, "case {case}");
            if case % 4 != 0 {
                assert_eq!(got.as_deref(), Ok(&plain[..]), "case {case}");
            }
            errors += got.is_err() as usize;
        }
        assert!(errors > 300, "{errors}");
    }

    #[test]
    fn eos_is_refused() {
        // EOS is 30 ones: four octets of ones hold it.
        assert_eq!(decoded(&[0xff; 4]), Err(HuffmanError::Eos));
        let mut s = encode(b"ab");
        s.extend([0xff; 4]);
        assert_eq!(decoded(&s), Err(HuffmanError::Eos));
    }
}
