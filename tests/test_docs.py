"""The README and docs/: every sample output is what its command prints
today (docs/samples.py), every command block is a sample, and every
relative link leads to a file, and every #anchor to a heading, that exists."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("docs_samples", ROOT / "docs" / "samples.py")
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)

SAMPLES = samples.all_samples()
DOCS = samples.files()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return samples.Runner(tmp_path_factory.mktemp("samples"))


def test_there_are_samples():
    assert len(SAMPLES) >= 15
    assert {s.file.as_posix() for s in SAMPLES} >= {"README.md", "docs/commands.md", "docs/counterexamples.md"}
    assert SAMPLES[0].file.as_posix() == "README.md"
    assert SAMPLES[0].command == "racecheck run scenarios/fault_vs_truncate.yaml"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.file}: {s.command}")
def test_sample_is_what_the_command_prints(runner, sample):
    report = samples.check_one(runner, sample)
    assert report is None, report


def test_samples_leave_no_trace_in_the_repository(runner):
    for s in SAMPLES:
        for arg in runner.arguments(s.command):
            assert not arg.startswith("traces/"), (s.command, arg)
            if arg.endswith((".json", ".locks")) and "/" in arg:
                assert Path(arg).resolve().is_relative_to(runner.tmp), (s.command, arg)


def test_only_elapsed_times_are_normalised():
    assert samples.normalise("6 executions, 73 steps, depth 13, 0.03 s, reduction dpor") == \
        "6 executions, 73 steps, depth 13, # s, reduction dpor"
    assert samples.normalise("36   0.02s") == "36   #s"
    for kept in ("dax.py:461", "1,225 generated", "dev[0..7]", "2.6x", "within 20 s"):
        assert samples.normalise(kept) == kept


@pytest.mark.parametrize("doc", DOCS, ids=str)
def test_every_command_block_is_a_sample(doc):
    text = (ROOT / doc).read_text()
    for m in re.finditer(r"^```[a-z]*\n\$ racecheck", text, re.M):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text[:m.start()].count("\n") + 1
        assert before.startswith("<!-- sample: "), f"{doc}:{line}: a command's output without a sample marker"


def _anchors(path):
    """GitHub's anchors for a Markdown file's headings."""
    out = set()
    for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", h.strip().lower().replace("`", "")).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=str)
def test_relative_links_resolve(doc):
    path = ROOT / doc
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{doc}: link to {target}: no such file"
        if anchor:
            assert anchor in _anchors(dest), f"{doc}: link to {target}: no such heading in {dest.name}"


def _named_paths(text):
    """The repository paths the text names: racecheck/..., tests/..., bench/...,
    examples/..., scenarios/... and docs/... (models/X.py is racecheck/models/X.py)."""
    out = set()
    for m in re.finditer(r"(?<![\w/.-])((?:racecheck|tests|bench|examples|scenarios|docs|models)/[\w./-]*\w)", text):
        p = m.group(1)
        if p.startswith("models/"):
            p = "racecheck/" + p
        out.add(p)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=str)
def test_paths_named_exist(doc):
    text = (ROOT / doc).read_text()
    text = re.sub(r"^<!-- sample: .*?^```$", "", text, flags=re.M | re.S)  # outputs name trace files
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are checked by test_relative_links_resolve
    missing = sorted(p for p in _named_paths(text)
                     if not (ROOT / p).exists() and not (ROOT / (p + ".yaml")).exists() and "traces/" not in p)
    assert not missing, f"{doc} names files that do not exist: {', '.join(missing)}"


def test_the_model_in_models_md_builds():
    text = (ROOT / "docs" / "models.md").read_text()
    code = re.search(r"^```python\n(.*?)^```$", text, re.M | re.S).group(1)
    namespace = {}
    exec(compile(code, "docs/models.md", "exec"), namespace)
    from racecheck.model import Program

    assert isinstance(namespace["build"]({}), Program)
