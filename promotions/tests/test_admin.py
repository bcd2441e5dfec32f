"""HQ's face of promotions: create and schedule in the admin, preview a basket, pause, and the
price-consistency report."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.tests.factories import SkuFactory
from orders import pricing
from promotions.models import Promotion
from promotions.tests.factories import promotion

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def hq(hq_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(hq_user)
    return client


@pytest.fixture
def shirt(db):
    return SkuFactory(code="TS-001", list_price=D("99.00"))


def add_form(**overrides):
    now = timezone.localtime()
    data = {"code": "NY2027", "name": "新年满减", "kind": "threshold_off", "status": "active", "priority": "100",
            "exclusive_group": "", "bearer": "hq", "valid_from_0": (now + timedelta(days=1)).strftime("%Y-%m-%d"),
            "valid_from_1": "00:00:00", "valid_until_0": (now + timedelta(days=3)).strftime("%Y-%m-%d"),
            "valid_until_1": "00:00:00", "steps": "300:30, 600:80", "threshold": "0", "nth": "2", "buy_qty": "1",
            "gift_qty": "1", "channels": "pos,mini_program", "member_tiers": "", "tier_benefits": ""}
    data.update(overrides)
    return data


def test_hq_schedules_a_promotion_that_starts_later(hq, hq_user, store_a, shirt):
    response = hq.post(reverse("admin:promotions_promotion_add"), add_form())
    assert response.status_code == 302, response.content.decode()[-3000:]
    promo = Promotion.objects.get(code="NY2027")
    assert (promo.channels, promo.created_by, promo.steps) == (["pos", "mini_program"], hq_user, "300:30, 600:80")
    # Not live yet: today's baskets do not see it; the preview at a time in its window does.
    assert pricing.sale_price(demand={shirt.id: 4}, channel="pos", store_id=store_a.pk).promotion_discount == 0
    at = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    page = hq.get(reverse("admin:promotions_promotion_preview"),
                  {"basket": "TS-001 4", "channel": "pos", "store": store_a.pk, "at": at}).content.decode()
    assert 'data-testid="preview-total">¥366.00<' in page


def test_a_promotion_missing_its_terms_is_refused_and_nothing_is_saved(hq):
    response = hq.post(reverse("admin:promotions_promotion_add"), add_form(steps="300-30"))
    assert response.status_code == 200
    assert "spend:off" in response.content.decode()
    response = hq.post(reverse("admin:promotions_promotion_add"), add_form(kind="special_price", steps=""))
    assert response.status_code == 200
    assert not Promotion.objects.exists()


def test_preview_shows_each_promotion_on_each_line(hq, store_a, shirt):
    promotion(code="SHIRT2", name="第二件半价", kind="nth_item", nth=2, percent=D("50"), skus=[shirt])
    page = hq.get(reverse("admin:promotions_promotion_preview"),
                  {"basket": f"{shirt.barcode} 1\nTS-001 1", "channel": "web"}).content.decode()
    assert "SHIRT2 第二件半价: −¥49.50" in page
    assert 'data-testid="preview-total">¥148.50<' in page
    page = hq.get(reverse("admin:promotions_promotion_preview"), {"basket": "NOPE 1", "channel": "web"})
    assert "NOPE" in page.content.decode() and 'data-testid="preview-total"' not in page.content.decode()


def test_pausing_stops_the_promotion_for_the_next_basket(hq, hq_user, store_a, shirt):
    promo = promotion(code="SHIRT2", kind="nth_item", nth=2, percent=D("50"), skus=[shirt])
    assert pricing.sale_price(demand={shirt.id: 2}, channel="pos", store_id=store_a.pk).total == D("148.50")

    response = hq.post(reverse("admin:promotions_promotion_changelist"),
                       {"action": "pause", ACTION_CHECKBOX_NAME: [promo.pk]})

    assert response.status_code == 302
    promo.refresh_from_db()
    assert (promo.status, promo.paused_by) == ("paused", hq_user)
    assert pricing.sale_price(demand={shirt.id: 2}, channel="pos", store_id=store_a.pk).total == D("198.00")
    hq.post(reverse("admin:promotions_promotion_changelist"), {"action": "resume", ACTION_CHECKBOX_NAME: [promo.pk]})
    assert pricing.sale_price(demand={shirt.id: 2}, channel="pos", store_id=store_a.pk).total == D("148.50")


def test_consistency_report_explains_every_difference(hq, store_a, store_b, shirt):
    promotion(code="SHIRT2", kind="nth_item", nth=2, percent=D("50"), skus=[shirt])
    promotion(code="POSONLY", kind="special_price", price=D("89.00"), skus=[shirt], channels=["pos"])
    promotion(code="A-ONLY", kind="threshold_off", steps="100:10", stores=[store_a])

    page = hq.get(reverse("admin:promotions_promotion_consistency")).content.decode()

    assert 'data-testid="flagged">0 rows flagged.' in page
    assert page.count('data-testid="row"') >= 4  # two stores × (at least one basket) × two online channels
    assert "POSONLY runs only in pos" in page
    assert "A-ONLY runs only in named stores" in page
    assert "FLAGGED" not in page


def test_consistency_flags_a_difference_nothing_explains(store_a, shirt, monkeypatch):
    from promotions import engine, selectors

    promotion(code="SHIRT2", kind="nth_item", nth=2, percent=D("50"), skus=[shirt])
    real = engine.promotions_apply

    def drifting(rules, items, ctx):  # a channel priced by something other than the one engine
        return real(rules if ctx.channel == "pos" else [], items, ctx)

    monkeypatch.setattr(engine, "promotions_apply", drifting)
    rows = selectors.price_consistency(baskets=[[(shirt, 2)]], stores=[store_a])
    assert [c.flagged for c in rows[0].online] == [True, True]
    assert "SHIRT2 differs without a reason" in rows[0].online[0].notes[0]


def test_head_office_staff_run_promotions_and_a_store_manager_cannot(store_a, shirt):
    from stores.models import Role
    from stores.services import staff_create

    def login(role, username):
        user = staff_create(username=username, password="pw-12345678", display_name=username, role=role,
                            employee_no=f"E-{username}", stores=[store_a] if role == Role.STORE_MANAGER else []).user
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(user)
        return client

    promo = promotion(code="SHIRT2", kind="nth_item", nth=2, percent=D("50"), skus=[shirt])
    hq, manager = login(Role.HQ_ADMIN, "hq1"), login(Role.STORE_MANAGER, "mgr1")

    listing = hq.get(reverse("admin:promotions_promotion_changelist")).content.decode()
    assert reverse("admin:promotions_promotion_preview") in listing
    assert reverse("admin:promotions_promotion_consistency") in listing
    assert hq.get(reverse("admin:promotions_promotion_preview")).status_code == 200
    assert hq.post(reverse("admin:promotions_promotion_changelist"),
                   {"action": "pause", ACTION_CHECKBOX_NAME: [promo.pk]}).status_code == 302
    promo.refresh_from_db()
    assert promo.status == "paused"
    for path in (reverse("admin:promotions_promotion_changelist"), reverse("admin:promotions_promotion_preview"),
                 reverse("admin:promotions_promotion_consistency")):
        response = manager.get(path)  # not admin staff: sent to the login page
        assert response.status_code == 302 and reverse("admin:login") in response.url, path
