"""What a checkpoint-producing stage tells its user: progress lines, a summary JSON, the next command."""
from __future__ import annotations

import json
import time
from pathlib import Path

from recipes import ModelConfig


def model_overrides(recipe_name: str, model: ModelConfig) -> list[str] | None:
    """``--set model.k=v`` items that turn registered recipe ``recipe_name`` into ``model`` (None: unknown)."""
    from recipes import RecipeError, get_recipe

    try:
        base = get_recipe(recipe_name).model
    except RecipeError:
        return None
    return [f"model.{k}={getattr(model, k)}" for k in vars(model) if getattr(model, k) != getattr(base, k)]


def train_command(recipe_name: str, model: ModelConfig, output: str | Path) -> str:
    """The ``midm train`` command line that continues from ``output`` with a fresh optimizer."""
    sets = model_overrides(recipe_name, model) or []
    return " ".join(["midm train --recipe", recipe_name, *(f"--set {s}" for s in sets),
                     f"--set checkpoint.load={output}"])


def write_summary(output: str | Path, name: str, summary: dict) -> Path:
    """Write ``OUTPUT/name`` as indented JSON; returns the path."""
    path = Path(output) / name
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return path


class Progress:
    """One line per event on stdout, with elapsed seconds (long stages must show progress)."""

    def __init__(self, stage: str):
        self.stage, self.t0 = stage, time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[midm {self.stage}] {time.perf_counter() - self.t0:7.1f}s  {message}", flush=True)
