"""Soundness of the searches against an independent interpreter.

tests/randprog.py generates small programs built to break reductions
(conditional writes, compare-and-swap, branches on values read, waits, maps,
mutexes in either order, rwsems, assertions, an after-step invariant the
initial state may already break, a final-state invariant) and explores each
one itself, by brute force over its own states, sharing no code with
racecheck. Here every program is explored to the end, past violations, with
``none``, ``dpor`` and ``bfs``, and each must reach the same final states
(shared values, and whether the threads deadlocked) and violate the same
invariants as the interpreter; run as a user runs them (stopping at the
first violation) ``dpor`` and ``bfs`` must find a violation exactly when one
exists, and one that can come first. ``dpor`` must run every Mazurkiewicz
trace ``none`` runs, leaving aside probes (a step that touches nothing and
then finds a lock or a wait it cannot take is a step of its own, which reads
the request's objects: a trace without it reaches the same states, and dpor
may run that one only). How many traces dpor missed, probes included, is
printed (with -s) and recorded as a property.

Fixed regression cases follow: programs the generator (or a report) found
racecheck getting wrong, each compared the same way.

``python bench/bench_soundness.py`` runs the same comparison on thousands.
"""

import pickle
from collections import Counter

import pytest
import randprog
from randprog import program, step

SEED = "soundness"
COUNT = 500  # programs; 10 to 25 s for the three strategies together
RWSEM_COUNT = 150  # programs with an rwsem each

_cache = {}


def compared(strategies):
    """The comparisons of the fixed programs with ``strategies`` (computed once)."""
    if strategies not in _cache:
        _cache[strategies] = [randprog.compare(p, strategies) for p in randprog.programs(SEED, COUNT)]
    return _cache[strategies]


def failures(comparisons, keys):
    out = []
    for n, c in enumerate(comparisons):
        for key in keys:
            for kind, words in c.differences.get(key, ()):
                out.append(f"program {n} ({key}: {kind}): {words}\n{randprog.show(c.prog)}")
    return out


def verdict(bad, total):
    head = f"{len(bad)} disagreements over {total} programs"
    return head + ("; the first ones:\n\n" + "\n\n".join(bad[:5]) if bad else "")


# -- the interpreter on programs with known answers -----------------------------------


def finals(prog):
    return {(dict(values)["x"], dead) for values, dead in randprog.explore(prog).finals}


def test_interpreter_lost_update():
    load_store = (step([("read", 0, "x")]), step([("copy", "x", 0, 1)]))
    prog = program([load_store, load_store], final=(("x", None, 1),))
    assert finals(prog) == {(1, False), (2, False)}
    assert randprog.explore(prog).violations == {"final"}


def test_interpreter_abba_deadlocks():
    ab = (step([], ("lock", "a")), step([("unlock", "b"), ("unlock", "a")], ("lock", "b")))
    ba = (step([], ("lock", "b")), step([("unlock", "a"), ("unlock", "b")], ("lock", "a")))
    out = randprog.explore(program([ab, ba], mutexes=("a", "b")))
    assert out.violations == {"deadlock_free"}
    assert {dead for _, dead in out.finals} == {True, False}


def test_interpreter_wait_and_cas_in_one_step():
    # T1 waits for x == 1 and, in the same step, swaps it to 2.
    waiter = (step([("cas", "x", 1, 2, 0), ("check", 0, 0)], ("wait", "x", 1)),)
    prog = program([(step([("write", "x", 1)]),), waiter])
    assert finals(prog) == {(2, False)}
    assert randprog.explore(prog).violations == set()


def test_interpreter_merges_a_step_that_touches_nothing():
    # T0's label-only step goes on into the lock when it is free, and on
    # through what follows the lock (the whole thread is one step). While T1
    # holds the lock, the same step stops at the lock (a probe) and T0 takes
    # it in a step of its own later.
    t0 = (step([]), step([("write", "x", 1), ("unlock", "a")], ("lock", "a")))
    t1 = (step([], ("lock", "a")), step([("unlock", "a")]))
    prog = program([t0, t1], mutexes=("a",))
    it = randprog.Interpreter(prog)
    start = it.initial()
    (shared, threads), failed, probe = it.step(start, 0)
    assert threads[0] is None and shared[it.at["a"]] is None and shared[it.at["x"]] == 1
    assert not failed and not probe
    held, _, _ = it.step(start, 1)
    (shared, threads), _, probe = it.step(held, 0)
    assert probe and threads[0][0] == 1 and shared[it.at["a"]] == 1
    assert randprog.probes(prog, [1, 0, 1, 0]) == [False, True, False, False]
    assert randprog.explore(prog).states == 8
    assert randprog.explore(prog).violations == set()


def test_interpreter_initial_state_breaks_always():
    prog = program([(step([("write", "x", 1)]),)], always={"forbid": (("x", None, 0),), "watches": "all"})
    assert randprog.explore(prog).violations == {"always"}
    first = randprog.explore(prog, stop_on_violation=True)
    assert first.violations == {"always"} and first.finals == set()


def test_programs_are_reproducible_and_plain_data():
    a, b = randprog.programs(SEED, 50), randprog.programs(SEED, 50)
    assert a == b and pickle.loads(pickle.dumps(a)) == a
    assert randprog.nth(SEED, 49) == a[49]
    assert all(randprog.well_formed(p) for p in a)
    assert "T0:" in randprog.show(a[0])


# -- racecheck against the interpreter ----------------------------------------------------


def test_none_agrees_with_the_interpreter():
    comparisons = compared(("none",))
    bad = failures(comparisons, ["none"])
    assert not bad, verdict(bad, len(comparisons))


def test_dpor_agrees_with_the_interpreter_and_runs_every_trace(record_property):
    comparisons = compared(("none", "dpor"))
    totals = Counter()
    for c in comparisons:
        totals["traces"] += c.traces
        totals["dpor_missed"] += c.dpor_missed
        totals["dpor_missed_beyond_probes"] += c.dpor_missed_unprobed
        totals["dpor_extra"] += c.dpor_extra
        totals["dpor_blocked"] += c.dpor_blocked
        totals["dpor_executions"] += c.executions["dpor"]
        totals["none_executions"] += c.executions["none"]
    print("\n[soundness] " + ", ".join(f"{k}={v}" for k, v in totals.items()))
    for key, value in totals.items():
        record_property(key, value)
    bad = failures(comparisons, ["dpor"])
    bad += [f"program {n}: {words}\n{randprog.show(c.prog)}" for n, c in enumerate(comparisons)
            for kind, words in c.differences.get("dpor traces", ()) if kind == "traces missed"]
    assert not bad, verdict(bad, len(comparisons))


def test_bfs_agrees_with_the_interpreter():
    comparisons = compared(("bfs",))
    bad = failures(comparisons, ["bfs"])
    assert not bad, verdict(bad, len(comparisons))


def test_every_strategy_agrees_on_programs_with_an_rwsem():
    """An rwsem in every program (the fixed programs have one in 15 %):
    readers of different threads commute for dpor, so that is where a
    footprint too small would show, as final states or violations the
    interpreter finds and dpor or bfs do not, or as a trace of none's that
    dpor never runs."""
    comparisons = [randprog.compare(p) for p in randprog.programs("rwsem", RWSEM_COUNT, rwsems=1)]
    assert sum(bool(c.prog["rwsems"]) for c in comparisons) == RWSEM_COUNT
    bad = failures(comparisons, ["none", "dpor", "bfs"])
    bad += [f"program {n}: {words}\n{randprog.show(c.prog)}" for n, c in enumerate(comparisons)
            for kind, words in c.differences.get("dpor traces", ()) if kind == "traces missed"]
    assert not bad, verdict(bad, len(comparisons))


def test_work_units_that_hand_over_agree_on_programs_with_an_rwsem():
    """dpor's work units of --jobs, each handing part of its subtree over
    after every 2 executions (racecheck/handover.py), on programs of up to
    10 steps with an rwsem: the same final states and violations as the
    interpreter, and every trace of none's (probes aside)."""
    comparisons = [randprog.compare(p, ("none", "handover"))
                   for p in randprog.programs("rwsem-handover", 80, max_steps=10, rwsems=1)]
    bad = failures(comparisons, ["none", "handover", "handover traces"])
    assert not bad, verdict(bad, len(comparisons))
    assert sum(c.executions["handover"] for c in comparisons) >= sum(c.traces for c in comparisons)


# -- regression cases ---------------------------------------------------------------------

# seen0 and seen1 are shared: what T0 and T1 read. With the schedule T2 T1 T1
# T2 T0 T0, T1's compare-and-swap fails (x is 0) and reads only; dpor, taking
# its footprint from the order where it swapped, never reversed it with T2's
# increment.
CAS = program(
    vars=(("x", 0), ("y", 0), ("seen0", -1), ("seen1", -1)),
    threads=(
        (step([("read", 0, "x"), ("copy", "seen0", 0, 0)], ("label", "r0 = x")),
         step([("write", "x", 2)], ("label", "x = 2"))),
        (step([("cond", "x", 2, "x", 0)], ("label", "cas(x, 2, 0)")),
         step([("read", 0, "x"), ("copy", "seen1", 0, 0)], ("label", "s1 = x"))),
        (step([("write", "y", 1)], ("label", "y = 1")),
         step([("add", "x", 1)], ("label", "x += 1"))),
    ),
    final=(("x", None, 2), ("seen0", None, 1), ("seen1", None, 0)))


def initially_broken(swapped, watches):
    """x == 0 is forbidden and x starts at 0, but every thread's first step
    writes x: the violation is the initial state alone."""
    threads = [(step([("write", "x", 1)]), step([("write", "y", 1)])),
               (step([("write", "x", 2), ("write", "y", 2)]),)]
    if swapped:
        threads.reverse()
    return program(threads, vars=(("x", 0), ("y", 0)),
                   always={"forbid": (("x", None, 0),), "watches": watches})


# Found by the generator: the step that breaks the check also breaks the
# always invariant (y becomes 2), and no step follows.
CHECK_THEN_ALWAYS = program(
    vars=(("y", 0),),
    threads=((step([("copy", "y", 0, 1)]),),
             (step([("cond", "y", 1, "y", 2), ("check", 1, 0)]),)),
    always={"forbid": (("y", None, 2),), "watches": "exact"})

# Found by the generator: a thread that ends holding a lock. Before the
# pending requests of waiting threads were raced with, dpor never ran T2
# before T0 (T0 then waits forever: a deadlock with x == 1).
LOCK_KEPT = program(
    vars=(("x", 0),), mutexes=("b",),
    threads=((step([], ("lock", "b")),),
             (step([("add", "x", 1)]),),
             (step([("write", "x", 1)], ("lock", "b")),)))

# Found by the generator: T1 takes the lock and keeps it; only the order
# T1, T0 leaves x at 0 with T0 waiting, and dpor did not run it.
LOCK_KEPT_RACE = program(
    vars=(("x", 0),), mutexes=("a",),
    threads=((step([("copy", "x", 1, 0), ("unlock", "a")], ("lock", "a")),),
             (step([], ("lock", "a")),),
             (step([("write", "x", 1)]),)))

# Found by the generator: m[0] = 2 changes the map's key set only when the
# key is absent, so its footprint depends on whether T1's delete ran first,
# though it reads nothing. The order T3 T2 T1 T0 (T2 sees 2, then the delete
# empties the map before T0 lists it) was not run by dpor.
MAP_KEYS = program(
    vars=(("o0", -1), ("o2", -1)), maps=(("m", ((0, 1),)),),
    threads=((step([("mkeys", 0, "m"), ("copy", "o0", 0, 0)]),),
             (step([("mdel", "m", 0)]),),
             (step([("mget", 0, "m", 0), ("copy", "o2", 0, 0)]),),
             (step([("mset", "m", 0, 2)]),)))

# Found by the generator: T2's wait step swaps x only if T1 has not swapped
# it yet, and T0 disables T2 for good. dpor never ran T1, T2, T0 (T2's swap
# failing: x == 2, y == 0, and no deadlock).
CAS_AFTER_WAIT = program(
    vars=(("x", 0), ("y", 1)),
    threads=((step([("copy", "y", 0, 0)]),),
             (step([("cas", "x", 0, 2, 0)]),),
             (step([("cas", "x", 0, 1, 0)], ("wait", "y", 1)),)))

# Found by the generator: T0 takes the lock for good; the trace where T1
# gets it first and T2's conditional write then finds z == 1 was not run.
LOCK_THEN_COND = program(
    vars=(("z", 0),), mutexes=("a",),
    threads=((step([], ("lock", "a")),),
             (step([("write", "z", 1)], ("lock", "a")),),
             (step([("cond", "z", 0, "z", 1)]),)))

# Found by the generator (rwsem in every program): T1 looks for the write
# side after a step that touched nothing and finds T2 reading. That look must
# conflict with T2's down_read, though both only read the writer key: run
# first, T1 takes the lock. dpor never ran T2 before T0's delete.
READER_BLOCKS_A_LOOK = program(
    vars=(("o2", -1),), maps=(("m", ((0, 1),)),), rwsems=("s",),
    threads=((step([("mdel", "m", 1)]),),
             (step([]), step([], ("down_write", "s"))),
             (step([("mget", 0, "m", 1), ("copy", "o2", 0, 0)], ("down_read", "s")),)))

# Found by the generator (rwsem in every program): the reversal that puts
# T3's read before T2's swap was taken for started by a wakeup branch of
# T1's down_read (it commutes with the read), but a step that waits cannot
# stand for others: where T0 holds the lock it cannot run, and its branch,
# with what was inserted under it, was dropped. dpor never ran T0 T1 T3 T2
# T0 T1.
READER_KEPT = program(
    vars=(("x", 0), ("o1", 0)), rwsems=("s",),
    threads=((step([], ("down_write", "s")), step([("read", 1, "x"), ("up_write", "s")])),
             (step([("copy", "o1", 0, 0)]), step([], ("down_read", "s"))),
             (step([("cas", "x", 0, 1, 0)]),),
             (step([("read", 0, "x")]),)))

# Found by the generator: two readers commute, so each is in the rest of the
# other's race with the writer left waiting, and after either one the writer
# still cannot get in. dpor never ran T2 first (T0 and T1 then wait for good)
# until a reversal could leave out what keeps the second step waiting.
READERS_THEN_WRITER = program(
    rwsems=("s",),
    threads=((step([], ("down_read", "s")),),
             (step([], ("down_read", "s")),),
             (step([], ("down_write", "s")),)))

REGRESSIONS = {
    "readers_then_writer": READERS_THEN_WRITER,
    "reader_kept": READER_KEPT,
    "map_keys": MAP_KEYS,
    "cas_after_wait": CAS_AFTER_WAIT,
    "lock_then_cond": LOCK_THEN_COND,
    "lock_kept": LOCK_KEPT,
    "lock_kept_race": LOCK_KEPT_RACE,
    "cas_reversal": CAS,
    "initially_broken": initially_broken(False, "all"),
    "initially_broken_swapped": initially_broken(True, "all"),
    "initially_broken_exact": initially_broken(False, "exact"),
    "initially_broken_exact_swapped": initially_broken(True, "exact"),
    "check_then_always": CHECK_THEN_ALWAYS,
    "reader_blocks_a_look": READER_BLOCKS_A_LOOK,
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regression(name):
    prog = REGRESSIONS[name]
    c = randprog.compare(prog)
    assert c.expected.violations or len(c.expected.finals) > 1, "the case must show something"
    bad = [f"{key}: {words}" for key, diffs in c.differences.items() for kind, words in diffs
           if kind != "traces missed (probes only)"]
    assert not bad, randprog.show(prog) + "\n" + "\n".join(bad)
