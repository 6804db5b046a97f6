"""Fixtures of the load-balancer tests: real chat-relays as test/relay starts
them (its conftest's Relay and relays fixture, loaded from there), and real
haproxy and nginx processes running the shipped deploy/haproxy.cfg and
deploy/nginx.conf, of which only the site-specific lines are replaced:
listen address, relay addresses, file paths, privileges and resource
limits. Every replacement must match, so a change to a shipped config that
the test no longer covers fails here instead of testing something else.

Ports: HA_TEST_PORT_BASE (else PGPORT + 70: run-tests.sh's TEST_PORT + 70)."""
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_DIR = os.path.dirname(HERE)
sys.path.insert(0, TEST_DIR)
from harness import ROOT, wait_until  # noqa: E402

# the relays' ports (and everything else free_port gives) come from here on
os.environ["RELAY_TEST_PORT_BASE"] = os.environ.get("HA_TEST_PORT_BASE") or str(int(os.environ.get("PGPORT", "54329")) + 70)
_spec = importlib.util.spec_from_file_location("relay_conftest", os.path.join(TEST_DIR, "relay", "conftest.py"))
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)

# the relay suite's fixtures, here too
relays = rc.relays
relay_role = rc.relay_role

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NODE = shutil.which("node")
DEPLOY = os.path.join(ROOT, "deploy")

# What the relays behind a balancer need besides the test defaults: the
# sender sends ~200 messages/s through one connection, and every upgrade
# comes from the balancer's address (docs/security.md, "Behind a proxy").
RELAY_OPTS = dict(rate=2000, burst=2000, max_handshakes_per_address=1000)


def substitute(text, rules, what):
    """Apply (pattern, replacement) regex rules (MULTILINE), each of which must match."""
    for pattern, repl in rules:
        text, n = re.subn(pattern, repl, text, flags=re.M)
        assert n > 0, "%s: /%s/ no longer matches: update test/ha/conftest.py" % (what, pattern)
    return text


def wait_port(port, proc, log, timeout=10):
    def up():
        if proc.poll() is not None:
            raise AssertionError("exited %s:\n%s" % (proc.returncode, read(log)))
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_until(up, timeout, "port %d listening" % port)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Balancer:
    """A running haproxy or nginx in front of relays (name -> Relay)."""

    def __init__(self, kind, tmp, backends):
        self.kind, self.tmp, self.backends = kind, tmp, backends
        self.port = rc.free_port()
        self.log = os.path.join(tmp, "%s.log" % kind)
        self.config = os.path.join(tmp, "%s.conf" % kind)
        with open(self.config, "w") as f:
            f.write(self.haproxy_config() if kind == "haproxy" else self.nginx_config())
        self.log_handle = open(self.log, "ab")
        if kind == "haproxy":
            subprocess.run([HAPROXY, "-c", "-q", "-f", self.config], check=True)
            cmd = [HAPROXY, "-db", "-f", self.config]
        else:
            cmd = [NGINX, "-e", os.path.join(tmp, "nginx-error.log"), "-p", tmp, "-c", self.config, "-g", "daemon off;"]
            subprocess.run(cmd[:-2] + ["-t", "-q"], check=True)
        self.proc = subprocess.Popen(cmd, stdout=self.log_handle, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc, self.log)
            if kind == "haproxy":
                wait_until(self.all_up, 15, "haproxy: every relay UP")
        except BaseException:
            self.stop()      # not yet the fixture's to stop
            raise

    @property
    def url(self):
        return "ws://127.0.0.1:%d/ws" % self.port

    def haproxy_config(self):
        with open(os.path.join(DEPLOY, "haproxy.cfg")) as f:
            text = f.read()
        self.stats = os.path.join(self.tmp, "haproxy.sock")
        servers = "".join("\tserver %s 127.0.0.1:%d\n" % (name, r.port) for name, r in self.backends.items())
        return substitute(text, [
            (r"^\tlog /dev/log local0$", "\tlog stderr format raw local0"),
            (r"^\tchroot .*\n", ""),
            (r"^\t(user|group) haproxy\n", ""),
            (r"^\tdaemon\n", ""),
            (r"^\tmaxconn 200000$", "\tmaxconn 2000"),
            (r"^\tstats socket /run/haproxy/admin.sock ", "\tstats socket %s " % self.stats),
            (r"^\tbind :8080$", "\tbind 127.0.0.1:%d" % self.port),
            (r"^\tserver relay\d+ \S+\n", ""),
            (r"^(\tdefault-server .*)maxconn 100000\n", r"\g<1>maxconn 1000\n" + servers.replace("\\", "\\\\")),
        ], "deploy/haproxy.cfg")

    def nginx_config(self):
        with open(os.path.join(DEPLOY, "nginx.conf")) as f:
            text = f.read()
        servers = "".join("\t\tserver 127.0.0.1:%d max_fails=2 fail_timeout=4s;\n" % r.port for r in self.backends.values())
        return substitute(text, [
            (r"^user www-data;\n", ""),
            (r"^worker_processes auto;$", "worker_processes 1;"),
            (r"^pid /run/nginx.pid;$", "pid %s/nginx.pid;" % self.tmp),
            (r"^error_log /var/log/nginx/error.log;$", "error_log %s/nginx-error.log info;" % self.tmp),
            (r"^worker_rlimit_nofile 200000;$", "worker_rlimit_nofile 4096;"),
            (r"^\tworker_connections 100000;$", "\tworker_connections 2000;"),
            (r"^\taccess_log /var/log/nginx/access.log chat;$",
             "\taccess_log %s/nginx-access.log chat;\n\tclient_body_temp_path %s/body;\n\tproxy_temp_path %s/proxy;"
             % (self.tmp, self.tmp, self.tmp)),
            (r"^\t\tserver 10\.0\.0\.11:8090 .*\n", servers),
            (r"^\t\tserver 10\.0\.0\.1\d:8090 .*\n", ""),
            (r"^\t\tlisten 8080;$", "\t\tlisten 127.0.0.1:%d;" % self.port),
        ], "deploy/nginx.conf")

    def admin(self, command):
        """A command on haproxy's runtime API (the stats socket); its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.stats)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode()

    def server_states(self):
        """haproxy: {server name: status} of backend chat_relays (show stat)."""
        lines = self.admin("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "chat_relays" and row.get("svname") not in ("BACKEND", None):
                out[row["svname"]] = row["status"]
        return out

    def all_up(self):
        try:
            states = self.server_states()
        except OSError:      # the stats socket may come a moment after the port
            return False
        return len(states) == len(self.backends) and all(s == "UP" for s in states.values())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_handle.close()

    def logs(self):
        return read(self.log) + read(os.path.join(self.tmp, "nginx-error.log"))

    def access_log(self):
        """haproxy's log lines (stderr), nginx's access log."""
        return read(self.log) if self.kind == "haproxy" else read(os.path.join(self.tmp, "nginx-access.log"))


@pytest.fixture
def balancer(tmp_path):
    """Factory: balancer(kind, {name: relay}) -> a running Balancer; stopped afterwards."""
    made = []

    def make(kind, backends):
        b = Balancer(kind, str(tmp_path), backends)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


def now_ms():
    return time.time() * 1000.0
