"""ext4's delayed allocation and page-cache writeback (4.4 and 4.7), and
writeback against truncate and hole punch.

A scenario that says ``kernel: "4.4"`` (or later) runs, for a page-cache
ext4 file (``filesystem: ext4`` or the journalled ``ext4-dax`` with
``file.dax: false``), the functions below in place of the seeds' ones of the
same name; without the key nothing here runs and the seeds' paths are as
they were.

Mirrored code:

* :func:`generic_perform_write` (registered as ``generic_file_buffered_write``,
  the name the seeds' ``buffered_write`` calls): mm/filemap.c of v4.4,
  ``generic_perform_write()``: per page ``->write_begin``, the copy
  (``iov_iter_copy_from_user_atomic``), ``->write_end``; a zero-length
  copy is retried. For an ext4 page-cache file the a_ops are
  ``ext4_da_aops``; other files run the seeds' path.
* :func:`ext4_da_write_begin`, :func:`ext4_da_write_end`,
  :func:`ext4_da_get_block_prep`: fs/ext4/inode.c of v4.4. No block is
  allocated at write time: ``ext4_da_map_blocks`` reserves one and inserts a
  delayed extent, and the buffer is mapped to no block, ``BH_New`` and
  ``BH_Delay`` (``fs.bh_delay``). ``ext4_da_write_end`` moves ``i_disksize``
  only when the buffer at the end of the write is mapped to a real block
  (``ext4_da_should_update_i_disksize``); ``generic_write_end`` moves
  ``i_size``.
* :func:`block_write_begin` (``__block_write_begin``) and
  :func:`block_commit_write` (``__block_commit_write``): fs/buffer.c of v4.4
  (the latter clears ``BH_New``, since 2.6.24).
* :func:`ext4_writepages`, :func:`mpage_prepare_extent_to_map`,
  :func:`mpage_map_and_submit_extent`: fs/ext4/inode.c of v4.4 (read against
  4.4.1, docs/kernels/writeback.md), the delalloc
  writeback: under a handle, lock the dirty pages, gather the delayed
  buffers into an extent, allocate it (``ext4_map_blocks`` with
  ``EXT4_GET_BLOCKS_CREATE``), put each page under writeback
  (``ext4_bio_write_page``: ``set_page_writeback``, the page holding EOF
  zeroed past it, ``unlock_page``), then
  ``i_disksize = min(first_page << PAGE_SHIFT, i_size)`` under ``i_data_sem``,
  stop the handle, submit the bios (``ext4_io_submit``); their completion
  (``ext4_end_bio``) writes the device and ends the page's writeback.
* :func:`ext4_map_blocks_ordered` (registered as ``ext4_map_blocks`` for
  4.7): commit 06bd3c36a733 "ext4: fix data exposure after a crash" (Jan
  Kara, v4.7-rc1): a newly allocated written extent files the inode on the
  running transaction's ordered list (``ext4_jbd2_file_inode``). f3b59291a69d
  (3.8) had removed that call from the delalloc path; from 3.8 to 4.6 the
  transaction that links a block written back by ``ext4_writepages`` can
  commit before the block's data reaches the disk.
* :func:`jbd2_journal_commit_transaction` (registered as
  ``journal_commit_transaction`` for 4.4): fs/jbd2/commit.c of v4.4: as the
  seeds' commit, plus the ordered inodes: ``journal_finish_inode_data_buffers``
  waits for their pages under writeback before the commit record; the
  committed size is ``i_disksize``.
* :func:`truncate_inode_pages_range_wb` (``truncate_inode_pages_range`` for
  4.4): mm/truncate.c of v4.4: each page is locked, ``wait_on_page_writeback``,
  then ``truncate_inode_page`` (``ext4_da_invalidatepage`` drops the delayed
  buffers and their reservation).
* :func:`ext4_setattr_disksize` (``ext4_setattr`` for 4.4): ``i_disksize``
  and ``i_size`` set together under ``i_data_sem`` in a handle (commit
  90e775b71ac4, 3.12), ``inode_dio_wait`` for an orphan, ``truncate_pagecache``,
  ``ext4_truncate``.
* :func:`ext4_punch_hole_wb` (``ext4_punch_hole`` for 4.4): the write-out of
  dirty pages of the range before ``i_mutex`` (``filemap_write_and_wait_range``,
  in ext4's hole punch since 3.0), then the seeds' 3.13 body.
* :func:`filemap_write_and_wait_range`, :func:`filemap_write_and_wait_wb`
  (``filemap_write_and_wait`` for 4.4, fsync's), :func:`wait_on_page_writeback`:
  mm/filemap.c and include/linux/pagemap.h of v4.4.

Not modelled: the extent status tree beyond the delayed flag, the
reservation counters (a reservation never fails), ``wait_for_stable_page``
(the device needs no stable pages), ``ext4_begin_ordered_truncate``, the
first (trylock) pass of ``truncate_inode_pages_range``, dioread_nolock, bios
of several pages (each page is its own bio, submitted and completed in turn),
``ext4_writepage`` from the commit's ``journal_submit_data_buffers`` (the wait
for pages under writeback is modelled, the write of dirty mapped pages is
not), and 011278485ecc "ext4: fix races of writeback with punch hole and zero
range" (v4.5, ``ext4_update_disksize_before_punch``), whose effect (an
on-disk size that never grows over a punched tail) no invariant looks at.
A page is one block (racecheck's geometry).
"""

from __future__ import annotations

from ..runtime import wait_until
from . import ext4_fault  # noqa: F401  (the seeds' ext4_writepages first: ours is its later release)
from .buffered import (
    PageUptodate,
    SetPageUptodate,
    add_to_page_cache,
    create_empty_buffers,
    page_buffers,
    page_mkclean,
    page_zero_new_buffers,
    read_block_into_page,
    set_buffer,
    set_page_units,
    zero_user,
)
from .extents import EXT4_GET_BLOCKS_CREATE, ext4_map_blocks, fs_type
from .fs import HOLE, STALE, UNWRITTEN, data
from .get_block import BufferHead
from .journal import T_LOCKED, T_RUNNING, OnDisk, jbd2_journal_wait_updates, journal_start, journal_stop, write_buffer
from .kernel import FUNCTIONS, RELEASES, kernel_function
from .registry import FS_SETUP, operation
from .truncate import ext4_truncate, inode_dio_wait, truncate_pagecache

# The seeds' models of the functions registered here for later releases: a
# file they do not concern runs them unchanged (bound by name, so that the
# calls they make count as ours for ``racecheck list functions`` and edits).
_seed_generic_file_buffered_write = FUNCTIONS["generic_file_buffered_write"].fn
_seed_ext4_writepages = FUNCTIONS["ext4_writepages"].fn
_seed_filemap_write_and_wait = FUNCTIONS["filemap_write_and_wait"].fn
_seed_ext4_map_blocks = FUNCTIONS["ext4_map_blocks"].fn
_seed_ext4_punch_hole = FUNCTIONS["ext4_punch_hole"].fn

DELAY = "delay"  # BH_Delay: a reservation, no block yet
UNWRITTEN_BH = "unwritten"  # BH_Unwritten: a block that reads as zeros until converted


# -- state ------------------------------------------------------------------------------------


def attach_writeback(fs):
    """The state delalloc and writeback add for an ext4 page-cache file:
    ``i_disksize``, each file block's ``BH_Delay``/``BH_Unwritten`` (the
    delayed extent of the status tree), PG_writeback, and the running
    transaction's ordered inode list (our inode on it or not)."""
    if fs.dax or fs_type(fs) != "ext4":
        return
    rt = fs.rt
    fs.i_disksize = rt.var("i_disksize", fs.i_size.value)
    fs.bh_delay = rt.map("BH_Delay")
    fs.page_writeback = rt.map("PageWriteback")
    if getattr(fs, "journal", None) is not None:
        fs.t_inode_list = rt.var("transaction.t_inode_list", False)


FS_SETUP.append(attach_writeback)


def delalloc(fs):
    """The file is an ext4 page-cache file (delayed allocation, data=ordered)."""
    return hasattr(fs, "bh_delay")


def journalled(fs):
    return getattr(fs, "journal", None) is not None


def PageWriteback(fs, index):
    pw = getattr(fs, "page_writeback", None)
    return pw is not None and bool(pw.get(index, False))


def PageDirty(fs, index):
    return any(b.dirty for b in page_buffers(fs, index))


# -- the write: ext4_da_aops ----------------------------------------------------------------------


@kernel_function("fs/ext4/inode.c", "v4.4", release="4.4")
def ext4_da_get_block_prep(fs, block, create):
    """``ext4_da_get_block_prep()`` -> ``ext4_da_map_blocks()`` (v4.4): a
    delayed extent already there is mapped to no block (``map_bh(bh,
    invalid_block)``, new, delay); otherwise the extent tree is looked up
    under ``down_read(i_data_sem)``: a written block is mapped, an unwritten
    one is mapped new and unwritten, a hole gets a reservation
    (``ext4_da_reserve_space``) and a delayed extent. One step: the lookup
    and the reservation are under ``i_data_sem``."""
    yield (f"ext4_da_map_blocks(block {block}): ext4_es_lookup_extent(); down_read(&EXT4_I(inode)->i_data_sem); "
           f"ext4_ext_map_blocks(NULL, inode, map, 0)")
    size = fs.geo.block_size
    if fs.bh_delay.get(block) == DELAY:
        return BufferHead(mapped=True, new=True, blocknr=None, size=size)
    state, pblk = fs.i_blocks.get(block)
    if state == HOLE:
        # ext4_da_reserve_space(inode); ext4_es_insert_extent(..., EXTENT_STATUS_DELAYED);
        # map_bh(bh, inode->i_sb, invalid_block); set_buffer_new(bh); set_buffer_delay(bh)
        fs.bh_delay.set(block, DELAY)
        return BufferHead(mapped=True, new=True, blocknr=None, size=size)
    if state == UNWRITTEN:
        # "A delayed write to unwritten bh should be marked new and mapped."
        fs.bh_delay.set(block, UNWRITTEN_BH)
        return BufferHead(mapped=True, new=True, unwritten=True, blocknr=pblk, size=size)
    return BufferHead(mapped=True, blocknr=pblk, size=size)


@kernel_function("fs/buffer.c", "v4.4", name="__block_write_begin", dropped=0, release="4.4")
def block_write_begin(fs, index, from_, to, get_block):
    """``__block_write_begin(page, pos, len, get_block)`` (v4.4), page locked:
    map the buffers under [from, to) that are not mapped; a new one is zeroed
    outside the range (or made uptodate if the page is); a mapped buffer that
    is not uptodate, not delayed and not unwritten is read when the write
    covers it partly."""
    bs = fs.geo.block_size
    bufs = create_empty_buffers(fs, index)
    for i in range(len(bufs)):
        bh = page_buffers(fs, index)[i]
        block = index * (fs.geo.page_size // bs) + i
        block_start, block_end = i * bs, (i + 1) * bs
        if block_end <= from_ or block_start >= to:
            if PageUptodate(fs, index) and not bh.uptodate:
                set_buffer(fs, index, i, uptodate=True)
            continue
        if bh.new:
            bh = set_buffer(fs, index, i, new=False)  # clear_buffer_new(bh)
        if not bh.mapped:
            got = yield from get_block(fs, block, True)  # err = get_block(inode, block, bh, 1)
            if got is None:
                return -28
            bh = set_buffer(fs, index, i, mapped=True, new=got.new, blocknr=got.blocknr)
            if bh.new:
                if PageUptodate(fs, index):
                    set_buffer(fs, index, i, new=False, uptodate=True, dirty=True)
                    continue
                if block_end > to or block_start < from_:
                    yield "zero_user_segments(page, to, block_end, block_start, from)"
                    zero_user(fs, index, to, block_end)
                    zero_user(fs, index, block_start, from_)
                continue
        if PageUptodate(fs, index):
            if not bh.uptodate:
                set_buffer(fs, index, i, uptodate=True)
            continue
        if (not bh.uptodate and fs.bh_delay.get(block) is None
                and (block_start < from_ or block_end > to)):
            yield "ll_rw_block(READ, 1, &bh); wait_on_buffer(bh)"
            read_block_into_page(fs, index, i, bh)
            set_buffer(fs, index, i, uptodate=True)
    return 0


@kernel_function("fs/ext4/inode.c", "v4.4", dropped=0, release="4.4")
def ext4_da_write_begin(fs, pos, len_):
    """``ext4_da_write_begin()`` (v4.4): grab the page (and unlock it) before
    starting the handle, start it, lock the page again (retry if truncate
    took it meanwhile), then ``__block_write_begin(page, pos, len,
    ext4_da_get_block_prep)``. Returns with the page locked and the handle
    open."""
    ps = fs.geo.page_size
    index, from_ = divmod(pos, ps)
    while True:
        # retry_grab:
        yield fs.page_lock[index].lock(f"page = grab_cache_page_write_begin(mapping, {index}, flags); "
                                       f"unlock_page(page)")
        if not fs.page_cache.contains(index):
            add_to_page_cache(fs, index)
        fs.page_lock[index].unlock()
        if journalled(fs):
            yield from journal_start(fs, "handle = ext4_journal_start(inode, EXT4_HT_WRITE_PAGE, "
                                         "ext4_da_write_credits(inode, pos, len))")
        yield fs.page_lock[index].lock(f"lock_page(page {index})")
        if fs.page_cache.contains(index):
            break
        # "The page got truncated from under us"
        fs.page_lock[index].unlock()
        if journalled(fs):
            journal_stop(fs)
    ret = yield from block_write_begin(fs, index, from_, from_ + len_, ext4_da_get_block_prep)
    if ret < 0:
        yield "unlock_page(page); ext4_journal_stop(handle)"
        fs.page_lock[index].unlock()
        if journalled(fs):
            journal_stop(fs)
    return ret


@kernel_function("fs/ext4/inode.c", "v4.4", dropped=False, release="4.4")
def ext4_da_should_update_i_disksize(fs, index, offset):
    """``ext4_da_should_update_i_disksize(page, offset)``: the buffer holding
    ``offset`` is mapped to a block (not delayed, not unwritten)."""
    bs = fs.geo.block_size
    i = offset // bs
    bh = page_buffers(fs, index)[i]
    block = index * (fs.geo.page_size // bs) + i
    return bh.mapped and fs.bh_delay.get(block) is None


@kernel_function("fs/ext4/ext4.h", "v4.4", release="4.4")
def ext4_update_i_disksize(fs, newsize):
    """``ext4_update_i_disksize()``: under ``i_data_sem``, ``if (newsize >
    EXT4_I(inode)->i_disksize) EXT4_I(inode)->i_disksize = newsize``."""
    if newsize > fs.i_disksize.get():
        fs.i_disksize.set(newsize)


@kernel_function("fs/buffer.c", "v4.4", name="__block_commit_write", release="4.4")
def block_commit_write(fs, index, from_, to):
    """``__block_commit_write()`` (v4.4): the buffers over [from, to) become
    uptodate and dirty, ``BH_New`` is cleared on all, and the page is uptodate
    when no buffer outside the range is left not uptodate."""
    bs = fs.geo.block_size
    partial = False
    for i, bh in enumerate(page_buffers(fs, index)):
        block_start, block_end = i * bs, (i + 1) * bs
        if block_end <= from_ or block_start >= to:
            if not bh.uptodate:
                partial = True
        else:
            bh = set_buffer(fs, index, i, uptodate=True, dirty=True)  # mark_buffer_dirty(bh)
        if bh.new:
            set_buffer(fs, index, i, new=False)  # clear_buffer_new(bh)
    if not partial:
        SetPageUptodate(fs, index)


@kernel_function("fs/ext4/inode.c", "v4.4", dropped=0, release="4.4")
def ext4_da_write_end(fs, pos, len_, copied):
    """``ext4_da_write_end()`` (v4.4), page locked, handle open:
    ``i_disksize`` follows the write only if its last buffer has a block;
    then ``generic_write_end()`` (``block_write_end``: a short copy into a
    page that is not uptodate commits nothing; ``i_size_write``;
    ``unlock_page``) and ``ext4_journal_stop()``. Returns the bytes
    committed."""
    ps = fs.geo.page_size
    index, start = divmod(pos, ps)
    yield ("ext4_da_write_end(): if (copied && new_i_size > EXT4_I(inode)->i_disksize && "
           "ext4_da_should_update_i_disksize(page, end)) ext4_update_i_disksize(inode, new_i_size); "
           "generic_write_end(): block_write_end(); if (pos + copied > inode->i_size) i_size_write()")
    new_i_size = pos + copied
    if copied and new_i_size > fs.i_disksize.get():
        if ext4_da_should_update_i_disksize(fs, index, start + copied - 1):
            ext4_update_i_disksize(fs, new_i_size)  # ext4_mark_inode_dirty(handle, inode)
    # block_write_end()
    if copied < len_:
        if not PageUptodate(fs, index):
            copied = 0
        page_zero_new_buffers(fs, index, start + copied, start + len_)
    block_commit_write(fs, index, start, start + copied)
    if pos + copied > fs.i_size.get():
        fs.i_size.set(pos + copied)
    yield "unlock_page(page); mark_inode_dirty(inode); ext4_journal_stop(handle)"
    fs.page_lock[index].unlock()
    if journalled(fs):
        journal_stop(fs)
    return copied


@kernel_function("mm/filemap.c", "v4.4 (generic_perform_write)", name="generic_file_buffered_write",
                 dropped=(0, 0), release="4.4")
def generic_perform_write(fs, ctx, pos, count, short_copy=None):
    """mm/filemap.c ``generic_perform_write()`` (v4.4), i_mutex held by the
    caller: per page ``->write_begin``, ``iov_iter_copy_from_user_atomic``,
    ``->write_end``; a copy that got nothing is retried once the user page
    is faulted in. An ext4 page-cache file has ``ext4_da_aops``; any other
    file runs the seeds' ``generic_file_buffered_write``. Returns (status,
    bytes written)."""
    if not delalloc(fs):
        return (yield from _seed_generic_file_buffered_write(fs, ctx, pos, count, short_copy))
    ps = fs.geo.page_size
    tag = data(ctx.thread, ctx.seq)
    fault_at = short_copy if short_copy is not None and short_copy < count else None
    written, status = 0, 0
    while count:
        offset = pos % ps
        index = pos // ps
        bytes_ = min(ps - offset, count)
        status = yield from ext4_da_write_begin(fs, pos, bytes_)
        if status < 0:
            break
        yield f"copied = iov_iter_copy_from_user_atomic(page, i, {offset}, {bytes_})"
        copied = bytes_
        if fault_at is not None and written + bytes_ > fault_at:
            copied = fault_at - written
            fault_at = None  # iov_iter_fault_in_readable() of the retry brings the page in
        set_page_units(fs, index, offset, offset + copied, lambda u: tag)
        status = yield from ext4_da_write_end(fs, pos, bytes_, copied)
        if status < 0:
            break
        copied = status
        written += copied
        count -= copied
        pos += copied
    return (status if status < 0 else 0), written


# -- writeback -----------------------------------------------------------------------------------


@kernel_function("include/linux/pagemap.h", "v4.4", release="4.4")
def wait_on_page_writeback(fs, index):
    """``wait_on_page_writeback(page)``: ``if (PageWriteback(page))
    wait_on_page_bit(page, PG_writeback)``."""
    if PageWriteback(fs, index):
        yield wait_until(fs.rt, lambda: not fs.page_writeback.get(index, False),
                         f"wait_on_page_writeback(page {index})")


@kernel_function("fs/ext4/inode.c", "v4.4", dropped=((), (), ()), release="4.4")
def mpage_prepare_extent_to_map(fs, first, last):
    """``mpage_prepare_extent_to_map()`` (v4.4): look the dirty pages of
    [first, last] up, lock each in turn and skip it if it is no longer dirty
    or no longer in the page cache; a page whose buffer is delayed or
    unwritten joins the extent to map (while it stays contiguous); a page
    already mapped is submitted at once if the extent is still empty
    (``mpage_submit_page``); a page past EOF is submitted (cleaned without
    I/O) and ends the scan (``mpage_process_page_bufs`` returns ``lblk <
    blocks``). A page that cannot join a started extent stays locked until
    ``ext4_writepages`` lets it go (``mpage_release_unused_pages``) after the
    extent's bios are submitted. Returns (the locked pages of the extent,
    the bios already prepared, the other pages left locked)."""
    bs = fs.geo.block_size
    yield "pagevec_lookup_tag(&pvec, mapping, &index, PAGECACHE_TAG_DIRTY, ...)"
    found = [i for i in fs.page_buffers.keys()
             if i >= first and (last is None or i <= last) and PageDirty(fs, i)]
    extent, bios = [], []
    for index in found:
        # "If we can't merge this page, we are done."
        if extent and extent[-1] + 1 != index:
            break
        yield fs.page_lock[index].lock(f"lock_page(page {index})")
        if not PageDirty(fs, index) or not fs.page_cache.contains(index):
            fs.page_lock[index].unlock()
            continue
        yield from wait_on_page_writeback(fs, index)
        # mpage_process_page_bufs(): blocks = DIV_ROUND_UP(i_size_read(inode), blocksize)
        blocks = -(-fs.i_size.get() // bs)
        needs_map = fs.bh_delay.get(index) is not None
        if index < blocks and needs_map:
            extent.append(index)  # mpage_add_bh_to_extent()
            continue
        if extent:
            # "Found extent to map?": this page waits, locked, for the next round.
            return tuple(extent), tuple(bios), (index,)
        # "So far everything mapped? Submit the page for IO."
        bio = ext4_bio_write_page(fs, index, beyond_eof=index >= blocks)
        if bio is not None:
            bios.append(bio)
        if index >= blocks:
            break  # "return lblk < blocks": the scan stops at EOF
    return tuple(extent), tuple(bios), ()


@kernel_function("fs/ext4/page-io.c", "v4.4", release="4.4")
def ext4_bio_write_page(fs, index, beyond_eof=False):
    """``mpage_submit_page()`` -> ``clear_page_dirty_for_io(page)`` (its
    ``page_mkclean``: the page's writable PTEs become read-only);
    ``ext4_bio_write_page()`` (v4.4): ``set_page_writeback(page)``; the page
    that holds EOF is zeroed past it first (``len = size & ~PAGE_MASK``;
    ``zero_user_segment(page, len, PAGE_SIZE)``: whole units only); the
    mapped buffers go into the bio (the page's bytes as they are now, which
    the device gets when the bio completes) and are clean, ``unlock_page``.
    Past EOF, or with nothing mapped, the page is cleaned and its writeback
    ends at once. Returns the bio ``(page, device block, units)`` or None."""
    page_mkclean(fs, index)  # clear_page_dirty_for_io(page)
    ps, us = fs.geo.page_size, fs.geo.unit_size
    size = fs.i_size.get()
    if index == size // ps and fs.page_cache.contains(index):
        zero_user(fs, index, -(-(size % ps) // us) * us, ps)
    bufs = page_buffers(fs, index)
    bio = None
    for i, bh in enumerate(bufs):
        if beyond_eof or not bh.dirty or bh.blocknr is None or fs.bh_delay.get(index) is not None:
            if beyond_eof or not bh.mapped:
                set_buffer(fs, index, i, dirty=False)  # "A hole? We can safely clear the dirty bit"
            continue
        set_buffer(fs, index, i, dirty=False)  # clear_buffer_dirty(bh); set_buffer_async_write(bh)
        bio = (index, bh.blocknr, fs.page_cache.get(index))
    if bio is not None:
        fs.page_writeback.set(index, True)  # set_page_writeback(page)
    fs.page_lock[index].unlock()  # unlock_page(page)
    return bio


@kernel_function("fs/ext4/inode.c", "v4.4", dropped=((), True), release="4.4")
def mpage_map_and_submit_extent(fs, extent):
    """``mpage_map_and_submit_extent()`` (v4.4), under the writeback's
    handle: ``mpage_map_one_extent()`` allocates the extent's blocks
    (``ext4_map_blocks(handle, inode, map, EXT4_GET_BLOCKS_CREATE | ...)``),
    ``mpage_map_and_submit_buffers()`` maps each page's buffer to its block
    (clearing BH_Delay) and submits the page; then "Update on-disk size after
    IO is submitted": ``i_disksize = min(first_page << PAGE_SHIFT, i_size)``
    under ``i_data_sem``. Returns (the bios, whether every block was mapped);
    on ENOSPC the pages not mapped stay dirty (the caller unlocks them)."""
    ps = fs.geo.page_size
    mapped = []
    for block in extent:
        bh = yield from ext4_map_blocks(fs, block, EXT4_GET_BLOCKS_CREATE)
        if bh is None:
            break
        mapped.append((block, bh.blocknr))
    bios = []
    if mapped:
        yield "mpage_map_and_submit_buffers(mpd): map the buffers; mpage_submit_page() each page"
        for index, pblk in mapped:
            fs.bh_delay.delete(index)  # clear_buffer_delay(bh); clear_buffer_unwritten(bh)
            set_buffer(fs, index, 0, mapped=True, new=False, blocknr=pblk)
            bio = ext4_bio_write_page(fs, index)
            if bio is not None:
                bios.append(bio)
        first_page = mapped[-1][0] + 1  # mpd->first_page after the pages submitted
        disksize = first_page * ps
        yield ("disksize = mpd->first_page << PAGE_SHIFT; down_write(&EXT4_I(inode)->i_data_sem); "
               "if (disksize > i_size_read(inode)) disksize = i_size; if (disksize > i_disksize) "
               "EXT4_I(inode)->i_disksize = disksize; ext4_mark_inode_dirty(); up_write()")
        if disksize > fs.i_disksize.get():
            disksize = min(disksize, fs.i_size.get())
            if disksize > fs.i_disksize.get():
                fs.i_disksize.set(disksize)
    return tuple(bios), len(mapped) == len(extent)


@kernel_function("fs/ext4/page-io.c", "v4.4", release="4.4")
def ext4_io_submit(fs, bio):
    """``ext4_io_submit()`` -> ``submit_bio(WRITE, bio)``, and the bio's
    completion ``ext4_end_bio()`` -> ``end_page_writeback(page)``: two
    steps; in between the I/O is in flight to its block."""
    index, pblk, units = bio
    yield f"ext4_io_submit(&mpd.io_submit): submit_bio(WRITE, bio of page {index} -> block {pblk})"
    fs.ghost.in_flight[fs.rt.thread] = pblk
    yield f"ext4_end_bio(bio): end_page_writeback(page {index})"
    end_write_bio(fs, bio)


def end_write_bio(fs, bio):
    """A write bio ``(page, device block, units)`` completes: the block
    gets the units, the I/O is no longer in flight, ``end_page_writeback``
    (ext4's ``ext4_end_bio``, XFS's ``xfs_end_bio``: models/xfs_writeback.py)."""
    index, pblk, units = bio
    upb = fs.geo.units_per_block
    for u in range(upb):
        fs.dev.set(pblk * upb + u, units[u])
    fs.ghost.in_flight.pop(fs.rt.thread, None)
    fs.page_writeback.delete(index)


@kernel_function("fs/ext4/inode.c", "v4.4", dropped=0, release="4.4")
def ext4_writepages(fs, first=0, last=None):
    """``ext4_writepages()`` (v4.4) for a page-cache file with delayed
    allocation (pages ``first..last``, to the end if None): while a round
    finds an extent to map, start a handle, ``mpage_prepare_extent_to_map``,
    ``mpage_map_and_submit_extent``, stop the handle, submit the bios,
    unlock the pages not used. Any other file runs the seeds' model."""
    if not delalloc(fs):
        return (yield from _seed_ext4_writepages(fs))
    while True:
        if journalled(fs):
            yield from journal_start(fs, "handle = ext4_journal_start_with_reserve(inode, EXT4_HT_WRITE_PAGE, "
                                         "needed_blocks, rsv_blocks)")
        extent, bios, unused = yield from mpage_prepare_extent_to_map(fs, first, last)
        done = not extent
        if extent:
            more, complete = yield from mpage_map_and_submit_extent(fs, extent)
            bios += more
            if not complete:
                done = True  # ENOSPC: give up on the rest
                unused += tuple(i for i in extent if fs.page_lock[i].owner == fs.rt.thread)
        if journalled(fs):
            yield "ext4_journal_stop(handle)"
            journal_stop(fs)
        for bio in bios:
            yield from ext4_io_submit(fs, bio)
        if unused:
            yield "mpage_release_unused_pages(&mpd, give_up_on_write)"
            for index in unused:
                fs.page_lock[index].unlock()
        if done:
            return 0


@kernel_function("mm/filemap.c", "v4.4", dropped=0, release="4.4")
def filemap_write_and_wait_range(fs, lstart, lend):
    """``filemap_write_and_wait_range(mapping, lstart, lend)`` (v4.4):
    ``__filemap_fdatawrite_range(..., WB_SYNC_ALL)`` -> ``do_writepages`` ->
    ``ext4_writepages``, then ``filemap_fdatawait_range``: wait for each page
    of the range under writeback."""
    ps = fs.geo.page_size
    first, last = lstart // ps, lend // ps
    yield from ext4_writepages(fs, first, last)
    yield "filemap_fdatawait_range(mapping, lstart, lend): pagevec_lookup_tag(PAGECACHE_TAG_WRITEBACK)"
    for index in fs.page_writeback.keys():
        if first <= index <= last:
            yield from wait_on_page_writeback(fs, index)
    return 0


@kernel_function("mm/filemap.c", "v4.4", name="filemap_write_and_wait", dropped=0, release="4.4")
def filemap_write_and_wait_wb(fs):
    """fsync's write-out (``ext4_sync_file`` -> ``filemap_write_and_wait_range``
    of the whole file, v4.4) for an ext4 page-cache file; any other file runs
    the seeds' model."""
    if not delalloc(fs):
        # the release before: XFS's of 4.1 (models/xfs_writeback.py), else the seeds'
        earlier = RELEASES["filemap_write_and_wait"].get("4.1")
        return (yield from (earlier.fn if earlier else _seed_filemap_write_and_wait)(fs))
    return (yield from filemap_write_and_wait_range(fs, 0, fs.geo.max_size - 1))


# The flusher's ->writepages of other filesystems, by filesystem (XFS's: models/xfs_writeback.py):
# (the kernel function a kernel: release must pick for it to run, the flusher's path).
WRITEPAGES: dict = {}


@operation("writepages", "the flusher's writeback of a page-cache file: ext4 (kernel 4.4 on): ->writepages "
                         "(ext4_writepages) allocates the delayed blocks, puts the pages under writeback, "
                         "updates i_disksize and submits the bios; XFS (4.1 on): xfs_vm_writepages puts each "
                         "dirty page under writeback and submits its bio",
           flavours=("ext4", "ext4-dax", "xfs"))
def writepages(fs, ctx):
    needs, flusher = WRITEPAGES.get(fs_type(fs), (None, None))
    if flusher is not None and not fs.dax and fs.kernel.impl.get(needs) is not None:
        yield from flusher(fs)
        return 0
    if journalled(fs) or (delalloc(fs) and fs.kernel.impl.get("ext4_writepages") is not None):
        yield from ext4_writepages(fs)
        return 0
    # Without a journal the seeds' ext4_writepages (v4.0, under a handle) has
    # nothing to run on, and the seeds' page cache writes nothing back.
    yield "->writepages(mapping, wbc): no writeback modelled for this file at this release (ext4: 4.4 on; XFS: 4.1 on)"
    return 0


# -- the journal: ordered data ---------------------------------------------------------------------


@kernel_function("fs/ext4/ext4_jbd2.c", "v4.4", release="4.4")
def ext4_jbd2_file_inode(fs):
    """``ext4_jbd2_file_inode(handle, inode)`` -> ``jbd2_journal_file_inode()``:
    the inode joins the running transaction's ordered list; its commit waits
    for the inode's data first."""
    if getattr(fs, "t_inode_list", None) is not None:
        fs.t_inode_list.set(True)
    return 0


@kernel_function("fs/ext4/inode.c", "v4.7 (06bd3c36a733)", name="ext4_map_blocks", release="4.7")
def ext4_map_blocks_ordered(fs, block, flags):
    """``ext4_map_blocks()`` with 06bd3c36a733 "ext4: fix data exposure after
    a crash" (v4.7-rc1): after the create path, ``if (map->m_flags &
    EXT4_MAP_NEW && !(map->m_flags & EXT4_MAP_UNWRITTEN) &&
    ext4_should_order_data(inode)) ret = ext4_jbd2_file_inode(handle,
    inode);``. The mapping itself is the seeds' model's."""
    bh = yield from _seed_ext4_map_blocks(fs, block, flags)
    # ext4_should_order_data(inode): data=ordered, a journal, a page-cache file
    if bh is not None and bh.new and not bh.unwritten and journalled(fs) and not fs.dax:
        ext4_jbd2_file_inode(fs)
    return bh


def committed_metadata(fs):
    """The inode as the commit writes it: the block map, and ``i_disksize``
    where the file has one (ext4's on-disk size)."""
    blocks = tuple(fs.i_blocks.get(b) for b in range(len(fs.i_blocks)))
    size = fs.i_disksize.get() if hasattr(fs, "i_disksize") else fs.i_size.get()
    return OnDisk(blocks, size)


@kernel_function("fs/jbd2/commit.c", "v4.4", name="journal_commit_transaction", release="4.4")
def jbd2_journal_commit_transaction(fs):
    """kjournald2's ``jbd2_journal_commit_transaction()`` (v4.4): lock the
    transaction, wait for its handles, close it; ``journal_submit_data_buffers``
    and, after the metadata, ``journal_finish_inode_data_buffers``: for each
    inode on its ordered list, ``filemap_fdatawait`` waits for the pages under
    writeback; then the commit record. The committed size is ``i_disksize``."""
    j = fs.journal
    yield j.kjournald.lock("kjournald2: jbd2_journal_commit_transaction(journal)")
    yield "commit_transaction->t_state = T_LOCKED"
    j.t_state.set(T_LOCKED)
    yield from jbd2_journal_wait_updates(fs)
    committing = committed_metadata(fs)
    data_bufs, freed = j.t_sync_datalist.get(), j.t_freed.get()
    j.t_sync_datalist.set(())
    j.t_freed.set(())
    ordered = False
    if getattr(fs, "t_inode_list", None) is not None:
        ordered = fs.t_inode_list.get()
        fs.t_inode_list.set(False)
    j.t_state.set(T_RUNNING)
    if data_bufs:
        yield "journal_submit_data_buffers(journal, commit_transaction); wait for them"
        for index, i in data_bufs:
            if fs.page_cache.contains(index):
                write_buffer(fs, index, i)
    yield "jbd2_journal_write_metadata_buffer() for each metadata buffer"
    if ordered:
        yield wait_until(fs.rt, lambda: not fs.page_writeback.keys(),
                         "journal_finish_inode_data_buffers(): filemap_fdatawait(jinode->i_vfs_inode->i_mapping)")
    yield "journal_submit_commit_record(journal, commit_transaction, ...)"
    j.committed.set(committing)
    if freed:
        fs.free_list.set(fs.free_list.get() + freed)
        for pblk in freed:
            for unit in fs.block_units(pblk):
                fs.dev.set(unit, STALE)
    yield "kjournald2: the commit is done"
    j.kjournald.unlock()


# -- truncate and hole punch -------------------------------------------------------------------------


@kernel_function("mm/truncate.c", "v4.4", name="truncate_inode_page", release="4.4")
def truncate_inode_page(fs, index):
    """``truncate_inode_page()`` (v4.4), page locked: a page still mapped
    (a fault mapped it after the caller's ``unmap_mapping_range``) is
    unmapped first (``if (page_mapped(page)) unmap_mapping_range(mapping,
    index << PAGE_CACHE_SHIFT, PAGE_CACHE_SIZE, 0)``: not a private COW
    copy; within this step); ``do_invalidatepage`` (``ext4_da_invalidatepage``:
    the delayed buffers lose BH_Delay and their reservation;
    ``block_invalidatepage`` drops the buffers), then the page leaves the
    page cache."""
    for ptes in fs.ptes.values():
        if ptes.get(index) == ("page", index):
            ptes.delete(index)
    if delalloc(fs):
        for i in range(len(page_buffers(fs, index))):
            block = index * (fs.geo.page_size // fs.geo.block_size) + i
            fs.bh_delay.delete(block)
    fs.page_buffers.delete(index)
    fs.page_cache.delete(index)


@kernel_function("mm/truncate.c", "v4.4", name="truncate_inode_pages_range", release="4.4")
def truncate_inode_pages_range_wb(fs, first, last):
    """``truncate_inode_pages_range()`` (v4.4), its pass that waits: each
    cached page of ``first..last`` (to the end if None) is locked, waited on
    while under writeback, and truncated (if it is still in the page cache)."""
    yield "pagevec_lookup_entries(&pvec, mapping, index, ...)"
    found = [i for i in fs.page_cache.keys() if i >= first and (last is None or i <= last)]
    for index in found:
        yield fs.page_lock[index].lock(f"lock_page(page {index})")
        yield from wait_on_page_writeback(fs, index)
        if fs.page_cache.contains(index):  # truncate_inode_page(): page->mapping == mapping
            truncate_inode_page(fs, index)
        fs.page_lock[index].unlock()


@kernel_function("fs/ext4/inode.c", "v4.4", name="ext4_setattr", dropped=0, release="4.4")
def ext4_setattr_disksize(fs, newsize):
    """``ext4_setattr()`` with ``ATTR_SIZE`` (v4.4), i_mutex held: in a handle
    (``ext4_orphan_add`` when shrinking), ``i_disksize`` and ``i_size`` are
    set together under ``i_data_sem`` (90e775b71ac4); an orphan waits for
    direct I/O; then ``truncate_pagecache`` and, when shrinking,
    ``ext4_truncate``. Without a journal (no valid handle) there is no orphan
    and no wait, as in the kernel."""
    oldsize = fs.i_size.get()
    shrink = newsize <= oldsize
    orphan = False
    if newsize != oldsize:
        if journalled(fs):
            yield from journal_start(fs, "handle = ext4_journal_start(inode, EXT4_HT_INODE, 3); "
                                         "if (shrink) ext4_orphan_add(handle, inode)")
            orphan = shrink
        yield ("down_write(&EXT4_I(inode)->i_data_sem); EXT4_I(inode)->i_disksize = attr->ia_size; "
               "ext4_mark_inode_dirty(); i_size_write(inode, attr->ia_size); up_write(); ext4_journal_stop(handle)")
        if hasattr(fs, "i_disksize"):
            fs.i_disksize.set(newsize)
        fs.i_size.set(newsize)
        if journalled(fs):
            journal_stop(fs)
        if orphan:
            yield from inode_dio_wait(fs)
    yield from truncate_pagecache(fs, newsize)
    if shrink:
        yield from ext4_truncate(fs)
    return 0


@kernel_function("fs/ext4/inode.c", "v4.4", name="ext4_punch_hole", dropped=0, release="4.4")
def ext4_punch_hole_wb(fs, offset, length):
    """``ext4_punch_hole()`` (v4.4): "Write out all dirty pages to avoid race
    conditions. Then release them." -- ``if (mapping->nrpages &&
    mapping_tagged(mapping, PAGECACHE_TAG_DIRTY))
    filemap_write_and_wait_range(mapping, offset, offset + length - 1)``,
    before ``i_mutex``; the rest as the seeds' 3.13 model of it."""
    yield "if (mapping->nrpages && mapping_tagged(mapping, PAGECACHE_TAG_DIRTY))"
    if delalloc(fs) and any(PageDirty(fs, i) for i in fs.page_buffers.keys()):
        ret = yield from filemap_write_and_wait_range(fs, offset, offset + length - 1)
        if ret:
            return ret
    return (yield from _seed_ext4_punch_hole(fs, offset, length))
