"""The scenario corpus: every scenario gets the verdict its ``expect`` names,
and every fix is what makes its ``_fixed`` twin clean.

For each ``<race>_fixed.yaml`` the twin ``<race>.yaml`` must exist and differ
only in name, description, fixes and expect; the fixed scenario must explore
more than one execution; and with its fixes removed it must violate again.
"""

from pathlib import Path

import pytest
import yaml

from racecheck.runner import check
from racecheck.scenario import load

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
FIXED = [p for p in SCENARIOS if p.stem.endswith("_fixed")]


def ids(paths):
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", SCENARIOS, ids=ids(SCENARIOS))
def test_scenario_matches_its_expect(path):
    sc = load(path)
    rep = check(sc, save_trace=False)
    assert rep.verdict == sc.expect["verdict"], rep.outcome.reason or rep.outcome.error
    if sc.expect["verdict"] == "violation":
        assert rep.outcome.violation.invariant == sc.expect["invariant"]
        # The minimised counterexample replays to the same violation.
        assert rep.trace["invariant"] == sc.expect["invariant"]


@pytest.mark.parametrize("path", FIXED, ids=ids(FIXED))
def test_fixed_twin_differs_only_in_fixes(path):
    # ... or in its edits: a pair written with edits drops the protection in
    # the buggy twin (models/edits.py)
    twin = path.with_name(path.stem[: -len("_fixed")] + ".yaml")
    assert twin.exists(), f"{path.name} has no buggy twin {twin.name}"
    fixed, buggy = yaml.safe_load(path.read_text()), yaml.safe_load(twin.read_text())
    for key in ("name", "description", "fixes", "expect", "edits"):
        fixed.pop(key, None)
        buggy.pop(key, None)
    assert fixed == buggy


@pytest.mark.parametrize("path", FIXED, ids=ids(FIXED))
def test_removing_the_fix_brings_the_violation_back(path):
    sc = load(path)
    twin = load(path.with_name(path.stem[: -len("_fixed")] + ".yaml"))
    assert sc.fixes or twin.model.edits.drop, f"{path.name} applies no fix and its twin drops nothing"
    rep = check(sc, save_trace=False, do_minimise=False)
    assert rep.verdict == "clean"
    assert rep.outcome.stats.executions > 1
    if not sc.fixes:  # the protection is in the code; the twin's edits drop it
        broken = check(twin, save_trace=False, do_minimise=False)
        assert broken.verdict == "violation", f"{twin.path.name} is clean though it drops the protection"
        return
    sc.model.fixes = []
    broken = check(sc, save_trace=False, do_minimise=False)
    assert broken.verdict == "violation", f"{path.name} is clean even without its fixes"
