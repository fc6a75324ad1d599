"""What differs between Binance spot and USDⓈ-M futures on the wire: paths, field sets,
number formatting, stream speeds, weights and limits. Everything else is shared.

Field names and order follow the reference pages named next to each function
(/work/shared/reference/binance-api/).
"""
from dataclasses import dataclass

from .catalog import MarketSpec, format_units
from .desk import Fill, Order


@dataclass(frozen=True)
class Protocol:
    market_type: str
    rest_prefix: str  # "/api/v3" or "/fapi/v1"
    # stream suffix after "@depth" -> emission interval in ms (spot: web_socket_streams.md 'Diff. Depth
    # Stream'; futures: Diff_Book_Depth_Streams.md: 250 ms default, 500 ms, 100 ms; 0 ms as in the captures)
    depth_speeds: tuple
    weight_limit: int  # REQUEST_WEIGHT per minute (exchangeInfo rateLimits)
    depth_limits: tuple | None  # valid `limit` values (futures), None = 1..5000 (spot)

    @property
    def is_futures(self) -> bool:
        return self.market_type != "spot"

    def price(self, spec: MarketSpec, units: int) -> str:
        # Spot prints 8 decimals ("61837.63000000"); futures the symbol's precision ("61800.20").
        return format_units(units, spec.price_decimals, 8 if not self.is_futures else None)

    def qty(self, spec: MarketSpec, lots: int) -> str:
        return format_units(lots, spec.qty_decimals, 8 if not self.is_futures else None)

    def quote(self, spec: MarketSpec, units: int) -> str:
        return format_units(units, spec.price_decimals + spec.qty_decimals, 8)

    def depth_weight(self, limit: int) -> int:
        if self.is_futures:  # Order_Book.md 'Request Weight'
            return {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}[limit]
        # rest_api_market_data_endpoints.md 'Order book'
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

    # Market data -----------------------------------------------------------------------------

    def levels(self, spec, pairs) -> list:
        return [[self.price(spec, p), self.qty(spec, q)] for p, q in pairs]

    def snapshot(self, spec, update_id, bids, asks, now_ms) -> dict:
        body = {"lastUpdateId": update_id}
        if self.is_futures:
            body.update(E=now_ms, T=now_ms)
        body.update(bids=self.levels(spec, bids), asks=self.levels(spec, asks))
        return body

    def depth_update(self, spec, diff, prev_final_id, now_ms) -> dict:
        bids = self.levels(spec, sorted(diff.bids.items(), reverse=True))
        asks = self.levels(spec, sorted(diff.asks.items()))
        if self.is_futures:
            return {"e": "depthUpdate", "E": now_ms, "T": now_ms, "s": spec.symbol, "U": diff.first_id,
                    "u": diff.last_id, "pu": prev_final_id, "b": bids, "a": asks}
        return {"e": "depthUpdate", "E": now_ms, "s": spec.symbol, "U": diff.first_id, "u": diff.last_id,
                "b": bids, "a": asks}

    def book_ticker(self, spec, update_id, bid, ask, now_ms) -> dict:
        fields = {"u": update_id, "s": spec.symbol, "b": self.price(spec, bid[0]), "B": self.qty(spec, bid[1]),
                  "a": self.price(spec, ask[0]), "A": self.qty(spec, ask[1])}
        if self.is_futures:
            return {"e": "bookTicker", **fields, "T": now_ms, "E": now_ms}
        return fields

    def trade(self, spec, trade, now_ms) -> dict:
        if self.is_futures:
            return {"e": "trade", "E": now_ms, "T": trade.time_ms, "s": spec.symbol, "t": trade.trade_id,
                    "p": self.price(spec, trade.price), "q": self.qty(spec, trade.qty), "X": "MARKET",
                    "m": trade.buyer_is_maker}
        return {"e": "trade", "E": now_ms, "s": spec.symbol, "t": trade.trade_id, "p": self.price(spec, trade.price),
                "q": self.qty(spec, trade.qty), "T": trade.time_ms, "m": trade.buyer_is_maker, "M": True}

    def exchange_info_symbol(self, spec: MarketSpec) -> dict:
        tick, step = spec.tick_size, spec.step_size
        if self.is_futures:
            return {
                "symbol": spec.symbol, "pair": spec.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": spec.base_asset,
                "quoteAsset": spec.quote_asset, "marginAsset": spec.quote_asset,
                "pricePrecision": spec.price_decimals, "quantityPrecision": spec.qty_decimals,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
                    {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000", "minQty": step},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "maxQty": "120", "minQty": step},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                     "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                               "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            }
        tick8, step8 = format_units(1, spec.price_decimals, 8), format_units(1, spec.qty_decimals, 8)
        return {
            "symbol": spec.symbol, "status": "TRADING", "baseAsset": spec.base_asset, "baseAssetPrecision": 8,
            "quoteAsset": spec.quote_asset, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                           "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True, "cancelReplaceAllowed": True, "allowAmend": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick8, "maxPrice": "1000000.00000000", "tickSize": tick8},
                {"filterType": "LOT_SIZE", "minQty": step8, "maxQty": "9000.00000000", "stepSize": step8},
                {"filterType": "NOTIONAL", "minNotional": spec.min_notional, "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def rate_limits(self, weight_limit: int) -> list:
        limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit}]
        if self.is_futures:
            return limits + [{"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                             {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}]
        return limits + [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                         {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                         {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}]

    # The desk's orders and fills -------------------------------------------------------------

    def order(self, spec, order: Order) -> dict:
        """allOrders row: spot rest_api_trading_endpoints.md 'All orders'; futures trade_rest_api_All_Orders.md."""
        price, orig, executed = self.price(spec, order.price), self.qty(spec, order.orig_qty), self.qty(
            spec, order.executed)
        if self.is_futures:
            avg = self.price(spec, order.cum_quote // order.executed) if order.executed else "0"
            return {
                "avgPrice": avg, "clientOrderId": order.client_order_id, "cumQuote": self.quote(spec, order.cum_quote),
                "executedQty": executed, "orderId": order.order_id, "origQty": orig, "origType": "LIMIT",
                "price": price, "reduceOnly": False, "side": order.side, "positionSide": "BOTH",
                "status": order.status, "stopPrice": "0", "closePosition": False, "symbol": spec.symbol,
                "time": order.time_ms, "timeInForce": order.time_in_force, "type": "LIMIT",
                "updateTime": order.update_ms, "workingType": "CONTRACT_PRICE", "priceProtect": False,
                "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
            }
        return {
            "symbol": spec.symbol, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "price": price, "origQty": orig, "executedQty": executed,
            "cummulativeQuoteQty": self.quote(spec, order.cum_quote), "status": order.status,
            "timeInForce": order.time_in_force, "type": order.order_type, "side": order.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": order.time_ms,
            "updateTime": order.update_ms, "isWorking": order.status != "EXPIRED",
            "workingTime": order.time_ms, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def fill(self, spec, fill: Fill) -> dict:
        """myTrades (rest_api_account_endpoints.md) / userTrades (trade_rest_api_Account_Trade_List.md)."""
        order = fill.order
        common_price, common_qty = self.price(spec, fill.price), self.qty(spec, fill.qty)
        quote = self.quote(spec, fill.price * fill.qty)
        commission = f"{fill.commission:.8f}"
        if self.is_futures:
            return {"buyer": order.side == "BUY", "commission": commission, "commissionAsset": fill.commission_asset,
                    "id": fill.trade_id, "maker": fill.is_maker, "orderId": order.order_id, "price": common_price,
                    "qty": common_qty, "quoteQty": quote, "realizedPnl": "0", "side": order.side,
                    "positionSide": "BOTH", "symbol": spec.symbol, "time": fill.time_ms}
        return {"symbol": spec.symbol, "id": fill.trade_id, "orderId": order.order_id, "orderListId": -1,
                "price": common_price, "qty": common_qty, "quoteQty": quote, "commission": commission,
                "commissionAsset": fill.commission_asset, "time": fill.time_ms, "isBuyer": order.side == "BUY",
                "isMaker": fill.is_maker, "isBestMatch": True}

    def order_event(self, spec, kind: str, order: Order, fill: Fill | None, now_ms: int, execution_id: int) -> dict:
        """executionReport (user_data_stream.md) / ORDER_TRADE_UPDATE (Event_Order_Update.md)."""
        last_qty = self.qty(spec, fill.qty) if fill else self.qty(spec, 0)
        last_price = self.price(spec, fill.price) if fill else self.price(spec, 0)
        if self.is_futures:
            avg = self.price(spec, order.cum_quote // order.executed) if order.executed else "0"
            body = {
                "s": spec.symbol, "c": order.client_order_id, "S": order.side, "o": "LIMIT",
                "f": order.time_in_force, "q": self.qty(spec, order.orig_qty), "p": self.price(spec, order.price),
                "ap": avg, "sp": "0", "x": kind, "X": order.status, "i": order.order_id, "l": last_qty,
                "z": self.qty(spec, order.executed), "L": last_price,
            }
            if fill:
                body.update(N=fill.commission_asset, n=f"{fill.commission:.8f}")
            body.update({
                "T": now_ms, "t": fill.trade_id if fill else 0, "b": "0", "a": "0",
                "m": fill.is_maker if fill else False, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT",
                "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_MAKER",
                "pm": "NONE", "gtd": 0,
            })
            return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": now_ms, "o": body}
        return {
            "e": "executionReport", "E": now_ms, "s": spec.symbol, "c": order.client_order_id, "S": order.side,
            "o": order.order_type, "f": order.time_in_force, "q": self.qty(spec, order.orig_qty),
            "p": self.price(spec, order.price), "P": "0.00000000", "F": "0.00000000", "g": -1,
            "C": order.client_order_id if kind == "CANCELED" else "", "x": kind, "X": order.status, "r": "NONE",
            "i": order.order_id, "l": last_qty, "z": self.qty(spec, order.executed), "L": last_price,
            "n": f"{fill.commission:.8f}" if fill else "0", "N": fill.commission_asset if fill else None,
            "T": now_ms, "t": fill.trade_id if fill else -1, "I": execution_id,
            "w": order.is_open, "m": fill.is_maker if fill else False, "M": False, "O": order.time_ms,
            "Z": self.quote(spec, order.cum_quote),
            "Y": self.quote(spec, fill.price * fill.qty) if fill else "0.00000000",
            "Q": "0.00000000", "W": order.time_ms, "V": "EXPIRE_MAKER",
        }


SPOT = Protocol("spot", "/api/v3", {"": 1000, "@100ms": 100}, 6000, None)
USDM = Protocol("usdm", "/fapi/v1", {"": 250, "@500ms": 500, "@100ms": 100, "@0ms": 0}, 2400,
                (5, 10, 20, 50, 100, 500, 1000))
# COIN-M is served for replays of the COIN-M captures: the USDⓈ-M wire format under /dapi/v1.
COINM = Protocol("coinm", "/dapi/v1", USDM.depth_speeds, 2400, USDM.depth_limits)
PROTOCOLS = {"spot": SPOT, "usdm": USDM, "coinm": COINM}
