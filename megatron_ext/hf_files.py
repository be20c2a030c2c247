"""The Hugging Face directory side of ``midm convert``: lazy safetensors reading, the output directory,
and the tokenizer ↔ model vocabulary check.

* :class:`SafetensorsDir` reads an HF model directory (one ``model.safetensors`` or shards with an
  index) as a mapping: nothing is read until a tensor is used, and a tensor nobody keeps costs
  nothing afterwards.
* :func:`prepare_output` / :func:`publish` write an export into a hidden sibling directory and
  rename it into place at the end (``checkpoint_output.publish``, as the checkpoint-writing commands
  do), so an interrupted export never leaves a half-written model under the requested name, and an
  existing model is replaced only with ``--overwrite``.
* :func:`check_tokenizer_dir` refuses a ``--tokenizer`` that is missing or not a tokenizer directory
  (never looked up on the Hub), and :func:`check_tokenizer_vocab` one the model cannot have been
  trained with, both before any weight is read.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from megatron_ext.checkpoint_output import publish, staging_dir  # noqa: F401 (publish: API, to-hf's last step)
from megatron_ext.hf.registry import ConvertError

INDEX_FILE = "model.safetensors.index.json"
# Megatron-LM pads the vocabulary to a multiple of make-vocab-size-divisible-by (128) × TP (≤ 8), so a
# model trained with a tokenizer has fewer than 1,024 rows beyond it; our layout pads by < 72.
MAX_VOCAB_PADDING = 1024
# Files that mark a directory as a model export (only those are ever replaced by --overwrite).
MODEL_MARKERS = ("config.json", "model.safetensors", INDEX_FILE, "midm_conversion.json")


class SafetensorsDir(Mapping):
    """``{name: tensor}`` over the safetensors files of an HF directory, each tensor read when looked up.

    Nothing is read until a tensor is used, each lookup reads that tensor alone into its own
    memory (``hf.shards.read_tensor``; no memory map keeps file pages resident), and a tensor
    nobody keeps costs nothing afterwards.

    Raises:
        ConvertError: no ``config.json``, or no safetensors weights (only safetensors are read).
    """

    def __init__(self, hf_dir: Path) -> None:
        from megatron_ext.hf.shards import read_header

        self.dir = Path(hf_dir)
        if not (self.dir / "config.json").is_file():
            raise ConvertError(f"{self.dir} has no config.json: not a Hugging Face model directory")
        index = self.dir / INDEX_FILE
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        elif (self.dir / "model.safetensors").is_file():
            files = ["model.safetensors"]
        else:
            raise ConvertError(f"{self.dir} has no model.safetensors(.index.json); only safetensors weights are "
                               "read (re-save with save_pretrained(safe_serialization=True))")
        self._where: dict[str, tuple[Path, int, dict]] = {}
        for f in files:
            start, header = read_header(self.dir / f)
            for name, entry in header.items():
                self._where[name] = (self.dir / f, start, entry)

    @property
    def config(self) -> dict:
        return json.loads((self.dir / "config.json").read_text())

    def __getitem__(self, name: str):
        from megatron_ext.hf.shards import read_tensor

        return read_tensor(*self._where[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def dtypes(self) -> dict[str, int]:
        """Elements per safetensors dtype ("BF16", "F32" …), from the headers."""
        counts: dict[str, int] = {}
        for _, _, entry in self._where.values():
            n = 1
            for d in entry["shape"]:
                n *= d
            counts[entry["dtype"]] = counts.get(entry["dtype"], 0) + n
        return counts


def source_dtype(tensors: SafetensorsDir) -> str:
    """The dtype ("bf16" | "fp16" | "fp32") of most of an HF model's elements."""
    counts = tensors.dtypes()
    names = {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}
    main = max(counts, key=counts.get) if counts else "F32"
    if main not in names:
        raise ConvertError(f"{tensors.dir}: weights stored as {main}; only BF16, F16 and F32 are read")
    return names[main]


def check_output(out: Path, *, overwrite: bool) -> None:
    """Refuse an ``out`` that may not be (re)written.

    Raises:
        ConvertError: ``out`` exists and is not empty (without ``overwrite``), or it is not a model
            directory (never replaced, even with ``overwrite``).
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ConvertError(f"--output {out} is a file, not a directory")
        present = sorted(p.name for p in out.iterdir())
        if present:
            if not overwrite:
                raise ConvertError(f"--output {out} already holds files ({', '.join(present[:5])}"
                                   f"{' …' if len(present) > 5 else ''}); choose a new directory, or pass "
                                   "--overwrite to replace the model in it")
            if not any((out / m).exists() for m in MODEL_MARKERS):
                raise ConvertError(f"--output {out} is not a model directory (no config.json or safetensors); "
                                   "refusing to replace it even with --overwrite")


def prepare_output(out: Path, *, overwrite: bool) -> Path:
    """The temporary directory to write an export to, after :func:`check_output`."""
    out = Path(out)
    check_output(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(out, f"tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def check_tokenizer_vocab(tokenizer_dir: Path, tokens: int, padded_vocab: int, hf_vocab: int) -> None:
    """Refuse a tokenizer that does not belong to a model with ``padded_vocab`` embedding rows.

    ``tokens`` is ``len(tokenizer)``; ``hf_vocab`` the rows the export keeps. A ``midm tokenizer``
    directory records its padded size (``midm_tokenizer.json``), which must equal the model's; any
    other tokenizer must fit in the exported rows and leave fewer than :data:`MAX_VOCAB_PADDING`
    padding rows.

    Raises:
        ConvertError: the tokenizer and the model's vocabulary disagree (the message gives both sizes).
    """
    meta = Path(tokenizer_dir) / "midm_tokenizer.json"
    hint = ("export with the tokenizer the model was trained with (its size decides the recipe's "
            "model.vocab_size)")
    if meta.is_file():
        padded = json.loads(meta.read_text()).get("padded_vocab_size")
        if padded is not None and padded != padded_vocab:
            raise ConvertError(f"--tokenizer {tokenizer_dir} pads to {padded} ids but the model has {padded_vocab} "
                               f"embedding rows: {hint}")
    if tokens > hf_vocab:
        raise ConvertError(f"the tokenizer has {tokens} tokens but the model only {hf_vocab} embedding rows: {hint}")
    if padded_vocab - tokens >= MAX_VOCAB_PADDING:
        raise ConvertError(f"--tokenizer {tokenizer_dir} has {tokens} tokens but the model has {padded_vocab} "
                           f"embedding rows ({padded_vocab - tokens} more; vocabulary padding is under "
                           f"{MAX_VOCAB_PADDING}): {hint}")


# What ``AutoTokenizer.from_pretrained`` reads a vocabulary from (``save_pretrained`` / ``midm tokenizer
# export`` write tokenizer.json; slow SentencePiece / BPE / WordPiece tokenizers one of the others).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def check_tokenizer_dir(tokenizer_dir: Path) -> Path:
    """``tokenizer_dir`` when it is a local Hugging Face tokenizer directory; nothing is loaded or downloaded.

    ``--tokenizer`` is always a local path (the export is written from our own files): a missing
    path is refused here instead of being looked up on the Hub.

    Raises:
        ConvertError: the path does not exist, is not a directory, or holds none of :data:`TOKENIZER_FILES`.
    """
    d = Path(tokenizer_dir)
    what = (f"a tokenizer directory with one of {', '.join(TOKENIZER_FILES)} in it (`midm tokenizer export` or "
            "save_pretrained output)")
    if not d.exists():
        raise ConvertError(f"--tokenizer {d} does not exist; give {what}")
    if not d.is_dir():
        raise ConvertError(f"--tokenizer {d} is a file; give {what}")
    if not any((d / name).is_file() for name in TOKENIZER_FILES):
        raise ConvertError(f"--tokenizer {d} is not a tokenizer directory: it holds none of "
                           f"{', '.join(TOKENIZER_FILES)} (write one with `midm tokenizer export` or save_pretrained)")
    return d
