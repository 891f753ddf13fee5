"""Counterexample traces: the saved form of a violation, and reading it back.

A trace is JSON. It names the scenario (path, name, digest of its text) and
the model code (a digest), and holds the schedule as thread names, one per
step, with what every step did. Replaying needs only the scenario and the
schedule; the rest is for reading.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__

FORMAT = "racecheck-trace"
FORMAT_VERSION = 1


class TraceError(Exception):
    """The file is not a trace racecheck can use."""


def build(scenario, cex, replayed, reduction):
    """The trace document for counterexample ``cex`` of ``scenario``."""
    names = [t.name for t in replayed.execution.threads]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "racecheck_version": __version__,
        "scenario": {"name": scenario.name, "path": str(scenario.path),
                     "digest": scenario.digest},
        "models_digest": scenario.models_digest,
        "fixes": list(scenario.fixes),
        "threads": names,
        "invariant": cex.invariant,
        "message": cex.message,
        "preemptions": cex.preemptions,
        "schedule": [names[t] for t in cex.schedule],
        "steps": [_step(n, r) for n, r in enumerate(replayed.records, 1)],
        "reduction": reduction,
    }


def _step(n, record):
    out = {"step": n}
    out.update({k: record[k] for k in ("thread", "op", "label", "function", "line",
                                       "stack", "reads", "writes", "changes", "finished")})
    return out


def save(doc, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load(path):
    """Read a trace file; :class:`TraceError` says what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the file: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}:{exc.lineno}: not a racecheck trace (not JSON: {exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TraceError(f"{path}: not a racecheck trace (no \"format\": \"{FORMAT}\" key)")
    if doc.get("format_version") != FORMAT_VERSION:
        raise TraceError(f"{path}: trace format version {doc.get('format_version')!r}; "
                         f"this racecheck reads version {FORMAT_VERSION}")
    for key in ("scenario", "schedule", "threads", "invariant"):
        if key not in doc:
            raise TraceError(f"{path}: {key}: missing from the trace")
    if not isinstance(doc["schedule"], list) or not all(isinstance(s, str) for s in doc["schedule"]):
        raise TraceError(f"{path}: schedule: must be a list of thread names")
    return doc


def scenario_path(doc, trace_path):
    """Where the trace's scenario is: as saved, else relative to the trace."""
    saved = Path(doc["scenario"]["path"])
    if saved.is_absolute() or saved.exists():
        return saved
    beside = Path(trace_path).parent / saved
    return beside if beside.exists() else saved


def schedule_ids(doc, thread_names):
    """The schedule as thread ids of the current model, or TraceError."""
    index = {name: i for i, name in enumerate(thread_names)}
    out = []
    for n, name in enumerate(doc["schedule"], 1):
        if name not in index:
            raise TraceError(f"step {n}: the scenario has no thread named {name!r} "
                             f"(threads: {', '.join(thread_names)})")
        out.append(index[name])
    return out
