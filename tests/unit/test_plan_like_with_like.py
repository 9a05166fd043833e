"""The planner compares like with like: one global batch, ranked by whole-job time; it says what removed what."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smlaunch import api
from smlaunch.cli import cli
from smlaunch.costmodel.planner import REFERENCE_GLOBAL_BATCH
from smlaunch.errors import PlanError
from smlaunch.layout import resolve
from smlaunch.spec.load import load_spec


@pytest.fixture(scope="module")
def result_30b():
    return api.plan("gpt2-30b", instance_type="ml.p4d.24xlarge", instance_count=16, top=8)


def _global_batch(candidate) -> int:
    return resolve(load_spec(candidate.spec)).global_batch


def test_every_candidate_trains_the_reference_tables_global_batch(result_30b):
    assert {_global_batch(c) for c in result_30b.candidates} == {REFERENCE_GLOBAL_BATCH["gpt2-30b"]} == {512}


def test_candidates_are_ranked_by_whole_job_time_and_appear_once(result_30b):
    times = [c.estimate.time_s for c in result_30b.candidates]
    assert times == sorted(times)
    specs = [repr(c.spec) for c in result_30b.candidates]
    assert len(set(specs)) == len(specs)
    for c in result_30b.candidates:
        smp = c.spec["smp"]
        assert smp.get("active_microbatches", 1) <= smp["microbatches"]


def test_varying_the_batch_is_opt_in():
    varied = api.plan("gpt2-30b", instance_type="ml.p4d.24xlarge", instance_count=16, top=8, vary_batch=True)
    assert len({_global_batch(c) for c in varied.candidates}) > 1


def test_a_job_spec_plans_at_its_own_global_batch(tmp_path):
    import yaml

    from smlaunch.templates import starter

    data = yaml.safe_load(starter("gpt2-10b"))
    result = api.plan(data, top=3)
    assert {_global_batch(c) for c in result.candidates} == {resolve(load_spec(data)).global_batch}


def test_the_table_reads_in_80_columns(result_30b):
    lines = result_30b.table_text().splitlines()
    assert len(lines) == 1 + len(result_30b.candidates)
    assert max(map(len, lines)) <= 80


def test_an_engine_that_does_not_run_on_the_instance_is_refused_with_the_one_that_does():
    with pytest.raises(PlanError) as info:
        api.plan("gpt2-xl", instance_type="ml.g5.12xlarge", instance_count=1, engine="smp")
    assert info.value.message == "engine smp does not run on ml.g5.12xlarge"
    assert info.value.fix == "use --engine torch, which runs on it"
    with pytest.raises(PlanError, match=r"engine torch does not run on ml\.p3dn\.24xlarge"):
        api.plan("gpt2-xl", instance_type="ml.p3dn.24xlarge", instance_count=1, engine="torch")


def test_a_written_plan_validates_without_warnings(tmp_path):
    out = tmp_path / "planned.yaml"
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "--model", "gpt2-30b", "--instance-type", "ml.p4d.24xlarge",
                                 "--instance-count", "16", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = api.validate(str(out))
    assert report.valid and report.warnings == [], [(f.rule, f.message) for f in report.findings]


def test_the_cli_table_fits_80_columns_and_takes_vary_batch():
    runner = CliRunner()
    args = ["plan", "--model", "gpt2-xl", "--instance-type", "ml.p4d.24xlarge", "--instance-count", "1"]
    for extra in ([], ["--vary-batch"]):
        result = runner.invoke(cli, [*args, *extra])
        assert result.exit_code == 0, result.output
        assert max(map(len, result.output.splitlines())) <= 80
