"""Settlement guards and the indexes its windowed reads need.

Closed settlement rows are immutable whatever code path tries (triggers), and a split
rule that has split lines keeps its terms.  The indexes let each store step read only
its own day: orders by (store, paid time), returns by time, cancellations by time,
refunds by completion.  They are built CONCURRENTLY (this migration is not atomic) so
adding them to a live order book does not block writes.
"""

from django.db import migrations

GUARDS_SQL = """
CREATE FUNCTION orders_settlement_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are part of a settlement and cannot change', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE FUNCTION orders_settlement_refuse_closed_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION '% row % is closed and cannot change', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION orders_split_rule_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.first_used_on IS NOT NULL THEN
        IF TG_OP = 'DELETE' OR (NEW.channel, NEW.fulfillment, NEW.store_id, NEW.guide_condition,
                                NEW.ecommerce_percent, NEW.guide_store_percent)
                IS DISTINCT FROM (OLD.channel, OLD.fulfillment, OLD.store_id, OLD.guide_condition,
                                  OLD.ecommerce_percent, OLD.guide_store_percent) THEN
            RAISE EXCEPTION 'split rule % has split lines; its terms cannot change', OLD.id
                USING ERRCODE = 'restrict_violation';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_splitline_immutable BEFORE UPDATE OR DELETE ON orders_splitline
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_change();
CREATE TRIGGER orders_tenderline_immutable BEFORE UPDATE OR DELETE ON orders_tenderline
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_change();
CREATE TRIGGER orders_statementtender_immutable BEFORE UPDATE OR DELETE ON orders_statementtender
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_change();
CREATE TRIGGER orders_wallettransfer_immutable BEFORE UPDATE OR DELETE ON orders_wallettransfer
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_change();
CREATE TRIGGER orders_partyshare_immutable BEFORE UPDATE OR DELETE ON orders_partyshare
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_change();
CREATE TRIGGER orders_settlementstatement_closed BEFORE UPDATE OR DELETE ON orders_settlementstatement
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_closed_change();
CREATE TRIGGER orders_storesettlement_closed BEFORE UPDATE OR DELETE ON orders_storesettlement
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_closed_change();
CREATE TRIGGER orders_settlementday_closed BEFORE UPDATE OR DELETE ON orders_settlementday
    FOR EACH ROW EXECUTE FUNCTION orders_settlement_refuse_closed_change();
CREATE TRIGGER orders_splitrule_guard BEFORE UPDATE OR DELETE ON orders_splitrule
    FOR EACH ROW EXECUTE FUNCTION orders_split_rule_guard();
"""

GUARDS_REVERSE_SQL = """
DROP TRIGGER orders_splitrule_guard ON orders_splitrule;
DROP TRIGGER orders_settlementday_closed ON orders_settlementday;
DROP TRIGGER orders_storesettlement_closed ON orders_storesettlement;
DROP TRIGGER orders_settlementstatement_closed ON orders_settlementstatement;
DROP TRIGGER orders_partyshare_immutable ON orders_partyshare;
DROP TRIGGER orders_wallettransfer_immutable ON orders_wallettransfer;
DROP TRIGGER orders_statementtender_immutable ON orders_statementtender;
DROP TRIGGER orders_tenderline_immutable ON orders_tenderline;
DROP TRIGGER orders_splitline_immutable ON orders_splitline;
DROP FUNCTION orders_split_rule_guard();
DROP FUNCTION orders_settlement_refuse_closed_change();
DROP FUNCTION orders_settlement_refuse_change();
"""

INDEXES = [
    ("settlement_order_store_paid_idx", "orders_order (store_id, paid_at) WHERE paid_at IS NOT NULL"),
    ("settlement_return_created_idx", "orders_return (created_at)"),
    ("settlement_order_cancelled_idx", "orders_orderevent (created_at) WHERE to_status = 'cancelled'"),
    ("settlement_refund_completed_idx", "payments_refund (completed_at) WHERE status = 'succeeded'"),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0005_settlement"),
        ("payments", "0004_member_tenders"),
    ]

    operations = [
        migrations.RunSQL(f"BEGIN; {GUARDS_SQL} COMMIT;", f"BEGIN; {GUARDS_REVERSE_SQL} COMMIT;"),
        *[migrations.RunSQL(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}",
                            f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
          for name, target in INDEXES],
    ]
