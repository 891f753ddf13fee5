"""DAX as fs/dax.c has it from v4.10: the mapping tree's entries, their lock
bit and the wait for it, PMD faults with the huge zero page, and the dirty
tags that fsync writes back (docs/kernels/dax_entry.md).

The design goes back to Jan Kara's "dax: New fault locking" (ac401cc78242,
v4.7): a DAX file keeps an exceptional entry per page index in
``mapping->page_tree``, and a fault, ``dax_pfn_mkwrite`` and writeback lock
that entry (a bit in it, under ``mapping->tree_lock``) instead of a page.
Ross Zwisler's "dax: add support for PMD faults" / "dax: re-enable DAX PMD
support" (642261ac995e and its series, v4.10) made an entry either
PTE-sized or PMD-sized, with empty entries (a lock held before anything is
mapped) and huge-zero-page entries (a PMD load of a hole).

Mirrored code, fs/dax.c of release 4.10, checked against the v4.10 text:
the entry code is as v4.10 has it (and v4.12 kept it); the two faults are
modelled at both releases, v4.10's calling ``->iomap_begin`` before they
grab the entry and v4.12's after (13e451fdc1af, "dax: fix data corruption
when fault races with write"), which ``kernel:`` picks:

* :func:`get_unlocked_mapping_entry` (with :func:`wait_entry_unlocked`, the
  ``prepare_to_wait_exclusive(); schedule()`` loop), :func:`lock_slot`,
  :func:`put_locked_mapping_entry` (``dax_unlock_mapping_entry``),
  :func:`grab_mapping_entry`: the entry lock.
* :func:`dax_insert_mapping_entry`, :func:`dax_load_hole`,
  :func:`dax_insert_mapping`, :func:`dax_iomap_fault` (v4.10's PTE fault)
  and :func:`dax_iomap_fault_4_12` (``dax_iomap_pte_fault`` of v4.12);
  :func:`dax_pmd_insert_mapping`, :func:`dax_pmd_load_hole`,
  :func:`dax_iomap_pmd_fault` and :func:`dax_iomap_pmd_fault_4_12`; :func:`dax_pfn_mkwrite` (with Jan Kara's
  "dax: protect PTE modification on WP fault by radix tree entry lock",
  4.10's merge window, and ``finish_mkwrite_fault()``).
* The PMD fault is ext4's and XFS's in v4.10: ext2 registers no
  ``.pmd_fault`` for DAX ("allocation in ext2 cannot be reliably aligned to
  huge page sizes"). The model runs it over ext2's ``->iomap_begin``, whose
  allocator hands out the device's free blocks in order, so a file of two
  holes gets an aligned pair.
* :func:`dax_writeback_mapping_range`, :func:`dax_writeback_one`,
  :func:`dax_mapping_entry_mkclean` (Jan Kara's "dax: make cache flushing
  protected by entry lock" and 4b4bb46d00b3 "dax: clear dirty entry tags on
  cache flush", 4.10's merge window; Ross Zwisler's "dax: wrprotect pmd_t in
  dax_mapping_entry_mkclean", a fix of 4b4bb46d00b3 in the 4.10 cycle), and ``filemap_write_and_wait`` at
  release 4.10, which sends a DAX file's fsync there (``do_writepages`` ->
  ``ext2_dax_writepages``).
* :func:`ext2_iomap_begin`: fs/ext2/inode.c of v4.10, ``ext2_get_blocks()``
  over a range (a new block is zeroed: ``IS_DAX``'s ``sb_issue_zeroout``).
* Truncate: :func:`ext2_setsize_410` (fs/ext2/inode.c of v4.10: under
  ``dax_sem`` for write, ``truncate_setsize`` and
  ``__ext2_truncate_blocks``), :func:`truncate_inode_pages_range_410`
  (mm/truncate.c: a DAX entry goes to :func:`dax_delete_mapping_entry`,
  which waits for it to be unlocked and deletes it), and ext2's faults
  :func:`ext2_dax_fault` and :func:`ext2_dax_pfn_mkwrite` (fs/ext2/file.c:
  ``dax_sem`` for read; 5726b27b09cc, v4.3).

Geometry: a page is a block (``page_size = block_size``, as DAX requires);
a PMD is :data:`PG_PMD_NR` = 2 pages, so a file of ``size: 8192`` (2
blocks) is one PMD. A PMD fault needs the two blocks contiguous on the
device with the first at an even block (``pfn & PG_PMD_COLOUR``), else it
falls back to PTEs.

State (made by :func:`attach_mapping_tree` for a file of ext2, the
filesystem whose v4.10 fault these are): ``fs.mapping_tree`` (index ->
:class:`Entry`; a PMD entry sits at its first index and covers
:data:`PG_PMD_NR`), ``fs.tree_tags`` (entry index -> the tags set on it:
``dirty``, ``towrite``), ``fs.pte_write`` (``(mapping, index)`` -> True when
the user PTE is writable) and ``fs.pmem_unflushed`` (device unit -> the tag a
store left in the CPU cache, not yet flushed by ``wb_cache_pmem``). A user
mapping of the huge zero page or of a hole page is ``("zero", ...)`` in
``fs.ptes``; a huge PMD mapping of blocks is one ``("block", pblk)`` per page
it covers, so truncate.py's ``unmap_mapping_range`` zaps either.

Not modelled: ``mapping->nrexceptional`` (writeback always looks), the wait
queue's exclusive wake-one (``wait_until`` wakes every waiter whose entry is
unlocked: the same interleavings, since each waiter looks again under the
tree lock), ``radix_tree_preload`` failing, COW faults (private mappings),
``sb_start_pagefault`` around a write fault, ``iomap_end``,
``__mark_inode_dirty``, and the page lock of a hole page (its entry's lock
bit stands for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..invariants import Invariant, register
from ..runtime import wait_until
from . import (
    journal,  # noqa: F401  (filemap_write_and_wait of the seeds is registered first)
    writeback,  # noqa: F401  (truncate_inode_pages_range of 4.4 is registered first)
)
from .dax import VM_FAULT_NOPAGE, VM_FAULT_SIGBUS, vm_insert_mixed
from .fs import HOLE, WRITTEN, ZERO, ReadResult, WriteResult, data
from .get_block import alloc_block, ext2_get_block, zero_block
from .kernel import FUNCTIONS, RELEASES, kernel_function
from .operations import FS_SETUP
from .registry import REFUSALS, Param, operation
from .truncate import ext2_truncate_blocks, inode_dio_wait, truncate_setsize, unmap_mapping_range, zero_units

RELEASE = "4.10"
DAX_C = "fs/dax.c"
V410 = "v4.10 (642261ac995e's series; entry locking of ac401cc78242, v4.7)"
V410_TEXT = "v4.10 (read from the v4.10 text: iomap_begin before the entry lock)"
V412 = "v4.12 (iomap_begin under the entry lock, 13e451fdc1af; colliding PMD and PTE entries)"

PG_PMD_NR = 2  # PMD_SIZE >> PAGE_SHIFT in the model
PG_PMD_COLOUR = PG_PMD_NR - 1

VM_FAULT_FALLBACK = "VM_FAULT_FALLBACK"
EEXIST = "-EEXIST"

IOMAP_HOLE = "IOMAP_HOLE"
IOMAP_MAPPED = "IOMAP_MAPPED"

DIRTY = "PAGECACHE_TAG_DIRTY"
TOWRITE = "PAGECACHE_TAG_TOWRITE"

EMPTY = "empty"  # RADIX_DAX_EMPTY: locked while nothing is mapped yet
ZERO_PMD = "zero"  # RADIX_DAX_HZP: the huge zero page
PFN = "pfn"  # a DAX entry with storage (its sector)
PAGE = "page"  # a hole page in the page cache (a PTE load of a hole)

HUGE_ZERO = "huge zero page"  # what ("zero", HUGE_ZERO) in fs.ptes maps


@dataclass(frozen=True)
class Entry:
    """An entry of the mapping tree."""

    kind: str
    pmd: bool = False
    pfn: int | None = None  # first device block (dax_radix_sector)
    locked: bool = False  # RADIX_DAX_ENTRY_LOCK

    def but(self, **kw):
        d = dict(kind=self.kind, pmd=self.pmd, pfn=self.pfn, locked=self.locked)
        d.update(kw)
        return Entry(**d)

    def __str__(self):
        size = "PMD" if self.pmd else "PTE"
        what = f"{self.kind} {size}" + (f" pfn {self.pfn}" if self.pfn is not None else "")
        return what + (" locked" if self.locked else "")


@dataclass(frozen=True)
class Iomap:
    type: str
    blkno: int | None  # first device block
    length: int  # pages mapped from the start
    new: bool = False  # IOMAP_F_NEW


def attach_mapping_tree(fs):
    """The mapping tree of a file on ext2, the filesystem these paths are
    written for (v4.10's ext2_iomap_ops; the operations below run on ext2)."""
    if fs.flavour is ext2_get_block:
        rt = fs.rt
        fs.dax_sem = rt.rwsem("dax_sem")  # EXT2_I(inode)->dax_sem (5726b27b09cc, v4.3)
        fs.mapping_tree = rt.map("mapping_tree")
        fs.tree_tags = rt.map("tree_tags")
        fs.pte_write = rt.map("pte_write")
        fs.pmem_unflushed = rt.map("pmem_unflushed")


FS_SETUP.append(attach_mapping_tree)


def pmd_base(index):
    return index & ~PG_PMD_COLOUR


def lookup(fs, index):
    """``__radix_tree_lookup(&mapping->page_tree, index, ...)``: ``(slot
    index, entry)``; a PMD entry answers for every index it covers."""
    tree = fs.mapping_tree
    entry = tree.get(index)
    if entry is not None:
        return index, entry
    base = pmd_base(index)
    if base != index:
        entry = tree.get(base)
        if entry is not None and entry.pmd:
            return base, entry
    return index, None


def pmd_huge(fs, vma, base):
    """``pmd_trans_huge(*pmd) || pmd_devmap(*pmd)``: the mapping maps the
    PMD at ``base`` huge (the huge zero page, or the blocks of the PMD entry
    at ``base``), not through a table of PTEs."""
    pte = fs.ptes[vma].get(base)
    if pte is None:
        return False
    if pte == ("zero", HUGE_ZERO):
        return True
    entry = fs.mapping_tree.get(base)
    return pte[0] == "block" and entry is not None and entry.pmd and entry.kind == PFN and entry.pfn == pte[1]


def _tags(fs, key):
    return fs.tree_tags.get(key) or frozenset()


def tag_set(fs, key, tag):
    fs.tree_tags.set(key, _tags(fs, key) | {tag})


def tag_clear(fs, key, tag):
    tags = _tags(fs, key) - {tag}
    if tags:
        fs.tree_tags.set(key, tags)
    else:
        fs.tree_tags.delete(key)


# -- the entry lock ---------------------------------------------------------------------------


@kernel_function(DAX_C, V410, release=RELEASE)
def wait_entry_unlocked(fs, index):
    """The loop of ``get_unlocked_mapping_entry()``: while the entry at
    ``index`` is locked, ``prepare_to_wait_exclusive(wq, &ewait.wait,
    TASK_UNINTERRUPTIBLE); spin_unlock_irq(&mapping->tree_lock); schedule();``
    and look again. The step that finds it unlocked is the lookup."""
    yield wait_until(fs.rt, lambda: not _locked(lookup(fs, index)[1]),
                     f"get_unlocked_mapping_entry(mapping, {index}): entry unlocked")
    return True


def _locked(entry):
    return entry is not None and entry.locked


@kernel_function(DAX_C, V410, release=RELEASE)
def get_unlocked_mapping_entry(fs, index):
    """``spin_lock_irq(&mapping->tree_lock); entry =
    get_unlocked_mapping_entry(mapping, index, &slot)``: ``(slot index,
    entry)`` with the entry unlocked (or None), the tree lock held by the
    rest of the caller's step."""
    waited = yield from wait_entry_unlocked(fs, index)
    if not waited:  # the wait left out by an edit: the lookup is a step of its own
        yield f"get_unlocked_mapping_entry(mapping, {index}): __radix_tree_lookup()"
    return lookup(fs, index)


@kernel_function(DAX_C, V410, release=RELEASE)
def lock_slot(fs, key):
    """``entry = lock_slot(mapping, slot)``: set RADIX_DAX_ENTRY_LOCK (tree
    lock held). Returns the locked entry."""
    entry = fs.mapping_tree.get(key).but(locked=True)
    fs.mapping_tree.set(key, entry)
    return entry


@kernel_function(DAX_C, V410, release=RELEASE)
def put_locked_mapping_entry(fs, index):
    """``put_locked_mapping_entry()`` -> ``dax_unlock_mapping_entry()`` (a
    hole page: ``unlock_page()``): under the tree lock, ``if
    (WARN_ON_ONCE(!entry || !slot_locked(mapping, slot))) return;
    unlock_slot(mapping, slot);`` then ``dax_wake_mapping_entry_waiter()``."""
    yield f"put_locked_mapping_entry(mapping, {index}): unlock_slot(); dax_wake_mapping_entry_waiter()"
    key, entry = lookup(fs, index)
    if not _locked(entry):
        return  # WARN_ON_ONCE
    fs.mapping_tree.set(key, entry.but(locked=False))


@kernel_function(DAX_C, V410, release=RELEASE)
def grab_mapping_entry(fs, index, pmd):
    """``grab_mapping_entry(mapping, index, size_flag)`` (v4.10): the entry
    at ``index`` locked, an empty locked entry inserted if there is none, or
    ``-EEXIST`` for a PMD request that finds a PTE entry (or a hole page). A
    PTE request that finds an empty or huge-zero PMD entry downgrades it:
    locks it, unmaps the huge zero page (``unmap_mapping_range(mapping,
    (index << PAGE_SHIFT) & PMD_MASK, PMD_SIZE, 0)``), deletes it and inserts
    an empty PTE entry. Returns ``(slot index, locked entry)`` or EEXIST."""
    while True:
        # restart: spin_lock_irq(&mapping->tree_lock);
        key, entry = yield from get_unlocked_mapping_entry(fs, index)
        pmd_downgrade = False
        if entry is not None:
            if pmd:
                if entry.kind == PAGE or not entry.pmd:
                    # put_unlocked_mapping_entry(); entry = ERR_PTR(-EEXIST);
                    return EEXIST
            elif entry.pmd and entry.kind in (ZERO_PMD, EMPTY):
                pmd_downgrade = True
        if entry is None or pmd_downgrade:
            if pmd_downgrade:
                # Make sure 'entry' remains valid while we drop mapping->tree_lock.
                entry = lock_slot(fs, key) or entry  # (left out by an edit: as it was)
            # spin_unlock_irq(&mapping->tree_lock);
            if pmd_downgrade and entry.kind == ZERO_PMD:
                yield from unmap_mapping_range(fs, key, key + PG_PMD_COLOUR, even_cows=False)
            yield ("radix_tree_preload(); spin_lock_irq(&mapping->tree_lock)"
                   + ("; radix_tree_delete(); dax_wake_mapping_entry_waiter(..., true)" if pmd_downgrade else ""))
            if entry is None:
                # __radix_tree_insert() finds an entry another thread inserted meanwhile:
                # "if (err == -EEXIST && !(size_flag & RADIX_DAX_PMD)) goto restart;"
                _, again = lookup(fs, index)
                if again is not None:
                    if pmd:
                        return EEXIST
                    continue
            if pmd_downgrade:
                fs.mapping_tree.delete(key)
                fs.tree_tags.delete(key)
            new_key = pmd_base(index) if pmd else index
            if pmd and any(fs.mapping_tree.get(i) is not None for i in range(new_key, new_key + PG_PMD_NR)):
                # __radix_tree_insert() collided with a PTE entry in the PMD range
                return EEXIST
            # entry = dax_radix_locked_entry(0, size_flag | RADIX_DAX_EMPTY); __radix_tree_insert()
            entry = Entry(EMPTY, pmd, locked=True)
            fs.mapping_tree.set(new_key, entry)
            return new_key, entry
        # (a hole page: lock_page(page), its lock bit here)
        entry = lock_slot(fs, key) or entry
        return key, entry


# -- inserting entries and mappings ----------------------------------------------------------


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_insert_mapping_entry(fs, index, key, entry, pfn, pmd, zero, write):
    """``dax_insert_mapping_entry(mapping, vmf, entry, sector, flags)``
    (v4.10). A hole page is unmapped (``unmap_mapping_range(mapping,
    vmf->pgoff << PAGE_SHIFT, PAGE_SIZE, 0)``) and replaced; a huge zero
    page replaced by a PMD of blocks is unmapped over the PMD; an empty or
    zero entry is replaced by the new locked one; a PTE or PMD entry with
    storage is left alone. A write fault tags the entry dirty
    (``radix_tree_tag_set(page_tree, index, PAGECACHE_TAG_DIRTY)``).
    Returns ``(slot index, entry)``."""
    hole_fill = entry.kind == PAGE
    if hole_fill:
        # Unmap the page now before we remove it from page cache below.
        yield from unmap_mapping_range(fs, index, index, even_cows=False)
    elif entry.kind == ZERO_PMD and not zero:
        # replacing huge zero page with PMD block mapping
        yield from unmap_mapping_range(fs, key, key + PG_PMD_COLOUR, even_cows=False)
    yield "spin_lock_irq(&mapping->tree_lock); new_entry = dax_radix_locked_entry(sector, flags)"
    new = Entry(ZERO_PMD if zero else PFN, pmd, pfn, locked=True)
    if hole_fill:
        # __delete_from_page_cache(entry, NULL); __radix_tree_insert(page_tree, index, ...)
        fs.mapping_tree.set(index, new)
    elif entry.kind in (ZERO_PMD, EMPTY):
        fs.mapping_tree.set(key, new)  # __radix_tree_replace()
    else:
        key, new = lookup(fs, index)  # a normal PTE or PMD entry is left in the tree
    if write:
        tag_set(fs, key, DIRTY)
    return key, new


def _set_ptes(fs, vma, first, n, pte_of, write):
    ptes = fs.ptes[vma]
    for i in range(first, first + n):
        ptes.set(i, pte_of(i - first))
        if write:
            fs.pte_write.set((vma, i), True)
        else:
            fs.pte_write.delete((vma, i))


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_load_hole(fs, vma, index, entry):
    """``dax_load_hole(mapping, &entry, vmf)`` (v4.10): "Hole page already
    exists? Return it..."; else ``page = find_or_create_page(mapping,
    vmf->pgoff, ...)`` replaces the locked empty entry with a (locked)
    zeroed hole page. ``finish_fault(vmf)`` maps it read-only."""
    if entry.kind != PAGE:
        yield "page = find_or_create_page(mapping, vmf->pgoff, vmf->gfp_mask | __GFP_ZERO)"
        fs.mapping_tree.set(index, Entry(PAGE, locked=True))
    yield "vmf->page = page; ret = finish_fault(vmf)"
    if fs.ptes[vma].get(index) is None:
        _set_ptes(fs, vma, index, 1, lambda i: ("zero", "hole page"), False)
    return VM_FAULT_NOPAGE


@kernel_function("fs/ext2/inode.c", "v4.10", release=RELEASE)
def ext2_iomap_begin(fs, first, npages, write):
    """fs/ext2/inode.c ``ext2_iomap_begin()`` (v4.10): ``ext2_get_blocks(inode,
    first_block, max_blocks, &bno, &new, &boundary, flags & IOMAP_WRITE)``,
    under ext2's ``truncate_mutex``: one step. It maps the run of blocks
    from ``first`` that are all mapped (or, allocating, all holes), and a
    new block is zeroed (``IS_DAX``: ``sb_issue_zeroout``). The length is
    the run that is contiguous on the device."""
    yield (f"ext2_iomap_begin(inode, page {first}, {npages} page{'s' if npages > 1 else ''}, "
           f"{'IOMAP_WRITE' if write else '0'}): ext2_get_blocks()")
    state, pblk = fs.i_blocks.get(first)
    if state == HOLE and not write:
        n = 1
        while n < npages and fs.i_blocks.get(first + n)[0] == HOLE:
            n += 1
        return Iomap(IOMAP_HOLE, None, n)
    new = state == HOLE
    blocks = []
    for i in range(first, first + npages):
        st, pb = fs.i_blocks.get(i)
        if (st == HOLE) != new:
            break
        if new:
            pb = alloc_block(fs, i)
            if pb is None:
                break
            zero_block(fs, pb)
            fs.i_blocks.set(i, (WRITTEN, pb))
        blocks.append(pb)
    if not blocks:
        return None  # -ENOSPC
    n = 1
    while n < len(blocks) and blocks[n] == blocks[0] + n:
        n += 1
    return Iomap(IOMAP_MAPPED, blocks[0], n, new)


@kernel_function(DAX_C, V410_TEXT, release=RELEASE)
def dax_iomap_fault(fs, vma, pgoff, write):
    """``dax_iomap_fault(vma, vmf, ops)`` as v4.10 has it (the PTE fault; a
    shared mapping): ``ops->iomap_begin()`` first, without the entry lock,
    then ``grab_mapping_entry(mapping, vmf->pgoff, 0)``, then the mapping
    as the extent found before the entry was locked says. Between the two a
    write fault of another thread can allocate the block and insert its
    entry: a read fault that saw a hole then puts a hole page over that
    entry (``dax_load_hole`` -> ``find_or_create_page``, whose
    ``page_cache_tree_insert`` replaces a DAX entry with only a
    ``WARN_ON_ONCE``). Jan Kara's "dax: fix data corruption when fault
    races with write" (13e451fdc1af, v4.12-rc3) moved ``iomap_begin`` back
    under the entry lock: :func:`dax_iomap_fault_4_12`. Returns VM_FAULT_NOPAGE or
    VM_FAULT_SIGBUS."""
    yield "if (pos >= i_size_read(inode)) return VM_FAULT_SIGBUS"
    if pgoff >= fs.pages(fs.i_size.get()):
        return VM_FAULT_SIGBUS
    iomap = yield from ext2_iomap_begin(fs, pgoff, 1, write)
    if iomap is None:
        return VM_FAULT_SIGBUS  # dax_fault_return(error)
    got = yield from grab_mapping_entry(fs, pgoff, False)
    if got == EEXIST:
        return VM_FAULT_SIGBUS  # dax_fault_return(PTR_ERR(entry))
    key, entry = got
    ret = yield from _map_pte(fs, vma, pgoff, key, entry, iomap, write)
    yield from put_locked_mapping_entry(fs, pgoff)  # unlock_entry:
    return ret


def _map_pte(fs, vma, pgoff, key, entry, iomap, write):
    """The PTE fault's ``switch (iomap.type)`` under the entry lock (4.10
    and 4.12 alike): a mapped extent is inserted, a hole read maps the
    hole page, a hole written is a bug (the fault allocated)."""
    if iomap.type == IOMAP_MAPPED:
        yield from dax_insert_mapping(fs, vma, pgoff, key, entry, iomap, write)
        return VM_FAULT_NOPAGE
    if not write:
        return (yield from dax_load_hole(fs, vma, pgoff, entry))
    return VM_FAULT_SIGBUS  # WARN_ON_ONCE(1); error = -EIO


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_insert_mapping(fs, vma, pgoff, key, entry, iomap, write):
    """``dax_insert_mapping(mapping, iomap.bdev, sector, PAGE_SIZE, &entry,
    vma, vmf)`` (v4.10): the entry, then ``vm_insert_mixed()`` (-EBUSY,
    somebody else faulted on the same PTE, is fine)."""
    key, entry = yield from dax_insert_mapping_entry(fs, pgoff, key, entry, iomap.blkno, False, False, write)
    yield "return vm_insert_mixed(vma, vaddr, pfn)"
    was = fs.ptes[vma].get(pgoff)
    vm_insert_mixed(fs, vma, pgoff, iomap.blkno)
    if was is None and write:
        fs.pte_write.set((vma, pgoff), True)
    elif was is None:
        fs.pte_write.delete((vma, pgoff))


@kernel_function(DAX_C, V412, name="dax_iomap_fault", release="4.12")
def dax_iomap_fault_4_12(fs, vma, pgoff, write):
    """``dax_iomap_pte_fault()`` of v4.12 (``dax_iomap_fault()`` dispatches
    to it), a shared mapping: the entry is grabbed first and
    ``ops->iomap_begin()`` runs under its lock ("dax: fix data
    corruption when fault races with write", 13e451fdc1af); a PMD mapping that a racing
    PMD fault installed meanwhile makes it retry (Ross Zwisler's "dax: fix
    race between colliding PMD & PTE entries", v4.12). Returns
    VM_FAULT_NOPAGE or VM_FAULT_SIGBUS."""
    yield "if (pos >= i_size_read(inode)) return VM_FAULT_SIGBUS"
    if pgoff >= fs.pages(fs.i_size.get()):
        return VM_FAULT_SIGBUS
    got = yield from grab_mapping_entry(fs, pgoff, False)
    if got == EEXIST:
        return VM_FAULT_SIGBUS  # dax_fault_return(PTR_ERR(entry)): not reached for a PTE
    key, entry = got
    # if (pmd_trans_huge(*vmf->pmd) || pmd_devmap(*vmf->pmd)): raced with a PMD fault
    if pmd_huge(fs, vma, pmd_base(pgoff)):
        yield from put_locked_mapping_entry(fs, pgoff)
        return VM_FAULT_NOPAGE
    iomap = yield from ext2_iomap_begin(fs, pgoff, 1, write)
    if iomap is None:
        ret = VM_FAULT_SIGBUS
    else:
        ret = yield from _map_pte(fs, vma, pgoff, key, entry, iomap, write)
    yield from put_locked_mapping_entry(fs, pgoff)  # unlock_entry:
    return ret


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_pmd_insert_mapping(fs, vma, base, key, entry, iomap, write):
    """``dax_pmd_insert_mapping()`` (v4.10): fall back unless the blocks
    cover the PMD and the first is PMD-aligned (``pfn_t_to_pfn(pfn) &
    PG_PMD_COLOUR``); insert the PMD entry; ``vmf_insert_pfn_pmd()``."""
    if iomap.length < PG_PMD_NR or iomap.blkno & PG_PMD_COLOUR:
        return VM_FAULT_FALLBACK, key
    key, entry = yield from dax_insert_mapping_entry(fs, base, key, entry, iomap.blkno, True, False, write)
    yield "return vmf_insert_pfn_pmd(vma, address, pmd, pfn, write)"
    _set_ptes(fs, vma, base, PG_PMD_NR, lambda i: ("block", iomap.blkno + i), write)
    return VM_FAULT_NOPAGE, key


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_pmd_load_hole(fs, vma, base, key, entry):
    """``dax_pmd_load_hole()`` (v4.10): ``zero_page =
    mm_get_huge_zero_page(vma->vm_mm)``; insert a huge-zero-page PMD entry
    (``RADIX_DAX_PMD | RADIX_DAX_HZP``); under the PMD lock, fall back ``if
    (!pmd_none(*(vmf->pmd)))``, else ``set_pmd_at()`` the huge zero page."""
    key, entry = yield from dax_insert_mapping_entry(fs, base, key, entry, None, True, True, False)
    yield "ptl = pmd_lock(vma->vm_mm, pmd); if (!pmd_none(*pmd)) goto fallback; set_pmd_at(...)"
    ptes = fs.ptes[vma]
    if any(ptes.get(i) is not None for i in range(base, base + PG_PMD_NR)):
        return VM_FAULT_FALLBACK, key
    _set_ptes(fs, vma, base, PG_PMD_NR, lambda i: ("zero", HUGE_ZERO), False)
    return VM_FAULT_NOPAGE, key


@kernel_function(DAX_C, V410_TEXT, release=RELEASE)
def dax_iomap_pmd_fault(fs, vma, pgoff, write):
    """``dax_iomap_pmd_fault(vma, address, pmd, flags, ops)`` as v4.10 has it
    (a shared mapping): the size checks, ``ops->iomap_begin(inode, pos,
    PMD_SIZE, ...)`` without the entry lock, fall back unless it maps the
    whole PMD, then ``grab_mapping_entry(mapping, pgoff, RADIX_DAX_PMD)``
    (-EEXIST: fall back) and the PMD mapping or the huge zero page as the
    extent found before said. Returns VM_FAULT_NOPAGE, VM_FAULT_SIGBUS or
    VM_FAULT_FALLBACK."""
    base = pmd_base(pgoff)
    yield "max_pgoff = (i_size_read(inode) - 1) >> PAGE_SHIFT"
    max_pgoff = (fs.i_size.get() - 1) // fs.geo.page_size
    if base > max_pgoff:
        return VM_FAULT_SIGBUS
    if (base | PG_PMD_COLOUR) > max_pgoff:
        return VM_FAULT_FALLBACK  # the PMD would extend beyond the file size
    iomap = yield from ext2_iomap_begin(fs, base, PG_PMD_NR, write)
    if iomap is None or iomap.length < PG_PMD_NR:
        return VM_FAULT_FALLBACK  # "if (iomap.offset + iomap.length < pos + PMD_SIZE) goto finish_iomap"
    got = yield from grab_mapping_entry(fs, base, True)
    if got == EEXIST:
        return VM_FAULT_FALLBACK
    key, entry = got
    result = VM_FAULT_FALLBACK
    if iomap.type == IOMAP_MAPPED:
        result, key = yield from dax_pmd_insert_mapping(fs, vma, base, key, entry, iomap, write)
    elif not write:  # "if (WARN_ON_ONCE(write)) goto unlock_entry"
        result, key = yield from dax_pmd_load_hole(fs, vma, base, key, entry)
    yield from put_locked_mapping_entry(fs, base)  # unlock_entry:
    return result


@kernel_function(DAX_C, V412, name="dax_iomap_pmd_fault", release="4.12")
def dax_iomap_pmd_fault_4_12(fs, vma, pgoff, write):
    """``dax_iomap_pmd_fault()`` of v4.12 (a shared mapping): the entry is
    grabbed before ``ops->iomap_begin()``, and a PTE mapping a racing PTE
    fault installed in the range makes it retry. Returns VM_FAULT_NOPAGE,
    VM_FAULT_SIGBUS, 0 (retry) or VM_FAULT_FALLBACK (the caller then takes a
    PTE fault)."""
    base = pmd_base(pgoff)
    yield "max_pgoff = (i_size_read(inode) - 1) >> PAGE_SHIFT"
    max_pgoff = (fs.i_size.get() - 1) // fs.geo.page_size
    if base > max_pgoff:
        return VM_FAULT_SIGBUS
    if (base | PG_PMD_COLOUR) > max_pgoff:
        return VM_FAULT_FALLBACK  # the PMD would extend beyond the file size
    got = yield from grab_mapping_entry(fs, base, True)
    if got == EEXIST:
        return VM_FAULT_FALLBACK
    key, entry = got
    result = VM_FAULT_FALLBACK
    # if (!pmd_none(*vmf->pmd) && !pmd_trans_huge(*vmf->pmd) && !pmd_devmap(*vmf->pmd)): raced with a PTE fault
    ptes = fs.ptes[vma]
    if not pmd_huge(fs, vma, base) and any(ptes.get(i) is not None for i in range(base, base + PG_PMD_NR)):
        yield from put_locked_mapping_entry(fs, base)
        return 0
    iomap = yield from ext2_iomap_begin(fs, base, PG_PMD_NR, write)
    if iomap is not None and iomap.length >= PG_PMD_NR:
        if iomap.type == IOMAP_MAPPED:
            result, key = yield from dax_pmd_insert_mapping(fs, vma, base, key, entry, iomap, write)
        elif not write:
            result, key = yield from dax_pmd_load_hole(fs, vma, base, key, entry)
    yield from put_locked_mapping_entry(fs, base)  # unlock_entry:
    # fallback: split_huge_pmd(vma, pmd, address) (nothing to split in the model)
    return result


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_pfn_mkwrite(fs, vma, pgoff):
    """``dax_pfn_mkwrite(vma, vmf)`` (v4.10): the first store to a read-only
    DAX PTE. Under the tree lock, wait for the entry unlocked; tag it dirty
    (``radix_tree_tag_set(&mapping->page_tree, index,
    PAGECACHE_TAG_DIRTY)``) and lock it; then ``finish_mkwrite_fault(vmf)``
    makes the PTE writable, and the entry is unlocked. The lock keeps
    writeback from write-protecting and flushing between the two."""
    key, entry = yield from get_unlocked_mapping_entry(fs, pgoff)
    if entry is None or entry.kind == PAGE:
        return VM_FAULT_NOPAGE  # put_unlocked_mapping_entry(); retry the fault
    tag_set(fs, key, DIRTY)
    lock_slot(fs, key)
    yield "finish_mkwrite_fault(vmf): make the PTE writable (if it is still the one we saw)"
    if fs.ptes[vma].get(pgoff) is not None and fs.ptes[vma].get(pgoff)[0] == "block":
        fs.pte_write.set((vma, pgoff), True)
    yield from put_locked_mapping_entry(fs, pgoff)
    return VM_FAULT_NOPAGE


# -- writeback on fsync ----------------------------------------------------------------------


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_mapping_entry_mkclean(fs, key, entry):
    """``dax_mapping_entry_mkclean(mapping, index, pfn)`` (4b4bb46d00b3, with
    Ross Zwisler's "dax: wrprotect pmd_t in dax_mapping_entry_mkclean"):
    under ``i_mmap_lock_read(mapping)``, for each shared mapping,
    ``follow_pte_pmd(vma->vm_mm, address, &ptep, &pmdp, &ptl)`` at the
    entry's first index: a huge PMD mapping ``pfn`` is write-protected
    (``pmd_wrprotect(); pmd_mkclean()``), else the PTE there if it maps
    ``pfn``. The other pages of a PMD entry that a mapping maps with PTEs
    are not looked at (pfn_mkclean_range() does that, much later)."""
    yield fs.i_mmap_mutex.lock("dax_mapping_entry_mkclean(): i_mmap_lock_read(mapping); follow_pte_pmd(); "
                               "pte_wrprotect() / pmd_wrprotect()")
    for vma, ptes in fs.ptes.items():
        if vma.startswith("private"):
            continue  # if (!(vma->vm_flags & VM_SHARED)) continue;
        pte = ptes.get(key)
        if pte is None or pte[0] != "block" or pte[1] != entry.pfn:
            continue  # if (pfn != pte_pfn(*ptep)) / (pfn != pmd_pfn(*pmdp))
        huge = pmd_huge(fs, vma, key)
        for i in range(key, key + (PG_PMD_NR if huge else 1)):
            fs.pte_write.delete((vma, i))
    fs.i_mmap_mutex.unlock()


@kernel_function(DAX_C, V410, release=RELEASE)
def wb_cache_pmem(fs, entry):
    """``wb_cache_pmem(kaddr, size)``: write the CPU cache lines of the
    entry's blocks back to persistent memory."""
    upb = fs.geo.units_per_block
    n = PG_PMD_NR if entry.pmd else 1
    for unit in range(entry.pfn * upb, (entry.pfn + n) * upb):
        fs.pmem_unflushed.delete(unit)


@kernel_function(DAX_C, V410, release=RELEASE, dropped=0)
def dax_writeback_one(fs, index, entry):
    """``dax_writeback_one(bdev, mapping, index, entry)`` (v4.10): under the
    tree lock, wait for the entry unlocked; skip it if it was punched out,
    reallocated or already written back (no TOWRITE tag); ``entry =
    lock_slot(mapping, slot)`` ("Lock the entry to serialize with page
    faults") and clear TOWRITE; then write-protect its mappings, flush the
    cache, clear DIRTY ("There cannot be new dirty data in the pfn after
    the flush has completed as the pfn mappings are writeprotected and
    fault waits for mapping entry lock"), and unlock it."""
    key, entry2 = yield from get_unlocked_mapping_entry(fs, index)
    if entry2 is None or entry2.kind == PAGE or entry2.pfn != entry.pfn:
        return 0  # put_unlocked: punched out / reallocated
    if entry.kind != PFN:
        return "-EIO"  # WARN_ON_ONCE(dax_is_empty_entry(entry) || dax_is_zero_entry(entry))
    if TOWRITE not in _tags(fs, key):
        return 0  # Another fsync thread may have already written back this entry
    entry = lock_slot(fs, key) or entry2
    tag_clear(fs, key, TOWRITE)
    yield from dax_mapping_entry_mkclean(fs, key, entry)
    yield "dax_map_atomic(bdev, &dax); wb_cache_pmem(dax.addr, size)"
    wb_cache_pmem(fs, entry)
    yield "spin_lock_irq(&mapping->tree_lock); radix_tree_tag_clear(page_tree, index, PAGECACHE_TAG_DIRTY)"
    tag_clear(fs, key, DIRTY)
    yield from put_locked_mapping_entry(fs, index)
    return 0


@kernel_function(DAX_C, V410, release=RELEASE, dropped=0)
def dax_writeback_mapping_range(fs):
    """``dax_writeback_mapping_range(mapping, bdev, wbc)`` (v4.10, WB_SYNC_ALL
    over the whole file): ``tag_pages_for_writeback()`` turns every DIRTY tag
    into TOWRITE too; then ``find_get_entries_tag(mapping, start_index,
    PAGECACHE_TAG_TOWRITE, ...)`` and ``dax_writeback_one()`` on each."""
    yield "tag_pages_for_writeback(mapping, start_index, end_index)"
    for key in fs.tree_tags.keys():
        if DIRTY in _tags(fs, key):
            tag_set(fs, key, TOWRITE)
    yield "pvec.nr = find_get_entries_tag(mapping, start_index, PAGECACHE_TAG_TOWRITE, ...)"
    found = [(key, fs.mapping_tree.get(key)) for key in fs.tree_tags.keys() if TOWRITE in _tags(fs, key)]
    for key, entry in found:
        if entry is None:
            continue
        ret = yield from dax_writeback_one(fs, key, entry)
        if ret != 0:
            return ret
    return 0


@kernel_function("mm/filemap.c", "v4.10", name="filemap_write_and_wait", release=RELEASE, dropped=0)
def filemap_write_and_wait_410(fs):
    """``filemap_write_and_wait()`` at release 4.10: for a DAX file with a
    mapping tree, ``filemap_fdatawrite()`` -> ``do_writepages()`` ->
    ``ext2_dax_writepages()`` -> ``dax_writeback_mapping_range()``; any other
    file: the release before (4.4's, models/writeback.py: ext4's delalloc
    writeback for an ext4 page-cache file, the seeds' model for the rest)."""
    if not fs.dax or not hasattr(fs, "mapping_tree"):
        earlier = RELEASES["filemap_write_and_wait"]["4.4"].fn
        return (yield from earlier(fs))
    return (yield from dax_writeback_mapping_range(fs))


# -- truncate ------------------------------------------------------------------------------------


@kernel_function(DAX_C, V410, release=RELEASE)
def dax_delete_mapping_entry(fs, index):
    """``dax_delete_mapping_entry(mapping, index)`` ->
    ``__dax_invalidate_mapping_entry(mapping, index, true)`` (v4.10): under
    the tree lock, wait until the entry is unlocked
    (``get_unlocked_mapping_entry``), then delete it (a truncate deletes a
    dirty one too) and wake its waiters."""
    key, entry = yield from get_unlocked_mapping_entry(fs, index)
    if entry is None or entry.kind == PAGE:
        return 0  # "if (!entry || !radix_tree_exceptional_entry(entry)) goto out"
    fs.mapping_tree.delete(key)  # radix_tree_delete(page_tree, index)
    fs.tree_tags.delete(key)
    return 1


@kernel_function("mm/truncate.c", "v4.10", name="truncate_inode_pages_range", release=RELEASE)
def truncate_inode_pages_range_410(fs, first, last):
    """``truncate_inode_pages_range()`` (v4.10) of a DAX file with a mapping
    tree: each entry of ``first..last`` (to the end if None) in turn; an
    exceptional (DAX) entry goes through ``truncate_exceptional_entry()`` ->
    ``dax_delete_mapping_entry()``, a hole page is locked (``lock_page``:
    its entry's lock bit), taken out of the page cache and unlocked. Any
    other file: the release before (4.4's, models/writeback.py)."""
    if not fs.dax or not hasattr(fs, "mapping_tree"):
        earlier = RELEASES["truncate_inode_pages_range"]["4.4"].fn
        return (yield from earlier(fs, first, last))
    yield "pagevec_lookup_entries(&pvec, mapping, index, ..., indices)"
    found = sorted(k for k in fs.mapping_tree.keys() if k >= first and (last is None or k <= last))
    for index in found:
        entry = fs.mapping_tree.get(index)
        if entry is None:
            continue
        if entry.kind != PAGE:
            yield from dax_delete_mapping_entry(fs, index)  # truncate_exceptional_entry()
            continue
        yield from wait_entry_unlocked(fs, index)  # lock_page(page) of the hole page
        yield f"truncate_inode_page(mapping, page {index}); unlock_page(page)"
        if fs.mapping_tree.get(index) is not None and fs.mapping_tree.get(index).kind == PAGE:
            fs.mapping_tree.delete(index)
    return None


@kernel_function("fs/ext2/inode.c", "v4.10 (dax_sem: 5726b27b09cc, v4.3)", name="ext2_setsize", release=RELEASE)
def ext2_setsize_410(fs, newsize):
    """``ext2_setsize(inode, newsize)`` (v4.10), ``i_mutex`` held by the
    caller: ``inode_dio_wait``; for DAX, the partial page past the new size
    zeroed (``iomap_zero_range``; one step, on the device); then under
    ``dax_sem_down_write(EXT2_I(inode))``: ``truncate_setsize`` (``i_size``,
    then ``truncate_pagecache``: unmap, ``truncate_inode_pages_range``,
    unmap again) and ``__ext2_truncate_blocks``. A file that is not DAX, or
    has no mapping tree, runs the seeds' ``ext2_setsize``."""
    if not fs.dax or not hasattr(fs, "mapping_tree"):
        return (yield from FUNCTIONS["ext2_setsize"].fn(fs, newsize))
    yield from inode_dio_wait(fs)
    ps = fs.geo.page_size
    if newsize % ps:
        yield "iomap_zero_range(inode, newsize, PAGE_ALIGN(newsize) - newsize, NULL, &ext2_iomap_ops)"
        state, pblk = fs.i_blocks.get(newsize // fs.geo.block_size)
        if state == WRITTEN:
            zero_units(fs, pblk * fs.geo.units_per_block, newsize % fs.geo.block_size,
                       fs.geo.block_size - newsize % fs.geo.block_size)
    yield fs.dax_sem.down_write("dax_sem_down_write(EXT2_I(inode))")
    yield from truncate_setsize(fs, newsize)
    yield from ext2_truncate_blocks(fs, newsize)
    yield "dax_sem_up_write(EXT2_I(inode))"
    fs.dax_sem.up_write()
    return 0


# -- loads and stores through a shared mapping ---------------------------------------------------

DAX_MAPPING = Param("mapping", "choice", False, "shared", ("shared", "shared2"),
                    "which shared user mapping of the file (two processes)")
PMD = Param("pmd", "bool", False, False, (), "take a PMD fault (2 pages) first, falling back to a PTE fault")


@kernel_function("fs/ext2/file.c", "v4.10 (dax_sem: 5726b27b09cc, v4.3)", release=RELEASE)
def ext2_dax_fault(fs, vma, pgoff, write, pmd=False):
    """``ext2_dax_fault(vma, vmf)`` (v4.10), ``ext2_dax_vm_ops.fault``:
    ``down_read(&ei->dax_sem)`` around ``dax_iomap_fault(vma, vmf,
    &ext2_iomap_ops)``, which keeps the fault out of a truncate between its
    ``truncate_setsize`` and ``__ext2_truncate_blocks``. A PMD fault (which
    ext2 does not register in v4.10; the model offers it over ext2 as ext4
    and XFS have it, under their fault lock) runs first under the same lock
    and falls back to the PTE fault. ``sb_start_pagefault`` and
    ``file_update_time`` of a write fault are not modelled."""
    yield fs.dax_sem.down_read("down_read(&ei->dax_sem)")
    ret = VM_FAULT_FALLBACK
    if pmd:
        ret = yield from dax_iomap_pmd_fault(fs, vma, pgoff, write)
    if ret == VM_FAULT_FALLBACK:
        ret = yield from dax_iomap_fault(fs, vma, pgoff, write)
    fs.dax_sem.up_read()  # up_read(&ei->dax_sem), with the fault's last step
    return ret


@kernel_function("fs/ext2/file.c", "v4.10 (dax_sem: 5726b27b09cc, v4.3)", release=RELEASE)
def ext2_dax_pfn_mkwrite(fs, vma, pgoff):
    """``ext2_dax_pfn_mkwrite(vma, vmf)`` (v4.10): under
    ``down_read(&ei->dax_sem)``, "check that the faulting page hasn't raced
    with truncate" (``vmf->pgoff >= size``: ``VM_FAULT_SIGBUS``), else
    ``dax_pfn_mkwrite``."""
    yield fs.dax_sem.down_read("down_read(&ei->dax_sem)")
    yield "size = (i_size_read(inode) + PAGE_SIZE - 1) >> PAGE_SHIFT; if (vmf->pgoff >= size)"
    if pgoff >= fs.pages(fs.i_size.get()):
        ret = VM_FAULT_SIGBUS
    else:
        ret = yield from dax_pfn_mkwrite(fs, vma, pgoff)
    fs.dax_sem.up_read()  # up_read(&ei->dax_sem), with the last step
    return ret


def _fault(fs, vma, pgoff, write, pmd):
    return (yield from ext2_dax_fault(fs, vma, pgoff, write, pmd))


@operation("dax_mmap_load", "a load of one unit through a shared mapping of a DAX file, with fs/dax.c of "
                            "v4.10 (mapping-tree entries): a PMD fault (pmd: true) or a PTE fault if "
                            "the page is not mapped",
           Param("offset", help="file offset of the load"), DAX_MAPPING, PMD, flavours=("ext2",))
def dax_mmap_load(fs, ctx, offset, mapping="shared", pmd=False):
    pgoff = offset // fs.geo.page_size
    us = fs.geo.unit_size
    while True:
        yield "load: walk the page table"
        pte = fs.ptes[mapping].get(pgoff)
        if pte is not None:
            kind, where = pte
            if kind == "zero":
                tag = ZERO
            else:
                tag = fs.dev.get(where * fs.geo.units_per_block + offset % fs.geo.page_size // us)
            return ReadResult(offset - offset % us, us, (tag,), "load")
        ret = yield from _fault(fs, mapping, pgoff, False, pmd)
        if ret == VM_FAULT_SIGBUS:
            return ret


@operation("dax_mmap_store", "a store of one unit through a shared mapping of a DAX file, with fs/dax.c of "
                             "v4.10: a write fault (PMD with pmd: true) if the page is not mapped, "
                             "dax_pfn_mkwrite if its PTE is read-only; the data stays in the CPU cache "
                             "until writeback flushes it",
           Param("offset", help="file offset of the store"), DAX_MAPPING, PMD, flavours=("ext2",))
def dax_mmap_store(fs, ctx, offset, mapping="shared", pmd=False):
    pgoff = offset // fs.geo.page_size
    us, upb = fs.geo.unit_size, fs.geo.units_per_block
    tag = data(ctx.thread, ctx.seq)
    while True:
        yield "store: walk the page table"
        pte = fs.ptes[mapping].get(pgoff)
        if pte is None:
            ret = yield from _fault(fs, mapping, pgoff, True, pmd)
        elif pte[0] == "block" and fs.pte_write.get((mapping, pgoff)):
            unit = pte[1] * upb + offset % fs.geo.page_size // us
            fs.dev.set(unit, tag)
            fs.pmem_unflushed.set(unit, tag)
            return WriteResult(offset - offset % us, us, tag)
        elif pte[0] == "block":
            ret = yield from ext2_dax_pfn_mkwrite(fs, mapping, pgoff)  # do_wp_page -> wp_pfn_shared
        else:
            # A read-only hole page (do_wp_page -> ->page_mkwrite) or the huge
            # zero page (wp_huge_pmd -> ->pmd_fault, falling back to PTEs).
            ret = yield from _fault(fs, mapping, pgoff, True, pte[1] == HUGE_ZERO)
        if ret == VM_FAULT_SIGBUS:
            return ret


def _seeds_fault_on_ext2_dax(opname, flavour, spec, releases):
    """``mmap_load``/``mmap_store`` fault through the seeds' handlers (the
    XIP fault of 2014); on an ext2 DAX file at 4.10 or later the fault is
    ``ext2_dax_fault`` over ``dax_iomap_fault``, and truncate deletes the
    mapping tree's entries under ``dax_sem``, which the seeds' fault does
    not take: mixing the two would report races no kernel has."""
    picked = releases.get("ext2_setsize")
    if (opname in ("mmap_load", "mmap_store") and flavour == "ext2" and spec.dax and picked is not None
            and picked.module == __name__):
        return (f"{opname} on an ext2 DAX file is not modelled at kernel {picked.release}: it is the seeds' XIP "
                f"fault, which that release does not have (its fault is dax_mmap_load / dax_mmap_store: "
                f"ext2_dax_fault over fs/dax.c; see docs/kernels/dax_entry.md)")
    return None


REFUSALS.append(_seeds_fault_on_ext2_dax)


# -- what fsync promises --------------------------------------------------------------------------


@register
class FsyncFlushesStores(Invariant):
    name = "fsync_flushes_stores"
    description = ("once fsync returns, no store through a DAX mapping that returned before fsync began "
                   "is left only in the CPU cache (fs/dax.c's writeback flushed it)")

    def watches(self, fs):
        return [fs.pmem_unflushed, fs.i_blocks] if hasattr(fs, "pmem_unflushed") else []

    def on_return(self, fs, execution, entry):
        if entry["op"] != "fsync" or not hasattr(fs, "pmem_unflushed"):
            return None
        ops = execution.operations
        me = next(o for o in ops if o.begin and (o.thread, o.seq) ==
                  (execution.threads[entry["thread"]].name, entry["seq"]))
        us, upb = fs.geo.unit_size, fs.geo.units_per_block
        unflushed = fs.pmem_unflushed.items
        for w in ops:
            if w.op != "dax_mmap_store" or not isinstance(w.result, WriteResult) or w.end >= me.begin:
                continue
            unit = w.result.offset // us
            state, pblk = fs.i_blocks.values[unit // upb]
            if pblk is None:
                continue
            dev_unit = pblk * upb + unit % upb
            if unflushed.get(dev_unit) == w.result.tag:
                return (f"{me.thread}'s fsync returned, but {w.thread}'s store of {w.result.tag} at file "
                        f"offset {unit * us}, which returned before the fsync began, is still only in the "
                        f"CPU cache (device block {pblk} unit {unit % upb} not flushed)")
        return None
