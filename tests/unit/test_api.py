"""The public Python API: a pinned ``__all__``, documented names, one exception tree, specs in any form."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types

import pytest
import yaml

import smlaunch
from smlaunch import errors

EXPORTED = [
    "DryRun", "Estimate", "Finding", "JobHandle", "JobNotFound", "JobSpec", "LaunchRequest", "LocalRun",
    "LocalRunError", "MissingDependency", "PlanError", "PlanResult", "RecordingBackend", "RenderError", "Report",
    "SmlaunchError", "SpecError", "SubmitError", "ValidationFailed", "__version__", "attach", "estimate",
    "json_schema", "list_jobs", "load_spec", "plan", "render", "run_local", "starter", "submit", "validate",
    "validate_file",
]  # fmt: skip
"""Growing the public API is a deliberate diff of this list."""

FUNCTIONS = [
    "attach", "estimate", "json_schema", "list_jobs", "load_spec", "plan", "render", "run_local", "starter", "submit",
    "validate", "validate_file",
]  # fmt: skip
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def test_all_is_pinned_and_sorted():
    assert smlaunch.__all__ == EXPORTED
    assert smlaunch.__all__ == sorted(smlaunch.__all__)


def test_all_matches_the_public_names():
    for name in smlaunch.__all__:
        getattr(smlaunch, name)  # loads every lazy name
    public = sorted(
        name
        for name, value in vars(smlaunch).items()
        if (not name.startswith("_") or name == "__version__") and not isinstance(value, types.ModuleType)
    )
    assert public == smlaunch.__all__
    assert set(smlaunch.__all__) <= set(dir(smlaunch))


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        smlaunch.nope  # noqa: B018


def test_version_matches_the_package_metadata():
    from importlib.metadata import version

    assert smlaunch.__version__ == version("smlaunch")


@pytest.mark.parametrize("name", EXPORTED)
def test_every_public_name_has_a_docstring(name):
    if name == "__version__":
        return
    assert inspect.getdoc(getattr(smlaunch, name)), f"smlaunch.{name} has no docstring"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_has_an_example(name):
    doc = inspect.getdoc(getattr(smlaunch, name))
    assert ">>> " in doc, f"smlaunch.{name}'s docstring has no example"


def test_functions_come_from_the_api_module():
    import smlaunch.api

    for name in FUNCTIONS:
        assert getattr(smlaunch, name) is getattr(smlaunch.api, name)


def test_submodules_do_not_hide_the_functions():
    """The API functions' names are not submodule names, so importing every submodule keeps them functions."""
    for module in ("smlaunch.request", "smlaunch.costmodel", "smlaunch.costmodel.planner", "smlaunch.local"):
        importlib.import_module(module)
    for name in FUNCTIONS:
        assert inspect.isfunction(getattr(smlaunch, name)), name


def test_import_smlaunch_is_light_even_without_pydantic():
    heavy = ("sagemaker", "boto3", "botocore", "torch", "rich", "pydantic", "IPython", "matplotlib")
    code = f"import smlaunch, sys; smlaunch.SpecError; print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_using_the_api_stays_light():
    code = (
        "import smlaunch, sys\n"
        "spec = smlaunch.load_spec(__import__('yaml').safe_load(smlaunch.starter('gpt2-30b')))\n"
        "smlaunch.validate(spec); smlaunch.estimate(spec); smlaunch.render(spec)\n"
        "print([m for m in ('sagemaker', 'boto3', 'botocore', 'torch', 'rich', 'IPython') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


# -- the exception tree


def _exception_classes():
    return [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException)]


def test_every_exception_subclasses_smlaunch_error():
    classes = _exception_classes()
    assert len(classes) >= 9
    for cls in classes:
        assert issubclass(cls, smlaunch.SmlaunchError), cls


def test_every_exception_is_exported_and_drawn_in_the_tree():
    for cls in _exception_classes():
        assert cls.__name__ in smlaunch.__all__
        assert getattr(smlaunch, cls.__name__) is cls
        assert cls.__name__ in errors.__doc__


def test_exception_shape():
    assert issubclass(smlaunch.JobNotFound, smlaunch.SubmitError)
    exc = smlaunch.SpecError("bad", field="smp.microbatches", fix="set it to 4")
    assert (exc.message, exc.field, exc.fix, exc.exit_code) == ("bad", "smp.microbatches", "set it to 4", 2)
    assert str(exc) == "bad\n  fix: set it to 4"


# -- specs as JobSpec, path or dict


@pytest.fixture
def job_yaml(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(smlaunch.starter("gpt2-60b"))
    return path


@pytest.fixture(params=["path", "str", "dict", "JobSpec"])
def any_spec(request, job_yaml):
    return {
        "path": job_yaml,
        "str": str(job_yaml),
        "dict": yaml.safe_load(job_yaml.read_text()),
        "JobSpec": smlaunch.load_spec(job_yaml),
    }[request.param]


def test_validate_accepts_any_spec(any_spec):
    report = smlaunch.validate(any_spec)
    assert isinstance(report, smlaunch.Report)
    assert report.valid, report.errors
    assert report.summary.startswith("32 x 8 = 256 GPUs: tp 8 x pp 2")


def test_validate_with_overrides_reports_the_fix(any_spec):
    report = smlaunch.validate(any_spec, overrides={"smp.microbatches": 3})
    assert [f.rule for f in report.errors] == ["SMP008"]
    assert "batch_size: 57" in report.errors[0].fix


def test_override_strings_and_dicts_agree(job_yaml):
    a = smlaunch.load_spec(job_yaml, ["smp.microbatches=8"])
    b = smlaunch.validate(smlaunch.load_spec(job_yaml), overrides=["smp.microbatches=8"])
    assert a.smp.microbatches == 8 and b.summary.count("8 microbatch") == 1


def test_overrides_on_a_jobspec_keep_everything_else(job_yaml):
    from smlaunch.api import _spec

    spec = smlaunch.load_spec(job_yaml)
    changed = _spec(spec, {"smp.microbatches": 8})
    assert changed.smp.microbatches == 8
    assert changed.model_copy(update={"smp": spec.smp}) == spec
    assert changed.source is spec.source


def test_estimate_accepts_any_spec(any_spec):
    est = smlaunch.estimate(any_spec)
    assert isinstance(est, smlaunch.Estimate)
    assert est.gpu_memory_gib > 0 and est.memory.total_gib > 0


def test_render_accepts_any_spec(any_spec, job_yaml):
    request = smlaunch.render(any_spec)
    assert isinstance(request, smlaunch.LaunchRequest)
    assert request == smlaunch.render(smlaunch.load_spec(job_yaml))


def test_plan_from_a_spec_uses_its_cluster(any_spec):
    result = smlaunch.plan(any_spec, top=2)
    assert isinstance(result, smlaunch.PlanResult)
    assert 1 <= len(result.candidates) <= 2
    assert result.best.spec["cluster"] == {"instance_type": "ml.p4d.24xlarge", "instance_count": 32}


def test_plan_from_a_preset_needs_a_cluster():
    with pytest.raises(smlaunch.PlanError, match="needs a cluster"):
        smlaunch.plan("gpt2-10b")
    result = smlaunch.plan("gpt2-10b", instance_type="ml.p4d.24xlarge", instance_count=16, top=3)
    speeds = [c.estimate.throughput.tokens_per_s for c in result.candidates]
    assert speeds == sorted(speeds, reverse=True)


def test_bad_inputs_raise_spec_error(tmp_path):
    with pytest.raises(smlaunch.SpecError, match="no such file"):
        smlaunch.validate(tmp_path / "missing.yaml")
    with pytest.raises(smlaunch.SpecError, match="expected a JobSpec"):
        smlaunch.estimate(42)
    with pytest.raises(smlaunch.SpecError, match="unknown key"):
        smlaunch.render({"name": "x", "modle": {}})


def test_submit_and_attach_with_the_recording_backend(any_spec):
    backend = smlaunch.RecordingBackend()
    job = smlaunch.submit(any_spec, overrides={"sagemaker.role": ROLE}, backend=backend)
    assert isinstance(job, smlaunch.JobHandle)
    assert backend.requests[0].instance_count == 32
    assert backend.requests[0].role == ROLE
    assert job.status().status == "InProgress"
    assert smlaunch.attach(job.name, backend=backend).name == job.name
    with pytest.raises(smlaunch.JobNotFound):
        smlaunch.attach("no-such-job", backend=backend)


def test_submit_dry_run_sends_nothing(job_yaml):
    backend = smlaunch.RecordingBackend()
    dry = smlaunch.submit(job_yaml, dry_run=True, backend=backend, job_name="gpt2-60b-dry")
    assert isinstance(dry, smlaunch.DryRun)
    assert dry.job_name == "gpt2-60b-dry" and backend.requests == []


def test_submit_refuses_rule_errors(job_yaml):
    with pytest.raises(smlaunch.ValidationFailed, match="SMP008") as caught:
        smlaunch.submit(job_yaml, overrides=["smp.microbatches=3"], backend=smlaunch.RecordingBackend())
    assert [f.rule for f in caught.value.findings] == ["SMP008"]


def test_list_jobs_with_the_recording_backend(job_yaml):
    backend = smlaunch.RecordingBackend()
    first = smlaunch.submit(job_yaml, overrides={"sagemaker.role": ROLE}, backend=backend, job_name="gpt2-60b-a")
    smlaunch.submit(job_yaml, overrides={"sagemaker.role": ROLE}, backend=backend, job_name="other-b")
    names = [j["TrainingJobName"] for j in smlaunch.list_jobs(backend=backend)]
    assert sorted(names) == ["gpt2-60b-a", "other-b"]
    assert [j["TrainingJobName"] for j in smlaunch.list_jobs(name_contains="gpt2", backend=backend)] == [first.name]
    assert smlaunch.list_jobs(status="Completed", backend=backend) == []
    assert len(smlaunch.list_jobs(max_results=1, backend=backend)) == 1


def test_json_schema_is_the_spec_schema():
    from smlaunch.spec.schema import json_schema

    assert smlaunch.json_schema() == json_schema()
    assert smlaunch.json_schema()["$schema"].endswith("2020-12/schema")


def test_validate_file_turns_unreadable_specs_into_a_report(tmp_path):
    report = smlaunch.validate_file(tmp_path / "missing.yaml")
    assert report.unreadable and [f.rule for f in report.errors] == ["SPEC"]


def test_findings_keep_the_spec_wording_and_offer_the_cli_one(job_yaml):
    (finding,) = smlaunch.validate(job_yaml, overrides={"smp.microbatches": 3}).errors
    assert finding.fix == "set training.batch_size: 57 (a multiple of microbatches 3)"
    assert finding.cli_fix == "--set training.batch_size=57 (a multiple of microbatches 3)"
    assert finding.to_dict()["fix"] == finding.fix and finding.to_dict()["cli_fix"] == finding.cli_fix
