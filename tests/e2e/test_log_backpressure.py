"""A log whose reader does not keep up never holds up the edge (docs/http.md
"Logs"): the access log on stdout and the diagnostics on stderr used to be
written with blocking writes, so a pipe nobody read (a log shipper that
hangs, a paused terminal) stopped every serving thread once it was full,
and the control loop with stderr. They are now written without waiting:
what the reader does not take is queued (1 MiB per serving thread), then
dropped, counted and reported on stderr.

The edge is started here with the stream under test a pipe that the test
leaves unread for a while (edge.Proc would drain it)."""
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
import tty

import pytest

from edge import SB, SERVICES, Edge, request, wait_for
from test_live import sb

DROPPED = re.compile(r"switchboard: warning: access log: the reader is not keeping up: "
                     r"(\d+) lines dropped")
DIAG_DROPPED = re.compile(r"switchboard: warning: (\d+) diagnostic lines dropped "
                          r"\(stderr not keeping up\)")
PIPE_SIZE = 65536  # Linux's default pipe capacity
HOST = "nowhere.example"  # answered by the edge itself (no upstream): logged all the same


class Spawned:
    """`switchboard serve` of an Edge's declaration, with stdout and stderr
    pipes; stderr is read by a thread only when read_stderr."""

    def __init__(self, e, read_stderr=True, threads=2, stdout="pipe"):
        argv = [SB, "serve", "-c", str(e.dir), "--listen", "127.0.0.1:0", "--threads",
                str(threads)]
        # stdout: a pipe, a Unix stream socket (journald's) or a terminal
        child = subprocess.PIPE
        if stdout == "socket":
            self.out_sock, theirs = socket.socketpair()
            self.out_fd, child = self.out_sock.fileno(), theirs.fileno()
        elif stdout == "tty":
            self.out_fd, child = pty.openpty()
            tty.setraw(child)  # no \r added to the newlines, no flow control
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=child,
                                  stderr=subprocess.PIPE)
        if stdout == "pipe":
            self.out_fd = self.p.stdout.fileno()
        elif stdout == "socket":
            theirs.close()
        else:
            os.close(child)
        self.err = []
        self.port = None
        self.reader = None
        try:
            # the pipe is empty at the start: "listening on" always arrives
            line = self.read_err_until(lambda l: "listening on http://" in l)
            self.port = int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1])
        except BaseException:
            self.kill()
            raise
        if read_stderr:
            self.resume_stderr()

    def read_err_until(self, pred, timeout=10):
        """Read stderr lines on this thread until one matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.p.stderr], [], [], 0.1)
            if not r:
                continue
            raw = self.p.stderr.readline()
            if not raw:
                raise AssertionError(f"edge exited {self.p.wait()}: {self.err[-20:]}")
            line = raw.decode(errors="replace").rstrip("\n")
            self.err.append(line)
            if pred(line):
                return line
        raise AssertionError(f"no line matched in {timeout} s: {self.err[-20:]}")

    def resume_stderr(self):
        def drain():
            for raw in iter(self.p.stderr.readline, b""):
                self.err.append(raw.decode(errors="replace").rstrip("\n"))
        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()

    def read_stdout(self, until, timeout):
        """Read stdout lines (the access log) until until(lines) or EOF."""
        lines, buf = [], b""
        fd = self.out_fd
        deadline = time.monotonic() + timeout
        while not until(lines) and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a terminal whose other side has gone
                chunk = b""
            if not chunk:
                break
            buf += chunk
            *whole, buf = buf.split(b"\n")
            lines += whole
        return lines, buf

    def connect(self, timeout):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def dropped(self, pattern=DROPPED):
        return sum(int(m.group(1)) for l in list(self.err) if (m := pattern.search(l)))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        if hasattr(self, "out_sock"):
            self.out_sock.close()
        elif self.p.stdout is None and self.out_fd >= 0:
            os.close(self.out_fd)  # the terminal's
        self.out_fd = -1

    def check_sanitizers(self):
        bad = [l for l in self.err if "Sanitizer" in l or "runtime error" in l]
        assert not bad, "\n".join(self.err[-40:])


def load(s, conns, per_conn, path, prefix):
    """per_conn keep-alive requests on each of conns connections in
    parallel, each with its own X-Request-Id; returns the ids and the
    slowest answer's seconds. A request unanswered in 5 s fails."""
    errors, slowest = [], [0.0]

    def one(k):
        try:
            c = s.connect(timeout=5)
            for i in range(per_conn):
                t0 = time.monotonic()
                st, _, _ = request(None, HOST, path, sock=c,
                                   headers={"X-Request-Id": f"{prefix}-{k}-{i}"})
                slowest[0] = max(slowest[0], time.monotonic() - t0)
                assert st == 404, st
            c.close()
        except Exception as e:  # reported below
            errors.append(f"connection {k}: {e!r}")
    ts = [threading.Thread(target=one, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, f"requests held up by the unread log: {errors[:3]}"
    return {f"{prefix}-{k}-{i}" for k in range(conns) for i in range(per_conn)}, slowest[0]


def parse(lines, prefix):
    """Every line whole, valid JSON: the request ids of prefix, once each."""
    ids = [json.loads(l)["request_id"] for l in lines]  # a cut or mixed line fails here
    assert len(ids) == len(set(ids)), "a line written twice"
    assert all(i.startswith(prefix + "-") for i in ids), ids[:5]
    return set(ids)


@pytest.mark.parametrize("stdout", ["pipe", "socket", "tty"])
def test_an_unread_stdout_holds_up_no_request_and_the_backlog_follows(tmp_path, stdout):
    """A socket and a terminal may take part of a line: its rest goes out
    before any other thread's line, so the lines stay whole there too."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e, stdout=stdout)
    try:
        # lines of about 3.3 KB: 2,000 of them are 6.6 MB, a hundred times
        # what the pipe holds and three times what two threads queue
        path = "/" + "p" * 3000
        want, slowest = load(s, conns=8, per_conn=250, path=path, prefix="r")
        assert slowest < 2.0, f"a request took {slowest:.2f} s"
        # no more requests: the backlog goes out as the reader reads, and
        # every line not in it was reported dropped
        lines, rest = s.read_stdout(lambda ls: len(ls) + s.dropped() >= len(want), timeout=15)
        got = parse(lines, "r")
        assert rest == b"", "a line cut short"
        assert got <= want
        assert len(got) + s.dropped() == len(want), (len(got), s.dropped(), s.err[-5:])
        # far more than the pipe held while nobody read: the backlog
        assert len(got) > 2 * PIPE_SIZE // len(lines[0]) or stdout != "pipe", len(got)
        assert len(got) > 300, len(got)  # a socket's buffer is larger
        assert 0 < s.dropped() < len(want)
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(10) == 0
        s.reader.join(10)
        s.check_sanitizers()
    finally:
        s.kill()


def test_short_lines_all_arrive_once_the_reader_resumes(tmp_path):
    """Within the backlog's bound nothing is lost: the lines that did not
    fit in the pipe are written once the reader reads again, without a new
    request to push them."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e)
    try:
        want, slowest = load(s, conns=4, per_conn=250, path="/short", prefix="b")
        assert slowest < 2.0, f"a request took {slowest:.2f} s"
        lines, rest = s.read_stdout(lambda ls: len(ls) >= len(want), timeout=10)
        assert parse(lines, "b") == want
        assert rest == b"" and s.dropped() == 0
        assert len(lines) * len(lines[0]) > PIPE_SIZE  # more than the pipe could hold
    finally:
        s.kill()


def test_a_stop_with_an_unread_stdout_ends_and_counts_what_it_could_not_write(tmp_path):
    """SIGTERM while the reader is gone: the threads end (they used to sit
    in write() for good), each after a last try at its backlog, and what
    was never written is reported dropped."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e)
    try:
        want, _ = load(s, conns=4, per_conn=200, path="/" + "q" * 2000, prefix="t")
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(10) == 0
        s.reader.join(10)
        lines, rest = s.read_stdout(lambda ls: False, timeout=10)  # to EOF
        assert rest == b""
        got = parse(lines, "t")
        assert len(got) + s.dropped() == len(want), (len(got), s.dropped(), s.err[-5:])
        assert s.dropped() > 0
        assert s.err[-1] == "switchboard: info: stopped", s.err[-5:]
        s.check_sanitizers()
    finally:
        s.kill()


def test_an_unread_stderr_does_not_stall_the_control_loop(tmp_path):
    """A command upstream that prints a lot while the edge's stderr is a
    pipe nobody reads: its output is relayed by the control loop, which
    used to block in write(2) once the pipe was full, and with it the admin
    API, reloads, health checks and the relaying itself (the command then
    blocked in its own writes). Lines stderr cannot take are dropped and the
    count is reported with the next line written."""
    n = 5000
    script = (f'i=0; while [ $i -lt {n} ]; do echo "flood $i ' + "x" * 90 + '"; '
              f'i=$((i+1)); done; touch {tmp_path}/flooded.$$; exec sleep 1000')
    ups = {(svc, "preview"): ["/bin/sh", "-c", script] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, demos=False, upstreams=ups)
    s = Spawned(e, read_stderr=False)
    try:
        t0 = time.monotonic()
        sb(e, "preview", "create", "--pr", "7")
        # the commands print 1.5 MB, 25 times what the unread pipe holds
        wait_for(lambda: len(list(tmp_path.glob("flooded.*"))) == 3, timeout=20,
                 what="the commands' output taken (the control loop relays it)")
        for _ in range(5):
            t1 = time.monotonic()
            st = e.status()
            assert time.monotonic() - t1 < 1.0, "GET /v1/status held up"
            assert st
        assert time.monotonic() - t0 < 30
        # the reader comes back: the next lines say how many were lost
        s.resume_stderr()
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(15) == 0
        s.reader.join(10)
        flood = [l for l in s.err if re.search(r"preview-7\[\d+\]: flood \d+ x+$", l)]
        dropped = s.dropped(DIAG_DROPPED)
        assert dropped > 0, s.err[-10:]
        assert len(flood) < 3 * n
        # each line whole: the edge's own, or a command's after its name
        whole = re.compile(r"(switchboard: \w+: |[a-z-]+-preview-7\[\d+\]: )")
        assert all(whole.match(l) for l in s.err), [l for l in s.err if not whole.match(l)][:5]
        assert len(flood) + dropped >= 3 * n  # three previews, one per service
        s.check_sanitizers()
    finally:
        s.kill()


def test_lines_longer_than_pipe_buf_are_not_run_into_on_a_pipe(tmp_path):
    """A pipe takes a write of PIPE_BUF (4096) bytes or less whole or not at
    all, so the threads write such lines to it without taking turns; a
    longer line (a long path) may go in part when the pipe is nearly full,
    and another thread's line used to go in before its rest: two mixed
    lines. The reader here reads a little at a time as the requests come,
    so that the pipe is nearly full most of the time."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e)
    try:
        got, stop = bytearray(), threading.Event()

        def trickle():
            while not stop.is_set():
                if select.select([s.out_fd], [], [], 0.05)[0]:
                    got.extend(os.read(s.out_fd, 3000))
                    time.sleep(0.001)
        t = threading.Thread(target=trickle)
        t.start()
        try:
            # lines of about 6.3 KB, and short ones
            want = set()
            for r in range(6):
                want |= load(s, conns=8, per_conn=120, path="/" + "L" * 6000,
                             prefix=f"g-{r}")[0]
                want |= load(s, conns=4, per_conn=30, path="/s", prefix=f"g-s{r}")[0]
        finally:
            stop.set()
            t.join()
        n = got.count(b"\n")
        lines, rest = s.read_stdout(lambda ls: n + len(ls) + s.dropped() >= len(want),
                                    timeout=15)
        lines = (bytes(got) + b"\n".join(lines) + (b"\n" if lines else b"")).split(b"\n")
        assert lines.pop() == b"" and rest == b"", "a line cut short"
        mixed = [l[:60] + b"..." + l[-60:] for l in lines if not l.endswith(b"}")
                 or l.count(b'"request_id"') != 1]
        assert not mixed, f"{len(mixed)} of {len(lines)} lines mixed: {mixed[:2]}"
        ids = parse(lines, "g")
        assert ids <= want and len(ids) + s.dropped() == len(want)
        assert any(len(l) > 4096 for l in lines)
        s.check_sanitizers()
    finally:
        s.kill()
