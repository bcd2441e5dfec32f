"""Import a provider statement file (WeChat Pay, Alipay or generic CSV) and reconcile it."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from o2o.errors import DomainError
from payments.reconciliation import services


class Command(BaseCommand):
    help = "Import and reconcile a provider statement (CSV). Importing the same file again changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("path", help="statement file")
        parser.add_argument("--provider", default="", help="wechat_pay, alipay, unionpay, … (generic layout)")
        parser.add_argument("--layout", default="auto", choices=["auto", "wechat", "alipay", "generic"])

    def handle(self, *args, path, provider, layout, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"no such file: {path}")
        data = file.read_bytes()
        with tqdm(desc="rows", unit=" rows", file=self.stderr._out) as bar:
            try:
                result = services.reconciliation_import(data=data, file_name=file.name, provider=provider,
                                                        layout=layout, progress=bar.update)
            except DomainError as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from exc
        run = result.run
        if not result.created:
            self.stdout.write(f"already imported as run {run.pk} ({run.imported_at:%Y-%m-%d %H:%M}); nothing changed")
            return
        self.stdout.write(
            f"run {run.pk} {run.provider} ({run.get_layout_display()}, {run.encoding}): {run.rows_total} rows, "
            f"{run.matched} matched, {run.missing_ours} missing on our side, {run.missing_theirs} missing on "
            f"theirs, {run.amount_mismatches} amount mismatches, {run.duplicates} duplicates")
