"""WARC, Parquet and Hub inputs of `midm data filter|tokenize` (data_prep/docio/{warc,html,tables,sources}.py).

The WARC files are written here with warcio (real records: an HTTP response per page, requests,
a warcinfo), the Parquet files with pyarrow in FineWeb-2's columns; the real pages are committed
under tests/data/data_prep/web (a Common Crawl record from dolma's sample, Debian's Korean FAQ and
LibreOffice help pages, whose navigation bar must not survive extraction). Every format must
balance: records read = kept + Σ dropped by reason.
"""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

from data_prep.cli import main
from tests.conftest import REPO
from tests.data_prep.conftest import SAMPLES, read_output
from tests.data_prep.test_tokenize import train_test_tokenizer

WEB = SAMPLES / "web"
KO = ("<p>서울특별시 교육청은 다음 학기부터 새로운 교육과정을 도입한다고 밝혔습니다. 학생들은 토론과 글쓰기 "
      "수업을 더 많이 듣게 되며, 교사들은 새 교재로 연수를 받습니다. 똠방각하 같은 옛말도 국어 시간에 다룹니다.</p>")
CP949_ONLY = "똠"  # in CP949 (UHC), not in strict EUC-KR: "euc-kr" labels must decode as windows-949


def _page(body: str, head: str = "") -> str:
    return (f"<html><head>{head}<title>공지</title></head><body><nav><a href='/'>홈</a> | <a href='/a'>소개</a></nav>"
            f"<main><h1>새 교육과정 안내</h1>{body}</main><footer>저작권 교육청</footer></body></html>")


def _record(writer, url: str, body: bytes, content_type: str | None, status: str = "200 OK", extra=()):
    from warcio.statusandheaders import StatusAndHeaders

    headers = ([("Content-Type", content_type)] if content_type else []) + list(extra)
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    req = writer.create_warc_record(url, "request", payload=io.BytesIO(b""),
                                    http_headers=StatusAndHeaders(f"GET {url} HTTP/1.1", [], is_http_request=True))
    writer.write_record(req)
    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))


def build_warc(path: Path, real_pages: bool = True) -> dict[str, str]:
    """A .warc.gz with one response of each kind; returns url -> the expected outcome."""
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    w.write_record(w.create_warcinfo_record("test.warc.gz", {"software": "warcio"}))
    expect = {}
    pages = [
        ("http://ko.example/utf8", _page(KO).encode("utf-8"), "text/html; charset=utf-8", "kept"),
        # no charset in the header: the <meta charset> says euc-kr, the page uses a CP949-only syllable
        ("http://ko.example/euckr-meta", _page(KO, '<meta charset="euc-kr">').encode("cp949"), "text/html", "kept"),
        # the HTTP header wins over a wrong <meta>
        ("http://ko.example/euckr-http", _page(KO, '<meta charset="utf-8">').encode("cp949"),
         "text/html; charset=ks_c_5601-1987", "kept"),
        # neither header nor meta: detection
        ("http://ko.example/euckr-detect", _page(KO * 3).encode("cp949"), "text/html", "kept"),
        ("http://ko.example/report.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", "application/pdf",
         "not_html"),
        ("http://ko.example/old", b"<html><body>Moved</body></html>", "text/html", "http_status"),
        ("http://ko.example/nav-only", b"<html><body><nav><a href='/'>home</a></nav><script>x()</script></body></html>",
         "text/html; charset=utf-8", "extraction_empty"),
        ("http://ko.example/binary", b"<html><body><p>" + bytes(range(128, 256)) * 8 + b"</p></body></html>",
         "text/html; charset=utf-8", "decode_error"),
    ]
    if real_pages:
        for f in sorted(WEB.glob("*.html")):
            pages.append((f"http://debian.example/{f.name}", f.read_bytes(), "text/html; charset=utf-8", "kept"))
    for url, body, ctype, outcome in pages:
        status = "301 Moved Permanently" if outcome == "http_status" else "200 OK"
        extra = [("Location", "http://ko.example/new")] if outcome == "http_status" else []
        _record(w, url, body, ctype, status, extra)
        expect[url] = outcome
    _record(w, "http://ko.example/cut", _page(KO).encode("utf-8"), "text/html; charset=utf-8")
    path.write_bytes(buf.getvalue()[:-60])  # the last response's gzip member cut short (its request is whole)
    expect["http://ko.example/cut"] = "truncated_warc"
    return expect


def build_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)


def fineweb2_rows() -> list[dict]:
    base = {"dump": "CC-MAIN-2024-10", "date": "2024-02-21T10:00:00Z", "file_path": "s3://x/y.warc.gz",
            "language": "kor", "language_score": 0.99, "language_script": "Hang", "minhash_cluster_size": 3,
            "top_langs": '{"kor_Hang_score": 0.99}'}
    texts = [KO[3:-4], "둘째 문서입니다. 국어 시간에 옛말을 배웠습니다.", None, "   ", "마지막 문서입니다."]
    return [{"text": t, "id": f"<urn:uuid:{k}>", "url": f"https://ko.example/{k}", **base} for k, t in enumerate(texts)]


def _stats(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))


def test_warc_and_parquet_through_filter_with_one_accounting(tmp_path):
    warc = tmp_path / "in" / "crawl-00000.warc.gz"
    warc.parent.mkdir()
    expect = build_warc(warc)
    build_parquet(tmp_path / "in" / "kor_Hang" / "000_00000.parquet", fineweb2_rows())
    (tmp_path / "in" / "more.jsonl").write_text(json.dumps({"text": "JSON Lines 문서도 함께 읽힙니다."}) + "\nnot json\n")
    out = tmp_path / "out"
    assert main(["filter", str(tmp_path / "in"), str(out), "--stages", "normalize", "--tasks", "1",
                 "--keep-rejects"]) == 0
    stats = _stats(out)
    want_warc = {}
    for outcome in expect.values():
        want_warc[outcome] = want_warc.get(outcome, 0) + 1
    assert stats["balanced"], stats["problems"]
    dropped = stats["dropped"]["input"]
    for reason in ("not_html", "http_status", "extraction_empty", "decode_error", "truncated_warc"):
        assert dropped[reason] == want_warc[reason], (reason, dropped)
    assert dropped["missing_text"] == 1 and dropped["empty"] == 1 and dropped["bad_json"] == 1
    n_records = len(expect) + 5 + 2
    assert stats["records_read"] == n_records == stats["kept"] + stats["dropped_total"]
    assert stats["stages"]["input"]["stats"]["warc_skipped:request"] == len(expect)  # requests are not documents
    assert stats["stages"]["input"]["stats"]["warc_skipped:warcinfo"] == 1
    # --keep-rejects: every input drop is listed, WARC ones by record id and URL, Parquet ones by row
    rejects = [json.loads(ln) for ln in gzip.open(out / "rejects" / "input" / "00000.jsonl.gz", "rt", encoding="utf-8")]
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["_midm_reject"]["reason"]] = by_reason.get(r["_midm_reject"]["reason"], 0) + r.get("records", 1)
    assert by_reason == dropped, (by_reason, dropped)
    warc_rejects = {r["url"]: r["_midm_reject"]["reason"] for r in rejects if r.get("url")}
    assert warc_rejects == {u: o for u, o in expect.items() if o != "kept"}
    cut = [r for r in rejects if r["_midm_reject"]["reason"] == "truncated_warc"]
    assert len(cut) == 1 and cut[0]["warc_record_id"].startswith("<urn:uuid:") and cut[0]["file"] == str(warc)
    assert cut[0]["url"] == "http://ko.example/cut"
    assert sorted(r["row"] for r in rejects if r["file"].endswith(".parquet")) == [2, 3]  # None text, blank text

    docs = {d.get("url") or d["id"]: d for d in read_output(out)}
    assert set(u for u, o in expect.items() if o == "kept") <= set(docs)
    for url in ("http://ko.example/utf8", "http://ko.example/euckr-meta", "http://ko.example/euckr-http",
                "http://ko.example/euckr-detect"):
        text = docs[url]["text"]
        assert "서울특별시 교육청" in text and CP949_ONLY in text, url  # decoded right, CP949 syllable included
        assert "소개" not in text and "저작권 교육청" not in text, url  # nav and footer are boilerplate
        assert docs[url]["id"].startswith("<urn:uuid:") and docs[url]["warc_date"]
    assert docs["http://ko.example/euckr-meta"]["charset"] == "cp949:meta"
    assert docs["http://ko.example/euckr-http"]["charset"] == "cp949:http"
    assert docs["http://ko.example/euckr-detect"]["charset"] == "cp949:detected"
    # real pages: LibreOffice's help navigation bar is gone, the Korean body is kept
    lo = docs["http://debian.example/libreoffice-help-ko_optionen_01020000.html"]["text"]
    assert "로드/저장 옵션" in lo and "LibreOffice 7.4 Help" not in lo and "Contents" not in lo.split("\n")
    faq = docs["http://debian.example/debian-faq-ko_kernel.ko.html"]["text"]
    assert "커스텀 커널을 빌드하려고" in faq
    # Parquet: FineWeb-2's columns come back as metadata, unchanged
    fw = docs["https://ko.example/0"]
    assert fw["id"] == "<urn:uuid:0>" and fw["dump"] == "CC-MAIN-2024-10" and fw["language_score"] == 0.99
    assert fw["minhash_cluster_size"] == 3 and fw["language_script"] == "Hang"


def test_real_common_crawl_records_and_tokenize_from_warc_and_parquet(tmp_path):
    """The committed Common Crawl records (dolma's sample) read as they are; tokenize reads WARC and
    Parquet directly and a filter output of a WARC; the counts are the filter's."""
    tok = train_test_tokenizer(tmp_path / "tok")
    out = tmp_path / "cc"
    assert main(["filter", str(WEB / "cc_sample.warc.gz"), str(out), "--stages", "normalize", "--tasks", "1"]) == 0
    stats = _stats(out)
    assert stats["records_read"] == 2 and stats["kept"] == 2 and stats["balanced"]
    texts = {d["url"]: d["text"] for d in read_output(out)}
    assert set(texts) == {"https://soldaini.net/", "https://soldaini.net/facts/"}
    assert "I completed my Ph.D. in computer science" in texts["https://soldaini.net/"]
    assert texts["https://soldaini.net/facts/"].startswith("Facts\n\nIn no particular order")

    build_parquet(tmp_path / "fw.parquet", fineweb2_rows())
    warc = tmp_path / "pages.warc.gz"
    expect = build_warc(warc, real_pages=False)
    for inp, fmt, docs in ((tmp_path / "fw.parquet", None, 3), (warc, "warc", 4), (out, None, 2)):
        prefix = tmp_path / "tokens" / inp.stem
        args = ["tokenize", str(inp), str(prefix), "--tokenizer", str(tok)]  # default: progress on
        assert main(args + (["--format", fmt] if fmt else [])) == 0, inp
        summary = json.loads(Path(f"{prefix}.summary.json").read_text())
        assert summary["documents"] == docs, (inp, summary)
        assert summary["records_read"] == summary["documents"] + summary["malformed_skipped"]
    summary = json.loads((tmp_path / "tokens" / "pages.warc.summary.json").read_text())
    assert summary["skipped"]["truncated_warc"] == 1 and summary["skipped"]["not_html"] == 1
    assert summary["records_read"] == len(expect)


def test_warc_gzipped_as_one_stream_reads_record_by_record(tmp_path):
    """`gzip crawl.warc` (one stream, not one member per record) bigger than the per-record limit:
    streamed by warcio, every page kept, not one `too_large` record; cut short, the rest counted."""
    from collections import Counter

    from warcio.warcwriter import WARCWriter

    from data_prep.docio.warc import iter_warc

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    for k in range(60):
        _record(w, f"http://ko.example/{k}", _page(KO * 3 + f"<p>{k}</p>").encode("utf-8"), "text/html; charset=utf-8")
    whole = gzip.compress(buf.getvalue())
    assert len(buf.getvalue()) > 4000 + (1 << 16)  # over what one member may inflate to at max_bytes=4000
    (tmp_path / "one.warc.gz").write_bytes(whole)
    counts = Counter()
    urls = [d["url"] for d in iter_warc(str(tmp_path / "one.warc.gz"), counts, max_bytes=4000)]
    assert urls == [f"http://ko.example/{k}" for k in range(60)]
    assert counts["records"] == 60 and counts["warc_skipped:request"] == 60 and not counts["dropped:too_large"]
    (tmp_path / "cut.warc.gz").write_bytes(whole[: len(whole) // 2])
    counts = Counter()
    kept = list(iter_warc(str(tmp_path / "cut.warc.gz"), counts, max_bytes=4000))
    assert 0 < len(kept) < 60 and counts["records"] == len(kept) + counts["dropped:truncated_warc"]


def test_hub_dataset_from_a_local_hub_layout_directory(tmp_path, monkeypatch):
    """`--format hub` on a directory laid out as on the Hub (FineWeb-2: data/<config>/train/*.parquet,
    configs named in README.md), offline."""
    repo = tmp_path / "fineweb-2"
    rows = fineweb2_rows()
    build_parquet(repo / "data" / "kor_Hang" / "train" / "000_00000.parquet", rows)
    build_parquet(repo / "data" / "jpn_Jpan" / "train" / "000_00000.parquet", rows[:1])
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: kor_Hang\n  data_files:\n  - split: train\n    path: data/kor_Hang/train/*\n"
        "- config_name: jpn_Jpan\n  data_files:\n  - split: train\n    path: data/jpn_Jpan/train/*\n---\n")
    out = tmp_path / "out"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["filter", str(repo), str(out), "--format", "hub", "--hub-config", "kor_Hang",
                 "--stages", "normalize", "--tasks", "1", "--keep-rejects"]) == 0
    stats = _stats(out)
    assert stats["records_read"] == 5 and stats["kept"] == 3 and stats["balanced"]
    assert stats["dropped"]["input"] == {"empty": 1, "missing_text": 1}
    # --keep-rejects: the Hub rows the input stage dropped are listed, by row, as Parquet rows are
    rejects = [json.loads(ln) for ln in gzip.open(out / "rejects" / "input" / "00000.jsonl.gz", "rt", encoding="utf-8")]
    assert {(r["row"], r["_midm_reject"]["reason"]) for r in rejects} == {(2, "missing_text"), (3, "empty")}
    assert {d["dump"] for d in read_output(out)} == {"CC-MAIN-2024-10"}
    # tokenize streams it too: two workers, one part of the stream each, the same documents
    tok = train_test_tokenizer(tmp_path / "tok")
    for workers in ("1", "2"):
        prefix = tmp_path / f"hub_tokens_{workers}"
        assert main(["tokenize", str(repo), str(prefix), "--tokenizer", str(tok), "--format", "hub",
                     "--hub-config", "kor_Hang", "--workers", workers]) == 0
        summary = json.loads(Path(f"{prefix}.summary.json").read_text())
        assert summary["documents"] == 3 and summary["records_read"] == 5 and summary["shards"] == int(workers)
        assert summary["skipped"] == {"empty": 1, "missing_text": 1} and summary["inputs"] == [str(repo)]
    one, two = (Path(f"{tmp_path}/hub_tokens_{w}.bin").read_bytes() for w in ("1", "2"))
    assert sorted(one) == sorted(two) and len(one) > 0  # the same tokens (part order may differ)
    assert main(["tokenize", str(repo), str(tmp_path / "x"), "--tokenizer", str(tok), "--hub-config", "kor_Hang"]) == 2


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.warc").write_text("just some notes\n")
    build_parquet(tmp_path / "no_text.parquet", [{"content": "x", "id": "1"}])
    gz_json = tmp_path / "x.warc.gz"
    gz_json.write_bytes(gzip.compress(b'{"text": "hi"}\n'))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    cases = [([str(tmp_path / "notes.warc")], "no WARC record"),
             ([str(tmp_path / "no_text.parquet")], "without a 'text' column"),
             ([str(gz_json)], "expected WARC records"),
             (["HuggingFaceFW/fineweb-2"], "add --format hub"),
             (["--format", "hub", str(tmp_path / "missing_repo")], "cannot load it as a Hugging Face dataset")]
    for args, message in cases:
        assert main(["filter", *args, str(tmp_path / "o"), "--stages", "normalize"]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
    # the command line says the same, and `midm data` stays torch-free with the web readers loaded
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "midm", "data", "filter", str(tmp_path / "notes.warc"),
                           str(tmp_path / "o")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "no WARC record" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    code = ("import sys; from data_prep.docio import html, sources, tables, warc; "
            "from data_prep.docio.html import extract_main_text; extract_main_text('<p>x</p>'); "
            "from data_prep.docio.tables import load_hub; "
            "assert 'torch' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO).returncode == 0
