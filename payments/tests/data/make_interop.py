"""Regenerate interop.json: recorded provider notifications, signed and encrypted with OpenSSL.

The adapter tests check WeChat Pay and Alipay verification end to end against
these fixed notifications as well as against what builders.py makes on the
fly, so a change to the test helpers cannot hide a change in what the adapters
accept.  Regenerating gives new keys and signatures (the tests only read the
file); run it with the project's environment:
``../../../.venv/bin/python make_interop.py > interop.json``.
"""

import base64
import datetime
import json
import os
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

TIMESTAMP = 1795000000


def sign(key, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def wechat():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x5157F09EFDC096DE15EBE81A47057A72).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1825)).sign(key, hashes.SHA256()))
    apiv3_key = os.urandom(16).hex()
    resource = {
        "mchid": "1900000001", "appid": "wxd678efh567hg6787", "out_trade_no": "PY2611230000001",
        "transaction_id": "4200000001202611230000000001", "trade_type": "NATIVE", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": "2026-11-23T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 12345, "payer_total": 12345, "currency": "CNY", "payer_currency": "CNY"},
    }
    nonce = "fdasflkja484"
    plaintext = json.dumps(resource).encode()
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, b"transaction")
    body = json.dumps({
        "id": "EV-2018022511223320873", "create_time": "2026-11-23T10:00:01+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": "transaction",
                     "nonce": nonce},
    }, ensure_ascii=False)
    header_nonce = "593BEC0C930BF1AFEB40B4A08C8FB242"
    signature = sign(key, f"{TIMESTAMP}\n{header_nonce}\n{body}\n".encode())
    return {
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "serial": format(cert.serial_number, "X"), "apiv3_key": apiv3_key, "body": body,
        "headers": {"Wechatpay-Timestamp": str(TIMESTAMP), "Wechatpay-Nonce": header_nonce,
                    "Wechatpay-Signature": signature, "Wechatpay-Serial": format(cert.serial_number, "X")},
    }


def alipay():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    params = {
        "notify_time": "2026-11-23 10:00:05", "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786", "app_id": "2021000000000001", "charset": "utf-8",
        "version": "1.0", "trade_no": "2026112322001400000000000001",
        "out_trade_no": "PY2611230000002", "trade_status": "TRADE_SUCCESS", "total_amount": "88.80",
        "receipt_amount": "88.80", "buyer_pay_amount": "88.80", "subject": "西湖店 订单",
        "gmt_payment": "2026-11-23 10:00:04",
    }
    content = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["sign"] = sign(key, content.encode())
    params["sign_type"] = "RSA2"
    return {"public_key": base64.b64encode(public).decode(), "body": urlencode(params)}


if __name__ == "__main__":
    print(json.dumps({"timestamp": TIMESTAMP, "wechat_pay": wechat(), "alipay": alipay()}, ensure_ascii=False,
                     indent=1))
