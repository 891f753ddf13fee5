"""racecheck suggest-fix: the placements it proves are clean under
exhaustive exploration too, the files it writes run clean, and it says when
it found none or ran out of budget."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import SCENARIOS

from racecheck.cli import main
from racecheck.runner import check
from racecheck.scenario import load
from racecheck.suggest import NEW_LOCK, suggest, with_edit


def test_fault_vs_truncate_placements_are_proven_and_written(tmp_path):
    out = CliRunner().invoke(main, ["suggest-fix", str(SCENARIOS / "fault_vs_truncate.yaml"),
                                    "--out-dir", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["proven"] and doc["not_reached"] == 0 and doc["stopped"] is None
    sizes = [len(p["shared"]) + len(p["exclusive"]) for p in doc["proven"]]
    assert sizes == sorted(sizes)
    # the rejected ones say what still breaks
    assert all(r["invariant"] for r in doc["rejected"])
    for p in doc["proven"][:4]:
        ran = CliRunner().invoke(main, ["run", p["file"], "--reduction", "none"])
        assert ran.exit_code == 0, ran.output  # clean without the reduction too


def test_every_proven_placement_is_clean_without_reduction():
    sc = load(SCENARIOS / "xip_read_vs_truncate.yaml")
    result = suggest(sc)
    assert result.proven
    for t in result.proven:
        rep = check(with_edit(sc, t.candidate), reduction="none", save_trace=False)
        assert rep.verdict == "clean", t.candidate.describe()
    for t in result.tried:
        if t.verdict != "clean":
            rep = check(with_edit(sc, t.candidate), reduction="none", save_trace=False)
            assert rep.verdict == "violation", t.candidate.describe()


def test_a_new_rwsem_shared_by_the_fault_closes_fault_vs_truncate():
    # what later kernels did: i_mmap_sem / invalidate_lock read by faults,
    # written by truncate
    result = suggest(load(SCENARIOS / "fault_vs_truncate.yaml"))
    first = result.proven[0].candidate
    assert first.lock == NEW_LOCK and dict(first.placement).get("xip_file_fault") is True


def test_no_placement_closes_a_race_that_needs_a_wait(tmp_path):
    # unaligned_dio_zeroing: the zeros land at an asynchronous completion; no
    # lock around a function orders it (the fix is a wait)
    out = CliRunner().invoke(main, ["suggest-fix", str(SCENARIOS / "unaligned_dio_zeroing.yaml"),
                                    "--out-dir", str(tmp_path), "--max-size", "1"])
    assert out.exit_code == 1, out.output
    assert "no placement of these closes the race" in out.output


def test_budget_that_ends_before_any_fix_is_exit_3(tmp_path):
    out = CliRunner().invoke(main, ["suggest-fix", str(SCENARIOS / "fault_vs_truncate.yaml"),
                                    "--out-dir", str(tmp_path), "--timeout", "0.000001"])
    assert out.exit_code == 3, out.output
    assert "not tried" in out.output


def test_a_clean_scenario_is_refused(tmp_path):
    out = CliRunner().invoke(main, ["suggest-fix", str(SCENARIOS / "fault_vs_truncate_fixed.yaml"),
                                    "--out-dir", str(tmp_path)])
    assert out.exit_code == 2
    assert "needs a scenario that violates" in out.output
