"""``->page_mkwrite`` of an ext4 page-cache file (4.5, 5.15): a store through a
shared mapping of a file that is not DAX.

A store to a page that has no writable PTE faults (mm/memory.c: no PTE,
``do_shared_fault``; a read-only PTE, ``do_wp_page`` -> ``wp_page_shared``;
models/fault_exclusion.py), and both call ``do_page_mkwrite``, which calls
the file's ``vma->vm_ops->page_mkwrite``. For ext4 that is
:func:`ext4_page_mkwrite` (fs/ext4/inode.c), which since ea3d7209ca01
("ext4: fix races between page faults and hole punching", Jan Kara, v4.5)
holds ``down_read(&EXT4_I(inode)->i_mmap_sem)`` across the whole of it: the
lock that truncate, hole punch, collapse, insert and zero range take for
write from before they drop the page cache until they have changed the
block map. With delayed allocation (ext4's default, and the only mode the
model's ext4 page-cache files have: models/writeback.py) the body is
:func:`block_page_mkwrite` (fs/buffer.c) with ``ext4_da_get_block_prep``:
lock the page, give up if it left the file or lies past ``i_size``
(``-EFAULT``, which ``block_page_mkwrite_return`` makes
``VM_FAULT_NOPAGE``: the fault is retried), map its buffers below
``i_size`` (a hole gets a delayed-allocation reservation), mark them dirty
and return the page locked; the caller installs the PTE writable and
unlocks the page. The store then lands in the dirty page.

Sources: read against 4.5.7 (everestdavid/sound-linux-4.5.7 at 931861d2b548,
Makefile 4.5.7): fs/ext4/inode.c ``ext4_page_mkwrite``, fs/buffer.c
``block_page_mkwrite``, include/linux/buffer_head.h
``block_page_mkwrite_return``, mm/memory.c ``do_shared_fault``,
``wp_page_shared``, ``do_page_mkwrite``; and against 5.15.100
(zcjie1/linux-5.15.100 at 52bed7a9a5ad, Makefile 5.15.100): the same
functions of fs/ext4/inode.c, fs/buffer.c, buffer_head.h and mm/memory.c. The order
modelled is the text's. One change: at 4.5 ``block_page_mkwrite_return``
makes ``-EAGAIN`` ``VM_FAULT_RETRY``, at 5.15 ``VM_FAULT_NOPAGE`` (the
model had 5.15's at both; no modelled path returns ``-EAGAIN``).

What the lock is for, as the model shows it: not truncate or hole punch
(with a page one block, ``block_page_mkwrite``'s page lock and its recheck
of ``page->mapping`` and ``i_size`` keep a store out of a page they drop,
as for XFS, docs/kernels/fault_exclusion.md), but collapse and insert
range. These write the dirty pages from the range on back, then drop them
(``truncate_pagecache``) and shift the extents. A ``->page_mkwrite``
without ``i_mmap_sem`` can dirty a page between the write-out and the drop;
the store lands in it, and the drop discards it: the write is lost
(``no_discarded_write``, models/invariants.py).

Left out: the nodelalloc branch (``ext4_nonda_switch`` when free space is
low, ``data=journal``, the journal handle, ``ext4_bh_unmapped`` walk and
``ext4_get_block``/``ext4_get_block_write``): the model's ext4 page-cache
files always have delayed allocation; the ``-ENOSPC`` retry
(``ext4_should_retry_alloc``: a reservation never fails in the model);
``file_update_time``; ``wait_for_stable_page`` (the device needs no stable
pages). ``sb_start_pagefault`` is modelled where the flavour has the freeze
lock (models/ext4_fault.py). At 5.15 the lock is
``filemap_invalidate_lock_shared(mapping)`` (d4f5258eae7b "ext4: Convert to
use mapping->invalidate_lock": :func:`ext4_page_mkwrite_5_15`), read against
5.15.100; the store path around it is the one of 4.x (mm/memory.c:
models/fault_exclusion.py), which 5.15.100's mm/memory.c follows in what
is modelled (``finish_fault``, ``fault_dirty_shared_page``). Before 4.5 a store through
an ext4 page-cache mapping is refused by name when the scenario loads.
"""

from __future__ import annotations

from .dax import VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_RETRY, VM_FAULT_SIGBUS
from .extents import fs_type
from .fault_exclusion import PAGE_MKWRITE, STORE_RELEASES
from .kernel import kernel_function
from .registry import FILESYSTEMS, FS_SETUP, REFUSALS
from .writeback import block_commit_write, block_write_begin, ext4_da_get_block_prep

EFAULT = -14  # "We overload EFAULT to mean page got truncated"
EAGAIN = -11


def attach_ext4_pte_write(fs):
    """Which user PTEs of an ext4 page-cache file are writable (``(mapping,
    page)`` -> True): what ``->page_mkwrite`` gives a store (XFS's:
    models/fault_exclusion.py)."""
    if not fs.dax and fs_type(fs) == "ext4" and not hasattr(fs, "pte_write"):
        fs.pte_write = fs.rt.map("pte_write")


FS_SETUP.append(attach_ext4_pte_write)


@kernel_function("fs/buffer.c", "v4.5 (returns an errno)", name="block_page_mkwrite", dropped=0, release="4.5")
def block_page_mkwrite_4_5(fs, vma, pgoff, get_block):
    """``block_page_mkwrite(vma, vmf, get_block)`` (fs/buffer.c, 4.5):
    ``lock_page(page)``; "page got truncated?" (``page->mapping !=
    inode->i_mapping || page_offset(page) > size``: unlock, ``-EFAULT``);
    ``__block_write_begin(page, 0, end, get_block)`` and
    ``block_commit_write(page, 0, end)`` over the part below ``i_size``;
    ``set_page_dirty``; ``wait_for_stable_page``; 0 with the page locked.
    An error unlocks the page and is returned."""
    ps = fs.geo.page_size
    yield fs.page_lock[pgoff].lock(f"lock_page(page {pgoff}); size = i_size_read(inode)")
    size = fs.i_size.get()
    if not fs.page_cache.contains(pgoff) or pgoff * ps > size:
        fs.page_lock[pgoff].unlock()  # out_unlock: unlock_page(page); return -EFAULT
        return EFAULT
    end = size % ps if (pgoff + 1) * ps > size else ps  # "page is wholly or partially inside EOF"
    ret = yield from block_write_begin(fs, pgoff, 0, end, get_block)
    if ret:
        yield f"unlock_page(page {pgoff}); return {ret}"
        fs.page_lock[pgoff].unlock()
        return ret
    yield f"block_commit_write(page {pgoff}, 0, {end}); set_page_dirty(page); wait_for_stable_page(page)"
    block_commit_write(fs, pgoff, 0, end)
    return 0


@kernel_function("include/linux/buffer_head.h", "v4.5", dropped=VM_FAULT_LOCKED, release="4.5")
def block_page_mkwrite_return(fs, err):
    """``block_page_mkwrite_return(err)`` (4.5): 0 is ``VM_FAULT_LOCKED``,
    ``-EFAULT`` ``VM_FAULT_NOPAGE`` (the fault is retried), ``-EAGAIN``
    ``VM_FAULT_RETRY``, ``-ENOMEM`` ``VM_FAULT_OOM`` (not modelled: no
    allocation fails), the rest ``VM_FAULT_SIGBUS``."""
    if err == 0:
        return VM_FAULT_LOCKED
    if err == EFAULT:
        return VM_FAULT_NOPAGE
    if err == EAGAIN:
        return VM_FAULT_RETRY
    return VM_FAULT_SIGBUS


@kernel_function("include/linux/buffer_head.h", "v5.15", name="block_page_mkwrite_return",
                 dropped=VM_FAULT_LOCKED, release="5.15")
def block_page_mkwrite_return_5_15(fs, err):
    """``block_page_mkwrite_return(err)`` (5.15): 4.5's, but ``-EAGAIN``
    is ``VM_FAULT_NOPAGE`` with ``-EFAULT``."""
    if err == 0:
        return VM_FAULT_LOCKED
    if err in (EFAULT, EAGAIN):
        return VM_FAULT_NOPAGE
    return VM_FAULT_SIGBUS


def _ext4_page_mkwrite(fs, vma, pgoff, down, up, up_label):
    """The delalloc body of ``ext4_page_mkwrite()``, the fault-exclusion lock
    given as ``down()`` (the request) and ``up()``."""
    freeze = getattr(fs, "sb_pagefaults", None) is not None
    if freeze:
        yield fs.sb_pagefaults.down_read("sb_start_pagefault(inode->i_sb)")
    yield down()
    # test_opt(DELALLOC) && !ext4_should_journal_data(inode) && !ext4_nonda_switch(sb): always, here
    err = yield from block_page_mkwrite(fs, vma, pgoff, ext4_da_get_block_prep)
    ret = block_page_mkwrite_return(fs, err)
    yield up_label
    up()
    if freeze:
        yield "sb_end_pagefault(inode->i_sb)"
        fs.sb_pagefaults.up_read()
    return ret


@kernel_function("fs/ext4/inode.c", "v4.5 (ea3d7209ca01)", dropped=VM_FAULT_LOCKED, release="4.5")
def ext4_page_mkwrite(fs, vma, pgoff):
    """``ext4_page_mkwrite()`` (4.5), ``ext4_file_vm_ops.page_mkwrite``:
    ``sb_start_pagefault``, ``file_update_time``,
    ``down_read(&EXT4_I(inode)->i_mmap_sem)``; the delalloc case ("Delalloc
    case is easy..."): ``block_page_mkwrite(vma, vmf,
    ext4_da_get_block_prep)``, then ``out_ret:``
    ``block_page_mkwrite_return``; ``out:`` ``up_read`` and
    ``sb_end_pagefault``. Returns ``VM_FAULT_LOCKED`` (the page locked and
    dirty), ``VM_FAULT_NOPAGE`` or ``VM_FAULT_SIGBUS``."""
    return (yield from _ext4_page_mkwrite(
        fs, vma, pgoff,
        lambda: fs.i_mmap_sem.down_read("file_update_time(vma->vm_file); down_read(&EXT4_I(inode)->i_mmap_sem)"),
        lambda: fs.i_mmap_sem.up_read(), "up_read(&EXT4_I(inode)->i_mmap_sem)"))


@kernel_function("fs/ext4/inode.c", "v5.15 (d4f5258eae7b)", name="ext4_page_mkwrite", dropped=VM_FAULT_LOCKED,
                 release="5.15")
def ext4_page_mkwrite_5_15(fs, vma, pgoff):
    """``ext4_page_mkwrite()`` (5.15): 4.5's, with
    ``filemap_invalidate_lock_shared(mapping)`` where 4.5 took
    ``i_mmap_sem`` (d4f5258eae7b "ext4: Convert to use
    mapping->invalidate_lock"); the ``IS_IMMUTABLE`` check and
    ``ext4_convert_inline_data`` (no immutable or inline-data files in the
    model) are not modelled."""
    return (yield from _ext4_page_mkwrite(
        fs, vma, pgoff,
        lambda: fs.invalidate_lock.down_read("file_update_time(vma->vm_file); filemap_invalidate_lock_shared(mapping)"),
        lambda: fs.invalidate_lock.up_read(), "filemap_invalidate_unlock_shared(mapping)"))


# The stub of block_page_mkwrite by its kernel name (this release takes get_block).
block_page_mkwrite = block_page_mkwrite_4_5

PAGE_MKWRITE["ext4"] = ext4_page_mkwrite
STORE_RELEASES["ext4"] = ("4.5", "5.15")

# What a store on each filesystem needs picked besides its __do_fault: the
# ->page_mkwrite path of that release, not a mixture of releases.
# (None: the release of the scenario's __do_fault.)
_NEEDS = {"ext4": {"ext4_page_mkwrite": None, "block_page_mkwrite": "4.5", "__block_write_begin": "4.4",
                   "ext4_da_get_block_prep": "4.4"},
          "xfs": {"block_page_mkwrite": "4.1"}}


def _mixed_store_path(opname, flavour, spec, releases):
    """A store through a page-cache mapping whose ``__do_fault`` models it,
    but with a ``kernel:`` mapping that picks another release (or none) for
    a function of its ``->page_mkwrite``."""
    kind = FILESYSTEMS.get(flavour, flavour)
    picked = releases.get("__do_fault")
    if (opname != "mmap_store" or spec.dax or picked is None
            or picked.release not in STORE_RELEASES.get(kind, ())):
        return None
    for name, release in _NEEDS.get(kind, {}).items():
        release = release or picked.release
        got = releases.get(name)
        if got is None or got.release != release:
            return (f"mmap_store on a page-cache file (file.dax: false) is not modelled at kernel "
                    f"{picked.release} with {name} at {got.release if got else 'the seeds'}: the write "
                    f"fault runs {name} of {release} (see docs/kernels/page_mkwrite.md)")
    return None


REFUSALS.append(_mixed_store_path)
