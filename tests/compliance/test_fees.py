"""Hand-computed cases for compliance.fees (reference/maker-fee-rebates-vip-ladder.txt)."""
from decimal import Decimal as D

import pytest

from compliance.behaviour import FillRecord
from compliance.fees import (
    BINANCE_USDT_M_REGULAR,
    OKX_USDT_M_LADDER,
    fees_and_rebates,
    fees_at_rates,
    ladder_vs_program,
    vip_tier,
)


def fill(trade_id, quote_qty, is_maker, commission, asset="USDT"):
    return FillRecord(trade_id, 1, "SELL", D("100"), D(quote_qty) / 100, D(quote_qty), D(commission), asset, is_maker, 0)


def test_worked_example_ladder_vs_program():
    result = ladder_vs_program(D("300000000"), D("80"), OKX_USDT_M_LADDER[4].maker_rate_pct, D("-0.003"))
    assert OKX_USDT_M_LADDER[4].name == "VIP 4"
    assert result.maker_volume_usd == D("240000000")
    assert result.ladder_maker_fee_usd == D("19200")  # "You pay $19,200"
    assert result.program_maker_fee_usd == D("-7200")  # "You earn $7,200"
    assert result.swing_usd == D("26400")  # "$26,400 / month"


def test_ladder_matches_the_article_table():
    assert [(t.name, t.min_volume_30d_usd, t.maker_rate_pct, t.taker_rate_pct) for t in OKX_USDT_M_LADDER] == [
        ("Regular", D(0), D("0.020"), D("0.050")),
        ("VIP 1", D(5_000_000), D("0.016"), D("0.045")),
        ("VIP 2", D(10_000_000), D("0.015"), D("0.036")),
        ("VIP 3", D(50_000_000), D("0.010"), D("0.028")),
        ("VIP 4", D(200_000_000), D("0.008"), D("0.027")),
        ("VIP 5", D(600_000_000), D("0.005"), D("0.026")),
        ("VIP 6", D(1_000_000_000), D("0.000"), D("0.025")),
        ("VIP 7", D(1_500_000_000), D("-0.002"), D("0.020")),
        ("VIP 8", D(2_000_000_000), D("-0.005"), D("0.020")),
        ("VIP 9", D(20_000_000_000), D("-0.005"), D("0.015")),
    ]
    assert (BINANCE_USDT_M_REGULAR[0].maker_rate_pct, BINANCE_USDT_M_REGULAR[0].taker_rate_pct) == (D("0.02"), D("0.05"))


@pytest.mark.parametrize(
    "volume, tier",
    [(0, "Regular"), ("4999999.99", "Regular"), (5_000_000, "VIP 1"), (300_000_000, "VIP 4"), (D("1e9"), "VIP 6"), (D("5e10"), "VIP 9")],
)
def test_vip_tier(volume, tier):
    assert vip_tier(volume).name == tier


def test_vip_tier_rejects_bad_volume():
    with pytest.raises(ValueError, match="non-negative"):
        vip_tier(-1)
    with pytest.raises(ValueError, match="Decimal, int or numeric string"):
        vip_tier(1.5)


def test_fees_and_rebates_from_fills():
    fills = [
        fill(1, "10000", True, "-0.5"),  # a maker rebate of $0.50
        fill(2, "5000", False, "2.5"),  # taker fee $2.50
        fill(3, "2000", True, "0.001", asset="BNB"),  # $0.58 in BNB at $580
    ]
    summary = fees_and_rebates(fills, asset_usd={"BNB": D("580")})
    assert summary.maker_volume_usd == D("12000")
    assert summary.taker_volume_usd == D("5000")
    assert summary.fees_paid_usd == D("3.08")
    assert summary.rebates_earned_usd == D("0.5")
    assert summary.net_fee_usd == D("2.58")
    with pytest.raises(ValueError, match="BNB, which has no USD rate"):
        fees_and_rebates(fills)
    # An ETH-quoted market: volumes convert, commissions are already priced by asset.
    assert fees_and_rebates(fills[:2], quote_usd=D("3000")).maker_volume_usd == D("30000000")


def test_fees_at_rates_from_volumes():
    vip4 = vip_tier(300_000_000)
    summary = fees_at_rates(D("240000000"), D("60000000"), vip4)
    # 240M × 0.008 % = 19,200 maker; 60M × 0.027 % = 16,200 taker.
    assert summary.fees_paid_usd == D("35400") and summary.rebates_earned_usd == 0
    vip8 = vip_tier(D("2e9"))
    summary = fees_at_rates(D("1600000000"), D("400000000"), vip8)
    # 1.6B × −0.005 % = −80,000 (earned); 400M × 0.020 % = 80,000 paid: net zero.
    assert summary.rebates_earned_usd == D("80000") and summary.fees_paid_usd == D("80000")
    assert summary.net_fee_usd == 0


def test_ladder_vs_program_rejects_impossible_shares():
    with pytest.raises(ValueError, match="at most 100"):
        ladder_vs_program(1, 101, D("0.01"), D("-0.001"))
    with pytest.raises(ValueError, match="non-negative"):
        ladder_vs_program(-1, 80, D("0.01"), D("-0.001"))


def test_fees_from_real_futures_fills():
    from tests.compliance.test_behaviour import _real_futures_orders_and_fills

    events, _, fills = _real_futures_orders_and_fills()
    trades = [e for e in events if e["x"] == "TRADE"]
    bnb_usd = D("590")  # BNBUSDT traded near 589–596 in these very events
    expected_paid = sum(D(e["n"]) * (bnb_usd if e["N"] == "BNB" else 1) for e in trades)
    summary = fees_and_rebates(fills, asset_usd={"BNB": bnb_usd})
    assert summary.fees_paid_usd == expected_paid > 0
    assert summary.rebates_earned_usd == 0  # a regular account: no negative commissions
    assert summary.maker_volume_usd + summary.taker_volume_usd == sum(D(e["L"]) * D(e["l"]) for e in trades)
