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
