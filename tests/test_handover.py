"""Dynamic hand-over (racecheck/handover.py): units that give away untried
branches while they run, and the races returned from above their roots,
against exhaustive exploration and the interpreter on random programs."""

from __future__ import annotations

from collections import Counter

import pytest
import randprog
from conftest import SCENARIOS
from test_parallel import _check_units

from racecheck.handover import HandingExplorer, Ledger, explore_here
from racecheck.parallel import Unit, units
from racecheck.scenario import load
from racecheck.scheduler import Explorer

COUNT = 120


@pytest.mark.parametrize("reduction,every,depth", [("dpor", 1, 1), ("dpor", 3, 1), ("dpor", 2, 2),
                                                   ("none", 1, 1)])
def test_units_that_hand_over_explore_every_trace(reduction, every, depth, record_property):
    # Each unit hands over after every `every` executions; records reach the
    # ledger in a random order (before or after the node's owner left it).
    bad, totals = [], Counter()
    count = COUNT if reduction == "dpor" else COUNT // 2
    for n, prog in enumerate(randprog.programs(f"handover-{reduction}-{every}-{depth}", count)):
        got = randprog.racecheck_units(prog, reduction, depth, handover=every, seed=n)
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


@pytest.mark.parametrize("name,every", [("fault_vs_truncate", 4), ("fault_vs_truncate_fixed", 4),
                                        ("unaligned_dio_zeroing_fixed", 4), ("cow_fault_vs_truncate_fixed", 4),
                                        ("ext4_dax_fault_deadlock_fixed", 5), ("ext4_dax_fault_deadlock_fixed", 13)])
def test_the_corpus(name, every):
    # (ext4_dax_fault_deadlock_fixed at 5 and 13 leaves nodes that took
    # their next branch after work was handed over below them: each is
    # recorded by its own path, and no returned thread waits for ever)
    sc = load(SCENARIOS / f"{name}.yaml")
    one = Explorer(sc.model, "dpor", sc.bounds).run()
    outcomes, done, ledger = explore_here(sc.model, "dpor", sc.bounds, units(sc.model, "dpor", sc.bounds, 1)[0],
                                          every)
    verdicts = {o.verdict for o in outcomes}
    assert ("violation" in verdicts) == (one.verdict == "violation")
    assert len(done) > 4
    if one.verdict == "clean":  # (a unit that stops at a violation leaves its nodes unrecorded)
        assert not ledger.unanswered()
        assert sum(o.stats.executions for o in outcomes) == one.stats.executions


def test_a_thread_returned_once_makes_one_unit():
    from racecheck.execution import Event
    a, b, c = Event(2, {"x"}, set()), Event(3, {"y"}, {"y"}), Event(4, set(), {"x"})
    ledger = Ledger([Unit(0, (0,))])
    assert ledger.add({}, {(0, 1): {2: a, 3: b}}) == []  # the owner has not left the node yet
    assert ledger.unanswered() == [(0, 1)]
    new = ledger.add({(0, 1): {3: b}}, {})  # it left, having explored 3
    assert [u.prefix for u in new] == [(0, 1, 2)] and new[0].low == 1 and new[0].sleep == {3: b}
    new = ledger.add({}, {(0, 1): {2: a, 4: c}})
    assert [u.prefix for u in new] == [(0, 1, 4)] and new[0].sleep == {3: b}  # 2's read conflicts
    assert not ledger.unanswered()
