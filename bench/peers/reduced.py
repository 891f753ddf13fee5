"""fault_vs_truncate and unaligned_dio_zeroing reduced to their locking, as
racecheck models: the programs that bench/peers/*.pml and frontrun_models.py
give SPIN and frontrun, so that the three tools count executions of one
program (the scenario files run racecheck's full kernel models). See the .pml
files for what each leaves out. One shared access per step, as there; the
invariants are checked after every step (SPIN's monitors check every state;
frontrun checks the end of each execution).
"""

from __future__ import annotations

from types import SimpleNamespace

from racecheck import Always, Program, wait_until

# -- fault_vs_truncate --------------------------------------------------------------------------

PGOFF = 1


def _fault(fixed, st):
    yield "size = i_size_read(inode)"
    if PGOFF >= st.i_size_pages.get():
        return  # SIGBUS
    yield "get_xip_mem"
    if not st.owned.get():
        return  # a hole now: the sparse path, left out
    if fixed:  # seed 002 patch 01: recheck i_size under i_mmap_mutex
        yield st.i_mmap_mutex.lock()
        if PGOFF >= st.i_size_pages.get():
            st.i_mmap_mutex.unlock()
            return
    yield "vm_insert_mixed"
    st.pte.set(True)
    if fixed:
        st.i_mmap_mutex.unlock()


def _truncate(st):
    yield "i_size_write(inode, 0)"
    st.i_size_pages.set(0)
    yield st.i_mmap_mutex.lock()  # unmap_mapping_range
    yield "zap the PTE"
    st.pte.set(False)
    st.i_mmap_mutex.unlock()
    yield "free the block"
    st.owned.set(False)


def fault_vs_truncate(fixed=False):
    def init(rt):
        return SimpleNamespace(i_size_pages=rt.var("i_size_pages", 2), owned=rt.var("owned", True),
                               pte=rt.var("pte", False), i_mmap_mutex=rt.mutex("i_mmap_mutex"))

    holds = Always("no_freed_block_mapped", lambda st: not st.pte.value or st.owned.value,
                   "the PTE maps a block the file no longer owns")
    return Program("fault_vs_truncate (reduced)" + (" fixed" if fixed else ""), init,
                   [("fault", lambda st: _fault(fixed, st)), ("truncate", _truncate)], [holds])


# -- unaligned_dio_zeroing ----------------------------------------------------------------------

HOLE, UNWRITTEN, WRITTEN = 0, 1, 2
ZERO = 1  # a unit: 0 stale, 1 zero, 2 + w the data of writer w
WRITES = ((0, 0, 2), (1, 5, 7))  # writer, first unit, last unit


def _aio(fixed, w, first, last, st):
    if fixed:  # ext4_serialize_unaligned_aio
        yield st.aio_mutex.lock()
        yield wait_until(st.rt, lambda: st.unconverted.get() == 0, "ext4_aiodio_wait")
    yield st.i_mutex.lock()
    yield "ext4_map_blocks(IO_CREATE_EXT)"
    new = st.extent.get() != WRITTEN  # a hole or an unwritten block is buffer_new
    if st.extent.get() == HOLE:
        st.extent.set(UNWRITTEN)
    if new:
        st.unconverted.set(st.unconverted.get() + 1)
    yield "submit the bio; mutex_unlock(i_mutex)"
    st.i_mutex.unlock()
    if fixed:
        st.aio_mutex.unlock()
    yield "dio_bio_end_aio: the bio lands"
    for u in range(8):  # its data, and zeroes around it on a new block (dio_zero_block)
        if first <= u <= last:
            st.unit.set(u, 2 + w)
        elif new:
            st.unit.set(u, ZERO)
    yield st.i_mutex.lock()  # ext4_end_io_work
    yield "ext4_map_blocks(IO_CONVERT_EXT)"
    st.extent.set(WRITTEN)
    if new:
        st.unconverted.set(st.unconverted.get() - 1)
    yield "aio_complete; mutex_unlock(i_mutex)"
    st.acked.set(w, True)
    st.i_mutex.unlock()


def _no_zero_overwrite(st):
    return all(not st.acked.values[w] or all(st.unit.values[u] == 2 + w for u in range(first, last + 1))
               for w, first, last in WRITES)


def unaligned_dio_zeroing(fixed=False):
    def init(rt):
        return SimpleNamespace(rt=rt, unit=rt.array("unit", [0] * 8), extent=rt.var("extent", HOLE),
                               i_mutex=rt.mutex("i_mutex"), aio_mutex=rt.mutex("aio_mutex"),
                               unconverted=rt.var("unconverted", 0), acked=rt.array("acked", [False, False]))

    holds = Always("no_zero_overwrite", _no_zero_overwrite, "an acknowledged write's data was zeroed")
    threads = [(f"aio{w + 1}", lambda st, w=w, first=first, last=last: _aio(fixed, w, first, last, st))
               for w, first, last in WRITES]
    return Program("unaligned_dio_zeroing (reduced)" + (" fixed" if fixed else ""), init, threads, [holds])
