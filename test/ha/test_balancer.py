"""Relays behind a load balancer (deploy/haproxy.cfg, deploy/nginx.conf):
clients spread over the relays, a relay drained for a restart (SIGTERM:
1012), its clients back on the other relay within 2 s through the balancer,
and no message sent meanwhile missed by anyone, since the real
chat-client.js catches up by cursor. A negative control that reconnects but
does not catch up is caught by the same checker."""
import asyncio
import collections
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import HERE, NODE, RELAY_OPTS, now_ms, rc, wait_until

pytestmark = pytest.mark.skipif(NODE is None, reason="needs node")

RECEIVERS = 40
INTERVAL_MS = 250          # the sender: one message to each of the 41 chats every 250 ms
BACK_WITHIN_MS = 2000      # a drained relay's clients are welcomed elsewhere within this


class Driver:
    """test/ha/clients.mjs: the browsers (receivers, controls) and the sender."""

    def __init__(self, url, sender, receivers, controls):
        self.setup = dict(url=url, origin=rc.ORIGIN, interval_ms=INTERVAL_MS,
                          sender=dict(user=sender, token=rc.jwt(sender), chats=[c for _, _, c in receivers + controls]),
                          receivers=[dict(name=n, user=u, token=rc.jwt(u), chat=c) for n, u, c in receivers],
                          controls=[dict(name=n, user=u, token=rc.jwt(u), chat=c) for n, u, c in controls])
        self.chat_of = {n: c for n, _, c in receivers + controls}
        fd, self.setup_file = tempfile.mkstemp(prefix="ha-setup-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.setup, f)
        self.lines = queue.Queue()
        self.seen = []             # every line so far
        self.proc = subprocess.Popen([NODE, "--experimental-websocket", "--no-warnings", os.path.join(HERE, "clients.mjs"),
                                      self.setup_file], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"type": "junk", "line": line})
        self.lines.put({"type": "eof"})

    def expect(self, kind, timeout=20):
        """The next line of this type (others are kept in .seen)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("clients.mjs: no %s within %.0f s; stderr:\n%s" % (kind, timeout, self.stderr()))
            self.seen.append(m)
            if m["type"] == kind:
                return m
            if m["type"] in ("fatal", "eof"):
                raise AssertionError("clients.mjs: %r\n%s" % (m, self.stderr()))

    def drain_lines(self):
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def report(self):
        self.command("report")
        return self.expect("report")["clients"]

    def stderr(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.setup_file)


def sent_seqs(chats):
    """What the database holds: {chat_id: set of seqs} (the truth of what was sent)."""
    rows = rc.sql("SELECT chat_id, seq FROM chat.messages WHERE chat_id = ANY(%s)", (list(chats),))
    out = {c: set() for c in chats}
    for chat, seq in rows:
        out[chat].add(seq)
    return out


def check_delivery(report, chat_of, expected):
    """The checker: {client: problem} for each client that missed a message
    of its chat (expected: sent_seqs) or was shown one twice."""
    problems = {}
    for name, chat in chat_of.items():
        got = report[name]["seqs"]
        missing = sorted(expected[chat] - set(got))
        twice = sorted(s for s, n in collections.Counter(got).items() if n > 1)
        if missing or twice:
            problems[name] = dict(missing=missing, twice=twice)
    return problems


def drain_through(kind, relays, balancer):
    """The scenario, through haproxy or nginx (see the module's docstring)."""
    pid = os.getpid()
    ra = relays("ha-%d-a" % pid, **RELAY_OPTS)
    rb = relays("ha-%d-b" % pid, **RELAY_OPTS)
    by_id = {ra.name: ra, rb.name: rb}
    lb = balancer(kind, {"relay1": ra, "relay2": rb})

    users = rc.new_users(RECEIVERS + 2)
    sender, people = users[0], users[1:]
    chats = [rc.open_chat(u, sender) for u in people]   # each opens its own (new chats per user are limited)
    receivers = [("r%02d" % i, u, c) for i, (u, c) in enumerate(zip(people[:-1], chats[:-1]))]
    controls = [("control", people[-1], chats[-1])]
    driver = Driver(lb.url, sender, receivers, controls)
    try:
        driver.expect("ready", 30)
        driver.drain_lines()
        first = {m["who"]: m["relay"] for m in driver.seen if m["type"] == "welcome"}
        spread = collections.Counter(first[n] for n, _, _ in receivers)
        assert set(spread) == set(by_id), "all %d receivers on one relay: %r" % (RECEIVERS, spread)
        assert min(spread.values()) >= RECEIVERS // 4, "badly spread: %r" % spread
        # drain the relay the control is on: it must miss what is sent meanwhile
        victim = by_id[first["control"]]
        other = rb if victim is ra else ra
        on_victim = [n for n, _, _ in receivers if first[n] == victim.name]

        driver.command("start")
        driver.expect("started")
        time.sleep(1.0)
        t_term = now_ms()
        victim.signal(signal.SIGTERM)

        def back():
            driver.drain_lines()
            again = {}
            for m in driver.seen:
                if m["type"] == "welcome" and m["t"] >= t_term:
                    again.setdefault(m["who"], m)
            return again if all(n in again for n in on_victim + ["control"]) else None
        again = wait_until(back, 10, "the drained relay's clients welcomed again")
        late = {n: round(again[n]["t"] - t_term) for n in on_victim if again[n]["t"] - t_term > BACK_WITHIN_MS}
        assert not late, "not back within %d ms of SIGTERM: %r" % (BACK_WITHIN_MS, late)
        # no stampede: chat-client.js spreads them over its 0 to 1 s jitter
        # (at once, they would all come within a few ms); 20 uniform draws
        # span less than 400 ms with a probability of about 1e-6
        times = sorted(again[n]["t"] for n in on_victim)
        assert len(times) < 5 or times[-1] - times[0] >= 400, "reconnected all at once: %r" % [round(t - t_term) for t in times]
        wrong = {n: again[n]["relay"] for n in on_victim if again[n]["relay"] != other.name}
        assert not wrong, "came back to the drained relay: %r" % wrong
        codes = collections.Counter(m["code"] for m in driver.seen if m["type"] == "disconnect" and m["who"] in on_victim)
        assert codes == {1012: len(on_victim)}, codes
        stayed = [n for n, _, _ in receivers if first[n] == other.name]
        moved = [m["who"] for m in driver.seen if m["type"] == "disconnect" and m["who"] in stayed]
        assert not moved, "clients of the other relay were disconnected: %r" % moved
        assert victim.proc.wait(10) == 0, victim.log()[-3000:]

        time.sleep(1.0)      # sending on, all on the other relay now
        driver.command("stop")
        stopped = driver.expect("stopped", 40)
        assert not stopped["failed"] and stopped["acked"] == stopped["sent"], stopped
        expected = sent_seqs(driver.chat_of.values())
        total = sum(len(s) for s in expected.values())
        assert total == stopped["sent"], "stored %d messages of %d sent: a retry stored one twice?" % (total, stopped["sent"])
        sent_during = sum(1 for chat in expected for _ in expected[chat])
        assert sent_during >= 41 * 8, "too few messages to tell anything: %d" % sent_during

        receiver_names = {n for n, _, _ in receivers}

        def delivered():
            report = driver.report()
            problems = check_delivery(report, driver.chat_of, expected)
            return (report, problems) if not set(problems) & receiver_names else None
        try:
            report, problems = wait_until(delivered, 10, "every receiver has every message", interval=0.3)
        except AssertionError:
            report = driver.report()
            problems = check_delivery(report, driver.chat_of, expected)
            raise AssertionError("missed or twice: %r" % {n: p for n, p in problems.items() if n in receiver_names})
        # the negative control, away ~1 s and never catching up, is caught by the same checker
        assert "control" in problems and problems["control"]["missing"], \
            "the checker did not notice a client that does not catch up: %r" % report["control"]
        # the balancer logged the upgrades, without the tokens in their URLs
        log = lb.access_log()
        assert "/ws" in log, "no upgrade in the balancer's log:\n" + log[-2000:]
        assert "access_token" not in log, "a token in the balancer's log"
        return dict(victim=victim, other=other, drained=len(on_victim),
                    slowest=max(again[n]["t"] - t_term for n in on_victim),
                    fastest=min(again[n]["t"] - t_term for n in on_victim), missed_by_control=len(problems["control"]["missing"]))
    except BaseException:
        print("--- balancer log ---\n" + lb.logs()[-4000:])
        raise
    finally:
        driver.close()


def test_haproxy_drain_by_sigterm(relays, balancer):
    """Two relays behind deploy/haproxy.cfg, 40 chat-client.js receivers and
    a sender through it; SIGTERM one relay: its clients are closed with
    1012, reconnect through haproxy to the other (an upgrade that reaches
    the stopping relay gets 503 and is retried there, retry-on) within 2 s,
    and every receiver ends with every message stored, once."""
    out = drain_through("haproxy", relays, balancer)
    print("haproxy: %(drained)d clients moved, from %(fastest).0f to %(slowest).0f ms after SIGTERM; the control missed %(missed_by_control)d" % out)


def test_nginx_drain_by_sigterm(relays, balancer):
    """The same through deploy/nginx.conf (proxy_next_upstream on 503 and errors)."""
    out = drain_through("nginx", relays, balancer)
    print("nginx: %(drained)d clients moved, from %(fastest).0f to %(slowest).0f ms after SIGTERM; the control missed %(missed_by_control)d" % out)


def test_haproxy_drain_by_runtime_api_then_restart(relays, balancer):
    """The gentler way (deploy/haproxy.cfg's comment): `set server … state
    drain` on the runtime API first: new upgrades all go to the other relay
    while the drained one keeps its clients; then SIGTERM it: they move
    within 2 s; start it again, `state ready`: the health check (/livez)
    brings it back and leastconn gives it the next new clients."""
    pid = os.getpid()
    ra = relays("ha-%d-a" % pid, **RELAY_OPTS)
    rb = relays("ha-%d-b" % pid, **RELAY_OPTS)
    lb = balancer("haproxy", {"relay1": ra, "relay2": rb})
    users = rc.new_users(12)

    async def scenario():
        import websockets

        async def join(user):
            ws = await websockets.connect(lb.url + "?access_token=" + rc.jwt(user), origin=rc.ORIGIN,
                                          open_timeout=10, close_timeout=2)
            welcome = json.loads(await ws.recv())
            return ws, welcome["relay_id"]

        first = [await join(u) for u in users[:8]]
        spread = collections.Counter(r for _, r in first)
        assert spread == {ra.name: 4, rb.name: 4}, spread
        assert lb.admin("set server chat_relays/relay1 state drain").strip() == ""
        assert lb.server_states()["relay1"] == "DRAIN"
        # new clients avoid the drained relay; its own stay connected
        later = [await join(u) for u in users[8:10]]
        assert [r for _, r in later] == [rb.name, rb.name]
        on_a = [ws for ws, r in first if r == ra.name]
        users_a = [u for u, (_, r) in zip(users, first) if r == ra.name]
        for ws in on_a:
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["result"] == "pong"
        # SIGTERM: its clients get 1012 and find the other relay through haproxy
        t0 = time.monotonic()
        ra.signal(signal.SIGTERM)
        for ws in on_a:
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.exceptions.ConnectionClosed as e:
                assert e.code == 1012, e
        back = [await join(u) for u in users_a]
        assert time.monotonic() - t0 < BACK_WITHIN_MS / 1000.0
        assert {r for _, r in back} == {rb.name}
        assert ra.proc.wait(10) == 0
        # the restart: up again, ready again, and the health check says UP
        ra.log_handle.close()
        ra.start()
        assert lb.admin("set server chat_relays/relay1 state ready").strip() == ""
        wait_until(lambda: lb.server_states()["relay1"] == "UP", 10, "relay1 UP again")
        fresh = [await join(u) for u in users[10:12]]
        assert [r for _, r in fresh] == [ra.name, ra.name], "leastconn: the restarted relay, emptiest, gets them"
        for ws, _ in first + later + back + fresh:
            await ws.close()

    asyncio.run(scenario())


def test_haproxy_keeps_relays_whose_database_is_down(relays, balancer):
    """Why the shipped configs check /livez, not /healthz: two relays whose
    database is unreachable (as every relay's is during a failover) answer
    /healthz 503 but stay UP in haproxy, and a client still gets in
    through it (welcomed, its requests answered `unavailable` until the
    database is back) instead of every relay being taken out at once."""
    pid = os.getpid()
    nowhere = "host=127.0.0.1 port=%d dbname=chat_test user=chat_relay connect_timeout=2" % rc.free_port()
    ra = relays("ha-%d-nodb-a" % pid, wait=False, db=nowhere, **RELAY_OPTS)
    rb = relays("ha-%d-nodb-b" % pid, wait=False, db=nowhere, **RELAY_OPTS)
    assert ra.http("/healthz")[0] == 503 and rb.http("/healthz")[0] == 503
    lb = balancer("haproxy", {"relay1": ra, "relay2": rb})     # waits until both are UP
    time.sleep(2.5)                                            # past fall × inter of checks
    assert lb.server_states() == {"relay1": "UP", "relay2": "UP"}

    async def client():
        import websockets
        user = rc.new_users(1)[0]
        async with websockets.connect(lb.url + "?access_token=" + rc.jwt(user), origin=rc.ORIGIN,
                                      open_timeout=10, close_timeout=2) as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome" and welcome["user_id"] == user, welcome
            await ws.send(json.dumps({"type": "unread", "id": 1}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer["type"] == "error" and answer["code"] == "unavailable", answer
    asyncio.run(client())
