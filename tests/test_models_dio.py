"""Direct I/O, unwritten extents, fallocate, hole punch and truncate
(models/dio.py, models/extents.py, models/truncate.py).

The scenario tests check that each buggy scenario's minimised counterexample
shows the racing steps RACES.md names, in order. The unit tests run one
thread (or a schedule given step by step) and look at the state."""

import pytest
from conftest import counterexample, find

from racecheck.execution import Execution
from racecheck.models.fs import HOLE, UNWRITTEN, WRITTEN, ZERO, ReadResult, WriteResult
from racecheck.runtime import Violation
from racecheck.scenario import load

# -- helpers --------------------------------------------------------------------------


def zeroes_data(change):
    name, old, new = change
    return name.startswith("dev[") and str(old).startswith("DATA(") and new == ZERO


FILE = {"ext4": "filesystem: ext4\n", "ext2": "filesystem: ext2\n"}


def scenario(tmp_path, threads, fs="ext4", size=4096, blocks="[hole]", dax=True, fixes="[]",
             invariants="[no_zero_overwrite]"):
    text = (f"name: t\n{FILE[fs]}file:\n  size: {size}\n  blocks: {blocks}\n"
            f"  dax: {str(dax).lower()}\nthreads:\n")
    for name, ops in threads:
        text += f"  - name: {name}\n    ops:\n"
        for op in ops:
            text += f"      - {op}\n"
    text += f"fixes: {fixes}\ninvariants: {invariants}\n"
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return load(path)


def run_alone(sc):
    """Run the scenario's threads one after the other, each to its end.
    Returns (fs, results of every operation in order, trace records)."""
    ex = Execution(sc.model, tracing=True)
    for t in ex.threads:
        while not t.finished:
            ex.step(t.tid)
    results = [h["result"] for h in ex.rt.history if h["kind"] == "return"]
    return ex.state, results, ex.records


def device_block(fs, block):
    state, pblk = fs.i_blocks.values[block]
    upb = fs.geo.units_per_block
    return state, tuple(fs.dev.values[pblk * upb:(pblk + 1) * upb])


def labels(records):
    return [(r["thread"], r["function"], r["label"]) for r in records]


def index_of(records, text, start=0):
    for i in range(start, len(records)):
        if text in records[i]["label"]:
            return i
    raise AssertionError(f"no step labelled {text!r}:\n" + "\n".join(map(str, labels(records))))


# -- race 9: ext4_map_blocks zeroes on the conversion ------------------------------------


def test_race9_counterexample_zeroes_after_the_copy():
    steps = counterexample("ext4_convert_zeroes_data").trace["steps"]
    falloc = find(steps, thread="falloc", label="EXT4_GET_BLOCKS_CREATE_UNINIT_EXT")
    mapped = find(steps, falloc, thread="writer", label="EXT4_GET_BLOCKS_IO_CREATE_EXT")
    copy = find(steps, mapped, thread="writer", label="__copy_from_user_nocache")
    convert = find(steps, copy, thread="writer", label="EXT4_GET_BLOCKS_IO_CONVERT_EXT",
                   change=zeroes_data)
    assert steps[convert]["function"] == "ext4_map_blocks"


def test_race9_partial_write_alone(tmp_path):
    """Ross Zwisler's reproducer: fallocate a page, write into it: as posted
    the block is all zeros; with his one-liner the data is there."""
    ops = [("t", ["{op: fallocate, offset: 0, len: 4096}", "{op: dio_write, offset: 1024, len: 1024}"])]
    fs, results, _ = run_alone(scenario(tmp_path, ops, size=0, invariants="[]"))
    assert results[1] == WriteResult(1024, 1024, "DATA(t,2)")
    assert device_block(fs, 0) == (WRITTEN, (ZERO,) * 8)

    fs, results, _ = run_alone(scenario(tmp_path, ops, size=0, fixes="[ext4_no_zero_on_convert]"))
    assert device_block(fs, 0) == (WRITTEN, (ZERO,) * 2 + ("DATA(t,2)",) * 2 + (ZERO,) * 4)


def test_dax_extending_write_is_not_converted(tmp_path):
    """A write past i_size takes ext4_ind_direct_IO: ext4_get_block
    (EXT4_GET_BLOCKS_CREATE) allocates a written, zeroed block; i_size grows."""
    fs, results, records = run_alone(scenario(
        tmp_path, [("t", ["{op: dio_write, offset: 1024, len: 1024}"])], size=0))
    assert results == [WriteResult(1024, 1024, "DATA(t,1)")]
    assert fs.i_size.value == 2048
    assert device_block(fs, 0) == (WRITTEN, (ZERO,) * 2 + ("DATA(t,1)",) * 2 + (ZERO,) * 4)
    assert not any("CONVERT" in r["label"] for r in records)


# -- race 10: unaligned AIO+DIO sub-block zeroing (seed 003) --------------------------------


def test_race10_counterexample():
    steps = counterexample("unaligned_dio_zeroing").trace["steps"]
    first = find(steps, label="EXT4_GET_BLOCKS_IO_CREATE_EXT",
                 change=lambda c: c[0] == "i_blocks[0]" and c[2][0] == UNWRITTEN)
    other = "aio2" if steps[first]["thread"] == "aio1" else "aio1"
    submitted = find(steps, first, thread=steps[first]["thread"], function="dio_bio_submit")
    unlocked = find(steps, submitted, thread=steps[first]["thread"], label="mutex_unlock")
    # the second write maps the block while it is still unwritten: buffer_new again
    second = find(steps, unlocked, thread=other, label="EXT4_GET_BLOCKS_IO_CREATE_EXT")
    assert not any(c[0].startswith("i_blocks") for c in steps[second]["changes"])
    # a bio lands and its zeros replace data the other write put there
    find(steps, second, function="dio_bio_end_io", change=zeroes_data)


def test_race10_with_seed_003_tracking_the_guard_ends_before_the_conversion():
    steps = counterexample("unaligned_dio_zeroing_tracking").trace["steps"]
    guard = find(steps, function="dio_start_zero_block")
    owner = steps[guard]["thread"]
    other = "aio2" if owner == "aio1" else "aio1"
    ended = find(steps, guard, thread=owner, function="dio_end_zero_block")
    mapped = find(steps, ended, thread=other, label="EXT4_GET_BLOCKS_IO_CREATE_EXT")
    looked = find(steps, mapped, thread=other, function="dio_wait_zero_block")
    assert steps[looked]["label"].startswith("dio_wait_zero_block(): spin_lock")  # found nothing: no wait
    find(steps, looked, thread=other, function="dio_start_zero_block")
    wiped = find(steps, looked, thread=other, function="dio_bio_end_io", change=zeroes_data)
    find(steps, wiped, thread=owner, label="EXT4_GET_BLOCKS_IO_CONVERT_EXT")


def test_subblock_counterexample():
    steps = counterexample("unaligned_dio_subblock").trace["steps"]
    sub = find(steps, thread="sub", label="EXT4_GET_BLOCKS_IO_CREATE_EXT")
    tail = find(steps, sub, thread="tail", label="EXT4_GET_BLOCKS_IO_CREATE_EXT")
    wiped = find(steps, tail, function="dio_bio_end_io", change=zeroes_data)
    # in the minimal schedule tail's bio lands first (its front zeroes cover
    # units 2-3, where sub's data has not landed yet) and sub's bio, which
    # zeroes both the front and the rear of the block, wipes tail's data
    assert steps[wiped]["thread"] == "sub"
    assert ["dev[5]", "DATA(tail,1)", ZERO] in steps[wiped]["changes"]


def test_unaligned_aio_write_alone(tmp_path):
    """One unaligned AIO write into a hole: zeroes around its data, the extent
    converted, acknowledged only after the conversion, i_mutex dropped once
    the I/O was submitted."""
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 1024, len: 1024, aio: true}"])], dax=False)
    fs, results, records = run_alone(sc)
    assert results == [WriteResult(1024, 1024, "DATA(w,1)")]
    assert device_block(fs, 0) == (WRITTEN, (ZERO,) * 2 + ("DATA(w,1)",) * 2 + (ZERO,) * 4)
    submit = index_of(records, "submit_bio")
    unlock = index_of(records, "mutex_unlock(&inode->i_mutex)", submit)
    landed = index_of(records, "dio_bio_end_aio", unlock)
    convert = index_of(records, "EXT4_GET_BLOCKS_IO_CONVERT_EXT", landed)
    assert index_of(records, "aio_complete", convert) == len(records) - 1
    assert fs.i_dio_count.value == 0 and fs.i_mutex.owner is None


def test_sync_write_converts_under_i_mutex(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 1024, len: 1024}"])], dax=False)
    fs, results, records = run_alone(sc)
    assert results == [WriteResult(1024, 1024, "DATA(w,1)")]
    landed = index_of(records, "dio_await_completion")
    convert = index_of(records, "EXT4_GET_BLOCKS_IO_CONVERT_EXT", landed)
    index_of(records, "mutex_unlock(&inode->i_mutex)", convert)


def test_subblock_io_does_not_wait_for_its_own_guard(tmp_path):
    """Seed 003: a sub-block I/O sets one guard, for the front, and neither
    waits for it nor sets another at the rear."""
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 1024, len: 1024, aio: true}"])], dax=False,
                  fixes="[zero_block_tracking]")
    fs, results, records = run_alone(sc)
    assert results == [WriteResult(1024, 1024, "DATA(w,1)")]
    assert [r["function"] for r in records].count("dio_start_zero_block") == 1
    assert [r["function"] for r in records].count("dio_end_zero_block") == 1
    assert fs.dio_zero_blocks.value == ()


def test_tracking_sub_block_io_that_waited_still_zeroes_its_rear(tmp_path):
    """A second hole in seed 003's fix: a sub-block I/O whose front finds
    another I/O's guard waits and skips the front, but its rear finds no
    guard any more (the other I/O completed) and zeroes units 2-7, over the
    other I/O's data in units 4-7."""
    sc = scenario(tmp_path, [("sub", ["{op: dio_write, offset: 512, len: 512, aio: true}"]),
                             ("tail", ["{op: dio_write, offset: 2048, len: 2048, aio: true}"])],
                  dax=False, fixes="[zero_block_tracking]")
    ex = Execution(sc.model, tracing=True)
    sub, tail = ex.threads

    def run_until(t, stop):
        while not t.finished and ex.is_enabled(t.tid) and not stop():
            ex.step(t.tid)

    last = lambda: ex.records[-1]["label"] if ex.records else ""
    # tail submits its I/O (guard on block 0) and drops i_mutex
    run_until(tail, lambda: ex.records and ex.records[-1]["thread"] == "tail"
              and "mutex_unlock(&inode->i_mutex)" in last())
    # sub maps the block (new), finds tail's guard and waits, holding i_mutex
    run_until(sub, lambda: False)
    assert "wait_event(zb->wq" in sub.pending.label
    # tail's bio completes and its guard ends; its conversion waits for i_mutex
    run_until(tail, lambda: False)
    assert not tail.finished and "mutex_lock(&inode->i_mutex)" in tail.pending.label
    with pytest.raises(Violation) as v:
        run_until(sub, lambda: False)
        run_until(tail, lambda: False)
    assert v.value.invariant == "no_zero_overwrite"
    assert "tail's dio_write" in v.value.message
    sub_bio = next(r for r in ex.records if r["thread"] == "sub" and r["function"] == "dio_bio_end_io")
    assert ["dev[4]", "DATA(tail,1)", ZERO] in sub_bio["changes"]
    assert not any(c[0] == "dev[0]" for c in sub_bio["changes"])  # the front was skipped


def test_aligned_dio_does_not_zero(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 0, len: 4096, aio: true}"])], dax=False,
                  fixes="[zero_block_tracking]")
    fs, results, records = run_alone(sc)
    assert device_block(fs, 0) == (WRITTEN, ("DATA(w,1)",) * 8)
    assert "dio_wait_zero_block" not in [r["function"] for r in records]


def test_dio_read_page_cache_file(tmp_path):
    """Unwritten extents read as zeros, holes too, the read stops at i_size."""
    sc = scenario(tmp_path, [("r", ["{op: dio_read, offset: 0, len: 8192}"])], size=6144,
                  blocks="[unwritten, written]", dax=False)
    fs, results, _ = run_alone(sc)
    assert results == [ReadResult(0, 6144, (ZERO,) * 8 + ("DATA(init,0)",) * 4)]

    sc = scenario(tmp_path, [("r", ["{op: dio_read, offset: 512, len: 1024}"])], size=8192,
                  blocks="[hole, written]", dax=False)
    fs, results, _ = run_alone(sc)
    assert results == [ReadResult(512, 1024, (ZERO, ZERO))]


def test_unaligned_dio_write_then_read(tmp_path):
    sc = scenario(tmp_path, [("t", ["{op: dio_write, offset: 512, len: 1536}",
                                    "{op: dio_read, offset: 0, len: 4096}"])], dax=False)
    fs, results, _ = run_alone(sc)
    assert results[1] == ReadResult(0, 4096, (ZERO,) + ("DATA(t,1)",) * 3 + (ZERO,) * 4)


# -- fallocate, hole punch, truncate --------------------------------------------------------


def test_fallocate(tmp_path):
    fs, results, _ = run_alone(scenario(
        tmp_path, [("t", ["{op: fallocate, offset: 0, len: 6000}"])], size=0, blocks="[hole, hole]"))
    assert results == [0]
    assert [s for s, _ in fs.i_blocks.values] == [UNWRITTEN, UNWRITTEN]
    assert fs.i_size.value == 6000
    fs, _, _ = run_alone(scenario(
        tmp_path, [("t", ["{op: fallocate, offset: 0, len: 4096, keep_size: true}"])], size=0))
    assert fs.i_size.value == 0 and fs.i_blocks.values[0][0] == UNWRITTEN
    _, results, _ = run_alone(scenario(
        tmp_path, [("t", ["{op: fallocate, offset: 0, len: 4096}"])], fs="ext2"))
    assert results == ["-EOPNOTSUPP"]


def test_punch_hole_whole_block(tmp_path):
    sc = scenario(tmp_path, [("t", ["{op: mmap_load, offset: 4096}", "{op: punch_hole, offset: 4096, len: 4096}"])],
                  size=8192, blocks="[written, written]", invariants="[no_freed_block_mapped]")
    fs, results, _ = run_alone(sc)
    assert results[1] == 0
    assert fs.i_blocks.values[1] == (HOLE, None)
    assert fs.i_blocks.values[0][0] == WRITTEN
    assert 1 not in fs.ptes["shared"].items  # unmapped before the block was freed
    assert fs.i_size.value == 8192


def test_punch_hole_partial_block_as_posted(tmp_path):
    """As posted, xip_zero_page_range returns xip_get_addr()'s (positive)
    length without zeroing, and ext4_punch_hole takes it for an error.
    With v6's err < 0 test it zeroes, and the XIP path of
    ext4_block_zero_page_range does not clamp to the block: the head of the
    range, [2048, 2048 + 4096), runs into the next device block, past the
    end of the hole at 5120."""
    ops = [("t", ["{op: punch_hole, offset: 2048, len: 3072}"])]
    fs, results, _ = run_alone(scenario(tmp_path, ops, size=8192, blocks="[written, written]"))
    assert results == [4096]
    assert device_block(fs, 0)[1] == ("DATA(init,0)",) * 8
    assert device_block(fs, 1)[1] == ("DATA(init,0)",) * 8

    fs, results, _ = run_alone(scenario(tmp_path, ops, size=8192, blocks="[written, written]",
                                        fixes="[xip_get_addr_err_lt_0]"))
    assert results == [0]
    assert device_block(fs, 0)[1] == ("DATA(init,0)",) * 4 + (ZERO,) * 4
    assert device_block(fs, 1)[1] == (ZERO,) * 4 + ("DATA(init,0)",) * 4


def test_ext4_truncate_order(tmp_path):
    """ext4_setattr writes i_size before inode_dio_wait, then
    truncate_pagecache, then ext4_truncate frees the blocks past EOF."""
    sc = scenario(tmp_path, [("t", ["{op: truncate, size: 4096}"])], size=8192, blocks="[written, written]")
    fs, results, records = run_alone(sc)
    assert results == [0]
    size = index_of(records, "i_size_write")
    wait = index_of(records, "inode_dio_wait", size)
    index_of(records, "ext4_ext_truncate", wait)
    assert fs.i_blocks.values[1] == (HOLE, None) and fs.i_size.value == 4096
    assert fs.owner.values[1] != 1


def test_ext4_truncate_removes_fallocated_blocks_past_eof(tmp_path):
    sc = scenario(tmp_path, [("t", ["{op: fallocate, offset: 4096, len: 4096, keep_size: true}",
                                    "{op: truncate, size: 4096}"])], size=4096, blocks="[written, hole]")
    fs, results, _ = run_alone(sc)
    assert fs.i_blocks.values[1] == (HOLE, None)


def test_unaligned_truncate_as_posted_fails(tmp_path):
    """ext2_setsize returns what xip_truncate_page returns: as posted, the
    positive length from xip_get_addr(), before changing anything."""
    ops = [("t", ["{op: truncate, size: 1024}"])]
    fs, results, _ = run_alone(scenario(tmp_path, ops, fs="ext2", size=8192, blocks="[written, written]"))
    assert results == [4096] and fs.i_size.value == 8192
    fs, results, _ = run_alone(scenario(tmp_path, ops, fs="ext2", size=8192, blocks="[written, written]",
                                        fixes="[xip_get_addr_err_lt_0]"))
    assert results == [0] and fs.i_size.value == 1024
    assert device_block(fs, 0)[1] == ("DATA(init,0)",) * 2 + (ZERO,) * 6
    assert fs.i_blocks.values[1] == (HOLE, None)


def test_punch_hole_vs_fault_counterexample():
    steps = counterexample("punch_hole_vs_fault").trace["steps"]
    unmap = find(steps, thread="punch", function="unmap_mapping_range")
    looked = find(steps, unmap, thread="fault", label="ext4_get_block(block 1")
    mapped = find(steps, looked, thread="fault", label="vm_insert_mixed")
    find(steps, mapped, thread="punch", label="ext4_ext_remove_space",
         change=lambda c: c[0] == "i_blocks[1]" and c[2][0] == HOLE)


# -- direct I/O and the page cache of the same file ---------------------------------------------


@pytest.mark.parametrize("fs", ["ext2", "ext4"])
def test_dio_read_writes_the_page_cache_back_first(tmp_path, fs):
    """generic_file_aio_read (2.6.36), O_DIRECT: "retval =
    filemap_write_and_wait_range(mapping, pos, pos + iov_length(iov,
    nr_segs) - 1)" before ->direct_IO (and __blockdev_direct_IO again under
    i_mutex with DIO_LOCKING): a direct read after a buffered write that
    returned sees its data, not the block's older contents."""
    sc = scenario(tmp_path, [("a", ["{op: buffered_write, offset: 0, len: 1024}",
                                    "{op: dio_read, offset: 0, len: 1024}"])],
                  fs=fs, blocks="[written]", dax=False, invariants="[no_lost_write, no_stale_data]")
    fs_, results, records = run_alone(sc)
    assert results[1] == ReadResult(0, 1024, ("DATA(a,1)", "DATA(a,1)"))
    assert any("->writepage" in r["label"] for r in records)
    assert not any(b.dirty for b in fs_.page_buffers.items[0])  # written back, clean


def test_dio_write_invalidates_the_page_cache(tmp_path):
    """generic_file_direct_write (2.6.36): filemap_write_and_wait_range, then
    invalidate_inode_pages2_range before and after ->direct_IO ("After a
    write we want buffered reads to be sure to go to disk to get the new
    data"): a buffered read after the direct write sees it."""
    sc = scenario(tmp_path, [("a", ["{op: buffered_write, offset: 0, len: 1024}",
                                    "{op: dio_write, offset: 0, len: 1024}",
                                    "{op: buffered_read, offset: 0, len: 2048}"])],
                  fs="ext2", blocks="[written]", dax=False, invariants="[no_lost_write, no_stale_data]")
    fs_, results, _ = run_alone(sc)
    assert results[2] == ReadResult(0, 2048, ("DATA(a,2)",) * 2 + ("DATA(init,0)",) * 2)


def test_page_cache_and_direct_io_pass_every_check(tmp_path):
    from racecheck.runner import check
    sc = scenario(tmp_path, [("a", ["{op: buffered_write, offset: 0, len: 1024}",
                                    "{op: dio_read, offset: 0, len: 1024}"]),
                             ("b", ["{op: dio_write, offset: 1024, len: 1024}",
                                    "{op: buffered_read, offset: 0, len: 2048}"])],
                  fs="ext2", blocks="[written]", dax=False, invariants="[no_lost_write, no_stale_data]")
    assert check(sc, save_trace=False).verdict == "clean"
