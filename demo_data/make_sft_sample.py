"""Rebuild the bundled Korean conversation samples from ../shared/data (run from the repository root).

songys/Chatbot_data (MIT) is single-turn Q/A; we turn it into chat records in the three input
forms ``midm data sft`` reads: ``messages`` (30% with a system prompt, 20% two-turn — two
consecutive pairs of the same topic label), ``instruction/input/output`` and ``prompt/response``.
Rows 0–3,999 are in the pretraining demo sample (``make_sample.py``), so the SFT samples use rows
from 4,000 on; the demo's held-out set and the test set are disjoint from its training set.
Licenses: see demo_data/ATTRIBUTION.md and tests/data/sft/ATTRIBUTION.md.
"""
from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path

SHARED = Path(os.environ.get("MIDM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]
SYSTEM = "너는 사용자의 고민을 들어 주는 친절한 한국어 상담 챗봇이야."


def rows() -> list[dict]:
    with open(SHARED / "corpora/songys_chatbot_data/ChatbotData.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def conversations(pairs: list[dict], rng: random.Random) -> list[dict]:
    out, i = [], 0
    while i < len(pairs):
        r = pairs[i]
        roll = rng.random()
        if roll < 0.2 and i + 1 < len(pairs) and pairs[i + 1]["label"] == r["label"]:
            s = pairs[i + 1]
            msgs = [{"role": "user", "content": r["Q"]}, {"role": "assistant", "content": r["A"]},
                    {"role": "user", "content": s["Q"]}, {"role": "assistant", "content": s["A"]}]
            i += 2
        else:
            msgs = [{"role": "user", "content": r["Q"]}, {"role": "assistant", "content": r["A"]}]
            i += 1
        if rng.random() < 0.3:
            msgs = [{"role": "system", "content": SYSTEM}] + msgs
        form = rng.random()
        if len(msgs) == 2 and form < 0.1:
            out.append({"instruction": msgs[0]["content"], "input": "", "output": msgs[1]["content"]})
        elif len(msgs) == 2 and form < 0.2:
            out.append({"prompt": msgs[0]["content"], "response": msgs[1]["content"]})
        else:
            out.append({"messages": msgs})
    return out


def write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def main() -> None:
    rng = random.Random(1234)
    pool = rows()[4000:]
    rng.shuffle(pool)
    write(REPO / "demo_data/sft/chatbot_train.jsonl", conversations(pool[:2400], rng))
    write(REPO / "demo_data/sft/chatbot_heldout.jsonl", conversations(pool[2400:2600], rng))
    write(REPO / "tests/data/sft/chatbot.jsonl", conversations(pool[2600:2680], rng))


if __name__ == "__main__":
    main()
