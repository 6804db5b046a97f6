"""Compact JWS checked with the fake services' own code (python3-cryptography):
RS256 (FCM's assertion) and ES256 (APNs' provider token, r||s)."""
import base64
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class BadToken(Exception):
    pass


def b64url_decode(s):
    if "=" in s or "+" in s or "/" in s:
        raise BadToken("not base64url without padding")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify(token, public_key, alg):
    """(header, claims) of token if its signature holds under public_key, else BadToken."""
    try:
        h, c, s = token.split(".")
        header, claims, sig = json.loads(b64url_decode(h)), json.loads(b64url_decode(c)), b64url_decode(s)
    except (ValueError, TypeError) as e:
        raise BadToken(f"not a compact JWS: {e}")
    if header.get("alg") != alg:
        raise BadToken(f"alg {header.get('alg')!r}, not {alg}")
    signed = f"{h}.{c}".encode()
    try:
        if alg == "RS256":
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            if len(sig) != 64:
                raise BadToken(f"ES256 signature of {len(sig)} bytes, not 64 (r||s)")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            public_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadToken("bad signature")
    return header, claims


def sign(header, claims, private_key):
    """A compact JWS by header's alg (RS256 or ES256): what the tests send as a client would."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if header["alg"] == "RS256":
        sig = private_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(private_key.sign(signed.encode(), ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signed + "." + b64url(sig)
