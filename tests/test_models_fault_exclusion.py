"""The fault-exclusion locks (racecheck/models/fault_exclusion.py): ext4's
i_mmap_sem (4.5), XFS's MMAPLOCK (4.1) and the VFS's invalidate_lock (5.15).
The counterexamples of the pairs show the racing steps in the order the
kernel commits describe; the paths do what the kernel code of each release
does when nothing races; the ``kernel:`` key picks these releases, and
without it the seeds' code runs."""

import pytest
from conftest import SCENARIOS, counterexample, in_order

from racecheck.execution import Execution
from racecheck.models import fault_exclusion as fx
from racecheck.models.kernel import FUNCTIONS, RELEASES
from racecheck.runner import check
from racecheck.scenario import load

# -- the counterexamples of the pairs ------------------------------------------------------------


def test_dax_fault_maps_the_block_the_punch_frees_without_i_mmap_sem():
    """ea3d7209ca01: the DAX fault looks the block up, the punch unmaps the
    range and frees the block, the fault inserts the PFN."""
    rep = counterexample("ext4_dax_fault_vs_punch_no_i_mmap_sem")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_freed_block_mapped"
    in_order(steps,
             dict(thread="fault", label="down_read(&EXT4_I(inode)->i_mmap_sem)", change=("i_mmap_sem",)),
             dict(thread="fault", label="ext4_get_block(block 1, create=0)"),
             dict(thread="punch", label="unmap_mapping_range"),
             dict(thread="punch", label="ext4_ext_remove_space", change=("owner[1]", "other file")),
             dict(thread="fault", label="vm_insert_mixed", change=("pte.shared[1]", ["block", 1])))


def test_dax_fault_maps_a_block_the_collapse_moves_without_i_mmap_sem():
    """The collapse unmaps from block 0 on, the fault maps block 1 before the
    shift, the shift moves block 1 to file block 0 (and frees block 0)."""
    rep = counterexample("ext4_dax_fault_vs_collapse_no_i_mmap_sem")
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_freed_block_mapped"
    in_order(steps,
             dict(thread="collapse", label="unmap_mapping_range"),
             dict(thread="fault", label="down_read(&EXT4_I(inode)->i_mmap_sem)"),
             dict(thread="fault", label="ext4_get_block(block 1, create=0)"),
             dict(thread="fault", label="vm_insert_mixed", change=("pte.shared[1]", ["block", 1])),
             dict(thread="collapse", label="SHIFT_LEFT", change=("owner[1]", 0)))
    assert "now: 0" in rep.outcome.violation.message


@pytest.mark.parametrize("name, fault_fn, dropped_in", [
    ("ext4_filemap_fault_vs_punch_no_i_mmap_sem", "ext4_filemap_fault", "fault"),
    ("xfs_filemap_fault_vs_punch_no_mmaplock", "xfs_filemap_fault", "punch"),
    ("xfs_filemap_fault_vs_zero_range_no_mmaplock", "xfs_filemap_fault", "fault"),
    ("filemap_fault_vs_ext4_punch_no_invalidate_lock", "filemap_fault", "fault"),
    ("filemap_fault_vs_xfs_punch_no_invalidate_lock", "filemap_fault", "punch"),
])
def test_page_cache_fault_reads_the_block_the_punch_frees(name, fault_fn, dropped_in):
    """The race of 730633f0b7f9's message: the punch truncates the page
    cache, the fault adds a page and ->readpage maps the block, the punch
    frees it (another file's data lands in it), the read brings that in."""
    rep = counterexample(name)
    steps = rep.trace["steps"]
    assert rep.outcome.violation.invariant == "no_stale_data"
    other = "zero" if "zero_range" in name else "punch"
    truncate, add, lookup, free, read, load_ = in_order(
        steps,
        dict(thread=other, label="pagevec_lookup"),
        dict(thread="fault", change=("page_cache[1]",)),
        dict(thread="fault", label="(block 1, create=0)"),
        dict(thread=other, change=("owner[1]", "other file")),
        dict(thread="fault", label="submit_bh(READ, bh)"),
        dict(thread="fault", label="load: walk the page table"))
    # the side that keeps its lock still takes it; the other side's is gone
    kept = {"ext4_filemap_fault": "down_write(&EXT4_I(inode)->i_mmap_sem)",
            "xfs_filemap_fault": "xfs_ilock(ip, XFS_MMAPLOCK_SHARED)" if dropped_in == "punch"
            else "xfs_ilock(ip, XFS_MMAPLOCK_EXCL)",
            "filemap_fault": "filemap_invalidate_lock_shared(mapping)" if dropped_in == "punch"
            else "filemap_invalidate_lock(mapping)"}[fault_fn]
    assert any(s["label"].startswith(kept) and not s["label"].endswith("[edits: dropped]") for s in steps)
    assert "STALE" in rep.outcome.violation.message


def test_filemap_fault_5_15_takes_invalidate_lock_only_to_read_the_page():
    rep = counterexample("filemap_fault_vs_xfs_punch_no_invalidate_lock")
    steps = rep.trace["steps"]
    take, create, read, drop = in_order(
        steps,
        dict(thread="fault", label="filemap_invalidate_lock_shared(mapping)"),
        dict(thread="fault", label="pagecache_get_page(mapping, 1, FGP_CREAT|FGP_FOR_MMAP"),
        dict(thread="fault", label="block_read_full_page(page 1)"),
        dict(thread="fault", label="filemap_invalidate_unlock_shared(mapping)"))
    assert steps[take]["changes"]  # the shared side is taken: the exclusive one was dropped


@pytest.mark.parametrize("name", [
    "ext4_dax_fault_vs_punch_no_i_mmap_sem", "ext4_filemap_fault_vs_punch_no_i_mmap_sem",
    "ext4_dax_fault_vs_collapse_no_i_mmap_sem",
    "xfs_filemap_fault_vs_punch_no_mmaplock", "xfs_filemap_fault_vs_zero_range_no_mmaplock",
    "filemap_fault_vs_ext4_punch_no_invalidate_lock", "filemap_fault_vs_xfs_punch_no_invalidate_lock"])
def test_the_twin_with_the_lock_is_clean(name):
    sc = load(SCENARIOS / f"{name}_fixed.yaml")
    rep = check(sc, save_trace=False, do_minimise=False)
    assert rep.verdict == "clean"


# -- the kernel: key picks these releases; without it the seeds' code runs ------------------------


FILE = """
name: t
filesystem: {fs}
{kernel}
file:
  size: 8192
  blocks: [written, written]
  dax: {dax}
threads:
  - name: a
    ops:
{ops}
invariants: []
"""


def run_alone(tmp_path, ops, fs="ext4", kernel='kernel: "4.5"', dax="false"):
    """Run one thread to its end; return (fs state, [results], steps' labels)."""
    text = FILE.format(fs=fs, kernel=kernel, dax=dax, ops="\n".join(f"      - {op}" for op in ops))
    path = tmp_path / "t.yaml"
    path.write_text(text)
    sc = load(path)
    ex = Execution(sc.model)
    labels = []
    while ex.enabled():
        ex.step(ex.enabled()[0])
        labels.append(ex.rt.history[-1].get("label", "") if ex.rt.history else "")
    results = [h["result"] for h in ex.rt.history if h["kind"] == "return"]
    return ex.state, results, sc


def test_releases_are_registered_by_kernel_name():
    for name, releases in [("ext4_punch_hole", {"4.5", "5.15"}), ("ext4_setattr", {"4.5", "5.15"}),
                           ("ext4_dax_fault", {"4.5", "5.15"}), ("__do_fault", {"4.1", "4.5", "5.15"}),
                           ("filemap_fault", {"4.1", "5.15"}), ("xfs_setattr_size", {"4.1", "5.15"}),
                           ("xfs_file_fallocate", {"4.1", "5.15"})]:
        assert set(RELEASES[name]) >= releases, name
    # the seeds' models stay the default where they exist
    assert FUNCTIONS["ext4_punch_hole"].module == "racecheck.models.truncate"
    assert FUNCTIONS["ext4_setattr"].module == "racecheck.models.truncate"
    assert FUNCTIONS["__do_fault"].module == "racecheck.models.dax"
    assert FUNCTIONS["ext4_dax_fault"].module == "racecheck.models.ext4_fault"
    # a function no earlier model has is its first release by default
    assert FUNCTIONS["ext4_collapse_range"].fn is RELEASES["ext4_collapse_range"]["4.5"].fn


@pytest.mark.parametrize("kernel, picked", [
    ('kernel: "4.5"', {"ext4_punch_hole": "4.5", "__do_fault": "4.5", "filemap_fault": "4.1"}),
    ('kernel: "4.1"', {"__do_fault": "4.1", "filemap_fault": "4.1"}),
    ('kernel: "5.15"', {"ext4_punch_hole": "5.15", "__do_fault": "5.15", "filemap_fault": "5.15"}),
    ('kernel: {ext4_punch_hole: "4.5"}', {"ext4_punch_hole": "4.5"}),
])
def test_kernel_key_picks_the_releases(tmp_path, kernel, picked):
    _, _, sc = run_alone(tmp_path, ["{op: punch_hole, offset: 4096, len: 4096}"], kernel=kernel)
    table = sc.model.table
    for name, release in picked.items():
        assert table.impl[name] is RELEASES[name][release].fn, (name, release)


def test_without_kernel_key_the_seeds_punch_runs(tmp_path):
    fs, (ret,), sc = run_alone(tmp_path, ["{op: punch_hole, offset: 4096, len: 4096}"], kernel="")
    assert "ext4_punch_hole" not in sc.model.table.impl and "__do_fault" not in sc.model.table.impl
    assert fs.i_mmap_sem.writer is None and fs.i_blocks.values[1] == ("hole", None)


def test_corpus_without_kernel_key_is_untouched():
    """No scenario of the seeds' corpus names a kernel release, so none runs these models."""
    for path in SCENARIOS.glob("*.yaml"):
        sc = load(path)
        if sc.model.kernel is None:
            assert not any(getattr(f, "__module__", "") == fx.__name__ for f in sc.model.table.impl.values())


# -- the paths when nothing races -------------------------------------------------------------------


@pytest.mark.parametrize("fs_, kernel", [("ext4", 'kernel: "4.5"'), ("xfs", 'kernel: "4.1"'),
                                         ("ext4", 'kernel: "5.15"'), ("xfs", 'kernel: "5.15"')])
def test_page_cache_fault_reads_the_page_and_maps_it_read_only(tmp_path, fs_, kernel):
    fs, (r1, r2), _ = run_alone(tmp_path, ["{op: mmap_load, offset: 4096}", "{op: mmap_load, offset: 4608}"],
                                fs=fs_, kernel=kernel)
    assert r1.units == ("DATA(init,0)",) and r2.units == ("DATA(init,0)",) and r1.how == "load"
    assert fs.ptes["shared"].items == {1: ("page", 1)}
    assert fs.page_cache.items[1] == ("DATA(init,0)",) * 8
    assert fs.page_uptodate.items[1] is True
    for lock in ("invalidate_lock", "i_mmap_sem" if fs_ == "ext4" else "i_mmaplock"):
        sem = getattr(fs, lock)
        assert sem.writer is None and not sem.readers


def test_page_cache_fault_beyond_eof_is_sigbus(tmp_path):
    fs, (t, r), _ = run_alone(tmp_path, ["{op: truncate, size: 4096}", "{op: mmap_load, offset: 4096}"])
    assert t == 0 and r == "VM_FAULT_SIGBUS"
    assert fs.ptes["shared"].items == {}


def test_truncate_4_5_unmaps_and_frees_under_i_mmap_sem(tmp_path):
    fs, (r, t), _ = run_alone(tmp_path, ["{op: mmap_load, offset: 4096}", "{op: truncate, size: 4096}"])
    assert r.units == ("DATA(init,0)",) and t == 0 and fs.i_size.value == 4096
    assert fs.i_mmap_sem.writer is None
    assert fs.ptes["shared"].items == {} and 1 not in fs.page_cache.items
    assert fs.i_blocks.values[1] == ("hole", None)


def test_dax_fault_4_5_takes_i_mmap_sem_around_do_dax_fault(tmp_path):
    rep = counterexample("ext4_dax_fault_vs_punch_no_i_mmap_sem")
    steps = rep.trace["steps"]
    down, get = in_order(steps, dict(thread="fault", label="down_read(&EXT4_I(inode)->i_mmap_sem)"),
                          dict(thread="fault", label="ext4_get_block"))
    assert steps[get]["function"] in ("do_dax_fault", "ext4_get_block")


@pytest.mark.parametrize("kernel", ['kernel: "4.5"', 'kernel: "5.15"'])
def test_ext4_collapse_range_removes_the_blocks_and_shifts_the_rest(tmp_path, kernel):
    text_ops = ["{op: collapse_range, offset: 0, len: 4096}"]
    fs, (ret,), _ = run_alone(tmp_path, text_ops, kernel=kernel)
    assert ret == 0
    assert fs.i_size.value == 4096
    assert fs.i_blocks.values == [("written", 1), ("hole", None)]
    assert fs.owner.values[1] == 0 and fs.owner.values[0] == "other file"


def test_ext4_collapse_range_to_eof_is_einval(tmp_path):
    fs, (ret,), _ = run_alone(tmp_path, ["{op: collapse_range, offset: 4096, len: 4096}"])
    assert ret == "-EINVAL" and fs.i_size.value == 8192


def test_ext4_insert_range_leaves_a_hole_and_grows_the_file(tmp_path):
    text = FILE.format(fs="ext4", kernel='kernel: "4.5"', dax="false",
                       ops="      - {op: insert_range, offset: 0, len: 4096}").replace(
        "size: 8192\n  blocks: [written, written]", "size: 4096\n  max_size: 8192\n  blocks: [written]")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    ex = Execution(load(path).model)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    fs = ex.state
    assert fs.i_size.value == 8192
    assert fs.i_blocks.values == [("hole", None), ("written", 0)]
    assert fs.owner.values[0] == 1


def test_ext4_zero_range_makes_written_blocks_unwritten(tmp_path):
    fs, (ret, r), _ = run_alone(tmp_path, ["{op: zero_range, offset: 4096, len: 4096}",
                                           "{op: mmap_load, offset: 4096}"])
    assert ret == 0 and fs.i_blocks.values[1] == ("unwritten", 1)
    assert r.units == ("ZERO",)  # an unwritten extent reads as zeros


@pytest.mark.parametrize("op, blocks, size", [
    ("{op: punch_hole, offset: 4096, len: 4096}", [("written", 0), ("hole", None)], 8192),
    ("{op: zero_range, offset: 4096, len: 4096}", [("written", 0), ("hole", None)], 8192),
    ("{op: collapse_range, offset: 0, len: 4096}", [("written", 1), ("hole", None)], 4096),
])
def test_xfs_fallocate_modes_under_the_mmaplock(tmp_path, op, blocks, size):
    fs, (ret,), _ = run_alone(tmp_path, [op], fs="xfs", kernel='kernel: "4.1"')
    assert ret == 0
    assert fs.i_blocks.values == blocks and fs.i_size.value == size
    assert fs.i_mmaplock.writer is None and fs.i_mutex.owner is None


def test_xfs_truncate_4_1_takes_the_mmaplock(tmp_path):
    fs, (r, t), _ = run_alone(tmp_path, ["{op: mmap_load, offset: 4096}", "{op: truncate, size: 4096}"],
                              fs="xfs", kernel='kernel: "4.1"')
    assert r.units == ("DATA(init,0)",) and t == 0
    assert fs.ptes["shared"].items == {} and fs.i_blocks.values[1] == ("hole", None)
    assert fs.i_mmaplock.writer is None


def test_store_through_a_page_cache_mapping_is_refused(tmp_path):
    # refused by name when the scenario loads, with the line of the operation
    # (ext4's ->page_mkwrite is modelled at 4.5 and 5.15 (models/page_mkwrite.py), XFS's at 4.1)
    from racecheck.scenario import ScenarioError
    with pytest.raises(ScenarioError, match=r"ops\[0\]\.op: mmap_store on a page-cache file .*page_mkwrite"):
        run_alone(tmp_path, ["{op: mmap_store, offset: 4096}"], kernel='kernel: "4.1"')
    with pytest.raises(ScenarioError, match=r"is not modelled at kernel 5.15"):
        run_alone(tmp_path, ["{op: mmap_store, offset: 4096}"], fs="xfs", kernel='kernel: "5.15"')


# -- XFS 4.1 as read against the v4.1 text --------------------------------------------------------


def _labels_of(tmp_path, ops, fs_="xfs", kernel='kernel: "4.1"', size=8192, blocks="[written, written]"):
    """Run one thread alone; (fs state, results, the labels of its steps)."""
    text = FILE.format(fs=fs_, kernel=kernel, dax="true" if fs_ == "ext4-dax" else "false", ops="\n".join(f"      - {op}" for op in ops)).replace(
        "size: 8192\n  blocks: [written, written]", f"size: {size}\n  blocks: {blocks}")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    ex = Execution(load(path).model, tracing=True)
    while ex.enabled():
        ex.step(ex.enabled()[0])
    return ex.state, [h["result"] for h in ex.rt.history if h["kind"] == "return"], [r["label"] for r in ex.records]


def test_xfs_free_file_space_writes_back_then_drops_the_page_cache_before_freeing(tmp_path):
    """v4.1: inode_dio_wait, filemap_write_and_wait_range, truncate_pagecache_range,
    then xfs_bunmapi; a dirty page of the range reaches its block first."""
    fs, (w, ret), labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}",
                                                 "{op: punch_hole, offset: 4096, len: 4096}"])
    assert ret == 0 and fs.i_blocks.values[1] == ("hole", None)
    order = [next(i for i, lb in enumerate(labels) if lb.startswith(p)) for p in
             ("xfs_ilock(ip, XFS_MMAPLOCK_EXCL)", "filemap_write_and_wait_range", "lock_page(page 1); xfs_vm_writepage",
              "pagevec_lookup", "xfs_bunmapi")]
    assert order == sorted(order)
    assert 1 not in fs.page_cache.items


def test_xfs_zero_remaining_bytes_stops_at_i_size(tmp_path):
    """xfs_zero_remaining_bytes() clamps the end to XFS_ISIZE: of a punch
    of the second half of block 1 in a file of 6144 bytes, the units up to
    EOF are zeroed on the device and those past it are left as they were."""
    fs, (ret,), labels = _labels_of(tmp_path, ["{op: punch_hole, offset: 5120, len: 3072}"], size=6144)
    assert ret == 0 and any(lb.startswith("xfs_zero_remaining_bytes") for lb in labels)
    pblk = fs.i_blocks.values[1][1]
    units = fs.dev.values[pblk * 8:(pblk + 1) * 8]
    assert units == ["DATA(init,0)"] * 2 + ["ZERO"] * 2 + ["DATA(init,0)"] * 4



def test_ext4_collapse_4_5_writes_back_inside_its_locks_then_shifts_the_data(tmp_path):
    """32ebffd3bbb4 (v4.5): the write-out of the dirty pages is inside i_mutex
    and i_mmap_sem, before truncate_pagecache; the data written to page 1
    before the collapse of block 0 is read back at offset 0."""
    fs, (w, ret, r), labels = _labels_of(
        tmp_path, ["{op: buffered_write, offset: 4096, len: 512}", "{op: collapse_range, offset: 0, len: 4096}",
                   "{op: buffered_read, offset: 0, len: 512}"], fs_="ext4", kernel='kernel: "4.5"')
    assert ret == 0 and r.units == ("DATA(a,1)",)
    order = [next(i for i, lb in enumerate(labels) if lb.startswith(p)) for p in
             ("mutex_lock(&inode->i_mutex)", "down_write(&EXT4_I(inode)->i_mmap_sem)",
              "filemap_fdatawait_range", "pagevec_lookup_entries", "down_write(&EXT4_I(inode)->i_data_sem)")]
    assert order == sorted(order)



# -- XFS 4.1: ->page_mkwrite -----------------------------------------------------------------------


def test_xfs_store_through_a_shared_mapping_takes_page_mkwrite_under_the_mmaplock(tmp_path):
    """do_shared_fault (4.1): ->fault (xfs_filemap_fault) returns the page
    locked; it is unlocked, xfs_filemap_page_mkwrite takes XFS_MMAPLOCK_SHARED
    and block_page_mkwrite locks the page, rechecks it, maps and dirties its
    buffers; the PTE is installed writable and the store lands in the page."""
    fs, (w, r), labels = _labels_of(tmp_path, ["{op: mmap_store, offset: 4096}", "{op: mmap_load, offset: 4096}"])
    assert r.units == (w.tag,) and fs.page_cache.items[1][0] == w.tag
    assert fs.ptes["shared"].items == {1: ("page", 1)} and fs.pte_write.items == {("shared", 1): True}
    at = 0
    for p in ("xfs_ilock(ip, XFS_MMAPLOCK_SHARED)", "xfs_iunlock(ip, XFS_MMAPLOCK_SHARED)",  # ->fault
              "unlock_page(fault_page); tmp = do_page_mkwrite", "xfs_ilock(ip, XFS_MMAPLOCK_SHARED)",
              "lock_page(page 1); size = i_size_read", "block_commit_write(page 1",
              "xfs_iunlock(ip, XFS_MMAPLOCK_SHARED)", "pte_offset_map_lock(); if (pte_same(*pte, orig_pte)) do_set_pte"):
        at = next(i for i in range(at, len(labels)) if labels[i].startswith(p)) + 1  # in this order
    assert any(b.dirty for b in fs.page_buffers.items[1])


def test_xfs_store_to_a_read_only_page_goes_through_wp_page_shared(tmp_path):
    fs, (r, w, r2), labels = _labels_of(tmp_path, ["{op: mmap_load, offset: 4096}", "{op: mmap_store, offset: 4096}",
                                                  "{op: mmap_load, offset: 4096}"])
    assert r.units == ("DATA(init,0)",) and r2.units == (w.tag,)
    assert any(lb.startswith("pte_offset_map_lock(); if (pte_same(*pte, orig_pte)) wp_page_reuse") for lb in labels)


def test_xfs_private_store_copies_the_page(tmp_path):
    fs, (w, r), _ = _labels_of(tmp_path, ["{op: mmap_store, offset: 4096, mapping: private}",
                                          "{op: buffered_read, offset: 4096, len: 512}"])
    assert r.units == ("DATA(init,0)",)  # the file keeps its data
    assert fs.ptes["private"].items[1][0] == "anon"


@pytest.mark.parametrize("other", ["{op: truncate, size: 4096}", "{op: punch_hole, offset: 4096, len: 4096}"])
def test_xfs_page_mkwrite_without_the_mmaplock_is_still_clean(tmp_path, other):
    """Against truncate and hole punch, block_page_mkwrite's page lock and its
    recheck of page->mapping and i_size, with truncate_inode_pages_range
    taking the same page lock, keep the store out on their own: the
    MMAPLOCK of xfs_filemap_page_mkwrite is not what protects here."""
    path = tmp_path / "t.yaml"
    path.write_text(FILE.format(fs="xfs", kernel='kernel: "4.1"', dax="false", ops="      - {op: mmap_store, offset: 4096}")
                    .replace("invariants: []", f"""  - name: b
    ops:
      - {other}
edits:
  drop:
    - {{in: xfs_filemap_page_mkwrite, lock: i_mmaplock}}
invariants: [no_freed_block_mapped, no_mapping_beyond_eof, no_stale_data, no_lost_write, mappings_coherent]"""))
    assert check(load(path), save_trace=False).verdict == "clean"


# -- 5.15 as read against the v5.15 text (5.15.100) ------------------------------------------------


def _first(labels, *prefixes):
    """The index of the first label with each prefix, each after the one before."""
    at, found = 0, []
    for p in prefixes:
        at = next(i for i in range(at, len(labels)) if labels[i].startswith(p))
        found.append(at)
        at += 1
    return found


def test_filemap_fault_5_15_rereads_and_looks_again_with_the_lock_held(tmp_path):
    """page_not_uptodate: filemap_read_page, then retry_find with
    invalidate_lock still held; the lock is let go before the i_size recheck."""
    fs, (r,), labels = _labels_of(tmp_path, ["{op: mmap_load, offset: 4096}"], fs_="ext4", kernel='kernel: "5.15"')
    assert r.units == ("DATA(init,0)",)
    _first(labels, "filemap_invalidate_lock_shared(mapping)", "page = pagecache_get_page(mapping, 1",
           "lock_page_maybe_drop_mmap", "block_read_full_page(page 1)", "page = pagecache_get_page(mapping, 1",
           "lock_page_maybe_drop_mmap", "filemap_invalidate_unlock_shared(mapping)", "max_off = DIV_ROUND_UP")
    assert sum(lb.startswith("filemap_invalidate_lock_shared") for lb in labels) == 1


def test_ext4_setattr_5_15_waits_for_dio_before_the_new_size_under_the_lock(tmp_path):
    """5.15: a shrink waits for direct I/O while i_size is the old one, then
    sets the size under filemap_invalidate_lock (4.5 set it first)."""
    fs, (t,), labels = _labels_of(tmp_path, ["{op: truncate, size: 4096}"], fs_="ext4", kernel='kernel: "5.15"')
    assert t == 0 and fs.i_size.value == 4096 and fs.i_blocks.values[1] == ("hole", None)
    _first(labels, "inode_dio_wait(inode)", "filemap_invalidate_lock(inode->i_mapping)",
           "down_write(&EXT4_I(inode)->i_data_sem); EXT4_I(inode)->i_disksize", "pagevec_lookup",
           "out_mmap_sem: filemap_invalidate_unlock")
    fs, _, labels = _labels_of(tmp_path, ["{op: truncate, size: 4096}"], fs_="ext4", kernel='kernel: "4.5"')
    _first(labels, "down_write(&EXT4_I(inode)->i_data_sem); EXT4_I(inode)->i_disksize", "inode_dio_wait(inode)",
           "down_write(&EXT4_I(inode)->i_mmap_sem)")


def test_xfs_punch_5_15_flushes_then_unmaps_then_zeroes_the_edge(tmp_path):
    """5.15: both locks, inode_dio_wait, xfs_flush_unmap_range (write-out,
    truncate_pagecache_range), then xfs_free_file_space unmaps the whole
    block before iomap_zero_range zeroes the partial one."""
    fs, (w, ret), labels = _labels_of(tmp_path, ["{op: buffered_write, offset: 4096, len: 512}",
                                                 "{op: punch_hole, offset: 2048, len: 6144}"], kernel='kernel: "5.15"')
    assert ret == 0 and fs.i_blocks.values[1] == ("hole", None)
    _first(labels, "xfs_ilock(ip, XFS_IOLOCK_EXCL)", "xfs_ilock(ip, XFS_MMAPLOCK_EXCL): filemap_invalidate_lock",
           "inode_dio_wait(inode)", "filemap_write_and_wait_range", "pagevec_lookup", "xfs_unmap_extent",
           "iomap_zero_range(VFS_I(ip), 2048, 2048")
    pblk = fs.i_blocks.values[0][1]
    assert fs.dev.values[pblk * 8:(pblk + 1) * 8] == ["DATA(init,0)"] * 4 + ["ZERO"] * 4
    assert fs.invalidate_lock.writer is None and fs.i_mutex.owner is None


@pytest.mark.parametrize("op, blocks, size", [
    ("{op: punch_hole, offset: 4096, len: 4096}", [("written", 0), ("hole", None)], 8192),
    ("{op: zero_range, offset: 4096, len: 4096}", [("written", 0), ("hole", None)], 8192),
    ("{op: collapse_range, offset: 0, len: 4096}", [("written", 1), ("hole", None)], 4096),
])
def test_xfs_fallocate_modes_5_15_under_invalidate_lock(tmp_path, op, blocks, size):
    fs, (ret,), labels = _labels_of(tmp_path, [op], kernel='kernel: "5.15"')
    assert ret == 0
    assert fs.i_blocks.values == blocks and fs.i_size.value == size
    assert fs.invalidate_lock.writer is None and fs.i_mutex.owner is None
    if "collapse" in op:  # the shift comes after xfs_prepare_shift's flush of the rest of the file
        _first(labels, "xfs_unmap_extent", "offset = round_down(offset, sb_blocksize)", "pagevec_lookup",
               "xfs_ilock(ip, XFS_ILOCK_EXCL); xfs_bmap_collapse_extents")


@pytest.mark.parametrize("kernel, private_takes_freeze", [('kernel: "4.5"', True), ('kernel: "5.15"', False)])
def test_ext4_dax_write_fault_on_a_private_mapping(tmp_path, kernel, private_takes_freeze):
    """4.5's ext4_dax_fault: any FAULT_FLAG_WRITE takes sb_start_pagefault and
    a handle; 5.15's ext4_dax_huge_fault: only a write fault on a VM_SHARED
    mapping does."""
    _, _, labels = _labels_of(tmp_path, ["{op: mmap_store, offset: 4096, mapping: private}"], fs_="ext4-dax",
                              kernel=kernel)
    assert any(lb.startswith("sb_start_pagefault(sb)") for lb in labels) == private_takes_freeze
    _, _, labels = _labels_of(tmp_path, ["{op: mmap_store, offset: 4096}"], fs_="ext4-dax", kernel=kernel)
    assert any(lb.startswith("sb_start_pagefault(sb)") for lb in labels)


@pytest.mark.parametrize("kernel", ['kernel: "4.5"', 'kernel: "5.15"'])
def test_ext4_zero_range_within_a_block_still_waits_for_direct_io(tmp_path, kernel):
    """4.5 and 5.15: inode_dio_wait right after the inode lock, before the
    preallocation of the edges, whatever the range."""
    fs, (ret,), labels = _labels_of(tmp_path, ["{op: zero_range, offset: 4608, len: 1024}"], fs_="ext4",
                                    kernel=kernel)
    assert ret == 0
    _first(labels, "mutex_lock(&inode->i_mutex)", "inode_dio_wait(inode)", "mutex_unlock(&inode->i_mutex)")
    pblk = fs.i_blocks.values[1][1]
    assert fs.dev.values[pblk * 8:(pblk + 1) * 8] == ["DATA(init,0)"] + ["ZERO"] * 2 + ["DATA(init,0)"] * 5
