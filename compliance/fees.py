"""Fees and rebates: VIP ladders as data, what the desk paid and earned, ladder vs MM program.

Money is Decimal throughout. Rates are in percent of traded notional (0.008 means 0.008 %); a
negative maker rate is a rebate. DESIGN.md 'Order behaviour', fees and rebates.
"""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from compliance.behaviour import FillRecord

LADDER_SOURCE = "reference/maker-fee-rebates-vip-ladder.txt"


@dataclass(frozen=True, slots=True)
class FeeTier:
    name: str
    min_volume_30d_usd: Decimal  # the tier applies from this 30-day volume up
    maker_rate_pct: Decimal
    taker_rate_pct: Decimal


def _tier(name: str, min_volume: str, maker: str, taker: str) -> FeeTier:
    return FeeTier(name, Decimal(min_volume), Decimal(maker), Decimal(taker))


# OKX USDT-margined futures after the April 2026 framework update (LADDER_SOURCE, 'The VIP
# ladder: where the sign actually flips (OKX, 2026)').
OKX_USDT_M_LADDER = (
    _tier("Regular", "0", "0.020", "0.050"),
    _tier("VIP 1", "5000000", "0.016", "0.045"),
    _tier("VIP 2", "10000000", "0.015", "0.036"),
    _tier("VIP 3", "50000000", "0.010", "0.028"),
    _tier("VIP 4", "200000000", "0.008", "0.027"),
    _tier("VIP 5", "600000000", "0.005", "0.026"),
    _tier("VIP 6", "1000000000", "0.000", "0.025"),
    _tier("VIP 7", "1500000000", "-0.002", "0.020"),
    _tier("VIP 8", "2000000000", "-0.005", "0.020"),
    _tier("VIP 9", "20000000000", "-0.005", "0.015"),
)
# Binance USDT-M futures: the source gives only the Regular rates (0.0200 % / 0.0500 %); its
# VIP thresholds are not in the reference, so no tier above Regular is invented here.
BINANCE_USDT_M_REGULAR = (_tier("Regular", "0", "0.0200", "0.0500"),)

# Commission assets worth 1 USD; anything else (BNB, BTC…) needs a rate from the caller.
STABLE_ASSETS = {"USDT": Decimal(1), "USDC": Decimal(1), "FDUSD": Decimal(1), "BUSD": Decimal(1), "USD": Decimal(1)}


def _money(name: str, value, *, signed: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        # Floats are refused: a money figure must arrive exact (the exchange's string or a Decimal).
        raise ValueError(f"{name} must be a Decimal, int or numeric string, got {value!r}.")
    try:
        number = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if not number.is_finite() or (number < 0 and not signed):
        raise ValueError(f"{name} must be a {'finite' if signed else 'non-negative finite'} number, got {value!r}.")
    return number


def vip_tier(volume_30d_usd, ladder: tuple[FeeTier, ...] = OKX_USDT_M_LADDER) -> FeeTier:
    """The highest tier whose 30-day volume threshold the volume reaches."""
    volume = _money("volume_30d_usd", volume_30d_usd)
    reached = [tier for tier in ladder if tier.min_volume_30d_usd <= volume]
    if not reached:
        raise ValueError(f"No tier of this ladder starts at or below {volume} USD.")
    return max(reached, key=lambda tier: tier.min_volume_30d_usd)


@dataclass(frozen=True, slots=True)
class FeeSummary:
    maker_volume_usd: Decimal
    taker_volume_usd: Decimal
    fees_paid_usd: Decimal  # positive commissions
    rebates_earned_usd: Decimal  # negative commissions, as a positive amount

    @property
    def net_fee_usd(self) -> Decimal:
        """Fees paid minus rebates earned: negative when the desk is paid to make."""
        return self.fees_paid_usd - self.rebates_earned_usd


def fees_and_rebates(
    fills: Iterable[FillRecord],
    *,
    quote_usd=Decimal(1),
    asset_usd: Mapping[str, Decimal] | None = None,
) -> FeeSummary:
    """Maker/taker volume, fees paid and rebates earned from the desk's fills, in USD.

    quote_usd converts the fills' quote currency; asset_usd gives USD per unit of each
    commission asset that is not a stablecoin (e.g. {"BNB": Decimal("580")}).
    """
    quote_usd = _money("quote_usd", quote_usd)
    rates = dict(STABLE_ASSETS)
    for asset, rate in (asset_usd or {}).items():
        rates[asset] = _money(f"USD rate of {asset}", rate)
    maker = taker = paid = earned = Decimal(0)
    for fill in fills:
        notional = fill.quote_qty * quote_usd
        if fill.is_maker:
            maker += notional
        else:
            taker += notional
        if fill.commission_asset not in rates:
            raise ValueError(
                f"Fill {fill.trade_id} paid commission in {fill.commission_asset}, which has no USD rate; pass it in asset_usd."
            )
        commission = fill.commission * rates[fill.commission_asset]
        if commission >= 0:
            paid += commission
        else:
            earned -= commission
    return FeeSummary(maker, taker, paid, earned)


def fees_at_rates(maker_volume_usd, taker_volume_usd, tier: FeeTier) -> FeeSummary:
    """What given volumes cost at a tier's rates: the same summary, from volumes instead of fills."""
    maker = _money("maker_volume_usd", maker_volume_usd)
    taker = _money("taker_volume_usd", taker_volume_usd)
    paid = earned = Decimal(0)
    for volume, rate in ((maker, tier.maker_rate_pct), (taker, tier.taker_rate_pct)):
        fee = volume * rate / 100
        if fee >= 0:
            paid += fee
        else:
            earned -= fee
    return FeeSummary(maker, taker, paid, earned)


@dataclass(frozen=True, slots=True)
class LadderVsProgram:
    maker_volume_usd: Decimal
    ladder_maker_fee_usd: Decimal  # positive: paid; negative: earned
    program_maker_fee_usd: Decimal
    swing_usd: Decimal  # ladder − program: what the program is worth a month on this flow


def ladder_vs_program(monthly_volume_usd, maker_share_pct, ladder_maker_rate_pct, program_maker_rate_pct) -> LadderVsProgram:
    """Maker fees on the same monthly flow at the VIP-ladder rate and at an MM program's rate.

    Worked check (LADDER_SOURCE, 'Worked example: VIP ladder vs. dedicated program'):
    $300M/month at 80 % maker is $240M maker volume; VIP 4 at 0.008 % pays $19,200; a
    −0.003 % program earns $7,200; the swing is $26,400 a month. Only the maker side is
    compared, as there: the taker rate is the same flow's cost either way.
    """
    volume = _money("monthly_volume_usd", monthly_volume_usd)
    share = _money("maker_share_pct", maker_share_pct)
    if share > 100:
        raise ValueError(f"maker_share_pct must be at most 100, got {maker_share_pct!r}.")
    ladder_rate = _money("ladder_maker_rate_pct", ladder_maker_rate_pct, signed=True)
    program_rate = _money("program_maker_rate_pct", program_maker_rate_pct, signed=True)
    maker_volume = volume * share / 100
    ladder_fee = maker_volume * ladder_rate / 100
    program_fee = maker_volume * program_rate / 100
    return LadderVsProgram(maker_volume, ladder_fee, program_fee, ladder_fee - program_fee)
