"""Training throughput of a recipe: tokens/s, TFLOP/s per device and MFU, as one JSON line.

    python benchmarks/train_throughput.py --recipe midm_mini --set model.num_layers=24 --steps 10
    torchrun --nproc_per_node 8 benchmarks/train_throughput.py --recipe midm_8b --set precision.fp8=tensorwise

It runs the real ``Trainer`` (same model, optimizer, schedule and data path as ``midm train``) on a
synthetic uniform-token corpus written to a temporary Megatron prefix, times ``--steps`` optimizer
steps after ``--warmup`` steps (kernels autotuned, FP8 amax history filled), and reports model
FLOPs (recipes.flops_per_token) against the H100 dense bf16 peak of 989 TFLOP/s. On a machine
without CUDA it runs the CPU path (fp32, no MFU) so the script itself stays testable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_random_prefix(directory: Path, vocab_size: int, tokens: int, doc_tokens: int = 8192) -> str:
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = str(directory / "random")
    dtype = np.uint16 if vocab_size < 65500 else np.int32
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=dtype)
    rng = np.random.default_rng(0)
    for _ in range(max(1, tokens // doc_tokens)):
        doc = torch.from_numpy(rng.integers(3, vocab_size - 100, size=doc_tokens, dtype=np.int64))
        builder.add_document(doc, [doc_tokens])
    builder.finalize(prefix + ".idx")
    return prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import torch

    from megatron_ext import parallel
    from megatron_ext.trainer import Trainer
    from recipes import get_recipe

    on_gpu = torch.cuda.is_available()
    overrides = list(args.overrides)
    if not on_gpu:
        from recipes import cpu_overrides

        overrides += cpu_overrides()
    probe = get_recipe(args.recipe, overrides)
    total_steps = args.warmup + args.steps
    need_tokens = (total_steps + 2) * probe.train.global_batch_size * (probe.data.seq_length + 1) * 1.2
    workdir = Path(os.environ.get("MIDM_BENCH_DIR") or tempfile.mkdtemp(prefix="midm_bench_"))
    rank = int(os.environ.get("RANK", "0"))
    prefix = str(workdir / "random")
    if rank == 0 and not Path(prefix + ".idx").exists():
        write_random_prefix(workdir, probe.model.vocab_size, int(need_tokens))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        while not Path(prefix + ".idx").exists():  # other ranks wait for rank 0's corpus (shared filesystem)
            time.sleep(0.5)
    overrides += [f"data.blend={prefix}", "data.split=100,0,0", f"train.steps={total_steps}",
                  f"logging.dir={workdir}/runs", "logging.tensorboard=false", "data.num_workers=2"]
    trainer = Trainer(get_recipe(args.recipe, overrides), resume="none")
    stream = trainer.data_stream(trainer.train_batches, 0)
    for _ in range(args.warmup):
        trainer.train_step(stream)
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        last = trainer.train_step(stream)
    sync()
    elapsed = time.perf_counter() - start
    recipe = trainer.recipe
    world = torch.distributed.get_world_size()
    tokens_per_s = args.steps * recipe.train.global_batch_size * recipe.data.seq_length / elapsed
    from recipes import flops_per_token, num_parameters
    from megatron_ext.metrics import peak_tflops_per_device

    tflops = tokens_per_s * flops_per_token(recipe.model, recipe.data.seq_length) / world / 1e12
    peak = peak_tflops_per_device()
    result = {
        "benchmark": "train_throughput", "recipe": args.recipe, "overrides": args.overrides,
        "device": torch.cuda.get_device_name() if on_gpu else "cpu", "world_size": world,
        "num_parameters": num_parameters(recipe.model), "precision": recipe.precision.dtype,
        "fp8": recipe.precision.fp8, "tp": recipe.parallel.tensor_model_parallel_size,
        "pp": recipe.parallel.pipeline_model_parallel_size, "seq_length": recipe.data.seq_length,
        "global_batch_size": recipe.train.global_batch_size, "steps_timed": args.steps,
        "seconds_per_step": elapsed / args.steps, "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_device": tokens_per_s / world, "tflops_per_device": tflops,
        "mfu": tflops / peak if peak else None, "final_loss": last["loss"],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
    }
    if parallel.is_rank0():
        print(json.dumps(result), flush=True)
    trainer.close()


if __name__ == "__main__":
    main()
