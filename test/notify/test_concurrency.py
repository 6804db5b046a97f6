"""Several daemons, crashes and backlogs: two chat-notify processes on one
database never send one event twice at once (nor twice at all, without a
crash); after kill -9 every event still arrives, and only those in flight
at the kill may arrive twice; a backlog larger than the concurrency never
has more than the concurrency in flight, in memory or leased."""
import collections
import time

from conftest import add_webhook, new_secret, new_users, open_chat, pending, sql, transaction, wait_until


def send_many(chats, per_chat):
    """per_chat messages in each (user, chat) of chats, committed together; their count."""
    with transaction() as conn:
        with conn.cursor() as cur:
            for i in range(per_chat):
                for user, chat in chats:
                    cur.execute("SELECT chat.send_message(%s, %s, %s)", (user, chat, "m%d" % i))
        conn.commit()
    return per_chat * len(chats)


def some_chats(n):
    users = new_users(2 * n)
    return [(users[2 * i], open_chat(users[2 * i], users[2 * i + 1])) for i in range(n)]


def test_two_daemons_never_send_one_event_twice(notifiers, receivers):
    secrets = [new_secret() for _ in range(3)]
    rs = [receivers(s, "slow:0.005") for s in secrets]
    for r, s in zip(rs, secrets):
        add_webhook(r.url, s, ["message"])
    first = notifiers(webhook_per_endpoint=4, webhook_concurrency=8)
    second = notifiers(webhook_per_endpoint=4, webhook_concurrency=8)
    total = send_many(some_chats(10), 15)
    wait_until(lambda: pending() == 0, 90, "every event delivered")
    for r in rs:
        counts = collections.Counter(r.ids())
        assert len(counts) == total and set(counts.values()) == {1}, counts.most_common(3)
        assert r.max_concurrent == 1
        assert all(d.valid == [True] for d in r.deliveries)
    sent = [n.metric("chat_notify_webhooks_sent_total") for n in (first, second)]
    assert sum(sent) == 3 * total, sent
    print("sent by each daemon:", sent)


def test_kill_9_mid_backlog_then_restart(notifiers, receivers):
    """At least once: every event arrives; only those in flight at the kill
    (at most webhook_concurrency) may arrive twice."""
    secret = new_secret()
    r = receivers(secret, "slow:0.05")
    add_webhook(r.url, secret, ["message"])
    concurrency = 8
    opts = dict(webhook_per_endpoint=8, webhook_concurrency=concurrency, webhook_timeout=3, lease=8)
    victim = notifiers(**opts)
    total = send_many(some_chats(12), 5)
    wait_until(lambda: r.count() >= 15, 30, "a part of the backlog")
    victim.kill9()
    t0 = time.monotonic()
    notifiers(**opts)
    wait_until(lambda: pending() == 0, 60, "every event delivered after the restart")
    # the victim's leases (8 s) end once: the deliveries it held do not keep
    # the endpoint's next batches waiting for a lease each
    assert time.monotonic() - t0 < 8 + 10, "drained in %.1f s" % (time.monotonic() - t0)
    counts = collections.Counter(r.ids())
    assert len(counts) == total, "missing: %d" % (total - len(counts))
    duplicates = sum(c - 1 for c in counts.values())
    assert duplicates <= concurrency, counts.most_common(10)
    print("duplicates after kill -9: %d (bound %d)" % (duplicates, concurrency))


def test_a_backlog_never_has_more_than_the_concurrency_in_flight(notifiers, receivers):
    secrets = [new_secret() for _ in range(4)]
    rs = [receivers(s, "slow:0.01") for s in secrets]
    for r, s in zip(rs, secrets):
        add_webhook(r.url, s, ["message"])
    total = send_many(some_chats(20), 15)     # 300 events, 1,200 deliveries, nobody sending yet
    assert pending() == 4 * total
    n = notifiers(name="bounded", webhook_per_endpoint=4, webhook_concurrency=6)
    in_flight, leased = [], []
    deadline = time.monotonic() + 120
    while pending() > 0 and time.monotonic() < deadline:
        in_flight.append(n.metric("chat_notify_webhooks_in_flight"))
        leased.append(sql("SELECT count(*) FROM chat.webhook_deliveries WHERE leased_by = 'bounded'")[0][0])
        time.sleep(0.05)
    assert pending() == 0, "not drained in time"
    assert max(in_flight) <= 6 and max(leased) <= 6, (max(in_flight), max(leased))
    assert max(leased) >= 4     # it did use its room
    assert sum(r.count() for r in rs) == 4 * total
    backlog = n.metric("chat_notify_webhook_backlog")
    assert backlog is not None
