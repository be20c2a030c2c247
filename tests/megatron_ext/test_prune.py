"""`midm prune`: GQA/SwiGLU-aware slicing on synthetic weights, Minitron selection, the refusal to
prune without calibration data, a real prune to the `tiny_mini` geometry (Mini's layout: heads ×
head_dim ≠ hidden, tied embeddings), and agreement with nvidia-modelopt's mcore_minitron."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from megatron_ext.importance import Importance
from megatron_ext.prune_slice import PruneError, check_target, fold_output, plan, slice_state
from midm.cli import main as midm_main
from recipes import ModelConfig
from tests.conftest import REPO
from tests.megatron_ext.byte_data import VOCAB
from tests.megatron_ext.conftest import run_env
from tests.megatron_ext.surgery_fixtures import (assert_output_refused_first, fingerprinted_stub, occupied_copy,
                                               plain_tensors, pruned_tiny, summary, trained_tiny)

SRC = ModelConfig(num_layers=2, hidden_size=8, ffn_hidden_size=6, num_attention_heads=4, num_query_groups=2,
                  kv_channels=2, vocab_size=5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("prune")


def _coded(rows: int, cols: int, layer: int = 0) -> torch.Tensor:
    """w[r, c] = 1000·layer + 100·r + c: every entry names its own position."""
    return (1000 * layer + 100 * torch.arange(rows)[:, None] + torch.arange(cols)[None, :]).float()


def _synthetic_state(cfg: ModelConfig) -> dict:
    h, f, d = cfg.hidden_size, cfg.ffn_hidden_size, cfg.kv_channels
    qkv_rows = (cfg.num_attention_heads + 2 * cfg.num_query_groups) * d
    state = {"embedding.word_embeddings.weight": _coded(cfg.vocab_size, h),
             "output_layer.weight": -_coded(cfg.vocab_size, h), "decoder.final_layernorm.weight": _coded(1, h)[0]}
    for i in range(cfg.num_layers):
        p = f"decoder.layers.{i}."
        state.update({p + "input_layernorm.weight": _coded(1, h, i)[0],
                      p + "pre_mlp_layernorm.weight": _coded(1, h, i)[0],
                      p + "self_attention.linear_qkv.weight": _coded(qkv_rows, h, i),
                      p + "self_attention.linear_proj.weight": _coded(h, cfg.num_attention_heads * d, i),
                      p + "mlp.linear_fc1.weight": _coded(2 * f, h, i), p + "mlp.linear_fc2.weight": _coded(h, f, i)})
    return state


def _importance(cfg: ModelConfig) -> Importance:
    hidden = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.7, 0.0, 0.6, 0.3])  # top-4: channels 1, 3, 4, 6
    mlp = [torch.tensor([0.9, 0.1, 0.2, 0.3, 0.4, 0.8]), torch.tensor([0.1, 0.2, 0.9, 0.8, 0.0, 0.0])]
    # heads of group 0 = (0, 1), group 1 = (2, 3); group 1 is stronger, and head 3 beats head 2
    heads = [torch.tensor([0.1, 0.2, 0.5, 0.9]), torch.tensor([0.9, 0.1, 0.2, 0.3])]
    return Importance(hidden=hidden, mlp=mlp, heads=heads, blocks=torch.tensor([0.2, 0.7]))


def test_slicing_follows_megatron_gqa_and_swiglu_layouts():
    dst = ModelConfig(num_layers=2, hidden_size=4, ffn_hidden_size=2, num_attention_heads=1, num_query_groups=1,
                      kv_channels=2, vocab_size=5, tie_embeddings=True)
    keep = plan(_importance(SRC), SRC, dst)
    assert keep.hidden.tolist() == [1, 3, 4, 6]
    assert keep.ffn[0].tolist() == [0, 5] and keep.ffn[1].tolist() == [2, 3]
    assert keep.groups[0].tolist() == [1] and keep.heads[0].tolist() == [3]
    assert keep.groups[1].tolist() == [0] and keep.heads[1].tolist() == [0]
    out = slice_state(_synthetic_state(SRC), SRC, dst, keep, fold="output")
    # group 1's block is rows 8..15 = [q2 (8,9), q3 (10,11), k (12,13), v (14,15)]; keep q3, k, v
    qkv0 = out["decoder.layers.0.self_attention.linear_qkv.weight"]
    assert ((qkv0[:, 0] - 1) / 100).long().tolist() == [10, 11, 12, 13, 14, 15]
    assert (qkv0[0] % 100).long().tolist() == [1, 3, 4, 6]  # hidden columns
    qkv1 = out["decoder.layers.1.self_attention.linear_qkv.weight"]
    assert ((qkv1[:, 0] - 1001) / 100).long().tolist() == [0, 1, 4, 5, 6, 7]  # q0, k, v of group 0
    proj0 = out["decoder.layers.0.self_attention.linear_proj.weight"]
    assert (proj0[0] % 100).long().tolist() == [6, 7] and ((proj0[:, 0] - 6) / 100).long().tolist() == [1, 3, 4, 6]
    fc1 = out["decoder.layers.0.mlp.linear_fc1.weight"]
    assert ((fc1[:, 0] - 1) / 100).long().tolist() == [0, 5, 6, 11]  # gate and up halves, same neurons
    fc2 = out["decoder.layers.1.mlp.linear_fc2.weight"]
    assert (fc2[0] % 100).long().tolist() == [2, 3]
    assert out["decoder.final_layernorm.weight"].tolist() == [1, 3, 4, 6]
    assert "output_layer.weight" not in out  # tied: the output layer was folded into the embedding
    assert torch.equal(out["embedding.word_embeddings.weight"], -_coded(5, 8)[:, [1, 3, 4, 6]])


def test_depth_pruning_keeps_the_most_important_blocks_and_targets_are_checked():
    dst = ModelConfig(num_layers=1, hidden_size=8, ffn_hidden_size=6, num_attention_heads=4, num_query_groups=2,
                      kv_channels=2, vocab_size=5)
    keep = plan(_importance(SRC), SRC, dst)
    assert keep.layers == [1]
    out = slice_state(_synthetic_state(SRC), SRC, dst, keep)
    assert torch.equal(out["decoder.layers.0.mlp.linear_fc2.weight"], _coded(8, 6, 1))  # layer 1, renumbered
    assert torch.equal(out["output_layer.weight"], -_coded(5, 8))
    mean = fold_output(torch.ones(2, 2), 3 * torch.ones(2, 2), "mean")
    assert torch.equal(mean, 2 * torch.ones(2, 2))
    for bad in (dict(hidden_size=16), dict(num_attention_heads=3), dict(num_attention_heads=4, num_query_groups=1),
                dict(kv_channels=4)):
        target = ModelConfig(**{**vars(dst), **bad})
        with pytest.raises(PruneError):
            check_target(SRC, target)


def test_prune_refuses_without_calibration_data(root, byte_prefix, capsys):
    teacher = trained_tiny(root, byte_prefix)
    # In-process: the refusal comes before any model or parallel state is built.
    assert midm_main(["prune", "--checkpoint", str(teacher), "--output", str(root / "blind"), "--hidden", "64"]) == 2
    err = capsys.readouterr().err
    assert "calibration" in err and "--calib" in err and "blindly" in err
    assert not (root / "blind").exists()


def test_prune_and_scored_dus_refuse_calibration_data_of_another_tokenizer(tmp_path, capsys):
    """--calib tokenized with another tokenizer than the checkpoint records (same vocabulary size): the
    activations would rank neurons, heads and blocks on meaningless ids. Refused before any weight is read."""
    source = fingerprinted_stub(tmp_path / "ckpt", "a" * 16)
    (tmp_path / "calib.summary.json").write_text(json.dumps({"tokenizer": "tok_b", "tokenizer_fingerprint": "b" * 16}))
    calib = str(tmp_path / "calib")
    for command, args in (("prune", ["--hidden", "64"]), ("dus", ["--map", "scored:5"])):
        out = tmp_path / f"{command}_out"
        assert midm_main([command, "--checkpoint", str(source), "--output", str(out), *args, "--calib", calib]) == 2
        err = capsys.readouterr().err
        assert err == (f"midm {command}: error: --calib {calib} was tokenized with tokenizer tok_b (fingerprint "
                       f"{'b' * 16}) but checkpoint {source} was trained with tokenizer tok_a (fingerprint "
                       f"{'a' * 16}): "
                       "the same ids mean other pieces in each. Calibrate on data tokenized with the checkpoint's "
                       "tokenizer (`midm data tokenize … --tokenizer DIR`); if the change is deliberate, add "
                       "--allow-tokenizer-mismatch\n")
        assert not out.exists()


def test_prune_refuses_an_existing_checkpoint_before_reading_any_weight(root, byte_prefix, capsys):
    teacher = trained_tiny(root, byte_prefix)
    # --calib names no data: a refusal that came after loading the model would fail on it instead
    assert_output_refused_first(capsys, "prune", teacher, occupied_copy(teacher, root / "occupied"),
                                ["--hidden", "64", "--calib", str(root / "no_such_prefix")])


@pytest.mark.slow
def test_prune_to_mini_layout_slices_consistently(root, byte_prefix):
    teacher = trained_tiny(root, byte_prefix)
    out = pruned_tiny(root, byte_prefix)
    info = summary(out, "prune_summary.json")
    assert info["model"]["hidden_size"] == 64 and info["model"]["kv_channels"] == 32
    assert info["model"]["num_attention_heads"] * info["model"]["kv_channels"] == 128  # ≠ hidden, as in Mini
    assert info["num_parameters"] == info["recipe_num_parameters"]
    assert info["recipe_overrides"] == ["model.num_layers=4", f"model.vocab_size={VOCAB}"]
    assert info["fold"] in ("embedding", "output", "mean")
    assert set(info["fold_losses"]) == {"embedding", "output", "mean"}
    assert info["calib_lm_loss"]["student"] == min(info["fold_losses"].values())
    recipe = json.loads((out / "iter_0000000" / "recipe.json").read_text())
    assert recipe["name"] == "tiny_mini" and recipe["model"]["tie_embeddings"] is True
    kept = json.loads((out / "kept_indices.json").read_text())
    hidden = torch.tensor(kept["hidden"])
    assert len(hidden) == 64 and kept["layers"] == [0, 1, 2, 3]
    old, new = plain_tensors(teacher), plain_tensors(out)
    folded = {"embedding": old["embedding.word_embeddings.weight"], "output": old["output_layer.weight"]}
    folded["mean"] = 0.5 * (folded["embedding"] + folded["output"])
    assert torch.equal(new["embedding.word_embeddings.weight"], folded[info["fold"]][:, hidden])
    assert "output_layer.weight" not in new
    for layer in range(4):
        ffn = torch.tensor(kept["ffn"][str(layer)])
        assert torch.equal(new["decoder.layers.mlp.linear_fc2.weight"][layer],
                           old["decoder.layers.mlp.linear_fc2.weight"][layer][hidden][:, ffn])
        assert torch.equal(new["decoder.layers.self_attention.linear_qkv.weight"][layer],
                           old["decoder.layers.self_attention.linear_qkv.weight"][layer][:, hidden])
        assert torch.equal(new["decoder.layers.mlp.linear_fc1.layer_norm_weight"][layer],
                           old["decoder.layers.mlp.linear_fc1.layer_norm_weight"][layer][hidden])


@pytest.mark.slow
def test_kept_sets_agree_with_modelopt_mcore_minitron(root, byte_prefix, tmp_path):
    pytest.importorskip("modelopt", reason="the `prune` extra (nvidia-modelopt==0.43.0) is not installed")
    teacher = trained_tiny(root, byte_prefix)
    report_path = tmp_path / "crosscheck.json"
    proc = subprocess.run([sys.executable, "-m", "megatron_ext.prune_modelopt", "--checkpoint", str(teacher),
                           "--calib", byte_prefix, "--samples", "8", "--hidden", "96", "--ffn", "256",
                           "--heads", "2", "--layers", "3", "--json", str(report_path)],
                          cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=300)
    assert report_path.exists(), proc.stderr[-4000:]
    report = json.loads(report_path.read_text())
    print(json.dumps({k: v for k, v in report.items() if k != "block_importance"}))
    assert report["hidden"]["agree"], report["hidden"]
    assert report["layers"]["agree"], report["layers"]
    assert report["ffn"]["agree"], report["ffn"]
    assert report["heads"]["agree"], report["heads"]
    assert proc.returncode == 0


def test_dropping_heads_groups_and_neurons_equals_zeroing_them_in_megatron():
    """The GQA/SwiGLU slicing checked against Megatron's real attention and MLP (subprocess)."""
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "megatron_ext" / "prune_equivalence.py")],
                          cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(len(g) == 2 for g in result["groups"].values())  # 2 of 4 query groups kept per layer
    assert result["max_abs_diff"] < 1e-4
