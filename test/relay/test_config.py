"""Configuration refused at start: exit 2, one error line that names the
setting and what it accepts, nothing listening (and, under ASan, no leak on
the way out, which would change the exit code). An address in use: exit 1."""
import os
import socket
import subprocess
import tempfile

from conftest import RELAY_BIN, SECRET, free_port


def start(*args):
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(SECRET + b"\n")
    try:
        port = free_port()
        p = subprocess.run([RELAY_BIN, "--listen", "127.0.0.1:%d" % port, "--jwt-secret-file", f.name,
                            "--allow-origin", "http://app.example", *args],
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr
    finally:
        os.unlink(f.name)


def test_unknown_event_loop_is_refused():
    code, out = start("--event-lib", "epoll")
    assert code == 2, out
    assert 'event_lib must be poll or libev, not "epoll"' in out


def test_out_of_range_and_malformed_values_are_refused():
    code, out = start("--rx-buffer", "64")
    assert code == 2 and 'rx_buffer must be an integer from 128 to 1048576, not "64"' in out, out
    code, out = start("--relay-id", "r" * 201)
    assert code == 2 and "relay_id must be at most 200 bytes long, not 201" in out, out
    code, out = start("--rate", "nan")
    assert code == 2 and 'rate must be a number' in out and '"nan"' in out, out
    code, out = start("--rate", "abc")
    assert code == 2 and 'rate must be a number' in out and '"abc"' in out, out
    code, out = start("--coalesce-ms", "0")
    assert code == 2 and 'coalesce_ms must be an integer from 1 to 1000, not "0"' in out, out
    code, out = start("--coalesce-rate", "-1")
    assert code == 2 and 'coalesce_rate must be an integer from 0 to 100000000, not "-1"' in out, out


def test_unknown_flag_is_refused():
    code, out = start("--no-such-flag")
    assert code == 2 and "unknown option --no-such-flag" in out, out


def test_help_lists_every_default():
    p = subprocess.run([RELAY_BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "--event-lib VALUE" in p.stdout and "(default: libev)" in p.stdout
    assert "--rx-buffer N" in p.stdout and "(default: 256)" in p.stdout
    assert "--metrics-listen VALUE" in p.stdout
    line = next(l for l in p.stdout.splitlines() if "--metrics-listen" in l)
    assert line.endswith("(default: none)"), line


def test_address_in_use_exits_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, out = start("--listen", "127.0.0.1:%d" % port)
    assert code == 1, out
    assert "cannot listen on 127.0.0.1:%d" % port in out, out


def test_unreadable_key_file_is_refused():
    code, out = start("--jwt-secret-file", "/nonexistent/secret")
    assert code == 2, out
    assert "/nonexistent/secret" in out, out
