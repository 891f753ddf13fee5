"""``racecheck suggest-fix``: search lock placements that make a violating
scenario clean, each proven by a complete search.

The candidates: a lock class (each lock the scenario's models already take
that is one lock and that the threads take, and one new reader-writer lock,
``fix_lock``) taken shared
or exclusive around kernel functions the scenario's threads run, as
``add_lock`` edits (racecheck/models/edits.py). Which functions: those each
thread runs in the counterexample and when the threads run one after the
other, at most ``depth`` kernel functions deep below the operation (depth 1:
the first kernel function an operation calls). A candidate must exclude at
least two threads from each other: two of its functions run by different
threads, or one run by two, not both shared.

Candidates are tried by size (one function, two, three), and within a size
shared before exclusive. Proven ones are ranked the same way, and then by
which side reads: a placement whose shared side writes less of the shared
state (in the counterexample) than its exclusive side comes first, as a
fault takes i_mmap_sem for read and truncate for write. Each runs the scenario with the candidate's edits,
checking the scenario's invariants plus ``deadlock_free`` and
``lock_order``, with the scenario's bounds; clean and complete is a proven
fix. Once a size has a proven fix, larger sizes are not tried: the smallest
placements are the answer. A budget (time, candidates) stops the search;
what it did not reach is counted and said.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import invariants as inv
from .execution import Execution
from .models.edits import AddLock, Edits
from .models.kernel import FUNCTIONS, KernelTable, locks_of, stack_functions
from .runner import check
from .scheduler import replay

NEW_LOCK = "fix_lock"
EXTRA_CHECKS = ("deadlock_free", "lock_order")


@dataclass
class Candidate:
    lock: str
    kind: str
    placement: tuple  # ((function, shared), ...)
    # how much less the shared side writes than the exclusive side (the
    # shared side should be the readers: faults, not truncate)
    readers_write_less: int = 0

    @property
    def size(self):
        return len(self.placement)

    @property
    def exclusive(self):
        return sum(1 for _, shared in self.placement if not shared)

    def edit(self):
        return AddLock(self.lock, self.kind,
                       shared=tuple(f for f, s in self.placement if s),
                       exclusive=tuple(f for f, s in self.placement if not s))

    def describe(self):
        parts = [f"{'down_read' if s else ('mutex_lock' if self.kind == 'mutex' else 'down_write')} "
                 f"around {f}" for f, s in self.placement]
        return f"{self.lock} ({'new ' if self.lock == NEW_LOCK else ''}{self.kind}): " + "; ".join(parts)


@dataclass
class Tried:
    candidate: Candidate
    verdict: str
    invariant: str | None = None
    message: str | None = None
    schedule: list = field(default_factory=list)
    file: Path | None = None


@dataclass
class Suggestions:
    scenario: object
    depth: int
    candidates: int  # generated, of the sizes searched
    tried: list = field(default_factory=list)
    not_reached: int = 0
    stopped: str | None = None  # why the budget ended the search early
    elapsed: float = 0.0
    original: object = None  # the scenario's own report

    @property
    def proven(self):
        return sorted((t for t in self.tried if t.verdict == "clean"), key=_rank)

    @property
    def exit_status(self):
        if self.proven:
            return 0
        return 3 if self.stopped else 1


def _rank(t):
    c = t.candidate
    return (c.size, c.exclusive, -c.readers_write_less, c.lock == NEW_LOCK, c.lock, c.placement)


# -- what the threads run -----------------------------------------------------------------------


class _Recording(KernelTable):
    """The scenario's table, noting ``(thread, function, depth)`` for each call."""

    note: object = None  # a set's add (a bound method: not state the model keeps)

    def call(self, name, fs, args, kwargs):
        self.note((fs.rt.thread, name, len(stack_functions(sys._getframe(2))) + 1))
        return super().call(name, fs, args, kwargs)


def functions_run(model, schedules, max_steps, writes=None):
    """``{thread index: {function: least depth}}`` of the kernel functions the
    threads run along ``schedules`` (and then each to its end, in order).
    ``writes``, a dict, gets each function's count of shared objects written
    by the steps that run inside it along the schedules."""
    rec = _Recording(**{f.name: getattr(model.table, f.name) for f in dataclasses.fields(KernelTable)})
    seen = set()
    rec.note = seen.add
    traced = _Traced(model, rec)
    codes = {f.fn.__code__.co_name: name for name, f in FUNCTIONS.items()}
    for schedule in schedules:
        for record in replay(traced, schedule, max_steps).records:
            for fn in {codes[c] for c in record.get("stack") or () if c in codes}:
                if writes is not None:
                    writes[fn] = writes.get(fn, 0) + len(record.get("writes") or ())
    _run_in_order(traced, max_steps)
    out = {}
    for tid, name, depth in seen:
        if FUNCTIONS[name].steps:
            d = out.setdefault(tid, {})
            d[name] = min(depth, d.get(name, depth))
    return out


class _Traced:
    """``model`` running on the recording table (the rest is the model's)."""

    def __init__(self, model, table):
        self._model = model
        self.table = table

    def __getattr__(self, attr):
        return getattr(self._model, attr)

    def init(self, rt):
        fs = self._model.init(rt)
        fs.kernel = self.table
        return fs


def _run_in_order(model, max_steps):
    """Each thread to its end (or until it waits), one after the other."""
    try:
        ex = Execution(model, max_steps=max_steps)
        ex.checks = False
        for tid in range(len(ex.threads)):
            for _ in range(max_steps):
                if ex.threads[tid].finished or not ex.is_enabled(tid):
                    break
                ex.step(tid)
    except Exception:  # a model that raises or breaks an invariant alone: what ran is noted
        pass


def lock_classes(model):
    """``{lock class: kind}`` of the locks a fresh state of ``model`` has that
    are one lock each (not one per page)."""
    ex = Execution(model)
    counts, kinds = {}, {}
    for obj in ex.rt.objects:
        kind = getattr(obj, "kind", None)
        if kind in ("mutex", "rwsem"):
            cls = obj.name.split("[", 1)[0]
            counts[cls] = counts.get(cls, 0) + 1
            kinds[cls] = kind
    return {c: kinds[c] for c, n in counts.items() if n == 1}


# -- the candidates -------------------------------------------------------------------------------


def candidates(runs, locks, depth, max_size=3):
    """Every candidate placement of sizes 1..max_size, in the order they are
    tried; ``runs`` from :func:`functions_run`."""
    who = {}
    for tid, fns in runs.items():
        for fn, d in fns.items():
            if d <= depth:
                who.setdefault(fn, set()).add(tid)
    names = sorted(who)
    out = []
    for size in range(1, max_size + 1):
        sized = []
        for fns in itertools.combinations(names, size):
            for lock, kind in locks.items():
                modes = [(False,)] if kind == "mutex" else [(True, False)]
                for shared in itertools.product(*(modes * size)):
                    placement = tuple(zip(fns, shared))
                    if _excludes(placement, who):
                        sized.append(Candidate(lock, kind, placement))
        sized.sort(key=lambda c: (c.exclusive, c.lock == NEW_LOCK, c.lock, c.placement))
        out.extend(sized)
    return out


def _excludes(placement, who):
    """Whether the placement keeps two threads apart: some pair of its
    sides, not both shared, is run by two different threads."""
    for (f, fs), (g, gs) in itertools.combinations_with_replacement(placement, 2):
        if fs and gs:
            continue
        if f == g:
            if len(who[f]) >= 2:
                return True
        elif len(who[f] | who[g]) >= 2 and (who[f] != who[g] or len(who[f]) >= 2):
            return True
    return False


# -- the search -------------------------------------------------------------------------------------


def suggest(scenario, depth=2, timeout=120.0, max_candidates=1000, max_size=3, progress=None):
    """The proven placements for ``scenario`` (it must violate)."""
    start = time.monotonic()
    original = check(scenario, save_trace=False)
    out = Suggestions(scenario, depth, 0, original=original)
    if original.verdict != "violation":
        out.elapsed = time.monotonic() - start
        return out
    model = scenario.model
    max_steps = scenario.bounds.max_steps
    writes = {}
    runs = functions_run(model, [original.outcome.violation.schedule], max_steps, writes)
    taken = {lock for fns in runs.values() for fn in fns for lock in locks_of(fn, model.table)}
    locks = {lock: kind for lock, kind in lock_classes(model).items() if lock in taken}
    locks[NEW_LOCK] = "rwsem"
    todo = candidates(runs, locks, depth, max_size)
    for c in todo:
        c.readers_write_less = (sum(writes.get(f, 0) for f, s in c.placement if not s)
                                - sum(writes.get(f, 0) for f, s in c.placement if s))
    out.candidates = len(todo)
    found_size = None
    for n, cand in enumerate(todo):
        if found_size is not None and cand.size > found_size:
            out.not_reached = 0  # larger placements are not wanted once a smaller one is proven
            out.candidates = n
            break
        if n >= max_candidates or time.monotonic() - start > timeout:
            out.stopped = (f"the budget of {max_candidates} candidates" if n >= max_candidates
                           else f"the time limit of {timeout:g} s")
            # what is left of the sizes still wanted (none larger than a proven one)
            out.not_reached = sum(1 for c in todo[n:] if found_size is None or c.size <= found_size)
            break
        if progress:
            progress(n, len(todo), cand)
        tried = _try(scenario, cand)
        out.tried.append(tried)
        if tried.verdict == "clean" and found_size is None:
            found_size = cand.size
    out.elapsed = time.monotonic() - start
    return out


def with_edit(scenario, cand):
    """``scenario`` with the candidate's lock added and deadlock_free and
    lock_order checked too."""
    model = copy.copy(scenario.model)
    model.own_edits = model.own_edits.merged(Edits(add_lock=[cand.edit()]))
    have = {i.name for i in model.invariants}
    model.invariants = list(model.invariants) + inv.select([n for n in EXTRA_CHECKS if n not in have])
    return dataclasses.replace(scenario, model=model, expect={"verdict": "clean", "invariant": None})


def _try(scenario, cand):
    rep = check(with_edit(scenario, cand), save_trace=False, do_minimise=False)
    data = rep.as_json()
    names = [n for n in scenario.thread_names] or None
    schedule = list((rep.outcome.violation.schedule if rep.outcome.violation else []) or [])
    if names:
        schedule = [names[t] if isinstance(t, int) and t < len(names) else t for t in schedule]
    return Tried(cand, rep.verdict, data["invariant"], data["message"], schedule)


# -- writing the proven ones as scenarios ---------------------------------------------------------


def write_scenarios(result, out_dir):
    """Each proven placement as a scenario file ``OUT_DIR/NAME_fixN.yaml``: the
    scenario with the lock added to its edits, expected clean."""
    sc = result.scenario
    data = yaml.safe_load(Path(sc.path).read_text(encoding="utf-8"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for n, t in enumerate(result.proven, 1):
        doc = dict(data)
        name = f"{sc.name}_fix{n}"
        doc["name"] = name
        doc["description"] = (f"{sc.name} with a lock placement that racecheck suggest-fix proved clean "
                              f"(with deadlock_free and lock_order): {t.candidate.describe()}.\n")
        edits = copy.deepcopy(data.get("edits") or {})
        for r in edits.get("replace", []):  # a path relative to the scenario, now from elsewhere
            file, _, fname = str(r.get("with", "")).rpartition(":")
            if file.endswith(".py"):
                r["with"] = f"{(Path(sc.path).parent / file).resolve()}:{fname}"
        edits.setdefault("add_lock", []).append(Edits(add_lock=[t.candidate.edit()]).as_data()["add_lock"][0])
        doc["edits"] = edits
        invs = list(doc.get("invariants") or [])
        doc["invariants"] = invs + [n for n in EXTRA_CHECKS if n not in invs]
        doc["expect"] = {"verdict": "clean"}
        path = out_dir / f"{name}.yaml"
        path.write_text("# written by racecheck suggest-fix\n" + yaml.safe_dump(doc, sort_keys=False),
                        encoding="utf-8")
        t.file = path
    return [t.file for t in result.proven]
