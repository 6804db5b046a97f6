"""Lifecycles, driven through the protocol at the edges where they are easy
to get wrong. A connection (relay/conn.c): HTTP -> OPEN -> CLOSING ->
CLOSED, closed while requests are in flight, killed during the slow-close
grace, or gone from under it. The presence channel (relay/presence.c):
SIGTERM while an update is in flight must drain it before relay_gone, or the
update lands after it and leaves a row for a relay that is gone. And /livez,
which says the loop runs whatever the database. Relays run at log_level
debug, which logs every edge taken; none may log a refused one."""
import asyncio
import http.client
import json
import os
import signal
import socket
import struct
import time

import websockets

from conftest import ORIGIN, connect, db, jwt, new_users, open_chat, run, sql, wait_until

REFUSED_EDGE = "is not an edge of its lifecycle"


def request(relay, path, method="GET"):
    """(status, body) of one HTTP request on a connection of its own."""
    c = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    try:
        c.request(method, path, headers={} if method in ("GET", "HEAD") else {"Content-Length": "0"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def health(relay):
    return json.loads(relay.http("/healthz")[1])


def waiting_in_db(pattern):
    """Statements of the relays' sessions waiting for a lock, like pattern."""
    return sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'chat_relay' "
               "AND wait_event_type = 'Lock' AND query LIKE %s", (pattern,))[0][0]


def in_executor(fn):
    return asyncio.get_running_loop().run_in_executor(None, fn)


def assert_no_refused_edge(relay):
    assert REFUSED_EDGE not in relay.log(), relay.log()[-4000:]


def slow_reader(relay, user):
    """A raw WebSocket of user that never reads once it is open (4 KB
    receive buffer): what the relay writes stays in the sockets."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", relay.port))
    sock.sendall(upgrade_request(jwt(user)))
    status, _, rest = read_response(sock)
    assert status.split()[1] == "101", status
    assert json.loads(read_frame(sock, rest))["type"] == "welcome"
    return sock


def send_text(sock, text):
    """One masked (client) text frame."""
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def flood(relay, sock):
    """Fill the reader's socket, then its queue, until the relay closes it
    with 1013: pings with the longest id there is (128 control characters,
    768 bytes in JSON), each answered (pong, or rate_limited) with that id.
    Replies, not events: no database on the way. In small bursts, and with
    a queue of 1 MB: a burst of replies longer than the queue, all from one
    read, would close a reader that is not slow (its socket still taking
    more)."""
    ping = json.dumps({"type": "ping", "id": "\x01" * 128})
    for round in range(5000):
        for _ in range(16):
            send_text(sock, ping)
        time.sleep(0.002)
        if round % 20 == 19 and relay.metric("chat_relay_queue_drops_total") >= 1:
            return time.monotonic()
    raise AssertionError("never closed with 1013")


def test_livez_answers_while_the_database_is_down(relays):
    r = relays("livez-down", wait=False, db="host=127.0.0.1 port=1 dbname=none user=chat_relay")
    status, body = request(r, "/livez")
    assert (status, json.loads(body)) == (200, {"status": "alive"})
    assert r.http("/healthz")[0] == 503            # not ready: no database
    for method in ("HEAD", "POST", "PUT"):
        status, body = request(r, "/livez", method)
        assert status == 405, method
        assert body == (b"" if method == "HEAD" else b"GET only\n"), method
    up = relays("livez-up")
    assert request(up, "/livez")[0] == 200


def test_closed_with_requests_in_flight(relays):
    """An open connection closed by its client, and one closing on its own
    (token expired: 1008), each with requests waiting in the database: the
    answers that come after find no connection, and nothing leaks (ASan)."""
    r = relays("inflight", log_level="debug", jwt_leeway=0)
    a, b = new_users()
    chat = open_chat(a, b)
    sql("SELECT chat.send_message(%s, %s, 'one')", (a, chat))     # history of an empty chat reads no table
    blocker = db()
    blocker.autocommit = False
    blocker.cursor().execute("LOCK TABLE chat.messages IN ACCESS EXCLUSIVE MODE")

    async def go():
        gone = await connect(r, a)
        expiring = await connect(r, b, token=jwt(b, exp_in=3))
        for c in (gone, expiring):
            for i in range(3):
                await c.ws.send(json.dumps({"type": "history", "id": i + 1, "chat_id": chat}))
        await in_executor(lambda: wait_until(lambda: waiting_in_db("%chat.history%") >= 1, 10))
        await gone.close()                                  # OPEN -> CLOSED
        try:                                                # OPEN -> CLOSING -> CLOSED
            while True:
                m = await expiring.recv(timeout=10)
                assert m.get("type") not in ("ok", "error"), m     # nothing answered yet
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd.code == 1008
        await in_executor(lambda: wait_until(lambda: health(r)["connections"] == 0, 10))
        assert waiting_in_db("%chat.history%") >= 1         # still in flight
        blocker.rollback()                                  # the answers come now
        again = await connect(r, a)
        assert [m["body"] for m in await again.ok("history", chat_id=chat)] == ["one"]
        await again.close()
    try:
        run(go())
    finally:
        blocker.rollback()
        blocker.close()
    wait_until(lambda: health(r)["connections"] == 0)
    log = r.log()
    assert "OPEN -> CLOSING" in log and "CLOSING -> CLOSED" in log and "OPEN -> CLOSED" in log
    assert_no_refused_edge(r)


def test_a_slow_reader_leaves_closing_within_the_slow_close_timeout(relays):
    """Closed with 1013, a reader that never reads but keeps talking stays
    CLOSING (counted, its messages ignored) until its close frame finds room
    in the socket or slow_close_timeout runs out, whichever comes first
    (the kernel decides when the first happens), then is CLOSED: counts
    back to zero, and the user offline."""
    r = relays("slowclose", flood_close=1000000, send_queue=100000, send_queue_bytes=1048576, slow_close_timeout=3,
               ping_interval=300, log_level="debug")
    b = new_users(1)[0]
    online = lambda: sql("SELECT count(*) FROM chat.presence WHERE user_id = %s", (b,))[0][0]
    ping = json.dumps({"type": "ping", "id": 1})
    with slow_reader(r, b) as slow:
        wait_until(lambda: online() == 1)
        dropped = flood(r, slow)
        while health(r)["connections"] == 1 and time.monotonic() - dropped < 15:
            try:
                send_text(slow, ping)                       # ignored: the connection is CLOSING
            except OSError:
                pass                                        # killed: reset
            time.sleep(0.01)
        assert time.monotonic() - dropped < 8               # never later than the grace
        assert health(r) == dict(health(r), connections=0, users=0)
        wait_until(lambda: online() == 0)
        assert r.metric("chat_relay_requests_total") > 0
    log = r.log()
    closing = log.index("OPEN -> CLOSING")
    assert "send queue full" in log[:closing] and "CLOSING -> CLOSED" in log[closing:]
    assert log.count("user %d connected" % b) == 1
    assert_no_refused_edge(r)


def test_a_slow_reader_gone_while_closing(relays):
    """The same reader goes away during a long grace: its connection is
    closed then, not when the grace ends; SIGTERM then finds no one."""
    r = relays("slowgone", flood_close=1000000, send_queue=100000, send_queue_bytes=1048576, slow_close_timeout=120,
               ping_interval=300, log_level="debug")
    b = new_users(1)[0]
    slow = slow_reader(r, b)
    flood(r, slow)
    assert health(r)["connections"] == 1
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    slow.close()                                            # a reset
    wait_until(lambda: health(r)["connections"] == 0, 15)
    assert "CLOSING -> CLOSED" in r.log()
    assert_no_refused_edge(r)
    r.signal(signal.SIGTERM)
    assert r.proc.wait(20) == 0


def test_sigterm_drains_a_presence_update_before_relay_gone(relays):
    """The update that says the user came online is stuck on a row lock when
    SIGTERM comes. relay_gone must wait for it: sent at once, it would commit
    first and the update would then leave a presence row for a relay that is
    gone (the user online for presence_grace, until another relay clears it)."""
    name = "drain-%d" % new_users(1)[0]
    r = relays(name, shutdown_timeout=30, heartbeat_interval=1, log_level="debug")
    a = new_users(1)[0]
    sql("INSERT INTO chat.last_seen (user_id, last_seen) VALUES (%s, now())", (a,))
    blocker = db()
    blocker.autocommit = False
    blocker.cursor().execute("SELECT 1 FROM chat.last_seen WHERE user_id = %s FOR UPDATE", (a,))

    async def go():
        c = await connect(r, a)
        await in_executor(lambda: wait_until(lambda: waiting_in_db("%presence_%") >= 1, 10))
        r.signal(signal.SIGTERM)
        try:
            while True:
                await c.recv(timeout=10)
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd.code == 1012
        await in_executor(lambda: wait_until(lambda: "presence: BUSY -> DRAINING" in r.log(), 10))
        await asyncio.sleep(1.0)
        assert r.proc.poll() is None                        # waiting for the update
        assert request(r, "/livez")[0] == 200               # alive while it stops
        h = health(r)
        assert h["shutting_down"] is True and h["connections"] == 0
    try:
        run(go())
    finally:
        blocker.rollback()                                  # the update goes through now
        blocker.close()
    assert r.proc.wait(20) == 0
    assert sql("SELECT count(*) FROM chat.presence WHERE relay_id = %s", (name,))[0][0] == 0
    assert sql("SELECT count(*) FROM chat.relays WHERE relay_id = %s", (name,))[0][0] == 0
    log = r.log()
    assert log.index("presence: DRAINING -> GONE") < log.index("presence: GONE -> STOPPED")
    assert_no_refused_edge(r)


def read_response(sock):
    """One HTTP response off a raw socket: (status line, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed before a response: %r" % data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(4096)
    return lines[0], headers, body


def read_frame(sock, data):
    """The payload of the first server frame (final, text, unmasked)."""
    def need(n):
        nonlocal data
        while len(data) < n:
            chunk = sock.recv(4096)
            assert chunk, "closed inside a frame"
            data += chunk
    need(2)
    assert data[0] == 0x81 and data[1] & 0x80 == 0, data[:2]
    length, start = data[1] & 0x7f, 2
    if length == 126:
        need(4)
        length, start = int.from_bytes(data[2:4], "big"), 4
    need(start + length)
    return data[start:start + length]


def upgrade_request(token):
    return ("GET /ws?access_token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n" % (token, ORIGIN)).encode()


def test_http_then_upgrade_on_one_connection(relays):
    """A kept-alive connection answers HTTP, then upgrades (HTTP -> OPEN on
    the same session data), or is refused (HTTP -> CLOSED); no refused edge
    either way, and the counts come back to zero."""
    r = relays("keepalive", log_level="debug")
    a = new_users(1)[0]
    for token, want in ((jwt(a), "101"), ("not-a-token", "401")):
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, body = read_response(s)
            assert status.startswith("HTTP/1.1 200") and json.loads(body) == {"status": "alive"}
            s.sendall(upgrade_request(token))
            status, _, rest = read_response(s)
            assert status.split()[1] == want, status
            if want == "101":
                assert json.loads(read_frame(s, rest))["type"] == "welcome"
                assert health(r)["connections"] == 1
    wait_until(lambda: health(r)["connections"] == 0 and health(r)["users"] == 0)
    log = r.log()
    assert "HTTP -> OPEN" in log and "OPEN -> CLOSED" in log and "HTTP -> CLOSED" in log
    assert_no_refused_edge(r)
