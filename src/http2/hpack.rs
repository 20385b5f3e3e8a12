//! HPACK (RFC 7541) decoding of header blocks from the wire: one [`BlockDecoder`] per direction of a
//! connection, holding that direction's dynamic table. It hands on the few fields the timeline keeps
//! ([`Fields`]) and what went wrong ([`Trouble`]); nothing from the wire panics it.
//!
//! A block is first walked for its structure ([`reps`]: RFC 7541 §5.1 integers, §5.2 string lengths,
//! §6 representations), and only a block whose every integer and string lies inside it is decoded.
//! Decoding borrows from the block, the static table and the dynamic table wherever it can; Huffman
//! strings ([`super::huffman`]) are decoded into scratch buffers reused from block to block.
//!
//! A capture that starts mid-connection has lost the dynamic table's earlier entries. Then a
//! reference to an entry we never saw is an unknown field, and a literal that was indexed with such
//! a name is entered into our table with an empty name, so that later indices still line up.

use super::huffman::{self, HuffmanError};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::ops::Range;

/// Limit `hpack_table_size`: the largest dynamic table we keep per direction. Peers may announce
/// more; a size update beyond it leaves that direction's later blocks partly undecoded.
pub const MAX_TABLE_SIZE: u32 = 64 * 1024;
/// Limit `max_decoded_header_list`: bytes of names and values decoded from one header block
/// (guards against blocks that reference one large table entry thousands of times).
pub const MAX_DECODED_HEADER_LIST: usize = 256 * 1024;
/// Values longer than this are cut when kept.
const MAX_VALUE_KEPT: usize = 1024;
/// §5.1 integers longer than this many octets are rejected (as `httlib-hpack`, used before, did).
const MAX_INTEGER_OCTETS: usize = 5;
/// The dynamic table's size until a size update says otherwise: RFC 9113 §6.5.2, the initial value
/// of SETTINGS_HEADER_TABLE_SIZE.
const INITIAL_TABLE_SIZE: u32 = 4096;
/// §4.1: "The size of an entry is the sum of its name's length in octets, its value's length in
/// octets, and 32."
const ENTRY_OVERHEAD: usize = 32;
/// Scratch buffers larger than this after a block are freed rather than kept for the next one, so an
/// idle connection does not hold a large block's worth of memory.
const SCRATCH_KEPT: usize = 16 * 1024;
/// Room made for a dynamic table's octets and entries when its first entry comes (see
/// [`Table::first_room`]), and for the kept fields' octets when the first one comes.
const FIRST_TABLE_BYTES: usize = 256;
const FIRST_TABLE_ENTRIES: usize = 8;
const FIRST_FIELDS_BYTES: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// An integer or string runs past the end of the block.
    Truncated,
    /// An integer longer than the supported size.
    IntegerTooLong,
    /// Index 0 where an index is required (§6.1: "The index value of 0 is not used").
    ZeroIndex,
}

/// A string literal (§5.2): where its octets lie in the block, and whether they are Huffman-coded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Str {
    pub huffman: bool,
    pub bytes: Range<usize>,
}

/// The name of a literal field: an index into the tables, or a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Indexed(u32),
    Literal(Str),
}

/// One representation of a header block (§6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rep {
    Indexed {
        index: u32,
    },
    Literal {
        /// §6.2.1: the field is entered into the dynamic table.
        indexing: bool,
        name: Name,
        value: Str,
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

/// Reads a string literal at `pos` (§5.2): its octets, and where the next representation begins.
fn string(block: &[u8], pos: usize) -> Result<(Str, usize), HpackError> {
    let huffman = block.get(pos).is_some_and(|b| b & 0x80 != 0);
    let (len, data) = integer(block, pos, 7)?;
    let end = data
        .checked_add(len as usize)
        .ok_or(HpackError::Truncated)?;
    if end > block.len() {
        return Err(HpackError::Truncated);
    }
    let bytes = data..end;
    Ok((Str { huffman, bytes }, end))
}

/// The representations of a header block, each with the bytes it occupies; after an error, no more.
pub struct Reps<'a> {
    block: &'a [u8],
    pos: usize,
}

/// Walks a header block's representations, checking that every integer and string lies inside it.
pub fn reps(block: &[u8]) -> Reps<'_> {
    Reps { block, pos: 0 }
}

/// Reads the representation at `pos`: it, and where the next one begins. Inlined into the decoding
/// loop, where the representation need not be built in memory (a call cost a quarter of the
/// decoder's instructions).
#[inline(always)]
fn read(block: &[u8], pos: usize) -> Result<(Rep, usize), HpackError> {
    let b = *block.get(pos).ok_or(HpackError::Truncated)?;
    if b & 0x80 != 0 {
        // §6.1 Indexed Header Field: 1xxxxxxx, 7-bit prefix.
        let (index, end) = integer(block, pos, 7)?;
        if index == 0 {
            return Err(HpackError::ZeroIndex);
        }
        Ok((Rep::Indexed { index }, end))
    } else if b & 0x20 != 0 && b & 0x40 == 0 {
        // §6.3 Dynamic Table Size Update: 001xxxxx, 5-bit prefix.
        let (size, end) = integer(block, pos, 5)?;
        Ok((Rep::SizeUpdate { size }, end))
    } else {
        // §6.2.1 with incremental indexing 01xxxxxx (6-bit prefix); §6.2.2 without indexing
        // 0000xxxx and §6.2.3 never indexed 0001xxxx (4-bit prefix).
        let indexing = b & 0x40 != 0;
        let (name_index, next) = integer(block, pos, if indexing { 6 } else { 4 })?;
        let (name, next) = if name_index == 0 {
            let (s, next) = string(block, next)?;
            (Name::Literal(s), next)
        } else {
            (Name::Indexed(name_index), next)
        };
        let (value, end) = string(block, next)?;
        let rep = Rep::Literal {
            indexing,
            name,
            value,
        };
        Ok((rep, end))
    }
}

impl Iterator for Reps<'_> {
    type Item = Result<(Rep, Range<usize>), HpackError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.block.len() {
            return None;
        }
        let start = self.pos;
        match read(self.block, start) {
            Ok((rep, end)) => {
                self.pos = end;
                Some(Ok((rep, start..end)))
            }
            Err(e) => {
                self.pos = self.block.len();
                Some(Err(e))
            }
        }
    }
}

/// Where the representation at `pos` ends: the checks of [`Reps`], without building the
/// representation (decoding walks a block twice, and the first walk only needs to know that the
/// block is whole).
fn skip(block: &[u8], pos: usize) -> Result<usize, HpackError> {
    let b = *block.get(pos).ok_or(HpackError::Truncated)?;
    if b & 0x80 != 0 {
        let (index, end) = integer(block, pos, 7)?;
        if index == 0 {
            return Err(HpackError::ZeroIndex);
        }
        Ok(end)
    } else if b & 0x20 != 0 && b & 0x40 == 0 {
        Ok(integer(block, pos, 5)?.1)
    } else {
        let indexing = b & 0x40 != 0;
        let (name_index, mut next) = integer(block, pos, if indexing { 6 } else { 4 })?;
        if name_index == 0 {
            next = string(block, next)?.1;
        }
        Ok(string(block, next)?.1)
    }
}

/// The first error [`reps`] would meet in a block, if any.
fn check(block: &[u8]) -> Result<(), HpackError> {
    let mut pos = 0;
    while pos < block.len() {
        pos = skip(block, pos)?;
    }
    Ok(())
}

/// Splits a header block into its representations, each with its byte range (the same walk as
/// [`reps`], collected; decoding itself does not allocate it).
pub fn split(block: &[u8]) -> Result<Vec<(Rep, Range<usize>)>, HpackError> {
    reps(block).collect()
}

/// RFC 7541 Appendix A: the static table, entries 1 to 61.
#[rustfmt::skip]
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Where a dynamic table entry's octets lie in [`Table::bytes`], and the kept field its name is, if
/// any (found once, when it is entered).
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Entry {
    start: usize,
    name_len: usize,
    value_len: usize,
    field: Option<Field>,
}

/// The dynamic table (§2.3.2, §4). Entries' names and values are stored one after the other in one
/// buffer, oldest first, so inserting copies bytes but allocates nothing once the buffer has grown;
/// evicted entries' bytes are dropped from the front of the buffer when they outweigh the rest.
#[derive(Serialize, Deserialize)]
struct Table {
    #[serde(with = "crate::spill::as_bytes")]
    bytes: Vec<u8>,
    /// Newest first: entry 0 is index 62.
    entries: VecDeque<Entry>,
    /// §4.1 size of the entries.
    size: usize,
    max_size: usize,
}

impl Table {
    fn new(max_size: u32) -> Table {
        Table {
            bytes: Vec::new(),
            entries: VecDeque::new(),
            size: 0,
            max_size: max_size as usize,
        }
    }

    #[cfg(test)]
    fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.get_field(i).map(|(name, value, _)| (name, value))
    }

    /// Entry `i` with the kept field its name is.
    fn get_field(&self, i: usize) -> Option<(&[u8], &[u8], Option<Field>)> {
        let e = self.entries.get(i)?;
        let name_end = e.start + e.name_len;
        let name = self.bytes.get(e.start..name_end)?;
        let value = self.bytes.get(name_end..name_end + e.value_len)?;
        Some((name, value, e.field))
    }

    /// §4.3: a size update evicts entries until the table fits.
    fn set_max_size(&mut self, max_size: u32) {
        self.max_size = max_size as usize;
        self.evict(0);
        self.compact();
    }

    /// Before the first entry: room for a table's usual first entries, made at once. A
    /// connection's first block or two enter a few hundred octets in a handful of entries, and
    /// growing the buffers by doubling from nothing cost a dozen reallocations per direction.
    fn first_room(&mut self) {
        if self.bytes.capacity() == 0 {
            self.bytes.reserve(FIRST_TABLE_BYTES);
            self.entries.reserve(FIRST_TABLE_ENTRIES);
        }
    }

    /// Enters a field whose name is entry `name_of` of this table.
    fn insert_with_name_of(&mut self, name_of: usize, value: &[u8]) {
        let Some(&e) = self.entries.get(name_of) else {
            return;
        };
        let start = self.bytes.len();
        self.bytes.extend_from_within(e.start..e.start + e.name_len);
        self.bytes.extend_from_slice(value);
        self.push(start, e.name_len, value.len(), e.field);
    }

    /// Enters a field, whose name is kept field `field` (if any).
    fn insert(&mut self, name: &[u8], value: &[u8], field: Option<Field>) {
        self.first_room();
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.push(start, name.len(), value.len(), field);
    }

    /// Enters the field whose octets were just appended at `start` (§4.4).
    #[inline]
    fn push(&mut self, start: usize, name_len: usize, value_len: usize, field: Option<Field>) {
        let entry_size = name_len + value_len + ENTRY_OVERHEAD;
        // §4.4: "an attempt to add an entry larger than the maximum size causes the table to be
        // emptied of all existing entries and results in an empty table."
        if entry_size > self.max_size {
            self.entries.clear();
            self.bytes.clear();
            self.size = 0;
            return;
        }
        // Eviction before the entry is added; its name, if copied from an evicted entry, is already
        // in place.
        self.evict(entry_size);
        self.entries.push_front(Entry {
            start,
            name_len,
            value_len,
            field,
        });
        self.size += entry_size;
        self.compact();
    }

    /// Evicts the oldest entries until `room` more octets fit (§4.4).
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.name_len + e.value_len + ENTRY_OVERHEAD,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Drops evicted entries' bytes once they outweigh the live ones (and a few kilobytes, so that a
    /// small table is not moved at every insertion).
    fn compact(&mut self) {
        let Some(oldest) = self.entries.back() else {
            self.bytes.clear();
            return;
        };
        let dead = oldest.start;
        if dead > 4096 && dead > self.bytes.len() - dead {
            self.bytes.drain(..dead);
            for e in &mut self.entries {
                e.start -= dead;
            }
        }
    }
}

/// A header field h2keepalive keeps for the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Field {
    Method,
    Path,
    Authority,
    Status,
    ContentType,
    GrpcStatus,
    GrpcMessage,
}

/// The kept field each static table entry names ([`Field::of`] its name; a test checks it), so that
/// fields named by index are told apart without comparing names.
const STATIC_FIELDS: [Option<Field>; 61] = {
    let mut fields = [None; 61];
    fields[0] = Some(Field::Authority);
    fields[1] = Some(Field::Method);
    fields[2] = Some(Field::Method);
    fields[3] = Some(Field::Path);
    fields[4] = Some(Field::Path);
    let mut i = 7;
    while i <= 13 {
        fields[i] = Some(Field::Status);
        i += 1;
    }
    fields[30] = Some(Field::ContentType);
    fields
};

impl Field {
    fn of(name: &[u8]) -> Option<Field> {
        Some(match name {
            b":method" => Field::Method,
            b":path" => Field::Path,
            b":authority" => Field::Authority,
            b":status" => Field::Status,
            b"content-type" => Field::ContentType,
            b"grpc-status" => Field::GrpcStatus,
            b"grpc-message" => Field::GrpcMessage,
            _ => return None,
        })
    }
}

/// The kept fields of one block: the last value of each (cut to `MAX_VALUE_KEPT` bytes), as bytes
/// from the wire. Reused from block to block; the caller makes strings of what it keeps.
#[derive(Debug, Default)]
pub struct Fields {
    bytes: Vec<u8>,
    at: [Option<Range<usize>>; 7],
}

impl Fields {
    pub fn get(&self, field: Field) -> Option<&[u8]> {
        self.bytes.get(self.at[field as usize].clone()?)
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.at = Default::default();
        if self.bytes.capacity() > SCRATCH_KEPT {
            self.bytes = Vec::new();
        }
    }

    fn set(&mut self, field: Field, value: &[u8]) {
        let value = &value[..value.len().min(MAX_VALUE_KEPT)];
        if self.bytes.capacity() == 0 {
            self.bytes.reserve(FIRST_FIELDS_BYTES);
        }
        // A field seen twice keeps its last value; the earlier one's bytes stay unused until the next
        // block (the decoded-list limit and the block's own size bound what one block appends).
        let start = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.at[field as usize] = Some(start..self.bytes.len());
    }
}

/// What decoding a block ran into.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trouble {
    /// Some fields could not be decoded (unknown table state, damaged block, limit).
    pub incomplete: bool,
    pub error: Option<String>,
    pub limit: Option<&'static str>,
}

/// The decoding side of one direction of a connection.
#[derive(Serialize, Deserialize)]
pub struct BlockDecoder {
    table: Table,
    /// False when the table's earlier entries are unknown (capture started mid-connection, or a
    /// gap or error lost a block). Unknown references are then expected rather than errors.
    known: bool,
    /// Huffman-decoded name and value of the field being decoded.
    #[serde(skip)]
    name_buf: Vec<u8>,
    #[serde(skip)]
    value_buf: Vec<u8>,
    #[serde(skip)]
    fields: Fields,
}

/// A literal's name: octets outside the dynamic table, or an entry of it (copied by the table itself
/// when the literal is entered, since entering may evict it).
enum NameRef<'a> {
    Bytes(&'a [u8], Option<Field>),
    Entry(usize),
}

/// A string's octets: borrowed from the block, or Huffman-decoded into `buf`.
fn octets<'a>(block: &'a [u8], s: &Str, buf: &'a mut Vec<u8>) -> Result<&'a [u8], HuffmanError> {
    let raw = block.get(s.bytes.clone()).unwrap_or_default();
    if !s.huffman {
        return Ok(raw);
    }
    huffman::decode_reusing(raw, buf)
}

impl BlockDecoder {
    pub fn new(state_known: bool) -> BlockDecoder {
        BlockDecoder {
            table: Table::new(INITIAL_TABLE_SIZE),
            known: state_known,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
            fields: Fields::default(),
        }
    }

    /// From now on the table's contents are not fully known (a header block was lost).
    pub fn lose_state(&mut self) {
        self.known = false;
    }

    pub fn state_known(&self) -> bool {
        self.known
    }

    /// Decodes a block: the fields the timeline keeps, and what went wrong.
    pub fn decode(&mut self, block: &[u8]) -> (&Fields, Trouble) {
        self.fields.clear();
        let trouble = self.walk(block, |field, _, value, fields| {
            if let Some(field) = field {
                fields.set(field, value);
            }
        });
        (&self.fields, trouble)
    }

    /// Decodes a block, handing every field decoded to `on_field` in order.
    pub fn decode_each(&mut self, block: &[u8], mut on_field: impl FnMut(&[u8], &[u8])) -> Trouble {
        self.walk(block, |_, name, value, _| on_field(name, value))
    }

    /// Decodes a block, handing every field decoded to `on_field` in order, with the kept field its
    /// name is (if any), and [`BlockDecoder::fields`] to keep it in (lent rather than moved out and
    /// back for each block).
    fn walk(
        &mut self,
        block: &[u8],
        mut on_field: impl FnMut(Option<Field>, &[u8], &[u8], &mut Fields),
    ) -> Trouble {
        let mut trouble = Trouble::default();
        if let Err(e) = check(block) {
            // Representations before the damage changed the table; we cannot tell which, so the
            // table is no longer trusted.
            trouble.error = Some(format!("HPACK block malformed: {e:?}"));
            trouble.incomplete = true;
            self.known = false;
            return trouble;
        }
        let mut decoded_bytes = 0usize;
        let mut pos = 0;
        while pos < block.len() {
            let Ok((rep, end)) = read(block, pos) else {
                break;
            };
            pos = end;
            // Indexed fields and literals without indexing change nothing in the table: past the
            // limit they are skipped, not decoded. (A literal that reuses a large entry's name costs
            // as much as an indexed field.)
            let neutral = matches!(
                rep,
                Rep::Indexed { .. }
                    | Rep::Literal {
                        indexing: false,
                        ..
                    }
            );
            if neutral && decoded_bytes > MAX_DECODED_HEADER_LIST {
                trouble.limit = Some("max_decoded_header_list");
                trouble.incomplete = true;
                continue;
            }
            let (indexing, name, value) = match rep {
                Rep::SizeUpdate { size } => {
                    if size > MAX_TABLE_SIZE {
                        trouble.limit = Some("hpack_table_size");
                        trouble.incomplete = true;
                        self.known = false;
                    } else {
                        self.table.set_max_size(size);
                    }
                    continue;
                }
                Rep::Indexed { index } => {
                    match lookup(&self.table, index) {
                        Some((name, value, field)) => {
                            decoded_bytes += name.len() + value.len();
                            on_field(field, name, value, &mut self.fields);
                        }
                        None => unknown_index(self.known, &mut trouble),
                    }
                    continue;
                }
                Rep::Literal {
                    indexing,
                    name,
                    value,
                } => (indexing, name, value),
            };
            let name = match name {
                Name::Indexed(index) => match self.name_ref(index) {
                    Some(name) => name,
                    None => {
                        unknown_index(self.known, &mut trouble);
                        if indexing {
                            // The name is unknown but the value is not; the field took a table
                            // slot, so it is entered under an empty name for later indices to line
                            // up (or, unreadable, leaves the table unknown).
                            match octets(block, &value, &mut self.value_buf) {
                                Ok(v) => self.table.insert(b"", v, None),
                                Err(_) => self.known = false,
                            }
                        }
                        continue;
                    }
                },
                Name::Literal(s) => match octets(block, &s, &mut self.name_buf) {
                    Ok(n) => NameRef::Bytes(n, Field::of(n)),
                    Err(e) => {
                        huffman_failed(e, indexing, &mut self.known, &mut trouble);
                        continue;
                    }
                },
            };
            let value = match octets(block, &value, &mut self.value_buf) {
                Ok(v) => v,
                Err(e) => {
                    huffman_failed(e, indexing, &mut self.known, &mut trouble);
                    continue;
                }
            };
            let (name_bytes, field) = match name {
                NameRef::Bytes(n, field) => (n, field),
                NameRef::Entry(i) => self
                    .table
                    .get_field(i)
                    .map_or((&[][..], None), |(n, _, field)| (n, field)),
            };
            decoded_bytes += name_bytes.len() + value.len();
            on_field(field, name_bytes, value, &mut self.fields);
            if indexing {
                match name {
                    NameRef::Bytes(n, field) => self.table.insert(n, value, field),
                    NameRef::Entry(i) => self.table.insert_with_name_of(i, value),
                }
            }
        }
        if self.name_buf.capacity() > SCRATCH_KEPT {
            self.name_buf = Vec::new();
        }
        if self.value_buf.capacity() > SCRATCH_KEPT {
            self.value_buf = Vec::new();
        }
        trouble
    }

    /// The name of table entry `index`, if the entry is known.
    fn name_ref(&self, index: u32) -> Option<NameRef<'static>> {
        let i = (index as usize).checked_sub(1)?;
        match (STATIC.get(i), STATIC_FIELDS.get(i)) {
            (Some(&(name, _)), Some(&field)) => Some(NameRef::Bytes(name, field)),
            _ => {
                let i = i - STATIC.len();
                (i < self.table.entries.len()).then_some(NameRef::Entry(i))
            }
        }
    }
}

/// An entry of the static or dynamic table (§2.3.3).
fn lookup(table: &Table, index: u32) -> Option<(&[u8], &[u8], Option<Field>)> {
    let i = (index as usize).checked_sub(1)?;
    match (STATIC.get(i), STATIC_FIELDS.get(i)) {
        (Some(&(name, value)), Some(&field)) => Some((name, value, field)),
        _ => table.get_field(i - STATIC.len()),
    }
}

/// A reference to a table entry we do not have: expected when the table's state is unknown.
fn unknown_index(known: bool, trouble: &mut Trouble) {
    trouble.incomplete = true;
    if known {
        trouble.error = Some("HPACK index outside the table".to_string());
    }
}

fn huffman_failed(e: HuffmanError, indexing: bool, known: &mut bool, trouble: &mut Trouble) {
    trouble.incomplete = true;
    trouble.error = Some(format!("HPACK decoding failed: {e}"));
    if indexing {
        // The encoder entered a field we could not read.
        *known = false;
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

    fn text(f: &Fields, field: Field) -> Option<&str> {
        f.get(field).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn static_entries_name_the_fields_their_names_are() {
        for (i, &(name, _)) in STATIC.iter().enumerate() {
            assert_eq!(STATIC_FIELDS[i], Field::of(name), "entry {}", i + 1);
        }
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
    fn what_panicked_httlib_is_refused_here() {
        for bad in [
            &[0xffu8][..],
            &[0x41],
            &[0x40],
            &[0x40, 0x05, b'a'],
            &[0x00, 0x81],
            &[0x80],
        ] {
            assert!(split(bad).is_err(), "{bad:?}");
            let mut d = BlockDecoder::new(true);
            let (_, t) = d.decode(bad);
            assert!(t.incomplete && t.error.is_some());
            assert!(!d.state_known());
        }
    }

    /// The structure check before decoding finds what walking the representations finds: the
    /// same first error, or none, on random blocks (short strings and integers of every length
    /// are common in them, so most end in each way somewhere).
    #[test]
    fn check_finds_the_first_error_reps_finds() {
        let mut next = crate::testing::xorshift(0x4850_4143_4b21);
        let mut errors = 0;
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let block: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    // Small lengths and indices, so that strings often fit.
                    0 => (next() % 8) as u8,
                    1 => 0x80 | (next() % 8) as u8,
                    _ => next() as u8,
                })
                .collect();
            let walked = reps(&block).find_map(Result::err);
            assert_eq!(check(&block).err(), walked, "{block:02x?}");
            errors += walked.is_some() as usize;
        }
        assert!(errors > 1000 && errors < 19_000, "{errors}");
    }

    #[test]
    fn split_gives_each_representation_and_its_bytes() {
        // C.4.1's first block with a size update in front: 3f e1 01 (31 + 225 = 256).
        let block = hex("3fe101 8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
        let reps = split(&block).unwrap();
        assert_eq!(reps[0], (Rep::SizeUpdate { size: 256 }, 0..3));
        assert_eq!(reps[1], (Rep::Indexed { index: 2 }, 3..4));
        let lit = Rep::Literal {
            indexing: true,
            name: Name::Indexed(1),
            value: Str {
                huffman: true,
                bytes: 8..20,
            },
        };
        assert_eq!(reps[4], (lit, 6..20));
        assert_eq!(reps.len(), 5);
    }

    /// RFC 7541 C.3: three requests without Huffman coding, sharing one dynamic table.
    #[test]
    fn rfc7541_c3_requests() {
        let mut d = BlockDecoder::new(true);
        let (f, t) = d.decode(&hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
        assert_eq!(t, Trouble::default());
        assert_eq!(text(f, Field::Method), Some("GET"));
        assert_eq!(text(f, Field::Path), Some("/"));
        assert_eq!(text(f, Field::Authority), Some("www.example.com"));
        assert_eq!(d.table.size, 57);
        let (f, _) = d.decode(&hex("8286 84be 5808 6e6f 2d63 6163 6865"));
        assert_eq!(
            text(f, Field::Authority),
            Some("www.example.com"),
            "from the dynamic table"
        );
        assert_eq!(d.table.size, 110);
        let (f, t) = d.decode(&hex(
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ));
        assert_eq!(
            (text(f, Field::Path), t.incomplete, t.error),
            (Some("/index.html"), false, None)
        );
        assert_eq!(text(f, Field::Authority), Some("www.example.com"));
        assert_eq!(d.table.size, 164);
        assert_eq!(
            d.table.get(0),
            Some((&b"custom-key"[..], &b"custom-value"[..]))
        );
        assert_eq!(
            d.table.get(1),
            Some((&b"cache-control"[..], &b"no-cache"[..]))
        );
        assert_eq!(
            d.table.get(2),
            Some((&b":authority"[..], &b"www.example.com"[..]))
        );
    }

    /// RFC 7541 C.4: the same requests with Huffman coding.
    #[test]
    fn rfc7541_c4_requests_huffman() {
        let mut d = BlockDecoder::new(true);
        let (f, _) = d.decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(text(f, Field::Authority), Some("www.example.com"));
        let (f, _) = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(text(f, Field::Authority), Some("www.example.com"));
        let (f, t) = d.decode(&hex(
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ));
        assert_eq!(text(f, Field::Path), Some("/index.html"));
        assert_eq!(t, Trouble::default());
        assert_eq!(d.table.size, 164);
        assert_eq!(
            d.table.get(0),
            Some((&b"custom-key"[..], &b"custom-value"[..]))
        );
    }

    /// RFC 7541 C.6: responses with Huffman coding and a 256-byte table (evictions). The example's
    /// table is 256 bytes from the start (SETTINGS_HEADER_TABLE_SIZE); here a size update in front
    /// of the first block sets it.
    #[test]
    fn rfc7541_c6_responses_with_eviction() {
        let mut d = BlockDecoder::new(true);
        let (f, t) = d.decode(&hex(
            "3fe101 4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        ));
        assert_eq!((text(f, Field::Status), t.error), (Some("302"), None));
        assert_eq!(d.table.size, 222);
        let (f, _) = d.decode(&hex("4883 640e ffc1 c0bf"));
        assert_eq!(text(f, Field::Status), Some("307"));
        assert_eq!(d.table.size, 222);
        assert_eq!(d.table.get(0), Some((&b":status"[..], &b"307"[..])));
        assert_eq!(d.table.entries.len(), 4);
        let (f, t) = d.decode(&hex(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ));
        assert_eq!(
            (text(f, Field::Status), t.incomplete, t.error),
            (Some("200"), false, None)
        );
        assert_eq!(d.table.size, 215);
        assert_eq!(
            d.table.get(0),
            Some((
                &b"set-cookie"[..],
                &b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"[..]
            ))
        );
        assert_eq!(
            d.table.get(1),
            Some((&b"content-encoding"[..], &b"gzip"[..]))
        );
        assert_eq!(
            d.table.get(2),
            Some((&b"date"[..], &b"Mon, 21 Oct 2013 20:13:22 GMT"[..]))
        );
        assert_eq!(d.table.entries.len(), 3);
    }

    #[test]
    fn unknown_table_state_decodes_what_it_can() {
        // Index 62 (unknown entry), then :method GET (static), then a literal with incremental
        // indexing whose name is unknown entry 63, value "x"; then 62 again is that new entry.
        let mut d = BlockDecoder::new(false);
        let (f, t) = d.decode(&[0xbe, 0x82, 0x7f, 0x00, 0x01, b'x']);
        assert_eq!(text(f, Field::Method), Some("GET"));
        assert!(t.incomplete);
        assert_eq!(t.error, None, "expected when the state is unknown");
        let (f, t) = d.decode(&[0x44, 0x03, b'/', b'a', b'b', 0xbe]);
        assert_eq!(text(f, Field::Path), Some("/ab"));
        assert!(!t.incomplete, "entry 62 is now our own :path");
        assert_eq!(d.table.get(1), Some((&b""[..], &b"x"[..])));
    }

    #[test]
    fn unknown_index_with_a_known_table_is_an_error() {
        let mut d = BlockDecoder::new(true);
        let (_, t) = d.decode(&[0xbe]);
        assert!(t.incomplete);
        assert_eq!(t.error.as_deref(), Some("HPACK index outside the table"));
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
        let mut seen = 0;
        let t = d.decode_each(&block, |_, _| seen += 1);
        assert_eq!(t.limit, Some("max_decoded_header_list"));
        assert!(t.incomplete);
        assert!(seen < reps, "{seen}");
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

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut d = BlockDecoder::new(true);
        // Size update to 100, then "ab: cd" (36), then a 70-byte value under name "a" (103 > 100).
        let mut block = vec![0x3f, 0x45, 0x40, 0x02, b'a', b'b', 0x02, b'c', b'd'];
        block.extend([0x40, 0x01, b'a', 0x46]);
        block.extend([b'v'; 70]);
        let t = d.decode_each(&block, |_, _| {});
        assert_eq!(t, Trouble::default());
        assert_eq!((d.table.entries.len(), d.table.size), (0, 0));
        // A name taken from the entry that inserting evicts: "ab" entered again under index 62.
        let block = [
            0x40, 0x02, b'a', b'b', 0x02, b'c', b'd', 0x7e, 0x02, b'e', b'f',
        ];
        let t = d.decode_each(&block, |_, _| {});
        assert_eq!(t, Trouble::default());
        assert_eq!(d.table.entries.len(), 2);
        assert_eq!(d.table.get(0), Some((&b"ab"[..], &b"ef"[..])));
        // Size 40: only the newest entry stays.
        d.decode_each(&[0x3f, 0x09], |_, _| {});
        assert_eq!(d.table.entries.len(), 1);
        assert_eq!(d.table.get(0), Some((&b"ab"[..], &b"ef"[..])));
    }

    /// Many insertions into a small table: the byte store is compacted and stays small.
    #[test]
    fn the_table_buffer_stays_bounded() {
        let mut d = BlockDecoder::new(true);
        for i in 0..20_000u32 {
            let v = format!("value-{i:08}");
            // Incremental indexing, name accept-charset (15), raw value.
            let mut block = vec![0x40 | 15, v.len() as u8];
            block.extend(v.as_bytes());
            let t = d.decode_each(&block, |_, _| {});
            assert_eq!(t, Trouble::default());
            assert_eq!(d.table.get(0).map(|e| e.1), Some(v.as_bytes()));
        }
        assert!(d.table.size <= INITIAL_TABLE_SIZE as usize);
        assert!(
            d.table.bytes.len() < 2 * 4096 + 4096,
            "{}",
            d.table.bytes.len()
        );
    }

    #[test]
    fn huffman_errors_are_reported_and_an_unreadable_indexed_field_loses_the_table() {
        // Literal without indexing, name :path (4), Huffman value of one octet 0xff (8 bits of
        // padding); then :method GET still decoded.
        let mut d = BlockDecoder::new(true);
        let (f, t) = d.decode(&[0x04, 0x81, 0xff, 0x82]);
        assert!(t.incomplete);
        assert_eq!(
            t.error.as_deref(),
            Some("HPACK decoding failed: Huffman padding longer than 7 bits or not all ones")
        );
        assert_eq!(
            (text(f, Field::Path), text(f, Field::Method)),
            (None, Some("GET"))
        );
        assert!(d.state_known(), "a field without indexing changes no table");
        // The same with incremental indexing: the table misses an entry now.
        let (_, t) = d.decode(&[0x44, 0x81, 0xff]);
        assert!(t.error.is_some());
        assert!(!d.state_known());
        // EOS in a name.
        let mut d = BlockDecoder::new(true);
        let (_, t) = d.decode(&[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]);
        assert_eq!(
            t.error.as_deref(),
            Some("HPACK decoding failed: Huffman string contains EOS")
        );
    }

    #[test]
    fn kept_values_are_cut_and_the_last_one_wins() {
        let mut d = BlockDecoder::new(true);
        let mut block = vec![0x04, 0x7f, 0x81, 0x0f]; // :path, 127 + 1921 = 2048 bytes
        block.extend([b'p'; 2048]);
        block.extend([0x84, 0x83]); // :path /, :method POST
        let (f, _) = d.decode(&block);
        assert_eq!(text(f, Field::Path), Some("/"));
        assert_eq!(text(f, Field::Method), Some("POST"));
        let (f, _) = d.decode(&block[..block.len() - 2]);
        assert_eq!(f.get(Field::Path).map(<[u8]>::len), Some(MAX_VALUE_KEPT));
        assert_eq!(f.get(Field::Method), None, "fields are per block");
    }
}
