"""Pilot against control on the dashboard: launched cities' stores against the stores of cities not
launched, before and after the launch date, from the daily roll-ups, checked by hand."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reporting.models import DailyGuideSalesRollup, DailyMemberChannels, DailyO2ORollup, DailySalesRollup
from reporting.rollups import business_today
from reporting.selectors import Scope, pilot_control
from stores.models import Role
from stores.tests.factories import CityFactory, RegionFactory, StaffFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db
D = Decimal
WEB, MINI = 1, 2  # channel bits of DailyMemberChannels are irrelevant here: only "more than one" counts


@pytest.fixture
def rollups():
    """Hangzhou (two stores) launched on day L; Ningbo (one store) not launched.  Days L-2 … L+1:

    sales     h1 L-2 pos 1000 | h2 L-1 pos 500, mini 400 | n1 L-2 pos 800
              h1 L pos 900, web 300 | h2 L+1 pos 600, mini 200 | n1 L+1 pos 700, web 50
    pickups   h2 L-1 2 ordered 1 picked | h1 L 4 ordered 3 picked, 1 returned in a store
              h2 L+1 1 ordered 1 picked | n1 L+1 2 ordered 0 picked, 2 returned in a store
    guides    h1 L 240 | n1 L-2 80
    members   at h1 on L: one in two channels, one in one; at n1 on L+1: one in two channels
    """
    launch = business_today() - timedelta(days=1)
    zj = RegionFactory(code="ZJ")
    hz = CityFactory(code="HZ", name="杭州", region=zj, launched_on=launch)
    nb = CityFactory(code="NB", name="宁波", region=zj)
    h1, h2 = StoreFactory(code="H1", city=hz), StoreFactory(code="H2", city=hz)
    n1 = StoreFactory(code="N1", city=nb)
    now = timezone.now()

    def day(n):
        return launch + timedelta(days=n)

    for store, n, channel, net in [(h1, -2, "pos", "1000"), (h2, -1, "pos", "500"), (h2, -1, "mini_program", "400"),
                                   (n1, -2, "pos", "800"), (h1, 0, "pos", "900"), (h1, 0, "web", "300"),
                                   (h2, 1, "pos", "600"), (h2, 1, "mini_program", "200"), (n1, 1, "pos", "700"),
                                   (n1, 1, "web", "50")]:
        DailySalesRollup.objects.create(day=day(n), store=store, channel=channel, orders=1, units=1, gross=D(net),
                                        net=D(net), refreshed_at=now)
    for store, n, channel, orders, picked, returns in [(h2, -1, "mini_program", 2, 1, 0), (h1, 0, "web", 4, 3, 1),
                                                       (h2, 1, "mini_program", 1, 1, 0), (n1, 1, "web", 2, 0, 2)]:
        DailyO2ORollup.objects.create(day=day(n), store=store, channel=channel, fulfillment="pickup", orders=orders,
                                      picked_up=picked, pickup_seconds=D(3600 * picked), returns=returns)
    guide = StaffFactory(role=Role.GUIDE, store=h1)
    for store, n, sales in [(h1, 0, "240"), (n1, -2, "80")]:
        DailyGuideSalesRollup.objects.create(day=day(n), guide=guide, store=store, orders=1, sales=D(sales))
    for member, store, n, bits in [(1, h1, 0, WEB | MINI), (2, h1, 0, WEB), (3, n1, 1, WEB | MINI)]:
        DailyMemberChannels.objects.create(day=day(n), member_id=member, store=store, channels=bits)
    return {"launch": launch, "start": day(-2), "end": day(1)}


def test_pilot_against_control_equals_the_hand_computation(rollups):
    [hz] = pilot_control(Scope(rollups["start"], rollups["end"], None, None))
    assert (hz["city"], hz["launched_on"]) == ("杭州", rollups["launch"])
    pb, pa, cb, ca = hz["pilot"]["before"], hz["pilot"]["after"], hz["control"]["before"], hz["control"]["after"]
    # pilot before: 1900 net, 400 online → 21.1 %; 1 of 2 pickups; 950.00 per store; no guide sales
    assert (pb["stores"], pb["days"], pb["net"], pb["online_share"], pb["pickup_rate"], pb["returns_elsewhere"],
            pb["omni_members"], pb["sales_per_store"], pb["guide_sales"], pb["guide_share"]) == (
        2, 2, D("1900.00"), D("21.1"), D("50.0"), 0, 0, D("950.00"), D("0.00"), D("0.0"))
    # pilot after: 2000 net, 500 online → 25.0 %; 4 of 5 picked up; 1 returned; 1 of 2 members omni;
    # 1000.00 per store; 240 by guides → 12.0 %
    assert (pa["net"], pa["online_share"], pa["pickup_rate"], pa["returns_elsewhere"], pa["omni_members"],
            pa["omni_share"], pa["sales_per_store"], pa["guide_sales"], pa["guide_share"]) == (
        D("2000.00"), D("25.0"), D("80.0"), 1, 1, D("50.0"), D("1000.00"), D("240.00"), D("12.0"))
    # control before: Ningbo 800, nothing online, no pickups, 80 by guides → 10.0 %
    assert (cb["stores"], cb["net"], cb["online_share"], cb["pickup_rate"], cb["omni_share"], cb["sales_per_store"],
            cb["guide_share"]) == (1, D("800.00"), D("0.0"), None, None, D("800.00"), D("10.0"))
    # control after: 750 net, 50 online → 6.7 %; 0 of 2 picked up; 2 returned; its one member omni
    assert (ca["net"], ca["online_share"], ca["pickup_rate"], ca["returns_elsewhere"], ca["omni_members"],
            ca["omni_share"], ca["sales_per_store"]) == (D("750.00"), D("6.7"), D("0.0"), 2, 1, D("100.0"),
                                                         D("750.00"))


def test_the_dashboard_shows_pilot_against_control(client, rollups):
    client.force_login(UserFactory(username="hq-dash", is_staff=True, is_superuser=True))
    page = client.get("/dashboard/", {"start": rollups["start"].isoformat(), "end": rollups["end"].isoformat()},
                      HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('id="rollout-1"'):]
    assert "21.1%" in table and "25.0%" in table and "6.7%" in table and "¥950.00" in table
