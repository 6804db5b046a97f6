"""PostgreSQL failover under load, on loopback, with real processes: a
pg_auto_failover pair (test/ha/failover_cluster.py: monitor + two nodes,
synchronous replication, chat preloaded), two chat-relays on a libpq
multi-host conninfo (target_session_attrs=read-write), and 200 WebSocket
clients in 100 chats sending about 20 messages/s. The primary's keeper and
postmaster are killed with SIGKILL; then:

- no acknowledged (client_id, chat_id, seq) is missing on the new primary;
- no message is stored or shown twice; seqs have no gaps in any chat;
- every client ends with exactly the database's messages of its chat;
- sends succeed again within 30 s of the kill, and every client has caught
  up within 5 s after that.

The negative control runs the same load and checker with
synchronous_commit = local and the standby's WAL receiver stopped (SIGSTOP)
for the seconds before the kill: the acknowledged messages the standby
never received are gone after the failover, and the checker must say so.
A second, deterministic check of the checker deletes an acknowledged row
on the new primary.

`make test-ha`; HA_CLIENTS / HA_RATE change the load, HA_KEEP=1 keeps the
pair's folder (logs)."""
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid

import pytest
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import failover_cluster as fc  # noqa: E402
from harness import query, wait_until  # noqa: E402

# the relay tests' helpers (Relay, jwt), loaded under a name of their own:
# test/ha/conftest.py belongs to the load-balancer test
_spec = importlib.util.spec_from_file_location(
    "ha_relay_helpers", os.path.join(fc.TEST_DIR, "relay", "conftest.py"))
rh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rh)

N_CLIENTS = int(os.environ.get("HA_CLIENTS", "200"))    # two per chat
RATE = float(os.environ.get("HA_RATE", "20"))           # messages/s, all clients together
FIRST_USER = 7_000_000 + (os.getpid() % 1000) * 1000
PAGE = 500


_started_relays = []


@pytest.fixture(scope="module")
def pair():
    p = fc.Pair()

    def killed(signum, frame):
        # make's or CI's timeout: pytest would run no finalizer
        signal.signal(signum, signal.SIG_IGN)
        try:
            for r in _started_relays:
                if r.proc.poll() is None:
                    r.proc.kill()
                    r.proc.wait(10)
            p.cleanup(keep=bool(os.environ.get("HA_KEEP")))
            if not os.environ.get("HA_KEEP"):
                for r in _started_relays:
                    shutil.rmtree(r.dir, ignore_errors=True)
        finally:
            os._exit(128 + signum)
    previous = {s: signal.signal(s, killed) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        p.start()
        yield p
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        p.cleanup(keep=bool(os.environ.get("HA_KEEP")))
        print("pair folder %s %s" % (p.base, "kept" if os.environ.get("HA_KEEP") else "removed"))


@contextlib.contextmanager
def relays_on(pair):
    """Two chat-relays on the pair's multi-host conninfo."""
    rh._ids.port = pair.nodes[-1].port + 5     # relay ports: within 25000-25999 too
    rh.conninfo = lambda user="chat_relay": pair.conninfo(user)
    tmp = tempfile.mkdtemp(prefix="chat-ha-relays.")
    made = []
    try:
        for name in ("ha-a", "ha-b"):
            made.append(rh.Relay(tmp, "%s-%d" % (name, os.getpid()), backoff_min_ms=50, backoff_max_ms=500,
                                 max_conns_per_user=4))
            _started_relays.append(made[-1])
        yield made
    finally:
        for r in made:
            _started_relays.remove(r)
            if r.proc.poll() is None:
                try:
                    r.stop(20)
                except AssertionError:
                    pass
        bad = [r for r in made if "AddressSanitizer" in r.log() or "runtime error" in r.log()]
        if not bad and not os.environ.get("HA_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        assert not bad, "sanitizer report:\n" + "\n".join(r.log()[-4000:] for r in bad)


@pytest.fixture
def ha_relays(pair):
    with relays_on(pair) as relays:
        yield relays


@pytest.fixture
def ha_relays_for_control(pair):
    """The pair whole again (a node killed by the test before rejoins as
    the standby), chat_relay committing with synchronous_commit = local,
    two relays logged in after that; yields (relays, the primary, the
    standby)."""
    for node in pair.nodes:
        if node.proc is None or node.proc.poll() is not None:
            node.run()
    primary = wait_until(lambda: _one_primary(pair), 90, "one primary", interval=0.3)
    standby = next(n for n in pair.nodes if n is not primary)
    pair.wait_states({primary.name: "primary", standby.name: "secondary"}, 90)
    conn = primary.connect()
    try:
        query(conn, "ALTER ROLE chat_relay SET synchronous_commit = local")
        wait_until(lambda: query(conn, "SELECT pid FROM pg_stat_replication WHERE state = 'streaming'"),
                   30, "the standby streaming")
    finally:
        conn.close()
    with relays_on(pair) as relays:
        yield relays, primary, standby


def _one_primary(pair):
    try:
        s = pair.states()
    except Exception:     # noqa: BLE001
        return None
    names = [n for n, (rep, goal) in s.items() if rep == goal and rep in ("primary", "wait_primary")]
    return pair.node(names[0]) if len(names) == 1 else None


class ChatClient:
    """One user's WebSocket connection in one chat: shows every message it
    hears of (events, catch_up pages, its own acknowledged sends) once by
    seq, keeps the highest cursor and catches up from it after each
    resync (and after a reconnect)."""

    def __init__(self, load, relay, user, chat):
        self.load, self.relay, self.user, self.chat = load, relay, user, chat
        self.shown = {}            # seq -> (client_id, first time shown)
        self.conflicts = []        # (seq, client_id shown, client_id heard later)
        self.redelivered = 0       # the same seq heard again (expected around a resync)
        self.cursor = 0
        self.catchups = []         # (start, end) of each complete catch-up
        self.resyncs = 0
        self.reconnects = 0
        self.next_id = 0
        self.waiting = {}
        self.ws = None
        self.want_catch_up = asyncio.Event()
        self.syncing = True        # catching up (from the start)
        self.closed = False

    async def connect(self):
        token = rh.jwt(self.user, exp_in=900)
        self.ws = await websockets.connect(self.relay.url(token), origin=rh.ORIGIN, open_timeout=10,
                                           close_timeout=2, max_queue=None)
        welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert welcome["type"] == "welcome", welcome
        self.reader = asyncio.create_task(self.read(self.ws))

    async def read(self, ws):
        try:
            async for frame in ws:
                m = json.loads(frame)
                if m.get("type") in ("ok", "error") and "id" in m:
                    fut = self.waiting.pop(m["id"], None)
                    if fut and not fut.done():
                        fut.set_result(m)
                elif m.get("type") == "message" and m.get("chat_id") == self.chat:
                    self.show(m["seq"], m["message"].get("client_id"))
                    # as chat-client.js: live events do not move the cursor
                    # while the chat catches up (they may come from after
                    # a gap the catch-up has not read yet), and a jump of
                    # the cursor (a change missed) starts a catch-up
                    if not self.syncing:
                        if m["cursor"] > self.cursor + 1:
                            self.syncing = True
                            self.want_catch_up.set()
                        else:
                            self.cursor = max(self.cursor, m["cursor"])
                elif m.get("type") == "resync":
                    self.resyncs += 1
                    self.syncing = True
                    self.want_catch_up.set()
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_result({"type": "error", "code": "closed"})
            self.waiting.clear()
            if not self.closed:
                self.syncing = True
                self.want_catch_up.set()        # reconnect, then catch up

    def show(self, seq, client_id):
        now = time.monotonic()
        if seq in self.shown:
            self.redelivered += 1
            if self.shown[seq][0] != client_id:
                self.conflicts.append((seq, self.shown[seq][0], client_id))
        else:
            self.shown[seq] = (client_id, now)

    async def request(self, type, timeout=10, **params):
        """The answer, or a made-up error "timeout" / "closed"."""
        if self.ws is None or self.ws.closed:
            return {"type": "error", "code": "closed"}
        self.next_id += 1
        rid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        try:
            await self.ws.send(json.dumps(dict(type=type, id=rid, **params)))
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return {"type": "error", "code": "timeout"}
        except websockets.exceptions.ConnectionClosed:
            return {"type": "error", "code": "closed"}
        finally:
            self.waiting.pop(rid, None)

    async def catch_up_loop(self):
        """Catch up at the start and after every resync or reconnect."""
        while not self.closed:
            await self.want_catch_up.wait()
            self.want_catch_up.clear()
            if self.closed:
                return
            if self.ws is None or self.ws.closed:
                try:
                    self.reconnects += 1
                    await self.connect()
                except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                    await asyncio.sleep(0.5)
                    self.want_catch_up.set()
                    continue
            start = time.monotonic()
            while not self.closed:
                m = await self.request("catch_up", chat_id=self.chat, after=self.cursor, page_size=PAGE)
                if m["type"] != "ok":
                    if m.get("code") == "closed":
                        self.want_catch_up.set()
                        break
                    await asyncio.sleep(0.2 + random.random() * 0.3)
                    continue
                rows = m["result"]
                for row in rows:
                    self.show(row["seq"], row.get("client_id"))
                    self.cursor = max(self.cursor, row["cursor"])
                if len(rows) < PAGE and not (rows and rows[-1].get("more")):
                    self.catchups.append((start, time.monotonic()))
                    if not self.want_catch_up.is_set():   # no resync meanwhile
                        self.syncing = False
                    break

    async def send_loop(self, stop, rate):
        """Sends at about rate per second, each retried with its client_id
        until acknowledged (after unavailable, a timeout, a lost connection)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), random.expovariate(rate))
                return
            except asyncio.TimeoutError:
                pass
            cid = str(uuid.uuid4())
            first = time.monotonic()
            while True:
                sent = time.monotonic()
                m = await self.request("send", chat_id=self.chat, body="m %s" % cid[:8], client_id=cid)
                if m["type"] == "ok":
                    r = m["result"]
                    self.load.acks.append(dict(client_id=cid, chat_id=self.chat, seq=r["seq"], first=first,
                                               sent=sent, acked=time.monotonic()))
                    self.show(r["seq"], cid)
                    break
                assert m.get("code") in ("unavailable", "rate_limited", "timeout", "closed"), m
                self.load.refusals.append((sent, m.get("code"), m.get("reason")))
                if self.load.give_up.is_set():
                    self.load.abandoned.append(cid)
                    return
                await asyncio.sleep(0.3 + random.random() * 0.4)

    async def close(self):
        self.closed = True
        self.want_catch_up.set()
        if self.ws is not None:
            await self.ws.close()


class Load:
    def __init__(self):
        self.acks = []
        self.refusals = []
        self.abandoned = []
        self.give_up = asyncio.Event()


def check(acks, clients, db_rows):
    """What went wrong, as lists (all empty: nothing did).
    acks: [{client_id, chat_id, seq}]; clients: {(user, chat): {seq: client_id}}
    shown; db_rows: [(chat_id, seq, client_id)] of the new primary."""
    stored = {}
    dup_stored = []
    by_chat = {}
    for chat, seq, cid in db_rows:
        by_chat.setdefault(chat, {})[seq] = cid
        if cid is not None:
            if (chat, cid) in stored:
                dup_stored.append((chat, cid, stored[(chat, cid)], seq))
            stored[(chat, cid)] = seq
    missing = [a for a in acks if stored.get((a["chat_id"], a["client_id"])) != a["seq"]]
    gaps = []
    for chat, seqs in by_chat.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            gaps.append((chat, sorted(set(range(1, max(seqs) + 1)) - set(seqs))[:10]))
    shown_twice, differs = [], []
    for (user, chat), shown in clients.items():
        seen = {}
        for seq, cid in shown.items():
            if cid in seen:
                shown_twice.append((user, chat, cid, seen[cid], seq))
            seen[cid] = seq
        if shown != by_chat.get(chat, {}):
            db = set(by_chat.get(chat, {}).items())
            differs.append(dict(user=user, chat=chat, db_only=sorted(db - set(shown.items()))[:5],
                                client_only=sorted(set(shown.items()) - db)[:5]))
    return dict(missing=missing, stored_twice=dup_stored, gaps=gaps, shown_twice=shown_twice,
                client_differs=differs)


def stored_rows(node, chats):
    conn = node.connect()
    try:
        return query(conn, "SELECT chat_id, seq, client_id::text FROM chat.messages WHERE chat_id = ANY(%s)",
                     (list(chats),))
    finally:
        conn.close()


def in_thread(fn, *args):
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def failover_under_load(pair, relays, n_clients, rate, warm=4.0, before_kill=None, after_kill=None,
                              settle=30.0):
    """Run the load, kill the primary after warm seconds, keep the load on
    until sends have succeeded again for a few seconds, then stop and
    collect. Returns (load, clients, times, old primary, new primary)."""
    load = Load()
    old = pair.primary()
    first = FIRST_USER + len(getattr(pair, "used_users", ())) * 10000
    pair.used_users = getattr(pair, "used_users", []) + [first]
    conn = old.connect()
    try:
        chats = [query(conn, "SELECT chat.open_chat(%s, 'direct', NULL, %s)", (first + 2 * i, first + 2 * i + 1))[0][0]
                 for i in range(n_clients // 2)]
    finally:
        conn.close()
    clients = []
    for i, chat in enumerate(chats):
        for k in (0, 1):
            clients.append(ChatClient(load, relays[(i + k) % 2], first + 2 * i + k, chat))
    sem = asyncio.Semaphore(20)

    async def connect(c):
        async with sem:
            await c.connect()
    await asyncio.gather(*(connect(c) for c in clients))
    catchers = [asyncio.create_task(c.catch_up_loop()) for c in clients]
    for c in clients:
        c.want_catch_up.set()
    stop = asyncio.Event()
    senders = [asyncio.create_task(c.send_loop(stop, rate / n_clients)) for c in clients]
    await asyncio.sleep(warm)
    if before_kill:
        await before_kill()
    acked_before = len(load.acks)
    t_kill = time.monotonic()
    wall_kill = time.time()
    await in_thread(old.kill9)
    t_killed = time.monotonic()
    if after_kill:
        await after_kill()
    new = None
    t_promoted = None
    t_first_ok = None
    deadline = t_kill + 45
    while time.monotonic() < deadline:
        if t_promoted is None:
            try:
                s = await in_thread(pair.states)
                ok = [n for n, (rep, goal) in s.items() if n != old.name and rep == goal
                      and rep in ("wait_primary", "primary")]
                if ok:
                    new, t_promoted = pair.node(ok[0]), time.monotonic()
            except Exception:     # noqa: BLE001 - the monitor is busy: ask again
                pass
        if t_first_ok is None:
            after = [a["acked"] for a in load.acks if a["sent"] > t_killed]
            if after:
                t_first_ok = min(after)
        if t_promoted and t_first_ok and time.monotonic() > t_first_ok + 5:
            break
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*senders), settle)
    # every client shows what the new primary holds (bounded), then stop
    rows = []
    if new is not None:
        t_end = time.monotonic() + 10
        while True:
            rows = await in_thread(stored_rows, new, chats)
            by_chat = {}
            for chat, seq, cid in rows:
                by_chat.setdefault(chat, {})[seq] = cid
            if all({s: v[0] for s, v in c.shown.items()} == by_chat.get(c.chat, {}) for c in clients) \
                    or time.monotonic() > t_end:
                break
            await asyncio.sleep(0.5)
    for c in clients:
        await c.close()
    for t in catchers:
        t.cancel()
    await asyncio.gather(*catchers, return_exceptions=True)
    times = dict(kill=t_kill, wall_kill=wall_kill, killed=t_killed, promoted=t_promoted, first_ok=t_first_ok,
                 acked_before_kill=acked_before)
    return load, clients, rows, times, old, new


def caught_up_after(clients, acks, t_recovered):
    """Seconds after t_recovered by which every client showed every message
    of its chat acknowledged by t_recovered (<= 0: before)."""
    acked_by = {}
    for a in acks:
        if a["acked"] <= t_recovered:
            acked_by.setdefault(a["chat_id"], []).append(a["seq"])
    worst = float("-inf")
    for c in clients:
        for seq in acked_by.get(c.chat, []):
            shown = c.shown.get(seq)
            worst = max(worst, (shown[1] if shown else float("inf")) - t_recovered)
    return worst


def monitor_events(pair, since):
    """The monitor's events from since (a time.time()) on, as lines
    "+seconds node reported -> assigned: description"."""
    rows = pair.monitor_sql("SELECT extract(epoch FROM eventtime)::float8, nodename, reportedstate, goalstate,"
                            " description FROM pgautofailover.event WHERE eventtime >= to_timestamp(%s)"
                            " ORDER BY eventid", (since,))
    return ["%+6.2f s %s %s -> %s: %s" % (t - since, n, rep, goal, d[:110]) for t, n, rep, goal, d in rows]


def report(name, load, clients, times, problems=None):
    k = times["kill"]
    out = {
        "clients": len(clients), "acked": len(load.acks), "acked_before_kill": times["acked_before_kill"],
        "kill_s": round(times["killed"] - k, 2),
        "promoted_s": times["promoted"] and round(times["promoted"] - k, 2),
        "first_ok_s": times["first_ok"] and round(times["first_ok"] - k, 2),
        "longest_send_s": round(max((a["acked"] - a["first"] for a in load.acks), default=0), 2),
        "refusals": len(load.refusals),
        "resyncs": sum(c.resyncs for c in clients),
        "reconnects": sum(c.reconnects for c in clients),
        "redelivered": sum(c.redelivered for c in clients),
    }
    if problems is not None:
        out.update({key: len(v) for key, v in problems.items()})
    print("\n%s: %s" % (name, json.dumps(out)))
    return out


def test_failover_loses_no_acknowledged_message(pair, ha_relays):
    settings = pair.settings()
    primary = pair.primary()
    conn = primary.connect()
    try:
        sync_names = query(conn, "SHOW synchronous_standby_names")[0][0]
        sync_commit = query(conn, "SHOW synchronous_commit")[0][0]
        preload = query(conn, "SHOW shared_preload_libraries")[0][0]
    finally:
        conn.close()
    print("\npair started in %.1f s; settings: %s\nsynchronous_standby_names=%r synchronous_commit=%s" % (
        pair.timings["start_s"], json.dumps(settings), sync_names, sync_commit))
    assert sync_names.startswith("ANY 1 ("), sync_names
    assert sync_commit == "on" and "chat" in preload
    load, clients, rows, times, old, new = asyncio.run(
        failover_under_load(pair, ha_relays, N_CLIENTS, RATE))
    assert new is not None and new is not old, "no node was promoted: %r" % pair.states()
    shown = {(c.user, c.chat): {s: v[0] for s, v in c.shown.items()} for c in clients}
    problems = check(load.acks, shown, rows)
    out = report("failover", load, clients, times, problems)
    print("the monitor's events after the kill:\n  " + "\n  ".join(monitor_events(pair, times["wall_kill"])))
    assert not load.abandoned
    if problems["client_differs"]:
        by_user = {c.user: c for c in clients}
        for d in problems["client_differs"][:5]:
            c = by_user[d["user"]]
            print("differs: %r resyncs=%d catchups=%r cursor=%d shown=%r" % (
                d, c.resyncs, [(round(a - times["kill"], 2), round(b - times["kill"], 2)) for a, b in c.catchups],
                c.cursor, {s: (v[0][:8], round(v[1] - times["kill"], 2)) for s, v in sorted(c.shown.items())}))
        acks = {a["client_id"]: a for a in load.acks}
        for d in problems["client_differs"][:5]:
            for seq, cid in d["db_only"] + d["client_only"]:
                a = acks.get(cid)
                print("  %s seq %d ack: %r" % (cid[:8], seq, a and {k: round(v - times["kill"], 2)
                                                                   if isinstance(v, float) else v for k, v in a.items()}))
    assert all(not v for v in problems.values()), {k: v[:5] for k, v in problems.items() if v}
    assert not any(c.conflicts for c in clients)
    assert times["first_ok"] is not None and times["first_ok"] - times["kill"] <= 30, out
    caught = caught_up_after(clients, load.acks, times["first_ok"])
    print("all clients caught up %.2f s after the first send that succeeded again" % caught)
    assert caught <= 5.0, caught
    assert len(load.acks) > times["acked_before_kill"] > 0

    # the checker's loss detection, deterministically: an acknowledged row
    # deleted on the new primary is reported missing
    victim = load.acks[len(load.acks) // 2]
    conn = new.connect()
    try:
        query(conn, "DELETE FROM chat.messages WHERE chat_id = %s AND seq = %s",
              (victim["chat_id"], victim["seq"]))
    finally:
        conn.close()
    rows = stored_rows(new, {victim["chat_id"]})
    problems = check([a for a in load.acks if a["chat_id"] == victim["chat_id"]],
                     {k: v for k, v in shown.items() if k[1] == victim["chat_id"]}, rows)
    assert [m["client_id"] for m in problems["missing"]] == [victim["client_id"]], problems
    assert problems["client_differs"], problems    # its clients showed it


def test_negative_control_asynchronous_commit_loses_acknowledged_messages(pair, ha_relays_for_control):
    relays, primary, standby = ha_relays_for_control

    async def before_kill():
        # the primary stops sending WAL (its walsender stopped: what the
        # standby has in its socket buffer is from before) and goes on
        # acknowledging without the standby for 3 s
        conn = primary.connect("postgres")
        try:
            pids = [r[0] for r in query(conn, "SELECT pid FROM pg_stat_replication")]
        finally:
            conn.close()
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(3.0)

    load, clients, rows, times, old, new = asyncio.run(
        failover_under_load(pair, relays, 40, RATE, warm=2.0, before_kill=before_kill))
    assert old is primary and new is standby, pair.states()
    shown = {(c.user, c.chat): {s: v[0] for s, v in c.shown.items()} for c in clients}
    problems = check(load.acks, shown, rows)
    report("negative control (synchronous_commit = local)", load, clients, times, problems)
    # the messages acknowledged while the standby heard nothing are gone,
    # and their seqs went to later messages: clients that showed them
    # disagree with the database
    assert problems["missing"], "the checker saw no loss"
    assert problems["client_differs"]
