"""Render a conversation with the Mi:dm chat template: token ids and the assistant-only loss mask.

The template (``tokenizer/hf.py`` ``CHAT_TEMPLATE``, written into ``tokenizer_config.json`` by
``midm tokenizer export``) is Llama-3's:

    <|begin_of_text|>
    <|start_header_id|>{role}<|end_header_id|>\\n\\n{content | trim}<|eot_id|>     (per message)
    [<|start_header_id|>assistant<|end_header_id|>\\n\\n]                          (generation prompt)

Every special token and ``\\n`` is an *added* token of the tokenizer, so ``tokenizers`` splits the
rendered string at them before BPE runs: encoding the template piece by piece gives exactly the ids
of ``AutoTokenizer.apply_chat_template`` on the whole string (tests check every conversation of
the test set). Rendering piece by piece is what lets the loss mask come from the turn structure
— which tokens belong to which message — and never from searching the ids for marker tokens
(a template without generation markers silently yields an all-ones mask in stacks that do that).

Loss mask (the convention of Megatron-LM's ``SFTTokenizer.tokenize_conversation``, TRL's
``assistant_only_loss`` and OLMo-core/open-instruct): 1 on an assistant message's content tokens
and its closing ``<|eot_id|>`` (so the model learns to stop), 0 on ``<|begin_of_text|>``, every
header (``<|start_header_id|>assistant<|end_header_id|>\\n\\n`` included) and every system/user
token. The mask is aligned with ``ids`` (mask[i] says whether ids[i] is a *target*); the
trainer shifts both by one.

Torch-free and transformers-free: only the ``tokenizers`` backend of ``tokenizer.api``.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from tokenizer.layout import BOS, EOT

ROLES = ("system", "user", "assistant")
START_HEADER, END_HEADER = "<|start_header_id|>", "<|end_header_id|>"
HEADER_END_TEXT = "\n\n"


class ChatFormatError(ValueError):
    """A conversation the template cannot render (unknown role, non-string content)."""


class Encoder(Protocol):
    """What :func:`render` needs: ``tokenizer.api.MidmTokenizer`` satisfies it."""

    def encode(self, text: str) -> list[int]: ...

    def piece_to_id(self, piece: str) -> int | None: ...


@dataclass(frozen=True)
class ChatIds:
    """Ids of the template's fixed pieces for one tokenizer."""

    bos: int
    start_header: int
    end_header: int
    eot: int
    header_end: tuple[int, ...]          # ids of "\n\n"
    roles: dict[str, tuple[int, ...]]    # ids of each role name

    def header(self, role: str) -> list[int]:
        """``<|start_header_id|>{role}<|end_header_id|>\\n\\n`` as ids."""
        return [self.start_header, *self.roles[role], self.end_header, *self.header_end]


_CACHE: "weakref.WeakKeyDictionary[object, ChatIds]" = weakref.WeakKeyDictionary()


def chat_ids(tokenizer: Encoder) -> ChatIds:
    """The fixed pieces' ids; raises :class:`ChatFormatError` when a chat special token is missing."""
    cached = _CACHE.get(tokenizer)
    if cached is None:
        ids = {}
        for tok in (BOS, START_HEADER, END_HEADER, EOT):
            i = tokenizer.piece_to_id(tok)
            if i is None:
                raise ChatFormatError(f"tokenizer has no {tok!r} token: train it with `midm tokenizer train`")
            ids[tok] = i
        cached = _CACHE[tokenizer] = ChatIds(bos=ids[BOS], start_header=ids[START_HEADER], end_header=ids[END_HEADER],
                              eot=ids[EOT], header_end=tuple(tokenizer.encode(HEADER_END_TEXT)),
                              roles={r: tuple(tokenizer.encode(r)) for r in ROLES})
    return cached


def load_chat_tokenizer(directory: str | Path):
    """A ``tokenizer.api.MidmTokenizer`` for ``directory`` (``midm tokenizer train`` or ``export`` output).

    Raises:
        FileNotFoundError: not a tokenizer directory.
        ChatFormatError: the tokenizer lacks the chat special tokens.
    """
    from tokenizer.api import load_tokenizer

    tok = load_tokenizer(directory)
    chat_ids(tok)
    return tok


def render_turns(messages: Sequence[dict], tokenizer: Encoder) -> list[tuple[str, list[int], list[int]]]:
    """Per message: (role, ids, mask) — the first message's ids start with ``<|begin_of_text|>``.

    ``sum(ids)`` over the turns is :func:`render`'s ids; turns let callers truncate at whole-turn
    boundaries (``midm data sft``) or split prompt from response (DPO).
    """
    c = chat_ids(tokenizer)
    turns = []
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ROLES:
            raise ChatFormatError(f"message {n}: role must be one of {ROLES}, got {role!r}")
        if not isinstance(content, str):
            raise ChatFormatError(f"message {n}: content must be a string, got {type(content).__name__}")
        head = ([c.bos] if n == 0 else []) + c.header(role)
        body = tokenizer.encode(content.strip()) + [c.eot]  # jinja's `trim` is str.strip()
        target = 1 if role == "assistant" else 0
        turns.append((role, head + body, [0] * len(head) + [target] * len(body)))
    return turns


def render(messages: Sequence[dict], tokenizer: Encoder) -> tuple[list[int], list[int]]:
    """(ids, loss_mask) of ``messages`` rendered with the Mi:dm chat template (no generation prompt).

    Args:
        messages: ``[{"role": "system"|"user"|"assistant", "content": str}, …]``; the role order is
            not checked here (``records.check_conversation`` does that for the data stage).
        tokenizer: a ``MidmTokenizer`` (see :func:`load_chat_tokenizer`) or anything with
            ``encode(text) -> list[int]`` (no implicit bos/eos) and ``piece_to_id``.

    Returns:
        ``ids``: ``[n_tokens]`` equal to ``apply_chat_template(messages, tokenize=True)`` of the
        exported HF tokenizer; ``loss_mask``: ``[n_tokens]`` of 0/1, 1 exactly on assistant content
        tokens and their closing ``<|eot_id|>``.

    Raises:
        ChatFormatError: unknown role, non-string content, or a tokenizer without chat tokens.
    """
    ids: list[int] = []
    mask: list[int] = []
    for _, turn_ids, turn_mask in render_turns(messages, tokenizer):
        ids += turn_ids
        mask += turn_mask
    if not messages:
        ids, mask = [chat_ids(tokenizer).bos], [0]
    return ids, mask


def render_prompt(messages: Sequence[dict], tokenizer: Encoder) -> list[int]:
    """Ids for generation: ``messages`` then the assistant header (``add_generation_prompt=True``)."""
    ids, _ = render(messages, tokenizer)
    return ids + chat_ids(tokenizer).header("assistant")


__all__ = ["ChatFormatError", "ChatIds", "ROLES", "chat_ids", "load_chat_tokenizer", "render", "render_prompt",
           "render_turns"]
