"""The buffered (page-cache) write and read paths of seed 004 (race 11):
racecheck/models/buffered.py and scenarios/buffered_short_copy*.yaml."""

from pathlib import Path

import pytest
import yaml

from racecheck.execution import Execution
from racecheck.models.buffered import Buffer
from racecheck.models.fs import STALE, ZERO, ReadResult, WriteResult
from racecheck.runner import check
from racecheck.scenario import ScenarioError, load

ROOT = Path(__file__).resolve().parent.parent
BUGGY = ROOT / "scenarios" / "buffered_short_copy.yaml"
FIXED = ROOT / "scenarios" / "buffered_short_copy_fixed.yaml"


def scenario(tmp_path, threads, fixes=(), blocks=("hole",), size=4096, dax=False,
             invariants=("no_stale_data", "no_lost_write", "read_within_eof"), **file):
    doc = {
        "name": "t",
        "filesystem": "ext2",
        "file": {"size": size, "blocks": list(blocks), "unit_size": 1024, "dax": dax, **file},
        "threads": [{"name": n, "ops": ops} for n, ops in threads],
        "fixes": list(fixes),
        "invariants": list(invariants),
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load(path)


def run_serially(sc):
    """Run the threads one after the other, each to its end; return the
    execution (its state and its ghost history of results)."""
    ex = Execution(sc.model)
    for t in ex.threads:
        while not t.finished:
            ex.step(t.tid)
    return ex


def results(ex):
    return [h["result"] for h in ex.rt.history if h["kind"] == "return"]


# -- the race and its fix ------------------------------------------------------------


def test_counterexample_shows_allocation_short_copy_commit_unlock_then_the_read():
    rep = check(load(BUGGY), save_trace=False)
    assert rep.verdict == "violation"
    assert rep.outcome.violation.invariant == "no_stale_data"
    steps = rep.trace["steps"]
    wanted = [
        ("writer", "ext2_get_block(block 0, create=1)"),  # prepare_write allocates (BH_New)
        ("writer", "copied = filemap_copy_from_user_nonatomic(page, 0, buf, 4096)"),  # the short copy
        ("writer", "generic_commit_write(file, page 0, 0, 0)"),  # commits offset+copied only
        ("writer", "unlock_page(page)"),  # unlocked to retry
        ("reader", "lock_page(page 0)"),  # the read sneaks in: the page is not uptodate
        ("reader", "submit_bh(READ, bh)"),  # readpage reads the allocated, unwritten block
        ("reader", "file_read_actor(desc, page 0, 0, 4096)"),  # and hands it to the user
    ]
    at = 0
    for thread, label in wanted:
        while at < len(steps) and (steps[at]["thread"], steps[at]["label"]) != (thread, label):
            at += 1
        assert at < len(steps), f"no step {label!r} of {thread} after the previous ones: " + \
            ", ".join(f"{s['thread']}:{s['label']}" for s in steps)
        at += 1
    # The write has not got past its first try when the read copies.
    read_at = max(i for i, s in enumerate(steps) if s["label"].startswith("file_read_actor"))
    assert not any(s["thread"] == "writer" and s["label"].startswith("generic_commit_write(file, page 0, 0, 4096)")
                   for s in steps[:read_at])


@pytest.mark.parametrize("reduction", ["dpor", "none"])
def test_verdicts_agree_across_reductions(reduction):
    assert check(load(BUGGY), reduction=reduction, save_trace=False).verdict == "violation"
    fixed = check(load(FIXED), reduction=reduction, save_trace=False, do_minimise=False)
    assert fixed.verdict == "clean"
    assert fixed.outcome.stats.executions > 1


# -- single-thread behaviour of the paths -------------------------------------------------


def test_full_write_into_a_hole_then_read_returns_the_data(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                    {"op": "buffered_read", "offset": 0, "len": 4096}])])
    ex = run_serially(sc)
    w, r = results(ex)
    assert w == WriteResult(0, 4096, "DATA(t,1)")
    assert r == ReadResult(0, 4096, ("DATA(t,1)",) * 4, "read")
    fs = ex.state
    # Written to the page cache only: no writeback, the device block is as allocated.
    state, pblk = fs.i_blocks.values[0]
    assert state == "written" and all(fs.dev.values[u] == STALE for u in fs.block_units(pblk))


@pytest.mark.parametrize("short_copy", [0, 1024, 3072])
@pytest.mark.parametrize("fixes", [(), ("zero_new_buffers_on_short_copy",),
                                   ("zero_new_buffers_on_short_copy", "zero_length_commit_if_not_uptodate")])
def test_a_short_copy_is_retried_to_the_end(tmp_path, short_copy, fixes):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096, "short_copy": short_copy},
                                    {"op": "buffered_read", "offset": 0, "len": 4096}])], fixes)
    w, r = results(run_serially(sc))
    assert w == WriteResult(0, 4096, "DATA(t,1)")
    assert r.units == ("DATA(t,1)",) * 4


def test_read_of_a_hole_is_zeros_and_of_a_written_block_its_data(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_read", "offset": 0, "len": 8192}])],
                  blocks=("hole", "written"), size=8192)
    (r,) = results(run_serially(sc))
    assert r.units == (ZERO,) * 4 + ("DATA(init,0)",) * 4


def test_read_stops_at_i_size(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_read", "offset": 0, "len": 4096}])],
                  blocks=("written",), size=2048)
    (r,) = results(run_serially(sc))
    assert (r.nbytes, r.units) == (2048, ("DATA(init,0)",) * 2)


def test_write_past_eof_extends_i_size(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 4096, "len": 2048}])],
                  size=0, max_size=8192, blocks=())
    ex = run_serially(sc)
    assert ex.state.i_size.value == 6144
    # prepare_write zeroed the tail of the new block outside the write.
    assert ex.state.page_cache.items[1] == ("DATA(t,1)",) * 2 + (ZERO,) * 2


def test_ext2_allocates_without_zeroing_for_a_buffered_file_only(tmp_path):
    for dax, expected in ((False, STALE), (True, ZERO)):
        sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}])], dax=dax)
        fs = run_serially(sc).state
        _, pblk = fs.i_blocks.values[0]
        assert {fs.dev.values[u] for u in fs.block_units(pblk)} == {expected}


def test_bh_new_is_left_set_as_posted_and_cleared_by_the_fix(tmp_path):
    ops = [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}])]
    posted = run_serially(scenario(tmp_path, ops)).state.page_buffers.items[0]
    assert posted == (Buffer(mapped=True, new=True, uptodate=True, dirty=True, blocknr=0),)
    fixed = run_serially(scenario(tmp_path, ops, ["clear_bh_new_in_commit_write"])).state.page_buffers.items[0]
    assert fixed == (Buffer(mapped=True, new=False, uptodate=True, dirty=True, blocknr=0),)


# -- the other remedies of the thread, checked ------------------------------------------------


WRITER_AND_READER = [("writer", [{"op": "buffered_write", "offset": 0, "len": 4096, "short_copy": 1024}]),
                     ("reader", [{"op": "buffered_read", "offset": 0, "len": 4096}])]


def test_partial_copy_over_an_old_block_exposes_page_junk_until_the_commit_is_zero_length(tmp_path):
    """Nick Piggin's reply to Mark Fasheh (2006-12-08): a buffer that is not new
    and not uptodate holds junk in the page; committing the part the copy
    reached marks the whole buffer uptodate. A zero-length commit_write for a
    page that is not uptodate closes it."""
    zero = ["zero_new_buffers_on_short_copy"]
    rep = check(scenario(tmp_path, WRITER_AND_READER, zero, blocks=("written",)), save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_stale_data"
    rep = check(scenario(tmp_path, WRITER_AND_READER, zero + ["zero_length_commit_if_not_uptodate"],
                         blocks=("written",)), save_trace=False, do_minimise=False)
    assert rep.verdict == "clean" and rep.outcome.stats.executions > 1


def test_committing_offset_plus_bytes_exposes_junk_of_an_old_buffer(tmp_path):
    """Mark Fasheh's proposal (commit offset+bytes) against Nick Piggin's
    objection: over a block that is not new, the uncopied part of a page that
    is not uptodate is junk, and the full-length commit makes it uptodate."""
    threads = [("writer", [{"op": "buffered_write", "offset": 0, "len": 4096, "short_copy": 0}]),
               ("reader", [{"op": "buffered_read", "offset": 0, "len": 4096}])]
    zero = ["zero_new_buffers_on_short_copy"]
    rep = check(scenario(tmp_path, threads, zero, blocks=("written",)), save_trace=False, do_minimise=False)
    assert rep.verdict == "clean"
    rep = check(scenario(tmp_path, threads, zero + ["commit_write_offset_plus_bytes"], blocks=("written",)),
                save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_stale_data"


def test_partial_copy_into_a_hole_is_safe_once_new_buffers_are_zeroed(tmp_path):
    rep = check(scenario(tmp_path, WRITER_AND_READER), save_trace=False)
    assert rep.verdict == "violation"  # as posted: page junk past the copy is made uptodate
    rep = check(scenario(tmp_path, WRITER_AND_READER, ["zero_new_buffers_on_short_copy"]),
                save_trace=False, do_minimise=False)
    assert rep.verdict == "clean"


# -- the file setting ----------------------------------------------------------------------


def test_dax_must_be_a_boolean(tmp_path):
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, [("t", [{"op": "buffered_read", "offset": 0, "len": 4096}])], dax="no")
    assert "file.dax" in str(err.value) and "true or false" in str(err.value)


def test_read_and_write_of_a_non_dax_file_go_through_the_page_cache(tmp_path):
    from racecheck.models.registry import OPERATIONS
    if "read" not in OPERATIONS or "write" not in OPERATIONS:
        pytest.skip("the DAX read/write operations (xip_io.py) are not registered")
    ops = [("t", [{"op": "write", "offset": 0, "len": 4096}, {"op": "read", "offset": 0, "len": 4096}])]
    for dax in (False, True):
        ex = run_serially(scenario(tmp_path, ops, dax=dax))
        w, r = results(ex)
        assert w == WriteResult(0, 4096, "DATA(t,1)") and r.units == ("DATA(t,1)",) * 4
        fs = ex.state
        _, pblk = fs.i_blocks.values[0]
        on_device = {fs.dev.values[u] for u in fs.block_units(pblk)}
        if dax:  # written through to the block, nothing cached
            assert on_device == {"DATA(t,1)"} and 0 not in fs.page_cache.items
        else:  # in the page cache, not written back
            assert on_device == {STALE} and fs.page_cache.items[0] == ("DATA(t,1)",) * 4


def test_no_zero_overwrite_reads_the_page_cache_of_a_buffered_file(tmp_path):
    """A returned buffered write lives in the page cache (no writeback is
    modelled): the device block still holds what the allocator left."""
    ops = [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}])]
    rep = check(scenario(tmp_path, ops, invariants=["no_zero_overwrite"]), save_trace=False)
    assert rep.verdict == "clean"


# -- a read racing truncate: the kernel's behaviour ------------------------------------------


def test_read_racing_truncate_returns_what_it_copied_before_the_shrink(tmp_path):
    """do_generic_mapping_read (2.6.19) reads i_size once before its loop and
    again only after ->readpage ("i_size must be checked after we have done
    ->readpage"); it takes no i_mutex. A read that copied a page while i_size
    was 8192 returns 4096 bytes even if truncate shrank the file to 2048
    before the read returned: read_within_eof, which compares with i_size at
    the return, flags it, with every protection of the kernel in place. The
    kernel does the same (the later page_ok recheck of i_size does not
    order the copy against truncate either): it is no defect of the model."""
    sc = scenario(tmp_path, [("reader", [{"op": "buffered_read", "offset": 0, "len": 8192}]),
                             ("truncate", [{"op": "truncate", "size": 2048}])],
                  blocks=("written", "written"), size=8192, invariants=("read_within_eof",))
    rep = check(sc, save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "read_within_eof"
    steps = rep.trace["steps"]
    copy = max(i for i, s in enumerate(steps) if "file_read_actor" in (s["label"] or ""))
    shrink = next(i for i, s in enumerate(steps)
                  if any(name == "i_size" for name, _, _ in s.get("changes", [])))
    assert copy < shrink  # the read copied its bytes before truncate wrote the new i_size
    # The read's i_size checks: once before the loop, then after each ->readpage.
    mine = [s for s in steps if s["thread"] == "reader"]
    assert "i_size_read" in mine[0]["label"] and "find_get_page" in mine[1]["label"]


def test_read_after_truncate_stops_at_the_new_i_size(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "truncate", "size": 2048},
                                    {"op": "buffered_read", "offset": 0, "len": 8192}])],
                  blocks=("written", "written"), size=8192)
    ex = run_serially(sc)
    assert results(ex)[1].nbytes == 2048
