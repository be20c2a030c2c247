"""``midm data mix CURRICULUM.yaml OUT_DIR`` — phases of data mixtures → Megatron blend lists.

A curriculum is a list of phases, each with a token budget and per-source weights. A source is
one Megatron prefix, a list of prefixes, or the output of ``midm data tokenize`` (its
``.summary.json`` gives the prefix and its token count). For every phase we write
``OUT_DIR/NN_<name>.json``::

    {"name": ..., "tokens": N, "blend": [[weight, "/abs/prefix"], ...], "data_path": "w1 p1 w2 p2",
     "sources": {src: {"weight": w, "tokens": planned, "available": n, "epochs": e}}, ...}

Weights are normalised to sum to 1; prefixes are **absolute** paths (resolved against the
curriculum file's folder), so the JSON can be used from any working directory via
``midm train --set data.blend_file=PATH``. A source split over several prefixes shares its
weight among them in proportion to their tokens. Planned epochs over a source above
``max_epochs`` are an error (silent over-repetition is how small sources get memorised).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from data_prep.errors import DataError


def _source_prefixes(spec, base: Path) -> list[tuple[str, float | None]]:
    """[(absolute prefix, tokens or None)] for one source spec."""
    if isinstance(spec, str):
        spec = {"prefix": spec}
    if "tokenized" in spec:
        summary_path = Path(spec["tokenized"])
        summary_path = summary_path if summary_path.is_absolute() else base / summary_path
        if not str(summary_path).endswith(".summary.json"):
            summary_path = Path(f"{summary_path}.summary.json")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        return [(summary["output_prefix"], float(summary["tokens"]))]
    prefixes = spec.get("prefixes") or [spec["prefix"]]
    tokens = spec.get("tokens")
    out = []
    for p in prefixes:
        if isinstance(p, dict):
            out.append((str((base / p["prefix"]).resolve()), float(p["tokens"]) if p.get("tokens") else None))
        else:
            share = float(tokens) / len(prefixes) if tokens else None
            out.append((str((base / p).resolve()), share))
    return out


def build_phase(phase: dict, sources: dict, base: Path, max_epochs: float) -> dict:
    name = phase["name"]
    weights = {k: float(v) for k, v in phase["weights"].items()}
    unknown = sorted(set(weights) - set(sources))
    if unknown:
        raise DataError(f"phase {name!r} uses undefined source(s) {unknown}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise DataError(f"phase {name!r} needs non-negative weights with a positive sum")
    total_w = sum(weights.values())
    budget = float(phase["tokens"])
    blend: list[list] = []
    per_source = {}
    for src, w in weights.items():
        if w == 0:
            continue
        w /= total_w
        parts = _source_prefixes(sources[src], base)
        known = [t for _, t in parts if t]
        available = sum(known) if len(known) == len(parts) else None
        for prefix, tokens in parts:
            share = (tokens / available) if available else 1.0 / len(parts)
            blend.append([round(w * share, 10), prefix])
        planned = w * budget
        epochs = planned / available if available else None
        if epochs is not None and epochs > max_epochs:
            raise DataError(f"phase {name!r} would read source {src!r} {epochs:.2f} times "
                             f"(> max_epochs={max_epochs}); lower its weight or the phase budget")
        per_source[src] = {"weight": round(w, 10), "tokens": int(planned), "available": available,
                           "epochs": round(epochs, 4) if epochs is not None else None}
    norm = sum(w for w, _ in blend)
    blend = [[w / norm, p] for w, p in blend]
    return {"name": name, "tokens": int(budget), "blend": blend, "prefixes": "absolute",
            "data_path": " ".join(f"{w:.10g} {p}" for w, p in blend), "sources": per_source,
            **({"description": phase["description"]} if phase.get("description") else {})}


def check_one_tokenizer(prefixes: list[str], config: str) -> None:
    """Raise :class:`DataError` when the prefixes' ``PREFIX.summary.json`` (``midm data tokenize``) record
    two tokenizer fingerprints: a curriculum trains one model, on one tokenizer's ids (the trainers refuse
    such a blend too: ``megatron_ext/tokenizer_check.py``). Prefixes without a fingerprint are not checked."""
    from tokenizer.fingerprint import FIELD

    first: tuple[str, dict] | None = None
    for prefix in dict.fromkeys(prefixes):
        try:
            summary = json.loads(Path(f"{prefix}.summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(summary, dict) or not summary.get(FIELD):
            continue
        if first is None:
            first = (prefix, summary)
        elif summary[FIELD] != first[1][FIELD]:
            def says(s: dict) -> str:
                return f"tokenizer {s.get('tokenizer') or '?'} (fingerprint {s[FIELD]})"
            raise DataError(f"{config} mixes tokenizers: {first[0]} was tokenized with {says(first[1])}, {prefix} "
                            f"with {says(summary)}; a model trains on one tokenizer's ids: re-run `midm data tokenize` "
                            "on one of them with the other's --tokenizer")


def main_mix(config: str, out_dir: str) -> int:
    cfg_path = Path(config).resolve()
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    if not isinstance(cfg, dict) or "phases" not in cfg or "sources" not in cfg:
        raise DataError(f"{config} must define `sources` and `phases` (see data_prep/configs/mix_example.yaml)")
    base = Path(cfg.get("prefix_base", cfg_path.parent))
    base = base if base.is_absolute() else (cfg_path.parent / base).resolve()
    results = [build_phase(phase, cfg["sources"], base, float(cfg.get("max_epochs", 4.0))) for phase in cfg["phases"]]
    check_one_tokenizer([p for result in results for _, p in result["blend"]], config)  # before any file is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    cumulative = 0
    for i, result in enumerate(results):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", result["name"])
        path = out / f"{i:02d}_{safe}.json"
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        cumulative += result["tokens"]
        index.append({"phase": i, "name": result["name"], "file": str(path.resolve()), "tokens": result["tokens"],
                      "cumulative_tokens": cumulative})
        print(f"# phase {i} {result['name']}: {result['tokens']:,} tokens -> {path}")
        print(result["data_path"])
    (out / "curriculum.json").write_text(json.dumps({"phases": index, "total_tokens": cumulative}, indent=2),
                                         encoding="utf-8")
    return 0
