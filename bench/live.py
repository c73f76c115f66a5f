#!/usr/bin/python3
"""Live-change benchmark (issue: change it live): see docs/benchmarks.md.

1. From `switchboard preview create` returning to the first 200 on its new
   host: 100 creates (PR 1..100), one after another, against a running edge
   with 10 tenants; for each, the time from the command's exit to the first
   200 for codex-preview-N (a keep-alive connection polls it). p50, p99,
   max; also the command's own wall time.
2. 10,000 live previews do not slow the request path: wrk (1 thread, 64
   connections, 10 s after 2 s warm-up) on codex.<zone> with 10 live
   previews, then with 10,000, alternating three times (A B A B A B): the
   two states are two versions written to the store and made current with
   POST /v1/sync, so the same server process serves both. Medians and their
   ratio. Also: the time a preview create takes with 10,000 previews live.

The edge runs with one serving thread, access log off, in front of one
nginx worker answering 200 "ok" (bench/http/upstream-nginx.conf.in). All on
127.0.0.1, free ports, a temporary directory removed at exit.
"""
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SB = os.path.join(ROOT, "build", "switchboard")
EXAMPLE = os.path.join(ROOT, "examples", "revelations")
ZONE = "revelations.studio"
QUICK = bool(os.environ.get("LIVE_BENCH_QUICK"))
CREATES = 20 if QUICK else 100
ROUNDS = 1 if QUICK else 3
DURATION = 3 if QUICK else 10
WARMUP = 1 if QUICK else 2
BIG = 1000 if QUICK else 10000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(*args, **kw):
    return subprocess.run([SB, *map(str, args)], check=True, capture_output=True, text=True, **kw)


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


class Edge:
    def __init__(self, tmp):
        self.tmp = tmp
        self.up_port = free_port()
        d = os.path.join(tmp, "upstream")
        os.makedirs(d)
        # nginx drops to "nobody" when started by root: keep the current user
        import grp
        import pwd
        user = (f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
                if os.getuid() == 0 else "")
        conf = open(os.path.join(ROOT, "bench/http/upstream-nginx.conf.in")).read()
        conf = conf.replace("@USER@", user).replace("@DIR@", d).replace("@PORT@", str(self.up_port))
        open(os.path.join(d, "nginx.conf"), "w").write(conf)
        self.nginx = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d + "/",
                                       "-e", os.path.join(d, "error.log")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.dir = os.path.join(tmp, "decl")
        shutil.copytree(EXAMPLE, self.dir, ignore=shutil.ignore_patterns(".switchboard"))
        up = f"http://127.0.0.1:{self.up_port}"
        text = open(os.path.join(self.dir, "switchboard.toml")).read()
        text = re.sub(r'upstream\.(production|staging|preview)\s*=.*', lambda m: f'upstream.{m.group(1)} = "{up}"', text)
        text = re.sub(r'\[listen\][^\[]*', "", text, count=1)
        self.port, self.dns = free_port(), free_port()
        text = text.replace('data_dir = ".switchboard"', 'data_dir = "../data"', 1)
        text += f'\n[listen]\nhttp = "127.0.0.1:{self.port}"\ndns = "127.0.0.1:{self.dns}"\n'
        text = text.replace("[tenants]", '[http]\naccess_log = "off"\nthreads = 1\n\n[tenants]', 1)
        open(os.path.join(self.dir, "switchboard.toml"), "w").write(text)
        self.data = os.path.join(tmp, "data")
        for i in range(9):
            run("tenants", "add", f"t{i}", "-c", self.dir)
        self.proc = subprocess.Popen([SB, "serve", "-c", self.dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            if "listening on" in line:
                break
        wait_status(self.port, f"codex.{ZONE}", 200, 10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.nginx.terminate()
        self.nginx.wait(10)


def wait_status(port, host, want, timeout):
    deadline = time.monotonic() + timeout
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while True:
        try:
            c.request("GET", "/", headers={"Host": host})
            r = c.getresponse()
            r.read()
            if r.status == want:
                c.close()
                return
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}: never {want}")


def create_latency(e, prs):
    """Per PR: command wall time, and command exit -> first 200."""
    conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=5)
    cmd, first = [], []
    for pr in prs:
        t0 = time.monotonic()
        run("preview", "create", "-c", e.dir, "--pr", pr)
        t1 = time.monotonic()
        polls = 0
        while True:
            conn.request("GET", "/", headers={"Host": f"codex-preview-{pr}.{ZONE}"})
            r = conn.getresponse()
            r.read()
            polls += 1
            if r.status == 200:
                break
            if time.monotonic() - t1 > 5:
                raise TimeoutError(f"preview {pr} not served after 5 s")
        t2 = time.monotonic()
        cmd.append((t1 - t0) * 1000)
        first.append((t2 - t1) * 1000)
    conn.close()
    return cmd, first


def set_state(e, prs, label):
    """Make a state with these live previews current: one version written
    to the store, then POST /v1/sync (the server rebuilds before answering)."""
    now = int(time.time())
    state = {"previews": [{"pr": p, "created_at": now, "expires_at": 0} for p in prs],
             "deploys": [], "deleted": []}
    db = sqlite3.connect(os.path.join(e.data, "switchboard.db"), timeout=30)
    with db:
        db.execute("INSERT INTO versions (created_at, command, summary, state) VALUES (?,?,?,?)",
                   (now, "bench/live.py", label, json.dumps(state, separators=(",", ":"))))
    db.close()
    t0 = time.monotonic()
    subprocess.run(["curl", "-sf", "-X", "POST", "--unix-socket", os.path.join(e.data, "admin.sock"),
                    "http://switchboard/v1/sync"], check=True, capture_output=True)
    return (time.monotonic() - t0) * 1000


def wrk(e, host):
    subprocess.run(["wrk", "-t1", "-c64", f"-d{WARMUP}s", "-H", f"Host: {host}",
                    f"http://127.0.0.1:{e.port}/"], check=True, capture_output=True)
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{DURATION}s", "--latency", "-H", f"Host: {host}",
                          f"http://127.0.0.1:{e.port}/"], check=True, capture_output=True,
                         text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("errors under load:\n" + out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    for tool in ("nginx", "wrk", "curl"):
        if not shutil.which(tool):
            sys.exit(f"live.py: {tool} is missing (scripts/install-deps --bench)")
    tmp = tempfile.mkdtemp(prefix="sb-live-bench.")
    e = None
    try:
        print("== live changes (issue: change it live)")
        print(f"date     {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
        print(f"kernel   {' '.join(os.uname()[i] for i in (0, 2, 4))}")
        cpu = [l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')]
        print(f"cpu      {cpu[0] if cpu else '?'}; nproc {os.cpu_count()}")
        print(f"load     {' '.join(open('/proc/loadavg').read().split()[:3])}")
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        print(f"commit   {rev}")
        print(f"setup    edge 1 serving thread, access log off; upstream nginx 1 worker; "
              f"10 tenants; wrk -t1 -c64 -d{DURATION}s after {WARMUP}s warm-up, {ROUNDS} rounds")
        e = Edge(tmp)

        cmd, first = create_latency(e, range(1, CREATES + 1))
        print(f"\n-- preview create -> first 200 ({CREATES} creates, 10 tenants, up to "
              f"{CREATES} previews live)")
        print(f"first 200 after the command returned: p50 {pct(first, 50):.2f} ms, "
              f"p99 {pct(first, 99):.2f} ms, max {max(first):.2f} ms (target: p99 <= 100 ms)")
        print(f"command wall time (process start to exit): p50 {pct(cmd, 50):.1f} ms, "
              f"p99 {pct(cmd, 99):.1f} ms")

        small = list(range(1, 11))
        big = list(range(1, BIG + 1))
        res = {"small": [], "big": []}
        sync_ms = {"small": [], "big": []}
        print(f"\n-- request path with 10 vs {BIG} live previews (wrk on codex.{ZONE})")
        for rnd in range(ROUNDS):
            for name, prs in (("small", small), ("big", big)):
                sync_ms[name].append(set_state(e, prs, f"bench: {len(prs)} previews"))
                wait_status(e.port, f"codex-preview-{prs[-1]}.{ZONE}", 200, 30)
                rps, p99 = wrk(e, f"codex.{ZONE}")
                res[name].append((rps, p99, rss_kib(e.proc.pid)))
                print(f"round {rnd + 1} {len(prs):>6} previews: {rps:10.0f} req/s  p99 {p99:.2f} ms"
                      f"  rss {rss_kib(e.proc.pid) / 1024:.1f} MiB  (state swap {sync_ms[name][-1]:.0f} ms)")
        ms = statistics.median(r[0] for r in res["small"])
        mb = statistics.median(r[0] for r in res["big"])
        print(f"median: 10 previews {ms:.0f} req/s, {BIG} previews {mb:.0f} req/s, "
              f"ratio {mb / ms:.3f} (target: >= 0.95)")
        print(f"median p99: {statistics.median(r[1] for r in res['small']):.2f} ms vs "
              f"{statistics.median(r[1] for r in res['big']):.2f} ms")

        # a create with the big state live
        cmd_big, first_big = create_latency(e, range(BIG + 1, BIG + 1 + min(20, CREATES)))
        print(f"\n-- preview create with {BIG} previews live ({min(20, CREATES)} creates)")
        print(f"first 200 after the command returned: p50 {pct(first_big, 50):.2f} ms, "
              f"p99 {pct(first_big, 99):.2f} ms")
        print(f"command wall time: p50 {pct(cmd_big, 50):.0f} ms, p99 {pct(cmd_big, 99):.0f} ms "
              f"(the whole model, routes and zone are rebuilt and checked per change)")
    finally:
        if e:
            e.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
