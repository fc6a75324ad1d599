"""The three tier presets, as data (DESIGN.md 'Obligations and tiers', from
reference/cex-listing-spread-depth-uptime-compliance.txt).

Where the source gives a range (tier-1 depth $25k–$50k, tier-2 uptime 90–95 %), the preset
takes the floor the exchanges accept; a market's own contract overrides it in its versions.
"""
from decimal import Decimal as D

SOURCE = "reference/cex-listing-spread-depth-uptime-compliance.txt, tier table"

TIER_PRESETS = {
    1: {
        "name": "Tier 1 (Binance, OKX, Coinbase)",
        "spread_target_min_pct": D("0.1"),
        "spread_target_max_pct": D("0.5"),
        "spread_max_pct": D("0.8"),
        "depth_min_usd": D("25000"),
        "uptime_required_pct": D("98"),
    },
    2: {
        "name": "Tier 2 (Bybit, KuCoin, Gate.io)",
        "spread_target_min_pct": D("0.5"),
        "spread_target_max_pct": D("1.0"),
        "spread_max_pct": D("1.5"),
        "depth_min_usd": D("10000"),
        "uptime_required_pct": D("90"),
    },
    3: {
        "name": "Tier 3 / DEX aggregators",
        "spread_target_min_pct": D("1.0"),
        "spread_target_max_pct": D("2.0"),
        "spread_max_pct": D("3.0"),
        "depth_min_usd": D("5000"),
        "uptime_required_pct": None,  # not enforced
    },
}
