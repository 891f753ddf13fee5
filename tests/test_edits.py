"""Edits: locks added around kernel functions, locks and calls dropped,
functions replaced by the user's own. Each kind is checked against
exhaustive exploration (--reduction none): the same verdict with and without
the reduction, and the verdict the edit must give."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import SCENARIOS

from racecheck.cli import main
from racecheck.runner import check
from racecheck.scenario import load


def scenario(tmp_path, base, edits, name="edited", invariants=None, files=None):
    """``base`` (a corpus scenario) with ``edits`` (YAML text) appended."""
    text = (SCENARIOS / f"{base}.yaml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith(("name:", "expect:", "  verdict:", "  invariant:"))]
    if invariants:
        lines = [f"invariants: [{', '.join(invariants)}]" if ln.startswith("invariants:") else ln for ln in lines]
    for fname, body in (files or {}).items():
        (tmp_path / fname).write_text(body)
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n" + "\n".join(lines) + "\nedits:\n" + edits)
    return path


def verdicts(path):
    """``(verdict, invariant)``, the same with dpor, with no reduction and
    with bfs (whose state fingerprints take in the edits' own state)."""
    out = {}
    for reduction in ("dpor", "none"):
        rep = check(load(path), reduction=reduction, save_trace=False)
        out[reduction] = (rep.verdict, rep.as_json()["invariant"])
    rep = check(load(path), strategy="bfs", save_trace=False)
    out["bfs"] = (rep.verdict, rep.as_json()["invariant"])
    assert out["dpor"] == out["none"] == out["bfs"], out
    return out["dpor"]


ADD_RWSEM = """\
  add_lock:
    - lock: i_mmap_sem
      kind: rwsem
      shared: [xip_file_fault]
      exclusive: [notify_change]
"""


def test_added_lock_closes_the_race(tmp_path):
    # What later kernels did (i_mmap_sem): the fault reads, truncate writes.
    assert verdicts(scenario(tmp_path, "fault_vs_truncate", ADD_RWSEM)) == ("clean", None)


def test_added_lock_is_a_lock_of_the_runtime(tmp_path):
    from racecheck.execution import Execution
    model = load(scenario(tmp_path, "fault_vs_truncate", ADD_RWSEM)).model
    ex = Execution(model)
    assert "i_mmap_sem" in [ex.rt.names[k] for k in ex.rt.names]
    assert ex.state.added_locks["i_mmap_sem"].kind == "rwsem"


def test_dropped_lock_reopens_the_race(tmp_path):
    path = scenario(tmp_path, "fault_vs_truncate_fixed", "  drop:\n    - {in: xip_file_fault, lock: i_mmap_mutex}\n")
    assert verdicts(path) == ("violation", "no_freed_block_mapped")


def test_dropped_lock_only_where_named(tmp_path):
    # truncate's own i_mmap_mutex (in unmap_mapping_range) stays: dropping it
    # in the fault only must still take it in truncate.
    path = scenario(tmp_path, "fault_vs_truncate_fixed", "  drop:\n    - {in: xip_file_fault, lock: i_mmap_mutex}\n")
    rep = check(load(path), save_trace=False)
    steps = rep.trace["steps"]
    names = rep.trace["threads"]
    taken_by = {names[new["held_by"]] for s in steps for name, _, new in s["changes"]
                if name == "i_mmap_mutex" and new["held_by"] is not None}
    assert "truncate" in taken_by and "fault" not in taken_by


def test_dropped_call(tmp_path):
    path = scenario(tmp_path, "fault_vs_truncate_fixed",
                    "  drop:\n    - {in: truncate_setsize, call: truncate_pagecache}\n")
    assert verdicts(path) == ("violation", "no_freed_block_mapped")


def test_dropped_call_only_from_the_named_caller(tmp_path):
    # truncate_pagecache dropped where ext4_setattr calls it is not dropped
    # where truncate_setsize (ext2's path) calls it.
    path = scenario(tmp_path, "fault_vs_truncate_fixed",
                    "  drop:\n    - {in: ext4_setattr, call: truncate_pagecache}\n")
    assert verdicts(path) == ("clean", None)


COPY = '''\
from racecheck.models.truncate import unmap_mapping_range, truncate_inode_pages_range


def truncate_pagecache(fs, newsize):
    holebegin = fs.pages(newsize)
    yield from unmap_mapping_range(fs, holebegin)
    yield from truncate_inode_pages_range(fs, holebegin, None)
    yield from unmap_mapping_range(fs, holebegin)
'''

NO_UNMAP = '''\
from racecheck.models.truncate import truncate_inode_pages_range


def truncate_pagecache(fs, newsize):
    yield from truncate_inode_pages_range(fs, fs.pages(newsize), None)
'''


def test_replaced_function_runs_wherever_the_library_calls_it(tmp_path):
    edit = "  replace:\n    - {function: truncate_pagecache, with: ./mine.py:truncate_pagecache}\n"
    same = scenario(tmp_path, "fault_vs_truncate_fixed", edit, files={"mine.py": COPY})
    assert verdicts(same) == ("clean", None)
    library = check(load(SCENARIOS / "fault_vs_truncate_fixed.yaml"), save_trace=False)
    copied = check(load(same), save_trace=False)
    assert copied.outcome.stats.executions == library.outcome.stats.executions
    broken = scenario(tmp_path, "fault_vs_truncate_fixed", edit, name="broken", files={"mine.py": NO_UNMAP})
    assert verdicts(broken) == ("violation", "no_freed_block_mapped")


def test_replacement_file_is_part_of_the_models_digest(tmp_path):
    edit = "  replace:\n    - {function: truncate_pagecache, with: ./mine.py:truncate_pagecache}\n"
    path = scenario(tmp_path, "fault_vs_truncate_fixed", edit, files={"mine.py": COPY})
    before = load(path).models_digest
    (tmp_path / "mine.py").write_text(COPY + "\n# changed\n")
    assert load(path).models_digest != before


DEADLOCK = """\
  add_lock:
    - {lock: fault_lock, kind: mutex, exclusive: [xip_file_fault, notify_change]}
    - {lock: i_mutex, kind: mutex, exclusive: [ext2_get_block]}
"""


def test_added_locks_can_deadlock(tmp_path):
    # fault: fault_lock, then i_mutex around its get_block; truncate: i_mutex then fault_lock.
    path = scenario(tmp_path, "fault_vs_truncate_fixed", DEADLOCK, invariants=["deadlock_free"])
    assert verdicts(path) == ("violation", "deadlock_free")


def test_added_locks_are_ranked_with_the_models_own(tmp_path):
    path = scenario(tmp_path, "fault_vs_truncate_fixed", DEADLOCK, invariants=["lock_order"])
    out = check(load(path), save_trace=False).as_json()
    assert (out["verdict"], out["invariant"]) == ("violation", "lock_order")
    assert "i_mutex -> fault_lock" in out["message"] or "fault_lock -> i_mutex" in out["message"]


def test_edits_compose_with_fixes_ranges_and_replay(tmp_path):
    # the fixed scenario, a range of fault offsets, a drop: violation at some
    # offset; the saved trace records the edits and replays.
    text = (SCENARIOS / "fault_vs_truncate_fixed.yaml").read_text()
    text = text.replace("name: fault_vs_truncate_fixed", "name: composed").replace(
        "{op: xip_file_load, offset: 4096}", "{op: xip_file_load, offset: {one_of: [0, 4096]}}")
    text = text.replace("expect:\n  verdict: clean\n", "")
    path = tmp_path / "composed.yaml"
    path.write_text(text + "edits:\n  drop:\n    - {in: xip_file_fault, lock: i_mmap_mutex}\n")
    out = CliRunner().invoke(main, ["run", str(path), "--json", "--trace-out", str(tmp_path / "t.json")])
    assert out.exit_code == 1, out.output
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["edits"] == {"drop": [{"in": "xip_file_fault", "lock": "i_mmap_mutex"}]}
    again = CliRunner().invoke(main, ["replay", str(tmp_path / "t.json")])
    assert again.exit_code == 1, again.output


def test_edits_compose_with_crash_states(tmp_path):
    path = scenario(tmp_path, "fault_alloc_stale_crash_fixed",
                    "  drop:\n    - {in: ext4_dax_fault, call: do_dax_fault}\n")
    rep = check(load(path), save_trace=False)
    assert rep.verdict == "clean"  # no fault left: nothing can go wrong


def test_list_functions_names_what_edits_can_name():
    out = CliRunner().invoke(main, ["list", "functions"])
    assert out.exit_code == 0
    assert "do_xip_fault  fs/xip.c" in out.output
    assert "locks: i_mmap_mutex" in out.output
    assert "calls: inode_dio_wait" in out.output


def test_list_fixes_shows_presets():
    from racecheck.models.registry import PRESETS
    out = CliRunner().invoke(main, ["list", "fixes"])
    assert out.exit_code == 0
    for name, edits in PRESETS.items():
        assert json.dumps(edits) in out.output


@pytest.mark.parametrize("body,words", [
    ("def truncate_pagecache(fs, newsize):\n    return 0\n", "must be a step generator"),
    ("def other(fs, newsize):\n    yield 'x'\n", "defines no 'truncate_pagecache'"),
    ("truncate_pagecache = 3\n", "is a int, not a function"),
    ("raise SystemExit(3)\n", "raised SystemExit(3) while being imported"),
    ("import nowhere_at_all\n", "raised ModuleNotFoundError"),
])
def test_bad_replacement_is_refused(tmp_path, body, words):
    edit = "  replace:\n    - {function: truncate_pagecache, with: ./mine.py:truncate_pagecache}\n"
    path = scenario(tmp_path, "fault_vs_truncate_fixed", edit, files={"mine.py": body})
    out = CliRunner().invoke(main, ["run", str(path)])
    assert out.exit_code == 2, out.output
    assert f"{path}:" in out.output and "edits.replace[0].with" in out.output
    assert words in out.output and "Traceback" not in out.output


def test_fix_that_is_a_placement_is_a_preset_of_edits(tmp_path):
    # treat_xip_like_o_direct is patch 06's file_operations change; written as
    # the edit it stands for, the unfixed scenario runs exactly as the fixed one.
    from racecheck.models.registry import PRESETS
    assert PRESETS["treat_xip_like_o_direct"] == {
        "replace": [{"function": "xip_file_read", "with": "generic_file_aio_read"}]}
    path = scenario(tmp_path, "xip_read_vs_truncate",
                    "  replace:\n    - {function: xip_file_read, with: generic_file_aio_read}\n")
    assert verdicts(path) == ("clean", None)
    as_edit = check(load(path), save_trace=False).outcome.stats
    as_fix = check(load(SCENARIOS / "xip_read_vs_truncate_fixed.yaml"), save_trace=False).outcome.stats
    assert (as_edit.executions, as_edit.steps) == (as_fix.executions, as_fix.steps)


def test_every_preset_gives_its_fixed_twin_the_same_verdict():
    # every corpus scenario whose fixes include a preset, run with the preset's
    # edits in place of the fix name: same verdict and executions
    import dataclasses

    from racecheck.models.edits import Edits, parse
    from racecheck.models.registry import PRESETS
    checked = 0
    for path in sorted(SCENARIOS.glob("*.yaml")):
        sc = load(path)
        used = [f for f in getattr(sc.model, "fixes", []) if f in PRESETS]
        if not used:
            continue
        model = sc.model
        other = type(model)(model.name, model.file, model.flavour, [f for f in model.fixes if f not in used],
                            model.threads_spec, edits=Edits().merged(parse(PRESETS[used[0]])))
        other.invariants = model.invariants
        a = check(sc, save_trace=False)
        b = check(dataclasses.replace(sc, model=other), save_trace=False)
        assert (a.verdict, a.outcome.stats.executions) == (b.verdict, b.outcome.stats.executions), path
        checked += 1
    assert checked >= 1


SMALL = ["fault_vs_truncate", "fault_vs_truncate_fixed", "xip_read_vs_truncate_fixed", "cow_fault_vs_truncate_fixed",
         "punch_hole_vs_fault", "mapwrite_unwritten_extent_fixed", "fault_alloc_stale_fixed"]


def test_random_edits_agree_with_exhaustive_exploration():
    """Edits drawn at random (locks added around the functions the threads
    run, locks and calls dropped where they are taken and made) on corpus
    scenarios: dpor, no reduction and bfs give one verdict."""
    import dataclasses
    import random

    from racecheck.invariants import select
    from racecheck.models.edits import parse
    from racecheck.models.kernel import all_locks_of, calls_of
    from racecheck.search import Bounds
    from racecheck.suggest import functions_run

    rng = random.Random(14)
    compared = 0
    for n in range(22):
        sc = load(SCENARIOS / f"{rng.choice(SMALL)}.yaml")
        runs = functions_run(sc.model, [], sc.bounds.max_steps)
        fns = sorted({f for fs in runs.values() for f in fs})
        data = {}
        if rng.random() < 0.6:
            picked = rng.sample(fns, min(len(fns), rng.randint(1, 3)))
            kind = rng.choice(["mutex", "rwsem"])
            modes = [kind == "rwsem" and rng.random() < 0.5 for _ in picked]
            data["add_lock"] = [{"lock": "rand_lock", "kind": kind,
                                 "shared": [f for f, s in zip(picked, modes) if s],
                                 "exclusive": [f for f, s in zip(picked, modes) if not s] or [picked[0]]}]
            if data["add_lock"][0]["shared"] and picked[0] in data["add_lock"][0]["shared"] \
                    and data["add_lock"][0]["exclusive"] == [picked[0]]:
                data["add_lock"][0]["shared"].remove(picked[0])
            if not data["add_lock"][0]["shared"]:
                del data["add_lock"][0]["shared"]
        drops = []
        for f in rng.sample(fns, min(len(fns), 2)):
            if rng.random() < 0.5 and calls_of(f):
                drops.append({"in": f, "call": rng.choice(calls_of(f))})
            elif all_locks_of(f):
                drops.append({"in": f, "lock": rng.choice(sorted(all_locks_of(f)))})
        if drops:
            data["drop"] = drops
        if not data:
            continue
        model = sc.model
        other = type(model)(model.name, model.file, model.flavour, model.fixes, model.threads_spec,
                            edits=parse(data))
        have = {i.name for i in model.invariants}
        other.invariants = list(model.invariants) + select([n for n in ["deadlock_free"] if n not in have])
        edited = dataclasses.replace(sc, model=other, bounds=Bounds(max_executions=5_000))
        got = {}
        for name, kw in (("dpor", {"reduction": "dpor"}), ("none", {"reduction": "none"}),
                         ("bfs", {"strategy": "bfs"})):
            rep = check(edited, save_trace=False, do_minimise=False, **kw)
            got[name] = rep.verdict
        if "incomplete" in got.values():
            continue
        assert got["dpor"] == got["none"] == got["bfs"], (n, data, got)
        compared += 1
    print(f"{compared} edited scenarios compared")
    assert compared >= 15
