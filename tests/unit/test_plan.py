"""The planner: ranking, top K, pruning, the explanation, the CLI and ``plan -o`` output that validates clean."""

from __future__ import annotations

import copy
import json
import re

import pytest
from click.testing import CliRunner

from smlaunch.cli import cli, main
from smlaunch.costmodel import estimate, plan
from smlaunch.errors import PlanError
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import check


@pytest.fixture(scope="module")
def result_10b():
    return plan("gpt2-10b", instance_type="ml.p4d.24xlarge", instance_count=16, global_batch=1280, top=5)


def test_top_k_is_sorted_by_whole_job_time_then_cost(result_10b):
    cands = result_10b.candidates
    assert len(cands) == 5
    keys = [(c.estimate.time_s, c.estimate.cost_usd) for c in cands]
    assert keys == sorted(keys)


def test_every_candidate_fits_reaches_the_global_batch_and_is_clean(result_10b):
    for c in result_10b.candidates:
        est = c.estimate
        assert est.fits and est.layout.global_batch == 1280
        report = check(load_spec(c.spec))
        assert report.valid
        assert not [w for w in report.warnings if w.field.split(".")[0] in ("smp", "training", "model", "cluster")]


def test_explanation_speaks_the_best_practices_terms(result_10b):
    text = result_10b.explanation
    assert "Fastest of" in text and "inside one ml.p4d.24xlarge" in text


def _layouts(result):
    return {(o.knobs.tp, o.knobs.pp) for o in result.feasible}


def test_plan_layouts_of_a_small_model_on_one_node_by_hand():
    # 6 layers, 4 heads on 8 GPUs: tp divides the 4 heads -> 1, 2, 4 (not 8); pp divides both the 6 layers and
    # the 8 GPUs of the node -> 1, 2 (not 3, 4, 6, 8); every tp x pp of those divides 8
    model = {"num_layers": 6, "hidden_width": 256, "num_heads": 4, "seq_length": 128, "vocab_size": 1000}
    result = plan({"model": model}, instance_type="ml.p4d.24xlarge", instance_count=1, top=3)
    assert _layouts(result) == {(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)}


def test_plan_keeps_tensor_parallelism_inside_a_node_by_hand():
    # 4 layers, 16 heads on 2 x 8 GPUs: tp 16 would divide the heads and the world but spans two hosts (best
    # practice: tp inside a node) -> tp 1, 2, 4, 8; pp 1, 2, 4 (<= 4 layers); tp 8 x pp 4 = 32 > 16 GPUs
    model = {"num_layers": 4, "hidden_width": 256, "num_heads": 16, "seq_length": 128, "vocab_size": 1000}
    result = plan({"model": model}, instance_type="ml.p4d.24xlarge", instance_count=2, top=3)
    assert _layouts(result) == {(tp, pp) for tp in (1, 2, 4, 8) for pp in (1, 2, 4)} - {(8, 4)}


def test_plan_without_global_batch_fills_the_memory_it_may_use():
    """Throughput grows with the batch, so the fastest plan is the largest batch that fits under the headroom:
    the same configuration one batch step larger no longer does."""
    from smlaunch.costmodel.planner import BATCH_LADDER, PLAN_HEADROOM

    result = plan("gpt2-xl", instance_type="ml.p4d.24xlarge", instance_count=1, top=3, vary_batch=True)
    limit = 40.0 * (1 - PLAN_HEADROOM)
    for c in result.candidates:
        assert c.estimate.memory.total_gib <= limit and check(load_spec(c.spec)).valid
    tokens = [c.estimate.throughput.tokens_per_s for c in result.candidates]
    assert tokens == sorted(tokens, reverse=True)
    best = result.best.spec
    batch, microbatches = best["training"]["batch_size"], best["smp"]["microbatches"]
    larger = next(b for b in BATCH_LADDER if b > batch and b % microbatches == 0)
    bigger = copy.deepcopy(best)
    bigger["training"]["batch_size"] = larger
    assert estimate(load_spec(bigger)).memory.total_gib > limit


def test_plan_nothing_fits_raises_plan_error():
    with pytest.raises(
        PlanError, match=re.escape("no configuration of gpt2-60b at global batch 896 fits 1 x ml.p4d.24xlarge")
    ):
        plan("gpt2-60b", instance_type="ml.p4d.24xlarge", instance_count=1)


def test_plan_unknown_instance_and_unknown_model():
    with pytest.raises(PlanError, match="no GPU data"):
        plan("gpt2-10b", instance_type="ml.nope", instance_count=1)
    assert main(["plan", "--model", "gpt2-nope", "--instance-type", "ml.p4d.24xlarge", "--instance-count", "1"]) == 2


def test_plan_model_from_a_job_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("model: {num_layers: 4, hidden_width: 256, num_heads: 8, seq_length: 128, vocab_size: 1000}\n")
    result = plan(str(path), instance_type="ml.g4dn.12xlarge", instance_count=1, top=2)
    assert result.best.spec["model"]["num_layers"] == 4


def test_cli_plan_json_and_output_validates_clean(tmp_path):
    out = tmp_path / "planned.yaml"
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            "--model",
            "gpt2-30b",
            "--instance-type",
            "ml.p4d.24xlarge",
            "--instance-count",
            "16",
            "--global-batch",
            "512",
            "--top",
            "3",
            "--format",
            "json",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["candidates"]) == 3 and data["candidates"][0]["rank"] == 1
    assert [c["tokens_per_s"] for c in data["candidates"]] == sorted(
        (c["tokens_per_s"] for c in data["candidates"]), reverse=True
    )
    spec = load_spec(out)
    assert check(spec).valid
    assert spec.smp.tensor_parallel_degree == data["candidates"][0]["spec"]["smp"]["tensor_parallel_degree"]
    assert out.read_text().startswith("#")


def test_cli_plan_text_table(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            "--model",
            "gpt2-10b",
            "--instance-type",
            "ml.p4d.24xlarge",
            "--instance-count",
            "16",
            "--global-batch",
            "1280",
            "--top",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tokens/s" in result.output and "configurations considered" in result.output


def test_plan_keeps_ten_percent_of_gpu_memory_free():
    """The estimate is within ~8% of measured peaks, so the planner never proposes more than 90% of the GPU."""
    from smlaunch.costmodel.planner import PLAN_HEADROOM

    result = plan("gpt2-30b", instance_type="ml.p4d.24xlarge", instance_count=16, top=20)
    limit = 40.0 * (1 - PLAN_HEADROOM)
    assert all(c.estimate.memory.total_gib <= limit for c in result.candidates)
    assert max(c.estimate.memory.total_gib for c in result.candidates) > 30  # the margin binds, not just passes


def test_auto_plans_every_engine_of_the_instance_and_ranks_them_together():
    both = plan("gpt2-xl", instance_type="ml.p4d.24xlarge", instance_count=1, top=10)
    assert {o.engine for o in both.feasible} == {"smp", "torch"}
    keys = [(c.estimate.time_s, c.estimate.cost_usd) for c in both.candidates]
    assert keys == sorted(keys)
    for engine in ("smp", "torch"):
        only = plan("gpt2-xl", instance_type="ml.p4d.24xlarge", instance_count=1, top=3, engine=engine)
        assert {o.engine for o in only.feasible} == {engine}
        assert {c.spec.get("engine", "smp") for c in only.candidates} == {engine}
        assert len(only.feasible) < len(both.feasible)


@pytest.mark.parametrize(
    ("model", "instance_type", "count"), [("gpt2-30b", "ml.p5.48xlarge", 4), ("gpt2-xl", "ml.g5.12xlarge", 1)]
)
def test_plans_exist_where_only_the_torch_engine_runs(tmp_path, model, instance_type, count):
    out = tmp_path / "planned.yaml"
    args = ["plan", "--model", model, "--instance-type", instance_type, "--instance-count", str(count), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    written = load_spec(str(out))
    assert written.engine == "torch" and "ddp" not in written.smp.model_fields_set
    report = check(written)
    assert report.findings == (), [(f.rule, f.message) for f in report.findings]
    assert estimate(written).fits_with_margin
    assert result.output.splitlines()[1].split()[:2] == ["#", "engine"] and " torch " in result.output


def test_an_engine_that_does_not_run_on_the_instance_exits_1_naming_the_one_that_does():
    code = main(["plan", "--model", "gpt2-xl", "--instance-type", "ml.p5.48xlarge", "--instance-count", "1",
                 "--engine", "smp"])  # fmt: skip
    assert code == 1
