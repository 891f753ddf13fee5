"""Scenarios composed at random from the operation vocabulary, on every
filesystem flavour, DAX or not: each must load and explore to its end (a
clean or a violation verdict) without an error in the models.

The thirteen races are the first use of the library, not the only one: a
user can combine any operations on any flavour, at any kernel release the
library models (``kernel:``), without writing Python.
"""

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from racecheck.models.catalogue import FIXES, FLAVOURS, OPERATIONS
from racecheck.models.kernel import RELEASES, release_key
from racecheck.scenario import ScenarioError, load
from racecheck.scheduler import Bounds, Explorer

BLOCK = 4096
MAX_SIZE = 2 * BLOCK
# every kernel release some function is modelled at (the kernel: key)
RELEASES_MODELLED = sorted({r for by in RELEASES.values() for r in by}, key=release_key)
INVARIANTS = ["no_stale_data", "no_zero_overwrite", "no_lost_write", "no_mapping_beyond_eof",
              "no_freed_block_mapped", "mappings_coherent", "read_within_eof", "no_discarded_write"]


@st.composite
def arguments(draw, op):
    args = {}
    offset = None
    for p in op.params:
        if not p.required and draw(st.booleans()):
            continue  # leave it at its default
        step = {"unit": 512, "block": BLOCK, "page": BLOCK}.get(p.align, 512)
        if p.kind == "choice":
            args[p.name] = draw(st.sampled_from(p.choices))
        elif p.kind == "bool":
            args[p.name] = draw(st.booleans())
        elif p.name == "offset":
            offset = draw(st.integers(0, MAX_SIZE // step - 1)) * step
            args[p.name] = offset
        elif p.name == "len":
            room = (MAX_SIZE - (offset or 0)) // step
            args[p.name] = draw(st.integers(1, max(1, min(room, 2 * BLOCK // step)))) * step
        elif p.name == "size":
            args[p.name] = draw(st.integers(0, MAX_SIZE // step)) * step
        else:  # a count within the operation's length (short_copy)
            args[p.name] = draw(st.integers(0, args.get("len", step) // step)) * step
    return args


@st.composite
def scenarios(draw):
    flavour = draw(st.sampled_from(sorted(FLAVOURS)))
    usable = sorted(n for n, op in OPERATIONS.items() if op.flavours is None or flavour in op.flavours)
    threads = []
    for t in range(2):
        ops = []
        for _ in range(draw(st.integers(1, 2))):
            op = OPERATIONS[draw(st.sampled_from(usable))]
            ops.append({"op": op.name, **draw(arguments(op))})
        threads.append({"name": f"t{t}", "ops": ops})
    return {
        "name": "composed",
        "filesystem": flavour,
        "file": {"size": draw(st.sampled_from([0, 2048, 4096, 6144, 8192])),
                 "max_size": MAX_SIZE, "dax": draw(st.booleans()),
                 "blocks": draw(st.lists(st.sampled_from(["hole", "unwritten", "written", "stale"]),
                                         min_size=2, max_size=2))},
        "threads": threads,
        # Half the scenarios run with every fix on, so that more run to the end clean.
        "fixes": sorted(FIXES) if draw(st.booleans()) else [],
        "invariants": INVARIANTS,
        **({"kernel": release} if (release := draw(st.sampled_from([None, *RELEASES_MODELLED]))) else {}),
    }


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_composed_scenarios_explore_without_model_errors(tmp_path_factory, spec):
    path = tmp_path_factory.mktemp("composed") / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        sc = load(path)
    except ScenarioError as exc:
        # a path of the release picked that the library does not model:
        # refused by name, with the file, line and key
        assert "is not modelled at kernel" in str(exc) and ".op" in str(exc), str(exc)
        event("refused: not modelled at that release")
        return
    out = Explorer(sc.model, "dpor", Bounds(max_executions=20_000, timeout=60)).run()
    assert out.verdict != "error", (path.read_text(), out.error and out.error["traceback"])
    assert out.verdict in ("clean", "violation"), (path.read_text(), out.reason)
    event(out.verdict + (f" of {out.violation.invariant}" if out.violation else ""))


# -- the library past the seeds: the releases' new paths, drawn more often ---------------------------

# (filesystem, DAX or not, the releases, the operations, locks an edit may drop there)
NEW_PATHS = [
    ("ext2", True, ["4.10", "4.12"], ["dax_mmap_load", "dax_mmap_store", "truncate", "fsync"],
     [("ext2_setsize", "dax_sem"), ("ext2_dax_fault", "dax_sem")]),
    ("ext4", False, ["5.15"], ["buffered_read", "punch_hole", "collapse_range", "zero_range", "truncate",
                               "mmap_load", "mmap_store"],
     [("filemap_create_page", "invalidate_lock"), ("page_cache_ra_unbounded", "invalidate_lock"),
      ("ext4_punch_hole", "invalidate_lock"), ("ext4_page_mkwrite", "invalidate_lock")]),
    # ext4's ->page_mkwrite (4.5; refused by name at 4.1), on the flavours with and without a journal
    *[(flavour, False, ["4.1", "4.5"], ["mmap_store", "mmap_load", "collapse_range", "insert_range", "punch_hole",
                                        "truncate", "writepages", "buffered_write"],
       [("ext4_page_mkwrite", "i_mmap_sem"), ("ext4_collapse_range", "i_mmap_sem"),
        ("ext4_insert_range", "i_mmap_sem"), ("ext4_filemap_fault", "i_mmap_sem")])
      for flavour in ("ext4", "ext4-dax")],
    ("xfs", False, ["4.1", "5.15"], ["buffered_read", "buffered_write", "punch_hole", "collapse_range",
                                     "zero_range", "mmap_load", "mmap_store", "truncate", "writepages"],
     [("xfs_file_fallocate", "i_mutex"), ("xfs_filemap_page_mkwrite", "i_mmaplock")]),
]


@st.composite
def new_path_scenarios(draw):
    flavour, dax, releases, ops_of, drops = draw(st.sampled_from(NEW_PATHS))
    ops_of = [o for o in ops_of if OPERATIONS[o].flavours is None or flavour in OPERATIONS[o].flavours]
    threads = []
    for t in range(2):
        ops = []
        for _ in range(draw(st.integers(1, 2))):
            op = OPERATIONS[draw(st.sampled_from(ops_of))]
            ops.append({"op": op.name, **draw(arguments(op))})
        threads.append({"name": f"t{t}", "ops": ops})
    spec = {
        "name": "composed",
        "filesystem": flavour,
        "kernel": draw(st.sampled_from(releases)),
        "file": {"size": draw(st.sampled_from([4096, 6144, 8192])), "max_size": MAX_SIZE, "dax": dax,
                 "blocks": draw(st.lists(st.sampled_from(["hole", "written"]), min_size=2, max_size=2))},
        "threads": threads,
        "invariants": INVARIANTS,
    }
    dropped = draw(st.lists(st.sampled_from(drops), max_size=1))
    if dropped:
        spec["edits"] = {"drop": [{"in": f, "lock": lock} for f, lock in dropped]}
    return spec


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(new_path_scenarios())
def test_composed_new_paths_explore_without_model_errors(tmp_path_factory, spec):
    """ext2's DAX faults and truncate at 4.10 and 4.12, the 5.15 buffered
    read against ext4's range operations, XFS's fallocate at 4.1 and 5.15
    with its write-out, XFS's ->page_mkwrite at 4.1 and ext4's at 4.5 and
    5.15 (XFS's refused by name at 5.15, ext4's at 4.1), with or without one
    of their locks dropped."""
    path = tmp_path_factory.mktemp("composed") / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        sc = load(path)
    except ScenarioError as exc:
        # an edit whose function does not run in this scenario's calls is refused by name too
        assert ("is not modelled at kernel" in str(exc) and ".op" in str(exc)) or "edits.drop" in str(exc), str(exc)
        event("refused")
        return
    out = Explorer(sc.model, "dpor", Bounds(max_executions=3_000, timeout=8)).run()
    assert out.verdict != "error", (path.read_text(), out.error and out.error["traceback"])
    assert out.verdict in ("clean", "violation", "incomplete"), (path.read_text(), out.reason)
    event(out.verdict + (f" of {out.violation.invariant}" if out.violation else ""))
    event(f"ran: {spec['filesystem']} at {spec['kernel']}")
