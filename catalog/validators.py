from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum import ean
from stdnum.exceptions import ValidationError as StdnumError

BARCODE_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}


def barcode_normalize(value: str) -> str:
    """Return the barcode if it is a valid EAN-13, EAN-8 or UPC-A; raise ValueError otherwise."""
    digits = ean.compact(value or "")
    if len(digits) not in BARCODE_LENGTHS:
        raise ValueError("barcode must have 8, 12 or 13 digits")
    try:
        return ean.validate(digits)
    except StdnumError as exc:
        raise ValueError(str(exc)) from exc


def validate_barcode(value: str) -> None:
    try:
        barcode_normalize(value)
    except ValueError:
        raise ValidationError(
            _("%(value)s is not a valid EAN-13, EAN-8 or UPC-A barcode."), code="invalid_barcode",
            params={"value": value},
        )
