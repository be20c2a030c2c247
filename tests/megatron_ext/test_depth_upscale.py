"""`midm dus`: layer maps, the Mi:dm 8B → Base geometry, bit-identical layer copies from a TP=2
checkpoint, scored selection on real text, and continued training of the result."""
from __future__ import annotations

import copy

import pytest
import torch

from megatron_ext.depth_upscale import MapError, explicit_map, parse_map, scored_map, scored_window, solar_map
from midm.cli import main as midm_main
from recipes import get_recipe, num_parameters
from tests.megatron_ext.byte_data import VOCAB
from tests.megatron_ext.conftest import read_metrics, run_midm
from tests.megatron_ext.surgery_fixtures import (assert_output_refused_first, common_sets, occupied_copy, plain_tensors,
                                               summary, trained_tiny, upscaled_tiny)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("dus")


def test_solar_8_turns_midm_8b_into_midm_base():
    base_8b = get_recipe("midm_8b").model
    layer_map = solar_map(base_8b.num_layers, 8)
    assert layer_map == list(range(0, 24)) + list(range(8, 32))
    assert explicit_map("0-23,8-31", 32) == layer_map
    deeper = copy.deepcopy(base_8b)
    deeper.num_layers = len(layer_map)
    assert deeper == get_recipe("midm_base").model
    assert num_parameters(deeper) == 11_545_743_360


def test_map_errors_name_the_problem():
    with pytest.raises(MapError, match="n/2"):
        parse_map("solar:16", 32)
    with pytest.raises(MapError, match=r"\[32\]"):
        parse_map("0-32", 32)
    with pytest.raises(MapError, match="cannot parse"):
        parse_map("0-3;5", 32)
    with pytest.raises(MapError, match="5..6"):
        parse_map("scored:8", 4)


def test_scored_map_duplicates_the_most_important_interior_window():
    scores = [0.9, 0.1, 0.5, 0.6, 0.2, 0.95]  # first/last are high but never doubled
    assert scored_window(6, 8, scores) == (2, 2)
    assert scored_map(6, 8, scores) == [0, 1, 2, 3, 2, 3, 4, 5]


@pytest.mark.slow
def test_dus_from_tp2_checkpoint_is_bit_identical_and_trains(root, byte_prefix):
    teacher, out = trained_tiny(root, byte_prefix), upscaled_tiny(root, byte_prefix)
    info = summary(out, "dus_summary.json")
    assert info["layer_map"] == [0, 1, 2, 1, 2, 3]
    assert info["num_parameters"] == info["recipe_num_parameters"] == num_parameters(
        get_recipe("tiny_deep", [f"model.vocab_size={VOCAB}"]).model)
    old, new = plain_tensors(teacher), plain_tensors(out)
    layered = [k for k in new if k.startswith("decoder.layers.")]
    assert len(layered) == 6  # qkv, proj, fc1, fc2 and both norms
    for key in layered:
        assert new[key].shape[0] == 6
        for j, src in enumerate(info["layer_map"]):
            assert torch.equal(new[key][j], old[key][src]), (key, j)
    for key in ("embedding.word_embeddings.weight", "decoder.final_layernorm.weight", "output_layer.weight"):
        assert torch.equal(new[key], old[key])

    # Continued training with a fresh optimizer from the upscaled weights (the `midm_base` path).
    run_midm(["train", "--recipe", "tiny_deep", "--set", f"data.blend={byte_prefix}",
              "--set", f"checkpoint.load={out}", *common_sets(root, "deep_train", 2)])
    records = read_metrics(root / "deep_train")
    # Random init starts at ≈ ln(256) ≈ 5.5–6.0; upscaled trained weights start well below.
    assert records[0]["loss"] < 5.0 and records[-1]["val_loss"] < 5.0


@pytest.mark.slow
def test_scored_dus_measures_block_importance(root, byte_prefix, capsys):
    teacher = trained_tiny(root, byte_prefix)
    # Refused before anything heavy is loaded (in-process: no parallel state is created).
    assert midm_main(["dus", "--checkpoint", str(teacher), "--output", str(root / "scored_nocalib"), "--map", "scored:5"]) == 2
    assert "--calib" in capsys.readouterr().err and not (root / "scored_nocalib").exists()
    out = root / "scored"
    run_midm(["dus", "--checkpoint", str(teacher), "--output", str(out), "--map", "scored:5",
              "--calib", byte_prefix, "--samples", "8"])
    info = summary(out, "dus_summary.json")
    blocks = info["block_importance"]
    assert len(blocks) == 4 and all(0.0 < b < 2.0 for b in blocks)
    start, end = info["duplicated_window"]
    assert start == end == (1 if blocks[1] >= blocks[2] else 2)  # the more important interior layer
    assert info["layer_map"] == scored_map(4, 5, blocks) == list(range(0, end + 1)) + list(range(start, 4))
    assert (out / "latest").is_file()

    # An --output holding a checkpoint is refused before the source is read: --calib names no data,
    # which scored:L would read (after loading the model) were the refusal late.
    assert_output_refused_first(capsys, "dus", teacher, occupied_copy(teacher, root / "occupied"),
                                ["--map", "scored:5", "--calib", str(root / "no_such_prefix")])
