"""A fake Web Push service (RFC 8030) for the chat-notify tests: HTTPS on
loopback in a thread of the test, serving the test CA's certificate
(testca.py).

Every POST to a subscription's endpoint is checked with this module's own
code, not chat-notify's: the body must decrypt as RFC 8291 aes128gcm with
the subscription's private key, the Authorization must be a valid RFC 8292
"vapid t=<JWT>, k=<key>" for this service's origin, TTL, Urgency, Topic and
Content-Encoding must be right. Each message is recorded (payload parsed as
JSON, headers, problems: what was wrong, [] when nothing) and counted; the
answer is the subscription's: 201 (default), 404, 410, 429 (Retry-After),
500, garbage (not HTTP), hang (never answers), huge (a 10 MB body).

    with WebPushService(testca.make_ca(tmpdir)) as svc:
        sub = svc.new_subscription()        # {endpoint, keys: {p256dh, auth}}
        svc.set_answer(sub, "410")
        svc.wait_for(sub, 1); svc.messages(sub)[0]["payload"]
"""
import base64
import http.server
import json
import os
import re
import secrets
import threading
import time

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

try:
    from . import testca
except ImportError:  # imported as a top-level module
    import testca

ANSWERS = ("201", "404", "410", "429", "500", "garbage", "hang", "huge")
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
URGENCIES = ("very-low", "low", "normal", "high")
HUGE = 10 * 1024 * 1024


def b64url_decode(s):
    s = s.strip()
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def public_bytes(key):
    """The uncompressed point of a P-256 key (private or public)."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _hkdf(salt, ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt_aes128gcm(body, ua_private, auth):
    """The plaintext of an RFC 8291 message to ua_private (a P-256 private
    key) with the auth secret; ValueError when it is not one."""
    if len(body) < 86 + 17:
        raise ValueError("shorter than a header and one record")
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if idlen != 65 or rs < 18:
        raise ValueError("keyid is not a 65-byte P-256 point (idlen %d) or rs %d too small" % (idlen, rs))
    as_public = body[21:86]
    try:
        as_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    except ValueError:
        raise ValueError("keyid is not a point on P-256")
    ua_public = public_bytes(ua_private)
    shared = ua_private.exchange(ec.ECDH(), as_key)
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + ua_public + as_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    records = [body[i:i + rs] for i in range(86, len(body), rs)]
    out = b""
    for seq, record in enumerate(records):
        iv = (int.from_bytes(nonce, "big") ^ seq).to_bytes(12, "big")
        try:
            plain = AESGCM(cek).decrypt(iv, record, None)
        except InvalidTag:
            raise ValueError("record %d does not decrypt" % seq)
        plain = plain.rstrip(b"\x00")
        last = seq == len(records) - 1
        if not plain or plain[-1] != (2 if last else 1):
            raise ValueError("record %d: bad padding delimiter" % seq)
        out += plain[:-1]
    return out


def check_vapid(authorization, origin, now=None, want_key=None):
    """The problems (a list, [] when none) of an RFC 8292 Authorization
    header for a request to origin."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"vapid\s+t=([A-Za-z0-9_\-.]+)\s*,\s*k=([A-Za-z0-9_\-]+)", (authorization or "").strip())
    if not m:
        return ["Authorization is not 'vapid t=…, k=…'"]
    token, k = m.groups()
    parts = token.split(".")
    if len(parts) != 3:
        return ["VAPID t is not a JWT"]
    problems = []
    try:
        header, claims = json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))
        sig, key_bytes = b64url_decode(parts[2]), b64url_decode(k)
    except ValueError:
        return ["VAPID JWT or k is not base64url JSON"]
    if header.get("alg") != "ES256" or header.get("typ", "JWT") != "JWT":
        problems.append("JWT header %r is not ES256" % header)
    if want_key is not None and k != want_key:
        problems.append("VAPID k is not the expected application server key")
    try:
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_bytes)
        if len(sig) != 64:
            raise InvalidSignature()
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        pub.verify(der, (parts[0] + "." + parts[1]).encode(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        problems.append("VAPID signature does not verify with k")
    if claims.get("aud") != origin:
        problems.append("aud %r is not %r" % (claims.get("aud"), origin))
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600:
        problems.append("exp %r is not in the next 24 h" % (exp,))
    sub = claims.get("sub")
    if not isinstance(sub, str) or not (sub.startswith("mailto:") or sub.startswith("https://")):
        problems.append("sub %r is not mailto: or https://" % (sub,))
    return problems


def check_headers(headers):
    """The problems of a push request's RFC 8030 headers."""
    problems = []
    ttl = headers.get("TTL")
    if ttl is None or not re.fullmatch(r"[0-9]+", ttl):
        problems.append("TTL missing or not a number: %r" % (ttl,))
    urgency = headers.get("Urgency")
    if urgency is not None and urgency not in URGENCIES:
        problems.append("Urgency %r" % urgency)
    topic = headers.get("Topic")
    if topic is not None and not TOPIC_RE.match(topic):
        problems.append("Topic %r is not 1 to 32 base64url characters" % topic)
    if (headers.get("Content-Encoding") or "").lower() != "aes128gcm":
        problems.append("Content-Encoding %r is not aes128gcm" % headers.get("Content-Encoding"))
    return problems


class Subscription:
    def __init__(self, origin):
        self.id = secrets.token_urlsafe(16)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = "%s/push/%s" % (origin, self.id)
        self.answer = "201"
        self.retry_after = None
        self.messages = []

    def as_dict(self):
        return {"endpoint": self.endpoint,
                "keys": {"p256dh": b64url_encode(public_bytes(self.key)), "auth": b64url_encode(self.auth)}}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # no 40 ms delayed ACK between headers and body
    server_version = "fake-webpush/1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        svc = self.server.service
        sub = svc._by_path(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length <= 1 << 20 else b""
        if sub is None:
            return self._answer(404, b"no such subscription")
        svc._record(sub, self.headers, body)
        answer, retry_after = sub.answer, sub.retry_after
        if answer == "garbage":
            self.wfile.write(b"this is not HTTP at all\r\n\r\n")
            self.close_connection = True
        elif answer == "hang":
            svc._stopping.wait()
            self.close_connection = True
        elif answer == "huge":
            self._huge()
        else:
            extra = {"Retry-After": str(retry_after)} if answer == "429" and retry_after is not None else {}
            self._answer(int(answer), b"" if answer == "201" else b'{"reason": "fake"}', extra)

    def do_GET(self):
        self._answer(405, b"")

    def _answer(self, status, body, extra=None):
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status == 201:
            self.send_header("Location", "%s/message/%s" % (self.server.service.origin, secrets.token_hex(8)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _huge(self):
        self.send_response(201)
        self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(HUGE // len(chunk)):
                self.wfile.write(chunk)
        except OSError:
            pass  # the client stopped reading: what it should do
        self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256            # chat-notify opens up to push_concurrency connections at once

    def __init__(self, service, ctx):
        self.service = service
        self.ctx = ctx
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(30)
        # the handshake in the handler's thread: a client that never
        # finishes it stalls only itself
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # TLS failures and resets are the tests' business, not noise


class WebPushService:
    """The fake service. paths: testca.make_ca()'s dict. want_key: the
    base64url application server key every request must carry (None: any)."""

    def __init__(self, paths, want_key=None):
        self.paths = paths
        self.want_key = want_key
        self._subs = {}
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server = _Server(self, testca.server_context(paths))
        self.port = self._server.server_address[1]
        self.origin = "https://127.0.0.1:%d" % self.port
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def new_subscription(self):
        """A fresh subscription: {endpoint, keys: {p256dh, auth}}."""
        sub = Subscription(self.origin)
        with self._lock:
            self._subs[sub.id] = sub
        return sub.as_dict()

    def _sub(self, sub):
        endpoint = sub["endpoint"] if isinstance(sub, dict) else sub
        return self._by_path(endpoint[len(self.origin):] if endpoint.startswith(self.origin) else endpoint)

    def _by_path(self, path):
        m = re.fullmatch(r"/push/([A-Za-z0-9_-]+)", path.split("?")[0])
        with self._lock:
            return self._subs.get(m.group(1)) if m else None

    def set_answer(self, sub, answer, retry_after=None):
        """How sub's endpoint answers from now on (one of ANSWERS)."""
        if answer not in ANSWERS:
            raise ValueError(answer)
        s = self._sub(sub)
        s.answer, s.retry_after = answer, retry_after

    def _record(self, sub, headers, body):
        problems = check_headers(headers)
        problems += check_vapid(headers.get("Authorization"), self.origin, want_key=self.want_key)
        payload = plaintext = None
        try:
            plaintext = decrypt_aes128gcm(body, sub.key, sub.auth)
            payload = json.loads(plaintext)
        except ValueError as e:
            problems.append("payload: %s" % e)
        msg = {"endpoint": sub.endpoint, "headers": dict(headers.items()), "body_len": len(body),
               "plaintext": plaintext, "payload": payload, "problems": problems,
               "answer": sub.answer, "at": time.time()}
        with self._lock:
            sub.messages.append(msg)
            self._lock.notify_all()

    def messages(self, sub):
        with self._lock:
            return list(self._sub(sub).messages)

    def count(self, sub):
        with self._lock:
            return len(self._sub(sub).messages)

    def counts(self):
        """{endpoint: messages} of every subscription."""
        with self._lock:
            return {s.endpoint: len(s.messages) for s in self._subs.values()}

    def all_problems(self):
        """Every problem of every message: [] when all were right."""
        with self._lock:
            return [(s.endpoint, p) for s in self._subs.values() for m in s.messages for p in m["problems"]]

    def wait_for(self, sub, n, timeout=10):
        """Wait until sub has n messages; True, or False on timeout."""
        s = self._sub(sub)
        end = time.time() + timeout
        with self._lock:
            while len(s.messages) < n:
                left = end - time.time()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True
