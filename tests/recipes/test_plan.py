"""``midm recipe plan``: memory accounting, fitting, throughput model, search and CLI — all without torch."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from recipes import get_recipe, num_parameters
from recipes.memory import PlanError, layout_of, memory_per_gpu, stage_parameters
from recipes.plan import GPUS, estimate, largest_micro_batch, search
from recipes.stats import flops_per_token


def test_stage_parameters_add_up_to_the_model():
    r = get_recipe("midm_8b", ["parallel.tensor_model_parallel_size=1", "parallel.sequence_parallel=false",
                               "parallel.tp_comm_overlap=false", "parallel.pipeline_model_parallel_size=4"])
    lay = layout_of(r, 8)
    first, last = stage_parameters(r, lay, "first"), stage_parameters(r, lay, "last")
    assert first.layers * 4 + first.embedding + last.output_layer + last.final_norm == num_parameters(r.model)
    # Mini (tied): one table at PP = 1, a second copy on the last stage when PP > 1
    mini = get_recipe("midm_mini", ["parallel.context_parallel_size=1"])
    (only,) = [stage_parameters(mini, layout_of(mini, 8), "only")]
    assert only.total == num_parameters(mini.model)
    mini_pp = get_recipe("midm_mini", ["parallel.context_parallel_size=1", "parallel.pipeline_model_parallel_size=2"])
    assert stage_parameters(mini_pp, layout_of(mini_pp, 8), "last").output_layer == 131_392 * 1792


def test_distributed_optimizer_and_precision_bytes():
    r = get_recipe("midm_8b")  # bf16, TP = 2, DP = 4 on 8 GPUs
    (s,) = memory_per_gpu(r, layout_of(r, 8))
    assert s.weights == 2 * s.parameters and s.gradients == 4 * s.parameters
    assert s.optimizer == pytest.approx(12 * s.parameters / 4) and s.optimizer_without_distributed == 12 * s.parameters
    cp = get_recipe("midm_8b", ["parallel.context_parallel_size=2"])
    (s2,) = memory_per_gpu(cp, layout_of(cp, 8))  # DP = 2, CP = 2: still sharded 4 ways
    assert s2.optimizer == pytest.approx(s.optimizer)
    fp32 = get_recipe("tiny")
    (t,) = memory_per_gpu(fp32, layout_of(fp32, 1), spec="local")
    assert t.weights == 4 * t.parameters and t.optimizer == 8 * t.parameters  # no fp32 master copy


def test_recompute_and_parallelism_shrink_activations():
    base = ["parallel.tensor_model_parallel_size=1", "parallel.sequence_parallel=false", "parallel.tp_comm_overlap=false",
            "parallel.context_parallel_size=1"]

    def acts(*extra):
        r = get_recipe("midm_base_long", [*base, *extra])
        return memory_per_gpu(r, layout_of(r, 8))[0].activations

    none = acts()
    assert acts("perf.recompute_granularity=selective", "perf.recompute_modules=mlp") < none
    full_block = acts("perf.recompute_granularity=full", "perf.recompute_method=block", "perf.recompute_num_layers=24")
    full_uniform = acts("perf.recompute_granularity=full", "perf.recompute_method=uniform", "perf.recompute_num_layers=1")
    assert full_uniform < full_block < none
    assert acts("parallel.context_parallel_size=2") == pytest.approx(none / 2)
    tp_sp = acts("parallel.tensor_model_parallel_size=4", "parallel.sequence_parallel=true")
    assert tp_sp == pytest.approx(none / 4)  # SP shards the norm/residual part too
    tp = acts("parallel.tensor_model_parallel_size=4")
    assert none / 4 < tp < none


def test_the_issue_question_midm_base_long_at_32k_on_8_h100():
    plan = estimate(get_recipe("midm_base_long"), 8)
    assert plan.recipe.data.seq_length == 32_768 and plan.layout.cp == 2
    assert plan.fits and plan.memory_bytes < GPUS["h100-80gb"].memory_bytes
    without_cp = estimate(get_recipe("midm_base_long", ["parallel.context_parallel_size=1"]), 8)
    assert not without_cp.fits  # TP = 4 alone: 32k activations do not fit
    assert estimate(get_recipe("midm_base_long", ["parallel.context_parallel_size=1"]), 8, gpu="h200-141gb").fits


def test_largest_micro_batch_is_the_boundary():
    r = get_recipe("midm_8b")
    best = largest_micro_batch(r, 8)
    assert best is not None and best >= 1
    fits = estimate(get_recipe("midm_8b", [f"train.micro_batch_size={best}"]), 8, find_micro_batch=False)
    assert fits.fits
    per_rank = r.train.global_batch_size // layout_of(r, 8).dp
    bigger = min(d for d in range(best + 1, per_rank + 1) if per_rank % d == 0)
    assert not estimate(get_recipe("midm_8b", [f"train.micro_batch_size={bigger}"]), 8, find_micro_batch=False).fits


def test_throughput_is_flops_per_token_at_the_stated_mfu_without_losses():
    r = get_recipe("midm_mini", ["parallel.context_parallel_size=1"])
    plan = estimate(r, 8, mfu=0.5, teacher=None)
    expected = 0.5 * 989e12 / flops_per_token(r.model, r.data.seq_length)
    assert plan.tokens_per_s_per_gpu == pytest.approx(expected, rel=1e-9)
    assert plan.achieved_mfu == pytest.approx(0.5)
    # a pipeline bubble of (PP − 1)/M, and the last stage's output layer, slow the same work down
    piped = estimate(get_recipe("midm_mini", ["parallel.context_parallel_size=1", "parallel.pipeline_model_parallel_size=4",
                                              "train.global_batch_size=64"]), 8, teacher=None)
    assert piped.layout.num_microbatches == 64 // (2 * 2)  # micro-batch 2, DP 2
    assert piped.bubble_fraction == pytest.approx(3 / 16)
    assert piped.tokens_per_s_per_gpu < expected / (1 + 3 / 16)
    # full recompute re-runs the forward: 4/3 of the layer FLOPs
    rc = estimate(get_recipe("midm_mini", ["parallel.context_parallel_size=1", "perf.recompute_granularity=full",
                                           "perf.recompute_method=uniform", "perf.recompute_num_layers=1"]), 8, teacher=None)
    assert 0.3 < rc.recompute_fraction < 1 / 3 and rc.tokens_per_s_per_gpu < expected


def test_distillation_teacher_is_planned_for_mini():
    r = get_recipe("midm_mini")
    with_teacher, alone = estimate(r, 8), estimate(r, 8, teacher=None)
    (stage,) = with_teacher.stages
    assert stage.teacher_weights > 2 * num_parameters(get_recipe("midm_base").model) - 1  # bf16, whole, TP = 1
    assert with_teacher.memory_bytes > alone.memory_bytes and with_teacher.tokens_per_s_per_gpu < alone.tokens_per_s_per_gpu


@pytest.mark.parametrize("name", ["midm_8b", "midm_base", "midm_base_long", "midm_mini"])
def test_recipe_layouts_are_the_planners_choice_on_8_h100(name):
    """Item 4 of issue 20: the recipes' parallel layout and micro-batch are what the planner picks for 8 × H100."""
    recipe = get_recipe(name)
    best = search(recipe, 8, top=1)[0]
    p, lay = recipe.parallel, best.layout
    assert (lay.tp, lay.pp, lay.cp, lay.vpp) == (p.tensor_model_parallel_size, p.pipeline_model_parallel_size,
                                                 p.context_parallel_size, p.virtual_pipeline_model_parallel_size)
    assert best.recipe.perf.recompute_granularity == recipe.perf.recompute_granularity == "none"
    assert recipe.train.micro_batch_size <= best.largest_micro_batch
    assert estimate(recipe, 8).fits


def test_search_returns_only_fitting_layouts_fastest_first():
    plans = search(get_recipe("midm_base_long"), 8, top=20)
    assert plans and all(p.fits for p in plans)
    speeds = [p.tokens_per_s_per_gpu for p in plans]
    assert max(speeds) == pytest.approx(speeds[0], rel=0.005)
    assert any(p.layout.cp > 1 for p in plans) and any(p.recipe.perf.recompute_granularity == "full" for p in plans)


def test_bad_layouts_raise_plan_errors():
    with pytest.raises(PlanError, match="not a multiple of TP × PP × CP"):
        estimate(get_recipe("midm_8b"), 7)
    with pytest.raises(PlanError, match="one of h100-80gb, h200-141gb"):
        estimate(get_recipe("midm_8b"), 8, gpu="a100")
    with pytest.raises(PlanError, match="not divisible by micro_batch_size"):
        estimate(get_recipe("midm_8b", ["train.global_batch_size=6"]), 8)
    with pytest.raises(PlanError, match="spans nodes"):
        estimate(get_recipe("midm_8b", ["parallel.tensor_model_parallel_size=16", "model.num_query_groups=16"]), 16)


def _midm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "midm", *args], capture_output=True, text=True)


def test_cli_json_text_and_errors():
    proc = _midm("recipe", "plan", "midm_8b", "--gpus", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["layout"]["dp"] == 32 and d["fits"] and d["tokens_per_s_per_gpu"] > 0
    for key in ("weights_gib", "gradients_gib", "optimizer_gib", "optimizer_without_distributed_optimizer_gib",
                "activation_per_layer_gib", "in_flight_microbatches", "logits_gib"):
        assert key in d["stages"][0]
    text = _midm("recipe", "plan", "midm_base", "--gpus", "8", "--set", "parallel.context_parallel_size=1")
    assert text.returncode == 0 and "DOES NOT FIT" in text.stdout and "tokens/s/GPU" in text.stdout
    bad = _midm("recipe", "plan", "midm_8b", "--gpus", "7")
    assert bad.returncode == 2 and "midm recipe: error: --gpus 7 is not a multiple" in bad.stderr
    none = _midm("recipe", "plan", "midm_8b", "--gpus", "0")
    assert none.returncode == 2 and "midm recipe: error: --gpus must be at least 1, got 0" in none.stderr
    assert _midm("recipe", "plan", "midm_8b", "--gpus", "8", "--set", "perf.recompute_granularity=x").returncode == 2
