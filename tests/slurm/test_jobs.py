"""Jobs on a live localhost Slurm cluster, submitted through `midm slurm submit`.

The tiny recipe trains with 2 tasks on CPU (gloo) under srun; further runs (srun, and torchrun per
node) get SIGUSR1 in their batch shell (what `--signal=B:USR1@120` delivers before a time limit),
checkpoint, requeue themselves, resume and must end on exactly the uninterrupted run's losses.
A data-filter chain (one dependent job per pipeline step) and the daemons' own start/stop are
checked too.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_DATA
from tests.slurm.cluster import LocalSlurm, alive
from tests.slurm.conftest import midm

STEPS = 12
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def byte_prefix(tmp_path_factory) -> str:
    from tests.megatron_ext.byte_data import write_byte_prefix

    return write_byte_prefix(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jobs")


def submit_tiny(slurm, prefix: str, workdir: Path, run_name: str, launcher: str = "srun",
                *extra: str) -> tuple[str, Path]:
    env = {**slurm.env, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # srun: 2 tasks of 1 CPU; torchrun: 1 task of 2 CPUs running 2 workers.
    cpus = "1" if launcher == "srun" else "2"
    proc = midm(["slurm", "submit", "pretrain", "--recipe", "tiny", "--nodes", "1", "--gpus-per-node", "0",
                 "--ntasks-per-node", "2", "--cpus-per-task", cpus, "--launcher", launcher, "--time", "10",
                 "--workdir", str(workdir),
                 "--set", f"data.blend={prefix}", "--set", "model.vocab_size=384",
                 "--set", "logging.dir=runs", "--set", f"logging.run_name={run_name}",
                 "--set", f"train.steps={STEPS}", "--set", "train.eval_interval=6",
                 "--set", "checkpoint.save_interval=6", "--set", "logging.tensorboard=false", *extra], env=env)
    job_id = proc.stdout.strip()
    assert job_id.isdigit(), proc.stdout
    assert f"as job {job_id}" in proc.stderr
    # the real log path, not the %x-%j pattern
    assert f"log {workdir}/runs/{run_name}/slurm/midm-pretrain-{run_name}-{job_id}.out," in proc.stderr
    return job_id, workdir / "runs" / run_name


def read_log(run_dir: Path, run_name: str, job_id: str) -> str:
    """The job's log (appended to across requeues)."""
    return (run_dir / "slurm" / f"midm-pretrain-{run_name}-{job_id}.out").read_text()


def losses_by_step(run_dir: Path) -> dict[int, float]:
    """Loss per step; a resumed run may log a step twice, the last record wins (it is the one kept)."""
    out: dict[int, float] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[record["step"]] = record["loss"]
    return out


@pytest.fixture(scope="module")
def plain_run(slurm, byte_prefix, workdir):
    job_id, run_dir = submit_tiny(slurm, byte_prefix, workdir, "plain")
    info = slurm.wait_done(job_id, timeout=240)
    return job_id, run_dir, info


def test_tiny_two_tasks_on_cpu(slurm, plain_run):
    job_id, run_dir, info = plain_run
    log = read_log(run_dir, "plain", job_id)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log
    assert f"rendezvous at {slurm.node}:{20000 + int(job_id) % 20000}, 1 node(s) x 2 task(s) = 2 ranks" in log
    assert "step exited with status 0" in log
    losses = losses_by_step(run_dir)
    assert sorted(losses) == list(range(1, STEPS + 1))
    assert losses[STEPS] < losses[1] - 0.5, losses  # it learned something
    assert (run_dir / "checkpoints" / "latest").read_text().strip().endswith(f"{STEPS:07d}")
    assert (run_dir / "checkpoints" / f"iter_{STEPS:07d}").is_dir()
    # Beside the job's log: the resolved recipe, the exact script and the submission record.
    recipe = json.loads((run_dir / "slurm" / f"midm-pretrain-plain-{job_id}.recipe.json").read_text())
    assert recipe["train"]["steps"] == STEPS and recipe["checkpoint"]["dir"] == str(run_dir / "checkpoints")
    assert recipe["logging"]["dir"] == str(run_dir.parent)
    record = json.loads((run_dir / "slurm" / f"midm-pretrain-plain-{job_id}.submit.json").read_text())
    assert record["job_id"] == job_id and Path(record["log"]).exists()
    script = (run_dir / "slurm" / f"midm-pretrain-plain-{job_id}.sbatch").read_text()
    assert "srun --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --mpi=pmi2" in script


@pytest.mark.parametrize("launcher", ["srun", "torchrun"])
def test_usr1_checkpoints_requeues_and_resumes_to_the_same_loss(slurm, plain_run, byte_prefix, workdir, launcher):
    _, plain_dir, _ = plain_run
    run_name = f"requeued_{launcher}"
    # With DataLoader workers (the full-size default): Slurm signals every process of the step, workers too.
    job_id, run_dir = submit_tiny(slurm, byte_prefix, workdir, run_name, launcher, "--set", "data.num_workers=2")
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    assert metrics.exists(), slurm.job(job_id)
    slurm.run(["scancel", "--batch", "--signal=USR1", job_id])
    info = slurm.wait_done(job_id, timeout=240)
    log = read_log(run_dir, run_name, job_id)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", log
    assert "got SIGUSR1: asking the step to checkpoint and stop" in log
    # The trainer exits 75 under srun; torchrun cannot pass that through, the batch shell's flag decides.
    assert f"step exited with status {75 if launcher == 'srun' else 1}" in log
    assert f"requeueing job {job_id}" in log
    assert f"job {job_id} (restart 1)" in log and log.rstrip().endswith("step exited with status 0")
    stopped = re.search(r"checkpointed at step (\d+) after a stop signal", log)
    assert stopped and 3 <= int(stopped.group(1)) < STEPS, log
    assert (run_dir / "checkpoints" / f"iter_{int(stopped.group(1)):07d}").is_dir()
    # The resumed run reproduces the uninterrupted one exactly, final loss included.
    assert losses_by_step(run_dir) == losses_by_step(plain_dir)



def test_data_filter_chain_deduplicates_across_shards(slurm, tmp_path):
    """`midm slurm submit data-filter --array 2` on a live cluster: one job per pipeline step, each
    waiting for the previous (afterok); an exact duplicate split across the two input shards is
    found (per-shard dedup could not), and OUT is the kept documents, complete after the summary."""
    # The input directory's name is hostile on purpose: it reaches `midm data filter` verbatim.
    inputs = tmp_path / "in $(touch pwned) `touch pwned2`;touch pwned3"
    for shard, name in enumerate(("en_shakespeare.jsonl", "ko_statutes.jsonl")):
        (inputs / str(shard)).mkdir(parents=True)
        shutil.copy(TEST_DATA / "corpus" / name, inputs / str(shard) / name)
    twin = json.loads((TEST_DATA / "corpus" / "ko_statutes.jsonl").read_text().splitlines()[3])
    with open(inputs / "0" / "en_shakespeare.jsonl", "a") as f:  # the same statute in the other shard
        f.write(json.dumps({**twin, "id": "twin-in-shard-0"}, ensure_ascii=False) + "\n")
    config = tmp_path / "small_buckets.yaml"
    config.write_text("dedup: {num_buckets: 2}\n")  # 2 MinHash bucket tasks instead of 14: a quicker test
    proc = midm(["slurm", "submit", "data-filter", "--recipe", "tiny", "--array", "2", "--cpus-per-task", "1",
                 "--time", "5", "--input", str(inputs), "--output", "filtered", "--stages", "normalize,dedup",
                 "--config", str(config), "--set", "logging.run_name=data", "--workdir", str(tmp_path)],
                env=slurm.env)
    job_ids = proc.stdout.split()
    steps = ["0_stream", "1_dedup_ex-sigs", "1_dedup_ex-find", "1_dedup_ex-filter", "1_dedup_mh-sigs",
             "1_dedup_mh-buckets", "1_dedup_mh-cluster", "1_dedup", "summary"]
    assert len(job_ids) == len(steps) and all(j.isdigit() for j in job_ids), proc.stdout
    for step, job_id in zip(steps, job_ids):
        info = slurm.job(job_id)
        assert info.get("JobName", "").endswith(step), info
    final = slurm.wait_done(job_ids[-1], timeout=600)
    logs = tmp_path / "runs" / "data" / "slurm"
    assert final["JobState"] == "COMPLETED", "\n".join(p.read_text()[-2000:] for p in logs.glob("*.out"))
    stats = json.loads((tmp_path / "filtered" / "stats.json").read_text())
    assert stats["balanced"] and stats["dropped"]["dedup.exact"] == {"exact_duplicate": 1}, stats
    manifest = json.loads((tmp_path / "filtered" / "midm_output.json").read_text())
    assert manifest["complete"] and manifest["documents"] == stats["kept"] > 0
    assert len(list(logs.glob("midm-data-filter-data-0_stream-*_*.out"))) == 2  # one log per array task
    assert not list(tmp_path.rglob("pwned*")) and not list(REPO.glob("pwned*"))


def test_submit_reports_sbatch_refusal(slurm, tmp_path, byte_prefix):
    proc = midm(["slurm", "submit", "pretrain", "--recipe", "tiny", "--gpus-per-node", "0", "--partition", "nosuch",
                 "--workdir", str(tmp_path), "--set", f"data.blend={byte_prefix}", "--set", "model.vocab_size=384"],
                env=slurm.env, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "sbatch failed" in proc.stderr and "partition" in proc.stderr.lower()
    assert not list((tmp_path / "runs" / "tiny" / "slurm").glob("*.recipe.json"))


def test_stop_ends_the_daemons_by_pid_even_after_a_failure(slurm_installed, tmp_path):
    cluster = LocalSlurm(tmp_path / "cluster")
    started: dict[str, int] = {}
    with pytest.raises(RuntimeError, match="a failing test"):
        try:
            cluster.start()
            started = dict(cluster.pids)
            raise RuntimeError("a failing test")
        finally:
            cluster.stop()
    assert set(started) == {"munged", "slurmctld", "slurmd"}
    assert not [name for name, pid in started.items() if alive(pid)]
