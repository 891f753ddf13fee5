"""The plain part of a model's state (racecheck/fingerprint.py:
plain_digest, plain_changes).

A model that keeps shared state in a plain dict of its state object, not in
a runtime object, is explored as if that dict did not exist. A digest of
everything reachable from the state through plain containers and attributes,
taken before and after a step, shows such a change and names where it is:
a dict entry set, a list appended to, an attribute of a nested object. What
runtime objects hold is the runtime's to record, and changes to them are not
reported; nor is anything on the corpus's initial states, whose digests are
the same however often they are taken.
"""

from pathlib import Path
from types import SimpleNamespace

import pytest

from racecheck.fingerprint import plain_changes, plain_digest
from racecheck.runtime import Runtime
from racecheck.scenario import load

ROOT = Path(__file__).resolve().parent.parent


def changed(state, change):
    """The paths ``change(state)`` changes, by the digests before and after."""
    before = plain_digest(state)
    change(state)
    after = plain_digest(state)
    assert (before == after) == (not plain_changes(before, after))
    return plain_changes(before, after)


def a_state(rt=None):
    rt = rt or Runtime()
    return SimpleNamespace(
        rt=rt, x=rt.var("x", 0), a=rt.array("a", [0, 0]), m=rt.map("m", {}), lock=rt.mutex("lock"),
        sem=rt.rwsem("sem"), ghost=rt.ghost_map("ghost"), rec=rt.record("rec", f=0),
        table={}, log=[], inner=SimpleNamespace(obj=SimpleNamespace(flag=False, n=0)))


def test_a_plain_dict_set_is_named_by_its_key():
    st = a_state()
    assert changed(st, lambda s: s.table.__setitem__("k", 1)) == ["state.table['k']"]
    assert changed(st, lambda s: s.table.__setitem__("k", 2)) == ["state.table['k']"]
    assert changed(st, lambda s: s.table.pop("k")) == ["state.table['k']"]
    assert changed(st, lambda s: s.table.__setitem__((1, "b"), None)) == ["state.table[(1, 'b')]"]


def test_a_list_attribute_appended_to_is_named_by_its_index():
    st = a_state()
    assert changed(st, lambda s: s.log.append("first")) == ["state.log[0]"]
    assert changed(st, lambda s: s.log.append("second")) == ["state.log[1]"]
    assert changed(st, lambda s: s.log.__setitem__(0, "again")) == ["state.log[0]"]


def test_a_nested_objects_attribute_is_named_by_its_path():
    st = a_state()
    assert changed(st, lambda s: setattr(s.inner.obj, "flag", True)) == ["state.inner.obj.flag"]
    assert changed(st, lambda s: setattr(s.inner.obj, "new", [])) == ["state.inner.obj.new"]
    assert changed(st, lambda s: setattr(s, "inner", SimpleNamespace())) == ["state.inner.obj"]


def test_runtime_objects_changes_are_not_reported():
    st = a_state()
    rt = st.rt

    def everything(s):
        s.x.set(5)
        s.a.set(1, 7)
        s.m.set("k", "v")
        rt.thread = 0
        s.lock.owner = 0  # as a granted lock() leaves it
        s.sem.writer = 0
        s.ghost["k"] = "seen"
        s.rec.f.set(3)
        rt.note("begin", op="op", args={}, seq=1)

    assert changed(st, everything) == []


def test_a_plain_slot_pointed_at_another_runtime_object_is_reported():
    rt = Runtime()
    st = SimpleNamespace(a=rt.var("a", 0), b=rt.var("b", 0))
    st.current = st.a
    assert changed(st, lambda s: setattr(s, "current", s.b)) == ["state.current"]


@pytest.mark.parametrize("old, new", [(True, 1), (1.0, 1), (0, False), (b"a", "a"), ((1,), [1])])
def test_values_python_calls_equal_are_told_apart(old, new):
    st = SimpleNamespace(v=old)
    assert changed(st, lambda s: setattr(s, "v", new)) == ["state.v"]


def test_what_does_not_change_gives_equal_digests():
    st = a_state()
    st.nan = float("nan")
    st.me = st  # a cycle
    st.shared = st.inner.obj  # one object under two paths
    st.handler = len
    assert changed(st, lambda s: None) == []
    assert changed(st, lambda s: setattr(s.inner.obj, "n", 1)) == ["state.inner.obj.n", "state.shared.n"]


def test_a_dicts_order_and_a_sets_items_are_reported_at_the_container():
    st = SimpleNamespace(d={"a": 1, "b": 2}, s={1, 2})

    def reorder(s):
        s.d["a"] = s.d.pop("a")

    assert changed(st, reorder) == ["state.d"]
    assert changed(st, lambda s: s.s.add(3)) == ["state.s"]


def test_the_steps_of_threads_writing_a_plain_dict_are_told_by_their_keys():
    # The model dpor would call clean: the two threads race on st.table,
    # which no runtime object records. Each step is run as an execution runs
    # it (the thread's generator resumed to its next yield).
    def body(st, key):
        yield f"table[{key}] = x"
        st.table[key] = st.x.get()
        yield "done"

    rt = Runtime()
    st = SimpleNamespace(x=rt.var("x", 0), table={})
    threads = [body(st, "a"), body(st, "b")]
    for t in threads:
        next(t)  # to the first yield
    seen = []
    for t in (threads[1], threads[0]):
        before = plain_digest(st)
        next(t)
        seen.append(plain_changes(before, plain_digest(st)))
    assert seen == [["state.table['b']"], ["state.table['a']"]]


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_corpus_state_digests_alike_twice_and_its_runtime_objects_are_left_out(path):
    sc = load(path)
    rt = Runtime()
    st = sc.model.init(rt)
    first = plain_digest(st)
    assert plain_digest(st) == first
    for obj in rt.objects:  # what the runtime holds is not the plain part
        for field in ("value", "values", "items", "owner"):
            if hasattr(obj, field) and not callable(getattr(obj, field)):
                setattr(obj, field, "changed")
    assert plain_changes(first, plain_digest(st)) == []
