"""Forms of the stock admin pages.  Each form parses input and ``submit()`` calls one service."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from inventory import services
from inventory.models import Bucket, ReceiptLine, StockCountLine, StockLevel, Transfer, TransferLine
from stores.models import Warehouse


def sku_field(source_model, **kwargs) -> forms.ModelChoiceField:
    """A SKU picker that searches through the SKU admin (code, barcode, name)."""
    widget = AutocompleteSelect(source_model._meta.get_field("sku"), admin.site)
    return forms.ModelChoiceField(label=_("SKU"), queryset=Sku.objects.all(), widget=widget, **kwargs)


class WarehouseScopedForm(forms.Form):
    """A form whose warehouse choices are limited to those the user may work with."""

    warehouse_fields: tuple[str, ...] = ("warehouse",)

    def __init__(self, *args, warehouses=None, **kwargs):
        super().__init__(*args, **kwargs)
        queryset = warehouses if warehouses is not None else Warehouse.objects.all()
        for name in self.warehouse_fields:
            self.fields[name].queryset = queryset.filter(is_active=True)


class LineFormSet(forms.BaseFormSet):
    """Lines of a document: blank rows are ignored, at least one line, each SKU once."""

    def clean(self):
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            sku = form.cleaned_data.get("sku") if form.has_changed() else None
            if sku is None:
                continue
            if sku.pk in seen:
                raise forms.ValidationError(_("%(sku)s appears on more than one line."),
                                            params={"sku": sku.code})
            seen.add(sku.pk)
        if not seen:
            raise forms.ValidationError(_("Add at least one line."))

    def lines(self) -> list[dict]:
        return [f.cleaned_data for f in self.forms if f.has_changed() and f.cleaned_data.get("sku")]


class DocumentForm(WarehouseScopedForm):
    """A header form with a formset of lines (``line_form``), validated together."""

    line_form: type[forms.Form]
    extra_lines = 5

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        formset_class = forms.formset_factory(self.line_form, formset=LineFormSet, extra=self.extra_lines)
        self.formset = formset_class(data, prefix="lines")

    def is_valid(self) -> bool:
        return all([super().is_valid(), self.formset.is_valid()])

    @property
    def media(self):
        return super().media + self.formset.media


# --- stock levels ----------------------------------------------------------------------------


class StockAdjustForm(WarehouseScopedForm):
    warehouse = forms.ModelChoiceField(label=_("warehouse"), queryset=Warehouse.objects.none())
    sku = sku_field(StockLevel)
    bucket = forms.ChoiceField(label=_("bucket"), choices=Bucket.choices, initial=Bucket.SELLABLE)
    delta = forms.IntegerField(
        label=_("change"), help_text=_("Units to add (positive) or remove (negative). Never below reserved."))
    note = forms.CharField(label=_("reason"), max_length=300,
                           help_text=_("Why the book figure is wrong, e.g. “found in back room”."))

    def clean_delta(self):
        delta = self.cleaned_data["delta"]
        if delta == 0:
            raise forms.ValidationError(_("The change cannot be zero."))
        return delta

    def submit(self, *, actor):
        data = self.cleaned_data
        return services.stock_adjust(warehouse=data["warehouse"], sku_id=data["sku"].pk, delta=data["delta"],
                                     bucket=data["bucket"], note=data["note"], actor=actor)


class QuarantineForm(forms.Form):
    qty = forms.IntegerField(label=_("quantity"), min_value=1,
                             help_text=_("Units to move from sellable to damaged stock, per selected level."))
    note = forms.CharField(label=_("reason"), max_length=300)

    def submit_for(self, level: StockLevel, *, actor):
        return services.stock_quarantine(warehouse=level.warehouse_id, sku_id=level.sku_id,
                                         qty=self.cleaned_data["qty"], note=self.cleaned_data["note"],
                                         actor=actor, to_damaged=True)


# --- transfers -------------------------------------------------------------------------------


class TransferLineForm(forms.Form):
    sku = sku_field(TransferLine, required=False)
    qty = forms.IntegerField(label=_("quantity"), min_value=1, required=False)

    def clean(self):
        data = super().clean()
        if data.get("sku") and not data.get("qty"):
            self.add_error("qty", _("Enter a quantity."))
        return data


class TransferCreateForm(DocumentForm):
    warehouse_fields = ("source", "destination")
    line_form = TransferLineForm

    source = forms.ModelChoiceField(label=_("from"), queryset=Warehouse.objects.none())
    destination = forms.ModelChoiceField(label=_("to"), queryset=Warehouse.objects.none())
    note = forms.CharField(label=_("note"), max_length=300, required=False)

    def submit(self, *, actor):
        data = self.cleaned_data
        return services.transfer_create(source=data["source"], destination=data["destination"],
                                        lines=[(ln["sku"].pk, ln["qty"]) for ln in self.formset.lines()],
                                        note=data["note"], actor=actor)


class TransferReceiveLineForm(forms.Form):
    # Shown for orientation only: disabled fields keep their initial value whatever is posted.
    sku = forms.CharField(label=_("SKU"), disabled=True, required=False)
    shipped = forms.IntegerField(label=_("quantity shipped"), disabled=True, required=False)
    sellable = forms.IntegerField(label=_("received sellable"), min_value=0)
    damaged = forms.IntegerField(label=_("received damaged"), min_value=0, initial=0)


class TransferReceiveForm(forms.Form):
    """Receive a shipped transfer line by line; what is neither sellable nor damaged is lost in transit."""

    def __init__(self, data=None, *, transfer: Transfer):
        super().__init__(data)
        self.transfer = transfer
        self.transfer_lines = list(transfer.lines.select_related("sku").order_by("sku__code"))
        formset_class = forms.formset_factory(TransferReceiveLineForm, extra=0)
        initial = [{"sku": str(ln.sku), "shipped": ln.qty, "sellable": ln.qty, "damaged": 0}
                   for ln in self.transfer_lines]
        self.formset = formset_class(data, prefix="lines", initial=initial)

    def is_valid(self) -> bool:
        return all([super().is_valid(), self.formset.is_valid()])

    def submit(self, *, actor):
        received = {line.sku_id: (form.cleaned_data["sellable"], form.cleaned_data["damaged"])
                    for line, form in zip(self.transfer_lines, self.formset.forms)}
        return services.transfer_receive(transfer=self.transfer, received=received, actor=actor)


# --- receipts and counts ---------------------------------------------------------------------


class ReceiptLineForm(forms.Form):
    sku = sku_field(ReceiptLine, required=False)
    qty = forms.IntegerField(label=_("quantity"), min_value=1, required=False)
    unit_cost = forms.DecimalField(label=_("unit cost (CNY)"), max_digits=12, decimal_places=2,
                                   min_value=Decimal("0.00"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("sku") and not data.get("qty"):
            self.add_error("qty", _("Enter a quantity."))
        return data


class ReceiptCreateForm(DocumentForm):
    line_form = ReceiptLineForm

    warehouse = forms.ModelChoiceField(label=_("warehouse"), queryset=Warehouse.objects.none())
    supplier = forms.CharField(label=_("supplier"), max_length=200)
    supplier_reference = forms.CharField(label=_("supplier reference"), max_length=100, required=False,
                                         help_text=_("The supplier's delivery note or invoice number."))

    def submit(self, *, actor):
        data = self.cleaned_data
        zero = Decimal("0.00")
        lines = [(ln["sku"].pk, ln["qty"], zero if ln["unit_cost"] is None else ln["unit_cost"])
                 for ln in self.formset.lines()]
        return services.receipt_create(warehouse=data["warehouse"], supplier=data["supplier"], lines=lines,
                                       supplier_reference=data["supplier_reference"], actor=actor)


class CountLineForm(forms.Form):
    sku = sku_field(StockCountLine, required=False)
    counted = forms.IntegerField(label=_("counted"), min_value=0, required=False)

    def clean(self):
        data = super().clean()
        if data.get("sku") and data.get("counted") is None:
            self.add_error("counted", _("Enter the counted quantity."))
        return data


class CountCreateForm(DocumentForm):
    line_form = CountLineForm
    extra_lines = 10

    warehouse = forms.ModelChoiceField(
        label=_("warehouse"), queryset=Warehouse.objects.none(),
        help_text=_("Counts sellable stock; apply the count to post the differences."))

    def submit(self, *, actor):
        lines = [(ln["sku"].pk, ln["counted"]) for ln in self.formset.lines()]
        return services.count_create(warehouse=self.cleaned_data["warehouse"], lines=lines, actor=actor)
