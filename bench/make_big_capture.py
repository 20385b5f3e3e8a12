#!/usr/bin/env python3
"""Build a large classic pcap for benchmarks by replicating the packets of real captures.

Sources: the public captures in captures/public that tshark can read without a key log and
that are not fuzzer-mutated (per captures/public/MANIFEST.md), plus every captures/*/*.pcap*
outside captures/public and captures/adversarial. pcap and pcapng are read, gzip-compressed or not.

Every source packet is converted to ONE output link type (Ethernet by default, or raw IP,
LINKTYPE_RAW=101, with --linktype raw); link types read: Ethernet (VLAN tags stripped), BSD
NULL/LOOP, raw IP (12/14/101/228/229), Linux cooked SLL and SLL2. Non-IP packets are dropped.

One "round" is the sources merged on a common clock (each source shifted to start at 0, in
capture order, timestamps clamped so they never go backwards). A source bigger than
--max-source-kb (default 32 kB) is put only in every ceil(size/max)-th round (at its own
phase), so that the few big sources with few connections (Unary.pcapng: 440 kB of mostly
non-HTTP/2 loopback traffic) do not crowd out the many small ones. The output holds R rounds
(R chosen to reach --size-mb), round r shifted by r * --stagger seconds, all merged so that
timestamps never decrease in the output. Each round gets its own addresses: every
(source file, original address) pair becomes a distinct address per round
(IPv4 -> 10.0.0.0/8, IPv6 -> fd00:6832::/32), so every connection of every round has its own
4-tuple (tens of thousands of connections for a few hundred MB).

Ports are kept, except where one tshark command line could not decode every source right:
the HTTP/2 ports a source needs as `-d tcp.port==N,http2` (MANIFEST column for public
captures; `tshark_options` of a truth.json beside other captures, else their SYN destination
ports) are moved to an unused port in that source when another source uses the same port
without needing it (-d 80 would break the HTTP/1.1 Upgrade of http2-h2c.pcap on port 80,
-d 57228 would hit a client port of http2-range.pcap). The resulting decode-as ports and the
moves are written to <out>.json with the other facts of the build; bench/run.sh reads them.

Checksums: the IPv4 header checksum and the TCP/UDP/ICMPv6 checksum are updated
incrementally for the new addresses (RFC 1624), so a checksum that was right stays right and
one that was already wrong in the source (e.g. loopback captures with checksum offload) stays
wrong by the same amount. Neither tshark nor h2keepalive validates TCP checksums by default.

Usage: bench/make_big_capture.py [--size-mb 300] [--out bench/.cache/big.pcap]
                                 [--stagger 2.0] [--linktype ether|raw] [--source FILE ...]
Stdlib only.
"""
import argparse
import gzip
import hashlib
import heapq
import json
import os
import re
import shlex
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
PUBLIC = os.path.join(REPO, "captures", "public")
BASE_TIME = 1704067200  # 2024-01-01T00:00:00Z
ETH_SRC = bytes.fromhex("020000000001")
ETH_DST = bytes.fromhex("020000000002")


# ------------------------------------------------------------------ reading
def open_capture(path):
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    return f


def read_pcap(data):
    """Yield (ts_float, linktype, caplen_bytes, orig_len) from classic pcap bytes."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("not a pcap file")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    div = 1e9 if nanos else 1e6
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    hdr = struct.Struct(e + "IIII")
    off = 24
    n = len(data)
    while off + 16 <= n:
        sec, frac, incl, orig = hdr.unpack_from(data, off)
        off += 16
        if off + incl > n:
            break  # truncated record at the end
        yield sec + frac / div, linktype, data[off:off + incl], orig
        off += incl


def read_pcapng(data):
    """Yield (ts_float, linktype, caplen_bytes, orig_len) from pcapng bytes."""
    off = 0
    n = len(data)
    e = "<"
    ifaces = []
    while off + 12 <= n:
        btype = struct.unpack_from(e + "I", data, off)[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8:off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        btype, blen = struct.unpack_from(e + "II", data, off)
        if blen < 12 or off + blen > n:
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            linktype = struct.unpack_from(e + "H", body, 0)[0]
            tsres = 1e-6
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack_from(e + "HH", body, o)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    v = body[o + 4]
                    tsres = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
                o += 4 + ((olen + 3) & ~3)
            ifaces.append((linktype, tsres))
        elif btype in (6, 2):  # EPB, obsolete PB
            if btype == 6:
                iid, hi, lo, incl, orig = struct.unpack_from(e + "IIIII", body, 0)
            else:
                iid, _drops, hi, lo, incl, orig = struct.unpack_from(e + "HHIIII", body, 0)
            if iid < len(ifaces):
                lt, res = ifaces[iid]
                ts = ((hi << 32) | lo) * res
                yield ts, lt, body[20:20 + incl], orig
        off += blen


def read_packets(path):
    with open_capture(path) as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data)
    return read_pcap(data)


def to_ip(linktype, pkt):
    """Return (ip_bytes, link_header_len_removed) or None if not IPv4/IPv6."""
    if linktype == 1:  # Ethernet
        o = 12
        et = struct.unpack_from("!H", pkt, o)[0] if len(pkt) >= 14 else 0
        while et in (0x8100, 0x88A8, 0x9100) and len(pkt) >= o + 6:
            o += 4
            et = struct.unpack_from("!H", pkt, o)[0]
        o += 2
    elif linktype in (0, 108):  # NULL (host order) / LOOP (network order)
        o = 4
    elif linktype in (12, 14, 101, 228, 229):
        o = 0
    elif linktype == 113:  # SLL
        o = 16
    elif linktype == 276:  # SLL2
        o = 20
    else:
        return None
    ip = pkt[o:]
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        return ip, o
    if v == 6 and len(ip) >= 40:
        return ip, o
    return None


# ------------------------------------------------------------------ checksum helpers
def words_sum(b):
    s = 0
    for i in range(0, len(b), 2):
        s += (b[i] << 8) | b[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def move_ports(ip, l4, port_map):
    """Rewrite TCP source/destination ports found in port_map, adjusting the checksum."""
    sp, dp = struct.unpack_from("!HH", ip, l4)
    nsp, ndp = port_map.get(sp, sp), port_map.get(dp, dp)
    if (nsp, ndp) == (sp, dp):
        return ip
    b = bytearray(ip)
    struct.pack_into("!HH", b, l4, nsp, ndp)
    hc = struct.unpack_from("!H", b, l4 + 16)[0]
    x = ~fold((~hc & 0xFFFF) + (~fold(sp + dp) & 0xFFFF) + nsp + ndp) & 0xFFFF
    struct.pack_into("!H", b, l4 + 16, x)
    return bytes(b)


# ------------------------------------------------------------------ template
class Template:
    """One round: all source packets, IP layer, with the offsets needed to rewrite them."""

    def __init__(self):
        # per source: list of (t_rel, ip_bytes, orig_ip_len, v, src_id, dst_id, src_off,
        #                      dst_off, l4_csum_off, old_sum)
        self.sources = []
        self.tuples = []    # per source: distinct TCP 4-tuples
        self.addr_v = []    # address id -> ip version
        self.addr_ids = {}  # (file, addr bytes) -> id

    def addr_id(self, fname, a, v):
        k = (fname, a)
        i = self.addr_ids.get(k)
        if i is None:
            i = self.addr_ids[k] = len(self.addr_v)
            self.addr_v.append(v)
        return i

    def add_file(self, path, name, start_offset, port_map=None):
        pkts = []
        tuples = set()
        count = skipped = 0
        t0 = None
        last = None
        linktypes = set()
        for ts, lt, pkt, orig in read_packets(path):
            r = to_ip(lt, pkt)
            linktypes.add(lt)
            if r is None:
                skipped += 1
                continue
            ip, hl = r
            orig_ip = max(orig - hl, len(ip))
            if t0 is None:
                t0 = ts
            t = ts - t0
            if last is not None and t < last:
                t = last  # never backwards within a source
            last = t
            v = ip[0] >> 4
            if v == 4:
                ihl = (ip[0] & 0x0F) * 4
                src, dst = ip[12:16], ip[16:20]
                proto = ip[9]
                frag = struct.unpack_from("!H", ip, 6)[0] & 0x1FFF
                l4 = ihl if frag == 0 else None
                so, do = 12, 16
            else:
                src, dst = ip[8:24], ip[24:40]
                proto = ip[6]
                l4 = 40
                so, do = 8, 24
            csum_off = None
            if l4 is not None:
                if proto == 6:
                    csum_off = l4 + 16
                elif proto == 17:
                    csum_off = l4 + 6
                elif proto == 58 and v == 6:
                    csum_off = l4 + 2
                if csum_off is not None and csum_off + 2 > len(ip):
                    csum_off = None
                if csum_off is not None and proto == 17 and v == 4 and \
                        ip[csum_off:csum_off + 2] == b"\x00\x00":
                    csum_off = None  # UDP over IPv4 without checksum
            if port_map and proto == 6 and l4 is not None and len(ip) >= l4 + 18:
                ip = move_ports(ip, l4, port_map)
            sid = self.addr_id(name, bytes(src), v)
            did = self.addr_id(name, bytes(dst), v)
            if proto == 6 and l4 is not None and len(ip) >= l4 + 4:
                sp, dp = struct.unpack_from("!HH", ip, l4)
                tuples.add(min((sid, sp, did, dp), (did, dp, sid, sp)))
            old_sum = fold(words_sum(src) + words_sum(dst))
            pkts.append((start_offset + t, bytes(ip), orig_ip, v, sid, did, so, do,
                         csum_off, old_sum))
            count += 1
        if pkts:
            self.sources.append(pkts)
            self.tuples.append(len(tuples))
        return count, skipped, linktypes


def round_addresses(tpl, r):
    """Per-round address bytes and their checksum word sums."""
    out = []
    n = len(tpl.addr_v)
    for i, v in enumerate(tpl.addr_v):
        k = r * n + i + 1  # unique per (round, file, address); never 0
        if v == 4:
            if k >= 1 << 24:
                raise SystemExit("too many rounds x addresses for 10.0.0.0/8")
            a = bytes([10, (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF])
        else:
            a = bytes.fromhex("fd006832") + struct.pack("!IQ", r, i + 1)
        out.append((a, words_sum(a)))
    return out


# ------------------------------------------------------------------ sources
def manifest_sources():
    """Public captures usable without a key log and not fuzzed, with their decode-as ports."""
    rows = []
    path = os.path.join(PUBLIC, "MANIFEST.md")
    in_files = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("## "):
            in_files = line.strip() == "## Files"
            continue
        if not in_files or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name, opt, desc = cells[0].strip("`"), cells[6], cells[9]
        if opt.startswith("(keylog"):
            continue
        if "keylog" in opt or desc.startswith("Fuzzer-mutated"):
            continue
        if not os.path.exists(os.path.join(PUBLIC, name)):
            continue
        ports = [int(m) for m in re.findall(r"tcp\.port==(\d+),http2", opt)]
        rows.append((os.path.join(PUBLIC, name), ports))
    return rows


def scan_tcp(path):
    """(all TCP ports seen, destination ports of SYNs without ACK) of a capture."""
    ports, syn = set(), set()
    for ts, lt, pkt, orig in read_packets(path):
        r = to_ip(lt, pkt)
        if r is None:
            continue
        ip = r[0]
        if ip[0] >> 4 == 4:
            if struct.unpack_from("!H", ip, 6)[0] & 0x1FFF:
                continue
            proto, l4 = ip[9], (ip[0] & 0x0F) * 4
        else:
            proto, l4 = ip[6], 40
        if proto == 6 and len(ip) >= l4 + 14:
            sp, dp = struct.unpack_from("!HH", ip, l4)
            ports.update((sp, dp))
            flags = ip[l4 + 13]
            if flags & 0x02 and not flags & 0x10:
                syn.add(dp)
    return ports, syn


def decode_as_of(path, syn):
    """HTTP/2 ports of a non-public capture: the tshark_options of a truth.json beside it
    (captures/<scenario>/truth.json), else the destination ports of its SYNs."""
    truth = os.path.join(os.path.dirname(path), "truth.json")
    if os.path.exists(truth):
        try:
            opt = json.load(open(truth)).get("tshark_options") or ""
            return sorted(int(m) for m in re.findall(r"tcp\.port==(\d+),http2", opt))
        except (ValueError, OSError):
            pass
    return sorted(syn)


def other_sources():
    out = []
    capdir = os.path.join(REPO, "captures")
    if not os.path.isdir(capdir):
        return out
    for d in sorted(os.listdir(capdir)):
        full = os.path.join(capdir, d)
        # adversarial/: crafted to hit the limits (16 MB frames, timestamps going backwards),
        # not traffic.
        if d in ("public", "adversarial") or not os.path.isdir(full):
            continue
        for f in sorted(os.listdir(full)):
            if re.search(r"\.pcap(ng)?(\.gz)?$", f):
                out.append(os.path.join(full, f))
    return out


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=300.0,
                    help="target size in MB (10^6 bytes), default 300")
    ap.add_argument("--out", default=os.path.join(HERE, ".cache", "big.pcap"))
    ap.add_argument("--stagger", type=float, default=2.0,
                    help="seconds between the starts of two rounds (default 2.0)")
    ap.add_argument("--linktype", choices=["ether", "raw"], default="ether")
    ap.add_argument("--max-source-kb", type=float, default=32.0,
                    help="a source bigger than this goes into every (size/this)-th round "
                         "only (default 32 kB)")
    ap.add_argument("--source", action="append",
                    help="use only these capture files (repeatable); default: see above")
    a = ap.parse_args()
    t_start = time.time()

    if a.source:
        sources = [(p, None) for p in a.source]
    else:
        sources = manifest_sources() + [(p, None) for p in other_sources()]
    if not sources:
        raise SystemExit("no source captures found")
    scanned = []
    for path, dports in sources:
        try:
            allp, syn = scan_tcp(path)
        except (ValueError, struct.error, OSError, EOFError) as ex:
            print("skip %s: %s" % (os.path.relpath(path, REPO), ex), file=sys.stderr)
            continue
        if dports is None:
            dports = decode_as_of(path, syn)
        scanned.append((path, dports, allp))

    # One tshark command line serves the whole file, so a decode-as port of one source must
    # not hit another source that tshark decodes differently on that port (e.g. -d 80 for
    # prior-knowledge h2c breaks an HTTP/1.1 Upgrade on port 80 elsewhere; -d 57228 would
    # hit a client port 57228 of another capture). Such a port is moved, in the sources that
    # need it, to a port no source uses (TCP checksum adjusted).
    used_ports = set()
    for _, _, allp in scanned:
        used_ports |= allp
    remap = {}
    free = (p for p in range(31000, 65536) if p not in used_ports)
    for i, (path, dports, allp) in enumerate(scanned):
        for pt in dports:
            if pt in remap:
                continue
            clash = any(pt in allp2 and pt not in d2
                        for j, (_, d2, allp2) in enumerate(scanned) if j != i)
            if clash:
                remap[pt] = next(free)

    tpl = Template()
    ports = set()
    used = []
    for i, (path, dports, allp) in enumerate(scanned):
        name = os.path.relpath(path, REPO)
        pmap = {pt: remap[pt] for pt in dports if pt in remap}
        try:
            n, skipped, lts = tpl.add_file(path, name, i * 0.001, pmap)
        except (ValueError, struct.error, OSError, EOFError) as ex:
            print("skip %s: %s" % (name, ex), file=sys.stderr)
            continue
        if n == 0:
            print("skip %s: no IP packets (link types %s)" % (name, sorted(lts)),
                  file=sys.stderr)
            continue
        final = sorted(pmap.get(pt, pt) for pt in dports)
        ports.update(final)
        used.append({"file": name, "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                     "packets": n, "non_ip_dropped": skipped,
                     "linktypes": sorted(lts), "decode_as_ports": final,
                     "ports_moved": {str(k): v for k, v in pmap.items()}})
    link_hdr = ETH_DST + ETH_SRC if a.linktype == "ether" else b""
    link_len = 14 if a.linktype == "ether" else 0
    linktype = 1 if a.linktype == "ether" else 101

    # Sources bigger than --max-source-kb are put in every p-th round only (p = size /
    # max, each at its own phase), so that a few large captures with few connections do not
    # crowd out the many small ones: more rounds, hence more connections, for the same size.
    srcs = tpl.sources
    sbytes = [sum(16 + link_len + len(p[1]) for p in pk) for pk in srcs]
    cap = max(1, int(a.max_source_kb * 1000))
    period = [max(1, -(-b // cap)) for b in sbytes]
    phase = [i % period[i] for i in range(len(srcs))]
    for u, per, nt in zip(used, period, tpl.tuples):
        u["every_nth_round"] = per
        u["tcp_4tuples"] = nt

    def total_bytes(rounds):
        t = 24
        for b, per, ph in zip(sbytes, period, phase):
            if rounds > ph:
                t += b * ((rounds - 1 - ph) // per + 1)
        return t

    target = int(a.size_mb * 1e6)
    rounds = max(1, int(target / sum(b / per for b, per in zip(sbytes, period))) - 1)
    while total_bytes(rounds) < target:
        rounds += 1
    span = max(pk[-1][0] for pk in srcs)

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    rec = struct.Struct("<IIII")
    et4 = struct.pack("!H", 0x0800)
    et6 = struct.pack("!H", 0x86DD)
    addr_cache = {}

    def source_iter(r, si):
        off = BASE_TIME + r * a.stagger
        for idx, p in enumerate(srcs[si]):
            yield (off + p[0], r, si, idx)

    iters = [source_iter(r, si) for r in range(rounds) for si in range(len(srcs))
             if r % period[si] == phase[si]]

    written = 0
    count = 0
    last_ts = 0.0
    first_ts = None
    with open(tmp, "wb", buffering=1 << 20) as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        written = 24
        buf = []
        for ts, r, si, idx in heapq.merge(*iters):
            addrs = addr_cache.get(r)
            if addrs is None:
                addrs = addr_cache[r] = round_addresses(tpl, r)
            _, ip, orig_ip, v, sid, did, so, do, coff, old_sum = srcs[si][idx]
            b = bytearray(ip)
            sa, ssum = addrs[sid]
            da, dsum = addrs[did]
            alen = 4 if v == 4 else 16
            b[so:so + alen] = sa
            b[do:do + alen] = da
            new_sum = ssum + dsum
            # RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')
            if v == 4:
                hc = (b[10] << 8) | b[11]
                x = ~fold((~hc & 0xFFFF) + (~old_sum & 0xFFFF) + new_sum) & 0xFFFF
                b[10] = x >> 8
                b[11] = x & 0xFF
            if coff is not None:
                hc = (b[coff] << 8) | b[coff + 1]
                x = ~fold((~hc & 0xFFFF) + (~old_sum & 0xFFFF) + new_sum) & 0xFFFF
                b[coff] = x >> 8
                b[coff + 1] = x & 0xFF
            if ts < last_ts:
                ts = last_ts
            elif first_ts is None:
                first_ts = ts
            last_ts = ts
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec >= 1000000:
                sec += 1
                usec -= 1000000
            caplen = link_len + len(b)
            buf.append(rec.pack(sec, usec, caplen, link_len + orig_ip))
            if link_len:
                buf.append(link_hdr)
                buf.append(et4 if v == 4 else et6)
            buf.append(b)
            written += 16 + caplen
            count += 1
            if len(buf) > 30000:
                out.write(b"".join(buf))
                buf = []
        out.write(b"".join(buf))
    os.replace(tmp, a.out)

    info = {
        "file": os.path.abspath(a.out),
        "bytes": written,
        "packets": count,
        "rounds": rounds,
        "stagger_s": a.stagger,
        "max_source_kb": a.max_source_kb,
        "source_span_s": span,
        "linktype": linktype,
        "first_ts": first_ts,
        "last_ts": last_ts,
        "decode_as_ports": sorted(ports),
        "ports_moved": {str(k): v for k, v in sorted(remap.items())},
        "tshark_decode_as": " ".join("-d tcp.port==%d,http2" % p for p in sorted(ports)),
        "distinct_addresses": rounds * len(tpl.addr_v),
        "tcp_connections": sum(nt * ((rounds - 1 - ph) // per + 1)
                               for nt, per, ph in zip(tpl.tuples, period, phase)
                               if rounds > ph),
        "sources": used,
        "build_seconds": round(time.time() - t_start, 1),
        "command": " ".join(shlex.quote(x) for x in sys.argv),
    }
    with open(a.out + ".json", "w") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    print("wrote %s: %.1f MB, %d packets, %d rounds of %d sources, %d TCP connections "
          "(distinct 4-tuples), %d addresses, %.1f s"
          % (a.out, written / 1e6, count, rounds, len(used), info["tcp_connections"],
             info["distinct_addresses"], info["build_seconds"]))
    print("decode-as ports: %s" % ",".join(map(str, sorted(ports))))


if __name__ == "__main__":
    main()
