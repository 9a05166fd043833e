"""render: pure, deterministic, one source of truth; golden files of the reference templates (the SDK v2
target's call, as ``smlaunch render`` prints it).

Refresh the golden files with ``SMLAUNCH_UPDATE_GOLDEN=1 pytest tests/unit/test_render.py``; a missing one fails.
"""

from __future__ import annotations

import json

import pytest
import yaml

from smlaunch.errors import RenderError
from smlaunch.request import render
from smlaunch.resources import entrypoints_dir
from smlaunch.spec.load import load_spec
from smlaunch.targets import sagemaker_v2
from smlaunch.templates import STARTERS, starter
from tests.golden_files import ROOT, assert_golden

GOLDEN = ROOT / "render"


def spec_of(preset: str, tmp_path, overrides=()):
    path = tmp_path / f"{preset}.yaml"
    path.write_text(starter(preset))
    return load_spec(path, overrides)


def normalized(request) -> str:
    payload = sagemaker_v2.call(request)
    assert payload["estimator"]["source_dir"] == str(entrypoints_dir())
    payload["estimator"]["source_dir"] = "<entrypoints>"
    return yaml.safe_dump(payload, sort_keys=True, width=120)


@pytest.mark.parametrize("preset", sorted(STARTERS))
def test_render_matches_golden(preset, tmp_path):
    text = normalized(render(spec_of(preset, tmp_path)))
    assert_golden(GOLDEN / f"{preset}.yaml", text)


def test_a_missing_golden_file_fails_and_is_not_written(tmp_path, monkeypatch):
    monkeypatch.delenv("SMLAUNCH_UPDATE_GOLDEN", raising=False)
    missing = tmp_path / "render" / "missing.yaml"
    with pytest.raises(pytest.fail.Exception, match=r"missing; regenerate it with `SMLAUNCH_UPDATE_GOLDEN=1 pytest"):
        assert_golden(missing, "text\n")
    assert not missing.exists()
    monkeypatch.setenv("SMLAUNCH_UPDATE_GOLDEN", "1")
    assert_golden(missing, "text\n")
    assert missing.read_text() == "text\n"


def test_render_is_deterministic(tmp_path):
    first = render(spec_of("gpt2-60b", tmp_path))
    second = render(spec_of("gpt2-60b", tmp_path))
    assert first == second and first.fingerprint() == second.fingerprint()
    assert render(spec_of("gpt2-60b", tmp_path, ["training.max_steps=7"])).fingerprint() != first.fingerprint()


def test_one_value_reaches_both_smp_and_entry_point(tmp_path):
    request = render(spec_of("gpt2-60b", tmp_path, ["smp.microbatches=8", "training.batch_size=64"]))
    smp = sagemaker_v2.distribution(request)["smdistributed"]["modelparallel"]["parameters"]
    hp = request.hyperparameters
    assert smp["microbatches"] == hp["microbatches"] == 8
    assert smp["partitions"] == hp["pipeline_parallel_degree"] == 2
    assert smp["tensor_parallel_degree"] == hp["tensor_parallel_degree"] == 8
    assert smp["active_microbatches"] == hp["active_microbatches"] == 2
    assert "pipeline_parallel_degree" not in smp  # SMP receives its own name, `partitions`


def test_booleans_render_as_integers_and_checkpointing_only_for_the_script(tmp_path):
    request = render(spec_of("gpt2-30b", tmp_path))
    hp = request.hyperparameters
    assert hp["prescaled_batch"] == 1 and hp["offload_activations"] == 0 and hp["fp16"] == 1
    assert hp["activation_checkpointing"] == 1 and hp["activation_strategy"] == "each"
    assert not any(isinstance(v, bool) for v in hp.values())
    assert "activation_checkpointing" not in request.mp_parameters
    assert sagemaker_v2.distribution(request)["mpi"] == {
        "enabled": True,
        "processes_per_host": 8,
        "custom_mpi_options": "--mca btl_vader_single_copy_mechanism none -x NCCL_DEBUG=WARN",
    }


def test_active_microbatches_defaults_to_pp_plus_two_capped(tmp_path):
    request = render(spec_of("gpt2-60b", tmp_path, ["smp.active_microbatches=null", "smp.microbatches=8"]))
    assert request.mp_parameters["active_microbatches"] == 4  # pp(2) + 2
    request = render(spec_of("gpt2-60b", tmp_path, ["smp.active_microbatches=null", "smp.microbatches=3"]))
    assert request.mp_parameters["active_microbatches"] == 3  # capped at microbatches


def test_spot_and_optional_settings(tmp_path):
    spec = spec_of(
        "gpt2-30b",
        tmp_path,
        [
            "cluster.spot.enabled=true",
            "cluster.max_run_hours=10",
            "output.checkpoint_s3_uri=s3://b/ckpt",
            "sagemaker.subnets=[subnet-1]",
            "sagemaker.volume_kms_key=alias/k",
        ],
    )
    kwargs = sagemaker_v2.estimator_kwargs(render(spec))
    assert kwargs["use_spot_instances"] is True and kwargs["max_wait"] == 34 * 3600 and kwargs["max_run"] == 36000
    assert kwargs["checkpoint_s3_uri"] == "s3://b/ckpt"
    assert kwargs["subnets"] == ["subnet-1"] and kwargs["volume_kms_key"] == "alias/k"
    assert "security_group_ids" not in kwargs and "output_kms_key" not in kwargs


def test_extra_estimator_kwargs_pass_through_but_owned_keys_are_refused(tmp_path):
    request = render(
        spec_of("gpt2-30b", tmp_path, ["sagemaker.extra_estimator_kwargs={keep_alive_period_in_seconds: 60}"])
    )
    assert request.extra_target_kwargs == {"keep_alive_period_in_seconds": 60}
    assert sagemaker_v2.estimator_kwargs(request)["keep_alive_period_in_seconds"] == 60
    spec = spec_of("gpt2-30b", tmp_path, ["sagemaker.extra_estimator_kwargs={distribution: {}}"])
    owned = r"`distribution` is controlled by smlaunch \(set it under `engine:` and `smp:`\)"
    with pytest.raises(RenderError, match=owned):
        render(spec)


def test_unknown_instance_without_processes_per_host_cannot_render(tmp_path):
    spec = spec_of("gpt2-30b", tmp_path, ["cluster.instance_type=ml.x9.huge"])
    with pytest.raises(RenderError, match="is not in smlaunch's catalog"):
        render(spec)
    spec = spec_of("gpt2-30b", tmp_path, ["cluster.instance_type=ml.x9.huge", "cluster.processes_per_host=4"])
    assert render(spec).processes_per_host == 4


def test_request_is_json_serialisable(tmp_path):
    json.dumps(render(spec_of("gpt2-tiny-local", tmp_path)).to_dict())


@pytest.mark.parametrize("preset", ["gpt2-10b", "gpt2-30b", "gpt2-60b"])
def test_render_of_the_aws_script_matches_golden(preset, tmp_path):
    """The reference templates launched through AWS's train_gpt_simple.py (``arguments: aws-smp-gpt2``)."""
    job = yaml.safe_load(starter(preset))
    job["entry_point"] = {"script": "train_gpt_simple.py", "source_dir": "gpt2", "arguments": "aws-smp-gpt2"}
    job["data"] = {"train": "s3://bucket/gpt2/train", "test": "s3://bucket/gpt2/test"}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    payload = sagemaker_v2.call(render(load_spec(path)))
    assert payload["estimator"]["source_dir"] == str(tmp_path / "gpt2")
    payload["estimator"]["source_dir"] = "<job folder>/gpt2"
    assert_golden(GOLDEN / f"aws-smp-gpt2-{preset}.yaml", yaml.safe_dump(payload, sort_keys=True, width=120))
