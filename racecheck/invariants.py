"""Invariants: what must hold, and when it is checked.

An invariant is an object with up to three hooks, each returning ``None`` when
the invariant holds or a message (in the model's terms) when it breaks:

* ``after_step(state, execution)`` — after every step (a state predicate);
* ``on_return(state, execution, entry)`` — when an operation returns; ``entry``
  is the ghost-history record ``{"op", "args", "result", "thread", "clock"}``;
* ``at_end(state, execution)`` — on the final state of an execution;
* ``watches(state)`` — the shared objects the first two hooks read (default:
  all of them); the reduction needs it to stay sound for these checks;
* ``reads_history`` — whether those two hooks read the operations (the
  history) beyond ``entry`` (default True); bfs's transition cache keys what
  they said on it;
* ``across(state, execution)`` — after every execution that ran to its end,
  for checks over all executions explored so far (lock order);
* ``gather()`` — a fresh record of what the check gathers over one search
  (lock order's graph, crash consistency's counts): each search makes its
  own, keeps it, and hands it to the hooks as ``execution.gathered(self)``.
  An invariant object is what a scenario selects, configuration only: the
  searches never change it.

Scenarios select invariants by name from :data:`REGISTRY`; a model file may
register its own with :func:`register`. This module holds the protocol and
the invariants of any model (deadlock freedom, ``bug_on``, ``check()``);
lock_order is in lockorder.py, and the filesystem invariants are the kernel
library's (racecheck/models/invariants.py, racecheck/models/crash.py): each
registers itself when its module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # annotations only
    from .execution import Execution

# A hook: (state, execution) -> None when the invariant holds, else a message.
Hook = Callable[[Any, "Execution"], "str | None"]


class Invariant:
    name: str = "invariant"
    description: str = ""
    after_step: Hook | None = None
    on_return: Callable[[Any, Execution, dict], str | None] | None = None
    at_end: Hook | None = None
    across: Hook | None = None
    # Whether a violation can be decided by two racing steps, which a trace
    # then looks for (lock_order is about all executions, not one pair).
    racing_pair = True
    # Whether after_step or on_return read the operations (the ghost
    # history) beyond the entry on_return is given: bfs's transition cache
    # then keys their verdicts on the whole history. False only for checks
    # that read their watches() and the entry alone.
    reads_history = True
    # Whether after_step may skip work by looking at the step rather than
    # the state (crash_consistent's steps that change nothing durable): it
    # must not when the execution says ``verdicts_by_state`` (bfs keys
    # verdicts on states).
    step_pruning = False

    def gather(self) -> Any:
        """A fresh record of what this check gathers over one search, or
        None for a check that gathers nothing (see the module docstring)."""
        return None

    def watches(self, state: Any) -> list | None:
        """The runtime objects ``after_step`` and ``on_return`` read, or None
        for "anything". Steps that write them are never reordered with each
        other by the reduction, so that every interleaving the checks could
        tell apart is explored; a narrower list keeps more reduction."""
        return None

    def __repr__(self):
        return f"<invariant {self.name}>"


REGISTRY: dict[str, type[Invariant]] = {}

InvariantClass = TypeVar("InvariantClass", bound=type[Invariant])


def register(cls: InvariantClass) -> InvariantClass:
    """Class decorator: make an invariant selectable by its name."""
    REGISTRY[cls.name] = cls
    return cls


def library() -> dict:
    """The registered invariants racecheck itself defines, by name: what
    ``racecheck list`` and the scenario schema show. A user's model that
    registers its own (examples/) adds them to the same registry in the
    process that loads it, and they stay there."""
    return {n: c for n, c in REGISTRY.items() if c.__module__.partition(".")[0] == "racecheck"}


def select(names: list[str]) -> list[Invariant]:
    """Instances of the named invariants (unknown names raise KeyError)."""
    return [REGISTRY[n]() for n in names]


@register
class DeadlockFree(Invariant):
    """Checked by the scheduler itself: it is the one that sees every thread."""

    name = "deadlock_free"
    description = "no state where every unfinished thread waits on another"


@register
class BugOn(Invariant):
    """Raised by ``bug_on()`` inside a model: always checked."""

    name = "bug_on"
    description = "no BUG_ON in the model fires"


@register
class Assertion(Invariant):
    """Raised by ``check()`` inside a model: always checked."""

    name = "assertion"
    description = "every check() in the model holds"


class FinalState(Invariant):
    """An end-of-execution predicate given as a function (for small models)."""

    def __init__(self, name: str, predicate: Callable[[Any], object],
                 message: str | Callable[[Any], str]):
        self.name = name
        self.predicate = predicate
        self.message = message

    def at_end(self, state, execution):
        if not self.predicate(state):
            return self.message(state) if callable(self.message) else self.message
        return None


class Always(Invariant):
    """A state predicate checked after every step, given as a function."""

    def __init__(self, name: str, predicate: Callable[[Any], object],
                 message: str | Callable[[Any], str]):
        self.name = name
        self.predicate = predicate
        self.message = message

    def after_step(self, state, execution):
        if not self.predicate(state):
            return self.message(state) if callable(self.message) else self.message
        return None
