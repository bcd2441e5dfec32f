"""Test-only RSA: key generation, PKCS#1 v1.5 signing and the encodings providers publish keys in.

Providers sign with their private keys; to build genuine-looking
notifications the tests need the same, so they generate their own here
instead of shipping private keys.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class RsaKeyPair:
    private: rsa.RSAPrivateKey

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256, as both WeChat Pay and Alipay (RSA2) sign."""
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def sign_b64(self, message: bytes) -> str:
        return base64.b64encode(self.sign(message)).decode()


def rsa_generate(bits: int = 2048, e: int = 65537) -> RsaKeyPair:
    return RsaKeyPair(private=rsa.generate_private_key(public_exponent=e, key_size=bits))


@lru_cache(maxsize=None)
def rsa_test_key(name: str) -> RsaKeyPair:
    """One generated key per name per test run (generation takes a moment)."""
    return rsa_generate()


def spki_der(key: RsaKeyPair) -> bytes:
    return key.public.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_pem(key: RsaKeyPair) -> str:
    """``-----BEGIN PUBLIC KEY-----`` (SubjectPublicKeyInfo), as WeChat Pay's platform public keys come."""
    return key.public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_pkcs1_pem(key: RsaKeyPair) -> str:
    """``-----BEGIN RSA PUBLIC KEY-----`` (PKCS#1 RSAPublicKey), as older tooling exports keys."""
    return key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()


def public_key_base64(key: RsaKeyPair) -> str:
    """Alipay's console shows its public key as bare base64 of the SubjectPublicKeyInfo."""
    return base64.b64encode(spki_der(key)).decode()


def certificate_pem(key: RsaKeyPair, *, serial: int, common_name: str = "Tenpay.com Root CA") -> str:
    """A self-signed X.509 v3 certificate for ``key``, shaped like a WeChat Pay platform certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public)
                   .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=365))
                   .sign(key.private, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
