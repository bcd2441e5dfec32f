"""Test settings: the production settings with what a test client needs.

The database and broker are still real: the embedded PostgreSQL and Redis, or
DATABASE_URL / REDIS_URL when set.
"""

import os
import uuid

from o2o.settings import *  # noqa: F401,F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Keep a test run's cache keys and Celery messages apart from a running demo's worker.
CACHES["default"]["KEY_PREFIX"] = "o2o-test"  # noqa: F405
# Sessions stay where production keeps them (SESSION_BACKEND, Redis by default), apart from a demo's.
CACHES["sessions"]["KEY_PREFIX"] = "o2o-test-sessions"  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = "o2o-test"
# Lets several test runs share one server (e.g. O2O_TEST_DB_NAME=test_o2o_ci).
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("O2O_TEST_DB_NAME") or None}  # noqa: F405
# Payment codes scanned at the test counter are charged by the offline sandbox provider.
POS_MICROPAY_PROVIDER = "sandbox"
# Rate-limit and sign-in failure counters of one test run never meet another run's.
API_RATE_LIMIT_PREFIX = f"o2o-test:{uuid.uuid4().hex[:12]}:ratelimit"
# Sold-out marks of one test run never meet another run's (ids repeat across test databases).
STOCK_SOLDOUT_PREFIX = f"o2o-test:{uuid.uuid4().hex[:12]}:soldout"
