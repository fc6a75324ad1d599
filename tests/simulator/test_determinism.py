"""The same --seed gives the same sequence of books; another seed gives another."""
from simulator.catalog import DEMO_VENUES
from simulator.server import Options
from simulator.venue import Venue


def book_sequence(seed: int, steps: int = 200):
    venue = Venue(DEMO_VENUES[1], seed=seed, step_s=0.05, options=Options(seed=seed))
    states = []
    for _ in range(steps):
        venue.step()
        states.append(tuple((s, m.book.update_id, m.book.top(5)) for s, m in venue.markets.items()))
    return states


def test_same_seed_same_books():
    assert book_sequence(7) == book_sequence(7)
    assert book_sequence(7) != book_sequence(8)
