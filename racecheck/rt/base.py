"""What every primitive shares: the errors a model raises, the base classes of
shared objects and of blocking requests, and the engine's synthetic objects."""

from __future__ import annotations

ACQUIRE, RELEASE = "acquire", "release"


class Violation(Exception):
    """An invariant broke. Raised inside a step; stops the execution."""

    in_step = False  # raised by the model's own code (bug_on, check), not by a check after it
    also = ()  # other invariants the same step broke (execution.Execution.step)

    def __init__(self, invariant: str, message: str):
        super().__init__(f"{invariant}: {message}")
        self.invariant = invariant
        self.message = message


class ModelError(Exception):
    """The model itself is wrong (an exception, unlock of an unheld lock...)."""


def bug_on(condition: object, message: str = "BUG_ON") -> None:
    """The kernel's BUG_ON: a true condition is a violation of ``bug_on``."""
    if condition:
        raise Violation("bug_on", message)


def check(condition: object, message: str, invariant: str = "assertion") -> None:
    """An assertion in the model: a false condition is a violation."""
    if not condition:
        raise Violation(invariant, message)


class Primitive:
    """A shared object of the runtime. Each kind owns:

    * its footprint: every access adds the keys it reads to ``rt.reads`` and
      those it writes to ``rt.writes`` (and, when ``rt.tracing``, what it
      changed to ``rt.changes``, values as :meth:`shown` gives them);
    * :meth:`fingerprint_value`: its value in a bfs state;
    * :meth:`saved_form`: how a trace's initial state saves it;
    * :meth:`shown`: its state as traces, ``racecheck show`` and the viewer
      show it (plain data: a lock's holders by thread id, not text);
    * :meth:`snapshot`: its value by name, for final-state checks.
    """

    __slots__ = ()
    kind = None  # its kind in a trace's ``objects``; None: traces leave it out

    def snapshot(self):
        return {}

    def fingerprint_value(self, value):
        """Its value in a state's fingerprint; ``value`` fingerprints a plain
        value (:meth:`racecheck.fingerprint.Fingerprinter.value`). By default
        what :meth:`snapshot` shows, sorted (a map's order of insertion does
        not count)."""
        return value(tuple(sorted(self.snapshot().items())))

    def shown(self):
        """Its state as traces show it."""
        return None

    def saved_form(self):
        """``(description, entries)`` for a trace's initial state:
        ``description`` goes to the trace's ``objects`` (``{"kind": ...}``),
        ``entries`` maps each entry's name, spelt as step changes spell it
        (``dev[3]``, ``pte.shared[1]``), to its value; None when traces leave
        the object out (steps do not record its changes)."""
        if self.kind is None:
            return None
        return {"kind": self.kind}, {self.name: self.shown()}


class Synthetic(Primitive):
    """An object of the engine's own (the ghost history, what invariants
    watch): it orders steps, it holds no value."""

    __slots__ = ()

    def fingerprint_value(self, value):
        return None


class Request:
    """Something a thread yields that may leave it disabled."""

    label = None

    def enabled(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def grant(self, rt, tid):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def footprint(self, rt):
        """(reads, writes) of the step that would take this request."""
        return set(), {self.lock_key()}

    def exclusive(self):
        """The exclusive lock the step taking this request acquires, as in
        an event's ``locks``; () for shared or no lock."""
        return ()

    def lock_key(self):  # pragma: no cover - interface
        raise NotImplementedError

    def waits_for(self):
        """The lock a thread disabled on this request waits for (its
        ``name`` and ``holders()``), or None for a condition."""
        return None
