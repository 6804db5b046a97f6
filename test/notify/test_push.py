"""Push (issue 17), end to end: real chat-notify processes against local Web
Push, FCM and APNs services (push_services/: each verifies what it gets
with its own code: the Web Push one decrypts every message with the
subscription's private key and checks its VAPID JWT; the FCM one checks
the OAuth assertion and the bearer; the APNs one speaks HTTP/2 and checks
the provider token). chat.push_delay is set per sending session (1 s), so
a push comes due a second after its message."""
import json
import subprocess
import time

import pytest

from conftest import NOTIFY_BIN, conninfo, free_port, new_users, open_chat, pg_connect, sql, wait_until
from push_env import Device, make_world

DELAY = 1          # chat.push_delay of the test's sends, seconds
KINDS = ("webpush", "fcm", "apns")


@pytest.fixture(scope="module")
def world():
    w = make_world()
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def no_problems(world):
    """Whatever a test did, no service saw anything malformed."""
    before = len(world.problems())
    yield
    assert world.problems()[before:] == []


def psend(user, chat, body, delay=DELAY, interval=None):
    """send_message with chat.push_delay (and chat.push_interval) set for it."""
    conn = pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET chat.push_delay = %s", (delay,))
            if interval is not None:
                cur.execute("SET chat.push_interval = %s", (interval,))
            cur.execute("SELECT (chat.send_message(%s, %s, %s))->>'seq'", (user, chat, body))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def read(user, chat, seq):
    sql("SELECT chat.mark_read(%s, %s, %s)", (user, chat, seq))


def pair():
    a, b = new_users(2)
    return a, b, open_chat(a, b)


def devices(world, user, kinds=KINDS):
    return [Device(world, k, user) for k in kinds]


def wait_count(dev, n, timeout=15):
    wait_until(lambda: dev.count() >= n, timeout, what="%d pushes to the %s device" % (n, dev.kind))


def settle(notify, seconds=2.5):
    """Long enough for anything due to have gone: a claim every 200 ms, DELAY 1 s."""
    time.sleep(seconds)


def test_an_offline_user_gets_one_push_per_device_after_the_delay(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    devs = devices(world, b)
    sent_at = time.time()
    seq = psend(a, chat, "Is the bike still for sale?")
    for d in devs:
        wait_count(d, 1)
    settle(notify)
    for d in devs:
        assert d.count() == 1, d.kind
        p = d.payloads()[0]
        assert p["type"] == "alert" and p["chat_id"] == chat and p["tag"] == "chat-%d" % chat
        assert p["title"] == "User %d" % a and p["body"] == "Is the bike still for sale?"
        assert p["badge"] == 1 and p["count"] == 1
    first = min(at for d in devs for at in d.arrivals())
    assert first - sent_at >= DELAY - 0.2, "pushed before the delay"
    assert seq == 1
    # the sender has no device and is never pushed; nothing is left due
    assert sql("SELECT count(*) FROM chat.push_sends WHERE user_id = %s", (b,))[0][0] == 0


def test_read_in_time_gives_no_push(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    devs = devices(world, b)
    seq = psend(a, chat, "hello", delay=3)
    read(b, chat, seq)
    settle(notify, 4.5)
    assert [d.count() for d in devs] == [0] * len(devs)
    # negative control: the same without the read is pushed
    seq = psend(a, chat, "again", delay=1)
    for d in devs:
        wait_count(d, 1)


def test_an_online_user_gets_no_push(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    devs = devices(world, b)
    sql("SELECT chat.relay_register('push-test-relay')")
    sql("SELECT chat.presence_update('push-test-relay', ARRAY[%s]::bigint[], '{}')", (b,))
    try:
        psend(a, chat, "you are here")
        settle(notify, 3)
        assert [d.count() for d in devs] == [0] * len(devs)
    finally:
        sql("SELECT chat.relay_gone('push-test-relay')")
    # gone for less than 30 s: put off, not dropped; then pushed
    sql("UPDATE chat.last_seen SET last_seen = now() - interval '28 seconds' WHERE user_id = %s", (b,))
    psend(a, chat, "and now?")
    time.sleep(1.5)
    assert [d.count() for d in devs] == [0] * len(devs)
    for d in devs:
        wait_count(d, 1, timeout=10)
        assert d.payloads()[0]["count"] == 1, "the message seen live is not counted again"


def test_a_burst_gives_one_alert_and_later_ones_fold(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    (web,) = devices(world, b, ("webpush",))
    for body in ("one", "two", "three"):
        psend(a, chat, body)
    wait_count(web, 1)
    settle(notify)
    assert web.count() == 1
    p = web.payloads()[0]
    assert p["count"] == 3 and "three" in p["body"] and p["body"].startswith("New messages: 3")
    # within push_interval of that alert: folded into the next, after it
    psend(a, chat, "four", interval=10)
    psend(a, chat, "five", interval=10)
    time.sleep(2)
    assert web.count() == 1
    wait_count(web, 2, timeout=15)
    assert web.payloads()[1]["count"] == 2


def test_reading_sends_the_silent_update(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    devs = devices(world, b)
    other = new_users(1)[0]
    chat2 = open_chat(other, b)
    psend(other, chat2, "still unread")
    seq = psend(a, chat, "read me")
    for d in devs:
        wait_count(d, 2)
    t = time.time()
    read(b, chat, seq)
    for d in devs:
        wait_count(d, 3, timeout=15)
        clear = d.payloads()[-1]
        assert clear["type"] == "clear" and clear["chat_id"] == chat and clear["badge"] == 1
        assert "body" not in clear and "title" not in clear
    assert time.time() - t < 15
    web = devs[0]
    assert web.messages()[-1]["headers"].get("Urgency") == "normal"
    read(b, chat2, 1)
    for d in devs:
        wait_count(d, 4)
        assert d.payloads()[-1]["badge"] == 0


def test_410_removes_the_device_and_nothing_more_goes_to_it(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    devs = devices(world, b)
    for d in devs:
        d.answer("gone" if d.kind != "fcm" else "404")
    psend(a, chat, "anyone?")
    for d in devs:
        wait_count(d, 1)
    wait_until(lambda: not any(d.registered() for d in devs), 10, what="the devices deleted")
    psend(a, chat, "still?")
    settle(notify, 3)
    assert [d.count() for d in devs] == [1] * len(devs)
    assert sql("SELECT count(*) FROM chat.push_state WHERE user_id = %s", (b,))[0][0] == 0


def test_muted_blocked_push_off_get_nothing(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    c, d_, chat_b = pair()
    e, f, chat_c = pair()
    (w1,) = devices(world, b, ("webpush",))
    (w2,) = devices(world, d_, ("webpush",))
    (w3,) = devices(world, f, ("webpush",))
    sql("SELECT chat.set_muted(%s, %s, true)", (b, chat))
    sql("SELECT chat.block_user(%s, %s)", (d_, c))
    sql("SELECT chat.set_notify_prefs(%s, '{\"push\": false}')", (f,))
    psend(a, chat, "muted")
    psend(e, chat_c, "push off")
    try:
        psend(c, chat_b, "blocked")
    except Exception:
        pass        # a blocked sender may be refused outright: nothing to push then
    settle(notify, 3)
    assert [w1.count(), w2.count(), w3.count()] == [0, 0, 0]
    # negative control: unmuted, the next one goes
    sql("SELECT chat.set_muted(%s, %s, false)", (b, chat))
    psend(a, chat, "unmuted")
    wait_count(w1, 1)


def test_preview_off_and_language(world, notifiers):
    notify = notifiers(**world.settings())
    a, b, chat = pair()
    (web,) = devices(world, b, ("webpush",))
    sql("SELECT chat.set_notify_prefs(%s, '{\"preview\": false, \"language\": \"ru\"}')", (b,))
    psend(a, chat, "secret text")
    wait_count(web, 1)
    p = web.payloads()[0]
    assert "secret" not in json.dumps(p, ensure_ascii=False)
    assert p["body"] == "Новое сообщение" and p["title"] == "Пользователь %d" % a
    sql("SELECT chat.set_notify_prefs(%s, '{\"preview\": true, \"language\": \"sr\"}')", (b,))
    read(b, chat, 1)
    long = "ж" * 1500
    psend(a, chat, long, interval=0)
    wait_until(lambda: any(x["type"] == "alert" and x.get("count") == 1 and x is not p for x in web.payloads()[1:]),
               10, what="the second alert")
    body = [x for x in web.payloads() if x["type"] == "alert"][-1]["body"]
    assert body == "ж" * 1000


def test_two_daemons_never_push_twice(world, notifiers):
    n1 = notifiers(**world.settings())
    n2 = notifiers(**world.settings())
    a = new_users(1)[0]
    users = new_users(30)
    devs = []
    for u in users:
        devs += devices(world, u)
    chats = [open_chat(u, a) for u in users]
    for c in chats:
        psend(a, c, "to everyone")
    for d in devs:
        wait_count(d, 1, timeout=30)
    settle(n1, 3)
    assert sorted(d.count() for d in devs) == [1] * len(devs)
    sent = [n.metric("chat_notify_pushes_sent_total", kind=k) or 0 for n in (n1, n2) for k in KINDS]
    assert sum(sent) == len(devs)


def test_kill_9_mid_backlog_loses_nothing_that_was_due(world, notifiers):
    a = new_users(1)[0]
    users = new_users(60)
    devs = []
    for u in users:
        devs += devices(world, u)
    for d in devs:
        if d.kind == "webpush":
            d.answer("hang")        # the daemon dies with these in flight
    chats = [open_chat(u, a) for u in users]
    for c in chats:
        psend(a, c, "backlog")
    time.sleep(DELAY + 0.5)
    victim = notifiers(**world.settings(push_timeout=5, lease=15))
    wait_until(lambda: sum(d.count() for d in devs) >= 20, 20, what="some pushes under way")
    victim.kill9()
    for d in devs:
        if d.kind == "webpush":
            d.answer("ok")
    notifiers(**world.settings())
    for d in devs:
        wait_count(d, 1, timeout=45)
    # at least once: every device got it; the hung ones were retried after the lease
    assert all(d.count() >= 1 for d in devs)
    # again only what was in the victim's hands: sent, not yet reported
    # (at most push_concurrency, 64); the rest exactly once
    others = [d for d in devs if d.kind != "webpush"]
    assert sum(d.count() for d in others) - len(others) <= 64
    assert all(p["chat_id"] == d.payloads()[0]["chat_id"] for d in devs for p in d.payloads())


def test_hostile_services_cost_one_attempt_not_the_daemon(world, notifiers):
    notify = notifiers(**world.settings(push_timeout=2, lease=10))
    a = new_users(1)[0]
    bad = {}
    for what in ("garbage", "hang", "huge", "500", "429"):
        u = new_users(1)[0]
        (d,) = devices(world, u, ("webpush",))
        d.answer(what, retry_after=1 if what == "429" else None)
        bad[what] = (u, d, open_chat(u, a))
    good_user = new_users(1)[0]
    (good,) = devices(world, good_user, ("webpush",))
    good_chat = open_chat(good_user, a)
    for what, (u, d, c) in bad.items():
        psend(a, c, "to a bad service")
    psend(a, good_chat, "to a good one")
    wait_count(good, 1, timeout=15)
    for what, (u, d, c) in bad.items():
        wait_count(d, 1, timeout=15)
    wait_until(lambda: sql("SELECT count(*) FROM chat.push_sends WHERE user_id = ANY(%s) AND attempt >= 1 AND worker IS NULL",
                           ([u for u, _, _ in bad.values()],))[0][0] == len(bad), 20, what="every bad one scheduled again")
    assert notify.proc.poll() is None
    assert notify.http("/healthz")[0] == 200
    assert (notify.metric("chat_notify_pushes_failed_total", kind="webpush") or 0) >= len(bad)


def test_the_apns_provider_token_is_not_signed_again_within_20_minutes(world, notifiers):
    notify = notifiers(**world.settings())
    before = world.distinct_apns_tokens()
    a = new_users(1)[0]
    users = new_users(5)
    devs = [Device(world, "apns", u) for u in users]
    for i, u in enumerate(users):
        psend(a, open_chat(u, a), "apns %d" % i)
    for d in devs:
        wait_count(d, 1)
    notify.signal(__import__("signal").SIGHUP)       # a reload keeps the token too
    time.sleep(0.5)
    u = new_users(1)[0]
    d = Device(world, "apns", u)
    psend(a, open_chat(u, a), "after the reload")
    wait_count(d, 1)
    assert world.distinct_apns_tokens() - before <= 1


def test_certificates_are_checked_and_http_is_refused(world, notifiers):
    """No switch turns the checks off: without the test CA the local services'
    certificate fails (a failed attempt, nothing received); an http:// service
    is refused at start."""
    notify = notifiers(**world.settings(push_ca_file=None))
    a, b, chat = pair()
    devs = devices(world, b)
    psend(a, chat, "over a certificate nobody signed")
    def failures():
        return [line for d in devs for line in notify.log().splitlines()
                if " to device %d " % d.device_id in line and ": retry" in line]
    wait_until(lambda: len(failures()) >= len(devs), 15, what="every push failed")
    assert [d.count() for d in devs] == [0] * len(devs)
    assert all("certificate" in line.lower() or "ssl" in line.lower() for line in failures()), failures()
    for flag in ("--fcm-url", "--apns-url", "--apns-sandbox-url", "--fcm-token-url"):
        bad = subprocess.run([NOTIFY_BIN, "--db", conninfo(), "--listen", "127.0.0.1:%d" % free_port(),
                              flag, "http://127.0.0.1:1"], capture_output=True, text=True, timeout=20)
        assert bad.returncode == 2 and "https only" in bad.stdout + bad.stderr, (flag, bad.stderr)
