"""The search protocol (racecheck/search.py): what every strategy guarantees
because the run is the Search base class's, not its own.

* Every strategy (dfs with none and dpor, bfs, random, pct, and the class
  loop of a symbolic scenario) stops at --max-executions, at the time limit
  and at Ctrl-C (a KeyboardInterrupt raised from a progress callback) with
  the same kind of reason.
* A model that raises gives the same error record from every strategy and
  from a replay.
* auto leaves dfs for bfs through should_stop, with the step bound's reason.
* Verdicts and reasons are strings: JSON and comparisons see no difference.
"""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from programs import counter

from racecheck.model import Program
from racecheck.scenario import load
from racecheck.scheduler import Bounds, Explorer, replay
from racecheck.search import BUDGET, Reason, Stop, Verdict, failure_record
from racecheck.strategies import BreadthFirst, RandomSearch, looping, search
from racecheck.symbolic import ClassSearch

ROOT = Path(__file__).resolve().parent.parent
SYMBOLIC = ROOT / "scenarios" / "unaligned_dio_zeroing_symbolic_fixed.yaml"


def endless():
    """Two threads that count up forever: no end of states, and dfs cannot
    finish an execution."""

    def init(rt):
        return SimpleNamespace(a=rt.var("a", 0), b=rt.var("b", 0))

    def count(name):
        def body(st):
            x = getattr(st, name)
            while True:
                yield f"{name} += 1"
                x.set(x.get() + 1)
        return body

    return Program("endless", init, [("A", count("a")), ("B", count("b"))])


def many(threads=4, writes=0):
    """A clean model with many executions (and states): threads that add 1
    to x under a lock, and then, with ``writes``, write y so often without
    one (no invariant reads y: every order of the writes is a trace)."""
    if not writes:
        return counter(locked=True, threads=threads)

    def init(rt):
        return SimpleNamespace(y=rt.var("y", 0))

    def body(st):
        for i in range(writes):
            yield "write y"
            st.y.set(i)

    return Program("busy", init, [(f"T{i}", body) for i in range(threads)])


# Each strategy as (bounds, progress) -> Search, on a model where it would
# run long. bfs runs every step and keeps no live execution, so that each
# successor needs an execution of its own.
STRATEGIES = {
    "dfs-none": lambda b, p: Explorer(many(5, 4), "none", b, progress=p),
    "dfs-dpor": lambda b, p: Explorer(many(5, 4), "dpor", b, progress=p),
    "bfs": lambda b, p: BreadthFirst(endless(), b, progress=p, live_cap=0, cache=False),
    "random": lambda b, p: RandomSearch(many(), b, seed=1, progress=p),
    "pct": lambda b, p: RandomSearch(many(), b, seed=1, bug_depth=2, progress=p),
    "symbolic": lambda b, p: ClassSearch(load(SYMBOLIC).space, load(SYMBOLIC).model, "dpor", b, progress=p),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_stops_at_max_executions(name):
    out = STRATEGIES[name](Bounds(max_executions=3), None).run()
    assert out.verdict == Verdict.incomplete == "incomplete"
    assert out.reason.kind is Stop.max_executions, out.reason
    assert out.stats.executions <= 3 + (name == "bfs")  # bfs counts the initial state's


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_stops_at_the_time_limit(name):
    out = STRATEGIES[name](Bounds(timeout=0.05, max_executions=10**9), None).run()
    assert out.verdict == "incomplete"
    assert out.reason.kind is Stop.time_limit, out.reason
    assert "time limit (0.05 s)" in out.reason
    assert out.stats.elapsed_s < 5


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_turns_ctrl_c_into_interrupted(name):
    calls = []

    def progress(stats, depth, elapsed):
        calls.append(stats.executions)
        if len(calls) == 3:
            raise KeyboardInterrupt

    out = STRATEGIES[name](Bounds(max_executions=10**9, timeout=60), progress).run()
    assert len(calls) == 3
    assert out.verdict == "incomplete" and out.reason.kind is Stop.interrupted, out.reason
    assert out.reason.startswith("interrupted")


def test_the_budget_reasons_are_the_ones_that_end_a_symbolic_run():
    assert BUDGET == {Stop.max_executions, Stop.time_limit, Stop.interrupted}
    sc = load(SYMBOLIC)
    out = ClassSearch(sc.space, sc.model, "dpor", Bounds(max_executions=3)).run()
    assert len(out.classes) == 1 and out.classes[0].outcome.reason.kind is Stop.max_executions


# -- error records ----------------------------------------------------------------------------


def raises_at_second_step():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def good(st):
        yield "x = 1"
        st.x.set(1)

    def bad(st):
        yield "read x"
        st.x.get()
        yield "fail"
        raise ValueError("the model is broken")

    return Program("raises", init, [("good", good), ("bad", bad)])


@pytest.mark.parametrize("run", [
    lambda m: Explorer(m, "none").run(),
    lambda m: Explorer(m, "dpor").run(),
    lambda m: BreadthFirst(m).run(),
    lambda m: RandomSearch(m, seed=3).run(),
    lambda m: RandomSearch(m, seed=3, bug_depth=2).run(),
], ids=["none", "dpor", "bfs", "random", "pct"])
def test_error_records_have_one_shape_from_every_strategy(run):
    model = raises_at_second_step()
    out = run(model)
    assert out.verdict == "error" and out.violation is None
    e = out.error
    assert list(e) == ["thread", "exception", "traceback", "schedule"]
    assert e["thread"] == "bad" and e["exception"] == "ValueError: the model is broken"
    assert "the model is broken" in e["traceback"]
    assert e["schedule"].count(1) == 2 and e["schedule"][-1] == 1
    again = replay(model, e["schedule"]).error
    assert again == e


def test_the_error_record_of_a_failure():
    failure = SimpleNamespace(thread="T", exc=KeyError("k"), where="line 3")
    assert failure_record(failure, (0, 1)) == {"thread": "T", "exception": "KeyError: 'k'",
                                               "traceback": "line 3", "schedule": [0, 1]}


# -- auto -----------------------------------------------------------------------------------


def test_should_stop_ends_dfs_with_the_step_bound_reason():
    explorer = Explorer(endless(), "dpor", Bounds(max_steps=50), should_stop=looping)
    out = explorer.run()
    assert explorer.halted is out.reason and out.reason.kind is Stop.step_bound
    assert out.verdict == "incomplete" and "ran more than 50 steps" in out.reason
    assert out.stats.executions == 0  # the one execution the step bound cut


def test_should_stop_is_polled_after_every_step():
    seen = []

    def enough(s):
        seen.append(s.stats.executions)
        return Reason(Stop.max_executions, "enough") if s.stats.executions == 4 else None

    out = Explorer(many(), "none", should_stop=enough).run()
    assert seen == [1, 2, 3, 4] and out.stats.executions == 4 and out.reason == "enough"


def test_auto_switches_to_bfs_for_the_step_bound_without_raising():
    bounds = Bounds(timeout=60)
    bounds.max_states = 200
    out, used, why = search(endless(), "auto", bounds=bounds)
    assert used == "bfs" and why == "auto: bfs, since dfs cannot finish (thread A ran more than 1000 steps: a loop)"
    assert out.reason.kind is Stop.max_states


def test_auto_stays_with_dfs_when_every_execution_ends():
    out, used, why = search(many(), "auto")
    assert (out.verdict, used, why) == ("clean", "dfs", "auto: dfs with dpor")
    assert out.reason is None


# -- strings --------------------------------------------------------------------------------------


def test_verdicts_and_reasons_are_strings():
    out = Explorer(many(), "none", Bounds(max_executions=2)).run()
    assert isinstance(out.verdict, str) and isinstance(out.reason, str)
    assert json.dumps({"verdict": out.verdict, "reason": out.reason}) == \
        '{"verdict": "incomplete", "reason": "stopped at --max-executions 2"}'
    assert f"{out.verdict}" == str(out.verdict) == "incomplete"
    assert {"incomplete": 3}[out.verdict] == 3 and out.verdict in ("clean", "incomplete")
    assert Verdict("clean") is Verdict.clean


def test_no_import_cycle_between_the_runner_and_symbolic():
    code = "import sys, racecheck.symbolic; assert 'racecheck.runner' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_searches_leave_the_checks_as_the_scenario_configured_them():
    """An invariant object is configuration: what a search gathers (lock
    order's graph, crash consistency's counts) is the search's, and bfs
    keys verdicts on states without switching a check's pruning off."""
    import copy

    from racecheck.strategies import search as run_strategy

    for name in ("fault_alloc_stale_crash_fixed", "ext4_dax_fault_lock_order"):
        sc = load(ROOT / "scenarios" / f"{name}.yaml")
        before = [copy.deepcopy(vars(inv)) for inv in sc.model.invariants]
        for strategy in ("dfs", "bfs") if name.endswith("crash_fixed") else ("dfs",):
            outcome, _, _ = run_strategy(sc.model, strategy, "dpor", sc.bounds, None, 0, None)
            assert outcome.verdict in ("clean", "violation"), (name, strategy, outcome.reason)
            assert [vars(inv) for inv in sc.model.invariants] == before, (name, strategy)
        if name.endswith("crash_fixed"):
            assert outcome.checks["crash_states"] > 0
