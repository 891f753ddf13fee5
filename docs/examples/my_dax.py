"""A copy of racecheck's do_dax_fault (racecheck/models/dax.py) with two
lines changed: the fault no longer zeroes a block get_block returned new
(buffer_new). docs/examples/my_dax_fault.yaml runs it in place of the
library's with ``edits: replace``; docs/edits.md walks through it."""

from racecheck.models.dax import (
    VM_FAULT_SIGBUS,
    _unlock_page,
    evict_hole_page,
    fault_get_block,
    find_lock_page,
    locks_hole_page,
    xip_load_hole,
    xip_map_block,
)


def do_dax_fault(fs, vma, pgoff, write=False, cow=False):
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
        return _unlock_page(fs, pgoff, page, VM_FAULT_SIGBUS)
    if bh.new:
        yield "new block: left as get_block returned it"   # was: yield "dax_clear_blocks(...)"
        pass                                                # was: zero_block(fs, bh.blocknr)
    elif not bh.mapped and not cow:
        return (yield from xip_load_hole(fs, vma, pgoff, get_block, block, page))
    if locks_hole_page(fs) and not cow:
        yield from evict_hole_page(fs, pgoff, page)
    return (yield from xip_map_block(fs, vma, pgoff, bh, cow))
