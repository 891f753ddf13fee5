"""pytest plugin: scenario files as test items, each passing when the
scenario's verdict matches its ``expect``.

Installing racecheck registers the plugin, which collects nothing until a
project asks for it (a project's other YAML files are none of its business):

* a file named ``*.race.yaml`` (or ``*.race.yml``) is always a scenario;
* the ini option ``racecheck_scenarios`` lists globs of scenario files
  (``scenarios/*.yaml``: a glob with a ``/`` is matched against the path from
  the rootdir, one without against the file's name), or says ``true``: every
  YAML file that looks like a scenario (top-level ``name``, ``threads`` or
  ``model``, and ``expect``);
* ``-p racecheck.pytest_plugin`` on the command line (or in ``addopts``, or
  ``PYTEST_PLUGINS``) is ``racecheck_scenarios = true`` for that run.

A failing item shows the counterexample, saves its trace (traces/NAME.json,
as ``racecheck run`` does) and names the ``racecheck view`` command that
opens it.
"""

from __future__ import annotations

import fnmatch
import os
import re

import pytest

NAME = __name__  # what -p names
INI = "racecheck_scenarios"
ALWAYS = (".race.yaml", ".race.yml")

_SCENARIO = (re.compile(r"^name:", re.M), re.compile(r"^(threads|model):", re.M),
             re.compile(r"^expect:", re.M))


def pytest_addoption(parser):
    parser.addini(INI, type="linelist", default=[],
                  help="racecheck scenario files to collect: globs (scenarios/*.yaml), or true for every YAML "
                       "file that looks like a scenario; *.race.yaml files are collected anyway")


def pytest_collect_file(parent, file_path):
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if file_path.name.endswith(ALWAYS) or _wanted(parent.config, file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _named_on_the_command_line(config):
    named = list(config.getoption("plugins", None) or [])
    named += os.environ.get("PYTEST_PLUGINS", "").split(",")
    return NAME in (n.strip() for n in named)


def _wanted(config, path):
    globs = [g for g in config.getini(INI) if g]
    if _named_on_the_command_line(config) or [g.lower() for g in globs] == ["true"]:
        return _looks_like_a_scenario(path)
    if not globs:
        return False
    try:
        relative = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        relative = path.as_posix()
    return any(fnmatch.fnmatch(relative if "/" in g else path.name, g) for g in globs)


def _looks_like_a_scenario(path):
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    return all(p.search(text) for p in _SCENARIO)


class ScenarioFile(pytest.File):
    def collect(self):
        name = self.path.stem
        try:
            m = re.search(r"^name:\s*(\S+)", self.path.read_text(), re.M)
        except (OSError, UnicodeDecodeError):
            m = None  # the item says what is wrong with the file
        if m:
            name = m.group(1)
        yield ScenarioItem.from_parent(self, name=name)


class ScenarioMismatch(Exception):
    pass


class ScenarioItem(pytest.Item):
    def runtest(self):
        from .checkrun import matches
        from .execution import BadModel
        from .report import format_trace
        from .runner import check, default_trace_path
        from .scenario import ScenarioError, load
        from .trace import save

        try:
            sc = load(self.path)
        except ScenarioError as exc:
            raise ScenarioMismatch(str(exc)) from None
        if sc.expect is None:
            raise ScenarioMismatch(f"{self.path}: expect: missing")
        try:
            rep = check(sc, save_trace=False)
        except BadModel as exc:
            raise ScenarioMismatch(f"{self.path}: {exc}") from None
        s = rep.outcome.stats
        self.user_properties.append(("executions", s.executions))
        self.user_properties.append(("verdict", rep.verdict))
        if matches(sc.expect, rep):
            return
        v = rep.outcome.violation
        got = rep.verdict + (f" of {v.invariant}" if v else "")
        lines = [f"expected {sc.expect['verdict']}"
                 + (f" of {sc.expect['invariant']}" if sc.expect["invariant"] else "")
                 + f", got {got} after {s.executions:,} executions"]
        if rep.outcome.reason:
            lines.append(f"({rep.outcome.reason})")
        if rep.trace:
            lines += ["", format_trace(rep.trace)]
        if rep.outcome.error:
            lines += ["", rep.outcome.error["traceback"]]
        if rep.trace:
            path = save(rep.trace, default_trace_path(sc))
            lines += ["", f"trace saved to {path}", f"  view:   racecheck view {path}",
                      f"  replay: racecheck replay {path}"]
        raise ScenarioMismatch("\n".join(lines))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioMismatch):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario {self.name}"
