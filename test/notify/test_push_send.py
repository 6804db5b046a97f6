"""chat-notify's FCM and APNs senders (relay/notify/fcm_send.c,
apns_send.c and their tokens) alone, through relay/build/notify-push-try
(`make -C relay push-try`), against the fake services: no database, no
chat-notify. One line per push: device, status, gone, retry_after, error."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "push_services"))

import apns_service  # noqa: E402
import fcm_service  # noqa: E402
import testca  # noqa: E402

TRY = os.path.join(os.path.dirname(__file__), "..", "..", "relay", "build", "notify-push-try")


# conftest.py's autouse fixtures touch the database: none here
@pytest.fixture(scope="session")
def notify_role():
    yield


@pytest.fixture
def no_endpoints():
    yield


@pytest.fixture(scope="module", autouse=True)
def built():
    """The harness is built here, never skipped: make's own dependencies keep it current."""
    subprocess.run(["make", "-s", "-C", os.path.join(os.path.dirname(TRY), ".."), "push-try"], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="push-send-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(args):
    out = subprocess.run([TRY] + args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {}
    for line in out.stdout.splitlines():
        dev, status, gone, retry, error = re.fullmatch(r"(\S+) (\d+) gone=(\d) retry_after=(-?\d+) ?(.*)", line).groups()
        lines[dev] = (int(status), gone == "1", int(retry), error)
    return lines, out.stderr


@pytest.fixture
def fcm(tmp):
    tls = testca.make_ca(tmp)
    port = fcm_service.free_port()
    sa = fcm_service.make_service_account(tmp, f"https://127.0.0.1:{port}/token")
    with fcm_service.FcmService(tls, sa, port=port) as svc:
        svc.args = [sa, svc.origin, tls["ca"]]
        yield svc


def test_fcm_answers_one_token_for_all(fcm):
    fcm.answer.update({"gone": "unregistered", "bad": "invalid", "busy": "429", "down": "500",
                       "junk": "garbage", "big": "huge"})
    got, err = run(["fcm"] + fcm.args + ["ALERT", "ok1", "ok2", "gone", "bad", "busy", "down", "junk", "big"])
    assert fcm.token_fetches == 1 and fcm.refused == []
    assert got["ok1"] == (200, False, -1, "") and got["ok2"][0] == 200
    assert got["gone"] == (404, True, -1, "FCM HTTP 404 UNREGISTERED")
    assert got["bad"][:2] == (400, True)
    assert got["busy"] == (429, False, 7, "FCM HTTP 429 QUOTA_EXCEEDED")
    assert got["down"][:3] == (500, False, -1)
    assert got["junk"][:2] == (0, False) and got["big"][:2] == (0, False)
    m = next(m["message"] for m in fcm.messages if m["message"]["token"] == "ok1")
    assert m["android"] == {"collapse_key": "chat-7", "priority": "HIGH", "ttl": "60s", "notification": {
        "title": "User 42", "body": "hello", "tag": "chat-7", "notification_count": 3}}
    assert m["notification"] == {"title": "User 42", "body": "hello"}
    assert m["data"] == {"type": "message", "chat_id": "7", "unread": "3"}
    assert "ok1" not in err and "ya29" not in err  # no device or access token logged


def test_fcm_clear_is_data_only(fcm):
    got, _ = run(["fcm"] + fcm.args + ["CLEAR", "dev"])
    assert got["dev"][0] == 200
    m = fcm.messages[0]["message"]
    assert "notification" not in m and "notification" not in m["android"] and m["android"]["priority"] == "NORMAL"


def test_fcm_token_failure_fails_every_waiter(fcm):
    fcm.token_answer = "500"
    got, _ = run(["fcm"] + fcm.args + ["ALERT", "a", "b", "c"])
    assert fcm.token_fetches == 1 and fcm.messages == []
    assert all(v[0] == 0 and "token endpoint: HTTP 500" in v[3] for v in got.values()) and len(got) == 3


def test_fcm_token_cached_and_dropped_on_401(fcm):
    fcm.answer["unauth"] = "401"
    got, _ = run(["fcm"] + fcm.args + ["ALERT-SEQ", "a", "b", "unauth", "c"])
    assert [m["message"]["token"] for m in fcm.messages] == ["a", "b", "unauth", "c"]
    assert got["unauth"][:2] == (401, False) and got["c"][0] == 200
    assert fcm.token_fetches == 2  # a, b on the first; c on a new one after the 401


@pytest.fixture
def apns(tmp):
    tls = testca.make_ca(tmp)
    p8, kid, team = apns_service.make_apns_key(tmp)
    with apns_service.ApnsService(tls, p8, kid, team, topic="com.example.chat") as svc:
        svc.args = [p8, kid, team, "com.example.chat", svc.origin, tls["ca"]]
        yield svc


def test_apns_alert_and_answers(apns):
    t = {c: c * 64 for c in "abcdef"}
    apns.answer.update({t["b"]: "unregistered", t["c"]: "bad_token", t["d"]: "429", t["e"]: "500", t["f"]: "expired"})
    got, err = run(["apns"] + apns.args + ["ALERT"] + list(t.values()) + ["nothex"])
    assert apns.refused == [] and len(apns.provider_tokens) == 1
    assert got[t["a"]] == (200, False, -1, "")
    assert got[t["b"]] == (410, True, -1, "APNs HTTP 410 Unregistered")
    assert got[t["c"]][:2] == (400, True) and got[t["d"]][:3] == (429, False, 7)
    assert got[t["e"]][:2] == (500, False) and got[t["f"]] == (403, False, -1, "APNs HTTP 403 ExpiredProviderToken")
    assert got["nothex"][:2] == (0, True)
    n = next(n for n in apns.notifications if n["token"] == t["a"])
    h = n["headers"]
    assert (h["apns-push-type"], h["apns-priority"], h["apns-collapse-id"]) == ("alert", "10", "chat-7")
    assert int(h["apns-expiration"]) > 0
    assert n["body"]["aps"] == {"alert": {"title": "User 42", "body": "hello"}, "badge": 3, "sound": "default",
                                "thread-id": "chat-7"}
    assert n["body"]["chat_id"] == 7 and t["a"] not in err


def test_apns_clear_is_background(apns):
    got, _ = run(["apns"] + apns.args + ["CLEAR", "a" * 64])
    assert got["a" * 64][0] == 200
    n = apns.notifications[0]
    assert (n["headers"]["apns-push-type"], n["headers"]["apns-priority"], n["headers"]["apns-expiration"]) == \
        ("background", "5", "0")
    assert n["body"]["aps"] == {"content-available": 1, "badge": 3}


def test_the_jwt_unit_test():
    """relay/notify/test/push_jwt_test.c under ASan/UBSan: RS256 and ES256
    verified with OpenSSL, wrong keys and alg none refused, the APNs
    provider token kept within its window and renewed after it."""
    relay = os.path.join(os.path.dirname(TRY), "..")
    subprocess.run(["make", "-s", "-C", relay, "push-jwt-test"], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([os.path.join(relay, "build", "notify-push-jwt-test")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not ok" not in out.stdout.lower() and "fail" not in out.stdout.lower().replace("0 failure", "")
