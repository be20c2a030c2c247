"""LLM-as-judge benchmarks (LogicKor, Ko-MTBench) graded through any OpenAI-compatible endpoint.

- :mod:`.benchmarks` — each benchmark's published judge prompt, scale, parsing and aggregation;
- :mod:`.client` / :mod:`.cache` — the HTTP client (retries, back-off) and the judgement cache;
- :mod:`.run` — answer generation with the lm-eval model and grading;
- :mod:`.serve` — a small OpenAI-compatible server over a local HF model (offline judging, tests).
"""
