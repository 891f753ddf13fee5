"""The DAX page-fault family (racecheck/models/dax.py): the counterexamples of
races 2-5 of RACES.md show the racing steps in the order RACES.md gives, and
the fault paths do what the seeds' code does when nothing races."""

import pytest
from conftest import SCENARIOS, counterexample, in_order

from racecheck.execution import Execution
from racecheck.runner import check
from racecheck.scenario import load

# -- race 2: COW fault vs truncate ---------------------------------------------------


def test_cow_fault_copies_a_block_truncate_freed():
    rep = counterexample("cow_fault_vs_truncate")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_stale_data"
    in_order(steps,
             dict(thread="cow", label="size = i_size_read(inode)"),
             dict(thread="cow", label="ext2_get_block(block 1, create=0)"),
             dict(thread="truncate", change=("owner[1]", "other file")),
             dict(thread="cow", label="copy_user_bh"))
    assert steps[-1]["thread"] == "cow" and "copy_user_bh" in steps[-1]["label"]


def test_cow_recheck_alone_does_not_fix_the_copy():
    """The i_size recheck (patch 07 as posted) without the COW under
    i_mmap_mutex: ->fault must drop i_mmap_mutex before returning when nothing
    after it unlocks it, so the copy runs unlocked and can still read a freed
    block. (recheck_isize_under_i_mmap_mutex changes nothing in do_xip_fault.)"""
    rep = counterexample("cow_fault_vs_truncate", fixes=["recheck_isize_under_i_mmap_mutex"])
    assert rep.outcome.violation.invariant == "no_stale_data"
    in_order(rep.trace["steps"],
             dict(thread="cow", change=("i_mmap_mutex",)),
             dict(thread="truncate", change=("owner[1]", "other file")),
             dict(thread="cow", label="copy_user_bh"))


def test_cow_fix_also_keeps_the_copy_out_of_the_truncated_range():
    """With patches 01+02 the PTE of the copy is installed before truncate's
    unmap can run, so the unmap removes it: no mapping beyond EOF either."""
    from racecheck import invariants as inv
    sc = load(SCENARIOS / "cow_fault_vs_truncate_fixed.yaml")
    sc.model.invariants = inv.select(["no_stale_data", "no_mapping_beyond_eof", "no_freed_block_mapped"])
    assert check(sc, save_trace=False).verdict == "clean"
    # Without the COW fix the copy's PTE can outlive the truncate.
    sc.model.fixes = ["recheck_isize_under_i_mmap_mutex"]
    sc.model.invariants = inv.select(["no_mapping_beyond_eof"])
    assert check(sc, save_trace=False, do_minimise=False).verdict == "violation"


# -- race 3: hole page vs write fault ------------------------------------------------


def test_reader_maps_the_hole_page_after_the_writers_unmap():
    rep = counterexample("hole_page_vs_write_fault")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "mappings_coherent"
    hole, alloc, unmap, pte = in_order(
        steps,
        dict(thread="reader", label="ext2_get_block(block 0, create=0)"),
        dict(thread="writer", label="ext2_get_block(block 0, create=1)"),
        dict(thread="writer", label="unmap_mapping_range", change=("pte.shared[0]", None)),
        dict(thread="reader", change=("pte.shared2[0]", ["page", 0])))
    assert steps[hole]["changes"] == []  # the reader saw the hole
    assert "shared2 -> page 0" in v.message


# -- race 4: mapped write leaves an unwritten extent -----------------------------------


def test_read_after_mapped_write_sees_zeros_of_the_unwritten_extent():
    rep = counterexample("mapwrite_unwritten_extent")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_lost_write"
    alloc, store, lookup = in_order(
        steps,
        dict(thread="fsx", label="xfs_get_blocks_direct(block 0, create=1)",
             change=("i_blocks[0]", ["unwritten", 0])),
        dict(thread="fsx", change=("dev[0]", "DATA(fsx,1)")),
        dict(thread="fsx", op="read", label="create=0"))
    assert "read ZERO" in v.message and "DATA(fsx,1)" in v.message


# -- race 5: fault allocation exposes uninitialised data --------------------------------


def test_read_fault_maps_the_block_before_the_write_fault_zeroes_it():
    rep = counterexample("fault_alloc_stale")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_stale_data"
    alloc, insert, load_ = in_order(
        steps,
        dict(thread="writer", label="create=1", change=("i_blocks[0]", ["written", 0])),
        dict(thread="reader", label="vm_insert_mixed"),
        dict(thread="reader", label="load: walk the page table"))
    assert load_ == len(steps) - 1
    assert not any("dax_clear_blocks" in s["label"] for s in steps[:load_ + 1])


# -- the paths when nothing races ------------------------------------------------------


FILE = """
name: t
filesystem: {fs}
file:
  size: 4096
  blocks: [{block}]
threads:
  - name: a
    ops:
{ops}
fixes: {fixes}
invariants: []
"""


def run_alone(tmp_path, ops, fs="ext2", block="hole", fixes="[]"):
    """Run one thread to its end; return (fs state, [results])."""
    text = FILE.format(fs=fs, block=block, fixes=fixes,
                       ops="\n".join(f"      - {op}" for op in ops))
    path = tmp_path / "t.yaml"
    path.write_text(text)
    sc = load(path)
    ex = Execution(sc.model)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    results = [h["result"] for h in ex.rt.history if h["kind"] == "return"]
    return ex.state, results


def test_load_from_a_hole_maps_a_zeroed_page_cache_page(tmp_path):
    fs, (r,) = run_alone(tmp_path, ["{op: mmap_load, offset: 512}"])
    assert r.units == ("ZERO",) and r.how == "load"
    assert fs.ptes["shared"].items == {0: ("page", 0)}
    assert fs.page_cache.items[0] == ("ZERO",) * 8
    assert fs.i_blocks.values[0] == ("hole", None)  # a load allocates nothing


def test_store_to_the_hole_page_goes_through_xip_mkwrite(tmp_path):
    fs, (r1, w, r2) = run_alone(tmp_path, ["{op: mmap_load, offset: 0}", "{op: mmap_store, offset: 0}",
                                           "{op: mmap_load, offset: 0}"])
    assert r1.units == ("ZERO",)
    assert w.tag == "DATA(a,2)"
    assert r2.units == ("DATA(a,2)",)
    state, pblk = fs.i_blocks.values[0]
    assert state == "written"
    assert fs.ptes["shared"].items == {0: ("block", pblk)}
    assert 0 not in fs.page_cache.items  # delete_from_page_cache
    assert fs.dev.values[pblk * 8:pblk * 8 + 2] == ["DATA(a,2)", "ZERO"]


@pytest.mark.parametrize("fixes", ["[]", "[hole_page_lock]"])
def test_store_evicts_hole_page_of_other_mappings(tmp_path, fixes):
    fs, _ = run_alone(tmp_path, ["{op: mmap_load, offset: 0, mapping: shared2}",
                                 "{op: mmap_load, offset: 0, mapping: shared}",
                                 "{op: mmap_store, offset: 0, mapping: shared}"], fixes=fixes)
    assert 0 not in fs.ptes["shared2"].items  # unmapped: its next load faults on the block
    assert fs.ptes["shared"].items[0][0] == "block"


def test_private_store_copies_the_block_and_leaves_the_file_alone(tmp_path):
    fs, (w, r) = run_alone(tmp_path, ["{op: mmap_store, offset: 512, mapping: private}",
                                      "{op: mmap_load, offset: 0, mapping: private}"],
                           block="written", fixes="[recheck_isize_under_i_mmap_mutex, cow_under_i_mmap_mutex]")
    assert w.tag == "DATA(a,1)"
    assert r.units == ("DATA(init,0)",)
    kind, page = fs.ptes["private"].items[0]
    assert kind == "anon" and page.units[:2] == ("DATA(init,0)", "DATA(a,1)")
    assert fs.ghost.cow_pages[("private", 0)] == ("DATA(init,0)",) * 8  # what the fault copied
    assert set(fs.dev.values[0:8]) == {"DATA(init,0)"}
    assert fs.i_mmap_mutex.owner is None  # __do_fault dropped it


def test_private_store_after_a_load_copies_in_do_wp_page(tmp_path):
    fs, (r, w) = run_alone(tmp_path, ["{op: mmap_load, offset: 0, mapping: private}",
                                      "{op: mmap_store, offset: 0, mapping: private}"], block="written")
    assert r.units == ("DATA(init,0)",)
    kind, page = fs.ptes["private"].items[0]
    assert kind == "anon" and page.units[0] == "DATA(a,2)"
    assert fs.dev.values[0] == "DATA(init,0)"


def test_cow_of_a_hole_is_zeros_and_allocates_nothing(tmp_path):
    fs, (w,) = run_alone(tmp_path, ["{op: mmap_store, offset: 0, mapping: private}"])
    kind, page = fs.ptes["private"].items[0]
    assert page.units == ("DATA(a,1)",) + ("ZERO",) * 7
    assert fs.i_blocks.values[0] == ("hole", None)


def test_xfs_fault_with_get_blocks_xip_writes_a_zeroed_written_block(tmp_path):
    fs, (w, r) = run_alone(tmp_path, ["{op: mmap_store, offset: 0}", "{op: read, offset: 0, len: 1024}"],
                           fs="xfs", fixes="[xfs_get_blocks_xip]")
    state, pblk = fs.i_blocks.values[0]
    assert state == "written"
    assert r.units == ("DATA(a,1)", "ZERO")


def test_xfs_fault_with_direct_get_blocks_leaves_the_extent_unwritten(tmp_path):
    fs, (w, r) = run_alone(tmp_path, ["{op: mmap_store, offset: 0}", "{op: read, offset: 0, len: 512}"],
                           fs="xfs")
    assert fs.i_blocks.values[0][0] == "unwritten"
    assert r.units == ("ZERO",)


def test_jan_karas_fault_zeroes_a_new_block_itself(tmp_path):
    fs, (w, r) = run_alone(tmp_path, ["{op: mmap_store, offset: 0, handler: dax}",
                                      "{op: mmap_load, offset: 512, handler: dax}"], fs="ext2-nozero")
    assert r.units == ("ZERO",)  # dax_clear_blocks ran before the block was mapped
    state, pblk = fs.i_blocks.values[0]
    assert fs.dev.values[pblk * 8] == "DATA(a,1)"


def test_patch_07_fault_never_zeroes_so_ext2_nozero_leaks_alone(tmp_path):
    """do_xip_fault relies on get_block zeroing ("It must zero any blocks
    that it returns", patch 07's documentation): with ext2-nozero and no fix,
    even one thread sees the previous owner's data."""
    fs, (w, r) = run_alone(tmp_path, ["{op: mmap_store, offset: 0}", "{op: mmap_load, offset: 512}"],
                           fs="ext2-nozero")
    assert r.units == ("STALE",)
    fs, (w, r) = run_alone(tmp_path, ["{op: mmap_store, offset: 0}", "{op: mmap_load, offset: 512}"],
                           fs="ext2-nozero", fixes="[ext2_zero_before_link]")
    assert r.units == ("ZERO",)


def test_fault_beyond_eof_is_sigbus(tmp_path):
    fs, (r, w) = run_alone(tmp_path, ["{op: mmap_load, offset: 4096}", "{op: mmap_store, offset: 4096}"],
                           block="hole, hole")
    assert r == "VM_FAULT_SIGBUS" and w == "VM_FAULT_SIGBUS"


# -- race 1: the fault of the rewrite rechecks i_size as posted --------------------------


def test_patch_07_fault_rechecks_isize_under_i_mmap_mutex_as_posted():
    """Patch 07's do_xip_fault has "/* Recheck i_size under i_mmap_mutex */"
    as posted: with no fix, a DAX fault against truncate is clean. (Patch 01's
    race is in xip_file_fault, which fault_vs_truncate runs.)"""
    sc = load(SCENARIOS / "xip_fault_no_i_mmap_mutex_fixed.yaml")
    assert sc.model.fixes == [] and not sc.model.edits.drop
    assert check(sc, save_trace=False).verdict == "clean"


def test_jan_karas_fault_rechecks_isize_too(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text((SCENARIOS / "xip_fault_no_i_mmap_mutex_fixed.yaml").read_text().replace(
        "{op: mmap_load, offset: 4096}", "{op: mmap_load, offset: 4096, handler: dax}"))
    assert "handler: dax" in path.read_text()
    assert check(load(path), save_trace=False).verdict == "clean"


def test_fault_vs_truncate_runs_the_code_patch_01_patches():
    rep = counterexample("fault_vs_truncate")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_freed_block_mapped"
    in_order(steps,
             dict(thread="fault", op="xip_file_load"),
             dict(thread="truncate", change=("owner[1]", "other file")),
             dict(thread="fault", label="vm_insert_mixed", change=("pte.shared[1]",)))
    assert not any(s["thread"] == "fault" and changed_mutex(s) for s in steps)
    assert check(load(SCENARIOS / "fault_vs_truncate_fixed.yaml"), save_trace=False).verdict == "clean"


def changed_mutex(step):
    return any(name == "i_mmap_mutex" for name, _, _ in step.get("changes", []))


# -- race 3: a write fault through ->fault leaves other mappings' hole page ------------


@pytest.mark.parametrize("handler", ["xip", "dax"])
def test_write_fault_through_fault_leaves_another_mappings_hole_page(tmp_path, handler):
    """The seed's code, with no race: process B loads from the hole (a hole
    page in shared2); process A stores through its own mapping, which has no
    PTE, so ->fault (not ->page_mkwrite) allocates and maps the block and
    nothing unmaps B's hole page. B keeps reading zeros after A's store
    returned. The hole_page_lock fix evicts it."""
    ops = [f"{{op: mmap_load, offset: 0, mapping: shared2, handler: {handler}}}",
           f"{{op: mmap_store, offset: 0, mapping: shared, handler: {handler}}}",
           f"{{op: mmap_load, offset: 0, mapping: shared2, handler: {handler}}}"]
    fs, (r1, w, r2) = run_alone(tmp_path, ops)
    assert w.tag == "DATA(a,2)"
    assert fs.ptes["shared2"].items == {0: ("page", 0)} and fs.ptes["shared"].items[0][0] == "block"
    assert r2.units == ("ZERO",)  # a lost write, one thread, no preemption
    fs, (r1, w, r2) = run_alone(tmp_path, ops, fixes="[hole_page_lock]")
    assert r2.units == ("DATA(a,2)",)
    assert 0 not in fs.page_cache.items


# -- race 5: the fault's second zeroing with two writers -----------------------------


def test_second_zeroing_destroys_another_writers_returned_store():
    rep = counterexample("fault_alloc_stale_two_writers")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_zero_overwrite"
    in_order(steps,
             dict(thread="writer", label="create=1", change=("i_blocks[0]", ["written", 0])),
             dict(thread="writer2", label="vm_insert_mixed"),
             dict(thread="writer2", change=("dev[1]", "DATA(writer2,1)")),
             dict(thread="writer", label="dax_clear_blocks", change=("dev[1]", "ZERO")))
    # The same two writers on the as-posted ext2 break it too.
    assert counterexample("fault_alloc_stale_two_writers", fixes=[]).outcome.violation
