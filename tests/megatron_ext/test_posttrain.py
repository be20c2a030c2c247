"""What `midm sft` and `midm dpo` check of their data against the initial checkpoint
(``megatron_ext/posttrain.py``), at the CLI and before any process group: data tokenized with
another tokenizer than the base model's, and data made longer than the model's positions, are
refused in one line that names the data folder, both vocabularies and the command to re-run.

Only a checkpoint's ``recipe.json`` is read by these checks, so the checkpoints here hold just that.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TEST_DATA


def recipe_checkpoint(root: Path, name: str, *overrides: str) -> Path:
    """A checkpoint root whose ``latest`` iteration holds the recipe ``name`` (with ``overrides``)."""
    from recipes import get_recipe, recipe_to_dict

    (root / "iter_0000001").mkdir(parents=True)
    (root / "iter_0000001" / "recipe.json").write_text(json.dumps(recipe_to_dict(get_recipe(name, list(overrides)))))
    (root / "latest").write_text("iter_0000001")
    return root


@pytest.fixture(scope="module")
def made(chat_tokenizer_dir, tmp_path_factory) -> dict[str, Path]:
    """SFT and preference data from the 2,048-id chat tokenizer, each at a short and an over-long --seq-length."""
    from data_prep.prefs.build import build as build_prefs
    from data_prep.sft.build import build as build_sft

    root = tmp_path_factory.mktemp("posttrain")
    tok = str(chat_tokenizer_dir)
    for seq in (256, 4096):
        build_sft([str(TEST_DATA / "sft" / "chatbot.jsonl")], root / f"sft{seq}", tok, seq_length=seq)
        build_prefs([str(TEST_DATA / "prefs" / "square_pairs.jsonl")], root / f"prefs{seq}", tok, seq_length=seq)
    # the base was pretrained with a 4,096-id tokenizer: the default tiny_mini, and what
    # `midm data tokenize` records beside its data (OUT_PREFIX.summary.json: "tokenizer")
    (root / "ko_web.summary.json").write_text(json.dumps({"tokenizer": "tok4k"}))
    made = {"base4k": recipe_checkpoint(root / "base4k", "tiny_mini", f"data.blend={root / 'ko_web'}"),
            "base2k": recipe_checkpoint(root / "base2k", "tiny_mini", "model.vocab_size=2048")}
    return made | {p.name: p for p in root.iterdir() if p.name.startswith(("sft", "prefs"))}


def _stage(stage: str, data: Path, base: Path) -> list[str]:
    if stage == "sft":
        return ["sft", "--recipe", "tiny_sft", "--data", str(data), "--base", str(base)]
    return ["dpo", "--recipe", "tiny_dpo", "--data", str(data), "--reference", str(base)]


@pytest.mark.parametrize("stage, command", [("sft", "midm data sft"), ("prefs", "midm data prefs")])
def test_data_must_fit_the_base_checkpoint(made, chat_tokenizer_dir, stage, command, capsys, tmp_path, monkeypatch):
    from midm.cli import main

    monkeypatch.chdir(tmp_path)  # a run that wrongly started would write here, not in the repository
    cli = "sft" if stage == "sft" else "dpo"
    data = made[f"{stage}256"]
    assert main(_stage(cli, data, made["base4k"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (f"{data} was tokenized with tokenizer {chat_tokenizer_dir} (padded vocabulary 2048) but the "
            f"{'base' if cli == 'sft' else 'initial'} checkpoint {made['base4k']} has model.vocab_size 4096, "
            f"trained on data tokenized with tok4k: re-run `{command}` with --tokenizer") in err, err

    long = made[f"{stage}4096"]
    assert main(_stage(cli, long, made["base2k"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (f"{long} was made with `{command} --seq-length 4096` but the model's max_position_embeddings is 1024: "
            f"re-run `{command}` with --seq-length ≤ 1024") in err, err
    assert not (tmp_path / "runs").exists()


def test_matching_data_adopts_the_base_model_and_the_data_length(made):
    from megatron_ext.dpo import dpo_recipe
    from megatron_ext.sft import sft_recipe
    from recipes import get_recipe

    recipe, _ = sft_recipe(get_recipe("tiny_sft", [f"sft.dataset={made['sft256']}",
                                                   f"checkpoint.load={made['base2k']}"]))
    assert recipe.model.vocab_size == 2048 and recipe.data.seq_length == 256
    recipe, _ = dpo_recipe(get_recipe("tiny_dpo", [f"dpo.dataset={made['prefs256']}",
                                                   f"checkpoint.load={made['base2k']}"]))
    assert recipe.model.vocab_size == 2048 and recipe.data.seq_length == 256


def test_data_of_another_tokenizer_of_the_same_size_is_refused(made, chat_tokenizer_dir, other_chat_tokenizer_dir,
                                                              capsys, tmp_path, monkeypatch):
    """Same padded vocabulary (2,048), other pieces: told apart by the fingerprints the data's index and the
    base checkpoint's trainer_state.json record; refused at the CLI in one line naming both tokenizers,
    accepted with checkpoint.allow_tokenizer_change, and never checked when the checkpoint records none."""
    from data_prep.prefs.build import build as build_prefs
    from data_prep.sft.build import build as build_sft
    from megatron_ext.dpo import dpo_recipe
    from megatron_ext.sft import sft_recipe
    from midm.cli import main
    from recipes import get_recipe
    from tokenizer.fingerprint import fingerprint

    mine, other = fingerprint(chat_tokenizer_dir), fingerprint(other_chat_tokenizer_dir)
    for stage in ("sft", "prefs"):  # what `midm data sft` / `prefs` record beside the padded size
        index = json.loads((made[f"{stage}256"] / "index.json").read_text())
        assert (index["tokenizer"], index["tokenizer_fingerprint"]) == (str(chat_tokenizer_dir), mine)
    sft = build_sft([str(TEST_DATA / "sft" / "chatbot.jsonl")], tmp_path / "sft", str(other_chat_tokenizer_dir),
                    seq_length=256)
    assert sft["kept"]
    build_prefs([str(TEST_DATA / "prefs" / "square_pairs.jsonl")], tmp_path / "prefs", str(other_chat_tokenizer_dir),
                seq_length=256)
    base = made["base2k"]
    state = base / "iter_0000001" / "trainer_state.json"
    state.write_text(json.dumps({"step": 1, "consumed_samples": 8, "tokenizer": str(chat_tokenizer_dir),
                                 "tokenizer_fingerprint": mine}))
    monkeypatch.chdir(tmp_path)
    try:
        for cli, data in (("sft", tmp_path / "sft"), ("dpo", tmp_path / "prefs")):
            assert main(_stage(cli, data, base)) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            role = "base" if cli == "sft" else "initial"
            assert (f"the training data ({data}) was made with tokenizer {other_chat_tokenizer_dir} (fingerprint "
                    f"{other}) but the {role} checkpoint {base} was trained with tokenizer {chat_tokenizer_dir} "
                    f"(fingerprint {mine})") in err, err
            assert "--set checkpoint.allow_tokenizer_change=true" in err
        assert not (tmp_path / "runs").exists()
        # the matching data, and the escape hatch
        sft_recipe(get_recipe("tiny_sft", [f"sft.dataset={made['sft256']}", f"checkpoint.load={base}"]))
        dpo_recipe(get_recipe("tiny_dpo", [f"dpo.dataset={made['prefs256']}", f"checkpoint.load={base}"]))
        sft_recipe(get_recipe("tiny_sft", [f"sft.dataset={tmp_path / 'sft'}", f"checkpoint.load={base}",
                                           "checkpoint.allow_tokenizer_change=true"]))
    finally:
        state.unlink()  # the other tests' base records no tokenizer (checkpoints from before fingerprints)
    sft_recipe(get_recipe("tiny_sft", [f"sft.dataset={tmp_path / 'sft'}", f"checkpoint.load={base}"]))
