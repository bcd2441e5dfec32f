"""The tender registry: how each tender takes and gives back money.

Services never branch on a tender's name; they ask its ``TenderType``.  A new
tender (wallet, points) is one subclass registered here plus its value in
``models.Tender``: its hooks run inside the service's transaction, so a wallet
tender can debit the member's wallet ledger in ``start`` and credit it back in
``refund_start``, atomically with the payment row.
"""

from __future__ import annotations

from typing import ClassVar

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members import selectors as member_read
from members.services import points as member_points
from members.services import wallet as member_wallet
from payments.exceptions import InvalidPaymentInput, UnknownTender
from payments.models import Payment, Refund, Tender


class TenderType:
    tender: ClassVar[str]
    # Stored on the payment; for provider-backed tenders it names the adapter too.
    provider: ClassVar[str] = ""
    # A provider adapter takes the money (a QR code, a notification, a refund call).
    provider_backed: ClassVar[bool] = False
    # The money is in hand when the payment is recorded (cash in the drawer, a card slip).
    captures_on_create: ClassVar[bool] = False
    # refunds_allocate() gives money back to lower numbers first.
    refund_priority: ClassVar[int] = 50

    def start(self, payment: Payment, *, card_reference: str) -> None:
        """Fill in a new (unsaved) payment.  Runs inside payment_create's transaction."""
        if card_reference:
            raise InvalidPaymentInput(_("A card reference is only taken for card payments."),
                                      code="card_reference_not_allowed", field="card_reference")
        if self.captures_on_create:
            payment.status = Payment.Status.CAPTURED
            payment.captured_at = timezone.now()

    def refunds_via_provider(self, refund: Refund) -> bool:
        """True when the money goes back through the provider (a pending refund, completed after commit)."""
        return self.provider_backed and refund.method == Refund.Method.ORIGINAL

    def refund_start(self, refund: Refund) -> None:
        """Hook for a refund given back at once, inside refund_create's transaction."""


_REGISTRY: dict[str, TenderType] = {}


def tender_type(cls: type[TenderType]) -> type[TenderType]:
    if cls.tender in _REGISTRY:
        raise ValueError(f"tender {cls.tender} registered twice")
    _REGISTRY[cls.tender] = cls()
    return cls


def tender_for(tender: str) -> TenderType:
    try:
        return _REGISTRY[tender]
    except (KeyError, TypeError):
        raise UnknownTender(params={"tender": str(tender)}, field="tender") from None


def tenders_registered() -> list[str]:
    return sorted(_REGISTRY)


@tender_type
class CashTender(TenderType):
    tender = Tender.CASH
    captures_on_create = True
    # Cash goes back last: it needs an open drawer and is where counter fraud happens.
    refund_priority = 90


@tender_type
class UnionPayCardTender(TenderType):
    """Paid on the store's card terminal; the clerk types the terminal's reference number.

    The reference is kept as the provider transaction id, so one card slip can
    be recorded on one payment only.
    """

    tender = Tender.UNIONPAY_CARD
    provider = "unionpay"
    captures_on_create = True
    refund_priority = 30

    def start(self, payment: Payment, *, card_reference: str) -> None:
        card_reference = card_reference.strip()
        if not card_reference or len(card_reference) > 64:
            raise InvalidPaymentInput(_("Type the reference number printed on the card slip."),
                                      code="card_reference_required", field="card_reference")
        payment.provider_txn_id = card_reference
        payment.status = Payment.Status.CAPTURED
        payment.captured_at = timezone.now()


@tender_type
class CashOnDeliveryTender(TenderType):
    """Collected by the courier: pending until delivery, then captured by ``payment_capture``
    with the courier's collection reference as the transaction id (no network call)."""

    tender = Tender.CASH_ON_DELIVERY
    provider = "cod"
    refund_priority = 60


@tender_type
class MarketplaceTender(TenderType):
    """Collected by a marketplace on its own checkout; it pays the money over in its settlement.

    The reference is "<marketplace>:<its order id>", kept as the transaction id, so one
    marketplace order pays one of our orders once.  Refunds are given back at once: the
    marketplace refunds its customer and deducts it from what it owes us.
    """

    tender = Tender.MARKETPLACE
    provider = "marketplace"
    captures_on_create = True
    refund_priority = 20

    def start(self, payment: Payment, *, card_reference: str) -> None:
        card_reference = card_reference.strip()
        if not card_reference or len(card_reference) > 64:
            raise InvalidPaymentInput(_("A marketplace payment needs the marketplace's order reference."),
                                      code="marketplace_reference_required", field="card_reference")
        payment.provider_txn_id = card_reference
        payment.status = Payment.Status.CAPTURED
        payment.captured_at = timezone.now()


class ProviderTender(TenderType):
    provider_backed = True
    # Money goes back to the payer's account first: no cash leaves a drawer.
    refund_priority = 10


@tender_type
class WeChatPayTender(ProviderTender):
    tender = Tender.WECHAT_PAY
    provider = "wechat_pay"


@tender_type
class AlipayTender(ProviderTender):
    tender = Tender.ALIPAY
    provider = "alipay"


@tender_type
class SandboxTender(ProviderTender):
    tender = Tender.SANDBOX
    provider = "sandbox"


@tender_type
class ExchangeCreditTender(TenderType):
    """The value of goods taken back in an exchange, paying for the new goods.

    It is captured at once (the matching refund of the original order, method
    "exchange", moves the same amount out).  No money ever sat behind it, so a
    later return of the new goods pays this part out in cash at the store.
    """

    tender = Tender.EXCHANGE_CREDIT
    captures_on_create = True
    refund_priority = 80


class MemberTender(TenderType):
    """Paid from a member's own ledger, inside the payment's transaction."""

    captures_on_create = True

    def start(self, payment: Payment, *, card_reference: str) -> None:
        if payment.member_id is None:
            raise InvalidPaymentInput(_("Look up the member first."), code="member_required", field="member")
        self.take(payment)
        super().start(payment, card_reference=card_reference)

    def take(self, payment: Payment) -> None:
        raise NotImplementedError

    def refund_start(self, refund: Refund) -> None:
        # A refund "exchange" moves this value into the exchange sale's credit, which the member
        # spends on the new goods: giving it back to the ledger as well would pay it out twice.
        if refund.method != Refund.Method.EXCHANGE:
            self.give_back(refund)

    def give_back(self, refund: Refund) -> None:
        raise NotImplementedError


@tender_type
class WalletTender(MemberTender):
    """Stored value (储值).  The wallet splits the spend into principal and bonus and records,
    per recharge lot, which store sold it (for settlement of cross-store spending); a refund
    puts back the same split."""

    tender = Tender.WALLET
    refund_priority = 20

    def take(self, payment: Payment) -> None:
        member_wallet.wallet_spend(member=payment.member_id, amount=payment.amount, reference=payment.number,
                                   store_id=payment.store_id)

    def give_back(self, refund: Refund) -> None:
        payment = refund.payment
        member_wallet.wallet_refund_spend(member=payment.member_id, reference=payment.number, amount=refund.amount)


@tender_type
class PointsTender(MemberTender):
    """Points redeemed as money at the programme's rate (e.g. 100 points = 1.00 CNY).  A refund
    gives back the points that amount stands for."""

    tender = Tender.POINTS
    refund_priority = 25

    @staticmethod
    def points_for(amount) -> int:
        points = member_read.points_for_value(amount)
        if member_read.points_value(points) != amount:
            raise InvalidPaymentInput(_("This amount cannot be paid with whole points."),
                                      code="points_amount_not_whole", field="amount")
        return points

    def take(self, payment: Payment) -> None:
        member_points.points_redeem(member=payment.member_id, points=self.points_for(payment.amount),
                                    order_number=payment.reference)

    def give_back(self, refund: Refund) -> None:
        payment = refund.payment
        member_points.points_restore_redeemed(member=payment.member_id, order_number=payment.reference,
                                              points=self.points_for(refund.amount))
