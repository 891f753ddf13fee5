"""ext4's ->page_mkwrite at 4.5 and 5.15 (racecheck/models/page_mkwrite.py) and
no_discarded_write: the steps a store through a shared mapping of an ext4
page-cache file takes, in the kernel's order; write-back write-protects the
page again; the counterexamples of the two pairs (i_mmap_sem dropped from
ext4_page_mkwrite against collapse and insert range); what is refused by
name when the scenario loads."""

import pytest
import yaml
from conftest import SCENARIOS, counterexample, in_order

from racecheck.execution import Execution
from racecheck.runner import check
from racecheck.scenario import ScenarioError, load

FILE = """
name: t
filesystem: {fs}
kernel: {kernel}
file:
  size: {size}
  max_size: 8192
  blocks: {blocks}
  dax: false
threads:
  - name: a
    ops:
{ops}
{rest}
"""


def _write(tmp_path, ops, fs="ext4", kernel='"4.5"', size=8192, blocks="[written, written]", rest="invariants: []"):
    path = tmp_path / "t.yaml"
    path.write_text(FILE.format(fs=fs, kernel=kernel, size=size, blocks=blocks, rest=rest,
                                ops="\n".join(f"      - {op}" for op in ops)))
    return path


def run_alone(tmp_path, ops, **kw):
    """Run one thread to its end; (fs state, results, the labels of its steps)."""
    ex = Execution(load(_write(tmp_path, ops, **kw)).model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    return ex.state, [h["result"] for h in ex.rt.history if h["kind"] == "return"], [r["label"] for r in ex.records]


def _positions(labels, *prefixes):
    """The index of each prefix's step, each found after the one before."""
    at, out = 0, []
    for p in prefixes:
        at = next(i for i in range(at, len(labels)) if labels[i].startswith(p))
        out.append(at)
        at += 1
    return out


# -- the path, thread alone ------------------------------------------------------------------------


def test_store_takes_ext4_page_mkwrite_under_i_mmap_sem(tmp_path):
    """do_shared_fault: ext4_filemap_fault returns page 1 locked (under
    i_mmap_sem, let go), the page is unlocked, ext4_page_mkwrite takes
    i_mmap_sem shared and block_page_mkwrite locks the page, rechecks it,
    maps and commits its buffer; i_mmap_sem goes; the PTE is installed
    writable; the store lands in the dirty page."""
    fs, (w, r), labels = run_alone(tmp_path, ["{op: mmap_store, offset: 4096}", "{op: mmap_load, offset: 4096}"])
    assert r.units == (w.tag,) and fs.page_cache.items[1][0] == w.tag
    assert fs.ptes["shared"].items == {1: ("page", 1)} and fs.pte_write.items == {("shared", 1): True}
    assert all(b.dirty for b in fs.page_buffers.items[1])
    _positions(labels, "down_read(&EXT4_I(inode)->i_mmap_sem)", "up_read(&EXT4_I(inode)->i_mmap_sem)",  # ->fault
               "unlock_page(fault_page); tmp = do_page_mkwrite",
               "file_update_time(vma->vm_file); down_read(&EXT4_I(inode)->i_mmap_sem)",
               "lock_page(page 1); size = i_size_read", "block_commit_write(page 1, 0, 4096)",
               "up_read(&EXT4_I(inode)->i_mmap_sem)", "pte_offset_map_lock(); if (pte_same(*pte, orig_pte)) do_set_pte")
    assert not fs.i_mmap_sem.readers


def test_store_into_a_hole_reserves_a_delayed_block_that_writeback_allocates(tmp_path):
    """ext4_da_get_block_prep: the hole gets a reservation (BH_Delay), no
    block; ext4_writepages allocates it and the store's data reaches it."""
    fs, (w, wb, r), labels = run_alone(tmp_path, ["{op: mmap_store, offset: 4096}", "{op: writepages}",
                                                  "{op: buffered_read, offset: 4096, len: 512}"],
                                       blocks="[written, hole]")
    i = labels.index(next(lb for lb in labels if lb.startswith("ext4_da_map_blocks(block 1)")))
    assert i < labels.index(next(lb for lb in labels if lb.startswith("block_commit_write(page 1")))
    state, pblk = fs.i_blocks.values[1]
    assert state == "written" and fs.dev.values[pblk * 8] == w.tag and r.units == (w.tag,)


def test_store_to_a_read_only_page_goes_through_wp_page_shared(tmp_path):
    fs, (r, w, r2), labels = run_alone(tmp_path, ["{op: mmap_load, offset: 4096}", "{op: mmap_store, offset: 4096}",
                                                  "{op: mmap_load, offset: 4096}"])
    assert r.units == ("DATA(init,0)",) and r2.units == (w.tag,)
    _positions(labels, "file_update_time(vma->vm_file); down_read(&EXT4_I(inode)->i_mmap_sem)",
               "pte_offset_map_lock(); if (pte_same(*pte, orig_pte)) wp_page_reuse")


def test_writeback_write_protects_the_page_so_the_next_store_faults_again(tmp_path):
    """clear_page_dirty_for_io -> page_mkclean: after writepages the PTE is
    read-only, and the second store runs ext4_page_mkwrite again (and
    dirties the page again); with page_mkclean dropped it would not."""
    ops = ["{op: mmap_store, offset: 4096}", "{op: writepages}", "{op: mmap_store, offset: 4096}"]
    fs, (w1, _, w2), labels = run_alone(tmp_path, ops)
    mkwrites = [lb for lb in labels if lb.startswith("file_update_time(vma->vm_file); down_read")]
    assert len(mkwrites) == 2 and fs.page_cache.items[1][0] == w2.tag
    assert all(b.dirty for b in fs.page_buffers.items[1])
    fs, _, labels = run_alone(tmp_path, ops, rest="edits:\n  drop:\n    - {in: ext4_bio_write_page, call: page_mkclean}\n"
                                                  "invariants: []")
    assert len([lb for lb in labels if lb.startswith("file_update_time(vma->vm_file); down_read")]) == 1
    assert not any(b.dirty for b in fs.page_buffers.items[1])  # the second store dirtied nothing


def test_store_past_eof_is_sigbus(tmp_path):
    fs, (ret,), _ = run_alone(tmp_path, ["{op: mmap_store, offset: 4096}"], size=4096, blocks="[written, hole]")
    assert ret == "VM_FAULT_SIGBUS" and fs.ptes["shared"].items == {}


def test_private_store_copies_the_page_and_takes_no_mkwrite(tmp_path):
    fs, (w, r), labels = run_alone(tmp_path, ["{op: mmap_store, offset: 4096, mapping: private}",
                                              "{op: buffered_read, offset: 4096, len: 512}"])
    assert r.units == ("DATA(init,0)",) and fs.ptes["private"].items[1][0] == "anon"
    assert not any(lb.startswith("file_update_time") for lb in labels)


# -- the pairs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, other, page", [
    ("ext4_mkwrite_vs_collapse_no_i_mmap_sem", "collapse", 1),
    ("ext4_mkwrite_vs_insert_no_i_mmap_sem", "insert", 0),
])
def test_mkwrite_dirties_the_page_between_the_write_out_and_the_drop(name, other, page):
    """The range operation takes i_mmap_sem and writes out (the page is
    clean); the mkwrite, without i_mmap_sem, dirties the page; the store
    lands in it; truncate_pagecache drops it; the extents move without it."""
    rep = counterexample(name)
    assert rep.outcome.violation.invariant == "no_discarded_write"
    steps = rep.trace["steps"]
    in_order(steps,
             dict(thread=other, label="down_write(&EXT4_I(inode)->i_mmap_sem)"),
             dict(thread=other, label="filemap_fdatawait_range"),
             dict(thread="store", label=f"block_commit_write(page {page}", change=(f"page_buffers[{page}]",)),
             dict(thread="store", label="store: walk the page table", change=(f"page_cache[{page}]",)),
             dict(thread=other, label=f"lock_page(page {page})", change=(f"page_cache[{page}]", None)),
             dict(thread=other, label="ext4_ext_shift_extents"))
    assert "the write was discarded" in rep.outcome.violation.message


@pytest.mark.parametrize("name", ["ext4_mkwrite_vs_collapse_no_i_mmap_sem", "ext4_mkwrite_vs_insert_no_i_mmap_sem"])
def test_the_twin_with_i_mmap_sem_is_clean(name):
    rep = check(load(SCENARIOS / f"{name}_fixed.yaml"), save_trace=False, do_minimise=False)
    assert rep.verdict == "clean" and rep.outcome.stats.executions > 1


@pytest.mark.parametrize("name", ["ext4_mkwrite_vs_collapse_no_i_mmap_sem", "ext4_mkwrite_vs_insert_no_i_mmap_sem"])
def test_the_buggy_twins_violate_under_exhaustive_exploration_too(name):
    rep = check(load(SCENARIOS / f"{name}.yaml"), save_trace=False, do_minimise=False, reduction="none")
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_discarded_write"


def test_without_page_mkclean_the_fixed_collapse_twin_loses_the_store(tmp_path):
    """The write-out's page_mkclean is what sends a store after it back to
    ext4_page_mkwrite (and so to i_mmap_sem): without it the store lands in
    a clean page the collapse then drops."""
    spec = yaml.safe_load((SCENARIOS / "ext4_mkwrite_vs_collapse_no_i_mmap_sem_fixed.yaml").read_text())
    spec["edits"] = {"drop": [{"in": "ext4_bio_write_page", "call": "page_mkclean"}]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec))
    rep = check(load(path), save_trace=False, do_minimise=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_discarded_write"


# -- no_discarded_write on its own -----------------------------------------------------------------------


@pytest.mark.parametrize("ops, judged", [
    # a buffered write, then collapse of block 0: the data moves to offset 0 and is kept
    (["{op: buffered_write, offset: 4096, len: 512}", "{op: collapse_range, offset: 0, len: 4096}"], True),
    # the write lies in the collapsed range: not judged (the collapse removes it)
    (["{op: buffered_write, offset: 0, len: 512}", "{op: collapse_range, offset: 0, len: 4096}"], False),
    # a truncate may remove anything: not judged
    (["{op: buffered_write, offset: 4096, len: 512}", "{op: truncate, size: 0}"], False),
])
def test_no_discarded_write_judges_only_what_nothing_removes(tmp_path, ops, judged):
    from racecheck.models.invariants import NoDiscardedWrite, file_units
    sc = load(_write(tmp_path, ops, rest="invariants: [no_discarded_write]"))
    ex = Execution(sc.model)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    assert NoDiscardedWrite().at_end(ex.state, ex) is None
    if judged:
        assert "DATA(a,1)" in file_units(ex.state)


def test_no_discarded_write_sees_a_page_dropped_without_write_out(tmp_path):
    """The check itself: a store whose dirty page truncate_pagecache drops
    (the collapse's write-out left out) is reported."""
    sc = load(_write(tmp_path, ["{op: mmap_store, offset: 4096}", "{op: collapse_range, offset: 0, len: 4096}"],
                     rest="edits:\n  drop:\n    - {in: ext4_collapse_range, call: filemap_write_and_wait_range}\n"
                          "invariants: [no_discarded_write]"))
    rep = check(sc, save_trace=False, do_minimise=False)
    assert rep.verdict == "violation" and rep.outcome.violation.invariant == "no_discarded_write"


# -- refused by name -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel, match", [
    ('"4.1"', r"ops\[0\]\.op: mmap_store on a page-cache file .*not modelled at kernel 4.1"),
    ('{__do_fault: "4.5"}', r"ops\[0\]\.op: .*with ext4_page_mkwrite at the seeds"),
])
def test_a_store_the_library_does_not_model_is_refused_by_name(tmp_path, kernel, match):
    with pytest.raises(ScenarioError, match=match):
        load(_write(tmp_path, ["{op: mmap_store, offset: 4096}"], kernel=kernel))


def test_xfs_store_with_the_4_5_block_page_mkwrite_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r"with block_page_mkwrite at 4.5"):
        load(_write(tmp_path, ["{op: mmap_store, offset: 4096}"], fs="xfs",
                    kernel='{__do_fault: "4.1", block_page_mkwrite: "4.5"}'))


# -- dpor against bfs (states by fingerprint, no reduction) on variants of the pairs ----------------------


@pytest.mark.parametrize("store, other, size, blocks, drop, expected", [
    (4096, "{op: collapse_range, offset: 0, len: 4096}", 8192, "[written, written]", True, "no_discarded_write"),
    (4096, "{op: collapse_range, offset: 0, len: 4096}", 8192, "[written, hole]", False, None),
    (0, "{op: insert_range, offset: 0, len: 4096}", 4096, "[hole, hole]", True, "no_discarded_write"),
    (0, "{op: insert_range, offset: 0, len: 4096}", 4096, "[written, hole]", False, None),
    # the page lock and block_page_mkwrite's recheck keep punch and truncate out without i_mmap_sem
    (0, "{op: punch_hole, offset: 0, len: 4096}", 8192, "[written, written]", True, None),
    (4096, "{op: truncate, size: 4096}", 8192, "[written, written]", True, None),
])
def test_dpor_and_bfs_agree_on_stores_against_range_operations(tmp_path, store, other, size, blocks, drop,
                                                                 expected):
    edits = "edits:\n  drop:\n    - {in: ext4_page_mkwrite, lock: i_mmap_sem}\n" if drop else ""
    path = _write(tmp_path, [f"{{op: mmap_store, offset: {store}}}", "{op: mmap_load, offset: 0}"], size=size,
                  blocks=blocks, rest=f"""  - name: b
    ops:
      - {other}
{edits}invariants: [no_discarded_write, no_stale_data, no_freed_block_mapped, no_lost_write, mappings_coherent]""")
    verdicts = {}
    for strategy in ("dfs", "bfs"):
        rep = check(load(path), strategy=strategy, save_trace=False, do_minimise=False)
        verdicts[strategy] = (rep.verdict, rep.outcome.violation and rep.outcome.violation.invariant)
    assert verdicts["dfs"] == verdicts["bfs"], verdicts
    assert verdicts["dfs"] == ("violation" if expected else "clean", expected), verdicts


def test_a_page_mapped_after_the_punch_unmapped_it_is_unmapped_when_truncated(tmp_path):
    """truncate_inode_page unmaps a page still mapped: a store whose fault
    installed its PTE after the punch's unmap_mapping_range and before the
    punch locked the page must not keep a writable PTE to the dropped page
    (a second store through it would be lost, and the load after it read
    zeros)."""
    path = _write(tmp_path, ["{op: mmap_store, offset: 0}", "{op: mmap_store, offset: 0}", "{op: mmap_load, offset: 0}"],
                  rest="""  - name: b
    ops:
      - {op: punch_hole, offset: 0, len: 4096}
invariants: [no_lost_write, no_stale_data, no_freed_block_mapped, mappings_coherent]""")
    for strategy in ("dfs", "bfs"):
        assert check(load(path), strategy=strategy, save_trace=False, do_minimise=False).verdict == "clean"


# -- 5.15: the same under invalidate_lock --------------------------------------------------------------


def test_store_at_5_15_takes_invalidate_lock_shared(tmp_path):
    fs, (w, r), labels = run_alone(tmp_path, ["{op: mmap_store, offset: 4096}", "{op: mmap_load, offset: 4096}"],
                                   kernel='"5.15"')
    assert r.units == (w.tag,) and not fs.invalidate_lock.readers
    _positions(labels, "unlock_page(fault_page); tmp = do_page_mkwrite",
               "file_update_time(vma->vm_file); filemap_invalidate_lock_shared(mapping)",
               "lock_page(page 1); size = i_size_read", "filemap_invalidate_unlock_shared(mapping)",
               "pte_offset_map_lock(); if (pte_same(*pte, orig_pte)) do_set_pte")


@pytest.mark.parametrize("name", ["ext4_mkwrite_vs_collapse_no_i_mmap_sem", "ext4_mkwrite_vs_insert_no_i_mmap_sem"])
def test_the_pairs_at_5_15_with_invalidate_lock(tmp_path, name):
    """The pairs with kernel 5.15 (d4f5258eae7b): the mkwrite's
    filemap_invalidate_lock_shared dropped loses the store; kept, clean;
    dfs and bfs agree."""
    for suffix, expected in (("", "no_discarded_write"), ("_fixed", None)):
        spec = yaml.safe_load((SCENARIOS / f"{name}{suffix}.yaml").read_text())
        spec["kernel"] = "5.15"
        if "edits" in spec:
            spec["edits"] = {"drop": [{"in": "ext4_page_mkwrite", "lock": "invalidate_lock"}]}
        path = tmp_path / f"t{suffix}.yaml"
        path.write_text(yaml.safe_dump(spec))
        for strategy in ("dfs", "bfs"):
            rep = check(load(path), strategy=strategy, save_trace=False, do_minimise=False)
            got = rep.outcome.violation.invariant if rep.outcome.violation else None
            assert (rep.verdict, got) == ("violation" if expected else "clean", expected), (suffix, strategy)


@pytest.mark.parametrize("kernel", ['"4.5"', '"4.10"', '"5.15"'])
def test_fsync_writes_a_stored_delayed_page_back_at_every_release(tmp_path, kernel):
    """fsync after a store into a hole of the journalled flavour: from 4.10
    on, filemap_write_and_wait is models/dax_entry.py's, which for a file
    that is not DAX runs the release before it (4.4's delalloc write-out;
    the seeds' one wrote a delayed buffer to no block)."""
    fs, (w, ret), _ = run_alone(tmp_path, ["{op: mmap_store, offset: 4096}", "{op: fsync}"], fs="ext4-dax",
                                kernel=kernel, blocks="[written, hole]")
    state, pblk = fs.i_blocks.values[1]
    assert ret == 0 and state == "written" and fs.dev.values[pblk * 8] == w.tag


def test_block_page_mkwrite_return_of_each_release():
    """include/linux/buffer_head.h: at 4.5 -EAGAIN is VM_FAULT_RETRY, at 5.15
    VM_FAULT_NOPAGE (as -EFAULT at both); 0 is VM_FAULT_LOCKED, -ENOSPC
    VM_FAULT_SIGBUS."""
    from racecheck.models.dax import VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_RETRY, VM_FAULT_SIGBUS
    from racecheck.models.kernel import RELEASES
    ret = {r: RELEASES["block_page_mkwrite_return"][r].fn for r in ("4.5", "5.15")}
    assert [ret["4.5"](None, e) for e in (0, -14, -11, -28)] == [VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_RETRY,
                                                                 VM_FAULT_SIGBUS]
    assert [ret["5.15"](None, e) for e in (0, -14, -11, -28)] == [VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_NOPAGE,
                                                                  VM_FAULT_SIGBUS]
