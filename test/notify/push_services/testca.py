"""A throw-away certificate authority for the fake push services: one CA
and one server certificate for 127.0.0.1, ::1 and localhost, signed by it,
written as PEM into a directory. chat-notify is given the CA as
push_ca_file; the fakes serve the certificate and key.

    paths = make_ca(dirpath)   # {"ca": …, "cert": …, "key": …}
    ctx = server_context(paths)

make_ca() reuses what an earlier call wrote into the same directory."""
import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMES = ("ca.pem", "cert.pem", "key.pem")


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca(now):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name("chat-notify test CA")).issuer_name(_name("chat-notify test CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server(now, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                       x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                       x509.IPAddress(ipaddress.ip_address("::1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def make_ca(dirpath):
    """The CA, the server certificate and its key as PEM files in dirpath
    (made if missing): dict(ca=…, cert=…, key=…) of their paths."""
    os.makedirs(dirpath, exist_ok=True)
    paths = dict(zip(("ca", "cert", "key"), (os.path.join(dirpath, n) for n in NAMES)))
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, ca_cert = _ca(now)
    key, cert = _server(now, ca_key, ca_cert)
    _write(paths["ca"], _pem_cert(ca_cert))
    _write(paths["cert"], _pem_cert(cert))
    _write(paths["key"], key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), 0o600)
    return paths


def server_context(paths, alpn=None):
    """An ssl.SSLContext serving paths' certificate (alpn: e.g. ["h2"])."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths["cert"], paths["key"])
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def client_context(paths):
    """An ssl.SSLContext trusting only the test CA (for the self-tests)."""
    ctx = ssl.create_default_context(cafile=paths["ca"])
    return ctx
