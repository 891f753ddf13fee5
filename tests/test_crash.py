"""crash_consistent: recovery after a power failure, the check, its pruning
against checking every step, and dpor against none."""

from pathlib import Path

import pytest
import yaml

from racecheck.execution import Execution
from racecheck.models import crash, journal
from racecheck.models.crash import (
    CrashConsistent,
    Recovered,
    durable_expectations,
    problem,
    recover,
)
from racecheck.models.fs import HOLE, STALE, WRITTEN, ZERO
from racecheck.scenario import ScenarioError, load
from racecheck.scheduler import Explorer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "scenarios").glob("*crash*.yaml"))


def scenario(tmp_path, flavour, threads, fixes=(), crash=True, size=4096, blocks=("hole",), dax=False, **extra):
    spec = {"name": "crash", "filesystem": flavour,
            "file": {"size": size, "blocks": list(blocks), "dax": dax},
            "threads": [{"name": n, "ops": ops} for n, ops in threads],
            "fixes": list(fixes), "crash": crash, "invariants": [], **extra}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load(path)


def test_a_crash_before_the_commit_loses_the_uncommitted_transaction_and_nothing_else(tmp_path):
    # One transaction allocates block 0 and commits; a second one allocates
    # block 1 and never commits.
    sc = scenario(tmp_path, "ext3", [("t", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                            {"op": "journal_commit"},
                                            {"op": "buffered_write", "offset": 4096, "len": 4096}])],
                  size=8192, blocks=("hole", "hole"))
    ex = Execution(sc.model)
    after = []  # (recovered state, in-memory block map) after each step
    while ex.enabled():
        ex.step(0)
        after.append((recover(ex.state), tuple(ex.state.i_blocks.values)))
    committed = next(i for i, (rec, _) in enumerate(after) if rec.blocks[0][0] == WRITTEN)
    first = after[committed][0]
    assert first.blocks[1] == (HOLE, None) and set(first.units[0]) == {"DATA(t,1)"}
    # From the commit on, nothing the second transaction did is on disk ...
    assert all(rec == first for rec, _ in after[committed:])
    # ... though it allocated block 1 in memory and wrote its page.
    final = ex.state
    assert after[-1][1][1][0] == WRITTEN
    assert final.journal.t_updates.value == 0 and final.journal.committed.value.blocks[1] == (HOLE, None)
    # Before the commit record, the recovered file is the initial one.
    assert all(rec.blocks == ((HOLE, None), (HOLE, None)) for rec, _ in after[:committed])


def test_ext2_links_what_it_links(tmp_path):
    sc = scenario(tmp_path, "ext2", [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}])], crash=False)
    ex = Execution(sc.model)
    while ex.enabled():
        ex.step(0)
    rec = recover(ex.state)
    assert rec.blocks[0][0] == WRITTEN and not rec.journal
    assert set(rec.units[0]) == {STALE}  # linked, but the data is still in the page cache


def test_the_check_finds_stale_blocks_and_lost_acknowledged_writes():
    class Fs:
        class geo:
            units_per_block, block_size, unit_size = 2, 1024, 512
    ok = Recovered(((WRITTEN, 3),), 1024, (("DATA(w,1)", ZERO),), False)
    assert problem(Fs, ok, ((0, "DATA(w,1)", frozenset({"DATA(init,0)"})),)) is None
    later = Recovered(((WRITTEN, 3),), 1024, (("DATA(v,2)", ZERO),), False)
    assert problem(Fs, later, ((0, "DATA(w,1)", frozenset({"DATA(init,0)"})),)) is None
    lost = Recovered(((WRITTEN, 3),), 1024, (("DATA(init,0)", ZERO),), False)
    assert "acknowledged as durable" in problem(Fs, lost, ((0, "DATA(w,1)", frozenset({"DATA(init,0)"})),))
    stale = Recovered(((WRITTEN, 3),), 1024, ((ZERO, STALE),), False)
    assert "reads STALE at file offset 512" in problem(Fs, stale, ())
    unwritten = Recovered((("unwritten", 3),), 1024, ((ZERO, ZERO),), False)
    assert problem(Fs, unwritten, ()) is None


def test_fsync_makes_a_write_durable_and_a_broken_fsync_is_caught(tmp_path, monkeypatch):
    # ext2, page cache: the data reaches the device only through fsync's writeback.
    threads = [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}, {"op": "fsync"}])]
    sc = scenario(tmp_path, "ext2", threads, blocks=("written",))
    assert Explorer(sc.model).run().verdict == "clean"

    def no_writeback(fs):
        yield "filemap_write_and_wait (broken: writes nothing)"

    monkeypatch.setattr(journal, "filemap_write_and_wait", no_writeback)
    out = Explorer(scenario(tmp_path, "ext2", threads, blocks=("written",)).model).run()
    assert out.verdict == "violation" and out.violation.invariant == "crash_consistent"
    assert "acknowledged as durable" in out.violation.message
    assert "reads DATA(init,0)" in out.violation.message


def test_the_counterexample_names_the_crash_point_and_the_recovered_state():
    sc = load(ROOT / "scenarios" / "fault_alloc_stale_crash.yaml")
    out = Explorer(sc.model).run()
    msg = out.violation.message
    assert msg.startswith(f"a power failure right after step {len(out.violation.schedule)} (writer, in mmap_store)")
    assert "recovered (no journal: the metadata as it stood): i_size 4096; block 0 -> device block 0 (written): STALE x8" in msg


# -- pruning and the reduction against checking everything ---------------------------------


class Recording(CrashConsistent):
    """Records every crash state it checks (not pruning 1's skipped steps;
    pruning 2's repeats included), with the verdict."""

    def gather(self):
        seen = super().gather()
        seen.states = set()
        return seen

    def check(self, fs, execution):
        msg = super().check(fs, execution)
        execution.gathered(self).states.add((recover(fs), durable_expectations(fs, execution),
                                             msg is not None))
        return msg


def crash_states(sc, reduction, prune):
    """(what Recording gathered over the search, its outcome)"""
    inv = Recording(prune=prune)
    sc.model.invariants = [inv]
    explorer = Explorer(sc.model, reduction, stop_on_violation=False)
    out = explorer.run()
    assert out.verdict in ("clean", "violation"), out.error
    return explorer.gathered[inv], out


EXTRA = [
    ("ext2", [("w", [{"op": "buffered_write", "offset": 0, "len": 4096, "short_copy": 0}]),
              ("r", [{"op": "buffered_read", "offset": 0, "len": 4096}])], ()),
    ("ext3", [("w", [{"op": "buffered_write", "offset": 0, "len": 4096}, {"op": "fsync"}]),
              ("k", [{"op": "journal_commit"}])], ()),
    ("ext3", [("w", [{"op": "buffered_write", "offset": 0, "len": 4096, "short_copy": 0}]),
              ("k", [{"op": "journal_commit"}]), ("f", [{"op": "fsync"}])], ("zero_new_buffers_on_short_copy",)),
]


def cases(tmp_path):
    out = [load(p) for p in CORPUS]
    for n, (flavour, threads, fixes) in enumerate(EXTRA):
        d = tmp_path / str(n)
        d.mkdir()
        out.append(scenario(d, flavour, threads, fixes))
    return out


def test_pruned_crash_points_reach_the_same_crash_states_as_checking_every_step(tmp_path):
    for sc in cases(tmp_path):
        pruned, out_p = crash_states(sc, "dpor", True)
        every, out_e = crash_states(sc, "dpor", False)
        assert out_p.verdict == out_e.verdict, sc.name
        # Pruning skips the check, not the state: the states seen are the same...
        assert pruned.states == every.states, sc.name
        # ... and the states it did check are the distinct ones.
        assert pruned.checked == len({(r, e) for r, e, _ in every.states}), sc.name
        assert every.checked > pruned.checked, sc.name


def test_dpor_reaches_every_crash_state_that_none_reaches(tmp_path):
    # "none" runs 15,000 to 50,000 executions on the ext3 corpus pair: the
    # smaller cases only (ext2 DAX, ext2 and ext3 page cache, fsync).
    small = [sc for sc in cases(tmp_path)
             if sc.name.startswith("fault_alloc") or len(sc.thread_names) == 2 and sc.name == "crash"]
    assert len(small) == 4
    for sc in small:
        by_dpor, out_d = crash_states(sc, "dpor", True)
        by_none, out_n = crash_states(sc, "none", True)
        assert out_d.verdict == out_n.verdict, sc.name
        assert by_dpor.states == by_none.states, sc.name
        assert out_d.stats.executions <= out_n.stats.executions, sc.name


# -- the scenario key ------------------------------------------------------------------------


def test_crash_consistent_needs_crash_true(tmp_path):
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, "ext3", [("t", [{"op": "fsync"}])], crash=False, invariants=["crash_consistent"])
    line = (tmp_path / "s.yaml").read_text().splitlines().index("invariants:") + 1
    assert f"s.yaml:{line}: invariants: crash_consistent checks the states a power failure leaves" in str(err.value)


def test_crash_must_be_a_boolean(tmp_path):
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, "ext3", [("t", [{"op": "fsync"}])], crash="yes")
    assert "crash: must be true or false" in str(err.value)


def test_crash_true_adds_the_check(tmp_path):
    sc = scenario(tmp_path, "ext3", [("t", [{"op": "fsync"}])])
    assert sc.crash and sc.invariant_names == ["crash_consistent"]
    assert [i.name for i in sc.model.invariants] == ["crash_consistent"]


def test_a_pruning_that_ignores_the_history_misses_crash_states(tmp_path, monkeypatch):
    # The comparison above can fail: skip the steps where an fsync returns
    # (they change what the recovered file must hold, not the file) and the
    # state after the last fsync is never checked.
    sc = scenario(tmp_path, "ext3", [("w", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                            {"op": "fsync"}])])
    every, _ = crash_states(sc, "dpor", False)

    def durable_writes_only(self, fs, rt):
        keys = {o.key for o in crash.durable_objects(fs)}
        return rt.step_no > 1 and not any((k[0] if k.__class__ is tuple else k) in keys for k in rt.writes)

    monkeypatch.setattr(CrashConsistent, "unchanged_by_step", durable_writes_only)
    broken, _ = crash_states(sc, "dpor", True)
    assert broken.states < every.states


def test_records_of_two_searches_merge_as_one_search():
    # what a work unit gathered merges into another's: a state both checked counts once
    a, b = crash.CrashStates(), crash.CrashStates()
    a.checked, a.verdicts, a.unchanged = 2, {"s1": None, "s2": "bad"}, 5
    b.checked, b.repeated, b.verdicts = 2, 1, {"s2": "bad", "s3": None}
    a.merge(b)
    assert a.stats() == {"crash_states": 3, "crash_points_pruned": 5 + 1 + 1}
    assert a.verdicts == {"s1": None, "s2": "bad", "s3": None}
