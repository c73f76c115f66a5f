"""The open-file limit and the listeners other than HTTP's: DNS over TCP
(on each serving thread's loop) and the admin API (its Unix socket and its
TCP listener, on the control thread's loop). libuv's accept loop calls back
with EMFILE and tries again at once for as long as it lasts: the thread
spun at 100% CPU inside it, serving nothing else of its loop (the HTTP
connections of the serving thread, the control thread's signals). Each
listener now stops accepting for 100 ms at a time, as the HTTP one does
(docs/configuration.md, "The open-file limit")."""
import os
import socket
import threading
import time

import dns.exception
import dns.message
import dns.query
import pytest

from edge import read_response, request, wait_for
from test_operator_review import cpu_ticks, held_answered

HOST = "codex.revelations.studio"
LIMIT = ("sh", "-c", 'ulimit -n 64; exec "$@"', "sh")
HELD = {"header_timeout_ms": 60000}  # held connections outlive the burst


def thread_ticks(pid, tid):
    """User and system clock ticks one thread of pid has used."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def exhaust(e):
    """Hold client connections until the edge has no descriptor left;
    returns them. More than the limit at once are not enough: libuv closes
    those that wait when its accept fails while a health check holds a
    socket for a moment, and then the edge has a few to spare."""
    held = []
    deadline = time.monotonic() + 20
    while open_fds(e.edge.p.pid) < 64:
        assert time.monotonic() < deadline, f"the edge holds {open_fds(e.edge.p.pid)} files"
        held += [e.connect() for _ in range(8)]
        time.sleep(0.1)
    return held


def burst(e, connect, what, ticks, extra=None, seconds=15):
    """Connections made and closed at once by 4 threads (and by 2 more
    with extra) until the listener fails to accept (the edge says it cannot
    accept what) or its thread spins (ticks(): its CPU ticks), for at most
    seconds. libuv keeps a descriptor in reserve for each loop: while it
    has it, it accepts what waits and closes it at once, calling back with
    nothing; it loses it when another thread takes the descriptor it frees
    for a moment, which the burst makes happen. Returns when it began."""
    stop = threading.Event()

    def run(fn):
        while not stop.is_set():
            try:
                fn().close()
            except OSError:
                pass
    threads = [threading.Thread(target=run, args=(connect,)) for _ in range(4)]
    if extra:
        threads += [threading.Thread(target=run, args=(extra,)) for _ in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        last = ticks()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
            now = ticks()
            if now - last > 40 or any(f"cannot accept {what}" in l for l in e.edge.err):
                break
            last = now
    finally:
        stop.set()
        for t in threads:
            t.join()
    return t0


def said_at_a_bounded_rate(e, what, listeners, elapsed):
    lines = [l for l in e.edge.err if f"cannot accept {what}" in l]
    assert lines, e.edge.err[-10:]
    assert "too many open files (the open-file limit, ulimit -n, is 64)" in lines[0], lines[0]
    assert len(lines) <= listeners * (elapsed + 1), lines


def admin_status(e, tcp_port=None):
    if tcp_port is None:
        return e.status()
    token = (e.data / "admin.token").read_text().strip()
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as s:
        s.sendall(f"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  "Connection: close\r\n\r\n".encode())
        status, _, body, _ = read_response(s)
    assert status == 200, body
    return body


def test_dns_over_tcp_at_the_open_file_limit_does_not_spin_its_thread(fresh):
    # two serving threads, each with its DNS listener in the SO_REUSEPORT
    # group: a burst of DNS TCP connections at the limit spun both (200
    # ticks a second), their HTTP connections were never answered, and
    # SIGTERM went unheard until the descriptors came back
    e = fresh(threads=2, http=HELD).start(dns=True, prefix=LIMIT)
    pid = e.edge.p.pid
    held = exhaust(e)
    t0 = burst(e, lambda: socket.create_connection(("127.0.0.1", e.dns_port), timeout=1),
               "DNS over TCP connections on thread", lambda: cpu_ticks(pid))
    before = cpu_ticks(pid)
    time.sleep(1)
    assert cpu_ticks(pid) - before < 40, "a serving thread spins at the open-file limit"
    # the HTTP connections of the same threads are served, and DNS over UDP
    assert held_answered(e, held)
    m = dns.message.make_query(HOST, "A")
    assert dns.query.udp(m, "127.0.0.1", port=e.dns_port, timeout=3).answer
    said_at_a_bounded_rate(e, "DNS over TCP connections on thread", 2,
                           time.monotonic() - t0)
    # descriptors back: DNS over TCP answers again, and the admin API
    for s in held:
        s.close()
    wait_for(lambda: dns.query.tcp(m, "127.0.0.1", port=e.dns_port, timeout=3).answer,
             timeout=10, errors=(OSError, EOFError, dns.exception.Timeout),
             what="a DNS TCP query answered")
    wait_for(lambda: e.status(), timeout=10, errors=(OSError, EOFError, AssertionError),
             what="the admin API's status")
    e.stop()  # SIGTERM, exit 0 (it fails when the edge does not stop in 10 s)


@pytest.mark.parametrize("listener", ["unix", "tcp"])
def test_the_admin_api_at_the_open_file_limit_does_not_spin_the_control_thread(fresh, listener):
    # a burst of admin connections at the limit, while HTTP clients come
    # too (they take the descriptor libuv keeps in reserve, without which
    # it calls back with EMFILE): the control thread spun, and with it the
    # signals, the health checks and the store's poll
    e = fresh(threads=1, http=HELD)
    if listener == "tcp":
        p = e.dir / "switchboard.toml"
        p.write_text(p.read_text().replace(
            'data_dir = "../data"', 'data_dir = "../data"\n\n[listen]\nadmin = "127.0.0.1:0"',
            1))
    e.start(prefix=LIMIT)
    pid = e.edge.p.pid
    port = None
    if listener == "tcp":
        line = next(l for l in e.edge.err if "admin API on http://" in l)
        port = int(line.rsplit(":", 1)[1])

    def connect():
        if port is not None:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        try:
            s.connect(str(e.data / "admin.sock"))
        except OSError:
            s.close()
            raise
        return s
    held = exhaust(e)
    t0 = burst(e, connect, "admin API connections on", lambda: thread_ticks(pid, pid),
               extra=lambda: socket.create_connection(("127.0.0.1", e.port), timeout=1))
    before = thread_ticks(pid, pid)  # the control thread is the main one
    time.sleep(1)
    assert thread_ticks(pid, pid) - before < 40, "the control thread spins at the limit"
    assert held_answered(e, held)
    where = f"127.0.0.1:{port}" if port else "admin.sock"
    said_at_a_bounded_rate(e, "admin API connections on", 1, time.monotonic() - t0)
    assert any(where in l for l in e.edge.err if "cannot accept admin API" in l), \
        e.edge.err[-10:]
    # descriptors back: answered on the listener that paused (its socket
    # file still there), and on the other
    for s in held:
        s.close()
    wait_for(lambda: admin_status(e, port), timeout=10,
             errors=(OSError, EOFError, AssertionError), what="the admin API's status")
    e.status()
    e.stop()  # SIGTERM, exit 0 (it fails when the edge does not stop in 10 s)


def test_upstream_connects_failed_for_want_of_a_descriptor_are_said_once_a_second(fresh):
    # at the limit, every request that needs a new upstream connection gets
    # a 502, and each was a line on stderr: a flood as fast as clients ask
    e = fresh(threads=1, http=HELD).start(prefix=LIMIT)
    held = iter(exhaust(e))
    said = "the upstream failed: cannot connect: too many open files"

    def fail_one():
        """A request on the next held connection that gets a 502."""
        for s in held:
            s.settimeout(10)
            try:
                if request(e, HOST, "/echo", sock=s)[0] == 502:
                    return
            except (EOFError, ConnectionResetError):
                pass
        raise AssertionError("no request failed")
    t0 = time.monotonic()
    for _ in range(12):
        fail_one()
    elapsed = time.monotonic() - t0
    lines = wait_for(lambda: [l for l in e.edge.err if said in l], what="a failure said")
    time.sleep(0.2)  # the edge's stderr read
    lines = [l for l in e.edge.err if said in l]
    assert len(lines) <= elapsed + 1, lines
    assert lines[0].endswith("; said at most once a second: 0 more such failure(s) since the "
                             "last such warning"), lines[0]
    # the next one, a second later, says how many were not
    time.sleep(1.1)
    fail_one()
    last = wait_for(lambda: [l for l in e.edge.err if said in l][len(lines):],
                    what="the next failure said")[-1]
    assert int(last.rsplit(": ", 1)[1].split()[0]) == 12 - len(lines), last
