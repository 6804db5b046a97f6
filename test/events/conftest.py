"""Fixtures for the event tests: connections to the test database (from the
PG* environment set by test/run-tests.sh) and a LISTEN client that collects
chat_events payloads: one envelope {"to": [...], "ev": EVENT} or a JSON
array of them (a batch)."""
import json
import os
import select
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import open_payload, pg_connect, wait_until  # noqa: E402,F401


def connect(**kw):
    """An autocommit connection to the test database."""
    return pg_connect(**kw)


class Listener:
    """A LISTEN chat_events connection (a new one to the test database, or
    conn) that keeps every payload it receives."""

    def __init__(self, conn=None):
        self.conn = conn or connect()
        self.conn.cursor().execute("LISTEN chat_events")
        self.sealed = []     # payload strings, as NOTIFY delivered them
        self.payloads = []   # what they hold, opened
        self.envelopes = []  # decoded envelopes, batches flattened, in order
        self.events = []     # their "ev", in the same order

    def drain(self, timeout=0.0):
        if select.select([self.conn], [], [], timeout) != ([], [], []):
            self.conn.poll()
        while self.conn.notifies:
            n = self.conn.notifies.pop(0)
            self.sealed.append(n.payload)
            self.payloads.append(open_payload(self.conn, n.payload))
            doc = json.loads(self.payloads[-1])
            for env in doc if isinstance(doc, list) else [doc]:
                assert list(env) == ["to", "ev"], "not an envelope: %r" % env
                self.envelopes.append(env)
                self.events.append(env["ev"])
        return self.events

    def recipients(self, event):
        """The "to" of the envelope that carried event."""
        for env in self.envelopes:
            if env["ev"] is event:
                return env["to"]
        raise KeyError(event)

    def wait_for(self, predicate, timeout=10.0):
        """Wait until predicate(events) is true and return the events."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain(0.05)
            if predicate(self.events):
                return self.events
            if time.monotonic() > deadline:
                raise AssertionError("events not seen within %.1fs: %r" % (timeout, self.events[-5:]))

    def of_type(self, t, chat_id=None):
        return [e for e in self.events if e["type"] == t and (chat_id is None or e.get("chat_id") == chat_id)]

    def close(self):
        self.conn.close()


@pytest.fixture
def db():
    conns = []

    def make():
        c = connect()
        conns.append(c)
        return c
    yield make
    for c in conns:
        c.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


_next_user = [700000 + (os.getpid() % 1000) * 1000]


@pytest.fixture
def new_chat(db):
    """Open a fresh direct chat between two new users: (chat_id, a, b)."""
    conn = db()

    def make():
        _next_user[0] += 2
        a, b = _next_user[0], _next_user[0] + 1
        cur = conn.cursor()
        cur.execute("SELECT chat.open_chat(%s, 'direct', NULL, %s)", (a, b))
        return cur.fetchone()[0], a, b
    return make
