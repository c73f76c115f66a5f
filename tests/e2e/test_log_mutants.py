"""What the non-blocking logs (docs/http.md "Logs") promise that the other
log tests (test_log_backpressure.py, test_http_edge.py) did not check: each
test here kills mutants of src/http/edge.c and src/http/proxy.c that those
let live, and names them (the mutation audit of the access log and stderr
written without waiting)."""
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from edge import SB, SERVICES, Edge, request, wait_for
from test_log_backpressure import DIAG_DROPPED, DROPPED, Spawned, load, parse


def fd_flags(pid, fd):
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError(f"no flags in /proc/{pid}/fdinfo/{fd}")


def fds_on(pid, target):
    """The edge's descriptors open on target (a path, "pipe:[inode]")."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                out.append(int(fd))
        except OSError:
            pass
    return sorted(out)


def read_lines(fd, until, timeout):
    """Lines read from fd until until(lines), EOF or timeout; and the rest."""
    lines, buf = [], b""
    deadline = time.monotonic() + timeout
    while not until(lines) and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.05)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        *whole, buf = buf.split(b"\n")
        lines += whole
    return lines, buf


def test_stdout_and_stderr_themselves_stay_blocking(tmp_path):
    """Mutant m04 (log_writer: `if (own)` negated, so O_NONBLOCK is set on
    fd 1 and fd 2 themselves): their open file description is shared with
    the shell or the supervisor's other children, which must not find
    their writes refused. The edge writes through descriptors of its own
    on the same pipes, those non-blocking."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e)
    try:
        pid = s.p.pid
        for fd in (1, 2):
            assert not fd_flags(pid, fd) & os.O_NONBLOCK, f"fd {fd} made non-blocking"
            own = [f for f in fds_on(pid, os.readlink(f"/proc/{pid}/fd/{fd}")) if f != fd]
            assert len(own) == 1, own
            assert fd_flags(pid, own[0]) & os.O_NONBLOCK
    finally:
        s.kill()


def test_regular_files_are_written_as_before(tmp_path):
    """Mutant m01 (log_writer without its regular-file case: a file log
    took the blocking fallback and its warning). A regular-file access
    log and a stderr that is a regular file are written with plain
    blocking writes, to the descriptor as opened (fd 2 itself for
    stderr), and no warning says they cannot be written without waiting."""
    log, err = tmp_path / "access.log", tmp_path / "stderr.log"
    e = Edge(tmp_path, demos=False, http={"access_log": str(log)})
    with open(err, "wb") as ef:
        p = subprocess.Popen([SB, "serve", "-c", str(e.dir), "--listen", "127.0.0.1:0",
                              "--threads", "2"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=ef)
    try:
        wait_for(lambda: "listening on http://" in err.read_text(), timeout=10,
                 what="the edge listening")
        assert fds_on(p.pid, str(err)) == [2]
        fds = fds_on(p.pid, str(log))
        assert len(fds) == 1 and not fd_flags(p.pid, fds[0]) & os.O_NONBLOCK
        assert "without waiting" not in err.read_text(), err.read_text()
    finally:
        p.kill()
        p.wait()


def test_a_fifo_access_log_never_waits_and_stays_so_once_reopened(tmp_path):
    """Mutants m05 (a path's descriptor not made non-blocking: the FIFO's
    writes blocked) and m16 (the reopen of SIGHUP opened the FIFO without
    O_NONBLOCK). `access_log = "/path/to/fifo"` (a log shipper's FIFO):
    an unread FIFO holds up no request, before and after a reopen, and
    every request is in the log or in a drop count."""
    fifo = tmp_path / "access.fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the edge's open waits for a reader
    e = Edge(tmp_path, demos=False, http={"access_log": str(fifo)})
    s = Spawned(e)
    try:
        for phase in ("f1", "f2"):
            if phase == "f2":
                s.p.send_signal(signal.SIGHUP)
                wait_for(lambda: any("reopened access log" in l for l in s.err), timeout=10,
                         what="the access log reopened")
            before = s.dropped()
            # 800 lines of 3.3 KB, forty times what the FIFO holds
            want, slowest = load(s, conns=8, per_conn=100, path="/" + "f" * 3000, prefix=phase)
            assert slowest < 2.0, f"a request took {slowest:.2f} s"
            lines, rest = read_lines(
                rfd, lambda ls: len(ls) + s.dropped() - before >= len(want), timeout=10)
            assert rest == b""
            got = parse(lines, phase)
            assert len(got) + s.dropped() - before == len(want)
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(10) == 0
        s.check_sanitizers()
    finally:
        s.kill()
        os.close(rfd)


def test_drops_are_reported_during_a_long_stall_at_most_once_a_second(tmp_path):
    """Mutants m30 (log_retry_arm restarting a running timer, which every
    dropped request then pushed back: no report while requests come) and
    m36 (log_report without its once-a-second limit: a line every 20 ms
    per thread). The reader of stdout stops for good under a steady load:
    the drops are reported while it lasts, once a second per thread."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e)
    stop, errors = threading.Event(), []

    def steady(k):
        try:
            c = s.connect(timeout=5)
            i = 0
            while not stop.is_set():
                st, _, _ = load_one(c, f"d-{k}-{i}")
                assert st == 404, st
                i += 1
            c.close()
        except Exception as ex:  # reported below
            errors.append(repr(ex))
    ts = [threading.Thread(target=steady, args=(k,)) for k in range(4)]
    try:
        for t in ts:
            t.start()
        wait_for(lambda: any(DROPPED.search(l) for l in s.err), timeout=5,
                 what="a drop reported while the requests go on")
        t1, n1 = time.monotonic(), len(s.err)
        time.sleep(1.5)  # the window whose reports are counted (load on)
        reports = [l for l in s.err[n1:] if DROPPED.search(l)]
        span = time.monotonic() - t1
        stop.set()
        for t in ts:
            t.join(10)
        assert not errors, errors[:3]
        # two threads, one report a second each at most
        assert len(reports) <= 2 * (span + 1), reports
    finally:
        stop.set()
        s.kill()


def load_one(c, rid):
    return request(None, "nowhere.example", "/" + "d" * 3000, sock=c,
                   headers={"X-Request-Id": rid})


def ctx_switches(pid):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def test_the_retry_timer_stops_once_the_backlog_is_written(tmp_path):
    """Mutant m38 (on_log_retry never stopping its timer): once the backlog
    is written and its drops reported, the serving threads sleep again
    instead of waking every 20 ms for good."""
    e = Edge(tmp_path, demos=False)
    s = Spawned(e)
    try:
        want, _ = load(s, conns=4, per_conn=200, path="/" + "z" * 3000, prefix="z")
        lines, _ = s.read_stdout(lambda ls: len(ls) + s.dropped() >= len(want), timeout=10)
        assert len(parse(lines, "z")) + s.dropped() == len(want)
        time.sleep(0.2)  # the last timers' last tick

        def idle_rate():
            c0, t0 = ctx_switches(s.p.pid), time.monotonic()
            time.sleep(1.0)
            return (ctx_switches(s.p.pid) - c0) / (time.monotonic() - t0)
        # two threads woken every 20 ms are 100 a second; the control
        # loop's own timers a few: the lowest of three, against noise
        rate = min(idle_rate() for _ in range(3))
        assert rate < 40, f"{rate:.0f} wake-ups a second while idle"
    finally:
        s.kill()


class ErrSpawn:
    """`switchboard serve` with stderr a terminal or a Unix stream socket
    (journald's), read by the test; stdout to /dev/null."""

    def __init__(self, e, kind):
        if kind == "socket":
            self.sock, theirs = socket.socketpair()
            self.fd, child = self.sock.fileno(), theirs.fileno()
        else:
            import pty
            import tty
            self.sock = None
            self.fd, child = pty.openpty()
            tty.setraw(child)  # no \r added, no flow control
        self.p = subprocess.Popen([SB, "serve", "-c", str(e.dir), "--listen", "127.0.0.1:0",
                                   "--threads", "2"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=child)
        if self.sock:
            theirs.close()
        else:
            os.close(child)
        self.lines, self.buf = [], b""
        self.reader = None
        self.read_until(lambda: any("listening on http://" in l for l in self.lines), 10)

    def read_some(self, timeout):
        if not select.select([self.fd], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # a terminal whose other side has gone
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        *whole, self.buf = self.buf.split(b"\n")
        self.lines += [w.decode(errors="replace") for w in whole]
        return True

    def read_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred() and time.monotonic() < deadline:
            if not self.read_some(0.05):
                break
        assert pred(), self.lines[-10:]

    def resume(self):
        def drain():
            while self.read_some(0.05):
                pass
        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        if self.reader:
            self.reader.join(5)
        if self.sock:
            self.sock.close()
        else:
            os.close(self.fd)


def in_final_wait(pid):
    """Is the edge's main thread in poll(2) with no thread of it left in
    epoll_wait (x86-64 syscalls 7; 232, 281, 441), as only in its last wait
    for stderr, its loops ended?"""
    def nr(t):
        with open(f"/proc/{pid}/task/{t}/syscall") as f:
            return f.read().split()[0]
    tasks = os.listdir(f"/proc/{pid}/task")
    return nr(pid) == "7" and not any(nr(t) in ("232", "281", "441") for t in tasks)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="reads x86-64 syscall numbers")
def test_lines_dropped_at_the_stop_are_counted_before_the_exit(tmp_path):
    """The lines of a stop meet a terminal nobody reads and are dropped;
    with no line after them, their count went unsaid when the edge exited.
    Now the edge, its threads ended, waits (up to a second) for the reader
    and says the count last."""
    e = flood_edge(tmp_path, 3000)
    s = ErrSpawn(e, "tty")
    try:
        start_flood(e, tmp_path)
        s.p.send_signal(signal.SIGTERM)
        wait_for(lambda: in_final_wait(s.p.pid), timeout=15, errors=(OSError,),
                 what="the edge stopped, waiting to say what it dropped")
        s.resume()
        assert s.p.wait(15) == 0
        s.reader.join(10)
        assert s.lines and DIAG_DROPPED.search(s.lines[-1]), s.lines[-3:]
        assert int(DIAG_DROPPED.search(s.lines[-1]).group(1)) > 0
        assert not any("switchboard: info: stopped" in l for l in s.lines), s.lines[-3:]
    finally:
        s.kill()


def flood_edge(tmp_path, n):
    script = (f'i=0; while [ $i -lt {n} ]; do echo "flood $i ' + "x" * 90 + '"; '
              f'i=$((i+1)); done; touch {tmp_path}/flooded.$$; exec sleep 1000')
    ups = {(svc, "preview"): ["/bin/sh", "-c", script] for svc, _, _ in SERVICES}
    return Edge(tmp_path, demos=False, upstreams=ups)


def start_flood(e, tmp_path, what="the commands' output taken"):
    """Start flood_edge's commands (a preview) and wait until they have
    written all their lines."""
    from test_live import sb
    sb(e, "preview", "create", "--pr", "7")
    wait_for(lambda: len(list(tmp_path.glob("flooded.*"))) == 3, timeout=20, what=what)


def test_an_unread_socket_stderr_does_not_stall_the_control_loop(tmp_path):
    """Mutant m08 (diag_send: send() on a socket stderr without
    MSG_DONTWAIT: the control loop blocked once journald's socket was
    full). Commands flood a stderr socket nobody reads; the admin API
    answers, and the lines lost are counted once the reader is back."""
    n = 5000
    e = flood_edge(tmp_path, n)
    s = ErrSpawn(e, "socket")
    try:
        start_flood(e, tmp_path, "the commands' output taken (the control loop relays it)")
        t1 = time.monotonic()
        assert e.status()
        assert time.monotonic() - t1 < 1.0, "GET /v1/status held up"
        s.resume()
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(15) == 0
        s.reader.join(10)
        dropped = sum(int(m.group(1)) for l in s.lines if (m := DIAG_DROPPED.search(l)))
        flood = [l for l in s.lines if re.search(r"preview-7\[\d+\]: flood \d+ x{90}$", l)]
        assert dropped > 0 and len(flood) + dropped >= 3 * n, (len(flood), dropped)
    finally:
        s.kill()


def test_stderr_lines_on_a_terminal_stay_whole(tmp_path):
    """Mutants m09 (a line cut short on stderr not ended before the next:
    two lines run together) and m13 (no wait for the rest of a line a
    terminal took in part: a cut line at every full buffer). A terminal
    takes part of a write when its buffer is nearly full; the reader here
    reads all the time, so the rest of a line always follows within the
    50 ms the edge waits for it: every line is whole, each an edge's line
    or a whole line of a command's."""
    n = 4000
    e = flood_edge(tmp_path, n)
    s = ErrSpawn(e, "tty")
    try:
        s.resume()
        start_flood(e, tmp_path)
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(15) == 0
        s.reader.join(10)
        whole = re.compile(r"switchboard: \w+: [^\n]*|[a-z-]+-preview-7\[\d+\]: (flood \d+ x{90}"
                           r"|[^f].*)")
        bad = [l for l in s.lines if not whole.fullmatch(l) or l.count("switchboard:") > 1
               or len(re.findall(r"flood \d+ x", l)) > 1]
        assert not bad, bad[:3]
        flood = [l for l in s.lines if re.search(r"flood \d+ x", l)]
        assert len(flood) > n  # most of them, not all refused
    finally:
        s.kill()


@pytest.mark.parametrize("attempt", range(3))  # a cut is likely, not certain, each time
def test_a_line_cut_on_a_stalled_terminal_is_ended_before_the_next(tmp_path, attempt):
    """Mutant m09 (sb_edge_diag_write without the newline that ends a line
    cut short: the next line ran into it). A terminal nobody reads takes
    part of the line that fills it; the rest is lost once the 50 ms wait
    is over. When the reader is back, the next line starts a line of its
    own: no line holds two lines' starts."""
    e = flood_edge(tmp_path, 3000)
    s = ErrSpawn(e, "tty")
    try:
        start_flood(e, tmp_path)
        s.resume()
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(15) == 0
        s.reader.join(10)
        starts = re.compile(r"switchboard: \w+: |[a-z-]+-preview-7\[\d+\]: ")
        mixed = [l for l in s.lines if len(starts.findall(l)) > 1]
        assert not mixed, mixed[:3]
        assert any(DIAG_DROPPED.search(l) for l in s.lines), s.lines[-5:]
    finally:
        s.kill()
