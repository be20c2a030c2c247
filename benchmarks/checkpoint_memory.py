"""Host memory and time of the checkpoint tools at Mi:dm geometry, extrapolated to 8B and 11.5B.

For each width (Base: hidden 4096, FFN 14336, untied; Mini: hidden 1792, FFN 4608, tied — both
32 heads × 128, 8 KV groups, vocabulary 131,392) and each depth given, a random bf16
``LlamaForCausalLM`` is written as sharded safetensors (a layer at a time), then each tool runs as
its own ``python -m midm …`` process under a peak-memory sampler:

* ``from-hf``: HF → dist-checkpoint (``--recipe midm_base`` / ``midm_mini``: the bf16 recipes);
* ``to-hf``:  that checkpoint → HF again (checked bit-exact against the source);
* ``dus``:    depth-up scaling ``0-(n-1),0-(n-1)`` (n → 2n layers; fitted against the target);
* ``prune``:  Base width only, to Mini's width (hidden 1792, FFN 4608, tied) on 4 calibration windows.

Peak memory is the kernel's high-water mark of the tool's process (``VmHWM``) and, as a
cross-check, the largest sum of PSS over its process tree sampled every 0.1 s (``psutil``;
dist-checkpointing's save starts a helper process). Per tool and width, peak and time are
fitted as fixed + per-parameter (least squares over the depths; at a fixed width the parameter
count is linear in depth) and extrapolated to the 8B parent (32 layers), the 11.5B Base
(48 layers) and the 2.3B Mini; the issue's goals for the 11.5B Base are checked. One JSON line.

    python benchmarks/checkpoint_memory.py [--base-depths 1,2,3] [--mini-depths 4,8,12]
        [--tools from-hf,to-hf,dus,prune] [--code DIR] [--workdir DIR]

``--code before=DIR --code after=DIR`` measures the tools of several checkouts back to back on the
same models (a before/after comparison on a shared machine, where load drifts by the minute);
each gets its own fits. Times: ``seconds`` is the whole process (imports included),
``tool_seconds`` the tool's own figure from its summary JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GIB = 2**30
WIDTHS = {  # Mi:dm 2.0 geometry (DESIGN.md); depth varies
    "base": dict(hidden_size=4096, ffn_hidden_size=14336, tie_embeddings=False, recipe="midm_base"),
    "mini": dict(hidden_size=1792, ffn_hidden_size=4608, tie_embeddings=True, recipe="midm_mini"),
}
TARGETS = {"8b": ("base", 32), "base_11.5b": ("base", 48), "mini_2.3b": ("mini", 48)}


def model_config(width: str, layers: int, **overrides):
    """The ``ModelConfig`` of a Mi:dm width at ``layers`` depth (overrides: any other field)."""
    from recipes import ModelConfig

    w = {k: v for k, v in WIDTHS[width].items() if k != "recipe"} if width in WIDTHS else {}
    return ModelConfig(num_layers=layers, **{**w, **overrides})


def write_random_hf(out: Path, m, *, dtype: str = "bf16", seed: int = 0, layers_per_file: int = 1) -> int:
    """A random ``LlamaForCausalLM`` of geometry ``m`` as safetensors (+ index), a few layers per file.

    Holds one file's tensors at a time. Returns the parameter count.
    """
    import torch
    from safetensors.torch import save_file

    from megatron_ext.hf.llama import to_hf_config

    torch.manual_seed(seed)
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    out.mkdir(parents=True, exist_ok=True)
    h, f, q, kv = m.hidden_size, m.ffn_hidden_size, m.num_attention_heads * m.kv_channels, \
        m.num_query_groups * m.kv_channels

    def rand(*shape):
        return (torch.randn(*shape, dtype=torch.float32) * 0.02).to(dt)

    files: dict[str, str] = {}
    count = 0

    def flush(tensors: dict, index: int) -> None:
        nonlocal count
        name = f"model-{index:05d}.safetensors"
        save_file(tensors, str(out / name), metadata={"format": "pt"})
        for k, v in tensors.items():
            files[k] = name
            count += v.numel()

    flush({"model.embed_tokens.weight": rand(m.vocab_size, h)}, 0)
    for start in range(0, m.num_layers, layers_per_file):
        tensors = {}
        for layer in range(start, min(start + layers_per_file, m.num_layers)):
            p = f"model.layers.{layer}."
            tensors.update({p + "input_layernorm.weight": 1 + rand(h), p + "self_attn.q_proj.weight": rand(q, h),
                            p + "self_attn.k_proj.weight": rand(kv, h), p + "self_attn.v_proj.weight": rand(kv, h),
                            p + "self_attn.o_proj.weight": rand(h, q),
                            p + "post_attention_layernorm.weight": 1 + rand(h),
                            p + "mlp.gate_proj.weight": rand(f, h), p + "mlp.up_proj.weight": rand(f, h),
                            p + "mlp.down_proj.weight": rand(h, f)})
        flush(tensors, 1 + start // layers_per_file)
    last = {"model.norm.weight": 1 + rand(h)}
    if not m.tie_embeddings:
        last["lm_head.weight"] = rand(m.vocab_size, h)
    flush(last, 1 + -(-m.num_layers // layers_per_file))
    index = {"metadata": {"total_size": count * dt.itemsize}, "weight_map": files}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (out / "config.json").write_text(json.dumps(to_hf_config(m, vocab_size=m.vocab_size, dtype=dtype), indent=1))
    return count


def _hwm_bytes(pid: int) -> int:
    """The kernel's high-water mark of a process's resident memory (``VmHWM``; 0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path, interval: float = 0.1) -> dict:
    """Run ``cmd``; its wall time, exit status and peak memory.

    ``peak_rss_gib``: the process's own resident high-water mark (``VmHWM``, read every
    ``interval`` s — monotonic, so only growth in the last interval before exit could be missed;
    ``ru_maxrss`` would include the RSS of the parent it was forked from). ``peak_tree_pss_gib``:
    the largest sum of proportional set sizes (PSS: a page shared by k processes counts 1/k) over
    the process and its children (dist-checkpointing's save starts a helper process), sampled.
    """
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
        peaks, done = {"hwm": 0, "tree": 0}, threading.Event()

        def sample() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                peaks["hwm"] = max(peaks["hwm"], _hwm_bytes(proc.pid))
                total = 0
                try:
                    for p in [root, *root.children(recursive=True)]:
                        try:
                            total += p.memory_full_info().pss
                        except psutil.Error:
                            pass
                except psutil.Error:
                    pass
                peaks["tree"] = max(peaks["tree"], total)
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        while proc.poll() is None:  # keep sampling VmHWM until the very end
            peaks["hwm"] = max(peaks["hwm"], _hwm_bytes(proc.pid))
            time.sleep(interval / 2)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    return {"returncode": proc.returncode, "seconds": round(seconds, 2),
            "peak_rss_gib": round(peaks["hwm"] / GIB, 3), "peak_tree_pss_gib": round(peaks["tree"] / GIB, 3)}


def write_calibration(prefix: Path, vocab: int, docs: int = 16, length: int = 300) -> str:
    """A Megatron .bin/.idx prefix of random token ids (calibration input for ``midm prune``)."""
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    g = torch.Generator().manual_seed(0)
    builder = IndexedDatasetBuilder(str(prefix) + ".bin", dtype=np.int32)
    for _ in range(docs):
        builder.add_document(torch.randint(3, vocab, (length,), generator=g), [length])
    builder.finalize(str(prefix) + ".idx")
    return str(prefix)


def same_tensors(a: Path, b: Path) -> bool:
    """Whether two HF directories hold the same tensor names with bit-identical values."""
    import torch

    from megatron_ext.hf_files import SafetensorsDir

    x, y = SafetensorsDir(a), SafetensorsDir(b)
    return set(x) == set(y) and all(torch.equal(x[k], y[k]) for k in x)


def _summary_seconds(path: Path, key: str) -> float | None:
    """The tool's own elapsed time from its summary JSON (imports excluded), if it wrote one."""
    try:
        return float(json.loads(path.read_text())[key])
    except (OSError, KeyError, ValueError):
        return None


def fit(points: list[tuple[float, float]]) -> dict:
    """Least-squares ``y = fixed + per_param · x`` (one point: through that point with slope 0)."""
    n = len(points)
    if n == 1:
        return {"fixed": points[0][1], "per_param": 0.0}
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return {"fixed": my - slope * mx, "per_param": slope}


def resident_bytes(tool: str, width: str, layers: int) -> int:
    """What ``tool`` must hold by design at that size, in bf16: from-hf the model, dus its 2n-layer
    target, prune the source and its Mini-width student; to-hf nothing."""
    from recipes import num_parameters

    if tool == "to-hf":
        return 0
    if tool == "dus":
        return 2 * num_parameters(model_config(width, 2 * layers))
    if tool == "prune":
        return 2 * (num_parameters(model_config(width, layers)) + num_parameters(model_config("mini", layers)))
    return 2 * num_parameters(model_config(width, layers))


def summarise(runs: list[dict]) -> dict:
    """Fits, extrapolations to 8B / 11.5B / Mini and the issue's goals for one code version's runs.

    A least-squares line through a few small models can fall below what a tool holds by design
    (start-up transients that the largest points outgrow flatten its slope), so every memory
    estimate is at least the design's resident weights at that size plus the smallest overhead
    measured above them (``resident_bytes``).
    """
    from recipes import num_parameters

    fits, extrapolated = {}, {}
    for tool in sorted({r["tool"] for r in runs}):
        for width in WIDTHS:
            rows = [r for r in runs if r["tool"] == tool and r["width"] == width]
            if not rows:
                continue
            key = f"{tool}/{width}"
            mem = fit([(r["fit_parameters"], r["peak_rss_gib"]) for r in rows])
            tree = fit([(r["fit_parameters"], r["peak_tree_pss_gib"]) for r in rows])
            overhead = min(r["peak_rss_gib"] - resident_bytes(tool, width, r["layers"]) / GIB for r in rows)
            sec = fit([(r["fit_parameters"], r["seconds"]) for r in rows])
            own_rows = [r for r in rows if r.get("tool_seconds") is not None]
            own = fit([(r["fit_parameters"], r["tool_seconds"]) for r in own_rows]) if own_rows else None
            fits[key] = {"peak_gib_fixed": round(mem["fixed"], 3),
                         "peak_bytes_per_param": round(mem["per_param"] * GIB, 3),
                         "min_overhead_gib": round(overhead, 3), "seconds_fixed": round(sec["fixed"], 2),
                         "seconds_per_b_params": round(sec["per_param"] * 1e9, 2),
                         "tool_seconds_per_b_params": round(own["per_param"] * 1e9, 2) if own else None}
            for target, (w, layers) in TARGETS.items():
                if w != width or (tool == "dus" and layers % 2):
                    continue
                n = layers // 2 if tool == "dus" else layers  # dus: the source depth whose 2n target this is
                x = num_parameters(model_config(w, layers))
                line = mem["fixed"] + mem["per_param"] * x
                floor = resident_bytes(tool, w, n) / GIB + overhead
                extrapolated[f"{key}@{target}"] = {
                    "parameters": x, "peak_gib": round(max(line, floor), 2), "peak_gib_line": round(line, 2),
                    "peak_gib_floor": round(floor, 2),
                    "peak_tree_pss_gib": round(tree["fixed"] + tree["per_param"] * x, 2),
                    "seconds": round(sec["fixed"] + sec["per_param"] * x, 1),
                    "tool_seconds": round(own["fixed"] + own["per_param"] * x, 1) if own else None}
    bf16_gib = num_parameters(model_config("base", 48)) * 2 / GIB
    goals = {"to-hf ≤ 8 GiB": ("to-hf/base@base_11.5b", 8.0),
             "from-hf ≤ 1.2 × bf16 model + 2 GiB": ("from-hf/base@base_11.5b", 1.2 * bf16_gib + 2),
             "dus ≤ 1.2 × target + 2 GiB": ("dus/base@base_11.5b", 1.2 * bf16_gib + 2)}
    checks = {name: {"estimate_gib": extrapolated[key]["peak_gib"], "limit_gib": round(limit, 2),
                     "met": extrapolated[key]["peak_gib"] <= limit}
              for name, (key, limit) in goals.items() if key in extrapolated}
    # Time: at these sizes a run's seconds are mostly start-up and the machine's load, so a fitted
    # slope is noise; the overall rate (all the tool's seconds over all the parameters it converted,
    # start-up included) is what "≈ 15 s per billion parameters on 2 cores today" measures.
    for tool in ("from-hf", "to-hf"):
        rows = [r for r in runs if r["tool"] == tool and r.get("tool_seconds") is not None]
        if rows:
            rate = sum(r["tool_seconds"] for r in rows) / sum(r["parameters"] for r in rows) * 1e9
            checks[f"{tool} ≤ 15 s per 1e9 parameters"] = {"estimate": round(rate, 2), "limit": 15, "met": rate <= 15}
    return {"fits": fits, "extrapolated": extrapolated, "goals": checks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-depths", default="1,2,3", help="Base-width depths to measure (comma list; '' skips)")
    ap.add_argument("--mini-depths", default="4,8,12", help="Mini-width depths to measure (comma list; '' skips)")
    ap.add_argument("--tools", default="from-hf,to-hf,dus,prune")
    ap.add_argument("--code", action="append", default=None, metavar="[LABEL=]DIR",
                    help="checkout whose tools are measured (repeatable, run back to back on the same models; "
                         "default: this one)")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the tools")
    args = ap.parse_args()

    from recipes import num_parameters

    codes = {}
    for spec in args.code or [f"this={REPO}"]:
        label, _, path = spec.rpartition("=")
        codes[label or Path(path).name] = Path(path).resolve()
    tools = [t for t in args.tools.split(",") if t]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ckpt_memory_"))
    midm = [sys.executable, "-m", "midm"]
    runs: list[dict] = []
    calib = None
    try:
        for width, depths in (("base", args.base_depths), ("mini", args.mini_depths)):
            for n in [int(d) for d in depths.split(",") if d]:
                m = model_config(width, n)
                hf = work / f"{width}{n}_hf"
                params = write_random_hf(hf, m)
                if "prune" in tools and width == "base":
                    calib = calib or write_calibration(work / "calib", m.vocab_size)
                for label, code in codes.items():
                    tag = f"{label}_{width}{n}"
                    ckpt = work / f"{tag}_ckpt"
                    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS=str(args.threads),
                               PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false")
                    env.pop("RANK", None)
                    env.pop("WORLD_SIZE", None)

                    def run(tool: str, cmd: list[str], x: int, out: Path, summary: tuple[str, str], **extra) -> dict:
                        log = work / "logs" / f"{tag}_{tool}.log"
                        result = measure(midm + cmd, cwd=code, env=env, log=log)
                        if result["returncode"] != 0:
                            raise SystemExit(f"{tool} on {tag} failed:\n{log.read_text()[-3000:]}")
                        row = {"code": label, "tool": tool, "width": width, "layers": n, "parameters": params,
                               "fit_parameters": x, **result,
                               "tool_seconds": _summary_seconds(out / summary[0], summary[1]), **extra}
                        runs.append(row)
                        print(json.dumps(row), file=sys.stderr, flush=True)
                        return row

                    run("from-hf", ["convert", "from-hf", "--hf", str(hf), "--output", str(ckpt), "--recipe",
                                    WIDTHS[width]["recipe"]], params, ckpt, ("midm_conversion.json", "elapsed_s"))
                    if "to-hf" in tools:
                        back = work / f"{tag}_hf_back"
                        row = run("to-hf", ["convert", "to-hf", "--checkpoint", str(ckpt), "--output", str(back)],
                                  params, back, ("midm_conversion.json", "elapsed_s"))
                        row["bit_exact"] = same_tensors(hf, back)
                        shutil.rmtree(back)
                    if "dus" in tools:
                        out = work / f"{tag}_dus"
                        run("dus", ["dus", "--checkpoint", str(ckpt), "--output", str(out), "--map",
                                    f"0-{n - 1},0-{n - 1}"], num_parameters(model_config(width, 2 * n)), out,
                            ("dus_summary.json", "seconds"), target_layers=2 * n)
                        shutil.rmtree(out)
                    if "prune" in tools and width == "base":
                        out = work / f"{tag}_pruned"
                        run("prune", ["prune", "--checkpoint", str(ckpt), "--output", str(out), "--hidden", "1792",
                                      "--ffn", "4608", "--tie-embeddings", "--fold", "embedding", "--calib", calib,
                                      "--samples", "4", "--seq-length", "64", "--micro-batch-size", "2"],
                            params, out, ("prune_summary.json", "seconds"))
                        shutil.rmtree(out)
                    shutil.rmtree(ckpt)
                shutil.rmtree(hf)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(json.dumps({"benchmark": "checkpoint_memory", "codes": {k: str(v) for k, v in codes.items()},
                      "threads": args.threads,
                      "bf16_base_gib": round(num_parameters(model_config("base", 48)) * 2 / GIB, 2),
                      "runs": runs, **{label: summarise([r for r in runs if r["code"] == label]) for label in codes}}))


if __name__ == "__main__":
    main()
