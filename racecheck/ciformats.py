"""What ``racecheck check`` writes for code-scanning views and CI logs, from
its results (racecheck/checkrun.py): SARIF 2.1.0, and GitHub Actions workflow
commands that annotate the scenario files (JUnit XML is racecheck/junit.py).

SARIF and the annotations list only what needs a look: one
result per scenario that did not match its expect, per model error and per
file that does not load, at the ``expect`` line (or the line of the file's
error).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import invariants as inv
from .checkrun import BAD_FILE, ERROR, FAILED, SKIPPED

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

# -- SARIF --------------------------------------------------------------------------

# Rules for what is not the violation of an invariant (those are named after it).
RULES = {
    "expect-not-met": "The scenario's verdict is not the one its expect states",
    "model-error": "The model raised an exception while the scenario was explored",
    "bad-scenario-file": "The scenario file does not load",
}


def _rule(res):
    if res.status == BAD_FILE:
        return "bad-scenario-file"
    if res.status == ERROR:
        return "model-error"
    return res.invariant or "expect-not-met"


def _rule_text(rule):
    if rule in RULES:
        return RULES[rule]
    cls = inv.REGISTRY.get(rule)
    return getattr(cls, "description", None) or f"The invariant {rule} holds"


def artifact_uri(path):
    """``path`` as SARIF and GitHub want it: relative to the current
    directory (the checkout's root in CI) when it is under it."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix(), True
    except ValueError:
        return p.resolve().as_uri(), False


def _summary(res):
    """The counterexample (or the error) in a few lines."""
    lines = [f"{res.name}: {res.message}"]
    if res.schedule:
        lines.append(f"schedule: {res.schedule}")
    if res.trace_path:
        lines.append(f"trace: {res.trace_path} (racecheck view {res.trace_path})")
    return "\n".join(lines)


def _location(where, text=None):
    """A SARIF location of ``where`` (``path:line``, as a trace step's
    ``line``), with a message."""
    loc = {}
    path, _, line = (where or "").rpartition(":")
    if path and line.isdigit():
        uri, relative = artifact_uri(path)
        art = {"uri": uri, "uriBaseId": "%SRCROOT%"} if relative else {"uri": uri}
        loc["physicalLocation"] = {"artifactLocation": art, "region": {"startLine": int(line)}}
    if text:
        loc["message"] = {"text": text}
    return loc


def code_flow(trace):
    """The counterexample's steps as one SARIF code flow: a thread flow per
    thread, each step at its model source line, ``executionOrder`` giving
    the interleaving."""
    flows = {}
    for step in trace["steps"]:
        text = f"step {step['step']} ({step['thread']}): {step['label']}"
        flows.setdefault(step["thread"], []).append(
            {"location": _location(step.get("line"), text), "executionOrder": step["step"]})
    what = trace.get("invariant") or "the model raising"
    n = len(trace["steps"])
    return {"message": {"text": f"{n} step{'' if n == 1 else 's'} to {what}"},
            "threadFlows": [{"id": name, "message": {"text": f"thread {name}"}, "locations": steps}
                            for name, steps in flows.items()]}


def sarif(results, version):
    """A SARIF 2.1.0 log of one run: a result per scenario to look at."""
    listed = [r for r in results if r.status in (FAILED, ERROR, BAD_FILE)]
    rules = sorted({_rule(r) for r in listed})
    out = []
    for res in listed:
        uri, relative = artifact_uri(res.path)
        where = {"uri": uri, "uriBaseId": "%SRCROOT%"} if relative else {"uri": uri}
        loc = {"physicalLocation": {"artifactLocation": where, "region": {"startLine": res.line or 1}}}
        rule = _rule(res)
        flows = {"codeFlows": [code_flow(res.trace)]} if res.trace and res.trace.get("steps") else {}
        out.append({
            "ruleId": rule, "ruleIndex": rules.index(rule), "level": "error",
            "message": {"text": _summary(res)}, "locations": [loc],
            "properties": {"scenario": res.name, "expected": res.expected, "got": res.got,
                           "traceFile": res.trace_path},
            **flows,
        })
    driver = {"name": "racecheck", "version": version,
              "rules": [{"id": r, "shortDescription": {"text": _rule_text(r)}} for r in rules]}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": out}]}


def write_sarif(path, results):
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("racecheck")
    except PackageNotFoundError:  # run from a checkout that is not installed
        v = "0"
    Path(path).write_text(json.dumps(sarif(results, v), indent=1) + "\n")


# -- GitHub Actions -----------------------------------------------------------------


def _data(s):
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s):
    return _data(s).replace(":", "%3A").replace(",", "%2C")


def annotations_wanted(option, as_json):
    """``--annotations``: github, none, or (not given) github in a GitHub
    Actions job unless the output is --json."""
    if option is not None:
        return option == "github"
    return not as_json and os.environ.get("GITHUB_ACTIONS") == "true"


def github_annotations(results):
    """``::error`` workflow commands (``::warning`` for the skipped) on the
    files and lines of the scenarios to look at."""
    out = []
    for res in results:
        if res.status not in (FAILED, ERROR, BAD_FILE, SKIPPED):
            continue
        kind = "warning" if res.status == SKIPPED else "error"
        uri, relative = artifact_uri(res.path)
        props = f"file={_prop(uri if relative else res.path)}"
        if res.line is not None:
            props += f",line={res.line}"
        props += f",title={_prop('racecheck: ' + res.name)}"
        out.append(f"::{kind} {props}::{_data(_summary(res))}")
    return out
