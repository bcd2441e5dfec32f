from django.core.management.base import BaseCommand, CommandError

from o2o.audit import audit_run


class Command(BaseCommand):
    help = "Check every ledger invariant; exit non-zero with a report on any violation."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=20, help="violations shown per check")

    def handle(self, *args, limit: int, **options):
        failed = 0
        for invariant, title, violations in audit_run():
            if violations:
                failed += 1
                self.stdout.write(self.style.ERROR(f"FAIL [{invariant}] {title}: {len(violations)} violation(s)"))
                for line in violations[:limit]:
                    self.stdout.write(f"    {line}")
            else:
                self.stdout.write(self.style.SUCCESS(f"ok   [{invariant}] {title}"))
        if failed:
            raise CommandError(f"{failed} invariant check(s) failed")
        self.stdout.write(self.style.SUCCESS("all ledgers consistent"))
