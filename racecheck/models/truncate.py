"""Truncate and hole punch: ``->setattr(ATTR_SIZE)`` per filesystem, the
partial-page zeroing, the page-cache and page-table side, and the freeing of
blocks.

Mirrored code:

* :func:`ext2_setsize`: fs/ext2/inode.c, seed 002 patch 06 (``inode_dio_wait``,
  the XIP partial-page zeroing of patch 08, ``truncate_setsize``,
  ``__ext2_truncate_blocks``).
* :func:`ext4_setattr`, :func:`ext4_truncate`: fs/ext4/inode.c of 3.13 with
  patch 19 (``ext4_block_zero_page_range`` sends XIP files to
  ``xip_zero_page_range``). The order differs from ext2's: ``i_size_write``
  comes first, then ``inode_dio_wait`` (only when shrinking: the orphan
  case), ``truncate_pagecache``, and ``ext4_truncate`` zeroes the tail of the
  EOF block and removes the extents past EOF.
* :func:`xfs_setattr_size`: fs/xfs/xfs_iops.c of 3.13 (``inode_dio_wait``,
  ``block_truncate_page``, ``truncate_setsize``, ``xfs_itruncate_extents``).
* :func:`ext4_punch_hole`: fs/ext4/inode.c of 3.13 with patch 19
  (``ext4_zero_partial_blocks`` -> ``ext4_block_zero_page_range`` ->
  ``xip_zero_page_range``).
* :func:`xip_zero_page_range`: fs/xip.c, patch 17 with patch 22's
  ``buffer_written``; ``xip_truncate_page`` is patch 17's macro over it.
  As posted it ends::

        err = xip_get_addr(inode, &bh, &addr);
        if (err)
                return err;
        memset(addr + offset, 0, length);

  and ``xip_get_addr()`` returns what ``direct_access()`` returns since patch
  04: the number of bytes available, positive. So the memset never runs and
  the function returns a positive number, which ``ext2_setsize`` and
  ``ext4_zero_partial_blocks`` take for an error and return early
  (``ext4_truncate`` ignores it). The model does this; the fix switch
  ``xip_get_addr_err_lt_0`` is the test v6 of the series has (``if (err <
  0)``), not something the seed's thread proposed.
* :func:`truncate_pagecache` / :func:`truncate_pagecache_range`: mm/truncate.c
  of 3.13 (two ``unmap_mapping_range`` calls around ``truncate_inode_pages``
  for truncate, one that spares private COW pages for a hole punch).

The page-cache side of a file that is not DAX (``file.dax: false``:
``block_truncate_page`` zeroing a cached page) is modelled on the device
block instead: the zeros reach the same units, without the page cache.
"""

from __future__ import annotations

from ..runtime import bug_on, wait_until
from .extents import ENOSPC, ext4_get_block, fs_type
from .fallocate import FALLOCATE, PUNCH_HOLE, modelled_on
from .fs import HOLE, ZERO
from .get_block import free_block
from .kernel import kernel_function
from .registry import Param, fix, operation

# The lock class of inode_dio_wait() for lock_order: it waits for whoever holds
# i_dio_count (models/xip_io.py's xip_do_io holds it across its I/O).
I_DIO_COUNT = "i_dio_count"

XIP_GET_ADDR_ERR_LT_0 = fix(
    "xip_get_addr_err_lt_0",
    "xip_zero_page_range (and xip_truncate_page) treat only a negative xip_get_addr() result as an "
    "error, so the partial page is zeroed (not in seed 002's thread: v6 of the series, 'if (err < 0)')")


@kernel_function("fs/inode.c", "3.13")
def inode_dio_wait(fs):
    """``inode_dio_wait()``: wait until no direct I/O holds ``i_dio_count``."""
    yield wait_until(fs.rt, lambda: fs.i_dio_count.get() == 0, "inode_dio_wait(inode)", lock=I_DIO_COUNT)


# -- ->setattr(ATTR_SIZE), with i_mutex held by the caller ------------------------------


@kernel_function("fs/attr.c", "3.13", name="notify_change", dropped=0)
def setattr_size(fs, newsize):
    """``notify_change()`` -> ``->setattr`` with ``ATTR_SIZE``, for the
    scenario's filesystem. Called with i_mutex held. Returns 0 or an error
    (a positive one is what ``xip_truncate_page`` returns as posted)."""
    kind = fs_type(fs)
    if kind == "ext4":
        return (yield from ext4_setattr(fs, newsize))
    if kind == "xfs":
        return (yield from xfs_setattr_size(fs, newsize))
    return (yield from ext2_setsize(fs, newsize))


@kernel_function("fs/ext2/inode.c", "seed 002 patches 06, 08")
def ext2_setsize(fs, newsize):
    """truncate(2) on an ext2 file (``ext2_setsize``, seed 002 patches 06 and
    08): called with i_mutex held by the caller."""
    yield from inode_dio_wait(fs)
    if fs.dax:
        error = yield from xip_truncate_page(fs, newsize, fs.flavour)
    else:
        error = yield from block_truncate_page(fs, newsize, fs.flavour)
    if error:
        return error
    yield from truncate_setsize(fs, newsize)
    yield from ext2_truncate_blocks(fs, newsize)
    return 0


@kernel_function("fs/ext2/inode.c", "seed 002 patch 06", name="__ext2_truncate_blocks")
def ext2_truncate_blocks(fs, newsize):
    """__ext2_truncate_blocks(): unlink and free every block past the new EOF."""
    yield "__ext2_truncate_blocks(inode, newsize)"
    free_blocks_from(fs, -(-newsize // fs.geo.block_size))


@kernel_function("fs/ext4/inode.c", "3.13 with seed 002 patch 19", dropped=0)
def ext4_setattr(fs, newsize):
    """``ext4_setattr()`` with ``ATTR_SIZE`` (3.13 with patch 19), i_mutex
    held by the caller."""
    yield "if (attr->ia_size != inode->i_size)"
    oldsize = fs.i_size.get()
    if newsize != oldsize:
        orphan = newsize < oldsize  # "S_ISREG(inode->i_mode) && (attr->ia_size < inode->i_size)"
        yield "i_size_write(inode, attr->ia_size)"
        fs.i_size.set(newsize)
        if orphan:
            # "Blocks are going to be removed from the inode. Wait for dio in flight."
            yield from inode_dio_wait(fs)
        yield from truncate_pagecache(fs, newsize)
    # "We want to call ext4_truncate() even if attr->ia_size == inode->i_size
    # for cases like truncation of fallocated space"
    yield from ext4_truncate(fs)
    return 0


@kernel_function("fs/ext4/inode.c", "3.13")
def ext4_truncate(fs):
    """``ext4_truncate()``: zero the tail of the EOF block (the return value is
    not checked), then ``ext4_ext_truncate()`` removes every extent past EOF
    under ``i_data_sem``."""
    bs = fs.geo.block_size
    yield "if (inode->i_size & (blocksize - 1)) ext4_block_truncate_page(handle, mapping, inode->i_size)"
    isize = fs.i_size.get()
    if isize % bs:
        yield from ext4_block_truncate_page(fs, isize)
    yield "down_write(&EXT4_I(inode)->i_data_sem); ext4_ext_truncate(handle, inode)"
    free_blocks_from(fs, -(-fs.i_size.get() // bs))


@kernel_function("fs/xfs/xfs_iops.c", "3.13", dropped=0)
def xfs_setattr_size(fs, newsize):
    """``xfs_setattr_size()`` (3.13), i_mutex held by the caller (the XFS
    iolock is not modelled). Growing a file does not run ``xfs_zero_eof``
    here."""
    yield "oldsize = inode->i_size"
    oldsize = fs.i_size.get()
    yield from inode_dio_wait(fs)
    if fs.dax:
        error = yield from xip_truncate_page(fs, newsize, fs.flavour)
    else:
        error = yield from block_truncate_page(fs, newsize, fs.flavour)
    if error:
        return error
    yield from truncate_setsize(fs, newsize)
    if newsize <= oldsize:
        yield "xfs_itruncate_extents(&tp, ip, XFS_DATA_FORK, newsize)"
        free_blocks_from(fs, -(-newsize // fs.geo.block_size))
    return 0


def free_blocks_from(fs, first):
    """Unlink and free every block of the file from block ``first`` on."""
    for block in range(first, fs.geo.file_blocks):
        state, pblk = fs.i_blocks.get(block)
        if state != HOLE:
            fs.i_blocks.set(block, (HOLE, None))
            free_block(fs, pblk)


# -- partial-block zeroing --------------------------------------------------------------


def buffer_written(bh):
    """Patch 22: ``buffer_mapped(bh) && !buffer_unwritten(bh)``."""
    return bh.mapped and not bh.unwritten


def zero_units(fs, first_unit, start, length):
    """Zero the units wholly inside ``[start, start + length)`` bytes from
    device unit ``first_unit``. (A unit partly covered keeps its tag: the
    model cannot say half a unit.) The device is linear memory: a range past
    the block reaches the next device block; past the device, nothing."""
    us = fs.geo.unit_size
    for unit in range(first_unit + -(-start // us), first_unit + (start + length) // us):
        if 0 <= unit < len(fs.dev):
            fs.dev.set(unit, ZERO)


@kernel_function("fs/xip.c", "seed 002 patches 17, 22", dropped=0)
def xip_zero_page_range(fs, from_, length, get_block):
    """fs/xip.c ``xip_zero_page_range()`` (patch 17, patch 22's
    ``buffer_written``). Returns 0, an error, or, as posted, the positive
    length ``xip_get_addr()`` returned (see the module docstring)."""
    ps, bs = fs.geo.page_size, fs.geo.block_size
    index = from_ // ps
    offset = from_ % ps
    if not length:
        return 0  # "Block boundary? Nothing to do"
    bh = yield from get_block(fs, index * ps // bs, False)
    if bh is None:
        return ENOSPC
    if buffer_written(bh):
        err = min(bh.size, ps)  # err = xip_get_addr(inode, &bh, &addr): the bytes available
        if XIP_GET_ADDR_ERR_LT_0 not in fs.fixes and err:
            return err  # "if (err) return err;"
        yield "memset(addr + offset, 0, length)"
        zero_units(fs, bh.blocknr * fs.geo.units_per_block, offset, length)
    return 0


@kernel_function("fs/xip.c", "seed 002 patch 17", dropped=0)
def xip_truncate_page(fs, from_, get_block):
    """Patch 17's macro: ``xip_zero_page_range(inode, from,
    PAGE_CACHE_ALIGN(from) - from, get_block)``."""
    ps = fs.geo.page_size
    return (yield from xip_zero_page_range(fs, from_, (-from_) % ps, get_block))


@kernel_function("fs/buffer.c", "3.13", dropped=0)
def block_truncate_page(fs, from_, get_block):
    """``block_truncate_page()`` for a page-cache file: zero from ``from_`` to
    the end of its block if the block is mapped and written. Modelled on the
    device block (see the module docstring)."""
    bs = fs.geo.block_size
    length = (-from_) % bs
    if not length:
        return 0
    bh = yield from get_block(fs, from_ // bs, False)
    if bh is not None and buffer_written(bh):
        yield "zero_user(page, offset, length); mark_buffer_dirty(bh)"
        zero_units(fs, bh.blocknr * fs.geo.units_per_block, from_ % bs, length)
    return 0


@kernel_function("fs/ext4/inode.c", "3.13 with seed 002 patch 19", dropped=0)
def ext4_block_zero_page_range(fs, from_, length):
    """``ext4_block_zero_page_range()`` with patch 19: an XIP file goes to
    ``xip_zero_page_range(inode, from, length, ext4_get_block)``, without the
    clamp to the end of the block that ``__ext4_block_zero_page_range`` does
    for a page-cache file."""
    if fs.dax:
        return (yield from xip_zero_page_range(fs, from_, length, ext4_get_block))
    bs = fs.geo.block_size
    length = min(length, bs - from_ % bs)
    bh = yield from ext4_get_block(fs, from_ // bs, False)
    if bh is not None and buffer_written(bh):
        yield "zero_user(page, offset, length); mark_buffer_dirty(bh)"
        zero_units(fs, bh.blocknr * fs.geo.units_per_block, from_ % bs, length)
    return 0


@kernel_function("fs/ext4/inode.c", "3.13", dropped=0)
def ext4_block_truncate_page(fs, from_):
    """``ext4_block_truncate_page()``: zero from ``from`` to the end of its block."""
    bs = fs.geo.block_size
    return (yield from ext4_block_zero_page_range(fs, from_, bs - from_ % bs))


@kernel_function("fs/ext4/inode.c", "3.13", dropped=0)
def ext4_zero_partial_blocks(fs, lstart, length):
    """``ext4_zero_partial_blocks()`` (3.13)."""
    bs = fs.geo.block_size
    byte_end = lstart + length - 1
    partial_start = lstart % bs
    partial_end = byte_end % bs
    start, end = lstart // bs, byte_end // bs
    # Handle partial zero within the single block
    if start == end and (partial_start or partial_end != bs - 1):
        return (yield from ext4_block_zero_page_range(fs, lstart, length))
    # Handle partial zero out on the start of the range
    if partial_start:
        err = yield from ext4_block_zero_page_range(fs, lstart, bs)
        if err:
            return err
    # Handle partial zero out on the end of the range
    if partial_end != bs - 1:
        return (yield from ext4_block_zero_page_range(fs, byte_end - partial_end, partial_end + 1))
    return 0


# -- page cache and page tables ------------------------------------------------------------


@kernel_function("mm/truncate.c", "3.13")
def truncate_setsize(fs, newsize):
    """``truncate_setsize()``: ``i_size_write`` then ``truncate_pagecache``."""
    yield "i_size_write(inode, newsize)"
    fs.i_size.set(newsize)
    yield from truncate_pagecache(fs, newsize)


@kernel_function("mm/truncate.c", "3.13")
def truncate_pagecache(fs, newsize):
    """``truncate_pagecache()`` (3.13): unmap every page from the first page
    past ``newsize`` (private COW pages too), drop the cached pages, and unmap
    again for COWs made in between."""
    holebegin = fs.pages(newsize)
    yield from unmap_mapping_range(fs, holebegin)
    yield from truncate_inode_pages_range(fs, holebegin, None)
    yield from unmap_mapping_range(fs, holebegin)


@kernel_function("mm/truncate.c", "3.13")
def truncate_inode_pages_range(fs, first, last):
    """``truncate_inode_pages_range()``: each cached page in ``first..last``
    (to the end if None) is locked (``lock_page`` waits for a fault or a read
    that holds it), deleted from the page cache and unlocked."""
    yield "pagevec_lookup(&pvec, mapping, index, ...)"
    found = [i for i in fs.page_cache.keys() if i >= first and (last is None or i <= last)]
    for index in found:
        yield fs.page_lock[index].lock(f"lock_page(page {index})")
        fs.page_cache.delete(index)  # truncate_inode_page()
        fs.page_lock[index].unlock()


@kernel_function("mm/truncate.c", "3.13")
def truncate_pagecache_range(fs, lstart, lend):
    """``truncate_pagecache_range()`` (3.13): unmap the whole pages of
    ``[lstart, lend]`` (not private COW pages), then drop them from the cache."""
    ps = fs.geo.page_size
    first, last = -(-lstart // ps), (lend + 1) // ps - 1
    if last >= first:
        yield from unmap_mapping_range(fs, first, last, even_cows=False)
    yield from truncate_inode_pages_range(fs, first, last)


@kernel_function("mm/memory.c", "3.13")
def unmap_mapping_range(fs, first_page, last_page=None, even_cows=True, of_page=False):
    """Zap the user PTEs of pages ``first_page..last_page`` (to the end if
    None), under i_mmap_mutex. Without ``even_cows``, a private mapping's
    anonymous COW page stays. ``of_page``: called as ``xip_mkwrite`` does,
    with the hole page's ``page->mapping``, which is NULL once the page left
    the page cache (models/dax.py)."""
    if last_page == first_page:  # one page: look at its PTEs only
        yield fs.i_mmap_mutex.lock(f"unmap_mapping_range(mapping, page {first_page}): mutex_lock(i_mmap_mutex)")
        if of_page and not fs.page_cache.contains(first_page):
            fs.i_mmap_mutex.unlock()
            bug_on(True, f"xip_mkwrite: page {first_page} left the page cache during the fault: "
                         f"unmap_mapping_range(page->mapping = NULL, ...)")
        for ptes in fs.ptes.values():
            pte = ptes.get(first_page)
            if pte is not None and (even_cows or pte[0] != "anon"):
                ptes.delete(first_page)
        fs.i_mmap_mutex.unlock()
        return
    yield fs.i_mmap_mutex.lock("unmap_mapping_range: mutex_lock(i_mmap_mutex)")
    for ptes in fs.ptes.values():
        for index in ptes.keys():
            if index < first_page or (last_page is not None and index > last_page):
                continue
            if not even_cows and ptes.get(index)[0] == "anon":
                continue
            ptes.delete(index)
    fs.i_mmap_mutex.unlock()


# -- hole punch -------------------------------------------------------------------------------


@kernel_function("fs/ext4/inode.c", "3.13 with seed 002 patch 19", dropped=0)
def ext4_punch_hole(fs, offset, length):
    """``ext4_punch_hole()`` (3.13 with patch 19)."""
    bs, ps = fs.geo.block_size, fs.geo.page_size
    # (filemap_write_and_wait_range of dirty pages: nothing dirty is modelled)
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    ret = 0
    yield "if (offset >= inode->i_size) goto out_mutex"
    isize = fs.i_size.get()
    if offset < isize:
        # "If the hole extends beyond i_size, set the hole to end after the
        # page that contains i_size"
        if offset + length > isize:
            length = isize + ps - (isize & (ps - 1)) - offset
        first_block_offset = -(-offset // bs) * bs
        last_block_offset = (offset + length) // bs * bs - 1
        # "Now release the pages and zero block aligned part of pages"
        if last_block_offset > first_block_offset:
            yield from truncate_pagecache_range(fs, first_block_offset, last_block_offset)
        # "Wait all existing dio workers, newcomers will block on i_mutex"
        yield from inode_dio_wait(fs)
        ret = yield from ext4_zero_partial_blocks(fs, offset, length)
        first_block = -(-offset // bs)
        stop_block = (offset + length) // bs
        if not ret and first_block < stop_block:
            yield "down_write(&EXT4_I(inode)->i_data_sem); ext4_ext_remove_space(inode, first_block, stop_block - 1)"
            for block in range(first_block, min(stop_block, fs.geo.file_blocks)):
                state, pblk = fs.i_blocks.get(block)
                if state != HOLE:
                    fs.i_blocks.set(block, (HOLE, None))
                    free_block(fs, pblk)
            # "Now release the pages again to reduce race window"
            if last_block_offset > first_block_offset:
                yield from truncate_pagecache_range(fs, first_block_offset, last_block_offset)
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return ret


@operation("punch_hole", "fallocate(2) with FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: zero the partial "
                         "blocks, unmap and free the whole ones (ext4_punch_hole; ext2 has none: "
                         "-EOPNOTSUPP)",
           Param("offset", align="unit", help="file offset of the hole"),
           Param("len", align="unit", help="length of the hole"),
           flavours=lambda: ("ext2", "ext2-nozero", "ext4") + modelled_on(PUNCH_HOLE))
@kernel_function("fs/open.c", "3.13", name="vfs_fallocate")
def punch_hole(fs, ctx, offset, len):
    kind = fs_type(fs)
    if (kind, PUNCH_HOLE) in FALLOCATE:  # another filesystem's hole punch (models/fallocate.py)
        return (yield from FALLOCATE[(kind, PUNCH_HOLE)](fs, offset, len))
    if kind != "ext4":
        yield "->fallocate(FALLOC_FL_PUNCH_HOLE)"
        if kind == "ext2":
            return "-EOPNOTSUPP"
        raise NotImplementedError(f"punch_hole is modelled for ext4 (and ext2: -EOPNOTSUPP), not for {kind}")
    ret = yield from ext4_punch_hole(fs, offset, len)
    if ret < 0:
        return "-ENOSPC" if ret == ENOSPC else str(ret)
    return ret
