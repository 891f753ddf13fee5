"""Start-up: a plain ``racecheck run`` imports only what it needs.

z3 (ranges of values), networkx (lock graphs) and xml (JUnit reports) are
heavy to import and a run without ranges uses none of them; racecheck's own
symbolic search is for ranges only. bench/bench_startup.py measures the time;
this keeps the imports from creeping back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_NEEDED = ("z3", "networkx", "xml", "racecheck.symbolic")

# The command in this process, then which of NOT_NEEDED it imported (at
# exit, after the command's own sys.exit).
PROBE = """
import atexit, sys
atexit.register(lambda: print("IMPORTED", sorted(m for m in {names!r} if m in sys.modules)))
sys.argv = ["racecheck", *{args!r}]
from racecheck.cli import main
main()
"""


def imported(args, tmp_path, names=NOT_NEEDED):
    code = PROBE.format(names=names, args=list(args))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in out.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert lines, out.stdout + out.stderr
    return out.returncode, lines[-1].removeprefix("IMPORTED ")


def test_run_without_ranges_imports_neither_z3_nor_networkx(tmp_path):
    status, names = imported(["run", "scenarios/fault_vs_truncate.yaml",
                              "--trace-out", str(tmp_path / "t.json")], tmp_path)
    assert status == 1  # the scenario's race was found: the run did its work
    assert names == "[]"


def test_run_on_one_process_imports_no_multiprocessing(tmp_path):
    # --jobs and --cluster need it; a plain run catches ClusterError only
    status, names = imported(["run", "scenarios/fault_vs_truncate.yaml",
                              "--trace-out", str(tmp_path / "t.json")], tmp_path,
                             names=("multiprocessing", "racecheck.parallel"))
    assert status == 1
    assert names == "[]"


def test_check_without_ranges_imports_neither_z3_nor_networkx(tmp_path):
    status, names = imported(["check", "scenarios/fault_vs_truncate.yaml", "scenarios/fault_vs_truncate_fixed.yaml"],
                             tmp_path)
    assert status == 0
    assert names == "[]"


def test_the_probe_sees_what_a_run_with_ranges_imports(tmp_path):
    """The same probe on a scenario with ranges: z3 and the symbolic search
    are there, so an empty list above is not an empty probe."""
    status, names = imported(["run", "scenarios/unaligned_dio_zeroing_symbolic.yaml",
                              "--trace-out", str(tmp_path / "t.json")], tmp_path)
    assert status == 1
    assert "'z3'" in names and "'racecheck.symbolic'" in names
