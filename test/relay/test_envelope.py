"""The envelope of chat_events ({"to":[…],"ev":{…}}): the event's bytes go
to clients as they were published, alone or batched; a payload that does not
parse whole is refused whole; a large message's fetch holds back only its
own chat."""
import asyncio
import json

from conftest import connect, cursor, publish_sealed, new_users, open_chat, run, sql, wait_until


def publish(*payloads):
    with cursor() as cur:
        publish_sealed(cur, *payloads)


async def raw(cl, timeout=5):
    """The next frame's text, as the relay wrote it."""
    return await asyncio.wait_for(cl.ws.recv(), timeout)


async def nothing_for(cl, seconds):
    try:
        m = await asyncio.wait_for(cl.ws.recv(), seconds)
    except asyncio.TimeoutError:
        return True
    raise AssertionError("unexpected frame: %s" % m)


def test_event_bytes_are_forwarded_alone_or_batched(relays):
    """Spacing and key order inside ev survive: nothing is re-encoded."""
    r = relays()
    (a,) = new_users(1)
    ev1 = '{"v":1, "type":"typing","chat_id":5,  "user_id":9,"note":"] , [ {\\"to\\":[1]}"}'
    ev2 = '{"type":"typing","v":1,"chat_id":6,"user_id":9}'

    async def go():
        cl = await connect(r, a)
        publish('{"to":[%d],"ev":%s}' % (a, ev1))
        assert await raw(cl) == ev1
        publish('[{"to":[1,%d],"ev":%s},{"to":[%d],"ev":%s}]' % (a, ev1, a, ev2))
        assert await raw(cl) == ev1
        assert await raw(cl) == ev2
    run(go())


def test_malformed_payloads_are_refused_whole(relays):
    r = relays()
    (a,) = new_users(1)
    good = '{"to":[%d],"ev":{"v":1,"type":"typing","chat_id":1,"user_id":2}}' % a
    bad = [
        "[%s,{\"to\":[%d],\"ev\":{\"v\":1}" % (good, a),          # the batch is cut short
        "[%s,{\"to\":[\"%d\"],\"ev\":{\"v\":1,\"type\":\"x\"}}]" % (good, a),  # a string id
        good + " ",                                              # trailing bytes
        '{"ev":{"v":1,"type":"typing"},"to":[%d]}' % a,          # keys in another order
        '{"v":1,"type":"typing","chat_id":1,"recipients":[%d]}' % a,  # the old format
        '{"to":null,"ev":{"v":1,"type":"message","chat_id":1}}',  # a broadcast that is not resync
        '{"to":[%d],"ev":{"v":1,"type":"resync","reason":"x"}}' % a,  # a resync addressed to users
        '{"to":[%d],"ev":{"v":1,"type":"pay_now","chat_id":1}}' % a,  # not an event type of the protocol
        '{"to":[%d],"ev":{"v":1,"type":"typing","type":"read"}}' % a,  # duplicate keys
        '{"to":[%d],"ev":[1,2]}' % a,                              # not an object
        '{"to":[99999999999999999999],"ev":{"v":1,"type":"typing"}}',  # id out of range
    ]

    async def go():
        cl = await connect(r, a)
        before = r.metric("chat_relay_events_invalid_total")
        publish(*bad)
        publish(good)
        assert json.loads(await raw(cl))["type"] == "typing"     # the good one, nothing before it
        await nothing_for(cl, 0.3)
        assert r.metric("chat_relay_events_invalid_total") - before == len(bad)
    run(go())
    # refusals are logged at most once per interval, not once each
    assert r.log().count("ignored") == 1


def test_fetched_message_has_the_bytes_of_the_inline_form(relays):
    """An event published with "inline":false is sent with the message the
    relay fetched, byte for byte what the inline event looked like."""
    r = relays()
    a, b = new_users()
    chat = open_chat(a, b)

    async def go():
        cb = await connect(r, b)
        sql("SELECT chat.send_message(%s, %s, %s)", (a, chat, "hello"))
        inline = await raw(cb)
        while json.loads(inline)["type"] == "resync":   # the publisher's first start
            inline = await raw(cb)
        head = inline[:inline.index(',"inline":true,"message":')]
        publish('{"to":[%d],"ev":%s}' % (b, head + ',"inline":false}'))
        assert await raw(cb) == inline
    run(go())
    assert r.metric("chat_relay_message_fetches_total") >= 1


def test_a_fetch_holds_back_only_its_own_chat(relays):
    """While the fetch of chat X's large message hangs (the messages are
    locked), events of chat Y go through at once; X's next event waits for
    the fetch and keeps its order."""
    r = relays()
    a, b = new_users()
    x = open_chat(a, b)
    held = '{"v":1,"type":"message","chat_id":%d,"seq":1,"cursor":1,"sender_id":%d,"inline":false}' % (x, a)
    after_x = '{"v":1,"type":"typing","chat_id":%d,"user_id":%d}' % (x, a)
    other = '{"v":1,"type":"typing","chat_id":%d,"user_id":%d}' % (x + 1000000, a)

    async def go():
        cb = await connect(r, b)
        sql("SELECT chat.send_message(%s, %s, %s)", (a, x, "big one"))
        await cb.event(lambda e: e.get("type") == "message")   # the real event, out of the way
        with cursor() as lock:
            lock.execute("BEGIN")
            lock.execute("LOCK TABLE chat.messages IN ACCESS EXCLUSIVE MODE")
            publish('{"to":[%d],"ev":%s}' % (b, held), '{"to":[%d],"ev":%s}' % (b, after_x),
                    '{"to":[%d],"ev":%s}' % (b, other))
            assert await raw(cb) == other                 # not behind chat X's fetch
            wait_until(lambda: r.metric("chat_relay_message_fetches_total") >= 1, what="fetch started")
            await nothing_for(cb, 0.3)                    # X's events wait for the fetch
            lock.execute("ROLLBACK")
        first = json.loads(await raw(cb))
        assert (first["chat_id"], first["seq"], first["inline"], first["message"]["body"]) == (x, 1, True, "big one")
        assert await raw(cb) == after_x
    run(go())
