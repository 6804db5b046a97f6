"""history and catch_up load a page's attachments with one index scan
(counted with pgstat's per-transaction scan counters), never one query per
message; and the secret key stays out of the server log."""
import json
import os
import tempfile
import uuid

import psycopg2
import pytest

from conftest import one

pytestmark = pytest.mark.usefixtures('storage')

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


def index_scans(sql, *args):
    """Run sql in a transaction of its own; return its rows and the number of
    scans of the index chat.attachments_message it started (pgstat counts
    each btree descent in this transaction)."""
    conn = psycopg2.connect('')
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
            cur.execute("SELECT pg_stat_get_xact_numscans('chat.attachments_message'::regclass), "
                        "pg_stat_get_xact_numscans('chat.attachments_pkey'::regclass), "
                        "pg_stat_get_xact_numscans('chat.attachments'::regclass)")
            message_scans, *other_scans = cur.fetchone()
        conn.rollback()
        return rows, message_scans, sum(other_scans)
    finally:
        conn.close()


def test_history_page_with_attachments_is_one_scan(page_chat):
    rows, scans, table_scans = index_scans('SELECT h FROM chat.history(3202, %s, 51, 50) h', page_chat)
    assert len(rows) == 50
    assert sum(len(r[0]['attachments']) for r in rows) == 100
    assert [a['name'] for a in rows[0][0]['attachments']] == ['p49-0.jpg', 'p49-1.jpg']
    assert [a['name'] for a in rows[-1][0]['attachments']] == ['p0-0.jpg', 'p0-1.jpg']
    assert scans == 1, 'one index range for the whole page'
    assert table_scans == 0, 'and no other scan of chat.attachments'


def test_history_page_without_attachments_reads_nothing(page_chat):
    rows, scans, table_scans = index_scans('SELECT h FROM chat.history(3202, %s, NULL, 50) h', page_chat)
    assert len(rows) == 50 and all(r[0]['attachments'] == [] for r in rows)
    assert scans == 0 and table_scans == 0


def test_catch_up_page_is_one_scan_per_batch(page_chat):
    rows, scans, _ = index_scans('SELECT c FROM chat.catch_up(3202, %s, 0, 500) c', page_chat)
    assert len(rows) == 100
    assert sum(len(r[0]['attachments']) for r in rows) == 100
    # pages are read in batches (chat.page_max_bytes): the first of
    # CHAT_PAGE_FIRST_BATCH (64) rows, then the rest; at most one range per
    # batch, none for a batch whose messages have no attachments
    assert 1 <= scans <= 2


def test_scattered_catch_up_page(db, page_chat):
    """Edits of old messages make a catch_up page of far-apart seqs: one scan
    with the seqs as an array key (btree descends once per seq)."""
    cursor = one(db, 'SELECT last_rev FROM chat.chats WHERE chat_id = %s', page_chat)
    for seq in (1, 25, 50):
        one(db, "SELECT chat.edit_message(3201, %s, %s, 'edited') IS NOT NULL", page_chat, seq)
    rows, scans, table_scans = index_scans('SELECT c FROM chat.catch_up(3202, %s, %s) c', page_chat, cursor)
    assert [r[0]['seq'] for r in rows] == [1, 25, 50]
    assert [[a['name'] for a in r[0]['attachments']] for r in rows] == \
        [['p0-0.jpg', 'p0-1.jpg'], ['p24-0.jpg', 'p24-1.jpg'], ['p49-0.jpg', 'p49-1.jpg']]
    assert 1 <= scans <= 3 and table_scans == 0
    # a deleted message in the range shows no attachments, its neighbours keep theirs
    one(db, 'SELECT chat.delete_message(3201, %s, 24) IS NOT NULL', page_chat)
    rows, scans, _ = index_scans('SELECT h FROM chat.history(3202, %s, 26, 3) h', page_chat)
    assert [(r[0]['seq'], len(r[0]['attachments'])) for r in rows] == [(25, 2), (24, 0), (23, 2)]
    assert scans == 1


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
