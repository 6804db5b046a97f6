"""PostgreSQL stopped with -m immediate (a crash) and started again under a
running chat-notify with a backlog: nothing that was due is lost. The
deliveries are rows, so the daemon, once it has reconnected, claims what
was left (its leases included, when they end) and what came after."""
import collections
import os
import subprocess

from conftest import add_webhook, new_secret, pending, wait_until
from harness import CLUSTER_SH
from test_concurrency import send_many, some_chats


def restart_database():
    data = os.environ["PGDATA_DIR"]
    subprocess.run([CLUSTER_SH, "stop", data], check=True)      # pg_ctl -m immediate
    subprocess.run([CLUSTER_SH, "start", data, os.environ["PGPORT"]], check=True)


def test_a_database_crash_mid_backlog_loses_nothing(notifiers, receivers):
    secret = new_secret()
    r = receivers(secret, "slow:0.1")
    add_webhook(r.url, secret, ["message"])
    n = notifiers(webhook_per_endpoint=4, webhook_concurrency=4, webhook_timeout=3, lease=8)
    before = send_many(some_chats(10), 10)
    wait_until(lambda: r.count() >= 10, 30, "a part of the backlog")
    left = pending()
    restart_database()
    wait_until(lambda: n.http("/healthz")[0] == 200, 30, "chat-notify reconnected")
    after = send_many(some_chats(5), 4)
    wait_until(lambda: pending() == 0, 60, "every event delivered after the restart")
    assert left > 0, "the backlog was gone before the crash: nothing was tested"
    counts = collections.Counter(r.ids())
    assert len(counts) == before + after, "missing: %d" % (before + after - len(counts))
    # at least once: only what was in flight at the crash may come twice
    assert sum(c - 1 for c in counts.values()) <= 4, counts.most_common(5)
    assert all(d.valid[0] for d in r.deliveries), "a signature did not verify"
