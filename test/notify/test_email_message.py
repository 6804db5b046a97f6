"""The email message builder (relay/notify/email_message.c) alone, under
ASan/UBSan (relay/notify/test/email_message_test.c): claims the database
would not easily make (attachments, long or hostile text, bad addresses),
each message parsed with Python's email package."""
import copy
import email
import email.policy
import json
import os
import subprocess

import pytest

from conftest import ROOT

EMAIL_TEST = os.path.join(ROOT, "relay", "build", "notify-email-test")
FROM = "digest@chat.example"


@pytest.fixture(scope="module", autouse=True)
def build():
    subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "relay"), "email-test"], check=True,
                   stdout=subprocess.DEVNULL)


def claim(language="en", preview=True, messages=None, **over):
    c = {"user_id": 5, "email_address": "buyer@mail.example", "language": language, "preview": preview,
         "message_id": "digest.u5.c7.s3", "attempt": 1,
         "chats": [{"chat_id": 7, "kind": "direct", "context_id": None, "peer_id": 9, "unread": 2, "up_to_seq": 3,
                    "messages": messages if messages is not None else [
                        {"seq": 2, "sender_id": 9, "created_at": "2026-12-08T00:00:00Z", "attachments": 1},
                        {"seq": 3, "sender_id": 9, "created_at": "2026-12-08T00:00:01Z", "attachments": 0,
                         "body": "hello"}]}]}
    c.update(over)
    return c


def build_mail(c, unsubscribe="", app=""):
    """(exit code, raw bytes)."""
    p = subprocess.run([EMAIL_TEST, FROM, unsubscribe, app], input=json.dumps(c).encode(), capture_output=True,
                       timeout=30)
    assert b"runtime error" not in p.stderr and b"AddressSanitizer" not in p.stderr, p.stderr
    return p.returncode, p.stdout


def parsed(c, **kw):
    code, raw = build_mail(c, **kw)
    assert code == 0, raw
    m = email.message_from_bytes(raw, policy=email.policy.default)
    return m, raw, m.get_body(("plain",)).get_content(), m.get_body(("html",)).get_content()


@pytest.mark.parametrize("language,word", [("en", "[attachment]"), ("ru", "[вложение]"), ("sr", "[prilog]"),
                                           ("de", "[attachment]")])
def test_an_attachment_only_message_says_so(language, word):
    m, raw, plain, html = parsed(claim(language))
    assert plain.count(word) == 1 and html.count(word) == 1
    assert "hello" in plain


def test_text_with_an_attachment_has_both():
    _, _, plain, _ = parsed(claim(messages=[{"seq": 3, "sender_id": 9, "attachments": 2, "body": "the photo"}]))
    assert "User 9: the photo [attachment]" in plain


def test_preview_off_shows_no_text_even_if_a_body_came():
    _, raw, plain, html = parsed(claim(preview=False))
    assert "hello" not in plain and "hello" not in html and b"hello" not in raw
    assert "Unread: 2" in plain


def test_long_text_is_cut_at_a_character():
    body = "ж" * 400            # 800 bytes, two a character
    _, _, plain, html = parsed(claim(messages=[{"seq": 3, "sender_id": 9, "attachments": 0, "body": body}]))
    line = [ln for ln in plain.splitlines() if "ж" in ln][0]
    assert line.endswith("ж…") and line.count("ж") == 150


def test_controls_and_bare_cr_never_reach_the_parts():
    body = "a\rb\x1bc\x7fd\nsecond line"    # no NUL: jsonb cannot hold one
    _, raw, plain, html = parsed(claim(messages=[{"seq": 3, "sender_id": 9, "attachments": 0, "body": body}]))
    assert "a b c d" in plain and "second line" in plain
    assert "a b c d<br>" in html
    assert b"\r\r" not in raw and all(b"\r" not in ln for ln in raw.split(b"\r\n"))


def test_every_line_fits_and_ends_crlf():
    c = claim("ru")
    c["chats"] = [copy.deepcopy(c["chats"][0]) for _ in range(5)]
    for i, ch in enumerate(c["chats"]):
        ch["chat_id"] = i + 1
        ch["messages"][1]["body"] = "Длинное сообщение без переносов строк " * 20
    _, raw, plain, _ = parsed(c, app="https://chat.example/c/{chat_id}?again={chat_id}")
    lines = raw.split(b"\r\n")
    assert all(b"\n" not in ln for ln in lines)
    assert all(len(ln) <= 78 for ln in lines), max(lines, key=len)
    assert "https://chat.example/c/3?again=3" in plain


def test_unsubscribe_forms():
    m, _, plain, html = parsed(claim(), unsubscribe="https://chat.example/u?id={user_id}")
    assert m["List-Unsubscribe"] == "<https://chat.example/u?id=5>"
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://chat.example/u?id=5" in plain and 'href="https://chat.example/u?id=5"' in html
    m, _, _, _ = parsed(claim(), unsubscribe="http://chat.example/u/{user_id}")
    assert m["List-Unsubscribe"] == "<http://chat.example/u/5>" and "List-Unsubscribe-Post" not in m
    m, _, _, _ = parsed(claim())
    assert m["List-Unsubscribe"] == "<mailto:%s?subject=unsubscribe>" % FROM


def test_headers():
    m, raw, _, _ = parsed(claim("ru"))
    assert m["Subject"] == "Новые сообщения (2)"
    assert m["Date"] == "Mon, 08 Dec 2025 00:00:00 +0000"
    assert m["Message-ID"] == "<digest.u5.c7.s3@chat.example>"
    assert m["Auto-Submitted"] == "auto-generated"
    assert raw.isascii()


def test_links_are_escaped_in_html():
    _, _, _, html = parsed(claim(), app='https://chat.example/c/{chat_id}?a=1&b="x"')
    assert 'href="https://chat.example/c/7?a=1&amp;b=&quot;x&quot;"' in html


@pytest.mark.parametrize("field,value", [
    ("email_address", "buyer@mail.example\r\nBcc: all@example.org"),
    ("email_address", "no-at-sign"),
    ("email_address", "a@b>, c@d"),
    ("message_id", "digest.u5>\r\nX-Evil: 1"),
    ("message_id", ""),
])
def test_a_claim_that_could_break_a_header_makes_no_message(field, value):
    code, out = build_mail(claim(**{field: value}))
    assert code == 1 and out.startswith(b"error: "), out
