"""Helpers the model tests share: a scenario's minimised counterexample, and
one small language for finding steps in it.

A step is a dict of the saved trace (``thread``, ``op``, ``function``,
``label``, ``changes``...). ``find(steps, start, **want)`` returns the index of
the first step at or after ``start`` that matches every field given:

* ``thread``, ``op``, ``function``: equal;
* ``label``: a substring of the step's label; ``label_start``: its start;
* ``change``: ``(prefix, new)`` (the step changed an object whose name starts
  with ``prefix`` to ``new``; ``new`` may be left out for any value), or a
  predicate on one ``(name, old, new)`` change;
* ``where``: a predicate on the whole step.

``in_order(steps, want, want, ...)`` finds each want (a dict of those
fields) after the one before and returns their indexes.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

# pytester runs pytest inside a test (tests/test_pytest_plugin.py)
pytest_plugins = ["pytester"]

ANY = object()


def ctrl_c_as_in_a_terminal():
    """A subprocess's preexec_fn: SIGINT back to its default, so that the
    child takes Ctrl-C as a command run from a terminal does, even when the
    test run was started with SIGINT ignored (a shell's background job),
    which a child would otherwise inherit and Python then keep."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def counterexample(name, **model_overrides):
    """The report of scenario ``name`` run as the corpus runs it, with
    attributes of its model overridden (``fixes=[...]``); it must violate."""
    from racecheck.runner import check
    from racecheck.scenario import load

    sc = load(SCENARIOS / f"{name}.yaml")
    for key, value in model_overrides.items():
        setattr(sc.model, key, value)
    rep = check(sc, save_trace=False)
    assert rep.verdict == "violation", rep.outcome.reason
    return rep


def changed(step, prefix, new=ANY):
    """True if the step changed an object whose name starts with ``prefix``
    (to ``new``, when given)."""
    return any(name.startswith(prefix) and (new is ANY or after == new)
               for name, _, after in step.get("changes", []))


def _matches(step, want):
    for key, value in want.items():
        if key == "label":
            ok = value in (step["label"] or "")
        elif key == "label_start":
            ok = (step["label"] or "").startswith(value)
        elif key == "change":
            ok = (any(value(c) for c in step.get("changes", [])) if callable(value)
                  else changed(step, *value))
        elif key == "where":
            ok = value(step)
        else:
            ok = step[key] == value
        if not ok:
            return False
    return True


def find(steps, start=0, **want):
    """Index of the first step at or after ``start`` matching ``want``."""
    for i in range(start, len(steps)):
        if _matches(steps[i], want):
            return i
    raise AssertionError(f"no step {want} at or after step {start + 1}:\n" +
                         "\n".join(f"  {j + 1}: {s['thread']} {s.get('function')} {s['label']}"
                                   for j, s in enumerate(steps)))


def in_order(steps, *wanted):
    """Find each want after the previous one; their indexes."""
    at, found = 0, []
    for want in wanted:
        at = find(steps, at, **want)
        found.append(at)
        at += 1
    return found
