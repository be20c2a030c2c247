"""`midm data dedup`: exact copies and near-copies removed, distinct documents kept, all counted."""
from __future__ import annotations

import json

from data_prep.cli import main
from tests.data_prep.conftest import read_output, write_jsonl


def test_exact_and_near_duplicates(tmp_path, sample_mixed):
    statutes = [json.loads(line) for line in sample_mixed.read_text(encoding="utf-8").splitlines()]
    statutes = [r for r in statutes if r["id"].startswith("statute-")][:4]
    base = statutes[0]["text"]
    records = [{"id": r["id"], "text": r["text"]} for r in statutes]
    records += [
        {"id": "copy", "text": base},
        {"id": "copy-ws", "text": base.replace(" ", "  ")},          # same after whitespace normalisation
        {"id": "near", "text": base[:-40] + " 이 법은 공포한 날부터 시행한다."},  # small edit at the end
        {"id": "short-1", "text": "재밌다"}, {"id": "short-2", "text": "재밌다"},
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert main(["dedup", str(inp), str(out), "--tasks", "2", "--fresh", "--keep-rejects"]) == 0
    kept = {r["id"] for r in read_output(out)}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balanced"]
    assert stats["dropped"]["dedup.exact"]["exact_duplicate"] == 3
    assert stats["dropped"]["dedup.minhash"]["near_duplicate"] == 1
    assert {r["id"] for r in statutes[1:]} <= kept
    assert len(kept & {statutes[0]["id"], "copy", "copy-ws", "near"}) == 1
    assert len(kept & {"short-1", "short-2"}) == 1


def test_minhash_shingles_are_datatrove_s(sample_mixed):
    """Our faster ``simplify_text``/``get_shingles`` give datatrove's exact output (same near-duplicates)."""
    from dataclasses import replace
    from itertools import product

    import numpy as np
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
    from datatrove.utils.text import TextNormConfig
    from datatrove.utils.text import simplify_text as datatrove_simplify

    from data_prep.dedup.steps import MinhashSignature, WhitespaceWordTokenizer, minhash_config, simplify_text

    texts = ["  Crème brûlée, Ångström & naïve café!\t\n", "Tuesday, March 3rd: 1,234.5 ٣٤ 12:30\u00a0pm",
              "\u0301 옛한글 ᄒᆞᆫ글 (結果)… 「인용」 #태그 @멘션 \x1c\x85\u2028끝", "e\u0301\u0300 ﬁ ＡＢＣ １２３", "", " \n "]
    flags = ["lowercase", "norm_whitespace", "remove_punctuation", "norm_unicode_diacritics", "norm_numbers",
             "norm_weekdays", "norm_monthnames"]
    for values in product([True, False], repeat=len(flags)):
        config = replace(TextNormConfig(), **dict(zip(flags, values)))
        assert [simplify_text(t, config) for t in texts] == [datatrove_simplify(t, config) for t in texts]
    texts += [json.loads(line)["text"] for line in sample_mixed.read_text(encoding="utf-8").splitlines()]
    for bits in (64, 32):
        cfg = minhash_config({"hash_bits": bits})
        ours = MinhashSignature("unused", config=cfg, language=WhitespaceWordTokenizer())
        theirs = MinhashDedupSignature("unused", config=cfg, language=WhitespaceWordTokenizer())
        for t in texts:
            a, b = ours.get_shingles(t), theirs.get_shingles(t)
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            if a.size:
                assert ours.get_signature(a) == theirs.get_signature(b)
        # the modular reduction at its edges (a = 1, b = 0): x = p - 1, p, p + 1, 2**64 - 1, 0
        n_hashes = cfg.num_buckets * cfg.hashes_per_bucket
        ours._parameters = theirs._parameters = (np.ones((1, n_hashes), np.uint64), np.zeros((1, n_hashes), np.uint64))
        for x in (2**61 - 2, 2**61 - 1, 2**61, 2**64 - 1, 0):
            shingle = np.array([[x]], dtype=np.uint64)
            assert ours.get_signature(shingle) == theirs.get_signature(shingle)
