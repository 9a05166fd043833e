"""README keeps exactly two set-up commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "smlaunch local" in main_job and "constraints-cpu.txt" in main_job
    assert "pytest" in tests and "constraints-cpu.txt" in tests


def test_ci_runs_the_readme_test_command():
    ci = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert setup_commands()[1] in ci


def test_cpu_constraints_pin_torch():
    assert "torch==2.13.0" in ROOT.joinpath("constraints-cpu.txt").read_text().split()


def engine_example() -> tuple[dict, dict]:
    """The README's side-by-side ``before`` / ``after`` job.yaml of the engine switch, each column parsed."""
    import yaml

    section = ROOT.joinpath("README.md").read_text().split("### Two engines, one file", 1)[1]
    block = re.search(r"```yaml\n(.+?)\n```", section, flags=re.S).group(1).splitlines()[1:]  # past the titles
    split = block[0].index("name:", 1)
    columns = ((0, split), (split, None))
    return tuple(yaml.safe_load("\n".join(line[a:b].rstrip() for line in block)) for a, b in columns)


def test_the_engine_switch_example_is_the_30b_reference_before_and_a_clean_torch_job_after():
    import copy

    import yaml

    import smlaunch
    from smlaunch.templates import starter

    before, after = engine_example()
    reference = yaml.safe_load(starter("gpt2-30b"))
    for section in ("cluster", "smp"):
        assert before[section].items() <= reference[section].items(), section
    assert before["name"] == reference["name"] and "engine" not in before
    moved = copy.deepcopy(reference)
    moved["engine"] = after["engine"]
    moved["cluster"].update(after["cluster"])
    moved["smp"] = after["smp"]
    report = smlaunch.validate(moved)
    assert report.findings == (), [(f.rule, f.message) for f in report.findings]
    one_line = smlaunch.validate({**copy.deepcopy(reference), "engine": "torch"})  # the same p4d, engine only
    assert report.valid and one_line.valid and [f.rule for f in one_line.findings] == ["ENG001"]


def test_the_own_script_example_renders_the_aws_scripts_arguments():
    """The README's ``entry_point`` example, added to the 30B reference job, validates clean and renders the AWS
    script's names (the file checks need the script, so only the rulebook runs here)."""
    import yaml

    import smlaunch
    from smlaunch.spec.rules import check
    from smlaunch.templates import starter

    section = ROOT.joinpath("README.md").read_text().split("### Your own script", 1)[1]
    example = yaml.safe_load(re.search(r"```yaml\n(.+?)\n```", section, flags=re.S).group(1))
    job = {**yaml.safe_load(starter("gpt2-30b")), **example}
    spec = smlaunch.load_spec(job)
    assert not check(spec).errors
    sent = smlaunch.render(spec).hyperparameters
    assert sent["train_batch_size"] == spec.training.batch_size and sent["logging_freq"] == 1
    assert "pipeline" not in sent


def test_the_docker_sections_dlc_is_the_image_the_sdk_picks_for_the_torch_job():
    """The README's ``image_uris.retrieve`` line asks for the framework and Python versions smlaunch renders for
    ``engine: torch``, and the URIs it shows are the SDK's answers (its offline image table)."""
    import yaml

    from smlaunch.backends.sagemaker_sdk import sdk
    from smlaunch.request import render
    from smlaunch.spec.load import load_spec
    from smlaunch.targets import sagemaker_v2
    from smlaunch.templates import starter

    section = ROOT.joinpath("README.md").read_text().split("### Docker local mode", 1)[1].split("\n### ", 1)[0]
    asked = dict(re.findall(r"(version|py_version)='([^']+)'", section))
    spec = load_spec(
        yaml.safe_load(starter("gpt2-tiny-local")), ["engine=torch", "cluster.instance_type=ml.g5.12xlarge"]
    )
    kwargs = sagemaker_v2.estimator_kwargs(render(spec))
    assert (asked["version"], asked["py_version"]) == (kwargs["framework_version"], kwargs["py_version"])
    for instance in ("ml.g5.12xlarge", "ml.c5.xlarge"):
        uri = sdk().image_uris.retrieve("pytorch", region="us-east-1", version=asked["version"],
                                        py_version=asked["py_version"], instance_type=instance,
                                        image_scope="training")  # fmt: skip
        assert uri.rpartition(":")[2] in section
    assert "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:" in section
