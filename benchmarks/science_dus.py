"""Science (a): does depth-up scaling beat training the deeper model from scratch? (tiny scale, CPU)

    nice python benchmarks/science_dus.py [--work DIR] [--out benchmarks/results] [--parent-steps 300] [--steps 200]

1. ``tiny`` (4 layers) is pretrained on prefix A (``--parent-steps``);
2. ``midm dus --map solar:1`` makes the 6-layer ``tiny_deep`` from it;
3. ``tiny_deep`` continues on prefix B for ``--steps`` from the DuS weights (fresh optimizer), and
   ``tiny_deep`` is trained from scratch on exactly the same B batches for the same steps.

Writes ``science_dus.json`` (curves + verdict) and ``science_dus.png`` under ``--out`` and prints one
JSON line. The verdict is reported as measured; nothing is tuned to make it pass.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from science_common import (REPO, VOCAB, byte_prefixes, plot, run_midm, train_seconds, train_sets,  # noqa: E402
                            val_curve)
from megatron_ext.run_files import DUS_SUMMARY_FILE, PRUNE_SUMMARY_FILE, read_summary  # noqa: E402

TOKENS_PER_STEP = 16 * 128  # tiny recipes: global batch 16 × sequence 128


def dus_runs(work: Path, parent_steps: int, steps: int) -> dict[str, Path]:
    """Run (or reuse) the parent, the DuS checkpoint and both continued runs; returns their dirs."""
    prefixes = byte_prefixes(work / "data")
    runs = {"parent": work / "parent", "dus": work / "dus", "dus_continued": work / "dus_continued",
            "scratch": work / "deep_scratch"}
    every = max(steps // 10, 1)
    if read_summary(runs["parent"]) is None:
        run_midm(["train", "--recipe", "tiny", *train_sets(work, "parent", prefixes["A"], parent_steps, every)],
                 work / "logs" / "parent.log")
    if not (runs["dus"] / "latest").exists():
        run_midm(["dus", "--checkpoint", str(runs["parent"] / "checkpoints"), "--output", str(runs["dus"]),
                  "--map", "solar:1", "--recipe", "tiny_deep", "--set", f"model.vocab_size={VOCAB}"],
                 work / "logs" / "dus.log")
    if read_summary(runs["dus_continued"]) is None:
        run_midm(["train", "--recipe", "tiny_deep", "--set", f"checkpoint.load={runs['dus']}",
                  *train_sets(work, "dus_continued", prefixes["B"], steps, every)], work / "logs" / "dus_continued.log")
    if read_summary(runs["scratch"]) is None:
        run_midm(["train", "--recipe", "tiny_deep", *train_sets(work, "deep_scratch", prefixes["B"], steps, every)],
                 work / "logs" / "deep_scratch.log")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/midm_science"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--parent-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    runs = dus_runs(args.work, args.parent_steps, args.steps)
    curves = {"DuS (solar:1) + continued": val_curve(runs["dus_continued"]),
              "6 layers from scratch": val_curve(runs["scratch"])}
    dus_final, scratch_final = curves["DuS (solar:1) + continued"][-1][1], curves["6 layers from scratch"][-1][1]
    parent_final = val_curve(runs["parent"])[-1][1]
    dus_info = json.loads((runs["dus"] / DUS_SUMMARY_FILE).read_text())
    result = {
        "benchmark": "science_dus", "claim": "DuS + continued training < same deeper model from scratch (val loss)",
        "claim_holds": dus_final < scratch_final, "val_loss_dus_continued": dus_final,
        "val_loss_scratch": scratch_final, "gap": scratch_final - dus_final,
        "parent_val_loss_on_A": parent_final, "parent_steps": args.parent_steps, "continued_steps": args.steps,
        "continued_tokens": args.steps * TOKENS_PER_STEP, "layer_map": dus_info["layer_map"],
        "num_parameters": dus_info["num_parameters"], "curves": curves,
        "train_seconds": train_seconds([runs["parent"], runs["dus_continued"], runs["scratch"]]),
        "wall_seconds_this_invocation": round(time.perf_counter() - started, 1), "work": str(args.work),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "science_dus.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(curves, args.out / "science_dus.png",
         f"DuS tiny 4→6 layers: continued vs scratch (parent {args.parent_steps} steps on A; B below)",
         TOKENS_PER_STEP)
    print(json.dumps({k: v for k, v in result.items() if k != "curves"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
