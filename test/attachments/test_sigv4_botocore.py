"""chat.s3_presign against an independent implementation (python3-botocore)
on a frozen clock: many keys, GET and PUT (and HEAD, DELETE), path-style and
virtual-hosted URLs; the AWS worked example; tampered URLs stop verifying."""
import datetime
import random

import pytest

from conftest import presign
from sigref import botocore_presign, normalized, signature_of, verifies, encode_key

AT = datetime.datetime(2026, 3, 14, 15, 9, 26)
AK = 'AKIDEXAMPLEACCESS'
SK = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'

KEYS = [
    'test.txt',
    'chat/42/0f1e2d3c4b5a69788796a5b4c3d2e1f0',
    'photo of the bike.jpg',
    'a+b=c&d.png',
    'plus+plus++.txt',
    '100% real.pdf',
    'already%20encoded.txt',
    'tilde~and_underscore-and.dot',
    "reserved !*'();:@&=+$,?#[].bin",
    'folder/sub folder/file name.txt',
    '/leading-slash',
    'double//slash',
    'trailing/',
    '../dots/./x',
    'éàçü.txt',
    'отчёт за март.pdf',
    '日本語のファイル.png',
    'emoji 🚲🔑.jpg',
    'tab\tand\nnewline',
    'quote"backslash\\',
    'a' * 1024,
    'ä' * 512,
]
ENDPOINTS = ['https://s3.example.test', 'http://127.0.0.1:9000', 'https://s3.eu-central-1.amazonaws.com',
             'http://minio.local:9000']


def both(db, method, endpoint, key, virtual, region='us-east-1', expires=900, headers=None, query=None,
         bucket='chat-files'):
    ours = presign(db, method, endpoint, bucket, key, expires, AT, region, AK, SK, virtual, headers, query)
    ref = botocore_presign(method, endpoint, bucket, key, expires, AT, region, AK, SK, virtual, headers, query)
    return ours, ref


def test_aws_worked_example(db):
    """The example of AWS's "Authenticating Requests: Using Query Parameters"."""
    at = datetime.datetime(2013, 5, 24)
    url = presign(db, 'GET', 'https://s3.amazonaws.com', 'examplebucket', 'test.txt', 86400, at,
                  'us-east-1', 'AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', True)
    assert signature_of(url) == 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
    assert url.startswith('https://examplebucket.s3.amazonaws.com/test.txt?')
    ref = botocore_presign('GET', 'https://s3.amazonaws.com', 'examplebucket', 'test.txt', 86400, at,
                           'us-east-1', 'AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', True)
    assert normalized(url) == normalized(ref)
    assert verifies(url, 'GET', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')


@pytest.mark.parametrize('virtual', [False, True], ids=['path', 'virtual'])
@pytest.mark.parametrize('method', ['GET', 'PUT', 'HEAD', 'DELETE'])
@pytest.mark.parametrize('key', KEYS, ids=range(len(KEYS)))
def test_keys_match_botocore(db, key, method, virtual):
    endpoint = 'https://s3.example.test' if virtual else 'http://127.0.0.1:9000'
    ours, ref = both(db, method, endpoint, key, virtual)
    assert normalized(ours) == normalized(ref)
    assert urlpath(ours).endswith(encode_key(key))


def urlpath(url):
    return normalized(url)[2]


@pytest.mark.parametrize('virtual', [False, True], ids=['path', 'virtual'])
def test_put_with_signed_type_and_length_matches_botocore(db, virtual):
    for i, (ctype, size) in enumerate([('image/jpeg', 48213), ('application/pdf', 1),
                                       ('video/mp4', 104857600), ('text/plain', 0)]):
        endpoint = ENDPOINTS[i % len(ENDPOINTS)]
        if virtual and endpoint.startswith('http://127.'):
            endpoint = 'http://minio.local:9000'
        headers = {'Content-Type': ctype, 'Content-Length': size}
        ours, ref = both(db, 'PUT', endpoint, f'chat/7/{i:032x}', virtual, headers=headers)
        assert normalized(ours) == normalized(ref)
        assert 'X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost' in ours
        assert verifies(ours, 'PUT', SK, headers)


def test_extra_headers_and_query_match_botocore(db):
    headers = {'Content-Type': 'image/png', 'Content-Length': 12, 'x-amz-acl': 'private',
               'Cache-Control': 'max-age=60'}
    ours, ref = both(db, 'PUT', 'https://s3.example.test', 'k.png', False, headers=headers)
    assert normalized(ours) == normalized(ref)
    for disposition in ['attachment; filename="a b.png"',
                        "attachment; filename=\"_____.pdf\"; filename*=UTF-8''%D0%BE%D1%82.pdf",
                        'inline']:
        query = {'response-content-disposition': disposition, 'response-content-type': 'image/png'}
        ours, ref = both(db, 'GET', 'https://s3.example.test', 'k.png', True, query=query)
        assert normalized(ours) == normalized(ref)


@pytest.mark.parametrize('region', ['us-east-1', 'eu-central-1', 'ap-southeast-2', 'garage'])
@pytest.mark.parametrize('expires', [1, 60, 900, 86400, 604800])
def test_regions_and_lifetimes_match_botocore(db, region, expires):
    ours, ref = both(db, 'GET', 'https://s3.example.test', 'x/y.txt', False, region=region, expires=expires)
    assert normalized(ours) == normalized(ref)


def test_default_port_is_not_signed(db):
    """botocore keeps an explicit :443 in the URL text but signs without it;
    we drop it from both, so the Host a client sends matches what was signed."""
    ours, ref = both(db, 'GET', 'https://s3.example.test:443', 'k', False)
    assert signature_of(ours) == signature_of(ref)
    assert ours.startswith('https://s3.example.test/chat-files/k?')
    ours, ref = both(db, 'GET', 'http://s3.example.test:80', 'k', True)
    assert signature_of(ours) == signature_of(ref)
    assert ours.startswith('http://chat-files.s3.example.test/k?')


def test_random_keys_match_botocore(db):
    """300 random keys from a pool of ASCII, reserved, control and non-ASCII
    characters, alternating methods and URL styles."""
    rnd = random.Random(20260314)
    pool = [chr(c) for c in range(0x20, 0x7f)] + list('\t\nàéß€ЖжФ日本語🚲') + ['/'] * 8
    for i in range(300):
        key = ''.join(rnd.choice(pool) for _ in range(rnd.randint(1, 80)))
        method = ['GET', 'PUT', 'HEAD', 'DELETE'][i % 4]
        virtual = bool(i % 2)
        endpoint = 'https://s3.example.test' if virtual else ENDPOINTS[i % len(ENDPOINTS)]
        ours, ref = both(db, method, endpoint, key, virtual)
        assert normalized(ours) == normalized(ref), key


def test_extension_urls_verify_and_tampered_ones_do_not(db):
    """Verification by botocore: what the extension signed verifies; another
    key, expiry, date, method, header value, credential or secret does not."""
    headers = {'Content-Type': 'image/jpeg', 'Content-Length': 48213}
    url = presign(db, 'PUT', 'https://files.example.test', 'chat-files', 'chat/1/aaaa', 900, AT,
                  'us-east-1', AK, SK, False, headers)
    assert verifies(url, 'PUT', SK, headers)

    assert not verifies(url.replace('chat/1/aaaa', 'chat/1/aaab'), 'PUT', SK, headers), 'another key'
    assert not verifies(url.replace('chat/1/aaaa', 'chat/2/aaaa'), 'PUT', SK, headers), 'another chat'
    assert not verifies(url.replace('X-Amz-Expires=900', 'X-Amz-Expires=604800'), 'PUT', SK, headers), 'longer expiry'
    assert not verifies(url.replace('X-Amz-Expires=900', 'X-Amz-Expires=899'), 'PUT', SK, headers), 'shorter expiry'
    assert not verifies(url.replace('20260314T150926Z', '20260314T160926Z'), 'PUT', SK, headers), 'later date'
    assert not verifies(url.replace('/chat-files/', '/other-bucket/'), 'PUT', SK, headers), 'another bucket'
    assert not verifies(url.replace('files.example.test', 'evil.example.test'), 'PUT', SK, headers), 'another host'
    assert not verifies(url, 'GET', SK, headers), 'another method'
    assert not verifies(url, 'PUT', SK, {**headers, 'Content-Length': 48214}), 'another size'
    assert not verifies(url, 'PUT', SK, {**headers, 'Content-Type': 'text/html'}), 'another type'
    assert not verifies(url, 'PUT', SK, {'Content-Type': 'image/jpeg'}), 'length not sent'
    assert not verifies(url, 'PUT', SK + 'x', headers), 'another secret'
    assert not verifies(url.replace(AK, 'AKIDOTHER'), 'PUT', SK, headers), 'another access key'
    assert not verifies(url.replace('us-east-1', 'eu-west-1'), 'PUT', SK, headers), 'another region'

    get = presign(db, 'GET', 'https://files.example.test', 'chat-files', 'chat/1/aaaa', 60, AT,
                  'us-east-1', AK, SK, False, None,
                  {'response-content-disposition': 'attachment; filename="a.jpg"'})
    assert verifies(get, 'GET', SK)
    assert not verifies(get.replace('a.jpg', 'a.exe'), 'GET', SK), 'another download name'
    assert not verifies(get.replace('X-Amz-Expires=60', 'X-Amz-Expires=61'), 'GET', SK), 'another expiry'
