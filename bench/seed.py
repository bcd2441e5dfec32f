"""Seed the benchmark database and write the pgbench scripts of the SQL floor.

Run by bench.run as ``python -m bench.seed OUT_DIR`` with bench settings and the
bench DATABASE_URL.  Writes OUT_DIR/fixture.json (ids the load generator uses),
OUT_DIR/pos_sale.sql (the statements of one POS sale transaction, parametrised
for replay) and OUT_DIR/hot_update.sql (one conditional stock decrement).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from bench import views  # noqa: E402
from catalog.tests.factories import SkuFactory  # noqa: E402
from inventory import services as stock  # noqa: E402
from inventory.models import StockLevel  # noqa: E402
from members.services.members import member_register  # noqa: E402
from orders.services import LineIn, TenderIn  # noqa: E402
from payments import shifts  # noqa: E402
from stores.models import Role, Store, Warehouse  # noqa: E402
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory  # noqa: E402

MEMBERS = 64
SKUS = 40
LINES = 5  # lines per sale
BLOCKS = SKUS // LINES  # client c sells SKUs [blk*5, blk*5+5), blk = c % BLOCKS
PLENTY = 100_000_000
HOT_UNITS = 100
# Ids start high so a captured id is never mistaken for a quantity or a price when the
# statements are parametrised for replay.
ID_START = 1_000_000
ID_STRIDE = 10_000_000
DOC_NUMBER = re.compile(r"([A-Z]{2}\d{6})(\d{7,})")


def _bump_sequences() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'S' AND n.nspname = 'public'")
        # A range of its own for every sequence, so an id also tells its table.
        for k, (name,) in enumerate(sorted(cur.fetchall())):
            cur.execute("SELECT setval(%s, %s)", [name, ID_START + k * ID_STRIDE])


def seed() -> dict:
    _bump_sequences()
    central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="BCW", name="基准总仓")
    store = StoreFactory(code="BS01", name="基准门店")
    skus = [SkuFactory(list_price=Decimal(19 + 10 * (i % 9)) + Decimal("0.90")) for i in range(SKUS)]
    hot = SkuFactory(code="HOT-001", name="爆款", list_price=Decimal("199.00"))
    for wh in (central, store.warehouse):
        stock.stock_receive(warehouse=wh, lines=[(s.id, PLENTY) for s in skus])
    stock.stock_receive(warehouse=store.warehouse, lines=[(hot.id, HOT_UNITS)])
    user = get_user_model().objects.create_user(username="bench-clerk", password="bench-pass-1234")
    StaffFactory(user=user, role=Role.CLERK, store=store, display_name="基准收银")
    shifts.shift_open(store=store, actor=user, opening_float=Decimal("500.00"))
    members = [member_register(phone=f"+86138{i:08d}", channel="pos", store_id=store.pk, name=f"会员{i}").pk
               for i in range(MEMBERS)]
    sku_ids = [s.pk for s in skus]
    levels = list(StockLevel.objects.filter(warehouse=store.warehouse, sku_id__in=sku_ids, bucket="sellable")
                  .order_by("sku_id").values_list("id", flat=True))
    # The replay script computes a client's SKU and level ids by offset: both must be consecutive.
    assert sku_ids == list(range(sku_ids[0], sku_ids[0] + SKUS)), sku_ids
    assert levels == list(range(levels[0], levels[0] + SKUS)), levels
    return {"store_id": store.pk, "store_levels": levels, "lines": LINES, "blocks": BLOCKS, "city_id": store.city_id, "warehouse_id": store.warehouse_id,
            "central_id": central.pk, "members": members, "hot_sku": hot.pk, "hot_units": HOT_UNITS,
            "hot_price": str(hot.list_price),
            "skus": [[s.pk, str(s.list_price)] for s in skus], "actor_id": user.pk}


class _Raw:
    """A replacement parameter rendered verbatim (a pgbench variable or an SQL expression)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __conform__(self, proto):
        return self

    def getquoted(self) -> bytes:
        return self.text.encode()


def _table_max_ids() -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND column_name = 'id'")
        tables = [r[0] for r in cur.fetchall()]
        out = {}
        for t in tables:
            cur.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{t}"')
            out[t] = cur.fetchone()[0]
    return out


def _table_of_insert(sql: str) -> str | None:
    if sql.startswith('INSERT INTO "'):
        return sql.split('"')[1]
    return None


def capture_pos_sale(fx: dict) -> tuple[list[tuple[str, object]], dict]:
    """Run one sale (5 lines, a member, cash + card) and record its statements with their parameters."""
    actor = get_user_model().objects.get(pk=fx["actor_id"])
    store = Store.objects.select_related("warehouse").get(pk=fx["store_id"])
    lines = [LineIn(sku, 1) for sku, _ in fx["skus"][:LINES]]
    total = sum(Decimal(p) for _, p in fx["skus"][:LINES])
    client_uuid = uuid.uuid4()
    tenders = [TenderIn("cash", total - Decimal("50.00")),
               TenderIn("unionpay_card", Decimal("50.00"), f"slip-{client_uuid}")]
    before = _table_max_ids()
    doc_first = _doc_seq() + 1
    statements: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    connection.ensure_connection()
    with connection.execute_wrapper(record):
        result = views._pos_sale(store=store, client_uuid=client_uuid, lines=lines, member_id=fx["members"][0],
                                 tenders=tenders, actor=actor)
    after = _table_max_ids()
    created = {}
    with connection.cursor() as cur:
        for t, top in after.items():
            if top > before.get(t, 0):
                cur.execute(f'SELECT id FROM "{t}" WHERE id > %s ORDER BY id', [before.get(t, 0)])
                created[t] = [r[0] for r in cur.fetchall()]
    return statements, {"number": result.order.number, "uuid": client_uuid, "created": created,
                        "doc_first": doc_first, "doc_last": _doc_seq()}


def _doc_seq() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT last_value FROM o2o_document_number_seq")
        return cur.fetchone()[0]


def pgbench_script(statements, info: dict, fx: dict) -> tuple[str, int]:
    uid = info["uuid"]
    uuid_expr = "(lpad(to_hex(:client_id), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(:r), 12, '0'))"
    # Document numbers (order, payment…) are prefix + date + nextval: each nextval is kept in a
    # variable and the numbers built from it, as number_next does.
    doc_vars: dict[int, str] = {}
    doc_next = iter(range(info["doc_first"], info["doc_last"] + 1))
    member0 = fx["members"][0]
    bound: dict[int, str] = {}  # created id -> pgbench variable
    # Each client sells its own block of SKUs, exactly as bench/load.py does.
    per_client = {fx["skus"][i][0]: f"sku{i}" for i in range(LINES)}
    per_client.update({fx["store_levels"][i]: f"lvl{i}" for i in range(LINES)})
    next_index = {t: 0 for t in info["created"]}
    out = ["-- One POS sale (5 lines, member, cash + card) as bench.views._pos_sale runs it.",
           "-- Captured by bench/seed.py; ids, sale UUID and document number are parametrised.",
           "\\set r random(1, 999999999999)",
           f"\\set member_id {member0} + (:client_id % {len(fx['members'])})",
           f"\\set blk (:client_id % {BLOCKS}) * {LINES}",
           *[f"\\set sku{i} {fx['skus'][0][0] + i} + :blk" for i in range(LINES)],
           *[f"\\set lvl{i} {fx['store_levels'][0] + i} + :blk" for i in range(LINES)],
           "BEGIN;"]

    def sub(value):
        if isinstance(value, uuid.UUID) and value == uid:
            return _Raw(uuid_expr + "::uuid")
        docs = [m for m in DOC_NUMBER.finditer(value) if int(m.group(2)) in doc_vars] if isinstance(
            value, str) else []
        if isinstance(value, str) and (docs or str(uid) in value):
            text = "'" + value.replace("'", "''") + "'"
            for m in docs:
                text = (f"replace({text}, '{m.group(0)}', "
                        f"'{m.group(1)}' || lpad(:{doc_vars[int(m.group(2))]}::text, "
                        f"greatest(7, length(:{doc_vars[int(m.group(2))]}::text)), '0'))")
            if str(uid) in value:
                text = f"replace({text}, '{uid}', {uuid_expr})"
            return _Raw(text)
        if isinstance(value, (list, tuple)):
            return [sub(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool):
            if value in per_client:
                return _Raw(":" + per_client[value])
            if value in bound:
                return _Raw(":" + bound[value])
            if value == member0:
                return _Raw(":member_id")
        return value

    count = 0
    with connection.cursor() as cur:
        for sql, params in statements:
            if params is None:
                text = sql
            else:
                seq = params if isinstance(params, (list, tuple)) else [params]
                text = cur.mogrify(sql, [sub(p) for p in seq]).decode()
            text = " ".join(text.splitlines())
            table = _table_of_insert(sql)
            gset = ""
            if sql.startswith("SELECT nextval('o2o_document_number_seq')"):
                k = next(doc_next)
                doc_vars[k] = f"doc{len(doc_vars)}_v"
                out.append(f"SELECT nextval('o2o_document_number_seq') AS v \\gset doc{len(doc_vars) - 1}_")
                count += 1
                continue
            single = " VALUES (" in text and "), (" not in text and "UNNEST(" not in text
            if table and table in info["created"] and text.rstrip().endswith('"id"') and single:
                ids = info["created"][table]
                k = next_index[table]
                if k < len(ids):
                    var = f"{table[:40]}_{k}_"
                    bound[ids[k]] = var + "id"
                    next_index[table] = k + 1
                    gset = f" \\gset {var}"
            elif table and table in info["created"]:
                first = params[0] if isinstance(params, (list, tuple)) and params else None
                next_index[table] += len(first) if isinstance(first, (list, tuple)) else text.count("), (") + 1
            out.append(text + gset if gset else text + ";")
            count += 1
    out.append("COMMIT;")
    return "\n".join(out) + "\n", count


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fx = seed()
    statements, info = capture_pos_sale(fx)
    script, count = pgbench_script(statements, info, fx)
    (out / "pos_sale.sql").write_text(script)
    (out / "hot_update.sql").write_text(
        "-- A conditional stock decrement on one row: the physical limit of a hot SKU.\n"
        "UPDATE bench_hot SET on_hand = on_hand - 1 WHERE id = 1 AND on_hand >= 1;\n")
    fx["floor_statements"] = count
    (out / "fixture.json").write_text(json.dumps(fx, indent=1))
    print(json.dumps({"seeded": True, "statements_per_sale": count}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
