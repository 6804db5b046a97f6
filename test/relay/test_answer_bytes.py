"""Answers bounded in bytes (issue 15 item 3): a user who sends large
messages cannot lock another user out. Pages stop at the database's byte
budget and the real client pages on; an answer never makes its own reader a
slow reader (1013): one over the relay's bound is refused with too_large,
one the send queue cannot take now with rate_limited / send_queue_full."""
import asyncio
import json
import os
import shutil
import socket
import subprocess

import pytest

from conftest import ORIGIN, connect, jwt, new_users, open_chat, run, sql

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = shutil.which("node")
# 4,000 control characters: 24 kB of JSON, the largest a body can be as text
CONTROL_BODY = "\x01" * 4000


async def send_all(client, chat, bodies, window=50):
    """Send every body through the relay, window requests in flight at once
    (answered in any order); the seqs, in the order sent."""
    answers = {}
    for start in range(0, len(bodies), window):
        ids = []
        for body in bodies[start:start + window]:
            client.next_id += 1
            ids.append(client.next_id)
            await client.ws.send(json.dumps(dict(type="send", id=client.next_id, chat_id=chat, body=body)))
        while not all(i in answers for i in ids):
            m = await client.recv(timeout=30)
            if m.get("type") in ("ok", "error"):
                answers[m["id"]] = m
    assert all(m["type"] == "ok" for m in answers.values()), [m for m in answers.values() if m["type"] != "ok"][:3]
    return [answers[i]["result"]["seq"] for i in sorted(answers)]


def victim_client(relay, user, chat, cursor, want, timeout_ms=30000):
    """Run the real chat-client.js in Node as user; its report."""
    out = subprocess.run(
        [NODE, "--experimental-websocket", os.path.join(HERE, "victim_client.mjs"), relay.url(), jwt(user),
         ORIGIN, str(chat), str(cursor), str(want), str(timeout_ms)],
        capture_output=True, text=True, timeout=timeout_ms / 1000 + 30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_victim_of_300_large_messages_catches_up_with_the_real_client(relays):
    """300 messages of 4,000 control characters sent to an offline user
    (7 MB of JSON, over the 4 MiB send queue as one catch_up page): the
    victim's real client connects, catches up on all of them page by page,
    and is never closed with 1013."""
    sender_relay = relays(rate=1000, burst=1000)
    victim_relay = relays()     # every limit at its default
    attacker, victim = new_users(2)
    chat = open_chat(attacker, victim)

    async def attack():
        a = await connect(sender_relay, attacker)
        seqs = await send_all(a, chat, [CONTROL_BODY] * 300)
        await a.close()
        return seqs
    assert sorted(run(attack())) == list(range(1, 301))

    report = victim_client(victim_relay, victim, chat, cursor=0, want=300)
    assert 1013 not in report["closes"], report
    assert "reconnecting" not in report["states"], report
    assert report["caughtup"], report
    assert report["seqs"] == list(range(1, 301)), "every message once, in order"
    assert report["errors"] == [], report
    # history() of 100 such messages: several pages under the budget, one whole answer to the app
    assert report["history"] == list(range(300, 200, -1)), report["history"]
    assert report["historyMore"] == 0, "the page marker is the client's, not the app's"
    assert chat in report["chats"]
    assert victim_relay.metric("chat_relay_queue_drops_total") == 0
    # pages of at most the budget (256 kB of rows), not one 7 MB frame
    assert 240000 < report["maxFrame"] <= 262144 + 200, report["maxFrame"]


def test_an_answer_over_the_bound_is_refused_not_closed(relays):
    """A page the send queue could not take whole is answered too_large
    (answer_too_large, with what to do), and the connection stays open."""
    relay = relays(send_queue_bytes=65536)
    a, b = new_users(2)
    chat = open_chat(a, b)
    for _ in range(12):
        sql("SELECT chat.send_message(%s, %s, %s)", (a, chat, CONTROL_BODY))

    async def go():
        c = await connect(relay, b)
        m = await c.request("history", chat_id=chat, page_size=50)
        assert m["type"] == "error", "a 256 kB page for a 64 kB queue: refused, not queued (%s)" % m["type"]
        assert (m["code"], m["reason"]) == ("too_large", "answer_too_large"), m
        assert "page_size" in m["message"] and "32768" in m["message"], m["message"]
        m = await c.request("catch_up", chat_id=chat, after=0, page_size=500)
        assert (m["type"], m.get("reason")) == ("error", "answer_too_large"), m
        # the same connection goes on: a smaller page fits
        rows = await c.ok("history", chat_id=chat, page_size=1)
        assert [r["seq"] for r in rows] == [12]
        assert await c.ok("ping") == "pong"
        await c.close()
    run(go())
    assert relay.metric("chat_relay_queue_drops_total") == 0


def test_answers_never_fill_the_send_queue(relays):
    """A client that asks and does not read: once its answers fill half the
    send queue, more are refused with rate_limited / send_queue_full (the
    other half stays for events), and it is not closed with 1013."""
    relay = relays(send_queue_bytes=262144, rate=10000, burst=10000)
    a, b = new_users(2)
    chat = open_chat(a, b)
    sql("SELECT chat.send_message(%s, %s, %s)", (a, chat, CONTROL_BODY))

    async def go():
        # no reading until every answer is in: the socket's buffers fill, then the queue
        c = await connect(relay, b, max_queue=1, read_limit=1024, write_limit=1 << 20, ping_interval=None)
        c.ws.transport.pause_reading()
        n = 600
        for i in range(n):
            await c.ws.send(json.dumps(dict(type="history", id=i + 1, chat_id=chat, page_size=1)))
            if i % 50 == 49:
                await asyncio.sleep(0.2)     # under max_inflight: the database answers meanwhile
        await asyncio.sleep(1.5)
        c.ws.transport.resume_reading()
        answers = {}
        while len(answers) < n:
            m = await c.recv(timeout=20)
            if m.get("type") in ("ok", "error"):
                answers[m["id"]] = m
        await c.close()
        return answers
    answers = run(go())
    refused = [m for m in answers.values() if m["type"] == "error"]
    assert refused, "some answers must have waited for the queue"
    assert {(m["code"], m["reason"]) for m in refused} == {("rate_limited", "send_queue_full")}, refused[:3]
    assert "retry" in refused[0]["message"]
    assert relay.metric("chat_relay_queue_drops_total") == 0
