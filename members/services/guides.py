"""Shop assistants (导购): QR codes, member binding, order attribution and commission.

Binding rules — ``GuideBindingRule`` of the guide's region, else the default
row (no region), else ``DEFAULT_RULE`` (first wins, 365 days, transfer):

* ``first_wins``: while a member's binding is current, scanning another guide
  changes nothing (the first guide's work is protected until the binding
  expires); ``last_wins``: the new scan ends the current binding ("replaced")
  and binds to the new guide.  Scanning the guide one is already bound to
  changes nothing under either policy (the protection period is not renewed by
  re-scanning, so it cannot be stretched forever).
* ``valid_days``: a binding ends by itself that many days after it started
  (empty: never).  An expired binding no longer attributes orders; it is
  marked ``expired`` by the next bind of that member or by the sweep.
* When a guide leaves (staff profile or user deactivated; the sweep notices, or
  HR calls :func:`guide_leave`): ``end`` ends their bindings ("guide_left");
  ``transfer`` moves each to the active store manager of the binding's store
  (a new binding with ``previous`` set, keeping the original expiry; ended
  "guide_left" when the store has no manager); ``keep`` leaves them until they
  expire: orders are then not attributed to anyone (nobody earns commission on
  a guide who is away), but the member stays protected for that guide, which is
  what a store wants for a guide on leave who is coming back.

The region of a guide is their own ``region`` or else the region of the city
of their first store.  Binding history is never rewritten: a binding that ends
gets ``valid_to`` and ``ended_reason``; a new row starts the next one.

Commission rules: the most specific active rule wins — a SKU rule over a
category rule over a catch-all rule, a deeper category over its parents, and at
the same level a store's own rule over the global one.  Entries are frozen
until ``frozen_until`` (the end of the return window, given by orders),
released by the beat task, and clawed back by returns before or after release.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, unquote, urlsplit
from decimal import Decimal
from typing import Sequence

import segno
from django.db import connection
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from catalog.models import Category
from members.exceptions import (
    CommissionAlreadyAccrued,
    InvalidBindingSource,
    InvalidClawback,
    InvalidCommissionLines,
    InvalidReference,
    NotAGuide,
)
from members.models import (
    BindingPolicy,
    CommissionEntry,
    CommissionRule,
    GuideBinding,
    GuideBindingRule,
    GuideCommissionBalance,
    GuideLeavePolicy,
    GuideQrScan,
    Member,
)
from members.selectors import member_get
from members.services.members import member_lock, merge_hook
from o2o.db import service
from o2o.errors import InvalidInput
from o2o.money import ZERO, money
from o2o.outbox import outbox_emit
from stores.exceptions import NotLaunched
from stores.models import Capability, Role, StaffProfile, Store, StoreMembership
from stores.selectors import capability_enabled

GUIDE_QR_PREFIX = "o2o:guide:"
GUIDE_URL_PATH = "/g/"
BINDING_SOURCES = (GuideBinding.Source.QR, GuideBinding.Source.POS, GuideBinding.Source.API)
TOPIC_GUIDE_BOUND = "members.guide_bound"
BALANCE_TABLE = GuideCommissionBalance._meta.db_table
# First key of the two-key advisory locks that serialise commission changes of one order.
ADVISORY_COMMISSION = 7301

BasketLine = tuple[int, "int | None", Decimal]


@dataclass(frozen=True)
class BindingRule:
    policy: str
    valid_days: int | None
    on_guide_leave: str


DEFAULT_RULE = BindingRule(policy=BindingPolicy.FIRST_WINS, valid_days=365,
                           on_guide_leave=GuideLeavePolicy.TRANSFER)


# --- input -----------------------------------------------------------------------------------


def basket_lines_clean(lines: Sequence[BasketLine], *, error: type[InvalidInput]) -> list[BasketLine]:
    """Check ``[(sku_id, category_id | None, amount)]``: ids are ints, amounts non-negative Decimal
    (or int) with at most two places.  Raises ``error`` naming the bad line."""
    if not lines or isinstance(lines, (str, bytes)):
        raise error(message="At least one line is required.")
    clean = []
    for line in lines:
        try:
            sku_id, category_id, amount = line
        except (TypeError, ValueError):
            raise error(params={"line": str(line)})
        if (isinstance(amount, bool) or not isinstance(amount, (Decimal, int)) or isinstance(sku_id, bool)
                or not isinstance(sku_id, int) or isinstance(category_id, bool)
                or (category_id is not None and not isinstance(category_id, int))):
            raise error(params={"line": str(line)})
        amount = Decimal(amount)
        if not amount.is_finite() or amount < 0 or amount != money(amount):
            raise error(params={"line": str(line)})
        clean.append((sku_id, category_id, amount))
    return clean


def _order_check(order_number: object) -> str:
    if not isinstance(order_number, str) or not order_number.strip():
        raise InvalidReference(field="order_number")
    return order_number


# --- guides and their QR codes ---------------------------------------------------------------


def _is_active_staff(staff: StaffProfile) -> bool:
    return staff.is_active and staff.user.is_active


def guide_active(guide: StaffProfile | int) -> StaffProfile:
    """The staff profile if it is an active guide with a guide code; raises not_a_guide."""
    pk = guide.pk if isinstance(guide, StaffProfile) else guide
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise NotAGuide(params={"guide": str(guide)})
    found = StaffProfile.objects.select_related("user").filter(pk=pk).first()
    if found is None or found.role != Role.GUIDE or not found.guide_code or not _is_active_staff(found):
        raise NotAGuide(params={"guide": str(pk)})
    return found


def guide_code_normalize(text: str) -> str:
    """The guide code from a scanned payload: the QR's URL (``https://<host>/g/<scene>``), the
    mini-program's scene (``<scene>`` or ``scene=<scene>``), the old ``o2o:guide:<code>``, or a typed code."""
    code = (text or "").strip() if isinstance(text, str) else ""
    if code.lower().startswith(GUIDE_QR_PREFIX):
        code = code[len(GUIDE_QR_PREFIX):].strip()
    elif code.lower().startswith(("http://", "https://")):
        path = urlsplit(code).path
        code = unquote(path[path.rfind(GUIDE_URL_PATH) + len(GUIDE_URL_PATH):]).strip("/ ") \
            if GUIDE_URL_PATH in path else ""
    elif code.lower().startswith("scene="):
        code = unquote(code[len("scene="):]).strip()
    return code


def guide_scene(staff: StaffProfile) -> str:
    """The scene the guide's QR carries (the mini-program code's ``scene``, at most 32 characters)."""
    if not staff.guide_code:
        raise NotAGuide(params={"guide": str(staff.pk)})
    return staff.guide_code


def guide_qr_url(staff: StaffProfile, *, base_url: str) -> str:
    """What the guide's QR code opens: a page of ours (``/g/<scene>``) that records the scan and
    tells the customer how to bind (a phone camera or WeChat's scanner can open it)."""
    return f"{base_url.rstrip('/')}{GUIDE_URL_PATH}{quote(guide_scene(staff), safe='')}"


def guide_by_code(guide_code: str) -> StaffProfile:
    code = guide_code_normalize(guide_code)
    found = StaffProfile.objects.filter(guide_code=code).only("pk").first() if code else None
    if found is None:
        raise NotAGuide(field="guide_code", params={"guide_code": code})
    return guide_active(found.pk)


def guide_qr_payload(staff: StaffProfile) -> str:
    if not staff.guide_code:
        raise NotAGuide(params={"guide": str(staff.pk)})
    return f"{GUIDE_QR_PREFIX}{staff.guide_code}"


def _qr_text(staff: StaffProfile, base_url: str | None) -> str:
    return guide_qr_url(staff, base_url=base_url) if base_url else guide_qr_payload(staff)


def guide_qr_svg(staff: StaffProfile, *, base_url: str | None = None) -> str:
    """The guide's personal QR code as inline SVG (members scan it to bind); with ``base_url``
    it opens our ``/g/<scene>`` page."""
    return segno.make_qr(_qr_text(staff, base_url), error="m").svg_inline(scale=4, border=2)


def guide_qr_png(staff: StaffProfile, *, scale: int = 8, base_url: str | None = None) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(_qr_text(staff, base_url), error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def guide_home_store(guide: StaffProfile) -> Store | None:
    """The guide's first store (by membership), where their bindings belong."""
    membership = (StoreMembership.objects.filter(staff=guide).select_related("store__city")
                  .order_by("since", "id").first())
    return membership.store if membership else None


def binding_rule_for(guide: StaffProfile, *, store: Store | None = None) -> BindingRule:
    store = store if store is not None else guide_home_store(guide)
    region_id = guide.region_id or (store.city.region_id if store is not None else None)
    rules = {r.region_id: r for r in GuideBindingRule.objects.filter(Q(region__isnull=True) | Q(region_id=region_id))}
    rule = rules.get(region_id) if region_id is not None else None
    rule = rule or rules.get(None)
    if rule is None:
        return DEFAULT_RULE
    return BindingRule(policy=rule.policy, valid_days=rule.valid_days, on_guide_leave=rule.on_guide_leave)


# --- binding ---------------------------------------------------------------------------------


def _open_binding(member_id: int, at: datetime) -> GuideBinding | None:
    """The member's open binding, marking it expired when its time is up.  Caller holds the member lock."""
    current = (GuideBinding.objects.select_for_update(of=("self",)).select_related("guide__user")
               .filter(member_id=member_id, ended_reason="").first())
    if current is not None and current.valid_to is not None and current.valid_to <= at:
        current.ended_reason = GuideBinding.EndReason.EXPIRED
        current.save(update_fields=["ended_reason"])
        return None
    return current


def _binding_end(binding: GuideBinding, at: datetime, reason: str) -> None:
    binding.valid_to = max(at, binding.valid_from)
    binding.ended_reason = reason
    binding.save(update_fields=["valid_to", "ended_reason"])


@service
def guide_bind(*, member: Member | int, guide_code: str, source: str, at: datetime | None = None) -> GuideBinding:
    """Bind a member to the guide whose code was scanned (``qr``), entered at the POS (``pos``)
    or sent by a partner (``api``), under the guide's region's rule (module notes).

    Returns the member's binding after the call: the new one, or the existing
    one when it stands (same guide, or first-wins).  Locks the member row, then
    their open binding.  Queues ``members.guide_bound`` for a new binding.
    Raises invalid_binding_source, not_a_guide, member_not_found, guide_not_launched (guide
    binding is switched off at the guide's store: the roll-out).
    """
    at = at or timezone.now()
    if source not in BINDING_SOURCES:
        raise InvalidBindingSource(field="source", params={"source": str(source)})
    guide = guide_by_code(guide_code)
    member = member_lock(member)
    store = guide_home_store(guide)
    if store is not None and not capability_enabled(Capability.GUIDE, store=store):
        raise NotLaunched(capability=Capability.GUIDE, store=store, field="guide_code")
    rule = binding_rule_for(guide, store=store)
    current = _open_binding(member.pk, at)
    if current is not None:
        if current.guide_id == guide.pk or rule.policy == BindingPolicy.FIRST_WINS:
            return current
        _binding_end(current, at, GuideBinding.EndReason.REPLACED)
    binding = GuideBinding.objects.create(
        member=member, guide=guide, store=store, source=source, valid_from=at,
        valid_to=at + timedelta(days=rule.valid_days) if rule.valid_days else None)
    outbox_emit(topic=TOPIC_GUIDE_BOUND, key=f"member:{member.pk}",
                payload={"member_id": member.pk, "guide_id": guide.pk, "guide_code": guide.guide_code,
                         "source": source, "valid_to": binding.valid_to})
    return binding


def guide_current_binding(*, member: Member | int, at: datetime | None = None) -> GuideBinding | None:
    """The binding in force at ``at`` (history included: works for any past moment)."""
    at = at or timezone.now()
    if not (isinstance(member, Member) and member.merged_into_id is None):
        member = member_get(member)  # an id, or a duplicate merged away: follow it
    return (GuideBinding.objects.select_related("guide__user")
            .filter(member=member, valid_from__lte=at).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
            .order_by("-valid_from", "-id").first())


def guide_for_order(*, member: Member | int | None, chosen_guide_id: int | None = None,
                    at: datetime) -> StaffProfile | None:
    """Who an order is attributed to: the guide chosen at the POS (must be an active guide,
    else not_a_guide), or else the member's binding at ``at`` when its holder is still
    active staff (a binding transferred to a store manager attributes to them), or None."""
    if chosen_guide_id is not None:
        return guide_active(chosen_guide_id)
    if member is None:
        return None
    binding = guide_current_binding(member=member, at=at)
    if binding is None or not _is_active_staff(binding.guide):
        return None
    return binding.guide


def _store_manager(store_id: int | None, *, exclude: int) -> StaffProfile | None:
    if store_id is None:
        return None
    return (StaffProfile.objects.filter(role=Role.STORE_MANAGER, is_active=True, user__is_active=True,
                                        memberships__store_id=store_id).exclude(pk=exclude)
            .order_by("employee_no").first())


@service
def guide_leave(*, guide: StaffProfile | int, at: datetime | None = None) -> int:
    """Apply the leave policy of the guide's rule to their open bindings; returns how many changed.

    Locks the bound members' rows (id order), then their bindings: the same order
    as :func:`guide_bind`.  Expired bindings are marked expired whatever the policy.
    """
    at = at or timezone.now()
    pk = guide.pk if isinstance(guide, StaffProfile) else guide
    guide = StaffProfile.objects.select_related("user").get(pk=pk)
    rule = binding_rule_for(guide)
    member_ids = list(GuideBinding.objects.filter(guide=guide, ended_reason="").values_list("member_id", flat=True))
    if not member_ids:
        return 0
    list(Member.objects.filter(pk__in=member_ids).order_by("pk").select_for_update(of=("self",)).values_list("pk"))
    bindings = list(GuideBinding.objects.filter(guide=guide, ended_reason="", member_id__in=member_ids)
                    .order_by("pk").select_for_update(of=("self",)))
    changed = 0
    managers: dict[int | None, StaffProfile | None] = {}
    new: list[GuideBinding] = []
    for binding in bindings:
        if binding.valid_to is not None and binding.valid_to <= at:
            binding.ended_reason = GuideBinding.EndReason.EXPIRED
            binding.save(update_fields=["ended_reason"])
            changed += 1
            continue
        if rule.on_guide_leave == GuideLeavePolicy.KEEP:
            continue
        if rule.on_guide_leave == GuideLeavePolicy.TRANSFER:
            if binding.store_id not in managers:
                managers[binding.store_id] = _store_manager(binding.store_id, exclude=guide.pk)
            manager = managers[binding.store_id]
            if manager is not None:
                planned_end = binding.valid_to
                _binding_end(binding, at, GuideBinding.EndReason.TRANSFERRED)
                new.append(GuideBinding(member_id=binding.member_id, guide=manager, store_id=binding.store_id,
                                        source=GuideBinding.Source.TRANSFER, valid_from=at, valid_to=planned_end,
                                        previous=binding))
                changed += 1
                continue
        _binding_end(binding, at, GuideBinding.EndReason.GUIDE_LEFT)
        changed += 1
    GuideBinding.objects.bulk_create(new)
    return changed


def guide_bindings_sweep(*, at: datetime | None = None) -> int:
    """Beat: mark open bindings past their expiry as expired, and apply the leave policy to
    bindings whose holder is no longer active.  Idempotent; returns how many bindings changed."""
    at = at or timezone.now()
    changed = GuideBinding.objects.filter(ended_reason="", valid_to__lte=at).update(
        ended_reason=GuideBinding.EndReason.EXPIRED)
    open_bindings = GuideBinding.objects.filter(guide=OuterRef("pk"), ended_reason="")
    left = list(StaffProfile.objects.filter(Q(is_active=False) | Q(user__is_active=False))
                .filter(Exists(open_bindings)).order_by("pk").values_list("pk", flat=True))
    for guide_id in left:
        changed += guide_leave(guide=guide_id, at=at)
    return changed


@merge_hook("guides")
def guides_merge(source: Member, target: Member) -> dict[str, int]:
    """On a member merge: carry the duplicate's open binding over to the surviving member.

    Runs in the merge's transaction (which holds both member rows).  When both
    have a current binding, the rule of the duplicate's guide decides: first-wins
    keeps the one that started earlier, last-wins the later one.  The carried
    binding is a new row for the survivor (source ``merge``, ``previous`` set,
    original expiry kept); the duplicate's binding ends "merged".  Ended
    bindings stay with the duplicate as its history.
    """
    at = timezone.now()
    theirs = _open_binding(source.pk, at)
    if theirs is None:
        return {"guide_bindings": 0}
    ours = _open_binding(target.pk, at)
    planned_end = theirs.valid_to
    _binding_end(theirs, at, GuideBinding.EndReason.MERGED)
    if ours is not None:
        rule = binding_rule_for(theirs.guide)
        theirs_wins = (theirs.valid_from < ours.valid_from if rule.policy == BindingPolicy.FIRST_WINS
                       else theirs.valid_from > ours.valid_from)
        if ours.guide_id == theirs.guide_id or not theirs_wins:
            return {"guide_bindings": 0}
        _binding_end(ours, at, GuideBinding.EndReason.REPLACED)
    GuideBinding.objects.create(member=target, guide=theirs.guide, store=theirs.store,
                                source=GuideBinding.Source.MERGE, valid_from=at, valid_to=planned_end,
                                previous=theirs)
    return {"guide_bindings": 1}


# --- commission rates ------------------------------------------------------------------------


def _ancestor_paths(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def commission_rates(*, store_id: int | None, lines: Sequence[BasketLine]) -> list[Decimal]:
    """The commission rate (percent) of each line under the most specific active rule (0 if none).

    Two queries whatever the number of lines.
    """
    paths = dict(Category.objects.filter(id__in={c for _, c, _ in lines if c is not None})
                 .values_list("id", "path"))
    ancestor_paths = {p for path in paths.values() for p in _ancestor_paths(path)}
    rules = CommissionRule.objects.filter(is_active=True).filter(Q(store__isnull=True) | Q(store_id=store_id)).filter(
        Q(sku_id__in={s for s, _, _ in lines}) | Q(category__path__in=ancestor_paths)
        | Q(sku__isnull=True, category__isnull=True)
    ).values_list("store_id", "sku_id", "category__path", "rate_percent")
    by_sku: dict[int, list] = defaultdict(list)
    by_path: dict[str, list] = defaultdict(list)
    catch_all: list = []
    for rule_store, sku_id, category_path, rate in rules:
        if sku_id is not None:
            by_sku[sku_id].append((rule_store is not None, rate))
        elif category_path is not None:
            by_path[category_path].append((rule_store is not None, rate))
        else:
            catch_all.append((rule_store is not None, rate))

    def best(candidates: list) -> Decimal:
        return max(candidates, key=lambda c: c[0])[1]

    rates = []
    for sku_id, category_id, _ in lines:
        if by_sku.get(sku_id):
            rates.append(best(by_sku[sku_id]))
            continue
        chain = _ancestor_paths(paths[category_id]) if category_id in paths else []
        deepest = next((p for p in reversed(chain) if by_path.get(p)), None)
        if deepest is not None:
            rates.append(best(by_path[deepest]))
        elif catch_all:
            rates.append(best(catch_all))
        else:
            rates.append(ZERO)
    return rates


# --- commission ledger -----------------------------------------------------------------------


def _order_lock(order_number: str) -> None:
    """Serialise commission changes of one order (accrue vs accrue, clawback vs clawback)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ADVISORY_COMMISSION, order_number])


def _balances_add(deltas: dict[int, list[Decimal]]) -> None:
    """Add (frozen, released) deltas to the guides' cached balances, row-locked in guide id order.

    The row is created first and then updated: an upsert would check the CHECK
    (balance >= 0) constraints against the bare delta of a clawback.
    """
    rows = [(guide_id, money(f), money(r)) for guide_id, (f, r) in sorted(deltas.items()) if f or r]
    if not rows:
        return
    ids = [row[0] for row in rows]
    values = ", ".join(["(%s, %s::numeric, %s::numeric)"] * len(rows))
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {BALANCE_TABLE} (guide_id, frozen, released, updated_at) "
            "SELECT g, 0, 0, now() FROM unnest(%s::bigint[]) AS g ORDER BY g ON CONFLICT (guide_id) DO NOTHING",
            [ids],
        )
        if len(ids) > 1:
            cur.execute(f"SELECT id FROM {BALANCE_TABLE} WHERE guide_id = ANY(%s) ORDER BY guide_id FOR UPDATE",
                        [ids])
        cur.execute(
            f"UPDATE {BALANCE_TABLE} b SET frozen = b.frozen + v.f, released = b.released + v.r, updated_at = now() "
            f"FROM (VALUES {values}) AS v(g, f, r) WHERE b.guide_id = v.g",
            [p for row in rows for p in row],
        )


def _commission_holder(guide: StaffProfile | int) -> StaffProfile:
    """Commission goes to an active guide, or to the store manager holding transferred bindings."""
    pk = guide.pk if isinstance(guide, StaffProfile) else guide
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise NotAGuide(params={"guide": str(guide)})
    found = StaffProfile.objects.select_related("user").filter(pk=pk).first()
    if found is None or found.role not in (Role.GUIDE, Role.STORE_MANAGER) or not _is_active_staff(found):
        raise NotAGuide(params={"guide": str(pk)})
    return found


def _commission_launched(guide: StaffProfile, store_id: int | None) -> bool:
    """Whether guide commission is switched on for a sale: at the order's store, or for an order with
    no store (shipped) at the guide's own store (their first)."""
    if store_id is None:
        store_id = StoreMembership.objects.filter(staff=guide).order_by("since", "id") \
            .values_list("store_id", flat=True).first()
    return capability_enabled(Capability.GUIDE, store=store_id) if store_id is not None \
        else capability_enabled(Capability.GUIDE)


@service
def commission_accrue(*, guide: StaffProfile | int, order_number: str, channel: str, store_id: int | None,
                      lines: Sequence[BasketLine], frozen_until: datetime) -> list[CommissionEntry]:
    """Accrue commission on an order's lines ``[(sku_id, category_id, amount)]`` (amounts paid,
    after discounts), frozen until ``frozen_until`` (the end of the return window).

    One accrual entry per line with a non-zero commission; lines are numbered
    from 1 in the order given.  Calling again for the same order returns the
    first entries (commission_already_accrued if it names another guide).
    Takes the order's advisory lock, then the guide's balance row.  Raises
    not_a_guide, invalid_reference, invalid_commission_lines, invalid_input.
    """
    order_number = _order_check(order_number)
    if not isinstance(frozen_until, datetime) or timezone.is_naive(frozen_until):
        raise InvalidInput(message="frozen_until must be an aware datetime.", code="invalid_frozen_until",
                           field="frozen_until")
    clean = basket_lines_clean(lines, error=InvalidCommissionLines)
    guide = _commission_holder(guide)
    if not _commission_launched(guide, store_id):
        return []
    _order_lock(order_number)
    existing = list(CommissionEntry.objects.filter(kind=CommissionEntry.Kind.ACCRUAL, order_number=order_number)
                    .order_by("line_no"))
    if existing:
        if any(e.guide_id != guide.pk for e in existing):
            raise CommissionAlreadyAccrued(params={"order_number": order_number})
        return existing
    rates = commission_rates(store_id=store_id, lines=clean)
    entries = []
    for line_no, ((sku_id, category_id, amount), rate) in enumerate(zip(clean, rates), start=1):
        commission = money(amount * rate / Decimal(100))
        if commission > 0:
            entries.append(CommissionEntry(
                guide=guide, kind=CommissionEntry.Kind.ACCRUAL, order_number=order_number, line_no=line_no,
                channel=channel or "", store_id=store_id, sku_id=sku_id, category_id=category_id, base_amount=amount,
                rate_percent=rate, frozen_delta=commission, frozen_until=frozen_until))
    if not entries:
        return []
    CommissionEntry.objects.bulk_create(entries)
    _balances_add({guide.pk: [sum((e.frozen_delta for e in entries), ZERO), ZERO]})
    return entries


def _accrual_states(accrual_ids: list[int]) -> tuple[set[int], dict[int, tuple[Decimal, Decimal]]]:
    """(ids already released, {id: (base clawed back, amount clawed back)}) — read fresh, after locking."""
    released = set(CommissionEntry.objects.filter(kind=CommissionEntry.Kind.RELEASE, accrual_id__in=accrual_ids)
                   .values_list("accrual_id", flat=True))
    clawed = {
        row["accrual_id"]: (row["base"], -(row["frozen"] + row["released"]))
        for row in CommissionEntry.objects.filter(kind=CommissionEntry.Kind.CLAWBACK, accrual_id__in=accrual_ids)
        .values("accrual_id").annotate(base=Sum("base_amount"), frozen=Sum("frozen_delta"),
                                       released=Sum("released_delta"))
    }
    return released, clawed


def _clawback_fraction(fraction: object) -> Decimal:
    if isinstance(fraction, bool) or not isinstance(fraction, (Decimal, int)):
        raise InvalidClawback(field="fraction")
    fraction = Decimal(fraction)
    if not fraction.is_finite() or not 0 < fraction <= 1:
        raise InvalidClawback(field="fraction")
    return fraction


@service
def commission_clawback(*, order_number: str, lines: Sequence[BasketLine] | None = None,
                        fraction: Decimal | None = None, reference: str = "") -> list[CommissionEntry]:
    """Claw back commission for returned goods, whether it is still frozen or already released.

    Give either the returned ``lines`` ``[(sku_id, category_id, amount returned)]``
    (matched to the order's accruals by SKU) or the returned ``fraction`` of the
    order (0 < f <= 1).  What stays accrued is always the commission on what was
    kept, rounded to the fen, so successive partial returns add up exactly and a
    full return leaves nothing.  With a ``reference`` (the return number) a
    repeated call returns the first entries.  An order without commission
    gives [].  Takes the order's advisory lock, its accrual rows, then the
    guides' balance rows.  Raises invalid_clawback, invalid_reference,
    invalid_commission_lines.
    """
    order_number = _order_check(order_number)
    if (lines is None) == (fraction is None):
        raise InvalidClawback()
    returned: dict[int, Decimal] = defaultdict(Decimal)
    if lines is not None:
        for sku_id, _, amount in basket_lines_clean(lines, error=InvalidCommissionLines):
            returned[sku_id] += amount
    else:
        fraction = _clawback_fraction(fraction)
    reference = (reference or "").strip()[:60]
    _order_lock(order_number)
    if reference:
        done = list(CommissionEntry.objects.filter(kind=CommissionEntry.Kind.CLAWBACK, order_number=order_number,
                                                   reference=reference).order_by("pk"))
        if done:
            return done
    accruals = list(CommissionEntry.objects.filter(kind=CommissionEntry.Kind.ACCRUAL, order_number=order_number)
                    .order_by("line_no").select_for_update(of=("self",)))
    released, clawed = _accrual_states([a.pk for a in accruals])
    entries: list[CommissionEntry] = []
    for accrual in accruals:
        base_clawed, amount_clawed = clawed.get(accrual.pk, (ZERO, ZERO))
        base_left = accrual.base_amount - base_clawed
        amount_left = accrual.frozen_delta - amount_clawed
        if base_left <= 0:
            continue
        if lines is not None:
            take = min(returned.get(accrual.sku_id, ZERO), base_left)
            if take <= 0:
                continue
            returned[accrual.sku_id] -= take
        else:
            take = base_left if fraction == 1 else min(money(accrual.base_amount * fraction), base_left)
        keep = money((base_left - take) * accrual.rate_percent / Decimal(100))
        amount = min(max(amount_left - keep, ZERO), amount_left)
        entry = CommissionEntry(
            guide_id=accrual.guide_id, kind=CommissionEntry.Kind.CLAWBACK, accrual=accrual, order_number=order_number,
            line_no=accrual.line_no, channel=accrual.channel, store_id=accrual.store_id, sku_id=accrual.sku_id,
            category_id=accrual.category_id, base_amount=take, rate_percent=accrual.rate_percent, reference=reference)
        if accrual.pk in released:
            entry.released_delta = -amount
        else:
            entry.frozen_delta = -amount
        entries.append(entry)
    if not entries:
        return []
    CommissionEntry.objects.bulk_create(entries)
    deltas: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for e in entries:
        deltas[e.guide_id][0] += e.frozen_delta
        deltas[e.guide_id][1] += e.released_delta
    _balances_add(deltas)
    return entries


@service
def _release_batch(*, at: datetime, batch_size: int) -> tuple[int, int]:
    """Release one batch of due accruals.  SKIP LOCKED: accruals a clawback (or another
    release run) holds are left for the next run.  Returns (accruals looked at, released)."""
    locked = list(
        CommissionEntry.objects.filter(kind=CommissionEntry.Kind.ACCRUAL, frozen_until__lte=at)
        .exclude(Exists(CommissionEntry.objects.filter(kind=CommissionEntry.Kind.RELEASE, accrual=OuterRef("pk"))))
        .order_by("pk").select_for_update(skip_locked=True, of=("self",))[:batch_size]
    )
    if not locked:
        return 0, 0
    released, clawed = _accrual_states([a.pk for a in locked])
    entries = []
    for accrual in locked:
        if accrual.pk in released:  # released by a run that committed after our snapshot
            continue
        left = accrual.frozen_delta - clawed.get(accrual.pk, (ZERO, ZERO))[1]
        entries.append(CommissionEntry(
            guide_id=accrual.guide_id, kind=CommissionEntry.Kind.RELEASE, accrual=accrual,
            order_number=accrual.order_number, line_no=accrual.line_no, channel=accrual.channel,
            store_id=accrual.store_id, sku_id=accrual.sku_id, category_id=accrual.category_id,
            rate_percent=accrual.rate_percent, frozen_delta=-left, released_delta=left))
    CommissionEntry.objects.bulk_create(entries)
    deltas: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for e in entries:
        deltas[e.guide_id][0] += e.frozen_delta
        deltas[e.guide_id][1] += e.released_delta
    _balances_add(deltas)
    return len(locked), len(entries)


def commission_release(*, at: datetime | None = None, batch_size: int = 500) -> int:
    """Beat: release every accrual whose return window has passed (what clawbacks left of it;
    a fully clawed-back accrual gets a zero release that closes it).  Each batch commits on
    its own; running it twice, or twice at once, releases each accrual once (a partial
    unique index backs that).  Returns how many accruals were released."""
    at = at or timezone.now()
    total = 0
    while True:
        looked, released = _release_batch(at=at, batch_size=batch_size)
        total += released
        if looked < batch_size:
            return total


def commission_balance(guide: StaffProfile | int) -> tuple[Decimal, Decimal]:
    """(frozen, released) of the guide, from the cached balance."""
    pk = guide.pk if isinstance(guide, StaffProfile) else guide
    row = GuideCommissionBalance.objects.filter(guide_id=pk).values_list("frozen", "released").first()
    return row if row is not None else (ZERO, ZERO)


# --- the guide's QR code, scanned ------------------------------------------------------------


@service
def guide_qr_scan(*, scene: str, user_agent: str = "") -> StaffProfile:
    """Record that a guide's QR page was opened; the guide it names.  Binding needs the member,
    which the page does not know: the mini-program (``scene``) or the till binds them.
    Locks nothing.  Raises not_a_guide."""
    guide = guide_by_code(guide_code_normalize(scene))
    GuideQrScan.objects.create(guide=guide, user_agent=(user_agent or "")[:200])
    return guide
