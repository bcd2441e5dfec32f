"""Human-readable document numbers: prefix + local date + a database sequence."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone


def number_next(prefix: str) -> str:
    """Return e.g. ``TR2611230000042``.  Unique across all documents (one sequence)."""
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('o2o_document_number_seq')")
        (value,) = cur.fetchone()
    return f"{prefix}{timezone.localdate():%y%m%d}{value:07d}"


def numbers_next(*prefixes: str) -> list[str]:
    """One number per prefix, as ``number_next`` makes them, drawn in one statement."""
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('o2o_document_number_seq') FROM generate_series(1, %s)", [len(prefixes)])
        values = sorted(v for (v,) in cur.fetchall())
    day = f"{timezone.localdate():%y%m%d}"
    return [f"{prefix}{day}{value:07d}" for prefix, value in zip(prefixes, values)]
