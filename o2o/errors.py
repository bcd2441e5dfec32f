"""Domain errors with stable machine codes.

Services raise these; the API, admin and POS pages turn them into HTTP
400/404/409/422 with the code, or into a form error in the user's language.
Raising one inside a service's transaction rolls it back, so nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status = 422
    code = "domain_error"
    default_message = _("The request could not be processed.")

    def __init__(self, message: Any = None, *, code: str | None = None, field: str | None = None,
                 params: dict[str, Any] | None = None) -> None:
        self.code = code or self.code
        self.field = field
        self.params = params or {}
        self.message = message if message is not None else self.default_message
        super().__init__(f"{self.code}: {self.message}")

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.field:
            body["fields"] = {self.field: [str(self.message)]}
        if self.params:
            body["params"] = {k: (str(v) if not isinstance(v, (int, str, list, dict)) else v)
                              for k, v in self.params.items()}
        return body


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"
    default_message = _("The input is not valid.")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = _("Not found.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = _("The request conflicts with the current state.")


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    default_message = _("You may not do this.")


def domain_error_text(exc: DomainError) -> str:
    """The error's message in the active language, naming the SKUs it is about when known."""
    text = str(exc.message)
    skus = exc.params.get("skus")
    if skus:
        text = f"{text} ({', '.join(str(s) for s in skus)})"
    return text
