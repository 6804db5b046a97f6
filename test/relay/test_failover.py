"""A real failover: a primary and a synchronous standby of their own (two
private clusters, not the suite's), a relay given both with
target_session_attrs=read-write. The primary crashes, the standby is
promoted: the relay finds it, clients get resync, the pending send is
retried with its client_id, and the message acknowledged before the crash
is on the new primary."""
import asyncio
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import ROOT, connect, free_port, new_users, pg_connect, run, wait_until
from harness import PGBIN

CLUSTER = os.path.join(ROOT, "test", "cluster.sh")
DB = "chat_failover"


def as_pg(*cmd):
    cmd = list(cmd)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=120, env=dict(os.environ, PGBIN=PGBIN))


def q(port, query, args=(), dbname=DB):
    conn = pg_connect(dbname=dbname, host="127.0.0.1", port=port, user="postgres")
    try:
        cur = conn.cursor()
        cur.execute(query, args)
        return cur.fetchall() if cur.description else None
    finally:
        conn.close()


@pytest.fixture
def pair():
    """(primary port, standby port, standby dir): the standby streams
    synchronously (synchronous_standby_names = 'pg_b')."""
    tag = "%d-%d" % (os.getpid(), free_port())
    da, dbd = "/tmp/chat-failover-%s-a" % tag, "/tmp/chat-failover-%s-b" % tag
    pa, pb = free_port(), free_port()
    try:
        subprocess.run([CLUSTER, "start", da, str(pa)], check=True, timeout=120, env=dict(os.environ, PGBIN=PGBIN),
                       stdout=subprocess.DEVNULL)
        subprocess.run([CLUSTER, "createdb", da, str(pa), DB], check=True, timeout=120,
                       env=dict(os.environ, PGBIN=PGBIN), stdout=subprocess.DEVNULL)
        q(pa, "ALTER ROLE chat_relay LOGIN")
        as_pg(os.path.join(PGBIN, "pg_basebackup"), "-h", da, "-p", str(pa), "-U", "postgres",
              "-D", dbd, "-R", "-X", "stream", "-c", "fast")
        with open(os.path.join(dbd, "postgresql.conf"), "a") as f:
            f.write("port = %d\nunix_socket_directories = '%s'\ncluster_name = 'pg_b'\n" % (pb, dbd))
        as_pg(os.path.join(PGBIN, "pg_ctl"), "-D", dbd, "-l", os.path.join(dbd, "server.log"), "-w", "start")
        q(pa, "ALTER SYSTEM SET synchronous_standby_names = 'pg_b'", dbname="postgres")
        q(pa, "SELECT pg_reload_conf()", dbname="postgres")
        wait_until(lambda: q(pa, "SELECT sync_state FROM pg_stat_replication", dbname="postgres") == [("sync",)],
                   20, what="the standby streaming synchronously")
        yield pa, pb, da, dbd
    finally:
        for d in (da, dbd):
            if os.path.exists(os.path.join(d, "PG_VERSION")):
                subprocess.run([CLUSTER, "stop", d], timeout=120, env=dict(os.environ, PGBIN=PGBIN))
            shutil.rmtree(d, ignore_errors=True)


def test_failover_to_the_promoted_standby(relays, pair):
    pa, pb, da, dbd = pair
    r = relays(db="host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=chat_relay "
                  "target_session_attrs=read-write connect_timeout=3" % (pa, pb, DB), backoff_max_ms=500)
    a, b = new_users()
    chat = q(pa, "SELECT chat.open_chat(%s, 'direct', NULL, %s)", (a, b))[0][0]
    cid1, cid2 = str(uuid.uuid4()), str(uuid.uuid4())

    async def go():
        ca, cb = await connect(r, a), await connect(r, b)
        m1 = await ca.ok("send", chat_id=chat, body="before", client_id=cid1)
        await cb.event(lambda e: e.get("type") == "message" and e.get("seq") == m1["seq"])

        await asyncio.to_thread(subprocess.run, [CLUSTER, "crash", da], check=True, timeout=60,
                                env=dict(os.environ, PGBIN=PGBIN), stdout=subprocess.DEVNULL)
        m = await ca.request("send", chat_id=chat, body="during", client_id=cid2)
        assert m["type"] == "error" and m["code"] == "unavailable", m
        # the standby refuses writes: the relay waits for the promotion
        await asyncio.sleep(1.5)
        assert r.http("/healthz")[0] == 503
        await asyncio.to_thread(as_pg, os.path.join(PGBIN, "pg_ctl"), "-D", dbd, "-w", "promote")
        await cb.event(lambda e: e.get("type") == "resync" and e.get("reason") == "relay_reconnected", timeout=30)
        for _ in range(100):        # as the client library does: same client_id until stored
            m = await ca.request("send", chat_id=chat, body="during", client_id=cid2)
            if m["type"] == "ok":
                break
            assert m["code"] == "unavailable", m
            await asyncio.sleep(0.2)
        assert m["type"] == "ok", m
        changes = await cb.ok("catch_up", chat_id=chat, after=0)
        assert [(c["body"], c["client_id"]) for c in changes] == [("before", cid1), ("during", cid2)]
        await ca.close()
        await cb.close()
    run(go())
    log = r.log()
    assert "database listen ready again" in log, "\n".join(log.splitlines()[-30:])
