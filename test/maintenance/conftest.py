"""Fixtures of the partition maintenance tests.

The server under test is the one test/run-tests.sh started (PGHOST, PGPORT);
each test gets a fresh database with the extension. Worker tests start a
cluster of their own (test/cluster.sh, port PGPORT + 1) so that they can set
chat.maintenance_interval, kill the launcher and read the server log.
Everything polls with a deadline; nothing sleeps a fixed time.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import psycopg2
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER_SH = os.path.join(os.path.dirname(HERE), "cluster.sh")


def connect(dbname, host=None, port=None, autocommit=True):
    """A psycopg2 connection as postgres; autocommit unless told otherwise."""
    conn = psycopg2.connect(host=host or os.environ["PGHOST"], port=port or os.environ["PGPORT"],
                            user="postgres", dbname=dbname, options="-c TimeZone=UTC")
    conn.autocommit = autocommit
    return conn


def q(conn, sql, args=None):
    """Run one statement; its rows, or None."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def one(conn, sql, args=None):
    """The first column of the first row."""
    return q(conn, sql, args)[0][0]


def wait_until(check, timeout=30.0, what="a condition"):
    """Poll check() until it returns something truthy, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def make_database(host=None, port=None):
    """A fresh database with the chat extension; returns its name."""
    name = "maint_" + uuid.uuid4().hex[:10]
    admin = connect("postgres", host, port)
    q(admin, "CREATE DATABASE %s" % name)
    admin.close()
    conn = connect(name, host, port)
    q(conn, "CREATE EXTENSION chat")
    conn.close()
    return name


def drop_database(name, host=None, port=None):
    """Drop a database made by make_database, whoever is connected."""
    admin = connect("postgres", host, port)
    q(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    admin.close()


@pytest.fixture
def db():
    """A fresh database with the extension on the test server."""
    name = make_database()
    yield name
    drop_database(name)


class Cluster:
    """A private cluster started with test/cluster.sh (chat preloaded)."""

    def __init__(self, base, port):
        self.base = base
        self.dir = os.path.join(base, "data")
        self.port = port
        self.log = os.path.join(self.dir, "server.log")

    def run(self, *args):
        subprocess.run([CLUSTER_SH, args[0], self.dir] + [str(a) for a in args[1:]], check=True)

    def connect(self, dbname="postgres"):
        return connect(dbname, self.dir, self.port)

    def log_offset(self):
        return os.path.getsize(self.log)

    def wait_log(self, pattern, since, timeout=30.0):
        """Wait for a log line matching pattern written after offset since."""
        rx = re.compile(pattern)

        def check():
            with open(self.log, "r", errors="replace") as f:
                f.seek(since)
                for line in f:
                    m = rx.search(line)
                    if m:
                        return m
            return None
        return wait_until(check, timeout, "log line /%s/" % pattern)

    def log_since(self, since):
        with open(self.log, "r", errors="replace") as f:
            f.seek(since)
            return f.read()


@pytest.fixture(scope="module")
def cluster():
    """A cluster whose maintenance worker runs every second."""
    port = int(os.environ.get("MAINT_WORKER_PORT", int(os.environ["PGPORT"]) + 1))
    base = tempfile.mkdtemp(prefix="chat-worker.")
    os.chmod(base, 0o755)
    c = Cluster(base, port)
    c.run("start", port)
    admin = c.connect()
    q(admin, "ALTER SYSTEM SET chat.maintenance_interval = '1s'")
    q(admin, "SELECT pg_reload_conf()")
    admin.close()
    try:
        yield c
    finally:
        try:
            c.run("stop")
        finally:
            if os.environ.get("KEEP_WORKER_CLUSTER") is None:
                shutil.rmtree(base, ignore_errors=True)
