"""Staying up: a relay killed with clients attached, PostgreSQL restarted
under load, slow readers, silent connections."""
import asyncio
import json
import os
import re
import socket
import subprocess
import time
import uuid

import pytest
import websockets

from conftest import (ORIGIN, PGBIN, connect, cursor, is_msg, jwt, new_users, notify, open_chat, refused_login,
                      run, sql, wait_until)


def test_kill9_clients_reconnect_and_catch_up_exactly(relays):
    ra, rb = relays("k9-a"), relays("k9-b")
    a, b = new_users()
    chat = open_chat(a, b)

    async def go():
        reader = await connect(ra, b)
        writer = await connect(rb, a)
        first = await writer.ok("send", chat_id=chat, body="before")
        seen = await reader.event(is_msg(chat))
        cursor = seen["cursor"]
        assert cursor == first["cursor"]
        ra.kill9()
        missed = [await writer.ok("send", chat_id=chat, body="while away %d" % i) for i in range(5)]
        await writer.ok("edit", chat_id=chat, seq=first["seq"], body="before, edited")
        # the reader's connection dies with its relay; it reconnects to the other one
        try:
            await reader.recv(timeout=5)
        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError):
            pass
        again = await connect(rb, b)
        changes = await again.ok("catch_up", chat_id=chat, after=cursor)
        assert [(m["seq"], m["body"]) for m in changes] == \
            [(m["seq"], m["body"]) for m in missed] + [(1, "before, edited")]
        assert await again.ok("catch_up", chat_id=chat, after=changes[-1]["cursor"]) == []
    run(go())


def test_clients_connected_before_the_first_listen_get_resync(relays):
    """A relay starting while its database refuses it still lets browsers in
    (they reconnect the moment it is up); what is committed before it first
    listens must not be lost to them: resync when it does."""
    with refused_login("chat_relay_late") as late_login:
        r = relays("late", wait=False, db=late_login, backoff_min_ms=50, backoff_max_ms=300)
        a, b = new_users()
        chat = open_chat(a, b)

        async def go():
            reader = await connect(r, b)
            refused = await reader.request("catch_up", chat_id=chat, after=0)
            assert refused["type"] == "error" and refused["code"] == "unavailable", refused
            sent = sql("SELECT (chat.send_message(%s, %s, 'before the relay listened') ->> 'seq')::int",
                       (a, chat))[0][0]
            sql("ALTER ROLE chat_relay_late LOGIN")
            resync = await reader.event(lambda e: e.get("type") == "resync", timeout=15)
            assert resync["reason"] == "relay_reconnected"
            wait_until(r.healthy, 15, what="relay healthy")
            rows = await reader.ok("catch_up", chat_id=chat, after=0)
            assert [(m["seq"], m["body"]) for m in rows] == [(sent, "before the relay listened")]
            await reader.close()
        try:
            run(go())
        finally:
            assert r.stop() == 0


@pytest.mark.parametrize("event_lib", ["libev", "poll"])
def test_reconnects_keep_to_the_backoff_delays(relays, event_lib):
    """A database that refuses the relay is retried at the backoff it logs,
    not at the next 1 s tick: lws 4.1's libev glue let a timer due sooner
    than its armed one wait for it (a teardown set for 1 us once never ran)."""
    with refused_login("chat_relay_refused") as refused:
        r = relays("refused_" + event_lib, wait=False, db=refused, event_lib=event_lib,
                   backoff_min_ms=20, backoff_max_ms=100)
        try:
            time.sleep(3)
            log = r.log()
            attempts = log.count("database pool 1: cannot connect")
            delays = [int(d) for d in re.findall(r"database pool 1: reconnecting in (\d+) ms", log)]
            # each attempt waits at most 100 ms plus a refused connection (a
            # few ms): dozens in 3 s; a timer left to the 1 s tick allows ~3
            assert attempts >= 10, log
            assert delays and max(delays) <= 100, delays
        finally:
            assert r.stop() == 0


def tcp_conninfo(hosts="127.0.0.1", ports=None, connect_timeout=5):
    """The relay's conninfo over TCP: hosts and ports as libpq lists (the
    test cluster's port by default)."""
    return "host=%s port=%s dbname=%s user=chat_relay connect_timeout=%d" % (
        hosts, ports or os.environ["PGPORT"], os.environ.get("PGDATABASE", "chat_test"), connect_timeout)


@pytest.fixture
def slow_lookup_lib(tmp_path):
    """An LD_PRELOAD whose getaddrinfo() of a name takes SLOW_GETADDRINFO_MS
    (for the build without ASan, which must come first)."""
    lib = str(tmp_path / "slow_getaddrinfo.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", lib, os.path.join(os.path.dirname(__file__),
                    "slow_getaddrinfo.c"), "-ldl"], check=True)
    return lambda ms: ["env", "LD_PRELOAD=" + lib, "SLOW_GETADDRINFO_MS=%d" % ms]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("event_lib", ["libev", "poll"])
def test_database_over_tcp(relays, event_lib):
    """Over TCP the connect completes in a later WRITEABLE callback (a unix
    socket connects at once), and lws 4.1 clears POLLOUT after that
    callback: a write asked for inside it was lost, and the relay never sent
    its start-up packet."""
    r = relays("tcp_" + event_lib, db=tcp_conninfo(), event_lib=event_lib)
    a, b = new_users()
    chat = open_chat(a, b)

    async def go():
        writer, reader = await connect(r, a), await connect(r, b)
        sent = await writer.ok("send", chat_id=chat, body="over tcp")
        seen = await reader.event(is_msg(chat, sent["seq"]))
        assert seen["message"]["body"] == "over tcp"
    run(go())


@pytest.mark.parametrize("event_lib", ["libev", "poll"])
def test_refused_tcp_database_neither_spins_nor_stalls(relays, event_lib):
    """A refused TCP connection leaves a socket that is always ready (error,
    hang-up). Under libev it kept lws from running its timers: 100% CPU, no
    reconnect, no token expiry, no exit on SIGTERM."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]     # bound, never listening: refused
        r = relays("tcp_refused_" + event_lib, wait=False, db=tcp_conninfo(ports=closed_port),
                   event_lib=event_lib, backoff_min_ms=20, backoff_max_ms=100)
        u = new_users(1)[0]

        async def go():
            c = await connect(r, u, token=jwt(u, exp_in=1))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await c.recv(timeout=8)
            return closed.value.rcvd.code if closed.value.rcvd else None
        cpu0 = cpu_seconds(r.proc.pid)
        assert run(go()) == 1008, r.log()
        time.sleep(1)
        log = r.log()
        assert log.count("database pool 1: cannot connect") >= 5, log
        assert cpu_seconds(r.proc.pid) - cpu0 < 1.5, "relay busy while its database refuses it"
        assert r.http("/healthz")[0] == 503
        started = time.monotonic()
        assert r.stop() == 0
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("event_lib", ["libev", "poll"])
def test_the_next_address_is_watched(relays, event_lib):
    """When an address refuses, libpq closes its socket and opens one for
    the next address, which often gets the same number. The relay went on
    watching its dup of the dead socket: always ready, so it spun at 80-97%
    CPU, and under libev its timers (heartbeat, expiry, SIGTERM) stopped."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
        db = tcp_conninfo("127.0.0.1,127.0.0.1", "%d,%s" % (closed_port, os.environ["PGPORT"]))
        r = relays("next-address-" + event_lib, db=db, event_lib=event_lib)
        cpu0 = cpu_seconds(r.proc.pid)
        time.sleep(2)
        assert cpu_seconds(r.proc.pid) - cpu0 < 0.5, "relay busy while idle"
        started = time.monotonic()
        assert r.stop() == 0
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_an_address_that_hangs_is_tried_last(relays, host):
    """libpq has no timeout of its own in a non-blocking connect: the relay
    gives up after db's connect_timeout, and its next attempt puts the
    address that hung after the others instead of hanging on it again."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)           # accepted by the kernel, never answered
    db = tcp_conninfo(host + "," + host, "%d,%s" % (listener.getsockname()[1], os.environ["PGPORT"]),
                      connect_timeout=2)
    try:
        started = time.monotonic()
        r = relays("hung-address-" + host, db=db)   # waits until healthy (20 s at most)
        assert time.monotonic() - started < 8, r.log()
        assert "cannot connect: timeout" in r.log()
    finally:
        listener.close()


def test_host_names_are_looked_up_off_the_loop(relays, slow_lookup_lib):
    """libpq resolves a host name with a blocking getaddrinfo() inside
    PQconnectPoll. With a resolver that takes 1.5 s, /healthz still answers
    at once while the relay's three connections look localhost up."""
    started = time.monotonic()
    r = relays("slow-lookup", wait=False, db=tcp_conninfo("localhost"), log_level="debug",
               wrap=slow_lookup_lib(1500))
    # serving first (under load an ASan relay takes a moment to listen: a
    # refused connection is not the 503 looked for below)
    r.wait_healthy(database=False)
    slowest = 0.0
    while not r.healthy():
        t = time.monotonic()
        assert r.http("/healthz")[0] == 503
        slowest = max(slowest, time.monotonic() - t)
        assert time.monotonic() - started < 20, r.log()
        time.sleep(0.05)
    assert time.monotonic() - started >= 1.4, "the lookup was not slowed down"
    assert slowest < 0.5, "/healthz took %.2f s during the lookup" % slowest
    assert "database listen: host localhost looked up: " in r.log()


def test_a_host_list_mixing_sockets_addresses_and_names(relays):
    """hostaddr is a list matched to host entry by entry: a socket directory
    first has an empty item, which once lost its comma (libpq then refused
    the two lists as mismatched)."""
    # relays() waits until /healthz says the database is up (20 s at most)
    r = relays("mixed-hosts", db=tcp_conninfo("/nonexistent-socket-dir,127.0.0.1,localhost"))
    assert "could not match" not in r.log()


def test_a_lookup_that_fails_or_outlasts_connect_timeout_is_retried(relays, slow_lookup_lib):
    """A name that does not resolve, and a resolver slower than db's
    connect_timeout: the relay says so, serves 503 meanwhile, keeps
    retrying, and stops at once on SIGTERM."""
    r = relays("no-such-host", wait=False, db=tcp_conninfo("no-such-host.invalid"),
               backoff_min_ms=20, backoff_max_ms=100)
    wait_until(lambda: r.log().count('could not look up host "no-such-host.invalid"') >= 6,
               what="lookups failing and retried")
    assert r.http("/healthz")[0] == 503

    slow = relays("slow-lookup-timeout", wait=False, db=tcp_conninfo("localhost", connect_timeout=2),
                  wrap=slow_lookup_lib(4000))
    wait_until(lambda: "database listen: cannot connect: timeout looking the host up" in slow.log(), 6,
               what="the lookup given up at connect_timeout")
    assert slow.http("/healthz")[0] == 503
    for relay in (r, slow):
        started = time.monotonic()
        assert relay.stop() == 0
        assert time.monotonic() - started < 5


def pg_ctl(*args):
    datadir = os.environ["PGDATA_DIR"]
    # -l: the restarted server keeps writing the log later suites read
    cmd = [os.path.join(PGBIN, "pg_ctl"), "-D", datadir, "-l", os.path.join(datadir, "server.log"), *args]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=120)


def test_postgres_restart_under_load_loses_no_acknowledged_message(relays):
    r = relays("pgr", backoff_min_ms=50, backoff_max_ms=500)
    a, b = new_users()
    chat = open_chat(a, b)
    acked = {}
    unavailable = [0]
    saw_unhealthy = [False]

    async def sender(c, stop):
        i = 0
        while not stop.is_set():
            cid = str(uuid.uuid4())
            body = "load %d" % i
            i += 1
            while True:                       # retry with the same client_id until acknowledged
                m = await c.request("send", chat_id=chat, body=body, client_id=cid, timeout=20)
                if m["type"] == "ok":
                    acked[cid] = m["result"]["seq"]
                    break
                assert m["code"] in ("unavailable", "rate_limited"), m
                unavailable[0] += m["code"] == "unavailable"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.02)

    async def go():
        c = await connect(r, a, token=jwt(a, exp_in=600))
        watcher = await connect(r, b)
        stop = asyncio.Event()
        task = asyncio.create_task(sender(c, stop))
        await asyncio.sleep(1.0)
        before = len(acked)
        assert before > 0
        loop = asyncio.get_running_loop()
        restart = loop.run_in_executor(None, pg_ctl, "restart", "-m", "fast", "-w", "-t", "60")
        while not restart.done():
            if not r.healthy():
                saw_unhealthy[0] = True
            await asyncio.sleep(0.01)
        await restart
        await loop.run_in_executor(None, lambda: wait_until(r.healthy, 30, what="healthy again"))
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(task, 30)
        assert len(acked) > before
        await watcher.event(lambda e: e.get("type") == "resync", timeout=10)
        history = []
        before_seq = None
        while True:
            page = await watcher.ok("history", chat_id=chat, page_size=1000,
                                    **({"before_seq": before_seq} if before_seq else {}))
            history += page
            if len(page) < 1000:
                break
            before_seq = page[-1]["seq"]
        stored = {m["client_id"]: m["seq"] for m in history}
        for cid, seq in acked.items():
            assert stored.get(cid) == seq, (cid, seq)
        assert len(history) == len(stored)            # nothing stored twice
    run(go())
    assert saw_unhealthy[0]
    assert r.metric("chat_relay_db_reconnects_total") >= 1


async def slow_reader(r, user):
    """A client of user that reads nothing: a 4 KB receive buffer, one
    message queued at most."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", r.port))
    return await websockets.connect(r.url(jwt(user)), origin=ORIGIN, sock=sock, max_queue=1,
                                    read_limit=4096, close_timeout=2)


def test_slow_reader_is_closed_with_1013(relays):
    # a long grace: under a loaded machine the sends below can outlast a short one,
    # and then the reader never gets to see the close frame
    r = relays("slow", send_queue=64, send_queue_bytes=262144, slow_close_timeout=180, ping_interval=300)
    a, b, fast_user = new_users(3)
    chat = open_chat(a, b)
    open_chat(a, fast_user)
    fast_chat = open_chat(fast_user, a)

    async def go():
        slow = await slow_reader(r, b)
        fast = await connect(r, fast_user)
        body = "x" * 3000
        for _ in range(12):        # small transactions: the extension's event queue holds 4 MB
            sql("SELECT count(chat.send_message(%s, %s, %s || i)) FROM generate_series(1, 250) i",
                (a, chat, body))
        sql("SELECT chat.send_message(%s, %s, 'to the fast one')", (a, fast_chat))
        await fast.event(is_msg(fast_chat), timeout=30)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_until(lambda: r.metric("chat_relay_queue_drops_total") >= 1, 30))
        got = 0
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
                got += 1
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1013, closed
        assert got < 3000
        assert (await fast.request("ping"))["type"] == "ok"
    run(go())
    assert r.healthy()


def test_slow_reader_of_a_trickle_is_closed_with_1013(relays):
    """Events one per transaction, so each arrives in a database read of its
    own: frames the socket cannot take must stay in the relay's bounded
    queue (and close the reader with 1013), not pile up below it."""
    # pings every 300 s: the reader answers none once it stops reading, and a
    # slow machine must not have it closed as silent (35 s by default) first
    r = relays("trickle", send_queue=64, send_queue_bytes=262144, slow_close_timeout=180, ping_interval=300)
    a, b = new_users()
    chat = open_chat(a, b)

    async def go():
        slow = await slow_reader(r, b)
        body = "y" * 3990       # 1,500 of them outgrow the kernel's socket buffers (4 MB at most)
        with cursor() as cur:   # one connection, one transaction per message
            for i in range(1500):
                cur.execute("SELECT chat.send_message(%s, %s, %s)", (a, chat, body + str(i)))
                if i % 100 == 99 and r.metric("chat_relay_queue_drops_total") >= 1:
                    break
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_until(lambda: r.metric("chat_relay_queue_drops_total") >= 1, 30))
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1013, closed
    run(go())
    assert r.healthy()


def test_held_writes_survive_a_reader_that_lags_and_catches_up(relays):
    """Coalescing always on, long holds: one reader falls behind, so its
    frames go out in WRITEABLE (after lws's partial writes) while held writes
    go on around it; the others keep up. Each gets every event once, in
    order."""
    r = relays("lag", coalesce_rate=1, coalesce_ms=200, send_queue=100000, send_queue_bytes=1 << 30,
               ping_interval=300)
    lagging, *others = new_users(4)
    recipients = [lagging] + others
    n, pad = 400, "z" * 5800    # near the most a sealed payload holds

    async def go():
        slow = await slow_reader(r, lagging)
        quick = [await connect(r, u) for u in others]

        async def drain(ws, loads):
            got = []
            while len(got) < n:
                m = loads(await asyncio.wait_for(ws.recv(), 30))
                if m.get("type") == "edit":
                    got.append(m["seq"])
            return got

        async def publish():
            with cursor() as cur:
                for i in range(1, n + 1):
                    notify(cur, "edit", [i], recipients, chat_id=9, pad=pad)
                    if i % 4 == 0:      # for about 2 s, so events keep coming while it reads
                        await asyncio.sleep(0.02)

        async def lag_then_read():
            await asyncio.sleep(0.7)    # its socket fills, lws keeps the rest
            return await drain(slow, json.loads)
        results = await asyncio.gather(publish(), lag_then_read(),
                                       *(drain(c.ws, json.loads) for c in quick))
        for got in results[1:]:
            assert got == list(range(1, n + 1))
    run(go())
    assert r.metric("chat_relay_held_writes_total") > 0


def test_silent_connections_are_closed(relays):
    r = relays("ping", ping_interval=1, ping_timeout=1)
    u = new_users(1)[0]

    async def go():
        alive = await connect(r, u)          # answers pings
        raw = socket.create_connection(("127.0.0.1", r.port))
        raw.sendall(("GET /ws?access_token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n" % (jwt(u), ORIGIN)).encode())
        raw.settimeout(10)
        start = time.monotonic()
        data = b""
        while True:                          # read (and never answer) until the relay hangs up
            chunk = await asyncio.get_running_loop().run_in_executor(None, raw.recv, 4096)
            if not chunk:
                break
            data += chunk
        assert b"101" in data.split(b"\r\n")[0]
        assert time.monotonic() - start < 8
        await asyncio.sleep(0.5)
        assert (await alive.request("ping"))["type"] == "ok"
    run(go())
