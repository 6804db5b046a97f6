"""A fake APNs: HTTP/2 over TLS (ALPN h2) on loopback, python3-h2 and ssl,
one thread per connection, checking what chat-notify sends with its own code.

    p8, key_id, team_id = make_apns_key(dir)
    with ApnsService(tls, p8, key_id, team_id, topic="com.example.chat") as apns:
        apns.answer[device_token] = "unregistered"
        ... apns.notifications, apns.provider_tokens, apns.refused

POST /3/device/<hex token>: the provider token (authorization: bearer …)
must be ES256 under the key's public key with its kid and iss, iat at most
an hour old (else 403 InvalidProviderToken / ExpiredProviderToken); the
apns-* headers must hold (else 400 with APNs' reason). Answers per device
token (answer[token]): "ok" (200 and an apns-id, default), "unregistered"
(410 with a timestamp), "bad_token" (400 BadDeviceToken), "not_for_topic"
(400 DeviceTokenNotForTopic), "expired" (403 ExpiredProviderToken), "429",
"500", "hang" (the stream is never answered; others on the connection are)."""
import json
import os
import re
import secrets
import socket
import ssl
import threading
import time
import uuid

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import jws
from fcm_service import free_port


def make_apns_key(dirpath):
    """A fresh P-256 key as Apple gives it (PKCS#8 PEM, AuthKey_<kid>.p8): (path, key id, team id)."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_id = secrets.token_hex(5).upper()
    team_id = secrets.token_hex(5).upper()
    path = os.path.join(dirpath, f"AuthKey_{key_id}.p8")
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return path, key_id, team_id


STATUS_OF = {"unregistered": (410, "Unregistered"), "bad_token": (400, "BadDeviceToken"),
             "not_for_topic": (400, "DeviceTokenNotForTopic"), "expired": (403, "ExpiredProviderToken"),
             "429": (429, "TooManyRequests"), "500": (500, "InternalServerError")}


class ApnsService:
    def __init__(self, tls, p8_path, key_id, team_id, topic="com.example.chat", port=None):
        with open(p8_path, "rb") as f:
            self.public_key = serialization.load_pem_private_key(f.read(), None).public_key()
        self.key_id, self.team_id, self.topic, self.tls = key_id, team_id, topic, tls
        self.port = port or free_port()
        self.origin = f"https://127.0.0.1:{self.port}"
        self.answer = {}             # device token -> what to answer
        self.notifications = []      # {"token", "headers", "body", "answer"} of every one accepted
        self.refused = []            # (status, reason) of the ones refused for what was sent
        self.provider_tokens = set()  # the distinct provider tokens seen (valid or not)
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def __enter__(self):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.tls["cert"], self.tls["key"])
        self.ctx.set_alpn_protocols(["h2"])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(s,), daemon=True).start()

    def _connection(self, raw):
        try:
            raw.settimeout(5)
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        try:
            if s.selected_alpn_protocol() != "h2":
                return  # APNs speaks HTTP/2 only
            self._h2(s)
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            pass
        finally:
            s.close()

    def _h2(self, s):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        s.settimeout(0.2)
        streams = {}
        while not self.stopping.is_set():
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    streams[ev.stream_id] = (dict(ev.headers), bytearray())
                elif isinstance(ev, h2.events.DataReceived):
                    streams[ev.stream_id][1].extend(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in streams:
                    headers, body = streams.pop(ev.stream_id)
                    self._request(conn, ev.stream_id, headers, bytes(body))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    s.sendall(conn.data_to_send())
                    return
            s.sendall(conn.data_to_send())

    @staticmethod
    def _reply(conn, stream, status, reason=None, extra=()):
        headers = [(":status", str(status)), ("apns-id", str(uuid.uuid4()).upper())] + list(extra)
        if reason is None:
            conn.send_headers(stream, headers, end_stream=True)
            return
        doc = {"reason": reason}
        if status == 410:
            doc["timestamp"] = int(time.time() * 1000)
        body = json.dumps(doc).encode()
        conn.send_headers(stream, headers + [("content-type", "application/json"), ("content-length", str(len(body)))])
        conn.send_data(stream, body, end_stream=True)

    def check_provider_token(self, auth):
        """None when auth is a good bearer provider token, else (status, reason)."""
        if not auth.startswith("bearer "):
            return 403, "MissingProviderToken"
        token = auth[7:]
        with self.lock:
            self.provider_tokens.add(token)
        try:
            header, claims = jws.verify(token, self.public_key, "ES256")
        except jws.BadToken:
            return 403, "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id or not isinstance(claims.get("iat"), int):
            return 403, "InvalidProviderToken"
        if time.time() - claims["iat"] > 3600:
            return 403, "ExpiredProviderToken"
        return None

    def check_request(self, h, body):
        """None when the request's shape holds, else (status, reason)."""
        if h.get(":method") != "POST":
            return 405, "MethodNotAllowed"
        if not re.fullmatch(r"/3/device/[0-9a-fA-F]{32,200}", h.get(":path", "")):
            return 400, "BadPath" if not h.get(":path", "").startswith("/3/device/") else "BadDeviceToken"
        if h.get("apns-topic") != self.topic:
            return 400, "DeviceTokenNotForTopic" if h.get("apns-topic") else "MissingTopic"
        kind, prio = h.get("apns-push-type"), h.get("apns-priority", "10")
        if kind not in ("alert", "background") or prio not in ("10", "5") or (kind == "background" and prio != "5"):
            return 400, "BadPriority" if kind in ("alert", "background") else "InvalidPushType"
        if len(h.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"
        if not h.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate"
        try:
            doc = json.loads(body)
        except ValueError:
            return 400, "PayloadEmpty" if not body else "BadPayload"
        if not isinstance(doc, dict) or not isinstance(doc.get("aps"), dict):
            return 400, "BadPayload"
        return None

    def _request(self, conn, stream, h, body):
        bad = self.check_provider_token(h.get("authorization", "")) or self.check_request(h, body)
        if bad:
            with self.lock:
                self.refused.append(bad)
            return self._reply(conn, stream, *bad)
        token = h[":path"][len("/3/device/"):]
        mode = self.answer.get(token, "ok")
        with self.lock:
            self.notifications.append({"token": token, "headers": h, "body": json.loads(body), "answer": mode,
                                       "at": time.time()})
        if mode == "ok":
            self._reply(conn, stream, 200)
        elif mode == "hang":
            pass
        elif mode in STATUS_OF:
            extra = [("retry-after", "7")] if mode == "429" else []
            self._reply(conn, stream, *STATUS_OF[mode], extra=extra)
        else:
            raise ValueError(f"unknown answer {mode!r}")
