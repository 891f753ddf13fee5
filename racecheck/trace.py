"""Counterexample traces: the saved form of a violation, and reading it back.

A trace is JSON. It names the scenario (path, name, digest of its text) and
the model code (a digest), and holds the schedule as thread names, one per
step, with what every step did. Replaying needs only the scenario and the
schedule; the rest is for reading:

* ``initial``: every shared object's value before the first step (arrays and
  maps one entry per element, ``dev[3]``, ``pte.shared[1]``), and ``objects``
  their kinds, so that the state after any step is ``initial`` with the
  ``changes`` of the steps up to it applied;
* per step, ``reads``/``writes`` (the engine's synthetic objects left out),
  ``changes`` and ``waiting`` (the threads that cannot run after the step,
  and what they wait for);
* ``happens_before``: the edges between threads of the execution's
  happens-before order that no other chain of steps orders (:func:`happens_before`,
  vector clocks: racecheck/happens_before.py);
* ``race``: the two conflicting steps (1-based) that decide the violation
  (:func:`racing_pair`), and ``race_reversed_schedule``, the schedule that runs
  them the other way round without breaking any invariant; ``race_reversed``,
  that schedule replayed (:func:`reversed_run`): its steps, as far as it
  replays, and how it ends, for the viewer to draw beside the trace;
* ``final_threads``: per thread at the end, the locks it holds and what it
  waits for (:func:`final_threads`): a deadlock's wait-for graph.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import __version__
from . import invariants as inv
from .execution import Execution, ModelFailure, StepBoundHit, plain
from .happens_before import HappensBefore, conflict  # noqa: F401 (trace.conflict, as it was)
from .runtime import Request, Violation
from .scheduler import preemptions, replay

FORMAT = "racecheck-trace"
FORMAT_VERSION = 1


class TraceError(Exception):
    """The file is not a trace racecheck can use."""


# The engine's own objects: the ghost history (operation boundaries) and the
# state invariants watch. They order steps for the reduction, but they are not
# the model's state, so traces leave them out of what people read.
SYNTHETIC = frozenset({"history", "watched by invariants"})


def build(scenario, cex, replayed, reduction, params=None):
    """The trace document for counterexample ``cex`` of ``scenario``;
    ``params`` (name -> value) are the values of the scenario's ranges and
    sets the counterexample ran with (racecheck/symbolic.py)."""
    described = inv.REGISTRY.get(cex.invariant)
    return _document(scenario, cex.schedule, replayed, reduction, params,
                     verdict={"invariant": cex.invariant,
                              "invariant_description": described.description if described else "",
                              "message": cex.message, "preemptions": cex.preemptions},
                     pair=getattr(described, "racing_pair", True))


def build_error(scenario, error, replayed, reduction, params=None):
    """The trace document of a model that raised: ``error`` is the search's
    (thread, exception, traceback, schedule as thread ids), ``replayed`` the
    replay of that schedule, which ends in the same exception. The racing
    pair is the one whose reversal runs without the exception."""
    schedule = list(error["schedule"])
    return _document(scenario, schedule, replayed, reduction, params,
                     verdict={"verdict": "error", "invariant": None, "invariant_description": "",
                              "message": error["exception"],
                              "error": {"thread": str(error["thread"]), "exception": error["exception"],
                                        "traceback": error.get("traceback") or ""},
                              "preemptions": preemptions(scenario.model, schedule,
                                                         scenario.bounds.max_steps)},
                     pair=True)


def _document(scenario, schedule, replayed, reduction, params, verdict, pair):
    names = [t.name for t in replayed.execution.threads]
    model = scenario.model
    max_steps = scenario.bounds.max_steps
    steps = [_step(n, r) for n, r in enumerate(replayed.records, 1)]
    for step, waiting in zip(steps, waits(model, schedule, max_steps)):
        step["waiting"] = waiting
    initial, objects, geometry = initial_state(model)
    graph = happens_before(steps)
    race = racing_pair(model, schedule, steps, graph, max_steps) if pair else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "racecheck_version": __version__,
        "scenario": {"name": scenario.name, "path": str(scenario.path),
                     "digest": scenario.digest},
        "models_digest": scenario.models_digest,
        "fixes": list(scenario.fixes),
        **({"edits": _edits_of(model)} if _edits_of(model) else {}),
        **({"kernel": model.kernel} if getattr(model, "kernel", None) else {}),
        "threads": names,
        **verdict,
        "schedule": [names[t] for t in schedule],
        "geometry": geometry,
        "objects": objects,
        "initial": initial,
        "steps": steps,
        "happens_before": cross_thread_edges(graph, steps),
        "race": list(race[0]) if race else None,
        "race_reversed_schedule": [names[t] for t in race[1]] if race else None,
        **({"race_reversed": reversed_run(model, race[1], max_steps)} if race else {}),
        "final_threads": final_threads(model, schedule, steps, max_steps),
        "reduction": reduction,
        **({"params": dict(params)} if params is not None else {}),
    }


def _edits_of(model):
    """The edits the model runs with (its scenario's and its fixes'), as data."""
    edits = getattr(model, "edits", None)
    return edits.as_data() if edits else None


def _step(n, record):
    out = {"step": n}
    out.update({k: record[k] for k in ("thread", "op", "label", "function", "line",
                                       "stack", "changes", "finished")})
    out["reads"] = [o for o in record["reads"] if o not in SYNTHETIC]
    out["writes"] = [o for o in record["writes"] if o not in SYNTHETIC]
    return out


# -- the state before the first step ---------------------------------------------


def initial_state(model):
    """``(initial, objects, geometry)`` of a fresh execution of ``model``.

    ``initial`` maps every entry's name, spelt as the step records spell
    changes (``i_size``, ``dev[3]``, ``pte.shared[1]``, ``i_mutex``), to its
    value, and ``objects`` gives each object's kind (var, array, map, mutex,
    rwsem, seqcount) and, for arrays, its length: what each object's
    ``saved_form()`` says (racecheck/rt/). A lock's value is its state as
    data: ``{"held_by": tid}`` for a mutex, ``{"readers": [tid, ...],
    "writer": tid}`` for a reader-writer semaphore. Ghost maps (what only
    invariants read) are left out: steps do not record their changes.
    """
    ex = Execution(model)
    initial, objects = {}, {}
    for obj in ex.rt.objects:
        saved = obj.saved_form()
        if saved is None:
            continue
        description, entries = saved
        objects[obj.name] = description
        initial.update((name, plain(v)) for name, v in entries.items())
    geo = getattr(ex.state, "geo", None)
    geometry = None
    if geo is not None and hasattr(geo, "units_per_block"):
        geometry = {"block_size": geo.block_size, "unit_size": geo.unit_size,
                    "units_per_block": geo.units_per_block}
    return initial, objects, geometry


def state_at(doc, k):
    """The state after step ``k`` (0: the initial state) of trace ``doc``:
    ``initial`` with the changes of steps 1..k applied, as the viewer does.
    Every entry holds its value as the trace shows it (a lock, its state:
    ``{"held_by": tid}``, ``{"readers": [...], "writer": tid}``); a map entry
    set to None is gone."""
    kinds = {n: o["kind"] for n, o in doc["objects"].items()}
    state = dict(doc["initial"])
    for step in doc["steps"][:k]:
        for name, old, new in step["changes"]:
            base = name if name in kinds else name.rpartition("[")[0]
            if kinds.get(base) == "map" and new is None:
                state.pop(name, None)
            else:
                state[name] = new
    return state


def waits(model, schedule, max_steps=10_000):
    """Per step of ``schedule``: the threads that cannot run after it, as
    ``{"thread", "for", "held_by"}`` (the lock or condition, and its holders)."""
    ex = Execution(model, max_steps=max_steps)
    names = [t.name for t in ex.threads]
    out = []
    for tid in schedule:
        try:
            ex.step(tid)
        except (Violation, ModelFailure, StepBoundHit):
            pass
        row = []
        for t in ex.threads:
            p = t.pending
            if t.finished or not isinstance(p, Request) or p.enabled():
                continue
            lock = p.waits_for()
            if lock is not None:
                holders = [names[h] for h in lock.holders() if h is not None and h < len(names)]
                row.append({"thread": t.name, "for": lock.name, "held_by": holders})
            else:
                row.append({"thread": t.name, "for": p.label or "a condition", "held_by": []})
        out.append(row)
    return out


# -- what the viewer draws beside the steps --------------------------------------------


def final_threads(model, schedule, steps, max_steps=10_000):
    """Per thread after the last step of ``schedule``: ``{"thread", "finished",
    "holds", "waits_for"}``. ``holds`` names the locks the thread holds (a
    reader-writer semaphore read-held too); ``waits_for`` is None for a
    thread that can run or has finished, else ``{"kind": "lock", "name",
    "on"}`` with the lock's holders, or ``{"kind": "condition", "name"
    (its label), "objects" (what its predicate reads), "on"}`` with the
    threads that last wrote those objects (``steps``: the trace's steps), the
    ones whose change keeps it false. Together they are the wait-for graph of
    a deadlock."""
    ex = Execution(model, max_steps=max_steps)
    for tid in schedule:
        try:
            ex.step(tid)
        except (Violation, ModelFailure, StepBoundHit):
            break
    names = [t.name for t in ex.threads]
    holds = {name: [] for name in names}
    for obj in ex.rt.objects:
        for h in obj.holders() if hasattr(obj, "holders") else ():  # the locks
            if h is not None and 0 <= h < len(names) and obj.name not in holds[names[h]]:
                holds[names[h]].append(obj.name)
    return [{"thread": t.name, "finished": bool(t.finished), "holds": holds[t.name],
             "waits_for": _waits_for(ex, t, names, steps)} for t in ex.threads]


def _waits_for(ex, thread, names, steps):
    p = thread.pending
    if thread.finished or not isinstance(p, Request) or p.enabled():
        return None
    lock = p.waits_for()
    if lock is not None:
        on = [names[h] for h in lock.holders() if h is not None and 0 <= h < len(names)]
        return {"kind": "lock", "name": lock.name, "on": on}
    reads = sorted(ex.rt.name_of(k) for k in p.footprint(ex.rt)[0])
    reads = [o for o in reads if o not in SYNTHETIC]
    return {"kind": "condition", "name": p.label or "a condition", "objects": reads,
            "on": last_writers(steps, reads)}


def last_writers(steps, objects):
    """The threads of the last steps that wrote each of ``objects`` (a
    map's ``m['*']`` counts for all its entries), in the order of the objects."""
    out = []
    for o in objects:
        base = o.rpartition("[")[0]
        for step in reversed(steps):
            written = set(step.get("writes") or []) | {c[0] for c in step.get("changes") or []}
            if o in written or (base and f"{base}['*']" in written):
                if step["thread"] not in out:
                    out.append(step["thread"])
                break
    return out


def reversed_run(model, schedule, max_steps=10_000):
    """``schedule`` (thread ids: the racing pair's reversed schedule) replayed
    with :func:`racecheck.scheduler.replay`: ``{"schedule", "steps" (as the
    trace's, as far as the schedule replays), "outcome", "message"}``;
    outcome ``clean`` (no invariant breaks), ``violation``, ``error`` or
    ``mismatch`` (the schedule stopped fitting the model)."""
    got = replay(model, schedule, max_steps)
    names = [t.name for t in got.execution.threads] if got.execution else []
    steps = [_step(n, r) for n, r in enumerate(got.records, 1)]
    for step, waiting in zip(steps, waits(model, schedule[:len(steps)], max_steps)):
        step["waiting"] = waiting
    if got.error is not None:
        outcome, message = "error", got.error.get("exception", "")
    elif got.mismatch is not None:
        outcome, message = "mismatch", got.mismatch
    elif got.violation is not None:
        outcome, message = "violation", f"{got.violation.invariant}: {got.violation.message}"
    else:
        outcome, message = "clean", "no invariant breaks"
    return {"schedule": [names[t] for t in schedule] if names else [],
            "steps": steps, "outcome": outcome, "message": message}


# -- happens-before and the racing pair -------------------------------------------


def happens_before(steps):
    """The happens-before order of an execution's steps (1-based), by vector
    clocks: program order and every conflicting pair of steps of different
    threads, from the earlier to the later
    (:class:`racecheck.happens_before.HappensBefore`)."""
    return HappensBefore(steps)


def race_candidates(graph, steps):
    """The conflicting pairs of steps of different threads that no other
    chain of steps orders (``graph``: :func:`happens_before` of ``steps``).
    Latest first."""
    return sorted(graph.unordered_by_others(), key=lambda e: (e[1], e[0]), reverse=True)


def cross_thread_edges(graph, steps):
    return [{"from": i, "to": j, "objects": graph.edges.get((i, j), [])}
            for i, j in sorted(race_candidates(graph, steps))]


def reversed_order(schedule, graph, i, j):
    """``schedule`` (thread ids) with step ``j`` (1-based) and the steps it
    needs run before step ``i``: the steps between them that do not happen
    after ``i`` (once ``i`` and ``j`` are no longer ordered) move in front of
    it, in their order; the rest keep theirs."""
    after_i = graph.without(i, j).after(i)
    between = range(i + 1, j + 1)
    moved = [k for k in between if k not in after_i]
    stay = [k for k in between if k in after_i]
    order = list(range(1, i)) + moved + [i] + stay + list(range(j + 1, len(schedule) + 1))
    return [schedule[k - 1] for k in order]


def _run_to_end(model, order, max_steps):
    """Run the thread ids of ``order``; a thread that cannot run at its turn
    runs as soon as it can, a finished one is passed over, and the threads
    still unfinished at the end run on (the last one to run first, else the
    first enabled) until none can. Returns the schedule run, or None when it
    breaks an invariant or the model raises on the way."""
    ex = Execution(model, max_steps=max_steps)
    done, deferred = [], []
    try:
        for tid in order:
            deferred.append(tid)
            moved = True
            while moved:
                moved = False
                for k, t in enumerate(deferred):
                    if ex.threads[t].finished:
                        del deferred[k]
                        moved = True
                        break
                    if ex.is_enabled(t):
                        del deferred[k]
                        ex.step(t)
                        done.append(t)
                        moved = True
                        break
        while True:
            enabled = ex.enabled()
            if not enabled:
                break
            t = done[-1] if done and done[-1] in enabled else enabled[0]
            ex.step(t)
            done.append(t)
    except (Violation, ModelFailure, StepBoundHit):
        return None
    return done


def racing_pair(model, schedule, steps, graph=None, max_steps=10_000):
    """The two conflicting steps of different threads that decide the
    violation: of the pairs no other chain of steps orders (the race
    candidates), the latest whose reversal, run on to the end, breaks no
    invariant. ``((i, j), reversed schedule)`` with 1-based step numbers, or
    None when reversing no single pair avoids the violation."""
    graph = graph if graph is not None else happens_before(steps)
    for i, j in race_candidates(graph, steps):
        run = _run_to_end(model, reversed_order(schedule, graph, i, j), max_steps)
        if run is None:
            continue
        check = replay(model, run, max_steps)
        if check.violation is None and check.error is None and check.mismatch is None:
            return (i, j), run
    return None


def save(doc, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load(path):
    """Read a trace file and check every field racecheck reads from it;
    :class:`TraceError` says what is wrong, naming the file and the field."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the file: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not a racecheck trace (not JSON: not UTF-8 text, "
                         f"byte {exc.start} is {data[exc.start]:#04x})") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}:{exc.lineno}: not a racecheck trace (not JSON: {exc.msg})") from None
    except ValueError as exc:
        raise TraceError(f"{path}: not a racecheck trace (not JSON: {exc})") from None
    except RecursionError:
        raise TraceError(f"{path}: not a racecheck trace (not JSON: nested too deeply)") from None
    try:
        validate(doc)
    except Invalid as exc:
        where = f"{exc.field}: " if exc.field else ""
        raise TraceError(f"{path}: {where}{exc.problem}") from None
    _fill_defaults(doc)
    return doc


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _bounded_int(digits):
    if len(digits.lstrip("-")) > 100:
        raise ValueError(f"a number of {len(digits.lstrip('-'))} digits")
    return int(digits)


# -- checking a trace document ---------------------------------------------------------

KINDS = ("var", "array", "map", "mutex", "rwsem", "seqcount")
VERDICTS = ("violation", "error")
LARGE = 2 ** 31  # past any block size, unit size or array length a model has


class Invalid(Exception):
    """A field of a trace document is missing or wrong."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return f"the number {text if len(text) <= 24 else text[:10] + '...'}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "an object"


def _key(field, key):
    if isinstance(key, int):
        return f"{field}[{key}]"
    if key.isidentifier():
        return f"{field}.{key}" if field else key
    return f"{field}[{json.dumps(key)}]"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class _Check:
    """Typed reads of one object of the document, naming the field on failure."""

    def __init__(self, obj, field):
        self.obj = obj
        self.field = field

    def sub(self, key):
        return _key(self.field, key)

    def get(self, key, kind, required=True, **limits):
        field = self.sub(key)
        if key not in self.obj:
            if required:
                raise Invalid(field, "missing")
            return None
        return _typed(self.obj[key], field, kind, **limits)


def _typed(value, field, kind, nullable=False, lo=None, hi=None, among=None, nonempty=False):
    if value is None and nullable:
        return None
    if kind == "int":
        if not _is_int(value):
            raise Invalid(field, f"must be a whole number, not {_describe(value)}")
        if lo is not None and value < lo or hi is not None and value > hi:
            span = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise Invalid(field, f"must be {span}, not {_describe(value)}")
    elif kind == "str":
        if not isinstance(value, str):
            raise Invalid(field, f"must be a string, not {_describe(value)}")
        if nonempty and not value:
            raise Invalid(field, "must not be empty")
        if among is not None and value not in among:
            raise Invalid(field, f"{value[:40]!r} is not one of {', '.join(among)}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise Invalid(field, f"must be true or false, not {_describe(value)}")
    elif kind == "list":
        if not isinstance(value, list):
            raise Invalid(field, f"must be a list, not {_describe(value)}")
    elif kind == "object":
        if not isinstance(value, dict):
            raise Invalid(field, f"must be an object, not {_describe(value)}")
    elif kind == "any":
        pass
    else:  # pragma: no cover - a typo in this module
        raise AssertionError(kind)
    return value


def _names(value, field, among=None, what="thread", nullable=False):
    """A list of strings (thread names when ``among`` is given)."""
    if value is None and nullable:
        return None
    _typed(value, field, "list")
    allowed = set(among) if among is not None else None
    for i, name in enumerate(value):
        _typed(name, _key(field, i), "str")
        if allowed is not None and name not in allowed:
            raise Invalid(_key(field, i), f"{name[:40]!r} is not one of the trace's {what}s "
                                          f"({', '.join(among)})")
    return value


def validate(doc):
    """Check trace document ``doc``; :class:`Invalid` names the first field
    that is missing or wrong. Fields added since the first traces (initial,
    objects, geometry, happens_before, race, the steps' footprints and waits)
    may be missing; when present they must be right."""
    if not isinstance(doc, dict):
        raise Invalid("", f"not a racecheck trace: the file holds {_describe(doc)}, not an object")
    if doc.get("format") != FORMAT:
        got = f" (it is {_describe(doc['format'])})" if "format" in doc else ""
        raise Invalid("format", f"not a racecheck trace (no \"format\": \"{FORMAT}\" key){got}")
    top = _Check(doc, "")
    version = top.get("format_version", "any")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise Invalid("format_version", f"trace format version {_describe(version)}; "
                                        f"this racecheck reads version {FORMAT_VERSION}")
    sc = top.get("scenario", "object")
    scenario = _Check(sc, "scenario")
    scenario.get("name", "str", nonempty=True)
    where = scenario.get("path", "str", nonempty=True)
    if "\0" in where:
        raise Invalid("scenario.path", "must not hold a NUL character")
    scenario.get("digest", "str")
    for key in ("models_digest", "racecheck_version", "reduction", "invariant_description"):
        top.get(key, "str", required=False)

    threads = top.get("threads", "list")
    if not threads:
        raise Invalid("threads", "must name at least one thread")
    seen = set()
    for i, name in enumerate(threads):
        _typed(name, f"threads[{i}]", "str", nonempty=True)
        if name in seen:
            raise Invalid(f"threads[{i}]", f"{name[:40]!r} is named twice")
        seen.add(name)
    schedule = _names(top.get("schedule", "list"), "schedule", threads)

    verdict = top.get("verdict", "str", required=False, among=VERDICTS) or "violation"
    top.get("invariant", "str", nullable=verdict == "error", nonempty=True)
    top.get("message", "str")
    error = top.get("error", "object", required=verdict == "error", nullable=verdict != "error")
    if error is not None:
        if verdict != "error":
            raise Invalid("error", "only a trace of a model that raised (verdict: error) has one")
        err = _Check(error, "error")
        for key in ("thread", "exception", "traceback"):
            err.get(key, "str")
    if "fixes" in doc:
        _names(doc["fixes"], "fixes")
    top.get("params", "object", required=False, nullable=True)

    steps = top.get("steps", "list")
    for n, step in enumerate(steps):
        _step_fields(step, f"steps[{n}]", n + 1, threads)
    top.get("preemptions", "int", required=False, lo=0, hi=max(len(schedule), len(steps)))

    geometry = top.get("geometry", "object", required=False, nullable=True)
    if geometry is not None:
        geo = _Check(geometry, "geometry")
        for key in ("block_size", "unit_size", "units_per_block"):
            geo.get(key, "int", lo=1, hi=LARGE)

    initial = top.get("initial", "object", required=False)
    objects = top.get("objects", "object", required=False)
    for name, o in (objects or {}).items():
        field = _key("objects", name)
        obj = _Check(_typed(o, field, "object"), field)
        kind = obj.get("kind", "str", among=KINDS)
        if kind == "array":
            obj.get("length", "int", lo=0, hi=len(initial) if initial is not None else LARGE)

    edges = top.get("happens_before", "list", required=False, nullable=True) or []
    for n, e in enumerate(edges):
        field = f"happens_before[{n}]"
        edge = _Check(_typed(e, field, "object"), field)
        a = _step_number(edge.get("from", "any"), edge.sub("from"), len(steps))
        _step_number(edge.get("to", "any"), edge.sub("to"), len(steps), after=a)
        _names(edge.get("objects", "list"), edge.sub("objects"))

    race = top.get("race", "list", required=False, nullable=True)
    if race is not None:
        if len(race) != 2:
            raise Invalid("race", f"must be two step numbers, not {_describe(race)}")
        i = _step_number(race[0], "race[0]", len(steps))
        _step_number(race[1], "race[1]", len(steps), after=i, what="race")
    _names(doc.get("race_reversed_schedule"), "race_reversed_schedule", threads, nullable=True)
    _viewer_fields(top, threads)


OUTCOMES = ("clean", "violation", "error", "mismatch")


def _viewer_fields(top, threads):
    """``race_reversed`` and ``final_threads``: optional (traces saved
    before them lack them), right when present."""
    rev = top.get("race_reversed", "object", required=False, nullable=True)
    if rev is not None:
        run = _Check(rev, "race_reversed")
        _names(run.get("schedule", "list"), run.sub("schedule"), threads)
        for n, step in enumerate(run.get("steps", "list")):
            _step_fields(step, f"{run.sub('steps')}[{n}]", n + 1, threads)
        run.get("outcome", "str", among=OUTCOMES)
        run.get("message", "str")
    for n, t in enumerate(top.get("final_threads", "list", required=False, nullable=True) or []):
        field = f"final_threads[{n}]"
        row = _Check(_typed(t, field, "object"), field)
        row.get("thread", "str", among=threads)
        row.get("finished", "bool")
        _names(row.get("holds", "list"), row.sub("holds"))
        wait = row.get("waits_for", "object", nullable=True)
        if wait is not None:
            w = _Check(wait, row.sub("waits_for"))
            w.get("kind", "str", among=("lock", "condition"))
            w.get("name", "str")
            _names(w.get("on", "list"), w.sub("on"), threads)
            if "objects" in wait:
                _names(wait["objects"], w.sub("objects"))


def _step_number(value, field, nsteps, after=0, what=None):
    """A step number of the trace (1-based), after step ``after``."""
    _typed(value, field, "int")
    if not 1 <= value <= nsteps:
        raise Invalid(field, f"must be a step number, from 1 to {nsteps}, not {_describe(value)}"
                      if nsteps else f"names step {value}, but the trace has no steps")
    if value <= after:
        raise Invalid(what or field, f"step {value} must come after step {after}")
    return value


def _step_fields(step, field, number, threads):
    s = _Check(_typed(step, field, "object"), field)
    got = s.get("step", "int")
    if got != number:
        raise Invalid(s.sub("step"), f"is {_describe(got)}, must be {number} (steps are numbered "
                                     f"from 1 in schedule order)")
    s.get("thread", "str", among=threads)
    for key in ("op", "label", "line"):
        s.get(key, "str", nullable=True)
    s.get("function", "str", required=False, nullable=True)
    changes = s.get("changes", "list")
    for k, change in enumerate(changes):
        where = _key(s.sub("changes"), k)
        if not (isinstance(change, list) and len(change) == 3 and isinstance(change[0], str)):
            raise Invalid(where, f"must be [object name, old value, new value], not {_describe(change)}")
    s.get("finished", "bool", required=False)
    for key in ("stack", "reads", "writes"):
        if key in step:
            _names(step[key], s.sub(key))
    waiting = s.get("waiting", "list", required=False) or []
    for k, w in enumerate(waiting):
        where = _key(s.sub("waiting"), k)
        wait = _Check(_typed(w, where, "object"), where)
        wait.get("thread", "str", among=threads)
        wait.get("for", "str")
        if "held_by" in w:
            _names(w["held_by"], wait.sub("held_by"))


def _fill_defaults(doc):
    """The fields a trace saved before them lacks, as an empty value; lock
    states of older traces as data (:func:`_lock_states_as_data`)."""
    for step in doc["steps"]:
        step.setdefault("reads", [])
        step.setdefault("writes", [])
    _lock_states_as_data(doc)


_OLD_HOLDER = re.compile(r"held by thread (\d+)")
_OLD_READER = re.compile(r"([+-])reader (\d+)")


def _lock_states_as_data(doc):
    """Traces saved before lock states were data spelt a holder as text
    (``"held by thread N"``, and for a reader-writer semaphore ``"+reader N"``
    taken, ``"-reader N"`` let go): rewrite their initial values and changes
    as the states they stand for (``{"held_by": tid}``, ``{"readers": [...],
    "writer": tid}``), so that what reads a trace reads one form. A trace
    whose locks are data already is left as it is."""
    kinds = {n: o.get("kind") for n, o in (doc.get("objects") or {}).items() if isinstance(o, dict)}
    initial = doc.get("initial")
    locks = {n: k for n, k in kinds.items() if k in ("mutex", "rwsem")}
    if not locks or initial is None or any(isinstance(initial.get(n), dict) for n in locks):
        return
    held = {}  # lock -> [readers, writer]

    def take(state, text):
        if isinstance(text, str):
            m, r = _OLD_HOLDER.fullmatch(text), _OLD_READER.fullmatch(text)
            if m:
                state[1] = int(m.group(1))
            elif r and r.group(1) == "+":
                state[0].append(int(r.group(2)))
            elif r and int(r.group(2)) in state[0]:
                state[0].remove(int(r.group(2)))

    def shown(name):
        readers, writer = held[name]
        if locks[name] == "mutex":
            return {"held_by": writer}
        return {"readers": sorted(readers), "writer": writer}

    for name in locks:
        held[name] = [[], None]
        value = initial.get(name)
        for text in value if isinstance(value, list) else [value]:
            take(held[name], text)
        initial[name] = shown(name)
    for step in doc["steps"]:
        for change in step["changes"]:
            name, old, new = change
            if name not in locks:
                continue
            before = shown(name)
            if new is None and isinstance(old, str) and _OLD_HOLDER.fullmatch(old):
                held[name][1] = None  # released
            else:
                take(held[name], new)
            change[1], change[2] = before, shown(name)


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
            raise TraceError(f"schedule: step {n}: the scenario has no thread named {name!r} "
                             f"(threads: {', '.join(thread_names)})")
        out.append(index[name])
    return out


def model_thread_names(model):
    """The names of ``model``'s threads, or None when building its initial
    state raises (the replay then reports the model's error)."""
    spec = getattr(model, "threads_spec", None)
    if spec is not None:
        return [name for name, _ in spec]
    try:
        return [t.name for t in Execution(model).threads]
    except ModelFailure:
        return None
