"""Head office records couriers' cash-on-delivery remittances: one parcel by hand, or the courier's file.

Both faces call one service per submit (``cod_remittance_capture`` / ``cod_remittances_import``).
A file is all or nothing: every bad row is listed with its line and nothing from the file is recorded.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from o2o.errors import DomainError
from o2o.money import ZERO, money, money_parse
from orders import services
from orders.cod_files import COLUMNS, CodFileUnreadable, cod_file_rows
from orders.exceptions import CodAlreadyRemitted, CodBatchRejected
from orders.models import CodRemittance

PAGE = "admin/orders/cod_remittance.html"
MAX_FILE_BYTES = 5 * 1024 * 1024


class CodSingleForm(forms.Form):
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=50)
    amount = forms.CharField(label=_("Amount remitted (CNY)"), max_length=20)
    remitted_on = forms.DateField(label=_("Remitted on"), initial=timezone.localdate)

    def clean_amount(self):
        try:
            return money_parse(self.cleaned_data["amount"], positive=True, symbols=True)
        except ValueError:
            raise forms.ValidationError(_("Enter an amount in yuan with at most two decimals.")) from None

    def clean_remitted_on(self):
        value = self.cleaned_data["remitted_on"]
        if value > timezone.localdate():
            raise forms.ValidationError(_("The remittance date is in the future."))
        return value


class CodFileForm(forms.Form):
    file = forms.FileField(label=_("Courier's remittance file (CSV)"))


@admin.register(CodRemittance)
class CodRemittanceAdmin(admin.ModelAdmin):
    list_display = ["tracking_number", "order", "amount", "remitted_on", "source", "file_name", "file_line",
                    "created_by", "created_at"]
    list_filter = ["source", "remitted_on"]
    search_fields = ["tracking_number", "order__number"]
    readonly_fields = list_display + ["payment", "currency"]
    change_list_template = "admin/orders/cod_change_list.html"

    def has_add_permission(self, request):
        return False  # recorded through the remittance page, never the generic form

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("record/", self.admin_site.admin_view(self.record_view), name="orders_codremittance_record"),
                *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {"cod_record_url": reverse("admin:orders_codremittance_record")} if self._may_record(request) else {}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    @staticmethod
    def _may_record(request) -> bool:
        return request.user.has_perm("orders.add_codremittance")

    def record_view(self, request):
        if not self._may_record(request):
            raise PermissionDenied
        single, upload = CodSingleForm(prefix="one"), CodFileForm(prefix="file")
        context = {}
        status = 200
        if request.method == "POST" and "record_one" in request.POST:
            single = CodSingleForm(request.POST, prefix="one")
            if single.is_valid():
                redirect = self._record_one(request, single)
                if redirect is not None:
                    return redirect
            status = 422
        elif request.method == "POST" and "upload" in request.POST:
            upload = CodFileForm(request.POST, request.FILES, prefix="file")
            if upload.is_valid():
                outcome = self._record_file(request, upload)
                if isinstance(outcome, HttpResponseRedirect):
                    return outcome
                context.update(outcome)
            status = 422
        context.update({**self.admin_site.each_context(request), "opts": self.opts, "single": single,
                        "upload": upload, "columns": COLUMNS,
                        "title": gettext("Record cash-on-delivery remittances")})
        return TemplateResponse(request, PAGE, context, status=status)

    def _record_one(self, request, form):
        data = form.cleaned_data
        try:
            remittance, applied = services.cod_remittance_capture(
                tracking_number=data["tracking_number"], amount=data["amount"], remitted_on=data["remitted_on"],
                actor=request.user)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            return None
        if not applied:
            form.add_error("tracking_number", gettext("%(message)s Order %(order)s, on %(date)s.") % {
                "message": CodAlreadyRemitted.default_message, "order": remittance.order.number,
                "date": remittance.remitted_on})
            return None
        self.message_user(request, gettext("Remittance of ¥%(amount)s recorded: order %(order)s is paid.") % {
            "amount": remittance.amount, "order": remittance.order.number}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:orders_codremittance_changelist"))

    def _record_file(self, request, form):
        upload = form.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            form.add_error("file", gettext("The file is larger than %(size)d MB.") % {
                "size": MAX_FILE_BYTES // (1024 * 1024)})
            return {}
        try:
            rows = cod_file_rows(upload.read())
            recorded = services.cod_remittances_import(rows=rows, file_name=upload.name, actor=request.user)
        except CodFileUnreadable as exc:
            form.add_error("file", str(exc))
            return {}
        except CodBatchRejected as exc:
            if not exc.params.get("rows"):
                form.add_error("file", str(exc.message))
                return {}
            return {"file_name": upload.name, "row_errors": exc.params["rows"]}
        total = money(sum((r.amount for r in recorded), ZERO))
        self.message_user(request, gettext("%(count)d remittances recorded from %(file)s, ¥%(total)s in all.") % {
            "count": len(recorded), "file": upload.name, "total": total}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:orders_codremittance_changelist"))
