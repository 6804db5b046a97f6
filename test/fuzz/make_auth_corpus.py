#!/usr/bin/python3
"""Writes test/fuzz/auth_corpus/: the seed tokens of auth_fuzz.c.

Each file is one byte choosing the configuration (auth_fuzz.c: byte % 3 is
HS256, RS256 or ES256; bit 2 sets jwt_issuer "chat-test" and jwt_audience
"chat") followed by the token. Signed with the test-only keys of auth_keys/
(made for fuzzing, never used anywhere else). "Valid" tokens expire in 2100.
Run again after changing a key: python3 test/fuzz/make_auth_corpus.py
"""
import base64, hashlib, hmac, json, os, shutil

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

here = os.path.dirname(os.path.abspath(__file__))
keys = os.path.join(here, "auth_keys")
out = os.path.join(here, "auth_corpus")
SECRET = open(os.path.join(keys, "hs256.secret"), "rb").read().strip()
RSA = serialization.load_pem_private_key(open(os.path.join(keys, "rs256.key"), "rb").read(), None)
EC = serialization.load_pem_private_key(open(os.path.join(keys, "es256.key"), "rb").read(), None)
RS_PUB = open(os.path.join(keys, "rs256.pub"), "rb").read()
FAR, PAST = 4102444800, 1000000000
CONF = {"HS256": 0, "RS256": 1, "ES256": 2}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(alg, signing, key=None, der=False):
    if alg == "HS256":
        return hmac.new(key or SECRET, signing, hashlib.sha256).digest()
    if alg == "RS256":
        return RSA.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        d = EC.sign(signing, ec.ECDSA(hashes.SHA256()))
        if der:
            return d
        r, s = utils.decode_dss_signature(d)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return b""


def token(alg="HS256", head=None, body=None, signer=None, key=None, der=False, raw_head=None, raw_body=None):
    h = {"alg": alg, "typ": "JWT"} if head is None else head
    b = {"sub": "42", "exp": FAR} if body is None else body
    signing = ((raw_head or b64(json.dumps(h).encode())) + "." + (raw_body or b64(json.dumps(b).encode()))).encode()
    sig = sign(signer or alg, signing, key, der)
    return signing.decode() + "." + b64(sig)


def seeds():
    for alg in CONF:
        c = CONF[alg]
        yield f"{alg}-valid", c, token(alg)
        yield f"{alg}-valid-int-sub", c, token(alg, body={"sub": 7, "exp": FAR, "nbf": PAST})
        yield f"{alg}-iss-aud", c | 4, token(alg, body={"sub": "9", "exp": FAR, "iss": "chat-test", "aud": ["x", "chat"]})
        yield f"{alg}-wrong-aud", c | 4, token(alg, body={"sub": "9", "exp": FAR, "iss": "chat-test", "aud": "other"})
        yield f"{alg}-expired", c, token(alg, body={"sub": "1", "exp": PAST})
        yield f"{alg}-not-yet", c, token(alg, body={"sub": "1", "exp": FAR, "nbf": FAR - 1})
        yield f"{alg}-no-exp", c, token(alg, body={"sub": "1"})
        yield f"{alg}-bad-sub", c, token(alg, body={"sub": "9223372036854775808", "exp": FAR})
        yield f"{alg}-sub-zero", c, token(alg, body={"sub": "0", "exp": 1e300})
        yield f"{alg}-crit", c, token(alg, head={"alg": alg, "crit": ["exp"]})
        yield f"{alg}-none", c, token("none").rsplit(".", 1)[0] + "."
        yield f"{alg}-bad-sig", c, token(alg)[:-4] + "AAAA"
        yield f"{alg}-dup-key", c, token(alg, raw_body=b64(b'{"sub":"1","sub":"2","exp":4102444800}'))
        yield f"{alg}-not-object", c, token(alg, raw_body=b64(b'[1,2]'))
    yield "ES256-der-sig", 2, token("ES256", der=True)
    yield "RS256-as-HS256", 1, token("RS256", head={"alg": "HS256"}, signer="HS256", key=RS_PUB)
    yield "HS256-as-RS256", 0, token("HS256", head={"alg": "RS256"}, signer="RS256")
    yield "HS256-huge", 0, token("HS256", body={"sub": "1", "exp": FAR, "pad": "x" * 5000})
    yield "HS256-empty", 0, ""
    yield "HS256-dots", 0, "..."
    yield "HS256-four-parts", 0, token("HS256") + ".x"
    yield "HS256-bad-b64", 0, "e30.e30!.AAAA"


def main():
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name, conf, tok in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([conf]) + tok.encode())


if __name__ == "__main__":
    main()
