"""Which CME futures contract is the front month on a given day.

Symbols are Databento's GLBX raw symbols: root + month code + one-digit year (``ESZ5``,
``CLF5``), as in the recorded samples (``ESH4``, ``ESM3``).

* **Equity index (ES, MES, NQ, MNQ, RTY, M2K, YM, MYM)**: quarterly (H M U Z), expiring on the
  third Friday of the contract month. CME's convention (CME Group, "Equity Index Roll Dates",
  cmegroup.com/trading/equity-index/rolldates.html) is to roll eight calendar days before
  expiry, the *roll date*: the Thursday of the week before expiry. From the roll date on, the
  next quarter is the front month (``ESZ5`` until Wednesday 2025-12-10, ``ESH6`` from Thursday
  2025-12-11; expiry Friday 2025-12-19).
* **Crude oil (CL, MCL)**: monthly. NYMEX rule: trading in contract month M terminates 3
  business days before the 25th calendar day of month M-1; if the 25th is not a business day,
  4 business days before it (NYMEX Light Sweet Crude Oil contract specs, "Termination of
  Trading"). Business days are weekdays less the US holidays CME closes for (computed here by
  rule: an approximation of the exchange's published holiday calendar). The contract is the
  front until the day before its last trading day; on that day the next month is the front.
* **Gold (GC, MGC)**: the active months G J M Q V Z. Volume leaves a contract before its first
  notice day (the last business day of the month before delivery). Approximation used: from the
  25th of the month before an active month, the next active month is the front.
"""

from __future__ import annotations

from datetime import date, timedelta

MONTH_CODES = "FGHJKMNQUVXZ"
QUARTERLY = (3, 6, 9, 12)
GOLD_ACTIVE = (2, 4, 6, 8, 10, 12)
EQUITY_INDEX = {"ES", "MES", "NQ", "MNQ", "RTY", "M2K", "YM", "MYM"}
CRUDE = {"CL", "MCL"}
GOLD = {"GC", "MGC"}
GOLD_ROLL_DAY = 25


def third_friday(year: int, month: int) -> date:
    """Expiry of a quarterly equity index contract."""
    first = date(year, month, 1)
    friday = first + timedelta(days=(4 - first.weekday()) % 7)
    return friday + timedelta(weeks=2)


def equity_roll_date(year: int, month: int) -> date:
    """CME's roll date: the Thursday eight calendar days before the contract's expiry."""
    return third_friday(year, month) - timedelta(days=8)


def crude_last_trading_day(year: int, month: int) -> date:
    """Last trading day of the crude oil contract for (year, month)."""
    day = date(*_previous_month(year, month), 25)
    back = 3 if is_business_day(day) else 4
    while back:
        day -= timedelta(days=1)
        if is_business_day(day):
            back -= 1
    return day


def is_business_day(day: date) -> bool:
    """A weekday that is not one of the US holidays CME closes for (as observed)."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def _holidays(year: int) -> set[date]:
    """New Year, MLK, Presidents, Good Friday, Memorial, Juneteenth (2022 on), Independence,
    Labor, Thanksgiving and Christmas days, a Saturday one observed on the Friday before and a
    Sunday one on the Monday after."""
    fixed = [date(year, 1, 1), date(year, 7, 4), date(year, 12, 25)]
    if year >= 2022:
        fixed.append(date(year, 6, 19))
    observed = {
        d - timedelta(days=1)
        if d.weekday() == 5
        else d + timedelta(days=1)
        if d.weekday() == 6
        else d
        for d in fixed
    }
    observed |= {
        _nth_weekday(year, 1, 0, 3),  # MLK: 3rd Monday of January
        _nth_weekday(year, 2, 0, 3),  # Presidents: 3rd Monday of February
        _nth_weekday(year, 6, 0, 1) - timedelta(weeks=1),  # Memorial: last Monday of May
        _nth_weekday(year, 9, 0, 1),  # Labor: 1st Monday of September
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving: 4th Thursday of November
        _easter(year) - timedelta(days=2),  # Good Friday
    }
    return observed


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7, weeks=n - 1)


def _easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month, day = divmod(h + ll - 7 * m + 114, 31)
    return date(year, month, day + 1)


def contract_symbol(root: str, year: int, month: int) -> str:
    """``contract_symbol("ES", 2025, 12)`` -> ``ESZ5``."""
    return f"{root}{MONTH_CODES[month - 1]}{year % 10}"


def front_month(root: str, on: date) -> str:
    """The front-month contract of ``root`` on date ``on``: ``front_month("ES", d)`` -> ``ESZ5``.

    Raises ``ValueError`` for a root without a rule (see the module docstring for the rules).
    """
    root = root.upper()
    if root in EQUITY_INDEX:
        for year, month in _months_from(on.year, on.month):
            if month in QUARTERLY and on < equity_roll_date(year, month):
                return contract_symbol(root, year, month)
    if root in CRUDE:
        for year, month in _months_from(on.year, on.month):
            if on < crude_last_trading_day(year, month):
                return contract_symbol(root, year, month)
    if root in GOLD:
        for year, month in _months_from(on.year, on.month):
            if month not in GOLD_ACTIVE:
                continue
            roll = date(*_previous_month(year, month), GOLD_ROLL_DAY)
            if on < roll:
                return contract_symbol(root, year, month)
    known = ", ".join(sorted(EQUITY_INDEX | CRUDE | GOLD))
    raise ValueError(f"no front-month rule for {root!r} (known: {known}); name the contract")


def _months_from(year: int, month: int, count: int = 15) -> list[tuple[int, int]]:
    """(year, month) from the given month on, ``count`` of them."""
    months = []
    for _ in range(count):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)
