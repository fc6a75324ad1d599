"""One synthetic market: a random-walk mid with volatility regimes, background liquidity,
the desk's quote ladder, and takers that trade against the book.

Everything random comes from the market's own `random.Random`, seeded from the run's seed and
the symbol, and the engine advances in fixed steps, so a seed gives the same sequence of books.
"""
import math
import random
import zlib
from dataclasses import dataclass
from decimal import Decimal

from .book import ASK, BID, Book
from .catalog import MarketSpec
from .desk import DeskAccount, Order

BAND_PCT = 2.0  # the depth band the desk's ladder reaches (DESIGN.md: depth within ±2 % of mid)
BACKGROUND_REACH_PCT = 3.0  # background liquidity extends past the band so the band is always covered
BACKGROUND_LEVELS = 30  # per side
POST_ONLY_LEVELS = 3  # the desk's best levels are post-only; the rest GTC


@dataclass
class Conditions:
    """What scenarios change, as multipliers and switches (1.0 / True = normal)."""

    spread: float = 1.0
    depth: float = 1.0
    volatility: float = 1.0
    desk_quoting: bool = True
    cancel_storm: bool = False


@dataclass
class PublicTrade:
    trade_id: int
    price: int
    qty: int
    buyer_is_maker: bool
    time_ms: int


class SyntheticMarket:
    def __init__(self, spec: MarketSpec, *, market_type: str, desk: DeskAccount, seed: int, step_s: float):
        self.spec = spec
        self.market_type = market_type
        self.desk = desk
        self.step_s = step_s
        self.rng = random.Random(seed * 1_000_003 + zlib.crc32(f"{market_type}:{spec.symbol}".encode()))
        self.price_scale = 10**spec.price_decimals
        self.qty_scale = 10**spec.qty_decimals
        self.book = Book(first_update_id=self.rng.randrange(10**9, 10**10))
        self.mid = spec.start_price * self.price_scale  # in price units, float
        self.regime = 1.0
        self.conditions = Conditions()
        self._background_depth = 1.0  # the depth multiplier the resting background was sized for
        self.background = {BID: {}, ASK: {}}  # price -> qty
        self.desk_orders = {BID: {}, ASK: {}}  # price -> [Order] in time priority
        self.ladder = {BID: [None] * spec.desk_levels, ASK: [None] * spec.desk_levels}
        self.next_trade_id = self.rng.randrange(10**8, 10**9)
        self.trades: list[PublicTrade] = []  # this step's trades; the venue publishes and clears them
        self.locked = False
        self.steps = 0
        self.last_mid = self.mid

    # Sizes and prices ------------------------------------------------------------------------

    def price_of(self, pct_from_mid: float, side: str) -> int:
        raw = self.mid * (1 - pct_from_mid / 100) if side == BID else self.mid * (1 + pct_from_mid / 100)
        return max(1, math.floor(raw) if side == BID else math.ceil(raw))

    def lots_for_usd(self, usd: float) -> int:
        price = self.mid / self.price_scale
        return max(1, int(usd / price * self.qty_scale))

    def usd_per_unit(self) -> float:
        """USD value of one (price unit × lot): quote assets of the demo are USD stablecoins."""
        return 1 / (self.price_scale * self.qty_scale)

    def _refresh(self, side: str, price: int) -> None:
        desk_qty = sum(o.remaining for o in self.desk_orders[side].get(price, ()))
        self.book.set_level(side, price, self.background[side].get(price, 0) + desk_qty)

    # The engine step -------------------------------------------------------------------------

    def warm_up(self, now_ms: int) -> None:
        """Fill the book before anyone connects: full background and the desk's ladder."""
        while min(len(self.background[BID]), len(self.background[ASK])) < BACKGROUND_LEVELS:
            self._churn_background()
        self._quote(now_ms)
        self.book.drain()

    def step(self, now_ms: int) -> None:
        self.steps += 1
        self._move_mid()
        self._prune_background()
        if self.conditions.depth != self._background_depth:
            self._rescale_background(self.conditions.depth / self._background_depth)
            self._background_depth = self.conditions.depth
        if self.steps % max(1, int(1 / self.step_s)) == 0:
            self.locked = self.desk.evaluate_lock(self.spec.symbol, now_ms, usd_per_unit=self.usd_per_unit())
        if self.conditions.desk_quoting and not self.locked:
            self._quote(now_ms)
        elif any(self.ladder[BID]) or any(self.ladder[ASK]):
            self._withdraw(now_ms)
        self._churn_background()
        self._takers(now_ms)
        self._desk_hedge(now_ms)

    def _move_mid(self) -> None:
        if self.rng.random() < self.step_s / 90:  # regime switches about every 1.5 minutes
            self.regime = self.rng.choice((0.6, 1.0, 1.0, 2.5))
        sigma = self.spec.volatility_pct_per_min / 100 * math.sqrt(self.step_s / 60)
        sigma *= self.regime * self.conditions.volatility
        start = self.spec.start_price * self.price_scale
        self.last_mid = self.mid
        # A weak pull towards the start price keeps a long demo's prices recognisable.
        self.mid *= math.exp(self.rng.gauss(0, sigma) + 0.0005 * self.step_s * math.log(start / self.mid))

    def _background_half_spread(self) -> float:
        return self.spec.background_half_spread_pct * self.conditions.spread

    def _prune_background(self) -> None:
        half = self._background_half_spread()
        inner_bid, inner_ask = self.price_of(half, BID), self.price_of(half, ASK)
        outer_bid, outer_ask = self.price_of(BACKGROUND_REACH_PCT * 1.2, BID), self.price_of(
            BACKGROUND_REACH_PCT * 1.2, ASK)
        for price in [p for p in self.background[BID] if p > inner_bid or p < outer_bid]:
            del self.background[BID][price]
            self._refresh(BID, price)
        for price in [p for p in self.background[ASK] if p < inner_ask or p > outer_ask]:
            del self.background[ASK][price]
            self._refresh(ASK, price)

    def _rescale_background(self, ratio: float) -> None:
        """Other participants pull (or return) liquidity when a scenario changes the depth."""
        for side in (BID, ASK):
            for price, qty in list(self.background[side].items()):
                self.background[side][price] = max(1, int(qty * ratio))
                self._refresh(side, price)

    def _background_lots(self) -> int:
        per_level = self.spec.background_side_usd * self.conditions.depth / BACKGROUND_LEVELS
        return self.lots_for_usd(per_level * self.rng.uniform(0.3, 1.7))

    def _churn_background(self) -> None:
        half = self._background_half_spread()
        for side in (BID, ASK):
            levels = self.background[side]
            for _ in range(2):
                roll = self.rng.random()
                if len(levels) < BACKGROUND_LEVELS or (roll < 0.4 and len(levels) < BACKGROUND_LEVELS * 1.2):
                    reach = max(BACKGROUND_REACH_PCT, half + 0.5)
                    price = self.price_of(self.rng.uniform(half, reach), side)
                    if self._would_cross(side, price):
                        continue
                    levels[price] = levels.get(price, 0) + self._background_lots()
                elif roll < 0.7 and levels:
                    price = self.rng.choice(list(levels))
                    levels[price] = self._background_lots()
                elif levels:
                    price = self.rng.choice(list(levels))
                    del levels[price]
                else:
                    continue
                self._refresh(side, price)

    def _would_cross(self, side: str, price: int) -> bool:
        if side == BID:
            best = self.book.best_ask
            return best is not None and price >= best[0]
        best = self.book.best_bid
        return best is not None and price <= best[0]

    # The desk's ladder -----------------------------------------------------------------------

    def ladder_targets(self, side: str) -> list[tuple[int, int]]:
        """(price, lots) per ladder level: small at the touch, growing towards the band's edge."""
        n = self.spec.desk_levels
        half = self.spec.desk_half_spread_pct * self.conditions.spread
        weights = [1 + 3 * i / (n - 1) for i in range(n)]
        total = sum(weights)
        targets = []
        for i in range(n):
            if half < BAND_PCT:
                pct = half + (BAND_PCT - half) * (i / (n - 1)) ** 1.5
            else:
                pct = half + 0.1 * i
            usd = self.spec.desk_side_usd * self.conditions.depth * weights[i] / total
            targets.append((self.price_of(pct, side), self.lots_for_usd(usd)))
        return targets

    def _quote(self, now_ms: int) -> None:
        # Move the side that moves away from the other first, so the ladder never crosses itself.
        sides = (ASK, BID) if self.mid >= self.last_mid else (BID, ASK)
        for side in sides:
            targets = self.ladder_targets(side)
            for i, (price, lots) in enumerate(targets):
                order = self.ladder[side][i]
                if order is not None and not order.is_open:
                    order = self.ladder[side][i] = None
                if order is None:
                    self._place(side, i, price, lots, now_ms)
                    continue
                # Sticky quotes: a level moves only when it drifted most of the way to its neighbour,
                # which keeps the calm cancel ratio low (spot re-pricing is a cancel).
                neighbour = targets[i + 1 if i + 1 < len(targets) else i - 1][0]
                tolerance = max(1.0, 0.8 * abs(neighbour - price), 0.1 * abs(price - self.mid))
                drifted = abs(order.price - price) > tolerance or (
                    order.price >= self.mid if side == BID else order.price <= self.mid)
                missized = order.remaining < 0.3 * lots or order.remaining > 2 * lots
                if self.conditions.cancel_storm or drifted or missized:
                    self._requote(side, i, order, price, lots, now_ms)

    def _place(self, side: str, level: int, price: int, lots: int, now_ms: int) -> None:
        post_only = level < POST_ONLY_LEVELS
        if self._would_cross(side, price):
            if post_only and self.market_type == "usdm":
                # GTX that would take: the exchange accepts and immediately expires it.
                order = self._new_order(side, price, lots, "GTX", now_ms, level)
                self.desk.expire(order, now_ms)
            return  # spot LIMIT_MAKER is rejected outright (-2010); GTC would take: skip this step
        tif = "GTX" if post_only and self.market_type == "usdm" else "GTC"
        order = self._new_order(side, price, lots, tif, now_ms, level)
        self.desk_orders[side].setdefault(price, []).append(order)
        self.ladder[side][level] = order
        self._refresh(side, price)

    def _new_order(self, side: str, price: int, lots: int, tif: str, now_ms: int, level) -> Order:
        spot_maker = self.market_type == "spot" and level is not None and level < POST_ONLY_LEVELS
        return self.desk.new_order(
            symbol=self.spec.symbol, side="BUY" if side == BID else "SELL",
            order_type="LIMIT_MAKER" if spot_maker else "LIMIT", tif=tif, price=price, qty=lots,
            now_ms=now_ms, ladder_level=level,
        )

    def _unrest(self, side: str, order: Order) -> None:
        queue = self.desk_orders[side].get(order.price, [])
        if order in queue:
            queue.remove(order)
            if not queue:
                del self.desk_orders[side][order.price]
        self._refresh(side, order.price)

    def _requote(self, side: str, level: int, order: Order, price: int, lots: int, now_ms: int) -> None:
        if self.market_type == "usdm" and not self.conditions.cancel_storm and not self._would_cross(side, price):
            self._unrest(side, order)
            self.desk.amend(order, price=price, qty=lots, now_ms=now_ms)
            self.desk_orders[side].setdefault(price, []).append(order)
            self._refresh(side, price)
            return
        self._unrest(side, order)
        self.desk.cancel(order, now_ms)
        self.ladder[side][level] = None
        self._place(side, level, price, lots, now_ms)

    def _withdraw(self, now_ms: int) -> None:
        for side in (BID, ASK):
            for i, order in enumerate(self.ladder[side]):
                if order is not None and order.is_open:
                    self._unrest(side, order)
                    self.desk.cancel(order, now_ms)
                self.ladder[side][i] = None

    # Trading ---------------------------------------------------------------------------------

    def _takers(self, now_ms: int) -> None:
        if self.rng.random() >= self.spec.takers_per_s * self.step_s:
            return
        taker_buys = self.rng.random() < 0.5
        lots = self.lots_for_usd(self.rng.expovariate(1 / self.spec.taker_usd))
        side = ASK if taker_buys else BID
        levels = self.book.asks if taker_buys else self.book.bids
        while lots > 0 and levels:
            price = levels.peekitem(0 if taker_buys else -1)[0]
            for order in list(self.desk_orders[side].get(price, ())):
                take = min(lots, order.remaining)
                self._trade(price, take, buyer_is_maker=not taker_buys, now_ms=now_ms, desk_order=order)
                lots -= take
                if order.remaining == 0:
                    self._unrest(side, order)
                if lots == 0:
                    break
            available = self.background[side].get(price, 0)
            take = min(lots, available)
            if take:
                self._trade(price, take, buyer_is_maker=not taker_buys, now_ms=now_ms)
                lots -= take
                if available == take:
                    del self.background[side][price]
                else:
                    self.background[side][price] = available - take
            self._refresh(side, price)

    def _trade(self, price: int, lots: int, *, buyer_is_maker: bool, now_ms: int,
               desk_order: Order | None = None, desk_is_taker: bool = False) -> None:
        self.next_trade_id += 1
        self.trades.append(PublicTrade(self.next_trade_id, price, lots, buyer_is_maker, now_ms))
        if desk_order is not None:
            base = Decimal(lots) / self.qty_scale
            quote = Decimal(price * lots) / (self.price_scale * self.qty_scale)
            self.desk.fill(desk_order, trade_id=self.next_trade_id, price=price, qty=lots, base=base, quote=quote,
                           now_ms=now_ms, is_maker=not desk_is_taker, base_asset=self.spec.base_asset,
                           quote_asset=self.spec.quote_asset)

    def _desk_hedge(self, now_ms: int) -> None:
        """Now and then the desk sends an IOC or FOK order that takes background liquidity.

        Self-trade prevention is modelled by letting the desk's taker orders trade only against
        other participants' quantity, never its own quotes.
        """
        if self.locked or not self.conditions.desk_quoting or self.rng.random() >= 0.05 * self.step_s:
            return
        buy = self.rng.random() < 0.5
        side = ASK if buy else BID
        levels = self.background[side]
        if not levels:
            return
        touch = min(levels) if buy else max(levels)
        limit = self.price_of(self.spec.background_half_spread_pct * self.conditions.spread * 1.5, side)
        limit = max(limit, touch) if buy else min(limit, touch)
        lots = self.lots_for_usd(self.rng.uniform(0.2, 2.5) * self.spec.taker_usd)
        tif = "FOK" if self.rng.random() < 0.4 else "IOC"
        order = self.desk.new_order(symbol=self.spec.symbol, side="BUY" if buy else "SELL", order_type="LIMIT",
                                    tif=tif, price=limit, qty=lots, now_ms=now_ms)
        reachable = sorted((p for p in levels if (p <= limit if buy else p >= limit)), reverse=not buy)
        if tif == "FOK" and sum(levels[p] for p in reachable) < lots:
            self.desk.expire(order, now_ms)
            return
        for price in reachable:
            take = min(order.remaining, levels[price])
            self._trade(price, take, buyer_is_maker=not buy, now_ms=now_ms, desk_order=order, desk_is_taker=True)
            if take == levels[price]:
                del levels[price]
            else:
                levels[price] -= take
            self._refresh(side, price)
            if order.remaining == 0:
                return
        self.desk.expire(order, now_ms)
