"""The fake Web Push service (push_services/webpush_service.py) checked on
its own, so the integration tests can trust it: messages encrypted here
with an aes128gcm encoder of this file (python cryptography) and signed
with a VAPID JWT made here decrypt and pass; a bad VAPID, a body for
another key, bad headers are reported as problems; the answers set per
subscription are given. No database, no chat-notify."""
import http.client
import json
import os
import socket
import ssl
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from push_services import testca
from push_services.webpush_service import WebPushService, b64url_decode, b64url_encode, public_bytes


@pytest.fixture
def notify_role():
    """No database here: conftest.py's autouse fixtures overridden."""


@pytest.fixture
def no_endpoints():
    pass


def hkdf(salt, ikm, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)


def encrypt(sub, plaintext, rs=4096):
    """RFC 8291 aes128gcm, one record: this test's own encoder."""
    ua_public = b64url_decode(sub["keys"]["p256dh"])
    auth = b64url_decode(sub["keys"]["auth"])
    as_key = ec.generate_private_key(ec.SECP256R1())
    as_public = public_bytes(as_key)
    shared = as_key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public))
    salt = os.urandom(16)
    ikm = hkdf(auth, shared, b"WebPush: info\x00" + ua_public + as_public, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    return salt + rs.to_bytes(4, "big") + bytes([65]) + as_public + record


def vapid(aud, key=None, exp=None, sub="mailto:ops@example.org"):
    key = key or ec.generate_private_key(ec.SECP256R1())
    enc = lambda o: b64url_encode(json.dumps(o, separators=(",", ":")).encode())  # noqa: E731
    claims = {"aud": aud, "exp": int(time.time()) + 12 * 3600 if exp is None else exp}
    if sub is not None:
        claims["sub"] = sub
    signing_input = enc({"typ": "JWT", "alg": "ES256"}) + "." + enc(claims)
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    sig = b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return "vapid t=%s.%s, k=%s" % (signing_input, sig, b64url_encode(public_bytes(key)))


@pytest.fixture
def svc(tmp_path):
    paths = testca.make_ca(str(tmp_path / "ca"))
    with WebPushService(paths) as s:
        s.client_ctx = testca.client_context(paths)
        yield s


def post(svc, sub, body, headers=None, auth=None, timeout=10):
    h = {"TTL": "60", "Urgency": "high", "Topic": "chat-123", "Content-Encoding": "aes128gcm",
         "Content-Type": "application/octet-stream",
         "Authorization": auth if auth is not None else vapid(svc.origin)}
    h.update(headers or {})
    conn = http.client.HTTPSConnection("127.0.0.1", svc.port, context=svc.client_ctx, timeout=timeout)
    try:
        conn.request("POST", sub["endpoint"][len(svc.origin):], body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_a_message_encrypted_here_decrypts_and_passes(svc):
    sub = svc.new_subscription()
    payload = {"type": "alert", "chat_id": 123, "title": "User 42", "body": "héllo " * 100}
    status, headers, _ = post(svc, sub, encrypt(sub, json.dumps(payload).encode()))
    assert status == 201 and "Location" in headers
    (msg,) = svc.messages(sub)
    assert msg["problems"] == [] and msg["payload"] == payload
    assert msg["headers"]["Topic"] == "chat-123" and svc.count(sub) == 1


def test_a_body_for_another_subscription_is_a_problem(svc):
    a, b = svc.new_subscription(), svc.new_subscription()
    post(svc, a, encrypt(b, b'{"x": 1}'))
    (msg,) = svc.messages(a)
    assert msg["payload"] is None and any("does not decrypt" in p for p in msg["problems"])


def test_a_bad_vapid_is_a_problem(svc):
    sub = svc.new_subscription()
    body = encrypt(sub, b"{}")
    good = vapid(svc.origin)
    t, k = good[len("vapid t="):].split(", k=")
    other_k = b64url_encode(public_bytes(ec.generate_private_key(ec.SECP256R1())))
    cases = {
        "signature does not verify": "vapid t=%s, k=%s" % (t, other_k),
        "aud": vapid("https://elsewhere.example"),
        "exp": vapid(svc.origin, exp=int(time.time()) - 10),
        "in the next 24 h": vapid(svc.origin, exp=int(time.time()) + 25 * 3600),
        "sub": vapid(svc.origin, sub=None),
        "not 'vapid": "WebPush " + t,
    }
    for i, (want, auth) in enumerate(cases.items()):
        post(svc, sub, body, auth=auth)
        msg = svc.messages(sub)[i]
        assert msg["payload"] == {}, want
        assert any(want in p for p in msg["problems"]), (want, msg["problems"])


def test_bad_headers_are_problems(svc):
    sub = svc.new_subscription()
    post(svc, sub, encrypt(sub, b"{}"), headers={"TTL": "soon", "Topic": "a" * 33, "Urgency": "now",
                                                 "Content-Encoding": "aesgcm"})
    problems = " ".join(svc.messages(sub)[0]["problems"])
    for want in ("TTL", "Topic", "Urgency", "Content-Encoding"):
        assert want in problems


def test_answers_set_per_subscription(svc):
    sub, other = svc.new_subscription(), svc.new_subscription()
    body = encrypt(sub, b"{}")
    for answer, status in (("410", 410), ("404", 404), ("500", 500)):
        svc.set_answer(sub, answer)
        assert post(svc, sub, body)[0] == status
    svc.set_answer(sub, "429", retry_after=7)
    status, headers, _ = post(svc, sub, body)
    assert status == 429 and headers["Retry-After"] == "7"
    assert post(svc, other, encrypt(other, b"{}"))[0] == 201
    svc.set_answer(sub, "garbage")
    with pytest.raises(http.client.HTTPException):
        post(svc, sub, body)
    svc.set_answer(sub, "hang")
    with pytest.raises((socket.timeout, TimeoutError)):
        post(svc, sub, body, timeout=1)
    assert svc.count(sub) == 6 and svc.count(other) == 1
    assert svc.all_problems() == []


def test_huge_answer(svc):
    sub = svc.new_subscription()
    svc.set_answer(sub, "huge")
    status, _, data = post(svc, sub, encrypt(sub, b"{}"))
    assert status == 201 and len(data) == 10 * 1024 * 1024


def test_the_certificate_is_the_test_cas(svc):
    with pytest.raises(ssl.SSLError):
        conn = http.client.HTTPSConnection("127.0.0.1", svc.port, context=ssl.create_default_context(), timeout=5)
        conn.request("POST", "/push/x", body=b"")
