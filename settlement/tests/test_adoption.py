"""HQ adopts a simulated draft rule set in the admin as the rules in force from a business day: never
from a settled day, the rules that settled days used keep their terms, and who did it is recorded."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from settlement import services
from settlement.models import RuleSetAdoption, SplitLine, SplitRule
from settlement.tests.test_split_terms import draft_set, month  # noqa: F401 (the fixture)
from stores.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
D = Decimal


def adopt(client, **data):
    return client.post(reverse("admin:settlement_splitrule_changelist"), {
        "action": "adopt", helpers.ACTION_CHECKBOX_NAME: list(SplitRule.objects.values_list("pk", flat=True)),
        "apply": "1", **data}, HTTP_ACCEPT_LANGUAGE="en")


def test_the_admin_adopts_a_draft_from_the_first_unsettled_day_and_records_who(client, month):  # noqa: F811
    draft_set()
    hq = UserFactory(username="hq-adopt", is_staff=True, is_superuser=True)
    client.force_login(hq)
    in_force = {r.pk: (r.ecommerce_percent, r.valid_until) for r in SplitRule.objects.filter(draft="")}
    lines = list(SplitLine.objects.order_by("pk").values())

    # the form: it names the first day not yet settled
    page = client.post(
        reverse("admin:settlement_splitrule_changelist"),
        {"action": "adopt", helpers.ACTION_CHECKBOX_NAME: [SplitRule.objects.first().pk]},
        HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert (month["end"] + timedelta(days=1)).isoformat() in page.content.decode()

    # a settled day is refused: a form error, nothing changes
    refused = adopt(client, draft="2027", effective_from=month["end"].isoformat())
    assert refused.status_code == 200 and "already settled" in refused.content.decode()
    assert not RuleSetAdoption.objects.exists()
    assert {r.pk: (r.ecommerce_percent, r.valid_until) for r in SplitRule.objects.filter(draft="")} == in_force

    first = month["end"] + timedelta(days=1)
    done = adopt(client, draft="2027", effective_from=first.isoformat())
    assert done.status_code == 302

    adoption = RuleSetAdoption.objects.get()
    assert (adoption.draft, adoption.effective_from, adoption.adopted_by) == ("2027", first, hq)
    assert sorted(adoption.rules_ended) == sorted(in_force)
    # the old rules end on the last settled day, their terms untouched; settled lines still name them
    for rule in SplitRule.objects.filter(pk__in=in_force):
        assert (rule.ecommerce_percent, rule.valid_until) == (in_force[rule.pk][0], month["end"])
    assert list(SplitLine.objects.order_by("pk").values()) == lines
    assert {r.pk for r in services.rules_in_force(month["end"])} == set(in_force)
    # from the day given, the draft's rules are the rules in force (the draft itself stays a draft)
    adopted = services.rules_in_force(first)
    assert {r.pk for r in adopted} == set(adoption.rules_adopted)
    assert [(r.name, r.ecommerce_percent, r.product_line, r.territory, r.credit_trade_area, r.valid_from,
             r.draft) for r in adopted] == [
        ("草案 大货 商圈", D("12.00"), "bulk", "trade_area", True, first, ""),
        ("草案 大货", D("12.00"), "bulk", "", False, first, "")]
    assert SplitRule.objects.filter(draft="2027").count() == 2

    listing = client.get(reverse("admin:settlement_rulesetadoption_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert listing.status_code == 200 and "hq-adopt" in listing.content.decode()


def test_a_draft_without_rules_cannot_be_adopted(client, month):  # noqa: F811
    SplitRule.objects.create(name="草案 停用", draft="empty", is_active=False)
    client.force_login(UserFactory(username="hq-adopt2", is_staff=True, is_superuser=True))
    response = adopt(client, draft="empty", effective_from=(month["end"] + timedelta(days=3)).isoformat())
    assert response.status_code == 200 and "no active rules" in response.content.decode()
    assert not RuleSetAdoption.objects.exists()
