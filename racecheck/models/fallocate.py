"""fallocate(2)'s range operations, per filesystem: collapse range, insert
range, zero range, and the hole punch of filesystems other than ext4 of the
seeds (whose ``ext4_punch_hole`` is in models/truncate.py).

``vfs_fallocate()`` calls the filesystem's ``->fallocate`` with a mode; each
filesystem's model registers what it does for a mode with :func:`mode`,
and the operations below send the call there. A filesystem with nothing
registered for a mode answers ``-EOPNOTSUPP``, as ext2 does for all of
them; a scenario that names the operation on such a filesystem is refused
when it is loaded (the operation lists the filesystems it is modelled on).
"""

from __future__ import annotations

from .extents import fs_type
from .registry import FILESYSTEMS, Param, operation

# (filesystem, mode) -> step generator fn(fs, offset, len) returning 0 or an errno string
FALLOCATE: dict = {}

PUNCH_HOLE = "punch_hole"  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
COLLAPSE_RANGE = "collapse_range"  # FALLOC_FL_COLLAPSE_RANGE
INSERT_RANGE = "insert_range"  # FALLOC_FL_INSERT_RANGE
ZERO_RANGE = "zero_range"  # FALLOC_FL_ZERO_RANGE


def mode(filesystem, which):
    """Decorator: ``fn(fs, offset, len)`` is ``filesystem``'s ``->fallocate``
    for mode ``which``."""
    def register(fn):
        FALLOCATE[(filesystem, which)] = fn
        return fn
    return register


def modelled_on(which):
    """The flavours whose filesystem has ``which`` modelled (for the loader)."""
    return tuple(sorted(f for f, fsname in FILESYSTEMS.items() if (fsname, which) in FALLOCATE))


def vfs_fallocate(fs, which, offset, length):
    """``vfs_fallocate()`` -> ``->fallocate(file, mode, offset, len)``."""
    handler = FALLOCATE.get((fs_type(fs), which))
    if handler is None:
        yield "->fallocate(): -EOPNOTSUPP"
        return "-EOPNOTSUPP"
    return (yield from handler(fs, offset, length))


RANGE = (Param("offset", align="block", help="file offset of the range (block-aligned)"),
         Param("len", align="block", help="length of the range (block-aligned)"))


@operation(COLLAPSE_RANGE, "fallocate(2) with FALLOC_FL_COLLAPSE_RANGE: remove the blocks of "
                           "[offset, offset + len) and shift the rest of the file down (3.15 on)",
           *RANGE, flavours=lambda: modelled_on(COLLAPSE_RANGE))
def collapse_range(fs, ctx, offset, len):
    return (yield from vfs_fallocate(fs, COLLAPSE_RANGE, offset, len))


@operation(INSERT_RANGE, "fallocate(2) with FALLOC_FL_INSERT_RANGE: shift the file up from offset by len "
                         "and leave a hole there (4.1 on)",
           *RANGE, flavours=lambda: modelled_on(INSERT_RANGE))
def insert_range(fs, ctx, offset, len):
    return (yield from vfs_fallocate(fs, INSERT_RANGE, offset, len))


@operation(ZERO_RANGE, "fallocate(2) with FALLOC_FL_ZERO_RANGE: make [offset, offset + len) read as zeros "
                       "(unwritten extents, partial blocks zeroed; 3.15 on)",
           Param("offset", align="unit", help="file offset of the range"),
           Param("len", align="unit", help="length of the range"),
           flavours=lambda: modelled_on(ZERO_RANGE))
def zero_range(fs, ctx, offset, len):
    return (yield from vfs_fallocate(fs, ZERO_RANGE, offset, len))
