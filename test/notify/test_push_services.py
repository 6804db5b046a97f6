"""The fake FCM and APNs of test/notify/push_services/ checked from Python
alone (no chat-notify, no database), so that the push tests can trust them:
a good JWT accepted, a bad signature refused, the answers they are told to
give, and APNs spoken over real HTTP/2 (ALPN h2) with the test CA."""
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "push_services"))

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

import apns_service  # noqa: E402
import fcm_service  # noqa: E402
import jws  # noqa: E402
import testca  # noqa: E402


# conftest.py's autouse fixtures touch the database: none here
@pytest.fixture(scope="session")
def notify_role():
    yield


@pytest.fixture
def no_endpoints():
    yield


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="push-services-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tls(tmp):
    return testca.make_ca(os.path.join(tmp, "ca"))


def _ctx(tls, alpn=None):
    ctx = ssl.create_default_context(cafile=tls["ca"])
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def _post(url, tls, body, headers=()):
    """(status, headers, body) of a POST over HTTPS checked against the test CA."""
    req = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    try:
        with urllib.request.urlopen(req, context=_ctx(tls), timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# FCM

@pytest.fixture
def fcm(tmp, tls):
    port = fcm_service.free_port()
    sa = fcm_service.make_service_account(tmp, f"https://127.0.0.1:{port}/token")
    with fcm_service.FcmService(tls, sa, port=port, expires_in=1800) as svc:
        svc.key = serialization.load_pem_private_key(svc.account["private_key"].encode(), None)
        yield svc


def _assertion(fcm, key=None, **over):
    now = int(time.time())
    claims = {"iss": fcm.account["client_email"], "scope": fcm_service.SCOPE, "aud": fcm.token_url,
              "iat": now, "exp": now + 3600}
    claims.update(over)
    return jws.sign({"alg": "RS256", "typ": "JWT"}, claims, key or fcm.key)


def _token(fcm, tls, assertion):
    form = urllib.parse.urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    return _post(fcm.token_url, tls, form.encode(), [("content-type", "application/x-www-form-urlencoded")])


def _send(fcm, tls, access, message):
    url = f"{fcm.origin}/v1/projects/{fcm.account['project_id']}/messages:send"
    return _post(url, tls, json.dumps({"message": message}).encode(),
                 [("authorization", f"Bearer {access}"), ("content-type", "application/json")])


def _message(token="dev-1", **over):
    m = {"token": token, "data": {"chat_id": "7", "type": "message"},
         "android": {"collapse_key": "chat-7", "priority": "HIGH", "ttl": "60s"}}
    m.update(over)
    return m


def test_fcm_good_assertion_gets_a_token_that_sends(fcm, tls):
    status, _, body = _token(fcm, tls, _assertion(fcm))
    assert status == 200, body
    doc = json.loads(body)
    assert doc["expires_in"] == 1800 and fcm.token_fetches == 1
    status, _, body = _send(fcm, tls, doc["access_token"], _message())
    assert status == 200 and json.loads(body)["name"].startswith("projects/chat-test/messages/")
    assert [m["message"]["token"] for m in fcm.messages] == ["dev-1"] and fcm.refused == []


@pytest.mark.parametrize("why,kwargs", [
    ("another key", {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)}),
    ("wrong aud", {"aud": "https://oauth2.googleapis.com/token"}),
    ("wrong scope", {"scope": "https://www.googleapis.com/auth/cloud-platform"}),
    ("exp over an hour", {"exp": int(time.time()) + 7200}),
    ("expired", {"iat": int(time.time()) - 4000, "exp": int(time.time()) - 400}),
])
def test_fcm_bad_assertion_refused(fcm, tls, why, kwargs):
    status, _, _ = _token(fcm, tls, _assertion(fcm, **kwargs))
    assert status == 400, why
    assert len(fcm.refused) == 1 and fcm.tokens == {}


def test_fcm_refuses_unknown_and_expired_bearer_and_bad_shapes(fcm, tls):
    assert _send(fcm, tls, "ya29.made-up", _message())[0] == 401
    access = json.loads(_token(fcm, tls, _assertion(fcm))[2])["access_token"]
    assert _send(fcm, tls, access, _message(data={"badge": 3}))[0] == 400
    assert _send(fcm, tls, access, _message(android={"priority": "HIGH"}))[0] == 400
    fcm.expire_tokens()
    assert _send(fcm, tls, access, _message())[0] == 401
    assert fcm.messages == [] and len(fcm.refused) == 4


def test_fcm_programmed_answers(fcm, tls):
    access = json.loads(_token(fcm, tls, _assertion(fcm))[2])["access_token"]
    fcm.answer.update({"gone": "unregistered", "bad": "invalid", "busy": "429", "down": "500"})
    status, _, body = _send(fcm, tls, access, _message("gone"))
    assert status == 404 and json.loads(body)["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    status, _, body = _send(fcm, tls, access, _message("bad"))
    assert status == 400 and json.loads(body)["error"]["status"] == "INVALID_ARGUMENT"
    status, headers, _ = _send(fcm, tls, access, _message("busy"))
    assert status == 429 and headers["Retry-After"] == "7"
    assert _send(fcm, tls, access, _message("down"))[0] == 500
    fcm.answer["junk"] = "garbage"
    with pytest.raises(Exception):
        _send(fcm, tls, access, _message("junk"))
    fcm.answer["slow"] = "hang"
    req = urllib.request.Request(f"{fcm.origin}/v1/projects/chat-test/messages:send",
                                 data=json.dumps({"message": _message("slow")}).encode(), method="POST",
                                 headers={"authorization": f"Bearer {access}"})
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(req, context=_ctx(tls), timeout=1)
    fcm.answer["big"] = "huge"
    status, _, body = _send(fcm, tls, access, _message("big"))
    assert status == 200 and len(body) == fcm.huge_bytes
    assert [m["answer"] for m in fcm.messages] == ["unregistered", "invalid", "429", "500", "garbage", "hang", "huge"]


# APNs

@pytest.fixture
def apns(tmp, tls):
    p8, kid, team = apns_service.make_apns_key(tmp)
    with apns_service.ApnsService(tls, p8, kid, team, topic="com.example.chat") as svc:
        with open(p8, "rb") as f:
            svc.key = serialization.load_pem_private_key(f.read(), None)
        yield svc


def _provider_token(apns, key=None, iat=None):
    return jws.sign({"alg": "ES256", "kid": apns.key_id},
                    {"iss": apns.team_id, "iat": int(time.time()) if iat is None else iat}, key or apns.key)


def _h2_posts(apns, tls, requests, timeout=5):
    """Send [(path, headers, body)] on one HTTP/2 connection; {stream: (status, headers, body)}
    of the answered ones (a hung stream is missing after timeout)."""
    raw = socket.create_connection(("127.0.0.1", apns.port), timeout=timeout)
    s = _ctx(tls, ["h2"]).wrap_socket(raw, server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    ids = []
    for path, headers, body in requests:
        sid = conn.get_next_available_stream_id()
        ids.append(sid)
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"),
                                (":path", path)] + list(headers.items()))
        conn.send_data(sid, body, end_stream=True)
    s.sendall(conn.data_to_send())
    answers, partial, deadline = {}, {}, time.time() + timeout
    s.settimeout(0.2)
    try:
        while len(answers) < len(ids) and time.time() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    partial[ev.stream_id] = [dict(ev.headers), bytearray()]
                elif isinstance(ev, h2.events.DataReceived):
                    partial[ev.stream_id][1].extend(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    h, b = partial.pop(ev.stream_id)
                    answers[ids.index(ev.stream_id)] = (int(h[":status"]), h, bytes(b))
            s.sendall(conn.data_to_send())
    finally:
        s.close()
    return answers


def _apns_request(apns, token="ab" * 32, jwt=None, **over):
    headers = {"authorization": f"bearer {jwt or _provider_token(apns)}", "apns-topic": "com.example.chat",
               "apns-push-type": "alert", "apns-priority": "10", "apns-collapse-id": "chat-7",
               "apns-expiration": str(int(time.time()) + 60)}
    headers.update(over)
    body = json.dumps({"aps": {"alert": {"title": "User 1", "body": "hi"}, "badge": 1}, "chat_id": 7}).encode()
    return f"/3/device/{token}", headers, body


def test_apns_good_token_over_h2(apns, tls):
    answers = _h2_posts(apns, tls, [_apns_request(apns)])
    status, headers, _ = answers[0]
    assert status == 200 and len(headers["apns-id"]) == 36
    assert len(apns.notifications) == 1 and apns.notifications[0]["body"]["chat_id"] == 7
    assert apns.notifications[0]["headers"]["apns-collapse-id"] == "chat-7" and len(apns.provider_tokens) == 1


def test_apns_refusals(apns, tls):
    other = ec.generate_private_key(ec.SECP256R1())
    good = _provider_token(apns)
    reqs = [_apns_request(apns, jwt=_provider_token(apns, key=other)),
            _apns_request(apns, jwt=_provider_token(apns, iat=int(time.time()) - 3700)),
            _apns_request(apns, jwt=good, **{"apns-topic": "com.example.other"}),
            _apns_request(apns, jwt=good, **{"apns-push-type": "background"}),
            _apns_request(apns, jwt=good, **{"apns-collapse-id": "x" * 65})]
    answers = _h2_posts(apns, tls, reqs)
    reasons = [(answers[i][0], json.loads(answers[i][2])["reason"]) for i in range(len(reqs))]
    assert reasons == [(403, "InvalidProviderToken"), (403, "ExpiredProviderToken"), (400, "DeviceTokenNotForTopic"),
                       (400, "BadPriority"), (400, "BadCollapseId")]
    assert apns.notifications == [] and len(apns.provider_tokens) == 3


def test_apns_programmed_answers_and_hang(apns, tls):
    toks = {"gone": "aa" * 32, "bad": "bb" * 32, "busy": "cc" * 32, "down": "dd" * 32, "slow": "ee" * 32}
    apns.answer.update({toks["gone"]: "unregistered", toks["bad"]: "bad_token", toks["busy"]: "429",
                        toks["down"]: "500", toks["slow"]: "hang"})
    jwt = _provider_token(apns)
    names = ["slow", "gone", "bad", "busy", "down"]
    answers = _h2_posts(apns, tls, [_apns_request(apns, toks[n], jwt=jwt) for n in names], timeout=2)
    assert 0 not in answers  # the hung stream, the others answered beside it
    assert answers[1][0] == 410 and isinstance(json.loads(answers[1][2])["timestamp"], int)
    assert json.loads(answers[2][2])["reason"] == "BadDeviceToken"
    assert answers[3][0] == 429 and answers[3][1]["retry-after"] == "7"
    assert answers[4][0] == 500
    assert len(apns.provider_tokens) == 1 and len(apns.notifications) == 5


def test_apns_curl_http2(apns, tls):
    if not shutil.which("curl") or "HTTP2" not in subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout:
        pytest.skip("no curl with HTTP/2")
    path, headers, body = _apns_request(apns)
    args = ["curl", "-sS", "--http2", "--cacert", tls["ca"], "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
            "--data-binary", body.decode(), f"https://localhost:{apns.port}{path}"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=10)
    assert out.stdout == "2 200", out.stderr
