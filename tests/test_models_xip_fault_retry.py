"""The XIP fault before the rewrite (racecheck/models/xip_fault_retry.py:
mm/filemap_xip.c of 3.13, the code patch 07 of seed 002 deletes).

Its three loops are reached (a probe invariant that "breaks" when a thread is
about to run the step shows the state reachable, by the shortest schedule);
dfs cannot finish the scenario (the seqcount spin) and bfs explores it to the
end; the fingerprint pieced together step by step is the whole one on every
state; and without __xip_unmap a load begun after the store returned reads the
sparse page's zeros, so the clean verdict is not vacuous.
"""

from pathlib import Path

import pytest

from racecheck.invariants import Invariant
from racecheck.models import xip_fault_retry
from racecheck.runner import check
from racecheck.runtime import Request
from racecheck.scenario import load
from racecheck.strategies import BreadthFirst

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "xip_file_fault_retry.yaml"


class Reaches(Invariant):
    """A probe: "violated" when some thread is about to run the step labelled
    ``label`` (with ``where(state)`` true), so bfs shows the state reachable."""

    def __init__(self, label, where=lambda fs: True):
        self.name = "reaches"
        self.label = label
        self.where = where

    def after_step(self, fs, execution):
        for t in execution.threads:
            p = t.pending
            label = p.label if isinstance(p, Request) else p
            if not t.finished and label and label.startswith(self.label) and self.where(fs):
                return f"{t.name} is at {label}"
        return None


@pytest.mark.parametrize("label, where", [
    ("write_seqcount_end(&xip_sparse_seq); mutex_unlock(&xip_sparse_mutex); goto again", None),
    ("read_seqcount_begin", lambda fs: fs.xip_sparse_seq.value % 2 == 1),  # spinning on an odd count
    ("mutex_unlock(&xip_sparse_mutex)", None),  # __xip_unmap's second walk, under the mutex
])
def test_the_three_loops_of_the_old_xip_fault_are_reached(label, where):
    sc = load(SCENARIO)
    sc.model.invariants = [Reaches(label, where or (lambda fs: True))]
    out = BreadthFirst(sc.model).run()
    assert out.verdict == "violation", f"no state reaches {label!r}"


def test_the_old_xip_fault_is_explored_to_the_end_by_bfs_and_not_by_dfs():
    sc = load(SCENARIO)
    rep = check(sc, save_trace=False)
    assert rep.strategy == "bfs"
    assert rep.strategy_reason.startswith("auto: bfs, since dfs cannot finish (thread writer ran more")
    assert rep.verdict == "clean" and rep.outcome.stats.queue == 0


def test_without_xip_unmap_a_load_after_the_store_reads_the_sparse_zeros(monkeypatch):
    def no_unmap(fs, pgoff):
        yield "__xip_unmap() left out"

    monkeypatch.setattr(xip_fault_retry, "__xip_unmap", no_unmap)
    sc = load(SCENARIO)
    out = BreadthFirst(sc.model).run()
    assert out.verdict == "violation" and out.violation.invariant == "no_lost_write"


def test_incremental_fingerprints_equal_whole_ones():
    sc = load(SCENARIO)
    out = BreadthFirst(sc.model, sc.bounds, verify=True).run()
    assert out.verdict == "clean" and out.stats.distinct_states > 500


# -- patch 01 ("Fix XIP fault vs truncate race") is a fix of this code ------------------

SPARSE_VS_TRUNCATE = """\
name: sparse_vs_truncate
filesystem: ext2-filemap-xip
file: {size: 8192, blocks: [written, hole]}
threads:
  - name: fault
    ops: [{op: xip_file_load, offset: 4096, mapping: shared2}]
  - name: truncate
    ops: [{op: truncate, size: 0}]
fixes: FIXES
invariants: [no_mapping_beyond_eof, no_freed_block_mapped]
"""


@pytest.mark.parametrize("fixes, verdict", [("[]", "violation"),
                                            ("[recheck_isize_under_i_mmap_mutex]", "clean")])
def test_sparse_page_branch_rechecks_isize_only_with_patch_01(tmp_path, fixes, verdict):
    """Before patch 01 the sparse branch maps __xip_sparse_page with no
    i_mmap_mutex and no recheck: a fault that checked i_size before truncate
    shrank the file maps the page beyond the new EOF after truncate's unmap.
    Patch 01's "We must recheck i_size under i_mmap_mutex" closes it."""
    path = tmp_path / "s.yaml"
    path.write_text(SPARSE_VS_TRUNCATE.replace("FIXES", fixes))
    rep = check(load(path), save_trace=False)
    assert rep.verdict == verdict
    if verdict == "violation":
        assert rep.outcome.violation.invariant == "no_mapping_beyond_eof"


def test_the_retry_scenario_is_the_code_patch_07_removes():
    """xip_file_fault_retry runs the removed lines of patch 07: patch 01 in."""
    assert load(SCENARIO).model.fixes == ["recheck_isize_under_i_mmap_mutex"]
