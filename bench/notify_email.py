#!/usr/bin/python3
"""Email digests of chat-notify (issue 16): digests per second sustained to
a local SMTP server, and due → received latency.

A private cluster (test/cluster.sh), the release relay/chat-notify, and
test/notify/smtp_sink.py (aiosmtpd: a real SMTP server that writes each
message to a file) on 127.0.0.1.

1. Throughput: USERS buyers, each with email "immediately", an address and
   one unread message from the seller (so one digest each, due at once),
   loaded with nobody running; then chat-notify starts and the time until
   the last digest is in the sink's folder is taken. Per email_concurrency
   setting, RUNS runs (fresh users each), medians. chat-notify's on-CPU
   time (/proc/PID/schedstat of its threads) and VmHWM.
2. Latency: chat-notify running (poll_interval 1 s: the email channel
   claims on its poll, not on events), one new buyer messaged every
   1/RATE s for SECONDS s; from the send's commit to the file's arrival
   (inotify-free: the folder is polled every 5 ms), p50 / p99.

    bench/notify_email.py [--pgbin DIR] [--notify PATH] [--users N]
        [--runs R] [--rate R] [--seconds S] [--pg-port P] [--port-base P]
"""
import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "test")]
from notify_webhooks import DB, BenchCluster, Notify, Ports, free_port, log, percentile  # noqa: E402
from presence_reconnect import loadavg, threads_cpu_ns  # noqa: E402
from report import median  # noqa: E402
import harness  # noqa: E402

SINK = os.path.join(ROOT, "test", "notify", "smtp_sink.py")


class Sink:
    """smtp_sink.py writing into a fresh folder."""

    def __init__(self, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="chat-bench-mail.")
        self.proc = subprocess.Popen(["/usr/bin/python3", SINK, "--listen", "127.0.0.1:%d" % port,
                                      "--dir", self.dir], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("smtp_sink did not start")

    def count(self):
        return sum(1 for n in os.listdir(self.dir) if n.endswith(".eml"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Bench:
    def __init__(self, args):
        self.args, self.next_user = args, 7_000_000
        self.ports = Ports(args.port_base, args.port_base + 999)
        self.cluster = self.conn = self.sink = None
        self.daemons = []

    def sql(self, query, params=None):
        return harness.query(self.conn, query, params)

    def start(self):
        port = free_port(self.args.pg_port, self.args.pg_port + 9)
        self.cluster = BenchCluster(port, self.args.pgbin)
        self.cluster.start()
        self.cluster.run("createdb", port, DB)
        self.conn = self.cluster.connect(DB, options="-c statement_timeout=600s")
        self.sql("ALTER ROLE chat_notify LOGIN")
        self.tmp = os.path.join(self.cluster.base, "notify")
        os.makedirs(self.tmp, exist_ok=True)

    def stop(self):
        for d in self.daemons:
            with contextlib.suppress(Exception):
                d.stop()
        for thing in (self.sink,):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.stop()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.remove(keep_env="BENCH_KEEP")

    def buyers(self, n):
        """n new buyers, each with one digest due now (seller 1 wrote to them)."""
        first = self.next_user
        self.next_user += n
        self.sql("DO $$ DECLARE c bigint; BEGIN FOR u IN %d .. %d LOOP "
                 "PERFORM chat.set_notify_prefs(u, jsonb_build_object('email', 'immediately', "
                 "'email_address', 'u' || u || '@bench.test', 'language', 'en')); "
                 "c := chat.open_chat(u, 'direct', NULL, 1); "
                 "PERFORM chat.send_message(1, c, 'is it still for sale?'); END LOOP; END $$"
                 % (first, first + n - 1))

    def daemon(self, **opts):
        settings = {"smtp_url": "smtp://127.0.0.1:%d" % self.sink.port, "smtp_from": "chat@bench.test",
                    "poll_interval": 1}
        settings.update(opts)
        d = Notify(self.args.notify, self.tmp, self.ports.take(), self.cluster.port,
                   "email-%d" % len(self.daemons), **settings)
        self.daemons.append(d)
        d.wait_healthy()
        return d

    def throughput(self, concurrency):
        self.sink = Sink(self.ports.take())
        self.buyers(self.args.users)
        t0 = time.monotonic()
        d = self.daemon(email_concurrency=concurrency)
        cpu0 = threads_cpu_ns(d.proc.pid)
        harness.wait_until(lambda: self.sink.count() >= self.args.users, 300, "every digest")
        took = time.monotonic() - t0
        cpu = threads_cpu_ns(d.proc.pid) - cpu0
        hwm = d.status()["VmHWM"]
        d.stop()
        self.daemons.remove(d)
        self.sink.stop()
        self.sink = None
        return {"per_s": self.args.users / took, "cpu_us": cpu / 1e3 / self.args.users, "hwm_kb": hwm}

    def latency(self):
        self.sink = Sink(self.ports.take())
        d = self.daemon(email_concurrency=4)
        waits = []
        for _ in range(int(self.args.rate * self.args.seconds)):
            before = self.sink.count()
            t0 = time.monotonic()
            self.buyers(1)
            harness.wait_until(lambda: self.sink.count() > before, 30, "the digest", interval=0.005)
            waits.append((time.monotonic() - t0) * 1000)
            time.sleep(max(0, 1 / self.args.rate - (time.monotonic() - t0)))
        d.stop()
        self.daemons.remove(d)
        return waits


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--notify", default=os.path.join(ROOT, "relay", "chat-notify"))
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--pg-port", type=int, default=55540)
    p.add_argument("--port-base", type=int, default=32000)
    args = p.parse_args()
    b = Bench(args)
    load0 = loadavg()
    try:
        b.start()
        rows = []
        for conc in (4, 16):
            runs = [b.throughput(conc) for _ in range(args.runs)]
            for r in runs:
                log("email_concurrency %d: %.0f digests/s, %.0f µs CPU each" % (conc, r["per_s"], r["cpu_us"]))
            rows.append((conc, runs))
        waits = b.latency()
    finally:
        b.stop()
    print("### Email digests, chat-notify → smtp_sink.py\n")
    print("- command: `%s`" % " ".join(sys.argv))
    print("- date: %s UTC; load average %s at the start, %s at the end" % (
        time.strftime("%Y-%m-%d %H:%M", time.gmtime()), load0, loadavg()))
    print("- %d digests per run (one user, one chat, one unread message each), %d runs, medians (range)\n" % (
        args.users, args.runs))
    print("| email_concurrency | digests/s | chat-notify CPU µs / digest | VmHWM kB |")
    print("|---:|---:|---:|---:|")
    for conc, runs in rows:
        per = [r["per_s"] for r in runs]
        cpu = [r["cpu_us"] for r in runs]
        print("| %d | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %d |" % (
            conc, median(per), min(per), max(per), median(cpu), min(cpu), max(cpu),
            max(r["hwm_kb"] for r in runs)))
    print("\nLatency, send's commit → the digest in the sink's folder (poll_interval 1 s, %d digests): "
          "p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (
              len(waits), percentile(waits, 50), percentile(waits, 99), max(waits)))


if __name__ == "__main__":
    main()
