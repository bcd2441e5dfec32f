"""Every periodic job named in the one schedule is a task the worker really has."""

from o2o.celery import app
from o2o.schedule import BEAT_SCHEDULE


def test_every_scheduled_job_is_a_registered_task():
    app.loader.import_default_modules()
    missing = {name: entry["task"] for name, entry in BEAT_SCHEDULE.items() if entry["task"] not in app.tasks}
    assert missing == {}


def test_the_worker_reads_the_schedule_from_one_place():
    app.finalize()
    assert app.conf.beat_schedule == BEAT_SCHEDULE
