"""Reference SigV4 presigning and verification with Debian's python3-botocore.

Everything here is botocore's code path, not ours: the client-level presigner
(addressing style, key encoding, query building) and the low-level
S3SigV4QueryAuth signer, both on a frozen clock. `verifies` checks a URL the
way an S3 server does: it re-signs the request the URL describes and compares
signatures.
"""
import datetime
import functools
from unittest import mock
from urllib.parse import urlsplit, parse_qsl, quote

import botocore.session
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

_SESSION = botocore.session.get_session()
OPERATIONS = {'GET': 'get_object', 'PUT': 'put_object', 'HEAD': 'head_object', 'DELETE': 'delete_object'}
# botocore client parameters for the headers and query parameters we sign
HEADER_PARAMS = {'content-type': 'ContentType', 'content-length': 'ContentLength', 'x-amz-acl': 'ACL',
                 'cache-control': 'CacheControl'}
QUERY_PARAMS = {'response-content-disposition': 'ResponseContentDisposition',
                'response-content-type': 'ResponseContentType'}


def frozen_clock(at):
    """Patch botocore's clock to `at` (naive UTC datetime)."""
    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return at
    return mock.patch('botocore.auth.datetime.datetime', Frozen)


@functools.lru_cache(maxsize=None)
def _client(endpoint, region, access_key, secret_key, virtual_host):
    """botocore S3 clients are slow to make: one per configuration."""
    return _SESSION.create_client(
        's3', region_name=region, endpoint_url=endpoint,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(signature_version='s3v4',
                      s3={'addressing_style': 'virtual' if virtual_host else 'path'}))


def botocore_presign(method, endpoint, bucket, key, expires, at, region, access_key, secret_key,
                     virtual_host=False, headers=None, query=None):
    """A presigned URL made by botocore's S3 client."""
    client = _client(endpoint, region, access_key, secret_key, virtual_host)
    params = {'Bucket': bucket, 'Key': key}
    for name, value in (headers or {}).items():
        params[HEADER_PARAMS[name.lower()]] = value
    for name, value in (query or {}).items():
        params[QUERY_PARAMS[name]] = value
    with frozen_clock(at):
        return client.generate_presigned_url(OPERATIONS[method], Params=params,
                                             ExpiresIn=expires, HttpMethod=method)


def normalized(url):
    """(scheme, host without default port, path, sorted raw query parts)."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.port and parts.port != {'http': 80, 'https': 443}[parts.scheme]:
        host = f'{host}:{parts.port}'
    return parts.scheme, host, parts.path, sorted(parts.query.split('&'))


def signature_of(url):
    return dict(parse_qsl(urlsplit(url).query))['X-Amz-Signature']


def verifies(url, method, secret_key, headers=None):
    """Would an S3 server accept `method` on `url` with these request headers?

    Re-signs with botocore the request the URL describes (its path, its non
    X-Amz query parameters, the headers it says are signed, its date, expiry,
    access key and region) and compares with the URL's signature.
    """
    parts = urlsplit(url)
    pairs = [p.split('=', 1) for p in parts.query.split('&')]
    amz = {k: v for k, v in parse_qsl(parts.query)}
    other = '&'.join(f'{k}={v}' for k, v in pairs if not k.startswith('X-Amz-'))
    access_key, date, region, service, _ = amz['X-Amz-Credential'].split('/')
    at = datetime.datetime.strptime(amz['X-Amz-Date'], '%Y%m%dT%H%M%SZ')
    signed = amz['X-Amz-SignedHeaders'].split(';')
    given = {k.lower(): v for k, v in (headers or {}).items()}
    if set(signed) - {'host'} != set(given):
        return False
    if date != at.strftime('%Y%m%d') or service != 's3':
        return False
    bare = f'{parts.scheme}://{parts.netloc}{parts.path}' + (f'?{other}' if other else '')
    request = AWSRequest(method=method, url=bare, headers={k: str(v) for k, v in given.items()})
    auth = S3SigV4QueryAuth(Credentials(access_key, secret_key), 's3', region,
                            expires=int(amz['X-Amz-Expires']))
    with frozen_clock(at):
        auth.add_auth(request)
    return signature_of(request.url) == amz['X-Amz-Signature']


def encode_key(key):
    return quote(key.encode('utf-8'), safe='/~')
