"""Fixtures of the partition maintenance tests.

The server under test is the one test/run-tests.sh started (PGHOST, PGPORT);
each test gets a fresh database with the extension. Worker tests start a
cluster of their own (test/harness.py's Cluster, port PGPORT + 1) so that
they can set chat.maintenance_interval, kill the launcher and read the
server log. Everything polls with a deadline; nothing sleeps a fixed time.
"""
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import Cluster, pg_connect, private_cluster, query as q, wait_until  # noqa: E402,F401


def connect(dbname, host=None, port=None, autocommit=True):
    """A psycopg2 connection as postgres, in UTC; autocommit unless told otherwise."""
    return pg_connect(dbname, host or os.environ["PGHOST"], port or os.environ["PGPORT"], "postgres",
                      autocommit, options="-c TimeZone=UTC")


def one(conn, sql, args=None):
    """The first column of the first row."""
    return q(conn, sql, args)[0][0]


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


@pytest.fixture(scope="module")
def cluster():
    """A cluster whose maintenance worker runs every second
    (KEEP_WORKER_CLUSTER=1 keeps its folder afterwards)."""
    port = int(os.environ.get("MAINT_WORKER_PORT", int(os.environ["PGPORT"]) + 1))
    with private_cluster(port, "chat-worker.", keep_env="KEEP_WORKER_CLUSTER") as c:
        admin = c.connect()
        q(admin, "ALTER SYSTEM SET chat.maintenance_interval = '1s'")
        q(admin, "SELECT pg_reload_conf()")
        admin.close()
        yield c
