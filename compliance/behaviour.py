"""Order behaviour: pure functions over the desk's own orders and fills (DESIGN.md 'Order behaviour').

Records are plain frozen dataclasses that the collectors (live), the roll-ups and the reports
build from the user-data stream or the database; nothing here does I/O. Each record is the
order's state as of the evaluation; a replay builds the records as they stood at that time.
Times are epoch milliseconds, quantities and prices Decimal (exact sums; the exchange's strings),
ratios floats: quantitative-rule indicators as fractions like the exchange reports them
(0.99), the LP-guide and desk KPIs in percent.
"""
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

SIDES = ("BUY", "SELL")
# Binance spot and futures order statuses (binance-api enums / common definitions).
ORDER_STATUSES = frozenset(
    {"NEW", "PENDING_NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "PENDING_CANCEL", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}
)
# EXPIRED_IN_MATCH is an expiry by self-trade prevention: the order left the book unfilled all the same.
EXPIRED_STATUSES = frozenset({"EXPIRED", "EXPIRED_IN_MATCH"})
FINAL_STATUSES = frozenset({"FILLED", "CANCELED", "REJECTED"}) | EXPIRED_STATUSES

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
# Binance futures quantitative rules judge orders placed in the past 10 minutes (DESIGN.md).
QUANT_CYCLE_MS = 10 * MINUTE_MS


def _decimal(name: str, value, *, signed: bool = False) -> Decimal:
    """The exchange's string (or a number) as an exact Decimal; floats by their shortest repr."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if not number.is_finite() or (number < 0 and not signed):
        kind = "finite" if signed else "non-negative finite"
        raise ValueError(f"{name} must be a {kind} number, got {value!r}.")
    return number


def _millis(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be epoch milliseconds (a non-negative int), got {value!r}.")
    return value


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One of the desk's orders as the exchange last reported it.

    cum_quote_qty (quote filled so far) gives a market order, which has no price, its notional.
    """

    order_id: int
    side: str
    order_type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    status: str
    placed_ms: int
    closed_ms: int | None = None
    cum_quote_qty: Decimal = Decimal(0)

    def __post_init__(self):
        if self.side not in SIDES:
            raise ValueError(f"Order {self.order_id}: side must be one of {SIDES}, got {self.side!r}.")
        if self.status not in ORDER_STATUSES:
            raise ValueError(f"Order {self.order_id}: unknown status {self.status!r}.")
        for name in ("price", "orig_qty", "executed_qty", "cum_quote_qty"):
            object.__setattr__(self, name, _decimal(f"Order {self.order_id} {name}", getattr(self, name)))
        if self.executed_qty > self.orig_qty:
            raise ValueError(f"Order {self.order_id}: executed {self.executed_qty} exceeds ordered {self.orig_qty}.")
        _millis(f"Order {self.order_id} placed_ms", self.placed_ms)
        if self.closed_ms is not None:
            _millis(f"Order {self.order_id} closed_ms", self.closed_ms)
            if self.closed_ms < self.placed_ms:
                raise ValueError(f"Order {self.order_id}: closed at {self.closed_ms} before placed at {self.placed_ms}.")
        elif self.status in FINAL_STATUSES:
            raise ValueError(f"Order {self.order_id}: status {self.status} is final but closed_ms is missing.")

    @property
    def was_placed(self) -> bool:
        """A rejected order never reached the book, so no ratio counts it."""
        return self.status != "REJECTED"

    @property
    def notional(self) -> Decimal:
        """Quote value: price × quantity, or for a market order (price 0) what it filled."""
        return self.price * self.orig_qty if self.price > 0 else self.cum_quote_qty


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One of the desk's trades. A negative commission is a rebate (a negative maker fee)."""

    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    traded_ms: int

    def __post_init__(self):
        if self.side not in SIDES:
            raise ValueError(f"Fill {self.trade_id}: side must be one of {SIDES}, got {self.side!r}.")
        for name in ("price", "qty", "quote_qty"):
            object.__setattr__(self, name, _decimal(f"Fill {self.trade_id} {name}", getattr(self, name)))
        object.__setattr__(self, "commission", _decimal(f"Fill {self.trade_id} commission", self.commission, signed=True))
        if not self.commission_asset:
            raise ValueError(f"Fill {self.trade_id}: commission_asset is missing.")
        if not isinstance(self.is_maker, bool):
            raise ValueError(f"Fill {self.trade_id}: is_maker must be a boolean, got {self.is_maker!r}.")
        _millis(f"Fill {self.trade_id} traded_ms", self.traded_ms)


def placed_in_window(orders: Iterable[OrderRecord], end_ms: int, window_ms: int = QUANT_CYCLE_MS) -> list[OrderRecord]:
    """Orders placed (not rejected) in the window (end − window, end]: e.g. the past 10 minutes."""
    _millis("end_ms", end_ms)
    if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms <= 0:
        raise ValueError(f"window_ms must be a positive int, got {window_ms!r}.")
    start_ms = end_ms - window_ms
    return [order for order in orders if order.was_placed and start_ms < order.placed_ms <= end_ms]


def cancel_ratio_pct(orders: Iterable[OrderRecord]) -> float | None:
    """Cancelled / placed orders, % (the LP guide's limit: ≤ 8 %, reference/binance-liquidity-
    provider-guide.txt, strategy step 3). None when nothing was placed."""
    placed = cancelled = 0
    for order in orders:
        if order.was_placed:
            placed += 1
            cancelled += order.status == "CANCELED"
    return None if placed == 0 else cancelled / placed * 100


# --- Binance futures quantitative rules -------------------------------------------------------


class Indicator(StrEnum):
    """Indicator names as GET /fapi/v1/apiTradingStatus reports them."""

    UFR = "UFR"  # Unfilled Ratio
    IFER = "IFER"  # IOC/FOK Expiration Ratio
    GCR = "GCR"  # GTC Cancellation Ratio (older name and rule)
    ICR = "ICR"  # Invalid Cancellation Ratio (GCR's successor)
    DR = "DR"  # Dust Ratio


@dataclass(frozen=True, slots=True)
class IndicatorValue:
    """A locally computed indicator: value is None when its denominator is empty."""

    indicator: Indicator
    value: float | None
    orders: int  # the orders in the denominator, compared with the recording threshold


@dataclass(frozen=True, slots=True)
class QuickCancelRule:
    """Which cancellations count as invalid: within within_ms of placement, for these time-in-force."""

    within_ms: int
    time_in_force: frozenset[str]


# DESIGN.md 'Order behaviour' (Binance's FAQ): ICR counts cancels < 5 s after placement over
# GTC + GTX + GTD orders; the older GCR counted cancels < 2 s over GTC orders only.
QUICK_CANCEL_RULES = {
    Indicator.ICR: QuickCancelRule(5_000, frozenset({"GTC", "GTX", "GTD"})),
    Indicator.GCR: QuickCancelRule(2_000, frozenset({"GTC"})),
}
IOC_FOK = frozenset({"IOC", "FOK"})
DUST_NOTIONAL_USD = Decimal(50)  # futures: notional under $50 is dust (DESIGN.md)


def unfilled_ratio(orders: Iterable[OrderRecord]) -> IndicatorValue:
    """UFR = 1 − filled quantity / placed quantity, over the placed orders given."""
    placed = [order for order in orders if order.was_placed]
    placed_qty = sum((order.orig_qty for order in placed), Decimal(0))
    if placed_qty == 0:
        return IndicatorValue(Indicator.UFR, None, len(placed))
    filled_qty = sum((order.executed_qty for order in placed), Decimal(0))
    return IndicatorValue(Indicator.UFR, float(1 - filled_qty / placed_qty), len(placed))


def ioc_fok_expiration_ratio(orders: Iterable[OrderRecord]) -> IndicatorValue:
    """IFER = expired IOC/FOK orders / all IOC/FOK orders."""
    ioc_fok = [order for order in orders if order.was_placed and order.time_in_force in IOC_FOK]
    expired = sum(order.status in EXPIRED_STATUSES for order in ioc_fok)
    return IndicatorValue(Indicator.IFER, expired / len(ioc_fok) if ioc_fok else None, len(ioc_fok))


def quick_cancel_ratio(orders: Iterable[OrderRecord], indicator: Indicator | str = Indicator.ICR) -> IndicatorValue:
    """ICR (or the older GCR): orders cancelled soon after placement / orders of the counted
    time-in-force, with the window and time-in-force of QUICK_CANCEL_RULES[indicator]."""
    indicator = Indicator(indicator)
    if indicator not in QUICK_CANCEL_RULES:
        raise ValueError(f"{indicator} is not a cancellation indicator; use one of {sorted(QUICK_CANCEL_RULES)}.")
    rule = QUICK_CANCEL_RULES[indicator]
    counted = [order for order in orders if order.was_placed and order.time_in_force in rule.time_in_force]
    quick = sum(
        order.status == "CANCELED" and order.closed_ms - order.placed_ms < rule.within_ms for order in counted
    )
    return IndicatorValue(indicator, quick / len(counted) if counted else None, len(counted))


def dust_ratio(
    orders: Iterable[OrderRecord],
    dust_notional_usd: Decimal = DUST_NOTIONAL_USD,
    quote_usd: Decimal = Decimal(1),
) -> IndicatorValue:
    """DR = orders with a notional under dust_notional_usd / all orders."""
    dust_notional_usd = _decimal("dust_notional_usd", dust_notional_usd)
    quote_usd = _decimal("quote_usd", quote_usd)
    placed = [order for order in orders if order.was_placed]
    dust = sum(order.notional * quote_usd < dust_notional_usd for order in placed)
    return IndicatorValue(Indicator.DR, dust / len(placed) if placed else None, len(placed))


def quantitative_indicators(
    orders: Iterable[OrderRecord],
    now_ms: int,
    *,
    cycle_ms: int = QUANT_CYCLE_MS,
    dust_notional_usd: Decimal = DUST_NOTIONAL_USD,
    quote_usd: Decimal = Decimal(1),
) -> dict[Indicator, IndicatorValue]:
    """Every indicator over the orders placed in the cycle ending now (one symbol's orders)."""
    cycle = placed_in_window(orders, now_ms, cycle_ms)
    return {
        Indicator.UFR: unfilled_ratio(cycle),
        Indicator.IFER: ioc_fok_expiration_ratio(cycle),
        Indicator.ICR: quick_cancel_ratio(cycle, Indicator.ICR),
        Indicator.GCR: quick_cancel_ratio(cycle, Indicator.GCR),
        Indicator.DR: dust_ratio(cycle, dust_notional_usd, quote_usd),
    }


@dataclass(frozen=True, slots=True)
class IndicatorThreshold:
    """trigger_value: the ratio at or above which a symbol is locked; min_orders: the recording
    threshold, the orders the indicator must count in a cycle before the symbol is judged."""

    trigger_value: float
    min_orders: int


# The 2020 futures rules as DESIGN.md 'Order behaviour' gives them (Binance's Futures Trading
# Quantitative Rules FAQ): UFR ≥ 0.99 with ≥ 10,000 orders, GCR/IFER ≥ 0.99 with ≥ 5,000,
# DR ≥ 0.9 with ≥ 10,000. ICR inherits GCR's. Defaults only: the live trigger values come
# from GET /fapi/v1/apiTradingStatus (its documented example says 0.995 for UFR), and the
# obligation set may override any of them.
FUTURES_THRESHOLDS_2020 = {
    Indicator.UFR: IndicatorThreshold(0.99, 10_000),
    Indicator.IFER: IndicatorThreshold(0.99, 5_000),
    Indicator.GCR: IndicatorThreshold(0.99, 5_000),
    Indicator.ICR: IndicatorThreshold(0.99, 5_000),
    Indicator.DR: IndicatorThreshold(0.90, 10_000),
}
# The FAQ renamed GCR to ICR; the API may report either name for the cancellation rule.
_SAME_RULE = {Indicator.ICR: Indicator.GCR, Indicator.GCR: Indicator.ICR}


def trigger_for(
    indicator: Indicator | str,
    reported_triggers: Mapping[str, float],
    thresholds: Mapping[Indicator, IndicatorThreshold] = FUTURES_THRESHOLDS_2020,
) -> float:
    """The trigger value to judge an indicator by: the exchange's own (apiTradingStatus
    'triggerValue', keyed by indicator name; GCR and ICR stand for each other), else the
    configured threshold's."""
    indicator = Indicator(indicator)
    for name in (indicator, _SAME_RULE.get(indicator)):
        if name is not None and name.value in reported_triggers:
            return float(reported_triggers[name.value])
    return thresholds[indicator].trigger_value


# Spot: GET /sapi/v1/account/apiTradingStatus 'triggerCondition' (reference/binance-api-guide-ru.txt,
# Account API Trading Status): GTC orders for GCR, FOK/IOC orders for IFER, all orders for UFR.
SPOT_MIN_ORDERS = {Indicator.GCR: 150, Indicator.IFER: 150, Indicator.UFR: 300}
# 10 symbol bans within 24 h is an account-level ban (TMV, 'Too many violations').
ACCOUNT_BAN_LIMIT = 10


class IndicatorStatus(StrEnum):
    NOT_JUDGED = "not_judged"  # below the recording threshold, or nothing to measure
    OK = "ok"
    WARNING = "warning"  # at or above warning_fraction × trigger
    TRIGGERED = "triggered"


def judge_indicator(
    value: float | None,
    *,
    trigger_value: float,
    warning_fraction: float = 0.8,
    orders: int | None = None,
    min_orders: int = 0,
    is_locked: bool = False,
) -> IndicatorStatus:
    """Where an indicator stands against its trigger.

    Works for a local value (pass orders and the recording threshold min_orders) and for the
    exchange's reported value (orders=None: the exchange has already applied its threshold;
    is_locked: the exchange says the symbol is locked, which is triggered whatever the value).
    """
    # Floats throughout: the fraction may come from the obligation's DecimalField.
    trigger_value, warning_fraction = float(trigger_value), float(warning_fraction)
    if not (0 < trigger_value < math.inf):
        raise ValueError(f"trigger_value must be positive and finite, got {trigger_value!r}.")
    if not (0 < warning_fraction <= 1):
        raise ValueError(f"warning_fraction must be in (0, 1], got {warning_fraction!r}.")
    if is_locked:
        return IndicatorStatus.TRIGGERED
    if value is None or (orders is not None and orders < min_orders):
        return IndicatorStatus.NOT_JUDGED
    if value >= trigger_value:
        return IndicatorStatus.TRIGGERED
    if value >= warning_fraction * trigger_value:
        return IndicatorStatus.WARNING
    return IndicatorStatus.OK


def bans_in_window(ban_times_ms: Iterable[int], now_ms: int, window_ms: int = DAY_MS) -> int:
    """Symbol bans in the window (now − window, now]; judge against ACCOUNT_BAN_LIMIT with
    judge_indicator(count, trigger_value=ACCOUNT_BAN_LIMIT)."""
    _millis("now_ms", now_ms)
    return sum(now_ms - window_ms < _millis("ban time", at) <= now_ms for at in ban_times_ms)


# --- Spot unfilled-order count against the ORDERS rate limits ---------------------------------


@dataclass(frozen=True, slots=True)
class OrderRateLimit:
    """One ORDERS rate limit from exchangeInfo 'rateLimits' (binance-api enums, Rate limiters)."""

    interval_num: int
    interval: str
    limit: int

    @property
    def label(self) -> str:
        """The suffix of its X-MBX-ORDER-COUNT-* header, e.g. '10S' or '1D'."""
        return f"{self.interval_num}{self.interval[0]}"


RATE_LIMIT_INTERVALS = ("SECOND", "MINUTE", "HOUR", "DAY")


def order_rate_limits(rate_limits: Iterable[Mapping]) -> list[OrderRateLimit]:
    """The ORDERS entries of exchangeInfo's rateLimits, e.g.
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50}."""
    limits = []
    for entry in rate_limits:
        if entry.get("rateLimitType") != "ORDERS":
            continue
        interval, num, limit = entry.get("interval"), entry.get("intervalNum"), entry.get("limit")
        if interval not in RATE_LIMIT_INTERVALS or not isinstance(num, int) or num <= 0:
            raise ValueError(f"Malformed ORDERS rate limit {dict(entry)!r}.")
        if not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"Malformed ORDERS rate limit {dict(entry)!r}: limit must be a positive int.")
        limits.append(OrderRateLimit(num, interval, limit))
    return limits


@dataclass(frozen=True, slots=True)
class OrderCountUsage:
    limit: OrderRateLimit
    count: int | None  # None: no count reported for this interval
    used_pct: float | None


def order_count_usage(limits: Iterable[OrderRateLimit], counts: Mapping[str, int]) -> list[OrderCountUsage]:
    """Unfilled-order counts (X-MBX-ORDER-COUNT-* headers or GET /api/v3/rateLimit/order, keyed
    by label like '10S') against each ORDERS limit, as % used."""
    usage = []
    for limit in limits:
        count = counts.get(limit.label)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError(f"Order count for {limit.label} must be a non-negative int, got {count!r}.")
        usage.append(OrderCountUsage(limit, count, None if count is None else count / limit.limit * 100))
    return usage


# --- Survival, refresh, maker/taker -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    mean: float
    median: float
    p90: float
    max: float


def distribution(values: Iterable[float]) -> Distribution | None:
    """Count, mean, median, 90th percentile (nearest rank) and max; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    p90 = ordered[math.ceil(0.9 * n) - 1]
    return Distribution(n, sum(ordered) / n, median, p90, ordered[-1])


def survival_times_ms(orders: Iterable[OrderRecord]) -> list[int]:
    """How long each closed order lived (closed − placed); open and rejected orders have none yet."""
    return [order.closed_ms - order.placed_ms for order in orders if order.was_placed and order.closed_ms is not None]


def own_best_quote_changes(orders: Iterable[OrderRecord], side: str) -> list[tuple[int, Decimal | None]]:
    """[(time, own best price)] each time the best own quote on a side changed (None: no own quote).

    Replays placements and closings in time order; at equal times all events apply before
    the best is read, so a cancel-replace in one millisecond is a single change.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}.")
    events: dict[int, list[tuple[Decimal, int]]] = {}
    for order in orders:
        if order.side != side or not order.was_placed or order.price <= 0:
            continue
        events.setdefault(order.placed_ms, []).append((order.price, +1))
        if order.closed_ms is not None:
            events.setdefault(order.closed_ms, []).append((order.price, -1))
    resting: Counter[Decimal] = Counter()
    best_of = max if side == "BUY" else min
    changes: list[tuple[int, Decimal | None]] = []
    best = None
    for at in sorted(events):
        for price, delta in events[at]:
            resting[price] += delta
            if resting[price] == 0:
                del resting[price]
        current = best_of(resting) if resting else None
        if current != best:
            changes.append((at, current))
            best = current
    return changes


def quote_refresh_intervals_ms(changes: Iterable[tuple[int, Decimal | None]]) -> list[int]:
    """Times between successive changes of the best own quote (target ≤ 200 ms for the best
    levels: reference/binance-liquidity-provider-guide.txt, first paragraph)."""
    times = [at for at, _ in changes]
    if any(later < earlier for earlier, later in zip(times, times[1:])):
        raise ValueError("Quote changes must be in time order.")
    return [later - earlier for earlier, later in zip(times, times[1:])]


def maker_taker_pct(fills: Iterable[FillRecord]) -> tuple[float, float] | None:
    """(maker ratio %, taker proportion %) by quote volume; None when nothing traded.

    The taker proportion is one of the three indicators Binance reprices rebates on
    (reference/binance-liquidity-provider-guide.txt, 'Taker proportion').
    """
    maker = taker = Decimal(0)
    for fill in fills:
        if fill.is_maker:
            maker += fill.quote_qty
        else:
            taker += fill.quote_qty
    total = maker + taker
    if total == 0:
        return None
    maker_pct = float(maker / total * 100)
    return maker_pct, 100 - maker_pct
