//! Connections from the moment they end until the report is written. Each is judged alone and put
//! in its report form as soon as the analyzer is done with it, on the analyzer's thread, and its
//! timeline goes: a long capture keeps one compact record per connection, not its events. When the
//! JSON document is all that is asked for, the record is the connection's JSON text itself.
//!
//! What needs every connection (the path rules, the final verdicts, connection ids) waits for the
//! end of the run: [`Stored::finish`].

use super::json;
use super::model::{self, Connection, Document, Input};
use crate::analyzer::Sink;
use crate::diagnose::{self, Catalogue, Severity, Summary};
use crate::spill::{Spill, Spilled};
use crate::timeline::Timeline;
use std::collections::HashMap;
use std::io::{self, Write};
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
#[derive(Clone, Copy)]
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
    /// The block being filled.
    open: Vec<u8>,
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
        if self.open.is_empty() {
            return;
        }
        let sealed = match self.spill.as_mut().and_then(|s| s.put(&self.open)) {
            Some(at) => Sealed::Spilled(at),
            None => {
                let mut packed = vec![0; snap::raw::max_compress_len(self.open.len())];
                let n = snap::raw::Encoder::new()
                    .compress(&self.open, &mut packed)
                    .unwrap_or(0);
                packed.truncate(n);
                Sealed::Packed(packed.into_boxed_slice())
            }
        };
        self.sealed.push(sealed);
        self.open.clear();
    }

    /// Keeps the JSON text of `value` whole.
    fn put(&mut self, value: &impl serde::Serialize) -> TextRef {
        let start = self.open.len();
        // Serialising plain structs of strings and numbers into memory cannot fail.
        let _ = json::to_vec_into(&mut self.open, value);
        let at = TextRef {
            store: 0,
            block: self.sealed.len() as u32,
            start: start as u32,
            end: self.open.len() as u32,
            whole: true,
        };
        if self.open.len() >= BLOCK {
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

/// Entries a store keeps in one allocation. In chunks, a store never copies its entries to grow:
/// a vector that doubled held both copies for a moment, which on the 600 MB bench capture set
/// the peak RSS 4.6 MB above the level around it.
const CHUNK: usize = 4096;

/// The connections one analyzer ended, as an analyzer [`Sink`].
pub struct Store<'a> {
    cat: &'a Catalogue,
    keep: Keep,
    /// In the order they ended, in chunks of [`CHUNK`] (all full but the last).
    entries: Vec<Vec<Entry>>,
    /// Entries of connections handed over as they were parked, by their place in `entries`
    /// (counted over the chunks): a packet may revive them ([`Sink::revived`]).
    parked: HashMap<u64, usize>,
    /// The JSON texts of the entries kept as [`Keep::Json`].
    text: Texts,
}

/// What opens a connection's JSON text before the members kept (`id` is 0 until the end).
const ID_ZERO: &[u8] = b"{\"id\":0,";
/// What opens the last member of a connection's JSON text.
const VERDICT: &[u8] = b",\"verdict\":";

impl<'a> Store<'a> {
    pub fn new(cat: &'a Catalogue, keep: Keep) -> Store<'a> {
        Store {
            cat,
            keep,
            entries: Vec::new(),
            parked: HashMap::new(),
            text: if keep == Keep::Json {
                Texts::new()
            } else {
                Texts::default()
            },
        }
    }

    /// Entries kept so far.
    fn len(&self) -> usize {
        self.entries.iter().map(Vec::len).sum()
    }

    /// Keeps `conn` as its JSON text, but for `id`, known at the end, and for `verdict` unless
    /// `whole` (the path rules will not change it).
    fn keep_text(&mut self, conn: &Connection, whole: bool) -> TextRef {
        let text = &mut self.text.open;
        let start = text.len();
        // Serialising plain structs of strings and numbers into memory cannot fail.
        let _ = json::to_vec_into(text, conn);
        let written = &text[start..];
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
                text.truncate(start + end);
                start + ID_ZERO.len()..start + end
            }
            None => {
                text.truncate(start);
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
        if text.len() >= BLOCK {
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
    }

    fn ends_parked(&self) -> bool {
        true
    }

    fn ended_parked(&mut self, order: u64, tl: Timeline) {
        self.parked.insert(order, self.len());
        self.ended(order, tl);
    }

    fn revived(&mut self, order: u64) {
        let Some(i) = self.parked.remove(&order) else {
            return;
        };
        // The last entry takes its place. Its text, if any, stays where it was written, unread.
        let Some(last) = self.entries.last_mut().and_then(Vec::pop) else {
            return;
        };
        if self.entries.last().is_some_and(Vec::is_empty) {
            self.entries.pop();
        }
        if let Some(slot) = self
            .entries
            .get_mut(i / CHUNK)
            .and_then(|chunk| chunk.get_mut(i % CHUNK))
        {
            if let Some(at) = self.parked.get_mut(&last.order) {
                *at = i;
            }
            *slot = last;
        }
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

    fn text(&self, i: usize) -> Option<&[u8]> {
        self.bytes.get(self.at.get(i)?.clone()?)
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

    /// Writes the text `r`, the `i`-th of the batch.
    fn write(&mut self, i: usize, r: TextRef, out: &mut impl Write) -> io::Result<()> {
        if let Some(text) = self.batch.text(i) {
            return out.write_all(text);
        }
        let key = (r.store, r.block);
        let texts = self.texts;
        let block = self.unpacked.entry(key).or_insert_with(|| {
            let block = texts
                .get(usize::from(r.store))
                .and_then(|t| t.unpacked(r.block));
            block.unwrap_or_default()
        });
        out.write_all(
            block
                .get(r.start as usize..r.end as usize)
                .unwrap_or_default(),
        )?;
        if let Some(n) = self.readers.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.unpacked.remove(&key);
            }
        }
        Ok(())
    }
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
}

/// The run's connections with their final verdicts and the findings.
pub struct Settled {
    /// In connection order.
    entries: Vec<Entry>,
    texts: Vec<Texts>,
    findings: Reported,
}

impl Stored {
    pub fn new(stores: Vec<Store<'_>>) -> Stored {
        let keep = stores.first().map_or(Keep::Json, |s| s.keep);
        let n = stores.iter().flat_map(|s| &s.entries).map(Vec::len).sum();
        // Each chunk is freed once moved: the entries are not all in memory twice.
        let mut entries = Vec::with_capacity(n);
        let mut texts = Vec::with_capacity(stores.len());
        for (i, s) in stores.into_iter().enumerate() {
            for chunk in s.entries {
                let from = entries.len();
                entries.extend(chunk);
                mark(&mut entries[from..], i);
            }
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
        }
    }

    /// The path rules over all connections: final verdicts and findings. The findings are put
    /// in their report form as they are found (as JSON text, like connections, when that is all
    /// that is asked for): a long run has thousands, with their recommendations.
    pub fn settle(self, cat: &Catalogue) -> Settled {
        let Stored {
            keep,
            mut entries,
            texts,
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
        // What is serialised, before it is written at once.
        let mut scratch = Vec::new();
        super::json_head(input, out)?;
        for first in (0..self.entries.len()).step_by(BATCH) {
            let ids = first..self.entries.len().min(first + BATCH);
            reader.batch(self.entries[ids.clone()].iter().map(text));
            for id in ids {
                let e = &mut self.entries[id];
                out.write_all(if id == 0 { b"\n" } else { b",\n" })?;
                scratch.clear();
                let r = match &mut e.body {
                    Body::Model(c) => {
                        c.id = id;
                        if let Some(v) = e.conn.verdict() {
                            c.verdict = model::verdict(v);
                        }
                        json::to_vec_into(&mut scratch, c)?;
                        out.write_all(&scratch)?;
                        continue;
                    }
                    Body::Json(r) => *r,
                };
                write!(out, "{{\"id\":{id},")?;
                reader.write(id - first, r, out)?;
                if !r.whole {
                    // Kept whole for this ([`Store::ended`]).
                    if let Some(v) = e.conn.verdict() {
                        scratch.extend_from_slice(VERDICT);
                        json::to_vec_into(&mut scratch, &model::verdict(v))?;
                    }
                    scratch.push(b'}');
                    out.write_all(&scratch)?;
                }
            }
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
                        out.write_all(if first + i == 0 { b"\n" } else { b",\n" })?;
                        reader.write(i, *r, out)?;
                    }
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
