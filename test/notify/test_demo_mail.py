"""make run's chat-notify (test/notify-demo.sh) on the test database: it
starts chat-notify and the SMTP sink, a due digest lands in the state
folder's mail/ as a file, hello says so, stop stops both."""
import os
import subprocess
import tempfile

from conftest import ROOT, free_port, new_users, open_chat, send, sql, wait_until
from test_email import address, make_due, wants_email

SCRIPT = os.path.join(ROOT, "test", "notify-demo.sh")


def script(*args, state):
    env = dict(os.environ, RUN_STATE=state)
    return subprocess.run([SCRIPT] + list(args), env=env, capture_output=True, text=True, timeout=60)


def test_make_runs_notify_mails_into_the_state_folder():
    state = tempfile.mkdtemp(prefix="notify-demo-")
    pgdir, pgport, db = os.environ["PGHOST"], os.environ["PGPORT"], os.environ.get("PGDATABASE", "chat_test")
    sql("UPDATE chat.members SET pending_since = NULL WHERE pending_since IS NOT NULL")
    sql("DELETE FROM chat.email_state")
    started = script("start", pgdir, pgport, db, str(free_port()), str(free_port()), state=state)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        hello = script("hello", state=state).stdout
        assert "mail from chat-notify lands in %s/mail/" % state in hello
        a, b = new_users()
        wants_email(b)
        send(a, open_chat(a, b), "from the demo")
        make_due([b])
        mail = os.path.join(state, "mail")
        wait_until(lambda: [n for n in os.listdir(mail) if n.endswith(".eml")], 20, "a mail file", interval=0.2)
        (name,) = [n for n in os.listdir(mail) if n.endswith(".eml")]
        with open(os.path.join(mail, name), "rb") as f:
            assert ("To: %s" % address(b)).encode() in f.read()
    finally:
        stopped = script("stop", state=state)
    assert stopped.returncode == 0 and "chat-notify stopped" in stopped.stdout and "SMTP sink stopped" in stopped.stdout
    assert not os.path.exists(os.path.join(state, "notify.pid"))
    log = open(os.path.join(state, "notify.log")).read()
    assert "email digests on" in log and "stopped" in log
