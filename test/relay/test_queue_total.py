"""The bound on the bytes queued for all connections together
(max_total_queue_bytes, relay/writer.c): at it, the largest queue is closed
with 1013, even below its own send_queue_bytes, while a reader that keeps
up goes on; a frame queued for many counts once; chat_relay_queued_bytes
comes back to 0 when the queues are gone."""
import asyncio
import json
import re
import socket
import struct
import time

from conftest import connect, cursor, new_users, notify, open_chat, run, sql, wait_until
from test_lifecycle import send_text, slow_reader

TOTAL = 1 << 20
ROWS = 60           # of 4 kB: a page of about 250 kB (chat.page_max_bytes: 256 kB)
PING = json.dumps({"type": "ping", "id": "\x01" * 128})     # a 768-byte answer each


def queued(relay):
    return relay.metric("chat_relay_queued_bytes")


def settled(relay):
    """The gauge once the answers to what was sent are all queued."""
    last = queued(relay)
    while True:
        time.sleep(0.3)
        now = queued(relay)
        if now == last:
            return now
        last = now


def fill(relay, sock, until):
    """Pings the reader never reads the answers to, until the relay's queues
    hold at least until bytes (the reader's socket buffers fill first)."""
    for _ in range(5000):
        for _ in range(16):
            send_text(sock, PING)
        time.sleep(0.002)
        if queued(relay) >= until:
            return settled(relay)
    raise AssertionError("the queues never reached %d bytes" % until)


def top_up(relay, sock, room):
    """A few pings more while more than room bytes are left under TOTAL."""
    left = TOTAL - settled(relay)
    while left > room:
        for _ in range(4):
            send_text(sock, PING)
        left = TOTAL - settled(relay)
    assert left > 0, left
    return TOTAL - left


def close_code(sock, timeout=30):
    """Read the stream to its close frame: the code (None: no close frame)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        while len(data) >= 2:
            n, start = data[1] & 0x7f, 2
            if n == 126:
                if len(data) < 4:
                    break
                n, start = int.from_bytes(data[2:4], "big"), 4
            if len(data) < start + n:
                break
            if data[0] & 0x0f == 0x8:
                return int.from_bytes(data[start:start + 2], "big")
            data = data[start + n:]
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk


def test_the_largest_queue_is_closed_at_the_total_bound(relays):
    """Two readers that stopped reading hold most of max_total_queue_bytes
    between them, each far below its own send_queue_bytes (4 MiB); a reader
    that keeps up asks for a 250 kB page, more than is left: the larger of
    the two is closed with 1013, the page is answered."""
    r = relays("total-queue", max_total_queue_bytes=TOTAL, send_queue=100000, flood_close=1000000,
               ping_interval=300, slow_close_timeout=60)
    a, b, reader, writer = new_users(4)
    chat = open_chat(writer, reader)
    sql("SELECT count(chat.send_message(%s, %s, repeat('x', 3990) || i)) FROM generate_series(1, %s) i",
        (writer, chat, ROWS))
    slow = {a: slow_reader(r, a), b: slow_reader(r, b)}
    try:
        after_a = fill(r, slow[a], TOTAL // 2 - 100000)
        fill(r, slow[b], TOTAL - 150000)
        after_b = top_up(r, slow[b], 200000)    # less room than the page takes
        assert after_a > 300000 and after_b - after_a > 300000 and after_b < TOTAL, (after_a, after_b)

        async def read_a_page():
            cl = await connect(r, reader)
            page = await cl.ok("history", chat_id=chat, page_size=ROWS)
            assert len(page) == ROWS and len(json.dumps(page)) > TOTAL - after_b
            assert (await cl.request("ping"))["type"] == "ok"
            await cl.close()
        run(read_a_page())
        assert r.metric("chat_relay_total_queue_drops_total") == 1
        assert r.metric("chat_relay_queue_drops_total") == 0     # no queue passed its own bound
        m = re.search(r"user (\d+): send queues hold \d+ bytes, at max_total_queue_bytes: "
                      r"closing the largest \(\d+ frames, (\d+) bytes\) with 1013", r.log())
        assert m, r.log()[-3000:]
        closed, kept = int(m.group(1)), ({a, b} - {int(m.group(1))}).pop()
        assert int(m.group(2)) < 4 << 20
        assert close_code(slow[closed]) == 1013
        assert 0 < queued(r) < TOTAL                             # the other's queue
        slow[kept].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        slow[kept].close()                                       # a reset
        wait_until(lambda: queued(r) == 0, 15)
        wait_until(lambda: r.metric("chat_relay_connections") == 0, 15)
    finally:
        for s in slow.values():
            s.close()


def test_a_frame_queued_for_many_counts_once(relays):
    """One event to 30 connections is one buffer: 30 copies of its 5 kB
    would pass a 64 kB bound, the frame itself does not."""
    r = relays("total-shared", max_total_queue_bytes=65536)
    users = new_users(30)

    async def go():
        clients = [await connect(r, u) for u in users]
        with cursor() as cur:
            notify(cur, "edit", [1], users, chat_id=11, pad="p" * 5000)
        for cl in clients:
            ev = await cl.event(lambda e: e.get("type") == "edit" and e.get("chat_id") == 11, timeout=10)
            assert len(ev["pad"]) == 5000
        for cl in clients:
            await cl.close()
    run(go())
    assert r.metric("chat_relay_total_queue_drops_total") == 0
    assert r.metric("chat_relay_queued_bytes") == 0
