"""Prove the GPU path on one GPU in two tiers and print one JSON line (run by ``benchmarks/gpu_check.sh``).

Tier (a), always: Megatron-Core with its *local* layer spec (no Transformer Engine needed) trains a reduced
``midm_mini`` — full width (hidden 1792, FFN 4608, 32 × 128 heads, 131,392 vocabulary), ``--layers`` layers —
in bf16 with Megatron DDP and the distributed optimizer for ``--steps`` steps on the committed real text
(UTF-8 bytes as token ids), saves a dist-checkpoint, converts it to Hugging Face (``midm convert to-hf``'s
code), loads it with ``transformers.LlamaForCausalLM`` and compares its logits with the trained model's,
and compares the peak allocated memory with the planner's estimate (``recipes/plan.py``, local spec).

Tier (b), when Transformer Engine imports: the same model on the TE spec in bf16 and in FP8 (tensorwise =
current scaling, and delayed scaling), the FP8/bf16 speed ratios, and TE-spec vs local-spec logits from the
same checkpoint (bf16; relative L2 error ≤ ``TE_LOCAL_TOLERANCE``).

SFT, in both tiers and with ``--cpu``: ``midm data sft`` packs the committed conversations into 256-token
samples with a 2,048-id chat tokenizer trained on the spot, and ``tiny_sft`` runs its steps with the real
``SFTTrainer`` (local spec on GPU; ``sft_packing`` in the JSON: conversations per sample, losses; skipped,
``ok`` null, where sentencepiece is not importable, as on a bare node fed only the wheels).

JSON: ``tier``, ``tokens_per_s``, ``tflops_per_device`` and ``mfu`` (model FLOPs, ``recipes.flops_per_token``,
against 989 TFLOP/s dense bf16 — H100 and H200 alike), ``peak_memory_gib`` / ``planned_memory_gib``, losses,
the HF and TE checks. ``--cpu`` runs tier (a) at tiny scale (``tiny_mini``, fp32) on a machine without a GPU:
the same code path, which is how the test suite covers it. Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EOD = 256  # byte tokens 0–255, end of document 256
PEAK_BF16_FLOPS = 989e12
HF_TOLERANCE = {"bf16": 3e-2, "fp32": 1e-4}  # relative L2 error of HF vs Megatron logits
TE_LOCAL_TOLERANCE = 3e-2  # bf16, TE spec vs local spec from the same weights


def write_corpus(workdir: Path) -> str:
    """The committed public-domain corpus (tests/data/corpus) as a Megatron prefix of UTF-8 byte ids."""
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = str(workdir / "corpus")
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.uint16)
    for path in sorted((REPO / "tests" / "data" / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            ids = list(json.loads(line)["text"].encode("utf-8")) + [EOD]
            builder.add_document(torch.tensor(ids, dtype=torch.int64), [len(ids)])
    builder.finalize(prefix + ".idx")
    return prefix


def base_overrides(args, prefix: str, run: str) -> tuple[str, list[str]]:
    """(recipe name, ``--set`` list) of the check model for this machine."""
    from recipes import cpu_overrides

    common = [f"data.blend={prefix}", "data.split=100,0,0", f"train.steps={args.steps}", "train.eval_interval=100000",
              f"checkpoint.save_interval={args.steps}", f"checkpoint.dir={args.workdir}/{run}/checkpoints",
              f"logging.dir={args.workdir}", f"logging.run_name={run}", "logging.tensorboard=false",
              "scheduler.warmup_steps=2", "data.num_workers=0"]
    if args.cpu:
        return "tiny_mini", cpu_overrides() + common + ["data.seq_length=128", "train.global_batch_size=8",
                                                        "train.micro_batch_size=2", "optimizer.lr=3e-3"]
    gpu = [f"model.num_layers={args.layers}", "parallel.context_parallel_size=1", "precision.dtype=bf16",
           "precision.fp8=none", "perf.transformer_impl=local", "perf.apply_rope_fusion=false",
           "perf.cross_entropy_fusion_impl=native", "data.seq_length=4096", "train.global_batch_size=16",
           "train.micro_batch_size=2", "optimizer.lr=3e-4"]
    return "midm_mini", gpu + common


def train(recipe, steps: int | None, warmup: int, save: bool, trainer_cls=None) -> dict:
    """Train ``recipe`` in this process with the real Trainer (or ``trainer_cls``, e.g. ``SFTTrainer``); time
    the steps after ``warmup``. ``steps`` None: the resolved recipe's ``train.steps``."""
    import torch

    from megatron_ext.trainer import Trainer
    from recipes import flops_per_token

    on_gpu = torch.cuda.is_available()
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = (trainer_cls or Trainer)(recipe, resume="none")
    steps = steps or trainer.recipe.train.steps
    stream = trainer.data_stream(trainer.train_batches, 0)
    losses = [trainer.train_step(stream)["loss"] for _ in range(warmup)]
    sync()
    start = time.perf_counter()
    losses += [trainer.train_step(stream)["loss"] for _ in range(steps - warmup)]
    sync()
    elapsed = time.perf_counter() - start
    r = trainer.recipe
    tokens_per_s = (steps - warmup) * r.train.global_batch_size * r.data.seq_length / elapsed
    tflops = tokens_per_s * flops_per_token(r.model, r.data.seq_length) / 1e12
    out = {"steps": steps, "tokens_per_s": tokens_per_s, "tflops_per_device": tflops if on_gpu else None,
           "mfu": tflops * 1e12 / PEAK_BF16_FLOPS if on_gpu else None, "loss_first": losses[0], "loss_last": losses[-1],
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None}
    if save:
        trainer.step, trainer.consumed_samples = steps, steps * r.train.global_batch_size
        started = time.perf_counter()
        trainer.save()
        out["checkpoint_seconds"] = time.perf_counter() - started
        out["checkpoint"] = str(trainer.ckpt_dir)
        out["reference_logits"] = logits_of(trainer.model[0], probe_tokens())
    trainer.close()
    return out


def probe_tokens(length: int = 64):
    """One fixed ``[1, length]`` sequence of byte ids from the corpus."""
    import torch

    line = (REPO / "tests" / "data" / "corpus" / "ko_statutes.jsonl").read_text(encoding="utf-8").splitlines()[0]
    return torch.tensor([list(json.loads(line)["text"].encode("utf-8"))[:length]])


def logits_of(model, tokens):
    """fp32 CPU logits ``[1, s, vocab]`` of a Megatron model (any wrapper) for ``tokens``."""
    import torch

    from megatron_ext.loading import device

    model.eval()
    tokens = tokens.to(device())
    positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
    with torch.no_grad():
        return model(tokens, positions, attention_mask=None).float().cpu()


def relative_error(a, b) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def hf_roundtrip(checkpoint: str, workdir: Path, reference, dtype: str) -> dict:
    """Checkpoint → HF safetensors → ``LlamaForCausalLM`` → logits vs the trained model's."""
    import torch
    from transformers import LlamaForCausalLM

    from megatron_ext import parallel
    from megatron_ext.hf_convert import to_hf
    from megatron_ext.loading import device

    started = time.perf_counter()
    out = workdir / "hf"
    to_hf(Path(checkpoint), out, dtype=dtype)
    parallel.destroy()
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    model = LlamaForCausalLM.from_pretrained(out, dtype=torch_dtype).to(device()).eval()
    with torch.no_grad():
        logits = model(probe_tokens().to(device())).logits.float().cpu()
    error = relative_error(logits, reference)
    return {"loaded": True, "relative_logit_error": error, "tolerance": HF_TOLERANCE[dtype],
            "ok": error <= HF_TOLERANCE[dtype], "seconds": time.perf_counter() - started}


def te_checks(args, name: str, overrides: list[str], checkpoint: str) -> dict:
    """Tier (b): TE spec bf16, FP8 tensorwise and delayed; TE vs local logits from one checkpoint."""
    from megatron_ext import parallel
    from megatron_ext.loading import load_model
    from recipes import get_recipe

    te = ["perf.transformer_impl=transformer_engine", "perf.apply_rope_fusion=true"]
    runs = {}
    for label, extra in (("bf16", []), ("fp8_tensorwise", ["precision.fp8=tensorwise"]),
                         ("fp8_delayed", ["precision.fp8=delayed"])):
        recipe = get_recipe(name, overrides + te + extra + [f"logging.run_name=te_{label}",
                                                             f"checkpoint.dir={args.workdir}/te_{label}"])
        runs[label] = train(recipe, args.te_steps, min(3, args.te_steps - 1), save=False)
    tokens = probe_tokens()
    logits = {}
    for spec, use_te in (("local", False), ("te", True)):
        model, _ = load_model(checkpoint, dtype="bf16", use_te=use_te)
        logits[spec] = logits_of(model, tokens)
        del model
        parallel.destroy()
    error = relative_error(logits["te"], logits["local"])
    bf16 = runs["bf16"]["tokens_per_s"]
    return {"runs": runs, "fp8_tensorwise_over_bf16": runs["fp8_tensorwise"]["tokens_per_s"] / bf16,
            "fp8_delayed_over_bf16": runs["fp8_delayed"]["tokens_per_s"] / bf16,
            "te_vs_local_relative_logit_error": error, "tolerance": TE_LOCAL_TOLERANCE,
            "ok": error <= TE_LOCAL_TOLERANCE}


def sft_packing(args) -> dict:
    """``midm data sft`` + ``midm sft`` at tiny scale on this device: a 2,048-id chat tokenizer trained on the
    committed sample, the committed conversations (tests/data/sft/chatbot.jsonl) packed into 256-token
    samples, then ``tiny_sft`` with the real ``SFTTrainer`` (packed attention kept inside each conversation,
    assistant-only loss) for its ``sft.epochs`` of steps from fresh weights. ``ok``: every conversation
    accounted for, more than one per sample, and the loss falls."""
    try:
        import sentencepiece  # noqa: F401  (the tokenizer trainer; not among the bare-node wheels)
    except ImportError:
        return {"ok": None, "skipped": "sentencepiece is not importable here; the SFT check trains its chat "
                                       "tokenizer with it (NGC containers and `pip install -e .` have it)"}
    from data_prep.sft.build import build
    from megatron_ext import parallel
    from megatron_ext.sft import SFTTrainer
    from recipes import cpu_overrides, get_recipe
    from tokenizer.config import TrainConfig
    from tokenizer.export import export
    from tokenizer.train import train as train_tokenizer

    started, data, tok = time.perf_counter(), REPO / "tests" / "data", args.workdir / "sft_tokenizer"
    train_tokenizer([str(data / "tokenizer" / "ko_train.jsonl.gz"), str(data / "tokenizer" / "en_train.txt")],
                    tok / "sp", TrainConfig(vocab_size=2048))
    export(tok / "sp", tok / "hf")
    stats = build([str(data / "sft" / "chatbot.jsonl")], args.workdir / "sft_data", str(tok / "hf"), seq_length=256)
    device = cpu_overrides() if args.cpu else ["perf.transformer_impl=local"]
    recipe = get_recipe("tiny_sft", device + [f"sft.dataset={args.workdir / 'sft_data'}",
                                              f"logging.dir={args.workdir}", "logging.tensorboard=false",
                                              f"checkpoint.dir={args.workdir}/sft/checkpoints"])
    run = train(recipe, None, 1, save=False, trainer_cls=SFTTrainer)
    parallel.destroy()
    train_split = stats["splits"]["train"]
    packed = train_split["conversations"] / train_split["samples"]
    return {"conversations": stats["kept"], "train_samples": train_split["samples"],
            "conversations_per_sample": packed, "fill": train_split["fill"], "accounted": stats["balanced"],
            "steps": run["steps"],
            "loss_first": run["loss_first"], "loss_last": run["loss_last"], "tokens_per_s": run["tokens_per_s"],
            "seconds": time.perf_counter() - started,
            "ok": stats["balanced"] and packed > 1 and run["loss_last"] < run["loss_first"]}


def planned_memory_gib(recipe) -> float:
    """The planner's per-GPU estimate for this one-GPU run, without the runtime reserve (GiB)."""
    from recipes.memory import GIB, layout_of, memory_per_gpu
    from recipes.plan import spec_of

    stage = max(memory_per_gpu(recipe, layout_of(recipe, 1), spec_of(recipe)), key=lambda s: s.total)
    return stage.total / GIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="tier (a) at tiny scale on CPU (what the tests run)")
    parser.add_argument("--steps", type=int, default=30, help="training steps of tier (a) (default 30)")
    parser.add_argument("--te-steps", type=int, default=10, help="training steps of each tier (b) run (default 10)")
    parser.add_argument("--layers", type=int, default=4, help="layers of the reduced midm_mini (default 4)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    parser.add_argument("--skip-te", action="store_true", help="run tier (a) only even when TE imports")
    args = parser.parse_args(argv)
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="midm_gpu_check_"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; use --cpu for the CPU rehearsal", file=sys.stderr)
        return 2
    import megatron.core
    from megatron_ext.model import te_available
    from recipes import get_recipe

    prefix = write_corpus(args.workdir)
    name, overrides = base_overrides(args, prefix, "local")
    recipe = get_recipe(name, overrides)
    result = {"benchmark": "gpu_check", "tier": "a",
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() and not args.cpu else "cpu",
              "torch": torch.__version__, "megatron_core": megatron.core.__version__,
              "transformer_engine": None, "recipe": name, "layers": recipe.model.num_layers,
              "precision": recipe.precision.dtype, "steps": args.steps}
    tier_a = train(recipe, args.steps, min(3, args.steps - 1), save=True)
    reference = tier_a.pop("reference_logits")
    result.update({k: tier_a[k] for k in ("tokens_per_s", "tflops_per_device", "mfu", "loss_first", "loss_last",
                                          "peak_memory_gib", "checkpoint_seconds")})
    result["planned_memory_gib"] = planned_memory_gib(recipe)
    if tier_a["peak_memory_gib"]:
        result["measured_over_planned_memory"] = tier_a["peak_memory_gib"] / result["planned_memory_gib"]
    result["loss_falls"] = tier_a["loss_last"] < tier_a["loss_first"]
    result["hf"] = hf_roundtrip(tier_a["checkpoint"], args.workdir, reference, recipe.precision.dtype)
    result["sft_packing"] = sft_packing(args)
    ok = result["loss_falls"] and result["hf"]["ok"] and result["sft_packing"]["ok"] is not False
    if not args.cpu and not args.skip_te and te_available():
        import transformer_engine

        result["transformer_engine"] = transformer_engine.__version__
        result["te"] = te_checks(args, name, overrides, tier_a["checkpoint"])
        result["tier"] = "b"
        ok = ok and result["te"]["ok"]
    result["ok"] = ok
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
