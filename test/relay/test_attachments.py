"""The attachment requests: `upload` (chat.attachment_upload) and
`attachment_url` (chat.attachment_url), with the user id from the token
only, their validation and their error codes. Nothing is uploaded: the
object store is a dummy endpoint, the URLs are only signed."""
import json

import pytest

from conftest import connect, new_users, open_chat, run, sql

STORAGE = {
    "endpoint": "http://127.0.0.1:9",
    "public_endpoint": None,
    "bucket": "chat-relay-test",
    "region": "us-east-1",
    "access_key": "relay-test-access",
    "secret_key": "relay-test-secret-0123456789",
}


def _saved_storage():
    return sql("SELECT to_jsonb(c) - 'singleton' FROM chat.storage_config c WHERE singleton")[0][0]


def _restore(saved):
    sql("SELECT chat.configure_storage(%s)", (json.dumps(saved),))


@pytest.fixture
def storage():
    """Object storage configured (as the superuser who owns the extension),
    restored afterwards."""
    saved = _saved_storage()
    sql("SELECT chat.configure_storage(%s)", (json.dumps(STORAGE),))
    yield
    _restore(saved)


@pytest.fixture
def no_storage():
    """No object store configured, restored afterwards."""
    saved = _saved_storage()
    sql("SELECT chat.configure_storage(%s)",
        (json.dumps({"endpoint": None, "public_endpoint": None, "bucket": None,
                     "access_key": None, "secret_key": None}),))
    yield
    _restore(saved)


def upload_params(chat_id, **kw):
    p = dict(chat_id=chat_id, file_name="kettle.jpg", content_type="image/jpeg", size=48213)
    p.update(kw)
    return p


def test_member_uploads_and_sends_non_member_is_forbidden(relays, storage):
    r = relays()
    a, b, c = new_users(3)
    chat_id = open_chat(a, b)

    async def go():
        ca = await connect(r, a)
        cb = await connect(r, b)
        cc = await connect(r, c)
        up = await ca.ok("upload", **upload_params(chat_id, file_name="C:\\fakepath\\kettle.JPG",
                                                   content_type="Image/JPEG"))
        assert isinstance(up["attachment_id"], int)
        assert up["method"] == "PUT"
        assert up["url"].startswith("http://127.0.0.1:9/chat-relay-test/chat/%d/" % chat_id)
        assert "X-Amz-Signature=" in up["url"]
        assert up["headers"]["Content-Type"] == "image/jpeg"
        assert up["name"] == "kettle.JPG" and up["size"] == 48213 and up["kind"] == "image"
        # the uploader may get a URL of the pending upload; nobody else
        url = await ca.ok("attachment_url", attachment_id=up["attachment_id"])
        assert isinstance(url, str) and "X-Amz-Signature=" in url
        for cl in (cb, cc):
            m = await cl.request("attachment_url", attachment_id=up["attachment_id"])
            assert m["type"] == "error" and m["code"] == "forbidden", m

        # a non-member cannot upload to the chat (nor to one that does not exist)
        for cid in (chat_id, 2 ** 62):
            m = await cc.request("upload", **upload_params(cid))
            assert m["type"] == "error" and m["code"] == "forbidden", m

        # sent with the message, every member gets URLs; a non-member does not
        msg = await ca.ok("send", chat_id=chat_id, body="a kettle", attachment_ids=[up["attachment_id"]])
        assert [f["id"] for f in msg["attachments"]] == [up["attachment_id"]]
        for cl in (ca, cb):
            url = await cl.ok("attachment_url", attachment_id=up["attachment_id"], inline=True, expires_s=60)
            assert url.startswith("http://127.0.0.1:9/chat-relay-test/chat/%d/" % chat_id), url
            assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
            assert "inline" in url
        url = await cb.ok("attachment_url", attachment_id=up["attachment_id"])
        assert "X-Amz-Expires=900" in url and "attachment%3B" in url
        m = await cc.request("attachment_url", attachment_id=up["attachment_id"])
        assert m["type"] == "error" and m["code"] == "forbidden", m
        m = await cc.request("attachment_url", attachment_id=2 ** 62)
        assert m["type"] == "error" and m["code"] == "forbidden", m
        for cl in (ca, cb, cc):
            await cl.close()
    run(go())


def test_user_id_comes_from_the_token(relays, storage):
    r = relays()
    a, b, c = new_users(3)
    chat_id = open_chat(a, b)

    async def go():
        cc = await connect(r, c)
        m = await cc.request("upload", user_id=a, **upload_params(chat_id))
        assert m["type"] == "error" and m["code"] == "forbidden", m
        await cc.close()
    run(go())
    assert sql("SELECT count(*) FROM chat.attachments WHERE chat_id = %s", (chat_id,))[0][0] == 0


BAD_UPLOADS = {
    "no chat_id": ({"chat_id": None}, "chat_id is required"),
    "chat_id a string": ({"chat_id": "1"}, "chat_id must be an integer"),
    "no file_name": ({"file_name": None}, "file_name is required"),
    "file_name a number": ({"file_name": 5}, "file_name must be a string"),
    "file_name too long": ({"file_name": "x" * 2000}, "file_name is too long"),
    "no content_type": ({"content_type": None}, "content_type is required"),
    "no size": ({"size": None}, "size is required"),
    "size a float": ({"size": 1.5}, "size must be an integer"),
    "size zero": ({"size": 0}, "size must be positive"),
    "size too large": ({"size": 10 ** 12}, "too large"),
    "empty file_name": ({"file_name": ""}, "file_name must not be empty"),
    "type not allowed": ({"content_type": "image/svg+xml"}, "is not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_upload_parameters_are_invalid(relays, storage, case):
    r = relays()
    a, b = new_users(2)
    chat_id = open_chat(a, b)
    change, text = BAD_UPLOADS[case]

    async def go():
        ca = await connect(r, a)
        params = upload_params(chat_id)
        for k, v in change.items():
            if v is None:
                del params[k]
            else:
                params[k] = v
        m = await ca.request("upload", **params)
        assert m["type"] == "error" and m["code"] == "invalid", m
        assert text in m["message"], m
        assert (await ca.ok("ping")) == "pong"
        await ca.close()
    run(go())


BAD_URLS = {
    "no attachment_id": ({}, "attachment_id is required"),
    "attachment_id a string": ({"attachment_id": "1"}, "attachment_id must be an integer"),
    "inline a string": ({"attachment_id": 1, "inline": "yes"}, "inline must be true or false"),
    "expires_s a string": ({"attachment_id": 1, "expires_s": "60"}, "expires_s must be an integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_URLS))
def test_bad_attachment_url_parameters_are_invalid(relays, storage, case):
    r = relays()
    a = new_users(1)[0]
    params, text = BAD_URLS[case]

    async def go():
        ca = await connect(r, a)
        m = await ca.request("attachment_url", **params)
        assert m["type"] == "error" and m["code"] == "invalid", m
        assert text in m["message"], m
        await ca.close()
    run(go())


def test_attachment_url_lifetime_out_of_range_is_invalid(relays, storage):
    r = relays()
    a, b = new_users(2)
    chat_id = open_chat(a, b)

    async def go():
        ca = await connect(r, a)
        up = await ca.ok("upload", **upload_params(chat_id))
        await ca.ok("send", chat_id=chat_id, body="", attachment_ids=[up["attachment_id"]])
        for expires in (0, 10 ** 7, 2 ** 40):
            m = await ca.request("attachment_url", attachment_id=up["attachment_id"], expires_s=expires)
            assert m["type"] == "error" and m["code"] == "invalid", (expires, m)
        await ca.close()
    run(go())


def test_too_many_pending_uploads_is_rate_limited(relays, storage):
    r = relays()
    a, b = new_users(2)
    chat_id = open_chat(a, b)
    sql("SELECT chat.configure_storage('{\"max_pending_uploads\": 2}')")

    async def go():
        ca = await connect(r, a)
        for _ in range(2):
            await ca.ok("upload", **upload_params(chat_id))
        m = await ca.request("upload", **upload_params(chat_id))
        assert m["type"] == "error" and m["code"] == "rate_limited", m
        assert "too many pending uploads" in m["message"]
        await ca.close()
    run(go())


def test_without_an_object_store_the_answer_is_unavailable(relays, no_storage):
    """SQLSTATE 55000: the contract's closed set of codes has unavailable,
    and the message says it is the configuration."""
    r = relays()
    a, b = new_users(2)
    chat_id = open_chat(a, b)

    async def go():
        ca = await connect(r, a)
        m = await ca.request("upload", **upload_params(chat_id))
        assert m["type"] == "error" and m["code"] == "unavailable", m
        assert "object storage is not configured" in m["message"]
        m = await ca.request("attachment_url", attachment_id=1)
        assert m["type"] == "error" and m["code"] == "unavailable", m
        assert "object storage is not configured" in m["message"]
        assert (await ca.ok("ping")) == "pong"
        await ca.close()
    run(go())
    assert "SQLSTATE" not in r.log()
