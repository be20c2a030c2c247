"""The HF architecture registry: lookup by model_type, a clear refusal for unregistered types, and
the Llama record's config conversion both ways (pure Python: no Megatron, no model)."""
from __future__ import annotations

import pytest

from megatron_ext.hf import ConvertError, get_architecture
from megatron_ext.hf.mapping import TRANSFORMS, Geometry
from megatron_ext.hf.registry import registered
from recipes import ModelConfig, get_recipe


def test_llama_is_registered_and_unknown_types_are_refused():
    assert "llama" in registered()
    arch = get_architecture("llama")
    assert arch.architectures == ("LlamaForCausalLM",)
    with pytest.raises(ConvertError, match="model_type 'mistral'.*'llama'"):
        get_architecture("mistral")


@pytest.mark.parametrize("recipe", ["tiny", "tiny_mini", "midm_mini", "midm_base"])
def test_config_round_trips_through_the_record(recipe):
    arch = get_architecture("llama")
    model = get_recipe(recipe).model
    config = arch.to_hf_config(model, vocab_size=model.vocab_size, dtype="bf16")
    assert list(config) == list(arch.config_fields)
    back = ModelConfig(**{**arch.from_hf_config(config), "vocab_size": model.vocab_size})
    assert back == model
    assert config["bos_token_id"] == arch.special_tokens.bos_id == 0
    assert config["eos_token_id"] == arch.special_tokens.eos_id == 2


def test_every_transform_is_an_exact_inverse_pair():
    import torch

    g = Geometry(num_layers=1, hidden_size=8, ffn_hidden_size=12, num_attention_heads=4, num_query_groups=2,
                 head_dim=4, padded_vocab_size=16, hf_vocab_size=10, tie_embeddings=False)
    shapes = {"identity": (8, 8), "qkv": (2 * (2 + 2) * 4, 8), "fc1": (24, 8), "vocab": (16, 8)}
    for name, transform in TRANSFORMS.items():
        tensor = torch.randn(shapes[name])
        if name == "vocab":
            tensor[10:] = 0  # padding rows are zeros by construction
        back = transform.fuse(list(transform.split(tensor, g)), g)
        assert torch.equal(back, tensor), name


def test_geometry_is_one_method_on_the_model_config():
    base, mini = get_recipe("midm_base").model, get_recipe("midm_mini").model
    assert set(base.geometry()) == set(ModelConfig.GEOMETRY)
    diff = mini.geometry_diff(base)
    assert diff == {"hidden_size": (1792, 4096), "ffn_hidden_size": (4608, 14336), "tie_embeddings": (True, False)}
    assert base.geometry_diff(get_recipe("midm_base_long").model) == {}
