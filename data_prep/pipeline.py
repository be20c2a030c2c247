"""Build the filter run as a chain of datatrove pipelines ("phases") and execute it.

Streaming stages run back to back inside one phase; two stages need every task's output
before they can decide and therefore start a new phase: dedup (signatures → buckets →
clusters → filter, datatrove's four MinHash steps plus its exact-hash steps) and the quality
top-fraction cut. Between phases, documents live in ``OUT/_work/<phase>/{rank}.jsonl.gz``.
The steps are listed, without datatrove, by :func:`data_prep.plan.filter_steps`; they run here
one after the other, or as datatrove Slurm arrays (``--executor slurm``) and one rank of one step per
call (``--step NAME --rank R``: what ``midm slurm submit data-filter`` runs in each array task), both in
:mod:`data_prep.pipeline_slurm`.

What ``OUT`` means to the next stage is its kept shards: ``OUT/midm_output.json`` says the run is
incomplete from its start until the summary step lists the kept files
(:mod:`data_prep.docio.inputs`), so ``rejects/`` and ``_work/`` are never read as documents.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from data_prep.accounting import STATS_FILE, summarize, write_counts
from data_prep.docio.inputs import write_manifest
from data_prep.docio.records import JSONL_FORMAT
from data_prep.errors import DataError
from data_prep.executors import ExecOptions, make_executor
from data_prep.plan import counted_stage_names, filter_steps, plan_phases

STREAMING = {"url", "normalize", "langid", "heuristics", "toxicity", "pii"}
__all__ = ["run_filter", "build_executors", "plan_phases", "counted_stage_names", "filter_steps"]


class OutputCounter(PipelineStep):
    """Counts what reaches the final writer (stage ``output``): the run's kept documents."""

    name = "midm:output"
    type = "🇰🇷 - MIDM"

    def __init__(self, counts_dir: str):
        super().__init__()
        self.counts_dir = counts_dir

    def run(self, data, rank: int = 0, world_size: int = 1):
        n = 0
        for doc in data:
            n += 1
            yield doc
        write_counts(self.counts_dir, "output", rank, {"in": n, "out": n})


class Summarize(PipelineStep):
    """Final (tasks=1) step: merge all counts into ``OUT/stats.json`` (a dependent job under Slurm)."""

    name = "midm:summarize"
    type = "🇰🇷 - MIDM"

    def __init__(self, counts_dir: str, stages: list[str], stats_path: str, extra: dict):
        super().__init__()
        self.counts_dir, self.stages, self.stats_path, self.extra = counts_dir, stages, stats_path, extra

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stats = summarize(self.counts_dir, self.stages + ["output"], kept_stage="output")
        stats.update(self.extra)
        out = Path(self.stats_path).parent
        tmp = out / ".stats.json.tmp"
        tmp.write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.stats_path)
        # the final step's shards only: other *.jsonl.gz a user kept in OUT are not this run's documents
        kept = [name for name in (f"{rank:05d}.jsonl.gz" for rank in range(int(self.extra.get("tasks", 1))))
                if (out / name).is_file()]
        write_manifest(out, "filter", kept, documents=stats["kept"], balanced=stats["balanced"],
                       stats="stats.json", rejects="rejects/", work="_work/")
        return iter(())


@dataclass
class RunPaths:
    out: Path

    @property
    def work(self) -> Path:
        return self.out / "_work"

    @property
    def counts(self) -> str:
        return str(self.work / "counts")

    @property
    def rejects(self) -> str:
        return str(self.out / "rejects")


def _stage_steps(names: list[str], cfg: dict, paths: RunPaths, keep_rejects: bool) -> list[PipelineStep]:
    from data_prep.filters.heuristics import HeuristicsStage
    from data_prep.filters.langid import LangIdStage
    from data_prep.filters.normalize import NormalizeStage
    from data_prep.filters.quality import QualityScoreStage
    from data_prep.filters.toxicity import ToxicityStage
    from data_prep.filters.url_blocklist import UrlBlocklistStage
    from data_prep.pii.stage import PiiStage

    classes = {"url": UrlBlocklistStage, "normalize": NormalizeStage, "langid": LangIdStage,
               "heuristics": HeuristicsStage, "toxicity": ToxicityStage, "pii": PiiStage}
    rejects = paths.rejects if keep_rejects else None
    steps: list[PipelineStep] = []
    for name in names:
        if name == "quality":
            steps.append(QualityScoreStage(paths.counts, cfg["quality"], str(paths.work / "quality_hist"), rejects))
        else:
            steps.append(classes[name](paths.counts, cfg.get(name, {}), rejects))
    return steps


def run_filter(inputs: list[str], out: str, cfg: dict, opts: ExecOptions, keep_rejects: bool = False,
               fresh: bool = False, verbose: bool = False, progress: bool = True) -> dict | None:
    """Run the filter and return its stats; under Slurm submit it and return None, or, with
    ``opts.slurm.wait``, wait for its jobs and return the stats the summary job wrote.

    Local runs draw one progress bar per step (``progress``: when stderr is a terminal, see
    :func:`data_prep.progress.bars_enabled`) and write datatrove's log to ``OUT/filter.log``, printing
    it in full only when ``verbose`` (warnings and errors always).
    Raises :class:`DataError` for missing inputs, inputs that are not of their format, an OUT that
    cannot be a directory (before anything is made or deleted), and a run in which not one input
    record was readable (the stats are written first). A start that fails removes the OUT it created.
    Under Slurm, see :func:`submit_filter` and :func:`slurm_stats`.
    """
    from data_prep.docio.outputs import check_output_dir, removed_if_start_fails, write_run_record

    if opts.kind == "slurm":
        from data_prep.pipeline_slurm import slurm_stats, submit_filter

        steps = submit_filter(inputs, out, cfg, opts, keep_rejects, fresh)
        if opts.slurm.wait or not any(s.job_ids for s in steps):
            from data_prep.slurm_exec import wait

            wait(steps)
            return slurm_stats(out, steps)
        return None
    out_dir = check_output_dir(out, "OUT")
    sources = _checked_sources(inputs, cfg, check_format=True, exclude=out_dir)  # bad input: nothing made or deleted yet
    record = _same_run(inputs, sources, cfg, keep_rejects, out, check=not fresh)
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    with removed_if_start_fails(out_dir):
        executors, summary_step = build_executors(inputs, out, cfg, opts, keep_rejects, check_format=False)
        write_run_record(RunPaths(out_dir).work, record)
    _run_local(executors, out_dir, verbose, progress)
    summary_step.run()
    return _checked_stats(summary_step.stats_path)


def _run_local(executors: list, out_dir: Path, verbose: bool, progress: bool) -> None:
    """Run the steps one after the other, a progress bar each, datatrove's log into OUT/filter.log."""
    from data_prep.docio.reader import RankFileReader, RobustJsonlReader
    from data_prep.progress import LOG_FILE, StepProgress, datatrove_log_to_file

    with datatrove_log_to_file(out_dir / LOG_FILE, verbose) as terminal:
        for ex in executors:
            ex.worker_log = (str(out_dir / LOG_FILE), verbose)  # worker processes log the same way
            step_dir = Path(ex.logging_dir.path)
            folder = out_dir / "_work" / "progress" / step_dir.name
            reader = ex.pipeline[0]
            total: int | None = None
            if isinstance(reader, (RobustJsonlReader, RankFileReader)):
                reader.progress_dir = str(folder)
                total = _input_bytes(reader)
            with StepProgress(step_dir.name, folder, total_bytes=total, tasks=ex.world_size,
                              completions=step_dir / "completions", stream=terminal, enabled=progress):
                ex.run()


def _input_bytes(reader) -> int:
    """Bytes a step's reader will consume: the listed input files, or the previous step's rank files."""
    from data_prep.docio.reader import RobustJsonlReader

    if isinstance(reader, RobustJsonlReader):
        listed = Path(reader.paths_file).read_text(encoding="utf-8").split("\n") if reader.paths_file else []
        return sum(os.path.getsize("/" + p) for p in listed if p)
    root = Path(reader.data_folder.path)
    return sum(f.stat().st_size for f in root.glob("*.jsonl.gz")) if root.is_dir() else 0


def _same_run(inputs: list[str], sources: list, cfg: dict, keep_rejects: bool, out: str, check: bool) -> dict:
    """The run's record (:func:`data_prep.docio.outputs.run_record`); with ``check``, raises
    :class:`DataError` when ``OUT`` holds a run started with other inputs or settings (it would be
    resumed: its finished tasks kept, its counts reported as this run's)."""
    from data_prep.docio.outputs import check_same_run, run_record

    record = run_record(inputs, sources, cfg, keep_rejects)
    if check:
        check_same_run(RunPaths(Path(out).resolve()).work, record, out)
    return record


def _checked_stats(stats_path: str) -> dict:
    stats = json.loads(Path(stats_path).read_text(encoding="utf-8"))
    read = stats["stages"]["input"]
    if read["in"] and not read["out"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in read["dropped"].items())
        raise DataError(f"not one of the {read['in']} input records was readable ({reasons}); midm data filter "
                        f"reads {JSONL_FORMAT.format(key='text')}, WARC HTML responses, Parquet or a Hub dataset "
                        f"(--format). Details: {stats_path}")
    return stats


def build_executors(inputs: list[str], out: str, cfg: dict, opts: ExecOptions, keep_rejects: bool = False,
                    fresh: bool = False, check_format: bool = False,
                    start: bool = True) -> tuple[list, "Summarize"]:
    """The run's executors in dependency order, one per step of :func:`data_prep.plan.filter_steps`
    but the summary (under Slurm the summary is an executor too). ``check_format`` sniffs every
    input file first; ``start`` marks ``OUT`` as an output in progress."""
    from data_prep.dedup.steps import MinhashSignature, WhitespaceWordTokenizer, exact_config, minhash_config
    from data_prep.docio.reader import RankFileReader, RobustJsonlReader
    from data_prep.docio.writer import OUTPUT_LEVEL, WORK_LEVEL, FlatJsonlWriter
    from data_prep.filters.base import CountedStep
    from data_prep.filters.quality import QualityCutStage

    paths = RunPaths(Path(out).resolve())
    sources = _checked_sources(inputs, cfg, check_format, exclude=paths.out)
    if fresh and paths.out.exists():
        shutil.rmtree(paths.out)
    paths.work.mkdir(parents=True, exist_ok=True)
    io = cfg["io"]
    fmt = io.get("format") or "auto"
    hub = fmt == "hub"
    if hub:
        folder, paths_file, formats = "/", None, {}
    else:
        folder, paths_file, formats = _input_listing(sources, paths.work)
    if start:
        write_manifest(paths.out, "filter", None)
    tasks = int(cfg["io"].get("tasks", 1))
    phases = plan_phases(cfg)
    executors = []
    prev_dir: str | None = None
    logs = paths.work / "logs"

    def sink(is_last: bool, phase_name: str) -> tuple[list[PipelineStep], str]:
        target = str(paths.out) if is_last else str(paths.work / phase_name)
        steps: list[PipelineStep] = [OutputCounter(paths.counts)] if is_last else []
        return steps + [FlatJsonlWriter(target, compresslevel=OUTPUT_LEVEL if is_last else WORK_LEVEL)], target

    for i, (kind, stage_names) in enumerate(phases):
        last = i == len(phases) - 1
        name = f"{i}_{kind}"
        if prev_dir is not None:
            reader = RankFileReader(prev_dir)
        elif hub:
            from data_prep.docio.reader import HubReader

            reader = HubReader(list(inputs), paths.counts, io.get("hub_config"), io.get("hub_split") or "train")
            reader.rejects_dir = paths.rejects if keep_rejects else None
        else:
            reader = RobustJsonlReader(folder, paths.counts, int(io.get("max_doc_bytes", 2_000_000)),
                                       glob_pattern=None if paths_file else "**/*.jsonl*", paths_file=paths_file,
                                       formats=formats)
            reader.rejects_dir = paths.rejects if keep_rejects else None
        pipeline: list[PipelineStep] = [reader]
        if kind == "dedup":
            # Dedup filters address documents by their index in the rank's stream, so each one must
            # see exactly the stream its signatures were computed on: exact dedup runs (and writes)
            # first, MinHash then works on the exact-deduplicated documents.
            d = cfg["dedup"]
            mh_cfg, ex_cfg = minhash_config(d), exact_config()
            from datatrove.pipeline.dedup import (ExactDedupFilter, ExactDedupSignature, ExactFindDedups,
                                                  MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter)

            from data_prep.docio.writer import RejectWriter
            dd = paths.work / "dedup"
            rej = (lambda reason: RejectWriter(paths.rejects, "dedup", reason)) if keep_rejects else (lambda r: None)

            def chained(pipeline_steps, exec_name, n_tasks):
                ex = make_executor(pipeline_steps, tasks=n_tasks, logging_dir=str(logs / f"{name}_{exec_name}"),
                                   opts=opts, name=f"{name}_{exec_name}",
                                   depends=executors[-1] if executors else None)
                executors.append(ex)

            use_exact, use_mh = d.get("exact", True), d.get("minhash", True)
            if use_exact:
                chained([RankFileReader(prev_dir), ExactDedupSignature(str(dd / "ex_sigs"), config=ex_cfg)],
                        "ex-sigs", tasks)
                chained([ExactFindDedups(str(dd / "ex_sigs"), str(dd / "ex_dups"), config=ex_cfg)], "ex-find", 1)
                ex_filter = CountedStep(ExactDedupFilter(str(dd / "ex_dups"), config=ex_cfg,
                                                         exclusion_writer=rej("exact_duplicate")),
                                        paths.counts, "dedup.exact", "exact_duplicate")
                if use_mh:
                    chained([RankFileReader(prev_dir), ex_filter,
                             FlatJsonlWriter(str(paths.work / "exact"), compresslevel=WORK_LEVEL)], "ex-filter", tasks)
                    prev_dir = str(paths.work / "exact")
                    pipeline = [RankFileReader(prev_dir)]
                else:
                    pipeline.append(ex_filter)
            if use_mh:
                chained([RankFileReader(prev_dir), MinhashSignature(
                    str(dd / "mh_sigs"), config=mh_cfg, language=WhitespaceWordTokenizer())], "mh-sigs", tasks)
                chained([MinhashDedupBuckets(str(dd / "mh_sigs"), str(dd / "mh_buckets"), config=mh_cfg)],
                        "mh-buckets", mh_cfg.num_buckets)
                chained([MinhashDedupCluster(str(dd / "mh_buckets"), str(dd / "mh_remove"), config=mh_cfg)],
                        "mh-cluster", 1)
                pipeline.append(CountedStep(MinhashDedupFilter(str(dd / "mh_remove"),
                                                               exclusion_writer=rej("near_duplicate")),
                                            paths.counts, "dedup.minhash", "near_duplicate"))
        if kind == "cut":
            pipeline.append(QualityCutStage(paths.counts, cfg["quality"], str(paths.work / "quality_hist"),
                                            paths.rejects if keep_rejects else None))
        pipeline += _stage_steps(stage_names, cfg, paths, keep_rejects)
        tail, target = sink(last, name)
        pipeline += tail
        executors.append(make_executor(pipeline, tasks=tasks, logging_dir=str(logs / name), opts=opts, name=name,
                                       depends=executors[-1] if executors else None))
        prev_dir = target

    stages = counted_stage_names(cfg)
    extra = {"inputs": inputs, "input_format": fmt, "output": str(paths.out), "stages_enabled": cfg["stages"],
             "executor": opts.kind, "tasks": tasks}
    summary_step = Summarize(paths.counts, stages, str(paths.out / STATS_FILE), extra)
    if opts.kind == "slurm":
        executors.append(make_executor([summary_step], tasks=1, logging_dir=str(logs / "summary"), opts=opts,
                                       name="summary", depends=executors[-1]))
    return executors, summary_step


def _checked_sources(inputs: list[str], cfg: dict, check_format: bool = False, exclude: Path | None = None) -> list:
    """Every input file/directory expanded with its format (a stage output: its kept files;
    ``exclude``, the run's own OUT when it lies inside an input directory, never), each checked
    against its format when ``check_format`` (:mod:`data_prep.docio.sources`). With ``--format hub``
    the inputs are dataset ids: checked, and returned as an empty list (:class:`HubReader` reads them).

    Raises :class:`DataError` naming the format expected for a file that is not of its format, and
    for inputs that name no file."""
    from data_prep.docio.sources import Source, check_source, expand_sources

    io = cfg["io"]
    fmt = io.get("format") or "auto"
    if fmt == "hub":
        if check_format:
            for source in inputs:
                check_source(Source(source, "hub"), hub_config=io.get("hub_config"),
                             hub_split=io.get("hub_split") or "train")
        return []
    sources = expand_sources(inputs, fmt, exclude=exclude)
    if not sources and not any(Path(i).is_dir() for i in inputs):
        raise DataError(f"no input files found in {inputs}")
    if check_format:
        for source in sources:
            check_source(source)
    return sources


def _input_listing(sources: list, work: Path) -> tuple[str, str, dict[str, str]]:
    """One folder + a paths file listing the ``sources``' files (datatrove reads them from ``/``), and
    the format of every file that is not JSON Lines."""
    names = [str(Path(s.path).resolve()).lstrip("/") for s in sources]
    paths_file = work / "inputs.txt"
    tmp = work / f".inputs.txt.{os.getpid()}.tmp"
    tmp.write_text("".join(name + "\n" for name in names), encoding="utf-8")
    os.replace(tmp, paths_file)
    return "/", str(paths_file), {n: s.format for n, s in zip(names, sources) if s.format != "jsonl"}
