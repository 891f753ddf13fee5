"""lock_order: the lock-class graph over every explored execution, its cycles,
and why dpor finds the same graph as exhaustive search."""

from pathlib import Path
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from programs import abba

from racecheck.lockorder import LockOrder, explore_lock_graph, lock_class, to_dot
from racecheck.model import Program
from racecheck.runtime import wait_until
from racecheck.scheduler import Explorer, explore


def locks(*names, extra=None):
    def init(rt):
        st_ = SimpleNamespace(rt=rt, **{n: rt.mutex(n) for n in names})
        for k, v in (extra or {}).items():
            setattr(st_, k, rt.var(k, v))
        return st_
    return init


def nested(*order, gate=None):
    """A thread taking the locks of ``order`` nested (under ``gate`` if given)."""
    def body(st):
        taken = ([gate] if gate else []) + list(order)
        for name in taken:
            yield getattr(st, name).lock()
        yield "unlock all"
        for name in reversed(taken):
            getattr(st, name).unlock()
    return body


def with_lock_order(program):
    """The same program, checked for lock_order."""
    return Program(program.name, program._init, program._threads, [LockOrder()])


def test_abba_inversion_found_though_no_execution_deadlocks():
    # Both threads take the gate g first, so they never interleave inside it:
    # no execution can deadlock. a -> b and b -> a is still an inversion.
    prog = Program("gated abba", locks("g", "a", "b"),
                   [("AB", nested("a", "b", gate="g")), ("BA", nested("b", "a", gate="g"))])
    for reduction in ("dpor", "none"):
        plain = explore(prog, reduction)
        assert plain.verdict == "clean", reduction  # no deadlock in any execution
        out = explore(with_lock_order(prog), reduction)
        assert out.verdict == "violation" and out.violation.invariant == "lock_order", reduction
        msg = out.violation.message
        assert msg.splitlines()[0] in ("possible circular locking dependency: a -> b -> a",
                                       "possible circular locking dependency: b -> a -> b")
        assert "AB took b" in msg and "holding a" in msg
        assert "BA took a" in msg and "holding b" in msg


def test_consistent_order_is_not_flagged():
    # a before b before c everywhere, also with a skipped: no cycle.
    prog = Program("ordered", locks("a", "b", "c"),
                   [("T0", nested("a", "b", "c")), ("T1", nested("a", "c")), ("T2", nested("b", "c"))])
    for reduction in ("dpor", "none"):
        order, out = explore_lock_graph(prog, reduction)
        assert out.verdict == "clean", reduction
        assert set(order.graph.edges) == {("a", "b"), ("b", "c"), ("a", "c")}
        assert order.cycles() == []
        assert explore(with_lock_order(prog), reduction).verdict == "clean"


def test_plain_abba_is_a_cycle_and_a_deadlock():
    order, out = explore_lock_graph(abba())
    assert order.cycles() == [["a", "b"]]
    assert out.verdict == "violation" and out.violation.invariant in ("lock_order", "deadlock_free")


def claimer(me, first, second):
    """Takes ``first`` then ``second`` only if it wins the claim on ``owner``."""
    def body(st):
        yield st.c.lock()
        won = st.owner.get() == 0
        if won:
            st.owner.set(me)
        yield "unlock c"
        st.c.unlock()
        if won:
            yield from nested(first, second)(st)
    return body


def test_inversion_split_over_two_executions_is_found_across_them():
    # One thread wins the claim and takes its two locks; the loser takes
    # none. No single execution holds both orders: only the graph gathered
    # across executions shows the cycle.
    prog = Program("claim", locks("c", "a", "b", extra={"owner": 0}),
                   [("T1", claimer(1, "a", "b")), ("T2", claimer(2, "b", "a"))])
    for reduction in ("dpor", "none"):
        out = explore(with_lock_order(prog), reduction)
        assert out.verdict == "violation", reduction
        assert out.stats.executions >= 2  # no single execution closes it
        assert "in another execution, schedule" in out.violation.message


def test_waits_are_edges_to_the_lock_class_they_wait_for():
    # T0 holds i_mutex and waits until the I/O count drains; T1 "holds" the
    # count (lockdep's lock_map_acquire) and then takes i_mutex.
    def init(rt):
        return SimpleNamespace(rt=rt, i_mutex=rt.mutex("i_mutex"), count=rt.var("i_dio_count", 0))

    def truncate(st):
        yield st.i_mutex.lock()
        yield wait_until(st.rt, lambda: st.count.get() == 0, "inode_dio_wait(inode)", lock="i_dio_count")
        st.i_mutex.unlock()

    def dio(st):
        yield "inode_dio_begin"
        st.count.set(st.count.get() + 1)
        st.rt.lock_map_acquire("i_dio_count", "inode_dio_begin")
        yield st.i_mutex.lock()
        yield "unlock; inode_dio_end"
        st.i_mutex.unlock()
        st.count.set(st.count.get() - 1)
        st.rt.lock_map_release("i_dio_count")

    order, _ = explore_lock_graph(Program("dio wait", init, [("truncate", truncate), ("dio", dio)]))
    assert set(order.graph.edges) == {("i_mutex", "i_dio_count"), ("i_dio_count", "i_mutex")}
    w = order.graph.edges["i_mutex", "i_dio_count"]["witness"]
    assert w["wait"] and w["label"] == "inode_dio_wait(inode)" and w["thread"] == "truncate"


def test_indexed_locks_are_one_class_and_nesting_within_a_class_is_no_edge():
    assert lock_class("page_lock[3]") == "page_lock"

    def init(rt):
        return SimpleNamespace(pages=[rt.mutex(f"page_lock[{i}]") for i in range(2)], m=rt.mutex("i_mmap_mutex"))

    def body(st):
        yield st.pages[0].lock()
        yield st.pages[1].lock()
        yield st.m.lock()
        yield "unlock"
        st.m.unlock()
        st.pages[1].unlock()
        st.pages[0].unlock()

    order, _ = explore_lock_graph(Program("pages", init, [("t", body)]))
    assert set(order.graph.edges) == {("page_lock", "i_mmap_mutex")}
    assert "page_lock" in to_dot(order.graph, order.cycles())


# -- dpor and none find the same graph ----------------------------------------------

LOCKS = ("a", "b", "c")


@st.composite
def lock_programs(draw):
    """2-3 threads; each a few blocks: write x, or (if x == k) take 1-3 locks
    nested. Whether a block takes its locks depends on the interleaving."""
    threads = []
    for _ in range(draw(st.integers(2, 3))):
        blocks = []
        for _ in range(draw(st.integers(1, 2))):
            if draw(st.booleans()):
                blocks.append(("write", draw(st.integers(0, 2))))
            else:
                guard = draw(st.one_of(st.none(), st.integers(0, 2)))
                order = draw(st.permutations(LOCKS))[:draw(st.integers(1, 3))]
                blocks.append(("locks", guard, tuple(order)))
        threads.append(tuple(blocks))
    return tuple(threads)


def build(spec):
    def body(blocks):
        def run(st):
            for block in blocks:
                if block[0] == "write":
                    yield f"x = {block[1]}"
                    st.x.set(block[1])
                    continue
                _, guard, order = block
                if guard is not None:
                    yield f"if x == {guard}"
                    if st.x.get() != guard:
                        continue
                yield from nested(*order)(st)
        return run

    return Program("guarded locks", locks(*LOCKS, extra={"x": 0}),
                   [(f"T{i}", body(blocks)) for i, blocks in enumerate(spec)])


def graph_of(prog, reduction):
    order, out = explore_lock_graph(prog, reduction)
    assert out.verdict in ("clean", "violation")
    return set(order.graph.edges), [sorted(c) for c in order.cycles()]


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(lock_programs())
def test_dpor_and_none_gather_the_same_lock_graph(spec):
    prog = build(spec)
    assert graph_of(prog, "dpor") == graph_of(prog, "none"), spec


def test_dpor_and_none_agree_where_one_order_needs_a_particular_interleaving():
    # T1 takes b -> a only if T0's write of x = 1 came first.
    spec = ((("write", 1),), (("locks", None, ("a", "b")), ("locks", 1, ("b", "a"))))
    edges, cycles = graph_of(build(spec), "none")
    assert cycles == [["a", "b"]]
    assert graph_of(build(spec), "dpor") == (edges, cycles)


def test_the_search_stops_at_the_first_cycle():
    prog = Program("gated abba", locks("g", "a", "b"),
                   [("AB", nested("a", "b", gate="g")), ("BA", nested("b", "a", gate="g"))])
    out = Explorer(with_lock_order(prog), "none").run()
    assert out.stats.executions == 1  # the first execution already holds both orders


# -- racecheck lockgraph ------------------------------------------------------------------------


def test_lockgraph_writes_the_graph_with_the_cycle_marked(tmp_path):
    import networkx as nx
    from click.testing import CliRunner

    from racecheck.cli import main

    root = Path(__file__).resolve().parent.parent / "scenarios"
    run = CliRunner().invoke(main, ["lockgraph", str(root / "ext4_dax_fault_lock_order.yaml"),
                                    "-o", str(tmp_path / "bad")])
    assert run.exit_code == 1, run.output
    assert "cycle: jbd2_handle -> page_lock -> jbd2_handle" in run.output
    assert "holding page_lock[0]" in run.output and "holding jbd2_handle" in run.output
    dot = (tmp_path / "bad.dot").read_text()
    assert '"page_lock" -> "jbd2_handle" [label="fault (mmap_store)' in dot
    assert dot.count("color=red, fontcolor=red, penwidth=2") == 2  # the two edges of the cycle
    g = nx.read_graphml(tmp_path / "bad.graphml")
    assert {e for e in g.edges if g.edges[e]["cycle"]} == {("page_lock", "jbd2_handle"), ("jbd2_handle", "page_lock")}
    assert not g.edges["page_lock", "i_mmap_mutex"]["cycle"]

    run = CliRunner().invoke(main, ["lockgraph", str(root / "ext4_dax_fault_lock_order_fixed.yaml"),
                                    "-o", str(tmp_path / "good")])
    assert run.exit_code == 0, run.output
    assert "no cycle" in run.output
    g = nx.read_graphml(tmp_path / "good.graphml")
    assert ("sb_pagefaults", "jbd2_handle") in g.edges and ("jbd2_handle", "page_lock") in g.edges
    assert not any(g.edges[e]["cycle"] for e in g.edges)


def test_lockgraph_bad_input_and_bounds(tmp_path):
    from click.testing import CliRunner

    from racecheck.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nthreads: []\n")
    run = CliRunner().invoke(main, ["lockgraph", str(bad), "-o", str(tmp_path / "g")])
    assert run.exit_code == 2 and "bad.yaml" in run.output
    root = Path(__file__).resolve().parent.parent / "scenarios"
    run = CliRunner().invoke(main, ["lockgraph", str(root / "ext4_dax_fault_lock_order_fixed.yaml"),
                                    "--max-executions", "2", "-o", str(tmp_path / "cut")])
    assert run.exit_code == 3 and "no cycle among the executions explored" in run.output
