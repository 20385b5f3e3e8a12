#!/usr/bin/env python3
"""Read a lab capture with tshark, extract per-connection facts, and check them against what the
scenario set up. The truth.json of a scenario is written only from connections that pass.

Independent of h2keepalive on purpose: everything here comes from tshark's dissection.
Usable alone to re-check a committed scenario:  check.py captures/<scenario>
"""
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict

FRAME_TYPES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
               "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
ERROR_CODES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
COUNTED = ["DATA", "HEADERS", "RST_STREAM", "SETTINGS", "PING", "PING_ACK", "GOAWAY", "WINDOW_UPDATE",
           "PRIORITY", "CONTINUATION", "PUSH_PROMISE"]

FIELDS = ["frame.number", "frame.time_epoch", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport",
          "ip.dst", "ipv6.dst", "tcp.dstport", "ip.ttl", "ipv6.hlim", "ip.id", "tcp.flags", "tcp.len",
          "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
          "tcp.analysis.spurious_retransmission", "http2.type", "http2.flags", "http2.streamid",
          "http2.goaway.error", "http2.goaway.last_stream_id", "http2.goaway.addata", "http2.ping",
          "http2.pong", "http2.data.data"]


class CheckError(Exception):
    pass


def ep(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def tshark_args(ports, keylog=None):
    a = []
    for p in sorted(set(ports)):
        a += ["-d", f"tcp.port=={p},{'tls' if keylog else 'http2'}"]
    if keylog:
        a += ["-o", f"tls.keylog_file:{keylog}"]
    return a


def tshark_options_string(ports, keylog=None):
    return " ".join(tshark_args(ports, os.path.basename(keylog) if keylog else None))


class Conn:
    def __init__(self, stream):
        self.stream = stream
        self.pkts = []      # dicts: ts, dir, ttl, flags, tlen, retrans, frames
        self.client = self.server = None
        self.syn_seen = False

    # ---- derived facts -------------------------------------------------------------------
    def finalize(self):
        self.frames = [f for p in self.pkts for f in p["frames"]]
        base = defaultdict(Counter)
        for p in self.pkts:
            if not p["flags"] & 0x04:
                base[p["dir"]][p["ttl"]] += 1
        self.ttl = {d: c.most_common(1)[0][0] for d, c in base.items()}
        self.rsts = []
        for p in self.pkts:
            if p["flags"] & 0x04:
                own = self.ttl.get(p["dir"])
                self.rsts.append({"ts": p["ts"], "from": p["dir"], "ttl": p["ttl"], "own_ttl": own,
                                  "forged": None if own is None else p["ttl"] != own})
        self.fins = {}
        for p in self.pkts:
            if p["flags"] & 0x01 and p["dir"] not in self.fins:
                self.fins[p["dir"]] = p["ts"]
        self.goaways = [f for f in self.frames if f["type"] == "GOAWAY"]
        self.retrans = Counter(p["dir"] for p in self.pkts if p["retrans"])
        acked = {(f["dir"], f["opaque"]) for f in self.frames if f["type"] == "PING" and f["flags"] & 1}
        self.pings_unanswered = [f for f in self.frames if f["type"] == "PING" and not f["flags"] & 1
                                 and ({"client": "server", "server": "client"}[f["dir"]], f["opaque"]) not in acked]
        self.counts = {k: {"client": 0, "server": 0} for k in COUNTED}
        for f in self.frames:
            k = "PING_ACK" if f["type"] == "PING" and f["flags"] & 1 else f["type"]
            self.counts.setdefault(k, {"client": 0, "server": 0})[f["dir"]] += 1
        # channel identity from the lab's request payloads ("lab ch=K rpc=N ...")
        self.ch = self.first_rpc = None
        self.requests = []
        for f in self.frames:
            if f["type"] == "DATA" and f["dir"] == "client" and "lab ch=" in f.get("text", ""):
                words = dict(w.split("=", 1) for w in f["text"].split("lab ", 1)[1].split() if "=" in w)
                self.requests.append(words)
        if self.requests:
            self.ch, self.first_rpc = int(self.requests[0]["ch"]), int(self.requests[0]["rpc"])
        self.server_port = int(self.server.rsplit(":", 1)[1])
        # stream lifetimes (for stream idleness)
        opened, closed = {}, {}
        for f in self.frames:
            sid = f["sid"]
            if sid == 0:
                continue
            if f["type"] == "HEADERS" and f["dir"] == "client" and sid not in opened:
                opened[sid] = f["ts"]
            ends = (f["type"] in ("HEADERS", "DATA") and f["dir"] == "server" and f["flags"] & 1) \
                or f["type"] == "RST_STREAM"
            if ends and sid not in closed:
                closed[sid] = f["ts"]
        self.streams = {sid: (t, closed.get(sid)) for sid, t in opened.items()}
        self.start, self.end = self.pkts[0]["ts"], self.pkts[-1]["ts"]

    def gap_before(self, ts):
        """Transport idle (no packet either way) that ended with the packet at ts."""
        prev = [p["ts"] for p in self.pkts if p["ts"] < ts]
        return ts - prev[-1] if prev else None

    def stream_idle_at(self, ts):
        """Seconds without any open stream before ts (0 if a stream is open at ts)."""
        last_end = self.start
        for sid, (o, c) in self.streams.items():
            if o < ts and (c is None or c >= ts):
                return 0.0
            if c is not None and c < ts:
                last_end = max(last_end, c)
        return ts - last_end

    def transport_gaps(self, until=None):
        ts = [p["ts"] for p in self.pkts if until is None or p["ts"] <= until]
        return [b - a for a, b in zip(ts, ts[1:])]

    def stream_gaps(self, until=None):
        """Idle periods without open streams, up to `until` (each ended by a new stream)."""
        out = []
        for sid, (o, c) in self.streams.items():
            if until is not None and o > until:
                continue
            out.append(self.stream_idle_at(o))
        return out

    def first_death(self):
        """(ts, kind) of the first GOAWAY, RST or FIN, or None when the connection stays open."""
        ev = [(g["ts"], "goaway") for g in self.goaways]
        ev += [(r["ts"], "rst") for r in self.rsts]
        ev += [(t, "fin") for t in self.fins.values()]
        return min(ev) if ev else None

    def summary(self):
        return {
            "tcp_stream": self.stream, "client": self.client, "server": self.server, "ch": self.ch,
            "first_rpc": self.first_rpc, "start": self.start, "end": self.end, "ttl": self.ttl,
            "rsts": self.rsts, "fins": self.fins, "retrans": dict(self.retrans),
            "goaways": [{k: g[k] for k in ("ts", "dir", "error", "debug", "last_sid")} for g in self.goaways],
            "pings_unanswered": len(self.pings_unanswered),
            "transport_gaps>1s": [round(g, 3) for g in self.transport_gaps() if g > 1],
            "stream_gaps": [round(g, 3) for g in self.stream_gaps()],
        }


def read_conns(capture, ports, keylog=None, server_ports=()):
    cmd = ["tshark", "-n", "-r", capture] + tshark_args(ports, keylog) + [
        "-o", "tcp.desegment_tcp_streams:TRUE", "-T", "fields", "-E", "separator=\t",
        "-E", "occurrence=a", "-E", "aggregator=|"] + sum((["-e", f] for f in FIELDS), []) + ["-Y", "tcp"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    conns = {}
    for line in out.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        s = int(v["tcp.stream"])
        c = conns.setdefault(s, Conn(s))
        src = ep(v["ip.src"] or v["ipv6.src"], v["tcp.srcport"])
        dst = ep(v["ip.dst"] or v["ipv6.dst"], v["tcp.dstport"])
        flags = int(v["tcp.flags"], 16)
        if c.client is None:
            if flags & 0x02 and not flags & 0x10:
                c.client, c.server, c.syn_seen = src, dst, True
            elif int(v["tcp.srcport"]) in server_ports:
                c.client, c.server = dst, src
            else:
                c.client, c.server = src, dst
        d = "client" if src == c.client else "server"
        retrans = bool(v["tcp.analysis.retransmission"] or v["tcp.analysis.fast_retransmission"]
                       or v["tcp.analysis.spurious_retransmission"])
        ttl = int((v["ip.ttl"] or v["ipv6.hlim"]).split("|")[0])
        frames = []
        types = [int(x) for x in v["http2.type"].split("|") if x] if v["http2.type"] else []
        if types and not retrans:  # a frame in a retransmitted segment is counted once
            fl = [int(x, 16) for x in v["http2.flags"].split("|")]
            sids = [int(x) for x in v["http2.streamid"].split("|")]
            gerr = v["http2.goaway.error"].split("|") if v["http2.goaway.error"] else []
            glsid = v["http2.goaway.last_stream_id"].split("|") if v["http2.goaway.last_stream_id"] else []
            gdata = v["http2.goaway.addata"].split("|") if v["http2.goaway.addata"] else []
            pings = v["http2.ping"].split("|") if v["http2.ping"] else []
            pongs = v["http2.pong"].split("|") if v["http2.pong"] else []
            datas = v["http2.data.data"].split("|") if v["http2.data.data"] else []
            gi = pi = qi = di = 0
            for i, t in enumerate(types):
                f = {"ts": float(v["frame.time_epoch"]), "dir": d, "frame": int(v["frame.number"]),
                     "type": FRAME_TYPES[t] if t < len(FRAME_TYPES) else f"UNKNOWN_0x{t:02x}",
                     "flags": fl[i] if i < len(fl) else 0, "sid": sids[i] if i < len(sids) else 0}
                if f["type"] == "GOAWAY":
                    code = int(gerr[gi]) if gi < len(gerr) else None
                    f["error"] = ERROR_CODES[code] if code is not None and code < len(ERROR_CODES) else f"UNKNOWN_{code}"
                    f["last_sid"] = int(glsid[gi]) if gi < len(glsid) else None
                    f["debug"] = bytes.fromhex(gdata[gi].replace(":", "")).decode("utf-8", "replace") \
                        if gi < len(gdata) and gdata[gi] else ""
                    gi += 1
                elif f["type"] == "PING" and f["flags"] & 1:
                    f["opaque"] = pongs[qi].replace(":", "") if qi < len(pongs) else ""
                    qi += 1
                elif f["type"] == "PING":
                    f["opaque"] = pings[pi].replace(":", "") if pi < len(pings) else ""
                    pi += 1
                elif f["type"] == "DATA" and di < len(datas):
                    f["text"] = bytes.fromhex(datas[di].replace(":", "")).decode("ascii", "replace")
                    di += 1
                frames.append(f)
        c.pkts.append({"ts": float(v["frame.time_epoch"]), "dir": d, "ttl": ttl, "flags": flags,
                       "tlen": int(v["tcp.len"] or 0), "retrans": retrans, "frames": frames,
                       "frame": int(v["frame.number"])})
    for c in conns.values():
        c.finalize()
    return [conns[k] for k in sorted(conns)]


# ---- verification ------------------------------------------------------------------------------

def verify_any(c, specs, bracket=None):
    """specs: one spec or a list of alternatives (real stacks vary); the first that holds wins."""
    if isinstance(specs, dict):
        return verify(c, specs, bracket)
    errors = []
    for sp in specs:
        try:
            return verify(c, sp, bracket)
        except CheckError as e:
            errors.append(str(e).split("\n")[0])
    raise CheckError(" | OR | ".join(errors) + "\n  facts: " + json.dumps(c.summary(), default=str))


def verify(c, spec, bracket=None):
    """Check connection c against spec; return its truth entry. spec keys:
    cause, killed_by, note (copied); alive; goaway {from, error|None, debug?, last_sid?}; no_goaway;
    rst {from, forged}; no_rst; no_forged_rst; fin {from, first?}; retrans_min {dir: n};
    ping_unanswered (True, or "optional"); idle (kind, lo, hi) for the idle before death
    (kinds: see measure_idle); goaway_age (lo, hi); pings_in_idle_min n.
    bracket (kind, timeout): idles survived must be below the timeout, fatal ones not below."""
    errs = []
    death = c.first_death()
    idle_before = None
    if spec.get("alive"):
        if c.fins or c.rsts or c.goaways:
            errs.append("expected alive at the end of the capture, saw FIN/RST/GOAWAY")
    g = spec.get("goaway")
    if g:
        match = [x for x in c.goaways if x["dir"] == g["from"] and g.get("error") in (None, x["error"])
                 and ("debug" not in g or x["debug"] == g["debug"])]
        if not match:
            errs.append(f"expected GOAWAY {g}, saw {[(x['dir'], x['error'], x['debug']) for x in c.goaways]}")
        elif "last_sid" in g and match[0]["last_sid"] != g["last_sid"]:
                errs.append(f"GOAWAY last_stream_id {match[0]['last_sid']} != {g['last_sid']}")
    if spec.get("no_goaway") and c.goaways:
        errs.append(f"expected no GOAWAY, saw {[(x['dir'], x['error']) for x in c.goaways]}")
    r = spec.get("rst")
    if r:
        match = [x for x in c.rsts if x["from"] == r["from"] and x["forged"] == r["forged"]]
        if not match:
            errs.append(f"expected RST {r}, saw {c.rsts}")
    if spec.get("no_forged_rst") and any(r["forged"] for r in c.rsts):
        errs.append(f"expected no forged RST, saw {c.rsts}")
    if spec.get("no_rst") and c.rsts:
        errs.append(f"expected no RST, saw {c.rsts}")
    f = spec.get("fin")
    if f:
        if f["from"] not in c.fins:
            errs.append(f"expected FIN from {f['from']}, saw {c.fins}")
        else:
            first = min(c.fins, key=c.fins.get)
            if f.get("first", True) and first != f["from"]:
                errs.append(f"expected the first FIN from {f['from']}, it came from {first}")
    for d, n in spec.get("retrans_min", {}).items():
        if c.retrans.get(d, 0) < n:
            errs.append(f"expected >= {n} retransmissions from {d}, saw {c.retrans.get(d, 0)}")
    if spec.get("ping_unanswered") is True and not c.pings_unanswered:
        errs.append("expected an unanswered PING")
    kind_lo_hi = spec.get("idle")
    idle_end = None
    if kind_lo_hi:
        kind, lo, hi = kind_lo_hi
        idle_before, idle_end = measure_idle(c, kind)
        if idle_before is None or not (lo <= idle_before <= hi):
            errs.append(f"idle before death ({kind}) = {idle_before}, expected in [{lo}, {hi}]")
    survived = None
    if not errs:
        # longest idle this connection survived: gaps that ended before the fatal idle (or death)
        until = idle_end if idle_end is not None else (death[0] if death else None)
        if bracket and bracket[0] == "stream":
            gaps = [g for sid, (o, _) in c.streams.items() if until is None or o < until
                    for g in [c.stream_idle_at(o)]]
        else:
            ts = [p["ts"] for p in c.pkts if until is None or p["ts"] < until]
            gaps = [b - a for a, b in zip(ts, ts[1:])]
        survived = max(gaps, default=0.0)
    if bracket and not errs:
        kind, timeout = bracket
        if spec["cause"].startswith("idle_") and idle_before is not None and idle_before < timeout - 0.3:
            errs.append(f"fatal idle {idle_before:.3f} below the timeout {timeout}")
        if survived >= timeout:
            errs.append(f"survived {kind} idle {survived:.3f} >= timeout {timeout}")
    ga = spec.get("goaway_age")
    if ga and not errs:
        age = c.goaways[0]["ts"] - c.start
        if not (ga[0] <= age <= ga[1]):
            errs.append(f"first GOAWAY at connection age {age:.3f}, expected in {ga}")
    pim = spec.get("pings_in_idle_min")
    if pim and not errs and c.goaways:
        t = c.goaways[0]["ts"]
        t0 = t - c.stream_idle_at(t)
        n = sum(1 for f in c.frames if f["type"] == "PING" and not f["flags"] & 1 and f["dir"] == "client"
                and t0 < f["ts"] < t)
        if n < pim:
            errs.append(f"{n} client PINGs during the stream idle before the GOAWAY, expected >= {pim}")
    if errs:
        raise CheckError(f"connection {c.client} -> {c.server} (tcp.stream {c.stream}, ch={c.ch}, "
                         f"first rpc={c.first_rpc}): " + "; ".join(errs) + "\n  facts: "
                         + json.dumps(c.summary(), default=str))
    evidence = all_evidence(c)
    entry = {
        "client": c.client, "server": c.server,
        "cause": spec["cause"], "killed_by": spec["killed_by"],
        "idle_before_s": None if idle_before is None else round(idle_before, 3),
        "frames": c.counts,
        "evidence": evidence,
        "notes": spec.get("note", ""),
        "tcp_stream": c.stream, "syn_seen": c.syn_seen, "channel": c.ch, "first_rpc_on_connection": c.first_rpc,
        "start": round(c.start, 6), "end": round(c.end, 6),
    }
    if bracket:
        entry[f"max_survived_{bracket[0]}_idle_s"] = round(survived, 3)
    return entry


def all_evidence(c):
    """Everything that ends or threatens a connection, in time order (the checks above decided
    which of it the scenario requires)."""
    ev = []
    for x in c.goaways:
        ev.append({"type": "goaway", "from": x["dir"], "error_code": x["error"], "debug_data": x["debug"],
                   "last_stream_id": x["last_sid"], "ts": round(x["ts"], 6)})
    for x in c.rsts:
        ev.append({"type": "tcp_rst", "from": x["from"], "forged": x["forged"], "ttl": x["ttl"],
                   "sender_ttl": x["own_ttl"], "ts": round(x["ts"], 6)})
    for d, t in c.fins.items():
        ev.append({"type": "tcp_fin", "from": d, "ts": round(t, 6)})
    for d, n in sorted(c.retrans.items()):
        first = next(p["ts"] for p in c.pkts if p["retrans"] and p["dir"] == d)
        ev.append({"type": "retransmissions", "from": d, "count": n, "ts": round(first, 6)})
    by_dir = Counter(f["dir"] for f in c.pings_unanswered)
    for d, n in sorted(by_dir.items()):
        first = next(f["ts"] for f in c.pings_unanswered if f["dir"] == d)
        ev.append({"type": "ping_unanswered", "from": d, "count": n, "ts": round(first, 6)})
    ev.sort(key=lambda e: e["ts"])
    return ev


def measure_idle(c, kind):
    """(idle seconds, ts at which that idle ended) for the idle that preceded the death."""
    death = c.first_death()
    if kind == "stream":
        if not c.goaways:
            return None, None
        t = c.goaways[0]["ts"]
        return c.stream_idle_at(t), t
    if kind == "transport_fin":   # FIN that ends a silence
        t = min(c.fins.values()) if c.fins else None
        return (c.gap_before(t), t) if t else (None, None)
    if kind == "transport_rst":   # the packet that an RST answers ended a silence
        if not c.rsts:
            return None, None
        trig = [p["ts"] for p in c.pkts if p["ts"] < c.rsts[0]["ts"]]
        return (c.gap_before(trig[-1]), trig[-1]) if trig else (None, None)
    if kind == "transport_retrans":  # the unanswered burst that follows a silence
        first_rt = next((i for i, p in enumerate(c.pkts) if p["retrans"]), None)
        if first_rt is None:
            return None, None
        d = c.pkts[first_rt]["dir"]
        i = first_rt
        while i > 0 and c.pkts[i - 1]["dir"] == d:
            i -= 1
        while c.pkts[i]["tlen"] == 0 and i < first_rt:  # pure ACKs are not the unanswered burst
            i += 1
        t = c.pkts[i]["ts"]
        return c.gap_before(t), t
    if kind == "transport_death":
        return (c.gap_before(death[0]), death[0]) if death else (None, None)
    raise ValueError(kind)


def recheck(d):
    """Re-derive frames and evidence of a committed scenario from its capture and compare them with
    its truth.json (no root, no lab run needed). Returns a list of differences."""
    with open(os.path.join(d, "truth.json")) as f:
        truth = json.load(f)
    ports = truth["lab"]["ports"]
    keylog = os.path.join(d, truth["keylog"]) if truth.get("keylog") else None
    conns = {(c.client, c.server): c for c in
             read_conns(os.path.join(d, truth["capture"]), ports, keylog, server_ports=set(ports))}
    diffs = []
    seen = set()
    for e in truth["connections"]:
        key = (e["client"], e["server"])
        seen.add(key)
        c = conns.get(key)
        if c is None:
            diffs.append(f"{key}: in truth.json, not in the capture")
            continue
        if c.counts != e["frames"]:
            diffs.append(f"{key}: frames {c.counts} != truth {e['frames']}")
        if all_evidence(c) != e["evidence"]:
            diffs.append(f"{key}: evidence {all_evidence(c)} != truth {e['evidence']}")
    for key in conns:
        if key not in seen:
            diffs.append(f"{key}: in the capture, not in truth.json")
    return diffs


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="re-check committed scenarios against their captures")
    ap.add_argument("dirs", nargs="*", help="captures/<scenario> directories (default: every one with a truth.json)")
    ap.add_argument("--summary", action="store_true", help="print the facts of every connection instead")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = args.dirs or sorted(os.path.join(root, x) for x in os.listdir(root)
                               if os.path.exists(os.path.join(root, x, "truth.json")))
    bad = 0
    for d in dirs:
        if args.summary:
            t = json.load(open(os.path.join(d, "truth.json")))
            kl = os.path.join(d, t["keylog"]) if t.get("keylog") else None
            for c in read_conns(os.path.join(d, t["capture"]), t["lab"]["ports"], kl, set(t["lab"]["ports"])):
                print(json.dumps(c.summary(), default=str))
            continue
        diffs = recheck(d)
        print(f"{'ok  ' if not diffs else 'FAIL'} {os.path.basename(d.rstrip('/'))}")
        for x in diffs:
            print("     " + x)
        bad += bool(diffs)
    sys.exit(1 if bad else 0)
