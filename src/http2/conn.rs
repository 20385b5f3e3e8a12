//! HTTP/2 connection semantics: frames from both directions become timeline facts — frame counts,
//! PINGs, GOAWAYs, RST_STREAMs, SETTINGS, and streams with their requests, statuses and lifetimes.
//! Header blocks (HEADERS or PUSH_PROMISE with their CONTINUATIONs) are assembled and decoded with
//! one HPACK table per direction. A block in a single frame, the common case, is decoded where the
//! framer holds it; only blocks spread over CONTINUATIONs are copied together.

use super::frame::{self, kind, settings, FrameError, FrameHeader};
use super::framer::{RawFrame, MAX_KEPT_HEADER_PAYLOAD};
use super::hpack::{BlockDecoder, Field, Fields};
use crate::capture::Ts;
use crate::tcp::Dir;
use crate::timeline::{EventKind, Timeline};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Limit `max_continuation_frames`: CONTINUATION frames in one header block.
pub const MAX_CONTINUATIONS: u32 = 1000;

/// A header block being assembled (its bytes are in [`Side::bytes`]).
#[derive(Serialize, Deserialize)]
struct Block {
    stream: u32,
    /// For PUSH_PROMISE: the promised stream the block describes.
    promised: Option<u32>,
    end_stream: bool,
    continuations: u32,
    /// Some of the block was lost or exceeded the limit: it is not decoded.
    damaged: bool,
    /// A limit was hit and reported: the block's further frames report it no more.
    limited: bool,
    /// Payload length the first frame (HEADERS or PUSH_PROMISE) declared.
    declared: usize,
}

impl Block {
    /// The block a HEADERS or PUSH_PROMISE frame opens.
    fn opened(head: &FrameHeader, promised: Option<u32>, end_stream: bool, cut: bool) -> Block {
        Block {
            stream: head.stream,
            promised,
            end_stream,
            continuations: 0,
            damaged: cut,
            limited: false,
            declared: head.len as usize,
        }
    }
}

/// A block buffer larger than this is freed once its block is decoded, not kept for the next.
const BLOCK_BUFFER_KEPT: usize = 16 * 1024;

#[derive(Serialize, Deserialize)]
struct Side {
    hpack: BlockDecoder,
    block: Option<Block>,
    /// The fragments of `block` so far; the buffer is reused from block to block.
    bytes: Vec<u8>,
    /// SETTINGS_MAX_FRAME_SIZE that applies to this side's frames: the default until the peer's
    /// SETTINGS says otherwise; unknown (not checked) when the connection's start is not captured.
    max_frame_size: Option<u32>,
    /// The last string made of each kept field's value (by [`Field`]): the streams of a connection
    /// mostly repeat the same authority, path, content-type and status, and share one string then.
    /// Only a cache, so not kept when the connection is parked.
    #[serde(skip)]
    last_values: [Option<Arc<str>>; 7],
}

#[derive(Serialize, Deserialize)]
pub struct Connection {
    sides: [Side; 2],
}

/// What a frame changes for the framers: a SETTINGS_MAX_FRAME_SIZE announced by the sender applies
/// to the frames the other direction sends.
pub struct Effect {
    pub max_frame_size_for_peer: Option<u32>,
}

impl Connection {
    /// `hpack_known`: whether the header tables start empty (the connection's start is in the
    /// capture) or in an unknown state (mid-connection).
    pub fn new(hpack_known: bool) -> Connection {
        let side = || Side {
            hpack: BlockDecoder::new(hpack_known),
            block: None,
            bytes: Vec::new(),
            max_frame_size: hpack_known.then_some(frame::DEFAULT_MAX_FRAME_SIZE),
            last_values: Default::default(),
        };
        Connection {
            sides: [side(), side()],
        }
    }

    /// Bytes of a direction were lost: an unfinished header block is gone, and so is the certainty
    /// about that direction's HPACK table.
    pub fn lost(&mut self, dir: Dir) {
        let side = &mut self.sides[dir.index()];
        if side.block.take().is_some() {
            side.hpack.lose_state();
            side.bytes = Vec::new();
        }
    }

    pub fn frame(&mut self, dir: Dir, f: RawFrame<'_>, tl: &mut Timeline) -> Effect {
        let mut effect = Effect {
            max_frame_size_for_peer: None,
        };
        let (ts, head) = (f.ts, f.head);
        tl.count_frame(head.kind, dir);
        // §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size
        // defined in SETTINGS_MAX_FRAME_SIZE". The framer never buffers such a frame; it is reported.
        if let Some(max) = self.sides[dir.index()].max_frame_size {
            if head.len > max {
                let name = frame_name(head.kind);
                let what = format!(
                    "{name} frame of {} bytes exceeds SETTINGS_MAX_FRAME_SIZE {max} (FRAME_SIZE_ERROR)",
                    head.len
                );
                tl.anomaly(ts, dir, what);
            }
        }
        // §6.10: "If the END_HEADERS flag is not set, this frame MUST be followed by another
        // CONTINUATION frame. A receiver MUST treat the receipt of any other type of frame or a
        // frame on a different stream as a connection error".
        if let Some(block) = &self.sides[dir.index()].block {
            if head.kind != kind::CONTINUATION || head.stream != block.stream {
                tl.anomaly(
                    ts,
                    dir,
                    format!(
                        "expected CONTINUATION of stream {}, got frame type {}",
                        block.stream, head.kind
                    ),
                );
                self.lost(dir);
            }
        }
        let result: Result<(), FrameError> = match head.kind {
            kind::DATA => frame::Data::parse(&head).map(|d| {
                if let Some(s) = tl.stream(head.stream) {
                    let new = s.opened.is_none() && s.closed.is_none();
                    if new {
                        s.opened = Some(ts);
                        s.headers_incomplete = true;
                    }
                    if new {
                        tl.stream_opened(ts);
                    }
                    if d.end_stream {
                        end_stream(tl, head.stream, dir, ts);
                    }
                }
            }),
            kind::HEADERS => frame::Headers::parse(&head, f.payload).map(|h| {
                let block = Block::opened(&head, None, h.end_stream, f.cut);
                self.first_fragment(dir, block, h.fragment, h.end_headers, ts, tl);
            }),
            kind::PUSH_PROMISE => frame::PushPromise::parse(&head, f.payload).map(|p| {
                let block = Block::opened(&head, Some(p.promised_stream), false, f.cut);
                self.first_fragment(dir, block, p.fragment, p.end_headers, ts, tl);
            }),
            kind::CONTINUATION => frame::Continuation::parse(&head, f.payload).map(|c| {
                let side = &mut self.sides[dir.index()];
                match side.block.take() {
                    Some(mut block) => {
                        block.continuations = block.continuations.saturating_add(1);
                        block.damaged |= f.cut;
                        let kept = side.bytes.len() + c.fragment.len();
                        if block.continuations > MAX_CONTINUATIONS {
                            limit_block(&mut block, "max_continuation_frames", ts, dir, tl);
                        } else if head.len as usize > MAX_KEPT_HEADER_PAYLOAD
                            || kept > MAX_KEPT_HEADER_PAYLOAD
                        {
                            limit_block(&mut block, "max_header_block", ts, dir, tl);
                        } else {
                            side.bytes.extend_from_slice(c.fragment);
                        }
                        if c.end_headers {
                            let hpack = &mut side.hpack;
                            let last = &mut side.last_values;
                            decode_block(hpack, last, &block, &side.bytes, dir, ts, tl);
                            side.bytes.clear();
                            if side.bytes.capacity() > BLOCK_BUFFER_KEPT {
                                side.bytes = Vec::new();
                            }
                        } else {
                            side.block = Some(block);
                        }
                    }
                    None => tl.anomaly(
                        ts,
                        dir,
                        format!("CONTINUATION on stream {} without HEADERS", head.stream),
                    ),
                }
            }),
            kind::PRIORITY => frame::Priority::parse(&head).map(|_| ()),
            kind::RST_STREAM => frame::RstStream::parse(&head, f.payload).map(|r| {
                tl.push(
                    ts,
                    dir,
                    EventKind::RstStream {
                        stream_id: head.stream,
                        error_code: r.error_code,
                    },
                );
                if let Some(s) = tl.stream(head.stream) {
                    if s.reset.is_none() {
                        s.reset = Some((dir, r.error_code));
                    }
                    if s.closed.is_none() {
                        let was_open = s.opened.is_some();
                        s.closed = Some(ts);
                        if was_open {
                            tl.stream_closed(ts);
                        }
                    }
                }
            }),
            kind::SETTINGS => frame::Settings::parse(&head, f.payload).map(|s| {
                for &(id, value) in &s.params {
                    if id == settings::MAX_FRAME_SIZE && (1 << 14..1 << 24).contains(&value) {
                        effect.max_frame_size_for_peer = Some(value);
                        self.sides[dir.reverse().index()].max_frame_size = Some(value);
                    }
                }
                tl.push(
                    ts,
                    dir,
                    EventKind::Settings {
                        ack: s.ack,
                        params: s.params,
                    },
                );
            }),
            kind::PING => frame::Ping::parse(&head, f.payload).map(|p| {
                tl.push(
                    ts,
                    dir,
                    EventKind::Ping {
                        ack: p.ack,
                        opaque: p.opaque,
                    },
                );
            }),
            kind::GOAWAY => frame::Goaway::parse(&head, f.payload).map(|g| {
                tl.push(
                    ts,
                    dir,
                    EventKind::Goaway {
                        last_stream_id: g.last_stream_id,
                        error_code: g.error_code,
                        debug_data: g.debug_data.to_vec(),
                    },
                );
            }),
            kind::WINDOW_UPDATE => frame::WindowUpdate::parse(&head, f.payload).map(|_| ()),
            // §5.5: "Implementations MUST ignore and discard frames of unknown types."
            _ => Ok(()),
        };
        if let Err(e) = result {
            tl.anomaly(ts, dir, format!("{} frame: {e}", frame_name(head.kind)));
        }
        if f.cut
            && head.kind != kind::DATA
            && !matches!(
                head.kind,
                kind::HEADERS | kind::CONTINUATION | kind::PUSH_PROMISE | kind::GOAWAY
            )
        {
            tl.anomaly(
                ts,
                dir,
                format!("{} frame cut short by lost bytes", frame_name(head.kind)),
            );
        }
        effect
    }

    /// The first frame of a header block (HEADERS or PUSH_PROMISE): the block is decoded, or stored
    /// until its CONTINUATIONs arrive.
    fn first_fragment(
        &mut self,
        dir: Dir,
        mut block: Block,
        fragment: &[u8],
        end_headers: bool,
        ts: Ts,
        tl: &mut Timeline,
    ) {
        // The framer keeps at most MAX_KEPT_HEADER_PAYLOAD bytes of a frame: a longer one arrives
        // cut, and its block cannot be decoded.
        if block.declared > MAX_KEPT_HEADER_PAYLOAD {
            limit_block(&mut block, "max_header_block", ts, dir, tl);
        }
        let side = &mut self.sides[dir.index()];
        if end_headers {
            decode_block(
                &mut side.hpack,
                &mut side.last_values,
                &block,
                fragment,
                dir,
                ts,
                tl,
            );
        } else {
            side.bytes.clear();
            side.bytes.extend_from_slice(fragment);
            side.block = Some(block);
        }
    }
}

/// Decodes a finished header block and records its fields on its stream.
fn decode_block(
    hpack: &mut BlockDecoder,
    last_values: &mut [Option<Arc<str>>; 7],
    block: &Block,
    bytes: &[u8],
    dir: Dir,
    ts: Ts,
    tl: &mut Timeline,
) {
    let (fields, incomplete): (Option<&Fields>, bool) = if block.damaged {
        // Part of the block is missing, so the table updates it made are unknown.
        hpack.lose_state();
        (None, true)
    } else {
        let (fields, trouble) = hpack.decode(bytes);
        if let Some(e) = trouble.error {
            tl.anomaly(ts, dir, format!("stream {}: {e}", block.stream));
        }
        if let Some(limit) = trouble.limit {
            tl.push(
                ts,
                dir,
                EventKind::Limit {
                    name: limit.into(),
                    detail: format!("header block of stream {}", block.stream),
                },
            );
        }
        (Some(fields), trouble.incomplete)
    };
    let get = |field| fields.and_then(|f| f.get(field));
    let (id, opener) = match block.promised {
        Some(promised) => (promised, true),
        None => (
            block.stream,
            get(Field::Method).is_some() || get(Field::Path).is_some(),
        ),
    };
    if let Some(s) = tl.stream(id) {
        let new = s.opened.is_none() && s.closed.is_none();
        if new {
            s.opened = Some(ts);
        }
        if opener && s.opened_by.is_none() {
            s.opened_by = Some(dir);
        }
        s.headers_incomplete |= incomplete;
        for (slot, field) in [
            (&mut s.http_method, Field::Method),
            (&mut s.path, Field::Path),
            (&mut s.authority, Field::Authority),
            (&mut s.status, Field::Status),
            (&mut s.content_type, Field::ContentType),
            (&mut s.grpc_status, Field::GrpcStatus),
            (&mut s.grpc_message, Field::GrpcMessage),
        ] {
            if let Some(value) = get(field) {
                keep(slot, value, &mut last_values[field as usize]);
            }
        }
        if new {
            tl.stream_opened(ts);
        }
        if block.end_stream {
            end_stream(tl, id, dir, ts);
        }
    }
}

/// Sets a stream's field to a header value; the same value again (a response's content-type after
/// the request's) costs no new string, and neither does the value the field had last on this side
/// of the connection (`last`, which then shares it).
fn keep(slot: &mut Option<Arc<str>>, value: &[u8], last: &mut Option<Arc<str>>) {
    let same = |s: &Option<Arc<str>>| s.as_deref().map(str::as_bytes) == Some(value);
    if same(slot) {
        return;
    }
    if !same(last) {
        // Header values are ASCII: checked as such first, as from_utf8_lossy's chunking cost twice
        // what making the string did.
        *last = Some(match std::str::from_utf8(value) {
            Ok(text) => text.into(),
            Err(_) => String::from_utf8_lossy(value).into(),
        });
    }
    slot.clone_from(last);
}

/// A header block crossed limit `name`: it is not decoded, and the limit is reported once per block.
fn limit_block(block: &mut Block, name: &'static str, ts: Ts, dir: Dir, tl: &mut Timeline) {
    if !block.limited {
        let detail = format!(
            "header block of stream {} exceeds {} bytes or {} CONTINUATION frames",
            block.stream, MAX_KEPT_HEADER_PAYLOAD, MAX_CONTINUATIONS
        );
        tl.push(
            ts,
            dir,
            EventKind::Limit {
                name: name.into(),
                detail,
            },
        );
    }
    block.limited = true;
    block.damaged = true;
}

/// END_STREAM from `dir`: the stream closes once both sides have ended it.
fn end_stream(tl: &mut Timeline, id: u32, dir: Dir, ts: Ts) {
    let mut closed_now = false;
    if let Some(s) = tl.streams.get_mut(&id) {
        s.ended[dir.index()] = true;
        if s.ended == [true, true] && s.closed.is_none() {
            s.closed = Some(ts);
            closed_now = true;
        }
    }
    if closed_now {
        tl.stream_closed(ts);
    }
}

fn frame_name(kind: u8) -> String {
    crate::timeline::FRAME_NAMES
        .get(kind as usize)
        .map_or_else(|| format!("UNKNOWN_0x{kind:02x}"), |n| n.to_string())
}
