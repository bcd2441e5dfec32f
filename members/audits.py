"""Invariant 3 of DESIGN.md for points and the wallet: cached balances == Σ entries, lots agree with
their consumption / allocations, nothing negative except the recorded points debt."""

from django.db import connection

from o2o.audit import audit_check


def _rows(sql: str, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


# --- points ----------------------------------------------------------------------------------


@audit_check("3", "member points balances equal the sum of their entries")
def points_balances_match_entries():
    for member_id, a, f, d, ea, ef, ed in _rows(
        "SELECT m.id, m.points_available, m.points_frozen, m.points_debt, "
        "COALESCE(e.a, 0), COALESCE(e.f, 0), COALESCE(e.d, 0) FROM members_member m "
        "LEFT JOIN (SELECT member_id, SUM(available_delta) a, SUM(frozen_delta) f, SUM(debt_delta) d "
        "FROM members_pointsentry GROUP BY member_id) e ON e.member_id = m.id "
        "WHERE m.points_available <> COALESCE(e.a, 0) OR m.points_frozen <> COALESCE(e.f, 0) "
        "OR m.points_debt <> COALESCE(e.d, 0) ORDER BY m.id"
    ):
        yield (f"member {member_id}: points available/frozen/debt {a}/{f}/{d} != entries {ea}/{ef}/{ed}")


@audit_check("3", "points lot remaining equals its amount less its consumption")
def points_lots_match_consumption():
    for lot_id, amount, remaining, consumed in _rows(
        "SELECT l.id, l.amount, l.remaining, COALESCE(c.n, 0) FROM members_pointslot l "
        "LEFT JOIN (SELECT lot_id, SUM(points) n FROM members_pointsconsumption GROUP BY lot_id) c "
        "ON c.lot_id = l.id WHERE l.remaining <> l.amount - COALESCE(c.n, 0) ORDER BY l.id"
    ):
        yield f"points lot {lot_id}: remaining {remaining} != amount {amount} - consumed {consumed}"


@audit_check("3", "available and frozen points equal the remaining of available and frozen lots")
def points_balances_match_lots():
    for member_id, a, f, la, lf in _rows(
        "SELECT m.id, m.points_available, m.points_frozen, COALESCE(l.a, 0), COALESCE(l.f, 0) "
        "FROM members_member m LEFT JOIN (SELECT member_id, "
        "SUM(remaining) FILTER (WHERE status = 'available') a, SUM(remaining) FILTER (WHERE status = 'frozen') f "
        "FROM members_pointslot GROUP BY member_id) l ON l.member_id = m.id "
        "WHERE m.points_available <> COALESCE(l.a, 0) OR m.points_frozen <> COALESCE(l.f, 0) ORDER BY m.id"
    ):
        yield f"member {member_id}: points available/frozen {a}/{f} != lots {la}/{lf}"


@audit_check("3", "points entries that take from lots list exactly what they took")
def points_entries_match_consumption():
    for entry_id, kind, delta, consumed in _rows(
        "SELECT e.id, e.kind, -(e.available_delta + e.frozen_delta), COALESCE(c.n, 0) FROM members_pointsentry e "
        "LEFT JOIN (SELECT entry_id, SUM(points) n FROM members_pointsconsumption GROUP BY entry_id) c "
        "ON c.entry_id = e.id "
        "WHERE (e.kind IN ('redeem', 'reverse', 'expire', 'debt_settle') "
        "       OR (e.kind = 'adjust' AND e.available_delta < 0)) "
        "AND -(e.available_delta + e.frozen_delta) <> COALESCE(c.n, 0) ORDER BY e.id"
    ):
        yield f"points entry {entry_id} ({kind}): took {delta} but lists {consumed} from lots"


@audit_check("3", "points never negative; debt only with nothing available")
def points_never_negative():
    for member_id, a, f, d in _rows(
        "SELECT id, points_available, points_frozen, points_debt FROM members_member "
        "WHERE points_available < 0 OR points_frozen < 0 OR points_debt < 0 "
        "OR (points_debt > 0 AND points_available > 0) ORDER BY id"
    ):
        yield f"member {member_id}: points available/frozen/debt {a}/{f}/{d}"
    for lot_id, remaining in _rows("SELECT id, remaining FROM members_pointslot WHERE remaining < 0"):
        yield f"points lot {lot_id}: remaining {remaining}"


# --- wallet ----------------------------------------------------------------------------------


@audit_check("3", "member wallet balances equal the sum of their entries")
def wallet_balances_match_entries():
    for member_id, p, b, ep, eb in _rows(
        "SELECT m.id, m.wallet_principal, m.wallet_bonus, COALESCE(e.p, 0), COALESCE(e.b, 0) "
        "FROM members_member m LEFT JOIN (SELECT member_id, SUM(principal_delta) p, SUM(bonus_delta) b "
        "FROM members_walletentry GROUP BY member_id) e ON e.member_id = m.id "
        "WHERE m.wallet_principal <> COALESCE(e.p, 0) OR m.wallet_bonus <> COALESCE(e.b, 0) ORDER BY m.id"
    ):
        yield f"member {member_id}: wallet principal/bonus {p}/{b} != entries {ep}/{eb}"


@audit_check("3", "recharge lot remaining equals the recharge less its allocations")
def wallet_recharges_match_allocations():
    for lot_id, p, b, rp, rb, ap, ab in _rows(
        "SELECT r.id, r.principal, r.bonus, r.principal_remaining, r.bonus_remaining, "
        "COALESCE(a.p, 0), COALESCE(a.b, 0) FROM members_walletrecharge r "
        "LEFT JOIN (SELECT recharge_id, SUM(principal) p, SUM(bonus) b FROM members_walletspendallocation "
        "GROUP BY recharge_id) a ON a.recharge_id = r.id "
        "WHERE r.principal_remaining <> r.principal - COALESCE(a.p, 0) "
        "OR r.bonus_remaining <> r.bonus - COALESCE(a.b, 0) ORDER BY r.id"
    ):
        yield (f"recharge {lot_id}: left {rp}/{rb} != {p}/{b} less allocations {ap}/{ab}")


@audit_check("3", "wallet balances equal the remaining of the member's recharges")
def wallet_balances_match_recharges():
    for member_id, p, b, rp, rb in _rows(
        "SELECT m.id, m.wallet_principal, m.wallet_bonus, COALESCE(r.p, 0), COALESCE(r.b, 0) "
        "FROM members_member m LEFT JOIN (SELECT member_id, SUM(principal_remaining) p, SUM(bonus_remaining) b "
        "FROM members_walletrecharge GROUP BY member_id) r ON r.member_id = m.id "
        "WHERE m.wallet_principal <> COALESCE(r.p, 0) OR m.wallet_bonus <> COALESCE(r.b, 0) ORDER BY m.id"
    ):
        yield f"member {member_id}: wallet principal/bonus {p}/{b} != recharges left {rp}/{rb}"


@audit_check("3", "wallet entries that move recharge lots list exactly what they moved")
def wallet_entries_match_allocations():
    for entry_id, kind, p, b, ap, ab in _rows(
        "SELECT e.id, e.kind, e.principal_delta, e.bonus_delta, COALESCE(a.p, 0), COALESCE(a.b, 0) "
        "FROM members_walletentry e LEFT JOIN (SELECT entry_id, SUM(principal) p, SUM(bonus) b "
        "FROM members_walletspendallocation GROUP BY entry_id) a ON a.entry_id = e.id "
        "WHERE e.kind IN ('spend', 'refund_spend', 'recharge_refund') "
        "AND (e.principal_delta <> -COALESCE(a.p, 0) OR e.bonus_delta <> -COALESCE(a.b, 0)) ORDER BY e.id"
    ):
        yield f"wallet entry {entry_id} ({kind}): {p}/{b} but allocations {ap}/{ab}"


@audit_check("3", "wallet balances never negative")
def wallet_never_negative():
    for member_id, p, b in _rows("SELECT id, wallet_principal, wallet_bonus FROM members_member "
                                 "WHERE wallet_principal < 0 OR wallet_bonus < 0 ORDER BY id"):
        yield f"member {member_id}: wallet principal/bonus {p}/{b}"
    for lot_id, p, b in _rows("SELECT id, principal_remaining, bonus_remaining FROM members_walletrecharge "
                              "WHERE principal_remaining < 0 OR bonus_remaining < 0 ORDER BY id"):
        yield f"recharge {lot_id}: left {p}/{b}"


# --- coupons and guide commission --------------------------------------------------------------


@audit_check("3", "guide commission balances equal the sum of their entries")
def commission_balances_match_entries():
    for guide_id, f, r, ef, er in _rows(
        "SELECT COALESCE(b.guide_id, e.guide_id), COALESCE(b.frozen, 0), COALESCE(b.released, 0), "
        "COALESCE(e.f, 0), COALESCE(e.r, 0) FROM members_guidecommissionbalance b "
        "FULL JOIN (SELECT guide_id, SUM(frozen_delta) f, SUM(released_delta) r FROM members_commissionentry "
        "GROUP BY guide_id) e ON e.guide_id = b.guide_id "
        "WHERE COALESCE(b.frozen, 0) <> COALESCE(e.f, 0) OR COALESCE(b.released, 0) <> COALESCE(e.r, 0) "
        "ORDER BY 1"
    ):
        yield f"guide {guide_id}: commission frozen/released {f}/{r} != entries {ef}/{er}"


@audit_check("3", "guide commission never negative; no accrual released twice or taken below zero")
def commission_accruals_consistent():
    for guide_id, f, r in _rows("SELECT guide_id, frozen, released FROM members_guidecommissionbalance "
                                "WHERE frozen < 0 OR released < 0 ORDER BY guide_id"):
        yield f"guide {guide_id}: commission frozen/released {f}/{r}"
    for accrual_id, frozen_left, released_left, releases in _rows(
        "SELECT a.id, a.frozen_delta + COALESCE(SUM(c.frozen_delta), 0), COALESCE(SUM(c.released_delta), 0), "
        "COUNT(c.id) FILTER (WHERE c.kind = 'release') FROM members_commissionentry a "
        "LEFT JOIN members_commissionentry c ON c.accrual_id = a.id WHERE a.kind = 'accrual' GROUP BY a.id "
        "HAVING a.frozen_delta + COALESCE(SUM(c.frozen_delta), 0) < 0 OR COALESCE(SUM(c.released_delta), 0) < 0 "
        "OR COUNT(c.id) FILTER (WHERE c.kind = 'release') > 1 "
        "OR (COUNT(c.id) FILTER (WHERE c.kind = 'release') = 1 "
        "    AND a.frozen_delta + COALESCE(SUM(c.frozen_delta), 0) <> 0) ORDER BY a.id"
    ):
        yield (f"commission accrual {accrual_id}: frozen left {frozen_left}, released left {released_left}, "
               f"{releases} release(s)")


@audit_check("5", "every redeemed coupon has exactly one active redemption, and no other coupon has one")
def coupon_redemptions_match_status():
    for coupon_id, code, status, active in _rows(
        "SELECT c.id, c.code, c.status, COUNT(r.id) FROM members_issuedcoupon c "
        "LEFT JOIN members_couponredemption r ON r.coupon_id = c.id AND r.restored_at IS NULL "
        "GROUP BY c.id HAVING (c.status = 'redeemed' AND COUNT(r.id) <> 1) "
        "OR (c.status <> 'redeemed' AND COUNT(r.id) > 0) ORDER BY c.id"
    ):
        yield f"coupon {coupon_id} ({code}) is {status} with {active} active redemption(s)"


@audit_check("5", "coupons issued per template equal its counter and stay within its total limit")
def coupon_templates_within_limits():
    for template_id, code, counter, limit, issued, redeemed in _rows(
        "SELECT t.id, t.code, t.issued_count, t.total_limit, COUNT(c.id), "
        "COUNT(c.id) FILTER (WHERE c.status = 'redeemed') FROM members_coupontemplate t "
        "LEFT JOIN members_issuedcoupon c ON c.template_id = t.id GROUP BY t.id "
        "HAVING t.issued_count <> COUNT(c.id) OR (t.total_limit IS NOT NULL AND COUNT(c.id) > t.total_limit) "
        "ORDER BY t.id"
    ):
        yield (f"coupon template {template_id} ({code}): counter {counter}, issued {issued}, "
               f"redeemed {redeemed}, total limit {limit}")


# --- personal data erasure ------------------------------------------------------------------


@audit_check("PIPL", "an erased member keeps no phone number, name or outside identity")
def erased_members_hold_no_personal_data():
    for member_id, phone, name, identities in _rows(
        "SELECT m.id, m.phone, m.name, (SELECT COUNT(*) FROM members_memberidentity i WHERE i.member_id = m.id) "
        "FROM members_member m WHERE m.erased_at IS NOT NULL AND (LEFT(m.phone, 2) <> '+0' OR m.name <> '' "
        "OR EXISTS (SELECT 1 FROM members_memberidentity i WHERE i.member_id = m.id)) ORDER BY m.id"
    ):
        yield f"member {member_id}: erased but holds phone {phone!r}, name {name!r}, {identities} identities"
