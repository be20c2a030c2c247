"""Optional Weights & Biases logging beside ``metrics.jsonl`` and TensorBoard (``logging.wandb_project``).

Off by default. ``wandb`` is the ``[wandb]`` extra, imported only when ``logging.wandb_project`` is
set; then :func:`check_available` fails the run before any process group starts (exit 2) if it is not
installed. Offline is the user's choice through W&B's own environment (``WANDB_MODE=offline``: the
run is written under ``<run dir>/wandb/`` and ``wandb sync`` uploads it later); nothing here ever
needs the network. Only global rank 0 logs, like :class:`megatron_ext.metrics.MetricsLogger`.

A resumed training run continues the same W&B run: its id is kept in ``<run dir>/wandb_run_id`` and
passed back with ``resume="allow"`` (W&B's documented way to resume a run).
"""
from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import Any

from recipes import Recipe, RecipeError, recipe_to_dict

RUN_ID_FILE = "wandb_run_id"


def check_available(recipe: Recipe) -> None:
    """Raise :class:`RecipeError` when ``logging.wandb_project`` is set but ``wandb`` is not installed."""
    if recipe.logging.wandb_project and importlib.util.find_spec("wandb") is None:
        raise RecipeError(f"logging.wandb_project={recipe.logging.wandb_project!r} needs the wandb package: "
                          "pip install 'midm-recipes[wandb]' (or leave logging.wandb_project unset)")


class WandbLogger:
    """``log(record)`` sends every numeric field but ``step`` at ``record["step"]``; ``close()`` finishes the run.

    ``enabled`` is False on every rank but global rank 0, and when ``logging.wandb_project`` is unset.
    """

    def __init__(self, recipe: Recipe, run_dir: Path, enabled: bool):
        self._run = None
        project = recipe.logging.wandb_project
        if not (enabled and project):
            return
        import wandb

        run_dir.mkdir(parents=True, exist_ok=True)
        id_file = run_dir / RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]  # [a-z0-9]
        id_file.write_text(run_id + "\n")
        self._run = wandb.init(project=project, name=recipe.logging.run_name, id=run_id, resume="allow",
                               dir=str(run_dir), config=recipe_to_dict(recipe))

    def log(self, record: dict[str, Any]) -> None:
        if self._run is None:
            return
        values = {k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float)) and v is not None}
        self._run.log(values, step=int(record["step"]))

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None
