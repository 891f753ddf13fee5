"""The programs of bench/bench_peers.py as frontrun explores them: plain
Python threads over shared objects (frontrun instruments their bytecode and
makes ``threading.Lock`` cooperative). They follow bench/programs.py
(lastzero) and the Promela models beside this file (fault_vs_truncate and
unaligned_dio_zeroing, reduced to their locking); see those for what each
leaves out. frontrun checks its invariant once, when every thread has ended.

Run under frontrun's launcher, which its ``explore`` requires::

    python -m frontrun.cli python bench/peers/frontrun_models.py lastzero 3 [--budget 60]

It prints one JSON object: executions, seconds (the exploration alone),
holds (true, false, or null when frontrun could not decide) and why.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

# -- lastzero(N) --------------------------------------------------------------------------------


class LastZero:
    def __init__(self, n):
        self.array = [0] * (n + 1)
        self.zero = None


def lastzero(n):
    def scanner(st):
        i = n
        while st.array[i] != 0:
            i -= 1
        st.zero = i

    def writer(j):
        def write(st):
            st.array[j] = st.array[j - 1] + 1
        return write

    def holds(st):  # true of every execution: the scanner stopped, no cell is above its index
        return st.zero is not None and all(st.array[j] <= j for j in range(n + 1))

    return (lambda: LastZero(n)), [scanner] + [writer(j) for j in range(1, n + 1)], holds


# -- fault_vs_truncate --------------------------------------------------------------------------


class FaultVsTruncate:
    def __init__(self, fixed):
        self.fixed = fixed
        self.i_size_pages = 2
        self.owned = True  # the file still owns page 1's block
        self.pte = False  # the mapping maps page 1
        self.i_mmap_mutex = threading.Lock()


def fault_vs_truncate(fixed):
    def fault(st, pgoff=1):
        if pgoff >= st.i_size_pages:
            return  # SIGBUS
        if not st.owned:
            return  # get_xip_mem found a hole: the sparse path, left out
        if st.fixed:  # seed 002 patch 01: recheck i_size under i_mmap_mutex
            with st.i_mmap_mutex:
                if pgoff < st.i_size_pages:
                    st.pte = True
        else:
            st.pte = True  # vm_insert_mixed

    def truncate(st):
        st.i_size_pages = 0
        with st.i_mmap_mutex:  # unmap_mapping_range
            st.pte = False
        st.owned = False  # the block is freed

    return (lambda: FaultVsTruncate(fixed)), [fault, truncate], lambda st: not st.pte or st.owned


# -- unaligned_dio_zeroing ----------------------------------------------------------------------

HOLE, UNWRITTEN, WRITTEN = 0, 1, 2
ZERO = 1  # a unit: 0 stale, 1 zero, 2 + w the data of writer w


class UnalignedDio:
    def __init__(self, fixed):
        self.fixed = fixed
        self.unit = [0] * 8
        self.extent = HOLE
        self.i_mutex = threading.Lock()
        self.aio_mutex = threading.Lock()  # ext4_aio_mutex(inode), the fix
        # Held by the AIO whose unwritten extent is not converted yet, so that
        # ext4_aiodio_wait is a lock taken and let go (frontrun schedules
        # locks, not condition variables).
        self.unconverted = threading.Lock()
        self.acked = [False, False]


def unaligned_dio_zeroing(fixed):
    def aio(w, first, last):
        def write(st):
            if st.fixed:
                st.aio_mutex.acquire()
                with st.unconverted:  # ext4_aiodio_wait
                    pass
            with st.i_mutex:
                new = st.extent != WRITTEN  # ext4_map_blocks: a hole or unwritten block is buffer_new
                if st.extent == HOLE:
                    st.extent = UNWRITTEN
                if new and st.fixed:
                    st.unconverted.acquire()
            if st.fixed:
                st.aio_mutex.release()
            for u in range(8):  # the bio lands: data, and zeroes around it on a new block
                if first <= u <= last:
                    st.unit[u] = 2 + w
                elif new:
                    st.unit[u] = ZERO
            with st.i_mutex:  # the completion: convert, acknowledge
                st.extent = WRITTEN
                if new and st.fixed:
                    st.unconverted.release()
                st.acked[w] = True
        return write

    def holds(st):  # no acknowledged write lost its data
        return all(not st.acked[w] or all(st.unit[u] == 2 + w for u in units)
                   for w, units in ((0, range(0, 3)), (1, range(5, 8))))

    return (lambda: UnalignedDio(fixed)), [aio(0, 0, 2), aio(1, 5, 7)], holds


PROGRAMS = {
    "lastzero": lambda arg: lastzero(int(arg)),
    "fault_vs_truncate": lambda arg: fault_vs_truncate(arg == "fixed"),
    "unaligned_dio_zeroing": lambda arg: unaligned_dio_zeroing(arg == "fixed"),
}


def main():
    import frontrun

    parser = argparse.ArgumentParser()
    parser.add_argument("program", choices=sorted(PROGRAMS))
    parser.add_argument("arg", help="N for lastzero; 'fixed' or 'buggy' for the others")
    parser.add_argument("--budget", type=float, default=60.0, help="frontrun's total_timeout, seconds")
    opts = parser.parse_args()
    setup, workers, holds = PROGRAMS[opts.program](opts.arg)
    start = time.perf_counter()
    # Every interleaving (no preemption bound), stopping at the first failure
    # as racecheck and SPIN do; no replays of the failure.
    result = frontrun.explore(setup=setup, workers=workers, invariant=holds, preemption_bound=None,
                              detect_io=False, reproduce_on_failure=0, total_timeout=opts.budget)
    seconds = time.perf_counter() - start
    print(json.dumps({"executions": result.num_explored, "seconds": seconds, "holds": result.property_holds,
                      "why": result.inconclusive_reason}))


if __name__ == "__main__":
    main()
