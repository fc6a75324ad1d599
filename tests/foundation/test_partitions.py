"""Daily partitions: created ahead, concurrently without errors, dropped for retention."""
import threading
from datetime import date

import pytest
from django.db import connection

from compliance.partitions import drop_partitions_before, ensure_partitions, existing_partitions


@pytest.mark.django_db(transaction=True)
def test_partitions_are_created_once_and_dropped_for_retention():
    created = ensure_partitions(date(2031, 1, 1), date(2031, 1, 3))
    assert "compliance_sample_p20310102" in created and len(created) == 6
    assert ensure_partitions(date(2031, 1, 1), date(2031, 1, 3)) == []
    dropped = drop_partitions_before(date(2031, 1, 3))
    assert {"compliance_sample_p20310101", "compliance_sample_p20310102", "compliance_book_snapshot_p20310101"} <= set(dropped)
    assert [d for _, d in existing_partitions("compliance_sample") if d.year == 2031] == [date(2031, 1, 3)]
    drop_partitions_before(date(2031, 1, 4))


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_of_the_same_day_does_not_fail():
    errors = []

    def create():
        try:
            ensure_partitions(date(2032, 2, 1), date(2032, 2, 2))
        except Exception as exc:  # the finding
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {d for _, d in existing_partitions("compliance_sample")} >= {date(2032, 2, 1), date(2032, 2, 2)}
    drop_partitions_before(date(2032, 2, 3))


@pytest.mark.django_db(transaction=True)
def test_minute_bar_retention_drops_only_old_bar_partitions(settings, monkeypatch):
    from compliance.rollups import MINUTE_BAR_TABLE
    from compliance.tasks import drop_old_minute_bars

    ensure_partitions(date(2020, 1, 1), date(2020, 1, 1), tables=(MINUTE_BAR_TABLE, "compliance_sample"))
    monkeypatch.setenv("MINUTE_BAR_RETENTION_DAYS", "30")
    dropped = drop_old_minute_bars()
    assert f"{MINUTE_BAR_TABLE}_p20200101" in dropped
    assert "compliance_sample_p20200101" not in dropped  # samples follow their own retention
    drop_partitions_before(date(2020, 1, 2))
