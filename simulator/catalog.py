"""What the simulator serves, as plain data: venues (one URL prefix each) and their markets.

Defined once here; `seed_demo` reads the same description to create the product's Venue and
Market rows, so the demo database and the running simulator cannot disagree.
No Django imports: `python -m simulator` runs without the product.
"""
from dataclasses import dataclass, field

# The simulated desk's credentials (fixed demo defaults, overridable on the command line).
# HMAC-SHA256 key for REST and `userDataStream.subscribe.signature`; the Ed25519 seed signs
# `session.logon` on the spot WebSocket API, which accepts only Ed25519 keys
# (binance_spot_api_docs_websocket_api_authentication_requests.md).
DEMO_API_KEY = "simdemo-desk-key-7Hq2vL9xR4mN8pK3wT6yB1cF5gJ0sD2a"
DEMO_API_SECRET = "simdemo-desk-secret-Zr8uE3nW6qY1tP4kM7vB2xC9hL5jG0fA"
DEMO_ED25519_API_KEY = "simdemo-desk-ed25519-key-Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz"
DEMO_ED25519_SEED_HEX = "5a1d3e0c9b7f2a4c6e8d0b1f3a5c7e9d2b4f6a8c0e1d3b5f7a9c2e4d6f8b0a1c"


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    price_decimals: int  # tick size = 10**-price_decimals
    qty_decimals: int  # lot step = 10**-qty_decimals
    min_notional: str
    start_price: float
    # Desk ladder (the user's own quotes): distance of the best level from mid, total size per side.
    desk_half_spread_pct: float = 0.08
    desk_levels: int = 15
    desk_side_usd: float = 40_000.0
    # Everyone else's resting liquidity, and how fast the mid moves.
    background_half_spread_pct: float = 0.15
    background_side_usd: float = 30_000.0
    volatility_pct_per_min: float = 0.05
    takers_per_s: float = 2.0
    taker_usd: float = 800.0
    # Scenarios this market runs in the demo (names from simulator/scenarios.py, with params).
    demo_scenarios: tuple = ()

    @property
    def tick_size(self) -> str:
        return format_units(1, self.price_decimals)

    @property
    def step_size(self) -> str:
        return format_units(1, self.qty_decimals)


@dataclass(frozen=True)
class VenueSpec:
    name: str  # also the URL prefix: http://host:port/<name>/api/v3/...
    market_type: str  # "spot" or "usdm"
    tier: int
    markets: tuple = field(default_factory=tuple)
    maker_fee: str = "0.001"
    taker_fee: str = "0.001"


def format_units(units: int, decimals: int, shown: int | None = None) -> str:
    """Integer `units` of 10**-decimals as a decimal string with `shown` decimals (exact, no floats)."""
    shown = decimals if shown is None else shown
    if shown > decimals:
        units *= 10 ** (shown - decimals)
    elif shown < decimals:
        units //= 10 ** (decimals - shown)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(shown + 1, "0")
    return f"{sign}{digits[:-shown]}.{digits[-shown:]}" if shown else f"{sign}{digits}"


# The demo: three venues of two tiers; each market's scenarios make it compliant, warning or breaching.
# Spreads/depths are set against the tier presets in compliance/presets.py
# (tier 1: spread max 0.8 %, target ≤ 0.5 %, depth ≥ $25k; tier 2: max 1.5 %, target ≤ 1.0 %, depth ≥ $10k).
DEMO_VENUES = (
    VenueSpec(
        name="binance-spot",
        market_type="spot",
        tier=1,
        maker_fee="0.00075",
        taker_fee="0.00075",
        markets=(
            MarketSpec("BTCUSDT", "BTC", "USDT", 2, 5, "5.00000000", 65_000.0, desk_side_usd=60_000,
                       demo_scenarios=("calm",)),
            MarketSpec("ETHUSDT", "ETH", "USDT", 2, 4, "5.00000000", 3_200.0, desk_half_spread_pct=0.3,
                       background_half_spread_pct=0.45,
                       demo_scenarios=("volatility_spike(start=120,duration=90,recover=1)",)),
            MarketSpec("SOLUSDT", "SOL", "USDT", 2, 3, "5.00000000", 150.0, desk_side_usd=16_000,
                       background_side_usd=14_000,
                       demo_scenarios=("depth_withdrawal(start=60,duration=240,factor=0.3)",)),
        ),
    ),
    VenueSpec(
        name="binance-usdm",
        market_type="usdm",
        tier=1,
        maker_fee="0.0002",
        taker_fee="0.0005",
        markets=(
            MarketSpec("BTCUSDT", "BTC", "USDT", 1, 3, "100", 65_010.0, desk_side_usd=80_000,
                       demo_scenarios=("calm",)),
            MarketSpec("ETHUSDT", "ETH", "USDT", 2, 3, "20", 3_201.0,
                       demo_scenarios=("cancel_storm(start=180,duration=60)",)),
            MarketSpec("XRPUSDT", "XRP", "USDT", 4, 1, "5", 0.62, desk_half_spread_pct=0.3, background_half_spread_pct=0.5,
                       demo_scenarios=("spread_blowout(start=30,duration=300,factor=3)",)),
        ),
    ),
    VenueSpec(
        name="sim2-spot",
        market_type="spot",
        tier=2,
        maker_fee="0.001",
        taker_fee="0.001",
        markets=(
            MarketSpec("ADAUSDT", "ADA", "USDT", 4, 1, "1.00000000", 0.45, desk_half_spread_pct=0.3,
                       desk_side_usd=15_000, background_half_spread_pct=0.6, background_side_usd=6_000,
                       demo_scenarios=("calm",)),
            MarketSpec("DOGEUSDT", "DOGE", "USDT", 5, 0, "1.00000000", 0.12, desk_half_spread_pct=0.4,
                       desk_side_usd=9_000, background_half_spread_pct=0.7, background_side_usd=3_000,
                       demo_scenarios=("outage(start=240,duration=45)", "spread_blowout(start=400,duration=120)")),
        ),
    ),
)


# Contract terms that differ from the tier preset for some demo markets (seed_demo records them as
# a second obligation version, as a desk would after signing a market-specific agreement).
DEMO_OBLIGATION_OVERRIDES = {
    ("binance-usdm", "XRPUSDT"): {"spread_target_max_pct": "0.6", "spread_max_pct": "1.0"},
    ("sim2-spot", "DOGEUSDT"): {"depth_min_usd": "8000"},
}
