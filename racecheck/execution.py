"""One execution of a model: threads driven step by step on a fresh runtime.

The scheduler decides which thread runs; an :class:`Execution` runs it for one
step, records the step's footprint and checks the invariants. Exploration
never copies an execution: it builds a new one and replays a schedule prefix.
"""

from __future__ import annotations

import inspect
import os
import traceback
from types import GeneratorType
from typing import Any

from .fingerprint import plain_changes, plain_digest
from .runtime import ModelError, Request, Runtime, Violation


class ModelFailure(Exception):
    """An exception raised by model code (not an invariant violation)."""

    def __init__(self, tid, thread, exc, where):
        super().__init__(f"thread {thread}: {type(exc).__name__}: {exc}")
        self.tid = tid
        self.thread = thread
        self.exc = exc
        self.where = where


class BadModel(Exception):
    """The model breaks a rule of how models are written (a thread that is
    not a generator, two threads of one name, a lock request not yielded,
    shared state kept outside runtime objects): its answers could not be
    trusted, so nothing is explored. Bad input, as a bad scenario file is."""


class StepBoundHit(Exception):
    """A thread ran more steps than the bound allows."""

    def __init__(self, thread, bound):
        super().__init__(
            f"thread {thread} ran more than {bound} steps: the model may loop "
            f"forever or never yield; raise --max-steps if the model is right")
        self.thread = thread


# What next() gives for a thread whose generator returned (no model yields it).
_DONE = object()


class Thread:
    __slots__ = ("tid", "name", "gen", "pending", "finished", "steps", "op")

    def __init__(self, tid, name, gen):
        self.tid = tid
        self.name = name
        self.gen = gen
        self.pending = None  # what the thread last yielded: label or Request
        self.finished = False
        self.steps = 0
        self.op = None  # the operation it is in (for traces)


def _innermost(gen):
    """The innermost generator frame of a ``yield from`` chain, and the chain."""
    chain = []
    g = gen
    while g is not None:
        code = getattr(g, "gi_code", None)
        if code is None:
            break
        chain.append(g)
        g = getattr(g, "gi_yieldfrom", None)
    return chain


# Generator code that stands in for its caller where a step is shown (the
# kernel library's wrapper that holds an added lock around a call): the step
# is located at the caller's line, and the wrapper is left out of the stack.
GLUE: set = set()


def location(gen):
    """(file:line, function, call stack) of where a generator is paused."""
    chain = [g for g in _innermost(gen) if g.gi_code not in GLUE]
    if not chain:
        return None, None, []
    inner = chain[-1]
    frame = inner.gi_frame
    line = frame.f_lineno if frame is not None else inner.gi_code.co_firstlineno
    path = inner.gi_code.co_filename
    stack = [g.gi_code.co_name for g in chain]
    return f"{_short(path)}:{line}", inner.gi_code.co_name, stack


def _short(path):
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


class OpRecord:
    """One operation of a thread, as the ghost history tells it."""

    __slots__ = ("thread", "seq", "op", "args", "begin", "end", "result")

    def __init__(self, thread, seq, op, args, begin):
        self.thread, self.seq, self.op, self.args, self.begin = thread, seq, op, args, begin
        self.end = None  # clock of the return, None while running
        self.result = None


class Event:
    """What a step did, as the scheduler needs it."""

    __slots__ = ("tid", "reads", "writes", "locks", "blocking")

    def __init__(self, tid, reads, writes, locks=(), blocking=False):
        self.tid = tid
        self.reads = reads
        self.writes = writes
        self.locks = locks  # (ACQUIRE | RELEASE, key) of exclusive locks, in order
        # The step began by taking a request (a lock, a wait) that another
        # thread's step can make it refuse: until it runs, its thread may
        # never run again (see Explorer._reverse, weak initials).
        self.blocking = blocking

    def conflicts(self, other):
        writes = self.writes
        if writes and not (writes.isdisjoint(other.writes) and writes.isdisjoint(other.reads)):
            return True
        return not other.writes.isdisjoint(self.reads)


class Execution:
    def __init__(self, model, tracing=False, max_steps=10_000, plain_checks=True, gathered=None,
                 verdicts_by_state=False, start=None):
        self.model = model
        # What the checks gather over the search this execution is part of
        # (Invariant.gather): the search's own record, or one of its own.
        self._gathered = {} if gathered is None else gathered
        # bfs keys the checks' verdicts on states: a check must then not
        # decide by the step (Invariant.step_pruning).
        self.verdicts_by_state = verdicts_by_state
        self.rt = Runtime(tracing)
        self.tracing = tracing
        self.max_steps = max_steps
        try:
            self.state = model.init(self.rt)
            # (a thread's start may make runtime objects too: see start)
            self.initial_objects = len(self.rt.objects)
            self.threads = [Thread(i, name, gen)
                            for i, (name, gen) in enumerate(model.threads(self.state))]
        except BadModel:
            raise
        except (Exception, SystemExit) as exc:  # the model's own bug, before any step
            raise ModelFailure(None, "(initial state)", exc, traceback.format_exc()) from None
        _check_threads(self.threads)
        # State kept outside runtime objects is looked for after every step
        # (see _check_plain), or only by plain_changed() when the caller
        # asks at the end of the execution (a search, for speed), or not at
        # all (None: dpor's probes, which only want a step's footprint).
        self.plain_checks = plain_checks
        self._plain = None if plain_checks is None else plain_digest(self.state)
        self.events = []
        self.records = []  # per-step details, when tracing
        invs = model.invariants
        self._step_checks = [i for i in invs if i.after_step is not None]
        self._return_checks = [i for i in invs if i.on_return is not None]
        self._end_checks = [i for i in invs if i.at_end is not None]
        self._across_checks = [i for i in invs if i.across is not None]
        # False while a stateful search re-runs steps it checked when they
        # first ran (strategies.py): the step and return checks are skipped.
        self.checks = True
        self._watch_all, self._watched = self._watched_objects(invs)
        self._seen_history = 0
        self.operations = []  # OpRecord per operation begun, in begin order
        self._running = {}  # (thread id, seq) -> OpRecord
        # start: the threads to run to their first yield, when only they will
        # run (dpor's probes); None, all. Leaving one unstarted changes no
        # other when starting it makes no runtime object (whose key would
        # shift the keys made after it): a start touches no shared object.
        self._prime(self.threads if start is None else [self.threads[t] for t in sorted(start)])

    def _watched_objects(self, invs):
        """Which objects the step and return checks read (None: all)."""
        watched = set()
        for inv in invs:
            if inv.after_step is None and inv.on_return is None:
                continue
            objs = inv.watches(self.state)
            if objs is None:
                return True, watched
            watched.update(o.key for o in objs)
            # Checks may also look at which operations began or returned.
            watched.add(self.rt.HISTORY)
        return False, watched

    def _mark_watched(self):
        """Make the checks' reads part of the step's footprint: a step that
        writes watched state writes WATCHED, and a step where an operation
        returns reads it (see _check_returns). Without this, two independent steps could be
        explored in one order only, and a check that would fail between them
        in the other order would never run."""
        rt = self.rt
        writes = rt.writes
        if self._watch_all:
            if writes:
                writes.add(rt.WATCHED)
        elif self._watched:
            watched = self._watched
            for k in writes:
                if (k[0] if k.__class__ is tuple else k) in watched:
                    writes.add(rt.WATCHED)
                    break

    # -- scheduling interface ----------------------------------------------

    def enabled(self) -> list[int]:
        out = []
        for t in self.threads:
            if t.finished:
                continue
            p = t.pending
            # (a label is most often a str: told apart before isinstance,
            # here and in the step's path, which run at every step)
            if p.__class__ is not str and isinstance(p, Request) and not p.enabled():
                continue
            out.append(t.tid)
        return out

    def unfinished(self) -> list[Thread]:
        return [t for t in self.threads if not t.finished]

    def is_enabled(self, tid: int) -> bool:
        t = self.threads[tid]
        if t.finished:
            return False
        p = t.pending
        return not (isinstance(p, Request) and not p.enabled())

    def step(self, tid: int) -> Event:
        """Run thread ``tid`` for one step. Returns the :class:`Event`.
        Raises :class:`Violation`, :class:`ModelFailure` or :class:`StepBoundHit`;
        the event is recorded before any of them propagates."""
        t = self.threads[tid]
        rt = self.rt
        rt.begin_step(tid)
        t.steps += 1
        if t.steps > self.max_steps:
            raise StepBoundHit(t.name, self.max_steps)
        record = self._start_record(t) if self.tracing else None
        if rt.deferred:
            for kind, data in rt.deferred.pop(tid, ()):
                rt.note(kind, **data)  # its first operation begins now
        failure = None
        found = []  # every violation this step brings, the model's own first
        blocking = t.pending.__class__ is not str and isinstance(t.pending, Request)
        label = t.pending if self.plain_checks else None  # named if the step is refused
        try:
            try:
                self._advance(t, record)
            except Violation as v:
                t.finished = True  # the exception ended the thread's generator
                v.in_step = True
                found.append(v)
            if self.plain_checks:
                self._check_plain(t, label.label if isinstance(label, Request) else label)
            # Checks run after a step whose own code failed too: what they
            # watch, and what they gather (lock_order's edges), must not
            # depend on whether another check broke first.
            if self._watch_all or self._watched:
                self._mark_watched()
            if self._seen_history < len(rt.history):
                found += self._check_returns()
            if self.checks and self._step_checks:
                found += self._check_state()
        except (BadModel, StepBoundHit):
            raise
        except (Exception, SystemExit) as exc:  # the model's own bug (ModelError among them)
            failure = ModelFailure(tid, t.name, exc, traceback.format_exc())
        event = Event(tid, rt.reads, rt.writes, tuple(rt.exclusive) if rt.exclusive else (), blocking)
        self.events.append(event)
        if record is not None:
            self._finish_record(record, t)
        if failure is not None:
            raise failure
        if found:
            first = found[0]
            first.also = found[1:]
            raise first
        return event

    def rerun(self, schedule) -> None:
        """Run the steps of ``schedule`` (thread ids), which an earlier
        execution ran the same way, when only where they lead is wanted
        (dpor's probes): as :meth:`step` with ``checks`` off, but keeping no
        Event and marking nothing watched. A violation a step's own code
        raises ends its thread and is not raised; raises
        :class:`ModelFailure` and :class:`StepBoundHit` as :meth:`step`
        does."""
        rt = self.rt
        threads, max_steps, advance = self.threads, self.max_steps, self._advance
        for tid in schedule:
            t = threads[tid]
            rt.begin_step(tid)
            t.steps += 1
            if t.steps > max_steps:
                raise StepBoundHit(t.name, max_steps)
            if rt.deferred:
                for kind, data in rt.deferred.pop(tid, ()):
                    rt.note(kind, **data)
            try:
                try:
                    advance(t, None)
                except Violation:
                    t.finished = True  # the exception ended the thread's generator
                if self._seen_history < len(rt.history):
                    self._check_returns()  # keeps the operations where step() would
            except (BadModel, StepBoundHit):
                raise
            except (Exception, SystemExit) as exc:  # the model's own bug
                raise ModelFailure(tid, t.name, exc, traceback.format_exc()) from None

    def _check_plain(self, t, label):
        """Refuse a step that changed the model's state outside runtime
        objects (a plain dict or list the threads share): no footprint
        records it, so the reduction and the transition cache would take
        steps that depend on each other for independent ones."""
        now = plain_digest(self.state)
        if now != self._plain:
            where = ", ".join(plain_changes(self._plain, now)[:3])
            raise BadModel(f"thread {t.name}, step {t.steps} ({label!r}) changed {where}, which "
                           f"is not a runtime object: keep shared state in rt.var, rt.array, "
                           f"rt.map or rt.record (what a thread keeps for itself belongs in its "
                           f"local variables)")

    def gathered(self, inv: Any) -> Any:
        """What ``inv`` gathers over the search (its Invariant.gather())."""
        try:
            return self._gathered[inv]
        except KeyError:
            record = self._gathered[inv] = inv.gather()
            return record

    def plain_changed(self) -> bool:
        """Whether the model's plain state differs from what the last check
        saw (the initial state, when steps are not checked)."""
        return plain_digest(self.state) != self._plain

    def _check_state(self):
        """The after-step checks on the current state: their violations."""
        out = []
        for inv in self._step_checks:
            msg = inv.after_step(self.state, self)
            if msg:
                out.append(Violation(inv.name, _message(msg)))
        return out

    def initial_violations(self) -> list[Violation]:
        """The after-step checks on the initial state, before any step: an
        invariant the initial state already breaks is reached by every
        schedule, the empty one first."""
        try:
            return self._check_state()
        except Exception as exc:
            raise ModelFailure(None, "(initial state)", exc, traceback.format_exc()) from None

    def _advance(self, t, record):
        """Grant ``t``'s pending request, if any, and resume ``t`` until it
        yields after touching shared state."""
        rt = self.rt
        req = t.pending
        if req.__class__ is not str and isinstance(req, Request):
            req.grant(rt, t.tid)
        history = rt.history
        seen = len(history)
        gen = t.gen
        merged = 0
        while True:
            y = next(gen, _DONE)  # (no StopIteration raised: a thread's end is common)
            if y is _DONE:
                t.finished = True
                t.pending = None
                if rt.requests:
                    _unyielded(rt, t, None)
                return
            if rt.requests:
                _unyielded(rt, t, y)
            if rt.reads or rt.writes or len(history) != seen:
                t.pending = y
                return
            if y.__class__ is str or not isinstance(y, Request):
                # Nothing shared was touched: this step commutes with every
                # other, so it is merged with the next one.
                merged += 1
                if merged > self.max_steps:
                    raise StepBoundHit(t.name, self.max_steps)
                if record is not None:
                    self._relocate(record, t, y)
                continue
            # The step touched nothing, but whether it can go on into the
            # request depends on the lock or the predicate: that is a read.
            reads, writes = y.footprint(rt)
            rt.reads |= reads | writes
            if y.enabled():
                y.grant(rt, t.tid)  # take the request now, within this step
                if record is not None:
                    self._relocate(record, t, y)
                continue
            t.pending = y
            return

    def _prime(self, threads):
        """Run the ``threads`` to their first yield, so that a thread's first
        step is the one its first ``yield`` introduces."""
        rt = self.rt
        rt.starting = True
        tracing = self.tracing
        for t in threads:
            if tracing or rt.reads or rt.writes or rt.exclusive:
                rt.begin_step(t.tid)
            else:  # nothing to clear: the footprint is still empty
                rt.thread = t.tid
            try:
                y = next(t.gen, _DONE)
            except (Exception, SystemExit) as exc:
                raise ModelFailure(t.tid, t.name, exc, traceback.format_exc()) from None
            if y is _DONE:
                t.finished = True
                if rt.requests:
                    _unyielded(rt, t, None)
                continue
            if rt.requests:
                _unyielded(rt, t, y)
            if rt.reads or rt.writes:
                touched = sorted(rt.name_of(k) for k in rt.reads | rt.writes)
                raise ModelFailure(t.tid, t.name, ModelError(
                    f"thread {t.name} touched {', '.join(touched)} before its first yield: "
                    f"begin each step with yield \"label\" (or a lock request)"), "")
            t.pending = y
        rt.starting = False
        rt.begin_step(None)

    def _check_returns(self):
        """Run the on_return checks for operations that returned in this
        step; their violations."""
        out = []
        hist = self.rt.history
        while self._seen_history < len(hist):
            entry = hist[self._seen_history]
            self._seen_history += 1
            key = (entry["thread"], entry.get("seq"))
            if entry["kind"] == "begin":
                t = self.threads[entry["thread"]]
                t.op = entry["op"]
                rec = OpRecord(t.name, entry.get("seq"), entry["op"], entry.get("args"), entry["clock"])
                self.operations.append(rec)
                self._running[key] = rec
            elif entry["kind"] == "return":
                rec = self._running.pop(key, None)
                if rec is not None:
                    rec.end = entry["clock"]
                    rec.result = entry.get("result")
                if self._return_checks:
                    self.rt.reads.add(self.rt.WATCHED)
                for inv in self._return_checks if self.checks else ():
                    msg = inv.on_return(self.state, self, entry)
                    if msg:
                        out.append(Violation(inv.name, _message(msg)))
        return out

    def check_end(self) -> None:
        """Invariants on the final state. Raises :class:`Violation`, or
        :class:`ModelFailure` when a check itself raises."""
        try:
            for inv in self._end_checks:
                msg = inv.at_end(self.state, self)
                if msg:
                    raise Violation(inv.name, _message(msg))
            for inv in self._across_checks:
                msg = inv.across(self.state, self)
                if msg:
                    raise Violation(inv.name, _message(msg))
        except Violation:
            raise
        except Exception as exc:
            raise ModelFailure(None, "(final state check)", exc, traceback.format_exc()) from None

    def final_violation(self) -> Violation | None:
        """At a state where no thread can run: the deadlock, or else the first
        end check that breaks, as a Violation; None if all hold."""
        dead = self.deadlock()
        if dead is not None:
            return dead
        try:
            self.check_end()
        except Violation as v:
            return v
        return None

    def deadlock(self) -> Violation | None:
        """A violation of ``deadlock_free`` if every unfinished thread waits."""
        waiting = [t for t in self.threads if not t.finished]
        if not waiting or self.enabled():
            return None
        parts = []
        for t in waiting:
            p = t.pending
            parts.append(f"{t.name} {p.describe() if isinstance(p, Request) else 'blocked'}")
        return Violation("deadlock_free", "every unfinished thread waits: " + "; ".join(parts))

    # -- traces --------------------------------------------------------------

    def _start_record(self, t):
        where, func, stack = location(t.gen)
        p = t.pending
        label = p.label if isinstance(p, Request) else p
        return {"thread": t.name, "tid": t.tid, "op": t.op, "label": label,
                "function": func, "line": where, "stack": stack,
                "_history": len(self.rt.history)}

    def _relocate(self, record, t, y):
        where, func, stack = location(t.gen)
        for entry in self.rt.history[record["_history"]:]:
            if entry["kind"] == "begin":  # the step's work is in the new operation
                record["op"] = entry["op"]
        record["label"] = y.label if isinstance(y, Request) else y
        record.update(function=func, line=where, stack=stack)

    def _finish_record(self, record, t):
        rt = self.rt
        del record["_history"]
        if record["op"] is None:
            record["op"] = t.op
        record["reads"] = sorted(rt.name_of(k) for k in rt.reads)
        record["writes"] = sorted(rt.name_of(k) for k in rt.writes)
        record["changes"] = [[n, plain(a), plain(b)] for n, a, b in rt.changes]
        record["finished"] = t.finished
        if record["label"] is None:
            record["label"] = "start" if t.steps == 1 else "continue"
        self.records.append(record)


def _message(msg):
    """A check's message as text, whatever it returned that is true."""
    return msg if isinstance(msg, str) else repr(msg)


def _unyielded(rt, t, y):
    """Refuse a request the step made but did not yield (``m.lock()``
    without ``yield``): the lock would silently not be taken."""
    made, rt.requests = rt.requests, []
    for request in made:
        if request is not y:
            where, _, _ = location(t.gen)
            raise BadModel(f"thread {t.name}: the request {request.label!r} was made but not "
                           f"yielded (near {where}); write `yield` before it, as in "
                           f"`yield mutex.lock()`")


def _check_threads(threads):
    if len({t.name for t in threads if t.gen.__class__ is GeneratorType}) == len(threads):
        return  # (all generators, all names apart: the common case, checked at once)
    names = set()
    for t in threads:
        if not inspect.isgenerator(t.gen):
            raise BadModel(f"thread {t.name}: its function returned {type(t.gen).__name__}, not a "
                           f"generator; a thread's body must be a generator function "
                           f"(each step begins with a yield)")
        if t.name in names:
            raise BadModel(f"two threads are named {t.name!r}: thread names must differ "
                           f"(a saved trace names its steps' threads)")
        names.add(t.name)


def runs(items):
    """A sequence in runs of equal items: ``fault x3, truncate x5, fault``
    (a schedule's thread names, a block's unit tags)."""
    out = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return ", ".join(str(x) if n == 1 else f"{x} x{n}" for x, n in out)


def plain(value):
    """A JSON-friendly form of a model value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)
