"""XFS writeback with its I/O in flight (racecheck/models/xfs_writeback.py,
4.1): the flusher's steps in the kernel's order, the counterexample of
xfs_writeback_vs_punch_no_wait, and that either of the two waits of the
punch (the write-out's filemap_fdatawait_range, truncate_inode_pages_range's
wait_on_page_writeback) keeps the block alone."""

import pytest
import yaml
from conftest import SCENARIOS, counterexample, in_order

from racecheck.execution import Execution
from racecheck.runner import check
from racecheck.scenario import load

PAIR = "xfs_writeback_vs_punch_no_wait"


def _labels_of(tmp_path, ops, kernel='kernel: "4.1"', blocks="[written, written]", size=8192, after=None):
    """Run one thread to its end; (fs state, the labels of its steps).
    ``after``: ``(label prefix, fn)``: ``fn(fs)`` once the step so labelled
    has run."""
    path = tmp_path / "t.yaml"
    path.write_text(f"""
name: t
filesystem: xfs
{kernel}
file: {{size: {size}, max_size: 8192, blocks: {blocks}, dax: false}}
threads:
  - name: a
    ops:
""" + "\n".join(f"      - {op}" for op in ops) + "\ninvariants: []\n")
    ex = Execution(load(path).model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
        if after is not None and ex.records[-1]["label"].startswith(after[0]):
            after[1](ex.state)
            after = None
    return ex.state, [r["label"] for r in ex.records]


def test_the_flusher_puts_the_page_under_writeback_then_the_bio_completes(tmp_path):
    fs, labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 4096}", "{op: writepages}"])
    at = 0
    for p in ("do_writepages(mapping, wbc): write_cache_pages(", "lock_page(page 1); xfs_vm_writepage",
              "xfs_submit_ioend(wbc, ioend, 0): xfs_start_buffer_writeback(bh); submit_bio(",
              "xfs_end_bio(bio): xfs_finish_ioend(ioend): xfs_destroy_ioend(ioend): end_page_writeback(page 1)"):
        at = next(i for i in range(at, len(labels)) if labels[i].startswith(p)) + 1
    assert at == len(labels)
    pblk = fs.i_blocks.values[1][1]
    assert fs.dev.values[pblk * 8:(pblk + 1) * 8] == ["DATA(a,1)"] * 8
    assert fs.page_writeback.items == {} and not any(b.dirty for b in fs.page_buffers.items[1])
    assert dict(fs.ghost.in_flight) == {}


def test_without_a_kernel_key_the_flusher_writes_nothing_back(tmp_path):
    fs, labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 4096}", "{op: writepages}"],
                            kernel="")
    assert any(lb.startswith("->writepages(mapping, wbc): no writeback modelled") for lb in labels)
    assert any(b.dirty for b in fs.page_buffers.items[1])


def test_the_block_is_freed_under_the_bio_without_both_waits():
    """The flusher submits page 1's bio; the punch's write-out finds the page
    clean, neither it nor truncate_inode_pages_range waits, and xfs_bunmapi
    frees block 1 while the bio is in flight."""
    rep = counterexample(PAIR)
    assert rep.outcome.violation.invariant == "no_freed_block_mapped"
    in_order(rep.trace["steps"],
             dict(thread="writer", label="xfs_vm_writepage", change=("PageWriteback[1]", True)),
             dict(thread="writer", label="xfs_submit_ioend"),
             dict(thread="punch", label="filemap_write_and_wait_range(mapping, lstart, lend): write_cache_pages("),
             dict(thread="punch", label="lock_page(page 1)", change=("page_cache[1]", None)),
             dict(thread="punch", label="xfs_bunmapi", change=("owner[1]", "other file")))
    assert "in flight" in rep.outcome.violation.message


@pytest.mark.parametrize("kept", ["xfs_vm_writepages", "truncate_inode_pages_range"])
def test_either_wait_alone_keeps_the_block(tmp_path, kept):
    spec = yaml.safe_load((SCENARIOS / f"{PAIR}.yaml").read_text())
    spec["edits"]["drop"] = [d for d in spec["edits"]["drop"] if d["in"] != kept]
    spec["expect"] = {"verdict": "clean"}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec))
    for reduction in ("dpor", "none"):
        assert check(load(path), reduction=reduction, save_trace=False, do_minimise=False).verdict == "clean"


def test_the_fixed_twin_is_clean_under_exhaustive_exploration_too():
    rep = check(load(SCENARIOS / f"{PAIR}_fixed.yaml"), reduction="none", save_trace=False, do_minimise=False)
    assert rep.verdict == "clean" and rep.outcome.stats.executions > 100


def test_writeback_converts_the_unwritten_extent_a_buffered_write_allocated(tmp_path):
    """The xfs flavour's get_block allocates an unwritten extent for a
    buffered write into a hole; the bio's completion converts it, so the
    data reads back once the page has left the page cache (collapse)."""
    fs, labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}", "{op: writepages}",
                                       "{op: collapse_range, offset: 0, len: 4096}"], blocks="[written, hole]")
    at = 0
    for p in ("xfs_submit_ioend(", "xfs_end_bio(bio): xfs_finish_ioend(ioend): queue_work(mp->m_unwritten_workqueue",
              "xfs_end_io(work): xfs_iomap_write_unwritten(", "xfs_ilock(ip, XFS_MMAPLOCK_EXCL)"):
        at = next(i for i in range(at, len(labels)) if labels[i].startswith(p) or p in labels[i]) + 1
    state, pblk = fs.i_blocks.values[0]
    assert state == "written" and fs.dev.values[pblk * 8] == "DATA(a,1)" and 0 not in fs.page_cache.items


@pytest.mark.parametrize("kernel", ['kernel: "4.1"', 'kernel: "4.10"'])
def test_fsync_writes_back_through_xfs_vm_writepages(tmp_path, kernel):
    """fsync's filemap_write_and_wait of an XFS page-cache file is
    xfs_vm_writepages (4.1; at 4.10 through dax_entry's and writeback's
    releases, which run the release before for such a file): the written
    extent is converted, and the data survives a collapse that drops the page."""
    fs, labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}", "{op: fsync}",
                                       "{op: collapse_range, offset: 0, len: 4096}"], kernel=kernel,
                            blocks="[written, hole]")
    assert any(lb.startswith("filemap_write_and_wait_range(mapping, lstart, lend): write_cache_pages")
               for lb in labels)
    state, pblk = fs.i_blocks.values[0]
    assert state == "written" and fs.dev.values[pblk * 8] == "DATA(a,1)"


def test_the_unwritten_extent_is_converted_after_the_data_reached_it(tmp_path):
    """xfs_end_bio queues the ioend of an unwritten extent; between the bio's
    completion and xfs_end_io the block holds the data, the extent is still
    unwritten and the page still under writeback."""
    seen = {}

    def look(fs):
        pblk = fs.i_blocks.values[1][1]
        seen.update(state=fs.i_blocks.values[1][0], unit=fs.dev.values[pblk * 8],
                    writeback=dict(fs.page_writeback.items), in_flight=dict(fs.ghost.in_flight))

    fs, labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}", "{op: writepages}"],
                            blocks="[written, hole]", after=("xfs_end_bio(bio): xfs_finish_ioend(ioend): queue_work", look))
    assert seen == {"state": "unwritten", "unit": "DATA(a,1)", "writeback": {1: True}, "in_flight": {}}
    assert fs.i_blocks.values[1][0] == "written" and fs.page_writeback.items == {}


def test_the_page_that_holds_eof_is_zeroed_past_it_before_the_bio(tmp_path):
    """xfs_vm_writepage: zero_user_segment(page, offset_into_page, PAGE_SIZE)
    on the page that holds EOF (6144: 2048 bytes into page 1)."""
    fs, _ = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}", "{op: writepages}"], size=6144)
    pblk = fs.i_blocks.values[1][1]
    assert fs.dev.values[pblk * 8:(pblk + 1) * 8] == ["DATA(a,1)"] + ["DATA(init,0)"] * 3 + ["ZERO"] * 4
    assert fs.page_cache.items[1][4:] == ("ZERO",) * 4


def test_a_page_past_eof_is_redirtied_without_io(tmp_path):
    """i_size falls to 4096 (as truncate_setsize does before it drops the
    pages) after the write dirtied page 1: xfs_vm_writepage redirties it and
    unlocks it; no writeback, no bio."""
    fs, labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}", "{op: writepages}"],
                            after=("mutex_unlock", lambda fs: fs.i_size.set(4096)))
    assert labels[-1].startswith("lock_page(page 1); xfs_vm_writepage")
    assert fs.page_buffers.items[1][0].dirty and fs.page_writeback.items == {}
    assert fs.dev.values[8:16] == ["DATA(init,0)"] * 8 and not fs.page_lock[1].owner


def test_a_page_dirtied_after_the_lookup_waits_for_the_next_pass(tmp_path):
    """write_cache_pages looks the dirty pages of the range up before it
    locks the first: page 0, dirtied after the lookup of the second
    writepages, is not written by that pass; page 1 is."""
    from racecheck.models.buffered import set_buffer

    passes = []

    def hook(fs):
        passes.append(1)
        if len(passes) == 2:
            set_buffer(fs, 0, 0, dirty=True)

    ops = ["{op: buffered_write, offset: 0, len: 512}", "{op: writepages}",
           "{op: buffered_write, offset: 4096, len: 512}", "{op: writepages}"]
    path = tmp_path / "t.yaml"
    path.write_text("""
name: t
filesystem: xfs
kernel: "4.1"
file: {size: 8192, blocks: [written, written], dax: false}
threads:
  - name: a
    ops:
""" + "\n".join(f"      - {op}" for op in ops) + "\ninvariants: []\n")
    ex = Execution(load(path).model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
        if ex.records[-1]["label"].startswith("do_writepages(mapping, wbc): write_cache_pages("):
            hook(ex.state)
    fs = ex.state
    labels = [r["label"] for r in ex.records]
    assert len(passes) == 2 and labels.count("lock_page(page 0); xfs_vm_writepage(page, wbc)") == 1
    assert fs.page_buffers.items[0][0].dirty and not fs.page_buffers.items[1][0].dirty
    assert fs.dev.values[8] == "DATA(a,3)"
