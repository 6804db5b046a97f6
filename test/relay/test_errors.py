"""Error answers carry a stable reason besides their code: a program
decides on code and reason, never on the message's words."""
import json

from conftest import connect, db, new_users, open_chat, run, sql


async def error(cl, raw=None, **req):
    """The answer to one request (or to raw text), which must be an error."""
    if raw is None:
        m = await cl.request(**req)
    else:
        await cl.ws.send(raw)
        m = await cl.recv()
    assert m["type"] == "error", m
    assert set(m) == {"type", "id", "code", "reason", "message"}, m
    return m["code"], m["reason"]


def test_every_refusal_has_its_reason(relays):
    r = relays(max_frame=1024, typing_burst=1, typing_rate=0.001)
    a, b = new_users()
    (c,) = new_users(1)
    chat = open_chat(a, b)

    async def go():
        ca = await connect(r, a)
        cases = [
            ((None,), dict(type="no_such_request"), ("invalid", "unknown_type")),
            ((None,), dict(type="send", chat_id="x", body="b"), ("invalid", "bad_param")),
            ((None,), dict(type="send", chat_id=chat), ("invalid", "bad_param")),
            ((None,), dict(type="open", kind="k" * 33, peer_id=b), ("invalid", "bad_param")),
            ((None,), dict(type="send", chat_id=chat, body="b", attachment_ids=list(range(101))),
             ("invalid", "bad_param")),
            ((None,), dict(type="send", chat_id=chat, body="b", attachment_ids=[1, "2"]), ("invalid", "bad_param")),
            ((None,), dict(type="send", chat_id=chat, body=""), ("invalid", "bad_argument")),
            ((None,), dict(type="history", chat_id=chat + 1000000), ("forbidden", "access_denied")),
            ((None,), dict(type="upload", chat_id=chat, file_name="a.txt", content_type="text/plain", size=3),
             ("unavailable", "not_configured")),
            ((None,), dict(type="auth", token="not-a-jwt"), ("unauthorized", "token_invalid")),
            (("[1,2]",), {}, ("invalid", "bad_frame")),
            (('{"type":"ping","id":[1]}',), {}, ("invalid", "bad_id")),
            (('{"type":7,"id":1}',), {}, ("invalid", "bad_type")),
            (('{"type":"ping","pad":"%s"}' % ("x" * 2000),), {}, ("too_large", "frame_too_large")),
        ]
        for (raw,), req, want in cases:
            assert await error(ca, raw, **req) == want, (raw, req)
        await ca.ok("typing", chat_id=chat)
        assert await error(ca, type="typing", chat_id=chat) == ("rate_limited", "typing")
        cc = await connect(r, c)
        await cc.ws.send(b"\x00binary")
        m = json.loads(await cc.ws.recv())
        assert (m["code"], m["reason"]) == ("invalid", "bad_frame")
    run(go())


def test_request_bucket_refusal_is_requests(relays):
    r = relays(burst=1, rate=0.001)
    (a,) = new_users(1)

    async def go():
        ca = await connect(r, a)
        assert (await ca.request("ping"))["type"] == "ok"
        assert await error(ca, type="ping") == ("rate_limited", "requests")
    run(go())


def test_the_in_flight_limit_is_in_flight(relays):
    """max_inflight unanswered requests on a connection: the next is refused
    at once, and the held ones are still answered afterwards."""
    r = relays(max_inflight=2)
    a, b = new_users()
    chat = open_chat(a, b)
    sql("SELECT chat.send_message(%s, %s, 'one')", (a, chat))
    blocker = db()
    blocker.autocommit = False
    blocker.cursor().execute("LOCK TABLE chat.messages IN ACCESS EXCLUSIVE MODE")

    async def go():
        ca = await connect(r, a)
        for i in ("h1", "h2"):
            await ca.ws.send(json.dumps({"type": "history", "id": i, "chat_id": chat}))
        assert (await ca.request("ping"))["result"] == "pong"   # no database: not counted
        assert await error(ca, type="history", chat_id=chat) == ("rate_limited", "in_flight")
        blocker.rollback()
        got = {}
        while len(got) < 2:
            m = await ca.recv(10)
            if m.get("id") in ("h1", "h2"):
                got[m["id"]] = m["type"]
        assert got == {"h1": "ok", "h2": "ok"}, (got, ca.events)
    try:
        run(go())
    finally:
        blocker.close()
