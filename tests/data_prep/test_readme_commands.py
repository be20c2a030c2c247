"""Every data and tokenizer command the READMEs show runs as written, with default flags, at tiny scale.

The commands are read from README.md, data_prep/README.md and tokenizer/README.md (code blocks,
and the command table of data_prep/README.md) and must equal the list below, so a command added
to a README without being run here fails this test. Concrete commands run verbatim through bash
(``midm`` is ``python -m midm``; ``raw/*.jsonl.gz`` is a shell glob), in a workspace holding the
files they name; a synopsis (``IN… OUT [--flags]``) runs as its required part only — the default
flags — with the placeholders filled in as listed. Following the README's order of stages also
checks that each stage reads what the previous one kept (``filtered/`` means the kept documents,
not ``filtered/rejects/`` or ``filtered/_work/``).
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_DATA

pytestmark = pytest.mark.slow
READMES = ("README.md", "data_prep/README.md", "tokenizer/README.md")
PREFIXES = ("midm data ", "midm tokenizer ", "torchrun --nproc_per_node 2 -m midm convert reshard ")

# README text -> the command line that runs (None: not run here, and why)
COMMANDS: dict[str, str | tuple[None, str]] = {
    # README.md, in pipeline order
    "midm data filter raw/*.jsonl.gz filtered/ --keep-rejects": "as written",
    "midm data pii in.jsonl.gz masked/": "as written",
    "midm data synth …": (None, "placeholder arguments; synthetic rewrites run in tests/data_prep/test_synth.py "
                                "against the bundled echo server"),
    "midm data tokenize filtered/ tokens/ko_web --tokenizer tok/ --workers 16": "as written",
    "midm data mix curriculum.yaml mix/": "as written",
    "midm data sft chats/*.jsonl sft_data/ --tokenizer tok/ --seq-length 4096":
        (None, "needs chat JSONL and an exported tokenizer with the chat template: tests/data_prep/sft runs "
               "`midm data sft` with these flags on the bundled conversation sample"),
    "midm data prefs prefs/*.jsonl prefs_data/ --tokenizer tok/ --seq-length 2048":
        (None, "needs preference JSONL and an exported tokenizer: tests/data_prep/test_prefs.py runs `midm data "
               "prefs` on the committed SQuARe pairs"),
    "midm tokenizer train --input filtered/ --vocab-size 131392 --output tok/": "as written",
    "midm tokenizer eval --tokenizer tok/ --text korean=heldout_ko.jsonl english=heldout_en.jsonl "
    "--baseline tekken,mistral-32k": "as written",
    "midm tokenizer export --tokenizer tok/ --output hf_tok/": "as written",
    "torchrun --nproc_per_node 2 -m midm convert reshard --checkpoint runs/midm_mini/checkpoints "
    "--output ckpt/mini_tp2 --tp 2 --pp 1":
        (None, "needs a checkpoint: tests/megatron_ext/test_hf_convert.py::"
               "test_tp2_and_pp2_checkpoints_convert_to_the_same_hf_weights runs this line under torchrun with 2 "
               "processes, its paths swapped for a converted tiny checkpoint"),
    # data_prep/README.md's table (synopses: required arguments, every flag at its default)
    "midm data filter IN… OUT [--format auto|jsonl|warc|parquet|hub] [--stages a,b] [--config F] "
    "[--executor local|slurm] [--keep-rejects] [--tasks N]":
        "midm data filter raw/part1.jsonl.gz filtered_default/",
    "midm data dedup IN… OUT": "midm data dedup raw/ deduped/",
    "midm data pii IN… OUT": "midm data pii in.jsonl.gz masked/",
    "midm data train-classifier toxicity|quality --data ../shared/data":
        (None, "rebuilds the committed models/*.ftz from the labelled sets in the external ../shared/data "
               "checkout (not in the repository or CI); training itself: tests/data_prep/test_classifiers.py"),
    "midm data build-lexicons --data ../shared/data":
        (None, "rebuilds the committed configs/lexicons from the external ../shared/data checkout"),
    "midm data synth IN OUT --model M [--endpoint URL] [--task rewrite|qa|translate]":
        (None, "needs an OpenAI-compatible endpoint: tests/data_prep/test_synth.py runs it against the echo server"),
    "midm data mix CURRICULUM.yaml OUT_DIR": "midm data mix curriculum.yaml mix/",
    "midm data tokenize IN… OUT_PREFIX --tokenizer DIR [--workers N] [--format F]":
        "midm data tokenize filtered/ tokens/default --tokenizer tok/",
    # tokenizer/README.md (synopses)
    "midm tokenizer train --input FILES_OR_DIRS --vocab-size N --output DIR [--config FILE] [--ko-ratio R] "
    "[--pretokenize kiwi] [--plain] [--overwrite]": "midm tokenizer train --input filtered/ --vocab-size 131392 --output tok/",
    "midm tokenizer eval --tokenizer DIR --text [LABEL=]FILE… [--baseline tekken,mistral-32k,NAME=PATH] "
    "[--output DIR]": "midm tokenizer eval --tokenizer tok/ --text heldout_ko.jsonl",
    "midm tokenizer export --tokenizer DIR --output HF_DIR": "midm tokenizer export --tokenizer tok/ --output hf_tok/",
}
# the order the stages depend on each other in (each runs once, however many READMEs show it)
ORDER = ["midm data filter raw/*.jsonl.gz filtered/ --keep-rejects",
         "midm data filter raw/part1.jsonl.gz filtered_default/",
         "midm data dedup raw/ deduped/",
         "midm data pii in.jsonl.gz masked/",
         "midm tokenizer train --input filtered/ --vocab-size 131392 --output tok/",
         "midm data tokenize filtered/ tokens/ko_web --tokenizer tok/ --workers 16",
         "midm data tokenize filtered/ tokens/default --tokenizer tok/",
         "midm data mix curriculum.yaml mix/",
         "midm tokenizer eval --tokenizer tok/ --text korean=heldout_ko.jsonl english=heldout_en.jsonl "
         "--baseline tekken,mistral-32k",
         "midm tokenizer eval --tokenizer tok/ --text heldout_ko.jsonl",
         "midm tokenizer export --tokenizer tok/ --output hf_tok/"]


def readme_commands() -> set[str]:
    """Data/tokenizer command lines in the READMEs' code blocks and data_prep's command table."""
    found: set[str] = set()
    for name in READMES:
        in_code = False
        for line in (REPO / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                for part in line.split("#", 1)[0].split(" ; "):
                    part = " ".join(part.split())
                    if part.startswith(PREFIXES):
                        found.add(part)
            elif line.startswith("|"):
                for cmd in re.findall(r"`(midm (?:data|tokenizer) [^`]+)`", line.replace("\\|", "|")):
                    found.add(" ".join(cmd.split()))
    return found


def test_the_list_is_the_readmes():
    assert readme_commands() == set(COMMANDS), "a README command is not covered here (or one here is gone)"
    runs = {v if v != "as written" else k for k, v in COMMANDS.items() if isinstance(v, str)}
    assert runs == set(ORDER)


def _workspace(root: Path) -> None:
    web = [json.loads(line) for line in gzip.open(REPO / "demo_data" / "web_sample.jsonl.gz", "rt", encoding="utf-8")]
    (root / "raw").mkdir()
    for k in range(2):
        with gzip.open(root / "raw" / f"part{k}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in web[k * 150:(k + 1) * 150])
    pii = [json.loads(line) for line in (TEST_DATA / "data_prep" / "sample_mixed.jsonl").read_text().splitlines()]
    with gzip.open(root / "in.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in pii if r.get("source") == "ko_pii")
    shutil.copy(TEST_DATA / "tokenizer" / "ko_heldout.jsonl", root / "heldout_ko.jsonl")
    en = [line for line in (TEST_DATA / "tokenizer" / "en_heldout.txt").read_text().splitlines() if line.strip()]
    (root / "heldout_en.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in en))
    (root / "curriculum.yaml").write_text("sources:\n  ko_web: {tokenized: tokens/ko_web}\n"
                                          "phases:\n  - {name: anneal, tokens: 1000, weights: {ko_web: 1.0}}\n")


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    script = f'midm() {{ "{sys.executable}" -m midm "$@"; }}\n{command}\n'
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_every_readme_command_runs_as_written(tmp_path):
    _workspace(tmp_path)
    for command in ORDER:
        proc = _run(command, tmp_path)
        assert proc.returncode == 0, f"{command}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"{command}\n{proc.stderr[-3000:]}"
    filtered = json.loads((tmp_path / "filtered" / "stats.json").read_text())
    assert filtered["balanced"] and 0 < filtered["kept"] < filtered["records_read"]
    assert list((tmp_path / "filtered" / "rejects").rglob("*.jsonl.gz"))  # rejects exist beside the kept shards …
    for prefix in ("ko_web", "default"):  # … and tokenize read the kept documents only
        summary = json.loads((tmp_path / "tokens" / f"{prefix}.summary.json").read_text())
        assert summary["documents"] == filtered["kept"], prefix
        assert summary["backend"] == "gigatoken", summary["backend_reason"]
    corpus = json.loads((tmp_path / "tok" / "train_summary.json").read_text())["corpus"]
    assert corpus["files"] == len(json.loads((tmp_path / "filtered" / "midm_output.json").read_text())["kept_files"])
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "tokens" / "ko_web.shards").exists()
    assert json.loads((tmp_path / "mix" / "00_anneal.json").read_text())["blend"][0][1].endswith("tokens/ko_web")
    assert (tmp_path / "hf_tok" / "tokenizer.json").is_file()
