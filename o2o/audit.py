"""Ledger audits.  Each app registers checks; ``manage.py audit_ledgers`` runs them all.

A check yields one human-readable line per violation (and nothing when clean).
"""

from __future__ import annotations

from typing import Callable, Iterable

Check = Callable[[], Iterable[str]]
_CHECKS: list[tuple[str, str, Check]] = []


def audit_check(invariant: str, title: str) -> Callable[[Check], Check]:
    def register(func: Check) -> Check:
        _CHECKS.append((invariant, title, func))
        return func

    return register


def audit_run() -> list[tuple[str, str, list[str]]]:
    """Run every registered check.  Returns (invariant, title, violations) per check."""
    from django.apps import apps

    for config in apps.get_app_configs():  # import each app's audits module
        try:
            __import__(f"{config.name}.audits")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.audits":
                raise
    return [(inv, title, list(func())) for inv, title, func in _CHECKS]
