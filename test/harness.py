"""What the pytest suites share (test/events, test/relay, test/maintenance,
test/attachments): polling with a deadline, connections to the server of
test/run-tests.sh (the PG* environment it exports), private clusters made
with test/cluster.sh, and the decoding of chat_events payloads.

Each suite's conftest.py puts test/ on sys.path and imports from here; the
tests keep importing from their conftest."""
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg2

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TEST_DIR)
CLUSTER_SH = os.path.join(TEST_DIR, "cluster.sh")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")



class Ids:
    """Fresh loopback ports and user ids for one test process (each suite
    starts from its own bases, so suites and runs side by side do not meet)."""

    def __init__(self, port_base, first_user):
        self.port, self.user = port_base, first_user

    def free_port(self):
        while True:
            self.port += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                    return self.port
                except OSError:
                    continue

    def new_users(self, n=2):
        self.user += n
        return list(range(self.user - n + 1, self.user + 1))


def wait_until(predicate, timeout=10.0, what="a condition", interval=0.02):
    """Poll predicate() until it returns something true and return that;
    fail after timeout seconds (it is always asked once more at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not met within %.1f s" % (what, timeout))
        time.sleep(interval)


def pg_connect(dbname=None, host=None, port=None, user=None, autocommit=True, **kw):
    """A psycopg2 connection; what is not given comes from the PG* environment
    (the database: PGDATABASE, else chat_test)."""
    args = dict(dbname=dbname or os.environ.get("PGDATABASE", "chat_test"), **kw)
    for key, value in (("host", host), ("port", port), ("user", user)):
        if value is not None:
            args[key] = value
    conn = psycopg2.connect(**args)
    conn.autocommit = autocommit
    return conn


def query(conn, sql, args=None):
    """Run one statement; its rows, or None when it returns none."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def open_payload(conn, sealed):
    """What a sealed chat_events payload holds (chat.event_open, as a superuser
    on conn): LISTEN hears only c1.<key id>.<base64>."""
    assert sealed.startswith("c1."), "not sealed: %r" % sealed[:80]
    with conn.cursor() as cur:
        cur.execute("SELECT chat.event_open(%s)", (sealed,))
        return cur.fetchone()[0]


def payload_events(payload):
    """The events of one chat_events payload: an event, an envelope
    {"to": …, "ev": EVENT}, or a JSON array (a batch) of either."""
    doc = json.loads(payload)
    items = doc if isinstance(doc, list) else [doc]
    return [item["ev"] if isinstance(item, dict) and "ev" in item else item for item in items]


class Cluster:
    """A private PostgreSQL cluster of test/cluster.sh (chat preloaded unless
    preload=False) in a temporary folder, on 127.0.0.1:port."""

    def __init__(self, port, prefix="chat-cluster.", preload=True):
        self.port = port
        self.base = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.base, 0o755)   # the postgres OS user must reach it
        self.dir = os.path.join(self.base, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.env = dict(os.environ, CHAT_PRELOAD="1" if preload else "0")

    def run(self, *args):
        """test/cluster.sh COMMAND DIR ARGS…"""
        subprocess.run([CLUSTER_SH, args[0], self.dir] + [str(a) for a in args[1:]], check=True, env=self.env)

    def start(self):
        self.run("start", self.port)
        return self

    def stop(self):
        self.run("stop")

    def remove(self, keep_env=None):
        """Stop it and delete its folder (kept when env var keep_env is set)."""
        try:
            self.stop()
        finally:
            if not (keep_env and os.environ.get(keep_env)):
                shutil.rmtree(self.base, ignore_errors=True)

    def connect(self, dbname="postgres", autocommit=True, **kw):
        """A connection as postgres, in UTC unless options say otherwise."""
        kw.setdefault("options", "-c TimeZone=UTC")
        return pg_connect(dbname, self.dir, self.port, "postgres", autocommit, **kw)

    def make_database(self, prefix="chat_"):
        """A new database with the chat extension; its name."""
        name = prefix + uuid.uuid4().hex[:10]
        admin = self.connect()
        try:
            query(admin, "CREATE DATABASE %s" % name)
        finally:
            admin.close()
        conn = self.connect(name)
        try:
            query(conn, "CREATE EXTENSION chat")
        finally:
            conn.close()
        return name

    def log_offset(self):
        return os.path.getsize(self.log)

    def log_since(self, since):
        with open(self.log, "r", errors="replace") as f:
            f.seek(since)
            return f.read()

    def wait_log(self, pattern, since, timeout=30.0):
        """The match of the first log line matching pattern written after
        offset since; fails after timeout."""
        rx = re.compile(pattern)

        def check():
            for line in self.log_since(since).splitlines():
                m = rx.search(line)
                if m:
                    return m
            return None
        return wait_until(check, timeout, "log line /%s/" % pattern)


@contextlib.contextmanager
def private_cluster(port, prefix="chat-cluster.", preload=True, keep_env=None):
    """A started Cluster, stopped and removed afterwards."""
    cluster = Cluster(port, prefix, preload)
    try:
        yield cluster.start()
    finally:
        cluster.remove(keep_env)
