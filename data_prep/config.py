"""Filter configuration: the packaged YAML, deep-merged with the user's ``--config FILE``.

A key of ``--config`` that the packaged YAML does not have is refused (exit 2, naming the keys that
level has), as ``--set`` refuses an unknown recipe field: a misspelt threshold would otherwise be
ignored in silence. Maps whose keys are the user's to choose are listed in :data:`FREE_KEYS`; a user
profile under ``heuristics.profiles`` takes the rule names any packaged profile has.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from data_prep.errors import DataError

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "filter.yaml"
ALL_STAGES = ["url", "normalize", "langid", "heuristics", "dedup", "toxicity", "pii", "quality"]
# maps keyed by the user's own names: languages, sources, n-gram sizes, profiles
FREE_KEYS = {"heuristics.profiles_by_source", "heuristics.stopwords", "langid.min_score", "heuristics.profiles"}
FREE_LEAVES = {"max_top_ngram_char_frac", "max_dup_ngram_char_frac"}
_PATH_KEYS = {("url", "blocklist_files"), ("toxicity", "lexicon_files"), ("toxicity", "spam_lexicon_files"),
              ("toxicity", "classifier"), ("quality", "classifier")}


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def check_keys(user: dict, default: dict, source: str, prefix: str = "") -> None:
    """Raise :class:`DataError` naming the first key of ``user`` (recursively) that ``default`` lacks.

    ``prefix`` is the dotted path of ``user`` inside the whole config (``""`` at the top).
    """
    here = prefix.rstrip(".")
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if here == "heuristics.profiles":  # a packaged or a new profile: any packaged profile's rules
            if not isinstance(value, dict):
                raise DataError(f"{source}: {dotted} must be a mapping of rule -> value")
            rules = {k: v for profile in default.values() if isinstance(profile, dict) for k, v in profile.items()}
            check_keys(value, rules, source, f"{dotted}.")
            continue
        if here in FREE_KEYS:
            continue
        if key not in default:
            raise DataError(f"{source}: unknown key {dotted!r}; {here or 'the top level'} has: "
                            f"{', '.join(map(str, default))}")
        if isinstance(value, dict) and isinstance(default[key], dict) and key not in FREE_LEAVES:
            check_keys(value, default[key], source, f"{dotted}.")


def _resolve_paths(cfg: dict, root: Path) -> dict:
    for section, key in _PATH_KEYS:
        value = cfg.get(section, {}).get(key)
        if isinstance(value, str) and value:
            cfg[section][key] = str((root / value).resolve())
        elif isinstance(value, list):
            cfg[section][key] = [str((root / v).resolve()) for v in value]
    return cfg


def load_config(user_file: str | None = None, stages: list[str] | None = None) -> dict[str, Any]:
    cfg = _resolve_paths(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")), DEFAULT_CONFIG.parent)
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise DataError(f"config file {user_file} does not exist")
        user = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(user, dict):
            raise DataError(f"{user_file} must hold a YAML mapping of stage -> settings")
        check_keys(user, cfg, user_file)
        cfg = deep_merge(cfg, _resolve_paths(user, path.resolve().parent))
    if stages is not None:
        cfg["stages"] = stages
    unknown = [s for s in cfg["stages"] if s not in ALL_STAGES]
    if unknown:
        raise DataError(f"unknown stage(s) {unknown}; choose from {','.join(ALL_STAGES)}")
    cfg["stages"] = [s for s in ALL_STAGES if s in cfg["stages"]]  # always run in canonical order
    _check_files(cfg)
    return cfg


def _check_files(cfg: dict) -> None:
    """The files the enabled stages read (lists, lexicons, classifiers) exist: checked before the run
    makes anything, instead of failing inside a datatrove worker."""
    for section, key in sorted(_PATH_KEYS):
        if section not in cfg["stages"]:
            continue
        value = cfg.get(section, {}).get(key)
        for path in [value] if isinstance(value, str) else (value or []):
            if path and not Path(path).is_file():
                hint = (" train it with `midm data train-classifier " + section + "` (data_prep/models/README.md),"
                        if key == "classifier" else "")
                raise DataError(f"{section}.{key}: {path} not found;{hint} fix the path in --config or leave the "
                                f"stage out with --stages")
