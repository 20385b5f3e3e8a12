#!/usr/bin/env python3
"""Regenerate the tshark-derived expectations for the public captures.

For every capture listed in captures/public/MANIFEST.md (key log files excluded) this runs
tshark with the options of the MANIFEST's "tshark options" column and writes
tests/expected/public/<capture>.json. Nothing here looks at h2keepalive's output: these files
are an independent reference for its `frames`, `pings`, `goaways`, `rst_streams`, `streams`
and `tcp` sections.

Two tshark runs per capture (both with the MANIFEST options, from inside captures/public so
that key log paths resolve):
  1. `-Y http2 -T pdml`: every packet that carries HTTP/2; each HTTP/2 frame is one
     `http2.stream` element, walked in document order, so a packet carrying several frames
     (HEADERS+DATA, PING ACK + PING, ...) is attributed frame by frame, with its own type,
     flags, stream id, ping data, GOAWAY/RST_STREAM fields and decoded header fields.
  2. `-Y "tcp && !icmp && !icmpv6" -T fields`: every TCP packet (for endpoints, SYN/FIN/RST,
     retransmissions, first/last packet time), including connections without HTTP/2.
  3. for captures that need `-d`, the same without it (totals.frames_by_type_without_decode_as:
     what tshark finds on its own, for comparison with h2keepalive's port-free detection).
Hand-checked explanations of where tshark's view is incomplete or ambiguous are in EXPLAIN
and go into each file's notes; conventions used in every file are in CONVENTIONS.
Only tcp.stream indexes on which run 1 shows at least one HTTP/2 frame become connections.

tshark's user profile is bypassed (WIRESHARK_CONFIG_DIR points to an empty directory) so
local preferences cannot change the result.

Usage: python3 tests/expected/public/generate.py [--check] [CAPTURE ...]
  --check   do not write; exit 1 if a regenerated file differs from the one on disk.
Stdlib only.
"""
import argparse
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CAPDIR = os.path.join(REPO, "captures", "public")
MANIFEST = os.path.join(CAPDIR, "MANIFEST.md")
GENERATED_BY = "tests/expected/public/generate.py"

FRAME_TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS",
               5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
ERROR_CODES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
               0x3: "FLOW_CONTROL_ERROR", 0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED",
               0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM", 0x8: "CANCEL",
               0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR", 0xb: "ENHANCE_YOUR_CALM",
               0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED"}

TCP_FIELDS = ["frame.number", "frame.time_epoch", "tcp.stream", "ip.src", "ipv6.src",
              "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.flags",
              "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
              "tcp.analysis.spurious_retransmission", "tcp.analysis.lost_segment",
              "tcp.len"]
TCP_FILTER = "tcp && !icmp && !icmpv6"

CONVENTIONS = [
    "ts of an HTTP/2 frame = frame.time_epoch of the packet in which tshark shows it, i.e. the "
    "TCP segment that completes the frame (for a frame spread over several segments, the last one)",
    "frames: one count per HTTP/2 frame tshark dissects, keyed by the sender ip:port; PING is "
    "split into PING / PING_ACK (flags & 0x1); GOAWAY is counted as GOAWAY and as "
    "GOAWAY:<error code>; keys only for non-zero counts; the client preface (Magic) is not a "
    "frame (see preface)",
    "endpoints sorted by address family, numeric address, port; IPv6 as [addr]:port",
    "pings: every PING frame in capture order; a PING without ACK gets acked_at/rtt_ms from the "
    "first later ACK with the same opaque data from the other endpoint (null if none); an ACK "
    "gets answers_ping_in_capture",
    "streams: stream ids seen on DATA/HEADERS/RST_STREAM/PUSH_PROMISE(promised id)/CONTINUATION "
    "frames; method/path/status/grpc-status from the header fields tshark decodes (null when "
    "absent or the HPACK state is unknown to tshark); status is the final (non-1xx) :status",
    "tcp: syn = SYN without ACK, syn_ack = SYN+ACK, fin/rst = packets with FIN/RST by sender, "
    "retransmissions = packets flagged tcp.analysis.retransmission, fast_retransmission or "
    "spurious_retransmission, previous_segment_not_captured = tcp.analysis.lost_segment",
    "bytes: per sender, http2_frames = 9 + length of each frame tshark shows (+24 for the "
    "preface), tcp_payload = sum of tcp.len without retransmissions; they differ by the "
    "HTTP/1.1 bytes of an Upgrade/CONNECT, by TLS overhead, or by frames tshark did not show",
    "error code names are RFC 9113's, other values UNKNOWN_0x.. (lower-case hex, at least 2 "
    "digits); frame types 0x0-0x9 by RFC 9113 name, others UNKNOWN_0x..",
]

# Hand-checked explanations (raw bytes looked at with tshark -x / tcp.payload) of the places
# where tshark's view is incomplete, ambiguous or wrong. Kept here so that a regeneration
# keeps them.
EXPLAIN = {
    "grpc-unary.pcap": [
        "the server's packet 2 carries HEADERS (stream 1) followed by the 9-byte header of a "
        "DATA frame (stream 1, length 16384) of which only 1336 payload bytes are in the "
        "capture (the capture ends there); tshark waits for the rest and never shows that "
        "DATA frame, so it is not counted here (DATA=2 from the client only). An analyzer that "
        "counts frames from their header would see one more server DATA frame.",
    ],
    "sv_transform-base64-7296_input.pcap": [
        "fuzzed capture: tshark's view is NOT ground truth here. In tcp.stream 4 the server "
        "(127.0.0.1:8080) sends, after SETTINGS (packet 39), a WINDOW_UPDATE (packet 41), a "
        "HEADERS frame with a corrupted stream id 0x7eff06ff (packet 45) and DATA (stream 1, 11 "
        "bytes) + RST_STREAM (stream 1) (packet 47); tshark shows them only as 'TCP segment of "
        "a reassembled PDU' and dissects no HTTP/2 (its sequence tracking was disturbed by "
        "packet 36, a segment with all TCP flags set that it treats as a new SYN, 'port numbers "
        "reused'). These 4 frames are missing from the counts.",
        "the client SETTINGS of that connection (packet 34) has a fuzzed source port (63884), "
        "so tshark puts it in tcp.stream 5 and does not dissect it as HTTP/2.",
        "tcp.stream 0: the Magic/SETTINGS/WINDOW_UPDATE segments are retransmitted "
        "(packets 56-58) and tshark does not dissect them again (no double count).",
        "tcp.stream 0 and 4 carry an HTTP/1.1 Upgrade: h2c; stream 1 is the upgraded request, "
        "whose response is not in the capture.",
        "timestamps go backwards and jump by ~7e7 s (fuzzed); packets 8 and 56 have a "
        "sub-second field >= 1e9 (see below).",
    ],
    "http2-h2c.pcap": [
        "HTTP/1.1 Upgrade: h2c: the client's 178-byte GET /robots.txt (packet 1) and the "
        "server's 71-byte 101 Switching Protocols are HTTP/1.1, not HTTP/2 frames (hence the "
        "byte differences); stream 1 is that upgraded request, so it has no :method/:path in "
        "HTTP/2 (method/path null, GET /robots.txt in HTTP/1.1).",
    ],
    "http2-range.pcap": [
        "each of the 3 HTTP/2 connections starts with an HTTP/1.1 GET /eicar with Upgrade: h2c "
        "(195/196 bytes) answered by a 71-byte 101 Switching Protocols (hence the byte "
        "differences); stream 1 is the upgraded request (method/path null in HTTP/2). "
        "tcp.streams 1 and 3 are plain HTTP/1.1 (206) and have no HTTP/2.",
        "in tcp.stream 2 the server's SETTINGS ACK is not in the capture (the byte count "
        "matches, so tshark misses nothing): server SETTINGS=1 there, 2 in tcp.streams 0 and 4.",
    ],
    "http2_deflate.pcap": [
        "HTTP/1.1 Upgrade: h2c (197-byte GET / + 71-byte 101): byte differences are those "
        "HTTP/1.1 messages; stream 1 is the upgraded request (method/path null in HTTP/2).",
    ],
    "sv_http2-deflate-case_input.pcap": [
        "HTTP/1.1 Upgrade: h2c (197-byte GET / + 71-byte 101): byte differences are those "
        "HTTP/1.1 messages; stream 1 is the upgraded request (method/path null in HTTP/2).",
    ],
    "sv_drop-protocol-change_input.pcap": [
        "fuzzed capture starting at the server's 98-byte HTTP/1.1 101 Switching Protocols "
        "(the byte difference); stream 1 is the upgraded request (method/path not in the "
        "capture). The client's first SETTINGS has stream id 65536 (invalid, counted as "
        "SETTINGS). Packet 7 (FIN+SYN+RST+PSH+URG, bogus header length) has no usable TCP "
        "header: tshark gives it tcp.stream 1 without ports; it is ignored here. Packet 1 is an "
        "IP fragment of an unknown protocol.",
    ],
    "sv_http2-errorcode_input.pcap": [
        "tcp.stream 0 is the client-to-proxy connection (8888): an 81-byte HTTP/1.1 CONNECT "
        "127.0.0.1:6233 and the proxy's 38-byte 200 precede the tunnelled HTTP/2 (hence the "
        "byte differences); tshark finds the HTTP/2 through the CONNECT. tcp.stream 1 is the "
        "proxy-to-backend connection (6233), direct h2c. Both carry the same frames.",
    ],
    "grpc-unknown.pcap": [
        "mid-connection capture: HPACK dynamic-table entries referenced by the HEADERS are "
        "unknown, so header names show as <unknown> and :path is null; tshark's GRPC "
        "dissector hits an assertion ('Dissector bug') on the DATA frames of packets 1 and 2. "
        "This does not hide any HTTP/2 frame: the frame list is identical with "
        "--disable-protocol grpc.",
    ],
    "http2-multi.pcap": [
        "mid-connection capture: HPACK state unknown (names <unknown>, :path null; :method is "
        "from the static table). The client's PING ACK and its new PING are in the same "
        "segment (packet 1); the ACK answers a PING outside the capture.",
    ],
    "httpv2-stream-id.pcap": [
        "single packet, mid-connection: HPACK state unknown (:path null).",
    ],
    "grpc-server-stream.pcap": [
        "mid-connection capture: the lone PING ACK (server) answers a PING outside the "
        "capture; tshark flags previous segments not captured (capture start).",
    ],
    "h2c_ascii.pcap": [
        "mid-connection capture: the client's PING ACK answers a PING outside the capture.",
    ],
    "sv_dns-over-http2-limit_input.pcap": [
        "packet 39 is flagged 'Malformed Packet: DNS': tshark's DNS dissector throws on the "
        "DNS message carried in a DATA payload; it does not affect the HTTP/2 frames. The 8 RST_STREAM STREAM_CLOSED frames (all stream 1) are in one packet (45).",
    ],
    "http2-nghttp2.pcap": [
        "without -d tcp.port==80,http2 tshark's HTTP-upgrade path mis-reassembles the ~18 KB "
        "request header block and loses frames (see totals.frames_by_type_without_decode_as); "
        "with it, every byte is accounted for. Stream 2 is a pushed stream (PUSH_PROMISE); "
        "streams 3-11 only appear in PRIORITY frames and are not listed.",
    ],
    "http2_multiple_headers.pcap": [
        "the server's SETTINGS arrives before the client preface; without -d tcp.port==80,http2 "
        "tshark loses a SETTINGS and a WINDOW_UPDATE (totals.frames_by_type_without_decode_as).",
    ],
    "sv_http2-long-frame_input.pcap": [
        "the ~72 KB DATA frame spans 52 TCP segments; its ts is that of the last segment. "
        "Stream 3's response is not in the capture (status null).",
    ],
    "Unary.pcapng": [
        "only 1 of the 2 tcp.streams carries HTTP/2; the other (127.0.0.1:3220) is unrelated.",
    ],
    "mixed_traffic_sample.pcapng": [
        "20 of the 21 tcp.streams are HTTP/1.1 (port 8899) and are not listed.",
    ],
    "http2-16-ssl.pcapng": [
        "tcp.stream 0 is a refused connection (SYN answered by RST), no HTTP/2. The TLS "
        "connection uses ALPN h2-16 (pre-RFC draft); framing is RFC 7540's for these types.",
    ],
    "packet-h2-14.pcapng.gz": [
        "draft-14 HTTP/2 (pre-RFC); framing identical to RFC 7540 for the frame types present.",
    ],
}


def type_name(t):
    return FRAME_TYPES.get(t, "UNKNOWN_0x%02x" % t)


def error_name(e):
    return ERROR_CODES.get(e, "UNKNOWN_0x%02x" % e)


def endpoint(ip, port):
    a = ipaddress.ip_address(ip)
    if a.version == 6:
        return "[%s]:%d" % (a.compressed, int(port))
    return "%s:%d" % (a, int(port))


def ep_sort_key(ep):
    host, port = ep.rsplit(":", 1)
    a = ipaddress.ip_address(host.strip("[]"))
    return (a.version, int(a), int(port))


def parse_time(s, notes, where):
    """frame.time_epoch as printed by tshark. A fractional part of more than 9 digits means the
    record's sub-second field is out of range (fuzzed); tshark prints it verbatim, we take
    seconds + fraction/1e9 (what a reader computing sec + nsec*1e-9 gets) and say so."""
    sec, _, frac = s.partition(".")
    if len(frac) > 9:
        v = int(sec) + int(frac) / 1e9
        notes.add("%s: tshark prints time %s (sub-second field %s >= 1e9, invalid); taken as %.6f"
                  % (where, s, frac, v))
        return v
    return float(s)


# ---------------------------------------------------------------- MANIFEST
def read_manifest():
    """Rows of the Files table: name -> dict(options=[...], frames_by_type=str, tcp=str)."""
    rows = {}
    in_files = False
    for line in open(MANIFEST, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("## "):
            in_files = line.strip() == "## Files"
            continue
        if not in_files or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        opt = cells[6]
        if opt.startswith("(keylog"):
            continue
        options = [] if opt == "(none)" else shlex.split(opt.strip("`"))
        rows[name] = {"options": options, "frames_by_type": cells[7], "tcp": cells[8]}
    return rows


def parse_manifest_counts(s):
    out = {}
    for part in s.split(","):
        part = part.strip()
        if "=" in part:
            k, v = part.split("=")
            out[k.strip()] = int(v)
    return out


# ---------------------------------------------------------------- tshark
def run(cmd, env):
    p = subprocess.run(cmd, cwd=CAPDIR, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    err = "\n".join(
        # drop the "(tshark:PID) HH:MM:SS.ffffff" prefix of GLib log lines: not reproducible
        re.sub(r"^\s*\*\* \(tshark:\d+\) [\d:.]+ ", "", l)
        for l in p.stderr.decode("utf-8", "replace").splitlines()
        if "Running as user" not in l and l.strip())
    if p.returncode != 0:
        raise SystemExit("tshark failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err))
    return p.stdout, err


def fields_of(elem, name):
    return [e for e in elem.iter("field") if e.get("name") == name]


def first_show(elem, name):
    for e in elem.iter("field"):
        if e.get("name") == name:
            return e.get("show")
    return None


def walk_experts(elem, proto, out):
    """Collect (protocol, message) of Warning/Error expert infos, with the enclosing proto."""
    for ch in elem:
        if ch.tag == "proto":
            walk_experts(ch, ch.get("name"), out)
            continue
        if ch.get("name") == "_ws.expert":
            sev = first_show(ch, "_ws.expert.severity")
            msg = first_show(ch, "_ws.expert.message") or ch.get("showname")
            # severities: 0x00800000 error, 0x00600000 warning
            if sev is not None and int(sev) >= 0x00600000:
                out.append((proto, msg))
        walk_experts(ch, proto, out)


def parse_http2_frame(st):
    """One http2.stream element -> dict."""
    def show(name):
        # direct or nested fields of this frame only (frames never nest)
        for e in st.iter("field"):
            if e.get("name") == name:
                return e
        return None
    f = {}
    f["magic"] = show("http2.magic") is not None
    t = show("http2.type")
    f["type"] = int(t.get("show")) if t is not None else None
    fl = show("http2.flags")
    f["flags"] = int(fl.get("show"), 16) if fl is not None else 0
    sid = show("http2.streamid")
    f["stream_id"] = int(sid.get("show")) if sid is not None else None
    ln = show("http2.length")
    f["length"] = int(ln.get("show")) if ln is not None else None
    for k in ("http2.ping", "http2.pong"):
        e = show(k)
        if e is not None:
            f["opaque"] = (e.get("value") or "").lower()
    e = show("http2.goaway.last_stream_id")
    if e is not None:
        f["last_stream_id"] = int(e.get("show"))
    e = show("http2.goaway.error")
    if e is not None:
        f["goaway_error"] = int(e.get("show"))
    e = show("http2.goaway.addata")
    f["addata"] = (e.get("value") or "").lower() if e is not None else ""
    e = show("http2.rst_stream.error")
    if e is not None:
        f["rst_error"] = int(e.get("show"))
    e = show("http2.push_promise.promised_stream_id")
    if e is not None:
        f["promised"] = int(e.get("show"))
    hdrs = []
    for h in st.iter("field"):
        if h.get("name") != "http2.header":
            continue
        n = first_show(h, "http2.header.name")
        v = first_show(h, "http2.header.value")
        hdrs.append((n, v))
    f["headers"] = hdrs
    return f


def http2_packets(path, options, env, notes):
    cmd = ["tshark", "-r", path] + options + ["-Y", "http2", "-T", "pdml"]
    out, err = run(cmd, env)
    if err:
        notes.add("tshark stderr (pdml run): " + err.replace("\n", " | "))
    pkts = []
    root = ET.fromstring(out)
    for pkt in root.iter("packet"):
        frame_proto = pkt.find("proto[@name='frame']")
        num = int(first_show(frame_proto, "frame.number"))
        ts_s = first_show(frame_proto, "frame.time_epoch")
        tcp = pkt.find("proto[@name='tcp']")
        if tcp is None:
            notes.add("packet %d: HTTP/2 without TCP, ignored" % num)
            continue
        stream = int(first_show(tcp, "tcp.stream"))
        ip = pkt.find("proto[@name='ip']")
        ip6 = pkt.find("proto[@name='ipv6']")
        src_ip = first_show(ip, "ip.src") if ip is not None else first_show(ip6, "ipv6.src")
        src = endpoint(src_ip, first_show(tcp, "tcp.srcport"))
        retrans = any(True for _ in fields_of(tcp, "tcp.analysis.retransmission")) or \
            any(True for _ in fields_of(tcp, "tcp.analysis.fast_retransmission")) or \
            any(True for _ in fields_of(tcp, "tcp.analysis.spurious_retransmission"))
        frames = []
        for proto in pkt.findall("proto"):
            if proto.get("name") != "http2":
                continue
            for st in proto.iter("field"):
                if st.get("name") == "http2.stream":
                    frames.append(parse_http2_frame(st))
        experts = []
        walk_experts(pkt, "frame", experts)
        pkts.append({"num": num, "ts_s": ts_s, "stream": stream, "src": src,
                     "retrans": retrans, "frames": frames, "experts": experts})
    return cmd, pkts


def tcp_packets(path, options, env):
    cmd = ["tshark", "-r", path] + options + ["-Y", TCP_FILTER, "-T", "fields",
                                              "-E", "occurrence=f", "-E", "separator=\t"]
    for f in TCP_FIELDS:
        cmd += ["-e", f]
    out, _ = run(cmd, env)
    rows = []
    for line in out.decode("utf-8", "replace").splitlines():
        c = line.split("\t")
        c += [""] * (len(TCP_FIELDS) - len(c))
        d = dict(zip(TCP_FIELDS, c))
        if not d["tcp.stream"] or not d["tcp.srcport"]:
            continue  # truncated TCP header (fuzzed captures): no ports, no stream
        src_ip = d["ip.src"] or d["ipv6.src"]
        dst_ip = d["ip.dst"] or d["ipv6.dst"]
        if not src_ip or not dst_ip:
            continue
        rows.append({
            "num": int(d["frame.number"]), "ts_s": d["frame.time_epoch"],
            "stream": int(d["tcp.stream"]),
            "src": endpoint(src_ip, d["tcp.srcport"]),
            "dst": endpoint(dst_ip, d["tcp.dstport"]),
            "flags": int(d["tcp.flags"], 16) if d["tcp.flags"] else 0,
            "retrans": bool(d["tcp.analysis.retransmission"] or
                            d["tcp.analysis.fast_retransmission"] or
                            d["tcp.analysis.spurious_retransmission"]),
            "lost": bool(d["tcp.analysis.lost_segment"]),
            "len": int(d["tcp.len"] or 0),
        })
    return cmd, rows


def tshark_version(env):
    out, _ = run(["tshark", "--version"], env)
    m = re.search(r"TShark \(Wireshark\) (\S+)", out.decode())
    return m.group(1) if m else "unknown"


# ---------------------------------------------------------------- build
def build(name, opts, env, version):
    notes = set()
    ordered_notes = []
    h2cmd, h2pkts = http2_packets(name, opts, env, notes)
    tcpcmd, tcprows = tcp_packets(name, opts, env)

    # per tcp.stream TCP facts
    tcpinfo = {}
    for r in tcprows:
        s = tcpinfo.setdefault(r["stream"], {"first": r, "last": r, "rows": []})
        s["rows"].append(r)
        s["last"] = r

    # HTTP/2 frames per tcp.stream
    conns = {}
    frame_total = {}
    retrans_h2 = []
    for p in h2pkts:
        if not p["frames"]:
            continue  # only the preface (Magic) or a fragment: no frame
        c = conns.setdefault(p["stream"], [])
        if p["retrans"]:
            retrans_h2.append(p["num"])
        c.append(p)
        for f in p["frames"]:
            if f["magic"]:
                continue
            if f["type"] is None:
                notes.add("packet %d: HTTP/2 frame without a type field (truncated), skipped" % p["num"])
                continue
            tn = type_name(f["type"])
            frame_total[tn] = frame_total.get(tn, 0) + 1
    if retrans_h2:
        notes.add("tshark shows HTTP/2 frames in packets flagged as TCP retransmissions: %s "
                  "(check for double counting)" % retrans_h2)

    experts = {}
    for p in h2pkts:
        for proto, msg in p["experts"]:
            experts.setdefault((proto, msg), []).append(p["num"])
    for (proto, msg), nums in sorted(experts.items(), key=lambda kv: kv[1][0]):
        if proto in ("tcp",) and re.search(r"not captured|retransmission|Connection reset|"
                                           r"Out-Of-Order|keep-alive|Dup", msg):
            continue  # TCP sequence analysis: summarised in the tcp section
        ordered_notes.append("tshark expert info (%s) in packet(s) %s: %s"
                             % (proto, ",".join(map(str, nums)), msg))

    connections = []
    for sidx in sorted(conns):
        pk = conns[sidx]
        ti = tcpinfo.get(sidx)
        if ti is None:
            raise SystemExit("%s: tcp.stream %d has HTTP/2 but no TCP row" % (name, sidx))
        eps = sorted({ti["first"]["src"], ti["first"]["dst"]}, key=ep_sort_key)
        syn_from = None
        syn = synack = 0
        fin = {e: 0 for e in eps}
        rst = {e: 0 for e in eps}
        retr = lost = 0
        times = []
        for r in ti["rows"]:
            fl = r["flags"]
            if fl & 0x02 and not fl & 0x10:
                syn += 1
                if syn_from is None:
                    syn_from = r["src"]
            elif fl & 0x02:
                synack += 1
            if fl & 0x01:
                fin[r["src"]] = fin.get(r["src"], 0) + 1
            if fl & 0x04:
                rst[r["src"]] = rst.get(r["src"], 0) + 1
            retr += r["retrans"]
            lost += r["lost"]
            times.append(parse_time(r["ts_s"], notes, "%s packet %d" % (name, r["num"])))
        if syn == 0 and synack:
            notes.add("tcp.stream %d: SYN/ACK seen without the SYN; syn_from left null" % sidx)
        frames = {e: {} for e in eps}
        preface = None
        h2bytes = {e: 0 for e in eps}
        tcpbytes = {e: 0 for e in eps}
        for r in ti["rows"]:
            if not r["retrans"]:
                tcpbytes[r["src"]] += r["len"]
        pings, goaways, rsts = [], [], []
        streams = {}

        def stream_entry(i):
            return streams.setdefault(i, {"id": i, "method": None, "path": None,
                                          "status": None, "grpc_status": None})
        for p in pk:
            ts = parse_time(p["ts_s"], notes, "%s packet %d" % (name, p["num"]))
            src = p["src"]
            if src not in frames:
                raise SystemExit("%s: packet %d from %s not an endpoint of tcp.stream %d %s"
                                 % (name, p["num"], src, sidx, eps))
            cnt = frames[src]
            for f in p["frames"]:
                if f["magic"]:
                    if preface is None:
                        preface = {"ts": ts, "frame": p["num"], "from": src}
                    h2bytes[src] += 24
                    continue
                t = f["type"]
                if t is None:
                    continue
                if f["length"] is not None:
                    h2bytes[src] += 9 + f["length"]
                tn = type_name(t)
                if t == 6:
                    key = "PING_ACK" if f["flags"] & 1 else "PING"
                    cnt[key] = cnt.get(key, 0) + 1
                    pings.append({"ts": ts, "frame": p["num"], "from": src,
                                  "ack": bool(f["flags"] & 1), "opaque": f.get("opaque")})
                elif t == 7:
                    cnt["GOAWAY"] = cnt.get("GOAWAY", 0) + 1
                    ec = f.get("goaway_error")
                    key = "GOAWAY:" + (error_name(ec) if ec is not None else "?")
                    cnt[key] = cnt.get(key, 0) + 1
                    goaways.append({"ts": ts, "frame": p["num"], "from": src,
                                    "last_stream_id": f.get("last_stream_id"),
                                    "error_code": error_name(ec) if ec is not None else None,
                                    "error_code_value": ec,
                                    "debug_data_hex": f.get("addata", "")})
                else:
                    cnt[tn] = cnt.get(tn, 0) + 1
                if t == 3:
                    ec = f.get("rst_error")
                    rsts.append({"ts": ts, "frame": p["num"], "from": src,
                                 "stream_id": f["stream_id"],
                                 "error_code": error_name(ec) if ec is not None else None,
                                 "error_code_value": ec})
                if t in (0, 1, 3, 5, 9) and f["stream_id"]:
                    stream_entry(f["stream_id"])
                if t in (1, 5, 9) and f["headers"]:
                    sid = f["promised"] if t == 5 and "promised" in f else f["stream_id"]
                    if not sid:
                        continue
                    s = stream_entry(sid)
                    for hn, hv in f["headers"]:
                        if hn == ":method" and s["method"] is None:
                            s["method"] = hv
                        elif hn == ":path" and s["path"] is None:
                            s["path"] = hv
                        elif hn == ":status":
                            # final status: a 1xx is replaced by the next one
                            if s["status"] is None or s["status"].startswith("1"):
                                s["status"] = hv
                        elif hn == "grpc-status":
                            try:
                                s["grpc_status"] = int(hv)
                            except (TypeError, ValueError):
                                s["grpc_status"] = hv
        # pair PINGs and ACKs (same opaque, other side, ACK after the PING)
        for i, pg in enumerate(pings):
            if pg["ack"]:
                continue
            pg["acked_at"] = None
            for ack in pings[i + 1:]:
                if ack["ack"] and ack["from"] != pg["from"] and ack["opaque"] == pg["opaque"] \
                        and not ack.get("_used"):
                    ack["_used"] = True
                    pg["acked_at"] = ack["ts"]
                    pg["rtt_ms"] = round((ack["ts"] - pg["ts"]) * 1000, 6)
                    break
        for pg in pings:
            if pg["ack"]:
                pg["answers_ping_in_capture"] = bool(pg.pop("_used", False))
        connections.append({
            "tcp_stream": sidx,
            "endpoints": eps,
            "syn_from": syn_from,
            "preface": preface,
            "start": min(times), "end": max(times), "packets": len(ti["rows"]),
            "frames": {e: dict(sorted(frames[e].items())) for e in eps},
            "pings": pings,
            "goaways": goaways,
            "rst_streams": rsts,
            "streams": [streams[k] for k in sorted(streams)],
            "bytes": {"http2_frames": h2bytes, "tcp_payload": tcpbytes},
            "tcp": {"syn": syn, "syn_ack": synack, "fin": fin, "rst": rst,
                    "retransmissions": retr, "previous_segment_not_captured": lost},
        })

    # 4-tuple reuse: several tcp.stream indexes with the same endpoints
    seen = {}
    for c in connections:
        seen.setdefault(tuple(c["endpoints"]), []).append(c["tcp_stream"])
    for eps, idx in seen.items():
        if len(idx) > 1:
            ordered_notes.append("4-tuple %s reused: tshark splits it into tcp.streams %s"
                                 % (" <-> ".join(eps), idx))
    for c in connections:
        if c["tcp"]["retransmissions"]:
            ordered_notes.append(
                "tcp.stream %d: %d TCP retransmission(s) (tcp.analysis.*retransmission); "
                "tshark does not dissect HTTP/2 again in retransmitted segments%s"
                % (c["tcp_stream"], c["tcp"]["retransmissions"],
                   "" if not retrans_h2 else " EXCEPT packets %s" % retrans_h2))

    tls = any(o.startswith("tls.keylog_file") for o in opts)
    for c in connections:
        for e in c["endpoints"]:
            h, t = c["bytes"]["http2_frames"][e], c["bytes"]["tcp_payload"][e]
            if h != t and not tls:
                ordered_notes.append(
                    "tcp.stream %d, sent by %s: %d bytes of TCP payload (retransmissions "
                    "excluded) but tshark's HTTP/2 frames (9 + length each, + 24 for the "
                    "preface) add up to %d (difference %+d)" % (c["tcp_stream"], e, t, h, t - h))

    cmdline = lambda cmd: " ".join(shlex.quote(x) for x in cmd)
    totals = {"frames_by_type": dict(sorted(frame_total.items())),
              "tcp_streams_in_capture": len(tcpinfo),
              "http2_connections": len(connections)}
    nodec = [o for i, o in enumerate(opts) if o != "-d" and (i == 0 or opts[i - 1] != "-d")]
    commands = [cmdline(h2cmd), cmdline(tcpcmd)]
    if nodec != opts:
        cmd = ["tshark", "-r", name] + nodec + ["-Y", "http2", "-T", "fields", "-E",
                                                "occurrence=a", "-e", "http2.type"]
        out, _ = run(cmd, env)
        commands.append(cmdline(cmd))
        cnt = {}
        for line in out.decode().split():
            for t in line.split(","):
                if t:
                    tn = type_name(int(t))
                    cnt[tn] = cnt.get(tn, 0) + 1
        totals["frames_by_type_without_decode_as"] = dict(sorted(cnt.items()))
    doc = {
        "capture": name,
        "generated_by": GENERATED_BY,
        "tshark_version": version,
        "tshark_command": commands,
        "needs_keylog": any(o.startswith("tls.keylog_file") for o in opts),
        "connections": connections,
        "totals": totals,
        "notes": EXPLAIN.get(name, []) + ordered_notes + sorted(notes),
        "conventions": CONVENTIONS,
    }
    return doc


def crosscheck(name, doc, row):
    """Compare with the MANIFEST's "HTTP/2 frames by type (tshark)" and TCP columns."""
    diffs = []
    want = parse_manifest_counts(row["frames_by_type"])
    got = doc["totals"]["frames_by_type"]
    if want != got:
        diffs.append("frames by type: MANIFEST %s, tshark now %s" % (want, got))
    m = re.search(r"tcp streams=(\d+)", row["tcp"])
    if m and int(m.group(1)) != doc["totals"]["tcp_streams_in_capture"]:
        diffs.append("tcp streams: MANIFEST %s, tshark now %d (streams with a full TCP header)"
                     % (m.group(1), doc["totals"]["tcp_streams_in_capture"]))
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("captures", nargs="*")
    a = ap.parse_args()
    rows = read_manifest()
    names = a.captures or sorted(rows)
    cfg = tempfile.mkdtemp(prefix="h2ka-wsconf-")
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=cfg, LC_ALL="C")
    version = tshark_version(env)
    changed = 0
    print("%-62s %5s %6s  %s" % ("capture", "conns", "frames", "MANIFEST cross-check"))
    for name in names:
        row = rows[name]
        doc = build(name, row["options"], env, version)
        diffs = crosscheck(name, doc, row)
        for d in diffs:
            doc["notes"].append("differs from MANIFEST: " + d)
        text = json.dumps(doc, indent=2) + "\n"
        path = os.path.join(HERE, name + ".json")
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            changed += 1
            if not a.check:
                with open(path, "w") as fh:
                    fh.write(text)
        print("%-62s %5d %6d  %s%s" % (name, len(doc["connections"]),
                                       sum(doc["totals"]["frames_by_type"].values()),
                                       "; ".join(diffs) if diffs else "ok",
                                       "" if old == text else
                                       (" [differs]" if a.check else " [written]")))
    os.rmdir(cfg)
    print("%d capture(s), %d file(s) %s" % (len(names), changed,
                                            "differ" if a.check else "written/updated"))
    if a.check and changed:
        sys.exit(1)


if __name__ == "__main__":
    main()
