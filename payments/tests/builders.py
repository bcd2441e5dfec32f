"""Genuine-looking provider notifications, signed with keys the tests generate."""

import base64
import json
import time
from urllib.parse import urlencode

from payments.providers import crypto
from payments.providers.alipay import alipay_sign_content
from payments.providers.wechat_pay import wechat_message
from payments.tests.keys import certificate_pem, public_key_base64, public_key_pem, rsa_test_key

APIV3_KEY = "0123456789abcdefABCDEF0123456789"


def wechat_configure(settings):
    """Configure the WeChat Pay adapter with a generated platform key; returns the key."""
    key = rsa_test_key("wechat-platform")
    settings.WECHAT_PAY_APIV3_KEY = APIV3_KEY
    settings.WECHAT_PAY_PLATFORM_KEYS = {
        "5157F09EFDC096DE15EBE81A47057A72": certificate_pem(key, serial=0x5157F09E),
        "PUB_KEY_ID_0114232134912410000": public_key_pem(key),
    }
    settings.WECHAT_PAY_MCHID = "1900000001"
    return key


def wechat_notification(key, *, serial="5157F09EFDC096DE15EBE81A47057A72", total=12345, state="SUCCESS",
                        mchid="1900000001", apiv3_key=APIV3_KEY, timestamp=None,
                        out_trade_no="PY2611230000001"):
    resource = {"mchid": mchid, "appid": "wxd678efh567hg6787", "out_trade_no": out_trade_no,
                "transaction_id": "4200000001202611230000000001", "trade_type": "NATIVE",
                "trade_state": state,
                "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}}
    nonce = "fdasflkja484"
    sealed = crypto.aes_256_gcm_encrypt(apiv3_key.encode(), nonce.encode(), json.dumps(resource).encode(),
                                        b"transaction")
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
