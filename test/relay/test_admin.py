"""The admin address (metrics_listen, relay/admin.c): /metrics, /healthz and
/livez on a listening socket of their own, nothing else there, and /metrics
off the main port (docs/security.md, "Connections and HTTP")."""
import json
import os
import socket

from conftest import ROOT, connect, free_port, jwt, new_users, run
from test_config import start
from test_lifecycle import read_response, upgrade_request

WWW = os.path.join(ROOT, "relay", "www")


def get(port, path, method="GET"):
    """(status, headers, body) of one request on a connection of its own."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % (method, path)).encode())
        status, headers, body = read_response(s)
    return int(status.split()[1]), headers, body


def test_metrics_are_served_on_the_admin_address_only(relays):
    admin = free_port()
    r = relays(metrics_listen="127.0.0.1:%d" % admin, www=WWW, dev_tokens=True)
    status, headers, body = get(admin, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    assert b"# TYPE chat_relay_connections gauge" in body
    assert get(r.port, "/metrics")[0] == 404
    # the checks of load balancers answer on both
    for port in (admin, r.port):
        status, _, body = get(port, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, _, body = get(port, "/livez")
        assert status == 200 and json.loads(body) == {"status": "alive"}
    assert get(admin, "/metrics", "POST")[0] == 405
    # the main port's files and development tokens are not served there
    assert get(r.port, "/")[0] == 200 and get(r.port, "/dev/token?user=1")[0] == 200
    for path in ("/", "/index.html", "/chat-client.js", "/dev/token?user=1", "/ws"):
        assert get(admin, path)[0] == 404, path
    assert r.metric("chat_relay_connections") == 0     # conftest reads the admin address


def test_no_websocket_on_the_admin_address(relays):
    admin = free_port()
    r = relays(metrics_listen="127.0.0.1:%d" % admin)
    (a,) = new_users(1)
    with socket.create_connection(("127.0.0.1", admin), timeout=5) as s:
        s.sendall(upgrade_request(jwt(a)))
        status, _, body = read_response(s)
    assert status.split()[1] == "404", status
    assert b"no WebSocket on the admin address" in body

    async def main_port_still_upgrades():
        cl = await connect(r, a)
        await cl.close()
    run(main_port_still_upgrades())
    assert r.metric("chat_relay_connections_opened_total") == 1


def test_without_metrics_listen_metrics_stay_on_the_main_port(relays):
    r = relays()
    status, headers, body = get(r.port, "/metrics")
    assert status == 200 and b"# TYPE chat_relay_connections gauge" in body


def test_a_bad_or_busy_metrics_address_is_refused():
    code, out = start("--metrics-listen", "nowhere")
    assert code == 2 and 'metrics_listen must be HOST:PORT, not "nowhere"' in out, out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, out = start("--metrics-listen", "127.0.0.1:%d" % port)
    assert code == 1, out
    assert "cannot listen on 127.0.0.1:%d (metrics_listen)" % port in out, out
