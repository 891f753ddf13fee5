"""The command line, through the installed console script (exit statuses,
stdout versus stderr, --json fields) and through click's runner."""

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import ctrl_c_as_in_a_terminal

from racecheck.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "fault_vs_truncate.yaml"
FIXED = ROOT / "scenarios" / "fault_vs_truncate_fixed.yaml"
JSON_FIELDS = {"scenario", "verdict", "invariant", "message", "executions", "steps",
               "elapsed_s", "trace"}


# The command line of the interpreter running the tests (its environment's
# racecheck, not whichever one PATH finds first).
RACECHECK = [sys.executable, "-m", "racecheck"]


def racecheck(*args, cwd):
    return subprocess.run([*RACECHECK, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def cpu_seconds(pid):
    """User and system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_run_violation_exit_1_and_trace_saved(tmp_path):
    out = racecheck("run", str(SCENARIO), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "VIOLATION of no_freed_block_mapped" in out.stdout
    assert "racecheck replay traces/fault_vs_truncate.json" in out.stdout
    assert (tmp_path / "traces" / "fault_vs_truncate.json").exists()
    assert out.stderr == ""


def test_run_clean_exit_0(tmp_path):
    out = racecheck("run", str(FIXED), cwd=tmp_path)
    assert out.returncode == 0
    assert "CLEAN" in out.stdout
    assert not (tmp_path / "traces").exists()


def test_run_json_has_the_contract_fields(tmp_path):
    out = racecheck("run", "--json", "--trace-out", "t.json", str(SCENARIO), cwd=tmp_path)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert JSON_FIELDS <= set(doc)
    assert doc["verdict"] == "violation"
    assert doc["invariant"] == "no_freed_block_mapped"
    assert doc["trace"]["schedule"][-1] == "fault"
    assert (tmp_path / "t.json").exists()


def test_incomplete_exit_3_never_clean(tmp_path):
    out = racecheck("run", "--json", "--max-executions", "1", str(FIXED), cwd=tmp_path)
    assert out.returncode == 3
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "incomplete"
    assert doc["executions"] == 1


def test_replay_reproduces_and_show_prints_columns(tmp_path):
    assert racecheck("run", str(SCENARIO), cwd=tmp_path).returncode == 1
    trace = tmp_path / "traces" / "fault_vs_truncate.json"
    rep = racecheck("replay", str(trace), cwd=tmp_path)
    assert rep.returncode == 1
    assert "the same violation as saved" in rep.stdout
    shown = racecheck("show", str(trace), cwd=tmp_path)
    assert shown.returncode == 0
    header = shown.stdout.splitlines()[2]
    assert "fault" in header and "truncate" in header
    assert "\x1b[" not in shown.stdout  # plain when not a terminal


def test_check_rows_summary_and_junit(tmp_path):
    junit = tmp_path / "out.xml"
    out = racecheck("check", "--junit", str(junit), str(SCENARIO), str(FIXED), cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert "2 of 2 scenarios as expected" in out.stdout
    xml = junit.read_text()
    assert xml.count("<testcase") == 2 and 'failures="0"' in xml


def test_check_mismatch_exit_1(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(FIXED.read_text().replace("fixes: [recheck_isize_under_i_mmap_mutex]", "fixes: []"))
    out = racecheck("check", "--json", str(wrong), cwd=tmp_path)
    assert out.returncode == 1
    row = json.loads(out.stdout.splitlines()[0])
    assert row["ok"] is False and row["verdict"] == "violation"


def test_list_names_everything():
    out = CliRunner().invoke(main, ["list"])
    assert out.exit_code == 0
    for name in ("mmap_load", "truncate", "ext2", "recheck_isize_under_i_mmap_mutex",
                 "no_freed_block_mapped", "deadlock_free"):
        assert name in out.output


def test_model_error_exit_4(tmp_path):
    model = tmp_path / "broken.py"
    model.write_text(
        "from types import SimpleNamespace\n"
        "from racecheck.model import Program\n"
        "def init(rt):\n    return SimpleNamespace(x=rt.var('x', 0))\n"
        "def body(st):\n    yield 'step'\n    st.x.set(1 / st.x.get())\n"
        "def build(params):\n    return Program('broken', init, [('t', body)])\n")
    sc = tmp_path / "broken.yaml"
    sc.write_text("name: broken\nmodel: ./broken.py\ninvariants: [assertion]\n")
    trace = tmp_path / "broken.json"
    out = CliRunner().invoke(main, ["run", str(sc), "--trace-out", str(trace)])
    assert out.exit_code == 4
    assert "ZeroDivisionError" in out.output
    assert "schedule: t\n" in out.output  # thread names, not indices
    assert f"trace saved to {trace}" in out.output
    replayed = CliRunner().invoke(main, ["replay", str(trace)])
    assert replayed.exit_code == 4 and "the same error as saved" in replayed.output


LONG = ROOT / "scenarios" / "hole_page_vs_write_fault_fixed.yaml"  # minutes with --reduction none


def test_timeout_stops_cleanly_as_incomplete(tmp_path):
    out = racecheck("run", "--json", "--reduction", "none", "--timeout", "1", str(LONG), cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "incomplete" and "time limit" in doc["reason"]
    assert doc["executions"] > 0


def test_ctrl_c_stops_cleanly_with_the_statistics(tmp_path):
    import signal
    import time

    proc = subprocess.Popen([*RACECHECK, "run", "--reduction", "none", str(LONG)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal, env={**os.environ, "PYTHONPATH": str(ROOT)})
    # Interrupt the search, not the start-up: wait until the process has
    # used a second and a half of CPU (starting takes a fraction of that),
    # however loaded the machine is.
    deadline = time.monotonic() + 120
    while cpu_seconds(proc.pid) < 1.5 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert "INCOMPLETE" in stdout and "interrupted" in stdout
    assert "Traceback" not in stderr


def test_examples_check_as_expected(tmp_path):
    out = racecheck("check", str(ROOT / "examples"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    n = len(list((ROOT / "examples").rglob("*.yaml")))
    assert f"{n} of {n} scenarios as expected" in out.stdout


def test_bfs_bounds_from_the_command_line(tmp_path):
    """Two counters that never stop: --max-states ends bfs as incomplete."""
    (tmp_path / "loop.py").write_text(
        "from types import SimpleNamespace\n"
        "from racecheck import Program\n"
        "def init(rt):\n    return SimpleNamespace(a=rt.var('a', 0), b=rt.var('b', 0))\n"
        "def count(name):\n"
        "    def body(st):\n"
        "        v = getattr(st, name)\n"
        "        while True:\n"
        "            yield name\n"
        "            v.set(v.get() + 1)\n"
        "    return body\n"
        "def build(params):\n    return Program('counters', init, [('A', count('a')), ('B', count('b'))])\n")
    (tmp_path / "loop.yaml").write_text("name: loop\nmodel: ./loop.py\ninvariants: []\n")
    out = racecheck("run", "loop.yaml", "--strategy", "bfs", "--max-states", "500", cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "stopped at --max-states 500" in out.stdout
    out = racecheck("run", "loop.yaml", "--strategy", "bfs", "--max-memory", "1", cwd=tmp_path)
    assert out.returncode == 3 and "stopped at --max-memory 1 MiB" in out.stdout


def test_list_and_schema_show_the_librarys_invariants_not_a_loaded_models(monkeypatch):
    # A user's model registers its invariants in the process that loads it
    # (a pytest session, the plugin); list and the schema stay the library's.
    from racecheck import invariants as inv
    from racecheck import schema

    class Mine(inv.Invariant):
        name = "users_own_invariant"
        description = "registered by a model of a user's"

    monkeypatch.setitem(inv.REGISTRY, Mine.name, Mine)
    listed = CliRunner().invoke(main, ["list", "invariants"])
    assert listed.exit_code == 0 and "no_stale_data" in listed.output
    assert Mine.name not in listed.output
    text = schema.schema_text()
    assert '"no_stale_data"' in text and Mine.name not in text
