"""The maintenance background worker: it runs for every database with the
extension and logs one line per run, takes per-database settings, defers
and completes later, survives failures, is restarted after a crash and exits
cleanly on SIGTERM. Every wait is on a log line or a query, with a deadline."""
import os
import signal

from conftest import make_database, one, q, wait_until

def line(db, **fixed):
    """Regex of the worker's line for db; keyword arguments pin counts."""
    parts = []
    for key, text in (("created", "created %s"), ("dropped", "dropped %s"), ("archived", "archived %s"),
                      ("moved", "moved %s rows"), ("deferred", "deferred %s")):
        value = fixed.get(key)
        parts.append(text % ("(?P<%s>%d)" % (key, value) if value is not None else "(?P<%s>\\d+)" % key))
    return r"chat maintenance: database %s: " % db + ", ".join(parts)


def launcher_pid(cluster):
    """PID of the launcher, or None."""
    conn = cluster.connect()
    try:
        rows = q(conn, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chat maintenance launcher'")
        return rows[0][0] if rows else None
    finally:
        conn.close()


def connect_when_up(cluster, dbname="postgres"):
    """Connect, retrying while the server restarts."""
    def attempt():
        try:
            return cluster.connect(dbname)
        except Exception:
            return None
    return wait_until(attempt, 60, "the server to accept connections")


def test_worker_runs_for_databases_with_the_extension(cluster):
    since = cluster.log_offset()
    name = make_database(cluster.dir, cluster.port)
    conn = cluster.connect(name)
    # a row stamped 30 months ahead: in the default partition until rescued
    q(conn, "INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at) "
            "VALUES (1, 1, 1, 1, 'x', now() + interval '30 months')")
    m = cluster.wait_log(line(name, moved=1), since)
    assert m.group("created") == "1", "the rescued month was made"
    assert one(conn, "SELECT count(*) FROM chat.messages_default") == 0
    # databases without the extension are skipped silently
    assert "database postgres:" not in cluster.log_since(since)

    # per-database settings apply to the worker's sessions
    q(conn, "ALTER DATABASE %s SET chat.premake_months = 5" % name)
    since = cluster.log_offset()
    m = cluster.wait_log(line(name, created=2), since)
    assert m.group("deferred") == "0"
    conn.close()


def test_worker_defers_then_completes(cluster):
    name = make_database(cluster.dir, cluster.port)
    conn = cluster.connect(name)
    reader = cluster.connect(name)
    reader.autocommit = False
    q(reader, "SELECT count(*) FROM chat.messages")   # holds its locks
    since = cluster.log_offset()
    q(conn, "ALTER DATABASE %s SET chat.premake_months = 4" % name)
    m = cluster.wait_log(line(name, deferred=1), since)
    assert m.group("created") == "0", "nothing made while the reader holds the default partition"
    reader.commit()
    reader.close()
    since = cluster.log_offset()
    m = cluster.wait_log(line(name, created=1), since)
    assert m.group("deferred") == "0", "made at a later round"
    conn.close()


def test_worker_survives_a_failure(cluster):
    name = make_database(cluster.dir, cluster.port)
    conn = cluster.connect(name)
    month = one(conn, "SELECT to_char(now() + interval '20 months', 'YYYY_MM')")
    # a table that looks like a month left by a deferred run but has the
    # wrong columns, and a row of that month in the default partition:
    # moving the row fails
    q(conn, "CREATE TABLE chat.messages_%s (x int CONSTRAINT messages_%s_range CHECK (true))" % (month, month))
    q(conn, "INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at) "
            "VALUES (1, 1, 1, 1, 'x', now() + interval '20 months')")
    since = cluster.log_offset()
    fail = r"chat maintenance: database %s: failed, retried next round" % name
    cluster.wait_log(fail, since)
    first = cluster.log_offset()
    cluster.wait_log(fail, first)   # tried again at the next round
    q(conn, "DROP TABLE chat.messages_%s" % month)
    since = cluster.log_offset()
    m = cluster.wait_log(line(name, moved=1), since)
    assert m.group("created") == "1"
    assert one(conn, "SELECT count(*) FROM chat.messages_default") == 0
    conn.close()


def test_launcher_is_restarted_after_a_crash(cluster):
    name = make_database(cluster.dir, cluster.port)
    old = wait_until(lambda: launcher_pid(cluster), 30, "the launcher")
    since = cluster.log_offset()
    os.kill(old, signal.SIGKILL)
    cluster.wait_log(r'background worker "chat maintenance launcher" \(PID %d\) was terminated by signal 9' % old, since)
    cluster.wait_log(r"chat maintenance launcher started", since, 60)
    conn = connect_when_up(cluster)
    conn.close()
    new = wait_until(lambda: launcher_pid(cluster), 60, "the new launcher")
    assert new != old
    cluster.wait_log(line(name), since, 60)


def test_launcher_exits_cleanly_on_sigterm(cluster):
    pid = wait_until(lambda: launcher_pid(cluster), 60, "the launcher")
    since = cluster.log_offset()
    conn = connect_when_up(cluster)
    assert one(conn, "SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()
    cluster.wait_log(r"\[%d\] LOG:  chat maintenance launcher shutting down" % pid, since)
    wait_until(lambda: launcher_pid(cluster) is None, 30, "the launcher to be gone")
    log = cluster.log_since(since)
    assert 'background worker "chat maintenance launcher"' not in log, "no error exit, no crash"
