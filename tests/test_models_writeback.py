"""ext4's delayed allocation and writeback (kernel 4.4 and 4.7) against
truncate, hole punch and the journal's commit: racecheck/models/writeback.py
and scenarios/delalloc_*.yaml."""

from pathlib import Path

import pytest
import yaml

from racecheck.execution import Execution
from racecheck.models.fs import STALE, ReadResult, WriteResult
from racecheck.models.kernel import FUNCTIONS, RELEASES
from racecheck.runner import check
from racecheck.scenario import load

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ["delalloc_writeback_vs_truncate", "delalloc_ordered_data_crash", "delalloc_writeback_vs_punch_hole"]


def scenario(tmp_path, threads, kernel="4.4", filesystem="ext4", blocks=("hole",), size=4096,
             invariants=("no_stale_data", "no_freed_block_mapped"), **extra):
    doc = {
        "name": "t",
        "filesystem": filesystem,
        "file": {"size": size, "blocks": list(blocks), "dax": False, **extra.pop("file", {})},
        "threads": [{"name": n, "ops": ops} for n, ops in threads],
        "invariants": list(invariants),
        **extra,
    }
    if kernel is not None:
        doc["kernel"] = kernel
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load(path)


def run_serially(sc):
    """Run the threads one after the other, each to its end, recording the steps."""
    ex = Execution(sc.model, tracing=True)
    for t in ex.threads:
        while not t.finished:
            ex.step(t.tid)
    return ex


def labels(ex):
    return [r["label"] for r in ex.records]


def in_order(seq, wanted):
    """Each of ``wanted`` (label prefixes) appears in ``seq`` after the one before."""
    at = 0
    for w in wanted:
        while at < len(seq) and not seq[at].startswith(w):
            at += 1
        assert at < len(seq), f"no step {w!r} after the previous ones: {seq}"
        at += 1


def results(ex):
    return [h["result"] for h in ex.rt.history if h["kind"] == "return"]


# -- the pairs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS)
def test_pair_buggy_violates_and_fixed_is_clean_with_dpor(pair):
    buggy = load(ROOT / "scenarios" / f"{pair}.yaml")
    rep = check(buggy, save_trace=False)
    assert rep.verdict == "violation"
    assert rep.outcome.violation.invariant == buggy.expect["invariant"]
    fixed = check(load(ROOT / "scenarios" / f"{pair}_fixed.yaml"), save_trace=False, do_minimise=False)
    assert fixed.verdict == "clean" and fixed.outcome.stats.executions > 1


@pytest.mark.parametrize("pair", PAIRS)
def test_buggy_twin_violates_without_reduction_too(pair):
    rep = check(load(ROOT / "scenarios" / f"{pair}.yaml"), reduction="none", save_trace=False, do_minimise=False)
    assert rep.verdict == "violation"


def test_truncate_counterexample_frees_the_block_under_the_writeback_bio():
    rep = check(load(ROOT / "scenarios" / "delalloc_writeback_vs_truncate.yaml"), save_trace=False)
    steps = [(s["thread"], s["label"]) for s in rep.trace["steps"]]
    at = 0
    for thread, label in [
        ("writer", "ext4_da_map_blocks(block 0)"),  # write_begin: a reservation, no block
        ("writer", "ext4_da_write_end()"),  # i_size moves, i_disksize does not
        ("writer", "lock_page(page 0)"),  # mpage_prepare_extent_to_map
        ("writer", "ext4_map_blocks(block 0, EXT4_GET_BLOCKS_CREATE)"),  # allocation at writeback
        ("writer", "mpage_map_and_submit_buffers"),  # set_page_writeback; unlock_page
        ("writer", "ext4_io_submit"),  # the bio is in flight
        ("truncate", "lock_page(page 0)"),  # the page lock is free: writeback gave it up
        ("truncate", "down_write(&EXT4_I(inode)->i_data_sem); ext4_ext_truncate"),  # frees block 0
    ]:
        while at < len(steps) and not (steps[at][0] == thread and steps[at][1].startswith(label)):
            at += 1
        assert at < len(steps), f"no step {label!r} of {thread}: {steps}"
        at += 1
    assert not any(label.startswith("ext4_end_bio") for _, label in steps)


def test_crash_counterexample_commits_the_block_before_its_data():
    rep = check(load(ROOT / "scenarios" / "delalloc_ordered_data_crash.yaml"), save_trace=False)
    steps = [(s["thread"], s["label"]) for s in rep.trace["steps"]]
    labels_ = [f"{t}:{label}" for t, label in steps]
    in_order(labels_, ["writer:ext4_map_blocks(block 0, EXT4_GET_BLOCKS_CREATE)", "writer:disksize = ",
                       "writer:ext4_journal_stop(handle)", "kjournald:journal_submit_commit_record"])
    assert not any(label.startswith("ext4_end_bio") for _, label in steps)
    assert "STALE" in rep.outcome.violation.message


# -- the paths, one thread ---------------------------------------------------------------------------


def test_delalloc_write_reserves_and_writeback_allocates(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}])], size=0,
                  file={"max_size": 4096})
    ex = run_serially(sc)
    fs = ex.state
    assert results(ex) == [WriteResult(0, 4096, "DATA(t,1)")]
    assert fs.i_blocks.values[0] == ("hole", None)  # no block at write time
    assert fs.bh_delay.items == {0: "delay"}
    assert (fs.i_size.value, fs.i_disksize.value) == (4096, 0)
    in_order(labels(ex), ["mutex_lock(&inode->i_mutex)", "page = grab_cache_page_write_begin", "lock_page(page 0)",
                          "ext4_da_map_blocks(block 0)", "copied = iov_iter_copy_from_user_atomic",
                          "ext4_da_write_end()", "unlock_page(page)", "mutex_unlock"])


def test_writepages_maps_submits_then_updates_disksize_and_completes(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                    {"op": "writepages"},
                                    {"op": "buffered_read", "offset": 0, "len": 4096}])],
                  size=0, file={"max_size": 4096})
    ex = run_serially(sc)
    fs = ex.state
    state, pblk = fs.i_blocks.values[0]
    assert state == "written"
    assert [fs.dev.values[u] for u in fs.block_units(pblk)] == ["DATA(t,1)"] * 8
    assert fs.i_disksize.value == 4096 and not fs.bh_delay.items and not fs.page_writeback.items
    assert not any(b.dirty for b in fs.page_buffers.items[0])
    assert results(ex)[-1] == ReadResult(0, 4096, ("DATA(t,1)",) * 8, "read")
    in_order(labels(ex), ["pagevec_lookup_tag", "lock_page(page 0)", "ext4_map_blocks(block 0, EXT4_GET_BLOCKS_CREATE)",
                          "mpage_map_and_submit_buffers", "disksize = mpd->first_page", "ext4_io_submit",
                          "ext4_end_bio", "pagevec_lookup_tag"])


def test_write_end_moves_disksize_only_over_a_mapped_block(tmp_path):
    # past EOF in an allocated block: ext4_da_should_update_i_disksize says yes
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 2048, "len": 2048}])],
                  blocks=("written",), size=2048)
    fs = run_serially(sc).state
    assert (fs.i_size.value, fs.i_disksize.value) == (4096, 4096)
    assert not fs.bh_delay.items


def test_truncate_drops_the_delayed_page_and_writeback_finds_nothing(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                    {"op": "truncate", "size": 0},
                                    {"op": "writepages"}])])
    fs = run_serially(sc).state
    assert not fs.page_cache.items and not fs.bh_delay.items
    assert fs.i_blocks.values[0] == ("hole", None)
    assert (fs.i_size.value, fs.i_disksize.value) == (0, 0)


def test_punch_hole_writes_the_dirty_range_out_first(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                    {"op": "punch_hole", "offset": 0, "len": 4096}])])
    ex = run_serially(sc)
    in_order(labels(ex), ["if (mapping->nrpages && mapping_tagged(mapping, PAGECACHE_TAG_DIRTY))",
                          "pagevec_lookup_tag", "ext4_map_blocks(block 0, EXT4_GET_BLOCKS_CREATE)", "ext4_end_bio",
                          "filemap_fdatawait_range", "mutex_lock(&inode->i_mutex)", "down_write(&EXT4_I(inode)"])
    assert ex.state.i_blocks.values[0] == ("hole", None)


def test_fsync_writes_delayed_pages_and_commits_disksize(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}, {"op": "fsync"}])],
                  filesystem="ext4-dax", size=0, file={"max_size": 4096})
    fs = run_serially(sc).state
    disk = fs.journal.committed.value
    assert disk.i_size == 4096 and disk.blocks[0][0] == "written"
    assert [fs.dev.values[u] for u in fs.block_units(disk.blocks[0][1])] == ["DATA(t,1)"] * 8


@pytest.mark.parametrize("kernel, filed", [("4.4", False), ("4.7", True)])
def test_ext4_map_blocks_files_the_inode_from_4_7(tmp_path, kernel, filed):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}, {"op": "writepages"}])],
                  kernel=kernel, filesystem="ext4-dax", size=0, file={"max_size": 4096})
    assert run_serially(sc).state.t_inode_list.value is filed


def test_commit_waits_for_the_ordered_inode_pages_under_writeback(tmp_path):
    sc = scenario(tmp_path, [("w", [{"op": "buffered_write", "offset": 0, "len": 4096}, {"op": "writepages"}]),
                             ("j", [{"op": "journal_commit"}])],
                  kernel="4.7", filesystem="ext4-dax", size=0, file={"max_size": 4096})
    ex = Execution(sc.model, tracing=True)
    w, j = ex.threads
    # the writer up to its bio submission, then the commit as far as it can go
    while not (ex.records and ex.records[-1]["label"].startswith("ext4_io_submit")):
        ex.step(w.tid)
    while ex.is_enabled(j.tid):
        ex.step(j.tid)
    assert not j.finished
    assert ex.records[-1]["label"].startswith("jbd2_journal_write_metadata_buffer")
    assert ex.state.journal.committed.value.blocks[0][0] == "hole"
    ex.step(w.tid)  # ext4_end_bio
    while not j.finished:
        ex.step(j.tid)
    disk = ex.state.journal.committed.value
    assert disk.blocks[0][0] == "written" and disk.i_size == 4096
    assert STALE not in [ex.state.dev.values[u] for u in ex.state.block_units(disk.blocks[0][1])]


# -- the seeds' paths are unchanged without the kernel: key ---------------------------------------------


def test_without_kernel_key_the_seeds_write_allocates_at_write_time(tmp_path):
    sc = scenario(tmp_path, [("t", [{"op": "buffered_write", "offset": 0, "len": 4096}])], kernel=None)
    fs = run_serially(sc).state
    assert fs.i_blocks.values[0][0] != "hole"  # the ext4 flavour's get_block allocated it
    assert not fs.bh_delay.items


def test_releases_are_registered_under_the_seeds_names():
    for name, release in [("generic_file_buffered_write", "4.4"), ("ext4_writepages", "4.4"),
                          ("truncate_inode_pages_range", "4.4"), ("ext4_setattr", "4.4"),
                          ("ext4_punch_hole", "4.4"), ("filemap_write_and_wait", "4.4"),
                          ("journal_commit_transaction", "4.4"), ("ext4_map_blocks", "4.7")]:
        assert release in RELEASES[name]
        assert FUNCTIONS[name].release is None, f"{name}: the seeds' model must stay the default"


# -- 4.4 as read against 4.4.1 ---------------------------------------------------------------------


def test_writeback_zeroes_the_eof_page_past_i_size(tmp_path):
    """mpage_submit_page / ext4_bio_write_page (4.4): the page holding EOF is
    zeroed past i_size before it goes to the bio (zero_user_segment(page,
    len, PAGE_SIZE)), so the old bytes past EOF that the write read in do
    not reach the block again."""
    sc = scenario(tmp_path, [("w", [{"op": "buffered_write", "offset": 0, "len": 512}, {"op": "fsync"}])],
                  blocks=("written",), size=512)
    ex = run_serially(sc)
    fs = ex.state
    pblk = fs.i_blocks.values[0][1]
    assert fs.dev.values[pblk * 8:(pblk + 1) * 8] == ["DATA(w,1)"] + ["ZERO"] * 7
    assert fs.page_cache.items[0] == ("DATA(w,1)",) + ("ZERO",) * 7


def test_a_page_that_does_not_join_the_extent_stays_locked_until_the_bios_are_submitted(tmp_path):
    """mpage_prepare_extent_to_map (4.4): a mapped dirty page after a delayed
    one ends the extent but stays locked; ext4_writepages lets it go
    (mpage_release_unused_pages) after ext4_io_submit, and writes it in the
    next round."""
    sc = scenario(tmp_path, [("w", [{"op": "buffered_write", "offset": 0, "len": 8192}, {"op": "fsync"}])],
                  blocks=("hole", "written"), size=8192)
    ex = run_serially(sc)
    seq = labels(ex)
    in_order(seq, ["lock_page(page 0)", "lock_page(page 1)", "ext4_map_blocks(block 0, EXT4_GET_BLOCKS_CREATE)",
                   "ext4_io_submit(&mpd.io_submit): submit_bio(WRITE, bio of page 0",
                   "mpage_release_unused_pages", "lock_page(page 1)",
                   "ext4_io_submit(&mpd.io_submit): submit_bio(WRITE, bio of page 1"])
    fs = ex.state
    assert all(fs.dev.values[fs.i_blocks.values[b][1] * 8] == "DATA(w,1)" for b in (0, 1))
