#!/usr/bin/env python3
"""Check a capture built by make_big_capture.py with tshark.

1. capinfos: the file opens, packet count matches the build, strict time order.
2. one tshark pass over the whole file with the build's decode-as ports: HTTP/2 frames by
   type must equal the sum, over the sources, of what tshark finds in each source (with that
   source's own decode-as ports) times the number of rounds that include it; malformed
   packets must be exactly those the sources already have (times the same factor); tshark's
   own "Dissector bug" assertions are reported but not counted as malformed. Both passes run
   with --disable-protocol grpc (see tshark_counts).
Exit 1 on a mismatch. Stdlib only.

Usage: bench/check_capture.py [bench/.cache/big.pcap]
"""
import collections
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))


def tshark_counts(path, ports):
    # GRPC off: tshark 4.0's GRPC dissector hits assertions ("Dissector bug") on DATA frames
    # of the merged file that it does not hit in the sources, and the exception ends the
    # dissection of the packet, so later HTTP/2 frames in that packet go uncounted. HTTP/2
    # framing does not depend on GRPC.
    cmd = ["tshark", "-r", path, "--disable-protocol", "grpc"]
    for p in ports:
        cmd += ["-d", "tcp.port==%d,http2" % p]
    cmd += ["-Y", "http2 || _ws.malformed", "-T", "fields", "-E", "occurrence=a",
            "-e", "http2.type", "-e", "_ws.malformed"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    types = collections.Counter()
    malformed = [0, 0]  # [malformed, tshark "Dissector bug" assertions]
    for line in p.stdout.splitlines():
        t, _, m = line.partition("\t")
        for x in t.split(","):
            if x:
                types[int(x)] += 1
        if m:
            malformed[1 if "Dissector bug" in m else 0] += 1
    return types, malformed


def strip_dsb(src, dst):
    """Copy a pcapng without its Decryption Secrets Blocks; False if it has none."""
    with (gzip.open if open(src, "rb").read(2) == b"\x1f\x8b" else open)(src, "rb") as f:
        data = f.read()
    out, off, e, found = [], 0, "<", False
    while off + 12 <= len(data):
        if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(e + "II", data, off)
        if blen < 12:
            break
        if btype == 0x0000000A:
            found = True
        else:
            out.append(data[off:off + blen])
        off += blen
    if found:
        with open(dst, "wb") as f:
            f.write(b"".join(out))
    return found


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, ".cache", "big.pcap")
    info = json.load(open(path + ".json"))
    ok = True

    ci = subprocess.run(["capinfos", "-c", "-o", "-M", path], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    print(ci.stdout.strip())
    if ci.returncode != 0:
        print("capinfos failed: " + ci.stderr.strip())
        ok = False
    if "Strict time order:   True" not in ci.stdout:
        print("FAIL: not in strict time order")
        ok = False
    if "Number of packets:   %d" % info["packets"] not in ci.stdout:
        print("FAIL: packet count differs from the build (%d)" % info["packets"])
        ok = False

    tmpdir = tempfile.mkdtemp(prefix="h2ka-check-")
    want = collections.Counter()
    want_mal = [0, 0]
    rounds = info["rounds"]
    for i, s in enumerate(info["sources"]):
        per = s["every_nth_round"]
        ph = i % per
        n = (rounds - 1 - ph) // per + 1 if rounds > ph else 0
        back = {v: int(k) for k, v in s["ports_moved"].items()}
        ports = [back.get(p, p) for p in s["decode_as_ports"]]
        src = os.path.join(REPO, s["file"])
        if hashlib.sha256(open(src, "rb").read()).hexdigest() != s["sha256"]:
            print("FAIL: %s changed since the capture was built: rebuild it" % s["file"])
            ok = False
            continue
        if ".pcapng" in src:
            # the big file is a classic pcap: decryption secrets a pcapng source may embed
            # (DSB) are not in it, so count the source without them too
            tmp = os.path.join(tmpdir, "src.pcapng")
            if strip_dsb(src, tmp):
                src = tmp
        t, m = tshark_counts(src, ports)
        for k, v in t.items():
            want[k] += v * n
        want_mal = [want_mal[0] + m[0] * n, want_mal[1] + m[1] * n]
    for f in os.listdir(tmpdir):
        os.unlink(os.path.join(tmpdir, f))
    os.rmdir(tmpdir)
    got, got_mal = tshark_counts(path, info["decode_as_ports"])
    print("HTTP/2 frames by type, expected from the sources: %s" % dict(sorted(want.items())))
    print("HTTP/2 frames by type, tshark on the big file:    %s" % dict(sorted(got.items())))
    print("malformed packets: expected %d (already in the sources), found %d"
          % (want_mal[0], got_mal[0]))
    print("tshark 'Dissector bug' assertions: %d in the sources, %d in the big file%s"
          % (want_mal[1], got_mal[1], "" if want_mal[1] == got_mal[1] else
             " (tshark bug)"))
    if want != got:
        print("FAIL: frame counts differ")
        ok = False
    if want_mal[0] != got_mal[0]:
        print("FAIL: malformed packet counts differ")
        ok = False
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
