//! HPACK glue between header blocks from the wire and `httlib-hpack`.
//!
//! `httlib-hpack` 0.1.3 decodes correctly and fast, but indexes past the end of its input on
//! incomplete integers and strings (`[0xff]`, `[0x41]` panic). So capture data never reaches it
//! whole: [`split`] walks a block's structure first (RFC 7541 §5.1 integers, §5.2 string lengths,
//! §6 representations) and the decoder is handed one complete representation at a time.
//!
//! A capture that starts mid-connection has lost the dynamic table's earlier entries. Then a
//! reference to an entry we never saw is an unknown field, and a literal that was indexed with such
//! a name is entered into our table with an empty name, so that later indices still line up.

use httlib_hpack::table::Table;
use httlib_hpack::{Decoder, DecoderError};
use std::ops::Range;

/// Limit `hpack_table_size`: the largest dynamic table we keep per direction. Peers may announce
/// more; a size update beyond it leaves that direction's later blocks partly undecoded.
pub const MAX_TABLE_SIZE: u32 = 64 * 1024;
/// Limit `max_decoded_header_list`: bytes of names and values decoded from one header block
/// (guards against blocks that reference one large table entry thousands of times).
pub const MAX_DECODED_HEADER_LIST: usize = 256 * 1024;
/// Values longer than this are cut when kept.
const MAX_VALUE_KEPT: usize = 1024;
/// §5.1 integers longer than this many octets are rejected, as `httlib-hpack` does.
const MAX_INTEGER_OCTETS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// An integer or string runs past the end of the block.
    Truncated,
    /// An integer longer than the supported size.
    IntegerTooLong,
    /// Index 0 where an index is required (§6.1: "The index value of 0 is not used").
    ZeroIndex,
}

/// One representation of a header block (§6) and the bytes it occupies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rep {
    Indexed {
        index: u32,
    },
    Literal {
        indexing: bool,
        name_index: u32,
        value: Range<usize>,
    },
    SizeUpdate {
        size: u32,
    },
}

/// Reads an integer with an `n`-bit prefix at `pos` (§5.1).
fn integer(block: &[u8], pos: usize, n: u8) -> Result<(u32, usize), HpackError> {
    let first = *block.get(pos).ok_or(HpackError::Truncated)?;
    let mask = ((1u16 << n) - 1) as u8;
    let mut value = (first & mask) as u32;
    if value < mask as u32 {
        return Ok((value, pos + 1));
    }
    let mut shift = 0;
    for i in 1..MAX_INTEGER_OCTETS {
        let b = *block.get(pos + i).ok_or(HpackError::Truncated)?;
        value += ((b & 0x7f) as u32) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((value, pos + i + 1));
        }
    }
    Err(HpackError::IntegerTooLong)
}

/// Reads a string literal at `pos` (§5.2) and returns its whole extent (length prefix included).
fn string(block: &[u8], pos: usize) -> Result<Range<usize>, HpackError> {
    let (len, data) = integer(block, pos, 7)?;
    let end = data
        .checked_add(len as usize)
        .ok_or(HpackError::Truncated)?;
    if end > block.len() {
        return Err(HpackError::Truncated);
    }
    Ok(pos..end)
}

/// Splits a header block into its representations, each with its byte range, checking that every
/// integer and string lies inside the block.
pub fn split(block: &[u8]) -> Result<Vec<(Rep, Range<usize>)>, HpackError> {
    let mut reps = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let b = block[pos];
        let (rep, end) = if b & 0x80 != 0 {
            // §6.1 Indexed Header Field: 1xxxxxxx, 7-bit prefix.
            let (index, end) = integer(block, pos, 7)?;
            if index == 0 {
                return Err(HpackError::ZeroIndex);
            }
            (Rep::Indexed { index }, end)
        } else if b & 0x20 != 0 && b & 0x40 == 0 {
            // §6.3 Dynamic Table Size Update: 001xxxxx, 5-bit prefix.
            let (size, end) = integer(block, pos, 5)?;
            (Rep::SizeUpdate { size }, end)
        } else {
            // §6.2.1 with incremental indexing 01xxxxxx (6-bit prefix); §6.2.2 without indexing
            // 0000xxxx and §6.2.3 never indexed 0001xxxx (4-bit prefix).
            let indexing = b & 0x40 != 0;
            let (name_index, mut next) = integer(block, pos, if indexing { 6 } else { 4 })?;
            if name_index == 0 {
                next = string(block, next)?.end;
            }
            let value = string(block, next)?;
            let end = value.end;
            (
                Rep::Literal {
                    indexing,
                    name_index,
                    value,
                },
                end,
            )
        };
        reps.push((rep, pos..end));
        pos = end;
    }
    Ok(reps)
}

/// The header fields h2keepalive reads from a block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub method: Option<String>,
    pub path: Option<String>,
    pub authority: Option<String>,
    pub status: Option<String>,
    pub content_type: Option<String>,
    pub grpc_status: Option<String>,
    pub grpc_message: Option<String>,
    /// Some fields could not be decoded (unknown table state, damaged block, limit).
    pub incomplete: bool,
}

impl Fields {
    fn set(&mut self, name: &[u8], value: &[u8]) {
        let slot = match name {
            b":method" => &mut self.method,
            b":path" => &mut self.path,
            b":authority" => &mut self.authority,
            b":status" => &mut self.status,
            b"content-type" => &mut self.content_type,
            b"grpc-status" => &mut self.grpc_status,
            b"grpc-message" => &mut self.grpc_message,
            _ => return,
        };
        let value = &value[..value.len().min(MAX_VALUE_KEPT)];
        *slot = Some(String::from_utf8_lossy(value).into_owned());
    }
}

/// What decoding a block ran into, besides the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trouble {
    pub error: Option<String>,
    pub limit: Option<&'static str>,
}

/// The decoding side of one direction of a connection.
pub struct BlockDecoder {
    decoder: Decoder<'static>,
    /// An empty table, to read the static table's entries (RFC 7541 Appendix A) directly.
    statics: Table<'static>,
    static_len: u32,
    /// One representation's bytes for `decoder`, which consumes its input vector.
    rep_bytes: Vec<u8>,
    /// False when the table's earlier entries are unknown (capture started mid-connection, or a
    /// gap or error lost a block). Unknown references are then expected rather than errors.
    known: bool,
}

impl BlockDecoder {
    pub fn new(state_known: bool) -> BlockDecoder {
        let mut decoder = Decoder::with_dynamic_size(4096);
        decoder.set_max_dynamic_size(MAX_TABLE_SIZE);
        let statics = Table::with_dynamic_size(0);
        BlockDecoder {
            decoder,
            static_len: statics.len() as u32,
            statics,
            rep_bytes: Vec::new(),
            known: state_known,
        }
    }

    /// From now on the table's contents are not fully known (a header block was lost).
    pub fn lose_state(&mut self) {
        self.known = false;
    }

    pub fn state_known(&self) -> bool {
        self.known
    }

    pub fn decode(&mut self, block: &[u8]) -> (Fields, Trouble) {
        let mut fields = Fields::default();
        let mut trouble = Trouble::default();
        let reps = match split(block) {
            Ok(r) => r,
            Err(e) => {
                // Representations before the damage changed the table; we cannot tell which, so
                // the table is no longer trusted.
                trouble.error = Some(format!("HPACK block malformed: {e:?}"));
                fields.incomplete = true;
                self.known = false;
                return (fields, trouble);
            }
        };
        let mut decoded_bytes = 0usize;
        let mut out = Vec::with_capacity(1);
        for (rep, range) in reps {
            if let Rep::SizeUpdate { size } = rep {
                if size > MAX_TABLE_SIZE {
                    trouble.limit = Some("hpack_table_size");
                    self.known = false;
                    fields.incomplete = true;
                    continue;
                }
            }
            // Indexed fields and literals without indexing change nothing in the table: past the
            // limit they are skipped, not decoded. (A literal that reuses a large entry's name costs
            // as much as an indexed field.)
            if decoded_bytes > MAX_DECODED_HEADER_LIST
                && matches!(
                    rep,
                    Rep::Indexed { .. }
                        | Rep::Literal {
                            indexing: false,
                            ..
                        }
                )
            {
                trouble.limit = Some("max_decoded_header_list");
                fields.incomplete = true;
                continue;
            }
            // A static-table field changes no state: read directly, not copied out by the decoder
            // (on gRPC traffic most fields are; HPACK was a third of the packet loop in perf).
            if let Rep::Indexed { index } = rep {
                if index <= self.static_len {
                    if let Some((name, value)) = self.statics.get(index) {
                        decoded_bytes += name.len() + value.len();
                        fields.set(name, value);
                        continue;
                    }
                }
            }
            let bytes = &mut self.rep_bytes;
            bytes.clear();
            bytes.extend_from_slice(&block[range.clone()]);
            out.clear();
            match self.decoder.decode(bytes, &mut out) {
                Ok(_) => {}
                Err(DecoderError::InvalidIndex) => {
                    fields.incomplete = true;
                    if self.known {
                        trouble.error = Some("HPACK index outside the table".to_string());
                    }
                    if let Rep::Literal {
                        indexing, value, ..
                    } = &rep
                    {
                        // The name is unknown but the value is not; an indexed literal still took a
                        // table slot, so it is entered under an empty name.
                        let mut synthetic = vec![if *indexing { 0x40 } else { 0x00 }, 0x00];
                        synthetic.extend_from_slice(&block[value.clone()]);
                        let _ = self.decoder.decode(&mut synthetic, &mut out);
                    }
                    continue;
                }
                Err(e) => {
                    fields.incomplete = true;
                    trouble.error = Some(format!("HPACK decoding failed: {e}"));
                    if matches!(
                        rep,
                        Rep::Literal { indexing: true, .. } | Rep::SizeUpdate { .. }
                    ) {
                        self.known = false;
                    }
                    continue;
                }
            }
            for (name, value, _) in &out {
                decoded_bytes += name.len() + value.len();
                fields.set(name, value);
            }
        }
        (fields, trouble)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc7541_c1_integers() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; C.1.3: 42 at an octet boundary.
        assert_eq!(integer(&[0x0a], 0, 5), Ok((10, 1)));
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], 0, 5), Ok((1337, 3)));
        assert_eq!(integer(&[0x2a], 0, 8), Ok((42, 1)));
        assert_eq!(integer(&[0x1f, 0x9a], 0, 5), Err(HpackError::Truncated));
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x01], 0, 5),
            Err(HpackError::IntegerTooLong)
        );
    }

    #[test]
    fn what_panics_httlib_is_refused_here() {
        for bad in [
            &[0xffu8][..],
            &[0x41],
            &[0x40],
            &[0x40, 0x05, b'a'],
            &[0x00, 0x81],
            &[0x80],
        ] {
            assert!(split(bad).is_err(), "{bad:?}");
            let (f, t) = BlockDecoder::new(true).decode(bad);
            assert!(f.incomplete && t.error.is_some());
        }
    }

    /// RFC 7541 C.3: three requests without Huffman coding, sharing one dynamic table.
    #[test]
    fn rfc7541_c3_requests() {
        let mut d = BlockDecoder::new(true);
        let (f, t) = d.decode(&hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
        assert_eq!(t, Trouble::default());
        assert_eq!(f.method.as_deref(), Some("GET"));
        assert_eq!(f.path.as_deref(), Some("/"));
        assert_eq!(f.authority.as_deref(), Some("www.example.com"));
        let (f, _) = d.decode(&hex("8286 84be 5808 6e6f 2d63 6163 6865"));
        assert_eq!(
            f.authority.as_deref(),
            Some("www.example.com"),
            "from the dynamic table"
        );
        let (f, t) = d.decode(&hex(
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ));
        assert_eq!(
            (f.path.as_deref(), f.incomplete, t.error),
            (Some("/index.html"), false, None)
        );
        assert_eq!(f.authority.as_deref(), Some("www.example.com"));
    }

    /// RFC 7541 C.4: the same requests with Huffman coding.
    #[test]
    fn rfc7541_c4_requests_huffman() {
        let mut d = BlockDecoder::new(true);
        let (f, _) = d.decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(f.authority.as_deref(), Some("www.example.com"));
        let (f, _) = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(f.authority.as_deref(), Some("www.example.com"));
        let (f, _) = d.decode(&hex(
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ));
        assert_eq!(f.path.as_deref(), Some("/index.html"));
    }

    /// RFC 7541 C.6: responses with Huffman coding and a 256-byte table (evictions).
    #[test]
    fn rfc7541_c6_responses_with_eviction() {
        let mut d = BlockDecoder::new(true);
        d.decoder = Decoder::with_dynamic_size(256);
        let (f, t) = d.decode(&hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        ));
        assert_eq!((f.status.as_deref(), t.error), (Some("302"), None));
        let (f, _) = d.decode(&hex("4883 640e ffc1 c0bf"));
        assert_eq!(f.status.as_deref(), Some("307"));
        let (f, t) = d.decode(&hex(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ));
        assert_eq!(
            (f.status.as_deref(), f.incomplete, t.error),
            (Some("200"), false, None)
        );
    }

    #[test]
    fn unknown_table_state_decodes_what_it_can() {
        // Index 62 (unknown entry), then :method GET (static), then a literal with incremental
        // indexing whose name is unknown entry 63, value "x"; then 62 again is that new entry.
        let mut d = BlockDecoder::new(false);
        let (f, t) = d.decode(&[0xbe, 0x82, 0x7f, 0x00, 0x01, b'x']);
        assert_eq!(f.method.as_deref(), Some("GET"));
        assert!(f.incomplete);
        assert_eq!(t.error, None, "expected when the state is unknown");
        let (f, _) = d.decode(&[0x44, 0x03, b'/', b'a', b'b', 0xbe]);
        assert_eq!(f.path.as_deref(), Some("/ab"));
        assert!(!f.incomplete, "entry 62 is now our own :path");
    }

    /// A 4000-byte name entered once, then reused by literals without indexing: each costs 4000
    /// decoded bytes for 2 bytes of block.
    #[test]
    fn literals_reusing_a_large_name_hit_the_decoded_list_limit() {
        let mut d = BlockDecoder::new(true);
        let mut block = vec![0x40, 0x7f, 0xa1, 0x1e]; // incremental indexing, new name of 4000 (127 + 3873)
        block.extend([b'n'; 4000]);
        block.push(0x00); // empty value
        let reps = MAX_DECODED_HEADER_LIST / 4000 + 10;
        for _ in 0..reps {
            block.extend_from_slice(&[0x0f, 0x2f, 0x00]); // without indexing, name index 62
        }
        let (f, t) = d.decode(&block);
        assert_eq!(t.limit, Some("max_decoded_header_list"));
        assert!(f.incomplete);
        assert!(
            d.state_known(),
            "skipping table-neutral fields keeps the table"
        );
    }

    #[test]
    fn table_size_beyond_the_limit_is_reported() {
        let mut d = BlockDecoder::new(true);
        // Size update to 2^20 (5-bit prefix 31 + 1048545).
        let (_, t) = d.decode(&[0x3f, 0xe2, 0xff, 0x3f]);
        assert_eq!(t.limit, Some("hpack_table_size"));
        assert!(!d.state_known());
    }
}
