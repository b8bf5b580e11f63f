"""The minor-unit exponents orders were priced under before ``order.placed`` schema 2.

Until then the service took each currency's exponent from CLDR's display digits (Babel 2.18,
CLDR 47) instead of ISO 4217. The table is frozen here, for the upcaster alone: an order
placed then keeps the exponent its amounts were written in, whatever CLDR or ISO say later.
Every other reader takes the exponent the order recorded.
"""

# CLDR's "fractions" digits that were not its default of 2, for the codes the service took.
_CLDR_DIGITS: dict[str, int] = {
    "AFN": 0, "ALL": 0, "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0,
    "IQD": 0, "IRR": 0, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0, "KPW": 0, "KRW": 0,
    "KWD": 3, "LAK": 0, "LBP": 0, "LYD": 3, "MGA": 0, "MMK": 0, "OMR": 3, "PYG": 0,
    "RSD": 0, "RWF": 0, "SOS": 0, "SYP": 0, "TND": 3, "UGX": 0, "UYI": 0, "UYW": 4,
    "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0, "YER": 0,
}  # fmt: skip
_CLDR_DEFAULT_DIGITS = 2


def legacy_cldr_exponent(currency: str) -> int:
    """The exponent served for ``currency`` before ISO 4217's table: IQD 0, RSD 0, KWD 3."""
    return _CLDR_DIGITS.get(currency, _CLDR_DEFAULT_DIGITS)
