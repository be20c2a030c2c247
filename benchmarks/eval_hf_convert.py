"""HF ↔ Megatron conversion at a size where time and memory mean something.

Builds a random ``LlamaForCausalLM`` with Mini's head layout scaled down (head_dim × heads ≠ hidden,
tied embeddings, GQA 4:1, padded vocab) — by default ~0.2B parameters — then times
``from-hf`` (HF → Megatron dist-checkpoint) and ``to-hf`` (back, sharded safetensors), checks the
round trip is bit-exact and compares Megatron's and transformers' fp32 logits. Prints one JSON line.

    python benchmarks/eval_hf_convert.py [--layers 8] [--hidden 1280] [--vocab 32000]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=1280)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=3584)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--padded-vocab", type=int, default=32128)
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from megatron_ext import hf_convert, hf_import, loading

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.groups, head_dim=args.head_dim, max_position_embeddings=4096,
                         rope_theta=8_000_000.0, rms_norm_eps=1e-5, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.normal_(1.0, 0.1)
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.save_pretrained(tmp / "hf")
        t0 = time.time()
        hf_import.from_hf(tmp / "hf", tmp / "ckpt", padded_vocab_size=args.padded_vocab)
        t1 = time.time()
        hf_convert.to_hf(tmp / "ckpt", tmp / "hf_back", dtype="fp32", vocab_size=args.vocab, max_shard_size="200MB")
        t2 = time.time()
        original = load_file(str(next((tmp / "hf").glob("*.safetensors"))))
        back: dict = {}
        for f in (tmp / "hf_back").glob("*.safetensors"):
            back.update(load_file(str(f)))
        exact = back.keys() == original.keys() and all(torch.equal(back[k], original[k]) for k in original)
        tokens = torch.randint(0, args.vocab, (1, 64))
        meg, _ = loading.load_model(tmp / "ckpt", dtype="fp32", use_te=None)
        with torch.no_grad():
            meg_logits = meg(tokens, torch.arange(64).unsqueeze(0), attention_mask=None)[..., : args.vocab]
            hf_logits = model(tokens).logits
        shards = len(list((tmp / "hf_back").glob("*.safetensors")))
    from megatron_ext import parallel

    parallel.destroy()
    print(json.dumps({
        "benchmark": "eval_hf_convert", "parameters": params, "layers": args.layers, "hidden": args.hidden,
        "heads_x_head_dim": args.heads * args.head_dim, "tied": True,
        "from_hf_s": round(t1 - t0, 2), "to_hf_s": round(t2 - t1, 2), "round_trip_bit_exact": exact,
        "max_abs_logit_diff_fp32": float((meg_logits - hf_logits).abs().max()), "to_hf_shards": shards,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":  # dist-checkpointing's writer processes need the guard
    main()
