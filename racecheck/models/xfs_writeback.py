"""XFS page-cache writeback with its I/O in flight (4.1): ``PG_writeback``
from ``xfs_vm_writepage`` until the bio completes, the flusher's
``->writepages`` (the ``writepages`` operation), and the two waits that keep
``xfs_free_file_space`` from freeing a block under such a write.

``xfs_free_file_space`` (fs/xfs/xfs_bmap_util.c, 4.1; models/fault_exclusion.py)
writes the range back and waits for it (``filemap_write_and_wait_range``),
drops it from the page cache (``truncate_pagecache_range`` ->
``truncate_inode_pages_range``, which locks each page and waits for its
writeback) and only then frees the blocks (``xfs_bunmapi``). The flusher may
have put a page of the range under writeback before the punch: the page is
clean, so the write-out skips it, but both waits wait for it
(``filemap_fdatawait_range``, then ``wait_on_page_writeback`` in
``truncate_inode_pages_range``). Either wait alone keeps the block from being
freed under the bio; with both dropped it is freed
(``xfs_writeback_vs_punch_no_wait``).

Registered for ``kernel:`` 4.1 (and so picked at 4.5 and 5.15 too):

* :func:`xfs_vm_writepages_async` as ``xfs_vm_writepages``, the name
  models/fault_exclusion.py gives the write-out of ``xfs_free_file_space``
  and the shift (``filemap_write_and_wait_range``): mm/page-writeback.c's
  ``write_cache_pages`` (``WB_SYNC_ALL``: lock each dirty page, wait for its
  writeback, ``clear_page_dirty_for_io``, ``->writepage``), then
  mm/filemap.c's ``filemap_fdatawait_range``. The flusher (``writepages``)
  runs it with ``WB_SYNC_NONE``: a page under writeback is skipped, and
  there is no wait.
* :func:`xfs_vm_writepage` (fs/xfs/xfs_aops.c, 4.1) and
  :func:`xfs_submit_ioend` (with ``xfs_end_bio``): the page's mapped dirty
  buffer goes into a bio, ``set_page_writeback``, ``unlock_page``; the bio
  is submitted, then completes (two steps: in between it is in flight).
* :func:`filemap_write_and_wait_41` (``filemap_write_and_wait`` for 4.1):
  fsync's write-out of an XFS page-cache file is ``xfs_vm_writepages``
  (models/writeback.py's 4.4 release, and so dax_entry's 4.10, run it for a
  file without delayed allocation).
* ``truncate_inode_pages_range`` at 4.1: models/writeback.py's (its pass
  that locks each page, waits for its writeback and truncates it), which
  mm/truncate.c has had since long before 4.1; before, the seeds' 3.13
  model, which does not wait, ran at 4.1.

Left out: delayed allocation (``xfs_map_blocks``, ``xfs_iomap_write_allocate``:
a dirty buffer a write left is already mapped, to an unwritten extent when
the flavour's ``get_block`` allocated one, which the completion converts),
``xfs_cluster_write`` (each page its own bio), ioends of several pages, the ILOCK, the ``nr_to_write``
and ``range_cyclic`` bookkeeping; a page whose buffers are not mapped is
cleaned without I/O. Sources: not read against the v4.1 tag; written from
the structure of fs/xfs/xfs_aops.c and mm/page-writeback.c of the 4.x
releases.
"""

from __future__ import annotations

from .buffered import page_buffers, page_mkclean, set_buffer
from .extents import fs_type
from .fs import UNWRITTEN, WRITTEN
from .kernel import FUNCTIONS, RELEASES, kernel_function
from .registry import FS_SETUP
from .writeback import WRITEPAGES, PageDirty, PageWriteback, end_write_bio, wait_on_page_writeback

_seed_filemap_write_and_wait = FUNCTIONS["filemap_write_and_wait"].fn


def attach_xfs_writeback(fs):
    """``PG_writeback`` of the pages of an XFS page-cache file."""
    if not fs.dax and fs_type(fs) == "xfs" and not hasattr(fs, "page_writeback"):
        fs.page_writeback = fs.rt.map("PageWriteback")


FS_SETUP.append(attach_xfs_writeback)


@kernel_function("fs/xfs/xfs_aops.c", "v4.1", release="4.1")
def xfs_vm_writepage(fs, index):
    """``xfs_vm_writepage()`` (4.1), the page locked and its dirty bit
    cleared by the caller: the mapped dirty buffers go into a bio (the
    page's bytes as they are now), clean; ``set_page_writeback``;
    ``unlock_page``. Returns the bio ``(page, device block, units)``, or
    None (nothing mapped was dirty: no I/O). Runs within its caller's step."""
    bio = None
    for i, bh in enumerate(page_buffers(fs, index)):
        if bh.dirty:
            set_buffer(fs, index, i, dirty=False)
            if bh.mapped:
                bio = (index, bh.blocknr, fs.page_cache.get(index))
    if bio is not None:
        fs.page_writeback.set(index, True)  # xfs_start_page_writeback(): set_page_writeback(page)
    fs.page_lock[index].unlock()
    return bio


@kernel_function("fs/xfs/xfs_aops.c", "v4.1", release="4.1")
def xfs_submit_ioend(fs, bio):
    """``xfs_submit_ioend()`` -> ``submit_bio(WRITE, bio)``; its completion,
    ``xfs_end_bio()``: an ioend over an unwritten extent is converted
    (``xfs_end_io`` -> ``xfs_iomap_write_unwritten``), then
    ``xfs_destroy_ioend()`` -> ``end_page_writeback``: two steps, the I/O in
    flight to its block in between (the conversion, a work item in the
    kernel, is in the completion's step)."""
    index, pblk, _ = bio
    yield f"xfs_submit_ioend(wbc, ioend): submit_bio(WRITE, bio of page {index} -> block {pblk})"
    fs.ghost.in_flight[fs.rt.thread] = pblk
    yield (f"xfs_end_bio(bio): xfs_end_io(): xfs_iomap_write_unwritten() if unwritten; "
           f"xfs_destroy_ioend(ioend): end_page_writeback(page {index})")
    block = index * fs.geo.page_size // fs.geo.block_size
    if fs.i_blocks.get(block) == (UNWRITTEN, pblk):
        fs.i_blocks.set(block, (WRITTEN, pblk))
    end_write_bio(fs, bio)


@kernel_function("mm/page-writeback.c, fs/xfs/xfs_aops.c, mm/filemap.c", "v4.1", name="xfs_vm_writepages",
                 dropped=0, release="4.1")
def xfs_vm_writepages_async(fs, lstart, lend, sync=True):
    """``filemap_write_and_wait_range(mapping, lstart, lend)`` of an XFS
    page-cache file (``sync``), or the flusher's ``->writepages``:
    ``write_cache_pages``: for each dirty page of the range, lock it; a page
    gone or clean meanwhile is skipped; a page under writeback is waited for
    (``WB_SYNC_ALL``) or skipped (the flusher); ``clear_page_dirty_for_io``
    (``page_mkclean``) and ``xfs_vm_writepage``; its bio submitted. Then,
    with ``sync``, ``filemap_fdatawait_range``: wait for each page of the
    range under writeback."""
    ps = fs.geo.page_size
    first, last = lstart // ps, lend // ps
    caller = "filemap_write_and_wait_range(mapping, lstart, lend)" if sync else "do_writepages(mapping, wbc)"
    yield f"{caller}: write_cache_pages(mapping, wbc, __writepage, mapping): pagevec_lookup_tag(PAGECACHE_TAG_DIRTY)"
    for index in fs.page_buffers.keys():
        if not first <= index <= last or not PageDirty(fs, index):
            continue
        yield fs.page_lock[index].lock(f"lock_page(page {index}); xfs_vm_writepage(page, wbc)")
        if not fs.page_cache.contains(index) or not PageDirty(fs, index):
            fs.page_lock[index].unlock()
            continue
        if PageWriteback(fs, index):
            if not sync:  # WB_SYNC_NONE: "if (PageWriteback(page)) ... goto continue_unlock"
                fs.page_lock[index].unlock()
                continue
            yield from wait_on_page_writeback(fs, index)
        page_mkclean(fs, index)  # clear_page_dirty_for_io(page)
        bio = xfs_vm_writepage(fs, index)
        if bio is not None:
            yield from xfs_submit_ioend(fs, bio)
    if sync and getattr(fs, "page_writeback", None) is not None:
        # filemap_fdatawait_range(mapping, lstart, lend): no step when no page is under writeback
        for index in fs.page_writeback.keys():
            if first <= index <= last:
                yield from wait_on_page_writeback(fs, index)
    return 0


def xfs_flusher_writepages(fs):
    """The flusher's ``do_writepages()`` of an XFS page-cache file
    (``WB_SYNC_NONE``, the whole file), from kernel 4.1 on."""
    yield from xfs_vm_writepages_async(fs, 0, fs.geo.max_size - 1, sync=False)


WRITEPAGES["xfs"] = ("xfs_vm_writepages", xfs_flusher_writepages)


@kernel_function("mm/filemap.c", "v4.1", name="filemap_write_and_wait", dropped=0, release="4.1")
def filemap_write_and_wait_41(fs):
    """fsync's write-out, ``filemap_write_and_wait(mapping)`` (4.1): for an
    XFS page-cache file ``do_writepages`` -> ``xfs_vm_writepages`` of the
    whole file and the wait for it; any other file as the seeds' model
    writes it."""
    if fs.dax or fs_type(fs) != "xfs":
        return (yield from _seed_filemap_write_and_wait(fs))
    return (yield from xfs_vm_writepages_async(fs, 0, fs.geo.max_size - 1))

# truncate_inode_pages_range waits for writeback at 4.1 as at 4.4 (mm/truncate.c).
_truncate_wb = RELEASES["truncate_inode_pages_range"]["4.4"]
kernel_function(_truncate_wb.file, "v4.1 (as 4.4's)", name="truncate_inode_pages_range",
                release="4.1")(_truncate_wb.fn)
