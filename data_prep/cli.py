"""``midm data …`` — the Korean-centric data pipeline.

Kept import-light on purpose: ``midm data --help`` must not load datatrove, Kiwi or torch.
Each sub-command imports what it needs when it runs; none imports torch or Megatron-Core
(``tokenize`` writes Megatron's ``.bin/.idx`` format itself: ``data_prep/tokenization/indexed.py``;
``sft`` and ``prefs`` need only numpy and ``tokenizers``).
"""
from __future__ import annotations

import argparse
import json
import sys

from data_prep.accounting import STATS_FILE
from data_prep.docio.sources import FORMATS  # light: no datatrove, no torch
from data_prep.errors import DataError


def _add_format(p: argparse.ArgumentParser, hub: bool = True) -> None:
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="input format (default auto: .jsonl(.gz) / .warc(.gz) HTML responses -> main text, .wet(.gz) / "
                        ".parquet by extension, else by content)" + ("; hub: IN are Hugging Face dataset ids (online) or "
                                                            "local Hub-layout directories" if hub else ""))
    if hub:
        p.add_argument("--hub-config", help="with --format hub: dataset config (e.g. kor_Hang)")
        p.add_argument("--hub-split", help="with --format hub: split (default train)")


def _add_filter_io(p: argparse.ArgumentParser) -> None:
    p.usage = "%(prog)s IN [IN ...] OUT [options]"  # argparse would write "IN … OUT [IN … OUT ...]"
    p.add_argument("paths", nargs="+", metavar="IN … OUT",
                   help="inputs (.jsonl/.jsonl.gz with field `text`, other fields kept; .warc/.warc.gz; .parquet; "
                        "directories of them; with --format hub dataset ids), then OUT dir")
    _add_format(p)
    p.add_argument("--config", help="YAML deep-merged over data_prep/configs/filter.yaml; a key the default does "
                                    "not have is refused, naming the keys it does have")
    p.add_argument("--tasks", type=int, help="datatrove tasks = output shards (default: io.tasks in the config)")
    p.add_argument("--workers", type=int, default=-1, help="local parallel tasks (default: min(tasks, cores))")
    p.add_argument("--keep-rejects", action="store_true",
                   help="write every dropped record with its stage and reason to OUT/rejects/<stage>/ (unreadable "
                        "input records too: rejects/input/, with file, line and the raw text)")
    p.add_argument("--fresh", action="store_true", help="delete OUT first instead of resuming completed tasks")
    p.add_argument("--executor", choices=["local", "slurm"], default="local",
                   help="local: run here, --workers tasks at a time (default); slurm: submit every step as a "
                        "datatrove job array (on a submit host)")
    p.add_argument("--verbose", action="store_true",
                   help="also print datatrove's per-step statistics (always written to OUT/filter.log)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: one per phase on stderr when it is a terminal)")
    g = p.add_argument_group("slurm (with --executor slurm: submits one array job per step and returns, printing "
                             "their ids; OUT/midm_output.json says \"complete\": true when the last one is done)")
    g.add_argument("--wait", action="store_true",
                   help="stay until the jobs have ended, then print the stats line and exit as a local run does")
    g.add_argument("--partition", help="sbatch --partition (default: the cluster's default partition)")
    g.add_argument("--time", default="24:00:00", help="per array task, sbatch --time")
    g.add_argument("--cpus-per-task", type=int, default=1, help="CPUs of each array task (default 1)")
    g.add_argument("--mem-per-cpu-gb", type=int,
                   help="sbatch --mem-per-cpu in GB (default: the cluster's DefMemPerCPU)")
    g.add_argument("--max-array-size", type=int, default=1001, help="cluster's MaxArraySize (bigger runs are split)")
    g.add_argument("--qos", default="", help="sbatch --qos (omitted when empty)")
    g.add_argument("--venv", help="activate script sourced by each array task (default: this interpreter's venv)")
    g.add_argument("--sbatch-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra #SBATCH directive, repeatable (e.g. account=proj)")
    s = p.add_argument_group("one step of the run (what each job of `midm slurm submit data-filter` runs)")
    s.add_argument("--step", help="run only this step of the pipeline (e.g. 0_stream, 1_dedup_mh-sigs, summary)")
    s.add_argument("--rank", type=int, default=0, help="with --step: the rank (array task) to run (default 0)")


def exec_options(args):
    from data_prep.executors import ExecOptions, SlurmOptions

    extra = {}
    for item in args.sbatch_arg:
        if "=" not in item:
            raise DataError(f"--sbatch-arg {item!r} must be KEY=VALUE")
        k, v = item.split("=", 1)
        extra[k] = v
    return ExecOptions(kind=args.executor, workers=args.workers, slurm=SlurmOptions(
        partition=args.partition, time=args.time, cpus_per_task=args.cpus_per_task,
        mem_per_cpu_gb=args.mem_per_cpu_gb, max_array_size=args.max_array_size, qos=args.qos,
        venv_path=args.venv, sbatch_args=extra, wait=args.wait))


def _run_filter(args, stages: list[str] | None) -> int:
    from data_prep.config import load_config
    from data_prep.pipeline import run_filter
    from data_prep.pipeline_slurm import run_step

    if len(args.paths) < 2:
        raise DataError("give at least one input and the output directory (IN … OUT)")
    stage_list = stages if stages is not None else (
        [s.strip() for s in args.stages.split(",") if s.strip()] if getattr(args, "stages", None) else None)
    cfg = load_config(args.config, stage_list)
    if args.tasks:
        cfg["io"]["tasks"] = args.tasks
    for key in ("format", "hub_config", "hub_split"):
        if getattr(args, key, None):
            cfg["io"][key] = getattr(args, key)
    if (cfg["io"].get("hub_config") or getattr(args, "hub_split", None)) and cfg["io"].get("format") != "hub":
        raise DataError("--hub-config / --hub-split go with --format hub")
    if args.wait and args.executor != "slurm":
        raise DataError("--wait goes with --executor slurm (a local run always finishes before returning)")
    if args.step:
        if args.fresh or args.executor != "local":
            raise DataError("--step runs one rank of one step here: it takes neither --fresh nor --executor slurm")
        stats = run_step(args.paths[:-1], args.paths[-1], cfg, args.step, args.rank, args.keep_rejects)
        if stats is None:
            return 0
    elif args.executor == "slurm":
        stats = _submit_filter(args, cfg)
        if stats is None:
            return 0
    else:
        from data_prep.progress import bars_enabled

        stats = run_filter(args.paths[:-1], args.paths[-1], cfg, exec_options(args), args.keep_rejects, args.fresh,
                           verbose=args.verbose, progress=bars_enabled(args.no_progress))
    brief = {k: stats[k] for k in ("records_read", "kept", "dropped_total", "balanced")}
    brief["dropped"] = stats["dropped"]
    print(json.dumps(brief, ensure_ascii=False))
    if not stats["balanced"]:
        print("error: accounting does not balance: " + "; ".join(stats["problems"]), file=sys.stderr)
        return 1
    return 0


def _submit_filter(args, cfg: dict) -> dict | None:
    """``--executor slurm``: submit, print the job ids (stdout, one a line) and what each step got
    (stderr); with ``--wait`` (or nothing left to run) return the finished run's stats."""
    from data_prep.pipeline_slurm import slurm_stats, submit_filter
    from data_prep.slurm_exec import wait

    out = args.paths[-1]
    steps = submit_filter(args.paths[:-1], out, cfg, exec_options(args), args.keep_rejects, args.fresh)
    ids = [j for s in steps for j in s.job_ids]
    for s in steps:
        if s.job_ids:
            what = f"{len(s.ranks)} of {s.tasks} task(s)" if len(s.ranks) < s.tasks else f"{s.tasks} task(s)"
            print(f"[midm] step {s.step} ({what}): job {','.join(s.job_ids)}", file=sys.stderr)
        else:
            print(f"[midm] step {s.step}: all {s.tasks} task(s) already complete, not submitted", file=sys.stderr)
    for job_id in ids:
        print(job_id)
    sys.stdout.flush()  # the ids are there for scripts before a --wait begins
    if ids and not args.wait:
        print(f"[midm] submitted {len(ids)} job(s); {out}/midm_output.json says \"complete\": true and "
              f"{out}/{STATS_FILE} appears when the last one (job {ids[-1]}) is done. "
              f"Follow: squeue -j {','.join(ids)}. "
              "A failed or cancelled task cancels the jobs after it: run this command again to resubmit only "
              "what did not finish.", file=sys.stderr)
        return None
    if ids:
        print(f"[midm] waiting for job(s) {','.join(ids)} …", file=sys.stderr)
        wait(steps)
    return slurm_stats(out, steps)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="midm data", description="Korean-centric data pipeline (datatrove-based).")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("filter",
                       help="run the 8-stage filter (url,normalize,langid,heuristics,dedup,toxicity,pii,quality)",
                       description="Filter documents (JSON Lines, WARC HTML responses, Parquet, Hub datasets) "
                                   "through the 8 stages (or --stages) on datatrove and write the kept ones to OUT/*.jsonl.gz, with OUT/stats.json accounting for every "
                                   "record (read = kept + Σ dropped by stage and reason). Resumes completed tasks.")
    _add_filter_io(p)
    p.add_argument("--stages", help="comma-separated subset, e.g. normalize,langid,pii (default: all in the config)")

    p = sub.add_parser("dedup", help="stage 5 alone: exact + MinHash near-duplicate removal",
                       description="`midm data filter --stages dedup`: exact-hash then MinHash near-duplicate "
                                   "removal (settings: the dedup section of the filter config).")
    _add_filter_io(p)
    p = sub.add_parser("pii", help="stage 7 alone: mask PII into Mi:dm's typed placeholder tokens",
                       description="`midm data filter --stages pii`: mask phone numbers, e-mails, resident "
                                   "registration and card numbers, … into Mi:dm's typed placeholder tokens.")
    _add_filter_io(p)

    p = sub.add_parser("train-classifier", help="train the toxicity or quality fastText model from labelled data",
                       description="Train the fastText classifier the toxicity or quality stage loads, from the "
                                   "labelled sets under --data, and report held-out precision/recall/F1.")
    p.add_argument("kind", choices=["toxicity", "quality"], help="which classifier to train")
    p.add_argument("--data", required=True, help="../shared/data (the labelled sets and corpora are read from it)")
    p.add_argument("--out", help="model path (default: data_prep/models/<kind>.ftz)")
    p.add_argument("--report", help="also write held-out precision/recall/F1 JSON here")

    p = sub.add_parser("build-lexicons", help="(re)build data_prep/configs/lexicons from ../shared/data/lexicons",
                       description="Rebuild the toxicity/spam word lists the filter ships "
                                   "(data_prep/configs/lexicons) from their sources under --data.")
    p.add_argument("--data", required=True, help="../shared/data")
    p.add_argument("--out", help="default: data_prep/configs/lexicons")

    p = sub.add_parser("synth", help="textbook rewrites / Q&A / translation through an OpenAI-compatible endpoint",
                       description="Generate synthetic documents from IN through an OpenAI-compatible endpoint "
                                   "(vLLM, SGLang, OpenAI); resumable, responses cached, failures counted.")
    from data_prep.synth.args import add_synth_args
    add_synth_args(p)

    p = sub.add_parser("mix", help="curriculum phases -> Megatron blend lists (JSON per phase)",
                       description="Turn a curriculum (phases of weighted tokenized sources) into one blend JSON "
                                   "per phase, for `midm train --set data.blend_file=…`.")
    p.add_argument("config", help="YAML curriculum (see data_prep/configs/mix_example.yaml)")
    p.add_argument("out_dir", metavar="OUT", help="directory for the per-phase blend JSON files")

    p = sub.add_parser("tokenize", help="JSONL(.gz) / WARC / Parquet -> Megatron .bin/.idx (one document per sequence, "
                                        "EOD appended)",
                       description="Tokenize documents (JSON Lines, WARC HTML responses, Parquet, Hub datasets) into one Megatron "
                                   "indexed dataset OUT_PREFIX.bin/.idx (+ OUT_PREFIX.summary.json); inputs are read "
                                   "in the order given. Resumes an interrupted run.")
    p.usage = "%(prog)s IN [IN ...] OUT_PREFIX --tokenizer DIR [options]"
    p.add_argument("paths", nargs="+", metavar="IN … OUT_PREFIX",
                   help=".jsonl/.jsonl.gz, .warc(.gz) or .parquet files or directories of them (a `midm data filter` "
                        "OUT means its kept shards), then the output prefix (writes OUT_PREFIX.bin/.idx)")
    _add_format(p)
    p.add_argument("--tokenizer", required=True,
                   help="tokenizer DIR from `midm tokenizer train` (tokenizer.json inside)")
    p.add_argument("--workers", type=int, default=1, help="tokenizing processes (default 1)")
    p.add_argument("--text-key", default="text", help="JSON field holding the document text (default text)")
    p.add_argument("--shard-mb", type=float, default=256.0,
                   help="at most this many input MB per work unit / output shard; smaller when the input would "
                        "otherwise leave workers idle (plain .jsonl is split at line ends; each .gz is one unit)")
    p.add_argument("--batch-docs", type=int, default=1000,
                   help="documents a worker encodes and writes at a time (default 1000; bounds memory)")
    p.add_argument("--keep-shards", action="store_true",
                   help="keep OUT_PREFIX.shards/ after merging (by default removed once the merge succeeded)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: one on stderr)")

    p = sub.add_parser("sft", help="chat JSONL -> packed SFT shards (chat template, assistant-only loss mask) + stats",
                       description="Render chat conversations with the tokenizer's chat template, pack them into "
                                   "sequences with an assistant-only loss mask, and write the shards `midm sft` "
                                   "reads (index.json, stats).")
    from data_prep.sft.args import add_sft_args
    add_sft_args(p)

    p = sub.add_parser("prefs", help="preference pairs JSONL -> chat-rendered chosen/rejected shards for `midm dpo`",
                       description="Render preference pairs (prompt, chosen, rejected) with the chat template and "
                                   "write the chosen/rejected shards `midm dpo --data` reads.")
    from data_prep.prefs.args import add_prefs_args
    add_prefs_args(p)
    return ap


def main(argv: list[str] | None = None) -> int:
    """``midm data …``; bad input (:class:`midm.errors.MidmError`) prints one line and returns 2.

    (The error is caught here as well as in ``midm/cli.py`` so that callers of this function —
    tests, the demo, scripts — get the same exit status as the command line.)
    """
    from midm.errors import MidmError

    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except MidmError as err:
        print(f"midm data {args.cmd}: error: {err}", file=sys.stderr)
        return err.exit_code


def _dispatch(args) -> int:
    if args.cmd == "filter":
        return _run_filter(args, None)
    if args.cmd == "dedup":
        return _run_filter(args, ["dedup"])
    if args.cmd == "pii":
        return _run_filter(args, ["pii"])
    if args.cmd == "train-classifier":
        from data_prep.classifiers.train import main_train

        return main_train(args)
    if args.cmd == "build-lexicons":
        from data_prep.classifiers.lexicons import build_lexicons

        return build_lexicons(args.data, args.out)
    if args.cmd == "synth":
        from data_prep.synth.run import main_synth

        return main_synth(args)
    if args.cmd == "mix":
        from data_prep.mix.curriculum import main_mix

        return main_mix(args.config, args.out_dir)
    if args.cmd == "prefs":
        from data_prep.prefs.build import main_prefs

        return main_prefs(args)
    if args.cmd == "tokenize":
        from data_prep.tokenization.megatron import main_tokenize

        if len(args.paths) < 2:
            raise DataError("give at least one input and the output prefix (IN … OUT_PREFIX)")
        args.inputs, args.out_prefix = args.paths[:-1], args.paths[-1]
        return main_tokenize(args)
    if args.cmd == "sft":
        from data_prep.sft.build import main_sft

        return main_sft(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
