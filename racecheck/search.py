"""The search protocol every strategy follows.

A :class:`Search` owns a run: it resets the model's invariants, arms the
wall-clock limit (timelimit.py), stops at ``max_executions`` and at the time
limit, turns Ctrl-C into ``interrupted``, measures the elapsed time and
builds the :class:`Outcome`. A strategy (scheduler.Explorer for dfs,
strategies.BreadthFirst for bfs, strategies.RandomSearch for random and pct,
symbolic.ClassSearch for the parameter classes of a symbolic scenario)
implements one step of the loop and what it adds to the bounds.

Verdicts are :class:`Verdict` members and a search that stopped short gives
a :class:`Reason`: a kind (:class:`Stop`) that code decides by, and the text
for people. Both are strings, so that JSON output and comparisons with
``"clean"`` or a reason's text work as they did with plain strings.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from enum import Enum

from .timelimit import TimeLimit, time_limit


class Verdict(str, Enum):
    clean = "clean"
    violation = "violation"
    incomplete = "incomplete"
    error = "error"

    __hash__ = str.__hash__
    __format__ = str.__format__

    def __str__(self):
        return self.value


class Stop(Enum):
    """Why a search ended before it had explored everything."""

    max_executions = "max_executions"  # --max-executions
    time_limit = "time_limit"  # --timeout
    interrupted = "interrupted"  # Ctrl-C
    bound_cut = "bound_cut"  # choices a preemption or depth bound cut
    step_bound = "step_bound"  # a thread ran past --max-steps
    max_states = "max_states"  # bfs: distinct states
    max_memory = "max_memory"  # bfs: resident memory
    sampled = "sampled"  # random and pct: every execution asked for ran, nothing found
    solver = "solver"  # symbolic: z3 could not tell whether values are left


# Reasons that spend the budget of a whole run: a search of one symbolic class
# that stops for one of them stops the run.
BUDGET = frozenset({Stop.max_executions, Stop.time_limit, Stop.interrupted})


class Reason(str):
    """Why a search is incomplete: ``kind`` (a :class:`Stop`) and the text
    for people, which is the string itself."""

    __slots__ = ("kind",)

    def __new__(cls, kind, text):
        self = super().__new__(cls, text)
        self.kind = kind
        return self

    def __reduce__(self):
        return (Reason, (self.kind, str(self)))

    def __repr__(self):
        return f"Reason({self.kind.name}, {str.__repr__(self)})"

    def but(self, text):
        """The same kind with other words."""
        return Reason(self.kind, text)

    @classmethod
    def max_executions(cls, n):
        return cls(Stop.max_executions, f"stopped at --max-executions {n}")

    @classmethod
    def time_limit(cls, seconds):
        return cls(Stop.time_limit, f"stopped at the time limit ({seconds:g} s)")

    @classmethod
    def interrupted(cls):
        return cls(Stop.interrupted, "interrupted")


def kind_of(reason):
    """The :class:`Stop` of ``reason`` (None for no reason or plain text)."""
    return getattr(reason, "kind", None)


@dataclass
class Bounds:
    max_preemptions: int | None = None
    max_steps: int = 10_000  # per thread
    max_executions: int | None = None
    timeout: float | None = None  # seconds
    max_depth: int | None = None  # steps per execution (used by minimisation)
    max_states: int | None = None  # bfs: distinct states (None: strategies.MAX_STATES)
    max_memory: int | None = None  # bfs: bytes of resident memory (None: strategies.MAX_MEMORY)


@dataclass
class Stats:
    executions: int = 0  # executions explored to an end (finished, deadlock, violation)
    blocked: int = 0  # executions cut short as redundant by sleep sets
    steps: int = 0  # steps run, replayed prefixes included
    max_depth: int = 0
    pruned: int = 0  # choices a bound cut
    probes: int = 0  # dpor: reversed steps run to learn what they do in their new place
    elapsed_s: float = 0.0

    def as_dict(self):
        return {"executions": self.executions, "blocked": self.blocked, "steps": self.steps,
                "max_depth": self.max_depth, "pruned": self.pruned, "probes": self.probes,
                "elapsed_s": round(self.elapsed_s, 3)}


@dataclass
class Counterexample:
    schedule: list  # thread ids, one per step
    invariant: str
    message: str
    preemptions: int


@dataclass
class Outcome:
    verdict: Verdict  # clean | violation | incomplete | error
    stats: Stats
    violation: Counterexample | None = None
    reason: Reason | None = None  # why incomplete
    error: dict | None = None  # the model raised: error_record()
    checks: dict | None = None  # what the checks counted (gather().stats(): crash states)
    # invariant name -> what it gathered, for the records that can merge
    # (gather().merge): a search split into parts counts them as one (Checks)
    gathered: dict | None = None

    def __post_init__(self):
        self.verdict = Verdict(self.verdict)


def error_record(thread, exception, traceback, schedule):
    """What the JSON output and the trace say about a model that raised."""
    return {"thread": thread, "exception": exception, "traceback": traceback,
            "schedule": list(schedule)}


def failure_record(failure, schedule):
    """The error record of a ModelFailure (execution.py) after ``schedule``."""
    return error_record(failure.thread, f"{type(failure.exc).__name__}: {failure.exc}",
                        failure.where, schedule)


class Halt(Exception):
    """Raised by a strategy anywhere in its step: the search is over (a
    violation, an error or a bound already recorded on the search)."""


class Search:
    """One run of a strategy. Subclasses implement :meth:`advance` (one step
    of the loop: an execution, a state's successors, a parameter class;
    False when the search is over) and may implement :meth:`begin`,
    :meth:`proceed` (after the step's progress report: False when nothing is
    left), :meth:`limit` (their own bounds beside executions and time),
    :meth:`depth` and :meth:`finish`.

    ``should_stop(search)`` is polled after every step; a :class:`Reason` it
    returns ends the search, incomplete for that reason (``halted`` holds it).
    ``progress(stats, depth, elapsed)`` is called after every step."""

    alarm = True  # arm SIGALRM at the time limit (off for searches that run searches)
    stats_class = Stats

    def __init__(self, model, bounds=None, progress=None, should_stop=None):
        self.model = model
        self.bounds = bounds or Bounds()
        self.progress = progress
        self.should_stop = should_stop
        self.stats = self.stats_class()
        self.found = None  # the Counterexample the outcome reports
        self.error = None  # the error record of a model that raised
        self.incomplete = None  # a Reason
        self.halted = None  # the Reason should_stop gave
        self.start = None
        self.gathered = {}  # invariant -> what it gathers over this search

    # -- the run -------------------------------------------------------------------------

    def run(self) -> Outcome:
        self.reset()
        self.start = time.monotonic()
        try:
            with time_limit(self.bounds.timeout if self.alarm else None):
                self._loop()
        except Halt:
            pass
        except KeyboardInterrupt:
            self.incomplete = Reason.interrupted()
        except TimeLimit:
            self.incomplete = Reason.time_limit(self.bounds.timeout)
        finally:
            self.stats.elapsed_s = time.monotonic() - self.start
            self.finish()
        return self.outcome()

    def _loop(self):
        self.begin()
        while True:
            reason = self.limit()
            if reason is not None:
                self.incomplete = reason
                return
            if not self.advance():
                return
            if self.should_stop is not None:
                reason = self.should_stop(self)
                if reason is not None:
                    self.incomplete = self.halted = reason
                    return
            if self.progress is not None:
                self.progress(self.stats, self.depth(), self.elapsed())
            if not self.proceed():
                return

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    # -- what a strategy implements -----------------------------------------------------------

    def reset(self) -> None:
        self.gathered = {inv: inv.gather() for inv in self.model.invariants}

    def counted(self) -> dict | None:
        """What the checks counted over this search, or None."""
        out = {}
        for record in self.gathered.values():
            if hasattr(record, "stats"):
                out.update(record.stats())
        return out or None

    def begin(self) -> None:
        pass

    def limit(self) -> Reason | None:
        """The Reason to stop before the next step, or None."""
        return self.executions_reached() or self.time_reached()

    def executions_reached(self):
        n = self.bounds.max_executions
        if n is not None and self.stats.executions >= n:
            return Reason.max_executions(n)
        return None

    def time_reached(self):
        t = self.bounds.timeout
        if t is not None and self.elapsed() > t:
            return Reason.time_limit(t)
        return None

    def advance(self) -> bool:
        raise NotImplementedError

    def proceed(self) -> bool:
        return True

    def depth(self) -> int:
        return self.stats.max_depth

    def finish(self) -> None:
        pass

    def cut(self) -> Reason | None:
        """A Reason the search is incomplete though it ran to its end (a
        bound cut choices), or None."""
        return None

    def mergeable(self) -> dict | None:
        """invariant name -> what it gathered, for records another search's
        can merge into (see :class:`Checks`), or None."""
        out = {inv.name: record for inv, record in self.gathered.items() if hasattr(record, "merge")}
        return out or None

    def outcome(self) -> Outcome:
        checks = self.counted()
        more = {"checks": checks, "gathered": self.mergeable()}
        if self.error is not None:
            return Outcome(Verdict.error, self.stats, error=self.error, **more)
        if self.found is not None:
            return Outcome(Verdict.violation, self.stats, violation=self.found, reason=self.incomplete, **more)
        if self.incomplete is None:
            self.incomplete = self.cut()
        if self.incomplete is not None:
            return Outcome(Verdict.incomplete, self.stats, reason=self.incomplete, **more)
        return Outcome(Verdict.clean, self.stats, **more)


class Checks:
    """What the checks counted over the parts of one search (work units,
    a bfs's workers), as the one search would count it. A record that can
    merge (``gather()`` gives an object with ``merge(other)``) is merged,
    so that what two parts both saw counts once (a crash state two units
    reach is one state); other counts are summed."""

    def __init__(self):
        self.summed = {}
        self.records = {}  # invariant name -> the merged record (a copy: the parts' stay theirs)

    def add(self, checks, gathered):
        """One part's ``Outcome.checks`` and ``Outcome.gathered``."""
        merged = set()
        for name, record in (gathered or {}).items():
            if name in self.records:
                self.records[name].merge(record)
            else:
                self.records[name] = copy.deepcopy(record)
            merged.update(record.stats())
        for k, v in (checks or {}).items():
            if k not in merged:
                self.summed[k] = self.summed.get(k, 0) + v if isinstance(v, (int, float)) else v

    def counted(self):
        out = dict(self.summed)
        for record in self.records.values():
            out.update(record.stats())
        return out or None
