"""Each primitive of racecheck/rt/, on its own: the footprint its accesses
record, its value in a bfs fingerprint, its saved form in a trace's initial
state, and its state as traces show it. A new primitive is one module in
racecheck/rt/ and its tests here."""

from types import SimpleNamespace

import pytest

from racecheck import trace as tracefile
from racecheck.execution import Event, Execution
from racecheck.fingerprint import Fingerprinter, plain_digest
from racecheck.invariants import FinalState
from racecheck.model import Program
from racecheck.runtime import (
    GhostMap,
    ModelError,
    Primitive,
    Request,
    Runtime,
    SeqCount,
    ThreadLocal,
    read_seqcount_begin,
    read_seqcount_retry,
    wait_until,
    write_seqcount_begin,
    write_seqcount_end,
)
from racecheck.scheduler import Explorer
from racecheck.strategies import BreadthFirst


def step(rt, tid=0):
    rt.begin_step(tid)
    return rt


def footprint(rt):
    return sorted(map(rt.name_of, rt.reads)), sorted(map(rt.name_of, rt.writes))


def fingerprint(rt, obj):
    fp = Fingerprinter(SimpleNamespace(rt=rt, state=None))
    return fp.object(obj)


def saved(obj):
    return obj.saved_form()


@pytest.fixture
def rt():
    return Runtime(tracing=True)


# -- var ----------------------------------------------------------------------


def test_var(rt):
    v = rt.var("i_size", 8)
    step(rt)
    assert v.get() == 8
    assert footprint(rt) == (["i_size"], [])
    step(rt)
    v.set(0)
    assert footprint(rt) == ([], ["i_size"])
    assert rt.changes == [("i_size", 8, 0)]
    assert fingerprint(rt, v) == 0
    v.set(True)
    assert fingerprint(rt, v) != fingerprint(rt, rt.var("one", 1))  # True and 1 told apart
    assert saved(v) == ({"kind": "var"}, {"i_size": True})
    assert v.shown() is True and v.snapshot() == {"i_size": True}


# -- array --------------------------------------------------------------------


def test_array(rt):
    a = rt.array("dev", ["A", "B"])
    step(rt)
    a.set(1, a.get(0))
    assert footprint(rt) == (["dev[0]"], ["dev[1]"])
    assert rt.changes == [("dev[1]", "B", "A")]
    assert fingerprint(rt, a) == fingerprint(rt, rt.array("other", ["A", "A"]))
    assert saved(a) == ({"kind": "array", "length": 2}, {"dev[0]": "A", "dev[1]": "A"})
    assert a.shown() == ["A", "A"]


# -- map ----------------------------------------------------------------------


def test_map(rt):
    m = rt.map("pte", {1: "x"})
    step(rt)
    m.set(2, "y")  # a new key: the key set changes
    assert footprint(rt) == (["pte[2]"], ["pte['*']", "pte[2]"])
    step(rt)
    m.set(2, "z")  # an old key: it does not
    assert footprint(rt) == (["pte[2]"], ["pte[2]"])
    step(rt)
    assert m.keys() == [1, 2]
    assert footprint(rt) == (["pte['*']"], [])
    step(rt)
    m.delete(1)
    assert footprint(rt) == (["pte[1]"], ["pte['*']", "pte[1]"])
    assert rt.changes == [("pte[1]", "x", None)]
    # The order of insertion does not count.
    one, two = rt.map("p", {}), rt.map("p", {})
    one.set(1, "a")
    one.set(2, "b")
    two.set(2, "b")
    two.set(1, "a")
    assert fingerprint(rt, one) == fingerprint(rt, two) == ((("p", ((1, "a"), (2, "b"))),))
    assert saved(m) == ({"kind": "map"}, {"pte[2]": "z"})
    assert m.shown() == {2: "z"}


# -- record -------------------------------------------------------------------


def test_record(rt):
    r = rt.record("geo", size=1, unit=2)
    step(rt)
    r.unit.set(r.size.get())
    assert footprint(rt) == (["geo.size"], ["geo.unit"])
    assert r not in rt.objects and r.size in rt.objects  # its variables are the objects
    assert saved(r) is None and saved(r.size) == ({"kind": "var"}, {"geo.size": 1})
    assert r.shown() == {"size": 1, "unit": 1}
    assert fingerprint(rt, r.unit) == 1


# -- ghost map ----------------------------------------------------------------


def test_ghost_map(rt):
    g = rt.ghost_map("inflight")
    step(rt)
    g["io"] = 1
    assert footprint(rt) == ([], ["inflight"])
    step(rt)
    assert g["io"] == 1  # reads are not recorded
    assert footprint(rt) == ([], [])
    g.pop("io")
    assert footprint(rt) == ([], ["inflight"])
    g[2] = "b"
    g[1] = "a"
    other = rt.ghost_map("other")
    other[1] = "a"
    other[2] = "b"
    assert fingerprint(rt, g) != fingerprint(rt, other)  # named: snapshot() holds the name
    assert fingerprint(rt, g)[0][1] == fingerprint(rt, other)[0][1]  # the order does not count
    assert saved(g) is None  # traces leave it out
    assert g.shown() == {1: "a", 2: "b"}


# -- thread-local map -----------------------------------------------------------


def test_thread_local(rt):
    t = rt.thread_local("journal_info")
    step(rt, 1)
    t[1] = "handle"
    assert t[1] == "handle" and footprint(rt) == ([], [])  # no footprint
    with pytest.raises(ModelError):
        t[0] = "other thread's"
    assert t not in rt.objects and saved(t) is None
    assert dict(t.fingerprint_items()) == {1: "handle"}  # bfs enters its entries
    assert t.shown() == {1: "handle"}
    state = SimpleNamespace(info=t)
    fp = Fingerprinter(SimpleNamespace(rt=rt, state=state))
    assert fp._content(state, []) != fp._content(SimpleNamespace(info=rt.thread_local("j")), [])
    assert plain_digest(state) == plain_digest(state)


# -- mutex --------------------------------------------------------------------


def test_mutex(rt):
    m = rt.mutex("i_mutex")
    assert m.shown() == {"held_by": None}
    req = m.lock()
    assert isinstance(req, Request) and req.enabled() and req.waits_for() is m
    assert req.footprint(rt) == (set(), {m.key})
    step(rt, 3)
    req.grant(rt, 3)
    assert footprint(rt) == ([], ["i_mutex"]) and rt.exclusive == [("acquire", m.key)]
    assert rt.changes == [("i_mutex", {"held_by": None}, {"held_by": 3})]
    assert not m.lock().enabled()
    assert m.shown() == {"held_by": 3} and m.holders() == [3]
    assert fingerprint(rt, m) == 3
    assert saved(m) == ({"kind": "mutex"}, {"i_mutex": {"held_by": 3}})
    step(rt, 3)
    m.unlock()
    assert footprint(rt) == ([], ["i_mutex"]) and rt.exclusive == [("release", m.key)]
    assert rt.changes == [("i_mutex", {"held_by": 3}, {"held_by": None})]
    with pytest.raises(ModelError):
        m.unlock()


# -- rwsem --------------------------------------------------------------------


def test_rwsem(rt):
    s = rt.rwsem("i_rwsem")
    assert s.shown() == {"readers": [], "writer": None}
    step(rt, 2)
    s.down_read().grant(rt, 2)
    step(rt, 1)
    s.down_read().grant(rt, 1)
    # A reader writes its own slot and reads the writer key: shared, no exclusive acquire.
    assert footprint(rt) == (["i_rwsem"], ["i_rwsem[1]"]) and rt.exclusive == []
    assert rt.changes == [("i_rwsem", {"readers": [2], "writer": None},
                           {"readers": [1, 2], "writer": None})]
    assert not s.down_write().enabled() and s.down_read().enabled()
    assert s.down_write().waits_for() is s
    # Waiting to write reads the slots of the readers in the way (a look that
    # finds them conflicts with their down_read and up_read).
    reads, writes = s.down_write().footprint(rt)
    assert sorted(map(rt.name_of, reads)) == ["i_rwsem[1]", "i_rwsem[2]"] and writes == {s.key}
    assert saved(s) == ({"kind": "rwsem"}, {"i_rwsem": {"readers": [1, 2], "writer": None}})
    before = fingerprint(rt, s)
    step(rt, 1)
    s.up_read()
    assert footprint(rt) == (["i_rwsem"], ["i_rwsem[1]"])
    step(rt, 2)
    s.up_read()
    assert fingerprint(rt, s) != before
    step(rt, 0)
    s.down_write().grant(rt, 0)
    assert rt.exclusive == [("acquire", s.key)] and footprint(rt) == ([], ["i_rwsem"])
    assert s.shown() == {"readers": [], "writer": 0}
    assert not s.down_read().enabled()
    step(rt, 0)
    s.up_write()
    assert rt.changes == [("i_rwsem", {"readers": [], "writer": 0}, {"readers": [], "writer": None})]
    assert footprint(rt) == ([], ["i_rwsem"]) and rt.exclusive == [("release", s.key)]


def test_rwsem_readers_commute_and_conflict_with_the_writer(rt):
    """Shared acquisitions and releases of different threads are
    independent; every writer operation, done or waiting, conflicts with
    every reader operation."""
    s = rt.rwsem("sem")

    def event(tid, op):
        step(rt, tid)
        op()
        return Event(tid, rt.reads, rt.writes, tuple(rt.exclusive))

    down1 = event(1, lambda: s.down_read().grant(rt, 1))
    down2 = event(2, lambda: s.down_read().grant(rt, 2))
    assert s.holders() == [1, 2]
    up1 = event(1, s.up_read)
    assert not down1.conflicts(down2) and not up1.conflicts(down2) and not down2.conflicts(up1)
    up2 = event(2, s.up_read)
    step(rt, 0)
    waiting_read = s.down_read()
    waiting_read = Event(0, *waiting_read.footprint(rt))
    assert waiting_read.writes == {(s.key, 0)} and waiting_read.reads == {s.key}
    waiting_write = Event(3, *s.down_write().footprint(rt))
    down_w = event(3, lambda: s.down_write().grant(rt, 3))
    demote = event(3, s.downgrade_write)
    assert demote.writes == {s.key, (s.key, 3)}
    up3 = event(3, s.up_read)
    step(rt, 3)
    s.down_write().grant(rt, 3)
    up_w = event(3, s.up_write)
    for reader in (down1, down2, up1, up2, waiting_read):
        for writer in (waiting_write, down_w, demote, up_w):
            assert reader.conflicts(writer) and writer.conflicts(reader)
    assert not up3.conflicts(down1)


def test_downgrade_write_keeps_the_lock_shared(rt):
    s = rt.rwsem("iolock")
    step(rt, 0)
    s.down_write().grant(rt, 0)
    step(rt, 0)
    s.downgrade_write()
    assert rt.exclusive == [("release", s.key)] and footprint(rt) == ([], ["iolock", "iolock[0]"])
    assert rt.changes == [("iolock", {"readers": [], "writer": 0}, {"readers": [0], "writer": None})]
    assert s.down_read().enabled() and not s.down_write().enabled()
    step(rt, 0)
    s.up_read()
    assert s.shown() == {"readers": [], "writer": None}
    with pytest.raises(ModelError, match="does not hold it for writing"):
        s.downgrade_write()


def _demote_model(downgrade=True):
    """A writer sets x under the write side and reads it back after turning
    to the read side; another writer sets x under the write side. With
    downgrade_write nothing can come in between; let go and taken again,
    the other writer can."""

    def init(rt):
        return SimpleNamespace(sem=rt.rwsem("sem"), x=rt.var("x", 0), seen=rt.var("seen", None))

    def demoter(st):
        yield st.sem.down_write()
        st.x.set(1)
        yield "demote"
        if downgrade:
            st.sem.downgrade_write()
        else:
            st.sem.up_write()
            yield st.sem.down_read()
        yield "x"
        st.seen.set(st.x.get())
        st.sem.up_read()

    def writer(st):
        yield st.sem.down_write()
        st.x.set(2)
        st.sem.up_write()

    return Program("demote", init, [("demoter", demoter), ("writer", writer)],
                   [FinalState("kept", lambda st: st.seen.value == 1, "another writer came in")])


@pytest.mark.parametrize("reduction", ["none", "dpor"])
def test_no_writer_comes_in_between_a_downgrade(reduction):
    assert Explorer(_demote_model(), reduction).run().verdict == "clean"
    assert Explorer(_demote_model(downgrade=False), reduction).run().verdict == "violation"


# -- wait_until ---------------------------------------------------------------


def test_wait_until(rt):
    flag = rt.var("flag", 0)
    step(rt)
    req = wait_until(rt, lambda: flag.get() == 1, "flag set")
    assert footprint(rt) == ([], [])  # making it reads nothing
    assert not req.enabled() and footprint(rt) == ([], [])  # nor does probing it
    assert req.footprint(rt) == ({flag.key}, set())
    assert req.waits_for() is None and req.describe() == "waiting until flag set"
    flag.value = 1
    step(rt)
    req.grant(rt, 0)
    assert footprint(rt) == (["flag"], [])  # the step that finds it true reads it
    fp = Fingerprinter(SimpleNamespace(rt=rt, state=None))
    assert fp.value(req)[0].name == "REQ"  # a pending request, by its fields


# -- seqcount -----------------------------------------------------------------


def test_seqcount_footprints(rt):
    s = rt.seqcount("seq")
    assert isinstance(s, SeqCount) and s.shown() == 0
    step(rt)
    write_seqcount_begin(s)
    assert footprint(rt) == (["seq"], ["seq"]) and rt.changes == [("seq", 0, 1)]
    assert fingerprint(rt, s) == 1 and s.value == 1
    assert saved(s) == ({"kind": "seqcount"}, {"seq": 1})
    step(rt)
    assert read_seqcount_retry(s, 0)
    assert footprint(rt) == (["seq"], [])
    write_seqcount_end(s)
    assert s.shown() == 2 and not read_seqcount_retry(s, 2)


def test_read_seqcount_begin_spins_one_step_per_look_while_odd(rt):
    s = rt.seqcount("seq", 1)  # a writer is inside
    gen = read_seqcount_begin(s)
    assert next(gen).startswith("read_seqcount_begin(&seq)")
    step(rt)
    assert gen.send(None).startswith("read_seqcount_begin")  # odd: looks again
    assert footprint(rt) == (["seq"], [])
    s.sequence = 2
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert stop.value.value == 2


def _seqlock_model(retry=True):
    """A reader copies two variables a writer changes together, under a
    seqcount; the writer's section is kept apart by a mutex. The reader
    spins while the writer is inside: bfs explores it to the end."""

    def init(rt):
        return SimpleNamespace(seq=rt.seqcount("seq"), lock=rt.mutex("lock"),
                               a=rt.var("a", 0), b=rt.var("b", 0), seen=rt.var("seen", None))

    def writer(st):
        yield st.lock.lock()
        write_seqcount_begin(st.seq)
        yield "a = 1"
        st.a.set(1)
        yield "b = 1"
        st.b.set(1)
        yield "write_seqcount_end"
        write_seqcount_end(st.seq)
        st.lock.unlock()

    def reader(st):
        while True:
            start = yield from read_seqcount_begin(st.seq)
            yield "a"
            a = st.a.get()
            yield "b"
            b = st.b.get()
            yield "read_seqcount_retry"
            if not (retry and read_seqcount_retry(st.seq, start)):
                break
        yield "seen"
        st.seen.set((a, b))

    return Program("seqlock", init, [("writer", writer), ("reader", reader)],
                   [FinalState("consistent", lambda st: st.seen.value in ((0, 0), (1, 1)),
                               "the reader kept a torn pair")])


def test_a_seqcount_reader_never_keeps_a_torn_read():
    assert BreadthFirst(_seqlock_model()).run().verdict == "clean"
    # Without the retry it does.
    out = BreadthFirst(_seqlock_model(retry=False)).run()
    assert out.verdict == "violation"


# -- through the engine: no primitive is known by name --------------------------


class Flag(Primitive):
    """A primitive the engine has never heard of: a boolean set once."""

    __slots__ = ("rt", "key", "name", "up")
    kind = "var"

    def __init__(self, rt, name):
        self.rt, self.name, self.up = rt, name, False
        self.key = rt._register(self, name)

    def raise_(self):
        self.rt.writes.add(self.key)
        if self.rt.tracing:
            self.rt.changes.append((self.name, self.shown(), "up"))
        self.up = True

    def snapshot(self):
        return {self.name: self.up}

    def fingerprint_value(self, value):
        return ("flag", self.up)

    def shown(self):
        return "up" if self.up else "down"


def test_a_new_primitive_needs_no_change_to_the_engine():
    def init(rt):
        return SimpleNamespace(flag=Flag(rt, "flag"), m=rt.mutex("m"), s=rt.rwsem("s"),
                               q=rt.seqcount("q"), g=rt.ghost_map("g"))

    def t(st):
        yield "raise"
        st.flag.raise_()

    model = Program("flag", init, [("t", t)], [])
    initial, objects, _ = tracefile.initial_state(model)
    assert objects == {"flag": {"kind": "var"}, "m": {"kind": "mutex"}, "s": {"kind": "rwsem"},
                       "q": {"kind": "seqcount"}}
    assert initial == {"flag": "down", "m": {"held_by": None}, "s": {"readers": [], "writer": None},
                       "q": 0}
    ex = Execution(model)
    fp = Fingerprinter(ex)
    before = fp.shared()
    ex.step(0)
    assert fp.shared() != before and ("flag", True) in fp.shared()
    assert plain_digest(ex.state) is not None  # a Primitive is named, not entered


def test_ghost_and_thread_local_maps_are_dicts():
    rt = Runtime()
    assert isinstance(rt.ghost_map("g"), (dict, GhostMap, Primitive))
    assert isinstance(rt.thread_local("t"), (dict, ThreadLocal, Primitive))
