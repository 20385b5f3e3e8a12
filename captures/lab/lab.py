#!/usr/bin/env python3
"""Capture lab driver: builds network namespaces, runs real gRPC stacks and intermediaries in them,
captures with tcpdump, checks each capture with tshark (check.py) and writes captures/<scenario>/.

Run through run-all.sh (root; installs dependencies, cleans up namespaces on any exit).
  lab.py [-j JOBS] [--list] [SCENARIO ...]
"""
import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import check
import scenarios

LAB = os.path.dirname(os.path.abspath(__file__))
CAPTURES = os.path.dirname(LAB)
PY = os.path.join(LAB, ".venv", "bin", "python")
NS_PREFIX = "h2klab-"
TOTAL_TIME_LIMIT = 540  # seconds for the whole run; every wait inside a scenario is bounded too

ALL_PROCS = []
ALL_PROCS_LOCK = threading.Lock()
ALL_LABS = []
ABORTING = threading.Event()


def abort(signum, _frame):
    """Ctrl-C / SIGTERM: end every process we started (and reap it), drop our namespaces, exit."""
    ABORTING.set()
    log(f"signal {signum}: stopping every scenario")
    with ALL_PROCS_LOCK:
        procs = list(ALL_PROCS)
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    for lab in list(ALL_LABS):
        lab.teardown_ns()
        shutil.rmtree(lab.work, ignore_errors=True)
    os._exit(128 + signum)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Proc:
    """A process started inside a namespace; its output goes to a log file and a line queue."""

    def __init__(self, lab, role, ns, argv, logname, env=None):
        self.role, self.argv = role, argv
        self.logf = open(os.path.join(lab.work, logname + ".log"), "w")
        full = ["ip", "netns", "exec", ns] + argv
        self.p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=env, start_new_session=True)
        with ALL_PROCS_LOCK:
            ALL_PROCS.append(self.p)
        self.lines = queue.Queue()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        for line in self.p.stdout:
            self.logf.write(line)
            self.logf.flush()
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, needle, timeout):
        end = time.time() + timeout
        while time.time() < end:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"{self.role} exited before printing {needle!r} ({self.argv})")
            if needle in line:
                return line
        raise RuntimeError(f"{self.role}: no {needle!r} within {timeout}s ({self.argv})")

    def send(self, sig):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=5):
        self.send(sig)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.p.wait(5)
        self.t.join(2)
        self.logf.close()


class Lab:
    """One scenario's namespaces (client, middle box, server) and processes."""

    def __init__(self, name, work, v6=False):
        self.name, self.work, self.v6 = name, work, v6
        short = name[:40]
        self.ns = {r: f"{NS_PREFIX}{short}-{r}" for r in "cms"}
        self.procs = []
        self.t0 = time.time()
        if v6:
            self.ip = {"c": "2001:2:0:1::2", "mc": "2001:2:0:1::1", "ms": "2001:2:0:2::1", "s": "2001:2:0:2::2"}
            self.plen = 64
        else:
            self.ip = {"c": "198.18.0.2", "mc": "198.18.0.1", "ms": "198.18.1.1", "s": "198.18.1.2"}
            self.plen = 24

    # ---- plumbing -------------------------------------------------------------------------
    def sh(self, role, cmd, check=True):
        r = subprocess.run(["ip", "netns", "exec", self.ns[role], "sh", "-c", cmd],
                           capture_output=True, text=True, timeout=30)
        if check and r.returncode:
            raise RuntimeError(f"[{role}] {cmd}: {r.stderr.strip()}")
        return r.stdout

    def hostport(self, role, port):
        return f"[{self.ip[role]}]:{port}" if self.v6 else f"{self.ip[role]}:{port}"

    def setup(self):
        self.teardown_ns()
        for r in "cm":
            subprocess.run(["ip", "netns", "add", self.ns[r]], check=True)
            self.sh(r, "ip link set lo up")
        subprocess.run(["ip", "link", "add", "eth0", "netns", self.ns["c"], "type", "veth", "peer", "name", "ethc",
                        "netns", self.ns["m"]], check=True)
        fam, nodad = ("-6", " nodad") if self.v6 else ("", "")
        ip = self.ip
        self.sh("c", f"ip {fam} addr add {ip['c']}/{self.plen} dev eth0{nodad}; ip link set eth0 up")
        self.sh("m", f"ip {fam} addr add {ip['mc']}/{self.plen} dev ethc{nodad}; ip link set ethc up;"
                     "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1")
        # Only the lab's own prefixes are routed: no default route anywhere.
        if self.v6:
            self.sh("c", f"ip -6 route add 2001:2:0:2::/64 via {ip['mc']}")
        else:
            self.sh("c", f"ip route add 198.18.1.0/24 via {ip['mc']}")
        self.setup_server_ns()

    def setup_server_ns(self):
        """The server host: its own namespace, linked to the middle box (also used to 'reboot' it)."""
        subprocess.run(["ip", "netns", "add", self.ns["s"]], check=True)
        self.sh("s", "ip link set lo up")
        subprocess.run(["ip", "link", "add", "eth0", "netns", self.ns["s"], "type", "veth", "peer", "name", "eths",
                        "netns", self.ns["m"]], check=True)
        fam, nodad = ("-6", " nodad") if self.v6 else ("", "")
        ip = self.ip
        self.sh("s", f"ip {fam} addr add {ip['s']}/{self.plen} dev eth0{nodad}; ip link set eth0 up")
        self.sh("m", f"ip {fam} addr add {ip['ms']}/{self.plen} dev eths{nodad}; ip link set eths up")
        if self.v6:
            self.sh("s", f"ip -6 route add 2001:2:0:1::/64 via {ip['ms']}")
        else:
            self.sh("s", f"ip route add 198.18.0.0/24 via {ip['ms']}")

    def reboot_server_host(self):
        """Power-cycle the server host: every process and socket in its namespace is gone, the
        namespace (and its link) is rebuilt from scratch with the same addresses."""
        for p in [p for p in self.procs if p.role.startswith("server")]:
            p.stop(sig=signal.SIGKILL)
            self.procs.remove(p)
        ns = self.ns["s"]
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Orphaned sockets (FIN_WAIT, their FINs dropped by the hang) would keep the old namespace
        # alive for minutes: abort them (their RSTs are dropped too), then cut the link.
        self.sh("s", "ss -K -ta >/dev/null 2>&1; ip link del eth0", check=False)
        subprocess.run(["ip", "netns", "del", ns], check=True)
        for _ in range(100):  # the kernel tears the namespace (and the veth peer) down asynchronously
            if subprocess.run(["ip", "-n", self.ns["m"], "link", "show", "eths"],
                              capture_output=True).returncode:
                break
            time.sleep(0.05)
        self.setup_server_ns()

    def teardown_ns(self):
        for r in "cms":
            ns = self.ns[r]
            if os.path.exists(f"/var/run/netns/{ns}"):
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def spawn(self, role, argv, logname, ready=None, timeout=20, env=None):
        p = Proc(self, logname, self.ns[role], argv, logname, env)
        self.procs.append(p)
        if ready:
            p.wait_line(ready, timeout)
        return p

    def now(self):
        return time.time() - self.t0

    # ---- building blocks ---------------------------------------------------------------------
    def nat(self, timeout_s, invalid="drop", ipv6=False):
        """iptables/conntrack NAT in the middle box with a short established timeout."""
        ipt = "ip6tables" if self.v6 else "iptables"
        target = "REJECT --reject-with tcp-reset" if invalid == "reset" else "DROP"
        self.sh("m", f"sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_established={timeout_s} "
                     "net.netfilter.nf_conntrack_tcp_loose=0;"
                     f"{ipt} -t nat -A POSTROUTING -o eths -j MASQUERADE;"
                     f"{ipt} -A FORWARD -p tcp -m conntrack --ctstate INVALID -j {target}")
        got = self.sh("m", "sysctl -n net.netfilter.nf_conntrack_tcp_timeout_established").strip()
        assert got == str(timeout_s), got

    def py_server(self, port, opts=(), role="s", logname="server", tls=None, listen_ip=None):
        argv = [PY, os.path.join(LAB, "server.py"), "--listen",
                f"[{listen_ip or self.ip[role]}]:{port}" if self.v6 else f"{listen_ip or self.ip[role]}:{port}"]
        for k, v in dict(opts).items():
            argv += ["--opt", f"{k}={v}"]
        if tls:
            argv += ["--tls", *tls]
        return self.spawn(role, argv, logname, ready="ready")

    def js_server(self, port, opts=(), logname="server-js"):
        argv = ["node", os.path.join(LAB, "server.js"), "--listen", self.hostport("s", port)]
        for k, v in dict(opts).items():
            argv += ["--opt", f"{k}={v}"]
        return self.spawn("s", argv, logname, ready="ready")

    def py_client(self, target, plan, opts=(), logname="client", tls_ca=None):
        argv = [PY, os.path.join(LAB, "client.py"), "--target", target, "--plan", json.dumps(plan),
                "--log", os.path.join(self.work, logname + ".json")]
        for k, v in dict(opts).items():
            argv += ["--opt", f"{k}={v}"]
        if tls_ca:
            argv += ["--tls-ca", tls_ca]
        return self.spawn("c", argv, logname, ready="started")

    def js_client(self, target, plan, opts=(), logname="client-js", tls_ca=None, keylog=None):
        argv = ["node"] + ([f"--tls-keylog={keylog}"] if keylog else []) + [
            os.path.join(LAB, "client.js"), "--target", target, "--plan", json.dumps(plan),
            "--log", os.path.join(self.work, logname + ".json")]
        for k, v in dict(opts).items():
            argv += ["--opt", f"{k}={v}"]
        if tls_ca:
            argv += ["--tls-ca", tls_ca]
        return self.spawn("c", argv, logname, ready="started")

    def tcpdump(self, role="c", iface="eth0", fname="capture.pcap", extra=()):
        path = os.path.join(self.work, fname)
        argv = ["tcpdump", "-n", "-i", iface, "-s", "0", "--immediate-mode", "-U", "-w", path, *extra, "tcp"]
        p = self.spawn(role, argv, "tcpdump", ready="listening on", timeout=10)
        time.sleep(0.3)
        return p

    def wait_listen(self, role, port, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if f":{port} " in self.sh(role, "ss -Hltn"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing listening on port {port} in {role} after {timeout}s")

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def haproxy(self, cfg, port):
        path = self.write("haproxy.cfg", cfg)
        p = self.spawn("m", ["haproxy", "-db", "-f", path], "haproxy")
        self.wait_listen("m", port)
        return p

    def nginx(self, cfg, port):
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.work, "nginx-tmp", d), exist_ok=True)
        path = self.write("nginx.conf", cfg)
        p = self.spawn("m", ["nginx", "-p", self.work, "-c", path, "-e", os.path.join(self.work, "nginx-error.log")],
                       "nginx")
        self.wait_listen("m", port)
        return p

    def wait_done(self, client, timeout):
        client.wait_line("done", timeout)

    def client_log(self, logname):
        path = os.path.join(self.work, logname + ".json")
        with open(path) as f:
            return json.load(f)

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []


def run_scenario(name, keep_failed=True):
    sc = scenarios.REGISTRY[name]
    work = tempfile.mkdtemp(prefix=f"h2klab-{name}-")
    lab = Lab(name, work, v6=getattr(sc, "v6", False))
    ALL_LABS.append(lab)
    t0 = time.time()
    ok = False
    try:
        lab.setup()
        meta = sc(lab)
        capture_path = os.path.join(work, meta["capture"])
        truth = build_truth(name, lab, meta, capture_path)
        out = os.path.join(CAPTURES, name)
        tmp_out = out + ".new"
        shutil.rmtree(tmp_out, ignore_errors=True)
        os.makedirs(tmp_out)
        for f in [meta["capture"]] + meta.get("extra_files", []):
            shutil.copy(os.path.join(work, f), os.path.join(tmp_out, f))
            os.chmod(os.path.join(tmp_out, f), 0o644)  # node writes its key log 0600
            size = os.path.getsize(os.path.join(tmp_out, f))
            if size > 2 * 1024 * 1024:
                raise check.CheckError(f"{f} is {size} bytes (> 2 MB)")
        with open(os.path.join(tmp_out, "truth.json"), "w") as f:
            json.dump(truth, f, indent=2)
            f.write("\n")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp_out, out)
        ok = True
        log(f"OK   {name} ({time.time() - t0:.0f}s, {len(truth['connections'])} connections)")
        return True
    except Exception as e:  # noqa: BLE001 - report and fail this scenario loudly
        if ABORTING.is_set():
            return False
        log(f"FAIL {name} ({time.time() - t0:.0f}s): {e}")
        if not isinstance(e, check.CheckError):
            traceback.print_exc()
        return False
    finally:
        if ABORTING.is_set():
            return False
        lab.stop_all()
        lab.teardown_ns()
        if ok or not keep_failed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            dst = os.path.join(LAB, ".failed", name)
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(work, dst)
            shutil.rmtree(work, ignore_errors=True)
            log(f"     {name}: logs and capture kept in {dst}")


def build_truth(name, lab, meta, capture_path):
    ports = meta["ports"]
    keylog = os.path.join(lab.work, meta["keylog"]) if meta.get("keylog") else None
    conns = check.read_conns(capture_path, ports, keylog, server_ports=set(ports))
    if not conns:
        raise check.CheckError(f"{name}: no TCP connections in the capture")
    entries, seen = [], set()
    for c in conns:
        spec = meta["expect"](c)
        if spec is None:
            raise check.CheckError(f"{name}: connection not planned: {json.dumps(c.summary(), default=str)}")
        entry = check.verify_any(c, spec, meta.get("bracket"))
        if meta.get("conn_extra"):  # optional per-connection facts a scenario adds (TLS parameters, PINGs)
            entry.update(meta["conn_extra"](c))
        entries.append(entry)
        seen.add((c.ch, c.first_rpc))
        if c.first_rpc and c.first_rpc > 1:
            seen.add((c.ch, "re"))
    for need in meta.get("required", []):
        if tuple(need) not in seen:
            raise check.CheckError(f"{name}: no connection for channel/rpc {need} in the capture; saw {sorted(seen, key=str)}")
    causes = sorted({e["cause"] for e in entries})
    for need in meta.get("required_causes", []):
        if need not in causes:
            raise check.CheckError(f"{name}: cause {need} missing (saw {causes})")
    link = subprocess.run(["capinfos", "-E", "-T", capture_path], capture_output=True, text=True).stdout
    link_type = link.strip().splitlines()[-1].split("\t")[-1] if link.strip() else "?"
    link_type = {"ether": "EN10MB", "linux-sll2": "LINUX_SLL2", "linux-sll": "LINUX_SLL",
                 "rawip": "RAW"}.get(link_type, link_type)
    truth = {
        "scenario": name,
        "description": " ".join(meta["description"].split()),
        "capture": meta["capture"],
        "capture_point": meta["capture_point"],
        "link_type": meta.get("link_type", link_type),
        "stacks": meta["stacks"],
        "intermediary": meta.get("intermediary"),
        "tshark_options": check.tshark_options_string(ports, meta.get("keylog")),
        "connections": entries,
    }
    for k in ("keylog", "capture_with_secrets", "notes", "timeout_bracket"):
        if k in meta:
            truth[k] = meta[k]
    truth["client_rpcs"] = meta.get("client_rpcs", [])
    truth["lab"] = {"ports": ports, "generated_by": "captures/lab/run-all.sh", "checked_by": "captures/lab/check.py"}
    return truth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("LAB_JOBS", "6")))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("scenarios", nargs="*")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, abort)
    signal.signal(signal.SIGINT, abort)
    names = args.scenarios or list(scenarios.REGISTRY)
    if args.list:
        print("\n".join(scenarios.REGISTRY))
        return 0
    for n in names:
        if n not in scenarios.REGISTRY:
            print(f"unknown scenario {n}; known: {' '.join(scenarios.REGISTRY)}", file=sys.stderr)
            return 2
    t0 = time.time()

    def watchdog():
        log(f"FAIL: the run exceeded {TOTAL_TIME_LIMIT}s; giving up (run-all.sh removes what is left)")
        os._exit(3)

    wd = threading.Timer(TOTAL_TIME_LIMIT, watchdog)
    wd.daemon = True
    wd.start()
    log(f"running {len(names)} scenarios, {args.jobs} at a time")
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        results = dict(zip(names, ex.map(run_scenario, names)))
    wd.cancel()
    failed = [n for n, ok in results.items() if not ok]
    log(f"done in {time.time() - t0:.0f}s: {len(names) - len(failed)} ok, {len(failed)} failed {failed or ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
