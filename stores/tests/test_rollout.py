"""Roll-out as configuration: switches inherited store ← city ← region ← global default, the
admin showing where a value comes from, and copying a pilot city's configuration."""

from datetime import date

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import translation

from o2o.errors import Conflict, InvalidInput
from stores import services
from stores.models import Capability, CapabilitySwitch, City, RolloutChange
from stores.selectors import capabilities_effective, capability_effective, capability_enabled, \
    capability_stores_enabled
from stores.tests.factories import CityFactory, RegionFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db
PICKUP, RETURNS = Capability.PICKUP, Capability.RETURN_ANYWHERE


@pytest.fixture
def places():
    """Zhejiang with Hangzhou (two stores) and Ningbo (one store); Jiangsu with Nanjing."""
    zj, js = RegionFactory(code="ZJ", name="浙江"), RegionFactory(code="JS", name="江苏")
    hz = CityFactory(code="HZ", name="杭州", region=zj)
    nb = CityFactory(code="NB", name="宁波", region=zj)
    nj = CityFactory(code="NJ", name="南京", region=js)
    return {"zj": zj, "js": js, "hz": hz, "nb": nb, "nj": nj,
            "hz1": StoreFactory(code="HZ001", city=hz), "hz2": StoreFactory(code="HZ002", city=hz),
            "nb1": StoreFactory(code="NB001", city=nb), "nj1": StoreFactory(code="NJ001", city=nj)}


@pytest.fixture
def hq():
    return UserFactory(username="hq-rollout", is_staff=True, is_superuser=True)


def test_without_any_switch_everything_is_on(places):
    effective = capabilities_effective(store=places["hz1"])
    assert [e.capability for e in effective] == Capability.values
    assert all(e.enabled and e.level == "builtin" for e in effective)


def test_each_level_overrides_the_one_above(places, hq):
    hz1, hz2, nb1, nj1 = places["hz1"], places["hz2"], places["nb1"], places["nj1"]
    services.capability_set(capability=PICKUP, enabled=False, actor=hq)  # global default: off
    assert not any(capability_enabled(PICKUP, store=s) for s in (hz1, hz2, nb1, nj1))
    assert capability_effective(PICKUP, store=nj1).level == "default"

    services.capability_set(capability=PICKUP, enabled=True, region=places["zj"], actor=hq)
    assert [capability_enabled(PICKUP, store=s) for s in (hz1, hz2, nb1, nj1)] == [True, True, True, False]
    with translation.override("en"):
        assert capability_effective(PICKUP, store=nb1).source == "region 浙江"

    services.capability_set(capability=PICKUP, enabled=False, city=places["hz"], actor=hq)
    assert [capability_enabled(PICKUP, store=s) for s in (hz1, hz2, nb1, nj1)] == [False, False, True, False]
    assert capability_effective(PICKUP, city=places["hz"]).level == "city"

    services.capability_set(capability=PICKUP, enabled=True, store=hz2, actor=hq)
    assert [capability_enabled(PICKUP, store=s) for s in (hz1, hz2, nb1, nj1)] == [False, True, True, False]
    assert capability_effective(PICKUP, store=hz2).level == "store"
    assert capability_stores_enabled(PICKUP, [hz1.pk, hz2.pk, nb1.pk, nj1.pk]) == {hz2.pk, nb1.pk}
    # other capabilities are untouched
    assert capability_enabled(RETURNS, store=hz1)

    # clearing the city's switch lets the region decide again
    services.capability_set(capability=PICKUP, enabled=None, city=places["hz"], actor=hq)
    assert capability_enabled(PICKUP, store=hz1)
    kinds = list(RolloutChange.objects.order_by("id").values_list("kind", "before", "after", "actor"))
    assert kinds == [("switch", "", "off", hq.pk), ("switch", "", "on", hq.pk), ("switch", "", "off", hq.pk),
                     ("switch", "", "on", hq.pk), ("clear", "off", "", hq.pk)]


def test_a_switch_names_one_place_and_a_known_capability(places):
    with pytest.raises(InvalidInput) as err:
        services.capability_set(capability="teleport", enabled=True)
    assert err.value.code == "unknown_capability"
    with pytest.raises(InvalidInput) as err:
        services.capability_set(capability=PICKUP, enabled=True, city=places["hz"], store=places["hz1"])
    assert err.value.code == "one_place_only"
    assert not CapabilitySwitch.objects.exists() and not RolloutChange.objects.exists()


# --- copying a pilot city ----------------------------------------------------------------------


def pilot(places, hq):
    """Hangzhou is the pilot: everything off by default, on in Hangzhou except split rules."""
    for capability in Capability.values:
        services.capability_set(capability=capability, enabled=False, actor=hq)
        if capability != Capability.SPLIT_RULES:
            services.capability_set(capability=capability, enabled=True, city=places["hz"], actor=hq)
    services.capability_set(capability=RETURNS, enabled=True, city=places["nb"], actor=hq)  # Ningbo has one already


def keys(steps):
    return [step.key for step in steps]


def test_dry_run_lists_exactly_what_apply_does_and_a_second_apply_does_nothing(places, hq):
    pilot(places, hq)
    before_rows = CapabilitySwitch.objects.count()
    targets = [places["nb"], places["nj"]]
    launch = date(2026, 12, 1)

    dry = services.rollout_copy(source=places["hz"], targets=targets, launch_on=launch, apply=False, actor=hq)
    assert CapabilitySwitch.objects.count() == before_rows  # nothing written
    # Ningbo: 6 switches (returns anywhere already on) + launch; Nanjing: 7 switches + launch
    assert len(dry) == 6 + 1 + 7 + 1
    assert ("NB", "split_rules", "", "off") in [(s.city.code, s.capability, s.before, s.after) for s in dry]

    applied = services.rollout_copy(source=places["hz"], targets=targets, launch_on=launch, apply=True, actor=hq,
                                    expect=services.rollout_digest(dry))
    assert keys(applied) == keys(dry)
    for city in targets:
        assert [(e.capability, e.enabled, e.level) for e in capabilities_effective(city=city)] == \
            [(e.capability, e.enabled, "city") for e in capabilities_effective(city=places["hz"])]
        city.refresh_from_db()
        assert city.launched_on == launch
    audit = RolloutChange.objects.filter(source__contains="HZ")
    assert audit.count() == len(dry) and set(audit.values_list("actor", flat=True)) == {hq.pk}
    assert len(set(audit.values_list("batch", flat=True))) == 1

    rows = CapabilitySwitch.objects.count()
    again = services.rollout_copy(source=places["hz"], targets=targets, launch_on=launch, apply=True, actor=hq)
    assert again == [] and CapabilitySwitch.objects.count() == rows
    assert RolloutChange.objects.filter(source__contains="HZ").count() == len(dry)


def test_apply_is_all_or_nothing(places, hq, monkeypatch):
    pilot(places, hq)
    snapshot = list(CapabilitySwitch.objects.order_by("pk").values_list("capability", "city", "enabled"))
    written = []

    def failing_audit(**kwargs):
        written.append(kwargs)
        if len(written) == 9:  # in the middle of the second city
            raise RuntimeError("disk full")
        return RolloutChange.objects.create(batch=kwargs["batch"], kind=kwargs["kind"])

    monkeypatch.setattr(services, "rollout_change", failing_audit)
    with pytest.raises(RuntimeError):
        services.rollout_copy(source=places["hz"], targets=[places["nb"], places["nj"]], launch_on=date(2026, 12, 1),
                              apply=True, actor=hq)
    assert list(CapabilitySwitch.objects.order_by("pk").values_list("capability", "city", "enabled")) == snapshot
    assert City.objects.filter(launched_on__isnull=False).count() == 0


def test_apply_refuses_when_the_changes_are_not_the_previewed_ones(places, hq):
    pilot(places, hq)
    dry = services.rollout_copy(source=places["hz"], targets=[places["nj"]], apply=False)
    services.capability_set(capability=PICKUP, enabled=False, city=places["hz"], actor=hq)  # pilot changed since
    with pytest.raises(Conflict) as err:
        services.rollout_copy(source=places["hz"], targets=[places["nj"]], apply=True,
                              expect=services.rollout_digest(dry))
    assert err.value.code == "rollout_changed"
    assert not CapabilitySwitch.objects.filter(city=places["nj"]).exists()


def test_the_pilot_alone_is_no_target(places):
    with pytest.raises(InvalidInput) as err:
        services.rollout_copy(source=places["hz"], targets=[places["hz"]], apply=True)
    assert err.value.code == "no_targets"


# --- the admin ---------------------------------------------------------------------------------


def test_store_page_shows_each_effective_value_and_where_it_comes_from(client, places, hq):
    services.capability_set(capability=PICKUP, enabled=False, city=places["hz"], actor=hq)
    services.capability_set(capability=RETURNS, enabled=False, region=places["zj"], actor=hq)
    client.force_login(hq)
    page = client.get(reverse("admin:stores_store_change", args=[places["hz1"].pk]),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    table = page[page.index("o2o-capabilities"):]
    assert "<td>Pickup in store</td><td>off</td><td>city 杭州</td>" in table
    assert "<td>Return anywhere</td><td>off</td><td>region 浙江</td>" in table
    assert "<td>Ship from store</td><td>on</td><td>built-in default</td>" in table


def test_switch_added_in_the_admin_goes_through_the_service(client, places, hq):
    client.force_login(hq)
    response = client.post(reverse("admin:stores_capabilityswitch_add"), {
        "capability": "pickup", "city": places["nb"].pk, "enabled": ""})
    assert response.status_code == 302, response.content
    switch = CapabilitySwitch.objects.get()
    assert (switch.city, switch.enabled, switch.updated_by) == (places["nb"], False, hq)
    assert RolloutChange.objects.get().actor == hq
    assert not capability_enabled(PICKUP, store=places["nb1"])


def test_admin_copy_action_previews_then_applies(client, places, hq):
    pilot(places, hq)
    client.force_login(hq)
    url = reverse("admin:stores_city_changelist")
    base = {"action": "copy_pilot", helpers.ACTION_CHECKBOX_NAME: [places["nb"].pk, places["nj"].pk]}

    form = client.post(url, base)
    assert form.status_code == 200 and b"plan_digest" not in form.content
    preview = client.post(url, {**base, "apply": "1", "source": places["hz"].pk, "launch_on": "2026-12-01"},
                          HTTP_ACCEPT_LANGUAGE="en")
    assert preview.status_code == 200
    listed = preview.context["objects"]
    assert len(listed) == 15 and "宁波: Coupon scopes (off, global default) → on" in listed
    assert not CapabilitySwitch.objects.filter(city=places["nj"]).exists()
    digest = preview.context["hidden"][-1]

    done = client.post(url, {**base, "apply": "1", "source": places["hz"].pk, "launch_on": "2026-12-01",
                             "plan_digest": digest[1]})
    assert done.status_code == 302
    assert CapabilitySwitch.objects.filter(city=places["nj"]).count() == 7
    assert RolloutChange.objects.filter(actor=hq, city=places["nj"], kind="launch").exists()


def test_admin_region_action_copies_to_the_province(client, places, hq):
    pilot(places, hq)
    client.force_login(hq)
    url = reverse("admin:stores_region_changelist")
    base = {"action": "copy_pilot", helpers.ACTION_CHECKBOX_NAME: [places["zj"].pk], "apply": "1",
            "source": places["hz"].pk}
    preview = client.post(url, base)
    assert len(preview.context["objects"]) == 6  # Ningbo only: Hangzhou is the pilot, Nanjing is in Jiangsu
    client.post(url, {**base, "plan_digest": preview.context["hidden"][-1][1]})
    assert CapabilitySwitch.objects.filter(city=places["nb"]).count() == 7
    assert not CapabilitySwitch.objects.filter(city=places["nj"]).exists()


def test_admin_sets_a_launch_date_with_an_audit_row(client, places, hq):
    client.force_login(hq)
    response = client.post(reverse("admin:stores_store_changelist"), {
        "action": "set_launch_date", helpers.ACTION_CHECKBOX_NAME: [places["hz1"].pk], "apply": "1",
        "launched_on": "2026-11-11"})
    assert response.status_code == 302
    places["hz1"].refresh_from_db()
    assert places["hz1"].launched_on == date(2026, 11, 11)
    assert RolloutChange.objects.get(kind="launch").after == "2026-11-11"
