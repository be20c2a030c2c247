"""Torch-free checks of a recipe's training data: blend, ``.bin/.idx`` pairs, vocabulary and split sizes.

Run by the trainer before any process group starts and by ``midm slurm submit`` on the login node
(so this module imports neither torch nor Megatron-Core; the ``.idx`` header is read with
``struct``/NumPy exactly as ``megatron.core.datasets.indexed_dataset._IndexReader`` reads it).

The split check mirrors Megatron-Core's arithmetic (``blended_megatron_dataset_config.
parse_and_normalize_split`` / ``convert_split_vector_to_split_matrix`` and the
``int(round(fraction * n))`` bounds of ``BlendedMegatronDatasetBuilder._build_megatron_dataset_splits``).
A split that gets zero tokens makes ``GPTDataset._get_num_epochs`` loop forever (``num_tokens +=
0``; the kind of Megatron-LM issue #957), so such a split is an error here, naming the prefix, the
split, the document counts and what to change.
"""
from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from midm.errors import MidmError

SPLIT_NAMES = ("train", "valid", "test")
# The splits the trainer builds (test is never read, so it is never built; see data.build_datasets).
BUILT_SPLITS = ("train", "valid")
_INDEX_HEADER = b"MMIDIDX\x00\x00"
# megatron.core.datasets.indexed_dataset.DType codes → NumPy dtype names
_DTYPE_CODES = {1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float64", 7: "float32", 8: "uint16"}


class DataError(MidmError, RuntimeError):
    """A data prefix that is missing, truncated, too small for the split or does not match the model."""


@dataclass(frozen=True)
class PrefixIndex:
    """What a Megatron ``.idx`` says: token dtype, per-sequence lengths (tokens) and byte offsets."""

    prefix: str
    dtype: str
    sequence_lengths: "object"  # numpy int32 [num_sequences]
    sequence_pointers: "object"  # numpy int64 [num_sequences], byte offsets into .bin
    num_documents: int

    @property
    def num_sequences(self) -> int:
        return int(self.sequence_lengths.shape[0])


def resolve_blend(recipe, base_dir: str | Path | None = None) -> tuple[list[str], list[float] | None]:
    """(prefixes, weights) from ``data.blend`` or ``data.blend_file``.

    Relative paths resolve against ``base_dir`` when given (the Slurm job's working directory);
    prefixes inside a blend file resolve against the file's folder. Raises ``DataError``.
    """
    data = recipe.data

    def here(path: str) -> str:
        return str(Path(base_dir) / path) if base_dir is not None and not Path(path).is_absolute() else path

    if data.blend_file:
        path = Path(here(data.blend_file))
        if not path.is_file():
            raise DataError(f"data.blend_file {path} does not exist (write one with `midm data mix`)")
        spec = json.loads(path.read_text())
        pairs = spec.get("blend")
        if not pairs:
            raise DataError(f"{path}: expected a non-empty \"blend\": [[weight, prefix], …]")
        prefixes = [str(p) if Path(p).is_absolute() else str(path.parent / p) for _, p in pairs]
        return prefixes, [float(w) for w, _ in pairs]
    items = list(data.blend)
    if not items:
        raise DataError("data.blend is empty: point it at a Megatron prefix written by `midm data tokenize`, "
                        "e.g. --set data.blend=/data/ko_web_text_document")
    if len(items) == 1:
        return [here(items[0])], None
    if len(items) % 2:
        raise DataError(f"data.blend must be PREFIX or pairs of WEIGHT PREFIX, got {items}")
    try:
        weights = [float(w) for w in items[0::2]]
    except ValueError:
        raise DataError(f"data.blend pairs must be WEIGHT PREFIX (weight first), got {items}") from None
    return [here(p) for p in items[1::2]], weights


def read_index(prefix: str) -> PrefixIndex:
    """Read ``PREFIX.idx`` (Megatron ``MMIDIDX`` version 1) without torch; raises ``DataError``.

    Layout (``indexed_dataset._IndexWriter``): 9-byte magic, u64 version, u8 dtype code, u64 sequence
    count, u64 document count, then int32 lengths, int64 pointers, int64 document indices.
    """
    import numpy as np

    idx_path = prefix + ".idx"
    try:
        with open(idx_path, "rb") as stream:
            header = stream.read(9)
            if header != _INDEX_HEADER:
                raise DataError(f"data prefix {prefix!r}: {idx_path} is not a Megatron index (bad header)")
            version, code = struct.unpack("<QB", stream.read(9))
            seq_count, doc_count = struct.unpack("<QQ", stream.read(16))
            offset = stream.tell()
        if version != 1 or code not in _DTYPE_CODES:
            raise DataError(f"data prefix {prefix!r}: unsupported index (version {version}, dtype code {code})")
        buffer = np.memmap(idx_path, mode="r", dtype=np.uint8)
        needed = offset + seq_count * 12 + doc_count * 8
        if buffer.shape[0] < needed:
            raise DataError(f"data prefix {prefix!r}: {idx_path} is truncated ({buffer.shape[0]} of {needed} bytes); "
                            "re-run `midm data tokenize`")
        lengths = np.frombuffer(buffer, dtype=np.int32, count=seq_count, offset=offset)
        pointers = np.frombuffer(buffer, dtype=np.int64, count=seq_count, offset=offset + lengths.nbytes)
    except (OSError, struct.error) as err:
        raise DataError(f"data prefix {prefix!r}: unreadable index ({err})") from err
    return PrefixIndex(prefix, _DTYPE_CODES[code], lengths, pointers, max(int(doc_count) - 1, 0))


def check_prefix(prefix: str, vocab_size: int, sample_docs: int = 2000) -> int:
    """Validate one prefix (files present, ``.bin`` consistent with ``.idx``, ids < ``vocab_size``).

    Returns the number of sequences (one per document for ``midm data tokenize`` output). Raises
    ``DataError`` naming the file and the fix.
    """
    return _check_files(prefix, vocab_size, sample_docs).num_sequences


def _check_files(prefix: str, vocab_size: int, sample_docs: int = 2000) -> PrefixIndex:
    import numpy as np

    idx, bin_ = Path(prefix + ".idx"), Path(prefix + ".bin")
    missing = [str(p) for p in (idx, bin_) if not p.is_file()]
    if missing:
        raise DataError(f"data prefix {prefix!r}: missing {', '.join(missing)} (a prefix is the path without "
                        ".bin/.idx; create it with `midm data tokenize`)")
    index = read_index(prefix)
    itemsize = np.dtype(index.dtype).itemsize
    n = index.num_sequences
    expected = int(index.sequence_pointers[-1]) + int(index.sequence_lengths[-1]) * itemsize if n else 0
    if bin_.stat().st_size != expected:
        raise DataError(f"data prefix {prefix!r}: {bin_.name} has {bin_.stat().st_size} bytes but the index "
                        f"describes {expected}; the pair is truncated or mismatched — re-run `midm data tokenize`")
    if n:
        tokens = np.memmap(bin_, mode="r", dtype=index.dtype)
        max_id = 0
        for i in range(0, n, max(1, n // sample_docs)):
            length = int(index.sequence_lengths[i])
            if length:
                start = int(index.sequence_pointers[i]) // itemsize
                max_id = max(max_id, int(tokens[start:start + length].max()))
        if max_id >= vocab_size:
            raise DataError(f"data prefix {prefix!r} contains token id {max_id} but model.vocab_size is {vocab_size}: "
                            "it was tokenized with a different tokenizer (set model.vocab_size to the tokenizer's "
                            "padded size)")
    return index


def split_fractions(split: str) -> list[float]:
    """``"969,30,1"`` → normalised [train, valid, test] fractions, as Megatron-Core parses them."""
    import numpy as np

    try:
        values = [float(x) for x in re.findall(r"[.0-9]+", split)]
    except ValueError:
        values = []
    values += [0.0] * (len(SPLIT_NAMES) - len(values))
    if len(values) != len(SPLIT_NAMES) or not sum(values) > 0:
        raise DataError(f"data.split {split!r}: give three non-negative proportions train,valid,test such as 969,30,1")
    w = np.array(values, dtype=np.float64)
    return (w / np.sum(w)).tolist()


def split_ranges(split: str, num_sequences: int) -> list[tuple[int, int] | None]:
    """[train, valid, test] sequence ranges ``[begin, end)`` of one prefix (None: share 0, not built).

    The same bounds as ``BlendedMegatronDatasetBuilder``: cumulative fractions, then
    ``int(round(bound * float(n)))`` (Python's round: half to even).
    """
    return _ranges(_edges(split), num_sequences)


def _edges(split: str) -> list[float]:
    edges = [0]
    for fraction in split_fractions(split):
        edges.append(edges[-1] + fraction)
    return edges


def _ranges(edges: list[float], n: int) -> list[tuple[int, int] | None]:
    return [None if hi <= lo else (int(round(lo * float(n))), int(round(hi * float(n))))
            for lo, hi in zip(edges[:-1], edges[1:])]


def _min_sequences(split: str, start: int) -> int:
    """The smallest prefix size ≥ ``start`` whose built splits all get at least one sequence.

    Vectorised over candidate sizes (NumPy's round is half-to-even like Python's); a share f gets a
    sequence once f·n ≥ 1.5 at the latest, so the candidates end within 2/f of ``start``.
    """
    import numpy as np

    edges = _edges(split)
    built = [i for i, name in enumerate(SPLIT_NAMES) if name in BUILT_SPLITS and edges[i + 1] > edges[i]]
    start = max(start, 1)
    n = np.arange(start, start + int(2 / min(edges[i + 1] - edges[i] for i in built)) + 2, dtype=np.float64)
    ok = np.ones(n.shape, dtype=bool)
    for i in built:
        ok &= np.round(edges[i + 1] * n) > np.round(edges[i] * n)
    return int(n[np.argmax(ok)])


def check_split(index: PrefixIndex, split: str) -> dict[str, int]:
    """Tokens per built split of one prefix; raises ``DataError`` when a built split would be empty.

    An empty split would hang GPTDataset's epoch computation forever (it adds 0 tokens per epoch
    until it has the requested samples).
    """
    ranges = split_ranges(split, index.num_sequences)
    tokens: dict[str, int] = {}
    empty: list[str] = []
    for name, bounds in zip(SPLIT_NAMES, ranges):
        if name not in BUILT_SPLITS or bounds is None:
            continue
        tokens[name] = int(index.sequence_lengths[bounds[0]:bounds[1]].sum())
        if tokens[name] == 0:
            empty.append(name)
    if empty:
        counts = ", ".join(f"{name} {r[1] - r[0] if r else 0}" for name, r in zip(SPLIT_NAMES, ranges))
        need = _min_sequences(split, index.num_sequences + 1)
        fixes = [f"give this prefix more documents (data.split={split} needs at least {need})"]
        if "valid" in empty:
            train_share = split.split(",")[0].strip() if "," in split else "1"
            fixes.append(f"drop validation with --set data.split={train_share},0,0")
        fixes.append("or leave this prefix out of data.blend")
        raise DataError(f"data prefix {index.prefix!r} has {index.num_sequences} documents; data.split={split} "
                        f"gives {counts} documents, so the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} "
                        f"would be empty (Megatron's GPTDataset never finishes building an empty split): "
                        + "; ".join(fixes))
    return tokens


def check_data(recipe, base_dir: str | Path | None = None) -> list[str]:
    """Validate every prefix of the recipe's blend: files, vocabulary, split sizes and that their
    ``PREFIX.summary.json`` files record one tokenizer (``tokenizer_check.of_blend``); returns the prefixes.

    Raises ``DataError`` (a ``MidmError``: exit 2 at the CLI) on the first problem.
    """
    prefixes, _ = resolve_blend(recipe, base_dir)
    if split_fractions(recipe.data.split)[0] == 0:
        raise DataError(f"data.split={recipe.data.split} gives training no documents: its first share is the "
                        "training share, e.g. 969,30,1")
    for prefix in prefixes:
        index = _check_files(prefix, recipe.model.vocab_size)
        check_split(index, recipe.data.split)
    from megatron_ext.tokenizer_check import TokenizerMismatchError, of_blend

    try:
        of_blend(prefixes)  # prefixes whose summaries record different tokenizers
    except TokenizerMismatchError as err:
        raise DataError(str(err)) from None
    return prefixes
