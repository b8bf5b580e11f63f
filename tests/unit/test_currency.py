"""Minor units come from ISO 4217's own table; the CLDR digits served before are kept only for
orders priced under them."""

import iso4217
import pytest

from escrow_core.currency import currency_codes, exponent, is_currency
from escrow_core.domain.legacy_exponents import legacy_cldr_exponent

# Where CLDR's display digits, served until order.placed schema 2, were not ISO's minor units.
CLDR_WAS_WRONG = {
    "IQD": (0, 3),
    **{code: (0, 2) for code in ("AFN", "ALL", "IRR", "KPW", "LAK", "LBP", "MGA", "MMK")},
    **{code: (0, 2) for code in ("RSD", "SOS", "SYP", "YER")},
}


@pytest.mark.parametrize(
    ("code", "minor_units"),
    [("IQD", 3), ("RSD", 2), ("JPY", 0), ("KWD", 3), ("USD", 2), ("BHD", 3), ("CLF", 4)],
)
def test_minor_units_are_iso_4217s(code: str, minor_units: int) -> None:
    assert exponent(code) == minor_units


def test_every_currency_we_take_has_the_minor_units_of_iso_4217s_table() -> None:
    # Read from the table's own entries (CcyMnrUnts), not through the package's enum.
    listed = {
        code: entry["CcyMnrUnts"]
        for code, entry in iso4217.raw_table.items()
        if code and entry["CcyNbr"] is not None
    }
    with_minor_units = {code: int(units) for code, units in listed.items() if units.isdigit()}

    assert currency_codes() == with_minor_units.keys()
    assert {code: exponent(code) for code in currency_codes()} == with_minor_units
    assert len(currency_codes()) > 150


def test_units_that_are_not_money_are_refused() -> None:
    for code in ("XAU", "XAG", "XDR", "XTS", "XXX"):
        assert not is_currency(code)
        with pytest.raises(ValueError, match="not an ISO 4217 currency code"):
            exponent(code)
    assert not is_currency("usd")
    assert not is_currency("ZZZ")


def test_the_legacy_digits_differ_from_iso_exactly_where_cldr_was_wrong() -> None:
    differing = {
        code: (legacy_cldr_exponent(code), exponent(code))
        for code in currency_codes()
        if legacy_cldr_exponent(code) != exponent(code)
    }
    assert differing == CLDR_WAS_WRONG
