"""Every failure sample of tests/data/failures/ through :func:`smlaunch.diagnosis.diagnose`: the cause, the spec field,
the host of the first evidence line and the words the summary and fix must hold.

The same samples go through a failed moto job in tests/integration/test_diagnosis_moto.py; :func:`sample_spec` and
:func:`load_samples` are shared with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smlaunch.diagnosis import FailureContext, diagnose
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "failures"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "smlaunch-test"


def load_samples() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(SAMPLES.glob("*.yaml"))}


def sample_spec(sample: dict, *, region: str = "us-east-1"):
    """The spec a sample's job ran: its preset on a p4d in ``region``, data and output in the test bucket."""
    sets = [f"sagemaker.role={ROLE}", f"sagemaker.region={region}", "cluster.instance_type=ml.p4d.24xlarge"]
    if sample["preset"] == "gpt2-tiny-local":
        sets.append(f"data.train=s3://{BUCKET}/tokens/")
    if sample.get("output", True):
        sets.append(f"output.s3_path=s3://{BUCKET}/output")
    return load_spec(yaml.safe_load(starter(sample["preset"])), [*sets, *sample.get("overrides", [])])


def check(sample: dict, diagnosis) -> None:
    """The diagnosis says what ``sample['expect']`` asks."""
    expect = sample["expect"]
    assert diagnosis.cause == expect["cause"], diagnosis
    if "field_in" in expect:
        assert diagnosis.field in expect["field_in"], diagnosis
    else:
        assert diagnosis.field == expect["field"], diagnosis
    assert diagnosis.evidence and diagnosis.evidence[0].host == expect["host"], diagnosis
    for words in expect.get("summary", []):
        assert words in diagnosis.summary, (words, diagnosis.summary)
    for words in expect.get("fix", []):
        assert words in diagnosis.fix, (words, diagnosis.fix)
    assert diagnosis.fix and diagnosis.summary


SAMPLE_DATA = load_samples()


def test_every_cause_of_the_issue_has_a_sample_with_a_cited_source():
    causes = {s["expect"]["cause"] for s in SAMPLE_DATA.values()}
    assert causes >= {
        "cuda-oom", "host-oom", "nccl-timeout", "nccl-error", "network", "data-missing", "s3-access-denied",
        "capacity", "max-runtime", "spot-interrupted", "smp-config", "image-mismatch", "python-exception", "unknown",
    }  # fmt: skip
    for name, sample in SAMPLE_DATA.items():
        assert sample["sources"], name
        assert all(s.startswith(("https://", "entrypoints/", "docs/")) for s in sample["sources"]), name


@pytest.mark.parametrize("name", sorted(SAMPLE_DATA))
def test_sample_is_diagnosed(name):
    sample = SAMPLE_DATA[name]
    spec = sample_spec(sample)
    ctx = FailureContext(
        name="job",
        status=sample["status"],
        failure_reason=sample.get("failure_reason"),
        secondary_status=sample["secondary"],
        transitions=(*sample.get("transitions", []), sample["secondary"]),
        logs={host: list(lines) for host, lines in (sample.get("logs") or {}).items()},
        spec=spec,
        instance_type=spec.cluster.instance_type,
        instance_count=spec.cluster.instance_count,
        max_run_s=int(spec.cluster.max_run_hours * 3600),
        ran_s=spec.cluster.max_run_hours * 3600 if sample["secondary"] == "MaxRuntimeExceeded" else None,
        spot=spec.cluster.spot.enabled,
        checkpoint_uri=spec.output.checkpoint_s3_uri,
        channels=dict(spec.data),
    )
    check(sample, diagnose(ctx))
