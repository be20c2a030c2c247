"""What SFT and DPO runs share when they resolve their recipe: the initial checkpoint's model and the
prepared data's sequence length and vocabulary (no process group needed)."""
from __future__ import annotations

import copy

from recipes import Recipe


def adopt_model_and_data(out: Recipe, index: dict, dataset: str, *, initial: str, built_for: str,
                         error: type[Exception]) -> list[str]:
    """Make ``out`` (a copy) train the ``checkpoint.load`` model on data described by ``index``; returns notes.

    The model geometry comes from the initial checkpoint's ``recipe.json``; ``data.seq_length`` from
    the data (``index["seq_length"]``). Raises ``error`` when the data were tokenized for more ids
    than the model has.
    """
    from megatron_ext.loading import read_recipe

    notes = []
    if out.checkpoint.load:
        model = read_recipe(out.checkpoint.load).model
        if model != out.model:
            notes.append(f"model from the {initial} checkpoint {out.checkpoint.load}: "
                         + ", ".join(f"{k}={v}" for k, v in model.geometry().items()))
            out.model = copy.deepcopy(model)
    if index["seq_length"] != out.data.seq_length:
        notes.append(f"data.seq_length {out.data.seq_length} → {index['seq_length']} (what the {built_for})")
        out.data.seq_length = index["seq_length"]
    if index["padded_vocab_size"] > out.model.vocab_size:
        raise error(f"{dataset} was tokenized with {index['padded_vocab_size']} ids but the model has "
                    f"model.vocab_size {out.model.vocab_size}: use the {initial} model's tokenizer")
    return notes
