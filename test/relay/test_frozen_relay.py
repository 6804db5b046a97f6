"""A frozen relay (SIGSTOP, a stuck host) hurts nobody else: the other
relays' heartbeats show its users offline after the window, terminate its
LISTEN backend (which would pin the cluster's NOTIFY queue), and when it
wakes (SIGCONT) it reconnects, registers again, resyncs its clients, who
catch up and miss nothing, and its users are online again.

The negative control freezes a relay with no peer sweeping it (its peer's
presence_grace is an hour): the NOTIFY queue then grows with every batch,
which shows the bounded-queue check can fail."""
import asyncio
import signal
import time

from conftest import connect, is_msg, make_contacts, new_users, run, sql, wait_until

BODY = "x" * 1500          # a few kB per event: the frozen backend's socket fills fast


def presence_of(user, online):
    return lambda e: e.get("type") == "presence" and e.get("user_id") == user and e.get("online") is online


def listen_pid(relay):
    return sql("SELECT listen_pid FROM chat.relays WHERE relay_id = %s", (relay.name,))[0][0]


def backend_alive(pid):
    return sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))[0][0] == 1


def queue_usage():
    return sql("SELECT pg_notification_queue_usage()")[0][0]


def pages(usage):
    """pg_notification_queue_usage() in 8 kB pages (the queue holds 2^20)."""
    return round(usage * 1048576)


def send_batch(sender, chat, n):
    """n messages in one transaction; their seqs."""
    rows = sql("SELECT (chat.send_message(%s, %s, %s || i) ->> 'seq')::bigint FROM generate_series(1, %s) i",
               (sender, chat, BODY, n))
    return [r[0] for r in rows]


async def receive_all(client, chat, seqs, timeout=15):
    """Wait until client has been sent a message event for each of seqs."""
    want = set(seqs)
    deadline = time.monotonic() + timeout
    while want:
        e = await client.event(is_msg(chat), timeout=max(0.1, deadline - time.monotonic()))
        want.discard(e["seq"])


async def catch_up_all(client, chat, after):
    """Every change after the cursor, page by page."""
    got = []
    while True:
        page = await client.ok("catch_up", chat_id=chat, after=after)
        if not page:
            return got
        got += page
        after = page[-1]["cursor"]


def test_a_frozen_relay_is_cut_off_and_comes_back(relays):
    ra, rb = relays("frozen-a"), relays("frozen-b")       # heartbeat 1 s, grace 2 s
    a, b = new_users()
    chat = make_contacts(a, b)

    async def go():
        cb = await connect(rb, b)
        await cb.ok("presence", user_ids=[a])
        ca = await connect(ra, a)
        await cb.event(presence_of(a, True), timeout=10)
        first = await cb.ok("send", chat_id=chat, body="before the freeze")
        seen = await ca.event(is_msg(chat, first["seq"]))
        cursor = seen["cursor"]
        old_pid = listen_pid(ra)
        assert old_pid and backend_alive(old_pid)

        ra.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            # its user goes offline for b once the window (grace 2 s + a heartbeat) is past
            await cb.event(presence_of(a, False), timeout=15)
            assert time.monotonic() - frozen_at >= 2
            wait_until(lambda: not backend_alive(old_pid), 10, what="the frozen relay's LISTEN backend terminated")
            assert sql("SELECT count(*) FROM chat.presence WHERE relay_id = %s", (ra.name,))[0][0] == 0

            # messages sent meanwhile reach b; the queue does not keep growing
            sent = [first["seq"]]
            usage = []
            for _ in range(6):
                batch = send_batch(b, chat, 100)
                sent += batch
                await receive_all(cb, chat, batch)
                usage.append(queue_usage())
            # pinned, each batch adds ~34 pages (the negative control)
            assert max(pages(u) for u in usage) < 20, [pages(u) for u in usage]
        finally:
            ra.signal(signal.SIGCONT)

        # awake: its LISTEN connection is gone; resync, catch up, online again
        resync = await ca.event(lambda e: e.get("type") == "resync", timeout=20)
        assert resync["reason"] == "relay_reconnected"
        missed = await catch_up_all(ca, chat, cursor)
        assert [m["seq"] for m in missed] == sent[1:]       # every one, in order, once
        await cb.event(presence_of(a, True), timeout=15)
        new_pid = listen_pid(ra)
        assert new_pid != old_pid and backend_alive(new_pid)
        assert sql("SELECT count(*) FROM chat.presence WHERE relay_id = %s AND user_id = %s", (ra.name, a))[0][0] == 1
        # and live delivery works again on the woken relay
        last = await cb.ok("send", chat_id=chat, body="after the freeze")
        await ca.event(is_msg(chat, last["seq"]), timeout=10)
    run(go())
    log = ra.log()
    assert "database listen lost" in log and "listening again: the 1 connected clients get resync" in log, log[-3000:]
    assert "cleared the presence of 1 dead relay(s)" in rb.log()


def test_negative_control_an_unswept_frozen_relay_pins_the_queue(relays):
    """The same freeze with no sweep (the peer's grace is an hour): the LISTEN
    backend stays, the queue grows with every batch; SIGCONT drains it."""
    ra, rb = relays("pinned-a"), relays("pinned-b", presence_grace=3600)
    a, b = new_users()
    chat = make_contacts(a, b)

    async def go():
        cb = await connect(rb, b)
        ca = await connect(ra, a)
        pid = listen_pid(ra)
        base = queue_usage()
        ra.signal(signal.SIGSTOP)
        usage = []
        try:
            deadline = time.monotonic() + 30
            for _ in range(8):
                batch = send_batch(b, chat, 100)
                await receive_all(cb, chat, batch)
                usage.append(queue_usage())
                assert time.monotonic() < deadline
            time.sleep(3)                       # past the window: nobody cuts it off
            assert backend_alive(pid)
        finally:
            ra.signal(signal.SIGCONT)
        # every batch stays queued behind the frozen backend
        seen = [pages(u) for u in usage]
        assert all(x < y for x, y in zip(seen, seen[1:])) and seen[0] > pages(base), seen
        assert seen[-1] >= 100, seen
        wait_until(lambda: queue_usage() < usage[-1] / 4, 20, what="the woken relay drains the queue")
        await ca.event(is_msg(chat, batch[-1]), timeout=20)
    run(go())
