"""The classic benchmark programs of the DPOR literature, as racecheck models.

Each ``make`` function takes the size parameter N and returns a
:class:`racecheck.model.Program`. The granularity is the classic one: one
shared access per step (a ``yield`` before each read, write, lock or unlock of
shared state), with compare-and-swap as the one exception (a single atomic
step, as in the papers).

Values a thread computes and keeps for itself (the index lastzero's scanner
stops at, the value a reader saw) are stored in ``state.local``, a dict of
per-thread result variables made before any step. Only the owning thread
writes its variable and no thread reads any, so they add no conflict; they
exist so that tests can compare final states (shared state plus what each
thread saw) between reductions.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from racecheck.model import Program

# ---------------------------------------------------------------------------
# lastzero(N)
#
# Source: P. A. Abdulla, S. Aronis, B. Jonsson, K. Sagonas, "Optimal Dynamic
# Partial Order Reduction", POPL 2014 (the "lastzero" benchmark):
#
#     int array[N+1];                       /* all zero */
#     thread 0:   for (i = N; array[i] != 0; i--) ;
#     thread j:   array[j] = array[j-1] + 1;        /* j = 1..N */
#
# Thread 0 scans the array from the end for the last zero while N writers each
# read their left neighbour and store it plus one. Each writer is two steps
# (a read of array[j-1], a write of array[j]); the scanner reads one element per
# step until it sees a zero (array[0] is never written, so it always stops).
# The writers' read-write chains and the scanner's reads make many races whose
# reversals lead to sleep-set-blocked explorations in source-DPOR (the paper's
# example of where optimal DPOR's wakeup trees pay off). N+1 threads. The trace
# counts are 5, 12, 28 for N = 2, 3, 4 (exhaustive search); dpor's counts up to
# N = 11 fit (N+3)*2^(N-2).
# ---------------------------------------------------------------------------


def _lastzero_scanner(n, st):
    i = n
    while True:
        yield "read array[i]"
        if st.array.get(i) == 0:
            break
        i -= 1
    st.local["zero"].set(i)


def _lastzero_writer(j, st):
    yield "read array[j-1]"
    a = st.array.get(j - 1)
    yield "write array[j]"
    st.array.set(j, a + 1)


def lastzero(n):
    def init(rt):
        return SimpleNamespace(array=rt.array("array", [0] * (n + 1)),
                               local={"zero": rt.var("zero", None)})

    threads = [("thread0", functools.partial(_lastzero_scanner, n))]
    threads += [(f"thread{j}", functools.partial(_lastzero_writer, j))
                for j in range(1, n + 1)]
    return Program(f"lastzero({n})", init, threads)


# ---------------------------------------------------------------------------
# readers(N)
#
# Source: Abdulla, Aronis, Jonsson, Sagonas, POPL 2014 (the writer and
# readers example, p: x := 5; q: y := x; r: z := x, generalised to N readers):
#
#     writer:     x = 42;
#     reader i:   y_i = x;                  /* i = 1..N */
#
# One writer writes x once; N readers each read x once. The reads commute
# with each other and each conflicts with the write, so each reader reads
# either before or after the write: 2^N Mazurkiewicz traces. It is the paper's
# example of a program where a source set (writer and one reader) is smaller
# than any persistent set (every thread) at the first choice. N+1 threads.
# ---------------------------------------------------------------------------


def _readers_writer(st):
    yield "write x"
    st.x.set(42)


def _readers_reader(i, st):
    yield "read x"
    st.local[i].set(st.x.get())


def readers(n):
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0),
                               local={i: rt.var(f"seen{i}", None) for i in range(1, n + 1)})

    threads = [("writer", _readers_writer)]
    threads += [(f"reader{i}", functools.partial(_readers_reader, i))
                for i in range(1, n + 1)]
    return Program(f"readers({n})", init, threads)


# ---------------------------------------------------------------------------
# indexer(N)
#
# Source: C. Flanagan, P. Godefroid, "Dynamic Partial-Order Reduction for
# Model Checking Software", POPL 2005 (the "indexer" example):
#
#     const int size = 128, max = 4;
#     int table[size];                              /* all zero */
#     thread_routine() {
#       int m = 0, w, h;
#       while (true) {
#         w = getmsg();                 /* if (m < max) return (++m)*11 + tid;
#                                          else stop this thread */
#         h = hash(w);                  /* (w * 7) % size */
#         while (cas(table[h], 0, w) == false)
#           h = (h + 1) % size;
#       }
#     }
#
# N threads (tid = 0..N-1) each insert 4 messages into a shared hash table
# with open addressing, claiming an empty slot with compare-and-swap. The CAS
# is one step: it reads table[h] and, when it holds 0, writes w (a failed CAS
# is a read only). Message w = 11*m + tid for m = 1..4, so two threads insert
# the same message, and collide on its slot, only when their tids differ by
# 11: below 12 threads every access is to a distinct slot and there is one
# Mazurkiewicz trace; each further thread adds three colliding messages, each
# won by either thread, and the loser's next slot is free: 8^(N-11) traces for
# 12 <= N <= 22 (8, 64, 512, 4096 for N = 12..15). (Note: the getmsg formula
# is the paper's, (++m)*11 + tid, not 4*tid + m: the latter gives every message
# its own slot, since 7 is invertible mod 128, and never collides.)
# ---------------------------------------------------------------------------

INDEXER_SIZE = 128
INDEXER_MAX = 4


def _indexer_thread(tid, st):
    table = st.table
    for m in range(1, INDEXER_MAX + 1):
        w = m * 11 + tid  # getmsg()
        h = (w * 7) % INDEXER_SIZE  # hash(w)
        while True:
            yield "cas(table[h], 0, w)"
            if table.get(h) == 0:
                table.set(h, w)
                break
            h = (h + 1) % INDEXER_SIZE


def indexer(n):
    def init(rt):
        return SimpleNamespace(table=rt.array("table", [0] * INDEXER_SIZE))

    threads = [(f"thread{tid}", functools.partial(_indexer_thread, tid)) for tid in range(n)]
    return Program(f"indexer({n})", init, threads)


# ---------------------------------------------------------------------------
# filesystem(N)
#
# Source: Flanagan, Godefroid, POPL 2005 (the "file system" example):
#
#     const int NUMBLOCKS = 26, NUMINODE = 32;
#     lock_t locki[NUMINODE]; int inode[NUMINODE];      /* inode[] all zero */
#     lock_t lockb[NUMBLOCKS]; bool busy[NUMBLOCKS];    /* busy[] all false */
#     thread_routine() {
#       int i = tid % NUMINODE;
#       acquire(locki[i]);
#       if (inode[i] == 0) {
#         int b = (i*2) % NUMBLOCKS;
#         while (true) {
#           acquire(lockb[b]);
#           if (!busy[b]) {
#             busy[b] = true; inode[i] = b+1;
#             release(lockb[b]);
#             break;
#           }
#           release(lockb[b]);
#           b = (b+1) % NUMBLOCKS;
#         }
#       }
#       release(locki[i]);
#     }
#
# N threads (tid = 0..N-1) each allocate a block to an inode, under a lock per
# inode and a lock per block. Thread tid starts at block 2*tid mod 26, so
# below 14 threads all threads touch disjoint locks and data (one trace);
# thread 13 first shares block 0 with thread 0, and each further thread adds
# one more such pair, whose loser moves on to a free odd block: 2^(N-13)
# traces for 14 <= N <= 26. Every lock, unlock, read and write is its own step.
# ---------------------------------------------------------------------------

NUMBLOCKS = 26
NUMINODE = 32


def _filesystem_thread(tid, st):
    i = tid % NUMINODE
    yield st.locki[i].lock()
    yield "read inode[i]"
    if st.inode.get(i) == 0:
        b = (i * 2) % NUMBLOCKS
        while True:
            yield st.lockb[b].lock()
            yield "read busy[b]"
            if not st.busy.get(b):
                yield "write busy[b]"
                st.busy.set(b, True)
                yield "write inode[i]"
                st.inode.set(i, b + 1)
                yield "release lockb[b]"
                st.lockb[b].unlock()
                break
            yield "release lockb[b]"
            st.lockb[b].unlock()
            b = (b + 1) % NUMBLOCKS
    yield "release locki[i]"
    st.locki[i].unlock()


def filesystem(n):
    def init(rt):
        return SimpleNamespace(
            locki=[rt.mutex(f"locki[{k}]") for k in range(NUMINODE)],
            inode=rt.array("inode", [0] * NUMINODE),
            lockb=[rt.mutex(f"lockb[{k}]") for k in range(NUMBLOCKS)],
            busy=rt.array("busy", [False] * NUMBLOCKS),
        )

    threads = [(f"thread{tid}", functools.partial(_filesystem_thread, tid)) for tid in range(n)]
    return Program(f"filesystem({n})", init, threads)


# ---------------------------------------------------------------------------
# philosophers(N) and philosophers_ordered(N)
#
# Source: E. W. Dijkstra, "Hierarchical Ordering of Sequential Processes",
# Acta Informatica 1(2), 1971 (the dining philosophers, posed in 1965): the
# standard example of a deadlock.
#
#     mutex fork[N];
#     philosopher i:  lock(fork[first]); lock(fork[second]);
#                     unlock(fork[second]); unlock(fork[first]);
#
# In philosophers(N), philosopher i takes fork i (left) then fork (i+1)%N
# (right): when every philosopher holds its left fork, all wait forever, so
# the program deadlocks (exactly one deadlocking trace for N >= 2). In
# philosophers_ordered(N), each philosopher takes the lower-numbered of its two
# forks first (Dijkstra's resource ordering), which makes a cycle of waits
# impossible: no deadlock. Each lock and unlock is its own step. A complete
# trace is fixed by which of its two philosophers uses each fork first, and
# every choice but the two cyclic ones happens: 2^N - 2 complete traces, plus
# the deadlock in philosophers(N) (2^N - 1 traces).
# ---------------------------------------------------------------------------


def _philosopher(first, second, st):
    yield st.fork[first].lock()
    yield st.fork[second].lock()
    yield "put down second fork"
    st.fork[second].unlock()
    yield "put down first fork"
    st.fork[first].unlock()


def _philosophers(n, ordered):
    def init(rt):
        return SimpleNamespace(fork=[rt.mutex(f"fork[{k}]") for k in range(n)])

    threads = []
    for i in range(n):
        left, right = i, (i + 1) % n
        first, second = (min(left, right), max(left, right)) if ordered else (left, right)
        threads.append((f"philosopher{i}", functools.partial(_philosopher, first, second)))
    name = "philosophers_ordered" if ordered else "philosophers"
    return Program(f"{name}({n})", init, threads)


def philosophers(n):
    return _philosophers(n, ordered=False)


def philosophers_ordered(n):
    return _philosophers(n, ordered=True)


PROGRAMS = {
    "lastzero": lastzero,
    "readers": readers,
    "indexer": indexer,
    "filesystem": filesystem,
    "philosophers": philosophers,
    "philosophers_ordered": philosophers_ordered,
}


def final_state(execution, violation=None):
    """A hashable summary of how an execution ended: every shared object's
    value, the threads' private results, and the invariant that broke (e.g.
    ``deadlock_free``) if any."""
    snap = execution.rt.snapshot()
    local = getattr(execution.state, "local", {})
    return (tuple(sorted(snap.items(), key=repr)),
            tuple(sorted(((k, v.value) for k, v in local.items()), key=repr)),
            violation.invariant if violation is not None else None)
