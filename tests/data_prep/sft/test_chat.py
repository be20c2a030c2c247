"""Chat rendering: ids equal the exported HF tokenizer's ``apply_chat_template`` for every test
conversation, and the loss mask is exactly the assistant spans (content + closing <|eot_id|>)."""
from __future__ import annotations

import json

import pytest

from data_prep.sft.chat import load_chat_tokenizer, render, render_prompt, render_turns
from data_prep.sft.records import RecordError, parse_line
from tests.conftest import TEST_DATA

SFT_DATA = TEST_DATA / "sft"


def _conversations() -> list[list[dict]]:
    out = []
    for name in ("chatbot.jsonl", "edge_cases.jsonl"):
        for line in (SFT_DATA / name).read_text(encoding="utf-8").splitlines():
            out.append(parse_line(line))
    return out


@pytest.fixture(scope="module")
def hf_and_midm(chat_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(chat_tokenizer_dir)), load_chat_tokenizer(chat_tokenizer_dir)


def _hf_ids(hf, messages, generation_prompt=False) -> list[int]:
    out = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def test_ids_equal_apply_chat_template_for_every_test_conversation(hf_and_midm):
    hf, tok = hf_and_midm
    conversations = _conversations()
    assert len(conversations) == 85  # 75 chatbot records + 10 edge cases: all of them, not a sample
    for messages in conversations:
        ids, mask = render(messages, tok)
        assert ids == _hf_ids(hf, messages), messages
        assert len(mask) == len(ids)
        assert render_prompt(messages[:-1], tok) == _hf_ids(hf, messages[:-1], generation_prompt=True)


def test_mask_is_exactly_the_assistant_spans(hf_and_midm):
    """The mask computed from turns equals an independent derivation from per-message text."""
    hf, tok = hf_and_midm
    eot = tok.piece_to_id("<|eot_id|>")
    for messages in _conversations():
        ids, mask = render(messages, tok)
        expected = []
        for n, m in enumerate(messages):
            alone = _hf_ids(hf, [m])  # bos, header, content, eot: everything before the content is header
            content = hf.encode(m["content"].strip(), add_special_tokens=False)
            n_head = len(alone) - len(content) - 1 - (0 if n == 0 else 1)  # the bos belongs to the first turn
            body = 1 if m["role"] == "assistant" else 0
            expected += [0] * n_head + [body] * (len(content) + 1)
        assert mask == expected, messages
        spans = [ids[i] for i in range(len(ids)) if mask[i]]
        assistant_text = "".join(m["content"].strip() + "<|eot_id|>" for m in messages if m["role"] == "assistant")
        assert hf.decode(spans) == assistant_text
        span_ends = [i for i in range(len(ids)) if mask[i] and (i + 1 == len(ids) or not mask[i + 1])]
        assert len(span_ends) == sum(m["role"] == "assistant" for m in messages)
        assert all(ids[i] == eot for i in span_ends)


def test_multi_turn_with_system_prompt_mask_by_hand(hf_and_midm):
    _, tok = hf_and_midm
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"},
                {"role": "assistant", "content": "A2"}]
    turns = render_turns(messages, tok)
    assert [r for r, _, _ in turns] == [m["role"] for m in messages]
    for role, ids, mask in turns:
        content = tok.encode(messages[[r for r, _, _ in turns].index(role)]["content"]) if role != "assistant" else None
        if role == "assistant":
            n_body = mask.count(1)
            assert mask == [0] * (len(ids) - n_body) + [1] * n_body and ids[-1] == tok.piece_to_id("<|eot_id|>")
            assert ids[:len(ids) - n_body][0] == tok.piece_to_id("<|start_header_id|>")
        else:
            assert set(mask) == {0} and content is not None


def test_every_bad_line_has_its_reason():
    expected = ["malformed_json", "unknown_format", "unknown_format", "unknown_format", "empty", "empty", "empty",
                "unknown_role", "no_assistant_turn", "bad_role_order", "bad_role_order", "bad_role_order",
                "bad_role_order", None]  # the last one is only too long (decided after rendering)
    lines = (SFT_DATA / "bad.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(expected)
    for line, reason in zip(lines, expected):
        if reason is None:
            parse_line(line)
            continue
        with pytest.raises(RecordError) as err:
            parse_line(line)
        assert err.value.reason == reason, line


def test_instruction_and_prompt_forms_map_to_messages():
    assert parse_line(json.dumps({"instruction": "I", "input": "X", "output": "O"})) == [
        {"role": "user", "content": "I\n\nX"}, {"role": "assistant", "content": "O"}]
    assert parse_line(json.dumps({"prompt": "P", "response": "R", "system": "S"})) == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "P"}, {"role": "assistant", "content": "R"}]
