"""Trading calendars in exchange time, from the maintained ``exchange_calendars`` package.

The module-level functions answer for the **CME equity index futures** (ES, MES, NQ...), from
``exchange_calendars``' ``CMES`` calendar:

- a trading day D runs on Globex from 18:00 ET on the evening before D to 17:00 ET on D, or to
  the early close (13:00 ET = 12:00 CT on the days ``CMES`` lists: the Monday holidays, July 4,
  Thanksgiving, the day after, Christmas Eve);
- New Year's Day, Good Friday and Christmas have no session;
- regular trading hours (RTH) are 09:30-16:00 ET, cut at an early close;
- a timestamp at or after 18:00 ET belongs to the next trading day (a Friday evening or a
  holiday belongs to the next session: Christmas Day to December 26).

``CMES`` itself closes at 17:00 CT (18:00 ET); the equity futures halt at 16:00 CT for their
daily maintenance break, so the Globex close here is the earlier of the two.

:func:`get` gives the same answers for any other ``exchange_calendars`` calendar: ``get("XNYS")``
for US equities (sessions 09:30-16:00 ET, early closes at 13:00 ET).

Times are ns since the Unix epoch, UTC; DST is handled by the time zone (RTH opens at 13:30 UTC in
summer, 14:30 UTC in winter). Building a calendar takes a few tenths of a second, so each one is
built lazily, for a window around the dates asked about (grown when a question falls outside it),
and its sessions are precomputed into plain lists and dicts: every function here is a dict lookup
or a bisection, cheap enough to call per bar.
"""

from __future__ import annotations

import bisect
import threading
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

EXCHANGE_TZ = ZoneInfo("America/New_York")
CALENDAR_NAME = "CMES"  # exchange_calendars' CME (Globex) calendar
EQUITIES_CALENDAR = "XNYS"  # the NYSE: US equity sessions (the Polygon feed's days)
RTH_OPEN = time(9, 30)
RTH_CLOSE = time(16, 0)
GLOBEX_CLOSE = time(17, 0)  # ET: CME equity futures halt 16:00-17:00 CT
DAY_ROLL = time(18, 0)  # ET: the Globex open, where the next trading day starts


@dataclass(frozen=True)
class DayBounds:
    """One session, ns UTC: the whole session and its regular trading hours."""

    day: date
    open_ns: int
    close_ns: int
    rth_open_ns: int
    rth_close_ns: int
    early_close: bool


WINDOW_DAYS = 400
"""How far around the dates asked for a calendar is built (each build costs about the same, a
tenth of a second or more, whatever its length); it grows when a later question needs more."""


@dataclass(frozen=True)
class _Sessions:
    """The sessions of one built window of a calendar (replaced whole when the window grows)."""

    start: date  # the window asked of exchange_calendars, both ends included
    end: date
    days: list[date]
    ordinals: list[int]
    bounds: dict[date, DayBounds]
    rolls: np.ndarray
    roll_list: list[int]
    day_array: np.ndarray
    first_open: int


class TradingCalendar:
    """The sessions of one ``exchange_calendars`` calendar, precomputed for fast lookups.

    ``session_close`` (exchange-time wall clock, ET) caps every session's close; ``rth`` is the
    regular-hours window (ET) inside each session. Use :func:`get` rather than building one.

    Sessions are built only for a window around the dates asked about (not the 20 years
    ``exchange_calendars`` covers), and the window grows on demand: the answers are the same.
    """

    def __init__(
        self,
        name: str,
        *,
        session_close: time | None = None,
        rth: tuple[time, time] = (RTH_OPEN, RTH_CLOSE),
    ) -> None:
        self.name = name
        self._session_close = session_close
        self._rth = rth
        self._lock = threading.Lock()
        self._class: Any = None
        self._limit_days: tuple[date, date] | None = None
        self._sessions: _Sessions | None = None

    # -- building ------------------------------------------------------------------------------

    @property
    def _cls(self) -> Any:
        """The exchange_calendars class (importing it costs ~1 s: only on a cache miss)."""
        if self._class is None:
            import exchange_calendars

            dispatcher = exchange_calendars.calendar_utils.global_calendar_dispatcher
            try:  # the calendar's class, without building its default 20 years
                cls = dispatcher._calendar_factories[dispatcher.resolve_alias(self.name)]
            except (AttributeError, KeyError, TypeError):
                with warnings.catch_warnings():  # its pandas calls warn of pandas 4 changes
                    warnings.simplefilter("ignore")
                    cls = type(exchange_calendars.get_calendar(self.name))
            self._class = cls
        return self._class

    @property
    def _limits(self) -> tuple[date, date]:
        """The first and last days the calendar covers (from the disk cache when it can)."""
        if self._limit_days is None:
            cached = _cache_load(self._cache_key("limits"))
            if cached is not None:
                self._limit_days = (
                    date.fromordinal(int(cached["limits"][0])),
                    date.fromordinal(int(cached["limits"][1])),
                )
            else:
                cls = self._cls
                first, last = cls.default_start().date(), cls.default_end().date()
                self._limit_days = (first, last)
                _cache_save(
                    self._cache_key("limits"),
                    limits=np.array([first.toordinal(), last.toordinal()], dtype=np.int64),
                )
        return self._limit_days

    def _cache_key(self, what: str) -> str:
        rth = "-".join(t.strftime("%H%M") for t in self._rth)
        close = self._session_close.strftime("%H%M") if self._session_close else "none"
        return f"{self.name}-{_calendars_version()}-{close}-{rth}-{what}"

    def _covering(self, lo: date, hi: date) -> _Sessions:
        """The sessions, built (or grown) to cover ``lo`` to ``hi`` as far as the limits allow."""
        sessions = self._sessions
        first, last = self._limits
        lo, hi = max(lo, first), min(hi, last)
        if sessions is not None and sessions.start <= lo and hi <= sessions.end:
            return sessions
        with self._lock:
            sessions = self._sessions
            if sessions is not None and sessions.start <= lo and hi <= sessions.end:
                return sessions
            # whole years around the window, so that runs on nearby dates share a cached build
            start = date.fromordinal(lo.toordinal() - WINDOW_DAYS).replace(month=1, day=1)
            end = date.fromordinal(hi.toordinal() + WINDOW_DAYS).replace(month=12, day=31)
            start, end = max(first, start), min(last, end)
            if sessions is not None:
                start, end = min(start, sessions.start), max(end, sessions.end)
            self._sessions = sessions = self._build(start, end)
        return sessions

    def _build(self, start: date, end: date) -> _Sessions:
        key = self._cache_key(f"{start.isoformat()}-{end.isoformat()}")
        cached = _cache_load(key)
        if cached is None:
            cached = self._compute(start, end)
            _cache_save(key, **cached)
        ordinals = [int(o) for o in cached["ordinals"]]
        days = [date.fromordinal(o) for o in ordinals]
        opens, closes = cached["opens"], cached["closes"]
        rolls = cached["rolls"]
        return _Sessions(
            start=start,
            end=end,
            days=days,
            ordinals=ordinals,
            bounds={
                day: DayBounds(day, int(o), int(c), int(ro), int(rc), bool(e))
                for day, o, c, ro, rc, e in zip(
                    days,
                    opens,
                    closes,
                    cached["rth_open"],
                    cached["rth_close"],
                    cached["early"],
                    strict=True,
                )
            },
            rolls=rolls,
            roll_list=rolls.tolist(),
            day_array=np.array(ordinals, dtype=np.int64),
            first_open=int(opens[0]) if len(opens) else 0,
        )

    def _compute(self, start: date, end: date) -> dict[str, np.ndarray]:
        """The sessions from exchange_calendars (pandas): the slow path, cached on disk."""
        import pandas as pd

        with warnings.catch_warnings():  # its pandas calls warn of pandas 4 changes
            warnings.simplefilter("ignore")
            schedule = self._cls(start=start.isoformat(), end=end.isoformat()).schedule
        dates = pd.DatetimeIndex(schedule.index).tz_localize(None).normalize()

        def wall(t: time) -> np.ndarray:  # t (ET) on every session date, ns UTC
            local = dates + pd.Timedelta(hours=t.hour, minutes=t.minute)
            utc = local.tz_localize(EXCHANGE_TZ).tz_convert("UTC")
            return utc.as_unit("ns").asi8.astype(np.int64)

        def column(key: str) -> np.ndarray:
            return pd.DatetimeIndex(schedule[key]).as_unit("ns").asi8.astype(np.int64)

        rth = self._rth
        opens, closes = column("open"), column("close")
        regular_close = wall(self._session_close) if self._session_close else closes
        closes = np.minimum(closes, regular_close)
        rth_open = np.maximum(wall(rth[0]), opens)
        rth_close_regular = wall(rth[1])
        rth_close = np.minimum(rth_close_regular, closes)
        early = (closes < regular_close) | (rth_close < rth_close_regular)

        ordinals = np.array([d.date().toordinal() for d in dates], dtype=np.int64)
        # the day roll of each session: 18:00 ET on its date; a timestamp belongs to the first
        # session whose roll is later than it
        return {
            "ordinals": ordinals,
            "opens": opens,
            "closes": closes,
            "rth_open": rth_open,
            "rth_close": rth_close,
            "early": np.asarray(early, dtype=bool),
            "rolls": wall(DAY_ROLL),
        }

    def _around(self, day: date) -> _Sessions:
        return self._covering(day, day)

    def _around_ns(self, lo_ns: int, hi_ns: int) -> _Sessions:
        """Sessions covering the trading days of timestamps from ``lo_ns`` to ``hi_ns``: their
        ET dates, a week before (the session a timestamp falls in opened before it) and after
        (after 18:00 ET, the next session: beyond a weekend and a holiday)."""
        lo, hi = et_time(lo_ns).date(), et_time(hi_ns).date()
        return self._covering(
            date.fromordinal(lo.toordinal() - 7), date.fromordinal(hi.toordinal() + 7)
        )

    # -- questions -----------------------------------------------------------------------------

    @property
    def days(self) -> list[date]:
        """The sessions built so far (a window around the dates asked about)."""
        return self._sessions.days if self._sessions is not None else []

    @property
    def first_day(self) -> date:
        """The first day the calendar can answer for."""
        return self._limits[0]

    @property
    def last_day(self) -> date:
        """The last day the calendar can answer for."""
        return self._limits[1]

    def trading_days(self, start: date, end: date) -> list[date]:
        """Sessions from ``start`` to ``end``, both included."""
        if end < start:
            return []
        if end < self.first_day or start > self.last_day:
            raise ValueError(
                f"the {self.name} calendar covers {self.first_day} to {self.last_day}, "
                f"not {start} to {end}"
            )
        s = self._covering(start, end)
        lo = bisect.bisect_left(s.ordinals, start.toordinal())
        hi = bisect.bisect_right(s.ordinals, end.toordinal())
        return s.days[lo:hi]

    def is_trading_day(self, day: date) -> bool:
        self._check_covered(day)
        return day in self._around(day).bounds

    def bounds(self, day: date) -> DayBounds:
        """Everything about session ``day``; a ValueError if there is none."""
        s = self._sessions
        if s is None or not s.start <= day <= s.end:
            self._check_covered(day)
            s = self._around(day)
        try:
            return s.bounds[day]
        except KeyError:
            raise ValueError(f"{day} is not a {self.name} trading day") from None

    def session_bounds(self, day: date) -> tuple[int, int]:
        b = self.bounds(day)
        return b.open_ns, b.close_ns

    def rth_bounds(self, day: date) -> tuple[int, int]:
        b = self.bounds(day)
        return b.rth_open_ns, b.rth_close_ns

    def is_early_close(self, day: date) -> bool:
        return self.bounds(day).early_close

    def trading_date_of(self, ts_ns: int) -> date:
        """The session a timestamp belongs to: after 18:00 ET, the next session."""
        ts_ns = int(ts_ns)
        s = self._sessions
        if s is not None:
            i = bisect.bisect_right(s.roll_list, ts_ns)
            if 0 < i < len(s.days):  # inside the built window: the common case
                return s.days[i]
        s = self._around_ns(ts_ns, ts_ns)
        i = bisect.bisect_right(s.roll_list, ts_ns)
        if i == len(s.days) or (i == 0 and (s.start > self.first_day or ts_ns < s.first_open)):
            raise ValueError(
                f"{et_time(ts_ns):%Y-%m-%d %H:%M} ET is outside the {self.name} calendar "
                f"({self.first_day} to {self.last_day})"
            )
        return s.days[i]

    def trading_dates_of(self, ts_ns: np.ndarray) -> np.ndarray:
        """:meth:`trading_date_of` for an array of timestamps: ``datetime64[D]`` values."""
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        if not len(ts_ns):
            return np.empty(0, dtype="datetime64[D]")
        s = self._around_ns(int(ts_ns.min()), int(ts_ns.max()))
        i = np.searchsorted(s.rolls, ts_ns, side="right")
        if i.max() >= len(s.days):
            raise ValueError(f"timestamps past the {self.name} calendar's end ({self.last_day})")
        ordinals = s.day_array[i]
        return (ordinals - date(1970, 1, 1).toordinal()).astype("datetime64[D]")

    def _check_covered(self, day: date) -> None:
        if not self.first_day <= day <= self.last_day:
            raise ValueError(
                f"{day} is outside the {self.name} calendar ({self.first_day} to "
                f"{self.last_day}); a newer exchange_calendars covers later years"
            )


_CALENDAR_OPTIONS: dict[str, dict[str, Any]] = {CALENDAR_NAME: {"session_close": GLOBEX_CLOSE}}
_calendars: dict[str, TradingCalendar] = {}
_lock = threading.Lock()


def _cache_dir() -> Path | None:
    """Where built calendars are kept between processes: ``TRADEBOT_CACHE_DIR``, else the
    user's cache folder; None (no cache) when that cannot be written."""
    import os

    folder = os.environ.get("TRADEBOT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tradebot"
    )
    return Path(folder) / "calendars"


def _calendars_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exchange_calendars")
    except PackageNotFoundError:
        return "unknown"


def _cache_load(key: str) -> dict[str, np.ndarray] | None:
    folder = _cache_dir()
    path = folder / f"{key}.npz" if folder else None
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError):  # damaged: build again
        return None


def _cache_save(key: str, **arrays: np.ndarray) -> None:
    """Write atomically; a read-only machine just goes without the cache."""
    import os
    import tempfile

    folder = _cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, folder / f"{key}.npz")
    except OSError:
        pass


def get(name: str = CALENDAR_NAME) -> TradingCalendar:
    """The calendar ``name`` (an ``exchange_calendars`` code), built once on first use."""
    calendar = _calendars.get(name)
    if calendar is None:
        with _lock:
            calendar = _calendars.get(name)
            if calendar is None:
                calendar = TradingCalendar(name, **_CALENDAR_OPTIONS.get(name, {}))
                _calendars[name] = calendar
    return calendar


def trading_days(start: date, end: date) -> list[date]:
    """CME trading days from ``start`` to ``end``, both included."""
    return get().trading_days(start, end)


def is_trading_day(day: date) -> bool:
    """Whether CME Globex has a session for trading day ``day``."""
    return get().is_trading_day(day)


def session_bounds(day: date) -> tuple[int, int]:
    """Globex open (18:00 ET the evening before) and close (17:00 ET or early) of ``day``."""
    return get().session_bounds(day)


def rth_bounds(day: date) -> tuple[int, int]:
    """Regular trading hours of ``day``, ns UTC: 09:30 ET to 16:00 ET or the early close."""
    return get().rth_bounds(day)


def is_early_close(day: date) -> bool:
    """Whether Globex closes early on ``day`` (13:00 ET on the CMES calendar's half days)."""
    return get().is_early_close(day)


def trading_date_of(ts_ns: int) -> date:
    """The CME trading day a timestamp belongs to (at or after 18:00 ET: the next session)."""
    return get().trading_date_of(ts_ns)


def et_time(ts_ns: int) -> datetime:
    """A timestamp (ns UTC) as an aware datetime in exchange time (US Eastern)."""
    seconds, ns = divmod(int(ts_ns), 10**9)
    return datetime.fromtimestamp(seconds, EXCHANGE_TZ).replace(microsecond=ns // 1000)


def et_clock(ts_ns: int) -> time:
    """The exchange-time wall clock of a timestamp (e.g. ``09:30``), for time-of-day rules."""
    return et_time(ts_ns).time()
