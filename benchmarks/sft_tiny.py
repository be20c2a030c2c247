"""SFT at tiny scale: held-out assistant loss and <|eot_id|> endings before/after SFT, and packed vs
unpacked training throughput on the same conversations.

    nice python benchmarks/sft_tiny.py --demo-out demo_out [--work /tmp/midm_sft_bench] [--epochs 1]

Needs a finished ``midm demo`` output (its tokenizer and the distilled Mini, ``runs/mini_distill``).
On the bundled Korean conversations (``demo_data/sft``, songys/Chatbot_data, MIT):

1. ``midm data sft`` twice: ``--pack`` and ``--no-pack`` (256-token samples, same conversations);
2. ``midm sft --recipe tiny_sft`` from the Mini: packed for ``--epochs`` (the SFT model measured
   below), unpacked for ``--throughput-steps`` steps (a rate needs no full epoch). Throughput is
   *real* (non-padding) tokens per second of training-step time: the data's mean real tokens per
   sample × global batch / the median step time (from each step's logged tokens_per_s; the median
   keeps a shared machine's load spikes out; validation and checkpointing are excluded);
3. ``midm convert to-hf`` of the base and the packed SFT model; on the held-out conversations
   (``demo_data/sft/chatbot_heldout.jsonl``) ``evaluation/chat.py`` measures the assistant-token
   loss and the share of greedy replies (to 48 held-out questions) that end with ``<|eot_id|>``.

Prints one JSON line and writes it to ``--out`` (default benchmarks/results/sft_tiny.json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from megatron_ext.run_files import read_metrics  # noqa: E402
from midm.runs import run_midm  # noqa: E402
from recipes import get_recipe  # noqa: E402

TRAIN = REPO / "demo_data" / "sft" / "chatbot_train.jsonl"
HELDOUT = REPO / "demo_data" / "sft" / "chatbot_heldout.jsonl"
SEQ = 256


def median_step_seconds(run_dir: Path, tokens_per_step: int) -> float:
    """Median training-step seconds of a run (first step left out: it pays one-time setup)."""
    return float(statistics.median(tokens_per_step / r["tokens_per_s"] for r in read_metrics(run_dir)[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-out", type=Path, default=REPO / "demo_out")
    parser.add_argument("--work", type=Path, default=Path("/tmp/midm_sft_bench"))
    parser.add_argument("--epochs", type=float, default=1.0, help="SFT epochs of the packed run (default 1)")
    parser.add_argument("--throughput-steps", type=int, default=30, help="steps of the unpacked run (default 30)")
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sft_tiny.json")
    args = parser.parse_args(argv)
    tok, base = args.demo_out / "tokenizer", args.demo_out / "runs" / "mini_distill" / "checkpoints"
    if not (tok / "tokenizer.json").is_file() or not (base / "latest").is_file():
        raise SystemExit(f"{args.demo_out}: run `midm demo` first (needs tokenizer/ and runs/mini_distill)")
    work, logs = args.work, args.work / "logs"
    started = time.perf_counter()
    result: dict = {"benchmark": "sft_tiny", "base": str(base), "epochs": args.epochs, "seq_length": SEQ}
    for mode in ("pack", "no-pack"):
        data = work / f"data_{mode}"
        run_midm(["data", "sft", str(TRAIN), str(data), "--tokenizer", str(tok), "--seq-length", str(SEQ),
                  f"--{mode}"], logs / "data.log")
        stats = json.loads((data / "stats.json").read_text())
        name = mode.replace("-", "")
        length = [f"sft.epochs={args.epochs}"] if mode == "pack" else ["sft.epochs=none",
                                                                         f"train.steps={args.throughput_steps}"]
        run_midm(["sft", "--recipe", "tiny_sft", "--data", str(data), "--base", str(base), "--resume", "none",
                  "--set", f"logging.dir={work / 'runs'}", "--set", f"logging.run_name={name}",
                  "--set", "logging.tensorboard=false", "--set", "train.eval_interval=1000000",
                  *[a for x in length for a in ("--set", x)]], logs / f"sft_{name}.log", nice=10,
                 env={"OMP_NUM_THREADS": "2"})
        records = read_metrics(work / "runs" / name)
        gbs = get_recipe("tiny_sft").train.global_batch_size
        seconds = median_step_seconds(work / "runs" / name, gbs * SEQ)
        split = stats["splits"]["train"]
        real_per_step = split["tokens"] / split["samples"] * gbs
        result[name] = {"samples": split["samples"], "conversations": split["conversations"], "fill": split["fill"],
                        "steps": len(records), "median_step_seconds": round(seconds, 4),
                        "real_tokens_per_s": round(real_per_step / seconds, 1),
                        "steps_per_epoch": -(-split["samples"] // gbs),
                        "epoch_seconds": round(-(-split["samples"] // gbs) * seconds, 1)}
    result["packed_speedup"] = round(result["pack"]["real_tokens_per_s"] / result["nopack"]["real_tokens_per_s"], 2)

    from data_prep.sft.chat import load_chat_tokenizer
    from evaluation.chat import assistant_loss, chat_generations, read_conversations

    heldout = read_conversations(HELDOUT)
    midm_tok = load_chat_tokenizer(tok)
    for variant, ckpt in (("before", base), ("after", work / "runs" / "pack" / "checkpoints")):
        hf = work / "hf" / variant
        run_midm(["convert", "to-hf", "--checkpoint", str(ckpt), "--output", str(hf), "--tokenizer", str(tok),
                  "--dtype", "fp32"], logs / "convert.log")
        loss = assistant_loss(hf, heldout, midm_tok)
        gens = chat_generations(hf, heldout[:args.prompts])
        result[f"{variant}_sft"] = {"heldout_assistant_loss": round(loss["loss"], 4), "assistant_tokens": loss["tokens"],
                                    "share_ending_with_eot": round(gens["share_ending_with_eot"], 3),
                                    "replies": len(gens["items"]), "example": gens["items"][0]}
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
