"""Serving threads and the control thread at work at the same time.

Requests and DNS queries on every serving thread while the control thread
publishes snapshots (tenants added, reloads, access log reopened, upstreams
going down and up). Under `make e2e-tsan` (the ThreadSanitizer build) the
edge writes any data race it sees on stderr, which Edge.stop() fails on;
under the other builds these tests check what every request got.
"""
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from edge import SB, request, start_demo, wait_for

SUPP = Path(__file__).resolve().parents[2] / "tsan.supp"


def tsan_to_stderr():
    """TSAN_OPTIONS that report on stderr (where Edge.stop looks), without
    make e2e-tsan's log_path, and with the process failing on a report."""
    opts = [o for o in os.environ.get("TSAN_OPTIONS", "").split()
            if not o.startswith(("log_path=", "exitcode="))]
    if not any(o.startswith("suppressions=") for o in opts):
        opts.append(f"suppressions={SUPP}")
    return {"TSAN_OPTIONS": " ".join(opts + ["halt_on_error=0"])}


class Load:
    """Clients on their own threads until stop(): new connections and
    keep-alive ones, so that every serving thread gets some."""

    def __init__(self, e, hosts, clients=4):
        self.e, self.hosts = e, hosts
        self.done = threading.Event()
        self.got = []  # (host, status)
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        n = 0
        try:
            while not self.done.is_set():
                host = self.hosts[(i + n) % len(self.hosts)]
                if n % 2:
                    with self.e.connect() as s:
                        for _ in range(3):
                            st, _, _ = request(self.e, host, "/echo", sock=s)
                            self.got.append((host, st))
                else:
                    st, _, _ = request(self.e, host, "/echo")
                    self.got.append((host, st))
                n += 1
        except Exception as err:  # reported by stop()
            self.errors.append(repr(err))

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(30)
        assert not self.errors, self.errors
        return self.got


def test_first_requests_on_every_thread_at_once(fresh):
    # every serving thread takes its first connection at the same moment:
    # nothing a thread sets up for its first request may be shared
    e = fresh(threads=4).start(env=tsan_to_stderr())
    socks = [e.connect() for _ in range(32)]
    go = threading.Barrier(len(socks))
    got = []

    def one(s):
        go.wait()
        got.append(request(e, "codex.revelations.studio", "/echo", sock=s)[0])
        s.close()
    ts = [threading.Thread(target=one, args=(s,)) for s in socks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert got == [200] * len(socks)


def test_requests_and_queries_while_snapshots_change(fresh, tmp_path):
    log = tmp_path / "access.log"
    e = fresh(threads=3, http={"access_log": str(log)}).start(dns=True, env=tsan_to_stderr())
    load = Load(e, ["codex.revelations.studio", "api.revelations.studio", "t0.revelations.studio"])
    answers = []
    qdone = threading.Event()

    def queries():
        n = 0
        while not qdone.is_set():
            m = dns.message.make_query(f"t{n % 4}.revelations.studio", "A")
            f = dns.query.tcp if n % 3 == 0 else dns.query.udp
            answers.append(f(m, "127.0.0.1", port=e.dns_port, timeout=3).rcode())
            n += 1
    qt = threading.Thread(target=queries)
    qt.start()
    try:
        for i in range(4):
            subprocess.run([SB, "tenants", "add", f"t{i}", "-c", e.dir, "--data", e.data],
                           check=True, capture_output=True)
            e.edge.p.send_signal(signal.SIGHUP)
            e.edge.p.send_signal(signal.SIGUSR1)
            subprocess.run([SB, "reload", "-c", e.dir], check=True, capture_output=True)
        # an upstream goes down (health checks mark it, requests get 502/503)
        # and comes back on the same address
        demo = e.demos[("stripe-webhook-handler", "production")]
        port = demo.url.rsplit(":", 1)[1]
        demo.stop(sig=9)
        e.edge.wait_line(lambda l: "is down" in l, timeout=15)
        back = start_demo("stripe-webhook-handler", "production",
                          e.secret("stripe-webhook-handler-production"),
                          extra=("--listen", f"127.0.0.1:{port}"))
        e.procs.append(back)
        e.edge.wait_line(lambda l: "is up" in l, timeout=15)
        wait_for(lambda: load.got[-50:].count(("api.revelations.studio", 200)) > 0, timeout=10)
    finally:
        qdone.set()
        qt.join(30)
        got = load.stop()
    assert answers and set(answers) <= {dns.rcode.NOERROR, dns.rcode.NXDOMAIN}
    by = {}
    for host, st in got:
        by.setdefault(host, set()).add(st)
    assert by["codex.revelations.studio"] == {200}, by
    assert by["api.revelations.studio"] <= {200, 502, 503}, by
    assert 200 in by["t0.revelations.studio"], by


def test_live_changes_then_a_stop_under_load(fresh):
    # changes through the admin API (each a publish from the control
    # thread), then SIGTERM while every thread is busy: the drain, the
    # threads' exit and the last snapshot's release race with requests
    e = fresh(threads=4).start(dns=True, env=tsan_to_stderr())
    preview = "codex-preview-7.revelations.studio"
    load = Load(e, ["codex.revelations.studio", preview, "auth.revelations.studio"])

    def sb(*args):
        p = subprocess.run([SB, *args, "-c", str(e.dir)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    try:
        sb("preview", "create", "--pr", "7")
        sb("deploy", "--env", "production", "--name", "auth-worker", "--var", "X:1")
        sb("rollback")
        sb("preview", "delete", "--pr", "7")
        sb("preview", "create", "--pr", "7")
        # routed (the example declares no preview upstream: 502), not 404
        wait_for(lambda: load.got[-50:].count((preview, 502)) > 0, timeout=10,
                 what=f"{preview}: {set(s for h, s in load.got if h == preview)}")
    except BaseException:
        load.stop()
        raise
    e.edge.p.send_signal(signal.SIGTERM)
    assert e.edge.wait(30) == 0, e.edge.err[-20:]
    load.done.set()
    for t in load.threads:
        t.join(30)
    # before the stop: what each request got (after it, refused connections)
    by = {}
    for host, st in load.got:
        by.setdefault(host, set()).add(st)
    assert by["codex.revelations.studio"] == {200}, by
    assert by["auth.revelations.studio"] == {200}, by
    assert by[preview] == {404, 502}, by
