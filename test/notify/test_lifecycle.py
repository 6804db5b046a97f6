"""chat-notify as a process: --help, settings (file and flags, refusals),
SIGHUP, SIGTERM (the sends in flight finish and are reported, or are
stopped at shutdown_timeout and reported as failed; exit 0), /healthz and
/livez while the database is away."""
import signal
import subprocess
import time

from conftest import (NOTIFY_BIN, add_webhook, new_secret, new_users, open_chat, pending, send, sql,
                      wait_until)

OPTIONS = ["--config", "--db", "--listen", "--worker-id", "--poll-interval", "--claim-delay-ms",
           "--lease", "--webhook-timeout", "--webhook-concurrency", "--webhook-per-endpoint",
           "--max-response", "--webhook-proxy", "--shutdown-timeout", "--log-level",
           "--smtp-url", "--smtp-from", "--smtp-user", "--smtp-password-file", "--smtp-ca-file",
           "--smtp-require-tls", "--smtp-timeout", "--email-concurrency", "--unsubscribe-url", "--app-url"]


def run(*args, timeout=20):
    out = subprocess.run([NOTIFY_BIN] + list(args), capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


def test_help_lists_every_option_with_its_default():
    code, out = run("--help")
    assert code == 0
    lines = out.splitlines()
    for opt in OPTIONS:
        line = [ln for ln in lines if ln.strip().startswith(opt + " ") or ln.strip() == opt]
        assert line and "(default: " in line[0], (opt, out)
    assert "(empty: no email)" in [ln for ln in lines if ln.strip().startswith("--smtp-url ")][0]
    assert "(default: 30)" in [ln for ln in lines if ln.strip().startswith("--smtp-timeout ")][0]
    assert "(default: 4)" in [ln for ln in lines if ln.strip().startswith("--email-concurrency ")][0]
    assert "(default: 15)" in [ln for ln in lines if ln.strip().startswith("--webhook-timeout ")][0]


def test_bad_settings_are_refused_with_2():
    assert run("--lease", "10", "--webhook-timeout", "15")[0] == 2
    code, out = run("--lease", "10")
    assert code == 2 and "lease (10 s) must be at least webhook_timeout (15 s) + 5" in out, out
    code, out = run("--listen", "nowhere")
    assert code == 2 and 'listen must be HOST:PORT, not "nowhere"' in out
    code, out = run("--no-such-option", "1")
    assert code == 2 and "unknown option --no-such-option" in out
    code, out = run("--smtp-url", "smtp://127.0.0.1:1", "--smtp-from", "x@y", "--smtp-timeout", "60")
    assert code == 2 and "lease (60 s) must be at least smtp_timeout (60 s) + 5" in out, out
    code, out = run("--smtp-url", "smtp://127.0.0.1:1")
    assert code == 2 and "smtp_from must be an address" in out, out
    code, out = run("--smtp-url", "http://127.0.0.1:1", "--smtp-from", "x@y")
    assert code == 2 and "smtp_url must be smtp://" in out, out
    code, out = run("--smtp-url", "smtp://127.0.0.1:1", "--smtp-from", "x@y", "--smtp-password-file", "/nonexistent/pw")
    assert code == 2 and "cannot read smtp_password_file" in out, out
    code, out = run("--unsubscribe-url", "https://x.example/u?a=<b>")
    assert code == 2 and "unsubscribe_url must be a URL without spaces" in out, out
    code, out = run("--webhook-concurrency", "0")
    assert code == 2 and "webhook_concurrency must be an integer from 1 to 10000" in out


def test_flags_override_the_file_and_sighup_reloads(notifiers):
    n = notifiers(webhook_concurrency=5, args=["--webhook-concurrency", "7"])
    assert "webhooks 7 in flight" in n.log()
    n.write_config(webhook_per_endpoint=3, poll_interval=2)
    n.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded: webhook concurrency 7, 3 per endpoint" in n.log(), 5, "the reload")
    # all or nothing: a lease too short for the timeout keeps everything as it was
    n.write_config(lease=6, webhook_timeout=15, webhook_per_endpoint=5)
    n.signal(signal.SIGHUP)
    wait_until(lambda: "configuration not reloaded" in n.log(), 5, "the refused reload")
    assert "5 per endpoint" not in n.log()
    assert n.http("/healthz")[0] == 200


def test_sigterm_lets_the_sends_in_flight_finish(notifiers, receivers):
    secret = new_secret()
    r = receivers(secret, "slow:1.5")
    add_webhook(r.url, secret, ["message"])
    n = notifiers()
    a, b = new_users()
    send(a, open_chat(a, b), "in flight at SIGTERM")
    wait_until(lambda: r.count() == 1, 10, "the request under way")
    t0 = time.monotonic()
    assert n.stop() == 0
    assert time.monotonic() - t0 < 5
    assert pending() == 0           # answered, and reported before the exit
    assert "shutting down: 1 deliveries in flight" in n.log()


def test_sigterm_stops_a_hung_send_at_shutdown_timeout(notifiers, receivers):
    secret = new_secret()
    r = receivers(secret, "hang")
    add_webhook(r.url, secret, ["message"])
    n = notifiers(shutdown_timeout=1)
    a, b = new_users()
    send(a, open_chat(a, b), "hung at SIGTERM")
    wait_until(lambda: r.count() == 1, 10, "the request under way")
    t0 = time.monotonic()
    assert n.stop() == 0
    assert time.monotonic() - t0 < 6
    assert sql("SELECT attempts, last_status, last_error, leased_by FROM chat.webhook_deliveries") == \
        [(1, 0, "stopped by chat-notify's shutdown", None)]
    assert "stopping the 1 sends in flight" in n.log()


def test_healthz_says_503_while_the_database_is_away(notifiers):
    n = notifiers(wait=False, db="host=127.0.0.1 port=9 dbname=chat_test user=chat_notify connect_timeout=2")
    wait_until(lambda: n.http("/livez")[0] == 200, 20, "/livez")
    status, body = n.http("/healthz")
    assert status == 503 and '"database":"down"' in body, body
    assert n.metric("chat_notify_db_up") == 0
    assert n.http("/nothing")[0] == 404
