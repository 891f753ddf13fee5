"""The minimiser and the searches it runs: the least-cost search over states
(racecheck/fewest.py), and dpor under a preemption bound where that one
cannot go.

* The search over states finds the cheapest violation, (preemptions, steps),
  that exhaustive search under preemption bounds 0, 1 and 2 finds, and that
  randprog's interpreter finds by running every schedule within 2
  preemptions; its schedule replays to it (bench/bench_fewest.py does
  thousands of programs).
* A model whose states cannot be fingerprinted is minimised by the dpor
  searches instead.
* Bounded partial-order reduction is complete for its bound: on random
  programs (tests/randprog.py), dpor under a preemption bound of 0, 1 and 2
  reaches the same final states and breaks the same invariants as the
  exhaustive search under that bound, so the fewest preemptions of a
  violation it finds is the exhaustive search's.
* The counterexample's trace run in another order: the dining philosophers'
  deadlock, found with a preemption at every step, comes back with one.
* A budget that runs out is said in a note, with what was reached.
"""

import functools
import importlib.util
import pathlib
from types import SimpleNamespace

import pytest
import randprog

from racecheck.fewest import FewestPreemptions
from racecheck.fingerprint import FingerprintError
from racecheck.minimise import minimise
from racecheck.model import Program
from racecheck.runtime import check
from racecheck.scheduler import Bounds, Explorer, preemptions, replay
from racecheck.search import Counterexample

_PATH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "programs.py"
_spec = importlib.util.spec_from_file_location("bench_programs", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
_spec = importlib.util.spec_from_file_location("bench_fewest", _PATH.parent / "bench_fewest.py")
bench_fewest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_fewest)

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


def test_the_search_over_states_finds_the_cheapest_violation_exhaustive_search_finds():
    bad, costs = [], []
    for n, prog in enumerate(randprog.programs("fewest-suite-1", 50, max_steps=10)):
        found, cost = bench_fewest.compare(prog)
        costs += [c for c in cost.values() if c is not None]
        if found:
            bad.append(f"program {n}: {'; '.join(found)}\n{randprog.show(prog)}")
    assert not bad, "\n\n".join(bad[:3])
    assert {1, 2} <= {p for p, _ in costs}, "no violation needs 1 or 2 preemptions: the test shows little"
    assert len({d for _, d in costs}) > 3


def test_philosophers_need_a_preemption_by_the_search_over_states():
    model = bench.philosophers(6)
    none = FewestPreemptions(model, "deadlock_free", (1, 0), Bounds()).run()
    assert none.verdict == "clean"  # no deadlock without a preemption, and it says it finished
    out = FewestPreemptions(model, "deadlock_free", (2, 0), Bounds()).run()
    assert (out.violation.preemptions, len(out.violation.schedule)) == (1, 6)
    assert out.reason is None and out.error is None


class _Opaque:
    """A value a thread holds that fingerprints cannot see into."""


def _grab(first, second, st):
    held = _Opaque()
    yield st.locks[first].lock()
    yield st.locks[second].lock()
    yield "release"
    st.locks[second].unlock()
    st.locks[first].unlock()
    del held


def test_a_model_the_search_over_states_cannot_take_is_minimised_by_dpor():
    def init(rt):
        return SimpleNamespace(locks=[rt.mutex("a"), rt.mutex("b")])

    model = Program("abba", init, [("t0", functools.partial(_grab, 0, 1)),
                                   ("t1", functools.partial(_grab, 1, 0))])
    with pytest.raises(FingerprintError):
        FewestPreemptions(model, "deadlock_free", (2, 0), Bounds()).run()
    found = Explorer(model, "dpor").run().violation
    notes = []
    best = minimise(model, found, notes=notes)
    assert (best.preemptions, len(best.schedule), notes) == (1, 2, [])
    assert replay(model, best.schedule).violation.invariant == "deadlock_free"


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
    model = bench.philosophers(14)  # (its search takes seconds, far past the budget)
    schedule = list(range(14))  # each takes its left fork, a preemption at every switch
    found = Counterexample(schedule, "deadlock_free", "", preemptions(model, schedule))
    assert replay(model, schedule).violation.invariant == "deadlock_free" and found.preemptions == 13
    notes = []
    best = minimise(model, found, budget_s=0.05, notes=notes)
    assert best.preemptions == 1  # the trace in another order needs no search
    assert len(notes) == 1
    assert notes[0].startswith("minimisation stopped at its budget")
    assert f"1 preemption (from {found.preemptions})" in notes[0]
    assert "with 0 did not finish" in notes[0]


def _first(st):
    for n in range(3):
        yield f"y = {n}"
        st.y.set(n)


def _second(st):
    yield "x = 1"
    st.x.set(1)
    yield "check"
    check(st.x.get() == 0, "x was set")


def test_a_budget_that_runs_out_with_the_fewest_preemptions_says_a_shorter_one_may_exist():
    model = Program("p", lambda rt: SimpleNamespace(x=rt.var("x", 0), y=rt.var("y", 0)), [("a", _first), ("b", _second)])
    long = Counterexample([0, 0, 0, 1, 1], "assertion", "", 0)
    assert replay(model, long.schedule).violation.invariant == "assertion"
    notes = []
    best = minimise(model, long, budget_executions=1, notes=notes)  # (the search's first execution)
    assert best.schedule == long.schedule
    assert notes == ["minimisation stopped at its budget (20 s, 1 executions a search): 0 preemptions "
                     "(from 0), the fewest there are, but a schedule with as many and fewer than 5 "
                     "steps may exist"]
    assert minimise(model, long).schedule == [1, 1]


def test_an_interrupted_minimisation_says_so_and_stops(monkeypatch):
    model = bench.philosophers(6)
    schedule = list(range(6))
    found = Counterexample(schedule, "deadlock_free", "", preemptions(model, schedule))

    def interrupt(search):
        raise KeyboardInterrupt

    monkeypatch.setattr(FewestPreemptions, "advance", interrupt)
    notes = []
    best = minimise(model, found, notes=notes)
    assert best.preemptions == 1  # the trace in another order
    assert notes == ["minimisation interrupted: 1 preemption (from 5); the search for a schedule "
                     "with 0 did not finish, so fewer may exist"]


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
