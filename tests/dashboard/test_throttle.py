"""The consumers' per-market throttle (dashboard.consumers.Throttle) on an injected clock: no sleeping."""
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from dashboard.consumers import Throttle, sample_time


class Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def offer(throttle, key, sample, **payload):
    throttle.offer(key, sample, {"sample": sample, **payload})


def test_first_update_goes_at_once():
    clock = Clock()
    t = Throttle(clock=clock)
    offer(t, 1, 1000.0)
    assert t.take() == {1: {"sample": 1000.0}}
    assert t.take() == {}


def test_updates_within_a_second_are_coalesced_to_the_newest_and_go_one_second_after_the_last_send():
    clock = Clock()
    t = Throttle(clock=clock)
    offer(t, 1, 1000.0, spread=0.1)
    assert t.take()[1]["spread"] == 0.1
    for n, spread in enumerate((0.2, 0.3, 0.4)):  # newer states of the same second, 0.1 s apart
        clock.t += 0.1
        offer(t, 1, 1000.0 + n * 0.1, spread=spread)
        assert t.take() == {}
    clock.t = 100.99
    assert t.take() == {}
    clock.t = 101.0
    assert t.take() == {1: {"sample": 1000.2, "spread": 0.4}}
    clock.t = 105.0
    assert t.take() == {}  # nothing new held: nothing sent again


def test_the_next_seconds_sample_goes_at_once_even_a_little_under_a_second_after_the_last_send():
    # Samples are taken on the second; their delivery jitters by a few ms. Each second's sample goes
    # out on arrival, so the delay never builds up from one second to the next.
    clock = Clock(100.030)
    t = Throttle(clock=clock)
    offer(t, 1, 1000.0)
    assert 1 in t.take()
    for second, arrival in ((1001.0, 101.010), (1002.0, 102.001), (1003.0, 103.040), (1004.0, 103.999)):
        clock.t = arrival
        offer(t, 1, second)
        assert t.take() == {1: {"sample": second}}, f"second {second} held back"


def test_bunched_seconds_are_held_and_sent_as_the_newest_half_a_second_after_the_last():
    clock = Clock()
    t = Throttle(clock=clock)
    offer(t, 1, 1000.0)
    assert 1 in t.take()
    clock.t += 0.01
    offer(t, 1, 1001.0)
    offer(t, 1, 1002.0)
    assert t.take() == {}
    clock.t = 100.49
    assert t.take() == {}
    clock.t = 100.5
    assert t.take() == {1: {"sample": 1002.0}}


def test_an_update_older_than_the_one_sent_is_dropped():
    clock = Clock()
    t = Throttle(clock=clock)
    offer(t, 1, 1005.0)
    t.take()
    offer(t, 1, 1004.0)
    clock.t += 5
    assert t.take() == {}


def test_markets_are_throttled_independently():
    clock = Clock()
    t = Throttle(clock=clock)
    offer(t, 1, 1000.0)
    assert set(t.take()) == {1}
    clock.t += 0.2
    offer(t, 1, 1000.5)
    offer(t, 2, 1000.5)
    assert set(t.take()) == {2}
    assert set(t.take(among={1})) == set()  # 1 still held, 2 already sent


def test_take_among_leaves_the_other_markets_held():
    t = Throttle(clock=Clock())
    offer(t, 1, 1000.0)
    offer(t, 2, 1000.0)
    assert set(t.take(among={2})) == {2}
    assert set(t.held) == {1}


def test_a_resend_waits_a_full_interval_after_the_last_send():
    clock = Clock()
    t = Throttle(clock=clock)
    offer(t, 1, 1000.0)
    t.take()
    clock.t += 0.9
    assert not t.may_resend(1)
    clock.t += 0.1
    assert t.may_resend(1)
    t.resent(1)
    assert not t.may_resend(1)
    offer(t, 1, 1000.5)  # the same second: a full interval after the resend
    clock.t += 0.99
    assert t.take() == {}
    clock.t += 0.01
    assert set(t.take()) == {1}


def test_sample_time_reads_iso_text_and_datetimes():
    at = datetime(2026, 11, 22, 2, 30, 1, tzinfo=timezone.utc)
    assert sample_time({"ts": at.isoformat()}) == at.timestamp() == sample_time({"ts": at})


# Arrivals: (gap since the previous arrival in s, sample-time offset in s from the current second).
arrivals = st.lists(st.tuples(st.floats(0, 3), st.integers(-1, 2)), min_size=1, max_size=200)


@given(arrivals, st.lists(st.floats(0.01, 0.5), min_size=1, max_size=50))
def test_never_more_than_one_update_per_second_of_data_nor_two_within_half_a_second(arrivals, ticks):
    """Whatever arrives when: sent samples strictly advance by at least a second, or a newer state of the
    same second at least a second later; no two sends of a market within half a second; each send is the
    newest state offered at that moment."""
    clock = Clock(0.0)
    t = Throttle(clock=clock)
    sends, offered, second = [], [], 0
    for i, (gap, ahead) in enumerate(arrivals):
        # take() runs on a tick between arrivals, as the consumer's flush loop does
        steps = ticks[i % len(ticks)]
        end = clock.t + gap
        while clock.t + steps < end:
            clock.t += steps
            sends += [(clock.t, p["sample"]) for p in t.take().values()]
        clock.t = end
        second = max(second, int(clock.t) + ahead)
        sample = second + (i % 3) * 0.1  # newer states within a second, too
        t.offer(1, sample, {"sample": sample})
        offered.append(sample)
        now = [(clock.t, p["sample"]) for p in t.take().values()]
        if now:
            assert now[0][1] == max(offered)  # the newest state, never an older one
        sends += now
    for (at0, s0), (at1, s1) in zip(sends, sends[1:]):
        assert at1 - at0 >= 0.5 - 1e-9
        assert s1 >= s0 + 1.0 or (s1 >= s0 and at1 - at0 >= 1.0 - 1e-9)
