"""crash_consistent: a power failure after any step, then recovery.

A crash after step k of an execution leaves what is durable after step k:
the device units, and the file's metadata as the disk has it, which is the
last committed transaction's under a journal (journal.py: the running
and committing transactions are lost, the page cache too) and the block map
and ``i_size`` as they stand on ext2, which has no journal ("what it links is
linked"). Recovery replays the journal: the recovered file is that metadata
over those units. It must hold no ``STALE`` unit in a block it maps as
written (an unwritten extent reads as zeros), and every write acknowledged as
durable (it returned before an ``fsync`` that returned) must still read as
its data or a later writer's, unless a truncate or hole punch that began
after it covers it.

Exploring crashes needs no new interleavings: the check runs after every
step of every explored execution, on the state that step left (the
``after_step`` hook). That it sees every crash state of every trace rests on
the reduction's rule for checks after steps: the durable objects are what
the check ``watches``, so the steps that write them are never reordered with
each other, and every order of them that some interleaving has is explored.

Pruning. (1) A step that writes no durable object, begins or returns no
operation (the acknowledged writes come from the history) and is not the
first of its execution leaves the recovered state and what it must hold as
the step before left them: it is skipped. (2) The check is a function of the
recovered state and of what the acknowledged writes require of it; a pair
already checked in this search is not checked again (its verdict is
remembered, so a violation is still reported where it recurs).
``tests/test_crash.py`` compares pruned and unpruned checks, and dpor with
none. ``crash_states`` counts the pairs checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..execution import runs
from ..invariants import Invariant, register
from .fs import HOLE, STALE, UNWRITTEN, ZERO
from .invariants import _acked_writes, _destroyed, _units, operations


@dataclass(frozen=True)
class Recovered:
    """The file after a crash and recovery."""

    blocks: tuple  # file block -> (extent state, device block), as on disk
    i_size: int
    units: tuple  # file block -> the tags a read of it returns
    journal: bool  # recovered by replaying a journal (else: ext2's metadata as it stood)

    def describe(self):
        parts = []
        for fb, (state, pblk) in enumerate(self.blocks):
            if state == HOLE:
                continue
            parts.append(f"block {fb} -> device block {pblk} ({state}): {runs(self.units[fb])}")
        how = "journal replayed" if self.journal else "no journal: the metadata as it stood"
        return f"recovered ({how}): i_size {self.i_size}; " + ("; ".join(parts) or "no blocks")


def durable_objects(fs):
    """The shared objects a crash keeps (what crash_consistent watches)."""
    journal = getattr(fs, "journal", None)
    if journal is not None:
        return [fs.dev, journal.committed]
    return [fs.dev, fs.i_blocks, fs.i_size]


def recover(fs):
    """The :class:`Recovered` file if the power failed now (reads values
    without recording them: a check is not part of any step)."""
    journal = getattr(fs, "journal", None)
    if journal is not None:
        disk = journal.committed.value
        blocks, i_size = disk.blocks, disk.i_size
    else:
        blocks, i_size = tuple(fs.i_blocks.values), fs.i_size.value
    upb = fs.geo.units_per_block
    dev = fs.dev.values
    units = []
    for state, pblk in blocks:
        if state == HOLE or state == UNWRITTEN:
            units.append((ZERO,) * upb)
        else:
            units.append(tuple(dev[pblk * upb:(pblk + 1) * upb]))
    return Recovered(tuple(blocks), i_size, tuple(units), journal is not None)


def durable_expectations(fs, execution):
    """What the acknowledged writes require: ``(file unit, the write's tag,
    tags that must not be there)`` for each unit of a write that returned
    before an fsync that has returned, unless a truncate or hole punch that
    began after the write covers it. A later writer's data is fine; an older
    one's, zeros or stale tags are not."""
    ops = operations(execution)
    synced = [o.begin for o in ops if o.op == "fsync" and o.end is not None]
    if not synced:
        return ()
    us = fs.geo.unit_size
    writes = _acked_writes(ops)
    out = []
    for w in writes:
        if w.end is None or not any(w.end < begin for begin in synced):
            continue
        older = frozenset({o.result.tag for o in writes if o.end is not None and o.end < w.end}
                          | {"DATA(init,0)"})
        for unit in _units(w.result, us):
            if not _destroyed(ops, unit, us, after=w.end):
                out.append((unit, w.result.tag, older))
    return tuple(sorted(out, key=lambda e: (e[0], e[1])))


def problem(fs, rec, expectations):
    """Why the recovered file is inconsistent, or None."""
    for fb, (state, pblk) in enumerate(rec.blocks):
        if state != HOLE and STALE in rec.units[fb]:
            u = rec.units[fb].index(STALE)
            return (f"file block {fb} (device block {pblk}) is reachable and reads STALE at file "
                    f"offset {fb * fs.geo.block_size + u * fs.geo.unit_size}: a previous owner's data")
    upb = fs.geo.units_per_block
    for unit, tag, older in expectations:
        fb = unit // upb
        got = rec.units[fb][unit % upb] if fb < len(rec.units) else ZERO
        if got != tag and (not got.startswith("DATA(") or got in older):
            return (f"the write of {tag} at file offset {unit * fs.geo.unit_size} was acknowledged "
                    f"as durable (an fsync returned after it), but the recovered file reads {got} there")
    return None


class CrashStates:
    """What crash_consistent gathers over one search: the crash states
    checked, the crash points skipped, and each state's verdict."""

    def __init__(self):
        self.checked = 0  # crash states (recovered state, expectations) checked
        self.unchanged = 0  # crash points skipped: nothing durable changed (pruning 1)
        self.repeated = 0  # crash points whose state was checked before (pruning 2)
        self.verdicts = {}

    def merge(self, other):
        """Another search's record (a work unit's, a bfs worker's) into this
        one, as one search that saw both would count: a state both checked
        is one state, checked once and then repeated."""
        both = len(self.verdicts.keys() & other.verdicts.keys())
        self.checked += other.checked - both
        self.repeated += other.repeated + both
        self.unchanged += other.unchanged
        self.verdicts = {**self.verdicts, **other.verdicts}

    def stats(self):
        return {"crash_states": self.checked,
                "crash_points_pruned": self.unchanged + self.repeated}


@register
class CrashConsistent(Invariant):
    name = "crash_consistent"
    description = ("after a power failure at any step and recovery (journal replay), no block reachable "
                   "from the file reads STALE and every write acknowledged as durable survives")

    def __init__(self, prune=True):
        self.prune = prune
        # Pruning (1) makes a verdict depend on the step, not the state
        # alone: it is off in executions that key verdicts on states (bfs's,
        # whose transition cache makes the same saving).
        self.step_pruning = prune

    def gather(self):
        return CrashStates()

    def watches(self, fs):
        return durable_objects(fs)

    def after_step(self, fs, execution):
        if (self.step_pruning and not execution.verdicts_by_state
                and self.unchanged_by_step(fs, execution.rt)):
            execution.gathered(self).unchanged += 1
            return None
        return self.check(fs, execution)

    def unchanged_by_step(self, fs, rt):
        """Pruning (1): the step leaves the crash state as the one before."""
        if rt.step_no == 1 or rt.HISTORY in rt.writes:
            return False
        keys = {o.key for o in durable_objects(fs)}
        return not any((k[0] if k.__class__ is tuple else k) in keys for k in rt.writes)

    def check(self, fs, execution):
        """The crash state after the step just run: a message, or None."""
        rt = execution.rt
        seen = execution.gathered(self)
        rec = recover(fs)
        expectations = durable_expectations(fs, execution)
        key = (rec, expectations)
        if self.prune and key in seen.verdicts:
            seen.repeated += 1
            why = seen.verdicts[key]
        else:
            seen.checked += 1
            why = problem(fs, rec, expectations)
            if self.prune:
                seen.verdicts[key] = why
        if why is None:
            return None
        who = execution.threads[rt.thread].name
        op = rt.current_op.get(rt.thread)
        return (f"a power failure right after step {rt.step_no} ({who}"
                + (f", in {op}" if op else "") + f"), then recovery: {rec.describe()}. {why}")



def configure(root, model, names, crash):
    """``crash: true`` in a scenario: add crash_consistent to what is
    checked. Raises ScenarioError for crash_consistent without it, or for
    a model that has no filesystem state to crash."""
    if not crash:
        if "crash_consistent" in names:
            raise root.error("invariants", "crash_consistent checks the states a power failure leaves: "
                                           "set crash: true to explore them")
        return names
    if not hasattr(model, "file"):
        raise root.error("crash", "crash: true needs the built-in filesystem model (model: dax), "
                                  "whose device and journal it knows")
    if "crash_consistent" not in names:
        model.invariants = list(model.invariants) + [CrashConsistent()]
        names = names + ["crash_consistent"]
    return names
