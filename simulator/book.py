"""The true public order book of one simulated market, with Binance-style update ids.

Prices and quantities are integers (units of the tick and of the lot step), so every number the
simulator prints is exact. Every change of a level's quantity takes the next update id, as on
Binance, so a diff event's [U; u] range counts the changes it carries.
"""
from dataclasses import dataclass, field

from sortedcontainers import SortedDict

BID, ASK = "b", "a"


@dataclass
class StepDiff:
    """The changes of one engine step: final quantity per price, and the update ids they used."""

    first_id: int
    last_id: int
    bids: dict = field(default_factory=dict)
    asks: dict = field(default_factory=dict)

    def merge(self, later: "StepDiff") -> None:
        self.last_id = later.last_id
        self.bids.update(later.bids)
        self.asks.update(later.asks)


class Book:
    def __init__(self, first_update_id: int = 1):
        self.bids = SortedDict()  # price -> qty; best bid is the last key
        self.asks = SortedDict()  # best ask is the first key
        self.update_id = first_update_id
        self._pending: StepDiff | None = None

    def set_level(self, side: str, price: int, qty: int) -> None:
        levels = self.bids if side == BID else self.asks
        if levels.get(price, 0) == qty:
            return
        if qty:
            levels[price] = qty
        else:
            del levels[price]
        self.update_id += 1
        if self._pending is None:
            self._pending = StepDiff(self.update_id, self.update_id)
        self._pending.last_id = self.update_id
        (self._pending.bids if side == BID else self._pending.asks)[price] = qty

    def add(self, side: str, price: int, delta: int) -> None:
        levels = self.bids if side == BID else self.asks
        self.set_level(side, price, levels.get(price, 0) + delta)

    def drain(self) -> StepDiff | None:
        """The changes since the last drain (None if nothing changed)."""
        diff, self._pending = self._pending, None
        return diff

    @property
    def best_bid(self) -> tuple[int, int] | None:
        return self.bids.peekitem(-1) if self.bids else None

    @property
    def best_ask(self) -> tuple[int, int] | None:
        return self.asks.peekitem(0) if self.asks else None

    def top(self, limit: int) -> tuple[list, list]:
        """Best `limit` levels per side: bids descending, asks ascending, as (price, qty) pairs."""
        n = len(self.bids)
        bids = [self.bids.peekitem(i) for i in range(n - 1, max(n - 1 - limit, -1), -1)]
        asks = [self.asks.peekitem(i) for i in range(min(limit, len(self.asks)))]
        return bids, asks

    def copy_levels(self) -> tuple[int, list, list]:
        bids, asks = self.top(max(len(self.bids), len(self.asks)))
        return self.update_id, bids, asks
