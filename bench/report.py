"""Render bench/results/README.md from the latest.json document."""

from __future__ import annotations


def _row(cells) -> str:
    return "| " + " | ".join("" if c is None else str(c) for c in cells) + " |"


def _table(rows: list[dict], columns) -> list[str]:
    """A markdown table of result ``rows``; ``columns``: (header, the result's key or a function of it)."""
    def cell(r, how):
        return how(r) if callable(how) else r.get(how)

    return [_row([head for head, _ in columns]), _row(["---"] * len(columns)),
            *(_row([cell(r, how) for _, how in columns]) for r in rows)]


def _errors(r: dict):
    return r["errors"] or 0


# The first columns of both POS sale tables.
POS_COLUMNS = (("clients", "clients"), ("sales/s", "sales_per_s"), ("complete p50 ms", "p50_ms"),
               ("complete p95 ms", "p95_ms"), ("complete p99 ms", "p99_ms"))


def _dashboard(r: dict) -> list[str]:
    d = r["data"]
    ds, refresh, m = d["dataset"], d["rollup_refresh"], d["machine"]
    out = ["## Dashboard over 1M orders", "",
           f"{ds['orders']:,} orders ({ds['order_lines']:,} lines, {ds['returns']:,} returns, "
           f"{ds['coupon_redemptions']:,} coupon redemptions, {ds['stock_moves']:,} stock moves, "
           f"{ds['members']:,} members) over {ds['params']['days']} business days "
           f"({ds['first_day']} – {ds['last_day']}) and {ds['params']['stores']} stores in 2 regions; "
           f"generated set-based in {ds['generate_seconds']} s. Roll-up backfill of every day "
           f"{refresh['backfill_all_days_seconds']} s; the beat task (today and the 3 days before) "
           f"{refresh['beat_task_median_ms']} ms. Load average {' '.join(map(str, m['loadavg_start']))} at the "
           f"start, {' '.join(map(str, m['loadavg_end']))} at the end. Goal: every page under {d['goal_ms']} ms.",
           "", _row(["figure", "kind", "median ms", "p95 ms", "queries"]), _row(["---"] * 5)]
    out += [_row([f["name"], f["kind"], f["median_ms"], f["p95_ms"], f["queries"]]) for f in d["figures"]]
    out += ["", f"{d['note']} Command: `{r['command']}`; raw figures in [dashboard.json](dashboard.json)."
            + (f" {r['note']}." if r.get("note") else ""), ""]
    return out


def _settlement(r: dict) -> list[str]:
    d = r["data"]
    out = ["## Settlement of one business day", "",
           f"{d['stores']} stores, {d['machine'].get('settlement_workers')} settlement workers; {d['note']}. "
           "Goal: 1M orders in under 60 s, linear in orders.", "",
           _row(["orders", "order lines", "split lines", "settle s", "orders/s", "re-run s",
                 "net = payments − refunds"]),
           _row(["---"] * 7)]
    for run in d["runs"]:
        out.append(_row([f"{run['orders']:,}", f"{run['order_lines']:,}", f"{run['split_lines']:,}",
                         run["settle_seconds"], f"{run['orders_per_second']:,}", run["rerun_seconds"],
                         "yes" if run["net"] == run["payments_minus_refunds"] else "**no**"]))
    out += ["", f"Command: `{r['command']}`; raw figures in [settlement.json](settlement.json)"
            + (f"; {r['note']}" if r.get("note") else "") + ".", ""]
    return out


def _find(res: list[dict], name: str, **match) -> dict | None:
    return next((r for r in res if r["name"] == name and all(r.get(k) == v for k, v in match.items())), None)


def _met(value, goal: float, *, at_most: bool = False) -> str:
    if value is None:
        return "not measured"
    ok = value <= goal if at_most else value >= goal
    return "**met**" if ok else "**missed**"


def _targets(doc: dict) -> list[str]:
    """The performance targets, today's figures (before this work, from notes.json) beside this run's."""
    res, before = doc["benchmarks"], doc.get("targets_before") or {}
    rows = []

    def add(target: str, key: str, value, verdict: str, detail: str = "") -> None:
        rows.append(_row([target, before.get(key, ""), "" if value is None else value, verdict, detail]))

    for kind, label in (("pos_sale", "sale page (7 requests)"), ("pos_till_sale", "till-held basket")):
        r = _find(res, kind, clients=8)
        if r is None:
            continue
        ratio = r.get("ratio_to_frozen_floor")
        add(f"whole POS sale at 8 tills ≥ 0.5× the frozen floor — {label}", f"{kind}_ratio", ratio,
            _met(ratio, 0.5), f"{r['sales_per_s']} sales/s vs floor {r.get('frozen_floor_tps')} tps")
        add(f"complete p95 ≤ 50 ms at 8 tills — {label}", f"{kind}_p95", r.get("p95_ms"),
            _met(r.get("p95_ms"), 50, at_most=True), "")
    hot = _find(res, "hot_sku")
    if hot:
        ratio = hot.get("ratio_to_frozen_hot_sale")
        add("hot SKU ≥ 0.5× the frozen hot-sale floor, exact", "hot_ratio", ratio,
            _met(ratio, 0.5) + ("" if hot.get("exactly_100_sold") else " (**not exact**)"),
            f"{hot['attempts_per_s']} attempts/s vs {hot.get('frozen_hot_sale_tps')} tps; sold {hot['sold']}")
    for r in res:
        if r.get("rejections_per_s") is not None:
            add(f"rejections of a sold-out SKU ≥ 1,000/s — {r['name']}", "rejections", r["rejections_per_s"],
                _met(r["rejections_per_s"], 1000), r.get("what", ""))
    pay = _find(res, "order_pay", clients=8)
    if pay and pay.get("cpu_ms_per_order"):
        cpu = pay["cpu_ms_per_order"]
        total = round((cpu.get("web") or 0) + (cpu.get("db") or 0), 2)
        was = before.get("order_pay_cpu")
        verdict = _met(total, was / 2, at_most=True) if isinstance(was, (int, float)) else "see today"
        add("API order create + pay: CPU per order ≤ ½ today's (web + db ms)", "order_pay_cpu", total, verdict,
            f"web {cpu.get('web')} + db {cpu.get('db')}")
    drain = _find(res, "celery_outbox_drain", workers=1)
    api_rate = max((r["orders_per_s"] for r in res if r["name"] in ("order_pickup", "order_ship")), default=None)
    if drain and api_rate:
        per_order = doc.get("outbox_messages_per_order")
        orders_drained = round(drain["msgs_per_s"] / per_order, 1) if per_order else None
        add("outbox drain ≥ the API's order rate, one worker (orders' messages/s)", "drain",
            orders_drained, _met(orders_drained, api_rate) if orders_drained else "not measured",
            f"{drain['msgs_per_s']} msgs/s ÷ {per_order} messages per order vs {api_rate} orders/s")
    settle = _find(res, "settlement")
    runs = [run for run in (settle or {}).get("data", {}).get("runs", []) if run["orders"] >= 1_000_000]
    if runs:
        add("settlement of 1M orders ≤ 20 s", "settlement", runs[-1]["settle_seconds"],
            _met(runs[-1]["settle_seconds"], 20, at_most=True), "")
    else:
        add("settlement of 1M orders ≤ 20 s", "settlement", None, "not in this run",
            "see bench/results/settlement-speed.md")
    dash = _find(res, "dashboard_1m_orders")
    if dash and "data" in dash:
        pages = [f for f in dash["data"]["figures"] if f["kind"] == "page"]
        worst = max((f["p95_ms"] for f in pages), default=None)
        add("every dashboard page ≤ 200 ms at 1M orders (slowest page p95)", "dashboard", worst,
            _met(worst, 200, at_most=True), dash.get("note", ""))
    cpu_rows = []
    for kind in ("pos_sale", "pos_till_sale"):
        for r in (x for x in res if x["name"] == kind):
            cpu = r.get("cpu_ms_per_sale") or {}
            if cpu:
                cpu_rows.append(_row([kind, r["clients"], cpu.get("web"), cpu.get("db"), cpu.get("load_generator"),
                                      before.get(f"{kind}_cpu_{r['clients']}", "")]))
    if not rows:
        return []
    if cpu_rows:
        rows += ["", "**CPU ms per whole sale**, read from /proc over the measured window: the gunicorn workers "
                 "(web), the PostgreSQL backends of the bench database (db), the load generator.", "",
                 _row(["kind", "clients", "web", "db", "load generator", "today (web / db)"]), _row(["---"] * 6),
                 *cpu_rows]
    return ["## Targets", "", "Today = the figures before this work (the same bench on the code before it, "
            "or the issue's own measurements where the bench did not measure them; notes.json says which).", "",
            _row(["target", "today", "this run", "verdict", "detail"]), _row(["---"] * 5), *rows, ""]


def render(doc: dict) -> str:
    m = doc["machine"]
    out = ["# Benchmark results", "",
           f"Run of `{doc['command']}` on {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, "
           f"PostgreSQL {m['postgres']}, Python {m['python']}, gunicorn {m['gunicorn']}.",
           f"Load average at start {' '.join(m['loadavg_start'])}, at end {m['loadavg_end']}: the machine is "
           "shared with other test runs, so absolute figures are noisy; ratios measured in the same minute "
           "(ours vs pgbench) are the figures to trust.",
           "",
           "Everything runs on this one machine over loopback: gunicorn (sync workers), PostgreSQL, Redis, "
           "the load generator (`bench/load.py`, httpx + asyncio, its own process) and pgbench. "
           f"Each point measures {doc['seconds_per_point']:g} s after a 2 s warm-up. "
           "The raw figures are in [latest.json](latest.json).",
           "", "Every figure goes through the real endpoints. The POS sale is the POS sale page's own "
           "htmx flow: each load client is a till that signed in at `/pos/login/` as the clerk of its own store "
           "(32 seeded stores, each with its register's shift open and its own stockroom), and per sale posts "
           "five barcode scans (`/pos/sale/scan/`), the member's phone (`/pos/sale/member/`) and the complete "
           "request (`/pos/sale/complete/`: the sale's client UUID, 50.00 on the UnionPay card with its slip "
           "reference, the rest in cash), with the session cookie and the CSRF header. Online orders are "
           "`POST /api/v1/orders/` with a partner key (`Authorization: Bearer`) and a fresh `Idempotency-Key`.",
           ""]
    out += _targets(doc)
    notes = doc.get("notes") or []
    if notes:
        out += ["## Changes in this run", "", *notes, ""]
    res = doc["benchmarks"]
    pos = [r for r in res if r["name"] == "pos_sale"]
    if pos:
        out += ["## POS sale (5 lines, member, points, cash + card) vs the SQL floor", "",
                "**sales/s** are whole sales (7 requests each). **complete p50/p95/p99** is the latency of the "
                "complete request alone (`/pos/sale/complete/`: the sale transaction, as the floor replays it); "
                "**flow p50/p95** is the time of the whole sale at the till (5 scans + member + complete), "
                "measured from the first scan's send to the complete's answer. A sale counts when it ends "
                "inside the measured window (after a 5 s warm-up).", "",
                *_table(pos, [*POS_COLUMNS, ("flow p50 ms", "flow_p50_ms"), ("flow p95 ms", "flow_p95_ms"),
                              ("scan/member mean ms", "scan_or_member_mean_ms"), ("errors", _errors),
                              ("floor tps (pgbench)", "floor_tps"), ("floor p95 ms", "floor_p95_ms"),
                              ("ratio to floor", "ratio_to_floor"),
                              ("command", lambda r: f"`{r['command']}` / `{r['floor_command']}`")])]
        out += ["", f"The floor replays the {pos[0]['floor_statements']} statements of one complete request "
                "(captured by `bench/seed.py` from a real `/pos/sale/complete/` through the Django test client, "
                "session read and write and transaction boundaries included; written to `pos_sale.sql` in the "
                "run directory), each pgbench client at its own store (clerk, shift, stockroom, session row) on its "
                "own block of SKUs and member, as the load generator. The ratio compares sales/s with the "
                "floor's transactions/s: the floor has no scans, so it is the bound for the complete request. "
                "Goal: ratio ≥ 0.5, p95 of the complete request ≤ 50 ms at 8 clients.", ""]
        frozen = [r for r in pos if r.get("frozen_floor_tps") is not None]
        if frozen:
            out += ["### Against the frozen floor", "",
                    f"`bench/floors/pos_sale.sql` is the least a 5-line sale with a member, points and two "
                    f"tenders can do ({frozen[0]['frozen_floor_statements']} statements: the order in its final "
                    "state, multi-row inserts, one conditional stock update taken last), written by hand and never "
                    "recaptured from the application; the database is ANALYZEd after seeding. Whole sales/s (the "
                    "scans included) are compared with it.", "",
                    _row(["clients", "sales/s", "frozen floor tps", "frozen floor p95 ms", "ratio", "command"]),
                    _row(["---"] * 6)]
            out += [_row([r["clients"], r["sales_per_s"], r["frozen_floor_tps"], r["frozen_floor_p95_ms"],
                          r["ratio_to_frozen_floor"], f"`{r['frozen_floor_command']}`"]) for r in frozen]
            out.append("")
    till = [r for r in res if r["name"] == "pos_till_sale"]
    if till:
        out += ["## POS sale with the basket held by the till (5 lines, member, cash + card) vs the frozen floor", "",
                "Each till fetches its store's catalogue once at start (`/pos/offline/catalogue/`) and resolves its "
                "scans from it; per sale one price call with the member (`POST /pos/till/price/`) and the complete "
                "JSON (`POST /pos/till/complete/`), the same five lines, member and tenders as the POS sale above. "
                "**sales/s** are whole sales (2 requests each); **complete p50/p95/p99** is the complete request "
                "alone, **flow** the price call and the complete together. The ratio compares whole sales/s "
                "with the frozen floor (`bench/floors/pos_sale.sql`) run at the same clients. "
                "Goal: ratio ≥ 0.5, complete p95 ≤ 50 ms at 8 clients.", "",
                *_table(till, [*POS_COLUMNS, ("price p50 ms", "price_p50_ms"), ("flow p50 ms", "flow_p50_ms"),
                               ("flow p95 ms", "flow_p95_ms"), ("errors", _errors),
                               ("frozen floor tps", "frozen_floor_tps"), ("frozen floor p95 ms", "frozen_floor_p95_ms"),
                               ("ratio to frozen floor", "ratio_to_frozen_floor"),
                               ("command", lambda r: f"`{r['command']}` / `{r['frozen_floor_command']}`")]), ""]
    orders = [r for r in res if r["name"] in ("order_pickup", "order_ship", "order_pay")]
    if orders:
        out += ["## Online order placement via the partner API (2 lines, reservation)", "",
                "`order_pay` places a shipped order, starts its sandbox payment through the API and posts the "
                "sandbox's signed notification: its figures are per placed **and paid** order (3 requests). "
                "CPU ms per order are read from /proc over the measured window: the gunicorn workers, the "
                "PostgreSQL backends of the bench database, the load generator.", "",
                _row(["kind", "clients", "orders/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                      "CPU ms/order web", "db", "load gen", "command"]),
                _row(["---"] * 11)]
        for r in orders:
            cpu = r.get("cpu_ms_per_order") or {}
            out.append(_row([r["name"], r["clients"], r["orders_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                             r["errors"] or 0, cpu.get("web"), cpu.get("db"), cpu.get("load_generator"),
                             f"`{r['command']}`"]))
        out.append("")
    for r in res:
        if r["name"] == "hot_sku":
            out += ["## Hot SKU: 500 concurrent attempts on 100 units", "",
                    _row(["sold", "POS / online", "errors by code", "duration s", "attempts/s",
                          "pgbench conditional UPDATE tps (32 clients)", "ratio", "command"]),
                    _row(["---"] * 8),
                    _row([r["sold"], f"{r['sold_pos']} / {r['sold_online']}", r["errors_by_code"], r["duration_s"],
                          r["attempts_per_s"], r["floor_conditional_update_tps"], r["ratio_to_floor"],
                          f"`{r['command']}` / `{r['floor_command']}`"]), "",
                    f"Units on order lines afterwards: {r['units_on_order_lines']}; stock level on_hand "
                    f"{r['on_hand_after']}, reserved {r['reserved_after']}. The POS half completes baskets "
                    f"filled beforehand (scan + member, {r.get('baskets_prepared_s')} s) on clerk sessions of "
                    "the hot SKU's store that the seed signed in; then all attempts go at once. Latency of the "
                    f"POS completes p50 {r.get('pos_p50_ms')} ms (max {r.get('pos_max_ms')}), of the API orders "
                    f"p50 {r.get('online_p50_ms')} ms (max {r.get('online_max_ms')}).", ""]
        if r["name"] == "soldout_rejections":
            met = "met" if (r["rejections_per_s"] or 0) >= 1000 else "**missed**"
            out += ["## Sold-out SKU: refusals per second (after the hot-SKU step; goal ≥ 1,000/s)", "",
                    _row(["refusals/s", "POS / API refusals/s", "POS p50 / p95 ms", "API p50 / p95 ms",
                          "other answers", "goal", "command"]),
                    _row(["---"] * 7),
                    _row([r["rejections_per_s"], f"{r['pos_rejections_per_s']} / {r['api_rejections_per_s']}",
                          f"{r['pos_p50_ms']} / {r['pos_p95_ms']}", f"{r['api_p50_ms']} / {r['api_p95_ms']}",
                          r["other_answers"] or 0, met, f"`{r['command']}`"]), "",
                    f"{r['mix']}. A refusal is decided before the sale's transaction: the sold-out gate in "
                    "Redis (set when a refusal found nothing left), else one lock-free read; the POS answers "
                    "only the error line.", ""]
    scale = [r for r in res if r["name"] == "scale_gunicorn_workers"]
    if scale:
        out += ["## Scale-out on one machine: gunicorn workers (POS sale, 16 clients)", "",
                _row(["workers", "sales/s", "complete p50 ms", "complete p95 ms", "complete p99 ms", "flow p95 ms",
                      "errors", "command"]), _row(["---"] * 8)]
        out += [_row([r["gunicorn_workers"], r["sales_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                      r.get("flow_p95_ms"), r["errors"] or 0, f"`{r['command']}`"]) for r in scale]
        out.append("")
    bounced = [r for r in res if r["name"] == "pgbouncer"]
    if bounced:
        direct = {(r["name"], r["clients"]): r for r in res if r["name"] in ("pos_sale", "order_pickup", "order_ship")}
        out += ["## Through PgBouncer (transaction pooling), 8 clients", "",
                "The same load with the web tier connected to a private PgBouncer (o2o/pgbouncer.py) in front "
                "of the same PostgreSQL, beside the direct-connection figures of this run.", "",
                _row(["kind", "per s", "direct per s", "p50 ms", "p95 ms", "direct p95 ms", "p99 ms", "errors",
                      "command"]), _row(["---"] * 9)]
        for r in bounced:
            d = direct.get((r["kind"], r["clients"]), {})
            out.append(_row([r["kind"], f"{r['per_s']} {r['unit']}", d.get("sales_per_s", d.get("orders_per_s")),
                             r["p50_ms"], r["p95_ms"], d.get("p95_ms"), r["p99_ms"], r["errors"] or 0,
                             f"`{r['command']}`"]))
        out.append("")
    drain = [r for r in res if r["name"] == "celery_outbox_drain"]
    if drain:
        out += ["## Celery workers draining 10k outbox dispatch messages", "",
                _row(["workers (×2 processes)", "msgs/s", "drain s", "relay publish msgs/s", "complete",
                      "worker peak RSS MB", "command"]), _row(["---"] * 7)]
        out += [_row([r["workers"], r["msgs_per_s"], r["drain_s"], r["relay_msgs_per_s"], r["complete"],
                      r["worker_peak_rss_mb"], f"`{r['command']}`"]) for r in drain]
        out += ["", "The consumer is a no-op that records it ran (one ProcessedMessage row per message); "
                "webhook deliveries are not benchmarked yet.", ""]
    for r in res:
        if r["name"] == "queries_per_request":
            before = doc.get("queries_before") or {}
            out += ["## Queries per request (1 line vs 20 lines)", "",
                    "Counted on the real endpoints with the Django test client after one warm-up request of each "
                    "shape: `pos_complete` is `/pos/sale/complete/` for a basket of n lines (member, cash + "
                    "card); `api_order_place` is `POST /api/v1/orders/` with n lines; `api_order_list` is "
                    "`GET /api/v1/orders/?limit=20` when the newest 20 orders have n lines each.", "",
                    _row(["request", "1 line", "20 lines", "constant", "before this change (1 / 20)"]),
                    _row(["---"] * 5)]
            for kind in ("pos_complete", "api_order_place", "api_order_list", "admin_order_changelist"):
                was = before.get(kind)
                out.append(_row([kind, r[f"{kind}_1_lines"]["queries"], r[f"{kind}_20_lines"]["queries"],
                                 "yes" if r[f"{kind}_constant"] else "**no**",
                                 f"{was[0]} / {was[1]}" if was else ""]))
            out += ["", f"Command: `{r['command']}`.", ""]
        if r["name"] == "peak_rss":
            out += ["## Peak memory (VmHWM)", "", f"- web worker: {r['web_worker_mb']} MB ({r['web_under']})",
                    f"- Celery worker process: {r['celery_worker_mb']} MB ({r['celery_under']})", ""]
        if r["name"] == "dashboard_1m_orders" and "data" in r:
            out += _dashboard(r)
        elif r["name"] == "settlement" and "data" in r:
            out += _settlement(r)
        elif r["name"] in ("settlement", "dashboard_1m_orders"):
            out += [f"## {r['name']}", "", f"{r.get('status', 'measured')}: {r.get('why') or r.get('source', '')}",
                    ""]
        if r["name"] == "run":
            out += [f"Whole run: {r['wall_s']} s.", ""]
    return "\n".join(out) + "\n"
