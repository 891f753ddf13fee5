"""Benchmark crash exploration: crash states checked per second, and what
``crash: true`` costs against the same scenario without it.

    python bench/bench_crash.py [--repeat 3]

For each scenario, three full dpor explorations (stop at nothing, so that
each explores its whole space): without crash states (the scenario with
``crash: false`` and no invariants), with ``crash: true`` as racecheck runs
it (pruned), and with every crash point checked (no pruning). Best of
``--repeat`` wall times. A benchmark, not a test: the figures go in the
README.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from racecheck.models.crash import CrashConsistent
from racecheck.scenario import load
from racecheck.scheduler import Explorer

ROOT = Path(__file__).resolve().parent.parent

EXTRA = {
    # ext3 page cache: a short-copy write, kjournald, and an fsync.
    "ext3_write_commit_fsync": {
        "filesystem": "ext3",
        "file": {"size": 4096, "blocks": ["hole"], "unit_size": 1024, "dax": False},
        "threads": [
            {"name": "writer", "ops": [{"op": "buffered_write", "offset": 0, "len": 4096, "short_copy": 0}]},
            {"name": "kjournald", "ops": [{"op": "journal_commit"}]},
            {"name": "syncer", "ops": [{"op": "fsync"}]}],
        "fixes": ["zero_new_buffers_on_short_copy", "commit_write_offset_plus_bytes"],
    },
    # ext2 DAX: two stores to two holes, each followed by an fsync.
    "ext2_dax_two_stores_fsync": {
        "filesystem": "ext2-nozero",
        "file": {"size": 8192, "blocks": ["hole", "hole"]},
        "threads": [
            {"name": "a", "ops": [{"op": "mmap_store", "offset": 0, "handler": "dax"}, {"op": "fsync"}]},
            {"name": "b", "ops": [{"op": "mmap_store", "offset": 4096, "handler": "dax"}, {"op": "fsync"}]}],
        "fixes": ["ext2_zero_before_link"],
    },
}


def variant(spec, crash, tmp):
    spec = dict(spec, crash=crash, invariants=[])
    spec.pop("expect", None)
    path = Path(tmp) / f"{spec['name']}_{crash}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load(path)


def timed(sc, inv, repeat):
    """(outcome, best time, what ``inv`` gathered over that search)"""
    best = None
    for _ in range(repeat):
        if inv is not None:
            sc.model.invariants = [inv]
        start = time.perf_counter()
        explorer = Explorer(sc.model, "dpor", stop_on_violation=False)
        out = explorer.run()
        elapsed = time.perf_counter() - start
        assert out.verdict in ("clean", "violation"), (sc.name, out.reason, out.error)
        if best is None or elapsed < best[1]:
            best = (out, elapsed, explorer.gathered.get(inv))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    specs = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "scenarios").glob("*crash*.yaml"))}
    for name, spec in EXTRA.items():
        specs[name] = dict(spec, name=name)
    print("| scenario | executions without / with crash | time without (s) | time with (s) | cost | "
          "crash states checked | crash points pruned | every step: states checked | every step: checked/s |")
    print("| --- | --: | --: | --: | --: | --: | --: | --: | --: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in specs.items():
            plain, t_plain, _ = timed(variant(spec, False, tmp), None, args.repeat)
            crash, t_crash, pruned = timed(variant(spec, True, tmp), CrashConsistent(), args.repeat)
            _, t_every, every = timed(variant(spec, True, tmp), CrashConsistent(prune=False), args.repeat)
            print(f"| {name} | {plain.stats.executions:,} / {crash.stats.executions:,} | {t_plain:.3f} | "
                  f"{t_crash:.3f} | {t_crash / t_plain:.1f}x | {pruned.checked:,} | "
                  f"{pruned.unchanged + pruned.repeated:,} | {every.checked:,} | "
                  f"{every.checked / t_every:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
