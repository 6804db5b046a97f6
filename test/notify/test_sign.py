"""The signer (relay/notify/sign.c) alone: the Standard Webhooks
specification's published test vector (in relay/notify/test/sign_test.c,
under ASan/UBSan), then random secrets, ids and bodies signed by it and by
Python's hmac, which must agree."""
import base64
import hashlib
import hmac
import os
import random
import subprocess

from conftest import ROOT, new_secret

SIGN_TEST = os.path.join(ROOT, "relay", "build", "notify-sign-test")


def build():
    subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "relay"), "sign-test"], check=True,
                   stdout=subprocess.DEVNULL)


def python_sign(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    return "v1," + base64.b64encode(hmac.new(key, b"%s.%d." % (msg_id.encode(), ts) + body,
                                             hashlib.sha256).digest()).decode()


def test_the_published_vector_and_refusals():
    build()
    out = subprocess.run([SIGN_TEST], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   published vector: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" in out.stdout, out.stdout
    assert "0 failure(s)" in out.stdout


def test_random_inputs_agree_with_python_hmac():
    build()
    rng = random.Random(16)
    for i in range(40):
        secrets = [new_secret(rng.randint(24, 64)) for _ in range(rng.randint(1, 2))]
        msg_id = "evt_%d" % rng.randint(1, 10 ** 12)
        ts = rng.randint(1, 2 ** 33)
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000)))
        out = subprocess.run([SIGN_TEST, " ".join(secrets), msg_id, str(ts)], input=body,
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr
        want = " ".join(python_sign(s, msg_id, ts, body) for s in secrets)
        assert out.stdout.decode().strip() == want, (i, secrets)


def test_a_secret_that_is_not_whsec_base64_is_refused():
    build()
    for bad in ("whsec_!!!!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_" + "A" * 200):
        out = subprocess.run([SIGN_TEST, bad, "evt_1", "1"], input=b"{}", capture_output=True, timeout=30)
        assert out.returncode == 1 and b"refused" in out.stderr, bad
