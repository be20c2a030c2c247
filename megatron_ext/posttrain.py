"""What SFT and DPO runs share when they resolve their recipe: the initial checkpoint's model and the
prepared data's sequence length and vocabulary (no process group needed)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from recipes import Recipe


def tokenizer_of(recipe: Recipe) -> str | None:
    """The tokenizer directory the data a checkpoint was trained on records, when it records one.

    Post-training data (``midm data sft`` / ``midm data prefs``) keeps it in ``index.json``,
    pretraining data (``midm data tokenize``) in ``PREFIX.summary.json`` beside its first prefix.
    Best effort, for messages only: None when nothing readable records it.
    """
    try:
        for section in (recipe.dpo, recipe.sft):
            if section is not None and section.dataset:
                return json.loads((Path(section.dataset) / "index.json").read_text(encoding="utf-8"))["tokenizer"]
        from megatron_ext.data_check import resolve_blend

        prefixes, _ = resolve_blend(recipe)
        return json.loads(Path(prefixes[0] + ".summary.json").read_text(encoding="utf-8"))["tokenizer"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError):  # DataError is a RuntimeError
        return None


def adopt_model_and_data(out: Recipe, index: dict, dataset: str, *, initial: str, built_for: str,
                         error: type[Exception], made_by: str) -> list[str]:
    """Make ``out`` (a copy) train the ``checkpoint.load`` model on data described by ``index``; returns notes.

    The model geometry comes from the initial checkpoint's ``recipe.json``; ``data.seq_length`` from
    the data (``index["seq_length"]``). ``made_by`` is the command that wrote the data
    (``midm data sft``), named in the fixes.

    The data must have been tokenized with the initial model's tokenizer. A ``midm data sft`` /
    ``midm data prefs`` index records its tokenizer's padded vocabulary (``padded_vocab_size``, the
    embedding rows a model trained with that tokenizer has: ``tokenizer/layout.py``), and a
    checkpoint its rows (``model.vocab_size``), so the two must be equal. A tokenizer of the same
    padded size but other pieces is told apart by the fingerprints both record
    (``tokenizer_check.py``; unknown when either predates them).

    Raises:
        error: the data's padded vocabulary is not the initial checkpoint's (larger than the recipe's
            without one), or its sequence length exceeds ``model.max_position_embeddings``.
        TokenizerMismatchError: same size, but the data's tokenizer fingerprint is not the one the
            initial checkpoint records (unless ``checkpoint.allow_tokenizer_change``).
        CheckpointError: ``checkpoint.load`` is not a checkpoint.
    """
    from megatron_ext.loading import read_recipe

    notes = []
    padded = index["padded_vocab_size"]
    data_tokenizer = f"tokenizer {index['tokenizer']}" if index.get("tokenizer") else "its tokenizer"
    if out.checkpoint.load:
        base = read_recipe(out.checkpoint.load)
        if padded != base.model.vocab_size:
            base_tokenizer = tokenizer_of(base)
            trained = f", trained on data tokenized with {base_tokenizer}" if base_tokenizer else ""
            raise error(f"{dataset} was tokenized with {data_tokenizer} (padded vocabulary {padded}) but the {initial} "
                        f"checkpoint {out.checkpoint.load} has model.vocab_size {base.model.vocab_size}{trained}: "
                        f"re-run `{made_by}` with --tokenizer set to the {initial} model's tokenizer")
        from megatron_ext.tokenizer_check import check_data_against_checkpoint

        check_data_against_checkpoint(out, out.checkpoint.load, role=initial)
        if base.model != out.model:
            notes.append(f"model from the {initial} checkpoint {out.checkpoint.load}: "
                         + ", ".join(f"{k}={v}" for k, v in base.model.geometry().items()))
            out.model = copy.deepcopy(base.model)
    elif padded > out.model.vocab_size:
        raise error(f"{dataset} was tokenized with {data_tokenizer} (padded vocabulary {padded}) but the model has "
                    f"model.vocab_size {out.model.vocab_size}: use the {initial} model's tokenizer")
    seq_length, limit = index["seq_length"], out.model.max_position_embeddings
    if seq_length > limit:
        raise error(f"{dataset} was made with `{made_by} --seq-length {seq_length}` but the model's "
                    f"max_position_embeddings is {limit}: re-run `{made_by}` with --seq-length ≤ {limit}")
    if seq_length != out.data.seq_length:
        notes.append(f"data.seq_length {out.data.seq_length} → {seq_length} (what the {built_for})")
        out.data.seq_length = seq_length
    return notes


def replaced_steps(recipe_steps: int, steps: int, section: str) -> str:
    """The note's tail when ``{section}.epochs`` replaces another ``train.steps`` (e.g. a ``--set`` one)."""
    if recipe_steps == steps:
        return ""
    return (f"; it replaces train.steps={recipe_steps}: {section}.epochs decides (for a fixed step count pass "
            f"--set {section}.epochs=null --set train.steps=N)")
