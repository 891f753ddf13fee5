#!/usr/bin/env python3
"""Regenerate, or check, every sample output in README.md and docs/*.md.

A sample is a fenced block right after a marker naming the command:

    <!-- sample: racecheck run scenarios/fault_vs_truncate.yaml -->
    ```console
    $ racecheck run scenarios/fault_vs_truncate.yaml
    fault_vs_truncate: VIOLATION of no_freed_block_mapped
    ...
    ```

The block is ``$ COMMAND`` and then everything the command prints, standard
output and standard error as a terminal shows them, in full.

    python docs/samples.py               # run every command, rewrite the blocks in place
    python docs/samples.py --check       # run every command, compare; exit 1 and a diff if one differs
    python docs/samples.py --subprocess  # run each as its own process instead of in this one
    python docs/samples.py --viewer-png  # also the viewer's pictures (docs/screenshots.py)

Each command runs with the repository's root as its working directory and
writes nothing there: a command that saves a trace or a graph in ``traces/``
is given ``--trace-out`` (``run``) or ``-o`` (``lockgraph``) in a temporary
directory, an argument ``traces/NAME.json`` is read from there (made by
running the scenario named NAME first when no sample has made it yet), and
that directory's absolute path is taken out of what is printed again (a
``file://`` address becomes ``file:///.../``), so the sample shows what the
command prints in a checkout. ``--check`` compares with elapsed times
(``0.01 s``, ``0.02s``) left out on both sides; nothing else is normalised.
"""

import argparse
import contextlib
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["README.md", "docs/*.md"]
MARKER = re.compile(r"^<!-- sample: (?P<command>.+?) -->\n(?P<fence>```[a-z]*\n)(?P<body>.*?)^```$",
                    re.M | re.S)
SCENARIO_DIRS = ["scenarios", "examples", "bench", "docs/examples"]
ELAPSED = re.compile(r"(?<![\w.])\d+\.\d+( ?)s\b")


@dataclass
class Sample:
    file: Path        # relative to ROOT
    command: str
    body: str         # the block between its fences, as the file has it
    start: int        # where the body starts and ends in the file's text
    end: int


def files():
    out = []
    for pattern in FILES:
        out.extend(sorted(ROOT.glob(pattern)))
    return [p.relative_to(ROOT) for p in out]


def samples_in(rel):
    text = (ROOT / rel).read_text()
    return [Sample(rel, m["command"], m["body"], m.start("body"), m.end("body"))
            for m in MARKER.finditer(text)]


def all_samples():
    return [s for rel in files() for s in samples_in(rel)]


def normalise(text):
    """What --check compares: the text without its elapsed times."""
    return ELAPSED.sub(r"#\1s", text)


class Runner:
    """Runs sample commands against one temporary directory for traces."""

    def __init__(self, tmp, subprocess_mode=False):
        self.tmp = Path(tmp).resolve()
        (self.tmp / "traces").mkdir(exist_ok=True)
        self.subprocess_mode = subprocess_mode
        self._names = None

    # -- the scenario behind a trace name --------------------------------------------------

    def scenario_named(self, name):
        if self._names is None:
            import yaml

            self._names = {}
            for d in SCENARIO_DIRS:
                for p in sorted((ROOT / d).glob("*.yaml")):
                    try:
                        doc = yaml.safe_load(p.read_text())
                    except yaml.YAMLError:
                        continue
                    if isinstance(doc, dict) and isinstance(doc.get("name"), str):
                        self._names.setdefault(doc["name"], p.relative_to(ROOT).as_posix())
        if name not in self._names:
            raise SystemExit(f"samples: no scenario named {name!r} under {', '.join(SCENARIO_DIRS)}")
        return self._names[name]

    def name_of(self, scenario):
        import yaml

        try:
            doc = yaml.safe_load((ROOT / scenario).read_text())
            return doc["name"]
        except Exception:  # a sample of a bad scenario: its stem is as good a name as any
            return Path(scenario).stem

    # -- arguments ---------------------------------------------------------------------------

    def arguments(self, command):
        words = shlex.split(command)
        if not words or words[0] != "racecheck":
            raise SystemExit(f"samples: {command!r}: a sample's command starts with racecheck")
        args = words[1:]
        sub = args[0] if args else ""
        out = []
        for a in args:
            if a.startswith("traces/"):
                local = self.tmp / a
                if a.endswith(".json") and not local.exists():
                    self.make_trace(Path(a).stem)
                a = str(local)
            out.append(a)
        positional = [a for a in args[1:] if not a.startswith("-") and a.endswith(".yaml")]
        if sub == "run" and "--trace-out" not in args and positional:
            out += ["--trace-out", str(self.tmp / "traces" / f"{self.name_of(positional[0])}.json")]
        if sub == "lockgraph" and "-o" not in args and "--output" not in args and positional:
            out += ["-o", str(self.tmp / "traces" / f"{self.name_of(positional[0])}.locks")]
        return out

    def make_trace(self, name):
        scenario = self.scenario_named(name)
        self.invoke(["run", scenario, "--trace-out", str(self.tmp / "traces" / f"{name}.json")])
        if not (self.tmp / "traces" / f"{name}.json").exists():
            raise SystemExit(f"samples: racecheck run {scenario} saved no trace")

    # -- running -----------------------------------------------------------------------------

    def invoke(self, args):
        if self.subprocess_mode:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            env.pop("FORCE_COLOR", None)
            proc = subprocess.run([sys.executable, "-m", "racecheck", *args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            return proc.stdout
        from click.testing import CliRunner

        from racecheck.cli import main

        with chdir(ROOT):
            result = CliRunner().invoke(main, args, prog_name="racecheck")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.output

    def output(self, command):
        """What the sample block for ``command`` holds."""
        printed = self.invoke(self.arguments(command))
        printed = printed.replace(f"file://{self.tmp}/", "file:///.../").replace(f"{self.tmp}/", "")
        if printed and not printed.endswith("\n"):
            printed += "\n"
        return f"$ {command}\n{printed}"


@contextlib.contextmanager
def chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def diff(sample, got):
    return "".join(difflib.unified_diff(sample.body.splitlines(True), got.splitlines(True),
                                        f"{sample.file} (sample)", f"{sample.command} (now)"))


def check_one(runner, sample):
    """None when the sample matches what its command prints now, else a
    report naming the file and the command, with a diff."""
    try:
        got = runner.output(sample.command)
    except Exception:  # reported with the sample that raised it
        return f"{sample.file}: `{sample.command}` raised:\n{traceback.format_exc()}"
    if normalise(got) == normalise(sample.body):
        return None
    return f"{sample.file}: the sample of `{sample.command}` no longer matches:\n{diff(sample, got)}"


def rewrite(runner):
    changed = 0
    for rel in files():
        text = (ROOT / rel).read_text()
        found = samples_in(rel)
        for s in reversed(found):  # from the end, so that earlier offsets still hold
            got = runner.output(s.command)
            if normalise(got) != normalise(s.body):  # not when only elapsed times differ
                changed += 1
                print(f"{rel}: {s.command}")
                text = text[:s.start] + got + text[s.end:]
        if text != (ROOT / rel).read_text():
            (ROOT / rel).write_text(text)
    return changed


# -- docs/viewer*.png: docs/screenshots.py -------------------------------------------------


def viewer_png():
    import screenshots  # docs/screenshots.py, beside this file

    screenshots.main([])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 and print a diff on a mismatch")
    ap.add_argument("--subprocess", action="store_true", help="run each command as its own process")
    ap.add_argument("--viewer-png", action="store_true", help="also the viewer's pictures (docs/screenshots.py)")
    opts = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="racecheck-samples.")
    try:
        runner = Runner(tmp, opts.subprocess)
        if opts.check:
            samples = all_samples()
            bad = [r for r in (check_one(runner, s) for s in samples) if r]
            for r in bad:
                print(r)
            print(f"{len(samples) - len(bad)} of {len(samples)} samples match")
            return 1 if bad else 0
        changed = rewrite(runner)
        print(f"{changed} sample(s) rewritten")
        if opts.viewer_png:
            viewer_png()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
