"""`midm data filter --executor slurm`: the run's steps as datatrove Slurm array jobs, chained by
dependencies — and the same steps that `midm slurm submit data-filter` renders (data_prep.plan).

Submission itself needs a cluster (tests/slurm runs a real slurmctld); here we check what
would be submitted: tasks per array, sbatch directives, the dependency chain, the env line, and
that every step survives the pickling that carries it to the array tasks.
"""
from __future__ import annotations

from pathlib import Path

from data_prep.config import load_config
from data_prep.executors import ExecOptions, SlurmOptions
from data_prep.pipeline import build_executors
from data_prep.plan import Step, filter_steps
from tests.conftest import REPO


def test_slurm_executor_chain_and_sbatch_args(tmp_path, sample_mixed):
    cfg = load_config(None)
    cfg["io"]["tasks"] = 8
    opts = ExecOptions(kind="slurm", slurm=SlurmOptions(partition="debug", time="02:00:00", cpus_per_task=2,
                                                        mem_per_cpu_gb=3, max_array_size=4, qos="",
                                                        venv_path="/opt/venv/bin/activate",
                                                        sbatch_args={"account": "kt-midm"}))
    executors, summary = build_executors([str(sample_mixed)], str(tmp_path / "out"), cfg, opts)
    from datatrove.executor.slurm import SlurmPipelineExecutor

    assert all(isinstance(e, SlurmPipelineExecutor) for e in executors)
    names = [e.job_name for e in executors]
    assert names == [f"midm-data-{step.name}" for step in filter_steps(cfg)]  # as `midm slurm submit` names them
    assert [e.tasks for e in executors] == [8, 8, 1, 8, 8, 14, 1, 8, 8, 1]
    for prev, ex in zip(executors, executors[1:]):
        assert ex.depends is prev  # each phase waits for the previous one
    args = executors[0].get_sbatch_args(max_array=4)
    assert args["partition"] == "debug" and args["time"] == "02:00:00"
    assert args["cpus-per-task"] == 2 and args["mem-per-cpu"] == "3G"
    assert args["array"] == "0-3" and args["account"] == "kt-midm"
    assert "qos" not in args and "requeue" not in args
    assert args["kill-on-invalid-dep"] == "yes"  # a failed task cancels the steps after it
    script = executors[0].get_launch_file_contents(args, "launch_pickled_pipeline x")
    assert "#SBATCH --partition=debug" in script
    # the array tasks import this checkout's data_prep, whatever PYTHONPATH the submitter had
    assert f"source /opt/venv/bin/activate && export PYTHONPATH={REPO}\"${{PYTHONPATH:+:$PYTHONPATH}}\"" in script
    assert executors[0].max_array_size == 4  # 8 tasks -> two array jobs of 4
    # Defaults: the cluster's default partition and memory (no directive), no merge_stats job per step.
    executors, _ = build_executors([str(sample_mixed)], str(tmp_path / "out"), cfg, ExecOptions(kind="slurm"))
    args = executors[0].get_sbatch_args()
    assert "partition" not in args and "mem-per-cpu" not in args and args["array"] == "0-0"


def _state(value, depth: int = 0):
    """A comparable picture of a pipeline step: its settings, folders by path, nested steps."""
    from datatrove.pipeline.base import PipelineStep

    if depth > 6:
        return type(value).__name__
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if hasattr(value, "fs") and hasattr(value, "path"):  # a datatrove DataFolder
        return ("folder", value.path)
    if isinstance(value, dict):
        return {str(k): _state(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_state(v, depth + 1) for v in value]
    if isinstance(value, PipelineStep) or hasattr(value, "__dataclass_fields__"):
        return (type(value).__name__, {k: _state(v, depth + 1) for k, v in vars(value).items()
                                       if k not in ("stats", "_lock")})
    return type(value).__name__


def test_slurm_pipelines_pickle_for_array_tasks(tmp_path, sample_mixed):
    """Array tasks unpickle the executor (datatrove uses dill): every step must come back with the
    same settings — stage configs, count/reject/work folders, dedup parameters."""
    import dill

    cfg = load_config(None)
    opts = ExecOptions(kind="slurm", slurm=SlurmOptions(venv_path="/opt/venv/bin/activate"))
    executors, _ = build_executors([str(sample_mixed)], str(tmp_path / "out"), cfg, opts, keep_rejects=True)
    for ex in executors:
        ex.depends = None  # datatrove drops the dependency before pickling as well
        clone = dill.loads(dill.dumps(ex))
        assert [_state(s) for s in clone.pipeline] == [_state(s) for s in ex.pipeline]
        assert clone.tasks == ex.tasks and clone.logging_dir.path == ex.logging_dir.path
    toxicity = next(s for ex in executors for s in ex.pipeline if getattr(s, "stage", "") == "toxicity")
    assert _state(toxicity)[1]["config"]["min_lexicon_hits"] == cfg["toxicity"]["min_lexicon_hits"]


def test_step_plan_matches_the_executors(tmp_path, sample_mixed):
    """data_prep.plan lists (without datatrove) exactly the executors the pipeline builds: what
    `midm slurm submit data-filter` renders as dependent jobs is what runs."""
    for stages, extra in ((None, {}), (["normalize", "langid"], {}), (["dedup"], {"minhash": False}),
                          (["quality"], {}), (["dedup", "quality"], {"exact": False})):
        cfg = load_config(None, stages)
        cfg["io"]["tasks"] = 3
        cfg["dedup"].update(extra)
        executors, _ = build_executors([str(sample_mixed)], str(tmp_path / "out"), cfg,
                                       ExecOptions(kind="slurm", slurm=SlurmOptions(venv_path="/x/activate")))
        built = [Step(Path(ex.logging_dir.path).name, ex.tasks) for ex in executors]
        assert built == filter_steps(cfg), stages
    full = load_config(None)
    full["io"]["tasks"] = 8
    assert [s.name for s in filter_steps(full)] == [
        "0_stream", "1_dedup_ex-sigs", "1_dedup_ex-find", "1_dedup_ex-filter", "1_dedup_mh-sigs",
        "1_dedup_mh-buckets", "1_dedup_mh-cluster", "1_dedup", "2_cut", "summary"]


def test_running_the_steps_rank_by_rank_equals_the_local_run(tmp_path, sample_mixed):
    """What each array task of `midm slurm submit data-filter` runs (`--step S --rank R`), done for
    every step and rank in order, gives the local run's output: global dedup and quality cut."""
    import json

    from data_prep.cli import main
    from tests.data_prep.conftest import read_output

    args = ["--stages", "normalize,dedup,quality", "--tasks", "3"]
    assert main(["filter", str(sample_mixed), str(tmp_path / "local"), *args]) == 0
    cfg = load_config(None, ["normalize", "dedup", "quality"])
    cfg["io"]["tasks"] = 3
    for step in filter_steps(cfg):
        for rank in range(step.tasks):
            assert main(["filter", str(sample_mixed), str(tmp_path / "steps"), *args, "--step", step.name,
                         "--rank", str(rank)]) == 0, (step, rank)
        manifest = json.loads((tmp_path / "steps" / "midm_output.json").read_text())
        assert manifest["complete"] == (step.name == "summary")  # incomplete until the summary step
    local, steps = (json.loads((tmp_path / d / "stats.json").read_text()) for d in ("local", "steps"))
    assert steps["balanced"] and steps["dropped"] == local["dropped"] and steps["kept"] == local["kept"]
    assert steps["dropped"]["dedup.exact"]["exact_duplicate"] == 2  # pairs split across tasks are still found
    assert sorted(r["id"] for r in read_output(tmp_path / "steps")) == sorted(r["id"] for r in read_output(tmp_path / "local"))
    # a step outside the plan is refused
    assert main(["filter", str(sample_mixed), str(tmp_path / "steps"), *args, "--step", "3_nope"]) == 2


def test_wait_goes_with_the_slurm_executor(tmp_path, sample_mixed, capsys):
    from data_prep.cli import main

    assert main(["filter", str(sample_mixed), str(tmp_path / "out"), "--wait"]) == 2
    assert "--wait goes with --executor slurm" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
