"""happens_before.Growing, the happens-before dpor keeps from one execution to
the next: built step by step, cut back to a prefix and grown again along
another branch, it must equal the order computed from scratch over the
execution it stands for (vector clocks, conflicts, races, writers), on random
executions with random cuts."""

import random

from racecheck.execution import Event
from racecheck.happens_before import Growing


def from_scratch(events, nthreads):
    """Vector clocks, conflicts and races of ``events``, all at once, the
    plain way: step j conflicts with earlier step i when one writes what
    the other touches; i races with j when their threads differ and i does
    not happen before j's thread's previous step."""
    clocks, conflicts, races = [], [], []
    last = {}
    for j, ej in enumerate(events):
        t = ej.tid
        prior = clocks[last[t]] if t in last else [0] * nthreads
        deps = {i for i in range(j) if events[i].conflicts(ej)}
        clock = list(prior)
        clock[t] += 1
        mine = []
        for i in sorted(deps):
            ti = events[i].tid
            if ti == t:
                continue
            if prior[ti] < clocks[i][ti]:
                mine.append(i)
            clock = [max(a, b) for a, b in zip(clock, clocks[i])]
        clocks.append(clock)
        conflicts.append(deps)
        races.append(mine)
        last[t] = j
    return clocks, conflicts, races


def random_event(rng, nthreads, nkeys):
    keys = range(nkeys)
    reads = {k for k in keys if rng.random() < 0.3}
    writes = {k for k in keys if rng.random() < 0.2}
    return Event(rng.randrange(nthreads), reads, writes)


def test_growing_equals_the_order_computed_from_scratch():
    rng = random.Random(7)
    for _ in range(200):
        nthreads, nkeys = rng.randint(1, 4), rng.randint(1, 5)
        hb = Growing(nthreads)
        events = []
        for _ in range(rng.randint(1, 6)):  # executions: cut back, then grow
            keep = rng.randint(0, len(events))
            hb.truncate(keep)
            events = events[:keep]
            for _ in range(rng.randint(0, 12)):
                ev = random_event(rng, nthreads, nkeys)
                events.append(ev)
                hb.add(ev)
            clocks, conflicts, races = from_scratch(events, nthreads)
            assert len(hb) == len(events)
            assert hb.clocks == clocks
            assert hb.conflicts == conflicts
            assert hb.races == races
            assert hb.pos == [c[e.tid] for c, e in zip(clocks, events)]
            for key in range(nkeys):
                assert hb.written.get(key, []) == [j for j, e in enumerate(events) if key in e.writes]
            # conflicts_among: as the steps among made one step
            for _ in range(3):
                among = {k for k in range(len(events)) if rng.random() < 0.5}
                ev = random_event(rng, nthreads, nkeys)
                whole = Event(None, set().union(*[events[k].reads for k in among]),
                              set().union(*[events[k].writes for k in among]))
                assert hb.conflicts_among(ev, among) == ev.conflicts(whole)


def test_last_writer_among_a_prefix_and_a_set_of_steps():
    hb = Growing(2)
    for tid, writes in [(0, {1}), (1, {1}), (0, {2}), (1, {1})]:
        hb.add(Event(tid, set(), writes))
    assert hb.last_writer(1, 2, set()) == 1
    assert hb.last_writer(1, 1, {3}) == 3
    assert hb.last_writer(1, 0, set()) == -1
    assert hb.last_writer(2, 0, {2}) == 2
