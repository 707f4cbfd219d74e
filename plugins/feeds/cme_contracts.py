"""Which CME futures contract is the front month on a given day.

Symbols are Databento's GLBX raw symbols: root + month code + one-digit year (``ESZ5``).

* **Equity index (ES, MES, NQ, MNQ)**: quarterly (H M U Z), expiring on the third Friday of the
  contract month. Volume rolls to the next quarter on the Thursday eight days before expiry
  (CME's roll date for equity index futures), so from that Thursday on, the next contract is the
  front month.
* **Crude oil (CL)**: monthly; trading in contract month M ends about three business days before
  the 25th of month M - 1. Approximation used: from the 20th of a month, the front is two months
  ahead, before it one month ahead.
* **Gold (GC)**: the active months G J M Q V Z; the front rolls at the end of the month before
  delivery (approximation: from the 25th of the month before an active month, the next active
  month is the front).
"""

from __future__ import annotations

from datetime import date, timedelta

MONTH_CODES = "FGHJKMNQUVXZ"
QUARTERLY = (3, 6, 9, 12)
GOLD_ACTIVE = (2, 4, 6, 8, 10, 12)
EQUITY_INDEX = {"ES", "MES", "NQ", "MNQ", "RTY", "M2K", "YM", "MYM"}


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    friday = first + timedelta(days=(4 - first.weekday()) % 7)
    return friday + timedelta(weeks=2)


def equity_roll_date(year: int, month: int) -> date:
    """The Thursday eight days before the contract's expiry."""
    return third_friday(year, month) - timedelta(days=8)


def contract_symbol(root: str, year: int, month: int) -> str:
    return f"{root}{MONTH_CODES[month - 1]}{year % 10}"


def front_month(root: str, on: date) -> str:
    """The front-month contract of ``root`` on date ``on``, e.g. ``front_month("ES", ...)``."""
    root = root.upper()
    if root in EQUITY_INDEX:
        year = on.year
        for month in QUARTERLY:
            if on < equity_roll_date(year, month):
                return contract_symbol(root, year, month)
        return contract_symbol(root, year + 1, 3)
    if root in ("CL", "MCL"):
        ahead = 2 if on.day >= 20 else 1
        month = on.month + ahead
        return contract_symbol(root, on.year + (month - 1) // 12, (month - 1) % 12 + 1)
    if root in ("GC", "MGC"):
        year, month = _next_active(on.year, on.month)
        next_calendar_month = on.month % 12 + 1
        if month == next_calendar_month and on.day >= 25:  # rolled ahead of delivery
            year, month = _next_active(year, month)
        return contract_symbol(root, year, month)
    raise ValueError(f"no front-month rule for {root!r}")


def _next_active(year: int, month: int) -> tuple[int, int]:
    """The first gold active month strictly after (year, month)."""
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if month in GOLD_ACTIVE:
            return year, month
