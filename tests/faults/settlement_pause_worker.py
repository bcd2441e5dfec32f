"""The o2o Celery app for the settlement restart test (``celery -A tests.faults.settlement_pause_worker worker``).

The same app and tasks, with one difference: the store step of store ``SETTLEMENT_PAUSE_STORE``
stops inside its transaction, the first time only, writes ``paused`` to ``SETTLEMENT_PAUSE_FLAG``
and waits (at most two minutes) until the test deletes that file, so the test can restart the
database under an open store step.  Every store step appends "ok <store>" (committed) or
"failed <store> <exception>" to ``SETTLEMENT_PAUSE_LOG``.
"""

import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.fault_settings")
django.setup()

from o2o.celery import app  # noqa: E402,F401
from settlement import services  # noqa: E402

FLAG = os.environ["SETTLEMENT_PAUSE_FLAG"]
LOG = os.environ["SETTLEMENT_PAUSE_LOG"]
STORE = int(os.environ["SETTLEMENT_PAUSE_STORE"])
_step_close = services._step_close
_store_step = services.store_step


def _logged(line: str) -> None:
    with open(LOG, "a") as log:
        log.write(line + "\n")


def store_step(*, day_id, store_id):
    try:
        done = _store_step(day_id=day_id, store_id=store_id)
    except Exception as exc:
        _logged(f"failed {store_id} {type(exc).__name__}")
        raise
    if done:
        _logged(f"ok {store_id}")
    return done


def step_close(step, totals):
    _step_close(step, totals)
    if step.store_id == STORE and not os.path.exists(FLAG + ".done"):
        open(FLAG + ".done", "w").close()
        with open(FLAG, "w") as flag:
            flag.write("paused")
        deadline = time.monotonic() + 120
        while os.path.exists(FLAG) and time.monotonic() < deadline:
            time.sleep(0.1)


services._step_close = step_close
services.store_step = store_step
