"""FineWeb-2's Korean (``kor_Hang``) filter chain, built from datatrove's own steps.

The reference for ``benchmarks/data_filter_throughput.py --baseline fineweb2``. It follows
huggingface/fineweb-2 ``fineweb-2-pipeline.py`` (steps 4–6 of its per-language part) with the
thresholds of ``configs/kor_Hang.yml`` (:data:`KOR_HANG`), all datatrove 0.10 classes:

1. MinHash dedup: ``MinhashDedupSignature`` (language ``kor_Hang`` → Kiwi words, 5-grams,
   14 buckets × 8 hashes, 64-bit xxhash) → ``MinhashDedupBuckets`` → ``MinhashDedupCluster`` →
   ``MinhashDedupFilter``;
2. ``GopherRepetitionFilter`` (``dup_line_frac`` 0.374, the yml's top/dup n-gram limits,
   paragraph and line-char rules off, as FineWeb-2 sets them);
3. ``FineWebQualityFilter`` (``line_punct_thr`` 0.062, ``new_line_ratio`` 0.196,
   ``char_duplicates_ratio`` 0.1, short-line rule off);
4. ``GopherQualityFilter`` (average word length 1–6, non-alpha words ≤ 0.791, ≥ 2 of the 21
   Korean stopwords);
5. ``FTFYFormatter``, ``PIIFormatter``, ``SymbolLinesFormatter(["|"])`` (the "final touches").

Left out, and why: the URL filter, Trafilatura and the fastText-176 English split belong to
FineWeb's base processing of WARC files (our corpora are extracted text without URLs, and
datatrove's ``URLFilter`` asserts a URL); GlotLID (step 2) and its ``language_score ≥ 0.842`` cut
(step 3) need the ``cis-lmu/glotlid`` model from the Hugging Face Hub, which is not reachable
offline. One substitution: datatrove's ``KiwiTokenizer`` defaults to Kiwi's ``sbg`` model, which
kiwipiepy ≥ 0.24 no longer ships (``OSError: Cannot open required files for skipbigram model``),
so the same ``KiwiTokenizer`` class runs with ``model_type="cong"`` — kiwipiepy 0.24's default,
the one our own stages use.
"""
from __future__ import annotations

from pathlib import Path

# huggingface/fineweb-2 configs/kor_Hang.yml (commit 05e6729): per-language thresholds
KOR_HANG = {
    "dup_line_frac": 0.374,
    "dup_n_grams": [(5, 0.201), (6, 0.184), (7, 0.168), (8, 0.154), (9, 0.14), (10, 0.127)],
    "language_score": 0.842,
    "line_punct_thr": 0.062,
    "max_avg_word_length": 6,
    "max_non_alpha_words_ratio": 0.791,
    "min_avg_word_length": 1,
    "new_line_ratio": 0.196,
    "stopwords": ["의", "다", "이", "는", "에", "을", "한", "년", "하", "은", "를", "했", "고", "에서", "가", "있",
                  "으로", "인", "월", "로", "되"],
    "top_n_grams": [(2, 0.282), (3, 0.228), (4, 0.185)],
}
STEPS_RUN = ["minhash_signature", "minhash_buckets", "minhash_cluster", "minhash_filter", "gopher_repetition",
             "fineweb_quality", "gopher_quality", "ftfy", "pii", "symbol_lines"]
STEPS_LEFT_OUT = {"url_filter + trafilatura + ft176 split": "FineWeb base processing of WARC; no URLs in the corpus",
                  "glotlid + language_score>=0.842": "GlotLID model (Hugging Face Hub) unavailable offline"}


def kiwi_tokenizer():
    """datatrove's ``KiwiTokenizer`` (what ``kor_Hang`` maps to) on kiwipiepy 0.24's ``cong`` model."""
    from datatrove.utils.word_tokenizers import KiwiTokenizer

    return KiwiTokenizer(model_type="cong")


def fineweb2_executors(corpus: Path, work: Path) -> list:
    """The chain as datatrove ``LocalPipelineExecutor``s (1 worker: runs in this process; 1 task, but
    14 for the bucket step, which needs one per bucket as in our pipeline),
    in order; run them one after the other. Kept documents go to ``work/output``."""
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    c = KOR_HANG
    words = kiwi_tokenizer()  # one instance: datatrove caches each document's words across the 3 filters
    mh = MinhashConfig(hash_config=HashConfig(hash_fc="xxhash", precision=64), num_buckets=14, hashes_per_bucket=8,
                       n_grams=5)
    mh_dir, logs = work / "minhash", work / "logs"

    def reader():
        return JsonlReader(str(corpus.parent), glob_pattern=corpus.name, doc_progress=False)

    def local(name, steps, tasks=1):
        return LocalPipelineExecutor(pipeline=steps, tasks=tasks, workers=1, logging_dir=str(logs / name))

    return [
        local("mh1", [reader(), MinhashDedupSignature(str(mh_dir / "sigs"), config=mh, language=words)]),
        local("mh2", [MinhashDedupBuckets(str(mh_dir / "sigs"), str(mh_dir / "buckets"), config=mh)],
              tasks=mh.num_buckets),
        local("mh3", [MinhashDedupCluster(str(mh_dir / "buckets"), str(mh_dir / "remove"), config=mh)]),
        local("filter", [
            reader(), MinhashDedupFilter(str(mh_dir / "remove")),
            GopherRepetitionFilter(language=words, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                                   dup_line_frac=c["dup_line_frac"], top_n_grams=c["top_n_grams"],
                                   dup_n_grams=c["dup_n_grams"]),
            FineWebQualityFilter(language=words, short_line_thr=999, char_duplicates_ratio=0.1,
                                 line_punct_thr=c["line_punct_thr"], new_line_ratio=c["new_line_ratio"]),
            GopherQualityFilter(language=words, max_avg_word_length=c["max_avg_word_length"],
                                min_avg_word_length=c["min_avg_word_length"], stop_words=c["stopwords"],
                                max_non_alpha_words_ratio=c["max_non_alpha_words_ratio"], min_stop_words=2),
            FTFYFormatter(), PIIFormatter(), SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
            JsonlWriter(str(work / "output")),
        ]),
    ]
