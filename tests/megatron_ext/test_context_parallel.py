"""Context parallelism on CPU: the process groups and the load-balanced sequence split (the attention itself
needs Transformer Engine and is refused on CPU by recipe validation — tests/recipes/test_recipes.py)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.megatron_ext.conftest import free_port, run_env


def test_cp2_splits_each_sequence_into_balanced_zigzag_chunks(tmp_path):
    out = tmp_path / "split"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                    str(REPO / "tests" / "megatron_ext" / "cp_split_probe.py"), str(out)],
                   env=run_env(), check=True, capture_output=True, timeout=300)
    ranks = [json.loads((tmp_path / f"split.{r}.json").read_text()) for r in (0, 1)]
    # 16 tokens in 2·CP = 4 chunks of 4: rank 0 keeps chunks 0 and 3, rank 1 chunks 1 and 2
    assert ranks[0]["tokens"] == [[0, 1, 2, 3, 12, 13, 14, 15]]
    assert ranks[1]["tokens"] == [[4, 5, 6, 7, 8, 9, 10, 11]]
    for r in ranks:
        assert r["labels"] == [[t + 1 for t in r["tokens"][0]]] and r["position_ids"] == r["tokens"]
        assert r["dp"] == 1 and r["cp_rank"] == r["rank"]
