"""Payments, refunds and the log of provider notifications.

A ``Payment`` is one tender applied to one reference (the order number); a
reference may have several (split tender).  ``refunded_amount`` caches the
sum of its succeeded refunds and ``refunding_amount`` the sum of its pending
ones, so the database itself refuses an over-refund (CHECK refunded +
refunding <= amount).  ``provider_txn_id`` is unique per provider, so one
provider transaction can capture one payment only.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from o2o.money import CURRENCY
# Reconciliation keeps its models in its own module; they are part of this app.
from payments.reconciliation.models import Mismatch, ProviderFeeRate, ReconciliationRun, StatementRow
from stores.models import Store

MONEY = {"max_digits": 12, "decimal_places": 2}


class Tender(models.TextChoices):
    CASH = "cash", _("Cash")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    UNIONPAY_CARD = "unionpay_card", _("UnionPay card")
    CASH_ON_DELIVERY = "cash_on_delivery", _("Cash on delivery")
    SANDBOX = "sandbox", _("Sandbox (test payments)")
    EXCHANGE_CREDIT = "exchange_credit", _("Exchange credit")
    WALLET = "wallet", _("Member wallet")
    POINTS = "points", _("Member points")
    MARKETPLACE = "marketplace", _("Paid on the marketplace")


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CAPTURED = "captured", _("Captured")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    # Our own number for the payment; providers know it as out_trade_no.  One
    # order may need several provider payments (a retried QR, split tender),
    # and providers refuse to reuse an out_trade_no, so it is not the order number.
    number = models.CharField(_("number"), max_length=32, unique=True)
    reference = models.CharField(_("reference"), max_length=64, db_index=True,
                                 help_text=_("The order number this payment belongs to."))
    tender = models.CharField(_("tender"), max_length=20, choices=Tender.choices)
    provider = models.CharField(_("provider"), max_length=30, blank=True, default="")
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    provider_txn_id = models.CharField(_("provider transaction id"), max_length=64, null=True, blank=True)
    payment_code = models.CharField(_("payment code"), max_length=500, blank=True, default="",
                                    help_text=_("QR payload or URL the provider gave for this payment."))
    method = models.CharField(_("payment method"), max_length=20, blank=True, default="",
                              help_text=_("How the customer pays online: qr (a QR code or payment URL), "
                                          "jsapi (inside WeChat) or mini_program."))
    refunded_amount = models.DecimalField(_("refunded"), **MONEY, default=0)
    refunding_amount = models.DecimalField(_("refund pending"), **MONEY, default=0)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="payments",
                              verbose_name=_("store"))
    # The member whose wallet or points paid (those tenders need one).
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="payments", verbose_name=_("member"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    captured_at = models.DateTimeField(_("captured at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True,
                                     help_text=_("When the payment failed or was cancelled."))
    provider_checked_at = models.DateTimeField(
        _("last asked at the provider"), null=True, blank=True,
        help_text=_("When the provider was last asked whether this online payment was paid (a notification "
                    "that never arrived)."))
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("closed by"))

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-id"]
        indexes = [models.Index(fields=["store", "captured_at"], name="payment_store_captured_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(refunded_amount__gte=0, refunding_amount__gte=0),
                                   name="payment_refunds_not_negative"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("amount")),
                                   name="payment_refunded_within_amount"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("amount") - F("refunding_amount")),
                                   name="payment_refunds_within_amount"),
            models.CheckConstraint(
                condition=Q(status="captured") | Q(refunded_amount=0, refunding_amount=0),
                name="payment_refunds_only_when_captured"),
            models.CheckConstraint(
                condition=(Q(status="captured", captured_at__isnull=False)
                           | (~Q(status="captured") & Q(captured_at__isnull=True))),
                name="payment_captured_at_iff_captured"),
            models.UniqueConstraint(fields=["provider", "provider_txn_id"], name="payment_provider_txn_once",
                                    condition=Q(provider_txn_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.get_tender_display()} {self.amount} ({self.get_status_display()})"

    @property
    def refundable_amount(self):
        return self.amount - self.refunded_amount - self.refunding_amount


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Method(models.TextChoices):
        ORIGINAL = "original", _("To the original tender")
        CASH = "cash", _("Cash at the store")
        EXCHANGE = "exchange", _("Credited to an exchange order")

    # Providers know it as out_refund_no; resending it makes a refund request idempotent there.
    number = models.CharField(_("number"), max_length=32, unique=True)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds",
                                verbose_name=_("payment"))
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY, editable=False)
    method = models.CharField(_("method"), max_length=10, choices=Method.choices, default=Method.ORIGINAL)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=64, null=True, blank=True,
                                          unique=True)
    reason = models.CharField(_("reason"), max_length=200)
    policy_note = models.CharField(_("policy note"), max_length=300, blank=True, default="",
                                   help_text=_("How and where the money went back, e.g. refunded in cash "
                                               "at the store with manager approval."))
    failure = models.CharField(_("failure"), max_length=300, blank=True, default="")
    overpayment = models.BooleanField(
        _("overpayment"), default=False,
        help_text=_("Gives back money captured beyond what the order was due (a second capture, or a "
                    "capture on a closed order); it never counted towards the order."))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds",
                              verbose_name=_("store"), help_text=_("Where the refund was handed out."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_created_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=(Q(status="pending", completed_at__isnull=True)
                           | (~Q(status="pending") & Q(completed_at__isnull=False))),
                name="refund_completed_at_iff_done"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.amount} ({self.get_status_display()})"


class PaymentNotification(models.Model):
    """Every notification a provider (or anyone claiming to be one) sent, valid or not."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied")
        DUPLICATE = "duplicate", _("Duplicate")
        REJECTED_SIGNATURE = "rejected_signature", _("Rejected: signature")
        REJECTED_AMOUNT = "rejected_amount", _("Rejected: amount")
        UNKNOWN_PAYMENT = "unknown_payment", _("Unknown payment")
        OUT_OF_ORDER = "out_of_order", _("Out of order")

    provider = models.CharField(_("provider"), max_length=30)
    provider_txn_id = models.CharField(_("provider transaction id"), max_length=64, blank=True, default="",
                                       db_index=True)
    out_trade_no = models.CharField(_("payment number sent"), max_length=64, blank=True, default="")
    amount = models.DecimalField(_("amount"), **MONEY, null=True, blank=True)
    status_reported = models.CharField(_("status reported"), max_length=20, blank=True, default="")
    body = models.TextField(_("raw body"), blank=True, default="")
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=200, blank=True, default="")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="notifications", verbose_name=_("payment"))

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_txn_id or '-'} {self.get_outcome_display()}"


# --- POS shifts and cash control -------------------------------------------------------------


class PosShift(models.Model):
    """A till session at one store register: opened with a counted float, closed with a count.

    Sales and cash refunds at the counter need the store's open shift; the Z
    report aggregates the store's payments and refunds between ``opened_at``
    and ``closed_at``.  At most one shift per store register is open.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="pos_shifts", verbose_name=_("store"))
    register = models.CharField(_("register"), max_length=20, default="1")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("opened by"))
    opened_at = models.DateTimeField(_("opened at"))
    opening_float = models.DecimalField(_("opening float"), **MONEY)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("closed by"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    expected_cash = models.DecimalField(_("expected cash"), null=True, blank=True, **MONEY)
    counted_cash = models.DecimalField(_("counted cash"), null=True, blank=True, **MONEY)
    over_short = models.DecimalField(_("over (+) / short (−)"), null=True, blank=True, **MONEY)
    denominations = models.JSONField(_("count by denomination"), default=dict, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True, default="")
    # The store's cash rounding unit when the shift opened: every cash sale and cash refund of the
    # shift is a multiple of it, so the drawer is countable in the notes and coins the count offers.
    cash_unit = models.DecimalField(_("cash unit"), max_digits=4, decimal_places=2, default=Decimal("0.01"))

    class Meta:
        verbose_name = _("POS shift")
        verbose_name_plural = _("POS shifts")
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["store", "opened_at"], name="pos_shift_store_opened_idx")]
        constraints = [
            models.UniqueConstraint(fields=["store", "register"], condition=Q(status="open"),
                                    name="pos_shift_one_open_per_register"),
            models.CheckConstraint(condition=Q(opening_float__gte=0), name="pos_shift_float_non_negative"),
            models.CheckConstraint(
                condition=(Q(status="open", closed_at__isnull=True, counted_cash__isnull=True)
                           | Q(status="closed", closed_at__isnull=False, counted_cash__isnull=False,
                               expected_cash__isnull=False, over_short__isnull=False)),
                name="pos_shift_closed_has_count"),
            models.CheckConstraint(condition=Q(counted_cash__isnull=True) | Q(counted_cash__gte=0),
                                   name="pos_shift_counted_non_negative"),
            models.CheckConstraint(
                condition=Q(over_short__isnull=True) | Q(over_short=F("counted_cash") - F("expected_cash")),
                name="pos_shift_over_short_adds_up"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.register} {self.opened_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class CashMovement(models.Model):
    """Cash into or out of a shift's drawer.

    ``in`` and ``out`` are the clerk's movements (change float topped up, cash
    taken to the safe) with a reason.  ``sale`` and ``refund`` are written when
    the shift closes: the cash payments and cash refunds of its window, so a
    closed shift's drawer is float + Σ signed movements = expected cash.
    """

    class Kind(models.TextChoices):
        IN = "in", _("Cash in")
        OUT = "out", _("Cash out")
        SALE = "sale", _("Cash sales")
        REFUND = "refund", _("Cash refunds")

    shift = models.ForeignKey(PosShift, on_delete=models.PROTECT, related_name="movements",
                              verbose_name=_("shift"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    reason = models.CharField(_("reason"), max_length=200)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("by"))
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="")
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("cash movement")
        verbose_name_plural = _("cash movements")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="cash_movement_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"

    @property
    def signed_amount(self):
        return -self.amount if self.kind in (self.Kind.OUT, self.Kind.REFUND) else self.amount

    @property
    def reason_shown(self) -> str:
        """The clerk's reason of a cash in or out; the sales and refunds written at close carry an
        internal note only (their kind's label says what they are), so pages show nothing for them."""
        return self.reason if self.kind in (self.Kind.IN, self.Kind.OUT) else ""


class ShiftHandover(models.Model):
    """交班: the drawer passes from one clerk to the next while the shift stays open.

    The expected cash is taken at that moment (the shift row locked, so no sale is
    half-way in); the outgoing clerk may count the drawer, and the difference is kept.
    Nothing of the shift's own count changes: the close still counts the whole window.
    """

    shift = models.ForeignKey(PosShift, on_delete=models.PROTECT, related_name="handovers",
                              verbose_name=_("shift"))
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("handed over by"))
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("taken over by"))
    at = models.DateTimeField(_("time"))
    expected_cash = models.DecimalField(_("expected cash"), **MONEY)
    counted_cash = models.DecimalField(_("counted cash"), null=True, blank=True, **MONEY)
    difference = models.DecimalField(_("over (+) / short (−)"), null=True, blank=True, **MONEY)

    class Meta:
        verbose_name = _("shift hand-over")
        verbose_name_plural = _("shift hand-overs")
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(from_user=F("to_user")), name="shift_handover_two_clerks"),
            models.CheckConstraint(
                condition=(Q(counted_cash__isnull=True, difference__isnull=True)
                           | Q(counted_cash__gte=0, difference=F("counted_cash") - F("expected_cash"))),
                name="shift_handover_difference_adds_up"),
        ]

    def __str__(self) -> str:
        return f"{self.shift_id} {self.at:%Y-%m-%d %H:%M}"


class CashTendered(models.Model):
    """What the customer handed over for a cash payment and the change given back.

    The payment records the amount due on the cash part; the change is not a
    payment.  Kept for the receipt and its reprints.
    """

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="cash_tendered",
                                   verbose_name=_("payment"))
    tendered = models.DecimalField(_("cash tendered"), **MONEY)
    change = models.DecimalField(_("change"), **MONEY)

    class Meta:
        verbose_name = _("cash tendered")
        verbose_name_plural = _("cash tendered")
        constraints = [
            models.CheckConstraint(condition=Q(change__gte=0) & Q(tendered__gt=F("change")),
                                   name="cash_tendered_covers_change"),
        ]


class ManagerPin(models.Model):
    """A manager's approval PIN for the POS, stored hashed like a password."""

    staff = models.OneToOneField("stores.StaffProfile", on_delete=models.CASCADE, related_name="manager_pin",
                                 verbose_name=_("staff member"))
    pin_hash = models.CharField(_("PIN hash"), max_length=256)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("manager PIN")
        verbose_name_plural = _("manager PINs")

    def __str__(self) -> str:
        return str(self.staff)


class ApprovalLog(models.Model):
    """One manager approval at the POS: who asked, who approved, for what, when."""

    class Action(models.TextChoices):
        DISCOUNT = "discount", _("Discount beyond the clerk's limit")
        PRICE_OVERRIDE = "price_override", _("Price override")
        REFUND_WITHOUT_RECEIPT = "refund_no_receipt", _("Refund without a receipt")
        LATE_RETURN = "late_return", _("Return after the return window")
        VOID = "void", _("Void a sale")
        RECHARGE_REFUND = "recharge_refund", _("Refund a wallet recharge")

    class Method(models.TextChoices):
        PIN = "pin", _("Manager PIN")
        LOGIN = "login", _("Manager login")

    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", verbose_name=_("store"))
    clerk = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("clerk"))
    manager = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("approved by"))
    method = models.CharField(_("method"), max_length=10, choices=Method.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="",
                                 help_text=_("The sale id, order or return number the approval is for."))
    amount = models.DecimalField(_("amount"), null=True, blank=True, **MONEY)
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("manager approval")
        verbose_name_plural = _("manager approvals")
        ordering = ["-id"]
        indexes = [models.Index(fields=["store", "created_at"], name="approval_store_created_idx"),
                   models.Index(fields=["reference"], name="approval_reference_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.reference}"


__all__ = ["Mismatch", "ProviderFeeRate", "ReconciliationRun", "StatementRow"]  # the reconciliation models, seen here by Django
