"""The XIP read/write paths (racecheck/models/xip_io.py): the counterexamples
of races 6, 7, 8 and 13 show the racing steps RACES.md names, in order, and
single-thread runs of the paths give the data seed 002 says they give."""

import pytest
from conftest import SCENARIOS, counterexample, find, in_order

from racecheck.execution import Execution
from racecheck.models.fs import STALE, ZERO, ReadResult, WriteResult, data
from racecheck.runner import check
from racecheck.scenario import load

INIT = data("init", 0)


# -- the counterexamples --------------------------------------------------------------


def test_new_block_edges_counterexample():
    """Race 6: the write gets a new unwritten block, patch 22 zeroes only its
    head, the data is copied, the extent converted; the read then copies the
    tail, which nobody zeroed."""
    rep = counterexample("xip_io_new_block_edges")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_stale_data"
    in_order(steps,
             dict(thread="writer", label_start="xfs_get_blocks_direct(block 0, create=1)"),
             dict(thread="writer", label_start="memset(addr, 0, first)"),
             dict(thread="writer", label_start="__copy_from_user_nocache"),
             dict(thread="writer", label_start="xfs_iomap_write_unwritten"),
             dict(thread="reader", label_start="xfs_get_blocks_direct(block 0, create=0)"),
             dict(thread="reader", label_start="__copy_to_user"))
    assert not any("memset(addr + final" in (s["label"] or "") for s in steps)
    # the first stale unit is just past the user data (512 + 1024)
    assert "file offset 1536" in rep.outcome.violation.message


def test_hole_size_counterexample():
    """Race 7: after the write of block 1 returned, the read finds block 0 a
    hole and clears the whole 8192 bytes without looking block 1 up."""
    rep = counterexample("xip_io_hole_size")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_lost_write"
    in_order(steps,
             dict(thread="writer", label_start="ext2_get_block(block 1, create=1)", op="write"),
             dict(thread="writer", label_start="__copy_from_user_nocache", op="write"),
             dict(thread="writer", label_start="mutex_unlock(&inode->i_mutex)", op="write"),
             dict(thread="writer", label_start="ext2_get_block(block 0, create=0)", op="read"),
             dict(thread="writer", label_start="inode_dio_done(inode)", op="read"))
    # one __clear_user (folded into a later step: it touches no shared state)
    # covered block 1 as well: the read never looked block 1 up
    reads = [s for s in steps if s["op"] == "read"]
    assert not any(s["label"].startswith("ext2_get_block(block 1") for s in reads)
    assert "file offset 4096" in rep.outcome.violation.message


def test_read_past_eof_counterexample():
    """Race 8: the write sets i_size to 2048; the read checks i_size, then
    copies a whole block."""
    rep = counterexample("xip_io_read_past_eof")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "read_within_eof"
    in_order(steps,
             dict(thread="writer", label_start="__copy_from_user_nocache"),
             dict(thread="writer", label_start="if (pos > i_size_read(inode)) i_size_write(inode, pos)"),
             dict(thread="reader", label_start="size = i_size_read(inode)"),
             dict(thread="reader", label_start="ext2_get_block(block 0, create=0)"),
             dict(thread="reader", label_start="__copy_to_user"))
    assert "returned 4096 bytes, past i_size 2048" in rep.outcome.violation.message


def test_read_vs_truncate_counterexample():
    """Race 13: the old read reads i_size and looks block 1 up through
    get_xip_mem; truncate frees the block while the read holds it."""
    rep = counterexample("xip_read_vs_truncate")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_freed_block_mapped"
    i = in_order(steps,
                 dict(thread="reader", label_start="isize = i_size_read(inode)"),
                 dict(thread="reader", label_start="ext2_get_block(block 1, create=0)"),
                 dict(thread="truncate", label_start="i_size_write(inode, newsize)"),
                 dict(thread="truncate", label_start="__ext2_truncate_blocks"))[-1]
    lookup = steps[find(steps, thread="reader", label_start="ext2_get_block(block 1")]
    assert "ext2_get_xip_mem" in lookup["stack"]
    assert i == len(steps) - 1  # the free is where it breaks


def test_read_vs_truncate_copies_stale_data(tmp_path):
    """Race 13 checked for no_stale_data alone: the read's copy comes after the
    free and returns the other file's data."""
    text = (SCENARIOS / "xip_read_vs_truncate.yaml").read_text()
    text = text.replace("invariants: [no_freed_block_mapped, no_stale_data]", "invariants: [no_stale_data]")
    text = text.replace("invariant: no_freed_block_mapped", "invariant: no_stale_data")
    path = tmp_path / "stale.yaml"
    path.write_text(text)
    rep = check(load(path), save_trace=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_stale_data"
    steps = rep.trace["steps"]
    in_order(steps,
             dict(thread="reader", label_start="ext2_get_block(block 1, create=0)"),
             dict(thread="truncate", label_start="__ext2_truncate_blocks"),
             dict(thread="reader", label_start="left = __copy_to_user(buf+copied, xip_mem+offset, nr)"))


# -- the paths, one thread at a time ---------------------------------------------------


def run_alone(tmp_path, filesystem, size, blocks, ops, fixes=(), max_size=None):
    """Run one thread's ``ops`` to the end; returns (results, trace records)."""
    lines = ["name: alone", f"filesystem: {filesystem}", "file:", f"  size: {size}"]
    if blocks is not None:
        lines.append(f"  blocks: [{', '.join(blocks)}]")
    if max_size is not None:
        lines.append(f"  max_size: {max_size}")
    lines += ["threads:", "  - name: t", "    ops:"]
    for op, args in ops:
        lines.append("      - {op: %s, %s}" % (op, ", ".join(f"{k}: {v}" for k, v in args.items())))
    lines += [f"fixes: [{', '.join(fixes)}]", "invariants: []"]
    path = tmp_path / "alone.yaml"
    path.write_text("\n".join(lines) + "\n")
    sc = load(path)
    ex = Execution(sc.model, tracing=True)
    while ex.unfinished():
        ex.step(ex.enabled()[0])
    return [o.result for o in ex.operations], ex.records


W = data("t", 1)


def test_write_then_read_on_ext2(tmp_path):
    results, _ = run_alone(tmp_path, "ext2", 0, None, [
        ("write", {"offset": 1024, "len": 1024}),
        ("read", {"offset": 0, "len": 4096}),
    ], fixes=["clamp_io_to_isize"], max_size=4096)
    assert results[0] == WriteResult(1024, 1024, W)
    assert results[1] == ReadResult(0, 2048, (ZERO, ZERO, W, W), "read")


@pytest.mark.parametrize("fixes,tail", [([], STALE), (["zero_new_block_edges"], ZERO)])
def test_patch22_zeroes_only_the_head_of_a_new_block(tmp_path, fixes, tail):
    """Patch 22 as posted zeroes the head of an unwritten block; the fix zeroes
    the tail too."""
    results, _ = run_alone(tmp_path, "xfs", 4096, ["hole"], [
        ("write", {"offset": 512, "len": 1024}),
        ("read", {"offset": 0, "len": 4096}),
    ], fixes=fixes)
    assert results[1].units == (ZERO, W, W) + (tail,) * 5


@pytest.mark.parametrize("fixes,second", [([], ZERO), (["hole_is_one_block"], INIT)])
def test_a_hole_covers_the_rest_of_the_request(tmp_path, fixes, second):
    results, _ = run_alone(tmp_path, "ext2", 8192, ["hole", "written"], [
        ("read", {"offset": 0, "len": 8192}),
    ], fixes=fixes)
    assert results[0].units == (ZERO,) * 8 + (second,) * 8


@pytest.mark.parametrize("fixes,nbytes", [([], 4096), (["clamp_io_to_isize"], 2048)])
def test_read_stops_at_isize_only_with_the_clamp(tmp_path, fixes, nbytes):
    results, _ = run_alone(tmp_path, "ext2", 2048, ["written"], [
        ("read", {"offset": 0, "len": 4096}),
    ], fixes=fixes)
    assert results[0].nbytes == nbytes


@pytest.mark.parametrize("fixes,tail", [([], STALE), (["size_minus_first"], ZERO)])
def test_unaligned_read_runs_past_its_block_as_posted(tmp_path, fixes, tail):
    """size = retval, not retval - first (Ross Zwisler, 2014-01-22): a read
    from the middle of block 0 copies on into the next device block, which is
    not the file's (block 1 is a hole)."""
    results, _ = run_alone(tmp_path, "ext2", 8192, ["written", "hole"], [
        ("read", {"offset": 2048, "len": 4096}),
    ], fixes=fixes)
    assert results[0].units == (INIT,) * 4 + (tail,) * 4


def test_unaligned_write_runs_past_its_block_as_posted(tmp_path):
    results, records = run_alone(tmp_path, "ext2", 8192, ["written", "hole"], [
        ("write", {"offset": 2048, "len": 4096}),
        ("read", {"offset": 0, "len": 8192}),
    ], fixes=["size_minus_first"])
    assert results[1].units == (INIT,) * 4 + (W,) * 8 + (ZERO,) * 4
    results, records = run_alone(tmp_path, "ext2", 8192, ["written", "hole"], [
        ("write", {"offset": 2048, "len": 4096}),
        ("read", {"offset": 0, "len": 8192}),
    ])
    # as posted, the second half went to device block 1, which file block 1
    # does not own: the file reads zeros there
    assert results[1].units == (INIT,) * 4 + (W,) * 4 + (ZERO,) * 8


def test_xip_do_io_holds_i_dio_count_and_i_mutex_across_the_copy(tmp_path):
    _, records = run_alone(tmp_path, "ext2", 4096, ["written"], [
        ("read", {"offset": 0, "len": 4096}),
    ])
    labels = [r["label"] for r in records]
    lock = labels.index("mutex_lock(&inode->i_mutex)")
    inc = labels.index("atomic_inc(&inode->i_dio_count)")
    copy = labels.index("__copy_to_user(buf, addr, len)")
    unlock = labels.index("mutex_unlock(&inode->i_mutex)")
    done = labels.index("inode_dio_done(inode)")
    assert lock < inc < copy < unlock < done
    assert ["i_dio_count", 0, 1] in records[inc]["changes"]
    assert ["i_dio_count", 1, 0] in records[done]["changes"]


def test_old_read_path_takes_no_lock(tmp_path):
    results, records = run_alone(tmp_path, "ext2", 8192, ["written", "hole"], [
        ("xip_file_read", {"offset": 0, "len": 8192}),
    ])
    assert results[0] == ReadResult(0, 8192, (INIT,) * 8 + (ZERO,) * 8, "read")
    assert not any("i_mutex" in r["label"] or "i_dio_count" in r["label"] for r in records)
    results, records = run_alone(tmp_path, "ext2", 8192, ["written", "hole"], [
        ("xip_file_read", {"offset": 0, "len": 8192}),
    ], fixes=["treat_xip_like_o_direct", "hole_is_one_block"])
    assert results[0] == ReadResult(0, 8192, (INIT,) * 8 + (ZERO,) * 8, "read")
    assert any(r["label"] == "atomic_inc(&inode->i_dio_count)" for r in records)


def test_old_read_path_stops_at_isize(tmp_path):
    results, _ = run_alone(tmp_path, "ext2", 6144, ["written", "written"], [
        ("xip_file_read", {"offset": 0, "len": 8192}),
    ])
    assert results[0].nbytes == 6144 and len(results[0].units) == 12


# -- ext4: a DAX read against truncate and hole punch (patch 19 as posted) ---------------------

EXT4_READ_VS = """\
name: ext4_read_vs
filesystem: ext4
file: {size: 8192, blocks: [written, written]}
threads:
  - name: reader
    ops: [{op: read, offset: 4096, len: 4096}]
  - name: other
    ops: [OTHER]
fixes: FIXES
invariants: [no_freed_block_mapped, no_stale_data]
"""


def ext4_read_vs(tmp_path, other, fixes):
    path = tmp_path / "r.yaml"
    path.write_text(EXT4_READ_VS.replace("OTHER", other).replace("FIXES", fixes))
    return check(load(path), save_trace=False)


PUNCH = "{op: punch_hole, offset: 4096, len: 4096}"
TRUNCATE = "{op: truncate, size: 0}"


def test_ext4_dax_read_vs_truncate_needs_the_isize_clamp(tmp_path):
    """Patch 19 calls xip_do_io(..., ext4_get_block, NULL, 0) where
    ext4_ind_direct_IO called blockdev_direct_IO (DIO_LOCKING): a DAX read
    on ext4 takes no i_mutex, only i_dio_count. A read that checked i_size
    before ext4_setattr wrote the new size, and raised i_dio_count after its
    inode_dio_wait, copies from the blocks ext4_truncate frees. Ross
    Zwisler's clamp of the read to i_size (read after raising i_dio_count,
    so after the new size) closes it."""
    rep = ext4_read_vs(tmp_path, TRUNCATE, "[]")
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_freed_block_mapped"
    assert ext4_read_vs(tmp_path, TRUNCATE, "[clamp_io_to_isize]").verdict == "clean"


def test_ext4_dax_read_vs_punch_hole_is_patch_19s_missing_dio_locking(tmp_path, monkeypatch):
    """ext4_punch_hole (3.13): "Wait all existing dio workers, newcomers will
    block on i_mutex" -- but with patch 19 a DAX read never takes i_mutex
    (xip_do_io(..., 0)), and a hole punch leaves i_size alone, so no clamp
    helps: a read that raises i_dio_count after the punch's inode_dio_wait
    copies from the block ext4_ext_remove_space frees. The seed's code does
    this; with the DIO_LOCKING that blockdev_direct_IO passed, the read waits
    for i_mutex and the race is gone."""
    from racecheck.models import xip_io
    rep = ext4_read_vs(tmp_path, PUNCH, "[clamp_io_to_isize]")
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_freed_block_mapped"
    in_order(rep.trace["steps"],
             dict(thread="other", label="inode_dio_wait"),
             dict(thread="reader", change=("i_dio_count", 1)),
             dict(thread="reader", label="ext4_get_block(block 1, create=0)"),
             dict(thread="other", change=("owner[1]", "other file")))
    monkeypatch.setitem(xip_io.DIRECT_IO, "ext4", xip_io.DirectIO(xip_io.DIO_LOCKING))
    assert ext4_read_vs(tmp_path, PUNCH, "[clamp_io_to_isize]").verdict == "clean"
    assert ext4_read_vs(tmp_path, TRUNCATE, "[]").verdict == "clean"
