"""Data checks before any process group starts: split sizes exactly as Megatron-Core computes them.

A split that rounds to zero documents makes GPTDataset's epoch computation loop forever; the
trainer (and `midm slurm submit`) must refuse it with a message naming prefix, split and counts.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from megatron_ext.data_check import split_ranges
from tests.conftest import REPO
from tests.megatron_ext.byte_data import VOCAB, write_byte_prefix
from tests.megatron_ext.conftest import run_env

SPLITS = ["969,30,1", "95,5,0", "98,2", "1,1,1", "0.7,0.2,0.1", "949,50,1", "99.9,0.1,0", "3,0,1", "100,0,0"]


def test_split_ranges_match_megatron_core():
    from megatron.core.datasets.blended_megatron_dataset_config import (convert_split_vector_to_split_matrix,
                                                                         parse_and_normalize_split)

    for split in SPLITS:
        matrix = convert_split_vector_to_split_matrix(parse_and_normalize_split(split))
        for n in range(1500):
            expected = [None if b is None else (int(round(b[0] * float(n))), int(round(b[1] * float(n))))
                        for b in matrix]
            assert split_ranges(split, n) == expected, (split, n)


@pytest.fixture(scope="module")
def few(tmp_path_factory) -> dict[int, str]:
    out = tmp_path_factory.mktemp("few")
    return {n: write_byte_prefix(out, f"docs{n}", docs=n) for n in (3, 41)}


def _train_args(tmp_path, blend: str, *extra: str) -> list[str]:
    return ["train", "--recipe", "tiny", "--set", f"data.blend={blend}", "--set", f"model.vocab_size={VOCAB}",
            "--set", f"logging.dir={tmp_path}", "--set", "logging.run_name=r", *extra]


def test_a_split_left_empty_is_refused_naming_prefix_split_and_counts(few, byte_prefix, tmp_path, capsys):
    """In-process through the CLI: refused before any process group or model exists (exit 2)."""
    from midm.cli import main

    def error(*args: str) -> str:
        assert main(_train_args(tmp_path, *args)) == 2
        return capsys.readouterr().err

    err = error(few[3])  # tiny's own split, 95,5,0
    assert f"data prefix '{few[3]}' has 3 documents; data.split=95,5,0 gives train 3, valid 0" in err
    assert "needs at least 11" in err and "--set data.split=95,0,0" in err
    err = error(few[3], "--set", "data.split=969,30,1")  # every full-size recipe's split
    assert "has 3 documents" in err and "valid 0" in err
    err = error(f"0.9,{byte_prefix},0.1,{few[3]}")  # a blend containing such a prefix
    assert f"'{few[3]}' has 3 documents" in err
    assert "training no documents" in error(byte_prefix, "--set", "data.split=0,1,0")


def test_an_unused_test_split_is_not_built(few, tmp_path):
    """41 documents at 969,30,1: the test share rounds to 0 documents, and the trainer never reads it.

    Megatron-Core would loop forever building it; we build train and valid only (in a subprocess with a
    timeout, so a regression fails instead of hanging the suite)."""
    code = ("from recipes import get_recipe; from megatron_ext.data import build_datasets, check_data; "
            f"r = get_recipe('tiny', ['data.blend={few[41]}', 'data.split=969,30,1', 'model.vocab_size={VOCAB}', "
            f"'data.cache_dir={tmp_path}']); check_data(r); train, valid, test = build_datasets(r, 64, 16); "
            "print(len(train), len(valid), test)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=run_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_train, n_valid, test = proc.stdout.split()[-3:]
    assert int(n_train) >= 64 and int(n_valid) >= 16 and test == "None"


def test_a_blend_mixing_tokenizers_is_refused(few, tmp_path, capsys):
    """Each prefix's OUT_PREFIX.summary.json (`midm data tokenize`) records its tokenizer's fingerprint; two
    different ones in one blend are refused naming both prefixes and tokenizers. A summary without the field
    (older data) or no summary at all is unknown and passes."""
    import json
    import shutil

    from megatron_ext.data_check import DataError, check_data
    from midm.cli import main
    from recipes import get_recipe

    prefixes = []
    for name, fp in (("a", "aaaaaaaaaaaaaaaa"), ("b", "bbbbbbbbbbbbbbbb"), ("old", None), ("a2", "aaaaaaaaaaaaaaaa")):
        prefix = str(tmp_path / name)
        for ext in (".bin", ".idx"):
            shutil.copy(few[41] + ext, prefix + ext)
        summary = {"tokenizer": f"tok_{name}"} | ({"tokenizer_fingerprint": fp} if fp else {})
        (tmp_path / f"{name}.summary.json").write_text(json.dumps(summary))
        prefixes.append(prefix)
    a, b, old, a2 = prefixes

    def recipe(*blend: str):
        return get_recipe("tiny", [f"data.blend={','.join(blend)}", f"model.vocab_size={VOCAB}",
                                   "data.split=90,10,0"])

    assert check_data(recipe("0.5", a, "0.3", old, "0.2", a2)) == [a, old, a2]
    with pytest.raises(DataError) as err:
        check_data(recipe("0.5", a, "0.3", old, "0.2", b))
    assert (f"the blend mixes tokenizers: {a} was tokenized with tokenizer tok_a (fingerprint aaaaaaaaaaaaaaaa), "
            f"{b} with tokenizer tok_b (fingerprint bbbbbbbbbbbbbbbb)") in str(err.value)
    assert main(_train_args(tmp_path, f"0.5,{a},0.5,{b}", "--set", "data.split=90,10,0")) == 2
    assert "the blend mixes tokenizers" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
