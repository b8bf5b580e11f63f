"""ISO 4217 at the edge: which codes we take, and each one's minor-unit exponent.

Codes come from pycountry (the Debian iso-codes list); exponents from Babel (CLDR). Units with
no minor unit in ISO 4217 (precious metals, SDR, testing, "no currency") are refused.
"""

from functools import cache

import pycountry
from babel.numbers import get_currency_precision

# ISO 4217 lists these with minor unit "N.A.": they are not money an order can be priced in.
_NOT_MONEY = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)


@cache
def currency_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY


def is_currency(code: str) -> bool:
    return code in currency_codes()


@cache
def exponent(code: str) -> int:
    """Digits after the decimal point: USD 2, JPY 0, KWD 3."""
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return int(get_currency_precision(code))
