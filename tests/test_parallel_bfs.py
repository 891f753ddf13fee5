"""bfs on several processes (racecheck/parallel_bfs.py): the same distinct
states, verdict and counterexample (the schedule itself) as one process, on
the corpus and on random programs, with 1, 2 and 3 workers; a search
stopped early says incomplete."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import randprog
from click.testing import CliRunner
from conftest import SCENARIOS

from racecheck import parallel_bfs
from racecheck.cli import main
from racecheck.model import Program
from racecheck.parallel_bfs import explore
from racecheck.scenario import load
from racecheck.search import Bounds
from racecheck.strategies import BreadthFirst

JOBS = (1, 2, 3)


def same(one, par, what):
    assert par.verdict == one.verdict, what
    if one.verdict == "clean":
        assert par.stats.distinct_states == one.stats.distinct_states, what
    if one.violation is not None:
        assert par.violation.invariant == one.violation.invariant, what
        assert par.violation.schedule == one.violation.schedule, what  # the first one process meets
        assert par.violation.message == one.violation.message, what


@pytest.mark.parametrize("name", ["cow_fault_vs_truncate", "cow_fault_vs_truncate_fixed", "fault_vs_truncate",
                                  "fault_vs_truncate_fixed", "dax_fault_no_entry_wait_fixed",
                                  "ext4_dax_fault_deadlock", "buffered_short_copy_crash_fixed"])
def test_the_corpus_as_one_process(name):
    sc = load(SCENARIOS / f"{name}.yaml")
    one = BreadthFirst(sc.model, sc.bounds).run()
    for jobs in JOBS:
        par = explore(sc.model, sc.bounds, jobs=jobs)
        same(one, par, (name, jobs))
        if one.verdict == "clean":  # (past a violation the workers finish the level: more states)
            assert (par.checks or {}).get("crash_states") == (one.checks or {}).get("crash_states"), name


def test_random_programs_as_one_process():
    for n, prog in enumerate(randprog.programs("parallel-bfs", 40)):
        model = randprog.build(prog)
        one = BreadthFirst(model, Bounds()).run()
        for jobs in JOBS:
            same(one, explore(model, Bounds(), jobs=jobs), f"program {n}, {jobs} workers\n{randprog.show(prog)}")


def test_every_state_past_violations():
    # with the invariants left out, the whole state space: no state lost between owners
    for n, prog in enumerate(randprog.programs("parallel-bfs-all", 30)):
        prog = dict(prog, always=None, final=None)
        model = randprog.build(prog)
        one = BreadthFirst(model, Bounds()).run()
        if one.verdict == "clean":
            for jobs in (2, 3):
                assert explore(model, Bounds(), jobs=jobs).stats.distinct_states == one.stats.distinct_states, n


def test_the_counterexample_does_not_depend_on_the_workers():
    sc = load(SCENARIOS / "fault_vs_truncate.yaml")
    runs = [explore(sc.model, sc.bounds, jobs=j).violation.schedule for j in (1, 2, 3)]
    assert runs[0] == runs[1] == runs[2]


def test_run_bfs_with_jobs():
    path = str(SCENARIOS / "cow_fault_vs_truncate_fixed.yaml")
    out = CliRunner().invoke(main, ["run", path, "--strategy", "bfs", "--jobs", "2", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["strategy"] == "bfs" and doc["jobs"] == 2
    one = json.loads(CliRunner().invoke(main, ["run", path, "--strategy", "bfs", "--json"]).output)
    assert doc["distinct_states"] == one["distinct_states"]
    text = CliRunner().invoke(main, ["run", path, "--strategy", "bfs", "--jobs", "2"])
    assert text.exit_code == 0 and "on 2 processes, levels in step" in text.output, text.output
    looping = CliRunner().invoke(main, ["run", str(SCENARIOS / "xip_file_fault_retry.yaml"), "--jobs", "2"])
    assert looping.exit_code == 0 and "bfs" in looping.output, looping.output  # auto turns to bfs on 2 processes


def counters():
    """Four threads adding to one variable: a few thousand states, clean."""
    return randprog.build(randprog.program([[randprog.step([("add", "x", 1)])] * 6 for _ in range(4)]))


def test_time_limit():
    out = explore(counters(), Bounds(timeout=0.001), jobs=2)
    assert out.verdict == "incomplete" and "time limit" in out.reason


def test_max_states():
    out = explore(counters(), Bounds(max_states=100), jobs=2)
    assert out.verdict == "incomplete" and "--max-states 100" in out.reason
    assert 100 <= out.stats.distinct_states < BreadthFirst(counters(), Bounds()).run().stats.distinct_states


def test_interrupted():
    levels = []

    def interrupt(stats, depth, elapsed):
        levels.append(depth)
        if len(levels) == 3:
            raise KeyboardInterrupt  # as Ctrl-C would, between two levels

    out = explore(counters(), Bounds(), jobs=2, progress=interrupt)
    assert out.verdict == "incomplete" and "interrupted" in out.reason
    assert out.stats.distinct_states > 1


def raising():
    """A model that raises once the second thread reads 1: the first schedule
    that makes it raise is the error's."""

    def init(rt):
        return SimpleNamespace(x=rt.array("x", [0]))

    def writer(st):
        for v in (1, 2, 1):
            yield f"x = {v}"
            st.x.set(0, v)

    def reader(st):
        for _ in range(3):
            yield "read x"
            if st.x.get(0) == 1:
                raise ValueError("read 1")

    return Program("raising", init, [("writer", writer), ("reader", reader)], [])


def test_a_model_that_raises_is_an_error_with_one_process_schedule(monkeypatch):
    monkeypatch.setattr(parallel_bfs, "BALANCE", 0.0)  # (states spread over the workers from the first level)
    monkeypatch.setattr(parallel_bfs, "FEW", 0)
    one = BreadthFirst(raising(), Bounds()).run()
    assert one.verdict == "error"
    for jobs in JOBS:
        par = explore(raising(), Bounds(), jobs=jobs)
        assert par.verdict == "error" and par.error["schedule"] == one.error["schedule"], jobs
        assert par.error["exception"] == one.error["exception"]


def test_states_move_between_workers(monkeypatch):
    # every level balanced, however even: the moved states lose their live
    # executions, and the search is still one process's
    monkeypatch.setattr(parallel_bfs, "BALANCE", 0.0)
    monkeypatch.setattr(parallel_bfs, "FEW", 0)
    for n, prog in enumerate(randprog.programs("parallel-bfs-moves", 15)):
        model = randprog.build(prog)
        one = BreadthFirst(model, Bounds()).run()
        for jobs in (2, 3):
            same(one, explore(model, Bounds(), jobs=jobs), f"program {n}, {jobs} workers\n{randprog.show(prog)}")
    for name in ("fault_vs_truncate", "cow_fault_vs_truncate_fixed"):
        sc = load(SCENARIOS / f"{name}.yaml")
        same(BreadthFirst(sc.model, sc.bounds).run(), explore(sc.model, sc.bounds, jobs=2), name)


def test_moves_even_out_the_level():
    assert parallel_bfs.moves([10, 10]) == []
    assert parallel_bfs.moves([100, 0]) == [(0, 1, 50)]
    assert parallel_bfs.moves([90, 5, 5]) == [(0, 1, 28), (0, 2, 28)]
    assert parallel_bfs.moves([7, 300, 2]) == [(1, 0, 96), (1, 2, 101)]
