"""Buffered (non-DAX) I/O through the page cache: the write and read paths of
seed 004 (linux-fsdevel, 2006-12-05/07, "Status of buffered write path
(deadlock fixes)"): Nick Piggin's summary of the -mm buffered-write rework
(mm-fix-pagecache-write-deadlocks*.patch, fs-prepare_write-fixes.patch) as
Mark Fasheh quotes it, and Mark's review. Race 11 of RACES.md.

The seed carries no code, only the design it describes; the functions below
follow the 2.6.19-era fs/buffer.c and mm/filemap.c those patches changed
(``generic_file_buffered_write``, ``__block_prepare_write``,
``__block_commit_write``/``generic_commit_write``, ``block_read_full_page``,
``do_generic_mapping_read``), with the behaviour the thread describes:

* "prepare_write can allocate blocks" and "doesn't need to initialize the
  pagecache on top of these blocks where it is within the range specified in
  prepare_write (because the copy_from_user will initialise it correctly)";
* the copy from user space can come up short (``short_copy``), and
  ``commit_write(file, page, offset, offset+copied)`` commits only what was
  copied; the page is then unlocked to retry the write;
* "a read that sneaks in after we unlock the page (to retry the write) will
  try to bring it uptodate by pulling in the uninitialised blocks";
* BH_New, which prepare_write leaves set on a newly allocated buffer so that
  the caller can tell which buffers are new, is not cleared anywhere on the
  normal path ("I'm not seeing where BH_New is being cleared").

The remedies of the thread are fix switches (see below). The crash variant
(ordered mode, ``offset+copied`` vs ``offset+bytes`` and the transaction that
commits) is not modelled yet: the filesystem's ``prepare_write`` and
``commit_write`` are reached through :func:`address_space_operations`, so a
journalled filesystem can put its own there (``journal_start`` in prepare,
``journal_dirty_data`` of the committed buffers and ``journal_stop`` in
commit) without touching the generic write path.

State (models/fs.py): ``fs.page_cache[index]`` holds the page's units (a
page fresh from the allocator holds ``STALE``: its previous user's bytes),
``fs.page_lock[index]`` is the page lock, ``fs.page_uptodate[index]``
PG_uptodate and ``fs.page_buffers[index]`` the buffer heads attached to the
page. The device is only read here: a written page stays in the page
cache, and its dirty buffers reach the device only through fsync
(models/journal.py) or the write-back before a direct I/O (models/dio.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..runtime import bug_on
from .fs import STALE, ZERO, ReadResult, WriteResult, data
from .kernel import kernel_function
from .registry import Param, fix, operation

# -- the remedies of the thread ------------------------------------------------

ZERO_NEW_BUFFERS = fix(
    "zero_new_buffers_on_short_copy",
    "on a short copy, zero the new buffers the copy did not reach, mark them uptodate and dirty and "
    "clear BH_New before the page is unlocked to retry (seed 004: Nick Piggin's stale-holes fix, "
    "'our zeroing of the newly allocated buffers in the copied != bytes case', Mark Fasheh)")

ZERO_LENGTH_COMMIT = fix(
    "zero_length_commit_if_not_uptodate",
    "after a short copy into a page that is not uptodate, commit_write a zero-length range, so that "
    "no buffer half filled by the copy is marked uptodate over page junk (seed 004 thread: Nick "
    "Piggin's reply of 2006-12-08 to Mark Fasheh; later block_write_end's copied = 0)")

CLEAR_BH_NEW = fix(
    "clear_bh_new_in_commit_write",
    "block_commit_write clears BH_New on the page's buffers once they are initialised (seed 004: "
    "Mark Fasheh, 'we need to clear the flag somewhere (perhaps in block_commit_write()?)')")

COMMIT_BYTES = fix(
    "commit_write_offset_plus_bytes",
    "after a short copy, commit_write(offset, offset+bytes) rather than offset+copied (seed 004: Mark "
    "Fasheh's proposal, for ordered writeout; Nick Piggin answers that it exposes the junk of "
    "buffers that are not new and not uptodate)")


# -- buffer heads ---------------------------------------------------------------


@dataclass(frozen=True)
class Buffer:
    """One buffer_head attached to a page: the flags the paths test."""

    mapped: bool = False  # BH_Mapped: blocknr is valid
    new: bool = False  # BH_New: just allocated by get_block, not initialised yet
    uptodate: bool = False  # BH_Uptodate: the page's bytes over it are valid
    dirty: bool = False  # BH_Dirty: to be written back (writeback not modelled)
    blocknr: int | None = None

    def __str__(self):
        flags = [n for n in ("mapped", "new", "uptodate", "dirty") if getattr(self, n)]
        where = f" -> block {self.blocknr}" if self.mapped else ""
        return f"bh({'|'.join(flags) or 'clear'}{where})"


@dataclass(frozen=True)
class AddressSpaceOperations:
    """The filesystem's a_ops the generic paths call: ``prepare_write(fs,
    index, from_, to)``, ``commit_write(fs, index, from_, to)`` and
    ``readpage(fs, index)``, step generators. A journalled filesystem (ordered
    mode) registers its own in :data:`A_OPS`."""

    prepare_write: object
    commit_write: object
    readpage: object


# -- page helpers (no steps: they run inside the caller's step) -------------------


def _upp(fs):
    return fs.geo.page_size // fs.geo.unit_size


def _bpp(fs):
    return fs.geo.page_size // fs.geo.block_size


def _units(fs, start, end):
    """Unit indexes in the page covering bytes [start, end)."""
    us = fs.geo.unit_size
    return range(start // us, (end + us - 1) // us)


def page_locked_by_me(fs, index):
    """PageLocked(page) for BUG_ON: the model's own bookkeeping, no footprint."""
    return fs.page_lock[index].owner == fs.rt.thread


def PageUptodate(fs, index):
    return bool(fs.page_uptodate.get(index, False))


def SetPageUptodate(fs, index):
    fs.page_uptodate.set(index, True)


def set_page_units(fs, index, start, end, tag_of):
    """Write bytes [start, end) of the page: ``tag_of(unit in page)`` each.
    The page is mapped (read) even when the range is empty."""
    units = list(fs.page_cache.get(index))
    if end <= start:
        return
    for u in _units(fs, start, end):
        units[u] = tag_of(u)
    fs.page_cache.set(index, tuple(units))


def zero_user(fs, index, start, end):
    """memset(kaddr + start, 0, end - start) on the page."""
    set_page_units(fs, index, start, end, lambda u: ZERO)


def read_block_into_page(fs, index, i, bh):
    """The bytes of buffer ``i`` come from its device block (a READ's data)."""
    bs, upb = fs.geo.block_size, fs.geo.units_per_block
    first = bh.blocknr * upb
    base = i * bs // fs.geo.unit_size
    set_page_units(fs, index, i * bs, (i + 1) * bs, lambda u: fs.dev.get(first + u - base))


def page_buffers(fs, index):
    return list(fs.page_buffers.get(index) or ())


def create_empty_buffers(fs, index):
    """Attach clear buffer heads to a page that has none; return them."""
    bufs = page_buffers(fs, index)
    if not bufs:
        uptodate = PageUptodate(fs, index)
        bufs = [Buffer(uptodate=uptodate) for _ in range(_bpp(fs))]
        fs.page_buffers.set(index, tuple(bufs))
    return bufs


def set_buffer(fs, index, i, **flags):
    bufs = page_buffers(fs, index)
    bufs[i] = replace(bufs[i], **flags)
    fs.page_buffers.set(index, tuple(bufs))
    return bufs[i]


@kernel_function("mm/rmap.c", "v4.1 (clear_page_dirty_for_io of mm/page-writeback.c calls it)")
def page_mkclean(fs, index):
    """``clear_page_dirty_for_io(page)`` -> ``page_mkclean(page)`` (mm/rmap.c):
    every writable user PTE of the page becomes read-only (its dirty bit
    goes to the page), so that the next store faults into
    ``->page_mkwrite`` instead of dirtying a page that writeback has just
    cleaned. ``fs.pte_write`` is there where ``->page_mkwrite`` is modelled
    (models/fault_exclusion.py, models/page_mkwrite.py)."""
    pte_write = getattr(fs, "pte_write", None)
    if pte_write is None:
        return
    for key in pte_write.keys():
        if key[1] == index:
            pte_write.delete(key)


def add_to_page_cache(fs, index):
    """A page fresh from the page allocator, inserted locked: its memory still
    holds its previous user's bytes, it is not uptodate and has no buffers."""
    fs.page_cache.set(index, (STALE,) * _upp(fs))
    fs.page_uptodate.set(index, False)
    fs.page_buffers.delete(index)


# -- the address space operations ----------------------------------------------------


@kernel_function("fs/buffer.c", "2.6.19 with seed 004 (fs-prepare_write-fixes.patch)",
                 name="__block_prepare_write", dropped=0)
def block_prepare_write(fs, index, from_, to, get_block):
    """fs/buffer.c: __block_prepare_write() as fs-prepare_write-fixes.patch
    leaves it: map (allocating) the buffers under [from_, to), zero the parts
    of a new block outside the range, read in partial buffers of a page that
    is not uptodate. A new buffer inside the range is neither zeroed nor
    uptodate ("the copy_from_user will initialise it"), and BH_New stays set
    on return so that the caller can find the new buffers: 2.6.19's final
    clear_buffer_new() loop is not there (Mark Fasheh, seed 004: "I'm not
    seeing where BH_New is being cleared"). A stale BH_New of a buffer inside
    the range is still cleared before get_block, as in 2.6.19."""
    bug_on(not page_locked_by_me(fs, index), "BUG_ON(!PageLocked(page)) in __block_prepare_write")
    bs = fs.geo.block_size
    yield f"__block_prepare_write(page {index}, {from_}, {to})"
    bufs = create_empty_buffers(fs, index)
    for i in range(len(bufs)):
        bh = page_buffers(fs, index)[i]
        block = index * _bpp(fs) + i
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
                return "-ENOSPC"
            # An unwritten extent (ext4) reads as zeros: the page over it is
            # initialised here like a new block's.
            bh = set_buffer(fs, index, i, mapped=True, new=got.new or got.unwritten, blocknr=got.blocknr)
            if bh.new:
                # unmap_underlying_metadata(bh->b_bdev, bh->b_blocknr)
                if PageUptodate(fs, index):
                    set_buffer(fs, index, i, uptodate=True)
                    continue
                if block_end > to or block_start < from_:
                    yield "memset(kaddr+to, 0, block_end-to); memset(kaddr+block_start, 0, from-block_start)"
                    zero_user(fs, index, to, block_end)
                    zero_user(fs, index, block_start, from_)
                continue
        if PageUptodate(fs, index):
            if not bh.uptodate:
                set_buffer(fs, index, i, uptodate=True)
            continue
        if not bh.uptodate and (block_start < from_ or block_end > to):
            yield "ll_rw_block(READ, 1, &bh); wait_on_buffer(bh)"
            read_block_into_page(fs, index, i, bh)
            set_buffer(fs, index, i, uptodate=True)
    return 0


@kernel_function("fs/buffer.c", "2.6.19", name="__block_commit_write")
def block_commit_write(fs, index, from_, to):
    """fs/buffer.c: __block_commit_write(): the buffers over [from_, to) become
    uptodate and dirty; the page is uptodate when no buffer outside the range
    is left not uptodate. As posted, BH_New is left as it is."""
    bs = fs.geo.block_size
    partial = False
    for i, bh in enumerate(page_buffers(fs, index)):
        block_start, block_end = i * bs, (i + 1) * bs
        if block_end <= from_ or block_start >= to:
            if not bh.uptodate:
                partial = True
        else:
            bh = set_buffer(fs, index, i, uptodate=True, dirty=True)  # mark_buffer_dirty(bh)
        if CLEAR_BH_NEW in fs.fixes and bh.new:
            set_buffer(fs, index, i, new=False)  # clear_buffer_new(bh)
    if not partial:
        SetPageUptodate(fs, index)


@kernel_function("fs/buffer.c", "2.6.19", dropped=0)
def generic_commit_write(fs, index, from_, to):
    """fs/buffer.c: generic_commit_write(): commit the buffers, then extend
    i_size to the end of the committed range (i_mutex is held)."""
    yield f"generic_commit_write(file, page {index}, {from_}, {to})"
    block_commit_write(fs, index, from_, to)
    pos = index * fs.geo.page_size + to
    if pos > fs.i_size.get():
        fs.i_size.set(pos)  # i_size_write(inode, pos); mark_inode_dirty(inode)
    return 0


@kernel_function("fs/buffer.c", "2.6.19", dropped=0)
def block_read_full_page(fs, index, get_block):
    """fs/buffer.c: block_read_full_page(), called with the page locked: map
    the buffers that are not uptodate, zero the holes, read the mapped ones
    from their blocks; the end of the read marks the page uptodate and unlocks
    it. A buffer prepare_write mapped to a block nobody wrote is read as is."""
    bug_on(not page_locked_by_me(fs, index), "BUG_ON(!PageLocked(page)) in block_read_full_page")
    bs = fs.geo.block_size
    yield f"block_read_full_page(page {index})"
    bufs = create_empty_buffers(fs, index)
    lblock = (fs.i_size.get() + bs - 1) // bs  # (i_size_read(inode)+blocksize-1) >> i_blkbits
    arr = []
    for i in range(len(bufs)):
        bh = page_buffers(fs, index)[i]
        iblock = index * _bpp(fs) + i
        if bh.uptodate:
            continue
        if not bh.mapped:
            if iblock < lblock:
                got = yield from get_block(fs, iblock, False)
                # An unwritten extent (ext4's get_block) reads as zeros, like a hole.
                if got is not None and got.mapped and not got.unwritten:
                    bh = set_buffer(fs, index, i, mapped=True, blocknr=got.blocknr)
            if not bh.mapped:
                zero_user(fs, index, i * bs, (i + 1) * bs)  # memset(kaddr + i * blocksize, 0, blocksize)
                set_buffer(fs, index, i, uptodate=True)
                continue
        arr.append(i)
    if not arr:
        # All buffers uptodate (holes and uptodate ones): no I/O.
        if all(b.uptodate for b in page_buffers(fs, index)):
            SetPageUptodate(fs, index)
        fs.page_lock[index].unlock()  # unlock_page(page)
        return 0
    for i in arr:
        yield "submit_bh(READ, bh)"
        read_block_into_page(fs, index, i, page_buffers(fs, index)[i])
        yield "end_buffer_async_read(bh, 1)"
        set_buffer(fs, index, i, uptodate=True)
    if all(b.uptodate for b in page_buffers(fs, index)):
        SetPageUptodate(fs, index)
    fs.page_lock[index].unlock()  # unlock_page(page) by the last I/O completion
    return 0


@kernel_function("fs/buffer.c", "seed 004 (Nick Piggin's fix; 2.6.24's name)")
def page_zero_new_buffers(fs, index, from_, to):
    """The stale-holes fix (seed 004), as later fs/buffer.c names it: the new
    buffers under [from_, to) are zeroed there if the page is not uptodate,
    marked uptodate and dirty, and BH_New is cleared."""
    bug_on(not page_locked_by_me(fs, index), "BUG_ON(!PageLocked(page)) in page_zero_new_buffers")
    bs = fs.geo.block_size
    for i, bh in enumerate(page_buffers(fs, index)):
        block_start, block_end = i * bs, (i + 1) * bs
        if bh.new and block_end > from_ and block_start < to:
            if not PageUptodate(fs, index):
                zero_user(fs, index, max(from_, block_start), min(to, block_end))
                set_buffer(fs, index, i, uptodate=True)
            set_buffer(fs, index, i, new=False, dirty=True)


@kernel_function("fs/ext2/inode.c", "2.6.19", dropped=0)
def ext2_prepare_write(fs, index, from_, to):
    """fs/ext2/inode.c: block_prepare_write(page, from, to, ext2_get_block)."""
    return (yield from block_prepare_write(fs, index, from_, to, fs.flavour))


@kernel_function("fs/ext2/inode.c", "2.6.19", dropped=0)
def ext2_readpage(fs, index):
    """fs/ext2/inode.c: mpage_readpage(page, ext2_get_block), which for a page
    with buffers (and in this model always) is block_read_full_page()."""
    return (yield from block_read_full_page(fs, index, fs.flavour))


EXT2_AOPS = AddressSpaceOperations(ext2_prepare_write, generic_commit_write, ext2_readpage)

# get_block flavour -> a_ops; a flavour not listed uses ext2's buffer-head ops.
A_OPS: dict = {}


def address_space_operations(fs):
    return A_OPS.get(fs.flavour, EXT2_AOPS)


# -- the write -------------------------------------------------------------------------


@kernel_function("mm/filemap.c", "2.6.19 with seed 004 (mm-fix-pagecache-write-deadlocks.patch)",
                 dropped=(0, 0))
def generic_file_buffered_write(fs, ctx, pos, count, short_copy=None):
    """mm/filemap.c: generic_file_buffered_write() after
    mm-fix-pagecache-write-deadlocks.patch (seed 004), called with i_mutex
    held. Page by page: lock the page (__grab_cache_page), prepare_write,
    copy from user space with the page locked (filemap_copy_from_user
    _nonatomic: it cannot fault the source in, so it can come up short),
    commit_write(offset, offset+copied), unlock the page; a short copy is
    retried from pos+copied once fault_in_pages_readable() has brought the
    user page in.

    ``short_copy``: how many bytes of the user buffer the copies get before
    the first fault (None: no fault). Returns (status, bytes written)."""
    ps = fs.geo.page_size
    aops = address_space_operations(fs)
    tag = data(ctx.thread, ctx.seq)
    fault_at = short_copy if short_copy is not None and short_copy < count else None
    written, status = 0, 0
    while count:
        offset = pos % ps  # Within page
        index = pos // ps
        bytes_ = min(ps - offset, count)
        # fault_in_pages_readable(buf, bytes): the user buffer is the thread's own memory.
        yield fs.page_lock[index].lock(f"page = __grab_cache_page(mapping, {index}, ...)")
        if not fs.page_cache.contains(index):
            add_to_page_cache(fs, index)
        status = yield from aops.prepare_write(fs, index, offset, offset + bytes_)
        if status:
            yield "fs_write_aop_error: unlock_page(page)"
            fs.page_lock[index].unlock()
            break
        yield f"copied = filemap_copy_from_user_nonatomic(page, {offset}, buf, {bytes_})"
        copied = bytes_
        if fault_at is not None and written + bytes_ > fault_at:
            copied = fault_at - written  # the source page is not present: short copy
            fault_at = None  # the retry's fault_in_pages_readable() brings it in
        set_page_units(fs, index, offset, offset + copied, lambda u: tag)
        commit = copied
        if copied != bytes_:
            if ZERO_LENGTH_COMMIT in fs.fixes:
                yield "if (!PageUptodate(page)) copied = 0"
                if not PageUptodate(fs, index):
                    copied = commit = 0
            if ZERO_NEW_BUFFERS in fs.fixes:
                yield f"page_zero_new_buffers(page, {offset + copied}, {offset + bytes_})"
                page_zero_new_buffers(fs, index, offset + copied, offset + bytes_)
            if COMMIT_BYTES in fs.fixes:
                commit = bytes_
        status = yield from aops.commit_write(fs, index, offset, offset + commit)
        yield "unlock_page(page)"
        fs.page_lock[index].unlock()
        if status:
            break
        written += copied
        count -= copied
        pos += copied
    return status, written


@operation("buffered_write",
           "write(2) to a page-cache (non-DAX) file: generic_file_buffered_write() under i_mutex, "
           "a page at a time, with a possibly short copy from user space (seed 004)",
           Param("offset", align="unit", help="file offset of the write"),
           Param("len", align="unit", help="bytes to write"),
           Param("short_copy", required=False, default=None, align="unit",
                 help="bytes the copy from user space gets before it faults (default: all); "
                      "the write then unlocks the page and retries"))
def buffered_write(fs, ctx, offset, len, short_copy=None):
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    status, written = yield from generic_file_buffered_write(fs, ctx, offset, len, short_copy)
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    if not written and status:
        return status
    return WriteResult(offset, written, data(ctx.thread, ctx.seq))


# -- the read --------------------------------------------------------------------------


def _nr(fs, isize, index, offset):
    """Bytes of page ``index`` from ``offset`` that lie below i_size (0: none)."""
    ps = fs.geo.page_size
    if not isize:
        return 0
    end_index = (isize - 1) // ps
    if index > end_index:
        return 0
    nr = ps
    if index == end_index:
        nr = (isize - 1) % ps + 1
        if nr <= offset:
            return 0
    return nr - offset


@kernel_function("mm/filemap.c", "2.6.19", dropped=((), 0))
def do_generic_mapping_read(fs, pos, count):
    """mm/filemap.c: do_generic_mapping_read() (2.6.19) with file_read_actor:
    no i_mutex. A page that is missing is added locked and read; a page that
    is not uptodate is locked and, unless somebody filled it meanwhile, read
    with ->readpage(); then its bytes are copied to the user. Returns the
    units copied, in order.

    ``i_size`` is read once, before the loop (``end_index`` comes from it for
    every page), and again only after ``->readpage()`` ("i_size must be
    checked after we have done ->readpage"): a page found uptodate in the
    page cache is copied up to the ``i_size`` read at the start. No lock
    orders the read against truncate (no ``i_mutex``): a read whose copy
    ran before truncate wrote the new ``i_size`` returns the bytes it
    copied, beyond the ``i_size`` that holds when it returns, and one that
    checked ``i_size`` just before truncate shrank it and zeroed the tail of
    the page copies that tail. That is the kernel's behaviour, not a gap of
    the model (tests/test_models_buffered.py)."""
    ps = fs.geo.page_size
    aops = address_space_operations(fs)
    units = []
    done = 0
    yield "isize = i_size_read(inode)"
    isize = fs.i_size.get()
    while done < count:
        index, offset = divmod(pos, ps)
        nr = _nr(fs, isize, index, offset)
        if not nr:
            break
        while True:
            yield f"page = find_get_page(mapping, {index})"
            readpage = False
            if not fs.page_cache.contains(index):
                # no_cached_page: page_cache_alloc_cold(); add_to_page_cache_lru() locks it
                yield fs.page_lock[index].lock(f"add_to_page_cache_lru(page, mapping, {index})")
                if fs.page_cache.contains(index):  # -EEXIST: goto find_page
                    fs.page_lock[index].unlock()
                    continue
                add_to_page_cache(fs, index)
                readpage = True
            elif not PageUptodate(fs, index):
                # page_not_up_to_date: lock_page(page)
                yield fs.page_lock[index].lock(f"lock_page(page {index})")
                if not fs.page_cache.contains(index):  # unhashed before we got the lock
                    fs.page_lock[index].unlock()
                    continue
                if PageUptodate(fs, index):  # somebody else filled it already
                    fs.page_lock[index].unlock()
                else:
                    readpage = True
            break
        if readpage:
            # The read will unlock the page.
            yield from aops.readpage(fs, index)
            # i_size must be checked after we have done ->readpage.
            yield "isize = i_size_read(inode)"
            isize = fs.i_size.get()
            nr = _nr(fs, isize, index, offset)
            if not nr:
                break
        # page_ok:
        ret = min(nr, count - done)
        yield f"file_read_actor(desc, page {index}, {offset}, {ret})"
        page = fs.page_cache.get(index)
        if page is None:
            # Truncate or an invalidation took the page out of the page cache
            # since we found it. The kernel's reference would still show its
            # last bytes, which the model does not keep: look the page up
            # again, as a read that came a little later would.
            continue
        units.extend(page[u] for u in _units(fs, offset, offset + ret))
        done += ret
        pos += ret
    return units, done


@operation("buffered_read",
           "read(2) from a page-cache (non-DAX) file: do_generic_mapping_read(), ->readpage() "
           "brings pages that are not uptodate in from their blocks (seed 004)",
           Param("offset", align="unit", help="file offset of the read"),
           Param("len", help="bytes to read"))
def buffered_read(fs, ctx, offset, len):
    units, nbytes = yield from do_generic_mapping_read(fs, offset, len)
    return ReadResult(offset, nbytes, tuple(units), "read")
