#!/usr/bin/env python3
"""Seeds the fuzz corpora from the shipped captures (python3 stdlib; tshark and editcap for pcapng and
stream extraction). Writes corpus/<target>/ for every target:

- capture, pipeline: the capture files as they are, plus a gzip of each;
- tcp: the captures' packets as the `tcp` target's raw-packet records (fuzz_targets/tcp.rs), at most
  SEED_MAX bytes per seed;
- http2: each TCP connection's reassembled bytes (tshark's "follow tcp raw"), as the `http2` target's
  records (fuzz_targets/http2.rs), at most SEED_MAX bytes per seed; the same from TLS captures for `tls`;
- hpack: the header block fragments of HEADERS frames found in those byte streams.

Usage (from fuzz/): python3 seed.py
"""

import glob
import gzip
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

SEED_MAX = 64 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# pcap link type -> index in the tcp target's LINKS table.
LINKS = {1: 0, 101: 1, 12: 1, 14: 1, 0: 2, 108: 2, 113: 3, 276: 4, 228: 5, 229: 6}


def captures():
    pats = ["captures/public/*.pcap*", "captures/derived/*.pcapng", "captures/*/capture.pcap"]
    files = sorted({f for p in pats for f in glob.glob(os.path.join(ROOT, p))})
    return [f for f in files if not f.endswith((".txt", ".keylog", ".md"))]


def save(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def as_pcap(path):
    """The file's records as (link type, data) from a classic pcap, converting with editcap if needed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.pcap")
        r = subprocess.run(["editcap", "-F", "pcap", path, out], capture_output=True)
        if r.returncode != 0:
            return []
        with open(out, "rb") as f:
            raw = f.read()
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(endian + "I", raw[20:24])[0]
    pos, recs = 24, []
    while pos + 16 <= len(raw):
        _, _, incl, _ = struct.unpack(endian + "IIII", raw[pos : pos + 16])
        recs.append((link, raw[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    return recs


def tcp_seeds(path):
    recs = [(LINKS[l], d) for l, d in as_pcap(path) if l in LINKS and len(d) < 65536]
    seed = bytearray(b"\x00")
    for link, data in recs:
        rec = struct.pack("<BBH", 0x80 | link, 1, len(data)) + data
        if len(seed) + len(rec) > SEED_MAX and len(seed) > 1:
            save("tcp", bytes(seed))
            seed = bytearray(b"\x00")
        seed += rec
    if len(seed) > 1:
        save("tcp", bytes(seed))


def streams(path):
    """Per TCP connection: the list of (direction, bytes) segments in capture order."""
    r = subprocess.run(
        ["tshark", "-r", path, "-T", "fields", "-e", "tcp.stream", "-Y", "tcp.len > 0"],
        capture_output=True,
        text=True,
    )
    ids = sorted({int(x) for x in r.stdout.split() if x.strip().isdigit()})[:8]
    for i in ids:
        r = subprocess.run(
            ["tshark", "-r", path, "-q", "-z", f"follow,tcp,raw,{i}"], capture_output=True, text=True
        )
        segs = []
        for line in r.stdout.splitlines():
            if not line.strip() or line.startswith(("=", "Follow", "Filter", "Node")):
                continue
            d = 1 if line.startswith("\t") else 0
            try:
                segs.append((d, bytes.fromhex(line.strip())))
            except ValueError:
                continue
        if segs:
            yield segs


def headers_blocks(stream):
    """HEADERS fragments from a client byte stream that starts with the preface, or a server's."""
    if stream.startswith(PREFACE):
        stream = stream[len(PREFACE) :]
    pos, out = 0, []
    while pos + 9 <= len(stream):
        length = int.from_bytes(stream[pos : pos + 3], "big")
        kind, flags = stream[pos + 3], stream[pos + 4]
        payload = stream[pos + 9 : pos + 9 + length]
        if kind > 9:
            break
        if kind == 1:
            start, end = 0, len(payload)
            if flags & 0x8 and payload:
                start, end = 1, len(payload) - payload[0]
            if flags & 0x20:
                start += 5
            if start <= end:
                out.append(payload[start:end])
        pos += 9 + length
    return out


def http2_seeds(path):
    # TLS captures (a key log beside them) also seed the `tls` target, whose layout is the same.
    targets = ["http2"] + (["tls"] if os.path.exists(os.path.join(os.path.dirname(path), "keylog.txt")) else [])
    for segs in streams(path):
        for cfg in (0, 1):
            seed = bytearray([cfg])
            for d, data in segs:
                rec = struct.pack("<BH", d, min(len(data), 65535)) + data[:65535]
                if len(seed) + len(rec) > SEED_MAX:
                    break
                seed += rec
            for t in targets:
                save(t, bytes(seed))
        for d in (0, 1):
            whole = b"".join(data for dd, data in segs if dd == d)
            blocks = headers_blocks(whole)
            if blocks:
                save("hpack", b"\x00" + b"\xfe\xfe".join(blocks[:32]))


def main():
    files = captures()
    for f in files:
        with open(f, "rb") as fh:
            raw = fh.read()
        plain = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        for t in ("pipeline",):
            save(t, raw)
        # The capture target's first byte: below 0x80 reads one input.
        save("capture", b"\x00" + raw)
        if raw is plain:
            save("capture", b"\x00" + gzip.compress(plain))
        tcp_seeds(f)
        http2_seeds(f)
        print(os.path.relpath(f, ROOT), file=sys.stderr)
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))))


if __name__ == "__main__":
    main()
