"""`python manage.py seed_demo --sim-url http://127.0.0.1:8765`: the demo's venues, markets and
obligations, from the simulator's own catalog (simulator/catalog.py), idempotently."""
from decimal import Decimal
from urllib.parse import urlparse

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from compliance.models import Exchange, Market, ObligationVersion, Venue
from compliance.services import apply_tier_preset, change_obligation, load_tier_presets
from simulator.catalog import DEMO_OBLIGATION_OVERRIDES, DEMO_VENUES


class Command(BaseCommand):
    help = "Create the simulator demo's venues, markets and first obligation versions (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--sim-url", default="http://127.0.0.1:8765", help="the simulator's base URL")

    def handle(self, *args, sim_url, **options):
        parsed = urlparse(sim_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CommandError(f"--sim-url must look like http://host:port, got {sim_url!r}.")
        http_base = sim_url.rstrip("/")
        ws_base = ("wss://" if parsed.scheme == "https" else "ws://") + http_base.split("://", 1)[1]
        with transaction.atomic():
            load_tier_presets()
            created = self._seed(http_base, ws_base)
        self.stdout.write(f"Demo seeded: {created} new obligation versions; simulator at {http_base}.")

    def _seed(self, http_base: str, ws_base: str) -> int:
        created = 0
        for spec in DEMO_VENUES:
            venue, _ = Venue.objects.update_or_create(
                name=spec.name,
                defaults={
                    "exchange": Exchange.BINANCE,  # every demo venue speaks Binance's protocol
                    "market_type": spec.market_type,
                    "tier": spec.tier,
                    "rest_base_url": f"{http_base}/{spec.name}",
                    "ws_base_url": f"{ws_base}/{spec.name}",
                    "ws_api_url": f"{ws_base}/{spec.name}/ws-api/v3" if spec.market_type == "spot" else "",
                    "is_active": True,
                },
            )
            venue.full_clean()
            for market_spec in spec.markets:
                market, _ = Market.objects.update_or_create(
                    venue=venue,
                    symbol=market_spec.symbol,
                    defaults={
                        "base_asset": market_spec.base_asset,
                        "quote_asset": market_spec.quote_asset,
                        "tick_size": Decimal(market_spec.tick_size),
                        "min_notional": Decimal(market_spec.min_notional),
                        "is_active": True,
                    },
                )
                if ObligationVersion.objects.filter(market=market).exists():
                    continue
                apply_tier_preset(market=market, changed_by=None, reason="demo seed")
                created += 1
                override = DEMO_OBLIGATION_OVERRIDES.get((spec.name, market_spec.symbol))
                if override:
                    change_obligation(market=market, terms={k: Decimal(v) for k, v in override.items()},
                                      changed_by=None, reason="demo seed: market-specific contract")
                    created += 1
        return created
