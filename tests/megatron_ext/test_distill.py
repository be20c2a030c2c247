"""`midm distill`: the forward-KL loss against a plain-torch reference, the loss mix, a pruned
student (4 layers, hidden 64) distilled from a wider and deeper teacher (the 6-layer, hidden-128
DuS model) at PP=1 and PP=2 with identical losses, no optimizer state for the teacher, and a clear
error for a teacher with another vocabulary."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from megatron_ext.distiller import distill_loss, kd_token_losses
from midm.cli import main as midm_main
from recipes import DistillConfig
from tests.megatron_ext.conftest import read_metrics, run_midm
from tests.megatron_ext.surgery_fixtures import (MINI_SETS, common_sets, fingerprinted_stub, plain_tensors, pruned_tiny,
                                               upscaled_tiny)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("distill")


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kd_loss_matches_torch_reference(temperature):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(2, 5, 11, generator=gen, requires_grad=True)
    teacher = 3 * torch.randn(2, 5, 11, generator=gen)
    labels = torch.randint(0, 11, (2, 5), generator=gen)
    kl, ce = kd_token_losses(student, teacher, labels, temperature)
    ref_kl = F.kl_div(F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1),
                      log_target=True, reduction="none").sum(-1) * temperature ** 2
    ref_ce = F.cross_entropy(student.reshape(-1, 11), labels.reshape(-1), reduction="none").view(2, 5)
    assert torch.allclose(kl, ref_kl, atol=1e-5) and torch.allclose(ce, ref_ce, atol=1e-5)
    kl.sum().backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    same, _ = kd_token_losses(teacher, teacher, labels, temperature)
    assert same.abs().max() < 1e-5  # KL(p‖p) = 0


def test_loss_mix_and_logged_pairs():
    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(1, 4, 7, generator=gen), torch.randn(1, 4, 7, generator=gen)
    labels, mask = torch.randint(0, 7, (1, 4), generator=gen), torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    kl, ce = kd_token_losses(student, teacher, labels, 1.0)
    pure = distill_loss(mask, labels, teacher, DistillConfig(), student)
    mixed = distill_loss(mask, labels, teacher, DistillConfig(kd_weight=0.5, lm_loss_weight=0.5), student)
    assert int(pure[1]) == 3
    assert math.isclose(float(pure[0]), float((kl * mask).sum()), rel_tol=1e-6)  # logits-only by default
    assert math.isclose(float(mixed[0]), 0.5 * float((kl * mask).sum() + (ce * mask).sum()), rel_tol=1e-6)
    assert math.isclose(float(pure[2]["lm loss"][0]), float((ce * mask).sum()), rel_tol=1e-6)


def _distill(root, prefix, name, teacher, student, *extra, nproc=1):
    run_midm(["distill", "--recipe", "tiny_mini", "--teacher", str(teacher), "--student", str(student),
              "--set", f"data.blend={prefix}", *MINI_SETS, *common_sets(root, name, 2), *extra], nproc=nproc)
    return read_metrics(root / name)


@pytest.mark.slow
def test_distill_pruned_student_pp1_equals_pp2(root, byte_prefix):
    teacher, student = upscaled_tiny(root, byte_prefix), pruned_tiny(root, byte_prefix)
    pp1 = _distill(root, byte_prefix, "kd_pp1", teacher, student)
    pp2 = _distill(root, byte_prefix, "kd_pp2", teacher, student, "--set", "parallel.pipeline_model_parallel_size=2",
                   nproc=2)
    for a, b in zip(pp1, pp2, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["kd_loss"] == pytest.approx(b["kd_loss"], rel=1e-4)
    assert 0 < pp1[0]["kd_loss"] < pp1[0]["loss"]
    assert pp1[-1]["val_loss"] < 5.5  # validation reports the student's LM loss (random init ≈ 5.9)
    # The checkpoint holds the student and its optimizer only: the teacher is not trained.
    saved = plain_tensors(root / "kd_pp1" / "checkpoints", optimizer=True)
    weights = {k: v for k, v in saved.items() if not k.startswith("optimizer.")}
    assert saved["embedding.word_embeddings.weight"].shape[1] == 64
    for key, value in weights.items():
        for moment in ("exp_avg", "exp_avg_sq"):
            assert saved[f"optimizer.state.{moment}.{key}"].shape == value.shape
    assert len(saved) == 3 * len(weights)


def test_teacher_with_another_vocabulary_is_rejected(root, byte_prefix, capsys):
    teacher, student = upscaled_tiny(root, byte_prefix), pruned_tiny(root, byte_prefix)
    # In-process: the teacher's recipe is checked before the trainer (and parallel state) exists.
    assert midm_main(["distill", "--recipe", "tiny_mini", "--teacher", str(teacher), "--student", str(student),
                         "--set", "model.vocab_size=512", "--set", f"data.blend={byte_prefix}"]) == 2
    assert "vocabulary 384 != student 512" in capsys.readouterr().err


def test_teacher_and_student_of_other_tokenizers_are_rejected(tmp_path, byte_prefix, capsys):
    """Same vocabulary size, other tokenizers: refused even when the data predate fingerprints (the byte
    prefix records none), before any process group or model exists; the hatch lets the check pass."""
    teacher, student = fingerprinted_stub(tmp_path / "t", "a" * 16), fingerprinted_stub(tmp_path / "s", "b" * 16)
    argv = ["distill", "--recipe", "tiny", "--teacher", str(teacher), "--student", str(student),
            "--set", f"data.blend={byte_prefix}"]
    assert midm_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"midm distill: error: the teacher checkpoint {teacher} was trained with tokenizer tok_a "
                          f"(fingerprint {'a' * 16}) but the initial checkpoint {student} with tokenizer tok_a "
                          f"(fingerprint {'b' * 16}): ") and err.count("\n") == 1

    from megatron_ext.dpo import reference_recipe
    from megatron_ext.tokenizer_check import TokenizerMismatchError
    from recipes import get_recipe

    policy = get_recipe("tiny_dpo", [f"checkpoint.load={student}", "model.vocab_size=4096"])
    with pytest.raises(TokenizerMismatchError, match=f"the reference checkpoint {teacher} was trained with"):
        reference_recipe(policy, str(teacher))  # DPO: the frozen reference against the policy's initial weights
    policy.checkpoint.allow_tokenizer_change = True
    assert reference_recipe(policy, str(teacher)).model.vocab_size == 4096
