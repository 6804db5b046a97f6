"""What deploy/ ships (docs/deploying.md): the systemd units pass
`systemd-analyze verify` (and a broken unit does not: the check can fail),
the sample configs start both daemons with only the host's own paths and
addresses changed, and `make install-daemons` puts everything where the
units expect it."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import ROOT, conninfo, free_port, sql, wait_until

DEPLOY = os.path.join(ROOT, "deploy")
RELAY = os.path.join(ROOT, "relay", "chat-relay")
NOTIFY = os.path.join(ROOT, "relay", "chat-notify")


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="deploy-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def verify(unit_text, tmp, name):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(unit_text)
    return subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)


def unit(name, binary, config):
    with open(os.path.join(DEPLOY, name)) as f:
        text = f.read()
    return text.replace("/usr/local/bin/" + os.path.basename(binary), binary).replace(
        "/etc/chat/%s" % os.path.basename(config).replace(".sample", ""), config)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd here")
def test_the_units_verify(tmp):
    for name, binary, config in (("chat-relay.service", RELAY, "relay.conf.sample"),
                                 ("chat-notify.service", NOTIFY, "notify.conf.sample")):
        out = verify(unit(name, binary, os.path.join(DEPLOY, config)), tmp, name)
        assert out.returncode == 0 and name not in out.stderr, out.stderr
        text = open(os.path.join(DEPLOY, name)).read()
        assert "Restart=on-failure" in text and "RestartPreventExitStatus=2" in text
        assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    # negative control: an unknown key and a missing binary are reported
    bad = unit("chat-relay.service", "/nonexistent/chat-relay", os.path.join(DEPLOY, "relay.conf.sample"))
    out = verify(bad.replace("[Service]", "[Service]\nRestartt=always"), tmp, "broken.service")
    assert out.returncode != 0 and "Restartt" in out.stderr


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status
    except OSError:
        return None


def run_until_healthy(args, port, tmp, name):
    log = open(os.path.join(tmp, name + ".log"), "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is not None or get(port, "/healthz") == 200, 20,
                   what="%s healthy" % name)
        assert proc.poll() is None, open(log.name).read()
        assert get(port, "/livez") == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, open(log.name).read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def notify_login():
    """chat_notify may log in for the test (NOLOGIN again after, as the extension makes it)."""
    sql("ALTER ROLE chat_notify LOGIN")
    yield conninfo("chat_notify")
    sql("ALTER ROLE chat_notify NOLOGIN")


def test_the_sample_configs_start_both_daemons(tmp, notify_login):
    key = os.path.join(tmp, "jwt.pem")
    pub = os.path.join(tmp, "jwt-public.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    admin = free_port()
    run_until_healthy([RELAY, "--config", os.path.join(DEPLOY, "relay.conf.sample"),
                       "--listen", "127.0.0.1:%d" % free_port(), "--metrics-listen", "127.0.0.1:%d" % admin,
                       "--db", conninfo(), "--jwt-public-key-file", pub,
                       "--relay-id", "deploy-test-%d" % os.getpid()], admin, tmp, "relay")
    port = free_port()
    run_until_healthy([NOTIFY, "--config", os.path.join(DEPLOY, "notify.conf.sample"),
                       "--listen", "127.0.0.1:%d" % port, "--db", notify_login,
                       "--worker-id", "deploy-test-%d" % os.getpid()], port, tmp, "notify")


def test_make_install_daemons_stages_everything(tmp):
    dest = os.path.join(tmp, "root")
    subprocess.run(["make", "-s", "-C", ROOT, "install-daemons", "DESTDIR=" + dest, "PREFIX=/opt/chat"],
                   check=True, capture_output=True, timeout=300)
    for path in ("opt/chat/bin/chat-relay", "opt/chat/bin/chat-notify", "etc/chat/relay.conf.sample",
                 "etc/chat/notify.conf.sample", "opt/chat/share/doc/chat/deploying.md"):
        assert os.path.exists(os.path.join(dest, path)), path
    assert os.access(os.path.join(dest, "opt/chat/bin/chat-relay"), os.X_OK)
    relay_unit = open(os.path.join(dest, "etc/systemd/system/chat-relay.service")).read()
    assert "ExecStart=/opt/chat/bin/chat-relay --config /etc/chat/relay.conf" in relay_unit
    assert "/usr/local" not in relay_unit
