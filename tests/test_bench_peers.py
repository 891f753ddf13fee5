"""The reduced programs that bench/bench_peers.py gives racecheck, frontrun
and SPIN alike (bench/peers/reduced.py): each buggy one breaks its invariant
and each fixed one holds, under dpor and under the exhaustive search, so the
benchmark compares the tools on programs whose answer is known."""

import importlib.util
import pathlib

import pytest

from racecheck.scheduler import Explorer

_PATH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "peers" / "reduced.py"
_spec = importlib.util.spec_from_file_location("bench_peers_reduced", _PATH)
reduced = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reduced)


@pytest.mark.parametrize("race, invariant", [("fault_vs_truncate", "no_freed_block_mapped"),
                                             ("unaligned_dio_zeroing", "no_zero_overwrite")])
@pytest.mark.parametrize("reduction", ["dpor", "none"])
def test_buggy_breaks_and_fixed_holds(race, invariant, reduction):
    make = getattr(reduced, race)
    buggy = Explorer(make(False), reduction).run()
    assert buggy.verdict == "violation" and buggy.violation.invariant == invariant
    fixed = Explorer(make(True), reduction).run()
    assert fixed.verdict == "clean" and fixed.stats.executions > 1
