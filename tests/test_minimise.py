"""The minimiser and the search it runs: dpor under a preemption bound.

* Bounded partial-order reduction is complete for its bound: on random
  programs (tests/randprog.py), dpor under a preemption bound of 0, 1 and 2
  reaches the same final states and breaks the same invariants as the
  exhaustive search under that bound, so the fewest preemptions of a
  violation it finds is the exhaustive search's.
* The counterexample's trace run in another order: the dining philosophers'
  deadlock, found with a preemption at every step, comes back with one.
* A budget that runs out is said in a note, with what was reached.
"""

import importlib.util
import pathlib

import pytest
import randprog

from racecheck.minimise import minimise
from racecheck.scheduler import Bounds, Explorer, preemptions, replay
from racecheck.search import Counterexample

_PATH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "programs.py"
_spec = importlib.util.spec_from_file_location("bench_programs", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

COUNT = 80  # random programs, each explored six times: a few seconds


def reached(prog, reduction, k):
    """Final states and invariants broken, exploring ``prog`` to the end
    under preemption bound ``k``."""
    finals = set()

    def seen(ex, violation):
        finals.add((randprog.canonical(prog, ex.rt.snapshot()), any(not t.finished for t in ex.threads)))

    ex = Explorer(randprog.build(prog), reduction, Bounds(max_preemptions=k), on_execution=seen,
                  stop_on_violation=False)
    ex.run()
    return finals, set(ex.violations)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_bounded_dpor_reaches_what_the_bounded_exhaustive_search_reaches(k):
    bad = []
    broken = 0
    for n, prog in enumerate(randprog.programs("bounded", COUNT)):
        want = reached(prog, "none", k)
        got = reached(prog, "dpor", k)
        broken += bool(want[1])
        if got != want:
            bad.append(f"program {n}: none {want[1]}, dpor {got[1]}, finals missed "
                       f"{len(want[0] - got[0])}\n{randprog.show(prog)}")
    assert not bad, "\n\n".join(bad[:3])
    assert broken, "no program breaks an invariant within the bound: the test shows nothing"


def test_fewest_preemptions_of_bounded_dpor_equal_the_exhaustive_ones():
    for prog in randprog.programs("fewest", 40):
        fewest = {}
        for reduction in ("none", "dpor"):
            for k in (0, 1, 2):
                if reduction not in fewest and reached(prog, reduction, k)[1]:
                    fewest[reduction] = k
        assert fewest.get("none") == fewest.get("dpor"), randprog.show(prog)


def test_bounded_dpor_runs_fewer_executions_than_the_exhaustive_search():
    model = bench.philosophers(5)
    none = Explorer(model, "none", Bounds(max_preemptions=1), stop_on_violation=False).run()
    dpor = Explorer(model, "dpor", Bounds(max_preemptions=1), stop_on_violation=False).run()
    assert dpor.stats.executions < none.stats.executions / 2


def test_philosophers_deadlock_is_minimised_to_one_preemption():
    model = bench.philosophers(8)
    found = Explorer(model, "dpor").run().violation
    assert found.invariant == "deadlock_free" and found.preemptions > 1
    best = minimise(model, found, budget_s=60)
    assert best.preemptions == 1 == preemptions(model, best.schedule)
    assert len(best.schedule) == 8  # every philosopher takes one fork
    assert replay(model, best.schedule).violation.invariant == "deadlock_free"


def test_a_budget_that_runs_out_is_noted_with_what_was_reached():
    model = bench.philosophers(8)
    found = Explorer(model, "dpor").run().violation
    notes = []
    best = minimise(model, found, budget_s=0.05, notes=notes)
    assert best.preemptions == 1  # the trace in another order needs no search
    assert len(notes) == 1
    assert notes[0].startswith("minimisation stopped at its budget")
    assert f"1 preemption (from {found.preemptions})" in notes[0]
    assert "with 0 did not finish" in notes[0]


def test_a_finished_minimisation_adds_no_note():
    model = bench.philosophers(3)
    found = Explorer(model, "dpor").run().violation
    notes = []
    best = minimise(model, found, notes=notes)
    assert best.preemptions == 1 and notes == []


def test_a_schedule_that_does_not_run_is_kept():
    model = bench.philosophers(3)
    bogus = Counterexample([0, 0, 0, 0, 0, 0], "deadlock_free", "", 0)
    assert minimise(model, bogus, budget_s=1).schedule == bogus.schedule
