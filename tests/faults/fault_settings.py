"""Settings of the server and worker processes the fault tests start: the bench settings
(loopback HTTP, the bench-only endpoints) with the retry windows read from the environment,
so an outage of seconds walks the paths that take minutes with the production defaults."""

import os

from bench.settings import *  # noqa: F401,F403

# The test's webhook receiver listens on loopback over plain HTTP.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
WEBHOOK_ALLOW_HTTP = True
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("O2O_FAULTS_WEBHOOK_TIMEOUT", "5"))
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("O2O_FAULTS_WEBHOOK_RETRY_BASE", "30"))
WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("O2O_FAULTS_WEBHOOK_RETRY_MAX", "3600"))
IDEMPOTENCY_LOCK_SECONDS = int(os.environ.get("O2O_FAULTS_IDEMPOTENCY_LOCK", "120"))
# The queue the test process publishes to (its own default queue), so both sides meet.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("O2O_FAULTS_QUEUE", CELERY_TASK_DEFAULT_QUEUE)  # noqa: F405
