"""WeChat Pay and Alipay end to end against local fakes of their APIs (tests/fakes/).

The fakes check our request signatures with keys generated here and sign their answers and
notifications as the providers do; the adapters talk to them through the real SDKs over
loopback HTTP.  The calls run outside transactions, as in production, so these tests use
transactional databases.
"""

import base64
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.core.management import CommandError, call_command
from django.utils import timezone
from wechatpayv3 import WeChatPay

from o2o.schedule import BEAT_SCHEDULE
from payments import bills, micropay, services
from payments.exceptions import ProviderUnavailable
from payments.models import Payment, PaymentNotification, Refund
from payments.providers import provider_named
from payments.reconciliation.models import Mismatch, ReconciliationRun
from stores.tests.factories import StoreFactory
from tests.fakes.alipay import FakeAlipay
from tests.fakes.alipay import Trade as AlipayTrade
from tests.fakes.wechatpay import FakeWeChatPay
from tests.fakes.wechatpay import Order as WeChatOrder

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


@pytest.fixture
def wechat(settings):
    fake = FakeWeChatPay().start()
    fake.configure(settings)
    settings.PAYMENTS_CODE_POLL_SECONDS, settings.PAYMENTS_CODE_WAIT_SECONDS = 0, 1
    yield fake
    fake.stop()


@pytest.fixture
def alipay(settings):
    fake = FakeAlipay().start()
    fake.configure(settings)
    settings.PAYMENTS_CODE_POLL_SECONDS, settings.PAYMENTS_CODE_WAIT_SECONDS = 0, 1
    yield fake
    fake.stop()


def started(tender: str, amount="88.80") -> Payment:
    payment = services.payment_create(reference="SO-TEST-1", tender=tender, amount=amount)
    return services.payment_provider_start(payment=payment.pk)


def captured(fake, tender: str, amount="88.80") -> Payment:
    payment = started(tender, amount)
    fake.pay(payment.number)
    if tender == "wechat_pay":
        headers, body = fake.payment_notification(payment.number)
    else:
        headers, body = {"Content-Type": "application/x-www-form-urlencoded"}, fake.notification(payment.number)
    result = services.notification_handle(provider=tender, headers=headers, body=body)
    assert result.outcome == PaymentNotification.Outcome.APPLIED
    payment.refresh_from_db()
    return payment


# --- the SDKs' private gateway attributes we rely on -------------------------------------------------


def test_the_sdk_gateway_attributes_still_exist_and_point_where_configured(wechat, alipay):
    """Neither SDK has a public base-URL option: if a new version renames the attribute, this fails."""
    wechat_client = provider_named("wechat_pay")._client()
    alipay_client = provider_named("alipay")._client()
    assert isinstance(wechat_client, WeChatPay) and wechat_client._core._gate_way == wechat.url
    assert isinstance(alipay_client, AliPay) and alipay_client._gateway == f"{alipay.url}/gateway.do"


# --- pay, notify, query ------------------------------------------------------------------------------


def test_wechat_native_payment_notification_and_query(wechat):
    payment = started("wechat_pay")
    assert payment.payment_code.startswith("weixin://wxpay/bizpayurl?pr=")
    assert provider_named("wechat_pay").query(payment)["status"] == "pending"

    order = wechat.pay(payment.number)
    headers, body = wechat.payment_notification(payment.number)
    result = services.notification_handle(provider="wechat_pay", headers=headers, body=body)
    replay = services.notification_handle(provider="wechat_pay", headers=headers, body=body)

    payment.refresh_from_db()
    assert (result.outcome, replay.outcome) == ("applied", "duplicate")
    assert (payment.status, payment.provider_txn_id) == ("captured", order.transaction_id)
    state = provider_named("wechat_pay").query(payment)
    assert (state["status"], state["provider_txn_id"], state["amount"]) == ("success", order.transaction_id, D("88.80"))
    assert not wechat.refused  # every request carried a valid merchant signature


def test_wechat_jsapi_returns_signed_parameters_for_wx_request_payment(wechat):
    payment = services.payment_create(reference="SO-MP-1", tender="wechat_pay", amount="9.90")
    answer = provider_named("wechat_pay").create_payment(payment, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    params = answer["pay_params"]
    assert params["package"] == f"prepay_id={answer['prepay_id']}" and params["signType"] == "RSA"
    message = "\n".join([params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]) + "\n"
    wechat.merchant.public.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(),
                                  hashes.SHA256())  # raises if the signature is wrong


def test_a_stale_wechat_notification_is_refused(wechat):
    payment = started("wechat_pay")
    wechat.pay(payment.number)
    headers, body = wechat.payment_notification(payment.number, timestamp=int(timezone.now().timestamp()) - 3600)
    result = services.notification_handle(provider="wechat_pay", headers=headers, body=body)
    assert result.outcome == "rejected_signature" and result.notification.detail == "stale_timestamp"
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_alipay_precreate_notification_and_query(alipay):
    payment = started("alipay")
    assert payment.payment_code.startswith("https://qr.alipay.com/")
    # Nobody scanned the QR yet: not a trade at Alipay, and not an error.
    assert provider_named("alipay").query(payment) == {"status": "not_found"}

    payment = captured(alipay, "alipay")
    assert payment.status == "captured" and payment.provider_txn_id == alipay.trades[payment.number].trade_no
    assert provider_named("alipay").query(payment)["status"] == "success"
    # The SDK would stamp the host's local time; Alipay wants Beijing time.
    beijing = timezone.localtime(timezone.now(), timezone.get_fixed_timezone(480)).strftime("%Y-%m-%d %H")
    assert alipay.timestamps and alipay.timestamps[-1].startswith(beijing)
    assert not alipay.refused


@pytest.mark.parametrize("provider", ["wechat_pay", "alipay"])
def test_a_tampered_answer_is_refused(provider, wechat, alipay):
    fake = wechat if provider == "wechat_pay" else alipay
    payment = services.payment_create(reference="SO-T-1", tender=provider, amount="10.00")
    fake.tamper_next = True
    with pytest.raises(ProviderUnavailable) as exc:
        services.payment_provider_start(payment=payment.pk)
    assert exc.value.params["reason"] == "bad_answer"
    assert Payment.objects.get(pk=payment.pk).payment_code == ""


# --- payment codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider,code", [("wechat_pay", "134567890123450003"), ("alipay", "281234567890120003")])
def test_a_code_the_customer_confirms_later_settles_by_query(provider, code, wechat, alipay):
    payment = services.payment_create(reference="SO-C-1", tender=provider, amount="5.00")
    result = provider_named(provider).micropay(payment, code)
    assert result.status == "success" and result.provider_txn_id


@pytest.mark.parametrize("provider,code", [("wechat_pay", "134567890123450004"), ("alipay", "281234567890120004")])
def test_a_code_never_confirmed_is_reversed_and_declined(provider, code, wechat, alipay):
    payment = services.payment_create(reference="SO-C-2", tender=provider, amount="5.00")
    result = provider_named(provider).micropay(payment, code)
    assert (result.status, result.reason) == ("failed", "payment_timeout")
    if provider == "wechat_pay":
        assert wechat.orders[payment.number].state == "REVOKED"
        assert ("POST", f"/v3/pay/transactions/out-trade-no/{payment.number}/reverse") in wechat.requests
    else:
        assert alipay.trades[payment.number].status == "TRADE_CLOSED" and "alipay.trade.cancel" in alipay.methods


@pytest.mark.parametrize("provider,code", [("wechat_pay", "134567890123450001"), ("alipay", "281234567890120001")])
def test_a_declined_code_says_why(provider, code, wechat, alipay):
    payment = services.payment_create(reference="SO-C-3", tender=provider, amount="5.00")
    result = provider_named(provider).micropay(payment, code)
    assert (result.status, result.reason) == ("failed", "insufficient_balance")


# --- refunds -----------------------------------------------------------------------------------------


def test_wechat_refund_completes_by_its_notification(wechat):
    payment = captured(wechat, "wechat_pay")
    refund = services.refund_create(payment=payment, amount="30.00", reason="return")
    assert services.refund_process(refund_id=refund.pk).status == "pending"  # PROCESSING at WeChat

    headers, body = wechat.settle_refund(refund.number)
    result = services.notification_handle(provider="wechat_pay", headers=headers, body=body)
    again = services.notification_handle(provider="wechat_pay", headers=headers, body=body)

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (result.outcome, result.captured, again.outcome) == ("applied", False, "duplicate")
    assert (refund.status, refund.provider_refund_id) == ("succeeded", wechat.refunds[refund.number].refund_id)
    assert (payment.refunded_amount, payment.refunding_amount) == (D("30.00"), D("0.00"))
    # Processing it again asks, finds it done, sends nothing.
    sent = sum(1 for m, p in wechat.requests if p == "/v3/refund/domestic/refunds")
    services.refund_process(refund_id=refund.pk)
    assert sum(1 for m, p in wechat.requests if p == "/v3/refund/domestic/refunds") == sent == 1


def test_wechat_refund_whose_notification_was_lost_completes_by_query(wechat):
    payment = captured(wechat, "wechat_pay")
    refund = services.refund_create(payment=payment, amount=payment.amount, reason="return")
    services.refund_process(refund_id=refund.pk)
    wechat.settle_refund(refund.number)  # the notification never arrives

    done = services.refund_process(refund_id=refund.pk)  # what refunds_resume does

    assert done.status == "succeeded" and done.provider_refund_id == wechat.refunds[refund.number].refund_id
    assert sum(1 for m, p in wechat.requests if p == "/v3/refund/domestic/refunds") == 1


def test_alipay_refund_and_a_resend(alipay):
    payment = captured(alipay, "alipay")
    refund = services.refund_create(payment=payment, amount="8.80", reason="return")
    done = services.refund_process(refund_id=refund.pk)
    assert done.status == "succeeded" and done.provider_refund_id.endswith(refund.number)
    # A repeated refund answers fund_change N: confirmed by the refund query, not a failure.
    again = provider_named("alipay").refund(Refund.objects.get(pk=refund.pk))
    assert again.status == "succeeded" and len(alipay.refunds) == 1


# --- bills -------------------------------------------------------------------------------------------


def test_the_beat_job_downloads_and_reconciles_both_bills(wechat, alipay):
    assert BEAT_SCHEDULE["payments-bills-reconcile"]["task"] == "payments.tasks.bills_reconcile"
    w = captured(wechat, "wechat_pay", "100.00")
    refund = services.refund_create(payment=w, amount="40.00", reason="return")
    services.refund_process(refund_id=refund.pk)
    headers, body = wechat.settle_refund(refund.number)
    services.notification_handle(provider="wechat_pay", headers=headers, body=body)
    a = captured(alipay, "alipay", "66.60")

    outcomes = bills.bills_reconcile(day=timezone.localdate())

    runs = {o.provider: o.runs for o in outcomes}
    wechat_run, alipay_run = runs["wechat_pay"][0], runs["alipay"][0]
    assert (wechat_run.matched, wechat_run.their_payments, wechat_run.their_refunds) == (2, D("100.00"), D("40.00"))
    assert (alipay_run.matched, alipay_run.their_payments) == (1, D("66.60"))
    assert not Mismatch.objects.exists()
    assert a.status == "captured"
    # Again: the same files, nothing new.
    bills.bills_reconcile(day=timezone.localdate())
    assert ReconciliationRun.objects.count() == 2


def test_a_bill_showing_money_we_do_not_have_is_a_mismatch(wechat):
    w = captured(wechat, "wechat_pay", "100.00")
    wechat.orders["PY-STRANGER"] = type(wechat.orders[w.number])("PY-STRANGER", 500, "native")
    wechat.pay("PY-STRANGER")

    bills.bills_reconcile(day=timezone.localdate() - timedelta(days=0))

    mismatch = Mismatch.objects.get()
    assert (mismatch.kind, mismatch.their_amount) == ("missing_ours", D("5.00"))


def test_payments_check_names_what_is_missing_and_never_a_secret(wechat, settings, capsys):
    settings.ALIPAY_APP_ID = settings.ALIPAY_APP_PRIVATE_KEY = ""
    call_command("payments_check")
    out = capsys.readouterr().out
    assert "wechat_pay: ready" in out and "ALIPAY_APP_ID" in out and "ALIPAY_APP_PRIVATE_KEY" in out
    assert settings.WECHAT_PAY_APIV3_KEY not in out and "PRIVATE KEY-----" not in out


# --- payment-code charges whose answer was lost --------------------------------------------------------


@pytest.fixture
def each_wallets_own_provider(settings):
    settings.POS_MICROPAY_PROVIDER = ""


def lost_answer(provider: str, store) -> Payment:
    """A till's charge that reached the provider but whose answer never came back (pending with us)."""
    code = "134567890123456789" if provider == "wechat_pay" else "281234567890123456"
    return micropay.micropay_open(store=store, client_uuid=uuid.uuid4(), tender=provider, amount="5.00", code=code)


def provider_trade(provider: str, fake, payment: Payment, state: str):
    if provider == "wechat_pay":
        fake.orders[payment.number] = WeChatOrder(payment.number, 500, "codepay")
        if state == "paid":
            fake.pay(payment.number)
        else:
            fake.orders[payment.number].state = "USERPAYING"
    else:
        fake.trades[payment.number] = AlipayTrade(payment.number, D("5.00"))
        fake.trades[payment.number].scanned = True
        if state == "paid":
            fake.pay(payment.number)


@pytest.mark.parametrize("provider", ["wechat_pay", "alipay"])
@pytest.mark.usefixtures("each_wallets_own_provider")
def test_a_charge_the_provider_took_is_captured_then_refunded_when_no_sale_takes_it(provider, wechat, alipay):
    fake = wechat if provider == "wechat_pay" else alipay
    payment = lost_answer(provider, StoreFactory())
    provider_trade(provider, fake, payment, "paid")

    assert micropay.micropay_stale_resolve(now=timezone.now())["left"] == 0  # too recent to ask yet
    payment.refresh_from_db()
    assert payment.status == "pending"
    counts = micropay.micropay_stale_resolve(now=timezone.now() + timedelta(minutes=3))
    again = micropay.micropay_stale_resolve(now=timezone.now() + timedelta(minutes=3))

    payment.refresh_from_db()
    assert counts == {"captured": 1, "closed": 0, "left": 0} and again == {"captured": 0, "closed": 0, "left": 0}
    assert payment.status == "captured" and payment.provider_txn_id
    # No sale took it: the orphan sweep gives the customer the money back, in full, once.
    assert micropay.micropay_orphans_release(now=timezone.now() + timedelta(minutes=30)) == 1
    assert micropay.micropay_orphans_release(now=timezone.now() + timedelta(minutes=30)) == 0
    assert list(Refund.objects.filter(payment=payment).values_list("amount", flat=True)) == [D("5.00")]


@pytest.mark.parametrize("provider", ["wechat_pay", "alipay"])
@pytest.mark.usefixtures("each_wallets_own_provider")
def test_a_charge_still_waiting_for_the_customer_is_reversed(provider, wechat, alipay):
    fake = wechat if provider == "wechat_pay" else alipay
    payment = lost_answer(provider, StoreFactory())
    provider_trade(provider, fake, payment, "waiting")

    counts = micropay.micropay_stale_resolve(now=timezone.now() + timedelta(minutes=3))

    payment.refresh_from_db()
    assert counts == {"captured": 0, "closed": 1, "left": 0}
    assert payment.status == "failed"
    if provider == "wechat_pay":
        assert wechat.orders[payment.number].state == "REVOKED"
    else:
        assert alipay.trades[payment.number].status == "TRADE_CLOSED"


@pytest.mark.parametrize("provider", ["wechat_pay", "alipay"])
@pytest.mark.usefixtures("each_wallets_own_provider")
def test_a_charge_the_provider_never_received_is_closed(provider, wechat, alipay):
    payment = lost_answer(provider, StoreFactory())

    counts = micropay.micropay_stale_resolve(now=timezone.now() + timedelta(minutes=3))

    payment.refresh_from_db()
    assert counts["closed"] == 1 and payment.status == "failed"


@pytest.mark.usefixtures("each_wallets_own_provider")
def test_a_provider_that_cannot_answer_is_asked_again_later(wechat, alipay):
    payment = lost_answer("wechat_pay", StoreFactory())
    provider_trade("wechat_pay", wechat, payment, "paid")
    wechat.stop()

    counts = micropay.micropay_stale_resolve(now=timezone.now() + timedelta(minutes=3))

    payment.refresh_from_db()
    assert counts == {"captured": 0, "closed": 0, "left": 1} and payment.status == "pending"


@pytest.mark.usefixtures("each_wallets_own_provider")
def test_the_audit_fails_on_a_payment_code_charge_left_pending(wechat, alipay):
    payment = lost_answer("wechat_pay", StoreFactory())
    call_command("audit_ledgers")  # minutes old: the resolver has not had its turn yet
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=2))

    with pytest.raises(CommandError, match="1 invariant check"):
        call_command("audit_ledgers")

    micropay.micropay_stale_resolve()  # nothing reached the provider: closed, and the audit is clean
    call_command("audit_ledgers")
