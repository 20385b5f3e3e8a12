#!/usr/bin/env python3
"""gRPC C-core (grpcio) server for the capture lab.

No generated code: one generic service `lab.Lab` with raw-bytes messages.
  /lab.Lab/Call    unary; request "lab ch=K rpc=N sleep=S" -> sleeps S seconds, answers "ok ..."
  /lab.Lab/Stream  server streaming; request "... n=N every=S" -> N messages, one every S seconds
Channel arguments (keepalive, max_connection_idle/age, ...) come from --opt key=value.
Prints "ready" on stdout once listening; exits on SIGTERM/SIGINT.
"""
import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc


def params(request: bytes) -> dict:
    out = {}
    for word in request.decode("ascii", "replace").split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = v
    return out


def call(request, context):
    p = params(request)
    time.sleep(min(float(p.get("sleep", "0")), 60.0))
    return b"ok " + request


def stream(request, context):
    p = params(request)
    n = min(int(p.get("n", "3")), 100)
    every = min(float(p.get("every", "1")), 30.0)
    for i in range(n):
        if i:
            time.sleep(every)
        yield b"item %d of " % i + request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", required=True, help="host:port (repeatable)")
    ap.add_argument("--opt", action="append", default=[], help="channel arg key=int")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()

    opts = []
    for o in args.opt:
        k, v = o.split("=", 1)
        opts.append((k, int(v)))
    handler = grpc.method_handlers_generic_handler(
        "lab.Lab",
        {
            "Call": grpc.unary_unary_rpc_method_handler(call),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=opts)
    server.add_generic_rpc_handlers((handler,))
    for addr in args.listen:
        if args.tls:
            with open(args.tls[0], "rb") as f:
                cert = f.read()
            with open(args.tls[1], "rb") as f:
                key = f.read()
            creds = grpc.ssl_server_credentials([(key, cert)])
            server.add_secure_port(addr, creds)
        else:
            server.add_insecure_port(addr)
    server.start()
    print("ready", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait(600)  # the lab never runs a scenario that long
    server.stop(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
