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
  for checks over all executions explored so far (lock order): the invariant
  object lives for the whole search and keeps what it needs between calls;
  ``reset()`` is called when a search starts.

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
    across = None
    # Whether a violation can be decided by two racing steps, which a trace
    # then looks for (lock_order is about all executions, not one pair).
    racing_pair = True
    # Whether after_step or on_return read the operations (the ghost
    # history) beyond the entry on_return is given: bfs's transition cache
    # then keys their verdicts on the whole history. False only for checks
    # that read their watches() and the entry alone.
    reads_history = True
    # Whether after_step skips work by looking at the step rather than the
    # state (crash_consistent's steps that change nothing durable): bfs
    # sets it False for its search, since it keys verdicts on states.
    step_pruning = False

    def reset(self):
        """Forget what ``across`` gathered: a new search begins."""

    def watches(self, state):
        """The runtime objects ``after_step`` and ``on_return`` read, or None
        for "anything". Steps that write them are never reordered with each
        other by the reduction, so that every interleaving the checks could
        tell apart is explored; a narrower list keeps more reduction."""
        return None

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
# never ``get()``: a check must not add to the step's footprint. What the
# user was given and told is in the ghost history: each operation's begin and
# return (with its ReadResult or WriteResult).

# Operations after which earlier data in their range is legitimately gone.
DESTROYERS = ("truncate", "punch_hole")


def operations(execution):
    """Every operation begun so far (OpRecord: thread, seq, op, args, begin
    and end clocks, result), kept up to date by the execution."""
    return execution.operations


def _acked_writes(ops):
    from .models.fs import WriteResult
    return [o for o in ops if isinstance(o.result, WriteResult)]


def _destroyed(ops, unit, unit_size, after=None):
    """True if a truncate or hole punch covering ``unit`` began (after clock
    ``after``, when given)."""
    for o in ops:
        if o.op not in DESTROYERS or (after is not None and o.begin < after):
            continue
        lo = unit * unit_size
        if o.op == "truncate" and lo + unit_size > o.args["size"]:
            return True
        if o.op == "punch_hole" and o.args["offset"] < lo + unit_size and lo < o.args["offset"] + o.args["len"]:
            return True
    return False


def _units(result, unit_size):
    first = result.offset // unit_size
    last = (result.offset + result.nbytes + unit_size - 1) // unit_size
    return range(first, last)


@register
class NoStaleData(Invariant):
    name = "no_stale_data"
    reads_history = False
    description = "no data given to the user (a read, a load, a COW copy) holds a STALE unit"


    def watches(self, fs):
        return [fs.ghost.cow_pages]

    def on_return(self, fs, execution, entry):
        from .models.fs import STALE, ReadResult
        r = entry["result"]
        if isinstance(r, ReadResult) and STALE in r.units:
            i = r.units.index(STALE)
            who = execution.threads[entry["thread"]].name
            return (f"{who}'s {entry['op']} returned STALE data at file offset "
                    f"{r.offset + i * fs.geo.unit_size} (unit {i} of {len(r.units)}): "
                    f"a previous owner's data was exposed")
        return None

    def after_step(self, fs, execution):
        from .models.fs import STALE
        for (vma, page), units in fs.ghost.cow_pages.items():
            if STALE in units:
                return (f"the COW copy of page {page} for the {vma} mapping holds STALE data "
                        f"(unit {units.index(STALE)}): it was copied from a block the file no longer owns")
        return None


@register
class ReadWithinEof(Invariant):
    name = "read_within_eof"
    reads_history = False
    description = "a read never returns bytes beyond i_size"


    def watches(self, fs):
        return [fs.i_size]

    def on_return(self, fs, execution, entry):
        from .models.fs import ReadResult
        r = entry["result"]
        # (A read at or past EOF returns no bytes: that is no byte beyond i_size.)
        if isinstance(r, ReadResult) and r.how == "read" and r.nbytes and r.offset + r.nbytes > fs.i_size.value:
            who = execution.threads[entry["thread"]].name
            return (f"{who}'s {entry['op']} at offset {r.offset} returned {r.nbytes} bytes, "
                    f"past i_size {fs.i_size.value}")
        return None


@register
class NoZeroOverwrite(Invariant):
    name = "no_zero_overwrite"
    description = "units a returned write put on the device are never replaced by zeros or stale tags"


    def watches(self, fs):
        return [fs.i_blocks, fs.dev] + ([] if getattr(fs, "dax", True) else [fs.page_cache])

    def after_step(self, fs, execution):
        from .models.fs import STALE, ZERO
        ops = operations(execution)
        us, upb = fs.geo.unit_size, fs.geo.units_per_block
        for w in _acked_writes(ops):
            for unit in _units(w.result, us):
                if _destroyed(ops, unit, us):
                    continue
                state, pblk = fs.i_blocks.values[unit // upb]
                if pblk is None:
                    continue
                tag = fs.dev.values[pblk * upb + unit % upb]
                where = f"device block {pblk} unit {unit % upb}"
                if not getattr(fs, "dax", True):
                    # A page-cache file (models/buffered.py): a cached page holds the
                    # file's data; writeback to the device is not modelled.
                    ps = fs.geo.page_size
                    page = fs.page_cache.items.get(unit * us // ps)
                    if page is not None:
                        tag, where = page[unit % (ps // us)], f"the cached page {unit * us // ps}"
                if tag in (ZERO, STALE):
                    return (f"{w.thread}'s {w.op} returned having written {w.result.tag} at file "
                            f"offset {unit * us}, but {where} now holds {tag}")
        return None


@register
class NoLostWrite(Invariant):
    name = "no_lost_write"
    description = "a read that starts after a write returned sees that write's data or a later one's"


    def watches(self, fs):
        return []  # the results and the history only

    def on_return(self, fs, execution, entry):
        from .models.fs import ReadResult
        r = entry["result"]
        if not isinstance(r, ReadResult):
            return None
        ops = operations(execution)
        me = next(o for o in ops if o.begin and (o.thread, o.seq) ==
                  (execution.threads[entry["thread"]].name, entry["seq"]))
        writes = _acked_writes(ops)
        us = fs.geo.unit_size
        for i, tag in enumerate(r.units):
            unit = r.offset // us + i
            before = [w for w in writes if w.end < me.begin and unit in _units(w.result, us)]
            if not before:
                continue
            last = max(before, key=lambda w: w.end)
            if _destroyed(ops, unit, us, after=last.end):
                continue
            older = {w.result.tag for w in writes if w.end < last.end} | {"DATA(init,0)"}
            if tag == last.result.tag:
                continue
            if not tag.startswith("DATA(") or tag in older:
                return (f"{me.thread}'s {me.op} began after {last.thread}'s {last.op} returned, "
                        f"but read {tag} at file offset {unit * us} instead of {last.result.tag}")
        return None


@register
class MappingsCoherent(Invariant):
    name = "mappings_coherent"
    description = "all mappings of a file page reach the same storage once a write fault on it returned"


    def watches(self, fs):
        return [*fs.ptes.values(), fs.i_blocks]

    def after_step(self, fs, execution):
        from .models.fs import WRITTEN
        ps, bs = fs.geo.page_size, fs.geo.block_size
        stored = {o.args["offset"] // ps for o in operations(execution)
                  if o.op == "mmap_store" and o.end is not None}
        for page in sorted(stored):
            targets = {}
            for vma, ptes in fs.ptes.items():
                if vma.startswith("private"):
                    continue
                pte = ptes.items.get(page)
                if pte is not None:
                    targets.setdefault(tuple(pte), []).append(vma)
            state, pblk = fs.i_blocks.values[page * ps // bs]
            if state == WRITTEN:
                targets.setdefault(("block", pblk), []).append("the file's block map")
            if len(targets) > 1:
                where = "; ".join(f"{', '.join(who)} -> {kind} {at}" for (kind, at), who in targets.items())
                return (f"a write fault on page {page} has returned, but its mappings reach "
                        f"different storage: {where}")
        return None


@register
class NoFreedBlockMapped(Invariant):
    name = "no_freed_block_mapped"
    reads_history = False
    description = "no user mapping, and no I/O in flight, points at a block that has been freed"


    def watches(self, fs):
        return [*fs.ptes.values(), fs.owner, fs.ghost.in_flight]

    def after_step(self, fs, execution):
        owner = fs.owner.values
        for vma, ptes in fs.ptes.items():
            for pgoff, (kind, where) in ptes.items.items():
                if kind == "block" and owner[where] != pgoff * fs.geo.page_size // fs.geo.block_size:
                    return (f"the {vma} mapping maps page {pgoff} to device block {where}, "
                            f"which is no longer the file's (now: {owner[where]})")
        for thread, pblk in fs.ghost.in_flight.items():
            if isinstance(owner[pblk], str):  # FREE or OTHER (a block number may be symbolic)
                name = execution.threads[thread].name
                return (f"{name} has I/O in flight to device block {pblk}, "
                        f"which has been freed (now: {owner[pblk]})")
        return None


@register
class NoMappingBeyondEof(Invariant):
    name = "no_mapping_beyond_eof"
    description = "once a truncate has returned, no user mapping maps a page at or beyond EOF"


    def watches(self, fs):
        return [*fs.ptes.values(), fs.i_size]

    def after_step(self, fs, execution):
        if not any(o.op == "truncate" and o.end is not None for o in operations(execution)):
            return None
        eof_pages = fs.pages(fs.i_size.value)
        for vma, ptes in fs.ptes.items():
            for pgoff in ptes.items:
                if pgoff >= eof_pages:
                    return (f"truncate has returned and i_size is {fs.i_size.value}, "
                            f"but the {vma} mapping still maps page {pgoff}")
        return None


# Invariants with modules of their own register themselves on import.
from . import crash, lockorder  # noqa: E402,F401  (crash_consistent, lock_order)
