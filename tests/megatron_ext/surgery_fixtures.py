"""Shared, cached artefacts for the DuS / prune / distill tests: a tiny model trained at TP=2 on the
committed corpus, its `midm prune` output, and a Megatron-free reader of dist-checkpoints.

Each artefact is built once per pytest session (the first test file that needs it pays for it).
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.megatron_ext.byte_data import VOCAB
from tests.megatron_ext.conftest import run_midm

TEACHER_STEPS = 12
MINI_SETS = ["--set", f"model.vocab_size={VOCAB}", "--set", "model.num_layers=4"]
_CACHE: dict[str, Path] = {}


def common_sets(run_root: Path, name: str, steps: int) -> list[str]:
    return ["--set", f"model.vocab_size={VOCAB}", "--set", f"logging.dir={run_root}",
            "--set", f"logging.run_name={name}",
            "--set", f"train.steps={steps}", "--set", f"train.eval_interval={steps}", "--set", "train.eval_steps=1",
            "--set", f"checkpoint.save_interval={steps}", "--set", "logging.tensorboard=false"]


def trained_tiny(root: Path, prefix: str) -> Path:
    """Checkpoint root of `tiny` trained TP=2 (2 gloo processes) for a few steps."""
    if "teacher" not in _CACHE:
        run_midm(["train", "--recipe", "tiny", "--set", f"data.blend={prefix}",
                  "--set", "parallel.tensor_model_parallel_size=2", *common_sets(root, "teacher", TEACHER_STEPS)],
                 nproc=2)
        _CACHE["teacher"] = root / "teacher" / "checkpoints"
    return _CACHE["teacher"]


def upscaled_tiny(root: Path, prefix: str) -> Path:
    """`midm dus --map solar:1` of the trained tiny model: the 6-layer `tiny_deep`."""
    if "upscaled" not in _CACHE:
        teacher = trained_tiny(root, prefix)
        out = root / "deep"
        run_midm(["dus", "--checkpoint", str(teacher), "--output", str(out), "--map", "solar:1",
                  "--recipe", "tiny_deep", "--set", f"model.vocab_size={VOCAB}"])
        _CACHE["upscaled"] = out
    return _CACHE["upscaled"]


def pruned_tiny(root: Path, prefix: str) -> Path:
    """`midm prune` of the trained tiny model to the `tiny_mini` width (hidden 64, FFN 192, tied; 4 layers
    here because the source is `tiny`, where the recipe's 6 layers come from `tiny_deep`)."""
    if "pruned" not in _CACHE:
        teacher = trained_tiny(root, prefix)
        out = root / "pruned"
        run_midm(["prune", "--checkpoint", str(teacher), "--output", str(out), "--recipe", "tiny_mini",
                  *MINI_SETS, "--calib", prefix, "--samples", "16"])
        _CACHE["pruned"] = out
    return _CACHE["pruned"]


def plain_tensors(path: Path, optimizer: bool = False) -> dict:
    """All tensors of a dist-checkpoint iter dir, whole (torch DCP, no process group, no Megatron)."""
    import warnings

    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    iter_dir = path / (path / "latest").read_text() if (path / "latest").is_file() else path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = _load_state_dict_from_keys(checkpoint_id=str(iter_dir))
    return {k: v for k, v in state.items() if hasattr(v, "shape") and (optimizer or not k.startswith("optimizer"))}


def summary(path: Path, name: str) -> dict:
    return json.loads((path / name).read_text())


def tree_bytes(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` by relative name, with its bytes (to show a directory left untouched)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def occupied_copy(checkpoints: Path, out: Path) -> Path:
    """``out``: a copy of a training run's checkpoint root (``latest`` + ``iter_*``), as a user's --output."""
    import shutil

    shutil.copytree(checkpoints, out)
    return out


def assert_output_refused_first(capsys, command: str, source: Path, occupied: Path, args: list[str]) -> None:
    """``midm COMMAND --checkpoint SOURCE --output OCCUPIED *ARGS`` exits 2 with the one-line refusal
    before loading anything (``ARGS`` give a ``--calib`` that names no data, so a refusal that came
    after loading the model would fail on that instead), and ``OCCUPIED`` is left byte for byte."""
    from midm.cli import main as midm_main

    before = tree_bytes(occupied)
    latest = (occupied / "latest").read_text().strip()
    assert midm_main([command, "--checkpoint", str(source), "--output", str(occupied), *args]) == 2
    stdout, err = capsys.readouterr()
    assert err == (f"midm {command}: error: --output {occupied} already holds a checkpoint (latest → {latest}); "
                   "choose a new --output directory\n")
    assert "loaded" not in stdout and tree_bytes(occupied) == before


def fingerprinted_stub(root: Path, fingerprint: str) -> Path:
    """A checkpoint root holding only what is read before any weight: `tiny`'s recipe.json and a
    trainer_state.json recording tokenizer ``tok_a`` of ``fingerprint`` (no shards: a command that
    went on to load weights would fail on that instead)."""
    from recipes import get_recipe, recipe_to_dict

    iter_dir = root / "iter_0000002"
    iter_dir.mkdir(parents=True)
    (iter_dir / "recipe.json").write_text(json.dumps(recipe_to_dict(get_recipe("tiny"))))
    (iter_dir / "trainer_state.json").write_text(json.dumps({"step": 2, "tokenizer": "tok_a",
                                                             "tokenizer_fingerprint": fingerprint}))
    (root / "latest").write_text(iter_dir.name)
    return root
