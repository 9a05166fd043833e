"""The estimator: every memory term against hand-computed numbers, strategies, sharding, speed, cost, CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner

from smlaunch.catalog import INSTANCES, SPOT_PRICE_FRACTION
from smlaunch.cli import cli, main
from smlaunch.costmodel import estimate, memory_findings
from smlaunch.costmodel.memory import (
    DDP_BUCKET_BYTES,
    GIB,
    Knobs,
    activation_bytes,
    estimate_memory,
    layer_activation_bytes,
    logits_bytes,
    model_state_bytes,
    stage_params,
)
from smlaunch.costmodel.throughput import Run, bubble_fraction, estimate_throughput, flops_per_token, ring_time
from smlaunch.spec.load import load_spec

# Tiny model: L=2, h=64, a=4, s=16, V=100 (padded to 128), one microbatch of 2 samples.
TINY = Knobs(num_layers=2, hidden_width=64, num_heads=4, seq_length=16, vocab_size=100, microbatch_size=2)
SBH = 16 * 2 * 64  # 2048
FULL = SBH * (34 + 5 * 4 * 16 / 64)  # Korthikanti sbh(34 + 5as/h) = 2048 * 39 = 79872
CKPT = 2 * SBH  # 4096


def spec_dict(**changes) -> dict:
    data = {
        "name": "ref60",
        "model": {"preset": "gpt2-60b"},
        "cluster": {"instance_type": "ml.p4d.24xlarge", "instance_count": 32},
        "smp": {
            "pipeline_parallel_degree": 2,
            "tensor_parallel_degree": 8,
            "microbatches": 4,
            "active_microbatches": 2,
            "prescaled_batch": True,
            "shard_optimizer_state": True,
            "ddp": True,
            "fp16": True,
        },
        "training": {"batch_size": 56, "max_steps": 100, "activation_checkpointing": "each"},
    }
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    return data


def test_stage_params_counts_blocks_and_padded_embeddings():
    # 2 x (12h² + 7h + 6h) + 128·h (padded vocab) + s·h + 2h
    assert stage_params(TINY) == 2 * (12 * 64 * 64 + 13 * 64) + 128 * 64 + 16 * 64 + 2 * 64 == 109312


def test_model_state_mixed_precision_adam_is_20_bytes_per_param():
    state = model_state_bytes(TINY)
    n = 109312
    assert state == {"parameters": 2 * n, "gradients": 2 * n, "optimizer_state": 12 * n, "master_gradients": 4 * n}
    assert sum(state.values()) == 20 * n


def test_model_state_fp32_has_no_master_copy():
    state = model_state_bytes(Knobs(2, 64, 4, 16, 100, precision="fp32"))
    assert state == {
        "parameters": 4 * 109312,
        "gradients": 4 * 109312,
        "optimizer_state": 8 * 109312,
        "master_gradients": 0,
    }


def test_shard_optimizer_state_divides_by_rdp_only():
    plain = model_state_bytes(Knobs(2, 64, 4, 16, 100, rdp=16))
    sharded = model_state_bytes(Knobs(2, 64, 4, 16, 100, rdp=16, shard_optimizer_state=True))
    assert sharded["optimizer_state"] * 16 == plain["optimizer_state"]
    assert sharded["master_gradients"] * 16 == plain["master_gradients"]
    assert sharded["parameters"] == plain["parameters"] and sharded["gradients"] == plain["gradients"]


def test_sharded_data_parallel_divides_everything_by_its_degree():
    plain = model_state_bytes(TINY)
    sdp = model_state_bytes(Knobs(2, 64, 4, 16, 100, rdp=16, sharded_data_parallel_degree=4))
    for name in plain:
        assert sdp[name] * 4 == pytest.approx(plain[name])


def test_layer_activations_korthikanti():
    assert layer_activation_bytes(TINY) == (FULL, CKPT)


def test_tensor_parallel_activations_memory_vs_speed():
    k = Knobs(2, 64, 4, 16, 100, tp=2, microbatch_size=2, prescaled_batch=True)
    full, ckpt = layer_activation_bytes(k)  # optimize memory = sequence parallel: all / t
    assert (full, ckpt) == (FULL / 2, CKPT / 2)
    fast = Knobs(2, 64, 4, 16, 100, tp=2, microbatch_size=2, prescaled_batch=True, optimize="speed")
    assert layer_activation_bytes(fast) == (SBH * (10 + 24 / 2 + 5 * 4 * 16 / 64 / 2), CKPT)


def test_without_prescaled_batch_a_tp_group_computes_tp_times_the_samples():
    k = Knobs(2, 64, 4, 16, 100, tp=2, microbatch_size=2)
    assert k.group_batch == 4
    assert layer_activation_bytes(k)[0] == 2 * FULL / 2


@pytest.mark.parametrize(
    ("strategy", "stored", "recompute"),
    [("none", 2 * FULL, 0), ("each", 2 * CKPT, FULL), ("group_2", CKPT, 2 * FULL), ("contiguous", CKPT, 2 * FULL)],
)
def test_checkpointing_strategies_on_the_tiny_model(strategy, stored, recompute):
    acts = activation_bytes(Knobs(2, 64, 4, 16, 100, microbatch_size=2, checkpointing=strategy), layers=2, in_flight=1)
    assert acts == {"activations": stored, "recompute_buffers": recompute, "host": 0}


def _act_total(strategy: str, *, in_flight: int = 1, layers: int = 32) -> float:
    k = Knobs(layers, 5120, 40, 512, 50000, tp=4, microbatch_size=8, prescaled_batch=True, checkpointing=strategy)
    acts = activation_bytes(k, layers=layers, in_flight=in_flight)
    return acts["activations"] + acts["recompute_buffers"]


def test_strategy_ordering_none_group4_each():
    assert _act_total("none") > _act_total("group_4") > _act_total("each")


def test_contiguous_saves_only_with_several_microbatches_in_flight():
    assert _act_total("contiguous") > _act_total("none")  # one microbatch: recomputes the whole stage anyway
    assert _act_total("contiguous", in_flight=4) < _act_total("none", in_flight=4)


def test_grouping_wins_with_many_microbatches_in_flight():
    # the page's "the more you group, the more efficient": true once many microbatches are in flight
    assert _act_total("group_2", in_flight=8, layers=74) < _act_total("each", in_flight=8, layers=74)


def test_microbatches_in_flight_multiply_stored_activations():
    one = Knobs(8, 64, 4, 16, 100, pp=2, microbatches=4, active_microbatches=1, checkpointing="each")
    three = Knobs(8, 64, 4, 16, 100, pp=2, microbatches=4, active_microbatches=3, checkpointing="each")
    assert three.in_flight == 3 and one.in_flight == 1
    a1 = activation_bytes(one, layers=4, in_flight=one.in_flight)
    a3 = activation_bytes(three, layers=4, in_flight=three.in_flight)
    assert a3["activations"] == 3 * a1["activations"] and a3["recompute_buffers"] == a1["recompute_buffers"]


def test_offloading_keeps_two_microbatches_on_the_gpu():
    k = Knobs(
        8,
        64,
        4,
        16,
        100,
        pp=2,
        microbatches=8,
        active_microbatches=6,
        checkpointing="each",
        offload_activations=True,
        microbatch_size=2,
    )
    acts = activation_bytes(k, layers=4, in_flight=6)
    assert acts["activations"] == 2 * 4 * CKPT and acts["host"] == 4 * 4 * CKPT


def test_logits_and_comm_buffers():
    assert logits_bytes(TINY) == 2 * 16 * 128 * 10
    mem = estimate_memory(TINY)
    assert mem.breakdown["communication_buffers"] == pytest.approx(DDP_BUCKET_BYTES / GIB)
    assert mem.breakdown["logits"] == pytest.approx(40960 / GIB)
    assert mem.total_gib == pytest.approx(sum(mem.breakdown.values()))
    assert mem.allocated_gib == pytest.approx(mem.total_gib - mem.breakdown["framework_overhead"])


def test_bubble_formula():
    assert bubble_fraction(1, 8) == 0
    assert bubble_fraction(2, 4) == pytest.approx(1 / 5)
    assert bubble_fraction(4, 4) == pytest.approx(3 / 7)
    assert bubble_fraction(2, 4, 1) == pytest.approx(1 - 0.8 * 0.5)  # one in flight: one stage busy


def test_flops_per_token_matches_nanogpt_for_gpt2_small():
    k = Knobs(12, 768, 12, 1024, 50257)
    assert flops_per_token(k) == pytest.approx(0.857e9, rel=0.01)  # pytorch-parallel.md §10


def test_ring_time():
    assert ring_time(1e9, 1, 100) == 0
    assert ring_time(1e9, 4, 100) == pytest.approx(2 * 3 / 4 * 1e9 / 100e9)


def test_cost_arithmetic():
    inst = INSTANCES["ml.p4d.24xlarge"]
    t = estimate_throughput(TINY, Run(inst, 2, 16, 32 * 16, 3600))
    assert t.time_s == pytest.approx(t.step_time_s * 3600)
    assert t.tokens_per_s == pytest.approx(32 * 16 / t.step_time_s)
    est = estimate(load_spec(spec_dict(cluster__instance_count=2)))
    hours = (est.time_s - est.job.terms["provisioning"]) / 3600
    assert est.cost_usd == pytest.approx(hours * 2 * inst.price.usd_per_hour)
    assert est.spot_cost_usd == pytest.approx(est.cost_usd * SPOT_PRICE_FRACTION)


def test_an_unknown_price_stays_unknown():
    est = estimate(load_spec(spec_dict(cluster__instance_type="ml.p5e.48xlarge")))
    assert est.instance.price is None and est.cost_usd is None and est.to_dict()["cost_usd"] is None
    assert est.to_dict()["price"] is None and "cost" not in est.to_dict()["breakdown"]
    p4d = INSTANCES["ml.p4d.24xlarge"].price
    assert p4d.component == "hosting" and p4d.as_of == "2026-06-18"  # labelled with what its source prices


def test_estimate_json_contract():
    data = estimate(load_spec(spec_dict())).to_dict()
    for key in (
        "memory_gib_per_gpu",
        "gpu_memory_gib",
        "fits",
        "breakdown",
        "step_time_s",
        "tokens_per_s",
        "cost_usd",
        "headroom_gib",
        "headroom_pct",
        "spot_cost_usd",
        "time_s",
        "mfu",
        "bubble_fraction",
        "layout",
    ):
        assert key in data
    assert set(data["breakdown"]) == {
        "parameters",
        "gradients",
        "optimizer_state",
        "master_gradients",
        "activations",
        "recompute_buffers",
        "logits",
        "communication_buffers",
        "framework_overhead",
    }
    assert data["memory_gib_per_gpu"] == pytest.approx(sum(data["breakdown"].values()), abs=0.01)
    assert data["layout"]["rdp"] == 16 and data["gpu_memory_gib"] == 40.0


def test_memory_findings_names_checked_fixes_and_line(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: big\nmodel: {preset: gpt2-60b}\ncluster: {instance_type: ml.p4d.24xlarge, instance_count: 32}\n"
        "smp:\n  pipeline_parallel_degree: 2\n  tensor_parallel_degree: 8\n  microbatches: 4\n"
        "  active_microbatches: 2\n  prescaled_batch: true\n  shard_optimizer_state: false\n  ddp: true\n"
        "  fp16: true\ntraining: {batch_size: 56, max_steps: 10, activation_checkpointing: each}\n"
    )
    (finding,) = memory_findings(load_spec(path))
    assert finding.rule == "MEM001" and finding.severity == "error"
    assert finding.field == "smp.shard_optimizer_state" and finding.line == 10
    assert "set smp.shard_optimizer_state: true (est." in finding.fix
    est = float(finding.fix.split("(est. ")[1].split(" GiB")[0])
    assert est <= 40.0


FIX_TEXT = re.compile(r"(?:set|lower|raise) (\w+)\.(\w+)(?:: | to )(\S+) \(est\. ([\d.]+) GiB\)")


def _parse_value(text: str):
    return {"true": True, "false": False}.get(text, int(text) if text.isdigit() else text)


@pytest.mark.parametrize(
    ("tp", "at_least"),
    [
        (4, 2),  # ~44.7 GiB on a 40 GiB A100: optimize memory, tp 8 and a smaller batch each fit
        (2, 1),  # ~74.9 GiB: only tp 8 fits; optimize memory, tp 4, fewer active microbatches do not
    ],
)
def test_memory_findings_fixes_are_really_fits(tp, at_least):
    changes = {"smp__tensor_parallel_degree": tp, "smp__optimize": "speed"}
    spec = load_spec(spec_dict(**changes))
    assert not estimate(spec).fits
    (finding,) = memory_findings(spec)
    assert (finding.rule, finding.severity) == ("MEM001", "error")
    proposed = FIX_TEXT.findall(finding.fix)
    alternatives = " or ".join(m.group(0) for m in FIX_TEXT.finditer(finding.fix))
    assert len(proposed) >= at_least and finding.fix == f"{alternatives} (each leaves 10% free: <= 36.0 GiB)"
    assert finding.field == f"{proposed[0][0]}.{proposed[0][1]}"  # the field of the first (fastest) fix
    for section, key, value, est_gib in proposed:
        fixed = spec_dict(**changes)
        assert fixed[section].get(key) != _parse_value(value), f"{section}.{key}: not a change"
        fixed[section][key] = _parse_value(value)
        after = estimate(load_spec(fixed))  # the public cost model on the edited spec, not the fixer's own copy
        assert after.fits, f"{section}.{key}={value}: {after.memory.total_gib:.1f} GiB"
        assert after.memory.total_gib == pytest.approx(float(est_gib), abs=0.05)
        assert memory_findings(load_spec(fixed)) == []


@pytest.mark.parametrize(
    "changes",
    [
        # tp 1 x pp 1 x 1 microbatch puts ~300 GiB of the 60B model on each GPU
        {
            "smp__tensor_parallel_degree": 1,
            "smp__pipeline_parallel_degree": 1,
            "smp__microbatches": 1,
            "smp__active_microbatches": None,
        },
        # ~104 GiB: sharding (49 GiB), checkpointing (77 GiB) and fewer active microbatches each help, none fits
        {"smp__shard_optimizer_state": False, "training__activation_checkpointing": "none"},
    ],
)
def test_memory_findings_without_a_single_fix_says_so(changes):
    spec = load_spec(spec_dict(**changes))
    assert estimate(spec).memory.total_gib > 2 * 40
    (finding,) = memory_findings(spec)
    assert finding.rule == "MEM001" and FIX_TEXT.findall(finding.fix) == []
    assert finding.fix.startswith("no single change fits with 10% to spare; run `smlaunch plan --model gpt2-60b")


def test_memory_findings_quiet_when_it_fits_or_cannot_be_estimated():
    assert memory_findings(load_spec(spec_dict())) == []
    assert memory_findings(load_spec(spec_dict(cluster__instance_type="ml.x99.big"))) == []
    assert memory_findings(load_spec(spec_dict(smp__tensor_parallel_degree=3))) == []  # layout rules report it


def test_cli_estimate_json(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec_dict()))
    result = CliRunner().invoke(cli, ["estimate", str(path), "--format", "json", "--set", "training.max_steps=7"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["fits"] is True and data["train_time_s"] == pytest.approx(7 * data["step_time_s"], rel=1e-3)
    assert data["time_s"] == pytest.approx(sum(data["job_time_s"].values()), abs=0.5)
    assert data["job_time_s"]["training"] == pytest.approx(data["train_time_s"], abs=0.1)
    assert set(data["job_time_sources"]) == set(data["job_time_s"])


def test_cli_estimate_text_shows_breakdown_and_verdict(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec_dict(smp__shard_optimizer_state=False)))
    result = CliRunner().invoke(cli, ["estimate", str(path)])
    assert result.exit_code == 0, result.output
    assert "optimizer_state" in result.output and "does NOT fit" in result.output


def test_cli_estimate_errors_exit_codes(tmp_path, capsys):
    assert main(["estimate", str(tmp_path / "missing.yaml")]) == 2
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec_dict(cluster__instance_type="ml.x99.big")))
    assert main(["estimate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no GPU data for instance type 'ml.x99.big'" in err and "Traceback" not in err


def test_native_runtime_memory_model():
    n = 109312
    ddp = Knobs(2, 64, 4, 16, 100, rdp=2, microbatch_size=2, precision="bf16", runtime="native")
    assert model_state_bytes(ddp) == {
        "parameters": 4 * n,
        "gradients": 4 * n,
        "optimizer_state": 8 * n,
        "master_gradients": 2 * n,
    }  # autocast 16-bit weight copies
    fsdp = replace(ddp, shard_optimizer_state=True)
    assert model_state_bytes(fsdp) == {
        "parameters": 4 * n / 2 + 4 * n,
        "gradients": 4 * n / 2,
        "optimizer_state": 8 * n / 2,
        "master_gradients": 2 * n,
    }
    assert layer_activation_bytes(ddp) == (SBH * (16 + 24), 4 * SBH)  # no s² scores with flash SDPA
    assert estimate_memory(ddp).breakdown["communication_buffers"] == pytest.approx(4 * n / GIB)


# ---- native runtime (issue 7 §3): hand-computed on TINY's shape (L=2, h=64, s=16, V=100 -> 128·t) ------------
NATIVE = replace(TINY, precision="bf16", runtime="native", prescaled_batch=True)


def test_native_activations_sequence_parallel_shards_only_the_layernorm_inputs():
    # per s·b·h: LN inputs 8 (/t with SP) + casts (replicated: cast before the all-gather, gathered in 16 bits)
    # + 24/t. Current code (tp_input_cast): Block casts ln_1 and ln_2 outputs once each, 2 + 2 = 4
    speed = replace(NATIVE, tp=2, optimize="speed")
    memory = replace(NATIVE, tp=2, optimize="memory")
    assert layer_activation_bytes(speed) == (SBH * (8 + 4 + 12), 4 * SBH)
    assert layer_activation_bytes(memory) == (SBH * (4 + 4 + 12), 4 * SBH / 2)
    # before 4dc78cd: autocast cast the fp32 LN output inside q, k, v and c_fc, 3 x 2 + 2 = 8
    old = replace(speed, tp_input_cast=False, tp_fused_input=False)
    assert layer_activation_bytes(old) == (SBH * (8 + 8 + 12), 4 * SBH)
    assert layer_activation_bytes(replace(memory, tp_input_cast=False)) == (SBH * (4 + 8 + 12), 4 * SBH / 2)
    # tp = 1 has no cast before the block: unchanged 8 + 8 + 24 whatever the knob says
    assert layer_activation_bytes(NATIVE) == layer_activation_bytes(replace(NATIVE, tp_input_cast=False))
    assert layer_activation_bytes(NATIVE) == (SBH * 40, 4 * SBH)


def test_native_tp_traffic_per_code_variant():
    from smlaunch.costmodel import throughput as tput

    speed = replace(NATIVE, tp=2, optimize="speed")
    each = replace(speed, checkpointing="each")
    old = {"tp_input_cast": False, "tp_fused_input": False}
    cast_only = {"tp_fused_input": False}
    # all-reduce volume per s·b·h per layer: fwd 2 outputs x 2 B; bwd inputs (2 fused | 4 separate) x (2 | 4 B)
    assert tput.native_tp_comm_bytes_sbh(speed) == 2 * 2 + 2 * 2  # 8: Korthikanti's 4 16-bit all-reduces
    assert tput.native_tp_comm_bytes_sbh(each) == 8 + 2 * 2  # recomputed forward: 12
    assert tput.native_tp_comm_bytes_sbh(replace(speed, **old)) == 2 * 2 + 4 * 4  # 20
    assert tput.native_tp_comm_bytes_sbh(replace(each, **old)) == 20 + 4  # 24
    assert tput.native_tp_comm_bytes_sbh(replace(speed, **cast_only)) == 2 * 2 + 4 * 2  # 12
    assert tput.native_tp_comm_bytes_sbh(replace(each, **cast_only)) == 16
    # sequence parallel: per pass, AG(in, d_in) + RS(out, 2 B) per module = (d_in + 2) all-reduce volume
    sp = replace(NATIVE, tp=2, optimize="memory")
    assert tput.native_tp_comm_bytes_sbh(sp) == (2 + 2) * 2  # 8
    assert tput.native_tp_comm_bytes_sbh(replace(sp, checkpointing="each")) == (2 + 2) * 3  # 12
    assert tput.native_tp_comm_bytes_sbh(replace(sp, **old)) == (4 + 2) * 2  # 12: fp32 inputs, always fused
    # comm_times: L = 2 layers x 3 microbatches x ring(8 B x s·b·h, 2 ranks) = 6 x 8 x 2048 B / NVLink
    p5 = INSTANCES["ml.p5.48xlarge"]
    tp_s, _, _ = tput.comm_times(replace(speed, microbatches=3), p5)
    assert tp_s == pytest.approx(6 * 8 * SBH / (p5.gpu.nvlink_gbps * 1e9))
    tp_old, _, _ = tput.comm_times(replace(speed, microbatches=3, **old), p5)
    assert tp_old == pytest.approx(6 * 20 * SBH / (p5.gpu.nvlink_gbps * 1e9))


def test_native_fsdp_host_time_per_layer():
    from smlaunch.costmodel import throughput as tput

    fsdp = replace(NATIVE, rdp=2, shard_optimizer_state=True, microbatches=3)
    # 1-D FSDP2: 2 layers x 3 microbatches x the 1-D constant
    assert tput.native_host_time(fsdp) == pytest.approx(tput.NATIVE_HOST_FSDP_LAYER_S[False] * 2 * 3)
    assert tput.native_host_time(replace(fsdp, shard_optimizer_state=False)) == 0.0  # DDP: none
    assert tput.native_host_time(replace(fsdp, rdp=1)) == 0.0  # shard flag without dp: no FSDP
    two_d = replace(fsdp, tp=2, optimize="speed")  # TP dispatch + the 2-D FSDP hooks, per layer
    assert tput.native_host_time(two_d) == pytest.approx(
        (tput.NATIVE_HOST_TP_LAYER_S[False] + tput.NATIVE_HOST_FSDP_LAYER_S[True]) * 2 * 3
    )


def test_native_compiled_activations_use_the_fitted_ratio():
    from smlaunch.costmodel.native_memory import NATIVE_COMPILED_ACTIVATION_RATIO

    full, ckpt = layer_activation_bytes(replace(NATIVE, compiled=True))
    assert full == pytest.approx(SBH * 40 * NATIVE_COMPILED_ACTIVATION_RATIO) and ckpt == 4 * SBH


def test_native_loss_bytes_per_mode():
    from smlaunch.costmodel.memory import native_logits_bytes

    assert native_logits_bytes(NATIVE) == 2 * 16 * 128 * 12  # eager F.cross_entropy in fp32
    assert native_logits_bytes(replace(NATIVE, tp=2)) == 2 * 16 * (256 / 2) * 18  # loss_parallel, vocab-sharded
    assert native_logits_bytes(replace(NATIVE, compiled=True)) == 2 * 16 * 128 * 2  # fused compiled head + loss
    assert native_logits_bytes(replace(NATIVE, tp=2, pp=2)) == 2 * 16 * 256 * 12  # pp > 1: gathered logits


def test_native_weight_copies_only_without_checkpointing():
    n = 109312
    assert model_state_bytes(NATIVE)["master_gradients"] == 2 * n
    assert model_state_bytes(replace(NATIVE, checkpointing="each"))["master_gradients"] == 0
    assert model_state_bytes(replace(NATIVE, compiled=True, checkpointing="each"))["master_gradients"] == 0


def test_native_peak_end_of_backward_fused_vs_foreach_optimizer():
    n = 109312
    k = replace(NATIVE, checkpointing="each")
    # forward: 12n + 2 checkpoints (2 x 4·SBH) + recompute (40·SBH) + loss (49152) = 1459200 < end of backward:
    # 16n + the embedding's dense tied gradient 4·V·h = 1748992 + 32768
    mem = estimate_memory(k)
    assert mem.allocated_gib == pytest.approx((16 * n + 4 * 128 * 64) / GIB)
    assert mem.breakdown["temporaries"] == pytest.approx(4 * 128 * 64 / GIB)
    foreach = estimate_memory(replace(k, optimizer="foreach"))  # + one fp32 temporary per parameter
    assert foreach.allocated_gib == pytest.approx(20 * n / GIB)


def test_native_tied_gradient_under_tensor_parallelism():
    k = replace(NATIVE, tp=2, checkpointing="each")
    n = stage_params(k)
    # full-vocabulary Replicate gradient 4·V·h + its Shard(0) slice and the sum, 2 x 4·V/t·h; V = 256 at tp 2
    assert estimate_memory(k).allocated_gib == pytest.approx((16 * n + 4 * 256 * 64 * 2) / GIB)


def test_native_pipeline_schedules_in_flight_and_bubble():
    from smlaunch.costmodel.throughput import native_bubble_fraction

    one_f_one_b = replace(NATIVE, pp=2, microbatches=4, microbatch_size=1, active_microbatches=0)
    gpipe = replace(one_f_one_b, pipeline="simple")
    rounds = replace(gpipe, active_microbatches=2)
    assert (one_f_one_b.in_flight, gpipe.in_flight, rounds.in_flight) == (2, 4, 2)
    assert native_bubble_fraction(one_f_one_b) == pytest.approx(1 / 5)  # (p-1)/(m+p-1)
    assert native_bubble_fraction(gpipe) == pytest.approx(1 / 5)
    assert native_bubble_fraction(rounds) == pytest.approx(1 - 4 / (3 + 3))  # two rounds, each fills and drains


def test_native_optimizer_and_host_times():
    from smlaunch.costmodel import throughput as tput

    h100 = INSTANCES["ml.p5.48xlarge"].gpu
    n = 109312
    assert tput.native_optimizer_time(NATIVE, h100) == pytest.approx(n * (12 + 28) / 3.35e12)
    assert tput.native_optimizer_time(replace(NATIVE, optimizer="foreach"), h100) == pytest.approx(
        n * (12 + 80) / 3.35e12
    )
    assert tput.native_optimizer_time(replace(NATIVE, rdp=2), h100) == pytest.approx(n * (40 + 24) / 3.35e12)
    assert tput.native_host_time(NATIVE) == 0.0  # plain single-stage: the CPU runs ahead of the GPU
    tp = replace(NATIVE, tp=2, optimize="speed", microbatches=3)
    assert tput.native_host_time(tp) == pytest.approx(tput.NATIVE_HOST_TP_LAYER_S[False] * 2 * 3)
    sp = replace(tp, optimize="memory", checkpointing="each", compiled=True)
    assert tput.native_host_time(sp) == pytest.approx(
        tput.NATIVE_HOST_TP_LAYER_S[True] * tput.NATIVE_HOST_SP_FACTOR * tput.NATIVE_HOST_RECOMPUTE_FACTOR * 2 * 3
    )
    pp = replace(NATIVE, pp=2, microbatches=4)
    assert tput.native_host_time(pp) == pytest.approx(tput.NATIVE_HOST_PP_MICROBATCH_S * 4)


def test_native_non_gemm_time_counts_layers_and_loss():
    from smlaunch.costmodel import throughput as tput

    h100 = INSTANCES["ml.p5.48xlarge"].gpu
    tokens = 2 * 16
    per_token = tput.NATIVE_NON_GEMM_BYTES_SBH[False] * 64 * 2 + tput.NATIVE_LOSS_BYTES_PER_LOGIT[False] * 128
    assert tput.native_elementwise_time(NATIVE, h100, tokens) == pytest.approx(tokens * per_token / 3.35e12)
    compiled = replace(NATIVE, compiled=True)
    per_token = tput.NATIVE_NON_GEMM_BYTES_SBH[True] * 64 * 2 + tput.NATIVE_LOSS_BYTES_PER_LOGIT[True] * 128
    assert tput.native_elementwise_time(compiled, h100, tokens) == pytest.approx(tokens * per_token / 3.35e12)


def test_native_runtime_leaves_the_smp_efficiency_alone():
    from smlaunch.costmodel.throughput import COMPUTE_EFFICIENCY, NATIVE_GEMM_EFFICIENCY, efficiency

    h100 = INSTANCES["ml.p5.48xlarge"].gpu
    big = replace(TINY, microbatch_size=512, seq_length=1024)  # 524288 tokens: penalty 524288 / 524800
    penalty = 524288 / (524288 + 512)
    assert efficiency(big, h100) == pytest.approx(COMPUTE_EFFICIENCY[h100.name] * penalty)
    native = efficiency(replace(big, runtime="native"), h100)
    assert native == pytest.approx(NATIVE_GEMM_EFFICIENCY[h100.name] * penalty)


@pytest.mark.parametrize(
    ("tp", "pp", "rdp", "members"),
    [
        (8, 1, 16, 1),  # tp fills the node: 8 data-parallel groups share its NICs
        (4, 1, 32, 2),  # two ranks of each group per node
        (1, 1, 256, 8),  # pure data parallelism: one group uses the whole node's network
        (2, 2, 8, 2),
        (1, 1, 8, 1),  # the group fits in one node: NVLink, no network
    ],
)
def test_data_parallel_groups_reduce_hierarchically_across_nodes(tp, pp, rdp, members):
    from smlaunch.costmodel.throughput import _dp_members_per_node

    knobs = replace(TINY, tp=tp, pp=pp, rdp=rdp)
    assert _dp_members_per_node(knobs, INSTANCES["ml.p4d.24xlarge"]) == members


def test_pure_data_parallel_gradient_reduction_uses_the_whole_node_network():
    from smlaunch.costmodel.throughput import comm_times

    p4d = INSTANCES["ml.p4d.24xlarge"]
    grads_bytes = (2 * 12 * 64 * 64 + 128 * 64) * 2  # 2 layers x 12 h^2 + padded vocab x h, 16-bit
    _, dp, _ = comm_times(replace(TINY, rdp=256), p4d)
    node_gbps = p4d.network_gbps / 8  # 400 Gbit/s = 50 GB/s, all 8 NICs' worth for the one group
    assert dp == pytest.approx(2 * 255 / 256 * grads_bytes / (node_gbps * 1e9) * 0.5)  # DP_EXPOSED = 0.5
