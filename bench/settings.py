"""Settings for benchmark servers and workers: the production settings plus the bench-only
JSON endpoints (bench/urls.py), a Celery queue of their own and a no-op outbox consumer.

Refuses to load unless O2O_BENCH_URLS=1, so these endpoints can never be mounted by accident.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from o2o.settings import *  # noqa: F401,F403

if os.environ.get("O2O_BENCH_URLS") != "1":
    raise ImproperlyConfigured("bench.settings is for benchmarks only: set O2O_BENCH_URLS=1")

ROOT_URLCONF = "bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]  # noqa: F405
# Loopback HTTP, no TLS terminator in front.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = "o2o-bench"  # noqa: F405
CACHES["sessions"]["KEY_PREFIX"] = "o2o-bench-sessions"  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = "o2o-bench"
LOGGING["root"]["level"] = os.environ.get("LOG_LEVEL", "WARNING")  # noqa: F405
# How long the Redis broker waits before handing a killed worker's unacknowledged message to
# another worker (kombu's default is one hour); the fault tests shorten it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
    "visibility_timeout": int(os.environ.get("O2O_BENCH_VISIBILITY_TIMEOUT", "3600")),
}
