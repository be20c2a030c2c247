"""HTML → main text: trafilatura (as FineWeb ran it, through datatrove's defaults) vs resiliparse (ours).

For each source and extractor: pages, pages/s (extraction only, on decoded HTML, one core),
characters and Hangul syllables kept, pages left empty, Hangul kept relative to all visible text
of the page (resiliparse with ``main_content=False``), and *boilerplate* characters kept: lines
that appear on at least 30 % of a source's pages in that all-text rendering (navigation bars,
headers, footers repeated across a site). Prints one JSON line.

Sources: the real Common Crawl WARC records of dolma's test sample
(``../shared/data/filters/dolma_web_samples/warc``; English pages) and Debian's Korean help pages
as HTML (``--debian-html``: by default the three committed under tests/data/data_prep/web; the
full sets are the Debian packages ``debian-faq-ko`` and ``libreoffice-help-ko``: ``apt-get download
debian-faq-ko libreoffice-help-ko && dpkg-deb -x …`` then point ``--debian-html`` at
``usr/share``; ``--max-pages`` samples each source, seeded).

    python benchmarks/data_extractors.py [--warc DIR] [--debian-html DIR] [--max-pages 300]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_prep.docio.html import decode_html, extract_main_text  # noqa: E402

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def trafilatura_fineweb(html: str) -> str:
    """datatrove's ``Trafilatura`` extractor with its defaults (what FineWeb used)."""
    from trafilatura import extract

    return extract(html, favor_precision=True, include_comments=False, deduplicate=True) or ""


def all_text(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=False, alt_texts=False)


EXTRACTORS = {"trafilatura": trafilatura_fineweb, "resiliparse": extract_main_text}


def warc_pages(folder: Path) -> list[str]:
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    for f in sorted(folder.glob("*.warc*")):
        with open(f, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response" and record.http_headers is not None:
                    html, _ = decode_html(record.content_stream().read(), record.http_headers.get_header("Content-Type"))
                    if html is not None:
                        pages.append(html)
    return pages


def debian_pages(folder: Path, max_pages: int) -> dict[str, list[str]]:
    groups: dict[str, list[Path]] = {}
    for f in sorted(folder.rglob("*.html")):
        key = "debian_faq_ko" if ("faq" in str(f).lower()) else "libreoffice_help_ko"
        groups.setdefault(key, []).append(f)
    out = {}
    for key, files in groups.items():
        random.Random(0).shuffle(files)
        out[key] = [f.read_text(encoding="utf-8", errors="replace") for f in files[:max_pages]]
    return out


def measure(pages: list[str]) -> dict:
    full = [all_text(h) for h in pages]
    counts = Counter(line.strip() for text in full for line in set(text.splitlines()) if line.strip())
    boiler = {line for line, n in counts.items() if len(pages) >= 3 and n >= 0.3 * len(pages)}
    full_hangul = sum(len(HANGUL.findall(t)) for t in full)
    result = {"pages": len(pages), "all_text_hangul": full_hangul}
    for name, fn in EXTRACTORS.items():
        fn(pages[0])  # imports and first-call setup out of the timing
        t0 = time.perf_counter()
        texts = [fn(h) for h in pages]
        seconds = time.perf_counter() - t0
        hangul = sum(len(HANGUL.findall(t)) for t in texts)
        result[name] = {
            "pages_per_s": round(len(pages) / seconds, 1),
            "chars": sum(map(len, texts)), "hangul": hangul,
            "hangul_of_all_text": round(hangul / full_hangul, 3) if full_hangul else None,
            "empty_pages": sum(1 for t in texts if not t.strip()),
            "boilerplate_chars": sum(len(line) for t in texts for line in t.splitlines() if line.strip() in boiler),
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warc", default=str(REPO.parent / "shared" / "data" / "filters" / "dolma_web_samples" / "warc"))
    ap.add_argument("--debian-html", default=str(REPO / "tests" / "data" / "data_prep" / "web"))
    ap.add_argument("--max-pages", type=int, default=300)
    args = ap.parse_args()
    sources: dict[str, list[str]] = {}
    if Path(args.warc).is_dir():
        sources["common_crawl_warc"] = warc_pages(Path(args.warc))[: args.max_pages]
    sources.update(debian_pages(Path(args.debian_html), args.max_pages))
    report = {"benchmark": "data_extractors", "chosen": "resiliparse",
              "settings": {"trafilatura": "extract(favor_precision=True, include_comments=False, deduplicate=True)",
                           "resiliparse": "extract_plain_text(main_content=True, alt_texts=False, links=False, "
                                          "form_fields=False, noscript=False, comments=False)"},
              "sources": {name: measure(pages) for name, pages in sources.items() if pages}}
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
