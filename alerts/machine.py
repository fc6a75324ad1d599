"""The alert state machine, pure: plain values in, plain values out (no ORM, no clock, no I/O).

Per (rule, market): ok → pending → firing → resolved (→ pending → ...).

- A breach must last `for_seconds` before the alert fires (pending until then).
- A firing alert resolves only after the KPI has been back in range for `clear_seconds`
  (hysteresis: a metric flapping faster than that stays one firing episode).
- What recipients were last told is part of the state (`announced`). A notice goes out when
  the truth differs from what they heard, at most one firing notice per `renotify_seconds`
  (a new episode or a reminder), and one resolution notice per announced episode. Muting
  withholds notices (the state still moves); when the mute ends the next step catches up.
  An acknowledged alert gets no reminders, but its resolution is still announced.
- An unknown observation (no valid data) moves nothing: it neither fires nor resolves; the
  data-gap and collector-down rules speak for it.
"""
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Notice(StrEnum):
    FIRING = "firing"  # first notice of an episode (or the first after a mute/rate limit)
    REMINDER = "reminder"  # still firing after renotify_seconds, not acknowledged
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Timing:
    for_seconds: int
    clear_seconds: int
    renotify_seconds: int


@dataclass(frozen=True)
class AlertState:
    status: Status = Status.OK
    episode: int = 0
    breach_since: datetime | None = None  # first breaching observation of the current run
    firing_since: datetime | None = None
    clear_since: datetime | None = None  # while firing: first in-range observation of the current run
    resolved_at: datetime | None = None
    announced: Notice | None = None  # what recipients last heard: FIRING/REMINDER mean "firing"
    firing_announced_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    state: AlertState
    changes: tuple[Status, ...]  # state changes made by this step, in order (PENDING, FIRING, RESOLVED, or OK = cancelled)
    notice: Notice | None


def step(
    state: AlertState, *, breached: bool | None, now: datetime, timing: Timing, muted: bool = False, acknowledged: bool = False
) -> Step:
    changes: list[Status] = []
    s = state
    if breached is True:
        if s.status in (Status.OK, Status.RESOLVED):
            s = replace(s, status=Status.PENDING, breach_since=now, clear_since=None)
            changes.append(Status.PENDING)
        if s.status == Status.PENDING and now - s.breach_since >= timedelta(seconds=timing.for_seconds):
            s = replace(s, status=Status.FIRING, episode=s.episode + 1, firing_since=now, resolved_at=None)
            changes.append(Status.FIRING)
        elif s.status == Status.FIRING and s.clear_since is not None:
            s = replace(s, clear_since=None)
    elif breached is False:
        if s.status == Status.PENDING:
            s = replace(s, status=Status.OK, breach_since=None)
            changes.append(Status.OK)
        elif s.status == Status.FIRING:
            if s.clear_since is None:
                s = replace(s, clear_since=now)
            if now - s.clear_since >= timedelta(seconds=timing.clear_seconds):
                s = replace(s, status=Status.RESOLVED, resolved_at=now, breach_since=None, clear_since=None)
                changes.append(Status.RESOLVED)
    notice = None if muted else _notice_due(s, now=now, timing=timing, acknowledged=acknowledged)
    if notice is not None:
        s = replace(s, announced=notice)
        if notice != Notice.RESOLVED:
            s = replace(s, firing_announced_at=now)
    return Step(state=s, changes=tuple(changes), notice=notice)


def _notice_due(s: AlertState, *, now: datetime, timing: Timing, acknowledged: bool) -> Notice | None:
    heard_firing = s.announced in (Notice.FIRING, Notice.REMINDER)
    if s.status == Status.FIRING:
        interval_open = s.firing_announced_at is None or now - s.firing_announced_at >= timedelta(
            seconds=timing.renotify_seconds
        )
        if not interval_open:
            return None
        if not heard_firing:
            return Notice.FIRING
        if not acknowledged:
            return Notice.REMINDER
        return None
    if heard_firing and s.status in (Status.OK, Status.RESOLVED, Status.PENDING):
        # PENDING here means a new breach began after a resolution recipients have not heard yet.
        return Notice.RESOLVED
    return None
