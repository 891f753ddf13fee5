"""ext4's block mapping for direct I/O and fallocate: ``ext4_map_blocks()``
with the flags its callers pass, the unwritten-extent conversion after a
direct write, and ``ext4_fallocate()``.

Mirrored code:

* :func:`ext4_map_blocks`: fs/ext4/inode.c of 3.13 with patch 19 of seed 002
  ("ext4: Add XIP functionality"), which adds, after the create path has
  mapped blocks::

        /* this is probably wrong for ext4.  unlike ext2, ext4 supports
         * uninitialised extents, so we should probably be hooking
         * into the "make it initialised" code instead. */
        if (IS_XIP(inode)) {
                ret = xip_clear_blocks(inode, map->m_pblk,
                                        map->m_len << inode->i_blkbits);

  so every create-path call that maps blocks zeroes them, the conversion
  after a direct write included (race 9). The fix switch
  ``ext4_no_zero_on_convert`` is Ross Zwisler's one-liner of 2014-02-11:
  ``if (IS_XIP(inode) && !(flags & EXT4_GET_BLOCKS_CONVERT))``.
* :func:`ext4_get_block`, :func:`ext4_get_block_write`: ``_ext4_get_block()``
  with ``EXT4_GET_BLOCKS_CREATE`` (or 0), and with
  ``EXT4_GET_BLOCKS_IO_CREATE_EXT`` whatever ``create`` says (the direct-I/O
  write's get_block, 2.6.36 to 3.13).
* :func:`ext4_convert_unwritten_extents`: fs/ext4/extents.c, one
  ``ext4_map_blocks(EXT4_GET_BLOCKS_IO_CONVERT_EXT)`` per block.
* :func:`ext4_fallocate`: fs/ext4/extents.c (3.13) for mode 0 and
  ``FALLOC_FL_KEEP_SIZE``: ``i_mutex``, ``ext4_map_blocks(
  EXT4_GET_BLOCKS_CREATE_UNINIT_EXT)`` per block, then
  ``ext4_falloc_update_inode()``.

One ``ext4_map_blocks`` call is one step: ``i_data_sem`` (read for the lookup,
write for the create path) makes the lookup, the allocation or conversion and
patch 19's zeroing atomic for every other extent user. What the model's
``ext4_ext_map_blocks`` does with each flag (3.13,
``ext4_ext_handle_uninitialized_extents``):

=====================  ==============  ======================================
flags                  extent found    result
=====================  ==============  ======================================
any                    written         mapped (returns before the create path)
no CREATE              unwritten       not mapped, unwritten (reads: a hole)
no CREATE              hole            not mapped
CREATE                 hole            allocate: unwritten if UNINIT_EXT,
                                       written otherwise; new
CONVERT                unwritten       mark written (the I/O completed)
PRE_IO                 unwritten       split, stays unwritten; new (the
                                       direct write must zero what it skips)
UNINIT_EXT (fallocate) unwritten       mapped, unwritten, not new
CREATE only            unwritten       ext4_ext_convert_to_initialized; new
=====================  ==============  ======================================

Where this differs from the shared ``ext4`` flavour (models/get_block.py,
used by the DAX fault and by xip_io.py's ``write``): that flavour's create
allocates an unwritten extent and zeroes nothing, as seed 000 describes the
fault path; the functions here are the direct-I/O and fallocate paths of 3.13
with patch 19. Not modelled: the journal (handles, credits, orphan list), the
extent status tree, ``EXT4_STATE_DIO_UNWRITTEN`` as an inode flag (a
direct write keeps it in its own ``io_end``-like local: writes that set it
hold ``i_mutex``), ``ext4_flush_unwritten_io``, multi-block extents (one
block per call).
"""

from __future__ import annotations

from .fs import HOLE, UNWRITTEN, WRITTEN
from .get_block import BufferHead, alloc_block, xip_clear_blocks
from .kernel import kernel_function
from .registry import FILESYSTEMS, FLAVOURS, Param, fix, operation

# fs/ext4/ext4.h (3.13)
EXT4_GET_BLOCKS_CREATE = 0x0001
EXT4_GET_BLOCKS_UNINIT_EXT = 0x0002
EXT4_GET_BLOCKS_CREATE_UNINIT_EXT = EXT4_GET_BLOCKS_UNINIT_EXT | EXT4_GET_BLOCKS_CREATE
EXT4_GET_BLOCKS_PRE_IO = 0x0008
EXT4_GET_BLOCKS_CONVERT = 0x0010
EXT4_GET_BLOCKS_IO_CREATE_EXT = EXT4_GET_BLOCKS_PRE_IO | EXT4_GET_BLOCKS_CREATE_UNINIT_EXT
EXT4_GET_BLOCKS_IO_CONVERT_EXT = EXT4_GET_BLOCKS_CONVERT | EXT4_GET_BLOCKS_CREATE_UNINIT_EXT

_FLAG_NAMES = {
    0: "0",
    EXT4_GET_BLOCKS_CREATE: "EXT4_GET_BLOCKS_CREATE",
    EXT4_GET_BLOCKS_CREATE_UNINIT_EXT: "EXT4_GET_BLOCKS_CREATE_UNINIT_EXT",
    EXT4_GET_BLOCKS_IO_CREATE_EXT: "EXT4_GET_BLOCKS_IO_CREATE_EXT",
    EXT4_GET_BLOCKS_IO_CONVERT_EXT: "EXT4_GET_BLOCKS_IO_CONVERT_EXT",
}

ENOSPC = -28
EOPNOTSUPP = -95

NO_ZERO_ON_CONVERT = fix(
    "ext4_no_zero_on_convert",
    "ext4_map_blocks does not zero the blocks on the conversion after a direct/XIP write: "
    "IS_XIP(inode) && !(flags & EXT4_GET_BLOCKS_CONVERT) (seed 002: Ross Zwisler 2014-02-11; Dave "
    "Chinner 2014-01-31, 'ext4 should not be zeroing the block during unwritten extent conversion')")


def fs_type(fs):
    """The filesystem of the scenario's ``get_block`` flavour ("ext2",
    "ext4", "xfs"; "ext2-nozero" is ext2), as the flavour declares it."""
    for name, (fn, _) in FLAVOURS.items():
        if fn is fs.flavour:
            return FILESYSTEMS[name]
    return None


def is_ext4(fs):
    """The file is on ext4 (DAX or not: ``file.dax``)."""
    return fs_type(fs) == "ext4"


@kernel_function("fs/ext4/inode.c", "3.13 with seed 002 patch 19")
def ext4_map_blocks(fs, block, flags):
    """``ext4_map_blocks(handle, inode, map, flags)`` for one block, as in
    3.13 with patch 19 of seed 002 (see the module docstring for what each
    flag does). Returns the :class:`BufferHead` ``_ext4_get_block`` builds
    from ``map->m_flags``, or None for ENOSPC."""
    yield f"ext4_map_blocks(block {block}, {_FLAG_NAMES.get(flags, hex(flags))})"
    state, pblk = fs.i_blocks.get(block)
    size = fs.geo.block_size
    # The lookup, under down_read(&EXT4_I(inode)->i_data_sem).
    if state == WRITTEN:
        # "Returns if the blocks have already allocated": m_flags MAPPED
        return BufferHead(mapped=True, blocknr=pblk, size=size)
    if not flags & EXT4_GET_BLOCKS_CREATE:
        # "If it is only a block(s) look up": an unwritten extent comes back
        # with EXT4_MAP_UNWRITTEN and without EXT4_MAP_MAPPED.
        if state == UNWRITTEN:
            return BufferHead(unwritten=True, blocknr=pblk, size=size)
        return BufferHead(size=size)

    # The create path, under down_write(&EXT4_I(inode)->i_data_sem).
    if state == HOLE:
        pblk = alloc_block(fs, block)
        if pblk is None:
            return None
        state = UNWRITTEN if flags & EXT4_GET_BLOCKS_UNINIT_EXT else WRITTEN
        fs.i_blocks.set(block, (state, pblk))
        bh = BufferHead(mapped=True, new=True, unwritten=state == UNWRITTEN, blocknr=pblk, size=size)
    elif flags & EXT4_GET_BLOCKS_CONVERT:
        # ext4_convert_unwritten_extents_endio(): the I/O is done
        fs.i_blocks.set(block, (WRITTEN, pblk))
        bh = BufferHead(mapped=True, blocknr=pblk, size=size)
    elif flags & EXT4_GET_BLOCKS_PRE_IO:
        # "get_block() before submit the IO, split the extent": it stays
        # unwritten until the I/O completes; map->m_flags |= EXT4_MAP_NEW
        bh = BufferHead(mapped=True, new=True, unwritten=True, blocknr=pblk, size=size)
    elif flags & EXT4_GET_BLOCKS_UNINIT_EXT:
        # fallocate over an unwritten extent: goto map_out
        bh = BufferHead(mapped=True, unwritten=True, blocknr=pblk, size=size)
    else:
        # "buffered write, writepage time, convert": ext4_ext_convert_to_initialized()
        fs.i_blocks.set(block, (WRITTEN, pblk))
        bh = BufferHead(mapped=True, new=True, blocknr=pblk, size=size)

    # Patch 19: "if (IS_XIP(inode)) { ret = xip_clear_blocks(inode, map->m_pblk, ...".
    if fs.dax and not (NO_ZERO_ON_CONVERT in fs.fixes and flags & EXT4_GET_BLOCKS_CONVERT):
        xip_clear_blocks(fs, pblk)
    return bh


@kernel_function("fs/ext4/inode.c", "3.13")
def ext4_get_block(fs, block, create):
    """``ext4_get_block()``: ``_ext4_get_block(inode, iblock, bh,
    create ? EXT4_GET_BLOCKS_CREATE : 0)``."""
    return (yield from ext4_map_blocks(fs, block, EXT4_GET_BLOCKS_CREATE if create else 0))


@kernel_function("fs/ext4/inode.c", "3.13")
def ext4_get_block_write(fs, block, create):
    """``ext4_get_block_write()``: the direct write's get_block; it ignores
    ``create`` and always passes ``EXT4_GET_BLOCKS_IO_CREATE_EXT``, so holes
    become unwritten extents that the I/O completion converts."""
    return (yield from ext4_map_blocks(fs, block, EXT4_GET_BLOCKS_IO_CREATE_EXT))


@kernel_function("fs/ext4/extents.c", "3.13", dropped=0)
def ext4_convert_unwritten_extents(fs, offset, length):
    """``ext4_convert_unwritten_extents(inode, offset, len)``: after a direct
    write completed, mark the unwritten extents under it written."""
    bs = fs.geo.block_size
    for block in range(offset // bs, (offset + length + bs - 1) // bs):
        bh = yield from ext4_map_blocks(fs, block, EXT4_GET_BLOCKS_IO_CONVERT_EXT)
        if bh is None:
            return ENOSPC
    return 0


@kernel_function("fs/ext4/extents.c", "3.13", dropped=0)
def ext4_fallocate(fs, offset, length, keep_size=False):
    """``ext4_fallocate(file, mode, offset, len)`` for mode 0 or
    ``FALLOC_FL_KEEP_SIZE`` (3.13)."""
    bs = fs.geo.block_size
    first = offset // bs
    stop = (offset + length + bs - 1) // bs  # EXT4_BLOCK_ALIGN(len + offset, blkbits) >> blkbits
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    ret = 0
    for block in range(first, stop):
        bh = yield from ext4_map_blocks(fs, block, EXT4_GET_BLOCKS_CREATE_UNINIT_EXT)
        if bh is None:
            ret = ENOSPC
            break
        new_size = offset + length if block + 1 >= stop else (block + 1) * bs
        if not keep_size:
            yield "ext4_falloc_update_inode(): if (new_size > i_size_read(inode)) i_size_write(inode, new_size)"
            if new_size > fs.i_size.get():
                fs.i_size.set(new_size)
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return ret


@operation("fallocate", "fallocate(2), mode 0 (or FALLOC_FL_KEEP_SIZE): allocate unwritten extents "
                        "over [offset, offset + len) (ext4_fallocate; ext2 has none: -EOPNOTSUPP)",
           Param("offset", help="file offset of the range"),
           Param("len", help="length of the range"),
           Param("keep_size", "bool", False, False, help="FALLOC_FL_KEEP_SIZE: do not extend i_size"),
           flavours=("ext2", "ext2-nozero", "ext4"))
def fallocate(fs, ctx, offset, len, keep_size=False):
    if not is_ext4(fs):
        yield "->fallocate"
        if fs_type(fs) == "ext2":
            return "-EOPNOTSUPP"  # ext2 has no ->fallocate
        raise NotImplementedError(f"fallocate is modelled for ext4 (and ext2: -EOPNOTSUPP), "
                                  f"not for {fs_type(fs)}")
    ret = yield from ext4_fallocate(fs, offset, len, keep_size)
    return "-ENOSPC" if ret == ENOSPC else ret
