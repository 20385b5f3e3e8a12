//! HPACK's Huffman code (RFC 7541 §5.2 and Appendix B), decoding side: header names and values
//! arrive Huffman-coded, and decoding them was the largest single cost of HPACK in the packet loop.
//!
//! The decoder is a state machine that reads four bits at a time (the technique of nghttp2 and h2):
//! a state is an inner node of the code tree, and one table lookup per nibble gives the next node and
//! the symbol completed on the way, if any (codes are at least five bits long, so a nibble completes
//! at most one). The table is generated at compile time from [`CODES`], typed in from Appendix B;
//! building it checks that the codes form a complete prefix code, and that they are canonical, so
//! that most typing mistakes stop the build.
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

/// One transition: the node reached after a nibble, the symbol completed on the way, and flags.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// The nibble completed symbol `sym`.
const EMIT: u8 = 1;
/// The nibble completed EOS.
const FAIL: u8 = 2;
/// The string may end at `next`: the bits since the last symbol are at most 7 ones.
const ACCEPT: u8 = 4;

/// A child in the code tree: an inner node's number, or `LEAF | symbol`.
const LEAF: u16 = 0x8000;
const NONE: u16 = 0xffff;

/// Builds the decoding table from [`CODES`]: 256 inner nodes (a complete prefix code of 257 symbols
/// has 256), 16 nibbles each.
const fn build() -> [[Step; 16]; 256] {
    // Canonical: codes of one length are consecutive in symbol order, and each length's first code
    // follows from the previous length's last (RFC 7541 Appendix B is such a code).
    let mut len = 1;
    let mut next_code: u32 = 0;
    while len <= 30 {
        let mut sym = 0;
        while sym < 257 {
            if CODES[sym].1 as u32 == len {
                assert!(
                    CODES[sym].0 == next_code,
                    "Huffman table: code not canonical"
                );
                next_code += 1;
            }
            sym += 1;
        }
        next_code <<= 1;
        len += 1;
    }

    // The code tree, inner nodes numbered in order of creation (the root is 0).
    let mut children = [[NONE; 2]; 256];
    let mut nodes = 1;
    let mut sym = 0;
    while sym < 257 {
        let (code, len) = CODES[sym];
        assert!(len >= 5 && len <= 30, "Huffman table: code length");
        let mut node = 0;
        let mut depth = len;
        while depth > 1 {
            depth -= 1;
            let bit = ((code >> depth) & 1) as usize;
            if children[node][bit] == NONE {
                assert!(nodes < 256, "Huffman table: too many inner nodes");
                children[node][bit] = nodes as u16;
                nodes += 1;
            }
            assert!(
                children[node][bit] & LEAF == 0,
                "Huffman table: not a prefix code"
            );
            node = children[node][bit] as usize;
        }
        let bit = (code & 1) as usize;
        assert!(
            children[node][bit] == NONE,
            "Huffman table: not a prefix code"
        );
        children[node][bit] = LEAF | sym as u16;
        sym += 1;
    }
    assert!(nodes == 256, "Huffman table: not a complete code");

    // Nodes where a string may end: reached from the root by at most 7 one bits (the root, after
    // zero bits of padding, included).
    let mut accepting = [false; 256];
    let mut node = 0;
    let mut depth = 0;
    loop {
        accepting[node] = true;
        if depth == 7 {
            break;
        }
        let child = children[node][1];
        assert!(child & LEAF == 0, "Huffman table: a short all-ones code");
        node = child as usize;
        depth += 1;
    }

    let mut table = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = Step {
                next: 0,
                sym: 0,
                flags: 0,
            };
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = children[node][(nibble >> bit) & 1];
                assert!(child != NONE, "Huffman table: not a complete code");
                if child & LEAF != 0 {
                    let sym = child & !LEAF;
                    if sym == EOS {
                        step.flags |= FAIL;
                    } else {
                        step.flags |= EMIT;
                        step.sym = sym as u8;
                    }
                    node = 0;
                } else {
                    node = child as usize;
                }
            }
            step.next = node as u8;
            if accepting[node] {
                step.flags |= ACCEPT;
            }
            table[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    table
}

/// Generated at compile time by [`build`] from [`CODES`].
static DECODE: [[Step; 16]; 256] = build();

/// Decodes a Huffman-coded string, appending its octets to `dst`. On error, `dst` holds what was
/// decoded before it.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // Codes are at least 5 bits long.
    dst.reserve(src.len() * 8 / 5);
    let mut state = 0u8;
    let mut flags = ACCEPT;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = DECODE[state as usize][nibble as usize];
            if step.flags & FAIL != 0 {
                return Err(HuffmanError::Eos);
            }
            if step.flags & EMIT != 0 {
                dst.push(step.sym);
            }
            state = step.next;
            flags = step.flags;
        }
    }
    if flags & ACCEPT == 0 {
        return Err(HuffmanError::Padding);
    }
    Ok(())
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

    #[test]
    fn eos_is_refused() {
        // EOS is 30 ones: four octets of ones hold it.
        assert_eq!(decoded(&[0xff; 4]), Err(HuffmanError::Eos));
        let mut s = encode(b"ab");
        s.extend([0xff; 4]);
        assert_eq!(decoded(&s), Err(HuffmanError::Eos));
    }
}
