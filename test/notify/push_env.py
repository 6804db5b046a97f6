"""The push tests' world: a throw-away CA, the three local push services of
push_services/ (each checks what it receives with its own code), the
credentials chat-notify signs with, and devices registered through
chat.register_device. A Device reads back what its service received, as
the payload every kind carries (docs/notifications.md, "The payload")."""
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile

from conftest import sql

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "push_services"))
import testca  # noqa: E402
from apns_service import ApnsService, make_apns_key  # noqa: E402
from fcm_service import FcmService, free_port, make_service_account  # noqa: E402
from webpush_service import WebPushService  # noqa: E402

# A test's words for an answer, in each service's own
ANSWERS = {
    "webpush": {"ok": "201", "gone": "410", "404": "404", "hang": "hang", "garbage": "garbage", "huge": "huge",
                "500": "500", "429": "429"},
    "fcm": {"ok": "ok", "gone": "unregistered", "404": "unregistered", "hang": "hang", "garbage": "garbage",
            "huge": "huge", "500": "500", "429": "429"},
    "apns": {"ok": "ok", "gone": "unregistered", "404": "bad_token", "hang": "hang", "500": "500", "429": "429"},
}


def payload_of(kind, m):
    """The common payload of a message as a service recorded it."""
    if kind == "webpush":
        return m["payload"]
    if kind == "fcm":
        data = dict(m["message"].get("data", {}))
        for k in ("chat_id", "badge", "count"):
            if k in data:
                data[k] = int(data[k])
        return data
    return {k: v for k, v in m["body"].items() if k != "aps"}


class Device:
    """One registered device of one user on one of the services."""

    def __init__(self, world, kind, user):
        self.world, self.kind, self.user = world, kind, user
        if kind == "webpush":
            self.token = world.webpush.new_subscription()
            self.handle = self.token
        elif kind == "fcm":
            self.handle = "fcm-" + secrets.token_urlsafe(40)
            self.token = {"token": self.handle}
        else:
            self.handle = secrets.token_hex(32)
            self.token = {"token": self.handle, "environment": "production"}
        self.device_id = sql("SELECT chat.register_device(%s, %s, %s)", (user, kind, json.dumps(self.token)))[0][0]

    def messages(self):
        if self.kind == "webpush":
            return self.world.webpush.messages(self.handle)
        if self.kind == "fcm":
            with self.world.fcm.lock:
                return [m for m in self.world.fcm.messages if m["message"].get("token") == self.handle]
        with self.world.apns.lock:
            return [m for m in self.world.apns.notifications if m["token"] == self.handle]

    def payloads(self):
        """What arrived, oldest first, as the common payload."""
        return [payload_of(self.kind, m) for m in self.messages()]

    def arrivals(self):
        """time.time() of each arrival."""
        return [m["at"] for m in self.messages()]

    def count(self):
        return len(self.messages())

    def answer(self, what, retry_after=None):
        """ok, gone, 404, hang, garbage, huge, 500 or 429, in the service's own terms."""
        given = ANSWERS[self.kind][what]
        if self.kind == "webpush":
            self.world.webpush.set_answer(self.handle, given, retry_after=retry_after)
        else:
            getattr(self.world, self.kind).answer[self.handle] = given

    def registered(self):
        return sql("SELECT count(*) FROM chat.devices WHERE device_id = %s", (self.device_id,))[0][0] == 1


class World:
    """The CA, the services and the credentials, in tmpdir."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.ca = testca.make_ca(os.path.join(tmpdir, "ca"))
        self.vapid_key = os.path.join(tmpdir, "vapid.pem")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.vapid_key],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "ec", "-in", self.vapid_key, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.vapid_public = base64.urlsafe_b64encode(der[-65:]).decode().rstrip("=")
        self.webpush = WebPushService(self.ca, want_key=self.vapid_public).start()
        port = free_port()
        self.service_account = make_service_account(tmpdir, "https://127.0.0.1:%d/token" % port)
        self.fcm = FcmService(self.ca, self.service_account, port=port, retry_after=1).__enter__()
        self.apns_key, self.apns_key_id, self.apns_team = make_apns_key(tmpdir)
        self.apns = ApnsService(self.ca, self.apns_key, self.apns_key_id, self.apns_team).__enter__()

    def settings(self, **extra):
        """chat-notify's settings for all three kinds, against the local services."""
        s = {"push_ca_file": self.ca["ca"], "vapid_key_file": self.vapid_key,
             "vapid_subject": "mailto:push-test@example.com",
             "fcm_service_account_file": self.service_account, "fcm_url": self.fcm.origin,
             "apns_key_file": self.apns_key, "apns_key_id": self.apns_key_id, "apns_team_id": self.apns_team,
             "apns_topic": "com.example.chat", "apns_url": self.apns.origin,
             "apns_sandbox_url": self.apns.origin, "push_poll_ms": 200, "push_timeout": 3, "lease": 12,
             "webhook_timeout": 5}
        s.update(extra)
        return s

    def problems(self):
        """Everything a service found wrong in what it received: [] when all was right."""
        with self.fcm.lock, self.apns.lock:
            return self.webpush.all_problems() + list(self.fcm.refused) + list(self.apns.refused)

    def distinct_apns_tokens(self):
        with self.apns.lock:
            return len(self.apns.provider_tokens)

    def stop(self):
        self.webpush.stop()
        self.fcm.__exit__(None, None, None)
        self.apns.__exit__(None, None, None)


def make_world():
    return World(tempfile.mkdtemp(prefix="push-test-"))
