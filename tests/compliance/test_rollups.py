"""Minute bars from samples (compliance/rollups.py), against the real Postgres."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.rollups import roll_up, roll_up_pending
from compliance.selectors import minute_bars
from tests.compliance.engine_support import Sample, insert_samples, make_market, seconds

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.django_db


def test_a_minute_bar_summarises_its_samples():
    market = make_market(at=T0 - timedelta(days=1))
    samples = seconds(T0, 60, spread=0.2)
    samples[10].spread = 0.7  # above the 0.5 % target maximum
    samples[20].spread = None  # invalid second
    samples[30].depth_bid = 1000.0  # depth below the $25k minimum
    del samples[40]  # missing second
    insert_samples(market.pk, samples)
    roll_up_pending()
    bar = minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=1))[T0]
    assert (bar.samples, bar.valid_samples, bar.judged_samples, bar.in_range_samples) == (59, 58, 58, 56)
    assert bar.spread_max == pytest.approx(0.7)
    assert bar.spread_min == pytest.approx(0.2)
    assert bar.depth_total_min == pytest.approx(21_000)
    assert not bar.judged_mask >> 20 & 1 and not bar.judged_mask >> 40 & 1 and bar.judged_mask >> 41 & 1
    assert not bar.in_range_mask >> 10 & 1 and not bar.in_range_mask >> 30 & 1 and bar.in_range_mask >> 11 & 1


def _bars_without_ids(market_id, start, end):
    return {m: b._replace(obligation_version_id=None) for m, b in minute_bars(market_id=market_id, start=start, end=end).items()}


def _varied_samples(start, n_seconds, rng):
    samples = []
    for i in range(n_seconds):
        if rng.random() < 0.08:
            continue  # a missing second
        spread = None if rng.random() < 0.05 else round(rng.uniform(0.05, 1.2), 4)
        samples.append(Sample(
            ts=start + timedelta(seconds=i), spread=spread, depth_bid=rng.uniform(5_000, 30_000),
            depth_ask=rng.uniform(5_000, 30_000), ask=100 + rng.uniform(-2, 2),
            slip=None if rng.random() < 0.05 else rng.uniform(0, 0.5),
            own_dev=None if rng.random() < 0.3 else rng.uniform(0, 0.3),
        ))
    return samples


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), splits=st.lists(st.integers(1, 599), max_size=6), shuffle=st.booleans(),
       window_cuts=st.lists(st.integers(0, 10), min_size=1, max_size=4))
def test_rollups_of_the_same_samples_are_identical_however_batched(seed, splits, shuffle, window_cuts):
    """Market A gets the samples in one batch, rolled up once; market B the same samples in
    other batches and orders, rolled up after each batch and over other windows."""
    import random

    rng = random.Random(seed)
    with transaction.atomic():  # hypothesis examples share the test's database: undo each one
        suffix = f"{seed}-{len(splits)}-{shuffle}"
        a = make_market(symbol=f"A{suffix}", at=T0 - timedelta(days=1))
        b = make_market(symbol=f"B{suffix}", at=T0 - timedelta(days=1))
        samples = _varied_samples(T0, 600, rng)
        insert_samples(a.pk, samples)
        roll_up_pending()
        order = list(samples)
        if shuffle:
            rng.shuffle(order)
        cuts = sorted(set(splits))
        for lo, hi in zip([0, *cuts], [*cuts, len(order)]):
            insert_samples(b.pk, order[lo:hi])
            roll_up_pending()
        for cut in sorted(set(window_cuts)):
            roll_up(start=T0 + timedelta(minutes=cut), end=T0 + timedelta(minutes=cut + 1, seconds=17), market_ids=[b.pk])
        end = T0 + timedelta(minutes=10)
        bars_a, bars_b = _bars_without_ids(a.pk, T0, end), _bars_without_ids(b.pk, T0, end)
        assert len(bars_a) == 10
        assert bars_a == bars_b
        transaction.set_rollback(True)


def test_late_data_re_rolls_only_the_minutes_it_touches():
    market = make_market(at=T0 - timedelta(days=1))
    insert_samples(market.pk, seconds(T0, 300, spread=0.2))
    assert roll_up_pending() == {(market.pk, T0.date())}
    before = {m: b for m, b in minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=5)).items()}
    with connection.cursor() as cur:
        cur.execute("SELECT minute, rolled_at FROM compliance_minute_bar WHERE market_id = %s", [market.pk])
        rolled_before = dict(cur.fetchall())
    # Correct one second of minute 2 after the fact: delete it and backfill a wide one.
    with connection.cursor() as cur:
        cur.execute("DELETE FROM compliance_sample WHERE market_id = %s AND ts = %s", [market.pk, T0 + timedelta(seconds=130)])
    insert_samples(market.pk, [Sample(ts=T0 + timedelta(seconds=130), spread=0.9)])
    assert roll_up_pending() == {(market.pk, T0.date())}
    with connection.cursor() as cur:
        cur.execute("SELECT minute, rolled_at FROM compliance_minute_bar WHERE market_id = %s", [market.pk])
        rolled_after = dict(cur.fetchall())
    changed = {m for m in rolled_after if rolled_after[m] != rolled_before[m]}
    assert changed == {T0 + timedelta(minutes=2)}
    after = minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=5))
    assert after[T0 + timedelta(minutes=2)].spread_max == pytest.approx(0.9)
    assert after[T0 + timedelta(minutes=2)].in_range_samples == 59
    assert {m: b for m, b in after.items() if m not in changed} == {m: b for m, b in before.items() if m not in changed}
    assert roll_up_pending() == set()  # nothing left to do


def test_a_minute_whose_samples_are_deleted_loses_its_bar():
    market = make_market(at=T0 - timedelta(days=1))
    insert_samples(market.pk, seconds(T0, 120))
    roll_up_pending()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM compliance_sample WHERE market_id = %s AND ts >= %s", [market.pk, T0 + timedelta(minutes=1)])
    roll_up_pending()
    assert list(minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(hours=1))) == [T0]


def test_bar_uses_the_obligation_denominator_and_band():
    market = make_market(at=T0 - timedelta(days=1), spread_denominator="mid", depth_band_pct=Decimal("1"))
    insert_samples(market.pk, seconds(T0, 60, spread=1.0, band=2.0))  # depth measured in the wrong band
    roll_up_pending()
    b = minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=1))[T0]
    assert b.spread_max == pytest.approx(1.0 / (1 - 0.005))  # (ask − bid) / mid with bid = 0.99 ask
    assert b.valid_samples == 60 and b.judged_samples == 0  # depth counts, but not for the contracted ±1 %


def test_presence_counts_two_sided_own_quotes_within_the_maximum():
    market = make_market(at=T0 - timedelta(days=1))  # maximum 0.8 %
    samples = seconds(T0, 30, spread=0.2, own_dev=0.1) + seconds(T0 + timedelta(seconds=30), 30, spread=0.2, own_dev=0.4)
    insert_samples(market.pk, samples)
    roll_up_pending()
    # own spread ≈ 0.2 + 0.1 + 0.1 = 0.4 % (present) vs ≈ 1.0 % (too wide)
    assert minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=1))[T0].presence_samples == 30


def test_roll_up_refuses_naive_or_empty_periods():
    with pytest.raises(ValueError, match="timezone-aware"):
        roll_up(start=datetime(2026, 3, 2), end=datetime(2026, 3, 3))
    with pytest.raises(ValueError, match="Empty period"):
        roll_up(start=T0, end=T0)


def test_roll_up_presence_agrees_with_compliance_metrics():
    """The SQL's own-quote spread is compliance.metrics.spread_pct of the own best bid and ask
    (reconstructed from their deviations from the touch) against the maximum spread."""
    import random

    from compliance.metrics import spread_pct

    market = make_market(at=T0 - timedelta(days=1), spread_denominator="mid")  # maximum 0.8 %
    rng = random.Random(3)
    samples = [Sample(ts=T0 + timedelta(seconds=i), spread=rng.uniform(0.1, 0.6), ask=rng.uniform(50, 150),
                      own_dev=rng.uniform(0.0, 0.4)) for i in range(60)]
    insert_samples(market.pk, samples)
    roll_up_pending()
    expected = 0
    for s in samples:
        _, _, _, bid, ask, *_ = s.row(market.pk)
        own_bid, own_ask = bid * (1 - s.own_dev / 100), ask * (1 + s.own_dev / 100)
        expected += spread_pct(own_bid, own_ask, "mid") <= 0.8
    assert 0 < expected < 60
    assert minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=1))[T0].presence_samples == expected


def test_minutes_before_the_first_obligation_are_rolled_up_but_not_judged():
    market = make_market(at=T0 + timedelta(minutes=1, seconds=30))  # governs from 10:02
    insert_samples(market.pk, seconds(T0, 180, spread=0.2))
    roll_up_pending()
    bars = minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=3))
    assert [(b.obligation_version_id is None, b.valid_samples, b.judged_samples) for b in bars.values()] == [
        (True, 60, 0), (True, 60, 0), (False, 60, 60)
    ]


def test_a_concurrent_roll_up_of_the_same_minutes_is_overwritten_not_an_error():
    """Another roll-up commits bars for our minutes between our DELETE and INSERT: the plain
    INSERT meets a unique violation and the roll-up falls back to the upsert, which also removes
    that roll-up's bar of a minute our samples no longer have."""
    market = make_market(at=T0 - timedelta(days=1))
    insert_samples(market.pk, seconds(T0, 120, spread=0.2))
    roll_up_pending()
    expected = minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(hours=1))
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM compliance_minute_bar WHERE market_id = %s AND minute = %s", [market.pk, T0])
        row = list(cur.fetchone())
        columns = [c.name for c in cur.description]

    injected = []

    def other_roll_up(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().startswith("DELETE FROM compliance_minute_bar b") and not injected:
            injected.append(sql)
            with connection.cursor() as cur:
                for minute, spread_max in ((T0, 9.9), (T0 + timedelta(minutes=5), 0.3)):  # a changed and a stale bar
                    values = dict(zip(columns, row), minute=minute, spread_max=spread_max)
                    cur.execute(f"INSERT INTO compliance_minute_bar ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))})",
                                list(values.values()))
        return result

    with connection.execute_wrapper(other_roll_up):
        assert roll_up(start=T0, end=T0 + timedelta(hours=1), market_ids=[market.pk]) == 2
    assert injected
    assert minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(hours=1)) == expected
