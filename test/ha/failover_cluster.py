"""A pg_auto_failover pair on loopback for the failover test
(test/ha/test_failover.py): a monitor and two PostgreSQL 15 nodes with chat
preloaded, synchronous replication, the monitor's failure detection tuned
to act in a few seconds, and every process it started killed at the end.

pg_autoctl and postgres refuse root: they run as the postgres OS user
(runuser), with PATH holding PostgreSQL's bin folder and XDG_CONFIG_HOME /
XDG_DATA_HOME in the pair's temporary folder (pg_autoctl keeps its state
files there). Each `pg_autoctl run` is a process group of its own: killing
that group with SIGKILL kills the keeper, its postmaster and the backends
at once, as a machine's death would.

Ports: HA_PORT_BASE (default 25000 + a per-process offset), 25000-25999."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_DIR = os.path.dirname(HERE)
sys.path.insert(0, TEST_DIR)
from harness import PGBIN, pg_connect, query, wait_until  # noqa: E402

DB = "chat_test"

# The monitor's failure detection (pg_auto_failover's defaults in brackets):
# a dead primary is noticed at the next health check, after one retry, and
# declared unhealthy 2 s after its keeper last reported; the standby is then
# promoted without waiting long for the dead primary to acknowledge its
# demotion (it cannot: it is dead).
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": 1000,              # ms between checks [5000]
    "pgautofailover.health_check_timeout": 1000,             # ms to connect [5000]
    "pgautofailover.health_check_max_retries": 1,            # [2]
    "pgautofailover.health_check_retry_delay": 500,          # ms [2000]
    "pgautofailover.node_considered_unhealthy_timeout": 2000,  # ms since the keeper's last report [20000]
    "pgautofailover.primary_demote_timeout": 3000,           # ms the old primary has to demote itself [30000]
    "pgautofailover.startup_grace_period": 2000,             # ms after the monitor starts [10000]
}

# Appended to each node's postgresql.conf (after pg_auto_failover's include,
# so these win): chat preloaded (beside pg_auto_failover's
# pg_stat_statements), and a small server (pg_auto_failover sizes
# shared_buffers for the whole machine).
NODE_CONF = """
# chat: failover test
shared_preload_libraries = 'pg_stat_statements,chat'
shared_buffers = '128MB'
effective_cache_size = '512MB'
work_mem = '4MB'
maintenance_work_mem = '64MB'
max_connections = 100
wal_keep_size = '256MB'
logging_collector = off
log_line_prefix = '%m [%p] '
"""


def free_port(start):
    port = start
    while port < 26000:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                port += 1
    raise AssertionError("no free port in 25000-25999 from %d" % start)


class Node:
    def __init__(self, pair, name, port):
        self.pair, self.name, self.port = pair, name, port
        self.pgdata = os.path.join(pair.base, name)
        self.logfile = os.path.join(pair.base, name + ".log")
        self.proc = None

    def run(self):
        """pg_autoctl run, in the background, a process group of its own."""
        self.log_handle = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.pair.as_pg(["pg_autoctl", "run", "--pgdata", self.pgdata]),
                                     stdout=self.log_handle, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pair.procs.append(self.proc)
        return self

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def kill9(self):
        """SIGKILL the keeper's process group (pg_autoctl run, its
        services, the postmaster and its backends) and the postmaster by
        its pid (in case it left the group). Returns when they are gone."""
        pm = self.postmaster_pid()
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pm:
            try:
                os.kill(pm, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait(10)
            self.log_handle.close()
        if pm:
            wait_until(lambda: not os.path.exists("/proc/%d" % pm), 10, "postmaster %d gone" % pm)

    def accepts(self):
        try:
            self.connect("postgres").close()
            return True
        except Exception:
            return False

    def connect(self, dbname=DB, **kw):
        return pg_connect(dbname, "127.0.0.1", self.port, "postgres", connect_timeout=2, **kw)

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")


class Pair:
    """Monitor + two nodes. start() returns when node 1 is primary, node 2
    its synchronous standby, and DB has the chat extension."""

    def __init__(self, port_base=None):
        base_port = port_base or int(os.environ.get("HA_PORT_BASE") or 25000 + (os.getpid() % 40) * 20)
        self.base = tempfile.mkdtemp(prefix="chat-ha.")
        os.chmod(self.base, 0o755)
        if os.getuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.env = {
            "PATH": PGBIN + ":/usr/bin:/bin",
            "XDG_CONFIG_HOME": os.path.join(self.base, "xdg", "config"),
            "XDG_DATA_HOME": os.path.join(self.base, "xdg", "data"),
            "HOME": self.base, "LANG": "C.UTF-8",
        }
        self.procs = []
        p = free_port(base_port)
        self.monitor_port = p
        self.monitor = Node(self, "monitor", p)
        p = free_port(p + 1)
        self.nodes = [Node(self, "node1", p)]
        self.nodes.append(Node(self, "node2", free_port(p + 1)))
        self.timings = {}

    def as_pg(self, cmd):
        env = ["env"] + ["%s=%s" % kv for kv in self.env.items()]
        return (["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) + env + cmd

    def autoctl(self, *args, check=True, timeout=120):
        r = subprocess.run(self.as_pg(["pg_autoctl"] + list(args)), capture_output=True, text=True,
                           timeout=timeout, cwd=self.base)
        with open(os.path.join(self.base, "autoctl.log"), "a") as f:
            f.write("$ pg_autoctl %s\n%s%s" % (" ".join(args), r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise AssertionError("pg_autoctl %s: %s\n%s" % (" ".join(args), r.returncode, r.stderr[-4000:]))
        return r

    @property
    def monitor_uri(self):
        return "postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover" % self.monitor_port

    def monitor_sql(self, sql, args=None):
        conn = pg_connect("pg_auto_failover", "127.0.0.1", self.monitor_port, "postgres", connect_timeout=2)
        try:
            return query(conn, sql, args)
        finally:
            conn.close()

    def states(self):
        """{node name: (reported state, assigned state)} from the monitor."""
        rows = self.monitor_sql("SELECT nodename, reportedstate, goalstate FROM pgautofailover.node")
        return {name: (rep, goal) for name, rep, goal in rows}

    def wait_states(self, want, timeout=60):
        """Until every node in want (name -> state) reports and is assigned it."""
        def ok():
            s = self.states()
            return all(s.get(n) == (st, st) for n, st in want.items()) and s
        return wait_until(ok, timeout, "states %r (now %r)" % (want, self.states()), interval=0.2)

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def primary(self):
        s = self.states()
        names = [n for n, (rep, goal) in s.items() if rep in ("primary", "wait_primary", "single")
                 and goal == rep]
        assert len(names) == 1, s
        return self.node(names[0])

    def create_node(self, node):
        node_env_args = ["create", "postgres", "--pgdata", node.pgdata, "--pgport", str(node.port),
                         "--monitor", self.monitor_uri, "--auth", "trust", "--no-ssl",
                         "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", node.name,
                         "--dbname", DB]
        self.autoctl(*node_env_args)
        conf = os.path.join(node.pgdata, "postgresql.conf")
        with open(conf) as f:
            text = f.read()
        if "# chat: failover test" not in text:   # a standby's copy has it already
            subprocess.run(self.as_pg(["sh", "-c", "cat >> %s" % conf]), input=NODE_CONF, text=True, check=True)

    def start(self):
        t0 = time.monotonic()
        self.autoctl("create", "monitor", "--pgdata", self.monitor.pgdata, "--pgport", str(self.monitor_port),
                     "--auth", "trust", "--no-ssl", "--hostname", "127.0.0.1")
        self.monitor.run()
        wait_until(lambda: self._monitor_up(), 30, "monitor up", interval=0.1)
        for k, v in MONITOR_SETTINGS.items():
            self.monitor_sql("ALTER SYSTEM SET %s = %s" % (k, v))
        self.monitor_sql("SELECT pg_reload_conf()")
        n1, n2 = self.nodes
        self.create_node(n1)
        n1.run()
        self.wait_states({"node1": "single"})
        wait_until(lambda: n1.accepts(), 30, "node1 accepting connections", interval=0.1)
        self.set_up_database(n1)
        self.create_node(n2)
        n2.run()
        self.wait_states({"node1": "primary", "node2": "secondary"}, 90)
        self.timings["start_s"] = time.monotonic() - t0
        return self

    def _monitor_up(self):
        try:
            self.monitor_sql("SELECT 1")
            return True
        except Exception:
            return False

    def set_up_database(self, node):
        """What test/cluster.sh createdb and the relay tests set up: the
        extension, CONNECT for the chat roles only, chat_relay LOGIN."""
        conn = node.connect(DB)
        try:
            for sql in ("CREATE EXTENSION IF NOT EXISTS chat",
                        "REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC" % DB,
                        "GRANT CONNECT ON DATABASE %s TO chat_app, chat_relay, chat_event_reader, chat_notify" % DB,
                        "ALTER ROLE chat_relay LOGIN",
                        # the standby's pg_basebackup asks for a spread
                        # checkpoint: with nothing left to write it ends at once
                        "CHECKPOINT"):
                query(conn, sql)
        finally:
            conn.close()

    def settings(self):
        """pg_autoctl show settings: [(context, name, setting, value)]."""
        r = self.autoctl("show", "settings", "--monitor", self.monitor_uri, "--json")
        return json.loads(r.stdout)

    def conninfo(self, user="chat_relay", connect_timeout=2):
        """The libpq multi-host conninfo the relays use."""
        return ("host=%s port=%s dbname=%s user=%s target_session_attrs=read-write connect_timeout=%d"
                % (",".join("127.0.0.1" for _ in self.nodes), ",".join(str(n.port) for n in self.nodes),
                   DB, user, connect_timeout))

    def cleanup(self, keep=False):
        """Kill every process this pair started (their process groups, and
        each postmaster by pid), then remove the folder (kept with keep)."""
        for node in [self.monitor] + self.nodes:
            try:
                node.kill9()
            except Exception as e:      # noqa: BLE001 - keep cleaning
                print("cleanup of %s: %s" % (node.name, e), file=sys.stderr)
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)
