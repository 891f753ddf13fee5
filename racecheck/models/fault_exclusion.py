"""The fault-exclusion locks of the kernel's later history: a lock that page
faults take shared and that truncate, hole punch and the other fallocate
range operations take exclusive, so that no fault can map a page or a block
of the range between the operation's removal of the page cache (and page
tables) and its change of the block map.

Three generations, each a ``kernel:`` release of the functions that changed
(racecheck/models/kernel.py); without the key, scenarios run the seeds' code:

* ext4's ``i_mmap_sem`` (v4.5, ea3d7209ca01 "ext4: fix races between page
  faults and hole punching", with its companions for truncate and the
  fallocate modes in the same series): :func:`ext4_dax_fault_4_5`,
  :func:`ext4_filemap_fault`, :func:`ext4_setattr_4_5`,
  :func:`ext4_punch_hole_4_5`, :func:`ext4_collapse_range_4_5`,
  :func:`ext4_insert_range_4_5`, :func:`ext4_zero_range_4_5`.
* XFS's ``MMAPLOCK`` (v4.1, 653c60b633a9 "xfs: introduce mmap/truncate
  lock"): ``xfs_ilock(ip, XFS_MMAPLOCK_SHARED)`` in :func:`xfs_filemap_fault`,
  ``XFS_MMAPLOCK_EXCL`` in :func:`xfs_setattr_size_4_1` and
  :func:`xfs_file_fallocate`, which sends each mode to
  :func:`xfs_free_file_space`, :func:`xfs_collapse_file_space`,
  :func:`xfs_insert_file_space`, :func:`xfs_zero_file_space`.
* The VFS's ``invalidate_lock`` (5.15, 730633f0b7f9 "mm: Protect operations
  adding pages to page cache with invalidate_lock"; d4f5258eae7b "ext4:
  Convert to use mapping->invalidate_lock"; 2433480a7e1d "xfs: Convert to
  use invalidate_lock"): :func:`filemap_fault_5_15` takes it shared when it
  must read the page; ext4 and XFS take it exclusive where they took
  ``i_mmap_sem`` and ``XFS_MMAPLOCK_EXCL``.

The state (models/fs.py) gains one rwsem per lock, made by an FS_SETUP hook
(:func:`attach_fault_exclusion_locks`): ``fs.i_mmap_sem`` on ext4,
``fs.i_mmaplock`` on XFS, ``fs.invalidate_lock`` on both.

How a fault reaches these: ``mmap_load``/``mmap_store`` call ``__do_fault``
(models/dax.py); at these releases ``__do_fault`` is :func:`do_fault_4_1`,
:func:`do_fault_4_5` or :func:`do_fault_5_15`, which call the file's
``vma->vm_ops->fault`` of that release: ext4's DAX fault for an ext4 DAX file
(whatever ``handler`` says), the scenario's ``handler`` for another DAX file,
and for a page-cache file (``file.dax: false``) the filesystem's
page-cache fault over :func:`filemap_fault`, whose page is mapped read-only
as a ``("page", index)`` PTE.

``->page_mkwrite`` of an XFS page-cache file at 4.1 is modelled
(:func:`do_shared_fault`, :func:`do_wp_page_4_1`, :func:`do_cow_fault`,
:func:`xfs_filemap_page_mkwrite`, :func:`block_page_mkwrite`); ``do_page_mkwrite``
calls the filesystem's from :data:`PAGE_MKWRITE`, where models/page_mkwrite.py
puts ext4's of 4.5. The store path was read against 4.1.15 (mm/memory.c,
fs/buffer.c) and 4.5.7 (mm/memory.c): docs/kernels/fault_exclusion.md,
Sources.

Left out everywhere: ``->page_mkwrite`` of an ext4 page-cache file at 4.1,
and of XFS's at 4.5 and 5.15 (a store through such a mapping is
refused), and of an ext4 DAX file (a store to its
read-only hole page goes through the seeds' ``do_wp_page``/``xip_mkwrite``,
not 4.5's ``ext4_dax_mkwrite``/``ext4_dax_pfn_mkwrite``), readahead, ``lock_page_or_retry``'s
dropping of mmap_sem (``VM_FAULT_RETRY``), ext4's
``filemap_write_and_wait_range`` for a file without delayed allocation (with
it, the range operations write back through models/writeback.py's 4.4
release; XFS's write-out is :func:`xfs_vm_writepages`), the journal handles of the range operations, the extent status
tree, ``ext4_inode_block_unlocked_dio`` (the dioread_nolock readers),
``ext4_break_layouts``/``xfs_break_layouts`` (pNFS and DAX layouts), the XFS
``IOLOCK`` (its place is the model's ``i_mutex``) and ``ILOCK`` (one block-map
change is one step), multi-block extents (a shift moves one block map entry
per file block) and huge pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from .buffered import (
    PageUptodate,
    add_to_page_cache,
    address_space_operations,
    block_commit_write,
    block_prepare_write,
    page_buffers,
    page_mkclean,
)
from .dax import (
    COW_UNDER_I_MMAP_MUTEX,
    VM_FAULT_COWED,
    VM_FAULT_LOCKED,
    VM_FAULT_NOPAGE,
    VM_FAULT_RETRY,
    VM_FAULT_SIGBUS,
    AnonPage,
    do_dax_fault,
    fault_handler,
    is_private,
)
from .extents import fs_type
from .fallocate import COLLAPSE_RANGE, INSERT_RANGE, PUNCH_HOLE, ZERO_RANGE, mode
from .filemap_read import filemap_read_page
from .fs import HOLE, UNWRITTEN, WRITTEN
from .get_block import free_block
from .journal import journal_start, journal_stop, write_buffer
from .kernel import FUNCTIONS, kernel_function
from .registry import FILESYSTEMS, FS_SETUP, REFUSALS
from .truncate import (
    block_truncate_page,
    ext4_block_zero_page_range,
    ext4_truncate,
    ext4_zero_partial_blocks,
    inode_dio_wait,
    truncate_pagecache,
    truncate_pagecache_range,
    truncate_setsize,
    xip_truncate_page,
    zero_units,
)
from .writeback import PageDirty, delalloc, filemap_write_and_wait_range

EINVAL = "-EINVAL"
EFBIG = "-EFBIG"


def attach_fault_exclusion_locks(fs):
    """The locks of this module, on the filesystems that have them:
    ``EXT4_I(inode)->i_mmap_sem`` (ext4, 4.1's ``init_rwsem`` in
    ``ext4_alloc_inode`` of the 4.5 series), ``ip->i_mmaplock`` (XFS,
    ``mrlock_init(&ip->i_mmaplock, ...)`` in ``xfs_inode_alloc``, 4.1) and
    ``mapping->invalidate_lock`` (5.15, ``init_rwsem`` in
    ``inode_init_always``)."""
    kind = fs_type(fs)
    if kind == "ext4":
        fs.i_mmap_sem = fs.rt.rwsem("i_mmap_sem")
    elif kind == "xfs":
        fs.i_mmaplock = fs.rt.rwsem("i_mmaplock")
    else:
        return
    fs.invalidate_lock = fs.rt.rwsem("invalidate_lock")


FS_SETUP.append(attach_fault_exclusion_locks)


# -- the page-cache fault --------------------------------------------------------------------


@kernel_function("mm/filemap.c", "v4.1 (unchanged in this respect to 5.14)", dropped=0)
def page_cache_read(fs, pgoff):
    """``page_cache_read(file, offset)``: a new page, added to the page cache
    locked (``add_to_page_cache_lru``; ``-EEXIST``, somebody added it first,
    is fine), then ``mapping->a_ops->readpage(file, page)``, whose I/O
    completion unlocks it."""
    yield fs.page_lock[pgoff].lock(f"page = page_cache_alloc_cold(mapping); add_to_page_cache_lru(page, "
                                   f"mapping, {pgoff})")
    if fs.page_cache.contains(pgoff):  # -EEXIST: "losing race to add is OK"
        fs.page_lock[pgoff].unlock()
        return 0
    add_to_page_cache(fs, pgoff)
    return (yield from address_space_operations(fs).readpage(fs, pgoff))


@kernel_function("mm/filemap.c", "v4.1", release="4.1")
def filemap_fault(fs, vma, pgoff):
    """``filemap_fault()`` of mm/filemap.c (v4.1; 4.5 the same in what is
    modelled): check the offset against ``i_size``; ``find_get_page``; no
    page: ``page_cache_read`` and ``goto retry_find``; lock the page; a page
    truncated meanwhile (``page->mapping != mapping``) is looked up again; a
    page not uptodate is read with ``->readpage`` and looked up again; then
    ``i_size`` is checked again under the page lock and the page is returned
    locked (``VM_FAULT_LOCKED``). No lock keeps a hole punch out: that is
    what the filesystems' wrappers (:func:`ext4_filemap_fault`,
    :func:`xfs_filemap_fault`) add. Returns ``(VM_FAULT_*, page index)``."""
    yield "size = round_up(i_size_read(inode), PAGE_CACHE_SIZE); if (offset >= size >> PAGE_CACHE_SHIFT)"
    if pgoff >= fs.pages(fs.i_size.get()):
        return VM_FAULT_SIGBUS, None
    while True:
        # retry_find:
        yield f"page = find_get_page(mapping, {pgoff})"
        if not fs.page_cache.contains(pgoff):
            # no_cached_page:
            yield from page_cache_read(fs, pgoff)
            continue  # "if (error >= 0) goto retry_find"
        yield fs.page_lock[pgoff].lock(f"lock_page_or_retry(page {pgoff}, vma->vm_mm, vmf->flags)")
        if not fs.page_cache.contains(pgoff):
            # "Did it get truncated?": unlock_page(page); page_cache_release(page); goto retry_find
            fs.page_lock[pgoff].unlock()
            continue
        if not PageUptodate(fs, pgoff):
            # page_not_uptodate: error = mapping->a_ops->readpage(file, page); goto retry_find
            yield from address_space_operations(fs).readpage(fs, pgoff)
            continue
        # "Found the page and have a reference on it. We must recheck i_size under page lock."
        yield "size = round_up(i_size_read(inode), PAGE_CACHE_SIZE) (under the page lock)"
        if pgoff >= fs.pages(fs.i_size.get()):
            fs.page_lock[pgoff].unlock()  # unlock_page(page); page_cache_release(page)
            return VM_FAULT_SIGBUS, None
        return VM_FAULT_LOCKED, pgoff  # vmf->page = page; return ret | VM_FAULT_LOCKED


@kernel_function("mm/filemap.c", "v5.15 (730633f0b7f9, Jan Kara)", name="filemap_fault", release="5.15")
def filemap_fault_5_15(fs, vma, pgoff):
    """``filemap_fault()`` of mm/filemap.c (5.15): as 4.1's, but a fault that
    must bring the page in holds ``filemap_invalidate_lock_shared(mapping)``
    from before it creates the page until the page is uptodate ("See comment
    in filemap_create_page() why we need invalidate_lock"); a page found
    uptodate is mapped without it. A page found but not uptodate: the lock
    is taken right after ``find_get_page``, before ``lock_page``. A page
    found uptodate that is no longer uptodate under its lock: let go and
    ``goto retry_find``, which takes the lock. ``pagecache_get_page(FGP_CREAT
    | FGP_FOR_MMAP)`` adds the page and leaves it unlocked (one step here);
    ``lock_page_maybe_drop_mmap`` is ``lock_page``; ``page_not_uptodate``
    reads with ``filemap_read_page`` and goes back to ``retry_find`` with
    the lock held; the lock is let go before ``i_size`` is checked again
    under the page lock."""
    yield "max_off = DIV_ROUND_UP(i_size_read(inode), PAGE_SIZE); if (unlikely(offset >= max_off))"
    if pgoff >= fs.pages(fs.i_size.get()):
        return VM_FAULT_SIGBUS, None
    mapping_locked = False
    yield f"page = find_get_page(mapping, {pgoff})"
    find = not fs.page_cache.contains(pgoff)
    if not find and not PageUptodate(fs, pgoff):
        yield fs.invalidate_lock.down_read("filemap_invalidate_lock_shared(mapping)")
        mapping_locked = True
    while True:
        if find:
            # retry_find:
            if not mapping_locked:
                yield fs.invalidate_lock.down_read("filemap_invalidate_lock_shared(mapping)")
                mapping_locked = True
            yield fs.page_lock[pgoff].lock(
                f"page = pagecache_get_page(mapping, {pgoff}, FGP_CREAT|FGP_FOR_MMAP, vmf->gfp_mask)")
            if not fs.page_cache.contains(pgoff):
                add_to_page_cache(fs, pgoff)
            fs.page_lock[pgoff].unlock()  # FGP_FOR_MMAP: a page it created is returned unlocked
        find = True
        yield fs.page_lock[pgoff].lock(f"lock_page_maybe_drop_mmap(vmf, page {pgoff}, &fpin)")
        if not fs.page_cache.contains(pgoff):
            # "Did it get truncated?"
            fs.page_lock[pgoff].unlock()
            continue
        if not PageUptodate(fs, pgoff):
            if not mapping_locked:
                # "Let's drop everything get the invalidate lock and try again."
                fs.page_lock[pgoff].unlock()
                continue
            # page_not_uptodate: filemap_read_page(file, mapping, page); put_page(page);
            # goto retry_find, invalidate_lock still held
            yield from filemap_read_page(fs, pgoff)
            continue
        if mapping_locked:
            yield "filemap_invalidate_unlock_shared(mapping)"
            fs.invalidate_lock.up_read()
        yield "max_off = DIV_ROUND_UP(i_size_read(inode), PAGE_SIZE) (under the page lock)"
        if pgoff >= fs.pages(fs.i_size.get()):
            fs.page_lock[pgoff].unlock()
            return VM_FAULT_SIGBUS, None
        return VM_FAULT_LOCKED, pgoff


@kernel_function("fs/ext4/inode.c", "v4.5 (ea3d7209ca01)", release="4.5")
def ext4_filemap_fault(fs, vma, pgoff):
    """``ext4_filemap_fault()`` (4.5, ``ext4_file_vm_ops.fault``)::

        down_read(&EXT4_I(inode)->i_mmap_sem);
        err = filemap_fault(vma, vmf);
        up_read(&EXT4_I(inode)->i_mmap_sem);

    Gone in 5.15 (d4f5258eae7b): ``.fault = filemap_fault``, which takes
    ``invalidate_lock`` itself."""
    yield fs.i_mmap_sem.down_read("down_read(&EXT4_I(inode)->i_mmap_sem)")
    ret = yield from filemap_fault(fs, vma, pgoff)
    yield "up_read(&EXT4_I(inode)->i_mmap_sem)"
    fs.i_mmap_sem.up_read()
    return ret


@kernel_function("fs/xfs/xfs_file.c", "v4.1 (653c60b633a9)", release="4.1")
def xfs_filemap_fault(fs, vma, pgoff):
    """``xfs_filemap_fault()`` (4.1)::

        xfs_ilock(ip, XFS_MMAPLOCK_SHARED);
        error = filemap_fault(vma, vmf);
        xfs_iunlock(ip, XFS_MMAPLOCK_SHARED);
    """
    yield fs.i_mmaplock.down_read("xfs_ilock(ip, XFS_MMAPLOCK_SHARED)")
    ret = yield from filemap_fault(fs, vma, pgoff)
    yield "xfs_iunlock(ip, XFS_MMAPLOCK_SHARED)"
    fs.i_mmaplock.up_read()
    return ret


@kernel_function("fs/xfs/xfs_file.c", "v5.15 (2433480a7e1d)", name="xfs_filemap_fault", release="5.15")
def xfs_filemap_fault_5_15(fs, vma, pgoff):
    """``__xfs_filemap_fault()`` (5.15) for a read fault on a file that is
    not DAX: ``ret = filemap_fault(vmf)``, which takes ``invalidate_lock``
    (XFS's MMAPLOCK since 2433480a7e1d) itself."""
    return (yield from filemap_fault(fs, vma, pgoff))


# -- ext4's DAX fault ------------------------------------------------------------------------


def _ext4_dax_fault(fs, vma, pgoff, write, cow, down, up, up_label, writer=None):
    """The body of 4.5's ``ext4_dax_fault()`` (and 5.15's
    ``ext4_dax_huge_fault()``), the shared lock given as ``down()`` (the
    request) and ``up()``. ``writer``: whether the fault takes the write
    side's freeze protection and handle (4.5: any write fault; 5.15: a write
    fault on a shared mapping); by default ``write``."""
    freeze = getattr(fs, "sb_pagefaults", None) is not None
    journalled = getattr(fs, "journal", None) is not None
    write_fault = write
    write = write if writer is None else writer
    if write:
        if freeze:
            yield fs.sb_pagefaults.down_read("sb_start_pagefault(sb)")
        yield down()
        if journalled:
            yield from journal_start(fs, "handle = ext4_journal_start_sb(sb, EXT4_HT_WRITE_PAGE, "
                                         "EXT4_DATA_TRANS_BLOCKS(sb))")
    else:
        yield down()
    # result = __dax_fault(vma, vmf, ext4_dax_mmap_get_block, NULL);
    ret = yield from do_dax_fault(fs, vma, pgoff, write_fault, cow)
    if write and journalled:
        yield "ext4_journal_stop(handle)"
        journal_stop(fs)
    yield up_label
    up()
    if write and freeze:
        yield "sb_end_pagefault(sb)"
        fs.sb_pagefaults.up_read()
    return ret


@kernel_function("fs/ext4/file.c", "v4.5 (ea3d7209ca01)", name="ext4_dax_fault", release="4.5")
def ext4_dax_fault_4_5(fs, vma, pgoff, write=False, cow=False):
    """``ext4_dax_fault()`` (4.5): a write fault takes ``sb_start_pagefault``,
    then ``down_read(&EXT4_I(inode)->i_mmap_sem)``, then a journal handle; a
    read fault only ``i_mmap_sem``; then ``__dax_fault(vma, vmf,
    ext4_dax_mmap_get_block, NULL)`` (the model's ``do_dax_fault``), and the
    same undone in reverse. The handle is modelled where the flavour has a
    journal (``ext4-dax``), ``sb_start_pagefault`` where it has the freeze
    lock (models/ext4_fault.py); ``file_update_time`` is not."""
    return (yield from _ext4_dax_fault(
        fs, vma, pgoff, write, cow, lambda: fs.i_mmap_sem.down_read("down_read(&EXT4_I(inode)->i_mmap_sem)"),
        lambda: fs.i_mmap_sem.up_read(), "up_read(&EXT4_I(inode)->i_mmap_sem)"))


@kernel_function("fs/ext4/file.c", "v5.15 (d4f5258eae7b)", name="ext4_dax_fault", release="5.15")
def ext4_dax_fault_5_15(fs, vma, pgoff, write=False, cow=False):
    """``ext4_dax_huge_fault()`` (5.15) at page size: as 4.5's, with
    ``filemap_invalidate_lock_shared(mapping)`` where 4.5 took
    ``i_mmap_sem``, and "write" meaning ``(vmf->flags & FAULT_FLAG_WRITE) &&
    (vmf->vma->vm_flags & VM_SHARED)``: a write fault on a private mapping
    takes neither ``sb_start_pagefault`` nor a handle. The fault itself is
    still the model's ``do_dax_fault`` (5.15's ``dax_iomap_fault`` and its
    DAX entry locking are not modelled here)."""
    return (yield from _ext4_dax_fault(
        fs, vma, pgoff, write, cow, lambda: fs.invalidate_lock.down_read("filemap_invalidate_lock_shared(mapping)"),
        lambda: fs.invalidate_lock.up_read(), "filemap_invalidate_unlock_shared(mapping)",
        writer=write and not is_private(vma)))


# -- __do_fault: vma->vm_ops->fault of the release ---------------------------------------------


def _do_fault(fs, vma, pgoff, write, handler, pagecache_fault):
    """``__do_fault()`` and the PTE install of ``do_read_fault`` /
    ``do_cow_fault`` (mm/memory.c, 4.x): ``vma->vm_ops->fault``, then
    ``do_set_pte`` of the locked page and ``unlock_page``. What the seeds'
    ``__do_fault`` does with the result is kept (models/dax.py)."""
    cow = write and is_private(vma)
    if fs.dax:
        # ext4_dax_vm_ops.fault (and .page_mkwrite); another DAX file: the
        # scenario's handler, as in the seeds.
        if fs_type(fs) == "ext4":
            ret, page = yield from ext4_dax_fault(fs, vma, pgoff, write=write, cow=cow)
        else:
            ret, page = yield from fault_handler(fs, handler)(fs, vma, pgoff, write=write, cow=cow)
    else:
        if write and fs_type(fs) not in PAGE_MKWRITE:  # refused when the scenario is loaded (_page_cache_store)
            raise NotImplementedError("this write fault on a page-cache file (->page_mkwrite, "
                                      "do_shared_fault) is not modelled")
        if write and cow:
            return (yield from do_cow_fault(fs, vma, pgoff, pagecache_fault))
        if write:
            return (yield from do_shared_fault(fs, vma, pgoff, pagecache_fault))
        ret, page = yield from pagecache_fault(fs, vma, pgoff)
    if ret in (VM_FAULT_SIGBUS, VM_FAULT_NOPAGE, VM_FAULT_RETRY):
        return ret
    ptes = fs.ptes[vma]
    if ret == VM_FAULT_COWED:
        yield "cowed: set_pte_at(mm, address, page_table, entry)"
        if ptes.get(pgoff) is None:
            ptes.set(pgoff, ("anon", AnonPage(page)))
        if COW_UNDER_I_MMAP_MUTEX in fs.fixes:
            fs.i_mmap_mutex.unlock()
        return ret
    if ret != VM_FAULT_LOCKED or cow:
        raise AssertionError(f"{ret} (cow={cow}) is not modelled")
    yield "do_set_pte(vma, address, fault_page, pte, false, false); unlock_page(fault_page)"
    if ptes.get(pgoff) is None:  # pte_same(*pte, orig_pte)
        ptes.set(pgoff, ("page", page))
        if getattr(fs, "pte_write", None) is not None:
            fs.pte_write.delete((vma, pgoff))  # read-only
    fs.page_lock[page].unlock()
    return ret


# -- ->page_mkwrite of an XFS page-cache file (4.1) --------------------------------------------------


def attach_pte_write(fs):
    """Which user PTEs of an XFS page-cache file are writable (``(mapping,
    page)`` -> True): what ``->page_mkwrite`` gives a store."""
    if not fs.dax and fs_type(fs) == "xfs" and not hasattr(fs, "pte_write"):
        fs.pte_write = fs.rt.map("pte_write")


FS_SETUP.append(attach_pte_write)


@kernel_function("fs/buffer.c", "v4.1", dropped=VM_FAULT_LOCKED, release="4.1")
def block_page_mkwrite(fs, vma, pgoff):
    """``block_page_mkwrite(vma, vmf, get_block)`` -> ``__block_page_mkwrite``
    (fs/buffer.c, v4.1): ``lock_page(page)``; "page got truncated out from
    underneath us?" (``page->mapping != inode->i_mapping || page_offset(page)
    > size``: ``-EFAULT``, which ``block_page_mkwrite_return`` makes
    ``VM_FAULT_NOPAGE``); ``__block_write_begin(page, 0, end, get_block)``
    and ``block_commit_write(page, 0, end)`` over the part below ``i_size``;
    ``set_page_dirty``; the page is returned locked (``VM_FAULT_LOCKED``).
    At 4.1 ``block_page_mkwrite`` is a wrapper: ``sb_start_pagefault``,
    ``file_update_time``, ``__block_page_mkwrite`` (the body above),
    ``sb_end_pagefault``, ``block_page_mkwrite_return`` (read at 4.1.15);
    the freeze lock is not modelled (XFS has none in the model), nor
    ``wait_for_stable_page`` (a label); the write-begin is the seeds'
    ``__block_prepare_write`` with the file's ``get_block``, and a page
    already uptodate is not read. An error of the write-begin unlocks the
    page and is ``VM_FAULT_SIGBUS`` (``-ENOMEM``'s ``VM_FAULT_OOM`` aside)."""
    ps = fs.geo.page_size
    yield fs.page_lock[pgoff].lock(f"lock_page(page {pgoff}); size = i_size_read(inode)")
    size = fs.i_size.get()
    if not fs.page_cache.contains(pgoff) or pgoff * ps > size:
        yield f"unlock_page(page {pgoff}); return VM_FAULT_NOPAGE (-EFAULT: truncated out from underneath us)"
        fs.page_lock[pgoff].unlock()
        return VM_FAULT_NOPAGE
    end = size % ps if (pgoff + 1) * ps > size else ps
    ret = yield from block_prepare_write(fs, pgoff, 0, end, fs.flavour)
    if ret:
        fs.page_lock[pgoff].unlock()
        return VM_FAULT_SIGBUS
    yield f"block_commit_write(page {pgoff}, 0, {end}); set_page_dirty(page); wait_for_stable_page(page)"
    block_commit_write(fs, pgoff, 0, end)
    return VM_FAULT_LOCKED


@kernel_function("fs/xfs/xfs_file.c", "v4.1 (653c60b633a9)", release="4.1")
def xfs_filemap_page_mkwrite(fs, vma, pgoff):
    """``xfs_filemap_page_mkwrite()`` (4.1, read)::

        xfs_ilock(ip, XFS_MMAPLOCK_SHARED);
        error = block_page_mkwrite(vma, vmf, xfs_get_blocks);
        xfs_iunlock(ip, XFS_MMAPLOCK_SHARED);
    """
    yield fs.i_mmaplock.down_read("xfs_ilock(ip, XFS_MMAPLOCK_SHARED)")
    ret = yield from block_page_mkwrite(fs, vma, pgoff)
    yield "xfs_iunlock(ip, XFS_MMAPLOCK_SHARED)"
    fs.i_mmaplock.up_read()
    return ret


# vma->vm_ops->page_mkwrite of a page-cache file, by filesystem (ext4's: models/page_mkwrite.py),
# and the __do_fault releases at which a store through such a mapping is modelled.
PAGE_MKWRITE = {"xfs": xfs_filemap_page_mkwrite}
STORE_RELEASES = {"xfs": ("4.1",)}


@kernel_function("mm/memory.c", "v4.1", release="4.1")
def do_page_mkwrite(fs, vma, pgoff):
    """``do_page_mkwrite(vma, page, address)`` (4.1, read at 4.1.15 and
    4.5.7, the same there): ``vma->vm_ops->page_mkwrite``; an error or
    ``VM_FAULT_NOPAGE`` is returned; a page not returned locked is locked
    here and, if it was truncated (``!page->mapping``), the fault is
    retried (0)."""
    page_mkwrite = PAGE_MKWRITE[fs_type(fs)]
    ret = yield from page_mkwrite(fs, vma, pgoff)
    if ret != VM_FAULT_LOCKED:
        return ret
    if fs.page_lock[pgoff].owner != fs.rt.thread:  # the ->page_mkwrite left it unlocked
        yield fs.page_lock[pgoff].lock(f"lock_page(page {pgoff})")
        if not fs.page_cache.contains(pgoff):
            fs.page_lock[pgoff].unlock()
            return 0
    return VM_FAULT_LOCKED


def _make_writable(fs, vma, pgoff, orig_pte, how):
    """Install (or make writable) the PTE of the locked page if the PTE is
    still ``orig_pte`` (``pte_same``), ``set_page_dirty`` and
    ``unlock_page``."""
    ptes = fs.ptes[vma]
    yield f"pte_offset_map_lock(); if (pte_same(*pte, orig_pte)) {how}; set_page_dirty(page); unlock_page(page)"
    same = ptes.get(pgoff) == orig_pte
    if same:
        ptes.set(pgoff, ("page", pgoff))
        fs.pte_write.set((vma, pgoff), True)
    if fs.page_lock[pgoff].owner == fs.rt.thread:
        fs.page_lock[pgoff].unlock()
    return VM_FAULT_NOPAGE if same else 0


@kernel_function("mm/memory.c", "v4.1", release="4.1")
def do_shared_fault(fs, vma, pgoff, pagecache_fault):
    """``do_shared_fault()`` (4.1; read at 4.1.15 and 4.5.7, the same in
    what is modelled) of a page-cache file: ``__do_fault`` (the
    file's ``->fault``: the page locked), then, with ``->page_mkwrite``,
    ``unlock_page(fault_page)`` and ``do_page_mkwrite``; then, under the PTE
    lock, ``if (unlikely(!pte_same(*pte, orig_pte)))`` give up, else
    ``do_set_pte(vma, address, fault_page, pte, true, false)``,
    ``set_page_dirty`` and ``unlock_page``. Returns VM_FAULT_NOPAGE when
    the PTE is in place, 0 to retry, or the error."""
    ret, page = yield from pagecache_fault(fs, vma, pgoff)
    if ret != VM_FAULT_LOCKED:
        return ret
    yield "unlock_page(fault_page); tmp = do_page_mkwrite(vma, fault_page, address)"
    fs.page_lock[page].unlock()
    tmp = yield from do_page_mkwrite(fs, vma, pgoff)
    if tmp != VM_FAULT_LOCKED:
        return tmp
    return (yield from _make_writable(fs, vma, pgoff, None, "do_set_pte(vma, address, fault_page, pte, true, false)"))


@kernel_function("mm/memory.c", "v4.1", release="4.1")
def do_cow_fault(fs, vma, pgoff, pagecache_fault):
    """``do_cow_fault()`` (4.1; read at 4.1.15 and 4.5.7), a store through
    a private mapping of a page-cache file: ``__do_fault`` (the page
    locked), ``copy_user_highpage`` of it into a new anonymous page, then
    under the PTE lock ``do_set_pte(vma, address, new_page, pte, true,
    true)`` if the PTE is still none (``pte_same``), ``unlock_page``."""
    ret, page = yield from pagecache_fault(fs, vma, pgoff)
    if ret != VM_FAULT_LOCKED:
        return ret
    yield "copy_user_highpage(new_page, fault_page, address, vma); do_set_pte(); unlock_page(fault_page)"
    ptes = fs.ptes[vma]
    if ptes.get(pgoff) is None:
        ptes.set(pgoff, ("anon", AnonPage(fs.page_cache.get(page))))
    fs.page_lock[page].unlock()
    return VM_FAULT_NOPAGE


_seed_do_wp_page = FUNCTIONS["do_wp_page"].fn


@kernel_function("mm/memory.c", "v4.1", name="do_wp_page", release="4.1")
def do_wp_page_4_1(fs, vma, pgoff, orig_pte, handler="xip"):
    """``do_wp_page()`` (4.1; read at 4.1.15 and 4.5.7) of a store to a
    read-only PTE of a page-cache page in a shared mapping (not anonymous,
    ``VM_WRITE|VM_SHARED``): ``wp_page_shared()``:
    ``do_page_mkwrite``, then ``if (!pte_same(*page_table, orig_pte))`` give
    up (retry), else ``wp_page_reuse()`` makes the PTE writable,
    ``set_page_dirty``, ``unlock_page``. A DAX file (the seeds' hole page)
    or a private mapping: the seeds' ``do_wp_page``."""
    if fs.dax or is_private(vma) or fs_type(fs) not in PAGE_MKWRITE:
        return (yield from _seed_do_wp_page(fs, vma, pgoff, orig_pte, handler))
    tmp = yield from do_page_mkwrite(fs, vma, pgoff)
    if tmp != VM_FAULT_LOCKED:
        return tmp
    return (yield from _make_writable(fs, vma, pgoff, orig_pte, "wp_page_reuse(): pte_mkwrite(pte_mkdirty(entry))"))


def _generic_pagecache_fault(fs):
    """``vma->vm_ops->fault`` of a page-cache file at 4.1 and 5.15: XFS's
    ``xfs_filemap_fault``, ext4's (and the others') ``filemap_fault``."""
    return xfs_filemap_fault if fs_type(fs) == "xfs" else filemap_fault


@kernel_function("mm/memory.c", "v4.1; vm_ops of fs/ext4/file.c and fs/xfs/xfs_file.c v4.1",
                 name="__do_fault", release="4.1")
def do_fault_4_1(fs, vma, pgoff, write, handler="xip"):
    """``__do_fault()`` at 4.1: XFS's ``->fault`` is ``xfs_filemap_fault``
    (653c60b633a9), ext4's is ``filemap_fault``."""
    return (yield from _do_fault(fs, vma, pgoff, write, handler, _generic_pagecache_fault(fs)))


@kernel_function("mm/memory.c", "v4.5; vm_ops of fs/ext4/file.c v4.5 (ea3d7209ca01)",
                 name="__do_fault", release="4.5")
def do_fault_4_5(fs, vma, pgoff, write, handler="xip"):
    """``__do_fault()`` at 4.5: ext4's ``->fault`` is ``ext4_filemap_fault``."""
    fault = ext4_filemap_fault if fs_type(fs) == "ext4" else _generic_pagecache_fault(fs)
    return (yield from _do_fault(fs, vma, pgoff, write, handler, fault))


@kernel_function("mm/memory.c", "v5.15; vm_ops of fs/ext4/file.c (d4f5258eae7b) and fs/xfs/xfs_file.c",
                 name="__do_fault", release="5.15")
def do_fault_5_15(fs, vma, pgoff, write, handler="xip"):
    """``__do_fault()`` at 5.15: ext4's ``->fault`` is ``filemap_fault`` again
    (which takes ``invalidate_lock``), XFS's ``xfs_filemap_fault``."""
    return (yield from _do_fault(fs, vma, pgoff, write, handler, _generic_pagecache_fault(fs)))


# -- ext4: truncate, hole punch, collapse, insert and zero range ----------------------------------


@dataclass(frozen=True)
class _Lock:
    """The exclusive side of a generation's lock: ``down()`` makes the
    request, ``up()`` releases it, ``up_label`` names the release. The
    callers write the lock out (``fs.i_mmap_sem.down_write(...)``), so that
    what a function takes reads off its source (models/kernel.py). A
    dataclass, so that bfs can fingerprint a thread that holds one."""

    down: object
    up: object
    up_label: str


I_MMAP_SEM_DOWN = "down_write(&EXT4_I(inode)->i_mmap_sem)"
I_MMAP_SEM_UP = "up_write(&EXT4_I(inode)->i_mmap_sem)"
INVALIDATE_DOWN = "filemap_invalidate_lock(mapping)"
INVALIDATE_UP = "filemap_invalidate_unlock(mapping)"


def _i_mmap_sem(fs):
    return _Lock(lambda: fs.i_mmap_sem.down_write(I_MMAP_SEM_DOWN), lambda: fs.i_mmap_sem.up_write(),
                 I_MMAP_SEM_UP)


def _invalidate_lock(fs):
    return _Lock(lambda: fs.invalidate_lock.down_write(INVALIDATE_DOWN), lambda: fs.invalidate_lock.up_write(),
                 INVALIDATE_UP)


def _ext4_setattr(fs, newsize, lock):
    yield "if (attr->ia_size != inode->i_size)"
    oldsize = fs.i_size.get()
    shrink = newsize <= oldsize
    orphan = False
    if newsize != oldsize:
        orphan = shrink  # "if (ext4_handle_valid(handle) && shrink) ext4_orphan_add(handle, inode)"
        yield ("down_write(&EXT4_I(inode)->i_data_sem); EXT4_I(inode)->i_disksize = attr->ia_size; "
               "i_size_write(inode, attr->ia_size); up_write(&EXT4_I(inode)->i_data_sem)")
        fs.i_size.set(newsize)
    if orphan:
        # "Blocks are going to be removed from the inode. Wait for dio in flight."
        yield from inode_dio_wait(fs)
    yield lock.down()
    # "Truncate pagecache after we've waited for commit in data=journal mode to make pages freeable."
    yield from truncate_pagecache(fs, fs.i_size.get())
    if shrink:
        yield from ext4_truncate(fs)
    yield lock.up_label
    lock.up()
    return 0


@kernel_function("fs/ext4/inode.c", "v4.5 (ea3d7209ca01)", name="ext4_setattr", dropped=0, release="4.5")
def ext4_setattr_4_5(fs, newsize):
    """``ext4_setattr()`` with ``ATTR_SIZE`` (4.5), i_mutex held by the
    caller: ``i_size_write`` under ``i_data_sem`` (with ``i_disksize``), the
    orphan's ``inode_dio_wait`` when shrinking, then under
    ``down_write(&EXT4_I(inode)->i_mmap_sem)``: ``truncate_pagecache(inode,
    inode->i_size)`` and, when shrinking, ``ext4_truncate(inode)`` (the
    seeds' model of it: zero the EOF block's tail, remove the extents past
    EOF). The journal handle and orphan list are not modelled."""
    return (yield from _ext4_setattr(fs, newsize, _i_mmap_sem(fs)))


@kernel_function("fs/ext4/inode.c", "v5.15 (d4f5258eae7b)", name="ext4_setattr", dropped=0, release="5.15")
def ext4_setattr_5_15(fs, newsize):
    """``ext4_setattr()`` with ``ATTR_SIZE`` (5.15), ``inode_lock`` held by
    the caller. Not 4.5's order: a shrink waits for direct I/O
    (``inode_dio_wait``) first, while ``i_size`` is still the old one; then
    ``filemap_invalidate_lock(inode->i_mapping)``, and under it the new
    ``i_size`` (with ``i_disksize``, under ``i_data_sem``),
    ``truncate_pagecache(inode, inode->i_size)`` and, when the size does
    not grow, ``ext4_truncate``. The journal handle, the orphan list and
    ``ext4_break_layouts`` are not modelled."""
    yield "shrink = (attr->ia_size < inode->i_size)"
    oldsize = fs.i_size.get()
    if newsize < oldsize:
        # "Blocks are going to be removed from the inode. Wait for dio in flight."
        yield from inode_dio_wait(fs)
    yield fs.invalidate_lock.down_write("filemap_invalidate_lock(inode->i_mapping)")
    if newsize != fs.i_size.get():
        yield ("down_write(&EXT4_I(inode)->i_data_sem); EXT4_I(inode)->i_disksize = attr->ia_size; "
               "i_size_write(inode, attr->ia_size); up_write(&EXT4_I(inode)->i_data_sem)")
        fs.i_size.set(newsize)
    # "Truncate pagecache after we've waited for commit in data=journal mode to make pages freeable."
    yield from truncate_pagecache(fs, fs.i_size.get())
    if newsize <= oldsize:
        yield from ext4_truncate(fs)
    yield "out_mmap_sem: filemap_invalidate_unlock(inode->i_mapping)"
    fs.invalidate_lock.up_write()
    return 0


def _ext4_punch_hole(fs, offset, length, lock):
    bs, ps = fs.geo.block_size, fs.geo.page_size
    # "Write out all dirty pages to avoid race conditions. Then release them."
    # (since 3.0: before the inode lock)
    if delalloc(fs) and fs.kernel.impl.get("ext4_writepages") is not None:
        yield "if (mapping_tagged(mapping, PAGECACHE_TAG_DIRTY))"
        if any(PageDirty(fs, i) for i in fs.page_buffers.keys()):
            yield from _write_out(fs, offset, offset + length - 1)
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    ret = 0
    yield "if (offset >= inode->i_size) goto out_mutex"
    isize = fs.i_size.get()
    if offset < isize:
        if offset + length > isize:
            length = isize + ps - (isize & (ps - 1)) - offset
        # "Wait all existing dio workers, newcomers will block on i_mutex"
        yield from inode_dio_wait(fs)
        # "Prevent page faults from reinstantiating pages we have released from page cache."
        yield lock.down()
        first_block_offset = -(-offset // bs) * bs
        last_block_offset = (offset + length) // bs * bs - 1
        # "Now release the pages and zero block aligned part of pages"
        if last_block_offset > first_block_offset:
            yield from truncate_pagecache_range(fs, first_block_offset, last_block_offset)
        ret = yield from ext4_zero_partial_blocks(fs, offset, length)
        first_block = -(-offset // bs)
        stop_block = (offset + length) // bs
        if not ret and first_block < stop_block:
            yield ("down_write(&EXT4_I(inode)->i_data_sem); ext4_es_remove_extent(); "
                   "ext4_ext_remove_space(inode, first_block, stop_block - 1)")
            _free_range(fs, first_block, stop_block)
        # out_stop: ext4_journal_stop(handle); out_dio:
        yield lock.up_label
        lock.up()
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return ret


def _free_range(fs, first, stop):
    """Unlink and free the blocks ``first..stop-1`` of the file (one step:
    under ``i_data_sem``)."""
    for block in range(first, min(stop, fs.geo.file_blocks)):
        state, pblk = fs.i_blocks.get(block)
        if state != HOLE:
            fs.i_blocks.set(block, (HOLE, None))
            free_block(fs, pblk)


@kernel_function("fs/ext4/inode.c", "v4.5 (ea3d7209ca01)", name="ext4_punch_hole", dropped=0, release="4.5")
def ext4_punch_hole_4_5(fs, offset, length):
    """``ext4_punch_hole()`` (4.5): the dirty pages of the range written out
    (``filemap_write_and_wait_range``) before ``i_mutex``; under it,
    ``inode_dio_wait``, then
    ``down_write(&EXT4_I(inode)->i_mmap_sem)`` ("Prevent page faults from
    reinstantiating pages we have released from page cache") held across
    ``truncate_pagecache_range``, ``ext4_zero_partial_blocks`` and
    ``ext4_ext_remove_space``. The second ``truncate_pagecache_range`` of
    3.13 ("to reduce race window") is gone: the lock closes the window."""
    return (yield from _ext4_punch_hole(fs, offset, length, _i_mmap_sem(fs)))


@kernel_function("fs/ext4/inode.c", "v5.15 (d4f5258eae7b)", name="ext4_punch_hole", dropped=0, release="5.15")
def ext4_punch_hole_5_15(fs, offset, length):
    """``ext4_punch_hole()`` (5.15): as 4.5's with
    ``filemap_invalidate_lock(mapping)`` for ``i_mmap_sem``
    (``inode_lock`` is the model's ``i_mutex``): the write-out before the
    inode lock, ``inode_dio_wait``, the lock, ``truncate_pagecache_range``,
    ``ext4_zero_partial_blocks``, ``ext4_ext_remove_space``."""
    return (yield from _ext4_punch_hole(fs, offset, length, _invalidate_lock(fs)))


def _shift_left(fs, start, count):
    """``ext4_ext_shift_extents(..., SHIFT_LEFT)``: file block ``b + count``
    moves to ``b`` for every ``b >= start``."""
    n = fs.geo.file_blocks
    for b in range(start, n):
        src = b + count
        val = fs.i_blocks.get(src) if src < n else (HOLE, None)
        fs.i_blocks.set(b, val)
        if val[1] is not None:
            fs.owner.set(val[1], b)


def _shift_right(fs, start, count):
    """``ext4_ext_shift_extents(..., SHIFT_RIGHT)``: file block ``b`` moves to
    ``b + count`` for every ``b >= start``; ``start..start+count-1`` become
    a hole. Blocks pushed past the file's last block (allocated past EOF)
    are freed: the model's file has no room for them."""
    n = fs.geo.file_blocks
    for b in range(n - 1, start - 1, -1):
        src = b - count
        if b + count >= n:
            state, pblk = fs.i_blocks.get(b)
            if state != HOLE and b >= n - count:
                free_block(fs, pblk)
        val = fs.i_blocks.get(src) if src >= start else (HOLE, None)
        fs.i_blocks.set(b, val)
        if val[1] is not None:
            fs.owner.set(val[1], b)


def _write_out(fs, lstart, lend):
    """``filemap_write_and_wait_range(mapping, lstart, lend)`` of ext4's range
    operations. Collapse and insert do theirs inside ``i_mutex`` and the
    fault-exclusion lock since 32ebffd3bbb4 ("ext4: fix races between
    buffered IO and collapse / insert range", Jan Kara, v4.5), so that no
    write lands in the page cache between the write-out and
    ``truncate_pagecache`` (which would discard it instead of shifting it);
    the hole punch does its before ``i_mutex``. A file with delayed
    allocation writes back through models/writeback.py when the scenario's
    release runs that writeback (4.4 on; without a ``kernel:`` key the
    seeds' write path leaves nothing for it); a DAX file's stores are on the
    device already."""
    if delalloc(fs) and fs.kernel.impl.get("ext4_writepages") is not None:  # 4.4's writeback is picked
        yield from filemap_write_and_wait_range(fs, lstart, lend)


def _ext4_collapse_range(fs, offset, length, lock):
    bs, ps = fs.geo.block_size, fs.geo.page_size
    if offset % bs or length % bs:
        return EINVAL  # "Collapse range works only on fs block size aligned offsets."
    punch_start, punch_stop = offset // bs, (offset + length) // bs
    ioffset = offset // ps * ps
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    ret = 0
    yield "if (offset + len >= i_size_read(inode))"
    if offset + length >= fs.i_size.get():
        ret = EINVAL  # "effectively a truncate operation"
    else:
        yield from inode_dio_wait(fs)  # "Wait for existing dio to complete"
        yield lock.down()
        yield from _collapse_write_out(fs, ioffset, offset, length)
        yield from truncate_pagecache(fs, ioffset)
        yield ("down_write(&EXT4_I(inode)->i_data_sem); ext4_ext_remove_space(inode, punch_start, "
               "punch_stop - 1); ext4_ext_shift_extents(inode, handle, punch_stop, punch_stop - punch_start, "
               "SHIFT_LEFT)")
        _free_range(fs, punch_start, punch_stop)
        _shift_left(fs, punch_start, punch_stop - punch_start)
        yield "new_size = i_size_read(inode) - len; i_size_write(inode, new_size); up_write(&EXT4_I(inode)->i_data_sem)"
        fs.i_size.set(fs.i_size.get() - length)
        yield lock.up_label
        lock.up()
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return ret


def _collapse_write_out(fs, ioffset, offset, length):
    """The collapse's write-out (32ebffd3bbb4, 4.5; the same in 5.15): "Write
    tail of the last page before removed range" (``ioffset`` to ``offset``),
    then "Write data that will be shifted" (``offset + len`` to
    ``LLONG_MAX``); the collapsed range itself is dropped unwritten."""
    yield from _write_out(fs, ioffset, offset)
    yield from _write_out(fs, offset + length, fs.geo.max_size - 1)


def _ext4_insert_range(fs, offset, length, lock):
    bs, ps = fs.geo.block_size, fs.geo.page_size
    if offset % bs or length % bs:
        return EINVAL  # "Insert range works only on fs block size aligned offsets."
    ioffset = offset // ps * ps
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    ret = 0
    yield "if (inode->i_size + len > inode->i_sb->s_maxbytes); if (offset >= i_size_read(inode))"
    isize = fs.i_size.get()
    if isize + length > fs.geo.max_size:
        ret = EFBIG  # the model's s_maxbytes is the file's max_size
    elif offset >= isize:
        ret = EINVAL
    else:
        yield from inode_dio_wait(fs)
        yield lock.down()
        yield from _write_out(fs, ioffset, fs.geo.max_size - 1)  # "Write out all dirty pages"
        yield from truncate_pagecache(fs, ioffset)
        yield "inode->i_size += len; EXT4_I(inode)->i_disksize += len (\"Expand file to avoid data loss\")"
        fs.i_size.set(isize + length)
        yield ("down_write(&EXT4_I(inode)->i_data_sem); ext4_split_extent_at(); "
               "ext4_ext_shift_extents(inode, handle, offset_lblk, len_lblk, SHIFT_RIGHT); "
               "up_write(&EXT4_I(inode)->i_data_sem)")
        _shift_right(fs, offset // bs, length // bs)
        yield lock.up_label
        lock.up()
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return ret


def _ext4_zero_range(fs, offset, length, lock):
    bs = fs.geo.block_size
    start = -(-offset // bs) * bs
    end = (offset + length) // bs * bs
    yield fs.i_mutex.lock("mutex_lock(&inode->i_mutex)")
    ret = 0
    # "Wait all existing dio workers, newcomers will block on i_mutex", for
    # any range (4.5 and 5.15)
    yield from inode_dio_wait(fs)
    if end > start:
        # "Zero range excluding the unaligned edges"
        yield lock.down()
        yield from truncate_pagecache_range(fs, start, end - 1)
        yield ("ext4_alloc_file_blocks(file, lblk, max_blocks, new_size, "
               "EXT4_GET_BLOCKS_CREATE_UNWRIT_EXT | EXT4_GET_BLOCKS_CONVERT_UNWRITTEN, mode)")
        for block in range(start // bs, end // bs):
            state, pblk = fs.i_blocks.get(block)
            if state == WRITTEN:
                fs.i_blocks.set(block, (UNWRITTEN, pblk))
        yield lock.up_label
        lock.up()
    # the unaligned edges: ext4_zero_partial_blocks(handle, inode, offset, len)
    if offset % bs or (offset + length) % bs:
        if (offset + length) // bs == offset // bs:
            ret = yield from ext4_block_zero_page_range(fs, offset, length)
        else:
            ret = yield from ext4_zero_partial_blocks(fs, offset, length)
    yield "mutex_unlock(&inode->i_mutex)"
    fs.i_mutex.unlock()
    return ret


@kernel_function("fs/ext4/extents.c", "v4.5 (ea3d7209ca01 series)", name="ext4_collapse_range", dropped=0,
                 release="4.5")
def ext4_collapse_range_4_5(fs, offset, length):
    """``ext4_collapse_range()`` (4.5): block-aligned only; under i_mutex,
    ``-EINVAL`` if the range reaches EOF; ``inode_dio_wait``; under
    ``down_write(&EXT4_I(inode)->i_mmap_sem)``: the write-out of
    ``ioffset`` to ``offset`` and of ``offset + len`` to the end,
    ``truncate_pagecache(inode, ioffset)``, then under ``i_data_sem`` ``ext4_ext_remove_space`` and
    ``ext4_ext_shift_extents(SHIFT_LEFT)`` (one step), and ``i_size -= len``."""
    return (yield from _ext4_collapse_range(fs, offset, length, _i_mmap_sem(fs)))


@kernel_function("fs/ext4/extents.c", "v4.5 (ea3d7209ca01 series)", name="ext4_insert_range", dropped=0,
                 release="4.5")
def ext4_insert_range_4_5(fs, offset, length):
    """``ext4_insert_range()`` (4.5): block-aligned only; under i_mutex,
    ``-EFBIG`` past the limit, ``-EINVAL`` at or past EOF;
    ``inode_dio_wait``; under ``down_write(&EXT4_I(inode)->i_mmap_sem)``:
    ``truncate_pagecache(inode, ioffset)``, ``i_size += len``, then the
    extents from ``offset`` shifted right under ``i_data_sem`` (one step),
    leaving a hole."""
    return (yield from _ext4_insert_range(fs, offset, length, _i_mmap_sem(fs)))


@kernel_function("fs/ext4/extents.c", "v4.5 (ea3d7209ca01 series)", name="ext4_zero_range", dropped=0,
                 release="4.5")
def ext4_zero_range_4_5(fs, offset, length):
    """``ext4_zero_range()`` (4.5): under i_mutex, ``inode_dio_wait``; the
    block-aligned middle: ``down_write(&EXT4_I(inode)->i_mmap_sem)``,
    ``truncate_pagecache_range``, ``ext4_alloc_file_blocks(...
    EXT4_GET_BLOCKS_CONVERT_UNWRITTEN)`` (written extents become unwritten:
    they read as zeros; holes stay holes here, the preallocation is not
    modelled); then the unaligned edges zeroed (``ext4_zero_partial_blocks``)."""
    return (yield from _ext4_zero_range(fs, offset, length, _i_mmap_sem(fs)))


@kernel_function("fs/ext4/extents.c", "v5.15 (d4f5258eae7b)", name="ext4_collapse_range", dropped=0,
                 release="5.15")
def ext4_collapse_range_5_15(fs, offset, length):
    """``ext4_collapse_range()`` (5.15): 4.5's with ``filemap_invalidate_lock``."""
    return (yield from _ext4_collapse_range(fs, offset, length, _invalidate_lock(fs)))


@kernel_function("fs/ext4/extents.c", "v5.15 (d4f5258eae7b)", name="ext4_insert_range", dropped=0,
                 release="5.15")
def ext4_insert_range_5_15(fs, offset, length):
    """``ext4_insert_range()`` (5.15): 4.5's with ``filemap_invalidate_lock``."""
    return (yield from _ext4_insert_range(fs, offset, length, _invalidate_lock(fs)))


@kernel_function("fs/ext4/extents.c", "v5.15 (d4f5258eae7b)", name="ext4_zero_range", dropped=0,
                 release="5.15")
def ext4_zero_range_5_15(fs, offset, length):
    """``ext4_zero_range()`` (5.15): 4.5's with ``filemap_invalidate_lock``."""
    return (yield from _ext4_zero_range(fs, offset, length, _invalidate_lock(fs)))


@mode("ext4", COLLAPSE_RANGE)
def ext4_fallocate_collapse(fs, offset, length):
    """``ext4_fallocate()``: ``if (mode & FALLOC_FL_COLLAPSE_RANGE) return
    ext4_collapse_range(inode, offset, len)``."""
    return (yield from _errno(ext4_collapse_range(fs, offset, length)))


@mode("ext4", INSERT_RANGE)
def ext4_fallocate_insert(fs, offset, length):
    """``ext4_fallocate()``: ``if (mode & FALLOC_FL_INSERT_RANGE) return
    ext4_insert_range(inode, offset, len)``."""
    return (yield from _errno(ext4_insert_range(fs, offset, length)))


@mode("ext4", ZERO_RANGE)
def ext4_fallocate_zero(fs, offset, length):
    """``ext4_fallocate()``: ``if (mode & FALLOC_FL_ZERO_RANGE) return
    ext4_zero_range(file, offset, len, mode)``."""
    return (yield from _errno(ext4_zero_range(fs, offset, length)))


def _errno(gen):
    ret = yield from gen
    if isinstance(ret, int) and ret < 0:
        return str(ret)
    return ret


# -- XFS ----------------------------------------------------------------------------------------


def _xfs_setattr_size_locked(fs, newsize):
    """The seeds' ``xfs_setattr_size()`` body (models/truncate.py, 3.13), as
    4.1 keeps it: ``inode_dio_wait``, ``block_truncate_page`` (or the DAX
    one), ``truncate_setsize``, ``xfs_itruncate_extents``."""
    yield "oldsize = inode->i_size"
    oldsize = fs.i_size.get()
    yield from inode_dio_wait(fs)
    if fs.dax:
        error = yield from xip_truncate_page(fs, newsize, fs.flavour)
    else:
        error = yield from block_truncate_page(fs, newsize, fs.flavour)
    if error:
        return error
    yield from truncate_setsize(fs, newsize)
    if newsize <= oldsize:
        yield "xfs_itruncate_extents(&tp, ip, XFS_DATA_FORK, newsize)"
        _free_range(fs, -(-newsize // fs.geo.block_size), fs.geo.file_blocks)
    return 0


def _xfs_mmaplock(fs, release):
    """XFS_MMAPLOCK_EXCL: ``ip->i_mmaplock`` (4.1), ``mapping->invalidate_lock`` (5.15)."""
    if release == "4.1":
        return _Lock(lambda: fs.i_mmaplock.down_write("xfs_ilock(ip, XFS_MMAPLOCK_EXCL)"),
                     lambda: fs.i_mmaplock.up_write(), "xfs_iunlock(ip, XFS_MMAPLOCK_EXCL)")
    return _Lock(lambda: fs.invalidate_lock.down_write(
                     "xfs_ilock(ip, XFS_MMAPLOCK_EXCL): filemap_invalidate_lock(VFS_I(ip)->i_mapping)"),
                 lambda: fs.invalidate_lock.up_write(),
                 "xfs_iunlock(ip, XFS_MMAPLOCK_EXCL): filemap_invalidate_unlock(VFS_I(ip)->i_mapping)")


def _xfs_setattr_size(fs, newsize, release):
    lock = _xfs_mmaplock(fs, release)
    yield lock.down()
    ret = yield from _xfs_setattr_size_locked(fs, newsize)
    yield lock.up_label
    lock.up()
    return ret


@kernel_function("fs/xfs/xfs_iops.c", "v4.1 (653c60b633a9)", name="xfs_setattr_size", dropped=0, release="4.1")
def xfs_setattr_size_4_1(fs, newsize):
    """``xfs_setattr_size()`` (4.1) with the ``XFS_MMAPLOCK_EXCL`` its caller
    ``xfs_vn_setattr()`` takes around it (``xfs_ilock(ip,
    XFS_MMAPLOCK_EXCL); error = xfs_setattr_size(ip, iattr);``): held here,
    so that a scenario can drop it ``in: xfs_setattr_size``."""
    return (yield from _xfs_setattr_size(fs, newsize, "4.1"))


@kernel_function("fs/xfs/xfs_iops.c", "v5.15 (2433480a7e1d)", name="xfs_setattr_size", dropped=0,
                 release="5.15")
def xfs_setattr_size_5_15(fs, newsize):
    """``xfs_setattr_size()`` (5.15): 4.1's, the MMAPLOCK being
    ``mapping->invalidate_lock``."""
    return (yield from _xfs_setattr_size(fs, newsize, "5.15"))


@kernel_function("fs/xfs/xfs_aops.c", "v4.1", dropped=0)
def xfs_vm_writepages(fs, lstart, lend):
    """``filemap_write_and_wait_range(VFS_I(ip)->i_mapping, lstart, lend)``
    of an XFS page-cache file (mm/filemap.c and fs/xfs/xfs_aops.c, v4.1):
    ``do_writepages`` -> ``xfs_vm_writepages`` -> ``generic_writepages``,
    then ``filemap_fdatawait_range``. Each dirty page of the range is
    locked and its dirty mapped buffers are written (``xfs_vm_writepage``);
    the write completes within the page's step (the model's write-out is
    synchronous, as the seeds' ``filemap_write_and_wait``), so the wait has
    nothing left to wait for."""
    ps = fs.geo.page_size
    first, last = lstart // ps, lend // ps
    yield "filemap_write_and_wait_range(mapping, lstart, lend): pagevec_lookup_tag(PAGECACHE_TAG_DIRTY)"
    for index in fs.page_buffers.keys():
        if not first <= index <= last or not any(b.dirty for b in page_buffers(fs, index)):
            continue
        yield fs.page_lock[index].lock(f"lock_page(page {index}); xfs_vm_writepage(page, wbc)")
        page_mkclean(fs, index)  # write_cache_pages: clear_page_dirty_for_io(page) before ->writepage
        for i, bh in enumerate(page_buffers(fs, index)):
            if bh.dirty and fs.page_cache.contains(index):
                write_buffer(fs, index, i)
        fs.page_lock[index].unlock()
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v4.1", dropped=0)
def xfs_free_file_space(fs, offset, length):
    """``xfs_free_file_space()`` (4.1), with the caller's IOLOCK and MMAPLOCK
    held: ``inode_dio_wait``; the range rounded out to ``rounding =
    max(block size, PAGE_CACHE_SIZE)``; ``filemap_write_and_wait_range`` of
    it, then ``truncate_pagecache_range(VFS_I(ip), ioffset, iendoffset)``;
    then the partial blocks zeroed on disk (``xfs_zero_remaining_bytes``:
    only below ``i_size``, only written extents, through an uncached buffer)
    and the whole blocks unmapped and freed by ``xfs_bunmapi`` (one step)."""
    bs = fs.geo.block_size
    yield from inode_dio_wait(fs)
    rounding = max(bs, fs.geo.page_size)
    ioffset = offset // rounding * rounding
    iendoffset = -(-(offset + length) // rounding) * rounding - 1
    ret = yield from xfs_vm_writepages(fs, ioffset, iendoffset)
    if ret:
        return ret
    yield from truncate_pagecache_range(fs, ioffset, iendoffset)
    first, stop = -(-offset // bs), (offset + length) // bs
    if offset % bs or (offset + length) % bs:
        yield "xfs_zero_remaining_bytes(ip, offset, ...): xfs_buf_read_uncached(); memset(); xfs_bwrite()"
        isize = fs.i_size.get()
        for lo, hi in ((offset, min(offset + length, first * bs)), (max(offset, stop * bs), offset + length)):
            hi = min(hi, isize)  # "if (endoff > XFS_ISIZE(ip)) endoff = XFS_ISIZE(ip)"
            if hi > lo:
                state, pblk = fs.i_blocks.get(lo // bs)
                if state == WRITTEN:  # holes and unwritten extents are skipped
                    zero_units(fs, pblk * fs.geo.units_per_block, lo % bs, hi - lo)
    if first < stop:
        yield "xfs_bunmapi(tp, ip, startoffset_fsb, endoffset_fsb - startoffset_fsb, 0, 2, ...)"
        _free_range(fs, first, stop)
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v4.1", dropped=0)
def xfs_zero_file_space(fs, offset, length):
    """``xfs_zero_file_space()`` (4.1): "Punch a hole and prealloc the
    range": ``xfs_free_file_space(ip, offset, len)``, then
    ``xfs_alloc_file_space(..., XFS_BMAPI_PREALLOC)`` (unwritten extents:
    not modelled, the range stays a hole, which reads the same)."""
    ret = yield from xfs_free_file_space(fs, offset, length)
    if ret:
        return ret
    yield "xfs_alloc_file_space(ip, round_down(offset, blksize), ..., XFS_BMAPI_PREALLOC)"
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v4.1", dropped=0)
def xfs_collapse_file_space(fs, offset, length):
    """``xfs_collapse_file_space()`` (4.1): ``xfs_free_file_space(ip, offset,
    len)``, then ``xfs_shift_file_space(SHIFT_LEFT)``: the write-out of the
    file from ``offset`` (``filemap_write_and_wait_range(mapping, offset,
    -1)``), its pages dropped (``invalidate_inode_pages2_range(mapping,
    offset >> PAGE_CACHE_SHIFT, -1)``, which unmaps and invalidates each;
    the model's ``truncate_pagecache``) and the extents past the range
    shifted left (``xfs_bmap_shift_extents``; one step). The new size is
    set by the caller."""
    bs = fs.geo.block_size
    ret = yield from xfs_free_file_space(fs, offset, length)
    if ret:
        return ret
    yield from xfs_vm_writepages(fs, offset, fs.geo.max_size - 1)
    yield from truncate_pagecache(fs, offset)
    yield "xfs_bmap_shift_extents(tp, ip, &next_fsb, shift_fsb, &done, stop_fsb, ..., SHIFT_LEFT, ...)"
    _shift_left(fs, offset // bs, length // bs)
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v4.1", dropped=0)
def xfs_insert_file_space(fs, offset, length):
    """``xfs_insert_file_space()`` (4.1): ``xfs_shift_file_space(SHIFT_RIGHT)``:
    the write-out and the page-cache drop from ``offset`` as for collapse,
    then the extents from ``offset`` shifted right
    (``xfs_bmap_shift_extents(SHIFT_RIGHT)``; one step). The caller has
    grown ``i_size`` first."""
    yield from xfs_vm_writepages(fs, offset, fs.geo.max_size - 1)
    yield from truncate_pagecache(fs, offset)
    yield "xfs_bmap_shift_extents(tp, ip, &next_fsb, shift_fsb, &done, stop_fsb, ..., SHIFT_RIGHT, ...)"
    _shift_right(fs, offset // fs.geo.block_size, length // fs.geo.block_size)
    return 0


def _xfs_collapse_checks(fs, offset, length):
    """``xfs_file_fallocate``'s checks of a collapse (4.1 and 5.15 alike):
    whole blocks, ending before EOF. (error, the new size)."""
    bs = fs.geo.block_size
    if offset % bs or length % bs or offset + length >= fs.i_size.get():
        return EINVAL, None
    return 0, fs.i_size.get() - length


def _xfs_insert_checks(fs, offset, length):
    """``xfs_file_fallocate``'s checks of an insert, in the kernel's order
    (4.1 and 5.15 alike): whole blocks, room below ``s_maxbytes``, starting
    before EOF. (error, the new size)."""
    bs = fs.geo.block_size
    isize = fs.i_size.get()
    if offset % bs or length % bs:
        return EINVAL, None
    if isize + length > fs.geo.max_size:
        return EFBIG, None
    if offset >= isize:
        return EINVAL, None
    return 0, isize + length


def _xfs_file_fallocate(fs, which, offset, length, release):
    lock = _xfs_mmaplock(fs, release)
    yield fs.i_mutex.lock("xfs_ilock(ip, XFS_IOLOCK_EXCL)")
    yield lock.down()
    ret = 0
    new_size = None
    if which == PUNCH_HOLE:
        ret = yield from xfs_free_file_space(fs, offset, length)
    elif which == COLLAPSE_RANGE:
        yield "if (offset + len >= i_size_read(inode)) return -EINVAL"
        ret, new_size = _xfs_collapse_checks(fs, offset, length)
        if not ret:
            ret = yield from xfs_collapse_file_space(fs, offset, length)
    elif which == INSERT_RANGE:
        yield ("new_size = i_size_read(inode) + len; -EINVAL unless block-aligned; -EFBIG past s_maxbytes; "
               "-EINVAL if (offset >= i_size_read(inode))")
        ret, new_size = _xfs_insert_checks(fs, offset, length)
    else:  # ZERO_RANGE
        yield "if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + len > i_size_read(inode)) new_size = offset + len"
        if offset + length > fs.i_size.get():
            new_size = offset + length
        ret = yield from xfs_zero_file_space(fs, offset, length)
    if not ret and new_size is not None:
        # "Change file size if needed": xfs_setattr_size(ip, &iattr), MMAPLOCK held.
        if which == INSERT_RANGE:
            yield "i_size_write(inode, new_size) (xfs_setattr_size: growing)"
            fs.i_size.set(new_size)
            ret = yield from xfs_insert_file_space(fs, offset, length)  # "if (do_file_insert)"
        else:
            ret = yield from _xfs_setattr_size_locked(fs, new_size)
    yield lock.up_label
    lock.up()
    yield "xfs_iunlock(ip, XFS_IOLOCK_EXCL)"
    fs.i_mutex.unlock()
    return str(ret) if isinstance(ret, int) and ret < 0 else ret


@kernel_function("fs/xfs/xfs_file.c", "v4.1 (653c60b633a9)", dropped=0, release="4.1")
def xfs_file_fallocate(fs, which, offset, length):
    """``xfs_file_fallocate()`` (4.1): ``xfs_ilock(ip, XFS_IOLOCK_EXCL)`` (the
    model's i_mutex), then ``xfs_ilock(ip, XFS_MMAPLOCK_EXCL)``, held across
    the mode: ``xfs_free_file_space`` (punch), ``xfs_collapse_file_space``,
    ``xfs_zero_file_space``, and for insert the size change then
    ``xfs_insert_file_space``; the new size by ``xfs_setattr_size`` (its
    body: the lock is held already)."""
    return (yield from _xfs_file_fallocate(fs, which, offset, length, "4.1"))


# -- XFS, 5.15 ----------------------------------------------------------------------------------


@kernel_function("fs/xfs/xfs_bmap_util.c", "v5.15", dropped=0, release="5.15")
def xfs_flush_unmap_range(fs, offset, length):
    """``xfs_flush_unmap_range(ip, offset, len)`` (5.15): the range rounded out
    to ``max(block size, PAGE_SIZE)``, written back
    (``filemap_write_and_wait_range``: the model's XFS write-out of 4.1,
    :func:`xfs_vm_writepages`), then ``truncate_pagecache_range``."""
    rounding = max(fs.geo.block_size, fs.geo.page_size)
    start = offset // rounding * rounding
    end = -(-(offset + length) // rounding) * rounding - 1
    ret = yield from xfs_vm_writepages(fs, start, end)
    if ret:
        return ret
    yield from truncate_pagecache_range(fs, start, end)
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v5.15", name="xfs_free_file_space", dropped=0, release="5.15")
def xfs_free_file_space_5_15(fs, offset, length):
    """``xfs_free_file_space()`` (5.15), the page cache of the range already
    dropped by the caller (``xfs_flush_unmap_range``): the whole blocks
    unmapped and freed first (``xfs_unmap_extent``, one step), then the
    partial blocks at the edges zeroed by ``iomap_zero_range``, only below
    ``i_size`` and only where an extent is written (it skips holes,
    including the ones just made, and unwritten extents). The kernel zeroes
    through the page cache and writes the EOF page back; the model writes
    the zeros to the block in one step, as it does ext4's partial blocks."""
    bs = fs.geo.block_size
    first, stop = -(-offset // bs), (offset + length) // bs
    if first < stop:
        yield "xfs_unmap_extent(ip, startoffset_fsb, endoffset_fsb - startoffset_fsb, &done)"
        _free_range(fs, first, stop)
    yield "if (offset >= XFS_ISIZE(ip)) return 0; if (offset + len > XFS_ISIZE(ip)) len = XFS_ISIZE(ip) - offset"
    isize = fs.i_size.get()
    if offset >= isize:
        return 0
    end = min(offset + length, isize)
    for lo, hi in ((offset, min(end, first * bs)), (max(offset, stop * bs), end)):
        if hi > lo:
            yield f"iomap_zero_range(VFS_I(ip), {lo}, {hi - lo}, NULL, &xfs_buffered_write_iomap_ops)"
            state, pblk = fs.i_blocks.get(lo // bs)
            if state == WRITTEN:
                zero_units(fs, pblk * fs.geo.units_per_block, lo % bs, hi - lo)
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v5.15", dropped=0, release="5.15")
def xfs_prepare_shift(fs, offset):
    """``xfs_prepare_shift(ip, offset)`` (5.15): from the block before the one
    at ``offset`` ("stabilize the start block offset boundary"),
    ``xfs_flush_unmap_range(ip, offset, XFS_ISIZE(ip))``. The post-EOF
    blocks and the COW fork are not modelled."""
    bs = fs.geo.block_size
    start = offset // bs * bs
    if start:
        start -= bs
    yield "offset = round_down(offset, sb_blocksize) - sb_blocksize; XFS_ISIZE(ip)"
    return (yield from xfs_flush_unmap_range(fs, start, fs.i_size.get()))


@kernel_function("fs/xfs/xfs_bmap_util.c", "v5.15", name="xfs_collapse_file_space", dropped=0, release="5.15")
def xfs_collapse_file_space_5_15(fs, offset, length):
    """``xfs_collapse_file_space()`` (5.15): ``xfs_free_file_space(ip, offset,
    len)``, ``xfs_prepare_shift(ip, offset)``, then under the ILOCK
    ``xfs_bmap_collapse_extents`` (one step). The caller sets the size."""
    ret = yield from xfs_free_file_space(fs, offset, length)
    if ret:
        return ret
    ret = yield from xfs_prepare_shift(fs, offset)
    if ret:
        return ret
    yield "xfs_ilock(ip, XFS_ILOCK_EXCL); xfs_bmap_collapse_extents(tp, ip, &next_fsb, shift_fsb, &done)"
    _shift_left(fs, offset // fs.geo.block_size, length // fs.geo.block_size)
    return 0


@kernel_function("fs/xfs/xfs_bmap_util.c", "v5.15", name="xfs_insert_file_space", dropped=0, release="5.15")
def xfs_insert_file_space_5_15(fs, offset, length):
    """``xfs_insert_file_space()`` (5.15), after the caller has grown the
    size: ``xfs_prepare_shift(ip, offset)``, then under the ILOCK
    ``xfs_bmap_split_extent`` and ``xfs_bmap_insert_extents`` (one step)."""
    ret = yield from xfs_prepare_shift(fs, offset)
    if ret:
        return ret
    yield "xfs_ilock(ip, XFS_ILOCK_EXCL); xfs_bmap_split_extent(); xfs_bmap_insert_extents(..., SHIFT_RIGHT)"
    _shift_right(fs, offset // fs.geo.block_size, length // fs.geo.block_size)
    return 0


@kernel_function("fs/xfs/xfs_file.c", "v5.15 (2433480a7e1d)", name="xfs_file_fallocate", dropped=0,
                 release="5.15")
def xfs_file_fallocate_5_15(fs, which, offset, length):
    """``xfs_file_fallocate()`` (5.15): ``xfs_ilock(ip, XFS_IOLOCK_EXCL |
    XFS_MMAPLOCK_EXCL)`` (the model's ``i_mutex``, then
    ``filemap_invalidate_lock``: 2433480a7e1d made the MMAPLOCK the
    mapping's ``invalidate_lock``); ``inode_dio_wait`` ("Must wait for all
    AIO to complete before we continue"); for punch, zero and collapse,
    ``xfs_flush_unmap_range(ip, offset, len)``; then the mode: punch
    ``xfs_free_file_space``; collapse its checks and
    ``xfs_collapse_file_space``; insert its checks; zero range
    ``xfs_free_file_space`` and the preallocation (``xfs_alloc_file_space``,
    not modelled: the range stays a hole, which reads the same); the new
    size (``xfs_vn_setattr_size``: the model's ``xfs_setattr_size`` body,
    the lock held); insert last, "now that the file size has been
    updated"."""
    yield fs.i_mutex.lock("xfs_ilock(ip, XFS_IOLOCK_EXCL)")
    yield fs.invalidate_lock.down_write(
        "xfs_ilock(ip, XFS_MMAPLOCK_EXCL): filemap_invalidate_lock(VFS_I(ip)->i_mapping)")
    yield from inode_dio_wait(fs)
    ret = 0
    if which in (PUNCH_HOLE, ZERO_RANGE, COLLAPSE_RANGE):
        ret = yield from xfs_flush_unmap_range(fs, offset, length)
    new_size = None
    if ret:
        pass
    elif which == PUNCH_HOLE:
        ret = yield from xfs_free_file_space(fs, offset, length)
    elif which == COLLAPSE_RANGE:
        yield "if (!xfs_is_falloc_aligned(ip, offset, len)); if (offset + len >= i_size_read(inode))"
        ret, new_size = _xfs_collapse_checks(fs, offset, length)
        if not ret:
            ret = yield from xfs_collapse_file_space(fs, offset, length)
    elif which == INSERT_RANGE:
        yield ("isize = i_size_read(inode); -EINVAL unless aligned; -EFBIG past s_maxbytes; "
               "-EINVAL if (offset >= isize)")
        ret, new_size = _xfs_insert_checks(fs, offset, length)
    else:  # ZERO_RANGE
        yield "if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + len > i_size_read(inode)) new_size = offset + len"
        if offset + length > fs.i_size.get():
            new_size = offset + length
        ret = yield from xfs_free_file_space(fs, offset, length)
        if not ret:
            yield "xfs_alloc_file_space(ip, round_down(offset, blksize), ..., XFS_BMAPI_PREALLOC)"
    if not ret and new_size is not None:
        if which == INSERT_RANGE:
            yield "xfs_vn_setattr_size(): i_size_write(inode, new_size) (growing)"
            fs.i_size.set(new_size)
        else:
            ret = yield from _xfs_setattr_size_locked(fs, new_size)
    if not ret and which == INSERT_RANGE:
        ret = yield from xfs_insert_file_space(fs, offset, length)
    yield "xfs_iunlock(ip, XFS_MMAPLOCK_EXCL): filemap_invalidate_unlock(VFS_I(ip)->i_mapping)"
    fs.invalidate_lock.up_write()
    yield "xfs_iunlock(ip, XFS_IOLOCK_EXCL)"
    fs.i_mutex.unlock()
    return str(ret) if isinstance(ret, int) and ret < 0 else ret


@mode("xfs", PUNCH_HOLE)
def xfs_fallocate_punch(fs, offset, length):
    return (yield from xfs_file_fallocate(fs, PUNCH_HOLE, offset, length))


@mode("xfs", COLLAPSE_RANGE)
def xfs_fallocate_collapse(fs, offset, length):
    return (yield from xfs_file_fallocate(fs, COLLAPSE_RANGE, offset, length))


@mode("xfs", INSERT_RANGE)
def xfs_fallocate_insert(fs, offset, length):
    return (yield from xfs_file_fallocate(fs, INSERT_RANGE, offset, length))


@mode("xfs", ZERO_RANGE)
def xfs_fallocate_zero(fs, offset, length):
    return (yield from xfs_file_fallocate(fs, ZERO_RANGE, offset, length))


# The stubs of the functions registered above by their kernel names, for the calls above.
ext4_dax_fault = ext4_dax_fault_4_5
ext4_collapse_range = ext4_collapse_range_4_5
ext4_insert_range = ext4_insert_range_4_5
ext4_zero_range = ext4_zero_range_4_5


def _page_cache_store(opname, flavour, spec, releases):
    """A store through a mapping of a page-cache file, with this module's
    ``__do_fault``: its write fault (``->page_mkwrite``) is not modelled."""
    picked = releases.get("__do_fault")
    if (opname == "mmap_store" and not spec.dax and picked is not None and picked.module == __name__
            and picked.release not in STORE_RELEASES.get(FILESYSTEMS.get(flavour, flavour), ())):
        return (f"mmap_store on a page-cache file (file.dax: false) is not modelled at kernel {picked.release}: "
                f"the write fault (->page_mkwrite, do_shared_fault) of that release is not in the library "
                f"(mmap_load is; see docs/kernels/fault_exclusion.md)")
    return None


REFUSALS.append(_page_cache_store)

