"""The ledger export's formats, pure: major units by ISO's exponent, Beancount account names,
transfers grouped as their legs stream in, a small file Beancount loads."""

from datetime import UTC, date, datetime

import pytest
from beancount import loader

from escrow_core.projections.ledger_export import (
    BeancountFile,
    Transfers,
    beancount_account,
    major_units,
    narration,
)
from escrow_core.store import AccountBalance, Posting

AT = datetime(2026, 11, 27, 23, 59, tzinfo=UTC)


def leg(transfer_id: str, account: str, amount: int, phase: str = "posted") -> Posting:
    return Posting(transfer_id, "ord_1", "ev1", AT, account, "USD", amount, phase)


@pytest.mark.parametrize(
    ("amount", "currency", "written"),
    [
        (660_000, "USD", "6600.00"),
        (-5, "USD", "-0.05"),
        (5, "JPY", "5"),
        (1_000_000, "IQD", "1000.000"),
        (1, "KWD", "0.001"),
        (0, "EUR", "0.00"),
    ],
)
def test_amounts_are_written_in_major_units(amount: int, currency: str, written: str) -> None:
    assert major_units(amount, currency) == written


def test_accounts_get_beancount_names_and_an_unknown_one_is_refused() -> None:
    assert beancount_account("external") == "Assets:External"
    assert beancount_account("platform") == "Income:Platform"
    assert beancount_account("escrow:ord_a1B") == "Liabilities:Escrow:O-ord-a1B"
    assert beancount_account("buyer:pty_b") == "Liabilities:Buyers:B-pty-b"
    assert beancount_account("supplier:pty_s") == "Liabilities:Suppliers:S-pty-s"
    assert beancount_account("agency:pty_a") == "Liabilities:Agencies:A-pty-a"
    with pytest.raises(ValueError, match="no Beancount name"):
        beancount_account("escrow:ord-with-dash")
    with pytest.raises(ValueError, match="no Beancount name"):
        beancount_account("vault")


def test_narration_names_what_moved() -> None:
    assert narration("ev1:agency_fee", "ord_1") == "agency fee, order ord_1"
    assert narration("po_1/2:posted", "ord_1") == "po_1 paid, order ord_1"
    assert narration("rf_1/1:posted", "ord_1") == "rf_1 succeeded, order ord_1"
    assert narration("po_1/1:returned", "ord_1") == "po_1 returned, order ord_1"


def test_transfers_complete_when_their_legs_sum_to_zero_and_skip_what_did_not_move() -> None:
    grouped = Transfers()
    a1, b1 = leg("a", "external", -100), leg("b", "escrow:ord_1", -40)
    pending = leg("po_1/1", "supplier:pty_s", -60, phase="pending")
    voided = leg("po_1/1:voided", "supplier:pty_s", -60, phase="voided")

    assert grouped.feed([a1, b1, pending, voided]) == []
    a2 = leg("a", "escrow:ord_1", 100)
    assert grouped.feed([a2]) == [[a1, a2]]
    assert grouped.rest() == [[b1]]  # never completed: written as found


def test_a_small_file_with_opening_balances_loads_in_beancount() -> None:
    book = BeancountFile()
    text = book.header("test")
    text += book.opening(
        date(2026, 11, 28),
        [
            AccountBalance("external", "USD", -125_000, 0),
            AccountBalance("escrow:ord_1", "USD", 125_000, 0),
            AccountBalance("buyer:pty_b", "USD", 0, -10),
        ],
    )
    text += book.transfer(
        [leg("ev1:release", "escrow:ord_1", -1000), leg("ev1:release", "supplier:pty_s", 1000)]
    )
    text += book.opens()

    entries, errors, _ = loader.load_string(text)

    assert errors == []
    assert "2026-11-27 open Liabilities:Escrow:O-ord-1 USD" in text
    assert "2026-11-27 open Liabilities:Suppliers:S-pty-s USD" in text
    assert "Buyers" not in text  # nothing posted on it
    assert "  Liabilities:Suppliers:S-pty-s  -10.00 USD" in text
    assert len(entries) == 2 + 4  # two transactions, four accounts opened
