"""Seed the benchmark database and write the pgbench scripts of the SQL floor.

Run by bench.run as ``python -m bench.seed OUT_DIR`` with bench settings and the
bench DATABASE_URL.  Writes OUT_DIR/fixture.json (ids, clerks, barcodes, members and the
partner API key the load generator uses), OUT_DIR/pos_sale.sql (the statements of one
POS sale page's complete request, parametrised for replay) and OUT_DIR/hot_update.sql
(one conditional stock decrement).
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import translation  # noqa: E402

from bench.load import CLIENT_UUID, complete_form  # noqa: E402
from catalog.tests.factories import SkuFactory  # noqa: E402
from inventory import services as stock  # noqa: E402
from inventory.models import StockLevel  # noqa: E402
from members.services.members import member_register  # noqa: E402
from o2o.apiauth import ORDERS_READ, ORDERS_WRITE, partner_key_create  # noqa: E402
from pos.errors import CODE_MESSAGES  # noqa: E402
from payments import shifts  # noqa: E402
from stores.models import Role, Warehouse  # noqa: E402
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory  # noqa: E402

MEMBERS = 64
SKUS = 40
LINES = 5  # lines per sale
BLOCKS = SKUS // LINES  # client c sells SKUs [blk*5, blk*5+5), blk = c % BLOCKS
# One store per load client (the most clients of any point): each client logs in as the clerk of
# its own store, whose register has its own open shift, and sells from that store's stockroom.
STORES = 32
CLERK_PASSWORD = "bench-pass-1234"
PLENTY = 100_000_000
HOT_UNITS = 100
# The hot-SKU burst's POS half: this many clerk sessions of store 0, prepared by the seed (the
# session django.contrib.auth.login writes) so the burst does not wait for 250 password hashes.
HOT_POS_SESSIONS = 250
PARTNER_CHANNEL = "web"
# Ids start high so a captured id is never mistaken for a quantity or a price when the
# statements are parametrised for replay.
ID_START = 1_000_000
ID_STRIDE = 10_000_000
DOC_NUMBER = re.compile(r"([A-Z]{2}\d{6})(\d{7,})")
FLOOR_SESSION = "flr"  # floor session keys: "flr" + the store index, zero-padded to 32 characters


def _bump_sequences() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'S' AND n.nspname = 'public'")
        # A range of its own for every sequence, so an id also tells its table.
        for k, (name,) in enumerate(sorted(cur.fetchall())):
            cur.execute("SELECT setval(%s, %s)", [name, ID_START + k * ID_STRIDE])


def _consecutive(ids: list[int], what: str) -> list[int]:
    # The replay script computes a client's ids by offset from the first: they must be consecutive.
    assert ids == list(range(ids[0], ids[0] + len(ids))), (what, ids)
    return ids


def seed(stores: int = STORES) -> dict:
    _bump_sequences()
    central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="BCW", name="基准总仓")
    shops = [StoreFactory(code=f"BS{k:02d}", name=f"基准门店{k:02d}") for k in range(stores)]
    skus = [SkuFactory(list_price=Decimal(19 + 10 * (i % 9)) + Decimal("0.90")) for i in range(SKUS)]
    hot = SkuFactory(code="HOT-001", name="爆款", list_price=Decimal("199.00"))
    users = [get_user_model().objects.create_user(username=f"bench-clerk-{k:02d}", password=CLERK_PASSWORD)
             for k in range(stores)]
    staff = [StaffFactory(user=u, role=Role.CLERK, store=s, display_name=f"基准收银{k:02d}")
             for k, (u, s) in enumerate(zip(users, shops))]
    shift_ids = [shifts.shift_open(store=s, actor=u, opening_float=Decimal("500.00")).pk
                 for s, u in zip(shops, users)]
    stock.stock_receive(warehouse=central, lines=[(s.id, PLENTY) for s in skus])
    for shop in shops:
        stock.stock_receive(warehouse=shop.warehouse, lines=[(s.id, PLENTY) for s in skus])
    stock.stock_receive(warehouse=shops[0].warehouse, lines=[(hot.id, HOT_UNITS)])
    members = [member_register(phone=f"+86138{i:08d}", channel="pos", store_id=shops[0].pk, name=f"会员{i}")
               for i in range(MEMBERS)]
    sku_ids = _consecutive([s.pk for s in skus], "skus")
    levels = []
    for shop in shops:
        levels += list(StockLevel.objects.filter(warehouse=shop.warehouse, sku_id__in=sku_ids, bucket="sellable")
                       .order_by("sku_id").values_list("id", flat=True))
    _consecutive(levels, "store stock levels")
    _consecutive([s.pk for s in shops], "stores")
    _consecutive([s.warehouse_id for s in shops], "store warehouses")
    _consecutive([u.pk for u in users], "clerks")
    _consecutive([p.pk for p in staff], "staff")
    _consecutive(shift_ids, "shifts")
    _key, raw_key = partner_key_create(name="bench web shop", channel=PARTNER_CHANNEL,
                                       scopes=[ORDERS_READ, ORDERS_WRITE], rate_limit_per_minute=10**9)
    return {"store_id": shops[0].pk, "store_ids": [s.pk for s in shops], "stores": stores,
            "warehouse_ids": [s.warehouse_id for s in shops], "shift_ids": shift_ids,
            "staff_ids": [p.pk for p in staff], "store_levels": levels, "lines": LINES, "blocks": BLOCKS,
            "city_id": shops[0].city_id, "warehouse_id": shops[0].warehouse_id, "central_id": central.pk,
            "members": [m.pk for m in members], "member_phones": [m.phone for m in members],
            "hot_sku": hot.pk, "hot_units": HOT_UNITS, "hot_price": str(hot.list_price), "hot_barcode": hot.barcode,
            "skus": [[s.pk, str(s.list_price)] for s in skus], "barcodes": [s.barcode for s in skus],
            "actor_id": users[0].pk, "clerk_ids": [u.pk for u in users],
            "clerks": [u.username for u in users], "clerk_password": CLERK_PASSWORD,
            "partner_key": raw_key,
            "hot_level": StockLevel.objects.get(warehouse=shops[0].warehouse, sku=hot, bucket="sellable").pk}


def _session_for(user, store_id: int, key: str | None = None) -> str:
    """A signed-in POS session of ``user`` at ``store_id`` (what the login page and store pick write)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from pos.views import SEEN_KEY, STORE_KEY

    # The configured session store (SESSION_BACKEND), where the servers under test look it up.
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[STORE_KEY] = store_id
    session[SEEN_KEY] = int(time.time())
    if key is None:
        session.create()
    else:
        session._session_key = key
        session.save(must_create=True)
    return session.session_key


def hot_sessions(fx: dict, count: int = HOT_POS_SESSIONS) -> list[str]:
    user = get_user_model().objects.get(pk=fx["actor_id"])
    return [_session_for(user, fx["store_id"]) for _ in range(count)]


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


def pos_basket_fill(client: Client, fx: dict, barcodes: list[str], phone: str) -> str:
    """Scan ``barcodes`` and set the member as the sale page does (htmx); returns the sale's client UUID."""
    page = None
    for code in barcodes:
        page = client.post("/pos/sale/scan/", {"code": code}, HTTP_HX_REQUEST="true")
        assert page.status_code == 200, page.content[-500:]
    page = client.post("/pos/sale/member/", {"phone": phone}, HTTP_HX_REQUEST="true")
    assert page.status_code == 200, page.content[-500:]
    return CLIENT_UUID.search(page.content.decode()).group(1)


def pos_client(fx: dict, store_index: int = 0) -> Client:
    """A test client signed in as the clerk of store ``store_index``."""
    user = get_user_model().objects.get(pk=fx["clerk_ids"][store_index])
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[settings.SESSION_COOKIE_NAME] = _session_for(user, fx["store_ids"][store_index])
    return client


def capture_pos_sale(fx: dict) -> tuple[list[tuple[str, object]], dict]:
    """Run one sale through the POS pages (5 scans, the member, then complete with cash + card) and
    record the statements of the complete request, transaction boundaries included."""
    client = pos_client(fx)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    client_uuid = pos_basket_fill(client, fx, fx["barcodes"][:LINES], fx["member_phones"][0])
    total = sum(Decimal(p) for _, p in fx["skus"][:LINES])
    before = _table_max_ids()
    doc_first = _doc_seq() + 1
    statements: list[tuple[str, object]] = []
    in_tx = {"open": False}

    def record(execute, sql, params, many, context):
        if not in_tx["open"] and not connection.get_autocommit():
            statements.append(("BEGIN", None))
            in_tx["open"] = True
        statements.append((sql, params))
        return execute(sql, params, many, context)

    real_commit = connection.commit

    def commit():
        if in_tx["open"]:
            statements.append(("COMMIT", None))
            in_tx["open"] = False
        return real_commit()

    connection.ensure_connection()
    connection.commit = commit
    try:
        with connection.execute_wrapper(record):
            resp = client.post("/pos/sale/complete/", complete_form(client_uuid, total), HTTP_HX_REQUEST="true")
    finally:
        del connection.commit
    assert resp.status_code == 200 and resp.get("HX-Redirect", "").startswith("/pos/receipts/"), resp.content[-800:]
    assert not in_tx["open"], "the complete request left a transaction open"
    after = _table_max_ids()
    created = {}
    with connection.cursor() as cur:
        for t, top in after.items():
            if top > before.get(t, 0):
                cur.execute(f'SELECT id FROM "{t}" WHERE id > %s ORDER BY id', [before.get(t, 0)])
                created[t] = [r[0] for r in cur.fetchall()]
    # Each replay client reads and writes its own store's session row, as each load client does
    # (when sessions live in the database: SESSION_BACKEND=db).
    if any("django_session" in sql for sql, _params in statements):
        users = get_user_model().objects.in_bulk(fx["clerk_ids"])
        for k, (store_id, user_id) in enumerate(zip(fx["store_ids"], fx["clerk_ids"])):
            _session_for(users[user_id], store_id, key=f"{FLOOR_SESSION}{k:0{32 - len(FLOOR_SESSION)}d}")
    return statements, {"number": resp["HX-Redirect"].rstrip("/").rsplit("/", 1)[1],
                        "uuid": uuid.UUID(client_uuid), "created": created, "session_key": session_key,
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
    # Each client works at its own store (clerk, shift, stockroom, session) and sells its own block
    # of SKUs to its own member, exactly as bench/load.py does.
    per_client = {fx["skus"][i][0]: f"sku{i}" for i in range(LINES)}
    per_client.update({fx["store_levels"][i]: f"lvl{i}" for i in range(LINES)})
    per_store = {"store_id": fx["store_ids"][0], "warehouse_id": fx["warehouse_ids"][0],
                 "shift_id": fx["shift_ids"][0], "clerk_id": fx["clerk_ids"][0], "staff_id": fx["staff_ids"][0]}
    per_client.update({value: name for name, value in per_store.items()})
    per_client[member0] = "member_id"
    session_key = info["session_key"]
    session_expr = f"('{FLOOR_SESSION}' || lpad(:k::text, {32 - len(FLOOR_SESSION)}, '0'))"
    next_index = {t: 0 for t in info["created"]}
    out = ["-- One POS sale: the complete request of the POS sale page (basket of 5 lines, a member,",
           "-- cash + card), statement by statement, with its transaction boundaries.",
           "-- Captured by bench/seed.py; ids, session, sale UUID and document numbers are parametrised.",
           "\\set r random(1, 999999999999)",
           f"\\set k :client_id % {fx['stores']}",
           *[f"\\set {name} {value} + :k" for name, value in per_store.items()],
           f"\\set member_id {member0} + (:client_id % {len(fx['members'])})",
           f"\\set blk (:client_id % {BLOCKS}) * {LINES}",
           *[f"\\set sku{i} {fx['skus'][0][0] + i} + :blk" for i in range(LINES)],
           *[f"\\set lvl{i} {fx['store_levels'][0] + i} + :k * {SKUS} + :blk" for i in range(LINES)]]

    def sub(value):
        if isinstance(value, uuid.UUID) and value == uid:
            return _Raw(uuid_expr + "::uuid")
        if value == session_key:
            return _Raw(session_expr)
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
        return value

    count = 0
    with connection.cursor() as cur:
        for sql, params in statements:
            if sql in ("BEGIN", "COMMIT"):
                out.append(sql + ";")
                continue
            if params is None:
                text = sql
            else:
                seq = params if isinstance(params, (list, tuple)) else [params]
                text = cur.mogrify(sql, [sub(p) for p in seq]).decode()
            text = " ".join(text.splitlines())
            table = _table_of_insert(sql)
            gset = ""
            if sql.startswith("SELECT nextval('o2o_document_number_seq')"):
                # One number, or several drawn in one statement (``numbers_next``): one row of columns.
                drawn = params[0] if "generate_series" in sql else 1
                prefix = f"doc{len(doc_vars)}_"
                for j in range(drawn):
                    doc_vars[next(doc_next)] = f"{prefix}v{j or ''}"
                columns = ", ".join(f"nextval('o2o_document_number_seq') AS v{j or ''}" for j in range(drawn))
                out.append(f"SELECT {columns} \\gset {prefix}")
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
    fx["hot_sessions"] = hot_sessions(fx)
    with translation.override(settings.LANGUAGE_CODE):
        # How the sale page words a sale that lost the race for the last units (the hot-SKU count).
        fx["out_of_stock_text"] = str(CODE_MESSAGES["insufficient_stock"]).split("%(")[0].strip()
    (out / "fixture.json").write_text(json.dumps(fx, indent=1))
    print(json.dumps({"seeded": True, "statements_per_sale": count}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
