"""The invariant hooks: after a step, at a return, at the end, and across
executions (an invariant that keeps what it saw from one execution to the
next, and forgets it when a new search starts)."""

from types import SimpleNamespace

from racecheck.invariants import Invariant
from racecheck.model import Program
from racecheck.scheduler import Explorer, explore


class SameFinalValue(Invariant):
    """Across executions: every execution ends with the same x."""

    name = "same_final_value"

    def gather(self):
        return set()  # the final values seen by this search

    def across(self, st, execution):
        seen = execution.gathered(self)
        seen.add(st.x.value)
        if len(seen) > 1:
            return f"executions end with different values of x: {sorted(seen)}"
        return None


def writers(values):
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def writer(v):
        def body(st):
            yield f"x = {v}"
            st.x.set(v)
        return body

    return init, [(f"w{i}: x = {v}", writer(v)) for i, v in enumerate(values)]


def test_across_executions_finds_what_no_single_execution_shows():
    init, threads = writers([1, 2])
    model = Program("racing writers", init, threads, [SameFinalValue()])
    for reduction in ("dpor", "none"):
        out = explore(model, reduction)
        assert out.verdict == "violation", reduction
        assert out.violation.invariant == "same_final_value"
        assert out.stats.executions == 2  # the second execution is the first that can tell


def test_what_a_check_gathers_belongs_to_its_search():
    init, threads = writers([1, 1])
    inv = SameFinalValue()
    model = Program("agreeing writers", init, threads, [inv])
    first = Explorer(model, "none")
    assert first.run().verdict == "clean"
    assert first.gathered[inv] == {1}
    first.gathered[inv].add(99)  # what one search gathered is not another's
    second = Explorer(model, "none")
    assert second.run().verdict == "clean"
    assert second.gathered[inv] == {1}
    assert not hasattr(inv, "seen") and vars(inv) == {}  # the check itself is configuration


def test_on_return_sees_the_operation_result():
    calls = []

    class ReturnsSeen(Invariant):
        name = "returns_seen"

        def watches(self, st):
            return []

        def on_return(self, st, execution, entry):
            calls.append((entry["op"], entry["result"]))
            return "the op returned 7" if entry["result"] == 7 else None

    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0))

    def body(st):
        st.rt.note("begin", op="compute", args={}, seq=1)
        yield "x = 7"
        st.x.set(7)
        st.rt.note("return", op="compute", args={}, seq=1, result=st.x.get())

    out = explore(Program("returns", init, [("t", body)], [ReturnsSeen()]), "dpor")
    assert out.verdict == "violation" and out.violation.message == "the op returned 7"
    assert calls == [("compute", 7)]
