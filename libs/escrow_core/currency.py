"""ISO 4217 at the edge: which codes we take, and each one's minor units.

Both come from ISO 4217's own table (list one, as the ``iso4217`` package ships it). Units
whose minor unit ISO gives as "N.A." (precious metals, SDR, testing, "no currency") are not
money an order can be priced in, and are refused.
"""

from functools import cache

from iso4217 import Currency


@cache
def _minor_units() -> dict[str, int]:
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def currency_codes() -> frozenset[str]:
    return frozenset(_minor_units())


def is_currency(code: str) -> bool:
    return code in _minor_units()


def exponent(code: str) -> int:
    """ISO 4217's minor units, the digits after the decimal point: USD 2, JPY 0, IQD 3."""
    try:
        return _minor_units()[code]
    except KeyError:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code") from None
