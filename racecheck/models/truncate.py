"""Truncate: ``ext2_setsize()`` (seed 002, patch 06), with the XIP partial-page
zeroing, ``truncate_setsize()`` and the freeing of blocks.
"""

from __future__ import annotations

from .fs import HOLE, ZERO
from .get_block import free_block
from ..runtime import wait_until


def ext2_setsize(fs, newsize):
    """truncate(2) on an XIP file: called with i_mutex held by the caller."""
    rt = fs.rt
    yield wait_until(rt, lambda: fs.i_dio_count.get() == 0, "inode_dio_wait(inode)")
    yield from xip_truncate_page(fs, newsize)
    yield from truncate_setsize(fs, newsize)
    yield from ext2_truncate_blocks(fs, newsize)
    return 0


def xip_truncate_page(fs, from_):
    """Zero the tail of the page that holds the new EOF (patch 08)."""
    ps = fs.geo.page_size
    length = (-from_) % ps
    if not length:
        return  # page boundary: nothing to do
    bh = yield from fs.flavour(fs, from_ // fs.geo.block_size, False)
    if bh is not None and bh.mapped:
        yield "memset(addr + offset, 0, length)"
        first = bh.blocknr * fs.geo.units_per_block
        start = (from_ % fs.geo.block_size + fs.geo.unit_size - 1) // fs.geo.unit_size
        for unit in range(first + start, first + fs.geo.units_per_block):
            fs.dev.set(unit, ZERO)


def truncate_setsize(fs, newsize):
    yield "i_size_write(inode, newsize)"
    fs.i_size.set(newsize)
    yield from unmap_mapping_range(fs, fs.pages(newsize))
    yield "truncate_inode_pages(mapping, newsize)"
    for index in fs.page_cache.keys():
        if index >= fs.pages(newsize):
            fs.page_cache.delete(index)


def unmap_mapping_range(fs, first_page):
    """Zap every user PTE at or beyond ``first_page``, under i_mmap_mutex."""
    yield fs.i_mmap_mutex.lock()
    for ptes in fs.ptes.values():
        for index in ptes.keys():
            if index >= first_page:
                ptes.delete(index)
    fs.i_mmap_mutex.unlock()


def ext2_truncate_blocks(fs, newsize):
    """__ext2_truncate_blocks(): unlink and free every block past the new EOF."""
    yield "__ext2_truncate_blocks(inode, newsize)"
    bs = fs.geo.block_size
    first = (newsize + bs - 1) // bs
    for block in range(first, fs.geo.file_blocks):
        state, pblk = fs.i_blocks.get(block)
        if state != HOLE:
            fs.i_blocks.set(block, (HOLE, None))
            free_block(fs, pblk)
