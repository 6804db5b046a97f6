"""Fixtures of the attachment tests: the test database (PG* environment, as
set by test/run-tests.sh) and, for the end-to-end tests, a RADOS Gateway."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from harness import pg_connect  # noqa: E402
S3_ACCESS = 'CHATE2EACCESSKEY'
S3_SECRET = 'chat-e2e-secret/Key+0123456789abcdefghij'
S3_BUCKET = 'chat-e2e'


@pytest.fixture(scope='session')
def db():
    conn = pg_connect()
    yield conn
    conn.close()


def one(conn, sql, *args):
    """The single value of a one-row, one-column query."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def presign(conn, method, endpoint, bucket, key, expires, at, region, access_key, secret_key,
            virtual_host=False, headers=None, query=None):
    """chat.s3_presign with `at` a naive UTC datetime."""
    return one(conn, "SELECT chat.s3_presign(%s, %s, %s, %s, %s, %s AT TIME ZONE 'UTC', %s, %s, %s, %s, %s, %s)",
               method, endpoint, bucket, key, expires, at, region, access_key, secret_key, virtual_host,
               json.dumps(headers) if headers is not None else None,
               json.dumps(query) if query is not None else None)


@pytest.fixture
def storage(db):
    """Restores chat.storage_config after a test that changes it."""
    with db.cursor() as cur:
        cur.execute('SELECT to_jsonb(c) - $$singleton$$ FROM chat.storage_config c WHERE singleton')
        saved = cur.fetchone()[0]
    yield
    with db.cursor() as cur:
        cur.execute('SELECT chat.configure_storage(%s)', (json.dumps(saved),))


@pytest.fixture(scope='session')
def rgw():
    """A RADOS Gateway on 127.0.0.1 with user S3_ACCESS and bucket S3_BUCKET."""
    if os.environ.get('CHAT_SKIP_S3_E2E'):
        pytest.skip('CHAT_SKIP_S3_E2E is set')
    base = int(os.environ.get('S3_TEST_PORT', int(os.environ.get('PGPORT', '54329')) + 40))
    workdir = tempfile.mkdtemp(prefix='chat-rgw.')
    script = os.path.join(HERE, '..', 's3', 'rgw.sh')
    # a one-node Ceph start is occasionally refused by a daemon, or its port
    # is some connection's ephemeral port for a moment: try twice, the
    # second time on other ports
    for attempt in (1, 2):
        port = base + 10 * (attempt - 1)
        started = subprocess.run([script, 'start', workdir, str(port), S3_ACCESS, S3_SECRET],
                                 capture_output=True, text=True, timeout=240)
        if started.returncode == 0:
            break
        print(f'rgw.sh start, attempt {attempt}, failed ({started.returncode}): {started.stderr}')
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f'test/s3/rgw.sh start failed ({started.returncode}):\n{started.stdout}\n{started.stderr}')
    endpoint = f'http://127.0.0.1:{port}'
    try:
        import botocore.session
        from botocore.config import Config
        client = botocore.session.get_session().create_client(
            's3', region_name='us-east-1', endpoint_url=endpoint,
            aws_access_key_id=S3_ACCESS, aws_secret_access_key=S3_SECRET,
            config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}))
        client.create_bucket(Bucket=S3_BUCKET)
        yield {'endpoint': endpoint, 'port': port, 'client': client}
    finally:
        subprocess.run([script, 'stop', workdir], check=False, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
