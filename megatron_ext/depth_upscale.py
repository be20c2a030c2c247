"""``midm dus`` — depth-up scaling (SOLAR, arXiv 2312.15166): a deeper checkpoint by duplicating layers.

Layer maps (``--map``), for a source with ``n`` layers:

* ``solar:M`` — ``old[0:n-M] + old[M:n]`` (SOLAR's two trimmed copies; ``midm_8b`` → ``midm_base`` is
  ``solar:8``: 24 + 24 = 48 layers, 11,545,743,360 parameters).
* an explicit list of source layers, ranges inclusive: ``0-23,8-31`` (same as ``solar:8`` for n=32).
* ``scored:L`` — Mi:dm picks layers "with high representational ability"; we measure block importance
  (1 − cos(input, output), ``importance.py``) on ``--calib`` windows and duplicate the contiguous
  window of ``L − n`` interior layers with the highest mean importance: ``old[0:s+k] + old[s:n]``.
  This is SOLAR's construction with the seam placed by data instead of symmetrically; the first and
  last layers (which map embeddings in and logits out) are never doubled, as in SOLAR.

Embeddings, final norm and output layer are copied; every new layer is a bit-identical copy of its
source layer. The target model is built in one process (TP=PP=1) and each of its layers is read
directly from the source checkpoint's stacked layer tensors at the mapped offset
(``load_layers_remapped``: dist-checkpointing resolves whatever TP shards and pipeline
layer offsets the source was saved with, and the source model is never materialised). Host memory
is the target in the source checkpoint's dtype, plus one stored tensor being read, plus torch
(≈ 0.7 GiB); saving adds no copy (``state_io.SavingView``): ≈ 22.5 GiB for ``midm_8b`` →
``midm_base`` in bf16 (measured on smaller Mi:dm-geometry models and extrapolated,
``benchmarks/checkpoint_memory.py``). ``scored:L`` also loads the source once to measure it. The result is written as ``OUT/iter_0000000`` with its
recipe; continue with a fresh optimizer: ``midm train --recipe midm_base --set checkpoint.load=OUT``.
"""
from __future__ import annotations

import copy
import re
import time

from midm.errors import MidmError

class MapError(MidmError, ValueError):
    """An invalid ``--map`` for this source depth."""


def solar_map(n: int, m: int) -> list[int]:
    if not 1 <= m < n / 2:
        raise MapError(f"solar:{m} needs 1 <= M < n/2 = {n / 2:g} for a source of {n} layers "
                       f"(it builds old[0:n-M] + old[M:n] = {2 * (n - m)} layers)")
    return list(range(0, n - m)) + list(range(m, n))


def explicit_map(spec: str, n: int) -> list[int]:
    layers: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise MapError(f"--map: cannot parse {part!r}; use solar:M, scored:L or ranges like 0-23,8-31")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if hi < lo:
            raise MapError(f"--map: range {part!r} is decreasing")
        layers += list(range(lo, hi + 1))
    bad = sorted({i for i in layers if i >= n})
    if bad:
        raise MapError(f"--map: source has {n} layers (0..{n - 1}); {bad} do not exist")
    return layers


def scored_window(n: int, target: int, block_importance: list[float]) -> tuple[int, int]:
    """(start, length) of the interior window to duplicate, maximising mean block importance."""
    k = target - n
    if k < 1 or k > n - 2:
        raise MapError(f"scored:{target}: a {n}-layer source can grow to {n + 1}..{2 * n - 2} layers this way")
    best = max(range(1, n - k), key=lambda s: (sum(block_importance[s:s + k]), -s))
    return best, k


def scored_map(n: int, target: int, block_importance: list[float]) -> list[int]:
    start, k = scored_window(n, target, block_importance)
    return list(range(0, start + k)) + list(range(start, n))


def parse_map(spec: str, n: int) -> tuple[str, int | list[int]]:
    """("solar", M) | ("explicit", layers) | ("scored", L) — validated against the source depth."""
    if spec.startswith("solar:"):
        m = int(spec.split(":", 1)[1])
        solar_map(n, m)
        return "solar", m
    if spec.startswith("scored:"):
        target = int(spec.split(":", 1)[1])
        scored_window(n, target, [0.0] * n)
        return "scored", target
    return "explicit", explicit_map(spec, n)


def _target_recipe(args, source, num_layers: int):
    from recipes import RecipeError, get_recipe

    if not args.recipe:
        recipe = copy.deepcopy(source)
        recipe.model.num_layers = num_layers
        recipe.checkpoint.load = None
        return recipe
    recipe = get_recipe(args.recipe, args.overrides)
    expected = copy.deepcopy(source.model)
    expected.num_layers = num_layers
    diff = {k: (getattr(expected, k), getattr(recipe.model, k)) for k in vars(expected)
            if getattr(expected, k) != getattr(recipe.model, k)}
    if diff:
        fix = " ".join(f"--set model.{k}={v[0]}" for k, v in diff.items())
        raise RecipeError(f"recipe {args.recipe} does not match the upscaled model: "
                          + ", ".join(f"model.{k}: output {a} vs recipe {b}" for k, (a, b) in diff.items())
                          + f" (add {fix} if intended)")
    return recipe


def run(args) -> dict:
    from megatron_ext import checkpoint as ckpt
    from megatron_ext import parallel
    from megatron_ext.calibration import calibration_tokens
    from megatron_ext.ckpt_tensors import checkpoint_dtype
    from megatron_ext.loading import build_for_load, init_single_process, load_model, read_recipe, single_process_recipe
    from megatron_ext.model import count_parameters
    from megatron_ext.run_files import DUS_SUMMARY_FILE
    from megatron_ext.stage_report import Progress, model_overrides, train_command, write_summary
    from megatron_ext.state_io import load_layers_remapped, save_output
    from megatron_ext.tokenizer_check import carried, check_calibration
    from recipes import num_parameters

    progress = Progress("dus")
    started = time.perf_counter()
    n = read_recipe(args.checkpoint).model.num_layers
    kind, value = parse_map(args.map, n)  # fail on a bad map before loading gigabytes
    if kind == "scored" and not args.calib:
        raise MapError("scored:L measures block importance on calibration data: pass --calib PREFIX "
                       "(a Megatron .bin/.idx prefix) [--samples N]")
    if kind == "scored":  # before the model is loaded: another tokenizer's ids would score nothing
        check_calibration(args.calib, args.checkpoint, allow=args.allow_tokenizer_mismatch)
    source = read_recipe(args.checkpoint)
    iter_dir = ckpt.resolve(args.checkpoint)
    init_single_process()
    try:
        summary: dict = {"source": str(iter_dir), "map": args.map, "source_layers": n}
        if kind == "solar":
            layer_map = solar_map(n, value)
        elif kind == "explicit":
            layer_map = value
        else:  # the only map that needs the source model itself (one forward pass per batch)
            from megatron_ext import importance

            model, _ = load_model(iter_dir)
            progress(f"loaded {iter_dir} ({count_parameters(model):,} parameters) to score its blocks")
            seq = args.seq_length or source.data.seq_length
            tokens = calibration_tokens(args.calib, args.samples, seq, source.model.vocab_size)
            scores = importance.measure(model, tokens, source.model.kv_channels, args.micro_batch_size, progress)
            del model
            blocks = [float(x) for x in scores.blocks]
            start, k = scored_window(n, value, blocks)
            layer_map = scored_map(n, value, blocks)
            summary.update(block_importance=blocks, duplicated_window=[start, start + k - 1],
                           calibration={"prefix": args.calib, "samples": args.samples, "seq_length": seq})
        target = _target_recipe(args, source, len(layer_map))
        # the source's stored dtype (bf16 stays bf16, whatever precision the recipe trains in)
        new_model = build_for_load(single_process_recipe(target), dtype=checkpoint_dtype(iter_dir))
        load_layers_remapped(new_model, iter_dir, layer_map, n)
        progress(f"read {len(layer_map)} layers from source layers {layer_map} of {iter_dir}")
        out_dir = save_output(args.output, new_model, target,
                              {"dus": {"source": str(iter_dir), "layer_map": layer_map}, **carried(iter_dir)})
        summary.update(layer_map=layer_map, layers=len(layer_map), recipe=target.name, checkpoint=str(out_dir),
                       num_parameters=count_parameters(new_model), recipe_num_parameters=num_parameters(target.model),
                       seconds=round(time.perf_counter() - started, 2),
                       recipe_overrides=model_overrides(target.name, target.model),
                       next_step=train_command(target.name, target.model, args.output))
        write_summary(args.output, DUS_SUMMARY_FILE, summary)
        progress(f"saved {out_dir} ({summary['num_parameters']:,} parameters)")
        return summary
    finally:
        parallel.destroy()
