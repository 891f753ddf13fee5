"""The buffered read of 5.15 under invalidate_lock (racecheck/models/filemap_read.py):
the read alone takes the steps of filemap_read, readahead and
filemap_create_page in the kernel's order; each pair's counterexample shows
the page brought in after the punch dropped the page cache and read from
the block the punch frees; the fixed twins are clean; before 5.15 the read
takes no lock, and XFS's read is kept out by its IOLOCK."""

import pytest
from conftest import SCENARIOS, counterexample, in_order

from racecheck.execution import Execution
from racecheck.runner import check
from racecheck.scenario import load

FILE = """name: t
filesystem: {fs}
kernel: "{kernel}"
file:
  size: 8192
  blocks: [written, written]
  dax: false
threads:
  - name: a
    ops:
{ops}
{edits}
invariants: [no_freed_block_mapped, no_stale_data]
"""


def scenario(tmp_path, ops, fs="ext4", kernel="5.15", edits=""):
    path = tmp_path / "t.yaml"
    path.write_text(FILE.format(fs=fs, kernel=kernel, edits=edits,
                                ops="\n".join(f"      - {op}" for op in ops)))
    return load(path)


def run_alone(tmp_path, ops, **kw):
    ex = Execution(scenario(tmp_path, ops, **kw).model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    return ex.state, [h["result"] for h in ex.rt.history if h["kind"] == "return"], ex.records


def test_read_of_two_pages_reads_them_ahead_under_the_lock(tmp_path):
    fs, (r,), steps = run_alone(tmp_path, ["{op: buffered_read, offset: 0, len: 8192}"])
    assert r.units == ("DATA(init,0)",) * 16 and r.nbytes == 8192
    in_order(steps,
             dict(function="page_cache_ra_unbounded", change=("invalidate_lock",)),
             dict(label="__SetPageLocked(page 0)", change=("page_lock[0]",)),
             dict(label="__SetPageLocked(page 1)", change=("page_lock[1]",)),
             dict(label="block_read_full_page(page 0)"),
             dict(label="block_read_full_page(page 1)"),
             dict(label="filemap_invalidate_unlock_shared", change=("invalidate_lock",)),
             dict(label="copy_page_to_iter(page 0"),
             dict(label="copy_page_to_iter(page 1"))
    assert not any(s["function"] == "filemap_create_page" for s in steps)
    assert fs.invalidate_lock.writer is None and not fs.invalidate_lock.readers


def test_readahead_window_stops_at_eof_and_a_cached_page_is_copied_without_the_lock(tmp_path):
    fs, (r1, r2), steps = run_alone(tmp_path, ["{op: buffered_read, offset: 4096, len: 512}",
                                               "{op: buffered_read, offset: 4096, len: 512}"])
    assert r1.units == r2.units == ("DATA(init,0)",)
    assert sorted(fs.page_cache.items) == [1]  # the window was page 1 alone
    took = [i for i, s in enumerate(steps) if "invalidate_lock" in str(s["changes"])]
    copies = [i for i, s in enumerate(steps) if s["label"].startswith("copy_page_to_iter")]
    assert len(took) == 2 and took[-1] < copies[0]  # taken and let go once, by the first read


def test_before_5_15_the_read_is_the_seeds_without_a_lock(tmp_path):
    fs, (r,), steps = run_alone(tmp_path, ["{op: buffered_read, offset: 4096, len: 512}"], kernel="4.5")
    assert r.units == ("DATA(init,0)",)
    assert not any(s["function"] in ("page_cache_ra_unbounded", "filemap_read_5_15") for s in steps)
    assert not any("invalidate_lock" in str(s["changes"]) for s in steps)


def test_xfs_read_holds_the_iolock(tmp_path):
    fs, (r,), steps = run_alone(tmp_path, ["{op: buffered_read, offset: 4096, len: 512}"], fs="xfs")
    assert r.units == ("DATA(init,0)",)
    in_order(steps, dict(label="xfs_ilock(ip, XFS_IOLOCK_SHARED)", change=("i_mutex",)),
             dict(function="page_cache_ra_unbounded"),
             dict(label="xfs_iunlock(ip, XFS_IOLOCK_SHARED)", change=("i_mutex",)))


@pytest.mark.parametrize("name, creator", [
    ("readahead_vs_ext4_punch_no_invalidate_lock", "page_cache_ra_unbounded"),
    ("filemap_create_page_vs_ext4_punch_no_invalidate_lock", "filemap_create_page"),
    ("buffered_read_vs_ext4_punch_no_invalidate_lock", "page_cache_ra_unbounded"),
    ("buffered_read_vs_ext4_punch_4_5", "do_generic_mapping_read"),
])
def test_the_read_brings_page_1_in_from_the_block_the_punch_frees(name, creator):
    rep = counterexample(name)
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_stale_data" and "STALE" in v.message
    drop, add, get, free, read = in_order(
        steps,
        dict(thread="punch", label="pagevec_lookup"),  # truncate_pagecache_range
        dict(thread="reader", function=creator, change=("page_cache[1]",)),
        dict(thread="reader", label="ext4_get_block(block 1, create=0)"),
        dict(thread="punch", change=("owner[1]", "other file")),
        dict(thread="reader", label="submit_bh(READ, bh)"))


@pytest.mark.parametrize("name", ["readahead_vs_ext4_punch_no_invalidate_lock",
                                  "filemap_create_page_vs_ext4_punch_no_invalidate_lock",
                                  "buffered_read_vs_ext4_punch_no_invalidate_lock"])
def test_the_twin_with_the_lock_is_clean(name):
    assert check(load(SCENARIOS / f"{name}_fixed.yaml"), save_trace=False).verdict == "clean"


def test_xfs_read_is_kept_out_by_the_iolock_even_without_invalidate_lock(tmp_path):
    """XFS's punch holds XFS_IOLOCK_EXCL (the model's i_mutex), its read the
    IOLOCK shared: without invalidate_lock in the punch the read still
    cannot run inside it (why 730633f0b7f9's race was ext4's, not XFS's)."""
    path = tmp_path / "t.yaml"
    path.write_text((SCENARIOS / "buffered_read_vs_ext4_punch_no_invalidate_lock.yaml").read_text()
                    .replace("filesystem: ext4", "filesystem: xfs")
                    .replace("in: ext4_punch_hole", "in: xfs_file_fallocate")
                    .replace("verdict: violation\n  invariant: no_stale_data", "verdict: clean"))
    assert check(load(path), save_trace=False).verdict == "clean"


# -- XFS 4.1: the IOLOCK keeps reads out of fallocate ------------------------------------------------


def test_xfs_4_1_read_holds_the_iolock_around_the_seeds_read(tmp_path):
    fs, (r,), steps = run_alone(tmp_path, ["{op: buffered_read, offset: 4096, len: 512}"], fs="xfs", kernel="4.1")
    assert r.units == ("DATA(init,0)",)
    in_order(steps, dict(label="xfs_rw_ilock(ip, XFS_IOLOCK_SHARED)", change=("i_mutex",)),
             dict(label="block_read_full_page(page 1)"),
             dict(label="xfs_rw_iunlock(ip, XFS_IOLOCK_SHARED)", change=("i_mutex",)))


@pytest.mark.parametrize("name", ["xfs_read_vs_punch_no_iolock", "xfs_read_no_iolock_vs_punch"])
def test_xfs_4_1_read_without_the_iolock_reads_the_block_the_punch_frees(name):
    rep = counterexample(name)
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_stale_data"
    in_order(steps,
             dict(thread="punch", label="xfs_ilock(ip, XFS_MMAPLOCK_EXCL)"),
             dict(thread="punch", label="pagevec_lookup"),
             dict(thread="reader", change=("page_cache[1]",)),
             dict(thread="reader", label="(block 1, create=0)"),
             dict(thread="punch", change=("owner[1]", "other file")),
             dict(thread="reader", label="submit_bh(READ, bh)"))
    assert check(load(SCENARIOS / f"{name}_fixed.yaml"), save_trace=False).verdict == "clean"


@pytest.mark.parametrize("blocks", ["[hole, written]", "[written, hole]"])
def test_two_readers_of_one_file_add_each_page_once(tmp_path, blocks):
    """Both readers' readahead looks page i up, then locks a new page for
    it: the one that comes second finds the other's page in the cache and
    its insertion fails (add_to_page_cache_lru's -EEXIST). Added over the
    first reader's page, the second would read a hole's block again from
    the device and the first would copy it: no_stale_data."""
    path = tmp_path / "t.yaml"
    path.write_text(FILE.format(fs="ext4", kernel="5.15", edits="", ops="      - {op: buffered_read, offset: 0, len: 8192}")
                    .replace("blocks: [written, written]", f"blocks: {blocks}")
                    .replace("  - name: a\n", "  - name: b\n    ops:\n      - {op: buffered_read, offset: 0, len: 8192}\n  - name: a\n"))
    assert check(load(path), save_trace=False).verdict == "clean"
