"""LogicKor and Ko-MTBench as their authors grade them: data fields, generation settings, the
published judge prompts (``prompts/*.json``, verbatim, sources inside), score parsing and aggregation.

LogicKor (github instructkr/LogicKor, ``generator.py`` / ``evaluator.py`` / ``score.py``):
42 two-turn questions in 6 categories; answers greedy; the judge sees the system prompt
``JUDGE_TEMPLATE[single_turn|multi_turn]`` and grades turn 1 alone ("single") and the follow-up in
context ("multi"), replying ``평가: … 점수: N`` (1–10; 0 for a non-Korean answer); temperature 0.
Score = (mean single + mean multi) / 2, on 0–10.

Ko-MTBench = KoMT-Bench (LG AI Research, EXAONE 3.0 report; github LG-AI-EXAONE/KoMT-Bench, FastChat
``llm_judge``): 80 two-turn questions in 8 categories; sampling temperature per category (FastChat
``temperature_config``), 1024 new tokens; FastChat single grading with the Korean prompts
``single-v1`` / ``single-v1-multi-turn`` and the ``-math-`` variants with a reference answer for math,
reasoning and coding; judge temperature 0, 2048 tokens; rating ``[[N]]`` (1–10). Score = mean over
all (question, turn) ratings; KoMT-Bench's default applies a square-root penalty to ratings of
non-Korean answers (not questions 138 and 140): both numbers are reported, the penalised one is the
score. The language detector is ``langdetect`` (KoMT-Bench used MediaPipe's; not installable here).

Unparseable judgements (no score in the judge's reply, or one outside the scale) are never given a
score: they are counted, listed, and left out of the means (LogicKor scored them 0, FastChat
dropped them silently).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPTS = Path(__file__).resolve().parent / "prompts"


@dataclass(frozen=True)
class Question:
    id: str
    category: str
    turns: tuple[str, str]
    references: tuple[str | None, str | None]


@dataclass(frozen=True)
class JudgeRequest:
    turn: int                       # 1 or 2 (LogicKor: 1 = "single", 2 = "multi")
    messages: list[dict[str, str]]
    max_tokens: int | None
    prompt_name: str


def _load(name: str) -> dict:
    return json.loads((PROMPTS / f"{name}.json").read_text(encoding="utf-8"))


class LogicKor:
    name = "logickor"
    hub_dataset = "maywell/LogicKor"
    scale = (0.0, 10.0)
    max_gen_toks = 4096             # generator.py: max_tokens = model_len (4096 on the leaderboard)
    judge_temperature = 0.0
    _score = re.compile(r"점수:\s*(\d+(\.\d+)?)")

    def __init__(self):
        self.prompts = _load("logickor")

    def question(self, row: dict[str, Any]) -> Question:
        turns = row.get("questions") or row.get("turns")
        refs = list(row.get("references") or [None, None]) + [None, None]
        if not turns or len(turns) < 2:
            raise ValueError(f"LogicKor row {row.get('id')!r} needs two questions")
        return Question(str(row["id"]), str(row["category"]), (turns[0], turns[1]), (refs[0] or None, refs[1] or None))

    def gen_kwargs(self, q: Question, max_gen_toks: int) -> dict[str, Any]:
        return {"until": [], "max_gen_toks": max_gen_toks, "do_sample": False, "temperature": 0.0}

    def judge_requests(self, q: Question, answers: tuple[str, str]) -> list[JudgeRequest]:
        p = self.prompts
        out = []
        for turn, system in ((1, "single_turn"), (2, "multi_turn")):
            text = p["user_header"] + f"**Question**\n{q.turns[0]}"
            if q.references[0]:
                text += f"\n\n**Additional Reference**\n{q.references[0]}"
            text += f"\n\n**Model's Response**\n{answers[0]}"
            if turn == 2:
                text += f"\n\n**Follow-up Question.**\n{q.turns[1]}"
                if q.references[1]:
                    text += f"\n\n**Additional Reference**\n{q.references[1]}"
                text += f"\n\n**Model's Response**\n{answers[1]}"
            text += p["user_footer"]
            out.append(JudgeRequest(turn, [{"role": "system", "content": p["system"][system]},
                                           {"role": "user", "content": text}], None, system))
        return out

    def parse(self, judgement: str) -> float | None:
        match = self._score.search(judgement.replace("*", ""))
        if not match:
            return None
        value = float(match.group(1))
        return value if self.scale[0] <= value <= self.scale[1] else None

    def aggregate(self, graded: list[dict[str, Any]]) -> dict[str, Any]:
        by_turn = {t: [g["rating"] for g in graded if g["turn"] == t and g["rating"] is not None] for t in (1, 2)}
        single, multi = (_mean(by_turn[1]), _mean(by_turn[2]))
        categories = sorted({g["category"] for g in graded})
        return {"score": None if single is None or multi is None else (single + multi) / 2,
                "single_turn": single, "multi_turn": multi,
                "categories": {c: {"single_turn": _mean([g["rating"] for g in graded if g["category"] == c
                                                         and g["turn"] == 1 and g["rating"] is not None]),
                                   "multi_turn": _mean([g["rating"] for g in graded if g["category"] == c
                                                        and g["turn"] == 2 and g["rating"] is not None])}
                               for c in categories}}


class KoMTBench:
    name = "ko_mtbench"
    hub_dataset = "LGAI-EXAONE/KoMT-Bench"
    scale = (1.0, 10.0)
    max_gen_toks = 1024                     # FastChat gen_model_answer --max-new-token
    judge_temperature = 0.0
    judge_max_tokens = 2048                 # FastChat chat_completion_openai(max_tokens=2048)
    need_ref = ("math", "reasoning", "coding", "arena-hard-200")   # FastChat NEED_REF_CATS
    temperature = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
                   "reasoning": 0.0, "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
    no_penalty_ids = ("138", "140")         # KoMT-Bench detector.py: JSON answers may be English
    _score = re.compile(r"\[\[(\d+\.?\d*)\]\]")
    _score_backup = re.compile(r"\[(\d+\.?\d*)\]")

    def __init__(self):
        self.prompts = _load("komtbench")["prompts"]

    def question(self, row: dict[str, Any]) -> Question:
        turns = row.get("turns") or row.get("questions")
        refs = list(row.get("reference") or row.get("references") or []) + [None, None]
        qid = row.get("question_id", row.get("id"))
        if not turns or len(turns) < 2 or qid is None:
            raise ValueError(f"KoMT-Bench row {qid!r} needs question_id and two turns")
        return Question(str(qid), str(row["category"]), (turns[0], turns[1]), (refs[0] or None, refs[1] or None))

    def gen_kwargs(self, q: Question, max_gen_toks: int) -> dict[str, Any]:
        temperature = self.temperature.get(q.category, 0.7)
        kwargs: dict[str, Any] = {"until": [], "max_gen_toks": max_gen_toks, "do_sample": temperature >= 1e-4}
        if kwargs["do_sample"]:
            kwargs["temperature"] = temperature
        else:
            kwargs["temperature"] = 0.0
        return kwargs

    def judge_requests(self, q: Question, answers: tuple[str, str]) -> list[JudgeRequest]:
        math_ = q.category in self.need_ref
        if math_ and not (q.references[0] and q.references[1]):
            raise ValueError(f"KoMT-Bench question {q.id} ({q.category}) is graded against a reference answer, "
                             "and the data has none: add the `reference` column (FastChat "
                             "reference_answer_ko/gpt-4.jsonl) to the local copy")
        out = []
        for turn in (1, 2):
            name = ("single-math-v1" if math_ else "single-v1") + ("-multi-turn" if turn == 2 else "")
            template = self.prompts[name]
            fields = {"question": q.turns[0], "answer": answers[0], "question_1": q.turns[0],
                      "question_2": q.turns[1], "answer_1": answers[0], "answer_2": answers[1],
                      "ref_answer_1": q.references[0] or "", "ref_answer_2": q.references[1] or ""}
            user = template["prompt_template"].format(**fields)
            out.append(JudgeRequest(turn, [{"role": "system", "content": template["system_prompt"]},
                                           {"role": "user", "content": user}], self.judge_max_tokens, name))
        return out

    def parse(self, judgement: str) -> float | None:
        match = self._score.search(judgement) or self._score_backup.search(judgement)
        if not match:
            return None
        value = float(match.group(1))
        return value if self.scale[0] <= value <= self.scale[1] else None

    def penalised(self, rating: float, q: Question, answer: str) -> float:
        """KoMT-Bench's square-root penalty for an answer not detected as Korean."""
        return rating if q.id in self.no_penalty_ids or detect_language(answer) == "ko" else math.sqrt(rating)

    def aggregate(self, graded: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [g for g in graded if g["rating"] is not None]
        return {"score": _mean([g["penalised"] for g in ok]), "raw_unpenalised": _mean([g["rating"] for g in ok]),
                "turn_1": _mean([g["penalised"] for g in ok if g["turn"] == 1]),
                "turn_2": _mean([g["penalised"] for g in ok if g["turn"] == 2]),
                "non_korean_answers": sum(1 for g in ok if g["penalised"] != g["rating"]),
                "categories": {c: _mean([g["penalised"] for g in ok if g["category"] == c])
                               for c in sorted({g["category"] for g in graded})}}


def detect_language(text: str) -> str | None:
    """ISO code by ``langdetect`` (seeded, deterministic); None for text it cannot classify."""
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0
    try:
        return detect(text)
    except LangDetectException:
        return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


JUDGE_BENCHMARKS = {b.name: b for b in (LogicKor, KoMTBench)}
