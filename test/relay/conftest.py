"""Fixtures of the relay tests: real chat-relay processes (the ASan/UBSan
build when present) on the test database of test/run-tests.sh, JWTs made
here (HS256 with hmac, RS256/ES256 with python3-cryptography), and a small
synchronous-looking WebSocket client on top of python3-websockets."""
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from harness import PGBIN, ROOT, Ids, pg_connect, wait_until  # noqa: E402,F401

ASAN_BIN = os.path.join(ROOT, "relay", "chat-relay-asan")
PLAIN_BIN = os.path.join(ROOT, "relay", "chat-relay")
RELAY_BIN = os.environ.get("RELAY_BIN") or (ASAN_BIN if os.path.exists(ASAN_BIN) else PLAIN_BIN)
# RELAY_EVENT_LIB=poll runs the whole suite on libwebsockets' poll loop
EVENT_LIB = os.environ.get("RELAY_EVENT_LIB", "libev")
ORIGIN = "http://app.example"
SECRET = b"relay-test-secret-0123456789-abcdefghijklmnop"

_ids = Ids(int(os.environ.get("RELAY_TEST_PORT_BASE") or 18100 + (os.getpid() % 40) * 20), 900000 + (os.getpid() % 1000) * 1000)
free_port = _ids.free_port
new_users = _ids.new_users


def db():
    """An autocommit connection to the test database."""
    return pg_connect()


@contextlib.contextmanager
def cursor():
    """A cursor on a new autocommit connection (one transaction per statement)."""
    conn = db()
    try:
        yield conn.cursor()
    finally:
        conn.close()


def sql(query, args=()):
    with cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall() if cur.description else None


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(sub, exp_in=3600, alg="HS256", key=SECRET, header=None, drop=(), **claims):
    """A signed token; alg 'none' gives an unsigned one."""
    body = {"sub": str(sub), "exp": int(time.time()) + exp_in}
    body.update(claims)
    for k in drop:
        body.pop(k, None)
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing = (b64(json.dumps(head).encode()) + "." + b64(json.dumps(body).encode())).encode()
    if alg == "none":
        return signing.decode() + "."
    if alg == "HS256":
        sig = hmac.new(key, signing, hashlib.sha256).digest()
    else:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
        if alg == "RS256":
            sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        else:
            der = key.sign(signing, ec.ECDSA(hashes.SHA256()))
            r, s = utils.decode_dss_signature(der)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing.decode() + "." + b64(sig)


def is_msg(chat, seq=None, type="message"):
    """Predicate of an event of this type (a message by default) in chat,
    at seq if given."""
    return lambda e: e.get("type") == type and e.get("chat_id") == chat and (seq is None or e.get("seq") == seq)


@pytest.fixture(scope="session", autouse=True)
def relay_role():
    """The relay logs in as chat_relay (created by the extension: chat_app plus
    the relay's presence functions)."""
    sql("ALTER ROLE chat_relay LOGIN")


def conninfo(user="chat_relay"):
    return "host=%s port=%s dbname=%s user=%s" % (
        os.environ["PGHOST"], os.environ["PGPORT"], os.environ.get("PGDATABASE", "chat_test"), user)


@contextlib.contextmanager
def refused_login(role):
    """A role of chat_relay's rights that may not log in (yet): yields its
    conninfo; ALTER ROLE … LOGIN lets it in. Dropped afterwards."""
    sql("DROP ROLE IF EXISTS %s" % role)
    sql("CREATE ROLE %s NOLOGIN IN ROLE chat_relay" % role)
    try:
        yield conninfo(role)
    finally:
        sql("DROP ROLE %s" % role)


def envelope(event, to):
    """The bytes the extension publishes: {"to":[…],"ev":{…}} (to None: a broadcast)."""
    compact = dict(separators=(",", ":"), ensure_ascii=False)
    return '{"to":%s,"ev":%s}' % (json.dumps(to, **compact), json.dumps(event, **compact))


def notify(cur, kind, seqs, recipients, chat_id=7, **fields):
    """Publish synthetic events straight on chat_events (sealed by
    chat.event_seal, as only the extension's owner can), one NOTIFY each, in
    seq order: envelopes to recipients of {"v": 1, "type": kind, "chat_id", "seq", **fields}."""
    events = [envelope(dict(v=1, type=kind, chat_id=chat_id, seq=seq, **fields), recipients)
              for seq in seqs]
    cur.execute("SELECT count(pg_notify('chat_events', chat.event_seal(e))) FROM unnest(%s::text[]) e", (events,))


def publish_sealed(cur, *payloads):
    """Publish payloads on chat_events sealed as the extension seals them."""
    for p in payloads:
        cur.execute("SELECT pg_notify('chat_events', chat.event_seal(%s))", (p,))


class Relay:
    """A chat-relay process with its own config file and log."""

    def __init__(self, tmpdir, name, wrap=None, wait=True, **opts):
        self.name = name
        self.wrap = wrap or []      # a command to run the relay under (valgrind)
        self.port = free_port()
        self.dir = tmpdir
        self.secret_file = os.path.join(tmpdir, "secret")
        with open(self.secret_file, "wb") as f:
            f.write(SECRET + b"\n")
        settings = {
            "listen": "127.0.0.1:%d" % self.port, "db": conninfo(), "relay_id": name,
            "jwt_secret_file": self.secret_file, "allow_origin": [ORIGIN],
            "heartbeat_interval": 1, "presence_grace": 2, "log_level": "info",
            "backoff_max_ms": 1000, "event_lib": EVENT_LIB,
        }
        settings.update(opts)
        self.settings = settings
        self.config = os.path.join(tmpdir, "%s.conf" % name)
        self.write_config()
        self.logfile = os.path.join(tmpdir, "%s.log" % name)
        self.proc = None
        self.start(wait)

    def write_config(self, **changes):
        self.settings.update(changes)
        with open(self.config, "w") as f:
            f.write("# relay test config\n")
            for k, v in self.settings.items():
                if v is None:
                    continue
                for item in (v if isinstance(v, list) else [v]):
                    if isinstance(item, bool):
                        item = "true" if item else "false"
                    f.write('%s = "%s"\n' % (k, item))

    def start(self, wait=True):
        """Run it; with wait, until /healthz says its database is up."""
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=24")
        self.log_handle = open(self.logfile, "ab")
        binary = PLAIN_BIN if self.wrap else RELAY_BIN   # no ASan under valgrind
        self.proc = subprocess.Popen(self.wrap + [binary, "--config", self.config], stdout=self.log_handle,
                                     stderr=subprocess.STDOUT, env=env)
        try:
            self.wait_healthy(60 if self.wrap else 20, database=wait)
        except BaseException:
            # not yet in the fixture's list: left running, it would hold its
            # relay id (and its port) for the tests after this one
            self.proc.kill()
            self.proc.wait()
            self.log_handle.close()
            raise

    @property
    def metrics_port(self):
        """Where /metrics is: metrics_listen's port when it is set."""
        admin = self.settings.get("metrics_listen")
        return int(admin.rsplit(":", 1)[1]) if admin else self.port

    def http(self, path, port=None):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port or self.port, path), timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, OSError):
            return None, ""

    def healthy(self):
        return self.http("/healthz")[0] == 200

    def wait_healthy(self, timeout=20, database=True):
        """Until /healthz says 200 (with database: its database is up), or
        at all (without: it serves)."""
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError("relay %s exited %s:\n%s" % (self.name, self.proc.returncode, self.log()))
            status = self.http("/healthz")[0]
            return status == 200 if database else status is not None
        wait_until(ok, timeout, what="relay %s %s" % (self.name, "healthy" if database else "serving"))

    def metric(self, name):
        body = self.http("/metrics", self.metrics_port)[1]
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                if line.startswith(name + " "):
                    return float(line.split()[-1])
        return None

    def url(self, token=None, path="/ws"):
        base = "ws://127.0.0.1:%d%s" % (self.port, path)
        return base + ("?access_token=" + token if token is not None else "")

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=None):
        """SIGTERM; returns the exit code (ASan reports leaks with 23)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout or (90 if self.wrap else 20))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("relay %s did not stop on SIGTERM" % self.name)
        self.log_handle.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log_handle.close()


@pytest.fixture
def relays():
    """Factory of relays; every one is stopped at the end and must exit 0
    (no leak, no sanitizer report) unless it was killed."""
    tmp = tempfile.mkdtemp(prefix="relay-test-")
    made = []

    def make(name=None, wrap=None, wait=True, **opts):
        r = Relay(tmp, name or "relay-%d-%d" % (os.getpid(), len(made)), wrap, wait, **opts)
        made.append(r)
        return r
    yield make
    failures = []
    for r in made:
        if r.proc.poll() is None:
            code = r.stop()
            if code != 0:
                failures.append("relay %s exited %d:\n%s" % (r.name, code, r.log()[-6000:]))
        elif r.proc.returncode not in (0, -9) and not getattr(r, "expected_exit", False):
            failures.append("relay %s exited %d:\n%s" % (r.name, r.proc.returncode, r.log()[-6000:]))
    for r in made:
        if "runtime error" in r.log() or "AddressSanitizer" in r.log():
            failures.append("sanitizer report from %s:\n%s" % (r.name, r.log()[-6000:]))
    assert not failures, "\n".join(failures)
    shutil.rmtree(tmp, ignore_errors=True)     # kept when the test failed: its logs


class Client:
    """One WebSocket connection; requests are answered by id, everything
    else is kept in .events."""

    def __init__(self, ws, welcome):
        self.ws = ws
        self.welcome = welcome
        self.events = []
        self.next_id = 0

    async def recv(self, timeout=5):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def request(self, type, timeout=10, **params):
        self.next_id += 1
        rid = self.next_id
        await self.ws.send(json.dumps(dict(type=type, id=rid, **params)))
        return await self.reply(rid, timeout)

    async def reply(self, rid, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            m = await self.recv(max(0.01, deadline - time.monotonic()))
            if m.get("type") in ("ok", "error") and m.get("id") == rid:
                return m
            self.events.append(m)

    async def ok(self, type, **params):
        m = await self.request(type, **params)
        assert m["type"] == "ok", m
        return m["result"]

    async def event(self, pred, timeout=5):
        """The first event (kept or new) for which pred is true; removed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if pred(e):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("event not received within %.1fs; got %r" % (timeout, self.events[-5:]))
            try:
                self.events.append(await self.recv(left))
            except asyncio.TimeoutError:
                pass

    async def close(self):
        await self.ws.close()


async def connect(relay, user, token=None, origin=ORIGIN, **kw):
    token = token if token is not None else jwt(user)
    ws = await websockets.connect(relay.url(token), origin=origin, open_timeout=10,
                                  close_timeout=2, **kw)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome" and welcome["user_id"] == user, welcome
    return Client(ws, welcome)


async def refused(relay, token, origin=ORIGIN, headers=None):
    """The HTTP status an upgrade is refused with (None: not refused)."""
    try:
        ws = await websockets.connect(relay.url(token), origin=origin, open_timeout=5,
                                      extra_headers=headers or {})
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    except (websockets.exceptions.InvalidMessage, websockets.exceptions.ConnectionClosed,
            ConnectionError, EOFError):
        return -1
    await ws.close()
    return None


def run(coro):
    return asyncio.run(coro)


def open_chat(a, b):
    return sql("SELECT chat.open_chat(%s, 'direct', NULL, %s)", (a, b))[0][0]


def make_contacts(a, b):
    """A chat of a and b in which both have written: they see each other's
    presence. Returns the chat id."""
    chat = open_chat(a, b)
    sql("SELECT chat.send_message(%s, %s, 'hi'), chat.send_message(%s, %s, 'hello')", (a, chat, b, chat))
    return chat
