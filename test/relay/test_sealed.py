"""The sealed channel (docs/security.md, "Sealed events"): any role that can
connect may LISTEN and NOTIFY on chat_events, so the relay takes only what
opens under the extension's keys, each payload once; an outsider reads
nothing by LISTEN; a large message is fetched only for recipients that are
members."""
import asyncio
import base64
import contextlib
import json
import os
import select
import time

import psycopg2

from conftest import (conninfo, connect, cursor, envelope, is_msg, new_users, notify,
                      open_chat, publish_sealed, run, sql, wait_until)

OUTSIDER = "t_sealed_outsider"


@contextlib.contextmanager
def outsider():
    """A connection of a login role with no chat role at all: what every
    login role of a cluster is by default."""
    sql("DROP ROLE IF EXISTS %s" % OUTSIDER)
    sql("CREATE ROLE %s LOGIN" % OUTSIDER)
    sql("GRANT CONNECT ON DATABASE %s TO %s" % (os.environ.get("PGDATABASE", "chat_test"), OUTSIDER))
    conn = psycopg2.connect(conninfo(OUTSIDER))
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()
        sql("DROP OWNED BY %s" % OUTSIDER)
        sql("DROP ROLE %s" % OUTSIDER)


def outsider_notify(conn, payload):
    with conn.cursor() as cur:
        cur.execute("SELECT pg_notify('chat_events', %s)", (payload,))


def heard(conn, timeout=5):
    """The next payload the LISTEN connection conn hears."""
    deadline = time.monotonic() + timeout
    while not conn.notifies:
        left = deadline - time.monotonic()
        assert left > 0, "nothing heard on chat_events"
        select.select([conn], [], [], left)
        conn.poll()
    return conn.notifies.pop(0).payload


def refused(r, reason):
    body = r.http("/metrics")[1]
    for line in body.splitlines():
        if line.startswith('chat_relay_payloads_refused_total{reason="%s"}' % reason):
            return float(line.split()[-1])
    raise AssertionError("no refused counter for %s" % reason)


def typing_marker(a, chat_id):
    """A real typing event to a, published by the extension."""
    with cursor() as cur:
        notify(cur, "typing", [0], [a], chat_id=chat_id, user_id=1)


def test_an_outsider_cannot_forge_an_event(relays):
    """Plain JSON (the old format), a made-up seal under the real key id, an
    unknown key id: none reaches the client, each is counted by reason, and
    fifty of them make one warning, not fifty."""
    r = relays()
    a, b = new_users(2)
    chat = open_chat(a, b)
    forged = envelope(dict(v=1, type="message", chat_id=chat, seq=1, cursor=1, sender_id=b,
                           inline=True, message=dict(body="FORGED: pay to IBAN")), [a])
    junk = base64.b64encode(os.urandom(200)).decode()
    key_id = sql("SELECT max(key_id) FROM chat.event_keyring()")[0][0]

    async def go():
        cl = await connect(r, a)
        with outsider() as out:
            for _ in range(50):
                outsider_notify(out, forged)
            outsider_notify(out, "c1.%d.%s" % (key_id, junk))
            outsider_notify(out, "c1.%d.%s" % (key_id + 1000, junk))
        typing_marker(a, chat)
        ev = await cl.event(lambda e: e.get("type") in ("message", "typing"))
        assert ev["type"] == "typing", "a forged event was delivered: %r" % ev
        assert not [e for e in cl.events if e.get("type") == "message"]
    run(go())
    wait_until(lambda: refused(r, "malformed") >= 50 and refused(r, "forged") >= 1
               and refused(r, "unknown_key") >= 1, what="the refusals counted")
    assert r.log().count("event payload refused") <= 2, r.log()[-3000:]


def test_listen_hears_no_plaintext_and_a_copy_is_refused(relays):
    """An outsider LISTENing sees only ciphertext; sending that ciphertext
    again (a replay) delivers nothing."""
    r = relays()
    a, b = new_users(2)
    chat = open_chat(a, b)

    async def go():
        ca = await connect(r, a)
        cb = await connect(r, b)
        with outsider() as out:
            out.cursor().execute("LISTEN chat_events")
            await ca.ok("send", chat_id=chat, body="secret body 4711")
            await cb.event(is_msg(chat, 1))
            payload = heard(out)
            assert payload.startswith("c1."), payload[:40]
            assert "4711" not in payload and str(b) not in payload and "message" not in payload
            before = refused(r, "replayed")
            outsider_notify(out, payload)
            wait_until(lambda: refused(r, "replayed") == before + 1, what="the copy refused")
        typing_marker(b, chat)
        ev = await cb.event(lambda e: e.get("type") in ("message", "typing"))
        assert ev["type"] == "typing", "the copy was delivered again: %r" % ev
    run(go())


def test_what_was_sealed_before_the_relay_listened_is_refused(relays):
    """The floor: a payload captured before a relay started is not taken by it."""
    a, b = new_users(2)
    chat = open_chat(a, b)
    with outsider() as out:
        out.cursor().execute("LISTEN chat_events")
        sql("SELECT chat.send_message(%s, %s, 'before the relay')", (b, chat))
        payload = heard(out)
        r = relays()

        async def go():
            ca = await connect(r, a)
            outsider_notify(out, payload)
            wait_until(lambda: refused(r, "replayed") >= 1, what="the old payload refused")
            typing_marker(a, chat)
            ev = await ca.event(lambda e: e.get("type") in ("message", "typing"))
            assert ev["type"] == "typing", ev
        run(go())


def test_a_rotated_key_is_taken_at_once_and_retired_keys_go(relays):
    """rotate_event_key('0') seals the next event under a key the relay has
    not loaded: it waits for the keys and is delivered; with a lead the
    refresh knows the key before it is used; retired keys are dropped."""
    r = relays(key_refresh=1)
    a, b = new_users(2)
    chat = open_chat(a, b)

    async def go():
        ca = await connect(r, a)
        loads = r.metric("chat_relay_event_key_loads_total")
        sql("SELECT chat.rotate_event_key('0')")
        time.sleep(5.5)          # the extension trusts its copy of the key for 5 s
        sql("SELECT chat.send_message(%s, %s, 'under the new key')", (b, chat))
        ev = await ca.event(is_msg(chat, 1))
        assert ev["message"]["body"] == "under the new key"
        assert r.metric("chat_relay_event_key_loads_total") > loads
        assert refused(r, "unknown_key") == 0
        sql("SELECT chat.rotate_event_key('2 seconds')")
        wait_until(lambda: r.metric("chat_relay_event_keys") >= 3, what="the pending key loaded")
        time.sleep(7.5)
        sql("SELECT chat.send_message(%s, %s, 'under the third key')", (b, chat))
        ev = await ca.event(is_msg(chat, 2))
        assert ev["message"]["body"] == "under the third key"
        assert sql("SELECT chat.retire_event_keys('0')")[0][0] >= 2
        wait_until(lambda: r.metric("chat_relay_event_keys") == 1, what="the retired keys dropped")
    run(go())


def test_a_large_message_is_fetched_only_for_members(relays):
    """An event (sealed: as if the extension had a bug) naming a non-member
    as a recipient of a message too large to ride inline: the member gets
    the message, the non-member nothing; a control shows the non-member is
    connected and reachable."""
    r = relays()
    a, b, x = new_users(3)
    chat = open_chat(a, b)
    sql("SELECT chat.send_message(%s, %s, repeat('ж', 3500))", (b, chat))

    async def go():
        ca = await connect(r, a)
        cx = await connect(r, x)
        ev = dict(v=1, type="message", chat_id=chat, seq=1, cursor=1, sender_id=b)
        payload = envelope(ev, [a, x])[:-2] + ',"inline":false}}'
        with cursor() as cur:
            publish_sealed(cur, payload)
        got = await ca.event(is_msg(chat, 1))
        assert got["message"]["body"] == "ж" * 3500
        typing_marker(x, chat)
        first = await cx.event(lambda e: e.get("type") in ("message", "typing"))
        assert first["type"] == "typing", "a non-member got the message: %r" % first
    run(go())


def test_a_relay_role_without_the_reader_role_does_not_serve(relays):
    """Only chat_event_reader may read the keys: a relay logging in as a role
    with the API but not the keys stays unready and says why."""
    sql("DROP ROLE IF EXISTS t_sealed_noreader")
    sql("CREATE ROLE t_sealed_noreader LOGIN IN ROLE chat_app")
    sql("GRANT EXECUTE ON FUNCTION chat.relay_register(text), chat.relay_heartbeat(text, int), "
        "chat.relay_gone(text), chat.presence_update(text, bigint[], bigint[]), "
        "chat.presence_sync(text, bigint[]) TO t_sealed_noreader")
    try:
        r = relays(wait=False, db=conninfo("t_sealed_noreader"))
        r.wait_healthy(database=False)
        wait_until(lambda: "permission denied for function event_keyring" in r.log(),
                   what="the reason in the log")
        assert "relay_register" not in r.log()
        assert r.http("/healthz")[0] != 200
        r.stop()
    finally:
        sql("DROP OWNED BY t_sealed_noreader")
        sql("DROP ROLE t_sealed_noreader")


def test_payloads_out_of_order_are_taken_once(relays):
    """In direct mode payloads are sealed in the writing transactions and
    may commit in another order: a lower number after a higher one is still
    taken (inside the window), and either again is refused."""
    r = relays()
    a, b = new_users(2)
    chat = open_chat(a, b)
    first = envelope(dict(v=1, type="typing", chat_id=chat, user_id=11), [a])
    second = envelope(dict(v=1, type="typing", chat_id=chat, user_id=12), [a])
    s1, s2 = [sql("SELECT chat.event_seal(%s)", (p,))[0][0] for p in (first, second)]

    async def go():
        ca = await connect(r, a)
        with outsider() as out:
            outsider_notify(out, s2)
            outsider_notify(out, s1)
            assert (await ca.event(lambda e: e.get("type") == "typing"))["user_id"] == 12
            assert (await ca.event(lambda e: e.get("type") == "typing"))["user_id"] == 11
            outsider_notify(out, s1)
            outsider_notify(out, s2)
            wait_until(lambda: refused(r, "replayed") >= 2, what="both copies refused")
        typing_marker(a, chat)
        ev = await ca.event(lambda e: e.get("type") == "typing")
        assert ev["user_id"] == 1, "a copy was delivered: %r" % ev
    run(go())


def test_a_payload_older_than_the_window_is_refused(relays):
    """4,096 numbers behind the newest taken, a payload never seen before is
    still refused: the window bounds what a listener remembers."""
    r = relays()
    a, b = new_users(2)
    chat = open_chat(a, b)
    old = sql("SELECT chat.event_seal(%s)", (envelope(dict(v=1, type="typing", chat_id=chat, user_id=21), [a]),))[0][0]

    async def go():
        ca = await connect(r, a)
        # a later payload (taken), then 4,100 numbers drawn without a payload
        with cursor() as cur:
            notify(cur, "typing", [0], [a], chat_id=chat, user_id=22)
            cur.execute("SELECT count(nextval('chat.event_seq')) FROM generate_series(1, 4100)")
            notify(cur, "typing", [0], [a], chat_id=chat, user_id=23)
        assert (await ca.event(lambda e: e.get("type") == "typing"))["user_id"] == 22
        assert (await ca.event(lambda e: e.get("type") == "typing"))["user_id"] == 23
        before = refused(r, "replayed")
        with outsider() as out:
            outsider_notify(out, old)
        wait_until(lambda: refused(r, "replayed") == before + 1, what="the old payload refused")
    run(go())
