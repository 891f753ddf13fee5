"""read(2) and write(2) on an XIP (DAX) file.

The series as posted (seed 002): patch 06 "Treat XIP like O_DIRECT" sends
read and write through the direct-I/O entry points (``generic_file_aio_read``
and ``generic_file_aio_write`` -> ``->direct_IO`` -> :func:`xip_do_io` ->
:func:`xip_io`, fs/xip.c), and patch 22 "XIP: Add support for unwritten
extents" teaches ``xip_io`` about unwritten buffers. The read path that patch
06 replaced (mm/filemap_xip.c ``xip_file_read`` -> ``do_xip_mapping_read``,
with ext2's ``get_xip_mem``) is here too: it is race 13 of RACES.md.

Fixes, named after what the review thread proposed:

* ``zero_new_block_edges`` (race 6; Jan Kara on patch 06, Dave Chinner
  2014-01-31): zero the head and tail of a block ``get_block`` returned new.
* ``hole_is_one_block`` (race 7; Ross Zwisler 2014-01-27): a hole covers only
  the current block, not the ``b_size`` that ``get_block`` left untouched.
* ``clamp_io_to_isize`` (race 8; Ross Zwisler 2014-02-12): a read stops at
  ``i_size``.
* ``treat_xip_like_o_direct`` (race 13; patch 06 itself): the old
  ``xip_file_read`` operation goes through ``xip_do_io`` instead.
* ``size_minus_first`` (Ross Zwisler 2014-01-22, Matthew Wilcox 2014-01-23
  on patch 22): an I/O that starts inside a block does not run past it.

The device is modelled as linear memory (as axonram and dcssblk are): an
address is a device unit index, ``direct_access`` of a block gives the
address of its first unit, and an access that runs past the block reaches the
next device block (past the end of the device: memory that is not the
file's, read as ``STALE``, written nowhere).

Not modelled: AIO (every I/O completes before the syscall returns); one
iovec segment only; the buffered fallbacks after a short direct read or write
(``do_generic_file_read`` / ``generic_file_buffered_write``, which
ext2_aops_xip cannot serve); ``ext2_write_failed`` after a failed write;
ext4's ``ext4_file_dio_write`` locking (unaligned AIO wait, overwrite
detection) and XFS's iolock: every write takes ``i_mutex`` as
``generic_file_aio_write`` does, and a read takes only what ``DIRECT_IO``
says its filesystem passes to ``xip_do_io``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .buffered import buffered_read, buffered_write
from .fs import STALE, ZERO, ReadResult, WriteResult, data
from .get_block import xfs_end_io_direct_write
from .kernel import kernel_function
from .registry import FLAVOURS, Param, fix, operation

READ = 0
WRITE = 1
DIO_LOCKING = 0x01  # include/linux/fs.h: the direct I/O takes i_mutex for reads

EIO = -5
ENOSPC = -28
ENODATA = -61
ERRNO = {EIO: "-EIO", ENOSPC: "-ENOSPC", ENODATA: "-ENODATA"}

ZERO_NEW_BLOCK_EDGES = fix(
    "zero_new_block_edges",
    "xip_io zeroes the head and the tail of a block get_block returned new (buffer_new), outside the "
    "user data (seed 002: Jan Kara on patch 06, Dave Chinner 2014-01-31)")
HOLE_IS_ONE_BLOCK = fix(
    "hole_is_one_block",
    "xip_io treats only the current block as the hole, size = (1 << i_blkbits) - first, since get_block "
    "leaves b_size at the whole request for a hole (seed 002: Ross Zwisler 2014-01-27)")
CLAMP_IO_TO_ISIZE = fix(
    "clamp_io_to_isize",
    "xip_io clamps the end of a read to i_size (seed 002: Ross Zwisler 2014-02-12 on patch 06)")
TREAT_XIP_LIKE_O_DIRECT = fix(
    "treat_xip_like_o_direct",
    "patch 06 of seed 002: read(2) on an XIP file goes through generic_file_aio_read and ->direct_IO "
    "to xip_do_io, which takes i_mutex for reads (DIO_LOCKING) and holds i_dio_count across the I/O "
    "(truncate waits in inode_dio_wait), instead of xip_file_read",
    # a placement: patch 06 sets .aio_read = generic_file_aio_read where
    # ext2_xip_file_operations had .read = xip_file_read
    edits={"replace": [{"function": "xip_file_read", "with": "generic_file_aio_read"}]})
SIZE_MINUS_FIRST = fix(
    "size_minus_first",
    "xip_io subtracts the offset into the block from the size it may copy, so an I/O that starts "
    "inside a block stops at its end (seed 002: Ross Zwisler 2014-01-22, Matthew Wilcox 2014-01-23, "
    "on patch 22)")


# -- what each filesystem's ->direct_IO hands to xip_do_io -----------------------


@dataclass(frozen=True)
class DirectIO:
    """The flags and end_io a filesystem's ``->direct_IO`` passes to
    ``xip_do_io``, and whether its ``get_block`` sets ``b_size`` for a hole
    (ext2 and ext4 leave it at what the caller asked for: seed 002,
    2014-01-27)."""

    flags: int
    end_io: object = None  # for writes (reads pass NULL): generator fn(fs, offset, size)
    sets_hole_size: bool = False


# Filesystem (get_block flavour) -> its ->direct_IO. A flavour not listed gets
# blockdev_direct_IO()'s defaults: DIO_LOCKING, no end_io.
DIRECT_IO = {
    # ext2_direct_IO(), patch 06: xip_do_io(..., ext2_get_block, NULL, DIO_LOCKING)
    "ext2": DirectIO(DIO_LOCKING),
    # ext4_ind_direct_IO(), patch 19, the path reads take: xip_do_io(...,
    # ext4_get_block, NULL, 0). (ext4_ext_direct_IO's writes pass
    # ext4_end_io_dio, the unwritten conversion; the ext4 model registers it.)
    # In the "locked:" branch patch 19 puts xip_do_io(..., 0) where
    # blockdev_direct_IO() passed DIO_LOCKING | DIO_SKIP_HOLES: a DAX read on
    # ext4 takes no i_mutex, only i_dio_count. ext4_punch_hole's "Wait all
    # existing dio workers, newcomers will block on i_mutex" then does not
    # hold: a read that raises i_dio_count after the punch's inode_dio_wait
    # copies from the block ext4_ext_remove_space frees (no_freed_block_mapped,
    # the seed's code; tests/test_models_xip_io.py). Against truncate the same
    # read is closed by clamp_io_to_isize, which reads i_size after raising
    # i_dio_count, so after ext4_setattr's new size.
    "ext4": DirectIO(0),
    # XFS's direct I/O (xfs_vm_direct_IO): xfs_get_blocks_direct, flags 0, and
    # xfs_end_io_direct_write for writes
    "xfs": DirectIO(0, xfs_end_io_direct_write, sets_hole_size=True),
}


def direct_io_of(fs):
    for name, (fn, _) in FLAVOURS.items():
        if fn is fs.flavour:
            return DIRECT_IO.get(name, DirectIO(DIO_LOCKING))
    return DirectIO(DIO_LOCKING)


# -- fs/xip.c (patch 06, patch 22) ---------------------------------------------------


def buffer_written(bh):
    """Patch 22: true if a buffer_head represents written data."""
    return bh.mapped and not bh.unwritten


@kernel_function("fs/xip.c", "seed 002 patch 06")
def xip_get_addr(fs, bh):
    """``xip_get_addr()``: ``direct_access()`` of the buffer's first sector.
    Returns (bytes available at the address, address as a device unit index);
    the devices of the series return one page (brd) or up to ``b_size``."""
    return min(bh.size, fs.geo.page_size), bh.blocknr * fs.geo.units_per_block


def _dev_get(fs, addr):
    return fs.dev.get(addr) if 0 <= addr < len(fs.dev) else STALE


def _dev_set(fs, addr, tag):
    if 0 <= addr < len(fs.dev):
        fs.dev.set(addr, tag)


def _memset_zero(fs, addr, nbytes):
    for a in range(addr, addr + nbytes // fs.geo.unit_size):
        _dev_set(fs, a, ZERO)


@kernel_function("fs/xip.c", "seed 002 patches 06, 22")
def xip_io(fs, rw, start, end, get_block, dio, tag=None, buf=None):
    """``xip_io()`` of patch 06 with patch 22's unwritten-extent handling, one
    segment. A write copies ``tag`` into the blocks; a read fills ``buf`` (one
    tag per unit of the user's buffer). Returns bytes done or an error."""
    bs, ps, us = fs.geo.block_size, fs.geo.page_size, fs.geo.unit_size
    tid = fs.rt.thread
    retval = 0
    offset = start
    max_ = start
    addr = None
    hole = False
    holding = False  # fs.ghost.in_flight[tid] names the block this I/O looked up
    if CLAMP_IO_TO_ISIZE in fs.fixes and rw == READ:
        # Ross Zwisler, 2014-02-12. (His diff clamps writes too, which would
        # stop every write that extends the file; the model clamps reads, as
        # his message describes and as the DAX code later did.)
        yield "end = min(end, inode->i_size)"
        end = min(end, fs.i_size.get())

    while offset < end:
        if max_ == offset:
            block = offset // bs
            first = offset - block * bs
            b_size = -(-(end - offset) // ps) * ps  # bh->b_size = ALIGN(end - offset, PAGE_SIZE)
            bh = yield from get_block(fs, block, rw == WRITE)
            if bh is None:  # retval = get_block(...); if (retval) break;
                retval = ENOSPC
                break
            if rw == WRITE:
                if not bh.mapped:
                    retval = EIO
                    break
                hole = False
            else:
                hole = not buffer_written(bh)

            if hole:
                addr = None
                if holding:
                    del fs.ghost.in_flight[tid]
                    holding = False
                size = bh.size if (bh.mapped or dio.sets_hole_size) else b_size
                if HOLE_IS_ONE_BLOCK in fs.fixes:
                    size = bs - first  # size = (1 << inode->i_blkbits) - first
                elif SIZE_MINUS_FIRST in fs.fixes:
                    size -= first  # size = bh->b_size - first
            else:
                retval, addr = xip_get_addr(fs, bh)
                fs.ghost.in_flight[tid] = bh.blocknr
                holding = True
                size = retval
                if SIZE_MINUS_FIRST in fs.fixes:
                    size -= first  # size = retval - first
                if bh.unwritten and first:
                    yield "memset(addr, 0, first)"  # patch 22: only the head, only if unwritten
                    _memset_zero(fs, addr, first)
                if ZERO_NEW_BLOCK_EDGES in fs.fixes and bh.new:
                    if first and not bh.unwritten:  # (an unwritten head was just zeroed)
                        yield "if (buffer_new(bh)) memset(addr, 0, first)"
                        _memset_zero(fs, addr, first)
                    final = end - offset + first  # the user data ends here
                    if final < retval:
                        yield "if (buffer_new(bh)) memset(addr + final, 0, size - final)"
                        _memset_zero(fs, addr + final // us, retval - final)
                addr += first // us  # addr += first
            max_ = offset + size

        length = min(end - offset, max_ - offset)  # len = min(iov_len - copied, max - offset)
        n = length // us
        at = (offset - start) // us
        if rw == WRITE:
            yield "__copy_from_user_nocache(addr, buf, len)"
            for i in range(n):
                _dev_set(fs, addr + i, tag)
        elif not hole:
            yield "__copy_to_user(buf, addr, len)"
            for i in range(n):
                buf[at + i] = _dev_get(fs, addr + i)
        else:
            yield "__clear_user(buf, len)"
            for i in range(n):
                buf[at + i] = ZERO
        if addr is not None:
            addr += n
        offset += length

    if holding:
        del fs.ghost.in_flight[tid]
    return retval if offset == start else offset - start


@kernel_function("fs/inode.c", "3.13")
def inode_dio_done(fs):
    """``inode_dio_done()``: the direct I/O no longer holds ``i_dio_count``
    (``inode_dio_wait()`` may return once it drops to 0)."""
    yield "inode_dio_done(inode)"
    fs.i_dio_count.set(fs.i_dio_count.get() - 1)
    fs.rt.lock_map_release("i_dio_count")


@kernel_function("fs/xip.c", "seed 002 patch 06")
def xip_do_io(fs, rw, offset, length, get_block, end_io, flags, tag=None, buf=None):
    """``xip_do_io()`` of patch 06: the locking of ``do_blockdev_direct_IO``.
    With DIO_LOCKING a read takes ``i_mutex`` (a write's caller holds it);
    ``i_dio_count`` is raised across the I/O, so truncate's
    ``inode_dio_wait()`` waits for it."""
    end = offset + length
    locking = bool(flags & DIO_LOCKING) and rw == READ
    if locking:
        yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
        # filemap_write_and_wait_range(): an XIP mapping has no dirty pages

    yield "atomic_inc(&inode->i_dio_count)"  # protects against truncate
    fs.i_dio_count.set(fs.i_dio_count.get() + 1)
    fs.rt.lock_map_acquire("i_dio_count", "atomic_inc(&inode->i_dio_count)")  # inode_dio_wait waits for it

    retval = yield from xip_io(fs, rw, offset, end, get_block, direct_io_of(fs), tag, buf)

    if locking:
        yield "mutex_unlock(&inode->i_mutex)"
        fs.i_mutex.unlock()

    yield from inode_dio_done(fs)

    if retval > 0 and end_io is not None:
        yield from end_io(fs, offset, retval)
    return retval


def xip_direct_IO(fs, rw, offset, length, tag=None, buf=None):
    """The filesystem's ``->direct_IO`` under IS_XIP (ext2_direct_IO in patch
    06, ext4's in patch 19): ``xip_do_io`` with its get_block, end_io, flags.
    (ext2_write_failed() after a failed write is not modelled.)"""
    dio = direct_io_of(fs)
    end_io = dio.end_io if rw == WRITE else None
    return (yield from xip_do_io(fs, rw, offset, length, fs.flavour, end_io, dio.flags, tag, buf))


# -- mm/filemap.c: the callers (patch 06 makes io_is_direct() true for XIP) ----------


@kernel_function("mm/filemap.c", "3.13 with seed 002 patch 06")
def generic_file_aio_read(fs, pos, count):
    """``generic_file_aio_read()``, the ``io_is_direct()`` branch. Reads at or
    past ``i_size`` return 0. (A short direct read below ``size`` would fall
    through to ``do_generic_file_read()``, which ext2_aops_xip cannot serve:
    not modelled; the model returns what the direct read did.)"""
    us = fs.geo.unit_size
    if not count:
        return ReadResult(pos, 0, (), "read")
    yield "size = i_size_read(inode)"
    size = fs.i_size.get()
    retval = 0
    buf = [None] * (count // us)
    if pos < size:
        # filemap_write_and_wait_range(): nothing dirty in an XIP mapping
        retval = yield from xip_direct_IO(fs, READ, pos, count, buf=buf)
    if retval < 0:
        return ERRNO.get(retval, str(retval))
    return ReadResult(pos, retval, tuple(buf[:retval // us]), "read")


@kernel_function("mm/truncate.c", "3.13", dropped=0)
def invalidate_inode_pages2_range(fs, start, end):
    """Drop the hole pages of ``[start, end]`` from the page cache, unmapping
    them from every user mapping first. Each page is locked first
    (``lock_page`` waits for a fault or a read that holds it) and left alone
    if it left the page cache meanwhile (``page->mapping != mapping``)."""
    for index in fs.page_cache.keys():
        if start <= index <= end:
            yield fs.page_lock[index].lock(f"invalidate_inode_pages2_range(): lock_page(page {index})")
            if fs.page_cache.contains(index):
                for ptes in fs.ptes.values():
                    pte = ptes.get(index)
                    if pte is not None and pte[0] != "block":
                        ptes.delete(index)
                fs.page_cache.delete(index)
            fs.page_lock[index].unlock()


@kernel_function("mm/filemap.c", "3.13 with seed 002 patch 06")
def generic_file_direct_write(fs, ctx, pos, count):
    """``generic_file_direct_write()``: invalidate the cached pages of the
    range, ``->direct_IO``, invalidate again, then extend ``i_size``."""
    ps = fs.geo.page_size
    end = (pos + count - 1) // ps
    yield "if (mapping->nrpages) invalidate_inode_pages2_range(mapping, pos >> PAGE_CACHE_SHIFT, end)"
    yield from invalidate_inode_pages2_range(fs, pos // ps, end)

    written = yield from xip_direct_IO(fs, WRITE, pos, count, tag=data(ctx.thread, ctx.seq))

    yield "if (mapping->nrpages) invalidate_inode_pages2_range(mapping, pos >> PAGE_CACHE_SHIFT, end)"
    yield from invalidate_inode_pages2_range(fs, pos // ps, end)
    if written > 0:
        pos += written
        yield "if (pos > i_size_read(inode)) i_size_write(inode, pos)"
        if pos > fs.i_size.get():
            fs.i_size.set(pos)
    return written


@kernel_function("mm/filemap.c", "3.13")
def generic_file_aio_write(fs, ctx, pos, count):
    """``generic_file_aio_write()``: ``i_mutex`` around
    ``__generic_file_aio_write()``, whose checks (generic_write_checks,
    file_remove_suid, file_update_time) touch nothing modelled and whose
    ``io_is_direct()`` branch is :func:`generic_file_direct_write`. (A short
    direct write would fall back to a buffered write, which ext2_aops_xip
    cannot serve: not modelled.)"""
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    written = yield from generic_file_direct_write(fs, ctx, pos, count)
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return written


# -- mm/filemap_xip.c before patch 06: the read path race 13 is about -------------------


@kernel_function("fs/ext2/xip.c", "3.13")
def ext2_get_xip_mem(fs, pgoff, create):
    """``ext2_get_xip_mem()`` (fs/ext2/xip.c, removed by patch 10):
    ``__ext2_get_block()`` then ``__inode_direct_access()``. Returns (error,
    address of the page as a device unit index)."""
    bh = yield from fs.flavour(fs, pgoff * fs.geo.page_size // fs.geo.block_size, create)
    if bh is None:
        return ENOSPC, None
    if not bh.mapped:  # "did we get a sparse block (hole in the file)?"
        if create:
            raise AssertionError("BUG_ON(create): get_block(create=1) left a hole")
        return ENODATA, None
    fs.ghost.in_flight[fs.rt.thread] = bh.blocknr
    return 0, bh.blocknr * fs.geo.units_per_block


@kernel_function("mm/filemap_xip.c", "3.13")
def do_xip_mapping_read(fs, pos, length, buf):
    """``do_xip_mapping_read()`` (mm/filemap_xip.c, removed by patch 06): no
    lock against truncate; ``i_size`` is read once, then each page is looked
    up and copied. Returns bytes copied or an error."""
    ps, us = fs.geo.page_size, fs.geo.unit_size
    tid = fs.rt.thread
    index = pos // ps
    offset = pos % ps
    copied = 0
    error = 0
    yield "isize = i_size_read(inode)"
    isize = fs.i_size.get()
    if isize:
        end_index = (isize - 1) // ps
        while True:
            nr = ps  # nr is the maximum number of bytes to copy from this page
            if index >= end_index:
                if index > end_index:
                    break
                nr = (isize - 1) % ps + 1
                if nr <= offset:
                    break
            nr = nr - offset
            if nr > length - copied:
                nr = length - copied

            error, xip_mem = yield from ext2_get_xip_mem(fs, index, False)
            zero = False
            if error:
                if error == ENODATA:  # sparse
                    zero = True
                else:
                    break

            at, n = copied // us, nr // us
            if not zero:
                yield "left = __copy_to_user(buf+copied, xip_mem+offset, nr)"
                for i in range(n):
                    buf[at + i] = _dev_get(fs, xip_mem + offset // us + i)
                del fs.ghost.in_flight[tid]
            else:
                yield "left = __clear_user(buf + copied, nr)"
                for i in range(n):
                    buf[at + i] = ZERO

            copied += nr
            offset += nr
            index += offset // ps
            offset %= ps
            if copied >= length:
                break
    # out: *ppos = pos + copied; file_accessed(filp)
    return copied if copied else error


@kernel_function("mm/filemap_xip.c", "3.13")
def xip_file_read(fs, pos, length):
    """``xip_file_read()``: ext2_xip_file_operations.read before patch 06."""
    us = fs.geo.unit_size
    buf = [None] * (length // us)
    ret = yield from do_xip_mapping_read(fs, pos, length, buf)
    if ret < 0:
        return ERRNO.get(ret, str(ret))
    return ReadResult(pos, ret, tuple(buf[:ret // us]), "read")


# -- operations --------------------------------------------------------------------


OFFSET = Param("offset", help="file offset of the I/O", align="unit")
LENGTH = Param("len", help="bytes to read or write", align="unit")


@operation("read", "read(2) on a DAX file (seed 002, patch 06): generic_file_aio_read -> "
                   "->direct_IO -> xip_do_io -> xip_io", OFFSET, LENGTH)
def read(fs, ctx, offset, len):
    if not fs.dax:  # not io_is_direct(): the page cache, models/buffered.py
        return (yield from buffered_read(fs, ctx, offset, len))
    return (yield from generic_file_aio_read(fs, offset, len))


@operation("write", "write(2) on a DAX file (seed 002, patch 06): generic_file_aio_write (i_mutex) -> "
                    "->direct_IO -> xip_do_io -> xip_io; writes DATA(thread, seq)", OFFSET, LENGTH)
def write(fs, ctx, offset, len):
    if not fs.dax:  # not io_is_direct(): generic_file_buffered_write, models/buffered.py
        return (yield from buffered_write(fs, ctx, offset, len))
    written = yield from generic_file_aio_write(fs, ctx, offset, len)
    if written < 0:
        return ERRNO.get(written, str(written))
    return WriteResult(offset, written, data(ctx.thread, ctx.seq))


@operation("xip_file_read", "read(2) on an ext2 XIP file before patch 06: xip_file_read -> "
                            "do_xip_mapping_read (mm/filemap_xip.c), no lock against truncate; with the "
                            "treat_xip_like_o_direct fix, patch 06's path (as the read operation)",
           OFFSET, LENGTH)
def xip_file_read_op(fs, ctx, offset, len):
    # treat_xip_like_o_direct (patch 06: .aio_read = generic_file_aio_read)
    # is a preset of edits that replaces xip_file_read
    return (yield from xip_file_read(fs, offset, len))
