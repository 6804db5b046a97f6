"""Push devices through the relay: register_device {kind, token} stores a
browser's PushSubscription for the token's user (chat.register_device),
unregister_device {device_id} removes one's own; the token must be a JSON
object, and what the extension refuses (22023) is answered invalid with its
message. The welcome carries vapid_public_key only when it is set."""
import base64
import os
import signal

from conftest import connect, new_users, run, sql, wait_until
from test_config import start


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def subscription(endpoint=None):
    """What PushSubscription.toJSON() gives: a fresh endpoint and keys."""
    return {
        "endpoint": endpoint or "https://push.example/wpush/%s" % os.urandom(8).hex(),
        "expirationTime": None,
        "keys": {"p256dh": b64url(b"\x04" + os.urandom(64)), "auth": b64url(os.urandom(16))},
    }


# base64url of an uncompressed P-256 point (0x04 || x || y): 87 characters
VAPID = b64url(b"\x04" + bytes(range(64)))
VAPID2 = b64url(b"\x04" + bytes(range(64, 128)))


def devices_of(user):
    return sql("SELECT device_id, kind, address FROM chat.devices WHERE user_id = %s ORDER BY device_id", (user,))


def test_a_subscription_is_stored_for_its_user_only_and_once(relays):
    r = relays()
    a, b = new_users(2)
    sub = subscription()

    async def go():
        ca = await connect(r, a)
        dev = await ca.ok("register_device", kind="webpush", token=sub)
        assert isinstance(dev, int) and dev > 0
        assert devices_of(a) == [(dev, "webpush", sub["endpoint"])]
        assert devices_of(b) == []
        # the same subscription again (a reload of the page): the same device
        assert await ca.ok("register_device", kind="webpush", token=sub) == dev
        assert devices_of(a) == [(dev, "webpush", sub["endpoint"])]
        # a second browser of the same user: a second device
        other = await ca.ok("register_device", kind="webpush", token=subscription())
        assert other != dev and [d[0] for d in devices_of(a)] == [dev, other]
        await ca.close()
    run(go())


def test_malformed_tokens_are_refused_as_invalid(relays):
    r = relays()
    (a,) = new_users(1)

    async def go():
        ca = await connect(r, a)
        # not a JSON object: refused by the relay before the database
        for token in ("https://push.example/x", ["x"], 5, True):
            m = await ca.request("register_device", kind="webpush", token=token)
            assert m["type"] == "error" and m["code"] == "invalid" and m["reason"] == "bad_param", m
            assert m["message"] == "token must be a JSON object", m
        m = await ca.request("register_device", kind="webpush")
        assert (m["code"], m["reason"], m["message"]) == ("invalid", "bad_param", "token is required"), m
        m = await ca.request("register_device", token=subscription())
        assert (m["code"], m["message"]) == ("invalid", "kind is required"), m
        m = await ca.request("register_device", kind="webpush", token={"endpoint": "https://push.example/" + "x" * 9000})
        assert (m["code"], m["reason"], m["message"]) == ("invalid", "bad_param", "token is over 8192 bytes"), m
        # an object the extension refuses (SQLSTATE 22023): invalid, with its words
        short_auth = subscription()
        short_auth["keys"]["auth"] = b64url(os.urandom(8))
        m = await ca.request("register_device", kind="webpush", token=short_auth)
        assert (m["code"], m["reason"]) == ("invalid", "bad_argument"), m
        assert m["message"] == "webpush token keys.auth must be base64url of 16 bytes", m
        bad_point = subscription()
        bad_point["keys"]["p256dh"] = b64url(b"\x02" + os.urandom(64))
        m = await ca.request("register_device", kind="webpush", token=bad_point)
        assert (m["code"], m["reason"]) == ("invalid", "bad_argument") and "p256dh" in m["message"], m
        no_keys = {"endpoint": "https://push.example/abc"}
        m = await ca.request("register_device", kind="webpush", token=no_keys)
        assert (m["code"], m["reason"]) == ("invalid", "bad_argument") and "keys" in m["message"], m
        plain_http = subscription("http://push.example/abc")
        m = await ca.request("register_device", kind="webpush", token=plain_http)
        assert (m["code"], m["reason"]) == ("invalid", "bad_argument"), m
        m = await ca.request("register_device", kind="carrier-pigeon", token=subscription())
        assert (m["code"], m["reason"]) == ("invalid", "bad_argument") and "carrier-pigeon" in m["message"], m
        assert devices_of(a) == []
        await ca.ok("ping")     # the connection goes on
        await ca.close()
    run(go())


def test_unregister_removes_only_ones_own_device(relays):
    r = relays()
    a, b = new_users(2)

    async def go():
        ca, cb = await connect(r, a), await connect(r, b)
        dev = await ca.ok("register_device", kind="webpush", token=subscription())
        # someone else's device: the one access refusal, and it stays
        m = await cb.request("unregister_device", device_id=dev)
        assert (m["type"], m["code"]) == ("error", "forbidden"), m
        assert [d[0] for d in devices_of(a)] == [dev]
        m = await cb.request("unregister_device", device_id="%d" % dev)
        assert (m["code"], m["message"]) == ("invalid", "device_id must be an integer"), m
        assert await ca.ok("unregister_device", device_id=dev) is None
        assert devices_of(a) == []
        # gone: the same refusal as another's
        m = await ca.request("unregister_device", device_id=dev)
        assert m["code"] == "forbidden", m
        await ca.close()
        await cb.close()
    run(go())


def test_welcome_carries_the_vapid_key_only_when_set(relays):
    plain, keyed = relays(), relays(vapid_public_key=VAPID)
    (a,) = new_users(1)

    async def go():
        c = await connect(plain, a)
        assert "vapid_public_key" not in c.welcome, c.welcome
        await c.close()
        c = await connect(keyed, a)
        assert c.welcome["vapid_public_key"] == VAPID, c.welcome
        await c.close()
    run(go())

    # reloadable: SIGHUP applies a new key to the connections that follow
    keyed.write_config(vapid_public_key=VAPID2)
    keyed.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in keyed.log(), 10, what="the reload")

    async def after():
        c = await connect(keyed, a)
        assert c.welcome["vapid_public_key"] == VAPID2, c.welcome
        await c.close()
    run(after())

    # a malformed key on reload is refused whole: the old one stays
    keyed.write_config(vapid_public_key="not-a-key")
    keyed.signal(signal.SIGHUP)
    wait_until(lambda: "configuration not reloaded" in keyed.log(), 10, what="the reload refused")
    run(after())


def test_a_malformed_vapid_key_is_refused_at_start():
    for bad in ("not-a-key", VAPID[:-1], "A" + VAPID[1:], VAPID[:-1] + "="):
        code, out = start("--vapid-public-key", bad)
        assert code == 2, out
        assert "vapid_public_key must be the base64url (no padding) of an uncompressed P-256 public key" in out, out
