"""The demo's post-training stages: SFT of the Mini (and the Base) on Korean conversations, then
chat measurements through the exported models' chat template.

``sft``: ``midm data sft`` on the bundled songys/Chatbot_data sample (``demo_data/sft``), ``midm sft``
from the distilled Mini and from the depth-up-scaled Base, ``midm convert to-hf`` of both (chat
template and ``<|eot_id|>`` eos travel along). ``chat``: held-out assistant-token loss before and
after SFT, and greedy replies to held-out questions (``evaluation/chat.py``): how many end with
``<|eot_id|>``.
"""
from __future__ import annotations

import json
from pathlib import Path

from megatron_ext.run_files import read_curve

REPO = Path(__file__).resolve().parents[1]
SFT_TRAIN = REPO / "demo_data" / "sft" / "chatbot_train.jsonl"
SFT_HELDOUT = REPO / "demo_data" / "sft" / "chatbot_heldout.jsonl"
SFT_SEQ_LENGTH = 256
# pre-SFT model (demo_stages.MODELS key) → its SFT run; Base trains fewer epochs (it is ~3× slower per token)
SFT_MODELS = {"mini": ("mini_sft", "mini_distill", 1.0), "base": ("base_sft", "deep_dus", 0.5)}


def stage_sft(ctx, label: str) -> dict:
    from midm.demo_stages import _every, run

    data = ctx.path("sft", "data")
    run(ctx, label, "sft", ["data", "sft", str(SFT_TRAIN), str(data), "--tokenizer", str(ctx.path("tokenizer")),
                            "--seq-length", str(SFT_SEQ_LENGTH)])
    result = {"data": json.loads((data / "stats.json").read_text())}
    for name, (run_name, base_run, epochs) in SFT_MODELS.items():
        sets = [f"logging.dir={ctx.path('runs')}", f"logging.run_name={run_name}", "logging.tensorboard=false",
                f"sft.epochs={epochs * ctx.sft_epochs}", "train.eval_interval=25", *ctx.overrides]
        run(ctx, label, "sft", ["sft", "--recipe", "tiny_sft", "--data", str(data), "--base",
                                str(ctx.run_dir(base_run) / "checkpoints"), "--resume", "none",
                                *[a for s in sets for a in ("--set", s)]], show=_every(25))
        out = ctx.path("hf", f"{name}_sft")
        run(ctx, label, "sft", ["convert", "to-hf", "--checkpoint", str(ctx.run_dir(run_name) / "checkpoints"),
                                "--output", str(out), "--tokenizer", str(ctx.path("tokenizer")), "--dtype", "fp32"])
        result[name] = {"run": read_curve(ctx.run_dir(run_name)), "hf": str(out)}
    return result


def stage_chat(ctx, label: str) -> dict:
    import torch

    from data_prep.sft.chat import load_chat_tokenizer
    from evaluation.chat import assistant_loss, chat_generations, read_conversations

    torch.set_num_threads(1)  # tiny models, one sequence at a time: a second thread only waits

    heldout = read_conversations(SFT_HELDOUT)
    prompts = heldout[:ctx.chat_prompts]
    midm_tok = load_chat_tokenizer(ctx.path("tokenizer"))
    result: dict = {"heldout_conversations": len(heldout)}
    for name in SFT_MODELS:
        for variant, hf in (("before", ctx.path("hf", name)), ("after", ctx.path("hf", f"{name}_sft"))):
            loss = assistant_loss(hf, heldout, midm_tok)
            gens = chat_generations(hf, prompts)
            result.setdefault(name, {})[variant] = {"heldout_assistant_loss": loss["loss"],
                                                    "assistant_tokens": loss["tokens"],
                                                    "share_ending_with_eot": gens["share_ending_with_eot"],
                                                    "generations": gens["items"][:6]}
            print(f"{label} {name} {variant} SFT: held-out assistant loss {loss['loss']:.3f}, "
                  f"{gens['share_ending_with_eot']:.0%} of replies end with <|eot_id|>", flush=True)
    return result


def report_section(sft: dict | None, chat: dict | None, claims: list[str] | None = None) -> list[str]:
    """Markdown for the report (empty when the stages did not run); appends one claim per model to ``claims``."""
    from midm import report_format as fmt

    lines: list[str] = []
    if sft is not None:
        d = sft["data"]
        train = d["splits"]["train"]
        accounted = "every conversation accounted for" if d.get("balanced") else "**the accounting does not balance**"
        lines += ["## 7. Supervised fine-tuning (chat)", "",
                  f"`midm data sft` read **{fmt.count(d['conversations_read'])}** Korean conversations "
                  f"(songys/Chatbot_data), kept **{fmt.count(d['kept'])}**, truncated {fmt.count(d['truncated'])}, "
                  f"dropped {fmt.count(d['dropped_total'])} ({fmt.counts(d.get('dropped'))}); {accounted}. Packed into "
                  f"{fmt.count(train['samples'])} training samples of {fmt.count(d['seq_length'])} tokens "
                  f"({train['fill']:.0%} full). Loss on assistant tokens and their `<|eot_id|>` only.", "",
                  "| model | SFT steps | final train loss | final validation loss |", "|---|---:|---:|---:|"]
        for name in SFT_MODELS:
            if name in sft:
                c = sft[name]["run"]
                lines.append(f"| {name} | {fmt.count(c['steps'])} | {fmt.loss(c.get('final_loss'))} | "
                             f"{fmt.loss(c.get('final_val_loss'))} |")
        lines.append("")
    if chat is not None:
        lines += [f"Held-out conversations: {fmt.count(chat['heldout_conversations'])} (assistant-token loss); replies "
                  "are greedy, through each exported model's chat template.", "",
                  "| model | held-out assistant loss | replies ending with `<|eot_id|>` |", "|---|---:|---:|"]
        for name in SFT_MODELS:
            for variant in ("before", "after"):
                m = chat.get(name, {}).get(variant)
                if m:
                    lines.append(f"| {name} {variant} SFT | {m['heldout_assistant_loss']:.3f} | "
                                 f"{m['share_ending_with_eot']:.0%} |")
        lines.append("")
        for name in SFT_MODELS:
            before, after = chat.get(name, {}).get("before"), chat.get(name, {}).get("after")
            if before and after:
                sentence = fmt.lower_is_better(f"SFT teaches the {name} to answer",
                                               (f"{name}-inst", after["heldout_assistant_loss"]),
                                               (f"{name} before SFT", before["heldout_assistant_loss"]),
                                               "held-out assistant loss")
                lines.append(f"- {sentence}")
                if claims is not None:
                    claims.append(sentence)
        lines += ["", "Chat answers to held-out questions (greedy), before and after SFT:", "",
                  "| model | question | before SFT | after SFT (-inst) |", "|---|---|---|---|"]
        for name in SFT_MODELS:
            befores = chat.get(name, {}).get("before", {}).get("generations", [])
            for i, item in enumerate(chat.get(name, {}).get("after", {}).get("generations", [])[:4]):
                before = befores[i]["reply"] if i < len(befores) else ""
                lines.append(f"| {name} | {fmt.cell(item['prompt'])} | {fmt.cell(before)} | {fmt.cell(item['reply'])} |")
        lines.append("")
    return lines
