"""A fake FCM: one HTTPS server on loopback (a thread, the test CA's
certificate) with both Google's OAuth2 token endpoint and FCM HTTP v1's
messages:send, checking what chat-notify sends with its own code.

    sa = make_service_account(dir, token_uri)   # the JSON chat-notify loads
    with FcmService(tls, sa) as fcm:            # tls: testca.make_ca(dir)
        fcm.answer[device_token] = "unregistered"
        ... fcm.messages, fcm.token_fetches, fcm.refused

Answers per device token (answer[token]): "ok" (default), "unregistered"
(404, FCM's error JSON), "invalid" (400 INVALID_ARGUMENT naming the
token), "401" (the access token refused), "429" (with Retry-After: retry_after), "500", "garbage" (not
HTTP), "hang" (no answer until stopped), "huge" (a 200 of huge_bytes)."""
import http.server
import json
import os
import secrets
import socket
import ssl
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import jws

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def free_port(lo=26000, hi=26999):
    """A loopback port of the range nobody listens on now."""
    for _ in range(200):
        port = lo + secrets.randbelow(hi - lo + 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


def make_service_account(dirpath, token_uri, project_id="chat-test"):
    """Write service-account.json with a fresh RSA key; its path."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    doc = {
        "type": "service_account", "project_id": project_id, "private_key_id": secrets.token_hex(20),
        "private_key": pem, "client_email": f"notify@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)), "token_uri": token_uri,
    }
    path = os.path.join(dirpath, "service-account.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def _fcm_error(code, status, message, details):
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


UNREGISTERED = _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", [
    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}])
INVALID_TOKEN = _fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", [
    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
    {"@type": "type.googleapis.com/google.rpc.BadRequest",
     "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}])


class _Handler(http.server.BaseHTTPRequestHandler):
    # answers go as two writes (headers, body): with Nagle on, the body waits
    # for the client's delayed ACK, 40 ms an answer on loopback
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, doc=None, headers=()):
        body = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        svc = self.server.service
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        path = urllib.parse.urlsplit(self.path).path
        if path == svc.token_path:
            return svc._token(self, body)
        if path.startswith("/v1/projects/") and path.endswith("/messages:send"):
            return svc._send(self, path, body)
        self._reply(404, _fcm_error(404, "NOT_FOUND", "no such path", []))


class _Listener(http.server.ThreadingHTTPServer):
    """socketserver's backlog of 5 overflows when chat-notify opens its 64
    connections at once: the kernel drops SYNs, each retried after 1-3 s."""
    request_queue_size = 256


class FcmService:
    def __init__(self, tls, service_account, port=None, expires_in=3599, retry_after=7, huge_bytes=4 << 20):
        with open(service_account) as f:
            self.account = json.load(f)
        self.public_key = serialization.load_pem_private_key(
            self.account["private_key"].encode(), None).public_key()
        self.port = port or free_port()
        self.origin = f"https://127.0.0.1:{self.port}"
        self.token_path = "/token"
        self.token_url = self.origin + self.token_path
        self.expires_in, self.retry_after, self.huge_bytes = expires_in, retry_after, huge_bytes
        self.answer = {}            # device token -> what to answer
        self.token_answer = "ok"    # the token endpoint's: "ok", "500", "hang"
        self.messages = []          # every message accepted or not: {"headers", "message", "answer"}
        self.refused = []           # why requests were refused (bad JWT, bad shape)
        self.token_fetches = 0
        self.tokens = {}            # access token -> expiry (time.time())
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.tls = tls

    def __enter__(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tls["cert"], self.tls["key"])
        self.httpd = _Listener(("127.0.0.1", self.port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.service = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _refuse(self, h, status, why):
        with self.lock:
            self.refused.append(why)
        h._reply(status, {"error": "invalid_grant" if status == 400 else "unauthenticated", "error_description": why})

    def check_assertion(self, assertion):
        """The assertion's claims, or jws.BadToken saying why not."""
        _, c = jws.verify(assertion, self.public_key, "RS256")
        now = time.time()
        if c.get("iss") != self.account["client_email"]:
            raise jws.BadToken("iss is not the service account's client_email")
        if c.get("scope") != SCOPE:
            raise jws.BadToken(f"scope {c.get('scope')!r}")
        if c.get("aud") != self.token_url:
            raise jws.BadToken(f"aud {c.get('aud')!r} is not {self.token_url}")
        if not isinstance(c.get("iat"), int) or not isinstance(c.get("exp"), int):
            raise jws.BadToken("iat and exp must be integers")
        if c["exp"] - c["iat"] > 3600 or c["exp"] <= now or c["iat"] > now + 60:
            raise jws.BadToken("exp more than an hour after iat, past, or iat in the future")
        return c

    def _token(self, h, body):
        with self.lock:
            self.token_fetches += 1
        if self.token_answer == "hang":
            self.stopping.wait()
            return
        if self.token_answer == "500":
            return h._reply(500, {"error": "internal_failure"})
        form = urllib.parse.parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or len(form.get("assertion", [])) != 1:
            return self._refuse(h, 400, "not a jwt-bearer grant with one assertion")
        try:
            self.check_assertion(form["assertion"][0])
        except jws.BadToken as e:
            return self._refuse(h, 400, f"assertion: {e}")
        token = "ya29.test-" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.time() + self.expires_in
        h._reply(200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def expire_tokens(self):
        """Every access token issued so far is refused from now on (a 401)."""
        with self.lock:
            self.tokens = {t: 0 for t in self.tokens}

    @staticmethod
    def shape_error(doc):
        """What is wrong with a messages:send body, or None."""
        msg = doc.get("message") if isinstance(doc, dict) else None
        if not isinstance(msg, dict) or not isinstance(msg.get("token"), str) or not msg["token"]:
            return "no message.token"
        data = msg.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return "message.data values must all be strings"
        android = msg.get("android")
        if not isinstance(android, dict) or not isinstance(android.get("collapse_key"), str):
            return "no message.android.collapse_key"
        if android.get("priority") not in ("HIGH", "NORMAL"):
            return "android.priority must be HIGH or NORMAL"
        ttl = android.get("ttl")
        if ttl is not None and not (isinstance(ttl, str) and ttl.endswith("s") and ttl[:-1].isdigit()):
            return "android.ttl must be like \"3600s\""
        return None

    def _send(self, h, path, body):
        auth = h.headers.get("authorization", "")
        with self.lock:
            expiry = self.tokens.get(auth[7:]) if auth[:7].lower() == "bearer " else None
        if expiry is None or expiry <= time.time():
            with self.lock:
                self.refused.append("bearer: not a token issued, or expired")
            return h._reply(401, _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", []))
        project = path[len("/v1/projects/"):-len("/messages:send")]
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        why = "project is not the service account's" if project != self.account["project_id"] else self.shape_error(doc)
        if why:
            with self.lock:
                self.refused.append(why)
            return h._reply(400, _fcm_error(400, "INVALID_ARGUMENT", why, []))
        token = doc["message"]["token"]
        mode = self.answer.get(token, "ok")
        with self.lock:
            self.messages.append({"headers": dict(h.headers), "message": doc["message"], "answer": mode,
                                  "at": time.time()})
        self._answer(h, mode)

    def _answer(self, h, mode):
        if mode == "ok":
            h._reply(200, {"name": f"projects/{self.account['project_id']}/messages/{secrets.randbelow(10**16)}"})
        elif mode == "unregistered":
            h._reply(404, UNREGISTERED)
        elif mode == "invalid":
            h._reply(400, INVALID_TOKEN)
        elif mode == "429":
            h._reply(429, _fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"}]),
                headers=[("Retry-After", str(self.retry_after))])
        elif mode == "401":
            h._reply(401, _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", []))
        elif mode == "500":
            h._reply(500, _fcm_error(500, "INTERNAL", "Internal error encountered.", [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INTERNAL"}]))
        elif mode == "garbage":
            h.wfile.write(b"\x00\x17garbage, not HTTP\r\n\r\n")
            h.close_connection = True
        elif mode == "hang":
            self.stopping.wait()
            h.close_connection = True
        elif mode == "huge":
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(self.huge_bytes))
            h.end_headers()
            try:
                chunk = b" " * 65536
                for _ in range(self.huge_bytes // len(chunk)):
                    h.wfile.write(chunk)
            except OSError:
                pass
            h.close_connection = True
        else:
            raise ValueError(f"unknown answer {mode!r}")
