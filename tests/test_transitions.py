"""The transition cache of bfs (racecheck/transitions.py).

bfs with the cache reaches exactly the states, final states and violations
(with counterexamples as short) that it reaches running every step, on every
corpus scenario it can check; every successor the cache gives is the state a
live execution reaches (``verify``); a model that breaks the rule the cache
rests on (a read that bypasses the runtime) is caught by ``verify``; a
violation the cache reports is run again, and its message is the live one.
"""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from racecheck.fingerprint import FingerprintError
from racecheck.invariants import Always
from racecheck.model import Program
from racecheck.scenario import load
from racecheck.scheduler import replay
from racecheck.strategies import BreadthFirst

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"ext4_dax_fault_deadlock", "ext4_dax_fault_deadlock_fixed"}  # seconds each, uncached


def checkable(heavy=False):
    out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load(path)
        if getattr(sc, "space", None) is not None or any(i.across for i in sc.model.invariants):
            continue
        if sc.name in HEAVY and not heavy:
            continue
        out.append(path.name)
    return out


def search(sc, **options):
    finals = set()

    def final(ex, violation):
        finals.add((tuple(sorted(ex.rt.snapshot().items())), violation and violation.invariant))

    bfs = BreadthFirst(sc.model, sc.bounds, stop_on_violation=False, on_final=final, **options)
    out = bfs.run()
    return bfs, out, finals


@pytest.mark.parametrize("name", checkable())
def test_the_cache_changes_nothing_but_the_work(name):
    sc = load(ROOT / "scenarios" / name)
    cached, out, finals = search(sc)
    ran, every, their_finals = search(sc, cache=False)
    assert out.verdict == every.verdict and out.verdict in ("clean", "violation")
    for key in ("distinct_states", "states_generated", "max_depth", "queue"):
        assert getattr(out.stats, key) == getattr(every.stats, key), key
    assert finals == their_finals
    assert {i: len(c.schedule) for i, c in cached.violations.items()} == \
        {i: len(c.schedule) for i, c in ran.violations.items()}
    assert every.stats.cached_steps == 0
    assert out.stats.steps <= every.stats.steps
    if out.stats.distinct_states > 100:  # the cache does the work there
        assert out.stats.cached_steps > out.stats.states_generated // 2


def test_the_cache_saves_most_steps_on_the_largest_corpus_model():
    sc = load(ROOT / "scenarios" / "ext4_dax_fault_deadlock.yaml")
    out = BreadthFirst(sc.model, sc.bounds, stop_on_violation=False).run()
    assert out.stats.distinct_states == 9034 and out.stats.states_generated == 16828
    assert out.stats.cached_steps > 0.95 * out.stats.states_generated


@pytest.mark.parametrize("name", ["hole_page_vs_write_fault.yaml", "buffered_short_copy_crash.yaml",
                                  "unaligned_dio_zeroing_tracking.yaml", "xip_file_fault_retry.yaml",
                                  "cow_fault_vs_truncate.yaml", "mapwrite_unwritten_extent.yaml",
                                  "fault_alloc_stale_crash.yaml", "xip_io_new_block_edges.yaml"])
def test_every_cached_successor_is_the_live_state(name):
    sc = load(ROOT / "scenarios" / name)
    out = BreadthFirst(sc.model, sc.bounds, stop_on_violation=False, verify=True).run()
    assert out.verdict in ("clean", "violation")
    assert out.stats.cached_steps > 0


def ghost_reader():
    """Thread R branches on a ghost map, which models may only write: the
    read is not recorded, so the cache cannot know R's step depends on it."""

    def init(rt):
        return SimpleNamespace(v=rt.var("v", 0), ghost=rt.ghost_map("ghost"))

    def reader(st):
        yield "start"
        while True:  # comes back to "look" with v == 0, the ghost marked or not
            yield "look"
            st.v.set(1 if st.ghost.get("k") else 2)
            yield "reset"
            st.v.set(0)

    def marker(st):
        yield "mark"
        st.ghost["k"] = 1

    return Program("ghost_reader", init, [("R", reader), ("M", marker)])


def test_verify_catches_a_model_that_reads_what_the_runtime_does_not_record():
    model = ghost_reader()
    with pytest.raises(AssertionError, match="transition cache"):
        BreadthFirst(model, stop_on_violation=False, verify=True).run()


def test_a_cached_violation_is_reported_with_the_live_message():
    sc = load(ROOT / "scenarios" / "buffered_short_copy_crash.yaml")
    bfs = BreadthFirst(sc.model, sc.bounds, stop_on_violation=False)
    bfs.run()
    assert bfs.violations
    for invariant, cex in bfs.violations.items():
        live = replay(sc.model, cex.schedule).violation
        assert (live.invariant, live.message) == (invariant, cex.message)


def test_a_check_that_fails_only_in_states_reached_through_the_cache():
    # Three writers of x; "x == 3" is reached only after steps that were
    # learned in other orders. The check runs on states the cache computed.
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def adder(st):
        yield "x += 1"
        st.x.set(st.x.get() + 1)

    model = Program("adders", init, [(f"A{i}", adder) for i in range(3)],
                    [Always("below_three", lambda st: st.x.value < 3, "x reached 3")])
    bfs = BreadthFirst(model, stop_on_violation=False)
    out = bfs.run()
    assert out.verdict == "violation" and len(bfs.violations["below_three"].schedule) == 3


def test_a_step_that_creates_a_runtime_object_is_refused_by_name():
    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0))

    def maker(st):
        yield "make"
        st.x.set(1)
        st.rt.var("late", 0)

    with pytest.raises(FingerprintError, match="thread M: a step created a runtime object"):
        BreadthFirst(Program("late", init, [("M", maker)])).run()


def bench_states():
    spec = importlib.util.spec_from_file_location("bench_states", ROOT / "bench" / "bench_states.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_filter_lock_for_three_threads_has_the_same_states_with_and_without_the_cache():
    # Its threads sit in for loops over ranges, whose iterators are
    # fingerprinted through __reduce__ (a new range object each time): a
    # fingerprint that remembered values by id alone once told these states
    # apart at random (3,777 instead of 3,611).
    filter_lock = bench_states().filter_lock
    for cache in (True, False):
        out = BreadthFirst(filter_lock(3), stop_on_violation=False, cache=cache).run()
        assert out.verdict == "clean"
        assert (out.stats.distinct_states, out.stats.states_generated) == (3611, 10833)
