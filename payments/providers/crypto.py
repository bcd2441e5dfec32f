"""The few cryptographic operations the provider adapters need, on top of ``cryptography``.

* RSA PKCS#1 v1.5 / SHA-256 signature *verification* with a provider's public
  key, the key read from a PEM certificate, a PEM public key or Alipay's bare
  base64 key.
* AES-256-GCM to open WeChat Pay's encrypted resource.  The adapter only
  decrypts after the platform signature over the body has been verified.

The adapters see a narrow surface (load a key, verify, decrypt, one error type)
so that library exceptions never leak into notification handling: anything
wrong with a key or a ciphertext is a ``CryptoError``, and a bad signature is
simply ``False``.  Merchant *private* key operations (signing outgoing API
requests) are deliberately not implemented here.
"""

from __future__ import annotations

import base64
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_RSA_BITS = 2048
AES_256_KEY_BYTES = 32

RsaPublicKey = rsa.RSAPublicKey


class CryptoError(ValueError):
    """Malformed key or ciphertext, or a failed authentication tag."""


# Settings are pasted from consoles and mails, so a PEM block may come with text around it.
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)


def rsa_public_key_load(text: str | bytes) -> RsaPublicKey:
    """Read an RSA public key from a PEM certificate, a PEM (SubjectPublicKeyInfo or PKCS#1)
    public key, or bare base64 DER as Alipay's console shows it.

    Raises CryptoError for anything else, for non-RSA keys and for keys below MIN_RSA_BITS.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    match = _PEM_BLOCK.search(text)
    kind = match.group(1) if match else None
    if kind not in (None, "CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"):
        raise CryptoError(f"unsupported PEM block {kind}")
    try:
        if match is None:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
        elif kind == "CERTIFICATE":
            key = x509.load_pem_x509_certificate(match.group(0).encode()).public_key()
        else:
            key = serialization.load_pem_public_key(match.group(0).encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # binascii.Error is a ValueError
        raise CryptoError("not a readable public key or certificate") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise CryptoError("not an RSA key")
    # A provider key is trusted configuration, but a weak one would let others forge its
    # notifications; refuse it at load time rather than accept payments signed with it.
    exponent = key.public_numbers().e
    if key.key_size < MIN_RSA_BITS or exponent < 3 or exponent % 2 == 0:
        raise CryptoError(f"RSA keys need at least {MIN_RSA_BITS} bits and an odd exponent")
    return key


def rsa_sha256_verify(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256.  Never raises on a bad signature."""
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _aes_256_gcm(key: bytes) -> AESGCM:
    # AESGCM also takes 16- and 24-byte keys; the providers' scheme is AES-256 only, so a
    # shorter key is a configuration mistake, not a different cipher to try.
    if len(key) != AES_256_KEY_BYTES:
        raise CryptoError(f"AES-256 needs a {AES_256_KEY_BYTES}-byte key")
    return AESGCM(key)


def aes_256_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Return ciphertext || 16-byte tag."""
    cipher = _aes_256_gcm(key)
    try:
        return cipher.encrypt(nonce, plaintext, aad)
    except (ValueError, OverflowError) as exc:
        raise CryptoError("cannot seal with this nonce or data") from exc


def aes_256_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Open ciphertext || 16-byte tag; raises CryptoError on a wrong key length, a bad nonce
    or a tag that does not match."""
    cipher = _aes_256_gcm(key)
    try:
        return cipher.decrypt(nonce, data, aad)
    except InvalidTag as exc:
        raise CryptoError("authentication tag mismatch") from exc
    except (ValueError, OverflowError) as exc:
        raise CryptoError("cannot open with this nonce or data") from exc
