import pytest

from payments.exceptions import UnknownTender
from payments.models import Tender
from payments.tenders import TenderType, tender_for, tender_type, tenders_registered


def test_every_tender_has_a_registered_type():
    assert tenders_registered() == sorted(Tender.values)
    assert all(tender_for(t).tender == t for t in Tender.values)


def test_a_tender_cannot_be_registered_twice():
    class AnotherCash(TenderType):
        tender = Tender.CASH

    with pytest.raises(ValueError):
        tender_type(AnotherCash)
    assert type(tender_for(Tender.CASH)).__name__ == "CashTender"


def test_unknown_tender():
    with pytest.raises(UnknownTender) as exc:
        tender_for("gift_card")
    assert exc.value.as_dict()["code"] == "unknown_tender"


def test_wallet_and_points_are_tenders_that_need_a_member():
    assert {"wallet", "points"} <= set(tenders_registered())
    assert tender_for("wallet").captures_on_create and tender_for("points").captures_on_create
