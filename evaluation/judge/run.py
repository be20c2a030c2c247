"""Run a judge-scored benchmark: generate the model's two-turn answers with the lm-eval model
(through its chat template), grade them with the judge, aggregate as the benchmark's authors do.

Per question: turn 1 is the chat ``[user q1]``; turn 2 is ``[user q1, assistant a1, user q2]``
(the model's own first answer in context, as LogicKor's generator and FastChat do). Every answer
of a turn is generated in one ``generate_until`` batch. The judge is called once per
(question, turn) through :class:`evaluation.judge.client.JudgeClient` (cached), and each graded
item records the judge model beside its rating.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from evaluation.backends import EvalError
from evaluation.judge.benchmarks import JUDGE_BENCHMARKS, Question
from evaluation.judge.client import JudgeClient


def load_questions(bench, data_dir: Path | None, limit: float | None, cache_dir: Path | None) -> list[Question]:
    """Rows of the benchmark's Hub dataset (or ``data_dir/<hub id>``), first split, in file order."""
    import datasets

    source = str(data_dir / bench.hub_dataset) if data_dir is not None else bench.hub_dataset
    try:
        loaded = datasets.load_dataset(source, cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as err:  # datasets raises many types for a missing/malformed copy
        raise EvalError(f"{bench.name}: cannot read {source}: {err}") from err
    split = "train" if "train" in loaded else "test" if "test" in loaded else next(iter(loaded))
    try:
        questions = [bench.question(row) for row in loaded[split]]
    except (KeyError, ValueError) as err:
        raise EvalError(f"{bench.name}: {source} does not have the benchmark's fields: {err}") from err
    if limit is not None:
        questions = questions[: int(limit) if limit >= 1 else max(1, int(len(questions) * limit))]
    return questions


def generate(lm, chats: list[list[dict[str, str]]], gen_kwargs: list[dict[str, Any]], seed: int) -> list[str]:
    """One ``generate_until`` call over chat-templated prompts (lm-eval HF or vLLM model)."""
    from lm_eval.api.instance import Instance

    try:
        import torch

        torch.manual_seed(seed)  # sampled categories (KoMT-Bench writing/roleplay/stem/humanities) repeat exactly
    except ImportError:
        pass
    requests = [Instance(request_type="generate_until", doc={}, arguments=(lm.apply_chat_template(chat), kw),
                         idx=0, metadata=("judge", i, 1)) for i, (chat, kw) in enumerate(zip(chats, gen_kwargs))]
    return [a.strip() for a in lm.generate_until(requests)]


def effective_max_gen_toks(lm, wanted: int) -> int:
    """The benchmark's answer length, capped so that HF's context (``lm.max_length``) keeps half for the prompt."""
    max_length = getattr(lm, "max_length", None)
    return min(wanted, max_length // 2) if isinstance(max_length, int) and max_length > 0 else wanted


def run_benchmark(name: str, lm, client: JudgeClient, *, data_dir: Path | None, limit: float | None, seed: int,
                  max_gen_toks: int | None, cache_dir: Path | None = None) -> tuple[dict[str, Any], list[dict]]:
    """Returns (summary entry, per-item records). Raises EvalError for data the benchmark cannot grade."""
    bench = JUDGE_BENCHMARKS[name]()
    questions = load_questions(bench, data_dir, limit, cache_dir)
    if not questions:
        raise EvalError(f"{name}: no questions in the data")
    gen_toks = effective_max_gen_toks(lm, max_gen_toks or bench.max_gen_toks)
    started = time.time()
    kwargs = [bench.gen_kwargs(q, gen_toks) for q in questions]
    first = generate(lm, [[{"role": "user", "content": q.turns[0]}] for q in questions], kwargs, seed)
    second = generate(lm, [[{"role": "user", "content": q.turns[0]}, {"role": "assistant", "content": a},
                            {"role": "user", "content": q.turns[1]}] for q, a in zip(questions, first)], kwargs, seed)
    generation_s = time.time() - started

    started, records = time.time(), []
    try:
        plans = [(q, (a1, a2), bench.judge_requests(q, (a1, a2))) for q, a1, a2 in zip(questions, first, second)]
    except ValueError as err:
        raise EvalError(f"{name}: {err}") from err
    for q, answers, requests in plans:
        for req in requests:
            judgement = client.complete(req.messages, temperature=bench.judge_temperature, max_tokens=req.max_tokens)
            rating = bench.parse(judgement)
            record = {"question_id": q.id, "category": q.category, "turn": req.turn, "prompt_name": req.prompt_name,
                      "question": q.turns[req.turn - 1], "answer": answers[req.turn - 1],
                      "judge_model": client.config.model, "judgement": judgement, "rating": rating}
            if hasattr(bench, "penalised"):
                record["penalised"] = None if rating is None else bench.penalised(rating, q, answers[req.turn - 1])
            records.append(record)
    judge_s = time.time() - started

    unparseable = [r for r in records if r["rating"] is None]
    agg = bench.aggregate(records)
    entry = {
        **agg, "raw": agg["score"], "judge_model": client.config.model, "judge_url": client.config.url,
        "judge_scale": list(bench.scale), "n_questions": len(questions), "n_judgements": len(records),
        "n_unparseable": len(unparseable),
        "unparseable": [{"question_id": r["question_id"], "turn": r["turn"], "judgement": r["judgement"][:200]}
                        for r in unparseable],
        "generation": {"max_gen_toks": gen_toks, "chat_template": True,
                       "temperatures": sorted({k.get("temperature", 0.0) for k in kwargs})},
        "timing_s": {"generation": round(generation_s, 3), "judge": round(judge_s, 3)},
    }
    return entry, records
