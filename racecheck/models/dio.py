"""Direct I/O: ``O_DIRECT`` reads and writes, synchronous and AIO.

A file that is not DAX (``file.dax: false``) goes through the block-device
direct I/O of fs/direct-io.c, as in seed 003 (Dave Chinner, 2010-07-30,
"direct-io: track unaligned IO that triggers sub-block zeroing", with Badari
Pulavarty's review). A DAX file goes through ``xip_do_io`` (seed 002, patches
06, 19 and 22; models/xip_io.py), with ext4's ``->direct_IO`` of patch 19.

Mirrored code, fs/direct-io.c of 2.6.36 (the tree seed 003's patch applies
to: ``dio_complete(dio, offset, ret, is_async)``):

* :func:`__blockdev_direct_IO`, :func:`direct_io_worker`,
  :func:`do_direct_IO`, :func:`get_more_blocks`, :func:`dio_zero_block`,
  :func:`dio_complete`, and the bio submission and completion.
* The seed's patch, behind the fix switch ``zero_block_tracking``:
  :func:`dio_start_zero_block`, :func:`dio_wait_zero_block`,
  :func:`dio_end_zero_block`, ``zero_block_front``/``zero_block_rear``, and
  the new body of ``dio_zero_block``, line for line (including "If we are
  doing a sub-block IO (i.e. zeroing both front and rear of the same block)
  we don't need to wait or set a gaurd for the rear of the block as we
  already have one set").
* ext4 of 2.6.36 (``ext4_ext_direct_IO``, ``ext4_ind_direct_IO``,
  ``ext4_end_io_dio``, ``ext4_end_io_work``) and, under DAX, 3.13 with
  patch 19 (``xip_do_io`` in place of ``__blockdev_direct_IO``).

The I/O itself. The sections ``do_direct_IO`` and ``dio_zero_block`` queue
(the zeroed head, the user data, the zeroed tail of a block) are contiguous
on the device, so they go into one bio, which ``direct_io_worker`` submits
after ``dio_zero_block(dio, 1)``: the rear zeroing decision (and, with the
fix, its wait) comes before anything of the I/O reaches the device. The
device performs a bio in one step, at some point after its submission: the
``dio_bio_end_io`` / ``dio_bio_end_aio`` step, which any other thread's steps
may precede.

Synchronous versus AIO (Badari's point 1). A write is submitted under
``i_mutex``, which ``generic_file_aio_write`` holds around
``->direct_IO``. A synchronous write waits for its bio
(``dio_await_completion``), runs ``dio_complete``, and ext4 converts the
unwritten extents before returning, so ``i_mutex`` covers the whole I/O. An
AIO write returns ``-EIOCBQUEUED`` once submitted, and ``i_mutex`` is
dropped; its bio completes later and ``dio_complete`` runs from the bio's
end_io, ext4 queues the conversion to its workqueue, and the work converts
the extents and calls ``aio_complete``. The model runs that completion in the
thread that submitted the write, after it dropped ``i_mutex``: every step of
the completion is still a separate step that other threads may interleave
with, which is all the kernel's interrupt and workqueue contexts add, and the
thread's operation returns (the user's ``io_getevents`` sees the
acknowledgement) when ``aio_complete`` has run. That is when the
invariants start to protect the write's data. (The kernel's ``aio_complete``
comes a step before the work unlocks ``i_mutex``; acknowledging at the return
is one step later and hides nothing: no step of another I/O runs in that
window that could not run after it.)

Where the model simplifies:

* The dio block size of an unaligned I/O is the device's logical block size,
  taken to be the unit size; an I/O not aligned to it is ``-EINVAL``.
* One ``get_block`` call maps one filesystem block (the model's flavours map
  one block at a time), and the user buffer is not paged: the data of the
  I/O is one tag.
* ``i_alloc_sem`` (``down_read_non_owner`` in ``__blockdev_direct_IO``,
  ``up_read_non_owner`` in ``dio_complete``) is modelled by ``i_dio_count``,
  which truncate waits on (``inode_dio_wait``), as in 3.x.
* A page-cache file's dirty cached pages of the range are written back
  before a direct I/O (``filemap_write_and_wait_range()`` in
  ``generic_file_aio_read``, in ``__blockdev_direct_IO`` for a
  ``DIO_LOCKING`` read and in ``generic_file_direct_write``), and a direct
  write invalidates the range's cached pages before and after
  ``->direct_IO``, as 2.6.36 does; ``-ENOTBLK`` (a write into a hole inside
  ``i_size`` on a ``DIO_SKIP_HOLES`` filesystem falls back to a buffered
  write) is returned as an error, not carried out.
* On a DAX file an AIO is synchronous: ``xip_do_io`` completes the I/O
  before it returns, and the extent conversion runs before the return as for
  a synchronous write (patch 19's ``io_end`` for an AIO is not modelled).
* XFS (``filesystem: xfs``, ``dax: false``): ``__blockdev_direct_IO`` with
  flags 0 and no ``i_mutex`` (2.6.36 took only the shared iolock, which
  excludes nothing here); its ``xfs_end_io_direct`` converts, then completes
  the AIO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..runtime import wait_until
from . import xip_io
from .buffered import page_buffers
from .extents import ext4_convert_unwritten_extents, ext4_get_block, ext4_get_block_write, fs_type
from .fs import ZERO, ReadResult, WriteResult, data
from .get_block import xfs_end_io_direct_write
from .journal import write_buffer
from .kernel import kernel_function
from .registry import Param, fix, operation
from .xip_io import invalidate_inode_pages2_range, xip_do_io

READ = 0
WRITE = 1
DIO_LOCKING = 0x01  # include/linux/fs.h
DIO_SKIP_HOLES = 0x02

ENOTBLK = -15
EINVAL = -22
ENOSPC = -28
EIOCBQUEUED = -529
ERRNO = {ENOTBLK: "-ENOTBLK", EINVAL: "-EINVAL", ENOSPC: "-ENOSPC", xip_io.EIO: "-EIO"}

LAST_SECTOR = None  # ((sector_t)-1LL): no block

ZERO_BLOCK_TRACKING = fix(
    "zero_block_tracking",
    "direct I/O keeps a list of the blocks it is zeroing part of; an unaligned I/O that finds its "
    "block on the list waits for that I/O to complete and skips its own zeroing (seed 003: Dave "
    "Chinner 2010-07-30, 'direct-io: track unaligned IO that triggers sub-block zeroing')")

EXT4_SERIALIZE_UNALIGNED_AIO = fix(
    "ext4_serialize_unaligned_aio",
    "not in seed 003's thread: the fix ext4 took instead (Eric Sandeen, 'ext4: serialize unaligned "
    "asynchronous DIO', 2.6.38, after XFS's 'serialise unaligned direct IOs'): an unaligned AIO write "
    "takes a per-inode mutex and waits until no AIO has unwritten extents left to convert")

ZERO_PAGE = "ZERO_PAGE(0)"  # what a zeroing section of a bio writes


@dataclass
class Kiocb:
    """The I/O control block: synchronous or not, what is pending for an AIO,
    and ext4's ``io_end`` (``iocb->private``)."""

    is_sync: bool
    owner: tuple  # (thread, seq): names the I/O in the zero-block list
    dio: object = None  # the struct dio of a queued AIO
    io_end: dict | None = None  # ext4_init_io_end() for an AIO write
    dio_unwritten: bool = False  # EXT4_STATE_DIO_UNWRITTEN for a synchronous write
    work: object = None  # queued end_io work: a generator to run
    result: object = None  # what aio_complete() reported


@dataclass
class Dio:
    """``struct dio``: the state of one direct I/O (private to its thread)."""

    rw: int
    iocb: Kiocb
    flags: int
    get_block: object
    end_io: object
    offset: int
    size: int
    blkbits: int  # bytes in a dio block (1 << blkbits in the kernel)
    blkfactor: int  # dio blocks per fs block is 1 << blkfactor
    is_async: bool = False
    i_size: int = 0
    block_in_file: int = 0
    final_block_in_request: int = 0
    blocks_available: int = 0
    next_block_for_io: int = 0
    start_zero_done: bool = False
    map_bh: object = None
    zero_block_front: object = LAST_SECTOR
    zero_block_rear: object = LAST_SECTOR
    result: int = 0
    tag: str | None = None  # what a write writes
    buf: list | None = None  # a read's user buffer, one tag per unit
    bio: list = field(default_factory=list)  # (device unit, units, ZERO_PAGE or user unit index)


def _units_per_dio_block(fs, dio):
    return dio.blkbits // fs.geo.unit_size


# -- fs/direct-io.c: the zero-block list (seed 003) ----------------------------------


@kernel_function("fs/direct-io.c", "seed 003")
def dio_start_zero_block(fs, dio, zero_block):
    """Seed 003: "Add a filesystem block to the list of blocks we are
    tracking" (the kmalloc failure path is not modelled)."""
    yield "dio_start_zero_block(): spin_lock(&dio_zero_block_lock); list_add(&zb->dio_list, ...)"
    fs.dio_zero_blocks.set(((zero_block, dio.iocb.owner),) + fs.dio_zero_blocks.get())


@kernel_function("fs/direct-io.c", "seed 003", dropped=False)
def dio_wait_zero_block(fs, dio, zero_block):
    """Seed 003: "Check whether a filesystem block is currently being zeroed,
    and if it is wait for it to complete before returning." Returns True if
    it waited (the block is initialised), False if it needs zeroing."""
    rt = fs.rt
    yield "dio_wait_zero_block(): spin_lock(&dio_zero_block_lock); list_for_each_entry(zb, ...)"
    for zb in fs.dio_zero_blocks.get():
        if zb[0] != zero_block:  # (one inode: zb->dio->inode is always ours)
            continue
        # atomic_inc(&zb->ref); spin_unlock(&dio_zero_block_lock);
        yield wait_until(rt, lambda zb=zb: zb not in fs.dio_zero_blocks.get(),
                         "wait_event(zb->wq, (list_empty(&zb->dio_list)))")
        # dio_drop_zero_block(zb): the reference count only
        return True
    return False


@kernel_function("fs/direct-io.c", "seed 003")
def dio_end_zero_block(fs, dio, zero_block):
    """Seed 003: "Complete a block zeroing and wake up anyone waiting for it."
    Like the patch, it removes the first entry for the inode and block,
    whichever I/O added it."""
    yield "dio_end_zero_block(): list_del_init(&zb->dio_list); wake_up(&zb->wq)"
    entries = fs.dio_zero_blocks.get()
    for i, zb in enumerate(entries):
        if zb[0] == zero_block:
            fs.dio_zero_blocks.set(entries[:i] + entries[i + 1:])
            return


# -- fs/direct-io.c: building and completing the I/O ------------------------------------


@kernel_function("fs/direct-io.c", "2.6.36", dropped=0)
def submit_page_section(fs, dio, what, nblocks, blocknr):
    """Queue ``nblocks`` dio blocks at device dio block ``blocknr`` into the
    I/O's bio: ``what`` is ZERO_PAGE or the user data at ``block_in_file``.
    (No shared state: the bio reaches the device when it is submitted and
    completes.)"""
    upd = _units_per_dio_block(fs, dio)
    user = None if what == ZERO_PAGE else dio.block_in_file * upd - dio.offset // fs.geo.unit_size
    dio.bio.append((blocknr * upd, nblocks * upd, what, user))


@kernel_function("fs/direct-io.c", "2.6.36")
def dio_bio_submit(fs, dio):
    """``dio_bio_submit()``: the bio goes to the device; its block has I/O in
    flight until it completes."""
    if not dio.bio:
        return
    yield "dio_bio_submit(dio): submit_bio(dio->rw, bio)"
    fs.ghost.in_flight[fs.rt.thread] = dio.bio[0][0] // fs.geo.units_per_block


@kernel_function("fs/direct-io.c", "2.6.36")
def dio_bio_end_io(fs, dio, label):
    """The device performs the bio and its end_io runs: a write's sections
    land on the device, a read's are copied into the user buffer."""
    if not dio.bio:
        return
    yield label
    for unit, n, what, user in dio.bio:
        for i in range(n):
            if dio.rw == WRITE:
                fs.dev.set(unit + i, ZERO if what == ZERO_PAGE else dio.tag)
            else:
                dio.buf[user + i] = fs.dev.get(unit + i)
    fs.ghost.in_flight.pop(fs.rt.thread, None)
    dio.bio = []


@kernel_function("fs/direct-io.c", "2.6.36", dropped=0)
def get_more_blocks(fs, dio):
    """``get_more_blocks()``: map the filesystem block under
    ``block_in_file``. Returns 0 or an error."""
    fs_startblk = dio.block_in_file >> dio.blkfactor
    create = dio.rw == WRITE
    if dio.flags & DIO_SKIP_HOLES:
        # "For writes inside i_size on a DIO_SKIP_HOLES filesystem we forbid
        # block creations: only overwrites are permitted."
        yield "if (dio->block_in_file < (i_size_read(dio->inode) >> dio->blkbits)) create = 0"
        if dio.block_in_file < fs.i_size.get() // dio.blkbits:
            create = False
    bh = yield from dio.get_block(fs, fs_startblk, create)
    if bh is None:
        return ENOSPC
    dio.map_bh = bh
    return 0


@kernel_function("fs/direct-io.c", "2.6.36 with seed 003")
def dio_zero_block(fs, dio, end):
    """``dio_zero_block(dio, end)``: an I/O that is not aligned to the
    filesystem block and maps a new block zeroes the part of the block it
    does not write: the front (``end`` = 0) or the rear (``end`` = 1).
    Without the fix, the 2.6.36 code; with ``zero_block_tracking``, seed
    003's."""
    dio.start_zero_done = True
    if not dio.blkfactor or dio.map_bh is None or not dio.map_bh.new:
        return
    dio_blocks_per_fs_block = 1 << dio.blkfactor
    this_chunk_blocks = dio.block_in_file & (dio_blocks_per_fs_block - 1)
    if not this_chunk_blocks:
        return
    if end:
        this_chunk_blocks = dio_blocks_per_fs_block - this_chunk_blocks

    if ZERO_BLOCK_TRACKING in fs.fixes:
        # "We need to zero out part of an fs block. It is either at the
        # beginning or the end of the fs block, but first we need to check if
        # there is already a zeroing being run on this block. If we are doing
        # a sub-block IO (i.e. zeroing both front and rear of the same block)
        # we don't need to wait or set a gaurd for the rear of the block as we
        # already have one set."
        fsblock = dio.block_in_file >> dio.blkfactor
        if not end or dio.zero_block_front != fsblock:
            # wait for any zeroing already in progress
            if (yield from dio_wait_zero_block(fs, dio, fsblock)):
                # skip the range we would have zeroed.
                dio.next_block_for_io += this_chunk_blocks
                return
            # "we are going to zero stuff now, so set a guard to catch others
            # that might want to zero the same block."
            yield from dio_start_zero_block(fs, dio, fsblock)
            if end:
                dio.zero_block_rear = fsblock
            else:
                dio.zero_block_front = fsblock

    # page = ZERO_PAGE(0); submit_page_section(dio, page, 0, this_chunk_blocks << dio->blkbits, ...)
    submit_page_section(fs, dio, ZERO_PAGE, this_chunk_blocks, dio.next_block_for_io)
    dio.next_block_for_io += this_chunk_blocks


@kernel_function("fs/direct-io.c", "2.6.36", dropped=0)
def do_direct_IO(fs, dio):
    """``do_direct_IO()``: walk the request a dio block at a time, map
    blocks, zero the front of a new block, queue the user data. Returns 0 or
    an error."""
    upd = _units_per_dio_block(fs, dio)
    dio_blocks_per_fs_block = 1 << dio.blkfactor
    while dio.block_in_file < dio.final_block_in_request:
        if dio.blocks_available == 0:
            # "Need to go and map some more disk"
            ret = yield from get_more_blocks(fs, dio)
            if ret:
                return ret
            map_bh = dio.map_bh
            if map_bh.mapped:
                dio.blocks_available = map_bh.size // dio.blkbits
                dio.next_block_for_io = map_bh.blocknr << dio.blkfactor
                # if (buffer_new(map_bh)) clean_blockdev_aliases(dio): no aliases modelled
                if dio.blkfactor:
                    dio_remainder = dio.block_in_file & (dio_blocks_per_fs_block - 1)
                    # "If the IO is a write and the block was newly allocated
                    # we cannot do that; the start of the fs block must be
                    # zeroed out on-disk"
                    if not map_bh.new:
                        dio.next_block_for_io += dio_remainder
                    dio.blocks_available -= dio_remainder
        # do_holes:
        if not dio.map_bh.mapped:
            if dio.rw == WRITE:
                return ENOTBLK  # "AKPM: eargh, -ENOTBLK is a hack"
            yield "i_size_aligned = ALIGN(i_size_read(dio->inode), 1 << blkbits)"
            i_size_aligned = -(-fs.i_size.get() // dio.blkbits) * dio.blkbits
            if dio.block_in_file >= i_size_aligned // dio.blkbits:
                return 0  # "We hit eof"
            # zero_user(page, block_in_page << blkbits, 1 << blkbits)
            at = dio.block_in_file * upd - dio.offset // fs.geo.unit_size
            for i in range(upd):
                dio.buf[at + i] = ZERO
            dio.block_in_file += 1
            continue

        # "If we're performing IO which has an alignment which is finer than
        # the underlying fs, go check to see if we must zero out the start of
        # this block."
        if dio.blkfactor and not dio.start_zero_done:
            yield from dio_zero_block(fs, dio, 0)

        this_chunk_blocks = min(dio.blocks_available, dio.final_block_in_request - dio.block_in_file)
        submit_page_section(fs, dio, "user data", this_chunk_blocks, dio.next_block_for_io)
        dio.next_block_for_io += this_chunk_blocks
        dio.block_in_file += this_chunk_blocks
        dio.blocks_available -= this_chunk_blocks
    return 0


@kernel_function("fs/direct-io.c", "2.6.36 with seed 003")
def dio_complete(fs, dio, offset, ret, is_async):
    """``dio_complete()`` with seed 003's ``dio_end_zero_block`` calls: the
    filesystem's end_io (or ``aio_complete``), the end of the I/O's
    zeroing guards, then ``up_read_non_owner(&inode->i_alloc_sem)``."""
    iocb = dio.iocb
    transferred = dio.result
    # "Check for short read case"
    if dio.rw == READ and offset + transferred > dio.i_size:
        transferred = max(dio.i_size - offset, 0)
    if ret == 0:
        ret = transferred
    if dio.end_io is not None and dio.result:
        yield from dio.end_io(fs, iocb, offset, transferred, ret, is_async)
    elif is_async:
        yield "aio_complete(dio->iocb, ret, 0)"
        iocb.result = ret

    if dio.zero_block_front != LAST_SECTOR:
        yield from dio_end_zero_block(fs, dio, dio.zero_block_front)
    if dio.zero_block_rear != LAST_SECTOR:
        yield from dio_end_zero_block(fs, dio, dio.zero_block_rear)

    yield "up_read_non_owner(&dio->inode->i_alloc_sem)"
    fs.i_dio_count.set(fs.i_dio_count.get() - 1)
    return ret


@kernel_function("fs/direct-io.c", "2.6.36")
def direct_io_worker(fs, dio):
    """``direct_io_worker()``: build and submit the I/O; a synchronous one
    (or an AIO that cannot be queued) waits for it and completes it."""
    yield "dio->i_size = i_size_read(inode)"
    dio.i_size = fs.i_size.get()
    dio.block_in_file = dio.offset // dio.blkbits
    dio.final_block_in_request = (dio.offset + dio.size) // dio.blkbits

    ret = yield from do_direct_IO(fs, dio)
    dio.result = dio.size - (dio.final_block_in_request - dio.block_in_file) * dio.blkbits
    # (-ENOTBLK: "The remaining part of the request will be be handled by
    # buffered I/O when we return" -- not modelled: it is returned.)

    # "There may be some unwritten disk at the end of a part-written
    # fs-block-sized block. Go zero that now."
    yield from dio_zero_block(fs, dio, 1)
    yield from dio_bio_submit(fs, dio)

    # "All block lookups have been performed. For READ requests we can let
    # i_mutex go now that its achieved its purpose of protecting us from
    # looking up uninitialized blocks."
    if dio.rw == READ and dio.flags & DIO_LOCKING:
        yield "mutex_unlock(&dio->inode->i_mutex)"
        fs.i_mutex.unlock()

    if dio.is_async and ret == 0 and dio.result and (dio.rw == READ or dio.result == dio.size):
        ret = EIOCBQUEUED
    if ret != EIOCBQUEUED:
        yield from dio_bio_end_io(fs, dio, "dio_await_completion(dio): the bio has completed")
        # "Sync will always be dropping the final ref and completing the operation."
        ret = yield from dio_complete(fs, dio, dio.offset, ret, False)
    else:
        dio.iocb.dio = dio  # bio completion will call dio_complete and aio_complete
    return ret


@kernel_function("fs/direct-io.c", "2.6.36")
def __blockdev_direct_IO(fs, iocb, rw, offset, length, get_block, end_io, flags, tag=None, buf=None):
    """``__blockdev_direct_IO()`` (2.6.36). With DIO_LOCKING a read takes
    ``i_mutex`` here (a write's caller holds it). Returns bytes done,
    ``-EIOCBQUEUED`` for a queued AIO, or an error."""
    bs, us = fs.geo.block_size, fs.geo.unit_size
    blkbits = bs
    if offset % bs or length % bs:
        # the fs block does not fit: use the device's logical block size
        blkbits = us
        if offset % us or length % us:
            return EINVAL
    blkfactor = (bs // blkbits).bit_length() - 1
    dio = Dio(rw=rw, iocb=iocb, flags=flags, get_block=get_block, end_io=end_io, offset=offset,
              size=length, blkbits=blkbits, blkfactor=blkfactor, tag=tag, buf=buf)
    if flags & DIO_LOCKING and rw == READ:
        # /* will be released by direct_io_worker */
        yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
        retval = yield from filemap_write_and_wait_range(fs, offset, offset + length - 1)
        if retval:
            yield "mutex_unlock(&inode->i_mutex)"
            fs.i_mutex.unlock()
            return retval
    yield "down_read_non_owner(&inode->i_alloc_sem); end > i_size_read(inode)?"
    fs.i_dio_count.set(fs.i_dio_count.get() + 1)
    # "For file extending writes updating i_size before data writeouts
    # complete can expose uninitialized blocks. So even for AIO, we need to
    # wait for i/o to complete before returning in this case."
    dio.is_async = not iocb.is_sync and not (rw == WRITE and offset + length > fs.i_size.get())
    return (yield from direct_io_worker(fs, dio))


@kernel_function("fs/direct-io.c", "2.6.36")
def dio_bio_end_aio(fs, iocb):
    """An AIO's bio completes after the submitter returned: the device does
    the I/O, ``dio_bio_end_aio()`` drops the last reference and calls
    ``dio_complete(dio, offset, 0, true)``; then whatever end_io queued runs.
    Returns what ``aio_complete()`` reported."""
    dio = iocb.dio
    yield from dio_bio_end_io(fs, dio, "dio_bio_end_aio(bio): the bio has completed")
    yield from dio_complete(fs, dio, dio.offset, 0, True)
    if iocb.work is not None:
        yield from iocb.work
    return iocb.result


# -- the filesystems' ->direct_IO and end_io ---------------------------------------------


def ext4_get_block_write_io(iocb):
    """``ext4_get_block_write`` as the direct write calls it: mapping an
    unwritten extent flags the I/O for conversion, in the AIO's ``io_end``
    (``ext4_set_io_unwritten_flag``) or, for a synchronous write, in the
    inode (``EXT4_STATE_DIO_UNWRITTEN``; writers hold ``i_mutex``, so the
    flag is kept with the write)."""
    def get_block(fs, block, create):
        bh = yield from ext4_get_block_write(fs, block, create)
        if bh is not None and bh.unwritten:
            if iocb.io_end is not None:
                if not iocb.io_end.get("unwritten"):
                    iocb.io_end["unwritten"] = True
                    if EXT4_SERIALIZE_UNALIGNED_AIO in fs.fixes:
                        # ext4_set_io_unwritten_flag(): atomic_inc(&EXT4_I(inode)->i_aiodio_unwritten)
                        fs.i_aiodio_unwritten.set(fs.i_aiodio_unwritten.get() + 1)
            else:
                iocb.dio_unwritten = True
        return bh
    return get_block


@kernel_function("fs/ext4/inode.c", "2.6.36")
def ext4_end_io_dio(fs, iocb, offset, size, ret, is_async):
    """``ext4_end_io_dio()`` (2.6.36): a synchronous write has no io_end
    (ext4_ext_direct_IO converts after the I/O); an AIO whose io_end needs
    no conversion is completed at once; otherwise the conversion is queued to
    the ``dio_unwritten_wq`` workqueue, whose work completes the AIO."""
    io_end = iocb.io_end
    if io_end is None or not size or not io_end.get("unwritten"):
        if is_async:
            yield "ext4_end_io_dio(): aio_complete(iocb, ret, 0)"
            iocb.result = ret
        return
    io_end.update(offset=offset, size=size, result=ret)
    yield "ext4_end_io_dio(): queue_work(wq, &io_end->work)"
    iocb.work = ext4_end_io_work(fs, iocb, io_end)


@kernel_function("fs/ext4/inode.c", "2.6.36")
def ext4_end_io_work(fs, iocb, io_end):
    """``ext4_end_io_work()`` -> ``ext4_end_io_nolock()`` (2.6.36): under
    ``i_mutex``, convert the extents the AIO wrote, then ``aio_complete``."""
    yield fs.i_mutex.lock("ext4_end_io_work(): mutex_lock(&inode->i_mutex)")
    yield from ext4_convert_unwritten_extents(fs, io_end["offset"], io_end["size"])
    if EXT4_SERIALIZE_UNALIGNED_AIO in fs.fixes:
        # "Wake up anyone waiting on unwritten extent conversion"
        yield "atomic_dec_and_test(&EXT4_I(inode)->i_aiodio_unwritten); wake_up_all(wq)"
        fs.i_aiodio_unwritten.set(fs.i_aiodio_unwritten.get() - 1)
    yield "ext4_end_io_nolock(): aio_complete(io->iocb, io->result, 0); mutex_unlock(&inode->i_mutex)"
    iocb.result = io_end["result"]
    fs.i_mutex.unlock()


@kernel_function("fs/ext4/inode.c", "2.6.36")
def ext4_direct_IO(fs, iocb, rw, offset, length, tag=None, buf=None):
    """``ext4_direct_IO()`` of an extent file: ``ext4_ext_direct_IO()``."""
    return (yield from ext4_ext_direct_IO(fs, iocb, rw, offset, length, tag, buf))


@kernel_function("fs/ext4/inode.c", "2.6.36 with seed 002 patch 19")
def ext4_ext_direct_IO(fs, iocb, rw, offset, length, tag=None, buf=None):
    """``ext4_ext_direct_IO()``: a write inside ``i_size`` maps with
    ``ext4_get_block_write`` (unwritten extents) and converts them after the
    I/O; reads and writes past ``i_size`` take ``ext4_ind_direct_IO``. Under
    DAX, patch 19 calls ``xip_do_io`` instead of ``__blockdev_direct_IO``."""
    yield "final_size = offset + count; if (rw == WRITE && final_size <= inode->i_size)"
    if rw == WRITE and offset + length <= fs.i_size.get():
        if not iocb.is_sync:
            iocb.io_end = {}  # iocb->private = ext4_init_io_end(inode, GFP_NOFS)
        get_block = ext4_get_block_write_io(iocb)
        if fs.dax:
            # Patch 19: xip_do_io(rw, iocb, inode, iov, offset, nr_segs,
            # get_block_func, ext4_end_io_dio, dio_flags). The I/O is
            # synchronous, so iocb->private is NULL and ext4_end_io_dio
            # returns at once: no end_io is passed.
            ret = yield from xip_do_io(fs, WRITE, offset, length, get_block, None,
                                               DIO_LOCKING, tag=tag)
        else:
            ret = yield from __blockdev_direct_IO(fs, iocb, WRITE, offset, length, get_block,
                                                  ext4_end_io_dio, DIO_LOCKING | DIO_SKIP_HOLES, tag)
        if ret > 0 and iocb.dio_unwritten:
            # "for non AIO case, since the IO is already completed, we could
            # do the conversion right here"
            err = yield from ext4_convert_unwritten_extents(fs, offset, ret)
            if err < 0:
                ret = err
            iocb.dio_unwritten = False  # ext4_clear_inode_state(EXT4_STATE_DIO_UNWRITTEN)
        return ret
    # "for write the the end of file case, we fall back to old way"
    return (yield from ext4_ind_direct_IO(fs, iocb, rw, offset, length, tag, buf))


@kernel_function("fs/ext4/inode.c", "2.6.36 with seed 002 patch 19")
def ext4_ind_direct_IO(fs, iocb, rw, offset, length, tag=None, buf=None):
    """``ext4_ind_direct_IO()``: ``ext4_get_block`` (written extents), and
    ``i_size`` extended after a write past it (the orphan case)."""
    orphan = False
    if rw == WRITE:
        yield "if (final_size > inode->i_size) { ext4_orphan_add(handle, inode); orphan = 1; }"
        orphan = offset + length > fs.i_size.get()
    if fs.dax:
        # Patch 19: xip_do_io(rw, iocb, inode, iov, offset, nr_segs, ext4_get_block, NULL, 0)
        ret = yield from xip_do_io(fs, rw, offset, length, ext4_get_block, None, 0,
                                           tag=tag, buf=buf)
    else:
        ret = yield from __blockdev_direct_IO(fs, iocb, rw, offset, length, ext4_get_block, None,
                                              DIO_LOCKING | DIO_SKIP_HOLES, tag, buf)
    if orphan and ret > 0:
        yield "if (end > inode->i_size) { ei->i_disksize = end; i_size_write(inode, end); }"
        if offset + ret > fs.i_size.get():
            fs.i_size.set(offset + ret)
    return ret


@kernel_function("fs/ext2/inode.c", "2.6.36")
def ext2_direct_IO(fs, iocb, rw, offset, length, tag=None, buf=None):
    """``ext2_direct_IO()``: ``blockdev_direct_IO(..., ext2_get_block)``
    (DIO_LOCKING | DIO_SKIP_HOLES)."""
    return (yield from __blockdev_direct_IO(fs, iocb, rw, offset, length, fs.flavour, None,
                                            DIO_LOCKING | DIO_SKIP_HOLES, tag, buf))


def xfs_get_blocks_direct_io(iocb):
    """``xfs_get_blocks_direct``: an unwritten mapping sets ``bh->b_private``
    (the I/O needs ``xfs_end_io_direct`` to convert)."""
    def get_block(fs, block, create):
        bh = yield from fs.flavour(fs, block, create)
        if bh is not None and bh.unwritten:
            iocb.dio_unwritten = True
        return bh
    return get_block


@kernel_function("fs/xfs/linux-2.6/xfs_aops.c", "2.6.36")
def xfs_end_io_direct(fs, iocb, offset, size, ret, is_async):
    """``xfs_end_io_direct()`` (2.6.36): convert unwritten extents (queued for
    an AIO, whose completion is delayed until after the conversion)."""
    if not (iocb.dio_unwritten and size > 0):
        if is_async:
            yield "xfs_end_io_direct(): aio_complete(iocb, ret, 0)"
            iocb.result = ret
        return
    if not is_async:
        yield from xfs_end_io_direct_write(fs, offset, size)
        return

    def work():
        yield from xfs_end_io_direct_write(fs, offset, size)
        yield "xfs_end_io(): aio_complete(ioend->io_iocb, ioend->io_result, 0)"
        iocb.result = ret
    yield "xfs_end_io_direct(): xfs_finish_ioend(ioend)"
    iocb.work = work()


@kernel_function("fs/xfs/linux-2.6/xfs_aops.c", "2.6.36")
def xfs_vm_direct_IO(fs, iocb, rw, offset, length, tag=None, buf=None):
    """``xfs_vm_direct_IO()``: ``__blockdev_direct_IO(..., xfs_get_blocks_direct,
    xfs_end_io_direct, 0)`` for writes (no DIO_LOCKING)."""
    get_block = xfs_get_blocks_direct_io(iocb)
    end_io = xfs_end_io_direct if rw == WRITE else None
    return (yield from __blockdev_direct_IO(fs, iocb, rw, offset, length, get_block, end_io, 0, tag, buf))


def direct_IO_of(fs):
    """The filesystem's ``->direct_IO``, and whether its write path takes
    ``i_mutex`` around it (generic_file_aio_write; XFS takes its iolock
    shared, which excludes no other direct I/O)."""
    kind = fs_type(fs)
    if kind == "ext4":
        return ext4_direct_IO, True
    if kind == "xfs":
        return xfs_vm_direct_IO, False
    return ext2_direct_IO, True


# -- mm/filemap.c ---------------------------------------------------------------------------


@kernel_function("mm/filemap.c", "2.6.36 (filemap_write_and_wait_range)", name="__filemap_fdatawrite_range",
                 dropped=0)
def filemap_write_and_wait_range(fs, lstart, lend):
    """``filemap_write_and_wait_range(mapping, lstart, lend)`` (2.6.36) on a
    page-cache file: ``if (mapping->nrpages)``,
    ``__filemap_fdatawrite_range(..., WB_SYNC_ALL)`` writes each dirty page of
    the range (``->writepage`` under the page lock: its dirty mapped
    buffers go to their blocks), then ``filemap_fdatawait_range()`` waits
    for them (the write and its completion are the page's step here).
    Direct I/O calls it before ``->direct_IO`` so that it does not read
    blocks older than the page cache. Registered as
    ``__filemap_fdatawrite_range``: ``filemap_write_and_wait_range`` is
    writeback.py's model at 4.4 (ext4 delayed allocation)."""
    ps = fs.geo.page_size
    first, last = lstart // ps, lend // ps
    if not fs.page_cache.keys():  # if (mapping->nrpages)
        return 0
    yield "__filemap_fdatawrite_range(mapping, lstart, lend, WB_SYNC_ALL): pagevec_lookup_tag(PAGECACHE_TAG_DIRTY)"
    for index in fs.page_buffers.keys():
        if not first <= index <= last or not any(b.dirty for b in page_buffers(fs, index)):
            continue
        yield fs.page_lock[index].lock(f"lock_page(page {index}); ->writepage(page)")
        if fs.page_cache.contains(index):
            for i, bh in enumerate(page_buffers(fs, index)):
                if bh.dirty:
                    write_buffer(fs, index, i)  # submit_bh(WRITE, bh); end_buffer_async_write()
        fs.page_lock[index].unlock()
    return 0


def generic_file_direct_write(fs, iocb, pos, count, direct_IO, tag):
    """``generic_file_direct_write()`` (2.6.36): on a page-cache file,
    ``filemap_write_and_wait_range()`` of the range, then
    ``invalidate_inode_pages2_range()`` of its cached pages ("After a write
    we want buffered reads to be sure to go to disk to get the new data"),
    ``->direct_IO``, the invalidation again, then extend ``i_size``. On a
    DAX file, hole pages over the range are invalidated before and after
    (as xip_io.py does)."""
    ps = fs.geo.page_size
    end = (pos + count - 1) // ps
    if fs.dax:
        yield "if (mapping->nrpages) invalidate_inode_pages2_range(mapping, pos >> PAGE_CACHE_SHIFT, end)"
        yield from invalidate_inode_pages2_range(fs, pos // ps, end)
    else:
        yield "written = filemap_write_and_wait_range(mapping, pos, pos + write_len - 1)"
        written = yield from filemap_write_and_wait_range(fs, pos, pos + count - 1)
        if written:
            return written
        # if (mapping->nrpages) (each page a step of its own)
        yield from invalidate_inode_pages2_range(fs, pos // ps, end)
    written = yield from direct_IO(fs, iocb, WRITE, pos, count, tag=tag)
    if fs.dax:
        yield "if (mapping->nrpages) invalidate_inode_pages2_range(mapping, pos >> PAGE_CACHE_SHIFT, end)"
        yield from invalidate_inode_pages2_range(fs, pos // ps, end)
    else:
        yield from invalidate_inode_pages2_range(fs, pos // ps, end)
    if written > 0:
        yield "if (pos + written > i_size_read(inode)) i_size_write(inode, pos + written)"
        if pos + written > fs.i_size.get():
            fs.i_size.set(pos + written)
    return written


def generic_file_aio_write(fs, iocb, pos, count, direct_IO, tag, i_mutex=True):
    """``generic_file_aio_write()``: ``i_mutex`` around
    ``__generic_file_aio_write()``, whose O_DIRECT branch is
    :func:`generic_file_direct_write`."""
    if i_mutex:
        yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    written = yield from generic_file_direct_write(fs, iocb, pos, count, direct_IO, tag)
    if i_mutex:
        yield "mutex_unlock(&inode->i_mutex)"
        fs.i_mutex.unlock()
    return written


@kernel_function("fs/ext4/file.c", "2.6.38", dropped=0)
def ext4_unaligned_aio(fs, pos, count):
    """``ext4_unaligned_aio()`` (2.6.38): an AIO inside ``i_size`` that is
    not aligned to the block."""
    yield "ext4_unaligned_aio(): if (pos >= inode->i_size) return 0"
    if pos >= fs.i_size.get():
        return False
    bs = fs.geo.block_size
    return bool(pos % bs or (pos + count) % bs)


@kernel_function("fs/ext4/file.c", "2.6.38")
def ext4_aiodio_wait(fs):
    """``ext4_aiodio_wait()`` (2.6.38): wait until no AIO of the inode has
    unwritten extents left to convert (``i_aiodio_unwritten`` is 0)."""
    yield wait_until(fs.rt, lambda: fs.i_aiodio_unwritten.get() == 0,
                     "ext4_aiodio_wait(inode): wait_event(*wq, i_aiodio_unwritten == 0)")


@kernel_function("fs/ext4/file.c", "2.6.36 (2.6.38 with ext4_serialize_unaligned_aio)")
def ext4_file_write(fs, iocb, pos, count, tag):
    """``ext4_file_write()``: ``generic_file_aio_write()``; with the fix
    ``ext4_serialize_unaligned_aio`` (2.6.38), an unaligned O_DIRECT AIO
    first takes ``ext4_aio_mutex(inode)`` and waits in
    ``ext4_aiodio_wait()`` for every pending unwritten conversion."""
    unaligned_aio = False
    if EXT4_SERIALIZE_UNALIGNED_AIO in fs.fixes and not iocb.is_sync:
        unaligned_aio = yield from ext4_unaligned_aio(fs, pos, count)
    if unaligned_aio:
        # "Unaligned direct AIO must be serialized; see comment above"
        yield fs.ext4_aio_mutex.lock("mutex_lock(ext4_aio_mutex(inode))")
        yield from ext4_aiodio_wait(fs)
    ret = yield from generic_file_aio_write(fs, iocb, pos, count, ext4_direct_IO, tag)
    if unaligned_aio:
        yield "mutex_unlock(ext4_aio_mutex(inode))"
        fs.ext4_aio_mutex.unlock()
    return ret


def generic_file_aio_read(fs, iocb, pos, count, direct_IO):
    """``generic_file_aio_read()`` (2.6.36), the O_DIRECT branch: if ``pos <
    i_size``, ``filemap_write_and_wait_range()`` of the range, then
    ``->direct_IO``."""
    us = fs.geo.unit_size
    buf = [None] * (count // us)
    yield "size = i_size_read(inode); if (pos < size)"
    retval = 0
    if count and pos < fs.i_size.get():
        retval = yield from filemap_write_and_wait_range(fs, pos, pos + count - 1)
        if not retval:
            retval = yield from direct_IO(fs, iocb, READ, pos, count, buf=buf)
    if retval < 0:
        return ERRNO.get(retval, str(retval))
    return ReadResult(pos, retval, tuple(buf[:-(-retval // us)]), "read")


# -- operations ------------------------------------------------------------------------------


def _write_result(offset, written, tag):
    if written < 0:
        return ERRNO.get(written, str(written))
    return WriteResult(offset, written, tag)


@operation("dio_write", "an O_DIRECT write (pwrite or io_submit): generic_file_aio_write -> ->direct_IO; "
                        "fs/direct-io.c for a page-cache file (seed 003), xip_do_io for a DAX one "
                        "(seed 002, ext4 as in patch 19); writes DATA(thread, seq)",
           Param("offset", align="unit", help="file offset of the write"),
           Param("len", align="unit", help="bytes to write"),
           Param("aio", "bool", False, False,
                 help="AIO (io_submit): i_mutex is dropped once the I/O is submitted; the I/O "
                      "completes, and the operation returns, later"))
def dio_write(fs, ctx, offset, len, aio=False):
    tag = data(ctx.thread, ctx.seq)
    direct_IO, i_mutex = direct_IO_of(fs)
    if fs.dax and direct_IO is not ext4_direct_IO:
        # ext2 and XFS on DAX: xip_io.py's write(2), which is the same path
        return (yield from xip_io.write(fs, ctx, offset, len))
    iocb = Kiocb(is_sync=not aio or fs.dax, owner=(ctx.thread, ctx.seq))
    if direct_IO is ext4_direct_IO:
        written = yield from ext4_file_write(fs, iocb, offset, len, tag)
    else:
        written = yield from generic_file_aio_write(fs, iocb, offset, len, direct_IO, tag, i_mutex)
    if written == EIOCBQUEUED:
        written = yield from dio_bio_end_aio(fs, iocb)
    return _write_result(offset, written, tag)


@operation("dio_read", "an O_DIRECT read: generic_file_aio_read -> ->direct_IO; fs/direct-io.c for a "
                       "page-cache file, xip_do_io for a DAX one (as the read operation)",
           Param("offset", align="unit", help="file offset of the read"),
           Param("len", align="unit", help="bytes to read"))
def dio_read(fs, ctx, offset, len):
    if fs.dax:
        return (yield from xip_io.generic_file_aio_read(fs, offset, len))
    direct_IO, _ = direct_IO_of(fs)
    iocb = Kiocb(is_sync=True, owner=(ctx.thread, ctx.seq))
    return (yield from generic_file_aio_read(fs, iocb, offset, len, direct_IO))

