"""``midm convert`` — Megatron distributed checkpoints ↔ Hugging Face (``LlamaForCausalLM``).

    midm convert to-hf   --checkpoint CKPT --output HF_DIR [--tokenizer DIR] [--dtype bf16] [--trim-vocab]
                         [--max-shard-size 5GB] [--overwrite] [--allow-tokenizer-mismatch]
    midm convert from-hf --hf HF_DIR --output CKPT [--recipe NAME] [--set KEY=VALUE …] [--overwrite]
    midm convert reshard --checkpoint CKPT --output CKPT2 --tp N --pp M [--overwrite]   (under torchrun, N×M ranks)

Checkpoints are read whatever TP/PP they were saved with. Weights keep the dtype they are stored
in (bf16 stays bf16) unless ``--dtype`` says otherwise. ``to-hf`` refuses a non-empty ``--output``
unless ``--overwrite`` (the new model replaces the old one only once it is complete) and a
``--tokenizer`` whose vocabulary is not the model's — by size, or by the fingerprint the checkpoint
records (``--allow-tokenizer-mismatch`` to export anyway) —, all before reading any weight. ``from-hf``
and ``reshard`` likewise refuse an ``--output`` that already holds a checkpoint (a training run's
``latest`` would point at the new weights) unless ``--overwrite``, which replaces the whole
directory once the new checkpoint is complete.

Host memory (measured on random bf16 models of Mi:dm geometry, extrapolated; see
``benchmarks/checkpoint_memory.py``): ``to-hf`` streams — ≈ 3 GiB for the 11.5B Base at any depth,
≈ 2 GiB for Mini; ``from-hf`` holds the weights once — ≈ 1.0 × the bf16 model + 1 GiB (≈ 23 GiB
for Base, 6 GiB for Mini), dist-checkpointing's save transient included. The logic is
``hf_convert.py``; each HF architecture is one registered record in ``megatron_ext/hf/``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from recipes.args import add_set_arg

DTYPE_CHOICES = ("bf16", "fp16", "fp32")
OVERWRITE_HELP = ("replace the checkpoint already in --output, whole, once the new one is complete (default: refuse "
                  "an --output that holds a checkpoint)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="midm convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("to-hf", help="Megatron dist-checkpoint (any TP/PP) → HF LlamaForCausalLM safetensors",
                       description="Write a Hugging Face LlamaForCausalLM directory (config.json, safetensors "
                                   "shards, optionally the tokenizer) from a Megatron distributed checkpoint of any "
                                   "TP/PP layout. Streams the weights: ≈ 3 GiB of host memory for the 11.5B Base.")
    a.add_argument("--checkpoint", required=True, type=Path, help="checkpoint root (follows `latest`) or iter_* dir")
    a.add_argument("--output", required=True, type=Path, help="HF model directory to write")
    a.add_argument("--tokenizer", type=Path, default=None, help="HF tokenizer directory to export with the model")
    a.add_argument("--dtype", choices=DTYPE_CHOICES, default=None,
                   help="weights dtype (default: the dtype the checkpoint stores its weights in)")
    a.add_argument("--trim-vocab", action="store_true",
                   help="drop Megatron's vocabulary padding (HF vocab = len(tokenizer)); default keeps the padded "
                        "rows, as the released Mi:dm 2.0 does")
    a.add_argument("--vocab-size", type=int, default=None, help="explicit HF vocab size (≤ padded size)")
    a.add_argument("--max-shard-size", default="5GB", help="safetensors shard size (e.g. 5GB, 500MB)")
    a.add_argument("--overwrite", action="store_true",
                   help="replace the model already in --output (default: refuse a non-empty --output)")
    a.add_argument("--allow-tokenizer-mismatch", action="store_true",
                   help="export although --tokenizer's fingerprint is not the one the checkpoint records (default: "
                        "refuse; a tokenizer of the same size but other pieces would ship garbage ids)")
    b = sub.add_parser("from-hf", help="HF LlamaForCausalLM (safetensors) → Megatron dist-checkpoint (TP=PP=1)",
                       description="Write a Megatron distributed checkpoint (TP=PP=1, iter_0000000 + latest, with "
                                   "the recipe) from a Hugging Face LlamaForCausalLM directory; `midm train` and "
                                   "`midm convert reshard` read it under any layout. Holds the weights once: "
                                   "≈ 1.0 × the bf16 model + 1 GiB.")
    b.add_argument("--hf", required=True, type=Path, help="HF model directory")
    b.add_argument("--output", required=True, type=Path, help="checkpoint root to write (iter_0000000 + latest)")
    b.add_argument("--recipe", default=None, help="recipe for the non-model settings (default: the one whose "
                                                  "geometry matches, else tiny)")
    add_set_arg(b, "override a field of the recipe written with the checkpoint (repeatable)")
    b.add_argument("--padded-vocab-size", type=int, default=None,
                   help="Megatron vocab rows (default: the padded size `midm convert to-hf` recorded in "
                        "midm_conversion.json, else the matching recipe's when it fits, else the HF vocab)")
    b.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    c = sub.add_parser("reshard", help="re-save a checkpoint under another TP×PP layout (run under torchrun)",
                       description="Load CKPT (any layout) and save it again as CKPT2 under tensor-parallel size "
                                   "--tp and pipeline-parallel size --pp. Run it with tp × pp processes, e.g. "
                                   "`torchrun --nproc_per_node 4 -m midm convert reshard --checkpoint CKPT "
                                   "--output CKPT2 --tp 2 --pp 2`.")
    c.add_argument("--checkpoint", required=True, type=Path, metavar="CKPT",
                   help="checkpoint root (follows `latest`) or iter_* dir")
    c.add_argument("--output", required=True, type=Path, metavar="CKPT2",
                   help="checkpoint root to write (iter_* + latest)")
    c.add_argument("--tp", type=int, default=1, help="tensor-parallel size of the new checkpoint (default 1)")
    c.add_argument("--pp", type=int, default=1, help="pipeline-parallel size of the new checkpoint (default 1)")
    c.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from megatron_ext.hf_convert import _rank, reshard, to_hf
    from megatron_ext.hf_import import from_hf

    try:
        if args.command == "to-hf":
            summary = to_hf(args.checkpoint, args.output, tokenizer_dir=args.tokenizer, dtype=args.dtype,
                            trim_vocab=args.trim_vocab, vocab_size=args.vocab_size, max_shard_size=args.max_shard_size,
                            overwrite=args.overwrite, allow_tokenizer_mismatch=args.allow_tokenizer_mismatch)
        elif args.command == "from-hf":
            summary = from_hf(args.hf, args.output, recipe_name=args.recipe, overrides=args.overrides,
                              padded_vocab_size=args.padded_vocab_size, overwrite=args.overwrite)
        else:
            from megatron_ext.parallel import require_processes

            launch = shlex.join(["torchrun", "--nproc_per_node", str(args.tp * args.pp), "-m", "midm", "convert",
                                 "reshard", "--checkpoint", str(args.checkpoint), "--output", str(args.output),
                                 "--tp", str(args.tp), "--pp", str(args.pp)] + (["--overwrite"] if args.overwrite else []))
            require_processes(args.tp, args.pp, launch)  # before anything is read or written
            summary = {"output": str(reshard(args.checkpoint, args.output, args.tp, args.pp, args.overwrite))}
        rank0 = _rank() == 0
    finally:
        if "megatron.core" in sys.modules:  # bad input fails before Megatron is ever imported
            from megatron_ext import parallel

            parallel.destroy()
    if rank0:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
