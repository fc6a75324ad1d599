"""The simulated desk's account on one venue: its orders, fills, fees and the exchange's
quantitative-rule indicators computed from them.

Indicator definitions follow DESIGN.md 'Order behaviour' (from Binance's futures
quantitative-rules FAQ): over a rolling cycle per symbol,
UFR = 1 - filled qty / placed qty, IFER = expired IOC/FOK / all IOC/FOK,
GCR = cancelled GTC / GTC orders, DR = orders under the dust notional / all orders.
Trigger values are the documented example's (derivatives_usds_margined_futures_account_rest_api_
Futures_Trading_Quantitative_Rules_Indicators.md): 0.995 for UFR, 0.99 for the others.
"""
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

TRIGGER_VALUES = {"UFR": 0.995, "IFER": 0.99, "GCR": 0.99, "DR": 0.99}
DUST_NOTIONAL_USD = 50  # futures dust order notional (DESIGN.md)
MAX_ORDERS_KEPT = 200_000  # per symbol; older orders drop out of allOrders (memory bound for long demos)


@dataclass
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # "BUY" / "SELL"
    order_type: str  # "LIMIT", "LIMIT_MAKER" (spot post-only)
    time_in_force: str  # GTC / IOC / FOK / GTX
    price: int  # price units
    orig_qty: int  # lots
    time_ms: int
    executed: int = 0
    cum_quote: int = 0  # price units * lots
    status: str = "NEW"
    update_ms: int = 0
    ladder_level: int | None = None

    @property
    def remaining(self) -> int:
        return self.orig_qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class Fill:
    trade_id: int
    order: Order
    price: int
    qty: int
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass
class SymbolRecord:
    orders: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    cycle: deque = field(default_factory=deque)  # orders placed within the rolling cycle
    locked_until_ms: int = 0
    violations: int = 0


class DeskAccount:
    """One venue's desk account. `on_event(kind, order, fill)` receives every order event."""

    def __init__(self, *, market_type: str, maker_fee: str, taker_fee: str, cycle_s: float,
                 lock_s: float, min_orders: dict, first_order_id: int = 1_000_000):
        self.market_type = market_type
        self.maker_fee = Decimal(maker_fee)
        self.taker_fee = Decimal(taker_fee)
        self.cycle_ms = int(cycle_s * 1000)
        self.lock_ms = int(lock_s * 1000)
        self.min_orders = min_orders  # indicator -> orders in the cycle before it is judged
        self._next_order_id = first_order_id
        self.symbols: dict[str, SymbolRecord] = {}
        self.orders: dict[int, Order] = {}
        self.listeners: list = []
        self.created_ms = 0

    def record(self, symbol: str) -> SymbolRecord:
        return self.symbols.setdefault(symbol, SymbolRecord())

    def _emit(self, kind: str, order: Order, fill: Fill | None = None) -> None:
        for listener in self.listeners:
            listener(kind, order, fill)

    # Order lifecycle -------------------------------------------------------------------------

    def new_order(self, *, symbol, side, order_type, tif, price, qty, now_ms, ladder_level=None) -> Order:
        order_id = self._next_order_id
        self._next_order_id += 1
        order = Order(order_id, f"desk{order_id}", symbol, side, order_type, tif, price, qty, now_ms,
                      update_ms=now_ms, ladder_level=ladder_level)
        rec = self.record(symbol)
        rec.orders.append(order)
        rec.cycle.append(order)
        self.orders[order_id] = order
        if len(rec.orders) > MAX_ORDERS_KEPT:
            for old in rec.orders[: MAX_ORDERS_KEPT // 2]:
                self.orders.pop(old.order_id, None)
            del rec.orders[: MAX_ORDERS_KEPT // 2]
        self._emit("NEW", order)
        return order

    def cancel(self, order: Order, now_ms: int) -> None:
        order.status = "CANCELED"
        order.update_ms = now_ms
        self._emit("CANCELED", order)

    def expire(self, order: Order, now_ms: int) -> None:
        order.status = "EXPIRED"
        order.update_ms = now_ms
        self._emit("EXPIRED", order)

    def amend(self, order: Order, *, price: int, qty: int, now_ms: int) -> None:
        """Futures order modify (PUT /fapi/v1/order): same order id, new price and quantity."""
        order.price = price
        order.orig_qty = max(qty, order.executed + 1)
        order.update_ms = now_ms
        self._emit("AMENDMENT", order)

    def fill(self, order: Order, *, trade_id: int, price: int, qty: int, base: Decimal, quote: Decimal, now_ms: int,
             is_maker: bool, base_asset: str, quote_asset: str) -> Fill:
        order.executed += qty
        order.cum_quote += price * qty
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_ms = now_ms
        rate = self.maker_fee if is_maker else self.taker_fee
        if self.market_type == "spot" and order.side == "BUY":
            # Spot without BNB discount: the buyer pays in the base asset it receives.
            commission, asset = base * rate, base_asset
        else:
            commission, asset = quote * rate, quote_asset
        fill = Fill(trade_id, order, price, qty, commission, asset, now_ms, is_maker)
        self.record(order.symbol).fills.append(fill)
        self._emit("TRADE", order, fill)
        return fill

    # Quantitative rules ----------------------------------------------------------------------

    def indicators(self, symbol: str, now_ms: int, *, usd_per_unit: float) -> dict:
        """Indicator values over the rolling cycle, with the count each is judged on."""
        rec = self.record(symbol)
        while rec.cycle and rec.cycle[0].time_ms < now_ms - self.cycle_ms:
            rec.cycle.popleft()
        placed = filled = 0
        ioc = ioc_expired = gtc = gtc_cancelled = dust = 0
        for order in rec.cycle:
            placed += order.orig_qty
            filled += order.executed
            if order.time_in_force in ("IOC", "FOK"):
                ioc += 1
                ioc_expired += order.status == "EXPIRED"
            elif order.time_in_force == "GTC":
                gtc += 1
                gtc_cancelled += order.status == "CANCELED"
            dust += order.price * order.orig_qty * usd_per_unit < DUST_NOTIONAL_USD
        count = len(rec.cycle)
        return {
            "UFR": (1 - filled / placed if placed else 0.0, count),
            "IFER": (ioc_expired / ioc if ioc else 0.0, ioc),
            "GCR": (gtc_cancelled / gtc if gtc else 0.0, gtc),
            "DR": (dust / count if count else 0.0, count),
        }

    def evaluate_lock(self, symbol: str, now_ms: int, *, usd_per_unit: float) -> bool:
        """Lock the symbol when an indicator passes its trigger on enough orders; True while locked."""
        rec = self.record(symbol)
        if rec.locked_until_ms > now_ms:
            return True
        for name, (value, count) in self.indicators(symbol, now_ms, usd_per_unit=usd_per_unit).items():
            if name in self.min_orders and count >= self.min_orders[name] and value >= TRIGGER_VALUES[name]:
                rec.locked_until_ms = now_ms + self.lock_ms
                rec.violations += 1
                return True
        return False

    def is_locked(self, symbol: str, now_ms: int) -> bool:
        return self.record(symbol).locked_until_ms > now_ms

