"""Writes of the domain: obligation changes (always a new, audited version) and presets."""
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .models import TERM_FIELDS, Market, ObligationVersion, TierPreset, validate_terms
from .presets import SOURCE, TIER_PRESETS


def load_tier_presets() -> list[TierPreset]:
    """Create or refresh the three presets from compliance/presets.py (idempotent)."""
    presets = []
    for tier, values in TIER_PRESETS.items():
        preset, _ = TierPreset.objects.update_or_create(tier=tier, defaults={**values, "source": SOURCE})
        presets.append(preset)
    return presets


@transaction.atomic
def change_obligation(
    *, market: Market, terms: dict, changed_by, reason: str, effective_from: datetime | None = None, preset=None
) -> ObligationVersion:
    """Record a new version of `market`'s obligations; earlier versions stay as they were.

    `terms` may be partial: unspecified fields carry over from the version in force at
    `effective_from` (or from the preset for a first version).
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the obligation changes; it goes into the audit trail."})
    effective_from = effective_from or timezone.now()
    Market.objects.select_for_update().get(pk=market.pk)  # serialize version numbers per market
    unknown = set(terms) - set(TERM_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown obligation terms: {', '.join(sorted(unknown))}.")
    base = (
        ObligationVersion.objects.filter(market=market, effective_from__lte=effective_from)
        .order_by("-effective_from", "-version")
        .first()
    )
    if preset is None and base is not None:
        preset = base.preset
    if preset is None:
        preset = TierPreset.objects.filter(tier=market.venue.tier).first()
    source = base or preset
    values = {name: getattr(source, name) for name in TERM_FIELDS} if source is not None else {}
    values.update(terms)
    errors = validate_terms(values)
    if errors:
        raise ValidationError(errors)
    number = (ObligationVersion.objects.filter(market=market).aggregate(n=Max("version"))["n"] or 0) + 1
    version = ObligationVersion(
        market=market, version=number, effective_from=effective_from, preset=preset,
        changed_by=changed_by, reason=reason.strip(), **values,
    )
    version.full_clean()
    version.save()
    return version


def apply_tier_preset(*, market: Market, changed_by, reason: str, effective_from: datetime | None = None) -> ObligationVersion:
    """A new version equal to the preset of the market's venue tier (drops any override)."""
    preset = TierPreset.objects.get(tier=market.venue.tier)
    return change_obligation(
        market=market, terms=preset.terms(), changed_by=changed_by, reason=reason,
        effective_from=effective_from, preset=preset,
    )
