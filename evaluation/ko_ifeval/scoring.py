"""Ko-IFEval scoring for lm-eval: IFEval's strict and loose accuracies with the Korean checkers.

Same definitions as lm-eval's ``lm_eval/tasks/ifeval/utils.py`` (from Google's IFEval,
arXiv:2311.07911): *strict* runs each checker on the response; *loose* also accepts the response
with its first and/or last line removed and/or ``*`` removed (8 variants). A prompt counts when all
its instructions are followed (prompt level); instruction level pools every instruction.
The only difference is the registry: :data:`evaluation.ko_ifeval.instructions.INSTRUCTION_DICT`.
"""
from __future__ import annotations

from typing import Any

from evaluation.ko_ifeval.instructions import INSTRUCTION_DICT


def _checker(instruction_id: str, kwargs: dict[str, Any] | None, prompt: str):
    cls = INSTRUCTION_DICT.get(instruction_id)
    if cls is None:
        raise KeyError(f"Ko-IFEval: unknown instruction id {instruction_id!r}")
    checker = cls(instruction_id)
    checker.build_description(**{k: v for k, v in (kwargs or {}).items() if v})  # the Hub rows hold nulls
    args = checker.get_instruction_args()
    if args and "prompt" in args:
        checker.build_description(prompt=prompt)
    return checker


def loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    first, last, both = ("\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(),
                         "\n".join(lines[1:-1]).strip())
    base = [response, first, last, both]
    return base + [r.replace("*", "") for r in base]


def follows(doc: dict, response: str, *, loose: bool) -> list[bool]:
    """One bool per instruction of ``doc`` (keys ``instruction_id_list``, ``kwargs``, ``prompt``)."""
    candidates = loose_variants(response) if loose else [response]
    out = []
    for instruction_id, kwargs in zip(doc["instruction_id_list"], doc["kwargs"]):
        checker = _checker(instruction_id, kwargs, doc["prompt"])
        out.append(any(r.strip() and checker.check_following(r) for r in candidates))
    return out


def process_results(doc: dict, results: list[str]) -> dict[str, Any]:
    """lm-eval ``process_results`` hook: ``results[0]`` is the generated response."""
    strict = follows(doc, results[0], loose=False)
    loose = follows(doc, results[0], loose=True)
    return {"prompt_level_strict_acc": all(strict), "inst_level_strict_acc": strict,
            "prompt_level_loose_acc": all(loose), "inst_level_loose_acc": loose}


def agg_inst_level_acc(items: list[list[bool]]) -> float:
    flat = [x for item in items for x in item]
    return sum(flat) / len(flat)
