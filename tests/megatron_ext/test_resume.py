"""A run directory reused with another recipe (megatron_ext/resume_check.py).

Differences are printed and applied deliberately — the LR schedule recomputed at the resumed step
(cosine and WSD), new data — or refused naming the setting that allows them; a model of another
shape is a one-line error, not a CheckpointingException traceback; a fresh start never overwrites
an earlier run's files.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from megatron_ext.resume_check import ResumeError, blend_record, check_fresh_start, compare, schedule_params
from recipes import get_recipe
from tests.megatron_ext.byte_data import VOCAB, write_byte_prefix
from tests.megatron_ext.conftest import read_metrics, run_midm

STEPS = 4


def args(prefix: str, run_dir: Path, *extra: str) -> list[str]:
    sets = [f"data.blend={prefix}", f"model.vocab_size={VOCAB}", f"logging.dir={run_dir.parent}",
            f"logging.run_name={run_dir.name}", f"train.steps={STEPS}", "scheduler.warmup_steps=1",
            f"train.eval_interval={STEPS}", "train.eval_steps=1", f"checkpoint.save_interval={STEPS}",
            "logging.tensorboard=false"]
    return ["train", "--recipe", "tiny", *[x for s in sets for x in ("--set", s)], *extra]


@pytest.fixture(scope="module")
def first_run(byte_prefix, tmp_path_factory) -> Path:
    """4 steps of tiny (cosine), checkpointed at step 4."""
    run_dir = tmp_path_factory.mktemp("resume") / "first"
    run_midm(args(byte_prefix, run_dir))
    return run_dir


@pytest.fixture(scope="module")
def other_prefix(tmp_path_factory) -> str:
    return write_byte_prefix(tmp_path_factory.mktemp("other"), "other", docs=60)


def _files(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_size for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_a_changed_recipe_is_refused_naming_what_allows_it(first_run, byte_prefix, other_prefix, tmp_path, capsys):
    """In-process through the CLI: every refusal comes before any process group, model or file write."""
    from midm.cli import main

    before = _files(first_run)

    def error(*extra: str) -> str:
        assert main(args(byte_prefix, first_run, *extra)) == 2
        return capsys.readouterr().err

    err = error("--set", "train.steps=8")
    assert "train.steps: 4 → 8" in err and "--set checkpoint.override_scheduler=true" in err
    assert "scheduler.style: cosine → wsd" in error("--set", "scheduler.style=wsd")
    err = error("--set", f"data.blend={other_prefix}")
    assert f'data.blend: ["{byte_prefix}"] → ["{other_prefix}"]' in err
    assert "--set checkpoint.allow_data_change=true" in err and "from sample 64" in err
    err = error("--set", "model.hidden_size=256")
    assert "model.hidden_size: 128 → 256" in err and "midm prune" in err and "Traceback" not in err
    err = error("--resume", "none")
    assert f"{first_run} holds an earlier run" in err and "latest → iter_0000004, 4 records in metrics.jsonl" in err
    err = error("--resume", "none", "--set", "logging.run_name=new", "--set", "model.num_layers=2",
                "--set", f"checkpoint.load={first_run / 'checkpoints'}")  # initial weights of another shape
    assert "checkpoint.load" in err and "model.num_layers: 4 → 2" in err
    assert not (first_run.parent / "new").exists()  # the refused start removed the run directory it locked
    assert _files(first_run) == before


def _expected_lrs(overrides: list[str], steps: int) -> list[float]:
    """LR after each step 1..steps of a fresh run of tiny with these overrides (Megatron-Core's scheduler)."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    class Groups:
        param_groups = [{}]

    scheduler = OptimizerParamScheduler(Groups(), **schedule_params(get_recipe("tiny", overrides)))
    lrs = []
    for _ in range(steps):
        scheduler.step(1)
        lrs.append(Groups.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("style", ["cosine", "wsd"])
def test_override_scheduler_recomputes_the_schedule_at_the_resumed_step(first_run, byte_prefix, other_prefix,
                                                                        tmp_path, style):
    run_dir = tmp_path / "first"
    shutil.copytree(first_run, run_dir)
    new = ["train.steps=8", f"scheduler.style={style}", "scheduler.warmup_steps=1"]
    extra = [x for s in new + ["checkpoint.override_scheduler=true"] for x in ("--set", s)]
    if style == "wsd":  # and new data, allowed: the run continues on it from its sample counter
        extra += ["--set", f"data.blend={other_prefix}", "--set", "checkpoint.allow_data_change=true"]
    out = run_midm(args(byte_prefix, run_dir, *extra)).stdout
    assert "resumed from" in out and "train.steps: 4 → 8  [LR schedule recomputed at step 4" in out
    if style == "wsd":
        assert "data.blend" in out and "[training continues on the new data" in out
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == list(range(1, 9))
    want = _expected_lrs(new, 8)[STEPS:]
    kept = _expected_lrs(["train.steps=4", "scheduler.warmup_steps=1"], 8)[STEPS:]  # the checkpoint's schedule
    assert [r["lr"] for r in records[STEPS:]] == pytest.approx(want, rel=1e-6)
    assert want != pytest.approx(kept, rel=1e-3)


def test_an_edited_blend_file_is_a_data_change(tmp_path, byte_prefix, other_prefix):
    blend_file = tmp_path / "phase.json"
    blend_file.write_text(json.dumps({"blend": [[1.0, byte_prefix]]}))
    recipe = get_recipe("tiny", [f"data.blend_file={blend_file}"])
    saved = {"data_blend": blend_record(recipe)}
    assert compare(recipe, saved, recipe) == []
    blend_file.write_text(json.dumps({"blend": [[0.5, byte_prefix], [0.5, other_prefix]]}))
    (diff,) = compare(recipe, saved, recipe)
    assert diff.field == "data blend" and diff.kind == "data"


def test_a_fresh_start_keeps_the_earlier_runs_files(tmp_path):
    run_dir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    run_dir.mkdir()
    metrics = run_dir / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3)))
    with pytest.raises(ResumeError, match="3 records in metrics.jsonl"):
        check_fresh_start(run_dir, ckpts, "none", None, is_rank0=True)
    # `--resume auto` with nothing to resume (killed before its first checkpoint): start over, keep the records.
    note = check_fresh_start(run_dir, ckpts, "auto", None, is_rank0=True)
    assert "metrics.jsonl.1.prev" in note and not metrics.exists()
    assert len((run_dir / "metrics.jsonl.1.prev").read_text().splitlines()) == 3
    assert check_fresh_start(run_dir, ckpts, "none", None, is_rank0=True) is None  # nothing left to protect


def test_a_damaged_only_checkpoint_is_named_and_a_failed_start_leaves_nothing(first_run, byte_prefix, tmp_path,
                                                                              capsys):
    """In-process through the CLI, all before any process group: the only checkpoint without its
    trainer_state.json is one line naming the file and the ways out (not "no `latest`", not a recipe diff at
    "step None"), under --resume auto, with a changed recipe, and with --resume PATH; a start that fails leaves
    no directory behind."""
    from midm.cli import main

    run_dir = tmp_path / "ts"
    shutil.copytree(first_run / "checkpoints", run_dir / "checkpoints")
    state = run_dir / "checkpoints" / f"iter_{STEPS:07d}" / "trainer_state.json"
    state.unlink()
    before = _files(run_dir)

    def error(*extra: str) -> str:
        assert main(args(byte_prefix, run_dir, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err, err
        return err

    for extra in [(), ("--set", "train.steps=8"), ("--resume", str(run_dir / "checkpoints"), "--set", "train.steps=8")]:
        err = error(*extra)
        assert f"damaged checkpoint: {state}: missing" in err, err
        assert "no `latest`" not in err and "step None" not in err and "holds an earlier run" not in err
    err = error()
    assert f"no intact checkpoint in {run_dir / 'checkpoints'}" in err and "--resume PATH" in err
    assert f"--set checkpoint.load={state.parent}" in err and "logging.run_name" in err
    assert _files(run_dir) == before  # nothing renamed, no lock left

    fresh = tmp_path / "runs" / "fresh"  # `runs/` does not exist yet: the failed start must not leave it
    assert main(args(byte_prefix, fresh, "--set", f"checkpoint.load={tmp_path / 'nothing'}")) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_finished_run_says_so_and_keeps_its_summary(first_run, byte_prefix, tmp_path):
    run_dir = tmp_path / "first"
    shutil.copytree(first_run, run_dir)
    summary, metrics = (run_dir / "summary.json").read_text(), (run_dir / "metrics.jsonl").read_text()
    out = run_midm(args(byte_prefix, run_dir)).stdout
    assert f"{run_dir} is already complete: step {STEPS} of train.steps={STEPS}, nothing to do" in out, out[-2000:]
    assert (run_dir / "summary.json").read_text() == summary and json.loads(summary)["final_loss"] is not None
    assert (run_dir / "metrics.jsonl").read_text() == metrics


def test_sft_resume_without_its_base_names_the_base(tmp_path):
    """A time-boxed `midm sft` run re-run without --base gets tiny_sft's own geometry: the refusal says to
    pass that --base again (it used to advise `midm prune` / `midm dus`). Read before any weight."""
    from megatron_ext.resume_check import check_resume
    from recipes import recipe_to_dict

    base = "runs/tiny/checkpoints"
    saved = get_recipe("tiny_sft", [f"checkpoint.load={base}"])
    saved.model = get_recipe("tiny").model  # adopted from the base at the first invocation
    iter_dir = tmp_path / "iter_0000003"
    iter_dir.mkdir()
    (iter_dir / "recipe.json").write_text(json.dumps(recipe_to_dict(saved)))
    (iter_dir / "metadata.json").write_text(json.dumps({"sharded_backend": "torch_dist"}))
    (iter_dir / ".metadata").write_bytes(b"\0")
    (iter_dir / "trainer_state.json").write_text(json.dumps({"step": 3, "consumed_samples": 24}))
    with pytest.raises(ResumeError, match=f"This run took its model from --base {base}: run the same command "
                                          f"again, with --base {base}$"):
        check_resume(get_recipe("tiny_sft"), iter_dir)
