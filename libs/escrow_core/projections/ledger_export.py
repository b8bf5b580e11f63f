"""The ledger as an accountant reads it: CSV rows, or a Beancount file (pure; the driver is
``escrow_core.application.ledger_export``).

Only money that moved is exported: ``posted`` legs (a plain transfer, a payout or refund
settled, a return). ``pending`` legs are money on its way, ``voided`` ones never left.
Amounts are written in the currency's major units with ISO 4217's exponent (6600.00 USD,
1000.000 IQD); the ledger stores them in its minor units.

Beancount accounts (each component capitalised, of letters, digits and dashes; an id's
underscores become dashes, which ids never hold, so no two accounts meet):

    external             Assets:External             money that came in and has not gone out
    escrow:<order>       Liabilities:Escrow:O-<order>   money held for the order
    buyer:<party>        Liabilities:Buyers:B-<party>   owed back to a buyer
    supplier:<party>     Liabilities:Suppliers:S-<party>
    agency:<party>       Liabilities:Agencies:A-<party>
    platform             Income:Platform             the fees we kept

Beancount counts debits positive, so every amount is written negated: what we owe a party is
a negative liability, fees are negative income, and ``Assets:External`` is the money at the
bank. The CSV keeps the ledger's own accounts and signs.
"""

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from escrow_core.currency import exponent
from escrow_core.store import AccountBalance, Posting

POSTED = "posted"
OPENING_BALANCES = "Equity:Opening-Balances"
CSV_HEADER = (
    "id", "transfer_id", "at", "order_id", "event_id", "account", "currency", "amount", "legacy",
)  # fmt: skip

_FIXED = {"external": "Assets:External", "platform": "Income:Platform"}
_PER_ID = {
    "escrow": "Liabilities:Escrow:O-",
    "buyer": "Liabilities:Buyers:B-",
    "supplier": "Liabilities:Suppliers:S-",
    "agency": "Liabilities:Agencies:A-",
}
_ID = re.compile(r"[A-Za-z0-9_]+")


def exported(posting: Posting) -> bool:
    """Whether the leg is money that moved."""
    return posting.phase == POSTED


def major_units(amount: int, currency: str) -> str:
    """``amount`` (ISO minor units) in major units with the currency's exponent: 660000 USD
    is ``6600.00``, 5 JPY ``5``."""
    digits = exponent(currency)
    return f"{Decimal(amount).scaleb(-digits):.{digits}f}"


def beancount_account(account: str) -> str:
    """The Beancount name of a ledger account (table in the module docstring)."""
    if account in _FIXED:
        return _FIXED[account]
    kind, _, object_id = account.partition(":")
    if kind not in _PER_ID or not _ID.fullmatch(object_id):
        raise ValueError(f"no Beancount name for the ledger account {account!r}")
    return _PER_ID[kind] + object_id.replace("_", "-")


def csv_row(posting: Posting) -> list[str]:
    """One posting as a CSV row (``CSV_HEADER``)."""
    return [
        str(posting.id),
        posting.transfer_id,
        posting.at.isoformat().replace("+00:00", "Z"),
        posting.order_id,
        posting.event_id,
        posting.account,
        posting.currency,
        major_units(posting.amount, posting.currency),
        str(posting.legacy).lower(),
    ]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _leg(account: str, amount: int, currency: str) -> str:
    return f"  {beancount_account(account)}  {major_units(-amount, currency)} {currency}\n"


class BeancountFile:
    """Writes transfers as they come and remembers each account's first date, so its
    ``open`` directives (written last: Beancount orders entries by date, not by place in the
    file) are dated no later than its first use."""

    def __init__(self) -> None:
        self.opened: dict[tuple[str, str], date] = {}  # (Beancount account, currency) -> date

    def _use(self, account: str, currency: str, on: date) -> None:
        key = (beancount_account(account), currency)
        self.opened[key] = min(on, self.opened.get(key, on))

    def header(self, title: str) -> str:
        return f"option {_quoted('title')} {_quoted(title)}\n\n"

    def opening(self, since: date, balances: Sequence[AccountBalance]) -> str:
        """The posted balances before ``since``, one transaction per currency against
        ``Equity:Opening-Balances`` dated the day before (the ledger sums to zero, so that
        leg is zero unless something is wrong, and Beancount then says so)."""
        day = since - timedelta(days=1)
        text = ""
        for currency in sorted({b.currency for b in balances}):
            held = [b for b in balances if b.currency == currency and b.posted]
            if not held:
                continue
            text += f"{day} * {_quoted(f'Opening balances before {since}')}\n"
            for balance in held:
                self._use(balance.account, currency, day)
                text += _leg(balance.account, balance.posted, currency)
            self.opened[(OPENING_BALANCES, currency)] = day
            rest = -sum(b.posted for b in held)
            text += f"  {OPENING_BALANCES}  {major_units(-rest, currency)} {currency}\n\n"
        return text

    def transfer(self, legs: Sequence[Posting]) -> str:
        """One transfer's posted legs as one transaction, dated the day (UTC) it happened."""
        first = legs[0]
        day = first.at.date()
        text = f"{day} * {_quoted(narration(first.transfer_id, first.order_id))}\n"
        text += f"  transfer_id: {_quoted(first.transfer_id)}\n"
        text += f"  event_id: {_quoted(first.event_id)}\n"
        if first.legacy:
            text += "  legacy: TRUE\n"
        for leg in legs:
            self._use(leg.account, leg.currency, day)
            text += _leg(leg.account, leg.amount, leg.currency)
        return text + "\n"

    def opens(self) -> str:
        """An ``open`` directive per account used, restricted to its currencies."""
        currencies: dict[str, set[str]] = {}
        first: dict[str, date] = {}
        for (account, currency), on in self.opened.items():
            currencies.setdefault(account, set()).add(currency)
            first[account] = min(on, first.get(account, on))
        return "".join(
            f"{first[account]} open {account} {','.join(sorted(currencies[account]))}\n"
            for account in sorted(first)
        )


def narration(transfer_id: str, order_id: str) -> str:
    """What a transfer was, for a reader: ``payment, order ord_...``, ``payout po_... paid,
    order ord_...`` (ids as the ledger names them: ``<event>:<kind>``, ``<object>/<n>:<kind>``)."""
    head, _, kind = transfer_id.rpartition(":")
    what = kind.replace("_", " ")
    if "/" in head:  # a payout's or refund's attempt settled or returned
        object_id = head.split("/", 1)[0]
        done = "paid" if object_id.startswith("po_") else "succeeded"
        what = f"{object_id} {done if kind == POSTED else what}"
    return f"{what}, order {order_id}"


class Transfers:
    """Posted legs grouped into their transfers as they stream in: a transfer is complete when
    its legs sum to zero (each has two, written together, but the store does not promise that
    nothing comes between them)."""

    def __init__(self) -> None:
        self.open: dict[str, list[Posting]] = {}

    def feed(self, postings: Iterable[Posting]) -> list[list[Posting]]:
        """The transfers ``postings`` complete."""
        done = []
        for posting in postings:
            if not exported(posting):
                continue
            legs = self.open.setdefault(posting.transfer_id, [])
            legs.append(posting)
            if len(legs) > 1 and not sum(leg.amount for leg in legs):
                done.append(self.open.pop(posting.transfer_id))
        return done

    def rest(self) -> list[list[Posting]]:
        """What never summed to zero (a tampered ledger): written as found, for Beancount
        and ``escrow verify`` to name."""
        rest, self.open = list(self.open.values()), {}
        return rest
