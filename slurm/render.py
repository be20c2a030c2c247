"""Render an sbatch script for one stage from a recipe and the launch flags.

The script is assembled from the templates in ``slurm/templates`` (bash written once, by us) and
values that are either quoted for the shell or checked for ``#SBATCH`` (see :mod:`slurm.quoting`).
Resources are written twice on purpose: as ``#SBATCH`` lines for the allocation and again on
every ``srun``, because srun does not reliably inherit them (``--cpus-per-task`` is the classic
casualty since Slurm 22.05).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from slurm.quoting import (RenderError, Var, Word, quote_command, quote_word, sbatch_value, shard_word,
                           single_line)
from slurm.stages import STAGES, Stage, StageContext, dest

MPI_CHOICES = ("pmi2", "pmix", "pmix_v3", "pmix_v4", "pmix_v5", "none")
LAUNCHERS = ("srun", "torchrun")
RECIPE_OPTIONAL = ("data", "chain")  # stage kinds that run no model: --recipe only places the logs
_TIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}|\d+-\d+|UNLIMITED|INFINITE")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_ARRAY = re.compile(r"\d+(-\d+)?(:\d+)?(,\d+(-\d+)?(:\d+)?)*(%\d+)?")


@dataclass
class JobOptions:
    """Everything `midm slurm render|submit` accepts (defaults = the CLI's)."""

    stage: str
    recipe: str | None
    overrides: list[str] = field(default_factory=list)
    nodes: int = 1
    gpus_per_node: int | None = None  # default: the stage's
    ntasks_per_node: int | None = None  # default: one per GPU (srun), 1 (torchrun), 1 on CPU
    cpus_per_task: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    container: str | None = None
    container_mounts: str | None = None
    mpi: str = "pmi2"
    launcher: str = "srun"
    array: str | None = None
    env_file: str | None = None
    python: str | None = None  # interpreter that runs `-m midm` (default: this one; `python` in a container)
    signal_lead: int = 120
    max_requeues: int = 20
    workdir: str | None = None  # default: the current directory
    stage_args: dict[str, str | None] = field(default_factory=dict)


@dataclass
class ChainJob:
    """One job of a dependent chain (data-filter): submitted after ``after`` (an index) succeeded."""

    step: str
    script: str
    job_name: str
    log_pattern: str
    tasks: int
    after: int | None


@dataclass
class Rendered:
    script: str  # for a chain: the bash script that submits every job with its dependency
    recipe_dict: dict
    run_dir: Path
    log_dir: Path
    job_name: str
    log_pattern: str  # the #SBATCH --output value (a chain: its last job's)
    jobs: list[ChainJob] = field(default_factory=list)  # a chain's jobs in submission order

    def log_path(self, job_id: str) -> str:
        """The log file Slurm writes for ``job_id``: ``%x``/``%j``/``%A`` expanded (filename patterns of
        sbatch(1)); an array's per-task ``%a`` becomes ``*`` (one file per task)."""
        return (self.log_pattern.replace("%x", self.job_name).replace("%j", job_id).replace("%A", job_id)
                .replace("%a", "*"))


def default_env_file() -> Path:
    return Path(str(resources.files("slurm") / "templates" / "env.sh"))


def _template(name: str) -> str:
    return (resources.files("slurm") / "templates" / name).read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    def repl(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder @@{key}@@ has no value")
        return values[key]

    return re.sub(r"@@([A-Z_]+)@@", repl, template)


def _abs(path: str | Path, workdir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else workdir / p


def _check_options(opts: JobOptions, stage: Stage) -> None:
    def positive(value: int | None, flag: str, minimum: int = 1) -> None:
        if value is not None and value < minimum:
            raise RenderError(f"{flag} must be >= {minimum}, got {value}")

    positive(opts.nodes, "--nodes")
    positive(opts.gpus_per_node, "--gpus-per-node", 0)
    positive(opts.ntasks_per_node, "--ntasks-per-node")
    positive(opts.cpus_per_task, "--cpus-per-task")
    positive(opts.signal_lead, "--signal-lead", 10)
    positive(opts.max_requeues, "--max-requeues", 0)
    if opts.mpi not in MPI_CHOICES:
        raise RenderError(f"--mpi {opts.mpi!r}: choose one of {', '.join(MPI_CHOICES)} "
                          "(pmi2 works under pyxis/enroot where pmix often fails)")
    if opts.launcher not in LAUNCHERS:
        raise RenderError(f"--launcher {opts.launcher!r}: choose srun or torchrun")
    if opts.time is not None and not _TIME.fullmatch(opts.time):
        raise RenderError(f"--time {opts.time!r}: use Slurm's format, e.g. 30, 4:00:00 or 2-00:00:00")
    for flag, value in (("--partition", opts.partition), ("--account", opts.account), ("--qos", opts.qos)):
        if value is not None and not _NAME.fullmatch(value):
            raise RenderError(f"{flag} {value!r}: only letters, digits, '.', '_' and '-' are allowed")
    if stage.kind != "distributed" and opts.nodes != 1:
        raise RenderError(f"stage {stage.name} runs one task on one node; drop --nodes {opts.nodes}")
    if opts.array is not None:
        if stage.kind not in ("data", "chain"):
            raise RenderError(f"--array is for the data stages (data-filter, data-tokenize), not {stage.name}")
        if stage.kind == "chain" and not (opts.array.isdigit() and int(opts.array) > 0):
            raise RenderError(f"--array {opts.array!r}: {stage.name} takes a task count N (every step of the pipeline "
                              "runs N tasks over all the input, then the next step), not a Slurm range")
        if not _ARRAY.fullmatch(opts.array):
            raise RenderError(f"--array {opts.array!r}: give a shard count (e.g. 16) or a Slurm range (0-15%4)")
    for name in opts.stage_args:
        if name not in {dest(a.flag) for a in stage.args}:
            raise RenderError(f"stage {stage.name} does not take --{name.replace('_', '-')}")
    for arg in stage.args:
        if arg.required and opts.stage_args.get(dest(arg.flag)) is None:
            raise RenderError(f"stage {stage.name} needs {arg.flag} ({arg.help})")


def _check_single_line(opts: JobOptions) -> None:
    for assignment in opts.overrides:
        single_line(assignment, f"--set {assignment.split('=', 1)[0]}")
    for flag in ("recipe", "container", "container_mounts", "env_file", "python", "workdir", "partition", "account",
                 "qos", "time", "array"):
        value = getattr(opts, flag)
        if value is not None:
            single_line(str(value), "--" + flag.replace("_", "-"))
    for name, value in opts.stage_args.items():
        if value is not None:
            single_line(str(value), "--" + name.replace("_", "-"))


def _array_spec(array: str) -> str:
    return f"0-{int(array) - 1}" if array.isdigit() else array


def _stage_words(opts: JobOptions, stage: Stage, workdir: Path) -> tuple[dict[str, Word], set[int]]:
    words: dict[str, Word] = {}
    widths: set[int] = set()
    for arg in stage.args:
        name = dest(arg.flag)
        value = opts.stage_args.get(name)
        if value is None:
            continue
        if arg.requires and opts.stage_args.get(arg.requires[0]) != arg.requires[1]:
            raise RenderError(f"{arg.flag} goes with --{arg.requires[0].replace('_', '-')} {arg.requires[1]}")
        if arg.choices and str(value) not in arg.choices:
            raise RenderError(f"{arg.flag} must be one of {', '.join(arg.choices)} (got {value!r})")
        # a Hub dataset id is not a path: --format hub keeps --input as given
        is_path = arg.is_path and not (name == "input" and opts.stage_args.get("format") == "hub")
        text = str(_abs(value, workdir)) if is_path else str(value)
        word, used = shard_word(text, arg.flag)
        if word != text and stage.kind == "chain":
            raise RenderError(f"{stage.name} runs every step over all of its input (global dedup and quality cut): "
                              f"{{shard}} in --input/--output is for data-tokenize; give {arg.flag} the whole input")
        if word != text and opts.array is None:
            raise RenderError(f"{arg.flag} {value!r} uses {{shard}}, which only means something with --array N")
        words[name] = word
        widths |= used
    return words, widths


def render(opts: JobOptions) -> Rendered:
    """Resolve the recipe, check every value and return the script (raises RenderError/RecipeError)."""
    from recipes import get_recipe, recipe_to_dict, validate

    _check_single_line(opts)
    if opts.stage not in STAGES:
        raise RenderError(f"unknown stage {opts.stage!r}; choose one of {', '.join(STAGES)}")
    stage = STAGES[opts.stage]
    _check_options(opts, stage)
    if stage.check is not None:
        stage.check(opts.stage_args)
    workdir = Path(opts.workdir or Path.cwd()).resolve()

    if opts.recipe is None:  # the data stages run no model: their run directory is runs/data
        if stage.kind not in RECIPE_OPTIONAL:
            raise RenderError(f"stage {stage.name} needs --recipe NAME (midm recipe list)")
        if opts.overrides:
            raise RenderError("--set changes a recipe field: give --recipe NAME with it")
        from recipes.config import CheckpointConfig, LoggingConfig

        recipe, log_cfg, ckpt_dir = None, LoggingConfig(run_name="data"), CheckpointConfig().dir
    else:
        recipe = get_recipe(opts.recipe, opts.overrides)
        log_cfg, ckpt_dir = recipe.logging, recipe.checkpoint.dir
    logging_dir = _abs(log_cfg.dir, workdir)
    run_dir = logging_dir / log_cfg.run_name
    checkpoint_dir = _abs(ckpt_dir, workdir) if ckpt_dir else run_dir / "checkpoints"
    log_dir = run_dir / "slurm"
    derived = [f"logging.dir={logging_dir}", f"checkpoint.dir={checkpoint_dir}"]

    words, widths = _stage_words(opts, stage, workdir)
    ctx = StageContext(opts.recipe, recipe, list(opts.overrides), list(opts.overrides), run_dir, checkpoint_dir,
                       words)
    ctx.extra["cpus_per_task"] = opts.cpus_per_task
    if stage.name == "cpt" and "dus_from" in words:
        ctx.extra["dus_output"] = str(run_dir / "dus_init")
    if stage.derived_overrides is not None:
        derived += stage.derived_overrides(ctx)
    recipe = get_recipe(opts.recipe, [*opts.overrides, *derived]) if opts.recipe else None
    ctx.recipe, ctx.overrides = recipe, [*opts.overrides, *derived] if opts.recipe else []
    recipe_dict = recipe_to_dict(recipe) if recipe is not None else {}

    job_name = sbatch_value(f"midm-{stage.name}-{_plain(log_cfg.run_name)}", "job name")
    log_pattern = str(log_dir / ("%x-%A_%a.out" if opts.array and stage.kind != "chain" else "%x-%j.out"))
    sbatch_value(str(log_dir), "the log directory <logging.dir>/<logging.run_name>/slurm (from logging.dir and "
                               "logging.run_name)")

    gpus = stage.default_gpus_per_node if opts.gpus_per_node is None else opts.gpus_per_node
    if stage.kind == "distributed":
        per_node = gpus if opts.launcher == "torchrun" and gpus else (opts.ntasks_per_node or gpus or 1)
        validate(recipe, world_size=opts.nodes * per_node, has_gpu=gpus > 0)
    tasks_per_node = _tasks_per_node(opts, stage, gpus)
    header = _sbatch_lines(opts, stage, gpus, tasks_per_node, job_name, log_pattern)

    python = opts.python or ("python" if opts.container else sys.executable)
    exports = []
    if opts.container:
        exports.append(f"export MIDM_CONTAINER_IMAGE={quote_word(opts.container)}")
    if opts.container_mounts:
        exports.append(f"export MIDM_CONTAINER_MOUNTS={quote_word(opts.container_mounts)}")
    env_file = _abs(opts.env_file, workdir) if opts.env_file else default_env_file()
    if not env_file.is_file():
        raise RenderError(f"--env-file {env_file}: no such file")

    def preamble(sbatch_lines: list[str]) -> str:
        return _fill(_template("preamble.sh"), {
            "SBATCH": "\n".join(sbatch_lines), "STAGE": stage.name, "RECIPE": recipe.name if recipe else "(none)",
            "STAGE_Q": quote_word(stage.name), "RUN_DIR": quote_word(str(run_dir)), "LOG_DIR": quote_word(str(log_dir)),
            "WORKDIR": quote_word(str(workdir)), "PYTHON": quote_word(python),
            "CONTAINER_EXPORTS": "\n".join(exports), "ENV_FILE": quote_word(str(env_file)),
        })

    program: list[Word] = [Var("MIDM_PYTHON"), "-m", "midm", *stage.command(ctx)]
    if stage.kind == "chain":
        from slurm.chain import render_chain

        return render_chain(opts, stage, ctx, program, widths, preamble, workdir, job_name,
                            Rendered(script="", recipe_dict=recipe_dict, run_dir=run_dir, log_dir=log_dir,
                                     job_name=job_name, log_pattern=log_pattern))
    script = preamble(header) + _body(opts, stage, ctx, gpus, tasks_per_node, program, widths)
    return Rendered(script, recipe_dict, run_dir, log_dir, job_name, log_pattern)


def _plain(name: str) -> str:
    """A job-name-safe rendering of a run name (the job name is a label; the run dir keeps the real one)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:64] or "run"


def _tasks_per_node(opts: JobOptions, stage: Stage, gpus: int) -> int:
    if stage.kind != "distributed":
        return 1
    if opts.launcher == "torchrun":
        return 1
    return opts.ntasks_per_node or gpus or 1


def _sbatch_lines(opts: JobOptions, stage: Stage, gpus: int, tasks_per_node: int, job_name: str,
                  log_pattern: str) -> list[str]:
    lines = [f"--job-name={job_name}", f"--nodes={opts.nodes}", f"--ntasks-per-node={tasks_per_node}"]
    if gpus:
        lines.append(f"--gpus-per-node={gpus}")
    if opts.cpus_per_task:
        lines.append(f"--cpus-per-task={opts.cpus_per_task}")
    if stage.kind == "distributed" and gpus:
        lines += ["--exclusive", "--mem=0"]
    for flag, value in (("partition", opts.partition), ("account", opts.account), ("qos", opts.qos),
                        ("time", opts.time)):
        if value is not None:
            lines.append(f"--{flag}={sbatch_value(value, '--' + flag)}")
    lines += [f"--output={log_pattern}", "--open-mode=append"]
    if stage.kind == "distributed":
        lines += [f"--signal=B:USR1@{opts.signal_lead}", "--requeue"]
    if opts.array is not None:
        lines.append(f"--array={_array_spec(opts.array)}")
    if stage.kind == "chain":
        lines.append("--kill-on-invalid-dep=yes")  # a failed step cancels the steps waiting on it
    return [f"#SBATCH {line}" for line in lines]


def _srun(opts: JobOptions, nodes: int, tasks_per_node: int, gpus: int) -> str:
    # --ntasks too: srun reads SLURM_NTASKS of the allocation from its environment, and a one-task
    # step inside a 32-task allocation would otherwise ignore --ntasks-per-node and start 32.
    words = ["srun", f"--nodes={nodes}", f"--ntasks={nodes * tasks_per_node}", f"--ntasks-per-node={tasks_per_node}"]
    if gpus:
        words.append(f"--gpus-per-node={gpus}")
    if opts.cpus_per_task:
        words.append(f"--cpus-per-task={opts.cpus_per_task}")
    words += [f"--mpi={opts.mpi}", "--kill-on-bad-exit=0", "--wait=60"]
    # `--wait`: once one task ends, the rest get 60 s (enough to finish a collective checkpoint)
    # before srun ends them, so a crashed rank cannot leave the others hanging in NCCL for hours.
    return " ".join(words) + ' \\\n    "${MIDM_CONTAINER_ARGS[@]}"'


def _body(opts: JobOptions, stage: Stage, ctx: StageContext, gpus: int, tasks_per_node: int,
          program: list[Word], widths: set[int]) -> str:
    if stage.kind == "distributed":
        if opts.launcher == "torchrun":
            nproc = gpus or opts.ntasks_per_node or 1
            runner = [Var("MIDM_PYTHON"), "-m", "torch.distributed.run", f"--nnodes={opts.nodes}",
                      f"--nproc-per-node={nproc}", "--rdzv-backend=c10d", ("--rdzv-endpoint=", Var("MASTER_ADDR"), ":",
                      Var("MASTER_PORT")), ("--rdzv-id=", Var("SLURM_JOB_ID")),
                      "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                      f"--shutdown-timeout={max(opts.signal_lead - 10, 10)}"]
            launch = _srun(opts, opts.nodes, 1, gpus) + " \\\n    " + quote_command(runner) + " \\\n    " + \
                quote_command(program[1:])
            world_desc = f"{opts.nodes} node(s) x torchrun --nproc-per-node={nproc}"
        else:
            launch = _srun(opts, opts.nodes, tasks_per_node, gpus) + " \\\n    " + quote_command(program)
            world_desc = f"{opts.nodes} node(s) x {tasks_per_node} task(s) = {opts.nodes * tasks_per_node} ranks"
        return _fill(_template("distributed.sh"), {
            "WORLD_DESC": world_desc, "SIGNAL_LEAD": str(opts.signal_lead), "MAX_REQUEUES": str(opts.max_requeues),
            "PRESTEP": _dus_prestep(opts, ctx, gpus), "LAUNCH": launch})
    launch = _srun(opts, 1, 1, gpus) + " \\\n    " + quote_command(program)
    if opts.array is None:
        return _fill(_template("single.sh"), {"LAUNCH": launch})
    shard_vars = "\n".join(f"MIDM_SHARD_0{w}=\"$(printf '%0{w}d' \"$MIDM_SHARD\")\"" for w in sorted(widths))
    return _fill(_template("array.sh"), {"LAUNCH": launch, "SHARD_VARS": shard_vars})


def _dus_prestep(opts: JobOptions, ctx: StageContext, gpus: int) -> str:
    if "dus_output" not in ctx.extra:
        return ""
    output = str(ctx.extra["dus_output"])
    dus = [Var("MIDM_PYTHON"), "-m", "midm", "dus", "--checkpoint", ctx.args["dus_from"], "--output", output,
           "--map", ctx.args.get("dus_map") or "solar:8", "--recipe", ctx.recipe_name, *ctx.sets(user_only=True)]
    done = quote_word(output + ".done")
    latest = quote_word(str(ctx.checkpoint_dir / "latest"))
    return (
        "\n# ---- depth-up scaling, once: skipped after it succeeded or once the run has checkpoints -----------\n"
        f"if [[ ! -e {done} && ! -e {latest} ]]; then\n"
        f"  {_srun(opts, 1, 1, gpus)} \\\n      {quote_command(dus)}\n"
        f"  touch {done}\n"
        "fi\n"
        'if [[ -n "$midm_signal" ]]; then midm_requeue; fi\n')
