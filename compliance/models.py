"""The domain's stored things: venues, markets, obligations (versioned), own orders and fills.

Samples and minute bars live in time-partitioned tables created by SQL migrations
(see compliance/migrations and compliance/partitions.py); they have no Django model on purpose:
they are written with COPY and read with SQL.
"""
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class Exchange(models.TextChoices):
    BINANCE = "binance", "Binance"
    OKX = "okx", "OKX"
    COINBASE = "coinbase", "Coinbase"
    BYBIT = "bybit", "Bybit"
    KUCOIN = "kucoin", "KuCoin"
    GATE = "gate", "Gate.io"
    OTHER = "other", "Other"


class MarketType(models.TextChoices):
    SPOT = "spot", "Spot"
    USDM = "usdm", "USDⓈ-M futures"


class Tier(models.IntegerChoices):
    TIER_1 = 1, "Tier 1"
    TIER_2 = 2, "Tier 2"
    TIER_3 = 3, "Tier 3 / DEX aggregator"


class Venue(models.Model):
    name = models.CharField(max_length=64, unique=True)
    exchange = models.CharField(max_length=16, choices=Exchange.choices)
    market_type = models.CharField(max_length=8, choices=MarketType.choices)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    rest_base_url = models.URLField(help_text="e.g. https://api.binance.com or https://fapi.binance.com")
    ws_base_url = models.CharField(max_length=200, help_text="Market streams, e.g. wss://stream.binance.com:9443")
    ws_api_url = models.CharField(
        max_length=200, blank=True, help_text="Spot WebSocket API (user data), e.g. wss://ws-api.binance.com:443/ws-api/v3"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["tier", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        for name in ("ws_base_url", "ws_api_url"):
            value = getattr(self, name)
            if value and not value.startswith(("ws://", "wss://")):
                raise ValidationError({name: "A WebSocket URL starts with ws:// or wss://."})


class QuoteConversion(models.TextChoices):
    STABLE = "stable", "Stablecoin quote: 1 quote = 1 USD"
    MARKET = "market", "Via a conversion market's mid (e.g. ETHBTC via BTCUSDT)"


class Market(models.Model):
    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="markets")
    symbol = models.CharField(max_length=32)
    base_asset = models.CharField(max_length=16)
    quote_asset = models.CharField(max_length=16)
    tick_size = models.DecimalField(max_digits=24, decimal_places=12, validators=[MinValueValidator(Decimal(0))])
    min_notional = models.DecimalField(
        max_digits=24, decimal_places=8, default=Decimal(0), validators=[MinValueValidator(Decimal(0))]
    )
    quote_conversion = models.CharField(max_length=8, choices=QuoteConversion.choices, default=QuoteConversion.STABLE)
    conversion_market = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Market whose mid converts this market's quote asset to USD (its base must be the quote asset).",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["venue__tier", "venue__name", "symbol"]
        constraints = [models.UniqueConstraint(fields=["venue", "symbol"], name="market_unique_symbol_per_venue")]

    def __str__(self):
        return f"{self.venue.name}:{self.symbol}"

    def clean(self):
        if self.tick_size is not None and self.tick_size <= 0:
            raise ValidationError({"tick_size": "Tick size must be positive."})
        if self.quote_conversion == QuoteConversion.MARKET:
            if self.conversion_market_id is None:
                raise ValidationError({"conversion_market": "Choose the market that converts the quote asset to USD."})
            if self.conversion_market_id == self.pk:
                raise ValidationError({"conversion_market": "A market cannot convert its own quote."})
            if self.conversion_market.base_asset != self.quote_asset:
                raise ValidationError(
                    {
                        "conversion_market": f"{self.conversion_market} prices {self.conversion_market.base_asset}, "
                        f"not this market's quote asset {self.quote_asset}."
                    }
                )
        elif self.conversion_market_id is not None:
            raise ValidationError({"conversion_market": "A stablecoin-quoted market needs no conversion market."})


class SpreadDenominator(models.TextChoices):
    ASK = "ask", "Best ask (conservative; the listing-compliance article)"
    MID = "mid", "Mid price (Gate, Amberdata, most MMAs)"


class DepthReference(models.TextChoices):
    MID = "mid", "Mid price"
    TOUCH = "touch", "Best bid / best ask (Kaiko)"


class EvaluationMethod(models.TextChoices):
    MINUTE = "minute", "Per UTC minute"
    SNAPSHOT_SHARE = "snapshot_share", "Share of periodic snapshots (Bybit)"
    RANDOM_MINUTE = "random_minute", "One random snapshot per minute (OKX, Gate, CoinEx)"
    PRESENCE = "presence", "Presence of firm two-sided own quotes (MiFID II RTS 8)"


class MinuteRule(models.TextChoices):
    ALL_VALID = "all_valid", "Every valid sample in the minute within range"
    SHARE = "share", "At least a share of the minute's valid samples within range"
    AVERAGE = "average", "The minute's time-weighted average within range"


def _pct(**kwargs):
    return models.DecimalField(max_digits=9, decimal_places=4, **kwargs)


def _usd(**kwargs):
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)


# The parameter names, in one place: the preset, each version and every form use these.
TERM_FIELDS = (
    "spread_target_min_pct",
    "spread_target_max_pct",
    "spread_max_pct",
    "spread_denominator",
    "depth_band_pct",
    "depth_reference",
    "depth_min_usd",
    "depth_min_side_usd",
    "depth_counts_for_uptime",
    "uptime_required_pct",
    "evaluation_method",
    "minute_rule",
    "minute_rule_share_pct",
    "snapshot_interval_s",
    "snapshot_day_share_pct",
    "snapshot_month_share_pct",
    "presence_required_pct",
    "max_cancel_ratio_pct",
    "max_quote_deviation_pct",
    "min_depth_share_pct",
    "quote_refresh_ms",
    "slippage_order_usd",
    "vol_trigger_pct",
    "vol_trigger_multiple",
    "vol_cap_multiple",
    "vol_recovery_minutes",
    "early_warning_fraction",
    "dust_notional_usd",
    "indicator_warning_fraction",
)


class ObligationTerms(models.Model):
    """Every parameter of an obligation set (DESIGN.md, 'Obligations and tiers' and 'How a period is judged')."""

    spread_target_min_pct = _pct(help_text="Lower end of the target spread range, %.")
    spread_target_max_pct = _pct(help_text="Upper end of the target spread range, %: a minute above it is not compliant.")
    spread_max_pct = _pct(help_text="Maximum permitted spread, %: above it is a hard breach.")
    spread_denominator = models.CharField(max_length=3, choices=SpreadDenominator.choices, default=SpreadDenominator.ASK)
    depth_band_pct = _pct(default=Decimal("2"), help_text="Half-width of the depth band around the reference, %.")
    depth_reference = models.CharField(max_length=5, choices=DepthReference.choices, default=DepthReference.MID)
    depth_min_usd = _usd(null=True, blank=True, help_text="Minimum bid + ask depth within the band, USD.")
    depth_min_side_usd = _usd(null=True, blank=True, help_text="Minimum depth within the band on each side, USD.")
    depth_counts_for_uptime = models.BooleanField(
        default=True, help_text="A minute is compliant only if depth also stays at or above the minimum."
    )
    uptime_required_pct = _pct(null=True, blank=True, help_text="Required uptime, %; empty = not enforced.")
    evaluation_method = models.CharField(max_length=16, choices=EvaluationMethod.choices, default=EvaluationMethod.MINUTE)
    minute_rule = models.CharField(max_length=10, choices=MinuteRule.choices, default=MinuteRule.ALL_VALID)
    minute_rule_share_pct = _pct(default=Decimal("100"), help_text="For the 'share' minute rule, %.")
    snapshot_interval_s = models.PositiveIntegerField(default=10, help_text="snapshot_share: seconds between snapshots.")
    snapshot_day_share_pct = _pct(default=Decimal("75"), help_text="snapshot_share: % of a day's snapshots that must qualify.")
    snapshot_month_share_pct = _pct(default=Decimal("80"), help_text="snapshot_share: % of a month's days that must qualify.")
    presence_required_pct = _pct(default=Decimal("50"), help_text="presence: % of trading time with firm two-sided quotes.")
    max_cancel_ratio_pct = _pct(default=Decimal("8"), help_text="Cancelled / placed orders, % (LP guide: 8 %).")
    max_quote_deviation_pct = _pct(default=Decimal("0.05"), help_text="Own best quote's distance from the touch, %.")
    min_depth_share_pct = _pct(default=Decimal("10"), help_text="Own share of the depth within the band, %.")
    quote_refresh_ms = models.PositiveIntegerField(default=200, help_text="Target refresh interval for the best levels, ms.")
    slippage_order_usd = _usd(default=Decimal("10000"), help_text="Market order size for the slippage KPI, USD.")
    vol_trigger_pct = _pct(
        null=True, blank=True, default=Decimal("1.5"), help_text="Volatility exemption: 5-min realized volatility trigger, %."
    )
    vol_trigger_multiple = _pct(
        null=True, blank=True, default=Decimal("2"), help_text="…or this multiple of the 24 h average volatility."
    )
    vol_cap_multiple = _pct(default=Decimal("3"), help_text="Exempt widening up to this multiple of the target max.")
    vol_recovery_minutes = models.PositiveIntegerField(default=10, help_text="Spread back in range within this many minutes.")
    early_warning_fraction = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.9"), help_text="Warn at this fraction of each KPI."
    )
    dust_notional_usd = _usd(default=Decimal("50"), help_text="Orders below this notional count as dust (DR).")
    indicator_warning_fraction = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.8"), help_text="Warn at this fraction of a quantitative-rule trigger."
    )

    class Meta:
        abstract = True

    def terms(self) -> dict:
        return {name: getattr(self, name) for name in TERM_FIELDS}

    def clean(self):
        errors = validate_terms(self.terms())
        if errors:
            raise ValidationError(errors)


def validate_terms(t: dict) -> dict:
    """Impossible obligation values, as {field: message}; empty when the terms are coherent."""
    errors: dict[str, str] = {}

    def nonneg(name, label):
        if t.get(name) is not None and t[name] < 0:
            errors.setdefault(name, f"{label} cannot be negative.")

    def percent(name, label):
        value = t.get(name)
        if value is not None and not (0 <= value <= 100):
            errors.setdefault(name, f"{label} must be between 0 and 100 %.")

    for name, label in (
        ("spread_target_min_pct", "Target spread (low)"),
        ("spread_target_max_pct", "Target spread (high)"),
        ("spread_max_pct", "Maximum spread"),
        ("depth_min_usd", "Minimum depth"),
        ("depth_min_side_usd", "Minimum depth per side"),
        ("max_quote_deviation_pct", "Maximum quote deviation"),
        ("slippage_order_usd", "Slippage order size"),
        ("vol_trigger_pct", "Volatility trigger"),
        ("dust_notional_usd", "Dust notional"),
    ):
        nonneg(name, label)
    for name, label in (
        ("uptime_required_pct", "Required uptime"),
        ("minute_rule_share_pct", "Minute rule share"),
        ("snapshot_day_share_pct", "Daily snapshot share"),
        ("snapshot_month_share_pct", "Monthly day share"),
        ("presence_required_pct", "Required presence"),
        ("max_cancel_ratio_pct", "Maximum cancel ratio"),
        ("min_depth_share_pct", "Minimum depth share"),
        ("spread_max_pct", "Maximum spread"),
    ):
        percent(name, label)
    lo, hi, mx = t.get("spread_target_min_pct"), t.get("spread_target_max_pct"), t.get("spread_max_pct")
    if lo is not None and hi is not None and lo > hi:
        errors.setdefault("spread_target_min_pct", f"The target range is upside down: {lo} % is above {hi} %.")
    if hi is not None and mx is not None and hi > mx:
        errors.setdefault("spread_target_max_pct", f"The target spread ({hi} %) cannot be above the maximum permitted ({mx} %).")
    if mx is not None and mx <= 0:
        errors.setdefault("spread_max_pct", "The maximum permitted spread must be above 0 %.")
    band = t.get("depth_band_pct")
    if band is not None and not (0 < band <= 50):
        errors.setdefault("depth_band_pct", "The depth band must be above 0 % and at most 50 %.")
    if t.get("depth_counts_for_uptime") and t.get("depth_min_usd") is None and t.get("depth_min_side_usd") is None:
        errors.setdefault("depth_counts_for_uptime", "Depth cannot count for uptime without a minimum depth.")
    for name, label in (("early_warning_fraction", "Early-warning fraction"), ("indicator_warning_fraction", "Indicator warning fraction")):
        value = t.get(name)
        if value is not None and not (0 < value <= 1):
            errors.setdefault(name, f"{label} must be above 0 and at most 1 (e.g. 0.9 for 90 %).")
    if t.get("vol_cap_multiple") is not None and t["vol_cap_multiple"] < 1:
        errors.setdefault("vol_cap_multiple", "The volatility cap is a multiple of the target spread, at least 1.")
    if t.get("vol_trigger_multiple") is not None and t["vol_trigger_multiple"] <= 0:
        errors.setdefault("vol_trigger_multiple", "The volatility trigger multiple must be above 0.")
    if t.get("snapshot_interval_s") is not None and not (1 <= t["snapshot_interval_s"] <= 60):
        errors.setdefault("snapshot_interval_s", "The snapshot interval must be between 1 and 60 seconds.")
    return errors


class TierPreset(ObligationTerms):
    """Default obligations of a venue tier (DESIGN.md's tier table). Loaded as data; editable by admins."""

    tier = models.PositiveSmallIntegerField(choices=Tier.choices, unique=True)
    name = models.CharField(max_length=64)
    source = models.TextField(blank=True, help_text="Where these numbers come from.")

    class Meta:
        ordering = ["tier"]

    def __str__(self):
        return self.name


class ObligationVersion(ObligationTerms):
    """One version of a market's obligations. Versions are never edited: a change is a new row.

    The version in force at instant t is the one with the latest `effective_from` <= t
    (see compliance.selectors.obligation_in_force).
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="obligation_versions")
    version = models.PositiveIntegerField()
    effective_from = models.DateTimeField(db_index=True)
    preset = models.ForeignKey(TierPreset, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["market", "-effective_from", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["market", "version"], name="obligation_version_unique"),
            models.UniqueConstraint(fields=["market", "effective_from"], name="obligation_effective_unique"),
        ]

    def __str__(self):
        return f"{self.market} v{self.version} from {self.effective_from:%Y-%m-%d %H:%M:%S} UTC"

    def overrides(self) -> dict:
        """The terms that differ from the tier preset this version came from: {field: (preset, this)}."""
        if self.preset is None:
            return {}
        return {
            name: (getattr(self.preset, name), getattr(self, name))
            for name in TERM_FIELDS
            if getattr(self.preset, name) != getattr(self, name)
        }


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OwnOrder(models.Model):
    """The desk's order as the exchange last reported it; upserted by (market, order_id)."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="own_orders")
    order_id = models.BigIntegerField()
    client_order_id = models.CharField(max_length=64, blank=True)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=24)  # LIMIT, LIMIT_MAKER, MARKET, ...
    time_in_force = models.CharField(max_length=8, blank=True)  # GTC, IOC, FOK, GTX, GTD
    price = models.DecimalField(max_digits=30, decimal_places=12)
    orig_qty = models.DecimalField(max_digits=30, decimal_places=12)
    executed_qty = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    cum_quote_qty = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    status = models.CharField(max_length=20)  # NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED, ...
    placed_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When it reached a final status.")
    updated_at = models.DateTimeField(help_text="Exchange time of the last event applied.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["market", "order_id"], name="own_order_unique")]
        indexes = [models.Index(fields=["market", "placed_at"])]


class OwnFill(models.Model):
    """One of the desk's trades; upserted by (market, trade_id)."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="own_fills")
    trade_id = models.BigIntegerField()
    order_id = models.BigIntegerField()
    side = models.CharField(max_length=4, choices=Side.choices)
    price = models.DecimalField(max_digits=30, decimal_places=12)
    qty = models.DecimalField(max_digits=30, decimal_places=12)
    quote_qty = models.DecimalField(max_digits=30, decimal_places=12)
    commission = models.DecimalField(max_digits=30, decimal_places=12)
    commission_asset = models.CharField(max_length=16)
    is_maker = models.BooleanField()
    traded_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["market", "trade_id"], name="own_fill_unique")]
        indexes = [models.Index(fields=["market", "traded_at"])]


class ExchangeIndicator(models.Model):
    """What the exchange reports about the desk's order behaviour (futures GET /fapi/v1/apiTradingStatus).

    One row per poll and indicator; `market` is empty for account-level indicators (TMV).
    """

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="+")
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.PROTECT, related_name="exchange_indicators")
    indicator = models.CharField(max_length=8)  # UFR, IFER, GCR, ICR, DR, TMV
    value = models.FloatField()
    trigger_value = models.FloatField()
    is_locked = models.BooleanField(default=False)
    planned_recover_time = models.DateTimeField(null=True, blank=True)
    observed_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["market", "indicator", "-observed_at"])]


# --- Judged results (compliance/judging.py writes them; compliance/evaluation.py computes them) ---
#
# Minute bars live in the SQL table compliance_minute_bar (migration 0004, rolled up by
# compliance/rollups.py); everything below is what a judged period leaves behind.


class ExcusedOutage(models.Model):
    """An operator's statement that an outage was not the desk's fault (DESIGN.md 'Uptime').

    Only unknown minutes (no valid data) inside [start, end) are excused; a minute that was
    measured and found non-compliant stays non-compliant. Rows are never edited: revoking
    sets revoked_at/revoked_by, so the audit trail keeps who excused what, when and why.
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="excused_outages")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["market", "-start"]
        indexes = [models.Index(fields=["market", "start"])]

    def __str__(self):
        return f"{self.market} excused {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC"


class DailyResult(models.Model):
    """A market's judged UTC day (closed, or so far today). Re-judging replaces the row."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="daily_results")
    day = models.DateField()
    is_closed = models.BooleanField(help_text="False while the day is still running (uptime so far).")
    evaluation_methods = models.JSONField(help_text="Method of each obligation version used, e.g. ['minute'].")
    obligation_versions = models.JSONField(help_text="[{id, version, from, to}] of every version that judged a minute.")
    minutes_elapsed = models.PositiveIntegerField()
    compliant_minutes = models.PositiveIntegerField()
    non_compliant_minutes = models.PositiveIntegerField()
    unknown_minutes = models.PositiveIntegerField()
    excused_minutes = models.PositiveIntegerField()
    exempt_minutes = models.PositiveIntegerField(help_text="Non-compliant minutes covered by the volatility exemption.")
    uptime_raw_pct = models.FloatField(null=True)
    uptime_adjusted_pct = models.FloatField(null=True, help_text="With the volatility exemption applied.")
    uptime_required_pct = models.FloatField(null=True)
    passed = models.BooleanField(null=True, help_text="Null when uptime is not enforced.")
    breach_budget_minutes = models.IntegerField(null=True, help_text="Non-compliant minutes still allowed; < 0 = failed.")
    unrecoverable = models.BooleanField(default=False)
    coverage_pct = models.FloatField(help_text="Share of the elapsed seconds with a valid sample.")
    details = models.JSONField(default=dict, help_text="Per-version figures, exemption episodes, random-minute seed.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["market", "-day"]
        constraints = [models.UniqueConstraint(fields=["market", "day"], name="daily_result_unique")]

    def __str__(self):
        return f"{self.market} {self.day}: {self.uptime_adjusted_pct}"


class ViolationKind(models.TextChoices):
    SPREAD_MAX = "spread_max", "Spread above the maximum permitted"
    DEPTH_MIN = "depth_min", "Depth below the minimum"
    UPTIME = "uptime", "Uptime below the clause (unrecoverable)"


class Violation(models.Model):
    """A hard breach: one row per market, UTC day and kind, spanning its first and last minute."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="violations")
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=ViolationKind.choices)
    first_minute = models.DateTimeField()
    last_minute = models.DateTimeField()
    minutes = models.PositiveIntegerField()
    worst_value = models.FloatField(help_text="Highest spread %, lowest depth USD or final uptime %.")
    limit_value = models.FloatField()
    obligation_version = models.ForeignKey(ObligationVersion, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["market", "-day", "kind"]
        constraints = [models.UniqueConstraint(fields=["market", "day", "kind"], name="violation_unique_per_day")]


class EscalationLevel(models.TextChoices):
    # DESIGN.md 'Breaches, warnings, escalation': 1st violation → warning, 2nd → financial
    # penalty (bond deduction), 3rd → delisting review, over a rolling 90 days.
    WARNING = "warning", "Warning"
    PENALTY = "penalty", "Financial penalty (bond deduction)"
    DELISTING_REVIEW = "delisting_review", "Delisting review"


class EscalationStep(models.Model):
    """Where a market stood on the ladder after a violation day."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="escalation_steps")
    day = models.DateField(help_text="The violation day that reached this step.")
    level = models.CharField(max_length=16, choices=EscalationLevel.choices)
    violation_days_90d = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["market", "-day"]
        constraints = [models.UniqueConstraint(fields=["market", "day"], name="escalation_step_unique")]


class LiquidityAlertClock(models.Model):
    """Spread above 2 % on a tier-1 venue: the exchange may tag the market within 72 h of detection
    (reference/cex-listing-spread-depth-uptime-compliance.txt, line 2)."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="liquidity_alert_clocks")
    detected_at = models.DateTimeField()
    deadline = models.DateTimeField()
    peak_spread_pct = models.FloatField()
    last_above_at = models.DateTimeField()

    class Meta:
        ordering = ["market", "-detected_at"]
        constraints = [models.UniqueConstraint(fields=["market", "detected_at"], name="liquidity_clock_unique")]


class ScoreWindow(models.TextChoices):
    TRAILING_24H = "trailing_24h", "Trailing 24 h"
    CLOSED_DAY = "closed_day", "Closed UTC day"


class LiquidityScore(models.Model):
    """The 0–1000 liquidity score of a window (formula: compliance.evaluation.liquidity_score)."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="liquidity_scores")
    window = models.CharField(max_length=16, choices=ScoreWindow.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    score = models.FloatField(null=True, help_text="Null when the window has no valid data.")
    components = models.JSONField(help_text="Each component's measured value, KPI and points.")
    obligation_version = models.ForeignKey(ObligationVersion, null=True, on_delete=models.PROTECT, related_name="+")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["market", "-window_end"]
        constraints = [models.UniqueConstraint(fields=["market", "window", "window_end"], name="liquidity_score_unique")]
