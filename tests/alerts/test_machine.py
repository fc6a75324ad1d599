"""The pure alert state machine: plain values in and out, no database."""
from datetime import datetime, timedelta, timezone

from alerts.machine import AlertState, Notice, Status, Timing, step

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
TIMING = Timing(for_seconds=60, clear_seconds=30, renotify_seconds=600)


def run(observations, *, timing=TIMING, state=None, muted_at=(), acked_from=None):
    """observations: [(seconds after T0, breached)] → (final state, [(seconds, changes, notice)])."""
    state = state or AlertState()
    trail = []
    for seconds, breached in observations:
        now = T0 + timedelta(seconds=seconds)
        result = step(state, breached=breached, now=now, timing=timing, muted=seconds in muted_at,
                      acknowledged=acked_from is not None and seconds >= acked_from)
        state = result.state
        trail.append((seconds, result.changes, result.notice))
    return state, trail


def notices(trail):
    return [(s, n) for s, _, n in trail if n is not None]


def test_breach_must_last_for_seconds_before_firing():
    state, trail = run([(0, True), (30, True), (59, True), (60, True)])
    assert trail[0][1] == (Status.PENDING,) and trail[2][1] == ()
    assert trail[3][1] == (Status.FIRING,) and trail[3][2] == Notice.FIRING
    assert state.status == Status.FIRING and state.breach_since == T0 and state.episode == 1


def test_pending_that_recovers_is_cancelled_silently():
    state, trail = run([(0, True), (30, False), (90, True)])
    assert trail[1][1] == (Status.OK,)
    assert notices(trail) == [] and state.status == Status.PENDING and state.breach_since == T0 + timedelta(seconds=90)


def test_zero_duration_fires_on_first_breach():
    state, trail = run([(0, True)], timing=Timing(0, 30, 600))
    assert trail[0][1] == (Status.PENDING, Status.FIRING) and trail[0][2] == Notice.FIRING


def test_resolution_needs_clear_seconds_and_is_announced():
    state, trail = run([(0, True), (60, True), (70, False), (90, False), (100, False)])
    assert trail[2][1] == () and trail[3][1] == ()  # 20 s clear < 30 s
    assert trail[4][1] == (Status.RESOLVED,) and trail[4][2] == Notice.RESOLVED
    assert state.resolved_at == T0 + timedelta(seconds=100)


def test_unknown_neither_fires_nor_resolves():
    state, trail = run([(0, True), (100, None), (200, None)])
    assert state.status == Status.PENDING and notices(trail) == []
    state, trail = run([(0, True), (60, True), (70, False), (200, None), (300, None)])
    assert state.status == Status.FIRING


def test_reminder_every_renotify_interval_until_acknowledged():
    obs = [(0, True)] + [(s, True) for s in range(60, 2000, 10)]
    _, trail = run(obs)
    assert notices(trail) == [(60, Notice.FIRING), (660, Notice.REMINDER), (1260, Notice.REMINDER), (1860, Notice.REMINDER)]
    _, trail = run(obs, acked_from=100)
    assert notices(trail) == [(60, Notice.FIRING)]


def test_acknowledged_alert_still_announces_resolution():
    _, trail = run([(0, True), (60, True), (70, False), (100, False)], acked_from=65)
    assert notices(trail) == [(60, Notice.FIRING), (100, Notice.RESOLVED)]


def test_flapping_faster_than_clear_seconds_is_one_episode_one_notice_per_interval():
    # Breached and clear alternate every 10 s for 30 minutes.
    obs = [(s, (s // 10) % 2 == 0) for s in range(0, 1800, 5)]
    state, trail = run(obs, timing=Timing(for_seconds=0, clear_seconds=30, renotify_seconds=600))
    sent = notices(trail)
    assert state.episode == 1
    assert [n for _, n in sent] == [Notice.FIRING, Notice.REMINDER, Notice.REMINDER]
    assert all(b - a >= 600 for (a, _), (b, _) in zip(sent, sent[1:]))


def test_flapping_slower_than_clear_gets_at_most_one_firing_notice_per_interval():
    # 60 s breached, 60 s clear: each cycle resolves, but new episodes inside the interval stay quiet.
    obs = [(s, (s // 60) % 2 == 0) for s in range(0, 1800, 5)]
    state, trail = run(obs, timing=Timing(for_seconds=0, clear_seconds=30, renotify_seconds=600))
    firing = [s for s, n in notices(trail) if n in (Notice.FIRING, Notice.REMINDER)]
    assert state.episode == 15
    assert len(firing) == 3 and all(b - a >= 600 for a, b in zip(firing, firing[1:]))
    # Every resolution recipients hear follows a firing notice they heard.
    heard = [n for _, n in notices(trail)]
    assert all(a != Notice.RESOLVED or b != Notice.RESOLVED for a, b in zip(heard, heard[1:]))


def test_mute_withholds_then_catches_up():
    obs = [(0, True), (60, True), (120, True), (180, True)]
    state, trail = run(obs, muted_at={60, 120})
    assert notices(trail) == [(180, Notice.FIRING)] and state.firing_since == T0 + timedelta(seconds=60)
    # Resolved during the mute after a firing notice: the resolution goes out when the mute ends.
    obs = [(0, True), (60, True), (70, False), (100, False), (130, False)]
    _, trail = run(obs, muted_at={70, 100})
    assert notices(trail) == [(60, Notice.FIRING), (130, Notice.RESOLVED)]


def test_nothing_announced_for_an_episode_resolved_entirely_under_mute():
    obs = [(0, True), (60, True), (70, False), (100, False), (130, False)]
    _, trail = run(obs, muted_at={0, 60, 70, 100})
    assert notices(trail) == []
