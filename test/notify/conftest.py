"""Fixtures of the chat-notify tests: real chat-notify processes (the
ASan/UBSan build when present) on the test database of test/run-tests.sh,
and webhook receivers: http.server on loopback, in a thread of the test,
that verify every signature with their own HMAC code and count deliveries
by webhook-id.

Retries cannot be shortened (the schedule is the extension's: 5 s, 5 min,
…); tests fast-forward them instead, as the owner: fast_forward() moves
next_at of every delivery not leased to now(), which is what the schedule
does when its time comes."""
import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from harness import ROOT, Ids, pg_connect, wait_until  # noqa: E402,F401

ASAN_BIN = os.path.join(ROOT, "relay", "chat-notify-asan")
PLAIN_BIN = os.path.join(ROOT, "relay", "chat-notify")
NOTIFY_BIN = os.environ.get("NOTIFY_BIN") or (ASAN_BIN if os.path.exists(ASAN_BIN) else PLAIN_BIN)

_ids = Ids(int(os.environ.get("NOTIFY_TEST_PORT_BASE") or 19100 + (os.getpid() % 40) * 20), 700000 + (os.getpid() % 1000) * 1000)
free_port = _ids.free_port
new_users = _ids.new_users


def sql(query, args=()):
    """One statement on a new autocommit connection, as the owner."""
    conn = pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def new_secret(n=32):
    return "whsec_" + base64.b64encode(os.urandom(n)).decode()


def open_chat(a, b):
    return sql("SELECT chat.open_chat(%s, 'direct', NULL, %s)", (a, b))[0][0]


def send(user, chat, body):
    """send_message; the message's seq."""
    return sql("SELECT (chat.send_message(%s, %s, %s))->>'seq'", (user, chat, body))[0][0]


def add_webhook(url, secret, types=None):
    return sql("SELECT chat.add_webhook(%s, %s, %s)", (url, secret, types))[0][0]


def fast_forward():
    """Due now: every delivery not leased (the owner's shortcut through the
    retry schedule; a leased one's next_at is its lease, left alone)."""
    sql("UPDATE chat.webhook_deliveries SET next_at = now() WHERE leased_by IS NULL AND next_at > now()")


def pending():
    """Deliveries not done yet, all endpoints."""
    return sql("SELECT count(*) FROM chat.webhook_deliveries")[0][0]


@pytest.fixture(scope="session", autouse=True)
def notify_role():
    """The daemon logs in as chat_notify (created by the extension: the
    claim / result functions and chat_event_reader); NOLOGIN again after, as
    the extension makes it (pgTAP checks that)."""
    sql("ALTER ROLE chat_notify LOGIN")
    yield
    sql("ALTER ROLE chat_notify NOLOGIN")


@pytest.fixture(autouse=True)
def no_endpoints():
    """Every test starts and ends without endpoints: a daemon claims for all."""
    sql("SELECT chat.remove_webhook(endpoint_id) FROM chat.webhooks")
    yield
    sql("SELECT chat.remove_webhook(endpoint_id) FROM chat.webhooks")


def conninfo(user="chat_notify"):
    return "host=%s port=%s dbname=%s user=%s" % (
        os.environ["PGHOST"], os.environ["PGPORT"], os.environ.get("PGDATABASE", "chat_test"), user)


class Notify:
    """A chat-notify process with its own config file and log."""

    def __init__(self, tmpdir, name, wait=True, args=(), **opts):
        self.name = name
        self.port = free_port()
        settings = {"listen": "127.0.0.1:%d" % self.port, "db": conninfo(), "worker_id": name,
                    "poll_interval": 1, "log_level": "info", "backoff_max_ms": 1000}
        settings.update(opts)
        self.settings = settings
        self.args = list(args)
        self.config = os.path.join(tmpdir, "%s.conf" % name)
        self.logfile = os.path.join(tmpdir, "%s.log" % name)
        self.write_config()
        self.start(wait)

    def write_config(self, **changes):
        self.settings.update(changes)
        with open(self.config, "w") as f:
            f.write("# chat-notify test config\n")
            for k, v in self.settings.items():
                if v is not None:
                    f.write('%s = "%s"\n' % (k, v))

    def start(self, wait=True):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=24")
        self.log_handle = open(self.logfile, "ab")
        self.proc = subprocess.Popen([NOTIFY_BIN, "--config", self.config] + self.args,
                                     stdout=self.log_handle, stderr=subprocess.STDOUT, env=env)
        if wait:
            try:
                self.wait_healthy()
            except BaseException:
                self.proc.kill()
                self.proc.wait()
                self.log_handle.close()
                raise

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, OSError):
            return None, ""

    def wait_healthy(self, timeout=20):
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError("chat-notify %s exited %s:\n%s" % (self.name, self.proc.returncode, self.log()))
            return self.http("/healthz")[0] == 200
        wait_until(ok, timeout, what="chat-notify %s healthy" % self.name)

    def metric(self, name, **labels):
        """A sample's value (None when absent); labels select one of a family."""
        want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}" if labels else "")
        for line in self.http("/metrics")[1].splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return None

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=40):
        """SIGTERM; the exit code (ASan reports leaks with 23)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("chat-notify %s did not stop on SIGTERM" % self.name)
        self.log_handle.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log_handle.close()


@pytest.fixture
def notifiers():
    """Factory of chat-notify processes; each is stopped at the end and must
    exit 0 (no leak, no sanitizer report) unless it was killed."""
    tmp = tempfile.mkdtemp(prefix="notify-test-")
    made = []

    def make(name=None, wait=True, args=(), **opts):
        n = Notify(tmp, name or "notify-%d-%d" % (os.getpid(), len(made)), wait, args, **opts)
        made.append(n)
        return n
    yield make
    failures = []
    for n in made:
        if n.proc.poll() is None:
            code = n.stop()
            if code != 0:
                failures.append("chat-notify %s exited %d:\n%s" % (n.name, code, n.log()[-6000:]))
        elif n.proc.returncode not in (0, -9):
            failures.append("chat-notify %s exited %d:\n%s" % (n.name, n.proc.returncode, n.log()[-6000:]))
        if "runtime error" in n.log() or "AddressSanitizer" in n.log():
            failures.append("sanitizer report from %s:\n%s" % (n.name, n.log()[-6000:]))
    assert not failures, "\n".join(failures)
    shutil.rmtree(tmp, ignore_errors=True)     # kept when the test failed: its logs


def verify(secrets, headers, body, now=None):
    """The receiver's own check (docs/notifications.md, "Verifying a
    delivery"): the signatures of webhook-signature that verify, as the
    indexes of the secrets they verify with; a replayed timestamp verifies
    nothing."""
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
    if abs((now or time.time()) - int(ts)) > 300:
        return []
    signed = ("%s.%s." % (msg_id, ts)).encode() + body
    given = [s[3:] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    found = []
    for i, secret in enumerate(secrets):
        key = base64.b64decode(secret[len("whsec_"):])
        want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        found.append(any(hmac.compare_digest(want, g) for g in given))
    return found


class Delivery:
    def __init__(self, headers, body, valid):
        self.id = headers.get("webhook-id")
        self.headers = headers
        self.body = body
        self.json = None
        try:
            self.json = json.loads(body)
        except ValueError:
            pass
        self.valid = valid          # per secret: did a signature verify with it
        self.at = time.monotonic()


class Listener(http.server.ThreadingHTTPServer):
    """A listen backlog deeper than http.server's 5: with more connections
    than that at once, the kernel drops SYNs and each dropped one costs the
    client a 1 s retransmit."""
    request_queue_size = 128


class Receiver:
    """A webhook receiver on 127.0.0.1: mode says how it answers ("ok",
    "status:NNN", "hang", "redirect:URL", "huge", "cut", "garbage", "slow:S").
    Every request is kept as a Delivery; concurrent requests of one
    webhook-id are counted (max_concurrent)."""

    def __init__(self, secrets, mode="ok", port=None):
        self.secrets = list(secrets)
        self.mode = mode
        self.deliveries = []
        self.lock = threading.Lock()
        self.active = {}
        self.max_concurrent = 0
        self.release = threading.Event()    # ends a hang
        self.port = port or free_port()
        self.server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def start(self):
        self.server = Listener(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self):
        with self.lock:
            return [d.id for d in self.deliveries]

    def count(self):
        with self.lock:
            return len(self.deliveries)

    def of_type(self, kind):
        with self.lock:
            return [d for d in self.deliveries if d.json and d.json.get("type") == kind]

    def _record(self, headers, body):
        d = Delivery(headers, body, verify(self.secrets, headers, body))
        with self.lock:
            self.deliveries.append(d)
            self.active[d.id] = self.active.get(d.id, 0) + 1
            self.max_concurrent = max(self.max_concurrent, self.active[d.id])
        return d

    def _done(self, d):
        with self.lock:
            self.active[d.id] -= 1

    def _handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                d = receiver._record(headers, body)
                try:
                    receiver._answer(self, receiver.mode)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    receiver._done(d)
        return Handler

    def _answer(self, h, mode):
        """Answer one request as mode says."""
        kind, _, arg = mode.partition(":")
        if kind == "slow":
            time.sleep(float(arg))
            kind = "ok"
        if kind in ("ok", "status"):
            self._reply(h, int(arg) if kind == "status" else 200, b"ok")
        elif kind == "redirect":
            h.send_response(302)
            h.send_header("location", arg)
            h.send_header("content-length", "0")
            h.end_headers()
        elif kind == "hang":
            self.release.wait(60)
            h.close_connection = True
        elif kind == "huge":
            h.send_response(200)
            h.send_header("content-length", str(10 << 20))
            h.end_headers()
            chunk = b"x" * 65536
            for _ in range(160):
                h.wfile.write(chunk)
        elif kind == "cut":
            h.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly part of it")
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "garbage":
            h.wfile.write(b"\x00\x01 this is not HTTP at all\r\n\r\n")
            h.wfile.flush()
            h.close_connection = True

    @staticmethod
    def _reply(h, status, body):
        h.send_response(status)
        h.send_header("content-type", "text/plain")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture
def receivers():
    """Factory of started receivers, stopped at the end."""
    made = []

    def make(secrets, mode="ok", port=None, start=True):
        r = Receiver(secrets if isinstance(secrets, (list, tuple)) else [secrets], mode, port)
        made.append(r)
        return r.start() if start else r
    yield make
    for r in made:
        r.stop()


@contextlib.contextmanager
def transaction():
    """A cursor in one transaction, rolled back at the end unless committed."""
    conn = pg_connect(autocommit=False)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()
