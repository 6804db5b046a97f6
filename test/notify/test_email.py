"""Email digests end to end: real chat-notify processes (the ASan build),
test/notify/smtp_sink.py as the SMTP server, every received message parsed
with Python's own email package.

Time is faked, as the owner: make_due() moves chat.members.pending_since
(and emailed_at, chat.last_seen) an hour into the past, which is what
waiting the user's delay (10min by default) does; fast_forward() moves a
failed digest's retry (chat.email_state.next_at) to now."""
import base64
import email
import email.policy
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter

import pytest

from conftest import HERE, free_port, new_users, open_chat, send, sql, transaction, wait_until

SINK = os.path.join(HERE, "smtp_sink.py")
FROM = "digest@chat.example"


class Sink:
    """smtp_sink.py in its own process; its messages parsed."""

    def __init__(self, port=None, args=()):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="smtp-sink-")
        self.args = list(args)
        self.proc = None

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", SINK, "--listen", "127.0.0.1:%d" % self.port,
                                      "--dir", self.dir] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", line + self.proc.stdout.read()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def raw(self):
        """Every message as received (bytes), oldest first."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    out.append(f.read())
        return out

    def messages(self, to=None):
        msgs = [email.message_from_bytes(r, policy=email.policy.default) for r in self.raw()]
        return [m for m in msgs if to is None or m["To"] == to]


@pytest.fixture
def sinks():
    made = []

    def make(port=None, args=(), start=True):
        s = Sink(port, args)
        made.append(s)
        return s.start() if start else s
    yield make
    for s in made:
        s.stop()


@pytest.fixture(autouse=True)
def nothing_pending():
    """Earlier tests' users are not this test's business: nothing pending,
    no lease, so a daemon here mails only this test's users."""
    sql("UPDATE chat.members SET pending_since = NULL WHERE pending_since IS NOT NULL")
    sql("DELETE FROM chat.email_state")
    yield


def address(user):
    return "u%d@mail.example" % user


def wants_email(user, language="en", preview=True, mode="10min"):
    sql("SELECT chat.set_notify_prefs(%s, %s::jsonb)",
        (user, '{"email": "%s", "email_address": "%s", "language": "%s", "preview": %s}'
         % (mode, address(user), language, "true" if preview else "false")))


def make_due(users):
    """An hour later, as far as the digests of users can tell (the owner
    moves the clocks they read)."""
    sql("UPDATE chat.members SET pending_since = pending_since - interval '1 hour', "
        "emailed_at = emailed_at - interval '25 hours' WHERE user_id = ANY(%s)", (list(users),))
    sql("UPDATE chat.last_seen SET last_seen = last_seen - interval '1 hour' WHERE user_id = ANY(%s)", (list(users),))


def fast_forward(users):
    sql("UPDATE chat.email_state SET next_at = now() WHERE user_id = ANY(%s) AND worker IS NULL", (list(users),))


def state(user):
    rows = sql("SELECT attempt, message_id, last_error, sent, dropped, worker FROM chat.email_state WHERE user_id = %s",
               (user,))
    return dict(zip(("attempt", "message_id", "last_error", "sent", "dropped", "worker"), rows[0])) if rows else None


def parts(msg):
    """The text/plain and text/html parts, decoded."""
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return plain, html


def emailing(notifiers, sink, **opts):
    settings = {"smtp_url": sink.url if sink else "smtp://127.0.0.1:1", "smtp_from": FROM,
                "smtp_timeout": 5, "lease": 15, "webhook_timeout": 1}
    settings.update(opts)
    return notifiers(**settings)


def test_an_offline_user_gets_one_digest_of_two_chats(notifiers, sinks):
    sink = sinks()
    a1, b = new_users()
    (a2,) = new_users(1)
    wants_email(b)
    c1, c2 = open_chat(a1, b), open_chat(a2, b)
    send(a1, c1, "the kettle, still for sale?")
    send(a1, c1, "I can come today")
    s2 = send(a2, c2, "lunch at noon")
    make_due([b])
    n = emailing(notifiers, sink, unsubscribe_url="https://chat.example/unsubscribe?u={user_id}",
                 app_url="https://chat.example/c/{chat_id}")
    wait_until(lambda: sink.messages(address(b)), 15, "the digest")
    wait_until(lambda: (state(b) or {}).get("sent") == 1, 10, "the result reported")
    time.sleep(2.5)     # two polls later: still one
    msgs = sink.messages(address(b))
    assert len(msgs) == 1
    m = msgs[0]
    assert m["From"] == FROM and m["Subject"] == "New messages (3)"
    assert m["Message-ID"] == "<digest.u%d.c%d.s%s@chat.example>" % (b, c2, s2)    # the newest chat's
    assert m["List-Unsubscribe"] == "<https://chat.example/unsubscribe?u=%d>" % b
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert m["Auto-Submitted"] == "auto-generated" and m["MIME-Version"] == "1.0"
    assert m.get_content_type() == "multipart/alternative"
    assert abs(email.utils.parsedate_to_datetime(m["Date"]).timestamp() - time.time()) < 30
    assert m["X-Sink-Rcpt-To"] == address(b) and m["X-Sink-Mail-From"] == FROM
    plain, html = parts(m)
    for text in (plain, html):
        assert "the kettle, still for sale?" in text and "I can come today" in text and "lunch at noon" in text
        assert "https://chat.example/c/%d" % c1 in text and "https://chat.example/c/%d" % c2 in text
        assert "Chat with user %d" % a1 in text and "Unread: 2" in text and "Unread: 1" in text
    assert plain.index("lunch at noon") < plain.index("the kettle")     # newest chat first
    raw = sink.raw()[0]
    assert b"\r\n" in raw and all(len(line) <= 78 for line in raw.split(b"\r\n")
                                  if not line.startswith((b"List-Unsubscribe:", b"X-Sink-")))
    for part in m.walk():
        if not part.is_multipart():
            assert part.get_content_charset() == "utf-8" and part["Content-Transfer-Encoding"] == "base64"
    assert n.metric("chat_notify_emails_sent_total") == 1
    assert n.metric("chat_notify_emails_failed_total") == 0
    assert n.metric("chat_notify_email_enabled") == 1
    wait_until(lambda: n.metric("chat_notify_email_backlog") == 0, 5, "the backlog read")
    assert sql("SELECT count(*) FROM chat.members WHERE user_id = %s AND pending_since IS NOT NULL", (b,))[0][0] == 0
    assert address(b) not in n.log()


@pytest.mark.parametrize("language,subject,words", [
    ("ru", "Новые сообщения (1)", ["У вас есть непрочитанные сообщения.", "Чат с пользователем", "Непрочитанных: 1",
                                   "Отписаться"]),
    ("sr", "Nove poruke (1)", ["Imate nepročitane poruke.", "Razgovor sa korisnikom", "Nepročitanih: 1", "Odjavi se"]),
])
def test_the_digest_is_in_the_users_language(notifiers, sinks, language, subject, words):
    sink = sinks()
    a, b = new_users()
    wants_email(b, language=language)
    chat = open_chat(a, b)
    send(a, chat, "привет, здраво, ćao")
    make_due([b])
    emailing(notifiers, sink)
    (m,) = wait_until(lambda: sink.messages(address(b)), 15, "the digest")
    assert m["Subject"] == subject
    assert m["List-Unsubscribe"] == "<mailto:%s?subject=unsubscribe>" % FROM     # no unsubscribe_url
    assert "List-Unsubscribe-Post" not in m
    plain, html = parts(m)
    for text in (plain, html):
        assert "привет, здраво, ćao" in text
        for w in words:
            assert w in text, (w, text)
    assert '<html lang="%s">' % language in html
    assert b"=?UTF-8?B?" in sink.raw()[0] or language == "sr"    # a Subject not in ASCII is encoded


def test_an_unknown_language_gets_english(notifiers, sinks):
    sink = sinks()
    a, b = new_users()
    wants_email(b)
    sql("UPDATE chat.notify_prefs SET prefs = prefs || '{\"language\": \"xx\"}' WHERE user_id = %s", (b,))
    send(a, open_chat(a, b), "hello")
    make_due([b])
    emailing(notifiers, sink)
    (m,) = wait_until(lambda: sink.messages(address(b)), 15, "the digest")
    assert m["Subject"] == "New messages (1)"


def quiet(kind, a, b, chat):
    """Make b one who gets no digest, as kind says."""
    if kind == "read":
        seq = sql("SELECT last_seq FROM chat.chats WHERE chat_id = %s", (chat,))[0][0]
        sql("SELECT chat.mark_read(%s, %s, %s)", (b, chat, seq))
    elif kind == "online":
        sql("SELECT chat.presence_update('test-relay-email', %s, '{}')", ([b],))
    elif kind == "muted":
        sql("SELECT chat.set_muted(%s, %s, true)", (b, chat))
    elif kind == "blocked":
        sql("SELECT chat.block_user(%s, %s)", (b, a))


@pytest.mark.parametrize("kind", ["read", "online", "muted", "blocked"])
def test_no_digest_for_a_user_who_read_is_online_muted_or_blocked(notifiers, sinks, kind):
    """b reads in time / is online / muted the chat / blocked the sender:
    nothing; c, in the same state otherwise, gets one (the daemon worked)."""
    sink = sinks()
    a, b = new_users()
    (c,) = new_users(1)
    for u in (b, c):
        wants_email(u)
    cb, cc = open_chat(a, b), open_chat(a, c)
    send(a, cb, "to b")
    send(a, cc, "to c")
    quiet(kind, a, b, cb)
    make_due([b, c])
    try:
        emailing(notifiers, sink)
        wait_until(lambda: sink.messages(address(c)), 15, "c's digest")
        time.sleep(2.5)     # two more polls
        assert sink.messages(address(b)) == []
        assert state(b) is None
    finally:
        sql("SELECT chat.presence_update('test-relay-email', '{}', %s)", ([b],))


def test_preview_off_puts_no_message_text_in_the_mail(notifiers, sinks):
    sink = sinks()
    a, b = new_users()
    wants_email(b, preview=False)
    chat = open_chat(a, b)
    send(a, chat, "the secret plan, do not forward")
    make_due([b])
    emailing(notifiers, sink)
    (m,) = wait_until(lambda: sink.messages(address(b)), 15, "the digest")
    raw = sink.raw()[0]
    plain, html = parts(m)
    for hay in (raw, plain.encode(), html.encode(), base64.b64decode(b"".join(
            line for line in raw.split(b"\r\n") if line and b":" not in line and not line.startswith(b"--")) + b"==")):
        assert b"secret plan" not in hay
    assert "Unread: 1" in plain and "Unread: 1" in html


def test_message_text_is_escaped_in_the_html_part(notifiers, sinks):
    sink = sinks()
    a, b = new_users()
    wants_email(b)
    evil = "<script>alert('x')</script> & <img src=x onerror=alert(1)> \"q\""
    send(a, open_chat(a, b), evil)
    make_due([b])
    emailing(notifiers, sink)
    (m,) = wait_until(lambda: sink.messages(address(b)), 15, "the digest")
    plain, html = parts(m)
    assert evil in plain
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; &quot;q&quot;" in html


def test_a_rolled_back_send_emails_nothing(notifiers, sinks):
    sink = sinks()
    a, b = new_users()
    (c,) = new_users(1)
    for u in (b, c):
        wants_email(u)
    cb, cc = open_chat(a, b), open_chat(a, c)
    with transaction() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT chat.send_message(%s, %s, 'never sent')", (a, cb))
        conn.rollback()
    send(a, cc, "sent")
    make_due([b, c])
    emailing(notifiers, sink)
    wait_until(lambda: sink.messages(address(c)), 15, "c's digest")
    time.sleep(2.5)
    assert sink.messages(address(b)) == []
    assert all(b"never sent" not in r for r in sink.raw())


def due_users(n, **prefs):
    """n users, each with one due chat from a sender of their own."""
    users = new_users(2 * n)
    receivers_ = users[1::2]
    for a, b in zip(users[0::2], receivers_):
        wants_email(b, **prefs)
        send(a, open_chat(a, b), "hello %d" % b)
    make_due(receivers_)
    return receivers_


def mails_per_user(sink, users):
    got = Counter(m["To"] for m in sink.messages())
    return {u: got[address(u)] for u in users}


def test_two_daemons_send_each_user_one_digest(notifiers, sinks):
    sink = sinks()
    users = due_users(30)
    emailing(notifiers, sink, email_concurrency=3)
    emailing(notifiers, sink, email_concurrency=3)
    wait_until(lambda: all(mails_per_user(sink, users).values()), 40, "every digest")
    wait_until(lambda: sql("SELECT count(*) FROM chat.email_state WHERE user_id = ANY(%s) AND sent = 1",
                           (users,))[0][0] == 30, 10, "every result")
    time.sleep(2.5)
    ids = Counter(m["Message-ID"] for m in sink.messages())
    assert set(mails_per_user(sink, users).values()) == {1}
    assert set(ids.values()) == {1} and len(ids) == 30


def test_kill_9_mid_backlog_then_restart_mails_everyone(notifiers, sinks):
    """A slow relay (0.3 s a message) and 2 in flight: killed with some
    sent, the restarted daemon sends the rest once their leases end; only
    the ones in flight at the kill may come twice."""
    sink = sinks(args=["--delay", "0.3"])
    users = due_users(20)
    concurrency = 2
    n = emailing(notifiers, sink, email_concurrency=concurrency, smtp_timeout=4, lease=9)
    wait_until(lambda: len(sink.raw()) >= 4, 20, "some digests")
    n.kill9()
    sent_before = len(sink.raw())
    assert sent_before < 20
    emailing(notifiers, sink, email_concurrency=4, smtp_timeout=4, lease=9)

    def everyone():
        fast_forward(users)     # a slow exchange that timed out is retried at once
        return all(mails_per_user(sink, users).values())
    wait_until(everyone, 40, "every digest", interval=0.5)
    time.sleep(2)
    counts = mails_per_user(sink, users)
    assert min(counts.values()) >= 1
    twice = [u for u, k in counts.items() if k > 1]
    assert len(twice) <= concurrency and max(counts.values()) <= 2, counts


def test_smtp_down_then_up_delivers_after_the_retry(notifiers, sinks):
    sink = sinks(start=False)
    a, b = new_users()
    wants_email(b)
    chat = open_chat(a, b)
    seq = send(a, chat, "are you there?")
    make_due([b])
    n = emailing(notifiers, sink)
    wait_until(lambda: (state(b) or {}).get("last_error"), 15, "the failure reported")
    st = state(b)
    assert st["attempt"] == 1 and st["sent"] == 0 and st["worker"] is None
    assert st["last_error"].startswith("cannot connect"), st
    assert n.metric("chat_notify_emails_failed_total") >= 1
    wait_until(lambda: n.metric("chat_notify_emails_retried_total") == 1, 5, "the retry counted")
    sink.start()
    time.sleep(1.5)
    assert sink.raw() == []         # the retry waits its minute
    fast_forward([b])
    (m,) = wait_until(lambda: sink.messages(address(b)), 15, "the digest after the retry")
    assert m["Message-ID"] == "<digest.u%d.c%d.s%s@chat.example>" % (b, chat, seq)
    wait_until(lambda: state(b)["sent"] == 1, 10, "sent reported")
    assert state(b)["attempt"] == 0


def test_a_refused_recipient_and_a_timeout_are_not_sent(notifiers, sinks):
    """550 to RCPT TO: not sent, the code in the error, retried; a relay
    slower than smtp_timeout: not sent either (no answer within 1 s)."""
    sink = sinks(args=["--refuse-rcpt", "refused"])
    slow = sinks(args=["--delay", "4"])
    a, b = new_users()
    sql("SELECT chat.set_notify_prefs(%s, %s::jsonb)", (b, '{"email": "10min", "email_address": "refused@mail.example"}'))
    send(a, open_chat(a, b), "hello")
    make_due([b])
    n = emailing(notifiers, sink)
    wait_until(lambda: (state(b) or {}).get("last_error"), 15, "the failure reported")
    assert state(b)["last_error"].startswith("SMTP 550"), state(b)
    assert "refused@" not in state(b)["last_error"] and "refused@" not in n.log()
    assert sink.raw() == []
    assert n.metric("chat_notify_emails_failed_total") == 1
    n.stop()
    (c,) = new_users(1)
    wants_email(c)
    send(a, open_chat(a, c), "slowly")
    make_due([c])
    emailing(notifiers, slow, smtp_timeout=1, lease=6)
    wait_until(lambda: (state(c) or {}).get("last_error"), 15, "the timeout reported")
    assert state(c)["last_error"] == "no answer within 1 s" and state(c)["sent"] == 0, state(c)


def make_cert(folder):
    """A throwaway self-signed certificate for 127.0.0.1: (cert, key)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_sink(sinks, tmp_path):
    """A sink requiring STARTTLS and AUTH (user digest, a random password)."""
    cert, key = make_cert(str(tmp_path))
    password = base64.b32encode(os.urandom(15)).decode()
    pw_sink = tmp_path / "sink.pw"
    pw_sink.write_text(password + "\n")
    sink = sinks(args=["--tls-cert", cert, "--tls-key", key, "--require-tls",
                       "--auth-user", "digest", "--auth-password-file", str(pw_sink)])
    return sink, cert, password, tmp_path


def test_starttls_and_auth_deliver(notifiers, tls_sink):
    sink, cert, password, tmp = tls_sink
    pw = tmp / "notify.pw"
    pw.write_text(password + "\n")
    a, b = new_users()
    wants_email(b)
    send(a, open_chat(a, b), "over TLS")
    make_due([b])
    n = emailing(notifiers, sink, smtp_user="digest", smtp_password_file=str(pw), smtp_ca_file=cert,
                 smtp_require_tls="true", log_level="debug")
    (m,) = wait_until(lambda: sink.messages(address(b)), 15, "the digest")
    assert "over TLS" in parts(m)[0]
    assert password not in n.log()
    assert password not in n.http("/metrics")[1]


def test_a_wrong_password_is_not_sent_and_is_retried(notifiers, tls_sink):
    """Refused AUTH: not sent, the error recorded, retried; the right
    password (the file, SIGHUP) then delivers. No password in the log."""
    sink, cert, password, tmp = tls_sink
    pw = tmp / "notify.pw"
    pw.write_text("not-the-password\n")
    a, b = new_users()
    wants_email(b)
    send(a, open_chat(a, b), "let me in")
    make_due([b])
    n = emailing(notifiers, sink, smtp_user="digest", smtp_password_file=str(pw), smtp_ca_file=cert,
                 smtp_require_tls="true", log_level="debug")
    wait_until(lambda: (state(b) or {}).get("last_error"), 15, "the failure reported")
    assert "AUTH" in state(b)["last_error"] and state(b)["sent"] == 0, state(b)
    assert sink.raw() == []
    pw.write_text(password + "\n")
    n.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in n.log(), 5, "the reload")
    fast_forward([b])
    wait_until(lambda: sink.messages(address(b)), 15, "the digest with the right password")
    log = n.log()
    assert password not in log and "not-the-password" not in log
    assert address(b) not in log and "mail.example" in log    # the domain only


def test_without_smtp_url_the_channel_is_off(notifiers):
    n = notifiers()
    assert "email digests off" in n.log()
    assert n.metric("chat_notify_email_enabled") == 0
    assert n.metric("chat_notify_emails_sent_total") == 0


def test_require_tls_refuses_a_server_without_starttls(notifiers, sinks):
    sink = sinks()      # no --tls-cert: no STARTTLS offered
    a, b = new_users()
    wants_email(b)
    send(a, open_chat(a, b), "not in the clear")
    make_due([b])
    emailing(notifiers, sink, smtp_require_tls="true")
    wait_until(lambda: (state(b) or {}).get("last_error"), 15, "the failure reported")
    assert state(b)["last_error"] == "the server offers no STARTTLS (smtp_require_tls)", state(b)
    assert sink.raw() == []


def test_sighup_turns_the_channel_on(notifiers, sinks):
    sink = sinks()
    a, b = new_users()
    wants_email(b)
    send(a, open_chat(a, b), "after the reload")
    make_due([b])
    n = notifiers(webhook_timeout=1, lease=15)
    time.sleep(1.5)
    assert sink.raw() == [] and state(b) is None
    n.write_config(smtp_url=sink.url, smtp_from=FROM, smtp_timeout=5)
    n.signal(signal.SIGHUP)
    wait_until(lambda: sink.messages(address(b)), 15, "the digest after SIGHUP")
    assert "email on" in n.log()
    assert n.metric("chat_notify_email_enabled") == 1
