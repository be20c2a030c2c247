"""The HF directory side of conversion (``megatron_ext/hf_files.py``): an existing model is never
replaced without ``--overwrite`` (and a directory that is not a model never), the export appears
whole or not at all, and a tokenizer of another vocabulary is refused."""
from __future__ import annotations

import json

import pytest


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    from megatron_ext.hf.registry import ConvertError
    from megatron_ext.hf_files import prepare_output, publish

    out = tmp_path / "hf"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(ConvertError, match="--overwrite"):
        prepare_output(out, overwrite=False)
    assert (out / "config.json").read_text() == "{}"
    tmp = prepare_output(out, overwrite=True)
    assert (out / "config.json").exists()  # nothing replaced until the new export is complete
    (tmp / "config.json").write_text('{"new": 1}')
    publish(tmp, out)
    assert json.loads((out / "config.json").read_text()) == {"new": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # no temporary or old copy left


def test_a_directory_that_is_not_a_model_is_never_replaced(tmp_path):
    from megatron_ext.hf.registry import ConvertError
    from megatron_ext.hf_files import prepare_output

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConvertError, match="not a model directory"):
        prepare_output(tmp_path, overwrite=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_output(empty, overwrite=False).is_dir()


@pytest.mark.parametrize("tokens, padded, hf_vocab, meta_padded, message", [
    (4088, 8192, 8192, None, "4104 more"),          # a 4,096-id tokenizer on an 8,192-row model
    (4088, 8192, 8192, 4096, "pads to 4096"),        # the same, from `midm tokenizer train` (records its padding)
    (300, 256, 256, None, "only 256 embedding rows"),
])
def test_tokenizer_of_another_vocabulary_is_refused(tmp_path, tokens, padded, hf_vocab, meta_padded, message):
    from megatron_ext.hf.registry import ConvertError
    from megatron_ext.hf_files import check_tokenizer_vocab

    if meta_padded is not None:
        (tmp_path / "midm_tokenizer.json").write_text(json.dumps({"padded_vocab_size": meta_padded}))
    with pytest.raises(ConvertError, match=message):
        check_tokenizer_vocab(tmp_path, tokens, padded, hf_vocab)


def test_tokenizer_of_the_model_passes(tmp_path):
    from megatron_ext.hf_files import check_tokenizer_vocab

    check_tokenizer_vocab(tmp_path, 131_384, 131_392, 131_392)  # Mi:dm: 8 spare ids
    check_tokenizer_vocab(tmp_path, 290, 384, 384)
    (tmp_path / "midm_tokenizer.json").write_text(json.dumps({"padded_vocab_size": 4096}))
    check_tokenizer_vocab(tmp_path, 4088, 4096, 4088)  # --trim-vocab
