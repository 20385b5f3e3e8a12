//! Our HPACK decoder (src/http2/hpack.rs, huffman.rs) checked against an independent implementation,
//! `httlib-hpack` and `httlib-huffman`, the crates h2keepalive used before: random header lists and
//! strings encoded by httlib's encoders are decoded by both, which must agree. A seeded generator
//! (as in tests/properties.rs), so failures reproduce.

mod util;

use h2keepalive::http2::hpack::{BlockDecoder, Field, Trouble};
use h2keepalive::http2::huffman::{self, HuffmanError};
use httlib_hpack::{Decoder, Encoder};
use httlib_huffman::DecoderSpeed;
use util::Rng;

/// Bytes of one of three kinds: any octet, printable ASCII, or the characters of paths and tokens
/// (short Huffman codes).
fn string(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = rng.below(max + 1);
    match rng.below(3) {
        0 => rng.bytes(len),
        1 => (0..len).map(|_| 0x20 + rng.below(95) as u8).collect(),
        _ => {
            let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789/-._";
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        }
    }
}

fn httlib_huffman_decode(src: &[u8]) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    httlib_huffman::decode(src, &mut v, DecoderSpeed::FourBits).ok()?;
    Some(v)
}

fn ours(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
    let mut v = Vec::new();
    huffman::decode(src, &mut v).map(|_| v)
}

#[test]
fn huffman_decoding_matches_httlib_on_its_encodings() {
    let mut rng = Rng(0x5eed_0001);
    for case in 0..20_000 {
        let s = string(&mut rng, if case % 10 == 0 { 600 } else { 40 });
        let mut coded = Vec::new();
        httlib_huffman::encode(&s, &mut coded).unwrap();
        assert_eq!(ours(&coded), Ok(s.clone()), "case {case}: {coded:02x?}");
        assert_eq!(httlib_huffman_decode(&coded), Some(s), "case {case}");
    }
}

/// On arbitrary bytes both decoders accept or refuse alike, except for padding: RFC 7541 §5.2 wants
/// at most 7 bits, all ones, and httlib accepts padding bits that are zeros, then ones (`[0x13]`,
/// '2' then 011, is "2" to httlib). Every disagreement must be of that kind, and where both decode,
/// they decode alike.
#[test]
fn huffman_on_arbitrary_bytes_agrees_with_httlib_but_for_padding_with_zeros() {
    let mut rng = Rng(0x5eed_0002);
    let mut padding_with_zeros = 0;
    for case in 0..200_000 {
        let len = 1 + rng.below(8);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match (ours(&bytes), httlib_huffman_decode(&bytes)) {
            (Ok(x), Some(y)) => assert_eq!(x, y, "case {case}: {bytes:02x?}"),
            (Err(_), None) => {}
            (Ok(x), None) => panic!("case {case}: {bytes:02x?} is {x:02x?} to us only"),
            (Err(e), Some(y)) => {
                assert_eq!(e, HuffmanError::Padding, "case {case}: {bytes:02x?}");
                // The same symbols coded properly differ only in padding bits, where they have ones
                // and the input has some zeros.
                let mut proper = Vec::new();
                httlib_huffman::encode(&y, &mut proper).unwrap();
                let n = bytes.len() - 1;
                assert_eq!(proper.len(), bytes.len(), "case {case}: {bytes:02x?}");
                assert_eq!(proper[..n], bytes[..n], "case {case}");
                assert!(
                    bytes[n] & proper[n] == bytes[n] && bytes[n] != proper[n],
                    "case {case}: {bytes:02x?}"
                );
                padding_with_zeros += 1;
            }
        }
    }
    assert!(padding_with_zeros > 0);
}

/// A header field to encode: name, value, httlib encoder flags.
type Input = (Vec<u8>, Vec<u8>, u8);

fn random_field(rng: &mut Rng) -> Input {
    const NAMES: [&[u8]; 12] = [
        b":method",
        b":path",
        b":authority",
        b":status",
        b"content-type",
        b"grpc-status",
        b"grpc-message",
        b"user-agent",
        b"te",
        b"grpc-timeout",
        b"x-request-id",
        b"cookie",
    ];
    let name = match rng.below(4) {
        0 => string(rng, 20),
        _ => NAMES[rng.below(NAMES.len())].to_vec(),
    };
    let value = match rng.below(10) {
        0 => string(rng, 2000),
        1 => Vec::new(),
        2 => b"GET".to_vec(),
        3 => b"application/grpc".to_vec(),
        _ => string(rng, 60),
    };
    let flags = [
        Encoder::HUFFMAN_NAME,
        Encoder::HUFFMAN_VALUE,
        Encoder::WITH_INDEXING,
        Encoder::NEVER_INDEXED,
        Encoder::BEST_FORMAT,
    ]
    .into_iter()
    .filter(|_| rng.below(2) == 0)
    .fold(0, |a, f| a | f);
    // With indexing and never indexed exclude each other.
    let flags = if flags & Encoder::WITH_INDEXING != 0 {
        flags & !Encoder::NEVER_INDEXED
    } else {
        flags
    };
    (name, value, flags)
}

/// Connections of random header blocks, with size updates that evict: every block decodes without
/// trouble, to the fields encoded and to what httlib decodes, and the kept fields are their last
/// values, cut to 1024 bytes. (A table that kept more entries than it should would pass: encoders
/// never reference evicted entries. The Appendix C tests in hpack.rs check table sizes exactly.)
#[test]
fn block_decoding_matches_httlib() {
    let mut rng = Rng(0x5eed_0003);
    let mut fields_seen = 0;
    for conn in 0..150 {
        let mut encoder = Encoder::with_dynamic_size(4096);
        let mut oracle = Decoder::with_dynamic_size(4096);
        oracle.set_max_dynamic_size(64 * 1024);
        let mut each = BlockDecoder::new(true);
        let mut kept = BlockDecoder::new(true);
        for n in 0..40 {
            let mut block = Vec::new();
            if rng.below(8) == 0 {
                let size = [0, 100, 256, 1024, 4096, 10_000][rng.below(6)];
                encoder.update_max_dynamic_size(size, &mut block).unwrap();
            }
            let mut inputs: Vec<Input> = Vec::new();
            for _ in 0..rng.below(12) {
                let field = random_field(&mut rng);
                if rng.below(10) == 0 {
                    // A static entry by index (2 is :method GET, 8 is :status 200, ...).
                    let index = 1 + rng.below(61) as u32;
                    encoder.encode(index, &mut block).unwrap();
                } else if encoder.encode(field.clone(), &mut block).is_ok() {
                    inputs.push(field);
                }
            }
            let context = format!("connection {conn} block {n}: {block:02x?}");
            let mut expected = Vec::new();
            oracle.decode(&mut block.clone(), &mut expected).unwrap();
            let expected: Vec<(Vec<u8>, Vec<u8>)> =
                expected.into_iter().map(|(n, v, _)| (n, v)).collect();
            let mut got = Vec::new();
            let trouble = each.decode_each(&block, |n, v| got.push((n.to_vec(), v.to_vec())));
            assert_eq!(trouble, Trouble::default(), "{context}");
            assert_eq!(got, expected, "{context}");
            for (name, value, _) in &inputs {
                assert!(
                    got.iter().any(|(n, v)| n == name && v == value),
                    "{context}"
                );
            }
            fields_seen += got.len();

            let (fields, trouble) = kept.decode(&block);
            assert_eq!(trouble, Trouble::default(), "{context}");
            for (field, name) in [
                (Field::Method, &b":method"[..]),
                (Field::Path, b":path"),
                (Field::Authority, b":authority"),
                (Field::Status, b":status"),
                (Field::ContentType, b"content-type"),
                (Field::GrpcStatus, b"grpc-status"),
                (Field::GrpcMessage, b"grpc-message"),
            ] {
                let last = got
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| &v[..v.len().min(1024)]);
                assert_eq!(fields.get(field), last, "{context}");
            }
        }
    }
    assert!(fields_seen > 10_000, "{fields_seen}");
}
