"""Demo data for a pilot city: 杭州 (浙江) with a central warehouse, stores, a catalog,
opening stock, replenishment rules, a few live promotions and one login per staff role.

Safe to run again: every row is looked up by its natural key first, the catalog
is only topped up to ``--skus``, and opening stock is received once per
warehouse×SKU (found by the ``DEMO-OPENING`` move reference).

``--history-days N`` (default 28) adds N days of trading before today through the
real order services — POS sales, online pickup orders paid and handed over, online
orders shipped from central, some returns in stores — then moves their timestamps
back to the day they stand for and refreshes the dashboard roll-up.  The history is
made once (found by its ``DEMO-H-`` external ids).

Demo logins (all with the password ``o2o-demo-2026``):
  admin     superuser
  hq        HQ admin
  regional  regional manager, 浙江
  manager   store manager, 杭州西湖店
  clerk     clerk, 杭州西湖店
  clerk2    clerk, 杭州滨江店 (when there are two stores or more)
  guide     shop assistant (guide), 杭州西湖店, guide code G-HZ001-01
The store manager's approval PIN at the POS is 2580.

Then the programme head office would set up (points settings and rules, commission rules, recharge
packages, coupon templates) and a showcase on top of the history: a demo member 王芳 (13800138000)
with available and frozen points, wallet money and coupons, a coupon campaign to every member,
customers bound to the guide with commission frozen, released and clawed back, and online orders
waiting for pickup, for a return and for shipping at the stores — all through the services.
"""

from __future__ import annotations

import random
import re
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from stdnum import ean
from tqdm import tqdm

from catalog.models import Brand, Category, Product, Sku
from promotions.models import Promotion
from inventory.models import MoveReason, ReplenishmentProposal, ReplenishmentRule, StockMove
from inventory.services import replenishment_propose, stock_receive
from reporting.demo import (
    MANAGER_PIN,
    SHOWCASE_NAME,
    SHOWCASE_PHONE,
    history_create,
    programme_create,
    showcase_create,
)
from stores.models import Capability, City, Region, Role, StaffProfile, Store, Warehouse
from stores.roles import roles_sync
from stores.services import capability_set, launch_date_set, staff_create

DEMO_PASSWORD = "o2o-demo-2026"
OPENING_REFERENCE = "DEMO-OPENING"
PRODUCT_PREFIX = "DM-P"
# GS1 China range (690–699); the rest of the body is product number, colour and size,
# so one SKU code always gets the same barcode whatever the seed.
BARCODE_PREFIX = "6937"
MAX_PRODUCTS = 9999

CENTRAL = ("HZ-CW01", "杭州总仓", "余杭区仓前街道龙潭路 8 号物流园 3 号库")
STORES = [
    ("HZ001", "杭州西湖店", "西湖区文三路 478 号华星时代广场 1F", "0571-8801 2301"),
    ("HZ002", "杭州滨江店", "滨江区江南大道 228 号星光大道 2F", "0571-8801 2302"),
    ("HZ003", "杭州武林店", "拱墅区延安路 530 号武林银泰 B1", "0571-8801 2303"),
    ("HZ004", "杭州湖滨店", "上城区东坡路 7 号湖滨银泰 in77 C 区", "0571-8801 2304"),
    ("HZ005", "杭州钱江新城店", "上城区富春路 701 号万象城 L2", "0571-8801 2305"),
    ("HZ006", "杭州萧山店", "萧山区市心中路 819 号银隆百货 1F", "0571-8801 2306"),
    ("HZ007", "杭州未来科技城店", "余杭区文一西路 1500 号 L1", "0571-8801 2307"),
    ("HZ008", "杭州下沙店", "钱塘区金沙大道 560 号龙湖天街 2F", "0571-8801 2308"),
    ("HZ009", "杭州临平店", "临平区迎宾路 355 号银泰城 1F", "0571-8801 2309"),
    ("HZ010", "杭州城西银泰店", "拱墅区丰潭路 380 号城西银泰城 L1", "0571-8801 2310"),
]

COLOURS = [("BK", "黑色"), ("WH", "白色"), ("GY", "麻灰"), ("NV", "藏青"), ("KH", "卡其"), ("RD", "酒红"),
           ("OW", "米白"), ("GN", "墨绿"), ("BL", "雾霾蓝"), ("PK", "樱花粉"), ("BR", "焦糖棕")]
TOP_SIZES = ["S", "M", "L", "XL", "XXL"]
WAIST_SIZES = ["28", "29", "30", "31", "32", "33", "34"]
SHOE_SIZES = ["36", "37", "38", "39", "40", "41", "42", "43", "44"]
ONE_SIZE = ["均码"]
SIZE_CODES = {"均码": "OS", "105cm": "105", "115cm": "115"}


@dataclass(frozen=True)
class Leaf:
    code: str
    name: str
    stems: tuple[str, ...]
    sizes: tuple[str, ...]
    prices: tuple[int, ...]


def _leaf(code, name, stems, sizes, prices):
    return Leaf(code, name, tuple(stems), tuple(sizes), tuple(prices))


# (code, name, children); a Leaf is a category that holds products.
CATEGORY_TREE = [
    ("apparel", "服装", [
        ("tops", "上装", [
            _leaf("tshirts", "T恤", ["圆领短袖T恤", "V领短袖T恤", "长袖T恤", "Polo衫"], TOP_SIZES, [59, 79, 99, 129]),
            _leaf("shirts", "衬衫", ["牛津纺衬衫", "法兰绒格子衬衫", "亚麻衬衫", "免烫商务衬衫"], TOP_SIZES,
                  [149, 199, 239, 299]),
            _leaf("hoodies", "卫衣", ["连帽卫衣", "圆领卫衣", "拉链开衫卫衣"], TOP_SIZES, [169, 199, 259]),
            _leaf("jackets", "外套", ["立领夹克", "中长款风衣", "轻薄羽绒服", "牛仔外套", "三合一冲锋衣"], TOP_SIZES,
                  [399, 499, 699, 899]),
        ]),
        ("bottoms", "下装", [
            _leaf("jeans", "牛仔裤", ["直筒牛仔裤", "锥形牛仔裤", "阔腿牛仔裤"], WAIST_SIZES, [199, 249, 299]),
            _leaf("trousers", "休闲裤", ["九分休闲裤", "工装裤", "抽绳运动裤", "羊毛西裤"], WAIST_SIZES,
                  [159, 199, 269, 359]),
            _leaf("shorts", "短裤", ["五分短裤", "速干运动短裤", "工装短裤"], WAIST_SIZES, [79, 99, 129]),
        ]),
        _leaf("dresses", "连衣裙", ["碎花连衣裙", "针织连衣裙", "衬衫裙", "吊带裙"], ["S", "M", "L"],
              [229, 299, 359, 459]),
    ]),
    ("footwear", "鞋靴", [
        _leaf("sneakers", "运动鞋", ["缓震跑步鞋", "低帮板鞋", "复古老爹鞋"], SHOE_SIZES, [299, 399, 499, 599]),
        _leaf("casual-shoes", "休闲鞋", ["乐福鞋", "帆布鞋", "一脚蹬懒人鞋"], SHOE_SIZES, [199, 259, 329]),
        _leaf("boots", "靴子", ["切尔西靴", "马丁靴", "雪地靴"], SHOE_SIZES, [399, 499, 599]),
    ]),
    ("accessories", "配饰", [
        _leaf("bags", "包袋", ["帆布托特包", "通勤双肩包", "迷你斜挎包", "运动腰包"], ONE_SIZE, [99, 199, 299, 399]),
        _leaf("hats", "帽子", ["棒球帽", "渔夫帽", "针织毛线帽"], ONE_SIZE, [59, 79, 99]),
        _leaf("scarves", "围巾", ["羊毛围巾", "真丝方巾"], ONE_SIZE, [129, 199, 299]),
        _leaf("socks", "袜子", ["中筒袜三双装", "隐形船袜五双装"], ONE_SIZE, [29, 39, 49]),
        _leaf("belts", "腰带", ["头层牛皮腰带", "帆布编织腰带"], ["105cm", "115cm"], [99, 159, 229]),
    ]),
]

ADJECTIVES = ["纯棉", "重磅", "宽松", "修身", "基础款", "印花", "条纹", "复古", "轻薄", "加厚", "速干", "亚麻混纺",
              "弹力", "落肩", "简约", "经典"]
BRANDS = [("chumian", "初棉"), ("shanxing", "山行"), ("shiguang", "拾光")]

STAFF = [
    # username, role, display name, employee no, store index, guide code
    ("hq", Role.HQ_ADMIN, "陈静", "DM0001", None, None),
    ("regional", Role.REGIONAL_MANAGER, "王磊", "DM0002", None, None),
    ("manager", Role.STORE_MANAGER, "李娜", "DM0003", 0, None),
    ("clerk", Role.CLERK, "张伟", "DM0004", 0, None),
    ("clerk2", Role.CLERK, "赵敏", "DM0005", 1, None),
    ("guide", Role.GUIDE, "刘洋", "DM0006", 0, "G-HZ001-01"),
]


def barcode_for(product_no: int, colour_index: int, size_index: int) -> str:
    body = f"{BARCODE_PREFIX}{product_no:04d}{colour_index:02d}{size_index:02d}"
    return body + ean.calc_check_digit(body)


def _leaves(tree, parent_path=""):
    for node in tree:
        if isinstance(node, Leaf):
            yield node, f"{parent_path}/{node.code}".lstrip("/")
        else:
            yield from _leaves(node[2], f"{parent_path}/{node[0]}".lstrip("/"))


class Command(BaseCommand):
    help = (f"Create demo data for a pilot city (杭州): warehouses, stores, catalog, opening stock and "
            f"one login per role (password {DEMO_PASSWORD}). Safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--stores", type=int, default=8, help="number of stores (default 8)")
        parser.add_argument("--skus", type=int, default=500, help="number of demo SKUs (default 500)")
        parser.add_argument("--seed", type=int, default=2026, help="random seed for names, prices and stock")
        parser.add_argument("--history-days", type=int, default=28,
                            help="days of past orders to create through the order services (default 28; 0: none)")
        parser.add_argument("--if-empty", action="store_true",
                            help="load nothing when the database already has stores (the demo's first run)")

    def handle(self, *args, stores: int, skus: int, seed: int, history_days: int = 28, if_empty: bool = False,
               **options):
        if if_empty and Store.objects.exists():
            self.stdout.write("demo data found: not loading it again (`python manage.py seed_demo` tops it up; "
                              "the logins are listed in README.md)")
            return
        if stores < 1 or skus < 1:
            raise CommandError("--stores and --skus must be at least 1")
        if history_days < 0:
            raise CommandError("--history-days must not be negative")
        self.seed = seed
        self.history_days = history_days
        started = time.monotonic()
        # History before the rules: today's replenishment proposals see the stock the history sold.
        # The programme (points, commission and coupon rules) before the history, so that its sales
        # earn points and commission; the showcase after it, on top of the weeks of trading.
        steps = ["roles", "locations", "categories", "catalog", "stock", "staff", "programme", "history",
                 "showcase", "rules", "promotions"]
        with tqdm(total=len(steps), desc="seed_demo", unit="step", file=sys.stderr, disable=None) as bar:
            with transaction.atomic():
                summary = {}
                for step in steps:
                    bar.set_postfix_str(step)
                    summary[step] = getattr(self, f"seed_{step}")(stores=stores, skus=skus)
                    bar.update(1)
        self.report(summary, time.monotonic() - started)

    # --- steps -------------------------------------------------------------------------------

    def seed_roles(self, **_):
        return f"{len(roles_sync())} groups"

    def seed_locations(self, *, stores: int, **_):
        region, _ = Region.objects.get_or_create(code="ZJ", defaults={"name": "浙江"})
        city, _ = City.objects.get_or_create(code="HZ", defaults={"name": "杭州", "region": region})
        code, name, address = CENTRAL
        self.central, _ = Warehouse.objects.get_or_create(
            code=code,
            defaults={"name": name, "kind": Warehouse.Kind.CENTRAL, "city": city, "address": address})
        self.stores = []
        created = 0
        for index in range(stores):
            code, name, address, phone = STORES[index] if index < len(STORES) else (
                f"HZ{index + 1:03d}", f"杭州{index + 1}号店", f"杭州市{index + 1}号商业街 1F",
                f"0571-8801 {2300 + index + 1}")
            store = Store.objects.filter(code=code).select_related("warehouse").first()
            if store is None:
                warehouse, _ = Warehouse.objects.get_or_create(
                    code=f"{code}-W",
                    defaults={"name": f"{name}仓", "kind": Warehouse.Kind.STORE, "city": city,
                              "address": address})
                store = Store.objects.create(code=code, name=name, city=city, address=address, phone=phone,
                                             warehouse=warehouse)
                created += 1
            self.stores.append(store)
        self.region = region
        self.seed_rollout(city)
        return f"{len(self.stores)} stores ({created} new)"

    def seed_rollout(self, pilot: City) -> None:
        """Hangzhou is the launched pilot; Ningbo, in the same province, is not launched yet: every
        O2O capability is off by default and on in Hangzhou (copy it to Ningbo from the city admin)."""
        City.objects.get_or_create(code="NB", defaults={"name": "宁波", "region": pilot.region})
        if pilot.launched_on is None:
            launch_date_set(city=pilot, launched_on=timezone.localdate() - timedelta(days=14))
        for capability in Capability.values:
            capability_set(capability=capability, enabled=False)
            capability_set(capability=capability, enabled=True, city=pilot)

    def seed_categories(self, **_):
        self.leaf_categories = {}
        created = 0

        def walk(nodes, parent):
            nonlocal created
            for node in nodes:
                code, name = (node.code, node.name) if isinstance(node, Leaf) else node[:2]
                path = f"{parent.path}/{code}" if parent else code
                category, was_created = Category.objects.get_or_create(
                    code=code, defaults={"name": name, "parent": parent, "path": path})
                created += was_created
                if isinstance(node, Leaf):
                    self.leaf_categories[node.code] = category
                else:
                    walk(node[2], category)

        walk(CATEGORY_TREE, None)
        self.brands = [Brand.objects.get_or_create(code=code, defaults={"name": name})[0]
                       for code, name in BRANDS]
        return f"{created} new categories"

    def seed_catalog(self, *, skus: int, **_):
        """Top the demo catalog up to ``skus`` SKUs, product by product (bulk inserts)."""
        existing = Sku.objects.filter(code__startswith=PRODUCT_PREFIX).count()
        need = skus - existing
        if need > 0:
            last = Product.objects.filter(code__startswith=PRODUCT_PREFIX).aggregate(m=Max("code"))["m"]
            number = int(re.sub(r"\D", "", last)) if last else 0
            leaves = list(_leaves(CATEGORY_TREE))
            products, variants = [], []
            while need > 0:
                number += 1
                if number > MAX_PRODUCTS:
                    raise CommandError(f"at most {MAX_PRODUCTS} demo products")
                product, rows = self._product(number, leaves[(number - 1) % len(leaves)][0])
                rows = rows[:need]
                need -= len(rows)
                products.append(product)
                variants.append(rows)
            Product.objects.bulk_create(products)
            Sku.objects.bulk_create([Sku(product=product, **row)
                                     for product, rows in zip(products, variants) for row in rows])
        self.skus = list(Sku.objects.filter(code__startswith=PRODUCT_PREFIX).order_by("code")
                         .only("id", "code", "list_price"))
        return f"{len(self.skus)} SKUs ({max(0, skus - existing)} new)"

    def _product(self, number: int, leaf: Leaf):
        rng = random.Random(f"{self.seed}:product:{number}")
        code = f"{PRODUCT_PREFIX}{number:04d}"
        name = f"{rng.choice(ADJECTIVES)}{rng.choice(leaf.stems)}"
        product = Product(code=code, name=name, category=self.leaf_categories[leaf.code],
                          brand=rng.choice(self.brands), description=f"{name}，{leaf.name}系列。")
        price = Decimal(rng.choice(leaf.prices)).quantize(Decimal("0.01"))
        cost = (price * Decimal("0.38")).quantize(Decimal("0.01"))
        colour_indexes = sorted(rng.sample(range(len(COLOURS)), k=rng.randint(2, 3)))
        rows = []
        for ci in colour_indexes:
            colour_code, colour = COLOURS[ci]
            for si, size in enumerate(leaf.sizes):
                rows.append({
                    "code": f"{code}-{colour_code}-{SIZE_CODES.get(size, size)}",
                    "barcode": barcode_for(number, ci, si),
                    "name": f"{name} {colour} {size}",
                    "color": colour, "size": size, "list_price": price, "cost_price": cost,
                })
        return product, rows

    def seed_stock(self, **_):
        """Opening stock, once per warehouse×SKU: plenty at central, a few of most SKUs in each store."""
        received = 0
        targets = [(self.central, 20, 200, 1.0)] + [(s.warehouse, 1, 12, 0.7) for s in self.stores]
        for warehouse, low, high, share in tqdm(targets, desc="opening stock", unit="wh", file=sys.stderr,
                                                leave=False, disable=None):
            done = set(StockMove.objects.filter(reference=OPENING_REFERENCE, warehouse=warehouse)
                       .values_list("sku_id", flat=True))
            lines = []
            for sku in self.skus:
                if sku.id in done:
                    continue
                rng = random.Random(f"{self.seed}:stock:{warehouse.code}:{sku.code}")
                if rng.random() < share:
                    lines.append((sku.id, rng.randint(low, high)))
            if lines:
                stock_receive(warehouse=warehouse, lines=lines, reason=MoveReason.OPENING,
                              reference=OPENING_REFERENCE, note="demo opening stock")
                received += len(lines)
        return f"{received} opening lines"

    def seed_rules(self, **_):
        """Min/max rules for about one in eight store SKUs, then today's proposals."""
        rules = [
            ReplenishmentRule(warehouse=store.warehouse, sku=sku, min_qty=3, max_qty=10)
            for store in self.stores for sku in self.skus
            if zlib.crc32(f"{store.code}:{sku.code}".encode()) % 8 == 0
        ]
        before = ReplenishmentRule.objects.count(), ReplenishmentProposal.objects.count()
        ReplenishmentRule.objects.bulk_create(rules, ignore_conflicts=True)
        replenishment_propose()
        new_rules = ReplenishmentRule.objects.count() - before[0]
        new_proposals = ReplenishmentProposal.objects.count() - before[1]
        return f"{len(rules)} rules ({new_rules} new), {new_proposals} new proposals for today"

    def seed_promotions(self, **_):
        """A few promotions live for a month from today, in every store and online: the clerk's first
        sale shows them (T-shirts second at half price, a special price on the first demo product,
        满300减30 / 满600减80 or 满800享9折, whichever saves more).  Found by code: made once."""
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        window = {"valid_from": today, "valid_until": today + timedelta(days=30),
                  "channels": ["pos", "web", "mini_program"]}
        first = [s for s in self.skus if s.code.startswith(f"{PRODUCT_PREFIX}0001-")]
        offers = [
            ("DEMO-TEE2", {"name": "T恤第二件半价", "kind": "nth_item", "nth": 2, "percent": Decimal("50"),
                           "priority": 10}, {"categories": [c for c in [self.leaf_categories.get("tshirts")] if c]}),
            ("DEMO-SPECIAL", {"name": "新品限时特价", "kind": "special_price", "bearer": "store",
                              "price": (first[0].list_price * Decimal("0.8")).quantize(Decimal("0.01"))
                              if first else Decimal("0.00")}, {"skus": first}),
            ("DEMO-M300", {"name": "满300减30，满600减80", "kind": "threshold_off", "steps": "300:30, 600:80",
                           "exclusive_group": "全场", "bearer": "ecommerce"}, {}),
            ("DEMO-Z800", {"name": "满800享9折", "kind": "threshold_percent", "threshold": Decimal("800"),
                           "percent": Decimal("10"), "exclusive_group": "全场"}, {}),
        ]
        created = 0
        for code, fields, scope in offers:
            if Promotion.objects.filter(code=code).exists() or (code == "DEMO-SPECIAL" and not first):
                continue
            promo = Promotion.objects.create(code=code, **window, **fields)
            for name, values in scope.items():
                getattr(promo, name).set(values)
            created += 1
        return f"{created} new promotions"

    def seed_staff(self, **_):
        User = get_user_model()
        self.logins = []
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)
        self.logins.append(("admin", "superuser", "all stores"))
        for username, role, display_name, employee_no, store_index, guide_code in STAFF:
            if store_index is not None and store_index >= len(self.stores):
                continue
            store = self.stores[store_index] if store_index is not None else None
            if not User.objects.filter(username=username).exists():
                region = self.region if role == Role.REGIONAL_MANAGER else None
                staff_create(username=username, password=DEMO_PASSWORD, display_name=display_name, role=role,
                             employee_no=employee_no, stores=[store] if store else [], region=region,
                             guide_code=guide_code)
            if store is not None:
                where = store.name
            else:
                where = self.region.name if role == Role.REGIONAL_MANAGER else "all stores"
            self.logins.append((username, str(Role(role).label), where))
        return f"{len(self.logins)} logins"

    def seed_programme(self, **_):
        return programme_create(stores=self.stores)

    def seed_showcase(self, **_):
        User = get_user_model()
        return showcase_create(seed=self.seed, stores=self.stores,
                               manager=User.objects.filter(username="manager").first(),
                               guide=StaffProfile.objects.filter(guide_code="G-HZ001-01").first())

    def seed_history(self, **_):
        if not self.history_days:
            return "none asked for"
        guide = StaffProfile.objects.filter(guide_code="G-HZ001-01").first()
        return history_create(days=self.history_days, seed=self.seed, stores=self.stores, central=self.central,
                              skus=self.skus, guide=guide)

    # --- output ------------------------------------------------------------------------------

    def report(self, summary: dict[str, str], seconds: float):
        for step, text in summary.items():
            self.stdout.write(f"  {step:<11} {text}")
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready in {seconds:.1f}s. Logins (password {DEMO_PASSWORD}):"))
        for username, role, where in self.logins:
            self.stdout.write(f"  {username:<10} {role:<28} {where}")
        self.stdout.write(f"Manager approval PIN at the POS: {MANAGER_PIN} (login manager). Demo member: "
                          f"{SHOWCASE_NAME} {SHOWCASE_PHONE} (or scan o2o:member:{SHOWCASE_PHONE}) with points, "
                          f"wallet money and coupons.")
