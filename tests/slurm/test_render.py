"""Rendered scripts: #SBATCH lines, srun/torchrun lines, exported variables and quoting.

Multi-node GPU allocations do not exist here, so the rendered script itself is executed by bash
with the SLURM_* variables a 4-node job would have and a *recording srun* first on PATH: it writes
the argv and environment it was called with and exits. Everything else (the env file, scontrol
expanding the node list, the traps, the quoting) is the real thing.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from slurm.cli import main as slurm_main
from slurm.render import JobOptions, render


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def midm(args: list[str], check: bool = True) -> Result:
    """`midm slurm …` in-process (the CLI's own entry point; rendering imports nothing heavy)."""
    assert args[0] == "slurm"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = slurm_main(args[1:])
    result = Result(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"midm {' '.join(args)} exited {code}:\n{result.stderr}")
    return result

RECORDING_SRUN = """#!/bin/bash
n=$(find "$RECORD_DIR" -name 'argv.*' | wc -l)
printf '%s\\0' "$@" > "$RECORD_DIR/argv.$n"
env -0 > "$RECORD_DIR/env.$n"
exit "${RECORD_EXIT:-0}"
"""


def sbatch_directives(script: str) -> list[str]:
    return [line.split(None, 1)[1] for line in script.splitlines() if line.startswith("#SBATCH ")]


def run_script(script: str, tmp_path: Path, conf: Path, env: dict[str, str]) -> list[tuple[list[str], dict]]:
    """Execute a rendered script with a recording srun; return [(argv, env)] per srun call."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir(exist_ok=True)
    record.mkdir(exist_ok=True)
    (bin_dir / "srun").write_text(RECORDING_SRUN)
    (bin_dir / "srun").chmod(0o755)
    path = tmp_path / "job.sh"
    path.write_text(script)
    full_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), "SLURM_CONF": str(conf),
                "RECORD_DIR": str(record), **env}
    proc = subprocess.run(["bash", str(path)], capture_output=True, text=True, env=full_env, cwd=tmp_path,
                          timeout=60, check=False)
    assert proc.returncode == 0, f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    calls = []
    for i in range(len(list(record.glob("argv.*")))):
        argv = (record / f"argv.{i}").read_text().split("\0")[:-1]
        environ = dict(item.split("=", 1) for item in (record / f"env.{i}").read_text().split("\0") if "=" in item)
        calls.append((argv, environ))
    return calls


GPU_JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[001-004]", "SLURM_NNODES": "4"}


def test_multinode_srun_pyxis_script(tmp_path, offline_slurm_conf):
    image = "nvcr.io#nvidia/pytorch:25.01-py3"
    script = midm(["slurm", "render", "pretrain", "--recipe", "midm_8b", "--nodes", "4", "--gpus-per-node", "8",
                   "--cpus-per-task", "12", "--partition", "gpu", "--account", "proj", "--time", "2-00:00:00",
                   "--container", image, "--container-mounts", "/lustre:/lustre", "--workdir", str(tmp_path)]).stdout
    run_dir = tmp_path / "runs" / "midm_8b"
    assert sbatch_directives(script) == [
        "--job-name=midm-pretrain-midm_8b", "--nodes=4", "--ntasks-per-node=8", "--gpus-per-node=8",
        "--cpus-per-task=12", "--exclusive", "--mem=0", "--partition=gpu", "--account=proj", "--time=2-00:00:00",
        f"--output={run_dir}/slurm/%x-%j.out", "--open-mode=append", "--signal=B:USR1@120", "--requeue"]
    assert "trap 'midm_on_signal USR1' USR1" in script and 'scontrol requeue "$SLURM_JOB_ID"' in script

    # RANK/WORLD_SIZE left in the submitting shell must not override the per-task SLURM_* ranks.
    calls = run_script(script, tmp_path, offline_slurm_conf, {**GPU_JOB, "RANK": "5", "WORLD_SIZE": "9"})
    assert len(calls) == 1
    argv, env = calls[0]
    assert "RANK" not in env and "WORLD_SIZE" not in env
    # #SBATCH resources repeated on srun, the --mpi choice, pyxis flags, then one rank per GPU.
    assert argv == ["--nodes=4", "--ntasks=32", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=12", "--mpi=pmi2",
                    "--kill-on-bad-exit=0", "--wait=60", f"--container-image={image}",
                    "--container-mounts=/lustre:/lustre", f"--container-workdir={tmp_path}",
                    "python", "-m", "midm", "train", "--recipe", "midm_8b",
                    "--set", f"logging.dir={tmp_path / 'runs'}",
                    "--set", f"checkpoint.dir={run_dir / 'checkpoints'}",
                    "--resume", "auto"]
    assert env["MASTER_ADDR"] == "gpu001" and env["MASTER_PORT"] == str(20000 + 4242 % 20000)
    assert env["MIDM_CONTAINER_IMAGE"] == image and env["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"
    assert env["NCCL_IB_TIMEOUT"] == "22" and env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    assert env["UCX_TLS"] == "rc,sm,self" and env["OMP_NUM_THREADS"] == "1"
    assert env["HF_HOME"].endswith("/huggingface") and env["PYTHONUNBUFFERED"] == "1"
    assert (run_dir / "slurm").is_dir()


def test_multinode_torchrun_script(tmp_path, offline_slurm_conf):
    script = midm(["slurm", "render", "cpt", "--recipe", "midm_base", "--nodes", "4", "--launcher", "torchrun",
                   "--mpi", "none", "--dus-from", "ckpt/midm_8b", "--workdir", str(tmp_path),
                   "--python", "/opt/venv/bin/python"]).stdout
    assert "--ntasks-per-node=1" in sbatch_directives(script)
    calls = run_script(script, tmp_path, offline_slurm_conf, GPU_JOB)
    assert len(calls) == 2  # depth-up scaling once on one task, then training
    dus, _ = calls[0]
    run_dir = tmp_path / "runs" / "midm_base"
    assert dus == ["--nodes=1", "--ntasks=1", "--ntasks-per-node=1", "--gpus-per-node=8", "--mpi=none", "--kill-on-bad-exit=0",
                   "--wait=60", "/opt/venv/bin/python", "-m", "midm", "dus", "--checkpoint",
                   str(tmp_path / "ckpt" / "midm_8b"), "--output", str(run_dir / "dus_init"), "--map", "solar:8",
                   "--recipe", "midm_base"]
    assert (run_dir / "dus_init.done").exists()
    argv, env = calls[1]
    assert argv[:7] == ["--nodes=4", "--ntasks=4", "--ntasks-per-node=1", "--gpus-per-node=8", "--mpi=none",
                        "--kill-on-bad-exit=0", "--wait=60"]
    runner = argv[7:]
    assert runner[:10] == ["/opt/venv/bin/python", "-m", "torch.distributed.run", "--nnodes=4", "--nproc-per-node=8",
                           "--rdzv-backend=c10d", "--rdzv-endpoint=gpu001:24242", "--rdzv-id=4242",
                           "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", "--shutdown-timeout=110"]
    assert runner[10:15] == ["-m", "midm", "train", "--recipe", "midm_base"]
    assert f"checkpoint.load={run_dir / 'dus_init'}" in runner and runner[-2:] == ["--resume", "auto"]
    assert env["MASTER_ADDR"] == "gpu001"
    # A requeued start does not depth-up scale again.
    (tmp_path / "record" / "argv.0").unlink()
    for f in (tmp_path / "record").iterdir():
        f.unlink()
    assert len(run_script(script, tmp_path, offline_slurm_conf, GPU_JOB)) == 1


def test_hostile_values_stay_inert(tmp_path, offline_slurm_conf):
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker})`touch {marker}`;touch {marker} 'q\" ${{HOME}} \\ %j"
    script = midm(["slurm", "render", "pretrain", "--recipe", "tiny", "--gpus-per-node", "0", "--ntasks-per-node",
                   "2", "--set", f"data.blend_file={hostile}", "--container", f"img{hostile}",
                   "--container-mounts", f"/a:/b{hostile}", "--workdir", str(tmp_path)]).stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    job = {"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n1"}
    argv, env = run_script(script, tmp_path, offline_slurm_conf, job)[0]
    assert f"data.blend_file={hostile}" in argv
    assert f"--container-image=img{hostile}" in argv and f"--container-mounts=/a:/b{hostile}" in argv
    assert env["MIDM_CONTAINER_IMAGE"] == f"img{hostile}"
    assert not marker.exists()


def test_hostile_data_paths_in_array_job(tmp_path, offline_slurm_conf):
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker})"
    script = midm(["slurm", "render", "data-tokenize", "--recipe", "tiny", "--array", "8",
                   "--input", f"raw/{evil}/part_{{shard:05d}}.jsonl", "--output", f"tok/{{shard}}`touch {marker}`",
                   "--tokenizer", "tok", "--workdir", str(tmp_path)]).stdout
    assert "--array=0-7" in sbatch_directives(script)
    assert f"--output={tmp_path}/runs/tiny/slurm/%x-%A_%a.out" in sbatch_directives(script)
    argv, _ = run_script(script, tmp_path, offline_slurm_conf,
                         {"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "9", "SLURM_ARRAY_TASK_ID": "3"})[0]
    assert argv[-8:] == ["data", "tokenize", f"{tmp_path}/raw/{evil}/part_00003.jsonl",
                         f"{tmp_path}/tok/3`touch {marker}`", "--tokenizer", f"{tmp_path}/tok", "--workers", "1"]
    assert not marker.exists()


RECORDING_SBATCH = """#!/bin/bash
n=$(find "$RECORD_DIR" -name 'sbatch.*' | wc -l)
printf '%s\\0' "$@" > "$RECORD_DIR/sbatch.$n"
cat > "$RECORD_DIR/script.$n"
echo "$((1000 + n));cluster"
"""


def test_data_filter_renders_one_dependent_job_per_pipeline_step(tmp_path, offline_slurm_conf):
    """Not one independent filter per shard (dedup and the quality cut would be per shard): every
    step of data_prep.plan as its own job, an array of --array N tasks over the whole input, each
    submitted --dependency=afterok on the one before. The rendered script is run with a recording
    sbatch on PATH; each job script it submits is run as its array tasks with a recording srun."""
    from data_prep.config import load_config
    from data_prep.plan import filter_steps

    marker = tmp_path / "pwned"
    hostile = f"raw/$(touch {marker})"
    # no --recipe: a data stage runs no model (its logs go to runs/data/slurm)
    script = midm(["slurm", "render", "data-filter", "--array", "4", "--input", hostile,
                   "--output", "filtered", "--cpus-per-task", "2", "--workdir", str(tmp_path)]).stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    cfg = load_config(None)
    cfg["io"]["tasks"] = 4
    steps = filter_steps(cfg)
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "sbatch").write_text(RECORDING_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD_DIR": str(record)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(1000 + len(steps) - 1)  # the summary job's id
    for k, step in enumerate(steps):
        sbatch_args = (record / f"sbatch.{k}").read_text().split("\0")[:-1]
        assert sbatch_args == ["--parsable"] + ([f"--dependency=afterok:{1000 + k - 1}"] if k else []), step
        job = (record / f"script.{k}").read_text()
        directives = sbatch_directives(job)
        assert f"--job-name=midm-data-filter-data-{step.name}" in directives
        assert f"--output={tmp_path}/runs/data/slurm/%x-" in " ".join(directives)
        assert ("--array=0-%d" % (step.tasks - 1) in directives) == (step.tasks > 1)
        assert "--kill-on-invalid-dep=yes" in directives and "--cpus-per-task=2" in directives
        rank = str(step.tasks - 1)
        (tmp_path / "record_srun").mkdir(exist_ok=True)
        argv, _ = run_script(job, tmp_path / "record_srun", offline_slurm_conf,
                             {"SLURM_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": rank} if step.tasks > 1 else
                             {"SLURM_JOB_ID": "7"})[-1]
        assert argv[argv.index("midm"):] == ["midm", "data", "filter", f"{tmp_path}/{hostile}", f"{tmp_path}/filtered",
                                             "--tasks", "4", "--step", step.name,
                                             "--rank", rank if step.tasks > 1 else "0"]
    assert [s.name for s in steps][-1] == "summary" and len(list(record.glob("sbatch.*"))) == len(steps)
    assert not marker.exists()


@pytest.mark.parametrize("args, message", [
    (["--array", "0-7%2"], "takes a task count N"),
    (["--input", "raw/{shard}"], "{shard} in --input/--output is for data-tokenize"),
    (["--stages", "nope"], "unknown stage"),
    (["--hub-config", "kor_Hang"], "--hub-config goes with --format hub"),
])
def test_data_filter_chain_rejects_per_shard_shapes(args, message, tmp_path):
    base = {"--input": "raw", "--output": "out"}
    extra = dict(zip(args[::2], args[1::2]))
    argv = [w for k, v in {**base, **extra}.items() for w in (k, v)]
    proc = midm(["slurm", "render", "data-filter", "--recipe", "tiny", *argv, "--workdir", str(tmp_path)], check=False)
    assert proc.returncode == 2 and message in proc.stderr


def test_data_filter_forwards_the_input_format(tmp_path):
    """--format reaches every step's `midm data filter`; a local input becomes absolute, a Hub id
    (--format hub) stays as given."""
    def filter_lines(*argv):
        script = midm(["slurm", "render", "data-filter", "--output", "out", *argv, "--workdir", str(tmp_path)]).stdout
        return [ln.split("-m midm ", 1)[1] for ln in script.splitlines() if "-m midm data filter" in ln]

    warc = filter_lines("--input", "crawl/CC-MAIN-2024.warc.gz", "--format", "warc")
    assert warc and all(ln.startswith(f"data filter {tmp_path}/crawl/CC-MAIN-2024.warc.gz {tmp_path}/out --format warc ")
                        for ln in warc)
    hub = filter_lines("--input", "HuggingFaceFW/fineweb-2", "--format", "hub", "--hub-config", "kor_Hang",
                       "--hub-split", "train")
    assert hub and all(ln.startswith(f"data filter HuggingFaceFW/fineweb-2 {tmp_path}/out --format hub "
                                     "--hub-config kor_Hang --hub-split train ") for ln in hub)
    tokenize = midm(["slurm", "render", "data-tokenize", "--input", "raw/{shard:05d}.warc.gz", "--output", "tok/{shard}",
                     "--tokenizer", "t", "--format", "warc", "--array", "2", "--workdir", str(tmp_path)]).stdout
    assert f'data tokenize {tmp_path}/raw/"${{MIDM_SHARD_05}}".warc.gz' in tokenize and " --format warc " in tokenize
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(io.StringIO()) as err:
        slurm_main(["render", "data-filter", "--input", "raw", "--output", "out", "--format", "xml"])
    assert exit_info.value.code == 2 and "invalid choice: 'xml'" in err.getvalue()


def test_recipe_is_optional_only_for_data_stages(tmp_path):
    proc = midm(["slurm", "render", "data-filter", "--input", "raw", "--output", "out", "--set", "train.steps=1",
                 "--workdir", str(tmp_path)], check=False)
    assert proc.returncode == 2 and "--set changes a recipe field: give --recipe NAME" in proc.stderr
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(io.StringIO()) as err:
        slurm_main(["render", "pretrain", "--workdir", str(tmp_path)])
    assert exit_info.value.code == 2 and "required: --recipe" in err.getvalue()


@pytest.mark.parametrize("args, message", [
    (["pretrain", "--recipe", "tiny", "--set", "logging.run_name=x$(touch /tmp/p)"], "logging.run_name"),
    (["pretrain", "--recipe", "tiny", "--set", "logging.run_name=a`id`"], "#SBATCH"),
    (["pretrain", "--recipe", "tiny", "--partition", "gpu batch"], "--partition"),
    (["pretrain", "--recipe", "tiny", "--set", "data.blend_file=a\n#SBATCH --wrap=id"], "newline"),
    (["pretrain", "--recipe", "tiny", "--container", "img\nid"], "--container"),
    (["pretrain", "--recipe", "tiny", "--time", "1h; id"], "--time"),
    (["pretrain", "--recipe", "tiny", "--set", "train.nope=1"], "unknown field 'nope'"),
    (["pretrain", "--recipe", "tiny", "--gpus-per-node", "0", "--ntasks-per-node", "3"], "global_batch_size"),
    (["pretrain", "--recipe", "midm_base", "--nodes", "1", "--gpus-per-node", "6"], "tensor_model_parallel_size"),
    (["prune", "--recipe", "midm_mini", "--nodes", "2", "--checkpoint", "c", "--calib", "c"], "one node"),
    (["data-tokenize", "--recipe", "tiny", "--input", "in/{shard}", "--output", "o", "--tokenizer", "t"], "--array"),
    (["pretrain", "--recipe", "no_such_recipe"], "unknown recipe"),
    (["eval", "--recipe", "midm_mini", "--tasks", "kmmlu,kmmluu"],
     "--tasks: unknown benchmark 'kmmluu'; known: haerae, kmmlu, kobest_comprehension"),
    (["eval", "--recipe", "midm_mini", "--tasks", "kmmlu,logickor"],
     "--tasks: logickor (LogicKor) is scored by an LLM judge: pass --judge URL --judge-model NAME"),
    (["eval", "--recipe", "midm_mini", "--tasks", "logickor", "--judge", "http://j:8000"], "go together"),
])
def test_bad_values_are_rejected_with_a_clear_message(args, message, tmp_path):
    proc = midm(["slurm", "render", *args, "--workdir", str(tmp_path)], check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and proc.stderr.startswith("midm slurm: error:")
    assert args[0] != "eval" or len(proc.stderr.splitlines()) == 1  # the known names on the same line
    assert not Path("/tmp/p").exists()


def test_every_stage_renders_valid_bash(tmp_path):
    cases = {
        "pretrain": [], "cpt": ["--dus-from", "c8b"], "distill": ["--teacher", "t", "--student", "s"],
        "sft": ["--data", "sft_data", "--base", "mini"],
        "dpo": ["--reference", "sft", "--data", "prefs"],
        "prune": ["--checkpoint", "c", "--calib", "calib"], "convert": [], "eval": ["--tasks", "kmmlu,haerae"],
        "data-filter": ["--input", "a", "--output", "b"],
        "data-tokenize": ["--input", "a", "--output", "b", "--tokenizer", "tok"],
    }
    for stage, extra in cases.items():
        recipe = {"prune": "midm_mini", "distill": "midm_mini", "cpt": "midm_base", "sft": "midm_mini_sft",
                  "dpo": "midm_mini_dpo"}.get(stage, "midm_8b")
        nodes = ["--nodes", "2"] if stage in ("pretrain", "cpt", "distill", "sft", "dpo") else []
        script = midm(["slurm", "render", stage, "--recipe", recipe, *nodes, *extra,
                       "--workdir", str(tmp_path)]).stdout
        assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0, stage
        assert "source " in script and "srun " in script, stage
    prune = midm(["slurm", "render", "prune", "--recipe", "midm_mini", "--checkpoint", "base", "--calib", "c",
                  "--workdir", str(tmp_path)]).stdout
    assert f"prune --checkpoint {tmp_path / 'base'} --output {tmp_path / 'runs/midm_mini/pruned'}" in prune
    assert f"--recipe midm_mini --hidden 1792 --ffn 4608 --calib {tmp_path / 'c'}" in prune
    distill = midm(["slurm", "render", "distill", "--recipe", "midm_mini", "--nodes", "2", "--teacher", "t",
                    "--student", "s", "--workdir", str(tmp_path)]).stdout
    assert f"--teacher {tmp_path / 't'} --student {tmp_path / 's'} --resume auto &" in distill
    sft = midm(["slurm", "render", "sft", "--recipe", "midm_mini_sft", "--nodes", "2", "--data", "d", "--base", "m",
                "--workdir", str(tmp_path)]).stdout
    assert "sft --recipe midm_mini_sft" in sft and f"--data {tmp_path / 'd'} --base {tmp_path / 'm'} --resume auto &" in sft
    dpo = midm(["slurm", "render", "dpo", "--recipe", "midm_base_dpo", "--nodes", "2", "--reference", "sft",
                "--workdir", str(tmp_path)]).stdout
    assert "-m midm dpo --recipe midm_base_dpo" in dpo and f"--reference {tmp_path / 'sft'} --resume auto &" in dpo
    dpo = midm(["slurm", "render", "dpo", "--recipe", "midm_base_dpo", "--nodes", "2", "--reference", "sft",
                "--data", "p", "--workdir", str(tmp_path)]).stdout
    assert f"--reference {tmp_path / 'sft'} --data {tmp_path / 'p'} --resume auto &" in dpo


@pytest.fixture(scope="module")
def prefixes(tmp_path_factory) -> dict[str, str]:
    """A usable byte-level prefix and one of 3 documents (too few for any split with validation)."""
    from tests.megatron_ext.byte_data import write_byte_prefix

    out = tmp_path_factory.mktemp("data")
    return {"ok": write_byte_prefix(out, "corpus"), "few": write_byte_prefix(out, "few", docs=3)}


def _tiny_data(prefix: str) -> list[str]:
    return ["--set", f"data.blend={prefix}", "--set", "model.vocab_size=384"]


def test_submit_dry_run_writes_nothing(tmp_path, prefixes):
    proc = midm(["slurm", "submit", "pretrain", "--recipe", "tiny", "--dry-run", "--gpus-per-node", "0",
                 "--workdir", str(tmp_path), *_tiny_data(prefixes["ok"])])
    assert proc.stdout.startswith("#!/bin/bash") and "dry run" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_submit_runs_the_trainers_data_checks(tmp_path, prefixes):
    """What would fail after the nodes were granted fails at submission (dry run or not), exit 2."""
    proc = midm(["slurm", "submit", "pretrain", "--recipe", "midm_8b", "--nodes", "4", "--dry-run",
                 "--workdir", str(tmp_path)], check=False)
    assert proc.returncode == 2 and proc.stdout == "" and "data.blend is empty" in proc.stderr
    Path(tmp_path / "few.bin").symlink_to(prefixes["few"] + ".bin")
    Path(tmp_path / "few.idx").symlink_to(prefixes["few"] + ".idx")
    for action in (["submit", "--dry-run"], ["submit", "--sbatch", str(tmp_path / "no-sbatch")]):
        proc = midm(["slurm", action[0], "distill", "--recipe", "tiny", *action[1:], "--gpus-per-node", "0",
                     "--teacher", "t", "--student", "s", "--workdir", str(tmp_path), *_tiny_data("few")],
                    check=False)  # a relative prefix: it resolves against --workdir, as in the job
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert f"data prefix '{tmp_path / 'few'}' has 3 documents; data.split=95,5,0" in proc.stderr
    assert midm(["slurm", "render", "pretrain", "--recipe", "midm_8b"]).returncode == 0  # render stays offline


def test_sft_and_dpo_check_their_own_data_not_the_blend(posttrain_data):
    """`slurm render|submit --dry-run` of sft/dpo as the slurm README shows them: their data is --data /
    sft.dataset / dpo.dataset (a `midm data sft` / `midm data prefs` output), never data.blend."""
    ws = ["--workdir", str(posttrain_data), "--nodes", "1", "--gpus-per-node", "1"]
    sft = ["sft", "--recipe", "tiny_sft", "--data", "sft256/", "--base", "runs/tiny_mini/checkpoints", *ws]
    dpo = ["dpo", "--recipe", "tiny_dpo", "--reference", "runs/tiny_sft/checkpoints", *ws]
    for argv, words in ((sft, f"--data {posttrain_data / 'sft256'} --base"),
                        ([*dpo, "--set", "dpo.dataset=prefs256/"], "--set dpo.dataset=prefs256/"),
                        ([*dpo, "--data", "prefs256"], f"--data {posttrain_data / 'prefs256'} --resume auto")):
        assert words in midm(["slurm", "render", *argv]).stdout
        proc = midm(["slurm", "submit", *argv, "--dry-run"])
        assert proc.stdout.startswith("#!/bin/bash") and words in proc.stdout and "dry run" in proc.stderr
    assert not (posttrain_data / "runs").exists()
    for argv, message in (
            ([*sft[:3], "--data", "prefs256", *ws], "not a midm-sft v1 index (got 'midm-prefs' v1)"),
            ([*dpo, "--data", "sft256"], "format 'midm-sft' v1, expected 'midm-prefs' v1"),
            ([*sft[:3], "--data", "nope", *ws], f"sft dataset {posttrain_data / 'nope'} does not exist"),
            ([*sft[:3], *ws], "sft needs a dataset (the output of `midm data sft`): pass --data DIR"),
            ([*dpo], "dpo needs a dataset (the output of `midm data prefs`): pass --data DIR or --set dpo.dataset"),
            (["sft", "--recipe", "tiny", "--data", "sft256", *ws], "recipe 'tiny' has no sft section")):
        proc = midm(["slurm", "submit", *argv, "--dry-run"], check=False)
        assert proc.returncode == 2 and proc.stdout == "" and message in proc.stderr, proc.stderr
        assert "data.blend" not in proc.stderr
    (posttrain_data / "broken").mkdir()
    for name in ("index.json", "train-00000"):
        (posttrain_data / "broken" / name).symlink_to(posttrain_data / "sft256" / name)
    (posttrain_data / "broken" / "train-00000" / "samples.npy").rename(posttrain_data / "samples.npy")
    try:  # a damaged shard is found by the shard reader itself
        proc = midm(["slurm", "submit", *sft[:3], "--data", "broken", *ws, "--dry-run"], check=False)
        assert proc.returncode == 2 and "unreadable shard" in proc.stderr, proc.stderr
    finally:
        (posttrain_data / "samples.npy").rename(posttrain_data / "sft256" / "train-00000" / "samples.npy")


def test_submit_refuses_data_of_another_tokenizer_than_its_checkpoints(tmp_path, prefixes, posttrain_data):
    """The trainers' tokenizer checks at submission: data (sft/prefs index, blend summaries) recording another
    tokenizer than the --base / --reference / --teacher / checkpoint.load checkpoint is refused (exit 2, one
    line) instead of failing after the nodes were granted; the same tokenizer, the hatch, and a checkpoint an
    earlier job has not written yet pass."""
    def checkpoint(name: str, fingerprint: str) -> str:
        (tmp_path / name / "iter_0000004").mkdir(parents=True)
        (tmp_path / name / "iter_0000004" / "trainer_state.json").write_text(
            json.dumps({"tokenizer": name, "tokenizer_fingerprint": fingerprint}))
        (tmp_path / name / "latest").write_text("iter_0000004")
        return str(tmp_path / name)

    made_with = json.loads((posttrain_data / "sft256" / "index.json").read_text())["tokenizer_fingerprint"]
    same, other = checkpoint("tok_same", made_with), checkpoint("tok_other", "0" * 16)
    for ext in ("bin", "idx"):
        (tmp_path / f"ko.{ext}").symlink_to(f"{prefixes['ok']}.{ext}")
    (tmp_path / "ko.summary.json").write_text(json.dumps({"tokenizer": "tok_ko", "tokenizer_fingerprint": "a" * 16}))
    ws = ["--workdir", str(posttrain_data), "--nodes", "1", "--gpus-per-node", "1", "--dry-run"]
    sft = ["sft", "--recipe", "tiny_sft", "--data", "sft256", *ws]
    dpo = ["dpo", "--recipe", "tiny_dpo", "--data", "prefs256", *ws]
    pretrain = ["pretrain", "--recipe", "tiny", *_tiny_data(str(tmp_path / "ko")), *ws]
    hatch = ["--set", "checkpoint.allow_tokenizer_change=true"]
    for argv, role in (([*sft, "--base", other], f"base checkpoint {other}"),
                       ([*dpo, "--reference", other], f"initial checkpoint {other}"),
                       ([*dpo, "--reference", same, "--set", f"checkpoint.load={other}"],
                        f"initial checkpoint {other}"),
                       ([*pretrain, "--set", f"checkpoint.load={same}"], f"initial checkpoint {same}"),
                       (["distill", "--recipe", "tiny", "--teacher", same, "--student", same, *pretrain[3:]],
                        f"initial checkpoint {same}")):
        proc = midm(["slurm", "submit", *argv], check=False)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert "was made with tokenizer" in proc.stderr and f"but the {role} was trained with tokenizer" in proc.stderr
        assert proc.stderr.endswith("add --set checkpoint.allow_tokenizer_change=true\n")
        assert proc.stderr.count("\n") == 1  # one line
        assert midm(["slurm", "submit", *argv, *hatch]).returncode == 0
    # data made before fingerprints (the byte prefix records none): the teacher still meets the student
    proc = midm(["slurm", "submit", "distill", "--recipe", "tiny", "--teacher", other, "--student", same,
                 *_tiny_data(prefixes["ok"]), *ws], check=False)
    assert proc.returncode == 2 and f"the teacher checkpoint {other} was trained with" in proc.stderr, proc.stderr
    assert f"but the initial checkpoint {same} with" in proc.stderr
    for argv in ([*sft, "--base", same], [*dpo, "--reference", same], [*sft, "--base", str(tmp_path / "not_yet")]):
        assert midm(["slurm", "submit", *argv]).returncode == 0


def test_submit_data_checks_import_no_torch(prefixes, posttrain_data):
    ws = f"'--gpus-per-node', '0', '--dry-run', '--workdir', {str(posttrain_data)!r}"
    code = ("import sys, json; from slurm.cli import main; "
            f"rc = [main(['submit', 'pretrain', '--recipe', 'tiny', {ws}, "
            f"'--set', 'data.blend={prefixes['ok']}', '--set', 'model.vocab_size=384']), "
            f"main(['submit', 'sft', '--recipe', 'tiny_sft', '--data', 'sft256', {ws}]), "
            f"main(['submit', 'dpo', '--recipe', 'tiny_dpo', '--reference', 'r', '--data', 'prefs256', {ws}])]; "
            "print(json.dumps([rc, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'megatron'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == [[0, 0, 0], []]


def test_slurm_cli_does_not_import_torch():
    code = ("import sys, slurm.cli, slurm.render, slurm.submit; from slurm.render import JobOptions, render; "
            "render(JobOptions(stage='pretrain', recipe='midm_8b', nodes=4)); "
            "render(JobOptions(stage='data-filter', recipe='tiny', array='4', stage_args={'input': 'a', 'output': 'b'})); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'megatron', 'datatrove'))))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_log_path_is_the_file_slurm_writes(tmp_path, prefixes):
    single = render(JobOptions(stage="pretrain", recipe="tiny", gpus_per_node=0, workdir=str(tmp_path)))
    assert single.log_pattern.endswith("/%x-%j.out")
    assert single.log_path("4242") == str(tmp_path / "runs" / "tiny" / "slurm" / f"{single.job_name}-4242.out")
    array = render(JobOptions(stage="data-tokenize", recipe="tiny", array="2", workdir=str(tmp_path),
                              stage_args={"input": "in/{shard}", "output": "out/{shard}", "tokenizer": "tok"}))
    assert array.log_path("77") == str(tmp_path / "runs" / "tiny" / "slurm" / f"{array.job_name}-77_*.out")
    dry = midm(["slurm", "submit", "pretrain", "--recipe", "tiny", "--dry-run", "--gpus-per-node", "0",
                "--workdir", str(tmp_path), *_tiny_data(prefixes["ok"])]).stderr
    assert "%x" not in dry and f"{single.job_name}-<job id>.out" in dry


def test_eval_passes_the_judge_to_midm_eval(tmp_path):
    proc = midm(["slurm", "render", "eval", "--recipe", "midm_mini", "--tasks", "kmmlu,logickor,ko_mtbench",
                 "--judge", "http://judge:8000/v1", "--judge-model", "gpt-4o", "--workdir", str(tmp_path)])
    line = next(ln for ln in proc.stdout.splitlines() if " eval --model " in ln)
    assert "--tasks kmmlu,logickor,ko_mtbench" in line and "--judge http://judge:8000/v1 --judge-model gpt-4o" in line
