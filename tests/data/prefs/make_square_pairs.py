"""Rebuild ``square_pairs.jsonl`` from ../shared/data (or the ``shared/data`` directory given as argument).

SQuARe (Lee et al., ACL 2023, arXiv 2305.17696) labels responses to sensitive Korean questions as
acceptable or not. Every (acceptable, non-acceptable) combination for the same question is one
preference pair: prompt = the question, chosen = the acceptable response, rejected = the other.
Questions keep their order of first appearance, so a contiguous split never separates two pairs
of one question except at a single boundary.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SHARED_DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data"
SHARED = SHARED_DATA / "filters" / "kosbi_square" / "data" / "SQuARe"
OUT = Path(__file__).resolve().parent / "square_pairs.jsonl"


def main() -> None:
    responses = json.loads((SHARED / "response_test_ood.json").read_text(encoding="utf-8"))
    by_question: dict[str, dict[int, list[dict]]] = {}
    for row in responses:
        by_question.setdefault(row["question"], {0: [], 1: []})[row["acceptable?"]].append(row)
    lines = []
    for q, (question, groups) in enumerate(by_question.items()):
        for a, good in enumerate(groups[1]):
            for u, bad in enumerate(groups[0]):
                lines.append({"id": f"square-ood-{q:03d}-{a}-{u}", "category": good["question_category"],
                              "prompt": question, "chosen": good["response"], "rejected": bad["response"]})
    OUT.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    print(f"{len(lines)} pairs from {sum(1 for g in by_question.values() if g[0] and g[1])} questions -> {OUT}")


if __name__ == "__main__":
    main()
