"""`midm dpo` on real Korean preference pairs (SQuARe): the loss against its formula, log 2 at step 0
when policy = reference, the whole gradient against a plain-PyTorch DPO on the same batch, a frozen
reference (bit-identical, never saved), exact resume after kill -9, and TP=2 / PP=2 = TP=1 / PP=1."""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from megatron_ext.dpo import dpo_loss
from recipes import DPOConfig
from tests.conftest import REPO, TEST_DATA
from tests.megatron_ext.conftest import midm_cmd, read_metrics, run_env, run_midm
from tests.megatron_ext.surgery_fixtures import plain_tensors
from tests.megatron_ext.test_train import _wait_for_step

VOCAB, SEQ = 2048, 192
STEPS, SAVE_EVERY = 12, 4
PARALLEL_LOSS_TOL = 5e-4  # as the pretraining layouts: fp32 reductions in another order


# ---------------------------------------------------------------- the loss function alone
@pytest.mark.parametrize("sft_weight", [0.0, 0.5])
def test_loss_function_matches_the_formula(sft_weight):
    gen = torch.Generator().manual_seed(0)
    b, s = 3, 7
    ce = (3 * torch.rand(2 * b, s, generator=gen)).requires_grad_()  # −log π per token, rows chosen-first
    mask = (torch.rand(2 * b, s, generator=gen) > 0.3).float()
    ref = -torch.rand(2 * b, generator=gen) * 10
    cfg = DPOConfig(beta=0.2, sft_loss_weight=sft_weight)
    objective, count, logged = dpo_loss(mask, ref, cfg, ce)

    logp = -(ce * mask).sum(-1)
    margin = 0.2 * ((logp[:b] - ref[:b]) - (logp[b:] - ref[b:]))
    expected = (-F.logsigmoid(margin) + sft_weight * (-logp[:b] / mask[:b].sum(-1))).sum()
    assert int(count) == b and float(objective) == pytest.approx(float(expected), rel=1e-6)
    grad, = torch.autograd.grad(objective, ce, retain_graph=True)
    ref_grad, = torch.autograd.grad(expected, ce)
    assert torch.allclose(grad, ref_grad, atol=1e-6)
    mean = {k: float(v[0] / v[1]) for k, v in logged.items()}
    assert mean["reward accuracy"] == pytest.approx(float((margin > 0).float().mean()))
    assert mean["margin"] == pytest.approx(float(margin.mean()), rel=1e-5)
    assert mean["chosen reward"] - mean["rejected reward"] == pytest.approx(mean["margin"], abs=1e-5)
    assert mean["sft loss"] == pytest.approx(float(-logp[:b].sum() / mask[:b].sum()), rel=1e-5)
    # policy = reference: every reward is 0 and the loss is log 2
    same, _, logged = dpo_loss(mask, -(ce * mask).sum(-1).detach(), DPOConfig(), ce)
    assert float(same) / b == pytest.approx(math.log(2), abs=1e-7) and float(logged["margin"][0]) == 0.0


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dpo")


@pytest.fixture(scope="module")
def prefs(root, chat_tokenizer_dir) -> Path:
    from data_prep.prefs.build import build

    # ~10% of the prompts for training: few enough pairs that a dozen steps visibly learn them
    stats = build([str(TEST_DATA / "prefs" / "square_pairs.jsonl")], root / "prefs", str(chat_tokenizer_dir),
                  seq_length=SEQ, valid_fraction=0.9)
    assert 5 <= stats["splits"]["train"]["pairs"] <= 20
    return root / "prefs"


def _sets(root: Path, name: str, *extra: str) -> list[str]:
    items = [f"logging.dir={root}", f"logging.run_name={name}", "logging.tensorboard=false", *extra]
    return [x for item in items for x in ("--set", item)]


@pytest.fixture(scope="module")
def base(root, prefs) -> Path:
    """A few LM steps on the rendered conversations (the pairs' token file is a Megatron prefix):
    iter 2 and iter 4 are two different models of the DPO geometry."""
    blend = f"data.blend=1 {prefs}/train/tokens 1 {prefs}/valid/tokens"
    run_midm(["train", "--recipe", "tiny_mini", *_sets(root, "base", blend, f"model.vocab_size={VOCAB}",
                                                       f"data.seq_length={SEQ}", "data.split=95,5,0", "train.steps=4",
                                                       "checkpoint.save_interval=2", "train.eval_interval=4",
                                                       "train.eval_steps=1")])
    return root / "base" / "checkpoints"


def test_pairs_round_trip_and_keep_chosen_with_rejected(prefs, chat_tokenizer_dir):
    """What `midm data prefs` rendered is what the trainer reads (Megatron's IndexedDataset), shifted into
    inputs/labels, padded, and a micro-batch of pairs becomes [chosen rows…, rejected rows…]."""
    from data_prep.prefs.build import held_out, render_pair
    from data_prep.prefs.records import parse_line
    from data_prep.sft.chat import load_chat_tokenizer
    from megatron_ext.dpo_data import PreferencePairs, check_split, pairs_to_rows, read_index
    from tokenizer.layout import PAD_ID

    tok = load_chat_tokenizer(chat_tokenizer_dir)
    pairs = [parse_line(line) for line in (TEST_DATA / "prefs" / "square_pairs.jsonl").read_text().splitlines()]
    train = [render_pair(p, tok) for p in pairs if not held_out(p.prompt, 1234, 0.9)]
    assert read_index(prefs)["splits"]["train"]["pairs"] == len(train) == check_split(prefs / "train", VOCAB, SEQ)
    dataset = PreferencePairs(prefs / "train", torch.arange(len(train)).numpy(), SEQ, PAD_ID)
    for i, rendered in enumerate(train):
        sample = dataset[i]
        for row, (ids, mask) in enumerate(((rendered.chosen_ids, rendered.chosen_mask),
                                           (rendered.rejected_ids, rendered.rejected_mask))):
            n = len(ids) - 1
            assert sample["tokens"][row, :n].tolist() == ids[:-1] and sample["labels"][row, :n].tolist() == ids[1:]
            assert sample["loss_mask"][row, :n].tolist() == mask[1:] and not sample["loss_mask"][row, n:].any()
            assert (sample["tokens"][row, n:] == PAD_ID).all()
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])  # [2 pairs, 2 sides, s]
    rows = pairs_to_rows(batch["tokens"])
    assert rows.shape == (4, SEQ)
    assert torch.equal(rows, torch.stack([batch["tokens"][0, 0], batch["tokens"][1, 0],
                                          batch["tokens"][0, 1], batch["tokens"][1, 1]]))


def _dpo_args(root: Path, prefs: Path, reference: Path, name: str, *extra: str) -> list[str]:
    return ["dpo", "--recipe", "tiny_dpo", "--reference", str(reference), "--data", str(prefs),
            *_sets(root, name, "dpo.epochs=none", f"train.steps={STEPS}", "dpo.warmup_fraction=none",
                   "scheduler.warmup_steps=1", f"scheduler.decay_steps={STEPS}", "train.global_batch_size=4",
                   "train.micro_batch_size=2", f"train.eval_interval={SAVE_EVERY}", "train.eval_steps=2",
                   f"checkpoint.save_interval={SAVE_EVERY}", "optimizer.lr=3e-4", *extra)]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def baseline(root, prefs, base) -> Path:
    reference = base / "iter_0000004"
    before = _digest(reference)
    run_midm(_dpo_args(root, prefs, reference, "baseline"))
    assert _digest(reference) == before, "the reference checkpoint was written to"
    return root / "baseline"


def test_step0_is_log2_then_preferences_are_learned(baseline):
    records = read_metrics(baseline)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    first = records[0]
    print("losses:", [round(r["loss"], 4) for r in records], "accuracy:", [r["reward_accuracy"] for r in records])
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy = reference (default init)
    assert first["chosen_reward"] == first["rejected_reward"] == first["margin"] == first["reward_accuracy"] == 0.0
    # ~10 training pairs seen ~5 times: the preferences are learned (memorised)
    late = records[-4:]
    assert sum(r["loss"] for r in late) / 4 < 0.6
    assert sum(r["margin"] for r in late) / 4 > 0.2 and sum(r["reward_accuracy"] for r in late) / 4 >= 0.75
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [4, 8, 12]
    for key in ("val_reward_accuracy", "val_margin", "val_chosen_reward", "val_rejected_reward", "val_sft_loss"):
        assert all(isinstance(r[key], float) for r in evals)


def test_checkpoint_holds_the_policy_only(baseline):
    saved = plain_tensors(baseline / "checkpoints", optimizer=True)
    weights = {k: v for k, v in saved.items() if not k.startswith("optimizer.")}
    for key, value in weights.items():
        for moment in ("exp_avg", "exp_avg_sq"):
            assert saved[f"optimizer.state.{moment}.{key}"].shape == value.shape
    assert len(saved) == 3 * len(weights)  # weights + 2 Adam moments: no reference tensors anywhere
    assert json.loads((baseline / "checkpoints" / "iter_0000012" / "recipe.json").read_text())["dpo"]["beta"] == 0.1


def test_gradient_matches_plain_pytorch_and_reference_stays_frozen(root, prefs, base):
    out = root / "probe.json"
    subprocess.run([sys.executable, str(REPO / "tests" / "megatron_ext" / "dpo_probe.py"), str(base / "iter_0000002"),
                    str(base / "iter_0000004"), str(prefs), str(root), str(out)],
                   cwd=REPO, env=run_env(), check=True, capture_output=True, timeout=300)
    probe = json.loads(out.read_text())
    print({k: v for k, v in probe.items() if k != "steps"})
    assert probe["plain_grads_left_buffers_untouched"]
    assert probe["trainer_loss"] == pytest.approx(probe["plain_loss"], rel=1e-6)
    assert probe["grad_norm"] > 0.1 and probe["max_abs_grad_diff"] < 1e-5 * probe["grad_norm"] + 1e-7
    assert probe["reference_bit_identical"] and probe["policy_changed"]
    assert not (probe["reference_requires_grad"] or probe["reference_has_grad"] or probe["reference_in_optimizer"]
                or probe["reference_training_mode"])


def test_kill9_then_resume_reproduces_every_metric(root, prefs, base, baseline):
    args = _dpo_args(root, prefs, base / "iter_0000004", "killed")
    run_dir = root / "killed"
    proc = subprocess.Popen(midm_cmd(args), cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_step(run_dir, SAVE_EVERY + 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run_dir / "checkpoints" / "latest").read_text() in ("iter_0000004", "iter_0000008")
    run_midm(args)  # --resume auto
    keys = ("loss", "reward_accuracy", "chosen_reward", "rejected_reward", "margin", "sft_loss", "val_loss")
    strip = lambda rs: [{k: r.get(k) for k in ("step", *keys)} for r in rs]  # noqa: E731
    assert strip(read_metrics(run_dir)) == strip(read_metrics(baseline))  # bit-exact


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["parallel.tensor_model_parallel_size=2", "parallel.pipeline_model_parallel_size=2"],
                         ids=["tp2", "pp2"])
def test_two_process_layouts_match_single_process(layout, root, prefs, base, baseline):
    name = layout.split(".")[1].split("_")[0]
    # the first 6 steps of the baseline's schedule (decay_steps is pinned to the baseline's length)
    run_midm(_dpo_args(root, prefs, base / "iter_0000004", name, layout, "train.steps=6"), nproc=2)
    ref, got = read_metrics(baseline)[:6], read_metrics(root / name)
    assert len(got) == 6 and got[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    for key in ("loss", "margin", "chosen_reward", "sft_loss"):
        diff = max(abs(a[key] - b[key]) for a, b in zip(ref, got))
        print(f"{name} max |Δ{key}| = {diff:.2e}")
        assert diff < PARALLEL_LOSS_TOL
    assert got[3]["val_loss"] == pytest.approx(ref[3]["val_loss"], abs=PARALLEL_LOSS_TOL)


def test_bad_reference_and_data_fail_clearly(root, prefs, base, capsys, tmp_path):
    """Checked before any process group exists (in-process)."""
    from midm.cli import main
    from recipes import get_recipe, recipe_to_dict

    reference = str(base / "iter_0000004")
    other = tmp_path / "other_vocab" / "iter_0000001"  # a checkpoint's recipe is all the check reads
    other.mkdir(parents=True)
    (other / "recipe.json").write_text(json.dumps(recipe_to_dict(get_recipe("tiny_mini"))))
    assert main(["dpo", "--recipe", "tiny_dpo", "--reference", str(other), "--data", str(prefs),
                 *_sets(tmp_path, "x", f"checkpoint.load={reference}")]) == 2
    assert "reference vocabulary 4096 != policy 2048" in capsys.readouterr().err
    assert main(["dpo", "--recipe", "tiny_dpo", "--reference", reference, *_sets(tmp_path, "x")]) == 2
    assert "needs dpo.dataset" in capsys.readouterr().err
    assert main(["dpo", "--recipe", "tiny_dpo", "--reference", reference, "--data", str(tmp_path)]) == 2
    assert "`midm data prefs" in capsys.readouterr().err
    assert main(["dpo", "--recipe", "tiny_sft", "--reference", reference, "--data", str(prefs)]) == 2
    assert "has no dpo section" in capsys.readouterr().err
