"""Judge-scored benchmarks against a real OpenAI-compatible server on 127.0.0.1 wrapping a tiny local
Llama (``evaluation.judge.serve``: transformers ``generate``). The judge model is trained in the
fixture to answer in the judges' formats; it garbles some replies, as small judges do, so both the
parsed and the unparseable paths run. Checks: request format (published prompts, temperature,
max_tokens, model name), parsing, aggregation, counting of unparseable judgements, the cache (a
re-run sends nothing), retries with back-off."""
from __future__ import annotations

import json
import statistics

import pytest

from evaluation import cli, runner, tables
from evaluation.judge import serve
from evaluation.judge.benchmarks import KoMTBench, LogicKor
from evaluation.judge.cache import JudgeCache
from evaluation.judge.client import JudgeClient, JudgeConfig, JudgeError
from evaluation.tiny_models import build_tiny_judge, build_tiny_llama
from midm.cli import main as midm_main

pytestmark = pytest.mark.slow  # the judge fixture trains a tiny Llama (~20 s)
JUDGE_NAME = "tiny-judge"


@pytest.fixture(scope="module")
def judge_server(tmp_path_factory):
    model = build_tiny_judge(tmp_path_factory.mktemp("tiny_judge"))
    server, state = serve.serve(model, name=JUDGE_NAME, default_max_tokens=24)
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


@pytest.fixture(scope="module")
def judged_run(judge_server, tiny_chat_model, bench_dir, tmp_path_factory):
    url, state = judge_server
    out = tmp_path_factory.mktemp("judged") / "results.json"
    argv = ["--model", str(tiny_chat_model), "--tasks", "logickor,ko_mtbench", "--data-dir", str(bench_dir),
            "--output", str(out), "--device", "cpu", "--dtype", "float32", "--max-gen-toks", "8",
            "--judge", url, "--judge-model", JUDGE_NAME, "--judge-backoff", "0.01"]
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            mp.setenv(var, "0")
        first = len(state.requests)
        assert cli.main(argv) == 0
        requests = state.requests[first:]
        replies = list(state.replies[-len(requests):])
        summary = json.loads(out.read_text())
        again = len(state.requests)
        assert cli.main(argv) == 0           # the re-run: every judgement from the cache
        rerun = json.loads(out.read_text())
        sent_on_rerun = len(state.requests) - again
    return {"summary": summary, "rerun": rerun, "requests": requests, "replies": replies, "out": out,
            "sent_on_rerun": sent_on_rerun}


def test_parsing_follows_each_benchmark():
    lk, km = LogicKor(), KoMTBench()
    assert lk.parse("평가: 좋다.\n**점수:** 7") == 7.0                     # LogicKor strips '*'
    assert lk.parse("평가: 좋다.\n점수: 7.5점") == 7.5
    assert lk.parse("점수: 0") == 0.0                                      # non-Korean answers score 0
    assert lk.parse("점수: 11") is None and lk.parse("평가만 있다") is None   # off the scale / no score
    assert km.parse("설명… 점수: [[7]]") == 7.0 and km.parse("rating [6.5]") == 6.5  # FastChat's backup pattern
    assert km.parse("[[0]]") is None and km.parse("점수: 7") is None        # 1-10 only, bracketed only


def test_aggregation_follows_each_benchmark():
    from evaluation.judge.benchmarks import Question

    lk = LogicKor()
    graded = [{"category": "a", "turn": 1, "rating": 8.0}, {"category": "b", "turn": 1, "rating": 6.0},
              {"category": "a", "turn": 2, "rating": 4.0}, {"category": "b", "turn": 2, "rating": None}]
    out = lk.aggregate(graded)                 # (mean single + mean multi) / 2, not the mean of all
    assert out["single_turn"] == 7.0 and out["multi_turn"] == 4.0 and out["score"] == 5.5
    km = KoMTBench()
    english = "This answer is written entirely in English, not in Korean at all."
    korean = "이 답변은 한국어로 작성되었습니다. 평가를 받습니다."
    q, q138 = (Question(i, "writing", ("q1", "q2"), (None, None)) for i in ("1", "138"))
    assert km.penalised(9.0, q, english) == 3.0 and km.penalised(4.0, q, korean) == 4.0
    assert km.penalised(9.0, q138, english) == 9.0                     # JSON answers: no penalty
    graded = [{"category": "writing", "turn": 1, "rating": 9.0, "penalised": 3.0},
              {"category": "writing", "turn": 2, "rating": 4.0, "penalised": 4.0},
              {"category": "math", "turn": 1, "rating": None, "penalised": None}]
    out = km.aggregate(graded)
    assert out["score"] == 3.5 and out["raw_unpenalised"] == 6.5 and out["non_korean_answers"] == 1


def test_requests_use_the_published_prompts(judged_run):
    requests = judged_run["requests"]
    assert len(requests) == 2 * 3 + 2 * 3                                   # (turn 1, turn 2) × 3 questions × 2
    assert {r["model"] for r in requests} == {JUDGE_NAME} and {r["temperature"] for r in requests} == {0.0}
    lk, km = LogicKor(), KoMTBench()
    logickor = [r for r in requests if r["messages"][0]["content"] in lk.prompts["system"].values()]
    komt = [r for r in requests if r not in logickor]
    assert len(logickor) == 6 and all("max_tokens" not in r for r in logickor)  # LogicKor sends none
    for r in logickor:
        user = r["messages"][1]["content"]
        assert user.startswith(lk.prompts["user_header"] + "**Question**\n") and user.endswith("[[대화 종료. 평가 시작.]]")
        assert ("**Follow-up Question.**" in user) == (r["messages"][0]["content"] == lk.prompts["system"]["multi_turn"])
    assert any("**Additional Reference**\n두 개" in r["messages"][1]["content"] for r in logickor)
    assert {r["max_tokens"] for r in komt} == {2048}
    systems = {r["messages"][0]["content"] for r in komt}
    assert systems == {km.prompts[n]["system_prompt"] for n in
                       ("single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn")}
    math = [r for r in komt if "[참조용 답변 시작]" in r["messages"][1]["content"]
            or "<|참조용 답변 시작|>" in r["messages"][1]["content"]]
    assert len(math) == 2 and all("나머지" in r["messages"][1]["content"] for r in math)


def test_scores_are_parsed_aggregated_and_unparseable_counted(judged_run):
    summary, replies = judged_run["summary"], judged_run["replies"]
    records = [json.loads(line) for line in runner.judge_records_path(judged_run["out"]).read_text().splitlines()]
    assert len(records) == 12 and {r["judgement"] for r in records} <= set(replies)
    for name, bench in (("logickor", LogicKor()), ("ko_mtbench", KoMTBench())):
        mine = [r for r in records if r["benchmark"] == name]
        result = summary["benchmarks"][name]
        assert all(r["rating"] == bench.parse(r["judgement"]) and r["judge_model"] == JUDGE_NAME for r in mine)
        bad = [r for r in mine if r["rating"] is None]
        assert result["n_unparseable"] == len(bad) and result["n_judgements"] == 6
        assert len(result["unparseable"]) == len(bad)
        assert result["judge_model"] == JUDGE_NAME
        assert result["provenance"]["judge"]["model"] == JUDGE_NAME
        assert any(r["rating"] is not None for r in mine)      # the parsing path really ran
        turn = {t: [r["rating"] for r in mine if r["turn"] == t and r["rating"] is not None] for t in (1, 2)}
        if name == "logickor":
            expected = (statistics.mean(turn[1]) + statistics.mean(turn[2])) / 2
        else:
            expected = statistics.mean([r["penalised"] for r in mine if r["rating"] is not None])
            assert result["raw_unpenalised"] == pytest.approx(
                statistics.mean([r["rating"] for r in mine if r["rating"] is not None]))
        assert result["raw"] == pytest.approx(expected)
        assert result["score"] == pytest.approx(expected * (10 if name == "ko_mtbench" else 1), abs=1e-4)
    # the tiny judge garbles its KoMT-Bench turn-1 replies: counted, not scored
    assert summary["benchmarks"]["ko_mtbench"]["n_unparseable"] > 0


def test_rerun_asks_nothing_twice(judged_run):
    assert judged_run["sent_on_rerun"] == 0
    rerun, first = judged_run["rerun"], judged_run["summary"]
    assert rerun["judge"]["cached"] == 12 and rerun["judge"]["requests"] == 0
    assert first["judge"]["requests"] == 12 and first["judge"]["round_trip_s_mean"] > 0
    for name in ("logickor", "ko_mtbench"):
        assert rerun["benchmarks"][name]["score"] == first["benchmarks"][name]["score"]
    cache = JudgeCache(runner.judge_cache_path(judged_run["out"]))
    assert len(cache) == 12


def test_table_names_the_judge_and_marks_unparseable(judged_run, capsys):
    assert midm_main(["eval", "table", str(judged_run["out"])]) == 0
    md = capsys.readouterr().out
    assert f"Ko-MTBench [judge: {JUDGE_NAME}]" in md and f"LogicKor [judge: {JUDGE_NAME}]" in md
    assert "§" in md and "unparseable judgements" in md


def test_untrained_judge_gives_only_unparseable_judgements(tiny_chat_model, bench_dir, tmp_path, monkeypatch, capsys):
    random_judge = build_tiny_llama(tmp_path / "random_judge", ["점수 평가 좋다"] * 3, vocab=300, chat=True,
                                    max_positions=4096)
    server, state = serve.serve(random_judge, name="random", default_max_tokens=12)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "0")
    try:
        code = midm_main(["eval", "--model", str(tiny_chat_model), "--tasks", "logickor", "--data-dir", str(bench_dir),
                         "--output", str(tmp_path / "r.json"), "--device", "cpu", "--max-gen-toks", "4",
                         "--judge", f"http://127.0.0.1:{server.server_address[1]}", "--judge-model", "random"])
    finally:
        server.shutdown()
    assert code == 0 and len(state.requests) == 6
    result = json.loads((tmp_path / "r.json").read_text())["benchmarks"]["logickor"]
    assert result["n_unparseable"] == 6 and result["score"] is None       # never scored
    assert "6 of 6 judgements had no score" in capsys.readouterr().err
    row = tables.load_results([tmp_path / "r.json"])[0]
    assert "logickor" not in row.scores and row.meta["logickor"]["n_unparseable"] == 6


def test_client_retries_with_backoff_then_gives_up(judge_server, tmp_path):
    url, state = judge_server
    state.fail_first = len(state.requests) + 2          # the next two requests get HTTP 503
    waits: list[float] = []
    client = JudgeClient(JudgeConfig(url=url, model=JUDGE_NAME, backoff_s=0.5, max_retries=3),
                         JudgeCache(tmp_path / "c.jsonl"), sleep=waits.append)
    text = client.complete([{"role": "user", "content": "점수를 주세요"}], temperature=0.0, max_tokens=4)
    assert waits == [0.5, 1.0] and client.stats.retries == 2 and client.stats.requests == 1
    assert JudgeCache(tmp_path / "c.jsonl").get(JudgeCache.key({
        "model": JUDGE_NAME, "messages": [{"role": "user", "content": "점수를 주세요"}], "temperature": 0.0,
        "n": 1, "max_tokens": 4}))["content"] == text
    state.fail_first = len(state.requests) + 100
    with pytest.raises(JudgeError, match="failed after 2 attempts; last error: HTTP 503"):
        JudgeClient(JudgeConfig(url=url, model=JUDGE_NAME, max_retries=1), JudgeCache(None),
                    sleep=lambda s: None).complete([{"role": "user", "content": "x"}], temperature=0.0, max_tokens=2)
    state.fail_first = 0
    with pytest.raises(JudgeError, match="HTTP 404"):                     # not retryable: at once
        JudgeClient(JudgeConfig(url=url + "/v2/nothing/chat/completions", model=JUDGE_NAME), JudgeCache(None),
                    sleep=lambda s: pytest.fail("retried")).complete([{"role": "user", "content": "x"}],
                                                                         temperature=0.0, max_tokens=2)


def test_judge_flags_go_together(tiny_chat_model, capsys):
    assert midm_main(["eval", "--model", str(tiny_chat_model), "--tasks", "logickor", "--judge", "http://127.0.0.1:9"]) == 2
    assert "go together" in capsys.readouterr().err


def test_an_unreachable_judge_is_named_before_any_answer_is_generated(tiny_chat_model, bench_dir, tmp_path, capsys):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    code = midm_main(["eval", "--model", str(tiny_chat_model), "--tasks", "logickor", "--data-dir", str(bench_dir),
                      "--output", str(tmp_path / "r.json"), "--device", "cpu", "--max-gen-toks", "4",
                      "--judge", f"http://127.0.0.1:{port}", "--judge-model", "absent"])
    err = capsys.readouterr().err
    assert code == 2 and f"judge http://127.0.0.1:{port}/v1/chat/completions is not reachable" in err, err
    assert time.perf_counter() - started < 30 and not list(tmp_path.iterdir())  # nothing generated or written
