"""Invariants: what must hold, and when it is checked.

An invariant is an object with up to three hooks, each returning ``None`` when
the invariant holds or a message (in the model's terms) when it breaks:

* ``after_step(state, execution)`` — after every step (a state predicate);
* ``on_return(state, execution, entry)`` — when an operation returns; ``entry``
  is the ghost-history record ``{"op", "args", "result", "thread", "clock"}``;
* ``at_end(state, execution)`` — on the final state of an execution.

Checks across executions (lock order) keep their own data between executions
and are run by the scheduler through ``across``.

Scenarios select invariants by name from :data:`REGISTRY`; a model file may
register its own with :func:`register`.
"""

from __future__ import annotations


class Invariant:
    name = "invariant"
    description = ""
    after_step = None
    on_return = None
    at_end = None

    def __repr__(self):
        return f"<invariant {self.name}>"


REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: make an invariant selectable by its name."""
    REGISTRY[cls.name] = cls
    return cls


def select(names):
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

    def __init__(self, name, predicate, message):
        self.name = name
        self.predicate = predicate
        self.message = message

    def at_end(self, state, execution):
        if not self.predicate(state):
            return self.message(state) if callable(self.message) else self.message
        return None


class Always(Invariant):
    """A state predicate checked after every step, given as a function."""

    def __init__(self, name, predicate, message):
        self.name = name
        self.predicate = predicate
        self.message = message

    def after_step(self, state, execution):
        if not self.predicate(state):
            return self.message(state) if callable(self.message) else self.message
        return None


# -- the filesystem invariants of RACES.md ------------------------------------
#
# They read the model's objects through ``.value`` / ``.values`` / ``.items``,
# never ``get()``: a check must not add to the step's footprint.


def _returned(execution, op):
    return [h for h in execution.rt.history if h["kind"] == "return" and h["op"] == op]


@register
class NoFreedBlockMapped(Invariant):
    name = "no_freed_block_mapped"
    description = "no user mapping, and no I/O in flight, points at a block that has been freed"

    def after_step(self, fs, execution):
        owner = fs.owner.values
        for vma, ptes in fs.ptes.items():
            for pgoff, (kind, where) in ptes.items.items():
                if kind == "block" and owner[where] != pgoff * fs.geo.page_size // fs.geo.block_size:
                    return (f"the {vma} mapping maps page {pgoff} to device block {where}, "
                            f"which is no longer the file's (now: {owner[where]})")
        for thread, pblk in fs.ghost.in_flight.items():
            if not isinstance(owner[pblk], int):
                name = execution.threads[thread].name
                return (f"{name} has I/O in flight to device block {pblk}, "
                        f"which has been freed (now: {owner[pblk]})")
        return None


@register
class NoMappingBeyondEof(Invariant):
    name = "no_mapping_beyond_eof"
    description = "once a truncate has returned, no user mapping maps a page at or beyond EOF"

    def after_step(self, fs, execution):
        if not _returned(execution, "truncate"):
            return None
        eof_pages = fs.pages(fs.i_size.value)
        for vma, ptes in fs.ptes.items():
            for pgoff in ptes.items:
                if pgoff >= eof_pages:
                    return (f"truncate has returned and i_size is {fs.i_size.value}, "
                            f"but the {vma} mapping still maps page {pgoff}")
        return None
