"""Members: registration, linked identities, merges, paid-spend records and tiers.

Rules:

* One member per mobile number (E.164, parsed with phonenumbers, default
  region CN).  Registering a number that is already registered is not an
  error: ``member_register`` returns the existing member (the surviving one if
  it was merged) and keeps the details of the first registration, so a POS, the
  web shop and a partner may all "register" the same person safely.
* An identity (kind, namespace, value) belongs to one member.  Binding it again
  to the same member is a no-op; to another member raises ``identity_taken``.
* A merge moves everything of the duplicate (``source``) to ``target`` in one
  transaction, both member rows locked in id order: identities and spend
  records are re-pointed, and each ledger's merge step (``MERGE_HOOKS``: points,
  wallet, coupons, guides …) moves its balances with transfer entries.  The
  duplicate stays as a row with ``merged_into`` set; every service follows it.
* Every write that touches a member's balances first locks the member row
  (``member_lock``), so a member's ledgers change one transaction at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from members.exceptions import (
    IdentityTaken,
    InvalidAmount,
    InvalidChannel,
    InvalidIdentity,
    InvalidReference,
    MemberMerged,
    MemberNotFound,
    MergeSameMember,
)
from members.models import (
    IdentityKind,
    Member,
    MemberIdentity,
    MemberMerge,
    MemberSpend,
    RegistrationChannel,
    Tier,
)
from members.selectors import member_id_of, phone_normalize, tier_for_spend
from o2o.db import insert_joined, service
from o2o.errors import Conflict, NotFound
from o2o.money import FEN
from o2o.outbox import outbox_emit
from stores.models import Store

MergeHook = Callable[[Member, Member], "dict | None"]

#: Steps run by ``member_merge`` inside its transaction, with both members locked:
#: ``hook(source, target)`` moves one area's rows and balances to ``target`` and may
#: return a JSON-able summary, recorded in ``MemberMerge.moved`` under the hook's key.
MERGE_HOOKS: list[MergeHook] = []


def merge_hook(key: str) -> Callable[[MergeHook], MergeHook]:
    """Register a merge step under ``key`` (the name its summary is recorded under)."""

    def register(func: MergeHook) -> MergeHook:
        func.merge_key = key  # type: ignore[attr-defined]
        MERGE_HOOKS.append(func)
        return func

    return register


@dataclass(frozen=True)
class IdentityRef:
    kind: str
    value: str
    namespace: str = ""


# --- locks -----------------------------------------------------------------------------------


def member_lock(member: Member | int) -> Member:
    """Lock and return the member row (following a merge to the surviving member).

    The lock is taken on the surviving row only, after a plain read found it, so
    this never holds one member while waiting for another; a merge that lands
    in between is noticed after the lock and followed.
    """
    member_id = member_id_of(member)
    # The usual case in one statement: the member is not a merged duplicate.  While waiting for
    # this row's lock nothing else is held, and a merge that committed meanwhile makes the row
    # fail the condition when PostgreSQL re-checks it, so the loop below follows the merge.
    locked = (Member.objects.select_for_update(of=("self",)).select_related("tier")
              .filter(pk=member_id, merged_into__isnull=True).first())
    if locked is not None:
        return locked
    for _ in range(10):
        merged_into = Member.objects.filter(pk=member_id).values_list("merged_into_id", flat=True)
        if not merged_into:
            raise MemberNotFound(params={"member_id": member_id})
        member_id = merged_into[0] or member_id
        locked = Member.objects.select_for_update(of=("self",)).select_related("tier").get(pk=member_id)
        if locked.merged_into_id is None:
            return locked
        member_id = locked.merged_into_id
    raise MemberMerged(params={"member_id": member_id})


def members_lock_pair(first: Member | int, second: Member | int) -> tuple[Member, Member]:
    """Lock two member rows in id order (so two merges can never deadlock); returns (first, second)."""
    ids = [member_id_of(first), member_id_of(second)]
    rows = {m.pk: m for m in Member.objects.select_for_update(of=("self",)).select_related("tier")
            .filter(pk__in=ids).order_by("pk")}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise MemberNotFound(params={"member_ids": missing})
    return rows[ids[0]], rows[ids[1]]


# --- registration and identities ---------------------------------------------------------------


def store_id_check(store_id) -> int | None:
    if store_id is None:
        return None
    if isinstance(store_id, Store) and store_id.pk is not None:
        return store_id.pk  # a loaded store exists
    if isinstance(store_id, bool) or not isinstance(store_id, int) or not Store.objects.filter(pk=store_id).exists():
        raise NotFound(code="store_not_found", field="store_id", params={"store_id": str(store_id)})
    return store_id


def _identity_ref(ref: IdentityRef | tuple) -> IdentityRef:
    if not isinstance(ref, IdentityRef):
        ref = IdentityRef(*ref)
    kind, value, namespace = ref.kind, ref.value, ref.namespace
    if kind not in IdentityKind.values or not isinstance(value, str) or not value.strip() \
            or not isinstance(namespace, str) or len(value.strip()) > 128 or len(namespace.strip()) > 64:
        raise InvalidIdentity(field="identities", params={"kind": str(kind), "value": str(value)})
    return IdentityRef(kind=kind, value=value.strip(), namespace=namespace.strip())


def _identity_bind(member: Member, ref: IdentityRef) -> MemberIdentity:
    lookup = {"kind": ref.kind, "namespace": ref.namespace, "value": ref.value}
    existing = MemberIdentity.objects.filter(**lookup).first()
    if existing is None:
        try:
            with transaction.atomic():
                return MemberIdentity.objects.create(member=member, **lookup)
        except IntegrityError:  # bound by a concurrent transaction that has now committed
            existing = MemberIdentity.objects.filter(**lookup).first()
            if existing is None:
                raise
    if existing.member_id != member.pk:
        raise IdentityTaken(field="identities", params={"kind": ref.kind, "value": ref.value})
    return existing


@service
def member_register(*, phone: str, channel: str, store_id: int | None = None, partner: str = "", name: str = "",
                    identities: Iterable[IdentityRef | tuple] = ()) -> Member:
    """Register a member, or return the one already registered with this number (idempotent).

    ``identities`` (WeChat openid/unionid, partner customer ids) are linked to
    the member either way.  Raises invalid_phone, invalid_channel,
    store_not_found, invalid_identity, identity_taken (nothing is created then).
    Queues ``member.registered`` when a member is created.
    """
    e164 = phone_normalize(phone)
    if channel not in RegistrationChannel.values:
        raise InvalidChannel(field="channel", params={"channel": str(channel)})
    refs = [_identity_ref(ref) for ref in identities]
    store_id = store_id_check(store_id)
    member, created = Member.objects.get_or_create(phone=e164, defaults={
        "name": (name or "").strip()[:100], "registration_channel": channel, "registration_store_id": store_id,
        "registration_partner": (partner or "").strip()[:50],
    })
    if not created:
        member = member_lock(member)
    for ref in refs:
        _identity_bind(member, ref)
    if created:
        outbox_emit(topic="member.registered", key=f"member:{member.pk}",
                    payload={"member_id": member.pk, "phone": member.phone, "channel": channel,
                             "store_id": store_id, "partner": member.registration_partner})
    return member


@service
def member_identity_bind(*, member: Member | int, kind: str, value: str, namespace: str = "") -> MemberIdentity:
    """Link an outside identity to the member.  Raises invalid_identity, member_not_found, identity_taken."""
    ref = _identity_ref(IdentityRef(kind=kind, value=value, namespace=namespace))
    return _identity_bind(member_lock(member), ref)


# --- merge -----------------------------------------------------------------------------------


@service
def member_merge(*, source: Member | int, target: Member | int, actor=None, note: str = "") -> MemberMerge:
    """Merge the duplicate ``source`` into ``target``; returns the ``MemberMerge`` record.

    Locks both members in id order.  Re-points identities and spend records,
    runs every ``MERGE_HOOKS`` step (points, wallet, and the other areas), marks
    the source merged (and re-points members merged into it earlier), and
    recomputes the target's tier.  Queues ``member.merged``.  Raises
    merge_same_member, member_not_found, member_merged (either side already merged).
    """
    if member_id_of(source) == member_id_of(target):
        raise MergeSameMember(params={"member_id": member_id_of(source)})
    source, target = members_lock_pair(source, target)
    for member in (source, target):
        if member.merged_into_id is not None:
            raise MemberMerged(params={"member_id": member.pk, "merged_into": member.merged_into_id})
    moved: dict = {
        "identities": MemberIdentity.objects.filter(member=source).update(member=target),
        "spend_records": MemberSpend.objects.filter(member=source).update(member=target),
    }
    for hook in MERGE_HOOKS:
        summary = hook(source, target)
        if summary is not None:
            moved[getattr(hook, "merge_key", hook.__name__)] = summary
    now = timezone.now()
    Member.objects.filter(merged_into=source).update(merged_into=target)
    Member.objects.filter(pk=source.pk).update(merged_into=target, merged_at=now, updated_at=now)
    source.merged_into, source.merged_at = target, now
    _tier_refresh(target, now=now)
    merge = MemberMerge.objects.create(source=source, target=target, actor=_actor(actor), note=(note or "")[:300],
                                       moved=json.loads(json.dumps(moved, cls=DjangoJSONEncoder)))
    outbox_emit(topic="member.merged", key=f"member:{target.pk}",
                payload={"source_id": source.pk, "target_id": target.pk, "merge_id": merge.pk})
    return merge


def _actor(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


# --- paid spend and tiers --------------------------------------------------------------------


def _check_signed_amount(amount: object) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise InvalidAmount(field="amount", params={"amount": str(amount)})
    amount = Decimal(amount)
    if not amount.is_finite() or amount == 0 or amount != amount.quantize(FEN) or abs(amount) >= Decimal("1e10"):
        raise InvalidAmount(field="amount", params={"amount": str(amount)})
    return amount.quantize(FEN)


@service
def member_spend_record(*, member: Member | int, order_number: str, channel: str, amount: Decimal,
                        at: datetime, reference: str = "", locked: bool = False) -> MemberSpend:
    """Record paid spend of an order (a negative amount for a return) for the tier computation.

    With a ``reference`` (payment or return number) the call is idempotent: the
    same (order, channel, reference) returns the first record.  Locks the member
    (so a concurrent merge cannot strand the record on the duplicate).  Raises
    invalid_amount, invalid_reference, invalid_channel, member_not_found.  ``locked``: ``member`` is
    the Member row the caller already locked in this transaction (``member_lock``).
    """
    amount = _check_signed_amount(amount)
    if not isinstance(order_number, str) or not order_number.strip() or len(order_number.strip()) > 30:
        raise InvalidReference(field="order_number")
    if not isinstance(channel, str) or not channel.strip() or len(channel.strip()) > 20:
        raise InvalidChannel(field="channel", params={"channel": str(channel)})
    if not isinstance(at, datetime) or timezone.is_naive(at):
        raise InvalidAmount(message="A time zone aware time is required.", code="invalid_time", field="at")
    reference = (reference or "").strip()[:64]
    member = member if locked and isinstance(member, Member) else member_lock(member)
    if reference:
        existing = MemberSpend.objects.filter(order_number=order_number.strip(), channel=channel.strip(),
                                              reference=reference).first()
        if existing is not None:
            if existing.member_id != member.pk or existing.amount != amount:
                raise Conflict(code="spend_reference_conflict", field="reference",
                               params={"reference": reference})
            return existing
    spend = MemberSpend(member=member, order_number=order_number.strip(), channel=channel.strip(),
                        amount=amount, at=at, reference=reference)
    if not insert_joined([spend]):  # held for the sale's last statement inside ``joined_writes``
        spend.save(force_insert=True)
    return spend


def _tier_refresh(member: Member, *, now: datetime) -> None:
    """Recompute one (locked) member's rolling spend and tier, as ``tiers_recompute`` does for all."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT COALESCE(SUM(amount), 0) FROM {MemberSpend._meta.db_table} "
            "WHERE member_id = %s AND at > %s::timestamptz - interval '12 months' AND at <= %s",
            [member.pk, now, now],
        )
        (spend,) = cur.fetchone()
    tier = tier_for_spend(spend)
    Member.objects.filter(pk=member.pk).update(spend_12m=spend, tier=tier, tier_updated_at=now)
    member.spend_12m, member.tier, member.tier_updated_at = spend, tier, now


@service
def tiers_recompute(*, now: datetime | None = None) -> int:
    """Set every active member's tier from their paid spend of the last 12 months.  Returns how many changed.

    One set-based UPDATE: each member gets the highest active tier whose
    ``min_spend`` their rolling spend reaches (no tier when none does).  Rows
    whose spend and tier are unchanged are not touched, so a re-run changes nothing.
    """
    now = now or timezone.now()
    member_table, spend_table, tier_table = (Member._meta.db_table, MemberSpend._meta.db_table,
                                             Tier._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH spend AS (
                SELECT member_id, SUM(amount) AS total FROM {spend_table}
                WHERE at > %(now)s::timestamptz - interval '12 months' AND at <= %(now)s
                GROUP BY member_id
            ), computed AS (
                SELECT m.id, COALESCE(s.total, 0) AS total,
                       (SELECT t.id FROM {tier_table} t
                        WHERE t.is_active AND t.min_spend <= COALESCE(s.total, 0)
                        ORDER BY t.min_spend DESC, t.id LIMIT 1) AS tier_id
                FROM {member_table} m LEFT JOIN spend s ON s.member_id = m.id
                WHERE m.merged_into_id IS NULL
            )
            UPDATE {member_table} m
            SET tier_id = c.tier_id, spend_12m = c.total, tier_updated_at = %(now)s
            FROM computed c
            WHERE m.id = c.id AND (m.tier_id IS DISTINCT FROM c.tier_id OR m.spend_12m <> c.total)
            """,
            {"now": now},
        )
        return cur.rowcount
