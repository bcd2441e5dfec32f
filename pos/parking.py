"""The clerk's open basket on the server, and parking and recalling sales (挂单/取单).

The open basket is one row per clerk and store (``PosBasket``, state ``open``),
written through on every edit with one upsert, so logging in again, or in
another browser, finds the basket as it was.  The pages keep a copy in the
login session and read the row only when the session has none (after a
sign-in, a park or a recall), so a scan costs one statement more than when
the basket lived in the session alone.  When one clerk has the sale open in
two browsers at once, the last edit wins.

Parking moves the open basket into a new ``parked`` row of the store and
gives the clerk an empty basket.  Recalling moves a parked basket into the
recalling clerk's open basket; it is refused while that basket holds
anything (the clerk parks or clears it first), so nothing is ever lost or
merged by surprise.  Recall is a conditional UPDATE (``state = parked``)
checked by row count: of two clerks recalling the same sale at once, exactly
one gets it.  The shift close expires what is still parked, in the close's
transaction (``parked_expire``).
"""

from __future__ import annotations

import json
from dataclasses import replace

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from o2o.db import service, write_joined
from o2o.errors import Conflict, InvalidInput, NotFound
from payments import shifts
from payments.models import PosShift
from pos.basket import Basket, basket_price
from pos.models import PosBasket
from stores.models import Store

State = PosBasket.State
LABEL_MAX = 40


class NothingToPark(InvalidInput):
    code = "nothing_to_park"
    default_message = _("The basket is empty: there is nothing to park.")


class BasketNotEmpty(Conflict):
    code = "basket_not_empty"
    default_message = _("Finish, park or clear the current sale before recalling a parked one.")


class ParkedNotFound(NotFound):
    code = "parked_not_found"
    default_message = _("This parked sale is not at this store.")


class ParkedGone(Conflict):
    code = "parked_gone"
    default_message = _("This parked sale was already recalled or has expired.")


# --- the open basket (the hot path: one read, one write) --------------------------------------------


def basket_open_get(*, store: Store, clerk) -> Basket:
    """The clerk's open basket at the store (a new one when there is none).  One SELECT."""
    data = (PosBasket.objects.filter(store=store, clerk=clerk, state=State.OPEN)
            .values_list("data", flat=True).first())
    return Basket.load(data)


def basket_open_save(*, store: Store, clerk, basket: Basket | None) -> Basket:
    """Keep the clerk's open basket (``None``: start a new one).

    One statement, an upsert on the partial unique index of open baskets, so it
    is atomic on its own and a scan pays one round trip for it; called from a
    service (park, recall) it is part of that service's transaction and holds
    the row's lock until it ends.
    """
    basket = basket or Basket.new()
    table = PosBasket._meta.db_table
    sql = (f'INSERT INTO "{table}" ("store_id", "clerk_id", "state", "data", "label", "units", "updated_at") '
           "VALUES (%s, %s, 'open', %s::jsonb, '', 0, %s) "
           "ON CONFLICT (\"clerk_id\", \"store_id\") WHERE \"state\" = 'open' "
           'DO UPDATE SET "data" = EXCLUDED."data", "updated_at" = EXCLUDED."updated_at"')
    params = [store.pk, clerk.pk, _json(basket.dump()), timezone.now()]
    if write_joined(sql, params):  # emptied by a sale: part of the sale's last statement
        return basket
    with connection.cursor() as cur:
        cur.execute(sql, params)
    return basket


def _json(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))  # ids, quantities, strings: plain JSON


def _open_for_update(store: Store, clerk) -> Basket:
    """The clerk's open basket, its row locked (made first when missing) so park and recall see one state."""
    row = (PosBasket.objects.select_for_update()
           .filter(store=store, clerk=clerk, state=State.OPEN).values_list("data", flat=True).first())
    if row is None:
        basket = Basket.new()
        basket_open_save(store=store, clerk=clerk, basket=basket)
        return basket
    return Basket.load(row)


# --- reads --------------------------------------------------------------------------------------------


def parked_list(store: Store) -> QuerySet[PosBasket]:
    """The store's parked sales, oldest first: the list at the counter and the warning at the close."""
    return (PosBasket.objects.filter(store=store, state=State.PARKED).select_related("clerk__staff")
            .order_by("parked_at", "id"))


def parked_expired_at(shift: PosShift) -> QuerySet[PosBasket]:
    """The parked sales that expired when this shift closed (for its Z report)."""
    return (PosBasket.objects.filter(expired_shift=shift, state=State.EXPIRED).select_related("clerk__staff")
            .order_by("parked_at", "id"))


# --- writes -------------------------------------------------------------------------------------------


@service
def basket_park(*, store: Store, clerk, label: str = "") -> PosBasket:
    """Park the clerk's open basket for the store and give the clerk an empty one.

    Holds the open shift FOR SHARE (a close waits, then expires the new row) and
    locks the clerk's open-basket row.  The proof that the member showed their
    member code is not kept: whoever recalls the sale asks for the code again
    before points or wallet pay.  Raises ShiftNotOpen, NothingToPark, InvalidInput (label).
    """
    label = (label or "").strip()
    if len(label) > LABEL_MAX:
        raise InvalidInput(_("A note of at most %(max)s characters.") % {"max": LABEL_MAX},
                           code="invalid_label", field="label")
    shift = shifts.shift_hold(store)
    basket = _open_for_update(store, clerk)
    if not basket.lines:
        raise NothingToPark(field="park")
    priced = basket_price(basket, store)
    now = timezone.now()
    parked = PosBasket.objects.create(
        store=store, clerk=clerk, state=State.PARKED, data=replace(basket, member_proved=False).dump(),
        label=label, total=priced.total, units=priced.units, shift=shift, updated_at=now, parked_at=now)
    basket_open_save(store=store, clerk=clerk, basket=None)
    return parked


@service
def basket_recall(*, store: Store, clerk, parked_id: int) -> Basket:
    """Move a parked sale of the store into the clerk's open basket.

    Locks the clerk's open-basket row, then takes the parked row with a
    conditional UPDATE (state parked → recalled): one caller wins, the other
    gets ParkedGone.  Raises ParkedNotFound (not this store's), ParkedGone,
    BasketNotEmpty (the clerk's basket holds a sale: park or clear it first).
    """
    current = _open_for_update(store, clerk)
    if current.lines or current.exchange:
        raise BasketNotEmpty(field="recall")
    taken = PosBasket.objects.filter(pk=parked_id, store=store, state=State.PARKED).update(
        state=State.RECALLED, recalled_by=clerk, recalled_at=timezone.now())
    if taken != 1:
        if PosBasket.objects.filter(pk=parked_id, store=store).exclude(state=State.OPEN).exists():
            raise ParkedGone(field="recall", params={"parked": parked_id})
        raise ParkedNotFound(field="recall", params={"parked": parked_id})
    data = PosBasket.objects.values_list("data", flat=True).get(pk=parked_id)
    basket = Basket.load(data)
    basket_open_save(store=store, clerk=clerk, basket=basket)
    return basket


@service
def parked_expire(*, shift: PosShift) -> int:
    """Expire the store's parked sales at the close of ``shift``; returns how many.

    Called by the close in its transaction, after the shift row is locked FOR
    UPDATE, so no park (which holds the shift FOR SHARE) is half-way in.  The
    same conditional state guard as recall: a recall racing the close either
    wins (the sale is in a basket) or finds it expired.
    """
    return PosBasket.objects.filter(store_id=shift.store_id, state=State.PARKED).update(
        state=State.EXPIRED, expired_at=shift.closed_at or timezone.now(), expired_shift=shift)


@service
def pos_shift_close(*, shift: PosShift, actor, counts, note: str = "") -> tuple[PosShift, int]:
    """Close the shift with its count (``payments.shifts.shift_close``) and expire what is still parked,
    in one transaction.  Returns (closed shift, parked sales expired).  Raises what shift_close raises."""
    closed = shifts.shift_close(shift=shift, actor=actor, counts=counts, note=note)
    return closed, parked_expire(shift=closed)
