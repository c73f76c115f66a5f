"""DNS answered by `switchboard serve`, derived from routes and tenants."""
import socket
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from edge import Edge, SB, closed_by_peer, frozen, wait_for


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("dns")).start(dns=True)
    yield e
    e.stop()


def q(edge, name, rtype="A", tcp=False, **kw):
    m = dns.message.make_query(name, rtype, **kw)
    f = dns.query.tcp if tcp else dns.query.udp
    return f(m, "127.0.0.1", port=edge.dns_port, timeout=3)


def addrs(resp):
    return sorted(r.address for rr in resp.answer for r in rr if rr.rdtype == dns.rdatatype.A)


@pytest.mark.parametrize("host", [
    "codex.revelations.studio", "api.revelations.studio", "auth.revelations.studio",
    "codex-staging.revelations.studio", "api-staging.revelations.studio",
    "auth-staging.revelations.studio", "ns1.revelations.studio"])
def test_routed_hosts_resolve_to_the_edge(edge, host):
    for tcp in (False, True):
        r = q(edge, host, tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and addrs(r) == ["127.0.0.1"]
        assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA


def test_unrouted_names_are_nxdomain_with_soa(edge):
    for host in ["nope.revelations.studio", "www.revelations.studio",
                 "codex-preview-123.revelations.studio"]:
        r = q(edge, host)
        assert r.rcode() == dns.rcode.NXDOMAIN, host
        soa = r.authority[0]
        assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 300


def test_outside_the_zone_is_refused(edge):
    r = q(edge, "example.com")
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA


def test_case_is_preserved(edge):
    r = q(edge, "CoDeX.ReVelations.Studio")
    assert r.question[0].name.to_text() == "CoDeX.ReVelations.Studio."
    assert addrs(r) == ["127.0.0.1"]


def serial(edge):
    return q(edge, "revelations.studio", "SOA").answer[0][0].serial



def test_tenants_appear_and_disappear_with_the_registry(edge):
    def tenants(*args):
        subprocess.run([SB, "tenants", *args, "-c", edge.dir, "--data", edge.data],
                       check=True, capture_output=True)
    s0 = serial(edge)
    assert q(edge, "globex.revelations.studio").rcode() == dns.rcode.NXDOMAIN
    tenants("add", "globex")
    wait_for(lambda: addrs(q(edge, "globex.revelations.studio")) == ["127.0.0.1"])
    s1 = serial(edge)
    assert (s1 - s0) % 2**32 < 2**31 and s1 != s0  # RFC 1982: advanced
    tenants("suspend", "globex")
    wait_for(lambda: q(edge, "globex.revelations.studio").rcode() == dns.rcode.NXDOMAIN)
    assert serial(edge) != s1
    tenants("resume", "globex")
    wait_for(lambda: q(edge, "globex.revelations.studio").rcode() == dns.rcode.NOERROR)
    tenants("remove", "globex")
    wait_for(lambda: q(edge, "globex.revelations.studio").rcode() == dns.rcode.NXDOMAIN)


def test_serial_is_stable_without_changes(edge):
    s = serial(edge)
    edge.edge.p.send_signal(1)  # SIGHUP: same declaration, same zone
    edge.edge.wait_line(lambda l: "reloaded" in l)
    assert serial(edge) == s


def test_dns_and_http_agree(edge):
    """Every host the route table serves resolves; nothing else in the zone does."""
    from edge import request
    for host in ["codex.revelations.studio", "api-staging.revelations.studio",
                 "nope.revelations.studio"]:
        http = request(edge, host, "/health")[0]
        rc = q(edge, host).rcode()
        assert (http == 200) == (rc == dns.rcode.NOERROR), host


# ---- TCP clients that misbehave ----------------------------------------------

def one_tcp_query(name="codex.revelations.studio"):
    w = dns.message.make_query(name, "A").to_wire()
    return len(w).to_bytes(2, "big") + w


def test_tcp_answers_to_a_client_that_does_not_read_are_bounded(tmp_path):
    import threading
    import time
    # ASan's quarantine would keep every freed answer resident
    e = Edge(tmp_path, threads=1).start(dns=True, env={"ASAN_OPTIONS": "quarantine_size_mb=1"})
    try:
        pid = e.edge.p.pid

        def rss():
            return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0])
        before = rss()
        # enough for the kernel's buffers to fill and the server's queue to
        # matter (an answer allocated at 64 KiB, the old bug, grew 250 MB)
        n = 4000
        s = socket.create_connection(("127.0.0.1", e.dns_port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sender = threading.Thread(target=s.sendall, args=(one_tcp_query() * n,))
        sender.start()
        # the client reads nothing for a while (no readiness to wait for: the
        # kernel takes all the answers of a well-behaved server, so nothing
        # outside it shows when reading stops)
        time.sleep(1)
        grown = rss() - before
        got, buf = 0, b""
        while got < n:
            b = s.recv(1 << 20)
            assert b, f"closed after {got} of {n} answers"
            buf += b
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                buf = buf[2 + int.from_bytes(buf[:2], "big"):]
                got += 1
        sender.join()
        s.close()
        # the answers wait in the sockets, not in the server's memory
        assert grown < 32 * 1024, f"the server grew by {grown} KiB"
    finally:
        e.stop()


def test_pipelined_tcp_answers_are_not_held_back(edge):
    """Two queries sent together, answered together: with Nagle on the
    server's socket the second answer waited for the client's delayed ACK,
    about 40 ms a round (8.8 s for 200 rounds, against 0.02 s with
    TCP_NODELAY)."""
    import time
    s = socket.create_connection(("127.0.0.1", edge.dns_port), timeout=5)
    t0 = time.monotonic()
    for _ in range(50):
        s.sendall(one_tcp_query() * 2)
        got, buf = 0, b""
        while got < 2:
            b = s.recv(65536)
            assert b, "closed"
            buf += b
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                buf = buf[2 + int.from_bytes(buf[:2], "big"):]
                got += 1
    took = time.monotonic() - t0
    s.close()
    assert took < 1.0, f"50 rounds took {took:.2f} s"


def test_tcp_client_trickling_a_message_is_closed(edge):
    import time
    s = socket.create_connection(("127.0.0.1", edge.dns_port), timeout=5)
    s.sendall(b"\xff\xff")  # a 65535-byte message begins...
    start = time.monotonic()
    closed = None
    while time.monotonic() - start < 6:
        try:
            s.sendall(b"a")  # ...and goes on a byte at a time
            s.settimeout(0.3)
            if s.recv(1) == b"":
                closed = time.monotonic() - start
                break
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = time.monotonic() - start
            break
    s.close()
    # the rest of a message must come within 2 s of its start, whatever
    # trickles in meanwhile (the idle timeout alone is 10 s)
    assert closed is not None and closed < 4, closed
    # and the server still answers
    r = q(edge, "codex.revelations.studio", tcp=True)
    assert addrs(r) == ["127.0.0.1"]


def tcp_ask(s, query):
    """Send one length-prefixed query on s and read its answer; b"" when the
    server closed the connection instead."""
    s.sendall(query)
    return read_tcp_message(s)


def read_tcp_message(s):
    buf = b""
    while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return b""
        if not b:
            return b""
        buf += b
    return buf[2:]


TCP_MAX_CONNS = 512  # a thread's, src/dns/serve.c


def fill_tcp_slots(e, query, conns):
    """Open every TCP slot of a one-thread server (into conns), each with a
    query answered."""
    for i in range(TCP_MAX_CONNS):
        s = socket.create_connection(("127.0.0.1", e.dns_port), timeout=5)
        conns.append(s)
        assert tcp_ask(s, query), f"connection {i} was not answered"


def test_tcp_connections_full_the_longest_idle_makes_room(tmp_path):
    # 512 connections a thread: the 513th takes the place of the connection
    # that has waited longest since its last answer, so clients that hold
    # connections open cannot keep a new one out (RFC 7766 6.2.3)
    e = Edge(tmp_path, threads=1).start(dns=True)
    conns = []
    try:
        query = one_tcp_query()
        fill_tcp_slots(e, query, conns)
        # the oldest answered gets a fresh query, so the second is now the
        # longest idle
        assert tcp_ask(conns[0], query)
        extra = socket.create_connection(("127.0.0.1", e.dns_port), timeout=5)
        assert tcp_ask(extra, query), "the new connection was refused"
        assert closed_by_peer(conns[1])
        conns[1].close()
        conns[1] = extra
        # every other connection is still served
        for s in conns:
            s.sendall(query)
        for i, s in enumerate(conns):
            assert read_tcp_message(s), f"connection {i} was closed"

        # with a message begun on every connection, none is idle: a new
        # connection is closed at once and the others finish their queries
        for s in conns:
            s.sendall(query[:1])
        # once the server's kernel holds every byte, each connection is
        # readable before the next one below is accepted, and the loop
        # handles ready sockets in the order they became ready
        wait_for(lambda: all_sent_and_taken(conns), what="the first bytes taken")
        refused = socket.create_connection(("127.0.0.1", e.dns_port), timeout=5)
        assert closed_by_peer(refused)
        refused.close()
        for s in conns:
            s.sendall(query[1:])
        for i, s in enumerate(conns):
            assert read_tcp_message(s), f"connection {i} lost its query"
    finally:
        for s in conns:
            s.close()
        e.stop()


def test_tcp_connection_whose_query_waits_unread_is_not_taken(tmp_path):
    # The server is stopped while a 513th connection arrives and then a query
    # on the longest-idle connection: epoll reports them in that order, so
    # the accept comes first and finds the query still in the socket. That
    # connection is not idle; the next-longest idle one is taken instead.
    e = Edge(tmp_path, threads=1).start(dns=True)
    conns = []
    try:
        query = one_tcp_query()
        fill_tcp_slots(e, query, conns)
        with frozen(e, idle_first=True):
            extra = socket.create_connection(("127.0.0.1", e.dns_port), timeout=5)
            conns.append(extra)
            conns[0].sendall(query)
        assert read_tcp_message(conns[0]), "the query waiting in the socket was lost"
        assert closed_by_peer(conns[1])
        assert tcp_ask(extra, query), "the new connection was refused"
    finally:
        for s in conns:
            s.close()
        e.stop()


def all_sent_and_taken(conns):
    """True when no byte waits in any of conns' send queues (SIOCOUTQ)."""
    import fcntl
    import struct
    return all(struct.unpack("i", fcntl.ioctl(s.fileno(), 0x5411, b"\0" * 4))[0] == 0
               for s in conns)


def test_serials_survive_a_restart(tmp_path):
    import signal
    e = Edge(tmp_path, threads=1)
    e.start(dns=True)
    try:
        def serial():
            r = q(e, "revelations.studio", "SOA")
            return r.answer[0][0].serial
        first = serial()
        # changes faster than one a second run the serial ahead of the clock
        for i in range(12):
            subprocess.run([SB, "tenants", "add", f"fast{i}", "-c", e.dir], check=True,
                           capture_output=True)
        wait_for(lambda: serial() >= first + 12, what="a serial per change")
        before = serial()
        e.edge.p.send_signal(signal.SIGTERM)
        assert e.edge.wait(10) == 0
        e.procs.remove(e.edge)
        e.start(dns=True)
        # the same content keeps its serial; the next change goes above it
        assert serial() == before
        subprocess.run([SB, "tenants", "add", "after", "-c", e.dir], check=True,
                       capture_output=True)
        wait_for(lambda: serial() > before, what="the next serial")
    finally:
        e.stop()
