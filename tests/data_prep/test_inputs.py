"""What an input path means to each data command (data_prep/docio/inputs.py, records.sniff_jsonl).

A stage's output directory means the documents it kept: its rejects and intermediates (JSON Lines
too) are never read, by any command, at any depth of a walk; an unfinished output is refused.
An input that is not JSON Lines at all fails up front with the format expected (exit 2) instead
of every line being counted as ``bad_json``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.docio.inputs import MANIFEST, expand_inputs, write_manifest
from data_prep.errors import DataError
from tests.conftest import REPO
from tests.data_prep.conftest import write_jsonl

DOC = "오늘은 날씨가 좋아서 공원에 산책을 나갔습니다. 사람들이 많았고 아이들이 뛰어놀고 있었습니다."


def _stage_output(out: Path, complete: bool = True) -> Path:
    """The layout `midm data filter --keep-rejects` leaves: kept shards, rejects, _work, manifest."""
    write_jsonl(out / "00000.jsonl.gz", [{"id": "kept", "text": DOC}], gz=True)
    write_jsonl(out / "rejects" / "langid" / "00000.jsonl.gz", [{"id": "rejected", "text": "x"}], gz=True)
    write_jsonl(out / "_work" / "0_stream" / "00000.jsonl.gz", [{"id": "work", "text": DOC}], gz=True)
    write_manifest(out, "filter", ["00000.jsonl.gz"] if complete else None)
    return out


def test_a_stage_output_means_its_kept_files(tmp_path):
    out = _stage_output(tmp_path / "corpus" / "filtered")
    (tmp_path / "corpus" / "extra.jsonl").write_text(json.dumps({"text": DOC}) + "\n")
    assert expand_inputs([out]) == [out / "00000.jsonl.gz"]
    # walked from above, the stage output still contributes only its kept file
    assert expand_inputs([tmp_path / "corpus"]) == [tmp_path / "corpus" / "extra.jsonl", out / "00000.jsonl.gz"]
    # the tokenizer's reader goes through the same listing
    from tokenizer.corpus import expand_inputs as tokenizer_inputs

    assert tokenizer_inputs([out]) == [out / "00000.jsonl.gz"]


def test_an_unfinished_stage_output_is_refused(tmp_path):
    out = _stage_output(tmp_path / "filtered", complete=False)
    with pytest.raises(DataError, match="unfinished `midm data filter` run"):
        expand_inputs([out])
    proc = subprocess.run([sys.executable, "-m", "midm", "tokenizer", "train", "--input", str(out),
                           "--vocab-size", "1024", "--output", str(tmp_path / "tok")],
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "unfinished" in proc.stderr and "Traceback" not in proc.stderr


def test_filter_marks_its_output_and_lists_the_kept_shards(tmp_path):
    # a field named "rank" is just a field (datatrove's writer used it as the file name's rank)
    write_jsonl(tmp_path / "in.jsonl", [{"id": "ko", "text": DOC, "rank": 7},
                                        {"id": "ja", "text": "これは日本語の文章です。", "rank": 8}])
    out = tmp_path / "out"
    assert main(["filter", str(tmp_path / "in.jsonl"), str(out), "--stages", "langid", "--keep-rejects",
                 "--tasks", "1"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] and manifest["kept_files"] == ["00000.jsonl.gz"] and manifest["documents"] == 1
    assert [f.name for f in (out / "rejects").rglob("*.jsonl.gz")] == ["00000.jsonl.gz"]
    # the next stage, given OUT, reads the one kept document (the rejected one sits in OUT/rejects)
    out2 = tmp_path / "out2"
    assert main(["filter", str(out), str(out2), "--stages", "normalize", "--tasks", "1"]) == 0
    assert json.loads((out2 / "stats.json").read_text())["records_read"] == 1


@pytest.mark.parametrize("content, found", [
    ("그냥 댓글입니다\n다른 댓글\n", "found plain text"),
    ('{"body": "x"}\n{"body": "y"}\n', "without a string 'text' field (keys: body)"),
    ('[{"text": "x"}]\n', "a JSON array"),
])
def test_input_of_another_format_fails_naming_the_format(tmp_path, content, found):
    """`midm data filter comments.txt out/` used to drop every line as bad_json and exit 0."""
    comments = tmp_path / "comments.txt"
    comments.write_text(content, encoding="utf-8")
    for argv in (["data", "filter", str(comments), str(tmp_path / "out")],
                 ["data", "tokenize", str(comments), str(tmp_path / "tok" / "x"), "--tokenizer", str(tmp_path)]):
        proc = subprocess.run([sys.executable, "-m", "midm", *argv], capture_output=True, text=True,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "expected JSON Lines: one JSON object per line with a string field 'text'" in proc.stderr
        assert found in proc.stderr and "Traceback" not in proc.stderr


def test_a_run_with_no_readable_record_fails(tmp_path, capsys):
    """JSON Lines in form, but not one usable record: the stats are written, the run fails (exit 2)."""
    (tmp_path / "in.jsonl").write_text('{"text": "   "}\n' * 5)
    out = tmp_path / "out"
    assert main(["filter", str(tmp_path / "in.jsonl"), str(out), "--stages", "normalize", "--tasks", "1"]) == 2
    assert "not one of the 5 input records was readable (empty: 5)" in capsys.readouterr().err
    assert json.loads((out / "stats.json").read_text())["dropped"]["input"] == {"empty": 5}


def test_an_output_inside_the_input_directory_is_not_read_back(tmp_path):
    """`midm data filter raw/ raw/clean/` twice: the second run must not read its own first output."""
    write_jsonl(tmp_path / "raw" / "a.jsonl", [{"id": "ko", "text": DOC}])
    for _ in range(2):
        assert main(["filter", str(tmp_path / "raw"), str(tmp_path / "raw" / "clean"), "--stages", "normalize",
                     "--tasks", "1"]) == 0
        assert json.loads((tmp_path / "raw" / "clean" / "stats.json").read_text())["records_read"] == 1
