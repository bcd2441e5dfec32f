"""Import a provider statement and match it to our payments and refunds.

Matching, per row of the file (the provider's view):

* a payment row is ours when our payment of that provider holds the provider transaction id,
  or has the row's out_trade_no as its number; a refund row when our refund holds the provider
  refund id, or has the row's out_refund_no as its number;
* found, captured (succeeded) and the same amount: matched; a different amount: amount
  mismatch; not found, not captured, or captured under another provider transaction: missing on
  our side (the provider moved money our books do not show);
* the same reference twice in the file, or already in an earlier statement of the provider:
  duplicate.

Then our side: every payment of the provider captured within the statement's period, and
every refund given back through the provider, that no statement row of the provider names is
missing on theirs.  An open "missing on theirs" that a later statement does name is resolved
with a note saying so.

The whole import is one transaction; the same file (same provider, same content hash) again
returns the first run and changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.money import money
from o2o.errors import Conflict, InvalidInput, NotFound
from payments.models import Payment, Refund
from payments.reconciliation import parsers
from payments.reconciliation.models import Mismatch, ProviderFeeRate, ReconciliationRun, StatementRow
from payments.tenders import tenders_registered, tender_for

ZERO = Decimal("0.00")
# Providers round each fee to the fen their own way: a fen either side is not a mismatch.
FEE_TOLERANCE = Decimal("0.01")
PROVIDER_OF_LAYOUT = {"wechat": "wechat_pay", "alipay": "alipay"}
R = StatementRow.Result


class MismatchAlreadyResolved(Conflict):
    code = "mismatch_already_resolved"
    default_message = _("This mismatch is already resolved.")


@dataclass
class ImportResult:
    run: ReconciliationRun
    created: bool


def providers() -> list[str]:
    """The providers our payments record (from the tender registry)."""
    return sorted({tender_for(t).provider for t in tenders_registered() if tender_for(t).provider})


def reconciliation_import(*, data: bytes, file_name: str, provider: str = "", layout: str = "auto", actor=None,
                          progress: Callable[[int], None] | None = None) -> ImportResult:
    """Parse and match a statement file.  Idempotent on (provider, content hash).

    Raises InvalidStatement (with the line) for anything malformed, InvalidInput for an unknown
    provider.  Writes nothing unless the whole file is read and matched.
    """
    digest = hashlib.sha256(data if isinstance(data, (bytes, bytearray)) else b"").hexdigest()
    if provider:
        existing = ReconciliationRun.objects.filter(provider=provider, sha256=digest).first()
        if existing is not None:
            return ImportResult(existing, created=False)
    parsed = parsers.parse(data, layout=layout, progress=progress)
    provider = provider or PROVIDER_OF_LAYOUT.get(parsed.layout, "")
    if provider not in providers():
        raise InvalidInput(_("Choose the provider the statement is from."), code="provider_required",
                           field="provider", params={"provider": provider, "known": providers()})
    existing = ReconciliationRun.objects.filter(provider=provider, sha256=digest).first()
    if existing is not None:
        return ImportResult(existing, created=False)
    return _import(parsed=parsed, provider=provider, digest=digest, file_name=file_name, actor=actor)


@service
def _import(*, parsed: parsers.Parsed, provider: str, digest: str, file_name: str, actor) -> ImportResult:
    run = ReconciliationRun(provider=provider, layout=parsed.layout, file_name=(file_name or "statement.csv")[:255],
                            sha256=digest, encoding=parsed.encoding, period_start=parsed.period_start,
                            period_end=parsed.period_end, imported_by=_user(actor), rows_total=len(parsed.rows))
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:  # the same file, imported at the same moment by someone else
        return ImportResult(ReconciliationRun.objects.get(provider=provider, sha256=digest), created=False)
    rows, mismatches = _match_rows(run, parsed.rows)
    StatementRow.objects.bulk_create(rows, batch_size=2000)
    mismatches += _missing_theirs(run)
    Mismatch.objects.bulk_create(mismatches, batch_size=2000)
    _resolve_found(run, actor)
    _count(run, rows, mismatches)
    return ImportResult(run, created=True)


def _user(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


def _lookups(provider: str, rows: list[parsers.Row]):
    """Our payments and refunds the rows could name, in four dicts, with two queries."""
    pay = [r for r in rows if r.kind == parsers.PAYMENT]
    ref = [r for r in rows if r.kind == parsers.REFUND]
    payments = Payment.objects.filter(provider=provider).filter(
        Q(provider_txn_id__in=[r.provider_ref for r in pay if r.provider_ref])
        | Q(number__in=[r.our_ref for r in pay if r.our_ref])) if pay else []
    refunds = Refund.objects.select_related("payment").filter(payment__provider=provider).filter(
        Q(provider_refund_id__in=[r.provider_ref for r in ref if r.provider_ref])
        | Q(number__in=[r.our_ref for r in ref if r.our_ref])) if ref else []
    payments, refunds = list(payments), list(refunds)
    return ({p.provider_txn_id: p for p in payments if p.provider_txn_id}, {p.number: p for p in payments},
            {r.provider_refund_id: r for r in refunds if r.provider_refund_id}, {r.number: r for r in refunds})


def _seen_before(run: ReconciliationRun, rows: list[parsers.Row]) -> dict[tuple[str, str], int]:
    """References of these rows already in earlier statements of the provider: (kind, ref) → run id."""
    refs = {r.provider_ref for r in rows if r.provider_ref} | {r.our_ref for r in rows if r.our_ref}
    earlier = StatementRow.objects.filter(run__provider=run.provider, kind__in=[parsers.PAYMENT, parsers.REFUND]) \
        .exclude(run=run).exclude(result=R.DUPLICATE) \
        .filter(Q(provider_ref__in=refs) | Q(our_ref__in=refs)).values_list("kind", "provider_ref", "our_ref", "run_id")
    seen = {}
    for kind, provider_ref, our_ref, run_id in earlier:
        for ref in (provider_ref, our_ref):
            if ref:
                seen.setdefault((kind, ref), run_id)
    return seen


def _match_rows(run: ReconciliationRun, parsed: list[parsers.Row]) -> tuple[list[StatementRow], list[Mismatch]]:
    by_txn, by_number, refund_by_id, refund_by_number = _lookups(run.provider, parsed)
    fees = FeeRates(run.provider)
    earlier = _seen_before(run, parsed)
    in_file: set[tuple[str, str]] = set()
    rows, mismatches = [], []
    for p in parsed:
        row = StatementRow(run=run, row_no=p.row_no, kind=p.kind, provider_ref=p.provider_ref, our_ref=p.our_ref,
                           amount=p.amount, occurred_at=p.occurred_at, status=p.status[:30], raw=p.raw, fee=p.fee,
                           result=R.IGNORED)
        rows.append(row)
        if p.kind == parsers.IGNORED:
            continue
        keys = [(p.kind, ref) for ref in (p.provider_ref, p.our_ref) if ref]
        reference = p.provider_ref or p.our_ref
        if any(k in in_file for k in keys) or any(k in earlier for k in keys):
            row.result = R.DUPLICATE
            where = next((earlier[k] for k in keys if k in earlier), None)
            detail = (_("also in the earlier statement run #%(run)s") % {"run": where} if where
                      else _("appears more than once in this file"))
            mismatches.append(Mismatch(run=run, kind=Mismatch.Kind.DUPLICATE, row=row, reference=reference,
                                       their_amount=p.amount, detail=str(detail)))
            continue
        in_file.update(keys)
        if p.kind == parsers.PAYMENT:
            ours = by_txn.get(p.provider_ref) or by_number.get(p.our_ref)
            row.payment = ours
            verdict = _payment_verdict(p, ours)
        else:
            ours = refund_by_id.get(p.provider_ref) or refund_by_number.get(p.our_ref)
            row.refund, row.payment = ours, (ours.payment if ours is not None else None)
            verdict = _refund_verdict(p, ours)
        row.result, detail = verdict
        if row.result == R.MATCHED and p.kind in (parsers.PAYMENT, parsers.REFUND):
            row.expected_fee = fees.expected(p)
            if row.expected_fee is not None and abs(row.expected_fee - p.fee) > FEE_TOLERANCE:
                mismatches.append(Mismatch(
                    run=run, kind=Mismatch.Kind.FEE_MISMATCH, row=row, payment=row.payment, refund=row.refund,
                    reference=reference, their_amount=p.fee, our_amount=row.expected_fee,
                    detail=str(_("fee %(theirs)s on %(amount)s; %(expected)s at the agreed rate %(rate)s") % {
                        "theirs": p.fee, "amount": p.amount, "expected": row.expected_fee,
                        "rate": fees.rate_text(p)})))
        if row.result != R.MATCHED:
            kind = Mismatch.Kind.AMOUNT_MISMATCH if row.result == R.AMOUNT_MISMATCH else Mismatch.Kind.MISSING_OURS
            mismatches.append(Mismatch(run=run, kind=kind, row=row, payment=row.payment, refund=row.refund,
                                       reference=reference, their_amount=p.amount,
                                       our_amount=ours.amount if ours is not None else None, detail=str(detail)))
    return rows, mismatches


class FeeRates:
    """The agreed fee rates of one provider, loaded once per import (``ProviderFeeRate``)."""

    def __init__(self, provider: str):
        self.rates = list(ProviderFeeRate.objects.filter(provider=provider).order_by("-valid_from", "-pk"))

    def rate(self, p: parsers.Row) -> ProviderFeeRate | None:
        if not self.rates or p.occurred_at is None:
            return None
        day = timezone.localtime(p.occurred_at).date()
        merchant = str(p.raw.get("商户号", "") or "")
        valid = [r for r in self.rates if r.valid_from <= day]
        return (next((r for r in valid if merchant and r.merchant_id == merchant), None)
                or next((r for r in valid if not r.merchant_id), None))

    def expected(self, p: parsers.Row) -> Decimal | None:
        """The fee at the agreed rate as the row would bear it (a refund gives it back), or None."""
        rate = self.rate(p)
        if rate is None:
            return None
        fee = money(p.amount * rate.rate)
        return fee if p.kind == parsers.PAYMENT else -fee

    def rate_text(self, p: parsers.Row) -> str:
        rate = self.rate(p)
        return f"{rate.rate * 100:.2f}%" if rate else ""


def _payment_verdict(p: parsers.Row, ours: Payment | None) -> tuple[str, str]:
    if ours is None:
        return R.MISSING_OURS, _("no payment of ours has this transaction or number")
    if ours.status != Payment.Status.CAPTURED:
        return R.MISSING_OURS, _("our payment %(number)s is %(status)s") % {"number": ours.number,
                                                                             "status": ours.status}
    if p.provider_ref and ours.provider_txn_id and ours.provider_txn_id != p.provider_ref:
        return R.MISSING_OURS, _("our payment %(number)s was captured by transaction %(txn)s, not this one") % {
            "number": ours.number, "txn": ours.provider_txn_id}
    if ours.amount != p.amount:
        return R.AMOUNT_MISMATCH, _("provider %(theirs)s, ours %(ours)s") % {"theirs": p.amount, "ours": ours.amount}
    return R.MATCHED, ""


def _refund_verdict(p: parsers.Row, ours: Refund | None) -> tuple[str, str]:
    if ours is None:
        return R.MISSING_OURS, _("no refund of ours has this refund id or number")
    if ours.status != Refund.Status.SUCCEEDED:
        return R.MISSING_OURS, _("our refund %(number)s is %(status)s") % {"number": ours.number,
                                                                            "status": ours.status}
    if ours.amount != p.amount:
        return R.AMOUNT_MISMATCH, _("provider %(theirs)s, ours %(ours)s") % {"theirs": p.amount, "ours": ours.amount}
    return R.MATCHED, ""


def _missing_theirs(run: ReconciliationRun) -> list[Mismatch]:
    """Our money through the provider within the statement's period that no statement names."""
    if run.period_start is None:
        return []
    named = StatementRow.objects.filter(run__provider=run.provider)
    flagged = Mismatch.objects.filter(kind=Mismatch.Kind.MISSING_THEIRS, resolved_at__isnull=True,
                                      run__provider=run.provider)
    payments = (Payment.objects.filter(provider=run.provider, status=Payment.Status.CAPTURED,
                                       captured_at__gte=run.period_start, captured_at__lt=run.period_end)
                .exclude(pk__in=named.filter(payment__isnull=False, kind=parsers.PAYMENT).values("payment_id"))
                .exclude(pk__in=flagged.filter(payment__isnull=False, refund__isnull=True).values("payment_id"))
                .order_by("pk"))
    refunds = (Refund.objects.filter(payment__provider=run.provider, method=Refund.Method.ORIGINAL,
                                     status=Refund.Status.SUCCEEDED, completed_at__gte=run.period_start,
                                     completed_at__lt=run.period_end)
               .exclude(pk__in=named.filter(refund__isnull=False).values("refund_id"))
               .exclude(pk__in=flagged.filter(refund__isnull=False).values("refund_id"))
               .select_related("payment").order_by("pk"))
    found = [Mismatch(run=run, kind=Mismatch.Kind.MISSING_THEIRS, payment=p, reference=p.provider_txn_id or p.number,
                      our_amount=p.amount, detail=str(_("payment %(number)s captured %(at)s is not in the statement")
                                                      % {"number": p.number, "at": timezone.localtime(p.captured_at)
                                                         .strftime("%Y-%m-%d %H:%M:%S")}))
             for p in payments]
    found += [Mismatch(run=run, kind=Mismatch.Kind.MISSING_THEIRS, payment=r.payment, refund=r,
                       reference=r.provider_refund_id or r.number, our_amount=r.amount,
                       detail=str(_("refund %(number)s is not in the statement") % {"number": r.number}))
              for r in refunds]
    return found


def _resolve_found(run: ReconciliationRun, actor) -> None:
    """Earlier "missing on theirs" that this statement names are resolved, saying where they were found."""
    rows = StatementRow.objects.filter(run=run)
    note = str(_("found in statement run #%(run)s (%(file)s)") % {"run": run.pk, "file": run.file_name})[:300]
    open_ = Mismatch.objects.filter(kind=Mismatch.Kind.MISSING_THEIRS, resolved_at__isnull=True,
                                    run__provider=run.provider).exclude(run=run)
    found = open_.filter(Q(refund__isnull=True, payment__in=rows.filter(kind=parsers.PAYMENT).values("payment_id"))
                         | Q(refund__in=rows.filter(refund__isnull=False).values("refund_id")))
    found.update(resolved_at=timezone.now(), resolved_by=_user(actor), resolution_note=note)


def _count(run: ReconciliationRun, rows: list[StatementRow], mismatches: list[Mismatch]) -> None:
    results = [r.result for r in rows]
    run.matched = results.count(R.MATCHED)
    run.missing_ours = results.count(R.MISSING_OURS)
    run.amount_mismatches = results.count(R.AMOUNT_MISMATCH)
    run.duplicates = results.count(R.DUPLICATE)
    run.ignored = results.count(R.IGNORED)
    run.missing_theirs = sum(m.kind == Mismatch.Kind.MISSING_THEIRS for m in mismatches)
    run.their_payments = sum((r.amount for r in rows if r.kind == parsers.PAYMENT), ZERO)
    run.their_refunds = sum((r.amount for r in rows if r.kind == parsers.REFUND), ZERO)
    run.their_fees = sum((r.fee for r in rows if r.kind in (parsers.PAYMENT, parsers.REFUND)), ZERO)
    run.their_net = run.their_payments - run.their_refunds - run.their_fees
    run.fee_mismatches = sum(m.kind == Mismatch.Kind.FEE_MISMATCH for m in mismatches)
    run.save()


@service
def mismatch_resolve(*, mismatch: Mismatch | int, actor, note: str) -> Mismatch:
    """Close a mismatch with a note saying what was done; keeps who and when.

    Locks the mismatch row.  Raises NotFound, InvalidInput (no note, or over 300 characters),
    MismatchAlreadyResolved.
    """
    note = note.strip() if isinstance(note, str) else ""
    if not note or len(note) > 300:
        raise InvalidInput(_("Write what was done (at most 300 characters)."), code="resolution_note_required",
                           field="note")
    pk = mismatch.pk if isinstance(mismatch, Mismatch) else mismatch
    found = Mismatch.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(code="mismatch_not_found")
    if found.resolved_at is not None:
        raise MismatchAlreadyResolved(params={"resolved_by": str(found.resolved_by or ""),
                                              "resolved_at": found.resolved_at.isoformat()})
    found.resolved_at, found.resolved_by, found.resolution_note = timezone.now(), _user(actor), note
    found.save(update_fields=["resolved_at", "resolved_by", "resolution_note"])
    return found
