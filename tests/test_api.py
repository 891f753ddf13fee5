"""The public API at the package root: what a model of one's own imports."""

import subprocess
import sys
from types import SimpleNamespace

import racecheck
from racecheck import FinalState, Program, check, wait_until
from racecheck.scheduler import Explorer


def test_the_root_exports_the_model_api():
    for name in ("Program", "Model", "Invariant", "FinalState", "Always", "register", "check",
                 "bug_on", "wait_until", "Violation", "ModelError"):
        assert name in racecheck.__all__
        assert getattr(racecheck, name) is not None


def test_a_model_written_against_the_root_api_runs():
    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0), ready=rt.var("ready", 0))

    def writer(st):
        yield "x = 1"
        st.x.set(1)
        yield "ready = 1"
        st.ready.set(1)

    def reader(st):
        yield wait_until(st.rt, lambda: st.ready.get() == 1, "ready")
        check(st.x.get() == 1, "x not published")

    model = Program("publish", init, [("writer", writer), ("reader", reader)],
                    [FinalState("ready", lambda st: st.ready.value == 1, "never ready")])
    assert Explorer(model).run().verdict == "clean"


def test_importing_racecheck_loads_nothing_heavy():
    code = ("import sys, racecheck; "
            "print(sorted(m for m in ('networkx', 'z3', 'yaml', 'click') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
