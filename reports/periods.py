"""Report periods: whole UTC days, ISO weeks, calendar months or any range, as [start, end).

Pure functions; every instant is timezone-aware UTC. A period always starts and ends on a
UTC minute, because the minute is the unit a period is judged in (DESIGN.md 'Uptime').
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

KINDS = ("day", "week", "month", "range")
# A report reads every 1 s sample of its period; a year per market is the most we accept on
# demand (≈ 31.5 M rows), beyond it the operator should split the request.
MAX_PERIOD = timedelta(days=366)


class InvalidPeriod(ValueError):
    """The requested period cannot be reported on (explains why)."""


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def label(self) -> str:
        if self.kind == "day":
            return f"{self.start:%Y-%m-%d}"
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        return f"{self.start:%Y-%m-%dT%H%MZ}_{self.end:%Y-%m-%dT%H%MZ}"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def day_period(day: date) -> Period:
    start = _midnight(day)
    return Period("day", start, start + timedelta(days=1))


def week_period(day: date) -> Period:
    """The ISO week (Monday to Monday, UTC) containing `day`."""
    start = _midnight(day - timedelta(days=day.weekday()))
    return Period("week", start, start + timedelta(days=7))


def month_period(day: date) -> Period:
    start = _midnight(day.replace(day=1))
    nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return Period("month", start, _midnight(nxt))


def range_period(start: datetime, end: datetime) -> Period:
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise InvalidPeriod(f"The period {name} must carry a time zone (all report times are UTC).")
        if value.second or value.microsecond:
            raise InvalidPeriod(f"The period {name} must fall on a whole minute, got {value.isoformat()}.")
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if end <= start:
        raise InvalidPeriod(f"The period ends ({end.isoformat()}) before it starts ({start.isoformat()}).")
    if end - start > MAX_PERIOD:
        raise InvalidPeriod(f"A report covers at most {MAX_PERIOD.days} days; split a longer period.")
    return Period("range", start, end)


def period_for(kind: str, *, day: date | None = None, start: datetime | None = None, end: datetime | None = None) -> Period:
    if kind == "day":
        return day_period(_need(day, kind))
    if kind == "week":
        return week_period(_need(day, kind))
    if kind == "month":
        return month_period(_need(day, kind))
    if kind == "range":
        if start is None or end is None:
            raise InvalidPeriod("A range needs both a start and an end.")
        return range_period(start, end)
    raise InvalidPeriod(f"The period kind must be one of {', '.join(KINDS)}, got {kind!r}.")


def _need(day: date | None, kind: str) -> date:
    if day is None:
        raise InvalidPeriod(f"A {kind} report needs a date inside the {kind}.")
    return day


def closed_day(now: datetime) -> Period:
    """The last full UTC day before `now` (what the 00:00 UTC run reports on)."""
    return day_period((now.astimezone(timezone.utc) - timedelta(days=1)).date())


def closed_month(now: datetime) -> Period:
    """The last full calendar month before `now` (what the run on the 1st reports on)."""
    today = now.astimezone(timezone.utc).date()
    return month_period(today.replace(day=1) - timedelta(days=1))


def ensure_closed(period: Period, now: datetime) -> None:
    """A report on a period still running would change when regenerated: refuse it."""
    if period.end > now:
        raise InvalidPeriod(
            f"The period ends at {period.end:%Y-%m-%d %H:%M} UTC, which has not passed yet; "
            "a report is only made for elapsed time so it can be regenerated identically."
        )
