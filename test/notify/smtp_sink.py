#!/usr/bin/python3
"""A real SMTP server (aiosmtpd, Debian python3-aiosmtpd) that keeps every
message it accepts as a file: the receiving end of chat-notify's email, for
the tests and for `make run` (mail lands in .run/mail/).

  smtp_sink.py --listen 127.0.0.1:2525 --dir DIR
               [--tls-cert PEM --tls-key PEM]   offer STARTTLS
               [--require-tls]                  refuse mail before STARTTLS
               [--auth-user NAME --auth-password-file FILE]  require AUTH
               [--delay SECONDS]                wait before accepting each message
               [--refuse-rcpt TEXT]             550 to a recipient holding TEXT

Each message is DIR/NNNNNN.eml (the bytes as received, with the envelope in
X-Sink-Mail-From / X-Sink-Rcpt-To headers in front), written to a temporary
name and renamed, so a reader never sees half a message. Prints "ready" on
stdout once it listens; SIGTERM or SIGINT stops it.
"""
import argparse
import asyncio
import itertools
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Keep:
    """Writes each accepted message into the folder."""

    def __init__(self, folder, delay=0.0, refuse=None):
        self.folder = folder
        self.delay = delay
        self.refuse = refuse
        os.makedirs(folder, exist_ok=True)
        taken = [int(n[:6]) for n in os.listdir(folder) if n[:6].isdigit()]
        self.numbers = itertools.count(max(taken, default=0) + 1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and self.refuse in address:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)     # a slow relay: the tests' backlog
        head = "X-Sink-Mail-From: %s\r\nX-Sink-Rcpt-To: %s\r\n" % (
            envelope.mail_from, ", ".join(envelope.rcpt_tos))
        with self.lock:
            n = next(self.numbers)
        path = os.path.join(self.folder, "%06d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        # handled=False: aiosmtpd answers 535 itself (True would leave the client waiting)
        return AuthResult(success=ok, handled=False)
    return check


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default="127.0.0.1:2525")
    p.add_argument("--dir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password-file")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--refuse-rcpt")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    kw = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        kw.update(tls_context=ctx, require_starttls=a.require_tls)
    if a.auth_user:
        with open(a.auth_password_file) as f:
            password = f.read().strip()
        kw.update(authenticator=authenticator(a.auth_user, password), auth_required=True,
                  auth_require_tls=bool(a.tls_cert))
    controller = Controller(Keep(a.dir, a.delay, a.refuse_rcpt), hostname=host, port=int(port), **kw)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
