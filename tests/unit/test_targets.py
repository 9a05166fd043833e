"""Target adapters: one owned-key table that validate and render share, the SDK v2 adapter's output, and the
recording backend recording exactly that output."""

from __future__ import annotations

import dataclasses
import pkgutil

import pytest
import yaml

import smlaunch.request
import smlaunch.spec.rules.arith
from smlaunch import jobs, targets
from smlaunch.backends import RecordingBackend
from smlaunch.errors import RenderError
from smlaunch.request import LaunchRequest, render
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import check
from smlaunch.targets import sagemaker_v2
from smlaunch.templates import STARTERS, starter

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
EVERY_OPTION = [  # every optional keyword the adapter can render, switched on
    "cluster.spot.enabled=true",
    "output.s3_path=s3://b/out",
    "output.checkpoint_s3_uri=s3://b/ckpt",
    "sagemaker.subnets=[subnet-1]",
    "sagemaker.security_group_ids=[sg-1]",
    "sagemaker.volume_kms_key=alias/v",
    "sagemaker.output_kms_key=alias/o",
    "sagemaker.tags.team=ml",
    "sagemaker.environment.NCCL_DEBUG=WARN",
]


def spec_of(preset: str = "gpt2-30b", overrides=()):
    return load_spec(yaml.safe_load(starter(preset)), [f"sagemaker.role={ROLE}", *overrides])


@pytest.mark.parametrize("preset", sorted(STARTERS))
@pytest.mark.parametrize("image", [None, "123.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:1.13.1-gpu-py39"])
def test_every_rendered_estimator_key_is_owned(preset, image):
    """The table cannot drift from the adapter: whatever it renders, the user may not set."""
    overrides = [*EVERY_OPTION, *([f"sagemaker.image_uri={image}"] if image else [])]
    kwargs = sagemaker_v2.estimator_kwargs(render(spec_of(preset, overrides)))
    assert set(kwargs) - set(sagemaker_v2.OWNED_KEYS) == set()
    assert {"use_spot_instances", "max_wait", "subnets", "output_kms_key"} <= set(kwargs)  # the options did render


def test_the_backend_adds_only_owned_keys():
    # the SageMaker backend passes sagemaker_session besides the adapter's kwargs
    assert "sagemaker_session" in sagemaker_v2.OWNED_KEYS


@pytest.mark.parametrize("key", sorted(sagemaker_v2.OWNED_KEYS))
def test_validate_and_render_agree_on_every_owned_key(key):
    spec = spec_of("gpt2-30b", [f"sagemaker.extra_estimator_kwargs.{key}=1"])
    field = f"sagemaker.extra_estimator_kwargs.{key}"
    findings = [f for f in check(spec).errors if f.field == field]
    assert [f.rule for f in findings] == ["JOB007"]
    with pytest.raises(RenderError) as caught:
        render(spec)
    assert caught.value.field == field
    assert findings[0].message in caught.value.message  # the same words in validate and render
    assert caught.value.fix == findings[0].fix


def test_keys_smlaunch_does_not_own_pass_through_both():
    spec = spec_of("gpt2-30b", ["sagemaker.extra_estimator_kwargs.keep_alive_period_in_seconds=60"])
    assert not [f for f in check(spec).findings if f.rule == "JOB007"]
    assert sagemaker_v2.estimator_kwargs(render(spec))["keep_alive_period_in_seconds"] == 60


def test_there_is_one_owned_key_table():
    assert not hasattr(smlaunch.request, "OWNED_ESTIMATOR_KEYS")
    assert not hasattr(smlaunch.spec.rules.arith, "OWNED_ESTIMATOR_KWARGS")


def test_owned_key_hints_name_a_spec_field_or_smlaunch():
    for key, where in sagemaker_v2.OWNED_KEYS.items():
        assert where.startswith("`") or where.startswith("smlaunch"), key
    assert sagemaker_v2.owned_key_hint("max_run") == "set it under `cluster.max_run_hours`"
    assert sagemaker_v2.owned_key_hint("entry_point") == "set it under `entry_point.script`"
    hint = sagemaker_v2.owned_key_hint("debugger_hook_config")
    assert hint == "it comes from smlaunch (off, as AWS's SMP notebooks do)"


def test_the_request_holds_no_sdk_spellings():
    fields = {f.name for f in dataclasses.fields(LaunchRequest)}
    assert {"engine", "extra_target_kwargs", "mp_parameters", "processes_per_host", "inputs"} <= fields
    assert not fields & {"distribution", "metric_definitions", "extra_estimator_kwargs"}
    assert not hasattr(LaunchRequest, "estimator_kwargs") and not hasattr(LaunchRequest, "distribution")
    request = render(spec_of("gpt2-30b", ["sagemaker.tags.team=ml"]))
    assert request.engine == "smp" and request.tags == {"team": "ml"}
    assert sagemaker_v2.estimator_kwargs(request)["tags"] == [{"Key": "team", "Value": "ml"}]


def test_the_adapter_refuses_what_it_cannot_launch():
    request = render(spec_of())
    with pytest.raises(RenderError, match="`role` is controlled by smlaunch"):
        sagemaker_v2.estimator_kwargs(dataclasses.replace(request, extra_target_kwargs={"role": "x"}))
    with pytest.raises(RenderError, match="launches engine smp or torch, not 'torchrun'"):
        sagemaker_v2.estimator_kwargs(dataclasses.replace(request, engine="torchrun"))


def test_call_is_estimator_and_fit_arguments():
    request = render(spec_of("gpt2-tiny-local", ["data.train=s3://b/tokens/"]))
    call = sagemaker_v2.call(request, job_name="j-1")
    assert call["estimator"] == sagemaker_v2.estimator_kwargs(request)
    assert call["estimator"]["distribution"] == sagemaker_v2.distribution(request)
    assert call["fit"] == {"inputs": {"train": "s3://b/tokens/"}, "job_name": "j-1"}
    assert sagemaker_v2.call(request)["fit"] == {"inputs": {"train": "s3://b/tokens/"}}


ADAPTERS = sorted(m.name for m in pkgutil.iter_modules(targets.__path__))


@pytest.mark.parametrize("module", ADAPTERS)
def test_every_adapter_follows_the_protocol(module):
    adapter = targets.get(module.replace("_", "-"))
    assert adapter.__name__ == f"smlaunch.targets.{module}"
    assert adapter.OWNED_KEYS and all(isinstance(v, str) and v for v in adapter.OWNED_KEYS.values())
    request = render(spec_of())
    call = adapter.call(request, job_name="j-1")
    assert isinstance(call, dict) and call == adapter.call(request, job_name="j-1")  # pure
    owned = next(iter(adapter.OWNED_KEYS))
    with pytest.raises(RenderError):
        adapter.refuse_owned_keys({owned: 1})
    adapter.refuse_owned_keys({"not-owned-by-anyone": 1})


def test_targets_are_found_by_name():
    assert targets.get("sagemaker-v2") is sagemaker_v2 is targets.get()
    assert sagemaker_v2.name == "sagemaker-v2"
    with pytest.raises(ValueError, match="unknown launch target 'sagemaker-v9'"):
        targets.get("sagemaker-v9")


def test_recording_backend_records_the_adapters_call():
    backend = RecordingBackend()
    handle = jobs.submit(spec_of("gpt2-60b", ["sagemaker.tags.team=ml"]), backend=backend, job_name="rec-2")
    request = backend.requests[0]
    assert isinstance(request, LaunchRequest)
    assert backend.calls == [sagemaker_v2.call(request, job_name="rec-2")]
    assert backend.submissions[0].call == backend.calls[0] == backend.submissions[0].request
    estimator = backend.calls[0]["estimator"]
    assert estimator["distribution"]["smdistributed"]["modelparallel"]["parameters"]["partitions"] == 2
    assert handle.describe()["ResourceConfig"]["InstanceCount"] == estimator["instance_count"]
    dry = jobs.submit(spec_of("gpt2-60b"), backend=backend, dry_run=True, job_name="dry-1")
    assert dry.submission.call["fit"]["job_name"] == "dry-1" and len(backend.calls) == 1
