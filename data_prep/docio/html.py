"""HTML bytes → main text: the charset decided as a browser would, the main content kept.

Charset, in order (the WHATWG encoding sniffing order, without the BOM-less guesswork a browser
adds): a byte-order mark, the HTTP ``Content-Type: …; charset=`` header, the first
``<meta charset>`` / ``<meta http-equiv="Content-Type" content="…; charset=…">`` in the first
4 KB, then detection on the bytes (resiliparse's ``detect_encoding``, uchardet). Korean labels are
mapped as the WHATWG Encoding Standard maps them: ``euc-kr``, ``ks_c_5601-1987``, ``korean`` …
all mean windows-949 (CP949, a superset of EUC-KR: ``똠``, ``햏`` … are CP949-only and common in
real "EUC-KR" pages); ``iso-8859-1``/``ascii`` mean windows-1252. A candidate is used only if the
bytes decode under it without error; when none does, the first candidate is used if at most
0.1 % of the bytes are invalid (a stray byte in a real page), else the page is a ``decode_error``.
A windows-1252 label (``ISO-8859-1`` is HTTP/1.1's default, and many Korean servers send it, or
``us-ascii``, whatever the page is in) is tried after the multi-byte candidates (a ``<meta>``
``euc-kr``, a detected CP949 or UTF-8): windows-1252 decodes nearly any bytes, so taken first it
would turn a CP949 page into mojibake, while Latin-1 text practically never decodes as CP949 or
UTF-8 without error.

Main text: resiliparse's ``extract_plain_text(main_content=True)`` (ChatNoir's extractor; DOM
rules drop navigation, headers, footers, forms and scripts). Chosen over trafilatura — which
FineWeb used — on measured figures (``benchmarks/data_extractors.py``, results in
``benchmarks/results/data_extractors.json``): of the Hangul visible on Debian's Korean FAQ pages
trafilatura kept 71 %, resiliparse 99 % (trafilatura drops headings, question lists and code);
on 300 LibreOffice Korean help pages 59 % vs 92 %, trafilatura left 26 pages empty (resiliparse 1)
and kept more navigation lines repeated across pages (3,096 vs 1,834 characters); resiliparse ran
15× (Common Crawl pages), 40× (FAQ) and 29× (help pages) faster. Its known loss: a list whose
items are mostly links can be dropped as navigation (soldaini.net/facts in the Common Crawl sample).
"""
from __future__ import annotations

import codecs
import re

# WHATWG Encoding Standard labels whose Python codec differs from the label's own name
_WHATWG = {"euc-kr": "cp949", "euc_kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601-1989": "cp949",
           "ksc5601": "cp949", "ksc_5601": "cp949", "korean": "cp949", "csksc56011987": "cp949",
           "iso-ir-149": "cp949", "windows-949": "cp949", "x-windows-949": "cp949", "uhc": "cp949",
           "iso-8859-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252",
           "iso8859-1": "cp1252", "l1": "cp1252", "x-user-defined": "cp1252"}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_HEADER = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
MAX_INVALID_FRACTION = 0.001
# codecs whose error-free decoding of non-ASCII bytes is evidence (a byte-per-character codec decodes anything)
_MULTI_BYTE = {"cp949", "utf-8", "euc_jp", "shift_jis", "cp932", "gb18030", "gbk", "gb2312", "big5", "big5hkscs",
               "iso2022_kr", "iso2022_jp", "johab", "utf-16", "utf-16-le", "utf-16-be"}


def codec_for(label: str | None) -> str | None:
    """Python codec name for a charset label (WHATWG mapping for Korean/Latin-1 labels); None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    name = _WHATWG.get(label, label)
    try:
        name = codecs.lookup(name).name
    except LookupError:
        return None
    return "cp949" if name == "euc_kr" else name


def charset_candidates(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    """``[(codec, source)]`` in the order they are tried; source is ``bom``, ``http``, ``meta`` or ``detected``."""
    found: list[tuple[str, str]] = []
    for bom, name in _BOMS:
        if body.startswith(bom):
            return [(name, "bom")]
    header = _HEADER.search(content_type or "")
    meta = _META.search(body[:4096])
    for label, source in ((header.group(1) if header else None, "http"),
                          (meta.group(1).decode("ascii", "ignore") if meta else None, "meta")):
        codec = codec_for(label)
        if codec and codec not in {c for c, _ in found}:
            found.append((codec, source))
    from resiliparse.parse.encoding import detect_encoding

    detected = codec_for(detect_encoding(body, max_len=65536, html5_compatible=False, from_html_meta=False))
    if detected and detected not in {c for c, _ in found}:
        found.append((detected, "detected"))
    if any(codec in _MULTI_BYTE for codec, _ in found):  # windows-1252 (ISO-8859-1, ASCII labels) last
        found.sort(key=lambda candidate: candidate[0] == "cp1252")
    return found


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str | None, str]:
    """``(html, "codec:source")`` — or ``(None, reason)`` when no charset decodes the bytes (``decode_error``).

    ``content_type`` is the HTTP ``Content-Type`` header value (None if absent).
    """
    candidates = charset_candidates(body, content_type)
    for codec, source in candidates:
        try:
            return body.decode(codec), f"{codec}:{source}"
        except (UnicodeDecodeError, LookupError):
            continue
    if candidates:
        codec, source = candidates[0]
        text = body.decode(codec, errors="replace")
        if text.count("\ufffd") <= MAX_INVALID_FRACTION * max(1, len(body)):
            return text, f"{codec}:{source}:replaced"
    return None, "decode_error"


_BLANKS = re.compile(r"\n{3,}")


def extract_main_text(html: str) -> str:
    """Main text of an HTML page (resiliparse ``extract_plain_text``, main content only, no alt texts,
    links, form fields or noscript); trailing spaces stripped, at most one blank line in a row.
    Returns ``""`` when the page has no main text."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, main_content=True, alt_texts=False, links=False, form_fields=False,
                              noscript=False, comments=False, preserve_formatting=True)
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def is_html_type(content_type: str | None, body: bytes) -> bool:
    """An HTML response: ``text/html`` or ``application/xhtml+xml``; without a header, a body that starts like HTML."""
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        return mime in ("text/html", "application/xhtml+xml")
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
