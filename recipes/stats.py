"""Parameter and FLOP counts derived from a model's geometry (no torch needed).

These are what `midm recipe show` prints and what the throughput benchmark divides by; they are
tested against the published sizes (8B parent, 11.5B Base, 2.3B Mini) and against the number of
elements in a built Megatron model.
"""
from __future__ import annotations

from recipes.config import ModelConfig


def layer_parameters(m: ModelConfig) -> int:
    q_width = m.num_attention_heads * m.kv_channels
    kv_width = m.num_query_groups * m.kv_channels
    attention = m.hidden_size * (q_width + 2 * kv_width) + q_width * m.hidden_size
    mlp = 3 * m.hidden_size * m.ffn_hidden_size  # SwiGLU: gate, up, down
    norms = 2 * m.hidden_size
    return attention + mlp + norms


def num_parameters(m: ModelConfig) -> int:
    embeddings = m.vocab_size * m.hidden_size * (1 if m.tie_embeddings else 2)
    return m.num_layers * layer_parameters(m) + embeddings + m.hidden_size  # + final norm


def flops_per_token(m: ModelConfig, seq_length: int, training: bool = True) -> int:
    """Model FLOPs per token (matmuls only, full attention score matrix as Megatron counts it).

    forward = 2 × (matmul weights incl. the output layer) + 4 × layers × seq × heads × head_dim;
    training = 3 × forward (backward is twice the forward). Norms and activations are ignored.
    """
    q_width = m.num_attention_heads * m.kv_channels
    matmul_weights = m.num_layers * (layer_parameters(m) - 2 * m.hidden_size) + m.vocab_size * m.hidden_size
    forward = 2 * matmul_weights + 4 * m.num_layers * seq_length * q_width
    return 3 * forward if training else forward
