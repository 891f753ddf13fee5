"""The XIP (DAX) page fault paths, and the loads and stores through a user
mapping that reach them.

Mirrored code (seed 002 is the XIP rewrite v5, seed 001 Jan Kara's review of
the DAX fault in 2015, seed 000 Dave Chinner's fsx report on XFS):

* :func:`do_xip_fault`, :func:`xip_load_hole`, :func:`copy_user_bh`,
  :func:`xip_mkwrite`: fs/xip.c of seed 002, patch 07 ("Rewrite XIP page
  fault handling"), with patch 22's ``buffer_written()`` (the series as
  posted treats an unwritten extent as a hole on a fault). Patch 07 as
  posted rechecks ``i_size`` under ``i_mmap_mutex`` before inserting the
  PFN ("/* Recheck i_size under i_mmap_mutex */"): the model always does.
  Patch 01's ``recheck_isize_under_i_mmap_mutex`` is a fix of the code
  before the rewrite (``xip_file_fault()``, models/xip_fault_retry.py), and
  changes nothing here. The COW under ``i_mmap_mutex`` until ``__do_fault``
  has installed the PTE (patches 02 and 07 as posted) is the
  ``cow_under_i_mmap_mutex`` switch: without it, the fault drops the mutex
  after the recheck and copies unlocked (what ``->fault`` must do when
  nothing after it drops the mutex), a variant the series never posted.
* :func:`__do_fault`: mm/memory.c with patch 02 (``vmf.cow_page``,
  ``VM_FAULT_COWED``, and ``__do_fault`` dropping ``i_mmap_mutex``);
  :func:`do_wp_page` for a store to a read-only PTE (3.13).
* :func:`do_dax_fault`: the fault as Jan Kara rewrote it in seed 001: one
  ``get_block`` call with ``create = !vmf->cow_page && write``, and
  ``dax_clear_blocks()`` of a ``buffer_new`` block by the fault itself.
  Scenarios pick it with ``handler: dax`` on ``mmap_load``/``mmap_store``.

What a PTE holds (``fs.ptes[mapping][pgoff]``): ``("block", pblk)`` a device
block (``vm_insert_mixed``), ``("page", pgoff)`` the page-cache page at
``pgoff`` (a zeroed hole page, mapped read-only), ``("anon", AnonPage)`` a
private anonymous page made by a COW, with its contents.

Not modelled: ``sb_start_pagefault`` and ``file_update_time`` in
``xip_fault()`` (no freezing in these scenarios), the page table lock (the
PTE install is one step), ``VM_FAULT_OOM``/``-ENOMEM``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fs import ZERO, ReadResult, WriteResult, data
from .get_block import xfs_get_blocks_direct, xfs_get_blocks_xip, zero_block
from .kernel import kernel_function
from .operations import MAPPING
from .registry import Param, fix, operation
from .truncate import unmap_mapping_range

VM_FAULT_SIGBUS = "VM_FAULT_SIGBUS"
VM_FAULT_NOPAGE = "VM_FAULT_NOPAGE"
VM_FAULT_LOCKED = "VM_FAULT_LOCKED"
VM_FAULT_COWED = "VM_FAULT_COWED"
VM_FAULT_RETRY = "VM_FAULT_RETRY"
VM_FAULT_ERROR = (VM_FAULT_SIGBUS,)

RECHECK_ISIZE = fix(
    "recheck_isize_under_i_mmap_mutex",
    "xip_file_fault (mm/filemap_xip.c, ext2-filemap-xip) rechecks i_size under i_mmap_mutex before "
    "inserting the PFN or the sparse page (seed 002, patch 01); patch 07's do_xip_fault and seed 001's "
    "do_dax_fault have the recheck as posted")

COW_UNDER_I_MMAP_MUTEX = fix(
    "cow_under_i_mmap_mutex",
    "a COW fault copies the block into vmf->cow_page with i_mmap_mutex held from the i_size recheck "
    "until __do_fault has installed the PTE, and __do_fault drops it (seed 002, patches 02 and 07)")

HOLE_PAGE_LOCK = fix(
    "hole_page_lock",
    "a fault takes the hole page's lock (if there is a page) before it looks the block up and holds it "
    "across the allocation; before mapping a block it unmaps and deletes the hole page under that lock; "
    "a read fault that creates a hole page looks the block up again under its lock (not in the seeds: "
    "after mainline fs/dax.c of v4.0, plus the second lookup; RACES.md race 3)")

XFS_GET_BLOCKS_XIP = fix(
    "xfs_get_blocks_xip",
    "the XFS fault passes xfs_get_blocks_xip, whose create=1 allocates, zeroes and marks the block "
    "written in one transaction, and calls get_block once with create set for the fault (seed 000, "
    "Dave Chinner 2014-01-30; seed 002, 2014-02-11)")


@dataclass(frozen=True)
class AnonPage:
    """A private anonymous page (a COW copy): its units."""

    units: tuple

    def __str__(self):
        runs = []
        for tag in self.units:
            if runs and runs[-1][0] == tag:
                runs[-1][1] += 1
            else:
                runs.append([tag, 1])
        return "anon page [" + ", ".join(t if n == 1 else f"{t} x{n}" for t, n in runs) + "]"


def buffer_written(bh):
    """Patch 22: ``buffer_mapped(bh) && !buffer_unwritten(bh)``."""
    return bh.mapped and not bh.unwritten


def fault_get_block(fs):
    """The ``get_block`` the filesystem's ``->fault`` passes to ``xip_fault()``.
    XFS passed its direct-IO ``xfs_get_blocks_direct`` (seed 000: "So I changed
    to use the direct IO version") until Dave Chinner wrote
    ``xfs_get_blocks_xip``; every other flavour passes its only get_block."""
    if fs.flavour is xfs_get_blocks_direct and XFS_GET_BLOCKS_XIP in fs.fixes:
        return xfs_get_blocks_xip
    return fs.flavour


# -- page-cache helpers (the hole pages) --------------------------------------


@kernel_function("mm/filemap.c", "3.13")
def find_or_create_page(fs, index):
    """``find_or_create_page(mapping, index, GFP_KERNEL | __GFP_ZERO)``: the
    page at ``index``, created zeroed if there is none, returned locked."""
    yield fs.page_lock[index].lock(
        f"page = find_or_create_page(mapping, {index}, GFP_KERNEL | __GFP_ZERO)")
    if not fs.page_cache.contains(index):
        fs.page_cache.set(index, (ZERO,) * fs.geo.units_per_block)


@kernel_function("mm/filemap.c", "3.13")
def find_lock_page(fs, index, label):
    """``find_lock_page()`` (or ``find_get_page()`` + ``lock_page()`` + the
    ``page->mapping`` check): True with the page locked if there is one."""
    yield fs.page_lock[index].lock(label)
    if fs.page_cache.contains(index):
        return True
    fs.page_lock[index].unlock()
    return False


def page_units(fs, index):
    """What a page-cache PTE maps. A hole page deleted from the page cache
    stays allocated while mapped, and keeps its zeros."""
    units = fs.page_cache.get(index)
    return units if units is not None else (ZERO,) * fs.geo.units_per_block


# -- the fault handlers -----------------------------------------------------------


@kernel_function("fs/xip.c", "seed 002 patch 07")
def xip_load_hole(fs, vma, pgoff, get_block, block, page=False):
    """Patch 07: a load from a hole maps a zeroed page-cache page. Returns
    ``(VM_FAULT_LOCKED, pgoff)`` with the page locked; ``__do_fault`` maps it
    and unlocks it. ``page``: under the fix, the fault already holds the
    page's lock (v4.0's ``dax_load_hole(mapping, page, vmf)``)."""
    if not page:  # (with it, the fault's get_block ran under the page lock)
        yield from find_or_create_page(fs, pgoff)
    if locks_hole_page(fs) and not page:
        # The fix: a write fault may have allocated the block since our
        # get_block; under the page lock we cannot miss its unmap.
        bh = yield from get_block(fs, block, False)
        if bh is not None and buffer_written(bh):
            fs.page_lock[pgoff].unlock()
            return VM_FAULT_RETRY, None
    yield "size = i_size_read(inode) (xip_load_hole)"
    size = fs.pages(fs.i_size.get())
    if pgoff >= size:
        fs.page_lock[pgoff].unlock()  # unlock_page(page); page_cache_release(page)
        return VM_FAULT_SIGBUS, None
    return VM_FAULT_LOCKED, pgoff  # vmf->page = page


@kernel_function("fs/xip.c", "seed 002 patch 07")
def copy_user_bh(fs, bh):
    """Patch 07: copy the block into the COW page (through direct_access)."""
    upb = fs.geo.units_per_block
    return tuple(fs.dev.get(bh.blocknr * upb + i) for i in range(upb))


@kernel_function("fs/xip.c", "seed 002 patches 07, 22")
def do_xip_fault(fs, vma, pgoff, write=False, cow=False):
    """fs/xip.c ``do_xip_fault()``, patch 07 of seed 002 (with patch 22's
    ``buffer_written``). ``cow``: ``vmf->cow_page`` is set (a write fault on a
    private mapping). Returns ``(VM_FAULT_*, page)``: the locked page-cache
    index for VM_FAULT_LOCKED, the copied units for VM_FAULT_COWED.

    As posted, a write fault on a hole that arrives through ``->fault`` (the
    writer's mapping has no PTE for the page) allocates the block and
    inserts its PFN, and nothing removes a hole page that another mapping
    maps: the unmap and ``delete_from_page_cache()`` are in
    :func:`xip_mkwrite` only, which runs when the writer's own mapping maps
    the hole page. So with no race at all, a process that loaded from the
    hole (mapping ``shared2``) keeps reading the hole page's zeros after
    another process's store through its own unfaulted mapping has returned
    (``mappings_coherent``, ``no_lost_write``). That is the seed's code::

        if (!buffer_mapped(&bh) && !vmf->cow_page) {
                if (vmf->flags & FAULT_FLAG_WRITE) {
                        error = get_block(inode, block, &bh, 1);
                        ...
        /* Recheck i_size under i_mmap_mutex */
        ...
        error = vm_insert_mixed(vma, vaddr, pfn);

    The ``hole_page_lock`` fix evicts the hole page on that path too
    (:func:`evict_hole_page`)."""
    get_block = fault_get_block(fs)
    ps = fs.geo.page_size
    page = False  # the fix: we hold the lock of the hole page at pgoff
    if locks_hole_page(fs) and not cow:
        page = yield from find_lock_page(
            fs, pgoff, "page = find_get_page(mapping, vmf->pgoff); lock_page(page)")

    yield "size = i_size_read(inode)"
    size = fs.pages(fs.i_size.get())
    if pgoff >= size:
        return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)

    block = pgoff * ps // fs.geo.block_size
    if XFS_GET_BLOCKS_XIP in fs.fixes:
        # Seed 000: "Just a single call with create set appropriately for
        # the caller context is all that is required".
        bh = yield from get_block(fs, block, write and not cow)
        if bh is None or bh.size < ps:
            return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)
        if not buffer_written(bh) and not cow and not write:
            return (yield from xip_load_hole(fs, vma, pgoff, get_block, block, page))
    else:
        bh = yield from get_block(fs, block, False)
        if bh is None or bh.size < ps:
            return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)
        if not buffer_written(bh) and not cow:
            if write:
                bh = yield from get_block(fs, block, True)
                if bh is None or bh.size < ps:
                    return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)
            else:
                return (yield from xip_load_hole(fs, vma, pgoff, get_block, block, page))

    if locks_hole_page(fs) and not cow:
        yield from evict_hole_page(fs, pgoff, page)
    return (yield from xip_map_block(fs, vma, pgoff, bh, cow))


def _unlock_page(fs, pgoff, page, ret):
    if page:
        fs.page_lock[pgoff].unlock()
    return ret, None


def evict_hole_page(fs, pgoff, page):
    """The fix (fs/dax.c of v4.0): "Check we didn't race with a read fault
    installing a new page", then unmap the hole page from every mapping and
    delete it from the page cache, under its lock, before the block is mapped
    (by a write fault that allocated it, or by any fault that finds the block
    allocated while a hole page lingers). v4.0 looks for a page created
    meanwhile only after its own allocation (``if (!page && major)``); the
    model looks every time it is about to map a block: a fault that finds the
    block another fault allocated must also wait until that fault has evicted
    the hole page, or its store lands while other mappings still show zeros."""
    if not page:
        page = yield from find_lock_page(fs, pgoff, "page = find_lock_page(mapping, vmf->pgoff)")
    if page:
        yield from unmap_mapping_range(fs, pgoff, pgoff, even_cows=False)
        yield "delete_from_page_cache(page); unlock_page(page)"
        fs.page_cache.delete(pgoff)
        fs.page_lock[pgoff].unlock()


def xip_map_block(fs, vma, pgoff, bh, cow):
    """The second half of ``do_xip_fault()`` (patch 07), from the i_size
    recheck on: COW the block into ``vmf->cow_page``, or insert its PFN.
    Seed 001's fault keeps it (it became ``dax_insert_mapping()``, which
    seed 001 names; fs/dax.c of v4.0 rechecks ``i_size`` there under
    ``i_mmap_lock_read()``)."""
    # /* Recheck i_size under i_mmap_mutex */ (patch 07 as posted): truncate
    # takes it after updating i_size, so either we see the new size here, or
    # truncate's unmap_mapping_range() will remove the PTE we insert.
    yield fs.i_mmap_mutex.lock()
    size = fs.pages(fs.i_size.get())
    if pgoff >= size:
        fs.i_mmap_mutex.unlock()
        return VM_FAULT_SIGBUS, None
    if cow:
        if COW_UNDER_I_MMAP_MUTEX not in fs.fixes:
            # Without patch 02, ->fault cannot return with i_mmap_mutex
            # held (nothing would drop it): the copy runs unlocked.
            fs.i_mmap_mutex.unlock()
        if buffer_written(bh):
            yield "copy_user_bh(vmf->cow_page, inode, &bh, vaddr)"
            units = copy_user_bh(fs, bh)
        else:
            yield "clear_user_highpage(vmf->cow_page, vaddr)"
            units = (ZERO,) * fs.geo.units_per_block
        fs.ghost.cow_pages[(vma, pgoff)] = units
        return VM_FAULT_COWED, units  # with i_mmap_mutex held under the fix

    yield "vm_insert_mixed(vma, vaddr, pfn)"
    vm_insert_mixed(fs, vma, pgoff, bh.blocknr)
    fs.i_mmap_mutex.unlock()
    return VM_FAULT_NOPAGE, None  # -EBUSY is fine, somebody else faulted on the same PTE


@kernel_function("fs/dax.c", "seed 001 (Jan Kara, 2015-01-19)")
def do_dax_fault(fs, vma, pgoff, write=False, cow=False):
    """The DAX fault as Jan Kara rewrote it (seed 001, 2015-01-19)::

        create = !vmf->cow_page && (vmf->flags & FAULT_FLAG_WRITE);
        error = get_block(inode, block, &bh, create);
        ...
        if (buffer_new(&bh)) {
                ... major = VM_FAULT_MAJOR;
                dax_clear_blocks(inode, bh->b_blocknr, PAGE_SIZE);
        } else if (!buffer_mapped(&bh))
                return dax_load_hole(mapping, page, vmf);

    The rest is :func:`xip_map_block`; the ``hole_page_lock`` fix adds the
    same page locking as in :func:`do_xip_fault`. Jan's snippet sends a COW
    fault on a hole to ``dax_load_hole`` too; here the COW of a hole is patch
    07's ``clear_user_highpage``, which gives the same zeros. The conversion
    of an unwritten extent after the fault (``b_end_io`` in
    ``dax_insert_mapping``, Matthew Wilcox's reply) is not modelled: the
    flavours these scenarios use allocate written blocks."""
    get_block = fault_get_block(fs)
    ps = fs.geo.page_size
    page = False
    if locks_hole_page(fs) and not cow:
        page = yield from find_lock_page(
            fs, pgoff, "page = find_get_page(mapping, vmf->pgoff); lock_page(page)")
    yield "size = i_size_read(inode)"
    size = fs.pages(fs.i_size.get())
    if pgoff >= size:
        return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)

    block = pgoff * ps // fs.geo.block_size
    create = not cow and write
    bh = yield from get_block(fs, block, create)
    if bh is None or bh.size < ps:
        return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)  # error = -EIO; goto unlock_page
    if bh.new:
        yield "dax_clear_blocks(inode, bh->b_blocknr, PAGE_SIZE)"
        zero_block(fs, bh.blocknr)
    elif not bh.mapped and not cow:
        return (yield from xip_load_hole(fs, vma, pgoff, get_block, block, page))
    if locks_hole_page(fs) and not cow:
        yield from evict_hole_page(fs, pgoff, page)
    return (yield from xip_map_block(fs, vma, pgoff, bh, cow))


HANDLERS = {"xip": do_xip_fault, "dax": do_dax_fault}

# Filesystems whose ->fault and ->page_mkwrite wrap do_dax_fault (ext4's,
# models/ext4_fault.py): get_block flavour -> the wrapper, which takes the
# arguments of do_dax_fault. They are fs/dax.c of v4.0, whose fault locks the
# hole page as the hole_page_lock fix makes the seed's code do.
DAX_FAULT = {}


def fault_handler(fs, handler):
    """The fault handler a scenario's ``handler`` names, on this filesystem."""
    if handler == "dax":
        return DAX_FAULT.get(fs.flavour, do_dax_fault)
    return HANDLERS[handler]


def locks_hole_page(fs):
    """The fault takes the hole page's lock: the hole_page_lock fix, or a
    filesystem of fs/dax.c's time (:data:`DAX_FAULT`)."""
    return HOLE_PAGE_LOCK in fs.fixes or fs.flavour in DAX_FAULT


@kernel_function("fs/xip.c", "seed 002 patch 07")
def xip_mkwrite(fs, vma, pgoff, handler="xip"):
    """Patch 07 ``xip_mkwrite()``: a store to the read-only hole page.
    Do the write fault (it allocates the block), then unmap the hole page from
    every mapping and delete it from the page cache.

    As posted, ``delete_from_page_cache()`` runs on a page that nobody has
    locked (``do_wp_page`` calls ``->page_mkwrite`` unlocked), which
    ``BUG_ON(!PageLocked(page))`` would catch; the model leaves that check
    out. A page that is no longer in the page cache has no ``page->mapping``
    for ``unmap_mapping_range(page->mapping, ...)``: that is a ``BUG_ON``."""
    ret, _ = yield from fault_handler(fs, handler)(fs, vma, pgoff, write=True)
    if ret in VM_FAULT_ERROR:
        return ret
    if locks_hole_page(fs):
        return ret  # the fault has evicted the hole page itself
    # unmap_mapping_range(page->mapping, page->index << PAGE_CACHE_SHIFT, PAGE_CACHE_SIZE, 0)
    yield from unmap_mapping_range(fs, pgoff, pgoff, even_cows=False, of_page=True)
    yield "delete_from_page_cache(page)"
    fs.page_cache.delete(pgoff)
    return ret


@kernel_function("mm/memory.c", "3.13")
def vm_insert_mixed(fs, vma, pgoff, pfn):
    ptes = fs.ptes[vma]
    if ptes.get(pgoff) is None:  # -EBUSY: somebody else faulted it in
        ptes.set(pgoff, ("block", pfn))


# -- mm/memory.c -----------------------------------------------------------------


def is_private(vma):
    return vma.startswith("private")


@kernel_function("mm/memory.c", "3.13 with seed 002 patch 02")
def __do_fault(fs, vma, pgoff, write, handler="xip"):
    """mm/memory.c ``__do_fault()`` with patch 02: a write fault on a private
    mapping passes a ``cow_page``; ``VM_FAULT_COWED`` maps it as an anonymous
    page and drops ``i_mmap_mutex``; ``VM_FAULT_LOCKED`` maps the locked
    page-cache page and unlocks it."""
    cow = write and is_private(vma)
    ret, page = yield from fault_handler(fs, handler)(fs, vma, pgoff, write=write, cow=cow)
    if ret in (VM_FAULT_SIGBUS, VM_FAULT_NOPAGE, VM_FAULT_RETRY):
        return ret
    ptes = fs.ptes[vma]
    if ret == VM_FAULT_COWED:
        yield "cowed: set_pte_at(mm, address, page_table, entry)"
        if ptes.get(pgoff) is None:  # pte_same(*page_table, orig_pte)
            ptes.set(pgoff, ("anon", AnonPage(page)))
        if COW_UNDER_I_MMAP_MUTEX in fs.fixes:
            fs.i_mmap_mutex.unlock()
        return ret
    # VM_FAULT_LOCKED: vmf.page is the locked hole page.
    if cow:  # not reached: a COW fault never returns the hole page here
        raise AssertionError("COW of a VM_FAULT_LOCKED page is not modelled")
    yield "set_pte_at(mm, address, page_table, entry); unlock_page(vmf.page)"
    if ptes.get(pgoff) is None:
        ptes.set(pgoff, ("page", page))
    fs.page_lock[page].unlock()
    return ret


@kernel_function("mm/memory.c", "3.13")
def do_wp_page(fs, vma, pgoff, orig_pte, handler="xip"):
    """mm/memory.c ``do_wp_page()`` (3.13) for a store to a read-only PTE.
    Shared mapping of the hole page: ``->page_mkwrite``. Private mapping: copy
    the page (``cow_user_page``) into an anonymous one; the copy and the
    ``pte_same()`` check are one step here."""
    kind, where = orig_pte
    if not is_private(vma):
        return (yield from xip_mkwrite(fs, vma, pgoff, handler))
    yield "cow_user_page(new_page, old_page, address, vma); set_pte_at() if pte_same()"
    ptes = fs.ptes[vma]
    if ptes.get(pgoff) != orig_pte:
        return VM_FAULT_NOPAGE  # somebody changed the PTE: retry
    if kind == "block":
        upb = fs.geo.units_per_block
        units = tuple(fs.dev.get(where * upb + i) for i in range(upb))
    else:
        units = page_units(fs, where)
    fs.ghost.cow_pages[(vma, pgoff)] = units
    ptes.set(pgoff, ("anon", AnonPage(units)))
    return VM_FAULT_NOPAGE


def load_through_pte(fs, pte, offset):
    """The user's load of the unit at ``offset`` through ``pte``."""
    us = fs.geo.unit_size
    index = offset % fs.geo.page_size // us
    kind, where = pte
    if kind == "block":
        tag = fs.dev.get(where * fs.geo.units_per_block + index)
    elif kind == "page":
        tag = page_units(fs, where)[index]
    else:
        tag = where.units[index]
    return ReadResult(offset - offset % us, us, (tag,), "load")


# -- operations -----------------------------------------------------------------------

HANDLER = Param("handler", "choice", False, "xip", tuple(HANDLERS),
                "the fault handler: do_xip_fault of seed 002 (xip) or the fault as Jan Kara "
                "rewrote it in seed 001 (dax)")

FAULT_ERRORS = (VM_FAULT_SIGBUS,)


@operation("mmap_load", "a load of one unit through a user mapping; faults the page in if it has no PTE",
           Param("offset", help="file offset of the load"), MAPPING, HANDLER)
def mmap_load(fs, ctx, offset, mapping="shared", handler="xip"):
    pgoff = offset // fs.geo.page_size
    while True:
        yield "load: walk the page table"
        pte = fs.ptes[mapping].get(pgoff)
        if pte is not None:
            return load_through_pte(fs, pte, offset)
        ret = yield from __do_fault(fs, mapping, pgoff, False, handler)
        if ret in FAULT_ERRORS:
            return ret


@operation("mmap_store", "a store of one unit through a user mapping: a write fault (shared) or a COW "
           "fault (private) if the page has no writable PTE, then the store",
           Param("offset", help="file offset of the store"), MAPPING, HANDLER)
def mmap_store(fs, ctx, offset, mapping="shared", handler="xip"):
    ps, us = fs.geo.page_size, fs.geo.unit_size
    pgoff = offset // ps
    index = offset % ps // us
    tag = data(ctx.thread, ctx.seq)
    ptes = fs.ptes[mapping]
    while True:
        yield "store: walk the page table"
        pte = ptes.get(pgoff)
        if pte is None:
            ret = yield from __do_fault(fs, mapping, pgoff, True, handler)
        else:
            kind, where = pte
            if kind == "block" and not is_private(mapping):
                # A read-only PFN in a shared mapping is made writable on the
                # spot (do_wp_page's "reuse" of a VM_MIXEDMAP pfn).
                fs.dev.set(where * fs.geo.units_per_block + index, tag)
                return WriteResult(offset - offset % us, us, tag)
            if kind == "anon":
                units = list(where.units)
                units[index] = tag
                ptes.set(pgoff, ("anon", AnonPage(tuple(units))))
                return WriteResult(offset - offset % us, us, tag)
            if kind == "page" and not fs.dax and getattr(fs, "pte_write", None) is not None \
                    and fs.pte_write.get((mapping, pgoff)):
                # A writable PTE of a page-cache page (->page_mkwrite made it
                # so): the store lands in the page, which is dirty. A page
                # truncated meanwhile is no longer the file's: the store is lost
                # with it.
                units = fs.page_cache.get(where)
                if units is not None:
                    units = list(units)
                    units[index] = tag
                    fs.page_cache.set(where, tuple(units))
                return WriteResult(offset - offset % us, us, tag)
            ret = yield from do_wp_page(fs, mapping, pgoff, pte, handler)
        if ret in FAULT_ERRORS:
            return ret
