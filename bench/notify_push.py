#!/usr/bin/python3
"""Push of chat-notify (issue 17): Web Push, FCM and APNs to local services.

A private cluster (test/cluster.sh, PGBIN), the release relay/chat-notify,
and the local services of test/notify/push_services/ (webpush_service.py,
fcm_service.py, apns_service.py) behind a throw-away CA (testca.py), each
in its own Python process (this script with --service KIND: a small main
that starts the service class, prints its port, and answers the driver on
stdin/stdout), so none shares the driver's GIL or another's. The services
check what they get with their own code: FCM the bearer token it issued
and the message's shape, APNs (HTTP/2, python3-h2) the ES256 provider
token of every request and its headers. Web Push: every request's RFC 8030
headers; the full check (aes128gcm decryption with the subscription's
key, the VAPID JWT's ES256 signature, the payload's chat_id against the
Topic) on every SAMPLE-th request only (decrypting all in Python would
make the service the bottleneck); --webpush-verify-all checks every one.
A problem anywhere fails the run. Each service stamps arrivals
(time.time()) and reports its own CPU (time.process_time(), all threads
including ended ones): whether it was the bottleneck.

1. Throughput, per kind: chat-notify stopped, N fresh users each with one
   device of the kind and one chat with one message from user 1, sent
   with chat.push_delay 0 in one DO block (so N pushes are due); then
   chat-notify starts (credentials for that kind only) and runs until the
   service has N: pushes/s from the process start to the last arrival
   (start, connections, FCM's OAuth token included) and from the first
   arrival to the last; chat-notify's on-CPU time per push
   (/proc/PID/task/*/schedstat, encryption and signing included), VmRSS
   (highest sample, every 50 ms) and VmHWM; the database's CPU and the
   service's per push.
2. Latency: chat-notify running and idle (all three kinds), one session
   sends one message every 1/RATE s for LAT_SECONDS, each to a fresh user
   with one device (kinds in turn), chat.push_delay 0; from the client's
   clock right after the send's commit to the service's arrival stamp
   (same machine): p50, p99, max per kind. push_poll_ms (a claim every
   so often) bounds it: the default 1000 and 100.
3. Memory: BIG users with a device each (kinds in turn), then a backlog of
   BACKLOG due pushes to BACKLOG of them (mixed kinds) sent through one
   chat-notify with all three kinds: VmRSS samples, VmHWM, time; the
   daemon holds push_concurrency in flight, not the backlog.
Each measurement RUNS times (default 3), medians (ranges). Prints a
markdown report, also written to bench/results/notify_push-*.md. Every
process it starts is stopped at the end, also on error or a signal. Needs
root or the postgres OS user (test/cluster.sh, /proc of the server).

    bench/notify_push.py [--pgbin DIR] [--notify PATH] [--runs N] [--pushes N]
        [--rate R] [--lat-seconds S] [--big N] [--backlog N] [--only throughput,latency,memory]
About 3.5 minutes at the defaults on 2 cores.
"""
import argparse
import base64
import contextlib
import datetime
import http.server
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVICES = os.path.join(ROOT, "test", "notify", "push_services")
sys.path[:0] = [HERE, os.path.join(ROOT, "test"), os.path.join(ROOT, "test", "notify"), SERVICES]

KINDS = ("webpush", "fcm", "apns")
SAMPLE = 20                # the Web Push service fully checks every SAMPLE-th request
KEY_POOL = 16              # Web Push subscriptions share this many key pairs (making 100,000 is slow)
APNS_TOPIC = "com.example.chat"


# ---------------------------------------------------------------- service process

def chat_of(topic):
    """chat-<id> (the collapse key every kind carries) → id."""
    return int(topic[5:]) if topic and topic.startswith("chat-") else None


class Recorder:
    """Arrivals and problems, shared by the three wrappers."""

    def __init__(self):
        self.rlock = threading.Lock()
        self.reset()

    def reset(self):
        with self.rlock:
            self.arrivals = []          # (time.time(), chat_id)
            self.problems = []
            self.nproblems = 0
            self.checked = 0

    def arrive(self, t, chat, problems=(), checked=False):
        with self.rlock:
            self.arrivals.append((t, chat))
            self.checked += checked
            if problems:
                self.nproblems += len(problems)
                if len(self.problems) < 10:
                    self.problems.extend(problems)

    def stats(self):
        with self.rlock:
            ts = [a[0] for a in self.arrivals]
            return {"count": len(ts), "first": min(ts) if ts else None, "last": max(ts) if ts else None,
                    "nproblems": self.nproblems, "problems": self.problems[:10], "checked": self.checked,
                    "cpu_s": time.process_time()}


def service_main(args):
    import testca
    rec = Recorder()
    tls = testca.make_ca(args.ca_dir)
    if args.service == "webpush":
        import webpush_service as wp

        class BenchWebPush(wp.WebPushService):
            n = 0

            def _record(self, sub, headers, body):
                t = time.time()
                with rec.rlock:
                    BenchWebPush.n += 1
                    full = args.verify_all or BenchWebPush.n % SAMPLE == 1
                problems = wp.check_headers(headers)
                chat = chat_of(headers.get("Topic"))
                if chat is None:
                    problems.append("no Topic chat-<id>")
                if full:
                    problems += wp.check_vapid(headers.get("Authorization"), self.origin, want_key=self.want_key)
                    try:
                        payload = json.loads(wp.decrypt_aes128gcm(body, sub.key, sub.auth))
                        if payload.get("chat_id") != chat or payload.get("tag") != headers.get("Topic"):
                            problems.append("payload chat_id/tag %r/%r is not the Topic's %r" % (
                                payload.get("chat_id"), payload.get("tag"), headers.get("Topic")))
                    except ValueError as e:
                        problems.append("payload: %s" % e)
                rec.arrive(t, chat, problems, full)

        class OnPort(wp._Server):
            """The service's server on the driver's port, not any."""

            def __init__(self, service, ctx):
                self.service, self.ctx = service, ctx
                http.server.ThreadingHTTPServer.__init__(self, ("127.0.0.1", args.port), wp._Handler)
            request_queue_size = 256
        wp._Server = OnPort
        svc = BenchWebPush(tls, want_key=args.vapid_public).start()
        keys = []
        for _ in range(KEY_POOL):
            s = wp.Subscription(svc.origin)
            keys.append((s.key, s.auth, wp.b64url_encode(wp.public_bytes(s.key)), wp.b64url_encode(s.auth)))

        def subs(prefix, n):
            """n subscriptions /push/<prefix><i> (i from 0), key pair i % KEY_POOL."""
            with svc._lock:
                for i in range(n):
                    s = object.__new__(wp.Subscription)
                    s.id = "%s%d" % (prefix, i)
                    s.key, s.auth = keys[i % KEY_POOL][:2]
                    s.endpoint = "%s/push/%s" % (svc.origin, s.id)
                    s.answer, s.retry_after, s.messages = "201", None, []
                    svc._subs[s.id] = s
            return {"pool": [k[2:] for k in keys]}
        origin = svc.origin
    elif args.service == "fcm":
        import fcm_service

        class BenchFcm(fcm_service.FcmService):
            def _send(self, h, path, body):
                t = time.time()
                refused = len(self.refused)
                super()._send(h, path, body)
                with self.lock:
                    self.messages.clear()       # not kept: counted below
                    problems = self.refused[refused:]
                chat = None
                with contextlib.suppress(Exception):
                    chat = chat_of(json.loads(body)["message"]["android"]["collapse_key"])
                rec.arrive(t, chat, ["refused: %s" % p for p in problems] or
                           ([] if chat is not None else ["no collapse_key chat-<id>"]), True)

        # (fcm_service.py listens with a backlog of 256 and without Nagle:
        # both cost 120 pushes/s before, SYN retransmits and delayed ACKs)
        svc = BenchFcm(tls, args.service_account, port=args.port)
        svc.__enter__()
        subs = None
        origin = svc.origin
    else:
        import apns_service

        class BenchApns(apns_service.ApnsService):
            def _request(self, conn, stream, h, body):
                t = time.time()
                refused = len(self.refused)
                super()._request(conn, stream, h, body)
                with self.lock:
                    self.notifications.clear()
                    problems = self.refused[refused:]
                chat = chat_of(h.get("apns-collapse-id"))
                rec.arrive(t, chat, ["refused: %r" % (p,) for p in problems] or
                           ([] if chat is not None else ["no apns-collapse-id chat-<id>"]), True)

        svc = BenchApns(tls, args.apns_key, args.apns_key_id, args.apns_team, topic=APNS_TOPIC, port=args.port)
        svc.__enter__()
        subs = None
        origin = svc.origin
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    print(json.dumps({"origin": origin, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "stats":
            out = rec.stats()
        elif cmd["cmd"] == "reset":
            rec.reset()
            out = {}
        elif cmd["cmd"] == "subs":
            out = subs(cmd["prefix"], cmd["n"])
        elif cmd["cmd"] == "arrivals":
            with rec.rlock:
                arr = list(rec.arrivals)
            with open(cmd["file"], "w") as f:
                json.dump(arr, f)
            out = {"n": len(arr)}
        else:
            out = {"error": "unknown command"}
        print(json.dumps(out), flush=True)
    os._exit(0)


# ---------------------------------------------------------------- driver helpers

from presence_reconnect import cluster_cpu_ns, threads_cpu_ns, loadavg, md5_of  # noqa: E402
from notify_webhooks import DB, BenchCluster, Notify, Ports, free_port, log, percentile  # noqa: E402
from report import fmt, median  # noqa: E402
import harness  # noqa: E402


class Service:
    """A local push service in its own process."""

    def __init__(self, kind, world, port):
        self.kind = kind
        argv = [sys.executable, os.path.abspath(__file__), "--service", kind, "--ca-dir", world.ca_dir,
                "--port", str(port)]
        if kind == "webpush":
            argv += ["--vapid-public", world.vapid_public] + (["--webpush-verify-all"] if world.verify_all else [])
        elif kind == "fcm":
            argv += ["--service-account", world.service_account]
        else:
            argv += ["--apns-key", world.apns_key, "--apns-key-id", world.apns_key_id, "--apns-team", world.apns_team]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the %s service did not start" % kind)
        self.origin = json.loads(line)["origin"]
        self.lock = threading.Lock()

    def ask(self, **cmd):
        with self.lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the %s service is gone" % self.kind)
        return json.loads(line)

    def stats(self):
        return self.ask(cmd="stats")

    def reset(self):
        self.ask(cmd="reset")

    def arrivals(self, tmp):
        path = os.path.join(tmp, "arrivals-%s.json" % self.kind)
        self.ask(cmd="arrivals", file=path)
        with open(path) as f:
            return json.load(f)

    def stop(self):
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class World:
    """The CA and the credentials (made by the services' own helpers)."""

    def __init__(self, tmp, verify_all):
        import testca
        import fcm_service
        import apns_service
        self.verify_all = verify_all
        self.ca_dir = os.path.join(tmp, "ca")
        self.ca = testca.make_ca(self.ca_dir)["ca"]
        self.vapid_key = os.path.join(tmp, "vapid.pem")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.vapid_key],
                       check=True, capture_output=True)
        os.chmod(self.vapid_key, 0o600)
        der = subprocess.run(["openssl", "ec", "-in", self.vapid_key, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.vapid_public = base64.urlsafe_b64encode(der[-65:]).decode().rstrip("=")
        self.fcm_port = None
        self.tmp = tmp
        self.apns_key, self.apns_key_id, self.apns_team = apns_service.make_apns_key(tmp)
        self.fcm_service = fcm_service

    def make_service_account(self, fcm_origin):
        self.service_account = self.fcm_service.make_service_account(self.tmp, fcm_origin + "/token")
        return self.service_account

    def settings(self, services, kinds):
        s = {"push_ca_file": self.ca}
        if "webpush" in kinds:
            s.update(vapid_key_file=self.vapid_key, vapid_subject="mailto:bench@example.com")
        if "fcm" in kinds:
            s.update(fcm_service_account_file=self.service_account, fcm_url=services["fcm"].origin)
        if "apns" in kinds:
            s.update(apns_key_file=self.apns_key, apns_key_id=self.apns_key_id, apns_team_id=self.apns_team,
                     apns_topic=APNS_TOPIC, apns_url=services["apns"].origin,
                     apns_sandbox_url=services["apns"].origin)
        return s


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.cluster = None
        self.conn = None
        self.services = {}
        self.daemons = []
        self.ports = Ports(args.port_base, args.port_base + 899)
        self.results = {}
        self.next_user = 2_000_000
        self.batch = 0

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
        self.tmp = os.path.join(self.cluster.base, "notify")
        os.makedirs(self.tmp, exist_ok=True)
        self.world = World(self.tmp, self.args.webpush_verify_all)
        fcm_port = self.ports.take()
        self.world.make_service_account("https://127.0.0.1:%d" % fcm_port)
        self.services["fcm"] = Service("fcm", self.world, fcm_port)
        for kind in ("webpush", "apns"):
            self.services[kind] = Service(kind, self.world, self.ports.take())
        log("cluster on %d, services %s" % (port, ", ".join("%s %s" % (k, s.origin) for k, s in self.services.items())))

    def stop(self):
        for d in self.daemons:
            with contextlib.suppress(Exception):
                d.stop()
        for s in self.services.values():
            with contextlib.suppress(Exception):
                s.stop()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.remove(keep_env="BENCH_KEEP")

    def daemon(self, name, kinds, **opts):
        settings = self.world.settings(self.services, kinds)
        settings.update(opts)
        d = Notify(self.args.notify, self.tmp, self.ports.take(), self.cluster.port, name, **settings)
        self.daemons.append(d)
        return d

    # -- users and devices

    def users(self, n, kinds):
        """n fresh users, user i with one device of kinds[i % len(kinds)]:
        [(user, kind)]."""
        first = self.next_user
        self.next_user += n
        self.batch += 1
        out = [(first + i, kinds[i % len(kinds)]) for i in range(n)]
        for kind in set(kinds):
            mine = [u for u, k in out if k == kind]
            if not mine:
                continue
            if kind == "webpush":
                prefix = "b%d-" % self.batch
                pool = self.services["webpush"].ask(cmd="subs", prefix=prefix, n=len(mine))["pool"]
                self.sql("""SELECT count(chat.register_device(u, 'webpush', jsonb_build_object(
                                'endpoint', %s || (ord - 1),
                                'keys', jsonb_build_object('p256dh', (%s::jsonb)->(((ord - 1) %% %s)::int)->>0,
                                                           'auth', (%s::jsonb)->(((ord - 1) %% %s)::int)->>1))))
                            FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(u, ord)""",
                         (self.services["webpush"].origin + "/push/" + prefix, json.dumps(pool), KEY_POOL,
                          json.dumps(pool), KEY_POOL, mine))
            elif kind == "fcm":
                self.sql("""SELECT count(chat.register_device(u, 'fcm',
                                jsonb_build_object('token', 'bench-fcm-' || u || '-' || md5(u::text))))
                            FROM unnest(%s::bigint[]) AS u""", (mine,))
            else:
                self.sql("""SELECT count(chat.register_device(u, 'apns', jsonb_build_object(
                                'token', md5(u::text) || md5('apns' || u), 'environment', 'production')))
                            FROM unnest(%s::bigint[]) AS u""", (mine,))
        return out

    def chats(self, users):
        """A chat with user 1 for each: {user: chat}."""
        rows = self.sql("SELECT u, chat.open_chat(u, 'direct', NULL, 1) FROM unnest(%s::bigint[]) AS u",
                        ([u for u, _ in users],))
        return dict(rows)

    def preload(self, chats):
        """One message from user 1 in each chat, due at once (one DO block)."""
        self.sql("SET chat.event_mode = direct")
        self.sql("SET chat.push_delay = 0")
        self.sql("DO $$ DECLARE c bigint; BEGIN FOREACH c IN ARRAY '{%s}'::bigint[] LOOP "
                 "PERFORM chat.send_message(1, c, 'Is it still for sale? Can I come by tomorrow?'); "
                 "END LOOP; END $$" % ",".join(map(str, chats)))
        self.sql("RESET chat.push_delay")
        self.sql("RESET chat.event_mode")
        # the whole database: the users, chats and devices of earlier runs
        # are not left to an autovacuum counted in a run's database CPU
        self.sql("VACUUM ANALYZE")
        due = self.sql("SELECT count(*) FROM chat.push_state WHERE due_at IS NOT NULL")[0][0]
        if due < len(chats):
            raise RuntimeError("%d pushes due, not %d" % (due, len(chats)))
        self.sql("CHECKPOINT")

    def check(self, svc):
        st = svc.stats()
        if st["nproblems"]:
            raise RuntimeError("the %s service found %d problems: %s" % (svc.kind, st["nproblems"], st["problems"]))
        return st

    # -- a backlog sent through (1 and 3)

    def drain(self, label, kinds, users, opts=None):
        """Preload a push to each of users, start chat-notify for kinds,
        wait for every arrival; the measurements."""
        t0 = time.monotonic()
        chats = self.chats(users)
        self.preload(list(chats.values()))
        want = {k: sum(1 for _, kk in users if kk == k) for k in kinds}
        log("%s: %d pushes preloaded in %.1f s" % (label, len(users), time.monotonic() - t0))
        svcs = [self.services[k] for k in kinds]
        for s in svcs:
            s.reset()
        pm = self.cluster.postmaster()
        db0 = cluster_cpu_ns(pm)
        sc0 = sum(s.stats()["cpu_s"] for s in svcs)
        d = self.daemon("%s-%d" % (label.split()[0], len(self.daemons)), kinds, **(opts or {}))
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
                stats = {s.kind: s.stats() for s in svcs}
                if all(stats[k]["count"] >= want[k] for k in kinds):
                    break
                if d.proc.poll() is not None:
                    raise RuntimeError("chat-notify exited %s:\n%s" % (d.proc.returncode, d.log()))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s: %s of %s after %d s" % (
                        label, {k: stats[k]["count"] for k in kinds}, want, self.args.timeout))
                time.sleep(0.05)
            harness.wait_until(lambda: self.sql("SELECT count(*) FROM chat.push_sends")[0][0] == 0,
                               30, what="every result reported", interval=0.05)
            cpu = d.cpu_ns()
            st = d.status()
            db1 = cluster_cpu_ns(pm)
            time.sleep(0.2)
            stats = {s.kind: self.check(s) for s in svcs}
        finally:
            done.set()
            sampler.join()
            d.stop()
        n = len(users)
        got = sum(stats[k]["count"] for k in kinds)
        first = min(stats[k]["first"] for k in kinds)
        last = max(stats[k]["last"] for k in kinds)
        sc1 = sum(stats[k]["cpu_s"] for k in kinds)
        m = {"n": n, "dups": got - n, "rate_start": n / (last - d.t_start), "rate_steady": (n - 1) / (last - first),
             "secs": last - d.t_start, "notify_us": cpu / n / 1e3, "db_us": (db1 - db0) / n / 1e3,
             "svc_us": (sc1 - sc0) * 1e6 / n, "svc_core": (sc1 - sc0) / (last - d.t_start),
             "rss_kb": max(rss_max[0], st["VmRSS"]), "hwm_kb": st["VmHWM"],
             "checked": sum(stats[k]["checked"] for k in kinds)}
        log("%s: %d pushes, %.0f/s from start (%.0f/s first → last), chat-notify %.0f us CPU per push, DB %.0f us, "
            "service %.0f us (%.0f%% of a core), VmRSS max %d kB, VmHWM %d kB, duplicates %d, %d fully checked" % (
                label, n, m["rate_start"], m["rate_steady"], m["notify_us"], m["db_us"], m["svc_us"],
                100 * m["svc_core"], m["rss_kb"], m["hwm_kb"], m["dups"], m["checked"]))
        return m

    def throughput(self):
        kinds = tuple(k for k in KINDS if k in self.args.kinds.split(","))
        out = {k: [] for k in kinds}
        for run in range(self.args.runs):
            for kind in (kinds if run % 2 == 0 else kinds[::-1]):
                users = self.users(self.args.pushes, (kind,))
                out[kind].append(self.drain("%s throughput" % kind, (kind,), users))
        self.results["throughput"] = out

    # -- 2. latency

    def latency_run(self, label, opts, delay):
        n = int(self.args.lat_seconds * self.args.rate)
        users = self.users(n, KINDS)
        chats = self.chats(users)
        d = self.daemon("lat-%d" % len(self.daemons), KINDS, **opts)
        try:
            d.wait_healthy()
            time.sleep(1.5)
            idle_rss = d.status()["VmRSS"]
            for s in self.services.values():
                s.reset()
            conn = self.cluster.connect(DB)
            cur = conn.cursor()
            cur.execute("SET chat.push_delay = %s", (delay,))
            sent = {}
            interval = 1.0 / self.args.rate
            t_next = time.monotonic()
            for u, kind in users:
                pause = t_next - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                t_next += interval
                cur.execute("SELECT chat.send_message(1, %s, 'Is it still for sale?')", (chats[u],))
                sent[chats[u]] = (kind, time.time())    # the commit has returned (autocommit)
            conn.close()
            want = {k: sum(1 for _, kk in users if kk == k) for k in KINDS}
            harness.wait_until(lambda: all(self.services[k].stats()["count"] >= want[k] for k in KINDS),
                               30 + delay, what="latency pushes", interval=0.05)
            for s in self.services.values():
                self.check(s)
        finally:
            d.stop()
        out = {}
        for kind in KINDS:
            got = {}
            for t, chat in self.services[kind].arrivals(self.tmp):
                got.setdefault(chat, t)
            lat = [(got[c] - t - delay) * 1e3 for c, (k, t) in sent.items() if k == kind and c in got]
            nk = sum(1 for k, _ in sent.values() if k == kind)
            out[kind] = {"n": nk, "lost": nk - len(lat), "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                         "max": max(lat), "mean": sum(lat) / len(lat),
                         "over100": 100.0 * sum(1 for x in lat if x > 100) / len(lat), "idle_rss_kb": idle_rss}
            log("%s, %s: %d sends, p50 %.1f ms, p99 %.1f ms, max %.1f ms, lost %d" % (
                label, kind, nk, out[kind]["p50"], out[kind]["p99"], out[kind]["max"], out[kind]["lost"]))
        return out

    def latency(self):
        variants = [("push_delay 0, push_poll_ms 1000 (default)", {}, 0),
                    ("push_delay 0, push_poll_ms 100", {"push_poll_ms": 100}, 0),
                    ("push_delay 1 s, push_poll_ms 1000 (default)", {}, 1),
                    ("push_delay 1 s, push_poll_ms 100", {"push_poll_ms": 100}, 1)]
        out = {label: [] for label, _, _ in variants}
        for run in range(self.args.runs):
            for label, opts, delay in (variants if run % 2 == 0 else variants[::-1]):
                out[label].append(self.latency_run(label, opts, delay))
        self.results["latency"] = out

    # -- 3. memory with many devices

    def memory(self):
        t0 = time.monotonic()
        big = self.users(self.args.big, KINDS)
        devices = self.sql("SELECT count(*) FROM chat.devices")[0][0]
        log("memory: %d users with a device each registered in %.1f s (%d devices in all)" % (
            len(big), time.monotonic() - t0, devices))
        out = []
        per_run = self.args.backlog
        for run in range(self.args.runs):
            users = big[run * per_run:(run + 1) * per_run]
            if len(users) < per_run:
                break
            m = self.drain("memory run %d" % (run + 1), KINDS, users)
            m["devices"] = devices
            out.append(m)
        self.results["memory"] = out

    # -- report

    def report(self, command, load_start):
        a = self.args

        def mr(ms, key, digits):
            v = [m[key] for m in ms]
            return "%s (%s–%s)" % (fmt(median(v), digits), fmt(min(v), digits), fmt(max(v), digits))
        lines = [
            "### chat-notify push",
            "",
            "- command: `%s` (from `%s`)" % (command, ROOT),
            "- date: %s; %d cores, load average %s at the start, %s at the end" % (
                datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), os.cpu_count(), load_start, loadavg()),
            "- %s; PostgreSQL %s" % (self.about, self.version),
            "- services: test/notify/push_services/ (webpush_service.py, fcm_service.py, apns_service.py), each in "
            "its own Python process, TLS with a throw-away CA; FCM checks every bearer token and message, APNs "
            "(HTTP/2) every provider token (ES256) and its headers; Web Push every request's headers, and %s" % (
                "decrypts every body and checks every VAPID JWT" if a.webpush_verify_all else
                "decrypts the body and checks the VAPID JWT of every %dth request only" % SAMPLE),
            "- chat-notify at its defaults (push_concurrency 64, push_poll_ms 1000) unless said",
        ]
        tp = self.results.get("throughput")
        if tp:
            lines += ["", "#### 1. Pushes per second (%d pushes preloaded per run, one device each, "
                      "chat.push_delay 0; median (range) of %d runs)" % (a.pushes, a.runs), "",
                      "| kind | pushes/s, start → last | first → last | chat-notify CPU µs / push | "
                      "database CPU µs / push | service CPU µs / push (share of a core) | VmRSS max / VmHWM | "
                      "fully checked, duplicates |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for kind, ms in tp.items():
                lines.append("| %s | %s | %s | %s | %s | %s (%s) | %s / %s kB | %d, %d |" % (
                    kind, mr(ms, "rate_start", 0), mr(ms, "rate_steady", 0), mr(ms, "notify_us", 1),
                    mr(ms, "db_us", 1), mr(ms, "svc_us", 1), fmt(100 * median([m["svc_core"] for m in ms]), 0) + " %",
                    fmt(median([m["rss_kb"] for m in ms]), 0), fmt(median([m["hwm_kb"] for m in ms]), 0),
                    sum(m["checked"] for m in ms), sum(m["dups"] for m in ms)))
        lat = self.results.get("latency")
        if lat:
            lines += ["", "#### 2. Latency, due → service (%d/s for %d s, kinds in turn, each to a fresh "
                      "user; due = the send's commit on the client + chat.push_delay; median (range) of %d runs)" % (
                          a.rate, a.lat_seconds, a.runs), "",
                      "| variant | kind | p50 ms | mean ms | p99 ms | max ms (median) | > 100 ms | sends per run, lost | idle VmRSS |",
                      "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
            for label, runs in lat.items():
                for kind in KINDS:
                    ms = [r[kind] for r in runs]
                    lines.append("| %s | %s | %s | %s | %s | %s | %s %% | %d, %d | %s kB |" % (
                        label, kind, mr(ms, "p50", 1), mr(ms, "mean", 0), mr(ms, "p99", 1),
                        fmt(median([m["max"] for m in ms]), 1), fmt(median([m["over100"] for m in ms]), 0),
                        ms[0]["n"], sum(m["lost"] for m in ms), fmt(median([m["idle_rss_kb"] for m in ms]), 0)))
        mem = self.results.get("memory")
        if mem:
            lines += ["", "#### 3. Memory: %d users with a device each (kinds in turn), a backlog of %d due pushes "
                      "(mixed kinds) sent through; %d runs" % (a.big, a.backlog, len(mem)), "",
                      "| devices registered (all parts) | backlog | VmRSS max | VmHWM | pushes/s, start → last | "
                      "chat-notify CPU µs / push | duplicates |",
                      "|---:|---:|---:|---:|---:|---:|---:|"]
            lines.append("| %d | %d | %s kB | %s kB | %s | %s | %d |" % (
                mem[0]["devices"], a.backlog, mr(mem, "rss_kb", 0), mr(mem, "hwm_kb", 0),
                mr(mem, "rate_start", 0), mr(mem, "notify_us", 1), sum(m["dups"] for m in mem)))
        return "\n".join(lines) + "\n"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--service", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--ca-dir", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--vapid-public", help=argparse.SUPPRESS)
    p.add_argument("--verify-all", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--service-account", help=argparse.SUPPRESS)
    p.add_argument("--apns-key", help=argparse.SUPPRESS)
    p.add_argument("--apns-key-id", help=argparse.SUPPRESS)
    p.add_argument("--apns-team", help=argparse.SUPPRESS)
    p.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--notify", default=os.path.join(ROOT, "relay", "chat-notify"),
                   help="the chat-notify binary (the release build, not -asan)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--pushes", type=int, default=6000, help="pushes per throughput run")
    p.add_argument("--rate", type=int, default=20)
    p.add_argument("--lat-seconds", type=int, default=8)
    p.add_argument("--big", type=int, default=100000, help="users with a device for the memory part")
    p.add_argument("--backlog", type=int, default=10000, help="due pushes per memory run")
    p.add_argument("--webpush-verify-all", action="store_true",
                   help="the Web Push service decrypts and checks every request (else every %dth)" % SAMPLE)
    p.add_argument("--timeout", type=int, default=180, help="seconds a backlog may take")
    p.add_argument("--pg-port", type=int, default=28900)
    p.add_argument("--pg-port-last", type=int, default=28909)
    p.add_argument("--port-base", type=int, default=28000, help="services and daemons: PORT..PORT+899")
    p.add_argument("--kinds", default=",".join(KINDS), help="the throughput part's kinds, comma-separated")
    p.add_argument("--only", default="throughput,latency,memory", help="which parts, comma-separated")
    args = p.parse_args()
    if args.service:
        args.verify_all = args.verify_all or args.webpush_verify_all
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
    if args.service:
        return service_main(args)
    command = shlex.join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
    load_start = loadavg()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    bench = Bench(args)
    parts = args.only.split(",")
    t0 = time.monotonic()
    try:
        bench.start()
        for part in ("throughput", "latency", "memory"):
            if part in parts:
                getattr(bench, part)()
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
    out = os.path.join(HERE, "results", "notify_push-%s.md" % time.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        f.write(text)
    print()
    print(text)
    print("(saved in %s)" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
