"""Science (b): does prune + distill beat training the small model from scratch, and prune + plain LM?

    nice python benchmarks/science_prune_distill.py [--work DIR] [--out benchmarks/results] [--steps 200]

Teacher: the DuS + continued ``tiny_deep`` of ``science_dus.py`` (run first; reused from ``--work``,
built if missing). ``midm prune --recipe tiny_mini`` cuts it to hidden 64 / FFN 192 / tied
embeddings (Mini's layout) using calibration windows of prefix C; then three ``tiny_mini`` students
train on the same batches of prefix C for ``--steps``:

* prune + distill (``midm distill``: forward KL on the teacher's logits, T=1, LM loss off),
* prune + plain LM training (``midm train --set checkpoint.load=PRUNED``),
* the same architecture from random init (``midm train``).

The two pruned students are repeated with another data order (``--extra-seeds``) because their
final gap is small; ``claim_holds`` requires distill < LM for every seed. Writes
``science_prune_distill.json`` and ``.png`` under ``--out`` and prints one JSON line; the
validation loss is the student's LM loss on C's validation split for all runs.
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
from science_dus import TOKENS_PER_STEP, dus_runs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/midm_science"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--parent-steps", type=int, default=300)
    parser.add_argument("--teacher-steps", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--calib-samples", type=int, default=256)
    parser.add_argument("--extra-seeds", type=int, nargs="*", default=[4321],
                        help="repeat the two pruned students with these data.seed values (data order) to see "
                             "whether the distill-vs-LM ordering is robust")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = args.work
    teacher = dus_runs(work, args.parent_steps, args.teacher_steps)["dus_continued"] / "checkpoints"
    prefixes = byte_prefixes(work / "data")
    pruned = work / "pruned"
    every = max(args.steps // 10, 1)
    if not (pruned / "latest").exists():
        run_midm(["prune", "--checkpoint", str(teacher), "--output", str(pruned), "--recipe", "tiny_mini",
                  "--set", f"model.vocab_size={VOCAB}", "--calib", prefixes["C"], "--samples", str(args.calib_samples)],
                 work / "logs" / "prune.log")
    students = {
        "prune + distill (KL, T=1)": ("student_distill", ["distill", "--recipe", "tiny_mini", "--teacher", str(teacher),
                                                          "--student", str(pruned)]),
        "prune + LM training": ("student_lm", ["train", "--recipe", "tiny_mini", "--set", f"checkpoint.load={pruned}"]),
        "from scratch": ("student_scratch", ["train", "--recipe", "tiny_mini"]),
    }
    curves = {}
    for label, (name, cmd) in students.items():
        if read_summary(work / name) is None:
            run_midm([*cmd, *train_sets(work, name, prefixes["C"], args.steps, every)], work / "logs" / f"{name}.log")
        curves[label] = val_curve(work / name)
    final = {label: points[-1][1] for label, points in curves.items()}
    repeats = {}
    for seed in args.extra_seeds:
        repeats[seed] = {}
        for label in ("prune + distill (KL, T=1)", "prune + LM training"):
            name, cmd = students[label]
            name = f"{name}_seed{seed}"
            if read_summary(work / name) is None:
                sets = [*train_sets(work, name, prefixes["C"], args.steps, every), "--set", f"data.seed={seed}"]
                run_midm([*cmd, *sets], work / "logs" / f"{name}.log")
            repeats[seed][label] = val_curve(work / name)
    prune_info = json.loads((pruned / PRUNE_SUMMARY_FILE).read_text())
    kd, lm, scratch = final["prune + distill (KL, T=1)"], final["prune + LM training"], final["from scratch"]

    def gap_curve(kd_points, lm_points):  # distill − LM at every evaluation (negative: distill ahead)
        return [(a[0], round(a[1] - b[1], 4)) for a, b in zip(kd_points, lm_points)]

    seed_results = {"1234 (recipe default)": gap_curve(curves["prune + distill (KL, T=1)"],
                                                       curves["prune + LM training"])}
    for seed, v in repeats.items():
        seed_results[str(seed)] = gap_curve(v["prune + distill (KL, T=1)"], v["prune + LM training"])
    beats_lm_all = all(g[-1][1] < 0 for g in seed_results.values())
    result = {
        "benchmark": "science_prune_distill",
        "claim": "prune + distill < from scratch and < prune + LM training (student val LM loss)",
        "claim_holds": kd < scratch and beats_lm_all, "beats_scratch": kd < scratch,
        "beats_prune_lm": kd < lm, "beats_prune_lm_every_seed": beats_lm_all,
        "val_loss": final, "distill_minus_lm": kd - lm,
        "seed_repeats": {str(seed): {label: points[-1][1] for label, points in v.items()}
                         for seed, v in repeats.items()},
        "distill_minus_lm_by_step": seed_results,
        "steps": args.steps, "tokens": args.steps * TOKENS_PER_STEP,
        "teacher": str(teacher), "teacher_num_parameters": prune_info["source_num_parameters"],
        "student_num_parameters": prune_info["num_parameters"], "fold": prune_info["fold"],
        "prune_calib_lm_loss": prune_info["calib_lm_loss"], "curves": curves,
        "train_seconds": train_seconds([work / name for name, _ in students.values()]
                                       + [work / f"{students[label][0]}_seed{seed}" for seed in repeats
                                          for label in repeats[seed]]),
        "wall_seconds_this_invocation": round(time.perf_counter() - started, 1), "work": str(work),
    }
    for seed, v in repeats.items():
        for label, points in v.items():
            curves[f"{label}, data seed {seed}"] = points
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "science_prune_distill.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(curves, args.out / "science_prune_distill.png",
         f"tiny_mini students on C ({prune_info['num_parameters']:,} params; teacher "
         f"{prune_info['source_num_parameters']:,})", TOKENS_PER_STEP)
    print(json.dumps({k: v for k, v in result.items() if k not in ("curves", "distill_minus_lm_by_step")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
