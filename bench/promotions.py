"""CPU time of the promotion engine: a 20-line basket against 200 live promotions.

    python -m bench.promotions [--rounds 300] [--out bench/results/promotions.json]

Pure engine (``promotions.engine.promotions_apply``), no database: loading and compiling the live
promotions is a fixed number of queries per sale (see ``promotions.selectors.promotions_live``) and
is not part of this figure.  Two mixes: a realistic one (promotions scoped to SKUs, categories and
stores of a 2,000-SKU catalogue, a few exclusivity groups) and a worst case where every promotion
covers every line.  Reported: CPU milliseconds per priced basket (``time.process_time``), median and
95th percentile over the rounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from promotions import engine

D = Decimal
NOW = datetime(2026, 12, 4, 15, tzinfo=timezone(timedelta(hours=8)))
KINDS = [engine.SPECIAL_PRICE] * 8 + [engine.NTH_ITEM] * 3 + [engine.GIFT] * 2 + [engine.BUNDLE] * 2 + \
    [engine.MEMBER_PRICE] * 2 + [engine.THRESHOLD_OFF] * 2 + [engine.THRESHOLD_PERCENT]


def rules(n: int, rnd: random.Random, *, everything: bool) -> list[engine.Rule]:
    out = []
    for i in range(1, n + 1):
        kind = rnd.choice(KINDS)
        scope = {} if everything else rnd.choice([
            {"sku_ids": frozenset(rnd.sample(range(1, 2001), 5))},
            {"category_ids": frozenset(rnd.sample(range(1, 51), 2))},
            {"sku_ids": frozenset(rnd.sample(range(1, 2001), 20))},
        ])
        kw = dict(id=i, code=f"P{i}", name=f"p{i}", kind=kind, priority=rnd.randint(1, 5),
                  group=rnd.choice(["", "", "", "basket", "clearance", "vip"]), **scope)
        if not everything and rnd.random() < 0.3:
            kw["store_ids"] = frozenset(rnd.sample(range(1, 33), 8)) | {1}
        if kind == engine.SPECIAL_PRICE:
            kw["price"] = D(rnd.randint(20, 200))
        elif kind == engine.NTH_ITEM:
            kw.update(nth=2, percent=D(50))
        elif kind == engine.GIFT:
            kw.update(buy_qty=2, gift_sku_id=rnd.randint(1, 2000), gift_qty=1)
        elif kind == engine.BUNDLE:
            kw.update(sku_ids=frozenset(rnd.sample(range(1, 2001), 2)), price=D(150))
        elif kind == engine.MEMBER_PRICE:
            kw["tier_benefits"] = (("GOLD", engine.TierBenefit(percent=D(5))),)
        elif kind == engine.THRESHOLD_OFF:
            kw["steps"] = ((D(300), D(30)), (D(600), D(80)))
        else:
            kw.update(threshold=D(500), percent=D(10))
        out.append(engine.Rule(**kw))
    return out


def basket(rnd: random.Random, found: list[engine.Rule]) -> list[engine.Item]:
    # Half the lines are SKUs some promotion names, so the realistic mix has work to do.
    named = sorted({s for r in found for s in r.sku_ids})
    skus = rnd.sample(named, 10) + rnd.sample(range(1, 2001), 10)
    return [engine.Item(sku_id=s, qty=rnd.randint(1, 3), amount=D(rnd.randint(1990, 49900)) / 100,
                        category_id=rnd.randint(1, 50), cost_price=D("10.00")) for s in skus]


def measure(found, items, ctx, rounds: int) -> dict:
    times, result = [], None
    for _ in range(rounds):
        start = time.process_time()
        result = engine.promotions_apply(found, items, ctx)
        times.append((time.process_time() - start) * 1000)
    times.sort()
    return {"rules": len(found), "lines": len(items), "applicable": len(result.candidates),
            "applied": len({a.rule.id for a in result.applied}), "discount": str(result.total),
            "cpu_ms_median": round(statistics.median(times), 3),
            "cpu_ms_p95": round(times[int(len(times) * 0.95) - 1], 3), "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--out", default="bench/results/promotions.json")
    args = parser.parse_args()
    rnd = random.Random(18)
    ctx = engine.Context(channel="pos", at=NOW, store_id=1, city_id=1, region_id=1, tier_code="GOLD")
    realistic = rules(200, rnd, everything=False)
    worst = rules(200, rnd, everything=True)
    runs = {"realistic": measure(realistic, basket(rnd, realistic), ctx, args.rounds),
            "every_promotion_covers_every_line": measure(worst, basket(rnd, realistic), ctx, args.rounds)}
    report = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "python": platform.python_version(), "machine": platform.machine(), "runs": runs,
              "note": "CPU ms per priced basket (time.process_time); engine only, no database. "
                      "The machine is shared: figures are noisy."}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
