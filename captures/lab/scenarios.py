"""Scenario definitions for the capture lab.

Each scenario is a function(lab) that sets up intermediaries and endpoints in the lab's namespaces,
captures, and returns the metadata of its truth.json plus `expect(conn)`: for every connection seen
in the capture (matched to a client channel by the "lab ch=K rpc=N" request payload), the fate the
setup implies, which check.verify() then asserts against the capture.
"""
import time

import grpc as _grpc  # only for the version string

REGISTRY = {}

GRPCIO = f"grpcio {_grpc.__version__} (C-core)"


def grpc_js_version():
    import json
    import os
    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_modules", "@grpc", "grpc-js", "package.json")
    with open(p) as f:
        return f"@grpc/grpc-js {json.load(f)['version']} (node {os.popen('node --version').read().strip()})"


def scenario(v6=False):
    def reg(fn):
        name = fn.__name__.replace("_", "-")
        fn.v6 = v6
        REGISTRY[name] = fn
        return fn
    return reg


# ---- common plan / expectation helpers ---------------------------------------------------------

def gap_plan(gaps, ends, timeout=None, deadline=3.0, after=True, fail_s=0.0):
    """One channel per gap: RPC, idle gap, RPC (discovers a dead connection), RPC again, then end.
    Channels start staggered so that they all finish together: a connection left open ("hold") has
    then been idle for well under the timeout when the capture stops, and is really alive."""
    durs = [g + (0.5 if after else 0) + (fail_s if timeout is not None and g > timeout else 0) for g in gaps]
    total = max(durs)
    plan = []
    for i, g in enumerate(gaps):
        steps = ["rpc", f"idle:{g}", f"rpc:deadline={deadline}"]
        if after:
            steps += ["idle:0.5", f"rpc:deadline={deadline}"]
        steps.append(ends[i])
        plan.append({"ch": i + 1, "start": round(total - durs[i] + 0.03 * i, 3), "steps": steps})
    return plan


def end_spec(end, note=""):
    if end == "hold":
        return {"cause": "alive", "killed_by": None, "alive": True, "note": note or "open when the capture ended"}
    return {"cause": "graceful_close", "killed_by": "client", "fin": {"from": "client"}, "no_forged_rst": True,
            "note": note or "the client closed its channel (FIN; a RST from the client may follow when "
                            "data arrives after close)"}


def required_pairs(gaps, timeout, after=True):
    """Every channel's first connection, and (after=True) a reconnection for each killed channel."""
    req = [(i + 1, 1) for i in range(len(gaps))]
    if after:
        req += [(i + 1, "re") for i, g in enumerate(gaps) if g > timeout]
    return req


def run_clients(lab, clients, tail=1.0, timeout=60):
    """Wait until every client printed 'done', then a tail; stop the capture before anything else."""
    end = time.time() + timeout
    for c in clients:
        c.wait_line("done", max(1, end - time.time()))
    time.sleep(tail)


def finish(lab, cap, logs):
    cap.stop(sig=2)
    rpcs = []
    for p in list(lab.procs):
        if p.role.startswith("client"):
            p.stop()
    for name in logs:
        try:
            for e in lab.client_log(name):
                e["client"] = name
                rpcs.append(e)
        except FileNotFoundError:
            pass
    lab.stop_all()
    return rpcs


# ---- scenarios ----------------------------------------------------------------------------------

@scenario()
def nat_drop(lab):
    port, timeout = 7443, 5
    gaps = [2.0, 3.5, 7.0, 9.0, 6.0]
    ends = ["hold", "close", "hold", "close", "hold"]
    lab.nat(timeout, invalid="drop")
    lab.py_server(port)
    cap = lab.tcpdump()
    opts = {"grpc.keepalive_time_ms": 2000, "grpc.keepalive_timeout_ms": 2000}
    cl = lab.py_client(lab.hostport("s", port), gap_plan(gaps, ends, timeout, deadline=6.0, fail_s=2.5), opts)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_blackhole", "killed_by": "intermediary", "no_goaway": True, "no_rst": True,
                    "retrans_min": {"client": 2}, "ping_unanswered": "optional",
                    "idle": ("transport_retrans", timeout, g + 0.5),
                    "note": f"idle {g}s > conntrack timeout {timeout}s: the NAT forgot the flow and drops "
                            "the client's next packets (INVALID -> DROP); the client retransmits its request "
                            "(and a PING when one was due), gets nothing back, and gives up about 2 s later "
                            "(RPC fails UNAVAILABLE 'recvmsg:Connection timed out'): with keepalive on, C-core "
                            "sets TCP_USER_TIMEOUT to the 2 s keepalive timeout and the kernel aborts the "
                            "socket without sending anything. No FIN or RST ends this connection."}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC client in namespace C, server in S, an iptables MASQUERADE NAT in M with
            nf_conntrack_tcp_timeout_established={timeout}, nf_conntrack_tcp_loose=0 and INVALID packets dropped.
            {len(gaps)} channels each make an RPC, idle {gaps} s, then RPC again. Idles above {timeout} s
            hit a NAT that has forgotten the flow: the client's packets vanish and are retransmitted.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (before the NAT)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": "iptables/conntrack NAT", "timeout_s": timeout, "on_expiry": "drop",
                         "counts_pings": True,
                         "config": f"MASQUERADE, nf_conntrack_tcp_timeout_established={timeout}, "
                                   "nf_conntrack_tcp_loose=0, FORWARD -m conntrack --ctstate INVALID -j DROP"},
        "client_options": opts,
        "ports": [port], "expect": expect, "bracket": ("transport", timeout),
        "required": required_pairs(gaps, timeout, after=False),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def nat_reset(lab):
    return nat_reset_common(lab, 9090, 5, [2.0, 3.5, 7.0, 9.0, 6.0, 4.0],
                            ["hold", "close", "hold", "close", "hold", "hold"])


@scenario(v6=True)
def nat_reset_ipv6(lab):
    return nat_reset_common(lab, 2600, 4, [1.5, 3.0, 5.5, 7.5], ["hold", "close", "hold", "close"])


def nat_reset_common(lab, port, timeout, gaps, ends):
    ipt = "ip6tables" if lab.v6 else "iptables"
    hop = "hop limit" if lab.v6 else "TTL"
    lab.nat(timeout, invalid="reset")
    lab.py_server(port)
    cap = lab.tcpdump()
    cl = lab.py_client(lab.hostport("s", port), gap_plan(gaps, ends, timeout))
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_reset", "killed_by": "intermediary", "no_goaway": True,
                    "rst": {"from": "server", "forged": True}, "idle": ("transport_rst", timeout, g + 0.5),
                    "note": f"idle {g}s > conntrack timeout {timeout}s: the NAT answers the client's next "
                            f"packet with a RST it forges in the server's name ({hop} 64, the server's packets "
                            "arrive with 63)"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC client in namespace C, server in S, an {ipt} MASQUERADE NAT in M with
            nf_conntrack_tcp_timeout_established={timeout}, nf_conntrack_tcp_loose=0 and INVALID packets answered
            by REJECT --reject-with tcp-reset{' (IPv6 throughout)' if lab.v6 else ''}. {len(gaps)} channels each make an RPC, idle {gaps} s, then RPC
            again; after an idle above {timeout} s the NAT answers with a forged RST, the RPC fails and the
            channel reconnects for its next RPC.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (before the NAT)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{ipt}/conntrack NAT", "timeout_s": timeout, "on_expiry": "reset",
                         "counts_pings": True,
                         "config": f"MASQUERADE, nf_conntrack_tcp_timeout_established={timeout}, "
                                   "nf_conntrack_tcp_loose=0, FORWARD -m conntrack --ctstate INVALID -j REJECT "
                                   "--reject-with tcp-reset"},
        "ports": [port], "expect": expect, "bracket": ("transport", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def nat_keepalive_survives(lab):
    port, timeout = 23456, 5
    gaps = [2.0, 7.0, 9.0, 12.0]
    ends = ["hold", "close", "hold", "close"]
    lab.nat(timeout, invalid="reset")
    sopts = {"grpc.keepalive_permit_without_calls": 1, "grpc.http2.min_ping_interval_without_data_ms": 1000}
    lab.py_server(port, sopts)
    cap = lab.tcpdump()
    copts = {"grpc.keepalive_time_ms": 2000, "grpc.keepalive_timeout_ms": 2000,
             "grpc.keepalive_permit_without_calls": 1, "grpc.http2.max_pings_without_data": 0}
    cl = lab.py_client(lab.hostport("s", port), gap_plan(gaps, ends, after=False), copts)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        s = end_spec(ends[c.ch - 1], note=f"idle {gaps[c.ch - 1]}s without RPCs, but client PINGs every 2 s keep "
                                          f"the {timeout}s NAT entry fresh")
        s["no_forged_rst"] = True
        s["no_goaway"] = True
        return s

    return {
        "description": f"""Same NAT as nat-reset (conntrack established timeout {timeout} s, INVALID -> tcp-reset),
            but the client sends keepalive PINGs every 2 s with permit_without_calls and no limit on pings
            without data, and the server permits pings every 1 s. Idles of {gaps} s all survive.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (before the NAT)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": "iptables/conntrack NAT", "timeout_s": timeout, "on_expiry": "reset",
                         "counts_pings": True,
                         "config": f"MASQUERADE, nf_conntrack_tcp_timeout_established={timeout}, "
                                   "nf_conntrack_tcp_loose=0, INVALID -> REJECT --reject-with tcp-reset"},
        "ports": [port], "expect": expect, "bracket": ("transport", timeout),
        "required": [(i + 1, 1) for i in range(len(gaps))],
        "client_options": copts, "server_options": sopts,
        "client_rpcs": rpcs,
    }


@scenario()
def too_many_pings_python(lab):
    port = 50051
    gaps = [5.0, 6.0, 7.0, 8.0]  # each longer than the ~3.5 s it takes to be struck out
    ends = ["hold", "hold", "close", "hold"]
    lab.py_server(port)
    cap = lab.tcpdump()
    copts = {"grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 5000,
             "grpc.keepalive_permit_without_calls": 1, "grpc.http2.max_pings_without_data": 0}
    cl = lab.py_client(lab.hostport("s", port), gap_plan(gaps, ends, after=False), copts)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        tmp = {"cause": "too_many_pings", "killed_by": "server",
               "goaway": {"from": "server", "error": "ENHANCE_YOUR_CALM", "debug": "too_many_pings"},
               "fin": {"from": "server", "first": False},
               "note": "client PINGs every 1 s without calls; the default C-core server allows one per 300 s "
                       "without data and 2 strikes: GOAWAY after the 3rd PING, then the server closes"}
        if c.first_rpc == 1:
            return tmp
        # a reconnection (the client doubled its keepalive time after the GOAWAY): may be struck again
        tmp = dict(tmp, note=tmp["note"] + "; this is the channel's reconnection, its keepalive time doubled")
        return [tmp, end_spec(ends[c.ch - 1])]

    return {
        "description": """Python (C-core) client with keepalive_time 1 s, permit_without_calls and no limit on
            pings without data, against a C-core server with default ping enforcement
            (min_recv_ping_interval_without_data 300 s, max_ping_strikes 2).""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (no intermediary; M only routes)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": None,
        "ports": [port], "expect": expect,
        "required": [(i + 1, 1) for i in range(len(gaps))] + [(i + 1, "re") for i in range(len(gaps))],
        "client_options": copts,
        "client_rpcs": rpcs,
    }


HAPROXY = "HAProxy " + __import__("os").popen("haproxy -v").read().split()[2]
NGINX = "nginx " + __import__("subprocess").run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]


def haproxy_cfg(lab, mode, front, back, timeout, extra_defaults=""):
    bind_proto = " proto h2" if mode == "http" else ""
    return f"""global
    maxconn 200
defaults
    mode {mode}
    timeout connect 2s
    timeout client {timeout}s
    timeout server {timeout}s
{extra_defaults}
frontend fe
    bind {lab.hostport('mc', front)}{bind_proto}
    default_backend be
backend be
    server s1 {lab.hostport('s', back)}{bind_proto}
"""


def nginx_cfg(lab, front, back, keepalive_timeout, read_timeout=60, upstream_keepalive=8):
    w = lab.work
    return f"""worker_processes 1;
daemon off;
pid {w}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {w}/nginx-access.log;
    client_body_temp_path {w}/nginx-tmp/client_body;
    proxy_temp_path {w}/nginx-tmp/proxy;
    fastcgi_temp_path {w}/nginx-tmp/fastcgi;
    uwsgi_temp_path {w}/nginx-tmp/uwsgi;
    scgi_temp_path {w}/nginx-tmp/scgi;
    upstream grpc_backend {{
        server {lab.hostport('s', back)};
        keepalive {upstream_keepalive};
    }}
    server {{
        listen {lab.hostport('mc', front)} http2;
        keepalive_timeout {keepalive_timeout}s;
        location / {{
            grpc_pass grpc://grpc_backend;
            grpc_read_timeout {read_timeout}s;
        }}
    }}
}}
"""


def proxy_gap_scenario(lab, *, front, back, gaps, ends, timeout, proxy, copts=None):
    lab.py_server(back)
    proxy()
    cap = lab.tcpdump()
    cl = lab.py_client(lab.hostport("mc", front), gap_plan(gaps, ends, timeout), copts or {})
    run_clients(lab, [cl], tail=1.0)
    return finish(lab, cap, ["client"])


@scenario()
def haproxy_tcp_idle(lab):
    front, back, timeout = 61000, 50051, 5
    gaps = [2.0, 3.5, 7.0, 9.0, 6.0]
    ends = ["hold", "close", "hold", "close", "hold"]
    rpcs = proxy_gap_scenario(lab, front=front, back=back, gaps=gaps, ends=ends, timeout=timeout,
                              proxy=lambda: lab.haproxy(haproxy_cfg(lab, "tcp", front, back, timeout), front))

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_close", "killed_by": "intermediary", "no_goaway": True,
                    "fin": {"from": "server"}, "idle": ("transport_fin", timeout - 0.3, timeout + 1.0),
                    "note": f"HAProxy (mode tcp, timeout client/server {timeout}s) closes both sides after "
                            f"{timeout}s without traffic: FIN without GOAWAY; the client's next RPC reconnects"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC client in C connects to HAProxy in M (mode tcp, timeout client {timeout}s,
            timeout server {timeout}s), which relays to the gRPC server in S. {len(gaps)} channels make an RPC,
            idle {gaps} s, RPC again. After {timeout} s of silence HAProxy closes the client connection (FIN,
            no GOAWAY: an L4 proxy knows nothing of HTTP/2).""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (client <-> HAProxy leg)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{HAPROXY} mode tcp", "timeout_s": timeout, "on_expiry": "close",
                         "counts_pings": True, "config": f"mode tcp; timeout client {timeout}s; timeout server {timeout}s"},
        "ports": [front], "expect": expect, "bracket": ("transport", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def haproxy_h2_idle(lab):
    front, back, timeout = 8443, 9000, 4
    gaps = [1.5, 2.8, 5.5, 7.0, 9.0]
    ends = ["hold", "close", "hold", "close", "hold"]
    rpcs = proxy_gap_scenario(lab, front=front, back=back, gaps=gaps, ends=ends, timeout=timeout,
                              proxy=lambda: lab.haproxy(haproxy_cfg(lab, "http", front, back, timeout), front))

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_goaway", "killed_by": "intermediary",
                    "goaway": {"from": "server", "error": "NO_ERROR"},
                    "idle": ("stream", timeout - 0.3, timeout + 1.0),
                    "note": f"HAProxy (mode http, h2 both sides, timeout client {timeout}s) sends GOAWAY "
                            f"NO_ERROR on a client connection without streams for {timeout}s, then closes"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC client in C connects to HAProxy in M in HTTP mode with HTTP/2 on both sides
            (bind proto h2, server proto h2, timeout client {timeout}s), which forwards to the gRPC server in S.
            {len(gaps)} channels make an RPC, idle {gaps} s, RPC again. An idle client connection gets a
            GOAWAY from HAProxy; the channel opens a new connection for its next RPC.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (client <-> HAProxy leg)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{HAPROXY} mode http (h2)", "timeout_s": timeout, "on_expiry": "goaway",
                         "config": f"mode http; bind proto h2; server proto h2; timeout client {timeout}s"},
        "ports": [front], "expect": expect, "bracket": ("stream", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def nginx_idle(lab):
    front, back, timeout = 8080, 50052, 5
    gaps = [2.0, 3.5, 7.0, 9.0, 6.0]
    ends = ["hold", "close", "hold", "close", "hold"]
    rpcs = proxy_gap_scenario(lab, front=front, back=back, gaps=gaps, ends=ends, timeout=timeout,
                              proxy=lambda: lab.nginx(nginx_cfg(lab, front, back, timeout), front))

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_goaway", "killed_by": "intermediary",
                    "goaway": {"from": "server", "error": "NO_ERROR"}, "fin": {"from": "server", "first": False},
                    "idle": ("stream", timeout - 0.3, timeout + 1.0),
                    "note": f"nginx keepalive_timeout {timeout}s: GOAWAY NO_ERROR after {timeout}s without "
                            "streams, then close"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC client in C connects to nginx in M (listen ... http2, keepalive_timeout
            {timeout}s, grpc_pass to the gRPC server in S). {len(gaps)} channels make an RPC, idle {gaps} s,
            RPC again. nginx closes an HTTP/2 connection idle for {timeout} s with GOAWAY.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (client <-> nginx leg)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{NGINX} grpc_pass", "timeout_s": timeout, "on_expiry": "goaway",
                         "counts_pings": False, "config": f"keepalive_timeout {timeout}s"},
        "ports": [front], "expect": expect, "bracket": ("stream", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def nginx_read_timeout(lab):
    front, back, timeout = 8081, 7000, 3
    sleeps = [0.5, 1.5, 2.2, 4.5, 6.0]
    lab.py_server(back)
    lab.nginx(nginx_cfg(lab, front, back, 60, read_timeout=timeout), front)
    cap = lab.tcpdump(role="m", iface="any", extra=["-y", "LINUX_SLL2"])
    plan = [{"ch": i + 1, "start": round(i * 0.3, 3),
             "steps": [f"rpc:sleep={s}:deadline=10", "idle:0.5", "rpc:deadline=3", "hold"]}
            for i, s in enumerate(sleeps)]
    cl = lab.py_client(lab.hostport("mc", front), plan)
    run_clients(lab, [cl], tail=2.0, timeout=40)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        if c.server_port == front:
            return {"cause": "alive", "killed_by": None, "alive": True, "no_goaway": True,
                    "note": "client <-> nginx leg: an RPC that outlived grpc_read_timeout is answered by nginx "
                            "(HTTP 504 -> gRPC error), the connection itself stays open"}
        slow = [r for r in c.requests if float(r.get("sleep", 0)) > timeout]
        pool_rst = {"cause": "peer_abort", "killed_by": "client", "no_goaway": True,
                    "rst": {"from": "client", "forged": False},
                    "note": "nginx -> server leg idle in nginx's upstream keepalive pool: the server sent a "
                            "PING on it, and nginx closes a pooled connection on any unexpected input "
                            "(ngx_http_upstream_keepalive_close_handler) with unread data: RST"}
        alive = {"cause": "alive", "killed_by": None, "alive": True,
                 "note": "nginx -> server leg kept in nginx's upstream keepalive pool"}
        if slow and c.requests[-1] is slow[-1]:
            return {"cause": "idle_close", "killed_by": "client", "no_goaway": True,
                    "fin": {"from": "client"}, "idle": ("transport_fin", timeout - 0.3, timeout + 1.0),
                    "note": f"nginx -> server leg (nginx is this leg's client): the server sent nothing on the "
                            f"open stream for grpc_read_timeout={timeout}s (it sleeps {slow[-1]['sleep']}s), "
                            "so nginx closed the upstream connection: FIN without GOAWAY (the server's late "
                            "answer is then met by a RST from nginx's kernel)"}
        return [alive, pool_rst]

    return {
        "description": f"""gRPC client in C calls through nginx in M (grpc_pass, grpc_read_timeout {timeout}s,
            upstream keepalive pool) to the gRPC server in S, whose handler sleeps {sleeps} s before answering.
            Calls slower than {timeout} s get a 504 from nginx; nginx closes the upstream connection that carried
            them. Captured with -i any in M (LINUX_SLL2): both legs, client->nginx and nginx->server.""",
        "capture": "capture.pcap", "capture_point": "middle namespace, tcpdump -i any -y LINUX_SLL2 (both legs)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{NGINX} grpc_pass", "timeout_s": timeout, "on_expiry": "close",
                         "config": f"grpc_read_timeout {timeout}s; upstream keepalive 8"},
        "ports": [front, back], "expect": expect,
        "required": [(i + 1, 1) for i in range(len(sleeps))],
        "client_rpcs": rpcs,
    }


@scenario()
def server_max_idle(lab):
    # C-core checks idleness once per max_connection_idle interval and closes at the first check
    # that finds a whole interval without calls: observed GOAWAYs come 1.8T..2.2T after the last
    # call, so fatal gaps are chosen well above 2T and survived ones below T.
    port, timeout = 50055, 3
    gaps = [1.2, 2.4, 8.0, 9.5, 11.0]
    ends = ["hold", "close", "hold", "close", "hold"]
    sopts = {"grpc.max_connection_idle_ms": timeout * 1000}
    lab.py_server(port, sopts)
    cap = lab.tcpdump()
    cl = lab.py_client(lab.hostport("s", port), gap_plan(gaps, ends, timeout))
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_goaway", "killed_by": "server",
                    "goaway": {"from": "server", "error": "INTERNAL_ERROR", "debug": "connection idle"},
                    "idle": ("stream", timeout - 0.3, 2 * timeout + 1.5),
                    "note": f"C-core server grpc.max_connection_idle_ms={timeout * 1000}: GOAWAY INTERNAL_ERROR "
                            "'connection idle' (not NO_ERROR 'max_idle' as grpc-go/java), at the first of its "
                            f"once-per-{timeout}s checks that finds a whole interval without calls: in practice "
                            f"about {2 * timeout}s after the last call"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC C-core server with grpc.max_connection_idle_ms={timeout * 1000}, client in C,
            M only routes. {len(gaps)} channels make an RPC, idle {gaps} s, RPC again. The server sends
            GOAWAY (INTERNAL_ERROR, debug 'connection idle') to connections without RPCs; C-core checks once per
            {timeout} s interval and the interval in which the last call ran counts as active, so a connection dies
            about {2 * timeout} s after its last call (idles between {timeout} and {2 * timeout + 1.5} s are avoided).
            The channel reconnects for its next RPC.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": None, "server_options": sopts,
        "ports": [port], "expect": expect, "bracket": ("stream", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def server_max_age(lab):
    port, age, grace = 40001, 5, 3
    sopts = {"grpc.max_connection_age_ms": age * 1000, "grpc.max_connection_age_grace_ms": grace * 1000}
    lab.py_server(port, sopts)
    cap = lab.tcpdump()
    plan = [
        # busy connection: an RPC every 0.7 s, still aged out
        {"ch": 1, "start": 0.0, "steps": ["rpc"] + ["idle:0.7", "rpc"] * 11 + ["hold"]},
        # a stream in flight at the GOAWAY that finishes within the grace
        {"ch": 2, "start": 0.1, "steps": ["rpc", "idle:2.5", "stream:n=7:every=0.5:deadline=10", "idle:0.3", "rpc", "hold"]},
        # a stream that outlives age + grace: cut by the server
        {"ch": 3, "start": 0.2, "steps": ["rpc", "stream:n=12:every=1:deadline=15", "idle:0.3", "rpc", "hold"]},
        # idle connection, aged out while idle
        {"ch": 4, "start": 0.3, "steps": ["rpc", "idle:7", "rpc", "hold"]},
    ]
    cl = lab.py_client(lab.hostport("s", port), plan)
    run_clients(lab, [cl], tail=1.0, timeout=40)
    rpcs = finish(lab, cap, ["client"])
    lo, hi = age * 0.85, age * 1.15 + 0.3  # C-core jitters the age by +-10%

    def expect(c):
        aged = {"cause": "max_age_goaway", "killed_by": "server", "goaway": {"from": "server", "error": None},
                "goaway_age": (lo, hi),
                "note": f"C-core grpc.max_connection_age_ms={age * 1000} (+-10% jitter), grace {grace * 1000} ms"}
        if c.first_rpc == 1:
            return aged
        return [aged, {"cause": "alive", "killed_by": None, "alive": True,
                       "note": "reconnection after the max-age GOAWAY, younger than the max age at the end"}]

    return {
        "description": f"""gRPC C-core server with grpc.max_connection_age_ms={age * 1000} and
            grpc.max_connection_age_grace_ms={grace * 1000}; client in C, M only routes. Channel 1 makes an
            RPC every 0.7 s, channel 2 has a server stream in flight at the GOAWAY that ends within the grace,
            channel 3 a stream that outlives age + grace, channel 4 is idle when it ages out. All four
            connections get the max-age GOAWAY regardless of activity; the channels reconnect.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": None, "server_options": sopts,
        "ports": [port], "expect": expect,
        "required": [(1, 1), (2, 1), (3, 1), (4, 1)],
        "client_rpcs": rpcs,
    }


@scenario()
def server_crash(lab):
    port = 12345
    lab.py_server(port)
    cap = lab.tcpdump()
    plan = [
        {"ch": 1, "start": 0.0, "steps": ["rpc", "stream:n=20:every=0.5:deadline=15", "idle:1.5", "rpc", "hold"]},
        {"ch": 2, "start": 0.1, "steps": ["rpc", "rpc:sleep=10:deadline=15", "idle:1.5", "rpc", "hold"]},
        {"ch": 3, "start": 0.2, "steps": ["rpc", "idle:1", "rpc", "idle:4", "rpc", "idle:0.5", "rpc", "hold"]},
    ]
    cl = lab.py_client(lab.hostport("s", port), plan)
    time.sleep(3.0)
    srv = [p for p in lab.procs if p.role == "server"][0]
    srv.stop(sig=9)  # kill -9: the kernel closes its sockets
    lab.procs.remove(srv)
    kill_ts = time.time()
    time.sleep(1.0)
    lab.py_server(port, logname="server-restarted")
    run_clients(lab, [cl], tail=1.0, timeout=30)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        if c.start < kill_ts:
            return {"cause": "peer_abort", "killed_by": "server", "no_goaway": True, "no_forged_rst": True,
                    "fin": {"from": "server"}, "idle": ("transport_death", 0, 3.5),
                    "note": "server process killed with SIGKILL while this connection was open: its kernel "
                            "closed the socket with a FIN (no GOAWAY) - not a RST, there was no unread data; "
                            "whatever the client sends next (RST_STREAM, PING ACK...) is answered by a RST with "
                            "the server's own TTL. Streams were open, no idle timer explains it"}
        return {"cause": "alive", "killed_by": None, "alive": True,
                "note": "new connection to the restarted server"}

    return {
        "description": """gRPC C-core client in C, server in S (M only routes). Three channels: one with a
            server stream in flight, one with a slow unary RPC in flight, one between RPCs. After 3 s the server
            process is killed with SIGKILL; a new server process starts 1 s later and the channels reconnect.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": None,
        "ports": [port], "expect": expect, "required": [(1, 1), (2, 1), (3, 1)],
        "client_rpcs": rpcs,
    }


@scenario()
def server_host_crash(lab):
    port = 33333
    lab.py_server(port)
    cap = lab.tcpdump()
    plan = [
        # RPC in flight when the host hangs: retransmitted until the rebooted host answers with RST
        {"ch": 1, "start": 0.0, "steps": ["rpc", "idle:1.5", "rpc:sleep=0:deadline=12", "idle:1", "rpc", "hold"]},
        # a stream in flight when the host hangs
        {"ch": 2, "start": 0.1, "steps": ["rpc", "stream:n=30:every=0.5:deadline=12", "idle:1", "rpc", "hold"]},
        # idle through the outage, first packet after the reboot is answered by RST
        {"ch": 3, "start": 0.2, "steps": ["rpc", "at:7.5", "rpc:deadline=4", "idle:0.5", "rpc", "hold"]},
    ]
    cl = lab.py_client(lab.hostport("s", port), plan)
    time.sleep(1.0)
    lab.sh("s", "iptables -A INPUT -j DROP; iptables -A OUTPUT -j DROP")  # the host hangs
    hang_ts = time.time()
    time.sleep(4.5)
    lab.reboot_server_host()  # ... and comes back without any socket state
    reboot_ts = time.time()
    lab.py_server(port, logname="server-rebooted")
    run_clients(lab, [cl], tail=1.0, timeout=30)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        if c.start < hang_ts:
            return {"cause": "peer_abort", "killed_by": "server", "no_goaway": True,
                    "rst": {"from": "server", "forged": False},
                    "note": "the server host hung (all packets dropped in its namespace) and was rebooted "
                            "(namespace rebuilt, no socket state): the client's next packet, or its "
                            "retransmission, reached the new kernel, which answered with its own RST "
                            "(the server's TTL)"}
        return {"cause": "alive", "killed_by": None, "alive": True,
                "note": "new connection to the rebooted server host"}

    return {
        "description": """gRPC C-core client in C, server host S behind a router M. At 1 s the server host
            hangs (iptables DROP of everything in its namespace); at 5.5 s it 'reboots': its namespace is
            destroyed and rebuilt with the same address and a fresh server process, no socket state.
            Channel 1 has a unary RPC retransmitted into the hung host, channel 2 a stream in flight,
            channel 3 stays idle through the outage and sends its next RPC after the reboot.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": None,
        "ports": [port], "expect": expect, "required": [(1, 1), (2, 1), (3, 1)],
        "client_rpcs": rpcs,
        "events": {"hang": hang_ts, "reboot": reboot_ts},
    }


@scenario()
def nginx_pings_not_counted(lab):
    front, back, timeout = 8082, 50060, 5
    gaps = [2.0, 3.5, 7.0, 9.0]
    ends = ["hold", "close", "hold", "close"]
    copts = {"grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 5000,
             "grpc.keepalive_permit_without_calls": 1, "grpc.http2.max_pings_without_data": 0}
    rpcs = proxy_gap_scenario(lab, front=front, back=back, gaps=gaps, ends=ends, timeout=timeout,
                              proxy=lambda: lab.nginx(nginx_cfg(lab, front, back, timeout), front), copts=copts)

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_goaway", "killed_by": "intermediary",
                    "goaway": {"from": "server", "error": "NO_ERROR"}, "pings_in_idle_min": 3,
                    "idle": ("stream", timeout - 0.3, timeout + 1.0),
                    "note": f"client PINGs every 1 s (all ACKed by nginx) do not count as activity for nginx's "
                            f"keepalive_timeout {timeout}s: GOAWAY after {timeout}s without streams"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""Like nginx-idle (nginx grpc_pass, keepalive_timeout {timeout}s), but the client
            sends keepalive PINGs every 1 s (permit_without_calls, no limit on pings without data). nginx
            ACKs every PING and still closes connections that carried no stream for {timeout} s: PINGs keep
            the transport busy, not the HTTP/2 connection.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (client <-> nginx leg)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{NGINX} grpc_pass", "timeout_s": timeout, "on_expiry": "goaway",
                         "counts_pings": False, "config": f"keepalive_timeout {timeout}s"},
        "client_options": copts,
        "ports": [front], "expect": expect, "bracket": ("stream", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def mid_connection_capture(lab):
    port, timeout = 20000, 4
    gaps = [1.5, 3.0, 5.5, 7.0]
    ends = ["hold", "close", "hold", "hold"]
    lab.nat(timeout, invalid="reset")
    lab.py_server(port)
    plan = [{"ch": i + 1, "start": round(0.05 * i, 3),
             "steps": ["rpc", "idle:0.3", "rpc", "idle:0.3", "rpc", "at:2.8", "rpc", f"idle:{g}", "rpc:deadline=3",
                       "idle:0.5", "rpc:deadline=3", ends[i]]} for i, g in enumerate(gaps)]
    cl = lab.py_client(lab.hostport("s", port), plan)
    time.sleep(1.8)  # connections are up and have carried 3 RPCs each before tcpdump starts
    cap = lab.tcpdump()
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        g = gaps[c.ch - 1]
        if not c.syn_seen:
            if g > timeout:
                return {"cause": "idle_reset", "killed_by": "intermediary", "no_goaway": True,
                        "rst": {"from": "server", "forged": True}, "idle": ("transport_rst", timeout, g + 0.5),
                        "note": "capture started mid-connection (no SYN, no SETTINGS, HPACK state unknown); "
                                f"idle {g}s > conntrack timeout {timeout}s -> RST forged by the NAT (TTL 64, "
                                "the server's packets arrive with 63)"}
            return end_spec(ends[c.ch - 1], note="capture started mid-connection (no SYN, no SETTINGS, HPACK "
                                                 "dynamic table unknown)")
        return end_spec(ends[c.ch - 1], note="reconnection after the NAT reset, captured from its SYN")

    return {
        "description": f"""Same path as nat-reset (NAT with conntrack established timeout {timeout} s, INVALID ->
            tcp-reset), but tcpdump starts only after every channel's connection is up and has carried 3 RPCs:
            no SYN, no connection preface, no SETTINGS, and HEADERS that refer to an HPACK dynamic table the
            capture never saw. Then each channel makes one RPC, idles {gaps} s and makes another.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0, started mid-connection",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": "iptables/conntrack NAT", "timeout_s": timeout, "on_expiry": "reset",
                         "counts_pings": True,
                         "config": f"MASQUERADE, nf_conntrack_tcp_timeout_established={timeout}, "
                                   "nf_conntrack_tcp_loose=0, INVALID -> REJECT --reject-with tcp-reset"},
        "ports": [port], "expect": expect, "bracket": ("transport", timeout),
        "required": [(i + 1, 4) for i in range(len(gaps))],
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def too_many_pings_grpc_js(lab):
    port = 4444
    gaps = [5.0, 6.0, 7.0, 8.0]  # each longer than the ~4 s it takes to be struck out
    ends = ["hold", "hold", "close", "hold"]
    lab.py_server(port)
    cap = lab.tcpdump(fname="raw.pcap")
    copts = {"grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 5000,
             "grpc.keepalive_permit_without_calls": 1}
    cl = lab.js_client(lab.hostport("s", port), gap_plan(gaps, ends, after=False), copts)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client-js"])
    # tcpdump 4.99 writes pcap only: the same packets, re-containered as pcapng
    import subprocess
    subprocess.run(["editcap", "-F", "pcapng", f"{lab.work}/raw.pcap", f"{lab.work}/capture.pcapng"], check=True)

    def expect(c):
        tmp = {"cause": "too_many_pings", "killed_by": "server",
               "goaway": {"from": "server", "error": "ENHANCE_YOUR_CALM", "debug": "too_many_pings"},
               "note": "grpc-js client PINGs every 1 s without calls; the default C-core server allows one per "
                       "300 s without data and 2 strikes: GOAWAY after the 3rd PING"}
        if c.first_rpc == 1:
            return tmp
        return [dict(tmp, note=tmp["note"] + "; reconnection (grpc-js doubled its keepalive time)"),
                end_spec(ends[c.ch - 1])]

    return {
        "description": """@grpc/grpc-js client with keepalive_time 1 s and keepalive_permit_without_calls,
            against a C-core (grpcio) server with default ping enforcement. Captured as pcap, stored as pcapng.""",
        "capture": "capture.pcapng", "capture_point": "client namespace veth eth0 (pcap converted with editcap -F pcapng)",
        "stacks": {"client": grpc_js_version(), "server": GRPCIO},
        "intermediary": None,
        "ports": [port], "expect": expect,
        "required": [(i + 1, 1) for i in range(len(gaps))] + [(i + 1, "re") for i in range(len(gaps))],
        "client_options": copts,
        "client_rpcs": rpcs,
    }


@scenario()
def tls_keylog_max_idle(lab):
    import subprocess
    port, timeout = 10443, 3
    gaps = [1.2, 2.4, 8.0, 9.5]  # C-core closes about 2T after the last call: see server-max-idle
    ends = ["hold", "close", "hold", "close"]
    w = lab.work
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=lab.server", "-addext", "subjectAltName=DNS:lab.server",
                    "-keyout", f"{w}/key.pem", "-out", f"{w}/cert.pem"], check=True, capture_output=True)
    sopts = {"grpc.max_connection_idle_ms": timeout * 1000}
    lab.py_server(port, sopts, tls=(f"{w}/cert.pem", f"{w}/key.pem"))
    cap = lab.tcpdump()
    cl = lab.js_client(lab.hostport("s", port), gap_plan(gaps, ends, timeout), {}, tls_ca=f"{w}/cert.pem",
                       keylog=f"{w}/keylog.txt")
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client-js"])
    subprocess.run(["editcap", "--inject-secrets", f"tls,{w}/keylog.txt", f"{w}/capture.pcap",
                    f"{w}/capture-with-secrets.pcapng"], check=True)

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_goaway", "killed_by": "server",
                    "goaway": {"from": "server", "error": "INTERNAL_ERROR", "debug": "connection idle"},
                    "idle": ("stream", timeout - 0.3, 2 * timeout + 1.5),
                    "note": f"C-core grpc.max_connection_idle_ms={timeout * 1000}, inside TLS: the GOAWAY is only "
                            "visible with the key log"}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""gRPC over TLS: @grpc/grpc-js client (node --tls-keylog) in C, C-core server with a
            self-signed certificate (generated per run) and grpc.max_connection_idle_ms={timeout * 1000} in S.
            {len(gaps)} channels make an RPC, idle {gaps} s, RPC again; idle connections get an encrypted GOAWAY.
            capture.pcap + keylog.txt, and the same packets with the secrets embedded in
            capture-with-secrets.pcapng (editcap --inject-secrets).""",
        "capture": "capture.pcap", "keylog": "keylog.txt", "capture_with_secrets": "capture-with-secrets.pcapng",
        "extra_files": ["keylog.txt", "capture-with-secrets.pcapng"],
        "capture_point": "client namespace veth eth0",
        "stacks": {"client": grpc_js_version(), "server": GRPCIO + " with TLS"},
        "intermediary": None, "server_options": sopts,
        "ports": [port], "expect": expect, "bracket": ("stream", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def haproxy_h2_pings(lab):
    front, back, timeout = 8444, 9001, 4
    gaps = [1.5, 2.8, 5.5, 7.0, 9.0]
    ends = ["hold", "close", "hold", "close", "hold"]
    copts = {"grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 5000,
             "grpc.keepalive_permit_without_calls": 1, "grpc.http2.max_pings_without_data": 0}
    rpcs = proxy_gap_scenario(lab, front=front, back=back, gaps=gaps, ends=ends, timeout=timeout,
                              proxy=lambda: lab.haproxy(haproxy_cfg(lab, "http", front, back, timeout), front),
                              copts=copts)

    def expect(c):
        s = end_spec(ends[c.ch - 1], note=f"{gaps[c.ch - 1]}s without streams, but the client's PINGs every 1 s "
                                          f"count as activity for HAProxy's timeout client {timeout}s")
        s["no_goaway"] = ends[c.ch - 1] == "hold"
        return s

    return {
        "description": f"""Like haproxy-h2-idle (HAProxy 2.6 mode http, h2 on both sides, timeout client {timeout}s),
            but the client sends keepalive PINGs every 1 s (permit_without_calls, no limit on pings without
            data). Unlike nginx (nginx-pings-not-counted), HAProxy's timeout client is an inactivity timer on
            the connection's I/O, so PINGs keep it open: stream idles of {gaps} s all survive.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (client <-> HAProxy leg)",
        "stacks": {"client": GRPCIO, "server": GRPCIO},
        "intermediary": {"kind": f"{HAPROXY} mode http (h2)", "timeout_s": timeout, "on_expiry": "goaway",
                         "counts_pings": True,
                         "config": f"mode http; bind proto h2; server proto h2; timeout client {timeout}s"},
        "client_options": copts,
        "ports": [front], "expect": expect, "bracket": ("transport", timeout),
        "required": [(i + 1, 1) for i in range(len(gaps))],
        "client_rpcs": rpcs,
    }


@scenario()
def nat_drop_grpc_js(lab):
    port, timeout = 6000, 4
    gaps = [1.5, 3.0, 6.0, 8.0]
    ends = ["hold", "close", "hold", "hold"]
    lab.nat(timeout, invalid="drop")
    lab.py_server(port, {"grpc.keepalive_permit_without_calls": 1,
                         "grpc.http2.min_ping_interval_without_data_ms": 1000})
    cap = lab.tcpdump()
    copts = {"grpc.keepalive_time_ms": 10000, "grpc.keepalive_timeout_ms": 2000}
    cl = lab.js_client(lab.hostport("s", port), gap_plan(gaps, ends, timeout, deadline=6.0, fail_s=4.0), copts)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client-js"])

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_blackhole", "killed_by": "intermediary", "no_goaway": True, "no_rst": True,
                    "retrans_min": {"client": 2}, "ping_unanswered": "optional",
                    "idle": ("transport_retrans", timeout, g + 0.5),
                    "note": f"idle {g}s > conntrack timeout {timeout}s: the NAT drops the client's packets and the "
                            "client's kernel retransmits the request. grpc-js fails the RPC UNAVAILABLE 'Connection "
                            "dropped' when its keepalive PING (due 10 s after connect while a call is active) "
                            "goes 2 s without ACK; that PING and the FIN of the destroyed session stay queued "
                            "behind the unacknowledged request, so no PING, FIN or RST appears on the wire: the "
                            "connection just stops."}
        return end_spec(ends[c.ch - 1])

    return {
        "description": f"""@grpc/grpc-js client through the silent NAT of nat-drop (conntrack established timeout
            {timeout} s, INVALID -> DROP), C-core server. Client keepalive_time 10 s (longer than the NAT timeout,
            so it does not keep the flow alive), keepalive_timeout 2 s.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (before the NAT)",
        "stacks": {"client": grpc_js_version(), "server": GRPCIO},
        "intermediary": {"kind": "iptables/conntrack NAT", "timeout_s": timeout, "on_expiry": "drop",
                         "counts_pings": True,
                         "config": f"MASQUERADE, nf_conntrack_tcp_timeout_established={timeout}, "
                                   "nf_conntrack_tcp_loose=0, FORWARD -m conntrack --ctstate INVALID -j DROP"},
        "client_options": copts,
        "ports": [port], "expect": expect, "bracket": ("transport", timeout),
        "required": required_pairs(gaps, timeout, after=False),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "client_rpcs": rpcs,
    }


@scenario()
def grpc_js_server_max_age(lab):
    port, age, grace, idle = 5005, 6, 2, 3
    sopts = {"grpc.max_connection_age_ms": age * 1000, "grpc.max_connection_age_grace_ms": grace * 1000,
             "grpc.max_connection_idle_ms": idle * 1000}
    lab.js_server(port, sopts)
    cap = lab.tcpdump()
    plan = [
        # busy: an RPC every 0.7 s, aged out regardless
        {"ch": 1, "start": 0.0, "steps": ["rpc"] + ["idle:0.7", "rpc"] * 11 + ["hold"]},
        # a stream in flight at the max-age GOAWAY
        {"ch": 2, "start": 0.1, "steps": ["rpc", "idle:0.5", "stream:n=8:every=1:deadline=15", "idle:0.3", "rpc", "hold"]},
        # idle: closed by max idle before it ages
        {"ch": 3, "start": 0.2, "steps": ["rpc", "idle:5", "rpc", "hold"]},
        # an RPC every 2 s: never idle for 3 s, aged out
        {"ch": 4, "start": 0.3, "steps": ["rpc"] + ["idle:2", "rpc"] * 4 + ["hold"]},
    ]
    cl = lab.py_client(lab.hostport("s", port), plan)
    run_clients(lab, [cl], tail=1.0, timeout=40)
    rpcs = finish(lab, cap, ["client"])

    def expect(c):
        aged = {"cause": "max_age_goaway", "killed_by": "server", "goaway": {"from": "server", "error": None},
                "goaway_age": (age * 0.85, age * 1.15 + 0.3),
                "note": f"grpc-js server grpc.max_connection_age_ms={age * 1000} (+-15% jitter), grace "
                        f"{grace * 1000} ms"}
        idled = {"cause": "idle_goaway", "killed_by": "server", "goaway": {"from": "server", "error": None},
                 "idle": ("stream", idle - 0.3, idle + 1.0),
                 "note": f"grpc-js server grpc.max_connection_idle_ms={idle * 1000}"}
        alive = {"cause": "alive", "killed_by": None, "alive": True, "note": "reconnection, open at the end"}
        if c.first_rpc == 1:
            return idled if c.ch == 3 else aged
        return [aged, idled, alive]

    return {
        "description": f"""@grpc/grpc-js server with grpc.max_connection_age_ms={age * 1000},
            grpc.max_connection_age_grace_ms={grace * 1000} and grpc.max_connection_idle_ms={idle * 1000}; C-core
            client in C, M only routes. Channel 1 makes an RPC every 0.7 s, channel 2 has a server stream in
            flight, channel 4 makes an RPC every 2 s: all three are aged out. Channel 3 goes idle for 5 s and gets
            the max-idle GOAWAY {idle} s after its RPC.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0",
        "stacks": {"client": GRPCIO, "server": grpc_js_version()},
        "intermediary": None, "server_options": sopts,
        "ports": [port], "expect": expect,
        "required": [(1, 1), (2, 1), (3, 1), (4, 1)],
        "client_rpcs": rpcs,
    }


# ---- TLS scenarios (versions, ciphers, KeyUpdate; ground truth for decryption and keyless inference) ----

import check  # noqa: E402  (lab.py's directory is on sys.path)

def _lab_dir():
    import os
    return os.path.dirname(os.path.abspath(__file__))


def tls_cert(lab, kind="rsa", name="server"):
    """A self-signed certificate for lab.server (per run): kind rsa (2048) or ec (P-256)."""
    import subprocess
    w = lab.work
    key = ["-newkey", "rsa:2048"] if kind == "rsa" else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "req", "-x509", *key, "-nodes", "-days", "2", "-subj", "/CN=lab.server",
                    "-addext", "subjectAltName=DNS:lab.server", "-keyout", f"{w}/{name}-key.pem",
                    "-out", f"{w}/{name}-cert.pem"], check=True, capture_output=True)
    return f"{w}/{name}-cert.pem", f"{w}/{name}-key.pem"


def tls_py_server(lab, port, cert, key, opts=(), cipher_suites=None):
    """grpcio TLS server; cipher_suites sets GRPC_SSL_CIPHER_SUITES (C-core's TLS 1.2 cipher list)."""
    import os
    argv = [os.path.join(_lab_dir(), ".venv", "bin", "python"), os.path.join(_lab_dir(), "server.py"),
            "--listen", lab.hostport("s", port), "--tls", cert, key]
    for k, v in dict(opts).items():
        argv += ["--opt", f"{k}={v}"]
    env = dict(os.environ, GRPC_SSL_CIPHER_SUITES=cipher_suites) if cipher_suites else None
    return lab.spawn("s", argv, "server", ready="ready", env=env)


def tls_js_client(lab, target, plan, opts, ca, node_flags=(), logname="client-js"):
    """grpc-js client (like lab.js_client) with extra node TLS flags and node's key log."""
    import json
    import os
    argv = ["node", f"--tls-keylog={lab.work}/keylog.txt", *node_flags, os.path.join(_lab_dir(), "client.js"),
            "--target", target, "--plan", json.dumps(plan), "--log", os.path.join(lab.work, logname + ".json"),
            "--tls-ca", ca]
    for k, v in dict(opts).items():
        argv += ["--opt", f"{k}={v}"]
    return lab.spawn("c", argv, logname, ready="started")


def tls_cipher_names():
    """tshark's own names for TLS cipher suite numbers (IANA names)."""
    import subprocess
    out = subprocess.run(["tshark", "-G", "values"], capture_output=True, text=True).stdout
    names = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 4 and f[0] == "V" and f[1] == "tls.handshake.ciphersuite":
            names[int(f[2])] = f[3]
    return names


def tls_facts(capture, ports, keylog):
    """Per tcp.stream, from tshark's dissection with the key log: the server's choice of TLS version,
    cipher suite and ALPN (ServerHello, and EncryptedExtensions for TLS 1.3), KeyUpdate messages, and
    whether every application-data record was decrypted into HTTP/2."""
    import subprocess
    from collections import defaultdict
    names = tls_cipher_names()
    fields = ["frame.number", "frame.time_epoch", "tcp.stream", "tcp.srcport", "tls.record.length",
              "tls.record.content_type", "tls.record.opaque_type", "tls.handshake.type",
              "tls.handshake.version", "tls.handshake.ciphersuite", "tls.handshake.extensions.supported_version",
              "tls.handshake.extensions_alpn_str", "tls.handshake.key_update.request_update", "http2.type"]
    cmd = ["tshark", "-n", "-r", capture] + check.tshark_args(ports, keylog) + [
        "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|",
        *sum((["-e", f] for f in fields), []), "-Y", "tls"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    facts = defaultdict(lambda: {"version": None, "cipher": None, "alpn": None, "key_updates": [],
                                 "undecrypted_records": 0, "appdata_without_http2": []})
    for line in out.splitlines():
        v = dict(zip(fields, line.split("\t")))
        lst = lambda k: [x for x in v[k].split("|") if x]  # noqa: E731
        f = facts[int(v["tcp.stream"])]
        from_server = int(v["tcp.srcport"]) in ports
        hs = [int(x) for x in lst("tls.handshake.type")]
        ctypes = [int(x) for x in lst("tls.record.content_type")]
        nrec = len(lst("tls.record.length"))
        if lst("tls.record.opaque_type") and len(ctypes) < nrec:
            f["undecrypted_records"] += nrec - len(ctypes)  # TLS 1.3: a record without an inner type
        if 23 in ctypes and not v["http2.type"]:
            f["appdata_without_http2"].append(int(v["frame.number"]))
        if from_server and 2 in hs:
            sv = lst("tls.handshake.extensions.supported_version")
            if "0x0304" in sv:
                f["version"] = "1.3"
            else:
                f["version"] = {"0x0303": "1.2", "0x0302": "1.1", "0x0301": "1.0"}.get(lst("tls.handshake.version")[0])
            f["cipher"] = names.get(int(lst("tls.handshake.ciphersuite")[0], 16))
        if from_server and (2 in hs or 8 in hs) and lst("tls.handshake.extensions_alpn_str"):
            f["alpn"] = lst("tls.handshake.extensions_alpn_str")[0]
        if 24 in hs:
            req = lst("tls.handshake.key_update.request_update")
            for r in req or [None]:
                f["key_updates"].append({"ts": round(float(v["frame.time_epoch"]), 6),
                                         "from": "server" if from_server else "client",
                                         "update_requested": None if r is None else r == "1",
                                         "frame": int(v["frame.number"])})
    return dict(facts)


def tls_verify(lab, ports, version, cipher, capture="capture.pcap", keylog="keylog.txt",
               secrets="capture-with-secrets.pcapng", key_updates=False):
    """Embed the key log (editcap --inject-secrets), then check with tshark that every connection used the
    intended TLS version / cipher / ALPN h2, that every application-data record decrypts to HTTP/2 both with
    the key log file and with the pcapng's own secrets, and that both give the same frames. Returns the
    per-tcp.stream TLS facts."""
    import os
    import subprocess
    w = lab.work
    os.chmod(f"{w}/{keylog}", 0o644)
    subprocess.run(["editcap", "--inject-secrets", f"tls,{w}/{keylog}", f"{w}/{capture}", f"{w}/{secrets}"],
                   check=True)
    facts = tls_facts(f"{w}/{capture}", ports, f"{w}/{keylog}")
    facts_dsb = tls_facts(f"{w}/{secrets}", ports, "/dev/null")  # secrets only from the pcapng's DSB
    with_file = {c.stream: c for c in check.read_conns(f"{w}/{capture}", ports, f"{w}/{keylog}", set(ports))}
    with_dsb = {c.stream: c for c in check.read_conns(f"{w}/{secrets}", ports, "/dev/null", set(ports))}
    errs = []
    # and with no options at all (tshark finds TLS by itself, HTTP/2 by ALPN): the same HTTP/2 frames

    def n_http2(path, opts):
        out = subprocess.run(["tshark", "-n", "-r", path, *opts, "-T", "fields", "-E", "occurrence=a",
                              "-E", "aggregator=|", "-e", "http2.type", "-Y", "http2"],
                             check=True, capture_output=True, text=True).stdout
        return sum(len([x for x in line.split("|") if x]) for line in out.splitlines())
    n_plain = n_http2(f"{w}/{secrets}", [])
    n_file = n_http2(f"{w}/{capture}", check.tshark_args(ports, f"{w}/{keylog}"))
    if n_plain != n_file or not n_file:
        errs.append(f"tshark without options on {secrets}: {n_plain} HTTP/2 frames, {n_file} with the key log")
    if set(with_file) != set(with_dsb):
        errs.append(f"connections differ: key log file {sorted(with_file)}, DSB {sorted(with_dsb)}")
    for s, c in with_file.items():
        f = facts.get(s)
        if not f:
            errs.append(f"tcp.stream {s}: no TLS")
            continue
        if (f["version"], f["cipher"], f["alpn"]) != (version, cipher, "h2"):
            errs.append(f"tcp.stream {s}: TLS {f['version']} {f['cipher']} ALPN {f['alpn']}, "
                        f"expected {version} {cipher} h2")
        for ff in (f, facts_dsb.get(s, {"undecrypted_records": -1, "appdata_without_http2": ["?"]})):
            if ff["undecrypted_records"] or ff["appdata_without_http2"]:
                errs.append(f"tcp.stream {s}: {ff['undecrypted_records']} undecrypted records, application data "
                            f"without HTTP/2 in frames {ff['appdata_without_http2']}")
        if not c.frames or c.counts["SETTINGS"]["client"] == 0 or c.counts["SETTINGS"]["server"] == 0:
            errs.append(f"tcp.stream {s}: no HTTP/2 decrypted")
        d = with_dsb.get(s)
        if d is not None and (d.counts != c.counts or all_pings(d) != all_pings(c)):
            errs.append(f"tcp.stream {s}: frames with the DSB {d.counts} != with the key log {c.counts}")
        if key_updates and not {k["from"] for k in f["key_updates"]} >= {"client", "server"}:
            errs.append(f"tcp.stream {s}: KeyUpdate not seen in both directions: {f['key_updates']}")
        if not key_updates and f["key_updates"]:
            errs.append(f"tcp.stream {s}: unexpected KeyUpdate {f['key_updates']}")
    if errs:
        raise check.CheckError("TLS check: " + "; ".join(errs))
    return facts


def all_pings(c):
    """Every decrypted PING frame of a connection (ground truth for keyless PING inference)."""
    return [{"ts": round(f["ts"], 6), "from": f["dir"], "ack": bool(f["flags"] & 1), "frame": f["frame"]}
            for f in c.frames if f["type"] == "PING"]


def tls_conn_extra(facts, extra=None):
    """conn_extra for build_truth: the connection's TLS parameters and its PINGs."""
    def fn(c):
        f = facts[c.stream]
        tls = {"version": f["version"], "cipher": f["cipher"], "alpn": f["alpn"]}
        if f["key_updates"]:
            tls["key_updates"] = f["key_updates"]
        out = {"tls": tls, "pings": all_pings(c)}
        out.update((extra or {}).get(c.stream, {}))
        return out
    return fn


def tls_files(meta):
    return dict(meta, keylog="keylog.txt", capture_with_secrets="capture-with-secrets.pcapng",
                extra_files=["keylog.txt", "capture-with-secrets.pcapng"])


TLS_NOTE = ("frames are counted from tshark's decryption with keylog.txt; the same counts come from "
            "capture-with-secrets.pcapng alone (its Decryption Secrets Block). Per connection, 'tls' is the "
            "server's choice as tshark dissects it (ServerHello, and EncryptedExtensions for ALPN in TLS 1.3) "
            "and 'pings' lists every decrypted PING frame (ts, sender, ACK flag, pcap frame number): the ground "
            "truth for inferring PINGs from TLS record sizes without keys.")


@scenario()
def tls13_chacha_keepalive(lab):
    port, timeout = 11443, 3
    gaps = [1.5, 2.5, 8.0]  # C-core closes about 2T after the last call (see server-max-idle)
    ends = ["hold", "close", "hold"]
    cert, key = tls_cert(lab, "ec")
    sopts = {"grpc.max_connection_idle_ms": timeout * 1000, "grpc.keepalive_permit_without_calls": 1,
             "grpc.http2.min_ping_interval_without_data_ms": 500}
    tls_py_server(lab, port, cert, key, sopts)
    cap = lab.tcpdump()
    copts = {"grpc.keepalive_time_ms": 1500, "grpc.keepalive_timeout_ms": 5000,
             "grpc.keepalive_permit_without_calls": 1}
    flags = ["--tls-cipher-list=TLS_CHACHA20_POLY1305_SHA256"]
    cl = tls_js_client(lab, lab.hostport("s", port), gap_plan(gaps, ends, timeout), copts, cert, flags)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client-js"])
    facts = tls_verify(lab, [port], "1.3", "TLS_CHACHA20_POLY1305_SHA256")

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_goaway", "killed_by": "server",
                    "goaway": {"from": "server", "error": "INTERNAL_ERROR", "debug": "connection idle"},
                    "idle": ("stream", timeout - 0.3, 2 * timeout + 1.5), "pings_in_idle_min": 2,
                    "note": f"C-core grpc.max_connection_idle_ms={timeout * 1000}: keepalive PINGs every 1.5 s "
                            "(all ACKed) do not count as calls; GOAWAY about 2x the setting after the last call"}
        s = end_spec(ends[c.ch - 1], note="" if ends[c.ch - 1] == "close" else
                     "open when the capture ended; keepalive PINGs every 1.5 s, permitted by the server")
        s["no_goaway"] = ends[c.ch - 1] == "hold"
        return s

    return tls_files({
        "description": f"""gRPC over TLS 1.3 with TLS_CHACHA20_POLY1305_SHA256 (the only suite the client
            offers: node --tls-cipher-list=TLS_CHACHA20_POLY1305_SHA256; ECDSA P-256 self-signed certificate).
            @grpc/grpc-js client with keepalive_time 1.5 s, keepalive_timeout 5 s, keepalive_permit_without_calls;
            C-core server permitting it (keepalive_permit_without_calls, min_ping_interval_without_data 500 ms)
            with grpc.max_connection_idle_ms={timeout * 1000}. {len(gaps)} channels make an RPC, idle {gaps} s,
            RPC, RPC; keepalive PINGs flow through every idle, the connection idle for {gaps[-1]} s still gets
            the max-idle GOAWAY and the channel reconnects. capture.pcap + keylog.txt (node --tls-keylog),
            capture-with-secrets.pcapng (editcap --inject-secrets).""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (no intermediary; M only routes)",
        "stacks": {"client": grpc_js_version(), "server": GRPCIO + " with TLS (BoringSSL)"},
        "intermediary": None, "server_options": sopts, "client_options": copts,
        "ports": [port], "expect": expect, "bracket": ("stream", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "notes": TLS_NOTE, "conn_extra": tls_conn_extra(facts),
        "client_rpcs": rpcs,
    })


@scenario()
def tls12_ecdhe_aesgcm_nat_reset(lab):
    port, timeout = 12443, 4
    gaps = [1.5, 2.5, 6.5, 8.0]
    ends = ["hold", "close", "hold", "close"]
    cert, key = tls_cert(lab, "rsa")
    lab.nat(timeout, invalid="reset")
    tls_py_server(lab, port, cert, key)
    cap = lab.tcpdump()
    flags = ["--tls-max-v1.2", "--tls-cipher-list=ECDHE-RSA-AES128-GCM-SHA256"]
    cl = tls_js_client(lab, lab.hostport("s", port), gap_plan(gaps, ends, timeout), {}, cert, flags)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client-js"])
    facts = tls_verify(lab, [port], "1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")

    def expect(c):
        g = gaps[c.ch - 1]
        if c.first_rpc == 1 and g > timeout:
            return {"cause": "idle_reset", "killed_by": "intermediary", "no_goaway": True,
                    "rst": {"from": "server", "forged": True}, "idle": ("transport_rst", timeout, g + 0.5),
                    "note": f"idle {g}s > conntrack timeout {timeout}s: the NAT answers the client's next TLS "
                            "record (the request) with a RST it forges in the server's name (TTL 64, the server's "
                            "packets arrive with 63); visible without the keys"}
        return end_spec(ends[c.ch - 1])

    return tls_files({
        "description": f"""gRPC over TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256 (node --tls-max-v1.2
            --tls-cipher-list=ECDHE-RSA-AES128-GCM-SHA256; RSA 2048 self-signed certificate), @grpc/grpc-js client
            without keepalive in C, C-core server in S, an iptables MASQUERADE NAT in M with
            nf_conntrack_tcp_timeout_established={timeout}, nf_conntrack_tcp_loose=0 and INVALID packets answered
            by REJECT --reject-with tcp-reset (as nat-reset). {len(gaps)} channels make an RPC, idle {gaps} s,
            then RPC again; after an idle above {timeout} s the NAT answers with a forged RST, the RPC fails and
            the channel reconnects (new TLS handshake) for its next RPC.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (before the NAT)",
        "stacks": {"client": grpc_js_version(), "server": GRPCIO + " with TLS (BoringSSL)"},
        "intermediary": {"kind": "iptables/conntrack NAT", "timeout_s": timeout, "on_expiry": "reset",
                         "counts_pings": True,
                         "config": f"MASQUERADE, nf_conntrack_tcp_timeout_established={timeout}, "
                                   "nf_conntrack_tcp_loose=0, FORWARD -m conntrack --ctstate INVALID -j REJECT "
                                   "--reject-with tcp-reset"},
        "ports": [port], "expect": expect, "bracket": ("transport", timeout),
        "required": required_pairs(gaps, timeout),
        "timeout_bracket": {"survived_max_s": max(g for g in gaps if g < timeout),
                            "fatal_min_s": min(g for g in gaps if g > timeout), "timeout_s": timeout},
        "notes": TLS_NOTE, "conn_extra": tls_conn_extra(facts),
        "client_rpcs": rpcs,
    })


GRPC_DEFAULT_CIPHERS = ("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")


@scenario()
def tls12_chacha_too_many_pings(lab):
    port = 13443
    gaps = [5.0, 6.0, 7.0]  # each longer than the ~4 s it takes to be struck out
    ends = ["hold", "close", "hold"]
    cert, key = tls_cert(lab, "rsa")
    suites = GRPC_DEFAULT_CIPHERS + ":ECDHE-RSA-CHACHA20-POLY1305"
    tls_py_server(lab, port, cert, key, cipher_suites=suites)
    cap = lab.tcpdump()
    copts = {"grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 5000,
             "grpc.keepalive_permit_without_calls": 1}
    flags = ["--tls-max-v1.2", "--tls-cipher-list=ECDHE-RSA-CHACHA20-POLY1305"]
    cl = tls_js_client(lab, lab.hostport("s", port), gap_plan(gaps, ends, after=False), copts, cert, flags)
    run_clients(lab, [cl], tail=1.0)
    rpcs = finish(lab, cap, ["client-js"])
    facts = tls_verify(lab, [port], "1.2", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")

    def expect(c):
        tmp = {"cause": "too_many_pings", "killed_by": "server",
               "goaway": {"from": "server", "error": "ENHANCE_YOUR_CALM", "debug": "too_many_pings"},
               "note": "grpc-js client PINGs every 1 s without calls; the default C-core server allows one per "
                       "300 s without data and 2 strikes: GOAWAY after the 3rd PING (inside TLS)"}
        if c.first_rpc == 1:
            return tmp
        return [dict(tmp, note=tmp["note"] + "; reconnection (grpc-js doubled its keepalive time)"),
                end_spec(ends[c.ch - 1])]

    return tls_files({
        "description": f"""gRPC over TLS 1.2 with ECDHE-RSA-CHACHA20-POLY1305 (node --tls-max-v1.2
            --tls-cipher-list=ECDHE-RSA-CHACHA20-POLY1305; RSA 2048 self-signed certificate; the C-core server's
            GRPC_SSL_CIPHER_SUITES is its default list plus ECDHE-RSA-CHACHA20-POLY1305, which C-core does not
            enable by default). @grpc/grpc-js client with keepalive_time 1 s and keepalive_permit_without_calls
            against the C-core server's default ping enforcement, as too-many-pings-grpc-js. {len(gaps)}
            channels make an RPC and idle {gaps} s; each is struck out with GOAWAY ENHANCE_YOUR_CALM
            too_many_pings and reconnects.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (no intermediary; M only routes)",
        "stacks": {"client": grpc_js_version(), "server": GRPCIO + " with TLS (BoringSSL)"},
        "intermediary": None, "client_options": copts,
        "server_env": {"GRPC_SSL_CIPHER_SUITES": suites},
        "ports": [port], "expect": expect,
        "required": [(i + 1, 1) for i in range(len(gaps))] + [(i + 1, "re") for i in range(len(gaps))],
        "notes": TLS_NOTE, "conn_extra": tls_conn_extra(facts),
        "client_rpcs": rpcs,
    })


def h2_frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


@scenario()
def tls13_keyupdate(lab):
    """openssl s_client (TLS 1.3, TLS_AES_256_GCM_SHA384) -> nginx HTTP/2; the lab writes raw HTTP/2 frames
    to s_client's stdin through a FIFO, and "K" lines that make s_client send KeyUpdate(update_requested),
    which nginx's OpenSSL answers with its own KeyUpdate before its next record."""
    import errno
    import os
    import subprocess
    port, keepalive = 9444, 6
    w = lab.work
    cert, key = tls_cert(lab, "ec")
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(f"{w}/nginx-tmp/{d}", exist_ok=True)
    cfg = lab.write("nginx.conf", f"""worker_processes 1;
daemon off;
pid {w}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {w}/nginx-access.log;
    client_body_temp_path {w}/nginx-tmp/client_body;
    proxy_temp_path {w}/nginx-tmp/proxy;
    fastcgi_temp_path {w}/nginx-tmp/fastcgi;
    uwsgi_temp_path {w}/nginx-tmp/uwsgi;
    scgi_temp_path {w}/nginx-tmp/scgi;
    server {{
        listen {lab.hostport('s', port)} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;
        keepalive_timeout {keepalive}s;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    lab.spawn("s", ["nginx", "-p", w, "-c", cfg, "-e", f"{w}/nginx-error.log"], "nginx")
    lab.wait_listen("s", port)
    cap = lab.tcpdump()
    fifo = f"{w}/s_client.stdin"
    os.mkfifo(fifo)
    fd = None
    try:
        sc = (f"exec openssl s_client -connect {lab.hostport('s', port)} -servername lab.server -CAfile {cert} "
              f"-alpn h2 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 -keylogfile {w}/keylog.txt "
              f"<{fifo} >{w}/s_client.out 2>{w}/s_client.err")
        client = lab.spawn("c", ["sh", "-c", sc], "client-s_client")
        end = time.time() + 10
        while fd is None:  # the shell opens the FIFO for reading before it execs s_client
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO or time.time() > end:
                    raise
                time.sleep(0.05)
        while "Cipher is" not in (open(f"{w}/s_client.out", errors="replace").read()
                                  if os.path.exists(f"{w}/s_client.out") else ""):
            if time.time() > end or client.p.poll() is not None:
                raise RuntimeError("s_client: no TLS handshake: " + open(f"{w}/s_client.err").read()[-500:])
            time.sleep(0.05)
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        # HPACK: :method POST (3), :scheme https (7), :path / (4), :authority lab.server (literal, name index 1)
        block = b"\x83\x87\x84\x01\x0alab.server"
        request = (preface + h2_frame(4, 0, 0) + h2_frame(1, 0x4, 1, block)
                   + h2_frame(0, 0x1, 1, b"lab ch=1 rpc=1"))
        n = [0]

        def ping():
            n[0] += 1
            return h2_frame(6, 0, 0, b"kupd%04d" % n[0])

        t0 = time.time()
        steps = [(0.0, "request: preface, SETTINGS, HEADERS POST / (stream 1), DATA (END_STREAM)", request),
                 (0.3, "SETTINGS ACK", h2_frame(4, 1, 0))]
        steps += [(0.8 + 0.5 * i, f"PING kupd{i + 1:04d}", None) for i in range(2)]
        steps += [(1.8, "K: s_client sends KeyUpdate(update_requested)", b"K\n")]
        steps += [(2.3 + 0.5 * i, f"PING kupd{i + 3:04d}", None) for i in range(2)]
        steps += [(3.3, "K: s_client sends KeyUpdate(update_requested)", b"K\n")]
        steps += [(3.8 + 0.5 * i, f"PING kupd{i + 5:04d}", None) for i in range(4)]
        actions = []
        for at, what, data in steps:
            time.sleep(max(0.0, t0 + at - time.time()))
            os.write(fd, data if data is not None else ping())
            actions.append({"ts": round(time.time(), 6), "action": what})
        # nginx closes the connection keepalive_timeout after the response: s_client then exits on its own
        end = time.time() + keepalive + 4
        while client.p.poll() is None and time.time() < end:
            time.sleep(0.1)
    finally:  # a FIFO left in the work dir would break copying it to .failed/
        if fd is not None:
            os.close(fd)
        os.unlink(fifo)
    time.sleep(1.0)
    finish(lab, cap, [])
    err = open(f"{w}/s_client.err", errors="replace").read()
    if err.count("KEYUPDATE") != 2:
        raise check.CheckError(f"s_client did not report 2 KEYUPDATEs: {err[-500:]}")
    access = open(f"{w}/nginx-access.log").read().strip()
    facts = tls_verify(lab, [port], "1.3", "TLS_AES_256_GCM_SHA384", key_updates=True)
    # PINGs and ACKs before the first KeyUpdate and after the last one, in both directions
    conns = check.read_conns(f"{w}/capture.pcap", [port], f"{w}/keylog.txt", {port})
    for c in conns:
        kus = facts[c.stream]["key_updates"]
        first, last = min(k["ts"] for k in kus), max(k["ts"] for k in kus)
        pings = all_pings(c)
        for d, ack in (("client", False), ("server", True)):
            if not any(p["from"] == d and p["ack"] == ack and p["ts"] < first for p in pings) or \
               not any(p["from"] == d and p["ack"] == ack and p["ts"] > last for p in pings):
                raise check.CheckError(f"no {'PING ACK' if ack else 'PING'} from the {d} before and after the "
                                       f"KeyUpdates {kus}")
        if len([k for k in kus if k["from"] == "client"]) != 2 or len([k for k in kus if k["from"] == "server"]) != 2:
            raise check.CheckError(f"expected 2 KeyUpdates from each side, saw {kus}")

    def expect(c):
        return {"cause": "idle_goaway", "killed_by": "server", "goaway": {"from": "server", "error": "NO_ERROR"},
                "fin": {"from": "server"}, "idle": ("stream", keepalive - 0.3, keepalive + 1.0),
                "pings_in_idle_min": 8,
                "note": f"nginx keepalive_timeout {keepalive}s: GOAWAY NO_ERROR {keepalive} s after the only stream "
                        "ended, although the client PINGed every 0.5 s (all ACKed; nginx does not count PINGs). "
                        "Client and server each sent 2 KeyUpdates (TLS 1.3 handshake type 24) in between."}

    streams = {c.stream: {"client_actions": actions} for c in conns}
    return tls_files({
        "description": f"""HTTP/2 over TLS 1.3 with TLS_AES_256_GCM_SHA384 and KeyUpdate in both directions.
            Server: nginx with `listen ... ssl http2`, ssl_protocols TLSv1.3, ssl_conf_command Ciphersuites
            TLS_AES_256_GCM_SHA384, keepalive_timeout {keepalive}s, `return 200` (ECDSA P-256 self-signed
            certificate). Client: `openssl s_client -alpn h2 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
            -keylogfile` whose stdin is a FIFO the lab writes to: the HTTP/2 preface, SETTINGS, one POST (stream 1)
            with DATA "lab ch=1 rpc=1", SETTINGS ACK, then a PING every 0.5 s (opaque kupd0001...), and twice the
            line "K", on which s_client sends KeyUpdate(update_requested) and nginx's OpenSSL answers with its own
            KeyUpdate before its next record (the PING ACK). PINGs and ACKs flow before, between and after the
            KeyUpdates; nginx ends the connection with GOAWAY NO_ERROR {keepalive} s after the stream (PINGs do
            not count), then close_notify and FIN. One connection.""",
        "capture": "capture.pcap", "capture_point": "client namespace veth eth0 (no intermediary; M only routes)",
        "stacks": {"client": " ".join(subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.split()[:2]) + " "
                             "s_client, HTTP/2 frames written by the lab",
                   "server": f"{NGINX} (http2, TLS 1.3)"},
        "intermediary": None,
        "server_config": {"keepalive_timeout_s": keepalive, "ssl_protocols": "TLSv1.3",
                          "ciphersuites": "TLS_AES_256_GCM_SHA384"},
        "ports": [port], "expect": expect, "required": [(1, 1)],
        "notes": TLS_NOTE + " tls.key_updates lists the KeyUpdate messages (decrypted handshake type 24).",
        "conn_extra": tls_conn_extra(facts, streams),
        "client_rpcs": [{"ch": 1, "rpc": 1, "kind": "raw HTTP/2 POST /", "start": actions[0]["ts"],
                         "status": "nginx access log: " + access}],
    })
