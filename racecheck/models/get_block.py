"""``get_block`` flavours: how a filesystem maps a file block to a device block.

Each flavour is a step generator ``get_block(fs, block, create)`` returning a
:class:`BufferHead`. One call is one step: the filesystem's own lock
(ext2's ``truncate_mutex``, ext4's ``i_data_sem``) makes the lookup and any
allocation atomic with respect to truncate's freeing of blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fs import FREE, HOLE, OTHER, STALE, UNWRITTEN, WRITTEN, ZERO
from .kernel import kernel_function
from .registry import fix, flavour


@dataclass(frozen=True)
class BufferHead:
    """What ``get_block`` fills in: the flags a caller tests."""

    mapped: bool = False  # buffer_mapped(): b_blocknr is valid
    new: bool = False  # buffer_new(): just allocated, caller must initialise
    unwritten: bool = False  # buffer_unwritten(): allocated, reads as zeros
    blocknr: int | None = None
    size: int = 0  # b_size


def alloc_block(fs, fblock):
    """Take a device block off the free list for file block ``fblock``."""
    free = fs.free_list.get()
    if not free:
        return None  # ENOSPC
    pblk = free[0]
    fs.free_list.set(free[1:])
    fs.owner.set(pblk, fblock)
    return pblk


def free_block(fs, pblk):
    """Give a device block back. The worst case is modelled: another file
    takes it at once and writes its own data, which this file must never see.
    Under a journal the block waits for the freeing transaction to commit
    (models/journal.py)."""
    if getattr(fs, "journal", None) is not None:
        return journal_free_block(fs, pblk)
    fs.owner.set(pblk, OTHER)
    for unit in fs.block_units(pblk):
        fs.dev.set(unit, STALE)


def journal_free_block(fs, pblk):
    """A block freed under the journal (ext4_free_blocks with a handle): off
    the file at once, reusable only when the transaction commits
    (models/journal.py); until then the committed block map may still point
    at it, so its data stays."""
    fs.owner.set(pblk, FREE)
    fs.journal.t_freed.set(fs.journal.t_freed.get() + (pblk,))


def _clear_block(fs, pblk):
    for unit in fs.block_units(pblk):
        fs.dev.set(unit, ZERO)


@kernel_function("fs/dax.c", "4.0", name="dax_clear_blocks")
def zero_block(fs, pblk):
    """fs/dax.c ``dax_clear_blocks()`` (4.0, seed 001; seed 002's
    ``xip_clear_blocks`` under its later name): zero the block through
    ``direct_access``."""
    _clear_block(fs, pblk)


@kernel_function("fs/xip.c", "seed 002 patch 11")
def xip_clear_blocks(fs, pblk):
    """fs/xip.c ``xip_clear_blocks()`` (patch 11): zero the block through
    ``direct_access``."""
    _clear_block(fs, pblk)


@kernel_function("fs/ext2/inode.c", "seed 002 patch 06")
def ext2_get_blocks(fs, block, create, zero):
    """The body of ext2_get_blocks() for one block, inside the caller's step:
    look the block up; with ``create``, allocate it, clear it if ``zero``,
    and splice it into the inode (ext2_splice_branch)."""
    state, pblk = fs.i_blocks.get(block)
    size = fs.geo.block_size
    if state != HOLE:
        return BufferHead(mapped=True, blocknr=pblk, size=size)
    if not create:
        return BufferHead(size=size)
    pblk = alloc_block(fs, block)
    if pblk is None:
        return None
    if zero:
        zero_block(fs, pblk)
    fs.i_blocks.set(block, (WRITTEN, pblk))
    return BufferHead(mapped=True, new=True, blocknr=pblk, size=size)


@flavour("ext2", "ext2: allocates a block and zeroes it before linking it into the inode")
@kernel_function("fs/ext2/inode.c", "seed 002 patch 06")
def ext2_get_block(fs, block, create):
    """ext2_get_blocks() under IS_XIP: a new block is cleared before it is
    linked into the inode ("we need to clear the block", patch 06)."""
    yield f"ext2_get_block(block {block}, create={int(create)})"
    return ext2_get_blocks(fs, block, create, zero=fs.dax)  # IS_XIP only (page cache: BH_New)


@flavour("ext4", "ext4: allocates unwritten extents, converted to written after the I/O")
def ext4_get_block(fs, block, create):
    """ext4: a lookup maps unwritten extents too (flagged unwritten)."""
    yield f"ext4_get_block(block {block}, create={int(create)})"
    state, pblk = fs.i_blocks.get(block)
    size = fs.geo.block_size
    if state != HOLE:
        return BufferHead(mapped=True, unwritten=state == UNWRITTEN, blocknr=pblk, size=size)
    if not create:
        return BufferHead(size=size)
    pblk = alloc_block(fs, block)
    if pblk is None:
        return None
    fs.i_blocks.set(block, (UNWRITTEN, pblk))
    return BufferHead(mapped=True, new=True, unwritten=True, blocknr=pblk, size=size)


@flavour("xfs", "XFS with its direct-I/O get_blocks (Dave Chinner's XIP port, seed 002, 2014-01-31): "
                "allocates unwritten extents, not zeroed, marked new; the write's completion converts them")
@kernel_function("fs/xfs/xfs_aops.c", "3.13")
def xfs_get_blocks_direct(fs, block, create):
    """__xfs_get_blocks(direct=1), the get_blocks Dave Chinner's XIP port used
    (seed 002, 2014-01-31: "So I changed to use the direct IO version"). An
    allocation is an unwritten extent, not zeroed, marked buffer_new: the
    caller must initialise what it does not write. A lookup (create=0) does not
    map an unwritten extent, so reads see it as a hole; with create=1 it is
    mapped, unwritten and new. XFS sets b_size for a hole too (the hole's
    length; one block here). Completion: :func:`xfs_end_io_direct_write`."""
    yield f"xfs_get_blocks_direct(block {block}, create={int(create)})"
    state, pblk = fs.i_blocks.get(block)
    size = fs.geo.block_size
    if state == WRITTEN:
        return BufferHead(mapped=True, blocknr=pblk, size=size)
    if state == UNWRITTEN:
        if not create:
            return BufferHead(size=size)
        return BufferHead(mapped=True, new=True, unwritten=True, blocknr=pblk, size=size)
    if not create:
        return BufferHead(size=size)
    pblk = alloc_block(fs, block)
    if pblk is None:
        return None
    fs.i_blocks.set(block, (UNWRITTEN, pblk))
    return BufferHead(mapped=True, new=True, unwritten=True, blocknr=pblk, size=size)


@kernel_function("fs/xfs/xfs_aops.c", "3.13")
def xfs_end_io_direct_write(fs, offset, size):
    """The end_io XFS passes to the direct I/O (here xip_do_io): once the data
    is in, xfs_iomap_write_unwritten() converts the unwritten extents under
    [offset, offset + size) to written, in one transaction."""
    yield "xfs_iomap_write_unwritten(ip, offset, size)"
    bs = fs.geo.block_size
    for block in range(offset // bs, (offset + size + bs - 1) // bs):
        state, pblk = fs.i_blocks.get(block)
        if state == UNWRITTEN:
            fs.i_blocks.set(block, (WRITTEN, pblk))


@kernel_function("fs/xfs/xfs_aops.c", "seed 000 (Dave Chinner, 2014-01-30), seed 002 (2014-02-11)")
def xfs_get_blocks_xip(fs, block, create):
    """Dave Chinner's xfs_get_blocks_xip, the get_block the XFS fault passes
    once fixed (seed 000, 2014-01-30: "if (hole) transactionally allocate and
    zero block in requested region; if (unwritten) transactionally convert to
    written and zero block; if (written) map blocks"; seed 002, 2014-02-11:
    "allocate as unwritten, xip_clear_blocks, mark extent as written"). One
    transaction: one step. A lookup (create=0) is xfs_get_blocks_direct's."""
    yield f"xfs_get_blocks_xip(block {block}, create={int(create)})"
    state, pblk = fs.i_blocks.get(block)
    size = fs.geo.block_size
    if state == WRITTEN:
        return BufferHead(mapped=True, blocknr=pblk, size=size)
    if not create:
        return BufferHead(size=size)
    new = state == HOLE
    if new:
        pblk = alloc_block(fs, block)
        if pblk is None:
            return None
    xip_clear_blocks(fs, pblk)
    fs.i_blocks.set(block, (WRITTEN, pblk))
    return BufferHead(mapped=True, new=new, blocknr=pblk, size=size)


EXT2_ZERO_BEFORE_LINK = fix(
    "ext2_zero_before_link",
    "ext2_get_blocks zeroes a new block (dax_clear_blocks) before linking it into the inode (seed 001: "
    "Matthew Wilcox to Jan Kara, 'ext2 must have zeroed the block before linking it into the inode's "
    "data blocks')")


@flavour("ext2-nozero", "ext2 as Jan Kara proposed for DAX (seed 001): ext2_get_blocks links a new block "
                     "without zeroing it and the DAX fault zeroes buffer_new blocks itself", filesystem="ext2")
def ext2_dax_get_block(fs, block, create):
    """ext2_get_blocks() under IS_DAX with Jan Kara's proposal (seed 001,
    2015-01-19: "Also note that ext2 then doesn't have to call
    dax_clear_blocks() at all"): the block is allocated and spliced into the
    inode, not zeroed; the caller sees buffer_new. The fix puts the zeroing
    back before the splice, in the same truncate_mutex section (one step)."""
    yield f"ext2_get_block(block {block}, create={int(create)})"
    return ext2_get_blocks(fs, block, create, zero=EXT2_ZERO_BEFORE_LINK in fs.fixes)
