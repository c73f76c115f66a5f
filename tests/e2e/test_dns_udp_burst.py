"""UDP DNS under a burst: queries are received and answered in batches
(recvmmsg/sendmmsg in src/dns/serve.c), so many queries in flight at once
must each get their own answer, to their own socket, with their own ID,
identical to the answer the same query gets alone.

Eight client sockets (spread by the kernel over the edge's two serving
threads) keep up to 16 queries each in flight, 2,000 distinct queries in
all: the server's queue holds many datagrams at a time, so its batches are
full, without overflowing its default receive buffer (a drop there would be
the kernel's, not the server's). Garbage datagrams are mixed in: they must
be dropped without disturbing the queries around them.
"""
import random
import selectors
import socket
import subprocess
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from edge import Edge, SB

ZONE = "revelations.studio"
TENANTS = ["acme", "globex", "initech"]
ROUTED = ["api", "auth", "codex-staging", "api-staging", "auth-staging", "ns1"]
SOCKETS = 8
WINDOW = 16  # queries in flight per socket
TOTAL = 2000


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("dnsburst"))
    for slug in TENANTS:
        subprocess.run([SB, "tenants", "add", slug, "-c", e.dir, "--data", e.data],
                       check=True, capture_output=True)
    e.start(dns=True)
    yield e
    e.stop()


def mixed_case(rng, name):
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def make_queries():
    """(wire, category) for TOTAL distinct queries, IDs 0..TOTAL-1 (unique
    per socket, since each socket gets a subset)."""
    rng = random.Random(20261127)
    out = []
    for i in range(TOTAL):
        k = i % 8
        if k == 0:
            name, t = f"{rng.choice(TENANTS + ['codex'])}.{ZONE}", "A"
        elif k == 1:
            name, t = f"{rng.choice(ROUTED)}.{ZONE}", "A"
        elif k == 2:
            name, t = f"{rng.choice(ROUTED)}.{ZONE}", "AAAA"
        elif k == 3:
            name, t = ZONE, "SOA"
        elif k == 4:
            name, t = ZONE, "NS"
        elif k == 5:
            name, t = f"x{i}-nope.{ZONE}", "A"
        elif k == 6:
            name, t = f"{rng.choice(ROUTED)}.{ZONE}", "MX"
        else:
            name, t = f"h{i}.example.com", "A"
        m = dns.message.make_query(mixed_case(rng, name), t,
                                   use_edns=(0 if i % 3 else None), payload=1232)
        m.id = i
        out.append((m.to_wire(), k))
    return out


def garbage(i):
    """Datagrams the server must drop: a response, a runt, a header that
    announces a question it does not carry."""
    kind = i % 3
    if kind == 0:
        r = dns.message.make_response(dns.message.make_query(f"g{i}.{ZONE}", "A"))
        return r.to_wire()
    if kind == 1:
        return b"\x12\x34\x00"
    return bytes([0xab, 0xcd, 0x01, 0x00, 0x00, 0x01]) + b"\x00" * 6


def alone(port, wire):
    """The answer to one query with nothing else in flight."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(wire, ("127.0.0.1", port))
        return s.recv(65535)


def check_semantics(category, wire):
    r = dns.message.from_wire(wire)
    rc = r.rcode()
    if category == 7:
        assert rc == dns.rcode.REFUSED and not r.answer
        return
    assert r.flags & dns.flags.AA
    if category in (0, 1):
        assert rc == dns.rcode.NOERROR
        assert [a.address for rr in r.answer for a in rr] == ["127.0.0.1"]
    elif category in (2, 6):  # NODATA
        assert rc == dns.rcode.NOERROR and not r.answer
        assert r.authority[0].rdtype == dns.rdatatype.SOA
    elif category == 3:
        assert rc == dns.rcode.NOERROR and r.answer[0].rdtype == dns.rdatatype.SOA
    elif category == 4:
        assert rc == dns.rcode.NOERROR and r.answer[0].rdtype == dns.rdatatype.NS
        assert any(rr.rdtype == dns.rdatatype.A for rr in r.additional)
    elif category == 5:
        assert rc == dns.rcode.NXDOMAIN and r.authority[0].rdtype == dns.rdatatype.SOA


def test_burst_every_query_answered_as_alone(edge):
    queries = make_queries()
    port = edge.dns_port
    socks = []
    sel = selectors.DefaultSelector()
    for n in range(SOCKETS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, n)
        socks.append(s)
    # socket n sends queries n, n + SOCKETS, ...; a garbage datagram before
    # every 25th query
    todo = [[i for i in range(n, TOTAL, SOCKETS)] for n in range(SOCKETS)]
    inflight = [set() for _ in range(SOCKETS)]
    got = {}
    sent_garbage = 0

    def fill(n):
        nonlocal sent_garbage
        while todo[n] and len(inflight[n]) < WINDOW:
            i = todo[n].pop(0)
            if i % 25 == 0:
                socks[n].send(garbage(i))
                sent_garbage += 1
            socks[n].send(queries[i][0])
            inflight[n].add(i)

    for n in range(SOCKETS):
        fill(n)
    deadline = time.monotonic() + 60
    while any(inflight) or any(todo):
        left = deadline - time.monotonic()
        events = sel.select(timeout=max(0.0, min(left, 5)))
        if not events:
            lost = sum(len(f) for f in inflight)
            pytest.fail(f"{lost} queries unanswered ({len(got)} of {TOTAL} answered)")
        for key, _ in events:
            n = key.data
            while True:
                try:
                    data = socks[n].recv(65535)
                except BlockingIOError:
                    break
                qid = int.from_bytes(data[:2], "big")
                assert qid in inflight[n], f"socket {n}: answer with ID {qid} not in flight"
                assert qid not in got, f"two answers to query {qid}"
                inflight[n].discard(qid)
                got[qid] = data
            fill(n)
    assert sent_garbage > 0 and len(got) == TOTAL

    # Nothing answered the garbage: a last query per socket is answered
    # after anything still queued for that socket (one server socket, in
    # order), so its answer must be the next datagram.
    for n, s in enumerate(socks):
        s.setblocking(True)
        s.settimeout(5)
        m = dns.message.make_query(f"api.{ZONE}", "A")
        m.id = 0xfff0 + n
        s.send(m.to_wire())
        assert int.from_bytes(s.recv(65535)[:2], "big") == m.id, f"socket {n}: extra datagram"
        sel.unregister(s)
        s.close()

    # Each answer is exactly the one the query gets alone.
    for i, (wire, category) in enumerate(queries):
        a = got[i]
        assert a == alone(port, wire), f"query {i}: {dns.message.from_wire(wire).question}"
        r = dns.message.from_wire(a)
        q = dns.message.from_wire(wire)
        assert r.id == i and r.question[0].name.to_text() == q.question[0].name.to_text()
        assert (r.edns >= 0) == (q.edns >= 0)
        check_semantics(category, a)
