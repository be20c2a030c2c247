"""``midm prune`` logic: Minitron importance → keep plan → sliced student checkpoint.

The method and flags are described in ``commands/prune.py``; slicing is ``prune_slice.py`` and
importance ``importance.py``. The source is read through ``loading.load_model`` (one process, the
checkpoint's dtype, no random initialisation).
"""
from __future__ import annotations

import copy
import time

from megatron_ext import checkpoint as ckpt
from megatron_ext.calibration import calibration_tokens, lm_loss
from megatron_ext.loading import build_for_load, init_single_process, load_model, read_recipe, single_process_recipe
from megatron_ext.run_files import PRUNE_SUMMARY_FILE
from megatron_ext.stage_report import Progress, model_overrides, train_command, write_summary
from megatron_ext.state_io import load_tensors, save_output, tensor_items
from megatron_ext.tokenizer_check import carried, check_calibration


def target_model(args, source):
    """(student ModelConfig, output Recipe) from --recipe and the explicit flags."""
    from recipes import RecipeError, get_recipe

    recipe = get_recipe(args.recipe, args.overrides) if args.recipe else copy.deepcopy(source)
    model = copy.deepcopy(source.model)
    if args.recipe:
        for name, value in recipe.model.geometry().items():
            setattr(model, name, value)
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
    from megatron_ext import importance, parallel
    from megatron_ext.model import count_parameters
    from megatron_ext.prune_slice import FOLDS, PruneError, check_target, plan, slice_state
    from recipes import num_parameters

    source = read_recipe(args.checkpoint)
    student_cfg, out_recipe = target_model(args, source)
    check_target(source.model, student_cfg)
    if student_cfg == source.model:
        raise PruneError("the target equals the source: give --hidden/--ffn/--heads/--kv-groups/--layers or --recipe")
    if not args.calib:
        raise PruneError("no calibration data: Minitron pruning ranks neurons, heads and channels by their "
                         "activations, so it needs --calib PREFIX (a Megatron .bin/.idx prefix, e.g. from "
                         "`midm data tokenize`) and --samples N (Minitron uses 1024). Refusing to prune blindly.")
    check_calibration(args.calib, args.checkpoint, allow=args.allow_tokenizer_mismatch)  # before any weight is read
    progress = Progress("prune")
    started = time.perf_counter()
    init_single_process()
    try:
        iter_dir = ckpt.resolve(args.checkpoint)
        model, source = load_model(iter_dir)
        progress(f"loaded {iter_dir} ({count_parameters(model):,} parameters)")
        seq = args.seq_length or source.data.seq_length
        tokens = calibration_tokens(args.calib, args.samples, seq + 1, source.model.vocab_size)
        scores = importance.measure(model, tokens[:, :-1], source.model.kv_channels, args.micro_batch_size, progress)
        keep = plan(scores, source.model, student_cfg)
        eval_tokens = tokens[: min(len(tokens), 32)]
        teacher_loss = lm_loss(model, eval_tokens, args.micro_batch_size)
        tensors = tensor_items(model)
        del model
        student = build_for_load(single_process_recipe(out_recipe), dtype=source.precision.dtype)
        # A tied student from an untied teacher: one matrix must stand in for both (see module doc).
        foldable = student_cfg.tie_embeddings and "output_layer.weight" in tensors
        folds = (list(FOLDS) if args.fold == "auto" else [args.fold]) if foldable else ["embedding"]
        fold_losses = {}
        for how in folds:
            load_tensors(student, slice_state(tensors, source.model, student_cfg, keep, how))
            fold_losses[how] = lm_loss(student, eval_tokens, args.micro_batch_size)
            progress(f"student (fold={how}): calibration LM loss {fold_losses[how]:.4f}")
        best = min(fold_losses, key=fold_losses.get)
        if best != folds[-1]:
            load_tensors(student, slice_state(tensors, source.model, student_cfg, keep, best))
        out_dir = save_output(args.output, student, out_recipe, {"prune": {"source": str(iter_dir)}, **carried(iter_dir)})
        write_summary(args.output, "kept_indices.json", keep.to_json())
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
            "recipe_overrides": model_overrides(out_recipe.name, student_cfg),
            "next_step": train_command(out_recipe.name, student_cfg, args.output),
            "seconds": round(time.perf_counter() - started, 2),
        }
        write_summary(args.output, PRUNE_SUMMARY_FILE, summary)
        progress(f"saved {out_dir}: {summary['num_parameters']:,} parameters, calibration loss "
                 f"{teacher_loss:.4f} → {fold_losses[best]:.4f}")
        return summary
    finally:
        parallel.destroy()
