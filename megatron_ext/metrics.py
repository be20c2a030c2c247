"""Step metrics to stdout, ``metrics.jsonl``, TensorBoard and (optional) W&B, plus the throughput/MFU estimate.

Only global rank 0 writes. On resume the JSONL is cut back to the resumed step, so the file always
reads as one clean run even after a ``kill -9``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from megatron_ext.run_files import METRICS_FILE

# Dense bf16 peak of one H100 SXM (the MFU reference); FP8 runs are still reported against it.
H100_BF16_PEAK_TFLOPS = 989.0


def peak_tflops_per_device() -> float | None:
    if torch.cuda.is_available() and "H100" in torch.cuda.get_device_name():
        return H100_BF16_PEAK_TFLOPS
    if torch.cuda.is_available() and "H200" in torch.cuda.get_device_name():
        return H100_BF16_PEAK_TFLOPS
    return None


class MetricsLogger:
    """Writes each step's record to ``metrics.jsonl`` (always), TensorBoard (``tensorboard``) and W&B
    (``wandb``: a :class:`megatron_ext.wandb_log.WandbLogger`, or None); only when ``enabled`` (rank 0)."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int, tensorboard: bool, wandb=None):
        self.enabled = enabled
        self.path = run_dir / METRICS_FILE
        self._tb = None
        self._file = None
        self._wandb = wandb
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resume_step:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash
        self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step + 1)

    def log(self, record: dict[str, Any], echo: bool = True) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and value is not None:
                    self._tb.add_scalar(key, value, record["step"])
        if self._wandb is not None:
            self._wandb.log(record)
        if echo:
            parts = [f"step {record['step']:>6}"]
            for key in ("loss", "val_loss", "reward_accuracy", "margin", "val_reward_accuracy", "lr", "grad_norm",
                        "tokens_per_s", "mfu"):
                if record.get(key) is not None:
                    value = record[key]
                    parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
            print(" | ".join(parts), flush=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.close()


class Throughput:
    """Tokens/s, TFLOP/s per device and MFU over the steps since the last report."""

    def __init__(self, tokens_per_step: int, flops_per_token: int, world_size: int):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.world_size = world_size
        self.peak = peak_tflops_per_device()
        self._t0 = time.perf_counter()
        self._steps = 0

    def step(self) -> None:
        self._steps += 1

    def exclude(self, seconds: float) -> None:
        """Leave time spent outside training steps (validation, checkpointing) out of the rate."""
        self._t0 += seconds

    def report(self) -> dict[str, float | None]:
        elapsed = time.perf_counter() - self._t0
        tokens_per_s = self.tokens_per_step * self._steps / max(elapsed, 1e-9)
        tflops = tokens_per_s * self.flops_per_token / self.world_size / 1e12
        self._t0, self._steps = time.perf_counter(), 0
        return {"tokens_per_s": tokens_per_s, "tflops_per_device": tflops,
                "mfu": tflops / self.peak if self.peak else None}
