"""Cross-check ``midm prune`` against nvidia-modelopt's ``mcore_minitron`` (the reference Minitron).

    python -m megatron_ext.prune_modelopt --checkpoint CKPT --calib PREFIX --samples 16 \\
        --hidden 96 --ffn 256 --heads 2 --layers 3 [--json OUT.json]

Runs both on the *same* single-process model and calibration windows and compares the kept
hidden channels, MLP neurons, attention heads and layers. modelopt sorts weights by importance
before slicing, so its kept sets are recovered by matching each pruned weight vector exactly
against the original weights. Needs the ``prune`` extra (``nvidia-modelopt==0.43.0``: ≥ 0.44 only
supports the Transformer Engine spec). modelopt cannot prune query groups (removed in 0.41), so
the comparison keeps ``num_query_groups``.

Shim (CPU, local spec): modelopt registers a dynamic module for Megatron's ``FusedLayerNorm`` and
``nn.LayerNorm`` but not ``torch.nn.RMSNorm``, which the local spec uses when Apex is absent; we
register an equivalent one (weight + normalized_shape sliced by the ``hidden_size`` hparam).
Its depth pruning all-gathers a 0-d tensor, which NCCL accepts and gloo rejects; while modelopt
runs, ``all_gather_into_tensor`` gets 0-d inputs as 1-element tensors (same bytes).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys

import torch


def _register_rmsnorm() -> None:
    from modelopt.torch.nas.modules.norm import _DynamicLayerNorm
    from modelopt.torch.nas.registry import DMRegistry

    if torch.nn.RMSNorm in DMRegistry:
        return

    class _DynamicRMSNorm(_DynamicLayerNorm):
        def _setup(self, *, num_features=None):
            self._register_hparam("num_features", num_features)
            self._register_dynamic_attribute("weight", self._cut_to_active_features)
            self._register_dynamic_attribute("normalized_shape", self._get_normalized_shape)

    DMRegistry.register({torch.nn.RMSNorm: "torch.nn.RMSNorm"})(_DynamicRMSNorm)


@contextlib.contextmanager
def _gloo_scalar_allgather():
    original = torch.distributed.all_gather_into_tensor

    def patched(output, input, *args, **kwargs):
        return original(output, input.reshape(1) if input.dim() == 0 else input, *args, **kwargs)

    torch.distributed.all_gather_into_tensor = patched
    try:
        yield
    finally:
        torch.distributed.all_gather_into_tensor = original


def _key(t: torch.Tensor) -> bytes:
    return t.detach().float().contiguous().cpu().numpy().tobytes()


def recover_kept(original: dict[str, torch.Tensor], pruned: dict[str, torch.Tensor], num_layers: int,
                 kv_channels: int) -> dict:
    """Kept index sets of a pruned model, found by exact matching against the original weights."""
    emb = original["embedding.word_embeddings.weight"]
    columns = {_key(emb[:, j]): j for j in range(emb.shape[1])}
    order = [columns[_key(c)] for c in pruned["embedding.word_embeddings.weight"].T]
    idx = torch.tensor(order)
    rows, heads_of = {}, {}
    for layer in range(num_layers):
        fc1 = original[f"decoder.layers.{layer}.mlp.linear_fc1.weight"][:, idx]
        for r in range(fc1.shape[0] // 2):  # gate half identifies the neuron
            rows[_key(fc1[r])] = (layer, r)
        proj = original[f"decoder.layers.{layer}.self_attention.linear_proj.weight"][idx]
        for h in range(proj.shape[1] // kv_channels):
            heads_of[_key(proj[:, h * kv_channels:(h + 1) * kv_channels])] = (layer, h)
    layers, ffn, heads = [], {}, {}
    new_layer = 0
    while f"decoder.layers.{new_layer}.mlp.linear_fc1.weight" in pruned:
        fc1 = pruned[f"decoder.layers.{new_layer}.mlp.linear_fc1.weight"]
        hits = [rows[_key(row)] for row in fc1[: fc1.shape[0] // 2]]
        src = hits[0][0]
        assert all(h[0] == src for h in hits), "a pruned layer mixes neurons of several source layers"
        layers.append(src)
        ffn[src] = sorted(r for _, r in hits)
        proj = pruned[f"decoder.layers.{new_layer}.self_attention.linear_proj.weight"]
        heads[src] = sorted(heads_of[_key(proj[:, h * kv_channels:(h + 1) * kv_channels])][1]
                            for h in range(proj.shape[1] // kv_channels))
        new_layer += 1
    return {"hidden": sorted(order), "layers": sorted(layers), "ffn": ffn, "heads": heads}


def modelopt_prune(model, tokens: torch.Tensor, export_config: dict, micro_batch_size: int) -> None:
    """Prune ``model`` in place with modelopt's mcore_minitron on the given calibration windows."""
    import modelopt.torch.prune as mtp
    from modelopt.torch.prune.plugins.mcore_minitron import get_mcore_minitron_config

    from megatron_ext.calibration import forward, iterate_batches

    _register_rmsnorm()

    def forward_loop(m):
        for batch in iterate_batches(tokens, micro_batch_size):
            forward(m, batch)

    # Divisor 1 on every axis: any target size is a valid choice (the defaults round to 256/512/2).
    config = get_mcore_minitron_config(hidden_size_divisor=1, ffn_hidden_size_divisor=1, num_layers_divisor=1)
    with _gloo_scalar_allgather():
        mtp.prune(model, mode=[("mcore_minitron", config)], constraints={"export_config": export_config},
                  dummy_input=None, config={"forward_loop": forward_loop})


def compare(ours: dict, theirs: dict) -> dict:
    """Per-axis agreement (kept sets) plus the indices that differ."""
    report = {"hidden": {"agree": ours["hidden"] == theirs["hidden"],
                         "only_ours": sorted(set(ours["hidden"]) - set(theirs["hidden"])),
                         "only_modelopt": sorted(set(theirs["hidden"]) - set(ours["hidden"]))},
              "layers": {"agree": ours["layers"] == theirs["layers"], "ours": ours["layers"],
                         "modelopt": theirs["layers"]}}
    for axis in ("ffn", "heads"):
        diffs = {}
        for layer in ours["layers"]:
            a, b = set(ours[axis].get(layer, [])), set(theirs[axis].get(layer, []))
            if a != b:
                diffs[layer] = {"only_ours": sorted(a - b), "only_modelopt": sorted(b - a)}
        report[axis] = {"agree": not diffs, "differences": diffs}
    report["all_agree"] = all(v["agree"] for v in report.values() if isinstance(v, dict))
    return report


def run(args) -> dict:
    from megatron_ext import importance, parallel
    from megatron_ext.calibration import calibration_tokens
    from megatron_ext.loading import init_single_process, load_model
    from megatron_ext.prune_slice import plan
    from megatron_ext.state_io import tensor_items

    init_single_process()
    try:
        model, source = load_model(args.checkpoint)
        src = source.model
        dst = copy.deepcopy(src)
        export = {}
        for flag, name in (("hidden", "hidden_size"), ("ffn", "ffn_hidden_size"), ("heads", "num_attention_heads"),
                           ("layers", "num_layers")):
            if getattr(args, flag) is not None:
                setattr(dst, name, getattr(args, flag))
                export[name] = getattr(args, flag)
        seq = args.seq_length or source.data.seq_length
        tokens = calibration_tokens(args.calib, args.samples, seq, src.vocab_size)
        scores = importance.measure(model, tokens, src.kv_channels, args.micro_batch_size)
        keep = plan(scores, src, dst)
        ours = {"hidden": keep.hidden.tolist(), "layers": keep.layers,
                "ffn": {k: v.tolist() for k, v in keep.ffn.items()},
                "heads": {k: v.tolist() for k, v in keep.heads.items()}}
        original = {k: v.clone() for k, v in tensor_items(model).items()}
        modelopt_prune(model, tokens, export, args.micro_batch_size)
        pruned = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
        theirs = recover_kept(original, pruned, src.num_layers, src.kv_channels)
        report = {"export_config": export, "samples": args.samples, "block_importance": scores.blocks.tolist(),
                  **compare(ours, theirs)}
    finally:
        parallel.destroy()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m megatron_ext.prune_modelopt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--calib", required=True)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seq-length", type=int)
    parser.add_argument("--micro-batch-size", type=int, default=4)
    for flag in ("hidden", "ffn", "heads", "layers"):
        parser.add_argument(f"--{flag}", type=int)
    parser.add_argument("--json", help="write the report here too")
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(json.dumps(report, indent=2) + "\n")
    print(text)
    return 0 if report["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
