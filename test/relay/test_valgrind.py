"""The plain (non-sanitizer) build under valgrind: a session that goes
through connections, requests, refusals, delivery, a fetched large message,
presence and SIGTERM must end with no memory error and nothing definitely
or indirectly lost (valgrind's exit code, and its summary in the log)."""
import os
import re
import shutil
import tempfile

from conftest import PLAIN_BIN, connect, is_msg, new_users, open_chat, run, sql


def test_no_leak_or_memory_error_under_valgrind(relays):
    assert shutil.which("valgrind"), "valgrind is installed by test/install-deps.sh"
    assert os.path.exists(PLAIN_BIN), "make builds relay/chat-relay"
    vg_log = tempfile.mkstemp(prefix="relay-valgrind-", suffix=".log")[1]
    r = relays("valgrind", wrap=["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                                 "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                                 "--log-file=" + vg_log])
    a, b, stranger = new_users(3)
    chat = open_chat(a, b)

    async def go():
        ca, cb, cb2 = await connect(r, a), await connect(r, b), await connect(r, b)
        for i in range(1, 6):
            await ca.ok("send", chat_id=chat, body="hi %d" % i)
        for c in (cb, cb2):
            assert (await c.event(is_msg(chat, 5)))["message"]["body"] == "hi 5"
        await cb.ok("history", chat_id=chat, page_size=10)
        await cb.ok("chats")
        await ca.ok("typing", chat_id=chat)
        await cb.ok("read", chat_id=chat, seq=5)
        sql("SELECT chat.send_message(%s, %s, %s)", (a, chat, "ж" * 4000))   # too large to inline
        assert (await cb.event(is_msg(chat, 6)))["inline"] is True
        cs = await connect(r, stranger)
        refused = await cs.request("send", chat_id=chat, body="not a member")
        assert refused["type"] == "error"
        await cb2.ws.send("not json")
        await cs.ws.close()
        await cb2.ws.close()
    run(go())
    assert r.stop() == 0, r.log()[-6000:]
    with open(vg_log) as f:
        report = f.read()
    os.unlink(vg_log)
    assert "ERROR SUMMARY: 0 errors" in report, report[-6000:]
    assert "HEAP SUMMARY" in report, report[-6000:]
    assert not re.search(r"(definitely|indirectly) lost: [1-9]", report), report[-6000:]
