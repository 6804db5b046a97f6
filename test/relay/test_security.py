"""Every refusal: tokens (signature, algorithm, claims, size), Origin, rate
limits, connection limits, malformed frames; the relay stays up and never
logs a token."""
import asyncio
import json
import os
import signal
import time

import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import (ORIGIN, connect, jwt, new_users, open_chat, refused, run,
                      wait_until)

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def key_file(relay_dir, name, key):
    path = os.path.join(relay_dir, name)
    with open(path, "wb") as f:
        f.write(pem(key))
    return path


@pytest.fixture
def hs_relay(relays):
    return relays(jwt_issuer="https://auth.example", jwt_audience="chat", jwt_leeway=0)


def good(user, **kw):
    claims = dict(iss="https://auth.example", aud="chat")
    claims.update(kw)
    return jwt(user, **claims)


BAD_TOKENS = {
    "garbage": lambda u: "not-a-token",
    "two segments": lambda u: good(u).rsplit(".", 1)[0],
    "alg none": lambda u: jwt(u, alg="none", iss="https://auth.example", aud="chat"),
    "alg none, signed": lambda u: good(u).split(".")[0].replace(
        good(u).split(".")[0], jwt(u, alg="none").split(".")[0]) + "." + good(u).split(".", 1)[1],
    "wrong secret": lambda u: jwt(u, key=b"another-secret-another-secret-another", iss="https://auth.example", aud="chat"),
    "wrong algorithm (RS256)": lambda u: jwt(u, alg="RS256", key=RSA_KEY, iss="https://auth.example", aud="chat"),
    "expired": lambda u: good(u, exp_in=-60),
    "no exp": lambda u: good(u, drop=("exp",)),
    "not yet valid": lambda u: good(u, nbf=int(time.time()) + 600),
    "wrong issuer": lambda u: good(u, iss="https://evil.example"),
    "no issuer": lambda u: jwt(u, aud="chat"),
    "wrong audience": lambda u: good(u, aud="other"),
    "audience list without ours": lambda u: good(u, aud=["a", "b"]),
    "sub not numeric": lambda u: jwt("alice", iss="https://auth.example", aud="chat"),
    "sub negative": lambda u: jwt("-5", iss="https://auth.example", aud="chat"),
    "tampered claims": lambda u: good(u).split(".")[0] + "." + good(u + 1).split(".")[1] + "." + good(u).split(".")[2],
    "oversized": lambda u: good(u, pad="x" * 6000),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused(hs_relay, case):
    u = new_users(1)[0]
    token = BAD_TOKENS[case](u)
    status = run(refused(hs_relay, token))
    assert status is not None and (status == 401 or (case == "oversized" and status in (-1, 400, 401, 431))), (case, status)
    assert token not in hs_relay.log()
    assert hs_relay.healthy()


def test_good_token_and_audience_list(hs_relay):
    u = new_users(1)[0]
    assert run(refused(hs_relay, good(u))) is None
    assert run(refused(hs_relay, good(u, aud=["x", "chat"]))) is None
    assert run(refused(hs_relay, None)) == 401          # no token at all
    # a bearer header works for non-browser clients
    status = run(refused(hs_relay, "", headers={"Authorization": "Bearer " + good(u)}))
    assert status is None


def test_tokens_never_logged(relays):
    r = relays(log_level="debug")
    u = new_users(1)[0]
    tokens = [jwt(u), jwt(u, exp_in=-100), jwt(u, key=b"x" * 40)]
    for t in tokens:
        run(refused(r, t))
    log = r.log()
    for t in tokens:
        assert t not in log and t.split(".")[2] not in log


def test_rs256_and_es256_keys(relays):
    u = new_users(1)[0]
    tmp = relays.__self__ if hasattr(relays, "__self__") else None
    del tmp
    base = relays("keyless-probe")
    rsa_path = key_file(base.dir, "rsa.pem", RSA_KEY)
    ec_path = key_file(base.dir, "ec.pem", EC_KEY)
    rs = relays(jwt_alg="RS256", jwt_secret_file=None, jwt_public_key_file=rsa_path)
    es = relays(jwt_alg="ES256", jwt_secret_file=None, jwt_public_key_file=ec_path)
    assert run(refused(rs, jwt(u, alg="RS256", key=RSA_KEY))) is None
    assert run(refused(es, jwt(u, alg="ES256", key=EC_KEY))) is None
    # algorithm confusion: an HS256 token "signed" with the public key as secret
    assert run(refused(rs, jwt(u, alg="HS256", key=pem(RSA_KEY)))) == 401
    assert run(refused(rs, jwt(u, alg="ES256", key=EC_KEY))) == 401
    assert run(refused(es, jwt(u, alg="RS256", key=RSA_KEY))) == 401
    assert run(refused(es, jwt(u, alg="ES256", key=ec.generate_private_key(ec.SECP256R1())))) == 401
    assert run(refused(rs, jwt(u, alg="none"))) == 401


def test_origin_allow_list(relays):
    r = relays()
    u = new_users(1)[0]
    assert run(refused(r, jwt(u), origin=ORIGIN)) is None
    assert run(refused(r, jwt(u), origin="http://evil.example")) == 403
    assert run(refused(r, jwt(u), origin=ORIGIN + ".evil.example")) == 403
    assert run(refused(r, jwt(u), origin=ORIGIN + "/")) == 403
    assert run(refused(r, jwt(u), origin=None)) == 403
    open_r = relays(allow_no_origin=True)
    assert run(refused(open_r, jwt(u), origin=None)) is None
    assert run(refused(open_r, jwt(u), origin="http://evil.example")) == 403
    assert r.metric("chat_relay_origin_refused_total") >= 4


def test_sighup_reloads_origins_and_limits(relays):
    r = relays()
    u = new_users(1)[0]
    other = "https://other.example"
    assert run(refused(r, jwt(u), origin=other)) == 403
    r.write_config(allow_origin=[ORIGIN, other], rate=1, burst=2)
    r.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in r.log())
    assert run(refused(r, jwt(u), origin=other)) is None

    async def go():
        c = await connect(r, u)
        codes = [(await c.request("ping")).get("code") for _ in range(4)]
        assert codes.count("rate_limited") >= 1
    run(go())


def test_a_reload_whose_key_fails_changes_nothing(relays):
    """Issuer and key rotated together, with a typo in the key's path: the
    relay keeps the old issuer as well as the old key (applying the issuer
    alone would refuse every token, old and new)."""
    r = relays(jwt_issuer="iss-a")
    u = new_users(1)[0]
    r.write_config(jwt_issuer="iss-b", jwt_secret_file=r.secret_file + ".missing",
                   allow_origin=[ORIGIN, "https://other.example"])
    r.signal(signal.SIGHUP)
    wait_until(lambda: "configuration not reloaded" in r.log(), what="the reload refused")

    async def go():
        c = await connect(r, u, token=jwt(u, iss="iss-a"))
        assert (await c.request("ping"))["result"] == "pong"
        assert await refused(r, jwt(u, iss="iss-b")) == 401
        assert await refused(r, jwt(u, iss="iss-a"), origin="https://other.example") == 403
    run(go())


def test_rate_limits(relays):
    r = relays(rate=2, burst=5, typing_rate=1, typing_burst=2)
    a, b = new_users()
    chat = open_chat(a, b)

    async def go():
        c = await connect(r, a)
        answers = [await c.request("ping") for _ in range(12)]
        limited = [m for m in answers if m["type"] == "error"]
        assert all(m["code"] == "rate_limited" for m in limited)
        assert 5 <= len(answers) - len(limited) <= 7, answers
        # typing has its own bucket
        c2 = await connect(r, b)
        typing = [await c2.request("typing", chat_id=chat) for _ in range(5)]
        assert [m["type"] for m in typing[:2]] == ["ok", "ok"]
        assert any(m.get("code") == "rate_limited" for m in typing[2:])
        assert (await c2.request("ping"))["type"] == "ok"
    run(go())
    assert r.metric("chat_relay_rate_limited_total") >= 5


def test_rate_limits_outlive_the_connection(relays):
    """Closing and reopening a connection does not refill the buckets, and
    frames refused before their type is known take a token too."""
    r = relays(rate=0.5, burst=5)
    u, v = new_users()

    async def go():
        c = await connect(r, u)
        assert [(await c.request("ping"))["type"] for _ in range(5)] == ["ok"] * 5
        await c.ws.close()
        wait_until(lambda: r.metric("chat_relay_users") == 0, what="user gone")
        c = await connect(r, u)
        assert (await c.request("ping")).get("code") == "rate_limited"
        await c.ws.close()

        d = await connect(r, v)
        for i in range(3):
            await d.ws.send(json.dumps({"type": 5, "id": i}))
            assert (await d.recv())["code"] == "invalid"
        for i in range(2):
            await d.ws.send(json.dumps({"type": "ping", "id": [i]}))
            assert (await d.recv())["code"] == "invalid"
        assert (await d.request("ping")).get("code") == "rate_limited"
    run(go())


def test_replies_carry_long_ids_whole(relays):
    """An id of 128 control characters is 770 bytes once escaped. ping,
    auth and error replies carry it whole (they were formatted into fixed
    buffers and sent with the stack bytes after them), and so do welcome
    and /healthz a relay_id of 200 bytes."""
    long_relay = "relay-" + "r" * 194       # the most relay_id may be
    r = relays("long-relay-id", relay_id=long_relay)
    u = new_users(1)[0]
    long_id = "\x01" * 128

    async def go():
        c = await connect(r, u)
        assert c.welcome["relay_id"] == long_relay
        await c.ws.send(json.dumps({"type": "ping", "id": long_id}))
        assert await c.recv() == {"type": "ok", "id": long_id, "result": "pong"}
        await c.ws.send(json.dumps({"type": "auth", "id": long_id, "token": jwt(u)}))
        m = await c.recv()
        assert m["type"] == "ok" and m["id"] == long_id, m
        await c.ws.send(json.dumps({"type": "teleport", "id": long_id}))
        m = await c.recv()
        assert m["code"] == "invalid" and m["id"] == long_id, m
    run(go())
    status, body = r.http("/healthz")
    assert status == 200 and json.loads(body)["relay_id"] == long_relay


@pytest.mark.parametrize("protocol", ["chat.v1", "chat-raw"])
def test_a_subprotocol_is_refused_with_a_status(relays, protocol):
    """Offering a subprotocol got the socket closed without a response; it
    is refused with 400 and says why. chat-raw, the protocol of the relay's
    own descriptors, opened a WebSocket that was never indexed (no
    connection limit, no expiry, no close at shutdown)."""
    r = relays()
    u = new_users(1)[0]
    assert run(refused(r, jwt(u), headers={"Sec-WebSocket-Protocol": protocol})) == 400
    assert "no subprotocol is spoken here" in r.log()
    assert run(refused(r, jwt(u))) is None


def test_a_far_future_exp_is_accepted(relays):
    """exp = 1e19 is clamped; exp + leeway overflowed (UBSan aborted)."""
    r = relays()
    u = new_users(1)[0]

    async def go():
        c = await connect(r, u, token=jwt(u, exp=1e19))
        assert c.welcome["expires_at"] > 10 ** 18
        await asyncio.sleep(1.5)       # a tick looks at every expiry
        assert (await c.request("ping"))["result"] == "pong"
    run(go())


def test_connections_per_user_bounded(relays):
    r = relays(max_conns_per_user=2)
    u = new_users(1)[0]

    async def go():
        c1, c2 = await connect(r, u), await connect(r, u)
        assert await refused(r, jwt(u)) == 429
        await c1.close()
        await asyncio.sleep(0.2)
        assert await refused(r, jwt(u)) is None
        await c2.close()
    run(go())


def test_malformed_frames(relays):
    r = relays(max_frame=65536)
    u = new_users(1)[0]

    async def go():
        c = await connect(r, u)

        async def answer(raw):
            await c.ws.send(raw)
            m = await c.recv()
            assert m["type"] == "error", m
            return m
        assert (await answer("not json"))["code"] == "invalid"
        assert (await answer("[1,2,3]"))["code"] == "invalid"
        assert (await answer('"just a string"'))["code"] == "invalid"
        assert (await answer(json.dumps({"id": 1})))["code"] == "invalid"
        m = await answer(json.dumps({"type": "teleport", "id": 2}))
        assert m["code"] == "invalid" and m["id"] == 2 and "unknown" in m["message"]
        m = await answer(json.dumps({"type": "send", "id": 3, "chat_id": "7", "body": "x"}))
        assert m["code"] == "invalid" and "chat_id" in m["message"]
        m = await answer(json.dumps({"type": "send", "id": 4, "chat_id": 7, "body": 5}))
        assert m["code"] == "invalid" and "body" in m["message"]
        m = await answer(json.dumps({"type": "presence", "id": 5, "user_ids": [1, "x"]}))
        assert m["code"] == "invalid"
        m = await answer(json.dumps({"type": "send", "id": {"nested": 1}}))
        assert m["code"] == "invalid"
        assert (await answer(b"\x00\x01binary"))["code"] == "invalid"
        assert (await answer("x" * (1 << 20)))["code"] == "too_large"
        assert (await answer(json.dumps({"type": "ping", "id": 6, "pad": "y" * 70000})))["code"] == "too_large"
        assert (await c.request("ping"))["result"] == "pong"
    run(go())
    assert r.healthy()


def test_invalid_utf8_closes_the_connection(relays):
    r = relays()
    u = new_users(1)[0]

    async def go():
        c = await connect(r, u)
        # a text frame that is not UTF-8 breaks the WebSocket protocol itself
        await c.ws.write_frame(True, websockets.frames.OP_TEXT, b"\xff\xfe{}")
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            for _ in range(5):
                await c.recv(timeout=5)
        c2 = await connect(r, u)
        assert (await c2.request("ping"))["type"] == "ok"
    run(go())


def test_expired_token_closes_with_1008_and_auth_extends(relays):
    r = relays(jwt_leeway=0)
    u = new_users(1)[0]

    async def go():
        short = await connect(r, u, token=jwt(u, exp_in=2))
        renewed = await connect(r, u, token=jwt(u, exp_in=2))
        ok = await renewed.request("auth", token=jwt(u, exp_in=60))
        assert ok["type"] == "ok" and ok["result"]["expires_at"] > time.time() + 30
        m = await renewed.request("auth", token=jwt(u + 1, exp_in=60))
        assert m["code"] == "unauthorized"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            for _ in range(10):
                await short.recv(timeout=6)
        assert closed.value.rcvd.code == 1008
        assert (await renewed.request("ping"))["type"] == "ok"
    run(go())
