"""Scenarios by name, combinable: each changes a market's conditions over a time window.

Syntax: `name` or `name(key=value,...)`, several joined by commas, e.g.
`calm,spread_blowout(start=10,duration=60,market=binance-usdm/XRPUSDT)`.
Common keys: start, duration (seconds, multiplied by the run's --time-scale), every (repeat
period, 0 = once), market (venue/SYMBOL; default every synthetic market), venue (outage).
`demo` runs each demo market's own scenarios from simulator/catalog.py.
"""
import re
from dataclasses import dataclass, field

from .market import Conditions

NAMES = ("calm", "spread_blowout", "depth_withdrawal", "volatility_spike", "cancel_storm", "outage", "demo")
ITEM = re.compile(r"\s*([a-z_]+)\s*(?:\(([^()]*)\))?\s*(?:,|$)")
DEFAULTS = {
    "spread_blowout": {"duration": 300, "factor": 3.0},
    "depth_withdrawal": {"duration": 300, "factor": 0.2},
    # recover=1: spread back to normal when the spike ends; recover=0: it stays wide for `hold` more seconds,
    # past a recovery window (DESIGN.md vol_recovery_minutes) that a watcher would allow.
    "volatility_spike": {"duration": 120, "factor": 8.0, "spread": 2.5, "recover": 1, "hold": 900},
    "cancel_storm": {"duration": 120},
    "outage": {"duration": 30},
}


class ScenarioError(ValueError):
    pass


@dataclass
class Scenario:
    name: str
    params: dict = field(default_factory=dict)
    start: float = 0.0
    duration: float = 0.0
    every: float = 0.0
    market: str | None = None  # "venue/SYMBOL"
    venue: str | None = None

    def phase(self, elapsed: float) -> float | None:
        """Seconds since this window opened, or None when outside it (times already scaled)."""
        since = elapsed - self.start
        if since < 0:
            return None
        if self.every > 0:
            since %= self.every
        return since if since < self.span else None

    @property
    def span(self) -> float:
        if self.name == "volatility_spike" and not self.params["recover"]:
            return self.duration + self.params["hold"]
        return self.duration

    def applies_to(self, venue: str, symbol: str) -> bool:
        if self.market:
            return self.market == f"{venue}/{symbol}"
        return self.venue in (None, venue)

    def apply(self, conditions: Conditions, since: float) -> None:
        p = self.params
        if self.name == "spread_blowout":
            conditions.spread *= p["factor"]
        elif self.name == "depth_withdrawal":
            conditions.depth *= p["factor"]
        elif self.name == "volatility_spike":
            if since < self.duration:
                conditions.volatility *= p["factor"]
            conditions.spread *= p["spread"]
        elif self.name == "cancel_storm":
            conditions.cancel_storm = True


def parse(text: str, *, time_scale: float, demo_markets=()) -> list[Scenario]:
    """Scenarios from the CLI/control syntax; `demo_markets` is [(venue, MarketSpec)] for `demo`."""
    text = text.strip()
    scenarios, pos = [], 0
    while pos < len(text):
        match = ITEM.match(text, pos)
        if not match or match.end() == pos:
            raise ScenarioError(f"Cannot read the scenario list at {text[pos:]!r}; use name or name(key=value,...).")
        pos = match.end()
        name, raw = match.group(1), match.group(2) or ""
        if name not in NAMES:
            raise ScenarioError(f"Unknown scenario {name!r}; known: {', '.join(NAMES)}.")
        if name == "demo":
            for venue, spec in demo_markets:
                for item in spec.demo_scenarios:
                    for scenario in parse(item, time_scale=time_scale):
                        scenario.market = scenario.market or f"{venue}/{spec.symbol}"
                        scenario.every = scenario.every or 600 * time_scale
                        scenarios.append(scenario)
            continue
        if name == "calm":
            continue
        scenarios.append(_build(name, raw, time_scale))
    return scenarios


def _build(name: str, raw: str, time_scale: float) -> Scenario:
    params = dict(DEFAULTS[name])
    params.setdefault("start", 0)
    params.setdefault("every", 0)
    where = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ScenarioError(f"{name}: expected key=value, got {pair!r}.")
        if key in ("market", "venue"):
            where[key] = value
            continue
        if key not in params:
            raise ScenarioError(f"{name}: unknown parameter {key!r}; known: {', '.join(sorted(params))}, market, venue.")
        try:
            params[key] = float(value)
        except ValueError:
            raise ScenarioError(f"{name}: {key} must be a number, got {value!r}.")
    if params["duration"] <= 0:
        raise ScenarioError(f"{name}: duration must be positive.")
    for key in ("hold",):
        if key in params:
            params[key] *= time_scale
    return Scenario(name, params, start=params["start"] * time_scale, duration=params["duration"] * time_scale,
                    every=params["every"] * time_scale, **where)


def conditions_for(scenarios, venue: str, symbol: str, elapsed: float) -> Conditions:
    conditions = Conditions()
    for scenario in scenarios:
        if scenario.name == "outage" or not scenario.applies_to(venue, symbol):
            continue
        since = scenario.phase(elapsed)
        if since is not None:
            scenario.apply(conditions, since)
    return conditions
