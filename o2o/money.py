"""Money: CNY as Decimal with two places, rounded in one place."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Iterable, Sequence

CURRENCY = "CNY"
FEN = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("9999999999.99")  # what a money column (max_digits=12, decimal_places=2) holds
SYMBOLS = ("¥", "￥", ",", "，")


def money(value: Decimal | int | str) -> Decimal:
    """Quantize to the fen, half up.  Floats are refused: they cannot hold fen exactly."""
    if isinstance(value, float):
        raise TypeError("money() does not accept float; pass Decimal, int or str")
    return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` across ``weights`` to the fen; the parts always add up to ``total``.

    Largest-remainder method: each part gets its floor share in fen, and the fen
    left over go to the largest remainders (earlier lines win ties), so
    refunding any subset of lines is exact.
    """
    total = money(total)
    weight_sum = sum(weights, Decimal(0))
    if not weights:
        return []
    if weight_sum == 0:
        shares = [Decimal(0)] * len(weights)
        shares[0] = total
        return [money(s) for s in shares]
    cents = int(total / FEN)
    raw = [Decimal(cents) * w / weight_sum for w in weights]
    floors = [int(r) if r >= 0 else -int(-r) for r in raw]
    left = cents - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[: abs(left)]:
        floors[i] += 1 if left > 0 else -1
    return [money(Decimal(c) * FEN) for c in floors]


def total(values: Iterable[Decimal]) -> Decimal:
    return money(sum(values, Decimal(0)))


def money_parse(value: object, *, positive: bool = False, signed: bool = False, symbols: bool = False,
                maximum: Decimal = MAX_AMOUNT) -> Decimal:
    """An amount from outside (a form, a file, an API body, a provider), by one rule.

    Decimal, int or str only (never float or bool); a whole number of fen: "12.345" is refused,
    not rounded, so nobody is charged or credited a fen they did not type; finite and within
    ``maximum``; not negative unless ``signed``, and above zero with ``positive``.  ``symbols``:
    "¥1,280.00" as typed or exported by a spreadsheet.  Raises ValueError; each face turns it
    into its own error (a form error, an API error code, a file line).
    """
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if symbols:
            for symbol in SYMBOLS:
                value = value.replace(symbol, "")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or amount != amount.quantize(FEN) or abs(amount) > maximum:
        raise ValueError(f"not an amount in fen: {value!r}")
    if (amount < 0 and not signed) or (amount == 0 and positive):
        raise ValueError(f"amount out of range: {value!r}")
    return amount.quantize(FEN)


def round_to_unit(value: Decimal, unit: Decimal, *, down: bool = False) -> Decimal:
    """``value`` as a whole number of ``unit`` (¥0.01, ¥0.10, ¥1.00): half up, or down (抹零)."""
    units = (money(value) / unit).quantize(Decimal(1), rounding=ROUND_DOWN if down else ROUND_HALF_UP)
    return money(units * unit)
