"""Direct I/O through fs/iomap.c (models/iomap_dio.py): XFS at 4.10, ext4 at
5.5, reached by a scenario's ``kernel:`` key; the ``stale`` block state; the
invariants ``eof_zeroed`` and ``size_visible_data``.

The scenario tests check that each buggy scenario's minimised counterexample
shows the racing steps, in order. The unit tests run the threads one after
the other and look at the state, or run a small scenario to its verdict."""

from conftest import counterexample, find

from racecheck.execution import Execution
from racecheck.models.fs import STALE, UNWRITTEN, WRITTEN, ZERO, ReadResult, WriteResult
from racecheck.runner import check
from racecheck.scenario import load
from racecheck.scenario_file import ScenarioError

FS = {"xfs": 'filesystem: xfs\nkernel: "4.10"\n', "ext4": 'filesystem: ext4\nkernel: "5.5"\n',
      "xfs-seeds": "filesystem: xfs\n"}


def scenario(tmp_path, threads, fs="xfs", size=4096, blocks="[hole]", max_size=None, fixes="[]",
             invariants="[no_zero_overwrite]", edits=""):
    text = (f"name: t\n{FS[fs]}file:\n  size: {size}\n  blocks: {blocks}\n  dax: false\n"
            + (f"  max_size: {max_size}\n" if max_size else "") + "threads:\n")
    for name, ops in threads:
        text += f"  - name: {name}\n    ops:\n"
        for op in ops:
            text += f"      - {op}\n"
    text += f"fixes: {fixes}\ninvariants: {invariants}\n{edits}"
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return load(path)


def run_alone(sc):
    """Run the threads one after the other; (fs, results in order, trace records)."""
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


def functions(records):
    return [r["function"] for r in records]


def zeroes_data(change):
    name, old, new = change
    return name.startswith("dev[") and str(old).startswith("DATA(") and new == ZERO


# -- the kernel: key reaches iomap; without it, the seeds' code -------------------------------


def test_kernel_key_picks_iomap_for_xfs(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 0, len: 1536}"])])
    fs, results, records = run_alone(sc)
    assert "iomap_dio_rw" in functions(records) and "xfs_file_dio_aio_write" in functions(records)
    assert "__blockdev_direct_IO" not in functions(records)
    assert results == [WriteResult(0, 1536, "DATA(w,1)")]
    # a new unwritten block: head written, the rest zeroed, then converted
    assert device_block(fs, 0) == (WRITTEN, ("DATA(w,1)",) * 3 + (ZERO,) * 5)


def test_without_kernel_key_the_seeds_path_runs(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 0, len: 1536}"])], fs="xfs-seeds")
    _, _, records = run_alone(sc)
    assert "__blockdev_direct_IO" in functions(records) and "iomap_dio_rw" not in functions(records)


def test_ext4_5_5_unaligned_write_and_read(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 2560, len: 1536}"]),
                             ("r", ["{op: dio_read, offset: 0, len: 4096}"])], fs="ext4")
    fs, results, records = run_alone(sc)
    assert "ext4_dio_write_iter" in functions(records) and "ext4_iomap_begin" in functions(records)
    assert results[1] == ReadResult(0, 4096, (ZERO,) * 5 + ("DATA(w,1)",) * 3)
    assert fs.i_blocks.values[0][0] == WRITTEN


def test_ext4_5_5_extending_write_is_written_and_sets_i_size(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 4096, len: 4096, aio: true}"])], fs="ext4",
                  blocks="[written]", max_size=8192)
    fs, results, records = run_alone(sc)
    assert fs.i_size.value == 8192 and "ext4_handle_inode_extension" in functions(records)
    assert device_block(fs, 1) == (WRITTEN, ("DATA(w,1)",) * 8)


def test_xfs_aio_completion_publishes_i_size_before_the_conversion(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 4096, len: 4096, aio: true}"])],
                  blocks="[written]", max_size=8192)
    _, _, records = run_alone(sc)
    labels = [r["label"] for r in records]
    size = next(i for i, x in enumerate(labels) if "i_size_write(inode, offset + size)" in x)
    convert = next(i for i, x in enumerate(labels) if "XFS_BMAPI_CONVERT" in x)
    assert size < convert
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 4096, len: 4096, aio: true}"])],
                  blocks="[written]", max_size=8192, fixes="[xfs_isize_after_unwritten_conversion]")
    fs, _, records = run_alone(sc)
    labels = [r["label"] for r in records]
    assert not any("i_size_write(inode, offset + size)" in x for x in labels)
    assert fs.i_size.value == 8192


def test_aligned_overwrite_zeroes_nothing(tmp_path):
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 0, len: 4096}"])], blocks="[written]")
    fs, _, _ = run_alone(sc)
    assert device_block(fs, 0) == (WRITTEN, ("DATA(w,1)",) * 8)


def test_read_of_unwritten_block_is_zeros(tmp_path):
    sc = scenario(tmp_path, [("r", ["{op: dio_read, offset: 0, len: 4096}"])], blocks="[unwritten]",
                  invariants="[no_stale_data]")
    _, results, _ = run_alone(sc)
    assert results == [ReadResult(0, 4096, (ZERO,) * 8)]


# -- the pairs' counterexamples ----------------------------------------------------------------


def test_unaligned_aio_counterexample():
    steps = counterexample("xfs_iomap_unaligned_aio_no_wait").trace["steps"]
    first = find(steps, thread="aio1", label="xfs_file_iomap_begin(block 0)")
    second = find(steps, first, thread="aio2", label="xfs_file_iomap_begin(block 0)")
    convert = find(steps, second, label="XFS_BMAPI_CONVERT")
    find(steps, convert, label="iomap_dio_bio_end_io", change=zeroes_data)


def test_extend_no_drain_counterexample():
    steps = counterexample("xfs_iomap_extend_no_dio_drain").trace["steps"]
    sample = find(steps, thread="aio2", label="xfs_zero_eof(ip, iocb->ki_pos, i_size_read(inode)")
    convert = find(steps, sample, thread="aio1", label="XFS_BMAPI_CONVERT")
    find(steps, convert, thread="aio2", label="iomap_zero_range_actor(): block 1", change=zeroes_data)


def test_isize_before_convert_counterexample():
    rep = counterexample("xfs_iomap_isize_before_convert")
    steps = rep.trace["steps"]
    published = find(steps, thread="writer", label="i_size_write(inode, offset + size)")
    find(steps, published, thread="reader", label="xfs_file_iomap_begin(block 1)")
    assert not any("XFS_BMAPI_CONVERT" in s["label"] for s in steps)  # the reader ran before it
    assert rep.outcome.violation.invariant == "size_visible_data"


# -- stale blocks ------------------------------------------------------------------------------


def test_stale_block_is_written_with_stale_units(tmp_path):
    sc = scenario(tmp_path, [("r", ["{op: dio_read, offset: 0, len: 4096}"])], blocks="[stale, unwritten]",
                  max_size=8192, invariants="[]")
    fs, results, _ = run_alone(sc)
    assert device_block(fs, 0) == (WRITTEN, (STALE,) * 8)
    assert fs.i_blocks.values[1][0] == UNWRITTEN
    assert results == [ReadResult(0, 4096, (STALE,) * 8)]
    sc = scenario(tmp_path, [("r", ["{op: dio_read, offset: 0, len: 4096}"])], blocks="[stale]",
                  invariants="[no_stale_data]")
    rep = check(sc, save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_stale_data"


def test_written_block_holds_its_data(tmp_path):
    sc = scenario(tmp_path, [("r", ["{op: dio_read, offset: 0, len: 4096}"])], blocks="[written]",
                  invariants="[no_stale_data]")
    assert check(sc, save_trace=False).verdict == "clean"


def test_unknown_block_state_names_stale(tmp_path):
    try:
        scenario(tmp_path, [("r", ["{op: dio_read, offset: 0, len: 4096}"])], blocks="[stail]")
    except ScenarioError as exc:
        assert "stale" in str(exc)
    else:
        raise AssertionError("an unknown block state was accepted")


# -- eof_zeroed and size_visible_data ----------------------------------------------------------


EXTEND = "{op: dio_write, offset: 8192, len: 4096}"
READ_ALL = "{op: dio_read, offset: 0, len: 8192}"
NO_ZERO_EOF = "edits:\n  drop:\n    - {in: xfs_file_aio_write_checks, call: xfs_zero_eof}\n"


def test_eof_zeroed_breaks_when_old_tail_is_exposed(tmp_path):
    sc = scenario(tmp_path, [("w", [EXTEND, READ_ALL])], size=1024, blocks="[written, written]",
                  max_size=12288, invariants="[eof_zeroed]", edits=NO_ZERO_EOF)
    rep = check(sc, save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "eof_zeroed"
    assert "DATA(init,0) at file offset 1024" in rep.outcome.violation.message


def test_eof_zeroed_holds_with_the_zeroing(tmp_path):
    sc = scenario(tmp_path, [("w", [EXTEND, READ_ALL])], size=1024, blocks="[written, written]",
                  max_size=12288, invariants="[eof_zeroed]")
    assert check(sc, save_trace=False).verdict == "clean"
    fs, results, _ = run_alone(sc)
    assert results[1].units == ("DATA(init,0)",) * 2 + (ZERO,) * 14


def test_eof_zeroed_allows_data_written_after(tmp_path):
    # the unit past EOF is then written by the extending write itself
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 1024, len: 3072}",
                                    "{op: dio_read, offset: 0, len: 4096}"])],
                  size=1024, blocks="[written]", invariants="[eof_zeroed]", edits=NO_ZERO_EOF)
    assert check(sc, save_trace=False).verdict == "clean"


SIZE_PAIR = [("w", ["{op: dio_write, offset: 4096, len: 4096, aio: true}"]),
             ("r", ["{op: dio_read, offset: 4096, len: 4096}"])]


def test_size_visible_data_breaks_on_zeros_below_a_published_size(tmp_path):
    sc = scenario(tmp_path, SIZE_PAIR, blocks="[written]", max_size=8192, invariants="[size_visible_data]")
    rep = check(sc, save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "size_visible_data"
    assert "read ZERO" in rep.outcome.violation.message


def test_size_visible_data_holds_with_the_fix(tmp_path):
    sc = scenario(tmp_path, SIZE_PAIR, blocks="[written]", max_size=8192, invariants="[size_visible_data]",
                  fixes="[xfs_isize_after_unwritten_conversion]")
    assert check(sc, save_trace=False).verdict == "clean"


def test_size_visible_data_does_not_judge_a_gap_another_write_made(tmp_path):
    # a write further out extends i_size: the zeros below it are a hole, which it did not write
    sc = scenario(tmp_path, [("far", ["{op: dio_write, offset: 8192, len: 4096}"]),
                             ("r", ["{op: dio_read, offset: 4096, len: 4096}"])],
                  blocks="[written]", max_size=12288, invariants="[size_visible_data]")
    _, results, _ = run_alone(sc)
    assert results[1] == ReadResult(4096, 4096, (ZERO,) * 8)
    assert check(sc, save_trace=False).verdict == "clean"


def test_xfs_aligned_write_past_eof_demotes_the_iolock_before_the_io(tmp_path):
    """xfs_file_dio_aio_write (v4.10, read): the EOF checks take the iolock
    exclusive to drain and zero; an aligned write then demotes it
    (xfs_ilock_demote) and runs iomap_dio_rw shared."""
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 8192, len: 4096}"])], size=4096,
                  blocks="[written, hole, hole]", max_size=12288)
    fs, (ret,), records = run_alone(sc)
    labels = [r["label"] for r in records]
    at = 0
    for p in ("xfs_ilock(ip, XFS_IOLOCK_EXCL)", "inode_dio_wait", "error = xfs_zero_eof",
              "xfs_ilock_demote(ip, XFS_IOLOCK_EXCL)", "xfs_iunlock(ip, iolock)"):
        at = next(i for i in range(at, len(labels)) if labels[i].startswith(p)) + 1
    # The demote is one step: the writer becomes a reader (downgrade_write).
    demote = next(r for r in records if r["label"].startswith("xfs_ilock_demote"))
    assert [list(c) for c in demote["changes"] if c[0] == "i_rwsem"] == [
        ["i_rwsem", {"readers": [], "writer": 0}, {"readers": [0], "writer": None}]]
    assert fs.i_rwsem.writer is None and not fs.i_rwsem.readers


def test_xfs_write_that_runs_out_of_space_part_way_returns_the_error(tmp_path):
    """iomap_dio_rw (4.10): an error after some bios were submitted is set in
    the dio (iomap_dio_set_error); iomap_dio_complete passes it to the
    end_io, which returns it at once: the block written is not converted
    and i_size does not grow. (The punch hands block 0 to another file, so
    one free block is left for the two the write needs.)"""
    scenario(tmp_path, [("w", ["{op: punch_hole, offset: 0, len: 4096}", "{op: dio_write, offset: 0, len: 8192}"])],
             size=4096, blocks="[written, hole]")  # writes t.yaml
    text = (tmp_path / "t.yaml").read_text()
    (tmp_path / "t.yaml").write_text(text.replace("  dax: false\n", "  dax: false\n  spare_blocks: 0\n"))
    fs, (punched, written), records = run_alone(load(tmp_path / "t.yaml"))
    assert punched == 0 and written == "-ENOSPC"
    assert fs.i_size.value == 4096
    assert fs.i_blocks.values[0][0] == UNWRITTEN and fs.i_blocks.values[1] == ("hole", None)
    assert "xfs_iomap_write_unwritten" not in functions(records)
    assert fs.i_dio_count.value == 0


# -- ext4 5.5 as read against 5.5-rc5 ------------------------------------------------------------


def _labels(records):
    return [r["label"] for r in records]


def test_ext4_5_5_write_holds_the_inode_lock_exclusive_and_only_unaligned_aio_waits(tmp_path):
    """5.5: inode_lock (exclusive) for every direct write, no downgrade (no
    dioread_nolock by default); inode_dio_wait only for an unaligned AIO
    below the block-rounded i_size, not for a synchronous one."""
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 0, len: 4096}",
                                    "{op: dio_write, offset: 512, len: 512}",
                                    "{op: dio_write, offset: 512, len: 512, aio: true}"])],
                  fs="ext4", blocks="[written]")
    fs, results, records = run_alone(sc)
    labels = _labels(records)
    assert labels.count("inode_lock(inode)") == 3 and labels.count("inode_unlock(inode)") == 3
    assert not any("shared" in lb for lb in labels if lb.startswith("inode_"))
    waits = [i for i, lb in enumerate(labels) if lb == "inode_dio_wait(inode)"]
    assert len(waits) == 1 and waits[0] > labels.index("inode_lock(inode)", labels.index("inode_unlock(inode)") + 1)
    assert fs.i_rwsem.writer is None


def test_ext4_5_5_sub_block_write_past_eof_zeroes_the_tail_of_its_block(tmp_path):
    """iomap_dio_bio_actor (5.5): a write ending past i_size zeroes the rest
    of its block even in a written extent; 4.10's actor (XFS) does not."""
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 2048, len: 1024}"])], fs="ext4",
                  size=2048, blocks="[written]")
    fs, _, _ = run_alone(sc)
    assert device_block(fs, 0) == (WRITTEN, ("DATA(init,0)",) * 4 + ("DATA(w,1)",) * 2 + (ZERO,) * 2)
    assert fs.i_size.value == 3072
    sc = scenario(tmp_path, [("w", ["{op: dio_write, offset: 2048, len: 1024}"])], fs="xfs",
                  size=2048, blocks="[written]")
    fs, _, _ = run_alone(sc)
    assert device_block(fs, 0) == (WRITTEN, ("DATA(init,0)",) * 4 + ("DATA(w,1)",) * 2 + ("DATA(init,0)",) * 2)
