"""Reconciliation (对账): provider statements imported, matched to our payments and refunds.

One ``ReconciliationRun`` per imported file (unique per provider and content hash, so importing
the same file again changes nothing), its ``StatementRow``s as the provider reported them, each
linked to the payment or refund it matched, and a ``Mismatch`` for everything that did not add
up: missing on our side, missing on theirs, amounts that differ, duplicates.  A mismatch is
resolved with a note; who and when are kept on it.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

__all__ = ["ReconciliationRun", "StatementRow", "Mismatch", "ProviderFeeRate"]

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


class ReconciliationRun(models.Model):
    class Layout(models.TextChoices):
        WECHAT = "wechat", _("WeChat Pay trade bill")
        ALIPAY = "alipay", _("Alipay business detail")
        GENERIC = "generic", _("Generic CSV")

    provider = models.CharField(_("provider"), max_length=30,
                                help_text=_("The payment provider of our payments: wechat_pay, alipay, unionpay, …"))
    layout = models.CharField(_("layout"), max_length=10, choices=Layout.choices)
    file_name = models.CharField(_("file"), max_length=255)
    sha256 = models.CharField(_("content hash"), max_length=64)
    encoding = models.CharField(_("encoding"), max_length=20)
    period_start = models.DateTimeField(_("period from"), null=True, blank=True)
    period_end = models.DateTimeField(_("period until"), null=True, blank=True)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("imported by"))
    imported_at = models.DateTimeField(_("imported at"), auto_now_add=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    their_payments = models.DecimalField(_("their payments"), default=ZERO, **MONEY)
    their_refunds = models.DecimalField(_("their refunds"), default=ZERO, **MONEY)
    matched = models.PositiveIntegerField(_("matched"), default=0)
    missing_ours = models.PositiveIntegerField(_("missing on our side"), default=0)
    missing_theirs = models.PositiveIntegerField(_("missing on theirs"), default=0)
    amount_mismatches = models.PositiveIntegerField(_("amount mismatches"), default=0)
    duplicates = models.PositiveIntegerField(_("duplicates"), default=0)
    ignored = models.PositiveIntegerField(_("rows without money"), default=0)
    their_fees = models.DecimalField(_("their fees"), default=ZERO, **MONEY,
                                     help_text=_("Fees charged on the payments less fees given back with refunds."))
    their_net = models.DecimalField(_("net settlement"), default=ZERO, **MONEY,
                                    help_text=_("Payments less refunds less fees: what reaches the merchant account."))
    fee_mismatches = models.PositiveIntegerField(_("fee mismatches"), default=0)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "sha256"], name="reconciliation_file_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.file_name}"

    @property
    def open_mismatches(self) -> int:
        return self.mismatches.filter(resolved_at__isnull=True).count()


class StatementRow(models.Model):
    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        IGNORED = "ignored", _("No money moved")

    class Result(models.TextChoices):
        MATCHED = "matched", _("Matched")
        MISSING_OURS = "missing_ours", _("Missing on our side")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount differs")
        DUPLICATE = "duplicate", _("Duplicate")
        IGNORED = "ignored", _("Ignored")

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="rows", verbose_name=_("run"))
    row_no = models.PositiveIntegerField(_("line"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True, default="")
    our_ref = models.CharField(_("our reference"), max_length=64, blank=True, default="")
    amount = models.DecimalField(_("amount"), **MONEY)
    occurred_at = models.DateTimeField(_("time"), null=True, blank=True)
    status = models.CharField(_("status reported"), max_length=30, blank=True, default="")
    raw = models.JSONField(_("row as read"), default=dict, blank=True)
    fee = models.DecimalField(_("fee"), default=ZERO, **MONEY,
                              help_text=_("The provider's fee on this row: positive when charged, negative when "
                                          "given back with a refund."))
    expected_fee = models.DecimalField(_("expected fee"), null=True, blank=True, **MONEY,
                                       help_text=_("The fee at the configured rate, when one applies."))
    result = models.CharField(_("result"), max_length=20, choices=Result.choices)
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("payment"))
    refund = models.ForeignKey("payments.Refund", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+", verbose_name=_("refund"))

    class Meta:
        verbose_name = _("statement row")
        verbose_name_plural = _("statement rows")
        ordering = ["run_id", "row_no"]
        indexes = [models.Index(fields=["provider_ref"], name="statement_row_provider_ref"),
                   models.Index(fields=["our_ref"], name="statement_row_our_ref")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.provider_ref or self.our_ref} {self.amount}"


class Mismatch(models.Model):
    class Kind(models.TextChoices):
        MISSING_OURS = "missing_ours", _("Missing on our side")
        MISSING_THEIRS = "missing_theirs", _("Missing on the provider's side")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount differs")
        DUPLICATE = "duplicate", _("Duplicate")
        FEE_MISMATCH = "fee_mismatch", _("Fee differs from the agreed rate")

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="mismatches",
                            verbose_name=_("run"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    row = models.ForeignKey(StatementRow, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            verbose_name=_("statement row"))
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("payment"))
    refund = models.ForeignKey("payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("refund"))
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="")
    their_amount = models.DecimalField(_("their amount"), null=True, blank=True, **MONEY)
    our_amount = models.DecimalField(_("our amount"), null=True, blank=True, **MONEY)
    detail = models.CharField(_("detail"), max_length=300, blank=True, default="")
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("resolved by"))
    resolution_note = models.CharField(_("resolution"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("reconciliation mismatch")
        verbose_name_plural = _("reconciliation mismatches")
        ordering = ["run_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(resolved_at__isnull=True, resolution_note="")
                                   | (Q(resolved_at__isnull=False) & ~Q(resolution_note="")),
                                   name="mismatch_resolved_with_note"),
        ]
        indexes = [models.Index(fields=["kind", "resolved_at"], name="mismatch_open_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None


class ProviderFeeRate(models.Model):
    """The fee rate (费率) agreed with a payment provider, from a day on; finance keeps it in the admin.

    Reconciliation compares each matched statement row's fee with ``amount × rate`` (to the fen,
    within a fen of the provider's rounding) and lists the rows that differ.  A rate for a merchant
    id (WeChat Pay 商户号) wins over the provider's rate for every merchant; the latest ``valid_from``
    on or before the row's day applies.
    """

    provider = models.CharField(_("provider"), max_length=30, help_text=_("wechat_pay, alipay, …"))
    merchant_id = models.CharField(_("merchant id"), max_length=32, blank=True, default="",
                                   help_text=_("The provider's merchant id; empty for every merchant of the "
                                               "provider."))
    rate = models.DecimalField(_("rate"), max_digits=7, decimal_places=5,
                               help_text=_("A fraction: 0.006 is 0.6%."))
    valid_from = models.DateField(_("valid from"))
    note = models.CharField(_("note"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("provider fee rate")
        verbose_name_plural = _("provider fee rates")
        ordering = ["provider", "merchant_id", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0, rate__lt=Decimal("0.1")), name="fee_rate_sane"),
            models.UniqueConstraint(fields=["provider", "merchant_id", "valid_from"], name="fee_rate_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.merchant_id or '*'} {self.rate * 100:.3f}% ({self.valid_from})"
