#!/usr/bin/python3
"""Where the machine's CPU goes in the HTTP benchmark (issue: serve HTTP).

bench/http.sh measures each proxy's own CPU per request. On a small machine
the load generator and the upstream share the cores with the proxy, so a
proxy's requests/s also depends on what it makes them spend, and on how
often its core goes idle. This tool measures that split, side by side:

  per request: the proxy's CPU, the upstream nginx worker's CPU, wrk's CPU;
  per run: the machine's idle share, and the proxy's voluntary and
  involuntary context switches (all threads).

Setup as in bench/live.py: examples/revelations with 9 tenants, every
upstream pointed at one nginx worker answering 200 "ok"; Switchboard with one
serving thread and the access log off; a front nginx (bench/http/
front-nginx.conf.in, one worker, `map $host` over the same 10 hosts). wrk:
1 thread, 64 connections, GET / rotating over the 10 hosts
(bench/http/hosts.lua). Each Switchboard binary given (default
build/switchboard) and the front nginx take turns, the order rotating per
round; 1 s warm-up before each measured run.

  bench/http_split.py [--rounds N] [--duration S] [--pin] [--access-log]
                      [--perf-sched DIR] [BINARY ...]
  bench/http_split.py --upstream-headers [--rounds N] [--duration S]

--access-log has every proxy write its access log to a file (Switchboard's
JSON lines, written before each wait for events; nginx's default format with
buffer=64k flush=1s). --pin runs every proxy on CPU 0 and wrk and the upstream on CPU 1, so that
the proxy's stage and the load generator's are measured apart. --perf-sched
DIR records one second of scheduler events from the middle of each run
(`perf sched record -a`), to be read with `perf sched timehist -i FILE`.

The second form measures what the headers Switchboard adds cost the
upstream: wrk straight at the upstream nginx worker, alternating a request
with only Host (what the front nginx forwards) and the same request with the
nine headers Switchboard adds (values of the lengths it sends), and reports
the worker's CPU per request for each.

Prints one line per run and the medians. Not part of `make bench` (it
explains bench/http.sh's figures rather than adding new ones); about
rounds x (binaries + 1) x (duration + 1) seconds.
"""
import argparse
import grp
import os
import pwd
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import live  # noqa: E402  (the benchmark edge set-up)

HOSTS = ["codex.revelations.studio"] + [f"t{i}.revelations.studio" for i in range(9)]
HZ = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def machine_idle():
    f = open("/proc/stat").readline().split()
    return int(f[4]) + int(f[5]), sum(int(x) for x in f[1:9])


def switches(pid):
    vol = invol = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith("voluntary_ctxt_switches"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    invol += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that just ended
    return vol, invol


def child_of(pid):
    return int(subprocess.check_output(["pgrep", "-P", str(pid)]).split()[0])


def start_switchboard(binary, base, tmp, i):
    """A copy of the benchmark edge's declaration and store, served by binary."""
    d = os.path.join(tmp, f"sb{i}")
    shutil.copytree(base.dir, os.path.join(d, "decl"))
    shutil.copytree(base.data, os.path.join(d, "data"),
                    ignore=shutil.ignore_patterns("admin.sock"))
    port = live.free_port()
    toml = os.path.join(d, "decl", "switchboard.toml")
    text = open(toml).read()
    text = re.sub(r'http = "127.0.0.1:\d+"', f'http = "127.0.0.1:{port}"', text)
    text = re.sub(r'dns = "127.0.0.1:\d+"', f'dns = "127.0.0.1:{live.free_port()}"', text)
    if ACCESS_LOG:
        text = text.replace('access_log = "off"', f'access_log = "{os.path.join(d, "access.log")}"')
    open(toml, "w").write(text)
    p = subprocess.Popen([binary, "serve", "-c", os.path.join(d, "decl")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if "listening on" in line:
            break
    live.wait_status(port, HOSTS[0], 200, 10)
    return p, port


def start_front_nginx(tmp, up_port):
    d = os.path.join(tmp, "front")
    os.makedirs(d)
    mp = os.path.join(d, "map")
    open(mp, "w").write("".join(f"{h} 1;\n" for h in HOSTS))
    port = live.free_port()
    user = (f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
            if os.getuid() == 0 else "")
    conf = open(os.path.join(ROOT, "bench/http/front-nginx.conf.in")).read()
    for k, v in dict(USER=user, DIR=d, MAP=mp, UPPORT=up_port, PORT=port, WORKERS=1,
                             PEER_HTTP="", PEER_LOCATION="",
                             # buffered, as Switchboard's log is (it writes before waiting)
                             ACCESS_LOG=(os.path.join(d, "access.log") + " combined buffer=64k flush=1s")
                             if ACCESS_LOG else "off").items():
        conf = conf.replace(f"@{k}@", str(v))
    open(os.path.join(d, "nginx.conf"), "w").write(conf)
    p = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d + "/",
                          "-e", os.path.join(d, "error.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live.wait_status(port, HOSTS[0], 200, 10)
    return p, port


PIN = None  # --pin: (proxy CPUs, wrk and upstream CPUs)
ACCESS_LOG = False  # --access-log
SCHED = None  # --perf-sched DIR


def pin(pid, cpus):
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cpus)


def wrk(port, hosts_file, seconds):
    env = dict(os.environ, HOSTS_FILE=hosts_file)
    pre = (lambda: os.sched_setaffinity(0, PIN[1])) if PIN else None
    return subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", "-s",
                           os.path.join(ROOT, "bench/http/hosts.lua"),
                           f"http://127.0.0.1:{port}/"],
                          env=env, capture_output=True, text=True, preexec_fn=pre).stdout


def measure(name, port, pid, up_pid, hosts_file, seconds):
    if PIN:
        pin(pid, PIN[0])
        pin(up_pid, PIN[1])
    wrk(port, hosts_file, 1)  # warm-up
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p0, u0, i0, s0 = ticks(pid), ticks(up_pid), machine_idle(), switches(pid)
    rec = None
    if SCHED:  # one second of scheduler events from the middle of the run
        path = os.path.join(SCHED, f"{name.replace('[', '').replace(']', '')}.{len(os.listdir(SCHED))}.data")
        rec = subprocess.Popen(["bash", "-c", f"sleep {seconds / 2 - 0.5}; "
                                f"exec perf sched record -a -o {path} -- sleep 1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = wrk(port, hosts_file, seconds)
    if rec:
        rec.wait()
    p1, u1, i1, s1 = ticks(pid), ticks(up_pid), machine_idle(), switches(pid)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    m = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "proxy_us": (p1 - p0) / HZ / n * 1e6,
        "upstream_us": (u1 - u0) / HZ / n * 1e6,
        "wrk_us": (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / n * 1e6,
        "idle_pct": 100.0 * (i1[0] - i0[0]) / max(1, i1[1] - i0[1]),
        "vcs": (s1[0] - s0[0]) / n,
        "ivcs": (s1[1] - s0[1]) / n,
        "p99": re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1),
        "errors": "Non-2xx" in out or "Socket errors" in out,
    }
    m["total_us"] = m["proxy_us"] + m["upstream_us"] + m["wrk_us"]
    return m


def show(name, m):
    print(f"{name:28s} {m['rps']:8.0f} req/s  CPU us/req: proxy {m['proxy_us']:5.2f} "
          f"upstream {m['upstream_us']:5.2f} wrk {m['wrk_us']:5.2f} (sum {m['total_us']:5.2f})  "
          f"idle {m['idle_pct']:4.1f}%  proxy switches/req {m['vcs']:.4f} vol "
          f"{m['ivcs']:.4f} invol" + (f"  p99 {m['p99']}" if 'p99' in m else ""), flush=True)


# The request as the front nginx forwards it, and as Switchboard does (the
# headers of src/http/proxy.c build_upstream_head, values of the lengths sent
# for t1 on the benchmark's example).
PLAIN = "GET / HTTP/1.1\r\nHost: t1.revelations.studio\r\n\r\n"
FORWARDED = (
    "GET / HTTP/1.1\r\nHost: t1.revelations.studio\r\nX-Forwarded-For: 127.0.0.1\r\n"
    "X-Forwarded-Proto: http\r\nX-Forwarded-Host: t1.revelations.studio\r\n"
    "X-Request-Id: 52ed17cc0a268d84e26aa7042c064679\r\n"
    "traceparent: 00-dea69bd87ba42eed84ca0555e2f32a8a-0cbb1abc65df6fd6-01\r\n"
    "X-Tenant-Slug: t1\r\nX-Switchboard-Environment: production\r\n"
    "X-Switchboard-Deployment: codex-web-production\r\n"
    "X-Switchboard-Signature: t=1795755636,"
    "v1=7fba5830f417e514240307579ee09640224adfa86a257d7c0a63f834ec315f3b\r\n\r\n")


def upstream_headers(a, tmp, base, up_pid):
    res = {"host only": [], "as Switchboard forwards": []}
    scripts = {}
    for name, req in (("host only", PLAIN), ("as Switchboard forwards", FORWARDED)):
        path = os.path.join(tmp, f"{len(scripts)}.lua")
        lua = req.replace("\r", "\\r").replace("\n", "\\n")
        open(path, "w").write(f'local r = "{lua}"\nrequest = function() return r end\n')
        scripts[name] = path
    print(f"request sizes: host only {len(PLAIN)} B, as Switchboard forwards {len(FORWARDED)} B")
    for r in range(a.rounds):
        names = list(scripts) if r % 2 == 0 else list(reversed(list(scripts)))
        for name in names:
            t0 = ticks(up_pid)
            out = subprocess.run(["wrk", "-t1", "-c64", f"-d{a.duration}s", "-s", scripts[name],
                                  f"http://127.0.0.1:{base.up_port}/"],
                                 capture_output=True, text=True).stdout
            t1 = ticks(up_pid)
            n = int(re.search(r"(\d+) requests in", out).group(1))
            us = (t1 - t0) / HZ / n * 1e6
            res[name].append(us)
            print(f"round {r + 1} {name:24s} upstream {us:5.3f} us/req", flush=True)
    print("-- medians")
    for name, v in res.items():
        print(f"{name:24s} upstream {statistics.median(v):5.3f} us/req")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--upstream-headers", action="store_true")
    ap.add_argument("--pin", action="store_true",
                    help="proxy on CPU 0, wrk and the upstream on CPU 1 (every proxy alike)")
    ap.add_argument("--access-log", action="store_true",
                    help="every proxy writes an access log to a file (nginx: its default "
                    "format, unbuffered)")
    ap.add_argument("--perf-sched", metavar="DIR",
                    help="record 1 s of `perf sched` per run into DIR (read with perf sched "
                    "timehist / latency -i FILE)")
    ap.add_argument("binaries", nargs="*", default=[os.path.join(ROOT, "build/switchboard")])
    a = ap.parse_args()
    global PIN
    if a.pin:
        PIN = ({0}, {1})
    global SCHED, ACCESS_LOG
    ACCESS_LOG = a.access_log
    if a.perf_sched:
        if not shutil.which("perf"):
            sys.exit("http_split.py: perf is missing")
        os.makedirs(a.perf_sched, exist_ok=True)
        SCHED = a.perf_sched
    for tool in ("nginx", "wrk", "pgrep"):
        if not shutil.which(tool):
            sys.exit(f"http_split.py: {tool} is missing")
    tmp = tempfile.mkdtemp(prefix="sb-http-split.")
    procs = []
    try:
        base = live.Edge(tmp)  # upstream nginx + a store with 9 tenants
        procs.append(base.nginx)
        base.proc.terminate()
        base.proc.wait(10)
        up_pid = child_of(base.nginx.pid)
        if a.upstream_headers:
            return upstream_headers(a, tmp, base, up_pid)
        hosts_file = os.path.join(tmp, "hosts")
        open(hosts_file, "w").write("".join(h + "\n" for h in HOSTS))
        targets = []
        for i, b in enumerate(a.binaries):
            p, port = start_switchboard(os.path.abspath(b), base, tmp, i)
            procs.append(p)
            targets.append((f"switchboard[{i}]", port, p.pid))
        fp, fport = start_front_nginx(tmp, base.up_port)
        procs.append(fp)
        targets.append(("nginx", fport, child_of(fp.pid)))
        print(f"== http_split  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
              f"load {os.getloadavg()[0]:.2f}  nproc {os.cpu_count()}")
        for i, b in enumerate(a.binaries):
            print(f"switchboard[{i}] = {b}")
        res = {t[0]: [] for t in targets}
        for r in range(a.rounds):
            k = r % len(targets)
            for name, port, pid in targets[k:] + targets[:k]:
                m = measure(name, port, pid, up_pid, hosts_file, a.duration)
                res[name].append(m)
                show(f"round {r + 1} {name}", m)
        print("-- medians")
        for name, ms in res.items():
            med = {k: statistics.median(m[k] for m in ms)
                   for k in ("rps", "proxy_us", "upstream_us", "wrk_us", "total_us",
                             "idle_pct", "vcs", "ivcs")}
            show(name, med)
        if any(m["errors"] for ms in res.values() for m in ms):
            print("http_split.py: a run saw errors (non-2xx or socket errors)")
            return 1
        return 0
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
