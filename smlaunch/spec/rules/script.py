"""Own-script rules (``ENT``): what an ``entry_point:`` section needs of the rest of the spec, before submit.

Pure: they read the spec, not the script's files (those are :mod:`smlaunch.script_check`'s SRC findings).
Sources: AWS's train_gpt_simple.py (the ``aws-smp-gpt2`` argument table in :mod:`smlaunch.arguments`).
"""

from __future__ import annotations

from collections.abc import Iterator

from smlaunch import arguments as am
from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules.registry import Hit, hit, rule


@rule("ENT001", "script-needs-channel", "error")
def _channels(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """aws-smp-gpt2 reads SM_CHANNEL_TRAIN and SM_CHANNEL_TEST while it parses its arguments: both channels exist."""
    if am.style(spec) != "aws-smp-gpt2":
        return
    for channel in am.AWS_SMP_GPT2_CHANNELS:
        if channel in spec.data:
            continue
        env = f"SM_CHANNEL_{channel.upper()}"
        if channel == "test" and "train" in spec.data:
            fix = (
                f"set data.test: {spec.data['train']} (AWS's notebook passes the training data when it has no test set)"
            )
        else:
            fix = f"set data.{channel}: s3://<bucket>/<prefix>/{channel} (the script's own json.gz shards)"
        yield hit(
            f"data.{channel}",
            f"{am.AWS_SMP_GPT2_SCRIPT} defaults --{'training' if channel == 'train' else 'test'}-dir to "
            f"os.environ[{env!r}] while it parses its arguments: without a {channel!r} channel it stops with a "
            "KeyError before training",
            fix,
        )


@rule("ENT002", "script-engine", "error")
def _engine(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """aws-smp-gpt2 is an SMP v1 script (it imports smdistributed.modelparallel): it runs on engine smp only."""
    if am.style(spec) == "aws-smp-gpt2" and spec.engine != "smp":
        yield hit(
            "engine",
            f"entry_point.arguments aws-smp-gpt2 is AWS's SMP v1 script ({am.AWS_SMP_GPT2_SCRIPT} imports "
            f"smdistributed.modelparallel), which the torch engine's images do not have",
            "set engine: smp",
        )


@rule("ENT003", "script-argument-set-twice", "error")
def _collisions(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """An ``entry_point.hyperparameters`` name is not one the mapping already renders from a spec field."""
    if spec.entry_point is None:
        return
    mapped = am.mapped(spec)
    for name in sorted(set(spec.entry_point.hyperparameters) & set(mapped)):
        field = am.source_field(spec, name)
        where = f"from {field}" if field else f"by the {am.style(spec)} mapping"
        change = f"; set {field} instead" if field else ""
        yield hit(
            ("entry_point", "hyperparameters", name),
            f"--{name} is rendered {where} (= {mapped[name]!r}); entry_point.hyperparameters.{name} "
            f"= {spec.entry_point.hyperparameters[name]!r} would override it behind the layout's back",
            f"remove entry_point.hyperparameters.{name}{change}",
        )


@rule("ENT004", "mapping-omits-shape", "warning")
def _omitted(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """An explicit ``{spec field: argument}`` mapping passes the values the layout checks and estimates assume."""
    if am.style(spec) != "mapping":
        return
    missing = [f for f in am.SHAPING_FIELDS if f not in spec.entry_point.arguments]  # type: ignore[union-attr, operator]
    if missing:
        yield hit(
            "entry_point.arguments",
            f"the mapping does not pass {', '.join(missing)}: the script trains with its own defaults, while "
            "smlaunch's checks and estimates assume the spec's values",
            f"map {', '.join(missing)} to the script's argument names in entry_point.arguments",
        )


@rule("ENT005", "script-no-stop-checkpoint", "warning")
def _spot_checkpoint(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """aws-smp-gpt2 checkpoints every checkpoint_freq steps, never on a stop: spot needs checkpoint_every_steps."""
    if am.style(spec) != "aws-smp-gpt2" or not spec.cluster.spot.enabled:
        return
    if spec.training.checkpoint_every_steps:
        return
    every = max(1, spec.training.max_steps // 10)
    yield hit(
        "training.checkpoint_every_steps",
        f"training.checkpoint_every_steps 0 with spot: {am.AWS_SMP_GPT2_SCRIPT} saves only every checkpoint_freq "
        f"(= max_steps {spec.training.max_steps}) steps and not on SIGTERM, so an interruption restarts from step 0",
        f"set training.checkpoint_every_steps: {every}",
    )
