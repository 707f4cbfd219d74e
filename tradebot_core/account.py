"""The account: balance from realized P&L, and the tier (symbol, size) the balance allows.

Tiers let an account start on micros and move up. The default ``account.tiers`` is the capital
plan (starting balance $2,500; see :meth:`AccountSettings.default_tiers`):

====  ============  ===========  ======  =============
tier  name          min_balance  symbol  max_contracts
====  ============  ===========  ======  =============
1     MES building  (below 3500) MES     1
2     ES entry      3,500        ES      1
3     ES growth     5,000        ES      1
4     ES scaling    7,500        ES      2
5     ES full       10,000       ES      3
====  ============  ===========  ======  =============

One contract until the balance is well past the ES entry point, then one more at each of the last
two steps. ``max_contracts`` caps the router's size; ``risk.max_position`` (default 2) still caps
what is open at once, so Tier 5's third contract needs ``risk.max_position: 3``. The default plan
applies when ``symbol`` is MES or ES (its symbols must tick like the feed's); with another symbol
there are no tiers unless ``account.tiers`` is set. ``tiers: []`` means no tiers.

Hysteresis: a tier is *entered upward* when the balance reaches its ``min_balance``, but *left
downward* only when the balance falls below ``min_balance - demote_buffer``. ``demote_buffer``
(``account.demote_buffer``) defaults, per tier, to half the width of the tier being left: its
``min_balance`` minus the previous tier's, halved (ES entry: (3,500 - 2,000) / 2 = $750, so it is
left below $2,750). A balance wobbling around a threshold by less than the buffer keeps its tier;
a real drawdown demotes. A demotion goes down one tier at a time, applying each lower tier's own
buffer, so a single large loss ends in the same tier as several small ones.

The tier an account *starts or restores with* (:meth:`Account.tier_for`) uses the plain
thresholds, with no history: the highest tier whose ``min_balance`` the balance reaches (the
lowest tier below that). A restarted run or a backtest day therefore starts from the balance alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .config import AccountSettings, Tier


@dataclass(frozen=True)
class TierChange:
    old: Tier | None
    new: Tier
    balance: Decimal

    @property
    def promoted(self) -> bool:
        return self.old is None or self.new.min_balance > self.old.min_balance


class Account:
    def __init__(
        self, settings: AccountSettings, default_symbol: str, balance: Decimal | None = None
    ) -> None:
        self.settings = settings
        self.default_symbol = default_symbol
        self.balance = settings.starting_balance if balance is None else balance
        self._tiers = sorted(settings.tiers_for(default_symbol), key=lambda t: t.min_balance)
        self.tier: Tier | None = self.tier_for(self.balance)

    @property
    def tiers(self) -> list[Tier]:
        """The tiers in force, lowest first (empty: no tiers)."""
        return list(self._tiers)

    def tier_for(self, balance: Decimal) -> Tier | None:
        """The tier of a balance with no history (start, restore): plain thresholds."""
        current = None
        for tier in self._tiers:
            if balance >= tier.min_balance:
                current = tier
        return current or (self._tiers[0] if self._tiers else None)

    def demote_below(self, tier: Tier) -> Decimal | None:
        """The balance below which ``tier`` is left downward (None for the lowest tier)."""
        index = self._tiers.index(tier)
        if index == 0:
            return None
        buffer = self.settings.demote_buffer
        if buffer is None:
            buffer = (tier.min_balance - self._tiers[index - 1].min_balance) / 2
        return tier.min_balance - buffer

    def next_tier(self, current: Tier | None, balance: Decimal) -> Tier | None:
        """The tier after a balance change, from ``current``: promotion at ``min_balance``,
        demotion only below ``min_balance - demote_buffer`` (one tier at a time)."""
        if current is None or current not in self._tiers:
            return self.tier_for(balance)
        plain = self.tier_for(balance)
        if plain is not None and plain.min_balance > current.min_balance:
            return plain
        tier = current
        while True:
            floor = self.demote_below(tier)
            if floor is None or balance >= floor:
                return tier
            tier = self._tiers[self._tiers.index(tier) - 1]

    def tiers_along(self, balance: Decimal, steps: Iterable[Decimal]) -> list[Tier | None]:
        """The tier at the start (plain thresholds) and after each P&L step, with hysteresis."""
        tier = self.tier_for(balance)
        path = [tier]
        for step in steps:
            balance += step
            tier = self.next_tier(tier, balance)
            path.append(tier)
        return path

    @property
    def symbol(self) -> str:
        return self.tier.symbol if self.tier else self.default_symbol

    @property
    def max_contracts(self) -> int | None:
        return self.tier.max_contracts if self.tier else None

    def book(self, net_pnl: Decimal) -> TierChange | None:
        """Add a trade's net P&L; returns the tier change it caused, if any."""
        self.balance += net_pnl
        new = self.next_tier(self.tier, self.balance)
        if new is not None and new != self.tier:
            change = TierChange(old=self.tier, new=new, balance=self.balance)
            self.tier = new
            return change
        return None
