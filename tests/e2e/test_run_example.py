"""`make run`'s script, scripts/run-example, stopped by a signal.

The script serves the example on its fixed ports (8080, 5353, 9101-9122),
which a test may not take on a shared machine: it runs here in a network
namespace of its own (`unshare -rn`), where those ports are free and private.
It runs from a copy of the tree in a temp dir, so that the example's state
(`.switchboard/`) in the checkout is not touched.
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

from edge import DEMO, ROOT, SB, wait_for

UNSHARE = shutil.which("unshare")

# Bring the namespace's loopback up without iproute2: SIOCSIFFLAGS on "lo".
LO_UP = """
import fcntl, socket, struct
s = socket.socket()
ifr = struct.pack("16sH", b"lo", 0)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP
"""


def namespace_works():
    if not UNSHARE:
        return False
    p = subprocess.run([UNSHARE, "-rn", "/usr/bin/python3", "-c", LO_UP],
                       capture_output=True)
    return p.returncode == 0


pytestmark = pytest.mark.skipif(not namespace_works(),
                                reason="no network namespace (unshare -rn) here")


def descendants(pid):
    """Pids of every living process under pid, with their command names."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if rest[0] != "Z":
            children.setdefault(int(rest[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid, comm):
    """pid still runs the process it was (not a zombie, not reused)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and \
        stat.split("(", 1)[1].rsplit(")", 1)[0] == comm


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def default_signals():
    """In the child: SIGINT, SIGQUIT and SIGHUP as a terminal's shell leaves
    them. A shell runs a command it puts in the background (`.ci/run &`)
    with SIGINT and SIGQUIT ignored, nohup ignores SIGHUP, children inherit
    that, and a non-interactive shell cannot trap a signal ignored when it
    started: the script would not see the signal it is sent."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.fixture
def tree(tmp_path):
    """A copy of what the script needs: itself, the example, and build/ with
    the binaries under test."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run-example", tmp_path / "scripts")
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns(".switchboard"))
    (tmp_path / "build").mkdir()
    os.symlink(SB, tmp_path / "build" / "switchboard")
    os.symlink(DEMO, tmp_path / "build" / "demo-service")
    return tmp_path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_script_stops_the_edge_and_every_service(tree, sig):
    argv = [UNSHARE, "-rn", "/bin/sh", "-c",
            f'/usr/bin/python3 -c "$1" && exec /bin/sh {tree}/scripts/run-example',
            "sh", LO_UP]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=default_signals)
    try:
        # the demo services answered the script's readiness check before it
        # started the edge, and the edge says when it listens
        err = b""
        deadline = time.monotonic() + 20
        while b"listening on http://127.0.0.1:8080" not in err:
            line = p.stderr.readline()
            assert line and time.monotonic() < deadline, \
                f"the example did not start: {err.decode(errors='replace')}"
            err += line
        # a preview, as the script suggests: the edge starts its services
        decl = tree / "examples" / "revelations"
        subprocess.run([SB, "preview", "create", "-c", decl, "--pr", "123"], check=True,
                       capture_output=True, timeout=30)
        wait_for(lambda: [comm_of(pid) for pid in descendants(p.pid)].count("demo-service")
                 == 9, 10, "the preview's three demo services")
        procs = {pid: comm_of(pid) for pid in descendants(p.pid)}
        names = sorted(c for c in procs.values() if c)
        assert "switchboard" in names, names
        os.kill(p.pid, sig)
        rc = p.wait(timeout=15)
        # the edge drained and exited 0 on the SIGTERM the script sent it
        assert rc == 0, (rc, err.decode(errors="replace"))
        wait_for(lambda: not [pid for pid, c in procs.items() if alive(pid, c)], 5,
                 "every process of the example gone")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    assert not (tree / "examples" / "revelations" / ".switchboard" / "admin.sock").exists()
