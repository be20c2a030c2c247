"""lm-eval hooks of ``ko_ifeval.yaml`` (lm-eval imports this file by path): the scoring lives in
:mod:`evaluation.ko_ifeval.scoring`."""
from evaluation.ko_ifeval.scoring import agg_inst_level_acc, process_results

__all__ = ["agg_inst_level_acc", "process_results"]
