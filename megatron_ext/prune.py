"""``midm prune`` — Minitron-style structured pruning of a checkpoint (arXiv 2407.14679 / 2408.11796).

    midm prune --checkpoint BASE --output MINI --recipe midm_mini --calib PREFIX --samples 1024
    midm prune --checkpoint IN --output OUT --hidden 64 --ffn 192 [--heads A --kv-groups G] [--layers L]
               --calib PREFIX [--samples N] [--tie-embeddings] [--fold auto|embedding|output|mean]

Importance comes from forward activations on calibration windows (``importance.py``: MLP neurons,
attention heads / query groups, embedding channels from the RMSNorm outputs, depth by block
importance); the top-k on each axis are kept and every affected weight is sliced consistently
(``prune_slice.py``). ``kv_channels`` is kept when the hidden size shrinks (Mini: hidden 1792 with
32 heads × 128, so q projects 1792 → 4096). Pruning never runs without calibration data: importance
cannot be guessed.

Tied embeddings (Mini) from an untied teacher: the student has one matrix for the input embedding
and the output layer. ``--fold`` picks it from the teacher's (sliced) input embedding, its output
layer, or their mean; ``auto`` (default) measures the pruned student's LM loss on the calibration
windows with each candidate and keeps the best — all three are reported in ``prune_summary.json``.

Output: ``OUT/iter_0000000`` (+ ``latest``) with the student's ``recipe.json``, ``prune_summary.json``
(targets, losses before/after, the ``--set`` overrides the target recipe needs, the next command)
and ``kept_indices.json``. Memory: see ``surgery.py``.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time

FOLD_CHOICES = ("auto", "embedding", "output", "mean")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midm prune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="teacher checkpoint root or iter_* directory")
    parser.add_argument("--output", required=True, help="new checkpoint root (must not hold a checkpoint)")
    parser.add_argument("--recipe", help="target recipe: its geometry is the default target and it is written as "
                                         "the output's recipe.json (e.g. midm_mini, tiny_mini)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of --recipe (e.g. model.vocab_size=384)")
    parser.add_argument("--hidden", type=int, help="target hidden size (embedding channels)")
    parser.add_argument("--ffn", type=int, help="target FFN hidden size (MLP neurons per layer)")
    parser.add_argument("--heads", type=int, help="target attention heads per layer")
    parser.add_argument("--kv-groups", type=int, help="target query groups (GQA) per layer")
    parser.add_argument("--layers", type=int, help="target depth (drops the least important blocks)")
    parser.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=None,
                        help="tie input embedding and output layer in the student (default: from --recipe, else "
                             "the source's)")
    parser.add_argument("--fold", choices=FOLD_CHOICES, default="auto",
                        help="how an untied teacher's output layer becomes a tied student's matrix")
    parser.add_argument("--calib", help="calibration data prefix (Megatron .bin/.idx without extension); required")
    parser.add_argument("--samples", type=int, default=1024, help="calibration windows (default 1024, as Minitron)")
    parser.add_argument("--seq-length", type=int, help="calibration window length (default: recipe data.seq_length)")
    parser.add_argument("--micro-batch-size", type=int, default=4)
    return parser


def target_model(args, source):
    """(student ModelConfig, output Recipe) from --recipe and the explicit flags."""
    from recipes import RecipeError, get_recipe

    recipe = get_recipe(args.recipe, args.overrides) if args.recipe else copy.deepcopy(source)
    model = copy.deepcopy(source.model)
    if args.recipe:
        for name in ("hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups", "num_layers",
                     "tie_embeddings"):
            setattr(model, name, getattr(recipe.model, name))
    for flag, name in (("hidden", "hidden_size"), ("ffn", "ffn_hidden_size"), ("heads", "num_attention_heads"),
                       ("kv_groups", "num_query_groups"), ("layers", "num_layers"),
                       ("tie_embeddings", "tie_embeddings")):
        if getattr(args, flag) is not None:
            setattr(model, name, getattr(args, flag))
    if args.heads is not None and args.kv_groups is None and not args.recipe:
        model.num_query_groups = min(source.model.num_query_groups, model.num_attention_heads)
    if args.recipe:
        diff = {k: (getattr(model, k), getattr(recipe.model, k)) for k in vars(model)
                if getattr(model, k) != getattr(recipe.model, k)}
        if diff:
            fix = " ".join(f"--set model.{k}={a}" for k, (a, _) in diff.items())
            raise RecipeError(f"recipe {args.recipe} does not match the pruned model: "
                              + ", ".join(f"model.{k}: pruned {a} vs recipe {b}" for k, (a, b) in diff.items())
                              + f" (add {fix} if intended)")
    recipe.model = model
    recipe.checkpoint.load = None
    return model, recipe


def run(args) -> dict:
    from megatron_ext import importance, parallel, surgery
    from megatron_ext.model import count_parameters
    from megatron_ext.prune_slice import FOLDS, PruneError, check_target, plan, slice_state
    from recipes import num_parameters

    source = surgery.read_source_recipe(args.checkpoint)
    student_cfg, out_recipe = target_model(args, source)
    check_target(source.model, student_cfg)
    if student_cfg == source.model:
        raise PruneError("the target equals the source: give --hidden/--ffn/--heads/--kv-groups/--layers or --recipe")
    if not args.calib:
        raise PruneError("no calibration data: Minitron pruning ranks neurons, heads and channels by their "
                         "activations, so it needs --calib PREFIX (a Megatron .bin/.idx prefix, e.g. from "
                         "`midm data tokenize`) and --samples N (Minitron uses 1024). Refusing to prune blindly.")
    progress = surgery.Progress("prune")
    started = time.perf_counter()
    surgery.init_single_process()
    try:
        source, model, iter_dir = surgery.load_source(args.checkpoint)
        progress(f"loaded {iter_dir} ({count_parameters(model):,} parameters)")
        seq = args.seq_length or source.data.seq_length
        tokens = surgery.calibration_tokens(args.calib, args.samples, seq + 1, source.model.vocab_size)
        scores = importance.measure(model, tokens[:, :-1], source.model.kv_channels, args.micro_batch_size, progress)
        keep = plan(scores, source.model, student_cfg)
        eval_tokens = tokens[: min(len(tokens), 32)]
        teacher_loss = surgery.lm_loss(model, eval_tokens, args.micro_batch_size)
        tensors = surgery.tensor_items(model)
        del model
        student = surgery.build_single(out_recipe)
        # A tied student from an untied teacher: one matrix must stand in for both (see module doc).
        foldable = student_cfg.tie_embeddings and "output_layer.weight" in tensors
        folds = (list(FOLDS) if args.fold == "auto" else [args.fold]) if foldable else ["embedding"]
        fold_losses = {}
        for how in folds:
            surgery.load_tensors(student, slice_state(tensors, source.model, student_cfg, keep, how))
            fold_losses[how] = surgery.lm_loss(student, eval_tokens, args.micro_batch_size)
            progress(f"student (fold={how}): calibration LM loss {fold_losses[how]:.4f}")
        best = min(fold_losses, key=fold_losses.get)
        if best != folds[-1]:
            surgery.load_tensors(student, slice_state(tensors, source.model, student_cfg, keep, best))
        out_dir = surgery.save_output(args.output, student, out_recipe, {"prune": {"source": str(iter_dir)}})
        surgery.write_summary(args.output, "kept_indices.json", keep.to_json())
        summary = {
            "source": str(iter_dir), "checkpoint": str(out_dir), "recipe": out_recipe.name,
            "source_model": vars(source.model), "model": vars(student_cfg),
            "num_parameters": count_parameters(student), "recipe_num_parameters": num_parameters(student_cfg),
            "source_num_parameters": num_parameters(source.model),
            "calibration": {"prefix": args.calib, "samples": args.samples, "seq_length": seq,
                            "batches": scores.batches},
            "block_importance": [float(x) for x in scores.blocks], "kept_layers": keep.layers,
            "calib_lm_loss": {"teacher": teacher_loss, "student": fold_losses[best]},
            "fold": best if foldable else None, "fold_losses": fold_losses if foldable else None,
            "recipe_overrides": surgery.model_overrides(out_recipe.name, student_cfg),
            "next_step": surgery.train_command(out_recipe.name, student_cfg, args.output),
            "seconds": round(time.perf_counter() - started, 2),
        }
        surgery.write_summary(args.output, "prune_summary.json", summary)
        progress(f"saved {out_dir}: {summary['num_parameters']:,} parameters, calibration loss "
                 f"{teacher_loss:.4f} → {fold_losses[best]:.4f}")
        return summary
    finally:
        parallel.destroy()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from megatron_ext.prune_slice import PruneError
    from megatron_ext.surgery import SurgeryError
    from recipes import RecipeError

    try:
        run(args)
    except (PruneError, SurgeryError, RecipeError) as err:
        print(f"midm prune: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
