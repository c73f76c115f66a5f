"""DNS on the wire: crafted packets against `switchboard serve`.

Every query here is built byte by byte (struct), so that malformed ones can
be: truncated headers, bad counts, compression pointers in the question,
OPT records where they do not belong, length prefixes that lie. Responses
are read with dnspython when they parse, byte by byte when they must not.
What a packet gets is compared with what the RFCs ask and with what Knot
DNS and NSD do; where Switchboard chose otherwise, docs/dns.md says why.

The edge runs with static records (a wildcard, a CNAME chain, an RRset too
large for UDP) and a [dns] table (a TSIG key, an allow list), on free
loopback ports; every process is killed at the end.
"""
import socket
import struct
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from edge import SERVICES, Edge, closed_port

ZONE = "revelations.studio"
KEY = "xfr-key"
SECRET = "c3dpdGNoYm9hcmQtZTJlLXRyYW5zZmVyLXNlY3JldCE="  # 32 bytes
BIG = [f"big-{i}-" + "x" * 150 for i in range(8)]  # ~1.3 KB: over 1232

RECORDS = [("www", "CNAME", "alias"), ("alias", "CNAME", "codex"),
           ("*.dev", "A", "192.0.2.7"), ("x.deep", "TXT", "below an empty non-terminal")] + \
          [("big", "TXT", t) for t in BIG]

T_A, T_NS, T_SOA, T_TXT, T_OPT, T_IXFR, T_AXFR, T_ANY = 1, 2, 6, 16, 41, 251, 252, 255


def records_toml():
    out = []
    for n, t, d in RECORDS:
        out += ["[[zone.record]]", f'name = "{n}"', f'type = "{t}"', f'data = "{d}"', ""]
    return "\n".join(out)


DNS_TOML = f"""
[dns]
[[dns.key]]
name = "{KEY}"
secret = "{SECRET}"

[[dns.allow_transfer]]
address = "127.0.0.1/32"
key = "{KEY}"

[[dns.allow_transfer]]
address = "127.0.0.2/32"
"""


def dead_upstreams():
    """DNS needs no upstream: a closed port keeps the demo services out."""
    dead = f"http://127.0.0.1:{closed_port()}"
    return {(s, env): dead for s, _, _ in SERVICES for env in ("production", "staging")}


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("wire"), demos=False, upstreams=dead_upstreams(),
             extra_toml="\n" + records_toml() + DNS_TOML).start(dns=True)
    yield e
    e.stop()


# ---- building packets -------------------------------------------------------

def wname(n):
    """A wire name from text (no escapes; labels as given, case kept)."""
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(id=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    """flags 0x0100: RD, a standard query."""
    return struct.pack(">HHHHHH", id, flags, qd, an, ns, ar)


def query(name=f"codex.{ZONE}", qtype=T_A, qclass=1, **kw):
    return header(**kw) + wname(name) + struct.pack(">HH", qtype, qclass)


def opt(payload=1232, version=0, do=False, options=b"", owner=b"\0"):
    ttl = version << 16 | (0x8000 if do else 0)
    return owner + struct.pack(">HHIH", T_OPT, payload, ttl, len(options)) + options


def soa_rr(serial, owner=ZONE):
    rdata = wname("ns1." + ZONE) + wname("hostmaster." + ZONE) + struct.pack(">5I", serial, 0, 0,
                                                                            0, 0)
    return wname(owner) + struct.pack(">HHIH", T_SOA, 1, 0, len(rdata)) + rdata


def frame(msg):
    return len(msg).to_bytes(2, "big") + msg


# ---- sending them -------------------------------------------------------------

def udp(edge, data, src="127.0.0.1", dst="127.0.0.1", port=None, timeout=1.0):
    """Send one datagram; the answer's bytes, or None when none comes within
    timeout (a dropped query: the only way to see it is to wait)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.sendto(data, (dst, port or edge.dns_port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def parse(wire):
    return dns.message.from_wire(wire)


def parse_xfr(wire):
    """A transfer message: its two SOAs are records of their own (dnspython
    would merge them into one RRset)."""
    return dns.message.from_wire(wire, one_rr_per_rrset=True)


def ask(edge, data, **kw):
    r = udp(edge, data, **kw)
    assert r is not None, "no answer"
    return parse(r)


def still_answers(edge):
    """The server answers an ordinary query (after a bad one)."""
    r = ask(edge, query(id=0x4242))
    assert r.id == 0x4242 and r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1


class Tcp:
    """A TCP connection to the edge's DNS port, reading framed messages."""

    def __init__(self, edge, src="127.0.0.1", timeout=5, rcvbuf=None):
        self.s = socket.socket()
        self.s.settimeout(timeout)
        if rcvbuf:  # before connecting: the window scale is chosen then
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.bind((src, 0))
        self.s.connect(("127.0.0.1", edge.dns_port))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read(self):
        """The next message, or None when the server closed the connection."""
        while len(self.buf) < 2 or len(self.buf) < 2 + int.from_bytes(self.buf[:2], "big"):
            try:
                b = self.s.recv(65536)
            except ConnectionResetError:
                b = b""
            if not b:
                return None
            self.buf += b
        n = int.from_bytes(self.buf[:2], "big")
        m, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
        return m

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout,
        having sent nothing more."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


# ---- header, counts, opcodes, classes -----------------------------------------

def test_responses_are_never_answered(edge):
    """QR=1: a response is never answered (no reflection loop between two
    servers, no answers to spoofed answers); over TCP the connection ends."""
    for flags in (0x8000, 0x8100, 0x8400 | 0x0003, 0x8000 | 4 << 11):
        assert udp(edge, query(flags=flags)) is None, hex(flags)
    c = Tcp(edge)
    c.send(frame(query(flags=0x8100)) + frame(query()))
    assert c.read() is None
    c.close()
    still_answers(edge)


@pytest.mark.parametrize("data", [
    b"", b"\x12", header()[:11],  # shorter than a header
    header() + bytes([64]) + b"a" * 64 + b"\0\0\1\0\1",  # a label of 64 bytes
    header() + (bytes([63]) + b"a" * 63) * 4 + b"\0\0\1\0\1",  # a name of 257 bytes
    header() + b"\x05codex\xc0\x0c\0\1\0\1",  # a compression pointer in the question
    header() + b"\xc0\x0c\0\1\0\1",  # a pointer to itself
    header() + b"\xc0\x12\0\1\0\1" + wname("x"),  # a pointer forward
    header() + b"\x41a\0\0\1\0\1",  # label type 0x40 (EDNS0 extended labels, obsolete)
    header() + b"\x81a\0\0\1\0\1",  # label type 0x80 (reserved)
    header() + wname(f"codex.{ZONE}") + b"\0\1",  # question cut short
    header() + b"\x05codex",  # name running past the end
], ids=["empty", "1 byte", "11 bytes", "label 64", "name 257", "pointer", "pointer loop",
        "pointer forward", "label 0x40", "label 0x80", "no qclass", "name cut"])
def test_an_unreadable_question_is_dropped(edge, data):
    """Garbage is dropped, not answered with FORMERR: a reply would echo
    what we cannot read to an address we cannot trust (docs/dns.md)."""
    assert udp(edge, data, timeout=0.5) is None
    still_answers(edge)


@pytest.mark.parametrize("qd", [0, 2, 65535])
def test_qdcount_other_than_one_is_formerr(edge, qd):
    body = b"" if qd == 0 else (wname(f"codex.{ZONE}") + b"\0\1\0\1") * min(qd, 2)
    r = udp(edge, header(id=0xbeef, flags=0x0110, qd=qd) + body)
    # the header alone: ID, opcode, RD and CD copied, no question echoed
    assert len(r) == 12
    id_, flags, qdc, an, ns, ar = struct.unpack(">6H", r)
    assert id_ == 0xbeef and flags & 0x8000 and flags & 0x0100 and flags & 0x0010
    assert flags & 0xf == dns.rcode.FORMERR and not flags & 0x0400  # no AA
    assert (qdc, an, ns, ar) == (0, 0, 0, 0)


@pytest.mark.parametrize("opcode", [1, 2, 3, 4, 5, 6, 15])
def test_other_opcodes_are_notimp(edge, opcode):
    """IQUERY, STATUS, NOTIFY (we are the primary), UPDATE and unassigned
    opcodes: NOTIMP with the opcode copied (RFC 1035 4.1.1)."""
    r = udp(edge, query(id=77, flags=opcode << 11 | 0x0100))
    id_, flags = struct.unpack(">HH", r[:4])
    assert id_ == 77 and flags & 0x8000
    assert (flags >> 11) & 0xf == opcode
    assert flags & 0xf == dns.rcode.NOTIMP
    assert struct.unpack(">4H", r[4:12])[1:] == (0, 0, 0), "no records"


@pytest.mark.parametrize("qclass", [3, 4, 254, 255, 2])
def test_classes_other_than_in_are_refused(edge, qclass):
    """CH, HS, NONE, ANY, CS: we serve class IN only (Knot answers CH with
    its identity and ANY as IN; we REFUSE both, docs/dns.md)."""
    r = ask(edge, query(qclass=qclass))
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA
    assert not r.answer and not r.authority


def test_header_flags(edge):
    """AA on in-zone answers, RD and CD copied, RA, AD and Z clear, the
    opcode and ID copied; flags set in a query that a query does not use
    (AA, TC, RA, Z, an rcode) are ignored."""
    for flags, rd, cd in [(0x0000, False, False), (0x0100, True, False),
                          (0x0110, True, True), (0x07f5, True, True)]:
        r = udp(edge, query(id=0x0a0b, flags=flags))
        id_, f = struct.unpack(">HH", r[:4])
        assert id_ == 0x0a0b
        assert f & 0x8000 and f & 0x0400, "QR, AA"
        assert bool(f & 0x0100) == rd and bool(f & 0x0010) == cd
        assert not f & 0x0080 and not f & 0x0040 and not f & 0x0020, "RA, Z, AD clear"
        assert not f & 0x0200 and f & 0xf == 0, "no TC, NOERROR"


def test_records_in_the_answer_section_of_a_query_are_not_opt(edge):
    """An OPT record is allowed in the additional section only, once
    (RFC 6891 6.1.1); elsewhere, or twice: FORMERR."""
    for data in [query(an=1) + opt(), query(ns=1) + opt(), query(ar=2) + opt() + opt()]:
        r = ask(edge, data)
        assert r.rcode() == dns.rcode.FORMERR and r.edns < 0
    # counts that promise more than the packet has
    assert ask(edge, query(an=1)).rcode() == dns.rcode.FORMERR
    assert ask(edge, query(ar=3) + opt()).rcode() == dns.rcode.FORMERR


def test_trailing_bytes_after_the_message_are_ignored(edge):
    r = ask(edge, query() + b"trailing garbage")
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1


# ---- types ------------------------------------------------------------------

def test_any_gets_one_rrset(edge):
    """RFC 8482: a subset of the RRsets, over UDP and TCP alike."""
    r = ask(edge, query(ZONE, T_ANY))
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
    c = Tcp(edge)
    c.send(frame(query(ZONE, T_ANY)))
    assert len(parse(c.read()).answer) == 1
    c.close()


@pytest.mark.parametrize("qtype", [0, T_OPT, 250, 249, 253, 254, 65535, 48])
def test_meta_and_unknown_types_get_nodata(edge, qtype):
    """Types nothing here has (including TSIG, TKEY, OPT, MAILA/MAILB and
    the reserved 0): NODATA, the SOA in the authority section. (Knot
    answers NOTIMP to type 0; nothing requires it.)"""
    r = ask(edge, query(qtype=qtype))
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert not r.answer
    assert [rr.rdtype for rr in r.authority] == [dns.rdatatype.SOA]


def test_transfers_over_udp(edge):
    """AXFR over UDP: NOTIMP (RFC 5936 4.2), whoever asks. IXFR over UDP:
    our SOA alone, to an address that may transfer (RFC 1995 2); REFUSED
    to one that may not (127.0.0.1 needs the key)."""
    for src in ("127.0.0.1", "127.0.0.2"):
        r = ask(edge, query(ZONE, T_AXFR), src=src)
        assert r.rcode() == dns.rcode.NOTIMP and not r.answer
    r = ask(edge, query(ZONE, T_IXFR, ns=1) + soa_rr(1), src="127.0.0.2")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.SOA]
    r = ask(edge, query(ZONE, T_IXFR, ns=1) + soa_rr(1), src="127.0.0.1")
    assert r.rcode() == dns.rcode.REFUSED and not r.answer


# ---- EDNS -------------------------------------------------------------------

def test_edns_is_answered_with_our_opt(edge):
    r = ask(edge, query(ar=1) + opt(payload=4096))
    assert r.edns == 0 and r.payload == 1232 and r.ednsflags == 0 and not r.options
    # DO copied (RFC 3225 3)
    r = ask(edge, query(ar=1) + opt(do=True))
    assert r.ednsflags & dns.flags.DO
    # options we do not implement are ignored, not echoed: NSID, a client
    # cookie (RFC 7873 5.2.1: a server without cookies ignores it), an
    # unassigned code
    options = (struct.pack(">HH", 3, 0) + struct.pack(">HH", 10, 8) + b"cookie!!" +
               struct.pack(">HH", 65001, 2) + b"ab")
    r = ask(edge, query(ar=1) + opt(options=options))
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1 and r.edns == 0
    assert not r.options
    # Z bits of the query are not copied (RFC 6891 6.1.4)
    r = ask(edge, query(ar=1) + b"\0" + struct.pack(">HHIH", T_OPT, 1232, 0x7fff, 0))
    assert r.ednsflags == 0


def test_edns_version_above_zero_is_badvers(edge):
    """RFC 6891 6.1.3: BADVERS (16: 1 in the OPT's extended rcode, 0 in the
    header), with our version, 0, and no answer."""
    for name in (f"codex.{ZONE}", f"nope.{ZONE}", "example.com"):
        r = ask(edge, query(name, ar=1) + opt(version=1))
        assert r.rcode() == dns.rcode.BADVERS
        assert r.edns == 0 and not r.answer and not r.authority
        assert not r.flags & dns.flags.AA


def test_opt_owner_must_be_the_root(edge):
    """RFC 6891 6.1.2: the OPT's owner is the root. One with another owner
    is malformed: FORMERR, as BIND and NSD answer (it used to be taken for
    EDNS and echoed)."""
    r = ask(edge, query(ar=1) + opt(owner=wname("example.com")))
    assert r.rcode() == dns.rcode.FORMERR and r.edns < 0 and not r.answer


def test_opt_with_a_bad_option_length_is_formerr(edge):
    r = ask(edge, query(ar=1) + opt(options=struct.pack(">HH", 10, 20) + b"short"))
    assert r.rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize("payload", [0, 100, 511])
def test_payload_below_512_counts_as_512(edge, payload):
    """RFC 6891 6.2.5: values below 512 are treated as 512."""
    r = udp(edge, query(f"big.{ZONE}", T_TXT, ar=1) + opt(payload=payload))
    m = parse(r)
    assert m.flags & dns.flags.TC and len(r) <= 512 and m.edns == 0
    # and what fits in 512 is answered whole
    m = ask(edge, query(ar=1) + opt(payload=payload))
    assert not m.flags & dns.flags.TC and len(m.answer) == 1


def test_large_answer_truncated_over_udp_whole_over_tcp(edge):
    """An answer that does not fit: TC=1 with the question (and OPT) only,
    whatever the client's payload (capped at 1232); over TCP it comes
    whole, in the question's case."""
    qname = f"BiG.{ZONE.upper()}"
    for data in (query(qname, T_TXT), query(qname, T_TXT, ar=1) + opt(payload=4096, do=True)):
        r = udp(edge, data)
        m = parse(r)
        assert m.flags & dns.flags.TC and m.flags & dns.flags.AA
        assert not m.answer and not m.authority and len(r) <= 1232
        assert str(m.question[0].name) == qname + "."
    assert parse(udp(edge, query(qname, T_TXT, ar=1) + opt(do=True))).ednsflags & dns.flags.DO
    c = Tcp(edge)
    c.send(frame(query(qname, T_TXT)))
    m = parse(c.read())
    c.close()
    assert not m.flags & dns.flags.TC
    assert sorted(t.strings[0].decode() for t in m.answer[0]) == sorted(BIG)
    assert str(m.answer[0].name) == qname + "."


# ---- names ------------------------------------------------------------------

def test_case_is_kept_in_every_kind_of_answer(edge):
    """0x20: the question and the records owned by the qname keep its
    case, for a plain name, a wildcard, a CNAME chain and an NXDOMAIN."""
    for qname, rcode, first in [(f"CoDeX.{ZONE.title()}", dns.rcode.NOERROR, dns.rdatatype.A),
                                (f"AnY.dEv.{ZONE}", dns.rcode.NOERROR, dns.rdatatype.A),
                                (f"WwW.{ZONE}", dns.rcode.NOERROR, dns.rdatatype.CNAME),
                                (f"NoPe.{ZONE}", dns.rcode.NXDOMAIN, None)]:
        for data in (query(qname), query(qname, ar=1) + opt()):
            m = ask(edge, data)
            assert m.rcode() == rcode
            assert str(m.question[0].name) == qname + "."
            if first:
                assert m.answer[0].rdtype == first
                assert str(m.answer[0].name) == qname + "."


def test_escaped_bytes_in_names(edge):
    """A dot, a zero byte or a byte above 127 inside a label is part of the
    label: such names do not exist here (or are outside the zone)."""
    for label in [b"co.dex", b"co\0dex", b"\xc3\xa9", b"\\", b" "]:
        data = header() + bytes([len(label)]) + label + wname(ZONE) + b"\0\1\0\1"
        m = ask(edge, data)
        assert m.rcode() == dns.rcode.NXDOMAIN and m.flags & dns.flags.AA
        assert m.question[0].name.labels[0] == label
    # "codex.revelations" as one label, then "studio": not our zone
    data = header() + bytes([17]) + b"codex.revelations" + wname("studio") + b"\0\1\0\1"
    assert ask(edge, data).rcode() == dns.rcode.REFUSED


def test_negative_answers(edge):
    """NXDOMAIN and NODATA (a type the name lacks, an empty non-terminal, a
    wildcard without the type) carry the SOA, TTL min(SOA TTL, MINIMUM)
    (RFC 2308 3), AA set, nothing in the answer."""
    for name, qtype, rcode in [(f"nope.{ZONE}", T_A, dns.rcode.NXDOMAIN),
                               (f"a.b.nope.{ZONE}", T_A, dns.rcode.NXDOMAIN),
                               (f"codex.{ZONE}", T_TXT, dns.rcode.NOERROR),
                               (f"deep.{ZONE}", T_A, dns.rcode.NOERROR),
                               (f"x.dev.{ZONE}", T_TXT, dns.rcode.NOERROR)]:
        m = ask(edge, query(name, qtype))
        assert m.rcode() == rcode and m.flags & dns.flags.AA and not m.answer, name
        assert len(m.authority) == 1 and m.authority[0].rdtype == dns.rdatatype.SOA
        assert m.authority[0].ttl == min(300, m.authority[0][0].minimum)


# ---- TCP --------------------------------------------------------------------

def test_tcp_length_zero_closes(edge):
    c = Tcp(edge)
    c.send(b"\0\0")
    assert c.closed()
    c.close()
    still_answers(edge)


def test_tcp_length_beyond_the_data_then_close(edge):
    """The client promises 300 bytes, sends 20 and half-closes: nothing is
    answered, the connection ends, the server goes on."""
    c = Tcp(edge)
    c.send(b"\x01\x2c" + query()[:20])
    c.s.shutdown(socket.SHUT_WR)
    assert c.closed()
    c.close()
    still_answers(edge)


def test_tcp_garbage_closes_after_the_answers_before_it(edge):
    """A malformed message ends the connection (RFC 7766 allows it); the
    queries before it are answered."""
    c = Tcp(edge)
    c.send(frame(query(id=1)) + frame(b"\0\1\0") + frame(query(id=2)))
    assert parse(c.read()).id == 1
    assert c.read() is None
    c.close()


def test_tcp_formerr_keeps_the_connection(edge):
    c = Tcp(edge)
    c.send(frame(header(id=5, qd=0)) + frame(query(id=6)))
    assert struct.unpack(">HH", c.read()[:4]) == (5, 0x8101)
    assert parse(c.read()).id == 6
    c.close()


def test_tcp_pipelined_queries_answered_in_order(edge):
    """RFC 7766 6.2.1.1: pipelined queries, each answer with its query's
    ID; ours come in order (small, negative and large answers mixed)."""
    kinds = [(f"codex.{ZONE}", T_A), (f"nope.{ZONE}", T_A), (f"big.{ZONE}", T_TXT),
             (f"www.{ZONE}", T_A), (ZONE, T_NS)]
    n = 200
    c = Tcp(edge)
    c.send(b"".join(frame(query(*kinds[i % len(kinds)], id=i)) for i in range(n)))
    got = []
    for i in range(n):
        m = c.read()
        assert m is not None, f"closed after {i} answers"
        got.append((parse(m).id, str(parse(m).question[0].name)))
    c.close()
    assert got == [(i, kinds[i % len(kinds)][0] + ".") for i in range(n)]


def test_tcp_query_a_byte_at_a_time_is_answered(edge):
    """A slow client: a whole query sent a byte at a time, within the 2 s
    a begun message has, is answered."""
    c = Tcp(edge)
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = frame(query(id=99))
    for b in msg:
        c.send(bytes([b]))
        time.sleep(0.02)  # the slowness is the point: 0.7 s for the message
    m = parse(c.read())
    assert m.id == 99 and len(m.answer) == 1
    c.close()


def test_tcp_half_closed_client_gets_every_answer(edge):
    """A client may shut down its sending side once its queries are sent
    and then read the answers (RFC 7766 6.2.1: every query is answered). The
    server used to close at the EOF, dropping the answers still queued
    behind a full socket (about 64 KiB of them): here the answers (5 MB)
    outgrow the kernel's buffers because the client reads slowly."""
    n = 4000
    c = Tcp(edge, timeout=10, rcvbuf=4096)
    c.send(b"".join(frame(query(f"big.{ZONE}", T_TXT, id=i)) for i in range(n)))
    c.s.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        m = c.read()
        if m is None:
            break
        assert struct.unpack(">H", m[:2])[0] == got % 65536
        got += 1
        if got % 200 == 0:
            time.sleep(0.01)  # a slow reader keeps the server's socket full
    c.close()
    assert got == n, f"{got} of {n} answers, then the connection was closed"
    # and a half-closed connection with nothing to answer is closed
    c = Tcp(edge)
    c.s.shutdown(socket.SHUT_WR)
    assert c.closed()
    c.close()


# ---- transfers ----------------------------------------------------------------

def test_who_may_transfer(edge):
    """127.0.0.2 may transfer unsigned; 127.0.0.1 only with the key, so
    unsigned it is REFUSED, for AXFR and IXFR alike."""
    c = Tcp(edge, src="127.0.0.1")
    c.send(frame(query(ZONE, T_AXFR)))
    m = parse(c.read())
    assert m.rcode() == dns.rcode.REFUSED and not m.answer and not m.flags & dns.flags.AA
    c.send(frame(query(ZONE, T_IXFR, ns=1) + soa_rr(1)))
    assert parse(c.read()).rcode() == dns.rcode.REFUSED
    c.close()
    c = Tcp(edge, src="127.0.0.2")
    c.send(frame(query(ZONE, T_AXFR)))
    first = parse_xfr(c.read())
    c.close()
    assert first.rcode() == dns.rcode.NOERROR and first.flags & dns.flags.AA
    types = [rr.rdtype for rr in first.answer]
    assert types[0] == dns.rdatatype.SOA and types[-1] == dns.rdatatype.SOA
    # the key's entry does not open the door to another address
    c = Tcp(edge, src="127.0.0.3")
    c.send(frame(query(ZONE, T_AXFR)))
    assert parse(c.read()).rcode() == dns.rcode.REFUSED
    c.close()


def test_transfer_of_a_name_that_is_not_a_zone(edge):
    c = Tcp(edge, src="127.0.0.2")
    c.send(frame(query(f"codex.{ZONE}", T_AXFR)))
    assert parse(c.read()).rcode() == dns.rcode.NOTAUTH
    c.send(frame(query("example.com", T_IXFR, ns=1) + soa_rr(1, "example.com")))
    assert parse(c.read()).rcode() == dns.rcode.NOTAUTH
    c.close()


def our_serial(edge):
    m = ask(edge, query(ZONE, T_SOA))
    return m.answer[0][0].serial


def test_ixfr_from_a_newer_serial_gets_our_soa_alone(edge):
    """RFC 1995 2: a client at our serial, or ahead of it (RFC 1982), gets
    our SOA alone. One behind (unknown to the history) gets the zone,
    AXFR-style. The client's SOA may be written in another case."""
    serial = our_serial(edge)
    for theirs in (serial, (serial + 1) % 2**32, (serial + 2**31 - 1) % 2**32):
        c = Tcp(edge, src="127.0.0.2")
        c.send(frame(query(ZONE.upper(), T_IXFR, ns=1) + soa_rr(theirs)))
        m = parse_xfr(c.read())
        c.close()
        assert m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AA
        assert [rr.rdtype for rr in m.answer] == [dns.rdatatype.SOA], theirs
        assert m.answer[0][0].serial == serial
    c = Tcp(edge, src="127.0.0.2")
    c.send(frame(query(ZONE, T_IXFR, ns=1) + soa_rr((serial - 1) % 2**32)))
    m = parse_xfr(c.read())
    c.close()
    types = [rr.rdtype for rr in m.answer]
    assert types[0] == dns.rdatatype.SOA and types[-1] == dns.rdatatype.SOA and len(types) > 2


def test_ixfr_without_the_clients_soa_is_formerr(edge):
    c = Tcp(edge, src="127.0.0.2")
    c.send(frame(query(ZONE, T_IXFR)))
    assert parse(c.read()).rcode() == dns.rcode.FORMERR
    # its SOA in the answer section instead of the authority section
    c.send(frame(query(ZONE, T_IXFR, an=1) + soa_rr(1)))
    assert parse(c.read()).rcode() == dns.rcode.FORMERR
    c.close()


# ---- the address answers come from ------------------------------------------

def dns_port_of(e):
    line = next(l for l in e.edge.err if "dns on udp+tcp " in l)
    return int(line.split("dns on udp+tcp ", 1)[1].split(",")[0].rsplit(":", 1)[1])


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_udp_answer_comes_from_the_address_asked(tmp_path, listen):
    """Listening on a wildcard address, a query sent to one of the host's
    addresses is answered from that address: a resolver drops an answer
    from another (RFC 1035 4.2.1; dig: "reply from unexpected source").
    127.0.0.2 is ours on loopback, but routes to 127.0.0.1 choose
    127.0.0.1 as the source; the answer used to come from there."""
    e = Edge(tmp_path, demos=False, upstreams=dead_upstreams(), threads=1)
    e.start(args=("--dns", listen))
    try:
        port = dns_port_of(e)
        for dst in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2)
                s.sendto(query(id=0x5151), (dst, port))
                data, frm = s.recvfrom(65535)
            assert frm == (dst, port), f"asked {dst}, answered from {frm[0]}"
            assert parse(data).id == 0x5151
            # and a connected socket (as resolvers use) gets it at all
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2)
                s.connect((dst, port))
                s.send(query(id=0x5252))
                assert parse(s.recv(65535)).id == 0x5252
    finally:
        e.stop()


# ---- rate limiting ----------------------------------------------------------

def test_rrl_slip_keeps_the_opt_record(tmp_path):
    """A response truncated by RRL's slip still carries an OPT when the
    query had one (RFC 6891 7: a responder MUST include it), with the DO
    bit copied: the client sees an EDNS server asking it to use TCP, not a
    server that dropped EDNS. It used to be cut with the records."""
    e = Edge(tmp_path, demos=False, upstreams=dead_upstreams(), threads=1,
             extra_toml="\n[dns]\nrrl = { responses_per_second = 1, slip = 1 }\n")
    e.start(dns=True)
    try:
        slipped = None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            for i in range(20):  # one per second is answered, the rest slip
                s.sendto(query(id=i, ar=1) + opt(do=True), ("127.0.0.1", e.dns_port))
                m = parse(s.recv(65535))
                assert m.id == i
                if m.flags & dns.flags.TC:
                    slipped = m
                    break
        assert slipped is not None, "never limited"
        assert not slipped.answer and not slipped.authority
        assert slipped.edns == 0 and slipped.payload == 1232
        assert slipped.ednsflags & dns.flags.DO
        assert str(slipped.question[0].name) == f"codex.{ZONE}."
        # without EDNS in the query, none in the slip
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(query(id=100), ("127.0.0.1", e.dns_port))
            m = parse(s.recv(65535))
        assert m.flags & dns.flags.TC and m.edns < 0
    finally:
        e.stop()
