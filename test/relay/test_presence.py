"""Presence across relays: online as soon as a connection opens anywhere,
offline when the last one closes or its relay dies; last_seen stored.
Presence changes reach only the connections that subscribed with a
presence request, for users the database let them see (contacts, no
block); a block ends the subscriptions between the two at once."""
import asyncio

from conftest import connect, make_contacts, new_users, open_chat, run, sql, wait_until


def presence_of(user):
    return lambda e: e.get("type") == "presence" and e.get("user_id") == user


async def no_event(client, pred, wait=1.0):
    """Nothing matching pred arrives within wait seconds (a ping flushes)."""
    await asyncio.sleep(wait)
    await client.ok("ping")
    assert not [e for e in client.events if pred(e)], client.events


def test_presence_across_relays(relays):
    ra, rb = relays("pres-a"), relays("pres-b")
    a, b, stranger = new_users(3)
    make_contacts(a, b)

    async def go():
        cb = await connect(rb, b)
        st = await cb.ok("presence", user_ids=[a, stranger])
        assert [(p["user_id"], p["online"]) for p in st] == [(a, False)]   # strangers are left out
        ca1 = await connect(ra, a)
        e = await cb.event(presence_of(a))
        assert e["online"] is True and "recipients" not in e and e["version"] > st[0]["version"]
        ca2 = await connect(rb, a)                      # a second device, on the other relay
        await ca1.close()
        await ca2.ok("ping")
        assert [p["online"] for p in await cb.ok("presence", user_ids=[a])] == [True]
        assert not [e for e in cb.events if presence_of(a)(e) and not e["online"]]
        await ca2.close()
        e = await cb.event(presence_of(a))
        assert e["online"] is False and e["last_seen"]
        st = await cb.ok("presence", user_ids=[a])
        assert st[0]["online"] is False and st[0]["last_seen"] == e["last_seen"]
        assert st[0]["version"] == e["version"]
    run(go())


def test_presence_goes_only_to_subscribed_connections(relays):
    """A contact's two tabs: only the one that asked hears of changes; one
    that asked with subscribe:false does not; a closed one's subscriptions
    are gone."""
    r = relays()
    a, b = new_users(2)
    make_contacts(a, b)

    async def go():
        watching = await connect(r, b)
        other_tab = await connect(r, b)
        one_off = await connect(r, b)
        assert len(await watching.ok("presence", user_ids=[a])) == 1
        assert len(await one_off.ok("presence", user_ids=[a], subscribe=False)) == 1
        assert r.metric("chat_relay_presence_subscriptions") == 1
        ca = await connect(r, a)
        assert (await watching.event(presence_of(a)))["online"] is True
        await no_event(other_tab, presence_of(a))
        await no_event(one_off, presence_of(a))
        await watching.close()
        wait_until(lambda: r.metric("chat_relay_presence_subscriptions") == 0, 5)
        await ca.close()
        await no_event(other_tab, presence_of(a))
    run(go())


def test_a_stranger_cannot_watch_anyone(relays):
    """Opening a chat with someone, even writing to them, shows nothing of
    their presence until they answer."""
    r = relays()
    victim, stranger = new_users(2)
    chat = open_chat(stranger, victim)
    sql("SELECT chat.send_message(%s, %s, 'hello?')", (stranger, chat))

    async def go():
        cs = await connect(r, stranger)
        assert await cs.ok("presence", user_ids=[victim]) == []
        assert r.metric("chat_relay_presence_subscriptions") == 0
        cv = await connect(r, victim)
        await no_event(cs, presence_of(victim))
        await cv.close()
        await no_event(cs, presence_of(victim))
        sql("SELECT chat.send_message(%s, %s, 'yes?')", (victim, chat))     # the victim answers
        assert [p["user_id"] for p in await cs.ok("presence", user_ids=[victim])] == [victim]
        await connect(r, victim)
        assert (await cs.event(presence_of(victim)))["online"] is True
    run(go())


def test_a_block_ends_presence_and_typing_both_ways(relays):
    r = relays()
    a, b = new_users(2)
    chat = make_contacts(a, b)

    async def go():
        ca = await connect(r, a)
        cb = await connect(r, b)
        assert len(await ca.ok("presence", user_ids=[b])) == 1
        assert len(await cb.ok("presence", user_ids=[a])) == 1
        await ca.ok("typing", chat_id=chat)
        assert (await cb.event(lambda e: e.get("type") == "typing"))["user_id"] == a
        await ca.ok("block", other_id=b)                  # a blocks b
        wait_until(lambda: r.metric("chat_relay_presence_subscriptions") == 0, 5)
        for c in (ca, cb):                                # what was queued before the block
            await c.ok("ping")
            assert not [e for e in c.events if e.get("type") == "block"]   # never forwarded
            c.events.clear()
        assert await cb.ok("presence", user_ids=[a]) == []      # the blocked one cannot ask again
        assert await ca.ok("presence", user_ids=[b]) == []      # nor the blocker
        await ca.ok("typing", chat_id=chat)
        await no_event(cb, lambda e: e.get("type") == "typing")
        ca2 = await connect(r, a)                         # a's second device comes online
        await ca2.close()
        await no_event(cb, presence_of(a))
        cb2 = await connect(r, b)
        await cb2.close()
        await no_event(ca, presence_of(b))
    run(go())


def test_subscriptions_per_connection_are_bounded(relays):
    """Past max_presence_subscriptions the oldest subscription goes."""
    r = relays(max_presence_subscriptions=2)
    me, x, y, z = new_users(4)
    for other in (x, y, z):
        make_contacts(me, other)

    async def go():
        c = await connect(r, me)
        await c.ok("presence", user_ids=[x])
        await c.ok("presence", user_ids=[y, z])
        assert r.metric("chat_relay_presence_subscriptions") == 2
        online = lambda u: sql("SELECT count(*) FROM chat.presence WHERE user_id = %s", (u,))[0][0]
        for other in (x, y, z):                 # each really comes and goes (not coalesced away)
            co = await connect(r, other)
            wait_until(lambda: online(other) == 1, 10)
            await co.close()
            wait_until(lambda: online(other) == 0, 10)
        await c.event(lambda e: presence_of(z)(e) and e["online"] is False)
        await c.ok("ping")
        heard = {e["user_id"] for e in c.events if e.get("type") == "presence"} | {z}
        assert heard == {y, z}, c.events
    run(go())


def test_dead_relay_is_cleared(relays):
    ra, rb = relays("dead-a"), relays("dead-b")
    a, b = new_users()
    make_contacts(a, b)

    async def go():
        cb = await connect(rb, b)
        await cb.ok("presence", user_ids=[a])
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


def test_bad_presence_requests_are_refused_and_subscribe_nothing(relays):
    """A presence request with a subscribe that is not a boolean, more than
    1,000 users or ids that are not integers is refused as invalid, and
    subscribes nobody."""
    r = relays()
    a, b = new_users(2)
    make_contacts(a, b)

    async def go():
        c = await connect(r, a)
        for bad in ({"user_ids": [b], "subscribe": "yes"}, {"user_ids": list(range(1, 1002))},
                    {"user_ids": [b, "x"]}, {"user_ids": b}):
            m = await c.request("presence", **bad)
            assert m["type"] == "error" and m["code"] == "invalid" and m["reason"] == "bad_param", (bad, m)
        assert r.metric("chat_relay_presence_subscriptions") == 0
        cb = await connect(r, b)
        await no_event(c, presence_of(b))
        await cb.close()
    run(go())
