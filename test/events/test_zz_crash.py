"""Runs last (file order): a server crash restarts every process and breaks
every open connection."""
import os
import signal

import psycopg2

from conftest import Listener, connect, wait_until
from test_events import publisher_pid, send


def test_crash_restart_loses_nothing_committed(db, new_chat):
    """Kill -9 the publisher: PostgreSQL restarts every process; each send that
    was acknowledged before is in catch_up afterwards, and listeners that
    reconnect hear `resync` from the new publisher."""
    conn = db()
    chat, a, b = new_chat()
    for i in range(50):
        send(conn, a, chat, "acknowledged %d" % i)
    pid = wait_until(lambda: publisher_pid(conn))
    os.kill(pid, signal.SIGKILL)

    def reconnect():
        try:
            c = connect()
            c.cursor().execute("SELECT 1")
            return c
        except psycopg2.OperationalError:
            return None
    after = wait_until(reconnect, timeout=60, interval=0.2)
    lst = Listener()
    try:
        rows = [r[0] for r in _all(after, "SELECT m FROM chat.catch_up(%s, %s, 0) m", (b, chat))]
        assert [r["body"] for r in rows] == ["acknowledged %d" % i for i in range(50)]
        send(after, a, chat, "after the crash")
        lst.wait_for(lambda ev: any(e["type"] == "message" and e["chat_id"] == chat for e in ev), timeout=30)
    finally:
        lst.close()
        after.close()


def _all(conn, sql, args):
    cur = conn.cursor()
    cur.execute(sql, args)
    return cur.fetchall()


