"""The journal model (models/journal.py) and ext4's DAX fault on it
(models/ext4_fault.py): handles, ordered data, the commit, the ENOSPC retry."""

import yaml

from racecheck.models.fs import HOLE, WRITTEN, WriteResult
from racecheck.scenario import load
from racecheck.scheduler import Explorer


def scenario(tmp_path, flavour, threads, fixes=(), size=4096, blocks=("hole",), spare=2, dax=True):
    spec = {"name": "journal", "filesystem": flavour,
            "file": {"size": size, "blocks": list(blocks), "spare_blocks": spare, "dax": dax},
            "threads": [{"name": n, "ops": ops} for n, ops in threads],
            "fixes": list(fixes), "invariants": []}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load(path)


def every_execution(sc):
    """(final state, operations) of every execution, by dpor."""
    seen = []
    out = Explorer(sc.model, "dpor", stop_on_violation=False,
                   on_execution=lambda ex, v: seen.append((ex.state, list(ex.operations), ex))).run()
    assert out.verdict in ("clean", "violation"), out.error
    return seen


def test_a_commit_writes_the_ordered_data_then_the_metadata(tmp_path):
    sc = scenario(tmp_path, "ext3", [("writer", [{"op": "buffered_write", "offset": 0, "len": 4096},
                                                 {"op": "journal_commit"}])], dax=False)
    [(fs, _, _)] = every_execution(sc)
    state, pblk = fs.journal.committed.value.blocks[0]
    assert state == WRITTEN
    upb = fs.geo.units_per_block
    assert set(fs.dev.values[pblk * upb:(pblk + 1) * upb]) == {"DATA(writer,1)"}


def test_an_uncommitted_allocation_is_not_on_disk(tmp_path):
    sc = scenario(tmp_path, "ext3", [("writer", [{"op": "buffered_write", "offset": 0, "len": 4096}])], dax=False)
    [(fs, _, _)] = every_execution(sc)
    assert fs.i_blocks.values[0][0] == WRITTEN  # in memory
    assert fs.journal.committed.value.blocks[0] == (HOLE, None)  # not on disk
    assert fs.journal.t_sync_datalist.value == ((0, 0),)  # filed as ordered data


def test_a_fault_under_the_fix_starts_one_handle_and_get_block_nests_in_it(tmp_path):
    store = {"op": "mmap_store", "offset": 0, "handler": "dax"}
    for fixes, outer in (([], "_ext4_get_block()"), (["ext4_dax_fault_starts_handle"], "handle = ext4_journal_start(inode, EXT4_HT_WRITE_PAGE")):
        sc = scenario(tmp_path, "ext4-dax", [("fault", [store])], fixes=fixes)
        [(_, ops, ex)] = every_execution(sc)
        handles = [a for a in ex.rt.acquisitions if a.lock == "jbd2_handle"]
        assert len(handles) == 1 and handles[0].label.startswith(outer), fixes
        assert isinstance(ops[0].result, WriteResult)


def test_the_fix_retries_a_transient_enospc_after_a_commit(tmp_path):
    # No spare block: the store's allocation must reuse the block truncate
    # freed, which the running transaction pins until it commits.
    ops = [{"op": "truncate", "size": 4096}, {"op": "truncate", "size": 8192},
           {"op": "mmap_store", "offset": 4096, "handler": "dax"}]
    results = {}
    for fixes in ([], ["ext4_dax_fault_starts_handle"]):
        sc = scenario(tmp_path, "ext4-dax", [("t", ops)], fixes=fixes, size=8192,
                      blocks=("written", "written"), spare=0)
        [(_, done, ex)] = every_execution(sc)
        results[bool(fixes)] = done[2].result
        handles = [a for a in ex.rt.acquisitions if a.lock == "jbd2_handle" and not a.wait]
        commits = [a for a in ex.rt.acquisitions if a.lock == "kjournald"]
        # With the fix: a handle, ENOSPC, a forced commit, a second handle that allocates.
        assert (len(handles), len(commits)) == ((2, 1) if fixes else (1, 0)), fixes
    assert results[False] == "VM_FAULT_SIGBUS"
    assert isinstance(results[True], WriteResult)
