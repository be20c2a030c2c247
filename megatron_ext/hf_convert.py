"""``midm convert`` logic — Megatron distributed checkpoints ↔ Hugging Face models.

    midm convert to-hf   --checkpoint CKPT --output HF_DIR [--tokenizer DIR] [--dtype bf16] [--trim-vocab]
                         [--max-shard-size 5GB] [--overwrite]
    midm convert from-hf --hf HF_DIR --output CKPT [--recipe NAME] [--set KEY=VALUE …] [--overwrite]
    midm convert reshard --checkpoint CKPT --output CKPT2 --tp N --pp M [--overwrite]   (under torchrun, N×M ranks)

Checkpoints are read whatever TP/PP they were saved with (dist-checkpointing addresses every tensor
by global coordinates). No tool here builds a model in memory: ``to-hf`` reads the checkpoint a
few tensors at a time (one-layer slices of the stacked decoder tensors, ``ckpt_tensors``) and
appends them to safetensors shards planned in advance (``hf.shards``), so its peak is a fixed
≈ 3 GiB for Mi:dm Base at any depth; ``from-hf`` reads each HF tensor when the mapping needs it,
fuses and releases it, and saves the checkpoint from that one copy (≈ 1.0 × the bf16 weights +
1 GiB). Measured and extrapolated by ``benchmarks/checkpoint_memory.py``. Everything specific to an
HF architecture — its tensor table, its ``config.json`` both ways, its special tokens — is one record
in ``megatron_ext/hf/`` looked up by ``model_type`` (``llama`` today); the mapping engine applies
it in either direction; ``from-hf`` itself is :mod:`megatron_ext.hf_import`. The command line is ``commands/convert.py``. The HF side is written from our recipe (+ tokenizer)
alone — nothing upstream is downloaded — as sharded safetensors with an index, a ``config.json``
holding exactly the fields of the released Mi:dm 2.0 config, and ``generation_config.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from megatron_ext import tokenizer_check
from megatron_ext.hf.mapping import Geometry
from megatron_ext.hf.registry import HF_DTYPES, ConvertError, get_architecture

SUMMARY_FILE = "midm_conversion.json"
DEFAULT_ARCHITECTURE = "llama"  # what every Mi:dm recipe exports as (LlamaForCausalLM)
DTYPES = HF_DTYPES


def geometry(model_cfg, hf_vocab_size: int | None = None) -> Geometry:
    """The mapping engine's view of a recipe's ``ModelConfig`` (HF vocabulary may be trimmed)."""
    m = model_cfg
    return Geometry(num_layers=m.num_layers, hidden_size=m.hidden_size, ffn_hidden_size=m.ffn_hidden_size,
                    num_attention_heads=m.num_attention_heads, num_query_groups=m.num_query_groups,
                    head_dim=m.kv_channels, padded_vocab_size=m.vocab_size,
                    hf_vocab_size=hf_vocab_size or m.vocab_size, tie_embeddings=m.tie_embeddings)


def hf_config(model_cfg, *, vocab_size: int, dtype: str = "bf16", architecture: str = DEFAULT_ARCHITECTURE,
              **token_ids) -> dict[str, Any]:
    """``config.json`` for a recipe's model, by the architecture's record."""
    return get_architecture(architecture).to_hf_config(model_cfg, vocab_size=vocab_size, dtype=dtype, **token_ids)


# ---------------------------------------------------------------- Megatron side

def _rank() -> int:
    import torch

    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _barrier() -> None:
    import torch

    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def read_recipe(ckpt: Path):
    from megatron_ext import loading

    return loading.read_recipe(ckpt)


# Stored bytes read per dist_checkpointing.load call (a tensor larger than this is read alone): a
# Mini layer is 86 MB in bf16, a Base layer 436 MB. A call costs ~3 ms beyond its I/O, so small
# groups cost no time; larger ones only add memory.
READ_GROUP_BYTES = 128 * 2**20


def _read_groups(entries: list, sizes: list[int], budget: int) -> list[list]:
    """Consecutive runs of ``entries`` whose stored sizes add up to at most ``budget`` (≥ 1 entry each)."""
    groups: list[list] = [[]]
    total = 0
    for entry, size in zip(entries, sizes):
        if groups[-1] and total + size > budget:
            groups.append([])
            total = 0
        groups[-1].append(entry)
        total += size
    return [g for g in groups if g]


def stream_to_hf(iter_dir: Path, g: Geometry, rules: tuple, *, dtype: str, writer_dir: Path | None,
                 max_shard_size: str, read_bytes: int = READ_GROUP_BYTES) -> dict[str, int]:
    """Convert a dist-checkpoint to HF safetensors a few tensors at a time; returns ``{"tensors", "parameters"}``.

    Nothing but the checkpoint's metadata is read until the whole plan — every tensor's key, HF
    name(s), shape and shard file — has been checked against the geometry. Then groups of about
    ``read_bytes`` stored bytes are read (one ``dist_checkpointing.load`` each, one-layer slices of the
    stacked decoder tensors), split by the architecture's rules, cast to ``dtype`` and appended to
    their shard files (``hf.shards``). Peak memory: one group plus its converted copies, independent
    of depth. ``writer_dir`` None reads without writing (the other ranks of a launched job).

    Raises:
        MappingError / ConvertError: a tensor missing, unmapped, or of another shape than the geometry's.
    """
    from megatron_ext import ckpt_tensors
    from megatron_ext.hf.mapping import MappingError, entries
    from megatron_ext.hf.shards import ShardWriter, plan_shards
    from megatron_ext.model import torch_dtype

    stored = ckpt_tensors.model_tensors(iter_dir)
    todo = entries(rules, g)
    keys = [ckpt_tensors.layer_key(e.megatron) for e in todo]
    shapes: dict[str, tuple[int, ...]] = {}
    sizes = []
    for e, (key, layer) in zip(todo, keys):
        if key not in stored:
            raise MappingError(f"{iter_dir} holds no tensor {key!r} (needed for {', '.join(e.hf)})")
        shape = stored[key].shape
        if layer is not None:
            if shape[0] != g.num_layers:
                raise MappingError(f"{key}: the checkpoint stacks {shape[0]} layers, its recipe says {g.num_layers}")
            shape = shape[1:]
        shapes.update(e.hf_shapes(shape, g))
        size = stored[key].dtype.itemsize
        for d in shape:
            size *= d
        sizes.append(size)
    left = sorted(k for k in stored if k not in {key for key, _ in keys} and not k.endswith("_extra_state"))
    if left:
        raise MappingError(f"checkpoint tensors not covered by the mapping (refusing to drop them): {left[:8]}")
    out_dtype = torch_dtype(dtype)
    plan = plan_shards(shapes, out_dtype, max_shard_size)
    writer = ShardWriter(writer_dir, plan) if writer_dir is not None else None
    count = params = 0
    for group in _read_groups(list(zip(todo, keys)), sizes, read_bytes):
        tensors = ckpt_tensors.read(iter_dir, {e.megatron: key for e, key in group}, stored)
        for e, _ in group:
            for name, part in e.split(tensors.pop(e.megatron), g).items():
                count, params = count + 1, params + part.numel()
                if writer is not None:
                    writer.write(name, part.to(out_dtype))
        del tensors
    if writer is not None:
        writer.close()
    return {"tensors": count, "parameters": params}


# ---------------------------------------------------------------- HF side

def write_hf(out: Path, tensors: dict | None, config: dict, *, tokenizer_dir: Path | None, max_shard_size: str,
             eos_ids: list[int], pad_id: int | None) -> None:
    """``config.json``, ``generation_config.json`` and the tokenizer into ``out``; the weights too when
    ``tensors`` is given (None: :func:`stream_to_hf` has written them already)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if tensors is not None:
        from megatron_ext.hf.shards import ShardWriter, plan_shards

        dtype = getattr(torch, config["torch_dtype"])
        with ShardWriter(out, plan_shards({k: tuple(v.shape) for k, v in tensors.items()}, dtype,
                                          max_shard_size)) as writer:
            for name, tensor in tensors.items():
                writer.write(name, tensor.to(dtype))
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    generation = {"bos_token_id": config["bos_token_id"],
                  "eos_token_id": eos_ids[0] if len(eos_ids) == 1 else eos_ids}
    if pad_id is not None:
        generation["pad_token_id"] = pad_id
    (out / "generation_config.json").write_text(json.dumps(generation, indent=1) + "\n")
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        from tokenizer.hf import CHAT_TEMPLATE

        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if tok.chat_template is None and "<|start_header_id|>" in tok.get_vocab():
            tok.chat_template = CHAT_TEMPLATE  # Mi:dm's template: chat turns end at <|eot_id|>, a generation eos
        tok.save_pretrained(str(out))


def _tokenizer_ids(tokenizer_dir: Path | None, architecture: str = DEFAULT_ARCHITECTURE
                   ) -> tuple[int, list[int], int | None, int | None]:
    """(bos, eos ids for generation, pad, len(tokenizer)) — the architecture's ids when no tokenizer is given.

    Raises:
        ConvertError: ``tokenizer_dir`` is missing, not a tokenizer directory, or unloadable.
    """
    facts = get_architecture(architecture).special_tokens
    if tokenizer_dir is None:
        return facts.bos_id, [facts.eos_id], None, None
    from transformers import AutoTokenizer

    from megatron_ext.hf_files import check_tokenizer_dir

    local = check_tokenizer_dir(tokenizer_dir)
    try:  # local files only: a directory that looks like a Hub id is never looked up there
        tok = AutoTokenizer.from_pretrained(str(local), local_files_only=True)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError … for a damaged directory
        reason = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:200]}"
        raise ConvertError(f"--tokenizer {tokenizer_dir}: transformers cannot load it as a tokenizer "
                           f"({reason})") from err
    bos = tok.bos_token_id if tok.bos_token_id is not None else facts.bos_id
    eos = [tok.eos_token_id if tok.eos_token_id is not None else facts.eos_id]
    eot = tok.convert_tokens_to_ids(facts.eot_token) if facts.eot_token in tok.get_vocab() else None
    if eot is not None and eot not in eos:
        eos.append(eot)
    return bos, eos, tok.pad_token_id, len(tok)


# ---------------------------------------------------------------- commands

def to_hf(ckpt: Path, out: Path, *, tokenizer_dir: Path | None = None, dtype: str | None = None,
          trim_vocab: bool = False, vocab_size: int | None = None, max_shard_size: str = "5GB",
          overwrite: bool = False, allow_tokenizer_mismatch: bool = False) -> dict:
    """Export a dist-checkpoint (any TP/PP) as an HF model directory, streaming (see :func:`stream_to_hf`).

    ``dtype`` None keeps the dtype the checkpoint stores its weights in. Every check — tokenizer ↔
    vocabulary, the tokenizer's fingerprint ↔ the one the checkpoint records (``tokenizer_check``;
    ``allow_tokenizer_mismatch`` skips it), the output directory, the tensor plan — runs before any
    weight is read. ``midm_conversion.json`` records the exported tokenizer's fingerprint (else the
    checkpoint's) as ``tokenizer_fingerprint``.

    Raises:
        ConvertError: a tokenizer that does not belong to the model, a non-empty ``out`` without
            ``overwrite``, a vocabulary size that does not fit.
        TokenizerMismatchError: ``tokenizer_dir`` is another tokenizer than the checkpoint records.
        CheckpointError: ``ckpt`` is not a readable checkpoint.
    """
    from megatron_ext import checkpoint as ckpt_mod
    from megatron_ext import ckpt_tensors, hf_files, parallel

    arch = get_architecture(DEFAULT_ARCHITECTURE)
    started = time.time()
    recipe = read_recipe(ckpt)
    bos, eos_ids, pad, tok_len = _tokenizer_ids(tokenizer_dir)  # before the checksums read every weight
    trained = tokenizer_check.of_checkpoint(ckpt)
    exported = tokenizer_check.of_directory(tokenizer_dir) if tokenizer_dir is not None else None
    tokenizer_check.require_same(
        exported, trained, made_says=f"--tokenizer {tokenizer_dir} is", used_says=f"checkpoint {ckpt} was trained with",
        fix="Export with the tokenizer the model was trained with", allow=allow_tokenizer_mismatch,
        allow_hint="--allow-tokenizer-mismatch")
    iter_dir = ckpt_mod.check(ckpt)  # whole, safe to unpickle, checksums verified
    m = recipe.model
    if trim_vocab and vocab_size is None:
        if tok_len is None:
            raise ConvertError("--trim-vocab needs --tokenizer (the unpadded size is len(tokenizer))")
        vocab_size = tok_len
    hf_vocab = vocab_size or m.vocab_size
    if hf_vocab > m.vocab_size:
        raise ConvertError(f"--vocab-size {hf_vocab} is larger than the model's {m.vocab_size} embedding rows")
    if tok_len is not None:
        hf_files.check_tokenizer_vocab(tokenizer_dir, tok_len, m.vocab_size, hf_vocab)
    if _rank() == 0:
        hf_files.check_output(out, overwrite=overwrite)
    dtype_from = "--dtype" if dtype else "checkpoint"
    dtype = dtype or ckpt_tensors.checkpoint_dtype(iter_dir)
    config = arch.to_hf_config(m, vocab_size=hf_vocab, dtype=dtype, bos_token_id=bos, eos_token_id=eos_ids[0])
    tmp = hf_files.prepare_output(out, overwrite=overwrite) if _rank() == 0 else None
    try:
        parallel.initialize(1, 1)  # under a launcher every rank reads (collectively); rank 0 writes
        counts = stream_to_hf(iter_dir, geometry(m, hf_vocab), arch.rules, dtype=dtype, writer_dir=tmp,
                              max_shard_size=max_shard_size)
        summary = {"direction": "to-hf", "source": str(ckpt), "output": str(out), "recipe": recipe.name,
                   "padded_vocab_size": m.vocab_size, "hf_vocab_size": hf_vocab, "dtype": DTYPES[dtype],
                   "dtype_from": dtype_from, **counts, "tokenizer": str(tokenizer_dir) if tokenizer_dir else None,
                   "tokenizer_fingerprint": (exported or trained).fingerprint if (exported or trained) else None,
                   "elapsed_s": round(time.time() - started, 2)}
        if tmp is not None:
            write_hf(tmp, None, config, tokenizer_dir=tokenizer_dir, max_shard_size=max_shard_size,
                     eos_ids=eos_ids, pad_id=pad)
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
            hf_files.publish(tmp, out)
    finally:
        if tmp is not None and tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    _barrier()
    return summary


def reshard(ckpt: Path, out: Path, tp: int, pp: int, overwrite: bool = False) -> Path:
    """Re-save a checkpoint under another TP×PP layout (collective: run under torchrun with tp×pp ranks).

    Each rank builds only its shard, without random initialisation, in the dtype the checkpoint
    stores its weights in. ``out`` may not hold a checkpoint already (every rank checks, before
    reading anything); with ``overwrite`` the new one replaces it once complete.

    Raises:
        OutputExistsError: ``out`` holds a checkpoint and ``overwrite`` is False.
    """
    from megatron_ext import checkpoint, checkpoint_output, ckpt_tensors, parallel
    from megatron_ext.model import build_model, torch_dtype, transformer_config
    from megatron_ext.tokenizer_check import carried

    checkpoint_output.check(out, overwrite=overwrite)
    recipe = checkpoint.read_recipe(ckpt)
    stored = torch_dtype(ckpt_tensors.checkpoint_dtype(ckpt))
    recipe.parallel.tensor_model_parallel_size, recipe.parallel.pipeline_model_parallel_size = tp, pp
    parallel.initialize(tp, pp)
    model = build_model(recipe=recipe, config=transformer_config(recipe=recipe, perform_initialization=False,
                                                                 params_dtype=stored))
    checkpoint.load_model_only(ckpt, model)
    with checkpoint_output.staged(out, overwrite=overwrite, writer=_rank() == 0) as root:
        saved = checkpoint.save(root, 0, model, None, None, recipe,
                                {"iteration": 0, "resharded_from": str(ckpt), **carried(ckpt)})
    _barrier()
    return Path(out) / saved.name
