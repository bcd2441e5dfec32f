"""The recharge page of the POS (储值充值): sell stored value, refund a recharge's unspent principal."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import selectors as member_read
from members.models import RechargePackage, WalletRecharge
from o2o.errors import DomainError
from payments import approvals
from payments import recharges
from payments.models import ApprovalLog, Payment
from pos.errors import error_message
from pos.forms import ApprovalForm, RechargeForm
from pos.recharge import RechargeIn, pos_recharge
from pos.views import _page, pos_view


def _member(phone: str):
    try:
        return member_read.member_by_phone(phone) if phone else None
    except DomainError:
        return None


def _render(request, form: RechargeForm, *, status: int = 200, error: str = "", approval=None):
    phone = (form.data.get("phone") if form.is_bound else form.initial.get("phone")) or ""
    member = _member(phone)
    lots = []
    if member is not None:
        lots = list(WalletRecharge.objects.filter(member=member, principal_remaining__gt=0)
                    .select_related("store").order_by("-id")[:20])
    return _page(request, "pos/recharge.html", {
        "form": form, "member": member, "lots": lots, "error": error, "approval": approval,
        "packages": RechargePackage.objects.filter(is_active=True).order_by("sort_order", "pay_amount")},
        status=status)


@pos_view
def recharge(request):
    if request.method != "POST":
        form = RechargeForm(initial={"client_uuid": uuid.uuid4(), "phone": request.GET.get("phone", "")})
        return _render(request, form)
    form = RechargeForm(request.POST)
    if not form.is_valid():
        return _render(request, form, status=422)
    data = form.cleaned_data
    member = _member(data["phone"])
    if member is None:
        form.add_error("phone", _("No member with this number. Register them on the sale screen first."))
        return _render(request, form, status=422)
    package = RechargePackage.objects.filter(pk=data["package"], is_active=True).first() if data["package"] else None
    if data["package"] and package is None:
        form.add_error("package", _("This recharge package is not on sale."))
        return _render(request, form, status=422)
    try:
        result = pos_recharge(store=request.pos_store, member=member, client_uuid=data["client_uuid"],
                              actor=request.user, data=RechargeIn(
                                  tender="" if data["tender"] == "code" else data["tender"], package=package,
                                  amount=data["amount"], card_reference=data["card_reference"],
                                  payment_code=data["payment_code"] if data["tender"] == "code" else ""))
    except DomainError as exc:
        return _render(request, form, status=422, error=error_message(exc))
    messages.success(request, _("Recharged ¥%(amount)s (%(payment)s). Wallet balance: ¥%(balance)s.") % {
        "amount": result.payment.amount, "payment": result.payment.number,
        "balance": member_read.member_get(member).wallet_balance})
    return redirect(f"{reverse('pos:recharge')}?{urlencode({'phone': member.phone})}")


@pos_view
@require_POST
def recharge_refund(request, pk: int):
    lot = WalletRecharge.objects.select_related("member").filter(pk=pk).first()
    phone = lot.member.phone if lot else ""
    form = RechargeForm(initial={"client_uuid": uuid.uuid4(), "phone": phone})
    payment = Payment.objects.filter(number=lot.reference).first() if lot else None
    if lot is None or payment is None:
        return _render(request, form, status=404, error=_("No such recharge."))
    approval_form = ApprovalForm(request.POST)
    approval_form.is_valid()
    a = approval_form.cleaned_data
    dialog = {"url": reverse("pos:recharge_refund", args=[lot.pk]), "fields": [],
              "actions": [ApprovalLog.Action.RECHARGE_REFUND.label]}
    if not (a.get("pin") or a.get("manager_username")):
        return _render(request, form, approval=dialog)
    try:
        log = approvals.approval_grant(action=ApprovalLog.Action.RECHARGE_REFUND, store=request.pos_store,
                                       clerk=request.user, pin=a.get("pin", ""),
                                       username=a.get("manager_username", ""),
                                       password=a.get("manager_password", ""), reason=a.get("approval_reason", ""),
                                       reference=payment.number, amount=lot.principal_remaining)
        refund = recharges.recharge_refund(recharge=lot, store=request.pos_store, actor=request.user,
                                           approval_id=log.pk)
    except DomainError as exc:
        return _render(request, form, status=422, approval={**dialog, "error": error_message(exc)})
    messages.success(request, _("Refunded ¥%(amount)s of recharge %(payment)s (%(tender)s); its bonus is forfeited.")
                     % {"amount": refund.amount, "payment": payment.number, "tender": payment.get_tender_display()})
    return redirect(f"{reverse('pos:recharge')}?{urlencode({'phone': phone})}")
