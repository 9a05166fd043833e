"""smlaunch.engines against the SageMaker SDK it describes, and the engine switch through render, estimate and plan.

The SDK's own tables are read from the installed sagemaker package (fw_utils and image_uri_config/pytorch.json),
so a new SDK that changes them fails here instead of in a user's submit.
"""

from __future__ import annotations

import copy
import os

import pytest
import yaml

import smlaunch
from smlaunch.catalog import INSTANCES
from smlaunch.engines import (
    FRAMEWORK_ALIASES,
    TORCH_DEFAULT,
    TORCH_DISTRIBUTED_GPU_FRAMEWORKS,
    TORCH_FAMILIES,
    TORCH_OLDEST,
    engines_for,
    torch_runs_on,
)
from smlaunch.request import render
from smlaunch.spec.load import load_spec
from smlaunch.targets import sagemaker_v2
from smlaunch.templates import starter


@pytest.fixture(scope="module")
def sdk():
    pytest.importorskip("sagemaker", reason="the SageMaker SDK is not installed (pip install 'smlaunch[sagemaker]')")
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker import fw_utils, image_uris

    return fw_utils, image_uris.config_for_framework("pytorch")["training"]


def test_the_torch_distributed_versions_are_the_sdks(sdk):
    fw_utils, _ = sdk
    assert list(TORCH_DISTRIBUTED_GPU_FRAMEWORKS) == fw_utils.TORCH_DISTRIBUTED_GPU_SUPPORTED_FRAMEWORK_VERSIONS


def test_each_versions_python_is_its_training_images(sdk):
    _, training = sdk
    for version, py in TORCH_DISTRIBUTED_GPU_FRAMEWORKS.items():
        image = training["versions"].get(version)
        assert (image["py_versions"] == [py]) if image else py is None, version


def test_the_aliases_are_the_sdks(sdk):
    _, training = sdk
    assert FRAMEWORK_ALIASES == training["version_aliases"]


def test_the_oldest_and_the_default_are_sdk_versions_in_order():
    versions = list(TORCH_DISTRIBUTED_GPU_FRAMEWORKS)
    assert TORCH_OLDEST in versions and TORCH_DEFAULT == versions[-1]
    assert versions.index(TORCH_OLDEST) <= versions.index(TORCH_DEFAULT)  # 2.8.0 both (benchmarks/results.md)


def test_which_engines_run_where():
    assert engines_for("ml.p4d.24xlarge") == ["smp", "torch"]
    assert engines_for("ml.p5.48xlarge") == engines_for("ml.g6.12xlarge") == ["torch"]
    assert engines_for("ml.p3dn.24xlarge") == engines_for("ml.g4dn.12xlarge") == ["smp"]
    families = {name.rsplit(".", 1)[0] + "." for name in INSTANCES if torch_runs_on(name)}
    assert families == set(TORCH_FAMILIES)  # every family the torch engine claims has catalog instances
    for name in ("ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.p5en.48xlarge", "ml.p4de.24xlarge"):
        assert INSTANCES[name].num_gpus == 8
    assert {INSTANCES[n].gpu.name for n in ("ml.p5e.48xlarge", "ml.p5en.48xlarge")} == {"H200-SXM-141GB"}
    assert {INSTANCES[n].gpu.name for n in INSTANCES if n.startswith("ml.g6.")} == {"L4"}


def torch_30b(*overrides):
    return load_spec(yaml.safe_load(starter("gpt2-30b-p5")), list(overrides))


def test_the_torch_engine_renders_torch_distributed_and_no_smp():
    request = render(torch_30b())
    kwargs = sagemaker_v2.estimator_kwargs(request)
    assert kwargs["distribution"] == {"torch_distributed": {"enabled": True}}
    assert (kwargs["framework_version"], kwargs["py_version"]) == ("2.8.0", "py312")
    assert request.mp_parameters == {} and request.hyperparameters["engine"] == "torch"


def test_one_line_moves_a_reference_job_to_the_torch_engine():
    reference = yaml.safe_load(starter("gpt2-30b"))
    smp, torch = render(load_spec(copy.deepcopy(reference))), render(load_spec(reference, ["engine=torch"]))
    assert "smdistributed" in sagemaker_v2.distribution(smp) and "torch_distributed" in sagemaker_v2.distribution(torch)
    same = ("tensor_parallel_degree", "pipeline_parallel_degree", "microbatches", "batch_size", "prescaled_batch")
    assert {k: smp.hyperparameters[k] for k in same} == {k: torch.hyperparameters[k] for k in same}


def test_estimates_say_where_the_native_model_is_extrapolated():
    p5 = smlaunch.estimate(torch_30b())
    assert p5.to_dict()["engine"] == "torch" and p5.extrapolated == [
        "4 nodes: measured on one node; the all-reduces between nodes are modelled from 3200 Gbit/s of network, "
        "not measured"
    ]
    one = smlaunch.estimate(yaml.safe_load(starter("gpt2-xl-p5")))
    assert one.extrapolated == [] and one.to_dict()["extrapolated"] == []  # measured ground: H100, one node
    g5 = smlaunch.estimate(
        yaml.safe_load(starter("gpt2-xl-p5")),
        overrides=["cluster.instance_type=ml.g5.12xlarge", "smp.tensor_parallel_degree=1", "training.batch_size=4"],
    )
    assert [note.split(":")[0] for note in g5.extrapolated] == ["A10G"]
    smp = smlaunch.estimate(yaml.safe_load(starter("gpt2-30b")))
    assert smp.extrapolated == [] and smp.to_dict()["engine"] == "smp"
