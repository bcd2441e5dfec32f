"""Forms of the POS pages: they parse what the clerk typed; the services decide."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import ReturnLine
from payments.models import CashMovement, Tender
from payments.shifts import denominations

MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0")}


def _money_field(label, required=False, **attrs):
    return forms.DecimalField(label=label, required=required, **MONEY,
                              widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", **attrs}))


class StoreForm(forms.Form):
    store = forms.IntegerField()


class ShiftOpenForm(forms.Form):
    opening_float = _money_field(_("Opening float (counted)"), required=True, autofocus=True)


class CashMoveForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[(CashMovement.Kind.IN, _("Cash in")),
                                                       (CashMovement.Kind.OUT, _("Cash out"))])
    amount = _money_field(_("Amount"), required=True)
    reason = forms.CharField(label=_("Reason"), max_length=200)


class ShiftCloseForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=300, required=False)

    def __init__(self, *args, unit=None, **kwargs):
        """``unit``: the shift's cash unit; the count offers the notes and coins of at least it."""
        super().__init__(*args, **kwargs)
        self.denominations = denominations(unit)
        for i, denom in enumerate(self.denominations):
            self.fields[f"count_{denom}"] = forms.IntegerField(
                label=f"¥{denom}", min_value=0, max_value=100000, required=False,
                widget=forms.NumberInput(attrs={"min": 0, "inputmode": "numeric", "data-denomination": denom,
                                                **({"autofocus": True} if i == 0 else {})}))

    def counts(self) -> dict[str, int]:
        return {d: self.cleaned_data.get(f"count_{d}") or 0 for d in self.denominations}

    def denomination_fields(self):
        return [self[f"count_{d}"] for d in self.denominations]


class HandoverForm(forms.Form):
    """The incoming clerk signs in on the outgoing clerk's screen; the drawer count is optional."""

    username = forms.CharField(label=_("Incoming clerk's username"), max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "off"}))
    password = forms.CharField(label=_("Incoming clerk's password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "off"}))
    counted_cash = _money_field(_("Cash counted in the drawer (optional)"))


class ScanForm(forms.Form):
    code = forms.CharField(max_length=100, strip=True)


class QtyForm(forms.Form):
    qty = forms.IntegerField(min_value=0, max_value=999)


class DiscountForm(forms.Form):
    discount = forms.CharField(max_length=20, required=False, strip=True)


class PriceForm(forms.Form):
    price = _money_field(_("New unit price"), required=True)


class MemberForm(forms.Form):
    phone = forms.CharField(max_length=100, strip=True)
    name = forms.CharField(max_length=100, required=False, strip=True)


class PaymentForm(forms.Form):
    client_uuid = forms.CharField(max_length=64)
    cash_tendered = _money_field(_("Cash tendered"))
    card_amount = _money_field(_("UnionPay card"))
    card_reference = forms.CharField(label=_("Card slip reference"), max_length=64, required=False, strip=True)
    wallet_amount = _money_field(_("Wallet"))
    points = forms.IntegerField(label=_("Points"), min_value=0, max_value=10**9, required=False)
    # The customer's WeChat Pay / Alipay payment code, typed by the scanner; the wallet is read from
    # the code unless the clerk picks one.  Without an amount the code pays what is left.
    code_tender = forms.ChoiceField(label=_("Wallet app"), required=False,
                                    choices=[("", _("From the code")), (Tender.WECHAT_PAY, _("WeChat Pay")),
                                             (Tender.ALIPAY, _("Alipay"))])
    code_amount = _money_field(_("WeChat Pay / Alipay"))
    payment_code = forms.CharField(label=_("Payment code"), max_length=64, required=False, strip=True)


class CouponForm(forms.Form):
    coupon = forms.CharField(max_length=100, required=False, strip=True)


class GuideForm(forms.Form):
    guide = forms.CharField(max_length=100, required=False, strip=True)


class ApprovalForm(forms.Form):
    pin = forms.CharField(max_length=8, required=False, strip=True)
    manager_username = forms.CharField(max_length=150, required=False, strip=True)
    manager_password = forms.CharField(max_length=128, required=False, strip=False)
    approval_reason = forms.CharField(max_length=200, required=False, strip=True)

    FIELDS = ("pin", "manager_username", "manager_password", "approval_reason")


class ReceiptSearchForm(forms.Form):
    number = forms.CharField(label=_("Receipt number"), max_length=30, required=False, strip=True)
    day = forms.DateField(label=_("Date"), required=False, input_formats=["%Y-%m-%d"],
                          widget=forms.DateInput(attrs={"type": "date"}))

    def clean_number(self):
        return self.cleaned_data["number"].upper()


class ReturnSearchForm(forms.Form):
    q = forms.CharField(label=_("Receipt order number or customer phone"), max_length=64, strip=True)


class ReturnForm(forms.Form):
    client_uuid = forms.CharField(max_length=64)
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False, strip=True)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.return_lines = list(lines)
        for item in self.return_lines:
            pk = item.line.pk
            self.fields[f"qty_{pk}"] = forms.IntegerField(min_value=0, max_value=max(item.returnable, 0),
                                                          required=False, initial=0)
            self.fields[f"condition_{pk}"] = forms.ChoiceField(choices=ReturnLine.Condition.choices,
                                                               initial=ReturnLine.Condition.SELLABLE)

    def picked(self) -> list[tuple[int, int, str]]:
        out = []
        for item in self.return_lines:
            pk = item.line.pk
            qty = self.cleaned_data.get(f"qty_{pk}") or 0
            if qty:
                out.append((pk, qty, self.cleaned_data.get(f"condition_{pk}") or ReturnLine.Condition.SELLABLE))
        return out

    def rows(self):
        return [(item, self[f"qty_{item.line.pk}"], self[f"condition_{item.line.pk}"]) for item in self.return_lines]


class PickupForm(forms.Form):
    code = forms.CharField(label=_("Pickup code"), max_length=100, strip=True)

    def clean_code(self):
        code = self.cleaned_data["code"]
        # A scanned pickup QR carries "o2o:pickup:<code>".
        return code.split(":")[-1].strip() if code.lower().startswith("o2o:pickup:") else code


class ShipForm(forms.Form):
    carrier = forms.CharField(label=_("Carrier"), max_length=50, strip=True)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=50, strip=True)


class PinForm(forms.Form):
    pin = forms.CharField(label=_("New PIN (4–8 digits)"), max_length=8, min_length=4, strip=True,
                          widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "new-password",
                                                            "autofocus": True}))
    pin_again = forms.CharField(label=_("Repeat the PIN"), max_length=8, strip=True,
                                widget=forms.PasswordInput(attrs={"inputmode": "numeric",
                                                                  "autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("pin") and data.get("pin") != data.get("pin_again"):
            self.add_error("pin_again", _("The two PINs differ."))
        return data


RECHARGE_TENDERS = [(Tender.CASH, _("Cash")), (Tender.UNIONPAY_CARD, _("Bank card")),
                    ("code", _("Payment code (WeChat / Alipay)"))]


class RechargeForm(forms.Form):
    client_uuid = forms.UUIDField(widget=forms.HiddenInput)
    phone = forms.CharField(label=_("Member mobile number"), max_length=30, strip=True)
    package = forms.IntegerField(label=_("Package"), required=False, min_value=1)
    amount = _money_field(_("Or an amount (CNY, no bonus)"))
    tender = forms.ChoiceField(label=_("Paid with"), choices=RECHARGE_TENDERS, initial=Tender.CASH)
    card_reference = forms.CharField(label=_("Card slip reference"), max_length=64, required=False, strip=True)
    payment_code = forms.CharField(label=_("Payment code"), max_length=64, required=False, strip=True)

    def clean(self):
        data = super().clean()
        if bool(data.get("package")) == bool(data.get("amount")):
            raise forms.ValidationError(_("Choose a recharge package or type an amount, not both."))
        if data.get("tender") == "code" and not data.get("payment_code"):
            self.add_error("payment_code", _("Scan the customer's payment code."))
        return data
