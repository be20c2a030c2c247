"""datatrove's ``LocalPipelineExecutor`` whose worker processes log like the command does.

The local executor starts its workers from a forkserver (:func:`data_prep.executors.make_executor`
says why), so a worker does not inherit the caller's ``sys.stderr`` — the filter that sends
datatrove's INFO records to ``OUT/filter.log`` only (:func:`data_prep.progress.datatrove_log_to_file`).
Without this class every worker printed its INFO lines (~50 per step) on the terminal whenever
more than one worker ran. With one worker the task runs in the caller, already routed.
"""
from __future__ import annotations

from pathlib import Path

from datatrove.executor.local import LocalPipelineExecutor


class MidmLocalExecutor(LocalPipelineExecutor):
    """Set ``worker_log = (log_path, verbose)`` before ``run()``: each worker routes its stderr the
    same way as the command, around its task."""

    worker_log: tuple[str, bool] | None = None

    def _launch_run_for_rank(self, rank, ranks_q, completed=None, completed_lock=None):
        from data_prep.progress import datatrove_log_to_file, stderr_is_routed

        if self.worker_log is None or stderr_is_routed():
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)
        log_path, verbose = self.worker_log
        with datatrove_log_to_file(Path(log_path), verbose):
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)
