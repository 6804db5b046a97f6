"""What no NOTIFY announces is delivered all the same: the daemon polls the
durable queue every poll_interval, so an event whose NOTIFY never came (a
publisher queue overflow drops them; opening a chat publishes none at all)
arrives within a poll."""
import time

from conftest import add_webhook, new_secret, new_users, open_chat, wait_until


def test_an_event_without_a_notify_arrives_by_the_poll(notifiers, receivers):
    secret = new_secret()
    r = receivers(secret)
    add_webhook(r.url, secret, ["chat_opened"])
    notifiers(poll_interval=1)
    time.sleep(0.5)                     # past its claim at start
    a, b = new_users()
    t0 = time.monotonic()
    chat = open_chat(a, b)
    wait_until(lambda: len(r.of_type("chat_opened")) == 1, 10, "chat_opened delivered")
    assert time.monotonic() - t0 < 5, "not within a poll or two"
    opened = r.of_type("chat_opened")[0].json
    assert (opened["chat_id"], opened["kind"], opened["user_ids"]) == (chat, "direct", sorted([a, b]))
    assert r.deliveries[0].valid[0]


def test_without_the_poll_it_would_wait(notifiers, receivers):
    """The control: with the poll an hour away, the same event waits (so the
    test above shows the poll, not a NOTIFY)."""
    secret = new_secret()
    r = receivers(secret)
    add_webhook(r.url, secret, ["chat_opened"])
    notifiers(poll_interval=3600)
    time.sleep(0.5)                     # past its claim at start
    open_chat(*new_users())
    time.sleep(3)
    assert r.of_type("chat_opened") == []
