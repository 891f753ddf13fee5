"""The XIP (DAX) page fault, as ``do_xip_fault()`` in patch 07 of seed 002
(fs/xip.c), with the ``i_size`` recheck of patch 01 as a fix switch.
"""

from __future__ import annotations

from .fs import ReadResult
from .registry import fix

VM_FAULT_SIGBUS = "VM_FAULT_SIGBUS"
VM_FAULT_NOPAGE = "VM_FAULT_NOPAGE"

RECHECK_ISIZE = fix(
    "recheck_isize_under_i_mmap_mutex",
    "the DAX fault rechecks i_size under i_mmap_mutex before inserting the PTE (seed 002, patch 01)")


def do_xip_fault(fs, vma, pgoff, write=False):
    """A fault on page ``pgoff`` of mapping ``vma``. Returns a VM_FAULT code."""
    get_block = fs.flavour
    yield "size = i_size_read(inode)"
    size = fs.pages(fs.i_size.get())
    if pgoff >= size:
        return VM_FAULT_SIGBUS

    block = pgoff * fs.geo.page_size // fs.geo.block_size
    bh = yield from get_block(fs, block, False)
    if bh is None or bh.size < fs.geo.page_size:
        return VM_FAULT_SIGBUS

    if not bh.mapped:
        if write:
            bh = yield from get_block(fs, block, True)
            if bh is None or bh.size < fs.geo.page_size:
                return VM_FAULT_SIGBUS
        else:
            return VM_FAULT_SIGBUS  # xip_load_hole(): not modelled yet

    if RECHECK_ISIZE in fs.fixes:
        # Recheck i_size under i_mmap_mutex: truncate takes it after
        # updating i_size, so either we see the new size here, or truncate's
        # unmap_mapping_range() will remove the PTE we insert.
        yield fs.i_mmap_mutex.lock()
        size = fs.pages(fs.i_size.get())
        if pgoff >= size:
            fs.i_mmap_mutex.unlock()
            return VM_FAULT_SIGBUS

    yield "vm_insert_mixed(vma, vaddr, pfn)"
    vm_insert_mixed(fs, vma, pgoff, bh.blocknr)
    if RECHECK_ISIZE in fs.fixes:
        fs.i_mmap_mutex.unlock()
    return VM_FAULT_NOPAGE


def vm_insert_mixed(fs, vma, pgoff, pfn):
    ptes = fs.ptes[vma]
    if ptes.get(pgoff) is None:  # -EBUSY: somebody else faulted it in
        ptes.set(pgoff, ("block", pfn))


def load_through_pte(fs, vma, offset):
    """The user's load of the unit at ``offset`` once a PTE is present."""
    ps, us = fs.geo.page_size, fs.geo.unit_size
    pte = fs.ptes[vma].get(offset // ps)
    if pte is None:
        return None
    kind, where = pte
    index = offset % ps // us
    if kind == "block":
        tag = fs.dev.get(where * fs.geo.units_per_block + index)
    else:
        tag = fs.page_cache.get(where)[index]
    return ReadResult(offset - offset % us, us, (tag,), "load")
