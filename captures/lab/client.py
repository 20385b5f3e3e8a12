#!/usr/bin/env python3
"""gRPC C-core (grpcio) client for the capture lab.

Runs several channels in parallel (one thread each, each channel with its own subchannel pool so
every channel is its own TCP connection). Each channel follows a list of steps:
  rpc[:sleep=S][:deadline=D]     unary /lab.Lab/Call (server sleeps S s)
  stream:n=N:every=S[:deadline=D] server-streaming /lab.Lab/Stream
  idle:S                          do nothing for S seconds
  at:T                            do nothing until T seconds after the client started
  close                           close the channel (client FIN)
  hold                            keep the channel open until the process is told to stop
Requests carry "lab ch=K rpc=N" so a connection in a capture can be matched to its channel.
Writes a JSON log of every RPC (start, end, status) to --log when told to stop.
"""
import argparse
import json
import signal
import sys
import threading
import time

import grpc

IDENT = lambda b: b  # noqa: E731
HELD = []


def parse_step(s):
    name, *rest = s.split(":")
    kv = {}
    for r in rest:
        if "=" in r:
            k, v = r.split("=", 1)
            kv[k] = float(v)
        else:
            kv["s"] = float(r)
    return name, kv


def run_channel(ch, target, opts, creds, steps, start, log, stop):
    t_start = time.time()
    time.sleep(start)
    if creds is not None:
        channel = grpc.secure_channel(target, creds, options=opts)
    else:
        channel = grpc.insecure_channel(target, options=opts)
    call = channel.unary_unary("/lab.Lab/Call", request_serializer=IDENT, response_deserializer=IDENT)
    strm = channel.unary_stream("/lab.Lab/Stream", request_serializer=IDENT, response_deserializer=IDENT)
    n = 0
    for s in steps:
        if stop.is_set():
            return
        name, kv = parse_step(s)
        if name in ("rpc", "stream"):
            n += 1
            dl = kv.get("deadline", 5.0)
            if name == "rpc":
                req = b"lab ch=%d rpc=%d sleep=%g" % (ch, n, kv.get("sleep", 0))
            else:
                req = b"lab ch=%d rpc=%d n=%d every=%g" % (ch, n, kv.get("n", 3), kv.get("every", 1))
            t0 = time.time()
            entry = {"ch": ch, "rpc": n, "kind": name, "start": t0}
            try:
                if name == "rpc":
                    call(req, timeout=dl)
                else:
                    entry["messages"] = sum(1 for _ in strm(req, timeout=dl))
                entry["status"] = "OK"
            except grpc.RpcError as e:
                entry["status"] = e.code().name
                entry["details"] = e.details()
            entry["end"] = time.time()
            log.append(entry)
        elif name == "idle":
            stop.wait(kv["s"])
        elif name == "at":
            stop.wait(max(0.0, t_start + kv["s"] - time.time()))
        elif name == "close":
            channel.close()
            log.append({"ch": ch, "closed": time.time()})
            return
        elif name == "hold":
            HELD.append(channel)  # keep it referenced (and open) until the process exits
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--plan", required=True, help="JSON: [{ch, start, steps:[...]}, ...]")
    ap.add_argument("--opt", action="append", default=[], help="channel arg key=int")
    ap.add_argument("--tls-ca")
    ap.add_argument("--tls-name", default="lab.server")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    opts = [("grpc.use_local_subchannel_pool", 1)]
    for o in args.opt:
        k, v = o.split("=", 1)
        opts.append((k, int(v)))
    creds = None
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        opts.append(("grpc.ssl_target_name_override", args.tls_name))
    plan = json.loads(args.plan)
    log, stop = [], threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [
        threading.Thread(
            target=run_channel,
            args=(c["ch"], args.target, opts, creds, c["steps"], c.get("start", 0), log, stop),
            daemon=True,
        )
        for c in plan
    ]
    for t in threads:
        t.start()
    print("started", flush=True)
    deadline, said = time.time() + 600, False
    while not stop.is_set() and time.time() < deadline:
        if not said and not any(t.is_alive() for t in threads):
            print("done", flush=True)
            said = True
        stop.wait(0.2)
    with open(args.log, "w") as f:
        json.dump(sorted(log, key=lambda e: (e["ch"], e.get("rpc", 99))), f, indent=1)
    sys.stdout.flush()
    # Do not close channels: connections left open must stay open in the capture until the lab
    # has stopped tcpdump; the kernel closes them when the process exits.
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
