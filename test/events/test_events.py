"""Events published off the commit path (chat.event_mode = deferred): a
transaction's events reach LISTEN chat_events if and only if it committed,
in seq order per chat, batched, with `resync` whenever events may be lost."""
import json
import os
import re
import signal
import subprocess
import tempfile
import threading

import psycopg2
import pytest

from conftest import Listener, connect, open_payload, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def scalar(conn, sql, args=()):
    cur = conn.cursor()
    cur.execute(sql, args)
    return cur.fetchone()[0]


def send(conn, user, chat, body):
    return scalar(conn, "SELECT chat.send_message(%s, %s, %s)", (user, chat, body))


def publisher_pid(conn):
    return scalar(conn, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity "
                        "WHERE backend_type = 'chat publisher' AND datname = current_database()")


def jsonb_text(conn, obj):
    """obj as PostgreSQL prints it as jsonb (the bytes of an inline message)."""
    return scalar(conn, "SELECT %s::jsonb::text", (json.dumps(obj),))


def envelope_bytes(env):
    """The bytes the extension publishes for one envelope: compact JSON in
    the order published, an inline message as jsonb prints it (", " and
    ": ", which json.dumps writes too for these plain bodies)."""
    ev = ",".join("%s:%s" % (json.dumps(k), json.dumps(v, ensure_ascii=False) if k == "message"
                            else json.dumps(v, separators=(",", ":")))
                  for k, v in env["ev"].items())
    return '{"to":%s,"ev":{%s}}' % (json.dumps(env["to"], separators=(",", ":")), ev)


def messages(listener, chat):
    return [e for e in listener.of_type("message", chat)]


def test_deferred_is_the_default_and_a_publisher_runs(db, new_chat):
    conn = db()
    assert scalar(conn, "SHOW chat.event_mode") == "deferred"
    chat, a, b = new_chat()
    send(conn, a, chat, "wake the publisher")
    assert wait_until(lambda: publisher_pid(conn))


def test_commit_publishes_and_rollback_does_not(db, listener, new_chat):
    chat, a, b = new_chat()
    conn = db()
    conn.autocommit = False
    send(conn, a, chat, "rolled back")
    conn.rollback()
    conn.autocommit = True
    send(conn, a, chat, "committed")
    listener.wait_for(lambda ev: messages(listener, chat))
    got = messages(listener, chat)
    assert [m["message"]["body"] for m in got] == ["committed"]
    assert got[0]["seq"] == 1 and listener.recipients(got[0]) == sorted([a, b])
    assert "recipients" not in got[0]


def test_savepoint_rollback_drops_only_its_own_events(db, listener, new_chat):
    chat, a, b = new_chat()
    conn = db()
    conn.autocommit = False
    cur = conn.cursor()
    send(conn, a, chat, "one")
    cur.execute("SAVEPOINT s1")
    send(conn, a, chat, "two")
    cur.execute("ROLLBACK TO SAVEPOINT s1")
    send(conn, a, chat, "three")
    cur.execute("SAVEPOINT s2")
    send(conn, b, chat, "four")
    cur.execute("RELEASE SAVEPOINT s2")
    conn.commit()
    listener.wait_for(lambda ev: len(messages(listener, chat)) >= 3)
    got = messages(listener, chat)
    assert [m["message"]["body"] for m in got] == ["one", "three", "four"]
    assert [m["seq"] for m in got] == [1, 2, 3]


def test_order_per_chat_under_concurrent_senders(db, listener, new_chat):
    chats = [new_chat() for _ in range(4)]
    shared = chats[0]
    per_thread = 60
    errors = []

    def sender(k):
        try:
            conn = connect()
            for i in range(per_thread):
                chat, a, b = shared if i % 2 == 0 else chats[1 + (i + k) % 3]
                send(conn, a if k % 2 else b, chat, "t%d-%d" % (k, i))
            conn.close()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = {c[0] for c in chats}
    total = 4 * per_thread
    listener.wait_for(lambda ev: sum(1 for e in ev if e["type"] == "message" and e["chat_id"] in ids) >= total)
    for chat, _, _ in chats:
        seqs = [m["seq"] for m in messages(listener, chat)]
        assert seqs == list(range(1, len(seqs) + 1)), "chat %d out of order: %r" % (chat, seqs)
    assert sum(len(messages(listener, c[0])) for c in chats) == total


def test_a_burst_is_batched_under_the_payload_limit(db, listener, new_chat):
    chat, a, b = new_chat()
    conn = db()
    conn.cursor().execute(
        "DO $$ BEGIN FOR i IN 1..300 LOOP PERFORM chat.send_message(%s, %s, 'burst ' || i); END LOOP; END $$"
        % (a, chat))
    listener.wait_for(lambda ev: len(messages(listener, chat)) >= 300)
    assert [m["seq"] for m in messages(listener, chat)] == list(range(1, 301))
    carrying = [p for p in listener.payloads if ('"chat_id":%d,' % chat) in p]
    assert len(carrying) < 300 / 5, "300 events came in %d payloads" % len(carrying)
    assert all(len(p.encode()) <= 5960 for p in listener.payloads)
    assert all(len(p.encode()) < 8000 for p in listener.sealed)
    batches = [p for p in carrying if p.startswith("[")]
    assert batches
    # exactly [env,env,...]: each envelope's bytes as a lone payload would carry them
    for p in batches:
        envs = json.loads(p)
        assert len(envs) >= 2
        assert p == "[" + ",".join(envelope_bytes(e) for e in envs) + "]"


def test_an_event_too_big_for_notify_is_announced_without_the_message(db, listener, new_chat):
    chat, a, b = new_chat()
    conn = db()
    body = "Ж" * 4000  # 8,000 bytes of UTF-8
    stored = send(conn, a, chat, body)
    assert stored["body"] == body
    listener.wait_for(lambda ev: messages(listener, chat))
    ev = messages(listener, chat)[0]
    assert ev["inline"] is False and "message" not in ev and ev["seq"] == 1
    raw = [p for p in listener.payloads if ('"chat_id":%d,' % chat) in p]
    assert raw == ['{"to":[%d,%d],"ev":{"v":1,"type":"message","chat_id":%d,"seq":1,"cursor":1,'
                   '"sender_id":%d,"inline":false}}' % (a, b, chat, a)]


def test_overflow_drops_the_transaction_and_announces_resync(db, listener, new_chat):
    chat, a, b = new_chat()
    conn = db()
    queue_kb = int(scalar(conn, "SELECT setting FROM pg_settings WHERE name = 'chat.event_queue_size'"))
    count = queue_kb * 1024 // 3000 + 200
    conn.cursor().execute(
        "DO $$ BEGIN FOR i IN 1..%d LOOP PERFORM chat.send_message(%s, %s, repeat('x', 3000)); END LOOP; END $$"
        % (count, a, chat))
    listener.wait_for(lambda ev: any(e["type"] == "resync" and e.get("reason") == "overflow" for e in ev))
    assert '{"to":null,"ev":{"v":1,"type":"resync","reason":"overflow"}}' in listener.payloads
    assert messages(listener, chat) == []
    # the queue is not stuck: the next send is delivered, and nothing is lost in the database
    send(conn, a, chat, "after the overflow")
    listener.wait_for(lambda ev: messages(listener, chat))
    assert messages(listener, chat)[0]["seq"] == count + 1
    # (catch_up pages stop at chat.page_max_bytes: count the table itself)
    assert scalar(conn, "SELECT count(*) FROM chat.messages WHERE chat_id = %s", (chat,)) == count + 1


def test_a_terminated_publisher_comes_back_and_announces_resync(db, listener, new_chat):
    conn = db()
    chat, a, b = new_chat()
    send(conn, a, chat, "before")
    old = wait_until(lambda: publisher_pid(conn))
    listener.wait_for(lambda ev: messages(listener, chat))
    scalar(conn, "SELECT pg_terminate_backend(%s)", (old,))
    listener.wait_for(lambda ev: any(e["type"] == "resync" and e.get("reason") == "publisher_start"
                                     for e in ev[len(ev) - 5:]), timeout=15)
    new = wait_until(lambda: publisher_pid(conn))
    assert new != old
    send(conn, a, chat, "after")
    listener.wait_for(lambda ev: len(messages(listener, chat)) >= 2)
    assert [m["message"]["body"] for m in messages(listener, chat)] == ["before", "after"]


def test_direct_mode_notifies_in_the_transaction(db, listener, new_chat):
    chat, a, b = new_chat()
    conn = db()
    conn.cursor().execute("SET chat.event_mode = direct")
    send(conn, a, chat, "direct")
    listener.wait_for(lambda ev: messages(listener, chat))
    raw = [p for p in listener.payloads if ('"chat_id":%d,' % chat) in p]
    assert len(raw) == 1
    msg = messages(listener, chat)[0]["message"]
    assert raw[0] == ('{"to":[%d,%d],"ev":{"v":1,"type":"message","chat_id":%d,"seq":1,"cursor":1,'
                      '"sender_id":%d,"inline":true,"message":%s}}' % (a, b, chat, a, jsonb_text(conn, msg)))


def test_without_preload_events_fall_back_to_notify():
    """A cluster without shared_preload_libraries: no queue, no worker, NOTIFY."""
    port = str(int(os.environ.get("PGPORT", "54329")) + 1)
    tmp = tempfile.mkdtemp(prefix="chat-nopreload.")
    os.chmod(tmp, 0o755)
    data = os.path.join(tmp, "data")
    cluster = os.path.join(HERE, "..", "cluster.sh")
    env = dict(os.environ, CHAT_PRELOAD="0")
    subprocess.run([cluster, "start", data, port], check=True, env=env)
    try:
        subprocess.run([cluster, "createdb", data, port, "nopreload"], check=True, env=env)
        lst_conn = psycopg2.connect(host=data, port=port, user="postgres", dbname="nopreload")
        lst_conn.autocommit = True
        lst_conn.cursor().execute("LISTEN chat_events")
        conn = psycopg2.connect(host=data, port=port, user="postgres", dbname="nopreload")
        conn.autocommit = True
        assert scalar(conn, "SHOW shared_preload_libraries") == ""
        chat = scalar(conn, "SELECT chat.open_chat(1, 'direct', NULL, 2)")
        send(conn, 1, chat, "no preload")

        def got():
            lst_conn.poll()
            return lst_conn.notifies
        note = wait_until(got)[0]
        assert '"body": "no preload"' in open_payload(conn, note.payload)
        assert scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chat publisher'") == 0
        lst_conn.close()
        conn.close()
    finally:
        subprocess.run([cluster, "stop", data], check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)


def test_publisher_status_reports_the_queue(db, listener, new_chat):
    conn = db()
    chat, a, b = new_chat()
    send(conn, a, chat, "counted")
    listener.wait_for(lambda ev: messages(listener, chat))
    st = scalar(conn, "SELECT chat.publisher_status()")
    assert st["preloaded"] is True and st["mode"] == "deferred"
    assert st["queue_bytes"] >= 64 * 1024 and st["published_events"] >= 1
    assert st["publisher_pid"] == publisher_pid(conn)
    assert not scalar(conn, "SELECT has_function_privilege('chat_app', 'chat.publisher_status()', 'EXECUTE')")


def _memory_totals(conn, pid, log, since):
    """(grand total, chat publisher context total) in bytes, as the
    publisher logs them for pg_log_backend_memory_contexts."""
    scalar(conn, "SELECT pg_log_backend_memory_contexts(%s)", (pid,))

    def logged():
        with open(log, "r", errors="replace") as f:
            f.seek(since)
            text = f.read()
        grand = re.search(r"\[%d\] LOG:  Grand total: (\d+) bytes" % pid, text)
        own = re.search(r"\[%d\] LOG:  level: \d+; chat publisher: (\d+) total" % pid, text)
        return grand and own and (int(grand.group(1)), int(own.group(1)))
    return wait_until(logged, 10)


def test_publisher_memory_stays_flat_over_many_batches(db, listener, new_chat):
    """The publisher's loop memory is reset every round: after 2,000 more
    batches its memory (pg_log_backend_memory_contexts, read back from the
    server log) has not grown. Skipped when the log is not readable here."""
    conn = db()
    log = os.path.join(scalar(conn, "SHOW data_directory"), "server.log")
    if not os.access(log, os.R_OK):
        pytest.skip("the server log %s is not readable here" % log)
    chat, a, b = new_chat()
    for i in range(200):
        send(conn, a, chat, "warm-up %d" % i)
    listener.wait_for(lambda ev: len(messages(listener, chat)) >= 200)
    pid = publisher_pid(conn)
    before = _memory_totals(conn, pid, log, os.path.getsize(log))
    for i in range(2000):
        send(conn, a, chat, "round %d" % i)
    listener.wait_for(lambda ev: len(messages(listener, chat)) >= 2200, timeout=60)
    carrying = sum(1 for p in listener.payloads if ('"chat_id":%d,' % chat) in p)
    assert carrying > 1000, "only %d payloads: too few batches to tell" % carrying
    assert publisher_pid(conn) == pid
    after = _memory_totals(conn, pid, log, os.path.getsize(log))
    assert after[0] <= before[0] + 64 * 1024, "publisher memory grew: %r -> %r" % (before, after)
    assert after[1] <= max(before[1], 8192) * 2, "its loop context grew: %r -> %r" % (before, after)
