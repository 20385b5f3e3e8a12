//! HTTP/2 stage: recognising HTTP/2 in a TCP connection without being told (client preface on any
//! port, HTTP/1.1 `Upgrade: h2c`, a `CONNECT` tunnel, or a run of plausible frames when the capture
//! starts mid-connection; `--decode-as` forces it), then framing both directions and handing frames
//! to the connection's semantics ([`conn`]). Input is reassembled TCP bytes and gaps; output is the
//! connection's timeline.

pub mod conn;
pub mod frame;
pub mod framer;
pub mod hpack;
pub mod http1;
pub mod huffman;

use crate::capture::Ts;
use crate::tcp::{Chunk, Dir};
use crate::timeline::{Detection, EventKind, Stream, Timeline};
use framer::{Framer, HuntState, RawFrame, Strictness};
use http1::Parsed;
use serde::{Deserialize, Serialize};

/// Limit `max_undecided_bytes`: bytes buffered per direction while the protocol is undecided.
pub const MAX_UNDECIDED: usize = 64 * 1024;

/// What the connection carries, as far as known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    Undecided,
    /// An HTTP/1.1 request that may lead to HTTP/2 awaits its response.
    Http1 {
        upgrade: bool,
    },
    Http2(Detection),
    Tls,
    Other,
}

/// Bytes of one direction not yet given to a framer, with where each segment began.
#[derive(Default, Serialize, Deserialize)]
struct Pending {
    bytes: Vec<u8>,
    starts: Vec<(usize, Ts)>,
}

impl Pending {
    fn push(&mut self, ts: Ts, data: &[u8]) {
        self.starts.push((self.bytes.len(), ts));
        self.bytes.extend_from_slice(data);
    }

    fn last_ts(&self) -> Ts {
        self.starts.last().map_or(Ts(0), |s| s.1)
    }

    /// Drops the first `n` bytes.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.bytes.len());
        self.bytes.drain(..n);
        let mut starts = Vec::with_capacity(self.starts.len());
        for (i, &(s, ts)) in self.starts.iter().enumerate() {
            let end = self.starts.get(i + 1).map_or(usize::MAX, |x| x.0);
            if end > n {
                starts.push((s.saturating_sub(n), ts));
            }
        }
        self.starts = starts;
    }

    fn segments(&self) -> impl Iterator<Item = (Ts, &[u8])> {
        self.starts.iter().enumerate().map(|(i, &(s, ts))| {
            let end = self.starts.get(i + 1).map_or(self.bytes.len(), |x| x.0);
            (ts, &self.bytes[s..end])
        })
    }
}

#[derive(Serialize, Deserialize)]
enum Input {
    /// Undecided: bytes wait here.
    Buffer(Pending),
    /// The client's side before its connection preface (after an h2c upgrade).
    Preface(Pending),
    /// Bytes go to the framer.
    Frames,
    /// Not parsed.
    Ignore,
}

#[derive(Serialize, Deserialize)]
pub struct Session {
    pub proto: Proto,
    decode_as: bool,
    /// Whether each direction's stream is known from its start (SYN seen, no gap before data).
    from_start: [bool; 2],
    in_tunnel: bool,
    inputs: [Input; 2],
    framers: [Framer; 2],
    h2: Option<conn::Connection>,
    /// An h2c upgrade request: it becomes stream 1.
    upgrade_request: Option<(Ts, String, String)>,
}

impl Session {
    /// `from_start`: the connection's SYN is in the capture, so each direction's first bytes are the
    /// protocol's first bytes. `decode_as`: the user forced HTTP/2 on one of its ports.
    pub fn new(from_start: bool, decode_as: bool) -> Session {
        Session {
            proto: Proto::Undecided,
            decode_as,
            from_start: [from_start, from_start],
            in_tunnel: false,
            inputs: [
                Input::Buffer(Pending::default()),
                Input::Buffer(Pending::default()),
            ],
            framers: [Framer::new(), Framer::new()],
            h2: None,
            upgrade_request: None,
        }
    }

    /// Whether bytes are still of interest (an Other or TLS connection needs no reassembly).
    pub fn wants_bytes(&self) -> bool {
        !matches!(self.proto, Proto::Other | Proto::Tls)
    }

    pub fn chunk(&mut self, dir: Dir, chunk: Chunk<'_>, tl: &mut Timeline) {
        match chunk {
            Chunk::Data { ts, bytes } => self.data(dir, ts, bytes, tl),
            Chunk::Gap { ts, len } => {
                if matches!(self.proto, Proto::Http2(_))
                    || matches!(self.inputs[dir.index()], Input::Frames)
                {
                    tl.push(ts, dir, EventKind::Gap { bytes: len });
                }
                match &mut self.inputs[dir.index()] {
                    Input::Frames => {
                        self.framers[dir.index()].lost(len);
                        if let Some(h2) = &mut self.h2 {
                            h2.lost(dir);
                        }
                    }
                    Input::Buffer(p) | Input::Preface(p) => {
                        // The protocol's start in this direction is lost: judge it as mid-stream.
                        p.bytes.clear();
                        p.starts.clear();
                        self.from_start[dir.index()] = false;
                        if let Input::Preface(_) = self.inputs[dir.index()] {
                            self.inputs[dir.index()] = Input::Frames;
                            self.framers[dir.index()] = Framer::hunting(Strictness::Known);
                        }
                    }
                    Input::Ignore => {}
                }
            }
        }
    }

    /// The bytes each direction buffered while the protocol was undecided, with their times: for
    /// the stage that takes the connection over (TLS).
    pub fn take_undecided(&mut self) -> [Vec<(Ts, Vec<u8>)>; 2] {
        let mut out: [Vec<(Ts, Vec<u8>)>; 2] = Default::default();
        for (i, input) in self.inputs.iter_mut().enumerate() {
            if let Input::Buffer(p) | Input::Preface(p) = std::mem::replace(input, Input::Ignore) {
                out[i] = p.segments().map(|(ts, b)| (ts, b.to_vec())).collect();
            }
        }
        out
    }

    /// Whether both directions are known from their first byte.
    pub fn from_start(&self) -> bool {
        self.from_start.iter().all(|&f| f)
    }

    /// End of the connection or the capture: a frame left unfinished is reported.
    pub fn finish(&mut self, ts: Ts, tl: &mut Timeline) {
        if !matches!(self.proto, Proto::Http2(_)) {
            return;
        }
        for dir in [Dir::AtoB, Dir::BtoA] {
            if let Some((head, got)) = self.framers[dir.index()].finish() {
                let name = crate::timeline::FRAME_NAMES
                    .get(head.kind as usize)
                    .copied()
                    .unwrap_or("unknown");
                tl.anomaly(
                    ts,
                    dir,
                    format!(
                        "stream ends inside a {name} frame ({got} of {} payload bytes)",
                        head.len
                    ),
                );
            }
        }
    }

    fn data(&mut self, dir: Dir, ts: Ts, bytes: &[u8], tl: &mut Timeline) {
        match &mut self.inputs[dir.index()] {
            Input::Ignore => {}
            Input::Frames => self.frames(dir, ts, bytes, tl),
            Input::Buffer(p) => {
                if p.bytes.len() + bytes.len() > MAX_UNDECIDED {
                    // Nothing recognisable in this much: not HTTP/2.
                    self.give_up();
                    return;
                }
                p.push(ts, bytes);
                self.decide(dir, tl);
            }
            Input::Preface(p) => {
                p.push(ts, bytes);
                match http1::preface_match(&p.bytes) {
                    Some(false) => {}
                    found => {
                        let p = std::mem::take(p);
                        let mut p = p;
                        if found == Some(true) {
                            tl.preface_seen = true;
                            tl.push(ts, dir, EventKind::Preface);
                            p.consume(http1::PREFACE.len());
                        } else {
                            // Not the preface after all: frames from here, boundaries to be found.
                            self.framers[dir.index()] = Framer::hunting(Strictness::Known);
                        }
                        self.inputs[dir.index()] = Input::Frames;
                        self.replay(dir, &p, tl);
                    }
                }
            }
        }
    }

    fn frames(&mut self, dir: Dir, ts: Ts, bytes: &[u8], tl: &mut Timeline) {
        let reverse = dir.reverse().index();
        let (framers, h2) = (&mut self.framers, &mut self.h2);
        let Some(h2) = h2 else { return };
        let mut new_max = None;
        let state = framers[dir.index()].feed(ts, bytes, &mut |f: RawFrame<'_>| {
            if let Some(m) = h2.frame(dir, f, tl).max_frame_size_for_peer {
                new_max = Some(m);
            }
        });
        if let Some(m) = new_max {
            framers[reverse].max_frame_size = m;
        }
        match (state, self.proto) {
            (HuntState::Synced, Proto::Undecided) => {
                self.proto = Proto::Http2(Detection::MidStream);
                tl.http2 = Some(Detection::MidStream);
                // The other direction now only has to find its boundaries.
                if let Input::Buffer(p) =
                    std::mem::replace(&mut self.inputs[reverse], Input::Frames)
                {
                    self.framers[reverse] = Framer::hunting(Strictness::Known);
                    self.replay(dir.reverse(), &p, tl);
                }
            }
            (HuntState::GaveUp, Proto::Undecided) => self.give_up(),
            _ => {}
        }
    }

    fn replay(&mut self, dir: Dir, p: &Pending, tl: &mut Timeline) {
        for (ts, seg) in p.segments() {
            self.data(dir, ts, seg, tl);
        }
    }

    fn give_up(&mut self) {
        if self.proto == Proto::Undecided || matches!(self.proto, Proto::Http1 { .. }) {
            self.proto = Proto::Other;
        }
        self.inputs = [Input::Ignore, Input::Ignore];
        self.h2 = None;
    }

    /// Looks at a direction's undecided bytes and decides what the connection carries when it can.
    fn decide(&mut self, dir: Dir, tl: &mut Timeline) {
        let Input::Buffer(p) = &self.inputs[dir.index()] else {
            return;
        };
        let bytes = &p.bytes;
        if bytes.is_empty() {
            return;
        }
        if let Proto::Http1 { upgrade } = self.proto {
            // A client sends its preface only after the 101: seeing it proves the upgrade even when
            // the 101 itself is missing from the capture.
            if upgrade && tl.client_dir == Some(dir) {
                if let Parsed::Complete(req) = http1::parse_request(bytes) {
                    let after =
                        (req.head_len as u64 + req.content_length).min(bytes.len() as u64) as usize;
                    if http1::preface_match(&bytes[after..]) == Some(true) {
                        let server_head = match &self.inputs[dir.reverse().index()] {
                            Input::Buffer(p) => match http1::parse_response(&p.bytes) {
                                Parsed::Complete(r) if r.status == 101 => Some(r.head_len),
                                _ => None,
                            },
                            _ => None,
                        };
                        return self.upgrade(dir, server_head, tl);
                    }
                }
            }
            return self.http1_response(dir, upgrade, tl);
        }
        match http1::preface_match(bytes) {
            Some(false) => return,
            Some(true) => {
                tl.client_dir.get_or_insert(dir);
                let detection = if self.in_tunnel {
                    Detection::ConnectTunnel
                } else if self.decode_as {
                    Detection::DecodeAs
                } else {
                    Detection::Preface
                };
                let ts = p.last_ts();
                tl.preface_seen = true;
                tl.push(ts, dir, EventKind::Preface);
                self.start_http2(detection, tl, Some((dir, http1::PREFACE.len())));
                return;
            }
            None => {}
        }
        if self.decode_as {
            self.start_http2(Detection::DecodeAs, tl, None);
            return;
        }
        if http1::looks_like_request(bytes) {
            match http1::parse_request(bytes) {
                Parsed::Partial => {}
                Parsed::Invalid => self.give_up(),
                Parsed::Complete(req) => {
                    tl.client_dir.get_or_insert(dir);
                    if req.method == "CONNECT" {
                        self.proto = Proto::Http1 { upgrade: false };
                    } else if req.upgrade_h2c {
                        self.proto = Proto::Http1 { upgrade: true };
                        self.upgrade_request =
                            Some((p.starts[0].1, req.method.clone(), req.target.clone()));
                    } else {
                        self.give_up();
                        return;
                    }
                    // The response may already be waiting in the other direction.
                    self.http1_response(
                        dir.reverse(),
                        self.proto == (Proto::Http1 { upgrade: true }),
                        tl,
                    );
                }
            }
            return;
        }
        if crate::tls::starts_tls(bytes) {
            // The TLS stage takes over, with the bytes buffered so far (`take_undecided`).
            tl.tls = true;
            tl.client_dir.get_or_insert(dir);
            self.proto = Proto::Tls;
            return;
        }
        if http1::looks_like_response(bytes) {
            // A server's answer: the client's side decides.
            return;
        }
        if self.from_start[dir.index()] {
            let is_client = tl.client_dir == Some(dir);
            if is_client {
                self.give_up();
            }
            // A server that speaks first (its SETTINGS before the client's preface): wait.
            return;
        }
        // Mid-stream: hunt for frames, strictly, in this direction.
        if self.h2.is_none() {
            self.h2 = Some(conn::Connection::new(false));
        }
        if let Input::Buffer(p) = std::mem::replace(&mut self.inputs[dir.index()], Input::Frames) {
            self.framers[dir.index()] = Framer::hunting(Strictness::Detect);
            self.replay(dir, &p, tl);
        }
    }

    /// The server's answer to an HTTP/1.1 request that may lead to HTTP/2.
    fn http1_response(&mut self, dir: Dir, upgrade: bool, tl: &mut Timeline) {
        let Input::Buffer(p) = &self.inputs[dir.index()] else {
            return;
        };
        if tl.client_dir == Some(dir) {
            // The client's own bytes after its request (the preface after an upgrade): kept for
            // later.
            return;
        }
        let resp = match http1::parse_response(&p.bytes) {
            Parsed::Partial => return,
            Parsed::Invalid => return self.give_up(),
            Parsed::Complete(r) => r,
        };
        let client = dir.reverse();
        if upgrade && resp.status == 101 {
            self.upgrade(client, Some(resp.head_len), tl);
        } else if !upgrade && (200..300).contains(&resp.status) {
            // A CONNECT tunnel: whatever follows is judged afresh, as from its start.
            self.proto = Proto::Undecided;
            self.in_tunnel = true;
            let mut server = self.take_pending(dir);
            server.consume(resp.head_len);
            let mut client_bytes = self.take_pending(client);
            if let Parsed::Complete(req) = http1::parse_request(&client_bytes.bytes) {
                client_bytes.consume(req.head_len);
            }
            self.inputs = [
                Input::Buffer(Pending::default()),
                Input::Buffer(Pending::default()),
            ];
            self.replay(client, &client_bytes, tl);
            self.replay(dir, &server, tl);
        } else {
            self.give_up();
        }
    }

    /// The h2c upgrade happened: the server's bytes after its 101 (or, when the 101 is missing from
    /// the capture, from wherever frames can be found) and the client's after its request are HTTP/2.
    fn upgrade(&mut self, client: Dir, server_head_len: Option<usize>, tl: &mut Timeline) {
        let server = client.reverse();
        self.proto = Proto::Http2(Detection::Upgrade);
        tl.http2 = Some(Detection::Upgrade);
        self.h2 = Some(conn::Connection::new(self.from_start[server.index()]));
        // The upgrade request is stream 1 (RFC 7540 §3.2), half-closed by the client.
        if let Some((req_ts, method, target)) = self.upgrade_request.take() {
            tl.streams.insert(
                1,
                Box::new(Stream {
                    id: 1,
                    opened_by: Some(client),
                    opened: Some(req_ts),
                    http_method: Some(method.into()),
                    path: Some(target.into()),
                    ended: if client == Dir::AtoB {
                        [true, false]
                    } else {
                        [false, true]
                    },
                    ..Stream::default()
                }),
            );
            tl.stream_opened(req_ts);
        }
        let mut server_bytes = self.take_pending(server);
        match server_head_len {
            Some(n) => server_bytes.consume(n),
            None => self.framers[server.index()] = Framer::hunting(Strictness::Known),
        }
        self.inputs[server.index()] = Input::Frames;
        self.replay(server, &server_bytes, tl);
        let mut client_bytes = self.take_pending(client);
        if let Parsed::Complete(req) = http1::parse_request(&client_bytes.bytes) {
            client_bytes
                .consume(req.head_len + req.content_length.min(MAX_UNDECIDED as u64) as usize);
        }
        self.inputs[client.index()] = Input::Preface(Pending::default());
        self.replay(client, &client_bytes, tl);
    }

    fn take_pending(&mut self, dir: Dir) -> Pending {
        match std::mem::replace(&mut self.inputs[dir.index()], Input::Frames) {
            Input::Buffer(p) | Input::Preface(p) => p,
            _ => Pending::default(),
        }
    }

    /// HTTP/2 is decided: both directions' waiting bytes go to the framers. `client_preface` is the
    /// direction whose buffer starts with the preface, and its length.
    fn start_http2(
        &mut self,
        detection: Detection,
        tl: &mut Timeline,
        client_preface: Option<(Dir, usize)>,
    ) {
        self.proto = Proto::Http2(detection);
        tl.http2 = Some(detection);
        let known = self.from_start.iter().all(|&k| k) || client_preface.is_some();
        self.h2 = Some(conn::Connection::new(known));
        // Replay the client first: its preface and SETTINGS come first in protocol order.
        let order = match client_preface {
            Some((d, _)) => [d, d.reverse()],
            None => [Dir::AtoB, Dir::BtoA],
        };
        for dir in order {
            let mut p = self.take_pending(dir);
            if let Some((d, n)) = client_preface {
                if d == dir {
                    p.consume(n);
                }
            }
            if detection == Detection::DecodeAs && http1::preface_match(&p.bytes) == Some(true) {
                tl.preface_seen = true;
                tl.push(p.starts[0].1, dir, EventKind::Preface);
                tl.client_dir.get_or_insert(dir);
                p.consume(http1::PREFACE.len());
            }
            // Frames from the first byte; where that is not a frame boundary (decode-as on a
            // mid-stream capture), hunt for one.
            let first_ok = p.bytes.len() < 9 || {
                let mut h = [0u8; 9];
                h.copy_from_slice(&p.bytes[..9]);
                frame::FrameHeader::parse(&h).plausible(1 << 24)
            };
            self.framers[dir.index()] = if first_ok {
                Framer::new()
            } else {
                Framer::hunting(Strictness::Known)
            };
            self.inputs[dir.index()] = Input::Frames;
            self.replay(dir, &p, tl);
        }
    }
}
