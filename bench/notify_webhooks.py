#!/usr/bin/python3
"""Webhooks of chat-notify (issue 16): throughput, latency, cost to the sender.

A private cluster (test/cluster.sh, PGBIN), the release relay/chat-notify,
and webhook receivers: each its own Python process (this script with
--receiver PORT), an http.server.ThreadingHTTPServer on 127.0.0.1 that
answers 204 at once, counts deliveries by webhook-id, stamps each arrival
(time.time()) and verifies the signature of every 20th request. One
receiver process per endpoint, so 4 endpoints have 4 processes (no GIL
shared between them). Its own CPU is reported too: whether it was the
bottleneck.

1. Throughput: with chat-notify stopped, the deliveries are preloaded
   (DELIVERIES messages through chat.send_message in one DO block, over
   CHATS chats, so a chat's order rarely holds one back; 4 endpoints:
   DELIVERIES / 4 messages; one endpoint at the default
   webhook_per_endpoint, which goes at some 300/s: a quarter of that, so
   its runs take no longer than the others'); then chat-notify starts and
   the time until the receivers have seen every webhook-id is measured:
   deliveries/s from the start of the process to the last arrival (start
   and connection included) and from the first arrival to the last, and
   the longest pause between two arrivals. Also chat-notify's on-CPU time
   per delivery (/proc/PID/task/*/schedstat, the whole process life until
   every result is reported), its VmRSS (highest sample, every 50 ms) and
   VmHWM (/proc/PID/status), its claims (chat_notify_claims_total), the
   database's CPU (postmaster and children) and the receivers' per
   delivery. Variants: 1 endpoint, 4 endpoints, 1 endpoint with
   webhook_per_endpoint 64 (the default, 8, is what one endpoint gets in
   flight), 1 endpoint with claim_delay_ms 0.
2. Latency: chat-notify running and idle, one session sends one message
   every 1/RATE s for LAT_SECONDS over 10 chats (so a chat's order never
   holds one back); from the client's clock right after the send's commit
   returned to the receiver's clock at arrival (same machine): p50, p99,
   max. With the default claim_delay_ms (20) and with 0.
3. send_message with webhooks off and on: one session as a superuser,
   sequential calls of 200-character bodies, per round and variant CALLS
   timed calls (wall time of each, client side: p50; the backend's on-CPU
   time per call, /proc/PID/schedstat, as bench/send_cost.py), variants
   alternating in each round (order reversed every other round): no
   endpoint; one enabled endpoint subscribed to message; one subscribed to
   read only. chat-notify is not running (the deliveries pile up in the
   round and go with remove_webhook after it, untimed): this is the
   sender's cost alone. All three in one session; with --baseline-pgbin
   also a build from before webhooks, in its own cluster and session.
Each measurement RUNS times (default 3; rounds for 3), medians. Prints a
markdown report, also written to bench/results/notify_webhooks-*.md. Every
process it starts is stopped at the end, also on error or a signal. Needs
root or the postgres OS user (test/cluster.sh, /proc of the server).

    bench/notify_webhooks.py [--pgbin DIR] [--notify PATH] [--baseline-pgbin DIR] [--runs N]
        [--deliveries N] [--lat-seconds S] [--rate R] [--rounds R] [--calls N]
About 7 minutes at the defaults on 2 cores (--only throughput,latency,send
picks parts).
"""
import argparse
import base64
import contextlib
import datetime
import hashlib
import hmac
import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "test")]

DB = "bench"
SECRET = "whsec_" + base64.b64encode(b"chat-notify bench secret, 32 by").decode()
BODY = "x" * 200
SAMPLE = 20                # receivers verify every SAMPLE-th signature


# ---------------------------------------------------------------- receiver process

def receiver_main(port):
    """A webhook receiver: POST anything → 204 at once; GET /stats,
    GET /arrivals, POST /reset are the driver's."""
    key = base64.b64decode(SECRET[len("whsec_"):])
    lock = threading.Lock()
    st = {}

    def reset():
        st.update(count=0, ids=set(), first=None, last=None, checked=0, bad=0, kept=[], max_gap=0.0)
    reset()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path != "/hook":
                reset()
                self.wfile.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                return
            t = time.time()
            wid = self.headers.get("webhook-id")
            self.wfile.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            with lock:
                st["count"] += 1
                st["ids"].add(wid)
                st["first"] = st["first"] or t
                if st["last"] is not None:
                    st["max_gap"] = max(st["max_gap"], t - st["last"])
                st["last"] = t
                st["kept"].append((t, body))
                check = st["count"] % SAMPLE == 1
            if check:
                ts = self.headers.get("webhook-timestamp", "0")
                want = base64.b64encode(hmac.new(key, ("%s.%s." % (wid, ts)).encode() + body,
                                                 hashlib.sha256).digest()).decode()
                ok = any(hmac.compare_digest(want, s[3:])
                         for s in self.headers.get("webhook-signature", "").split())
                with lock:
                    st["checked"] += 1
                    st["bad"] += not ok

        def do_GET(self):
            with lock:
                if self.path == "/arrivals":
                    kept = list(st["kept"])
                    out = []
                    for t, body in kept:
                        d = json.loads(body)
                        out.append([t, d.get("chat_id"), d.get("seq")])
                else:
                    out = {k: (len(v) if k in ("ids", "kept") else v) for k, v in st.items()}
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256    # chat-notify opens up to webhook_per_endpoint connections at once

    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("ready", flush=True)
    server.serve_forever()


# ---------------------------------------------------------------- driver helpers

from cpu_per_call import on_cpu_ns  # noqa: E402
from presence_reconnect import cluster_cpu_ns, threads_cpu_ns, loadavg, md5_of  # noqa: E402
from report import fmt, median  # noqa: E402
import harness  # noqa: E402


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def percentile(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))]


def free_port(first, last):
    for port in range(first, last + 1):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    sys.exit("no free port in %d-%d" % (first, last))


class Ports:
    """Receivers' and daemons' ports, each free when handed out."""

    def __init__(self, first, last):
        self.next, self.last = first, last

    def take(self):
        port = free_port(self.next, self.last)
        self.next = port + 1
        return port


class Receiver:
    def __init__(self, port):
        self.port = port
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--receiver", str(port)],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("receiver on %d did not start" % port)

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def _http(self, path, method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
        return json.loads(data) if data else None

    def stats(self):
        return self._http("/stats")

    def arrivals(self):
        return self._http("/arrivals")

    def reset(self):
        self._http("/reset", "POST")

    def cpu_ns(self):
        return threads_cpu_ns(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Notify:
    """A release chat-notify with its own config file and log."""

    def __init__(self, binary, tmpdir, port, db_port, name, **opts):
        self.port, self.name = port, name
        settings = {"listen": "127.0.0.1:%d" % port, "worker_id": name, "log_level": "warn",
                    "db": "host=127.0.0.1 port=%d dbname=%s user=chat_notify" % (db_port, DB)}
        settings.update(opts)
        self.config = os.path.join(tmpdir, name + ".conf")
        self.logfile = os.path.join(tmpdir, name + ".log")
        with open(self.config, "w") as f:
            for k, v in settings.items():
                f.write('%s = "%s"\n' % (k, v))
        self.log_handle = open(self.logfile, "ab")
        self.t_start = time.time()
        self.proc = subprocess.Popen([binary, "--config", self.config], stdout=self.log_handle,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def healthy(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.port, timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def wait_healthy(self, timeout=20):
        def ok():
            if self.proc.poll() is not None:
                raise RuntimeError("chat-notify exited %s:\n%s" % (self.proc.returncode, self.log()))
            return self.healthy()
        harness.wait_until(ok, timeout, what="chat-notify healthy")

    def status(self):
        """VmRSS and VmHWM, kB."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        return out

    def cpu_ns(self):
        return threads_cpu_ns(self.proc.pid)

    def metric(self, name):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
                text = r.read().decode()
        except Exception:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_handle.close()
        return self.proc.returncode


class BenchCluster(harness.Cluster):
    def __init__(self, port, pgbin):
        super().__init__(port, prefix="chat-bench-notify.")
        self.env["PGBIN"] = pgbin

    def run(self, *args):
        subprocess.run([harness.CLUSTER_SH, args[0], self.dir] + [str(a) for a in args[1:]],
                       check=True, env=self.env, timeout=180)

    def postmaster(self):
        with open(os.path.join(self.dir, "postmaster.pid")) as f:
            return int(f.readline())


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.cluster = None
        self.conn = None
        self.receivers = []
        self.daemons = []
        self.ports = Ports(args.port_base, args.port_base + 999)
        self.results = {}
        self.chats = []
        self.baseline = None

    # -- set-up

    def sql(self, query, params=None):
        return harness.query(self.conn, query, params)

    def start(self):
        port = free_port(self.args.pg_port, self.args.pg_port_last)
        self.cluster = BenchCluster(port, self.args.pgbin)
        self.cluster.start()
        self.cluster.run("createdb", port, DB)
        self.conn = self.cluster.connect(DB, options="-c statement_timeout=600s")
        self.sql("ALTER ROLE chat_notify LOGIN")
        libdir = self.sql("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")[0][0]
        self.about = "PGBIN `%s` (chat.so md5 %s…), chat-notify `%s` (md5 %s…), PostgreSQL on 127.0.0.1:%d" % (
            self.args.pgbin, md5_of(os.path.join(libdir, "chat.so")),
            os.path.relpath(self.args.notify, ROOT), md5_of(self.args.notify), port)
        self.version = self.sql("SHOW server_version")[0][0]
        # CHATS chats of two users each (buyer 810000+i, seller 1)
        self.chats = [r[0] for r in self.sql(
            "SELECT chat.open_chat(810000 + i, 'direct', NULL, 1) FROM generate_series(1, %s) i",
            (self.args.chats,))]
        for _ in range(4):
            self.receivers.append(Receiver(self.ports.take()))
        if self.args.baseline_pgbin:
            bport = free_port(port + 1, self.args.pg_port_last)
            self.baseline = BenchCluster(bport, self.args.baseline_pgbin)
            self.baseline.start()
            self.baseline.run("createdb", bport, DB)
            bconn = self.baseline.connect(DB)
            blib = harness.query(bconn, "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")[0][0]
            self.about_baseline = "baseline: PGBIN `%s` (chat.so md5 %s…), PostgreSQL on 127.0.0.1:%d" % (
                self.args.baseline_pgbin, md5_of(os.path.join(blib, "chat.so")), bport)
            bconn.close()
        self.tmp = os.path.join(self.cluster.base, "notify")
        os.makedirs(self.tmp, exist_ok=True)
        log("cluster on %d, %d chats, receivers on %s" % (
            port, len(self.chats), ", ".join(str(r.port) for r in self.receivers)))

    def stop(self):
        for d in self.daemons:
            with contextlib.suppress(Exception):
                d.stop()
        for r in self.receivers:
            with contextlib.suppress(Exception):
                r.stop()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        for c in (self.cluster, self.baseline):
            if c is not None:
                with contextlib.suppress(Exception):
                    c.remove(keep_env="BENCH_KEEP")

    def daemon(self, name, **opts):
        d = Notify(self.args.notify, self.tmp, self.ports.take(), self.cluster.port, name, **opts)
        self.daemons.append(d)
        return d

    def set_endpoints(self, n, types=("message",)):
        """Exactly n endpoints (receivers 0..n-1) for types; their ids."""
        self.sql("SELECT chat.remove_webhook(endpoint_id) FROM chat.webhooks")
        return [self.sql("SELECT chat.add_webhook(%s, %s, %s)", (r.url, SECRET, list(types)))[0][0]
                for r in self.receivers[:n]]

    # -- 1. throughput

    def throughput_run(self, label, endpoints, opts, share=1):
        n_msgs = int(self.args.deliveries * share) // endpoints
        want = n_msgs * endpoints
        self.set_endpoints(endpoints)
        for r in self.receivers:
            r.reset()
        t0 = time.monotonic()
        # direct mode: deferred, 20,000 events in one transaction would
        # overflow the event queue (dropped, resync); nobody listens here
        chats = "'{%s}'::bigint[]" % ",".join(map(str, self.chats))
        self.sql("SET chat.event_mode = direct")
        self.sql("DO $$ DECLARE chats bigint[] := %s; BEGIN FOR i IN 0 .. %d - 1 LOOP "
                 "PERFORM chat.send_message(1, chats[1 + i %% array_length(chats, 1)], '%s'); "
                 "END LOOP; END $$" % (chats, n_msgs, BODY))
        self.sql("RESET chat.event_mode")
        self.sql("VACUUM ANALYZE chat.webhook_deliveries, chat.webhook_events")
        pending = self.sql("SELECT count(*) FROM chat.webhook_deliveries")[0][0]
        if pending != want:
            raise RuntimeError("%d deliveries pending, not %d" % (pending, want))
        log("%s: %d deliveries preloaded in %.1f s" % (label, want, time.monotonic() - t0))
        self.sql("CHECKPOINT")
        pm = self.cluster.postmaster()
        db0 = cluster_cpu_ns(pm)
        rc0 = sum(r.cpu_ns() for r in self.receivers[:endpoints])
        d = self.daemon("tp-%s-%d" % (label.replace(" ", "_").replace(",", ""), len(self.daemons)), **opts)
        rss_max = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                with contextlib.suppress(Exception):
                    rss_max[0] = max(rss_max[0], d.status()["VmRSS"])
                done.wait(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            deadline = time.monotonic() + self.args.timeout
            while True:
                stats = [r.stats() for r in self.receivers[:endpoints]]
                if sum(s["ids"] for s in stats) >= want:
                    break
                if d.proc.poll() is not None:
                    raise RuntimeError("chat-notify exited %s:\n%s" % (d.proc.returncode, d.log()))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s: %d of %d delivered after %d s" % (
                        label, sum(s["ids"] for s in stats), want, self.args.timeout))
                time.sleep(0.05)
            harness.wait_until(lambda: self.sql("SELECT count(*) FROM chat.webhook_deliveries")[0][0] == 0,
                               30, what="every result reported", interval=0.05)
            cpu = d.cpu_ns()
            st = d.status()
            claims = d.metric("chat_notify_claims_total")
            db1 = cluster_cpu_ns(pm)
            rc1 = sum(r.cpu_ns() for r in self.receivers[:endpoints])
        finally:
            done.set()
            sampler.join()
            d.stop()
        first = min(s["first"] for s in stats)
        last = max(s["last"] for s in stats)
        total = sum(s["count"] for s in stats)
        bad = sum(s["bad"] for s in stats)
        if bad:
            raise RuntimeError("%d signatures did not verify" % bad)
        m = {"rate_start": want / (last - d.t_start), "rate_steady": (want - 1) / (last - first),
             "secs": last - d.t_start, "notify_us": cpu / want / 1e3, "db_us": (db1 - db0) / want / 1e3,
             "recv_us": (rc1 - rc0) / want / 1e3, "recv_core": (rc1 - rc0) / 1e9 / (last - d.t_start),
             "rss_kb": max(rss_max[0], st["VmRSS"]), "hwm_kb": st["VmHWM"], "dups": total - want,
             "checked": sum(s["checked"] for s in stats), "n": want,
             "claims": claims, "per_claim": want / claims if claims else float("nan"),
             "gap_ms": max(s["max_gap"] for s in stats) * 1e3}
        log("%s: %.0f deliveries/s (steady %.0f), chat-notify %.1f us CPU per delivery, DB %.1f us, "
            "receivers %.1f us (%.0f%% of a core), RSS %d kB, HWM %d kB, duplicates %d, %s claims, longest pause %.0f ms" % (
                label, m["rate_start"], m["rate_steady"], m["notify_us"], m["db_us"], m["recv_us"],
                100 * m["recv_core"], m["rss_kb"], m["hwm_kb"], m["dups"], claims, m["gap_ms"]))
        return m

    def throughput(self):
        # one endpoint at the default webhook_per_endpoint (8) goes at some
        # 300/s: a quarter of the deliveries keeps its runs as short as the others'
        variants = [("1 endpoint", 1, {}, 0.25), ("4 endpoints", 4, {}, 1),
                    ("1 endpoint, webhook_per_endpoint 64", 1, {"webhook_per_endpoint": 64}, 1),
                    ("1 endpoint, claim_delay_ms 0", 1, {"claim_delay_ms": 0}, 0.25)]
        out = {label: [] for label, _, _, _ in variants}
        for run in range(self.args.runs):
            for label, n, opts, share in (variants if run % 2 == 0 else variants[::-1]):
                out[label].append(self.throughput_run(label, n, opts, share))
        self.results["throughput"] = out
        self.sql("SELECT chat.remove_webhook(endpoint_id) FROM chat.webhooks")

    # -- 2. latency

    def latency_run(self, label, opts):
        self.set_endpoints(1)
        rec = self.receivers[0]
        d = self.daemon("lat-%d" % len(self.daemons), **opts)
        try:
            d.wait_healthy()
            time.sleep(0.5)
            idle_rss = d.status()["VmRSS"]
            rec.reset()
            conn = self.cluster.connect(DB)
            cur = conn.cursor()
            sent = {}
            chats = self.chats[:10]
            interval = 1.0 / self.args.rate
            n = int(self.args.lat_seconds * self.args.rate)
            t_next = time.monotonic()
            for i in range(n):
                pause = t_next - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                t_next += interval
                chat = chats[i % len(chats)]
                cur.execute("SELECT (chat.send_message(1, %s, %s))->>'seq'", (chat, BODY))
                t = time.time()         # the commit has returned (autocommit)
                sent[(chat, int(cur.fetchone()[0]))] = t
            conn.close()
            harness.wait_until(lambda: rec.stats()["ids"] >= n, 30, what="latency deliveries")
        finally:
            d.stop()
        got = {}
        for t, chat, seq in rec.arrivals():
            got.setdefault((chat, seq), t)
        lat = [(got[k] - t) * 1e3 for k, t in sent.items() if k in got]
        m = {"n": len(sent), "lost": len(sent) - len(lat), "p50": percentile(lat, 50),
             "p99": percentile(lat, 99), "max": max(lat), "idle_rss_kb": idle_rss}
        log("%s: %d sends, p50 %.2f ms, p99 %.2f ms, max %.2f ms, lost %d" % (
            label, m["n"], m["p50"], m["p99"], m["max"], m["lost"]))
        return m

    def latency(self):
        variants = [("claim_delay_ms 20 (default)", {}), ("claim_delay_ms 0", {"claim_delay_ms": 0})]
        out = {label: [] for label, _ in variants}
        for run in range(self.args.runs):
            for label, opts in (variants if run % 2 == 0 else variants[::-1]):
                out[label].append(self.latency_run(label, opts))
        self.results["latency"] = out
        self.sql("SELECT chat.remove_webhook(endpoint_id) FROM chat.webhooks")

    # -- 3. send_message off / on

    def send_cost(self):
        variants = [("off: no endpoint", 0, ("message",)),
                    ("on: one endpoint for message", 1, ("message",)),
                    ("one endpoint for read only", 1, ("read",))]
        # one session for this build's variants: they differ by the endpoints
        # only (sessions of one build differed by several % on their own)
        current = self.session(self.cluster)
        sessions = {label: current for label, _, _ in variants}    # label → (connection, backend pid, chat)
        if self.baseline is not None:
            label = "before: baseline build (no webhooks)"
            variants.insert(0, (label, None, None))
            sessions[label] = self.session(self.baseline)
        q = "SELECT chat.send_message(1, %s, %s)"
        out = {label: [] for label, _, _ in variants}
        try:
            for r in range(self.args.rounds + 1):      # round 0: warm-up, not kept
                for label, n, types in (variants if r % 2 == 0 else variants[::-1]):
                    conn, pid, chat = sessions[label]
                    cur = conn.cursor()
                    if n is not None:
                        self.set_endpoints(n, types)
                    for _ in range(50):     # the backend sees the endpoint change, plans warm
                        cur.execute(q, (chat, BODY))
                    walls = []
                    c0 = on_cpu_ns(pid)
                    for _ in range(self.args.calls):
                        w0 = time.perf_counter()
                        cur.execute(q, (chat, BODY))
                        walls.append(time.perf_counter() - w0)
                    c1 = on_cpu_ns(pid)
                    pend = 0
                    if n is not None:
                        pend = self.sql("SELECT count(*) FROM chat.webhook_deliveries")[0][0]
                        self.set_endpoints(0)
                    if r == 0:
                        continue
                    m = {"p50": percentile(walls, 50) * 1e3, "p99": percentile(walls, 99) * 1e3,
                         "cpu_us": (c1 - c0) / self.args.calls / 1e3, "pending": pend}
                    out[label].append(m)
                    log("round %d, %s: p50 %.3f ms, p99 %.3f ms, backend %.1f us CPU per call, %d deliveries" % (
                        r, label, m["p50"], m["p99"], m["cpu_us"], pend))
        finally:
            for conn, _, _ in set(sessions.values()):
                conn.close()
        self.results["send"] = out

    def session(self, cluster):
        """A superuser session sending in chat (its own chat, so the
        sessions of one cluster do not queue on one chat row)."""
        conn = cluster.connect(DB)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            cur.execute("SELECT chat.open_chat(%s, 'direct', NULL, 1)", (990000 + pid % 9000,))
            chat = cur.fetchone()[0]
        return conn, pid, chat

    # -- report

    def report(self, command, load_start):
        a = self.args
        lines = [
            "### chat-notify webhooks",
            "",
            "- command: `%s` (from `%s`)" % (command, ROOT),
            "- date: %s; %d cores, load average %s at the start, %s at the end" % (
                datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), os.cpu_count(), load_start, loadavg()),
            "- %s; PostgreSQL %s" % (self.about, self.version),
        ] + (["- " + self.about_baseline] if self.baseline is not None else []) + [
            "- receivers: one Python process per endpoint (ThreadingHTTPServer, 204 at once, "
            "count by webhook-id, every %dth signature verified)" % SAMPLE,
            "",
            "#### 1. Deliveries per second (deliveries preloaded over %d chats, median (range) of %d runs)" % (
                a.chats, a.runs),
            "",
            "| variant | deliveries/s, start → last | first → last | chat-notify CPU µs / delivery | "
            "database CPU µs / delivery | receivers CPU µs / delivery (share of a core) | "
            "VmRSS max / VmHWM | deliveries per claim | longest pause between arrivals, ms | deliveries, duplicates |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def mr(ms, key, digits):
            v = [m[key] for m in ms]
            return "%s (%s–%s)" % (fmt(median(v), digits), fmt(min(v), digits), fmt(max(v), digits))
        for label, ms in self.results.get("throughput", {}).items():
            lines.append("| %s | %s | %s | %s | %s | %s (%s) | %s / %s kB | %s | %s | %d, %d |" % (
                label, mr(ms, "rate_start", 0), mr(ms, "rate_steady", 0), mr(ms, "notify_us", 1),
                mr(ms, "db_us", 1), mr(ms, "recv_us", 1), fmt(100 * median([m["recv_core"] for m in ms]), 0) + " %",
                fmt(median([m["rss_kb"] for m in ms]), 0), fmt(median([m["hwm_kb"] for m in ms]), 0),
                fmt(median([m["per_claim"] for m in ms]), 1), mr(ms, "gap_ms", 0), ms[0]["n"], sum(m["dups"] for m in ms)))
        lines += ["", "#### 2. Latency, send's commit → receiver (%d/s for %d s, 1 endpoint, median (range) of %d runs)"
                  % (a.rate, a.lat_seconds, a.runs), "",
                  "| chat-notify | p50 ms | p99 ms | max ms (median) | lost | idle VmRSS |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, ms in self.results.get("latency", {}).items():
            lines.append("| %s | %s | %s | %s | %d | %s kB |" % (
                label, mr(ms, "p50", 2), mr(ms, "p99", 2), fmt(median([m["max"] for m in ms]), 2),
                sum(m["lost"] for m in ms), fmt(median([m["idle_rss_kb"] for m in ms]), 0)))
        send = self.results.get("send", {})
        base = send.get("off: no endpoint")
        if send:
            lines += ["", "#### 3. send_message, webhooks off and on (%d rounds of %d sequential calls per variant, "
                      "alternating; chat-notify not running)" % (a.rounds, a.calls), "",
                      "| variant | p50 ms, median (range) of rounds | / off (median of round ratios) | "
                      "p99 ms | backend CPU µs per call | / off |",
                      "|---|---:|---:|---:|---:|---:|"]
            for label, ms in send.items():
                rp = [m["p50"] / b["p50"] for m, b in zip(ms, base)]
                rc = [m["cpu_us"] / b["cpu_us"] for m, b in zip(ms, base)]
                lines.append("| %s | %s | %s | %s | %s | %s |" % (
                    label, mr(ms, "p50", 3), fmt(median(rp), 3), fmt(median([m["p99"] for m in ms]), 3),
                    mr(ms, "cpu_us", 1), fmt(median(rc), 3)))
        return "\n".join(lines) + "\n"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    p.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--baseline-pgbin", help="PGBIN with a build from before webhooks: a send_message baseline")
    p.add_argument("--notify", default=os.path.join(ROOT, "relay", "chat-notify"),
                   help="the chat-notify binary (the release build, not -asan)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--deliveries", type=int, default=20000)
    p.add_argument("--chats", type=int, default=1000)
    p.add_argument("--rate", type=int, default=50)
    p.add_argument("--lat-seconds", type=int, default=20)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--timeout", type=int, default=180, help="seconds a throughput run may take")
    p.add_argument("--pg-port", type=int, default=55530)
    p.add_argument("--pg-port-last", type=int, default=55539)
    p.add_argument("--port-base", type=int, default=31000, help="receivers and daemons: PORT..PORT+999")
    p.add_argument("--only", default="throughput,latency,send", help="which parts, comma-separated")
    args = p.parse_args()
    if args.receiver:
        return args
    if not os.access(os.path.join(args.pgbin, "postgres"), os.X_OK):
        p.error("no postgres in %s" % args.pgbin)
    if not os.access(args.notify, os.X_OK):
        p.error("%s is not an executable (make -C relay)" % args.notify)
    return args


def on_signal(signum, frame):
    sys.exit(128 + signum)      # SystemExit runs the finally blocks


def main():
    args = parse_args()
    if args.receiver:
        return receiver_main(args.receiver)
    command = shlex.join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
    load_start = loadavg()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    bench = Bench(args)
    parts = args.only.split(",")
    t0 = time.monotonic()
    try:
        bench.start()
        for part in ("throughput", "latency", "send"):
            if part in parts:
                getattr(bench, {"send": "send_cost"}.get(part, part))()
        text = bench.report(command, load_start)
    except Exception:
        if bench.cluster is not None and os.path.exists(bench.cluster.log):
            with open(bench.cluster.log, errors="replace") as f:
                print("--- end of the server log ---\n" + f.read()[-3000:], file=sys.stderr)
        for d in bench.daemons[-1:]:
            print("--- end of chat-notify %s's log ---\n%s" % (d.name, d.log()), file=sys.stderr)
        raise
    finally:
        bench.stop()
    log("done in %.0f s" % (time.monotonic() - t0))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", "notify_webhooks-%s.md" % time.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        f.write(text)
    print()
    print(text)
    print("(saved in %s)" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
