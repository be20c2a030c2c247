"""End-to-end training on real text through `midm train`: golden losses, exact resume after kill -9
and after SIGUSR1, TP/PP/DP equivalence with 2 gloo processes, resharded checkpoints, data errors."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from tests.megatron_ext.byte_data import VOCAB
from tests.megatron_ext.conftest import free_port, losses, midm_cmd, read_metrics, run_env, run_midm

# First losses of `tiny` on the committed corpus, kept as a data file (as torchtitan's tests/assets/losses).
GOLDEN_FILE = REPO / "tests" / "assets" / "losses" / "tiny_byte_corpus.txt"
GOLDEN_FIRST_LOSSES = [float(x) for x in GOLDEN_FILE.read_text().split("\n") if x and not x.startswith("#")]
STEPS = 30


def tiny_args(prefix: str, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--recipe", "tiny", "--set", f"data.blend={prefix}", "--set", f"model.vocab_size={VOCAB}",
            "--set", f"logging.dir={run_dir.parent}", "--set", f"logging.run_name={run_dir.name}",
            "--set", f"train.steps={STEPS}", "--set", "train.eval_interval=10", "--set", "checkpoint.save_interval=10",
            "--set", "logging.tensorboard=false", *extra]


@pytest.fixture(scope="module")
def baseline(byte_prefix, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "baseline"
    run_midm(tiny_args(byte_prefix, run_dir))
    return run_dir


def test_loss_falls_and_matches_golden(baseline):
    records = read_metrics(baseline)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    first, last = records[0]["loss"], records[-1]["loss"]
    assert first == pytest.approx(6.0, abs=0.3)  # ≈ uniform over the 256 byte values seen
    assert last < 0.6 * first
    assert records[-1]["val_loss"] < records[9]["val_loss"]
    print("first losses:", [round(r["loss"], 5) for r in records[:5]])
    assert len(GOLDEN_FIRST_LOSSES) == 5
    assert [r["loss"] for r in records[:5]] == pytest.approx(GOLDEN_FIRST_LOSSES, abs=2e-3)
    for key in ("lr", "grad_norm", "tokens_per_s"):
        assert records[-1][key] > 0
    summary = json.loads((baseline / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["consumed_samples"] == STEPS * 16
    ckpts = baseline / "checkpoints"
    assert (ckpts / "latest").read_text() == "iter_0000030"
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_0000010", "iter_0000020", "iter_0000030", "latest"]


def _wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()[-3000:]}")
        path = run_dir / "metrics.jsonl"
        if path.exists() and any(json.loads(l)["step"] >= step for l in path.read_text().splitlines() if l.strip()):
            return
        time.sleep(0.2)
    raise AssertionError(f"step {step} not reached")


def test_kill9_then_resume_reproduces_losses_exactly(baseline, byte_prefix, tmp_path):
    run_dir = tmp_path / "killed"
    args = tiny_args(byte_prefix, run_dir)
    proc = subprocess.Popen(midm_cmd(args), cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_step(run_dir, 14, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job, checkpoint writer processes included
    proc.wait()
    assert (run_dir / "checkpoints" / "latest").read_text() in ("iter_0000010", "iter_0000020")
    run_midm(args + ["--resume", "auto"])
    assert losses(run_dir) == losses(baseline)  # bit-exact, every step


def _signal_the_whole_job(run_dir: Path, args: list[str], sig: int) -> int:
    """Start `midm train` in its own process group, send ``sig`` to the group at step 3 (what Slurm does
    to every process of a step, DataLoader workers included); return the step it checkpointed at."""
    proc = subprocess.Popen(midm_cmd(args), cwd=REPO, env=run_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_step(run_dir, 3, proc)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err[-3000:]
    assert "killed by signal" not in err
    stopped_at = read_metrics(run_dir)[-1]["step"]
    assert stopped_at < STEPS
    assert f"checkpointed at step {stopped_at} after a stop signal" in out
    assert (run_dir / "checkpoints" / "latest").read_text() == f"iter_{stopped_at:07d}"
    return stopped_at


# data.num_workers=2 is the full-size recipes' default: the workers get the signal too.
WORKERS = ("--set", "data.num_workers=2")


def test_sigusr1_to_the_job_checkpoints_exits_75_and_resumes(baseline, byte_prefix, tmp_path, monkeypatch):
    """Also W&B (``logging.wandb_project``, the [wandb] extra) offline: the run files are written and the
    resumed run continues the same W&B run."""
    run_dir = tmp_path / "signalled"
    wandb = importlib.util.find_spec("wandb") is not None
    if wandb:
        monkeypatch.setenv("WANDB_MODE", "offline")  # never the network
        monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
        monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    args = tiny_args(byte_prefix, run_dir, *WORKERS, *(["--set", "logging.wandb_project=midm-test"] if wandb else []))
    _signal_the_whole_job(run_dir, args, signal.SIGUSR1)
    run_midm(args)  # --resume auto is the default
    assert losses(run_dir) == losses(baseline)
    if wandb:
        run_id = (run_dir / "wandb_run_id").read_text().strip()
        runs = sorted((run_dir / "wandb").glob("offline-run-*"))
        assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs), runs  # one W&B run, resumed
        assert all((r / f"run-{run_id}.wandb").stat().st_size > 0 for r in runs)


def test_sigterm_to_the_job_checkpoints_and_exits_75(byte_prefix, tmp_path):
    """`kill -TERM -- -PGID`: preemption / time limit / scancel (fails with exit 1 if a worker dies of it)."""
    _signal_the_whole_job(tmp_path / "terminated", tiny_args(byte_prefix, tmp_path / "terminated", *WORKERS),
                          signal.SIGTERM)


def test_exit_after_steps_checkpoints_exits_75_and_the_next_invocation_finishes(byte_prefix, tmp_path):
    """A time-boxed invocation stops between save_interval steps: it saves there (or the steps would be lost),
    says so and exits 75 (Slurm requeues); the invocation that reaches train.steps writes the summary.
    (That a resume continues bit-exactly is the signal tests' part.)"""
    run_dir = tmp_path / "boxed"
    args = tiny_args(byte_prefix, run_dir, "--set", "train.steps=6")  # save_interval 10: no save at step 4
    boxed = run_midm(args + ["--set", "train.exit_after_steps=4"], check=False)
    assert boxed.returncode == 75, boxed.stderr[-3000:]
    assert "checkpointed at step 4 of 6: train.exit_after_steps=4" in boxed.stdout
    assert (run_dir / "checkpoints" / "latest").read_text() == "iter_0000004"
    assert not (run_dir / "summary.json").exists()
    run_midm(args + ["--set", "train.exit_after_steps=2"])  # its 2 steps reach train.steps: finishes, exit 0
    assert [r["step"] for r in read_metrics(run_dir)] == list(range(1, 7))
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 6


def test_data_workers_ignore_stop_signals_from_their_first_instruction():
    """The stop signals are blocked while workers fork, so none can land before `ignore_stop_signals` runs."""
    import torch.utils.data

    from megatron_ext.data import STOP_SIGNALS, MicroBatches

    class Probe(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):  # runs in a worker: report what that worker does with each signal
            return torch.tensor([int(signal.getsignal(s) == signal.SIG_IGN) for s in STOP_SIGNALS]
                                + [int(s in signal.pthread_sigmask(signal.SIG_BLOCK, [])) for s in STOP_SIGNALS])

    from recipes import get_recipe

    recipe = get_recipe("tiny", ["train.global_batch_size=2", "train.micro_batch_size=2", "data.num_workers=2"])
    batches = MicroBatches(Probe(), recipe, dp_rank=0, dp_size=1)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    stream = batches.stream(0)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the parent's mask is restored
    ignored_and_blocked = next(stream)
    assert ignored_and_blocked.tolist() == [[1, 1, 1, 0, 0, 0]] * 2  # ignored, no longer blocked
    del stream


@pytest.fixture(scope="module")
def reference_from_step10(baseline, tmp_path_factory, byte_prefix):
    """TP=1 PP=1 DP=1: 6 steps from the baseline's step-10 weights with a fresh optimizer."""
    run_dir = tmp_path_factory.mktemp("parallel") / "ref"
    run_midm(_from10_args(byte_prefix, baseline, run_dir))
    return run_dir


def _from10_args(prefix, baseline, run_dir, *extra):
    return tiny_args(prefix, run_dir, "--set", f"checkpoint.load={baseline}/checkpoints/iter_0000010",
                     "--set", "train.steps=6", "--set", "checkpoint.save_interval=6", "--set", "scheduler.warmup_steps=2",
                     "--resume", "none", *extra)


# Reductions run in a different order across 2 processes; fp32 round-off then compounds through Adam.
PARALLEL_LOSS_TOL = 5e-4


@pytest.mark.slow
@pytest.mark.parametrize("layout", [
    ["parallel.tensor_model_parallel_size=2"],
    ["parallel.pipeline_model_parallel_size=2"],
    # interleaved 1F1B: 2 chunks of 1 layer per rank, loaded from the non-interleaved step-10 checkpoint
    ["parallel.pipeline_model_parallel_size=2", "parallel.virtual_pipeline_model_parallel_size=2"],
    [],  # data parallel 2
], ids=["tp2", "pp2", "pp2-vpp2", "dp2"])
def test_two_process_layouts_match_single_process(layout, reference_from_step10, baseline, byte_prefix, tmp_path):
    run_dir = tmp_path / "par"
    extra = [x for item in layout for x in ("--set", item)]
    run_midm(_from10_args(byte_prefix, baseline, run_dir, *extra), nproc=2)
    ref, got = losses(reference_from_step10), losses(run_dir)
    assert len(got) == len(ref) == 6
    diff = max(abs(a - b) for a, b in zip(ref, got))
    print(f"max |Δloss| vs TP1/PP1/DP1: {diff:.2e}")
    assert diff < PARALLEL_LOSS_TOL
    if layout == ["parallel.tensor_model_parallel_size=2"]:
        _check_tp2_checkpoint_loads_at_tp1(run_dir / "checkpoints", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("recompute", [
    ["perf.recompute_granularity=full", "perf.recompute_method=block", "perf.recompute_num_layers=2"],
    ["perf.recompute_granularity=selective", "perf.recompute_modules=core_attn,mlp"],
], ids=["full-block-2", "selective-core_attn-mlp"])
def test_activation_recompute_reproduces_losses(recompute, reference_from_step10, baseline, byte_prefix, tmp_path):
    """Recompute re-runs the same forward (same RNG state): the losses are the reference's on CPU."""
    run_dir = tmp_path / "recompute"
    run_midm(_from10_args(byte_prefix, baseline, run_dir, *[x for item in recompute for x in ("--set", item)]))
    assert losses(run_dir) == pytest.approx(losses(reference_from_step10), abs=1e-6)


def _check_tp2_checkpoint_loads_at_tp1(ckpt_dir: Path, tmp_path: Path) -> None:
    probe = str(REPO / "tests" / "megatron_ext" / "logits_probe.py")
    env = run_env()
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                    probe, str(ckpt_dir), "2", str(tmp_path / "tp2.pt")], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, probe, str(ckpt_dir), "1", str(tmp_path / "tp1.pt")], env=env, check=True,
                   capture_output=True)
    tp2 = torch.load(tmp_path / "tp2.pt", weights_only=True)
    tp1 = torch.load(tmp_path / "tp1.pt", weights_only=True)
    assert tp1.shape == tp2.shape == (2, 64, VOCAB)
    assert torch.allclose(tp1, tp2, atol=1e-5, rtol=0), (tp1 - tp2).abs().max()


def test_data_errors_are_clear(byte_prefix, tmp_path, capsys):
    """Checked before any process group or model exists (in-process: nothing global is initialised)."""
    from midm.cli import main

    def fails(prefix: str, *extra: str) -> str:
        assert main(tiny_args(prefix, tmp_path / "bad", *extra)) == 2
        return capsys.readouterr().err

    err = fails(str(tmp_path / "nowhere"))
    assert "missing" in err and "midm data tokenize" in err
    for ext in (".idx", ".bin"):
        data = Path(byte_prefix + ext).read_bytes()
        (tmp_path / ("trunc" + ext)).write_bytes(data[:-100] if ext == ".bin" else data)
    assert "truncated or mismatched" in fails(str(tmp_path / "trunc"))
    assert "contains token id 256 but model.vocab_size is 128" in fails(byte_prefix, "--set", "model.vocab_size=128")
    assert "precision.dtype=fp32" in fails(byte_prefix, "--set", "precision.dtype=bf16")
    blend_file = tmp_path / "phase.json"
    blend_file.write_text(json.dumps({"blend": [[0.5, byte_prefix], [0.5, "missing_prefix"]]}))
    assert "missing_prefix" in fails(byte_prefix, "--set", "data.blend=", "--set", f"data.blend_file={blend_file}")
