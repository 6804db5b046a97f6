"""Crashes: every process of the server ends at once and every connection
breaks. These tests run on a cluster of their own (port PGPORT + 2), so they
need not run last and do not disturb the server the other tests share; each
starts it again if a failed one left it down."""
import os
import signal

import psycopg2
import pytest

from conftest import Listener, wait_until
from harness import open_payload, payload_events, private_cluster
from test_events import publisher_pid, send

A, B = 1, 2


@pytest.fixture(scope="module")
def crash_cluster():
    port = int(os.environ.get("PGPORT", "54329")) + 2
    with private_cluster(port, "chat-crash.") as cluster:
        yield cluster


@pytest.fixture
def crashable(crash_cluster):
    """(cluster, database, chat, conn): the private cluster running, a new
    database with the extension, a chat of users A and B with 50 messages
    acknowledged, and the connection that sent them."""
    crash_cluster.start()
    dbname = crash_cluster.make_database("crash_")
    conn = crash_cluster.connect(dbname)
    cur = conn.cursor()
    cur.execute("SELECT chat.open_chat(%s, 'direct', NULL, %s)", (A, B))
    chat = cur.fetchone()[0]
    for i in range(50):
        send(conn, A, chat, "acknowledged %d" % i)
    yield crash_cluster, dbname, chat, conn
    conn.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def reconnect(cluster, dbname):
    """A connection once the server takes them again."""
    def attempt():
        try:
            c = cluster.connect(dbname)
            c.cursor().execute("SELECT 1")
            return c
        except psycopg2.OperationalError:
            return None
    return wait_until(attempt, 60, "the server back after the crash", interval=0.05)


def acknowledged_are_kept(conn, chat):
    cur = conn.cursor()
    cur.execute("SELECT m FROM chat.catch_up(%s, %s, 0) m", (B, chat))
    assert [r[0]["body"] for r in cur.fetchall()] == ["acknowledged %d" % i for i in range(50)]


def heard_until(listener, chat, body, timeout=30):
    """What listener hears until the message `body` of chat: [(type, reason
    or body)] of resync events and of chat's messages, in order (payloads
    decoded by harness.payload_events: envelopes, batches)."""
    seen = []

    def heard():
        listener.conn.poll()
        while listener.conn.notifies:
            for ev in payload_events(open_payload(listener.conn, listener.conn.notifies.pop(0).payload)):
                if ev["type"] == "resync":
                    seen.append(("resync", ev.get("reason")))
                elif ev["type"] == "message" and ev["chat_id"] == chat:
                    seen.append(("message", ev["message"]["body"]))
        return ("message", body) in seen
    wait_until(heard, timeout, "the message %r on chat_events" % body, interval=0.05)
    return seen


def test_publisher_killed_the_server_restarts_and_loses_nothing(crashable):
    """Kill -9 the publisher: the postmaster restarts every process; each send
    acknowledged before is in catch_up afterwards, a new publisher comes back
    by itself and a listener that reconnects hears the next message.

    (That publisher announces `resync` as soon as it starts, which is about
    when clients can connect again: only a listener that won that race hears
    it. Every listener lost its connection, so its own reconnect is its
    resync: the relay sends relay_reconnected then.)"""
    cluster, dbname, chat, conn = crashable
    old = wait_until(lambda: publisher_pid(conn), what="the publisher")
    os.kill(old, signal.SIGKILL)
    # once the postmaster has reaped it, it is in crash recovery: before, a
    # connection could still be accepted and then broken by the restart
    wait_until(lambda: not _alive(old), 30, "the publisher reaped")
    after = reconnect(cluster, dbname)
    lst = Listener(cluster.connect(dbname))
    try:
        acknowledged_are_kept(after, chat)
        new = wait_until(lambda: publisher_pid(after), 30, "a new publisher")
        assert new != old
        send(after, A, chat, "after the crash")
        assert heard_until(lst, chat, "after the crash")[-1] == ("message", "after the crash")
    finally:
        lst.close()
        after.close()


def test_server_crash_then_start_listeners_hear_resync_first(crashable):
    """The whole server crashes (immediate stop: no shutdown checkpoint, WAL
    replayed at the next start) and is started again: nothing acknowledged is
    lost, and a listener that LISTENs once it is back hears `resync`
    (publisher_start) from the new publisher before the next message."""
    cluster, dbname, chat, conn = crashable
    assert wait_until(lambda: publisher_pid(conn), what="the publisher")
    conn.close()
    since = cluster.log_offset()
    cluster.run("crash")
    cluster.start()
    assert "database system was not properly shut down" in cluster.log_since(since)
    after = reconnect(cluster, dbname)
    lst = Listener(cluster.connect(dbname))
    try:
        acknowledged_are_kept(after, chat)
        assert publisher_pid(after) == 0, "no publisher before the first event"
        send(after, A, chat, "after the restart")
        assert heard_until(lst, chat, "after the restart") == [
            ("resync", "publisher_start"), ("message", "after the restart")]
    finally:
        lst.close()
        after.close()
