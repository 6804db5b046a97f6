"""history and catch_up load a page's attachments with one query (counted
with auto_explain's log of nested statements), and the secret key stays out
of the server log."""
import json
import os
import tempfile
import uuid

import psycopg2
import pytest

from conftest import one

pytestmark = pytest.mark.usefixtures('storage')

ATTACHMENT_QUERY = 'Query Text: SELECT message_seq, attachment_id, file_name, content_type, size FROM chat.attachments'
SERVER_LOG = os.path.join(os.environ.get('PGDATA_DIR', ''), 'server.log')


def logged_during(action):
    """Server log lines written while action() ran."""
    start = os.path.getsize(SERVER_LOG)
    action()
    with open(SERVER_LOG, 'rb') as f:
        f.seek(start)
        return f.read().decode('utf-8', 'replace')


@pytest.fixture(scope='module')
def page_chat(db):
    """A chat with 50 messages of 2 attachments each, then 50 without."""
    one(db, 'SELECT chat.configure_storage(%s) IS NOT NULL', json.dumps({
        'endpoint': 'http://127.0.0.1:9', 'bucket': 'reads', 'access_key': 'AK', 'secret_key': 'SK'}))
    # a new chat on every run: a listing id nothing else uses
    chat = one(db, "SELECT chat.open_chat(3201, 'listing', %s, 3202)", uuid.uuid4().int % 10**15 + 10**15)
    with db.cursor() as cur:
        for i in range(50):
            ids = []
            for j in range(2):
                cur.execute("SELECT chat.attachment_upload(3201, %s, %s, 'image/jpeg', 1000) ->> 'attachment_id'",
                            (chat, f'p{i}-{j}.jpg'))
                ids.append(int(cur.fetchone()[0]))
            cur.execute("SELECT chat.send_message(3201, %s, %s, NULL, %s::bigint[]) IS NOT NULL",
                        (chat, f'with {i}', ids))
        for i in range(50):
            cur.execute("SELECT chat.send_message(3202, %s, %s) IS NOT NULL", (chat, f'plain {i}'))
    return chat


def explained(sql, *args):
    """Run sql in a fresh session with auto_explain logging every nested
    statement; return the server log written meanwhile."""
    conn = psycopg2.connect('')
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("LOAD 'auto_explain'")
            cur.execute("SET auto_explain.log_min_duration = 0")
            cur.execute("SET auto_explain.log_nested_statements = on")
            result = []
            log = logged_during(lambda: (cur.execute(sql, args), result.extend(cur.fetchall())))
        return result, log
    finally:
        conn.close()


def test_history_page_with_attachments_is_one_query(page_chat):
    rows, log = explained('SELECT h FROM chat.history(3202, %s, 51, 50) h', page_chat)
    assert len(rows) == 50
    assert sum(len(r[0]['attachments']) for r in rows) == 100
    assert [a['name'] for a in rows[0][0]['attachments']] == ['p49-0.jpg', 'p49-1.jpg']
    assert log.count(ATTACHMENT_QUERY) == 1


def test_history_page_without_attachments_asks_nothing(page_chat):
    rows, log = explained('SELECT h FROM chat.history(3202, %s, NULL, 50) h', page_chat)
    assert len(rows) == 50 and all(r[0]['attachments'] == [] for r in rows)
    assert log.count(ATTACHMENT_QUERY) == 0


def test_catch_up_page_is_one_query(page_chat):
    rows, log = explained('SELECT c FROM chat.catch_up(3202, %s, 0, 500) c', page_chat)
    assert len(rows) == 100
    assert sum(len(r[0]['attachments']) for r in rows) == 100
    assert log.count(ATTACHMENT_QUERY) == 1


def test_secret_never_reaches_the_log(db):
    """Set a secret through a file, fail configurations that carry another
    one in the statement, and use the store: neither secret is in the log."""
    from_file = 'file-secret-' + uuid.uuid4().hex
    inline = 'inline-secret-' + uuid.uuid4().hex
    with tempfile.NamedTemporaryFile('w', suffix='.key', delete=False) as f:
        f.write(from_file + '\n')
    os.chmod(f.name, 0o644)

    def work():
        one(db, 'SELECT chat.configure_storage(%s) IS NOT NULL', json.dumps({
            'endpoint': 'http://127.0.0.1:9', 'bucket': 'logs', 'access_key': 'AK',
            'secret_key_file': f.name}))
        for bad in ({'secret_key': inline, 'max_url_lifetime': 0},
                    {'secret_key': inline, 'max_upload_size': 'lots'},
                    {'secret_key': inline, 'endpoint': 'gopher://nowhere'},
                    {'secret_key': inline, 'no_such_setting': 1}):
            with pytest.raises(psycopg2.Error) as err:
                one(db, 'SELECT chat.configure_storage(%s)', json.dumps(bad))
            assert inline not in str(err.value) and inline not in (err.value.diag.message_detail or '')
        chat = one(db, "SELECT chat.open_chat(3301, 'direct', NULL, 3302)")
        one(db, "SELECT chat.attachment_upload(3301, %s, 'x.png', 'image/png', 5) IS NOT NULL", chat)
        with pytest.raises(psycopg2.Error):
            one(db, "SELECT chat.attachment_upload(3301, %s, 'x.svg', 'image/svg+xml', 5)", chat)

    try:
        log = logged_during(work)
    finally:
        os.unlink(f.name)
    assert one(db, 'SELECT secret_key FROM chat.storage_config') == from_file
    assert 'max_url_lifetime must be between' in log, 'the errors were logged'
    assert inline not in log
    assert from_file not in log
