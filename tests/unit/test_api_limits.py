"""Requests SageMaker would refuse are caught offline: rule API001 reads CreateTrainingJob's limits from botocore's
service model at run time (plus the documented ones), patterns match whole strings, and ``submit --dry-run`` runs
botocore's own parameter validation on the request it prints."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from smlaunch.errors import SpecError, SubmitError
from smlaunch.layout import resolve
from smlaunch.spec import api_limits, service_model
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import RULES, check
from tests.unit.test_rules import BASE

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
HP_BASE = {"entry_point.script": "train.py", "entry_point.source_dir": "."}
WHY = "(CreateTrainingJob would refuse the job)"

# (rule, overrides, severity, field, part of the message, fix): the rule cases of tests/unit/test_rules.py's form
FAILING = [
    ("API001", {"sagemaker.tags": {f"k{i}": "v" for i in range(50)}}, "error", "sagemaker.tags",
     "sagemaker.tags: 50 of yours + smlaunch's smlaunch:fingerprint = 51 entries; CreateTrainingJob takes at most 50",
     "keep at most 49 tags (smlaunch adds smlaunch:fingerprint to every job)"),
    ("API001", {"sagemaker.tags": {"smlaunch:fingerprint": "mine"}}, "error", "sagemaker.tags",
     "the smlaunch: prefix is smlaunch's own", "rename it"),
    ("API001", {"sagemaker.tags": {"aws:team": "ml"}}, "error", "sagemaker.tags",
     "the aws: prefix is reserved for AWS's own tags", "rename it"),
    ("API001", {"sagemaker.tags": {"team": "AWS:ml"}}, "error", "sagemaker.tags",
     "the aws: prefix is reserved", "rename it"),
    ("API001", {"sagemaker.tags": {"team#1": "ml"}}, "error", "sagemaker.tags",
     "tag key 'team#1': does not match CreateTrainingJob's pattern",
     "letters, digits, spaces and _ . : / = + - @ (1-128)"),
    ("API001", {"sagemaker.tags": {"k" * 129: "ml"}}, "error", "sagemaker.tags", "129 characters; CreateTrainingJob "
     "takes at most 128", "letters, digits, spaces and _ . : / = + - @ (1-128)"),
    ("API001", {"sagemaker.tags": {"team": "v" * 257}}, "error", "sagemaker.tags", "257 characters",
     "letters, digits, spaces and _ . : / = + - @ (<= 256)"),
    ("API001", {"sagemaker.environment": {f"V{i}": "1" for i in range(101)}}, "error", "sagemaker.environment",
     "101 entries; CreateTrainingJob takes at most 100", "pass the rest as hyperparameters or a config file"),
    ("API001", {"sagemaker.environment": {"1BAD": "1"}}, "error", "sagemaker.environment",
     "environment variable '1BAD': does not match", "letters, digits and _, not starting with a digit"),
    ("API001", {"sagemaker.environment": {"MY-VAR": "1"}}, "error", "sagemaker.environment",
     "environment variable 'MY-VAR'", "letters, digits and _, not starting with a digit"),
    ("API001", {"sagemaker.environment": {"LONG": "x" * 513}}, "error", "sagemaker.environment",
     "environment variable LONG's value", "keep a long value in S3"),
    ("API001", {"data": {f"c{i}": f"s3://bucket/{i}" for i in range(21)}}, "error", "data",
     "21 entries; CreateTrainingJob takes at most 20", "combine channels under one S3 prefix"),
    ("API001", {"data.train": "s3://My_Bucket/x"}, "error", "data.train", "data.train's bucket 'My_Bucket'",
     "use the bucket's exact name (lower case, 3-63 characters)"),
    ("API001", {"data.train": "s3://bucket/x\n"}, "error", "data.train", "does not match CreateTrainingJob's pattern",
     "write s3://<bucket>/<prefix>"),
    ("API001", {"output.s3_path": "s3://192.168.1.1/out"}, "error", "output.s3_path", "not an IP address",
     "use the bucket's exact name (lower case, 3-63 characters)"),
    ("API001", {"output.s3_path": "s3://my..bucket/out"}, "error", "output.s3_path", "no two adjacent periods",
     "use the bucket's exact name (lower case, 3-63 characters)"),
    ("API001", {"output.checkpoint_s3_uri": "s3://xn--bucket/c"}, "error", "output.checkpoint_s3_uri",
     "S3 reserves the prefixes", "use the bucket's exact name (lower case, 3-63 characters)"),
    ("API001", {"output.checkpoint_s3_uri": "gs://bucket/c"}, "error", "output.checkpoint_s3_uri",
     "does not match CreateTrainingJob's pattern", "write s3://<bucket>/<prefix>"),
    ("API001", {"output.s3_path": "s3://" + "b" * 1030}, "error", "output.s3_path", "1035 characters",
     "write s3://<bucket>/<prefix>"),
    ("API001", {"sagemaker.role": ROLE + "\n"}, "error", "sagemaker.role", "does not match CreateTrainingJob's "
     "pattern", "arn:aws:iam::<12-digit account>:role/<name>"),
    ("API001", {"sagemaker.role": "SageMakerRole"}, "error", "sagemaker.role", "13 characters; CreateTrainingJob "
     "takes at least 20", "arn:aws:iam::<12-digit account>:role/<name>"),
    ("API001", {"sagemaker.region": "us-east1"}, "error", "sagemaker.region", "not an AWS region name",
     "e.g. us-east-1"),
    ("API001", {"sagemaker.region": "us-east-1\n"}, "error", "sagemaker.region", "not an AWS region name",
     "e.g. us-east-1"),
    ("API001", {"sagemaker.region": "us-eats-1"}, "error", "sagemaker.region",
     "shaped like a region, but no AWS partition botocore knows has it", "use us-east-1"),
    ("API001", {"sagemaker.subnets": [f"subnet-{i}" for i in range(17)], "sagemaker.security_group_ids": ["sg-1"]},
     "error", "sagemaker.subnets", "17 entries; CreateTrainingJob takes at most 16", "list at most 16 subnets"),
    ("API001", {"sagemaker.subnets": ["subnet-1"], "sagemaker.security_group_ids": [f"sg-{i}" for i in range(6)]},
     "error", "sagemaker.security_group_ids", "6 entries; CreateTrainingJob takes at most 5",
     "list at most 5 groups"),
    ("API001", {"sagemaker.subnets": ["subnet 1"], "sagemaker.security_group_ids": ["sg-1"]}, "error",
     "sagemaker.subnets", "subnet 'subnet 1': does not match", "a subnet id, subnet-0123456789abcdef0"),
    ("API001", {"sagemaker.volume_kms_key": "alias/my key"}, "error", "sagemaker.volume_kms_key",
     "does not match CreateTrainingJob's pattern", "a KMS key id, key ARN, alias/<name> or alias ARN"),
    ("API001", {"sagemaker.output_kms_key": "k" * 2049}, "error", "sagemaker.output_kms_key", "2049 characters",
     "a KMS key id, key ARN, alias/<name> or alias ARN"),
    ("API001", {**HP_BASE, "entry_point.hyperparameters": {"config": "x" * 2499}}, "error",  # sent as '"x..."'
     "entry_point.hyperparameters", "...: 2501 characters; CreateTrainingJob takes at most 2500",
     "pass a long value in a file"),
    ("API001", {**HP_BASE, "entry_point.hyperparameters": {f"h{i}": 1 for i in range(60)}}, "error",
     "entry_point.hyperparameters", "the job's hyperparameters (60 from entry_point.hyperparameters, the rest "
     "smlaunch's and the SDK's): 1", "pass the rest of entry_point.hyperparameters in a config file"),
]  # fmt: skip
PASSING = [
    ("API001", {}),
    ("API001", {"sagemaker.tags": {f"k{i}": "v" for i in range(48)} | {"Team Name": "ML Platform/üñí=+-@:"}}),
    ("API001", {"sagemaker.environment": {"NCCL_DEBUG": "WARN", "_X1": "y" * 512}}),
    ("API001", {"data": {"train": "s3://my.bucket-1/x", "test": "local:data/test"}}),
    ("API001", {"sagemaker.role": ROLE, "sagemaker.region": "eu-west-1"}),
    ("API001", {"sagemaker.region": "cn-north-1", "sagemaker.volume_kms_key": "alias/my-key"}),
    ("API001", {"sagemaker.subnets": ["subnet-0abc"] * 16, "sagemaker.security_group_ids": ["sg-0abc"] * 5}),
    ("API001", {"output.s3_path": "s3://bucket/out", "output.checkpoint_s3_uri": "s3://bucket/ckpt/"}),
    ("API001", {**HP_BASE, "entry_point.hyperparameters": {"config": "x" * 2498, "flag": True}}),
    ("API001", {**HP_BASE, "entry_point.hyperparameters": {f"h{i}": 1 for i in range(40)}}),
]


def spec_of(overrides):
    return load_spec(copy.deepcopy(BASE), overrides)


@pytest.mark.parametrize("case", FAILING, ids=[f"{c[0]}-{i}" for i, c in enumerate(FAILING)])
def test_api_limit_fails(case):
    rule_id, overrides, severity, field, message, fix = case
    spec = spec_of(overrides)
    found = [f for f in RULES[rule_id](spec, resolve(spec)) if f.field == field]
    assert found, RULES[rule_id](spec, resolve(spec))
    assert (found[0].rule, found[0].severity) == (rule_id, severity)
    assert message in found[0].message and WHY in found[0].message
    assert found[0].fix == fix
    assert rule_id in {f.rule for f in check(spec).findings}  # reported through the registry too


@pytest.mark.parametrize(("rule_id", "overrides"), PASSING, ids=[f"{c[0]}-{i}" for i, c in enumerate(PASSING)])
def test_api_limit_passes(rule_id, overrides):
    spec = spec_of(overrides)
    assert RULES[rule_id](spec, resolve(spec)) == []


PATHS = [
    "Tags", "Tags[].Key", "Tags[].Value", "Environment", "Environment{key}", "Environment{value}", "InputDataConfig",
    "InputDataConfig[].ChannelName", "InputDataConfig[].DataSource.S3DataSource.S3Uri", "OutputDataConfig.S3OutputPath",
    "CheckpointConfig.S3Uri", "RoleArn", "VpcConfig.Subnets", "VpcConfig.Subnets[]", "VpcConfig.SecurityGroupIds",
    "VpcConfig.SecurityGroupIds[]", "ResourceConfig.VolumeKmsKeyId", "OutputDataConfig.KmsKeyId", "HyperParameters",
    "HyperParameters{key}", "HyperParameters{value}", "StoppingCondition.MaxRuntimeInSeconds", "TrainingJobName",
]  # fmt: skip


def _botocore_shape(path):
    import re

    import botocore.session

    node = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob")
    node = node.input_shape
    for part in re.findall(r"\[\]|\{key\}|\{value\}|[A-Za-z0-9]+", path):
        node = {"[]": lambda n: n.member, "{key}": lambda n: n.key, "{value}": lambda n: n.value}.get(
            part, lambda n, p=part: n.members[p]
        )(node)
    return node


@pytest.mark.parametrize("path", PATHS)
def test_limits_are_botocores_own(path):
    """Every limit the checks use is the one botocore's loaded SageMaker model has (nothing copied by hand)."""
    ours, theirs = service_model.shape(path), _botocore_shape(path)
    assert ours["type"] == theirs.type_name
    for key in ("min", "max", "pattern"):
        assert ours.get(key) == theirs.metadata.get(key), (path, key)


def test_limits_follow_the_model_they_read(monkeypatch):
    """Change the model and the verdict changes: the limit is read, not a constant in our code."""
    spec = spec_of({"sagemaker.tags": {f"k{i}": "v" for i in range(49)}})
    assert RULES["API001"](spec, resolve(spec)) == []
    shapes = copy.deepcopy(service_model.shapes())
    shapes["TagList"]["max"] = 49
    monkeypatch.setattr(service_model, "shapes", lambda: shapes)
    (finding,) = RULES["API001"](spec, resolve(spec))
    assert "49 of yours + smlaunch's smlaunch:fingerprint = 50 entries; CreateTrainingJob takes at most 49" in (
        finding.message
    )


def test_without_botocore_there_is_nothing_to_check(monkeypatch):
    monkeypatch.setattr(service_model, "shapes", lambda: None)
    monkeypatch.setattr(service_model, "region_patterns", lambda: ())
    monkeypatch.setattr(api_limits, "known_regions", frozenset)
    spec = spec_of({"sagemaker.tags": {"#": "x"}, "sagemaker.region": "nowhere"})
    assert RULES["API001"](spec, resolve(spec)) == []


def test_unicode_categories_of_tag_patterns():
    """TagKey's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: letters, separators and numbers of any script, no symbols."""
    pattern = service_model.shape("Tags[].Key")["pattern"]
    assert all(service_model.fullmatch(pattern, key) for key in ("Team", "Équipe 2", "チーム", "a_b.c:d/e=f+g-h@i"))
    assert not any(service_model.fullmatch(pattern, key) for key in ("a#", "a\n", "€", "a\ue000", "tab\t"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"data": {"train\n": "s3://bucket/x"}}, "data"),
        ({"name": "job\n"}, "name"),
        ({**HP_BASE, "entry_point.hyperparameters": {"lr\n": 1}}, "entry_point"),
    ],
)
def test_spec_patterns_match_the_whole_string(overrides, field):
    with pytest.raises(SpecError, match=field):
        spec_of(overrides)


def test_submit_preflight_patterns_match_the_whole_string():
    from smlaunch.backends.sagemaker_preflight import _check_role, _check_s3_uri, bucket_of, check_job_name

    check_job_name("gpt2-30b-1")
    for bad in ("gpt2-30b\n", "gpt2-30b\n-x"):
        with pytest.raises(SubmitError, match="not valid for SageMaker"):
            check_job_name(bad)
    with pytest.raises(SubmitError, match="not an IAM role ARN"):
        _check_role(ROLE + "\n")
    with pytest.raises(SubmitError, match="not an S3 URI"):
        _check_s3_uri("s3://bucket/x\n", "output.s3_path")
    assert bucket_of("s3://bucket/x\n") is None and bucket_of("s3://bucket/x") == "bucket"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cluster.max_run_hours": 0.0001}, "max_run_hours is 0.36 s"),
        ({"cluster.max_run_hours": 672.5}, "less than or equal to 672"),
        ({"cluster.spot.enabled": True, "cluster.spot.max_wait_hours": 0.0001}, "max_wait_hours is 0.36 s"),
        ({"cluster.spot.enabled": True, "cluster.spot.max_wait_hours": 10**6}, "to 2,147,483,647 s"),
        ({"cluster.volume_size_gb": 0}, "greater than 0"),
        ({"smp.ddp": True, "smp.ddp_port": 70000}, "less than or equal to 65535"),
    ],
)
def test_run_time_volume_and_port_bounds(overrides, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        spec_of(overrides)


def test_run_time_bounds_agree_with_botocore():
    """MaxRuntimeInSeconds and MaxWaitTimeInSeconds are at least 1 s (botocore's min), the spec's lower bound."""
    for path in ("StoppingCondition.MaxRuntimeInSeconds", "StoppingCondition.MaxWaitTimeInSeconds"):
        assert _botocore_shape(path).metadata["min"] == 1
    assert spec_of({"cluster.max_run_hours": 1 / 3600}).cluster.max_run_hours == 1 / 3600


def test_dry_run_goes_through_botocores_parameter_validation(monkeypatch):
    """A request the spec cannot express (MaxRuntimeInSeconds 0) reaches the dry run: botocore refuses it there."""
    pytest.importorskip("sagemaker")
    from smlaunch.backends.sagemaker import SageMakerBackend
    from smlaunch.request import render

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    request = render(spec_of({"sagemaker.role": ROLE, "sagemaker.region": "us-east-1"}))
    backend = SageMakerBackend("us-east-1")
    dry = backend.submit(request, job_name="limits-ok", dry_run=True)
    assert dry.request["StoppingCondition"]["MaxRuntimeInSeconds"] == 24 * 3600
    with pytest.raises(SubmitError, match=r"botocore's parameter validation(.|\n)*MaxRuntimeInSeconds"):
        backend.submit(replace(request, max_run_s=0), job_name="limits-zero", dry_run=True)


@pytest.mark.parametrize("preset", ["gpt2-10b", "gpt2-30b", "gpt2-60b", "gpt2-xl-p5", "gpt2-30b-p5"])
def test_hyperparameters_are_counted_as_the_sdk_sends_them(preset):
    """API001 counts the HyperParameters of the request the real SDK builds (the golden CreateTrainingJob of
    tests/integration/test_submit_moto.py): the same keys, and the same values but for the job name and bucket."""
    import json
    from pathlib import Path

    import yaml

    from smlaunch.spec.rules.api import _sent_hyperparameters
    from smlaunch.templates import starter

    golden = Path(__file__).resolve().parents[1] / "golden" / "create_training_job" / f"{preset}.json"
    sent = json.loads(golden.read_text())["HyperParameters"]
    spec = load_spec(yaml.safe_load(starter(preset)), ["sagemaker.region=us-west-2"])
    ours = _sent_hyperparameters(spec)
    assert set(ours) == set(sent)
    varying = {"sagemaker_job_name", "sagemaker_submit_directory", "sagemaker_region"}
    assert {k: v for k, v in ours.items() if k not in varying} == {k: v for k, v in sent.items() if k not in varying}
