"""`--executor slurm`: the same phases as datatrove Slurm array jobs, chained by dependencies.

Submission itself needs a cluster (tests/slurm runs a real slurmctld); here we check what
would be submitted: tasks per array, sbatch directives, the dependency chain, the env line.
"""
from __future__ import annotations

from data_prep.config import load_config
from data_prep.executors import ExecOptions, SlurmOptions
from data_prep.pipeline import build_executors


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
    assert names[0] == "midm-data-0_stream" and names[-1] == "midm-data-summary"
    assert [e.tasks for e in executors] == [8, 8, 1, 8, 8, 14, 1, 8, 8, 1]
    for prev, ex in zip(executors, executors[1:]):
        assert ex.depends is prev  # each phase waits for the previous one
    args = executors[0].get_sbatch_args(max_array=4)
    assert args["partition"] == "debug" and args["time"] == "02:00:00"
    assert args["cpus-per-task"] == 2 and args["mem-per-cpu"] == "3G"
    assert args["array"] == "0-3" and args["account"] == "kt-midm"
    assert "qos" not in args and "requeue" not in args
    script = executors[0].get_launch_file_contents(args, "launch_pickled_pipeline x")
    assert "#SBATCH --partition=debug" in script and "source /opt/venv/bin/activate" in script
    assert executors[0].max_array_size == 4  # 8 tasks -> two array jobs of 4


def test_slurm_pipelines_pickle_for_array_tasks(tmp_path, sample_mixed):
    """Array tasks unpickle the executor (datatrove uses dill): every step must survive it."""
    import dill

    cfg = load_config(None)
    opts = ExecOptions(kind="slurm", slurm=SlurmOptions(venv_path="/opt/venv/bin/activate"))
    executors, _ = build_executors([str(sample_mixed)], str(tmp_path / "out"), cfg, opts, keep_rejects=True)
    for ex in executors:
        ex.depends = None  # datatrove drops the dependency before pickling as well
        clone = dill.loads(dill.dumps(ex))
        assert [type(s).__name__ for s in clone.pipeline] == [type(s).__name__ for s in ex.pipeline]
