"""POS pages.  Each view parses the request, calls one service (or selector) and renders.

Store scoping: the clerk's current store is kept in the session and checked
against ``staff_store_ids`` on every request; every object is looked up
through a selector scoped to that store, so another store's id is a 404.
htmx requests get the page's fragment; anything else gets the whole page,
so every form also works as a plain POST.
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from decimal import Decimal

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import selectors as member_read
from inventory.exceptions import InsufficientStock
from inventory.soldout import stock_precheck
from members.exceptions import MemberNotFound
from o2o.errors import DomainError
from o2o.login_throttle import ThrottledAuthenticationForm
from o2o.money import money
from orders import services as order_services
from orders.models import Order, Return
from members.codes import is_member_code, member_code_take
from members.privacy import phone_mask
from pos import selectors
from pos import services as pos
from pos.basket import (
    Basket,
    Exchange,
    ExchangeLine,
    basket_add,
    basket_coupon,
    basket_guide,
    basket_price,
    basket_set_qty,
    discount_parse,
    store_guides,
)
from pos.errors import error_message
from pos.parking import basket_open_get, basket_open_save, parked_list
from pos.forms import (
    ApprovalForm,
    CouponForm,
    DiscountForm,
    GuideForm,
    MemberForm,
    PaymentForm,
    PinForm,
    PriceForm,
    QtyForm,
    ReceiptSearchForm,
    ReturnForm,
    ReturnSearchForm,
    ScanForm,
    StoreForm,
)
from orders.services import ReturnLineIn
from payments import approvals, shifts
from payments.approvals import ApprovalRequired
from payments.models import ApprovalLog
from payments.providers.base import payment_code_wallet
from stores.models import Store
from stores.selectors import staff_member_stores, staff_profile, staff_store_ids

STORE_KEY = "pos_store"
SEEN_KEY = "pos_seen"
RECEIPT_ORDERS_KEY = "pos_receipt_orders"
BASKET_KEY = "pos_basket"  # a copy of the clerk's open basket; the server's row is the truth
# The client id of the sale this browser just completed.  The sale empties the server's basket in
# its own transaction and leaves the session alone (no second write after the sale): a session
# copy of that basket is stale, so the next request reads the server's row instead.
SOLD_COOKIE = "pos_sold"
PAY_FIELDS = ("cash_tendered", "card_amount", "card_reference", "wallet_amount", "points", "code_amount",
              "payment_code")
# Where on the sale screen an error of a member service belongs.
CODE_FIELDS = {"points_insufficient": "points", "points_cap_exceeded": "points", "invalid_points": "points",
               "points_amount_not_whole": "points", "wallet_insufficient": "wallet_amount",
               "member_required": "member", "not_a_guide": "guide",
               # A payment code's trouble shows next to the code field.
               "invalid_payment_code": "payment_code", "payment_code_mismatch": "payment_code",
               "payment_declined": "payment_code", "payment_code_pending": "payment_code",
               "payment_code_required": "payment_code", "no_code_due": "payment_code",
               "provider_not_configured": "payment_code", "provider_unavailable": "payment_code",
               "payment_not_held": "payment_code", "payment_not_pending": "payment_code"}
Action = ApprovalLog.Action


# The last activity is kept to the minute: a request within a minute of the one that recorded it
# leaves the session unwritten (the timeout is counted in minutes).
SEEN_REFRESH_SECONDS = 60


def idle_minutes() -> int:
    return int(getattr(settings, "POS_IDLE_TIMEOUT_MINUTES", 30))


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _go(request, url: str):
    """Redirect, also out of an htmx fragment request."""
    if is_htmx(request):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def use_store_language(request) -> None:
    """Store devices speak the project's language (Chinese) unless the clerk chose another
    with the language switch; the browser's Accept-Language does not decide at the counter."""
    if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()


def pos_view(view=None, *, needs_store: bool = True, activity: bool = True):
    """Login, idle timeout and the current store for every POS page.

    ``activity=False`` is for the calls a page makes by itself (catalogue refresh, sync timer): they
    are not the clerk at the till, so they neither keep an idle session signed in nor write the
    session (a write of the whole session from a slow background call would undo what the clerk's
    own request stored meanwhile, such as the receipt just looked up)."""
    if view is None:
        return functools.partial(pos_view, needs_store=needs_store, activity=activity)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        use_store_language(request)
        login_url = reverse("pos:login")
        if not request.user.is_authenticated:
            if is_htmx(request):
                return _go(request, login_url)
            return redirect_to_login(request.get_full_path(), login_url)
        now = int(time.time())
        seen = request.session.get(SEEN_KEY)
        if seen and now - seen > idle_minutes() * 60:
            logout(request)
            messages.info(request, _("You were signed out after %(minutes)s minutes without activity.")
                          % {"minutes": idle_minutes()})
            return _go(request, login_url)
        if activity and (not seen or now - seen >= SEEN_REFRESH_SECONDS):  # no session write per request
            request.session[SEEN_KEY] = now
        # A clerk's stores come with their rows (one query); HQ and regional managers' scope is wide.
        member_stores = staff_member_stores(request.user)
        if member_stores is not None:
            by_id = {store.pk: store for store in member_stores}
            store_ids = set(by_id)
        else:
            by_id, store_ids = None, staff_store_ids(request.user)
        if not store_ids:
            return render(request, "pos/no_store.html", status=403)
        store_id = request.session.get(STORE_KEY)
        if store_id not in store_ids:
            store_id = None
            if len(store_ids) == 1:
                store_id = next(iter(store_ids))
                request.session[STORE_KEY] = store_id
        if store_id is None and needs_store:
            return _go(request, reverse("pos:store"))
        if store_id is None:
            request.pos_store = None
        elif by_id is not None:
            request.pos_store = by_id[store_id]
        else:
            request.pos_store = Store.objects.select_related("warehouse").get(pk=store_id)
        request.pos_store_count = len(store_ids)
        return view(request, *args, **kwargs)

    return wrapper


def _page(request, template: str, context: dict | None = None, status: int = 200):
    store = getattr(request, "pos_store", None)
    base = {"store": store, "shift": shifts.shift_current(store) if store else None,
            "staff": staff_profile(request.user), "store_count": getattr(request, "pos_store_count", 1),
            "is_manager": bool(store) and approvals.is_store_manager(request.user, store)}
    return render(request, template, {**base, **(context or {})}, status=status)


def _approval_in(request) -> pos.ApprovalIn:
    form = ApprovalForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    return pos.ApprovalIn(pin=data.get("pin", ""), username=data.get("manager_username", ""),
                          password=data.get("manager_password", ""), reason=data.get("approval_reason", ""))


def _approval_dialog(request, actions, error: str = "") -> dict:
    """What the approval dialog needs to post the same form again with a manager's PIN or login."""
    keep = [(k, v) for k, v in request.POST.items() if k not in ApprovalForm.FIELDS and k != "csrfmiddlewaretoken"]
    labels = [str(dict(Action.choices).get(a, a)) for a in actions]
    return {"url": request.path, "fields": keep, "actions": labels, "error": error,
            "target": request.headers.get("HX-Target", "")}


# --- login, store -----------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "pos/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def dispatch(self, request, *args, **kwargs):
        use_store_language(request)
        return super().dispatch(request, *args, **kwargs)

    def get_default_redirect_url(self):
        return reverse("pos:home")

    def form_valid(self, form):
        response = super().form_valid(form)
        self.request.session[SEEN_KEY] = int(time.time())
        return response


class LogoutView(auth_views.LogoutView):
    next_page = "pos:login"


@pos_view
def home(request):
    if shifts.shift_current(request.pos_store) is None:
        return redirect("pos:shift")
    return redirect("pos:sale")


@pos_view(needs_store=False)
def store_pick(request):
    store_ids = staff_store_ids(request.user)
    if request.method == "POST":
        form = StoreForm(request.POST)
        if form.is_valid() and form.cleaned_data["store"] in store_ids:
            request.session[STORE_KEY] = form.cleaned_data["store"]
            return redirect("pos:home")
        raise Http404
    stores = Store.objects.filter(pk__in=store_ids, is_active=True).order_by("code")
    return _page(request, "pos/store_pick.html", {"stores": stores})


# --- sale -------------------------------------------------------------------------------------------


def _basket(request) -> Basket:
    """The clerk's open basket: the session's copy, or the server's (``pos.parking``) after a sign-in."""
    cached = request.session.get(BASKET_KEY) or {}
    if (cached.get("store") == request.pos_store.pk and cached.get("clerk") == request.user.pk
            and (cached.get("basket") or {}).get("uuid") != request.COOKIES.get(SOLD_COOKIE)):
        return Basket.load(cached.get("basket"))
    basket = basket_open_get(store=request.pos_store, clerk=request.user)
    _cache(request, basket)
    return basket


def _save(request, basket: Basket | None) -> None:
    _cache(request, basket_open_save(store=request.pos_store, clerk=request.user, basket=basket))


def _cache(request, basket: Basket) -> None:
    request.session[BASKET_KEY] = {"store": request.pos_store.pk, "clerk": request.user.pk, "basket": basket.dump()}


def basket_cache_drop(request) -> None:
    """After a park or a recall changed the server's basket: the next request reads it from there."""
    request.session.pop(BASKET_KEY, None)


def _sale_context(request, basket: Basket, *, errors=None, approval=None, focus="scan", payment_form=None,
                  member_lookup=None, last_index=None, search=None, offer_coupons=False,
                  parked_count=None) -> dict:
    """``offer_coupons``: look up the member's usable coupons (when the page loads or the member is
    set); other redraws keep the chips already on the page (hx-preserve), which keeps a scan's
    queries where they were."""
    store = request.pos_store
    member = None
    if basket.member_id:
        try:
            member = member_read.member_get(basket.member_id)
        except MemberNotFound:
            member = None
    priced = basket_price(basket, store, member=member)
    exchange_order = None
    if basket.exchange:
        exchange_order = selectors.returnable_orders(store).filter(pk=basket.exchange.order_id).first()
        if exchange_order is not None:
            priced.exchange_credit = selectors.exchange_credit(exchange_order, basket.exchange.lines)
    errors = dict(errors or {})
    if priced.discount_error and "discount" not in errors:
        errors["discount"] = error_message(priced.discount_error)
    if priced.coupon_error and "coupon" not in errors:
        errors["coupon"] = error_message(priced.coupon_error)
    current = shifts.shift_current(store)
    unit = current.cash_unit if current is not None else store.cash_unit
    config = member_read.points_config()  # read once for the member's cap and the rate
    return {"basket": basket, "priced": priced, "member": member, "errors": errors, "approval": approval,
            "cash_unit": unit, "cash_unit_fen": int(unit * 100),
            "focus": focus, "exchange_order": exchange_order, "member_lookup": member_lookup,
            "parked_count": parked_count,
            "payment_form": payment_form or PaymentForm(initial={"client_uuid": basket.uuid}),
            "discount_limit": approvals.clerk_discount_limit_percent(), "last_index": last_index,
            "guides": store_guides(store), "points_cap": _points_cap(priced.total, member, config),
            "points_per_yuan": config.points_per_yuan_redeemed,
            "recent": selectors.recent_sales(store, current, limit=5), "search": search,
            "member_coupons": (member_read.member_coupons_usable(member)
                               if offer_coupons and member and not basket.coupon else None)}


def _points_cap(total, member, config) -> int:
    if member is None:
        return 0
    return max(0, min(member.points_available, member_read.points_redeem_cap(order_amount=max(total, 0),
                                                                               config=config)))


def _sale_render(request, basket: Basket, *, status: int = 200, **kwargs):
    context = _sale_context(request, basket, **kwargs)
    if is_htmx(request):
        return _page(request, "pos/sale/_workspace.html", context, status=status)
    return _page(request, "pos/sale.html", context, status=status)


@pos_view
def sale(request):
    basket = _basket(request)
    _save(request, basket)
    return _sale_render(request, basket, offer_coupons=True, parked_count=parked_list(request.pos_store).count())


@pos_view
@require_POST
def sale_new(request):
    _save(request, None)
    return _go(request, reverse("pos:sale"))


@pos_view
@require_POST
def sale_scan(request):
    basket = _basket(request)
    form = ScanForm(request.POST)
    if not form.is_valid():
        return _sale_render(request, basket, status=422,
                            errors={"scan": _("Scan or type a barcode or SKU code, then press Enter.")})
    code = form.cleaned_data["code"]
    # The scan field takes whatever the customer shows: a member, coupon or guide QR too.
    if code.lower().startswith("o2o:member:"):
        return _member_set(request, basket, code.split(":", 2)[2])
    if is_member_code(code):
        return _member_code_set(request, basket, code)
    if code.lower().startswith("o2o:coupon:"):
        return _coupon_set(request, basket, code)
    if code.lower().startswith("o2o:guide:"):
        return _guide_set(request, basket, code)
    try:
        basket, sku = basket_add(basket, request.pos_store, code)
    except DomainError as exc:
        if payment_code_wallet(code):  # the customer's payment code, scanned a step too early
            return _sale_render(request, basket, status=422, focus="payment_code", errors={
                "scan": _("This is the customer's payment code. Scan it into the payment code field (F7).")})
        if not code.isdigit():  # not a barcode: a product name or part of a SKU code
            hits = selectors.sku_search(request.pos_store, code)
            if hits:
                return _sale_render(request, basket, focus="search", search={"query": code, "results": hits})
            return _sale_render(request, basket, status=422, errors={
                "scan": _("No product matches “%(text)s”.") % {"text": code}})
        return _sale_render(request, basket, status=422, errors={"scan": error_message(exc)})
    _save(request, basket)
    index = next(i for i in range(len(basket.lines) - 1, -1, -1) if basket.lines[i].sku_id == sku.pk)
    return _sale_render(request, basket, last_index=index)


@pos_view
@require_POST
def sale_qty(request, index: int):
    basket = _basket(request)
    form = QtyForm(request.POST)
    if not form.is_valid():
        return _sale_render(request, basket, status=422,
                            errors={f"qty_{index}": _("Quantity must be a whole number from 1 to 999.")})
    try:
        basket = basket_set_qty(basket, request.pos_store, index, form.cleaned_data["qty"])
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={f"qty_{index}": error_message(exc)})
    _save(request, basket)
    return _sale_render(request, basket)


@pos_view
@require_POST
def sale_remove(request, index: int):
    basket = _basket(request).with_qty(index, 0)
    _save(request, basket)
    return _sale_render(request, basket)


@pos_view
@require_POST
def sale_discount(request):
    basket, store = _basket(request), request.pos_store
    form = DiscountForm(request.POST)
    form.is_valid()
    try:
        discount = discount_parse(form.cleaned_data.get("discount", ""))
        if discount is None:
            basket = replace(basket, discount=None)
        else:
            priced = basket_price(replace(basket, discount=discount), store)
            if priced.discount_error:
                raise priced.discount_error
            if approvals.discount_needs_approval(user=request.user, store=store, discount=priced.manual_discount,
                                                 subtotal=priced.subtotal - priced.override_discount):
                approval = _approval_in(request)
                if not approval:
                    return _sale_render(request, basket, approval=_approval_dialog(request, [Action.DISCOUNT]),
                                        focus="pin")
                log = pos.approval_grant(action=Action.DISCOUNT, store=store, actor=request.user,
                                         approval=approval, reference=basket.uuid, amount=priced.manual_discount,
                                         data={"discount": discount.label()})
                discount = replace(discount, approval_id=log.pk)
            basket = replace(basket, discount=discount)
    except approvals.ApprovalDenied as exc:
        return _sale_render(request, basket, status=422, focus="pin",
                            approval=_approval_dialog(request, [Action.DISCOUNT], error_message(exc)))
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={"discount": error_message(exc)}, focus="discount")
    _save(request, basket)
    return _sale_render(request, basket)


@pos_view
@require_POST
def sale_price(request, index: int):
    """Override a line's unit price (below the list price): always with a manager's approval."""
    basket, store = _basket(request), request.pos_store
    form = PriceForm(request.POST)
    if not form.is_valid() or not 0 <= index < len(basket.lines):
        return _sale_render(request, basket, status=422,
                            errors={f"price_{index}": _("Type the new unit price, e.g. 59.00.")})
    line = basket.lines[index]
    sku = basket_price(basket, store).lines
    list_price = next(pl.list_price for pl in sku if pl.index == index)
    price = money(form.cleaned_data["price"])
    if price >= list_price:
        return _sale_render(request, basket, status=422,
                            errors={f"price_{index}": _("The new price must be below the list price (%(price)s).")
                                    % {"price": list_price}})
    approval = _approval_in(request)
    if not approval:
        return _sale_render(request, basket, approval=_approval_dialog(request, [Action.PRICE_OVERRIDE]),
                            focus="pin")
    try:
        log = pos.approval_grant(action=Action.PRICE_OVERRIDE, store=store, actor=request.user, approval=approval,
                                 reference=basket.uuid, amount=price,
                                 data={"sku_id": line.sku_id, "price": str(price), "list_price": str(list_price)})
    except DomainError as exc:
        return _sale_render(request, basket, status=422, focus="pin",
                            approval=_approval_dialog(request, [Action.PRICE_OVERRIDE], error_message(exc)))
    basket = basket.with_price(index, price, log.pk)
    _save(request, basket)
    return _sale_render(request, basket)


def _member_set(request, basket: Basket, phone: str, *, register: bool = False, name: str = ""):
    if is_member_code(phone):
        return _member_code_set(request, basket, phone)
    try:
        member = member_read.member_by_phone(phone)
        if member is None and register:
            member = pos.pos_member_register(store=request.pos_store, phone=phone, name=name, actor=request.user,
                                             guide_id=basket.guide_id)
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={"member": error_message(exc)}, focus="member")
    if member is None:
        return _sale_render(request, basket, member_lookup=phone, focus="member_name",
                            errors={"member": _("No member with this number. Register them?")})
    try:
        pos.exchange_member_check(store=request.pos_store, basket=basket, member=member)
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={"member": error_message(exc)}, focus="member")
    basket = replace(basket, member_id=member.pk,
                     member_proved=basket.member_proved and basket.member_id == member.pk)
    _save(request, basket)
    return _sale_render(request, basket, offer_coupons=True)


def _member_code_set(request, basket: Basket, code: str):
    """The customer showed their dynamic member code: the member, proved present (points and
    wallet may pay).  The code is taken once."""
    try:
        member = member_code_take(code)
        pos.exchange_member_check(store=request.pos_store, basket=basket, member=member)
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={"member": error_message(exc)}, focus="member")
    basket = replace(basket, member_id=member.pk, member_proved=True)
    _save(request, basket)
    return _sale_render(request, basket, offer_coupons=True)


@pos_view
@require_POST
def sale_member(request):
    basket = _basket(request)
    if request.POST.get("clear"):
        basket = replace(basket, member_id=None, coupon="", member_proved=False)
        _save(request, basket)
        return _sale_render(request, basket)
    form = MemberForm(request.POST)
    if not form.is_valid():
        return _sale_render(request, basket, status=422, focus="member",
                            errors={"member": _("Type or scan the member's mobile number.")})
    phone = form.cleaned_data["phone"]
    if phone.lower().startswith("o2o:member:"):
        phone = phone.split(":", 2)[2]
    return _member_set(request, basket, phone, register=bool(request.POST.get("register")),
                       name=form.cleaned_data.get("name", ""))


def _coupon_set(request, basket: Basket, code: str):
    try:
        basket = basket_coupon(basket, request.pos_store, code) if code else replace(basket, coupon="")
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={"coupon": error_message(exc)}, focus="coupon")
    _save(request, basket)
    return _sale_render(request, basket)


def _guide_set(request, basket: Basket, value: str):
    try:
        basket = basket_guide(basket, request.pos_store, value)
    except DomainError as exc:
        return _sale_render(request, basket, status=422, errors={"guide": error_message(exc)}, focus="guide")
    _save(request, basket)
    return _sale_render(request, basket)


@pos_view
@require_POST
def sale_coupon(request):
    form = CouponForm(request.POST)
    form.is_valid()
    return _coupon_set(request, _basket(request), form.cleaned_data.get("coupon", ""))


@pos_view
@require_POST
def sale_guide(request):
    form = GuideForm(request.POST)
    form.is_valid()
    return _guide_set(request, _basket(request), form.cleaned_data.get("guide", ""))


def _stock_refused(request, store: Store, basket: Basket):
    """The answer to a complete the store plainly cannot serve (sold out, or fewer units than the
    basket), decided before any transaction by the sold-out gate and a lock-free read; None to go on.

    htmx gets only the error line, swapped into the sale's error area: the basket, tenders and
    totals on the page stay as they are.  The sale itself still decides with its own stock update.
    """
    try:
        stock_precheck(warehouse_id=store.warehouse_id, demand=basket.demand())
    except InsufficientStock as exc:
        if not is_htmx(request):
            return _sale_render(request, basket, status=422, payment_form=PaymentForm(request.POST),
                                errors={"general": error_message(exc)}, focus="cash_tendered")
        response = render(request, "pos/sale/_complete_error.html", {"message": error_message(exc)}, status=422)
        response["HX-Retarget"] = "#complete-error"
        response["HX-Reswap"] = "outerHTML"
        return response
    return None


@pos_view
@require_POST
def sale_complete(request):
    store = request.pos_store
    basket = _basket(request)
    form = PaymentForm(request.POST)
    if not form.is_valid():
        errors = {name: " ".join(errs) for name, errs in form.errors.items()}
        return _sale_render(request, basket, status=422, errors=errors, payment_form=form, focus="cash_tendered")
    client_uuid = form.cleaned_data["client_uuid"]
    # A double click or a retry after a timeout: the sale exists, show its receipt.
    done = pos.sale_already_made(store=store, client_uuid=client_uuid)
    if done is not None:
        return _go(request, reverse("pos:receipt", args=[done.number]))
    if client_uuid != basket.uuid:
        return _sale_render(request, basket, status=422, payment_form=PaymentForm(initial={"client_uuid": basket.uuid}),
                            errors={"general": _("This sale screen was out of date and has been refreshed. "
                                                 "Check the items and complete again.")})
    refused = _stock_refused(request, store, basket)
    if refused is not None:
        return refused
    payment = pos.PaymentIn(cash_tendered=form.cleaned_data.get("cash_tendered") or Decimal("0"),
                            card_amount=form.cleaned_data.get("card_amount") or Decimal("0"),
                            card_reference=form.cleaned_data.get("card_reference", ""),
                            wallet_amount=form.cleaned_data.get("wallet_amount") or Decimal("0"),
                            points=form.cleaned_data.get("points") or 0,
                            payment_code=form.cleaned_data.get("payment_code", ""),
                            code_amount=form.cleaned_data.get("code_amount") or Decimal("0"),
                            code_tender=form.cleaned_data.get("code_tender", ""))
    try:
        result = pos.pos_sale_complete(store=store, actor=request.user, client_uuid=client_uuid, basket=basket,
                                       payment=payment, known_new=True, basket_clear=True)
    except ApprovalRequired as exc:
        return _sale_render(request, basket, status=422, payment_form=form,
                            errors={exc.field or "general": _("A manager must approve this again.")})
    except DomainError as exc:
        field = CODE_FIELDS.get(exc.code) or (exc.field if exc.field in PAY_FIELDS else None)
        if field is None:
            field = "coupon" if exc.code.startswith("coupon_") else "general"
        errors = {field: error_message(exc)}
        refund = getattr(exc, "micropay_refund", None)
        if refund is not None:  # the code was charged, then the sale failed: the money is on its way back
            note = _("The %(amount)s charged to the payment code is being refunded to the customer.") % {
                "amount": f"¥{refund.amount}"}
            errors["payment_code"] = f"{errors['payment_code']} {note}" if "payment_code" in errors else note
        return _sale_render(request, basket, status=422, payment_form=form, errors=errors,
                            focus=field if field in PAY_FIELDS else "cash_tendered")
    # The sale emptied the server's basket; the session's copy is set aside by the cookie (no write).
    response = _go(request, reverse("pos:receipt", args=[result.order.number]))
    response.set_cookie(SOLD_COOKIE, str(client_uuid), path="/pos/", httponly=True, samesite="Lax",
                        secure=settings.SESSION_COOKIE_SECURE)
    return response


# --- receipt and void -------------------------------------------------------------------------------


def _qr_svg(text: str) -> str:
    return segno.make(text, error="m").svg_inline(scale=3, border=2, omitsize=True)


def _receipt_page(request, order: Order, *, approval=None, error: str = "", status: int = 200):
    store = request.pos_store
    current = shifts.shift_current(store)
    data = selectors.receipt(order)
    voidable = (current is not None and order.channel == "pos" and order.created_at >= current.opened_at
                and order.refunded_total == 0 and not data.returns)
    return _page(request, "pos/receipt.html", {
        "order": order, "receipt": data, "qr": _qr_svg(order.number), "voidable": voidable,
        "clerk_discount": order.discount_total - order.coupon_discount - data.promotion_discount - order.cash_rounding,
        "promotion_discount": data.promotion_discount,
        "approval": approval, "error": error, "reprint": request.GET.get("reprint") == "1"}, status=status)


@pos_view
def receipts(request):
    """Find a receipt to reprint: by its order number, or the store's sales of a day."""
    store = request.pos_store
    form = ReceiptSearchForm(request.GET or None)
    day, orders = None, []
    if form.is_valid():
        if form.cleaned_data["number"]:
            order = selectors.store_orders(store).filter(number=form.cleaned_data["number"]).first()
            if order is not None:
                return redirect(reverse("pos:receipt", args=[order.number]) + "?reprint=1")
            form.add_error("number", _("No receipt with this number at this store."))
        else:
            day = form.cleaned_data["day"] or timezone.localdate()
            orders = selectors.sales_on_day(store, day)
    else:
        day = timezone.localdate()
        orders = selectors.sales_on_day(store, day) if not request.GET else []
    return _page(request, "pos/receipts.html", {"form": form, "day": day, "orders": orders},
                 status=422 if form.errors else 200)


@pos_view
def receipt(request, number: str):
    order = get_object_or_404(selectors.store_orders(request.pos_store).select_related(
        "store", "created_by", "guide", "member"), number=number)
    return _receipt_page(request, order)


@pos_view
@require_POST
def sale_void(request, pk: int):
    store = request.pos_store
    order = get_object_or_404(selectors.store_sales(store), pk=pk)
    approval = _approval_in(request)
    try:
        pos.pos_void(order=order, store=store, actor=request.user, approval=approval,
                     reason=request.POST.get("reason", ""))
    except ApprovalRequired:
        return _receipt_page(request, order, approval=_approval_dialog(request, [Action.VOID]))
    except (approvals.ApprovalDenied, approvals.ApprovalRateLimited) as exc:
        return _receipt_page(request, order, status=422,
                             approval=_approval_dialog(request, [Action.VOID], error_message(exc)))
    except DomainError as exc:
        return _receipt_page(request, order, error=error_message(exc), status=422)
    messages.success(request, _("Sale %(number)s voided: goods back in stock, tenders refunded.")
                     % {"number": order.number})
    return redirect("pos:receipt", number=order.number)


# --- returns and exchanges --------------------------------------------------------------------------


@pos_view
def returns(request):
    store = request.pos_store
    form = ReturnSearchForm(request.GET or None)
    orders, by_receipt, searched = [], True, False
    if form.is_valid():
        searched = True
        orders, by_receipt = selectors.orders_for_return(store, form.cleaned_data["q"])
        found = set(request.session.get(RECEIPT_ORDERS_KEY, []))
        if by_receipt:
            found |= {o.pk for o in orders}
            request.session[RECEIPT_ORDERS_KEY] = sorted(found)[-50:]
            if len(orders) == 1:
                return redirect("pos:return_detail", pk=orders[0].pk)
    return _page(request, "pos/returns.html", {"form": form, "orders": orders, "searched": searched,
                                               "by_receipt": by_receipt})


def _return_context(request, order: Order, form=None, **extra) -> dict:
    lines = selectors.returnable_lines(order)
    by_receipt = order.pk in request.session.get(RECEIPT_ORDERS_KEY, [])
    member = selectors.member_for_order(order)
    # Minimum necessary (PIPL): the full number only for the clerk serving that member right now.
    serving = member is not None and _basket(request).member_id == member.pk
    return {"order": order, "form": form or ReturnForm(lines=lines, initial={"client_uuid": Basket.new().uuid}),
            "by_receipt": by_receipt, "needed": pos.return_approvals_needed(order, by_receipt=by_receipt),
            "window_end": order_services.return_window_end(order), "member": member,
            "member_phone": (member.phone if serving else phone_mask(member.phone)) if member else "",
            "refunded": selectors.receipt(order).refunds, **extra}


@pos_view
def return_detail(request, pk: int):
    store = request.pos_store
    order = get_object_or_404(selectors.returnable_orders(store).select_related("store"), pk=pk)
    if request.method != "POST":
        return _page(request, "pos/return_detail.html", _return_context(request, order))
    lines = selectors.returnable_lines(order)
    form = ReturnForm(request.POST, lines=lines)
    if not form.is_valid():
        return _page(request, "pos/return_detail.html", _return_context(request, order, form), status=422)
    picked = form.picked()
    if not picked:
        form.add_error(None, _("Type the quantity to return on at least one line."))
        return _page(request, "pos/return_detail.html", _return_context(request, order, form), status=422)
    by_receipt = order.pk in request.session.get(RECEIPT_ORDERS_KEY, [])
    approval = _approval_in(request)
    needed = pos.return_approvals_needed(order, by_receipt=by_receipt)
    try:
        if request.POST.get("exchange"):
            basket = Basket.new()
            log = pos.exchange_approve(order=order, store=store, actor=request.user, by_receipt=by_receipt,
                                       reference=basket.uuid, approval=approval)
            # The new goods are the same customer's: the basket starts with the original order's member.
            basket = replace(basket, member_id=order.member_id,
                             member_proved=basket.member_proved and basket.member_id == order.member_id,
                             exchange=Exchange(
                order_id=order.pk, lines=tuple(ExchangeLine(pk_, qty, cond) for pk_, qty, cond in picked),
                approval_id=log.pk if log else None, reason=form.cleaned_data.get("reason") or "exchange",
                by_receipt=by_receipt))
            _save(request, basket)
            return redirect("pos:sale")
        ret = pos.pos_return(order=order, store=store, actor=request.user, by_receipt=by_receipt,
                             client_uuid=form.cleaned_data["client_uuid"], reason=form.cleaned_data.get("reason", ""),
                             lines=[ReturnLineIn(pk_, qty, cond) for pk_, qty, cond in picked], approval=approval)
    except ApprovalRequired:
        return _page(request, "pos/return_detail.html",
                     _return_context(request, order, form, approval=_approval_dialog(request, needed)))
    except (approvals.ApprovalDenied, approvals.ApprovalRateLimited) as exc:
        return _page(request, "pos/return_detail.html", _return_context(
            request, order, form, approval=_approval_dialog(request, needed, error_message(exc))), status=422)
    except DomainError as exc:
        form.add_error(None, error_message(exc))
        return _page(request, "pos/return_detail.html", _return_context(request, order, form), status=422)
    return redirect("pos:return_slip", number=ret.number)


@pos_view
def return_slip(request, number: str):
    ret = get_object_or_404(Return.objects.filter(store=request.pos_store).select_related("order", "created_by",
                                                                                         "approved_by"),
                            number=number)
    refunds = selectors.receipt(ret.order).refunds
    refunds = [r for r in refunds if ret.number in r.reason]
    return _page(request, "pos/return_slip.html", {"ret": ret, "refunds": refunds,
                                                   "lines": ret.lines.select_related("order_line")})


@pos_view
@require_POST
def exchange_cancel(request):
    basket = replace(_basket(request), exchange=None)
    _save(request, basket)
    return _go(request, reverse("pos:sale"))


# --- manager PIN ------------------------------------------------------------------------------------


@pos_view
def pin(request):
    form = PinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            approvals.manager_pin_set(user=request.user, pin=form.cleaned_data["pin"])
        except DomainError as exc:
            form.add_error("pin", error_message(exc))
        else:
            messages.success(request, _("Your approval PIN is set."))
            return redirect("pos:home")
    return _page(request, "pos/pin.html", {"form": form}, status=422 if form.errors else 200)
