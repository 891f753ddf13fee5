"""The XIP page fault before the rewrite: ``xip_file_fault()`` of
mm/filemap_xip.c (3.13), which patch 07 of seed 002 ("Rewrite XIP page fault
handling") deletes, as that patch's removed lines show it. Patch 01 ("Fix
XIP fault vs truncate race") is the ``recheck_isize_under_i_mmap_mutex``
fix: without it (3.13 as released) the fault checks ``i_size`` once, at the
top, and inserts the PFN (``found:``) or the sparse page holding no lock;
with it (the removed lines of patch 07), both ``vm_insert_mixed()`` and
``vm_insert_page()`` come after a recheck of ``i_size`` under
``i_mmap_mutex``. ``scenarios/fault_vs_truncate.yaml`` is race 1 on this
code.

A read fault on a hole in a mapping that is not shared-writable maps one
global zeroed page, ``__xip_sparse_page``. A write fault on a shared writable
mapping allocates the block and must then remove that page from every other
mapping of the file page, so that nobody keeps reading zeros from it while
the data goes to the block. Three loops make it work, each mirrored here step
for step:

* ``goto again`` in :func:`xip_file_fault`: a read fault that found a hole
  looks again under ``xip_sparse_mutex``; if a write fault allocated the block
  meanwhile, it starts over from the ``i_size`` check.
* ``read_seqcount_begin()`` in :func:`__xip_unmap`: while a read fault is
  inside its ``write_seqcount_begin()``/``write_seqcount_end()`` section (the
  count is odd), the write fault spins (``cpu_relax(); goto repeat``).
* ``goto retry`` in :func:`__xip_unmap`: if the count moved while it walked
  the mappings (a read fault, of any page, mapped the sparse page meanwhile),
  it walks them again, this time under ``xip_sparse_mutex``.

The spin has no bound: a stateless search that lets the write fault run while
a read fault sits in its section never ends the execution. Breadth-first
search over states (``--strategy bfs``, or ``auto``) explores it to the end.

The ``ext2-filemap-xip`` flavour is ext2 mounted ``-o xip``: ``ext2_get_xip_mem()``
is ``__ext2_get_block()`` (a new block is cleared before it is linked) and
``-ENODATA`` for a hole. It adds the fault's globals to the file system:
``xip_sparse_mutex``, ``xip_sparse_seq`` (a seqcount: ``rt.seqcount``, whose
``read_seqcount_begin`` spins one step per look while the count is odd) and
the ``__xip_sparse_page`` pointer, which the first sparse fault sets (``xip_sparse_page()``).

The scenario's mappings have fixed vma flags: ``shared`` is ``MAP_SHARED``
and writable, ``shared2`` ``MAP_SHARED`` and read-only (a process that opened
the file ``O_RDONLY``: it cannot store), ``private`` ``MAP_PRIVATE``. The last
two get the sparse page on a hole; a store through ``private`` copies the
page it maps (``do_wp_page``, models/dax.py).

Not modelled: ``VM_FAULT_OOM`` (allocations do not fail), ``-EBUSY`` from
``vm_insert_mixed`` (a PTE already there is kept), the ``MS_RDONLY`` mount
test.
"""

from __future__ import annotations

from ..runtime import read_seqcount_begin, read_seqcount_retry, write_seqcount_begin, write_seqcount_end
from .dax import RECHECK_ISIZE, AnonPage, do_wp_page, load_through_pte
from .fs import ZERO, ReadResult, WriteResult, data
from .get_block import ext2_get_block
from .kernel import kernel_function
from .operations import FS_SETUP
from .registry import Param, flavour, operation

VM_FAULT_SIGBUS = "VM_FAULT_SIGBUS"
VM_FAULT_NOPAGE = "VM_FAULT_NOPAGE"
VM_FAULT_OOM = "VM_FAULT_OOM"
ENODATA = -61
ENOSPC = -28
SPARSE = ("sparse", "__xip_sparse_page")  # a PTE to the global zeroed page


@flavour("ext2-filemap-xip", "ext2 mounted -o xip before the XIP rewrite (3.13): mm/filemap_xip.c's fault with "
                     "its global sparse page (xip_file_load, xip_file_store; seed 002, patch 07)", filesystem="ext2")
def ext2_xip_get_block(fs, block, create):
    return (yield from ext2_get_block(fs, block, create))


def attach_sparse_state(fs):
    """The globals of mm/filemap_xip.c, for an ``ext2-filemap-xip`` file system."""
    if fs.flavour is ext2_xip_get_block:
        fs.xip_sparse_mutex = fs.rt.mutex("xip_sparse_mutex")
        fs.xip_sparse_seq = fs.rt.seqcount("xip_sparse_seq")
        fs.xip_sparse_page = fs.rt.var("__xip_sparse_page", None)


FS_SETUP.append(attach_sparse_state)


def get_xip_mem(fs, pgoff, create):
    """``mapping->a_ops->get_xip_mem(mapping, pgoff, create, &xip_mem, &xip_pfn)``:
    ``ext2_get_xip_mem()``. Returns ``(error, pfn)``."""
    block = pgoff * fs.geo.page_size // fs.geo.block_size
    bh = yield from ext2_xip_get_block(fs, block, create)
    if bh is None:
        return ENOSPC, None
    if not bh.mapped:
        return ENODATA, None
    return 0, bh.blocknr


# -- mm/filemap_xip.c (3.13) --------------------------------------------------------------


@kernel_function("mm/filemap_xip.c", "3.13", dropped=SPARSE)
def xip_sparse_page(fs):
    """Allocate the global zeroed page on first use (it never fails here)."""
    if fs.xip_sparse_page.get() is None:
        fs.xip_sparse_page.set("allocated")
    return SPARSE


@kernel_function("mm/filemap_xip.c", "3.13")
def __xip_unmap(fs, pgoff):
    """Walk every mapping of the file and remove the sparse page at
    ``pgoff``; walk again under ``xip_sparse_mutex`` if a sparse fault ran
    meanwhile (the count moved)."""
    count = yield from read_seqcount_begin(fs.xip_sparse_seq)
    yield "page = __xip_sparse_page; if (!page) return;"
    if fs.xip_sparse_page.get() is None:
        return
    locked = False
    while True:  # retry:
        yield fs.i_mmap_mutex.lock()
        # vma_interval_tree_foreach(...): page_check_address(); ptep_clear_flush(); ...
        for ptes in fs.ptes.values():
            if ptes.get(pgoff) == SPARSE:
                ptes.delete(pgoff)
        fs.i_mmap_mutex.unlock()
        if locked:
            yield "mutex_unlock(&xip_sparse_mutex)"
            fs.xip_sparse_mutex.unlock()
            return
        yield "read_seqcount_retry(&xip_sparse_seq, count)"
        if not read_seqcount_retry(fs.xip_sparse_seq, count):
            return
        yield fs.xip_sparse_mutex.lock()
        locked = True  # goto retry


@kernel_function("mm/filemap_xip.c", "3.13, seed 002 patch 01 as a fix")
def xip_file_fault(fs, vma, pgoff, shared_writable):
    """``xip_file_fault()``: the ``VM_FAULT_*`` code."""
    while True:  # again:
        yield "size = (i_size_read(inode) + PAGE_CACHE_SIZE - 1) >> PAGE_CACHE_SHIFT"
        if pgoff >= fs.pages(fs.i_size.get()):
            return VM_FAULT_SIGBUS
        error, pfn = yield from get_xip_mem(fs, pgoff, False)
        if not error:
            return (yield from found(fs, vma, pgoff, pfn))
        if error != ENODATA:
            return VM_FAULT_OOM
        # sparse block
        if shared_writable:
            # maybe shared writable, allocate new block
            yield fs.xip_sparse_mutex.lock()
            error, pfn = yield from get_xip_mem(fs, pgoff, True)
            yield "mutex_unlock(&xip_sparse_mutex)"
            fs.xip_sparse_mutex.unlock()
            if error:
                return VM_FAULT_SIGBUS
            # unmap sparse mappings at pgoff from all other vmas
            yield from __xip_unmap(fs, pgoff)
            return (yield from found(fs, vma, pgoff, pfn))
        yield fs.xip_sparse_mutex.lock()
        yield "write_seqcount_begin(&xip_sparse_seq)"
        write_seqcount_begin(fs.xip_sparse_seq)
        error, pfn = yield from get_xip_mem(fs, pgoff, False)
        if not error:
            yield "write_seqcount_end(&xip_sparse_seq); mutex_unlock(&xip_sparse_mutex); goto again"
            write_seqcount_end(fs.xip_sparse_seq)
            fs.xip_sparse_mutex.unlock()
            continue
        return (yield from map_sparse_page(fs, vma, pgoff, error))


def found(fs, vma, pgoff, pfn):
    """``found:`` insert the PFN; with patch 01, recheck ``i_size`` under
    ``i_mmap_mutex`` first (truncate takes it, in ``unmap_mapping_range()``,
    after writing the new size)."""
    if RECHECK_ISIZE not in fs.fixes:
        # 3.13: err = vm_insert_mixed(vma, (unsigned long)vmf->virtual_address, xip_pfn);
        yield "err = vm_insert_mixed(vma, vaddr, xip_pfn)"
        ptes = fs.ptes[vma]
        if ptes.get(pgoff) is None:  # -EBUSY: another thread faulted it in
            ptes.set(pgoff, ("block", pfn))
        return VM_FAULT_NOPAGE
    # /* We must recheck i_size under i_mmap_mutex */
    yield fs.i_mmap_mutex.lock()
    if pgoff >= fs.pages(fs.i_size.get()):
        fs.i_mmap_mutex.unlock()
        return VM_FAULT_SIGBUS
    yield "err = vm_insert_mixed(vma, vaddr, xip_pfn); mutex_unlock(&mapping->i_mmap_mutex)"
    ptes = fs.ptes[vma]
    if ptes.get(pgoff) is None:  # -EBUSY: another thread faulted it in
        ptes.set(pgoff, ("block", pfn))
    fs.i_mmap_mutex.unlock()
    return VM_FAULT_NOPAGE


def map_sparse_page(fs, vma, pgoff, error):
    """The rest of the sparse branch, ``xip_sparse_mutex`` held and the count
    odd: map the zeroed page (with patch 01, after rechecking ``i_size``
    under ``i_mmap_mutex``), then ``unlock:`` and ``out:``."""
    ret = VM_FAULT_OOM
    if error == ENODATA and RECHECK_ISIZE not in fs.fixes:
        # 3.13: page = xip_sparse_page(); if (!page) goto out;
        #       err = vm_insert_page(vma, ..., page); ... ret = VM_FAULT_NOPAGE;
        yield "page = xip_sparse_page(); err = vm_insert_page(vma, vaddr, page)"
        _insert_sparse_page(fs, vma, pgoff)
        ret = VM_FAULT_NOPAGE
    elif error == ENODATA:
        yield fs.i_mmap_mutex.lock()
        if pgoff >= fs.pages(fs.i_size.get()):
            ret = VM_FAULT_SIGBUS
        else:
            yield "page = xip_sparse_page(); err = vm_insert_page(vma, vaddr, page)"
            _insert_sparse_page(fs, vma, pgoff)
            ret = VM_FAULT_NOPAGE
        yield "unlock: mutex_unlock(&mapping->i_mmap_mutex)"
        fs.i_mmap_mutex.unlock()
    yield "out: write_seqcount_end(&xip_sparse_seq); mutex_unlock(&xip_sparse_mutex)"
    write_seqcount_end(fs.xip_sparse_seq)
    fs.xip_sparse_mutex.unlock()
    return ret


def _insert_sparse_page(fs, vma, pgoff):
    page = xip_sparse_page(fs)
    ptes = fs.ptes[vma]
    if ptes.get(pgoff) is None:
        ptes.set(pgoff, page)


# -- operations -------------------------------------------------------------------------

# The mappings are the scenario's three, each with its vma flags:
SHARED_WRITABLE = ("shared",)  # MAP_SHARED, PROT_WRITE: a fault on a hole allocates
LOAD_MAPPING = Param("mapping", "choice", False, "shared", ("shared", "shared2", "private"),
                     "shared: MAP_SHARED and writable; shared2: MAP_SHARED, read-only (another "
                     "process that opened the file O_RDONLY); private: MAP_PRIVATE. The last two get "
                     "the sparse page on a hole")
STORE_MAPPING = Param("mapping", "choice", False, "shared", ("shared", "private"),
                      "shared: MAP_SHARED and writable; private: MAP_PRIVATE (the store copies the page)")
FAULT_ERRORS = (VM_FAULT_SIGBUS, VM_FAULT_OOM)


@operation("xip_file_load", "a load of one unit through a mapping of an ext2 -o xip file; faults the page "
           "in with the old xip_file_fault (goto again, the seqcount spin and retry of __xip_unmap)",
           Param("offset", help="file offset of the load"), LOAD_MAPPING,
           flavours=("ext2-filemap-xip",))
def xip_file_load(fs, ctx, offset, mapping="shared"):
    pgoff = offset // fs.geo.page_size
    while True:
        yield "load: walk the page table"
        pte = fs.ptes[mapping].get(pgoff)
        if pte == SPARSE:
            us = fs.geo.unit_size
            return ReadResult(offset - offset % us, us, (ZERO,), "load")
        if pte is not None:
            return load_through_pte(fs, pte, offset)
        ret = yield from xip_file_fault(fs, mapping, pgoff, mapping in SHARED_WRITABLE)
        if ret in FAULT_ERRORS:
            return ret


@operation("xip_file_store", "a store of one unit through a mapping of an ext2 -o xip file: on a shared "
           "mapping the write fault (xip_file_fault) allocates the block and unmaps the sparse page; on a "
           "private one the fault maps the block or the sparse page and do_wp_page copies it",
           Param("offset", help="file offset of the store"), STORE_MAPPING,
           flavours=("ext2-filemap-xip",))
def xip_file_store(fs, ctx, offset, mapping="shared"):
    ps, us = fs.geo.page_size, fs.geo.unit_size
    pgoff = offset // ps
    index = offset % ps // us
    tag = data(ctx.thread, ctx.seq)
    ptes = fs.ptes[mapping]
    while True:
        yield "store: walk the page table"
        pte = ptes.get(pgoff)
        if pte is None:
            ret = yield from xip_file_fault(fs, mapping, pgoff, mapping in SHARED_WRITABLE)
            if ret in FAULT_ERRORS:
                return ret
            continue
        kind, where = pte
        if kind == "anon":
            units = list(where.units)
            units[index] = tag
            ptes.set(pgoff, ("anon", AnonPage(tuple(units))))
            return WriteResult(offset - offset % us, us, tag)
        if mapping in SHARED_WRITABLE:  # a block: the shared mapping never maps the sparse page
            fs.dev.set(where * fs.geo.units_per_block + index, tag)
            return WriteResult(offset - offset % us, us, tag)
        # A read-only PTE of a private mapping (the block, or the sparse page,
        # which is not in the page cache and reads as zeros): do_wp_page()
        # copies it into an anonymous page.
        yield from do_wp_page(fs, mapping, pgoff, pte)
