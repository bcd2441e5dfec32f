"""Provider adapters: signature verification of sandbox, WeChat Pay v3 and Alipay notifications.

The WeChat Pay and Alipay checks run through their SDKs (wechatpayv3, python-alipay-sdk); the
notifications here are built independently, with generated keys and OpenSSL-made vectors."""

import base64
import json
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from payments.exceptions import InvalidSignature, ProviderNotConfigured, UnknownProvider
from payments.models import Payment
from payments.providers import base, provider_for, provider_named
from payments.providers.base import NotificationStatus
from payments.providers.sandbox import HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, sandbox_notification
from payments.tests.builders import (
    alipay_configure,
    wechat_cert_dir,
    alipay_notification,
    wechat_configure,
    wechat_notification,
)
from payments.tests.keys import rsa_test_key

INTEROP = json.loads((Path(__file__).parent / "data" / "interop.json").read_text())


def reason(exc_info) -> str:
    return exc_info.value.params["reason"]


def flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def test_registry_maps_tenders_to_adapters():
    assert provider_for("sandbox").name == "sandbox"
    assert provider_for("wechat_pay").name == "wechat_pay"
    assert provider_for("alipay").name == "alipay"
    with pytest.raises(UnknownProvider):
        provider_for("cash")
    with pytest.raises(UnknownProvider):
        provider_named("paypal")


# --- sandbox ------------------------------------------------------------------------------------


def sandbox_payment(amount="12.34"):
    return Payment(number="PY2611230000001", reference="SO1", amount=Decimal(amount))


def test_sandbox_builds_notifications_it_accepts():
    headers, body = sandbox_notification(sandbox_payment())
    note = provider_named("sandbox").verify_notification(headers, body)
    assert (note.reference, note.provider_txn_id, note.amount, note.status) == (
        "PY2611230000001", "SBXPY2611230000001", Decimal("12.34"), NotificationStatus.SUCCESS)


def test_sandbox_header_names_are_case_insensitive():
    headers, body = sandbox_notification(sandbox_payment())
    note = provider_named("sandbox").verify_notification({k.upper(): v for k, v in headers.items()}, body)
    assert note.amount == Decimal("12.34")


@pytest.mark.parametrize("index", [0, 20, -2])
def test_sandbox_rejects_a_one_byte_change_of_the_body(index):
    headers, body = sandbox_notification(sandbox_payment())
    with pytest.raises(InvalidSignature) as exc:
        provider_named("sandbox").verify_notification(headers, flip(body, index))
    assert reason(exc) == "bad_signature"


@pytest.mark.parametrize("header", [HEADER_NONCE, HEADER_TIMESTAMP])
def test_sandbox_signature_covers_nonce_and_timestamp(header):
    headers, body = sandbox_notification(sandbox_payment())
    headers[header] = headers[header][:-1] + ("1" if headers[header][-1] != "1" else "2")
    with pytest.raises(InvalidSignature) as exc:
        provider_named("sandbox").verify_notification(headers, body)
    assert reason(exc) == "bad_signature"


@pytest.mark.parametrize("offset,accepted", [(-310, False), (-290, True), (290, True), (310, False)])  # 10 s each side of 300
def test_sandbox_refuses_timestamps_more_than_five_minutes_away(offset, accepted):
    headers, body = sandbox_notification(sandbox_payment(), timestamp=int(time.time()) + offset)
    adapter = provider_named("sandbox")
    if accepted:
        assert adapter.verify_notification(headers, body).amount == Decimal("12.34")
    else:
        with pytest.raises(InvalidSignature) as exc:
            adapter.verify_notification(headers, body)
        assert reason(exc) == "stale_timestamp"


def test_sandbox_secret_comes_from_settings(settings):
    headers, body = sandbox_notification(sandbox_payment())
    settings.SANDBOX_PAY_SECRET = "production-like secret"
    with pytest.raises(InvalidSignature):
        provider_named("sandbox").verify_notification(headers, body)
    headers, body = sandbox_notification(sandbox_payment())
    assert provider_named("sandbox").verify_notification(headers, body).amount == Decimal("12.34")


def test_sandbox_missing_signature_is_rejected():
    headers, body = sandbox_notification(sandbox_payment())
    del headers[HEADER_SIGNATURE]
    with pytest.raises(InvalidSignature) as exc:
        provider_named("sandbox").verify_notification(headers, body)
    assert reason(exc) == "missing_signature_headers"


# --- WeChat Pay v3 ------------------------------------------------------------------------------

@pytest.fixture
def wechat(settings):
    return wechat_configure(settings)


@pytest.mark.parametrize("serial", ["5157F09EFDC096DE15EBE81A47057A72", "PUB_KEY_ID_0114232134912410000"])
def test_wechat_accepts_a_good_notification_with_certificate_or_public_key(wechat, serial):
    headers, body = wechat_notification(wechat, serial=serial)
    note = provider_named("wechat_pay").verify_notification(headers, body)
    assert (note.reference, note.provider_txn_id, note.amount, note.status) == (
        "PY2611230000001", "4200000001202611230000000001", Decimal("123.45"), NotificationStatus.SUCCESS)
    assert note.raw["mchid"] == "1900000001"


@pytest.mark.parametrize("index", [0, 50, -3])
def test_wechat_rejects_a_one_byte_change_of_the_body(wechat, index):
    headers, body = wechat_notification(wechat)
    with pytest.raises(InvalidSignature) as exc:
        provider_named("wechat_pay").verify_notification(headers, flip(body, index))
    assert reason(exc) == "bad_signature"


def test_wechat_rejects_a_one_byte_change_of_the_signature(wechat):
    headers, body = wechat_notification(wechat)
    raw = base64.b64decode(headers["Wechatpay-Signature"])
    headers["Wechatpay-Signature"] = base64.b64encode(flip(raw, 100)).decode()
    with pytest.raises(InvalidSignature) as exc:
        provider_named("wechat_pay").verify_notification(headers, body)
    assert reason(exc) == "bad_signature"


def test_wechat_rejects_a_notification_signed_with_another_key(wechat):
    headers, body = wechat_notification(rsa_test_key("impostor"))
    with pytest.raises(InvalidSignature) as exc:
        provider_named("wechat_pay").verify_notification(headers, body)
    assert reason(exc) == "bad_signature"


@pytest.mark.parametrize("kwargs,expected", [
    ({"serial": "UNKNOWN"}, "unknown_serial"),
    ({"timestamp": 1_600_000_000}, "stale_timestamp"),
    # The SDK answers None both for a bad signature and for a resource it cannot open.
    ({"apiv3_key": "another-32-byte-key-000000000000"}, "bad_signature"),
    ({"mchid": "1900000002"}, "wrong_mchid"),
    ({"total": 0}, "bad_amount"),
])
def test_wechat_rejects_properly_signed_but_unacceptable_notifications(wechat, kwargs, expected):
    headers, body = wechat_notification(wechat, **kwargs)
    with pytest.raises(InvalidSignature) as exc:
        provider_named("wechat_pay").verify_notification(headers, body)
    assert reason(exc) == expected


def test_wechat_maps_closed_trades_to_failed(wechat):
    headers, body = wechat_notification(wechat, state="CLOSED")
    assert provider_named("wechat_pay").verify_notification(headers, body).status == NotificationStatus.FAILED


def test_wechat_is_not_configured_without_keys(settings):
    settings.WECHAT_PAY_APIV3_KEY = ""
    with pytest.raises(ProviderNotConfigured):
        provider_named("wechat_pay").verify_notification({}, b"{}")
    with pytest.raises(ProviderNotConfigured):
        provider_named("wechat_pay").create_payment(Payment(number="PY1"))


def test_wechat_accepts_a_notification_made_by_openssl(settings, monkeypatch):
    vector = INTEROP["wechat_pay"]
    wechat_configure(settings)
    settings.WECHAT_PAY_APIV3_KEY = vector["apiv3_key"]
    settings.WECHAT_PAY_PUBLIC_KEY = settings.WECHAT_PAY_PUBLIC_KEY_ID = ""
    settings.WECHAT_PAY_CERT_DIR = wechat_cert_dir(vector["certificate"], vector["serial"])
    monkeypatch.setattr(base, "time", SimpleNamespace(time=lambda: INTEROP["timestamp"] + 10))
    adapter = provider_named("wechat_pay")

    note = adapter.verify_notification(vector["headers"], vector["body"].encode())

    assert (note.reference, note.amount, note.status) == ("PY2611230000001", Decimal("123.45"),
                                                          NotificationStatus.SUCCESS)
    tampered = vector["body"].replace("EV-2018", "EV-2019")
    assert tampered != vector["body"]
    with pytest.raises(InvalidSignature):
        adapter.verify_notification(vector["headers"], tampered.encode())


# --- Alipay -------------------------------------------------------------------------------------


@pytest.fixture
def alipay(settings):
    return alipay_configure(settings)


def test_alipay_accepts_a_good_notification(alipay):
    note = provider_named("alipay").verify_notification({}, alipay_notification(alipay))
    assert (note.reference, note.provider_txn_id, note.amount, note.status) == (
        "PY2611230000002", "2026112322001400000000000001", Decimal("88.80"), NotificationStatus.SUCCESS)
    assert "sign" not in note.raw and note.raw["subject"] == "西湖店 订单 & 退换"


@pytest.mark.parametrize("status,expected", [("TRADE_FINISHED", NotificationStatus.SUCCESS),
                                             ("TRADE_CLOSED", NotificationStatus.FAILED),
                                             ("WAIT_BUYER_PAY", NotificationStatus.PENDING)])
def test_alipay_trade_status(alipay, status, expected):
    body = alipay_notification(alipay, trade_status=status)
    assert provider_named("alipay").verify_notification({}, body).status == expected


def test_alipay_rejects_a_one_byte_change_of_the_amount(alipay):
    body = alipay_notification(alipay)
    tampered = body.replace(b"total_amount=88.80", b"total_amount=88.81")
    assert tampered != body
    with pytest.raises(InvalidSignature) as exc:
        provider_named("alipay").verify_notification({}, tampered)
    assert reason(exc) == "bad_signature"


def test_alipay_rejects_an_added_parameter(alipay):
    with pytest.raises(InvalidSignature):
        provider_named("alipay").verify_notification({}, alipay_notification(alipay) + b"&refund_fee=88.80")


def test_alipay_rejects_a_notification_signed_with_another_key(alipay):
    with pytest.raises(InvalidSignature) as exc:
        provider_named("alipay").verify_notification({}, alipay_notification(rsa_test_key("impostor")))
    assert reason(exc) == "bad_signature"


def test_alipay_rejects_another_sign_type_and_repeated_keys(alipay):
    body = alipay_notification(alipay)
    with pytest.raises(InvalidSignature):
        provider_named("alipay").verify_notification({}, body.replace(b"sign_type=RSA2", b"sign_type=RSA"))
    with pytest.raises(InvalidSignature):
        provider_named("alipay").verify_notification({}, body + b"&total_amount=0.01")


@pytest.mark.parametrize("overrides,expected", [({"app_id": "2021000000000999"}, "wrong_app_id"),
                                                ({"total_amount": "88.8x"}, "bad_amount"),
                                                ({"total_amount": "88.801"}, "bad_amount")])
def test_alipay_rejects_signed_but_unacceptable_notifications(alipay, overrides, expected):
    with pytest.raises(InvalidSignature) as exc:
        provider_named("alipay").verify_notification({}, alipay_notification(alipay, **overrides))
    assert reason(exc) == expected


def test_alipay_is_not_configured_without_a_key(settings):
    settings.ALIPAY_PUBLIC_KEY = ""
    with pytest.raises(ProviderNotConfigured):
        provider_named("alipay").verify_notification({}, b"a=1")


def test_alipay_accepts_a_notification_made_by_openssl(settings):
    vector = INTEROP["alipay"]
    alipay_configure(settings)
    settings.ALIPAY_PUBLIC_KEY = vector["public_key"]
    settings.ALIPAY_APP_ID = "2021000000000001"
    adapter = provider_named("alipay")

    note = adapter.verify_notification({}, vector["body"].encode())

    assert (note.reference, note.amount) == ("PY2611230000002", Decimal("88.80"))
    tampered = vector["body"].replace("total_amount=88.80", "total_amount=8.80")
    assert tampered != vector["body"]
    with pytest.raises(InvalidSignature):
        adapter.verify_notification({}, tampered.encode())
