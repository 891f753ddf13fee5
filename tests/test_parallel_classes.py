"""The classes of a symbolic scenario's values on several processes
(racecheck/parallel_classes.py): the answer of one process."""

from __future__ import annotations

import json
import os
import signal

import pytest
from click.testing import CliRunner
from conftest import SCENARIOS

from racecheck import parallel_classes, symbolic
from racecheck.cli import main
from racecheck.scenario import load
from racecheck.search import Bounds

SPACES = sorted(SCENARIOS.glob("*symbolic*.yaml"))


def _classes(out):
    return [(c.values, [symbolic.literal_text(lit) for lit in c.literals], c.verdict,
             c.outcome.stats.executions, c.outcome.violation and c.outcome.violation.schedule)
            for c in out.classes]


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_the_classes_are_one_process_s(path):
    # the same classes in the same order, with the same values, decisions,
    # verdicts and counterexamples, whatever the number of workers
    sc = load(path)
    one = symbolic.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds)
    for jobs in (2, 3) if one.verdict == "violation" else (2,):
        par = parallel_classes.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds, jobs=jobs)
        assert par.verdict == one.verdict and par.covered == one.covered
        assert _classes(par) == _classes(one)
        assert par.stats.executions == one.stats.executions and par.stats.steps == one.stats.steps
        assert par.z3_queries == one.z3_queries
        assert par.searched >= len(par.classes)


def test_every_class_past_violations():
    sc = load(SCENARIOS / "unaligned_dio_mixed_alignment_symbolic.yaml")
    one = symbolic.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds, stop_on_violation=False)
    par = parallel_classes.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds, stop_on_violation=False)
    assert par.covered and _classes(par) == _classes(one)


def test_run_with_jobs_reports_what_one_process_does():
    path = str(SCENARIOS / "unaligned_dio_zeroing_symbolic.yaml")
    docs = []
    for jobs in ("1", "2"):
        out = CliRunner().invoke(main, ["run", path, "--json", "--jobs", jobs, "--trace-out", os.devnull])
        assert out.exit_code == 1, out.output
        doc = json.loads(out.output)
        for key in ("elapsed_s", "jobs", "classes_searched", "trace_file"):
            doc.pop(key, None)
        doc["symbolic"].pop("z3_s")
        docs.append(doc)
    assert docs[0] == docs[1]
    text = CliRunner().invoke(main, ["run", path, "--jobs", "2", "--trace-out", os.devnull])
    assert "searches of classes of values" in text.output, text.output


def test_a_budget_or_a_dead_worker_is_incomplete(monkeypatch):
    sc = load(SCENARIOS / "xip_io_new_block_edges_symbolic_fixed.yaml")
    cut = parallel_classes.explore_classes(sc.space, sc.model, sc.reduction, Bounds(timeout=0.05))
    assert cut.verdict == "incomplete" and not cut.covered

    import racecheck.parallel_classes as P
    real = P._search

    def dies(model, env, *args):
        os.kill(os.getpid(), signal.SIGKILL)
        return real(model, env, *args)

    monkeypatch.setattr(P, "_search", dies)
    out = parallel_classes.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds)
    assert out.verdict == "incomplete" and "died" in out.reason


def test_max_executions_runs_in_one_process():
    path = str(SCENARIOS / "xip_io_new_block_edges_symbolic_fixed.yaml")
    out = CliRunner().invoke(main, ["run", path, "--json", "--jobs", "2", "--max-executions", "50"])
    doc = json.loads(out.output)
    assert out.exit_code == 3 and doc["jobs"] == 1 and "one process" in doc["notes"][0]
