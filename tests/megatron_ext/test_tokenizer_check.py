"""``megatron_ext/tokenizer_check.py`` on the records alone (torch-free, milliseconds): pretraining data
against the checkpoint a run starts from (``checkpoint.load``) or distils from (``--teacher``); the
SFT/DPO, resume, blend, ``convert to-hf`` and ``--calib`` paths are tested with their stages (test_posttrain.py,
test_sft.py, test_data_check.py, test_prune.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _checkpoint(root, state: dict):
    (root / "iter_0000002").mkdir(parents=True)
    (root / "iter_0000002" / "trainer_state.json").write_text(json.dumps({"step": 2, **state}))
    (root / "latest").write_text("iter_0000002")
    return root


def test_pretraining_data_against_the_initial_or_teacher_checkpoint(tmp_path):
    from megatron_ext.tokenizer_check import TokenizerMismatchError, check_data_against_checkpoint
    from recipes import get_recipe

    (tmp_path / "ko.summary.json").write_text(json.dumps({"tokenizer": "tok_a", "tokenizer_fingerprint": "a" * 16}))
    (tmp_path / "old.summary.json").write_text(json.dumps({"tokenizer": "tok_a"}))  # before fingerprints
    same = _checkpoint(tmp_path / "same", {"tokenizer": "/x/tok_a", "tokenizer_fingerprint": "a" * 16})
    other = _checkpoint(tmp_path / "other", {"tokenizer": "tok_b", "tokenizer_fingerprint": "b" * 16})
    unknown = _checkpoint(tmp_path / "unknown", {})

    def recipe(prefix: str, *extra: str):
        return get_recipe("tiny", [f"data.blend={tmp_path / prefix}", *extra])

    with pytest.raises(TokenizerMismatchError) as err:
        check_data_against_checkpoint(recipe("ko"), other, role="teacher")
    assert str(err.value).startswith(
        f"the training data ({tmp_path / 'ko'}) was made with tokenizer tok_a (fingerprint {'a' * 16}) but the "
        f"teacher checkpoint {other} was trained with tokenizer tok_b (fingerprint {'b' * 16}): ")
    assert str(err.value).endswith("add --set checkpoint.allow_tokenizer_change=true") and "\n" not in str(err.value)
    check_data_against_checkpoint(recipe("ko", "checkpoint.allow_tokenizer_change=true"), other, role="teacher")
    check_data_against_checkpoint(recipe("ko"), same, role="initial")  # another path, the same vocabulary
    check_data_against_checkpoint(recipe("ko"), unknown, role="initial")  # checkpoint before fingerprints
    check_data_against_checkpoint(recipe("old"), other, role="initial")  # data before fingerprints
    check_data_against_checkpoint(recipe("missing"), other, role="initial")  # no summary at all


def test_calibration_data_against_the_source_checkpoint(tmp_path):
    """`midm prune` / `dus --map scored:L` --calib (the CLI refusal: test_prune.py): refused on another
    fingerprint unless allowed; the same one, or a record without one, passes."""
    from megatron_ext.tokenizer_check import TokenizerMismatchError, check_calibration

    (tmp_path / "ko.summary.json").write_text(json.dumps({"tokenizer": "tok_a", "tokenizer_fingerprint": "a" * 16}))
    other = _checkpoint(tmp_path / "other", {"tokenizer": "tok_b", "tokenizer_fingerprint": "b" * 16})
    with pytest.raises(TokenizerMismatchError, match="add --allow-tokenizer-mismatch$"):
        check_calibration(str(tmp_path / "ko"), other)
    check_calibration(str(tmp_path / "ko"), other, allow=True)
    check_calibration(str(tmp_path / "ko"), _checkpoint(tmp_path / "same", {"tokenizer_fingerprint": "a" * 16}))
    check_calibration(str(tmp_path / "ko"), _checkpoint(tmp_path / "unknown", {}))  # before fingerprints
    check_calibration(str(tmp_path / "missing"), other)  # a prefix without a summary


def test_the_checks_import_no_torch():
    code = ("import sys, megatron_ext.tokenizer_check, megatron_ext.data_check, megatron_ext.resume_check, "
            "megatron_ext.posttrain; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
