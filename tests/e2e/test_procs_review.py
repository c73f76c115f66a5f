"""Upstreams started by command, as a service run under the edge sees them:
what it inherits, how it is stopped (with the edge too, however the edge
ends), and what becomes of its output.

Each command carries a mark (a path in the test's directory) in its
command line, so the processes of a test are found by it, and each
process group the edge started is found by its leader's pid (the "started
pid N" of the log)."""
import os
import re
import signal
import subprocess
import time

from edge import DEMO, SERVICES, Edge, wait_for
from test_live import ZONE, sb, wait_healthy


def marked(mark):
    """Pids of the processes whose command line holds mark."""
    out = subprocess.run(["pgrep", "-f", str(mark)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def in_groups(pgids):
    """Processes (pid, pgid, stat, args) of the process groups pgids, but
    zombies whose parent is gone (init reaps them, in its own time: they
    run nothing and hold no port)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True,
                         text=True).stdout
    rows = [l.split(None, 3) for l in out.splitlines()]
    return [r for r in rows if len(r) >= 3 and int(r[1]) in pgids and not r[2].startswith("Z")]


def started_pids(e):
    return {int(m.group(1)) for l in e.edge.err
            if (m := re.search(r"preview-\d+: started pid (\d+)", l))}


def stubborn_edge(tmp_path, mark):
    """An edge whose preview commands are shells that ignore SIGTERM, with a
    demo service (which does not) and a background job that ignores it
    too: only SIGKILL ends the whole group."""
    script = (f'trap "" TERM; "$0" --name codex-web --env preview --unhealthy-file {mark} & '
              f'(exec sleep 1000) & while :; do sleep 0.2; done')
    ups = {(svc, "preview"): ["/bin/sh", "-c", script, DEMO] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    e.start()
    sb(e, "preview", "create", "--pr", "5")
    wait_healthy(e, f"codex-preview-5.{ZONE}")
    wait_for(lambda: len(started_pids(e)) == 3, what="three processes started")
    return e


def test_a_killed_edge_leaves_no_process_of_a_command_group(tmp_path):
    """An edge killed with SIGKILL cannot stop its commands. Only the
    command's own process used to be told (SIGTERM from the kernel): a
    command ignoring it, and whatever it ran in the background, lived on
    forever, holding its port. Now the whole group gets SIGTERM, then
    SIGKILL after the 5 s grace period, as a stop would do."""
    mark = tmp_path / "mark-killed"
    e = stubborn_edge(tmp_path, mark)
    groups = started_pids(e)
    try:
        # each group has the shell, the service, the background job and a sleep
        assert all(len(in_groups({g})) >= 3 for g in groups), in_groups(groups)
        t0 = time.monotonic()
        e.edge.p.kill()
        # (not e.edge.wait(): its readers wait for the end of the edge's
        # stderr, which the commands hold)
        e.edge.p.wait(timeout=10)
        wait_for(lambda: not in_groups(groups) and not marked(mark), timeout=15,
                 what="every process of the killed edge's commands to end")
        # SIGTERM first (the service ends at once), SIGKILL after the grace
        assert time.monotonic() - t0 > 3
    finally:
        e.kill_all()
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass


def test_a_stopped_edge_stops_commands_that_ignore_sigterm(tmp_path):
    """SIGTERM to the edge: a command that ignores SIGTERM, and its
    background jobs, get SIGKILL after the grace period, and the edge exits
    0 in bounded time, leaving no process (nor a watchdog) behind."""
    mark = tmp_path / "mark-stopped"
    e = stubborn_edge(tmp_path, mark)
    groups = started_pids(e)
    try:
        t0 = time.monotonic()
        e.edge.p.send_signal(signal.SIGTERM)
        assert e.edge.wait(timeout=20) == 0
        assert 4 < time.monotonic() - t0 < 12
        assert any("sending SIGKILL" in l for l in e.edge.err), e.edge.err[-10:]
        assert not in_groups(groups)
        wait_for(lambda: not marked(mark), what="no process left with the mark")
    finally:
        e.stop()


def test_a_command_cannot_forge_or_break_the_edge_s_log_lines(tmp_path):
    """A command's stdout and stderr used to be the edge's stderr itself: a
    line it printed could pass for one of the edge's ("switchboard: error:
    ..."), and text without a newline glued the edge's next line onto its
    own. Each line of a command now comes out whole, after its name and pid,
    with control bytes shown as \\xNN."""
    script = ('printf "switchboard: error: forged\\n\\033[31mred\\r\\n" >&2; '
              'printf "partial-no-newline"; exec "$0" --name codex-web --env preview')
    ups = {(svc, "preview"): ["/bin/sh", "-c", script, DEMO] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    e.start()
    try:
        sb(e, "preview", "create", "--pr", "6")
        wait_healthy(e, f"codex-preview-6.{ZONE}")
        pid = next(m.group(1) for l in e.edge.err
                   if (m := re.search(r"codex-web-preview-6: started pid (\d+)", l)))
        prefix = f"codex-web-preview-6[{pid}]: "
        wait_for(lambda: any(l.startswith(prefix + "partial-no-newline") for l in e.edge.err),
                 what="the partial line, ended by the service's own output")
        assert not any(l.startswith("switchboard: error: forged") for l in e.edge.err)
        assert prefix + "switchboard: error: forged" in e.edge.err, e.edge.err
        assert prefix + "\\x1b[31mred\\x0d" in e.edge.err, e.edge.err
        # the partial line ran on with the service's, never with an edge line
        glued = [l for l in e.edge.err if "partial-no-newline" in l and "started pid" not in l]
        assert glued and all(
            re.fullmatch(r"[a-z-]+-preview-6\[\d+\]: partial-no-newlinelistening on "
                         r"127\.0\.0\.1:\d+", l) for l in glued), glued
        # the edge's own lines are whole, each at the start of its line
        assert any(l.startswith("switchboard: info: upstream http://127.0.0.1:")
                   for l in e.edge.err)
    finally:
        e.stop()


def zombies_of(pid):
    """The zombie children of pid."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,stat="], capture_output=True,
                         text=True).stdout
    return [r for r in (l.split() for l in out.splitlines())
            if len(r) == 3 and int(r[1]) == pid and r[2].startswith("Z")]


def test_an_edge_that_is_pid_1_reaps_the_orphans_of_its_commands(tmp_path):
    """A container's entry point is PID 1: every orphan of the namespace is
    its child. A command's background job outlives the command when its
    group is stopped, and is the edge's to reap: libuv reaps only what it
    spawned, so each stopped preview left zombies for good."""
    # the shell execs the demo, whose children the jobs then are
    script = '(exec sleep 1000) & (exec sleep 1001) & exec "$0" --name codex-web --env preview'
    ups = {(svc, "preview"): ["/bin/sh", "-c", script, DEMO] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    # unshare waits for the edge, holding SIGTERM, and exits with its status;
    # the edge is PID 1 of the new namespace
    e.start(prefix=["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"])
    edge_pid = None
    try:
        edge_pid = int(subprocess.run(["pgrep", "-P", str(e.edge.p.pid)], capture_output=True,
                                      text=True).stdout.split()[0])
        for pr in (5, 6):
            sb(e, "preview", "create", "--pr", str(pr))
            wait_healthy(e, f"codex-preview-{pr}.{ZONE}")
            sb(e, "preview", "delete", "--pr", str(pr))
            ended = re.compile(rf"-preview-{pr}: pid \d+ (killed|exited)")
            wait_for(lambda: sum(bool(ended.search(l)) for l in e.edge.err) == 3,
                     what=f"the three processes of preview {pr} to end")
        # six jobs orphaned to the edge, then killed: all reaped
        wait_for(lambda: not zombies_of(edge_pid), timeout=5,
                 what="no zombie left under the edge")
        # and the edge is still serving
        wait_healthy(e, f"codex.{ZONE}")
    finally:
        if edge_pid:
            os.kill(edge_pid, signal.SIGTERM)  # e.stop()'s goes to unshare
        e.stop()
