"""Admin pages that read or write whole tables: an import page (upload → dry-run preview → apply)
and "Export CSV" / "Export XLSX" changelist actions.

The import page parses the upload once and keeps the parsed rows in the session (as JSON text,
capped) under a one-time token, so "apply" imports exactly the rows that were previewed and a
second click on the same button does nothing.  The importer itself is a service called twice,
first with ``dry_run=True``; a ``DomainError`` it raises becomes a message on the page, never
a server error.

Exports run on the changelist's queryset, so they inherit its store scoping.  CSV carries a
byte-order mark so Excel on a Chinese Windows opens it as UTF-8.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Sequence

import tablib
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from o2o.errors import DomainError, domain_error_text
from o2o.tables import table_rows

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
# Parsed rows are kept in the session between preview and apply; JSON of a 2 MB CSV is
# larger than the CSV (keys repeat), so the cap is on the stored text.
MAX_STORED_CHARS = 6 * 1024 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- import ----------------------------------------------------------------------------------


@dataclass
class ImportPreview:
    """What an importer says about a file, in the words the page shows."""

    ok: bool
    counts: list[tuple[str, int]]
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (row, column, message)


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("file"),
                           help_text=_("CSV (UTF-8 or GBK) or XLSX; the first row names the columns."))

    def clean_file(self) -> list[dict[str, str]]:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than %(size)d MB.")
                                        % {"size": MAX_UPLOAD_BYTES // (1024 * 1024)})
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        try:
            rows = table_rows(upload.read(), filename=upload.name)
        except Exception as exc:  # tablib and openpyxl raise many unrelated types for a bad file
            raise forms.ValidationError(_("The file could not be read as CSV or XLSX.")) from exc
        if not rows:
            raise forms.ValidationError(_("The file has no data rows."))
        return rows


class ImportPageAdmin(admin.ModelAdmin):
    """A ModelAdmin with an "Import" button on its changelist.

    Subclasses set ``import_title`` and ``import_columns`` (shown on the upload page) and
    implement ``import_run(request, rows, dry_run) -> ImportPreview``, calling one service.
    """

    change_list_template = "admin/o2o_import/change_list.html"
    import_title = _("Import")
    import_columns: Sequence[str] = ()
    import_help = ""

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def import_run(self, request, rows: list[dict[str, str]], *, dry_run: bool) -> ImportPreview:
        raise NotImplementedError

    def _import_url_name(self) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_import"

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name=self._import_url_name()), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_import_permission(request):
            extra_context["o2o_import_url"] = reverse(f"admin:{self._import_url_name()}")
            extra_context["o2o_import_label"] = self.import_title
        return super().changelist_view(request, extra_context)

    def _session_key(self) -> str:
        opts = self.model._meta
        return f"o2o_import:{opts.app_label}.{opts.model_name}"

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method == "POST" and "apply" in request.POST:
            return self._import_apply(request)
        posted = request.method == "POST"
        form = ImportUploadForm(request.POST if posted else None, request.FILES if posted else None)
        if posted and form.is_valid():
            rows, filename = form.cleaned_data["file"], request.FILES["file"].name
            preview = self._run(request, rows, dry_run=True)
            token = self._keep(request, rows, filename) if preview is not None and preview.ok else ""
            return self._render(request, form=ImportUploadForm(), preview=preview, token=token,
                                filename=filename)
        return self._render(request, form=form)

    def _import_apply(self, request):
        stored = request.session.get(self._session_key())
        if not stored or not secrets.compare_digest(stored["token"], request.POST.get("token", "")):
            self.message_user(request, gettext("This preview is no longer current; upload the file again."),
                              messages.WARNING)
            return HttpResponseRedirect(reverse(f"admin:{self._import_url_name()}"))
        # One-time: a second click (or a second tab) cannot import the same rows twice.
        del request.session[self._session_key()]
        rows = json.loads(stored["rows"])
        result = self._run(request, rows, dry_run=False)
        if result is not None and result.ok:
            counts = ", ".join(f"{label}: {n}" for label, n in result.counts)
            self.message_user(request, gettext("Imported %(file)s (%(counts)s).")
                              % {"file": stored["filename"], "counts": counts}, messages.SUCCESS)
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        # The data changed since the preview (or the service refused): nothing was written.
        return self._render(request, form=ImportUploadForm(), preview=result, filename=stored["filename"])

    def _run(self, request, rows, *, dry_run: bool) -> ImportPreview | None:
        try:
            return self.import_run(request, rows, dry_run=dry_run)
        except DomainError as exc:
            self.message_user(request, domain_error_text(exc), messages.ERROR)
            return None

    def _keep(self, request, rows, filename: str) -> str:
        text = json.dumps(rows, ensure_ascii=False)
        if len(text) > MAX_STORED_CHARS:
            self.message_user(request, gettext("The file has too many rows to import at once; split it."),
                              messages.ERROR)
            return ""
        token = secrets.token_urlsafe(16)
        request.session[self._session_key()] = {"token": token, "filename": filename, "rows": text}
        return token

    def _render(self, request, *, form, preview: ImportPreview | None = None, token: str = "", filename=""):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "title": self.import_title, "form": form, "preview": preview,
            "token": token, "filename": filename, "columns": self.import_columns, "help": self.import_help,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/o2o_import/import.html", context)


# --- export ----------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (Decimal, int, date, str)):
        return value
    return str(value)


def table_response(*, fmt: str, filename: str, headers: Sequence[str],
                   rows: Iterable[Sequence[Any]]) -> HttpResponse:
    """A download of ``rows`` as CSV or XLSX (``fmt``), built with tablib."""
    dataset = tablib.Dataset(headers=[str(h) for h in headers], title=filename[:31])
    for row in rows:
        dataset.append([_cell(v) for v in row])
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if fmt == "xlsx":
        response = HttpResponse(dataset.export("xlsx"), content_type=XLSX_TYPE)
    else:
        response = HttpResponse("\ufeff" + dataset.export("csv"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.{fmt}"'
    return response


class ExportActionsMixin:
    """"Export CSV" and "Export XLSX" actions for a ModelAdmin.

    Subclasses set ``export_filename`` and implement ``export_headers()`` and
    ``export_rows(queryset)``.  The actions export the selected rows (or every row of the
    filtered, scoped changelist with "select all").
    """

    export_filename = "export"

    def export_headers(self) -> list[str]:
        raise NotImplementedError

    def export_rows(self, queryset) -> Iterable[Sequence[Any]]:
        raise NotImplementedError

    def _export(self, queryset, fmt: str) -> HttpResponse:
        return table_response(fmt=fmt, filename=self.export_filename, headers=self.export_headers(),
                              rows=self.export_rows(queryset))

    @admin.action(description=_("Export CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return self._export(queryset, "csv")

    @admin.action(description=_("Export XLSX"), permissions=["view"])
    def export_xlsx(self, request, queryset):
        return self._export(queryset, "xlsx")
