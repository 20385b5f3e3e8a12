//! Connections from the moment they end until the report is written. Each is judged alone and put
//! in its report form as soon as the analyzer is done with it, on the analyzer's thread, and its
//! timeline goes: a long capture keeps one compact record per connection, not its events. When the
//! JSON document is all that is asked for, the record is the connection's JSON text itself, and
//! both it and what the path rules need of the connection ([`Summary`]) go to a temporary file
//! while the run goes on ([`Spill`]).
//!
//! What needs every connection (the path rules, the final verdicts, connection ids) waits for the
//! end of the run: [`Stored::settle`], whose findings are put in their report form (and written
//! to the file) as they are found.

use super::json;
use super::model::{self, Connection, Document, Input};
use crate::analyzer::Sink;
use crate::diagnose::{self, Catalogue, Severity, Summary};
use crate::spill::{Spill, Spilled};
use crate::timeline::Timeline;
use serde::ser::{Error as _, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{self, IoSlice, Write};
use std::ops::Range;

/// What is kept of a connection's report form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Its JSON text (the document is the only output).
    Json,
    /// The model, for renderers (text, HTML, PNG, tables).
    Model,
}

enum Body {
    /// The members after `"id"`, in the store's text: up to `"verdict"`, or to the end when the
    /// verdict was final already ([`TextRef::whole`]).
    Json(TextRef),
    Model(Box<Connection>),
}

/// Where a connection's JSON text is: a block of its store's [`Texts`] and a range in it.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct TextRef {
    /// Its store, among the run's ([`Stored`]).
    store: u16,
    block: u32,
    start: u32,
    end: u32,
    /// The text holds the verdict and the closing brace.
    whole: bool,
}

/// Size of the JSON text written (or compressed) at once.
const BLOCK: usize = 256 * 1024;

/// The JSON texts of connections, in blocks sealed as they fill. A sealed block goes to a
/// [`Spill`] file, so that the text of the connections that ended costs no memory however long
/// the capture (230 MB of text on the 300 MB bench capture). Where the file takes no more, blocks
/// stay in memory, compressed with Snappy (fast both ways; JSON of similar connections shrinks
/// several times over in a block).
#[derive(Default)]
struct Texts {
    spill: Option<Spill>,
    sealed: Vec<Sealed>,
    /// The block being filled: `open[..filled]`. Past it is room the JSON writer made, kept
    /// from block to block: each connection's text is written there, not into room of the
    /// thread's and then copied (10 M Ir on the bench capture), and the room is zeroed once,
    /// not for every block.
    open: Vec<u8>,
    filled: usize,
}

enum Sealed {
    Spilled(Spilled),
    Packed(Box<[u8]>),
}

impl Texts {
    fn new() -> Texts {
        Texts {
            spill: Spill::new(),
            ..Texts::default()
        }
    }

    fn seal(&mut self) {
        let Some(block) = self.open.get(..self.filled).filter(|b| !b.is_empty()) else {
            return;
        };
        let sealed = match self.spill.as_mut().and_then(|s| s.put(block)) {
            Some(at) => Sealed::Spilled(at),
            None => {
                let mut packed = vec![0; snap::raw::max_compress_len(block.len())];
                let n = snap::raw::Encoder::new()
                    .compress(block, &mut packed)
                    .unwrap_or(0);
                packed.truncate(n);
                Sealed::Packed(packed.into_boxed_slice())
            }
        };
        self.sealed.push(sealed);
        self.filled = 0;
    }

    /// Keeps the JSON text of `value` whole.
    fn put(&mut self, value: &impl serde::Serialize) -> TextRef {
        let start = self.filled;
        // Serialising plain structs of strings and numbers into memory cannot fail.
        let (end, _) = json::write_at(&mut self.open, start, value);
        self.filled = end;
        let at = TextRef {
            store: 0,
            block: self.sealed.len() as u32,
            start: start as u32,
            end: end as u32,
            whole: true,
        };
        if self.filled >= BLOCK {
            self.seal();
        }
        at
    }

    /// The text `r` as a range of the spill file, when its block went there.
    fn spilled(&self, r: TextRef) -> Option<Range<u64>> {
        match self.sealed.get(r.block as usize)? {
            Sealed::Spilled(block) => Some(block.at() + r.start as u64..block.at() + r.end as u64),
            Sealed::Packed(_) => None,
        }
    }

    fn unpacked(&self, i: u32) -> Option<Vec<u8>> {
        match self.sealed.get(i as usize)? {
            Sealed::Packed(packed) => snap::raw::Decoder::new().decompress_vec(packed).ok(),
            Sealed::Spilled(_) => None,
        }
    }
}

/// A connection, from its end to the end of the run.
struct Entry {
    order: u64,
    conn: Summary,
    body: Body,
}

impl AsRef<Summary> for Entry {
    fn as_ref(&self) -> &Summary {
        &self.conn
    }
}

impl AsMut<Summary> for Entry {
    fn as_mut(&mut self) -> &mut Summary {
        &mut self.conn
    }
}

/// Entries a store keeps in one allocation, and writes to the spill file at once. In chunks, a
/// store never copies its entries to grow (a vector that doubled held both copies for a moment,
/// which on the 600 MB bench capture set the peak RSS 4.6 MB above the level around it); small
/// ones cost little while they are filled and written (60 kB, 50 kB written), and are still few
/// writes (one per 512 connections).
const CHUNK: usize = 512;

/// The connections one analyzer ended, as an analyzer [`Sink`].
pub struct Store<'a> {
    cat: &'a Catalogue,
    keep: Keep,
    /// In the order they ended, in chunks of [`CHUNK`]; the last one is being filled.
    entries: Vec<Vec<Entry>>,
    /// Chunks of entries written to the spill file of `text`, and how many entries each holds.
    spilled: Vec<(Spilled, usize)>,
    /// Connections handed over as they were parked and revived by a later packet, with how
    /// many times: each revival voids the entry before it ([`Stored::new`]).
    revived: HashMap<u64, u32>,
    /// The JSON texts of the entries kept as [`Keep::Json`].
    text: Texts,
}

/// An entry as written to the spill file (with postcard): of [`Keep::Json`], whose body is a
/// text.
type Written = (u64, Summary, TextRef);

/// Entries written as a sequence of [`Written`], without a copy.
struct Writing<'a>(&'a [Entry]);

impl Serialize for Writing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            let Body::Json(r) = e.body else {
                return Err(S::Error::custom("a connection kept as a model"));
            };
            seq.serialize_element(&(e.order, &e.conn, r))?;
        }
        seq.end()
    }
}

/// What opens a connection's JSON text before the members kept (`id` is 0 until the end).
const ID_ZERO: &[u8] = b"{\"id\":0,";
/// What opens the last member of a connection's JSON text.
const VERDICT: &[u8] = b",\"verdict\":";

impl<'a> Store<'a> {
    /// Writes the full chunk being filled to the spill file, and empties it to be filled again;
    /// where the file takes no more, the chunk stays.
    fn spill_chunk(&mut self) {
        let (Some(chunk), Some(spill)) = (self.entries.last_mut(), self.text.spill.as_mut()) else {
            return;
        };
        if !spill.takes_more() {
            return;
        }
        let bytes = postcard::to_allocvec(&Writing(chunk)).ok();
        if let Some(at) = bytes.and_then(|b| spill.put(&b)) {
            self.spilled.push((at, chunk.len()));
            chunk.clear();
        }
    }

    pub fn new(cat: &'a Catalogue, keep: Keep) -> Store<'a> {
        Store {
            cat,
            keep,
            entries: Vec::new(),
            spilled: Vec::new(),
            revived: HashMap::new(),
            text: if keep == Keep::Json {
                Texts::new()
            } else {
                Texts::default()
            },
        }
    }

    /// Keeps `conn` as its JSON text, but for `id`, known at the end, and for `verdict` unless
    /// `whole` (the path rules will not change it).
    fn keep_text(&mut self, conn: &Connection, whole: bool) -> TextRef {
        let start = self.text.filled;
        // Serialising plain structs of strings and numbers into memory cannot fail.
        let (end, _) = json::write_at(&mut self.text.open, start, conn);
        let written = self.text.open.get(start..end).unwrap_or_default();
        // `id` is the first member and `verdict` the last (see `Connection`); a string member
        // cannot hold `,"verdict":` unescaped.
        let body_end = if whole {
            Some(written.len())
        } else {
            written.windows(VERDICT.len()).rposition(|w| w == VERDICT)
        }
        .filter(|_| written.starts_with(ID_ZERO));
        let range = match body_end {
            Some(end) => {
                self.text.filled = start + end;
                start + ID_ZERO.len()..start + end
            }
            None => {
                self.text.filled = start;
                start..start
            }
        };
        let at = TextRef {
            // Set when the run's stores are put together.
            store: 0,
            block: self.text.sealed.len() as u32,
            start: range.start as u32,
            end: range.end as u32,
            whole: whole && body_end.is_some(),
        };
        if self.text.filled >= BLOCK {
            self.text.seal();
        }
        at
    }
}

impl Sink for Store<'_> {
    fn ended(&mut self, order: u64, tl: Timeline) {
        let mut judged = diagnose::judge(&tl, self.cat);
        let mut conn = model::connection(
            &tl,
            std::mem::take(&mut judged.keepalive),
            std::mem::take(&mut judged.implementations),
            &std::mem::take(&mut judged.forged_rsts),
        );
        drop(tl);
        // The verdict is kept whole until the end where it is still to be written then.
        let (body, verdict_later) = match self.keep {
            Keep::Json => {
                // A verdict the path rules will not change is written now, on this thread; its
                // evidence is lent to the report form, and given back only if they read it.
                let whole = judged.verdict_final();
                if whole {
                    let evidence = std::mem::take(&mut judged.verdict.evidence);
                    conn.verdict = model::verdict(&judged.verdict);
                    conn.verdict.evidence = evidence;
                }
                let text = self.keep_text(&conn, whole);
                if whole && (!text.whole || judged.evidence_read_later()) {
                    judged.verdict.evidence = std::mem::take(&mut conn.verdict.evidence);
                }
                (Body::Json(text), !text.whole)
            }
            Keep::Model => (Body::Model(Box::new(conn)), true),
        };
        let entry = Entry {
            order,
            conn: judged.summary(verdict_later),
            body,
        };
        match self.entries.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(entry),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(entry);
                self.entries.push(chunk);
            }
        }
        if self.entries.last().is_some_and(|c| c.len() == CHUNK) {
            self.spill_chunk();
        }
    }

    fn ends_parked(&self) -> bool {
        true
    }

    fn revived(&mut self, order: u64) {
        // Its entry may be in the spill file already: it is left where it is, and dropped at
        // the end. Its text, if any, stays unread.
        *self.revived.entry(order).or_default() += 1;
    }
}

/// Texts (of connections, or findings) read back from the spill files at once, in the document's
/// order.
const BATCH: usize = 1024;

/// Bytes between two texts of a batch up to which one read takes both (and the bytes between).
const READ_GAP: u64 = 4096;

/// The texts of a batch of connections, read from the spill files: the texts sorted by where
/// they lie, and neighbours read at once. Connections are written in the order they opened but
/// were spilled as they ended, so a batch's texts lie in a few runs, not one.
#[derive(Default)]
struct Batch {
    /// The texts read, from the start; past them, what earlier batches read.
    bytes: Vec<u8>,
    /// By position in the batch: where its text is in `bytes`.
    at: Vec<Option<Range<usize>>>,
    /// (store, file range, position in the batch), sorted.
    wanted: Vec<(usize, Range<u64>, usize)>,
}

impl Batch {
    /// Reads the texts `refs` (none for what has no text) of `texts`.
    fn read(&mut self, refs: impl Iterator<Item = Option<TextRef>>, texts: &[Texts]) {
        // `bytes` keeps its length from batch to batch: it is only zeroed where it grows.
        let mut filled = 0;
        self.at.clear();
        self.wanted.clear();
        for (i, r) in refs.enumerate() {
            self.at.push(None);
            let Some(r) = r else {
                continue;
            };
            let store = usize::from(r.store);
            if let Some(range) = texts.get(store).and_then(|t| t.spilled(r)) {
                self.wanted.push((store, range, i));
            }
        }
        self.wanted
            .sort_unstable_by_key(|(store, range, _)| (*store, range.start));
        let mut run = 0;
        while run < self.wanted.len() {
            let (store, ref first, _) = self.wanted[run];
            let (start, mut end, mut next) = (first.start, first.end, run + 1);
            while let Some((s, range, _)) = self.wanted.get(next) {
                if *s != store || range.start > end + READ_GAP {
                    break;
                }
                end = end.max(range.end);
                next += 1;
            }
            let base = filled;
            filled += (end - start) as usize;
            if self.bytes.len() < filled {
                self.bytes.resize(filled, 0);
            }
            let spill = texts.get(store).and_then(|t| t.spill.as_ref());
            if spill.is_some_and(|s| s.read(start, &mut self.bytes[base..filled])) {
                for (_, range, i) in &self.wanted[run..next] {
                    let from = base + (range.start - start) as usize;
                    self.at[*i] = Some(from..from + (range.end - range.start) as usize);
                }
            }
            run = next;
        }
    }

    /// Where the text `i` is in `bytes`, if it was read.
    fn at(&self, i: usize) -> Option<Range<usize>> {
        self.at.get(i)?.clone()
    }
}

/// Texts read back to be written, in the order they are written: from the spill files a
/// [`Batch`] at a time, or, where they stayed in memory, unpacked a block at a time, each block
/// freed after its last text (texts are written roughly in the order they were kept).
struct Reader<'a> {
    texts: &'a [Texts],
    batch: Batch,
    /// By (store, block) kept in memory: texts still to be written.
    readers: HashMap<(u16, u32), usize>,
    unpacked: HashMap<(u16, u32), Vec<u8>>,
}

impl<'a> Reader<'a> {
    /// For the texts `refs` of `texts`.
    fn new(texts: &'a [Texts], refs: impl Iterator<Item = TextRef>) -> Reader<'a> {
        let mut readers: HashMap<(u16, u32), usize> = HashMap::new();
        for r in refs {
            let t = texts.get(usize::from(r.store));
            if t.is_some_and(|t| t.spilled(r).is_none()) {
                *readers.entry((r.store, r.block)).or_default() += 1;
            }
        }
        Reader {
            texts,
            batch: Batch::default(),
            readers,
            unpacked: HashMap::new(),
        }
    }

    /// Reads the spilled texts among `refs`, the next ones written.
    fn batch(&mut self, refs: impl Iterator<Item = Option<TextRef>>) {
        self.batch.read(refs, self.texts);
    }

    /// Adds the text `r`, the `i`-th of the batch, to `pieces`.
    fn put(&mut self, i: usize, r: TextRef, pieces: &mut Pieces) {
        if let Some(at) = self.batch.at(i) {
            pieces.batched(at);
            return;
        }
        let key = (r.store, r.block);
        let texts = self.texts;
        let block = self.unpacked.entry(key).or_insert_with(|| {
            let block = texts
                .get(usize::from(r.store))
                .and_then(|t| t.unpacked(r.block));
            block.unwrap_or_default()
        });
        pieces.own.extend_from_slice(
            block
                .get(r.start as usize..r.end as usize)
                .unwrap_or_default(),
        );
        if let Some(n) = self.readers.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.unpacked.remove(&key);
            }
        }
    }

    /// Writes `pieces`, whose batched texts are this reader's batch.
    fn write(&self, pieces: &mut Pieces, out: &mut impl Write) -> io::Result<()> {
        pieces.write(&self.batch.bytes, out)
    }
}

/// What a batch of the document is made of, in order: bytes of its own (separators, ids,
/// verdicts, texts that were not in the spill file) and texts of the batch ([`Batch`]), left
/// where they were read. They are written with vectored writes: the 230 MB of connections' text
/// on the 300 MB bench capture were otherwise copied once more, into the output's buffer.
#[derive(Default)]
struct Pieces {
    own: Vec<u8>,
    /// Each piece: in `own` (true) or in the batch's bytes (false), and where.
    at: Vec<(bool, Range<usize>)>,
    /// Where the bytes of `own` not in `at` yet begin.
    open: usize,
}

/// Pieces given to one vectored write, at most (Linux takes up to 1024).
const PIECES_AT_ONCE: usize = 512;

impl Pieces {
    fn clear(&mut self) {
        self.own.clear();
        self.at.clear();
        self.open = 0;
    }

    /// Ends the piece of own bytes being written.
    fn close(&mut self) {
        if self.open < self.own.len() {
            self.at.push((true, self.open..self.own.len()));
            self.open = self.own.len();
        }
    }

    fn batched(&mut self, at: Range<usize>) {
        self.close();
        self.at.push((false, at));
    }

    fn write(&mut self, batched: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.close();
        let mut slices = Vec::with_capacity(PIECES_AT_ONCE.min(self.at.len()));
        for group in self.at.chunks(PIECES_AT_ONCE) {
            slices.clear();
            slices.extend(group.iter().map(|(own, at)| {
                let bytes = if *own { &self.own[..] } else { batched };
                IoSlice::new(bytes.get(at.clone()).unwrap_or_default())
            }));
            write_all_vectored(out, &mut slices)?;
        }
        self.clear();
        Ok(())
    }
}

/// `Write::write_all_vectored`, which is not stable yet.
fn write_all_vectored(out: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    // Advancing by 0 drops leading empty slices: a write of only those would return 0.
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One part's findings ([`diagnose::settle`]) in their report form, as the path rules find
/// them, by severity (`Severity as usize`).
struct Found {
    keep: Keep,
    /// Of [`Keep::Json`]: their JSON text, kept like connections'.
    text: Option<Texts>,
    json: [Vec<TextRef>; 3],
    models: [Vec<model::Finding>; 3],
}

impl Found {
    fn new(keep: Keep) -> Found {
        Found {
            keep,
            text: None,
            json: Default::default(),
            models: Default::default(),
        }
    }
}

impl diagnose::Findings for Found {
    fn found(&mut self, f: diagnose::Finding) {
        let severity = f.severity as usize;
        for f in model::findings(std::slice::from_ref(&f)) {
            match self.keep {
                Keep::Json => {
                    let at = self.text.get_or_insert_with(Texts::new).put(&f);
                    if let Some(found) = self.json.get_mut(severity) {
                        found.push(at);
                    }
                }
                Keep::Model => {
                    if let Some(found) = self.models.get_mut(severity) {
                        found.push(f);
                    }
                }
            }
        }
    }
}

/// The findings of a run in their report form, most severe first.
enum Reported {
    /// Their JSON texts ([`Keep::Json`]), each in `texts` by its store: its part.
    Json {
        texts: Vec<Texts>,
        at: Vec<TextRef>,
        problems: bool,
    },
    Model(Vec<model::Finding>),
}

impl Reported {
    fn new(parts: [Found; 2], keep: Keep) -> Reported {
        match keep {
            Keep::Json => {
                let mut texts = Vec::with_capacity(parts.len());
                let found: [[Vec<TextRef>; 3]; 2] = parts.map(|part| {
                    let store = u16::try_from(texts.len()).unwrap_or(u16::MAX);
                    let mut text = part.text.unwrap_or_default();
                    text.seal();
                    texts.push(text);
                    part.json
                        .map(|found| found.into_iter().map(|r| TextRef { store, ..r }).collect())
                });
                let problems = found.iter().any(|part| {
                    [Severity::Warning, Severity::Error]
                        .iter()
                        .any(|&s| part.get(s as usize).is_some_and(|f| !f.is_empty()))
                });
                Reported::Json {
                    texts,
                    at: in_order(found),
                    problems,
                }
            }
            Keep::Model => Reported::Model(in_order(parts.map(|p| p.models))),
        }
    }
}

/// The findings of the parts, by severity, in the order they are reported
/// ([`diagnose::settle`]): most severe first, then part by part.
fn in_order<T>(mut parts: [[Vec<T>; 3]; 2]) -> Vec<T> {
    let mut all = Vec::new();
    for s in [Severity::Error, Severity::Warning, Severity::Info] {
        for part in &mut parts {
            if let Some(found) = part.get_mut(s as usize) {
                all.append(found);
            }
        }
    }
    all
}

/// Every store of a run, once the analyzers are done.
pub struct Stored {
    keep: Keep,
    /// Connection by connection in the order of their first packet.
    entries: Vec<Entry>,
    texts: Vec<Texts>,
    /// Connections written to a spill file that could not be read back.
    lost: usize,
}

/// The run's connections with their final verdicts and the findings.
pub struct Settled {
    /// In connection order.
    entries: Vec<Entry>,
    texts: Vec<Texts>,
    findings: Reported,
}

/// Of the entries from `from` on (one store's, in the order they ended), drops those that a
/// revival voided. A connection handed over as it was parked ([`Sink::ends_parked`]) has an entry
/// for each time, each followed by a revival but the last, if it was handed over at the end at
/// all: one that turned out not to be HTTP/2 after a revival (a TLS server that did not choose
/// h2, say) was not, and has no entry left.
fn drop_revived(entries: &mut Vec<Entry>, from: usize, revived: &HashMap<u64, u32>) {
    if revived.is_empty() {
        return;
    }
    let ours = entries.get(from..).unwrap_or_default();
    // How many entries each revived connection has.
    let mut count: HashMap<u64, u32> = HashMap::with_capacity(revived.len());
    for e in ours {
        if revived.contains_key(&e.order) {
            *count.entry(e.order).or_default() += 1;
        }
    }
    let mut seen = HashSet::with_capacity(revived.len());
    let stale: Vec<bool> = ours
        .iter()
        .rev()
        .map(|e| {
            let Some(revivals) = revived.get(&e.order) else {
                return false;
            };
            // The last entry stands when there is one more than there were revivals.
            let last = seen.insert(e.order);
            !(last && count.get(&e.order).is_some_and(|n| n > revivals))
        })
        .collect();
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        // `stale` runs backwards over the entries from `from` on.
        i <= from || !stale.get(stale.len() + from - i).copied().unwrap_or(false)
    });
}

impl Stored {
    pub fn new(stores: Vec<Store<'_>>) -> Stored {
        let keep = stores.first().map_or(Keep::Json, |s| s.keep);
        let in_memory = stores.iter().flat_map(|s| &s.entries).map(Vec::len);
        let spilled = stores.iter().flat_map(|s| &s.spilled).map(|(_, n)| n);
        let mut entries = Vec::with_capacity(in_memory.sum::<usize>() + spilled.sum::<usize>());
        let mut texts = Vec::with_capacity(stores.len());
        let mut lost = 0;
        for (i, s) in stores.into_iter().enumerate() {
            let first_of_store = entries.len();
            let spill = s.text.spill.as_ref();
            for (at, n) in s.spilled {
                let chunk = spill
                    .and_then(|f| f.get(at))
                    .and_then(|bytes| postcard::from_bytes::<Vec<Written>>(&bytes).ok());
                let Some(chunk) = chunk else {
                    lost += n;
                    continue;
                };
                let from = entries.len();
                entries.extend(chunk.into_iter().map(|(order, conn, text)| Entry {
                    order,
                    conn,
                    body: Body::Json(text),
                }));
                mark(&mut entries[from..], i);
            }
            // Each chunk is freed once moved: the entries are not all in memory twice.
            for chunk in s.entries {
                let from = entries.len();
                entries.extend(chunk);
                mark(&mut entries[from..], i);
            }
            drop_revived(&mut entries, first_of_store, &s.revived);
            let mut text = s.text;
            text.seal();
            texts.push(text);
        }
        // Orders are unique: numbers of the packets that opened the connections.
        entries.sort_unstable_by_key(|e| e.order);
        Stored {
            keep,
            entries,
            texts,
            lost,
        }
    }

    /// Connections written to a temporary file while the run went on that could not be read
    /// back: they are left out.
    pub fn lost(&self) -> usize {
        self.lost
    }

    /// The path rules over all connections: final verdicts and findings. The findings are put
    /// in their report form as they are found (as JSON text, like connections, when that is all
    /// that is asked for): a long run has thousands, with their recommendations.
    pub fn settle(self, cat: &Catalogue) -> Settled {
        let Stored {
            keep,
            mut entries,
            texts,
            ..
        } = self;
        let parts = diagnose::settle(&mut entries, cat, || Found::new(keep));
        Settled {
            entries,
            texts,
            findings: Reported::new(parts, keep),
        }
    }
}

/// Says of entries' texts that they are in store `store`.
fn mark(entries: &mut [Entry], store: usize) {
    let store = u16::try_from(store).unwrap_or(u16::MAX);
    for e in entries {
        if let Body::Json(r) = &mut e.body {
            r.store = store;
        }
    }
}

impl Settled {
    pub fn problems(&self) -> bool {
        match &self.findings {
            Reported::Json { problems, .. } => *problems,
            Reported::Model(found) => found
                .iter()
                .any(|f| f.severity == "warning" || f.severity == "error"),
        }
    }

    /// The document for renderers: the connections and findings kept as models ([`Keep::Model`];
    /// those kept as JSON text are for [`Settled::write_json`] only).
    pub fn document(self, input: Input) -> Document {
        let Settled {
            entries, findings, ..
        } = self;
        let findings = match findings {
            Reported::Model(found) => found,
            Reported::Json { .. } => Vec::new(),
        };
        let connections = entries
            .into_iter()
            .enumerate()
            .filter_map(|(id, e)| match e.body {
                Body::Model(c) => {
                    let mut c = *c;
                    c.id = id;
                    if let Some(v) = e.conn.verdict() {
                        c.verdict = model::verdict(v);
                    }
                    Some(c)
                }
                Body::Json(_) => None,
            })
            .collect();
        Document {
            schema: model::SCHEMA,
            input,
            connections,
            findings,
        }
    }

    /// Writes the JSON document (the layout of [`super::write_json`]) straight from the records.
    pub fn write_json(&mut self, input: &Input, out: &mut impl Write) -> io::Result<()> {
        let text = |e: &Entry| match e.body {
            Body::Json(r) => Some(r),
            Body::Model(_) => None,
        };
        let mut reader = Reader::new(&self.texts, self.entries.iter().filter_map(text));
        let mut pieces = Pieces::default();
        super::json_head(input, out)?;
        for first in (0..self.entries.len()).step_by(BATCH) {
            let ids = first..self.entries.len().min(first + BATCH);
            reader.batch(self.entries[ids.clone()].iter().map(text));
            for id in ids {
                let e = &mut self.entries[id];
                let own = &mut pieces.own;
                own.extend_from_slice(if id == 0 { b"\n" } else { b",\n" });
                let r = match &mut e.body {
                    Body::Model(c) => {
                        c.id = id;
                        if let Some(v) = e.conn.verdict() {
                            c.verdict = model::verdict(v);
                        }
                        json::to_vec_into(own, c)?;
                        continue;
                    }
                    Body::Json(r) => *r,
                };
                write!(own, "{{\"id\":{id},")?;
                reader.put(id - first, r, &mut pieces);
                if !r.whole {
                    // Kept whole for this ([`Store::ended`]).
                    if let Some(v) = e.conn.verdict() {
                        pieces.own.extend_from_slice(VERDICT);
                        json::to_vec_into(&mut pieces.own, &model::verdict(v))?;
                    }
                    pieces.own.push(b'}');
                }
            }
            reader.write(&mut pieces, out)?;
        }
        match &self.findings {
            Reported::Model(found) => super::json_tail(found, out),
            Reported::Json { texts, at, .. } => {
                // The layout of `super::json_tail`.
                out.write_all(b"\n],\n\"findings\":[")?;
                let mut reader = Reader::new(texts, at.iter().copied());
                for first in (0..at.len()).step_by(BATCH) {
                    let ids = first..at.len().min(first + BATCH);
                    reader.batch(at[ids.clone()].iter().copied().map(Some));
                    for (i, r) in at[ids].iter().enumerate() {
                        pieces
                            .own
                            .extend_from_slice(if first + i == 0 { b"\n" } else { b",\n" });
                        reader.put(i, *r, &mut pieces);
                    }
                    reader.write(&mut pieces, out)?;
                }
                out.write_all(b"\n]}\n")
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::Stats;
    use crate::testing::lab_timelines;

    #[derive(Clone, Copy)]
    enum File {
        /// None could be made.
        None,
        /// It takes everything.
        Whole,
        /// It is full from this many connections on.
        FullAfter(usize),
    }

    /// The JSON document of `rounds` times `timelines`, ended in turn on two stores (as by two
    /// analyzers), and how many chunks of summaries went to their files.
    fn document(timelines: &[Timeline], rounds: usize, file: File) -> (Vec<u8>, usize) {
        let cat = Catalogue::builtin();
        let mut stores = [Store::new(&cat, Keep::Json), Store::new(&cat, Keep::Json)];
        if let File::None = file {
            for s in &mut stores {
                s.text.spill = None;
            }
        }
        let ended = (0..rounds).flat_map(|_| timelines).enumerate();
        for (order, tl) in ended {
            if let File::FullAfter(n) = file {
                if order == n {
                    for s in &mut stores {
                        s.text.spill.as_mut().unwrap().fill();
                    }
                }
            }
            stores[order % 2].ended(order as u64, tl.clone());
        }
        let chunks = stores.iter().map(|s| s.spilled.len()).sum();
        let stored = Stored::new(stores.into());
        assert_eq!(stored.lost(), 0);
        let mut settled = stored.settle(&cat);
        let input = model::input(Vec::new(), Vec::new(), &Stats::default(), settled.len());
        let mut out = Vec::new();
        settled.write_json(&input, &mut out).unwrap();
        (out, chunks)
    }

    /// A writer that takes a few bytes at a time, and is interrupted now and then.
    struct Trickle {
        taken: Vec<u8>,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 5 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let mut room = self.calls % 7 + 1;
            for b in bufs {
                let n = b.len().min(room);
                self.taken.extend_from_slice(&b[..n]);
                room -= n;
                if room == 0 {
                    break;
                }
            }
            Ok(self.calls % 7 + 1 - room)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Pieces come out whole and in order however little each write takes, over more pieces
    /// than one vectored write is given.
    #[test]
    fn pieces_are_written_whole_and_in_order() {
        let batched = b"0123456789abcdefghijklmnopqrstuvwxyz".repeat(40);
        let mut pieces = Pieces::default();
        let mut want = Vec::new();
        for i in 0..3 * PIECES_AT_ONCE {
            let own = format!("<{i}>");
            pieces.own.extend_from_slice(own.as_bytes());
            want.extend_from_slice(own.as_bytes());
            if i % 3 != 0 {
                let at = i % 1000..i % 1000 + i % 17;
                want.extend_from_slice(&batched[at.clone()]);
                pieces.batched(at);
            }
        }
        pieces.own.extend_from_slice(b"end");
        want.extend_from_slice(b"end");
        let mut out = Trickle {
            taken: Vec::new(),
            calls: 0,
        };
        pieces.write(&batched, &mut out).unwrap();
        assert!(out.calls > 3, "{} writes", out.calls);
        assert!(out.taken == want, "pieces written out of order or in part");
        assert!(pieces.own.is_empty() && pieces.at.is_empty());
    }

    /// Summaries written to the spill file while the run goes on, all or until the file is
    /// full, give the document of summaries kept in memory.
    #[test]
    fn spilled_summaries_give_the_document_of_those_kept() {
        let timelines = lab_timelines();
        let rounds = 3 * 2 * CHUNK / timelines.len() + 1;
        let (kept, none) = document(&timelines, rounds, File::None);
        let (spilled, all) = document(&timelines, rounds, File::Whole);
        let (partly, some) = document(&timelines, rounds, File::FullAfter(2 * CHUNK + 7));
        assert_eq!(none, 0);
        assert!(all >= 6, "{all} chunks spilled");
        assert!(
            some > 0 && some < all,
            "{some} chunks spilled before the file was full"
        );
        assert!(spilled == kept, "spilled summaries give another document");
        assert!(
            partly == kept,
            "summaries partly spilled give another document"
        );
    }
}
