"""Stage 1 — URL/domain block-list (adult, gambling, spam).

Built on datatrove's ``URLFilter`` (it ships the UT1 block-lists FineWeb uses: ~4.5 M adult/
gambling domains and URL word lists) plus our own Korean gambling/spam rules: host keywords
(``toto``, ``casino``, ``바카라`` in IDN form …) and extra domains/TLDs from the YAML or from
files (one domain per line). Documents without a URL field pass untouched — counted as
``no_url`` in the stage's stats, not as a drop.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from datatrove.data import Document

from data_prep.filters.base import MidmStage


def _host(url: str) -> str:
    try:
        host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    except ValueError:
        return ""
    try:
        host = host.encode("ascii").decode("idna") if host.startswith("xn--") or ".xn--" in host else host
    except UnicodeError:
        pass
    return host.lower().rstrip(".")


class UrlBlocklistStage(MidmStage):
    stage = "url"

    def setup(self) -> None:
        cfg = self.config
        domains = {d.lower().strip() for d in cfg.get("blocked_domains", []) if d.strip()}
        for path in cfg.get("blocklist_files", []):
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                line = line.strip().lower()
                if line and not line.startswith("#"):
                    domains.add(line)
        self.domains = domains
        self.tlds = {t.lower().lstrip(".") for t in cfg.get("blocked_tlds", [])}
        self.keywords = [k.lower() for k in cfg.get("host_keywords", [])]
        self.url_field = cfg.get("url_field", "url")
        self.datatrove_filter = None  # loaded on the first document that has a URL (~4.5 M domains)

    def _ut1(self):
        if self.datatrove_filter is None:
            from datatrove.pipeline.filters.url_filter import URLFilter
            from tldextract import TLDExtract

            self.datatrove_filter = URLFilter()
            # offline: never fetch the public-suffix list, use the snapshot tldextract ships
            self.datatrove_filter.tldextractor = TLDExtract(suffix_list_urls=())
        return self.datatrove_filter

    def process(self, doc: Document) -> str | None:
        url = doc.metadata.get(self.url_field)
        if not url or not isinstance(url, str):
            self.counts["no_url"] += 1
            return None
        host = _host(url)
        labels = host.split(".")
        parents = {".".join(labels[i:]) for i in range(len(labels))}
        if parents & self.domains:
            return "blocked_domain"
        if labels and labels[-1] in self.tlds:
            return "blocked_tld"
        if any(k in host for k in self.keywords):
            return "host_keyword"
        if self.config.get("use_datatrove_lists", True):
            keep = self._ut1().filter(doc if self.url_field == "url" else
                                                Document(text="", id=doc.id, metadata={"url": url}))
            if keep is not True:
                return f"ut1_{keep[1]}" if isinstance(keep, tuple) else "ut1"
        return None
