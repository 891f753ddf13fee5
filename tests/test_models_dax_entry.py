"""fs/dax.c of v4.10 around mapping-tree entries (racecheck/models/dax_entry.py):
each path takes the steps the kernel code takes, in order, when it runs
alone; the three pairs' counterexamples show the racing steps in the order
the scenario descriptions give, and their fixed twins are clean."""

import pytest
from conftest import SCENARIOS, counterexample, find, in_order

from racecheck.execution import Execution
from racecheck.runner import check
from racecheck.scenario import load

FILE = """name: t
filesystem: ext2
kernel: "{kernel}"
file:
  size: {size}
  blocks: {blocks}
threads:
  - name: a
    ops:
{ops}
invariants: []
"""


def run_alone(tmp_path, ops, blocks="[hole, hole]", size=8192, kernel="4.12"):
    """Run one thread to its end: (fs state, results, the steps' records).
    The paths' steps are those of v4.12 unless ``kernel`` says 4.10 (whose
    faults call ->iomap_begin before they grab the entry)."""
    path = tmp_path / "t.yaml"
    path.write_text(FILE.format(size=size, blocks=blocks, kernel=kernel,
                                ops="\n".join(f"      - {op}" for op in ops)))
    sc = load(path)
    ex = Execution(sc.model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    results = [h["result"] for h in ex.rt.history if h["kind"] == "return"]
    return ex.state, results, ex.records


def functions(records):
    """The kernel function of each step, in order, without repeats in a row."""
    out = []
    for r in records:
        if not out or out[-1] != r["function"]:
            out.append(r["function"])
    return out


# -- the paths alone ---------------------------------------------------------------------------


def test_pte_load_of_a_hole_locks_an_empty_entry_then_maps_a_hole_page(tmp_path):
    fs, (r,), steps = run_alone(tmp_path, ["{op: dax_mmap_load, offset: 512}"])
    assert r.units == ("ZERO",)
    assert functions(steps) == ["dax_mmap_load", "ext2_dax_fault", "dax_iomap_fault_4_12", "wait_entry_unlocked",
                                "grab_mapping_entry", "ext2_iomap_begin", "dax_load_hole",
                                "put_locked_mapping_entry", "dax_mmap_load"]
    in_order(steps,
             dict(label="if (pos >= i_size_read(inode))"),
             dict(label="get_unlocked_mapping_entry(mapping, 0)"),
             dict(label="radix_tree_preload()", change=("mapping_tree[0]",)),
             dict(label="ext2_iomap_begin(inode, page 0, 1 page, 0)"),
             dict(label="find_or_create_page"),
             dict(label="finish_fault", change=("pte.shared[0]",)),
             dict(label="unlock_slot()"))
    assert str(fs.mapping_tree.items[0]) == "page PTE"  # the hole page, unlocked
    assert fs.ptes["shared"].items == {0: ("zero", "hole page")}
    assert fs.i_blocks.values[0] == ("hole", None)


def test_store_to_a_hole_page_replaces_it_with_a_dirty_block_entry(tmp_path):
    fs, (r, w, r2), steps = run_alone(tmp_path, ["{op: dax_mmap_load, offset: 0}",
                                                "{op: dax_mmap_store, offset: 0}",
                                                "{op: dax_mmap_load, offset: 0}"])
    assert (r.units, w.tag, r2.units) == (("ZERO",), "DATA(a,2)", ("DATA(a,2)",))
    store = [s for s in steps if s["op"] == "dax_mmap_store"]
    in_order(store,
             dict(label="get_unlocked_mapping_entry(mapping, 0)", change=("mapping_tree[0]",)),  # lock_slot
             dict(label="IOMAP_WRITE", change=("i_blocks[0]", ["written", 0])),
             dict(function="unmap_mapping_range", change=("pte.shared[0]", None)),  # the hole page
             dict(label="dax_radix_locked_entry", change=("tree_tags[0]",)),
             dict(label="vm_insert_mixed", change=("pte.shared[0]", ["block", 0])),
             dict(label="unlock_slot()"),
             dict(label="store: walk the page table", change=("dev[0]", "DATA(a,2)")))
    assert str(fs.mapping_tree.items[0]) == "pfn PTE pfn 0"
    assert fs.tree_tags.items[0] == {"PAGECACHE_TAG_DIRTY"}
    assert fs.pmem_unflushed.items == {0: "DATA(a,2)"}  # in the CPU cache until writeback


def test_fsync_writes_back_the_dirty_entry_and_write_protects_it(tmp_path):
    fs, (w, ret, w2), steps = run_alone(tmp_path, ["{op: dax_mmap_store, offset: 0}", "{op: fsync}",
                                                  "{op: dax_mmap_store, offset: 512}"])
    sync = [s for s in steps if s["op"] == "fsync"]
    assert functions(sync) == ["dax_writeback_mapping_range", "wait_entry_unlocked",
                               "dax_mapping_entry_mkclean", "dax_writeback_one", "put_locked_mapping_entry",
                               "fsync"]
    in_order(sync,
             dict(label="tag_pages_for_writeback", change=("tree_tags[0]",)),
             dict(label="find_get_entries_tag"),
             dict(change=("mapping_tree[0]",)),  # lock_slot; TOWRITE cleared
             dict(label="i_mmap_lock_read", change=("pte_write[('shared', 0)]", None)),
             dict(label="wb_cache_pmem", change=("pmem_unflushed[0]", None)),
             dict(label="PAGECACHE_TAG_DIRTY", change=("tree_tags[0]", None)),
             dict(label="unlock_slot()"))
    # The next store finds the PTE read-only: dax_pfn_mkwrite tags the entry dirty again.
    again = [s for s in steps if s["op"] == "dax_mmap_store" and s["tid"] == 0][-4:]
    in_order(again,
             dict(function="wait_entry_unlocked", change=("tree_tags[0]",)),
             dict(label="finish_mkwrite_fault", change=("pte_write[('shared', 0)]", True)),
             dict(label="unlock_slot()"),
             dict(label="store: walk the page table", change=("dev[1]", "DATA(a,3)")))
    assert fs.tree_tags.items == {0: {"PAGECACHE_TAG_DIRTY"}}
    assert ret == 0 and w2.tag == "DATA(a,3)"


def test_pmd_load_of_a_hole_maps_the_huge_zero_page(tmp_path):
    fs, (r,), steps = run_alone(tmp_path, ["{op: dax_mmap_load, offset: 4096, pmd: true}"])
    assert r.units == ("ZERO",)
    assert functions(steps)[:8] == ["dax_mmap_load", "ext2_dax_fault", "dax_iomap_pmd_fault_4_12",
                                    "wait_entry_unlocked", "grab_mapping_entry", "ext2_iomap_begin",
                                    "dax_insert_mapping_entry", "dax_pmd_load_hole"]
    find(steps, label="ext2_iomap_begin(inode, page 0, 2 pages, 0)")
    assert str(fs.mapping_tree.items[0]) == "zero PMD"
    assert fs.ptes["shared"].items == {0: ("zero", "huge zero page"), 1: ("zero", "huge zero page")}


def test_pmd_store_allocates_an_aligned_pair_and_maps_it_huge(tmp_path):
    fs, (w, r), steps = run_alone(tmp_path, ["{op: dax_mmap_store, offset: 4096, pmd: true}",
                                            "{op: dax_mmap_load, offset: 0}"])
    find(steps, function="dax_pmd_insert_mapping", label="vmf_insert_pfn_pmd")
    assert str(fs.mapping_tree.items[0]) == "pfn PMD pfn 0"
    assert fs.ptes["shared"].items == {0: ("block", 0), 1: ("block", 1)}
    assert fs.tree_tags.items[0] == {"PAGECACHE_TAG_DIRTY"}
    assert r.units == ("ZERO",)  # the new block was zeroed


def test_pmd_fault_falls_back_when_a_pte_entry_is_in_the_range(tmp_path):
    fs, (r1, r2), steps = run_alone(tmp_path, ["{op: dax_mmap_load, offset: 0, mapping: shared}",
                                              "{op: dax_mmap_load, offset: 4096, mapping: shared2, pmd: true}"])
    second = [s for s in steps if s["tid"] == 0 and s["op"] == "dax_mmap_load"][len(steps) // 2:]
    assert "dax_iomap_fault_4_12" in functions(second)  # grab_mapping_entry(PMD) said -EEXIST
    assert set(fs.mapping_tree.items) == {0, 1}  # two PTE entries, no PMD
    assert not any(e.pmd for e in fs.mapping_tree.items.values())


def test_pte_fault_downgrades_a_huge_zero_page_and_unmaps_it(tmp_path):
    fs, (r, w), steps = run_alone(tmp_path, ["{op: dax_mmap_load, offset: 0, mapping: shared2, pmd: true}",
                                            "{op: dax_mmap_store, offset: 0, mapping: shared}"])
    store = [s for s in steps if s["op"] == "dax_mmap_store"]
    in_order(store,
             dict(function="wait_entry_unlocked", change=("mapping_tree[0]",)),  # lock_slot before unmapping
             dict(function="unmap_mapping_range", change=("pte.shared2[0]", None)),
             dict(label="radix_tree_delete()", change=("mapping_tree[0]",)),
             dict(label="IOMAP_WRITE", change=("i_blocks[0]", ["written", 0])))
    assert fs.ptes["shared2"].items == {}
    assert str(fs.mapping_tree.items[0]) == "pfn PTE pfn 0"


# -- the pairs -----------------------------------------------------------------------------------


def test_writeback_without_the_entry_lock_clears_a_dirty_tag_it_did_not_flush():
    rep = counterexample("dax_writeback_no_entry_lock")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "fsync_flushes_stores"
    in_order(steps,
             dict(thread="syncer", label="i_mmap_lock_read", change=("pte_write[('shared', 0)]", None)),
             dict(thread="syncer", label="wb_cache_pmem"),
             dict(thread="writer", function="wait_entry_unlocked", change=("mapping_tree[0]",)),  # mkwrite
             dict(thread="writer", label="finish_mkwrite_fault", change=("pte_write[('shared', 0)]", True)),
             dict(thread="writer", change=("dev[1]", "DATA(writer,2)")),
             dict(thread="syncer", label="PAGECACHE_TAG_DIRTY", change=("tree_tags[0]", None)))
    assert "DATA(writer,2)" in v.message


def test_pmd_downgrade_without_the_unmap_leaves_the_huge_zero_page_mapped():
    rep = counterexample("dax_pmd_downgrade_no_unmap")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_lost_write"
    in_order(steps,
             dict(thread="reader", label="set_pmd_at", change=("pte.shared2[0]", ["zero", "huge zero page"])),
             dict(thread="writer", change=("i_blocks[0]", ["written", 0])),  # v4.10: ->iomap_begin first
             dict(thread="writer", label="radix_tree_delete()", change=("mapping_tree[0]",)),
             dict(thread="writer", change=("dev[0]", "DATA(writer,1)")),
             dict(thread="reader", label="load: walk the page table"))
    assert not any(s["function"] == "unmap_mapping_range" for s in steps)


def test_fault_without_the_entry_wait_overwrites_anothers_entry():
    rep = counterexample("dax_fault_no_entry_wait")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_lost_write"
    iomap, empty, downgrade, store, zero = in_order(
        steps,
        dict(thread="reader", label="ext2_iomap_begin(inode, page 0, 2 pages, 0)"),  # v4.10: before the entry
        dict(thread="reader", change=("mapping_tree[0]",)),  # an empty PMD entry, locked
        dict(thread="writer", label="radix_tree_delete()"),  # downgrades the locked entry
        dict(thread="writer", change=("dev[0]", "DATA(writer,1)")),
        dict(thread="reader", label="dax_radix_locked_entry", change=("mapping_tree[0]",)))
    assert "empty PMD locked" in str(steps[empty]["changes"])
    assert "zero PMD locked" in str(steps[zero]["changes"])


def test_v4_10_read_fault_puts_a_hole_page_over_a_write_faults_entry():
    """v4.10 calls ->iomap_begin before it grabs the entry: the reader's
    extent (a hole) is stale by the time it locks the writer's entry, and
    dax_load_hole() replaces that entry with a hole page."""
    rep = counterexample("dax_hole_fault_vs_write_fault")
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_lost_write"
    in_order(steps,
             dict(thread="reader", label="ext2_iomap_begin(inode, page 0, 1 page, 0)"),
             dict(thread="writer", change=("i_blocks[0]", ["written", 0])),
             dict(thread="writer", change=("dev[0]", "DATA(writer,1)")),
             dict(thread="reader", label="find_or_create_page", change=("mapping_tree[0]",)),
             dict(thread="reader", label="finish_fault", change=("pte.shared2[0]", ["zero", "hole page"])))


@pytest.mark.parametrize("name", ["dax_writeback_no_entry_lock_fixed", "dax_pmd_downgrade_no_unmap_fixed",
                                  "dax_fault_no_entry_wait_fixed", "dax_hole_fault_vs_write_fault_4_12"])
def test_fixed_twins_are_clean(name):
    assert check(load(SCENARIOS / f"{name}.yaml"), save_trace=False).verdict == "clean"


def test_without_the_kernel_key_fsync_runs_the_seeds_code(tmp_path):
    """Only a scenario that says kernel: "4.10" writes back through the mapping tree."""
    path = tmp_path / "t.yaml"
    path.write_text(FILE.replace('kernel: "{kernel}"\n', "").format(
        size=4096, blocks="[hole]", ops="      - {op: dax_mmap_store, offset: 0}\n      - {op: fsync}"))
    ex = Execution(load(path).model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    assert not any(r["function"] == "dax_writeback_mapping_range" for r in ex.records)
    assert ex.state.pmem_unflushed.items == {0: "DATA(a,1)"}


def test_mkclean_misses_a_pte_under_a_pmd_entry_past_its_first_page(tmp_path):
    """v4.10's dax_mapping_entry_mkclean() looks at the entry's first index
    only: a second mapping that maps page 1 of a PMD entry with a PTE keeps
    it writable after fsync, so the next store there is never written back
    (what the 2022 fix with pfn_mkclean_range(), "Fixes: 4b4bb46d00b3",
    is about). One thread is enough."""
    path = tmp_path / "t.yaml"
    path.write_text(FILE.format(size=8192, blocks="[hole, hole]", kernel="4.10", ops="\n".join(
        f"      - {op}" for op in ["{op: dax_mmap_store, offset: 4096, pmd: true}",
                                   "{op: dax_mmap_store, offset: 4096, mapping: shared2}",
                                   "{op: fsync}",
                                   "{op: dax_mmap_store, offset: 4608, mapping: shared2}",
                                   "{op: fsync}"])).replace("invariants: []", "invariants: [fsync_flushes_stores]"))
    rep = check(load(path), save_trace=False)
    assert rep.verdict == "violation"
    assert "DATA(a,4)" in rep.outcome.violation.message
    steps = rep.trace["steps"]
    mkclean = find(steps, label="i_mmap_lock_read")
    assert [c[0] for c in steps[mkclean]["changes"] if c[0].startswith("pte_write")] == ["pte_write[('shared', 0)]",
                                                                                        "pte_write[('shared', 1)]"]


# -- truncate at 4.10: ext2's dax_sem and dax_delete_mapping_entry -------------------------------------


def test_truncate_deletes_the_entry_and_frees_the_block_under_dax_sem(tmp_path):
    fs, (r, t), steps = run_alone(tmp_path, ["{op: dax_mmap_store, offset: 4096}", "{op: truncate, size: 4096}"],
                                  kernel="4.10")
    assert t == 0 and fs.i_size.value == 4096
    assert 1 not in fs.mapping_tree.items and fs.ptes["shared"].items == {}
    assert fs.i_blocks.values[1] == ("hole", None)
    trunc = [s for s in steps if s["op"] == "truncate"]
    in_order(trunc,
             dict(label="dax_sem_down_write", change=("dax_sem",)),
             dict(label="i_size_write", change=("i_size",)),
             dict(function="unmap_mapping_range", change=("pte.shared[1]", None)),
             dict(function="wait_entry_unlocked", change=("mapping_tree[1]", None)),  # dax_delete_mapping_entry
             dict(label="__ext2_truncate_blocks", change=("i_blocks[1]", ["hole", None])),
             dict(label="dax_sem_up_write", change=("dax_sem",)))


@pytest.mark.parametrize("name, fault_steps", [
    ("ext2_dax_fault_vs_truncate_no_dax_sem", ("ext2_iomap_begin(inode, page 1, 1 page, 0)",)),
    ("ext2_dax_write_fault_vs_truncate_no_dax_sem", ("ext2_iomap_begin(inode, page 1, 1 page, IOMAP_WRITE)",)),
])
def test_without_dax_sem_the_fault_maps_the_block_truncate_frees(name, fault_steps):
    """v4.10: the fault looks the block up (or allocates it) before it grabs
    its entry; truncate finds no entry to delete, frees the block; the fault
    then inserts the entry and maps the freed block."""
    rep = counterexample(name)
    steps, v = rep.trace["steps"], rep.outcome.violation
    assert v.invariant == "no_freed_block_mapped"
    in_order(steps,
             dict(thread="fault", label=fault_steps[0]),
             dict(thread="truncate", label="i_size_write", change=("i_size", 4096)),
             dict(thread="truncate", label="__ext2_truncate_blocks", change=("i_blocks[1]", ["hole", None])),
             dict(thread="fault", change=("mapping_tree[1]",)),
             dict(thread="fault", label="vm_insert_mixed", change=("pte.shared[1]",)))


@pytest.mark.parametrize("name", ["ext2_dax_fault_vs_truncate_no_dax_sem_fixed",
                                  "ext2_dax_write_fault_vs_truncate_no_dax_sem_fixed"])
def test_truncate_twins_with_dax_sem_are_clean(name):
    assert check(load(SCENARIOS / f"{name}.yaml"), save_trace=False).verdict == "clean"


def test_with_dax_sem_the_entry_wait_of_truncate_is_not_what_protects(tmp_path):
    """dax_sem keeps the fault out of the whole truncate: leaving out the
    wait for a locked entry (in every caller, dax_delete_mapping_entry's
    too) changes nothing against truncate."""
    path = tmp_path / "t.yaml"
    path.write_text((SCENARIOS / "ext2_dax_fault_vs_truncate_no_dax_sem_fixed.yaml").read_text().replace(
        "fixes: []", "fixes: []\nedits:\n  drop:\n    - {in: get_unlocked_mapping_entry, call: wait_entry_unlocked}"))
    assert check(load(path), save_trace=False).verdict == "clean"


def test_the_seeds_fault_on_an_ext2_dax_file_is_refused_at_4_10(tmp_path):
    from racecheck.scenario import ScenarioError
    with pytest.raises(ScenarioError, match=r"ops\[0\]\.op: mmap_load on an ext2 DAX file is not modelled at kernel 4.10"):
        scenario = tmp_path / "t.yaml"
        scenario.write_text(FILE.format(size=8192, blocks="[written, written]", kernel="4.10",
                                        ops="      - {op: mmap_load, offset: 4096}"))
        load(scenario)
