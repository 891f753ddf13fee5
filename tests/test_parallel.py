"""Work units and --jobs (racecheck/parallel.py): the split explores every
trace one process explores, on the random programs of tests/randprog.py
against their independent interpreter, and a pool of processes gives the
answers of one process on the corpus."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

import pytest
import randprog
from click.testing import CliRunner
from conftest import SCENARIOS

from racecheck.cli import main
from racecheck.parallel import children, explore, units
from racecheck.scenario import load
from racecheck.scheduler import Explorer

SEED = "parallel"
COUNT = 80


def _check_units(n, prog, got, reduction, bad):
    """The units' union against the interpreter (every final state and
    invariant answer) and against one exhaustive search (every trace; with
    none, each exactly once: a partition); what differs goes in ``bad``."""
    expected = randprog.explore(prog)
    diff = [d for d in randprog.differences(prog, got, expected)
            if not (randprog.initially_false(prog) and d[0].startswith("missed always"))]
    whole = randprog.racecheck_dfs(prog, "none")
    missed = set(whole["unprobed"]) - set(got["unprobed"])
    if reduction == "none":
        assert Counter(got["traces"]) == Counter(whole["traces"]), f"program {n}: the split is not a partition"
    if diff or missed:
        bad.append(f"program {n}: {diff} {len(missed)} traces missed\n{randprog.show(prog)}")


@pytest.mark.parametrize("reduction", ["none", "dpor"])
@pytest.mark.parametrize("depth", [1, 3])
def test_units_together_explore_every_trace(reduction, depth, record_property):
    bad, totals = [], Counter()
    for n, prog in enumerate(randprog.programs(f"{SEED}-{reduction}-{depth}", COUNT)):
        got = randprog.racecheck_units(prog, reduction, depth)
        _check_units(n, prog, got, reduction, bad)
        seq = randprog.racecheck_dfs(prog, reduction)
        totals["units"] += got["executions"]
        totals["one"] += seq["executions"]
    record_property("executions_split_vs_one", f"{totals['units']} / {totals['one']}")
    print(f"{reduction} depth {depth}: {totals['units']} executions in units, {totals['one']} in one search")
    assert not bad, f"{len(bad)} of {COUNT} programs: " + "\n\n".join(bad[:3])


@pytest.mark.parametrize("reduction", ["none", "dpor"])
@pytest.mark.parametrize("how", ["every other", "split()"])
def test_a_split_of_mixed_depths_explores_every_trace(reduction, how):
    # units at depth 1, every other one split one step deeper; and split()'s,
    # which splits the units with the fewest threads asleep first
    def refine(unit):
        return unit.index % 2 == 1

    bad = []
    for n, prog in enumerate(randprog.programs(f"{SEED}-mixed-{reduction}-{how}", COUNT)):
        if how == "split()":
            got = randprog.racecheck_units(prog, reduction, 1, wanted=12)
        else:
            got = randprog.racecheck_units(prog, reduction, 1, refine=refine)
        _check_units(n, prog, got, reduction, bad)
    assert not bad, f"{len(bad)} of {COUNT} programs: " + "\n\n".join(bad[:3])


def test_children_of_a_unit():
    sc = load(SCENARIOS / "fault_vs_truncate_fixed.yaml")
    top, _ = units(sc.model, "dpor", sc.bounds, 1)
    deeper, _ = units(sc.model, "dpor", sc.bounds, 2)
    split = [c.prefix for u in top for c in children(sc.model, u, "dpor", sc.bounds)[0]]
    assert split == [u.prefix for u in deeper]


def test_progress_gets_the_workers_merged_stats():
    sc = load(SCENARIOS / "cow_fault_vs_truncate_fixed.yaml")
    seen = []
    out = explore(sc.model, "none", sc.bounds, jobs=2, progress=lambda s, d, t: seen.append(s.executions)).outcome
    assert seen and seen == sorted(seen)  # the executions of every unit done so far, growing
    assert 0 < seen[-1] <= out.stats.executions
    assert max(seen) > out.stats.executions // 2


def test_an_idle_worker_gets_half_of_the_busiest_ones_units():
    from racecheck.parallel import _Stealing
    give = [0, 0, 0]
    s = _Stealing(3, 3, give)
    s.update("took", 0, 6)
    s.update("took", 1, 2)
    assert give == [0, 0, 0]  # a run waits for the third worker
    s.update("took", 2, 1)
    assert give == [0, 0, 0]  # no worker idle
    s.update("idle", 2, 0)
    assert give == [1, 0, 0] and s.asked == 0  # the one with the most left
    s.update("idle", 1, 0)
    assert give == [1, 0, 0]  # one request at a time
    s.update("rest", 0, 2)
    assert s.waiting == 1 and s.steals == 1 and s.asked is None
    s.update("took", 2, 3)
    assert s.waiting == 0 and give[1] == 0


def test_a_worker_without_a_run_is_idle_from_the_start():
    # One run (the whole tree, for dpor) and two workers: the one that took
    # nothing is idle, and the busy one is asked to hand part of its unit over.
    from racecheck.parallel import _Stealing
    give = [0, 0]
    s = _Stealing(2, 1, give)
    s.update("took", 0, 1)
    assert give == [1, 0] and s.asked == 0


def test_runs_of_units_share_a_prefix():
    from racecheck.parallel import tasks
    sc = load(SCENARIOS / "cow_fault_vs_truncate_fixed.yaml")
    found, _ = units(sc.model, "none", sc.bounds, 4)
    runs = tasks(found, 2)
    assert [u for run in runs for u in run] == found and len(runs) >= 4
    depth = min(len(os.path.commonprefix([u.prefix for u in run])) for run in runs)
    assert 1 <= depth < 4 and any(len(run) > 1 for run in runs)  # subtrees, each of several units


def test_units_are_plain_data():
    import pickle
    sc = load(SCENARIOS / "fault_vs_truncate_fixed.yaml")
    found, _ = units(sc.model, "dpor", sc.bounds, 3)
    assert found and [u.index for u in found] == list(range(len(found)))
    assert pickle.loads(pickle.dumps(found))[0].prefix == found[0].prefix


# (scenario, reductions): none only where exhaustive exploration takes seconds
SCENARIOS_COMPARED = [("fault_vs_truncate", ("dpor", "none")), ("fault_vs_truncate_fixed", ("dpor", "none")),
                      ("cow_fault_vs_truncate_fixed", ("dpor", "none")), ("hole_page_vs_write_fault_fixed", ("dpor",)),
                      ("unaligned_dio_zeroing", ("dpor", "none")), ("unaligned_dio_zeroing_fixed", ("dpor", "none")),
                      ("buffered_short_copy_fixed", ("dpor", "none")), ("ext4_dax_fault_deadlock", ("dpor",)),
                      ("ext4_dax_fault_deadlock_fixed", ("dpor",))]


@pytest.mark.parametrize("name,reduction", [(n, r) for n, rs in SCENARIOS_COMPARED for r in rs])
def test_two_workers_give_the_answer_of_one(name, reduction):
    sc = load(SCENARIOS / f"{name}.yaml")
    one = Explorer(sc.model, reduction, sc.bounds).run()
    two = explore(sc.model, reduction, sc.bounds, jobs=2).outcome
    assert two.verdict == one.verdict
    if one.violation is not None:
        assert two.violation.invariant == one.violation.invariant
    if reduction == "none":
        assert two.stats.executions == one.stats.executions


def test_the_answer_does_not_depend_on_the_number_of_workers():
    sc = load(SCENARIOS / "unaligned_dio_zeroing.yaml")
    runs = [explore(sc.model, "dpor", sc.bounds, jobs=j).outcome for j in (2, 3)]
    assert runs[0].violation.schedule == runs[1].violation.schedule
    assert runs[0].stats.executions == runs[1].stats.executions


def test_run_with_jobs(tmp_path):
    out = CliRunner().invoke(main, ["run", str(SCENARIOS / "fault_vs_truncate_fixed.yaml"), "--jobs", "2", "--json"])
    assert out.exit_code == 0, out.output
    import json
    doc = json.loads(out.output)
    assert doc["verdict"] == "clean" and doc["jobs"] == 2 and doc["units"] >= 2
    bad = CliRunner().invoke(main, ["run", str(SCENARIOS / "fault_vs_truncate_fixed.yaml"), "--jobs", "0"])
    assert bad.exit_code == 2


def test_a_worker_that_dies_makes_the_run_incomplete(monkeypatch):
    # a worker killed mid-run: the run says incomplete, never clean, and does not hang
    import os
    import signal

    import racecheck.parallel as P
    real = P._explore_handing

    def dies(model, unit, *args):
        if unit.index == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(model, unit, *args)

    monkeypatch.setattr(P, "_explore_handing", dies)
    sc = load(SCENARIOS / "fault_vs_truncate_fixed.yaml")
    out = explore(sc.model, "dpor", sc.bounds, jobs=2).outcome
    assert out.verdict == "incomplete" and "died" in out.reason


CRASH = sorted(p.stem for p in SCENARIOS.glob("*.yaml") if "crash: true" in p.read_text())
# exhaustive exploration of these takes more than a second: dpor only
CRASH_SLOW = {"buffered_short_copy_crash_fixed", "delalloc_ordered_data_crash_fixed"}


@pytest.mark.parametrize("name", CRASH)
def test_crash_states_are_counted_once_over_the_units(name):
    # A crash state that two units reach is one state: the count, the
    # verdict, the counterexample and the executions are one process's.
    from racecheck.runner import check
    sc = load(SCENARIOS / f"{name}.yaml")
    for reduction in ("dpor",) if name in CRASH_SLOW else ("dpor", "none"):
        one, two = (check(sc, reduction=reduction, jobs=j, save_trace=False) for j in (1, 2))
        if reduction == "none":
            assert two.parallel["units"] >= 2  # (dpor starts from the whole tree, handed over as it runs)
        assert two.verdict == one.verdict
        assert two.checks["crash_states"] == one.checks["crash_states"]
        assert two.outcome.stats.executions == one.outcome.stats.executions
        if one.found is not None:
            assert two.outcome.violation.schedule == one.outcome.violation.schedule


def test_a_family_with_a_violation_reports_its_split_units_first():
    # A split unit that handed over part of its subtree, and the units
    # handed over: which of them meets a violation first depends on timing,
    # so the run reports the violation the split unit meets first alone,
    # and counts the executions that takes.
    from racecheck.handover import HandingExplorer, Ledger
    from racecheck.parallel import InOrder, first_in_order, split
    sc = load(SCENARIOS / "unaligned_dio_zeroing.yaml")
    found, _ = split(sc.model, "dpor", sc.bounds, 2)
    alone = [Explorer(sc.model, "dpor", sc.bounds, unit=u).run() for u in found]
    f = next(i for i, o in enumerate(alone) if o.violation is not None)
    ledger, taken = Ledger(found), InOrder(len(found), sc.bounds)
    for i, o in enumerate(alone[:f]):
        taken.put(i, o)
    todo, family = [found[f]], []
    while todo:  # each unit hands over after its first execution, the handed ones explored last first
        unit = todo.pop()
        handed = []
        search = HandingExplorer(sc.model, "dpor", sc.bounds, unit, stop_on_violation=False,
                                 should_stop=lambda s: handed.extend(s.hand_over()) and None)
        outcome = search.run()
        new = handed + ledger.add(unit, search.record())
        family.append((unit, outcome))
        todo += [dataclasses.replace(u, index=taken.extend(f, 1)) for u in new]
    assert len(family) > 1 and any(o.violation is not None for _, o in family[1:])
    for unit, outcome in family:
        taken.put(unit.index, outcome)
    assert taken.finished and taken.again == f
    first_in_order(sc.model, found[f], "dpor", sc.bounds, None, taken)
    out = taken.outcome()
    assert out.violation.schedule == alone[f].violation.schedule
    assert out.stats.executions == sum(o.stats.executions for o in alone[:f + 1])


def test_a_violation_in_the_next_family_decides_before_its_other_units_end():
    # From the whole tree (one family), the units handed over run on after
    # one of them met a violation; the run's answer is the split unit's
    # first violation alone, so the family is decided at once.
    from racecheck.parallel import InOrder, Unit, first_in_order
    sc = load(SCENARIOS / "unaligned_dio_zeroing.yaml")
    alone = Explorer(sc.model, "dpor", sc.bounds).run()
    taken = InOrder(1, sc.bounds)
    first = taken.extend(0, 2)  # two units handed over from the root
    assert taken.put(first, Explorer(sc.model, "dpor", sc.bounds).run())  # a violation: over
    assert taken.again == 0  # though the root and the unit first + 1 still run
    first_in_order(sc.model, Unit(0, ()), "dpor", sc.bounds, None, taken)
    out = taken.outcome()
    assert out.violation.schedule == alone.violation.schedule
    assert out.stats.executions == alone.stats.executions


def test_max_executions_bounds_the_units_together():
    # Each unit has the limit; from the whole tree the units handed over
    # would otherwise go on past it, a limit each.
    from test_bench_programs import programs

    from racecheck.scheduler import Bounds
    out = explore(programs.readers(14), "dpor", Bounds(max_executions=1000), jobs=2).outcome
    assert out.verdict == "incomplete" and "max-executions" in str(out.reason)
    assert 1000 <= out.stats.executions < 2000
