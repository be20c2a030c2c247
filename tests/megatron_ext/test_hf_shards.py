"""The streaming safetensors writer (``megatron_ext/hf/shards.py``): HF's shard plan, files that
safetensors' own reader loads bit-exactly, and refusal of tensors out of plan."""
from __future__ import annotations

import json

import pytest
import torch


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"a": torch.randn(100, 50, generator=g).bfloat16(),
            "big": torch.randn(400, 50, generator=g).bfloat16(),  # over the limit: a file of its own
            "b": torch.randn(100, 50, generator=g).bfloat16(),
            "c": torch.randn(60, 50, generator=g).bfloat16(), "norm": torch.randn(50, generator=g).bfloat16()}


def test_shards_follow_hf_plan_and_read_back_bit_exact(tmp_path):
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors import safe_open
    from safetensors.torch import load_file

    from megatron_ext.hf.shards import INDEX_FILE, ShardWriter, plan_shards

    tensors = _tensors()
    plan = plan_shards({k: tuple(v.shape) for k, v in tensors.items()}, torch.bfloat16, "20KB")
    expected = split_torch_state_dict_into_shards(tensors, max_shard_size="20KB")  # what save_pretrained does
    assert plan.files == {f: list(n) for f, n in expected.filename_to_tensors.items()}
    assert list(plan.files.values())[:2] == [["big"], ["a", "b"]]
    with ShardWriter(tmp_path, plan) as writer:
        for name, tensor in tensors.items():  # "big" (file 1) is written between a and b (file 2)
            writer.write(name, tensor)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert index["metadata"]["total_size"] == expected.metadata["total_size"]
    assert index["weight_map"] == expected.tensor_to_filename
    back = {}
    for name in plan.files:
        back.update(load_file(str(tmp_path / name)))
        with safe_open(str(tmp_path / name), "pt") as f:
            assert f.metadata() == {"format": "pt"}
    assert back.keys() == tensors.keys()
    assert all(torch.equal(back[k], v) and back[k].dtype == torch.bfloat16 for k, v in tensors.items())


def test_one_file_needs_no_index(tmp_path):
    from safetensors.torch import load_file

    from megatron_ext.hf.shards import INDEX_FILE, ShardWriter, plan_shards

    tensors = {k: v.float() for k, v in _tensors().items()}
    with ShardWriter(tmp_path, plan_shards({k: tuple(v.shape) for k, v in tensors.items()}, torch.float32,
                                           "5GB")) as writer:
        for name, tensor in tensors.items():
            writer.write(name, tensor)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"] and not (tmp_path / INDEX_FILE).exists()
    back = load_file(str(tmp_path / "model.safetensors"))
    assert all(torch.equal(back[k], v) for k, v in tensors.items())


def test_writer_refuses_what_the_plan_does_not_say(tmp_path):
    from megatron_ext.hf.mapping import MappingError
    from megatron_ext.hf.shards import ShardWriter, plan_shards

    tensors = _tensors()
    plan = plan_shards({k: tuple(v.shape) for k, v in tensors.items()}, torch.bfloat16, "5GB")
    writer = ShardWriter(tmp_path, plan)
    with pytest.raises(MappingError, match="expected a next"):
        writer.write("b", tensors["b"])
    with pytest.raises(MappingError, match="planned"):
        writer.write("a", tensors["a"].float())
    writer.write("a", tensors["a"])
    with pytest.raises(MappingError, match="never written"):
        writer.close()


def test_reader_reads_what_safetensors_writes(tmp_path):
    from safetensors.torch import save_file

    from megatron_ext.hf.shards import read_header, read_tensor

    tensors = {**_tensors(), "f32": torch.arange(12, dtype=torch.float32).reshape(3, 4),
               "empty": torch.zeros(0, 5, dtype=torch.float16)}
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"format": "pt"})
    start, header = read_header(tmp_path / "m.safetensors")
    assert header.keys() == tensors.keys()
    for name, tensor in tensors.items():
        back = read_tensor(tmp_path / "m.safetensors", start, header[name])
        assert back.dtype == tensor.dtype and torch.equal(back, tensor), name
