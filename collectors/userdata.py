"""The desk's own orders and fills: user-data streams, parsing, idempotent upserts, REST backfill.

Sources (reference/binance-api):
- spot: executionReport (binance_spot_api_docs_user_data_stream.md), delivered through the
  WebSocket API subscription `userDataStream.subscribe.signature` (websocket_api_*.md), each
  event wrapped as {"subscriptionId": n, "event": {...}};
- USDⓈ-M: ORDER_TRADE_UPDATE on <ws_base>/ws/<listenKey>; the key comes from POST
  /fapi/v1/listenKey, lives 60 min unless PUT (keepalive) renews it, and `listenKeyExpired`
  says it died;
- backfill after every (re)connect: spot GET /api/v3/allOrders + /api/v3/myTrades, futures
  /fapi/v1/allOrders + /fapi/v1/userTrades, from the newest state we hold.
Upserts are keyed by the exchange's ids (OwnOrder: market + orderId; OwnFill: market + trade
id), and an order only moves forward (later event time, or same time and a later status), so
events replayed, duplicated or arriving after the backfill change nothing.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import orjson
import websockets
from asgiref.sync import sync_to_async
from django.db import transaction
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from collectors.rest import BinanceRest, ExchangeError, RateLimited, Unreachable, sign
from collectors.stream import Backoff
from compliance.models import Market, MarketType, OwnFill, OwnOrder

log = logging.getLogger(__name__)

FINAL_STATUSES = {"FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"}
STATUS_RANK = {"NEW": 0, "PENDING_NEW": 0, "PARTIALLY_FILLED": 1, **{s: 2 for s in FINAL_STATUSES}}
LISTEN_KEY_KEEPALIVE_S = 30 * 60  # the key lives 60 min; Binance recommends a keepalive every 30
BACKFILL_WINDOW = timedelta(hours=24)  # allOrders/myTrades accept at most 24 h between start and end
PAGE = 1000


class MalformedUserEvent(ValueError):
    pass


@dataclass(frozen=True)
class OrderUpdate:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote_qty: Decimal
    status: str
    placed_ms: int
    event_ms: int


@dataclass(frozen=True)
class FillUpdate:
    symbol: str
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


def _dec(value, name) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise MalformedUserEvent(f"{name} is not a number: {value!r}") from None


def _fields(event: dict, names: str) -> None:
    missing = [n for n in names.split() if n not in event]
    if missing:
        raise MalformedUserEvent(f"{event.get('e', 'event')} without {', '.join(missing)}: {str(event)[:200]}")


def parse_execution_report(e: dict) -> tuple[OrderUpdate, FillUpdate | None]:
    """Spot executionReport → the order's state, and the fill when it is a trade (x = TRADE)."""
    _fields(e, "E s S o f q p x X i l z L T")
    cum_quote = _dec(e.get("Z", "0"), "Z")
    order = OrderUpdate(
        e["s"], int(e["i"]), e.get("c", ""), e["S"], e["o"], e["f"], _dec(e["p"], "p"), _dec(e["q"], "q"),
        _dec(e["z"], "z"), cum_quote, e["X"], int(e.get("O", e["T"])), int(e["T"]),
    )
    fill = None
    if e["x"] == "TRADE" and int(e.get("t", -1)) >= 0:
        qty, price = _dec(e["l"], "l"), _dec(e["L"], "L")
        fill = FillUpdate(
            e["s"], int(e["t"]), order.order_id, e["S"], price, qty,
            _dec(e["Y"], "Y") if "Y" in e else price * qty, _dec(e.get("n", "0"), "n"), e.get("N") or "",
            bool(e.get("m", False)), int(e["T"]),
        )
    return order, fill


def parse_order_trade_update(event: dict) -> tuple[OrderUpdate, FillUpdate | None]:
    """USDⓈ-M ORDER_TRADE_UPDATE → the order's state, and the fill when it is a trade."""
    o = event.get("o")
    if not isinstance(o, dict):
        raise MalformedUserEvent(f"ORDER_TRADE_UPDATE without an order object: {str(event)[:200]}")
    _fields(o, "s S o f q p X x i l z L T")
    executed, avg = _dec(o["z"], "z"), _dec(o.get("ap", "0"), "ap")
    order = OrderUpdate(
        o["s"], int(o["i"]), o.get("c", ""), o["S"], o["o"], o["f"], _dec(o["p"], "p"), _dec(o["q"], "q"),
        executed, executed * avg, o["X"], int(o["T"]), int(o["T"]),
    )
    fill = None
    if o["x"] == "TRADE" and int(o.get("t", 0)) > 0:
        qty, price = _dec(o["l"], "l"), _dec(o["L"], "L")
        fill = FillUpdate(
            o["s"], int(o["t"]), order.order_id, o["S"], price, qty, price * qty, _dec(o.get("n", "0"), "n"),
            o.get("N") or "", bool(o.get("m", False)), int(o["T"]),
        )
    return order, fill


def parse_user_event(message: dict) -> tuple[OrderUpdate, FillUpdate | None] | None:
    """Any user-data frame (raw, combined-stream or WebSocket-API wrapped); None for events about
    balances and positions, which the monitor does not use."""
    event = message.get("event") or message.get("data") or message
    if not isinstance(event, dict):
        raise MalformedUserEvent(f"not an event object: {str(message)[:200]}")
    kind = event.get("e")
    if kind == "executionReport":
        return parse_execution_report(event)
    if kind == "ORDER_TRADE_UPDATE":
        return parse_order_trade_update(event)
    return None


def parse_rest_order(row: dict, *, futures: bool) -> OrderUpdate:
    """One allOrders row (spot rest_api_account_endpoints 'All orders'; futures All_Orders)."""
    _fields(row, "symbol orderId side type timeInForce price origQty executedQty status time updateTime")
    cum = row.get("cumQuote" if futures else "cummulativeQuoteQty", "0")
    return OrderUpdate(
        row["symbol"], int(row["orderId"]), row.get("clientOrderId", ""), row["side"], row["type"], row["timeInForce"],
        _dec(row["price"], "price"), _dec(row["origQty"], "origQty"), _dec(row["executedQty"], "executedQty"),
        _dec(cum, "cumQuote"), row["status"], int(row["time"]), int(row["updateTime"]),
    )


def parse_rest_fill(row: dict, *, futures: bool) -> FillUpdate:
    """One myTrades (spot) / userTrades (futures) row."""
    _fields(row, "symbol id orderId price qty commission commissionAsset time")
    if futures:
        side, maker = row["side"], bool(row["maker"])
    else:
        side, maker = ("BUY" if row["isBuyer"] else "SELL"), bool(row["isMaker"])
    price, qty = _dec(row["price"], "price"), _dec(row["qty"], "qty")
    return FillUpdate(
        row["symbol"], int(row["id"]), int(row["orderId"]), side, price, qty, _dec(row.get("quoteQty", price * qty), "quoteQty"),
        _dec(row["commission"], "commission"), row["commissionAsset"], maker, int(row["time"]),
    )


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def upsert_order(market_id: int, u: OrderUpdate) -> bool:
    """Create or move the order forward; True when something changed."""
    with transaction.atomic():
        current = OwnOrder.objects.select_for_update().filter(market_id=market_id, order_id=u.order_id).first()
        closed_at = _utc(u.event_ms) if u.status in FINAL_STATUSES else None
        if current is None:
            OwnOrder.objects.create(
                market_id=market_id, order_id=u.order_id, client_order_id=u.client_order_id[:64], side=u.side,
                order_type=u.order_type, time_in_force=u.time_in_force, price=u.price, orig_qty=u.orig_qty,
                executed_qty=u.executed_qty, cum_quote_qty=u.cum_quote_qty, status=u.status,
                placed_at=_utc(u.placed_ms), closed_at=closed_at, updated_at=_utc(u.event_ms),
            )
            return True
        stored = (current.updated_at, STATUS_RANK.get(current.status, 2), current.executed_qty)
        if (_utc(u.event_ms), STATUS_RANK.get(u.status, 2), u.executed_qty) <= stored:
            return False  # older, or the same state again
        current.status, current.executed_qty, current.cum_quote_qty = u.status, u.executed_qty, u.cum_quote_qty
        current.price, current.orig_qty, current.updated_at = u.price, u.orig_qty, max(current.updated_at, _utc(u.event_ms))
        current.placed_at = min(current.placed_at, _utc(u.placed_ms))
        if closed_at and current.closed_at is None:
            current.closed_at = closed_at
        current.save()
        return True


def upsert_fill(market_id: int, f: FillUpdate) -> bool:
    _, created = OwnFill.objects.get_or_create(
        market_id=market_id, trade_id=f.trade_id,
        defaults=dict(order_id=f.order_id, side=f.side, price=f.price, qty=f.qty, quote_qty=f.quote_qty,
                      commission=f.commission, commission_asset=f.commission_asset[:16], is_maker=f.is_maker,
                      traded_at=_utc(f.traded_ms)),
    )
    return created


class UserData:
    """Applies parsed updates to the markets of one venue (symbols it does not monitor are counted and skipped)."""

    def __init__(self, venue_id: int):
        self.venue_id = venue_id
        self.market_ids = dict(Market.objects.filter(venue_id=venue_id).values_list("symbol", "pk"))
        self.counts: Counter = Counter()

    def apply(self, order: OrderUpdate | None = None, fill: FillUpdate | None = None) -> None:
        for update in (order, fill):
            if update is None:
                continue
            market_id = self.market_ids.get(update.symbol)
            if market_id is None:
                self.counts["unmonitored_symbol"] += 1
                continue
            if isinstance(update, OrderUpdate):
                self.counts["orders_changed" if upsert_order(market_id, update) else "orders_unchanged"] += 1
            else:
                self.counts["fills_new" if upsert_fill(market_id, update) else "fills_known"] += 1

    def resume_points(self) -> dict[str, tuple[datetime | None, int | None]]:
        """Per symbol: newest order update time and newest trade id we hold (where backfill starts)."""
        points = {}
        for symbol, market_id in self.market_ids.items():
            last_order = OwnOrder.objects.filter(market_id=market_id).order_by("-updated_at").values_list("updated_at", flat=True).first()
            last_trade = OwnFill.objects.filter(market_id=market_id).order_by("-trade_id").values_list("trade_id", flat=True).first()
            points[symbol] = (last_order, last_trade)
        return points


class UserDataCollector:
    """Keeps one account's user-data stream open on one venue and backfills after each (re)connect."""

    def __init__(self, *, venue, api_key: str, secret: str, backoff: Backoff | None = None, recorder=None,
                 keepalive_s: float = LISTEN_KEY_KEEPALIVE_S):
        self.venue = venue
        self.futures = venue.market_type == MarketType.USDM
        self.api_key, self.secret = api_key, secret
        self.rest = BinanceRest(
            venue.rest_base_url, time_path="/fapi/v1/time" if self.futures else "/api/v3/time",
            api_key=api_key, secret=secret, recorder=recorder,
        )
        self.backoff = backoff or Backoff()
        self.keepalive_s = keepalive_s
        self.store: UserData | None = None
        self.counts: Counter = Counter()
        self.connected = asyncio.Event()
        self.backfilled = asyncio.Event()
        self._pending: list = []  # parsed events waiting for the database thread
        self._writer: asyncio.Task | None = None

    async def run(self) -> None:
        self.store = await sync_to_async(UserData)(self.venue.pk)
        try:
            while True:
                reason = await self._session()
                self.connected.clear()
                self.counts["disconnects"] += 1
                wait = self.backoff.next_wait()
                log.warning("user data %s: %s; reconnecting in %.1f s", self.venue.name, reason, wait)
                await asyncio.sleep(wait)
        finally:
            await self.rest.close()

    async def _session(self) -> str:
        try:
            await self.rest.sync_clock()
            if self.futures:
                key = (await self.rest.request("POST", "/fapi/v1/listenKey", keyed=True))["listenKey"]
                url = f"{self.venue.ws_base_url.rstrip('/')}/ws/{key}"
            else:
                url = self.venue.ws_api_url
                if not url:
                    return "the venue has no WebSocket API URL (needed for spot user data)"
            async with websockets.connect(url, open_timeout=10, ping_interval=20, ping_timeout=20, close_timeout=2) as ws:
                if not self.futures:
                    await self._subscribe_spot(ws)
                self.connected.set()
                # Events that arrive while we backfill are applied after it, in order; both are idempotent.
                backfill = asyncio.create_task(self.backfill())
                keepalive = asyncio.create_task(self._keepalive()) if self.futures else None
                try:
                    async for raw in ws:
                        if self._on_frame(raw) == "expired":
                            return "listenKey expired"
                        if keepalive is not None and keepalive.done():
                            return f"listenKey keepalive failed: {keepalive.exception()}"
                    return "closed by the exchange"
                finally:
                    for task in (backfill, keepalive):
                        if task is not None:
                            task.cancel()
        except (OSError, asyncio.TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            return f"connection: {type(exc).__name__}: {exc}"
        except (ExchangeError, Unreachable) as exc:
            return f"REST: {exc}"
        except KeyError as exc:
            return f"unexpected reply without {exc}"

    async def _subscribe_spot(self, ws) -> None:
        params = {"apiKey": self.api_key, "timestamp": int(time.time() * 1000 + self.rest.clock_offset_ms)}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["signature"] = sign(self.secret, payload)
        await ws.send(orjson.dumps({"id": "subscribe", "method": "userDataStream.subscribe.signature", "params": params}).decode())
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply.get("status") != 200:
            raise ExchangeError(reply.get("status", 0), (reply.get("error") or {}).get("code"),
                                (reply.get("error") or {}).get("msg", str(reply)[:200]), "userDataStream.subscribe.signature")

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            await self.rest.request("PUT", "/fapi/v1/listenKey", keyed=True)

    def _on_frame(self, raw) -> str | None:
        self.counts["frames"] += 1
        try:
            message = orjson.loads(raw)
            if not isinstance(message, dict):
                raise MalformedUserEvent(f"not a JSON object: {str(raw)[:120]}")
            event = message.get("event") or message.get("data") or message
            if isinstance(event, dict) and event.get("e") == "listenKeyExpired":
                return "expired"
            parsed = parse_user_event(message)
        except (orjson.JSONDecodeError, MalformedUserEvent) as exc:
            self.counts["malformed"] += 1
            log.warning("user data %s: malformed event skipped: %s", self.venue.name, exc)
            return None
        if parsed is None:
            self.counts["other_events"] += 1
            return None
        self.counts["order_events"] += 1
        self._pending.append(parsed)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        return None

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending[:] = list(self._pending), []
            await sync_to_async(self._apply_all)(batch)

    def _apply_all(self, batch) -> None:
        for order, fill in batch:
            self.store.apply(order, fill)

    async def backfill(self) -> None:
        """allOrders and myTrades/userTrades per monitored symbol, from what we already hold (24 h at most)."""
        points = await sync_to_async(self.store.resume_points)()
        now = datetime.now(timezone.utc)
        orders_path = "/fapi/v1/allOrders" if self.futures else "/api/v3/allOrders"
        trades_path = "/fapi/v1/userTrades" if self.futures else "/api/v3/myTrades"
        for symbol, (last_update, last_trade) in points.items():
            start = max((last_update or now - BACKFILL_WINDOW) - timedelta(minutes=1), now - BACKFILL_WINDOW)
            while True:
                try:
                    rows = await self.rest.request("GET", orders_path, {"symbol": symbol, "startTime": int(start.timestamp() * 1000), "limit": PAGE}, signed=True)
                    orders = [parse_rest_order(r, futures=self.futures) for r in rows]
                    params = {"symbol": symbol, "limit": PAGE}
                    params.update({"fromId": last_trade + 1} if last_trade is not None else {"startTime": int(start.timestamp() * 1000)})
                    fills = [parse_rest_fill(r, futures=self.futures) for r in await self.rest.request("GET", trades_path, params, signed=True)]
                except RateLimited:
                    continue  # the client waits out Retry-After before the next request
                except (MalformedUserEvent, TypeError) as exc:
                    self.counts["malformed"] += 1
                    log.warning("user data %s %s: backfill page unusable: %s", self.venue.name, symbol, exc)
                    break
                await sync_to_async(self._apply_all)([(o, None) for o in orders] + [(None, f) for f in fills])
                self.counts["backfilled_orders"] += len(orders)
                self.counts["backfilled_fills"] += len(fills)
                if len(orders) < PAGE and len(fills) < PAGE:
                    break
                next_start = max(start, _utc(max(o.placed_ms for o in orders))) if orders else start
                next_trade = max(f.trade_id for f in fills) if fills else last_trade
                if (next_start, next_trade) == (start, last_trade):
                    break  # a full page that does not move forward: nothing more to page through
                start, last_trade = next_start, next_trade
        self.backfilled.set()


SHARD_PREFIX = "userdata:"


def account_shards() -> list[str]:
    """One leased shard per active credential: its user-data stream runs in exactly one place."""
    from collectors.models import ExchangeCredential

    return [
        f"{SHARD_PREFIX}{pk}"
        for pk in ExchangeCredential.objects.filter(
            is_active=True, venue__is_active=True, venue__market_type__in=[MarketType.SPOT, MarketType.USDM]
        ).order_by("pk").values_list("pk", flat=True)
    ]


async def run_account(shard: str, *, lease=None) -> None:
    """Collect one credential's orders and fills until cancelled (or its lease is lost)."""
    from collectors.api_health import recorder_for
    from collectors.leases import run_while_held
    from collectors.models import ExchangeCredential

    try:
        pk = int(shard.removeprefix(SHARD_PREFIX))
        credential = await ExchangeCredential.objects.select_related("venue").aget(pk=pk, is_active=True)
    except (ValueError, ExchangeCredential.DoesNotExist):
        raise LookupError(f"no active credential for shard {shard!r}") from None
    collector = UserDataCollector(
        venue=credential.venue, api_key=credential.api_key, secret=await sync_to_async(credential.secret)(),
        recorder=recorder_for(credential.venue_id),
    )
    if lease is None:
        await collector.run()
    else:
        await run_while_held(lease, collector.run(), status=lambda: {"venue": credential.venue.name, **collector.counts})


def own_quotes(market_ids) -> dict:
    """{market_id: OwnQuotes} of the desk's resting orders, for markets whose venue has an active
    credential (elsewhere the desk's orders are unknown, and own-quote metrics stay empty)."""
    from collectors.models import ExchangeCredential
    from collectors.sampler import OwnQuotes

    known = set(
        Market.objects.filter(pk__in=market_ids, venue__in=ExchangeCredential.objects.filter(is_active=True).values("venue"))
        .values_list("pk", flat=True)
    )
    quotes = {pk: OwnQuotes({}, {}) for pk in known}
    rows = OwnOrder.objects.filter(market_id__in=known, status__in=("NEW", "PARTIALLY_FILLED")).values_list(
        "market_id", "side", "price", "orig_qty", "executed_qty"
    )
    for market_id, side, price, orig, executed in rows:
        book = quotes[market_id].bids if side == "BUY" else quotes[market_id].asks
        book[float(price)] = book.get(float(price), 0.0) + float(orig - executed)
    return quotes
