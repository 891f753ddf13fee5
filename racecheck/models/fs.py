"""Filesystem state: one inode, its block map, the device, the allocator, the
page cache and the page tables of the file's user mappings.

Data is tags, not bytes. A device block is ``units_per_block`` units; each
unit holds ``STALE`` (left by a previous owner), ``ZERO`` or ``DATA(w,n)``
(written by thread ``w``'s ``n``-th operation).

Everything a path reads or writes is a runtime object, so each step's
footprint is exact. ``ghost`` holds what only invariants look at (I/O in
flight, acknowledged writes): paths write it, but never read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kernel import LIBRARY

STALE = "STALE"
ZERO = "ZERO"

HOLE = "hole"
UNWRITTEN = "unwritten"
WRITTEN = "written"
# ``file.blocks`` may also say ``stale``: a block the file maps as written
# (allocated and linked) whose device block still holds what another file
# wrote there, never initialised for this one: its units are STALE. It is
# WRITTEN in the block map; only its initial contents differ.
STALE_BLOCK = "stale"
EXTENT_STATES = (HOLE, UNWRITTEN, WRITTEN)
BLOCK_STATES = EXTENT_STATES + (STALE_BLOCK,)

FREE = "free"
OTHER = "other file"  # a freed block handed to another file


def data(writer, seq):
    return f"DATA({writer},{seq})"


def is_data(tag):
    return tag.startswith("DATA(")


@dataclass
class Geometry:
    block_size: int = 4096
    unit_size: int = 512
    page_size: int = 4096
    file_blocks: int = 2  # the most blocks the file can have
    spare_blocks: int = 2  # free device blocks the allocator can hand out

    @property
    def units_per_block(self):
        return self.block_size // self.unit_size

    @property
    def device_blocks(self):
        return self.file_blocks + self.spare_blocks

    @property
    def max_size(self):
        return self.file_blocks * self.block_size


class Ghost:
    """What invariants see and models never read (models only write it)."""

    def __init__(self, rt):
        self.in_flight = rt.ghost_map("in_flight")  # thread -> device block an I/O uses
        self.cow_pages = rt.ghost_map("cow_pages")  # (mapping, page) -> units a COW fault copied


class FileSystem:
    """The shared state of a scenario."""

    def __init__(self, rt, geometry, size, blocks, flavour, fixes, mappings=("shared",), dax=True):
        g = self.geo = geometry
        self.rt = rt
        self.flavour = flavour
        self.fixes = frozenset(fixes)
        upb = g.units_per_block
        self.i_size = rt.var("i_size", size)
        self.initial_size = size  # the scenario's file.size (a constant: eof_zeroed, size_visible_data)
        self.i_mutex = rt.mutex("i_mutex")
        self.i_mmap_mutex = rt.mutex("i_mmap_mutex")
        self.i_dio_count = rt.var("i_dio_count", 0)
        # fs/direct-io.c with seed 003's patch: the global list of blocks a
        # direct I/O is zeroing part of (dio_zero_block_list), newest first;
        # each entry is (fs block, owner I/O). See models/dio.py.
        self.dio_zero_blocks = rt.var("dio_zero_block_list", ())
        # ext4 after "serialize unaligned asynchronous DIO" (2.6.38): the mutex
        # unaligned AIO takes, and the count of AIOs with extents to convert.
        self.ext4_aio_mutex = rt.mutex("ext4_aio_mutex")
        self.i_aiodio_unwritten = rt.var("i_aiodio_unwritten", 0)
        extents, owner, units = [], [], [STALE] * (g.device_blocks * upb)
        next_free = 0
        for fblock, state in enumerate(blocks):
            if state == HOLE:
                extents.append((HOLE, None))
                continue
            pblk = next_free
            next_free += 1
            extents.append((WRITTEN if state == STALE_BLOCK else state, pblk))
            if state == WRITTEN:  # (a stale block's units stay STALE)
                units[pblk * upb:(pblk + 1) * upb] = [data("init", 0)] * upb
        extents += [(HOLE, None)] * (g.file_blocks - len(extents))
        owner = [FREE] * g.device_blocks
        for fblock, (state, pblk) in enumerate(extents):
            if pblk is not None:
                owner[pblk] = fblock
        # file block -> (extent state, device block)
        self.i_blocks = rt.array("i_blocks", extents)
        # device block -> the file block it backs, FREE or OTHER
        self.owner = rt.array("owner", owner)
        self.free_list = rt.var("free_list", tuple(b for b in range(g.device_blocks)
                                                   if owner[b] == FREE))
        self.dev = rt.array("dev", units)
        self.page_cache = rt.map("page_cache")
        # Buffered (non-DAX) I/O, models/buffered.py: beside page_cache (index ->
        # the page's units), each page's lock, PG_uptodate, and the buffer heads
        # attached to it (index -> tuple of buffered.Buffer). ``dax`` is a file
        # setting (IS_DAX), fixed for the scenario, so a plain attribute.
        self.dax = dax
        self.page_lock = [rt.mutex(f"page_lock[{i}]") for i in range(self.pages(g.max_size))]
        self.page_uptodate = rt.map("PageUptodate")
        self.page_buffers = rt.map("page_buffers")
        self.ptes = {m: rt.map(f"pte.{m}") for m in mappings}
        self.ghost = Ghost(rt)
        # The kernel functions this filesystem runs (models/kernel.py): the
        # library's, or a scenario's edits of them (models/edits.py), which
        # also name the locks they add.
        self.kernel = LIBRARY
        self.added_locks = {}

    def lock_object(self, name):
        """The lock an ``add_lock`` edit takes (models/edits.py)."""
        return self.added_locks[name]

    # -- geometry helpers (pure) -------------------------------------------

    def pages(self, size):
        """Number of pages that hold ``size`` bytes (the kernel's round-up)."""
        ps = self.geo.page_size
        return (size + ps - 1) // ps

    def block_units(self, pblk):
        upb = self.geo.units_per_block
        return range(pblk * upb, (pblk + 1) * upb)

    def unit_name(self, unit):
        upb = self.geo.units_per_block
        return f"block {unit // upb} unit {unit % upb}"


# -- what operations return (the invariants read these) -------------------------


@dataclass(frozen=True)
class ReadResult:
    """Data handed to the user: ``units[i]`` is the tag of the unit at byte
    ``offset + i * unit_size`` (units are aligned; ``nbytes`` may end mid-unit)."""

    offset: int
    nbytes: int
    units: tuple
    how: str = "read"  # read | load | cow copy


@dataclass(frozen=True)
class WriteResult:
    """A write acknowledged to the user: ``nbytes`` at ``offset`` now hold ``tag``."""

    offset: int
    nbytes: int
    tag: str
