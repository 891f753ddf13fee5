"""ext4's DAX fault, as in v4.0 and as Jan Kara rewrote it in seed 001, and
ext4's writeback: race 12 of RACES.md.

Seed 001 (Jan Kara, 2015-02-17): "looking at that current code has a lock
ordering violation (at least for the case where the page exists) because
page lock ranks under transaction start but you end up calling
ext4_get_block() with create == 1 and without transaction started under page
lock (we don't have lockdep instrumentation for page locks so these problems
show up only as deadlocks under load)."

Mirrored code:

* :func:`ext4_dax_get_block`: ``_ext4_get_block()`` of v4.0 with
  ``EXT4_GET_BLOCKS_CREATE``: ``if (flags && !handle)`` it starts a
  transaction itself (``ext4_journal_start(inode, EXT4_HT_MAP_BLOCKS, ...)``)
  around ``ext4_map_blocks()`` (models/extents.py). The ``ext4-dax`` flavour:
  an ext4 file on DAX with its jbd2 journal (models/journal.py).
* :func:`ext4_dax_fault`: fs/ext4/file.c of v4.0, ``ext4_dax_fault()`` and
  ``ext4_dax_mkwrite()`` = ``dax_fault(vma, vmf, ext4_get_block)``: the fault
  of fs/dax.c, which locks the page-cache page over the hole (if there is one)
  and calls ``get_block(create=1)`` under it (models/dax.py, ``do_dax_fault``
  with the hole page locked). With the fix, Jan Kara's ``ext4_dax_fault``
  of seed 001: ``sb_start_pagefault()``, ``file_update_time()``,
  ``ext4_journal_start()``, ``do_dax_fault()``, ``ext4_jbd2_file_inode()``,
  ``ext4_journal_stop()``, and ``goto retry_alloc`` while
  ``ext4_should_retry_alloc()`` says a commit may free blocks, then
  ``sb_end_pagefault()``.
* :func:`ext4_writepages`: fs/ext4/inode.c of v4.0: under a handle
  (``ext4_journal_start_with_reserve``), ``mpage_prepare_extent_to_map()``
  locks each page it finds. That is the order ext4 ranks the two in
  (transaction start, then page lock), which Jan's remark is about.

Not modelled: ``file_update_time()`` (the inode's times), what
``ext4_jbd2_file_inode()`` orders (a DAX file's data is on the device when it
is stored: nothing waits for it at commit), the dirty tag (the model's
writeback locks every page of the file it finds in the page cache; a DAX hole
page is never dirty, so on v4.0 the second order comes from the other paths
that take it, ext4_write_begin's), and ``lock_page_or_retry()`` (the fault
waits for the page lock).
"""

from __future__ import annotations

from .dax import DAX_FAULT, do_dax_fault
from .extents import ext4_get_block
from .journal import (
    JOURNALLED,
    get_block_with_handle,
    journal_commit_transaction,
    journal_start,
    journal_stop,
)
from .kernel import kernel_function
from .operations import FS_SETUP
from .registry import fix, flavour, operation

EXT4_DAX_FAULT_HANDLE = fix(
    "ext4_dax_fault_starts_handle",
    "ext4_dax_fault/ext4_dax_mkwrite take sb_start_pagefault, then start the transaction, then call "
    "do_dax_fault (whose get_block then runs in that transaction, under the page lock), stop it, and "
    "retry on a transient ENOSPC (seed 001: Jan Kara's ext4_dax_fault, 2015-02-17)")


@flavour("ext4-dax", "ext4 on DAX with its jbd2 journal (v4.0): _ext4_get_block starts a transaction for an "
         "allocation when its caller has none; the DAX fault locks the hole page (fs/dax.c)", filesystem="ext4")
@kernel_function("fs/ext4/inode.c", "v4.0", name="_ext4_get_block")
def ext4_dax_get_block(fs, block, create):
    return (yield from get_block_with_handle(
        fs, block, create, ext4_get_block,
        "_ext4_get_block(): handle = ext4_journal_start(inode, EXT4_HT_MAP_BLOCKS, dio_credits)",
        "ext4_journal_stop(handle)"))


JOURNALLED.add(ext4_dax_get_block)


def attach_freeze_protection(fs):
    """The superblock's freeze protection for page faults (``sb_start_pagefault``
    is a read lock of it; ``freeze_super`` would take it for writing)."""
    if fs.flavour is ext4_dax_get_block:
        fs.sb_pagefaults = fs.rt.rwsem("sb_pagefaults")


FS_SETUP.append(attach_freeze_protection)


@kernel_function("fs/ext4/balloc.c", "v4.0", dropped=0)
def ext4_should_retry_alloc(fs, retries):
    """fs/ext4/balloc.c (4.0): ``if (!ext4_has_free_clusters(sbi, 1, 0) ||
    (*retries)++ > 3 || !sbi->s_journal) return 0; return
    jbd2_journal_force_commit_nested(sbi->s_journal);``. Blocks that the
    running transaction freed count as free, but the allocator cannot hand
    them out before the transaction commits: that is the transient ENOSPC.
    Returns whether to retry; the commit is the caller's next step."""
    yield "ext4_should_retry_alloc(inode->i_sb, &retries): ext4_has_free_clusters(sbi, 1, 0)?"
    has_free = bool(fs.free_list.get()) or bool(fs.journal.t_freed.get())
    return has_free and retries <= 3


@kernel_function("fs/ext4/file.c", "v4.0, and seed 001 (Jan Kara, 2015-02-17)")
def ext4_dax_fault(fs, vma, pgoff, write=False, cow=False):
    """The ->fault and ->page_mkwrite of an ext4 DAX file (see the module
    docstring). Returns what do_dax_fault returns."""
    create = not cow and write
    if EXT4_DAX_FAULT_HANDLE not in fs.fixes or not create:
        # v4.0: return dax_fault(vma, vmf, ext4_get_block);
        return (yield from do_dax_fault(fs, vma, pgoff, write, cow))
    rt = fs.rt
    yield fs.sb_pagefaults.down_read("sb_start_pagefault(inode->i_sb)")
    retries = 0
    while True:
        # retry_alloc:
        yield from journal_start(fs, "handle = ext4_journal_start(inode, EXT4_HT_WRITE_PAGE, "
                                     "ext4_writepage_trans_blocks(inode))")
        ret, page = yield from do_dax_fault(fs, vma, pgoff, write, cow)
        # The model's do_dax_fault folds get_block's errno into
        # VM_FAULT_SIGBUS; Jan's returns it: the handle's thread kept it.
        enospc = fs.journal.errors.get(rt.thread) == "ENOSPC"
        yield "ext4_jbd2_file_inode(handle, inode); ext4_journal_stop(handle)"
        journal_stop(fs)
        if not enospc or not (yield from ext4_should_retry_alloc(fs, retries)):
            break
        retries += 1
        # jbd2_journal_force_commit_nested(journal), then goto retry_alloc
        yield from journal_commit_transaction(fs)
    yield "sb_end_pagefault(inode->i_sb)"
    fs.sb_pagefaults.up_read()
    return ret, page


DAX_FAULT[ext4_dax_get_block] = ext4_dax_fault


@kernel_function("fs/ext4/inode.c", "v4.0", dropped=0)
def ext4_writepages(fs):
    """v4.0 ``ext4_writepages()``: a handle, then each page of the file in
    the page cache locked in turn by ``mpage_prepare_extent_to_map()``. A
    page with nothing to write (a clean hole page) is unlocked again."""
    yield from journal_start(fs, "handle = ext4_journal_start_with_reserve(inode, EXT4_HT_WRITE_PAGE, ...)")
    yield "mpage_prepare_extent_to_map(&mpd): pagevec_lookup_tag(&pvec, mapping, &index, tag, ...)"
    for index in fs.page_cache.keys():
        yield fs.page_lock[index].lock(f"lock_page(page {index})")
        yield f"unlock_page(page {index})"  # !PageDirty(page): nothing to map or submit
        fs.page_lock[index].unlock()
    yield "ext4_journal_stop(handle)"
    journal_stop(fs)


@operation("writeback", "writeback of the file's pages (ext4_writepages): start a transaction, then lock "
                        "each page in the page cache", flavours=("ext4-dax",))
def writeback(fs, ctx):
    yield from ext4_writepages(fs)
    return 0
