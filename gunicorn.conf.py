"""gunicorn settings of the o2o web tier, read by the Docker image, docker-compose.yml,
`python -m o2o.demo --web gunicorn` and the benchmark (bench/run.py): ``gunicorn -c gunicorn.conf.py``.

Sync workers, sized to the cores this process may run on: a sync worker holds one request at a
time and spends part of it waiting on PostgreSQL and Redis, so two per core keep the cores busy
without queueing more requests in the kernel than the node can finish (docs/scaling.md).
GUNICORN_WORKERS (or gunicorn's own WEB_CONCURRENCY) sets the number outright; a ``--workers``
on the command line wins over both.
"""

import os

PER_CORE = 2


def cores() -> int:
    """The CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers_for_cores() -> int:
    configured = os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY")
    if configured:
        count = int(configured)
        if count < 1:
            raise ValueError(f"GUNICORN_WORKERS must be at least 1, not {count}")
        return count
    return PER_CORE * cores()


workers = workers_for_cores()
worker_class = "sync"
