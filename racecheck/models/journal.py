"""The journal of ext3 (jbd) and ext4 (jbd2) in ordered mode, ext3's buffered
write path on it, and what a power failure keeps.

Mirrored code (2.6.19 for jbd and ext3, the kernel of seed 004; jbd2 of 4.0
works the same way for what is modelled here):

* :func:`journal_start`, :func:`journal_stop`: fs/jbd/transaction.c.
  ``start_this_handle()`` waits while the running transaction is
  ``T_LOCKED`` (a commit is waiting for its handles to stop), then joins it
  (``t_updates++``); a task that already has a handle
  (``current->journal_info``) only takes a reference. For lock_order the
  handle is held from start to stop, as lockdep's ``jbd2_handle`` map is.
* :func:`journal_dirty_data`: ext3's ordered mode files a buffer on the
  running transaction's ``t_sync_datalist``: its data goes to disk before the
  transaction's metadata commits.
* :func:`journal_commit_transaction`: kjournald. Lock the transaction, wait
  for ``t_updates`` to drop to zero (it is then closed: what its handles
  changed is what it commits, and new handles start the next one), write the
  ordered data (``journal_submit_data_buffers``), then the metadata and the
  commit record. Blocks the transaction freed become reusable only then.
* :func:`ext3_get_block`, :data:`EXT3_AOPS`: fs/ext3/inode.c, data=ordered:
  ``ext3_prepare_write`` starts a handle under the page lock and allocates
  through ``block_prepare_write``; ``ext3_ordered_commit_write`` files the
  buffers of ``[from, to)`` with ``ext3_journal_dirty_data``
  (``walk_page_buffers``), calls ``generic_commit_write`` and stops the
  handle. So ``commit_write(offset, offset+copied)`` after a short copy files
  nothing for the part not copied (seed 004, Mark Fasheh: "I think that in
  the case of a crash just after the transaction is closed in
  ->commit_write(), we might lose those guarantees, exposing stale data on
  disk").
* :func:`fsync`: ``filemap_write_and_wait`` of the dirty buffers, then a
  forced commit (ext3/ext4) or ``sync_inode`` (ext2).

What a crash keeps (racecheck/crash.py reads it): the device units, and the
metadata (block map, ``i_size``) of the last committed transaction
(:attr:`Journal.committed`). A crash loses the running and committing
transactions and the page cache. ext2 has no journal: its block map and
``i_size`` are on disk as soon as they change.

Not modelled: the journal's own blocks and checkpointing (a committed
transaction is replayed), revoke records, data=journal and data=writeback,
``i_disksize`` (``i_size`` is journalled as it is), credits (a handle never
waits for journal space), the orphan list.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime import wait_until
from .buffered import (
    A_OPS,
    AddressSpaceOperations,
    block_prepare_write,
    block_read_full_page,
    generic_commit_write,
    page_buffers,
    set_buffer,
)
from .fs import HOLE, STALE
from .get_block import ext2_get_blocks, journal_free_block  # noqa: F401  (free_block calls it)
from .kernel import kernel_function
from .registry import FS_SETUP, flavour, operation

T_RUNNING = "T_RUNNING"
T_LOCKED = "T_LOCKED"
JOURNAL_HANDLE = "jbd2_handle"  # lockdep's name for the handle map

# The get_block flavours of journalled filesystems; the others have no journal.
JOURNALLED = set()


@dataclass(frozen=True)
class OnDisk:
    """The metadata a committed transaction left on disk."""

    blocks: tuple  # file block -> (extent state, device block)
    i_size: int

    def __str__(self):
        mapped = ", ".join(f"{fb}: {state} {pblk}" for fb, (state, pblk) in enumerate(self.blocks)
                           if state != HOLE)
        return f"i_size {self.i_size}, blocks {{{mapped}}}"


class Journal:
    """The journal of the scenario's filesystem, and its running transaction."""

    def __init__(self, fs):
        rt = fs.rt
        self.t_state = rt.var("transaction.t_state", T_RUNNING)
        self.t_updates = rt.var("transaction.t_updates", 0)  # handles open
        # Ordered data: (page index, buffer) filed by journal_dirty_data.
        self.t_sync_datalist = rt.var("transaction.t_sync_datalist", ())
        # Device blocks the transaction freed: reusable once it commits.
        self.t_freed = rt.var("transaction.t_freed", ())
        self.committed = rt.var("journal.committed", metadata(fs, peek=True))
        # kjournald, the one thread that commits: a commit forced by fsync or
        # an ENOSPC retry runs in the caller, one at a time.
        self.kjournald = rt.mutex("kjournald")
        # current->journal_info: thread -> handle references. Each thread
        # only reads and writes its own entry, like a local variable, so it
        # need not be shared state for the reduction.
        self.handles = rt.thread_local("journal_info")
        self.errors = rt.thread_local("get_block errno")  # of the thread's last get_block (ext4_fault.py)


def metadata(fs, peek=False):
    """The inode's block map and i_size as a commit writes them (``peek``:
    without recording a read, for the initial state)."""
    if peek:
        return OnDisk(tuple(fs.i_blocks.values), fs.i_size.value)
    return OnDisk(tuple(fs.i_blocks.get(b) for b in range(len(fs.i_blocks))), fs.i_size.get())


def attach_journal(fs):
    fs.journal = Journal(fs) if fs.flavour in JOURNALLED else None


FS_SETUP.append(attach_journal)


# -- handles ----------------------------------------------------------------------------------


@kernel_function("include/linux/jbd.h", "2.6.19")
def journal_current_handle(fs):
    """``journal_current_handle()``: whether the task has a handle open
    (``current->journal_info``)."""
    return fs.journal.handles.get(fs.rt.thread, 0) > 0


@kernel_function("fs/jbd/transaction.c", "2.6.19", dropped=0)
def start_this_handle(fs, label):
    """``start_this_handle()``: wait while the running transaction is
    ``T_LOCKED`` (``wait_event(journal->j_wait_transaction_locked, ...)``),
    then join it (``t_updates++``)."""
    j, rt = fs.journal, fs.rt
    yield wait_until(rt, lambda: j.t_state.get() != T_LOCKED, label)
    j.t_updates.set(j.t_updates.get() + 1)
    return 0


@kernel_function("fs/jbd/transaction.c", "2.6.19")
def journal_start(fs, label):
    """``journal_start()``: join the running transaction
    (:func:`start_this_handle`), waiting while a commit has it locked; nested
    in the task's own handle, no step."""
    j, rt = fs.journal, fs.rt
    tid = rt.thread
    if j.handles.get(tid):
        j.handles[tid] += 1
        return
    yield from start_this_handle(fs, label)
    j.handles[tid] = 1
    rt.lock_map_acquire(JOURNAL_HANDLE, label)


@kernel_function("fs/jbd/transaction.c", "2.6.19", dropped=0)
def journal_stop(fs):
    """``journal_stop()``, inside the caller's step: drop a reference; the
    last one leaves the transaction (``t_updates--``)."""
    j, rt = fs.journal, fs.rt
    tid = rt.thread
    j.handles[tid] -= 1
    if j.handles[tid]:
        return
    del j.handles[tid]
    j.t_updates.set(j.t_updates.get() - 1)
    rt.lock_map_release(JOURNAL_HANDLE)


@kernel_function("fs/jbd/transaction.c", "2.6.19", dropped=0)
def journal_dirty_data(fs, index, i):
    """``journal_dirty_data(handle, bh)``: buffer ``i`` of page ``index`` is
    ordered data of the running transaction."""
    listed = fs.journal.t_sync_datalist.get()
    if (index, i) not in listed:
        fs.journal.t_sync_datalist.set(tuple(sorted(listed + ((index, i),))))


# -- the commit ---------------------------------------------------------------------------------


@kernel_function("fs/buffer.c", "2.6.19", name="submit_bh", dropped=0)
def write_buffer(fs, index, i):
    """``submit_bh(WRITE, bh)`` and its completion: buffer ``i`` of page
    ``index`` goes to its device block, and is clean."""
    bh = page_buffers(fs, index)[i]
    if not bh.mapped:
        return
    upb, bs, us = fs.geo.units_per_block, fs.geo.block_size, fs.geo.unit_size
    page = fs.page_cache.get(index)
    first = i * bs // us
    for u in range(upb):
        fs.dev.set(bh.blocknr * upb + u, page[first + u])
    set_buffer(fs, index, i, dirty=False)


@kernel_function("fs/jbd2/transaction.c", "v5.17")
def jbd2_journal_wait_updates(fs):
    """Wait for the handles of the locked transaction to stop (``t_updates``
    drops to zero). Inline in ``journal_commit_transaction()`` of 2.6.19 and
    of jbd2 4.0; ``jbd2_journal_wait_updates()`` since v5.17."""
    j, rt = fs.journal, fs.rt
    yield wait_until(rt, lambda: j.t_updates.get() == 0,
                     "wait_event(j_wait_updates, !commit_transaction->t_updates)", lock=JOURNAL_HANDLE)


@kernel_function("fs/jbd/commit.c", "2.6.19")
def journal_commit_transaction(fs):
    """kjournald's ``journal_commit_transaction()`` of the running transaction."""
    j = fs.journal
    yield j.kjournald.lock("kjournald: journal_commit_transaction(journal)")
    yield "commit_transaction->t_state = T_LOCKED"
    j.t_state.set(T_LOCKED)
    yield from jbd2_journal_wait_updates(fs)
    # Closed: it commits what its handles changed; new handles start the next one.
    committing = metadata(fs)
    data, freed = j.t_sync_datalist.get(), j.t_freed.get()
    j.t_sync_datalist.set(())
    j.t_freed.set(())
    j.t_state.set(T_RUNNING)
    if data:
        yield "journal_submit_data_buffers(journal, commit_transaction); wait for them"
        for index, i in data:
            if fs.page_cache.contains(index):
                write_buffer(fs, index, i)
    yield "journal_write_metadata_buffers(); journal_write_commit_record()"
    j.committed.set(committing)
    if freed:
        # The freed blocks go back to the allocator. The worst case is
        # modelled again: what they held is a previous owner's by now.
        fs.free_list.set(fs.free_list.get() + freed)
        for pblk in freed:
            for unit in fs.block_units(pblk):
                fs.dev.set(unit, STALE)
    yield "kjournald: the commit is done"
    j.kjournald.unlock()


@operation("journal_commit", "kjournald commits the running transaction: lock it, wait for its handles "
                             "to stop, write its ordered data, then its metadata and commit record "
                             "(journal_commit_transaction)",
           flavours=("ext3", "ext4-dax"))
def journal_commit(fs, ctx):
    yield from journal_commit_transaction(fs)
    return 0


# -- fsync -----------------------------------------------------------------------------------------


@kernel_function("mm/filemap.c", "2.6.19", dropped=0)
def filemap_write_and_wait(fs):
    """Write every dirty buffer of the file's cached pages, each page under
    its lock (``->writepage``), and wait for them."""
    yield "filemap_fdatawrite(mapping): pagevec_lookup_tag(PAGECACHE_TAG_DIRTY)"
    for index in fs.page_buffers.keys():
        if not any(b.dirty for b in page_buffers(fs, index)):
            continue
        yield fs.page_lock[index].lock(f"lock_page(page {index}); ->writepage(page)")
        for i, bh in enumerate(page_buffers(fs, index)):
            if bh.dirty and fs.page_cache.contains(index):
                write_buffer(fs, index, i)
        fs.page_lock[index].unlock()


@operation("fsync", "fsync(2): write the file's dirty page-cache buffers, then force a journal "
                    "commit (ext3, ext4-dax) or write the inode (the others); the writes that returned "
                    "before it began are then durable")
def fsync(fs, ctx):
    yield from filemap_write_and_wait(fs)
    if getattr(fs, "journal", None) is not None:
        yield from journal_commit_transaction(fs)  # ext3_sync_file(): ext3_force_commit()
    else:
        yield "sync_inode(inode, &wbc)"  # ext2's block map is on disk already
    return 0


# -- get_block under a handle ---------------------------------------------------------------------


def get_block_with_handle(fs, block, create, map_blocks, start, stop):
    """The get_block of a journalled filesystem: an allocation needs a handle;
    if the caller has none, get_block starts (and stops) its own, as
    ext3_get_block and _ext4_get_block do. Records the call's errno for the
    caller's thread."""
    started = create and not journal_current_handle(fs)
    if started:
        yield from journal_start(fs, start)
    bh = yield from map_blocks(fs, block, create)
    fs.journal.errors[fs.rt.thread] = "ENOSPC" if bh is None else None
    if started:
        yield stop
        journal_stop(fs)
    return bh


@kernel_function("fs/ext3/inode.c", "2.6.19")
def ext3_get_blocks_handle(fs, block, create):
    """fs/ext3/inode.c ``ext3_get_blocks_handle()`` for one block: ext2's
    allocation, under the caller's handle (the block map change is metadata
    of the running transaction). A new block is not zeroed: the caller
    initialises it (BH_New)."""
    yield f"ext3_get_blocks_handle(block {block}, create={int(create)})"
    return ext2_get_blocks(fs, block, create, zero=fs.dax)  # ext3 has no XIP; a DAX scenario on it gets ext2's clearing


@flavour("ext3", "ext3, data=ordered (2.6.19): ext2's allocation under a journal handle; the block map "
                 "and i_size commit with the transaction, after the data ext3 filed as ordered")
@kernel_function("fs/ext3/inode.c", "2.6.19")
def ext3_get_block(fs, block, create):
    return (yield from get_block_with_handle(
        fs, block, create, ext3_get_blocks_handle,
        "ext3_get_block(): handle = ext3_journal_start(inode, DIO_CREDITS)", "ext3_journal_stop(handle)"))


JOURNALLED.add(ext3_get_block)


# -- ext3's address space operations, data=ordered ---------------------------------------------


@kernel_function("fs/ext3/inode.c", "2.6.19", dropped=0)
def ext3_prepare_write(fs, index, from_, to):
    """``ext3_prepare_write()``: a handle, then ``block_prepare_write(page,
    from, to, ext3_get_block)``; the handle stays open until commit_write."""
    yield from journal_start(fs, "ext3_prepare_write(): handle = ext3_journal_start(inode, needed_blocks)")
    ret = yield from block_prepare_write(fs, index, from_, to, ext3_get_block)
    if ret:
        yield "ext3_journal_stop(handle)"
        journal_stop(fs)
    return ret


@kernel_function("fs/ext3/inode.c", "2.6.19", dropped=0)
def ext3_ordered_commit_write(fs, index, from_, to):
    """``ext3_ordered_commit_write()``: ``walk_page_buffers(handle,
    page_buffers(page), from, to, NULL, ext3_journal_dirty_data)`` (the
    buffers that overlap ``[from, to)``; none when the range is empty),
    ``generic_commit_write()``, ``ext3_journal_stop()``."""
    yield f"ext3_ordered_commit_write(page {index}, {from_}, {to}): walk_page_buffers(ext3_journal_dirty_data)"
    bs = fs.geo.block_size
    for i, bh in enumerate(page_buffers(fs, index)):
        if (i + 1) * bs > from_ and i * bs < to and bh.mapped:
            journal_dirty_data(fs, index, i)
    ret = yield from generic_commit_write(fs, index, from_, to)
    yield "ext3_journal_stop(handle)"
    journal_stop(fs)
    return ret


@kernel_function("fs/ext3/inode.c", "2.6.19", dropped=0)
def ext3_readpage(fs, index):
    """``ext3_readpage()``: ``mpage_readpage(page, ext3_get_block)``."""
    return (yield from block_read_full_page(fs, index, ext3_get_block))


EXT3_AOPS = AddressSpaceOperations(ext3_prepare_write, ext3_ordered_commit_write, ext3_readpage)
A_OPS[ext3_get_block] = EXT3_AOPS
