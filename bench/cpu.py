"""CPU time per process group, read from /proc: the web workers, the PostgreSQL server and the
load generator, so a benchmark can say how many CPU milliseconds one sale costs in each.

Linux only (the bench machine): utime + stime of each process, in clock ticks.  The PostgreSQL
figure is the backends connected to the bench database (``backend_pids``); the server's own
processes (WAL writer, checkpointer, autovacuum) are not in it.  The load generator is
a child process that has exited: its CPU comes from ``getrusage(RUSAGE_CHILDREN)``.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.procs import children

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def proc_cpu_ms(pid: int) -> float:
    """utime + stime of one process in ms (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) * TICK_MS


def named_pids(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return out


def backend_pids(database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (their process title names it), so other
    databases' work on a shared server is not counted."""
    out = []
    for pid in named_pids("postgres"):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if f" {database} " in title:
            out.append(pid)
    return out


def tree_pids(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += children(p)
    return seen


@dataclass
class Snapshot:
    per_pid: dict[int, float]
    children_ms: float

    @classmethod
    def take(cls, groups: dict[str, list[int]]) -> "Snapshot":
        per_pid = {pid: proc_cpu_ms(pid) for pids in groups.values() for pid in pids}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(per_pid, (usage.ru_utime + usage.ru_stime) * 1000)


class CpuMeter:
    """``with CpuMeter(web_master_pid) as cpu: run the load`` then ``cpu.per(n)`` = CPU ms per unit of
    work for web, db and the load generator (plus pgbench, if it ran as a child in between)."""

    def __init__(self, web_master: int | None) -> None:
        self.web_master = web_master

    def groups(self) -> dict[str, list[int]]:
        database = urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/")
        return {"web": tree_pids(self.web_master) if self.web_master else [], "db": backend_pids(database)}

    def __enter__(self) -> "CpuMeter":
        self.before_groups = self.groups()
        self.before = Snapshot.take(self.before_groups)
        return self

    def __exit__(self, *exc) -> None:
        after_groups = self.groups()
        after = Snapshot.take(after_groups)
        self.ms = {}
        for name, pids in after_groups.items():
            # A process that started during the run counts from zero; one that ended is lost (rare:
            # a backend that disconnected), so the figure is a floor of what was spent.
            self.ms[name] = sum(after.per_pid.get(p, 0.0) - self.before.per_pid.get(p, 0.0) for p in pids)
        self.ms["load_generator"] = after.children_ms - self.before.children_ms

    def per(self, units: int) -> dict[str, float | None]:
        if not units:
            return {name: None for name in self.ms}
        return {name: round(ms / units, 2) for name, ms in self.ms.items()}
