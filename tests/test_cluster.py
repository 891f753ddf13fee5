"""--cluster (racecheck/cluster.py): the work units on a Dask cluster give
the answers of one process, also when a worker dies mid-run; the time limit
and Ctrl-C stop the run as incomplete. One LocalCluster of two worker
processes serves the whole file (started in a second or two)."""

from __future__ import annotations

import functools
import json
import os

import pytest
import randprog
from click.testing import CliRunner
from conftest import SCENARIOS

distributed = pytest.importorskip("distributed")

from racecheck import cluster, parallel  # noqa: E402
from racecheck.cli import main  # noqa: E402
from racecheck.runner import check  # noqa: E402
from racecheck.scenario import load  # noqa: E402
from racecheck.scheduler import Bounds, Explorer  # noqa: E402


@pytest.fixture(scope="module")
def dask_cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as lc:
        with distributed.Client(lc) as client:
            yield lc, client


@pytest.mark.parametrize("name", ["fault_vs_truncate", "fault_vs_truncate_fixed", "unaligned_dio_zeroing",
                                  "cow_fault_vs_truncate_fixed"])
def test_the_cluster_gives_the_answer_of_one_process(dask_cluster, name):
    sc = load(SCENARIOS / f"{name}.yaml")
    one = Explorer(sc.model, "dpor", sc.bounds).run()
    split = parallel.explore(sc.model, "dpor", sc.bounds, jobs=2)
    local = split.outcome
    far = cluster.explore(sc.model, cluster.scenario_model(sc.path), bounds=sc.bounds,
                          client=dask_cluster[1]).outcome
    assert far.verdict == one.verdict
    if one.violation is not None:
        assert far.violation.invariant == one.violation.invariant
    assert local.verdict == one.verdict
    # The cluster never hands over. Local workers hand part of a running
    # unit over when one is idle; the violation reported is still the
    # first its unit of the split meets, as on the cluster, but the
    # executions of a hand-over's units (a branch explored twice) depend on
    # timing. Without a hand-over both take the same units in the same order.
    if one.violation is not None:
        assert far.violation.schedule == local.violation.schedule
    if split.handed == 0:
        assert far.stats.executions == local.stats.executions


@pytest.mark.parametrize("name", ["fault_vs_truncate", "unaligned_dio_zeroing"])
def test_the_counterexample_shown_is_that_of_one_process(dask_cluster, name):
    sc = load(SCENARIOS / f"{name}.yaml")
    runs = [check(sc, save_trace=False, jobs=j) for j in (1, 2, 8)]
    runs.append(check(sc, save_trace=False, cluster=dask_cluster[0].scheduler_address))
    assert len({tuple(r.outcome.violation.schedule) for r in runs}) == 1


@pytest.mark.parametrize("reduction", ["none", "dpor"])
def test_random_programs_on_the_cluster(dask_cluster, reduction):
    client = dask_cluster[1]
    for n, prog in enumerate(randprog.programs(f"cluster-{reduction}", 12)):
        model = randprog.build(prog)
        one = Explorer(model, reduction, Bounds()).run()
        far = cluster.explore(model, functools.partial(randprog.build, prog), reduction=reduction,
                              client=client).outcome
        assert far.verdict == one.verdict, f"program {n}\n{randprog.show(prog)}"
        if one.violation is not None:
            assert far.violation.invariant == one.violation.invariant, f"program {n}\n{randprog.show(prog)}"


def _dies_once(marker, coordinator, prog):
    """Build the model; on a worker, the first time of all, kill the worker
    process instead (in the middle of its first unit)."""
    if os.getpid() != coordinator:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
    return randprog.build(prog)


def _wide(threads=3, steps=3):
    """Threads that each add to x: many interleavings, none equivalent."""
    return randprog.program([[randprog.step([("add", "x", 1 + t)]) for _ in range(steps)] for t in range(threads)],
                            final=(("x", None, -1),))


def test_a_worker_that_dies_loses_nothing(dask_cluster, tmp_path):
    prog = _wide()
    model = randprog.build(prog)
    one = Explorer(model, "none", Bounds()).run()
    marker = str(tmp_path / "died")
    load = functools.partial(_dies_once, marker, os.getpid(), prog)
    far = cluster.explore(model, load, reduction="none", client=dask_cluster[1]).outcome
    assert os.path.exists(marker), "no worker died"
    assert far.verdict == one.verdict == "clean"
    assert far.stats.executions == one.stats.executions


def test_the_time_limit_and_ctrl_c_make_it_incomplete(dask_cluster):
    prog = _wide(threads=5, steps=4)
    model, load = randprog.build(prog), functools.partial(randprog.build, prog)
    out = cluster.explore(model, load, reduction="none", bounds=Bounds(timeout=0.5), client=dask_cluster[1])
    assert out.outcome.verdict == "incomplete" and "time limit" in out.outcome.reason

    def interrupt(stats, depth, elapsed):
        if stats.executions:  # (progress may come before any unit is done)
            raise KeyboardInterrupt  # as Ctrl-C would, once a unit is done

    prog = _wide(threads=4, steps=2)
    model, load = randprog.build(prog), functools.partial(randprog.build, prog)
    out = cluster.explore(model, load, reduction="none", progress=interrupt, client=dask_cluster[1])
    assert out.outcome.verdict == "incomplete" and "interrupted" in out.outcome.reason
    assert out.outcome.stats.executions > 0


def test_run_and_check_with_cluster(dask_cluster):
    address = dask_cluster[0].scheduler_address
    dask_cluster[1].wait_for_workers(2, timeout=30)  # (the worker killed above comes back)
    path = str(SCENARIOS / "fault_vs_truncate.yaml")
    out = CliRunner().invoke(main, ["run", path, "--cluster", address, "--json", "--trace-out", os.devnull])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.output)
    assert doc["cluster"] == address and doc["jobs"] == 2 and doc["invariant"] == "no_freed_block_mapped"
    out = CliRunner().invoke(main, ["check", path, str(SCENARIOS / "fault_vs_truncate_fixed.yaml"),
                                    "--cluster", address, "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [(r["scenario"], r["status"], r["cluster"]) for r in rows] == [
        ("fault_vs_truncate", "passed", address), ("fault_vs_truncate_fixed", "passed", address)]
    both = CliRunner().invoke(main, ["check", path, "--cluster", address, "--jobs", "2"])
    assert both.exit_code == 2 and "--cluster and --jobs" in both.output
    bad = CliRunner().invoke(main, ["run", path, "--cluster", address, "--jobs", "2"])
    assert bad.exit_code == 2


def test_a_cluster_that_is_not_there(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_S", 1)
    out = CliRunner().invoke(main, ["run", str(SCENARIOS / "fault_vs_truncate.yaml"),
                                    "--cluster", "tcp://127.0.0.1:9"])
    assert out.exit_code == 2 and "no Dask scheduler" in out.output
    out = CliRunner().invoke(main, ["check", str(SCENARIOS / "fault_vs_truncate.yaml"),
                                    "--cluster", "tcp://127.0.0.1:9"])
    assert out.exit_code == 2 and "no Dask scheduler" in out.output


def test_a_worker_with_another_file_refuses(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text((SCENARIOS / "fault_vs_truncate.yaml").read_text())
    load = cluster.scenario_model(path)
    assert load() is not None
    path.write_text(path.read_text() + "\n# changed\n")
    with pytest.raises(cluster.ClusterError, match="not the file"):
        load()
