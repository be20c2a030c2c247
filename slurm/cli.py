"""``midm slurm render|submit STAGE --recipe NAME --nodes N …`` — sbatch scripts from recipes.

``render`` prints the script; ``submit`` hands it to ``sbatch``, prints the job id and keeps the
script, the resolved recipe JSON and a submission record in ``<run dir>/slurm/`` beside the job's
log. ``submit --dry-run`` checks everything and prints the script without submitting. ``submit``
(dry run or not) also runs the trainer's data checks for the training stages — the blend's files,
vocabulary and split sizes for pretrain/cpt/distill, the ``midm data sft`` / ``midm data prefs``
output (``--data`` or ``sft.dataset`` / ``dpo.dataset``) for sft/dpo — so a job that would fail on
its data is never queued.

Stages: pretrain, cpt (continued pretraining after depth-up scaling), distill, sft, dpo (multi-node, one rank
per GPU or torchrun per node, checkpoint + requeue on SIGUSR1/SIGTERM); prune, convert, eval (one
task); data-tokenize (CPU, ``--array N`` runs N shards with ``{shard}`` in paths); data-filter (one
dependent job per pipeline step, each ``--array N`` tasks over all the input).
Importing this module pulls in neither torch nor Megatron-Core.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recipes.args import add_recipe_args
from slurm.quoting import RenderError
from slurm.render import LAUNCHERS, MPI_CHOICES, RECIPE_OPTIONAL, JobOptions, render
from slurm.stages import STAGES, Stage, dest


def _add_stage_parser(sub: argparse._SubParsersAction, stage: Stage, action: str) -> None:
    p = sub.add_parser(stage.name, help=stage.summary, description=f"midm slurm {action} {stage.name}: "
                       f"{stage.summary}.")
    if stage.kind in RECIPE_OPTIONAL:
        add_recipe_args(p, required=False, recipe_help="recipe whose logging.dir/run_name place the job's logs "
                                                        "(optional: default runs/data/slurm)")
    else:
        add_recipe_args(p)
    res = p.add_argument_group("resources")
    res.add_argument("--nodes", type=int, default=1, help="number of nodes (default 1)")
    res.add_argument("--gpus-per-node", type=int, default=None,
                     help=f"GPUs per node, 0 = CPU only (default: {stage.default_gpus_per_node})")
    res.add_argument("--ntasks-per-node", type=int, default=None,
                     help="tasks per node (default: one per GPU; set it for CPU runs)")
    res.add_argument("--cpus-per-task", type=int, default=None, help="CPUs per task (passed to srun as well)")
    res.add_argument("--partition", default=None, help="#SBATCH --partition (default: the cluster's default)")
    res.add_argument("--account", default=None, help="#SBATCH --account to charge (default: none)")
    res.add_argument("--qos", default=None, help="#SBATCH --qos (default: none)")
    res.add_argument("--time", default=None, help="time limit, e.g. 4:00:00 or 2-00:00:00")
    env = p.add_argument_group("environment")
    env.add_argument("--container", default=None, metavar="IMAGE",
                     help="pyxis/enroot image for srun --container-image (default: the env file's, or none)")
    env.add_argument("--container-mounts", default=None, metavar="SRC:DST[,…]",
                     help="srun --container-mounts (default: the env file's)")
    env.add_argument("--mpi", default="pmi2", choices=MPI_CHOICES,
                     help="srun --mpi plugin (default pmi2: it works under pyxis/enroot where pmix often fails)")
    env.add_argument("--env-file", default=None, help="shared environment file to source (default: the "
                     "package's slurm/templates/env.sh)")
    env.add_argument("--python", default=None, help="interpreter that runs `-m midm` in the job (default: this "
                     "one; `python` inside a container)")
    env.add_argument("--workdir", default=None, help="directory the job runs in; relative paths resolve against "
                     "it (default: the current directory)")
    if stage.kind == "distributed":
        dist = p.add_argument_group("distributed training")
        dist.add_argument("--launcher", default="srun", choices=LAUNCHERS,
                          help="srun: one task per GPU (default); torchrun: one torchrun per node")
        dist.add_argument("--signal-lead", type=int, default=120,
                          help="seconds before the time limit at which the job checkpoints and requeues (default 120)")
        dist.add_argument("--max-requeues", type=int, default=20,
                          help="stop requeueing after this many restarts (default 20)")
    if stage.kind == "data":
        p.add_argument("--array", default=None, metavar="N|RANGE",
                       help="run as a job array over N shards (or a Slurm range such as 0-63%%8)")
    if stage.kind == "chain":
        p.add_argument("--array", default=None, metavar="N",
                       help="tasks per pipeline step (default: io.tasks of the filter config); every step is "
                            "an array of N tasks over all the input, waiting for the step before it")
    if stage.args:
        group = p.add_argument_group(f"{stage.name} arguments")
        for arg in stage.args:
            group.add_argument(arg.flag, dest=f"stage_{dest(arg.flag)}", default=None, required=arg.required,
                               metavar=None if arg.choices else dest(arg.flag).upper(), choices=arg.choices,
                               help=arg.help)
    if action == "submit":
        p.add_argument("--dry-run", action="store_true", help="check and print the script; submit nothing")
        p.add_argument("--sbatch", default="sbatch", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midm slurm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    for action, help_text in (("render", "print the sbatch script"), ("submit", "submit the script with sbatch")):
        p = actions.add_parser(action, help=help_text, description=f"midm slurm {action}: {help_text}.")
        stages = p.add_subparsers(dest="stage", required=True, metavar="STAGE")
        for stage in STAGES.values():
            _add_stage_parser(stages, stage, action)
    return parser


def options_from_args(args: argparse.Namespace) -> JobOptions:
    stage_args = {key[len("stage_"):]: value for key, value in vars(args).items()
                  if key.startswith("stage_") and value is not None}
    return JobOptions(
        stage=args.stage, recipe=args.recipe, overrides=args.overrides, nodes=args.nodes,
        gpus_per_node=args.gpus_per_node, ntasks_per_node=args.ntasks_per_node, cpus_per_task=args.cpus_per_task,
        partition=args.partition, account=args.account, qos=args.qos, time=args.time, container=args.container,
        container_mounts=args.container_mounts, mpi=args.mpi, launcher=getattr(args, "launcher", "srun"),
        array=getattr(args, "array", None), env_file=args.env_file, python=args.python,
        signal_lead=getattr(args, "signal_lead", 120), max_requeues=getattr(args, "max_requeues", 20),
        workdir=args.workdir, stage_args=stage_args)


def _check_stage_data(stage: str, recipe_dict: dict, stage_args: dict, workdir: str | None) -> str | None:
    """The trainer's own data checks (torch-free) for a training stage, run on the login node; the error or None.

    Pretraining stages (pretrain, cpt, distill) read ``data.blend``/``data.blend_file``; ``sft`` reads its
    ``--data`` or ``sft.dataset`` (a ``midm data sft`` output) and ``dpo`` its ``--data`` or ``dpo.dataset``
    (a ``midm data prefs`` output), never the blend. A job whose data would fail (missing prefix or
    dataset, wrong vocabulary, a split left empty) fails here, in a second, instead of after the nodes
    are granted. Relative paths resolve against the job's working directory, as they will in the job.
    """
    from megatron_ext import tokenizer_check
    from megatron_ext.data_check import check_data
    from midm.errors import MidmError
    from recipes import recipe_from_dict

    base_dir = Path(workdir or Path.cwd()).resolve()
    if stage in ("sft", "dpo"):
        from megatron_ext.posttrain_check import check_prefs_dataset, check_sft_dataset

        section = recipe_dict.get(stage)
        if section is None:
            return (f"recipe {recipe_dict.get('name')!r} has no {stage} section; use a *_{stage} recipe "
                    "(midm recipe list)")
        dataset = stage_args.get("data") or section.get("dataset")
        if not dataset:
            tool = "midm data sft" if stage == "sft" else "midm data prefs"
            return f"{stage} needs a dataset (the output of `{tool}`): pass --data DIR or --set {stage}.dataset=DIR"
        path = Path(dataset).expanduser()
        path = path if path.is_absolute() else base_dir / path
        check = check_sft_dataset if stage == "sft" else check_prefs_dataset
        try:
            check(path)
            _check_tokenizers(stage, recipe_dict, stage_args, base_dir, tokenizer_check.of_dataset(path), str(path))
        except MidmError as err:
            return str(err)
        return None
    try:
        prefixes = check_data(recipe_from_dict(recipe_dict), base_dir=base_dir)
        _check_tokenizers(stage, recipe_dict, stage_args, base_dir, tokenizer_check.of_blend(prefixes),
                          " ".join(prefixes))
    except MidmError as err:
        return str(err)
    return None


def _check_tokenizers(stage: str, recipe_dict: dict, stage_args: dict, base_dir: Path, data, name: str) -> None:
    """The trainers' tokenizer checks (``megatron_ext/tokenizer_check.py``) of the job's data (``data``: the
    record read, ``name`` for the message) against the checkpoints it starts from: the initial one (``--base``,
    ``--student``, ``checkpoint.load``; for dpo the ``--reference`` by default), dpo's reference and distill's
    teacher; and the reference / teacher against the initial checkpoint directly. A checkpoint that an earlier
    job of a chain has not written yet records nothing and passes.

    Raises:
        TokenizerMismatchError: as the job would, after its nodes were granted.
    """
    from megatron_ext import tokenizer_check

    checkpoint = recipe_dict.get("checkpoint") or {}
    initial = stage_args.get("base") or stage_args.get("student") or checkpoint.get("load") or (
        stage_args.get("reference") if stage == "dpo" else None)
    roles = [("base" if stage == "sft" else "initial", initial), ("reference", stage_args.get("reference")),
             ("teacher", stage_args.get("teacher"))]
    allow = bool(checkpoint.get("allow_tokenizer_change"))
    paths = {role: base_dir / Path(str(p)).expanduser() for role, p in roles if p}  # an absolute path stays
    for role, path in paths.items():
        tokenizer_check.check_record_against_checkpoint(data, name, path, role=role, allow=allow)
    for role in ("reference", "teacher"):  # their logits meet the initial model's id by id, whatever the data
        if role in paths:
            tokenizer_check.check_checkpoints_agree(paths[role], role, paths.get(roles[0][0]), roles[0][0],
                                                    allow=allow)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import RecipeError

    opts = options_from_args(args)
    try:
        rendered = render(opts)
    except (RenderError, RecipeError) as err:
        print(f"midm slurm: error: {err}", file=sys.stderr)
        return 2
    if args.action == "submit" and STAGES[args.stage].kind == "distributed":
        error = _check_stage_data(args.stage, rendered.recipe_dict, opts.stage_args, args.workdir)
        if error:
            print(f"midm slurm: error: {error}", file=sys.stderr)
            return 2
    if args.action == "render" or args.dry_run:
        sys.stdout.write(rendered.script)
        if args.action == "submit":
            print(f"midm slurm: dry run: would pipe this script to `{args.sbatch} --parsable`; logs would go to "
                  f"{rendered.log_path('<job id>')}. Nothing was submitted or written.", file=sys.stderr)
        return 0
    from slurm.submit import SubmitError, submit

    try:
        sub = submit(rendered, args.stage, sbatch=args.sbatch)
    except SubmitError as err:
        print(f"midm slurm: error: {err}", file=sys.stderr)
        return 1
    print("\n".join(sub.job_ids))
    if len(sub.job_ids) > 1:
        print(f"midm slurm: submitted {len(sub.job_ids)} dependent jobs ({', '.join(j.step for j in rendered.jobs)}); "
              f"the last, {rendered.job_name} = job {sub.job_id}, writes the stats; logs in {rendered.log_dir}, "
              f"recipe {sub.recipe_path}", file=sys.stderr)
    else:
        print(f"midm slurm: submitted {rendered.job_name} as job {sub.job_id}; log {sub.log}, "
              f"recipe {sub.recipe_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
