//! Report stage: a serialisable model built once from the timelines and the diagnosis, then
//! rendered as text for people, the CONTRACT's JSON document for scripts, an HTML or PNG timeline
//! for tickets, and Parquet/CSV tables for notebooks. Renderers never diagnose.

pub mod html;
pub mod model;
pub mod png;
pub mod tables;
pub mod text;

pub use model::{build, Document};

use std::io::{self, Write};

/// Writes the JSON document, pretty-printed, straight to `out`: a capture with tens of thousands
/// of connections makes a document of hundreds of MB that need not sit in memory as one string.
pub fn write_json(doc: &Document, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, doc).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// The JSON document as a string.
pub fn json(doc: &Document) -> String {
    let mut v = Vec::new();
    // Writing plain structs of strings and numbers into memory cannot fail.
    let _ = write_json(doc, &mut v);
    String::from_utf8_lossy(&v).into_owned()
}
