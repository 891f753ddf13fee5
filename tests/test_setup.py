"""A new user's first minutes: the README's set-up and demo lines work in a
fresh virtual environment, and the model in docs/models.md runs as the page
says."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from racecheck.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(text, lang):
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)


def test_the_model_in_models_md_runs_as_the_page_says(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "models.md").read_text()
    writing = text[:text.index("## The library past the seeds")]
    (tmp_path / "counter.py").write_text(_blocks(writing, "python")[0])
    scenario = next(b for b in _blocks(writing, "yaml") if "model: ./counter.py" in b)
    (tmp_path / "counter.yaml").write_text(scenario)
    commands = [line for b in _blocks(writing, "sh") for line in b.splitlines() if line.startswith("racecheck ")]
    assert [c.split("#")[0].split() for c in commands] == [["racecheck", "run", "counter.yaml"],
                                                            ["racecheck", "check", "counter.yaml"]]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args, said = command.split("#", 1)
        out = CliRunner().invoke(main, shlex.split(args)[1:])
        assert out.exit_code == int(re.search(r"exit (\d)", said).group(1)), out.output
        if "VIOLATION of" in said:  # what the page says the run prints and saves
            assert "VIOLATION of no_lost_update" in out.output and "4 steps" in out.output
            assert (tmp_path / "traces" / "counter.json").is_file()


def test_the_python_the_readme_states_is_the_one_the_package_admits():
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["requires-python"] == ">=3.11" and "Python 3.11 or later" in README
    assert project["license"] == "GPL-2.0-only" and "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text()


def _checkout_copy(dest):
    """The checkout's files (tracked, and new ones not ignored), as a fresh
    clone has them."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            src = ROOT / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".venv", "traces", "__pycache__", "*.egg-info", ".*cache"))


def _setuptools_builds_it(python):
    """Whether the setuptools that ``python`` imports can build racecheck (an
    SPDX licence needs 77), so that pip needs no build environment of its own
    (which it would fetch from an index)."""
    out = subprocess.run([python, "-c", "import setuptools; print(setuptools.__version__)"],
                         capture_output=True, text=True)
    major = out.stdout.split(".")[0]
    return out.returncode == 0 and major.isdigit() and int(major) >= 77


@pytest.mark.venv
def test_the_readme_set_up_line_works_in_a_fresh_venv(tmp_path):
    line = next(b for b in _blocks(README, "sh") if "python3 -m venv .venv" in b).splitlines()[0]
    make, rest = line.split(" && ", 1)
    assert make == "python3 -m venv .venv" and rest.endswith("racecheck run scenarios/fault_vs_truncate.yaml")
    checkout = tmp_path / "checkout"
    _checkout_copy(checkout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run(shlex.split(make), cwd=checkout, env=env, check=True, timeout=120)
    # The dependencies come from this environment, not from an index: the
    # new one sees this one's packages after its own (a .pth file), so
    # that pip finds them installed; racecheck itself it installs.
    venv_site = next((checkout / ".venv" / "lib").glob("python3*/site-packages"))
    outer = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (venv_site / "zz_outer.pth").write_text("\n".join(outer) + "\n")
    if _setuptools_builds_it(checkout / ".venv" / "bin" / "python"):
        rest = rest.replace("pip install -e", "pip install --no-build-isolation -e")
        env["PIP_NO_INDEX"] = "1"
    out = subprocess.run(["bash", "-c", rest], cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    assert "fault_vs_truncate: VIOLATION of no_freed_block_mapped" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.returncode == 1  # a violation, as the README says
    assert "trace saved to traces/fault_vs_truncate.json" in out.stdout
    python = checkout / ".venv" / "bin" / "python"
    where = subprocess.run([python, "-c", "import racecheck; print(racecheck.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(checkout)  # the copy's, not this environment's
    shipped = subprocess.run([python, "-m", "racecheck", "schema", "--path"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout
    assert Path(shipped.strip()).is_file()


def test_a_model_error_saves_a_trace_that_racecheck_view_opens(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "models.md").read_text()
    model = _blocks(text, "python")[0].replace("tmp = st.x.get()", "tmp = 1 // st.x.get()")
    (tmp_path / "broken.py").write_text(model)
    (tmp_path / "broken.yaml").write_text("name: broken\nmodel: ./broken.py\n")
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(main, ["run", "broken.yaml"])
    assert run.exit_code == 4 and "ZeroDivisionError" in run.output, run.output
    assert "view:   racecheck view traces/broken.json" in run.output
    view = CliRunner().invoke(main, ["view", "traces/broken.json"])
    assert view.exit_code == 0, view.output
    page = (tmp_path / "traces" / "broken.html").read_text()
    assert "ZeroDivisionError" in page
