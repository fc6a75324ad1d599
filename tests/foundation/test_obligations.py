"""Venues, markets, tier presets, versioned obligations and their validation."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from compliance import services
from compliance.models import TERM_FIELDS, Market, ObligationVersion, TierPreset, Venue, validate_terms
from compliance.selectors import NoObligation, obligation_in_force, obligation_periods

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def market(db):
    venue = Venue.objects.create(
        name="Binance spot", exchange="binance", market_type="spot", tier=1,
        rest_base_url="https://api.binance.com", ws_base_url="wss://stream.binance.com:9443",
    )
    return Market.objects.create(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"))


def test_tier_presets_are_loaded_as_data():
    presets = {p.tier: p for p in TierPreset.objects.all()}
    assert set(presets) == {1, 2, 3}
    assert (presets[1].spread_target_min_pct, presets[1].spread_target_max_pct, presets[1].spread_max_pct) == (
        Decimal("0.1"), Decimal("0.5"), Decimal("0.8"))
    assert presets[1].depth_min_usd == Decimal("25000") and presets[1].uptime_required_pct == Decimal("98")
    assert presets[2].spread_max_pct == Decimal("1.5") and presets[2].depth_min_usd == Decimal("10000")
    assert presets[3].spread_max_pct == Decimal("3.0") and presets[3].uptime_required_pct is None
    for p in presets.values():
        assert validate_terms(p.terms()) == {}
        assert p.spread_denominator == "ask" and p.depth_band_pct == Decimal("2") and p.early_warning_fraction == Decimal("0.9")


def test_first_version_comes_from_the_venue_tier_preset(market, admin_user):
    v1 = services.apply_tier_preset(market=market, changed_by=admin_user, reason="listing", effective_from=T0)
    assert v1.version == 1 and v1.preset.tier == 1 and v1.overrides() == {}
    assert v1.terms() == TierPreset.objects.get(tier=1).terms()


def test_override_is_a_new_version_and_the_old_one_is_kept(market, admin_user):
    v1 = services.apply_tier_preset(market=market, changed_by=admin_user, reason="listing", effective_from=T0)
    v2 = services.change_obligation(
        market=market, terms={"spread_max_pct": Decimal("0.6"), "spread_denominator": "mid"},
        changed_by=admin_user, reason="MMA amendment 2", effective_from=T0 + timedelta(hours=12),
    )
    assert v2.version == 2 and v2.changed_by == admin_user and v2.reason == "MMA amendment 2"
    assert v2.overrides() == {"spread_max_pct": (Decimal("0.8"), Decimal("0.6")), "spread_denominator": ("ask", "mid")}
    v1.refresh_from_db()
    assert v1.spread_max_pct == Decimal("0.8")  # untouched
    assert ObligationVersion.objects.filter(market=market).count() == 2


def test_version_in_force_at_any_instant(market, admin_user):
    services.apply_tier_preset(market=market, changed_by=admin_user, reason="listing", effective_from=T0)
    services.change_obligation(market=market, terms={"spread_max_pct": Decimal("0.6")}, changed_by=admin_user,
                               reason="tighter", effective_from=T0 + timedelta(hours=12))
    with pytest.raises(NoObligation):
        obligation_in_force(market_id=market.id, at=T0 - timedelta(seconds=1))
    assert obligation_in_force(market_id=market.id, at=T0).version == 1
    assert obligation_in_force(market_id=market.id, at=T0 + timedelta(hours=12) - timedelta(microseconds=1)).version == 1
    assert obligation_in_force(market_id=market.id, at=T0 + timedelta(hours=12)).version == 2
    periods = obligation_periods(market_id=market.id, start=T0, end=T0 + timedelta(days=1))
    assert [(lo.hour, hi - lo, v.version) for lo, hi, v in periods] == [(0, timedelta(hours=12), 1), (12, timedelta(hours=12), 2)]


@pytest.mark.parametrize(
    "terms, field, words",
    [
        ({"spread_target_max_pct": Decimal("0.9")}, "spread_target_max_pct", "cannot be above the maximum"),
        ({"spread_target_min_pct": Decimal("0.6")}, "spread_target_min_pct", "upside down"),
        ({"depth_min_usd": Decimal("-1")}, "depth_min_usd", "cannot be negative"),
        ({"uptime_required_pct": Decimal("100.5")}, "uptime_required_pct", "between 0 and 100"),
        ({"depth_band_pct": Decimal("0")}, "depth_band_pct", "above 0 %"),
        ({"early_warning_fraction": Decimal("1.2")}, "early_warning_fraction", "at most 1"),
    ],
)
def test_impossible_values_are_rejected_with_a_clear_message(market, admin_user, terms, field, words):
    services.apply_tier_preset(market=market, changed_by=admin_user, reason="listing", effective_from=T0)
    with pytest.raises(ValidationError) as err:
        services.change_obligation(market=market, terms=terms, changed_by=admin_user, reason="typo", effective_from=T0 + timedelta(hours=1))
    assert words in " ".join(err.value.message_dict[field])
    assert ObligationVersion.objects.filter(market=market).count() == 1


def test_a_change_needs_a_reason(market, admin_user):
    with pytest.raises(ValidationError) as err:
        services.apply_tier_preset(market=market, changed_by=admin_user, reason="  ")
    assert "reason" in err.value.message_dict


def test_every_term_is_a_model_field():
    names = {f.name for f in ObligationVersion._meta.get_fields()}
    assert set(TERM_FIELDS) <= names


def test_conversion_market_must_price_the_quote_asset(market):
    eth_btc = Market(venue=market.venue, symbol="ETHBTC", base_asset="ETH", quote_asset="BTC",
                     tick_size=Decimal("0.00001"), quote_conversion="market", conversion_market=market)
    eth_btc.full_clean()  # BTCUSDT prices BTC: fine
    wrong = Market(venue=market.venue, symbol="ETHEUR", base_asset="ETH", quote_asset="EUR",
                   tick_size=Decimal("0.01"), quote_conversion="market", conversion_market=market)
    with pytest.raises(ValidationError, match="not this market's quote asset EUR"):
        wrong.full_clean()
