"""Harness for end-to-end tests of `switchboard serve`.

Starts real demo services and the real edge on free ports with a temporary
declaration and data directory, waits for readiness by reading what each
process prints (never by sleeping), and kills every process at the end.
"""
import contextlib
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "revelations"
SB = os.environ.get("SB_SERVE_BIN", str(ROOT / "build" / "switchboard"))


def shim(name):
    """The path of a test-only shared object of tests/e2e/shim/ (`make e2e`
    builds them into build/shim, or SB_SHIM_DIR)."""
    return os.path.join(os.environ.get("SB_SHIM_DIR", os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "shim")), name)


def preload_env(path, **extra):
    """Environment entries that preload the shim at path, with extra
    variables; under ASan the shim comes first, and ASan is told to let it."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": path, **extra,
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}

DEMO = os.environ.get("SB_DEMO", str(ROOT / "build" / "demo-service"))

SERVICES = [
    ("codex-web", "apps/web/wrangler.toml", "codex"),
    ("stripe-webhook-handler", "workers/stripe-webhook-handler/wrangler.toml", "api"),
    ("auth-worker", "workers/auth/wrangler.toml", "auth"),
]


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port on 127.0.0.1 free for both TCP and UDP (DNS listens on both),
    for a server that starts later (NSD). It is taken from below the
    kernel's ephemeral range, so the ports the kernel hands out meanwhile
    (port 0 binds, outgoing connections) cannot be it."""
    lo, _ = _ephemeral_range()
    for _ in range(200):
        port = random.randrange(10000, lo) if lo > 11000 else 0
        t = socket.socket()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", port))
            port = t.getsockname()[1]
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
    raise RuntimeError("no free port")


def wait_for(pred, timeout=5, what="condition", errors=()):
    """Poll pred until it returns a true value (returned), for at most
    timeout seconds; exceptions in errors count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
        except errors:
            v = None
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"{what}: not reached in {timeout} s")


class Proc:
    """A child process whose output lines are collected by threads."""

    def __init__(self, argv, env=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, env=env)
        self.out, self.err = [], []
        self.q = queue.Queue()
        self.readers = [threading.Thread(target=self._drain, args=(stream, sink), daemon=True)
                        for stream, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.readers:
            t.start()

    def _drain(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            sink.append(line)
            self.q.put(line)
        self.q.put(None)

    def wait_line(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.argv[0]}: no line matched; stderr: {self.err[-20:]}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.argv[0]} exited {self.p.wait()}: {self.err[-20:]}")
            if pred(line):
                return line

    def wait(self, timeout=None):
        """Wait for the process to exit and for its last lines to be in
        out and err (the reader threads run behind the exit)."""
        rc = self.p.wait(timeout=timeout)
        for t in self.readers:
            t.join(timeout=10)
        return rc

    def stop(self, sig=15, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for t in self.readers:
            t.join(timeout=10)
        return self.p.returncode


def start_demo(name, env="production", secrets=None, extra=()):
    e = dict(os.environ)
    if secrets:
        e["SWITCHBOARD_SECRETS"] = secrets
    p = Proc([DEMO, "--name", name, "--env", env, "--listen", "127.0.0.1:0", *extra], env=e)
    line = p.wait_line(lambda l: l.startswith("listening on"))
    p.port = int(line.rsplit(":", 1)[1])
    p.url = f"http://127.0.0.1:{p.port}"
    return p


def edge_sockets(port):
    """(state, send queue bytes) of the local TCP sockets on port, from
    /proc/net/tcp (state 1 is ESTABLISHED)."""
    out = []
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[2] != "00000000:0000":
            out.append((int(f[3], 16), int(f[4].split(":")[0], 16)))
    return out


def refused_at_the_limit(e):
    """A new connection to e is closed without an answer (a reset counts):
    max_connections reached and nothing idle to take its place."""
    extra = e.connect()
    extra.settimeout(10)
    try:
        assert extra.recv(100) == b""
    except ConnectionResetError:
        pass
    extra.close()


def listening(port):
    """Is a local TCP socket listening on port (/proc/net/tcp, state 0A)?"""
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and int(f[3], 16) == 0x0A:
            return True
    return False


CLI = os.environ.get("SB_BIN", str(ROOT / "build" / "switchboard"))


def run_cli(*args, check=None, env=None, timeout=60):
    """Run the CLI (SB_BIN) with args; a crash or a sanitizer report is
    never an acceptable answer; check: the exit status wanted."""
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {p.stderr}"
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def closed_port():
    """A local TCP port nothing listens on: one the kernel just handed out
    and took back (not a fixed number that something else may use)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listen_local(backlog=64):
    """A TCP socket listening on 127.0.0.1 at a free port, and its http URL."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s, f"http://127.0.0.1:{s.getsockname()[1]}"


class LocalUpstream:
    """A test upstream on a free local port: each accepted connection is
    served by self._serve(conn) on a thread of its own. stop() closes the
    listening socket (Edge.stop calls it)."""

    def __init__(self, backlog=64):
        self.srv, self.url = listen_local(backlog)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        raise NotImplementedError

    @staticmethod
    def _read_head(conn, buf):
        """The next request head on conn after the bytes buf, and the bytes
        after it; (None, what came) when the peer closes first."""
        while b"\r\n\r\n" not in buf:
            b = conn.recv(65536)
            if not b:
                return None, buf
            buf += b
        head, rest = buf.split(b"\r\n\r\n", 1)
        return head, rest

    def stop(self, sig=None):
        # shutdown first: a close alone leaves the socket listening while
        # the accept thread is blocked in accept(), for the rest of the
        # session, and it goes on taking connections
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()


class Recorder(LocalUpstream):
    """An upstream that records every request it receives (health checks
    aside) and answers 200, to prove what the edge forwarded. A test may set
    response to other bytes for a while (restoring OK afterwards), or to a
    list of pieces sent apart."""

    OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

    def __init__(self):
        self.response = self.OK
        self.received = []
        self.lock = threading.Lock()
        super().__init__()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                head, buf = self._read_head(conn, buf)
                if head is None:
                    if buf:
                        with self.lock:
                            self.received.append(buf)
                    return
                if head.startswith(b"GET /health "):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    continue
                # the body, by its framing, so that a body arriving in a
                # segment of its own is not taken for the next request
                lower = head.lower()
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
                chunked = b"\r\ntransfer-encoding: chunked" in lower
                while True:
                    if chunked:
                        end = (b"\r\n" + buf).find(b"\r\n0\r\n\r\n")
                        end = end + 5 if end >= 0 else -1
                    else:
                        need = int(m.group(1)) if m else 0
                        end = need if len(buf) >= need else -1
                    if end >= 0:
                        break
                    b = conn.recv(65536)
                    if not b:  # cut off: what came is what was forwarded
                        with self.lock:
                            self.received.append(head + b"\r\n\r\n" + buf)
                        return
                    buf += b
                with self.lock:
                    self.received.append(head + b"\r\n\r\n" + buf[:end])
                    answer = self.response
                buf = buf[end:]
                if isinstance(answer, list):  # pieces, each in its own segment
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for piece in answer:
                        conn.sendall(piece)
                        time.sleep(0.003)
                else:
                    conn.sendall(answer)
        except OSError:
            return
        finally:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.received)


class Framed(LocalUpstream):
    """An upstream that reads each request by its framing, as a strict
    server does (Content-Length, or chunk sizes), and answers each with a
    200 "ok". received: every request head, in order; take(): the exact
    bytes each connection received since the last take (health checks
    aside). Bytes that do not frame end the connection."""

    def __init__(self):
        self.received = []
        self.conns = []
        self.lock = threading.Lock()
        super().__init__()

    def _serve(self, conn):
        log = bytearray()
        with self.lock:
            self.conns.append(log)
        buf = b""

        def need(n):
            nonlocal buf
            while len(buf) < n:
                b = conn.recv(65536)
                if not b:
                    raise EOFError
                with self.lock:
                    log.extend(b)
                buf += b

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                need(len(buf) + 1)
            l, buf = buf.split(b"\r\n", 1)
            return l
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    need(len(buf) + 1)
                head, buf = buf.split(b"\r\n\r\n", 1)
                if head.startswith(b"GET /health "):
                    with self.lock:
                        del log[:len(log) - len(buf)]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    continue
                with self.lock:
                    self.received.append(head + b"\r\n\r\n")
                low = head.lower()
                m = re.search(rb"\r\ncontent-length: *(\d+)", low)
                if b"\r\ntransfer-encoding: chunked" in low:
                    while True:
                        size = int(line().split(b";")[0], 16)
                        if size == 0:
                            while line():  # trailers, then the empty line
                                pass
                            break
                        need(size + 2)
                        buf = buf[size + 2:]
                elif m:
                    need(int(m.group(1)))
                    buf = buf[int(m.group(1)):]
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except (EOFError, OSError, ValueError):
            return
        finally:
            conn.close()

    def take(self):
        """The bytes received since the last take, one entry per connection
        that received any."""
        with self.lock:
            out = [bytes(c) for c in self.conns if c]
            for c in self.conns:
                del c[:]
        return out


class Scripted(LocalUpstream):
    """An upstream whose every request is answered by handler(conn, head,
    rest), rest being the bytes read after the head; handler returns the
    bytes still unread, or None to close. Health checks get a 200. heads
    lists every request head received."""

    def __init__(self, handler):
        self.handler = handler
        self.heads = []
        super().__init__()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                head, buf = self._read_head(conn, buf)
                if head is None:
                    return
                if head.startswith(b"GET /health "):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    continue
                self.heads.append(head)
                buf = self.handler(conn, head, buf)
                if buf is None:
                    return
        except OSError:
            return
        finally:
            conn.close()


class Edge:
    """The example, copied to a temp dir, served by demo services."""

    def __init__(self, tmp, http=None, threads=2, extra_toml="", demos=True, upstreams=None):
        self.dir = Path(tmp) / "decl"
        shutil.copytree(EXAMPLE, self.dir, ignore=shutil.ignore_patterns(".switchboard"))
        self.data = Path(tmp) / "data"
        self.procs = []
        self.demos = {}
        self.threads = threads
        ups = dict(upstreams or {})
        try:
            if demos:
                for svc, _, _ in SERVICES:
                    for env in ("production", "staging"):
                        if (svc, env) in ups:
                            continue
                        dep = f"{svc}-{env}"
                        d = start_demo(svc, env, self.secret(dep))
                        self.procs.append(d)
                        self.demos[(svc, env)] = d
                        ups[(svc, env)] = d.url
        except BaseException:
            self.kill_all()  # the caller never gets this Edge to stop
            raise
        http = {"health_interval_ms": 200, "health_timeout_ms": 500, **(http or {})}
        self.write_decl(ups, http, extra_toml)
        self.edge = None

    def secret(self, deployment):
        out = subprocess.run([SB, "secret", "-c", self.dir, "--data", self.data, deployment],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def write_decl(self, ups, http, extra_toml=""):
        lines = ['data_dir = "../data"', "", "[[zone]]", 'name = "revelations.studio"',
                 'addresses = ["127.0.0.1"]', 'nameservers = ["ns1.revelations.studio"]', "",
                 "[tenants]", 'service = "codex-web"', 'reserved = ["ns1"]', 'static = ["codex"]',
                 "", "[http]"]
        for k, v in http.items():
            lines.append(f"{k} = {json.dumps(v)}")
        for svc, wr, _ in SERVICES:
            lines += ["", "[[service]]", f'wrangler = "{wr}"']
            for env in ("production", "staging"):
                if (svc, env) in ups:
                    lines.append(f'upstream.{env} = "{ups[(svc, env)]}"')
            if (svc, "preview") in ups:
                up = ups[(svc, "preview")]
                if isinstance(up, list):  # a command Switchboard starts
                    lines.append(f"upstream.preview = {{ command = {json.dumps(up)} }}")
                else:
                    lines.append(f'upstream.preview = "{up}"')
        lines += ["", "[[webhook]]", 'provider = "stripe"',
                  'url = "https://api.revelations.studio/webhooks/stripe/payments"',
                  'service = "stripe-webhook-handler"', extra_toml]
        (self.dir / "switchboard.toml").write_text("\n".join(lines) + "\n")

    def start(self, wait_healthy=True, dns=False, env=None, prefix=(), args=()):
        """prefix: a command that execs the rest (e.g. a shell setting a
        limit first); the edge keeps its pid. args: more options of serve."""
        args = [*map(str, args)]
        # the test's own --listen replaces the default (twice is an error)
        listen = [] if "--listen" in args else ["--listen", "127.0.0.1:0"]
        argv = [*prefix, SB, "serve", "-c", str(self.dir), *listen,
                "--threads", str(self.threads), *args]
        if dns:
            argv += ["--dns", "127.0.0.1:0"]
        self.edge = Proc(argv, env={**os.environ, **env} if env else None)
        self.procs.append(self.edge)
        try:
            if dns:
                line = self.edge.wait_line(lambda l: "dns on udp+tcp " in l)
                self.dns_port = int(
                    line.split("dns on udp+tcp ", 1)[1].split(",")[0].rsplit(":", 1)[1])
            line = self.edge.wait_line(lambda l: "listening on http://" in l)
            self.port = int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1])
        except BaseException:
            # a failed start leaves nothing running: fixtures that never got
            # the edge do not stop it
            self.kill_all()
            raise
        return self

    def kill_all(self):
        """Stop every process of this Edge at once, checking nothing."""
        for p in reversed(self.procs):
            try:
                p.stop(sig=9)
            except Exception:
                pass

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def status(self):
        """The admin API's GET /v1/status, over the Unix socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.data / "admin.sock"))
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body, _ = read_response(s)
        assert status == 200, body
        return json.loads(body)

    def access_log(self):
        return [json.loads(l) for l in self.edge.out if l.startswith("{")]

    def stop(self):
        """Stop everything; fail if the edge reported a sanitizer error or
        did not exit cleanly on SIGTERM."""
        rc = None
        for p in reversed(self.procs):
            r = p.stop(sig=9 if p is not self.edge else 15)
            if p is self.edge:
                rc = r
        if self.edge is not None:
            bad = [l for l in self.edge.err if "Sanitizer" in l or "runtime error" in l]
            assert not bad, "\n".join(self.edge.err[-40:])
            assert rc == 0, f"edge exited {rc}: {self.edge.err[-20:]}"


def all_threads_in(pid, state):
    """Every thread of pid is in state: "S" (blocked: the serving loop sits
    in epoll_wait with nothing left over from its last round) or "T"
    (stopped: kill() returns before the threads have stopped)."""
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return all(st == state for st in states)


@contextlib.contextmanager
def frozen(e, idle_first=False):
    """The edge stopped (SIGSTOP) for the block, every thread of it (kill()
    returns before they have stopped): what arrives meanwhile is ready at
    once when it goes on, in the order it came, so that events one pass of
    its loop sees together can be made in the order a race needs. With
    idle_first, the edge's threads are all blocked first (its loop in
    epoll_wait with nothing left over from its last round)."""
    pid = e.edge.p.pid
    if idle_first:
        wait_for(lambda: all_threads_in(pid, "S"), what="the edge idle")
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: all_threads_in(pid, "T"), what="the edge stopped")
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def closed_by_peer(s, timeout=3):
    """True when the other end closed s (EOF or a reset) within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def read_until_close(s, timeout=5, resets=False):
    """Everything s receives until the peer closes (or timeout passes
    without a byte; with resets, or it resets the connection); s is
    closed."""
    s.settimeout(timeout)
    chunks = []
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except (OSError if resets else socket.timeout):
        pass
    s.close()
    return b"".join(chunks)


def raw(edge, data, timeout=5):
    """Send raw bytes, return everything the edge answers until it closes."""
    s = edge.connect(timeout)
    s.sendall(data)
    return read_until_close(s, timeout)


def read_response(sock, head_only=False, pending=b""):
    """Read one HTTP/1.1 response (Content-Length or chunked) from sock,
    after the bytes already received (pending: the rest of a previous
    call). Returns status, headers, body and the bytes after it."""
    buf = pending
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536)
        if not b:
            raise EOFError(buf)
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers.setdefault(k.strip().lower(), v.strip())
    body = rest
    if head_only or status in (204, 304) or status < 200:
        return status, headers, b"", rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            b = sock.recv(65536)
            if not b:
                raise EOFError(body)
            body += b
        return status, headers, body[:n], body[n:]
    if headers.get("transfer-encoding") == "chunked":
        out = b""
        while True:
            while b"\r\n" not in body:
                b = sock.recv(65536)
                if not b:
                    raise EOFError(body)
                body += b
            size_line, body = body.split(b"\r\n", 1)
            size = int(size_line, 16)
            while len(body) < size + 2:
                b = sock.recv(65536)
                if not b:
                    raise EOFError(body)
                body += b
            out += body[:size]
            body = body[size + 2:]
            if size == 0:
                return status, headers, out, body
    while True:
        b = sock.recv(65536)
        if not b:
            return status, headers, body, b""
        body += b


def request(edge, host, path="/", method="GET", headers=None, body=None, sock=None):
    own = sock is None
    s = sock or edge.connect()
    h = {"Host": host, **(headers or {})}
    if body is not None and "Content-Length" not in h and "Transfer-Encoding" not in h:
        h["Content-Length"] = str(len(body))
    data = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    s.sendall(data.encode() + (body or b""))
    status, hdrs, rbody, _ = read_response(s, head_only=(method == "HEAD"))
    if own:
        s.close()
    return status, hdrs, rbody
