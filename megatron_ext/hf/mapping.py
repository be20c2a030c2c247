"""The mapping engine: HF ↔ Megatron-Core GPT state dicts from a declarative table of rules.

Pure tensor logic, no Megatron, no architecture: each HF architecture (``hf/llama.py`` …) supplies
its table of :class:`Rule` s (HF name(s), Megatron name, transform) and this module applies it in
either direction. Every transform is one (split, fuse) pair in :data:`TRANSFORMS`, so the two
directions can never disagree about a tensor. The transforms are where conversion tools
usually go wrong silently, so each is small and exact (no arithmetic on values, only slicing,
concatenation and zero-padding — a round trip is bit-exact; tensors that need no transform are
passed through without a copy, which keeps an 11.5B export within one copy of the weights):

* ``qkv``: Megatron fuses Q, K and V per query group, ``[g0: q…q k v | g1: q…q k v | …]`` with
  ``heads/groups`` query heads of ``head_dim`` rows each; HF keeps three matrices. ``head_dim`` is
  taken from the geometry, never from ``hidden/heads`` (Mini: 32 × 128 ≠ 1792).
* ``fc1``: SwiGLU's gate and up projections, concatenated ``[gate; up]`` in Megatron.
* ``vocab``: Megatron pads the vocabulary (rows beyond the tokenizer); HF may keep the padded
  rows (the released Mi:dm 2.0 does: 131,392) or drop them; restoring pads with zeros.
* tied embeddings: no ``lm_head.weight`` / ``output_layer.weight`` tensor at all.

Rotary embeddings need no permutation: Megatron (``rotary_interleaved=False``) and HF Llama both
rotate halves. Megatron names exist in two spellings — Transformer Engine fuses the norms into
the next linear (``linear_qkv.layer_norm_weight``), the local spec keeps ``input_layernorm`` — and
both are read; which one is written is the caller's choice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from midm.errors import MidmError

LAYER = "{L}"


class MappingError(MidmError, ValueError):
    """Tensors that do not fit the geometry or the table; conversion refuses rather than guesses."""


@dataclass(frozen=True)
class Geometry:
    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    head_dim: int
    padded_vocab_size: int   # rows in Megatron's embedding / output layer
    hf_vocab_size: int       # rows in the HF checkpoint (== padded, or the unpadded vocabulary)
    tie_embeddings: bool

    def __post_init__(self) -> None:
        if self.num_attention_heads % self.num_query_groups:
            raise MappingError(f"{self.num_attention_heads} heads are not divisible into "
                             f"{self.num_query_groups} query groups")
        if self.hf_vocab_size > self.padded_vocab_size:
            raise MappingError(f"HF vocab {self.hf_vocab_size} is larger than the padded vocab "
                             f"{self.padded_vocab_size}")

    @property
    def heads_per_group(self) -> int:
        return self.num_attention_heads // self.num_query_groups


@dataclass(frozen=True)
class Rule:
    hf: tuple[str, ...]          # one name, or the parts a fused Megatron tensor is split into
    megatron: str                # canonical (Transformer Engine) name
    transform: str = "identity"  # identity | qkv | fc1 | vocab
    local_alias: str | None = None  # name under Megatron's local (non-TE) layer spec
    untied_only: bool = False    # only present when embeddings are not tied
    per_layer: bool = False


# ---------------------------------------------------------------- transforms (exact, shape-checked)

def qkv_split(fused: torch.Tensor, g: Geometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    qpg, d = g.heads_per_group, g.head_dim
    expected = (g.num_query_groups * (qpg + 2) * d, g.hidden_size)
    _check(fused, expected, "linear_qkv")
    grouped = fused.reshape(g.num_query_groups, qpg + 2, d, g.hidden_size)
    q = grouped[:, :qpg].reshape(g.num_attention_heads * d, g.hidden_size)
    k = grouped[:, qpg].reshape(g.num_query_groups * d, g.hidden_size)
    v = grouped[:, qpg + 1].reshape(g.num_query_groups * d, g.hidden_size)
    return q.clone(), k.clone(), v.clone()


def qkv_fuse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: Geometry) -> torch.Tensor:
    qpg, d, ng, h = g.heads_per_group, g.head_dim, g.num_query_groups, g.hidden_size
    _check(q, (g.num_attention_heads * d, h), "q_proj")
    _check(k, (ng * d, h), "k_proj")
    _check(v, (ng * d, h), "v_proj")
    fused = torch.cat([q.reshape(ng, qpg, d, h), k.reshape(ng, 1, d, h), v.reshape(ng, 1, d, h)], dim=1)
    return fused.reshape(ng * (qpg + 2) * d, h).contiguous()


def fc1_split(fused: torch.Tensor, g: Geometry) -> tuple[torch.Tensor, torch.Tensor]:
    _check(fused, (2 * g.ffn_hidden_size, g.hidden_size), "linear_fc1")
    gate, up = fused.split(g.ffn_hidden_size, dim=0)
    return gate.clone(), up.clone()


def fc1_fuse(gate: torch.Tensor, up: torch.Tensor, g: Geometry) -> torch.Tensor:
    _check(gate, (g.ffn_hidden_size, g.hidden_size), "gate_proj")
    _check(up, (g.ffn_hidden_size, g.hidden_size), "up_proj")
    return torch.cat([gate, up], dim=0).contiguous()


def vocab_unpad(weight: torch.Tensor, g: Geometry) -> torch.Tensor:
    _check(weight, (g.padded_vocab_size, g.hidden_size), "embedding/output")
    if g.padded_vocab_size == g.hf_vocab_size:
        return weight
    return weight[: g.hf_vocab_size].clone()  # a copy: safetensors must not see a view of a larger storage


def vocab_pad(weight: torch.Tensor, g: Geometry) -> torch.Tensor:
    _check(weight, (g.hf_vocab_size, g.hidden_size), "embed_tokens/lm_head")
    if g.padded_vocab_size == g.hf_vocab_size:
        return weight
    pad = weight.new_zeros(g.padded_vocab_size - g.hf_vocab_size, g.hidden_size)
    return torch.cat([weight, pad], dim=0)


def _check(t: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(t.shape) != tuple(shape):
        raise MappingError(f"{what}: shape {tuple(t.shape)} does not match the geometry's {tuple(shape)}")


@dataclass(frozen=True)
class Transform:
    """Megatron tensor → HF parts (``split``) and back (``fuse``); exact inverses of each other."""

    split: Callable[[torch.Tensor, Geometry], tuple[torch.Tensor, ...]]
    fuse: Callable[[list[torch.Tensor], Geometry], torch.Tensor]


TRANSFORMS: dict[str, Transform] = {
    # no copy: the output only ever holds one tensor per storage (splits are copies)
    "identity": Transform(lambda t, g: (t,), lambda parts, g: parts[0]),
    "qkv": Transform(qkv_split, lambda parts, g: qkv_fuse(*parts, g)),
    "fc1": Transform(fc1_split, lambda parts, g: fc1_fuse(*parts, g)),
    "vocab": Transform(lambda t, g: (vocab_unpad(t, g),), lambda parts, g: vocab_pad(parts[0], g)),
}


# ---------------------------------------------------------------- entries: one tensor pair each

@dataclass(frozen=True)
class Entry:
    """One Megatron tensor and its HF part(s), for one layer (``layer`` None: outside the decoder stack)."""

    rule: Rule
    layer: int | None
    hf: tuple[str, ...]
    megatron: str             # canonical (TE) name
    alias: str | None         # the local-spec name, if it differs

    def split(self, tensor: torch.Tensor, g: Geometry) -> dict[str, torch.Tensor]:
        """Megatron tensor → ``{hf name: tensor}`` (exact; shape-checked against ``g``)."""
        return dict(zip(self.hf, TRANSFORMS[self.rule.transform].split(tensor, g)))

    def fuse(self, parts: list[torch.Tensor], g: Geometry) -> torch.Tensor:
        """HF parts (in ``hf`` order) → the Megatron tensor."""
        return TRANSFORMS[self.rule.transform].fuse(parts, g)

    def hf_shapes(self, megatron_shape: tuple[int, ...], g: Geometry) -> dict[str, tuple[int, ...]]:
        """The HF parts' shapes for a Megatron tensor of ``megatron_shape``, computed without data."""
        return {k: tuple(v.shape) for k, v in self.split(torch.empty(megatron_shape, device="meta"), g).items()}


def _rules(rules: tuple[Rule, ...], g: Geometry) -> list[Rule]:
    return [r for r in rules if not (r.untied_only and g.tie_embeddings)]


def entries(rules: tuple[Rule, ...], g: Geometry) -> list[Entry]:
    """Every tensor pair of ``rules`` for geometry ``g``, in checkpoint order: the table's rules before the
    first per-layer rule, then layer by layer (each layer's rules in table order), then the rest — the
    order a streaming converter reads and writes them (and ``transformers``' own layer-major order)."""
    active = _rules(rules, g)
    first = next((i for i, r in enumerate(active) if r.per_layer), len(active))
    head = [r for r in active[:first] if not r.per_layer]
    tail = [r for r in active[first:] if not r.per_layer]
    layered = [r for r in active if r.per_layer]

    def entry(rule: Rule, layer: int | None) -> Entry:
        fill = (lambda s: s.replace(LAYER, str(layer))) if layer is not None else (lambda s: s)
        return Entry(rule, layer, tuple(fill(n) for n in rule.hf), fill(rule.megatron),
                     fill(rule.local_alias) if rule.local_alias else None)

    return ([entry(r, None) for r in head] + [entry(r, layer) for layer in range(g.num_layers) for r in layered]
            + [entry(r, None) for r in tail])


# ---------------------------------------------------------------- whole state dicts

def megatron_to_hf(state: Mapping[str, torch.Tensor], g: Geometry, rules: tuple[Rule, ...]) -> dict[str, torch.Tensor]:
    """Full (unsharded) Megatron GPT state dict, either norm naming → HF state dict, by ``rules``.

    Raises:
        MappingError: a tensor the rules need is missing or mis-shaped, or a tensor is left unmapped.
    """
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for e in entries(rules, g):
        name = e.megatron if e.megatron in state else e.alias if e.alias and e.alias in state else None
        if name is None:
            raise MappingError(f"Megatron state dict has no {e.megatron!r}"
                               + (f" (nor {e.alias!r})" if e.alias else ""))
        used.add(name)
        out.update(e.split(state[name], g))
    _reject_unmapped(state, used, "Megatron")
    return out


def hf_to_megatron(state: Mapping[str, torch.Tensor], g: Geometry, rules: tuple[Rule, ...], *,
                   naming: str = "local") -> dict[str, torch.Tensor]:
    """HF state dict → full Megatron GPT state dict by ``rules`` (``naming``: "local" or "te" norm names).

    ``state`` may be any mapping, e.g. a lazy reader of safetensors files (``hf_files``): each HF
    tensor is looked up once, when its Megatron tensor is built, and not kept afterwards, so the
    result is the only copy (tensors that need no transform are passed through as they are).

    Raises:
        MappingError: a tensor is missing, mis-shaped or unmapped; tied weights that differ.
    """
    if naming not in ("local", "te"):
        raise ValueError("naming must be 'local' or 'te'")
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for e in entries(rules, g):
        missing = [n for n in e.hf if n not in state]
        if missing:
            raise MappingError(f"HF state dict has no {missing}")
        used.update(e.hf)
        out[e.alias if naming == "local" and e.alias else e.megatron] = e.fuse([state[n] for n in e.hf], g)
    tied_hf = [r for r in rules if r.untied_only]
    if g.tie_embeddings:
        for rule in tied_hf:  # a tied HF model may still carry its (identical) output matrix
            for name in rule.hf:
                if name in state:
                    twin = next(r.hf[0] for r in rules if r.megatron == "embedding.word_embeddings.weight")
                    if not torch.equal(state[name], state[twin]):
                        raise MappingError(f"tie_embeddings is set but {name} differs from {twin}")
                    used.add(name)
    _reject_unmapped(state, used, "HF")
    return out


def _reject_unmapped(state: dict, used: set[str], side: str) -> None:
    # TE keeps per-module FP8 metadata in "_extra_state"; it carries no weights.
    left = sorted(k for k in state if k not in used and not k.endswith("_extra_state")
                  and not k.endswith("rotary_pos_emb.inv_freq"))
    if left:
        raise MappingError(f"{side} tensors not covered by the mapping (refusing to drop them): {left[:8]}"
                           + (" …" if len(left) > 8 else ""))
