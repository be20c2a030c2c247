"""Which tokenizer made some data or weights, and refusing to mix two (torch-free).

A padded vocabulary size does not identify a tokenizer: two tokenizers of the same ``--vocab-size``
map the same ids to different pieces, and a model trained on one learns garbage from data of the
other. So every producer records the tokenizer's fingerprint (``tokenizer/fingerprint.py``) next to
the tokenizer path it was given, under the same two keys — ``"tokenizer"`` (the path as given) and
``"tokenizer_fingerprint"``:

* ``midm data tokenize`` → ``OUT_PREFIX.summary.json``; ``midm data sft`` / ``prefs`` → ``OUT/index.json``;
* checkpoints → ``iter_*/trainer_state.json``: a training run takes them from its data (the blend's
  summaries, the SFT / DPO folder's index), else from the checkpoint it started from or resumed;
  ``midm dus`` / ``prune`` / ``convert reshard`` carry the source's forward; ``convert from-hf``
  fingerprints the HF directory's tokenizer (else takes the one ``convert to-hf`` recorded for an export
  without tokenizer files).

and the checks below compare them where two meet, before any heavy work: a blend whose prefixes
record different tokenizers (always an error), data against the checkpoint a run starts from or
resumes, a teacher / reference against the data, ``convert to-hf --tokenizer DIR`` against the
checkpoint, and the ``--calib`` data of ``midm prune`` / ``dus --map scored:L`` against the source
checkpoint (``midm slurm submit`` runs the trainers' checks on the login node). A record without the
field (written before it existed) is *unknown* and never checked. A deliberate change (e.g. a tokenizer
extended in place, its old ids kept) passes with ``--set checkpoint.allow_tokenizer_change=true``
(``convert to-hf``, ``prune``, ``dus``: ``--allow-tokenizer-mismatch``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from midm.errors import MidmError
from tokenizer.fingerprint import FIELD

PATH_FIELD = "tokenizer"
ALLOW_TOKENIZER_CHANGE = "checkpoint.allow_tokenizer_change"
ALLOW_HINT = f"--set {ALLOW_TOKENIZER_CHANGE}=true"


class TokenizerMismatchError(MidmError, RuntimeError):
    """Data or weights made with another tokenizer than what they are combined with (exit 2)."""


@dataclass(frozen=True)
class TokenizerRecord:
    """A tokenizer as recorded by whoever made some data or weights."""

    fingerprint: str
    path: str | None = None  # the tokenizer directory as it was given then

    def __str__(self) -> str:
        return f"tokenizer {self.path} (fingerprint {self.fingerprint})" if self.path else \
            f"a tokenizer of fingerprint {self.fingerprint}"

    def as_state(self) -> dict[str, str]:
        """The two keys this record is stored under (summaries, index.json, trainer_state.json)."""
        return {PATH_FIELD: self.path or "", FIELD: self.fingerprint}


def from_record(record: dict | None) -> TokenizerRecord | None:
    """The tokenizer a JSON record (summary, index, trainer state) names; None when it has no fingerprint."""
    if not isinstance(record, dict):
        return None
    fp = record.get(FIELD)
    if not isinstance(fp, str) or not fp:
        return None
    path = record.get(PATH_FIELD)
    return TokenizerRecord(fp, path if isinstance(path, str) and path else None)


def of_directory(directory: str | os.PathLike) -> TokenizerRecord | None:
    """Fingerprint a tokenizer directory now (None when it holds no vocabulary this can read)."""
    from tokenizer.fingerprint import fingerprint_or_none

    fp = fingerprint_or_none(directory)
    return TokenizerRecord(fp, os.fspath(directory)) if fp else None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def of_prefix(prefix: str) -> TokenizerRecord | None:
    """What ``PREFIX.summary.json`` (``midm data tokenize``) records; None when absent or older."""
    return from_record(_read_json(Path(f"{prefix}.summary.json")))


def of_blend(prefixes: list[str]) -> TokenizerRecord | None:
    """The one tokenizer a blend's prefixes record (prefixes recording none are unknown and skipped).

    Raises:
        TokenizerMismatchError: two prefixes record different tokenizers.
    """
    found: tuple[str, TokenizerRecord] | None = None
    for prefix in prefixes:
        record = of_prefix(prefix)
        if record is None:
            continue
        if found is None:
            found = (prefix, record)
        elif record.fingerprint != found[1].fingerprint:
            raise TokenizerMismatchError(
                f"the blend mixes tokenizers: {found[0]} was tokenized with {found[1]}, {prefix} with {record}; "
                "re-run `midm data tokenize` on one of them with the other's --tokenizer")
    return found[1] if found else None


def of_dataset(folder: str | os.PathLike) -> TokenizerRecord | None:
    """What a ``midm data sft`` / ``midm data prefs`` folder's ``index.json`` records."""
    return from_record(_read_json(Path(folder) / "index.json"))


def of_data(recipe) -> TokenizerRecord | None:
    """The tokenizer of the data ``recipe`` trains on: its blend's (:func:`of_blend`), else its SFT /
    DPO folder's; None when the data record none. Raises what :func:`of_blend` raises."""
    d = recipe.data
    if d.blend or d.blend_file:
        from megatron_ext.data_check import DataError, resolve_blend

        try:
            prefixes, _ = resolve_blend(recipe)
        except DataError:
            return None  # the data check names the problem
        return of_blend(prefixes)
    for section in (getattr(recipe, "dpo", None), getattr(recipe, "sft", None)):
        if section is not None and section.dataset:
            return of_dataset(section.dataset)
    return None


def of_checkpoint(path: str | os.PathLike) -> TokenizerRecord | None:
    """What a checkpoint's ``trainer_state.json`` records (root: the iteration ``latest`` names)."""
    from megatron_ext.checkpoint_output import iteration_dir

    return from_record(_read_json(iteration_dir(path) / "trainer_state.json"))


def require_same(made: TokenizerRecord | None, used: TokenizerRecord | None, *, made_says: str, used_says: str,
                 fix: str, allow: bool = False, allow_hint: str = ALLOW_HINT) -> None:
    """Refuse to combine ``made`` (e.g. the data) with ``used`` (e.g. the checkpoint) when their tokenizers differ.

    Nothing is checked when either is unknown (None) or ``allow`` is set. The message is one line:
    ``"{made_says} {made} but {used_says} {used}: … {fix}; if the change is deliberate, add {allow_hint}"``,
    e.g. ``made_says="the training data (DIR) was made with"``, ``used_says="checkpoint C was trained with"``.

    Raises:
        TokenizerMismatchError: both known, different fingerprints, not allowed.
    """
    if allow or made is None or used is None or made.fingerprint == used.fingerprint:
        return
    raise TokenizerMismatchError(f"{made_says} {made} but {used_says} {used}: the same ids mean other pieces "
                                 f"in each. {fix}; if the change is deliberate, add {allow_hint}")


def check_data_against_checkpoint(recipe, checkpoint: str | os.PathLike, *, role: str) -> None:
    """The data ``recipe`` trains on must come from the tokenizer ``checkpoint`` (``role``: "initial",
    "teacher", "reference") was trained with, unless ``checkpoint.allow_tokenizer_change``.

    Raises:
        TokenizerMismatchError: they differ (also when the blend itself mixes tokenizers).
    """
    data = of_data(recipe)
    if data is None:
        return
    check_record_against_checkpoint(data, data_name(recipe), checkpoint, role=role,
                                    allow=bool(getattr(recipe.checkpoint, "allow_tokenizer_change", False)))


def check_record_against_checkpoint(data: TokenizerRecord | None, name: str, checkpoint: str | os.PathLike, *,
                                    role: str, allow: bool = False) -> None:
    """:func:`check_data_against_checkpoint` on a data record already read (``name``: the data, for the
    message), e.g. by ``midm slurm submit``, which resolves paths against the job's working directory.

    Raises:
        TokenizerMismatchError: both known, different fingerprints, not ``allow``.
    """
    require_same(data, of_checkpoint(checkpoint), made_says=f"the training data ({name}) was made with",
                 used_says=f"the {role} checkpoint {checkpoint} was trained with",
                 fix="Make the data again with the checkpoint's tokenizer (`midm data tokenize|sft|prefs "
                     "--tokenizer DIR`) or start from a checkpoint trained with the data's tokenizer", allow=allow)


def check_checkpoints_agree(checkpoint: str | os.PathLike, role: str, other: str | os.PathLike | None,
                            other_role: str, *, allow: bool = False) -> None:
    """Two checkpoints whose logits are compared id by id (``--teacher`` and the student, ``--reference``
    and the policy: ``other`` = ``checkpoint.load``, None to skip) must record one tokenizer — checked
    directly, so data made before fingerprints (unknown, never checked) does not let them differ.

    Raises:
        TokenizerMismatchError: both record a fingerprint and they differ, not ``allow``.
    """
    if not other:
        return
    require_same(of_checkpoint(checkpoint), of_checkpoint(other), made_says=f"the {role} checkpoint {checkpoint} "
                 f"was trained with", used_says=f"the {other_role} checkpoint {other} with",
                 fix=f"The {role} and {other_role} models must share one tokenizer (their logits are compared id by "
                     "id)", allow=allow)


def check_calibration(prefix: str, checkpoint: str | os.PathLike, *, allow: bool = False) -> None:
    """``midm prune --calib PREFIX`` / ``midm dus --map scored:L --calib PREFIX``: the calibration windows
    must come from the tokenizer ``checkpoint`` was trained with — on another tokenizer's ids the
    activations (and so the neurons, heads and blocks kept) measure nothing. ``allow``:
    ``--allow-tokenizer-mismatch``.

    Raises:
        TokenizerMismatchError: both record a fingerprint and they differ, not allowed.
    """
    require_same(of_prefix(prefix), of_checkpoint(checkpoint), made_says=f"--calib {prefix} was tokenized with",
                 used_says=f"checkpoint {checkpoint} was trained with",
                 fix="Calibrate on data tokenized with the checkpoint's tokenizer (`midm data tokenize … "
                     "--tokenizer DIR`)", allow=allow, allow_hint="--allow-tokenizer-mismatch")


def carried(checkpoint: str | os.PathLike) -> dict[str, str]:
    """The tokenizer keys of ``checkpoint``'s ``trainer_state.json``, for a checkpoint derived from it
    (``midm dus`` / ``prune`` / ``convert reshard``); empty when it records none."""
    record = of_checkpoint(checkpoint)
    return record.as_state() if record else {}


def data_name(recipe) -> str:
    """The data ``recipe`` trains on, for messages: the SFT / DPO folder, the blend file or the prefixes."""
    for section in (getattr(recipe, "dpo", None), getattr(recipe, "sft", None)):
        if section is not None and section.dataset:
            return str(section.dataset)
    d = recipe.data
    return d.blend_file or " ".join(p for p in d.blend if not _is_number(p)) or "data.blend"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["ALLOW_TOKENIZER_CHANGE", "PATH_FIELD", "TokenizerMismatchError", "TokenizerRecord", "carried",
           "check_calibration", "check_checkpoints_agree", "check_data_against_checkpoint",
           "check_record_against_checkpoint", "data_name", "from_record", "of_blend", "of_checkpoint", "of_data",
           "of_dataset", "of_directory", "of_prefix", "require_same"]
