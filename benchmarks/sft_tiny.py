"""SFT at tiny scale: held-out assistant loss and <|eot_id|> endings before/after SFT, and packed vs
unpacked training throughput on the same conversations.

    nice python benchmarks/sft_tiny.py --demo-out demo_out [--work /tmp/midm_sft_bench] [--epochs 1]

Needs a finished ``midm demo`` output (its tokenizer and the distilled Mini, ``runs/mini_distill``).
On the bundled Korean conversations (``demo_data/sft``, songys/Chatbot_data, MIT):

1. ``midm data sft`` twice: ``--pack`` and ``--no-pack`` (256-token samples, same conversations);
2. ``midm sft --recipe tiny_sft`` from the Mini for ``--throughput-steps`` on each layout, back to
   back (a rate needs no full epoch; adjacent runs see the same load), then packed for ``--epochs``
   (the SFT model measured below). Throughput is
   *real* (non-padding) tokens per second of training-step time: the data's mean real tokens per
   sample × global batch / the fastest step's time (from each step's logged tokens_per_s; on a
   shared machine the fastest step is the least disturbed one, as ``timeit`` takes the minimum;
   the median is reported too; validation and checkpointing are excluded);
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


def step_seconds(run_dir: Path, tokens_per_step: int) -> tuple[float, float]:
    """(fastest, median) training-step seconds of a run (first step left out: it pays one-time setup)."""
    times = [tokens_per_step / r["tokens_per_s"] for r in read_metrics(run_dir)[1:]]
    return min(times), float(statistics.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-out", type=Path, default=REPO / "demo_out")
    parser.add_argument("--work", type=Path, default=Path("/tmp/midm_sft_bench"))
    parser.add_argument("--epochs", type=float, default=1.0, help="SFT epochs of the packed run (default 1)")
    parser.add_argument("--throughput-steps", type=int, default=30,
                        help="steps of each throughput run, packed and unpacked (default 30)")
    parser.add_argument("--throughput-only", action="store_true", help="print the throughput part and stop")
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sft_tiny.json")
    args = parser.parse_args(argv)
    tok, base = args.demo_out / "tokenizer", args.demo_out / "runs" / "mini_distill" / "checkpoints"
    if not (tok / "tokenizer.json").is_file() or not (base / "latest").is_file():
        raise SystemExit(f"{args.demo_out}: run `midm demo` first (needs tokenizer/ and runs/mini_distill)")
    work, logs = args.work, args.work / "logs"
    started = time.perf_counter()
    result: dict = {"benchmark": "sft_tiny", "base": str(base), "epochs": args.epochs, "seq_length": SEQ}
    gbs = get_recipe("tiny_sft").train.global_batch_size

    def sft(data: Path, name: str, length: list[str]) -> None:
        run_midm(["sft", "--recipe", "tiny_sft", "--data", str(data), "--base", str(base), "--resume", "none",
                  "--set", f"logging.dir={work / 'runs'}", "--set", f"logging.run_name={name}",
                  "--set", "logging.tensorboard=false", "--set", "train.eval_interval=1000000",
                  *[a for x in length for a in ("--set", x)]], logs / f"sft_{name}.log", nice=10,
                 env={"OMP_NUM_THREADS": "2"})

    # throughput: the two layouts back to back (same steps, same load on a shared machine)
    for mode in ("pack", "no-pack"):
        data = work / f"data_{mode}"
        run_midm(["data", "sft", str(TRAIN), str(data), "--tokenizer", str(tok), "--seq-length", str(SEQ),
                  f"--{mode}"], logs / "data.log")
        split = json.loads((data / "stats.json").read_text())["splits"]["train"]
        name = mode.replace("-", "")
        sft(data, f"rate_{name}", ["sft.epochs=none", f"train.steps={args.throughput_steps}"])
        fastest, median = step_seconds(work / "runs" / f"rate_{name}", gbs * SEQ)
        real_per_step = split["tokens"] / split["samples"] * gbs
        steps_per_epoch = -(-split["samples"] // gbs)
        result[name] = {"samples": split["samples"], "conversations": split["conversations"], "fill": split["fill"],
                        "fastest_step_seconds": round(fastest, 4), "median_step_seconds": round(median, 4),
                        "real_tokens_per_s": round(real_per_step / fastest, 1),
                        "real_tokens_per_s_median": round(real_per_step / median, 1),
                        "steps_per_epoch": steps_per_epoch, "epoch_seconds": round(steps_per_epoch * fastest, 1)}
    result["packed_speedup"] = round(result["pack"]["real_tokens_per_s"] / result["nopack"]["real_tokens_per_s"], 2)
    if args.throughput_only:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    sft(work / "data_pack", "pack", [f"sft.epochs={args.epochs}"])
    result["pack"]["final_val_loss"] = read_metrics(work / "runs" / "pack")[-1].get("val_loss")

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
