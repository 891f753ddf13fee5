"""The pytest plugin collects nothing until a project asks for it: files
named *.race.yaml, the globs of the ``racecheck_scenarios`` ini option, or
every scenario-looking YAML file with ``-p racecheck.pytest_plugin``. A
failing item shows the counterexample, saves its trace and names the
``racecheck view`` command.

Each run here is pytester's, in this process, with plugin autoloading off so
that whatever racecheck is installed does not take part: ``pytest_plugins``
in the run's conftest stands for the installed entry point (which names the
module, not the command line), ``-p`` for the command line. pytester takes
back, after each run, the modules the run imported: the scenario loader and
the kernel library are imported here first, so that the registry the
library fills (racecheck.model.BUILDERS) and the modules that read it stay
one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import racecheck.scenario  # noqa: F401  (see below)
from racecheck.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOOD = (ROOT / "scenarios" / "fault_vs_truncate.yaml").read_text()
# the code as posted, expected clean: a failing item
WRONG = ((ROOT / "scenarios" / "fault_vs_truncate_fixed.yaml").read_text()
         .replace("fixes: [recheck_isize_under_i_mmap_mutex]", "fixes: []")
         .replace("name: fault_vs_truncate_fixed", "name: wrongly_expected"))
assert WRONG.count("wrongly_expected") == 1 and "fixes: []" in WRONG
INSTALLED = "pytest_plugins = ['racecheck.pytest_plugin']\n"


@pytest.fixture
def run(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_PLUGINS", raising=False)
    monkeypatch.chdir(pytester.path)

    def run(*args, installed=True):
        if installed:
            pytester.makeconftest(INSTALLED)
        return pytester.runpytest("-p", "no:cacheprovider", *args)
    return run


def _files(pytester, **files):
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_installed_it_collects_no_yaml_file_unasked(pytester, run):
    _files(pytester, **{"good.yaml": GOOD, "scenarios/wrong.yaml": WRONG, "notes.yaml": "just: yaml\n"})
    result = run()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    _files(pytester, **{"x.race.yaml": GOOD})  # (the plugin is there: it takes this one)
    run().assert_outcomes(passed=1)


def test_a_race_yaml_file_is_always_a_scenario(pytester, run):
    _files(pytester, **{"good.race.yaml": GOOD, "other.yaml": WRONG})
    result = run()
    result.assert_outcomes(passed=1)


def test_the_ini_option_lists_globs(pytester, run):
    _files(pytester, **{"scenarios/good.yaml": GOOD, "elsewhere/wrong.yaml": WRONG, "notes.yaml": "just: yaml\n",
                        "pytest.ini": "[pytest]\nracecheck_scenarios =\n    scenarios/*.yaml\n    notes.yaml\n"})
    result = run()
    # notes.yaml is named, so it is a scenario: one that does not load fails, naming the file
    result.assert_outcomes(passed=1, failed=1)
    assert "notes.yaml:1: just: unknown key" in result.stdout.str()


def test_the_ini_option_true_takes_every_scenario(pytester, run):
    _files(pytester, **{"a/good.yaml": GOOD, "b/wrong.yaml": WRONG, "notes.yaml": "just: yaml\n",
                        "pytest.ini": "[pytest]\nracecheck_scenarios = true\n"})
    run().assert_outcomes(passed=1, failed=1)


def test_on_the_command_line_it_takes_every_scenario(pytester, run):
    _files(pytester, **{"good.yaml": GOOD, "bad.yaml": WRONG, "notes.yaml": "just: yaml\n"})
    result = run("-p", "racecheck.pytest_plugin", installed=False)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "expected clean, got violation of no_freed_block_mapped" in out
    assert "vm_insert_mixed" in out  # the counterexample
    trace = Path("traces/wrongly_expected.json")
    assert f"racecheck view {trace}" in out and (pytester.path / trace).is_file()
    view = CliRunner().invoke(main, ["view", str(pytester.path / trace), "-o", str(pytester.path / "v.html")])
    assert view.exit_code == 0, view.output


BROKEN = """\
from types import SimpleNamespace
from racecheck import Program

def init(rt):
    return SimpleNamespace(x=rt.var("x", 0))

def t(st):
    yield "x = 1 / x"
    st.x.set(1 // st.x.get())

def build(params):
    return Program("broken", init, [("t", t)])
"""


def test_a_model_error_saves_a_trace_the_viewer_opens(pytester, run):
    _files(pytester, **{"broken.py": BROKEN, "broken.race.yaml": "name: broken\nmodel: ./broken.py\n"
                        "invariants: [assertion]\nexpect: {verdict: clean}\n"})
    result = run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "got error" in out and "ZeroDivisionError" in out
    assert "racecheck view traces/broken.json" in out
    view = CliRunner().invoke(main, ["view", str(pytester.path / "traces/broken.json"),
                                     "-o", str(pytester.path / "b.html")])
    assert view.exit_code == 0, view.output
    assert "ZeroDivisionError" in (pytester.path / "b.html").read_text()


def test_the_entry_point_is_the_module_by_its_own_name():
    # -p racecheck.pytest_plugin and the installed entry point must be one
    # plugin under one name, or pytest would refuse to register it twice
    with open(ROOT / "pyproject.toml", "rb") as f:
        points = tomllib.load(f)["project"]["entry-points"]["pytest11"]
    assert points == {"racecheck.pytest_plugin": "racecheck.pytest_plugin"}
