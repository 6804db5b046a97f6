"""Failover safety: an acknowledged send is on the synchronous standby.

When a commit's wait for the synchronous standby is cancelled
(pg_cancel_backend, or the primary shutting down), PostgreSQL keeps the
local commit and only warns (SQLSTATE 01000, "canceling wait for synchronous
replication ... committed locally, but might not have been replicated"). A
failover then may lose it, so the relay answers `unavailable`
(`not_replicated`), never `ok`, and the client's retry with the same
client_id (idempotent, and itself a commit that waits for the standby)
gets the first message once the standby has it.

The cluster has no standby: synchronous_standby_names = 'nosuch' makes every
commit wait forever, as with a standby that is down. It is a cluster-wide
setting (PGC_SIGHUP): set with ALTER SYSTEM and always reset."""
import asyncio
import os
import threading
import time
import uuid

import pytest

from conftest import connect, db, free_port, new_users, open_chat, run, sql, wait_until


def _reload():
    sql("SELECT pg_reload_conf()")
    # the backends and the checkpointer (which tells waiters whether a
    # synchronous standby is asked for) take the SIGHUP asynchronously
    time.sleep(1.0)


def standby_missing(missing):
    """With missing, synchronous_standby_names names a standby that never
    comes (commits wait); without, it is reset (the waiters are released)."""
    if missing:
        sql("ALTER SYSTEM SET synchronous_standby_names = 'nosuch'")
    else:
        sql("ALTER SYSTEM RESET synchronous_standby_names")
    _reload()


@pytest.fixture
def restore_standby():
    """Whatever a test does, the cluster ends without the missing standby."""
    try:
        yield
    finally:
        standby_missing(False)


def _waiting(like):
    """pids of backends waiting for the standby, running a query like `like`."""
    return [r[0] for r in sql(
        "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE %s", (like,))]


def _send_waiting(application_name):
    """The pid of the relay's pool backend whose send_message waits for the
    standby, once it does. Other writes of the relay (heartbeats, presence)
    waiting ahead of it on the same pipelined connection are cancelled
    first: they stand between the send and its commit."""
    found = []

    def send_waits():
        rows = sql("SELECT pid, query LIKE '%%send_message%%' FROM pg_stat_activity "
                   "WHERE wait_event = 'SyncRep' AND application_name = %s", (application_name,))
        for pid, is_send in rows:
            if is_send:
                found.append(pid)
                return True
        for pid, _ in rows:
            sql("SELECT pg_cancel_backend(%s)", (pid,))
        return False
    wait_until(send_waits, 15, what="the relay's send waiting for the synchronous standby", interval=0.1)
    return found[0]


def test_a_cancelled_wait_commits_with_only_a_warning(restore_standby):
    """The control: a plain libpq client whose commit's wait is cancelled gets
    no error, only a WARNING, and the row is committed. What the relay must
    not take for success."""
    a, b = new_users()
    chat = open_chat(a, b)
    cid = str(uuid.uuid4())
    conn = db()
    outcome = {}
    standby_missing(True)

    def send():
        try:
            cur = conn.cursor()
            cur.execute("SELECT chat.send_message(%s, %s, 'control', %s) ->> 'seq'", (a, chat, cid))
            outcome["seq"] = cur.fetchone()[0]
        except Exception as e:      # noqa: BLE001 - reported by the assertion below
            outcome["error"] = e
    t = threading.Thread(target=send)
    t.start()
    try:
        wait_until(lambda: _waiting("%send_message%"), 15, what="the send waiting for the standby")
        sql("SELECT pg_cancel_backend(%s)", (_waiting("%send_message%")[0],))
        t.join(10)
        assert not t.is_alive()
        assert "error" not in outcome, outcome
        assert outcome["seq"] is not None
        notices = "".join(conn.notices)
        assert "WARNING" in notices and "canceling wait for synchronous replication" in notices, notices
        assert "committed locally" in notices, notices
        assert sql("SELECT count(*) FROM chat.messages WHERE chat_id = %s AND client_id = %s",
                   (chat, cid))[0][0] == 1
    finally:
        standby_missing(False)
        t.join(10)
        conn.close()


@pytest.mark.parametrize("how, reason", [
    ("pg_cancel_backend", "not_replicated"),
    # the backend is terminated after its warning (57P01), as at a
    # primary's shutdown: the connection is lost with the commit
    ("pg_terminate_backend", "connection_lost"),
])
def test_send_whose_commit_is_not_replicated_is_unavailable_then_retried(relays, restore_standby, how, reason):
    r = relays(heartbeat_interval=30)
    a, b = new_users()
    chat = open_chat(a, b)
    cid = str(uuid.uuid4())

    async def go():
        ca, cb = await connect(r, a), await connect(r, b)
        await ca.ok("ping")
        await asyncio.sleep(0.5)        # the login's presence write is done
        await asyncio.to_thread(standby_missing, True)
        ca.next_id += 1
        rid = ca.next_id
        await ca.ws.send('{"type":"send","id":%d,"chat_id":%d,"body":"first","client_id":"%s"}' % (rid, chat, cid))
        pid = await asyncio.to_thread(_send_waiting, "chat-relay")
        # the events of a commit go out once it is visible: not while it waits
        with pytest.raises(asyncio.TimeoutError):
            while True:
                e = await cb.recv(0.5)
                assert e.get("chat_id") != chat, e
        assert sql("SELECT %s(%%s)" % how, (pid,))[0][0]
        m = await ca.reply(rid, 10)
        assert m["type"] == "error" and m["code"] == "unavailable", m
        assert m["reason"] == reason, m
        # committed on the primary: the row is there (a failover might lose it)
        stored = sql("SELECT seq FROM chat.messages WHERE chat_id = %s AND client_id = %s", (chat, cid))
        assert len(stored) == 1, stored
        # ... and visible: its event goes out, though it is not replicated
        e = await cb.event(lambda e: e.get("type") == "message" and e.get("chat_id") == chat)
        assert e["seq"] == stored[0][0]

        # the retry is a commit too: it waits for the standby, whose WAL
        # position then covers the first commit; released when the standby
        # is no longer asked for (here: the setting reset)
        ca.next_id += 1
        rid = ca.next_id
        await asyncio.to_thread(wait_until, r.healthy, 15, "the relay's pool back")
        await ca.ws.send('{"type":"send","id":%d,"chat_id":%d,"body":"ignored","client_id":"%s"}' % (rid, chat, cid))
        await asyncio.to_thread(wait_until, lambda: _waiting("%send_message%"), 15,
                                "the retry waiting for the standby")
        await asyncio.to_thread(standby_missing, False)
        m = await ca.reply(rid, 15)
        assert m["type"] == "ok", m
        assert m["result"]["seq"] == stored[0][0] and m["result"]["body"] == "first", m
        assert sql("SELECT count(*) FROM chat.messages WHERE chat_id = %s AND client_id = %s",
                   (chat, cid))[0][0] == 1
        hist = await ca.ok("history", chat_id=chat, page_size=10)
        assert [h["body"] for h in hist].count("first") == 1 and "ignored" not in [h["body"] for h in hist]
        await ca.close()
        await cb.close()

    run(go())
    assert r.metric("chat_relay_unreplicated_total") == (1 if reason == "not_replicated" else 0)
    assert "maybe not on the synchronous standby" in r.log()


def test_multi_host_conninfo_dead_host_first(relays):
    """libpq's host list: the first host refuses, the second serves, and the
    relay (pool and LISTEN connection) runs on it."""
    info = "host=127.0.0.1,127.0.0.1 port=%d,%s dbname=%s user=chat_relay target_session_attrs=read-write" % (
        free_port(), os.environ["PGPORT"], os.environ.get("PGDATABASE", "chat_test"))
    r = relays(db=info)
    a, b = new_users()
    chat = open_chat(a, b)

    async def go():
        ca, cb = await connect(r, a), await connect(r, b)
        m = await ca.ok("send", chat_id=chat, body="via the second host", client_id=str(uuid.uuid4()))
        e = await cb.event(lambda e: e.get("type") == "message" and e.get("chat_id") == chat)
        assert e["seq"] == m["seq"]
        await ca.close()
        await cb.close()
    run(go())
    assert "database listen ready" in r.log()
