"""Chat-model checks on a Hugging Face directory: held-out assistant-token loss and whether
generation ends at ``<|eot_id|>``.

Both go through the directory's own chat template (``tokenizer.apply_chat_template``), as any
``transformers`` user would chat with the model; the loss mask comes from
``data_prep.sft.chat.render`` with the same tokenizer (the ids are checked to agree).

* :func:`assistant_loss` — mean cross-entropy (nats/token) over the assistant tokens and their
  closing ``<|eot_id|>`` of held-out conversations: what SFT optimises, measured the same way for
  the base and the fine-tuned model.
* :func:`chat_generations` — greedy replies to the first user turn of each conversation, with the
  generation-config eos ids (``<|end_of_text|>``, ``<|eot_id|>``); ``ends_with_eot`` says whether
  the model closed its turn itself within ``max_new_tokens``.
"""
from __future__ import annotations

import os
from pathlib import Path


def _load(hf_dir: str | Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    return tok, model


def _ids(out) -> list[int]:
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def assistant_loss(hf_dir: str | Path, conversations: list[list[dict]], midm_tokenizer) -> dict:
    """``{"loss": nats/token, "tokens": n}`` over the assistant spans of ``conversations``.

    Raises ValueError when the directory's chat template renders ids other than ``render`` does.
    """
    import torch

    from data_prep.sft.chat import render

    tok, model = _load(hf_dir)
    total, count = 0.0, 0
    for messages in conversations:
        ids, mask = render(messages, midm_tokenizer)
        if _ids(tok.apply_chat_template(messages, tokenize=True)) != ids:
            raise ValueError(f"{hf_dir}: chat template ids differ from data_prep.sft.chat.render")
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x).logits[0, :-1].float()
        target = torch.tensor(mask[1:], dtype=torch.bool)
        losses = torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="none")
        total += float(losses[target].sum())
        count += int(target.sum())
    return {"loss": total / max(count, 1), "tokens": count}


def chat_generations(hf_dir: str | Path, conversations: list[list[dict]], *, max_new_tokens: int = 48) -> dict:
    """Greedy replies to each conversation's opening turn(s): ``{"share_ending_with_eot", "items"}``."""
    import torch

    from tokenizer.decode import decode_ids

    tok, model = _load(hf_dir)
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    items, ended = [], 0
    for messages in conversations:
        prompt = messages[:2] if messages[0]["role"] == "system" else messages[:1]
        ids = torch.tensor([_ids(tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True))])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        stop = bool(new) and new[-1] == eot
        ended += stop
        reply = decode_ids(tok, new)  # no U+FFFD for a character cut off at max_new_tokens
        items.append({"prompt": prompt[-1]["content"], "reply": reply.text, "dangling_bytes": reply.dangling_bytes,
                      "invalid_bytes": reply.invalid_bytes, "ends_with_eot": stop, "new_tokens": len(new)})
    return {"share_ending_with_eot": ended / max(len(items), 1), "items": items}


def read_conversations(path: str | Path, limit: int | None = None) -> list[list[dict]]:
    """Checked messages of a chat JSONL file (any ``midm data sft`` input form), malformed lines skipped."""
    from data_prep.sft.records import RecordError, parse_line

    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(parse_line(line))
        except RecordError:
            continue
        if limit is not None and len(out) >= limit:
            break
    return out


__all__ = ["assistant_loss", "chat_generations", "read_conversations"]
