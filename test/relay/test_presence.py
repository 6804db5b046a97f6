"""Presence across relays: online as soon as a connection opens anywhere,
offline when the last one closes or its relay dies; last_seen stored."""
from conftest import connect, new_users, open_chat, run, sql, wait_until


def presence_of(user):
    return lambda e: e.get("type") == "presence" and e.get("user_id") == user


def test_presence_across_relays(relays):
    ra, rb = relays("pres-a"), relays("pres-b")
    a, b, stranger = new_users(3)
    open_chat(a, b)

    async def go():
        cb = await connect(rb, b)
        ca1 = await connect(ra, a)
        e = await cb.event(presence_of(a))
        assert e["online"] is True and "recipients" not in e
        st = await cb.ok("presence", user_ids=[a, stranger])
        assert [(p["user_id"], p["online"]) for p in st] == [(a, True)]   # strangers are left out
        ca2 = await connect(rb, a)                      # a second device, on the other relay
        await ca1.close()
        await ca2.ok("ping")
        assert [p["online"] for p in await cb.ok("presence", user_ids=[a])] == [True]
        assert not [e for e in cb.events if presence_of(a)(e) and not e["online"]]
        await ca2.close()
        e = await cb.event(presence_of(a))
        assert e["online"] is False and e["last_seen"]
        st = await cb.ok("presence", user_ids=[a])
        assert st[0]["online"] is False and st[0]["last_seen"]
    run(go())


def test_dead_relay_is_cleared(relays):
    ra, rb = relays("dead-a"), relays("dead-b")
    a, b = new_users()
    open_chat(a, b)

    async def go():
        cb = await connect(rb, b)
        await connect(ra, a)
        assert (await cb.event(presence_of(a)))["online"] is True
        ra.kill9()
        e = await cb.event(presence_of(a), timeout=15)
        assert e["online"] is False
    run(go())
    assert sql("SELECT count(*) FROM chat.presence WHERE relay_id = 'dead-a'")[0][0] == 0


def test_sigterm_closes_with_1012_and_clears_presence(relays):
    r = relays("term-a")
    a = new_users(1)[0]

    async def go():
        c = await connect(r, a)
        wait_until(lambda: sql("SELECT count(*) FROM chat.presence WHERE user_id = %s", (a,))[0][0] == 1)
        r.signal(15)
        import websockets
        try:
            while True:
                await c.recv(timeout=10)
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd.code == 1012
    run(go())
    assert r.proc.wait(20) == 0
    assert sql("SELECT count(*) FROM chat.presence WHERE relay_id = 'term-a'")[0][0] == 0
    assert sql("SELECT count(*) FROM chat.relays WHERE relay_id = 'term-a'")[0][0] == 0
