"""Mutated requests against the (sanitized) edge: a fixed-seed stream of
byte-level mutations of valid requests, sent raw. Whatever arrives, the edge
answers with a well-formed status line or closes, never crashes, and
forwards nothing that breaks the rules the upstream relies on: one Host, the
edge's own signature and tenant headers only, no bare CR or LF, no
whitespace before a colon, a body framed by exactly one of Content-Length
and chunked. FUZZ_ROUNDS (default 1500) sets the number of requests;
FUZZ_SEED the seed."""
import os
import random
import time
import re
import socket

import pytest

from edge import Edge, Framed

HOST = b"codex.revelations.studio"

SEEDS = [
    b"GET /a?x=1 HTTP/1.1\r\nHost: " + HOST + b"\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: " + HOST + b"\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: " + HOST + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"GET http://" + HOST + b"/abs HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: " + HOST + b"\r\nX-Tenant-Slug: evil\r\n"
    b"X-Switchboard-Signature: t=1,v1=00\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: " + HOST + b"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: " + HOST + b"\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET /.well-known/switchboard/health HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n",
]
# what a mutation inserts: the bytes request smuggling is made of
PIECES = [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b"\x00", b"Content-Length: 0\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Host: evil.example\r\n", b"0\r\n\r\n",
          b"GET /smuggled HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n", b"\xff", b"%00",
          b"X-Tenant-Slug: evil\r\n", b"Content-Length: 99999999999999999999\r\n", b"\r\n\r\n"]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            data[min(i, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a piece
            data[i:i] = rng.choice(PIECES)
        elif op == 2 and data:  # delete a run
            del data[i:i + rng.randint(1, 8)]
        elif op == 3:  # duplicate a line
            lines = bytes(data).split(b"\r\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            data = bytearray(b"\r\n".join(lines))
        elif op == 4:  # cut short
            data = data[:i]
        else:  # pipeline another seed behind it
            data += rng.choice(SEEDS)
    return bytes(data)


def read_all(s, timeout=5.0):
    """What the edge sends until it closes; None if it neither answers nor
    closes within timeout (longer than its header and response timeouts)."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return out


STATUS = re.compile(rb"HTTP/1\.1 [1-5][0-9][0-9] [^\r\n]*\r\n")


def check_forwarded(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert re.match(rb"^[A-Z]+ /\S* HTTP/1\.1$", lines[0]), lines[0]
    names, values = [], {}
    for l in lines[1:]:
        assert b"\n" not in l and b"\r" not in l, l
        name, colon, value = l.partition(b":")
        assert colon and name and name == name.strip() and b" " not in name, l
        names.append(name.lower())
        values.setdefault(name.lower(), []).append(value.strip())
    assert names.count(b"host") == 1, names
    framing = names.count(b"content-length") + names.count(b"transfer-encoding")
    assert framing <= 1, names
    # the edge's own headers, once each, with its values: none from the client
    ours = {b"x-switchboard-signature", b"x-switchboard-deployment",
            b"x-switchboard-environment", b"x-tenant-slug", b"x-tenant-config"}
    for n in names:
        if n.startswith((b"x-switchboard-", b"x-tenant-")):
            assert n in ours and names.count(n) == 1, names
    t = int(values[b"x-switchboard-signature"][0].split(b",")[0][2:])
    assert abs(t - time.time()) < 600, head  # the edge's own, signed now
    assert values.get(b"x-tenant-slug", [b"codex"]) == [b"codex"], head


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    rec = Framed()
    e = Edge(tmp_path_factory.mktemp("fuzz"), threads=1,
             upstreams={("codex-web", "production"): rec.url},
             http={"header_timeout_ms": 1000, "response_timeout_ms": 2000})
    e.procs.append(rec)
    e.rec = rec
    e.start()
    yield e
    e.stop()  # fails on a sanitizer report or a non-zero exit


def test_mutated_requests(fuzzed):
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "20261127")))
    rounds = int(os.environ.get("FUZZ_ROUNDS", "1500"))
    seen = 0
    for n in range(rounds):
        data = mutate(rng, rng.choice(SEEDS))
        s = fuzzed.connect()
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # no more: whatever it makes of this
        except OSError:
            pass
        out = read_all(s)
        s.close()
        assert fuzzed.edge.p.poll() is None, f"round {n}: the edge died on {data!r}"
        assert out is not None, f"round {n}: no answer and no close for {data!r}"
        if out:
            assert STATUS.match(out), f"round {n}: {data!r} got {out[:200]!r}"
        if os.environ.get("FUZZ_DEBUG"):  # which input made a bad request upstream
            with fuzzed.rec.lock:
                new = fuzzed.rec.received[seen:]
                seen = len(fuzzed.rec.received)
            for raw in new:
                try:
                    check_forwarded(raw)
                except AssertionError:
                    print("INPUT:", data, "\nOUT:", out[:300])
                    raise
    with fuzzed.rec.lock:
        got = list(fuzzed.rec.received)
    # a good share gets through: else the mutations test nothing past the parser
    assert len(got) > rounds // 10, f"{len(got)} of {rounds} forwarded"
    for raw in got:
        try:
            check_forwarded(raw)
        except AssertionError:
            if os.environ.get("FUZZ_DEBUG"):
                print("FORWARDED:", raw)
            raise
