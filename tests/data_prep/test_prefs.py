"""`midm data prefs`: record forms, drop reasons and accounting, ids equal to the exported HF
tokenizer's chat template, loss mask exactly on the response, import-light CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from data_prep.accounting import STATS_FILE
from data_prep.prefs.build import INDEX_FILE, build, held_out, render_pair
from data_prep.prefs.records import DROP_REASONS, PairError, parse_line
from data_prep.sft.chat import load_chat_tokenizer
from midm.cli import main as midm_main
from tests.conftest import REPO, TEST_DATA

PREFS = TEST_DATA / "prefs"


def _lines(name: str) -> list[str]:
    return (PREFS / name).read_text(encoding="utf-8").splitlines()


def test_record_forms_map_to_prompt_chosen_rejected():
    pairs = {json.loads(line)["id"]: parse_line(line) for line in _lines("forms.jsonl")}
    p = pairs["string-with-system"]
    assert [m["role"] for m in p.prompt] == ["system", "user"] and p.chosen[0]["role"] == "assistant"
    assert [m["role"] for m in pairs["message-prompt-multi-turn"].prompt] == ["system", "user", "assistant", "user"]
    whole = pairs["whole-conversation"]  # the repeated prompt is removed from both sides
    assert whole.chosen == [{"role": "assistant", "content": "Seoul."}]
    assert whole.rejected == [{"role": "assistant", "content": "Busan, obviously."}]
    assert [m["role"] for m in pairs["multi-turn-response"].chosen] == ["assistant", "user", "assistant"]


def test_each_bad_record_gets_its_reason():
    reasons = []
    for line in _lines("bad_pairs.jsonl"):
        try:
            parse_line(line)
            reasons.append("kept")
        except PairError as err:
            assert err.reason in DROP_REASONS
            reasons.append(err.reason)
    # too_long is decided after rendering; everything else is caught while parsing
    assert reasons == ["malformed"] * 7 + ["empty"] * 3 + ["identical"] + ["kept"]


@pytest.fixture(scope="module")
def hf_and_midm(chat_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(chat_tokenizer_dir)), load_chat_tokenizer(chat_tokenizer_dir)


def _template(hf, messages, generation_prompt=False) -> list[int]:
    out = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def test_ids_and_masks_against_the_hf_chat_template(hf_and_midm):
    """Every SQuARe pair and every form: ids = apply_chat_template(prompt + response); the mask is 1
    exactly from the end of apply_chat_template(prompt, add_generation_prompt=True) onwards for a
    one-turn response (content + <|eot_id|>); the prompt ids are shared by both sides."""
    hf, tok = hf_and_midm
    eot = tok.piece_to_id("<|eot_id|>")
    lines = _lines("square_pairs.jsonl") + _lines("forms.jsonl")
    assert len(lines) == 107 + 4
    for line in lines:
        pair = parse_line(line)
        rendered = render_pair(pair, tok)
        prompt_ids = _template(hf, pair.prompt)
        assert rendered.chosen_ids[:rendered.prompt_length] == rendered.rejected_ids[:rendered.prompt_length] \
            == prompt_ids
        for response, ids, mask in ((pair.chosen, rendered.chosen_ids, rendered.chosen_mask),
                                    (pair.rejected, rendered.rejected_ids, rendered.rejected_mask)):
            assert ids == _template(hf, pair.prompt + response)
            assert len(mask) == len(ids) and ids[-1] == eot and mask[-1] == 1
            if len(response) == 1:
                start = len(_template(hf, pair.prompt, generation_prompt=True))
                assert mask == [0] * start + [1] * (len(ids) - start)
            else:  # multi-turn response: the inner user turn is masked, both assistant turns are not
                assert sum(mask) == sum(len(tok.encode(m["content"].strip())) + 1 for m in response
                                        if m["role"] == "assistant")


def test_build_accounts_for_every_record_and_splits_by_prompt(chat_tokenizer_dir, tmp_path):
    out = tmp_path / "prefs"
    stats = build([str(PREFS / "square_pairs.jsonl"), str(PREFS / "forms.jsonl"), str(PREFS / "bad_pairs.jsonl")],
                  out, str(chat_tokenizer_dir), seq_length=256, valid_fraction=0.2)
    assert stats["records_read"] == 107 + 4 + 12
    assert stats["dropped"] == {"malformed": 7, "empty": 3, "identical": 1, "too_long": 1}
    assert stats["kept"] == 111 and stats["balanced"]
    assert stats["records_read"] == stats["kept"] + sum(stats["dropped"].values())
    pairs = {k: v["pairs"] for k, v in stats["splits"].items()}
    assert pairs["train"] + pairs["valid"] == 111 and 10 <= pairs["valid"] <= 35  # ~20% of the prompts
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["splits"] == {k: {"pairs": v} for k, v in pairs.items()} and index["seq_length"] == 256
    assert 0 < index["longest"] <= 257 and index["max_token_id"] < index["padded_vocab_size"] == 2048
    assert json.loads((out / STATS_FILE).read_text()) == stats
    for split in ("train", "valid"):
        for name in ("tokens", "loss_mask"):
            assert (out / split / f"{name}.bin").stat().st_size > 0 and (out / split / f"{name}.idx").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefs"]  # the temporary directory was renamed away
    # pairs that share a prompt (3 SQuARe questions have 2 pairs) always share a split
    by_prompt: dict[str, set[bool]] = {}
    for line in _lines("square_pairs.jsonl"):
        pair = parse_line(line)
        by_prompt.setdefault(json.dumps(pair.prompt), set()).add(held_out(pair.prompt, 1234, 0.2))
    assert all(len(v) == 1 for v in by_prompt.values()) and len(by_prompt) == 104
    # a shorter sequence length turns more pairs into too_long drops, still balanced; a rerun replaces OUT
    short = build([str(PREFS / "square_pairs.jsonl")], out, str(chat_tokenizer_dir), seq_length=100,
                  valid_fraction=0.0)
    assert short["dropped"]["too_long"] > 0 and short["balanced"] and short["longest"] <= 101
    assert short["splits"]["valid"]["pairs"] == 0


def test_cli_reports_accounting_and_bad_input(chat_tokenizer_dir, tmp_path, capsys, monkeypatch):
    import data_prep.prefs.build as prefs_build

    monkeypatch.setattr(prefs_build, "PROGRESS_EVERY", 2)  # a progress line every 2 records, not 10,000
    out = tmp_path / "cli"
    assert midm_main(["data", "prefs", str(PREFS / "forms.jsonl"), str(out), "--tokenizer", str(chat_tokenizer_dir),
                      "--seq-length", "128"]) == 0  # default: progress on
    captured = capsys.readouterr()
    brief = json.loads(captured.out.strip().splitlines()[-1])
    assert brief["records_read"] == brief["kept"] == 4 and brief["balanced"]
    assert captured.err.splitlines() == ["[midm data prefs] 2 read, 2 kept", "[midm data prefs] 4 read, 4 kept"]
    assert midm_main(["data", "prefs", str(PREFS / "forms.jsonl"), str(out), "--tokenizer", str(chat_tokenizer_dir),
                      "--seq-length", "128", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert midm_main(["data", "prefs", str(PREFS / "forms.jsonl"), str(PREFS), "--tokenizer",
                      str(chat_tokenizer_dir)]) == 2
    assert "is not a `midm data prefs` output" in capsys.readouterr().err
    assert midm_main(["data", "prefs", str(tmp_path / "missing.jsonl"), str(out), "--tokenizer",
                      str(chat_tokenizer_dir)]) == 2
    assert "missing.jsonl: no such file or directory" in capsys.readouterr().err
    assert midm_main(["data", "prefs", str(PREFS / "forms.jsonl"), str(out), "--tokenizer", str(tmp_path)]) == 2
    assert "not a midm tokenizer directory" in capsys.readouterr().err
    assert midm_main(["data", "prefs", str(PREFS / "bad_pairs.jsonl"), str(out), "--tokenizer",
                      str(chat_tokenizer_dir), "--seq-length", "256"]) == 2
    assert "no pair kept out of 12 records" in capsys.readouterr().err


def test_prefs_never_imports_torch(chat_tokenizer_dir, tmp_path):
    code = ("import sys; from midm.cli import main; "
            f"assert main(['data', 'prefs', {str(PREFS / 'forms.jsonl')!r}, {str(tmp_path / 'o')!r}, "
            f"'--tokenizer', {str(chat_tokenizer_dir)!r}]) == 0; "
            "assert 'torch' not in sys.modules and 'megatron' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
