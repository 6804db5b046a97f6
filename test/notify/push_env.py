"""The push tests' world: a throw-away CA, the three local push services of
push_services/ (each checks what it receives with its own code), the
credentials chat-notify signs with, and devices registered through
chat.register_device. A Device reads back what its service received, as
the payload every kind carries (docs/notifications.md, "The payload")."""
import json
import os
import subprocess
import tempfile

from conftest import sql
from push_services import testca
try:
    from push_services.apns_service import APNsService, make_apns_key
    from push_services.fcm_service import FCMService, make_service_account
except ImportError:
    APNsService = None
from push_services.webpush_service import WebPushService


def payload_of(kind, m):
    """The common payload of a message as a service recorded it."""
    if kind == "webpush":
        return m["payload"]
    raise NotImplementedError(kind)


class Device:
    """One registered device of one user on one of the services."""

    def __init__(self, world, kind, user):
        self.world, self.kind, self.user = world, kind, user
        if kind == "webpush":
            self.token = world.webpush.new_subscription()
            self.handle = self.token
        elif kind == "fcm":
            self.handle = world.fcm.new_token()
            self.token = {"token": self.handle}
        else:
            self.handle = world.apns.new_token()
            self.token = {"token": self.handle, "environment": "production"}
        self.device_id = sql("SELECT chat.register_device(%s, %s, %s)", (user, kind, json.dumps(self.token)))[0][0]

    @property
    def service(self):
        return getattr(self.world, self.kind)

    def messages(self):
        return self.service.messages(self.handle)

    def payloads(self):
        """What arrived, oldest first, as the common payload."""
        return [payload_of(self.kind, m) for m in self.messages()]

    def arrivals(self):
        """time.time() of each arrival."""
        return [m["at"] for m in self.messages()]

    def count(self):
        return self.service.count(self.handle)

    def answer(self, what, retry_after=None):
        self.service.set_answer(self.handle, what, retry_after=retry_after)

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
        import base64
        self.vapid_public = base64.urlsafe_b64encode(der[-65:]).decode().rstrip("=")
        self.webpush = WebPushService(self.ca, want_key=self.vapid_public).start()
        if APNsService is None:
            self.fcm = self.apns = None
            return
        self.fcm = FCMService(self.ca).start()
        self.service_account = make_service_account(tmpdir, self.fcm.token_url)
        self.apns_key, self.apns_key_id, self.apns_team = make_apns_key(tmpdir)
        self.apns = APNsService(self.ca, self.apns_key, self.apns_key_id, self.apns_team).start()

    def settings(self, **extra):
        """chat-notify's settings for all three kinds, against the local services."""
        s = {"push_ca_file": self.ca["ca"], "vapid_key_file": self.vapid_key,
             "vapid_subject": "mailto:push-test@example.com", "push_poll_ms": 200, "push_timeout": 3, "lease": 12, "webhook_timeout": 5}
        if self.fcm is None:
            s.update(extra)
            return s
        s = {**s, "fcm_service_account_file": self.service_account, "fcm_url": self.fcm.origin,
             "apns_key_file": self.apns_key, "apns_key_id": self.apns_key_id, "apns_team_id": self.apns_team,
             "apns_topic": "com.example.chat", "apns_url": self.apns.origin,
             "apns_sandbox_url": self.apns.origin, "push_poll_ms": 200, "push_timeout": 3, "lease": 12, "webhook_timeout": 5}
        s.update(extra)
        return s

    def problems(self):
        """Everything a service found wrong in what it received: [] when all was right."""
        return self.webpush.all_problems() + (self.fcm.all_problems() + self.apns.all_problems() if self.fcm else [])

    def stop(self):
        for svc in (self.webpush, self.fcm, self.apns):
            if svc:
                svc.stop()


def make_world():
    return World(tempfile.mkdtemp(prefix="push-test-"))
