"""Resources of a long-running edge do not grow with what it has done.

A soak (reloads, failed reloads, tenant changes, previews, deploys, zone
transfers, kept-alive, aborted, malformed and upgraded connections) left the
edge's descriptors, threads and children where they started; these tests
keep them there, quickly. The last two check that the upstream registry lets
go of the addresses no configuration names any more (src/http/edge.c,
upstreams_sweep): each one ever named used to stay for the process's life.
"""
import os
import signal
import socket

import edge
from edge import ROOT, read_until_close, request, wait_for

# memory is measured on the optimized build: a sanitizer's allocator keeps,
# pads and reuses blocks in its own way, which hides a few hundred KB
RELEASE = os.environ.get("SB_RELEASE_BIN", str(ROOT / "build" / "switchboard"))


def fds(pid):
    return sorted(os.readlink(f"/proc/{pid}/fd/{f}").split(":[")[0]
                  for f in os.listdir(f"/proc/{pid}/fd") if os.path.exists(f"/proc/{pid}/fd/{f}"))


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def reload(e, text=None):
    """Replace the declaration atomically (a reload must never read a file
    half written) and reload; returns once the new generation serves."""
    toml = e.dir / "switchboard.toml"
    if text is not None:
        tmp = toml.with_name("switchboard.toml.new")
        tmp.write_text(text)
        os.replace(tmp, toml)
    g = e.status()["generation"]
    os.kill(e.edge.p.pid, signal.SIGHUP)
    wait_for(lambda: e.status()["generation"] > g, what="reload")


def pooled(e):
    """Established connections from the edge to the demo services."""
    ports = {d.port for d in e.demos.values()}
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            n += int(x[2].split(":")[1], 16) in ports and int(x[3], 16) == 1
    return n


def admin_conns(pid):
    """The edge's accepted connections on its admin socket (status() opens
    one, and the edge closes its side just after the answer)."""
    mine = {int(os.readlink(f"/proc/{pid}/fd/{f}")[8:-1]) for f in os.listdir(f"/proc/{pid}/fd")
            if os.path.exists(f"/proc/{pid}/fd/{f}")
            and os.readlink(f"/proc/{pid}/fd/{f}").startswith("socket:[")}
    with open(f"/proc/{pid}/net/unix") as f:
        rows = [l.split() for l in f.readlines()[1:]]
    # a listener has __SO_ACCEPTCON (0x10000) in its flags
    return sum(1 for x in rows if len(x) > 7 and int(x[6]) in mine
               and x[7].endswith("admin.sock") and not int(x[3], 16) & 0x10000)


def quiet(e):
    """No client connection open, no upstream connection pooled, none on
    the admin socket: what is left are the edge's own descriptors."""
    wait_for(lambda: e.status()["connections"] == 0 and pooled(e) == 0, timeout=10,
             what="connections closed and the upstream pool drained")
    wait_for(lambda: admin_conns(e.edge.p.pid) == 0, what="the admin connection closed")


def test_fds_threads_children_stable_across_reloads_and_connections(fresh):
    e = fresh(http={"access_log": "off", "header_timeout_ms": 300, "health_interval_ms": 0,
                    "upstream_idle_ms": 200}).start(dns=True)
    pid = e.edge.p.pid
    toml = e.dir / "switchboard.toml"
    base = toml.read_text()
    host = "codex.revelations.studio"
    reload(e)
    assert request(e, host, "/health")[0] == 200
    quiet(e)
    n0, t0 = fds(pid), threads(pid)
    for i in range(50):
        reload(e, base + f"\n# soak {i}\n")
        if i % 10 == 0:
            # a declaration that does not load is refused, the old one serves
            refused = sum("reload failed" in l for l in e.edge.err)
            bad = toml.with_name("switchboard.toml.new")
            bad.write_text(base + "\n[[zone\n")
            os.replace(bad, toml)
            os.kill(pid, signal.SIGHUP)
            wait_for(lambda: sum("reload failed" in l for l in e.edge.err) > refused,
                     what="refusal")
            # and a client too slow to send its head gets the header timeout
            s = e.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: co")
            assert read_until_close(s).startswith(b"HTTP/1.1 408")
        # kept-alive, upgraded, cut-off and malformed connections
        s = e.connect()
        for _ in range(3):
            assert request(e, host, "/echo", sock=s)[0] == 200
        s.close()
        s = e.connect()
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.close()
        s = e.connect()
        s.sendall(b"GET /big?bytes=10000000 HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        s.recv(10)
        s.close()
        s = e.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert read_until_close(s).startswith(b"HTTP/1.1 400")
        u = socket.create_connection(("127.0.0.1", e.dns_port))
        u.sendall(b"\x00\x40abc")  # a DNS message cut short
        u.close()
    reload(e, base)
    assert threads(pid) == t0
    quiet(e)
    # the descriptors of the start, one for one (DNS connections close on
    # their own: waited for)
    try:
        wait_for(lambda: fds(pid) == n0, timeout=5, what="fds back to the start's")
    except AssertionError:
        now = fds(pid)
        extra = [f for f in set(now) if now.count(f) > n0.count(f)]
        gone = [f for f in set(n0) if n0.count(f) > now.count(f)]
        raise AssertionError(f"fds not back to the start's: more {extra}, fewer {gone}; "
                             f"{open(f'/proc/{pid}/net/tcp').read()}")


def test_upstreams_no_longer_named_are_let_go(fresh):
    # the registry holds the upstreams of the configuration served, and an
    # older one's while a connection to it lives: 40 reloads to 40 new URLs
    # leave the count where it started
    e = fresh(http={"access_log": "off", "health_interval_ms": 0}).start()
    base = (e.dir / "switchboard.toml").read_text()
    url = e.demos[("codex-web", "production")].url
    n0 = e.status()["upstreams"]
    assert n0 >= 6  # production and staging of three services, and previews
    # a pooled connection to the first keeps it until it is closed
    assert request(e, "codex.revelations.studio", "/health")[0] == 200
    for i in range(40):
        reload(e, base.replace(url, f"http://127.0.0.1:{2000 + i}"))
    reload(e, base)
    wait_for(lambda: e.status()["upstreams"] == n0, what=f"upstreams back to {n0}")


def test_upstream_registry_does_not_grow_with_distinct_urls(fresh, monkeypatch):
    """Moving a deployment to a new upstream URL (a reload, or a deploy
    --upstream) must not cost memory that is never returned: after the
    same number of reloads, a new URL each time grows the edge no more
    than two URLs alternating (each URL ever named used to stay registered,
    about 0.45 KB each)."""
    monkeypatch.setattr(edge, "SB", RELEASE)
    e = fresh(http={"access_log": "off", "health_interval_ms": 0}).start()
    pid = e.edge.p.pid
    base = (e.dir / "switchboard.toml").read_text()
    url = e.demos[("codex-web", "production")].url
    assert base.count(url) == 1

    def to(port):
        reload(e, base.replace(url, f"http://127.0.0.1:{port}"))

    n = 1200
    for i in range(300):  # warm-up: allocator and SQLite caches settle
        to(1000 + i % 2)
    r0 = rss_kb(pid)
    for i in range(n):
        to(1000 + i % 2)
    r1 = rss_kb(pid)
    for i in range(n):
        to(2000 + i)
    r2 = rss_kb(pid)
    same, distinct = r1 - r0, r2 - r1
    assert distinct <= max(same, 0) + 256, \
        f"{n} reloads: {same} KB with 2 URLs, {distinct} KB with {n} distinct URLs"
