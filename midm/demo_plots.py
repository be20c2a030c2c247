"""The demo report's training plots, all in one style.

Every run is drawn with its validation loss (solid line, markers) and its training loss (thin dashed
line, same colour); reference levels (the parent's or the teacher's final validation loss) are grey
horizontal lines. Runs compared at equal tokens share a token x-axis. Curves are ``read_curve``'s
``[(step, loss), …]`` in nats/token; ``tokens_per_step`` converts steps to tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

STYLE = {"figsize": (7.2, 4.0), "dpi": 110, "val_marker": "o", "markersize": 3, "train_alpha": 0.55}


@dataclass(frozen=True)
class Series:
    """One run: ``curve`` is ``read_curve``'s dict (``loss_curve``, ``val_curve``, optional ``tokens_per_step``)."""

    label: str
    curve: dict


@dataclass(frozen=True)
class Level:
    """A horizontal reference line at ``loss`` (nats/token)."""

    label: str
    loss: float


@dataclass
class Plot:
    title: str
    series: list[Series]
    levels: list[Level] = field(default_factory=list)
    tokens: bool = True  # x-axis in tokens when every series knows its tokens_per_step


def _xs(points: list, per_step: int | None) -> list[float]:
    return [step * per_step if per_step else step for step, _ in points]


def draw(plot: Plot, path: Path) -> str:
    """Write ``plot`` as a PNG at ``path``; returns the file name (for the report's relative link)."""
    use_tokens = plot.tokens and all(s.curve.get("tokens_per_step") for s in plot.series)
    fig, ax = plt.subplots(figsize=STYLE["figsize"])
    for i, s in enumerate(plot.series):
        color = f"C{i}"
        per_step = s.curve.get("tokens_per_step") if use_tokens else None
        train, val = s.curve.get("loss_curve") or [], s.curve.get("val_curve") or []
        if train:
            ax.plot(_xs(train, per_step), [y for _, y in train], color=color, linestyle="--", linewidth=1,
                    alpha=STYLE["train_alpha"], label=f"{s.label} — train")
        if val:
            ax.plot(_xs(val, per_step), [y for _, y in val], color=color, marker=STYLE["val_marker"],
                    markersize=STYLE["markersize"], linewidth=1.8, label=f"{s.label} — validation")
    for j, level in enumerate(plot.levels):
        ax.axhline(level.loss, color="0.35", linestyle=[":", "-."][j % 2], linewidth=1.2,
                   label=f"{level.label} ({level.loss:.3f})")
    ax.set_xlabel("training tokens" if use_tokens else "step")
    if use_tokens:
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(plot.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(plot.series) + len(plot.levels) > 3 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=STYLE["dpi"])
    plt.close(fig)
    return path.name
