"""Static files (www) and development tokens (/dev/token): content types and
security headers, no way out of the folder (dot segments, encodings,
symlinks), GET only, large files whole; tokens off by default, HS256 only,
allowed origins only, and good for a WebSocket of that user."""
import base64
import http.client
import json
import os
import time

import pytest

from conftest import ORIGIN, SECRET, connect, new_users, run

SECRET_TEXT = b"TOP-SECRET-do-not-serve"


@pytest.fixture
def www(tmp_path):
    """A www folder next to a secret file, with links into and out of it."""
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside.txt").write_bytes(SECRET_TEXT)
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "x.txt").write_bytes(SECRET_TEXT)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.js").write_text("export const x = 1;\n")
    (root / "m.mjs").write_text("export default 2;\n")
    (root / "style.css").write_text("body{}\n")
    (root / "i.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "d.json").write_text("{}")
    (root / "f.ico").write_bytes(b"\0\0\1\0")
    (root / "m.webmanifest").write_text("{}")
    (root / "sub" / "index.html").write_text("sub index")
    (root / "sub" / "deep.js").write_text("//deep")
    (root / ".hidden.js").write_bytes(SECRET_TEXT)
    (root / "sub" / ".env.json").write_bytes(SECRET_TEXT)
    (root / "noext").write_bytes(SECRET_TEXT)
    (root / "unknown.exe").write_bytes(SECRET_TEXT)
    os.symlink(tmp_path / "outside.txt", root / "out.txt")
    os.symlink(tmp_path / "outdir", root / "outdir")
    os.symlink(root / "app.js", root / "alias.js")  # inside: fine
    (root / "big.js").write_bytes(b"/*" + b"x" * (700 * 1024) + b"*/\n")
    return root


def get(relay, path, method="GET", headers=None):
    """A raw request: the path goes out exactly as given."""
    c = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
    try:
        c.putrequest(method, path, skip_accept_encoding=True, skip_host="Host" in (headers or {}))
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        try:
            r = c.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None, {}, b""  # refused by closing (libwebsockets does so for %00)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


TYPES = {
    "/": "text/html; charset=utf-8",
    "/index.html": "text/html; charset=utf-8",
    "/app.js": "text/javascript; charset=utf-8",
    "/m.mjs": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
    "/i.svg": "image/svg+xml",
    "/p.png": "image/png",
    "/d.json": "application/json",
    "/f.ico": "image/x-icon",
    "/m.webmanifest": "application/manifest+json",
    "/sub/": "text/html; charset=utf-8",
    "/sub": "text/html; charset=utf-8",
    "/sub/deep.js": "text/javascript; charset=utf-8",
    "/alias.js": "text/javascript; charset=utf-8",
    "/app.js?v=3": "text/javascript; charset=utf-8",
}


def test_files_with_types_and_security_headers(relays, www):
    r = relays(www=str(www))
    for path, ctype in TYPES.items():
        status, h, body = get(r, path)
        assert status == 200, path
        assert h["content-type"] == ctype, path
        assert h["x-content-type-options"] == "nosniff"
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert int(h["content-length"]) == len(body)
    assert get(r, "/sub/")[2] == b"sub index"
    assert get(r, "/alias.js")[2] == b"export const x = 1;\n"
    # the relay's own endpoints are still there
    assert get(r, "/healthz")[0] == 200
    assert get(r, "/metrics")[0] == 200


ESCAPES = [
    "/../outside.txt", "/%2e%2e/outside.txt", "/%2E%2E/outside.txt", "/..%2foutside.txt",
    "/sub/../../outside.txt", "/sub/%2e%2e/%2e%2e/outside.txt", "/./../outside.txt",
    "/out.txt", "/outdir/x.txt", "/.hidden.js", "/sub/.env.json", "/%2ehidden.js",
    "/noext", "/unknown.exe", "/index.html%00.js", "/..\\outside.txt", "/%5c..%5coutside.txt",
    "//..//outside.txt", "/nope.js", "/sub/nope/", "/" + "a/" * 600 + "x.js",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_nothing_outside_the_folder(relays, www, path):
    r = relays(www=str(www))
    status, h, body = get(r, path)
    assert status in (None, 400, 403, 404, 414), (path, status)
    assert SECRET_TEXT not in body
    assert r.http("/healthz")[0] == 200, "still up"


def test_get_only_and_off_without_www(relays, www):
    r = relays(www=str(www))
    for m in ("POST", "PUT", "DELETE"):
        status, h, _ = get(r, "/index.html", method=m, headers={"Content-Length": "0"})
        assert status == 405, m
        assert h.get("allow") == "GET"
    plain = relays()
    assert get(plain, "/")[0] == 404
    assert get(plain, "/index.html")[0] == 404


def test_large_file_whole(relays, www):
    r = relays(www=str(www))
    status, h, body = get(r, "/big.js")
    assert status == 200
    assert body == (www / "big.js").read_bytes()


def test_the_demo_folder_is_served(relays):
    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "relay", "www")
    r = relays(www=demo)
    for path, ctype in [("/", "text/html"), ("/chat-client.js", "text/javascript"), ("/app.js", "text/javascript"),
                        ("/style.css", "text/css"), ("/users.json", "application/json"),
                        ("/manifest.webmanifest", "application/manifest+json"), ("/favicon.svg", "image/svg+xml"),
                        ("/sw.js", "text/javascript")]:
        status, h, body = get(r, path)
        assert status == 200 and h["content-type"].startswith(ctype), path
    # the service worker: a script type is all a registration needs (at the
    # top of the folder its scope is the whole app: no Service-Worker-Allowed)
    status, h, body = get(r, "/sw.js")
    assert h["content-type"] == "text/javascript; charset=utf-8" and b"addEventListener('push'" in body
    # the page loads scripts from files only: nothing inline for the CSP to allow
    html = get(r, "/")[2].decode()
    assert '<script type="module" src="app.js"></script>' in html
    assert "<script>" not in html and "onclick=" not in html and "style=" not in html


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_dev_tokens_off_by_default(relays):
    r = relays()
    status, h, body = get(r, "/dev/token?user=5")
    assert status == 403
    assert "token" not in json.loads(body)
    assert h["cache-control"] == "no-store"


def test_dev_tokens_sign_for_a_user(relays):
    u = new_users(1)[0]
    r = relays(dev_tokens=True, dev_token_ttl=120, jwt_issuer="https://dev.example", jwt_audience="chat")
    status, h, body = get(r, "/dev/token?user=%d" % u, headers={"Origin": ORIGIN})
    assert status == 200
    assert h["content-type"] == "application/json" and h["cache-control"] == "no-store"
    answer = json.loads(body)
    c = claims(answer["token"])
    assert c["sub"] == str(u) and answer["user_id"] == u
    assert c["iss"] == "https://dev.example" and c["aud"] == "chat"
    assert abs(c["exp"] - time.time() - 120) < 10 and answer["expires_at"] == c["exp"]
    # it is what jwt() would make with the same secret and claims
    head, payload, sig = answer["token"].split(".")
    import hashlib
    import hmac
    expect = base64.urlsafe_b64encode(hmac.new(SECRET, (head + "." + payload).encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert sig.encode() == expect

    async def go():
        cl = await connect(r, u, token=answer["token"])
        assert cl.welcome["user_id"] == u
        await cl.close()
    run(go())
    assert answer["token"] not in r.log(), "tokens are never logged"


@pytest.mark.parametrize("query,status", [
    ("", 400), ("?user=", 400), ("?user=0", 400), ("?user=-3", 400), ("?user=abc", 400),
    ("?user=1e3", 400), ("?user=99999999999999999999", 400), ("?user=12x", 400),
])
def test_dev_tokens_refuse_bad_user(relays, query, status):
    r = relays(dev_tokens=True)
    assert get(r, "/dev/token" + query)[0] == status


def test_dev_tokens_refuse_other_origins_and_methods(relays):
    r = relays(dev_tokens=True)
    assert get(r, "/dev/token?user=1", headers={"Origin": "http://evil.example"})[0] == 403
    assert get(r, "/dev/token?user=1", method="POST", headers={"Content-Length": "0"})[0] == 405
    assert get(r, "/dev/token?user=1")[0] == 200  # no Origin: curl, scripts


def test_dev_tokens_check_host_against_dns_rebinding(relays):
    """A page of a name that resolves to the relay (DNS rebinding) fetches
    same-origin: no Origin, its own name as Host. Before, it got a token."""
    r = relays(dev_tokens=True)
    assert get(r, "/dev/token?user=1", headers={"Host": "evil.example:%d" % r.port})[0] == 403
    assert get(r, "/dev/token?user=1", headers={"Host": "127.0.0.1.evil.example"})[0] == 403
    assert get(r, "/dev/token?user=1", headers={"Host": "localhost:%d" % r.port})[0] == 200
    assert get(r, "/dev/token?user=1", headers={"Host": "[::1]:%d" % r.port})[0] == 200
    assert get(r, "/dev/token?user=1", headers={"Host": "app.example"})[0] == 200  # the allowed origin's host


def test_dev_tokens_need_hs256(relays):
    from test_security import RSA_KEY, key_file
    base = relays("probe-rs")
    rs = relays(jwt_alg="RS256", jwt_secret_file=None, jwt_public_key_file=key_file(base.dir, "rsa.pem", RSA_KEY),
                dev_tokens=True)
    assert get(rs, "/dev/token?user=1")[0] == 501


def test_dev_tokens_reload_with_sighup(relays):
    import signal
    r = relays()
    assert get(r, "/dev/token?user=1")[0] == 403
    r.write_config(dev_tokens=True)
    r.signal(signal.SIGHUP)
    from conftest import wait_until
    wait_until(lambda: get(r, "/dev/token?user=1")[0] == 200, 10, what="dev tokens on after SIGHUP")
