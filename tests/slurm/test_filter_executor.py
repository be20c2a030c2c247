"""`midm data filter --executor slurm` on the live localhost cluster (datatrove array jobs).

One uninterrupted run and one run whose array task is cancelled, then re-run, go side by side:
array tasks per step, each step's job waiting (afterok) on the previous one, a balanced
stats.json written by the last job, the cancelled task's dependents cancelled with it, and the
re-run submitting only the missing rank and ending on the uninterrupted run's output.
"""
from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import pytest

from tests.conftest import REPO, TEST_DATA
from tests.slurm.cluster import FINAL_STATES
from tests.slurm.conftest import midm

pytestmark = pytest.mark.slow
STEPS = ["0_stream", "1_dedup_ex-sigs", "1_dedup_ex-find", "1_dedup", "summary"]
TASKS = [3, 3, 1, 3, 1]


def korean_shards(folder: Path) -> int:
    """Three shards of Korean statutes; each also holds a copy of a document of another shard."""
    lines = (TEST_DATA / "corpus" / "ko_statutes.jsonl").read_text(encoding="utf-8").splitlines()
    folder.mkdir()
    for i in range(3):
        twin = json.loads(lines[((i + 1) % 3) * 8 + i])
        twin["id"] = f"twin-in-shard-{i}"
        rows = lines[i * 8:(i + 1) * 8] + [json.dumps(twin, ensure_ascii=False)]
        (folder / f"shard{i}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 3


def kept_text(out: Path) -> dict[str, str]:
    return {p.name: gzip.decompress(p.read_bytes()).decode("utf-8") for p in sorted(out.glob("*.jsonl.gz"))}


def ended_tasks(slurm, job_id: str, wanted: set[str], timeout: float = 120) -> dict[str, str]:
    """{array task id: final state} of array job ``job_id`` once every task in ``wanted`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = slurm.run(["scontrol", "show", "job", "-o", job_id], check=False).stdout
        states = dict(re.findall(r"ArrayTaskId=(\d+) .*?JobState=(\S+)", out))
        if all(states.get(t) in FINAL_STATES for t in wanted):
            return states
        time.sleep(0.3)
    raise TimeoutError(f"tasks {wanted} of job {job_id} not ended after {timeout:.0f} s\n{slurm.logs()}")


def test_filter_executor_slurm_runs_and_resumes_after_scancel(slurm, tmp_path, monkeypatch, capfd):
    from data_prep.cli import main as data_main
    from data_prep.errors import DataError
    from data_prep.slurm_exec import refuse_if_active

    twins = korean_shards(tmp_path / "in")
    config = tmp_path / "exact.yaml"
    config.write_text("dedup: {minhash: false}\n")  # exact dedup's 3 dependent steps keep the test short

    def filter_cmd(out: str, *extra: str) -> list[str]:
        return ["data", "filter", str(tmp_path / "in"), str(tmp_path / out), "--executor", "slurm", "--tasks", "3",
                "--stages", "dedup", "--config", str(config), *extra]

    # Both submitted at once: an uninterrupted run (a: as users run it, the command submits one job
    # per step and returns their ids) and a fresh run (b, with --wait) that loses a task.
    start = time.monotonic()
    env = {**slurm.env, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "midm"]
    run_a = subprocess.Popen([*cli, *filter_cmd("a")], env=env, stdout=PIPE, stderr=PIPE, text=True)
    run_b = subprocess.Popen([*cli, *filter_cmd("b", "--wait")], env=env, stdout=PIPE, stderr=PIPE, text=True)
    try:
        b_ids = [run_b.stdout.readline().strip() for _ in STEPS]  # printed before it starts waiting
        assert all(i.isdigit() for i in b_ids), (b_ids, run_b.stderr.read() if run_b.poll() is not None else "")
        state = slurm.job(f"{b_ids[0]}_1").get("JobState")
        slurm.run(["scancel", f"{b_ids[0]}_1"])  # one array task of b's first step
        a_out, a_err = run_a.communicate(timeout=120)
        assert run_a.returncode == 0, a_err
        a_ids = a_out.split()
        assert len(a_ids) == len(STEPS), a_out
        for step, job_id in zip(STEPS, a_ids):
            info = slurm.job(job_id)
            assert info["JobName"] == f"midm-data-{step}", info
            assert f"[midm] step {step} (" in a_err and f"job {job_id}\n" in a_err
        for prev, job_id in zip(a_ids[1:], a_ids[2:]):  # a step waits for every task of the one before
            assert slurm.job(job_id)["Dependency"].startswith(f"afterok:{prev}_*"), slurm.job(job_id)
        assert "midm_output.json says \"complete\": true" in a_err
        # A second submission to the same OUT while its jobs are queued would race them: refused (exit 2).
        monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
        active = f"jobs {a_ids[0]},.* of the previous submission .* still queued or running"
        with pytest.raises(DataError, match=active):
            refuse_if_active(tmp_path / "a")

        # b's --wait ends when its jobs have left the queue: exit 1, naming the step and rank that did
        # not complete. Its other two tasks completed; the cancelled one ended CANCELLED (a task
        # cancelled while pending leaves no record of its own).
        b_out, b_err = run_b.communicate(timeout=120)
        assert run_b.returncode == 1 and f"step 0_stream (job {b_ids[0]}) did not complete rank(s) [1]" in b_err, b_err
        assert "Run the same command again" in b_err
        states = ended_tasks(slurm, b_ids[0], {"0", "2"}, timeout=5)
    finally:
        for proc in (run_a, run_b):
            if proc.poll() is None:
                proc.kill()
    assert (states["0"], states.get("1", "CANCELLED"), states["2"]) == ("COMPLETED", "CANCELLED", "COMPLETED"), states
    for job_id in b_ids[1:]:  # --kill-on-invalid-dep: the chain after the failed array is cancelled
        info = slurm.wait_done(job_id, timeout=5)
        assert info["JobState"] == "CANCELLED" and info["Reason"] == "DependencyNeverSatisfied", info
    work = tmp_path / "b" / "_work"
    completions = work / "logs" / "0_stream" / "completions"
    assert sorted(p.name for p in completions.iterdir()) == ["00000", "00002"]  # rank 1 never completed
    finished = [*(completions / f"0000{r}" for r in (0, 2)), *(work / "0_stream" / f"0000{r}.jsonl.gz" for r in (0, 2))]
    done = {p: p.stat().st_mtime_ns for p in finished}

    # The same command again (here with --wait): only rank 1 of step 0, then the steps after it.
    resumed = midm(filter_cmd("b", "--wait"), env=slurm.env)
    assert "[midm] step 0_stream (1 of 3 task(s)): job" in resumed.stderr, resumed.stderr
    record = {s["step"]: s for s in json.loads((work / "slurm_jobs.json").read_text())["steps"]}
    assert [r["ranks"] for r in record.values()] == [[1], [0, 1, 2], [0], [0, 1, 2], [0]]
    rerun_0 = record["0_stream"]["job_ids"][0]
    assert [t["ArrayTaskId"] for t in slurm.wait_array(rerun_0, 1, timeout=5)] == ["0"]  # one array task: rank 1
    assert json.loads((work / "logs" / "0_stream" / "ranks_to_run.json").read_text()) == [1]
    assert {p: p.stat().st_mtime_ns for p in done} == done  # ranks 0 and 2 were not run again
    brief = json.loads(resumed.stdout.splitlines()[-1])
    assert brief["balanced"] and brief["dropped"] == {"dedup.exact": {"exact_duplicate": twins}}, brief

    final = slurm.wait_done(a_ids[-1], timeout=120)
    assert final["JobState"] == "COMPLETED", final
    ended = ""
    for job_id, n in zip(a_ids, TASKS):  # array tasks 0..n-1, each step after all of the previous one
        tasks = slurm.wait_array(job_id, n, timeout=5)
        assert [t["ArrayTaskId"] for t in tasks] == [str(i) for i in range(n)], tasks
        assert all(t["JobState"] == "COMPLETED" and t["StartTime"] >= ended for t in tasks), (ended, tasks)
        ended = max(t["EndTime"] for t in tasks)
    wall = time.monotonic() - start
    stats_a, stats_b = (json.loads((tmp_path / d / "stats.json").read_text()) for d in "ab")
    assert stats_a["balanced"] and stats_a["records_read"] == 27 and stats_a["kept"] == 27 - twins, stats_a
    assert {k: v for k, v in stats_b.items() if k != "output"} == {k: v for k, v in stats_a.items() if k != "output"}
    assert json.loads((tmp_path / "a" / "midm_output.json").read_text())["complete"]
    assert kept_text(tmp_path / "b") == kept_text(tmp_path / "a") != {}
    # In-process from here (the CLI's own entry point; no second interpreter start). A finished run
    # submits nothing again: its stats are printed as a local run prints them.
    capfd.readouterr()
    assert data_main(filter_cmd("a")[1:]) == 0
    again = capfd.readouterr()
    assert json.loads(again.out.splitlines()[-1])["balanced"], again.out
    assert again.err.count("already complete, not submitted") == len(STEPS), again.err
    # sbatch refusing a directive is one line and exit 2, with sbatch's own reason above it.
    assert data_main(filter_cmd("c", "--partition", "nosuch")[1:]) == 2
    refused = capfd.readouterr()
    assert "midm data filter: error: sbatch failed" in refused.err and refused.out == "", refused
    assert "invalid partition" in refused.err.lower()
    with capfd.disabled():
        print(f"two runs (one cancelled and resumed) side by side: {wall:.1f} s; task 1 was {state} when cancelled")
    assert state in ("PENDING", "RUNNING")
