"""Web Push's encryption and VAPID (relay/notify/webpush_crypt.c,
vapid.c) alone: the RFC 8291 section 5 example byte for byte and VAPID
JWTs verified with OpenSSL, the sender's requests and answer mapping on
stubs (relay/notify/test/webpush_test.c, webpush_send_test.c, under
ASan/UBSan), then random payloads encrypted by it and decrypted here with
python cryptography, and its VAPID headers checked here. No database."""
import os
import random
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import ROOT
from push_services.webpush_service import (b64url_decode, b64url_encode, check_vapid, decrypt_aes128gcm,
                                           public_bytes)

WEBPUSH_TEST = os.path.join(ROOT, "relay", "build", "notify-webpush-test")

# RFC 8291 section 5 / appendix A: the UA's key pair, auth secret and the message
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_MESSAGE = ("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6Tlz"
               "AC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")


@pytest.fixture
def notify_role():
    """No database here: conftest.py's autouse fixtures overridden."""


@pytest.fixture
def no_endpoints():
    pass


@pytest.fixture(scope="module", autouse=True)
def build():
    subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "relay"), "webpush-test"], check=True,
                   stdout=subprocess.DEVNULL)


def encrypt(p256dh, auth, plaintext):
    return subprocess.run([WEBPUSH_TEST, "encrypt", p256dh, auth], input=plaintext, capture_output=True, timeout=30)


def test_the_rfc_example_and_vapid_checks():
    out = subprocess.run([WEBPUSH_TEST], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   RFC 8291 section 5 message, byte for byte" in out.stdout, out.stdout
    assert "ok   signature verifies with k" in out.stdout
    assert "ok   send: answer 410 (outcome 0)" in out.stdout and "ok   send: p256dh off the curve" in out.stdout
    assert "0 failure(s)" in out.stdout


def test_python_decrypts_the_rfc_example():
    """The Python decrypter the cross-check below relies on, on the RFC's message."""
    ua = ec.derive_private_key(int.from_bytes(b64url_decode(RFC_UA_PRIVATE), "big"), ec.SECP256R1())
    assert b64url_encode(public_bytes(ua)) == RFC_UA_PUBLIC
    plain = decrypt_aes128gcm(b64url_decode(RFC_MESSAGE), ua, b64url_decode(RFC_AUTH))
    assert plain == b"When I grow up, I want to be a watermelon"


def test_random_payloads_decrypt_in_python():
    rng = random.Random(8291)
    for i in range(30):
        ua = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        plaintext = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 41, rng.randint(0, 3993), 3993])))
        out = encrypt(b64url_encode(public_bytes(ua)), b64url_encode(auth), plaintext)
        assert out.returncode == 0, out.stderr
        body = b64url_decode(out.stdout.decode())
        assert len(body) == 86 + len(plaintext) + 1 + 16
        assert int.from_bytes(body[16:20], "big") == 4096 and body[20] == 65
        assert decrypt_aes128gcm(body, ua, auth) == plaintext, i


def test_every_message_has_a_fresh_salt_and_key():
    ua = ec.generate_private_key(ec.SECP256R1())
    args = (b64url_encode(public_bytes(ua)), b64url_encode(os.urandom(16)), b"same")
    a, b = (b64url_decode(encrypt(*args).stdout.decode()) for _ in range(2))
    assert a[:16] != b[:16] and a[21:86] != b[21:86]


def test_too_long_and_bad_keys_are_refused():
    ua = b64url_encode(public_bytes(ec.generate_private_key(ec.SECP256R1())))
    auth = b64url_encode(os.urandom(16))
    assert encrypt(ua, auth, b"x" * 3994).returncode == 1
    assert encrypt(ua, auth, b"x" * 3993).returncode == 0
    for bad_ua, bad_auth in ((ua[:-2], auth), ("*" + ua[1:], auth), (ua, auth[:-3]), ("B" + "A" * 86, auth)):
        out = encrypt(bad_ua, bad_auth, b"{}")
        assert out.returncode == 1 and b"refused" in out.stderr, (bad_ua, bad_auth)


def test_vapid_header_checked_in_python(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "vapid.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    out = subprocess.run([WEBPUSH_TEST, "vapid", str(path), "mailto:ops@example.org",
                          "https://push.example.net:8443/wpush/v2/abc"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    header = out.stdout.strip()
    want_key = b64url_encode(public_bytes(key))
    assert check_vapid(header, "https://push.example.net:8443", want_key=want_key) == []
    assert check_vapid(header, "https://push.example.net") != []
    assert check_vapid(header, "https://push.example.net:8443", now=time.time() + 13 * 3600) != []


def test_what_the_c_code_makes_passes_the_fake_service(tmp_path):
    """The C encryption and VAPID header, POSTed here to the fake service:
    it decrypts the payload and finds no problem (so the integration tests'
    fake and the sender agree)."""
    import http.client
    import json

    from push_services import testca
    from push_services.webpush_service import WebPushService

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "vapid.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    paths = testca.make_ca(str(tmp_path / "ca"))
    with WebPushService(paths, want_key=b64url_encode(public_bytes(key))) as svc:
        sub = svc.new_subscription()
        payload = {"type": "alert", "chat_id": 123, "title": "User 42", "body": "wassermelone " * 50}
        body = encrypt(sub["keys"]["p256dh"], sub["keys"]["auth"], json.dumps(payload).encode())
        auth = subprocess.run([WEBPUSH_TEST, "vapid", str(path), "mailto:ops@example.org", sub["endpoint"]],
                              capture_output=True, text=True, timeout=30)
        assert body.returncode == 0 and auth.returncode == 0
        conn = http.client.HTTPSConnection("127.0.0.1", svc.port, context=testca.client_context(paths), timeout=10)
        conn.request("POST", sub["endpoint"][len(svc.origin):], body=b64url_decode(body.stdout.decode()),
                     headers={"TTL": "0", "Urgency": "normal", "Topic": "chat-123", "Content-Encoding": "aes128gcm",
                              "Authorization": auth.stdout.strip()})
        assert conn.getresponse().status == 201
        conn.close()
        (msg,) = svc.messages(sub)
        assert msg["problems"] == [] and msg["payload"] == payload
