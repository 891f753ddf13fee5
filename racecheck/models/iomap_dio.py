"""Direct I/O as iomap does it: XFS from 4.10, ext4 from 5.5.

A scenario reaches these models through its ``kernel:`` key. The seeds'
``dio_write`` and ``dio_read`` call the filesystem's ``->direct_IO``
(``xfs_vm_direct_IO``, ``ext4_direct_IO``) and ext4's ``ext4_file_write``
through the kernel table (models/kernel.py); this module registers later
releases under those names, so ``kernel: "4.10"`` (XFS) or ``kernel: "5.5"``
(ext4) runs iomap's path in their place. The names are seams: at 4.10 XFS's
``write_iter``/``read_iter`` call ``xfs_file_dio_aio_write`` and
``xfs_file_dio_aio_read`` directly (``xfs_vm_direct_IO`` is no longer on the
path), and at 5.5 ``ext4_file_write_iter`` calls ``ext4_dio_write_iter``
(``ext4_direct_IO`` is gone). Each release of a seam says which function it
stands for; the functions themselves are registered under their own names.

Mirrored code:

* fs/iomap.c, 4.10 (commit ff6a9292e6f6, "iomap: implement direct I/O"; read
  against 4.10.0; at 5.5 the actor is fs/iomap/direct-io.c's):
  :func:`iomap_dio_rw`, :func:`iomap_dio_actor` with ``iomap_dio_zero``
  (the sub-block zeroing of the head and the tail of a new or unwritten
  block), :func:`iomap_dio_complete`, and the AIO completion
  (``iomap_dio_bio_end_io`` -> ``iomap_dio_complete_work``).
* fs/xfs/xfs_file.c, 4.10: :func:`xfs_file_dio_aio_write` (an I/O not
  aligned to the filesystem block takes ``IOLOCK_EXCL`` and waits in
  ``inode_dio_wait``; an aligned one takes the iolock shared),
  :func:`xfs_file_aio_write_checks` (a write starting past EOF upgrades to
  the exclusive lock, drains direct I/O and zeroes from the old EOF:
  :func:`xfs_zero_eof`), :func:`xfs_file_dio_aio_read`.
* fs/xfs/xfs_iomap.c, 4.10: :func:`xfs_file_iomap_begin` (a direct write
  into a hole allocates an unwritten extent, ``IOMAP_F_NEW``: commit
  d531d91d6990, "xfs: always use unwritten extents for direct I/O writes"),
  :func:`xfs_iomap_write_unwritten`.
* The completion XFS passes to ``iomap_dio_rw``: :func:`xfs_dio_write_end_io`
  (fs/xfs/xfs_file.c, 4.10): it publishes the new ``i_size`` *before*
  converting the unwritten extents. The fix
  ``xfs_isize_after_unwritten_conversion`` is Eryu Guan's (commit
  ee70daaba82d, "xfs: update i_size after unwritten conversion in dio
  completion", 4.14).
* fs/ext4/file.c, 5.5 (commit 378f32bab371, "ext4: introduce direct I/O
  write using iomap infrastructure"): :func:`ext4_dio_write_iter` (the
  inode lock exclusive for every write; an unaligned AIO: ``inode_dio_wait``
  and wait for its own completion), read against 5.5-rc5,
  :func:`ext4_dio_write_end_io`, :func:`ext4_handle_inode_extension`;
  ``ext4_dio_read_iter`` (commit b1b4705d54ab, "ext4: introduce direct I/O
  read using iomap infrastructure"); fs/ext4/inode.c :func:`ext4_iomap_begin`
  (``ext4_iomap_alloc``: a block at or past ``i_size`` is allocated written,
  one inside it unwritten).

What the model leaves out:

* ``i_rwsem`` (the inode lock, XFS's iolock since 4.10) is a lock of its
  own, ``i_rwsem``; the seeds' truncate still takes ``i_mutex``, so no
  scenario mixes these paths with truncate. ``xfs_ilock_demote`` is the
  rwsem's ``downgrade_write``: an aligned write that upgraded for EOF
  zeroing runs its I/O shared, and no other writer comes in between.
* The bios of one I/O (head zeroing, data, tail zeroing) are contiguous and
  complete in one step, as models/dio.py does for fs/direct-io.c.
* ``xfs_zero_eof`` / ``iomap_zero_range`` zero written blocks through the
  page cache, which writeback writes later; the model writes the zeros to the
  device in the step that looks the block up (no page cache for these
  files). Holes and unwritten extents are skipped, as iomap does.
* No page-cache invalidation (``filemap_write_and_wait_range``,
  ``invalidate_inode_pages2_range``), no FUA or ``O_DSYNC``, no COW
  (reflink), no ``-ENOTBLK`` fallback to buffered I/O, no ``IOCB_NOWAIT``;
  ext4's journal handle and orphan list around an extending write are not
  modelled (``i_disksize`` is ``i_size``).
* One ``iomap_begin`` maps one filesystem block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dio import EINVAL, EIOCBQUEUED, ENOSPC, READ, WRITE
from .extents import (
    EXT4_GET_BLOCKS_CREATE,
    EXT4_GET_BLOCKS_IO_CREATE_EXT,
    ext4_convert_unwritten_extents,
    ext4_map_blocks,
)
from .fs import UNWRITTEN, WRITTEN, ZERO
from .get_block import alloc_block
from .kernel import kernel_function
from .registry import FS_SETUP, fix
from .truncate import inode_dio_wait

IOMAP_HOLE = "IOMAP_HOLE"
IOMAP_UNWRITTEN = "IOMAP_UNWRITTEN"
IOMAP_MAPPED = "IOMAP_MAPPED"

IOMAP_DIO_UNWRITTEN = 1 << 0  # include/linux/iomap.h: "covers unwritten extent(s)"
IOMAP_DIO_WRITE = 1 << 30

XFS_ISIZE_AFTER_CONVERT = fix(
    "xfs_isize_after_unwritten_conversion",
    "the XFS direct-write completion converts the unwritten extents before it publishes the new i_size "
    "(Eryu Guan, 'xfs: update i_size after unwritten conversion in dio completion', commit ee70daaba82d, "
    "4.14); before it, a direct read that saw the new i_size could read the extent still unwritten, as zeros")


def attach_i_rwsem(fs):
    """``inode->i_rwsem``: the inode lock of 4.7 on, XFS's iolock from 4.10."""
    fs.i_rwsem = fs.rt.rwsem("i_rwsem")


FS_SETUP.append(attach_i_rwsem)


@dataclass(frozen=True)
class Iomap:
    """``struct iomap`` for one filesystem block."""

    type: str
    addr: int | None = None  # device block
    new: bool = False  # IOMAP_F_NEW


@dataclass
class IomapDio:
    """``struct iomap_dio`` (private to its thread)."""

    rw: int
    pos: int  # iocb->ki_pos
    count: int
    i_size: int = 0
    end_io: object = None
    flags: int = 0
    wait_for_completion: bool = True
    size: int = 0
    error: int = 0  # dio->error: the first error (iomap_dio_set_error)
    tag: str | None = None
    buf: list | None = None
    bio: list = field(default_factory=list)  # (device unit, units, ZERO or user unit index)


@dataclass
class AioState:
    """What a queued AIO keeps in the kiocb (``iocb.dio`` of models/dio.py)."""

    dio: IomapDio
    ops: object = None


# -- fs/iomap.c, 4.10 ---------------------------------------------------------------------


def _lock(fs, exclusive, label):
    return fs.i_rwsem.down_write(label) if exclusive else fs.i_rwsem.down_read(label)


def _unlock(fs, exclusive):
    if exclusive:
        fs.i_rwsem.up_write()
    else:
        fs.i_rwsem.up_read()


@kernel_function("fs/iomap.c", "4.10 (ff6a9292e6f6)", dropped=0)
def iomap_dio_zero(fs, dio, iomap, pos, length):
    """``iomap_dio_zero()``: a bio of ZERO_PAGE over [pos, pos + len) of the
    block (queued with the I/O's other sections; no step of its own)."""
    us, bs = fs.geo.unit_size, fs.geo.block_size
    unit = iomap.addr * (bs // us) + (pos % bs) // us
    dio.bio.append((unit, length // us, ZERO))
    return 0


@kernel_function("fs/iomap.c", "4.10 (ff6a9292e6f6)", dropped=0)
def iomap_dio_actor(fs, dio, pos, length, iomap):
    """``iomap_dio_actor()`` for one block: a read of a hole or an unwritten
    extent zeroes the user buffer; a write of an unwritten extent or a new
    block zeroes the part of the block it does not write ("zero out from the
    start of the block to the write offset", "zero out from the end of the
    write to the end of the block"), then queues the data. Returns bytes done."""
    return _iomap_dio_actor(fs, dio, pos, length, iomap, zero_tail_past_eof=False)


@kernel_function("fs/iomap/direct-io.c", "5.5 (iomap_dio_bio_actor)", name="iomap_dio_actor", dropped=0,
                 release="5.5")
def iomap_dio_actor_5_5(fs, dio, pos, length, iomap):
    """``iomap_dio_bio_actor()`` (5.5): 4.10's, and a sub-block write that
    ends at or past ``i_size_read(inode)`` also zeroes the rest of its block
    whatever the extent ("If we don't zero the block tail in the latter
    case, we can expose stale data via mmap reads of the EOF block")."""
    return _iomap_dio_actor(fs, dio, pos, length, iomap, zero_tail_past_eof=True)


def _iomap_dio_actor(fs, dio, pos, length, iomap, zero_tail_past_eof):
    us, bs = fs.geo.unit_size, fs.geo.block_size
    if pos % us or length % us:
        return EINVAL  # "if ((pos | length | align) & ((1 << blkbits) - 1)) return -EINVAL"
    need_zeroout = False
    if iomap.type in (IOMAP_HOLE, IOMAP_UNWRITTEN):
        if not dio.flags & IOMAP_DIO_WRITE:
            # iov_iter_zero(length, dio->submit.iter); dio->size += length
            at = (pos - dio.pos) // us
            for i in range(length // us):
                dio.buf[at + i] = ZERO
            dio.size += length
            return length
        if iomap.type == IOMAP_HOLE:
            return -5  # WARN_ON_ONCE(dio->flags & IOMAP_DIO_WRITE): -EIO
        dio.flags |= IOMAP_DIO_UNWRITTEN
        need_zeroout = True
    elif iomap.new:
        need_zeroout = True
    if need_zeroout:
        pad = pos % bs
        if pad:
            iomap_dio_zero(fs, dio, iomap, pos - pad, pad)
    first = iomap.addr * (bs // us) + (pos % bs) // us
    dio.bio.append((first, length // us, (pos - dio.pos) // us))
    dio.size += length
    end = pos + length
    if need_zeroout or (zero_tail_past_eof and dio.flags & IOMAP_DIO_WRITE and end >= fs.i_size.get()):
        pad = end % bs
        if pad:
            iomap_dio_zero(fs, dio, iomap, end, bs - pad)
    return length


@kernel_function("fs/iomap.c", "4.10 (ff6a9292e6f6)")
def iomap_dio_bio_end_io(fs, dio, label):
    """The device performs the I/O's bios and ``iomap_dio_bio_end_io()`` runs:
    a write's sections land on the device, a read's fill the user buffer."""
    if not dio.bio:
        return
    yield label
    for unit, n, what in dio.bio:
        for i in range(n):
            if dio.rw == WRITE:
                fs.dev.set(unit + i, ZERO if what == ZERO else dio.tag)
            else:
                dio.buf[what + i] = fs.dev.get(unit + i)
    fs.ghost.in_flight.pop(fs.rt.thread, None)
    dio.bio = []


@kernel_function("fs/iomap.c", "4.10 (ff6a9292e6f6)")
def iomap_dio_complete(fs, dio):
    """``iomap_dio_complete()``: the filesystem's end_io, given ``dio->error
    ? dio->error : dio->size``, the short read check, then
    ``inode_dio_end()``. An I/O that failed part way returns the error, not
    the bytes it did; the end_io of XFS (4.10) and ext4 (5.5) return an
    error at once, so it is not called here."""
    ret = dio.error
    if dio.end_io is not None and not dio.error:
        ret = yield from dio.end_io(fs, dio.pos, dio.size, dio.flags)
    if not ret:
        ret = dio.size
        # "check for short read"
        if dio.rw == READ and dio.pos + ret > dio.i_size:
            ret = max(dio.i_size - dio.pos, 0)
    yield "inode_dio_end(file_inode(iocb->ki_filp))"
    fs.i_dio_count.set(fs.i_dio_count.get() - 1)
    return ret


@kernel_function("fs/iomap.c", "4.10 (ff6a9292e6f6)")
def iomap_dio_rw(fs, iocb, rw, pos, count, iomap_begin, end_io, tag=None, buf=None, wait=None):
    """``iomap_dio_rw(iocb, iter, ops, end_io)``: map a block at a time
    (``iomap_apply`` -> ``ops->iomap_begin`` -> :func:`iomap_dio_actor`),
    submit, and for a synchronous I/O wait and complete; an AIO write
    returns ``-EIOCBQUEUED`` (``wait``: 5.5's ``wait_for_completion``
    argument; 4.10: ``is_sync_kiocb(iocb)``)."""
    if not count:
        return 0
    dio = IomapDio(rw=rw, pos=pos, count=count, end_io=end_io, tag=tag, buf=buf,
                   wait_for_completion=iocb.is_sync if wait is None else wait)
    yield "dio->i_size = i_size_read(inode)"
    dio.i_size = fs.i_size.get()
    if rw == READ:
        if pos >= dio.i_size:
            return 0
    else:
        dio.flags |= IOMAP_DIO_WRITE
    yield "inode_dio_begin(inode)"
    fs.i_dio_count.set(fs.i_dio_count.get() + 1)
    bs = fs.geo.block_size
    ret = 0
    while count > 0:
        # iomap_apply(inode, pos, count, flags, ops, dio, iomap_dio_actor)
        length = min(count, bs - pos % bs)
        iomap = yield from iomap_begin(fs, pos // bs, rw == WRITE)
        if iomap is None:
            ret = ENOSPC
            break
        ret = iomap_dio_actor(fs, dio, pos, length, iomap)
        if ret <= 0:
            break
        pos += ret
        count -= ret
        if rw == READ and pos >= dio.i_size:
            break
    if dio.bio:
        yield "submit_bio(bio)"
        fs.ghost.in_flight[fs.rt.thread] = dio.bio[0][0] // fs.geo.units_per_block
    if ret < 0:
        dio.error = ret  # iomap_dio_set_error(dio, ret)
    if not dio.bio:
        # "if (!atomic_dec_and_test(&dio->ref))" is false: nothing in flight,
        # the submitter completes the I/O itself, AIO or not
        return (yield from iomap_dio_complete(fs, dio))
    if not dio.wait_for_completion:
        iocb.dio = AioState(dio)
        return EIOCBQUEUED
    yield from iomap_dio_bio_end_io(fs, dio, "wait for dio->submit.waiter: the bios have completed")
    return (yield from iomap_dio_complete(fs, dio))


@kernel_function("fs/iomap.c", "4.10 (ff6a9292e6f6)")
def iomap_dio_complete_work(fs, iocb):
    """An AIO's bios complete after the submitter returned:
    ``iomap_dio_bio_end_io()`` queues ``iomap_dio_complete_work()`` for a
    write, which runs :func:`iomap_dio_complete` and then
    ``iocb->ki_complete()`` (the user's ``io_getevents`` sees it). Run in the
    submitting thread after it unlocked, as models/dio.py does."""
    dio = iocb.dio.dio
    yield from iomap_dio_bio_end_io(fs, dio, "iomap_dio_bio_end_io(bio): queue_work(s_dio_done_wq)")
    ret = yield from iomap_dio_complete(fs, dio)
    yield "iocb->ki_complete(iocb, iomap_dio_complete(dio), 0)"
    return ret


# -- XFS, 4.10 ----------------------------------------------------------------------------


@kernel_function("fs/xfs/xfs_iomap.c", "4.10")
def xfs_file_iomap_begin(fs, block, write):
    """``xfs_file_iomap_begin()`` for one block: ``xfs_bmapi_read``; a direct
    write into a hole calls ``xfs_iomap_write_direct``, which allocates an
    unwritten extent (d531d91d6990) and sets ``IOMAP_F_NEW``. One
    transaction: one step."""
    yield f"xfs_file_iomap_begin(block {block}): xfs_bmapi_read(); xfs_iomap_write_direct() if a hole"
    state, pblk = fs.i_blocks.get(block)
    if state == WRITTEN:
        return Iomap(IOMAP_MAPPED, pblk)
    if state == UNWRITTEN:
        return Iomap(IOMAP_UNWRITTEN, pblk)
    if not write:
        return Iomap(IOMAP_HOLE)
    pblk = alloc_block(fs, block)
    if pblk is None:
        return None
    fs.i_blocks.set(block, (UNWRITTEN, pblk))
    return Iomap(IOMAP_UNWRITTEN, pblk, new=True)


@kernel_function("fs/xfs/xfs_iomap.c", "4.10", dropped=0)
def xfs_iomap_write_unwritten(fs, offset, size, update_isize=False):
    """``xfs_iomap_write_unwritten()``: convert the unwritten extents under
    [offset, offset + size) to written, a transaction per extent (one block
    here); with ``update_isize`` (4.14) the new i_size is written in the
    same transaction, after the conversion."""
    bs = fs.geo.block_size
    end = offset + size
    for block in range(offset // bs, (end + bs - 1) // bs):
        yield (f"xfs_bmapi_write(tp, ip, block {block}, XFS_BMAPI_CONVERT); "
               + ("if (update_isize && i_size > i_size_read(inode)) i_size_write(inode, i_size); "
                  if update_isize else "") + "xfs_trans_commit(tp)")
        state, pblk = fs.i_blocks.get(block)
        if state == UNWRITTEN:
            fs.i_blocks.set(block, (WRITTEN, pblk))
        if update_isize:
            i_size = min(end, (block + 1) * bs)
            if i_size > fs.i_size.get():
                fs.i_size.set(i_size)
    return 0


@kernel_function("fs/xfs/xfs_file.c", "4.10 (xfs_dio_write_end_io; 4.14 with ee70daaba82d as the fix)")
def xfs_dio_write_end_io(fs, offset, size, flags):
    """The end_io XFS passes to ``iomap_dio_rw``. In 4.10: "We need to update
    the in-core inode size here so that we don't end up with the on-disk
    inode size being outside the in-core inode size" -- under
    ``i_flags_lock``, ``i_size_write(inode, offset + size)``, then, for an
    I/O over unwritten extents, ``xfs_iomap_write_unwritten()``. With the
    fix ``xfs_isize_after_unwritten_conversion`` (4.14): the conversion
    first, updating i_size in its transactions, and return."""
    if size <= 0:
        return size
    if XFS_ISIZE_AFTER_CONVERT in fs.fixes and flags & IOMAP_DIO_UNWRITTEN:
        return (yield from xfs_iomap_write_unwritten(fs, offset, size, True))
    yield ("spin_lock(&ip->i_flags_lock); if (offset + size > i_size_read(inode)) "
           "i_size_write(inode, offset + size)")
    if offset + size > fs.i_size.get():
        fs.i_size.set(offset + size)
    if flags & IOMAP_DIO_UNWRITTEN:
        return (yield from xfs_iomap_write_unwritten(fs, offset, size))
    return 0  # xfs_setfilesize(): the on-disk size is not modelled


@kernel_function("fs/xfs/xfs_file.c", "4.10", dropped=0)
def xfs_zero_eof(fs, pos, isize):
    """``xfs_zero_eof(ip, offset, isize)`` -> ``iomap_zero_range(inode,
    isize, offset - isize)``: zero [isize, pos) in the written blocks
    there (holes and unwritten extents already read as zeros). A step per
    block: the lookup and the zeroing (see the module docstring)."""
    if pos <= isize:
        return 0
    bs, us, upb = fs.geo.block_size, fs.geo.unit_size, fs.geo.units_per_block
    for block in range(isize // bs, (pos + bs - 1) // bs):
        yield f"iomap_zero_range_actor(): block {block}, if (iomap->type == IOMAP_MAPPED) iomap_zero()"
        state, pblk = fs.i_blocks.get(block)
        if state != WRITTEN:
            continue
        lo, hi = max(isize, block * bs), min(pos, (block + 1) * bs)
        for u in range((lo - block * bs) // us, -(-(hi - block * bs) // us)):
            fs.dev.set(pblk * upb + u, ZERO)
    return 0


@kernel_function("fs/xfs/xfs_file.c", "4.10", dropped=0)
def xfs_file_aio_write_checks(fs, pos, count, lock):
    """``xfs_file_aio_write_checks()``, the EOF part: "If the offset is beyond
    the size of the file, we need to zero any blocks that fall between the
    existing EOF and the start of this write. If zeroing is needed and we are
    currently holding the iolock shared, we need to update it to exclusive";
    then "AIO can do EOF updates during IO completion and hence we now need
    to wait for all of them to drain" (``inode_dio_wait``), and restart.
    ``lock`` is ``[exclusive]``, updated in place (``*iolock``)."""
    drained_dio = False
    while True:
        yield "spin_lock(&ip->i_flags_lock); if (iocb->ki_pos > i_size_read(inode))"
        if pos <= fs.i_size.get():
            return 0
        if not drained_dio:
            if not lock[0]:
                yield "xfs_iunlock(ip, *iolock); *iolock = XFS_IOLOCK_EXCL"
                _unlock(fs, False)
                yield fs.i_rwsem.down_write("xfs_ilock(ip, XFS_IOLOCK_EXCL)")
                lock[0] = True
            yield from inode_dio_wait(fs)
            drained_dio = True
            continue
        yield "error = xfs_zero_eof(ip, iocb->ki_pos, i_size_read(inode), &zero)"
        isize = fs.i_size.get()
        return (yield from xfs_zero_eof(fs, pos, isize))


@kernel_function("fs/xfs/xfs_file.c", "4.10")
def xfs_file_dio_aio_write(fs, iocb, pos, count, tag):
    """``xfs_file_dio_aio_write()`` (4.10): "Don't take the exclusive iolock
    here unless the I/O is unaligned to the file system block size";
    ``xfs_file_aio_write_checks``; "If we are doing unaligned IO, wait for all
    other IO to drain" (``inode_dio_wait``); ``iomap_dio_rw(iocb, &data,
    &xfs_iomap_ops, xfs_dio_write_end_io)``; unlock. An AIO's completion
    runs after the unlock."""
    bs = fs.geo.block_size
    unaligned_io = bool(pos % bs or (pos + count) % bs)
    lock = [unaligned_io]
    yield _lock(fs, unaligned_io, "xfs_ilock(ip, iolock): XFS_IOLOCK_EXCL if unaligned_io, else "
                                  "XFS_IOLOCK_SHARED")
    ret = yield from xfs_file_aio_write_checks(fs, pos, count, lock)
    if not ret:
        if unaligned_io:
            yield from inode_dio_wait(fs)
        elif lock[0]:
            # xfs_ilock_demote(ip, XFS_IOLOCK_EXCL); iolock = XFS_IOLOCK_SHARED: the checks took
            # it exclusive to zero past EOF; the aligned I/O runs shared (downgrade_write: no
            # other writer can come in between).
            yield "xfs_ilock_demote(ip, XFS_IOLOCK_EXCL)"
            fs.i_rwsem.downgrade_write()
            lock[0] = False
        ret = yield from iomap_dio_rw(fs, iocb, WRITE, pos, count, xfs_file_iomap_begin,
                                      xfs_dio_write_end_io, tag=tag)
    yield "xfs_iunlock(ip, iolock)"
    _unlock(fs, lock[0])
    if ret == EIOCBQUEUED:
        ret = yield from iomap_dio_complete_work(fs, iocb)
    return ret


@kernel_function("fs/xfs/xfs_file.c", "4.10")
def xfs_file_dio_aio_read(fs, iocb, pos, count, buf):
    """``xfs_file_dio_aio_read()`` (4.10): the iolock shared around
    ``iomap_dio_rw(iocb, to, &xfs_iomap_ops, NULL)``."""
    yield fs.i_rwsem.down_read("xfs_ilock(ip, XFS_IOLOCK_SHARED)")
    ret = yield from iomap_dio_rw(fs, iocb, READ, pos, count, xfs_file_iomap_begin, None, buf=buf)
    yield "xfs_iunlock(ip, XFS_IOLOCK_SHARED)"
    fs.i_rwsem.up_read()
    return ret


@kernel_function("fs/xfs/xfs_file.c", "4.10: xfs_file_dio_aio_write / xfs_file_dio_aio_read",
                 name="xfs_vm_direct_IO", release="4.10")
def xfs_vm_direct_IO_4_10(fs, iocb, rw, offset, length, tag=None, buf=None):
    """The seam (module docstring): at 4.10 the O_DIRECT branch of
    ``xfs_file_write_iter`` / ``xfs_file_read_iter`` calls
    :func:`xfs_file_dio_aio_write` / :func:`xfs_file_dio_aio_read`."""
    if rw == WRITE:
        return (yield from xfs_file_dio_aio_write(fs, iocb, offset, length, tag))
    return (yield from xfs_file_dio_aio_read(fs, iocb, offset, length, buf))


# -- ext4, 5.5 ----------------------------------------------------------------------------


@kernel_function("fs/ext4/inode.c", "5.5")
def ext4_iomap_begin(fs, block, write):
    """``ext4_iomap_begin()`` for one block: a lookup; for a direct write
    that needs blocks, ``ext4_iomap_alloc()``: "We use i_size instead of
    i_disksize here ..." -- a block at or past ``i_size`` is allocated with
    ``EXT4_GET_BLOCKS_CREATE`` (written, not zeroed: ``IOMAP_F_NEW``), one
    inside it with ``EXT4_GET_BLOCKS_IO_CREATE_EXT`` (unwritten)."""
    if write:
        yield "ext4_iomap_alloc(): if ((map->m_lblk << blkbits) >= i_size_read(inode))"
        flags = (EXT4_GET_BLOCKS_CREATE if block * fs.geo.block_size >= fs.i_size.get()
                 else EXT4_GET_BLOCKS_IO_CREATE_EXT)
        bh = yield from ext4_map_blocks(fs, block, flags)
    else:
        bh = yield from ext4_map_blocks(fs, block, 0)
    if bh is None:
        return None
    if bh.unwritten:
        return Iomap(IOMAP_UNWRITTEN, bh.blocknr, new=bh.new)
    if bh.mapped:
        return Iomap(IOMAP_MAPPED, bh.blocknr, new=bh.new)
    return Iomap(IOMAP_HOLE)


@kernel_function("fs/ext4/file.c", "5.5 (378f32bab371)", dropped=0)
def ext4_dio_write_end_io(fs, offset, size, flags):
    """``ext4_dio_write_end_io()``: "if (size && flags & IOMAP_DIO_UNWRITTEN)
    return ext4_convert_unwritten_extents(NULL, inode, offset, size)"."""
    if size and flags & IOMAP_DIO_UNWRITTEN:
        return (yield from ext4_convert_unwritten_extents(fs, offset, size))
    return 0


@kernel_function("fs/ext4/file.c", "5.5 (378f32bab371)", dropped=0)
def ext4_handle_inode_extension(fs, offset, written, count):
    """``ext4_handle_inode_extension()``: after an extending write's I/O has
    completed, "if (offset + written > i_size_read(inode)) i_size_write()"
    (the orphan list and ``i_disksize`` are not modelled)."""
    if written <= 0:
        return written
    yield "ext4_handle_inode_extension(): if (offset + written > i_size_read(inode)) i_size_write(...)"
    if offset + written > fs.i_size.get():
        fs.i_size.set(offset + written)
    return written


@kernel_function("fs/ext4/file.c", "5.5 (378f32bab371)")
def ext4_dio_write_iter(fs, iocb, pos, count, tag):
    """``ext4_dio_write_iter()`` (5.5): ``inode_lock`` (exclusive, whatever
    the I/O); ``ext4_write_checks``; "Unaligned asynchronous direct I/O must
    be serialized among each other" -- an AIO that is not block-aligned and
    starts below the block-rounded ``i_size`` (``ext4_unaligned_aio``) waits
    in ``inode_dio_wait``; the lock would be downgraded for an overwrite
    only with the ``dioread_nolock`` mount option, which 5.5 does not set by
    default (244adf6426ee made it the default in 5.6), so it is held
    exclusive throughout; a write past ``i_disksize`` (the model's
    ``i_size``) goes on the orphan list and is ``extend``;
    ``iomap_dio_rw(..., is_sync_kiocb(iocb) || unaligned_aio || extend)``;
    ``ext4_handle_inode_extension``; ``inode_unlock``. The shared lock at
    the start and the restart (``ext4_dio_write_checks``) are 5.6's
    (aa9714d0e397)."""
    bs = fs.geo.block_size
    yield fs.i_rwsem.down_write("inode_lock(inode)")
    yield ("ext4_write_checks(); if (!is_sync_kiocb(iocb) && ext4_unaligned_aio(inode, from, offset)): "
           "if (pos >= ALIGN(i_size_read(inode), s_blocksize)) return 0")
    isize = fs.i_size.get()
    unaligned_aio = (not iocb.is_sync and pos < -(-isize // bs) * bs and bool(pos % bs or count % bs))
    if unaligned_aio:
        yield from inode_dio_wait(fs)
    yield "if (offset + count > EXT4_I(inode)->i_disksize) { ext4_orphan_add(handle, inode); extend = true; }"
    extend = pos + count > fs.i_size.get()
    ret = yield from iomap_dio_rw(fs, iocb, WRITE, pos, count, ext4_iomap_begin, ext4_dio_write_end_io,
                                  tag=tag, wait=iocb.is_sync or unaligned_aio or extend)
    if extend:
        ret = yield from ext4_handle_inode_extension(fs, pos, ret, count)
    yield "inode_unlock(inode)"
    fs.i_rwsem.up_write()
    if ret == EIOCBQUEUED:
        ret = yield from iomap_dio_complete_work(fs, iocb)
    return ret


@kernel_function("fs/ext4/file.c", "5.5: ext4_file_write_iter -> ext4_dio_write_iter",
                 name="ext4_file_write", release="5.5")
def ext4_file_write_5_5(fs, iocb, pos, count, tag):
    """The seam (module docstring): at 5.5 ``ext4_file_write_iter`` sends an
    O_DIRECT write to :func:`ext4_dio_write_iter`."""
    return (yield from ext4_dio_write_iter(fs, iocb, pos, count, tag))


@kernel_function("fs/ext4/file.c", "5.5: ext4_dio_read_iter (b1b4705d54ab)", name="ext4_direct_IO", release="5.5")
def ext4_dio_read_iter(fs, iocb, rw, offset, length, tag=None, buf=None):
    """The seam for reads: at 5.5 ``ext4_file_read_iter`` sends an O_DIRECT
    read to ``ext4_dio_read_iter()``: ``inode_lock_shared``, ``iomap_dio_rw(iocb,
    to, &ext4_iomap_ops, NULL, is_sync_kiocb(iocb))``, unlock. (Writes do not
    come here at 5.5: ``ext4_file_write`` does.)"""
    if rw == WRITE:
        return EINVAL
    yield fs.i_rwsem.down_read("inode_lock_shared(inode)")
    ret = yield from iomap_dio_rw(fs, iocb, READ, offset, length, ext4_iomap_begin, None, buf=buf)
    yield "inode_unlock_shared(inode)"
    fs.i_rwsem.up_read()
    return ret


