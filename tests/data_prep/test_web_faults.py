"""Faults found by running the web-data path as a new user would (data_prep/docio/{html,warc}.py):
wrong charset headers, WARC files cut anywhere. Inputs are written here with warcio."""
from __future__ import annotations

import io
import re
import zlib
from collections import Counter

from data_prep.docio.html import decode_html
from data_prep.docio.warc import iter_warc
from tests.data_prep.test_web_inputs import CP949_ONLY, KO, _page


def test_a_latin1_http_header_does_not_turn_a_cp949_page_into_mojibake():
    """Korean servers often send `charset=ISO-8859-1` (HTTP/1.1's default) for EUC-KR pages: the
    page's <meta>, or detection, must win over that label, and a real Latin-1 page stays Latin-1."""
    ko = _page(KO * 3).encode("cp949")
    for header in ("text/html; charset=ISO-8859-1", "text/html; charset=us-ascii"):
        html, charset = decode_html(ko, header)
        assert "서울특별시 교육청" in html and CP949_ONLY in html and charset == "cp949:detected", (header, charset)
    html, charset = decode_html(_page(KO, '<meta charset="euc-kr">').encode("cp949"), "text/html; charset=iso-8859-1")
    assert CP949_ONLY in html and charset == "cp949:meta"
    french = ("<html><body><p>" + "Le café, la crème brûlée à la française, été comme hiver. " * 20
              + "</p></body></html>").encode("cp1252")
    html, charset = decode_html(french, "text/html; charset=iso-8859-1")
    assert "crème brûlée" in html and charset == "cp1252:http"


def _warc(gz: bool) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    for k in range(3):  # responses only: a record cut before its type is legible counts as a response
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        body = io.BytesIO(_page(KO + f"<p>{k}</p>").encode("utf-8"))
        w.write_record(w.create_warc_record(f"http://ko.example/{k}", "response", payload=body, http_headers=http))
    return buf.getvalue()


def test_a_warc_cut_at_any_byte_counts_every_response_it_began(tmp_path):
    """A plain .warc that ends inside a record's header block used to lose that response without a
    count (warcio stops silently); a gzip member cut inside `WARC-Type: respo…` was counted as a
    `warc_skipped:respo` record. Cut at every few bytes: records = responses begun, = kept + dropped."""
    for gz in (False, True):
        data = _warc(gz)
        if gz:  # where each gzip member (one record) starts
            starts, pos = [], 0
            while pos < len(data):
                inflater = zlib.decompressobj(wbits=31)
                is_response = b"WARC-Type: response" in inflater.decompress(data[pos:])
                starts.append((pos, is_response))
                pos = len(data) - len(inflater.unused_data)
        else:
            starts = [(m.start(), True) for m in re.finditer(rb"WARC/1\.0\r\nWARC-Type: response", data)]
        path = tmp_path / ("cut.warc.gz" if gz else "cut.warc")
        for cut in range(0, len(data) + 1, 3):
            path.write_bytes(data[:cut])
            counts: Counter = Counter()
            kept = list(iter_warc(str(path), counts))
            begun = sum(1 for start, is_response in starts if is_response and start < cut)
            dropped = sum(v for k, v in counts.items() if k.startswith("dropped:"))
            assert counts["records"] == begun == len(kept) + dropped, (gz, cut, dict(counts))
            assert not [k for k in counts if k.startswith("warc_skipped:")], (gz, cut, dict(counts))


def test_an_output_is_resumed_only_by_the_same_run_and_lists_only_its_shards(tmp_path, capsys):
    """Re-running into an OUT of another run (other inputs, stages, tasks) used to 'resume' it: the old
    documents and counts came back as the new run's. A *.jsonl.gz the user kept in OUT was listed
    as a kept shard (so `midm data tokenize OUT` read it)."""
    import gzip
    import json

    from data_prep.cli import main
    from tests.data_prep.test_web_inputs import build_parquet, fineweb2_rows

    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    build_parquet(a, fineweb2_rows())
    build_parquet(b, fineweb2_rows()[:2])
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.jsonl.gz").write_bytes(gzip.compress(b'{"text": "not this run\'s"}\n'))
    run = ["filter", "--stages", "normalize", "--tasks", "1"]
    assert main([*run, str(a), str(out)]) == 0
    manifest = json.loads((out / "midm_output.json").read_text())
    assert manifest["kept_files"] == ["00000.jsonl.gz"] and manifest["documents"] == 3
    assert main([*run, str(a), str(out)]) == 0  # the same run: resumed (nothing left to do)
    assert main([*run, "--format", "parquet", str(a), str(out)]) == 0  # the format auto found: the same run
    (tmp_path / "langid.yaml").write_text("langid:\n  min_letters: 5\n")  # a stage this run does not enable
    assert main([*run, "--config", str(tmp_path / "langid.yaml"), str(a), str(out)]) == 0
    (tmp_path / "normalize.yaml").write_text("normalize:\n  fix_mojibake: false\n")
    assert main([*run, "--config", str(tmp_path / "normalize.yaml"), str(a), str(out)]) == 2
    assert "different normalize.fix_mojibake (true → false)" in capsys.readouterr().err
    capsys.readouterr()
    for other in ([*run, str(b), str(out)], ["filter", "--stages", "langid", "--tasks", "1", str(a), str(out)],
                  [*run, "--keep-rejects", str(a), str(out)]):
        assert main(other) == 2, other
        err = capsys.readouterr().err
        assert "holds a run started with different" in err and "--fresh" in err and len(err.splitlines()) == 1, err
        if str(b) in other:  # which inputs differ is named (it used to say "files, sizes or modification times")
            assert f"different inputs (new: {b}; no longer given: {a})" in err, err
        if "langid" in other:  # a changed setting is shown with both values
            assert 'different stages (["normalize"] → ["langid"])' in err, err
    assert main([*run, "--fresh", str(b), str(out)]) == 0
    assert json.loads((out / "stats.json").read_text())["records_read"] == 2


def test_a_warc_read_as_json_lines_is_named_as_warc(tmp_path):
    """`--format jsonl` on a .warc.gz said "found plain text (first line: 'WARC/1.0\\r')"."""
    from data_prep.docio.records import sniff_jsonl

    (tmp_path / "x.warc.gz").write_bytes(_warc(True))
    assert sniff_jsonl(tmp_path / "x.warc.gz") == "WARC records (read them with --format warc or auto)"
