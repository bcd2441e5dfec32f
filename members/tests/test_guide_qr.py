"""A guide's QR code: a URL with a scene, printed from the admin, opened by the customer's phone."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from members.models import GuideQrScan
from members.services import guides as svc
from stores.models import Role
from stores.tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def guide(store_a):
    return StaffFactory(role=Role.GUIDE, store=store_a, display_name="刘洋", guide_code="HZ001-G1")


def test_the_qr_is_a_url_whose_scene_names_the_guide(guide):
    url = svc.guide_qr_url(guide, base_url="https://shop.example.com/")

    assert url == "https://shop.example.com/g/HZ001-G1"
    assert svc.guide_scene(guide) == "HZ001-G1"
    for scanned in (url, "scene=HZ001-G1", "HZ001-G1", "o2o:guide:HZ001-G1", url + "/"):
        assert svc.guide_code_normalize(scanned) == "HZ001-G1"
    assert svc.guide_code_normalize("https://elsewhere.example.com/x/HZ001-G1") == ""


def test_opening_the_qr_records_the_scan_and_tells_the_customer_what_to_do(client, guide, store_a):
    page = client.get("/g/HZ001-G1", HTTP_USER_AGENT="MicroMessenger/8.0")
    unknown = client.get("/g/NOBODY")

    assert page.status_code == 200
    html = page.content.decode()
    assert "刘洋" in html and store_a.name in html and "HZ001-G1" in html
    scan = GuideQrScan.objects.get()
    assert scan.guide_id == guide.pk and scan.user_agent == "MicroMessenger/8.0"
    assert unknown.status_code == 404 and GuideQrScan.objects.count() == 1


def test_a_guide_who_left_has_a_dead_code(client, guide):
    guide.is_active = False
    guide.save(update_fields=["is_active"])

    assert client.get("/g/HZ001-G1").status_code == 404
    assert GuideQrScan.objects.count() == 0


def test_head_office_prints_the_qr_codes_from_the_admin(client, hq_user, guide, store_a):
    clerk = StaffFactory(role=Role.CLERK, store=store_a)
    other = StaffFactory(role=Role.GUIDE, store=store_a, display_name="陈静", guide_code="HZ001-G2")
    client.force_login(hq_user)
    changelist = reverse("admin:members_guide_changelist")

    listed = client.get(changelist).content.decode()
    printed = client.post(changelist, {"action": "print_qr_codes", "_selected_action": [guide.pk, other.pk]})
    one = client.get(reverse("admin:members_guide_qr", args=[guide.pk]))
    not_a_guide = client.get(reverse("admin:members_guide_qr", args=[clerk.user.staff.pk]))

    assert "HZ001-G1" in listed and "HZ001-G2" in listed and clerk.display_name not in listed
    assert printed.status_code == 200
    html = printed.content.decode()
    cards = re.findall(r'<div class="guide-qr">\s*<div><svg', html)
    assert len(cards) == 2
    assert "http://testserver/g/HZ001-G1" in html and "http://testserver/g/HZ001-G2" in html
    assert one.status_code == 200
    assert len(re.findall(r'<div class="guide-qr">\s*<div><svg', one.content.decode())) == 1
    assert not_a_guide.status_code == 404


def test_the_printed_code_opens_the_landing_page(client, hq_user, guide, settings):
    settings.O2O_PUBLIC_URL = "https://shop.example.com"
    client.force_login(hq_user)

    html = client.get(reverse("admin:members_guide_qr", args=[guide.pk])).content.decode()
    url = re.search(r'<div class="url">([^<]+)</div>', html).group(1)

    assert url == "https://shop.example.com/g/HZ001-G1"
    assert client.get(url.replace("https://shop.example.com", "")).status_code == 200
