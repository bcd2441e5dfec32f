"""Genuine-looking provider notifications, signed with keys the tests generate."""

import base64
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.tests.keys import certificate_pem, public_key_base64, public_key_pem, rsa_test_key

APIV3_KEY = "0123456789abcdefABCDEF0123456789"
CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A72"


def private_pem(key) -> str:
    return key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()


def wechat_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs: each part followed by a newline (the provider's rule, built independently)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def alipay_sign_content(params) -> str:
    """What Alipay signs in a notification: every parameter but sign and sign_type, sorted."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def wechat_cert_dir(certificate: str, serial: str = CERT_SERIAL) -> str:
    directory = tempfile.mkdtemp(prefix="wechatpay-certs-")
    (Path(directory) / f"{serial}.pem").write_text(certificate)
    return directory


def wechat_configure(settings):
    """Configure the WeChat Pay adapter with a generated platform key, both as a platform public
    key and as a platform certificate (WeChat signs with either during its migration); returns the key."""
    key = rsa_test_key("wechat-platform")
    settings.WECHAT_PAY_APIV3_KEY = APIV3_KEY
    settings.WECHAT_PAY_PUBLIC_KEY = public_key_pem(key)
    settings.WECHAT_PAY_PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000"
    settings.WECHAT_PAY_CERT_DIR = wechat_cert_dir(certificate_pem(key, serial=int(CERT_SERIAL, 16)))
    settings.WECHAT_PAY_MCHID = "1900000001"
    settings.WECHAT_PAY_APPID = "wxd678efh567hg6787"
    settings.WECHAT_PAY_PRIVATE_KEY = private_pem(rsa_test_key("wechat-merchant"))
    settings.WECHAT_PAY_CERT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD4C2E51C5"
    settings.WECHAT_PAY_NOTIFY_URL = "https://shop.example.com/api/v1/payments/notify/wechat_pay/"
    return key


def wechat_notification(key, *, serial="5157F09EFDC096DE15EBE81A47057A72", total=12345, state="SUCCESS",
                        mchid="1900000001", apiv3_key=APIV3_KEY, timestamp=None,
                        out_trade_no="PY2611230000001"):
    resource = {"mchid": mchid, "appid": "wxd678efh567hg6787", "out_trade_no": out_trade_no,
                "transaction_id": "4200000001202611230000000001", "trade_type": "NATIVE",
                "trade_state": state,
                "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}}
    nonce = "fdasflkja484"
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), b"transaction")
    body = json.dumps({"id": "EV-2018022511223320873", "event_type": "TRANSACTION.SUCCESS",
                       "resource_type": "encrypt-resource", "summary": "支付成功",
                       "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                                    "ciphertext": base64.b64encode(sealed).decode(),
                                    "associated_data": "transaction", "nonce": nonce}},
                      ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    header_nonce = "593BEC0C930BF1AFEB40B4A08C8FB242"
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": header_nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": key.sign_b64(wechat_message(ts, header_nonce, body))}, body


def alipay_configure(settings):
    """Configure the Alipay adapter with a generated key; returns the key."""
    key = rsa_test_key("alipay")
    settings.ALIPAY_PUBLIC_KEY = public_key_base64(key)
    settings.ALIPAY_APP_ID = "2021000000000001"
    settings.ALIPAY_APP_PRIVATE_KEY = private_pem(rsa_test_key("alipay-app"))
    settings.ALIPAY_NOTIFY_URL = "https://shop.example.com/api/v1/payments/notify/alipay/"
    return key


def alipay_notification(key, **overrides) -> bytes:
    params = {"notify_time": "2026-11-23 10:00:05", "notify_type": "trade_status_sync", "notify_id": "ac0509",
              "app_id": "2021000000000001", "charset": "utf-8", "version": "1.0",
              "trade_no": "2026112322001400000000000001", "out_trade_no": "PY2611230000002",
              "trade_status": "TRADE_SUCCESS", "total_amount": "88.80", "subject": "西湖店 订单 & 退换",
              "fund_bill_list": '[{"amount":"88.80","fundChannel":"ALIPAYACCOUNT"}]', **overrides}
    params["sign"] = key.sign_b64(alipay_sign_content(params).encode())
    params["sign_type"] = "RSA2"
    return urlencode(params).encode()
