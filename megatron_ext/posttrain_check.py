"""Torch-free checks of post-training data: ``midm data sft`` and ``midm data prefs`` outputs.

SFT and DPO take their data from ``sft.dataset`` / ``dpo.dataset`` (``--data``), not from
``data.blend``. ``midm slurm submit`` runs these checks on the login node for the ``sft`` and
``dpo`` stages, so a job whose dataset is missing, foreign or empty is never queued; the trainers
(``megatron_ext/sft.py``, ``megatron_ext/dpo.py``) read the same index and go on to check token
ids against the model they adopt. This module imports neither torch nor Megatron-Core: the SFT
shards are opened with their NumPy reader (``data_prep/sft/shards.py``) and the preference
``.idx``/``.bin`` pairs with :func:`megatron_ext.data_check.check_prefix`.
"""
from __future__ import annotations

import json
from pathlib import Path

from megatron_ext.data_check import DataError, check_prefix

# The `midm data prefs` output contract (written by data_prep/prefs/build.py, read by megatron_ext/dpo_data.py).
PREFS_FORMAT, PREFS_VERSION = "midm-prefs", 1
INDEX_FILE = "index.json"
TOKENS, LOSS_MASK = "tokens", "loss_mask"


def read_prefs_index(root: str | Path) -> dict:
    """``index.json`` of a ``midm data prefs`` output.

    Raises:
        DataError: missing, or another format/version.
    """
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise DataError(f"{root}: no {INDEX_FILE}; write preference data with "
                        f"`midm data prefs IN… {root} --tokenizer DIR`")
    index = json.loads(path.read_text())
    if (index.get("format"), index.get("version")) != (PREFS_FORMAT, PREFS_VERSION):
        raise DataError(f"{root}: format {index.get('format')!r} v{index.get('version')}, expected "
                        f"{PREFS_FORMAT!r} v{PREFS_VERSION} (re-run `midm data prefs`)")
    return index


def check_sft_dataset(root: str | Path) -> int:
    """Check a ``midm data sft`` output: index, train shards readable and consistent; returns train samples.

    Raises:
        DataError: the directory is missing or holds no training sample.
        SFTDataError: not a ``midm data sft`` output, or a damaged shard (``data_prep.sft.shards``).
    """
    from data_prep.sft.shards import SFTSplit

    if not Path(root).is_dir():
        raise DataError(f"sft dataset {root} does not exist; write it with "
                        f"`midm data sft IN… {root} --tokenizer DIR`")
    samples = len(SFTSplit(root, "train"))  # opens every train shard and checks it against index.json
    if samples == 0:
        raise DataError(f"sft dataset {root} has no training samples; re-run `midm data sft` on more conversations")
    return samples


def check_prefs_dataset(root: str | Path) -> int:
    """Check a ``midm data prefs`` output: index, train ``tokens``/``loss_mask`` prefixes; returns train pairs.

    Raises:
        DataError: missing, another format, no training pair, or a ``.bin``/``.idx`` pair that is
            missing, truncated or holds ids beyond the tokenizer's padded vocabulary.
    """
    if not Path(root).is_dir():
        raise DataError(f"dpo dataset {root} does not exist; write it with "
                        f"`midm data prefs IN… {root} --tokenizer DIR`")
    index = read_prefs_index(root)
    pairs = int(index.get("splits", {}).get("train", {}).get("pairs", 0))
    if pairs == 0:
        raise DataError(f"dpo dataset {root} has no training pairs; re-run `midm data prefs` on more pairs")
    train = Path(root) / "train"
    sequences = check_prefix(str(train / TOKENS), int(index["padded_vocab_size"]))
    if sequences != 2 * pairs or check_prefix(str(train / LOSS_MASK), 2) != sequences:
        raise DataError(f"{train}: {TOKENS}/{LOSS_MASK} do not hold the {pairs} pairs {INDEX_FILE} lists; "
                        "re-run `midm data prefs`")
    return pairs
