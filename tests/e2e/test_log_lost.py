"""An access-log line a failed write loses (disk full, a file-size limit, a
pipe whose reader is gone) is counted and reported on stderr, as nginx
alerts when its log write fails: `switchboard: error: access log: write
failed (REASON): N lines lost` (docs/http.md "Logs"). Such lines used to go
without a word. Every request is answered all the same, and each one's line
is either in the log or in such a count."""
import re
import resource
import signal

import pytest

from edge import Edge, request, wait_for
from test_log_backpressure import HOST, Spawned

LOST = re.compile(r"switchboard: error: access log: write failed \(([^)]*)\): (\d+) lines lost")


def lost(err, reason):
    found = [(m.group(1), int(m.group(2))) for l in list(err) if (m := LOST.search(l))]
    assert all(r == reason for r, _ in found), found
    return sum(n for _, n in found)


def answer(port_of, n, prefix):
    for i in range(n):
        st, _, _ = request(port_of, HOST, "/", headers={"X-Request-Id": f"{prefix}-{i}"})
        assert st == 404, st


@pytest.mark.parametrize("threads", [1, 2])
def test_a_log_on_a_full_device_counts_every_line_lost(tmp_path, threads):
    # /dev/full, a character device, is written without waiting
    # (SB_LOG_NONBLOCK): every write fails with ENOSPC
    e = Edge(tmp_path, http={"access_log": "/dev/full"}, threads=threads, demos=False).start()
    try:
        answer(e, 40, "full")
        wait_for(lambda: lost(e.edge.err, "No space left on device") >= 40,
                 what=f"40 lines reported lost: {e.edge.err[-5:]}")
        assert lost(e.edge.err, "No space left on device") == 40
    finally:
        e.stop()


def test_a_stdout_whose_reader_is_gone_counts_every_line_lost(tmp_path):
    # a pipe (SB_LOG_PIPE) whose read end is closed: EPIPE (SIGPIPE is
    # ignored), and the edge goes on serving
    e = Edge(tmp_path, demos=False)
    s = Spawned(e, threads=2)
    try:
        s.p.stdout.close()
        s.out_fd = -1
        for i in range(30):
            c = s.connect(timeout=5)
            st, _, _ = request(None, HOST, "/", sock=c, headers={"X-Request-Id": f"gone-{i}"})
            assert st == 404, st
            c.close()
        wait_for(lambda: lost(s.err, "Broken pipe") >= 30, what=f"30 lines reported lost: "
                 f"{s.err[-5:]}")
        assert lost(s.err, "Broken pipe") == 30
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(10) == 0
        s.reader.join(10)
        assert lost(s.err, "Broken pipe") == 30
        s.check_sanitizers()
    finally:
        s.kill()


def test_a_file_at_its_size_limit_counts_lines_lost_and_takes_them_again(tmp_path):
    # a regular file is written with blocking writes (SB_LOG_FILE); a
    # file-size limit (ulimit -f) makes a write past it fail with EFBIG,
    # which the edge ignores the signal of: it must not be killed by it
    log = tmp_path / "access.log"
    e = Edge(tmp_path, http={"access_log": str(log)}, threads=2, demos=False).start()
    try:
        answer(e, 5, "before")
        wait_for(lambda: log.read_text().count("\n") == 5, what="5 lines in the file")
        size = log.stat().st_size
        # room for part of one line: that line is cut, and counted lost too
        # (the soft limit: lifted again below, which the hard one could not be)
        inf = resource.RLIM_INFINITY
        resource.prlimit(e.edge.p.pid, resource.RLIMIT_FSIZE, (size + 100, inf))
        answer(e, 20, "limited")
        wait_for(lambda: lost(e.edge.err, "File too large") >= 20,
                 what=f"20 lines reported lost: {e.edge.err[-5:]}")
        assert lost(e.edge.err, "File too large") == 20
        text = log.read_bytes()
        assert len(text) == size + 100, len(text)
        assert b"limited-" in text[size:]  # the cut line's start
        # the limit lifted, the lines of new requests are written again
        resource.prlimit(e.edge.p.pid, resource.RLIMIT_FSIZE, (inf, inf))
        answer(e, 5, "after")
        wait_for(lambda: log.read_text().count('"request_id":"after-') == 5,
                 what="the lines after the limit")
        assert lost(e.edge.err, "File too large") == 20
    finally:
        e.stop()
