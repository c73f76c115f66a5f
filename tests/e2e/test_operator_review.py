"""Running `switchboard serve` as an operator of nginx, HAProxy or Caddy
would: addresses that cannot be listened on, signals, and the open-file
limit. Each test is a shortfall found in that review (docs/http.md,
"Reload and stop"; docs/configuration.md, "The open-file limit")."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from edge import SB, Proc, request, wait_for
from test_http_edge import held_upstream, stop_in_flight

HOST = "codex.revelations.studio"


def cpu_ticks(pid):
    """User and system clock ticks the process has used (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def held_answered(e, held):
    """Requests on connections the edge held are answered: 200, or 502 for
    want of a socket to the upstream (those libuv accepted only to close
    are closed). Returns how many were answered."""
    answered = 0
    for s in held[:20]:
        s.settimeout(10)
        try:
            status = request(e, HOST, "/echo", sock=s)[0]
        except (EOFError, ConnectionResetError):
            continue
        assert status in (200, 502), status
        answered += 1
    return answered


def serve_fails(e, *args):
    """Run serve on e's declaration with args; it must not start. Returns
    (exit status, stderr lines)."""
    p = Proc([SB, "serve", "-c", str(e.dir), "--threads", "2", *args])
    try:
        rc = p.wait(timeout=30)
    except Exception:
        p.stop(sig=9)
        raise AssertionError(f"serve started: {p.err[-5:]}")
    assert not [l for l in p.err if "Sanitizer" in l or "runtime error" in l], p.err
    return rc, p.err


# ---- the open-file limit ----------------------------------------------------

def test_at_the_open_file_limit_the_edge_keeps_serving_says_so_and_recovers(fresh):
    # ulimit -n 64: a few dozen connections use it up. libuv's accept loop
    # called the edge back with EMFILE and tried again at once, for as long
    # as it lasted: both serving threads spun at 100% CPU, the connections
    # they held were never answered (nor closed: descriptors never came
    # back), and SIGTERM could not stop the edge. The health checks, made
    # without a socket, marked every upstream down (503s once descriptors
    # were back). And nothing was said.
    e = fresh(threads=2).start(prefix=("sh", "-c", 'ulimit -n 64; exec "$@"', "sh"))
    pid = e.edge.p.pid
    assert any("max_connections (16384) is more than the open-file limit allows "
               "(ulimit -n 64" in l for l in e.edge.err), e.edge.err[-5:]
    held = [e.connect() for _ in range(60)]
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                socket.create_connection(("127.0.0.1", e.port), timeout=1).close()
            except OSError:
                pass
    hammers = [threading.Thread(target=hammer) for _ in range(4)]
    t0 = time.monotonic()
    for t in hammers:
        t.start()
    try:
        wait_for(lambda: any("open files: the limit (ulimit -n 64) is reached" in l
                             for l in e.edge.err), timeout=10, what="the warning")
        time.sleep(max(0.0, 2 - (time.monotonic() - t0)))
    finally:
        stop.set()
        for t in hammers:
            t.join()
    # no thread spins (two threads spinning use 200 ticks a second)
    before = cpu_ticks(pid)
    time.sleep(1)
    assert cpu_ticks(pid) - before < 40, "the edge spins at the open-file limit"
    held_answered(e, held)
    elapsed = time.monotonic() - t0
    # said, at a bounded rate: at most once a second per thread
    accepts = [l for l in e.edge.err if "cannot accept connections on thread" in l]
    assert len(accepts) <= 2 * (elapsed + 1), accepts
    assert not any("is down: too many open files" in l for l in e.edge.err), e.edge.err[-10:]
    skipped = [l for l in e.edge.err if "health checks not made: too many open files" in l]
    assert len(skipped) <= elapsed + 1, skipped
    # descriptors back: served again, and said
    for s in held:
        s.close()
    wait_for(lambda: request(e, HOST, "/echo")[0] == 200, timeout=10,
             errors=(OSError, EOFError), what="a request served")
    wait_for(lambda: any("open files: below the limit (ulimit -n 64) again" in l
                         for l in e.edge.err), timeout=5, what="the recovery said")
    # and it stops when asked (Edge.stop: SIGTERM, exit 0)


# ---- addresses --------------------------------------------------------------

@pytest.mark.parametrize("opt,kind,proto", [
    ("--listen", socket.SOCK_STREAM, "tcp"),
    ("--dns", socket.SOCK_DGRAM, "udp"),
])
def test_a_port_another_process_holds_with_so_reuseport_is_refused(fresh, opt, kind, proto):
    # The edge's sockets have SO_REUSEPORT: a bind to a port that another
    # process of the same user holds with it too (another switchboard, on
    # another data directory) succeeded, and the two split its connections
    # or queries without a word. nginx and Caddy refuse such a port.
    holder = socket.socket(socket.AF_INET, kind)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        holder.listen()
    port = holder.getsockname()[1]
    e = fresh(demos=False)
    addr = f"127.0.0.1:{port}"
    args = ["--listen", addr] if opt == "--listen" else ["--listen", "127.0.0.1:0", "--dns", addr]
    try:
        rc, err = serve_fails(e, *args)
    finally:
        holder.close()
    assert rc == 1, err
    assert any(f"{opt}: cannot listen on {addr} ({proto}): Address already in use; another "
               f"process holds it" in l for l in err), err


@pytest.mark.parametrize("which", ["http", "dns-udp", "dns-tcp"])
def test_a_process_that_joins_the_port_later_gets_none_of_its_traffic(fresh, which):
    # A process of the same user that binds the edge's port with
    # SO_REUSEPORT after the edge started joins the kernel's group (nothing
    # refuses it) and took about a third of the connections or queries (two
    # serving threads and it): an nginx whose configuration names the port,
    # say. The edge now steers its port's traffic to its own sockets only.
    import dns.message
    import dns.query
    e = fresh(demos=False, threads=2)
    e.start(dns=True)
    port = e.port if which == "http" else e.dns_port
    kind = socket.SOCK_DGRAM if which == "dns-udp" else socket.SOCK_STREAM
    intruder = socket.socket(socket.AF_INET, kind)
    try:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        intruder.bind(("127.0.0.1", port))  # the kernel lets it join
        if kind == socket.SOCK_STREAM:
            intruder.listen(128)
        intruder.setblocking(False)
        n = 60
        for i in range(n):
            if which == "http":
                st, _, _ = request(e, "codex.revelations.studio", "/.well-known/switchboard/health")
                assert st == 200, i
            else:
                q = dns.message.make_query("codex.revelations.studio", "A")
                send = dns.query.udp if which == "dns-udp" else dns.query.tcp
                assert send(q, "127.0.0.1", port=port, timeout=3).answer, i
        # nothing reached the intruder: no connection queued, no datagram
        if kind == socket.SOCK_STREAM:
            with pytest.raises(BlockingIOError):
                intruder.accept()
        else:
            with pytest.raises(BlockingIOError):
                intruder.recvfrom(512)
    finally:
        intruder.close()


def test_new_connections_still_spread_over_every_serving_thread(fresh):
    # The steering above picks one of the edge's own sockets per connection:
    # with two serving threads, both serve (a program that always picked
    # the first would leave the second idle). wrk with Connection: close
    # makes every request a new connection; each thread's CPU time, from
    # /proc, shows it served its share.
    e = fresh(demos=False, threads=2)
    e.start()
    pid = e.edge.p.pid

    def ticks():
        out = {}
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[t] = int(fields[11]) + int(fields[12])  # utime + stime
        return out
    before = ticks()
    wrk = subprocess.run(["wrk", "-t2", "-c8", "-d2s", "-H", "Connection: close", "-H",
                          "Host: codex.revelations.studio",
                          f"http://127.0.0.1:{e.port}/.well-known/switchboard/health"],
                         capture_output=True, text=True, timeout=30)
    assert wrk.returncode == 0, wrk.stderr
    after = ticks()
    used = sorted((after[t] - before.get(t, 0) for t in after if t != str(pid)), reverse=True)
    # the two busiest threads besides the control loop's are the serving
    # threads: neither has less than a fifth of their sum
    assert len(used) >= 2 and used[0] + used[1] >= 20, (used, wrk.stdout)
    assert used[1] >= (used[0] + used[1]) / 5, (used, wrk.stdout)


def test_an_address_given_by_an_option_is_blamed_on_the_option(fresh):
    # "switchboard.toml: cannot listen on ..." sent the operator to a file
    # that does not name the address
    e = fresh(demos=False)
    rc, err = serve_fails(e, "--listen", "192.0.2.1:0")
    assert rc == 1, err
    assert any(l.startswith("switchboard: --listen: cannot listen on 192.0.2.1:0 (tcp): ")
               and "no interface of this host has that address" in l for l in err), err


def test_a_privileged_port_says_what_it_takes(fresh):
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            start = int(f.read())
    except OSError:
        start = 1024
    if start <= 80 or os.geteuid() != 0:
        pytest.skip("needs root (to drop CAP_NET_BIND_SERVICE) and port 80 privileged")
    e = fresh(demos=False)
    p = Proc(["setpriv", "--bounding-set", "-net_bind_service", SB, "serve", "-c", str(e.dir),
              "--listen", "127.0.0.1:80", "--threads", "1"])
    try:
        assert p.wait(timeout=30) == 1, p.err
    finally:
        p.stop(sig=9)
    assert any("--listen: cannot listen on 127.0.0.1:80 (tcp): Permission denied; a port below "
               "net.ipv4.ip_unprivileged_port_start" in l and "CAP_NET_BIND_SERVICE" in l
               for l in p.err), p.err


@pytest.mark.parametrize("opt", ["--listen", "--dns"])
def test_an_address_option_given_twice_is_refused(fresh, opt):
    # the last one was taken, the first left unserved without a word
    e = fresh(demos=False)
    rc, err = serve_fails(e, opt, "127.0.0.1:0", opt, "[::1]:0")
    assert rc == 2, err
    assert any(f"{opt} given twice (127.0.0.1:0, then [::1]:0)" in l and "[::]:PORT" in l
               for l in err), err


def test_the_any_address_of_ipv6_takes_ipv4_too(fresh):
    # what the refusal of a second --listen advises
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    e = fresh()
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    p = Proc([SB, "serve", "-c", str(e.dir), "--listen", "[::]:0", "--threads", "1"])
    e.procs.append(p)
    line = p.wait_line(lambda l: "listening on http://" in l)
    port = int(line.split("listening on http://[::]:", 1)[1].split()[0])
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as s:
            s.settimeout(10)
            s.connect((host, port))
            s.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n"
                      "Connection: close\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.1 200"), host
    p.stop()
    assert p.p.returncode == 0, p.err[-5:]


# ---- signals ----------------------------------------------------------------

def test_sigquit_stops_gracefully_as_nginx_has_it(fresh):
    # SIGQUIT is nginx's graceful stop (and the STOPSIGNAL of images built
    # on nginx's). Unhandled, it dumped core: requests in flight were cut,
    # the admin socket and the pid file left behind.
    e = held_upstream(fresh)
    assert stop_in_flight(e, signal.SIGQUIT)[0] == 200
    assert e.edge.wait(timeout=20) == 0
    assert not (e.data / "admin.sock").exists()
    assert not (e.data / "switchboard.pid").exists()
