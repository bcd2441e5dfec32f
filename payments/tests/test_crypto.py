"""The provider crypto helpers against published and recorded vectors, tampering and bad keys."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.providers import crypto
from payments.tests.keys import (
    certificate_pem,
    public_key_base64,
    public_key_pem,
    public_key_pkcs1_pem,
    rsa_generate,
    rsa_test_key,
)


@pytest.mark.parametrize("plaintext,expected", [
    # The GCM specification's test cases 13 and 14 (256-bit zero key, 96-bit zero IV).
    (b"", "530f8afbc74536b9a963b4f1c4cb738b"),
    (bytes(16), "cea7403d4d606b6e074ec5d3baf39d18" "d0d1c8a799996bf0265b98b5d48ab919"),
])
def test_gcm_matches_the_specification_vectors(plaintext, expected):
    assert crypto.aes_256_gcm_encrypt(bytes(32), bytes(12), plaintext).hex() == expected
    assert crypto.aes_256_gcm_decrypt(bytes(32), bytes(12), bytes.fromhex(expected)) == plaintext


OPENSSL_GCM = (
    "97521b336ec381db62bd7d9896792365aacaee835a81604098012fd1e2b564133c942179d650cb864ced6e87294bbd75"
    "1f0b66f1bf6d13b0215343123fb39469bd4bb79733ef3e25290d55a3d7312f596726e86b71258bd55102d02ffedef433"
    "17d21ca2c3ae55c8ee681ff2bc3ec664db2f95c53b4f230fc5025e839249d0f92f07364bcbed4386fc8fd7ff88e2d0dd"
    "0eae07ab6b7c30cdd943fb5522aca190ad9384b1a910d08bb6bbd8a2480a0047769d"
)
OPENSSL_GCM_PLAINTEXT = b"hello world, this is a longer message spanning blocks!" * 3


def test_gcm_opens_what_openssl_sealed_and_seals_the_same():
    key, nonce, aad = bytes(range(32)), b"abcdefghijkl", b"transaction"
    assert crypto.aes_256_gcm_decrypt(key, nonce, bytes.fromhex(OPENSSL_GCM), aad) == OPENSSL_GCM_PLAINTEXT
    assert crypto.aes_256_gcm_encrypt(key, nonce, OPENSSL_GCM_PLAINTEXT, aad).hex() == OPENSSL_GCM


@pytest.mark.parametrize("change", ["ciphertext", "tag", "aad", "key", "nonce"])
def test_gcm_refuses_any_change(change):
    key, nonce, aad = bytes(range(32)), b"abcdefghijkl", b"transaction"
    data = bytearray(bytes.fromhex(OPENSSL_GCM))
    if change == "ciphertext":
        data[3] ^= 1
    elif change == "tag":
        data[-1] ^= 1
    elif change == "aad":
        aad = b"transactioN"
    elif change == "key":
        key = bytes(31) + b"\x01"
    else:
        nonce = b"abcdefghijkm"
    with pytest.raises(crypto.CryptoError):
        crypto.aes_256_gcm_decrypt(key, nonce, bytes(data), aad)


@pytest.mark.parametrize("key_bytes", [16, 24, 31, 33])
def test_gcm_refuses_keys_that_are_not_256_bits(key_bytes):
    # AES-128/192-GCM would open data sealed under a 16- or 24-byte key; the APIv3 key is AES-256.
    key, nonce = bytes(range(key_bytes)), bytes(12)
    sealed = AESGCM(key).encrypt(nonce, b"payload", None) if key_bytes in (16, 24) else bytes(32)
    with pytest.raises(crypto.CryptoError):
        crypto.aes_256_gcm_decrypt(key, nonce, sealed)
    with pytest.raises(crypto.CryptoError):
        crypto.aes_256_gcm_encrypt(key, nonce, b"payload")


def test_gcm_needs_a_tag_and_a_nonce():
    with pytest.raises(crypto.CryptoError):
        crypto.aes_256_gcm_decrypt(bytes(32), bytes(12), bytes(15))
    with pytest.raises(crypto.CryptoError):
        crypto.aes_256_gcm_decrypt(bytes(32), b"", bytes(32))
    with pytest.raises(crypto.CryptoError):
        crypto.aes_256_gcm_encrypt(bytes(32), b"", b"payload")


def test_rsa_key_loads_from_certificate_public_key_and_bare_base64():
    key = rsa_test_key("loader")
    for text in (certificate_pem(key, serial=7), public_key_pem(key), public_key_pkcs1_pem(key),
                 public_key_base64(key), public_key_base64(key).encode(),
                 f"Tenpay platform key\n{public_key_pem(key)}\n(rotated 2026-11)\n"):
        assert crypto.rsa_public_key_load(text) == key.public


def test_rsa_signature_verifies_and_refuses_changes():
    key, other = rsa_test_key("signer"), rsa_test_key("other")
    signature = key.sign(b"message")
    assert crypto.rsa_sha256_verify(key.public, b"message", signature)
    assert not crypto.rsa_sha256_verify(key.public, b"messagE", signature)
    assert not crypto.rsa_sha256_verify(other.public, b"message", signature)
    assert not crypto.rsa_sha256_verify(key.public, b"message", signature[:-1])
    assert not crypto.rsa_sha256_verify(key.public, b"message", signature + b"\x00")
    assert not crypto.rsa_sha256_verify(key.public, b"message", b"")
    assert not crypto.rsa_sha256_verify(key.public, b"message", b"\xff" * len(signature))
    tampered = bytearray(signature)
    tampered[10] ^= 0x40
    assert not crypto.rsa_sha256_verify(key.public, b"message", bytes(tampered))


@pytest.mark.parametrize("text", ["", "not base64 !", "QUJD",
                                  "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----"])
def test_rsa_key_loader_refuses_garbage(text):
    with pytest.raises(crypto.CryptoError):
        crypto.rsa_public_key_load(text)


def test_rsa_key_loader_refuses_keys_that_are_not_rsa():
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(crypto.CryptoError):
        crypto.rsa_public_key_load(pem)


def test_rsa_key_loader_refuses_short_keys():
    with pytest.raises(crypto.CryptoError):
        crypto.rsa_public_key_load(public_key_pem(rsa_generate(bits=1024)))
