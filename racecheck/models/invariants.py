"""The filesystem invariants of RACES.md: no stale data, reads within EOF,
no zero overwrite, no lost write, coherent mappings, no freed block mapped,
no mapping beyond EOF. Each registers itself by its name in
:data:`racecheck.invariants.REGISTRY` (the protocol: racecheck/invariants.py);
crash_consistent is in crash.py.
"""

from __future__ import annotations

from ..invariants import Invariant, register
from .fs import STALE, WRITTEN, ZERO, ReadResult, WriteResult, data

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
    return [o for o in ops if isinstance(o.result, WriteResult)]


def _destroyed(ops, unit, unit_size, after=None, since=None):
    """True if a truncate or hole punch covering ``unit`` began (after clock
    ``after``, when given; when ``since`` is given, one that had not
    returned by clock ``since``: it may run after a write that began then)."""
    for o in ops:
        if o.op not in DESTROYERS or (after is not None and o.begin < after):
            continue
        if since is not None and o.end is not None and o.end < since:
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
        r = entry["result"]
        if isinstance(r, ReadResult) and STALE in r.units:
            i = r.units.index(STALE)
            who = execution.threads[entry["thread"]].name
            return (f"{who}'s {entry['op']} returned STALE data at file offset "
                    f"{r.offset + i * fs.geo.unit_size} (unit {i} of {len(r.units)}): "
                    f"a previous owner's data was exposed")
        return None

    def after_step(self, fs, execution):
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
        ops = operations(execution)
        if any(o.op in SHIFTERS for o in ops):
            return None  # collapse and insert range move units to other offsets
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
        r = entry["result"]
        if not isinstance(r, ReadResult):
            return None
        ops = operations(execution)
        if any(o.op in SHIFTERS for o in ops):
            return None  # collapse and insert range move data to other offsets (see no_discarded_write)
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
            # A destroyer concurrent with the write may be ordered after it (the
            # write's data then legitimately gone), not only one begun after it returned.
            if _destroyed(ops, unit, us, since=last.begin):
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
            if state == WRITTEN and fs.dax:  # a page-cache file's mappings reach its page, not its block
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


# -- past EOF: eof_zeroed and size_visible_data -------------------------------------------

# Operations that move data within the file: after one, a unit may
# legitimately hold what was elsewhere, so the two checks below do not judge.
SHIFTERS = ("collapse_range", "insert_range")
# Operations that write the data DATA(thread, seq) over [offset, offset + len)
# and may extend i_size to its end.
DATA_WRITES = ("write", "dio_write", "buffered_write")
# Operations that only read.
READS = ("read", "dio_read", "buffered_read", "xip_file_read", "mmap_load", "xip_file_load")


def _covers(o, unit, unit_size):
    """``o``'s byte range (``offset``, ``len``; one unit without ``len``)
    holds unit ``unit``."""
    if "offset" not in o.args:
        return False
    lo = o.args["offset"]
    hi = lo + o.args.get("len", unit_size)
    return lo < (unit + 1) * unit_size and unit * unit_size < hi


def _me(execution, entry, ops):
    return next(o for o in ops if o.begin and (o.thread, o.seq) ==
                (execution.threads[entry["thread"]].name, entry["seq"]))


class _ReadPastEof(Invariant):
    """What the invariants past EOF share: they judge each unit a read
    returned, from the history, once the read has returned; not once a
    collapse or insert range has begun (they move offsets, which these do
    not follow)."""

    def watches(self, fs):
        return []  # the results and the history only

    def on_return(self, fs, execution, entry):
        r = entry["result"]
        if not isinstance(r, ReadResult):
            return None
        ops = operations(execution)
        if any(o.op in SHIFTERS for o in ops):
            return None
        me = _me(execution, entry, ops)
        us = fs.geo.unit_size
        for i, tag in enumerate(r.units):
            unit = r.offset // us + i
            problem = self.unit_read(fs, me, ops, unit, unit * us, tag)
            if problem:
                return problem
        return None

    def unit_read(self, fs, me, ops, unit, lo, tag):
        """What is wrong with ``me`` reading ``tag`` at ``unit`` (byte ``lo``), or None."""
        raise NotImplementedError


@register
class EofZeroed(_ReadPastEof):
    """A unit that lay at or past EOF (in the initial file, or after a
    truncate to at or below it returned) reads, once the file has been
    extended over it, as ZERO or as the data of a write that covers it and
    had not returned by then: never what it held before (DATA(init,0) of the
    initial blocks, STALE, or a write that a truncate cut away)."""

    name = "eof_zeroed"
    description = ("bytes past EOF read as zeros once the file is extended over them, or as data written "
                   "since; never their old contents")

    def unit_read(self, fs, me, ops, unit, lo, tag):
        us = fs.geo.unit_size
        # when the unit was last known to lie past EOF: the start, or a truncate's return
        since = 0 if lo >= fs.initial_size else None
        for o in ops:
            if (o.op == "truncate" and o.end is not None and o.end < me.begin and o.args["size"] <= lo
                    and (since is None or o.end > since)):
                since = o.end
        if since is None or tag == ZERO:
            return None
        allowed = {data(o.thread, o.seq) for o in ops
                   if o is not me and _covers(o, unit, us) and (o.end is None or o.end > since)}
        if tag in allowed:
            return None
        when = "in the initial file" if since == 0 else "after a truncate returned"
        return (f"{me.thread}'s {me.op} read {tag} at file offset {lo}, which lay past EOF "
                f"{when}: bytes past EOF must read as zeros once the file is extended over them")


@register
class SizeVisibleData(_ReadPastEof):
    """A read that returned a unit past the initial EOF observed an i_size
    beyond it. When every operation begun so far that could have published
    such an i_size is a data write covering that unit (no truncate, fallocate
    or write further out could have extended the file over it with zeros),
    the i_size it saw was published by one of those writes, and the read
    must see that data (or another of them): a write publishes i_size only
    once its data is readable below it."""

    name = "size_visible_data"
    description = ("a reader that saw i_size extended by a write sees that write's data below it, "
                   "not zeros or old contents")

    def unit_read(self, fs, me, ops, unit, lo, tag):
        if lo < fs.initial_size:
            return None
        writers = []
        for o in ops:
            if o is me or o.op in READS:
                continue
            a = o.args
            if "size" in a and "offset" not in a:  # truncate
                if a["size"] > lo:
                    return None  # it may have published the i_size the read saw
                continue
            if "offset" not in a or "len" not in a or a["offset"] + a["len"] <= lo:
                continue  # cannot move i_size past the unit
            if o.op in DATA_WRITES and _covers(o, unit, fs.geo.unit_size):
                writers.append(o)
            elif not (o.op == "punch_hole" or a.get("keep_size")):
                return None  # it may have extended the file over the unit with zeros
        if not writers or tag in {data(o.thread, o.seq) for o in writers}:
            return None
        names = ", ".join(f"{o.thread}'s {o.op}" for o in writers)
        return (f"{me.thread}'s {me.op} saw i_size past file offset {lo}, which only {names} could "
                f"have published, but read {tag} there instead of that write's data")


# -- data that a shift moves: no_discarded_write -----------------------------------------

# Operations after which an acknowledged write's data is still in the file,
# at its offset or moved by a shift: reads, loads and write-back, and
# collapse and insert range outside what they remove (see below).
KEEPERS = ("read", "dio_read", "buffered_read", "mmap_load", "dax_mmap_load", "xip_file_read", "xip_file_load",
           "fsync", "journal_commit", "writeback", "writepages") + SHIFTERS


def file_units(fs):
    """The file's bytes below ``i_size``, a tag per unit: of a page-cache
    file the cached page where there is one, else the block (an unwritten
    extent or a hole reads as zeros); of a DAX file the block."""
    us, ps, bs = fs.geo.unit_size, fs.geo.page_size, fs.geo.block_size
    upb, upp = bs // us, ps // us
    out = []
    for unit in range(-(-fs.i_size.value // us)):
        page = None if getattr(fs, "dax", True) else fs.page_cache.items.get(unit // upp)
        if page is not None:
            out.append(page[unit % upp])
            continue
        state, pblk = fs.i_blocks.values[unit // upb]
        out.append(fs.dev.values[pblk * upb + unit % upb] if state == WRITTEN and pblk is not None else ZERO)
    return out


def _removed_by_shift(fs, o, unit, unit_size):
    """Whether shift ``o`` may legitimately remove ``unit`` (by its offset
    before the shift): collapse removes its range; insert pushes the last
    ``len`` bytes of the largest file out (the model frees the blocks it
    has no room for)."""
    lo, length = o.args["offset"], o.args["len"]
    if o.op == "insert_range":
        lo = fs.geo.max_size - length
    return lo < (unit + 1) * unit_size and unit * unit_size < lo + length


@register
class NoDiscardedWrite(Invariant):
    """Checked at the end of an execution, for each write that returned
    (through a shared mapping, a write or a direct write) when every other
    operation is one of :data:`KEEPERS`: as many units of the file as the
    write wrote hold its data, wherever a collapse or insert range moved
    them. A write whose units a collapse or insert range may remove is not
    judged; nor is any write when another operation writes, truncates,
    punches or zeroes (its data could be legitimately gone)."""

    name = "no_discarded_write"
    description = ("at the end, a returned write's data is still in the file (moved by collapse or insert "
                   "range, or not), when no other operation could have removed or overwritten it")

    def watches(self, fs):
        return []  # at the end only

    def at_end(self, fs, execution):
        ops = operations(execution)
        us = fs.geo.unit_size
        for w in _acked_writes(ops):
            if str(w.args.get("mapping", "shared")).startswith("private"):
                continue  # a private mapping's store is the process's, not the file's
            others = [o for o in ops if o is not w]
            if any(o.op not in KEEPERS for o in others):
                return None
            units = list(_units(w.result, us))
            if any(_removed_by_shift(fs, o, u, us) for o in others if o.op in SHIFTERS for u in units):
                continue
            held = file_units(fs).count(w.result.tag)
            if held < len(units):
                return (f"{w.thread}'s {w.op} returned having written {w.result.tag} at file offset "
                        f"{w.result.offset}, but at the end {held} of its {len(units)} units are in the file "
                        f"(i_size {fs.i_size.value}): the write was discarded")
        return None
