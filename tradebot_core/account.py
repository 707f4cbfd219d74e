"""The account: balance from realized P&L, and the tier (symbol, size) the balance allows.

Tiers let an account start on micros and move up: e.g. MES below $3,500, ES from $3,500 with one
contract, ES with two from $7,500. Demotion is symmetric: the tier follows the balance down.
"""

from __future__ import annotations

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
        self._tiers = sorted(settings.tiers, key=lambda t: t.min_balance)
        self.tier: Tier | None = self.tier_for(self.balance)

    def tier_for(self, balance: Decimal) -> Tier | None:
        current = None
        for tier in self._tiers:
            if balance >= tier.min_balance:
                current = tier
        return current or (self._tiers[0] if self._tiers else None)

    @property
    def symbol(self) -> str:
        return self.tier.symbol if self.tier else self.default_symbol

    @property
    def max_contracts(self) -> int | None:
        return self.tier.max_contracts if self.tier else None

    def book(self, net_pnl: Decimal) -> TierChange | None:
        """Add a trade's net P&L; returns the tier change it caused, if any."""
        self.balance += net_pnl
        new = self.tier_for(self.balance)
        if new is not None and new != self.tier:
            change = TierChange(old=self.tier, new=new, balance=self.balance)
            self.tier = new
            return change
        return None
