"""The buffered read of 5.15 (mm/filemap.c ``filemap_read`` and
mm/readahead.c), with the VFS's ``invalidate_lock`` where 730633f0b7f9
("mm: Protect operations adding pages to page cache with invalidate_lock",
Jan Kara, v5.15) put it: a read that must add a page to the page cache, or
bring a page uptodate, holds ``filemap_invalidate_lock_shared(mapping)``
from before it adds the page until the page is read. Truncate, hole punch
and the other range operations of ext4 and XFS hold the lock exclusive from
before they drop the page cache until the block map has changed
(models/fault_exclusion.py), so no read can bring in a page of the range
from a block about to be freed.

Before 5.15 nothing kept a ``read(2)`` of an ext4 file out of that window
(the read takes no inode lock; XFS's ``xfs_file_buffered_read`` takes the
IOLOCK shared, which fallocate and truncate take exclusive): the seeds'
2.6.19 read (``do_generic_mapping_read``, models/buffered.py) runs at every
release below 5.15 and shows it.

XFS's read of 4.1 (:func:`xfs_file_read_iter_4_1`, registered for ``kernel:
"4.1"`` as ``do_generic_mapping_read``): the seeds' read under
``XFS_IOLOCK_SHARED``, the model's ``i_mutex``.

Registered for ``kernel: "5.15"``:

* :func:`filemap_read_5_15` (as ``do_generic_mapping_read``, the name the
  ``buffered_read`` operation calls): ``filemap_read()`` ->
  ``filemap_get_pages()`` per page: look the page up
  (``filemap_get_read_batch``); missing: ``page_cache_sync_readahead`` over
  the rest of the request, look again, still missing:
  ``filemap_create_page``; not uptodate: ``filemap_update_page``; then
  ``i_size`` and the copy. On an XFS file ``xfs_file_buffered_read`` holds
  ``XFS_IOLOCK_SHARED`` around it (the model's ``i_mutex``, a mutex: reads
  of one file are serialised among themselves, which changes nothing a
  scenario can observe).
* :func:`page_cache_ra_unbounded`: under the lock shared, each page of the
  window that is not cached is added locked; then ``read_pages`` reads them
  (``->readpage`` each: ext4's ``->readahead`` is ``mpage_readahead`` in
  5.15, one bio per run of pages; the model reads page by page).
  ``do_page_cache_ra`` clamps the window to ``i_size`` first.
* :func:`filemap_create_page`, :func:`filemap_update_page`,
  :func:`filemap_read_page`.

Not modelled: the readahead state (``file_ra_state``: the window is the
read's own pages; ``PageReadahead`` and async readahead), ``IOCB_NOWAIT``,
``IOCB_NOIO`` and ``IOCB_WAITQ``, large folios, ``filemap_range_uptodate``'s
partly uptodate pages (a page is uptodate or not), ``-EIO`` from
``->readpage``, ``mark_page_accessed``.
"""

from __future__ import annotations

from ..runtime import wait_until
from .buffered import PageUptodate, _nr, _units, add_to_page_cache, address_space_operations
from .extents import fs_type
from .kernel import FUNCTIONS, kernel_function
from .registry import REFUSALS

RELEASE = "5.15"
# The seeds' read (models/buffered.py), which XFS's read of 4.1 wraps.
_seed_read = FUNCTIONS["do_generic_mapping_read"].fn
FILEMAP = "mm/filemap.c"
V515 = "v5.15 (730633f0b7f9)"
AOP_TRUNCATED_PAGE = "AOP_TRUNCATED_PAGE"


@kernel_function(FILEMAP, V515, dropped=0, release=RELEASE)
def filemap_read_page(fs, index):
    """``filemap_read_page(file, mapping, page)`` (5.15), page locked:
    ``mapping->a_ops->readpage(file, page)``, whose I/O completion unlocks
    it; ``wait_on_page_locked_killable(page)``."""
    yield from address_space_operations(fs).readpage(fs, index)
    if fs.page_lock[index].owner is not None:
        yield wait_until(fs.rt, lambda: fs.page_lock[index].owner is None,
                         f"wait_on_page_locked_killable(page {index})")
    return 0


@kernel_function(FILEMAP, V515, dropped=0, release=RELEASE)
def filemap_create_page(fs, index):
    """``filemap_create_page(file, mapping, index, pvec)`` (5.15): "Protect
    against truncate / hole punch. Grabbing invalidate_lock here assures we
    cannot instantiate and bring uptodate new pagecache pages after
    evicting page cache during truncate and before actually freeing
    blocks." ``filemap_invalidate_lock_shared(mapping)``;
    ``add_to_page_cache_lru`` (``-EEXIST``: ``AOP_TRUNCATED_PAGE``, look
    again); ``filemap_read_page``; ``filemap_invalidate_unlock_shared``."""
    yield fs.invalidate_lock.down_read("filemap_invalidate_lock_shared(mapping)")
    yield fs.page_lock[index].lock(f"page = page_cache_alloc(mapping); add_to_page_cache_lru(page, mapping, {index})")
    if fs.page_cache.contains(index):  # -EEXIST
        fs.page_lock[index].unlock()
        ret = AOP_TRUNCATED_PAGE
    else:
        add_to_page_cache(fs, index)
        ret = yield from filemap_read_page(fs, index)
    yield "filemap_invalidate_unlock_shared(mapping)"
    fs.invalidate_lock.up_read()
    return ret


@kernel_function(FILEMAP, V515, dropped=0, release=RELEASE)
def filemap_update_page(fs, index):
    """``filemap_update_page(iocb, mapping, iter, page)`` (5.15), a page found
    not uptodate: ``filemap_invalidate_lock_shared(mapping)``; ``trylock_page``
    (held by another: let the lock go, ``put_and_wait_on_page_locked``,
    ``AOP_TRUNCATED_PAGE``); a page truncated meanwhile (``!page->mapping``):
    ``AOP_TRUNCATED_PAGE``; uptodate by now: done; else
    ``filemap_read_page``."""
    yield fs.invalidate_lock.down_read("filemap_invalidate_lock_shared(mapping)")
    yield f"trylock_page(page {index})"
    lock = fs.page_lock[index]
    if lock.owner is not None:
        yield "filemap_invalidate_unlock_shared(mapping)"
        fs.invalidate_lock.up_read()
        yield wait_until(fs.rt, lambda: fs.page_lock[index].owner is None,
                         f"put_and_wait_on_page_locked(page {index}, TASK_KILLABLE)")
        return AOP_TRUNCATED_PAGE
    yield lock.lock(f"lock page {index} (trylock_page succeeded)")
    if not fs.page_cache.contains(index):
        ret = AOP_TRUNCATED_PAGE  # "if (!page->mapping) goto unlock"
        lock.unlock()
    elif PageUptodate(fs, index):
        ret = 0  # filemap_range_uptodate()
        lock.unlock()
    else:
        ret = yield from filemap_read_page(fs, index)
    yield "filemap_invalidate_unlock_shared(mapping)"
    fs.invalidate_lock.up_read()
    return ret


@kernel_function("mm/readahead.c", V515, dropped=0, release=RELEASE)
def page_cache_ra_unbounded(fs, index, nr_to_read):
    """``page_cache_sync_readahead()`` -> ``do_page_cache_ra()`` ->
    ``page_cache_ra_unbounded(ractl, nr_to_read, lookahead_size)`` (5.15):
    the window clamped to the last page below ``i_size``; under
    ``filemap_invalidate_lock_shared(mapping)`` ("Preallocate as many pages
    as we will need"), each page of the window not in the page cache is
    added locked (a page already there, or an ``add_to_page_cache_lru``
    that fails, ends the batch: ``read_pages`` of what was added so far);
    ``read_pages`` reads the batch (``->readpage`` of each page; its I/O
    completion unlocks it); then ``filemap_invalidate_unlock_shared``."""
    ps = fs.geo.page_size
    yield "do_page_cache_ra(): end_index = (isize - 1) >> PAGE_SHIFT; clamp nr_to_read"
    isize = fs.i_size.get()
    if not isize:
        return 0
    end_index = (isize - 1) // ps
    if index > end_index:
        return 0
    nr_to_read = min(nr_to_read, end_index - index + 1)
    yield fs.invalidate_lock.down_read("page_cache_ra_unbounded(): filemap_invalidate_lock_shared(mapping)")
    batch = []
    for i in range(index, index + nr_to_read):
        yield f"page = xa_load(&mapping->i_pages, {i}); add_to_page_cache_lru(page, mapping, {i})"
        if fs.page_cache.contains(i) or fs.page_lock[i].owner is not None:
            yield from _read_pages(fs, batch)
            batch = []
            continue
        yield fs.page_lock[i].lock(f"__SetPageLocked(page {i}) (add_to_page_cache_lru)")
        if fs.page_cache.contains(i):
            # Another reader's page went in first: the insertion into the
            # xarray fails (-EEXIST), the new page is let go and the batch
            # ends, as when the lookup found it.
            fs.page_lock[i].unlock()
            yield from _read_pages(fs, batch)
            batch = []
            continue
        add_to_page_cache(fs, i)
        batch.append(i)
    yield from _read_pages(fs, batch)
    yield "filemap_invalidate_unlock_shared(mapping)"
    fs.invalidate_lock.up_read()
    return 0


def _read_pages(fs, batch):
    """``read_pages(ractl, &page_pool, skip_page)``: ``->readpage`` of each
    page of the batch (locked; the read unlocks it)."""
    aops = address_space_operations(fs)
    for i in batch:
        yield from aops.readpage(fs, i)


def _filemap_get_page(fs, index, last_index):
    """``filemap_get_pages()`` for the page at ``index``: 0 when it is in the
    page cache and uptodate, ``AOP_TRUNCATED_PAGE`` to look again."""
    yield f"filemap_get_read_batch(mapping, {index}, {last_index}, pvec)"
    if not fs.page_cache.contains(index):
        # page_cache_sync_readahead(mapping, ra, filp, index, last_index - index)
        yield from page_cache_ra_unbounded(fs, index, last_index - index)
        yield f"filemap_get_read_batch(mapping, {index}, {last_index}, pvec)"
        if not fs.page_cache.contains(index):
            return (yield from filemap_create_page(fs, index))
    if not PageUptodate(fs, index):
        return (yield from filemap_update_page(fs, index))
    return 0


@kernel_function("fs/xfs/xfs_file.c", "v4.1 (xfs_file_read_iter)", name="do_generic_mapping_read",
                 dropped=((), 0), release="4.1")
def xfs_file_read_iter_4_1(fs, pos, count):
    """``xfs_file_read_iter()`` (4.1) of a buffered read: ``xfs_rw_ilock(ip,
    XFS_IOLOCK_SHARED)`` (the model's ``i_mutex``) around
    ``generic_file_read_iter`` (the seeds' read, models/buffered.py).
    Fallocate and truncate hold ``XFS_IOLOCK_EXCL``, so an XFS read never
    runs inside a hole punch. Any other filesystem's read is the seeds'
    unchanged (ext4's of 4.5 takes no lock)."""
    if fs_type(fs) != "xfs":
        return (yield from _seed_read(fs, pos, count))
    yield fs.i_mutex.lock("xfs_file_read_iter(): xfs_rw_ilock(ip, XFS_IOLOCK_SHARED)")
    ret = yield from _seed_read(fs, pos, count)
    yield "xfs_rw_iunlock(ip, XFS_IOLOCK_SHARED)"
    fs.i_mutex.unlock()
    return ret


@kernel_function(FILEMAP, "v5.15 (filemap_read; 730633f0b7f9)", name="do_generic_mapping_read",
                 dropped=((), 0), release=RELEASE)
def filemap_read_5_15(fs, pos, count):
    """``filemap_read(iocb, iter, already_read)`` (5.15), as
    ``generic_file_read_iter`` calls it for a read that is not direct (an
    XFS file: under ``xfs_ilock(ip, XFS_IOLOCK_SHARED)``, the model's
    ``i_mutex``). Per page: ``filemap_get_pages`` (see the module), then
    ``isize = i_size_read(inode)`` and ``copy_page_to_iter`` up to it.
    Returns the units copied, in order, and their number of bytes."""
    xfs = fs_type(fs) == "xfs"
    if xfs:
        yield fs.i_mutex.lock("xfs_file_buffered_read(): xfs_ilock(ip, XFS_IOLOCK_SHARED)")
    ps = fs.geo.page_size
    units, done = [], 0
    while done < count:
        index, offset = divmod(pos, ps)
        last_index = -(-(pos + count - done) // ps)  # DIV_ROUND_UP(iocb->ki_pos + iter->count, PAGE_SIZE)
        ret = yield from _filemap_get_page(fs, index, last_index)
        if ret == AOP_TRUNCATED_PAGE:
            continue  # goto retry
        yield "isize = i_size_read(inode); if (unlikely(iocb->ki_pos >= isize)) goto put_pages"
        nr = _nr(fs, fs.i_size.get(), index, offset)
        if not nr:
            break
        n = min(nr, count - done)
        yield f"copy_page_to_iter(page {index}, {offset}, {n}, iter)"
        page = fs.page_cache.get(index)
        if page is None:
            # Truncated since it was looked up: the kernel's reference would
            # still show its last bytes, which the model does not keep (as
            # the seeds' read): look it up again.
            continue
        units.extend(page[u] for u in _units(fs, offset, offset + n))
        done += n
        pos += n
    if xfs:
        yield "xfs_iunlock(ip, XFS_IOLOCK_SHARED)"
        fs.i_mutex.unlock()
    return units, done


def _read_of_a_dax_file(opname, flavour, spec, releases):
    """A ``read(2)`` of a DAX file never reaches ``filemap_read`` in 5.15
    (``ext4_dax_read_iter``, ``xfs_file_dax_read``: ``dax_iomap_rw``), which
    this release of the library does not model."""
    picked = releases.get("do_generic_mapping_read")
    if opname == "buffered_read" and spec.dax and picked is not None and picked.release == RELEASE:
        return (f"buffered_read of a DAX file (file.dax: true) is not modelled at kernel {picked.release}: "
                f"its read(2) is dax_iomap_rw, not the page cache's filemap_read (see docs/kernels/filemap_read.md)")
    return None


REFUSALS.append(_read_of_a_dax_file)
