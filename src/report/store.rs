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
use crate::diagnose::{self, Catalogue, Summary};
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
    /// In the order they ended, in chunks of [`CHUNK`].
    entries: Vec<Vec<Entry>>,
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
}

/// Connections whose text is read back from the spill files at once, in the document's order.
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
    fn read(&mut self, entries: &[Entry], texts: &[Texts]) {
        // `bytes` keeps its length from batch to batch: it is only zeroed where it grows.
        let mut filled = 0;
        self.at.clear();
        self.at.resize(entries.len(), None);
        self.wanted.clear();
        for (i, e) in entries.iter().enumerate() {
            if let Body::Json(r) = e.body {
                let store = usize::from(r.store);
                if let Some(range) = texts.get(store).and_then(|t| t.spilled(r)) {
                    self.wanted.push((store, range, i));
                }
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

/// Every store of a run, once the analyzers are done.
pub struct Stored {
    /// Connection by connection in the order of their first packet.
    entries: Vec<Entry>,
    texts: Vec<Texts>,
}

/// The run's connections with their final verdicts and the findings.
pub struct Settled {
    /// In connection order.
    entries: Vec<Entry>,
    texts: Vec<Texts>,
    pub findings: Vec<model::Finding>,
}

impl Stored {
    pub fn new(stores: Vec<Store<'_>>) -> Stored {
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
        Stored { entries, texts }
    }

    /// The path rules over all connections: final verdicts and findings.
    pub fn settle(self, cat: &Catalogue) -> Settled {
        let Stored { mut entries, texts } = self;
        let findings = diagnose::settle(&mut entries, cat);
        Settled {
            entries,
            texts,
            findings: model::findings(&findings),
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
        self.findings
            .iter()
            .any(|f| f.severity == "warning" || f.severity == "error")
    }

    /// The document for renderers: the connections kept as models ([`Keep::Model`]; those kept
    /// as JSON text are for [`Settled::write_json`] only).
    pub fn document(self, input: Input) -> Document {
        let Settled {
            entries, findings, ..
        } = self;
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
        // Blocks kept in memory (no spill file) are unpacked whole, and freed once their last
        // connection is written: connections end roughly in the order they opened.
        let mut readers: HashMap<(u16, u32), usize> = HashMap::new();
        for e in &self.entries {
            if let Body::Json(r) = e.body {
                if self
                    .texts
                    .get(usize::from(r.store))
                    .is_some_and(|t| t.spilled(r).is_none())
                {
                    *readers.entry((r.store, r.block)).or_default() += 1;
                }
            }
        }
        let mut unpacked: HashMap<(u16, u32), Vec<u8>> = HashMap::new();
        let mut batch = Batch::default();
        // What is serialised, before it is written at once.
        let mut scratch = Vec::new();
        super::json_head(input, out)?;
        for first in (0..self.entries.len()).step_by(BATCH) {
            let ids = first..self.entries.len().min(first + BATCH);
            batch.read(&self.entries[ids.clone()], &self.texts);
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
                if let Some(text) = batch.text(id - first) {
                    out.write_all(text)?;
                } else {
                    let key = (r.store, r.block);
                    let texts = &self.texts;
                    let block = unpacked.entry(key).or_insert_with(|| {
                        let block = texts
                            .get(usize::from(r.store))
                            .and_then(|t| t.unpacked(r.block));
                        block.unwrap_or_default()
                    });
                    let text = block.get(r.start as usize..r.end as usize);
                    out.write_all(text.unwrap_or_default())?;
                    if let Some(n) = readers.get_mut(&key) {
                        *n -= 1;
                        if *n == 0 {
                            unpacked.remove(&key);
                        }
                    }
                }
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
        super::json_tail(&self.findings, out)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
