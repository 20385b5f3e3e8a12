#!/usr/bin/env python3
"""Generates the adversarial captures of tests/adversarial.rs (python3 stdlib only).

Each capture attacks one named limit of h2keepalive; its expected outcome follows from how it is
built here (counts, sizes, stream ids), never from the tool's output. See README.md for the list.

    python3 make.py                # the small captures, into this directory (committed)
    python3 make.py --big DIR      # the large ones (SYN flood, out-of-order floods, 16 MB header
                                   # block), into DIR; tests generate them at test time

Every capture is a little-endian microsecond pcap with link type 101 (raw IP), IPv4, client
198.18.0.2 (TTL 64) and server 198.18.1.2:50051 (TTL 61).
"""

import os
import struct
import sys

CLIENT = ("198.18.0.2", 40000)
SERVER = ("198.18.1.2", 50051)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
T0 = 1_700_000_000

# RFC 9113 frame types and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

# Limits of src/ that the captures cross (kept in step by hand; the tests check the names).
MAX_FLOWS = 500_000                  # src/tcp/flow.rs
MAX_OUT_OF_ORDER_BYTES = 4 << 20     # src/tcp/reassembly.rs
MAX_OUT_OF_ORDER_SEGMENTS = 4096     # src/tcp/reassembly.rs
MAX_CONTINUATIONS = 1000             # src/http2/conn.rs
MAX_KEPT_HEADER_PAYLOAD = 256 * 1024 # src/http2/framer.rs
MAX_DECODED_HEADER_LIST = 256 * 1024 # src/http2/hpack.rs
HPACK_TABLE_SIZE = 64 * 1024         # src/http2/hpack.rs


class Pcap:
    """A pcap being written: records of raw IPv4/TCP packets."""

    def __init__(self):
        self.out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
        self.packets = 0

    def record(self, ts, data, orig_len=None):
        sec, usec = int(ts), int(round((ts - int(ts)) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self.out += struct.pack("<IIII", sec, usec, len(data), orig_len or len(data)) + data
        self.packets += 1

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.out)


def ip(a):
    return bytes(int(x) for x in a.split("."))


def tcp_packet(src, dst, seq, ack, flags, payload=b"", ttl=64, declared=None):
    """IPv4 + TCP with 20-byte headers. `declared`: payload length the IP header claims (snaplen cut)."""
    plen = len(payload) if declared is None else declared
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40 + plen, 1, 0x4000, ttl, 6, 0, ip(src[0]), ip(dst[0]))
    tcph = struct.pack(">HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
    return iph + tcph + payload


SYN, FIN, RST, PSH, ACKF = 0x02, 0x01, 0x04, 0x08, 0x10


class Conn:
    """One TCP connection between CLIENT and SERVER, with a clock and both sequence spaces."""

    def __init__(self, pcap, client=CLIENT, server=SERVER, t=T0):
        self.p, self.c, self.s, self.t = pcap, client, server, t
        self.seq = {0: 1000, 1: 5000}  # next sequence number per side (0 client, 1 server)

    def addr(self, side):
        return (self.c, self.s) if side == 0 else (self.s, self.c)

    def ttl(self, side):
        return 64 if side == 0 else 61

    def handshake(self):
        self.send_flags(0, SYN)
        self.send_flags(1, SYN | ACKF)
        self.send_flags(0, ACKF, advance=False)

    def send_flags(self, side, flags, advance=True):
        src, dst = self.addr(side)
        self.tick()
        pkt = tcp_packet(src, dst, self.seq[side] - (0 if flags & SYN else 0), self.seq[1 - side], flags, ttl=self.ttl(side))
        self.p.record(self.t, pkt)
        if advance and flags & (SYN | FIN):
            self.seq[side] += 1

    def tick(self, dt=0.001):
        self.t += dt

    def send(self, side, data, mss=1400, dt=0.001):
        src, dst = self.addr(side)
        for i in range(0, len(data), mss):
            chunk = data[i : i + mss]
            self.tick(dt)
            self.p.record(self.t, tcp_packet(src, dst, self.seq[side], self.seq[1 - side], PSH | ACKF, chunk, self.ttl(side)))
            self.seq[side] += len(chunk)

    def start_h2(self):
        """Handshake, client preface and SETTINGS, server SETTINGS, both ACKs."""
        self.handshake()
        self.send(0, PREFACE + frame(SETTINGS, 0, 0, b""))
        self.send(1, frame(SETTINGS, 0, 0, b"") + frame(SETTINGS, ACK, 0, b""))
        self.send(0, frame(SETTINGS, ACK, 0, b""))


def frame(kind, flags, stream, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first):
    """RFC 7541 §5.1 integer with `first` holding the representation's high bits."""
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes([first | value])
    out, value = [first | mask], value - mask
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    return hpack_int(len(s), 7, 0) + s


def request_block(path=b"/pkg.Svc/Call"):
    # :method POST (static 3), :scheme http (6), :path literal without indexing, name index 4.
    return b"\x83\x86" + hpack_int(4, 4, 0x00) + hpack_str(path)


# ---------------------------------------------------------------------------------------------
# Small captures (committed)


def continuation_flood(path, n=MAX_CONTINUATIONS + 500):
    """HEADERS without END_HEADERS, then `n` one-byte CONTINUATIONs, the last with END_HEADERS."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    body = frame(HEADERS, 0, 1, b"\x83")
    for i in range(n):
        body += frame(CONTINUATION, END_HEADERS if i == n - 1 else 0, 1, b"\x86")
    c.send(0, body)
    c.send(1, frame(GOAWAY, 0, 0, struct.pack(">II", 1, 1)))
    p.write(path)


def hpack_table_size(path):
    """A header block whose first representation is a dynamic table size update to 2^28 - 1 + 31,
    far past the 64 KiB kept (and the 4096 the peer allowed)."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    block = hpack_int((1 << 28) - 1, 5, 0x20) + request_block()
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    p.write(path)


def hpack_bomb_indexed(path, refs=16000):
    """One 4000-byte table entry, then a HEADERS frame referencing it `refs` times: 64 MB of decoded
    header list from 16 kB."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    entry = hpack_int(0, 6, 0x40) + hpack_str(b"x-bomb") + hpack_str(b"v" * 4000)
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block() + entry))
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block() + b"\xbe" * refs))
    p.write(path)


def hpack_bomb_literal(path, refs=5000):
    """One table entry with a 4000-byte name, then literals without indexing that reuse that name with
    an empty value, `refs` times: 20 MB of decoded names from 15 kB, without a single indexed field."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    entry = hpack_int(0, 6, 0x40) + hpack_str(b"n" * 4000) + hpack_str(b"")
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block() + entry))
    # Literal without indexing (0000xxxx), name index 62 (the entry above), empty value.
    rep = hpack_int(62, 4, 0x00) + hpack_str(b"")
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block() + rep * refs))
    p.write(path)


def frame_16mb(path):
    """A DATA frame on stream 1 that declares 2^24 - 1 bytes, the largest length a frame header can
    hold, where the peer allowed the default 16384; then a PING. The frame header and 1000 payload
    bytes are captured, the rest of the payload is declared by packets whose snapshot length cut
    it away. The framer must skip the whole frame without buffering it and find the PING after it."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    c.send(0, frame(HEADERS, END_HEADERS, 1, request_block()))
    big = (1 << 24) - 1
    c.send(0, frame(DATA, 0, 1, b"\0" * 1000, length=big))
    src, dst = c.addr(0)
    left = big - 1000
    while left > 0:
        n = min(left, 64000)
        c.tick()
        p.record(c.t, tcp_packet(src, dst, c.seq[0], c.seq[1], ACKF, b"", 64, declared=n), orig_len=40 + n)
        c.seq[0] += n
        left -= n
    c.send(0, frame(PING, 0, 0, b"after16M"))
    p.write(path)


STREAM_MAX = (1 << 31) - 1


def stream_ids_near_2_31(path):
    """Requests on the highest stream ids, one with the reserved bit set on the wire, a PRIORITY
    depending on 2^31 - 1, RST_STREAM and WINDOW_UPDATE on it, and a GOAWAY naming it."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    ids = [STREAM_MAX - 4, STREAM_MAX - 2, STREAM_MAX]
    for i in ids[:-1]:
        c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, i, request_block()))
    # The reserved bit set: §4.1 "MUST be ignored when receiving", so this is stream 2^31 - 1.
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, STREAM_MAX | 0x8000_0000, request_block()))
    c.send(0, frame(PRIORITY, 0, STREAM_MAX - 2, struct.pack(">IB", STREAM_MAX, 15)))
    c.send(1, frame(WINDOW_UPDATE, 0, STREAM_MAX, struct.pack(">I", STREAM_MAX)))
    for i in ids:
        c.send(1, frame(HEADERS, END_HEADERS | END_STREAM, i, b"\x88"))  # :status 200
    c.send(0, frame(RST_STREAM, 0, STREAM_MAX, struct.pack(">I", 8)))
    c.send(1, frame(GOAWAY, 0, 0, struct.pack(">II", STREAM_MAX, 0)))
    p.write(path)


BACKWARDS_PACKETS = 3


def time_backwards(path):
    """A connection whose packets' timestamps jump: to 2106 (the largest pcap second), then back to
    1970, then back to the start. Exactly BACKWARDS_PACKETS packets carry a time earlier than the
    latest seen before them."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block()))
    c.t = 0xFFFF_FFFF  # 2106-02-07
    c.send(1, frame(PING, 0, 0, b"\0" * 8), dt=0)
    c.t = 0.0  # back to 1970: earlier than the packet before
    c.send(0, frame(PING, ACK, 0, b"\0" * 8), dt=0)
    c.t = T0 + 5  # still earlier than 2106
    c.send(1, frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x88"))
    c.send(1, frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
    p.write(path)


SMALL = {
    "continuation-flood.pcap": continuation_flood,
    "hpack-table-size.pcap": hpack_table_size,
    "hpack-bomb-indexed.pcap": hpack_bomb_indexed,
    "hpack-bomb-literal.pcap": hpack_bomb_literal,
    "frame-16mb.pcap": frame_16mb,
    "stream-ids-near-2-31.pcap": stream_ids_near_2_31,
    "time-backwards.pcap": time_backwards,
}

# ---------------------------------------------------------------------------------------------
# Large captures (generated at test time)

def syn_flood(path, n=2 * MAX_FLOWS):
    """`n` SYNs, each on its own 4-tuple (source address and port vary), one microsecond apart: twice
    the flow table, so that an unbounded table would show in memory as well as in the count."""
    p = Pcap()
    out = p.out
    hdr = struct.Struct("<IIII")
    for i in range(n):
        src = ("10.%d.%d.%d" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF), 1024 + (i % 50000))
        pkt = tcp_packet(src, SERVER, i * 7919, 0, SYN)
        out += hdr.pack(T0 + i // 1_000_000, i % 1_000_000, len(pkt), len(pkt)) + pkt
    p.write(path)


def ooo_segments(path, n=MAX_OUT_OF_ORDER_SEGMENTS + 1000):
    """An HTTP/2 connection whose client then leaves a one-byte hole and sends `n` one-byte segments
    past it that never become contiguous (each past the last, with a hole between each)."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    src, dst = c.addr(0)
    base = c.seq[0]
    for i in range(n):
        c.tick()
        p.record(c.t, tcp_packet(src, dst, base + 1 + 2 * i, c.seq[1], PSH | ACKF, b"\0", 64))
    p.write(path)


OOO_BYTES_SEGMENTS = 80
OOO_BYTES_SEGMENT_LEN = 60000


def ooo_bytes(path):
    """Like ooo_segments, but OOO_BYTES_SEGMENTS segments of OOO_BYTES_SEGMENT_LEN bytes (4.8 MB)
    past the hole: far fewer than the segment limit, more bytes than the byte limit."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    src, dst = c.addr(0)
    base = c.seq[0]
    payload = b"\0" * OOO_BYTES_SEGMENT_LEN
    for i in range(OOO_BYTES_SEGMENTS):
        c.tick()
        seq = base + 1 + OOO_BYTES_SEGMENT_LEN * i
        p.record(c.t, tcp_packet(src, dst, seq, c.seq[1], PSH | ACKF, payload, 64))
    p.write(path)


def header_block_16mb(path):
    """A HEADERS frame declaring 2^24 - 1 bytes whose payload is all in the capture (literal fields
    with long values), then a request on stream 3 that must still be decoded."""
    p = Pcap()
    c = Conn(p)
    c.start_h2()
    big = (1 << 24) - 1
    field = hpack_int(0, 4, 0x00) + hpack_str(b"x") + hpack_str(b"y" * 60000)
    block = request_block()
    while len(block) + len(field) <= big:
        block += field
    block += b"\x86" * (big - len(block))  # pad with :scheme http
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1, block), mss=65000)
    c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(b"/after.Big/Block")))
    p.write(path)


BIG = {
    "syn-flood.pcap": syn_flood,
    "ooo-segments.pcap": ooo_segments,
    "ooo-bytes.pcap": ooo_bytes,
    "header-block-16mb.pcap": header_block_16mb,
}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--big":
        os.makedirs(sys.argv[2], exist_ok=True)
        for name, make in BIG.items():
            make(os.path.join(sys.argv[2], name))
    elif len(sys.argv) == 1:
        here = os.path.dirname(os.path.abspath(__file__))
        for name, make in SMALL.items():
            make(os.path.join(here, name))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
