#!/usr/bin/python3
"""The cost of one reconnect of a user who has many chats, in two builds.

A user's connect or disconnect is presence work in the database (the
presence_update of the relay) and in the relay (the NOTIFY payloads it
reads back). This measures it per reconnect, for a baseline build and the
current one in the same invocation, so the machine's noise falls on both.

Per build (its PGBIN, whose PostgreSQL has that build's extension, and its
chat-relay): a private cluster (test/cluster.sh) on 127.0.0.1, user U =
1,000,000 in CHATS direct chats with peers 1..CHATS (each opened by the peer,
one message from each side), one relay, and a watcher: peer 1 on a
WebSocket, which sends {"type":"presence","id":1,"user_ids":[U]} (builds
that send presence only to subscribers need it; older ones send it to
everyone who shares a chat). A reconnect: U connects, the watcher sees U
online, U closes, the watcher sees U offline.

Each round does RECONNECTS reconnects per build (the builds alternate,
and which goes first alternates) and reads, before and after:
  - DB CPU: on-CPU time of the postmaster and every child
    (/proc/PID/schedstat, nanoseconds: the per-process ticks of
    /proc/PID/stat would be as coarse as what a light build spends per
    round), plus the postmaster's cutime + cstime for children that ended;
  - relay CPU: on-CPU time of every thread of the relay;
  - payloads: chat_relay_notifications_total of the relay's /metrics, and
    the events (envelopes of at most 250 recipients) in them,
    chat_relay_events_in_total;
  - wall time of the reconnects.
After a round it waits until the relay's payload counter stands still, so
the tail of the last reconnect's events is inside the round.
Prints the rounds, then the medians per reconnect and current / baseline as
a markdown table (also written to bench/results/). Needs root or the
postgres OS user (test/cluster.sh, /proc of the server processes).

    bench/presence_reconnect.py [--baseline-pgbin DIR --baseline-relay PATH]
        [--pgbin DIR] [--relay PATH] [--chats N] [--reconnects K] [--rounds R]
        [--port-base PORT] [--relay-port-base PORT]
Without a baseline it measures the current build alone. Takes about a
minute at the defaults (loading 20,000 chats: a few seconds per build).
"""
import argparse
import asyncio
import contextlib
import datetime
import hashlib
import importlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "test"), os.path.join(ROOT, "test", "relay")]
from cpu_per_call import on_cpu_ns  # noqa: E402
from report import fmt, median  # noqa: E402
import harness  # noqa: E402

USER = 1_000_000
DB = "bench"
WAIT_S = 15            # longest wait for one presence event
CLK_TCK = os.sysconf("SC_CLK_TCK")
# relay/metrics.c: NOTIFY payloads read on chat_events, and the events
# (envelopes) in them: the extension joins envelopes into one payload
PAYLOADS = "chat_relay_notifications_total"
EVENTS = "chat_relay_events_in_total"

# Events go out by NOTIFY in the loading transaction itself (direct mode):
# deferred, its 3 events per chat would overflow the 4 MB event queue (and
# be dropped with a resync). No relay listens yet, so nobody receives them.
SETUP_SQL = """
SET chat.event_mode = direct;
DO $$
DECLARE
    c bigint;
BEGIN
    FOR p IN 1..%(chats)s LOOP
        c := chat.open_chat(p, 'direct', NULL, %(user)s);
        PERFORM chat.send_message(p, c, 'hi');
        PERFORM chat.send_message(%(user)s, c, 'hello');
    END LOOP;
END
$$;
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline-pgbin", help="PGBIN of the baseline build")
    p.add_argument("--baseline-relay", help="chat-relay of the baseline build")
    p.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin", help="PGBIN of the current build")
    p.add_argument("--relay", default=os.path.join(ROOT, "relay", "chat-relay"),
                   help="chat-relay of the current build (the release one, not ASan)")
    p.add_argument("--chats", type=int, default=20000)
    p.add_argument("--reconnects", type=int, default=50, help="reconnects per round and build")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5, help="unmeasured reconnects per build first")
    p.add_argument("--port-base", type=int, default=55480, help="first PostgreSQL port tried")
    p.add_argument("--relay-port-base", type=int, default=28000, help="relays listen above it")
    args = p.parse_args()
    if bool(args.baseline_pgbin) != bool(args.baseline_relay):
        p.error("--baseline-pgbin and --baseline-relay go together")
    for pgbin in filter(None, (args.baseline_pgbin, args.pgbin)):
        if not os.access(os.path.join(pgbin, "postgres"), os.X_OK):
            p.error("no postgres in %s" % pgbin)
    for relay in filter(None, (args.baseline_relay, args.relay)):
        if not os.access(relay, os.X_OK):
            p.error("%s is not an executable (make -C relay)" % relay)
    if not 1 <= args.chats < USER:
        p.error("--chats must be 1 to %d" % (USER - 1))
    return args


# ---------------------------------------------------------------- CPU time

def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (which may hold
    spaces): [0] is the state, [1] the parent pid, [13:15] cutime, cstime."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def children(ppid):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(proc_stat(int(name))[1]) == ppid:
                    pids.append(int(name))
    return pids


def threads_cpu_ns(pid):
    """On-CPU ns of every thread of pid (/proc/PID/schedstat is the main
    thread's alone; on_cpu_ns reads /proc/<its argument>/schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with contextlib.suppress(OSError):
            total += on_cpu_ns("%d/task/%s" % (pid, tid))
    return total


def cluster_cpu_ns(postmaster):
    """CPU of a cluster so far: the postmaster, its live children, and (its
    cutime + cstime) the children that ended, such as autovacuum workers."""
    reaped = proc_stat(postmaster)[13:15]
    total = on_cpu_ns(postmaster) + sum(int(t) for t in reaped) * 10**9 // CLK_TCK
    for pid in children(postmaster):
        with contextlib.suppress(OSError):   # it ended meanwhile: counted next time in cutime
            total += on_cpu_ns(pid)
    return total


# ---------------------------------------------------------------- one build

class BenchCluster(harness.Cluster):
    """harness.Cluster with the PGBIN of one build; every cluster.sh call
    bounded in time."""

    def __init__(self, port, pgbin):
        super().__init__(port, prefix="chat-bench-presence.")
        self.env["PGBIN"] = pgbin

    def run(self, *args):
        subprocess.run([harness.CLUSTER_SH, args[0], self.dir] + [str(a) for a in args[1:]],
                       check=True, env=self.env, timeout=180)

    def postmaster(self):
        with open(os.path.join(self.dir, "postmaster.pid")) as f:
            return int(f.readline())


def free_port(first, last):
    """The first port of first..last nothing listens on (a cluster of
    another run may hold one)."""
    for port in range(first, last + 1):
        with socket.socket() as s:
            # as PostgreSQL binds: connections of an earlier run in TIME_WAIT do not count
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    sys.exit("no free port in %d-%d" % (first, last))


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()[:12]


class Build:
    """One build under test: its cluster, data, relay and watcher."""

    def __init__(self, name, pgbin, relay_bin):
        self.name, self.pgbin, self.relay_bin = name, pgbin, relay_bin
        self.cluster = self.relay = self.watcher = None
        self.rounds = []        # per round, per reconnect: {"db_ms", "relay_ms", "payloads", "events", "wall_ms"}

    def start_cluster(self, port):
        self.cluster = BenchCluster(port, self.pgbin)
        self.cluster.start()
        self.cluster.run("createdb", port, DB)

    def load(self, chats):
        """The user's chats; returns the seconds it took."""
        t0 = time.monotonic()
        conn = self.cluster.connect(DB, options="-c statement_timeout=600s")
        try:
            harness.query(conn, SETUP_SQL % {"chats": chats, "user": USER})
            harness.query(conn, "VACUUM ANALYZE")
            harness.query(conn, "CHECKPOINT")
            harness.query(conn, "ALTER ROLE chat_relay LOGIN")   # CREATE EXTENSION made it NOLOGIN
            n = harness.query(conn, "SELECT count(*) FROM chat.members WHERE user_id = %s", (USER,))[0][0]
            if n != chats:
                raise RuntimeError("%s: user %d has %d chats, not %d" % (self.name, USER, n, chats))
            self.describe(conn)
        finally:
            conn.close()
        return time.monotonic() - t0

    def describe(self, conn):
        """Which extension and relay this build is, for the report."""
        libdir = harness.query(conn, "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")[0][0]
        self.about = "PGBIN `%s` (chat.so md5 %s…), relay `%s` (md5 %s…)" % (
            self.pgbin, md5_of(os.path.join(libdir, "chat.so")), self.relay_bin, md5_of(self.relay_bin))

    def start_relay(self, relay_helpers):
        # conftest.Relay starts conftest.RELAY_BIN on the database of the PG*
        # environment (the test suite's): both are this build's while it starts
        pg_env = {"PGHOST": "127.0.0.1", "PGPORT": str(self.cluster.port), "PGDATABASE": DB}
        with mock.patch.object(relay_helpers, "RELAY_BIN", self.relay_bin), mock.patch.dict(os.environ, pg_env):
            self.relay = relay_helpers.Relay(
                self.cluster.base, "bench-" + self.name, log_level="warn",
                # U connects warmup + R * K times in a minute or two (default: 1/s, burst 10)
                upgrade_rate=100000, upgrade_burst=100000,
                # one relay: the heartbeat's sweep finds nobody; kept out of the rounds
                heartbeat_interval=600, presence_grace=1200)

    def snapshot(self):
        """CPU ns of the cluster and of the relay, the relay's counters."""
        return {"db": cluster_cpu_ns(self.cluster.postmaster()), "relay": threads_cpu_ns(self.relay.proc.pid),
                "payloads": self.relay.metric(PAYLOADS), "events": self.relay.metric(EVENTS)}

    def print_logs(self, tail=3000):
        """The end of the relay's and the server's logs (before they go with
        the cluster's folder): why a run failed."""
        logs = [("relay", self.relay.logfile if self.relay else None),
                ("server", self.cluster.log if self.cluster else None)]
        for what, path in logs:
            if path and os.path.exists(path):
                with open(path, errors="replace") as f:
                    text = f.read()[-tail:]
                print("--- %s: end of the %s log (%s) ---\n%s" % (self.name, what, path, text), file=sys.stderr)

    def stop(self):
        """Relay and cluster down, whatever state they are in."""
        if self.relay is not None and self.relay.proc.poll() is None:
            try:
                self.relay.stop()
            except Exception as e:      # it did not stop on SIGTERM: killed by stop()
                print("%s: %s" % (self.name, e), file=sys.stderr)
        if self.cluster is not None:
            self.cluster.remove()


# ---------------------------------------------------------------- reconnects

def presence_of(online):
    return lambda e: e.get("type") == "presence" and e.get("user_id") == USER and e.get("online") is online


async def connect_watcher(build, relay_helpers):
    """Peer 1, subscribed to U's presence (request id 1)."""
    build.watcher = await relay_helpers.connect(build.relay, 1, ping_interval=None)
    answer = await build.watcher.request("presence", user_ids=[USER])
    if answer.get("type") != "ok":
        raise RuntimeError("%s: presence request refused: %r" % (build.name, answer))


async def reconnect(build, relay_helpers):
    u = await relay_helpers.connect(build.relay, USER, ping_interval=None)
    await build.watcher.event(presence_of(True), timeout=WAIT_S)
    await u.close()
    await build.watcher.event(presence_of(False), timeout=WAIT_S)


async def settle(relay, quiet_s=0.3, limit_s=20):
    """Until the relay's payload counter has not moved for quiet_s: the
    publisher and the relay are done with the last reconnect."""
    deadline = time.monotonic() + limit_s
    last = relay.metric(PAYLOADS)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        now = relay.metric(PAYLOADS)
        if now == last:
            return
        last = now
    raise RuntimeError("relay %s: payloads still arriving after %d s" % (relay.name, limit_s))


async def measure_round(build, relay_helpers, k):
    await settle(build.relay)
    a = build.snapshot()
    t0 = time.perf_counter()
    for _ in range(k):
        await reconnect(build, relay_helpers)
    wall = time.perf_counter() - t0
    await settle(build.relay)
    b = build.snapshot()

    def per(key, scale=1):      # a counter missing from /metrics: nan
        return (b[key] - a[key]) / k / scale if None not in (a[key], b[key]) else float("nan")
    build.rounds.append({"db_ms": per("db", 1e6), "relay_ms": per("relay", 1e6), "payloads": per("payloads"),
                         "events": per("events"), "wall_ms": wall / k * 1e3})


async def measure(builds, relay_helpers, args):
    try:
        for b in builds:
            await connect_watcher(b, relay_helpers)
        for b in builds:            # plans, caches and the relay's paths warm
            for _ in range(args.warmup):
                await reconnect(b, relay_helpers)
        for r in range(1, args.rounds + 1):
            # alternate which goes first, so neither always runs after the other
            for b in (builds if r % 2 else builds[::-1]):
                await measure_round(b, relay_helpers, args.reconnects)
                log("round %d, %s: %s" % (r, b.name, per_reconnect(b.rounds[-1])))
    finally:
        for b in builds:
            if b.watcher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(b.watcher.close(), 5)


# ---------------------------------------------------------------- report

COLUMNS = [("db_ms", "DB CPU, ms", 3), ("relay_ms", "relay CPU, ms", 3),
           ("payloads", "NOTIFY payloads", 1), ("events", "events in them", 1), ("wall_ms", "wall, ms", 2)]


def per_reconnect(m):
    return ", ".join("%s %s" % (label, fmt(m[key], digits)) for key, label, digits in COLUMNS) + " per reconnect"


def medians(build):
    return {key: median([m[key] for m in build.rounds]) for key, _, _ in COLUMNS}


def cell(build, key, digits):
    """The median, and the range of the rounds: how much the machine moved."""
    values = [m[key] for m in build.rounds]
    return "%s (%s–%s)" % (fmt(median(values), digits), fmt(min(values), digits), fmt(max(values), digits))


def table(builds):
    meds = [medians(b) for b in builds]
    head = "| per reconnect: median (range) of %d rounds | %s |" % (
        len(builds[0].rounds), " | ".join(b.name for b in builds))
    rule = "|---|" + "---:|" * len(builds)
    if len(builds) == 2:
        head += " current / baseline (medians) |"
        rule += "---:|"
    lines = [head, rule]
    for key, label, digits in COLUMNS:
        cells = [cell(b, key, digits) for b in builds]
        if len(builds) == 2:
            base, cur = meds[0][key], meds[1][key]
            cells.append(fmt(cur / base, 2) if base else "n/a")
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    return "\n".join(lines)


def report(builds, args, command, load_start):
    lines = [
        "### One reconnect of a user with %d chats" % args.chats,
        "",
        "- command: `%s` (from `%s`)" % (command, ROOT),
        "- date: %s; %d cores, load average %s at the start, %s at the end" % (
            datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), os.cpu_count(), load_start, loadavg()),
        "- %d rounds of %d reconnects per build, builds alternating (after %d unmeasured ones)" % (
            args.rounds, args.reconnects, args.warmup),
    ]
    lines += ["- %s: %s" % (b.name, b.about) for b in builds]
    lines += ["", table(builds)]
    return "\n".join(lines) + "\n"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- main

def relay_helpers_from(port_base):
    """test/relay/conftest.py: Relay, jwt and connect of the relay tests. It
    takes its first relay port from RELAY_TEST_PORT_BASE when imported."""
    os.environ["RELAY_TEST_PORT_BASE"] = str(port_base)
    return importlib.import_module("conftest")


def on_signal(signum, frame):
    # SystemExit runs the finally blocks: the relays and clusters are stopped
    sys.exit(128 + signum)


def main():
    args = parse_args()
    command = shlex.join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
    load_start = loadavg()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    relay_helpers = relay_helpers_from(args.relay_port_base)
    builds = [Build("current", args.pgbin, args.relay)]
    if args.baseline_pgbin:
        builds.insert(0, Build("baseline", args.baseline_pgbin, args.baseline_relay))
    try:
        # all data first: a watcher left waiting while the next build loads
        # would miss the relay's pings
        port = args.port_base
        for b in builds:
            port = free_port(port, args.port_base + 19)
            b.start_cluster(port)
            log("%s: cluster on 127.0.0.1:%d, loading %d chats" % (b.name, port, args.chats))
            log("%s: loaded in %.1f s" % (b.name, b.load(args.chats)))
            port += 1
        for b in builds:
            b.start_relay(relay_helpers)
            log("%s: relay on 127.0.0.1:%d" % (b.name, b.relay.port))
        asyncio.run(measure(builds, relay_helpers, args))
    except Exception:           # not on SIGTERM or ^C: nothing failed
        for b in builds:
            b.print_logs()
        raise
    finally:
        for b in builds:
            b.stop()
    text = report(builds, args, command, load_start)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", "presence_reconnect-%s.md" % time.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        f.write(text)
    print()
    print(text)
    print("(saved in %s)" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
