"""Peak resident memory of a process and its children, from /proc (VmHWM)."""

from __future__ import annotations

from pathlib import Path


def hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*") if Path(f"/proc/{pid}/task").exists() else []:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def tree_hwm_kb(pid: int) -> int:
    """The largest VmHWM of ``pid`` and its descendants (a worker process, not the sum)."""
    best, todo, seen = 0, [pid], set()
    for _ in range(1000):
        if not todo:
            break
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        best = max(best, hwm_kb(p))
        todo += children(p)
    return best
