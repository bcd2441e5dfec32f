"""Render bench/results/README.md from the latest.json document."""

from __future__ import annotations


def _row(cells) -> str:
    return "| " + " | ".join("" if c is None else str(c) for c in cells) + " |"


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
           "", "The POS sale and online order figures go through **bench-only JSON endpoints** "
           "(`bench/views.py`, mounted only by `bench.settings` with `O2O_BENCH_URLS=1`): the POS pages' sale "
           "is a multi-request htmx basket flow, and the partner API was not mounted when this ran. "
           "The POS endpoint runs the same transaction as the POS checkout (shift hold, "
           "`orders.services.pos_sale_create`, cash record) and passes the member so points are earned.", ""]
    res = doc["benchmarks"]
    pos = [r for r in res if r["name"] == "pos_sale"]
    if pos:
        out += ["## POS sale (5 lines, member, points, cash + card) vs the SQL floor", "",
                _row(["clients", "sales/s", "p50 ms", "p95 ms", "p99 ms", "errors", "floor tps (pgbench)",
                      "floor p95 ms", "ratio to floor", "command"]),
                _row(["---"] * 10)]
        for r in pos:
            out.append(_row([r["clients"], r["sales_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                             r["errors"] or 0, r["floor_tps"], r["floor_p95_ms"], r["ratio_to_floor"],
                             f"`{r['command']}` / `{r['floor_command']}`"]))
        out += ["", f"The floor replays the {pos[0]['floor_statements']} statements one sale executes "
                "(captured by `bench/seed.py`, written to `pos_sale.sql` in the run directory) in one "
                "transaction, each client on its own block of SKUs and member as the load generator. "
                "Goal: ratio ≥ 0.5, p95 ≤ 50 ms at 8 clients.", ""]
    orders = [r for r in res if r["name"] in ("order_pickup", "order_ship")]
    if orders:
        out += ["## Online order placement (2 lines, reservation)", "",
                _row(["kind", "clients", "orders/s", "p50 ms", "p95 ms", "p99 ms", "errors", "command"]),
                _row(["---"] * 8)]
        out += [_row([r["name"], r["clients"], r["orders_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                      r["errors"] or 0, f"`{r['command']}`"]) for r in orders]
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
                    f"{r['on_hand_after']}, reserved {r['reserved_after']}.", ""]
    scale = [r for r in res if r["name"] == "scale_gunicorn_workers"]
    if scale:
        out += ["## Scale-out on one machine: gunicorn workers (POS sale, 16 clients)", "",
                _row(["workers", "sales/s", "p50 ms", "p95 ms", "p99 ms", "errors", "command"]), _row(["---"] * 7)]
        out += [_row([r["gunicorn_workers"], r["sales_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                      r["errors"] or 0, f"`{r['command']}`"]) for r in scale]
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
            out += ["## Queries per request (1 line vs 20 lines)", "", _row(["request", "1 line", "20 lines",
                                                                          "constant"]), _row(["---"] * 4)]
            for kind in ("pos_sale", "order_place", "orders_list_bench_20_orders", "admin_order_changelist"):
                out.append(_row([kind, r[f"{kind}_1_lines"]["queries"], r[f"{kind}_20_lines"]["queries"],
                                 "yes" if r[f"{kind}_constant"] else "**no**"]))
            out += ["", f"Command: `{r['command']}`.", ""]
        if r["name"] == "peak_rss":
            out += ["## Peak memory (VmHWM)", "", f"- web worker: {r['web_worker_mb']} MB ({r['web_under']})",
                    f"- Celery worker process: {r['celery_worker_mb']} MB ({r['celery_under']})", ""]
        if r["name"] in ("settlement", "dashboard_1m_orders"):
            out += [f"## {r['name']}", "", f"{r.get('status', 'measured')}: {r.get('why') or r.get('source', '')}",
                    ""]
        if r["name"] == "run":
            out += [f"Whole run: {r['wall_s']} s.", ""]
    return "\n".join(out) + "\n"
