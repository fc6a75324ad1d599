"""The simulator process: venues under URL prefixes on one aiohttp server, the engine clock,
scenarios, and the control/truth endpoints under /_sim/.
"""
import asyncio
import math
import time
from dataclasses import dataclass, field

from aiohttp import web

from . import rest, streams
from .auth import Credentials
from .catalog import (DEMO_API_KEY, DEMO_API_SECRET, DEMO_ED25519_API_KEY, DEMO_ED25519_SEED_HEX, DEMO_VENUES,
                      VenueSpec)
from .scenarios import ScenarioError, conditions_for, parse
from .venue import Venue, dumps


@dataclass
class Options:
    seed: int = 1
    step_s: float = 0.05  # engine step; diff streams aggregate whole steps
    time_scale: float = 1.0  # multiplies scenario durations, the indicator cycle and lock time
    weight_limit: int | None = None  # None: Binance's (spot 6000, futures 2400 per minute)
    weight_window_s: float = 60.0
    ban_s: float = 120.0  # first IP ban lasts 2 minutes (rest_api_limits.md)
    listen_key_ttl_s: float = 3600.0
    connection_lifetime_s: float = 24 * 3600.0
    ping_interval_s: float = 20.0
    lock_s: float = 600.0  # quantitative-rules lock before the scale (10 min)
    quant_min_orders: int | None = None  # futures: orders in the cycle before judging; None = Binance's 2020 rules
    credentials: Credentials = field(default_factory=lambda: Credentials(
        DEMO_API_KEY, DEMO_API_SECRET, DEMO_ED25519_API_KEY, DEMO_ED25519_SEED_HEX))


class Simulator:
    def __init__(self, options: Options, *, venues: tuple[VenueSpec, ...] = DEMO_VENUES, scenario: str = "calm",
                 replays=()):
        self.options = options
        self.venues: dict[str, Venue] = {
            spec.name: Venue(spec, seed=options.seed, step_s=options.step_s, options=options) for spec in venues
        }
        for replay in replays:
            if replay.name in self.venues:
                raise ValueError(f"Replay venue {replay.name!r} collides with a simulated venue; name it differently.")
            self.venues[replay.name] = replay
        self.synthetic = [v for v in self.venues.values() if not v.is_replay]
        demo_markets = [(v.name, m.spec) for v in self.synthetic for m in v.markets.values()]
        self.scenarios = parse(scenario, time_scale=options.time_scale, demo_markets=demo_markets)
        self._demo_markets = demo_markets
        self._outage_windows: set = set()
        self.started = time.monotonic()
        self.paused = False
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        self._tasks: list[asyncio.Task] = []

    # Lifecycle -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_sim/state", self.get_state)
        app.router.add_get("/_sim/book", self.get_book)
        app.router.add_post("/_sim/faults", self.post_fault)
        app.router.add_post("/_sim/scenario", self.post_scenario)
        app.router.add_post("/_sim/pause", self.post_pause)
        app.router.add_route("*", "/{venue}/{tail:.*}", self.dispatch)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.runner = web.AppRunner(self.app(), handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.started = time.monotonic()
        self._tasks.append(asyncio.create_task(self._engine()))
        for venue in self.venues.values():
            if venue.is_replay:
                self._tasks.append(asyncio.create_task(venue.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for venue in self.venues.values():
            venue.close_connections()
        if self.runner:
            await self.runner.cleanup()

    async def _engine(self) -> None:
        step = self.options.step_s
        next_at = time.monotonic()
        while True:
            next_at += step
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:  # more than a second behind (a stalled machine): skip, don't burst
                next_at = time.monotonic()
            if self.paused:
                continue
            elapsed = time.monotonic() - self.started
            self._apply_scenarios(elapsed)
            for venue in self.synthetic:
                venue.step()
            for venue in self.venues.values():
                self._expire_listen_keys(venue)

    def _apply_scenarios(self, elapsed: float) -> None:
        for venue in self.synthetic:
            for symbol, market in venue.markets.items():
                market.conditions = conditions_for(self.scenarios, venue.name, symbol, elapsed)
        for scenario in self.scenarios:
            if scenario.name != "outage":
                continue
            since = scenario.phase(elapsed)
            if since is None:
                continue
            window = (id(scenario), math.floor((elapsed - scenario.start) / scenario.every) if scenario.every else 0)
            if window in self._outage_windows:
                continue
            self._outage_windows.add(window)
            target = scenario.venue or (scenario.market.split("/")[0] if scenario.market else None)
            for venue in self.venues.values():
                if target in (None, venue.name):
                    venue.start_outage(scenario.duration - since)

    def _expire_listen_keys(self, venue: Venue) -> None:
        for key in venue.expire_listen_keys():
            for conn in list(venue.user_connections):
                if conn.listen_key == key:
                    if venue.protocol.is_futures:  # Event_User_Data_Stream_Expired.md
                        stamp = int(time.time() * 1000)
                        venue.send_user_event(conn, {"e": "listenKeyExpired", "E": stamp, "listenKey": key})
                    conn.close()

    # Doors -----------------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        venue = self.venues.get(request.match_info["venue"])
        if venue is None:
            return web.Response(status=404, text="Not Found")
        tail = request.match_info["tail"]
        if tail in ("ws", "stream") or tail.startswith("ws/"):
            return await streams.market_stream(request, venue, tail)
        if tail == "ws-api/v3" and not venue.protocol.is_futures:
            return await streams.ws_api(request, venue)
        return await rest.handle(request, venue, "/" + tail)

    # Control and truth -----------------------------------------------------------------------

    def _venue_market(self, venue_name, symbol):
        venue = self.venues.get(venue_name or "")
        if venue is None:
            raise web.HTTPBadRequest(text=f"Unknown venue {venue_name!r}; known: {', '.join(self.venues)}.")
        if symbol is not None and symbol not in venue.markets:
            raise web.HTTPBadRequest(text=f"Venue {venue.name} has no symbol {symbol!r}.")
        return venue

    async def get_book(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        venue = self._venue_market(request.query.get("venue"), symbol)
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be an integer.")
        return web.json_response(venue.true_book(symbol, limit), dumps=dumps)

    async def get_state(self, request: web.Request) -> web.Response:
        elapsed = time.monotonic() - self.started
        venues = {}
        for venue in self.venues.values():
            markets = {}
            for symbol, market in venue.markets.items():
                book = market.book
                markets[symbol] = {
                    "update_id": book.update_id, "best_bid": book.best_bid and book.best_bid[0],
                    "best_ask": book.best_ask and book.best_ask[0],
                    "conditions": getattr(market, "conditions", None) and market.conditions.__dict__,
                    "locked": venue.desk.is_locked(symbol, int(time.time() * 1000)),
                }
            venues[venue.name] = {"market_type": venue.spec.market_type, "tier": venue.spec.tier,
                                  "connections": len(venue.connections), "user_connections": len(venue.user_connections),
                                  "in_outage": venue.in_outage, "markets": markets}
        return web.json_response({"ok": True, "elapsed_s": round(elapsed, 3), "paused": self.paused,
                                  "seed": self.options.seed, "time_scale": self.options.time_scale,
                                  "scenarios": [s.name for s in self.scenarios], "venues": venues}, dumps=dumps)

    async def _json_body(self, request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="Send a JSON object.")
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="Send a JSON object.")
        return body

    async def post_fault(self, request: web.Request) -> web.Response:
        """{"kind", "venue", "symbol"?, "count"?, "ms"?, "status"?}; kinds in Venue.add_fault."""
        body = await self._json_body(request)
        venue = self._venue_market(body.get("venue"), body.get("symbol"))
        try:
            venue.add_fault(str(body.get("kind")), symbol=body.get("symbol"), count=int(body.get("count", 1)),
                            ms=int(body.get("ms", 0)), status=body.get("status"))
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc))
        return web.json_response({"ok": True})

    async def post_scenario(self, request: web.Request) -> web.Response:
        """{"scenario": "cancel_storm(duration=30,market=binance-usdm/ETHUSDT)"}: starts now."""
        body = await self._json_body(request)
        try:
            added = parse(str(body.get("scenario", "")), time_scale=self.options.time_scale,
                          demo_markets=self._demo_markets)
        except ScenarioError as exc:
            raise web.HTTPBadRequest(text=str(exc))
        elapsed = time.monotonic() - self.started
        for scenario in added:
            scenario.start += elapsed
        self.scenarios.extend(added)
        return web.json_response({"ok": True, "added": [s.name for s in added]})

    async def post_pause(self, request: web.Request) -> web.Response:
        """{"paused": true} stops the engine after flushing every stream, so clients can catch up with the truth."""
        body = await self._json_body(request)
        self.paused = bool(body.get("paused", True))
        if self.paused:
            for venue in self.synthetic:
                venue.flush()
        return web.json_response({"ok": True, "paused": self.paused})
