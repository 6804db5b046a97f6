"""Webhooks end to end: a committed send reaches the receiver once, signed
as the Standard Webhooks specification says, with the body of
docs/notifications.md; a rolled-back one sends nothing; a receiver that is
down gets everything once it is up; 410 disables; a rotated secret signs
twice; events of a chat arrive in order."""
import json
import time
from datetime import datetime, timezone

from conftest import (add_webhook, fast_forward, new_secret, new_users, open_chat, pending, send, sql,
                      transaction, wait_until)


def test_a_message_reaches_the_receiver_once_signed(notifiers, receivers):
    secret = new_secret()
    r = receivers(secret)
    endpoint = add_webhook(r.url, secret, ["message"])
    n = notifiers()
    a, b = new_users()
    chat = open_chat(a, b)
    t0 = time.time()
    seq = send(a, chat, "the kettle, still for sale?")
    wait_until(lambda: r.count() >= 1, 10, "the delivery")
    wait_until(lambda: pending() == 0, 10, "the result reported")
    time.sleep(1.5)    # a poll later: still once
    assert r.count() == 1, r.ids()
    d = r.deliveries[0]
    assert d.valid == [True]
    assert d.headers["content-type"] == "application/json"
    assert d.headers["user-agent"] == "chat-notify/0.1"
    assert abs(int(d.headers["webhook-timestamp"]) - t0) < 10
    assert d.id.startswith("evt_") and d.id[4:].isdigit()
    body = d.json
    assert body["type"] == "message" and body["chat_id"] == chat and body["seq"] == int(seq)
    assert body["cursor"] == int(seq) and body["sender_id"] == a
    assert body["message"]["body"] == "the kettle, still for sale?"
    assert abs(datetime.fromisoformat(body["timestamp"]).timestamp() - t0) < 10
    assert n.metric("chat_notify_webhooks_sent_total") == 1
    assert n.metric("chat_notify_webhooks_failed_total", reason="status") == 0
    # never a secret or a body in the log; the host is there at debug only
    assert secret not in n.log() and "still for sale" not in n.log()
    assert sql("SELECT count(*) FROM chat.webhook_deliveries WHERE endpoint_id = %s", (endpoint,))[0][0] == 0


def test_a_rolled_back_send_delivers_nothing(notifiers, receivers):
    secret = new_secret()
    r = receivers(secret)
    add_webhook(r.url, secret, ["message"])
    notifiers()
    a, b = new_users()
    chat = open_chat(a, b)
    with transaction() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT chat.send_message(%s, %s, 'never sent')", (a, chat))
        conn.rollback()
    send(a, chat, "the one after")
    wait_until(lambda: r.count() >= 1, 10, "the committed one")
    time.sleep(1.5)
    assert [d.json["message"]["body"] for d in r.deliveries] == ["the one after"]


def test_a_receiver_down_then_up_gets_every_event(notifiers, receivers):
    """The receiver's port is closed: each attempt fails (connect); the
    test fast-forwards the retry schedule (fast_forward, as the owner) once
    the receiver is up, and every event arrives, once."""
    secret = new_secret()
    r = receivers(secret, start=False)
    add_webhook(r.url, secret, ["message"])
    n = notifiers()
    a, b = new_users()
    chat = open_chat(a, b)
    seqs = [int(send(a, chat, "message %d" % i)) for i in range(5)]
    wait_until(lambda: (n.metric("chat_notify_webhooks_failed_total", reason="connect") or 0) >= 1, 10,
               "a refused attempt")
    wait_until(lambda: sql("SELECT count(*) FROM chat.webhook_deliveries WHERE attempts = 1 AND leased_by IS NULL")
               == [(5,)], 10, "each tried once")
    assert sql("SELECT min(attempts), max(last_status) FROM chat.webhook_deliveries") == [(1, 0)]
    assert "connect" in sql("SELECT max(last_error) FROM chat.webhook_deliveries")[0][0].lower()
    r.start()
    fast_forward()
    wait_until(lambda: pending() == 0, 15, "every event delivered")
    assert sorted(d.json["seq"] for d in r.deliveries) == seqs
    assert len(set(r.ids())) == 5 and all(d.valid == [True] for d in r.deliveries)
    assert n.metric("chat_notify_webhooks_retried_total") >= 1
    assert n.metric("chat_notify_webhooks_sent_total") == 5


def test_410_disables_the_endpoint(notifiers, receivers):
    secret, other_secret = new_secret(), new_secret()
    gone = receivers(secret, "status:410")
    other = receivers(other_secret)
    endpoint = add_webhook(gone.url, secret, ["message"])
    add_webhook(other.url, other_secret, ["webhook_disabled"])
    n = notifiers()
    a, b = new_users()
    chat = open_chat(a, b)
    send(a, chat, "first")
    wait_until(lambda: other.of_type("webhook_disabled"), 10, "the webhook_disabled event")
    event = other.of_type("webhook_disabled")[0].json
    assert event["endpoint_id"] == endpoint and event["reason"] == "410 Gone"
    info = [json.loads(w) if isinstance(w, str) else w for (w,) in sql("SELECT chat.webhooks()")]
    mine = [w for w in info if w["endpoint_id"] == endpoint][0]
    assert mine["enabled"] is False and mine["disabled_reason"] == "410 Gone"
    assert n.metric("chat_notify_webhooks_disabled_total") == 1
    assert n.metric("chat_notify_webhooks_failed_total", reason="gone") == 1
    assert "disabled" in n.log() and secret not in n.log()
    send(a, chat, "second")
    time.sleep(2.5)     # polls: nothing goes to a disabled endpoint
    assert gone.count() == 1


def test_a_rotated_secret_signs_twice(notifiers, receivers):
    old, new = new_secret(), new_secret(48)
    r = receivers([new, old])
    endpoint = add_webhook(r.url, old, ["message"])
    sql("SELECT chat.rotate_webhook_secret(%s, %s)", (endpoint, new))
    notifiers()
    a, b = new_users()
    send(a, open_chat(a, b), "rotated")
    wait_until(lambda: r.count() >= 1, 10, "the delivery")
    d = r.deliveries[0]
    sigs = d.headers["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    # the newest first, each with its own key only
    from conftest import verify
    assert verify([new], {**d.headers, "webhook-signature": sigs[0]}, d.body) == [True]
    assert verify([old], {**d.headers, "webhook-signature": sigs[1]}, d.body) == [True]
    assert verify([old], {**d.headers, "webhook-signature": sigs[0]}, d.body) == [False]
    assert d.valid == [True, True]


def test_a_chats_events_arrive_in_order(notifiers, receivers):
    """Several chats at once, each chat's events one after the other while
    the receiver answers (a slow receiver, so that they overlap)."""
    secret = new_secret()
    r = receivers(secret, "slow:0.02")
    add_webhook(r.url, secret, ["message", "edit"])
    n = notifiers(webhook_per_endpoint=8)
    users = new_users(8)
    chats = [open_chat(users[i], users[i + 1]) for i in range(0, 8, 2)]
    with transaction() as conn:
        with conn.cursor() as cur:
            for i in range(6):
                for j, chat in enumerate(chats):
                    cur.execute("SELECT chat.send_message(%s, %s, %s)", (users[2 * j], chat, "m%d" % i))
        conn.commit()
    wait_until(lambda: pending() == 0, 20, "every event delivered")
    for chat in chats:
        got = [d.json["seq"] for d in r.deliveries if d.json["chat_id"] == chat]
        assert got == sorted(got) and len(got) == 6, (chat, got)
    assert n.metric("chat_notify_webhooks_sent_total") == 24
