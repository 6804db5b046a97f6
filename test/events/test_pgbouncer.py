"""Application calls through PgBouncer (Debian pgbouncer 1.18) in transaction
mode, once (docs/deploying.md): many more clients than server connections
call the SQL API and every call is right, every event published, while a
LISTEN through the same PgBouncer hears nothing: why the relay's and
chat-notify's LISTEN connections must go to PostgreSQL directly."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import psycopg2
import pytest

from conftest import Listener, connect, wait_until

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bouncer():
    """A pgbouncer in transaction mode, 2 server connections, in front of the test database."""
    d = tempfile.mkdtemp(prefix="pgbouncer-test-")
    port = free_port()
    host = os.environ.get("PGHOST", "/var/run/postgresql")
    db = os.environ.get("PGDATABASE", "chat_test")
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write('"postgres" ""\n')
    with open(os.path.join(d, "pgbouncer.ini"), "w") as f:
        f.write("[databases]\n%s = host=%s port=%s dbname=%s user=postgres\n" % (db, host, os.environ["PGPORT"], db))
        f.write("[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                "auth_type = trust\nauth_file = %s/users.txt\npool_mode = transaction\n"
                "default_pool_size = 2\nmax_client_conn = 200\nlogfile = %s/pgbouncer.log\n" % (port, d, d))
    as_user = {}
    if os.geteuid() == 0:       # pgbouncer refuses to run as root
        for path in [d] + [os.path.join(d, name) for name in os.listdir(d)]:
            shutil.chown(path, "postgres")
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    proc = subprocess.Popen([PGBOUNCER, os.path.join(d, "pgbouncer.ini")], **as_user)

    def up():
        try:
            psycopg2.connect(host="127.0.0.1", port=port, dbname=db, user="postgres").close()
            return True
        except psycopg2.OperationalError:
            return False
    try:
        wait_until(up, 10, what="pgbouncer up")
        yield lambda: _conn(port, db)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def _conn(port, db):
    c = psycopg2.connect(host="127.0.0.1", port=port, dbname=db, user="postgres")
    c.autocommit = True
    return c


def test_api_calls_through_transaction_pooling(bouncer):
    direct = connect()
    cur = direct.cursor()
    cur.execute("SELECT coalesce(max(user_id), 0) FROM chat.members")
    base = cur.fetchone()[0] + 880000
    listener = Listener()
    n_clients, per_client = 20, 10
    errors = []

    def client(i):
        try:
            c = bouncer()
            k = c.cursor()
            a, b = base + 2 * i + 1, base + 2 * i + 2
            k.execute("SELECT chat.open_chat(%s, 'direct', NULL, %s)", (a, b))
            chat = k.fetchone()[0]
            for j in range(per_client):
                k.execute("SELECT (chat.send_message(%s, %s, %s))->>'seq'", (a, chat, "m%d" % j))
                assert int(k.fetchone()[0]) == j + 1
            k.execute("SELECT count(*) FROM chat.history(%s, %s) AS h", (b, chat))
            assert k.fetchone()[0] == per_client
            k.execute("SELECT chat.mark_read(%s, %s, %s) ->> 'unread'", (b, chat, per_client))
            assert k.fetchone()[0] == "0"
            c.close()
        except Exception as e:      # reported below, with the client's number
            errors.append((i, repr(e)))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    # every message was published, whichever pooled connection sent it
    wait_until(lambda: (listener.drain(0.1), sum(1 for e in listener.events if e.get("type") == "message"))[1]
               >= n_clients * per_client, 15, what="every message event")


def test_listen_through_pgbouncer_hears_nothing(bouncer):
    """The reason the daemons' LISTEN must bypass the pooler: the LISTEN's
    server connection goes back to the pool after its transaction, and a
    notification for it reaches no client. The same NOTIFY is heard on a
    direct connection (the control)."""
    pooled = bouncer()
    pooled.cursor().execute("LISTEN pgbouncer_test")
    direct = connect()
    direct.cursor().execute("LISTEN pgbouncer_test")
    sender = bouncer()
    sender.cursor().execute("NOTIFY pgbouncer_test, 'hello'")
    wait_until(lambda: (direct.poll(), direct.notifies)[1], 5, what="the direct listener hears it")
    time.sleep(1)
    pooled.cursor().execute("SELECT 1")
    pooled.poll()
    assert pooled.notifies == []
