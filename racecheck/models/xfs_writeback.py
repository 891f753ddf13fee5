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
  :func:`xfs_submit_ioend` (with ``xfs_end_bio`` and ``xfs_end_io``): a
  page past EOF is redirtied without I/O; the page's mapped uptodate
  buffer below EOF goes into a bio, ``set_page_writeback``,
  ``unlock_page``; the bio is submitted, then completes (in between it is
  in flight); an unwritten extent is converted by the work item after the
  bio completed, before ``end_page_writeback``.
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
``xfs_cluster_write`` (each page its own bio), ioends of several pages, the
ILOCK, the ``nr_to_write``, ``range_cyclic`` and ``XFS_ITRUNCATED``
bookkeeping, the on-disk size update of an appending ioend
(``xfs_setfilesize_ioend``: the model's XFS has no on-disk size apart from
``i_size``), ``WRITE_SYNC``, I/O errors; a page whose buffers are not
mapped is cleaned without I/O. The model keeps a page's dirty bit in its
buffers, so the buffer is cleaned with the page under the page lock, where
``xfs_start_buffer_writeback`` cleans it at submission; and the bio
carries the page as it was when it was unlocked (the kernel's DMA reads it
later; a store or write in between leaves the page dirty either way).

Sources: read against 4.1: fs/xfs/xfs_aops.c of v4.1 in the garghub/TROVON
repository (``dataset/codebase_cleansed/linux_kernel/v4.1/xfs_aops.c``, the
release file with its comments stripped; that repository's commit
0d6091af5d25) and of 4.1.15 in oxforever/linux-4.1 (commit b44644cc368c,
Makefile 4.1.15), whose mm/page-writeback.c (``write_cache_pages``),
mm/filemap.c (``filemap_fdatawait_range``) and mm/truncate.c
(``truncate_inode_pages_range``) were read too: docs/kernels/xfs_writeback.md.
"""

from __future__ import annotations

from .buffered import page_buffers, page_mkclean, set_buffer, zero_user
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
    cleared by the caller (``clear_page_dirty_for_io``; the model keeps the
    page's dirty bit in its buffers). Against ``i_size_read``: a page
    wholly past EOF (``page->index > end_index``, or at it with
    ``offset_into_page == 0``) is redirtied and unlocked, no I/O
    (``redirty_page_for_writepage``); the page that holds EOF is zeroed past
    it (``zero_user_segment``: whole units only). Then every buffer below
    EOF that is mapped and uptodate joins the ioend, dirty or not (the page
    was dirty); ``xfs_start_page_writeback(page, 1, count)``:
    ``set_page_writeback``, ``unlock_page``, and at once
    ``end_page_writeback`` when no buffer joined. Returns the bio ``(page,
    device block, units, unwritten)``, the units the page's as it is
    unlocked, or None (no I/O). Runs within its caller's step."""
    ps, us, bs = fs.geo.page_size, fs.geo.unit_size, fs.geo.block_size
    size = fs.i_size.get()
    end_index = size // ps
    if index > end_index or (index == end_index and size % ps == 0):
        fs.page_lock[index].unlock()  # redirty: redirty_page_for_writepage(wbc, page); unlock_page(page)
        return None
    end_offset = (index + 1) * ps
    if index == end_index:
        zero_user(fs, index, -(-(size % ps) // us) * us, ps)  # zero_user_segment(page, offset_into_page, PAGE_SIZE)
        end_offset = size
    bufs = page_buffers(fs, index)
    for i in range(len(bufs)):
        set_buffer(fs, index, i, dirty=False)  # the page's dirty bit, cleared by clear_page_dirty_for_io
    bio = None
    for i, bh in enumerate(bufs):
        if index * ps + i * bs >= end_offset:
            break
        if bh.mapped and bh.uptodate and bio is None:
            block = (index * ps + i * bs) // bs
            state = fs.i_blocks.get(block)
            unwritten = state is not None and state[0] == UNWRITTEN and state[1] == bh.blocknr
            bio = (index, bh.blocknr, fs.page_cache.get(index), unwritten)
    if bio is not None:
        fs.page_writeback.set(index, True)  # xfs_start_page_writeback(page, 1, count): set_page_writeback(page)
    # with count == 0: set_page_writeback, unlock_page, end_page_writeback: nothing left set
    fs.page_lock[index].unlock()
    return bio


@kernel_function("fs/xfs/xfs_aops.c", "v4.1", release="4.1")
def xfs_submit_ioend(fs, bio):
    """``xfs_submit_ioend()``: ``xfs_start_buffer_writeback`` and
    ``submit_bio`` of the ioend's bio; then its completion, ``xfs_end_bio``
    -> ``xfs_finish_ioend``: an ioend of an overwrite is destroyed there
    (``xfs_destroy_ioend`` -> ``end_page_writeback``, one step); an ioend of
    an unwritten extent is queued to the unwritten workqueue, and
    ``xfs_end_io`` converts the file's extent
    (``xfs_iomap_write_unwritten``), then ``xfs_destroy_ioend``: a step of
    its own, after the data reached the block. The I/O is in flight between
    the submission and the bio's completion; the work item runs in the
    submitting thread."""
    index, pblk, units, unwritten = bio
    yield (f"xfs_submit_ioend(wbc, ioend, 0): xfs_start_buffer_writeback(bh); "
           f"submit_bio(WRITE, bio of page {index} -> block {pblk})")
    fs.ghost.in_flight[fs.rt.thread] = pblk
    if not unwritten:
        yield (f"xfs_end_bio(bio): xfs_finish_ioend(ioend): xfs_destroy_ioend(ioend): "
               f"end_page_writeback(page {index})")
        end_write_bio(fs, (index, pblk, units))
        return
    yield "xfs_end_bio(bio): xfs_finish_ioend(ioend): queue_work(mp->m_unwritten_workqueue, &ioend->io_work)"
    upb = fs.geo.units_per_block
    for u in range(upb):
        fs.dev.set(pblk * upb + u, units[u])
    fs.ghost.in_flight.pop(fs.rt.thread, None)
    yield (f"xfs_end_io(work): xfs_iomap_write_unwritten(ip, ioend->io_offset, ioend->io_size); "
           f"xfs_destroy_ioend(ioend): end_page_writeback(page {index})")
    block = index * fs.geo.page_size // fs.geo.block_size
    state = fs.i_blocks.get(block)
    if state is not None and state[0] == UNWRITTEN:  # XFS_BMAPI_CONVERT of what the file has there now
        fs.i_blocks.set(block, (WRITTEN, state[1]))
    fs.page_writeback.delete(index)


@kernel_function("mm/page-writeback.c, fs/xfs/xfs_aops.c, mm/filemap.c", "v4.1", name="xfs_vm_writepages",
                 dropped=0, release="4.1")
def xfs_vm_writepages_async(fs, lstart, lend, sync=True):
    """``filemap_write_and_wait_range(mapping, lstart, lend)`` of an XFS
    page-cache file (``sync``: ``WB_SYNC_ALL``), or the flusher's
    ``->writepages`` (``WB_SYNC_NONE``): ``xfs_vm_writepages`` ->
    ``generic_writepages`` -> ``write_cache_pages``: the dirty pages of the
    range are looked up at once (``tag_pages_for_writeback`` and the
    ``PAGECACHE_TAG_TOWRITE`` lookup, or the ``PAGECACHE_TAG_DIRTY`` one: a
    page dirtied later is not in this pass); for each, ``lock_page``; a
    page gone (``page->mapping != mapping``) or clean meanwhile is skipped;
    a page under writeback is waited for (``WB_SYNC_ALL``) or skipped;
    ``clear_page_dirty_for_io`` (``page_mkclean``) and
    ``xfs_vm_writepage``, which submits its ioend. Then, with ``sync``,
    ``filemap_fdatawait_range``: the pages of the range under writeback
    are looked up at once and waited for in turn."""
    ps = fs.geo.page_size
    first, last = lstart // ps, lend // ps
    caller = "filemap_write_and_wait_range(mapping, lstart, lend)" if sync else "do_writepages(mapping, wbc)"
    yield f"{caller}: write_cache_pages(mapping, wbc, __writepage, mapping): pagevec_lookup_tag(PAGECACHE_TAG_DIRTY)"
    tagged = [index for index in fs.page_buffers.keys() if first <= index <= last and PageDirty(fs, index)]
    for index in tagged:
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
        for index in [i for i in fs.page_writeback.keys() if first <= i <= last]:
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
