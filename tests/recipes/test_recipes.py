"""Recipes: published sizes, overrides, validation — all without torch."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from recipes import (RecipeError, flops_per_token, get_recipe, num_parameters, recipe_from_dict, recipe_names,
                     recipe_to_dict, validate)


@pytest.mark.parametrize("name,expected", [
    ("midm_8b", 8_055_951_360),
    ("midm_base", 11_545_743_360),
    ("midm_mini", 2_305_517_312),
])
def test_published_parameter_counts(name, expected):
    assert num_parameters(get_recipe(name).model) == expected


def test_mini_geometry_matches_published_config():
    m = get_recipe("midm_mini").model
    assert (m.num_layers, m.hidden_size, m.ffn_hidden_size) == (48, 1792, 4608)
    assert (m.num_attention_heads, m.num_query_groups, m.kv_channels) == (32, 8, 128)
    assert m.tie_embeddings and m.vocab_size == 131_392 and m.rotary_base == 8_000_000


def test_flops_per_token_is_about_six_n_plus_attention():
    r = get_recipe("midm_8b")
    n_nonembed = num_parameters(r.model) - r.model.vocab_size * r.model.hidden_size
    flops = flops_per_token(r.model, r.data.seq_length)
    attention = 3 * 4 * 32 * 4096 * 4096
    assert flops == pytest.approx(6 * n_nonembed + attention, rel=1e-3)


def test_overrides_are_typed_and_named():
    r = get_recipe("tiny", ["train.steps=7", "optimizer.lr=1e-3", "data.blend=0.3 a 0.7 b",
                            "parallel.sequence_parallel=false", "checkpoint.keep_last=none", "logging.run_name=x y"])
    assert r.train.steps == 7 and isinstance(r.train.steps, int)
    assert r.optimizer.lr == 1e-3
    assert r.data.blend == ["0.3", "a", "0.7", "b"]
    assert r.checkpoint.keep_last is None and r.logging.run_name == "x y"
    with pytest.raises(RecipeError, match="unknown field 'stpes'.*steps"):
        get_recipe("tiny", ["train.stpes=3"])
    with pytest.raises(RecipeError, match="expected int"):
        get_recipe("tiny", ["train.steps=many"])
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        get_recipe("tiny", ["train.steps"])
    with pytest.raises(RecipeError, match="unknown recipe"):
        get_recipe("gpt5")


def test_json_round_trip():
    for name in recipe_names():
        r = get_recipe(name)
        assert recipe_from_dict(json.loads(json.dumps(recipe_to_dict(r)))) == r


@pytest.mark.parametrize("overrides,world,gpu,message", [
    (["parallel.tensor_model_parallel_size=3"], None, None, "must divide model.num_attention_heads"),
    (["parallel.tensor_model_parallel_size=16"], None, None, "must divide model.num_query_groups"),
    (["parallel.pipeline_model_parallel_size=5"], None, None, "must divide model.num_layers"),
    (["parallel.tensor_model_parallel_size=1", "parallel.sequence_parallel=true"], None, None,
     "sequence_parallel needs parallel.tensor_model_parallel_size > 1"),
    (["train.global_batch_size=1000", "train.micro_batch_size=3"], None, None, "multiple of train.micro_batch_size"),
    (["train.global_batch_size=1024", "train.micro_batch_size=2"], 6 * 2, None,
     "divisible by train.micro_batch_size × data-parallel size"),
    ([], 3, None, "not a multiple of tensor_model_parallel_size"),
    ([], None, False, "precision.fp8 needs an NVIDIA GPU"),
    (["precision.fp8=none"], None, False, "use_distributed_optimizer needs GPUs"),
    (["data.seq_length=65536"], None, None, "exceeds model.max_position_embeddings"),
    (["train.exit_after_steps=0"], None, None, "train.exit_after_steps must be >= 1"),  # 0 used to mean no limit
    (["precision.dtype=fp8"], None, None, "precision.dtype must be one of"),
    # the H100 knobs
    (["parallel.context_parallel_size=3"], None, None, "multiple of 2 × parallel.context_parallel_size"),
    (["parallel.context_parallel_size=2"], 6, None, r"× context_parallel_size \(2 × 1 × 2\)"),
    (["precision.fp8=none", "parallel.use_distributed_optimizer=false", "parallel.sequence_parallel=false",
      "parallel.tp_comm_overlap=false", "precision.dtype=fp32", "parallel.context_parallel_size=2"], None, False,
     "context_parallel_size > 1 needs GPUs with Transformer Engine"),
    (["parallel.sequence_parallel=false"], None, None, "tp_comm_overlap needs parallel.tensor_model_parallel_size > 1"),
    ([], None, False, "tp_comm_overlap needs GPUs"),
    ([], None, False, "perf.cross_entropy_loss_fusion is a GPU kernel fusion"),
    (["parallel.virtual_pipeline_model_parallel_size=2"], None, None, "needs parallel.pipeline_model_parallel_size > 1"),
    (["parallel.pipeline_model_parallel_size=4", "parallel.virtual_pipeline_model_parallel_size=3"], None, None,
     r"\(4 × 3\) must divide model.num_layers \(32\)"),
    (["parallel.pipeline_model_parallel_size=4", "parallel.virtual_pipeline_model_parallel_size=2",
      "train.global_batch_size=6", "train.micro_batch_size=1"], 8, None,
     "interleaved pipelining needs the number of micro-batches per step"),
    (["perf.recompute_granularity=everything"], None, None, "perf.recompute_granularity must be one of"),
    (["perf.recompute_granularity=full"], None, None, "needs perf.recompute_method in"),
    (["perf.recompute_granularity=full", "perf.recompute_method=block", "perf.recompute_num_layers=33"], None, None,
     r"between 1 and the layers per pipeline model chunk \(32\)"),
    (["perf.recompute_granularity=selective", "perf.recompute_num_layers=2"], None, None,
     "apply only to perf.recompute_granularity=full"),
    (["perf.recompute_granularity=selective", "perf.recompute_modules=layernorm"], None, None,
     "perf.recompute_modules must be a non-empty subset"),
    (["perf.transformer_impl=megatron"], None, None, "perf.transformer_impl must be one of"),
    (["perf.transformer_impl=local"], None, None, "precision.fp8 needs perf.transformer_impl transformer_engine"),
    (["perf.transformer_impl=local", "precision.fp8=none"], None, None,
     "sequence_parallel needs perf.transformer_impl transformer_engine"),
])
def test_invalid_combinations_name_the_field(overrides, world, gpu, message):
    with pytest.raises(RecipeError, match=message):
        validate(get_recipe("midm_8b", overrides), world_size=world, has_gpu=gpu)


def test_a_world_size_the_layout_cannot_use_says_how_many_processes_to_start():
    with pytest.raises(RecipeError, match=r"world size 1 is not a multiple .* \(2 × 1 × 1\): start 2 processes "
                                          r"or a multiple \(torchrun --nproc_per_node, srun --ntasks\)"):
        validate(get_recipe("tiny", ["parallel.tensor_model_parallel_size=2"]), world_size=1, has_gpu=False)
    with pytest.raises(RecipeError, match="the job needs at least one process"):
        validate(get_recipe("tiny"), world_size=0, has_gpu=False)


@pytest.mark.parametrize("overrides,message", [
    (["dpo.beta=0"], "dpo.beta must be positive"),
    (["dpo.sft_loss_weight=-1"], "dpo.sft_loss_weight must be >= 0"),
    (["dpo.epochs=0"], "dpo.epochs must be positive"),
    (["dpo.warmup_fraction=1"], "dpo.warmup_fraction must be in"),
])
def test_invalid_dpo_settings_name_the_field(overrides, message):
    with pytest.raises(RecipeError, match=message):
        validate(get_recipe("tiny_dpo", overrides))


def test_valid_layouts_pass():
    validate(get_recipe("midm_8b"), world_size=64, has_gpu=True)
    validate(get_recipe("tiny", ["parallel.tensor_model_parallel_size=2"]), world_size=2, has_gpu=False)
    validate(get_recipe("midm_mini", ["parallel.tensor_model_parallel_size=8", "parallel.sequence_parallel=true",
                                      "parallel.context_parallel_size=1"]), world_size=16, has_gpu=True)
    validate(get_recipe("midm_base_long"), world_size=8, has_gpu=True)
    # recompute and VPP are not GPU-gated: they run on CPU
    validate(get_recipe("tiny", ["perf.recompute_granularity=full", "perf.recompute_method=uniform",
                                 "perf.recompute_num_layers=1", "parallel.pipeline_model_parallel_size=2",
                                 "parallel.virtual_pipeline_model_parallel_size=2"]), world_size=2, has_gpu=False)


def test_dpo_recipes_keep_their_model_and_cite_the_published_settings():
    for name, parent, gpus in (("midm_base_dpo", "midm_base", 64), ("midm_mini_dpo", "midm_mini", 64),
                               ("tiny_dpo", "tiny_mini", None)):
        r = get_recipe(name)
        assert r.model == get_recipe(parent).model and r.sft is None  # that model's SFT checkpoint loads as the policy
        assert r.dpo.beta == 0.1 and r.dpo.sft_loss_weight == 0.0 and r.precision.fp8 is None
        assert r.scheduler.style == "linear" and r.dpo.warmup_fraction == 0.1 and r.optimizer.weight_decay == 0.0
        validate(r, world_size=gpus, has_gpu=gpus is not None)
    for name in ("midm_base_dpo", "midm_mini_dpo"):
        r = get_recipe(name)
        assert (r.optimizer.lr, r.dpo.epochs, r.train.global_batch_size, r.data.seq_length) == (5e-7, 1.0, 128, 2048)
    assert get_recipe("midm_8b").dpo is None
    with pytest.raises(RecipeError, match="has no 'dpo' section"):
        get_recipe("tiny", ["dpo.beta=0.2"])


def test_recipe_show_and_plan_cli_do_not_import_torch():
    code = ("import sys, json, io, contextlib; from midm.cli import main\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): rc = main(['recipe', 'show', 'midm_base', '--set', 'train.steps=5'])\n"
            "d = json.loads(buf.getvalue()); assert rc == 0\n"
            "plan = io.StringIO()\n"
            "with contextlib.redirect_stdout(plan):\n"
            "    rc = main(['recipe', 'plan', 'midm_base_long', '--gpus', '8', '--json'])\n"
            "    rc += main(['recipe', 'plan', 'midm_8b', '--gpus', '8', '--search', '--top', '2'])\n"
            "p = json.loads(plan.getvalue().split('\\nmidm_8b on')[0]); assert rc == 0\n"
            "print(d['num_parameters'], d['train']['steps'], d['flops_per_token'] > 0, p['fits'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["11545743360", "5", "True", "True", "False"]


def test_recipe_show_reports_invalid_recipe():
    proc = subprocess.run([sys.executable, "-m", "midm", "recipe", "show", "tiny", "--set",
                           "parallel.pipeline_model_parallel_size=3"], capture_output=True, text=True)
    assert proc.returncode == 2 and "pipeline_model_parallel_size (3) must divide model.num_layers (4)" in proc.stderr


def test_unknown_stage_and_help():
    proc = subprocess.run([sys.executable, "-m", "midm", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "train" in proc.stdout and "slurm" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "midm", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown stage" in proc.stderr


def test_sft_recipes_carry_their_own_section():
    for name, lr in (("midm_base_sft", 5e-6), ("midm_mini_sft", 1e-5)):
        r = get_recipe(name)
        assert r.sft is not None and r.sft.epochs == 2.0 and r.sft.warmup_fraction == 0.03  # Tülu 3
        assert (r.optimizer.lr, r.optimizer.weight_decay, r.scheduler.style) == (lr, 0.0, "linear")
        assert (r.train.global_batch_size, r.data.seq_length) == (128, 4096)
    assert get_recipe("midm_mini_sft").model == get_recipe("midm_mini").model
    assert get_recipe("tiny").sft is None
    with pytest.raises(RecipeError, match="has no 'sft' section"):
        get_recipe("tiny", ["sft.dataset=x"])
    assert get_recipe("tiny_sft", ["sft.dataset=/d", "sft.epochs=none"]).sft.epochs is None
    old = recipe_to_dict(get_recipe("tiny"))
    del old["sft"]  # checkpoints written before the section existed still load
    assert recipe_from_dict(old).sft is None
