"""DPO at tiny scale on real Korean preference pairs (SQuARe): held-out reward accuracy and margin
before/after DPO, and how much held-out SFT (assistant-token) loss DPO costs.

    nice python benchmarks/dpo_tiny.py [--demo-out demo_out | --sft CKPT --tokenizer DIR] [--work DIR] [--epochs 3]

The starting point is an SFT model and its tokenizer: ``--sft``/``--tokenizer``, else a finished
``midm demo`` output (``tokenizer/``, ``runs/mini_sft``) when ``--demo-out`` has one, else a small lineage built
here with the same CLI — ``midm tokenizer train`` (4,096 ids) and ``midm data tokenize`` on the bundled
web sample, ``midm train --recipe tiny_mini``, ``midm data sft`` + ``midm sft --recipe tiny_sft`` on
the bundled conversations (songys/Chatbot_data). Then:

1. ``midm data prefs`` on the SQuARe pairs (``tests/data/prefs``, MIT) with ``--valid-fraction``:
   held-out pairs are those of held-out *prompts*;
2. ``midm dpo --recipe tiny_dpo --reference SFT`` (the policy starts from the SFT model);
3. ``midm convert to-hf`` of the SFT (= reference) and the DPO model, then through each one's chat
   template (``evaluation/preference.py``): on the held-out pairs the implicit-reward accuracy and
   mean margin (β-scaled log-ratios against the SFT model; both are 0 before DPO by definition) and
   the model's own preference log π(chosen) > log π(rejected) before and after; on the held-out
   conversations (``demo_data/sft/chatbot_heldout.jsonl``) the assistant-token loss before and after.

Prints one JSON line and writes it to ``--out`` (default benchmarks/results/dpo_tiny.json).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from megatron_ext.run_files import read_metrics  # noqa: E402
from midm.runs import run_midm  # noqa: E402

PAIRS = REPO / "tests" / "data" / "prefs" / "square_pairs.jsonl"
WEB = REPO / "demo_data" / "web_sample.jsonl.gz"
SFT_TRAIN = REPO / "demo_data" / "sft" / "chatbot_train.jsonl"
SFT_HELDOUT = REPO / "demo_data" / "sft" / "chatbot_heldout.jsonl"
SEQ = 256
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny models on a shared box: extra intra-op threads only spin


def _sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


def build_sft_model(work: Path, logs: Path, pretrain_steps: int, sft_epochs: float) -> tuple[Path, Path, dict]:
    """Tokenizer → pretrained ``tiny_mini`` → ``tiny_sft`` through the CLI; returns (tokenizer, SFT ckpt, info)."""
    tok, runs = work / "tokenizer", work / "runs"
    if not (tok / "tokenizer.json").is_file():
        run_midm(["tokenizer", "train", "--input", str(WEB), "--vocab-size", "4096", "--output", str(tok)],
                 logs / "tokenizer.log")
    prefix = work / "tokens" / "web"
    if not Path(f"{prefix}.idx").is_file():
        run_midm(["data", "tokenize", str(WEB), str(prefix), "--tokenizer", str(tok)], logs / "tokenize.log")
    base = runs / "base" / "checkpoints"
    run_midm(["train", "--recipe", "tiny_mini", *_sets(
        f"data.blend={prefix}", "model.vocab_size=4096", f"logging.dir={runs}", "logging.run_name=base",
        f"train.steps={pretrain_steps}", f"train.eval_interval={pretrain_steps}", "logging.tensorboard=false",
        f"checkpoint.save_interval={pretrain_steps}", f"scheduler.warmup_steps={pretrain_steps // 10}")],
        logs / "pretrain.log", nice=10, env=ONE_THREAD)
    sft_data = work / "sft_data"
    run_midm(["data", "sft", str(SFT_TRAIN), str(sft_data), "--tokenizer", str(tok), "--seq-length", str(SEQ)],
             logs / "sft.log")
    run_midm(["sft", "--recipe", "tiny_sft", "--data", str(sft_data), "--base", str(base),
              *_sets(f"logging.dir={runs}", "logging.run_name=sft", f"sft.epochs={sft_epochs}",
                     "logging.tensorboard=false")], logs / "sft.log", nice=10, env=ONE_THREAD)
    info = {"pretrain": _curve(runs / "base"), "sft": _curve(runs / "sft")}
    return tok, runs / "sft" / "checkpoints", info


def _curve(run_dir: Path) -> dict:
    records = read_metrics(run_dir)
    val = [r["val_loss"] for r in records if r.get("val_loss") is not None]
    return {"steps": records[-1]["step"], "final_loss": round(records[-1]["loss"], 4),
            "final_val_loss": round(val[-1], 4) if val else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-out", type=Path, default=REPO / "demo_out")
    parser.add_argument("--sft", type=Path, help="SFT checkpoint to start from (with --tokenizer)")
    parser.add_argument("--tokenizer", type=Path, help="its tokenizer directory")
    parser.add_argument("--work", type=Path, default=Path("/tmp/midm_dpo_bench"))
    parser.add_argument("--pairs", type=Path, default=PAIRS, help="preference JSONL (default: the SQuARe sample)")
    parser.add_argument("--valid-fraction", type=float, default=0.25, help="held-out share of prompts")
    parser.add_argument("--epochs", type=float, default=3.0, help="DPO epochs over the training pairs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for the DPO run (repeatable), e.g. optimizer.lr=3e-4")
    parser.add_argument("--pretrain-steps", type=int, default=300, help="without a demo output: base LM steps")
    parser.add_argument("--sft-epochs", type=float, default=2.0, help="without a demo output: SFT epochs")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dpo_tiny.json")
    args = parser.parse_args(argv)
    work, logs = args.work, args.work / "logs"
    started = time.perf_counter()
    result: dict = {"benchmark": "dpo_tiny", "pairs_file": str(args.pairs), "epochs": args.epochs,
                    "overrides": args.overrides}
    demo_tok, demo_sft = args.demo_out / "tokenizer", args.demo_out / "runs" / "mini_sft" / "checkpoints"
    if args.sft and args.tokenizer:
        tok, sft = args.tokenizer, args.sft
        result["sft_model"] = str(args.sft)
    elif (demo_tok / "tokenizer.json").is_file() and (demo_sft / "latest").is_file():
        tok, sft = demo_tok, demo_sft
        result["sft_model"] = f"demo output {args.demo_out}"
    else:
        tok, sft, info = build_sft_model(work, logs, args.pretrain_steps, args.sft_epochs)
        result["sft_model"] = {"built_here": str(work), **info}

    prefs = work / "prefs"
    run_midm(["data", "prefs", str(args.pairs), str(prefs), "--tokenizer", str(tok), "--seq-length", str(SEQ),
              "--valid-fraction", str(args.valid_fraction)], logs / "prefs.log")
    stats = json.loads((prefs / "stats.json").read_text())
    result["data"] = {k: stats[k] for k in ("records_read", "kept", "dropped", "balanced")}
    result["data"]["pairs"] = {k: v["pairs"] for k, v in stats["splits"].items()}
    runs = work / "runs"
    run_midm(["dpo", "--recipe", "tiny_dpo", "--reference", str(sft), "--data", str(prefs), "--resume", "none",
              *_sets(f"logging.dir={runs}", "logging.run_name=dpo", f"dpo.epochs={args.epochs}",
                     "logging.tensorboard=false", *args.overrides)], logs / "dpo.log", nice=10, env=ONE_THREAD)
    records = read_metrics(runs / "dpo")
    last_val = [r for r in records if r.get("val_loss") is not None][-1]
    result["dpo_run"] = {"steps": records[-1]["step"], "first_loss": records[0]["loss"],
                         "final_train_reward_accuracy": records[-1]["reward_accuracy"],
                         **{k: round(last_val[k], 4) for k in ("val_loss", "val_reward_accuracy", "val_margin",
                                                               "val_sft_loss")}}

    for name, ckpt in (("sft", sft), ("dpo", runs / "dpo" / "checkpoints")):
        run_midm(["convert", "to-hf", "--checkpoint", str(ckpt), "--output", str(work / "hf" / name), "--tokenizer",
                  str(tok), "--dtype", "fp32"], logs / "convert.log")
    from data_prep.prefs.build import held_out
    from data_prep.prefs.records import PairError, parse_line
    from data_prep.sft.chat import load_chat_tokenizer
    from evaluation.chat import assistant_loss, read_conversations
    from evaluation.preference import pair_logprobs, preference_metrics
    from recipes import get_recipe

    pairs = []
    for line in args.pairs.read_text(encoding="utf-8").splitlines():
        try:
            pair = parse_line(line)
        except PairError:
            continue
        if held_out(pair.prompt, 1234, args.valid_fraction):
            pairs.append(pair)
    midm_tok = load_chat_tokenizer(tok)
    beta = get_recipe("tiny_dpo", args.overrides).dpo.beta
    logps = {name: pair_logprobs(work / "hf" / name, pairs, midm_tok) for name in ("sft", "dpo")}
    conversations = read_conversations(SFT_HELDOUT)
    result["heldout"] = {"pairs": len(pairs), "conversations": len(conversations), "beta": beta}
    for variant, name in (("before", "sft"), ("after", "dpo")):
        metrics = preference_metrics(logps[name], logps["sft"], beta)
        loss = assistant_loss(work / "hf" / name, conversations, midm_tok)
        result[f"{variant}_dpo"] = {**{k: round(v, 4) for k, v in metrics.items()},
                                    "heldout_sft_loss": round(loss["loss"], 4), "assistant_tokens": loss["tokens"]}
    result["sft_loss_increase"] = round(result["after_dpo"]["heldout_sft_loss"]
                                        - result["before_dpo"]["heldout_sft_loss"], 4)
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
