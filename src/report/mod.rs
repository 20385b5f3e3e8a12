//! Report stage: a serialisable model built once from the timelines (and, later, the findings),
//! then rendered as text for people or as the CONTRACT's JSON document for scripts.

pub mod model;
pub mod text;

pub use model::{build, Document};

/// The JSON document, pretty-printed.
pub fn json(doc: &Document) -> String {
    // Serialising plain structs of strings and numbers cannot fail; fall back to an empty object
    // rather than panic if it ever did.
    serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".to_string())
}
