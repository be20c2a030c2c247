"""Text rendering of :mod:`recipes.plan` results for ``midm recipe plan`` (GiB per GPU, tokens/s)."""
from __future__ import annotations

from recipes.memory import GIB
from recipes.plan import Plan, recompute_label


def format_plan(plan: Plan) -> str:
    """Human-readable breakdown of one plan (GiB per GPU)."""
    d = plan.to_dict()
    lay = d["layout"]
    lines = [f"{d['recipe']} on {d['gpus']} × {d['gpu']}: TP={lay['tp']} PP={lay['pp']} VPP={lay['vpp'] or '-'} "
             f"CP={lay['cp']} DP={lay['dp']} SP={'on' if lay['sequence_parallel'] else 'off'} "
             f"micro-batch={lay['micro_batch_size']} ×{lay['num_microbatches']} recompute={lay['recompute']} "
             f"distributed-optimizer={'on' if lay['distributed_optimizer'] else 'off'} fp8={lay['fp8'] or 'off'}"]
    for s in d["stages"]:
        lines.append(f"  stage {s['stage']:<5} weights {s['weights_gib']:.2f}  grads {s['gradients_gib']:.2f}  "
                     f"optimizer {s['optimizer_gib']:.2f} (without distributed optimizer "
                     f"{s['optimizer_without_distributed_optimizer_gib']:.2f})  fp8 cache {s['fp8_weight_cache_gib']:.2f}"
                     + (f"  teacher {s['teacher_weights_gib']:.2f}" if s['teacher_weights_gib'] else ""))
        lines.append(f"               activations {s['activations_gib']:.2f} = {s['activation_per_layer_gib']:.3f}/layer × "
                     f"{s['layers']} layers × {s['in_flight_microbatches']:g} in flight  logits {s['logits_gib']:.2f}  "
                     f"other {s['other_activations_gib']:.2f}  workspace {s['workspace_gib']:.2f}  "
                     f"transient {s['transient_gib']:.2f}  = {s['total_gib']:.2f} GiB")
    verdict = "fits" if d["fits"] else "DOES NOT FIT"
    lines.append(f"  per GPU {d['memory_per_gpu_gib']:.2f} GiB incl. {d['runtime_reserve_gib']:.0f} GiB runtime reserve; "
                 f"usable {d['usable_gib']:.1f} of {d['gpu_memory_gib']:.1f} GiB → {verdict}; largest micro-batch that "
                 f"fits: {d['largest_micro_batch_that_fits']}")
    lines.append(f"  step {d['step_seconds']:.3f} s at {d['mfu']:.0%} MFU while computing (bubble "
                 f"{d['bubble_fraction']:.1%}, recompute +{d['recompute_flops_fraction']:.1%} FLOPs, exposed TP+CP "
                 f"{d['exposed_tp_cp_comm_seconds']:.3f} s, DP {d['exposed_dp_comm_seconds']:.3f} s) → "
                 f"{d['tokens_per_s_per_gpu']:,.0f} tokens/s/GPU, {d['tokens_per_s']:,.0f} tokens/s, "
                 f"achieved MFU {d['achieved_mfu']:.1%}")
    return "\n".join(lines)


def format_search(plans: list[Plan]) -> str:
    """One line per layout, best first."""
    if not plans:
        return "no layout fits"
    header = f"{'TP':>3} {'PP':>3} {'VPP':>4} {'CP':>3} {'DP':>4} {'recompute':<16} {'mbs':>3} {'max mbs':>7} " \
             f"{'GiB/GPU':>8} {'tokens/s/GPU':>13} {'MFU':>6}"
    lines = [header]
    for p in plans:
        lay = p.layout
        lines.append(f"{lay.tp:>3} {lay.pp:>3} {lay.vpp or '-':>4} {lay.cp:>3} {lay.dp:>4} "
                     f"{recompute_label(p.recipe):<16} {lay.micro_batch_size:>3} {p.largest_micro_batch or '-':>7} "
                     f"{p.memory_bytes / GIB:>8.1f} {p.tokens_per_s_per_gpu:>13,.0f} {p.achieved_mfu:>6.1%}")
    return "\n".join(lines)
