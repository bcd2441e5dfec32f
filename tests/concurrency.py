"""The one harness for races on PostgreSQL: real threads, each on its own database connection.

Use it from tests marked ``django_db(transaction=True)`` so every thread sees committed data.
"""

from __future__ import annotations

import threading
from typing import Callable

from django.db import connection


def run_at_once(jobs: list[Callable[[], object]], *, timeout: float = 120) -> list[object]:
    """Run each job in its own thread, all released together by a barrier.

    Returns what each job returned, or the exception it raised, in the order of ``jobs``; fails
    if a thread is still running after ``timeout`` seconds.  Each thread closes its connection.
    """
    barrier = threading.Barrier(len(jobs))
    outcomes: list[object] = [None] * len(jobs)

    def worker(i: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = job()
        except Exception as exc:  # recorded and asserted on by the test
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job), name=f"race-{i}") for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return outcomes


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, dict]:
    """Start ``target`` in a thread of its own (own connection); its result or error lands in the dict
    (``result`` or ``error``) once the thread is joined."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = target()
        except Exception as exc:  # recorded and asserted on by the test
            box["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box
