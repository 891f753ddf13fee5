"""pytest plugin: scenario files are test items (``pytest scenarios/``).

A YAML file is collected when it looks like a racecheck scenario: top-level
``name``, ``threads`` or ``model``, and ``expect`` keys. Each becomes one item
that passes when the scenario's verdict matches its ``expect``; a failing item
shows the counterexample.
"""

from __future__ import annotations

import re

import pytest

_SCENARIO = (re.compile(r"^name:", re.M), re.compile(r"^(threads|model):", re.M),
             re.compile(r"^expect:", re.M))


def pytest_collect_file(parent, file_path):
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        text = file_path.read_text()
    except OSError:
        return None
    if all(p.search(text) for p in _SCENARIO):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        name = self.path.stem
        m = re.search(r"^name:\s*(\S+)", self.path.read_text(), re.M)
        if m:
            name = m.group(1)
        yield ScenarioItem.from_parent(self, name=name)


class ScenarioMismatch(Exception):
    pass


class ScenarioItem(pytest.Item):
    def runtest(self):
        from .checkrun import matches
        from .report import format_trace
        from .runner import check
        from .scenario import ScenarioError, load

        try:
            sc = load(self.path)
        except ScenarioError as exc:
            raise ScenarioMismatch(str(exc)) from None
        if sc.expect is None:
            raise ScenarioMismatch(f"{self.path}: expect: missing")
        from .execution import BadModel

        try:
            rep = check(sc, save_trace=False)
        except BadModel as exc:
            raise ScenarioMismatch(f"{self.path}: {exc}") from None
        s = rep.outcome.stats
        self.user_properties.append(("executions", s.executions))
        self.user_properties.append(("verdict", rep.verdict))
        if not matches(sc.expect, rep):
            v = rep.outcome.violation
            got = rep.verdict + (f" of {v.invariant}" if v else "")
            lines = [f"expected {sc.expect['verdict']}"
                     + (f" of {sc.expect['invariant']}" if sc.expect["invariant"] else "")
                     + f", got {got} after {s.executions} executions"]
            if rep.outcome.reason:
                lines.append(f"({rep.outcome.reason})")
            if rep.trace:
                lines += ["", format_trace(rep.trace)]
            if rep.outcome.error:
                lines += ["", rep.outcome.error["traceback"]]
            raise ScenarioMismatch("\n".join(lines))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioMismatch):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario {self.name}"
