//! Report stage: a serialisable model built once from the timelines and the diagnosis, then
//! rendered as text for people, the CONTRACT's JSON document for scripts, an HTML or PNG timeline
//! for tickets, and Parquet/CSV tables for notebooks. Renderers never diagnose.

pub mod html;
pub mod json;
pub mod model;
pub mod png;
pub mod store;
pub mod tables;
pub mod text;

pub use model::{build, Document};

use std::io::{self, Write};

/// Writes the JSON document: compact, with each connection and each finding on a line of its own
/// (`grep` finds a connection, `jq` reads it whole), straight to `out`: a capture with tens of
/// thousands of connections makes a document of hundreds of MB that need not sit in memory.
pub fn write_json(doc: &Document, out: &mut impl Write) -> io::Result<()> {
    json_head(&doc.input, out)?;
    let mut text = Vec::new();
    for (i, c) in doc.connections.iter().enumerate() {
        text.clear();
        text.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        json::to_vec_into(&mut text, c)?;
        out.write_all(&text)?;
    }
    json_tail(&doc.findings, out)
}

/// The document up to the opening of its connections.
fn json_head(input: &model::Input, out: &mut impl Write) -> io::Result<()> {
    write!(out, "{{\"schema\":\"{}\",\n\"input\":", model::SCHEMA)?;
    json::to_writer(out, input)?;
    out.write_all(b",\n\"connections\":[")
}

/// The document after its last connection.
fn json_tail(findings: &[model::Finding], out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"\n],\n\"findings\":[")?;
    for (i, f) in findings.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        json::to_writer(out, f)?;
    }
    out.write_all(b"\n]}\n")
}

/// The JSON document as a string.
pub fn json(doc: &Document) -> String {
    let mut v = Vec::new();
    // Writing plain structs of strings and numbers into memory cannot fail.
    let _ = write_json(doc, &mut v);
    String::from_utf8_lossy(&v).into_owned()
}
