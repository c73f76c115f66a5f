"""A tunnel whose client half-closed and then reset, while the edge still
held bytes for it and the upstream was pushing more, ends at once.

After the client's FIN the edge reads nothing more from it, so only a failed
write shows the reset: the queued write fails, the queue empties, the
upstream is read again and the next write to the client fails at once. This
pins that path (the response timeout, long here, is not what ends it).
"""
import socket
import time

from edge import wait_for
from test_tunnel_review import SWITCH, open_tunnel, pattern, reset, tunnel_edge


def test_a_failed_write_to_a_half_closed_client_ends_the_tunnel(fresh):
    sent, ended = [0], []
    data = pattern(32 << 20, b"held")

    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        conn.settimeout(30)
        try:
            while sent[0] < len(data):
                sent[0] += conn.send(data[sent[0]:sent[0] + 65536])
            ended.append("all sent")
        except OSError as err:
            ended.append(type(err).__name__)
        return None

    # the response timeout is long: the tunnel must end before it
    e = tunnel_edge(fresh, handler, http={"response_timeout_ms": 60000})
    s, _ = open_tunnel(e)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.shutdown(socket.SHUT_WR)  # the edge reads nothing more from it

    def stalled():
        before = sent[0]
        time.sleep(0.3)
        return before and sent[0] == before
    wait_for(stalled, timeout=10, what="the upstream to be held back by the edge's queue")
    assert not ended
    reset(s)
    t0 = time.monotonic()
    wait_for(lambda: ended, timeout=10, what="the upstream's connection to end")
    assert ended != ["all sent"], ended
    assert time.monotonic() - t0 < 10
