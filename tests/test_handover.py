"""Dynamic hand-over (racecheck/handover.py): units that give away untried
branches while they run, and the races returned from above their roots,
against exhaustive exploration and the interpreter on random programs."""

from __future__ import annotations

from collections import Counter

import pytest
import randprog
from conftest import SCENARIOS
from test_bench_programs import programs  # bench/programs.py
from test_parallel import _check_units

from racecheck import handover, scheduler
from racecheck.execution import Event
from racecheck.handover import HandingExplorer, Ledger, explore_here
from racecheck.parallel import Unit, units
from racecheck.scenario import load
from racecheck.scheduler import Bounds, Explorer, trace_signature

readers = programs.readers

COUNT = 120


@pytest.mark.parametrize("reduction,every,depth,anywhere", [
    ("dpor", 1, 1, False), ("dpor", 3, 1, False), ("dpor", 2, 2, False), ("dpor", 2, 0, False),
    ("dpor", 3, 0, True), ("none", 1, 1, False)])
def test_units_that_hand_over_explore_every_trace(reduction, every, depth, anywhere, record_property):
    # Each unit hands over after every `every` executions (from its
    # shallowest choice point with untried branches, or from any); records
    # reach the ledger in a random order (before or after the node's owner
    # left it).
    bad, totals = [], Counter()
    count = COUNT if reduction == "dpor" else COUNT // 2
    name = f"handover-{reduction}-{every}-{depth}" + ("-anywhere" if anywhere else "")
    for n, prog in enumerate(randprog.programs(name, count)):
        got = randprog.racecheck_units(prog, reduction, depth, handover=every, seed=n, anywhere=anywhere)
        _check_units(n, prog, got, reduction, bad)
        totals["handed"] += got["executions"]
        totals["one"] += randprog.racecheck_dfs(prog, reduction)["executions"]
    record_property("executions_handed_vs_one", f"{totals['handed']} / {totals['one']}")
    assert not bad, f"{len(bad)} of {count} programs: " + "\n\n".join(bad[:3])
    if reduction == "none":
        assert totals["handed"] == totals["one"]


def test_returned_races_are_needed():
    # Without the races returned from above a handed unit's root, traces
    # are missed: the test above can fail.
    bad = []
    original = HandingExplorer.returns
    try:
        HandingExplorer.returns = lambda self: {}
        for n, prog in enumerate(randprog.programs("handover-dpor-1-1", 40)):
            _check_units(n, prog, randprog.racecheck_units(prog, "dpor", 1, handover=1, seed=n), "dpor", bad)
    finally:
        HandingExplorer.returns = original
    assert bad


@pytest.mark.parametrize("seed,n,every", [("hoB-1-1", 123, 1), ("hoB-2-1", 185, 2)])
def test_a_reversal_above_a_handed_root_starts_outside_its_context(seed, n, every):
    # Programs with an rwsem where a handed unit's copy of a node above its
    # root knew nothing of what was explored or asleep there: a reversal
    # there started with such a thread (which the ledger drops) though v
    # had another initial, and a trace was missed.
    prog = randprog.nth(seed, n, 10, False, 1.0)
    bad = []
    _check_units(n, prog, randprog.racecheck_units(prog, "dpor", 1, handover=every, seed=n), "dpor", bad)
    assert not bad, bad[0]


def _traces(model, run):
    seen = set()
    run(lambda ex, violation: seen.add(trace_signature(ex.events)))
    return seen


@pytest.mark.parametrize("n,every", [(7, 5), (8, 8), (6, 3)])
def test_readers_every_trace(n, every):
    # readers(n): the reads commute, each races with the write. Units made
    # for returned threads that took the owner's later branches as asleep
    # missed 6 of readers(7)'s 128 traces; the context keeps them.
    model = readers(n)
    one = _traces(model, lambda seen: Explorer(model, "dpor", Bounds(), on_execution=seen).run())
    found = units(model, "dpor", Bounds(), 1)[0]

    def handing(seen):
        explore_here(model, "dpor", Bounds(), found, every,
                     make=lambda *a, **kw: HandingExplorer(*a, on_execution=seen, **kw))

    assert _traces(model, handing) == one and len(one) == 2 ** n


@pytest.mark.parametrize("every", [2, 3])
def test_returned_threads_of_one_node_sleep_on_each_other(every):
    # Two readers returned for the same node commute: one process explores
    # the second with the first asleep. Units made for them each with
    # nothing of the other asleep ran the traces that start with both
    # twice (readers(8), handing over after every 3 executions: 569
    # executions for 256 traces).
    model = readers(8)
    runs = []
    explore_here(model, "dpor", Bounds(), units(model, "dpor", Bounds(), 1)[0], every,
                 make=lambda *a, **kw: HandingExplorer(
                     *a, on_execution=lambda ex, v: runs.append(trace_signature(ex.events)), **kw))
    assert len(set(runs)) == 256 and len(runs) == 256


def test_a_reversal_a_held_thread_starts_is_skipped(monkeypatch):
    # A thread held as pruning only (asleep at a unit's root, in a handed
    # unit's context, handed over by the owner) that is an initial of v
    # starts every trace v starts: the reversal is skipped, and lastzero(7)'s
    # units with hand-over still run each of its traces once, with fewer
    # executions cut short than when such reversals are inserted.
    model = programs.lastzero(7)
    one = _traces(model, lambda seen: Explorer(model, "dpor", Bounds(), on_execution=seen).run())
    found = units(model, "dpor", Bounds(), 1)[0]

    def handing():
        runs = []

        def seen(ex, violation):
            runs.append(trace_signature(ex.events))

        outcomes, _ = explore_here(model, "dpor", Bounds(), found, 2,
                                   make=lambda *a, **kw: HandingExplorer(*a, on_execution=seen, **kw))
        return runs, sum(o.stats.blocked for o in outcomes)

    runs, blocked = handing()
    assert set(runs) == one and len(runs) == len(one)  # every trace, each once
    monkeypatch.setattr(scheduler, "_held_starts", lambda inherited, initials: False)
    runs_without, blocked_without = handing()
    assert set(runs_without) == one
    assert blocked < blocked_without


@pytest.mark.parametrize("name,every", [("fault_vs_truncate", 4), ("fault_vs_truncate_fixed", 4),
                                        ("unaligned_dio_zeroing_fixed", 4), ("cow_fault_vs_truncate_fixed", 4),
                                        ("ext4_dax_fault_deadlock_fixed", 13)])
def test_the_corpus(name, every):
    sc = load(SCENARIOS / f"{name}.yaml")
    one = Explorer(sc.model, "dpor", sc.bounds).run()
    outcomes, done = explore_here(sc.model, "dpor", sc.bounds, units(sc.model, "dpor", sc.bounds, 1)[0], every)
    verdicts = {o.verdict for o in outcomes}
    assert ("violation" in verdicts) == (one.verdict == "violation")
    assert len(done) > 4
    if one.verdict == "clean":
        assert sum(o.stats.executions for o in outcomes) >= one.stats.executions


def test_a_thread_returned_once_makes_one_unit():
    a, b, c = Event(2, {"x"}, set()), Event(3, {"y"}, {"y"}), Event(4, set(), {"x"})
    root = Unit(0, (0,))
    handed = Unit(0, (0, 1, 5), {}, 1, {(0,): {}, (0, 1): {3: b, 5: c}}, {(0,): (0,), (0, 1): (0,)})
    ledger = Ledger([root])
    ledger.add(root, {"explored": {(0,): {1: a}, (0, 1): {3: b, 5: c}}})
    new = ledger.add(handed, {"returns": {(0, 1): {2: a, 3: b}}})  # 3 was explored there before the hand-over
    assert [u.prefix for u in new] == [(0, 1, 2)] and new[0].low == 1 and new[0].sleep == {3: b}
    assert new[0].context == {(0,): {}, (0, 1): {3: b, 5: c, 2: a}}
    assert new[0].owners == {(0,): (0,), (0, 1): (0,)}
    assert ledger.add(handed, {"returns": {(0, 1): {2: a}}}) == []  # once a node
    assert [u.prefix for u in ledger.add(handed, {"returns": {(0,): {4: c}}})] == [(0, 4)]


def test_a_returned_thread_waits_for_the_owner_of_its_node():
    # Returned before its owner is done, a thread is decided when the owner
    # is: nothing if the owner explored it there, else a unit asleep on
    # what the owner explored there (each such branch explores by itself
    # every trace it starts).
    a, b, c = Event(2, {"x"}, set()), Event(3, {"y"}, {"y"}), Event(4, {"z"}, set())
    root = Unit(0, (0,))
    handed = Unit(0, (0, 1, 5), {}, 1, {(0,): {}, (0, 1): {5: c}}, {(0,): (0,), (0, 1): (0,)})
    ledger = Ledger([root])
    assert ledger.add(handed, {"returns": {(0, 1): {2: a, 3: b}, (0,): {4: c}}}) == []
    new = ledger.add(root, {"explored": {(0,): {1: a, 4: c}, (0, 1): {5: c, 3: b}}})
    assert [u.prefix for u in new] == [(0, 1, 2)]  # 3 and 4: the owner explored them there
    assert new[0].sleep == {3: b, 5: c}


def test_branches_after_a_hand_over_hold_what_was_explored_before_it():
    # One process takes a branch at or above the node a unit handed over
    # from after the handed subtrees, whose races may have put into its
    # wakeup tree what it then skips for a thread asleep at its start. Here
    # those races go to the ledger, so every branch the owner takes there
    # after a hand-over holds all that is asleep at its start as pruning
    # only. Handing over from deep choice points shows it: lastzero(5),
    # handing over after 50 executions from a node picked at random, missed
    # 1 of its 64 traces when the owner held only the handed branches and
    # the branch it was exploring above them.
    for n in (4, 5, 6):
        model = programs.lastzero(n)
        one = _traces(model, lambda seen: Explorer(model, "dpor", Bounds(), on_execution=seen).run())
        for every in (1, 3, 8, 50):
            for seed in range(3):
                runs = []
                explore_here(model, "dpor", Bounds(), units(model, "dpor", Bounds(), 0)[0], every, seed=seed,
                             make=lambda *a, **kw: HandingExplorer(
                                 *a, on_execution=lambda ex, v: runs.append(trace_signature(ex.events)), **kw),
                             anywhere=True)
                assert set(runs) == one and len(runs) == len(one), (n, every, seed)


@pytest.mark.parametrize("every,anywhere", [(2, False), (2, True)])
def test_a_branch_taken_after_a_hand_over_holds_the_branch_explored_before_it(every, anywhere):
    # A program with an rwsem: the owner handed over two branches of a node
    # while exploring its first, then took a third there, in which that
    # first branch's thread, asleep and held as a real sleep set, spared a
    # reversal that one process makes good with a race of a handed branch
    # (gone to the ledger): 47 of its 48 traces.
    prog = randprog.nth("dec03h1", 1107, 10, False, 0.5)
    bad = []
    for seed in range(3):
        got = randprog.racecheck_units(prog, "dpor", 0, handover=every, seed=seed, anywhere=anywhere)
        _check_units(1107, prog, got, "dpor", bad)
    assert not bad, bad[0]


def _lastzero_handing(model, every):
    """lastzero's traces run with hand-over from the whole tree, and its
    executions cut short."""
    runs = []
    outcomes, _ = explore_here(model, "dpor", Bounds(), units(model, "dpor", Bounds(), 0)[0], every,
                               make=lambda *a, **kw: HandingExplorer(
                                   *a, on_execution=lambda ex, v: runs.append(trace_signature(ex.events)), **kw))
    return runs, sum(o.stats.blocked for o in outcomes)


@pytest.mark.parametrize("every", [2, 20])
def test_a_handed_unit_counts_what_was_explored_above_it_as_explored(every, monkeypatch):
    # A thread explored at a node of a handed unit's prefix (before the
    # hand-over, or being explored at it) is covered there as in one
    # process: a reversal there is skipped for it as a weak initial. Held as
    # pruning only, lastzero's units made branches one process never makes,
    # each of whose executions is cut short: lastzero(8) 977 against 515.
    model = programs.lastzero(8)
    one = _traces(model, lambda seen: Explorer(model, "dpor", Bounds(), on_execution=seen).run())
    runs, blocked = _lastzero_handing(model, every)
    assert set(runs) == one and len(runs) == len(one)  # every trace, each once
    monkeypatch.setattr(handover, "_held_at", lambda node: tuple({*node.sleep, *node.done, node.chosen}))
    runs_held, blocked_held = _lastzero_handing(model, every)
    assert set(runs_held) == one and len(runs_held) == len(one)
    assert blocked < blocked_held


def test_a_handed_unit_holds_what_its_owner_holds(monkeypatch):
    # What the owner holds as pruning only at a node (branches handed over
    # there, threads asleep at its own root, what a branch taken after a
    # hand-over holds) must stay held in a unit handed over below it: its
    # subtree has units of its own whose races went to the ledger. Counted
    # as explored, a random program with an rwsem (and 5 more of 1,200 of
    # that seed) missed traces.
    prog = randprog.nth("dec04c1", 160, 10, False, 0.5)
    bad = []
    for seed in range(3):
        _check_units(160, prog, randprog.racecheck_units(prog, "dpor", 0, handover=2, seed=seed), "dpor", bad)
    assert not bad, bad[0]
    monkeypatch.setattr(handover, "_held_at", lambda node: ())
    got = randprog.racecheck_units(prog, "dpor", 0, handover=2, seed=0)
    _check_units(160, prog, got, "dpor", bad)
    assert bad


def test_a_unit_made_for_a_returned_thread_holds_what_the_returning_unit_held():
    # The returning unit held 3 (asleep there) and counted 5 (explored
    # there before the hand-over) as explored; the unit made for thread 2
    # holds 3, what the owner explored there (its branches after the
    # hand-over explore every trace they start by themselves, but are held
    # as pruning only here too) and itself, and keeps the nodes above as
    # the returning unit had them.
    a, b, c, d = Event(2, {"x"}, set()), Event(3, {"y"}, {"y"}), Event(5, {"z"}, set()), Event(6, {"w"}, set())
    root = Unit(0, (0,))
    handed = Unit(0, (0, 1, 7), {}, 1, {(0,): {4: d}, (0, 1): {3: b, 5: c}}, {(0,): (0,), (0, 1): (0,)},
                  held={(0,): (), (0, 1): (3,)})
    ledger = Ledger([root])
    ledger.add(root, {"explored": {(0, 1): {5: c, 6: d, 7: c}}})
    new = ledger.add(handed, {"returns": {(0, 1): {2: a}}})
    assert [u.prefix for u in new] == [(0, 1, 2)]
    assert new[0].held[(0,)] == ()
    assert set(new[0].held[(0, 1)]) == {2, 3, 5, 6, 7}
    explorer = HandingExplorer(readers(3), "dpor", Bounds(), Unit(0, (1, 2), {}, 0, {(): {0: a, 3: b}},
                                                                  {(): ()}, held={(): (3,)}))
    assert explorer.prefix_sleep[0] == ({0: a, 3: b}, (3,))
