"""Receivers that misbehave: one that hangs (webhook_timeout shortened to
2 s), one that redirects (302, never followed), one that answers 10 MB, one
that closes in the middle of its answer, one that answers garbage. Each
costs one failed attempt and nothing else: the daemon stays healthy and a
good endpoint gets the event meanwhile, at once."""
import time

from conftest import add_webhook, new_secret, new_users, open_chat, send, sql, wait_until

TOKEN = "sekret-token-in-the-url"


def test_each_misbehaving_receiver_costs_one_failed_attempt(notifiers, receivers):
    secret = new_secret()
    good = receivers(secret)
    target = receivers(secret)       # where the redirect points: must never be asked
    bad = {mode: receivers(secret, mode) for mode in ("hang", "huge", "cut", "garbage")}
    bad["redirect"] = receivers(secret, "redirect:" + target.url)
    endpoints = {mode: add_webhook(r.url + "?token=" + TOKEN, secret, ["message"]) for mode, r in bad.items()}
    add_webhook(good.url, secret, ["message"])
    n = notifiers(webhook_timeout=2, lease=8)
    a, b = new_users()
    t0 = time.monotonic()
    send(a, open_chat(a, b), "to everyone")
    wait_until(lambda: good.count() == 1, 5, "the good endpoint's delivery")
    assert good.deliveries[0].at - t0 < 1.5 and bad["hang"].count() == 1   # not held behind the hang
    wait_until(lambda: sql("SELECT count(*) FROM chat.webhook_deliveries WHERE leased_by IS NULL AND attempts = 1")[0][0] == 5,
               10, "every failure reported")
    # one attempt each (the retry is 5 s away), and the redirect not followed
    assert {mode: r.count() for mode, r in bad.items()} == {mode: 1 for mode in bad}
    assert target.count() == 0
    failed = {reason: n.metric("chat_notify_webhooks_failed_total", reason=reason)
              for reason in ("timeout", "redirect", "too_large", "bad_response")}
    assert failed == {"timeout": 1, "redirect": 1, "too_large": 1, "bad_response": 2}, failed
    rows = dict((e, (att, st, err)) for e, att, st, err in
                sql("SELECT endpoint_id, attempts, last_status, last_error FROM chat.webhook_deliveries"))
    assert rows[endpoints["redirect"]][:2] == (1, 302), rows
    assert rows[endpoints["hang"]] == (1, 0, "no answer within 2 s"), rows
    assert rows[endpoints["redirect"]][2] == "HTTP 302: a redirect, not followed", rows
    assert rows[endpoints["huge"]] == (1, 0, "answer over 65536 bytes"), rows
    for mode in ("cut", "garbage"):
        attempts, status, error = rows[endpoints[mode]]
        assert (attempts, status) == (1, 0) and error.startswith("no whole answer: "), (mode, rows)
    assert n.http("/healthz")[0] == 200
    # and it goes on delivering
    send(a, open_chat(a, b), "again")
    wait_until(lambda: good.count() == 2, 5, "the next delivery")
    assert TOKEN not in n.log() and secret not in n.log()
    assert not any(TOKEN in (err or "") for (err,) in sql("SELECT last_error FROM chat.webhook_deliveries"))


def test_a_status_outside_http_is_a_failed_attempt(notifiers, receivers):
    """An answer with status 999 is reported as no answer (webhook_result
    accepts 100 to 599 only)."""
    secret = new_secret()
    r = receivers(secret, "status:999")
    add_webhook(r.url, secret, ["message"])
    n = notifiers()
    a, b = new_users()
    send(a, open_chat(a, b), "odd status")
    wait_until(lambda: sql("SELECT count(*) FROM chat.webhook_deliveries WHERE last_error IS NOT NULL")[0][0], 10,
               "the failure reported")
    assert sql("SELECT attempts, last_status, last_error FROM chat.webhook_deliveries") == \
        [(1, 0, "not an HTTP status: 999")]
    assert n.metric("chat_notify_webhooks_failed_total", reason="bad_response") == 1
    assert n.metric("chat_notify_results_lost_total") == 0
