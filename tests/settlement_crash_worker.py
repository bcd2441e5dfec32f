"""The o2o Celery app for the settlement crash test (``celery -A tests.settlement_crash_worker worker``).

The same app and tasks, with one difference: after the first store step of a settlement
commits, the worker process writes its pid to ``SETTLEMENT_CRASH_FLAG`` and stalls, so the
test can kill it at a known point.  Every step writes "<pid> <store>" to
``SETTLEMENT_CRASH_LOG``.  Steps run one at a time.
"""

import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "o2o.settings_test")
django.setup()

from django.conf import settings  # noqa: E402

from o2o.celery import app  # noqa: E402,F401
from settlement import services  # noqa: E402

settings.SETTLEMENT_WORKERS = 1
FLAG = os.environ["SETTLEMENT_CRASH_FLAG"]
LOG = os.environ["SETTLEMENT_CRASH_LOG"]
_store_step = services.store_step


def store_step(*, day_id, store_id):
    done = _store_step(day_id=day_id, store_id=store_id)
    with open(LOG, "a") as log:
        log.write(f"{os.getpid()} {store_id}\n")
    if done and not os.path.exists(FLAG):
        with open(FLAG, "w") as flag:
            flag.write(str(os.getpid()))
        time.sleep(300)  # the test kills this process here
    return done


services.store_step = store_step
