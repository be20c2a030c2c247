"""The filter's --config: deep-merged over the packaged YAML, unknown keys refused."""
from __future__ import annotations

import pytest

from data_prep.config import load_config
from data_prep.errors import DataError


def test_filter_config_refuses_unknown_keys_and_takes_user_maps(tmp_path):
    """--config refuses a misspelt key (naming what that level has) as --set does; the maps keyed by the
    user's own names (sources, languages, new profiles) stay open, and a new profile's rules are checked."""
    good = tmp_path / "good.yaml"
    good.write_text("heuristics:\n  profiles:\n    formal: {min_chars: 5}\n  profiles_by_source: {statutes: formal}\n"
                    "langid:\n  min_score: {ko: 0.4}\n", encoding="utf-8")
    assert load_config(str(good))["heuristics"]["profiles"]["formal"] == {"min_chars": 5}
    for text, message in [("dedupe:\n  exact: false\n", "unknown key 'dedupe'; the top level has: stages, io"),
                          ("dedup:\n  n_gram: 3\n", "unknown key 'dedup.n_gram'; dedup has: exact, minhash, n_grams"),
                          ("heuristics:\n  profiles:\n    formal: {min_chras: 5}\n",
                           "unknown key 'heuristics.profiles.formal.min_chras'")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=message.replace(".", r"\.")):
            load_config(str(bad))


def test_files_of_enabled_stages_are_checked_before_the_run(tmp_path):
    cfg = tmp_path / "tox.yaml"
    cfg.write_text("toxicity:\n  classifier: /nonexistent.ftz\n", encoding="utf-8")
    with pytest.raises(DataError, match="toxicity.classifier: /nonexistent.ftz not found; train it with"):
        load_config(str(cfg), ["toxicity"])
    assert load_config(str(cfg), ["normalize"])["stages"] == ["normalize"]  # a stage left out needs no file
