"""Search strategies (racecheck/strategies.py): bfs over states, random and
PCT, and how auto chooses.

* Peterson's and Dekker's algorithms with spin loops (examples/): dfs cannot
  finish them; bfs does, and finds them correct; Peterson's with the flag and
  turn writes swapped breaks mutual exclusion, and bfs's counterexample is
  the shortest there is (an exhaustive search bounded one step shorter finds
  none).
* Differential: on random loop-free programs, bfs, dpor and none reach the
  same final states and violate the same invariants, and bfs's counterexample
  for each invariant is the shortest any search finds.
* random and pct: found bugs are minimised and replay; nothing found is
  incomplete, with the executions tried; a seed gives the same run.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from programs import build, counter, show
from test_differential import programs

from racecheck.model import Program
from racecheck.runner import check
from racecheck.scenario import load
from racecheck.scheduler import Bounds, Explorer, replay
from racecheck.strategies import (
    MAX_MEMORY,
    MAX_STATES,
    BreadthFirst,
    RandomSearch,
    StrategyError,
    resident_memory,
    search,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def mutex_model(algorithm, rounds=None):
    spec = importlib.util.spec_from_file_location("mutual_exclusion_models", EXAMPLES / "mutual_exclusion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build({"algorithm": algorithm, "rounds": rounds})


# -- Peterson and Dekker ---------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["peterson", "dekker"])
def test_bfs_finishes_spin_loops_that_dfs_cannot(algorithm):
    model = mutex_model(algorithm)
    dfs = Explorer(model, "dpor", Bounds(max_steps=300, timeout=5)).run()
    assert dfs.verdict == "incomplete" and "ran more than 300 steps" in dfs.reason
    out = BreadthFirst(model).run()
    assert out.verdict == "clean", out.reason
    s = out.stats
    assert s.queue == 0 and s.distinct_states > 40 and s.states_generated > s.distinct_states


@pytest.mark.parametrize("bounds, why", [
    (Bounds(max_executions=5), "--max-executions 5"),
    (Bounds(max_steps=5), "ran more than 5 steps"),
    (Bounds(timeout=1e-9), "time limit"),
])
def test_bfs_cut_by_a_bound_is_incomplete_never_clean(bounds, why):
    out = BreadthFirst(mutex_model("dekker"), bounds).run()
    assert out.verdict == "incomplete" and why in out.reason


def test_swapped_peterson_violates_mutual_exclusion_with_the_shortest_schedule():
    model = mutex_model("peterson_swapped")
    out = BreadthFirst(model).run()
    assert out.verdict == "violation" and out.violation.invariant == "mutual_exclusion"
    n = len(out.violation.schedule)
    assert n == 9
    # An exhaustive search of every schedule of n - 1 steps finds no violation,
    # and of n steps finds one: no shorter counterexample exists.
    shorter = Explorer(model, "none", Bounds(max_depth=n - 1), target="mutual_exclusion").run()
    assert shorter.violation is None and shorter.stats.executions == 0 and shorter.stats.pruned > 0
    same = Explorer(model, "none", Bounds(max_depth=n), target="mutual_exclusion").run()
    assert same.violation is not None and len(same.violation.schedule) == n
    again = replay(model, out.violation.schedule)
    assert again.violation.invariant == "mutual_exclusion" and again.mismatch is None


def test_the_examples_run_from_the_command_line_with_bfs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "racecheck.cli", "run", "--json",
                          str(EXAMPLES / "peterson_swapped.yaml")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["strategy"] == "bfs" and doc["strategy_reason"].startswith("auto: bfs")
    assert doc["invariant"] == "mutual_exclusion" and len(doc["trace"]["schedule"]) == 9
    for key in ("distinct_states", "states_generated", "depth", "queue", "executions", "steps"):
        assert isinstance(doc[key], int)
    rerun = subprocess.run([sys.executable, "-m", "racecheck.cli", "replay", doc["trace_file"]],
                           cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 1 and "the same violation as saved" in rerun.stdout


# -- differential: bfs against dpor and none ---------------------------------------------


def shortest_violation(model, invariant):
    """The shortest schedule violating ``invariant``, by exhaustive depth-first
    search that keeps only shorter violations once one is found."""
    ex = Explorer(model, "none", Bounds(), target=invariant)
    ex.shortest = True
    return ex.run().violation


def finals_by_dfs(model, reduction):
    finals = set()

    def seen(ex, violation):
        finals.add((tuple(sorted(ex.rt.snapshot().items())), any(not t.finished for t in ex.threads)))

    explorer = Explorer(model, reduction, Bounds(), on_execution=seen, stop_on_violation=False)
    explorer.run()
    first = Explorer(model, reduction, Bounds()).run().violation
    return finals, set(explorer.violations), first


def compare(spec):
    model = build(spec)
    text = show(spec)
    finals = set()

    def final(ex, violation):
        finals.add((tuple(sorted(ex.rt.snapshot().items())), any(not t.finished for t in ex.threads)))

    bfs = BreadthFirst(model, on_final=final, stop_on_violation=False, verify=True)
    out = bfs.run()
    assert out.verdict in ("clean", "violation"), (text, out.error)
    for reduction in ("none", "dpor"):
        their_finals, their_violations, their_first = finals_by_dfs(model, reduction)
        assert finals == their_finals, (text, reduction)
        assert set(bfs.violations) == their_violations, (text, reduction)
        if their_first is not None:
            assert len(bfs.violations[their_first.invariant].schedule) <= len(their_first.schedule), text
    for invariant, cex in bfs.violations.items():
        best = shortest_violation(model, invariant)
        assert len(cex.schedule) == len(best.schedule), (text, invariant)
        again = replay(model, cex.schedule)
        if again.violation.invariant != invariant:
            # The last step broke another invariant first (replay stops
            # there); the state it leaves breaks this one (a deadlock).
            assert again.violation.invariant in bfs.violations, text
            final = again.execution.final_violation()
            assert final is not None and final.invariant == invariant, text
    first = BreadthFirst(model).run()
    if first.violation is not None:
        assert len(first.violation.schedule) == min(len(c.schedule) for c in bfs.violations.values())


def test_bfs_agrees_with_dpor_and_none_on_random_programs():
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(programs())
    def agree(spec):
        compare(spec)

    agree()


@pytest.mark.parametrize("spec", [
    (1, 0, ((("write", 0, 1),), (("wait", 0, 0),))),  # a thread left waiting: a deadlock
    (1, 2, ((("lock", 0), ("lock", 1), ("unlock", 1), ("unlock", 0)),
            (("lock", 1), ("lock", 0), ("unlock", 0), ("unlock", 1)))),  # ABBA
    (1, 0, ((("write", 0, 2),), (("write", 0, 1), ("read", 0, 0), ("check", 0, 1)))),
    # The shortest deadlock is reached by the step whose check fails
    # (replay stops at the assertion; the state after it is the deadlock).
    (1, 0, ((("inc", 0, 0),), (("wait", 0, 0),), (("read", 0, 0), ("check", 0, 1)))),
])
def test_bfs_agrees_on_known_programs(spec):
    compare(spec)


# -- random and pct --------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_random_strategies_find_minimise_and_replay(strategy, tmp_path):
    sc = load(EXAMPLES / "lost_update.yaml")
    rep = check(sc, strategy=strategy, seed=1, trace_out=tmp_path / "t.json")
    assert rep.verdict == "violation" and rep.strategy == strategy
    assert len(rep.outcome.violation.schedule) == 4  # minimised like any other
    assert replay(sc.model, rep.outcome.violation.schedule).violation.invariant == "no_lost_update"
    assert rep.as_json()["seed"] == 1


def test_pct_finds_a_bug_of_depth_three_in_a_model_that_spins():
    # Two preemptions (after P0's "turn = 1", after P1 enters): PCT's depth 3.
    # Without its yield rule a spinning thread of high priority would starve
    # the other, and no execution would end.
    model = mutex_model("peterson_swapped", rounds=1)
    out = RandomSearch(model, Bounds(max_executions=2000), seed=0, bug_depth=3).run()
    assert out.stats.max_depth < 20
    assert out.verdict == "violation" and out.violation.invariant == "mutual_exclusion"
    assert replay(model, out.violation.schedule).violation.invariant == "mutual_exclusion"


@pytest.mark.parametrize("depth", [None, 3])
def test_nothing_found_is_incomplete_with_the_executions_tried(depth):
    out = RandomSearch(counter(locked=True), Bounds(max_executions=25), seed=7, bug_depth=depth).run()
    assert out.verdict == "incomplete"
    assert out.stats.executions == 25 and "25" in out.reason and "seed 7" in out.reason


def test_a_seed_gives_the_same_run():
    model = mutex_model("peterson_swapped", rounds=2)
    runs = [RandomSearch(model, Bounds(max_executions=500), seed=s).run() for s in (5, 5, 6)]
    assert runs[0].violation.schedule == runs[1].violation.schedule
    assert runs[0].stats.executions == runs[1].stats.executions


# -- auto and the command line -------------------------------------------------------------


def test_auto_keeps_dfs_where_every_execution_ends():
    sc = load(ROOT / "scenarios" / "fault_vs_truncate_fixed.yaml")
    outcome, used, why = search(sc.model, "auto", "dpor", sc.bounds)
    assert used == "dfs" and outcome.verdict == "clean" and "dfs" in why


def test_bfs_refuses_a_preemption_bound():
    with pytest.raises(StrategyError, match="preemptions"):
        search(counter(), "bfs", bounds=Bounds(max_preemptions=1))
    out = subprocess.run([sys.executable, "-m", "racecheck.cli", "run", "--strategy", "bfs",
                          "--max-preemptions", "1", str(EXAMPLES / "peterson.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--max-preemptions goes with dfs" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_model_bfs_cannot_fingerprint_is_an_error_naming_the_variable(tmp_path):
    model = tmp_path / "opaque.py"
    model.write_text(
        "import random\nfrom types import SimpleNamespace\nfrom racecheck.model import Program\n"
        "def init(rt):\n    return SimpleNamespace(x=rt.var('x', 0))\n"
        "def body(st):\n    rng = random.Random(0)\n    yield 'draw'\n    st.x.set(rng.randrange(2))\n"
        "def build(params):\n    return Program('opaque', init, [('T', body)])\n")
    scenario = tmp_path / "opaque.yaml"
    scenario.write_text("name: opaque\nmodel: ./opaque.py\ninvariants: []\n")
    out = subprocess.run([sys.executable, "-m", "racecheck.cli", "run", "--strategy", "bfs",
                          str(scenario)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2, out.stdout
    assert "thread T" in out.stderr and "rng" in out.stderr and "random.Random" in out.stderr
    assert "Traceback" not in out.stderr


# -- bfs's bounds on states and memory ----------------------------------------------------


def endless(blob=0):
    """Two threads that count up forever, each on its own: no end of states.
    With ``blob``, each step leaves a new value of that many bytes in a local
    variable, which the state holds."""

    def init(rt):
        return SimpleNamespace(a=rt.var("a", 0), b=rt.var("b", 0))

    def counter(name):
        def body(st):
            x = getattr(st, name)
            while True:
                yield f"{name} += 1"
                x.set(x.get() + 1)
                data = bytes(blob) + str(x.value).encode()  # noqa: F841 (in the state)
        return body

    return Program("endless", init, [("A", counter("a")), ("B", counter("b"))])


def test_bfs_stops_at_the_state_bound_on_a_model_without_end():
    out = BreadthFirst(endless(), max_states=500).run()
    assert out.verdict == "incomplete" and "--max-states 500" in out.reason
    assert 500 <= out.stats.distinct_states < 500 + 2 and out.stats.queue > 0


def test_the_state_bound_is_taken_from_the_bounds_and_has_a_default():
    assert BreadthFirst(endless()).max_states == MAX_STATES > 1_000_000
    assert BreadthFirst(endless()).max_memory == MAX_MEMORY <= 2 << 30
    bounds = Bounds(timeout=30)
    bounds.max_states = 300  # as a Bounds with the field carries it
    out = BreadthFirst(endless(), bounds).run()
    assert out.verdict == "incomplete" and "--max-states 300" in out.reason


def test_bfs_stops_at_the_memory_bound_on_a_model_without_end():
    before = resident_memory()
    assert before is not None and before > 1 << 20
    limit = before + (48 << 20)
    out = BreadthFirst(endless(blob=256 << 10), Bounds(timeout=60), max_memory=limit).run()
    assert out.verdict == "incomplete", out.reason
    assert f"--max-memory {(limit + (1 << 19)) >> 20} MiB" in out.reason and "resident" in out.reason
    assert out.stats.elapsed_s < 30 and out.stats.queue > 0


def test_a_search_that_ends_within_the_bounds_is_clean():
    out = BreadthFirst(mutex_model("dekker"), max_states=10_000, max_memory=resident_memory() + (256 << 20)).run()
    assert out.verdict == "clean"


def test_auto_hands_a_model_without_end_to_bfs_which_stops_at_its_bound():
    bounds = Bounds(timeout=60)
    bounds.max_states = 400
    out, used, why = search(endless(), "auto", bounds=bounds)
    assert used == "bfs" and "a loop" in why
    assert out.verdict == "incomplete" and "--max-states 400" in out.reason
