"""Partition maintenance (the beat task): daily partitions ahead, whole old days dropped."""
from datetime import timedelta

import pytest
from django.utils import timezone

from collectors.tasks import maintain_partitions
from compliance.partitions import ensure_partitions, existing_partitions


@pytest.mark.django_db
def test_creates_days_ahead_and_drops_days_past_retention(monkeypatch):
    monkeypatch.setenv("PARTITION_DAYS_AHEAD", "2")
    monkeypatch.setenv("SAMPLE_RETENTION_DAYS", "30")
    today = timezone.now().date()
    ensure_partitions(today - timedelta(days=40), today - timedelta(days=39))
    result = maintain_partitions()
    days = {day for _, day in existing_partitions("compliance_sample")}
    assert {today, today + timedelta(days=1), today + timedelta(days=2)} <= days
    assert not {d for d in days if d < today - timedelta(days=30)}
    assert len(result["dropped"]) == 4  # two days × (samples, book snapshots)
    assert maintain_partitions()["created"] == []  # idempotent
