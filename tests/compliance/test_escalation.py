"""The 90-day escalation ladder: warning → penalty → delisting review (DESIGN.md)."""
from datetime import date, datetime, timedelta, timezone

import pytest
from django.db import connection

from compliance import evaluation as ev
from compliance import judging
from compliance.models import EscalationStep
from compliance.rollups import roll_up_pending
from compliance.selectors import escalation_standing
from tests.compliance.engine_support import insert_samples, make_market, seconds

D1 = date(2026, 3, 2)


def test_ladder_steps_and_the_rolling_window():
    d2, d3, d4 = D1 + timedelta(days=5), D1 + timedelta(days=40), D1 + timedelta(days=60)
    assert ev.escalation_level([], D1) == (None, 0)
    assert ev.escalation_level([D1], D1) == ("warning", 1)
    assert ev.escalation_level([D1, d2], d2) == ("penalty", 2)
    assert ev.escalation_level([D1, d2, d3], d3) == ("delisting_review", 3)
    assert ev.escalation_level([D1, d2, d3, d4], d4) == ("delisting_review", 4)
    assert ev.escalation_level([D1, D1], D1) == ("warning", 1)  # one bad day is one step
    # 90 days later the first violation has left the window.
    assert ev.escalation_level([D1, d2], D1 + timedelta(days=90)) == ("warning", 1)
    assert ev.escalation_level([D1, d2], D1 + timedelta(days=89)) == ("penalty", 2)
    assert ev.escalation_level([d2], D1) == (None, 0)  # a later violation does not count yet


@pytest.mark.django_db
def test_violation_days_climb_the_ladder_and_re_judging_moves_it(admin_user):
    days = [D1, D1 + timedelta(days=3), D1 + timedelta(days=7)]
    start = datetime.combine(D1, datetime.min.time(), tzinfo=timezone.utc)
    market = make_market(at=start - timedelta(days=1), user=admin_user, vol_trigger_pct=None, vol_trigger_multiple=None,
                         uptime_required_pct=None)  # uptime not enforced: only the spread breaches count
    for day in days:
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
        insert_samples(market.pk, seconds(day_start, 60, spread=0.2) + seconds(day_start + timedelta(minutes=1), 60, spread=1.0))
    roll_up_pending()
    now = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=1)
    for day in days:
        judging.judge_day(market=market, day=day, now=now)
    steps = list(EscalationStep.objects.filter(market=market).order_by("day").values_list("day", "level", "violation_days_90d"))
    assert steps == [(days[0], "warning", 1), (days[1], "penalty", 2), (days[2], "delisting_review", 3)]
    assert escalation_standing(market_id=market.pk, on=days[2]) == {"level": "delisting_review", "violation_days_90d": 3}

    # The first day's wide minute turns out to be bad data and is deleted: re-judging it moves the later steps down.
    with connection.cursor() as cur:
        cur.execute("DELETE FROM compliance_sample WHERE market_id = %s AND ts >= %s AND ts < %s",
                    [market.pk, start + timedelta(minutes=1), start + timedelta(minutes=2)])
    roll_up_pending()
    judging.judge_day(market=market, day=days[0], now=now)
    steps = list(EscalationStep.objects.filter(market=market).order_by("day").values_list("day", "level"))
    assert steps == [(days[1], "warning"), (days[2], "penalty")]
