"""``racecheck check --junit``: the results (racecheck/checkrun.py) as JUnit
XML, written through junitparser (imported only when JUnit is asked for: it
loads the xml package, which a run does not need).

Every scenario is a JUnit test case: a mismatch is a ``failure`` with the
counterexample as text, a model that raised (or a file that does not load)
an ``error`` with its traceback or message, an interrupted scenario
``skipped``.
"""

from __future__ import annotations

from junitparser import Attr, Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from .checkrun import BAD_FILE, ERROR, FAILED, SKIPPED


class ScenarioCase(TestCase):
    """A JUnit test case with the scenario file and its expect line, as
    pytest and most CI systems' readers take them."""

    file = Attr()
    line = Attr()


def junit(results):
    """The results as a ``testsuites`` document of one suite, ``racecheck``."""
    suite = TestSuite("racecheck")
    for res in results:
        case = ScenarioCase(res.name, classname="racecheck", time=round(res.elapsed_s, 3))
        case.file = res.path
        if res.line is not None:
            case.line = str(res.line)
        outcome = _junit_outcome(res)
        if outcome is not None:
            case.result = [outcome]
        suite.add_testcase(case)
    suite.update_statistics()
    doc = JUnitXml("racecheck")
    doc.add_testsuite(suite)
    doc.update_statistics()
    return doc


def _junit_outcome(res):
    if res.status == FAILED:
        out = Failure(res.message, "mismatch")
    elif res.status == ERROR:
        out = Error(res.message, "model error")
    elif res.status == BAD_FILE:
        out = Error(res.message, "bad scenario file")
    elif res.status == SKIPPED:
        out = Skipped(res.message)
    else:
        return None
    out.text = res.detail or res.message
    return out


def write_junit(path, results):
    junit(results).write(str(path), pretty=True)
