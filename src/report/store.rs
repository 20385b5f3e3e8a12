//! Connections from the moment they end until the report is written. Each is judged alone and put
//! in its report form as soon as the analyzer is done with it, on the analyzer's thread, and its
//! timeline goes: a long capture keeps one compact record per connection, not its events. When the
//! JSON document is all that is asked for, the record is the connection's JSON text itself.
//!
//! What needs every connection (the path rules, the final verdicts, connection ids) waits for the
//! end of the run: [`Stored::finish`].

use super::model::{self, Connection, Document, Input};
use crate::analyzer::Sink;
use crate::diagnose::{self, Catalogue, Judged};
use crate::timeline::Timeline;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// What is kept of a connection's report form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Its JSON text (the document is the only output).
    Json,
    /// The model, for renderers (text, HTML, PNG, tables).
    Model,
}

enum Body {
    /// The members between `"id"` and `"verdict"`, in the store's text.
    Json(TextRef),
    Model(Box<Connection>),
}

/// Where a connection's JSON text is: a block of the store's [`Texts`] and a range in it.
#[derive(Clone, Copy)]
struct TextRef {
    block: u32,
    start: u32,
    end: u32,
}

/// Size of the JSON text written (or compressed) at once.
const BLOCK: usize = 256 * 1024;

/// The JSON texts of connections, in blocks sealed as they fill. A sealed block goes to a
/// temporary file, deleted as soon as it is made (`$TMPDIR`, else /tmp), so that the text of the
/// connections that ended costs no memory however long the capture: 230 MB of text on the 300 MB
/// bench capture. Where no such file can be written, blocks stay in memory, compressed with Snappy
/// (fast both ways; JSON of similar connections shrinks several times over in a block).
#[derive(Default)]
struct Texts {
    spill: Option<File>,
    /// Bytes written to `spill`.
    spilled: u64,
    /// A write to `spill` failed (the disk is full): blocks sealed since stay in memory.
    spill_failed: bool,
    sealed: Vec<Sealed>,
    /// The block being filled.
    open: Vec<u8>,
}

enum Sealed {
    /// `len` bytes at `at` in the spill file.
    Spilled {
        at: u64,
        len: u32,
    },
    Packed(Box<[u8]>),
}

/// A file no other process sees and the system deletes once it is closed.
fn spill_file() -> Option<File> {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("h2keepalive-{}-{n}.json.tmp", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .ok()?;
    std::fs::remove_file(&path).ok()?;
    Some(file)
}

impl Texts {
    fn new() -> Texts {
        Texts {
            spill: spill_file(),
            ..Texts::default()
        }
    }

    /// Writes the open block to the spill file, or compresses it in memory once the file is
    /// gone or full.
    fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let spill = self.spill.as_mut().filter(|_| !self.spill_failed);
        let sealed = match spill.map(|f| f.write_all(&self.open)) {
            Some(Ok(())) => {
                let at = self.spilled;
                self.spilled += self.open.len() as u64;
                Sealed::Spilled {
                    at,
                    len: self.open.len() as u32,
                }
            }
            failed => {
                // A short write leaves the file's end unknown: no more blocks go there; those
                // before it are still whole.
                self.spill_failed |= failed.is_some();
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

    fn block(&self, i: u32) -> Option<Vec<u8>> {
        match self.sealed.get(i as usize)? {
            Sealed::Spilled { at, len } => {
                let mut block = vec![0; *len as usize];
                self.spill.as_ref()?.read_exact_at(&mut block, *at).ok()?;
                Some(block)
            }
            Sealed::Packed(packed) => snap::raw::Decoder::new().decompress_vec(packed).ok(),
        }
    }
}

struct Entry {
    order: u64,
    /// Boxed: entries are a growing vector, and one of them is 32 bytes instead of 500.
    judged: Box<Judged>,
    body: Body,
}

/// The connections one analyzer ended, as an analyzer [`Sink`].
pub struct Store<'a> {
    cat: &'a Catalogue,
    keep: Keep,
    entries: Vec<Entry>,
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

    /// Keeps `conn` as its JSON text, but for `id` and `verdict`, which change at the end.
    fn keep_text(&mut self, conn: &Connection) -> TextRef {
        let text = &mut self.text.open;
        let start = text.len();
        // Serialising plain structs of strings and numbers into memory cannot fail.
        let _ = serde_json::to_writer(&mut *text, conn);
        let written = &text[start..];
        // `id` is the first member and `verdict` the last (see `Connection`); a string member
        // cannot hold `,"verdict":` unescaped.
        let body_end = written
            .windows(VERDICT.len())
            .rposition(|w| w == VERDICT)
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
            block: self.text.sealed.len() as u32,
            start: range.start as u32,
            end: range.end as u32,
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
        let conn = model::connection(
            &tl,
            judged.keepalive.clone(),
            judged.implementations.clone(),
            &std::mem::take(&mut judged.forged_rsts),
        );
        drop(tl);
        let body = match self.keep {
            Keep::Json => Body::Json(self.keep_text(&conn)),
            Keep::Model => Body::Model(Box::new(conn)),
        };
        self.entries.push(Entry {
            order,
            judged: Box::new(judged),
            body,
        });
    }
}

/// Every store of a run, once the analyzers are done.
pub struct Stored {
    /// Connection by connection in the order of their first packet: the store it is in.
    entries: Vec<(usize, Entry)>,
    texts: Vec<Texts>,
}

/// The run's connections with their final verdicts and the findings.
pub struct Settled {
    /// Each connection's store and body, in connection order.
    bodies: Vec<(usize, Body)>,
    texts: Vec<Texts>,
    verdicts: Vec<diagnose::Verdict>,
    pub findings: Vec<model::Finding>,
}

impl Stored {
    pub fn new(stores: Vec<Store<'_>>) -> Stored {
        let mut entries = Vec::with_capacity(stores.iter().map(|s| s.entries.len()).sum());
        let mut texts = Vec::with_capacity(stores.len());
        for (i, s) in stores.into_iter().enumerate() {
            entries.extend(s.entries.into_iter().map(|e| (i, e)));
            let mut text = s.text;
            text.seal();
            texts.push(text);
        }
        // Orders are unique: numbers of the packets that opened the connections.
        entries.sort_unstable_by_key(|(_, e)| e.order);
        Stored { entries, texts }
    }

    /// The path rules over all connections: final verdicts and findings.
    pub fn settle(self, cat: &Catalogue) -> Settled {
        let Stored { entries, texts } = self;
        let mut judged = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        for (store, e) in entries {
            judged.push(*e.judged);
            bodies.push((store, e.body));
        }
        let (verdicts, findings) = diagnose::settle(judged, cat);
        Settled {
            bodies,
            texts,
            verdicts,
            findings: model::findings(&findings),
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
            bodies,
            verdicts,
            findings,
            ..
        } = self;
        let connections = bodies
            .into_iter()
            .zip(&verdicts)
            .enumerate()
            .filter_map(|(id, ((_, body), v))| match body {
                Body::Model(c) => {
                    let mut c = *c;
                    c.id = id;
                    c.verdict = model::verdict(v);
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
        // Connections end roughly in the order they opened, so few blocks are open at once: each
        // is freed when its last connection is written.
        let mut readers: HashMap<(usize, u32), usize> = HashMap::new();
        for (store, body) in &self.bodies {
            if let Body::Json(r) = body {
                *readers.entry((*store, r.block)).or_default() += 1;
            }
        }
        let mut open: HashMap<(usize, u32), Vec<u8>> = HashMap::new();
        super::json_head(input, out)?;
        for (id, ((store, body), v)) in self.bodies.iter_mut().zip(&self.verdicts).enumerate() {
            out.write_all(if id == 0 { b"\n" } else { b",\n" })?;
            match body {
                Body::Model(c) => {
                    c.id = id;
                    c.verdict = model::verdict(v);
                    serde_json::to_writer(&mut *out, c)?;
                }
                Body::Json(r) => {
                    let key = (*store, r.block);
                    if !open.contains_key(&key) {
                        let block = self.texts.get(*store).and_then(|t| t.block(r.block));
                        open.insert(key, block.unwrap_or_default());
                    }
                    let text = open
                        .get(&key)
                        .and_then(|b| b.get(r.start as usize..r.end as usize))
                        .unwrap_or_default();
                    write!(out, "{{\"id\":{id},")?;
                    out.write_all(text)?;
                    if let Some(n) = readers.get_mut(&key) {
                        *n -= 1;
                        if *n == 0 {
                            open.remove(&key);
                        }
                    }
                    out.write_all(VERDICT)?;
                    serde_json::to_writer(&mut *out, &model::verdict(v))?;
                    out.write_all(b"}")?;
                }
            }
        }
        super::json_tail(&self.findings, out)
    }

    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}
