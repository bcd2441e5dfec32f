"""Members over the API by scope (PIPL): a key reads only members related to it, sees phone and name
masked without members:pii, and every unmasked read is logged; PIPL export and erasure in the admin."""

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.urls import reverse

from members.audits import erased_members_hold_no_personal_data
from members.models import IdentityKind, Member, PersonalDataAccess
from members.services import members
from o2o.apiauth import MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, ORDERS_WRITE
from orders.models import Order
from tests.api.conftest import bearer, idem, place

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members/"


@pytest.fixture
def masked_key(make_key):
    key, raw = make_key(name="mini program, no pii",
                        scopes=[MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, ORDERS_WRITE])
    return key, bearer(raw)


def test_a_key_reads_only_members_related_to_its_channel(partner, masked_key, stocked, store_a):
    key, client = partner
    stranger = members.member_register(phone="13900139000", channel="pos")
    registered = members.member_register(phone="13800138001", channel="mini_program")
    web = members.member_register(phone="13800138002", channel="web",
                                  identities=[(IdentityKind.PARTNER, "C-1", key.channel)])
    buyer = members.member_register(phone="13800138003", channel="pos")
    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member={"id": buyer.pk})
    assert placed.status_code == 201, placed.content

    seen = {m.pk: client.get(f"{MEMBERS}{m.pk}/").status_code for m in (stranger, registered, web, buyer)}
    by_phone = client.get(f"{MEMBERS}lookup/", {"phone": "13900139000"})
    coupons = client.get(f"{MEMBERS}{stranger.pk}/coupons/")
    points = client.get(f"{MEMBERS}{stranger.pk}/points/")

    assert seen == {stranger.pk: 404, registered.pk: 200, web.pk: 200, buyer.pk: 200}
    assert by_phone.status_code == 404 and by_phone.json()["code"] == "member_not_found"
    assert coupons.status_code == points.status_code == 404


def test_another_channels_key_does_not_see_them(other_partner):
    _key, web_shop = other_partner
    mini = members.member_register(phone="13800138001", channel="mini_program")
    web = members.member_register(phone="13800138002", channel="web")

    assert web_shop.get(f"{MEMBERS}{mini.pk}/").status_code == 404
    assert web_shop.get(f"{MEMBERS}{web.pk}/").status_code == 200


def test_phone_and_name_are_masked_without_members_pii(masked_key):
    _key, client = masked_key
    member = members.member_register(phone="13800138000", channel="mini_program", name="李雷雷",
                                     identities=[(IdentityKind.WECHAT_UNIONID, "uXYZ123", "")])

    body = client.get(f"{MEMBERS}{member.pk}/").json()
    registered = client.post(MEMBERS, {"phone": "13700137000", "name": "韩梅梅"}, format="json", **idem())

    assert body["phone"] == "+86138****8000" and body["name"] == "李**"
    assert [i["value"] for i in body["identities"]] == ["uXY***"]
    assert registered.status_code == 201 and registered.json()["phone"] == "+86137****7000"
    assert not PersonalDataAccess.objects.exists()


def test_every_unmasked_read_is_logged(partner):
    key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program", name="李雷")

    detail = client.get(f"{MEMBERS}{member.pk}/").json()
    client.get(f"{MEMBERS}lookup/", {"phone": "13800138000"})

    assert detail["phone"] == "+8613800138000" and detail["name"] == "李雷"
    logged = list(PersonalDataAccess.objects.order_by("id"))
    assert [(row.member_id, row.path) for row in logged] == [
        (member.pk, f"GET {MEMBERS}{member.pk}/"), (member.pk, f"GET {MEMBERS}lookup/")]
    assert all(key.prefix in row.reader for row in logged)


def test_pipl_export_and_erasure_in_the_admin_keep_the_ledgers(admin_client, partner, stocked, store_a):
    _key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program", name="李雷",
                                     identities=[(IdentityKind.WECHAT_UNIONID, "uX", "")])
    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member={"id": member.pk},
                   customer_name="李雷", customer_phone="+8613800138000")
    assert placed.status_code == 201, placed.content
    url = reverse("admin:members_member_changelist")

    exported = admin_client.post(url, {"action": "export_personal_data", "_selected_action": [member.pk]})
    data = json.loads(exported.content)
    asked = admin_client.post(url, {"action": "erase_personal_data", "_selected_action": [member.pk]})
    unconfirmed = admin_client.post(url, {"action": "erase_personal_data", "_selected_action": [member.pk],
                                          "apply": "1"})
    erased = admin_client.post(url, {"action": "erase_personal_data", "_selected_action": [member.pk],
                                     "apply": "1", "confirm": "on"})

    assert exported.status_code == 200 and exported["Content-Disposition"].startswith("attachment")
    assert data[0]["member"]["phone"] == "+8613800138000"
    assert data[0]["identities"][0]["value"] == "uX"
    assert [o["number"] for o in data[0]["orders"]] == [placed.json()["number"]]
    assert asked.status_code == unconfirmed.status_code == 200  # the confirmation page, nothing erased yet
    assert erased.status_code == 302
    member.refresh_from_db()
    assert member.erased_at is not None and member.name == "" and member.phone.startswith("+0")
    assert not member.identities.exists()
    order = Order.objects.get(pk=placed.json()["id"])
    assert (order.customer_name, order.customer_phone) == ("", "")
    assert str(order.total) == placed.json()["total"]
    assert set(PersonalDataAccess.objects.values_list("fields", flat=True)) == {"export", "erasure"}
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)  # raises CommandError on any violation
    assert "all ledgers consistent" in out.getvalue()


def test_the_erasure_audit_sees_personal_data_left_behind(db):
    member = members.member_register(phone="13800138000", channel="pos", name="李雷")
    members_erased = Member.objects.filter(pk=member.pk)
    members_erased.update(erased_at="2026-12-01T10:00:00+08:00")

    problems = list(erased_members_hold_no_personal_data())

    assert len(problems) == 1 and f"member {member.pk}" in problems[0]
    members_erased.update(phone=f"+0{uuid.uuid4().int % 10**12:012d}", name="")
    assert list(erased_members_hold_no_personal_data()) == []
