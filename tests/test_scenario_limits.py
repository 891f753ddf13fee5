"""What scenario files may say at the edge of their limits, and what a
scenario's ``invariants`` mean for a model of your own: they add to the
model's own checks, never replace them (tests/test_bad_input.py has what is
refused)."""

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_bad_input import MODEL

from racecheck import scenario as sc
from racecheck.cli import main
from racecheck.scenario import ScenarioError, load

ROOT = Path(__file__).resolve().parent.parent



def user_scenario(tmp_path, extra=""):
    (tmp_path / "m.py").write_text(MODEL)
    path = tmp_path / "s.yaml"
    path.write_text("name: u\nmodel: ./m.py\n" + extra)
    return path


def run_json(path):
    out = CliRunner().invoke(main, ["run", "--json", "--trace-out", str(path.with_suffix(".json")), str(path)])
    return out.exit_code, json.loads(out.output)


@pytest.mark.parametrize("extra", ["", "invariants: [deadlock_free]\n", "invariants: [assertion]\n",
                                   "invariants: []\n"],
                         ids=["no list", "deadlock_free", "assertion", "empty list"])
def test_scenario_invariants_add_to_the_model_s_own(tmp_path, extra):
    path = user_scenario(tmp_path, extra)
    status, doc = run_json(path)
    assert status == 1, doc
    assert doc["verdict"] == "violation" and doc["invariant"] == "x_counts_both"


def test_the_checks_are_the_model_s_and_the_scenario_s(tmp_path):
    s = load(user_scenario(tmp_path, "invariants: [deadlock_free, assertion]\n"))
    assert s.invariant_names == ["x_counts_both", "deadlock_free", "assertion"]
    assert [i.name for i in s.model.invariants] == s.invariant_names


def test_an_invariant_the_model_has_is_not_added_twice():
    s = load(ROOT / "examples" / "peterson.yaml")  # the model checks mutual_exclusion itself
    assert s.invariant_names == ["mutual_exclusion"]
    assert len(s.model.invariants) == 1


def test_expect_may_name_the_model_s_own_invariant(tmp_path):
    path = user_scenario(tmp_path, "invariants: [deadlock_free]\nexpect:\n  verdict: violation\n"
                                   "  invariant: x_counts_both\n")
    out = CliRunner().invoke(main, ["check", str(path)])
    assert out.exit_code == 0, out.output
    assert "1 of 1 scenarios as expected" in out.output


GOOD = (ROOT / "scenarios" / "fault_vs_truncate.yaml").read_text()


def scenario_text(**file):
    lines = ["name: edge", "filesystem: ext2", "file:"] + [f"  {k}: {v}" for k, v in file.items()]
    lines += ["threads:", "  - name: t", "    ops:", "      - {op: truncate, size: 0}",
              "invariants: [no_stale_data]"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("file", [
    {"size": sc.MAX_FILE_BLOCKS * 4096},
    {"size": 0, "max_size": sc.MAX_FILE_BLOCKS * 4096},
    {"size": 4096, "spare_blocks": sc.MAX_SPARE_BLOCKS},
    {"size": sc.MAX_BLOCK_SIZE, "block_size": sc.MAX_BLOCK_SIZE, "page_size": sc.MAX_BLOCK_SIZE,
     "unit_size": sc.MAX_BLOCK_SIZE // 2048},
], ids=["largest size", "largest max_size", "most spare blocks", "largest block"])
def test_the_limits_themselves_are_accepted(tmp_path, file):
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text(**file))
    load(path)


@pytest.mark.parametrize("file", [
    {"size": sc.MAX_FILE_BLOCKS * 4096 + 1},
    {"size": 4096, "spare_blocks": sc.MAX_SPARE_BLOCKS + 1},
    {"size": 4096, "block_size": 2 * sc.MAX_BLOCK_SIZE, "page_size": 2 * sc.MAX_BLOCK_SIZE},
    {"size": 4096, "unit_size": 1, "spare_blocks": sc.MAX_DEVICE_UNITS // 4096},
], ids=["size", "spare blocks", "block size", "device units"])
def test_one_past_the_limits_is_refused(tmp_path, file):
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text(**file))
    with pytest.raises(ScenarioError, match="at most"):
        load(path)


def test_names_threads_and_operations_at_their_limits(tmp_path):
    per_thread = [sc.MAX_OPS // sc.MAX_THREADS] * sc.MAX_THREADS
    per_thread[0] += sc.MAX_OPS - sum(per_thread)
    threads = "".join(f"  - name: {'t' * (sc.MAX_THREAD_NAME - 3)}{i:03}\n    ops:\n"
                      + "      - {op: truncate, size: 0}\n" * n for i, n in enumerate(per_thread))
    path = tmp_path / "s.yaml"
    path.write_text(f"name: {'n' * sc.MAX_NAME}\nfile: {{size: 4096}}\nthreads:\n{threads}"
                    "invariants: [no_stale_data]\n")
    s = load(path)
    assert len(s.thread_names) == sc.MAX_THREADS
    assert sum(len(ops) for _, ops in s.model.threads_spec) == sc.MAX_OPS


def test_nesting_up_to_the_limit_is_accepted(tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    deep = "[" * (sc.MAX_DEPTH - 2) + "]" * (sc.MAX_DEPTH - 2)  # the document and params are two levels
    path = tmp_path / "s.yaml"
    path.write_text(f"name: u\nmodel: ./m.py\nparams: {{a: {deep}}}\n")
    load(path)
    path.write_text(f"name: u\nmodel: ./m.py\nparams: {{a: [{deep}]}}\n")
    with pytest.raises(ScenarioError, match="levels deep"):
        load(path)


def test_aliases_within_the_limits_are_expanded(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: a\nfile: {size: 4096}\nthreads:\n"
                    "  - name: one\n    ops: &ops\n      - {op: truncate, size: 0}\n"
                    "  - name: two\n    ops: *ops\ninvariants: [no_stale_data]\n")
    s = load(path)
    assert [ops for _, ops in s.model.threads_spec] == [[("truncate", {"size": 0})]] * 2


def test_line_endings_and_a_byte_order_mark_read_as_before(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    s = load(path)
    assert s.name == "fault_vs_truncate"
    # the digest a trace records is the text's, as it was read before
    assert s.digest == hashlib.sha256(("\ufeff" + GOOD).encode()).hexdigest()[:16]
    assert load(ROOT / "scenarios" / "fault_vs_truncate.yaml").digest == \
        hashlib.sha256(GOOD.encode()).hexdigest()[:16]
